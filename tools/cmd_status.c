/* repdisk status: each disk of a data directory, its size, the position
 * its image holds, the log's end and the lag; then each follower that
 * published its positions in the log (replog.h, "follower positions"):
 * the position it holds durably of each disk, its lag and the age of its
 * report.  Reads only: it takes no lock and changes nothing, so it runs
 * beside a mount or a follower. */
#include "repdisk.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static const char usage[] =
	"usage: repdisk status [--log URI] [--json] [LOG OPTIONS] DATADIR\n"
	"\n"
	"Shows each disk of DATADIR: name, uuid, size, the log position its\n"
	"image holds (applied, as of its last checkpoint), the log's durable\n"
	"end and the lag between them, in records.\n"
	"\n"
	"With a log, then each follower that published its positions there:\n"
	"for each disk, the position the follower holds durably, its lag\n"
	"behind the log's end in records and bytes (file log), how long it\n"
	"has been behind (since it last held all the log had, in seconds),\n"
	"and the age of its last report in\n"
	"seconds (a follower reports at most once a second while it applies,\n"
	"and every 30 s while nothing changes).  A disk the follower has not\n"
	"reported has position \"-\".\n"
	"\n"
	"  -l, --log URI   the log to compare with (default: file:DATADIR/.repdisk/log\n"
	"                  when it exists)\n"
	"      --json      one JSON object instead of tables\n"
	"  -h, --help      show this help\n"
	"\n"
	"Log options (kafka; the file log ignores them):\n"
	"      --namespace NS          topics repdisk.NS.* (default \"default\")\n"
	"  -o kafka.PROP=VALUE         a librdkafka property (TLS, SASL, ...)\n"
	"      --kafka-config FILE     PROP=VALUE lines, for secrets\n"
	"      --key-file FILE         the deployment's keys (repdisk key): seal\n"
	"                              new records, refuse others\n"
	"      --write-timeout SECS    accepted, unused\n"
	"\n"
	"Exit status: 0, 1 when the data directory or the log cannot be read\n"
	"(what could be read is still shown), 2 on a usage error.\n"
	"\n"
	"Positions skipped with `repdisk log skip` are listed after the disks,\n"
	"with who skipped them, when and why.\n";

/* --json is built with jansson, which escapes what a name or path may
 * hold (quotes, tabs, control bytes).  Strings that are not UTF-8 (a path
 * is bytes) are kept as they are rather than dropped. */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);

	return j ? j : json_string_nocheck(s);
}

/* A column of text ("-" when unknown) as a JSON number or null. */
static json_t *jnum(const char *s)
{
	if (strcmp(s, "-") == 0)
		return json_null();
	if (strchr(s, '.'))
		return json_real(strtod(s, NULL));
	return json_integer((json_int_t)strtoll(s, NULL, 10));
}

/* Log ends, asked once per stream (a round trip each on Kafka). */
struct ends {
	struct log_end {
		struct rl_uuid disk;	/* nil: the catalog */
		bool have;
		uint64_t end;
	} *v;
	size_t n, cap;
	struct rl_log *log;
};

/* The durable end of a disk's stream (NULL: the catalog's); false when
 * there is no log or no such stream. */
static bool log_end(struct ends *e, const struct rl_uuid *disk, uint64_t *end)
{
	static const struct rl_uuid nil;
	struct rl_stream *s;
	struct log_end x = { .disk = disk ? *disk : nil };

	for (size_t i = 0; i < e->n; i++) {
		if (rl_uuid_eq(&e->v[i].disk, &x.disk)) {
			*end = e->v[i].end;
			return e->v[i].have;
		}
	}
	if (e->log && rl_log_stream(e->log, disk, &s, NULL) == 0 &&
	    rl_log_end(s, &x.end, NULL) == 0)
		x.have = true;
	if (rl_grow(&e->v, &e->cap, e->n + 1, sizeof(*e->v)) == 0)
		e->v[e->n++] = x;
	*end = x.end;
	return x.have;
}

/* One follower's position in one stream, as text columns. */
struct fpos {
	char pos[24], end[24], lag[24], bytes[24], behind[24];
};

static void fpos_fill(struct ends *e, const struct rl_positions *p,
		      const struct rl_uuid *disk, struct fpos *out)
{
	const struct rl_position *rp = rl_positions_find(p, disk);
	uint64_t end = 0;
	bool have_end = log_end(e, disk, &end);

	snprintf(out->pos, sizeof(out->pos), "-");
	snprintf(out->end, sizeof(out->end), "-");
	snprintf(out->lag, sizeof(out->lag), "-");
	snprintf(out->bytes, sizeof(out->bytes), "-");
	snprintf(out->behind, sizeof(out->behind), "-");
	if (rp)
		snprintf(out->pos, sizeof(out->pos), "%" PRIu64, rp->next_pos);
	if (have_end) {
		uint64_t at = rp ? rp->next_pos : 0, bytes;
		struct rl_stream *s;

		snprintf(out->end, sizeof(out->end), "%" PRIu64, end);
		snprintf(out->lag, sizeof(out->lag), "%" PRIu64,
			 end > at ? end - at : 0);
		/* lag in bytes: where the log can tell (file log) */
		if (end <= at)
			snprintf(out->bytes, sizeof(out->bytes), "0");
		else if (disk && rl_log_stream(e->log, disk, &s, NULL) == 0 &&
			 rl_log_bytes_from(s, at, &bytes, NULL) == 0)
			snprintf(out->bytes, sizeof(out->bytes), "%" PRIu64,
				 bytes);
		/* lag in time: since the follower last held all the log had
		 * (clocks of two hosts may disagree: never negative) */
		if (end <= at) {
			snprintf(out->behind, sizeof(out->behind), "0.0");
		} else if (rp && rp->caught_up_ms > 0) {
			int64_t d = rl_clock_ms(CLOCK_REALTIME) - rp->caught_up_ms;

			snprintf(out->behind, sizeof(out->behind), "%.1f",
				 d > 0 ? (double)d / 1000 : 0.0);
		}
	}
}

/* The disks shown for follower p: those of DATADIR's catalog (so one that
 * p has not reported shows), then those only p reported, by uuid.  Calls
 * fn for each; returns how many. */
static size_t follower_disks(const struct rl_positions *p,
			     const struct rl_disk_info *disks, size_t n,
			     void (*fn)(void *ctx, const struct rl_uuid *u,
					const char *name, size_t i),
			     void *ctx)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		fn(ctx, &disks[i].uuid, disks[i].name, k++);
	for (size_t i = 0; i < p->n; i++) {
		const struct rl_uuid *u = &p->pos[i].disk;
		bool known = rl_uuid_is_nil(u);
		char s[RL_UUID_STRLEN + 1];

		for (size_t j = 0; j < n && !known; j++)
			known = rl_uuid_eq(&disks[j].uuid, u);
		if (known)
			continue;
		rl_uuid_format(u, s);
		fn(ctx, u, s, k++);
	}
	return k;
}

/* ------------------------------------------------------------ options */

struct status_args {
	const char *uri, *datadir;
	bool json;
	struct rl_log_opts lopts;
};

/* TOOL_GO_ON, or the exit status to return (--help, a usage error). */
static int status_parse(int argc, char **argv, struct status_args *a)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		CLI_LOG_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c, rc;

	while ((c = getopt_long(argc, argv, "l:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			a->uri = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		default:
			rc = tool_option("status", usage, &a->lopts, c, optarg);
			if (rc != TOOL_GO_ON)
				return rc;
		}
	}
	if (optind + 1 != argc)
		return tool_usage_error(usage, "status: expected one DATADIR");
	a->datadir = argv[optind];
	return TOOL_GO_ON;
}

/* ------------------------------------------------------------- result */

/* What status found, for either rendering.  Text columns ("-": unknown)
 * are kept as text: the table prints them, the JSON makes numbers. */
struct disk_row {
	const char *name;		/* in status_result.info */
	char uuid[RL_UUID_STRLEN + 1];
	long long size;			/* -1: no image */
	uint64_t applied, epoch;
	char end[24], lag[24];
};

struct skip_row {
	char name[RL_NAME_MAX + 1];	/* the uuid if the catalog has none */
	char uuid[RL_UUID_STRLEN + 1];
	uint64_t pos;
	const char *note;		/* in the catalog */
};

struct fdisk_row {
	char name[RL_NAME_MAX + 1];
	char uuid[RL_UUID_STRLEN + 1];
	struct fpos f;
};

struct follower {
	const struct rl_positions *p;
	double age;			/* of its report, in seconds */
	struct fpos cat;		/* its catalog position */
	struct fdisk_row *rows;
	size_t n;
};

struct status_result {
	bool shown;		/* got as far as the disks: something to show */
	const char *uri;	/* NULL: no log */
	char uri_shown[PATH_MAX + 64];	/* redacted */
	struct disk_row *disks;
	size_t n;
	struct skip_row *skips;
	size_t nskips;
	struct follower *followers;
	int nf;			/* -1: none could be listed */
	int status;
	char uri_default[PATH_MAX];	/* file:DATADIR/.repdisk/log */
	/* what the rows point into */
	struct rl_catalog *cat;
	struct rl_disk_info *info;
	struct rl_log *log;
	struct rl_positions *fp;
	int nfp;		/* positions read into fp (followers: as many) */
	struct ends ends;
};

static void status_result_free(struct status_result *r)
{
	for (int i = 0; r->followers && i < r->nfp; i++)
		free(r->followers[i].rows);
	free(r->followers);
	if (r->nfp > 0)
		rl_positions_free(r->fp, (size_t)r->nfp);
	free(r->ends.v);
	free(r->disks);
	free(r->skips);
	free(r->info);
	rl_catalog_close(r->cat);
	rl_log_close(r->log);
}

/* ---------------------------------------------------------------- work */

static void follower_row(void *opaque, const struct rl_uuid *u,
			 const char *name, size_t i)
{
	struct status_result *r = opaque;
	struct follower *f = &r->followers[r->nf];
	struct fdisk_row *row = &f->rows[i];

	snprintf(row->name, sizeof(row->name), "%s", name);
	rl_uuid_format(u, row->uuid);
	fpos_fill(&r->ends, f->p, u, &row->f);
	f->n = i + 1;
}

/* The followers' rows, one follower for each of the r->nfp positions. */
static int status_followers(struct status_result *r)
{
	int64_t now = rl_clock_ms(CLOCK_REALTIME);

	r->followers = calloc((size_t)r->nfp, sizeof(*r->followers));
	if (!r->followers)
		return -1;
	for (r->nf = 0; r->nf < r->nfp; r->nf++) {
		struct follower *f = &r->followers[r->nf];
		const struct rl_positions *p = &r->fp[r->nf];

		f->p = p;
		/* clocks of two hosts may disagree: never a negative age */
		f->age = now > p->time_ms ? (double)(now - p->time_ms) / 1000 :
			 0;
		f->rows = calloc(r->n + p->n + 1, sizeof(*f->rows));
		if (!f->rows)
			return -1;
		follower_disks(p, r->info, r->n, follower_row, r);
		fpos_fill(&r->ends, p, NULL, &f->cat);
	}
	return 0;
}

/* The disks of a->datadir, what the log says of them, the skipped
 * positions and the followers, into r.  Errors are reported as met;
 * r->status is the exit status. */
static void status_run(const struct status_args *a, struct status_result *r)
{
	const char *datadir = a->datadir;
	char ckpt_dir[PATH_MAX];
	const struct rl_skip *sk;
	struct rl_err err;
	struct stat st;
	bool log_failed = false;

	r->status = 1;
	r->nf = r->nfp = -1;
	r->uri = a->uri;
	if (stat(datadir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		tool_error("status", "data directory %s: %s", datadir,
			   errno ? strerror(errno) : "not a directory");
		return;
	}
	if (!r->uri) {
		char def[PATH_MAX];

		snprintf(def, sizeof(def), "%s/.repdisk/log", datadir);
		if (access(def, F_OK) == 0) {
			tool_default_log(datadir, r->uri_default,
					 sizeof(r->uri_default));
			r->uri = r->uri_default;
		}
	}
	if (rl_catalog_open(datadir, &r->cat, &err) < 0) {
		tool_error("status", "%s", err.msg);
		return;
	}
	if (r->uri && rl_log_open(r->uri, 0, &a->lopts, &r->log, &err) < 0) {
		/* what the data directory holds is still worth showing, but
		 * the answer is incomplete: the exit status says so */
		tool_error("status", "%s (showing the data directory alone)",
			   err.msg);
		r->log = NULL;
		log_failed = true;
	}
	r->ends.log = r->log;
	if (r->log) {
		r->nfp = rl_positions_list(r->log, &r->fp, &err);
		if (r->nfp < 0)
			tool_error("status", "%s (showing no followers)",
				   err.msg);
	}
	r->n = rl_catalog_disks(r->cat, NULL, 0);
	r->info = calloc(r->n ? r->n : 1, sizeof(*r->info));
	r->disks = calloc(r->n ? r->n : 1, sizeof(*r->disks));
	if (!r->info || !r->disks) {
		tool_error("status", "out of memory");
		return;
	}
	r->n = rl_catalog_disks(r->cat, r->info, r->n);
	if (r->uri)
		rl_redact(r->uri, r->uri_shown, sizeof(r->uri_shown));
	snprintf(ckpt_dir, sizeof(ckpt_dir), "%s/.repdisk/ckpt", datadir);

	for (size_t i = 0; i < r->n; i++) {
		const struct rl_disk_info *d = &r->info[i];
		struct disk_row *row = &r->disks[i];
		char path[PATH_MAX];
		struct rl_checkpoint ck;
		uint64_t end = 0;
		int rc;

		row->name = d->name;
		rl_uuid_format(&d->uuid, row->uuid);
		snprintf(row->end, sizeof(row->end), "-");
		snprintf(row->lag, sizeof(row->lag), "-");
		row->size = -1;
		snprintf(path, sizeof(path), "%s/%s", datadir, d->name);
		if (stat(path, &st) == 0)
			row->size = (long long)st.st_size;
		rc = rl_checkpoint_read(ckpt_dir, &d->uuid, &ck, &err);
		if (rc < 0 && rc != -ENOENT) {
			tool_error("status", "%s", err.msg);
			memset(&ck, 0, sizeof(ck));
		}
		if (log_end(&r->ends, &d->uuid, &end)) {
			snprintf(row->end, sizeof(row->end), "%" PRIu64, end);
			snprintf(row->lag, sizeof(row->lag), "%" PRIu64,
				 end > ck.next_pos ? end - ck.next_pos : 0);
		}
		row->applied = ck.next_pos;
		row->epoch = ck.epoch;
	}

	/* positions skipped with repdisk log skip: an audit, always shown */
	r->nskips = rl_catalog_skips(r->cat, &sk);
	r->skips = calloc(r->nskips ? r->nskips : 1, sizeof(*r->skips));
	if (!r->skips) {
		tool_error("status", "out of memory");
		return;
	}
	for (size_t i = 0; i < r->nskips; i++) {
		struct skip_row *row = &r->skips[i];
		struct rl_disk_info di;

		rl_uuid_format(&sk[i].disk, row->uuid);
		if (rl_catalog_find_uuid(r->cat, &sk[i].disk, &di) < 0)
			snprintf(di.name, sizeof(di.name), "%s", row->uuid);
		snprintf(row->name, sizeof(row->name), "%s", di.name);
		row->pos = sk[i].pos;
		row->note = sk[i].note;
	}
	if (r->nfp > 0 && status_followers(r) < 0) {
		tool_error("status", "out of memory");
		return;
	}
	r->nf = r->nfp;		/* -1 when they could not be listed */
	r->shown = true;
	r->status = log_failed ? 1 : 0;
}

/* ------------------------------------------------------------- output */

static void status_text(const struct status_result *r)
{
	printf("%-24s %-36s %14s %10s %10s %8s %6s\n", "NAME", "UUID",
	       "SIZE", "APPLIED", "LOG END", "LAG", "EPOCH");
	for (size_t i = 0; i < r->n; i++) {
		const struct disk_row *d = &r->disks[i];

		printf("%-24s %-36s %14lld %10" PRIu64 " %10s %8s %6" PRIu64
		       "\n", d->name, d->uuid, d->size, d->applied, d->end,
		       d->lag, d->epoch);
	}
	for (size_t i = 0; i < r->nskips; i++)
		printf("%s: log position %" PRIu64 " skipped %s\n",
		       r->skips[i].name, r->skips[i].pos, r->skips[i].note);
	if (r->nf <= 0)
		return;
	printf("\n%-24s %-36s %10s %10s %8s %12s %9s %8s\n",
	       "FOLLOWER", "DISK", "POSITION", "LOG END", "LAG", "BYTES",
	       "BEHIND(S)", "AGE(S)");
	for (int i = 0; i < r->nf; i++) {
		const struct follower *f = &r->followers[i];

		for (size_t j = 0; j < f->n; j++) {
			const struct fpos *p = &f->rows[j].f;

			printf("%-24s %-36s %10s %10s %8s %12s %9s %8.1f\n",
			       f->p->name, f->rows[j].name, p->pos, p->end,
			       p->lag, p->bytes, p->behind, f->age);
		}
		if (f->n == 0)
			printf("%-24s %-36s %10s %10s %8s %12s %9s %8.1f\n",
			       f->p->name, "-", "-", "-", "-", "-", "-", f->age);
	}
}

static json_t *follower_json(const struct follower *f)
{
	json_t *rows = json_array();
	char age[32];

	for (size_t j = 0; j < f->n; j++) {
		const struct fpos *p = &f->rows[j].f;

		json_array_append_new(rows, json_pack(
			"{s:o, s:s, s:o, s:o, s:o, s:o, s:o}",
			"name", jstr(f->rows[j].name), "uuid", f->rows[j].uuid,
			"position", jnum(p->pos), "log_end", jnum(p->end),
			"lag", jnum(p->lag), "lag_bytes", jnum(p->bytes),
			"behind_s", jnum(p->behind)));
	}
	snprintf(age, sizeof(age), "%.3f", f->age);
	return json_pack("{s:o, s:I, s:o, s:{s:o, s:o, s:o}, s:o}",
			 "name", jstr(f->p->name), "time_ms",
			 (json_int_t)f->p->time_ms, "age", jnum(age),
			 "catalog", "position", jnum(f->cat.pos), "log_end",
			 jnum(f->cat.end), "lag", jnum(f->cat.lag),
			 "disks", rows);
}

/* 0, or -1 (out of memory: nothing printed). */
static int status_json(const struct status_result *r, const char *datadir)
{
	json_t *root, *disks, *skips, *fl;

	root = json_pack("{s:o, s:o, s:[]}", "datadir", jstr(datadir),
			 "log", r->uri ? jstr(r->uri_shown) : json_null(),
			 "disks");
	if (!root)
		return -1;
	disks = json_object_get(root, "disks");
	for (size_t i = 0; i < r->n; i++) {
		const struct disk_row *d = &r->disks[i];

		json_array_append_new(disks, json_pack(
			"{s:o, s:s, s:I, s:I, s:o, s:o, s:I}",
			"name", jstr(d->name), "uuid", d->uuid,
			"size", (json_int_t)d->size, "applied",
			(json_int_t)d->applied, "log_end", jnum(d->end),
			"lag", jnum(d->lag), "epoch", (json_int_t)d->epoch));
	}
	skips = json_array();
	for (size_t i = 0; i < r->nskips; i++)
		json_array_append_new(skips, json_pack(
			"{s:o, s:s, s:I, s:o}", "name", jstr(r->skips[i].name),
			"uuid", r->skips[i].uuid, "position",
			(json_int_t)r->skips[i].pos, "note",
			jstr(r->skips[i].note)));
	json_object_set_new(root, "skipped", skips);
	fl = r->nf < 0 ? json_null() : json_array();
	for (int i = 0; i < r->nf; i++)
		json_array_append_new(fl, follower_json(&r->followers[i]));
	json_object_set_new(root, "followers", fl);
	/* ", " and ": " between items, in the order built */
	json_dumpf(root, stdout, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
	putchar('\n');
	json_decref(root);
	return 0;
}

int cmd_status(int argc, char **argv)
{
	struct status_args a = { 0 };
	struct status_result r = { 0 };
	int rc = status_parse(argc, argv, &a);

	if (rc == TOOL_GO_ON) {
		status_run(&a, &r);
		rc = r.status;
		if (r.shown && !a.json)
			status_text(&r);
		if (r.shown && a.json && status_json(&r, a.datadir) < 0) {
			tool_error("status", "out of memory");
			rc = 1;
		}
	}
	status_result_free(&r);
	rl_log_opts_free(&a.lopts);
	return rc;
}
