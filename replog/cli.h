/* cli.h: the few command-line helpers that both front ends share: the
 * repdisk tool (tools/) and the mount daemon, repdisk-mount (fs/main.c).
 *
 * Why a header of static inline functions, beside replog.h: the two
 * programs are separate executables that link replog and nothing of each
 * other (fs/ must not depend on tools/, nor tools/ on fs/), and both
 * take the log options that replog parses (rl_log_opts_set); a header
 * needs no target to link, only replog's include path, which both have.  What is here is generic (usage
 * errors, numbers, the log options); what only the tool needs (progress
 * lines, follower names, ...) is in tools/util.c.
 */
#ifndef REPDISK_CLI_H
#define REPDISK_CLI_H

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "replog.h"

/* Exit status of a wrong option or a missing argument. */
#define CLI_EXIT_USAGE 2

/* Prints "WHO: MSG\nUSAGE" to stderr and returns CLI_EXIT_USAGE. */
static inline int cli_vusage_error(const char *who, const char *usage,
				   const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", who);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n%s", usage);
	return CLI_EXIT_USAGE;
}

static inline __attribute__((format(printf, 3, 4)))
int cli_usage_error(const char *who, const char *usage, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_vusage_error(who, usage, fmt, ap);
	va_end(ap);
	return CLI_EXIT_USAGE;
}

/* Parses a non-negative decimal integer (no sign, no blanks, nothing
 * after it); returns 0 or -1. */
static inline int cli_parse_u64(const char *s, unsigned long long *out)
{
	uint64_t v;

	if (rl_parse_u64(s, UINT64_MAX, &v, NULL) < 0)
		return -1;
	*out = v;
	return 0;
}

/* The log options (replog/logopts.c) as getopt_long codes: CLI_LOG_LONGOPTS
 * in the long option table, "o:" in the short options, and
 * cli_log_option() for the codes 'N', 'W', 'K', 'Y' and 'o'. */
#define CLI_LOG_LONGOPTS \
	{ "namespace", required_argument, NULL, 'N' }, \
	{ "write-timeout", required_argument, NULL, 'W' }, \
	{ "kafka-config", required_argument, NULL, 'K' }, \
	{ "key-file", required_argument, NULL, 'Y' }

/* Sets log option code c to arg; 0, or -EINVAL with a message in err. */
static inline int cli_log_option(struct rl_log_opts *o, int c,
				 const char *arg, struct rl_err *err)
{
	return rl_log_opts_set(o, c == 'N' ? "namespace" :
			       c == 'W' ? "write-timeout" :
			       c == 'K' ? "kafka-config" :
			       c == 'Y' ? "key-file" : "o", arg, err);
}

#endif
