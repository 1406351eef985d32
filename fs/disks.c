/* The disks of a mount: the disk table, the catalog changes that change
 * it, and the checkpoint thread.
 *
 * Notes on the design
 * -------------------
 * A catalog change (create, rename, delete, mode/owner) goes through the
 * catalog writer (replog/catalog_writer.c): record, log, catalog applier;
 * only then is the FUSE request answered.  Nothing here encodes or
 * appends a record.
 *
 * Locks, and what waits for the log.  Changes are serialized by
 * fs->cat_lock, which also guards the catalog writer and its catalog; it
 * is held across the log round trip of a change (up to --write-timeout on
 * Kafka without a quorum).  fs->lock guards the disk table and is held
 * only to look up and mark, never across a round trip or a disk's replay:
 * lookup, getattr, readdir, open and the data path of every other disk
 * go on while a change, a truncate or a new disk's claim waits for the
 * log.  A disk a change is about is pinned (open_count) or marked
 * (deleted) under fs->lock first, so it cannot go away meanwhile.
 *
 * While a failed change leaves the catalog behind the log, changes fail
 * at once with EIO (rl_catalog_writer_behind, read before cat_lock is
 * taken: the catch-up holds it across its round trip, up to
 * --write-timeout without a quorum), and the checkpoint thread catches
 * up once a second (fs_catalog_sync), after
 * which the disk table follows the catalog (catalog_reconcile).  A change
 * is also checked against the data directory (a directory in the way)
 * before it is appended.
 *
 * Every disk gets a writer at mount (or at create): the writer replays the
 * disk's log into its image from the checkpoint, then appends a CLAIM with
 * a new epoch.  Disk structures live until unmount, deleted ones too, so a
 * kernel that still holds an inode number gets ENOENT, never a dangling
 * pointer.
 */
#include "fs.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static struct rl_catalog *catalog(struct fs *fs)
{
	return rl_catalog_writer_catalog(fs->cw);
}

/* The catalog's skipped positions (repdisk log skip), during a replay. */
static bool mount_skip(void *cat, const struct rl_uuid *disk, uint64_t pos)
{
	return rl_catalog_skipped(cat, disk, pos);
}

/* A writer that failed to open because of this disk alone, by the layer
 * that failed: what its log holds (a record damaged, forged, deleted by
 * retention), or what this data directory cannot hold of it (its image or
 * checkpoint: too large a size, a full disk, a disk error).  Not a log
 * that does not answer, nor the mount itself (another owner, memory). */
static bool disk_fault(int rc, const struct rl_err *err)
{
	return rc < 0 && rc != -ENOMEM &&
	       (err->layer == RL_ERR_RECORD || err->layer == RL_ERR_IMAGE ||
		err->layer == RL_ERR_STATE);
}

/* Opens a disk's stream, image and writer (replay, claim): round trips,
 * so never under fs->lock; cat_lock held (the replay reads the catalog's
 * skips), or the mount still single-threaded.  A disk whose log cannot be
 * replayed into its image (disk_fault) keeps its image, with no writer: it
 * is served read-only, and the other disks are not held up by it
 * (DESIGN.md, contract item 7). */
static int disk_open(struct fs *fs, struct disk *d, struct rl_err *err)
{
	struct rl_writer_opts wopts = { .host = fs->claim_as,
					.zstd_min = fs->zstd_min,
					.takeover = fs->takeover,
					.stuck_ms = fs->stuck_ms };
	char path[PATH_MAX], ckpt[PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", fs->datadir, d->name);
	snprintf(ckpt, sizeof(ckpt), "%s/.repdisk/ckpt", fs->datadir);
	rc = rl_log_stream(fs->log, &d->uuid, &d->stream, err);
	if (rc == 0)
		rc = rl_image_open(path, ckpt, &d->uuid, &d->img, err);
	if (rc == 0) {
		/* the replay passes over what the catalog skips; afterwards
		 * the writer's applier must not read the catalog (cat_lock's),
		 * so a record refused later needs a remount once skipped */
		rl_image_set_skip(d->img, mount_skip, catalog(fs));
		rc = rl_writer_open(d->stream, d->img, d->name, &wopts, &d->w,
				    err);
		rl_image_set_skip(d->img, NULL, NULL);
		if (disk_fault(rc, err)) {
			fprintf(stderr, "repdisk: %s: %s; this disk is "
				"read-only (reads come from its image, writes "
				"fail with EIO) until that is fixed and it is "
				"mounted again; the other disks are served\n",
				d->name, err->msg);
			d->w = NULL;
			return 0;
		}
	}
	if (rc < 0) {
		rl_image_close(d->img);
		d->img = NULL;
	}
	return rc;
}

static struct disk *disk_new(struct fs *fs, const struct rl_disk_info *info)
{
	struct disk *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	pthread_mutex_lock(&fs->lock);
	d->ino = fs->next_ino++;
	pthread_mutex_unlock(&fs->lock);
	d->uuid = info->uuid;
	snprintf(d->name, sizeof(d->name), "%s", info->name);
	d->mode = info->mode;
	d->uid = info->uid;
	d->gid = info->gid;
	return d;
}

/* Opens a new disk and puts it in the table, published whole (the
 * checkpoint thread walks the list unlocked); pinned when `open`.  A disk
 * that fails to open is listed as deleted: in the catalog, but unusable
 * until a remount.  cat_lock held, not fs->lock. */
static int disk_add(struct fs *fs, struct disk *d, bool open)
{
	struct rl_err err;
	int rc = disk_open(fs, d, &err);

	if (rc < 0)
		fprintf(stderr, "repdisk: %s: %s\n", d->name, err.msg);
	pthread_mutex_lock(&fs->lock);
	d->deleted = rc < 0;
	d->open_count = open && rc == 0;
	d->next = fs->disks;
	fs->disks = d;
	pthread_mutex_unlock(&fs->lock);
	return rc;
}

/* Closes the writer and image of a disk already marked deleted; its image
 * stays open while a client has the file open (reads go on; writes fail).
 * Not under fs->lock: draining waits for the log. */
static void disk_retire(struct fs *fs, struct disk *d)
{
	bool in_use;

	pthread_mutex_lock(&fs->close_lock);
	if (d->w) {
		rl_writer_drain(d->w);
		rl_writer_close(d->w);
		d->w = NULL;
	}
	pthread_mutex_unlock(&fs->close_lock);
	/* marked deleted: no new opens, so open_count only falls now */
	pthread_mutex_lock(&fs->lock);
	in_use = d->open_count > 0;
	pthread_mutex_unlock(&fs->lock);
	if (!in_use) {
		pthread_mutex_lock(&fs->close_lock);
		rl_image_close(d->img);
		d->img = NULL;
		pthread_mutex_unlock(&fs->close_lock);
	}
}

/* The disk table follows the catalog: disks it lost are retired, new ones
 * opened, names and attributes copied.  cat_lock held, not fs->lock. */
static void catalog_reconcile(struct fs *fs)
{
	struct rl_catalog *cat = catalog(fs);
	size_t n = rl_catalog_disks(cat, NULL, 0), n_gone = 0, n_new = 0;
	struct rl_disk_info *info = calloc(n ? n : 1, sizeof(*info));
	size_t *fresh = calloc(n ? n : 1, sizeof(*fresh));
	struct disk **gone = NULL;
	size_t n_disks = 0;

	pthread_mutex_lock(&fs->lock);
	for (struct disk *d = fs->disks; d; d = d->next)
		n_disks++;
	pthread_mutex_unlock(&fs->lock);
	gone = calloc(n_disks ? n_disks : 1, sizeof(*gone));
	if (!info || !gone || !fresh)
		goto out;
	n = rl_catalog_disks(cat, info, n);

	pthread_mutex_lock(&fs->lock);
	for (struct disk *d = fs->disks; d; d = d->next) {
		size_t i;

		if (d->deleted)
			continue;
		for (i = 0; i < n && !rl_uuid_eq(&info[i].uuid, &d->uuid); i++)
			;
		if (i == n) {
			d->deleted = true;
			if (n_gone < n_disks)
				gone[n_gone++] = d;
			continue;
		}
		snprintf(d->name, sizeof(d->name), "%s", info[i].name);
		d->mode = info[i].mode;
		d->uid = info[i].uid;
		d->gid = info[i].gid;
	}
	/* a fenced mount claims no disk: the new writer made them */
	for (size_t i = 0; i < n && !rl_catalog_writer_fenced(fs->cw); i++) {
		struct disk *d;

		for (d = fs->disks; d; d = d->next)
			if (!d->deleted && rl_uuid_eq(&d->uuid, &info[i].uuid))
				break;
		if (!d)
			fresh[n_new++] = i;
	}
	pthread_mutex_unlock(&fs->lock);

	for (size_t i = 0; i < n_gone; i++)
		disk_retire(fs, gone[i]);
	for (size_t i = 0; i < n_new; i++) {
		struct disk *d = disk_new(fs, &info[fresh[i]]);

		if (d)
			disk_add(fs, d, false);
	}
out:
	free(gone);
	free(fresh);
	free(info);
}

int fs_catalog_sync(struct fs *fs)
{
	struct rl_err err;
	uint64_t before;
	int rc;

	if (!rl_catalog_writer_behind(fs->cw))
		return 0;
	pthread_mutex_lock(&fs->cat_lock);
	before = rl_catalog_next_pos(catalog(fs));
	rc = rl_catalog_writer_sync(fs->cw, &err);
	if (rl_catalog_next_pos(catalog(fs)) != before)
		catalog_reconcile(fs);
	pthread_mutex_unlock(&fs->cat_lock);
	return rc == -EROFS ? rc : rc < 0 ? -EIO : 0;
}

/* Appends a catalog change, waits until durable, applies it: see
 * replog/catalog_writer.c.  cat_lock held, not fs->lock. */
static int catalog_change(struct fs *fs, struct rl_record *r)
{
	struct rl_err err;
	int rc = rl_catalog_writer_change(fs->cw, r, &err);

	if (rc == -EIO && err.layer == RL_ERR_LOG)
		/* not in the log, or "possibly persisted": meanwhile the
		 * table goes back to what the catalog has, such as a disk
		 * whose delete this was */
		catalog_reconcile(fs);
	return rc == 0 || rc == -EROFS ? rc : -EIO;
}

/* Takes cat_lock for a change: 0, or -EIO at once while the catalog is
 * behind the log, without waiting for the lock, which the catch-up holds
 * across its round trip (fs_catalog_sync). */
static int change_lock(struct fs *fs)
{
	if (rl_catalog_writer_behind(fs->cw))
		return -EIO;	/* see the notes at the top */
	pthread_mutex_lock(&fs->cat_lock);
	return 0;
}

/* Before a change to name: the catalog is in step with the log, the name
 * is free, and nothing in the data directory is in the way of its image.
 * 0 or -errno; cat_lock and fs->lock held. */
static int change_check(struct fs *fs, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	if (rl_catalog_writer_behind(fs->cw))
		return -EIO;	/* see the notes at the top */
	if (rl_catalog_writer_fenced(fs->cw))
		return -EROFS;	/* said when it was found */
	if (!name)
		return 0;
	if (fs_disk_by_name(fs, name))
		return -EEXIST;
	snprintf(path, sizeof(path), "%s/%s", fs->datadir, name);
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		fprintf(stderr, "repdisk: %s: %s is in the way (not a regular "
			"file): the disk cannot have this name until it is "
			"moved\n", name, path);
		return -EEXIST;
	}
	return 0;
}

int fs_disks_load(struct fs *fs, struct rl_err *err)
{
	struct rl_catalog_writer_opts co = { .host = fs->claim_as,
					     .takeover = fs->takeover };
	struct rl_disk_info *info = NULL;
	char what[PATH_MAX + 80];
	size_t n;
	int rc;

	fs->next_ino = FUSE_ROOT_ID + 1;
	snprintf(what, sizeof(what), "log %s", fs->log_uri);
	co.what = what;
	/* the catalog first: replayed, then claimed */
	rc = rl_catalog_writer_open(fs->log, fs->datadir, &co, &fs->cw, err);
	if (rc < 0)
		return rc;

	n = rl_catalog_disks(catalog(fs), NULL, 0);
	info = calloc(n ? n : 1, sizeof(*info));
	if (!info)
		return rl_err_set(err, ENOMEM, "out of memory");
	n = rl_catalog_disks(catalog(fs), info, n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct disk *d = disk_new(fs, &info[i]);

		if (!d) {
			rc = rl_err_set(err, ENOMEM, "out of memory");
			break;
		}
		d->next = fs->disks;
		fs->disks = d;
		rc = disk_open(fs, d, err);
	}
	free(info);
	return rc;
}

void fs_disks_close(struct fs *fs)
{
	struct disk *d, *next;
	struct rl_err err;

	for (d = fs->disks; d; d = next) {
		next = d->next;
		if (d->w) {
			rl_writer_drain(d->w);
			if (rl_writer_checkpoint(d->w, &err) < 0)
				fprintf(stderr, "repdisk: %s: %s\n", d->name,
					err.msg);
			rl_writer_close(d->w);
		}
		rl_image_close(d->img);
		free(d);
	}
	fs->disks = NULL;
	rl_catalog_writer_close(fs->cw);
	fs->cw = NULL;
}

struct disk *fs_disk_by_ino(struct fs *fs, fuse_ino_t ino)
{
	for (struct disk *d = fs->disks; d; d = d->next)
		if (d->ino == ino && !d->deleted)
			return d;
	return NULL;
}

struct disk *fs_disk_pin(struct fs *fs, fuse_ino_t ino)
{
	struct disk *d;

	pthread_mutex_lock(&fs->lock);
	d = fs_disk_by_ino(fs, ino);
	if (d)
		d->open_count++;
	pthread_mutex_unlock(&fs->lock);
	return d;
}

void fs_disk_unpin(struct fs *fs, struct disk *d)
{
	pthread_mutex_lock(&fs->lock);
	d->open_count--;
	pthread_mutex_unlock(&fs->lock);
}

struct disk *fs_disk_by_name(struct fs *fs, const char *name)
{
	for (struct disk *d = fs->disks; d; d = d->next)
		if (!d->deleted && strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

int fs_disk_create(struct fs *fs, const char *name, mode_t mode, uid_t uid,
		   gid_t gid, bool open, struct disk **out)
{
	struct rl_record r = { .type = RL_CREATE, .name = name,
			       .mode = mode & 0777, .uid = uid, .gid = gid };
	struct rl_disk_info info;
	struct rl_err err;
	struct disk *d;
	int rc;

	rc = rl_name_check(name, &err);
	if (rc == 0)
		rc = change_lock(fs);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&fs->lock);
	rc = change_check(fs, name);
	pthread_mutex_unlock(&fs->lock);
	rl_uuid_generate(&r.disk);
	if (rc == 0)
		rc = catalog_change(fs, &r);
	if (rc < 0)
		goto out;
	info.uuid = r.disk;
	snprintf(info.name, sizeof(info.name), "%s", name);
	info.mode = r.mode;
	info.uid = uid;
	info.gid = gid;
	d = disk_new(fs, &info);
	if (!d) {
		rc = -ENOMEM;
		goto out;
	}
	rc = disk_add(fs, d, open) < 0 ? -EIO : 0;
	*out = d;
out:
	pthread_mutex_unlock(&fs->cat_lock);
	return rc;
}

/* Deletes disk d (found under fs->lock, which is not held now); cat_lock
 * held. */
static int disk_delete(struct fs *fs, struct disk *d)
{
	struct rl_record r = { .type = RL_DELETE, .disk = d->uuid };
	int rc;

	pthread_mutex_lock(&fs->lock);
	rc = change_check(fs, NULL);
	if (rc == 0 && d->deleted)
		rc = -ENOENT;	/* the log deleted it meanwhile */
	if (rc == 0 && d->open_count)
		rc = -EBUSY;
	if (rc == 0)
		d->deleted = true;	/* no new opens */
	pthread_mutex_unlock(&fs->lock);
	if (rc < 0)
		return rc;
	disk_retire(fs, d);
	return catalog_change(fs, &r);
}

int fs_disk_delete(struct fs *fs, const char *name)
{
	struct disk *d;
	int rc;

	if ((rc = change_lock(fs)) < 0)
		return rc;
	pthread_mutex_lock(&fs->lock);
	d = fs_disk_by_name(fs, name);
	pthread_mutex_unlock(&fs->lock);
	rc = d ? disk_delete(fs, d) : -ENOENT;
	pthread_mutex_unlock(&fs->cat_lock);
	return rc;
}

int fs_disk_rename(struct fs *fs, const char *name, const char *newname,
		   bool noreplace)
{
	struct rl_record r = { .type = RL_RENAME, .name = newname };
	struct disk *d, *target;
	struct rl_err err;
	int rc;

	if ((rc = change_lock(fs)) < 0)
		return rc;
	pthread_mutex_lock(&fs->lock);
	d = fs_disk_by_name(fs, name);
	target = fs_disk_by_name(fs, newname);
	rc = !d ? -ENOENT : d == target ? 1 :
	     target && noreplace ? -EEXIST : rl_name_check(newname, &err);
	pthread_mutex_unlock(&fs->lock);
	/* replacing a disk deletes it first, as rename(2) does */
	if (rc == 0 && target)
		rc = disk_delete(fs, target);
	if (rc == 0) {
		pthread_mutex_lock(&fs->lock);
		rc = change_check(fs, newname);
		if (rc == 0 && d->deleted)
			rc = -ENOENT;	/* the log deleted it meanwhile */
		pthread_mutex_unlock(&fs->lock);
	}
	r.disk = d ? d->uuid : r.disk;
	if (rc == 0)
		rc = catalog_change(fs, &r);
	if (rc == 0) {
		pthread_mutex_lock(&fs->lock);
		snprintf(d->name, sizeof(d->name), "%s", newname);
		pthread_mutex_unlock(&fs->lock);
	}
	pthread_mutex_unlock(&fs->cat_lock);
	return rc > 0 ? 0 : rc;
}

int fs_disk_setattr(struct fs *fs, struct disk *d, uint32_t mode, uint32_t uid,
		    uint32_t gid)
{
	struct rl_record r = { .type = RL_SETATTR, .disk = d->uuid,
			       .mode = mode & 0777, .uid = uid, .gid = gid };
	int rc;

	if ((rc = change_lock(fs)) < 0)
		return rc;
	pthread_mutex_lock(&fs->lock);
	rc = change_check(fs, NULL);
	if (rc == 0 && d->deleted)
		rc = -ENOENT;	/* the log deleted it meanwhile */
	pthread_mutex_unlock(&fs->lock);
	if (rc == 0)
		rc = catalog_change(fs, &r);
	if (rc == 0) {
		pthread_mutex_lock(&fs->lock);
		d->mode = r.mode;
		d->uid = uid;
		d->gid = gid;
		pthread_mutex_unlock(&fs->lock);
	}
	pthread_mutex_unlock(&fs->cat_lock);
	return rc;
}

/* Retention (file log): deletes each disk's segments that its checkpoint
 * and every follower that reports to the log are past.  On the checkpoint
 * thread, after a checkpoint.  A log that keeps its own retention (Kafka)
 * says so once and is left alone. */
static void trim_logs(struct fs *fs, struct disk *list)
{
	struct rl_positions *fol = NULL;
	struct rl_err err = { 0 };
	int nf;

	/* a log with retention of its own: do not even list followers (on
	 * Kafka that reads a topic) */
	if (!list || !list->stream)
		return;		/* no disk yet: nothing to trim */
	if (rl_log_trim(list->stream, 0, &err) == -EOPNOTSUPP) {
		fs->keep_log = true;
		return;
	}
	nf = rl_positions_list(fs->log, &fol, &err);
	if (nf < 0) {
		/* never guess where a follower is */
		if (!fs->trim_failing)
			fprintf(stderr, "repdisk: log retention paused: %s\n",
				err.msg);
		fs->trim_failing = true;
		return;
	}
	fs->trim_failing = false;
	for (struct disk *d = list; d; d = d->next) {
		uint64_t keep;
		int n;

		if (!d->w)
			continue;
		keep = rl_retention_bound(fol, (size_t)nf, &d->uuid,
					  rl_image_checkpointed(d->img));
		n = rl_log_trim(d->stream, keep, &err);
		if (n == -EOPNOTSUPP) {
			fs->keep_log = true;
			break;
		}
		if (n < 0)
			fprintf(stderr, "repdisk: %s: log retention: %s\n",
				d->name, err.msg);
		else if (n > 0)
			fprintf(stderr, "repdisk: %s: deleted %d log segments "
				"below position %" PRIu64 " (applied here and "
				"on all %d followers)\n", d->name, n, keep, nf);
	}
	rl_positions_free(fol, (size_t)nf);
}

/* Checkpoints every disk, or (checkpoint false, between checkpoints)
 * flushes every image written fast since (apply.c, "Image writeback"),
 * so that a second's data does not reach the disk at once. */
static int sync_all(struct fs *fs, bool checkpoint)
{
	struct disk *list;
	struct rl_err err;
	int rc = 0;

	/* disks are never freed while mounted: walk without fs->lock, so
	 * a long fdatasync does not hold up lookups; close_lock keeps a
	 * writer from being closed under us */
	pthread_mutex_lock(&fs->lock);
	list = fs->disks;
	pthread_mutex_unlock(&fs->lock);
	pthread_mutex_lock(&fs->close_lock);
	for (struct disk *d = list; d; d = d->next) {
		if (!d->w)
			continue;
		if ((checkpoint ? rl_writer_checkpoint(d->w, &err) :
				  rl_writer_flush(d->w, &err)) < 0) {
			/* a failed image fdatasync is sticky: say it once */
			if (!d->ckpt_failed)
				fprintf(stderr, "repdisk: %s: %s\n", d->name,
					err.msg);
			d->ckpt_failed = true;
			rc = -EIO;
		} else if (checkpoint) {
			d->ckpt_failed = false;
		}
	}
	if (checkpoint && rc == 0 && !fs->keep_log)
		trim_logs(fs, list);
	pthread_mutex_unlock(&fs->close_lock);
	return rc;
}

int fs_checkpoint_all(struct fs *fs)
{
	return sync_all(fs, true);
}

/* Checkpoints every disk once a second, so a restart replays little, and
 * flushes the images written every FLUSH_MS in between. */
#define FLUSH_MS	50

void *fs_checkpoint_main(void *arg)
{
	struct fs *fs = arg;
	unsigned round = 0;

	pthread_mutex_lock(&fs->ckpt_wait_lock);
	while (!fs->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += FLUSH_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&fs->ckpt_wait, &fs->ckpt_wait_lock, &ts);
		if (fs->stop)
			break;
		pthread_mutex_unlock(&fs->ckpt_wait_lock);
		if (++round % (1000 / FLUSH_MS)) {
			sync_all(fs, false);
		} else {
			fs_log_reopen();
			fs_catalog_sync(fs);
			fs_checkpoint_all(fs);
		}
		pthread_mutex_lock(&fs->ckpt_wait_lock);
	}
	pthread_mutex_unlock(&fs->ckpt_wait_lock);
	return NULL;
}
