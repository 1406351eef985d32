/* The catalog: names <-> disks of a data directory, and the data
 * directory's own state under DATADIR/.repdisk/.
 *
 * Notes on the design
 * -------------------
 * The catalog stream's records (CREATE, RENAME, DELETE, SETATTR) change
 * image files' names and attributes; the map of uuid -> name, mode, owner
 * is kept in DATADIR/.repdisk/catalog, a text file replaced atomically
 * after every applied record, with the next position to apply.  Catalog
 * records are rare, so a durable state write each is cheap enough and keeps
 * recovery trivial.
 *
 * Each apply is idempotent against what a crash between the file system
 * change and the state write can leave: CREATE of a uuid already known is
 * done; a RENAME whose old name is gone and new name exists is done; a
 * DELETE of a missing file is done.  A CREATE finding a stray file of that
 * name with no checkpoint of the disk truncates it, since the disk's log
 * will be replayed from position 0 and must not land on foreign bytes.
 *
 * One writer of the catalog, as of each disk: a mount claims the catalog
 * stream with a CLAIM of the nil disk and a new epoch, and stamps its
 * catalog records with that epoch; records of an older epoch that come
 * after a newer claim are ignored by every applier (the state keeps the
 * epoch and the claim's owner), and records of an epoch no claim has
 * reached yet are refused (forged, or a bug).  Records of epoch 0 from
 * before the first claim are applied as they come.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Version 2 adds the last_seq line; version 1 files (last_seq 0) are
 * read, and written as long as no catalog record was numbered. */
#define CATALOG_MAGIC_1 "repdisk-catalog 1"
#define CATALOG_MAGIC_2 "repdisk-catalog 2"
#define STATE_MAX (16u << 20)	/* ~50k disks with long names */

/* The catalog stream: records of epoch 0 from before the first claim are
 * applied.  Writers number catalog records since the gap rules (seq 0:
 * a record of an older writer, unnumbered), and appliers hold the sealed
 * ones to their numbers (catalog_apply). */
static const struct rl_epoch_rules catalog_rules = { .claim_first = false,
						     .seq = false };
static const struct rl_epoch_rules numbered_rules = { .claim_first = false,
						      .seq = true };

struct rl_catalog {
	char *datadir;
	char *state_dir;	/* DATADIR/.repdisk */
	uint64_t next_pos;
	uint64_t epoch;			/* the newest catalog claim */
	uint64_t last_seq;		/* the last seq applied in it */
	char owner[RL_NAME_MAX + 1];	/* its host, one printable word */
	struct rl_disk_info *disks;
	size_t n, cap;
	struct rl_skip *skips;		/* positions every applier passes */
	size_t n_skips, cap_skips;
};

int rl_datadir_prepare(const char *datadir, struct rl_err *err)
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if (stat(datadir, &st) < 0)
		return rl_err_set(err, errno, "data directory %s: %s", datadir,
				  strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return rl_err_set(err, ENOTDIR, "data directory %s: not a "
				  "directory", datadir);
	if (access(datadir, W_OK) < 0)
		return rl_err_set(err, errno, "data directory %s: %s", datadir,
				  strerror(errno));
	snprintf(path, sizeof(path), "%s/.repdisk", datadir);
	rc = rl_state_dir(path, true, err);
	snprintf(path, sizeof(path), "%s/.repdisk/ckpt", datadir);
	if (rc == 0)
		rc = rl_state_dir(path, true, err);
	return rc;
}

int64_t rl_datadir_max_size(const char *datadir, struct rl_err *err)
{
	char path[PATH_MAX];
	uint64_t lo = 0, hi = INT64_MAX;	/* lo fits; hi + 1 does not */
	int fd;

	/* an unnamed file where the images are (their file system), or a
	 * named one removed at once where O_TMPFILE is not supported */
	fd = open(datadir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(path, sizeof(path), "%s/.repdisk/.size-probe", datadir);
		unlink(path);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
			  O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return rl_err_set(err, errno, "data directory %s: size probe: "
				  "%s", datadir, strerror(errno));
	if (ftruncate(fd, (off_t)hi) < 0) {
		/* binary search of the size limit: sparse, so it costs
		 * metadata only */
		while (lo < hi) {
			uint64_t mid = lo + (hi - lo + 1) / 2;

			if (ftruncate(fd, (off_t)mid) == 0) {
				lo = mid;
			} else if (errno == EFBIG || errno == EINVAL) {
				hi = mid - 1;
			} else {
				int e = errno;

				close(fd);
				return rl_err_set(err, e, "data directory %s: "
						  "size probe: %s", datadir,
						  strerror(e));
			}
		}
		hi = lo;
	}
	close(fd);
	return (int64_t)hi;
}

int rl_datadir_lock(const char *datadir, struct rl_err *err)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/.repdisk/lock", datadir);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return rl_err_set(err, errno, "%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			return rl_err_set(err, EBUSY, "data directory %s: in "
					  "use by another repdisk process",
					  datadir);
		return rl_err_set(err, e, "%s: lock: %s", path, strerror(e));
	}
	return fd;
}

/* Adds a skipped position (once), with its audit note made printable. */
static int skip_add(struct rl_catalog *cat, const struct rl_uuid *disk,
		    uint64_t pos, const char *note, size_t len)
{
	struct rl_skip *s;

	for (size_t i = 0; i < cat->n_skips; i++)
		if (cat->skips[i].pos == pos &&
		    rl_uuid_eq(&cat->skips[i].disk, disk))
			return 0;
	if (rl_grow(&cat->skips, &cat->cap_skips, cat->n_skips + 1,
		    sizeof(*cat->skips)) < 0)
		return -ENOMEM;
	s = &cat->skips[cat->n_skips++];
	s->disk = *disk;
	s->pos = pos;
	if (len >= sizeof(s->note))
		len = sizeof(s->note) - 1;
	for (size_t i = 0; i < len; i++)
		s->note[i] = note[i] >= 0x20 && note[i] < 0x7f ? note[i] : '_';
	s->note[len] = '\0';
	return 0;
}

bool rl_catalog_skipped(const struct rl_catalog *cat,
			const struct rl_uuid *disk, uint64_t pos)
{
	for (size_t i = 0; cat && i < cat->n_skips; i++)
		if (cat->skips[i].pos == pos &&
		    rl_uuid_eq(&cat->skips[i].disk, disk))
			return true;
	return false;
}

size_t rl_catalog_skips(const struct rl_catalog *cat,
			const struct rl_skip **out)
{
	*out = cat->skips;
	return cat->n_skips;
}

/* p after "UUID " (the uuid into *u), or NULL. */
static const char *scan_uuid(const char *p, struct rl_uuid *u)
{
	char s[RL_UUID_STRLEN + 1];

	if (!p || strlen(p) <= RL_UUID_STRLEN || p[RL_UUID_STRLEN] != ' ')
		return NULL;
	memcpy(s, p, RL_UUID_STRLEN);
	s[RL_UUID_STRLEN] = '\0';
	return rl_uuid_parse(s, u) == 0 ? p + RL_UUID_STRLEN + 1 : NULL;
}

/* p after "MODE " (octal permission bits, at most 0777), or NULL. */
static const char *scan_mode(const char *p, uint32_t *mode)
{
	uint32_t m = 0;
	int n = 0;

	for (; p && *p >= '0' && *p <= '7' && n < 4; p++, n++)
		m = m * 8 + (uint32_t)(*p - '0');
	if (!p || n == 0 || *p != ' ' || m > 0777)
		return NULL;
	*mode = m;
	return p + 1;
}

static struct rl_disk_info *by_uuid(const struct rl_catalog *cat,
				    const struct rl_uuid *u);
static struct rl_disk_info *by_name(const struct rl_catalog *cat,
				    const char *name);

static int state_parse(struct rl_catalog *cat, char *buf, struct rl_err *err)
{
	char *line, *save = NULL;
	bool first = true, have_pos = false, v2 = false;

	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct rl_disk_info d;
		const char *p;
		uint64_t v;

		if (first) {
			v2 = strcmp(line, CATALOG_MAGIC_2) == 0;
			if (!v2 && strcmp(line, CATALOG_MAGIC_1) != 0)
				goto bad;
			first = false;
		} else if (v2 && (p = rl_scan_lit(line, "last_seq "))) {
			if (!rl_scan_u64(p, UINT64_MAX, &cat->last_seq, '\0'))
				goto bad;
		} else if ((p = rl_scan_lit(line, "next_pos "))) {
			if (!rl_scan_u64(p, INT64_MAX, &cat->next_pos, '\0'))
				goto bad;
			have_pos = true;
		} else if ((p = rl_scan_lit(line, "epoch "))) {
			if (!rl_scan_u64(p, UINT64_MAX, &cat->epoch, '\0'))
				goto bad;
		} else if ((p = rl_scan_lit(line, "owner "))) {
			if (!*p || strlen(p) > RL_NAME_MAX)
				goto bad;
			rl_claim_owner(cat->owner, p, strlen(p));
		} else if ((p = rl_scan_lit(line, "skip "))) {
			/* skip UUID POS [NOTE] */
			p = scan_uuid(p, &d.uuid);
			if (!p || rl_parse_u64(p, INT64_MAX, &v, &p) < 0 ||
			    (*p && *p != ' '))
				goto bad;
			p += *p == ' ';
			if (skip_add(cat, &d.uuid, v, p, strlen(p)) < 0)
				return rl_err_set(err, ENOMEM, "out of memory");
		} else if ((p = rl_scan_lit(line, "disk "))) {
			/* disk UUID MODE(octal) UID GID NAME: the name is all
			 * the rest; one line per disk, one disk per name */
			p = scan_uuid(p, &d.uuid);
			p = scan_mode(p, &d.mode);
			p = rl_scan_u64(p, UINT32_MAX, &v, ' ');
			d.uid = (uint32_t)v;
			p = rl_scan_u64(p, UINT32_MAX, &v, ' ');
			d.gid = (uint32_t)v;
			if (!p || rl_name_check(p, NULL) < 0 ||
			    by_uuid(cat, &d.uuid) || by_name(cat, p))
				goto bad;
			snprintf(d.name, sizeof(d.name), "%s", p);
			if (rl_grow(&cat->disks, &cat->cap, cat->n + 1,
				    sizeof(d)) < 0)
				return rl_err_set(err, ENOMEM, "out of memory");
			cat->disks[cat->n++] = d;
		} else {
			goto bad;
		}
	}
	if (have_pos)
		return 0;
bad:
	return rl_err_set(err, EBADMSG, "%s/catalog: not a repdisk catalog "
			  "state file", cat->state_dir);
}

static int state_save(struct rl_catalog *cat, struct rl_err *err)
{
	size_t cap = 128 + cat->n * (RL_UUID_STRLEN + RL_NAME_MAX + 48) +
		     cat->n_skips * (RL_UUID_STRLEN + 32 +
				     sizeof(cat->skips[0].note)), len;
	char *buf = malloc(cap);
	int rc;

	if (!buf)
		return rl_err_set(err, ENOMEM, "out of memory");
	len = (size_t)snprintf(buf, cap, "%s\nnext_pos %" PRIu64 "\n",
			       cat->last_seq ? CATALOG_MAGIC_2 : CATALOG_MAGIC_1,
			       cat->next_pos);
	if (cat->last_seq)
		len += (size_t)snprintf(buf + len, cap - len, "last_seq %"
					PRIu64 "\n", cat->last_seq);
	if (cat->epoch)
		len += (size_t)snprintf(buf + len, cap - len, "epoch %" PRIu64
					"\nowner %s\n", cat->epoch,
					cat->owner[0] ? cat->owner : "-");
	for (size_t i = 0; i < cat->n; i++) {
		char u[RL_UUID_STRLEN + 1];
		const struct rl_disk_info *d = &cat->disks[i];

		rl_uuid_format(&d->uuid, u);
		len += (size_t)snprintf(buf + len, cap - len, "disk %s %o %u %u "
					"%s\n", u, d->mode, d->uid, d->gid,
					d->name);
	}
	for (size_t i = 0; i < cat->n_skips; i++) {
		char u[RL_UUID_STRLEN + 1];

		rl_uuid_format(&cat->skips[i].disk, u);
		len += (size_t)snprintf(buf + len, cap - len, "skip %s %" PRIu64
					" %s\n", u, cat->skips[i].pos,
					cat->skips[i].note);
	}
	rc = rl_write_atomic(cat->state_dir, "catalog", buf, len, err);
	free(buf);
	return rc;
}

void rl_catalog_close(struct rl_catalog *cat)
{
	if (!cat)
		return;
	free(cat->datadir);
	free(cat->state_dir);
	free(cat->disks);
	free(cat->skips);
	free(cat);
}

int rl_catalog_open(const char *datadir, struct rl_catalog **out,
		    struct rl_err *err)
{
	struct rl_catalog *cat = calloc(1, sizeof(*cat));
	char path[PATH_MAX], *buf = NULL;
	int n, rc = 0;

	if (!cat)
		return rl_err_set(err, ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/.repdisk", datadir);
	cat->datadir = strdup(datadir);
	cat->state_dir = strdup(path);
	buf = malloc(STATE_MAX);
	if (!cat->datadir || !cat->state_dir || !buf) {
		rc = rl_err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/catalog", cat->state_dir);
	n = rl_read_small_file(path, buf, STATE_MAX);
	if (n == -ENOENT)
		goto out;	/* a new data directory */
	if (n < 0)
		rc = rl_err_set(err, -n, "%s: %s", path, strerror(-n));
	else
		rc = state_parse(cat, buf, err);
out:
	free(buf);
	if (rc < 0) {
		rl_catalog_close(cat);
		return rc;
	}
	*out = cat;
	return 0;
}

uint64_t rl_catalog_next_pos(const struct rl_catalog *cat)
{
	return cat->next_pos;
}

size_t rl_catalog_disks(const struct rl_catalog *cat, struct rl_disk_info *out,
			size_t max)
{
	size_t n = cat->n < max ? cat->n : max;

	if (out && n)	/* cat->disks is NULL while the catalog is empty */
		memcpy(out, cat->disks, n * sizeof(*out));
	return cat->n;
}

static struct rl_disk_info *by_uuid(const struct rl_catalog *cat,
				    const struct rl_uuid *u)
{
	for (size_t i = 0; i < cat->n; i++)
		if (rl_uuid_eq(&cat->disks[i].uuid, u))
			return &cat->disks[i];
	return NULL;
}

static struct rl_disk_info *by_name(const struct rl_catalog *cat,
				    const char *name)
{
	for (size_t i = 0; i < cat->n; i++)
		if (strcmp(cat->disks[i].name, name) == 0)
			return &cat->disks[i];
	return NULL;
}

int rl_catalog_find_name(const struct rl_catalog *cat, const char *name,
			 struct rl_disk_info *out)
{
	struct rl_disk_info *d = by_name(cat, name);

	if (!d)
		return -ENOENT;
	if (out)
		*out = *d;
	return 0;
}

int rl_catalog_find_uuid(const struct rl_catalog *cat,
			 const struct rl_uuid *uuid, struct rl_disk_info *out)
{
	struct rl_disk_info *d = by_uuid(cat, uuid);

	if (!d)
		return -ENOENT;
	if (out)
		*out = *d;
	return 0;
}

static int apply_create(struct rl_catalog *cat, const struct rl_record *r,
			char *path, size_t size, struct rl_err *err)
{
	char u[RL_UUID_STRLEN + 1], ckpt[PATH_MAX];
	int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, fd;
	/* no setuid, setgid or sticky bit ever reaches an image */
	struct rl_disk_info d = { .uuid = r->disk, .mode = r->mode & 0777,
				  .uid = r->uid, .gid = r->gid };

	if (by_uuid(cat, &r->disk))
		return 0;	/* applied before a crash */
	if (by_name(cat, r->name))
		return rl_err_set(err, EBADMSG, "catalog: CREATE %s: name in "
				  "use by another disk", r->name);
	rl_uuid_format(&r->disk, u);
	snprintf(ckpt, sizeof(ckpt), "%s/ckpt/%s", cat->state_dir, u);
	if (access(ckpt, F_OK) < 0)
		flags |= O_TRUNC;	/* the log will be replayed from 0 */
	snprintf(path, size, "%s/%s", cat->datadir, r->name);
	fd = open(path, flags, 0600);
	if (fd < 0)
		return rl_err_set(err, errno, "catalog: create %s: %s", path,
				  strerror(errno));
	/* exactly the record's mode, whatever the umask (0 included) */
	if (fchmod(fd, d.mode) < 0 ||
	    (geteuid() == 0 && fchown(fd, d.uid, d.gid) < 0)) {
		int e = errno;

		close(fd);
		return rl_err_set(err, e, "catalog: %s: %s", path, strerror(e));
	}
	close(fd);
	snprintf(d.name, sizeof(d.name), "%s", r->name);
	if (rl_grow(&cat->disks, &cat->cap, cat->n + 1, sizeof(d)) < 0)
		return rl_err_set(err, ENOMEM, "out of memory");
	cat->disks[cat->n++] = d;
	return 0;
}

static int catalog_apply(struct rl_catalog *cat, const struct rl_record *r,
			 uint64_t pos, struct rl_err *err)
{
	struct rl_disk_info *d;
	char path[PATH_MAX], to[PATH_MAX], u[RL_UUID_STRLEN + 1];
	uint64_t saved_pos = cat->next_pos, saved_seq = cat->last_seq;
	uint64_t seq = cat->last_seq;	/* what it becomes if applied */
	/* sealed and numbered (a claim always is): held to its number */
	bool numbered = r->key_id && (r->type == RL_CLAIM || r->seq);
	bool stale = false;
	int rc = 0;

	if (pos != cat->next_pos)
		return rl_err_set(err, EINVAL, "catalog: position %" PRIu64
				  " applied out of order (next is %" PRIu64 ")",
				  pos, cat->next_pos);
	rl_uuid_format(&r->disk, u);
	/* names become paths here: check them again, whoever built the
	 * record (the decoder already refuses bad ones from a log) */
	if ((r->type == RL_CREATE || r->type == RL_RENAME) &&
	    (!r->name || rl_name_check(r->name, NULL) < 0))
		return rl_err_set(err, EBADMSG, "catalog: position %" PRIu64
				  ": %s with an invalid name", pos,
				  rl_type_name(r->type));
	if (r->type == RL_CLAIM && !rl_uuid_is_nil(&r->disk))
		return rl_err_set(err, EBADMSG, "catalog: position %" PRIu64
				  ": CLAIM of a disk in the catalog stream",
				  pos);
	switch (rl_epoch_judge(numbered ? &numbered_rules : &catalog_rules,
			       cat->epoch, cat->last_seq, r)) {
	case RL_EPOCH_CLAIM:
		/* as in a disk stream (apply.c, "Gaps"): a sealed claim
		 * ends the epoch before it, and is of the next epoch */
		rc = rl_claim_chain_check(&(struct rl_claim_chain){
			.what = "catalog", .kind = "catalog ",
			.epoch = cat->epoch, .last_seq = cat->last_seq,
			.check_seq = true }, r, pos, err);
		if (rc < 0)
			return rc;
		cat->epoch = r->epoch;
		seq = r->seq;
		rl_claim_owner(cat->owner, r->data, r->data_len);
		goto save;
	case RL_EPOCH_STALE:
		stale = true;	/* a fenced writer's: ignored everywhere */
		goto save;
	case RL_EPOCH_DUP:
		/* the catalog writer numbers one change at a time, and
		 * claims again after a failed one: no honest copy, and no
		 * honest hole */
		return rl_err_set(err, EBADMSG, "catalog: position %" PRIu64
				  ": a sealed %s record of catalog epoch %"
				  PRIu64 " seq %" PRIu64 ", which was applied "
				  "already: a copy of an earlier record, "
				  "replayed into the log", pos,
				  rl_type_name(r->type), r->epoch, r->seq);
	case RL_EPOCH_GAP:
		return rl_err_set(err, EBADMSG, "catalog: position %" PRIu64
				  ": a sealed %s record of catalog epoch %"
				  PRIu64 " seq %" PRIu64 ", but seq %" PRIu64
				  " is the last here: catalog records are "
				  "missing from the log (deleted?)", pos,
				  rl_type_name(r->type), r->epoch, r->seq,
				  cat->last_seq);
	case RL_EPOCH_FUTURE:
	case RL_EPOCH_UNCLAIMED:	/* does not arise in these rules */
		/* as in a disk stream: no writer claimed that epoch */
		return rl_err_set(err, EBADMSG, "catalog: position %" PRIu64
				  ": %s record of epoch %" PRIu64 ", but the "
				  "newest catalog claim is epoch %" PRIu64 ": "
				  "written by no writer that claimed the "
				  "catalog", pos, rl_type_name(r->type) ?
				  rl_type_name(r->type) : "unknown", r->epoch,
				  cat->epoch);
	case RL_EPOCH_APPLY:
		if (r->seq)
			seq = r->seq;
		break;
	}
	if (r->type == RL_CREATE) {
		rc = apply_create(cat, r, path, sizeof(path), err);
		goto save;
	}
	if (r->type == RL_SKIP) {
		/* the operator's way past a record that stops a disk: kept
		 * in the state, for every applier and for the audit */
		if (!by_uuid(cat, &r->disk))
			return rl_err_set(err, EBADMSG, "catalog: position %"
					  PRIu64 ": SKIP of unknown disk %s",
					  pos, u);
		if (skip_add(cat, &r->disk, r->offset, r->data,
			     r->data_len) < 0)
			return rl_err_set(err, ENOMEM, "out of memory");
		goto save;
	}
	d = by_uuid(cat, &r->disk);
	if (r->type != RL_RENAME && r->type != RL_DELETE &&
	    r->type != RL_SETATTR)
		return rl_err_set(err, EBADMSG, "catalog: position %" PRIu64
				  ": %s record in the catalog stream", pos,
				  rl_type_name(r->type) ? rl_type_name(r->type)
				  : "unknown");
	if (!d) {
		if (r->type == RL_DELETE)
			goto save;	/* applied before a crash */
		return rl_err_set(err, EBADMSG, "catalog: position %" PRIu64
				  ": %s of unknown disk %s", pos,
				  rl_type_name(r->type), u);
	}
	snprintf(path, sizeof(path), "%s/%s", cat->datadir, d->name);
	switch (r->type) {
	case RL_RENAME:
		if (strcmp(d->name, r->name) == 0)
			break;
		if (by_name(cat, r->name))
			return rl_err_set(err, EBADMSG, "catalog: RENAME %s to "
					  "%s: name in use by another disk",
					  d->name, r->name);
		snprintf(to, sizeof(to), "%s/%s", cat->datadir, r->name);
		if (rename(path, to) < 0 &&
		    !(errno == ENOENT && access(to, F_OK) == 0))
			return rl_err_set(err, errno, "catalog: rename %s to "
					  "%s: %s", path, to, strerror(errno));
		snprintf(d->name, sizeof(d->name), "%s", r->name);
		break;
	case RL_DELETE:
		if (unlink(path) < 0 && errno != ENOENT)
			return rl_err_set(err, errno, "catalog: unlink %s: %s",
					  path, strerror(errno));
		snprintf(to, sizeof(to), "%s/ckpt/%s", cat->state_dir, u);
		unlink(to);
		*d = cat->disks[--cat->n];
		break;
	case RL_SETATTR: {
		/* on the file itself, never through a link planted there */
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

		if (fd < 0 || fchmod(fd, r->mode & 0777) < 0 ||
		    (geteuid() == 0 && fchown(fd, r->uid, r->gid) < 0)) {
			int e = errno;

			if (fd >= 0)
				close(fd);
			return rl_err_set(err, e, "catalog: %s: %s", path,
					  e == ELOOP ? "a symbolic link (images "
					  "are plain files)" : strerror(e));
		}
		close(fd);
		d->mode = r->mode & 0777;
		d->uid = r->uid;
		d->gid = r->gid;
		break;
	}
	default:
		break;
	}
save:
	if (rc < 0)
		return rc;
	if (r->type != RL_SETATTR && r->type != RL_CLAIM &&
	    r->type != RL_SKIP && !stale) {
		rc = rl_fsync_dir(cat->datadir);
		if (rc < 0)
			return rl_err_set(err, -rc, "fsync %s: %s", cat->datadir,
					  strerror(-rc));
	}
	cat->next_pos = pos + 1;
	if (!stale)
		cat->last_seq = seq;
	rc = rl_err_layer(err, RL_ERR_STATE, state_save(cat, err));
	if (rc < 0) {
		cat->next_pos = saved_pos;
		cat->last_seq = saved_seq;
	}
	return rc < 0 ? rc : stale ? RL_IGNORED_STALE : 0;
}

int rl_catalog_apply(struct rl_catalog *cat, const struct rl_record *r,
		     uint64_t pos, struct rl_err *err)
{
	int rc = catalog_apply(cat, r, pos, err);

	/* a record that breaks the rules is the log's; the rest failed in
	 * the data directory (its state file tagged itself) */
	return rl_err_layer(err, rc == -EBADMSG || rc == -EINVAL ?
			    RL_ERR_RECORD : RL_ERR_IMAGE, rc);
}

int rl_catalog_copy_state(const char *from, const char *to,
			  struct rl_err *err)
{
	struct rl_catalog *cat;
	int rc = rl_catalog_open(from, &cat, err);	/* validates it */

	if (rc < 0)
		return rc;
	free(cat->datadir);
	free(cat->state_dir);
	cat->state_dir = NULL;	/* rl_catalog_close frees what is set */
	cat->datadir = strdup(to);
	if (cat->datadir && asprintf(&cat->state_dir, "%s/.repdisk", to) < 0)
		cat->state_dir = NULL;
	rc = cat->datadir && cat->state_dir ? state_save(cat, err) :
	     rl_err_set(err, ENOMEM, "out of memory");
	rl_catalog_close(cat);
	return rc;
}

uint64_t rl_catalog_epoch(const struct rl_catalog *cat)
{
	return cat->epoch;
}

uint64_t rl_catalog_last_seq(const struct rl_catalog *cat)
{
	return cat->last_seq;
}

const char *rl_catalog_owner(const struct rl_catalog *cat)
{
	return cat->owner;
}
