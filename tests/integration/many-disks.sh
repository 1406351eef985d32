#!/bin/bash
# Many disks written at once, as a hypervisor with many guests writes: one
# mount, a follower beside it, and 1, 2, 4, 8 and then 16 disks written
# together, each by its own fio with crc32c verification, at iodepth 1, 4
# and 32, sequentially and then at random (a mix of 4 KiB, 64 KiB and
# 1 MiB O_DIRECT libaio writes, each read back and checked through the
# mount).  Every round is bounded: a client that has not finished long
# after it should have is a hang, and the test names the disks and the
# requests left waiting.  After each round of disks the follower must hold
# every disk's whole log, byte for byte; at the end, with both at rest,
# `repdisk verify` compares every disk of the two data directories.
#
# MANY_DISKS (default "1 2 4 8 16") and MANY_DEPTHS ("1 4 32") narrow it.
. "$(dirname "$0")/../lib/lib.sh"
requires fio fusermount3 cmp

D=$T/data M=$T/mnt R=$T/replica
LOG=$(test_log_uri "$D")
counts=(${MANY_DISKS:-1 2 4 8 16})
depths=(${MANY_DEPTHS:-1 4 32})
max=${counts[-1]}
# Each fio job's size.
export JOB_SIZE=${JOB_SIZE:-8M}
# A round takes seconds here (minutes under the sanitizers on a slow
# machine would still be well inside this): past it, it is a hang.
BOUND=${MANY_BOUND:-240}

mount_disks "$D" "$M"
start_follower "$LOG" "$R"
for i in $(seq "$max"); do
	truncate -s 32M "$M/vm$i.img" || fail "truncate vm$i.img in the mount"
done

cat > "$T/disk.fio" <<'EOF'
[global]
filename=${FIO_FILE}
ioengine=libaio
direct=1
iodepth=${FIO_DEPTH}
bssplit=4k/50:64k/40:1m/10
verify=crc32c
do_verify=1
verify_fatal=1
verify_state_save=0
size=${JOB_SIZE}

[seq]
rw=write
offset=0

[rand]
stonewall
rw=randwrite
offset=16M
EOF

for n in "${counts[@]}"; do
	for depth in "${depths[@]}"; do
		clients=()
		for i in $(seq "$n"); do
			FIO_FILE=$M/vm$i.img FIO_DEPTH=$depth \
				fio --output="$T/fio-vm$i.out" "$T/disk.fio" \
				>"$T/fio-vm$i.err" 2>&1 &
			clients+=("vm$i.img=$!")
		done
		wait_bounded "$BOUND" "$M" "${clients[@]}"
		for i in $(seq "$n"); do
			f=$T/fio-vm$i.out
			grep -Eqi "verify:|crc32c|bad magic|err= *[1-9]" "$f" &&
				{ cat "$f"; fail "$n disks, iodepth $depth: fio on vm$i.img reported errors"; }
			[ "$(grep -c "^[a-z]*: (groupid=[0-9]*, jobs=1): err= 0:" "$f")" = 2 ] ||
				{ cat "$f" "$T/fio-vm$i.err"; fail "$n disks, iodepth $depth: fio on vm$i.img did not finish both jobs"; }
		done
		say "$n disks at iodepth $depth: written and verified"
	done
	for i in $(seq "$n"); do
		converged "$D" "$R" "vm$i.img"
	done
done

# Both at rest, every disk compares equal at a common log position.
kill -TERM "$FOLLOWER_PID"
wait "$FOLLOWER_PID" 2>/dev/null || true
unmount_disks "$M"
expect_exit 0 "$REPDISK" verify -q "$D" "$R"
[ "$(grep -c "^vm[0-9]*\.img: identical at log position " "$T/stdout")" = "$max" ] ||
	fail "verify: $(cat "$T/stdout" "$T/stderr")"
say "ok"
