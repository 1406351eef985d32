#!/bin/bash
# An upgrade from a repdisk that wrote record versions 1 and 2 (before
# version 3): the log it left (made here by writing a log and rewriting
# every record in version 1, the bytes the old writer wrote) is read by
# log dump, a follower and the mount, which then writes on in version 3,
# so the log holds both.  Replicas made from the old log, from the mixed
# log, and from nothing converge with the primary byte for byte.
. "$(dirname "$0")/../lib/lib.sh"
requires cmp truncate

D=$T/data M=$T/mnt R=$T/replica R2=$T/replica2
LOG=file:$D/.repdisk/log
head -c 1048576 /dev/urandom > "$T/a"
head -c 65536 /dev/urandom > "$T/b"
head -c 65536 /dev/urandom > "$T/c"

# what the old version wrote
mount_disks "$D" "$M"
truncate -s 4M "$M/vm1.img" "$M/vm2.img"
dd if="$T/a" of="$M/vm1.img" bs=64k conv=notrunc status=none
dd if="$T/b" of="$M/vm2.img" bs=64k seek=3 conv=notrunc status=none
unmount_disks "$M"
"$RL_TESTWRITER" downgrade "$D/.repdisk/log" || fail "downgrade"
"$REPDISK" log dump --log "$LOG" > "$T/old.dump" 2> "$T/dump.err" ||
	fail "log dump of the old log: $(cat "$T/dump.err")"
old=$(wc -l < "$T/old.dump")
[ "$old" -gt 4 ] || fail "the old log has $old records"
grep -Ev " version=1( |$)" "$T/old.dump" && fail "the old log holds records of another version"
grep -q " time=" "$T/old.dump" && fail "a version-1 record with a time"

# a replica of the old log, by today's follower
expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$R"
cmp "$D/vm1.img" "$R/vm1.img" || fail "vm1.img: the follower of the old log differs"
cmp "$D/vm2.img" "$R/vm2.img" || fail "vm2.img: the follower of the old log differs"

# today's mount takes the old log over and writes on, in version 3
mount_disks "$D" "$M"
cmp -n 1048576 "$T/a" "$M/vm1.img" || fail "vm1.img lost the old version's data"
dd if="$T/c" of="$M/vm1.img" bs=64k seek=20 conv=notrunc status=none
mv "$M/vm2.img" "$M/vm3.img" || fail "rename after the upgrade"
dd if="$T/c" of="$M/vm3.img" bs=64k conv=notrunc status=none
unmount_disks "$M"
"$REPDISK" log dump --log "$LOG" > "$T/new.dump" 2> "$T/dump.err" ||
	fail "log dump of the mixed log: $(cat "$T/dump.err")"
grep -cE " version=1( |$)" "$T/new.dump" | grep -qx "$old" ||
	fail "the old records are not all there in version 1"
grep " version=3 " "$T/new.dump" | grep -q "^vm3.img .* WRITE " ||
	fail "no version-3 WRITE after the upgrade: $(tail -3 "$T/new.dump")"
grep -q "^catalog .* RENAME .* version=3 time=20[0-9][0-9]-" "$T/new.dump" ||
	fail "the rename is not a version-3 record with its writer's time"

# the old replica catches up across the versions; a new one from nothing
expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$R"
expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$R2"
for r in "$R" "$R2"; do
	[ "$(ls "$r" | tr '\n' ' ')" = "vm1.img vm3.img " ] ||
		fail "$r holds: $(ls "$r")"
	expect_exit 0 "$REPDISK" verify -q "$D" "$r"
done
cmp -n 65536 "$T/c" "$R2/vm3.img" || fail "vm3.img: the new writes are not in the replica"
say "ok: $old records of version 1, then version 3"
