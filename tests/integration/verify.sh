#!/bin/bash
# repdisk verify: two replicas at rest compare identical; a changed byte or
# block in one is reported to the 4 KiB block with exit 1; a replica still
# in use, or at another log position, is refused (exit 3) and left
# unchanged; --replay compares an image with its log; plain image files
# compare too; bad usage exits 2.
. "$(dirname "$0")/../lib/lib.sh"
requires cmp

data=$T/data rep=$T/rep mnt=$T/mnt
mount_disks "$data" "$mnt"
truncate -s 2G "$mnt/vm1.img"
for off_mb in 0 7 300 1500; do
	dd if=/dev/urandom of="$mnt/vm1.img" bs=64k count=20 seek=$((off_mb * 16)) \
		oflag=direct conv=notrunc status=none
done
truncate -s 1M "$mnt/small.img"
start_follower "file:$data/.repdisk/log" "$rep"
converged "$data" "$rep" vm1.img

# a follower running: its data directory is in use, verify refuses
expect_exit 3 "$REPDISK" verify -q "$data" "$rep"
expect_stderr "in use by another repdisk process.*stop it first"

kill -TERM "$FOLLOWER_PID"
wait "$FOLLOWER_PID" 2>/dev/null || true
unmount_disks "$mnt"

expect_exit 0 "$REPDISK" verify -q "$data" "$rep"
grep -q "^vm1.img: identical at log position " "$T/stdout" || fail "stdout: $(cat "$T/stdout")"
grep -q "^small.img: identical at log position " "$T/stdout" || fail "stdout: $(cat "$T/stdout")"

expect_exit 0 "$REPDISK" verify -q --replay "$data" vm1.img
grep -q "^vm1.img: identical to a replay of the log up to position " "$T/stdout" ||
	fail "stdout: $(cat "$T/stdout")"

# one byte in a data range and three blocks in a hole of the replica
cp --sparse=always "$rep/vm1.img" "$T/vm1.before"
printf 'X' | dd of="$rep/vm1.img" bs=1 seek=$((7 * 1048576 + 5000)) conv=notrunc status=none
dd if=/dev/urandom of="$rep/vm1.img" bs=4k count=3 seek=$((1024 * 256)) conv=notrunc status=none
cp --sparse=always "$rep/vm1.img" "$T/vm1.changed"
expect_exit 1 "$REPDISK" verify -q "$data" "$rep" vm1.img
grep -q "^vm1.img: differ at bytes $((7 * 1048576 + 4096))\.\.$((7 * 1048576 + 8191)) (4096 bytes)$" "$T/stdout" ||
	fail "byte change not reported: $(cat "$T/stdout")"
grep -q "^vm1.img: differ at bytes 1073741824\.\.1073754111 (12288 bytes)$" "$T/stdout" ||
	fail "blocks in a hole not reported: $(cat "$T/stdout")"
grep -q "^vm1.img: DIFFERENT at log position [0-9]*: 16384 bytes differ$" "$T/stdout" ||
	fail "summary: $(cat "$T/stdout")"
cmp "$rep/vm1.img" "$T/vm1.changed" || fail "verify changed the replica"

# two image files
expect_exit 1 "$REPDISK" verify -q "$data/vm1.img" "$rep/vm1.img"
grep -q "DIFFERENT: 16384 bytes differ" "$T/stdout" || fail "stdout: $(cat "$T/stdout")"
expect_exit 0 "$REPDISK" verify -q "$data/vm1.img" "$T/vm1.before"

# at different log positions: refused, nothing compared
mount_disks "$data" "$mnt"
dd if=/dev/urandom of="$mnt/vm1.img" bs=4k count=1 oflag=direct conv=notrunc status=none
unmount_disks "$mnt"
expect_exit 3 "$REPDISK" verify -q "$data" "$rep" vm1.img
expect_stderr "vm1.img: not at a common log position: .* is at [0-9]+, .* at [0-9]+"

# usage
expect_exit 2 "$REPDISK" verify "$data"
expect_exit 2 "$REPDISK" verify --chunk 1000 "$data" "$rep"
expect_exit 3 "$REPDISK" verify -q "$data" "$rep" nosuch.img
expect_stderr "nosuch.img: no such disk"
say "ok"
