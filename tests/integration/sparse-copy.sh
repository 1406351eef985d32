#!/bin/bash
# Sparse images in and out of the mount with the tools operators copy
# them with, and the size and hole operations of coreutils and
# util-linux: cp --sparse=always and rsync --sparse --inplace (whole-file,
# and the delta algorithm over a stale copy, which punches holes) keep the
# bytes and the holes both ways; truncate grows and shrinks a disk (the
# size in the mount and in DATADIR, shrunk bytes gone, the grown region
# zeros); fallocate --punch-hole and --zero-range zero their range, and a
# punched range is a hole that SEEK_HOLE/SEEK_DATA report through the
# mount, in DATADIR and on the follower; collapse-range and insert-range
# are refused with EOPNOTSUPP and change nothing.
. "$(dirname "$0")/../lib/lib.sh"
requires cp rsync truncate fallocate cmp du python3 fusermount3

D=$T/data M=$T/mnt R=$T/replica
LOG=$(test_log_uri "$D")
MiB=1048576
# The layout's unit: the source is 128 U with data islands, and every
# offset and size below is in U.
U=$MiB

mount_disks "$D" "$M"
start_follower "$LOG" "$R"

# same_extents FILE...: every FILE has its data extents (found with
# SEEK_DATA and SEEK_HOLE, as sparse-aware tools find them) where the
# first one has them
same_extents() {
	python3 - "$@" <<'EOF' || fail "data extents differ: $*"
import errno, os, sys

def extents(path):
    fd = os.open(path, os.O_RDONLY)
    size, off, out = os.fstat(fd).st_size, 0, []
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            break
        off = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, off))
    os.close(fd)
    return out

want = extents(sys.argv[1])
for path in sys.argv[2:]:
    got = extents(path)
    if got != want:
        sys.exit("%s: data at %s\n%s: data at %s" % (sys.argv[1], want, path, got))
EOF
}
kib() { du -k "$1" | cut -f1; }
# near_kib A B: B allocates within 256 KiB of what A does
near_kib() {
	local a b
	a=$(kib "$1") b=$(kib "$2")
	[ "$b" -le $((a + 256)) ] && [ "$b" -ge $((a - 256)) ] ||
		fail "$2 allocates ${b} KiB, $1 ${a} KiB"
}
# zeros FILE OFFSET LENGTH: the range reads as zeros
zeros() { cmp -n "$3" -i "$2:0" "$1" /dev/zero || fail "$1: $3 bytes at $2 are not zeros"; }

# --- a sparse 128 U source: random data islands, holes between
truncate -s $((128 * U)) "$T/src.img"
island() { head -c "$2" /dev/urandom | dd of="$T/src.img" bs=4k seek=$(($1 / 4096)) conv=notrunc status=none; }
island 0 $U
island $((5 * U + 4096)) 65536
island $((40 * U)) $((8 * U))
island $((100 * U)) 4096
island $((127 * U)) $U
# (the sparse checks need a file system that keeps holes and reports them)
skip() { echo "$TEST_NAME: SKIP: $*" >&2; exit 77; }
[ "$(kib "$T/src.img")" -le $((11000 * U / MiB)) ] || skip "$T does not keep a file sparse"
python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
u = int(sys.argv[2])
sys.exit(os.lseek(fd, 0, os.SEEK_HOLE) != u or os.lseek(fd, u, os.SEEK_DATA) != 5 * u + 4096)' \
	"$T/src.img" "$U" || skip "$T does not report holes with SEEK_HOLE/SEEK_DATA"

# --- cp --sparse=always, in and out
cp --sparse=always "$T/src.img" "$M/cp.img" || fail "cp into the mount"
cmp "$T/src.img" "$M/cp.img" || fail "cp: the copy in the mount differs"
near_kib "$T/src.img" "$D/cp.img"
[ "$(stat -c %s "$D/cp.img")" = $((128 * U)) ] || fail "cp: size in DATADIR"
cp --sparse=always "$M/cp.img" "$T/cp-out.img" || fail "cp out of the mount"
cmp "$T/src.img" "$T/cp-out.img" || fail "cp: the copy out of the mount differs"
near_kib "$T/src.img" "$T/cp-out.img"
cp "$M/cp.img" "$T/cp-auto.img" || fail "plain cp out of the mount"	# --sparse=auto
cmp "$T/src.img" "$T/cp-auto.img" || fail "plain cp: the copy out of the mount differs"
near_kib "$T/src.img" "$T/cp-auto.img"
blocks=$(stat -c %b "$M/cp.img")
[ "$blocks" -le $(($(stat -c %b "$T/src.img") + 512)) ] || fail "st_blocks in the mount: $blocks"
converged "$D" "$R" cp.img
same_extents "$T/src.img" "$M/cp.img" "$D/cp.img" "$T/cp-out.img" "$T/cp-auto.img" "$R/cp.img"

# --- rsync --sparse --inplace, in and out (this rsync accepts the pair)
rsync --sparse --inplace "$T/src.img" "$M/rs.img" || fail "rsync into the mount"
cmp "$T/src.img" "$M/rs.img" || fail "rsync: the copy in the mount differs"
near_kib "$T/src.img" "$D/rs.img"
rsync --sparse --inplace "$M/rs.img" "$T/rs-out.img" || fail "rsync out of the mount"
cmp "$T/src.img" "$T/rs-out.img" || fail "rsync: the copy out of the mount differs"
near_kib "$T/src.img" "$T/rs-out.img"
same_extents "$T/src.img" "$M/rs.img" "$T/rs-out.img"
# a stale copy: data in two holes and in an island; rsync's delta
# algorithm rewrites what changed and punches the holes again
head -c $((2 * U)) /dev/zero | tr '\0' '\377' |
	dd of="$M/rs.img" bs="$U" seek=60 conv=notrunc status=none
head -c 4096 /dev/urandom | dd of="$M/rs.img" bs=4k seek=$((20 * U / 4096)) conv=notrunc status=none
head -c 4096 /dev/urandom | dd of="$M/rs.img" bs=4k seek=$((44 * U / 4096 + 3)) conv=notrunc status=none
cmp -s "$T/src.img" "$M/rs.img" && fail "the stale copy is not stale"
[ "$(kib "$D/rs.img")" -ge $(($(kib "$T/src.img") + 2 * U / 1024)) ] || fail "the stale data did not allocate"
rsync --sparse --inplace --no-whole-file -I "$T/src.img" "$M/rs.img" || fail "rsync --no-whole-file into the mount"
cmp "$T/src.img" "$M/rs.img" || fail "rsync delta: the copy in the mount differs"
near_kib "$T/src.img" "$D/rs.img"
converged "$D" "$R" rs.img
same_extents "$T/src.img" "$M/rs.img" "$R/rs.img"

# --- the classic way to make a disk: zeros, which stay a hole
dd if=/dev/zero of="$M/dd.img" bs=1M count=64 status=none || fail "dd of zeros into the mount"
[ "$(stat -c %s "$D/dd.img")" = $((64 * MiB)) ] || fail "dd.img in DATADIR is not 64 MiB"
[ "$(kib "$D/dd.img")" = 0 ] || fail "64 MiB of zeros allocate $(kib "$D/dd.img") KiB in DATADIR"
zeros "$M/dd.img" 0 $((64 * MiB))
converged "$D" "$R" dd.img
[ "$(kib "$R/dd.img")" = 0 ] || fail "64 MiB of zeros allocate $(kib "$R/dd.img") KiB on the follower"

# --- truncate: grow, shrink to an odd size, grow again
head -c $((4 * U)) /dev/urandom > "$T/r4"
truncate -s $((4 * U)) "$M/tr.img" || fail "truncate -s 4U"
dd if="$T/r4" of="$M/tr.img" bs="$U" conv=notrunc status=none || fail "dd into tr.img"
cut=$((2 * U + 123))
truncate -s "$cut" "$M/tr.img" || fail "truncate shrink"
[ "$(stat -c %s "$M/tr.img")" = "$cut" ] || fail "shrunk size in the mount"
[ "$(stat -c %s "$D/tr.img")" = "$cut" ] || fail "shrunk size in DATADIR"
cmp "$M/tr.img" <(head -c "$cut" "$T/r4") || fail "the bytes kept by a shrink differ"
converged "$D" "$R" tr.img
truncate -s $((8 * U)) "$M/tr.img" || fail "truncate grow"
[ "$(stat -c %s "$M/tr.img")" = $((8 * U)) ] || fail "grown size in the mount"
[ "$(stat -c %s "$D/tr.img")" = $((8 * U)) ] || fail "grown size in DATADIR"
cmp -n "$cut" "$M/tr.img" "$T/r4" || fail "the bytes kept by a shrink differ after growing"
zeros "$M/tr.img" "$cut" $((8 * U - cut))	# the shrunk bytes are gone
[ "$(kib "$D/tr.img")" -le $((2200 * U / MiB)) ] || fail "the grown region of tr.img allocates: $(kib "$D/tr.img") KiB"
fallocate -l $((12 * U)) "$M/tr.img" || fail "fallocate -l 12U"
[ "$(stat -c %s "$D/tr.img")" = $((12 * U)) ] || fail "size after fallocate -l 12U"
zeros "$M/tr.img" "$cut" $((12 * U - cut))
converged "$D" "$R" tr.img
[ "$(stat -c %s "$R/tr.img")" = $((12 * U)) ] || fail "size on the follower"
truncate -s 0 "$M/tr.img" || fail "truncate -s 0"
[ "$(stat -c %s "$D/tr.img")" = 0 ] && [ "$(kib "$D/tr.img")" = 0 ] || fail "truncate -s 0 in DATADIR"
converged "$D" "$R" tr.img

# --- fallocate modes that would move data are refused, nothing changed
fallocate --collapse-range -o $U -l $U "$M/cp.img" 2> "$T/err" && fail "collapse-range succeeded"
grep -q "Operation not supported" "$T/err" || { cat "$T/err"; fail "collapse-range: want EOPNOTSUPP"; }
fallocate --insert-range -o $U -l $U "$M/cp.img" 2> "$T/err" && fail "insert-range succeeded"
grep -q "Operation not supported" "$T/err" || { cat "$T/err"; fail "insert-range: want EOPNOTSUPP"; }
cmp "$T/src.img" "$M/cp.img" || fail "a refused fallocate changed cp.img"

# --- fallocate: punch a hole in an island, punch and zero unaligned
# ranges; $T/want gets the same done to it outside the mount
cp --sparse=always "$T/src.img" "$T/want"
before=$(kib "$D/cp.img")
for f in "$M/cp.img" "$T/want"; do
	fallocate --punch-hole -o $((42 * U)) -l $((2 * U)) "$f" || fail "punch-hole $f"
	fallocate --punch-hole -o $((45 * U + 100)) -l 1000 "$f" || fail "unaligned punch-hole $f"
	fallocate --punch-hole -o $((127 * U)) -l $U "$f" || fail "punch-hole at the end $f"
done
# zeros become holes in an image (a ZERO record), so $T/want gets a hole
# where the mount gets --zero-range
fallocate --zero-range -o $((46 * U + 5)) -l 70000 "$M/cp.img" || fail "zero-range in the mount"
fallocate --punch-hole -o $((46 * U + 5)) -l 70000 "$T/want"
cmp "$T/want" "$M/cp.img" || fail "the mount's cp.img differs after fallocate"
[ "$(stat -c %s "$M/cp.img")" = $((128 * U)) ] || fail "punch-hole changed the size"
zeros "$M/cp.img" $((42 * U)) $((2 * U))
zeros "$M/cp.img" $((45 * U + 100)) 1000
zeros "$M/cp.img" $((46 * U + 5)) 70000
zeros "$M/cp.img" $((127 * U)) $U
cmp -n $((2 * U)) -i $((40 * U)) "$T/src.img" "$M/cp.img" || fail "data before the hole changed"
cmp -n $((U - 100)) -i $((44 * U)) "$T/src.img" "$M/cp.img" || fail "data after the hole changed"
after=$(kib "$D/cp.img")
[ "$after" -le $((before - 3000 * U / MiB)) ] || fail "punching 3 U freed $((before - after)) KiB"
# the punched range is a hole, as seen through the mount
python3 - "$M/cp.img" $((40 * U)) $((42 * U)) $((44 * U)) <<'EOF' || fail "SEEK_HOLE/SEEK_DATA through the mount"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
start, hole, data = (int(a) for a in sys.argv[2:])
h = os.lseek(fd, start, os.SEEK_HOLE)
d = os.lseek(fd, hole, os.SEEK_DATA)
if (h, d) != (hole, data):
    sys.exit("SEEK_HOLE from %d: %d, want %d; SEEK_DATA from %d: %d, want %d"
             % (start, h, hole, hole, d, data))
EOF
converged "$D" "$R" cp.img
# and a sparse copy out keeps the new holes
cp --sparse=always "$M/cp.img" "$T/cp-out2.img" || fail "cp out after punching"
same_extents "$T/want" "$M/cp.img" "$D/cp.img" "$R/cp.img" "$T/cp-out2.img"

unmount_disks "$M"
cmp "$T/want" "$D/cp.img" || fail "DATADIR/cp.img after unmount"
say "ok"
