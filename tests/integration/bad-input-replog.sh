#!/bin/bash
# Bad input is refused clearly and changes nothing: usage errors exit 2,
# missing or wrong directories give a one-line error and exit 1, and a
# flipped byte in a log segment is reported by `log dump` and `follow` with
# its segment, byte offset and position; the follower applies nothing past
# it, and a writer refuses to open the damaged log rather than cut
# acknowledged records.
. "$(dirname "$0")/../lib/lib.sh"

# --- usage
for args in "" "bogus" "follow" "follow --bogus x" "follow --log file:x" \
	"status" "status a b" "log" "log bogus" "log dump" "log dump --log" \
	"log bench --seconds zero" "follow --checkpoint-records 0 --log file:x d"; do
	# shellcheck disable=SC2086
	expect_exit 2 "$REPDISK" $args
	expect_stderr "usage: repdisk"
done
for c in "" follow status "log dump" "log bench"; do
	# shellcheck disable=SC2086
	expect_exit 0 "$REPDISK" $c --help
	grep -q "^usage: repdisk" "$T/stdout" || fail "$c --help prints no usage"
done

# --- missing or wrong directories: one line, exit 1
expect_exit 1 "$REPDISK" follow --once --log "file:$T/nolog" "$T/nodir"
expect_stderr "^repdisk follow: log $T/nolog: no such log$"
[ "$(wc -l < "$T/stderr")" = 1 ] || fail "more than one line of error"
[ -e "$T/nodir" ] && fail "a follow of a missing log created its data directory"
mkdir "$T/d"
expect_exit 1 "$REPDISK" follow --once --log "kafkaa:localhost:1" "$T/d"
expect_stderr "unknown scheme \"kafkaa\""
expect_exit 1 "$REPDISK" status "$T/nodir"
expect_stderr "data directory"

# --- a log with one disk of 300 records
LOG=file:$T/primary/.repdisk/log
mkdir "$T/primary"
"$RL_TESTWRITER" load --log "$LOG" --datadir "$T/primary" --disk vm1.img \
	--acks "$T/acks" --count 300 --inflight 8 --seed 7 > "$T/writer.log" 2>&1 ||
	fail "load failed"
UUID=$("$REPDISK" status "$T/primary" | awk '$1 == "vm1.img" { print $2 }')
SEG=$T/primary/.repdisk/log/disks/$UUID/00000000000000000000.seg
[ -f "$SEG" ] || fail "no segment $SEG"
"$REPDISK" log dump --log "$LOG" vm1.img > "$T/dump.txt" || fail "dump of a good log failed"
[ "$(wc -l < "$T/dump.txt")" = 301 ] || fail "dump: $(wc -l < "$T/dump.txt") lines, want 301 (claim + 300)"

# a data directory that cannot be made, or is a file: one line, exit 1
expect_exit 1 "$REPDISK" follow --once --log "$LOG" "$T/no/such/dir"
expect_stderr "^repdisk follow: data directory $T/no/such/dir: No such file or directory$"
touch "$T/afile"
expect_exit 1 "$REPDISK" follow --once --log "$LOG" "$T/afile"
expect_stderr "not a directory"

# a second follower of one data directory is refused
mkdir "$T/f1"
start_bg "$T/follower.log" "$REPDISK" follow --log "$LOG" "$T/f1"
fpid=$!
for _ in $(seq 100); do [ -f "$T/f1/vm1.img" ] && break; sleep 0.05; done
expect_exit 1 "$REPDISK" follow --once --log "$LOG" "$T/f1"
expect_stderr "data directory $T/f1: in use by another repdisk process"
kill -TERM "$fpid"; wait "$fpid" || fail "follower did not exit 0 on SIGTERM"

# --- flip a byte in the header check of the record at position P (every
# record is version 3: a 128-byte header, its check in the last 16 bytes)
P=150
off=32
for ((i = 0; i < P; i++)); do
	len=$(od -An -tu4 -j $((off + 56)) -N4 "$SEG" | tr -d ' ')
	off=$((off + 128 + len))
done
cp "$SEG" "$T/seg.orig"
byte=$(od -An -tu1 -j $((off + 120)) -N1 "$SEG" | tr -d ' ')
printf "\\x$(printf %02x $(((byte + 1) & 255)))" |
	dd of="$SEG" bs=1 seek=$((off + 120)) conv=notrunc status=none
cp "$SEG" "$T/seg.bad"
where="disks/$UUID/00000000000000000000.seg byte $off \\(position $P\\): bad header check"

expect_exit 1 "$REPDISK" log dump --log "$LOG" vm1.img
expect_stderr "^repdisk log dump: $where$"
[ "$(wc -l < "$T/stdout")" = "$P" ] || fail "dump printed $(wc -l < "$T/stdout") records before the bad one, want $P"

mkdir "$T/f2"
expect_exit 1 "$REPDISK" follow --once --log "$LOG" "$T/f2"
expect_stderr "^repdisk follow: follow: vm1.img: $where; this disk stops there"
[ "$(status_field "$T/f2" vm1.img applied)" = "$P" ] ||
	fail "follower applied up to $(status_field "$T/f2" vm1.img applied), want exactly $P"

# ... and its image is exactly the replay of positions 0..P-1: compare with
# a copy of the log whose durable end (the head) is set to P
cp -a "$T/primary/.repdisk/log" "$T/logP"
for i in 0 1 2 3 4 5 6 7; do
	printf "\\x$(printf %02x $(((P >> (8 * i)) & 255)))"
done | dd of="$T/logP/disks/$UUID/head" bs=1 seek=8 conv=notrunc status=none
mkdir "$T/f3"
"$REPDISK" follow --once --log "file:$T/logP" "$T/f3" > "$T/f3.log" 2>&1 || fail "replay to P failed"
cmp "$T/f2/vm1.img" "$T/f3/vm1.img" || fail "follower applied something past the bad record"

# a writer refuses to open the damaged stream, and changes nothing
expect_exit 1 "$RL_TESTWRITER" load --log "$LOG" --datadir "$T/primary" \
	--disk vm1.img --acks "$T/acks" --count 0
expect_stderr "refusing to cut acknowledged records"
cmp "$SEG" "$T/seg.bad" || fail "the writer changed the damaged segment"
say "ok"
