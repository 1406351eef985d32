#!/bin/bash
# fio with data verification on a disk in the mount, as a guest's I/O
# looks: O_DIRECT libaio random writes at iodepth 32, 4 KiB blocks on
# 128 MiB and a mix of 4 KiB to 1 MiB on another 128 MiB, then buffered
# psync writes of 512 B to 64 KiB on 32 MiB (QEMU's cache=writeback),
# every block with a crc32c header that fio reads back and checks
# (do_verify).  After
# a remount, a verify_only pass finds every block again; so does one on
# the follower's image.  A byte flipped through the mount is caught, so
# the verification can fail.
. "$(dirname "$0")/../lib/lib.sh"
requires fio fusermount3 cmp

D=$T/data M=$T/mnt R=$T/replica
LOG=$(test_log_uri "$D")
# The jobs' sizes, and how fio prints them.
export FIO_SMALL=128M FIO_MIXED=128M FIO_BUFFERED=32M
IO_SIZES="128MiB 128MiB 32.0MiB" FLIP_BLOCK=1000

mount_disks "$D" "$M"
start_follower "$LOG" "$R"
truncate -s 288M "$M/fio.img" || fail "truncate in the mount"

cat > "$T/verify.fio" <<'EOF'
[global]
filename=${FIO_FILE}
ioengine=libaio
direct=1
iodepth=32
rw=randwrite
verify=crc32c
do_verify=1
verify_fatal=1
verify_state_save=0
randrepeat=1

[small]
bs=4k
offset=0
size=${FIO_SMALL}

[mixed]
stonewall
bssplit=4k/40:64k/30:256k/20:1m/10
offset=128M
size=${FIO_MIXED}

[buffered]
stonewall
ioengine=psync
direct=0
bssplit=512/20:4k/40:64k/40
offset=256M
size=${FIO_BUFFERED}
EOF

# io_sizes KIND: the amounts fio's KIND lines ("read" or "write") report,
# sorted, as want_sizes lists IO_SIZES
io_sizes() {
	sed -n "s/^  $1: .*(\([0-9.]*[KMG]iB\)\/[0-9]*msec).*/\1/p" "$T/fio.out" | sort | tr '\n' ' '
}
want_sizes=$(tr ' ' '\n' <<< "$IO_SIZES" | sort | tr '\n' ' ')

# run_fio FILE FIO-ARGS...: fio must exit 0, each job with err= 0, no
# verify error, and each job must have read back its whole range
run_fio() {
	local file=$1 jobs
	shift
	FIO_FILE=$file fio "$@" "$T/verify.fio" > "$T/fio.out" 2>&1 ||
		{ cat "$T/fio.out"; fail "fio $* on $file exited non-zero"; }
	grep -Ei "verify:|crc32c|bad magic|err= *[1-9]" "$T/fio.out" &&
		fail "fio $* on $file reported errors"
	jobs=$(grep -c "^[a-z]*: (groupid=[0-9]*, jobs=1): err= 0:" "$T/fio.out")
	[ "$jobs" = 3 ] || { cat "$T/fio.out"; fail "fio $*: $jobs jobs ended with err= 0, want 3"; }
	[ "$(io_sizes read)" = "$want_sizes" ] ||
		{ cat "$T/fio.out"; fail "fio $*: did not verify $IO_SIZES"; }
}

# --- write and verify, through the mount
run_fio "$M/fio.img"
[ "$(io_sizes write)" = "$want_sizes" ] ||
	{ cat "$T/fio.out"; fail "fio did not write $IO_SIZES"; }
converged "$D" "$R" fio.img

# --- a remount finds every block
unmount_disks "$M"
mount_disks "$D" "$M"
run_fio "$M/fio.img" --verify_only
# and so does the follower's image, read directly
run_fio "$R/fio.img" --verify_only

# --- the verification can fail: one byte flipped in a 4 KiB block
off=$((4096 * FLIP_BLOCK + 2048))
b=$(od -An -tu1 -j "$off" -N1 "$M/fio.img" | tr -d ' ')
printf "\\$(printf %03o $(((b + 1) % 256)))" |
	dd of="$M/fio.img" bs=1 seek="$off" conv=notrunc status=none || fail "dd into the mount"
expect_exit 1 env FIO_FILE="$M/fio.img" fio --verify_only --section=small "$T/verify.fio"
grep -q "crc32c: verify failed at file $M/fio.img offset $((4096 * FLIP_BLOCK)), length 4096" "$T/stdout" "$T/stderr" ||
	{ cat "$T/stdout" "$T/stderr"; fail "fio did not report the flipped byte"; }
converged "$D" "$R" fio.img
say "ok"
