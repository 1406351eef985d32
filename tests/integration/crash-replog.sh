#!/bin/bash
# Crash test of the write pipeline without FUSE: a writer appending and
# applying with many records in flight is killed with SIGKILL at random
# moments, over and over, while a follower in another process tails the
# same log (and is itself killed now and then).  After every kill:
#   - every record the writer acknowledged is in the log, unchanged;
#   - recovery (reopen: torn tail cut, replay from the checkpoint) gives an
#     image identical to a full replay of the log into a fresh directory;
# and at the end the tailing follower converges to the same bytes.
# Then the same on a log whose writer trims it as the mount does, so that
# segments are reused (see the second part).
. "$(dirname "$0")/../lib/lib.sh"

ROUNDS=${CRASH_ROUNDS:-25}
REUSE_ROUNDS=${CRASH_REUSE_ROUNDS:-$((ROUNDS < 12 ? ROUNDS : 12))}
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

# --- Reused segments (file log).  A second log, whose writer trims it as
# the mount does (below its checkpoint and every registered follower),
# with 256 KiB segments of sixteen 16 KiB writes each: a roll-over reuses a
# trimmed segment, whose earlier records lie whole exactly where the new
# ones begin.  The same kills (when the last segment is a reused one, with
# the head set back to its base, as a power loss can leave it), and after each
# recovery: every acknowledged record is in the log and the records rise
# in (epoch, seq) (so recovery took no record of a segment's earlier use
# for a new one, and cut no new one for an old one); recovery deletes the
# spare segments the crash left; and the follower, which tails the log all
# along (and so lets retention trim it), reaches the same bytes.
LOG2=file:$T/p2/.repdisk/log
L2=$T/p2/.repdisk/log
W2=(--log "$LOG2" --datadir "$T/p2" --disk vm2.img --acks "$T/acks2"
    --segment-bytes 262144 --write-kb 16)
mkdir -p "$T/p2" "$T/f2"
"$RL_TESTWRITER" load "${W2[@]}" --count 200 --seed 101 > "$T/writer2.log" 2>&1 ||
	fail "reuse: first load failed"
# the follower reports before anything is trimmed
start_bg "$T/follower2.log" "$REPDISK" follow --log "$LOG2" "$T/f2"
F2=$!
for _ in $(seq 1 200); do
	[ -n "$(ls "$L2/followers" 2> /dev/null)" ] && break
	sleep 0.05
done
[ -n "$(ls "$L2/followers" 2> /dev/null)" ] || fail "reuse: the follower did not report"
W2+=(--trim)

# f2_caught_up: the follower has applied the whole log (10 s at most)
f2_caught_up() {
	local end
	end=$(status_field "$T/p2" vm2.img log_end)
	for _ in $(seq 1 200); do
		[ "$(status_field "$T/f2" vm2.img applied)" = "$end" ] && return 0
		sleep 0.05
	done
	return 1
}

reused=0 rewound=0
for round in $(seq 1 "$REUSE_ROUNDS"); do
	start_bg "$T/writer2.log" "$RL_TESTWRITER" load "${W2[@]}" \
		--count 1000000 --inflight 32 --seed "$((round + 101))"
	writer=$!
	# long enough for the follower to report (once a second) and the
	# writer to trim and then reuse
	sleep "1.$((RANDOM % 10))$((RANDOM % 10))"
	kill -9 "$writer"
	wait "$writer" 2>/dev/null || true
	for f in "$L2"/disks/*/*.seg; do
		[ "$(head -c 8 "$f")" = RDLSEG02 ] && reused=$((reused + 1))
	done
	sdir=$(echo "$L2"/disks/*)
	last=$(ls "$sdir"/*.seg | tail -1)
	if [ "$(head -c 8 "$last")" = RDLSEG02 ]; then
		# what a power loss can leave: the head (never synced) behind
		# what was synced, here at the base of the last segment, a
		# reused one; recovery must keep every record past it, told
		# from the earlier use's by (epoch, seq) (written in place:
		# the follower has the head mapped)
		rewound=$((rewound + 1))
		b=$(basename "$last" .seg)
		b=$((10#$b))
		for i in 0 1 2 3 4 5 6 7; do
			printf "\\x$(printf %02x $(((b >> (8 * i)) & 255)))"
		done | dd of="$sdir/head" bs=1 seek=8 conv=notrunc status=none
	fi

	# recovery (reopen as the writer: cuts a torn tail and the earlier
	# use's records, claims), then every acknowledged record is there
	"$RL_TESTWRITER" load "${W2[@]}" --count 0 >> "$T/recover2.log" 2>&1 ||
		fail "reuse round $round: recovery failed"
	"$RL_TESTWRITER" verify --log "$LOG2" --disk vm2.img --acks "$T/acks2" \
		> "$T/verify2.log" 2>&1 || { cat "$T/verify2.log"; fail "reuse round $round: verify failed"; }
	ls "$L2"/disks/*/spare.* > /dev/null 2>&1 && fail "reuse round $round: spare segments left: $(ls "$L2"/disks/*/spare.*)"
	f2_caught_up || fail "reuse round $round: the follower did not catch up"
	cmp "$T/p2/vm2.img" "$T/f2/vm2.img" ||
		fail "reuse round $round: the follower's image differs from the recovered one"
	say "reuse round $round: $(tail -1 "$T/verify2.log")"
done
[ "$reused" -gt 0 ] || fail "reuse: no segment was reused"
kill -TERM "$F2"; wait "$F2" || fail "reuse: follower did not exit 0 on SIGTERM"
cmp "$T/p2/vm2.img" "$T/f2/vm2.img" || fail "reuse: the tailing follower's image differs"
say "reuse: $reused reused segments seen after the kills; $rewound recoveries from a head set back into a reused segment; torn tails cut: $(grep -c "cut torn tail" "$T/recover2.log"), $(grep -c "a reused segment" "$T/recover2.log") of them in a reused segment, $(grep -c "not after the segment's first" "$T/recover2.log") at an earlier use's whole record"
