#!/bin/bash
# The development Kafka cluster behaves like Kafka where repdisk relies on
# it: real protocol (kcat produces and consumes), a partition leader's
# broker going down does not stop writes (leaders move), fewer live brokers
# than min.insync refuse writes until the producer's timeout, and writes
# resume when brokers return, with nothing acknowledged lost.
. "$(dirname "$0")/../lib/lib.sh"
requires kcat timeout

start_bg "$T/devbroker.log" "$REPDISK" devbroker --brokers 3 --min-insync 2 \
	--bootstrap-file "$T/bootstrap" --control "$T/ctl"
DEV=$!
for _ in $(seq 100); do [ -f "$T/bootstrap" ] && break; sleep 0.05; done
[ -f "$T/bootstrap" ] || fail "devbroker wrote no bootstrap file"
BS=$(cat "$T/bootstrap")
ctl() { "$REPDISK" devbroker ctl "$T/ctl" "$@"; }
produce() { # MESSAGE: exit status of a produce with a 3 s message timeout
	echo "$1" | timeout 30 kcat -P -b "$BS" -t t1 -p 0 -X message.timeout.ms=3000 2> "$T/kcat.err"
}
leader() {
	kcat -L -b "$BS" -t t1 | awk '/partition 0,/ { sub(",", "", $4); print $4 }'
}

ctl status | grep -q "^ok brokers 3 up 1 2 3 min_insync 2 quorum yes" || fail "status: $(ctl status)"
produce m1 || fail "produce on a healthy cluster: $(cat "$T/kcat.err")"

# the leader's broker goes down: the partition moves, writes go on
old=$(leader)
ctl down "$old" > /dev/null || fail "down $old"
new=$(leader)
[ -n "$new" ] && [ "$new" != "$old" ] || fail "leader stayed on down broker $old"
produce m2 || fail "produce with one broker down: $(cat "$T/kcat.err")"

# a second broker down: below min.insync, the write fails at its timeout
other=$((6 - old - new))	# brokers are 1, 2 and 3
ctl down "$other" > /dev/null
ctl status | grep -q "quorum no" || fail "status does not say the quorum is lost"
start=$SECONDS
produce m3 && fail "a write was acknowledged without a quorum"
grep -q "Message timed out" "$T/kcat.err" || fail "want a timeout: $(cat "$T/kcat.err")"
[ $((SECONDS - start)) -le 20 ] || fail "the refused write took $((SECONDS - start)) s"

# brokers back: writes resume, no restart needed
ctl up "$other" > /dev/null
ctl up "$old" > /dev/null
produce m4 || fail "produce after the brokers returned: $(cat "$T/kcat.err")"
got=$(timeout 30 kcat -C -b "$BS" -t t1 -p 0 -o beginning -e -q | tr '\n' ' ')
[ "$got" = "m1 m2 m4 " ] || fail "partition 0 holds \"$got\", want \"m1 m2 m4 \""

# bad commands are refused; SIGTERM stops it cleanly
expect_exit 1 "$REPDISK" devbroker ctl "$T/ctl" down 9
grep -q "no broker 9" "$T/stdout" || fail "down 9: $(cat "$T/stdout")"
expect_exit 2 "$REPDISK" devbroker --brokers 2 --min-insync 3
kill -TERM "$DEV"; wait "$DEV" || fail "devbroker did not exit 0 on SIGTERM"
[ ! -e "$T/ctl" ] && [ ! -e "$T/bootstrap" ] || fail "devbroker left its files behind"
say "ok"
