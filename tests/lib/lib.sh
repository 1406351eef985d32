# Shared helpers for repdisk's integration tests.  Source it first:
#
#   . "$(dirname "$0")/../lib/lib.sh"
#
# It makes a scratch directory ($T), removed at exit together with anything
# registered with `cleanup`: processes started with `start_bg` are killed,
# mounts registered with `cleanup_mount` are unmounted lazily, even when
# the test fails.  `requires CMD` skips the test (exit 77) when a tool is
# missing.  `fail MSG` ends the test with a message.
#
# ctest passes the binaries as REPDISK and RL_TESTWRITER, and the log
# backend the mount tests run on as REPDISK_TEST_BACKEND: "file" (the
# default: each primary's embedded file log, DATADIR/.repdisk/log) or
# "kafka" (a real 3-node Apache Kafka cluster, tools/kafka-cluster.sh: the
# suite's shared one named by KAFKA_CLUSTER_DIR, in a namespace of the
# test's own, or else one started for the test; see test_log_uri).
# Tests that need librdkafka's mock cluster for exact fault injection
# start one themselves (start_devbroker).

set -euo pipefail

REPDISK=${REPDISK:-repdisk}
RL_TESTWRITER=${RL_TESTWRITER:-rl_testwriter}
ACKWRITER=${ACKWRITER:-ackwriter}
FAULTSHIM=${FAULTSHIM:-}
for _v in REPDISK RL_TESTWRITER ACKWRITER FAULTSHIM; do	# tests may cd
	[[ ${!_v} == */* ]] && printf -v "$_v" '%s' "$(realpath "${!_v}")"
done
TEST_NAME=$(basename "$0" .sh)

_cleanups=()
cleanup() { _cleanups+=("$*"); }

_run_cleanups() {
	local rc=$?
	set +e
	[ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && _test_failed=1
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[i]}" >/dev/null 2>&1
	done
	if [ "$rc" -eq 0 ] && declare -F _check_daemon_logs > /dev/null; then
		sleep 0.2	# daemons unmounted lazily write their reports
		_check_daemon_logs || rc=1
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${T:-}" ] && [ -d "$T" ]; then
		echo "$TEST_NAME: failed (exit $rc); logs:" >&2
		for f in "$T"/*.log "$T"/*/.repdisk/mount.log; do
			[ -f "$f" ] || continue
			echo "--- $f" >&2
			tail -n 30 "$f" >&2
		done
	fi
	[ -n "${T:-}" ] && rm -rf "$T"
	exit "$rc"
}
trap _run_cleanups EXIT

T=$(mktemp -d "${TMPDIR:-/tmp}/repdisk-$TEST_NAME.XXXXXX")

fail() {
	echo "$TEST_NAME: FAIL: $*" >&2
	exit 1
}

say() { echo "$TEST_NAME: $*"; }

requires() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || {
			echo "$TEST_NAME: SKIP: $c is not installed" >&2
			exit 77
		}
	done
}

# start_bg LOGFILE CMD...: runs CMD in the background, its output in
# LOGFILE; sets $! and makes sure it is killed at exit.
start_bg() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 &
	cleanup "kill -9 $! 2>/dev/null; wait $! 2>/dev/null"
}

# wait_opened PID FILE [SECONDS]: waits until process PID or a child of
# it holds FILE open (fio opens its file only once its job has started,
# which on a loaded machine can take seconds), 30 s at most.
wait_opened() {
	local until=$((SECONDS + ${3:-30})) want p f
	want=$(realpath "$2")
	while [ "$SECONDS" -lt "$until" ]; do
		for p in "$1" $(pgrep -P "$1"); do
			for f in /proc/"$p"/fd/*; do
				[ "$(readlink "$f" 2>/dev/null)" = "$want" ] && return 0
			done
		done
		sleep 0.05
	done
	fail "process $1 did not open $2 within ${3:-30} s"
}

# running PID: the process runs (a zombie, exited but not yet reaped by
# this shell, does not count; kill -0 alone would say it runs).
running() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# cleanup_mount MOUNTPOINT: at exit, unmount lazily, and give the daemon
# serving it (repdisk mount daemonises: not our child) 10 s to finish,
# then SIGKILL, so that nothing outlives the test (nor talks to a
# devbroker already gone).
cleanup_mount() { cleanup "_unmount_at_exit '$1'"; }
_unmount_at_exit() {
	local pid
	pid=$(mount_pid "$1")
	fusermount3 -uz "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
	[ -n "$pid" ] || return 0
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
}

# expect_exit CODE CMD...: runs CMD, which must exit with CODE; its stderr
# is left in $T/stderr for the caller to check.
expect_exit() {
	local want=$1 rc=0
	shift
	"$@" >"$T/stdout" 2>"$T/stderr" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "--- stdout" >&2; cat "$T/stdout" >&2
		echo "--- stderr" >&2; cat "$T/stderr" >&2
		fail "expected exit $want, got $rc: $*"
	fi
}

# expect_stderr REGEX: the last expect_exit's stderr matches REGEX.
expect_stderr() {
	grep -Eq -- "$1" "$T/stderr" || {
		cat "$T/stderr" >&2
		fail "stderr does not match /$1/"
	}
}

# log_status_field LOG DATADIR NAME COLUMN: a column of `repdisk status`
# for a disk (COLUMN: uuid, size, applied, log_end, lag, epoch), with the
# log LOG (empty: the one status finds in DATADIR); nothing when status
# fails.
log_status_field() {
	local col args=()
	case $4 in
	uuid) col=2 ;; size) col=3 ;; applied) col=4 ;; log_end) col=5 ;;
	lag) col=6 ;; epoch) col=7 ;; *) fail "status_field: unknown column $4" ;;
	esac
	# only the log's end (and so the lag) needs the log: on Kafka that
	# is a round trip, so it is asked for only then
	[ -n "$1" ] && [ "$col" -ge 5 ] && [ "$col" -le 6 ] && args=(--log "$1")
	# a status that fails (a replica whose follower has not yet made its
	# data directory, a log that is not up yet) prints nothing here, so
	# polling loops poll on; its message still reaches stderr
	{ "$REPDISK" status "${args[@]}" "$2" || true; } |
		awk -v n="$3" -v c="$col" 'NR > 1 && NF == 0 { exit } NR > 1 && $1 == n { print $c; exit }'
}

# status_field DATADIR NAME COLUMN: the same on the test's log
# (test_log_uri; status finds a file log in DATADIR itself).
status_field() {
	local log=""
	[ "$REPDISK_TEST_BACKEND" = kafka ] && log=$(test_log_uri "$1")
	log_status_field "$log" "$@"
}

# --- the log backend -----------------------------------------------------

KAFKA_CLUSTER=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tools" && pwd)/kafka-cluster.sh

# start_devbroker: a development Kafka cluster for this test (librdkafka's
# mock: 3 brokers, min.insync 2), killed at exit; sets DEVBROKER_BOOTSTRAP
# (its bootstrap servers) and DEVBROKER_CTL (its control socket, for
# `repdisk devbroker ctl`).  For exact fault injection only: it replicates
# nothing and keeps about 5 MiB per partition.  Start it before mounts and
# followers: it is then killed last.
start_devbroker() {
	DEVBROKER_CTL=$T/devbroker.ctl
	start_bg "$T/devbroker.log" "$REPDISK" devbroker --brokers 3 \
		--min-insync 2 --bootstrap-file "$T/devbroker.bootstrap" \
		--control "$DEVBROKER_CTL"
	DEVBROKER_PID=$!
	for _ in $(seq 200); do
		[ -s "$T/devbroker.bootstrap" ] && break
		kill -0 "$DEVBROKER_PID" 2>/dev/null ||
			fail "devbroker exited: $(cat "$T/devbroker.log")"
		sleep 0.05
	done
	[ -s "$T/devbroker.bootstrap" ] || fail "devbroker wrote no bootstrap file"
	DEVBROKER_BOOTSTRAP=$(cat "$T/devbroker.bootstrap")
}

# kcluster COMMAND...: tools/kafka-cluster.sh on the test's cluster.
kcluster() { "$KAFKA_CLUSTER" "$@"; }

# start_kafka_cluster: a real 3-node Kafka cluster of the test's own, in
# $T/kafka (its nodes' logs there too), stopped at exit; for tests that
# kill, pause or cut off brokers.  Exports KAFKA_CLUSTER_DIR and sets
# KAFKA_BOOTSTRAP.  Extra server properties: KAFKA_CLUSTER_PROPS.
start_kafka_cluster() {
	requires java kcat
	export KAFKA_CLUSTER_DIR=$T/kafka
	cleanup "_stop_kafka_cluster '$KAFKA_CLUSTER_DIR'"
	kcluster start > "$T/kafka-start.log" 2>&1 ||
		fail "kafka cluster: $(tail -5 "$T/kafka-start.log")"
	KAFKA_BOOTSTRAP=$(kcluster bootstrap)
}
_stop_kafka_cluster() {
	KAFKA_CLUSTER_DIR=$1 "$KAFKA_CLUSTER" stop
	if [ "${_test_failed:-0}" = 1 ]; then
		local n
		for n in 1 2 3; do
			echo "--- kafka node $n (last errors)" >&2
			grep -E ' (ERROR|WARN) ' "$1/node$n/server.log" 2>/dev/null | tail -n 10 >&2
		done
	fi
}

# use_kafka_cluster: the suite's shared cluster (KAFKA_CLUSTER_DIR, which
# ctest sets and starts once for every test labelled kafka), or one of the
# test's own when none is running.  Sets KAFKA_BOOTSTRAP.  Topics are the
# test's own through its namespace, deleted at exit.
use_kafka_cluster() {
	if [ -n "${KAFKA_CLUSTER_DIR:-}" ] && kcluster wait-ready 60 > /dev/null 2>&1; then
		KAFKA_BOOTSTRAP=$(kcluster bootstrap)
		cleanup "_delete_namespace '$KAFKA_CLUSTER_DIR' '$TEST_NAME-$$'"
	else
		start_kafka_cluster
	fi
}
# _delete_namespace DIR NS: the namespace's topics are deleted, so that the
# shared cluster does not fill the disk over a run.
_delete_namespace() {
	KAFKA_CLUSTER_DIR=$1 "$KAFKA_CLUSTER" admin kafka-topics --delete \
		--if-exists --topic "repdisk\\.$(sed 's/\./\\./g' <<<"$2")\\..*"
}

REPDISK_TEST_BACKEND=${REPDISK_TEST_BACKEND:-file}
case $REPDISK_TEST_BACKEND in
file) ;;
# started here rather than on first use because test_log_uri runs in
# command substitutions, whose cleanups would be lost
kafka) use_kafka_cluster ;;
*) fail "REPDISK_TEST_BACKEND=$REPDISK_TEST_BACKEND: want file or kafka" ;;
esac

# test_log_uri DATADIR: the log of a primary whose data directory is
# DATADIR, as followers and tools name it.  file: the mount's default,
# DATADIR/.repdisk/log.  kafka: the test's Kafka cluster, in a namespace of
# this test's own (the same for every DATADIR: a test has one log).
test_log_uri() {
	case $REPDISK_TEST_BACKEND in
	file) echo "file:$1/.repdisk/log" ;;
	kafka) echo "kafka:$KAFKA_BOOTSTRAP?ns=$TEST_NAME-$$&timeout_ms=30000" ;;
	esac
}

# log_args DATADIR: the arguments that make `repdisk mount` (or status)
# use test_log_uri: none for the file log, whose default it is (the tests
# mount as users do, without --log), --log URI for kafka.
log_args() {
	case $REPDISK_TEST_BACKEND in
	file) ;;
	kafka) echo "--log"; test_log_uri "$1" ;;
	esac
}

# --- mounts and followers ------------------------------------------------

# mount_disks DATADIR MOUNTPOINT [OPTIONS...]: `repdisk mount` as users run
# it (it daemonises and returns once the mount is usable), on the test's
# log (test_log_uri); unmounted at exit whatever happens, and its daemon
# gone.  The daemon's messages are in DATADIR/.repdisk/mount.log.
mount_disks() {
	local data=$1 mnt=$2 args=()
	shift 2
	mkdir -p "$data" "$mnt"
	mapfile -t args < <(log_args "$data")
	cleanup_mount "$mnt"
	"$REPDISK" mount "${args[@]}" "$@" "$data" "$mnt" || fail "repdisk mount $data $mnt failed"
	grep -qs " $(realpath "$mnt") fuse.repdisk " /proc/mounts ||
		fail "$mnt is not mounted after repdisk mount returned"
}

# mount_pid MOUNTPOINT: the daemon serving a mount point.
mount_pid() {
	pgrep -f "^repdisk mount .* $1\$" | head -1
}

# crash_daemon MOUNTPOINT [PID]: SIGKILL the daemon serving a mount (PID,
# found beforehand, makes the kill immediate), wait until it is gone (its
# locks go with it), and drop the dead mount lazily.
crash_daemon() {
	local pid=${2:-}
	[ -n "$pid" ] || pid=$(mount_pid "$1")
	[ -n "$pid" ] || fail "no daemon serves $1"
	kill -9 "$pid"
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && fail "daemon $pid survived SIGKILL"
	fusermount3 -uz "$1"
}

# unmount_disks MOUNTPOINT: unmount and wait until the daemon has exited
# (it checkpoints every disk first).
unmount_disks() {
	local pid
	pid=$(mount_pid "$1")
	fusermount3 -u "$1" || fail "fusermount3 -u $1 failed"
	for _ in $(seq 200); do
		[ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null && return 0
		sleep 0.05
	done
	# what it is doing, for the report
	command -v gdb > /dev/null && gdb -p "$pid" -batch -ex "thread apply all bt" 2>/dev/null |
		grep -E '^(Thread|#)' > "$T/stuck-daemon.log"
	fail "repdisk mount of $1 did not exit after unmount (its threads: $T/stuck-daemon.log)"
}

# At exit: a sanitizer report from any daemon fails the test (the daemon's
# stderr is its mount.log, which nothing else reads).
_check_daemon_logs() {
	local f
	for f in "$T"/*/.repdisk/mount.log "$T"/follower-*.log; do
		[ -f "$f" ] || continue
		if grep -Eq "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:" "$f"; then
			echo "$TEST_NAME: sanitizer report in $f:" >&2
			grep -E -A20 "Sanitizer|runtime error:" "$f" | head -40 >&2
			return 1
		fi
	done
}

# start_follower LOG-URI DATADIR: a follower in the background, killed at
# exit; sets FOLLOWER_PID.
start_follower() {
	mkdir -p "$2"
	start_bg "$T/follower-$(basename "$2").log" "$REPDISK" follow --log "$1" "$2"
	FOLLOWER_PID=$!
}

# converged PRIMARY-DATADIR REPLICA-DATADIR NAME: waits (10 s at most)
# until the replica has applied the primary's whole log for disk NAME,
# then checks the two images are byte-identical.
converged() {
	local log=""
	[ "$REPDISK_TEST_BACKEND" = kafka ] && log=$(test_log_uri "$1")
	log_converged "$log" "$@"
}

# log_converged LOG PRIMARY REPLICA NAME [SECONDS]: converged, with the
# primary's log named (empty: the one status finds in PRIMARY), waiting
# SECONDS (default 10).
log_converged() {
	local log=$1 end="" got="" until=$((SECONDS + ${5:-10}))
	shift
	while :; do
		end=$(log_status_field "$log" "$1" "$3" log_end)
		got=$(log_status_field "" "$2" "$3" applied)
		[ -n "$end" ] && [ "$end" = "$got" ] && break
		[ "$SECONDS" -lt "$until" ] || break
		sleep 0.05
	done
	[ -n "$end" ] && [ "$end" = "$got" ] ||
		fail "replica $2 applied $3 up to ${got:-nothing}, the log ends at ${end:-?}"
	cmp "$1/$3" "$2/$3" || fail "replica's $3 differs from the primary's"
}

# --- bounded clients -----------------------------------------------------

# fusectl_on: mounts fusectl (the kernel's FUSE connections) if it is not,
# and unmounts it again at exit.  Call it from the test's own shell, not in
# a command substitution, whose cleanups are lost.
fusectl_on() {
	grep -qs " /sys/fs/fuse/connections fusectl " /proc/mounts && return 0
	mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null &&
		cleanup "umount /sys/fs/fuse/connections"
}

# fuse_waiting MOUNTPOINT: how many requests the kernel's FUSE connection
# of a mount has sent and not had answered (fusectl's "waiting"), or "?"
# when that cannot be read (call fusectl_on first).
fuse_waiting() {
	local dev
	dev=$(stat -c %d "$1" 2>/dev/null) &&
		cat "/sys/fs/fuse/connections/$dev/waiting" 2>/dev/null || echo "?"
}

# wait_bounded SECONDS MOUNTPOINT LABEL=PID...: waits for every PID (the
# test's own background clients, each named by LABEL, say the disk it
# drives).  A client that has not finished SECONDS after the call is a
# hang, not a slow machine (give several times the normal run): the test
# fails naming each client still running and how many requests the mount
# has not answered, after killing the clients.  A client that exits
# non-zero fails the test too.  Sets nothing; returns when all are done.
# wait_for_line FILE ERE SECS: waits until a line of FILE (a daemon's log)
# matches ERE, SECS at most; the caller asserts on FILE afterwards.
wait_for_line() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

wait_bounded() {
	local secs=$1 mnt=$2 until left p label pid rc
	shift 2
	until=$((SECONDS + secs))
	while :; do
		left=()
		for p in "$@"; do
			kill -0 "${p#*=}" 2>/dev/null && left+=("$p")
		done
		[ ${#left[@]} -eq 0 ] && break
		if [ "$SECONDS" -ge "$until" ]; then
			local waiting
			fusectl_on
			waiting=$(fuse_waiting "$mnt")
			for p in "${left[@]}"; do
				kill -9 "${p#*=}" 2>/dev/null
			done
			fail "hang: not finished after $secs s: ${left[*]%%=*}; $waiting requests to $mnt were still waiting for an answer"
		fi
		sleep 0.1
	done
	for p in "$@"; do
		label=${p%%=*} pid=${p#*=} rc=0
		wait "$pid" 2>/dev/null || rc=$?
		[ "$rc" -eq 0 ] || fail "$label: exited $rc"
	done
}

# --- faults --------------------------------------------------------------

# with_faults CTL CMD...: runs CMD (a command or a helper such as
# mount_disks) with tests/tools/faultshim.c preloaded, its rules in file
# CTL (see there: "eio SUBSTRING", "hang SUBSTRING", ...).  ctest names
# the library in FAULTSHIM.  Set the rules with set_faults.
with_faults() {
	local ctl=$1
	shift
	[ -n "$FAULTSHIM" ] && [ -f "$FAULTSHIM" ] ||
		fail "FAULTSHIM does not name the fault library (${FAULTSHIM:-unset})"
	LD_PRELOAD=$FAULTSHIM FAULTSHIM_CTL=$ctl \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$@"
}

# set_faults CTL [RULE...]: replaces the rules at once (none: no faults).
set_faults() {
	local ctl=$1
	shift
	printf '%s\n' "$@" > "$ctl.new"
	mv -f "$ctl.new" "$ctl"
}
