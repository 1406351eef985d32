/* The repdisk command: shared declarations of its subcommands. */
#ifndef REPDISK_TOOL_H
#define REPDISK_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "replog.h"

#define EXIT_USAGE 2

/* One subcommand: tools/cmd_NAME.c */
int cmd_mount(int argc, char **argv);
int cmd_follow(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_log_bench(int argc, char **argv);
int cmd_devbroker(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_seed(int argc, char **argv);
int cmd_forget(int argc, char **argv);

/* The log options every command that opens a log takes (replog/logopts.c):
 * TOOL_LOG_LONGOPTS in its getopt_long table, "o:" in its short options,
 * and tool_log_option() for the codes 'N', 'W', 'K' and 'o'. */
#define TOOL_LOG_LONGOPTS \
	{ "namespace", required_argument, NULL, 'N' }, \
	{ "write-timeout", required_argument, NULL, 'W' }, \
	{ "kafka-config", required_argument, NULL, 'K' }
int tool_log_option(struct rl_log_opts *o, int c, const char *arg,
		    struct rl_err *err);

/* A progress line on stderr ("NAME: 1.2 of 10.0 GiB, 850 MB/s, 9 s left"),
 * redrawn at most twice a second, for long copies and comparisons.  `on`
 * is whether to draw it at all (stderr is a terminal, no --quiet). */
struct tool_progress {
	bool on;
	double t0, last;
};

void tool_progress_start(struct tool_progress *p);
/* done and total in bytes; final ends the line. */
void tool_progress(struct tool_progress *p, const char *name, uint64_t done,
		   uint64_t total, bool final);

/* Prints "repdisk CMD: MSG" to stderr. */
void tool_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints usage to stderr and returns EXIT_USAGE (for a wrong option or a
 * missing argument). */
int tool_usage_error(const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parses a non-negative integer option value; returns 0 or -1. */
int tool_parse_u64(const char *s, unsigned long long *out);

/* A follower's default name, HOST-DIR (the host name and the data
 * directory's last component), as follow and seed use it. */
void tool_follower_name(char name[RL_FOLLOWER_NAME_MAX + 1],
			const char *datadir);

/* The default log of a data directory: file:DATADIR/.repdisk/log */
void tool_default_log(const char *datadir, char *buf, size_t size);

#endif
