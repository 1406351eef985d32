/* util.c: helpers of the repdisk subcommands (see util.h).  Nothing here
 * calls back into a subcommand or the dispatcher. */
#include "util.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	int rc;

	va_start(ap, fmt);
	rc = cli_vusage_error("repdisk", u, fmt, ap);
	va_end(ap);
	return rc;
}

int tool_option(const char *cmd, const char *usage, struct rl_log_opts *lopts,
		int c, const char *arg)
{
	struct rl_err err;

	switch (c) {
	case 'N':
	case 'W':
	case 'K':
	case 'Y':
	case 'o':
		if (!lopts)
			break;
		if (cli_log_option(lopts, c, arg, &err) < 0)
			return tool_usage_error(usage, "%s: %s", cmd, err.msg);
		return TOOL_GO_ON;
	case 'h':
		fputs(usage, stdout);
		return 0;
	}
	return tool_usage_error(usage, "%s: bad option", cmd);
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

double tool_now(void)
{
	return (double)rl_clock_ns(CLOCK_MONOTONIC) / 1e9;
}

void tool_progress_start(struct tool_progress *p)
{
	p->t0 = p->last = tool_now();
}

void tool_progress(struct tool_progress *p, const char *name, uint64_t done,
		   uint64_t total, bool final)
{
	double now = tool_now(), el = now - p->t0, rate;

	if (!p->on || (!final && now - p->last < 0.5))
		return;
	p->last = now;
	rate = el > 0 ? (double)done / el : 0;
	fprintf(stderr, "\r%s: %.2f of %.2f GiB, %.0f MB/s, %.0f s left   %s",
		name, done / 1073741824.0, total / 1073741824.0, rate / 1e6,
		rate > 0 && total > done ? (double)(total - done) / rate : 0.0,
		final ? "\n" : "");
}

void tool_default_log(const char *datadir, char *buf, size_t size)
{
	snprintf(buf, size, "file:%s/.repdisk/log", datadir);
}
