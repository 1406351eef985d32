#!/bin/bash
# No one gets in where they do not belong (contract item 8), tried as an
# unprivileged local user (uid 65534, with setpriv):
#  - mounted with -o allow_other alone, the kernel still checks each disk's
#    mode and owner (repdisk always adds default_permissions): that user
#    cannot read, write, chmod, chown, remove or create root's disks;
#  - a setuid or setgid bit never reaches a disk or an image;
#  - repdisk's state (log segments, heads, checkpoints, catalog, locks,
#    mount.log) is 0600 in 0700 directories, on the primary and on a
#    follower, so no disk's data can be read from the log either;
#  - a state directory that group or others can write is refused, and one
#    they can only read is closed to 0700;
#  - a link planted in the data directory where a new disk's image would
#    go is refused, never followed.
. "$(dirname "$0")/../lib/lib.sh"
requires setpriv fusermount3 find grep

D=$T/data M=$T/mnt R=$T/replica
chmod 755 "$T"			# the other user must reach the mount point
mkdir -m 755 "$D" "$M"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

mount_disks "$D" "$M" -o allow_other
# the follower makes its data directory itself
start_bg "$T/follower-replica.log" "$REPDISK" follow --log "file:$D/.repdisk/log" "$R"
FOLLOWER_PID=$!
secret="SECRET-$RANDOM$RANDOM$RANDOM"
truncate -s 1M "$M/vm1.img"
chmod 600 "$M/vm1.img"
printf '%s' "$secret" | dd of="$M/vm1.img" conv=notrunc status=none
truncate -s 1M "$M/shared.img"
chmod 644 "$M/shared.img"

# --- the unprivileged user, through the mount
nobody ls "$M" > /dev/null || fail "uid 65534 cannot list the mount (allow_other)"
expect_exit 1 nobody cat "$M/vm1.img"
expect_stderr "Permission denied"
expect_exit 1 nobody dd if=/dev/zero of="$M/vm1.img" bs=512 count=1 conv=notrunc status=none
expect_stderr "Permission denied"
expect_exit 1 nobody chmod 4777 "$M/vm1.img"
expect_stderr "Operation not permitted"
expect_exit 1 nobody chown 65534 "$M/vm1.img"
expect_stderr "Operation not permitted"
expect_exit 1 nobody rm -f "$M/vm1.img"
expect_stderr "Permission denied"
expect_exit 1 nobody truncate -s 1M "$M/mine.img"
expect_stderr "Permission denied"
nobody cmp -n 1048576 "$M/shared.img" /dev/zero || fail "uid 65534 cannot read a disk of mode 0644"
expect_exit 1 nobody dd if=/dev/urandom of="$M/shared.img" bs=512 count=1 conv=notrunc status=none
expect_stderr "Permission denied"
[ "$(head -c ${#secret} "$M/vm1.img")" = "$secret" ] || fail "root's disk changed"
[ ! -e "$M/mine.img" ] || fail "uid 65534 created a disk"

# --- and directly, in the data directories: the log holds the secret, and
# nothing of it may be readable
converged "$D" "$R" vm1.img
for dir in "$D" "$R"; do
	nobody grep -rqa "$secret" "$dir" 2>/dev/null && fail "uid 65534 read the secret in $dir"
done
grep -rqa "$secret" "$D/.repdisk/log" || fail "the secret is not in the log: the check above proves nothing"

# --- setuid and setgid bits never reach a disk or an image
chmod 6755 "$M/vm1.img"
[ "$(stat -c %a "$M/vm1.img")" = 755 ] || fail "mode in the mount: $(stat -c %a "$M/vm1.img"), want 755"
chmod 600 "$M/vm1.img"
converged "$D" "$R" vm1.img
for img in "$D/vm1.img" "$R/vm1.img"; do
	[ "$(stat -c %a "$img")" = 600 ] || fail "$img: mode $(stat -c %a "$img"), want the disk's 600"
done

# --- the state: 0600 files in 0700 directories, nothing else
kill -TERM "$FOLLOWER_PID"
wait "$FOLLOWER_PID" 2>/dev/null || true
unmount_disks "$M"
bad=$(find "$D/.repdisk" "$R/.repdisk" \( -type d ! -perm 700 \) -o \( ! -type d -perm /077 \))
[ -z "$bad" ] || fail "state open to group or others: $(ls -ld $bad)"
[ "$(stat -c %a "$R")" = 700 ] || fail "the follower made its data directory $(stat -c %a "$R"), want 700"

# --- a state directory others can write is refused, and changes nothing
chmod 777 "$D/.repdisk"
expect_exit 1 "$REPDISK" mount "$D" "$M"
expect_stderr "\.repdisk: writable by group or others \(mode 0777\): refusing"
grep -qs " $M fuse" /proc/mounts && fail "mounted over a bad state directory"
[ "$(stat -c %a "$D/.repdisk")" = 777 ] || fail "the refused mount changed the directory"
chmod 777 "$D/.repdisk/log"
chmod 700 "$D/.repdisk"
expect_exit 1 "$REPDISK" mount "$D" "$M"
expect_stderr "log: writable by group or others"
# one that others can only read (an older version's) is closed
chmod 755 "$D/.repdisk" "$D/.repdisk/log"
mount_disks "$D" "$M"
[ "$(stat -c %a "$D/.repdisk")" = 700 ] && [ "$(stat -c %a "$D/.repdisk/log")" = 700 ] ||
	fail "a state directory readable by others was left open"
[ "$(head -c ${#secret} "$M/vm1.img")" = "$secret" ] || fail "the disk changed"

# --- a link planted in the data directory is never followed
echo target > "$T/target"
chmod 644 "$T/target"
ln -s "$T/target" "$D/planted.img"
expect_exit 1 truncate -s 1M "$M/planted.img"
expect_stderr "File exists"
[ "$(cat "$T/target")" = target ] && [ "$(stat -c %a "$T/target")" = 644 ] ||
	fail "a create followed a planted link"
grep -q "planted.img: $D/planted.img is in the way" "$D/.repdisk/mount.log" ||
	fail "no message for the planted link"
say "ok"
