#!/bin/bash
# A full data directory under writes (a small tmpfs, which really has no
# room left once full), as a hypervisor's disk fills up:
#  - log and images on it: a write that cannot be appended fails with EIO
#    and leaves nothing half-appended; once space is freed, writes go on
#    with no remount;
#  - the log elsewhere, the images on it: a write whose record is durable
#    but cannot be applied fails with EIO; once space is freed, the next
#    write brings the image up to date with the log first;
# every acknowledged write is there afterwards, a remount finds the same
# bytes, and a follower converges to them.
. "$(dirname "$0")/../lib/lib.sh"
requires fio cmp

mkdir -p "$T/small"
mount -t tmpfs -o size=24M,mode=0755 tmpfs "$T/small" || fail "mount tmpfs"
cleanup "umount -l '$T/small'"

# round NAME MOUNT-ARGS...: one data directory on the tmpfs
round() {
	local name=$1 D=$T/small/$1 M=$T/mnt-$1 R=$T/replica-$1 log
	shift
	mount_disks "$D" "$M" "$@"
	log=$(sed -n 's/.*(log \(file:[^)]*\)).*/\1/p' "$D/.repdisk/mount.log" | head -1)
	truncate -s 64M "$M/vm1.img"
	head -c 1M /dev/urandom > "$T/a"
	dd if="$T/a" of="$M/vm1.img" bs=1M conv=notrunc status=none || fail "$name: first write"

	# fill what is left, then write: EIO, and nothing acknowledged lost
	dd if=/dev/zero of="$T/small/filler" bs=1M status=none 2>/dev/null || true
	expect_exit 1 dd if=/dev/urandom of="$M/vm1.img" bs=1M count=8 seek=4 \
		oflag=direct conv=notrunc status=none
	expect_stderr "Input/output error"
	cmp -n 1048576 "$T/a" "$M/vm1.img" || fail "$name: the acknowledged write changed"
	grep -Eq "No space left on device" "$D/.repdisk/mount.log" ||
		fail "$name: the mount log does not say the disk is full: $(tail -3 "$D/.repdisk/mount.log")"

	# space again: writes go on, no remount
	rm -f "$T/small/filler"
	head -c 1M /dev/urandom > "$T/b"
	dd if="$T/b" of="$M/vm1.img" bs=1M seek=2 oflag=direct conv=notrunc status=none ||
		fail "$name: no write after space was freed"
	FIO_FILE=$M/vm1.img fio --name=after --filename="$M/vm1.img" --rw=randwrite \
		--bs=4k --size=4M --offset=32M --ioengine=libaio --direct=1 --iodepth=8 \
		--verify=crc32c --do_verify=1 --verify_fatal=1 > "$T/fio.out" 2>&1 ||
		{ cat "$T/fio.out"; fail "$name: fio after the disk filled"; }
	unmount_disks "$M"
	mount_disks "$D" "$M" "$@"
	cmp -n 1048576 "$T/a" "$M/vm1.img" || fail "$name: write a lost after remount"
	cmp -n 1048576 "$T/b" <(dd if="$M/vm1.img" bs=1M skip=2 count=1 status=none) ||
		fail "$name: write b lost after remount"
	unmount_disks "$M"
	expect_exit 0 "$REPDISK" follow --once --log "$log" "$R"
	cmp "$D/vm1.img" "$R/vm1.img" || fail "$name: the follower differs"
	rm -rf "$D"
	say "$name: ok"
}

round log-on-full-disk
round log-elsewhere --log "file:$T/log"
say "ok"
