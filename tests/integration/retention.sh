#!/bin/bash
# File log retention: a segment is deleted once the mount's checkpoint and
# every follower that reports to the log are past it, never before.
#  - a named follower stopped while the writer goes on keeps the segments
#    it needs: restarted, it catches up to identical bytes;
#  - once it is past them, they go (and the mount log says so);
#  - a new replica that needs deleted records gets an error saying it must
#    be reseeded, and `repdisk seed` plus follow gets it there;
#  - `repdisk forget` lets retention pass a follower gone for good;
#  - --keep-log keeps everything;
#  - on Kafka, retention is the topic's: a follower that needs records the
#    topic no longer has (deleted with kafka-delete-records) is told to
#    reseed, and seed plus follow gets it there.
. "$(dirname "$0")/../lib/lib.sh"
requires cmp

data=$T/data mnt=$T/mnt LOG=file:$T/data/.repdisk/log
segs() { ls "$data"/.repdisk/log/disks/*/ | grep -c '\.seg$'; }
first_seg() { ls "$data"/.repdisk/log/disks/*/ | grep '\.seg$' | head -1 | sed 's/^0*//; s/\.seg$//; s/^$/0/'; }
write_mb() { # MB SEEK-MB
	dd if=/dev/urandom of="$mnt/vm1.img" bs=1M count="$1" seek="$2" \
		oflag=direct conv=notrunc status=none
}
# eventually CONDITION...: true within 20 s (retention runs once a second,
# after checkpoints, and followers report at most once a second)
eventually() {
	for _ in $(seq 200); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
fewer_segs() { [ "$(segs)" -lt "$1" ]; }
first_seg_past() { [ "$(first_seg)" -gt "$1" ]; }
follower_pos() { # NAME: its reported position for vm1.img
	"$REPDISK" status --log "$LOG" "$data" |
		awk -v n="$1" '$1 == n && $2 == "vm1.img" { print $3 }'
}

mount_disks "$data" "$mnt" --segment-mb 1
truncate -s 64M "$mnt/vm1.img"
start_bg "$T/follower-f1.log" "$REPDISK" follow --log "$LOG" --name f1 "$T/f1"
f1=$!
write_mb 4 0
converged "$data" "$T/f1" vm1.img
kill -TERM "$f1"; wait "$f1" 2>/dev/null || true
pos=$(follower_pos f1)
[ -n "$pos" ] || fail "f1 reported no position: $("$REPDISK" status --log "$LOG" "$data")"

# the writer goes on; f1's segments stay
write_mb 12 8
sleep 2.5	# a checkpoint, and retention after it
[ "$(first_seg)" -le "$pos" ] || fail "a segment f1 needs (position $pos) was deleted: first is $(first_seg)"
start_bg "$T/follower-f1b.log" "$REPDISK" follow --log "$LOG" --name f1 "$T/f1"
f1=$!
converged "$data" "$T/f1" vm1.img

# f1 is past them now: they go
before=$(segs)
write_mb 1 30
eventually fewer_segs "$before" || fail "no segment deleted: $(segs) of $before left"
grep -q "vm1.img: deleted [0-9]* log segments below position [0-9]* (applied here and on all 1 followers)" \
	"$data/.repdisk/mount.log" || fail "the mount log does not report the deletion"
[ "$(first_seg)" -gt 0 ] || fail "the first segment is still there"

# a new replica cannot catch up from the log: it is told to reseed
expect_exit 1 "$REPDISK" follow --once --log "$LOG" --name f2 "$T/f2"
expect_stderr "vm1.img: .*no longer in the log, which now starts at position [0-9]+ .*must be reseeded from another one \(repdisk seed --from\)"
rm -rf "$T/f2"
expect_exit 0 "$REPDISK" seed -q --name f2 --from "$data" "$T/f2"
start_bg "$T/follower-f2.log" "$REPDISK" follow --log "$LOG" --name f2 "$T/f2"
write_mb 1 40
converged "$data" "$T/f2" vm1.img
converged "$data" "$T/f1" vm1.img

# f1 gone for good: stopped, it holds retention back until forgotten
kill -TERM "$f1"; wait "$f1" 2>/dev/null || true
pos=$(follower_pos f1)
write_mb 8 0
sleep 2.5
[ "$(first_seg)" -le "$pos" ] || fail "retention passed a stopped follower"
expect_exit 0 "$REPDISK" forget --log "$LOG" f1
grep -q "^forgot follower f1$" "$T/stdout" || fail "forget: $(cat "$T/stdout")"
"$REPDISK" status --log "$LOG" "$data" | grep -q "^f1 " && fail "status still lists f1"
write_mb 1 50
eventually first_seg_past "$pos" || fail "retention still keeps what the forgotten f1 needed"
converged "$data" "$T/f2" vm1.img
unmount_disks "$mnt"

# --keep-log: nothing is deleted
mount_disks "$T/keep" "$T/kmnt" --segment-mb 1 --keep-log
truncate -s 16M "$T/kmnt/k.img"
dd if=/dev/urandom of="$T/kmnt/k.img" bs=1M count=6 oflag=direct conv=notrunc status=none
sleep 2.5
[ "$(ls "$T"/keep/.repdisk/log/disks/*/ | grep '\.seg$' | head -1)" = 00000000000000000000.seg ] ||
	fail "--keep-log deleted a segment"
expect_exit 0 "$REPDISK" follow --once --log "file:$T/keep/.repdisk/log" "$T/keep-replica"
cmp "$T/keep/k.img" "$T/keep-replica/k.img" || fail "the kept log does not replay to the same bytes"

# --- Kafka: the topic's retention -----------------------------------------
# Retention deletes a topic's oldest records; DeleteRecords (Kafka's
# kafka-delete-records) does the same at once, up to a chosen offset.
use_kafka_cluster
KLOG="kafka:$KAFKA_BOOTSTRAP?ns=$TEST_NAME-$$"
mount_disks "$T/kdata" "$T/kmnt2" --log "$KLOG"
truncate -s 64M "$T/kmnt2/vm1.img"
dd if=/dev/urandom of="$T/kmnt2/vm1.img" bs=256k count=48 oflag=direct conv=notrunc status=none
uuid=$(log_status_field "$KLOG" "$T/kdata" vm1.img uuid)
cat > "$T/delete.json" <<EOF
{"version": 1, "partitions": [{"topic": "repdisk.$TEST_NAME-$$.disk.$uuid", "partition": 0, "offset": 20}]}
EOF
kcluster admin kafka-delete-records --offset-json-file "$T/delete.json" > "$T/delete.out" 2>&1 ||
	fail "kafka-delete-records: $(cat "$T/delete.out")"
expect_exit 1 "$REPDISK" follow --once --log "$KLOG" "$T/kf"
expect_stderr "vm1.img: log kafka: topic repdisk\.retention-[0-9]+\.disk\.[-0-9a-f]+ offset 0 \(position 0\): no longer in the log, which now starts at position 20 .*must be reseeded from another one \(repdisk seed --from\)"
rm -rf "$T/kf"
# the source's checkpoint (taken every second) past what was deleted
for _ in $(seq 100); do
	lag=$("$REPDISK" status --log "$KLOG" "$T/kdata" | awk '$1 == "vm1.img" { print $6 }')
	[ "$lag" = 0 ] && break
	sleep 0.1
done
expect_exit 0 "$REPDISK" seed -q --from "$T/kdata" --log "$KLOG" "$T/kf"
unmount_disks "$T/kmnt2"
expect_exit 0 "$REPDISK" follow --once --log "$KLOG" "$T/kf"
expect_exit 0 "$REPDISK" verify -q "$T/kdata" "$T/kf"
say "ok"
