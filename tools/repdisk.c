/* repdisk: the command-line tool.  Dispatches to one subcommand per file
 * (tools/cmd_*.c).  Conventions: every subcommand has --help (usage on
 * stdout, exit 0); a wrong option or a missing argument prints usage to
 * stderr and exits 2; a runtime failure prints one line
 * "repdisk CMD: what: object: reason" and exits 1. */
#include "repdisk.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

static const char usage[] =
	"usage: repdisk COMMAND [OPTIONS] ...\n"
	"\n"
	"repdisk keeps virtual-machine disks replicated: every change to a disk\n"
	"is appended to a durable log and applied to a plain raw image.\n"
	"\n"
	"commands:\n"
	"  mount     mount a data directory's disks (FUSE), writing through the log\n"
	"  follow    keep a data directory's images up to date from a log\n"
	"  status    show each disk of a data directory: size, position, lag\n"
	"  log dump  print the records of a log, one line each\n"
	"  log bench measure the file log's durable append rate\n"
	"  seed      rebuild a replica from a copy of another one, plus the log\n"
	"  forget    drop a follower gone for good from the log's registry\n"
	"  verify    compare a disk's replicas byte for byte\n"
	"  devbroker run a development Kafka cluster (testing only, in memory)\n"
	"\n"
	"Run 'repdisk COMMAND --help' for a command's options.\n";

void tool_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "repdisk %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int tool_usage_error(const char *u, const char *fmt, ...)
{
	va_list ap;

	fputs("repdisk: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", u);
	return EXIT_USAGE;
}

int tool_parse_u64(const char *s, unsigned long long *out)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* HOST-DIR: two followers of one host, in two data directories, must not
 * share a name (their reports would overwrite each other, and retention
 * would go by the wrong one). */
void tool_follower_name(char name[RL_FOLLOWER_NAME_MAX + 1],
			const char *datadir)
{
	char full[PATH_MAX], *base;
	size_t n;

	rl_follower_default_name(name);
	if (!realpath(datadir, full))
		snprintf(full, sizeof(full), "%s", datadir);
	base = strrchr(full, '/');
	base = base && base[1] ? base + 1 : full;
	n = strlen(name);
	if (n + 2 > RL_FOLLOWER_NAME_MAX || strcmp(base, "/") == 0)
		return;
	name[n++] = '-';
	for (; *base && n < RL_FOLLOWER_NAME_MAX; base++)
		name[n++] = (isalnum((unsigned char)*base) || *base == '.' ||
			     *base == '_' || *base == '-') ? *base : '-';
	name[n] = '\0';
}

static double mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

void tool_progress_start(struct tool_progress *p)
{
	p->t0 = p->last = mono_now();
}

void tool_progress(struct tool_progress *p, const char *name, uint64_t done,
		   uint64_t total, bool final)
{
	double now = mono_now(), el = now - p->t0, rate;

	if (!p->on || (!final && now - p->last < 0.5))
		return;
	p->last = now;
	rate = el > 0 ? (double)done / el : 0;
	fprintf(stderr, "\r%s: %.2f of %.2f GiB, %.0f MB/s, %.0f s left   %s",
		name, done / 1073741824.0, total / 1073741824.0, rate / 1e6,
		rate > 0 && total > done ? (double)(total - done) / rate : 0.0,
		final ? "\n" : "");
}

int tool_log_option(struct rl_log_opts *o, int c, const char *arg,
		    struct rl_err *err)
{
	return rl_log_opts_set(o, c == 'N' ? "namespace" :
			       c == 'W' ? "write-timeout" :
			       c == 'K' ? "kafka-config" : "o", arg, err);
}

void tool_default_log(const char *datadir, char *buf, size_t size)
{
	snprintf(buf, size, "file:%s/.repdisk/log", datadir);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	/* repdisk's state (log segments, checkpoints, catalog, scratch
	 * replays, data directories it makes) holds every disk's data: only
	 * its owner reads it.  Images get their disk's mode explicitly. */
	umask(077);
	if (sodium_init() < 0) {
		fprintf(stderr, "repdisk: libsodium failed to initialise\n");
		return 1;
	}
	if (!cmd)
		return tool_usage_error(usage, "no command given");
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("repdisk %s (record formats 1 to %d)\n",
		       REPDISK_VERSION, RL_RECORD_VERSION_MAX);
		return 0;
	}
	if (strcmp(cmd, "mount") == 0)
		return cmd_mount(argc - 1, argv + 1);
	if (strcmp(cmd, "follow") == 0)
		return cmd_follow(argc - 1, argv + 1);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (strcmp(cmd, "devbroker") == 0)
		return cmd_devbroker(argc - 1, argv + 1);
	if (strcmp(cmd, "forget") == 0)
		return cmd_forget(argc - 1, argv + 1);
	if (strcmp(cmd, "seed") == 0)
		return cmd_seed(argc - 1, argv + 1);
	if (strcmp(cmd, "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (strcmp(cmd, "log") == 0)
		return cmd_log(argc - 1, argv + 1);
	return tool_usage_error(usage, "unknown command \"%s\"", cmd);
}
