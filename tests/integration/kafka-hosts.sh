#!/bin/bash
# Three hosts, each in a network namespace of its own, reach a real 3-node
# Kafka cluster over veth links to a bridge that this test makes (the
# brokers listen on the bridge's address).  host-a mounts the disk and
# writes (ackwriter, every acknowledged write recorded); host-b and
# host-c follow.
#   - partition: host-a's link is cut (ip link set down) while it writes:
#     writes fail with EIO after the write timeout, reads go on; the link
#     back, writes resume with no remount, and every acknowledged write is
#     there;
#   - takeover: host-b stops following and takes the disk over
#     (`mount --takeover`) while host-a still writes: host-a is fenced
#     (EROFS, its log names host-b), host-b holds every write host-a saw
#     acknowledged and writes on;
#   - `repdisk status` answers on every host, host-c converges on host-b's
#     writes, and at rest every replica is identical (repdisk verify).
# Only the mount and the followers run in the namespaces (nsenter --net:
# the FUSE mount stays visible to the test).
. "$(dirname "$0")/../lib/lib.sh"
requires ip nsenter fusermount3 truncate dd cmp timeout

WRITE_TIMEOUT=10
net=10.213.$((RANDOM % 250 + 1))
br=rdbr$$
ip link add "$br" type bridge || fail "ip link add bridge"
cleanup "ip link del '$br'"
ip addr add "$net.1/24" dev "$br"
ip link set "$br" up
declare -A NS LINK
i=10
for h in a b c; do
	ns=rd-$h-$$ veth=rd$h$$
	NS[$h]=$ns LINK[$h]=$veth
	ip netns add "$ns" || fail "ip netns add $ns"
	cleanup "ip netns del '$ns'"
	ip link add "$veth" type veth peer name eth0 netns "$ns" || fail "veth for $h"
	ip link set "$veth" master "$br" up
	ip -n "$ns" addr add "$net.$i/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
	i=$((i + 1))
done
# on HOST CMD...: CMD in HOST's network namespace
on() {
	local h=$1
	shift
	nsenter --net="/run/netns/${NS[$h]}" "$@"
}

KAFKA_CLUSTER_HOST=$net.1 start_kafka_cluster
LOG="kafka:$KAFKA_BOOTSTRAP?ns=hosts&timeout_ms=$((WRITE_TIMEOUT * 1000))"
on b timeout 10 kcat -L -b "$KAFKA_BOOTSTRAP" -m 5 > /dev/null 2>&1 ||
	fail "host-b cannot reach the brokers at $KAFKA_BOOTSTRAP"
A=$T/host-a B=$T/host-b C=$T/host-c

# hmount HOST DATADIR MOUNTPOINT OPTIONS...: a mount on HOST, as host-HOST
hmount() {
	local h=$1 d=$2 m=$3
	shift 3
	mkdir -p "$d" "$m"
	cleanup_mount "$m"
	on "$h" "$REPDISK" mount --log "$LOG" --host "host-$h" "$@" "$d" "$m" ||
		fail "host-$h: repdisk mount failed"
}
# hfollow HOST DATADIR: a follower on HOST, named host-HOST; sets FPID
hfollow() {
	mkdir -p "$2"
	start_bg "$T/follower-$1.log" nsenter --net="/run/netns/${NS[$1]}" \
		"$REPDISK" follow --log "$LOG" --name "host-$1" "$2"
	FPID=$!
}
ack_args() { echo --threads 4 --blocks 256 --bs 4096; }
SESSIONS=0	# writer sessions, each may leave 4 writes unacknowledged in the log
writer_start() { # MOUNTPOINT
	SESSIONS=$((SESSIONS + 1))
	# shellcheck disable=SC2046
	start_bg "$T/ackwriter.log" "$ACKWRITER" write "$1/vm1.img" "$T/acks" \
		$(ack_args) --delay-us 5000
	WRITER=$!
}
acks() { cat "$T/acks" 2> /dev/null | wc -l; }
wait_more_acks() { # N SECONDS: N more writes acknowledged within SECONDS
	local want=$(($(acks) + $1)) until=$((SECONDS + $2))
	while [ "$(acks)" -lt "$want" ]; do
		[ "$SECONDS" -lt "$until" ] || fail "fewer than $1 writes acknowledged in $2 s"
		running "$WRITER" || fail "the writer stopped: $(cat "$T/ackwriter.log")"
		sleep 0.2
	done
}
wait_writer_exit() { # SECONDS
	for _ in $(seq $(($1 * 10))); do
		running "$WRITER" || return 0
		sleep 0.1
	done
	fail "the writer still writes $1 s later"
}
verify_acks() { # IMAGE
	# shellcheck disable=SC2046
	"$ACKWRITER" verify "$1" "$T/acks" $(ack_args) --max-ahead $((4 * SESSIONS)) > "$T/verify.out" 2>&1 ||
		{ cat "$T/verify.out"; fail "$1: acknowledged writes lost"; }
}

hmount a "$A" "$T/ma" --write-timeout "$WRITE_TIMEOUT"
truncate -s 64M "$T/ma/vm1.img"
hfollow b "$B"
FB=$FPID
hfollow c "$C"
writer_start "$T/ma"
wait_more_acks 200 60

# --- a network partition between host-a and the cluster -------------------
ip link set "${LINK[a]}" down
t0=$SECONDS
wait_writer_exit $((WRITE_TIMEOUT + 30))
grep -q "write failed: Input/output error" "$T/ackwriter.log" ||
	fail "host-a cut off: want EIO, got: $(cat "$T/ackwriter.log")"
say "host-a cut off: its writes failed with EIO after $((SECONDS - t0)) s (write timeout $WRITE_TIMEOUT s)"
timeout 30 dd if="$T/ma/vm1.img" of=/dev/null bs=1M iflag=direct status=none ||
	fail "host-a cut off: reads failed"
ip link set "${LINK[a]}" up
writer_start "$T/ma"
wait_more_acks 200 120
say "host-a's link back: writes resumed without a remount"
verify_acks "$T/ma/vm1.img"

# --- host-b takes the disk over while host-a writes -------------------------
kill -TERM "$FB"
wait "$FB" 2> /dev/null || true
hmount b "$B" "$T/mb" --takeover --write-timeout "$WRITE_TIMEOUT"
wait_writer_exit 60
grep -q "write failed: Read-only file system" "$T/ackwriter.log" ||
	fail "host-a after the takeover: want EROFS, got: $(cat "$T/ackwriter.log")"
grep -q "vm1.img: fenced: the disk was claimed by epoch [0-9]* (host host-b:" "$A/.repdisk/mount.log" ||
	fail "host-a's log does not name host-b: $(tail -5 "$A/.repdisk/mount.log")"
verify_acks "$T/mb/vm1.img"
say "host-b took over: host-a fenced, $(acks) acknowledged writes all on host-b"
writer_start "$T/mb"
wait_more_acks 200 60
kill "$WRITER"
wait "$WRITER" 2> /dev/null || true

# --- status everywhere, and every replica the same ---------------------------
for h in a b c; do
	d=$T/host-$h
	on "$h" "$REPDISK" status --log "$LOG" "$d" > "$T/status.$h" 2>&1 ||
		fail "host-$h: repdisk status: $(cat "$T/status.$h")"
	grep -q "^vm1.img " "$T/status.$h" || fail "host-$h: status lists no vm1.img: $(cat "$T/status.$h")"
done
log_converged "$LOG" "$B" "$C" vm1.img 60
grep -q "host-c" "$T/status.b" || fail "host-b's status does not list the follower host-c: $(cat "$T/status.b")"
unmount_disks "$T/mb"
unmount_disks "$T/ma"
expect_exit 0 on a "$REPDISK" follow --once --log "$LOG" "$A"
log_converged "$LOG" "$B" "$C" vm1.img 60
kill "$FPID"
wait "$FPID" 2> /dev/null || true
for r in "$A" "$C"; do
	expect_exit 0 "$REPDISK" verify -q "$B" "$r"
done
verify_acks "$B/vm1.img"
say "ok"
