#!/bin/bash
# qemu-io, QEMU's own block layer, writing a raw disk in the mount the ways
# a guest does: batches of parallel aio_write with distinct patterns at
# many offsets and sizes (512 B to 1 MiB), with O_DIRECT (cache=none) and
# aio=native, threads (from misaligned buffers) and io_uring, then with
# the host page cache (cache=writeback, some writes unaligned),
# write-zeroes with and without unmap, and an aio_flush after each batch,
# over a 128 MiB disk first filled whole with 1 MiB writes.  Writes within a batch do not
# overlap; later batches overwrite parts of earlier ones.  A model of the
# final contents (the last write covering each byte wins, zeros where
# nothing was written) becomes `read -P` commands covering the whole disk,
# run through the mount with both cache modes, again after a remount, and
# on the follower's image.  On Kafka, a second follower started after all
# the writes (`repdisk follow --once`, from nothing) reads the whole log
# and holds the same bytes.
. "$(dirname "$0")/../lib/lib.sh"
requires qemu-io qemu-img fusermount3 cmp

D=$T/data M=$T/mnt R=$T/replica
LOG=$(test_log_uri "$D")
SIZE=$((128 << 20))
FILL=165	# the pattern of the first pass over the whole disk
SEED=${SEED:-20240611}
MAX_WRITE=${MAX_WRITE:-1048576}	# the longest write the workload makes

mount_disks "$D" "$M"
start_follower "$LOG" "$R"
qemu-img create -f raw "$M/vm1.img" "$SIZE" > /dev/null || fail "qemu-img create"

# --- the workload: "BATCH OFFSET LENGTH PATTERN KIND" per write, KIND "w"
# for aio_write -P, "z" for aio_write -z, "zu" for aio_write -z -u.
# Batches 1-3 are O_DIRECT (aligned to 512 B); 4-5 go through the page
# cache and include unaligned writes.  Three quarters of the writes land
# in the first 16 MiB, so batches overlap.
awk -v seed="$SEED" -v size="$SIZE" -v maxlen="$MAX_WRITE" 'BEGIN {
	srand(seed)
	split("512 4096 4608 65536 131584 1048576", fixed, " ")
	pat = 1
	for (b = 1; b <= 5; b++) {
		n = 0
		for (tries = 0; n < 48 && tries < 10000; tries++) {
			r = rand()
			if (r < 0.5)
				len = fixed[1 + int(rand() * 6)]
			else
				len = 512 * (1 + int(rand() * 2048))
			if (len > maxlen)
				len = maxlen
			span = rand() < 0.75 ? 16 * 1048576 : size
			off = 512 * int(rand() * (span - len) / 512)
			if (b >= 4 && rand() < 0.3) {	# unaligned
				off += 1 + int(rand() * 511)
				len = 1 + int(rand() * 70000)
				if (off + len > size)
					continue
			}
			ok = 1
			for (i = 0; i < n; i++)
				if (off < e[i] && s[i] < off + len) { ok = 0; break }
			if (!ok)
				continue
			s[n] = off; e[n] = off + len; n++
			kind = "w"
			if (rand() < 0.08) kind = rand() < 0.5 ? "z" : "zu"
			else if (rand() < 0.05) pat = 0	# a buffer of zeros
			p = kind == "w" ? pat : 0
			print b, off, len, p, kind
			pat = pat % 255 + 1
		}
	}
}' > "$T/writes"
[ "$(wc -l < "$T/writes")" = 240 ] || fail "the workload has $(wc -l < "$T/writes") writes, want 240"

# --- the model: elementary intervals between all write boundaries, each
# with the pattern of the last write covering it, adjacent equal ones
# merged: "OFFSET LENGTH PATTERN"
{ echo 0; echo "$SIZE"; awk '{ print $2; print $2 + $3 }' "$T/writes"; } | sort -n -u > "$T/bounds"
awk 'NR == FNR { o[NR] = $2; e[NR] = $2 + $3; p[NR] = $4; n = NR; next }
	{ b[++m] = $1 }
	END {
		for (i = 1; i < m; i++) {
			v = fill
			for (w = n; w >= 1; w--)
				if (o[w] <= b[i] && e[w] >= b[i + 1]) { v = p[w]; break }
			if (i > 1 && v == cur) continue
			if (i > 1) print start, b[i] - start, cur
			start = b[i]; cur = v
		}
		print start, b[m] - start, cur
	}' fill="$FILL" "$T/writes" "$T/bounds" > "$T/model"
[ "$(awk '{ t += $2 } END { print t }' "$T/model")" = "$SIZE" ] || fail "the model does not cover the disk"
say "$(wc -l < "$T/model") regions to verify, $(awk '$3 != 0' "$T/model" | wc -l) of them data"

# run_batch B QEMU-IO-OPTIONS...: batch B's writes with aio_write, then
# aio_flush; each write must report "wrote LEN/LEN bytes at offset OFF"
run_batch() {
	local b=$1 cmds=()
	shift
	while read -r _ off len pat kind; do
		case $kind in
		w) cmds+=(-c "aio_write -P $pat $off $len") ;;
		z) cmds+=(-c "aio_write -z $off $len") ;;
		zu) cmds+=(-c "aio_write -z -u $off $len") ;;
		esac
	done < <(awk -v b="$b" '$1 == b' "$T/writes")
	qemu-io -f raw "$@" "${cmds[@]}" -c aio_flush "$M/vm1.img" > "$T/batch$b.out" 2>&1 ||
		{ cat "$T/batch$b.out"; fail "qemu-io batch $b ($*) exited non-zero"; }
	grep -Ev "^(wrote [0-9]+/[0-9]+ bytes at offset [0-9]+|[0-9.]+ (bytes|KiB|MiB), 1 ops; .*)?$" "$T/batch$b.out" &&
		fail "qemu-io batch $b ($*) reported errors"
	# shellcheck disable=SC2016
	awk -v b="$b" '$1 == b { print "wrote " $3 "/" $3 " bytes at offset " $2 }' "$T/writes" | sort > "$T/want"
	grep "^wrote" "$T/batch$b.out" | sort | diff - "$T/want" > /dev/null ||
		{ diff <(grep "^wrote" "$T/batch$b.out" | sort) "$T/want" | head; fail "batch $b: writes not all reported done"; }
}

# verify FILE QEMU-IO-OPTIONS...: read -P over the whole model
verify() {
	local f=$1 cmds=() n
	shift
	while read -r off len pat; do
		cmds+=(-c "read -q -P $pat $off $len")
	done < "$T/model"
	n=${#cmds[@]}
	qemu-io -f raw -r "$@" "${cmds[@]}" "$f" > "$T/verify.out" 2>&1 ||
		{ head -20 "$T/verify.out"; fail "read -P of $f ($*) exited non-zero"; }
	[ -s "$T/verify.out" ] && { head -20 "$T/verify.out"; fail "read -P of $f ($*) found differences"; }
	[ "$n" -gt 100 ] || fail "only $n regions"
}

# batch 0: the whole disk in 1 MiB writes, all in flight at once (not in
# the model, whose regions no later write covers hold FILL)
awk -v size="$SIZE" -v p="$FILL" 'BEGIN { for (o = 0; o < size; o += 1048576) print 0, o, 1048576, p, "w" }' >> "$T/writes"
run_batch 0 -n -t none -i native
converged "$D" "$R" vm1.img
run_batch 1 -n -t none -i native
converged "$D" "$R" vm1.img
run_batch 2 -n -t none -i threads -m	# misaligned buffers
converged "$D" "$R" vm1.img
io_uring=threads
qemu-io -f raw -n -t none -i io_uring -r -c "read 0 512" "$M/vm1.img" > /dev/null 2>&1 && io_uring=io_uring
run_batch 3 -n -t none -i "$io_uring"
converged "$D" "$R" vm1.img
run_batch 4		# default cache: writeback through the page cache
converged "$D" "$R" vm1.img
run_batch 5 -t writethrough
converged "$D" "$R" vm1.img

verify "$M/vm1.img" -n -t none -i native
verify "$M/vm1.img"
# the check can fail: a wrong pattern in one region is reported
read -r off len pat < <(awk '$3 != 0 { print; exit }' "$T/model")
expect_exit 1 qemu-io -f raw -r -c "read -q -P $(((pat + 1) % 256)) $off $len" "$M/vm1.img"
grep -q "^Pattern verification failed at offset $off, $len bytes$" "$T/stdout" ||
	{ cat "$T/stdout"; fail "a wrong pattern was not reported"; }

# --- the same after a remount, and on the follower
unmount_disks "$M"
verify "$D/vm1.img"
mount_disks "$D" "$M"
verify "$M/vm1.img" -n -t none
verify "$M/vm1.img"
converged "$D" "$R" vm1.img
verify "$R/vm1.img"
if [ "$REPDISK_TEST_BACKEND" = kafka ]; then
	expect_exit 0 "$REPDISK" follow --once --log "$LOG" "$T/late"
	verify "$T/late/vm1.img"
	cmp "$D/vm1.img" "$T/late/vm1.img" || fail "the late follower's image differs"
fi
say "ok"
