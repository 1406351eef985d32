#!/bin/bash
# The main job on one machine: build repdisk, mount a data directory's
# disks on the embedded file log, and keep a follower replica beside it.
#
#   bash tools/demo.sh [WORKDIR]      (default /var/tmp/repdisk-demo)
#   bash tools/demo.sh --stop [WORKDIR]
#
# Prints where the mount, the images and the replica are, and how to stop.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
stop=false
[ "${1:-}" = --stop ] && { stop=true; shift; }
work=${1:-/var/tmp/repdisk-demo}
repdisk=$top/build/tools/repdisk

if $stop; then
	fusermount3 -u "$work/mnt" 2>/dev/null || true
	[ -f "$work/follower.pid" ] && kill "$(cat "$work/follower.pid")" 2>/dev/null || true
	rm -f "$work/follower.pid"
	echo "stopped: $work/mnt unmounted, follower stopped (images kept in $work)"
	exit 0
fi

cd "$top"
bash tools/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" >/dev/null

mkdir -p "$work/data" "$work/mnt" "$work/replica"
log=file:$work/data/.repdisk/log
if grep -qs " $work/mnt fuse.repdisk " /proc/mounts; then
	echo "already mounted: $work/mnt"
else
	"$repdisk" mount "$work/data" "$work/mnt"
fi
if [ -f "$work/follower.pid" ] && kill -0 "$(cat "$work/follower.pid")" 2>/dev/null; then
	echo "follower already running (pid $(cat "$work/follower.pid"))"
else
	nohup "$repdisk" follow --log "$log" "$work/replica" \
		> "$work/follower.log" 2>&1 &
	echo $! > "$work/follower.pid"
fi

# a first disk, so there is something to look at
if [ ! -e "$work/mnt/vm1.img" ]; then
	truncate -s 1G "$work/mnt/vm1.img"
	echo "repdisk demo: this sentence went through the log" |
		dd of="$work/mnt/vm1.img" bs=4096 seek=1 conv=notrunc status=none
fi

cat <<EOT

repdisk is running.
  mount        $work/mnt/          each file is a disk: qemu -drive file=$work/mnt/vm1.img,format=raw,cache=none,aio=io_uring
  images       $work/data/         plain raw images (repdisk's state in .repdisk/)
  the log      $work/data/.repdisk/log
  replica      $work/replica/      kept up to date by a follower (pid $(cat "$work/follower.pid"))
  daemon log   $work/data/.repdisk/mount.log

  status       $repdisk status $work/data
               $repdisk status --log $log $work/replica
  records      $repdisk log dump --log $log vm1.img | tail
  compare      cmp $work/data/vm1.img $work/replica/vm1.img
  stop         bash $top/tools/demo.sh --stop $work
EOT
