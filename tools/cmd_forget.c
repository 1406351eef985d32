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
	"  -h, --help          show this help\n";

int cmd_forget(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		CLI_LOG_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct rl_log_opts lopts = { 0 };
	struct rl_log *log = NULL;
	struct rl_err err = { 0 };
	const char *uri = NULL;
	int c, status = 1;

	while ((c = getopt_long(argc, argv, "l:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			uri = optarg;
			break;
		case 'N':
		case 'W':
		case 'K':
		case 'o':
			if (cli_log_option(&lopts, c, optarg, &err) < 0) {
				rl_log_opts_free(&lopts);
				return tool_usage_error(usage, "forget: %s",
							err.msg);
			}
			break;
		case 'h':
			fputs(usage, stdout);
			rl_log_opts_free(&lopts);
			return 0;
		default:
			rl_log_opts_free(&lopts);
			return tool_usage_error(usage, "forget: bad option");
		}
	}
	if (!uri || optind >= argc) {
		rl_log_opts_free(&lopts);
		return tool_usage_error(usage, "forget: %s", !uri ?
					"--log is required" : "expected NAME");
	}
	for (int i = optind; i < argc; i++) {
		if (rl_follower_name_check(argv[i], &err) < 0) {
			rl_log_opts_free(&lopts);
			return tool_usage_error(usage, "forget: %s", err.msg);
		}
	}
	if (rl_log_open(uri, 0, &lopts, &log, &err) < 0) {
		tool_error("forget", "%s", err.msg);
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		if (rl_positions_forget(log, argv[i], &err) < 0) {
			tool_error("forget", "%s: %s", argv[i], err.msg);
			goto out;
		}
		printf("forgot follower %s\n", argv[i]);
	}
	status = 0;
out:
	rl_log_close(log);
	rl_log_opts_free(&lopts);
	return status;
}
