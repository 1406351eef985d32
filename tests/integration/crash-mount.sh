#!/bin/bash
# The mount killed with SIGKILL in the middle of O_DIRECT writes, again and
# again.  After each kill: a lazy unmount, a new `repdisk mount` (replay
# from the checkpoint, a new claim), and then every write the client saw
# acknowledged is on the disk, whole, and nothing older; the follower
# converges to the same bytes.  Two clients: ackwriter, which records each
# acknowledged write and checks that every block holds its last one (or
# the one in flight), whole; and fio with crc32c verification (its verify
# state saved when the daemon dies, then verify_only).
. "$(dirname "$0")/../lib/lib.sh"
requires fusermount3 truncate

ROUNDS=${CRASH_ROUNDS:-8}
D=$T/data M=$T/mnt R=$T/replica
BS=(4096 65536 1048576)

mount_disks "$D" "$M"
start_follower "file:$D/.repdisk/log" "$R"
for bs in "${BS[@]}"; do truncate -s 256M "$M/vm-$bs.img"; done

for round in $(seq 1 "$ROUNDS"); do
	bs=${BS[round % 3]}
	blocks=$((256 * 1048576 / 8 / bs))	# 8 threads share 256 MiB
	[ "$blocks" -gt 512 ] && blocks=512
	start_bg "$T/ackwriter.log" "$ACKWRITER" write "$M/vm-$bs.img" "$T/acks.$bs" \
		--threads 8 --blocks "$blocks" --bs "$bs"
	writer=$!
	sleep "0.$((RANDOM % 8 + 2))"
	crash_daemon "$M"
	wait "$writer" 2>/dev/null || true

	mount_disks "$D" "$M"
	"$ACKWRITER" verify "$M/vm-$bs.img" "$T/acks.$bs" --threads 8 \
		--blocks "$blocks" --bs "$bs" > "$T/verify.log" 2>&1 ||
		{ cat "$T/verify.log"; fail "round $round (bs $bs): acknowledged write lost"; }
	say "round $round, bs $bs: $(cat "$T/verify.log")"
	converged "$D" "$R" "vm-$bs.img"
done
# fio: random writes at iodepth 32 with crc32c headers, killed mid-run
requires fio
truncate -s 128M "$M/fio.img"
cd "$T"		# fio keeps its verify state in the working directory
for round in 1 2 3; do
	fio_job=(--name=crash --filename="$M/fio.img" --size=128M --rw=randwrite
		--bs=4k --direct=1 --ioengine=libaio --iodepth=32 --verify=crc32c
		--randseed=$round)
	start_bg "$T/fio.log" fio "${fio_job[@]}" --do_verify=0 --verify_state_save=1 \
		--time_based --runtime=60
	fio_pid=$!
	sleep "1.$((RANDOM % 10))"
	crash_daemon "$M"
	wait "$fio_pid" 2>/dev/null || true
	[ -f "$T/local-crash-0-verify.state" ] || fail "fio round $round: no verify state saved"
	mount_disks "$D" "$M"
	# fio's saved state counts the writes that failed when the daemon
	# died (ECONNABORTED, never acknowledged) as written: verify them
	# all, and accept a mismatch only at an offset fio saw fail
	fio "${fio_job[@]}" --verify_only --verify_state_load=1 --verify_fatal=0 \
		> "$T/fio-verify.log" 2>&1 || true
	grep -q "READ: bw=" "$T/fio-verify.log" ||
		{ cat "$T/fio-verify.log"; fail "fio round $round: verify did not run"; }
	failed_writes=$(grep -o "write offset=[0-9]*" "$T/fio.log" | cut -d= -f2 | sort -u)
	bad=0 excused=0
	for off in $(grep -o "^verify: .* offset [0-9]*" "$T/fio-verify.log" | awk '{print $NF}' | sort -u); do
		if grep -qx "$off" <<< "$failed_writes"; then
			excused=$((excused + 1))
		else
			echo "fio round $round: block at offset $off fails verification," \
				"and fio saw its write acknowledged" >&2
			bad=$((bad + 1))
		fi
	done
	[ "$bad" = 0 ] || { cat "$T/fio-verify.log"; fail "fio round $round: $bad acknowledged writes lost"; }
	say "fio round $round: $(grep -o 'READ: bw=[^,]*, [^,]*, io=[^ ]*' "$T/fio-verify.log") verified" \
		"($excused blocks whose write fio saw fail were not checked)"
	converged "$D" "$R" fio.img
	rm -f "$T/local-crash-0-verify.state"
done

# every acknowledged write of every round is still there
for bs in "${BS[@]}"; do
	[ -f "$T/acks.$bs" ] || continue
	blocks=$((256 * 1048576 / 8 / bs)); [ "$blocks" -gt 512 ] && blocks=512
	"$ACKWRITER" verify "$M/vm-$bs.img" "$T/acks.$bs" --threads 8 --blocks "$blocks" --bs "$bs" > /dev/null ||
		fail "bs $bs: acknowledged writes lost by the end"
done
say "$(cat "$T"/acks.* | wc -l) acknowledged ackwriter writes survived $ROUNDS SIGKILLs, and fio verified 3 more"
