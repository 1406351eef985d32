#!/bin/bash
# A follower in its own process tails a live writer: it catches up, picks
# up a disk created after it started, survives SIGTERM and a restart, and
# ends byte-identical to the primary.  status shows positions and lag.
. "$(dirname "$0")/../lib/lib.sh"

LOG=$(test_log_uri "$T/primary")
# Records per load (a record is 24 KiB on average).
N1=500 N2=3000 N3=1000 N4=500
mkdir -p "$T/primary" "$T/replica"
"$RL_TESTWRITER" load --log "$LOG" --datadir "$T/primary" --disk vm1.img \
	--acks "$T/acks1" --count "$N1" --seed 1 > "$T/w1.log" 2>&1 || fail "load 1"

start_bg "$T/follower.log" "$REPDISK" follow --log "$LOG" "$T/replica"
fpid=$!

# vm1 again, and a new disk vm2 while the follower runs
"$RL_TESTWRITER" load --log "$LOG" --datadir "$T/primary" --disk vm1.img \
	--acks "$T/acks1" --count "$N2" --inflight 32 --seed 2 > "$T/w2.log" 2>&1 || fail "load 2"
"$RL_TESTWRITER" load --log "$LOG" --datadir "$T/primary" --disk vm2.img \
	--acks "$T/acks2" --count "$N3" --seed 3 --zstd > "$T/w3.log" 2>&1 || fail "load 3"

caught_up() {
	for d in vm1.img vm2.img; do
		[ "$(status_field "$T/replica" "$d" applied)" = \
		  "$(status_field "$T/primary" "$d" log_end)" ] || return 1
	done
}
for _ in $(seq 200); do caught_up && break; sleep 0.05; done
caught_up || fail "follower did not catch up: $("$REPDISK" status --log "$LOG" "$T/replica")"
kill -TERM "$fpid"; wait "$fpid" || fail "follower did not exit 0 on SIGTERM"
cmp "$T/primary/vm1.img" "$T/replica/vm1.img" || fail "vm1.img differs"
cmp "$T/primary/vm2.img" "$T/replica/vm2.img" || fail "vm2.img differs"

# more writes while the follower is stopped; a restart catches up
"$RL_TESTWRITER" load --log "$LOG" --datadir "$T/primary" --disk vm2.img \
	--acks "$T/acks2" --count "$N4" --seed 4 > "$T/w4.log" 2>&1 || fail "load 4"
"$REPDISK" status --log "$LOG" "$T/replica" > "$T/status.txt"
lag=$(awk '$1 == "vm2.img" { print $6 }' "$T/status.txt")
[ "$lag" = $((N4 + 1)) ] || { cat "$T/status.txt"; fail "status lag $lag, want $((N4 + 1)) ($N4 records and a claim)"; }
"$REPDISK" status --json --log "$LOG" "$T/replica" > "$T/status.json"
grep -q "\"name\": \"vm2.img\", \"uuid\": \"[0-9a-f-]\{36\}\", \"size\": [0-9]*, \"applied\": [0-9]*, \"log_end\": [0-9]*, \"lag\": $((N4 + 1))" "$T/status.json" ||
	{ cat "$T/status.json"; fail "status --json lacks vm2.img's lag"; }
"$REPDISK" follow --once --log "$LOG" "$T/replica" > "$T/f2.log" 2>&1 || fail "follow --once"
cmp "$T/primary/vm2.img" "$T/replica/vm2.img" || fail "vm2.img differs after restart"
# status without --log: the file log is the primary's, none is beside a
# replica; a kafka log is reached from any host, and status_field names it
if [ "$REPDISK_TEST_BACKEND" = file ]; then
	[ "$(status_field "$T/replica" vm2.img lag)" = "-" ] || fail "a replica's lag without a log"
else
	[ "$(status_field "$T/replica" vm2.img lag)" = 0 ] || fail "the replica's lag after follow --once"
fi

# the sparse regions stay sparse on both sides
pa=$(du -k "$T/primary/vm2.img" | cut -f1); ra=$(du -k "$T/replica/vm2.img" | cut -f1)
[ "$ra" -le $((pa + 64)) ] || fail "replica allocates ${ra}K, primary ${pa}K"

"$RL_TESTWRITER" verify --log "$LOG" --disk vm1.img --acks "$T/acks1" > /dev/null || fail "verify vm1"
"$RL_TESTWRITER" verify --log "$LOG" --disk vm2.img --acks "$T/acks2" > /dev/null || fail "verify vm2"
say "ok"
