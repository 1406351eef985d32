#!/bin/bash
# Runs every fuzz harness of tests/fuzz for SECONDS (default 60) each, one
# after another, each over a copy of its seed corpus (the committed corpus
# is never written).  Builds build-fuzz first (CC=clang, REPDISK_FUZZ=ON)
# if it is missing, and brings it up to date.  Fails, naming the harness
# and the input, on a crash, a sanitizer report, a leak or a hang; the
# inputs that did it are kept in build-fuzz/fuzz-crashes/, each harness's
# output in build-fuzz/fuzz-logs/.
#
#   bash tests/fuzz/run.sh [SECONDS]    SECONDS 0: each corpus once, no fuzzing
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

seconds=${1:-60}
case $seconds in
'' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

# harness and its -max_len: a segment holds several records; the text
# files are small (a checkpoint is read into 512 bytes)
harnesses=(record:65536 segment:65536 catalog_state:16384 checkpoint:1024
	   positions:8192)

build=build-fuzz
if [ ! -f "$build/CMakeCache.txt" ]; then
	CC=clang cmake -S . -B "$build" -DREPDISK_FUZZ=ON -DREPDISK_WERROR=ON >/dev/null
fi
cmake --build "$build" --target fuzzers -j 2 >/dev/null

work=$(mktemp -d /tmp/repdisk-fuzz-run.XXXXXX)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$build/fuzz-crashes" "$build/fuzz-logs"

failed=0
for h in "${harnesses[@]}"; do
	name=${h%%:*}
	max_len=${h#*:}
	bin=$build/tests/fuzz/fuzz_$name
	log=$build/fuzz-logs/$name.log
	mkdir -p "$work/$name/corpus" "$work/$name/tmp" "$work/$name/crashes"
	cp tests/fuzz/corpus/"$name"/* "$work/$name/corpus/"
	if [ "$seconds" -eq 0 ]; then
		limit=(-runs=0)
	else
		limit=(-max_total_time="$seconds")
	fi
	# nice: the machine may be running other tests; TMPDIR: what the
	# harness writes (and what a crash leaves of it) goes with $work
	rc=0
	TMPDIR=$work/$name/tmp nice -n 10 "$bin" "${limit[@]}" -max_len="$max_len" \
		-timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/$name/crashes/" \
		"$work/$name/corpus" >"$log" 2>&1 &
	pid=$!
	wait "$pid" || rc=$?
	pid=
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	crashes=("$work/$name/crashes"/*)
	if [ "$rc" -ne 0 ] || [ -e "${crashes[0]}" ]; then
		failed=1
		echo "fuzz_$name: FAILED (exit $rc); output in $log"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz: property)' "$log" | head -5 || true
		for c in "${crashes[@]}"; do
			[ -e "$c" ] || continue
			cp "$c" "$build/fuzz-crashes/$name-${c##*/}"
			echo "fuzz_$name: input $build/fuzz-crashes/$name-${c##*/}"
		done
	else
		echo "fuzz_$name: ok, ${execs:-?} executions, ${rate:-?} exec/s"
	fi
done
exit "$failed"
