#!/bin/bash
# qemu-img on the mount, as an operator uses it: create a raw disk (info
# says raw and its size, map shows one hole), convert a sparse image into
# the mount (same bytes, same data extents, the image in DATADIR stays
# sparse), compare (0 when identical, 1 naming the first differing offset),
# convert -n over a disk holding stale data (discarded, holes again),
# convert back out, resize, and a qcow2 made and written in the mount that
# `qemu-img check` finds clean, on the primary and on the follower.
. "$(dirname "$0")/../lib/lib.sh"
requires qemu-img qemu-io fusermount3 cmp du

D=$T/data M=$T/mnt R=$T/replica
LOG=$(test_log_uri "$D")
MiB=1048576
# The larger writes below are made CHUNK_MB at a time, the follower caught
# up in between.
CHUNK_MB=1024

# qio FILE FORMAT CACHE PATTERN OFFSET-MB LENGTH-MB: qemu-io writes
# PATTERN (a byte, or -z for write-zeroes) over the range, CHUNK_MB at a
# time, with the cache mode CACHE (qemu-io -t)
qio() {
	local f=$1 fmt=$2 cache=$3 p="-P $4" at n
	[ "$4" = -z ] && p=-z
	for ((at = $5; at < $5 + $6; at += n)); do
		n=$((at + CHUNK_MB > $5 + $6 ? $5 + $6 - at : CHUNK_MB))
		qemu-io -f "$fmt" -t "$cache" -c "write $p ${at}M ${n}M" "$M/$f" > "$T/qio.out" ||
			{ cat "$T/qio.out"; fail "qemu-io write $4 at ${at}M on $f"; }
		[ "$n" = "$6" ] || converged "$D" "$R" "$f"
	done
}

mount_disks "$D" "$M"
start_follower "$LOG" "$R"

# field NAME: a field of `qemu-img info --output=json` read from stdin
field() { sed -n "s/^ *\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" | head -1; }

# data_extents FILE: "start length" of each data extent qemu-img map
# reports, adjacent ones merged (map may split an extent anywhere)
data_extents() {
	qemu-img map -f raw --output=json "$1" > "$T/map.json" ||
		fail "qemu-img map $1 failed"
	sed -n 's/.*"start": \([0-9]*\), "length": \([0-9]*\),.*"data": \(true\|false\).*/\1 \2 \3/p' \
		"$T/map.json" | awk '
		$3 == "true" { if (n && s + l == $1) { l += $2 } else { if (n) print s, l; s = $1; l = $2; n = 1 } }
		END { if (n) print s, l }'
}

# --- create: a 1 GiB raw disk, all hole
qemu-img create -f raw "$M/blank.img" 1G > "$T/out" || fail "qemu-img create in the mount"
grep -q "^Formatting '$M/blank.img', fmt=raw size=1073741824" "$T/out" || { cat "$T/out"; fail "create output"; }
qemu-img info --output=json "$M/blank.img" > "$T/info.json" || fail "qemu-img info"
[ "$(field format < "$T/info.json")" = raw ] || { cat "$T/info.json"; fail "info: format is not raw"; }
[ "$(field virtual-size < "$T/info.json")" = 1073741824 ] || { cat "$T/info.json"; fail "info: virtual size"; }
[ "$(stat -c %s "$D/blank.img")" = 1073741824 ] || fail "blank.img in DATADIR is not 1 GiB"
[ "$(stat -c %b "$D/blank.img")" = 0 ] || fail "a new raw disk allocates $(stat -c %b "$D/blank.img") blocks"
[ -z "$(data_extents "$M/blank.img")" ] || { cat "$T/map.json"; fail "map of a blank disk shows data"; }
grep -q '"start": 0, "length": 1073741824, .*"zero": true, "data": false' "$T/map.json" ||
	{ cat "$T/map.json"; fail "map of a blank disk is not one 1 GiB hole"; }
converged "$D" "$R" blank.img

# --- a sparse 256 MiB source outside the mount: random data islands
truncate -s 256M "$T/src.img"
island() { # OFFSET LENGTH (multiples of 4 KiB)
	head -c "$2" /dev/urandom |
		dd of="$T/src.img" bs=4k seek=$(($1 / 4096)) conv=notrunc status=none
}
island 0 65536
island $((MiB + 4096)) 4096
island $((37 * MiB)) $MiB
island $((200 * MiB - 8192)) 16384
island $((255 * MiB)) $MiB	# the last MiB
data_extents "$T/src.img" > "$T/src.extents"
[ "$(wc -l < "$T/src.extents")" = 5 ] ||
	{ echo "$TEST_NAME: SKIP: $T does not keep a file sparse" >&2; exit 77; }

# --- convert into the mount
qemu-img convert -f raw -O raw "$T/src.img" "$M/vm1.img" || fail "qemu-img convert into the mount"
cmp "$T/src.img" "$M/vm1.img" || fail "converted image differs from the source"
expect_exit 0 qemu-img compare -f raw -F raw "$T/src.img" "$M/vm1.img"
grep -q "^Images are identical.$" "$T/stdout" || fail "compare: $(cat "$T/stdout")"
data_extents "$M/vm1.img" > "$T/vm1.extents"
diff "$T/src.extents" "$T/vm1.extents" > /dev/null ||
	{ diff "$T/src.extents" "$T/vm1.extents"; fail "map in the mount: data extents differ from the source"; }
qemu-img info --output=json "$M/vm1.img" > "$T/info.json" || fail "qemu-img info vm1.img"
[ "$(field virtual-size < "$T/info.json")" = $((256 * MiB)) ] || fail "vm1.img virtual size"
# DATADIR's image is plain raw and sparse: 2196 KiB of data in 256 MiB
used=$(du -k "$D/vm1.img" | cut -f1)
[ "$used" -le 2800 ] || fail "DATADIR/vm1.img allocates ${used} KiB for 2196 KiB of data"
# st_blocks in the mount is the image's (the kernel may cache it a moment)
mb=$(stat -c %b "$M/vm1.img") db=$(stat -c %b "$D/vm1.img")
[ "$mb" -le $((db + 64)) ] && [ "$mb" -ge $((db - 64)) ] ||
	fail "st_blocks: $mb in the mount, $db in DATADIR"
converged "$D" "$R" vm1.img
ru=$(du -k "$R/vm1.img" | cut -f1)
[ "$ru" -le 2800 ] || fail "the follower's vm1.img allocates ${ru} KiB"

# --- compare finds a difference, and names where
# O_DIRECT, 16 parallel requests written out of order (-W), as fast as it goes
qemu-img convert -f raw -O raw -t none -W -m 16 "$T/src.img" "$M/vm2.img" || fail "convert -t none -W into the mount"
cmp "$T/src.img" "$M/vm2.img" || fail "convert -t none -W: the image differs"
qemu-io -f raw -c "write -P 0x5a $((100 * MiB + 512)) 512" "$M/vm2.img" > /dev/null || fail "qemu-io write"
expect_exit 1 qemu-img compare -f raw -F raw "$T/src.img" "$M/vm2.img"
grep -q "^Content mismatch at offset $((100 * MiB + 512))!$" "$T/stdout" || { cat "$T/stdout"; fail "compare does not name the offset"; }
converged "$D" "$R" vm2.img

# --- restore over an existing disk (convert -n): stale data in the
# source's holes is discarded, the holes come back
qio vm2.img raw writeback 0x77 90 16
qio vm2.img raw writeback 0x78 36 3
[ "$(du -k "$D/vm2.img" | cut -f1)" -ge 18000 ] || fail "the stale data did not allocate"
qemu-img convert -n -f raw -O raw "$T/src.img" "$M/vm2.img" || fail "qemu-img convert -n over vm2.img"
expect_exit 0 qemu-img compare -f raw -F raw "$T/src.img" "$M/vm2.img"
cmp "$T/src.img" "$M/vm2.img" || fail "convert -n: vm2.img differs from the source"
data_extents "$M/vm2.img" > "$T/vm2.extents"
diff "$T/src.extents" "$T/vm2.extents" > /dev/null ||
	{ diff "$T/src.extents" "$T/vm2.extents"; fail "convert -n: stale data left allocated"; }
converged "$D" "$R" vm2.img

# --- convert out of the mount (plain and O_DIRECT source)
qemu-img convert -f raw -O raw "$M/vm1.img" "$T/out.img" || fail "qemu-img convert out of the mount"
cmp "$T/src.img" "$T/out.img" || fail "image converted out of the mount differs"
used=$(du -k "$T/out.img" | cut -f1)
[ "$used" -le 2800 ] || fail "image converted out allocates ${used} KiB"
qemu-img convert -T none -f raw -O raw "$M/vm1.img" "$T/out2.img" || fail "convert -T none out of the mount"
cmp "$T/src.img" "$T/out2.img" || fail "image converted out with -T none differs"

# --- resize: grow, then shrink off the last island
qemu-img resize -f raw "$M/vm1.img" 300M > /dev/null || fail "qemu-img resize grow"
[ "$(stat -c %s "$D/vm1.img")" = $((300 * MiB)) ] || fail "grown size in DATADIR"
cmp -n $((256 * MiB)) "$T/src.img" "$M/vm1.img" || fail "data changed by growing"
cmp -n $((44 * MiB)) -i $((256 * MiB)):0 "$M/vm1.img" /dev/zero ||
	fail "the grown region does not read as zeros"
expect_exit 1 qemu-img resize -f raw "$M/vm1.img" 255M
expect_stderr "Use the --shrink option"
qemu-img resize -f raw --shrink "$M/vm1.img" 255M > /dev/null || fail "qemu-img resize --shrink"
[ "$(stat -c %s "$M/vm1.img")" = $((255 * MiB)) ] || fail "shrunk size in the mount"
cmp -n $((255 * MiB)) "$T/src.img" "$M/vm1.img" || fail "data changed by shrinking"
converged "$D" "$R" vm1.img

# --- qcow2 in the mount: create, write through qemu's qcow2 driver, check
qemu-img create -f qcow2 "$M/q.qcow2" 1G > /dev/null || fail "qemu-img create -f qcow2"
qio q.qcow2 qcow2 none 0x11 0 4
qio q.qcow2 qcow2 none 0x22 512 1
qio q.qcow2 qcow2 none -z 1 1
qemu-io -f qcow2 -t none -c "discard 2M 64k" "$M/q.qcow2" > "$T/qio.out" ||
	{ cat "$T/qio.out"; fail "qemu-io discard on the qcow2"; }
qemu-img convert -f raw -O qcow2 -o cluster_size=64k "$T/src.img" "$M/q2.qcow2" ||
	fail "convert into a qcow2 in the mount"
for q in q.qcow2 q2.qcow2; do
	expect_exit 0 qemu-img check -f qcow2 "$M/$q"
	grep -q "^No errors were found on the image.$" "$T/stdout" || { cat "$T/stdout"; fail "check $q"; }
	qemu-img info --output=json "$M/$q" > "$T/info.json" || fail "info $q"
	[ "$(field format < "$T/info.json")" = qcow2 ] || fail "$q is not qcow2"
done
qemu-io -f qcow2 -r -c "read -P 0x11 0 1M" -c "read -P 0 1M 1M" -c "read -P 0 2M 64k" -c "read -P 0x11 $((2 * MiB + 65536)) 960k" \
	-c "read -P 0x11 3M 1M" -c "read -P 0x22 512M 1M" -c "read -P 0 513M 1M" "$M/q.qcow2" > "$T/qio.out" ||
	{ cat "$T/qio.out"; fail "q.qcow2 reads back wrong (exit)"; }
grep -q "Pattern verification failed" "$T/qio.out" && { cat "$T/qio.out"; fail "q.qcow2 reads back wrong"; }
# the check can fail: a wrong pattern is reported
expect_exit 1 qemu-io -f qcow2 -r -c "read -P 0x33 0 4k" "$M/q.qcow2"
grep -q "Pattern verification failed at offset 0" "$T/stdout" || fail "qemu-io read -P cannot fail"
expect_exit 0 qemu-img compare -f raw -F qcow2 "$T/src.img" "$M/q2.qcow2"
for q in q.qcow2 q2.qcow2; do
	converged "$D" "$R" "$q"
	expect_exit 0 qemu-img check -f qcow2 "$R/$q"
	grep -q "^No errors were found on the image.$" "$T/stdout" || { cat "$T/stdout"; fail "check of the follower's $q"; }
done

# --- after unmount, DATADIR's images are what qemu-img saw in the mount
unmount_disks "$M"
cmp -n $((255 * MiB)) "$T/src.img" "$D/vm1.img" || fail "DATADIR/vm1.img after unmount"
expect_exit 0 qemu-img check -f qcow2 "$D/q.qcow2"
say "ok"
