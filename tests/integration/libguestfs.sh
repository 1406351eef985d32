#!/bin/bash
# libguestfs, as an operator uses it on repdisk's disks (on the file log,
# and as libguestfs-kafka on a real Kafka cluster).  guestfish, in one
# appliance launch, partitions a disk in the mount (MBR), makes an ext4
# file system, writes /hello and uploads a 3 MB file of random data to
# /etc/x, and checks what it wrote; once the follower has converged (cmp),
# virt-ls and virt-cat read the follower's image, a plain raw file in its
# data directory: the listing and every byte must match (the data are
# random, new each run).
#
# libguestfs runs QEMU under TCG (LIBGUESTFS_BACKEND=direct,
# LIBGUESTFS_BACKEND_SETTINGS=force_tcg: nested KVM fails here), about
# 20 s a launch.  Its appliance needs a kernel, and a machine like CI's has
# none in /boot ("supermin: failed to find a suitable kernel"): supermin
# is given Debian's cloud kernel, fetched once into a cache
# (boot/kernel.sh), through SUPERMIN_KERNEL, SUPERMIN_KERNEL_VERSION and
# SUPERMIN_MODULES.  The appliance supermin builds from it (about 370 MB)
# is cached beside it, in REPDISK_TEST_CACHE/guestfs.
. "$(dirname "$0")/../lib/lib.sh"
. "$(dirname "$0")/boot/kernel.sh"
requires guestfish virt-ls virt-cat supermin qemu-system-x86_64 fusermount3 cmp

D=$T/data M=$T/mnt R=$T/replica
LOG=$(test_log_uri "$D")

debian_kernel
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
export SUPERMIN_KERNEL=$KERNEL SUPERMIN_KERNEL_VERSION=$KVER SUPERMIN_MODULES=$KMODULES
export LIBGUESTFS_CACHEDIR=$REPDISK_TEST_CACHE/guestfs
# libguestfs's scratch files (the overlays of read-only drives) under $T,
# where QEMU's command line names them (see the cleanup below)
export LIBGUESTFS_TMPDIR=$T/libguestfs
mkdir -p "$LIBGUESTFS_CACHEDIR" "$LIBGUESTFS_TMPDIR"
# supermin copies the host's /lib/modules directory into the appliance
# ("lstat: No such file or directory: /lib/modules" where there is none):
# an empty one, removed again at exit if this test made it
if [ ! -e /lib/modules ]; then
	mkdir /lib/modules || fail "mkdir /lib/modules"
	cleanup "rmdir /lib/modules"
fi

# --- what to write
HELLO="hello from guestfish, $(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
printf '%s' "$HELLO" > "$T/hello"
head -c 3000000 /dev/urandom > "$T/x"

mount_disks "$D" "$M"
start_follower "$LOG" "$R"
truncate -s 256M "$M/vm1.img" || fail "truncate in the mount"
# libguestfs's QEMU is the tool's child: if the tool is killed (timeout),
# it may outlive it; at exit, before the unmount, no QEMU on this test's
# files (the disk in the mount, the overlays of the follower's image) is
# left
cleanup "pkill -9 -f -- 'qemu-system-x86_64 .*$T/'"

# --- one guestfish launch writes the disk through the mount, and reads
# back what it wrote
cat > "$T/guestfish.cmds" << EOF
run
part-disk /dev/sda mbr
mkfs ext4 /dev/sda1
mount /dev/sda1 /
write /hello "$HELLO"
mkdir /etc
upload $T/x /etc/x
sync
echo ==ls
ls /
echo ==hello
cat /hello
echo ==x
checksum md5 /etc/x
umount-all
fsck ext4 /dev/sda1
EOF
timeout -k 10 600 guestfish --format=raw -a "$M/vm1.img" < "$T/guestfish.cmds" > "$T/guestfish.out" 2> "$T/guestfish.log" ||
	{ cat "$T/guestfish.out" "$T/guestfish.log"; fail "guestfish on the mount exited non-zero"; }
md5=$(md5sum < "$T/x" | cut -d' ' -f1)
printf '%s\n' ==ls etc hello lost+found ==hello "$HELLO" ==x "$md5" 0 > "$T/want"
diff "$T/want" "$T/guestfish.out" ||
	fail "guestfish did not read back what it wrote (want -, got +)"
say "guestfish wrote the disk in the mount"

# --- the follower's image, read by virt-ls and virt-cat
converged "$D" "$R" vm1.img
timeout -k 10 600 virt-ls --format=raw -a "$R/vm1.img" -m /dev/sda1 -R / > "$T/ls.out" 2> "$T/virt-ls.log" ||
	{ cat "$T/virt-ls.log"; fail "virt-ls on the follower's image"; }
printf '%s\n' etc etc/x hello lost+found > "$T/ls.want"
diff "$T/ls.want" <(sort "$T/ls.out") || fail "virt-ls of the follower's image (want -, got +)"
cat "$T/hello" "$T/x" > "$T/cat.want"
timeout -k 10 600 virt-cat --format=raw -a "$R/vm1.img" -m /dev/sda1 /hello /etc/x > "$T/cat.out" 2> "$T/virt-cat.log" ||
	{ cat "$T/virt-cat.log"; fail "virt-cat on the follower's image"; }
cmp "$T/cat.want" "$T/cat.out" || fail "virt-cat of the follower's image: /hello and /etc/x differ"
say "virt-ls and virt-cat read the follower's image"
say "ok"
