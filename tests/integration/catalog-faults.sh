#!/bin/bash
# A catalog change that fails never jams the catalog, and a refused one
# changes nothing.  The data directory is a small tmpfs of its own (which,
# unlike a small ext4, really has no room left for a few bytes once
# full), filled up; the log lies elsewhere, so appends succeed and the
# apply (the catalog's state file) fails with ENOSPC:
#  - the create is answered EIO; retried, and a rename too, they append
#    nothing while the catalog is behind the log (before, a second CREATE
#    of the name went in, and every change, remount and follower failed
#    for good);
#  - once space is freed, the change that was durable takes effect by
#    itself, and every kind of change works again;
#  - a directory in the way of a new disk's image is refused before the
#    log is touched;
# then a remount and a follower find the same disks, byte for byte.
. "$(dirname "$0")/../lib/lib.sh"
requires truncate cmp

mkdir -p "$T/small"
mount -t tmpfs -o size=8M,mode=0755 tmpfs "$T/small" || fail "mount tmpfs"
cleanup "umount -l '$T/small'"
D=$T/small/data M=$T/mnt R=$T/replica LOG=file:$T/log
mkdir -p "$D"

# catalog_bytes: how much the catalog stream holds (what was appended)
catalog_bytes() { cat "$T"/log/catalog/*.seg | wc -c; }
wait_for() { # FILE: up to 10 s
	for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done
	return 1
}

mount_disks "$D" "$M" --log "$LOG"
truncate -s 1M "$M/vm1.img"
head -c 65536 /dev/urandom > "$T/block"
dd if="$T/block" of="$M/vm1.img" conv=notrunc status=none

# --- the data directory fills up
dd if=/dev/zero of="$T/small/filler" bs=1M status=none 2>/dev/null || true
expect_exit 1 truncate -s 1M "$M/vm2.img"
expect_stderr "Input/output error"
grep -q "catalog.*No space left on device; the change is in the log and takes effect here once it can be applied" \
	"$D/.repdisk/mount.log" || fail "no message for the failed apply: $(tail -3 "$D/.repdisk/mount.log")"
bytes=$(catalog_bytes)
expect_exit 1 truncate -s 1M "$M/vm2.img"
expect_exit 1 mv "$M/vm1.img" "$M/vm3.img"
expect_exit 1 chmod 600 "$M/vm1.img"
[ "$(catalog_bytes)" = "$bytes" ] || fail "refused changes were appended to the catalog"
cmp -n 65536 "$T/block" "$M/vm1.img" || fail "vm1.img changed"

# --- space again: the durable create takes effect by itself
rm -f "$T/small/filler"
wait_for "$M/vm2.img" || fail "the create that was durable did not take effect"
grep -q "catalog: up to date with the log again" "$D/.repdisk/mount.log" || fail "no message for the catalog catching up"
truncate -s 2M "$M/vm2.img" || fail "truncate vm2.img once it exists"
mv "$M/vm1.img" "$M/vm3.img" || fail "rename after the fault"
chmod 600 "$M/vm3.img" || fail "chmod after the fault"
truncate -s 1M "$M/vm4.img" && rm "$M/vm4.img" || fail "create and delete after the fault"
[ "$(ls "$M" | tr '\n' ' ')" = "vm2.img vm3.img " ] || fail "disks: $(ls "$M")"

# --- a directory in the way of an image: refused, nothing appended
mkdir "$D/vm5.img"
bytes=$(catalog_bytes)
expect_exit 1 truncate -s 1M "$M/vm5.img"
expect_stderr "File exists"
[ "$(catalog_bytes)" = "$bytes" ] || fail "a refused create was appended"
grep -q "vm5.img: $D/vm5.img is in the way" "$D/.repdisk/mount.log" || fail "no message for the directory in the way"
rmdir "$D/vm5.img"
truncate -s 1M "$M/vm5.img" || fail "create once the way is clear"

# --- a remount and a follower agree
unmount_disks "$M"
mount_disks "$D" "$M" --log "$LOG"
[ "$(ls "$M" | tr '\n' ' ')" = "vm2.img vm3.img vm5.img " ] || fail "after a remount: $(ls "$M")"
cmp -n 65536 "$T/block" "$M/vm3.img" || fail "vm3.img lost its data"
[ "$(stat -c %s "$M/vm2.img")" = 2097152 ] || fail "vm2.img size"
unmount_disks "$M"
expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$R"
for n in vm2.img vm3.img vm5.img; do
	cmp "$D/$n" "$R/$n" || fail "the follower's $n differs"
done
[ "$(stat -c %a "$R/vm3.img")" = 600 ] || fail "the follower's vm3.img mode"
say "ok"
