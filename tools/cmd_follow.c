/* repdisk follow: keep a data directory's images up to date from a log.
 *
 * Catches up first, then tails the log.  Checkpoints every disk when it
 * has caught up, at least once a second while records arrive, and on
 * SIGTERM/SIGINT before it exits 0, so a restart resumes where it stopped
 * (and a SIGKILL costs only a replay from the last checkpoint).
 *
 * After checkpoints it publishes its positions in the log under its name
 * (rl_follower_publish: at most once a second, and only what the
 * checkpoints cover), for `repdisk status` and log retention.  A report
 * that cannot be published is reported once and tried again; following
 * goes on, since the images do not depend on it. */
#include "repdisk.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"usage: repdisk follow --log URI [--name NAME] [--once]\n"
	"                      [--checkpoint-records N] [LOG OPTIONS] DATADIR\n"
	"\n"
	"Applies the log's records to the raw images in DATADIR (DATADIR/NAME,\n"
	"with repdisk's state under DATADIR/.repdisk/), catching up first and\n"
	"then following new records until stopped with SIGTERM or SIGINT.\n"
	"New disks are picked up as the catalog names them.\n"
	"\n"
	"It publishes in the log, under its name, the position of every disk\n"
	"that its data directory holds durably, at most once a second (and\n"
	"every 30 s while nothing changes); `repdisk status` shows them.\n"
	"Every follower of a log needs a name of its own.\n"
	"\n"
	"  -l, --log URI               the log to follow: file:PATH or\n"
	"                              kafka:HOST:PORT[,...][?OPTIONS]\n"
	"  -n, --name NAME             this follower's name: letters, digits,\n"
	"                              '.', '_', '-', at most 64 (default:\n"
	"                              HOST-DIR, the host name and the data\n"
	"                              directory's last component)\n"
	"      --once                  catch up, checkpoint and exit 0\n"
	"      --checkpoint-records N  checkpoint a disk every N records (4096)\n"
	"  -h, --help                  show this help\n"
	"\n"
	"Log options (kafka; the file log ignores them):\n"
	"      --namespace NS          topics repdisk.NS.* (default \"default\")\n"
	"  -o kafka.PROP=VALUE         a librdkafka property (TLS, SASL, ...)\n"
	"      --kafka-config FILE     PROP=VALUE lines, for secrets\n"
	"      --key-file FILE         the deployment's keys (repdisk key): seal\n"
	"                              new records, refuse others\n"
	"      --write-timeout SECS    how long a report may wait for the cluster\n"
	"\n"
	"A record that cannot be read or applied (damaged, a size this file\n"
	"system cannot hold, a full disk) stops that disk at that record:\n"
	"nothing past it is applied, the other disks go on, and the stopped one\n"
	"is tried again every 10 s.\n"
	"\n"
	"Exit status: 0 when stopped or caught up (--once), 1 on an error or\n"
	"when --once left a disk stopped at a bad record, 2 on a usage error.\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Publishes the positions if due; says once per failure streak why it
 * could not (following goes on: the images do not depend on it). */
static void publish(struct rl_follower *f, bool force, bool *failing)
{
	struct rl_err err;
	int rc = rl_follower_publish(f, force, &err);

	if (rc < 0 && !*failing)
		tool_error("follow", "%s (following goes on; tried again "
			   "later)", err.msg);
	else if (rc > 0 && *failing)
		tool_error("follow", "follower positions are published again");
	if (rc != 0)
		*failing = rc < 0;
}

/* replog's messages, as this command's own: "repdisk follow: ..." */
static void follow_log(enum rl_log_level level, const char *msg, void *arg)
{
	(void)level;
	(void)arg;
	fprintf(stderr, "repdisk follow: %s\n", msg);
}

struct follow_args {
	char *uri;		/* a copy: argv is scrubbed */
	const char *datadir;
	char name[RL_FOLLOWER_NAME_MAX + 1];
	bool once;
	struct rl_follow_opts fopts;
	struct rl_log_opts lopts;
};

/* TOOL_GO_ON, or the exit status to return (--help, a usage error, out
 * of memory). */
static int follow_parse(int argc, char **argv, struct follow_args *a)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "once", no_argument, NULL, 'O' },
		{ "checkpoint-records", required_argument, NULL, 'c' },
		CLI_LOG_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *uri = NULL;
	struct rl_err err;
	int c, rc;

	while ((c = getopt_long(argc, argv, "l:n:o:h", opts, NULL)) != -1) {
		unsigned long long v;

		switch (c) {
		case 'l':
			uri = optarg;	/* copied below */
			break;
		case 'n':
			if (rl_follower_name_check(optarg, &err) < 0)
				return tool_usage_error(usage, "follow: --name: "
							"%s", err.msg);
			snprintf(a->name, sizeof(a->name), "%s", optarg);
			break;
		case 'O':
			a->once = true;
			break;
		case 'c':
			if (cli_parse_u64(optarg, &v) < 0 || v == 0)
				return tool_usage_error(usage, "follow: bad "
							"--checkpoint-records "
							"\"%s\"", optarg);
			a->fopts.checkpoint_records = v;
			break;
		default:
			rc = tool_option("follow", usage, &a->lopts, c, optarg);
			if (rc != TOOL_GO_ON)
				return rc;
		}
	}
	if (!uri || optind + 1 != argc)
		return tool_usage_error(usage, "follow: %s", !uri ?
					"--log is required" :
					"expected one DATADIR");
	/* a daemon too: secrets in -o kafka.* and the URI go off its argv */
	a->uri = strdup(uri);
	if (!a->uri) {
		tool_error("follow", "out of memory");
		return 1;
	}
	rl_argv_scrub(argc, argv);
	a->datadir = argv[optind];
	if (!a->name[0])
		tool_follower_name(a->name, a->datadir);
	a->fopts.name = a->name;
	return TOOL_GO_ON;
}

/* A follower under way: what follow_open opened, follow_close closes,
 * and the state of the main loop. */
struct follow {
	struct rl_log *log;
	struct rl_follower *f;
	int lock_fd;
	bool dirty;		/* records applied since the last checkpoint */
	bool failing;		/* publishing fails (said once) */
	bool unreachable;	/* the log does not answer (said once) */
	double last_ckpt;
};

/* The log first: a wrong log creates nothing.  Then a new replica's data
 * directory, which may not exist yet, its lock and the follower. */
static int follow_open(struct follow *fw, struct follow_args *a)
{
	const char *datadir = a->datadir;
	struct rl_err err;
	int rc;

	rl_set_log_func(follow_log, NULL);
	rc = rl_log_open(a->uri, 0, &a->lopts, &fw->log, &err);
	if (rc == 0 && mkdir(datadir, 0700) < 0 && errno != EEXIST)
		rc = rl_err_set(&err, errno, "data directory %s: %s", datadir,
				strerror(errno));
	else if (rc == 0)
		rc = rl_datadir_prepare(datadir, &err);
	if (rc == 0)
		rc = fw->lock_fd = rl_datadir_lock(datadir, &err);
	if (rc >= 0)
		rc = rl_follower_open(fw->log, datadir, &a->fopts, &fw->f, &err);
	if (rc < 0) {
		tool_error("follow", "%s", err.msg);
		return -1;
	}
	return 0;
}

static void follow_close(struct follow *fw)
{
	rl_follower_close(fw->f);
	rl_log_close(fw->log);
	if (fw->lock_fd >= 0)
		close(fw->lock_fd);
}

/* Checkpoints every disk; says why it could not. */
static int follow_checkpoint(struct follow *fw)
{
	struct rl_err err;

	if (rl_follower_checkpoint(fw->f, &err) < 0) {
		tool_error("follow", "%s", err.msg);
		return -1;
	}
	fw->dirty = false;
	fw->last_ckpt = tool_now();
	return 0;
}

/* Checkpoints and publishes at once what the checkpoint holds, before the
 * follower exits (stopped, or at a record it cannot apply). */
static int follow_settle(struct follow *fw)
{
	if (follow_checkpoint(fw) < 0)
		return -1;
	publish(fw->f, true, &fw->failing);
	return 0;
}

/* The log does not answer (a Kafka cluster without a leader, ...): wait
 * for it, keeping what is applied; said once until it answers again. */
static void follow_wait(struct follow *fw, const struct rl_err *err)
{
	if (!fw->unreachable)
		tool_error("follow", "%s; retrying every second until the log "
			   "answers", err->msg);
	fw->unreachable = true;
	for (int i = 0; i < 10 && !stop; i++)
		usleep(100000);
}

/* After a step that applied n records (0: caught up): checkpoints when
 * caught up or a second after the last one, then publishes if due. */
static int follow_cadence(struct follow *fw, int n)
{
	fw->dirty |= n > 0;
	if (fw->dirty && (n == 0 || tool_now() - fw->last_ckpt >= 1.0) &&
	    follow_checkpoint(fw) < 0)
		return -1;
	publish(fw->f, false, &fw->failing);
	return 0;
}

/* Applies until stopped (or caught up, once).  0, or -1 on an error
 * (said). */
static int follow_loop(struct follow *fw, bool once)
{
	struct rl_err err;
	int rc;

	while (!stop) {
		rc = rl_follower_step(fw->f, &err);
		if ((rc == -EIO || rc == -ETIMEDOUT) && !once) {
			follow_wait(fw, &err);
			continue;
		}
		if (rc >= 0 && fw->unreachable) {
			fprintf(stderr, "repdisk follow: the log answers "
				"again\n");
			fw->unreachable = false;
		}
		if (rc < 0) {
			tool_error("follow", "%s", err.msg);
			/* keep what was applied before the bad record, and
			 * say where it stopped */
			follow_settle(fw);
			return -1;
		}
		if (follow_cadence(fw, rc) < 0)
			return -1;
		if (rc == 0) {
			if (once)
				break;
			usleep(5000);
		}
	}
	return 0;
}

/* The last checkpoint, and the exit status. */
static int follow_finish(struct follow *fw, bool once)
{
	size_t stopped;

	if (follow_settle(fw) < 0)
		return 1;
	stopped = rl_follower_stopped(fw->f);
	if (once && stopped) {
		/* caught up, but not every disk: say so in the exit status */
		tool_error("follow", "%zu disk%s stopped at a record that "
			   "cannot be applied (above); the others are caught "
			   "up", stopped, stopped == 1 ? "" : "s");
		return 1;
	}
	return 0;
}

/* Applies the log until stopped (or caught up, --once).  Returns the exit
 * status; errors are said as they happen, since a follower runs for
 * long: there is no output to gather. */
static int follow_run(struct follow_args *a)
{
	struct follow fw = { .lock_fd = -1, .last_ckpt = tool_now() };
	struct sigaction sa = { .sa_handler = on_signal };
	int status = 1;

	if (follow_open(&fw, a) == 0) {
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		if (follow_loop(&fw, a->once) == 0)
			status = follow_finish(&fw, a->once);
	}
	follow_close(&fw);
	return status;
}

int cmd_follow(int argc, char **argv)
{
	struct follow_args a = { 0 };
	int rc = follow_parse(argc, argv, &a);

	if (rc == TOOL_GO_ON)
		rc = follow_run(&a);
	rl_log_opts_free(&a.lopts);
	free(a.uri);
	return rc;
}
