#!/bin/bash
# On a file system that refuses O_DIRECT (ramfs), everything the file log
# and the follower would do direct goes through the page cache instead:
# the log's appends of large records, its readers' cold reads, the
# follower's image writes.  The mount says so once, and nothing is lost or
# different: large and small writes, a follower that converges byte for
# byte, a remount that replays, and the backing file a plain raw image.
. "$(dirname "$0")/../lib/lib.sh"
requires dd cmp

R=$T/ram
mkdir -p "$R"
mount -t ramfs -o mode=0700 ramfs "$R" 2>/dev/null || { say "cannot mount a ramfs: skipped"; exit 77; }
cleanup "umount -l '$R'"
if dd if=/dev/zero of="$R/probe" bs=4k count=1 oflag=direct status=none 2>/dev/null; then
	say "ramfs takes O_DIRECT on this kernel: skipped"
	exit 77
fi
rm -f "$R/probe"

D=$R/data M=$T/mnt
mount_disks "$D" "$M"
start_follower "file:$D/.repdisk/log" "$R/replica"

# the same writes into the disk and into a plain file beside it
truncate -s 64M "$M/vm1.img" "$T/expect"
head -c 16M /dev/urandom > "$T/big"
for f in "$M/vm1.img" "$T/expect"; do
	dd if="$T/big" of="$f" bs=1M seek=8 conv=notrunc,fsync status=none ||
		fail "1 MiB writes into $f"
done
for i in $(seq 0 63); do
	head -c 4096 /dev/urandom > "$T/small"
	for f in "$M/vm1.img" "$T/expect"; do
		dd if="$T/small" of="$f" bs=4k seek=$((i * 97 % 16384)) conv=notrunc,fsync status=none ||
			fail "4 KiB write $i into $f"
	done
done
cmp "$T/expect" "$M/vm1.img" || fail "the disk differs from what was written"

grep -q "file log .*: direct writes refused (Invalid argument); appending through the page cache" "$D/.repdisk/mount.log" ||
	fail "no notice that the log appends through the page cache: $(tail -3 "$D/.repdisk/mount.log")"
[ "$(grep -c "direct writes refused" "$D/.repdisk/mount.log")" = 1 ] ||
	fail "the notice was not said once"

converged "$D" "$R/replica" vm1.img
cmp "$T/expect" "$R/replica/vm1.img" || fail "the follower's image differs"

# a remount replays from the checkpoint; the backing file is the image
unmount_disks "$M"
cmp "$T/expect" "$D/vm1.img" || fail "the backing file differs after unmount"
mount_disks "$D" "$M"
cmp "$T/expect" "$M/vm1.img" || fail "the disk differs after a remount"
unmount_disks "$M"
say "ok"
