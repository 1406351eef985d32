#!/bin/bash
# The main job on one machine: build repdisk, write a disk through the
# embedded file log, and keep a follower replica of it up to date.
#
#   bash tools/demo.sh [WORKDIR]      (default /var/tmp/repdisk-demo)
#
# Prints where the primary's images, the log and the replica are, and how
# to stop the follower.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/repdisk-demo}
cd "$top"

bash tools/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
repdisk=$top/build/tools/repdisk
writer=$top/build/tests/tools/rl_testwriter

mkdir -p "$work/primary" "$work/replica"
log=file:$work/primary/.repdisk/log

# write 2000 random records into vm1.img through the real write pipeline
"$writer" load --log "$log" --datadir "$work/primary" --disk vm1.img \
	--acks "$work/acks" --count 2000 --size-mb 64

if [ -f "$work/follower.pid" ] && kill -0 "$(cat "$work/follower.pid")" 2>/dev/null; then
	echo "follower already running (pid $(cat "$work/follower.pid"))"
else
	nohup "$repdisk" follow --log "$log" "$work/replica" \
		> "$work/follower.log" 2>&1 &
	echo $! > "$work/follower.pid"
fi
for _ in $(seq 100); do
	cmp -s "$work/primary/vm1.img" "$work/replica/vm1.img" && break
	sleep 0.1
done

cat <<EOT

repdisk demo is running.
  primary images   $work/primary/          (vm1.img is a plain raw image)
  the log          $work/primary/.repdisk/log
  replica images   $work/replica/          (kept up to date by a follower)
  follower         pid $(cat "$work/follower.pid"), log in $work/follower.log

  status           $repdisk status --log $log $work/replica
  records          $repdisk log dump --log $log vm1.img | tail
  compare          cmp $work/primary/vm1.img $work/replica/vm1.img
  stop             kill \$(cat $work/follower.pid)
EOT
"$repdisk" status --log "$log" "$work/replica"
