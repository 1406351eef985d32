#!/bin/bash
# A failed fdatasync of an image is sticky (the kernel reports a lost
# writeback once; a later fdatasync can "succeed" over pages that never
# reached the disk): with tests/tools/faultshim.c failing the image's
# fdatasync, the checkpoint that needed it is not written, the mount log
# says so once, and the disk takes no more writes (EIO) even after the
# fault is gone, while other disks go on.  A remount replays the log from
# the last good checkpoint: every acknowledged write is there, and the
# refused one is not.  An image whose fdatasync fails while the mount
# opens it is that disk's fault alone: it is served read-only, the others
# as usual.  A failed fdatasync of the log's segment is sticky in the same
# way, for the whole log, until it is reopened.
. "$(dirname "$0")/../lib/lib.sh"
requires dd cmp

D=$T/data M=$T/mnt CTL=$T/faults
set_faults "$CTL"
with_faults "$CTL" mount_disks "$D" "$M"
truncate -s 4M "$M/vm1.img" "$M/vm2.img"
for b in A B C D; do head -c 65536 /dev/urandom > "$T/$b"; done
uuid=$(status_field "$D" vm1.img uuid)
ckpt=$D/.repdisk/ckpt/$uuid

# ckpt_pos: the position vm1's checkpoint holds
ckpt_pos() { sed -n 's/^next_pos //p' "$ckpt"; }
# until_checkpointed: vm1's checkpoint reaches the log's end (10 s at most)
until_checkpointed() {
	for _ in $(seq 100); do
		[ "$(ckpt_pos)" = "$(status_field "$D" vm1.img log_end)" ] && return 0
		sleep 0.1
	done
	fail "vm1.img was not checkpointed at the log's end"
}

dd if="$T/A" of="$M/vm1.img" bs=64k seek=0 conv=notrunc status=none || fail "write A"
until_checkpointed
good=$(ckpt_pos)

set_faults "$CTL" "eio $D/vm1.img"
dd if="$T/B" of="$M/vm1.img" bs=64k seek=1 conv=notrunc status=none ||
	fail "write B (before any fdatasync failed) was refused"
wait_for_line "$D/.repdisk/mount.log" "vm1.img: image .*fdatasync: Input/output error" 10
grep -q "^repdisk: vm1.img: image $D/vm1.img: fdatasync: Input/output error; what was applied since the last checkpoint may not be on disk, so the image takes no more records and writes fail with EIO" "$D/.repdisk/mount.log" ||
	fail "no message for the failed fdatasync: $(tail -3 "$D/.repdisk/mount.log")"

# the fault is gone, the failure is not
set_faults "$CTL"
expect_exit 1 dd if="$T/C" of="$M/vm1.img" bs=64k seek=2 conv=notrunc status=none
expect_stderr "Input/output error"
dd if="$T/D" of="$M/vm2.img" bs=64k conv=notrunc status=none || fail "another disk stopped too"
sleep 1.5	# the checkpoint thread runs once a second
[ "$(ckpt_pos)" = "$good" ] || fail "vm1's checkpoint moved past the failed fdatasync: $(ckpt_pos), was $good"
[ "$(grep -c "fdatasync: Input/output error" "$D/.repdisk/mount.log")" = 1 ] ||
	fail "the failure was not said once: $(grep -c fdatasync "$D/.repdisk/mount.log") lines"

# a remount replays from the last good checkpoint
unmount_disks "$M"
mount_disks "$D" "$M"
cmp -n 65536 "$T/A" "$M/vm1.img" || fail "acknowledged write A lost"
cmp -n 65536 "$T/B" <(dd if="$M/vm1.img" bs=64k skip=1 count=1 status=none) ||
	fail "acknowledged write B lost"
cmp -n 65536 /dev/zero <(dd if="$M/vm1.img" bs=64k skip=2 count=1 status=none) ||
	fail "the refused write C is on the disk"
cmp -n 65536 "$T/D" "$M/vm2.img" || fail "vm2.img lost its write"
dd if="$T/C" of="$M/vm1.img" bs=64k seek=2 conv=notrunc status=none || fail "vm1.img takes writes again after the remount"

# --- the image fails as the mount opens it: that disk is read-only, the
# others are served
unmount_disks "$M"
set_faults "$CTL" "eio $D/vm1.img"
expect_exit 0 with_faults "$CTL" "$REPDISK" mount "$D" "$M"
expect_stderr "^repdisk: vm1.img: image $D/vm1.img: fdatasync: Input/output error.*; this disk is read-only \(reads come from its image, writes fail with EIO\)"
cmp -n 65536 "$T/C" <(dd if="$M/vm1.img" bs=64k skip=2 count=1 status=none) ||
	fail "vm1.img read back wrong while read-only"
expect_exit 1 dd if="$T/D" of="$M/vm1.img" bs=64k seek=3 conv=notrunc status=none
expect_stderr "Input/output error"
dd if="$T/A" of="$M/vm2.img" bs=64k seek=1 conv=notrunc status=none || fail "vm2.img refused a write beside a failed vm1.img"
set_faults "$CTL"
unmount_disks "$M"
mount_disks "$D" "$M"
dd if="$T/C" of="$M/vm1.img" bs=64k seek=2 conv=notrunc status=none || fail "vm1.img takes no writes once its disk answers again"
cmp -n 65536 "$T/A" <(dd if="$M/vm2.img" bs=64k skip=1 count=1 status=none) || fail "vm2.img lost the write made beside a failed vm1.img"

# --- the log's fdatasync fails: sticky too, for every disk of the log
unmount_disks "$M"
with_faults "$CTL" mount_disks "$D" "$M"
set_faults "$CTL" "eio /disks/"
expect_exit 1 dd if="$T/D" of="$M/vm1.img" bs=64k seek=3 conv=notrunc status=none
expect_stderr "Input/output error"
grep -q "fdatasync failed: Input/output error; the log refuses appends until it is reopened" "$D/.repdisk/mount.log" ||
	fail "no message for the log's failed fdatasync: $(tail -3 "$D/.repdisk/mount.log")"
set_faults "$CTL"
expect_exit 1 dd if="$T/D" of="$M/vm2.img" bs=64k seek=3 conv=notrunc status=none
unmount_disks "$M"
mount_disks "$D" "$M"
for b in A B C; do
	i=$(( $(printf '%d' "'$b") - 65 ))
	cmp -n 65536 "$T/$b" <(dd if="$M/vm1.img" bs=64k skip="$i" count=1 status=none) ||
		fail "acknowledged write $b lost after the log's fdatasync failed"
done
dd if="$T/D" of="$M/vm1.img" bs=64k seek=3 conv=notrunc status=none || fail "no write after reopening the log"
say "ok"
