#!/bin/bash
# What the random-write tail is made of: one fresh repdisk mount on the
# embedded file log, a 1 GiB disk laid out by a sequential write, then
# random 4 KiB writes at queue depth 32 (libaio, O_DIRECT) with fio's
# per-I/O latency log.  For each run it reports IOPS, p50, p99 and p99.9
# of the completion latency, the bytes the disk took for each byte
# written (disk/data: the log's and the image's, with what the job left
# dirty, written back), and the 100 ms buckets in which more than a
# tenth of the I/Os took over 4 ms ("slow"), with their time from the
# start of the job: bursts that recur at a period point at what causes
# them (the checkpoint, once a second, in docs/BENCHMARKS.md).
#
#   bash tools/bench/tail.sh [--dir DIR] [--runs N] [--runtime S]
#                            [--baseline BIN]
#
# With --baseline, runs alternate between BIN (another build's
# tools/repdisk, its repdisk-mount beside it) and this tree's build, so
# that the machine's drift falls on both.  Figures, not a test: nothing
# here passes or fails.  Needs root (FUSE mounts), fio and python3.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=/var/tmp/repdisk-tail runs=3 runtime=16 baseline=
usage="usage: $0 [--dir DIR] [--runs N] [--runtime S] [--baseline BIN]"
while [ $# -gt 0 ]; do
	case $1 in
	--dir) dir=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--runtime) runtime=$2; shift 2 ;;
	--baseline) baseline=$2; shift 2 ;;
	*) echo "$usage" >&2; exit 2 ;;
	esac
done
if [ -n "$baseline" ] && [ ! -x "$baseline" ]; then
	echo "$0: --baseline $baseline: not an executable" >&2
	exit 2
fi

. "$top/tools/bench/setup.sh"

mkdir -p "$dir"
# Sectors written to the block device that holds $dir (/proc/diskstats),
# or nothing where it has none there (tmpfs, overlay): disk/data, the
# bytes the disk took for each byte fio wrote, is then left out.
dev=$(basename "$(findmnt -no SOURCE --target "$dir" 2>/dev/null)" 2>/dev/null || true)
sectors_written() {
	awk -v d="$dev" '$3 == d { print $10; found = 1 }
		END { if (!found) print -1 }' /proc/diskstats
}
work=$(mktemp -d "$dir/run.XXXXXX")
cleanup() {
	fusermount3 -uz "$work/mnt" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# one_run BIN LABEL: a fresh mount, the layout, the measured job
one_run() {
	local bin=$1 label=$2 f pid
	fusermount3 -uz "$work/mnt" 2>/dev/null || true
	rm -rf "${work:?}"/*
	mkdir -p "$work/mnt" "$work/data"
	"$bin" mount --log "file:$work/log" "$work/data" "$work/mnt" >/dev/null
	pid=$(pgrep -f "^repdisk mount .*$work/data $work/mnt\$")
	f=$work/mnt/disk.img
	fio --name=layout --filename="$f" --size=1024M --direct=1 \
		--rw=write --bs=1M --ioengine=libaio --iodepth=8 \
		--end_fsync=1 >/dev/null
	sync
	s0=$(sectors_written)
	(cd "$work" && fio --name=rw --filename="$f" --size=1024M --direct=1 \
		--rw=randwrite --bs=4k --ioengine=libaio --iodepth=32 \
		--time_based --runtime="$runtime" \
		--write_lat_log="$work/lat" --log_avg_msec=0 >/dev/null)
	# the disk's bytes for the job: until the daemon has checkpointed
	# and exited, and its image is written back
	fusermount3 -u "$work/mnt"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	sync
	s1=$(sectors_written)
	[ "$s0" -lt 0 ] || s1=$((s1 - s0))
	python3 - "$label" "$runtime" "$work"/lat_clat*.log "$s1" <<'PY'
import sys
label, runtime, path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
sectors = int(sys.argv[4])
lat, buckets = [], {}
for line in open(path):
    t, v = (int(x) for x in line.split(',')[:2])   # ms since start, ns
    lat.append(v)
    n, slow = buckets.get(t // 100, (0, 0))
    buckets[t // 100] = (n + 1, slow + (v > 4_000_000))
lat.sort()
n = len(lat)
slow = [k / 10 for k, (m, s) in sorted(buckets.items()) if s > m / 10]
amp = "  disk/data %.2f" % (sectors * 512 / (n * 4096)) if sectors >= 0 else ""
print("%-9s %6.0f IOPS  p50 %.2f  p99 %.2f  p99.9 %.2f ms%s  slow %d of %d%s"
      % (label, n / runtime, lat[n // 2] / 1e6, lat[int(n * .99)] / 1e6,
         lat[int(n * .999)] / 1e6, amp, len(slow), len(buckets),
         (": at " + " ".join("%.1f" % s for s in slow) + " s") if slow else ""))
PY
}

for i in $(seq "$runs"); do
	[ -z "$baseline" ] || one_run "$baseline" baseline
	one_run "$repdisk" this
done
