#!/bin/bash
# An image that is gone while its checkpoint says it held the log up to
# some position is never silently recreated empty (retention may have
# deleted what a replay would need): the mount and `follow --once` refuse,
# name the image and point to repdisk seed, and create nothing.  Once the
# file is back, both go on.
. "$(dirname "$0")/../lib/lib.sh"
requires cmp

D=$T/data M=$T/mnt R=$T/replica LOG=file:$T/data/.repdisk/log
mount_disks "$D" "$M"
truncate -s 4M "$M/vm1.img"
head -c 1M /dev/urandom > "$T/data.bin"
dd if="$T/data.bin" of="$M/vm1.img" conv=notrunc status=none
unmount_disks "$M"
expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$R"
cmp "$D/vm1.img" "$R/vm1.img" || fail "the replica differs"

mv "$D/vm1.img" "$T/vm1.saved"
expect_exit 1 "$REPDISK" mount "$D" "$M"
expect_stderr "image $D/vm1.img is missing, but its checkpoint says it held the log up to position [0-9]+: refusing to recreate it empty; .*repdisk seed"
grep -qs " $M fuse" /proc/mounts && fail "mounted with an image missing"
[ ! -e "$D/vm1.img" ] || fail "the refused mount recreated the image"

mv "$R/vm1.img" "$T/vm1.replica"
expect_exit 1 "$REPDISK" follow --once --log "$LOG" "$R"
expect_stderr "image $R/vm1.img is missing.*repdisk seed"
[ ! -e "$R/vm1.img" ] || fail "the refused follow recreated the image"

mv "$T/vm1.saved" "$D/vm1.img"
mv "$T/vm1.replica" "$R/vm1.img"
mount_disks "$D" "$M"
cmp -n 1048576 "$T/data.bin" "$M/vm1.img" || fail "the disk changed"
expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$R"
say "ok"
