#!/bin/bash
# Secrets (SASL passwords, key passphrases) given as kafka.* properties in
# the log URI or with -o are never shown: not in the mount log, not in
# `ps` or /proc/PID/cmdline of the mount or a follower, not in `repdisk
# status`.  A --kafka-config file that group or others can read is
# refused, and a bad line of one is never echoed.  On the plaintext
# listener of a real cluster (the properties are accepted and unused).
. "$(dirname "$0")/../lib/lib.sh"
requires fusermount3 grep

use_kafka_cluster
D=$T/data M=$T/mnt R=$T/replica
S1=Hunter2-uri-$RANDOM S2=Hunter2-opt-$RANDOM S3=Hunter2-file-$RANDOM
URI="kafka:$KAFKA_BOOTSTRAP?ns=$TEST_NAME-$$&kafka.sasl.password=$S1&timeout_ms=30000"

mount_disks "$D" "$M" --log "$URI" -o "kafka.ssl.key.password=$S2"
truncate -s 1M "$M/vm1.img"
dd if=/dev/urandom of="$M/vm1.img" bs=64k count=2 conv=notrunc status=none || fail "a write"
start_bg "$T/follower-replica.log" "$REPDISK" follow --log "$URI" -o "kafka.ssl.key.password=$S2" "$R"
fpid=$!
log_converged "$URI" "$D" "$R" vm1.img 30

mpid=$(mount_pid "$M")
[ -n "$mpid" ] || fail "no daemon found for $M"
for pid in "$mpid" "$fpid"; do
	tr '\0' ' ' < "/proc/$pid/cmdline" > "$T/cmdline"
	grep -q "Hunter2" "$T/cmdline" && fail "pid $pid shows a secret: $(cat "$T/cmdline")"
	grep -q "kafka.sasl.password=\*\*\*" "$T/cmdline" || fail "pid $pid: the URI is not there at all: $(cat "$T/cmdline")"
done
pgrep -fa "Hunter2-(uri|opt)" && fail "ps shows a secret"
grep -q "Hunter2" "$D/.repdisk/mount.log" && fail "the mount log shows a secret"
grep -q "(log kafka:.*kafka.sasl.password=\*\*\*" "$D/.repdisk/mount.log" ||
	fail "the mount log does not name its log: $(cat "$D/.repdisk/mount.log")"
expect_exit 0 "$REPDISK" status --json --log "$URI" "$D"
grep -q "Hunter2" "$T/stdout" "$T/stderr" && fail "status shows a secret"
grep -q '"log": "kafka:.*kafka.sasl.password=\*\*\*' "$T/stdout" || fail "status: $(cat "$T/stdout")"

# --kafka-config: secrets belong in a file only its owner can read
printf 'sasl.password=%s\n' "$S3" > "$T/kafka.conf"
chmod 644 "$T/kafka.conf"
expect_exit 2 "$REPDISK" status --kafka-config "$T/kafka.conf" --log "$URI" "$D"
expect_stderr "kafka config $T/kafka.conf: readable by group or others \\(mode 0644, uid 0\\): it holds secrets; make it the user's own, mode 0600"
chmod 600 "$T/kafka.conf"
expect_exit 0 "$REPDISK" status --kafka-config "$T/kafka.conf" --log "$URI" "$D"
printf '# a comment\nsasl.password %s\n' "$S3" > "$T/bad.conf"
chmod 600 "$T/bad.conf"
expect_exit 2 "$REPDISK" status --kafka-config "$T/bad.conf" --log "$URI" "$D"
expect_stderr "kafka config $T/bad.conf:2: want PROPERTY=VALUE \\(the line is not shown"
grep -q "Hunter2" "$T/stderr" && fail "a bad config line was echoed"

kill -TERM "$fpid"
wait "$fpid" 2>/dev/null || true
grep -q "Hunter2" "$T/follower-replica.log" && fail "the follower's messages show a secret"
unmount_disks "$M"
grep -q "Hunter2" "$D/.repdisk/mount.log" && fail "the mount log shows a secret"
say "ok"
