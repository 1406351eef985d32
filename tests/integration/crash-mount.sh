#!/bin/bash
# The mount killed with SIGKILL in the middle of O_DIRECT writes from
# several threads, again and again.  After each kill: a lazy unmount, a new
# `repdisk mount` (replay from the checkpoint, a new claim), and then every
# write the client saw acknowledged is on the disk, whole, and nothing older
# (ackwriter verify); the follower converges to the same bytes.
. "$(dirname "$0")/../lib/lib.sh"
requires fusermount3 truncate

ROUNDS=${CRASH_ROUNDS:-8}
D=$T/data M=$T/mnt R=$T/replica
BS=(4096 65536 1048576)

mount_disks "$D" "$M"
start_follower "file:$D/.repdisk/log" "$R"
for bs in "${BS[@]}"; do truncate -s 256M "$M/vm-$bs.img"; done

for round in $(seq 1 "$ROUNDS"); do
	bs=${BS[round % 3]}
	blocks=$((256 * 1048576 / 8 / bs))	# 8 threads share 256 MiB
	[ "$blocks" -gt 512 ] && blocks=512
	start_bg "$T/ackwriter.log" "$ACKWRITER" write "$M/vm-$bs.img" "$T/acks.$bs" \
		--threads 8 --blocks "$blocks" --bs "$bs"
	writer=$!
	sleep "0.$((RANDOM % 8 + 2))"
	pid=$(mount_pid "$M")
	[ -n "$pid" ] || fail "round $round: no daemon"
	kill -9 "$pid"
	wait "$writer" 2>/dev/null || true
	fusermount3 -uz "$M"

	mount_disks "$D" "$M"
	"$ACKWRITER" verify "$M/vm-$bs.img" "$T/acks.$bs" --threads 8 \
		--blocks "$blocks" --bs "$bs" > "$T/verify.log" 2>&1 ||
		{ cat "$T/verify.log"; fail "round $round (bs $bs): acknowledged write lost"; }
	say "round $round, bs $bs: $(cat "$T/verify.log")"
	converged "$D" "$R" "vm-$bs.img"
done
# every acknowledged write of every round is still there
for bs in "${BS[@]}"; do
	[ -f "$T/acks.$bs" ] || continue
	blocks=$((256 * 1048576 / 8 / bs)); [ "$blocks" -gt 512 ] && blocks=512
	"$ACKWRITER" verify "$M/vm-$bs.img" "$T/acks.$bs" --threads 8 --blocks "$blocks" --bs "$bs" > /dev/null ||
		fail "bs $bs: acknowledged writes lost by the end"
done
say "$(cat "$T"/acks.* | wc -l) acknowledged writes survived $ROUNDS SIGKILLs"
