/* repdisk log: look at a log.  "dump" prints one line per record (no
 * payload bytes); "skip" records in the catalog that every applier is to
 * pass over one position of a disk; "bench" is in cmd_bench.c. */
#include "repdisk.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"usage: repdisk log dump --log URI [LOG OPTIONS] [DISK]\n"
	"       repdisk log skip --log URI --confirm [--reason TEXT] [LOG OPTIONS]\n"
	"                        DISK POSITION\n"
	"       repdisk log bench [--dir DIR] [--seconds N]\n"
	"\n"
	"dump prints every durable record of the log, one line each:\n"
	"  STREAM POSITION TYPE epoch=E seq=S offset=O length=L codec=C stored=N ...\n"
	"STREAM is the disk's name (or uuid) or \"catalog\".  Without DISK it\n"
	"prints the catalog, then every disk; DISK is a name, a uuid or \"catalog\".\n"
	"A bad record stops the dump with a message naming its segment, byte\n"
	"offset and position, and exit status 1.\n"
	"\n"
	"skip is the way past one record that stops a disk everywhere (damaged,\n"
	"forged, or one no replica can apply): it appends to the catalog a SKIP\n"
	"record naming the disk, the position, who, when and why, and every\n"
	"applier (mount, follower) then passes over that position, so replicas\n"
	"stay identical.  What the record held is lost for good: it needs\n"
	"--confirm.  `repdisk status` lists the skipped positions.  On a file\n"
	"log the mount must be stopped first (it holds the log); a running\n"
	"follower takes it up by itself, a mount when it is mounted again.\n"
	"\n"
	"  -l, --log URI   the log: file:PATH or kafka:HOST:PORT[,...][?OPTIONS]\n"
	"  -h, --help      show this help\n"
	"\n"
	"Log options (kafka; the file log ignores them):\n"
	"      --namespace NS          topics repdisk.NS.* (default \"default\")\n"
	"  -o kafka.PROP=VALUE         a librdkafka property (TLS, SASL, ...)\n"
	"      --kafka-config FILE     PROP=VALUE lines, for secrets\n"
	"      --write-timeout SECS    accepted, unused\n";

/* Names of disks as the catalog stream says, for labels. */
struct names {
	struct rl_disk_info *v;
	size_t n;
};

static struct rl_disk_info *names_find(struct names *nm,
				       const struct rl_uuid *u)
{
	for (size_t i = 0; i < nm->n; i++)
		if (rl_uuid_eq(&nm->v[i].uuid, u))
			return &nm->v[i];
	return NULL;
}

static void names_note(struct names *nm, const struct rl_record *r)
{
	struct rl_disk_info *d = names_find(nm, &r->disk);

	if ((r->type != RL_CREATE && r->type != RL_RENAME) || !r->name)
		return;
	if (!d) {
		void *v = realloc(nm->v, (nm->n + 1) * sizeof(*nm->v));

		if (!v)
			return;
		nm->v = v;
		d = &nm->v[nm->n++];
		memset(d, 0, sizeof(*d));
		d->uuid = r->disk;
	}
	snprintf(d->name, sizeof(d->name), "%s", r->name);
}

static void print_record(const char *label, uint64_t pos,
			 const struct rl_record *r)
{
	char u[RL_UUID_STRLEN + 1];

	printf("%s %" PRIu64 " %s epoch=%" PRIu64 " seq=%" PRIu64, label, pos,
	       rl_type_name(r->type), r->epoch, r->seq);
	switch (r->type) {
	case RL_WRITE:
	case RL_ZERO:
	case RL_DISCARD:
		printf(" offset=%" PRIu64 " length=%" PRIu64, r->offset,
		       r->length);
		break;
	case RL_RESIZE:
		printf(" size=%" PRIu64, r->offset);
		break;
	case RL_CLAIM:
		printf(" host=%.*s", (int)r->data_len, (const char *)r->data);
		break;
	case RL_SKIP:
		rl_uuid_format(&r->disk, u);
		printf(" disk=%s position=%" PRIu64 " note=%.*s", u, r->offset,
		       (int)r->data_len, (const char *)r->data);
		break;
	default:
		rl_uuid_format(&r->disk, u);
		printf(" disk=%s", u);
		if (r->name)
			printf(" name=%s", r->name);
		if (r->type == RL_CREATE || r->type == RL_SETATTR)
			printf(" mode=%04o uid=%u gid=%u", r->mode, r->uid,
			       r->gid);
	}
	printf(" codec=%s stored=%u\n", r->codec == RL_CODEC_ZSTD ? "zstd" :
	       "none", r->stored_len);
}

/* Dumps one stream from position 0 to its durable end.  Returns 0 or -1. */
static int dump_stream(struct rl_log *log, const struct rl_uuid *disk,
		       const char *label, struct names *nm, bool print)
{
	struct rl_stream *s;
	struct rl_reader *r;
	struct rl_err err;
	int rc;

	rc = rl_log_stream(log, disk, &s, &err);
	if (rc == -ENOENT && !disk)
		return 0;	/* no catalog yet: an empty log */
	if (rc == 0)
		rc = rl_reader_open(s, 0, &r, &err);
	if (rc < 0) {
		tool_error("log dump", "%s", err.msg);
		return -1;
	}
	for (;;) {
		struct rl_record rec;
		uint64_t pos;

		rc = rl_reader_next(r, &rec, &pos, 0, &err);
		if (rc <= 0)
			break;
		if (!disk)
			names_note(nm, &rec);
		if (print)
			print_record(label, pos, &rec);
	}
	rl_reader_close(r);
	if (rc < 0) {
		fflush(stdout);
		tool_error("log dump", "%s", err.msg);
		return -1;
	}
	return 0;
}

static int log_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		CLI_LOG_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *uri = NULL, *which = NULL;
	struct names nm = { 0 };
	struct rl_log *log = NULL;
	struct rl_log_opts lopts = { 0 };
	struct rl_uuid *uuids = NULL;
	struct rl_err err;
	int c, n, status = 1;

	while ((c = getopt_long(argc, argv, "l:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			uri = optarg;
			break;
		case 'N':
		case 'W':
		case 'K':
		case 'o':
			if (cli_log_option(&lopts, c, optarg,
					    &err) < 0) {
				rl_log_opts_free(&lopts);
				return tool_usage_error(usage, "log dump: %s",
							err.msg);
			}
			break;
		case 'h':
			rl_log_opts_free(&lopts);
			fputs(usage, stdout);
			return 0;
		default:
			rl_log_opts_free(&lopts);
			return tool_usage_error(usage, "log dump: bad option");
		}
	}
	if (!uri || argc - optind > 1) {
		rl_log_opts_free(&lopts);
		return tool_usage_error(usage, "log dump: %s", !uri ?
					"--log is required" :
					"at most one DISK");
	}
	which = optind < argc ? argv[optind] : NULL;

	if (rl_log_open(uri, 0, &lopts, &log, &err) < 0) {
		tool_error("log dump", "%s", err.msg);
		rl_log_opts_free(&lopts);
		return 1;
	}
	/* the catalog gives names; print it unless one disk was asked for */
	if (dump_stream(log, NULL, "catalog", &nm,
			!which || strcmp(which, "catalog") == 0) < 0)
		goto out;
	if (which && strcmp(which, "catalog") == 0) {
		status = 0;
		goto out;
	}
	n = rl_log_list(log, NULL, 0, &err);
	if (n < 0 || !(uuids = calloc((size_t)n + 1, sizeof(*uuids))) ||
	    (n = rl_log_list(log, uuids, (size_t)n, &err)) < 0) {
		tool_error("log dump", "%s", n < 0 ? err.msg : "out of memory");
		goto out;
	}
	status = 0;
	bool found = false;

	for (int i = 0; i < n; i++) {
		char u[RL_UUID_STRLEN + 1];
		struct rl_disk_info *d = names_find(&nm, &uuids[i]);
		const char *label = d ? d->name : u;

		rl_uuid_format(&uuids[i], u);
		if (which && strcmp(which, u) != 0 &&
		    !(d && strcmp(which, d->name) == 0))
			continue;
		found = true;
		if (dump_stream(log, &uuids[i], label, &nm, true) < 0) {
			status = 1;
			break;
		}
	}
	if (which && !found) {
		char shown[4096 + 64];

		rl_redact(uri, shown, sizeof(shown));
		tool_error("log dump", "no disk \"%s\" in log %s", which,
			   shown);
		status = 1;
	}
out:
	free(uuids);
	free(nm.v);
	rl_log_close(log);
	rl_log_opts_free(&lopts);
	return status;
}

/* The newest catalog claim's epoch, read from the catalog stream (the
 * SKIP is stamped with it, as the catalog's writer stamps its records),
 * and the disks' names into nm.  0 or -1. */
static int catalog_scan(struct rl_log *log, struct names *nm, uint64_t *epoch,
			uint64_t *end)
{
	struct rl_stream *s;
	struct rl_reader *r;
	struct rl_err err;
	int rc;

	*epoch = 0;
	rc = rl_log_stream(log, NULL, &s, &err);
	if (rc == 0)
		rc = rl_log_end(s, end) < 0 ? rl_err_set(&err, EIO, "catalog: "
							 "log end") : 0;
	if (rc == 0)
		rc = rl_reader_open(s, 0, &r, &err);
	if (rc < 0) {
		tool_error("log skip", "%s", err.msg);
		return -1;
	}
	for (;;) {
		struct rl_record rec;
		uint64_t pos;

		rc = rl_reader_next(r, &rec, &pos, 0, &err);
		if (rc <= 0)
			break;
		names_note(nm, &rec);
		if (rec.type == RL_CLAIM && rec.epoch > *epoch)
			*epoch = rec.epoch;
	}
	rl_reader_close(r);
	if (rc < 0) {
		tool_error("log skip", "catalog: %s", err.msg);
		return -1;
	}
	return 0;
}

static int log_skip(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "confirm", no_argument, NULL, 'y' },
		{ "reason", required_argument, NULL, 'r' },
		CLI_LOG_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *uri = NULL, *reason = "", *which;
	struct names nm = { 0 };
	struct rl_log *log = NULL;
	struct rl_log_opts lopts = { 0 };
	struct rl_record rec = { .type = RL_SKIP };
	struct rl_disk_info *d;
	struct rl_stream *ds, *cs;
	struct rl_err err;
	struct passwd *pw;
	char note[512], host[64] = "?", when[32], *endp;
	uint8_t buf[RL_RECORD_HDR_SIZE + sizeof(note)];
	uint64_t epoch, cat_end, disk_end, pos;
	bool confirm = false;
	ssize_t len;
	int64_t at;
	time_t now = time(NULL);
	int c, status = 1;

	while ((c = getopt_long(argc, argv, "l:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': uri = optarg; break;
		case 'y': confirm = true; break;
		case 'r': reason = optarg; break;
		case 'N':
		case 'W':
		case 'K':
		case 'o':
			if (cli_log_option(&lopts, c, optarg, &err) < 0) {
				rl_log_opts_free(&lopts);
				return tool_usage_error(usage, "log skip: %s",
							err.msg);
			}
			break;
		case 'h':
			rl_log_opts_free(&lopts);
			fputs(usage, stdout);
			return 0;
		default:
			rl_log_opts_free(&lopts);
			return tool_usage_error(usage, "log skip: bad option");
		}
	}
	if (!uri || argc - optind != 2) {
		rl_log_opts_free(&lopts);
		return tool_usage_error(usage, "log skip: %s", !uri ?
					"--log is required" :
					"expected DISK and POSITION");
	}
	which = argv[optind];
	errno = 0;
	pos = strtoull(argv[optind + 1], &endp, 10);
	if (errno || *endp || argv[optind + 1][0] < '0' ||
	    argv[optind + 1][0] > '9' || pos > INT64_MAX) {
		rl_log_opts_free(&lopts);
		return tool_usage_error(usage, "log skip: bad POSITION \"%s\"",
					argv[optind + 1]);
	}
	if (!confirm) {
		rl_log_opts_free(&lopts);
		return tool_usage_error(usage, "log skip: what the record at "
					"position %" PRIu64 " of %s holds is "
					"lost for good on every replica: say "
					"--confirm", pos, which);
	}

	if (rl_log_open(uri, RL_LOG_WRITE, &lopts, &log, &err) < 0) {
		tool_error("log skip", "%s%s", err.msg, err.code == EBUSY ?
			   " (stop the mount first)" : "");
		rl_log_opts_free(&lopts);
		return 1;
	}
	if (catalog_scan(log, &nm, &epoch, &cat_end) < 0)
		goto out;
	d = NULL;
	for (size_t i = 0; i < nm.n && !d; i++) {
		char u[RL_UUID_STRLEN + 1];

		rl_uuid_format(&nm.v[i].uuid, u);
		if (strcmp(nm.v[i].name, which) == 0 || strcmp(u, which) == 0)
			d = &nm.v[i];
	}
	if (!d) {
		tool_error("log skip", "no disk \"%s\" in the log's catalog",
			   which);
		goto out;
	}
	if (rl_log_stream(log, &d->uuid, &ds, &err) < 0 ||
	    rl_log_end(ds, &disk_end) < 0) {
		tool_error("log skip", "%s: no stream in the log", d->name);
		goto out;
	}
	if (pos >= disk_end) {
		tool_error("log skip", "%s: position %" PRIu64 " is not in the "
			   "log (its durable end is %" PRIu64 "): nothing to "
			   "skip", d->name, pos, disk_end);
		goto out;
	}
	gethostname(host, sizeof(host) - 1);
	pw = getpwuid(geteuid());
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	snprintf(note, sizeof(note), "by %s@%s at %s: %s", pw ? pw->pw_name :
		 "?", host, when, reason[0] ? reason : "(no reason given)");
	rec.disk = d->uuid;
	rec.offset = pos;
	rec.epoch = epoch;
	rec.data = note;
	rec.data_len = strlen(note);
	len = rl_record_encode(&rec, 0, buf, sizeof(buf), &err);
	if (len < 0 || rl_log_stream(log, NULL, &cs, &err) < 0) {
		tool_error("log skip", "%s", err.msg);
		goto out;
	}
	at = rl_log_append_sync(cs, buf, (size_t)len);
	if (at < 0) {
		tool_error("log skip", "catalog: log append failed: %s",
			   strerror((int)-at));
		goto out;
	}
	printf("%s: position %" PRIu64 " is skipped by every applier from now "
	       "on (catalog position %" PRId64 "): %s\n", d->name, pos, at,
	       note);
	status = 0;
out:
	free(nm.v);
	rl_log_close(log);
	rl_log_opts_free(&lopts);
	return status;
}

int cmd_log(int argc, char **argv)
{
	if (argc < 2)
		return tool_usage_error(usage, "log: expected dump or bench");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "dump") == 0)
		return log_dump(argc - 1, argv + 1);
	if (strcmp(argv[1], "skip") == 0)
		return log_skip(argc - 1, argv + 1);
	if (strcmp(argv[1], "bench") == 0)
		return cmd_log_bench(argc - 1, argv + 1);
	return tool_usage_error(usage, "log: unknown subcommand \"%s\"",
				argv[1]);
}
