/* util.h: the helpers every repdisk subcommand (tools/cmd_*.c) uses.
 *
 * They call nothing in the subcommands nor in the dispatcher
 * (tools/repdisk.c): the dispatcher calls the subcommands, the
 * subcommands call these.  The generic ones that the mount daemon shares
 * (usage errors, numbers, the log options) are in replog/cli.h. */
#ifndef REPDISK_TOOL_UTIL_H
#define REPDISK_TOOL_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "replog.h"
#include "vec.h"

#define EXIT_USAGE CLI_EXIT_USAGE

/* Prints "repdisk CMD: MSG" to stderr. */
void tool_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints "repdisk: MSG" and usage to stderr and returns EXIT_USAGE (for
 * a wrong option or a missing argument). */
int tool_usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* What an option parser returns to say "go on and run the command";
 * anything else is the exit status to return at once. */
#define TOOL_GO_ON (-1)

/* The default: case of every subcommand's getopt_long switch.  Takes the
 * log options ('N', 'W', 'K', 'o': see CLI_LOG_LONGOPTS) into lopts when
 * lopts is not NULL, and returns TOOL_GO_ON.  Otherwise, for -h/--help,
 * prints usage on stdout and returns 0; for anything else, or a bad log
 * option value, prints "repdisk: CMD: ..." and usage on stderr and returns
 * EXIT_USAGE.  lopts stays the caller's to free, on every path. */
int tool_option(const char *cmd, const char *usage, struct rl_log_opts *lopts,
		int c, const char *arg);

/* A progress line on stderr ("NAME: 1.2 of 10.0 GiB, 850 MB/s, 9 s left"),
 * redrawn at most twice a second, for long copies and comparisons.  `on`
 * is whether to draw it at all (stderr is a terminal, no --quiet). */
struct tool_progress {
	bool on;
	double t0, last;
};

void tool_progress_start(struct tool_progress *p);
/* Seconds on the monotonic clock, for durations. */
double tool_now(void);
/* done and total in bytes; final ends the line. */
void tool_progress(struct tool_progress *p, const char *name, uint64_t done,
		   uint64_t total, bool final);

/* A follower's default name, HOST-DIR (the host name and the data
 * directory's last component), as follow and seed use it. */
void tool_follower_name(char name[RL_FOLLOWER_NAME_MAX + 1],
			const char *datadir);

/* The default log of a data directory: file:DATADIR/.repdisk/log */
void tool_default_log(const char *datadir, char *buf, size_t size);

#endif
