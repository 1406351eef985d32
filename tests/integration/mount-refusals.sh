#!/bin/bash
# What an operator can get wrong is refused up front, and changes nothing:
#  - a data directory, a file log or a log file under the mount point
#    (`repdisk mount D D` used to hang for good: the daemon opened its
#    log through its own mount, which it did not serve yet);
#  - a mount point that is already mounted (the new mount hid the old
#    one from the guests using it);
#  - a log URI with a typo leaves no .repdisk behind;
# and SIGHUP, what logrotate sends, reopens the mount's log file instead
# of unmounting the disks; `repdisk status` exits non-zero when it cannot
# open the log it was given, and its --json stays JSON for any name.
. "$(dirname "$0")/../lib/lib.sh"
requires fusermount3 timeout

D=$T/data M=$T/mnt
mkdir -p "$D" "$M"
cleanup_mount "$D"
cleanup_mount "$M"

expect_exit 1 timeout 60 "$REPDISK" mount "$D" "$D"
expect_stderr "^repdisk mount: data directory $D is under the mount point $D: choose a data directory outside it$"
expect_exit 1 timeout 60 "$REPDISK" mount --log "file:$M/log" "$D" "$M"
expect_stderr "^repdisk mount: log $M/log is under the mount point $M: choose a log outside it$"
expect_exit 1 timeout 60 "$REPDISK" mount --log-file "$M/mount.log" "$D" "$M"
expect_stderr "^repdisk mount: log file $M/mount.log is under the mount point $M"
grep -qs " $M fuse" /proc/mounts && fail "a refused mount is mounted"
[ ! -e "$D/.repdisk" ] || fail "a refused mount touched the data directory"

# a typo in the log URI: refused, nothing made
expect_exit 1 "$REPDISK" mount --log "kafkaa:127.0.0.1:9" "$D" "$M"
expect_stderr "kafkaa"
[ ! -e "$D/.repdisk" ] || fail "a mount with a bad log URI left $D/.repdisk behind"

# a mount point in use
mount_disks "$D" "$M"
truncate -s 1M "$M/vm1.img"
mkdir -p "$T/data2"
expect_exit 1 "$REPDISK" mount "$T/data2" "$M"
expect_stderr "^repdisk mount: mount point $M: already mounted \\(repdisk:$D, type fuse.repdisk\\): unmount it first$"
[ -e "$M/vm1.img" ] || fail "the first mount is hidden"
[ ! -e "$T/data2/.repdisk" ] || fail "the refused mount touched its data directory"

# SIGHUP reopens the log file; the disks stay mounted
pid=$(mount_pid "$M")
mv "$D/.repdisk/mount.log" "$D/.repdisk/mount.log.1"
kill -HUP "$pid"
for _ in $(seq 100); do
	grep -qs "log file reopened (SIGHUP)" "$D/.repdisk/mount.log" && break
	sleep 0.1
done
grep -qs "log file reopened (SIGHUP)" "$D/.repdisk/mount.log" || fail "no new log file after SIGHUP"
kill -0 "$pid" 2>/dev/null || fail "SIGHUP stopped the daemon"
grep -qs " $M fuse" /proc/mounts || fail "SIGHUP unmounted the disks"
dd if=/dev/urandom of="$M/vm1.img" bs=4k count=1 conv=notrunc status=none || fail "a write after SIGHUP"
# a name with a quote and a backslash (and, below, a data directory with
# a tab in its path): status --json stays JSON
odd='odd"name\.img'
truncate -s 1M "$M/$odd" || fail "create a disk with an odd name"
[ "$(stat -c %a "$D/.repdisk/mount.log")" = 600 ] || fail "the new log file is not 0600"
unmount_disks "$M"

# status: a log that cannot be opened is an error, not a shrug
expect_exit 1 "$REPDISK" status --log "file:$T/nolog" "$D"
expect_stderr "nolog"
grep -q "^vm1.img " "$T/stdout" || fail "status showed nothing of the data directory"
expect_exit 1 "$REPDISK" status --log "kafkaa:127.0.0.1:9" "$D"
expect_exit 0 "$REPDISK" status "$D"
tabbed=$T/$'da\tta'
mv "$D" "$tabbed"
expect_exit 0 "$REPDISK" status --json "$tabbed"
python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
names = sorted(d["name"] for d in s["disks"])
assert names == sorted(["vm1.img", sys.argv[2]]), names
assert s["datadir"] == sys.argv[3], s["datadir"]' "$T/stdout" "$odd" "$tabbed" ||
	fail "status --json is not JSON, or lost a name: $(cat "$T/stdout")"
mv "$tabbed" "$D"
say "ok"
