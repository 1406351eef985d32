#!/bin/bash
# The benchmark harness: the same fio workloads on (a) the raw backing
# filesystem, (b) libfuse's passthrough_ll example, (c) repdisk on the
# embedded file log, in one run, and a table of each figure with its ratio
# to passthrough_ll.  Figures, not a test: nothing here passes or fails.
#
#   bash tools/bench/run.sh [--dir DIR] [--size-mb N] [--runtime S] [--only a,b,c]
#
# DIR (default /var/tmp/repdisk-bench) must be on the file system to
# measure.  Needs root (FUSE mounts), fio, python3 and a C compiler.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=/var/tmp/repdisk-bench size_mb=1024 runtime=10 only=raw,passthrough,repdisk
while [ $# -gt 0 ]; do
	case $1 in
	--dir) dir=$2; shift 2 ;;
	--size-mb) size_mb=$2; shift 2 ;;
	--runtime) runtime=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	*) echo "usage: $0 [--dir DIR] [--size-mb N] [--runtime S] [--only raw,passthrough,repdisk]" >&2; exit 2 ;;
	esac
done

command -v fio >/dev/null && command -v python3 >/dev/null || {
	apt-get install -y fio python3 >/dev/null
}
bash "$top/tools/install-deps.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j "$(nproc)" >/dev/null
repdisk=$top/build/tools/repdisk

mkdir -p "$dir"
work=$(mktemp -d "$dir/run.XXXXXX")
out=$work/results
mkdir -p "$out"
pids=()
old_pipe=$(sysctl -n fs.pipe-max-size)
cleanup() {
	set +e
	for m in "$work"/mnt-*; do fusermount3 -uz "$m" 2>/dev/null; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	sysctl -qw fs.pipe-max-size="$old_pipe"
	rm -rf "$work"
}
trap cleanup EXIT
# libfuse 3.14 needs pipes of 1 MiB plus a page to splice 1 MiB requests;
# with the default 1 MiB limit passthrough_ll fails O_DIRECT 1 MiB writes
sysctl -qw fs.pipe-max-size=$((4 << 20))

# passthrough_ll, built from the example libfuse ships
ptll=$work/passthrough_ll
gcc -O2 -Wall -o "$ptll" /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c \
	$(pkg-config fuse3 --cflags --libs) 2>/dev/null

run_fio() { # TARGET-NAME FILE
	local name=$1 file=$2
	local common="--filename=$file --size=${size_mb}M --direct=1 --group_reporting --output-format=json"
	fio --name=layout --rw=write --bs=1M --ioengine=libaio --iodepth=8 $common --end_fsync=1 > /dev/null
	fio --name=seqwrite --rw=write --bs=1M --ioengine=libaio --iodepth=8 \
		--time_based --runtime="$runtime" $common > "$out/$name.seqwrite.json"
	fio --name=seqread --rw=read --bs=1M --ioengine=libaio --iodepth=8 \
		--time_based --runtime="$runtime" $common > "$out/$name.seqread.json"
	fio --name=randwrite --rw=randwrite --bs=4k --ioengine=libaio --iodepth=32 \
		--time_based --runtime="$runtime" $common > "$out/$name.randwrite.json"
	fio --name=randread --rw=randread --bs=4k --ioengine=libaio --iodepth=32 \
		--time_based --runtime="$runtime" $common > "$out/$name.randread.json"
	fio --name=syncwrite --rw=randwrite --bs=4k --ioengine=psync --iodepth=1 \
		--time_based --runtime="$runtime" $common > "$out/$name.syncwrite.json"
	fio --name=psync8 --rw=randwrite --bs=64k --ioengine=psync --numjobs=8 \
		--time_based --runtime="$runtime" $common > "$out/$name.psync8.json"
}

targets=()
if [[ $only == *raw* ]]; then
	mkdir -p "$work/raw"
	run_fio raw "$work/raw/disk.img"
	targets+=(raw)
fi
if [[ $only == *passthrough* ]]; then
	mkdir -p "$work/pt-src" "$work/mnt-pt"
	"$ptll" -o source="$work/pt-src" -o cache=never "$work/mnt-pt" &
	pids+=($!)
	for _ in $(seq 100); do grep -qs " $work/mnt-pt " /proc/mounts && break; sleep 0.05; done
	run_fio passthrough_ll "$work/mnt-pt/disk.img"
	fusermount3 -u "$work/mnt-pt"
	targets+=(passthrough_ll)
fi
if [[ $only == *repdisk* ]]; then
	mkdir -p "$work/rd-data" "$work/mnt-rd"
	"$repdisk" mount "$work/rd-data" "$work/mnt-rd"
	rdpid=$(pgrep -f "^repdisk mount $work/rd-data $work/mnt-rd\$")
	run_fio repdisk "$work/mnt-rd/disk.img"
	grep VmHWM "/proc/$rdpid/status" | awk '{print $2}' > "$out/repdisk.rss_kb"
	fusermount3 -u "$work/mnt-rd"
	targets+=(repdisk)
fi

python3 - "$out" "${targets[@]}" <<'PY'
import json, os, sys
out, targets = sys.argv[1], sys.argv[2:]
def job(t, w):
    with open(os.path.join(out, f"{t}.{w}.json")) as f:
        return json.load(f)["jobs"][0]
rows = [
    ("seq write 1M qd8 (MB/s)", "seqwrite", lambda j: j["write"]["bw_bytes"] / 1e6),
    ("seq read 1M qd8 (MB/s)", "seqread", lambda j: j["read"]["bw_bytes"] / 1e6),
    ("rand write 4k qd32 (IOPS)", "randwrite", lambda j: j["write"]["iops"]),
    ("rand read 4k qd32 (IOPS)", "randread", lambda j: j["read"]["iops"]),
    ("sync write 4k qd1 p50 (us)", "syncwrite", lambda j: j["write"]["clat_ns"]["percentile"]["50.000000"] / 1e3),
    ("sync write 4k qd1 p99 (us)", "syncwrite", lambda j: j["write"]["clat_ns"]["percentile"]["99.000000"] / 1e3),
    ("psync 64k x8 writers (MB/s)", "psync8", lambda j: j["write"]["bw_bytes"] / 1e6),
]
base = "passthrough_ll" if "passthrough_ll" in targets else None
hdr = f"{'workload':30}" + "".join(f"{t:>16}" for t in targets)
if base:
    hdr += "".join(f"{t + '/pt':>14}" for t in targets if t != base)
print(hdr)
for label, w, f in rows:
    vals = {t: f(job(t, w)) for t in targets}
    line = f"{label:30}" + "".join(f"{vals[t]:16.0f}" for t in targets)
    if base:
        line += "".join(f"{vals[t] / vals[base]:14.2f}" for t in targets if t != base)
    print(line)
rss = os.path.join(out, "repdisk.rss_kb")
if os.path.exists(rss):
    print(f"{'repdisk peak RSS (MiB)':30}{int(open(rss).read()) / 1024:16.0f}")
PY
