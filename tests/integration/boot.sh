#!/bin/bash
# A Linux VM boots from a disk in the mount, and its replica boots with no
# repdisk running (on the file log, and as boot-kafka on a real Kafka
# cluster).  The disk: an MBR partition table with syslinux's boot
# code, one ext4 partition holding extlinux, Debian's cloud kernel and a
# tiny busybox initramfs (boot/init), and a marker file with a random
# value.  Built in a scratch file (extlinux installs only into a mounted
# file system: a loop mount of that scratch file, never of the mount), then
# written into the mount with `dd oflag=direct conv=sparse`.
#
# QEMU (TCG) boots it from the mount with cache=none,aio=io_uring (threads
# when io_uring is unavailable): the BIOS and extlinux read the kernel and
# initramfs through the mount; the guest's /init mounts the ext4 root,
# prints the marker and the md5 of the kernel as its file system reads
# it, writes 4 MiB of random data to /guest.bin and prints their md5, and
# powers off.  The follower converges (cmp), and both images hold the
# guest's data.  Then the mount is unmounted and the follower stopped (no
# repdisk process of this test left, checked with pgrep), and the
# follower's image in its data directory boots as a plain raw file: the
# same marker and kernel, a new /guest.bin.  A disk whose marker was
# changed prints that value instead, so the check can fail.
. "$(dirname "$0")/../lib/lib.sh"
. "$(dirname "$0")/boot/kernel.sh"
requires qemu-system-x86_64 qemu-io extlinux sfdisk mkfs.ext4 debugfs e2fsck busybox cpio gzip \
	losetup mount umount md5sum fusermount3 cmp pgrep
MBR=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$MBR" ] || { echo "$TEST_NAME: SKIP: $MBR is missing (package syslinux-common)" >&2; exit 77; }
BUSYBOX=$(command -v busybox)
! ldd "$BUSYBOX" > /dev/null 2>&1 ||
	{ echo "$TEST_NAME: SKIP: $BUSYBOX is not static (package busybox-static)" >&2; exit 77; }

D=$T/data M=$T/mnt R=$T/replica
LOG=$(test_log_uri "$D")
BOOT_TIMEOUT=${BOOT_TIMEOUT:-400}	# seconds; TCG on a busy machine
MARKER=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
PART_START=1048576			# bytes: the partition at sector 2048
DISK_SIZE=$((64 << 20))

debian_kernel

# --- the initramfs: busybox, /init, and the virtio modules it loads, in
# the order modules.dep gives (dependencies, last listed first; then the
# module), named in lib/modules/order
mkdir -p "$T/initrd/bin" "$T/initrd/lib/modules"
cp "$BUSYBOX" "$T/initrd/bin/busybox"
cp "$(dirname "$0")/boot/init" "$T/initrd/init"
chmod 755 "$T/initrd/init"
for want in virtio_pci virtio_blk; do
	line=$(grep -E "(^|/)$want\.ko[^/:]*:" "$KMODULES/modules.dep") || fail "no module $want in $KMODULES"
	read -ra deps <<< "${line#*:}"
	for ((i = ${#deps[@]} - 1; i >= -1; i--)); do
		if [ "$i" -ge 0 ]; then f=${deps[i]}; else f=${line%%:*}; fi
		m=$(basename "$f"); m=${m%%.ko*}
		[ -f "$T/initrd/lib/modules/$m.ko" ] && continue
		case $f in
		*.ko) cp "$KMODULES/$f" "$T/initrd/lib/modules/$m.ko" ;;
		*.ko.xz) xz -dc "$KMODULES/$f" > "$T/initrd/lib/modules/$m.ko" ;;
		*.ko.zst) zstd -qdc "$KMODULES/$f" > "$T/initrd/lib/modules/$m.ko" ;;
		*) fail "cannot unpack $f" ;;
		esac || fail "copy $f"
		echo "$m" >> "$T/initrd/lib/modules/order"
	done
done
(cd "$T/initrd" && find . | cpio -o -H newc --quiet | gzip -1) > "$T/initrd.img" || fail "cpio"

# --- the root file system, then extlinux into it through a loop mount
mkdir -p "$T/root/boot/extlinux" "$T/loop"
echo "$MARKER" > "$T/root/repdisk-marker"
cat > "$T/root/boot/extlinux/extlinux.conf" << 'EOF'
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
	LINUX /boot/vmlinuz
	INITRD /boot/initrd.img
	APPEND console=ttyS0 quiet panic=-1
EOF
truncate -s $((DISK_SIZE - PART_START)) "$T/root.img"
mkfs.ext4 -q -F -L repdisk-boot -d "$T/root" "$T/root.img" > "$T/mkfs.log" 2>&1 ||
	{ cat "$T/mkfs.log"; fail "mkfs.ext4"; }
cleanup "umount '$T/loop'"
mount -o loop "$T/root.img" "$T/loop" 2> "$T/loop.log" ||
	{ echo "$TEST_NAME: SKIP: cannot loop-mount a scratch image: $(cat "$T/loop.log")" >&2; exit 77; }
# The kernel and initramfs are copied here, not by mkfs.ext4 -d, which
# leaves holes for zero blocks: extlinux cannot load a file with holes
# ("Loading /boot/vmlinuz failed: I/O error").
cp --sparse=never "$KERNEL" "$T/loop/boot/vmlinuz" || fail "cp the kernel"
cp --sparse=never "$T/initrd.img" "$T/loop/boot/initrd.img" || fail "cp the initramfs"
extlinux --install "$T/loop/boot/extlinux" > "$T/extlinux.log" 2>&1 ||
	{ cat "$T/extlinux.log"; fail "extlinux --install"; }
umount "$T/loop" || fail "umount the loop mount"	# its loop device goes with it (autoclear)

truncate -s "$DISK_SIZE" "$T/disk.img"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$T/disk.img" > "$T/sfdisk.log" 2>&1 ||
	{ cat "$T/sfdisk.log"; fail "sfdisk"; }
dd if="$MBR" of="$T/disk.img" bs=440 count=1 conv=notrunc status=none || fail "dd the MBR"
dd if="$T/root.img" of="$T/disk.img" bs=1M seek=1 conv=notrunc,sparse status=none || fail "dd the partition"
rm -f "$T/root.img"
sfdisk -d "$T/disk.img" 2> /dev/null | grep -q 'start= *2048, size= *129024, type=83, bootable' ||
	{ sfdisk -d "$T/disk.img"; fail "unexpected partition table"; }

# --- into the mount
mount_disks "$D" "$M"
start_follower "$LOG" "$R"
truncate -s "$DISK_SIZE" "$M/boot.img" || fail "truncate in the mount"
dd if="$T/disk.img" of="$M/boot.img" bs=1M oflag=direct conv=notrunc,sparse status=none ||
	fail "dd into the mount"
cmp "$T/disk.img" "$M/boot.img" || fail "the disk in the mount differs from the one written"
converged "$D" "$R" boot.img

aio=threads
qemu-io -f raw -n -t none -i io_uring -r -c "read 0 512" "$M/boot.img" > /dev/null 2>&1 && aio=io_uring

# boot NAME DRIVE-OPTIONS: QEMU boots the disk, its serial console in
# $T/serial-NAME.log; the guest must power off (QEMU exits 0) within
# BOOT_TIMEOUT seconds and print the marker.  Sets GUEST_WROTE to the md5
# the guest printed for the /guest.bin it wrote.
boot() {
	local name=$1 drive=$2 pid rc=0 start=$SECONDS
	start_bg "$T/qemu-$name.log" qemu-system-x86_64 -accel tcg -m 256 -smp 1 \
		-nographic -monitor none -serial "file:$T/serial-$name.log" -no-reboot \
		-drive "$drive"
	pid=$!
	while kill -0 "$pid" 2> /dev/null && [ $((SECONDS - start)) -lt "$BOOT_TIMEOUT" ]; do
		# the boot loader's failures wait at a prompt: stop at once
		if grep -Eqs "^(Loading .* failed|boot: |No DEFAULT or UI|Boot failed|No bootable device)" \
			"$T/serial-$name.log"; then
			sleep 1
			break
		fi
		sleep 1
	done
	if kill -0 "$pid" 2> /dev/null; then
		kill -9 "$pid"
		tail -n 40 "$T/serial-$name.log" >&2
		fail "boot $name: the guest did not power off (after $((SECONDS - start)) s)"
	fi
	wait "$pid" || rc=$?
	# the console's text, without carriage returns and terminal escapes
	sed -E 's/\r//g; s/\x1b(\[[0-9;?]*[a-zA-Z]|[a-zA-Z])//g' "$T/serial-$name.log" > "$T/console-$name"
	if [ "$rc" -ne 0 ] || grep -q REPDISK-BOOT-FAIL "$T/console-$name" ||
		! grep -qx "REPDISK-BOOT-OK $MARKER" "$T/console-$name"; then
		cat "$T/qemu-$name.log" >&2
		tail -n 40 "$T/console-$name" >&2
		fail "boot $name: QEMU exited $rc, no 'REPDISK-BOOT-OK $MARKER' on the console"
	fi
	grep -qx "REPDISK-KERNEL-MD5 $(md5sum < "$KERNEL" | cut -d' ' -f1)" "$T/console-$name" ||
		{ grep REPDISK- "$T/console-$name" >&2; fail "boot $name: the guest read a different kernel"; }
	GUEST_WROTE=$(awk '$1 == "REPDISK-GUEST-WROTE" { print $2 }' "$T/console-$name")
	[ ${#GUEST_WROTE} = 32 ] || fail "boot $name: no md5 of /guest.bin on the console"
	say "boot $name: ok in $((SECONDS - start)) s"
}

# guest_file IMAGE FILE: a file of the image's ext4 partition, on stdout
guest_file() {
	debugfs -R "cat $2" "$1?offset=$PART_START" 2> "$T/debugfs.err" ||
		{ cat "$T/debugfs.err" >&2; fail "debugfs cat $2 on $1"; }
}

# check_guest_write IMAGE MD5 BOOTS: /guest.bin in IMAGE has MD5, /boots
# BOOTS lines, and e2fsck finds the file system clean
check_guest_write() {
	[ "$(guest_file "$1" /guest.bin | md5sum | cut -d' ' -f1)" = "$2" ] ||
		fail "/guest.bin in $1 is not what the guest wrote"
	[ "$(guest_file "$1" /boots | wc -l)" = "$3" ] || fail "/boots in $1 does not have $3 lines"
	e2fsck -fn "$1?offset=$PART_START" > "$T/e2fsck.log" 2>&1 ||
		{ cat "$T/e2fsck.log"; fail "e2fsck of $1's partition"; }
}

# --- boot from the mount
say "QEMU on the mount with cache=none,aio=$aio"
boot mount "file=$M/boot.img,format=raw,if=virtio,cache=none,aio=$aio"
converged "$D" "$R" boot.img
check_guest_write "$M/boot.img" "$GUEST_WROTE" 1
check_guest_write "$R/boot.img" "$GUEST_WROTE" 1
first_write=$GUEST_WROTE

# --- the follower's image, with no repdisk running
unmount_disks "$M"
kill -TERM "$FOLLOWER_PID"
wait "$FOLLOWER_PID" || fail "the follower exited $? on SIGTERM"
cmp "$D/boot.img" "$R/boot.img" || fail "the follower's image differs from the primary's"
# No process of this test's (its mount daemon, its follower) is left: every
# one names a path under $T.  (Not `pgrep -x repdisk`: other repdisk
# processes, other tests' or an operator's, may run on the machine.)
if pgrep -af -- "$T" > "$T/pgrep.out"; then
	cat "$T/pgrep.out" >&2
	fail "processes of this test still run"
fi
grep -qs " $T/" /proc/mounts && fail "something is still mounted under $T"
boot replica "file=$R/boot.img,format=raw,if=virtio"
[ "$GUEST_WROTE" != "$first_write" ] || fail "the guest wrote the same random data twice"
check_guest_write "$R/boot.img" "$GUEST_WROTE" 2

# --- the check can fail: another marker on the disk is printed as it is
cp --sparse=always "$R/boot.img" "$T/other.img"
guest_file "$T/other.img" /repdisk-marker > /dev/null
printf '%s\n' "rm /repdisk-marker" "write $T/other-marker /repdisk-marker" > "$T/debugfs.cmds"
echo "other-$MARKER" > "$T/other-marker"
debugfs -w -f "$T/debugfs.cmds" "$T/other.img?offset=$PART_START" > "$T/debugfs.out" 2>&1 ||
	{ cat "$T/debugfs.out"; fail "debugfs -w on the copy"; }
if (boot other "file=$T/other.img,format=raw,if=virtio") > "$T/other.out" 2>&1; then
	fail "a disk with another marker passed the boot check"
fi
grep -qx "REPDISK-BOOT-OK other-$MARKER" "$T/console-other" ||
	{ cat "$T/other.out"; fail "the copy did not boot with its own marker"; }
say "a copy with another marker: $(grep -o 'FAIL: .*' "$T/other.out")"
say "ok"
