#!/bin/bash
# The mount on a Kafka log (a real 3-node cluster), killed with
# SIGKILL in the middle of O_DIRECT writes, CRASH_ROUNDS times (default 3),
# and mounted again each time with the same data directory and log: it
# replays its disks from their checkpoints and claims them again.  After
# each restart every write that ackwriter saw acknowledged is on the disk,
# whole, and nothing older (ackwriter verify); at the end the same holds
# for every round, on the primary and on both followers' images, and the
# followers' images are byte-identical with the primary's.  One follower
# tails from the start, the other starts after the first crash.
# ackwriter writes flat out, 8 threads, until the kill.
. "$(dirname "$0")/../lib/lib.sh"
requires fusermount3 truncate cmp

ROUNDS=${CRASH_ROUNDS:-3}

# --- the cluster, the mount, a follower ----------------------------------
use_kafka_cluster
LOG="kafka:$KAFKA_BOOTSTRAP?ns=$TEST_NAME-$$"
D=$T/data M=$T/mnt R1=$T/r1 R2=$T/r2

kmount() {
	mount_disks "$D" "$M" --log "$LOG" 2> "$T/mount.err" || fail "mount: $(cat "$T/mount.err")"
}
# the disks: one written in 4 KiB blocks, one in 64 KiB blocks, rounds
# alternating between them; ackwriter's geometry for each
ack_args() { echo --threads 8 --blocks 128 --bs "$1"; }
ack_verify() { # IMAGE BS: every acknowledged write of that disk is there
	# shellcheck disable=SC2046
	"$ACKWRITER" verify "$1" "$T/acks.$2" $(ack_args "$2") > "$T/verify.out" 2>&1 ||
		{ cat "$T/verify.out"; fail "$1: acknowledged writes lost"; }
}

kmount
mkdir -p "$R1"
start_bg "$T/follower-r1.log" "$REPDISK" follow --log "$LOG" "$R1"
F1=$!
for bs in 4096 65536; do truncate -s 64M "$M/vm-$bs.img" || fail "truncate in the mount"; done

for round in $(seq 1 "$ROUNDS"); do
	bs=$(((round % 2) ? 4096 : 65536))
	# shellcheck disable=SC2046
	start_bg "$T/ackwriter.log" "$ACKWRITER" write "$M/vm-$bs.img" "$T/acks.$bs" \
		$(ack_args "$bs")
	writer=$!
	# crash once the writes are flowing
	for _ in $(seq 200); do
		[ "$(wc -l 2> /dev/null < "$T/acks.$bs" || echo 0)" -ge 20 ] && break
		sleep 0.05
	done
	sleep "0.$((RANDOM % 8 + 1))"
	kill -0 "$writer" || fail "round $round: ackwriter exited early: $(cat "$T/ackwriter.log")"
	crash_daemon "$M"
	wait "$writer" 2> /dev/null || true
	grep -q . "$T/acks.$bs" || fail "round $round: no write was acknowledged"

	kmount
	ack_verify "$M/vm-$bs.img" "$bs"
	say "round $round, bs $bs: $(wc -l < "$T/acks.$bs") acknowledged writes so far: $(cat "$T/verify.out")"
	log_converged "$LOG" "$D" "$R1" "vm-$bs.img" 60
	if [ "$round" = 1 ]; then	# a second follower, from scratch
		mkdir -p "$R2"
		start_bg "$T/follower-r2.log" "$REPDISK" follow --log "$LOG" "$R2"
		F2=$!
	fi
done

# --- every round's acknowledged writes, on the primary and the followers --
for bs in 4096 65536; do
	[ -f "$T/acks.$bs" ] || continue
	ack_verify "$M/vm-$bs.img" "$bs"
	log_converged "$LOG" "$D" "$R1" "vm-$bs.img" 60
	log_converged "$LOG" "$D" "$R2" "vm-$bs.img" 60
	ack_verify "$R1/vm-$bs.img" "$bs"
	ack_verify "$R2/vm-$bs.img" "$bs"
done
kill -0 "$F1" && kill -0 "${F2:-$F1}" || fail "a follower exited"
unmount_disks "$M"
for bs in 4096 65536; do
	[ -f "$T/acks.$bs" ] || continue
	ack_verify "$D/vm-$bs.img" "$bs"
done
say "$(cat "$T"/acks.* | wc -l) acknowledged writes survived $ROUNDS SIGKILLs, on the primary and both followers"
