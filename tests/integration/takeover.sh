#!/bin/bash
# Takeover with fencing, on two data directories standing for two hosts.
#
# Kafka (the old writer keeps writing, nothing stops it): host-b's
# follower stops, a plain mount of its data directory is refused (the disk
# belongs to host-a) and changes nothing, `mount --takeover` claims it.
# From then on the old writer gets no write acknowledged: ackwriter on
# host-a's mount fails with EROFS, host-a's log names the new owner, and
# every write ackwriter saw acknowledged is on host-b's image (ackwriter
# verify: no acknowledged write lost, none from after the claim applied).
# All replicas end identical (repdisk verify).
#
# File log: the log's lock already keeps a second writer out while the
# first lives; after host-a's daemon dies (SIGKILL), host-b takes over
# with --takeover, and host-a cannot simply mount again.
. "$(dirname "$0")/../lib/lib.sh"
requires timeout

# --- Kafka ---------------------------------------------------------------
use_kafka_cluster
LOG="kafka:$KAFKA_BOOTSTRAP?ns=$TEST_NAME-$$&timeout_ms=5000"
A=$T/host-a B=$T/host-b

mount_disks "$A" "$T/ma" --log "$LOG" --host host-a
truncate -s 64M "$T/ma/vm1.img"
start_follower "$LOG" "$B"
follower=$FOLLOWER_PID
# 4 KiB writes flat out, from 4 threads
start_bg "$T/ackwriter.log" "$ACKWRITER" write "$T/ma/vm1.img" "$T/acks" \
	--threads 4 --blocks 256 --bs 4096
writer=$!
sleep 2
kill -TERM "$follower"
wait "$follower" 2>/dev/null || true
epoch_before=$(status_field "$B" vm1.img epoch)

# a plain mount: refused, names the owner, appends nothing
mkdir -p "$T/mb"
expect_exit 1 "$REPDISK" mount --log "$LOG" --host host-b "$B" "$T/mb"
expect_stderr "in use by another writer: its catalog belongs to host-a:[^ ]*/host-a \(epoch 1\).*--takeover"
grep -qs " $T/mb fuse" /proc/mounts && fail "a refused mount is mounted"
[ "$(status_field "$B" vm1.img epoch)" = "$epoch_before" ] || fail "a refused mount claimed the disk"
kill -0 "$writer" || fail "the old writer stopped before the takeover: $(cat "$T/ackwriter.log")"

start=$(date +%s.%N)
mount_disks "$B" "$T/mb" --log "$LOG" --host host-b --takeover
say "host-b serves after $(echo "$(date +%s.%N) - $start" | bc) s"
[ "$(status_field "$B" vm1.img epoch)" = 2 ] || fail "host-b did not claim epoch 2"

# the old writer is fenced: its next write fails, and it says by whom
for _ in $(seq 300); do kill -0 "$writer" 2>/dev/null || break; sleep 0.1; done
kill -0 "$writer" 2>/dev/null && fail "host-a still acknowledges writes 30 s after the takeover"
grep -q "write failed: Read-only file system" "$T/ackwriter.log" ||
	fail "host-a's writes should fail with EROFS: $(cat "$T/ackwriter.log")"
grep -q "vm1.img: fenced: the disk was claimed by epoch 2 (host host-b:[^ ]*/host-b)" "$A/.repdisk/mount.log" ||
	fail "host-a's log does not name the new owner"
dd if=/dev/zero of="$T/ma/vm1.img" bs=4k count=1 oflag=direct conv=notrunc 2> "$T/dd.err" &&
	fail "host-a acknowledged a write after the takeover"
grep -q "Read-only file system" "$T/dd.err" || fail "dd on host-a: $(cat "$T/dd.err")"
# nor catalog changes: the catalog was claimed too
truncate -s 1M "$T/ma/late.img" 2> "$T/truncate.err" &&
	fail "host-a created a disk after the takeover"
grep -q "Read-only file system" "$T/truncate.err" || fail "truncate on host-a: $(cat "$T/truncate.err")"
grep -q "catalog: fenced: the log's catalog was claimed by host-b:" "$A/.repdisk/mount.log" ||
	fail "host-a's log does not say its catalog was claimed"
[ -e "$T/mb/late.img" ] && fail "host-a's late disk appeared on host-b"
say "$(wc -l < "$T/acks") writes acknowledged to host-a"

# host-b writes (past ackwriter's blocks) and holds every acknowledged write
dd if=/dev/urandom of="$T/mb/vm1.img" bs=64k count=16 seek=100 oflag=direct conv=notrunc status=none ||
	fail "host-b cannot write after its takeover"
"$ACKWRITER" verify "$T/mb/vm1.img" "$T/acks" --threads 2 --blocks 256 --bs 4096 ||
	fail "an acknowledged write is missing on host-b, or a fenced one was applied"

# every replica the same: host-a catches up as a follower, a third is seeded
unmount_disks "$T/mb"
unmount_disks "$T/ma"
expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$A"
expect_exit 0 "$REPDISK" seed -q --from "$B" --log "$LOG" "$T/host-c"
for r in "$A" "$T/host-c"; do
	expect_exit 0 "$REPDISK" verify -q "$B" "$r"
	grep -q "^vm1.img: identical" "$T/stdout" || fail "$r: $(cat "$T/stdout")"
done

# --- file log --------------------------------------------------------------
FA=$T/file-a FB=$T/file-b FLOG=file:$T/file-a/.repdisk/log
mount_disks "$FA" "$T/fma" --host host-a
dd if=/dev/urandom of="$T/fma/d.img" bs=64k count=8 oflag=direct status=none
expect_exit 0 "$REPDISK" follow --once --log "$FLOG" "$FB"
mkdir -p "$T/fmb"
expect_exit 1 "$REPDISK" mount --log "$FLOG" --host host-b --takeover "$FB" "$T/fmb"
expect_stderr "already open for writing by another process \(pid [0-9]+\)"	# the lock is a fence of its own
crash_daemon "$T/fma"
expect_exit 1 "$REPDISK" mount --log "$FLOG" --host host-b "$FB" "$T/fmb"
expect_stderr "its catalog belongs to host-a:[^ ]*/file-a \(epoch 1\)"
mount_disks "$FB" "$T/fmb" --log "$FLOG" --host host-b --takeover
dd if=/dev/urandom of="$T/fmb/d.img" bs=64k count=1 seek=3 oflag=direct conv=notrunc status=none
unmount_disks "$T/fmb"
expect_exit 1 "$REPDISK" mount --host host-a "$FA" "$T/fma"
expect_stderr "its catalog belongs to host-b:[^ ]*/file-b \(epoch 2\)"
expect_exit 0 "$REPDISK" follow --once --log "$FLOG" "$FA"
expect_exit 0 "$REPDISK" verify -q "$FA" "$FB"
say "ok"
