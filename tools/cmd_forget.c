/* repdisk forget: drop a follower that is gone for good from the log's
 * registry of follower positions.  Retention keeps every record some
 * registered follower still needs, so a replica that was decommissioned
 * (or renamed) must be forgotten, or the file log never shrinks past it. */
#include "repdisk.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
	"usage: repdisk forget --log URI [LOG OPTIONS] NAME...\n"
	"\n"
	"Forgets the followers NAME (as `repdisk status` lists them): the log\n"
	"no longer keeps records for them.  A forgotten follower that runs\n"
	"again registers again, and must be reseeded if what it needs is gone.\n"
	"\n"
	"  -l, --log URI       the log\n"
	"      --namespace NS, -o kafka.PROP=VALUE, --kafka-config FILE\n"
	"                      Kafka log options\n"
	"      --key-file FILE the deployment's keys (repdisk key)\n"
	"  -h, --help          show this help\n";

struct forget_args {
	const char *uri;
	struct rl_log_opts lopts;
	char **names;
	int n;
};

/* TOOL_GO_ON, or the exit status to return (--help, a usage error). */
static int forget_parse(int argc, char **argv, struct forget_args *a)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		CLI_LOG_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct rl_err err;
	int c, rc;

	while ((c = getopt_long(argc, argv, "l:o:h", opts, NULL)) != -1) {
		if (c == 'l')
			a->uri = optarg;
		else if ((rc = tool_option("forget", usage, &a->lopts, c,
					   optarg)) != TOOL_GO_ON)
			return rc;
	}
	if (!a->uri || optind >= argc)
		return tool_usage_error(usage, "forget: %s", !a->uri ?
					"--log is required" : "expected NAME");
	a->names = argv + optind;
	a->n = argc - optind;
	for (int i = 0; i < a->n; i++)
		if (rl_follower_name_check(a->names[i], &err) < 0)
			return tool_usage_error(usage, "forget: %s", err.msg);
	return TOOL_GO_ON;
}

/* Forgets the followers in order, stopping at the first failure (said
 * on stderr); returns how many were forgotten, or -1 if the log did not
 * open. */
static int forget_run(const struct forget_args *a)
{
	struct rl_log *log = NULL;
	struct rl_err err = { 0 };
	int done;

	if (rl_log_open(a->uri, 0, &a->lopts, &log, &err) < 0) {
		tool_error("forget", "%s", err.msg);
		return -1;
	}
	for (done = 0; done < a->n; done++) {
		if (rl_positions_forget(log, a->names[done], &err) < 0) {
			tool_error("forget", "%s: %s", a->names[done], err.msg);
			break;
		}
	}
	rl_log_close(log);
	return done;
}

int cmd_forget(int argc, char **argv)
{
	struct forget_args a = { 0 };
	int rc = forget_parse(argc, argv, &a), done;

	if (rc == TOOL_GO_ON) {
		done = forget_run(&a);
		for (int i = 0; i < done; i++)
			printf("forgot follower %s\n", a.names[i]);
		rc = done == a.n ? 0 : 1;
	}
	rl_log_opts_free(&a.lopts);
	return rc;
}
