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
	"  STREAM POSITION TYPE epoch=E seq=S offset=O length=L codec=C stored=N\n"
	"      version=V [time=WRITER'S CLOCK, from version 3] [key=ID, if sealed]\n"
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
	"      --key-file FILE         the deployment's keys (repdisk key): seal\n"
	"                              new records, refuse others\n"
	"      --write-timeout SECS    accepted, unused\n";

/* Names of disks as the catalog stream says, for labels. */
struct names {
	struct rl_disk_info *v;
	size_t n, cap;
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
		if (rl_grow(&nm->v, &nm->cap, nm->n + 1, sizeof(*nm->v)) < 0)
			return;
		d = &nm->v[nm->n++];
		memset(d, 0, sizeof(*d));
		d->uuid = r->disk;
	}
	snprintf(d->name, sizeof(d->name), "%s", r->name);
}

/* A MARK's label on one line: printable ASCII as it is, other bytes as
 * \xHH (a label is the writer's, not ours to trust). */
static void print_label(const void *p, size_t len)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < len; i++)
		if (c[i] > ' ' && c[i] < 0x7f && c[i] != '\\')
			putchar(c[i]);
		else
			printf("\\x%02x", c[i]);
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
	case RL_MARK:
		if (r->length)
			printf(" offset=%" PRIu64 " length=%" PRIu64, r->offset,
			       r->length);
		printf(" label=");
		print_label(r->data, r->data_len);
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
	printf(" codec=%s stored=%u version=%u", r->codec == RL_CODEC_ZSTD ?
	       "zstd" : "none", r->stored_len, r->version);
	if (r->version >= 3) {
		time_t t = (time_t)(r->time_ns / 1000000000u);
		char when[32];
		struct tm tm;

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S",
			 gmtime_r(&t, &tm));
		printf(" time=%s.%09uZ", when,
		       (unsigned)(r->time_ns % 1000000000u));
	}
	if (r->key_id)
		printf(" key=%u", r->key_id);
	putchar('\n');
}

/* Calls fn for each record of stream s from position 0 to its durable
 * end.  Returns 0, or a negative errno with err set; *reading says
 * whether it failed on a record (else opening the reader). */
static int stream_each(struct rl_stream *s,
		       void (*fn)(void *ctx, uint64_t pos,
				  const struct rl_record *r),
		       void *ctx, bool *reading, struct rl_err *err)
{
	struct rl_reader *r;
	int rc;

	*reading = false;
	rc = rl_reader_open(s, 0, &r, err);
	if (rc < 0)
		return rc;
	for (;;) {
		struct rl_record rec;
		uint64_t pos;

		rc = rl_reader_next(r, &rec, &pos, 0, err);
		if (rc <= 0)
			break;
		fn(ctx, pos, &rec);
	}
	rl_reader_close(r);
	*reading = rc < 0;
	return rc < 0 ? rc : 0;
}

/* ---------------------------------------------------------------- dump */

struct dump_args {
	const char *uri;
	const char *which;	/* a disk's name or uuid, "catalog"; NULL */
	struct rl_log_opts lopts;
};

/* TOOL_GO_ON, or the exit status to return (--help, a usage error). */
static int dump_parse(int argc, char **argv, struct dump_args *a)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		CLI_LOG_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, "l:o:h", opts, NULL)) != -1) {
		if (c == 'l')
			a->uri = optarg;
		else if ((rc = tool_option("log dump", usage, &a->lopts, c,
					   optarg)) != TOOL_GO_ON)
			return rc;
	}
	if (!a->uri || argc - optind > 1)
		return tool_usage_error(usage, "log dump: %s", !a->uri ?
					"--log is required" :
					"at most one DISK");
	a->which = optind < argc ? argv[optind] : NULL;
	return TOOL_GO_ON;
}

/* One stream being dumped.  Records are printed as they are read, not
 * gathered: a log may hold millions. */
struct dump_ctx {
	const char *label;
	struct names *nm;	/* the catalog's names go here */
	bool catalog, print;
};

static void dump_record(void *opaque, uint64_t pos, const struct rl_record *r)
{
	struct dump_ctx *d = opaque;

	if (d->catalog)
		names_note(d->nm, r);
	if (d->print)
		print_record(d->label, pos, r);
}

/* Dumps one stream from position 0 to its durable end.  Returns 0 or -1. */
static int dump_stream(struct rl_log *log, const struct rl_uuid *disk,
		       const char *label, struct names *nm, bool print)
{
	struct dump_ctx d = { label, nm, !disk, print };
	struct rl_stream *s;
	struct rl_err err;
	bool reading = false;
	int rc;

	rc = rl_log_stream(log, disk, &s, &err);
	if (rc == -ENOENT && !disk)
		return 0;	/* no catalog yet: an empty log */
	if (rc == 0)
		rc = stream_each(s, dump_record, &d, &reading, &err);
	if (rc < 0) {
		if (reading)
			fflush(stdout);
		tool_error("log dump", "%s", err.msg);
		return -1;
	}
	return 0;
}

/* Prints the records a->which asks for; the exit status. */
static int dump_run(const struct dump_args *a)
{
	const char *which = a->which;
	struct names nm = { 0 };
	struct rl_log *log = NULL;
	struct rl_uuid *uuids = NULL;
	struct rl_err err;
	bool found = false;
	int n, status = 1;

	if (rl_log_open(a->uri, 0, &a->lopts, &log, &err) < 0) {
		tool_error("log dump", "%s", err.msg);
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

		rl_redact(a->uri, shown, sizeof(shown));
		tool_error("log dump", "no disk \"%s\" in log %s", which,
			   shown);
		status = 1;
	}
out:
	free(uuids);
	free(nm.v);
	rl_log_close(log);
	return status;
}

static int log_dump(int argc, char **argv)
{
	struct dump_args a = { 0 };
	int rc = dump_parse(argc, argv, &a);

	if (rc == TOOL_GO_ON)
		rc = dump_run(&a);
	rl_log_opts_free(&a.lopts);
	return rc;
}

/* ---------------------------------------------------------------- skip */

struct skip_args {
	const char *uri, *reason, *which;
	uint64_t pos;
	struct rl_log_opts lopts;
};

/* TOOL_GO_ON, or the exit status to return (--help, a usage error). */
static int skip_parse(int argc, char **argv, struct skip_args *a)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "confirm", no_argument, NULL, 'y' },
		{ "reason", required_argument, NULL, 'r' },
		CLI_LOG_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned long long pos;
	bool confirm = false;
	int c, rc;

	a->reason = "";
	while ((c = getopt_long(argc, argv, "l:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': a->uri = optarg; break;
		case 'y': confirm = true; break;
		case 'r': a->reason = optarg; break;
		default:
			rc = tool_option("log skip", usage, &a->lopts, c,
					 optarg);
			if (rc != TOOL_GO_ON)
				return rc;
		}
	}
	if (!a->uri || argc - optind != 2)
		return tool_usage_error(usage, "log skip: %s", !a->uri ?
					"--log is required" :
					"expected DISK and POSITION");
	a->which = argv[optind];
	if (cli_parse_u64(argv[optind + 1], &pos) < 0 || pos > INT64_MAX)
		return tool_usage_error(usage, "log skip: bad POSITION \"%s\"",
					argv[optind + 1]);
	a->pos = pos;
	if (!confirm)
		return tool_usage_error(usage, "log skip: what the record at "
					"position %" PRIu64 " of %s holds is "
					"lost for good on every replica: say "
					"--confirm", a->pos, a->which);
	return TOOL_GO_ON;
}

/* What the catalog stream says: the disks' names and the newest claim's
 * epoch (the SKIP is stamped with it, as the catalog's writer stamps its
 * records). */
struct catalog_scan {
	struct names nm;
	uint64_t epoch;
};

static void scan_record(void *opaque, uint64_t pos, const struct rl_record *r)
{
	struct catalog_scan *cs = opaque;

	(void)pos;
	names_note(&cs->nm, r);
	if (r->type == RL_CLAIM && r->epoch > cs->epoch)
		cs->epoch = r->epoch;
}

/* Reads the catalog stream into cs, and its durable end.  0 or -1. */
static int catalog_scan(struct rl_log *log, struct catalog_scan *cs,
			uint64_t *end)
{
	struct rl_stream *s;
	struct rl_err err;
	bool reading = false;
	int rc;

	rc = rl_log_stream(log, NULL, &s, &err);
	if (rc == 0)
		rc = rl_log_end(s, end, &err) < 0 ?
		     rl_err_prefix(&err, "catalog: ") : 0;
	if (rc == 0)
		rc = stream_each(s, scan_record, cs, &reading, &err);
	if (rc < 0) {
		tool_error("log skip", "%s%s", reading ? "catalog: " : "",
			   err.msg);
		return -1;
	}
	return 0;
}

/* The SKIP appended: what it says. */
struct skip_result {
	char name[RL_NAME_MAX + 1];
	int64_t at;		/* its position in the catalog stream */
	char note[512];
};

/* Appends the SKIP record a asks for; 0, or -1 said on stderr. */
static int skip_run(const struct skip_args *a, struct skip_result *res)
{
	struct catalog_scan scan = { 0 };
	struct rl_log *log = NULL;
	struct rl_record rec = { .type = RL_SKIP };
	struct rl_disk_info *d = NULL;
	struct rl_stream *ds, *cs;
	struct rl_err err;
	struct passwd *pw;
	char host[64] = "?", when[32];
	uint8_t buf[RL_RECORD_HDR_SIZE + sizeof(res->note)];
	uint64_t cat_end, disk_end;
	time_t now = time(NULL);
	ssize_t len;
	int status = -1;

	if (rl_log_open(a->uri, RL_LOG_WRITE, &a->lopts, &log, &err) < 0) {
		tool_error("log skip", "%s%s", err.msg, err.code == EBUSY ?
			   " (stop the mount first)" : "");
		return -1;
	}
	if (catalog_scan(log, &scan, &cat_end) < 0)
		goto out;
	for (size_t i = 0; i < scan.nm.n && !d; i++) {
		char u[RL_UUID_STRLEN + 1];

		rl_uuid_format(&scan.nm.v[i].uuid, u);
		if (strcmp(scan.nm.v[i].name, a->which) == 0 ||
		    strcmp(u, a->which) == 0)
			d = &scan.nm.v[i];
	}
	if (!d) {
		tool_error("log skip", "no disk \"%s\" in the log's catalog",
			   a->which);
		goto out;
	}
	if (rl_log_stream(log, &d->uuid, &ds, &err) < 0 ||
	    rl_log_end(ds, &disk_end, NULL) < 0) {
		tool_error("log skip", "%s: no stream in the log", d->name);
		goto out;
	}
	if (a->pos >= disk_end) {
		tool_error("log skip", "%s: position %" PRIu64 " is not in the "
			   "log (its durable end is %" PRIu64 "): nothing to "
			   "skip", d->name, a->pos, disk_end);
		goto out;
	}
	gethostname(host, sizeof(host) - 1);
	pw = getpwuid(geteuid());
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	snprintf(res->note, sizeof(res->note), "by %s@%s at %s: %s",
		 pw ? pw->pw_name : "?", host, when,
		 a->reason[0] ? a->reason : "(no reason given)");
	rec.disk = d->uuid;
	rec.offset = a->pos;
	rec.epoch = scan.epoch;
	rec.data = res->note;
	rec.data_len = strlen(res->note);
	len = rl_record_encode_key(&rec, 0, rl_log_seal_key(log), buf,
				   sizeof(buf), &err);
	if (len < 0 || rl_log_stream(log, NULL, &cs, &err) < 0) {
		tool_error("log skip", "%s", err.msg);
		goto out;
	}
	res->at = rl_log_append_sync(cs, buf, (size_t)len, &err);
	if (res->at < 0) {
		tool_error("log skip", "catalog: %s", err.msg);
		goto out;
	}
	snprintf(res->name, sizeof(res->name), "%s", d->name);
	status = 0;
out:
	free(scan.nm.v);
	rl_log_close(log);
	return status;
}

static int log_skip(int argc, char **argv)
{
	struct skip_args a = { 0 };
	struct skip_result res = { .at = -1 };
	int rc = skip_parse(argc, argv, &a);

	if (rc == TOOL_GO_ON) {
		rc = skip_run(&a, &res) < 0 ? 1 : 0;
		if (rc == 0)
			printf("%s: position %" PRIu64 " is skipped by every "
			       "applier from now on (catalog position %" PRId64
			       "): %s\n", res.name, a.pos, res.at, res.note);
	}
	rl_log_opts_free(&a.lopts);
	return rc;
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
