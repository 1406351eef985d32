#!/bin/bash
# The mount killed with SIGKILL in the middle of catalog changes (disks
# created, written, renamed, chmod'ed and removed as fast as a script
# can), again and again: every remount succeeds (the catalog never jams),
# and after each one the mount, its data directory and a follower's agree
# on which disks exist, their modes and their bytes.
. "$(dirname "$0")/../lib/lib.sh"
requires fusermount3 truncate cmp

ROUNDS=${CRASH_ROUNDS:-8}
D=$T/data M=$T/mnt R=$T/replica
LOG=$(test_log_uri "$D")

# churn: catalog changes until killed (the mount goes away under it)
churn() {
	local i=0
	while :; do
		i=$((i + 1))
		truncate -s 64k "$M/d$i.img" 2>/dev/null || return 0
		printf 'disk %d\n' "$i" | dd of="$M/d$i.img" conv=notrunc status=none 2>/dev/null
		mv "$M/d$i.img" "$M/e$i.img" 2>/dev/null
		chmod 600 "$M/e$i.img" 2>/dev/null
		[ $((i % 3)) = 0 ] && rm -f "$M/e$((i - 1)).img" 2>/dev/null
	done
}

mount_disks "$D" "$M"
for round in $(seq "$ROUNDS"); do
	daemon=$(mount_pid "$M")
	churn &
	churner=$!
	cleanup "kill -9 $churner 2>/dev/null"
	sleep "0.$((RANDOM % 8 + 2))"
	crash_daemon "$M" "$daemon"
	wait "$churner" 2>/dev/null || true

	mount_disks "$D" "$M"
	expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$R"
	mine=$(cd "$M" && ls | sort | tr '\n' ' ')
	theirs=$(cd "$R" && ls | sort | tr '\n' ' ')
	onfile=$(cd "$D" && ls | sort | tr '\n' ' ')
	[ "$mine" = "$theirs" ] && [ "$mine" = "$onfile" ] ||
		fail "round $round: the mount has [$mine], its data directory [$onfile], the follower [$theirs]"
	for f in $mine; do
		cmp "$M/$f" "$R/$f" || fail "round $round: $f differs on the follower"
		[ "$(stat -c %a "$M/$f")" = "$(stat -c %a "$R/$f")" ] ||
			fail "round $round: $f's mode differs on the follower"
	done
	say "round $round: $(echo "$mine" | wc -w) disks agree"
done
say "ok"
