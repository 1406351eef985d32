/* The repdisk command: shared declarations of its subcommands. */
#ifndef REPDISK_TOOL_H
#define REPDISK_TOOL_H

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
