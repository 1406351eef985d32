#!/bin/bash
# A write the log neither completes nor fails is reported by the daemon
# itself: with the file log's fdatasync hung (a disk that stops
# answering, through tests/tools/faultshim.c), a guest's write waits, the
# kernel counts it as waiting, and the mount log names the disk, the
# record and how long it has waited once that passes --write-timeout plus
# 10 s.  Meanwhile metadata is answered: a truncate waits for the log,
# but lookup, stat, readdir, open and read of another disk do not wait
# behind it (catalog changes do: the file log's one flusher is hung).  When the disk answers
# again the write completes, durable, and the log says so.
. "$(dirname "$0")/../lib/lib.sh"
requires fusermount3 dd cmp

D=$T/data M=$T/mnt CTL=$T/faults
set_faults "$CTL"
with_faults "$CTL" mount_disks "$D" "$M" --write-timeout 1
truncate -s 16M "$M/vm1.img"
truncate -s 1M "$M/vm2.img"
truncate -s 1M "$M/vm3.img"
head -c 65536 /dev/urandom > "$T/block"
dd if="$T/block" of="$M/vm1.img" bs=64k oflag=direct conv=notrunc status=none ||
	fail "a write with no fault failed"

# the log's segments stop answering
set_faults "$CTL" "hang /disks/"
dd if="$T/block" of="$M/vm1.img" bs=64k seek=3 oflag=direct conv=notrunc \
	status=none 2>"$T/dd.err" &
dd_pid=$!
cleanup "kill -9 $dd_pid 2>/dev/null"
for _ in $(seq 600); do
	grep -q "has waited" "$D/.repdisk/mount.log" && break
	kill -0 "$dd_pid" 2>/dev/null || fail "the write finished while the log hung: $(cat "$T/dd.err")"
	sleep 0.1
done
grep -Eq "^repdisk: vm1\.img: a WRITE record \(offset 196608, length 65536, epoch [0-9]+, seq [0-9]+\) has waited 1[0-9] s for the log, which has neither made it durable nor failed it; 1 records of this disk are in flight" "$D/.repdisk/mount.log" ||
	fail "no stuck report in the mount log: $(tail -5 "$D/.repdisk/mount.log")"
kill -0 "$dd_pid" 2>/dev/null || fail "the write finished while the log hung"
fusectl_on
[ "$(fuse_waiting "$M")" = 1 ] || fail "want 1 request waiting in the kernel, have $(fuse_waiting "$M")"

# a truncate of another disk waits for the log too (every disk's log
# hangs) ...
truncate -s 32M "$M/vm3.img" 2>"$T/truncate.err" &
tr_pid=$!
cleanup "kill -9 $tr_pid 2>/dev/null"
for _ in $(seq 100); do [ "$(fuse_waiting "$M")" = 2 ] && break; sleep 0.1; done
[ "$(fuse_waiting "$M")" = 2 ] || fail "the truncate is not waiting for the log: $(fuse_waiting "$M") requests waiting"
# ... and the other disk's metadata does not wait behind it (a hang here
# is a lock held across the round trip: 60 s is a hang, not a slow machine)
( stat -c %s "$M/vm2.img" >"$T/stat.out" && ls "$M" >"$T/ls.out" &&
  head -c 4096 "$M/vm2.img" >/dev/null ) &
meta_pid=$!
wait_bounded 60 "$M" "metadata-of-vm2=$meta_pid"
[ "$(cat "$T/stat.out")" = 1048576 ] || fail "stat of vm2.img: $(cat "$T/stat.out")"
grep -qx vm2.img "$T/ls.out" || fail "readdir while vm1.img's log hangs: $(cat "$T/ls.out")"
running "$tr_pid" || fail "the truncate finished while the log hung: $(cat "$T/truncate.err")"

# the disk answers again: the write completes, and the log says so
set_faults "$CTL"
wait_bounded 60 "$M" "dd=$dd_pid" "truncate=$tr_pid"
grep -Eq "^repdisk: vm1\.img: the record stuck in the log \(seq [0-9]+\) completed after [0-9]+ s$" "$D/.repdisk/mount.log" ||
	fail "no report of the stuck record completing: $(tail -5 "$D/.repdisk/mount.log")"
[ "$(stat -c %s "$M/vm3.img")" = 33554432 ] || fail "the truncate that waited did not take: $(stat -c %s "$M/vm3.img")"
unmount_disks "$M"
cmp -n 65536 "$T/block" <(dd if="$D/vm1.img" bs=64k skip=3 count=1 status=none) ||
	fail "the write that waited is not in the image"
say "ok"
