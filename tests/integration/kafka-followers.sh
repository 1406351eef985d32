#!/bin/bash
# Two followers, each in its own data directory, tail a mount's Kafka log
# (a real 3-node cluster) while real clients write: qemu-io
# (parallel aio writes with patterns, O_DIRECT, verified with read -P),
# fio (O_DIRECT libaio, crc32c headers, do_verify), mkfs.ext4 -d then
# e2fsck -fn.  After each workload both followers hold images
# byte-identical with the primary's.  One follower stopped with SIGTERM
# during fio, the other killed with SIGKILL during mkfs, are restarted
# afterwards and catch up to the same bytes.  Every disk is created in the
# mount after the followers started, and a late one too appears on both.
. "$(dirname "$0")/../lib/lib.sh"
requires qemu-io fio mkfs.ext4 e2fsck debugfs cmp fusermount3 truncate

# --- the cluster, the mount, two followers --------------------------------
use_kafka_cluster
LOG="kafka:$KAFKA_BOOTSTRAP?ns=$TEST_NAME-$$"
D=$T/data M=$T/mnt R1=$T/r1 R2=$T/r2

both_converged() { # NAME...: both followers hold the primary's bytes
	local n
	for n in "$@"; do
		log_converged "$LOG" "$D" "$R1" "$n" 60
		log_converged "$LOG" "$D" "$R2" "$n" 60
	done
}
follower() { # DATADIR LOGNAME: a follower in the background; sets FPID
	mkdir -p "$1"
	start_bg "$T/follower-$2.log" "$REPDISK" follow --log "$LOG" "$1"
	FPID=$!
}

mount_disks "$D" "$M" --log "$LOG" 2> "$T/mount.err" || fail "mount: $(cat "$T/mount.err")"
follower "$R1" r1
F1=$FPID
follower "$R2" r2
F2=$FPID

# --- qemu-io: 24 parallel O_DIRECT writes with patterns, 4 KiB to 128 KiB,
# one in each MiB of a 32 MiB disk (the rest stays zero)
qemu-img create -f raw "$M/q.img" 32M > /dev/null || fail "qemu-img create in the mount"
awk 'BEGIN {
	srand(20240612)
	split("4096 8192 65536 131072 12288 98304", sizes, " ")
	for (i = 0; i < 24; i++) {
		len = sizes[1 + int(rand() * 6)]
		off = i * 1048576 + 512 * int(rand() * (1048576 - len) / 512)
		print off, len, i + 1
	}
}' > "$T/qwrites"
cmds=()
while read -r off len pat; do cmds+=(-c "aio_write -P $pat $off $len"); done < "$T/qwrites"
qemu-io -f raw -n -t none -i native "${cmds[@]}" -c aio_flush "$M/q.img" > "$T/qemu-io.out" 2>&1 ||
	{ cat "$T/qemu-io.out"; fail "qemu-io aio_write exited non-zero"; }
[ "$(grep -c "^wrote [0-9]*/[0-9]* bytes at offset" "$T/qemu-io.out")" = 24 ] ||
	{ cat "$T/qemu-io.out"; fail "qemu-io did not report 24 writes done"; }
qverify() { # IMAGE: every write's pattern, and zeros around them
	local cmds=() off len pat prev=0
	while read -r off len pat; do
		[ "$off" -gt "$prev" ] && cmds+=(-c "read -q -P 0 $prev $((off - prev))")
		cmds+=(-c "read -q -P $pat $off $len")
		prev=$((off + len))
	done < "$T/qwrites"
	cmds+=(-c "read -q -P 0 $prev $((32 * 1048576 - prev))")
	qemu-io -f raw -r -n -t none "${cmds[@]}" "$1" > "$T/qverify.out" 2>&1 ||
		{ cat "$T/qverify.out"; fail "qemu-io read -P of $1 exited non-zero"; }
	[ -s "$T/qverify.out" ] && { head "$T/qverify.out"; fail "qemu-io read -P of $1 found differences"; }
	return 0
}
qverify "$M/q.img"
both_converged q.img
qverify "$R1/q.img"
qverify "$R2/q.img"
say "qemu-io: 24 writes verified on the primary and both followers"

# --- fio (100 writes/s, about 2 s), follower 2 stopped (SIGTERM) meanwhile
truncate -s 16M "$M/f.img" || fail "truncate in the mount"
cat > "$T/job.fio" <<EOF
[f]
filename=\${FIO_FILE}
ioengine=libaio
direct=1
iodepth=8
rw=randwrite
bssplit=4k/50:16k/25:64k/25
verify=crc32c
do_verify=1
verify_fatal=1
randrepeat=1
size=16M
io_size=64M
rate_iops=100
EOF
fio_check() { # OUTPUT: exit status checked by the caller; no error in it
	grep -Eiq "verify:|crc32c|bad magic|err= *[1-9]" "$1" && { cat "$1"; fail "fio reported errors"; }
	grep -q "^f: (groupid=0, jobs=1): err= 0:" "$1" || { cat "$1"; fail "fio: no err= 0"; }
}
(cd "$T" && FIO_FILE=$M/f.img exec fio "$T/job.fio") > "$T/fio.out" 2>&1 &
fio_pid=$!
cleanup "kill -9 $fio_pid 2>/dev/null"
# stop follower 2 once fio's first writes are in the log
for _ in $(seq 300); do
	[ "$(log_status_field "$LOG" "$D" f.img log_end)" -ge 10 ] 2> /dev/null && break
	sleep 0.02
done
kill -TERM "$F2"
rc=0
wait "$F2" || rc=$?
[ "$rc" = 0 ] || fail "follower 2 exited $rc on SIGTERM, want 0: $(cat "$T/follower-r2.log")"
wait "$fio_pid" || { cat "$T/fio.out"; fail "fio exited non-zero"; }
fio_check "$T/fio.out"
read -r reads writes < <(sed -n 's/^ *issued rwts: total=\([0-9]*\),\([0-9]*\),.*/\1 \2/p' "$T/fio.out")
[ "$reads" = "$writes" ] && [ "$writes" -gt 50 ] || { cat "$T/fio.out"; fail "fio wrote $writes blocks, verified $reads"; }
log_converged "$LOG" "$D" "$R1" f.img 60
[ "$(log_status_field "$LOG" "$R2" f.img applied)" != "$(log_status_field "$LOG" "$D" f.img log_end)" ] ||
	fail "follower 2 was stopped at the start of fio, yet has all of it"
follower "$R2" r2-restarted
F2=$FPID
both_converged q.img f.img
for r in "$R1" "$R2"; do
	(cd "$T" && FIO_FILE=$r/f.img fio --verify_only "$T/job.fio") > "$T/fio-r.out" 2>&1 ||
		{ cat "$T/fio-r.out"; fail "fio verify_only of $r/f.img exited non-zero"; }
	fio_check "$T/fio-r.out"
done
say "fio: $writes blocks written and verified; follower 2, stopped during it, caught up"

# --- mkfs.ext4 and e2fsck, with follower 1 killed (SIGKILL) in the middle -
mkdir -p "$T/tree/etc" "$T/tree/data"
echo "on every replica" > "$T/tree/etc/motd"
head -c 600000 /dev/urandom > "$T/tree/data/big.bin"
for i in $(seq 20); do head -c $((i * 997)) /dev/urandom > "$T/tree/data/f$i"; done
truncate -s 64M "$M/e.img" || fail "truncate in the mount"
mkfs.ext4 -q -F -b 4096 -L kafka -d "$T/tree" "$M/e.img" > "$T/mkfs.out" 2>&1 &
mkfs_pid=$!
cleanup "kill -9 $mkfs_pid 2>/dev/null"
sleep 0.05
kill -0 "$mkfs_pid" 2> /dev/null && during="during mkfs" || during="after mkfs"
kill -KILL "$F1"
wait "$F1" 2> /dev/null || true
wait "$mkfs_pid" || { cat "$T/mkfs.out"; fail "mkfs.ext4 in the mount"; }
fsck_clean() { # IMAGE: e2fsck -fn finds it clean; the files read back
	local f
	expect_exit 0 e2fsck -fn "$1"
	grep -q "^kafka: 3[0-9]/[0-9]* files" "$T/stdout" ||
		{ cat "$T/stdout" "$T/stderr"; fail "e2fsck of $1: unexpected summary"; }
	for f in etc/motd data/big.bin data/f1 data/f20; do
		debugfs -R "cat /$f" "$1" > "$T/cat.out" 2> /dev/null || fail "debugfs cat /$f on $1"
		cmp "$T/tree/$f" "$T/cat.out" || fail "/$f in $1 differs from the original"
	done
}
fsck_clean "$M/e.img"
follower "$R1" r1-restarted
F1=$FPID
both_converged q.img f.img e.img
fsck_clean "$R1/e.img"
fsck_clean "$R2/e.img"
say "ext4: clean on the primary and both followers; follower 1, killed $during, caught up"

# --- a disk created now appears on both ----------------------------------
truncate -s 8M "$M/late.img" || fail "truncate in the mount"
head -c 192K /dev/urandom > "$T/late.bin"
dd if="$T/late.bin" of="$M/late.img" bs=64k seek=5 oflag=direct conv=notrunc status=none ||
	fail "dd into late.img"
both_converged late.img
for r in "$R1" "$R2"; do
	[ "$(stat -c %s "$r/late.img")" = 8388608 ] || fail "$r/late.img is not 8 MiB"
	dd if="$r/late.img" bs=64k skip=5 count=3 status=none | cmp - "$T/late.bin" ||
		fail "$r/late.img does not hold what was written"
done
kill -0 "$F1" && kill -0 "$F2" || fail "a follower exited"
for r in "$R1" "$R2"; do
	"$REPDISK" status --log "$LOG" "$r" > "$T/status.out" 2>&1 || fail "status of $r"
	[ "$(awk 'NR > 1 && $1 ~ /\.img$/' "$T/status.out" | wc -l)" -ge 4 ] ||
		{ cat "$T/status.out"; fail "status of $r does not list the 4 disks"; }
done
say "ok"
