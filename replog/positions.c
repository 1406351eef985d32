/* Follower positions: the registry of where every follower is.
 *
 * Notes on the design
 * -------------------
 * A follower's report is small text, the same for every backend; the
 * backends only store it under the follower's name (the ops pos_put and
 * pos_scan: LOGDIR/followers/NAME for the file log, a message keyed by
 * NAME in topic repdisk.NS.followers for Kafka).  The encoding:
 *
 *   repdisk-positions 1
 *   name NAME
 *   time_ms MILLISECONDS-SINCE-1970
 *   catalog NEXT_POS
 *   disk UUID NEXT_POS
 *   disk UUID NEXT_POS
 *   ...
 *
 * NEXT_POS is the next position the follower will apply: every record
 * below it is applied to its image and durable there (fdatasync'ed and
 * checkpointed).  The follower only ever publishes positions its
 * checkpoints cover (follow.c), so a reader may trust them for retention:
 * a follower that crashes resumes from its checkpoint, at or past what it
 * reported, never before it.
 *
 * Readers ignore lines with keys they do not know and fields past the ones
 * they know, so a later writer can add lines or fields (bytes applied, the
 * time of the last applied record, for lag in bytes and time) without a
 * new version; "repdisk-positions 2" is for a change old readers must not
 * misread, and they refuse it with -EPROTO.  A report that does not parse
 * makes the whole listing fail with -EBADMSG and a message naming it:
 * retention must not guess what a follower still needs.
 *
 * The name in the report must equal the name it is stored under (file
 * name, message key): a report copied under another name is refused.
 *
 * For retention (which may drop what every follower is past): a disk that
 * a report does not name counts as position 0 for that follower (it may
 * not have attached the disk yet), and a name with no report is not a
 * follower at all, so a follower must be started (it reports after its
 * first step) before retention can keep what it needs; one gone for good
 * must be forgotten, or retention keeps everything from its position on.
 * Lag in bytes and time needs no more from the registry: the reader asks
 * the log for the bytes and the times of the records between a follower's
 * position and the end.  Kafka has message timestamps; the file log can
 * measure bytes in its segments but keeps no times yet (it would note
 * them, per segment or per group commit).  A report may also carry them
 * (see above) if reading the log is too costly.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POS_MAGIC "repdisk-positions"
#define POS_VERSION 1
#define POS_MAX_DISKS (1u << 20)	/* sanity bound of a report */

int rl_follower_name_check(const char *name, struct rl_err *err)
{
	size_t len = strlen(name);
	char c = name[0];

	if (len == 0)
		return rl_err_set(err, EINVAL, "invalid follower name: empty");
	if (len > RL_FOLLOWER_NAME_MAX)
		return rl_err_set(err, EINVAL, "invalid follower name: %zu "
				  "bytes, at most %d", len, RL_FOLLOWER_NAME_MAX);
	if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	      (c >= '0' && c <= '9')))
		return rl_err_set(err, EINVAL, "invalid follower name \"%s\": "
				  "must start with a letter or a digit", name);
	if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789._-") != len)
		return rl_err_set(err, EINVAL, "invalid follower name \"%.*s\": "
				  "only letters, digits, '.', '_' and '-'",
				  RL_FOLLOWER_NAME_MAX, name);
	return 0;
}

void rl_follower_default_name(char out[RL_FOLLOWER_NAME_MAX + 1])
{
	char host[256] = "";
	size_t i = 0;

	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	/* a leading character that may not start a name is dropped */
	for (const char *p = host; *p && i < RL_FOLLOWER_NAME_MAX; p++) {
		char c = *p;
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');

		if (i == 0 && !alnum)
			continue;
		out[i++] = alnum || c == '.' || c == '_' || c == '-' ? c : '-';
	}
	out[i] = '\0';
	if (i == 0)
		snprintf(out, RL_FOLLOWER_NAME_MAX + 1, "follower");
}

/* ------------------------------------------------------------ encoding */

static char *encode(const struct rl_positions *p, size_t *len)
{
	size_t cap = 256 + p->n * (RL_UUID_STRLEN + 64), n;
	char *buf = malloc(cap);
	const struct rl_position *cat = rl_positions_find(p, NULL);

	if (!buf)
		return NULL;
	n = (size_t)snprintf(buf, cap, POS_MAGIC " %d\nname %s\ntime_ms %" PRId64
			     "\n", POS_VERSION, p->name, p->time_ms);
	if (cat)
		n += (size_t)snprintf(buf + n, cap - n, "catalog %" PRIu64 "\n",
				      cat->next_pos);
	for (size_t i = 0; i < p->n; i++) {
		char u[RL_UUID_STRLEN + 1];

		if (rl_uuid_is_nil(&p->pos[i].disk))
			continue;
		rl_uuid_format(&p->pos[i].disk, u);
		/* the second number came later: older readers skip it */
		n += (size_t)snprintf(buf + n, cap - n, "disk %s %" PRIu64
				      " %" PRId64 "\n", u, p->pos[i].next_pos,
				      p->pos[i].caught_up_ms);
	}
	*len = n;
	return buf;
}

/* A number field: the digits, then the end of the line or a blank (readers
 * ignore trailing fields they do not know). */
static int parse_u64(const char *s, uint64_t *out)
{
	const char *end;

	return rl_parse_u64(s, UINT64_MAX, out, &end) < 0 ||
	       (*end && *end != ' ') ? -1 : 0;
}

/* Decodes buf (len bytes, not NUL-terminated) into *p (p->pos malloc'ed). */
static int pos_cmp(const void *a, const void *b)
{
	return memcmp(((const struct rl_position *)a)->disk.b,
		      ((const struct rl_position *)b)->disk.b,
		      sizeof(((const struct rl_position *)a)->disk.b));
}

static int decode(const char *name, const void *buf, size_t len,
		  const char *where, struct rl_positions *p,
		  struct rl_err *err)
{
	char *text = malloc(len + 1), *line, *save = NULL;
	size_t cap = 0;
	int lineno = 0, rc = 0;
	bool have_name = false, have_time = false;
	char why[160] = "";

	memset(p, 0, sizeof(*p));
	if (!text)
		return rl_err_set(err, ENOMEM, "out of memory");
	memcpy(text, buf, len);
	text[len] = '\0';
	if (strlen(text) != len) {
		snprintf(why, sizeof(why), "a NUL byte");
		goto bad;
	}
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *val = strchr(line, ' ');
		uint64_t v;

		lineno++;
		if (val)
			*val++ = '\0';
		if (lineno == 1) {
			if (strcmp(line, POS_MAGIC) != 0 || !val ||
			    parse_u64(val, &v) < 0) {
				snprintf(why, sizeof(why), "not a report of "
					 "follower positions");
				goto bad;
			}
			if (v != POS_VERSION) {
				free(text);
				free(p->pos);
				p->pos = NULL;
				return rl_err_set(err, EPROTO, "follower "
						  "positions %s: version %"
						  PRIu64 ", this repdisk "
						  "reads version %d", where, v,
						  POS_VERSION);
			}
			continue;
		}
		if (!val) {
			continue;	/* a key alone: unknown, ignored */
		} else if (strcmp(line, "name") == 0) {
			if (strcmp(val, name) != 0) {
				snprintf(why, sizeof(why), "it names follower "
					 "\"%.64s\"", val);
				goto bad;
			}
			have_name = true;
		} else if (strcmp(line, "time_ms") == 0) {
			if (parse_u64(val, &v) < 0 || v > INT64_MAX) {
				snprintf(why, sizeof(why), "bad time_ms");
				goto bad;
			}
			p->time_ms = (int64_t)v;
			have_time = true;
		} else if (strcmp(line, "catalog") == 0 ||
			   strcmp(line, "disk") == 0) {
			struct rl_position pos = { 0 };
			char *num = val;

			if (line[0] == 'd') {
				num = strchr(val, ' ');
				if (num)
					*num++ = '\0';
				if (!num || rl_uuid_parse(val, &pos.disk) < 0 ||
				    rl_uuid_is_nil(&pos.disk)) {
					snprintf(why, sizeof(why), "line %d: "
						 "bad disk uuid", lineno);
					goto bad;
				}
			}
			if (parse_u64(num, &pos.next_pos) < 0) {
				snprintf(why, sizeof(why), "line %d: bad "
					 "position", lineno);
				goto bad;
			}
			/* optional: when it was last caught up */
			char *t = strchr(num, ' ');

			if (t && parse_u64(t + 1, &v) == 0 && v <= INT64_MAX)
				pos.caught_up_ms = (int64_t)v;
			if (p->n >= POS_MAX_DISKS) {
				snprintf(why, sizeof(why), "too many disks");
				goto bad;
			}
			if (rl_grow(&p->pos, &cap, p->n + 1,
				    sizeof(*p->pos)) < 0) {
				rc = rl_err_set(err, ENOMEM, "out of memory");
				goto out;
			}
			p->pos[p->n++] = pos;
		}
		/* other keys: from a later repdisk, ignored */
	}
	if (lineno == 0) {
		snprintf(why, sizeof(why), "empty");
		goto bad;
	}
	if (!have_name || !have_time) {
		snprintf(why, sizeof(why), "no %s line", have_name ? "time_ms" :
			 "name");
		goto bad;
	}
	/* sorted by disk (the catalog's nil uuid first): duplicates are
	 * neighbours, and rl_positions_find() can bisect */
	if (p->n > 1)
		qsort(p->pos, p->n, sizeof(*p->pos), pos_cmp);
	for (size_t i = 1; i < p->n; i++) {
		if (rl_uuid_eq(&p->pos[i - 1].disk, &p->pos[i].disk)) {
			snprintf(why, sizeof(why), "a disk named twice");
			goto bad;
		}
	}
	p->sorted = true;
	snprintf(p->name, sizeof(p->name), "%s", name);
	goto out;
bad:
	rc = rl_err_set(err, EBADMSG, "follower positions %s: bad report: %s",
			where, why);
out:
	if (rc < 0) {
		free(p->pos);
		p->pos = NULL;
		p->n = 0;
	}
	free(text);
	return rc;
}

/* ------------------------------------------------------------ public */

int rl_positions_publish(struct rl_log *log, const struct rl_positions *p,
			 struct rl_err *err)
{
	size_t len;
	char *buf;
	int rc = rl_follower_name_check(p->name, err);

	if (rc < 0)
		return rc;
	buf = encode(p, &len);
	if (!buf)
		return rl_err_set(err, ENOMEM, "out of memory");
	rc = log->be->pos_put(log, p->name, buf, len, err);
	free(buf);
	return rc;
}

int rl_positions_forget(struct rl_log *log, const char *name,
			struct rl_err *err)
{
	int rc = rl_follower_name_check(name, err);

	return rc < 0 ? rc : log->be->pos_put(log, name, NULL, 0, err);
}

struct scan {
	struct rl_positions *v;
	size_t n, cap;
};

static int scan_one(void *opaque, const char *name, const void *buf,
		    size_t len, const char *where, struct rl_err *err)
{
	struct scan *sc = opaque;
	struct rl_err e;
	int rc;

	if (rl_follower_name_check(name, &e) < 0)
		return rl_err_set(err, EBADMSG, "follower positions %s: %s",
				  where, e.msg);
	if (rl_grow(&sc->v, &sc->cap, sc->n + 1, sizeof(*sc->v)) < 0)
		return rl_err_set(err, ENOMEM, "out of memory");
	rc = decode(name, buf, len, where, &sc->v[sc->n], err);
	if (rc == 0)
		sc->n++;
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct rl_positions *)a)->name,
		      ((const struct rl_positions *)b)->name);
}

int rl_positions_list(struct rl_log *log, struct rl_positions **out,
		      struct rl_err *err)
{
	struct scan sc = { 0 };
	int rc = log->be->pos_scan(log, scan_one, &sc, err);

	if (rc < 0) {
		rl_positions_free(sc.v, sc.n);
		return rc;
	}
	if (sc.n > 1)
		qsort(sc.v, sc.n, sizeof(*sc.v), by_name);
	*out = sc.v;
	return (int)sc.n;
}

void rl_positions_free(struct rl_positions *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].pos);
	free(v);
}

const struct rl_position *rl_positions_find(const struct rl_positions *p,
					    const struct rl_uuid *disk)
{
	static const struct rl_uuid nil;

	struct rl_position key;

	key.disk = disk ? *disk : nil;
	if (p->sorted)
		return p->n ? bsearch(&key, p->pos, p->n, sizeof(*p->pos),
				      pos_cmp) : NULL;
	for (size_t i = 0; i < p->n; i++)
		if (rl_uuid_eq(&p->pos[i].disk, &key.disk))
			return &p->pos[i];
	return NULL;
}

uint64_t rl_retention_bound(const struct rl_positions *v, size_t n,
			    const struct rl_uuid *disk, uint64_t local)
{
	uint64_t bound = local;

	for (size_t i = 0; i < n; i++) {
		const struct rl_position *p = rl_positions_find(&v[i], disk);

		/* a follower that has not reported this disk yet needs it
		 * all: a disk created after its last report, or one it has
		 * not reached */
		if (!p)
			return 0;
		if (p->next_pos < bound)
			bound = p->next_pos;
	}
	return bound;
}
