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
	size_t n;
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
	    rl_log_end(s, &x.end) == 0)
		x.have = true;
	void *v = realloc(e->v, (e->n + 1) * sizeof(*e->v));

	if (v) {
		e->v = v;
		e->v[e->n++] = x;
	}
	*end = x.end;
	return x.have;
}

/* One follower's position in one stream, as text columns. */
struct fpos {
	char pos[24], end[24], lag[24], bytes[24], behind[24];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
			 rl_log_bytes_from(s, at, &bytes) == 0)
			snprintf(out->bytes, sizeof(out->bytes), "%" PRIu64,
				 bytes);
		/* lag in time: since the follower last held all the log had
		 * (clocks of two hosts may disagree: never negative) */
		if (end <= at) {
			snprintf(out->behind, sizeof(out->behind), "0.0");
		} else if (rp && rp->caught_up_ms > 0) {
			int64_t d = now_ms() - rp->caught_up_ms;

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

struct row_ctx {
	struct ends *e;
	const struct rl_positions *p;
	double age;
	json_t *rows;		/* --json: the follower's disks; else NULL */
};

static void follower_row(void *opaque, const struct rl_uuid *u,
			 const char *name, size_t i)
{
	struct row_ctx *c = opaque;
	struct fpos f;

	(void)i;
	fpos_fill(c->e, c->p, u, &f);
	if (c->rows) {
		char s[RL_UUID_STRLEN + 1];

		rl_uuid_format(u, s);
		json_array_append_new(c->rows, json_pack(
			"{s:o, s:s, s:o, s:o, s:o, s:o, s:o}",
			"name", jstr(name), "uuid", s, "position", jnum(f.pos),
			"log_end", jnum(f.end), "lag", jnum(f.lag),
			"lag_bytes", jnum(f.bytes), "behind_s",
			jnum(f.behind)));
	} else {
		printf("%-24s %-36s %10s %10s %8s %12s %9s %8.1f\n",
		       c->p->name, name, f.pos, f.end, f.lag, f.bytes,
		       f.behind, c->age);
	}
}

/* The followers as table rows, or (json non-NULL) appended to json. */
static void show_followers(struct ends *e, const struct rl_positions *fp,
			   size_t nf, const struct rl_disk_info *disks,
			   size_t n, json_t *json)
{
	struct timespec ts;
	int64_t now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (!json && nf > 0)
		printf("\n%-24s %-36s %10s %10s %8s %12s %9s %8s\n",
		       "FOLLOWER", "DISK", "POSITION", "LOG END", "LAG", "BYTES",
		       "BEHIND(S)", "AGE(S)");
	for (size_t i = 0; i < nf; i++) {
		/* clocks of two hosts may disagree: never a negative age */
		struct row_ctx c = { e, &fp[i], now > fp[i].time_ms ?
				     (double)(now - fp[i].time_ms) / 1000 : 0,
				     json ? json_array() : NULL };
		struct fpos cat;
		char age[32];

		if (follower_disks(&fp[i], disks, n, follower_row, &c) == 0 &&
		    !json)
			printf("%-24s %-36s %10s %10s %8s %12s %9s %8.1f\n",
			       fp[i].name, "-", "-", "-", "-", "-", "-", c.age);
		if (!json)
			continue;
		fpos_fill(e, &fp[i], NULL, &cat);
		snprintf(age, sizeof(age), "%.3f", c.age);
		json_array_append_new(json, json_pack(
			"{s:o, s:I, s:o, s:{s:o, s:o, s:o}, s:o}",
			"name", jstr(fp[i].name), "time_ms",
			(json_int_t)fp[i].time_ms, "age", jnum(age),
			"catalog", "position", jnum(cat.pos), "log_end",
			jnum(cat.end), "lag", jnum(cat.lag), "disks", c.rows));
	}
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		CLI_LOG_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *uri = NULL, *datadir;
	char def[PATH_MAX], ckpt_dir[PATH_MAX];
	struct rl_catalog *cat = NULL;
	struct rl_disk_info *disks = NULL;
	struct rl_log *log = NULL;
	struct rl_log_opts lopts = { 0 };
	struct rl_positions *fp = NULL;
	struct ends ends = { 0 };
	struct rl_err err;
	bool json = false;
	size_t n;
	int c, rc, nf = -1, status = 1;
	bool log_failed = false;
	json_t *jroot = NULL;

	while ((c = getopt_long(argc, argv, "l:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			uri = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'N':
		case 'W':
		case 'K':
		case 'o':
			if (cli_log_option(&lopts, c, optarg,
					    &err) < 0) {
				rl_log_opts_free(&lopts);
				return tool_usage_error(usage, "status: %s",
							err.msg);
			}
			break;
		case 'h':
			rl_log_opts_free(&lopts);
			fputs(usage, stdout);
			return 0;
		default:
			rl_log_opts_free(&lopts);
			return tool_usage_error(usage, "status: bad option");
		}
	}
	if (optind + 1 != argc) {
		rl_log_opts_free(&lopts);
		return tool_usage_error(usage, "status: expected one DATADIR");
	}
	datadir = argv[optind];

	struct stat st;

	if (stat(datadir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		tool_error("status", "data directory %s: %s", datadir,
			   errno ? strerror(errno) : "not a directory");
		goto out;
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
		goto out;
	}
	if (uri && rl_log_open(uri, 0, &lopts, &log, &err) < 0) {
		/* what the data directory holds is still worth showing, but
		 * the answer is incomplete: the exit status says so */
		tool_error("status", "%s (showing the data directory alone)",
			   err.msg);
		log = NULL;
		log_failed = true;
	}
	ends.log = log;
	if (log) {
		nf = rl_positions_list(log, &fp, &err);
		if (nf < 0)
			tool_error("status", "%s (showing no followers)",
				   err.msg);
	}
	n = rl_catalog_disks(cat, NULL, 0);
	disks = calloc(n ? n : 1, sizeof(*disks));
	if (!disks) {
		tool_error("status", "out of memory");
		goto out;
	}
	n = rl_catalog_disks(cat, disks, n);
	snprintf(ckpt_dir, sizeof(ckpt_dir), "%s/.repdisk/ckpt", datadir);

	if (json) {
		char shown[PATH_MAX + 64];

		if (uri)
			rl_redact(uri, shown, sizeof(shown));
		jroot = json_pack("{s:o, s:o, s:[]}", "datadir", jstr(datadir),
				  "log", uri ? jstr(shown) : json_null(),
				  "disks");
		if (!jroot) {
			tool_error("status", "out of memory");
			goto out;
		}
	} else {
		printf("%-24s %-36s %14s %10s %10s %8s %6s\n", "NAME", "UUID",
		       "SIZE", "APPLIED", "LOG END", "LAG", "EPOCH");
	}
	for (size_t i = 0; i < n; i++) {
		char u[RL_UUID_STRLEN + 1], path[PATH_MAX];
		char end_s[24] = "-", lag_s[24] = "-";
		struct rl_checkpoint ck;
		uint64_t end = 0;
		bool have_end;
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
		have_end = log_end(&ends, &disks[i].uuid, &end);
		if (have_end) {
			snprintf(end_s, sizeof(end_s), "%" PRIu64, end);
			snprintf(lag_s, sizeof(lag_s), "%" PRIu64,
				 end > ck.next_pos ? end - ck.next_pos : 0);
		}
		if (json) {
			json_array_append_new(json_object_get(jroot, "disks"),
				json_pack("{s:o, s:s, s:I, s:I, s:o, s:o, s:I}",
					  "name", jstr(disks[i].name), "uuid", u,
					  "size", (json_int_t)size, "applied",
					  (json_int_t)ck.next_pos, "log_end",
					  jnum(end_s), "lag", jnum(lag_s),
					  "epoch", (json_int_t)ck.epoch));
		} else {
			printf("%-24s %-36s %14lld %10" PRIu64 " %10s %8s %6"
			       PRIu64 "\n", disks[i].name, u, size, ck.next_pos,
			       end_s, lag_s, ck.epoch);
		}
	}
	/* positions skipped with repdisk log skip: an audit, always shown */
	{
		const struct rl_skip *sk;
		size_t ns = rl_catalog_skips(cat, &sk);
		json_t *ja = json ? json_array() : NULL;

		for (size_t i = 0; i < ns; i++) {
			struct rl_disk_info di;
			char u[RL_UUID_STRLEN + 1];

			rl_uuid_format(&sk[i].disk, u);
			if (rl_catalog_find_uuid(cat, &sk[i].disk, &di) < 0)
				snprintf(di.name, sizeof(di.name), "%s", u);
			if (ja)
				json_array_append_new(ja, json_pack(
					"{s:o, s:s, s:I, s:o}", "name",
					jstr(di.name), "uuid", u, "position",
					(json_int_t)sk[i].pos, "note",
					jstr(sk[i].note)));
			else
				printf("%s: log position %" PRIu64 " skipped "
				       "%s\n", di.name, sk[i].pos, sk[i].note);
		}
		if (ja)
			json_object_set_new(jroot, "skipped", ja);
	}
	if (json) {
		json_t *fl = nf < 0 ? json_null() : json_array();

		if (nf > 0)
			show_followers(&ends, fp, (size_t)nf, disks, n, fl);
		json_object_set_new(jroot, "followers", fl);
		/* ", " and ": " between items, in the order built */
		json_dumpf(jroot, stdout, JSON_PRESERVE_ORDER |
			   JSON_REAL_PRECISION(12));
		putchar('\n');
	} else if (nf > 0) {
		show_followers(&ends, fp, (size_t)nf, disks, n, NULL);
	}
	status = log_failed ? 1 : 0;
out:
	if (nf > 0)
		rl_positions_free(fp, (size_t)nf);
	free(ends.v);
	free(disks);
	rl_catalog_close(cat);
	rl_log_close(log);
	rl_log_opts_free(&lopts);
	json_decref(jroot);
	return status;
}
