#!/bin/bash
# Catalog changes while the Kafka cluster has no quorum (2 of 3 brokers
# of a development cluster down, min.insync 2): the first fails with EIO
# once the write timeout has passed, and retries fail at once, appending
# nothing, while the catalog may be behind the log ("possibly
# persisted"); once the brokers are back the mount catches up by itself
# and every kind of change works again with no remount: the catalog
# never jams.  A remount and a follower then agree on the disks.
. "$(dirname "$0")/../lib/lib.sh"
requires fusermount3 truncate cmp

start_devbroker
LOG="kafka:$DEVBROKER_BOOTSTRAP?ns=outage-$$"
D=$T/data M=$T/mnt R=$T/replica
ctl() {
	"$REPDISK" devbroker ctl "$DEVBROKER_CTL" "$@" > "$T/ctl.out" 2>&1 ||
		fail "devbroker ctl $*: $(cat "$T/ctl.out")"
}

mount_disks "$D" "$M" --log "$LOG" --write-timeout 2
truncate -s 1M "$M/vm1.img"
head -c 65536 /dev/urandom > "$T/a"
dd if="$T/a" of="$M/vm1.img" conv=notrunc status=none || fail "first write"

ctl down 1
ctl down 2
for try in 1 2; do
	expect_exit 1 truncate -s 1M "$M/vm2.img"
	expect_stderr "Input/output error"
done
expect_exit 1 mv "$M/vm1.img" "$M/vm3.img"
grep -q "catalog: log append failed" "$D/.repdisk/mount.log" ||
	fail "the mount log does not say the catalog append failed: $(tail -3 "$D/.repdisk/mount.log")"
cmp -n 65536 "$T/a" "$M/vm1.img" || fail "reads stopped without a quorum"
# the catch-up either catches up (reads need only the leader, which the
# cluster moved to the live broker) or gives up after the write timeout,
# and tries again: never waits for good.  (librdkafka 2.0.2's watermark
# query ignores its timeout while the broker it asks is down: it held
# the catalog lock until the cluster came back.)
caught='(\.catalog: high watermark|catalog: up to date with the log again)'
wait_for_line "$D/.repdisk/mount.log" "$caught" 60 ||
	fail "the catalog's catch-up waits without a quorum: $(grep -v '^%' "$D/.repdisk/mount.log" | tail -3)"

ctl up 1
ctl up 2
# the mount catches its catalog up with the log by itself
wait_for_line "$D/.repdisk/mount.log" "catalog: up to date with the log again" 30 ||
	fail "the catalog did not catch up after the outage: $(grep -v '^%' "$D/.repdisk/mount.log" | tail -3)"
truncate -s 1M "$M/vm2.img" || fail "create once the cluster is back"
mv "$M/vm1.img" "$M/vm3.img" || fail "rename once the cluster is back"
chmod 600 "$M/vm3.img" || fail "chmod once the cluster is back"
truncate -s 1M "$M/vm4.img" && rm "$M/vm4.img" || fail "create and delete once the cluster is back"
[ "$(ls "$M" | tr '\n' ' ')" = "vm2.img vm3.img " ] || fail "disks: $(ls "$M")"
unmount_disks "$M"
mount_disks "$D" "$M" --log "$LOG" --write-timeout 2
[ "$(ls "$M" | tr '\n' ' ')" = "vm2.img vm3.img " ] || fail "after a remount: $(ls "$M")"
cmp -n 65536 "$T/a" "$M/vm3.img" || fail "vm3.img lost its data"
unmount_disks "$M"
expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$R"
[ "$(ls "$R" | tr '\n' ' ')" = "vm2.img vm3.img " ] || fail "the follower has: $(ls "$R")"
cmp "$D/vm3.img" "$R/vm3.img" || fail "the follower's vm3.img differs"
say "ok"
