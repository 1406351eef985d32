/* The follower: catch a data directory up to a log and keep it there.
 *
 * Notes on the design
 * -------------------
 * One step applies what the log holds durably now: first the catalog
 * (so new disks exist and renamed ones have their names), then each known
 * disk from its image's next position, a bounded number of records per disk
 * so that one busy disk does not starve the others.  Images are
 * checkpointed every `checkpoint_records` applied records and by
 * rl_follower_checkpoint(); a crash anywhere costs only a replay from the
 * last checkpoint.
 *
 * A record that cannot be read (damaged) or applied (a size this file
 * system cannot hold, a full disk, ...) stops that one disk at that
 * record: nothing past it is applied, the error names the disk, the
 * segment, the byte and the position, the image keeps what was applied
 * before it, and the other disks go on (DESIGN.md, contract item 7).  The
 * stopped disk is tried again every RETRY_MS, so it resumes by itself once
 * the cause is gone (space freed, the record skipped); rl_follower_stopped()
 * counts the disks stopped.  The error's layer decides (rl_err.layer): a
 * log that does not answer (RL_ERR_LOG: -EIO, -ETIMEDOUT from its reader)
 * is not a disk's fault, so the step fails, for the caller to wait and
 * retry; a local disk error in the image (RL_ERR_IMAGE: a pwrite's EIO)
 * is that disk's, and stops it like a bad record, never to be waited for
 * as if the log would answer.  An image whose fdatasync failed is
 * doubtful past its last checkpoint (the failure is sticky, see apply.c):
 * at its retry it is closed and opened again, and replays from there.
 *
 * Every read of the log goes through replay.c's loop, with a target per
 * disk (apply, checkpoint every checkpoint_records) and one for the
 * catalog (a DELETE drops its disk first).
 *
 * Where positions are committed.  The follower's own position in each
 * stream is its image's checkpoint (DATADIR/.repdisk/ckpt/UUID), written
 * after the image was fdatasync'ed; a restart resumes there, and records
 * applied after it are applied again, in order, which leaves the same
 * bytes.  Nothing is committed in the log: Kafka offsets are not stored.
 * What the follower publishes in the log for others to see (positions.c)
 * is a copy of those checkpoints: `durable` below moves only when a
 * checkpoint returned, the catalog's position only when its state file was
 * replaced, so a report never claims a record the data directory could
 * lose.  Reports are rate-limited (publish_ms, and only when a position
 * moved or the last report is HEARTBEAT_MS old, so its age says that the
 * follower is alive): the mock cluster of the tests keeps only some 5 MiB
 * per partition.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_CHECKPOINT_RECORDS 4096
#define STEP_BUDGET 1024	/* records per disk per step */
#define DEFAULT_PUBLISH_MS 1000
#define HEARTBEAT_MS 30000	/* republish unchanged positions this often */
#define RETRY_MS 10000		/* try a stopped disk again this often */

struct follow_disk {
	struct rl_uuid uuid;
	struct rl_stream *stream;
	struct rl_image *img;
	struct rl_replay rp;		/* reads the stream into img */
	uint64_t since_ckpt;
	uint64_t durable;	/* next_pos as of the last checkpoint */
	bool at_end;		/* the last step reached the log's end */
	int64_t caught_up_ms;	/* wall clock: durable held all the log had */
	int64_t stopped_ms;	/* monotonic ms it stopped at a record; 0 no */
};

struct rl_follower {
	struct rl_log *log;
	char *datadir;
	char ckpt_dir[PATH_MAX];
	uint64_t checkpoint_records;
	struct rl_catalog *cat;
	struct rl_stream *cat_stream;	/* NULL until the catalog exists */
	struct rl_replay cat_rp;	/* reads the catalog stream into cat */
	bool cat_rp_open;
	struct follow_disk *disks;
	size_t n, cap;
	/* positions (rl_follower_publish) */
	char *name;		/* NULL: never publish */
	int publish_ms;
	int retry_ms;		/* try a stopped disk again this often */
	bool pos_changed;	/* since the last report published */
	int64_t pos_tried;	/* monotonic ms of the last attempt; 0 never */
	int64_t pos_published;	/* monotonic ms of the last report */
};

static void disk_drop(struct follow_disk *d)
{
	rl_replay_close(&d->rp);
	rl_image_close(d->img);
	d->img = NULL;
}

void rl_follower_close(struct rl_follower *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		disk_drop(&f->disks[i]);
	free(f->disks);
	if (f->cat_rp_open)
		rl_replay_close(&f->cat_rp);
	rl_catalog_close(f->cat);
	free(f->name);
	free(f->datadir);
	free(f);
}

int rl_follower_open(struct rl_log *log, const char *datadir,
		     const struct rl_follow_opts *opts,
		     struct rl_follower **out, struct rl_err *err)
{
	struct rl_follower *f = calloc(1, sizeof(*f));
	int rc;

	if (!f || !(f->datadir = strdup(datadir))) {
		free(f);
		return rl_err_set(err, ENOMEM, "out of memory");
	}
	f->log = log;
	f->checkpoint_records = opts && opts->checkpoint_records ?
				opts->checkpoint_records :
				DEFAULT_CHECKPOINT_RECORDS;
	f->publish_ms = opts && opts->publish_ms > 0 ? opts->publish_ms :
			DEFAULT_PUBLISH_MS;
	f->retry_ms = opts && opts->retry_ms > 0 ? opts->retry_ms : RETRY_MS;
	f->pos_changed = true;	/* a first report as soon as asked */
	if (opts && opts->name) {
		rc = rl_follower_name_check(opts->name, err);
		if (rc == 0 && !(f->name = strdup(opts->name)))
			rc = rl_err_set(err, ENOMEM, "out of memory");
		if (rc < 0) {
			rl_follower_close(f);
			return rc;
		}
	}
	snprintf(f->ckpt_dir, sizeof(f->ckpt_dir), "%s/.repdisk/ckpt", datadir);
	rc = rl_datadir_prepare(datadir, err);
	if (rc == 0)
		rc = rl_catalog_open(datadir, &f->cat, err);
	if (rc < 0) {
		rl_follower_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

static struct follow_disk *disk_find(struct rl_follower *f,
				     const struct rl_uuid *u)
{
	for (size_t i = 0; i < f->n; i++)
		if (rl_uuid_eq(&f->disks[i].uuid, u))
			return &f->disks[i];
	return NULL;
}

static void disk_remove(struct rl_follower *f, const struct rl_uuid *u)
{
	struct follow_disk *d = disk_find(f, u);

	if (d) {
		disk_drop(d);
		*d = f->disks[--f->n];
		f->pos_changed = true;
	}
}

/* The image's checkpoint returned: what it covers may be reported. */
static void disk_durable(struct rl_follower *f, struct follow_disk *d)
{
	uint64_t pos = rl_image_next_pos(d->img);
	struct timespec t;

	if (pos != d->durable) {
		d->durable = pos;
		f->pos_changed = true;
	}
	if (d->at_end) {
		/* everything the log had when the reader last looked is
		 * durable here now: how far behind it is starts from here */
		clock_gettime(CLOCK_REALTIME, &t);
		d->caught_up_ms = (int64_t)t.tv_sec * 1000 +
				  t.tv_nsec / 1000000;
	}
}

/* The catalog's target: a disk deleted is dropped before its files go. */
static uint64_t cat_next(void *arg)
{
	struct rl_follower *f = arg;

	return rl_catalog_next_pos(f->cat);
}

static void disk_remove(struct rl_follower *f, const struct rl_uuid *u);

static int cat_apply(void *arg, const struct rl_record *r, uint64_t pos,
		     struct rl_err *err)
{
	struct rl_follower *f = arg;
	int rc;

	if (r->type == RL_DELETE)
		disk_remove(f, &r->disk);
	rc = rl_catalog_apply(f->cat, r, pos, err);
	if (rc >= 0)
		f->pos_changed = true;	/* its state file was replaced */
	return rc;
}

/* Applies the catalog records that are durable now. */
static int step_catalog(struct rl_follower *f, struct rl_err *err)
{
	int rc;

	if (!f->cat_stream) {
		rc = rl_log_stream(f->log, NULL, &f->cat_stream, NULL);
		if (rc == -ENOENT)
			return 0;	/* nothing was ever created */
		if (rc < 0)
			return rl_err_layer(err, RL_ERR_LOG,
					    rl_err_set(err, -rc, "follow: "
						       "catalog: %s",
						       strerror(-rc)));
	}
	if (!f->cat_rp_open) {
		struct rl_replay_target t = { .what = "catalog", .arg = f,
					      .next_pos = cat_next,
					      .apply = cat_apply };

		rl_replay_init(&f->cat_rp, f->cat_stream, &t);
		f->cat_rp_open = true;
	}
	return rl_replay_run(&f->cat_rp, UINT64_MAX, 0, 0, NULL, err);
}

/* The catalog's skipped positions (repdisk log skip), as images ask. */
static bool follow_skip(void *cat, const struct rl_uuid *disk, uint64_t pos)
{
	return rl_catalog_skipped(cat, disk, pos);
}

/* Opens images and readers for catalog disks not followed yet. */
static int attach_disks(struct rl_follower *f, struct rl_err *err)
{
	size_t n = rl_catalog_disks(f->cat, NULL, 0);
	struct rl_disk_info *info = calloc(n ? n : 1, sizeof(*info));
	int rc = 0;

	if (!info)
		return rl_err_set(err, ENOMEM, "out of memory");
	n = rl_catalog_disks(f->cat, info, n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct rl_stream *s;
		struct follow_disk d = { .uuid = info[i].uuid };
		char path[PATH_MAX];

		if (disk_find(f, &info[i].uuid))
			continue;
		rc = rl_log_stream(f->log, &info[i].uuid, &s, NULL);
		if (rc == -ENOENT) {
			rc = 0;		/* created, nothing written yet */
			continue;
		}
		if (rc < 0) {
			rc = rl_err_layer(err, RL_ERR_LOG,
					  rl_err_set(err, -rc, "follow: %s: %s",
						     info[i].name,
						     strerror(-rc)));
			break;
		}
		d.stream = s;
		snprintf(path, sizeof(path), "%s/%s", f->datadir, info[i].name);
		rc = rl_image_open(path, f->ckpt_dir, &d.uuid, &d.img, err);
		if (rc == 0) {
			rl_image_set_skip(d.img, follow_skip, f->cat);
			/* nothing reads a replica while it follows: its
			 * writes skip the page cache where they can */
			rl_image_set_direct(d.img);
		}
		if (rc == 0) {
			/* loaded from its checkpoint: durable */
			struct rl_replay_target t = rl_replay_image(d.img);

			d.durable = rl_image_next_pos(d.img);
			rl_replay_init(&d.rp, s, &t);
		}
		if (rc == 0 &&
		    rl_grow(&f->disks, &f->cap, f->n + 1, sizeof(d)) < 0)
			rc = rl_err_set(err, ENOMEM, "out of memory");
		if (rc < 0) {
			disk_drop(&d);
			rc = rl_err_prefix(err, "follow: %s: ", info[i].name);
			break;
		}
		f->disks[f->n++] = d;
		f->pos_changed = true;
	}
	free(info);
	return rc;
}

/* Prefixes err's message with the disk's name; returns -code. */
static int disk_error(struct rl_follower *f, struct follow_disk *d,
		      struct rl_err *err)
{
	struct rl_disk_info info;

	if (rl_catalog_find_uuid(f->cat, &d->uuid, &info) < 0)
		snprintf(info.name, sizeof(info.name), "?");
	return rl_err_prefix(err, "follow: %s: ", info.name);
}

/* The image's target, checkpointing every checkpoint_records records. */
struct disk_step {
	struct rl_follower *f;
	struct follow_disk *d;
};

static uint64_t step_next(void *arg)
{
	struct disk_step *ds = arg;

	return rl_image_next_pos(ds->d->img);
}

static int step_apply(void *arg, const struct rl_record *r, uint64_t pos,
		      struct rl_err *err)
{
	struct disk_step *ds = arg;
	int rc = rl_image_apply(ds->d->img, r, pos, err);

	if (rc >= 0 && ++ds->d->since_ckpt >= ds->f->checkpoint_records) {
		int c = rl_image_checkpoint(ds->d->img, err);

		if (c < 0)
			return c;
		ds->d->since_ckpt = 0;
		disk_durable(ds->f, ds->d);
	}
	return rc;
}

static bool step_skip(void *arg, const char *why)
{
	struct disk_step *ds = arg;

	return rl_image_skip_unreadable(ds->d->img, why);
}

static int step_disk(struct rl_follower *f, struct follow_disk *d,
		     struct rl_err *err)
{
	struct disk_step ds = { f, d };
	struct rl_replay_target t = { .what = "log", .arg = &ds,
				      .next_pos = step_next,
				      .apply = step_apply,
				      .skip_unreadable = step_skip };
	int rc;

	d->rp.t = t;	/* ds lives for this step only */
	rc = rl_replay_run(&d->rp, UINT64_MAX, STEP_BUDGET, 0, &d->at_end,
			   err);
	return rc < 0 ? disk_error(f, d, err) : rc;
}

/* A record of disk d cannot be read or applied, or its image failed
 * (err): the disk stops there, said once, and the others go on.  A log
 * that does not answer is the step's failure instead: the caller waits
 * for it.  A local error (the image's disk failing) is the disk's, never
 * the log's: it must not be waited for as if the log would answer. */
static int disk_stop(struct rl_follower *f, struct follow_disk *d, int rc,
		     struct rl_err *err)
{
	if (rc == -ENOMEM || (err->layer == RL_ERR_LOG &&
			      (rc == -EIO || rc == -ETIMEDOUT)))
		return rc;
	if (!d->stopped_ms)
		rl_msg(RL_LOG_ERR, "%s; this disk stops there (its image "
		       "keeps what came before) and is tried again every %d "
		       "s; the other disks go on", err->msg,
		       (f->retry_ms + 999) / 1000);
	d->stopped_ms = rl_clock_ms(CLOCK_MONOTONIC);
	return 0;
}

/* A stopped disk whose image failed (its fdatasync: what it holds past
 * its last checkpoint is doubtful) is dropped when it is due for a retry,
 * so that attach_disks opens it again and it replays from that
 * checkpoint. */
static void reopen_failed(struct rl_follower *f)
{
	for (size_t i = 0; i < f->n; i++) {
		struct follow_disk *d = &f->disks[i];
		struct rl_disk_info info;

		if (!d->stopped_ms || !rl_image_failed(d->img) ||
		    rl_clock_ms(CLOCK_MONOTONIC) - d->stopped_ms < f->retry_ms)
			continue;
		if (rl_catalog_find_uuid(f->cat, &d->uuid, &info) < 0)
			snprintf(info.name, sizeof(info.name), "?");
		rl_msg(RL_LOG_NOTICE, "follow: %s: image opened again; it "
		       "replays the log from its last good checkpoint "
		       "(position %" PRIu64 ")", info.name,
		       rl_image_checkpointed(d->img));
		disk_remove(f, &d->uuid);
		i--;	/* another disk took its place */
	}
}

size_t rl_follower_stopped(const struct rl_follower *f)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n; i++)
		n += f->disks[i].stopped_ms != 0;
	return n;
}

int rl_follower_step(struct rl_follower *f, struct rl_err *err)
{
	struct rl_err local;
	int total, rc;

	if (!err)
		err = &local;	/* the steps below rewrap messages */
	total = step_catalog(f, err);
	if (total < 0)
		return total;
	reopen_failed(f);
	rc = attach_disks(f, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < f->n; i++) {
		struct follow_disk *d = &f->disks[i];
		bool was_stopped = d->stopped_ms != 0;

		if (was_stopped &&
		    rl_clock_ms(CLOCK_MONOTONIC) - d->stopped_ms < f->retry_ms)
			continue;

		rc = step_disk(f, d, err);
		if (rc < 0) {
			rc = disk_stop(f, d, rc, err);
			if (rc < 0)
				return rc;
			continue;
		}
		if (was_stopped) {
			struct rl_disk_info info;

			if (rl_catalog_find_uuid(f->cat, &d->uuid, &info) < 0)
				snprintf(info.name, sizeof(info.name), "?");
			rl_msg(RL_LOG_NOTICE, "follow: %s: applies the log "
			       "again", info.name);
			d->stopped_ms = 0;
		}
		total += rc;
	}
	return total;
}

int rl_follower_checkpoint(struct rl_follower *f, struct rl_err *err)
{
	struct rl_err local;

	if (!err)
		err = &local;
	for (size_t i = 0; i < f->n; i++) {
		struct follow_disk *d = &f->disks[i];
		int rc = rl_image_checkpoint(d->img, err);

		if (rc < 0) {
			/* this disk's image failed: it stops (and is opened
			 * again when it is retried); the others go on */
			rc = disk_stop(f, d, disk_error(f, d, err), err);
			if (rc < 0)
				return rc;
			continue;
		}
		d->since_ckpt = 0;
		disk_durable(f, d);
	}
	return 0;
}

int rl_follower_publish(struct rl_follower *f, bool force, struct rl_err *err)
{
	int64_t now = rl_clock_ms(CLOCK_MONOTONIC);
	struct rl_positions p = { .n = 0 };
	int rc;

	if (!f->name)
		return 0;
	if (!force && f->pos_tried && now - f->pos_tried < f->publish_ms)
		return 0;
	if (!f->pos_changed && f->pos_published &&
	    now - f->pos_published < HEARTBEAT_MS)
		return 0;
	p.pos = calloc(f->n + 1, sizeof(*p.pos));
	if (!p.pos)
		return rl_err_set(err, ENOMEM, "out of memory");
	snprintf(p.name, sizeof(p.name), "%s", f->name);
	p.time_ms = rl_clock_ms(CLOCK_REALTIME);
	p.pos[p.n++].next_pos = rl_catalog_next_pos(f->cat);	/* nil uuid */
	for (size_t i = 0; i < f->n; i++) {
		p.pos[p.n].disk = f->disks[i].uuid;
		p.pos[p.n].caught_up_ms = f->disks[i].caught_up_ms;
		p.pos[p.n++].next_pos = f->disks[i].durable;
	}
	f->pos_tried = now;
	rc = rl_positions_publish(f->log, &p, err);
	free(p.pos);
	if (rc < 0)
		return rc;	/* pos_changed stays: tried again later */
	f->pos_changed = false;
	f->pos_published = now;
	return 1;
}
