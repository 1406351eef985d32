#!/bin/bash
# The cost of a mount as the work grows: one repdisk mount on the embedded
# file log with 1, 10 and 100 disks, every disk under its own fio job at
# once, the same total bytes each time.  For each count it reports:
#   - aggregate sequential-write throughput (fio, 1 MiB, O_DIRECT, qd 4
#     per disk, each disk written once from start to end);
#   - the mount daemon's peak RSS, and its threads and open descriptors
#     at their highest while loaded (sampled every 0.2 s);
#   - the time to mount a fresh data directory, and to mount again over
#     the written one (its catalog and checkpoints read, nothing to replay);
#   - the time for a follower to replay the whole log from nothing into a
#     data directory of its own (`repdisk follow --once`, after a sync:
#     the primary's writeback is not in it), as GB/s of log.
# Figures, not a test: nothing here passes or fails.
#
#   bash tools/bench/scale.sh [--dir DIR] [--total-mb N] [--counts "1 10 100"]
#
# DIR (default /var/tmp/repdisk-scale) must be on the file system to
# measure, with room for three times the total (log, images, replica).
# Needs root (FUSE mounts), fio and python3.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=/var/tmp/repdisk-scale total_mb=4096 counts="1 10 100"
while [ $# -gt 0 ]; do
	case $1 in
	--dir) dir=$2; shift 2 ;;
	--total-mb) total_mb=$2; shift 2 ;;
	--counts) counts=$2; shift 2 ;;
	*) echo "usage: $0 [--dir DIR] [--total-mb N] [--counts \"1 10 100\"]" >&2; exit 2 ;;
	esac
done

. "$top/tools/bench/setup.sh"

mkdir -p "$dir"
work=$(mktemp -d "$dir/run.XXXXXX")
sampler=
cleanup() {
	[ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true
	fusermount3 -uz "$work/mnt" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }

# mount_at: mounts $work/data on $work/mnt; the daemon's pid in $rdpid
mount_at() {
	# --keep-log: the follower below replays the whole log from 0
	"$repdisk" mount --keep-log --log "file:$work/log" "$work/data" "$work/mnt"
	rdpid=$(pgrep -f "^repdisk mount .*$work/data $work/mnt\$")
}

# sample PID OUT: the highest thread and descriptor counts until killed
sample() {
	local t f maxt=0 maxf=0
	while kill -0 "$1" 2>/dev/null; do
		t=$(awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
		f=$(ls "/proc/$1/fd" 2>/dev/null | wc -l)
		[ "${t:-0}" -gt "$maxt" ] && maxt=$t
		[ "$f" -gt "$maxf" ] && maxf=$f
		echo "$maxt $maxf" > "$2"
		sleep 0.2
	done
}

rows=()
for n in $counts; do
	rm -rf "$work/data" "$work/log" "$work/replica"
	mkdir -p "$work/data" "$work/mnt"
	t0=$(now)
	mount_at
	t_mount=$(since "$t0")
	per_mb=$((total_mb / n))
	for i in $(seq 0 $((n - 1))); do
		truncate -s "${per_mb}M" "$work/mnt/vm$i.img"
	done
	idle_threads=$(awk '/^Threads:/ {print $2}' "/proc/$rdpid/status")
	sample "$rdpid" "$work/peak" &
	sampler=$!
	fio --name=vm --directory="$work/mnt" --filename_format='vm$jobnum.img' \
		--numjobs="$n" --rw=write --bs=1M --ioengine=libaio --iodepth=4 \
		--direct=1 --size="${per_mb}M" --group_reporting \
		--output-format=json > "$work/fio.json"
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	sampler=
	read -r peak_threads peak_fds < "$work/peak"
	rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$rdpid/status")
	mbps=$(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print('%.0f' % (j['jobs'][0]['write']['bw_bytes'] / 1e6))" "$work/fio.json")
	fusermount3 -u "$work/mnt"
	while kill -0 "$rdpid" 2>/dev/null; do sleep 0.1; done
	t0=$(now)
	mount_at
	t_remount=$(since "$t0")
	fusermount3 -u "$work/mnt"
	while kill -0 "$rdpid" 2>/dev/null; do sleep 0.1; done
	log_bytes=$(du -sb "$work/log" | awk '{print $1}')
	# the primary's writeback done first: the replay's own writes are
	# what it is timed with
	sync
	mkdir -p "$work/replica"
	t0=$(now)
	"$repdisk" follow --once --log "file:$work/log" "$work/replica" > /dev/null
	t_follow=$(since "$t0")
	gbps=$(python3 -c "import sys; print('%.2f' % (int(sys.argv[1]) / float(sys.argv[2]) / 1e9))" "$log_bytes" "$t_follow")
	rows+=("$n $mbps $((rss / 1024)) $idle_threads $peak_threads $peak_fds $t_mount $t_remount $t_follow $gbps")
done

printf '%-34s' "disks"
for r in "${rows[@]}"; do set -- $r; printf '%10s' "$1"; done; echo
label=("" "seq write, all disks (MB/s)" "peak RSS (MiB)" "threads, idle after create" \
	"threads, peak under load" "open fds, peak under load" "mount, fresh (s)" \
	"mount again, written (s)" "follow --once from 0 (s)" "follow replay (GB/s of log)")
for k in 1 2 3 4 5 6 7 8 9; do
	printf '%-34s' "${label[$k]}"
	for r in "${rows[@]}"; do set -- $r; shift "$k"; printf '%10s' "$1"; done; echo
done
