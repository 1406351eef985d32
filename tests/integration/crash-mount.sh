#!/bin/bash
# The mount killed with SIGKILL in the middle of O_DIRECT writes, again and
# again.  After each kill: a lazy unmount, a new `repdisk mount` (replay
# from the checkpoint, a new claim), and then every write the client saw
# acknowledged is on the disk, whole, and nothing older; the follower
# converges to the same bytes.  Two clients: ackwriter, which records each
# acknowledged write and checks that every block holds its last one (or
# the one in flight), whole; and fio with crc32c verification (its verify
# state saved when the daemon dies, then verify_only).
. "$(dirname "$0")/../lib/lib.sh"
requires fusermount3 truncate

ROUNDS=${CRASH_ROUNDS:-8}
D=$T/data M=$T/mnt R=$T/replica
BS=(4096 65536 1048576)
# How much a round writes before the kill: by default a round lasts a
# random 0.2 to 0.9 s, 8 threads write flat out, and so does fio, on the
# file log and on Kafka alike (the log keeps everything).  ROUND_KB,
# MAX_INFLIGHT_KB, FIO_RATE and DELAY_US (ackwriter's) can bound it.
ROUND_KB=${ROUND_KB:-} MAX_INFLIGHT_KB=${MAX_INFLIGHT_KB:-} FIO_RATE=${FIO_RATE:-}
DELAY_US=${DELAY_US:-}

# layout BS: ackwriter's THREADS (8, fewer if MAX_INFLIGHT_KB says so)
# and BLOCKS per thread (they share 256 MiB, 512 blocks each at most)
layout() {
	THREADS=8
	[ -z "$MAX_INFLIGHT_KB" ] || THREADS=$((MAX_INFLIGHT_KB * 1024 / $1))
	[ "$THREADS" -le 8 ] || THREADS=8
	[ "$THREADS" -ge 1 ] || THREADS=1
	BLOCKS=$((256 * 1048576 / THREADS / $1))
	[ "$BLOCKS" -le 512 ] || BLOCKS=512
}

# until_acked ACKS BS PID: waits until ACKS has gained ROUND_KB/2 to
# ROUND_KB KiB of acknowledged writes of BS bytes, one at least (10 s at
# most), or until PID, the writer, exits.  It polls with builtins only
# (a fork takes milliseconds, and ackwriter writes a MiB in seven).
until_acked() {
	local want n lines until=$((SECONDS + 10))
	mapfile -t lines < "$1"
	n=$(((ROUND_KB * 512 + RANDOM % (ROUND_KB * 512 + 1)) / $2))
	want=$((${#lines[@]} + (n > 0 ? n : 1)))
	while [ "$SECONDS" -lt "$until" ] && kill -0 "$3" 2>/dev/null; do
		mapfile -t lines < "$1"
		[ "${#lines[@]}" -lt "$want" ] || return 0
	done
}

mount_disks "$D" "$M"
start_follower "$(test_log_uri "$D")" "$R"
for bs in "${BS[@]}"; do truncate -s 256M "$M/vm-$bs.img"; done

# Kafka's message limit (about 1 MB) makes the writer split a 1 MiB write
# into four 256 KiB records; a crash may keep the first ones alone.  Such
# a write was never acknowledged, and a disk may tear a large write the
# same way (atomicity is per sector): the in-flight write may be found in
# whole 256 KiB parts.  Acknowledged writes must still be whole.
TEAR=()
[ "${REPDISK_TEST_BACKEND:-file}" = kafka ] && TEAR=(--tear-unit 262144)

for round in $(seq 1 "$ROUNDS"); do
	bs=${BS[round % 3]}
	layout "$bs"
	touch "$T/acks.$bs"
	daemon=$(mount_pid "$M")
	start_bg "$T/ackwriter.log" "$ACKWRITER" write "$M/vm-$bs.img" "$T/acks.$bs" \
		--threads "$THREADS" --blocks "$BLOCKS" --bs "$bs" \
		${DELAY_US:+--delay-us "$DELAY_US"}
	writer=$!
	if [ -n "$ROUND_KB" ]; then
		until_acked "$T/acks.$bs" "$bs" "$writer"
		# then a random moment of the writes in flight (a 1 MiB
		# write takes 7 to 30 ms)
		sleep "$(printf '0.%03d' $((RANDOM % 20)))"
	else
		sleep "0.$((RANDOM % 8 + 2))"
	fi
	kill -0 "$writer" 2>/dev/null || fail "round $round: ackwriter exited before the kill: $(cat "$T/ackwriter.log")"
	crash_daemon "$M" "$daemon"
	wait "$writer" 2>/dev/null || true

	mount_disks "$D" "$M"
	"$ACKWRITER" verify "$M/vm-$bs.img" "$T/acks.$bs" --threads "$THREADS" \
		--blocks "$BLOCKS" --bs "$bs" "${TEAR[@]}" > "$T/verify.log" 2>&1 ||
		{ cat "$T/verify.log"; fail "round $round (bs $bs): ackwriter verify failed"; }
	say "round $round, bs $bs: $(cat "$T/verify.log")"
	converged "$D" "$R" "vm-$bs.img"
done
# fio: random writes at iodepth 32 with crc32c headers, killed mid-run
requires fio
truncate -s 128M "$M/fio.img"
cd "$T"		# fio keeps its verify state in the working directory
for round in 1 2 3; do
	fio_job=(--name=crash --filename="$M/fio.img" --size=128M --rw=randwrite
		--bs=4k --direct=1 --ioengine=libaio --iodepth=32 --verify=crc32c
		--randseed=$round)
	start_bg "$T/fio.log" fio "${fio_job[@]}" --do_verify=0 --verify_state_save=1 \
		--time_based --runtime=60 ${FIO_RATE:+--rate=,$FIO_RATE}
	fio_pid=$!
	wait_opened "$fio_pid" "$M/fio.img"
	sleep "1.$((RANDOM % 10))"
	crash_daemon "$M"
	wait "$fio_pid" 2>/dev/null || true
	[ -f "$T/local-crash-0-verify.state" ] || fail "fio round $round: no verify state saved"
	mount_disks "$D" "$M"
	# fio's saved state counts the writes that failed when the daemon
	# died (ECONNABORTED, never acknowledged) as written: verify them
	# all, and accept a mismatch only at an offset fio saw fail
	fio "${fio_job[@]}" --verify_only --verify_state_load=1 --verify_fatal=0 \
		> "$T/fio-verify.log" 2>&1 || true
	grep -q "READ: bw=" "$T/fio-verify.log" ||
		{ cat "$T/fio-verify.log"; fail "fio round $round: verify did not run"; }
	failed_writes=$(grep -o "write offset=[0-9]*" "$T/fio.log" | cut -d= -f2 | sort -u)
	bad=0 excused=0
	for off in $(grep -o "^verify: .* offset [0-9]*" "$T/fio-verify.log" | awk '{print $NF}' | sort -u); do
		if grep -qx "$off" <<< "$failed_writes"; then
			excused=$((excused + 1))
		else
			echo "fio round $round: block at offset $off fails verification," \
				"and fio saw its write acknowledged" >&2
			bad=$((bad + 1))
		fi
	done
	[ "$bad" = 0 ] || { cat "$T/fio-verify.log"; fail "fio round $round: $bad acknowledged writes lost"; }
	say "fio round $round: $(grep -o 'READ: bw=[^,]*, [^,]*, io=[^ ]*' "$T/fio-verify.log") verified" \
		"($excused blocks whose write fio saw fail were not checked)"
	converged "$D" "$R" fio.img
	rm -f "$T/local-crash-0-verify.state"
done

# every acknowledged write of every round is still there
for bs in "${BS[@]}"; do
	[ -f "$T/acks.$bs" ] || continue
	layout "$bs"
	"$ACKWRITER" verify "$M/vm-$bs.img" "$T/acks.$bs" --threads "$THREADS" --blocks "$BLOCKS" --bs "$bs" "${TEAR[@]}" > /dev/null ||
		fail "bs $bs: acknowledged writes lost by the end"
done
say "$(cat "$T"/acks.* | wc -l) acknowledged ackwriter writes survived $ROUNDS SIGKILLs, and fio verified 3 more"
