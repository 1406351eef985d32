#!/bin/bash
# What a mount leaves in Kafka, seen with Kafka's own tools (kcat) next to
# repdisk's (status, log dump), on a real 3-node cluster:
#   - kcat -L lists the namespace's topics: repdisk.NS.catalog and one
#     repdisk.NS.disk.UUID per disk, the UUIDs that `repdisk status` shows;
#   - kcat reads each topic's records at offsets contiguous from 0, each
#     the header (128 bytes; 96 before version 3) plus the payload that
#     `repdisk log dump` reports, and dump decodes as many records, in
#     the same positions, with the right types: the catalog the mount's CLAIM and a CREATE per disk;
#     each disk its CLAIM first, RESIZE (truncate), then the WRITEs that
#     were made, at their offsets and lengths;
#   - the topics were made by CreateTopics as documented: 1 partition,
#     replication factor 3, min.insync.replicas 2, no retention
#     (kafka-topics --describe, kafka-configs --describe);
#   - a 1 MiB O_DIRECT write becomes four 256 KiB WRITE records (the
#     writer splits records so that three fit the topic's
#     max.message.bytes, Kafka's default 1 MB); once the topic's
#     max.message.bytes is set to 65536 (kafka-configs --alter), a mount
#     is refused, saying to give max_message=65536 in the URI, and with
#     it 64 records of 16 KiB,
#     the bytes right either way, through the mount and on a follower;
#   - max_message=65536 in the URI of a new namespace creates its topics
#     with max.message.bytes=65536;
#   - a catalog topic made beforehand with min.insync.replicas=1 and
#     unclean.leader.election.enable=true is used, with a warning for each
#     in the mount's log that says what it risks.
. "$(dirname "$0")/../lib/lib.sh"
requires kcat dd cmp fusermount3 truncate

use_kafka_cluster
BS=$KAFKA_BOOTSTRAP
NS=$TEST_NAME-$$
LOG="kafka:$BS?ns=$NS"
D=$T/data M=$T/mnt

kmount() { # OPTIONS...: the mount, unmounted and reaped at exit
	mount_disks "$D" "$M" "$@" 2> "$T/mount.err" || fail "mount $*: $(cat "$T/mount.err")"
}
write_direct() { # FILE IMAGE OFFSET: one O_DIRECT write of the whole FILE
	local n
	n=$(stat -c %s "$1")
	dd if="$1" of="$2" bs="$n" count=1 seek="$(($3 / n))" oflag=direct conv=notrunc \
		status=none 2> "$T/dd.err" || fail "write to $2 at $3: $(cat "$T/dd.err")"
}
readback() { # IMAGE OFFSET FILE: IMAGE holds FILE at OFFSET
	local n
	n=$(stat -c %s "$3")
	dd if="$1" of="$T/readback" bs="$n" count=1 skip="$(($2 / n))" iflag=direct \
		status=none 2> "$T/dd.err" || fail "read of $1: $(cat "$T/dd.err")"
	cmp "$T/readback" "$3" || fail "$1 at $2 does not hold $(basename "$3")"
}
# records TOPIC: "OFFSET SIZE" of each message in partition 0, as kcat reads it
records() {
	timeout 60 kcat -C -b "$BS" -t "$1" -p 0 -o beginning -e -q -f '%o %S\n' ||
		fail "kcat could not read $1"
}
# same_records TOPIC STREAM: kcat and `repdisk log dump` agree on STREAM's
# records: the same positions, contiguous from 0, and each message is the
# header (128 bytes in version 3, 96 before) plus the payload dump reports
# (stored=N)
same_records() {
	records "$1" > "$T/kcat.$2"
	timeout 60 "$REPDISK" log dump --log "$LOG" "$2" > "$T/dump.$2" 2> "$T/dump.err" ||
		fail "log dump $2: $(cat "$T/dump.err")"
	awk '{ print $1, $2 }' "$T/kcat.$2" | awk '$1 != NR - 1 { exit 1 } $2 < 96 { exit 1 }' ||
		{ cat "$T/kcat.$2"; fail "$1: offsets not contiguous from 0, or a message under 96 bytes"; }
	awk '{ s = ""; h = 96
		for (i = 3; i <= NF; i++) {
			if ($i ~ /^stored=/) s = substr($i, 8)
			if ($i ~ /^version=/ && substr($i, 9) >= 3) h = 128
		}
		print $2, h + s }' "$T/dump.$2" > "$T/want.$2"
	diff "$T/kcat.$2" "$T/want.$2" > "$T/diff" ||
		{ cat "$T/diff"; fail "$1: kcat's offsets and sizes differ from log dump's records of $2"; }
	[ -s "$T/kcat.$2" ] || fail "$1 is empty"
}
# types STREAM: "POSITION TYPE FIELDS" of the dump, without seq and codec
types() {
	awk '{ line = $2 " " $3
		for (i = 4; i <= NF; i++)
			if ($i ~ /^(epoch|disk|offset|length|size|name)=/) line = line " " $i
		print line }' "$T/dump.$1"
}

# --- two disks, a few writes ------------------------------------------------
kmount --log "kafka:$BS" --namespace "$NS"	# the namespace as an option
truncate -s 4M "$M/a.img" || fail "truncate in the mount"
truncate -s 8M "$M/b.img" || fail "truncate in the mount"
for i in 1 2 3; do head -c 4096 /dev/urandom > "$T/a$i.bin"; done
write_direct "$T/a1.bin" "$M/a.img" 8192
write_direct "$T/a2.bin" "$M/a.img" 65536
write_direct "$T/a3.bin" "$M/a.img" 1048576
head -c 1M /dev/urandom > "$T/b1.bin"
write_direct "$T/b1.bin" "$M/b.img" 1048576

# --- topics: the catalog and one per disk, named by the disks' UUIDs ------
"$REPDISK" status --log "$LOG" "$D" > "$T/status" 2>&1 || fail "status: $(cat "$T/status")"
ua=$(awk 'NR > 1 && $1 == "a.img" { print $2; exit }' "$T/status")
ub=$(awk 'NR > 1 && $1 == "b.img" { print $2; exit }' "$T/status")
[[ $ua =~ ^[0-9a-f-]{36}$ && $ub =~ ^[0-9a-f-]{36}$ && $ua != "$ub" ]] ||
	{ cat "$T/status"; fail "status does not show two disks with UUIDs"; }
timeout 60 kcat -L -b "$BS" > "$T/topics" 2>&1 || fail "kcat -L: $(cat "$T/topics")"
grep -o "topic \"repdisk\.$NS\.[^\"]*\"" "$T/topics" | sort > "$T/got"
printf 'topic "repdisk.%s.%s"\n' "$NS" catalog "$NS" "disk.$ua" "$NS" "disk.$ub" | sort > "$T/want"
diff "$T/got" "$T/want" || { cat "$T/topics"; fail "kcat -L does not list the namespace's 3 topics"; }
grep -q 'topic "repdisk\.default\.' "$T/topics" && fail "topics in the default namespace too"

# --- the topics' settings, as Kafka's own tools show them -------------------
# topic_config TOPIC KEY...: "KEY=VALUE" for each KEY, from one
# kafka-configs --describe --all
topic_config() {
	local t=$1
	shift
	kcluster admin kafka-configs --describe --all --entity-type topics \
		--entity-name "$t" > "$T/configs" 2>&1 || fail "kafka-configs --describe $t: $(cat "$T/configs")"
	for k in "$@"; do
		awk -v k="$k" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print $i; exit } }' "$T/configs"
	done
}
for t in catalog "disk.$ua" "disk.$ub"; do
	kcluster admin kafka-topics --describe --topic "repdisk.$NS.$t" > "$T/describe" 2>&1 ||
		fail "kafka-topics --describe: $(cat "$T/describe")"
	grep -Eq "PartitionCount: 1[[:space:]].*ReplicationFactor: 3" "$T/describe" ||
		{ cat "$T/describe"; fail "repdisk.$NS.$t: not 1 partition with 3 replicas"; }
	want=(min.insync.replicas=2 retention.ms=-1 retention.bytes=-1 cleanup.policy=delete
		max.message.bytes=1048588 unclean.leader.election.enable=false)
	got=$(topic_config "repdisk.$NS.$t" "${want[@]%%=*}")
	[ "$got" = "$(printf '%s\n' "${want[@]}")" ] ||
		fail "repdisk.$NS.$t: settings $(echo $got), want ${want[*]}"
done

# --- the records, read by kcat and by log dump -----------------------------
same_records "repdisk.$NS.catalog" catalog
same_records "repdisk.$NS.disk.$ua" a.img
same_records "repdisk.$NS.disk.$ub" b.img
types catalog > "$T/got"
printf '0 CLAIM epoch=1\n1 CREATE epoch=1 disk=%s name=a.img\n2 CREATE epoch=1 disk=%s name=b.img\n' \
	"$ua" "$ub" > "$T/want"
diff "$T/got" "$T/want" ||
	fail "the catalog is not the mount's CLAIM, then CREATEs of a.img and b.img with their UUIDs"
grep -q "^catalog 0 CLAIM .* host=[^ ]*:$D " "$T/dump.catalog" ||
	{ cat "$T/dump.catalog"; fail "the catalog's CLAIM does not name HOST:$D"; }
types a.img > "$T/got"
cat > "$T/want" <<EOF
0 CLAIM epoch=1
1 RESIZE epoch=1 size=4194304
2 WRITE epoch=1 offset=8192 length=4096
3 WRITE epoch=1 offset=65536 length=4096
4 WRITE epoch=1 offset=1048576 length=4096
EOF
diff "$T/got" "$T/want" || fail "a.img's records are not CLAIM, RESIZE and the 3 writes"
# 1 MiB, split in four: three parts fit Kafka's default message.max.bytes
types b.img > "$T/got"
cat > "$T/want" <<EOF
0 CLAIM epoch=1
1 RESIZE epoch=1 size=8388608
2 WRITE epoch=1 offset=1048576 length=262144
3 WRITE epoch=1 offset=1310720 length=262144
4 WRITE epoch=1 offset=1572864 length=262144
5 WRITE epoch=1 offset=1835008 length=262144
EOF
diff "$T/got" "$T/want" || fail "b.img's 1 MiB write is not four 256 KiB WRITE records"
[ "$(awk 'NR > 2 { print $2 }' "$T/kcat.b.img" | sort -u)" = $((128 + 262144)) ] ||
	fail "the four parts are not 262272-byte messages (a 128-byte header and 256 KiB): $(cat "$T/kcat.b.img")"
for i in 1 2 3; do readback "$M/a.img" $((i == 1 ? 8192 : i == 2 ? 65536 : 1048576)) "$T/a$i.bin"; done
readback "$M/b.img" 1048576 "$T/b1.bin"
say "kcat and log dump agree: catalog $(wc -l < "$T/kcat.catalog"), a.img $(wc -l < "$T/kcat.a.img"), b.img $(wc -l < "$T/kcat.b.img") records"

# --- max.message.bytes=65536: a 1 MiB write becomes 64 records of 16 KiB ---
unmount_disks "$M"
kcluster admin kafka-configs --alter --entity-type topics --entity-name "repdisk.$NS.disk.$ub" \
	--add-config max.message.bytes=65536 > "$T/alter" 2>&1 || fail "kafka-configs --alter: $(cat "$T/alter")"
mkdir -p "$M"
expect_exit 1 "$REPDISK" mount --log "$LOG" "$D" "$M"
expect_stderr "topic repdisk\.$NS\.disk\.$ub takes messages of at most 65536 bytes \(max\.message\.bytes\), less than the 1048588 this log sends: give max_message=65536 in the log URI"
kmount --log "$LOG&max_message=65536"	# the namespace in the URI
head -c 1M /dev/urandom > "$T/b2.bin"
write_direct "$T/b2.bin" "$M/b.img" 3145728
readback "$M/b.img" 3145728 "$T/b2.bin"
readback "$M/b.img" 1048576 "$T/b1.bin"
same_records "repdisk.$NS.disk.$ub" b.img
types b.img | tail -n +7 > "$T/got"
{
	echo "6 CLAIM epoch=2"
	for i in $(seq 0 63); do
		echo "$((7 + i)) WRITE epoch=2 offset=$((3145728 + i * 16384)) length=16384"
	done
} > "$T/want"
diff "$T/got" "$T/want" > "$T/diff" ||
	{ cat "$T/diff"; fail "with max.message.bytes=65536, the 1 MiB write is not 64 WRITE records of 16 KiB"; }
awk 'NR > 7 && $2 > 65536 { exit 1 }' "$T/kcat.b.img" ||
	fail "a message over max.message.bytes=65536: $(cat "$T/kcat.b.img")"
# the new mount claimed the catalog too (epoch 3: the refused one had
# claimed it before it opened the disks)
same_records "repdisk.$NS.catalog" catalog
[ "$(types catalog | tail -n +4 | tr '\n' ' ')" = "3 CLAIM epoch=2 4 CLAIM epoch=3 " ] ||
	{ cat "$T/dump.catalog"; fail "the second mount did not claim the catalog (epoch 3)"; }
# no topic of another namespace appeared
timeout 60 kcat -L -b "$BS" > "$T/topics" 2>&1 || fail "kcat -L"
[ "$(grep -c "topic \"repdisk\.$NS\.disk\." "$T/topics")" = 2 ] || { cat "$T/topics"; fail "disk topics changed"; }
grep -q 'topic "repdisk\.default\.' "$T/topics" && fail "topics in the default namespace"

# --- a follower replays both disks, split records and all -----------------
timeout 120 "$REPDISK" follow --once --log "$LOG" "$T/replica" > "$T/follow.out" 2>&1 ||
	fail "follow --once: $(cat "$T/follow.out")"
cmp "$D/a.img" "$T/replica/a.img" || fail "the follower's a.img differs"
cmp "$D/b.img" "$T/replica/b.img" || fail "the follower's b.img differs"
readback "$T/replica/b.img" 3145728 "$T/b2.bin"
readback "$T/replica/b.img" 1048576 "$T/b1.bin"
unmount_disks "$M"

# --- a new namespace with max_message in the URI ---------------------------
NS2=$NS-small
cleanup "_delete_namespace '$KAFKA_CLUSTER_DIR' '$NS2'"
D=$T/data2 M=$T/mnt2
kmount --log "kafka:$BS?ns=$NS2&max_message=65536"
truncate -s 4M "$M/c.img" || fail "truncate in the mount"
write_direct "$T/b2.bin" "$M/c.img" 1048576
readback "$M/c.img" 1048576 "$T/b2.bin"
uc=$("$REPDISK" status --log "kafka:$BS?ns=$NS2" "$D" | awk 'NR > 1 && $1 == "c.img" { print $2; exit }')
for t in catalog "disk.$uc"; do
	got=$(topic_config "repdisk.$NS2.$t" max.message.bytes)
	[ "$got" = max.message.bytes=65536 ] || fail "repdisk.$NS2.$t: $got, want max.message.bytes=65536"
done
records "repdisk.$NS2.disk.$uc" | awk '$2 > 65536 { exit 1 }' || fail "a message over 65536 bytes in repdisk.$NS2.disk.$uc"
unmount_disks "$M"

# --- a catalog topic made beforehand, with settings that risk data ---------
NS3=$NS-risky
cleanup "_delete_namespace '$KAFKA_CLUSTER_DIR' '$NS3'"
kcluster admin kafka-topics --create --topic "repdisk.$NS3.catalog" --partitions 1 \
	--replication-factor 3 --config min.insync.replicas=1 \
	--config unclean.leader.election.enable=true > "$T/create" 2>&1 ||
	fail "kafka-topics --create: $(cat "$T/create")"
D=$T/data3 M=$T/mnt3
kmount --log "kafka:$BS?ns=$NS3"
cat "$T/mount.err" "$D/.repdisk/mount.log" > "$T/said"
grep -q "warning: topic repdisk\.$NS3\.catalog has min\.insync\.replicas 1, less than the 2 asked for: a write is acknowledged once 1 replica has it" "$T/said" ||
	fail "no min.insync.replicas warning: $(cat "$T/said")"
grep -q "warning: topic repdisk\.$NS3\.catalog has unclean\.leader\.election\.enable=true: .*acknowledged writes can be lost" "$T/said" ||
	fail "no unclean.leader.election warning: $(cat "$T/said")"
say "ok"
