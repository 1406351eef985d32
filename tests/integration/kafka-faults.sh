#!/bin/bash
# A mount on a 3-broker development Kafka cluster (min.insync 2, mount
# --write-timeout 5) while brokers fail, a follower tailing the log all
# along, fio (O_DIRECT libaio, 4-64 KiB, crc32c headers) writing and
# verifying:
#   (a) the partition leader's broker down: the leader moves, fio writes
#       and verifies;
#   (b) a second broker down (below min.insync): a write fails with EIO
#       within the write timeout plus a margin, the mount log names the
#       disk and says writes fail with EIO until the log accepts appends
#       again, and reads go on (fio verify_only, dd of known bytes);
#   (c) the brokers back: writes succeed again without a remount, the
#       log says so, fio writes and verifies, and the blocks of (a) still
#       verify;
#   (d) injected retriable produce errors (NOT_ENOUGH_REPLICAS): a few are
#       retried by the producer and never reach the writer; as many as
#       outlast the write timeout fail the write with EIO (so the
#       injection does reach the writes), and once cleared writes succeed.
# Then the follower holds byte-identical images, and after an unmount and
# a remount every block still verifies.
#
# The devbroker keeps only about 5 MiB per partition: each disk gets a few
# MiB of writes at most.
. "$(dirname "$0")/../lib/lib.sh"
requires fio kcat dd cmp fusermount3 truncate

# --- the cluster, the mount, the follower --------------------------------
# The development cluster is started first, so it is killed last, after
# the mounts and the follower.
start_devbroker
BS=$DEVBROKER_BOOTSTRAP
NS=faults
LOG="kafka:$BS?ns=$NS"
D=$T/data M=$T/mnt R=$T/replica
MLOG=$D/.repdisk/mount.log

ctl() { # ctl COMMAND...: a devbroker control command that must succeed
	"$REPDISK" devbroker ctl "$DEVBROKER_CTL" "$@" > "$T/ctl.out" 2>&1 ||
		fail "devbroker ctl $*: $(cat "$T/ctl.out")"
}
kmount() { # the primary, on the Kafka log, 5 s write timeout
	mount_disks "$D" "$M" --log "$LOG" --write-timeout 5 2> "$T/mount.err" ||
		fail "mount: $(cat "$T/mount.err")"
}
leader() { # TOPIC: the broker leading partition 0
	kcat -L -b "$BS" -t "$1" | awk '/partition 0,/ { sub(",", "", $4); print $4 }'
}
readback() { # IMAGE OFFSET FILE: O_DIRECT read of IMAGE at OFFSET equals FILE
	local n=$(($(stat -c %s "$3") / 65536))
	dd if="$1" of="$T/readback" bs=64k skip="$(($2 / 65536))" count="$n" \
		iflag=direct status=none 2> "$T/dd.err" || fail "dd read of $1: $(cat "$T/dd.err")"
	cmp "$T/readback" "$3" || fail "$1 at $2 does not hold $(basename "$3")"
}
write_direct() { # FILE IMAGE OFFSET: O_DIRECT write, which must succeed
	dd if="$1" of="$2" bs=64k seek="$(($3 / 65536))" oflag=direct conv=notrunc \
		status=none 2> "$T/dd.err" || fail "write to $2 at $3: $(cat "$T/dd.err")"
}

kmount
start_follower "$LOG" "$R"
truncate -s 16M "$M/vm1.img" || fail "truncate vm1.img"
truncate -s 1M "$M/ref.img" "$M/eio.img" "$M/inj.img" || fail "truncate"
head -c 1M /dev/urandom > "$T/ref.bin"
write_direct "$T/ref.bin" "$M/ref.img" 0
uuid=$(log_status_field "$LOG" "$D" vm1.img uuid)
topic=repdisk.$NS.disk.$uuid
[ -n "$uuid" ] && kcat -L -b "$BS" | grep -q "\"$topic\"" ||
	fail "no topic $topic for vm1.img: $(kcat -L -b "$BS")"

# fio: two 8 MiB regions of vm1.img, about 2 MiB of random writes in each,
# every block with a crc32c header; each job on its own (--section), so
# that a verify_only run replays the same offsets.
cat > "$T/job.fio" <<EOF
[global]
filename=$M/vm1.img
ioengine=libaio
direct=1
iodepth=8
rw=randwrite
bssplit=4k/50:16k/25:64k/25
verify=crc32c
do_verify=1
verify_fatal=1
randrepeat=1
size=8M
io_size=2M

[a]
offset=0

[c]
offset=8M
EOF
declare -A WROTE	# SECTION: how many blocks fio wrote
run_fio() { # SECTION [--verify_only]: exit 0, no error, every block written read back
	local s=$1 r w
	shift
	(cd "$T" && fio --section="$s" "$@" "$T/job.fio") > "$T/fio-$s.out" 2>&1 ||
		{ cat "$T/fio-$s.out"; fail "fio $s $* exited non-zero"; }
	grep -Eiq "verify:|crc32c|bad magic|err= *[1-9]" "$T/fio-$s.out" &&
		{ cat "$T/fio-$s.out"; fail "fio $s $* reported errors"; }
	grep -q "^$s: (groupid=0, jobs=1): err= 0:" "$T/fio-$s.out" ||
		{ cat "$T/fio-$s.out"; fail "fio $s $*: no err= 0"; }
	read -r r w < <(sed -n 's/^ *issued rwts: total=\([0-9]*\),\([0-9]*\),.*/\1 \2/p' "$T/fio-$s.out")
	if [ "${1:-}" = --verify_only ]; then
		[ "$r" = "${WROTE[$s]}" ] ||
			{ cat "$T/fio-$s.out"; fail "fio $s $*: read $r blocks, want the ${WROTE[$s]} written"; }
	else
		[ "$r" = "$w" ] && [ "$w" -gt 30 ] ||
			{ cat "$T/fio-$s.out"; fail "fio $s: wrote $w blocks, read back $r, want about 2 MiB both"; }
		WROTE[$s]=$w
	fi
}

# --- (a) the leader's broker down: the partition moves, writes go on ------
lead=$(leader "$topic")
[ -n "$lead" ] || fail "no leader for $topic"
ctl down "$lead"
new=$(leader "$topic")
[ -n "$new" ] && [ "$new" != "$lead" ] || fail "the leader stayed on broker $lead, which is down"
run_fio a
say "(a) broker $lead down, leader now $new: fio wrote and verified 2 MiB"

# --- (b) a second broker down: no quorum, writes fail with EIO, reads go on
other=$((6 - lead - new))	# brokers are 1, 2 and 3
ctl down "$other"
ctl status
grep -q "quorum no" "$T/ctl.out" || fail "devbroker status: $(cat "$T/ctl.out")"
head -c 64K /dev/urandom > "$T/eio.bin"
t0=$EPOCHREALTIME
rc=0
dd if="$T/eio.bin" of="$M/eio.img" bs=64k seek=4 oflag=direct conv=notrunc \
	status=none 2> "$T/dd-eio.err" || rc=$?
t1=$EPOCHREALTIME
[ "$rc" -ne 0 ] || fail "a write succeeded with 1 of 3 brokers up (min.insync 2)"
grep -q "Input/output error" "$T/dd-eio.err" || fail "the write failed, but not with EIO: $(cat "$T/dd-eio.err")"
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
awk -v s="$secs" 'BEGIN { exit !(s < 15) }' ||
	fail "the write failed with EIO after $secs s, want less than 5 s (write timeout) + 10 s"
for _ in $(seq 100); do grep -q "^repdisk: eio.img: log append failed" "$MLOG" && break; sleep 0.05; done
grep -Eq "^repdisk: eio.img: log append failed: .*; writes fail with EIO until the log accepts appends again" "$MLOG" ||
	{ cat "$MLOG"; fail "the mount log does not say eio.img fails writes with EIO"; }
# reads keep working: bytes written before, and fio's blocks of (a)
readback "$M/ref.img" 0 "$T/ref.bin"
run_fio a --verify_only
readback "$M/ref.img" 0 "$T/ref.bin"
say "(b) brokers $lead and $other down: the write failed with EIO after $secs s, reads go on"

# --- (c) the brokers back: writes succeed again, without a remount ------
ctl up "$other"
ctl up "$lead"
head -c 64K /dev/urandom > "$T/eio2.bin"
write_direct "$T/eio2.bin" "$M/eio.img" 262144
readback "$M/eio.img" 262144 "$T/eio2.bin"
grep -Eq "^repdisk: eio.img: the log accepts appends again; [1-9][0-9]* writes failed with EIO meanwhile" "$MLOG" ||
	{ cat "$MLOG"; fail "the mount log does not say eio.img accepts appends again"; }
run_fio c
run_fio a --verify_only
say "(c) brokers back: writes succeed, fio wrote and verified 2 MiB more, (a) still verifies"

# --- (d) injected produce errors -----------------------------------------
# more than the write timeout can absorb: the write fails with EIO...
ctl error 0 NOT_ENOUGH_REPLICAS 100000
rc=0
dd if="$T/eio.bin" of="$M/inj.img" bs=64k seek=8 oflag=direct conv=notrunc \
	status=none 2> "$T/dd-inj.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "Input/output error" "$T/dd-inj.err" ||
	fail "a write succeeded while every produce request was refused: $(cat "$T/dd-inj.err")"
ctl clear 0
# ...and once cleared, writes succeed at once
head -c 64K /dev/urandom > "$T/inj1.bin"
write_direct "$T/inj1.bin" "$M/inj.img" 0
grep -Eq "^repdisk: inj.img: the log accepts appends again" "$MLOG" ||
	{ cat "$MLOG"; fail "the mount log does not say inj.img accepts appends again"; }
# a few retriable errors are retried by the producer: nothing surfaces
failures=$(grep -c "log append failed" "$MLOG")
head -c 256K /dev/urandom > "$T/inj2.bin"
for i in 1 2 3; do
	ctl error 0 NOT_ENOUGH_REPLICAS 5
	grep -q "^ok next 5 requests of api 0 fail with NOT_ENOUGH_REPLICAS" "$T/ctl.out" ||
		fail "devbroker ctl error: $(cat "$T/ctl.out")"
	write_direct "$T/inj2.bin" "$M/inj.img" $((i * 262144))
	readback "$M/inj.img" $((i * 262144)) "$T/inj2.bin"
done
[ "$(grep -c "log append failed" "$MLOG")" = "$failures" ] ||
	{ cat "$MLOG"; fail "retriable produce errors surfaced as failed appends"; }
ctl clear 0
say "(d) retriable produce errors: 5 at a time absorbed, unending ones fail the write with EIO"

# --- the follower converged; a remount still verifies ----------------------
for disk in vm1.img ref.img eio.img inj.img; do log_converged "$LOG" "$D" "$R" "$disk" 60; done
kill -0 "$FOLLOWER_PID" || fail "the follower exited: $(cat "$T/follower-replica.log")"
unmount_disks "$M"
kmount
run_fio a --verify_only
run_fio c --verify_only
readback "$M/ref.img" 0 "$T/ref.bin"
readback "$M/eio.img" 262144 "$T/eio2.bin"
readback "$M/inj.img" 0 "$T/inj1.bin"
for i in 1 2 3; do readback "$M/inj.img" $((i * 262144)) "$T/inj2.bin"; done
for disk in vm1.img ref.img eio.img inj.img; do log_converged "$LOG" "$D" "$R" "$disk" 60; done
say "ok"
