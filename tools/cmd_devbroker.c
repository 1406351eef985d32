/* repdisk devbroker: a development Kafka cluster in its own process.
 *
 * Notes on the design
 * -------------------
 * librdkafka's mock cluster speaks the real Kafka protocol on 127.0.0.1,
 * keeps everything in memory, and can inject faults.  It is a test fixture,
 * not a broker: it elects no leaders and enforces no min.insync.replicas.
 * This command runs one until SIGTERM and emulates what a real cluster
 * does, so that tests and demos see Kafka's behaviour:
 *
 *   - a broker taken down loses its partition leaderships to a live
 *     broker (checked again every second, for topics created meanwhile);
 *   - while fewer brokers than --min-insync are up, Produce requests are
 *     answered NOT_ENOUGH_REPLICAS (a retriable error: producers retry
 *     until their message timeout), and accepted again once enough are up.
 *
 * Faults are driven while it runs through a control socket, one command a
 * line: "down ID", "up ID", "rtt ID MS", "error APIKEY ERROR COUNT",
 * "clear APIKEY", "status".  `repdisk devbroker ctl SOCKET CMD...` sends
 * one.
 */
#include "repdisk.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_BROKERS 16
#define API_PRODUCE 0		/* Kafka's ApiKey for Produce */
#define QUORUM_ERRORS 100000	/* answers to refuse while below quorum */

static const char usage[] =
	"usage: repdisk devbroker [--brokers N] [--min-insync M]\n"
	"                         [--bootstrap-file FILE] [--control SOCKET]\n"
	"       repdisk devbroker ctl SOCKET COMMAND...\n"
	"\n"
	"FOR DEVELOPMENT AND TESTING ONLY: runs librdkafka's mock Kafka cluster\n"
	"(the real Kafka protocol on 127.0.0.1) until SIGTERM or SIGINT.  All\n"
	"data is kept in memory and lost when it stops.  It is not a broker to\n"
	"keep disks on: use a real Kafka cluster for that (to try one on this\n"
	"machine: tools/kafka-cluster.sh).  It replicates nothing, ignores acks,\n"
	"cannot create or describe topics, and keeps only about the last 5 MiB\n"
	"of each partition.\n"
	"\n"
	"It prints the bootstrap servers on stdout once listening.  Like Kafka,\n"
	"it moves partition leaders off a broker that goes down, and refuses\n"
	"produce requests (NOT_ENOUGH_REPLICAS) while fewer than --min-insync\n"
	"brokers are up.\n"
	"\n"
	"  -b, --brokers N          brokers, ids 1..N (default 3)\n"
	"  -m, --min-insync M       brokers needed to accept writes (default 2)\n"
	"  -f, --bootstrap-file F   also write the bootstrap servers to F\n"
	"  -c, --control SOCKET     accept fault commands on this unix socket\n"
	"  -h, --help               show this help\n"
	"\n"
	"Control commands (ctl):\n"
	"  down ID | up ID           take broker ID down or bring it back\n"
	"  rtt ID MS                 add MS of round-trip time to broker ID\n"
	"  error APIKEY ERROR COUNT  fail the next COUNT requests of APIKEY\n"
	"                            (0 is Produce) with ERROR, e.g.\n"
	"                            NOT_ENOUGH_REPLICAS\n"
	"  clear APIKEY              forget injected errors of APIKEY\n"
	"  status                    brokers up, quorum, bootstrap servers\n";

struct devbroker {
	rd_kafka_t *rk;			/* owns the mock cluster */
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_t *client;		/* reads metadata: topics, leaders */
	int brokers, min_insync;
	bool up[MAX_BROKERS + 1];
	bool below_quorum;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int live_brokers(const struct devbroker *db)
{
	int n = 0;

	for (int i = 1; i <= db->brokers; i++)
		n += db->up[i];
	return n;
}

/* Moves every partition led by a down broker to a live one. */
static void move_leaders(struct devbroker *db)
{
	const struct rd_kafka_metadata *md;
	int live = 0;

	for (int i = 1; i <= db->brokers && !live; i++)
		if (db->up[i])
			live = i;
	if (!live || rd_kafka_metadata(db->client, 1, NULL, &md, 2000) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	for (int t = 0; t < md->topic_cnt; t++) {
		const rd_kafka_metadata_topic_t *tp = &md->topics[t];

		for (int p = 0; p < tp->partition_cnt; p++) {
			int32_t leader = tp->partitions[p].leader;

			if (leader >= 1 && leader <= db->brokers &&
			    !db->up[leader])
				rd_kafka_mock_partition_set_leader(
					db->mc, tp->topic, tp->partitions[p].id,
					live);
		}
	}
	rd_kafka_metadata_destroy(md);
}

/* Refuses produce requests while below quorum, like min.insync.replicas. */
static void update_quorum(struct devbroker *db)
{
	bool below = live_brokers(db) < db->min_insync;

	if (below == db->below_quorum)
		return;
	db->below_quorum = below;
	rd_kafka_mock_clear_request_errors(db->mc, API_PRODUCE);
	if (below) {
		static rd_kafka_resp_err_t errs[QUORUM_ERRORS];

		for (size_t i = 0; i < QUORUM_ERRORS; i++)
			errs[i] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
		rd_kafka_mock_push_request_errors_array(db->mc, API_PRODUCE,
							QUORUM_ERRORS, errs);
	}
	fprintf(stderr, "repdisk devbroker: %d of %d brokers up: %s\n",
		live_brokers(db), db->brokers, below ?
		"below min.insync, produce refused (NOT_ENOUGH_REPLICAS)" :
		"produce accepted");
}

/* Kafka brokers disable Nagle's algorithm on their sockets; the mock does
 * not, and with many small produce requests in flight on one connection
 * its responses then wait for the client's delayed ACK (40 ms each: a
 * collapse of small concurrent writes that a real cluster does not have).
 * So set TCP_NODELAY on every TCP socket of this process: the listeners
 * (Linux copies it to the connections they accept) and, in case, the
 * connections already accepted.  Runs every 200 ms; cheap. */
static void sockets_nodelay(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int one = 1;

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;
		int fd = atoi(e->d_name), type = 0;
		socklen_t len = sizeof(type);

		if (fd <= 2 || fd == dirfd(d) || fstat(fd, &st) < 0 ||
		    !S_ISSOCK(st.st_mode))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
		    type == SOCK_STREAM)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));	/* fails on unix: fine */
	}
	closedir(d);
}

static int error_by_name(const char *name, rd_kafka_resp_err_t *out)
{
	const struct rd_kafka_err_desc *descs;
	size_t n;
	char *end;
	long v = strtol(name, &end, 10);

	if (*name && !*end) {
		*out = (rd_kafka_resp_err_t)v;
		return 0;
	}
	rd_kafka_get_err_descs(&descs, &n);
	for (size_t i = 0; i < n; i++)
		if (descs[i].name && strcmp(descs[i].name, name) == 0) {
			*out = descs[i].code;
			return 0;
		}
	return -1;
}

/* Runs one control command; writes the reply line into out. */
static void command(struct devbroker *db, char *line, char *out, size_t size)
{
	char *argv[8], *save = NULL;
	int argc = 0;
	long id = 0;

	for (char *w = strtok_r(line, " \t\r\n", &save); w && argc < 8;
	     w = strtok_r(NULL, " \t\r\n", &save))
		argv[argc++] = w;
	if (argc >= 2)
		id = strtol(argv[1], NULL, 10);

	if (argc == 1 && strcmp(argv[0], "status") == 0) {
		int n = snprintf(out, size, "ok brokers %d up", db->brokers);

		for (int i = 1; i <= db->brokers; i++)
			if (db->up[i])
				n += snprintf(out + n, size - (size_t)n, " %d", i);
		snprintf(out + n, size - (size_t)n, " min_insync %d quorum %s "
			 "bootstrap %s", db->min_insync,
			 db->below_quorum ? "no" : "yes",
			 rd_kafka_mock_cluster_bootstraps(db->mc));
	} else if (argc == 2 && (strcmp(argv[0], "down") == 0 ||
				 strcmp(argv[0], "up") == 0)) {
		bool up = argv[0][0] == 'u';

		if (id < 1 || id > db->brokers) {
			snprintf(out, size, "error: no broker %s (1..%d)",
				 argv[1], db->brokers);
			return;
		}
		if (up)
			rd_kafka_mock_broker_set_up(db->mc, (int32_t)id);
		else
			rd_kafka_mock_broker_set_down(db->mc, (int32_t)id);
		db->up[id] = up;
		if (!up)
			move_leaders(db);
		update_quorum(db);
		snprintf(out, size, "ok broker %ld %s, %d of %d up", id,
			 up ? "up" : "down", live_brokers(db), db->brokers);
	} else if (argc == 3 && strcmp(argv[0], "rtt") == 0 && id >= 1 &&
		   id <= db->brokers) {
		rd_kafka_mock_broker_set_rtt(db->mc, (int32_t)id,
					     atoi(argv[2]));
		snprintf(out, size, "ok broker %ld rtt %s ms", id, argv[2]);
	} else if (argc == 4 && strcmp(argv[0], "error") == 0) {
		rd_kafka_resp_err_t e;
		long cnt = strtol(argv[3], NULL, 10);

		if (error_by_name(argv[2], &e) < 0 || cnt < 1 || cnt > 1000000) {
			snprintf(out, size, "error: bad error name or count");
			return;
		}
		rd_kafka_resp_err_t *errs = malloc((size_t)cnt * sizeof(*errs));

		if (!errs) {
			snprintf(out, size, "error: out of memory");
			return;
		}
		for (long i = 0; i < cnt; i++)
			errs[i] = e;
		rd_kafka_mock_push_request_errors_array(db->mc, (int16_t)id,
							(size_t)cnt, errs);
		free(errs);
		snprintf(out, size, "ok next %ld requests of api %ld fail with "
			 "%s", cnt, id, rd_kafka_err2name(e));
	} else if (argc == 2 && strcmp(argv[0], "clear") == 0) {
		rd_kafka_mock_clear_request_errors(db->mc, (int16_t)id);
		if (id == API_PRODUCE && db->below_quorum)
			db->below_quorum = false, update_quorum(db);
		snprintf(out, size, "ok api %ld errors cleared", id);
	} else {
		snprintf(out, size, "error: unknown command (see repdisk "
			 "devbroker --help)");
	}
}

static int control_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 8) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void control_serve(struct devbroker *db, int lfd)
{
	char line[512], reply[1024];
	ssize_t n;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	n = read(fd, line, sizeof(line) - 1);
	if (n > 0) {
		line[n] = '\0';
		command(db, line, reply, sizeof(reply));
		strcat(reply, "\n");
		if (write(fd, reply, strlen(reply)) < 0) {
			/* the client went away: nothing to tell it */
		}
	}
	close(fd);
}

static int write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s\n", text) < 0 || fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

static int devbroker_ctl(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[512] = "", reply[1024];
	ssize_t n;
	int fd;

	if (argc < 3)
		return tool_usage_error(usage, "devbroker ctl: expected SOCKET "
					"and a COMMAND");
	for (int i = 2; i < argc; i++) {
		strncat(line, argv[i], sizeof(line) - strlen(line) - 2);
		strcat(line, i + 1 < argc ? " " : "\n");
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		tool_error("devbroker ctl", "%s: %s", argv[1], strerror(errno));
		return 1;
	}
	if (write(fd, line, strlen(line)) < 0 ||
	    (n = read(fd, reply, sizeof(reply) - 1)) <= 0) {
		tool_error("devbroker ctl", "%s: no reply", argv[1]);
		close(fd);
		return 1;
	}
	close(fd);
	reply[n] = '\0';
	fputs(reply, stdout);
	return strncmp(reply, "ok", 2) == 0 ? 0 : 1;
}

int cmd_devbroker(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "brokers", required_argument, NULL, 'b' },
		{ "min-insync", required_argument, NULL, 'm' },
		{ "bootstrap-file", required_argument, NULL, 'f' },
		{ "control", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct devbroker db = { .brokers = 3, .min_insync = 2 };
	const char *bootstrap_file = NULL, *control = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	char errstr[512];
	rd_kafka_conf_t *conf;
	unsigned long long v;
	int c, lfd = -1;
	time_t last_move = 0;

	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return devbroker_ctl(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "b:m:f:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (cli_parse_u64(optarg, &v) < 0 || v < 1 ||
			    v > MAX_BROKERS)
				return tool_usage_error(usage, "devbroker: bad "
							"--brokers \"%s\" "
							"(1..%d)", optarg,
							MAX_BROKERS);
			db.brokers = (int)v;
			break;
		case 'm':
			if (cli_parse_u64(optarg, &v) < 0 || v < 1 ||
			    v > MAX_BROKERS)
				return tool_usage_error(usage, "devbroker: bad "
							"--min-insync \"%s\"",
							optarg);
			db.min_insync = (int)v;
			break;
		case 'f':
			bootstrap_file = optarg;
			break;
		case 'c':
			control = optarg;
			break;
		default:
			return tool_option("devbroker", usage, NULL, c, optarg);
		}
	}
	if (optind != argc)
		return tool_usage_error(usage, "devbroker: unexpected argument");
	if (db.min_insync > db.brokers)
		return tool_usage_error(usage, "devbroker: --min-insync %d is "
					"more than --brokers %d", db.min_insync,
					db.brokers);

	conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
	db.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!db.rk || !(db.mc = rd_kafka_mock_cluster_new(db.rk, db.brokers))) {
		tool_error("devbroker", "cannot start the mock cluster: %s",
			   db.rk ? "rd_kafka_mock_cluster_new failed" : errstr);
		return 1;
	}
	for (int i = 1; i <= db.brokers; i++)
		db.up[i] = true;
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers",
			  rd_kafka_mock_cluster_bootstraps(db.mc), NULL, 0);
	rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
	db.client = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
				 sizeof(errstr));
	if (control && (lfd = control_listen(control)) < 0) {
		tool_error("devbroker", "control socket %s: %s", control,
			   strerror(errno));
		goto out;
	}
	if (bootstrap_file &&
	    write_file(bootstrap_file, rd_kafka_mock_cluster_bootstraps(db.mc)) < 0) {
		tool_error("devbroker", "%s: %s", bootstrap_file,
			   strerror(errno));
		goto out;
	}
	sockets_nodelay();
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(db.mc));
	fflush(stdout);
	fprintf(stderr, "repdisk devbroker: %d brokers on %s (development and "
		"testing only: data in memory)\n", db.brokers,
		rd_kafka_mock_cluster_bootstraps(db.mc));

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!stop) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		if (poll(&p, lfd >= 0 ? 1 : 0, 200) > 0)
			control_serve(&db, lfd);
		sockets_nodelay();
		/* topics created while a broker is down get leaders there */
		if (live_brokers(&db) < db.brokers && time(NULL) != last_move) {
			move_leaders(&db);
			last_move = time(NULL);
		}
	}
out:
	if (lfd >= 0) {
		close(lfd);
		unlink(control);
	}
	if (bootstrap_file)
		unlink(bootstrap_file);
	if (db.client)
		rd_kafka_destroy(db.client);
	rd_kafka_mock_cluster_destroy(db.mc);
	rd_kafka_destroy(db.rk);
	return stop ? 0 : 1;
}
