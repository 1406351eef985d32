#!/bin/bash
# Records sealed with a deployment's key (repdisk key, --key-file): what
# the log holds is ciphertext (no disk byte, no disk name in a segment,
# or in what kcat reads from the topics);
# a reader without the key refuses the log with a message naming the
# key, one with it converges byte for byte; after a rotation new records
# use the new key, old ones stay readable, and a reader with only the old
# file stops at the first new record; a sealed record replayed (copied to
# the end of its stream), a record deleted from the middle of one, and a
# forged record without a key are refused by a reader with keys; a key
# file others can read is refused
# before anything is mounted.
. "$(dirname "$0")/../lib/lib.sh"
requires cmp truncate
[ "$REPDISK_TEST_BACKEND" = file ] || requires kcat

D=$T/data M=$T/mnt R=$T/replica R2=$T/replica2 K=$T/keys
LOG=$(test_log_uri "$D")
# in_log TEXT: whether TEXT is anywhere in what the log stores
in_log() {
	case $REPDISK_TEST_BACKEND in
	file) grep -rlq -- "$1" "$D/.repdisk/log" ;;
	kafka)
		local t
		for t in $(kcat -L -b "$KAFKA_BOOTSTRAP" | awk -v ns="repdisk.$TEST_NAME-$$." \
				'$1 == "topic" && index($2, "\"" ns) == 1 { gsub(/"/, "", $2); print $2 }'); do
			timeout 60 kcat -C -b "$KAFKA_BOOTSTRAP" -t "$t" -p 0 -o beginning -e -q \
				-f '%s' | grep -aq -- "$1" && return 0
		done
		return 1 ;;
	esac
}

expect_exit 0 "$REPDISK" key generate "$K"
[ "$(stat -c %a "$K")" = 600 ] || fail "key file mode $(stat -c %a "$K")"
expect_exit 1 "$REPDISK" key generate "$K"
expect_stderr "File exists"
expect_exit 0 "$REPDISK" key list "$K"
grep -q "^key 1 fingerprint [0-9a-f]\{16\} (seals new records)$" "$T/stdout" ||
	fail "key list: $(cat "$T/stdout")"
cp "$K" "$T/keys.1"

# a pattern easy to look for, in the disk and in its name
{ yes "PLAINTEXT-OF-THE-GUEST" || true; } | head -c 1048576 > "$T/a"
mount_disks "$D" "$M" --key-file "$K"
truncate -s 4M "$M/secret-vm.img"
dd if="$T/a" of="$M/secret-vm.img" bs=64k conv=notrunc status=none
unmount_disks "$M"
in_log "PLAINTEXT-OF-THE-GUEST" && fail "the guest's bytes are in the log in the clear"
in_log "secret-vm" && fail "the disk's name is in the log in the clear"
# (and the check sees what is there: every header's magic, in the clear)
in_log "RDLR" || fail "no record header found in the log"

# without the key: refused, naming it; with it: every record sealed
expect_exit 1 "$REPDISK" log dump --log "$LOG"
expect_stderr "sealed with key 1, which this reader does not have"
expect_exit 1 "$REPDISK" follow --once --log "$LOG" "$R"
expect_stderr "key 1"
expect_exit 0 "$REPDISK" log dump --log "$LOG" --key-file "$K"
grep -v " key=1$" "$T/stdout" && fail "a record not sealed with key 1"
expect_exit 0 "$REPDISK" follow --once --log "$LOG" --key-file "$K" "$R"
cmp "$D/secret-vm.img" "$R/secret-vm.img" || fail "the replica differs"

# rotation: new records under key 2, the old ones still read
expect_exit 0 "$REPDISK" key rotate "$K"
grep -q "key 2 added" "$T/stdout" || fail "key rotate: $(cat "$T/stdout")"
mount_disks "$D" "$M" --key-file "$K"
cmp -n 1048576 "$T/a" "$M/secret-vm.img" || fail "data sealed with key 1 lost"
dd if="$T/a" of="$M/secret-vm.img" bs=64k seek=32 count=4 conv=notrunc status=none
unmount_disks "$M"
expect_exit 0 "$REPDISK" log dump --log "$LOG" --key-file "$K"
grep -q "^secret-vm.img .* WRITE .* key=2$" "$T/stdout" ||
	fail "no WRITE sealed with key 2 after the rotation"
# a reader whose file lacks key 2 applies what it can open, then stops
expect_exit 1 "$REPDISK" follow --once --log "$LOG" --key-file "$T/keys.1" "$R"
expect_stderr "sealed with key 2, which the key file does not hold"
expect_exit 0 "$REPDISK" follow --once --log "$LOG" --key-file "$K" "$R"
expect_exit 0 "$REPDISK" follow --once --log "$LOG" --key-file "$K" "$R2"
expect_exit 0 "$REPDISK" verify -q "$D" "$R"
expect_exit 0 "$REPDISK" verify -q "$D" "$R2"

# a sealed record copied to the end of its stream (a replay, by someone
# who can write the log's files; file log): the follower stops at it
if [ "$REPDISK_TEST_BACKEND" = file ]; then
	requires perl
	sdir=$(echo "$D"/.repdisk/log/disks/*)
	seg=$(ls "$sdir"/*.seg | tail -1)
	size=$(stat -c %s "$seg") off=32 last=32
	while [ "$off" -lt "$size" ]; do
		len=$(od -An -tu4 -j $((off + 56)) -N4 "$seg" | tr -d ' ')
		last=$off off=$((off + 128 + len))
	done
	cp "$seg" "$T/seg.orig"
	cp "$sdir/head" "$T/head.orig"
	end=$(od -An -tu8 -j 8 -N8 "$sdir/head" | tr -d ' ')
	tail -c +$((last + 1)) "$T/seg.orig" >> "$seg"
	perl -e 'print "RDLHEAD1", pack("Q<", $ARGV[0])' $((end + 1)) > "$sdir/head"
	expect_exit 1 "$REPDISK" follow --once --log "$LOG" --key-file "$K" "$R"
	expect_stderr "position $end: a sealed WRITE record .*applied already: a copy of an earlier record, replayed into the log"
	cmp "$D/secret-vm.img" "$R/secret-vm.img" || fail "the replica changed at the replay"
	cp "$T/seg.orig" "$seg"
	cp "$T/head.orig" "$sdir/head"

	# a record deleted from the middle of a stream (FORMAT.md, Gaps):
	# found more than RL_SEQ_WINDOW (4096) records of its epoch later,
	# or at the next claim, which says how far the epoch went
	mount_disks "$D" "$M" --key-file "$K"
	truncate -s 32M "$M/gap-vm.img"
	dd if=/dev/urandom of="$M/gap-vm.img" bs=4k count=4200 oflag=direct status=none
	unmount_disks "$M"
	gdir=$(ls -d "$D"/.repdisk/log/disks/* | grep -vx "$sdir")
	[ "$(echo "$gdir" | wc -l)" = 1 ] || fail "streams: $gdir"
	# del_record SEG INDEX: cuts record INDEX (from the segment's first)
	del_record() {
		perl -e 'open(F, "<", $ARGV[0]) or die; binmode F; local $/; my $d = <F>;
			my ($o, $i) = (32, 0);
			while ($o < length $d) {
				my $n = 128 + unpack("V", substr($d, $o + 56, 4));
				if ($i++ == $ARGV[1]) { substr($d, $o, $n) = ""; last }
				$o += $n;
			}
			open(G, ">", $ARGV[0]) or die; binmode G; print G $d' "$1" "$2"
	}
	gseg=$(ls "$gdir"/*.seg | tail -1)
	first=$((10#$(basename "$gseg" .seg)))
	[ "$first" = 0 ] || fail "gap-vm.img's stream starts a segment at $first"
	cp "$gseg" "$T/gseg.orig"
	cp "$gdir/head" "$T/ghead.orig"
	gend=$(od -An -tu8 -j 8 -N8 "$gdir/head" | tr -d ' ')
	# position 0 is the claim, 1 the truncate, 2 to 4201 the writes:
	# record N is seq N, and after the cut seq N > 3 is at N - 1
	del_record "$gseg" 3
	perl -e 'print "RDLHEAD1", pack("Q<", $ARGV[0])' $((gend - 1)) > "$gdir/head"
	expect_exit 1 "$REPDISK" follow --once --log "$LOG" --key-file "$K" "$T/r3"
	expect_stderr "gap-vm.img: .*position 4099: a sealed WRITE record of epoch 1 seq 4100, but seq 2 is the last here, more than 4096 before it: records of that epoch are missing from the log"
	[ "$(stat -c %s "$T/r3/gap-vm.img")" = $((32 << 20)) ] || fail "gap-vm.img on the replica"
	cmp -n 4096 "$D/gap-vm.img" "$T/r3/gap-vm.img" ||
		fail "the replica differs before the hole"
	cmp -s "$D/gap-vm.img" "$T/r3/gap-vm.img" &&
		fail "the replica applied records past the hole"
	cp "$T/gseg.orig" "$gseg"
	cp "$T/ghead.orig" "$gdir/head"

	# the next mount claims epoch 2, saying epoch 1 reached seq 4201;
	# the last few records of epoch 1 deleted are found there
	mount_disks "$D" "$M" --key-file "$K"
	unmount_disks "$M"
	gend=$(od -An -tu8 -j 8 -N8 "$gdir/head" | tr -d ' ')
	cp "$gseg" "$T/gseg.orig"
	cp "$gdir/head" "$T/ghead.orig"
	del_record "$gseg" 4196
	perl -e 'print "RDLHEAD1", pack("Q<", $ARGV[0])' $((gend - 1)) > "$gdir/head"
	rm -rf "$T/r3"
	expect_exit 1 "$REPDISK" follow --once --log "$LOG" --key-file "$K" "$T/r3"
	expect_stderr "gap-vm.img: .*position 4201: a sealed CLAIM says epoch 1 reached seq 4201, but seq 4195 is the last here: records of that epoch are missing from the log"
	cp "$T/gseg.orig" "$gseg"
	cp "$T/ghead.orig" "$gdir/head"
	# unharmed, the stream is followed to its end
	rm -rf "$T/r3"
	expect_exit 0 "$REPDISK" follow --once --log "$LOG" --key-file "$K" "$T/r3"
	cmp "$D/gap-vm.img" "$T/r3/gap-vm.img" || fail "gap-vm.img: the replica differs"

	# the catalog's records are numbered too: a change (a SETATTR)
	# copied to the end of the catalog stream, in its epoch, is refused
	mount_disks "$D" "$M" --key-file "$K"
	chmod 640 "$M/gap-vm.img"
	unmount_disks "$M"
	expect_exit 0 "$REPDISK" follow --once --log "$LOG" --key-file "$K" "$T/r3"
	cdir=$D/.repdisk/log/catalog
	cseg=$(ls "$cdir"/*.seg | tail -1)
	size=$(stat -c %s "$cseg") off=32 last=32
	while [ "$off" -lt "$size" ]; do
		len=$(od -An -tu4 -j $((off + 56)) -N4 "$cseg" | tr -d ' ')
		[ "$(od -An -tu1 -j $((off + 6)) -N1 "$cseg" | tr -d ' ')" = 19 ] && last=$off
		off=$((off + 128 + len))
	done
	cp "$cseg" "$T/cseg.orig"
	cp "$cdir/head" "$T/chead.orig"
	cend=$(od -An -tu8 -j 8 -N8 "$cdir/head" | tr -d ' ')
	dd if="$T/cseg.orig" bs=1 skip="$last" count=$((128 + $(od -An -tu4 -j $((last + 56)) -N4 "$cseg" | tr -d ' '))) status=none >> "$cseg"
	perl -e 'print "RDLHEAD1", pack("Q<", $ARGV[0])' $((cend + 1)) > "$cdir/head"
	expect_exit 1 "$REPDISK" follow --once --log "$LOG" --key-file "$K" "$T/r3"
	expect_stderr "catalog: position $cend: a sealed SETATTR record of catalog epoch [0-9]+ seq [0-9]+, which was applied already: a copy of an earlier record, replayed into the log"
	cp "$T/cseg.orig" "$cseg"
	cp "$T/chead.orig" "$cdir/head"
fi

# a forged record without a key (anyone who can write the log can make
# one, its checks right; the fixture opens the log with the key only to
# get past its recovery): refused by a reader with keys
"$RL_TESTWRITER" forge --log "$LOG" --disk secret-vm.img --acks - --key-file "$K" > /dev/null ||
	fail "forge"
expect_exit 1 "$REPDISK" follow --once --log "$LOG" --key-file "$K" "$R"
expect_stderr "without a key in a log sealed with keys"
cmp "$D/secret-vm.img" "$R/secret-vm.img" || fail "the forged record was applied"

# a key file that others can read is refused, and nothing is mounted
chmod 644 "$K"
mkdir -p "$T/m2"
expect_exit 1 "$REPDISK" mount --key-file "$K" "$D" "$T/m2"
expect_stderr "chmod 600"
grep -qs " $T/m2 " /proc/mounts && fail "mounted with a readable key file"
say "ok"
