/* repdisk: the command-line tool.  Dispatches to one subcommand per file
 * (tools/cmd_*.c) through the command table below, which also gives the
 * "commands:" lines of the usage text: adding a command is one row.
 * Conventions: every subcommand has --help (usage on stdout, exit 0); a
 * wrong option or a missing argument prints usage to stderr and exits 2;
 * a runtime failure prints one line "repdisk CMD: what: object: reason"
 * and exits 1. */
#include "repdisk.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

/* One row per line of the usage text.  A command whose subcommands are
 * worth a line each (log dump, log bench) has a row per line: the first
 * names the word to dispatch on and the function; the rest (name NULL)
 * only add a line. */
static const struct command {
	const char *name;	/* argv[1]; NULL: another line of the above */
	const char *shown;	/* the usage text's column */
	const char *summary;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "mount", "mount",
	  "mount a data directory's disks (FUSE), writing through the log",
	  cmd_mount },
	{ "follow", "follow",
	  "keep a data directory's images up to date from a log", cmd_follow },
	{ "status", "status",
	  "show each disk of a data directory: size, position, lag",
	  cmd_status },
	{ "log", "log dump", "print the records of a log, one line each",
	  cmd_log },
	{ NULL, "log bench", "measure the file log's durable append rate",
	  NULL },
	{ "seed", "seed",
	  "rebuild a replica from a copy of another one, plus the log",
	  cmd_seed },
	{ "forget", "forget",
	  "drop a follower gone for good from the log's registry", cmd_forget },
	{ "verify", "verify", "compare a disk's replicas byte for byte",
	  cmd_verify },
	{ "key", "key",
	  "generate, rotate or list the keys that seal records", cmd_key },
	{ "devbroker", "devbroker",
	  "run a development Kafka cluster (testing only, in memory)",
	  cmd_devbroker },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char usage_head[] =
	"usage: repdisk COMMAND [OPTIONS] ...\n"
	"\n"
	"repdisk keeps virtual-machine disks replicated: every change to a disk\n"
	"is appended to a durable log and applied to a plain raw image.\n"
	"\n"
	"commands:\n";
static const char usage_tail[] =
	"\n"
	"Run 'repdisk COMMAND --help' for a command's options.\n";

/* The usage text, made once from the table (the helpers take a string). */
static char usage[4096];

static void usage_build(void)
{
	size_t n = (size_t)snprintf(usage, sizeof(usage), "%s", usage_head);

	for (size_t i = 0; i < NCOMMANDS && n < sizeof(usage); i++)
		n += (size_t)snprintf(usage + n, sizeof(usage) - n,
				      "  %-9s %s\n", commands[i].shown,
				      commands[i].summary);
	if (n < sizeof(usage))
		n += (size_t)snprintf(usage + n, sizeof(usage) - n, "%s",
				      usage_tail);
	if (n >= sizeof(usage))
		abort();	/* a bug: the table outgrew the buffer */
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	/* repdisk's state (log segments, checkpoints, catalog, scratch
	 * replays, data directories it makes) holds every disk's data: only
	 * its owner reads it.  Images get their disk's mode explicitly. */
	umask(077);
	rl_fd_limit_raise();
	usage_build();
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
		printf("repdisk %s (writes record version %d, reads 1 to %d)\n",
		       REPDISK_VERSION, RL_RECORD_VERSION, RL_RECORD_VERSION_MAX);
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i].name && strcmp(cmd, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return tool_usage_error(usage, "unknown command \"%s\"", cmd);
}
