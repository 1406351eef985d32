#!/bin/bash
# A disk can never be made larger than its data directory's file system
# holds (ext4 with 4 KiB blocks: 16 TiB - 4 KiB; with 1 KiB blocks, 4 TiB
# - 1 KiB): truncate, a write and fallocate past it fail with EFBIG and
# append nothing to the log (before, one `truncate -s 17T` was durable,
# failed to apply, and bricked the mount and every follower).  A record
# that a replica still cannot apply (a follower on a file system with a
# smaller limit) stops that one disk there, with a message, and never the
# follower's or a mount's other disks.  Each data directory is a small
# ext4 of its own, on a loop device.
. "$(dirname "$0")/../lib/lib.sh"
requires mkfs.ext4 losetup truncate fallocate cmp

# ext4 FS-IMAGE BLOCK-SIZE DIR: a fresh 64 MiB ext4 mounted on DIR,
# unmounted at exit
ext4() {
	truncate -s 64M "$1"
	mkfs.ext4 -q -F -b "$2" "$1" || fail "mkfs.ext4 $1"
	mkdir -p "$3"
	mount -o loop "$1" "$3" || fail "mount -o loop $1"
	cleanup "umount -l '$3'"
}
ext4 "$T/big.fs" 4096 "$T/big"
ext4 "$T/small.fs" 1024 "$T/small"
D=$T/big/data M=$T/mnt R=$T/small/replica LOG=file:$T/big/data/.repdisk/log
mkdir -p "$D" "$R"

mount_disks "$D" "$M"
truncate -s 1M "$M/vm1.img" "$M/vm2.img"
end=$(status_field "$D" vm1.img log_end)

expect_exit 1 truncate -s 17T "$M/vm1.img"
expect_stderr "File too large"
expect_exit 1 dd if=/dev/zero of="$M/vm1.img" bs=4k count=1 seek=$((16 << 28)) conv=notrunc status=none
expect_stderr "File too large"
expect_exit 1 fallocate -l 17T "$M/vm1.img"
expect_stderr "File too large"
[ "$(stat -c %s "$M/vm1.img")" = 1048576 ] || fail "a refused resize changed the size"
[ "$(status_field "$D" vm1.img log_end)" = "$end" ] || fail "a refused change was appended to the log"
# up to the limit is fine: 16 TiB - 4 KiB
truncate -s $(((16 << 40) - 4096)) "$M/vm3.img" || fail "truncate to ext4's limit"
dd if=/dev/urandom of="$M/vm1.img" bs=64k count=4 conv=notrunc status=none || fail "a write after the refusals"

# --- vm2 (and vm3) grow past what the follower's file system holds
# (4 TiB - 1 KiB)
truncate -s 5T "$M/vm2.img" || fail "truncate vm2.img to 5 TiB on a 16 TiB file system"
dd if=/dev/urandom of="$M/vm1.img" bs=64k count=4 seek=8 conv=notrunc status=none
expect_exit 1 "$REPDISK" follow --once --log "$LOG" "$R"
expect_stderr "^repdisk follow: follow: vm2.img: .*apply RESIZE at position [0-9]+: File too large; this disk stops there"
expect_stderr "^repdisk follow: follow: vm3.img: .*File too large; this disk stops there"
expect_stderr "2 disks stopped at a record that cannot be applied"
cmp "$D/vm1.img" "$R/vm1.img" || fail "the follower's other disk did not go on"
[ "$(stat -c %s "$R/vm2.img")" = 1048576 ] || fail "the stopped disk changed"

# a follower running on: vm1 keeps converging, vm2 stays where it stopped
start_follower "$LOG" "$R"
dd if=/dev/urandom of="$M/vm1.img" bs=64k count=4 seek=12 conv=notrunc status=none
converged "$D" "$R" vm1.img
kill -0 "$FOLLOWER_PID" 2>/dev/null || fail "the follower exited: $(cat "$T/follower-replica.log")"
kill -TERM "$FOLLOWER_PID"
wait "$FOLLOWER_PID" 2>/dev/null || true
unmount_disks "$M"

# --- a mount of that replica (a takeover) serves vm1 and keeps vm2
# read-only, instead of refusing every disk
M2=$T/mnt2
mkdir -p "$M2"
cleanup_mount "$M2"
expect_exit 0 "$REPDISK" mount --log "$LOG" --takeover "$R" "$M2"
expect_stderr "^repdisk: vm2.img: .*File too large; this disk is read-only \(reads come from its image, writes fail with EIO\)"
dd if=/dev/urandom of="$M2/vm1.img" bs=64k count=1 conv=notrunc status=none || fail "vm1.img is not writable"
cmp -n 1048576 "$M2/vm2.img" "$R/vm2.img" || fail "vm2.img does not read from its image"
expect_exit 1 dd if=/dev/zero of="$M2/vm2.img" bs=4k count=1 conv=notrunc,fsync status=none
expect_stderr "Input/output error"
unmount_disks "$M2"
say "ok"
