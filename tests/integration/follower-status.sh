#!/bin/bash
# Named followers and `repdisk status`, on the file log and on Kafka (a real
# 3-node cluster): two followers, started before a disk exists, pick
# it up and converge (status lists both with lag 0 on every disk, images
# byte-identical); one stopped shows a lag that grows by exactly what the
# writer appends, and catches up after a restart; one killed with SIGKILL
# at various moments (catching up a backlog, tailing a live writer)
# resumes from its checkpoints and converges.  A bad follower name is
# refused before anything starts.
. "$(dirname "$0")/../lib/lib.sh"
requires timeout cmp

# status_to FILE: `repdisk status` of the writer's data directory
status_to() {
	timeout 60 "$REPDISK" status --log "$FLOG" "${LOGOPTS[@]}" "$W" > "$1" \
		2> "$T/status.err" || fail "status: $(cat "$T/status.err")"
}

# fcol FILE FOLLOWER DISK COLUMN: a column of the followers table
fcol() {
	local col
	case $4 in
	position) col=3 ;; log_end) col=4 ;; lag) col=5 ;; bytes) col=6 ;;
	behind) col=7 ;; age) col=8 ;;
	*) fail "fcol: unknown column $4" ;;
	esac
	awk -v f="$2" -v d="$3" -v c="$col" \
		'/^FOLLOWER / { t = 1; next } t && $1 == f && $2 == d { print $c }' "$1"
}

# dcol FILE DISK: the log end of a disk in the disks table
dcol() {
	awk -v d="$2" '/^$/ { exit } NR > 1 && $1 == d { print $5 }' "$1"
}

# converged FOLLOWER...: waits (60 s at most) until status shows each
# follower at the log's end of vm1 and vm2, then compares the images
converged() {
	local f d ok=0
	for _ in $(seq 300); do
		status_to "$T/st"
		ok=1
		for f in "$@"; do
			for d in vm1 vm2; do
				[ "$(fcol "$T/st" "$f" "$d" lag)" = 0 ] &&
				[ "$(fcol "$T/st" "$f" "$d" position)" = \
				  "$(dcol "$T/st" "$d")" ] || ok=0
			done
		done
		[ "$ok" = 1 ] && break
		sleep 0.2
	done
	[ "$ok" = 1 ] || { cat "$T/st" >&2; fail "$B: followers $* did not converge"; }
	for f in "$@"; do
		for d in vm1 vm2; do
			cmp "$W/$d" "$T/$B/$f/$d" || fail "$B: $f's $d differs from the writer's"
		done
	done
}

load() { # DISK COUNT SEED: the writer appends COUNT records to DISK
	timeout 120 "$RL_TESTWRITER" load --log "$WLOG" --datadir "$W" \
		--disk "$1" --acks "$T/$B.acks.$1" --count "$2" --seed "$3" \
		--zstd > "$T/load.out" 2>&1 || fail "$B: load $*: $(cat "$T/load.out")"
}

follower() { # NAME [OPTIONS...]: a named follower in the background
	local name=$1
	shift
	mkdir -p "$T/$B/$name"
	start_bg "$T/follower-$B-$name.log" "$REPDISK" follow --name "$name" \
		--log "$FLOG" "${LOGOPTS[@]}" "$@" "$T/$B/$name"
	PID[$name]=$!
}

stop_follower() { # NAME: SIGTERM, which checkpoints and publishes
	kill -TERM "${PID[$1]}"
	wait "${PID[$1]}" || fail "$B: follower $1 did not exit 0 on SIGTERM"
}

crash_follower() { # NAME
	kill -9 "${PID[$1]}"
	wait "${PID[$1]}" 2>/dev/null || true
}

run() { # BACKEND: the whole scenario against $WLOG / $FLOG
	B=$1
	W=$T/$B/w
	declare -gA PID=()
	local n0 n1 lag1 lag2 end1 end2 p0 age
	mkdir -p "$W"
	say "$B: start"

	# a bad name is refused with a message, before anything opens
	expect_exit 2 "$REPDISK" follow --name 'bad/name' --log "$FLOG" "$T/$B/bad"
	expect_stderr 'invalid follower name "bad/name"'
	expect_exit 2 "$REPDISK" follow --name "$(printf 'x%.0s' $(seq 65))" \
		--log "$FLOG" "$T/$B/bad"
	expect_stderr 'invalid follower name: 65 bytes, at most 64'

	# two followers start once the log exists; vm2 comes later
	load vm1 "$N1" 1
	follower fa
	follower fb
	load vm1 "$N2" 2
	load vm2 "$N2" 3
	converged fa fb
	grep -c '^f[ab] ' "$T/st" | grep -qx 4 ||
		{ cat "$T/st" >&2; fail "$B: want 4 follower rows (2 followers x 2 disks)"; }
	age=$(fcol "$T/st" fa vm1 age)
	awk -v a="$age" 'BEGIN { exit !(a >= 0 && a < 31) }' ||
		fail "$B: fa's report is $age s old"
	timeout 60 "$REPDISK" status --json --log "$FLOG" "${LOGOPTS[@]}" "$W" \
		> "$T/st.json" || fail "$B: status --json"
	grep -q '"followers": \[{"name": "fa", "time_ms": [0-9]*, "age": [0-9.]*, "catalog": {"position": 2, "log_end": 2, "lag": 0}, "disks": \[{"name": "vm1", "uuid": "[0-9a-f-]\{36\}", "position": [0-9]*, "log_end": [0-9]*, "lag": 0, "lag_bytes": 0, "behind_s": 0.0}' "$T/st.json" ||
		{ cat "$T/st.json" >&2; fail "$B: status --json lacks fa"; }
	grep -q '{"name": "fb", ' "$T/st.json" || fail "$B: status --json lacks fb"

	# fb stopped: its lag grows by what the writer appends (a CLAIM and
	# the records of each load), while fa keeps up
	stop_follower fb
	p0=$(fcol "$T/st" fb vm1 position)
	load vm1 "$N3" 4
	status_to "$T/st1"
	lag1=$(fcol "$T/st1" fb vm1 lag)
	end1=$(dcol "$T/st1" vm1)
	[ "$(fcol "$T/st1" fb vm1 position)" = "$p0" ] || fail "$B: stopped fb moved"
	[ "$lag1" = $((N3 + 1)) ] && [ "$end1" = $((p0 + N3 + 1)) ] ||
		{ cat "$T/st1" >&2; fail "$B: fb's lag $lag1, want $((N3 + 1))"; }
	load vm1 "$N4" 5
	status_to "$T/st2"
	lag2=$(fcol "$T/st2" fb vm1 lag)
	end2=$(dcol "$T/st2" vm1)
	[ "$lag2" = $((N3 + N4 + 2)) ] && [ "$end2" = $((end1 + N4 + 1)) ] ||
		{ cat "$T/st2" >&2; fail "$B: fb's lag $lag2, want $((N3 + N4 + 2))"; }
	# behind in time: since fb last held everything, so it never shrinks
	# while fb is stopped (how much it grows between two calls depends on
	# the machine's speed: only that it is a time, and does not go back)
	awk -v a="$(fcol "$T/st1" fb vm1 behind)" -v b="$(fcol "$T/st2" fb vm1 behind)" \
		'BEGIN { exit !(a ~ /^[0-9]+\.[0-9]$/ && b ~ /^[0-9]+\.[0-9]$/ && b + 0 >= a + 0) }' ||
		{ cat "$T/st1" "$T/st2" >&2; fail "$B: fb's time behind is not a time that holds or grows"; }
	# and in bytes, where the log can tell: at least a header per record
	if [ "$B" = file ]; then
		by1=$(fcol "$T/st1" fb vm1 bytes) by2=$(fcol "$T/st2" fb vm1 bytes)
		[ "$by1" -ge $(((N3 + 1) * 96)) ] && [ "$by2" -gt "$by1" ] ||
			{ cat "$T/st1" "$T/st2" >&2; fail "$B: fb's lag in bytes $by1, $by2"; }
	fi
	[ "$(fcol "$T/st2" fb vm2 lag)" = 0 ] || fail "$B: fb lags on vm2, which did not change"
	converged fa
	follower fb
	converged fa fb

	# SIGKILL: fa dies while catching up a backlog (at several moments),
	# and while tailing a live writer; it resumes and converges
	stop_follower fa
	p0=$(status_field "$T/$B/fa" vm1 applied)
	load vm1 "$N5" 6
	load vm2 "$N5" 7
	end1=$((p0 + N5 + 1))
	n1=0
	for delay in 0.01 0.05 0.2 0.5 1; do
		follower fa --checkpoint-records 50
		sleep "$delay"
		crash_follower fa
		lag1=$(status_field "$T/$B/fa" vm1 applied)
		[ "$lag1" -gt "$p0" ] && [ "$lag1" -lt "$end1" ] && n1=$((n1 + 1))
	done
	# on the file log the backlog takes long enough to die in its middle
	# (with a checkpoint past the start): the resume from there is tested
	[ "$B" != file ] || [ "$n1" -gt 0 ] ||
		fail "$B: no SIGKILL landed while fa was catching up"
	follower fa --checkpoint-records 50
	start_bg "$T/live-load-$B.log" timeout 120 "$RL_TESTWRITER" load \
		--log "$WLOG" --datadir "$W" --disk vm1 --acks "$T/$B.acks.vm1" \
		--count "$N5" --seed 8 --zstd
	n0=$!
	sleep 0.3
	crash_follower fa
	wait "$n0" || fail "$B: live load: $(cat "$T/live-load-$B.log")"
	follower fa
	converged fa fb
	for d in vm1 vm2; do
		timeout 60 "$RL_TESTWRITER" verify --log "$WLOG" --disk "$d" \
			--acks "$T/$B.acks.$d" > "$T/verify.out" 2>&1 ||
			fail "$B: verify $d: $(cat "$T/verify.out")"
	done
	stop_follower fa
	stop_follower fb
	n1=$(grep -l 'repdisk follow: ' "$T"/follower-"$B"-*.log || true)
	[ -z "$n1" ] || fail "$B: followers reported errors: $(cat $n1)"
	say "$B: ok"
}

# --- the file log: followers register under LOGDIR/followers/
WLOG=file:$T/file/w/.repdisk/log
FLOG=$WLOG
LOGOPTS=()
N1=300 N2=500 N3=200 N4=100 N5=1500
run file
ls "$T/file/w/.repdisk/log/followers" | sort | tr '\n' ' ' | grep -qx 'fa fb ' ||
	fail "file: followers/ holds $(ls "$T/file/w/.repdisk/log/followers")"

# --- kafka: the followers' log options on the command line (--namespace),
# the writer's in the URI
use_kafka_cluster
BS=$KAFKA_BOOTSTRAP
WLOG="kafka:$BS?ns=$TEST_NAME-$$&timeout_ms=10000"
FLOG="kafka:$BS?timeout_ms=10000"
LOGOPTS=(--namespace "$TEST_NAME-$$")
N1=300 N2=500 N3=200 N4=100 N5=1500
run kafka
say "ok"
