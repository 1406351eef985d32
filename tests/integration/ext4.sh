#!/bin/bash
# An ext4 file system built on a disk in the mount, with the e2fsprogs an
# operator uses: mkfs.ext4 -d fills it from a directory (discarding the
# disk's old contents first, which frees them in DATADIR), debugfs -w adds and removes files, e2fsck -fn finds it
# clean, and debugfs reads every file back byte for byte, through the
# mount, on the follower's image, and on DATADIR's image after unmount.
# A copy with a corrupted group descriptor is reported by e2fsck, so the
# check can fail.
. "$(dirname "$0")/../lib/lib.sh"
requires mkfs.ext4 e2fsck debugfs dumpe2fs fusermount3 cmp

D=$T/data M=$T/mnt R=$T/replica
LOG=$(test_log_uri "$D")
BIG=3000000 NEW=5000000 OLD_CHUNK_MB=64

mount_disks "$D" "$M"
start_follower "$LOG" "$R"

# --- the files to put in it
mkdir -p "$T/tree/etc" "$T/tree/data/many" "$T/tree/empty"
echo "welcome to a replicated disk" > "$T/tree/etc/motd"
head -c "$BIG" /dev/urandom > "$T/tree/data/big.bin"
truncate -s 10M "$T/tree/data/sparse.bin"
head -c 70000 /dev/urandom | dd of="$T/tree/data/sparse.bin" bs=4k seek=1000 conv=notrunc status=none
: > "$T/tree/data/zero-length"
ln -s ../etc/motd "$T/tree/data/link"
for i in $(seq 100); do head -c $((i * 97)) /dev/urandom > "$T/tree/data/many/f$i"; done
head -c "$NEW" /dev/urandom > "$T/new.bin"

# check_files IMAGE: every file reads back from IMAGE with debugfs
check_files() {
	local img=$1 f
	for f in etc/motd data/big.bin data/sparse.bin data/zero-length data/many/f1 \
		data/many/f57 data/many/f100; do
		debugfs -R "cat /$f" "$img" > "$T/cat.out" 2> "$T/debugfs.err" || fail "debugfs cat /$f on $img"
		cmp "$T/tree/$f" "$T/cat.out" || fail "/$f in $img differs from the original"
	done
	debugfs -R "cat /added/new.bin" "$img" > "$T/cat.out" 2> "$T/debugfs.err" || fail "debugfs cat /added/new.bin"
	cmp "$T/new.bin" "$T/cat.out" || fail "/added/new.bin in $img differs from the original"
	debugfs -R "stat /data/link" "$img" 2> /dev/null | grep -q 'Fast link dest: "../etc/motd"' ||
		fail "/data/link in $img is not the symlink"
	debugfs -R "ls -l /data/many" "$img" 2> /dev/null | grep -c ' f[0-9]*$' > "$T/n"
	[ "$(cat "$T/n")" = 100 ] || fail "/data/many in $img has $(cat "$T/n") files, want 100"
	debugfs -R "stat /gone" "$img" 2>&1 | grep -q "File not found by ext2_lookup" ||
		fail "/gone, removed, is still in $img"
}

# fsck_clean IMAGE: e2fsck -fn exits 0 and counts 122 inodes (11 reserved,
# 111 of the tree and of debugfs)
fsck_clean() {
	expect_exit 0 e2fsck -fn "$1"
	grep -q "^repdisk: 122/65536 files" "$T/stdout" ||
		{ cat "$T/stdout" "$T/stderr"; fail "e2fsck of $1: unexpected summary"; }
}

# --- mkfs from the tree, then debugfs -w adds and removes files
truncate -s 256M "$M/fs.img" || fail "truncate in the mount"
# an old disk's contents, which mkfs discards (punch-hole) and then relies
# on reading as zeros
old() { # BYTE OFFSET-MB LENGTH-MB: fill with BYTE, OLD_CHUNK_MB at a time
	local at n
	for ((at = $2; at < $2 + $3; at += n)); do
		n=$((at + OLD_CHUNK_MB > $2 + $3 ? $2 + $3 - at : OLD_CHUNK_MB))
		head -c "$n"M /dev/zero | tr '\0' "$1" |
			dd of="$M/fs.img" bs=1M seek="$at" conv=notrunc status=none
		[ "$n" = "$3" ] || converged "$D" "$R" fs.img
	done
}
old '\377' 0 48
old '\356' 128 16
[ "$(du -k "$D/fs.img" | cut -f1)" -ge 65536 ] || fail "the old contents did not allocate"
mkfs.ext4 -q -F -b 4096 -L repdisk -d "$T/tree" "$M/fs.img" > "$T/mkfs.out" 2>&1 ||
	{ cat "$T/mkfs.out"; fail "mkfs.ext4 in the mount"; }
converged "$D" "$R" fs.img
dumpe2fs -h "$M/fs.img" > "$T/dumpe2fs.out" 2>&1 || fail "dumpe2fs"
grep -Eq "^Filesystem volume name: +repdisk$" "$T/dumpe2fs.out" || fail "volume name"
grep -Eq "^Block count: +65536$" "$T/dumpe2fs.out" || fail "block count"
grep -Eq "^Filesystem state: +clean$" "$T/dumpe2fs.out" || fail "state"
printf '%s\n' "mkdir /added" "write $T/new.bin /added/new.bin" "write $T/tree/etc/motd /gone" \
	"rm /gone" > "$T/debugfs.cmds"
debugfs -w -f "$T/debugfs.cmds" "$M/fs.img" > "$T/debugfs.out" 2>&1 || { cat "$T/debugfs.out"; fail "debugfs -w"; }
grep -Eiq "error|fail|not found" "$T/debugfs.out" && { cat "$T/debugfs.out"; fail "debugfs -w reported an error"; }
fsck_clean "$M/fs.img"
check_files "$M/fs.img"
# mkfs's discard freed the old contents: DATADIR's image holds about
# 9 MiB of files and metadata in 256 MiB
used=$(du -k "$D/fs.img" | cut -f1)
[ "$used" -lt 16384 ] || fail "DATADIR/fs.img allocates ${used} KiB after mkfs discarded it"

# --- the follower's image is the same file system
converged "$D" "$R" fs.img
fsck_clean "$R/fs.img"
check_files "$R/fs.img"

# --- the check can fail: a copy with one group descriptor byte changed
cp --sparse=always "$M/fs.img" "$M/bad.img" || fail "cp in the mount"
printf '\377' | dd of="$M/bad.img" bs=1 seek=4097 conv=notrunc status=none
expect_exit 4 e2fsck -fn "$M/bad.img"
grep -q "group descriptor" "$T/stdout" || { cat "$T/stdout"; fail "e2fsck missed the damaged descriptor"; }
converged "$D" "$R" bad.img

# --- DATADIR's image after unmount, with no repdisk running
unmount_disks "$M"
fsck_clean "$D/fs.img"
check_files "$D/fs.img"
say "ok"
