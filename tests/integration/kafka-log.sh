#!/bin/bash
# The kafka log backend against the development cluster (repdisk devbroker):
# a writer's acknowledged records are all in the log, a follower replays
# them into a byte-identical image, dump lists them; one broker down does
# not stop writes; two down (below min.insync) make appends fail within
# the write timeout (timeout_ms in the URI); brokers back, writes resume
# without a restart of the cluster and nothing acknowledged is lost.  A
# record that is not a record is refused with a message naming the topic
# and offset.
#
# The devbroker (librdkafka's mock) keeps only about 5 MiB per partition
# and drops older records: loads here stay well below that.
. "$(dirname "$0")/../lib/lib.sh"
requires kcat timeout cmp

start_devbroker
BS=$DEVBROKER_BOOTSTRAP
LOG="kafka:$BS?ns=kt&timeout_ms=5000"
ctl() { "$REPDISK" devbroker ctl "$DEVBROKER_CTL" "$@" > /dev/null || fail "ctl $*"; }
load() { # COUNT: a load through the kafka backend into $T/w
	timeout 60 "$RL_TESTWRITER" load --log "$LOG" --datadir "$T/w" \
		--disk vm1 --acks "$T/acks" --count "$1" --zstd
}
verify() {
	timeout 60 "$RL_TESTWRITER" verify --log "$LOG" --disk vm1 \
		--acks "$T/acks" > "$T/verify.out" 2>&1 ||
		fail "verify: $(cat "$T/verify.out")"
}
follow_cmp() { # DIR: a follower replays the log into DIR, equal to the writer
	mkdir -p "$1"
	timeout 60 "$REPDISK" follow --once --log "$LOG" "$1" 2> "$T/follow.err" ||
		fail "follow $1: $(cat "$T/follow.err")"
	cmp "$T/w/vm1" "$1/vm1" || fail "follower $1 differs from the writer"
}
leader() { # TOPIC: the broker leading partition 0
	kcat -L -b "$BS" -t "$1" | awk '/partition 0,/ { sub(",", "", $4); print $4 }'
}

# bad URIs are refused with a message, before any connection
expect_exit 1 "$REPDISK" log dump --log "kafka:$BS?nosuch=1"
expect_stderr 'unknown option "nosuch"'
expect_exit 1 "$REPDISK" log dump --log "kafka:$BS?timeout_ms=-5"
expect_stderr 'bad timeout_ms'

# a healthy cluster: load, verify, follow, dump
mkdir -p "$T/w"
load 80 2> "$T/load.err" || fail "load: $(cat "$T/load.err")"
[ "$(wc -l < "$T/acks")" -eq 80 ] || fail "want 80 acks, got $(wc -l < "$T/acks")"
verify
follow_cmp "$T/f1"
timeout 60 "$REPDISK" log dump --log "$LOG" > "$T/dump" 2> "$T/dump.err" ||
	fail "dump: $(cat "$T/dump.err")"
[ "$(grep -c '^catalog 0 CREATE .* name=vm1 ' "$T/dump")" -eq 1 ] ||
	fail "dump has no CREATE of vm1: $(head -3 "$T/dump")"
[ "$(grep -c '^vm1 ' "$T/dump")" -eq 81 ] ||	# a CLAIM and 80 records
	fail "dump lists $(grep -c '^vm1 ' "$T/dump") records of vm1, want 81"
grep -q '^vm1 0 CLAIM epoch=1 ' "$T/dump" || fail "vm1 does not start with a CLAIM"
grep -q '^vm1 80 ' "$T/dump" || fail "positions are not 0..80"
topic=$(kcat -L -b "$BS" | grep -o 'repdisk\.kt\.disk\.[0-9a-f-]*' | head -1)
[ -n "$topic" ] || fail "no topic repdisk.kt.disk.UUID: $(kcat -L -b "$BS")"
kcat -L -b "$BS" | grep -q '"repdisk.kt.catalog"' || fail "no catalog topic"

# the leader's broker down: the partition moves, the load completes
old=$(leader "$topic")
ctl down "$old"
load 40 2> "$T/load.err" || fail "load with broker $old down: $(cat "$T/load.err")"
verify

# a second broker down: below min.insync, appends fail at the timeout
new=$(leader "$topic")
[ -n "$new" ] && [ "$new" != "$old" ] || fail "leader stayed on down broker $old"
other=$((6 - old - new))
ctl down "$other"
acks_before=$(wc -l < "$T/acks")
start=$SECONDS
load 40 2> "$T/load.err" && fail "a load succeeded without a quorum"
[ $((SECONDS - start)) -le 20 ] || fail "the refused load took $((SECONDS - start)) s"
grep -q "topic $topic: log append failed after 5 s: .*Message timed out" "$T/load.err" ||
	fail "no message naming the topic and the cause: $(cat "$T/load.err")"
[ "$(wc -l < "$T/acks")" -eq "$acks_before" ] || fail "records acknowledged without a quorum"

# brokers back: writes resume, nothing acknowledged is lost, replicas converge
ctl up "$other"
ctl up "$old"
load 40 2> "$T/load.err" || fail "load after the brokers returned: $(cat "$T/load.err")"
[ "$(wc -l < "$T/acks")" -eq 160 ] || fail "want 160 acks, got $(wc -l < "$T/acks")"
verify
follow_cmp "$T/f1"	# from its checkpoint
follow_cmp "$T/f2"	# from scratch

# a message that is not a record, appended behind repdisk's back: refused
# with the topic and offset named, and the follower's image is not touched
end=$(grep -c '^vm1 ' < <(timeout 60 "$REPDISK" log dump --log "$LOG" vm1))
echo "not a record" | timeout 30 kcat -P -b "$BS" -t "$topic" -p 0 ||
	fail "kcat could not produce"
expect_exit 1 timeout 60 "$REPDISK" log dump --log "$LOG" vm1
expect_stderr "topic $topic offset $end \(position $end\): "
cp "$T/f1/vm1" "$T/f1.before"
expect_exit 1 timeout 60 "$REPDISK" follow --once --log "$LOG" "$T/f1"
expect_stderr "topic $topic offset $end "
cmp "$T/f1/vm1" "$T/f1.before" || fail "a refused record changed the image"
say "ok"
