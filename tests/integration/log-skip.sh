#!/bin/bash
# One bad record in a disk's log stops that disk everywhere (nothing may
# be skipped silently); `repdisk log skip` is the operator's way out.  A
# forged record (a well-formed WRITE of an epoch no writer claimed, on
# the file log; garbage produced with kcat on the disk's topic, on Kafka):
#  - a follower stops that disk at it, the other disk goes on;
#  - a mount serves that disk read-only;
#  - log skip refuses without --confirm and changes nothing;
#  - with --confirm it puts a SKIP in the catalog, audited in status and
#    log dump; then the follower passes over the position, the mount
#    writes again, and the replicas are identical, the forged bytes in
#    neither.
. "$(dirname "$0")/../lib/lib.sh"
requires cmp

D=$T/data M=$T/mnt R=$T/replica
LOG=$(test_log_uri "$D")
mapfile -t LOGARGS < <(log_args "$D")
head -c 65536 /dev/urandom > "$T/a"
head -c 65536 /dev/urandom > "$T/b"

mount_disks "$D" "$M"
truncate -s 1M "$M/vm1.img" "$M/vm2.img"
dd if="$T/a" of="$M/vm1.img" conv=notrunc status=none
dd if="$T/a" of="$M/vm2.img" conv=notrunc status=none
unmount_disks "$M"

# --- the bad record
P=$(log_status_field "$LOG" "$D" vm1.img log_end)
case $REPDISK_TEST_BACKEND in
file)
	got=$("$RL_TESTWRITER" forge --log "$LOG" --disk vm1.img --acks -) ||
		fail "forge"
	[ "$got" = "$P" ] || fail "forged at $got, want $P"
	why="written by no writer that claimed the disk"
	;;
kafka)
	requires kcat
	uuid=$(status_field "$D" vm1.img uuid)
	echo "not a repdisk record" | kcat -P -p 0 -b "$KAFKA_BOOTSTRAP" \
		-t "repdisk.$TEST_NAME-$$.disk.$uuid" || fail "kcat -P"
	why="."
	;;
esac
for _ in $(seq 100); do	# until the log's end counts it
	[ "$(log_status_field "$LOG" "$D" vm1.img log_end)" = $((P + 1)) ] && break
	sleep 0.1
done
[ "$(log_status_field "$LOG" "$D" vm1.img log_end)" = $((P + 1)) ] ||
	fail "the bad record is not in the log"

expect_exit 1 "$REPDISK" follow --once --log "$LOG" "$R"
expect_stderr "^repdisk follow: follow: vm1.img: .*position $P.*$why.*; this disk stops there"
cmp "$D/vm2.img" "$R/vm2.img" || fail "the other disk did not go on"

mkdir -p "$M"
cleanup_mount "$M"
expect_exit 0 "$REPDISK" mount "${LOGARGS[@]}" "$D" "$M"
expect_stderr "^repdisk: vm1.img: .*this disk is read-only"
expect_exit 1 dd if="$T/b" of="$M/vm1.img" conv=notrunc,fsync status=none
dd if="$T/b" of="$M/vm2.img" conv=notrunc status=none || fail "vm2.img is not writable"
unmount_disks "$M"

# --- refusals change nothing
cat_end=$(log_status_field "$LOG" "$D" vm1.img log_end)
expect_exit 2 "$REPDISK" log skip --log "$LOG" vm1.img "$P"
expect_stderr "lost for good on every replica: say --confirm"
expect_exit 1 "$REPDISK" log skip --log "$LOG" --confirm vm1.img $((P + 5))
expect_stderr "vm1.img: position $((P + 5)) is not in the log"
expect_exit 1 "$REPDISK" log skip --log "$LOG" --confirm nosuch.img "$P"
expect_stderr "no disk \"nosuch.img\""
expect_exit 2 "$REPDISK" log skip --log "$LOG" --confirm vm1.img x1
expect_exit 1 "$REPDISK" follow --once --log "$LOG" "$R"

# --- the skip
expect_exit 0 "$REPDISK" log skip --log "$LOG" --confirm --reason "forged record" vm1.img "$P"
grep -q "^vm1.img: position $P is skipped by every applier from now on (catalog position [0-9]*): by root@.* at .*: forged record$" "$T/stdout" ||
	fail "log skip: $(cat "$T/stdout")"
expect_exit 0 "$REPDISK" log dump --log "$LOG" catalog
grep -q "SKIP .* position=$P note=by root@.*: forged record" "$T/stdout" || fail "log dump: $(cat "$T/stdout")"

expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$R"
grep -q "position $P skipped, as the catalog says" "$T/stderr" || fail "follow: $(cat "$T/stderr")"
mount_disks "$D" "$M"
dd if="$T/b" of="$M/vm1.img" bs=64k seek=1 conv=notrunc status=none || fail "vm1.img does not take writes after the skip"
unmount_disks "$M"
expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$R"
for n in vm1.img vm2.img; do
	cmp "$D/$n" "$R/$n" || fail "$n differs between the replicas"
done
cmp -n 65536 "$T/a" "$D/vm1.img" || fail "the forged record reached the image"
expect_exit 0 "$REPDISK" status "$D"
grep -q "^vm1.img: log position $P skipped by root@.*: forged record$" "$T/stdout" ||
	fail "status does not list the skip: $(cat "$T/stdout")"
expect_exit 0 "$REPDISK" status "$R"
grep -q "^vm1.img: log position $P skipped" "$T/stdout" || fail "the replica's status does not list the skip"
say "ok"
