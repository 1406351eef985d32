/* repdisk follow: keep a data directory's images up to date from a log.
 *
 * Catches up first, then tails the log.  Checkpoints every disk when it
 * has caught up, at least once a second while records arrive, and on
 * SIGTERM/SIGINT before it exits 0, so a restart resumes where it stopped
 * (and a SIGKILL costs only a replay from the last checkpoint). */
#include "repdisk.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"usage: repdisk follow --log URI [--once] [--checkpoint-records N] DATADIR\n"
	"\n"
	"Applies the log's records to the raw images in DATADIR (DATADIR/NAME,\n"
	"with repdisk's state under DATADIR/.repdisk/), catching up first and\n"
	"then following new records until stopped with SIGTERM or SIGINT.\n"
	"\n"
	"  -l, --log URI               the log to follow: file:PATH\n"
	"      --once                  catch up, checkpoint and exit 0\n"
	"      --checkpoint-records N  checkpoint a disk every N records (4096)\n"
	"  -h, --help                  show this help\n"
	"\n"
	"Exit status: 0 when stopped or caught up (--once), 1 on an error such\n"
	"as a bad record (nothing past it is applied), 2 on a usage error.\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int cmd_follow(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "once", no_argument, NULL, 'o' },
		{ "checkpoint-records", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct rl_follow_opts fopts = { 0 };
	const char *uri = NULL, *datadir;
	struct rl_log *log = NULL;
	struct rl_follower *f = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	struct rl_err err;
	bool once = false, dirty = false;
	double last_ckpt = now();
	int c, rc, lock_fd = -1, status = 1;

	while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
		unsigned long long v;

		switch (c) {
		case 'l':
			uri = optarg;
			break;
		case 'o':
			once = true;
			break;
		case 'c':
			if (tool_parse_u64(optarg, &v) < 0 || v == 0)
				return tool_usage_error(usage, "follow: bad "
							"--checkpoint-records "
							"\"%s\"", optarg);
			fopts.checkpoint_records = v;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return tool_usage_error(usage, "follow: bad option");
		}
	}
	if (!uri)
		return tool_usage_error(usage, "follow: --log is required");
	if (optind + 1 != argc)
		return tool_usage_error(usage, "follow: expected one DATADIR");
	datadir = argv[optind];

	rc = rl_datadir_prepare(datadir, &err);
	if (rc == 0)
		rc = lock_fd = rl_datadir_lock(datadir, &err);
	if (rc >= 0)
		rc = rl_log_open(uri, 0, NULL, &log, &err);
	if (rc >= 0)
		rc = rl_follower_open(log, datadir, &fopts, &f, &err);
	if (rc < 0) {
		tool_error("follow", "%s", err.msg);
		goto out;
	}

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!stop) {
		rc = rl_follower_step(f, &err);
		if (rc < 0) {
			tool_error("follow", "%s", err.msg);
			/* keep what was applied before the bad record */
			if (rl_follower_checkpoint(f, &err) < 0)
				tool_error("follow", "%s", err.msg);
			goto out;
		}
		dirty |= rc > 0;
		if (dirty && (rc == 0 || now() - last_ckpt >= 1.0)) {
			if (rl_follower_checkpoint(f, &err) < 0) {
				tool_error("follow", "%s", err.msg);
				goto out;
			}
			dirty = false;
			last_ckpt = now();
		}
		if (rc == 0) {
			if (once)
				break;
			usleep(5000);
		}
	}
	rc = rl_follower_checkpoint(f, &err);
	if (rc < 0) {
		tool_error("follow", "%s", err.msg);
		goto out;
	}
	status = 0;
out:
	rl_follower_close(f);
	rl_log_close(log);
	if (lock_fd >= 0)
		close(lock_fd);
	return status;
}
