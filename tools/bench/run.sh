#!/bin/bash
# The benchmark harness: the same fio workloads on (a) the raw backing
# filesystem, (b) libfuse's passthrough_ll example, (c) repdisk on the
# embedded file log, (d) repdisk on the development cluster (`repdisk
# devbroker`, librdkafka's mock: 3 brokers that replicate nothing), (e)
# repdisk on a real 3-node Apache Kafka cluster on this host
# (tools/kafka-cluster.sh: RF 3, min.insync 2, acks=all), (f) GlusterFS
# replica 3 on this host, FUSE-mounted, set up as oVirt and Proxmox do for
# VM images (the `virt` option group; only with --only ...,gluster: it
# installs glusterfs-server if missing), in one run, and a table of each
# figure with its ratio to passthrough_ll.  On (c)-(e) a
# follower tails the log into its own data directory; its lag is sampled
# every 0.2 s: the largest lag in records and in seconds (how long it had
# not held all the log had) per write workload, and the time it took to
# catch up once the workload ended.  Figures, not a test: nothing here
# passes or fails.
#
#   bash tools/bench/run.sh [--dir DIR] [--size-mb N] [--runtime S]
#                           [--only raw,passthrough,repdisk,devbroker,kafka,gluster]
#                           [--no-follower] [--baseline REPDISK-BINARY]
#                           [--with-key]
#
# --with-key: one more target, "repdisk-key", the file-log run with every
# record sealed (repdisk key generate; --key-file), beside "repdisk".
#
# For repdisk targets it also reports the mount daemon's CPU seconds per
# GiB written in the seq-write job (all its threads, utime + stime).
#
# --baseline: one more target, "baseline", right after "repdisk": the
# same file-log run with another build of repdisk (the previous release,
# or a commit before a change), so that a change is measured against what
# it replaces in one run.  With kafka in --only, also "kafka-baseline",
# that build on the same Kafka cluster right after "kafka".
#
# --no-follower: no follower beside the repdisk targets.  On a small
# machine a follower on the same host takes CPU from the mount (it
# verifies and applies every record): the primary's figures without one
# are what a primary with its followers on other hosts gets.
#
# DIR (default /var/tmp/repdisk-bench) must be on the file system to
# measure.  Needs root (FUSE mounts), fio, python3 and a C compiler.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=/var/tmp/repdisk-bench size_mb=1024 runtime=10 only=raw,passthrough,repdisk,devbroker,kafka
no_follower= baseline= with_key=
while [ $# -gt 0 ]; do
	case $1 in
	--dir) dir=$2; shift 2 ;;
	--size-mb) size_mb=$2; shift 2 ;;
	--runtime) runtime=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--no-follower) no_follower=1; shift ;;
	--baseline) baseline=$(realpath "$2"); shift 2 ;;
	--with-key) with_key=1; shift ;;
	*) echo "usage: $0 [--dir DIR] [--size-mb N] [--runtime S] [--only raw,passthrough,repdisk,devbroker,kafka,gluster] [--no-follower] [--baseline REPDISK-BINARY] [--with-key]" >&2; exit 2 ;;
	esac
done

. "$top/tools/bench/setup.sh"

gluster=
if [[ ,$only, == *,gluster,* ]]; then
	gluster=1
	if ! command -v glusterd >/dev/null; then
		if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
			export DEBIAN_FRONTEND=noninteractive
			apt-get install -y glusterfs-server >/dev/null ||
				{ apt-get update >/dev/null && apt-get install -y glusterfs-server >/dev/null; }
			# where systemd runs, the package starts glusterd.service
			[ "$(cat /proc/1/comm)" != systemd ] || systemctl stop glusterd
		else
			echo "$0: gluster: glusterd is missing: install glusterfs-server (as root)" >&2
			exit 1
		fi
	fi
	# the target runs a glusterd of its own; one already running holds the
	# management port, and its volumes would share the CPU
	if p=$(pgrep -d ' ' -x glusterd); then
		echo "$0: gluster: a glusterd already runs (pid $p): stop it first" >&2
		exit 1
	fi
fi

mkdir -p "$dir"
work=$(mktemp -d "$dir/run.XXXXXX")
out=$work/results
mkdir -p "$out"
pids=()
old_pipe=$(sysctl -n fs.pipe-max-size)
gl=$work/gluster
gl_cli() { # the CLI of this run's glusterd
	timeout 120 gluster --mode=script --glusterd-sock="$gl/run/glusterd.socket" \
		--log-file="$gl/log/cli.log" "$@"
}
gluster_cleanup() {
	local p
	umount -l "$work/mnt-gluster" 2>/dev/null
	if [ -s "$gl/volume" ]; then
		gl_cli volume stop "$(cat "$gl/volume")" force >/dev/null
		gl_cli volume delete "$(cat "$gl/volume")" >/dev/null
	fi
	# glusterd and what it started (bricks, self-heal daemon) and the
	# client: each has $gl in its command line, and no other process does
	p=$(pgrep -d ' ' -f -- "$gl/") && kill $p 2>/dev/null
	for _ in $(seq 100); do pgrep -f -- "$gl/" >/dev/null || break; sleep 0.1; done
	p=$(pgrep -d ' ' -f -- "$gl/") && kill -KILL $p 2>/dev/null
	# what glusterd made outside $gl, whatever its directories are set to
	# (/var/lib/glusterd/{geo-replication,ss_brick}, the bricks' sockets
	# in /run/gluster)
	find /var/lib/glusterd /run/gluster /var/log/glusterfs -maxdepth 1 2>/dev/null |
		sort | comm -13 "$gl/pre" - | while read -r p; do rm -rf "$p"; done
}
cleanup() {
	set +e
	for m in "$work"/mnt-*; do fusermount3 -uz "$m" 2>/dev/null; done
	[ -s "$gl/pre" ] && gluster_cleanup
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	[ -d "$work/kafka" ] && KAFKA_CLUSTER_DIR=$work/kafka "$top/tools/kafka-cluster.sh" stop
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

# lag_sampler NAME WORKLOAD: with a follower running (FOLLOW_DATA and
# FOLLOW_LOG set), samples its lag in records, "MS LAG" lines, until killed
lag_sampler() {
	local st
	while sleep 0.2; do
		# the time is taken once the answer is in: a sample of lag 0
		# then says the follower held the whole log at that time
		st=$("$repdisk" status "$FOLLOW_DATA" --log "$FOLLOW_LOG" "${key_args[@]}" 2>/dev/null)
		awk -v t="$(date +%s%3N)" '$1 == "disk.img" { print t, $6 }' <<<"$st"
	done > "$out/$1.$2.lag"
}

cpu_ticks() { # PID: its user + system CPU time, in clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

fio_job() { # TARGET-NAME WORKLOAD FIO-ARGS...
	local name=$1 w=$2 sampler=
	shift 2
	if [ -n "${FOLLOW_DATA:-}" ]; then
		lag_sampler "$name" "$w" &
		sampler=$!
	fi
	# the daemon's CPU time over the job (utime + stime, in clock ticks)
	[ -n "${DAEMON_PID:-}" ] && cpu_ticks "$DAEMON_PID" > "$out/$name.$w.cpu0"
	fio --name="$w" "$@" > "$out/$name.$w.json"
	[ -n "${DAEMON_PID:-}" ] && cpu_ticks "$DAEMON_PID" > "$out/$name.$w.cpu1"
	if [ -n "$sampler" ]; then
		# the follower catches up (2 minutes at most) before the next job
		date +%s%3N > "$out/$name.$w.end"
		for _ in $(seq 600); do
			[ "$(tail -1 "$out/$name.$w.lag" | awk '{ print $2 }')" = 0 ] && break
			sleep 0.2
		done
		kill "$sampler"
		wait "$sampler" 2>/dev/null || true
	fi
}

run_fio() { # TARGET-NAME FILE
	local name=$1 file=$2
	local common="--filename=$file --size=${size_mb}M --direct=1 --group_reporting --output-format=json"
	fio --name=layout --rw=write --bs=1M --ioengine=libaio --iodepth=8 $common --end_fsync=1 > /dev/null
	fio_job "$name" seqwrite --rw=write --bs=1M --ioengine=libaio --iodepth=8 \
		--time_based --runtime="$runtime" $common
	fio_job "$name" seqread --rw=read --bs=1M --ioengine=libaio --iodepth=8 \
		--time_based --runtime="$runtime" $common
	fio_job "$name" randwrite --rw=randwrite --bs=4k --ioengine=libaio --iodepth=32 \
		--time_based --runtime="$runtime" $common
	fio_job "$name" randread --rw=randread --bs=4k --ioengine=libaio --iodepth=32 \
		--time_based --runtime="$runtime" $common
	fio_job "$name" syncwrite --rw=randwrite --bs=4k --ioengine=psync --iodepth=1 \
		--time_based --runtime="$runtime" $common
	# as a guest that flushes after every write: what the issue's
	# "sync write + fdatasync" compares (O_DIRECT alone flushes nothing
	# on raw and passthrough_ll; on repdisk the write is durable already)
	fio_job "$name" fsyncwrite --rw=randwrite --bs=4k --ioengine=psync --iodepth=1 \
		--fdatasync=1 --time_based --runtime="$runtime" $common
	fio_job "$name" psync8 --rw=randwrite --bs=64k --ioengine=psync --numjobs=8 \
		--time_based --runtime="$runtime" $common
}

# run_repdisk NAME LOG-URI: repdisk mounted on LOG-URI with a follower
run_repdisk() {
	local name=$1 log=$2 rdpid
	mkdir -p "$work/$name-data" "$work/mnt-$name" "$work/$name-follower"
	"$repdisk" mount --log "$log" "${key_args[@]}" "$work/$name-data" "$work/mnt-$name"
	rdpid=$(pgrep -f "^repdisk mount .*$work/$name-data $work/mnt-$name\$")
	if [ -n "$no_follower" ]; then
		DAEMON_PID=$rdpid run_fio "$name" "$work/mnt-$name/disk.img"
		grep VmHWM "/proc/$rdpid/status" | awk '{print $2}' > "$out/$name.rss_kb"
		fusermount3 -u "$work/mnt-$name"
		return
	fi
	"$repdisk" follow --log "$log" "${key_args[@]}" "$work/$name-follower" \
		> "$out/$name.follower.log" 2>&1 &
	pids+=($!)
	DAEMON_PID=$rdpid FOLLOW_DATA=$work/$name-follower FOLLOW_LOG=$log \
		run_fio "$name" "$work/mnt-$name/disk.img"
	grep VmHWM "/proc/$rdpid/status" | awk '{print $2}' > "$out/$name.rss_kb"
	fusermount3 -u "$work/mnt-$name"
	if ! kill -0 "${pids[-1]}" 2>/dev/null; then
		echo "$name: the follower stopped:" >&2
		tail -3 "$out/$name.follower.log" >&2
	fi
}

# run_gluster: GlusterFS replica 3 as operators set it up for VM images
# (oVirt, Proxmox): the `virt` option group, a FUSE mount; its 3 bricks in
# $work.  Its glusterd keeps its state, sockets and logs in $gl, not in
# /var/lib/glusterd: nothing of the volume outlives the run, and the
# package's hooks (Samba, CTDB, NFS-Ganesha) do not run.  The bricks are
# on 127.0.0.2: the CLI refuses 127.0.0.1 and localhost, glusterd takes
# any 127/8 address for this host, and a name might resolve to an address
# off loopback; glusterd hands its bind address on to the bricks.
run_gluster() {
	local vol=repdisk-bench-${work##*.} host=127.0.0.2
	mkdir -p "$gl"/{state,run,log,b1,b2,b3} "$work/mnt-gluster"
	find /var/lib/glusterd /run/gluster /var/log/glusterfs -maxdepth 1 2>/dev/null | sort > "$gl/pre"
	# the option groups (virt among them) are read from the working directory
	cp -r /var/lib/glusterd/groups "$gl/state/"
	cat > "$gl/glusterd.vol" <<-EOF
	volume management
	    type mgmt/glusterd
	    option working-directory $gl/state
	    option run-directory $gl/run
	    option logging-directory $gl/log
	    option glusterd-sockfile $gl/run/glusterd.socket
	    option transport-type socket
	    option transport.socket.listen-port 24007
	    option transport.socket.bind-address $host
	    option ping-timeout 0
	    option event-threads 1
	end-volume
	EOF
	glusterd -f "$gl/glusterd.vol" -p "$gl/glusterd.pid" -l "$gl/log/glusterd.log"
	for _ in $(seq 100); do gl_cli volume list >/dev/null 2>&1 && break; sleep 0.1; done
	# force: all 3 replicas on one host, on the root file system maybe
	gl_cli volume create "$vol" replica 3 transport tcp \
		"$host:$gl/b1" "$host:$gl/b2" "$host:$gl/b3" force >/dev/null
	echo "$vol" > "$gl/volume"
	# virt turns network.remote-dio off and performance.strict-o-direct
	# on: fio's O_DIRECT reaches the bricks' files, as it does on raw;
	# nothing of it needs overriding
	gl_cli volume set "$vol" group virt >/dev/null
	gl_cli volume start "$vol" >/dev/null
	mount -t glusterfs -o log-file="$gl/log/mount.log" "$host:/$vol" "$work/mnt-gluster"
	run_fio glusterfs-r3 "$work/mnt-gluster/disk.img"
	umount "$work/mnt-gluster"
}

# kafka_ceiling: what the same cluster takes from Kafka's own producer
# (ProducerPerformance) with repdisk's settings: one partition, RF 3,
# min.insync.replicas 2, Kafka's default 1 MiB message limit, acks=all,
# idempotent, linger.ms 0, batches up to the limit, and records of
# repdisk's size at that limit (256 KiB).  It sends SIZE-MB MiB as fast
# as it is let, with as many bytes in flight as it likes (32 MiB): the
# most one disk's stream could get from this cluster, the figure to read
# repdisk's seq write on Kafka against.
kafka_ceiling() {
	local kc=("$top/tools/kafka-cluster.sh")
	# a failure is reported and the run goes on without the figure
	{
		KAFKA_CLUSTER_DIR=$work/kafka "${kc[@]}" admin kafka-topics --create \
			--topic bench-ceiling --partitions 1 --replication-factor 3 \
			--config min.insync.replicas=2 --config max.message.bytes=1048588 &&
		KAFKA_CLUSTER_DIR=$work/kafka "${kc[@]}" producer-perf bench-ceiling \
			$((size_mb * 4)) 262144 acks=all enable.idempotence=true linger.ms=0 \
			batch.size=1048588 max.request.size=1048588
	} > "$out/kafka-ceiling.txt" 2>&1 ||
		echo "Kafka's ProducerPerformance failed: $(tail -3 "$out/kafka-ceiling.txt")" >&2
}

targets=() key_args=()
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
	run_repdisk repdisk "file:$work/repdisk-log"
	targets+=(repdisk)
fi
if [ -n "$with_key" ]; then
	"$repdisk" key generate "$work/keys" > /dev/null
	key_args=(--key-file "$work/keys")
	run_repdisk repdisk-key "file:$work/repdisk-key-log"
	key_args=()
	targets+=(repdisk-key)
fi
if [ -n "$baseline" ] && [[ ,$only, == *,repdisk,* ]]; then
	this=$repdisk repdisk=$baseline
	run_repdisk baseline "file:$work/baseline-log"
	repdisk=$this
	targets+=(baseline)
fi
if [[ $only == *devbroker* ]]; then
	"$repdisk" devbroker --brokers 3 --min-insync 2 \
		--bootstrap-file "$work/bootstrap" > "$out/devbroker.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do [ -s "$work/bootstrap" ] && break; sleep 0.05; done
	run_repdisk devbroker "kafka:$(cat "$work/bootstrap")?ns=bench"
	kill "${pids[-1]}"
	targets+=(devbroker)
fi
if [[ ,$only, == *,kafka,* ]]; then
	KAFKA_CLUSTER_DIR=$work/kafka "$top/tools/kafka-cluster.sh" start
	kboot=$(KAFKA_CLUSTER_DIR=$work/kafka "$top/tools/kafka-cluster.sh" bootstrap)
	run_repdisk kafka "kafka:$kboot?ns=bench"
	targets+=(kafka)
	if [ -n "$baseline" ]; then
		this=$repdisk repdisk=$baseline
		run_repdisk kafka-baseline "kafka:$kboot?ns=bench-baseline"
		repdisk=$this
		targets+=(kafka-baseline)
	fi
	kafka_ceiling
	KAFKA_CLUSTER_DIR=$work/kafka "$top/tools/kafka-cluster.sh" stop
fi
if [ -n "$gluster" ]; then
	run_gluster
	targets+=(glusterfs-r3)
fi

python3 - "$out" "${targets[@]}" <<'PY'
import json, os, re, sys
out, targets = sys.argv[1], sys.argv[2:]
def job(t, w):
    with open(os.path.join(out, f"{t}.{w}.json")) as f:
        return json.load(f)["jobs"][0]
rows = [
    ("seq write 1M qd8 (MB/s)", "seqwrite", lambda j: j["write"]["bw_bytes"] / 1e6),
    ("seq write 1M qd8 p99 (ms)", "seqwrite", lambda j: j["write"]["clat_ns"]["percentile"]["99.000000"] / 1e6),
    ("seq read 1M qd8 (MB/s)", "seqread", lambda j: j["read"]["bw_bytes"] / 1e6),
    ("rand write 4k qd32 (IOPS)", "randwrite", lambda j: j["write"]["iops"]),
    ("rand write 4k qd32 p99 (ms)", "randwrite", lambda j: j["write"]["clat_ns"]["percentile"]["99.000000"] / 1e6),
    ("rand read 4k qd32 (IOPS)", "randread", lambda j: j["read"]["iops"]),
    ("sync write 4k qd1 p50 (us)", "syncwrite", lambda j: j["write"]["clat_ns"]["percentile"]["50.000000"] / 1e3),
    ("sync write 4k qd1 p99 (us)", "syncwrite", lambda j: j["write"]["clat_ns"]["percentile"]["99.000000"] / 1e3),
    ("sync write 4k qd1 (IOPS)", "syncwrite", lambda j: j["write"]["iops"]),
    ("4k qd1 + fdatasync (IOPS)", "fsyncwrite", lambda j: j["write"]["iops"]),
    ("psync 64k x8 writers (MB/s)", "psync8", lambda j: j["write"]["bw_bytes"] / 1e6),
]
base = "passthrough_ll" if "passthrough_ll" in targets else None
hdr = f"{'workload':30}" + "".join(f"{t:>16}" for t in targets)
if base:
    hdr += "".join(f"{t + '/pt':>{max(14, len(t) + 4)}}" for t in targets if t != base)
print(hdr)
for label, w, f in rows:
    vals = {t: f(job(t, w)) for t in targets}
    prec = 1 if "(ms)" in label else 0
    line = f"{label:30}" + "".join(f"{vals[t]:16.{prec}f}" for t in targets)
    if base:
        line += "".join(f"{vals[t] / vals[base]:{max(14, len(t) + 4)}.2f}" for t in targets if t != base)
    print(line)
# the daemon's CPU seconds per GiB that fio wrote in the seq-write job
hz = os.sysconf("SC_CLK_TCK")
for t in targets:
    c0, c1 = (os.path.join(out, f"{t}.seqwrite.cpu{i}") for i in (0, 1))
    if os.path.exists(c0) and os.path.exists(c1):
        cpu = (int(open(c1).read()) - int(open(c0).read())) / hz
        gib = job(t, "seqwrite")["write"]["io_bytes"] / 2**30
        print(f"{t + ' CPU s/GiB seq write':30}{cpu / gib:16.2f}")
# Kafka's own producer on the same cluster (kafka_ceiling), and repdisk's
# seq write on Kafka as a share of it
p = os.path.join(out, "kafka-ceiling.txt")
if os.path.exists(p):
    m = [re.search(r"records sent, .*\(([0-9.]+) MB/sec\)", l) for l in open(p)]
    m = [x for x in m if x]
    if m:
        mbs = float(m[-1].group(1)) * 2**20 / 1e6	# its MB is MiB
        line = f"{'Kafka producer, same cluster':30}{mbs:16.0f} MB/s"
        if "kafka" in targets:
            line += f"; repdisk seq write on it: {job('kafka', 'seqwrite')['write']['bw_bytes'] / 1e6 / mbs:.2f} of that"
        print(line)
for t in targets:
    rss = os.path.join(out, f"{t}.rss_kb")
    if os.path.exists(rss):
        print(f"{t + ' peak RSS (MiB)':30}{int(open(rss).read()) / 1024:16.0f}")
# follower lag: the largest in records, the longest time behind (since it
# last held all the log had), and the catch-up time after the job ended
for t in targets:
    for w in ("seqwrite", "randwrite", "syncwrite", "psync8"):
        p = os.path.join(out, f"{t}.{w}.lag")
        e = os.path.join(out, f"{t}.{w}.end")
        if not os.path.exists(p) or not os.path.exists(e):
            continue
        samples = []
        for line in open(p):
            f = line.split()
            if len(f) == 2 and f[1].isdigit():
                samples.append((int(f[0]), int(f[1])))
        if not samples:
            continue
        end = int(open(e).read())
        last_zero, behind = samples[0][0], 0
        for ms, lag in samples:
            if lag == 0:
                last_zero = ms
            behind = max(behind, ms - last_zero)
        # the job's end is stamped after the last sample that may still
        # show it behind: the first lag 0 at or after the end, or the last
        # sample if that was 0 (caught up within one sampling interval)
        caught = next((ms for ms, lag in samples if ms >= end and lag == 0), None)
        if caught is None and samples[-1][1] == 0:
            caught = max(end, samples[-1][0])
        catch = f"{(caught - end) / 1000:.1f} s" if caught else "not within 2 min"
        print(f"{t + ' follower ' + w:30}  max lag {max(l for _, l in samples)} records, "
              f"{behind / 1000:.1f} s behind at most, caught up {catch} after the job")
PY
