#!/bin/bash
# Crash test of the write pipeline without FUSE: a writer appending and
# applying with many records in flight is killed with SIGKILL at random
# moments, over and over, while a follower in another process tails the
# same log (and is itself killed now and then).  After every kill:
#   - every record the writer acknowledged is in the log, unchanged;
#   - recovery (reopen: torn tail cut, replay from the checkpoint) gives an
#     image identical to a full replay of the log into a fresh directory;
# and at the end the tailing follower converges to the same bytes.
. "$(dirname "$0")/../lib/lib.sh"

ROUNDS=${CRASH_ROUNDS:-25}
LOG=file:$T/primary/.repdisk/log
mkdir -p "$T/primary" "$T/follower"

follower_start() {
	start_bg "$T/follower.log" "$REPDISK" follow --log "$LOG" "$T/follower"
	FOLLOWER=$!
}

# A first clean run creates the disk; segments are small so crashes land
# around roll-overs too.
"$RL_TESTWRITER" load --log "$LOG" --datadir "$T/primary" --disk vm1.img \
	--acks "$T/acks" --count 200 --segment-bytes 262144 --seed 1 \
	> "$T/writer.log" 2>&1 || fail "first load failed"
follower_start

for round in $(seq 1 "$ROUNDS"); do
	start_bg "$T/writer.log" "$RL_TESTWRITER" load --log "$LOG" \
		--datadir "$T/primary" --disk vm1.img --acks "$T/acks" \
		--count 1000000 --inflight 32 --segment-bytes 262144 \
		--seed "$((round + 1))" $([ $((round % 3)) = 0 ] && echo --zstd)
	writer=$!
	sleep "0.$((RANDOM % 6 + 1))$((RANDOM % 10))"
	kill -9 "$writer"
	wait "$writer" 2>/dev/null || true

	if [ $((round % 4)) = 0 ]; then
		kill -9 "$FOLLOWER"; wait "$FOLLOWER" 2>/dev/null || true
		follower_start
	fi

	"$RL_TESTWRITER" verify --log "$LOG" --disk vm1.img --acks "$T/acks" \
		> "$T/verify.log" 2>&1 || { cat "$T/verify.log"; fail "round $round: acknowledged record lost"; }

	# recovery: reopen as the writer (cuts a torn tail, replays from the
	# checkpoint, claims), then compare with a full replay from scratch
	"$RL_TESTWRITER" load --log "$LOG" --datadir "$T/primary" --disk vm1.img \
		--acks "$T/acks" --count 0 --segment-bytes 262144 \
		>> "$T/recover.log" 2>&1 || fail "round $round: recovery failed"
	rm -rf "$T/replay" && mkdir "$T/replay"
	"$REPDISK" follow --once --log "$LOG" "$T/replay" > "$T/replay.log" 2>&1 ||
		fail "round $round: full replay failed"
	cmp "$T/primary/vm1.img" "$T/replay/vm1.img" ||
		fail "round $round: recovered image differs from a full replay"
	say "round $round: $(tail -1 "$T/verify.log")"
done

# the tailing follower converges to the same bytes
end=$(status_field "$T/primary" vm1.img log_end)
for _ in $(seq 1 200); do
	[ "$(status_field "$T/follower" vm1.img applied)" = "$end" ] && break
	sleep 0.05
done
kill -TERM "$FOLLOWER"; wait "$FOLLOWER" || fail "follower did not exit 0 on SIGTERM"
[ "$(status_field "$T/follower" vm1.img applied)" = "$end" ] ||
	fail "follower stopped at $(status_field "$T/follower" vm1.img applied), log ends at $end"
cmp "$T/primary/vm1.img" "$T/follower/vm1.img" || fail "follower image differs"
grep -q "cut torn tail" "$T/recover.log" "$T/writer.log" &&
	say "torn tails were cut: $(grep -c "cut torn tail" "$T/recover.log" "$T/writer.log" | paste -sd' ')"
say "$(wc -l < "$T/acks") acknowledged records survived $ROUNDS SIGKILLs"
