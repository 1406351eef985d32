#!/bin/bash
# The mount's life: it daemonises and returns only once usable; a second
# mount of the same data directory or log is refused with a clear message;
# names and operations outside a flat directory of disks get the
# documented errno; unmount and SIGTERM checkpoint and exit 0; a remount
# finds everything; catalog changes (create, rename, chmod, chown, unlink)
# reach a follower.
. "$(dirname "$0")/../lib/lib.sh"
requires fusermount3 truncate

D=$T/data M=$T/mnt R=$T/replica
LOG=$(test_log_uri "$D")
mapfile -t LOGARGS < <(log_args "$D")	# --log LOG, unless the default

# --- bad invocations: one line, exit 1 or 2, nothing mounted
mkdir -p "$M"
expect_exit 1 "$REPDISK" mount "${LOGARGS[@]}" "$T/nodir" "$M"
expect_stderr "^repdisk mount: data directory $T/nodir: No such file or directory$"
[ "$(wc -l < "$T/stderr")" = 1 ] || fail "more than one line of error"
mkdir -p "$D"
expect_exit 1 "$REPDISK" mount "${LOGARGS[@]}" "$D" "$T/nomnt"
expect_stderr "mount point $T/nomnt: No such file or directory"
expect_exit 2 "$REPDISK" mount "$D"
expect_stderr "^usage: repdisk mount"
expect_exit 2 "$REPDISK" mount "${LOGARGS[@]}" --max-inflight-mb 0 "$D" "$M"
expect_exit 1 "$REPDISK" mount "${LOGARGS[@]}" -o no_such_option "$D" "$M"
expect_stderr "bad mount options"
grep -q " $M " /proc/mounts && fail "a failed mount left $M mounted"

# --- mount, refuse a second one
mount_disks "$D" "$M"
mkdir -p "$T/mnt2"
expect_exit 1 "$REPDISK" mount "${LOGARGS[@]}" "$D" "$T/mnt2"
expect_stderr "data directory $D: in use by another repdisk process"
mkdir -p "$T/other"
# the same log from another data directory: refused too (README: "A
# second mount of the same data directory or log is refused")
cleanup_mount "$T/mnt2"
expect_exit 1 "$REPDISK" mount --log "$LOG" "$T/other" "$T/mnt2"
case $REPDISK_TEST_BACKEND in
file) expect_stderr "log $D/.repdisk/log: already open for writing by another process \(pid [0-9]+\)" ;;
*) expect_stderr "log .*(already open for writing|in use) by another" ;;
esac
grep -q " $T/mnt2 " /proc/mounts && fail "a refused mount left $T/mnt2 mounted"

start_follower "$LOG" "$R"

# --- disks: create, write, rename, chmod, chown, unlink
truncate -s 16M "$M/vm1.img" || fail "truncate in the mount"
printf 'hello, disk' | dd of="$M/vm1.img" bs=1 seek=4096 conv=notrunc status=none
[ "$(stat -c %s "$D/vm1.img")" = 16777216 ] || fail "image size in DATADIR"
[ "$(dd if="$M/vm1.img" bs=1 skip=4096 count=11 status=none)" = "hello, disk" ] || fail "read back"
: > "$M/vm2.img"
mv "$M/vm2.img" "$M/vm3.img" || fail "rename"
[ -e "$D/vm3.img" ] && [ ! -e "$D/vm2.img" ] || fail "rename not in DATADIR"
chmod 0600 "$M/vm3.img" && chown 123:456 "$M/vm3.img" || fail "chmod/chown"
[ "$(stat -c '%a %u %g' "$M/vm3.img")" = "600 123 456" ] || fail "mode/owner in the mount"
[ "$(stat -c '%a %u %g' "$D/vm3.img")" = "600 123 456" ] || fail "mode/owner in DATADIR"
: > "$M/gone.img" && rm "$M/gone.img" || fail "unlink"
[ ! -e "$D/gone.img" ] || fail "unlinked disk still in DATADIR"
[ "$(ls "$M" | tr '\n' ' ')" = "vm1.img vm3.img " ] || fail "readdir: $(ls "$M")"
df "$M" > /dev/null || fail "statfs"
converged "$D" "$R" vm1.img
for _ in $(seq 100); do [ -e "$R/vm3.img" ] && [ ! -e "$R/gone.img" ] && break; sleep 0.05; done
[ "$(stat -c '%a %u %g' "$R/vm3.img")" = "600 123 456" ] || fail "mode/owner on the follower"

# --- refusals with the documented errno
err() { # EXPECTED-ERRNO-TEXT CMD...
	local want=$1
	shift
	"$@" 2> "$T/err" && fail "$* succeeded"
	grep -q "$want" "$T/err" || { cat "$T/err"; fail "$*: want \"$want\""; }
}
err "Operation not permitted" mkdir "$M/dir"
err "Operation not permitted" ln -s vm1.img "$M/link"
err "Operation not permitted" ln "$M/vm1.img" "$M/hard"
err "Operation not permitted" mkfifo "$M/fifo"
err "Invalid argument" touch "$M/.repdisk-state"
err "File name too long" touch "$M/$(printf 'x%.0s' $(seq 256))"
err "Not a directory" rmdir "$M/vm1.img"
exec 3< "$M/vm1.img"
err "Device or resource busy" rm "$M/vm1.img"
exec 3<&-
[ -e "$D/.repdisk-state" ] && fail "a refused name reached DATADIR"

# --- unmount checkpoints; a remount finds everything
unmount_disks "$M"
grep -q "unmounted, disks checkpointed" "$D/.repdisk/mount.log" || fail "no clean unmount in mount.log"
[ "$(status_field "$D" vm1.img lag)" = 0 ] || fail "lag after unmount: $("$REPDISK" status "$D")"
mount_disks "$D" "$M"
[ "$(dd if="$M/vm1.img" bs=1 skip=4096 count=11 status=none)" = "hello, disk" ] || fail "data after remount"
[ "$(status_field "$D" vm1.img epoch)" = 2 ] || fail "a remount claims a new epoch"

# --- SIGTERM checkpoints and exits 0
pid=$(mount_pid "$M")
[ -n "$pid" ] || fail "no daemon for $M"
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$pid" 2>/dev/null && fail "daemon still running after SIGTERM"
grep -q " $M " /proc/mounts && fail "still mounted after SIGTERM"
[ "$(grep -c "unmounted, disks checkpointed" "$D/.repdisk/mount.log")" = 2 ] || fail "no clean exit on SIGTERM"
converged "$D" "$R" vm1.img

# --- QEMU as another user: allow_other,default_permissions
if command -v runuser > /dev/null && id nobody > /dev/null 2>&1; then
	chmod 0755 "$T"	# nobody must reach the mount point
	mount_disks "$D" "$M" -o allow_other,default_permissions
	truncate -s 1M "$M/guest.img" && chown nobody "$M/guest.img" && chmod 0600 "$M/guest.img"
	runuser -u nobody -- sh -c "printf guest | dd of='$M/guest.img' conv=notrunc status=none" ||
		fail "the disk's owner cannot write it through allow_other"
	[ "$(head -c 5 "$D/guest.img")" = guest ] || fail "nobody's write not in the image"
	runuser -u nobody -- sh -c "cat '$M/vm1.img' > /dev/null" ||
		fail "nobody cannot read root's 0644 disk"
	runuser -u nobody -- sh -c "printf x | dd of='$M/vm1.img' conv=notrunc status=none" 2> "$T/err" &&
		fail "nobody wrote root's disk"
	grep -q "Permission denied" "$T/err" || { cat "$T/err"; fail "want EACCES for another user's disk"; }
	unmount_disks "$M"
fi
say "ok"
