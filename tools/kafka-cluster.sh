#!/bin/bash
# A real Apache Kafka cluster on this machine, for trying repdisk on Kafka
# and for its tests: 3 KRaft nodes, each broker and controller at once, on
# 127.0.0.1 (or KAFKA_CLUSTER_HOST, an address of this host: a test's
# network namespaces reach the brokers over veth links to it).
#
#   KAFKA_CLUSTER_DIR=DIR tools/kafka-cluster.sh COMMAND [ARG]
#
#   start          fetch the broker (once), format and start 3 nodes, and
#                  return when the cluster is ready
#   stop           stop every node (SIGTERM, then SIGKILL after 30 s)
#   status         each node's state, then the cluster's metadata
#   bootstrap      the bootstrap list, HOST:PORT,HOST:PORT,HOST:PORT
#   bootstrap-sasl the same for the SASL_SSL listeners (KAFKA_CLUSTER_SASL)
#   leader TOPIC   the node that leads TOPIC's partition 0
#   kill N         SIGKILL node N (1-3)
#   pause N        SIGSTOP node N;  resume N: SIGCONT
#   restart N      stop node N if it runs, start it again, and return when
#                  the cluster lists its broker
#   wait-ready [S] wait up to S seconds (default 120) until the cluster is
#                  ready
#   admin TOOL ARGS...
#                  one of Kafka's admin commands (kafka-topics, kafka-configs,
#                  kafka-acls, kafka-delete-records) against the cluster, e.g.
#                  `admin kafka-topics --list`
#   producer-perf TOPIC RECORDS BYTES [PROP=VALUE...]
#                  Kafka's own producer benchmark (ProducerPerformance):
#                  RECORDS records of BYTES each to TOPIC as fast as the
#                  cluster takes them, with the producer properties given;
#                  prints its progress and, last, its summary line
#
# Ready means: the metadata lists all 3 brokers and every partition has a
# leader and its full set of replicas in sync.  An open port is not enough.
#
# The cluster, as the tests need it: replication factor 3 and
# min.insync.replicas=2 by default, unclean leader election off, no automatic
# topic creation, no time or size retention, a small heap per node.
# KAFKA_CLUSTER_PROPS, if set, holds more server properties (one per line)
# for every node, e.g. replica.lag.time.max.ms=10000.  KAFKA_CLUSTER_SASL=1
# adds a SASL_SSL listener with SCRAM-SHA-512 beside the plaintext one (see
# "Security" below).
#
# Files under KAFKA_CLUSTER_DIR (default /var/tmp/repdisk-kafka):
#   ports, host, version the 9 ports, the address and the Kafka version
#                        chosen at the first start
#   nodeN/server.properties, nodeN/data/, nodeN/server.log (the broker's
#   log), nodeN/stdout.log, nodeN/pid
#
# The broker is Kafka 4.1 from Maven Central: tools/kafka/pom.xml names it,
# and `mvn dependency:copy-dependencies` copies its jars into
# KAFKA_CLUSTER_CACHE (default /var/cache/repdisk-test/kafka-VERSION), once;
# later starts need no network.  It needs Java 17 (openjdk-17-jre-headless)
# and, for the first start, Maven.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pom=$top/tools/kafka/pom.xml
dir=${KAFKA_CLUSTER_DIR:-/var/tmp/repdisk-kafka}
# The broker's version: the pom's, or KAFKA_VERSION (3.9.x, for what 4.x
# refuses to librdkafka 2.0.2: its SCRAM, see kafka-security.sh), fixed at
# the first start.
version=${KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")}
[ -s "$dir/version" ] && version=$(cat "$dir/version")
cache=${KAFKA_CLUSTER_CACHE:-/var/cache/repdisk-test/kafka-$version}
java=${JAVA:-java}
# the address, fixed at the first start
host=${KAFKA_CLUSTER_HOST:-127.0.0.1}
[ -s "$dir/host" ] && host=$(cat "$dir/host")
nodes=(1 2 3)

die() { echo "kafka-cluster: $*" >&2; exit 1; }

# --- the broker's jars -----------------------------------------------------

fetch_jars() {
	[ -f "$cache/.complete" ] && return 0
	command -v mvn >/dev/null || die "Maven is needed to fetch Kafka $version the first time (apt-get install maven)"
	echo "kafka-cluster: fetching Kafka $version into $cache" >&2
	mkdir -p "$cache"
	mvn -q -B -f "$pom" -Dkafka.version="$version" dependency:copy-dependencies \
		-DoutputDirectory="$cache" >"$cache/mvn.log" 2>&1 ||
		die "mvn could not fetch Kafka $version: $(tail -5 "$cache/mvn.log")"
	touch "$cache/.complete"
}

# --- ports -----------------------------------------------------------------

# Nine free ports on the host address (broker, controller and SASL_SSL
# listener of each node), chosen once per cluster directory so that a node
# restarts where its peers expect it.  Several clusters can run at once (a
# test's own beside the suite's shared one).  They are chosen below the
# kernel's range of ephemeral ports: a port in it that is free now can be
# taken by any outgoing connection (the other cluster's nodes make many)
# before the node binds it, and the node then dies at its start.
choose_ports() {
	[ -s "$dir/ports" ] && return 0
	local used p lo=10000 hi ports=()
	hi=$(awk '{ print $1 - 1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null) || hi=32767
	[ "$hi" -gt $((lo + 1000)) ] || hi=$((lo + 20000))
	used=$(ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
	p=$((lo + RANDOM % (hi - lo - 200)))
	while [ ${#ports[@]} -lt 9 ]; do
		p=$((p + 1))
		grep -qx "$p" <<<"$used" || ports+=("$p")
	done
	echo "${ports[*]}" >"$dir/ports"
}

# broker_port N, controller_port N
broker_port() { awk -v n="$1" '{ print $n }' "$dir/ports"; }
controller_port() { awk -v n="$1" '{ print $(n + 3) }' "$dir/ports"; }
# (a ports file of an older cluster has 6: its SASL ports were 10000 above)
sasl_port() { awk -v n="$1" '{ print NF >= 9 ? $(n + 6) : $(n + 3) + 10000 }' "$dir/ports"; }

bootstrap() {
	local n out=()
	for n in "${nodes[@]}"; do out+=("$host:$(broker_port "$n")"); done
	(IFS=,; echo "${out[*]}")
}

# --- configuration -----------------------------------------------------------

write_config() { # N
	local n=$1 voters="" m
	for m in "${nodes[@]}"; do
		voters+="${voters:+,}$m@$host:$(controller_port "$m")"
	done
	local listeners="PLAINTEXT://$host:$(broker_port "$n"),CONTROLLER://$host:$(controller_port "$n")"
	local advertised="PLAINTEXT://$host:$(broker_port "$n")"
	local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
	if [ "${KAFKA_CLUSTER_SASL:-0}" = 1 ]; then
		listeners+=",SASL_SSL://$host:$(sasl_port "$n")"
		advertised+=",SASL_SSL://$host:$(sasl_port "$n")"
		protocols+=",SASL_SSL:SASL_SSL"
	fi
	mkdir -p "$dir/node$n/data"
	cat >"$dir/node$n/server.properties" <<-EOF
	process.roles=broker,controller
	node.id=$n
	controller.quorum.voters=$voters
	controller.listener.names=CONTROLLER
	inter.broker.listener.name=PLAINTEXT
	listeners=$listeners
	advertised.listeners=$advertised
	listener.security.protocol.map=$protocols
	log.dirs=$dir/node$n/data
	num.partitions=1
	default.replication.factor=3
	min.insync.replicas=2
	offsets.topic.replication.factor=3
	transaction.state.log.replication.factor=3
	transaction.state.log.min.isr=2
	unclean.leader.election.enable=false
	auto.create.topics.enable=false
	log.retention.ms=-1
	log.retention.bytes=-1
	group.initial.rebalance.delay.ms=0
	num.network.threads=2
	num.io.threads=4
	EOF
	if [ "${KAFKA_CLUSTER_SASL:-0}" = 1 ]; then
		sasl_config "$n" >>"$dir/node$n/server.properties"
	fi
	if [ -n "${KAFKA_CLUSTER_PROPS:-}" ]; then
		printf '%s\n' "$KAFKA_CLUSTER_PROPS" >>"$dir/node$n/server.properties"
	fi
}

# Security.  With KAFKA_CLUSTER_SASL=1 each node also listens for SASL_SSL
# with SCRAM-SHA-512, and authorizes with ACLs (StandardAuthorizer).  The
# plaintext listener stays for the cluster's own traffic and is the
# superuser's (User:ANONYMOUS).  The caller provides, in KAFKA_CLUSTER_DIR:
#   tls/broker.p12   the brokers' key and certificate (PKCS12, password in
#                    tls/password)
#   scram-users      lines "NAME PASSWORD", the SCRAM users created at
#                    format time
sasl_config() { # N
	local pw
	pw=$(cat "$dir/tls/password")
	cat <<-EOF
	sasl.enabled.mechanisms=SCRAM-SHA-512
	listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
	ssl.keystore.type=PKCS12
	ssl.keystore.location=$dir/tls/broker.p12
	ssl.keystore.password=$pw
	ssl.key.password=$pw
	authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
	super.users=User:ANONYMOUS
	allow.everyone.if.no.acl.found=false
	EOF
}

log4j_config() {
	cat >"$dir/log4j2.properties" <<-'EOF'
	status = warn
	appender.file.type = File
	appender.file.name = FILE
	appender.file.fileName = ${sys:kafka.logs.dir}/server.log
	appender.file.layout.type = PatternLayout
	appender.file.layout.pattern = [%d] %p %m (%c)%n
	rootLogger.level = INFO
	rootLogger.appenderRef.file.ref = FILE
	logger.request.name = kafka.request.logger
	logger.request.level = WARN
	EOF
}

# --- nodes ---------------------------------------------------------------------

node_pid() { # N: the node's pid if it runs
	local pid
	pid=$(cat "$dir/node$1/pid" 2>/dev/null) || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

# The JVM, as Kafka's kafka-run-class.sh starts it, with a small heap:
# jvm LOGDIR sets the array JVM.
jvm() {
	JVM=("$java" -Xms128m -Xmx384m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
		-Djava.awt.headless=true -Dkafka.logs.dir="$1"
		-Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$cache/*")
}
run_java() { # LOGDIR MAIN ARGS...
	jvm "$1"
	shift
	"${JVM[@]}" "$@"
}

format_node() { # N CLUSTER-ID
	local n=$1 extra=()
	[ -f "$dir/node$n/data/meta.properties" ] && return 0
	if [ "${KAFKA_CLUSTER_SASL:-0}" = 1 ] && [ -f "$dir/scram-users" ]; then
		local name pw
		while read -r name pw; do
			extra+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$pw]")
		done <"$dir/scram-users"
	fi
	run_java "$dir/node$n" kafka.tools.StorageTool format -t "$2" \
		-c "$dir/node$n/server.properties" "${extra[@]}" \
		>"$dir/node$n/format.log" 2>&1 ||
		die "node $n: format failed: $(tail -5 "$dir/node$n/format.log")"
}

start_node() { # N
	local n=$1
	node_pid "$n" >/dev/null && return 0
	# setsid: the node is not in the caller's process group, so a test's
	# ^C or a ctest timeout does not stop the cluster behind `stop`'s back
	jvm "$dir/node$n"
	rm -f "$dir/node$n/pid"
	setsid bash -c 'echo $$ > "$1/pid"; shift; exec "$@"' _ "$dir/node$n" \
		"${JVM[@]}" kafka.Kafka "$dir/node$n/server.properties" \
		</dev/null >>"$dir/node$n/stdout.log" 2>&1 &
	for _ in $(seq 50); do
		[ -s "$dir/node$n/pid" ] && break
		sleep 0.1
	done
}

stop_node() { # N
	local pid
	pid=$(node_pid "$1") || return 0
	kill -TERM "$pid" 2>/dev/null
	kill -CONT "$pid" 2>/dev/null	# a paused node cannot stop
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# --- metadata ----------------------------------------------------------------

metadata() { # [kcat -L ARGS...]
	kcat -L -b "$(bootstrap)" -m 5 "$@" 2>/dev/null
}

# ready: all 3 brokers listed, every partition led with its full ISR.
ready() {
	local md
	md=$(metadata) || return 1
	grep -q '^ 3 brokers:' <<<"$md" || return 1
	awk '/^ *partition [0-9]+,/ {
		leader = $4; sub(",", "", leader)
		if (leader == -1) bad = 1
		sub(",$", "", $6)	# "replicas: 1,2,3, isrs: 1,3,2"
		nr = split($6, r, ","); ni = split($8, s, ",")
		if (nr != ni) bad = 1
	} END { exit bad }' <<<"$md"
}

# nodes_down: for each node whose process is gone, a line saying so and the
# end of its logs (why it stopped: a port taken, a bad config, ...).
nodes_down() {
	local n
	for n in "${nodes[@]}"; do
		node_pid "$n" >/dev/null && continue
		printf '\nnode %s is not running; its last errors:\n' "$n"
		{ grep -E '^\[[^]]*\] (ERROR|FATAL) ' "$dir/node$n/server.log" | tail -n 2
		  grep -oE '[A-Za-z.]+Exception: .*' "$dir/node$n/server.log" |
			awk '!seen[$0]++' | head -n 3
		  grep -v '^\s*at ' "$dir/node$n/stdout.log" | tail -n 3; } 2>/dev/null
	done
}

wait_ready() { # SECONDS
	local end=$((SECONDS + $1))
	while [ $SECONDS -lt $end ]; do
		ready && return 0
		sleep 0.5
	done
	die "not ready after $1 s: $(metadata | head -20)$(nodes_down)"
}

# The broker of node N is listed in the metadata.
listed() { # N
	metadata | grep -q "^  broker $1 at "
}

leader() { # TOPIC
	metadata -t "$1" | awk '/^ *partition 0,/ { sub(",", "", $4); print $4; found = 1 }
		END { exit !found }' || die "no metadata for topic $1"
}

# --- commands ----------------------------------------------------------------

cmd_start() {
	command -v kcat >/dev/null || die "kcat is needed (apt-get install kcat)"
	"$java" -version >/dev/null 2>&1 || die "Java 17 is needed (apt-get install openjdk-17-jre-headless)"
	fetch_jars
	mkdir -p "$dir"
	[ -s "$dir/host" ] || echo "$host" >"$dir/host"
	[ -s "$dir/version" ] || echo "$version" >"$dir/version"
	choose_ports
	log4j_config
	local id=""
	[ -s "$dir/cluster.id" ] || run_java "$dir" kafka.tools.StorageTool random-uuid \
		2>/dev/null | tail -1 >"$dir/cluster.id"
	id=$(cat "$dir/cluster.id")
	[ -n "$id" ] || die "could not make a cluster id"
	local n
	for n in "${nodes[@]}"; do
		write_config "$n"
		format_node "$n" "$id" &
	done
	wait
	for n in "${nodes[@]}"; do
		[ -f "$dir/node$n/data/meta.properties" ] || die "node $n was not formatted: $(tail -5 "$dir/node$n/format.log")"
		start_node "$n"
	done
	wait_ready 180
}

cmd_stop() {
	local n
	for n in "${nodes[@]}"; do stop_node "$n" & done
	wait
}

cmd_status() {
	local n pid
	for n in "${nodes[@]}"; do
		if pid=$(node_pid "$n"); then
			state=$(awk '{ print $3 }' "/proc/$pid/stat")
			[ "$state" = T ] && state=paused || state=running
			echo "node $n: $state (pid $pid), $host:$(broker_port "$n")"
		else
			echo "node $n: stopped"
		fi
	done
	metadata || echo "no metadata: no broker answers"
}

check_node() { # N
	case ${1:-} in 1 | 2 | 3) ;; *) die "want a node number 1-3, not \"${1:-}\"" ;; esac
}

[ $# -ge 1 ] || die "usage: kafka-cluster.sh start|stop|status|bootstrap|leader TOPIC|kill N|pause N|resume N|restart N|wait-ready [S]|admin TOOL ARGS..."
cmd=$1
shift
case $cmd in
start) cmd_start ;;
stop) [ -d "$dir" ] && cmd_stop ;;
status) cmd_status ;;
bootstrap) [ -s "$dir/ports" ] || die "no cluster in $dir"; bootstrap ;;
bootstrap-sasl)
	[ -s "$dir/ports" ] || die "no cluster in $dir"
	out=()
	for n in "${nodes[@]}"; do out+=("$host:$(sasl_port "$n")"); done
	(IFS=,; echo "${out[*]}")
	;;
leader) [ $# -eq 1 ] || die "usage: leader TOPIC"; leader "$1" ;;
kill) check_node "${1:-}"; pid=$(node_pid "$1") && kill -KILL "$pid" ;;
pause) check_node "${1:-}"; pid=$(node_pid "$1") && kill -STOP "$pid" ;;
resume) check_node "${1:-}"; pid=$(node_pid "$1") && kill -CONT "$pid" ;;
restart)
	check_node "${1:-}"
	stop_node "$1"
	start_node "$1"
	end=$((SECONDS + 120))
	until listed "$1"; do
		[ $SECONDS -lt $end ] || die "node $1 is not listed 120 s after its restart"
		node_pid "$1" >/dev/null || die "node $1 exited: $(tail -5 "$dir/node$1/stdout.log")"
		sleep 0.5
	done
	;;
wait-ready) wait_ready "${1:-120}" ;;
admin)
	[ $# -ge 1 ] || die "usage: admin kafka-topics|kafka-configs|kafka-acls|kafka-delete-records ARGS..."
	tool=$1
	shift
	case $tool in
	kafka-topics) main=org.apache.kafka.tools.TopicCommand ;;
	kafka-configs) main=kafka.admin.ConfigCommand ;;
	kafka-acls)
		case $version in
		3.*) main=kafka.admin.AclCommand ;;
		*) main=org.apache.kafka.tools.AclCommand ;;
		esac
		;;
	kafka-delete-records) main=org.apache.kafka.tools.DeleteRecordsCommand ;;
	*) die "unknown admin tool $tool (kafka-topics, kafka-configs, kafka-acls, kafka-delete-records)" ;;
	esac
	run_java "$dir" "$main" --bootstrap-server "$(bootstrap)" "$@"
	;;
producer-perf)
	[ $# -ge 3 ] || die "usage: producer-perf TOPIC RECORDS BYTES [PROP=VALUE...]"
	topic=$1 records=$2 bytes=$3
	shift 3
	run_java "$dir" org.apache.kafka.tools.ProducerPerformance --topic "$topic" \
		--num-records "$records" --record-size "$bytes" --throughput -1 \
		--producer-props bootstrap.servers="$(bootstrap)" "$@"
	;;
*) die "unknown command $cmd" ;;
esac
