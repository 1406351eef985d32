/* repdisk status: each disk of a data directory, its size, the position
 * its image holds, the log's end and the lag.  Reads only: it takes no
 * lock and changes nothing, so it runs beside a mount or a follower. */
#include "repdisk.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
	"usage: repdisk status [--log URI] [--json] DATADIR\n"
	"\n"
	"Shows each disk of DATADIR: name, uuid, size, the log position its\n"
	"image holds (applied, as of its last checkpoint), the log's durable\n"
	"end and the lag between them, in records.\n"
	"\n"
	"  -l, --log URI   the log to compare with (default: file:DATADIR/.repdisk/log\n"
	"                  when it exists)\n"
	"      --json      one JSON object instead of a table\n"
	"  -h, --help      show this help\n";

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *uri = NULL, *datadir;
	char def[PATH_MAX], ckpt_dir[PATH_MAX];
	struct rl_catalog *cat = NULL;
	struct rl_disk_info *disks = NULL;
	struct rl_log *log = NULL;
	struct rl_err err;
	bool json = false;
	size_t n;
	int c, rc;

	while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			uri = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return tool_usage_error(usage, "status: bad option");
		}
	}
	if (optind + 1 != argc)
		return tool_usage_error(usage, "status: expected one DATADIR");
	datadir = argv[optind];

	struct stat st;

	if (stat(datadir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		tool_error("status", "data directory %s: %s", datadir,
			   errno ? strerror(errno) : "not a directory");
		return 1;
	}
	if (!uri) {
		snprintf(def, sizeof(def), "%s/.repdisk/log", datadir);
		if (access(def, F_OK) == 0) {
			tool_default_log(datadir, def, sizeof(def));
			uri = def;
		}
	}
	rc = rl_catalog_open(datadir, &cat, &err);
	if (rc < 0) {
		tool_error("status", "%s", err.msg);
		return 1;
	}
	if (uri && rl_log_open(uri, 0, NULL, &log, &err) < 0) {
		tool_error("status", "%s (showing the data directory alone)",
			   err.msg);
		log = NULL;
	}
	n = rl_catalog_disks(cat, NULL, 0);
	disks = calloc(n ? n : 1, sizeof(*disks));
	if (!disks) {
		tool_error("status", "out of memory");
		rl_catalog_close(cat);
		rl_log_close(log);
		return 1;
	}
	n = rl_catalog_disks(cat, disks, n);
	snprintf(ckpt_dir, sizeof(ckpt_dir), "%s/.repdisk/ckpt", datadir);

	if (json) {
		printf("{\"datadir\": ");
		json_str(datadir);
		printf(", \"log\": ");
		if (uri)
			json_str(uri);
		else
			printf("null");
		printf(", \"disks\": [");
	} else {
		printf("%-24s %-36s %14s %10s %10s %8s %6s\n", "NAME", "UUID",
		       "SIZE", "APPLIED", "LOG END", "LAG", "EPOCH");
	}
	for (size_t i = 0; i < n; i++) {
		char u[RL_UUID_STRLEN + 1], path[PATH_MAX];
		char end_s[24] = "-", lag_s[24] = "-";
		struct rl_checkpoint ck;
		struct rl_stream *s;
		uint64_t end = 0;
		bool have_end = false;
		long long size = -1;

		rl_uuid_format(&disks[i].uuid, u);
		snprintf(path, sizeof(path), "%s/%s", datadir, disks[i].name);
		if (stat(path, &st) == 0)
			size = (long long)st.st_size;
		rc = rl_checkpoint_read(ckpt_dir, &disks[i].uuid, &ck, &err);
		if (rc < 0 && rc != -ENOENT) {
			tool_error("status", "%s", err.msg);
			memset(&ck, 0, sizeof(ck));
		}
		if (log && rl_log_stream(log, &disks[i].uuid, &s, NULL) == 0 &&
		    rl_log_end(s, &end) == 0)
			have_end = true;
		if (have_end) {
			snprintf(end_s, sizeof(end_s), "%" PRIu64, end);
			snprintf(lag_s, sizeof(lag_s), "%" PRIu64,
				 end > ck.next_pos ? end - ck.next_pos : 0);
		}
		if (json) {
			printf("%s{\"name\": ", i ? ", " : "");
			json_str(disks[i].name);
			printf(", \"uuid\": \"%s\", \"size\": %lld, "
			       "\"applied\": %" PRIu64 ", \"log_end\": %s, "
			       "\"lag\": %s, \"epoch\": %" PRIu64 "}", u, size,
			       ck.next_pos, have_end ? end_s : "null",
			       have_end ? lag_s : "null", ck.epoch);
		} else {
			printf("%-24s %-36s %14lld %10" PRIu64 " %10s %8s %6"
			       PRIu64 "\n", disks[i].name, u, size, ck.next_pos,
			       end_s, lag_s, ck.epoch);
		}
	}
	if (json)
		printf("]}\n");
	free(disks);
	rl_catalog_close(cat);
	rl_log_close(log);
	return 0;
}
