/* The disks of a mount and every change to the catalog.
 *
 * Notes on the design
 * -------------------
 * A catalog change (create, rename, delete, mode/owner) is one record in
 * the catalog stream: encoded, appended and waited for (durable), then
 * applied by the same catalog applier followers run, which changes the
 * image file.  Only then is the FUSE request answered.  Catalog changes are
 * rare and serialized under fs->lock, so waiting for each is fine; the
 * data path never takes fs->lock for long.
 *
 * The catalog is never changed on a stale view.  A change that fails
 * after it may have reached the log (its record durable but not applied,
 * say on ENOSPC; an append that timed out, which Kafka may still have
 * "possibly persisted") leaves the catalog behind the log
 * (fs->cat_behind).  Until it has caught up, every change is refused with
 * EIO and appends nothing, so a retry cannot pile records up or append a
 * second CREATE of one name, which every applier would refuse.  The
 * checkpoint thread catches up once a second (fs_catalog_sync: the log's
 * end asked without fs->lock, since on Kafka it is a round trip that an
 * outage can stall, then the records applied and the disk table brought
 * in line), so a change that was durable takes effect by itself once its
 * cause is gone.  A change is also checked against the data directory (a
 * directory in the way) before it is appended.
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

/* Applies the catalog stream's records from the catalog's next position
 * up to `to` (exclusive): at mount, what the log holds past the state; on
 * a change, what other writers appended (a newer writer's claim, which
 * fences us) before our own record at `to`. */
static int catalog_catch_up(struct fs *fs, uint64_t to, struct rl_err *err)
{
	struct rl_reader *r;
	int rc;

	if (rl_catalog_next_pos(fs->cat) >= to)
		return 0;
	rc = rl_reader_open(fs->cat_stream, rl_catalog_next_pos(fs->cat), &r,
			    err);
	if (rc < 0)
		return rc;
	while (rc >= 0 && rl_catalog_next_pos(fs->cat) < to) {
		struct rl_record rec;
		uint64_t pos;

		rc = rl_reader_next(r, &rec, &pos, 1000, err);
		if (rc == 0)
			rc = rl_err_set(err, EIO, "catalog: position %" PRIu64
					" is durable but cannot be read",
					rl_catalog_next_pos(fs->cat));
		if (rc > 0)
			rc = rl_catalog_apply(fs->cat, &rec, pos, err);
	}
	rl_reader_close(r);
	return rc < 0 ? rc : 0;
}

static struct disk *disk_new(struct fs *fs, const struct rl_disk_info *info);
static int disk_open(struct fs *fs, struct disk *d, struct rl_err *err);

/* Closes a disk the catalog no longer has; fs->lock held.  Its image stays
 * open while a client has the file open (reads go on; writes fail). */
static void disk_retire(struct fs *fs, struct disk *d)
{
	pthread_mutex_lock(&fs->close_lock);
	if (d->w) {
		rl_writer_drain(d->w);
		rl_writer_close(d->w);
		d->w = NULL;
	}
	if (!d->open_count) {
		rl_image_close(d->img);
		d->img = NULL;
	}
	pthread_mutex_unlock(&fs->close_lock);
	d->deleted = true;
}

/* The disk table follows the catalog: disks it lost are retired, new ones
 * opened, names and attributes copied.  fs->lock held. */
static void catalog_reconcile(struct fs *fs)
{
	size_t n = rl_catalog_disks(fs->cat, NULL, 0);
	struct rl_disk_info *info = calloc(n ? n : 1, sizeof(*info));
	struct rl_err err;

	if (!info)
		return;
	n = rl_catalog_disks(fs->cat, info, n);
	for (struct disk *d = fs->disks; d; d = d->next) {
		size_t i;

		if (d->deleted)
			continue;
		for (i = 0; i < n && !rl_uuid_eq(&info[i].uuid, &d->uuid); i++)
			;
		if (i == n) {
			disk_retire(fs, d);
			continue;
		}
		snprintf(d->name, sizeof(d->name), "%s", info[i].name);
		d->mode = info[i].mode;
		d->uid = info[i].uid;
		d->gid = info[i].gid;
	}
	/* a fenced mount claims no disk: the new writer made them */
	for (size_t i = 0; i < n && rl_catalog_epoch(fs->cat) <= fs->cat_epoch;
	     i++) {
		struct disk *d;

		for (d = fs->disks; d; d = d->next)
			if (!d->deleted && rl_uuid_eq(&d->uuid, &info[i].uuid))
				break;
		if (d || !(d = disk_new(fs, &info[i])))
			continue;
		if (disk_open(fs, d, &err) < 0) {
			fprintf(stderr, "repdisk: %s: %s\n", d->name, err.msg);
			d->deleted = true;
		}
		d->next = fs->disks;	/* published whole */
		fs->disks = d;
	}
	free(info);
}

/* Another mount claimed the catalog: said once; -EROFS. */
static int catalog_fenced(struct fs *fs)
{
	if (!fs->cat_fenced)
		fprintf(stderr, "repdisk: catalog: fenced: the log's catalog "
			"was claimed by %s (epoch %" PRIu64 "); this mount "
			"makes no more catalog changes\n",
			rl_catalog_owner(fs->cat), rl_catalog_epoch(fs->cat));
	fs->cat_fenced = true;
	return -EROFS;
}

int fs_catalog_sync(struct fs *fs, uint64_t end)
{
	struct rl_err err;
	uint64_t before = rl_catalog_next_pos(fs->cat);
	int rc;

	rc = catalog_catch_up(fs, end, &err);
	if (rl_catalog_next_pos(fs->cat) != before)
		catalog_reconcile(fs);
	if (rc < 0)
		return -EIO;	/* said when it fell behind; tried again */
	fprintf(stderr, "repdisk: catalog: up to date with the log again\n");
	fs->cat_behind = false;
	if (rl_catalog_epoch(fs->cat) > fs->cat_epoch) {
		return catalog_fenced(fs);
	}
	return 0;
}

/* Appends a catalog record, waits until durable, applies it: see the
 * notes at the top for what comes before. */
static int catalog_change(struct fs *fs, struct rl_record *r)
{
	uint8_t buf[RL_RECORD_HDR_SIZE + RL_NAME_MAX + 64];
	struct rl_err err;
	ssize_t len;
	int64_t pos;
	int rc;

	if (rl_catalog_epoch(fs->cat) > fs->cat_epoch)
		return -EROFS;	/* fenced: said when it was found */
	r->epoch = fs->cat_epoch;
	len = rl_record_encode(r, 0, buf, sizeof(buf), &err);
	if (len < 0)
		return (int)len;
	pos = rl_log_append_sync(fs->cat_stream, buf, (size_t)len);
	if (pos < 0) {
		fprintf(stderr, "repdisk: catalog: log append failed: %s; "
			"catalog changes fail with EIO and append nothing "
			"until the catalog has caught up with the log (tried "
			"every second)\n", strerror((int)-pos));
		/* not in the log, or "possibly persisted": the sync finds
		 * out.  Meanwhile the table goes back to what the catalog
		 * has, such as a disk whose delete this was. */
		catalog_reconcile(fs);
		fs->cat_behind = true;
		return -EIO;
	}
	rc = catalog_catch_up(fs, (uint64_t)pos, &err);
	if (rc == 0)
		rc = rl_catalog_apply(fs->cat, r, (uint64_t)pos, &err);
	if (rc == RL_IGNORED_STALE) {
		return catalog_fenced(fs);
	}
	if (rc < 0) {
		/* durable in the log but not applied: the checkpoint thread
		 * applies it once it can, and the table follows then */
		fprintf(stderr, "repdisk: %s; the change is in the log and "
			"takes effect here once it can be applied (tried "
			"again every second)\n", err.msg);
		fs->cat_behind = true;
		return -EIO;
	}
	return 0;
}

/* Before a change to name: the catalog is in step with the log, the name
 * is free, and nothing in the data directory is in the way of its image.
 * 0 or -errno; fs->lock held. */
static int change_check(struct fs *fs, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	if (fs->cat_behind)
		return -EIO;	/* see the notes at the top */
	if (rl_catalog_epoch(fs->cat) > fs->cat_epoch)
		return -EROFS;	/* fenced: said when it was found */
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

/* The catalog's skipped positions (repdisk log skip), during a replay. */
static bool mount_skip(void *cat, const struct rl_uuid *disk, uint64_t pos)
{
	return rl_catalog_skipped(cat, disk, pos);
}

/* A writer that failed to open because of what its log holds (a record
 * damaged, forged, deleted by retention, or one this data directory cannot
 * apply: too large a size, a full disk), not because of the mount. */
static bool log_fault(int rc)
{
	return rc == -EBADMSG || rc == -ERANGE || rc == -EFBIG ||
	       rc == -ENOSPC || rc == -EDQUOT || rc == -EINVAL;
}

/* Opens a disk's stream, image and writer (replay, claim).  A disk whose
 * log cannot be replayed into its image (log_fault) keeps its image, with
 * no writer: it is served read-only, and the other disks are not held up
 * by it (DESIGN.md, contract item 7). */
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
		 * the applier thread must not read the catalog (fs->lock's),
		 * so a record refused later needs a remount once skipped */
		rl_image_set_skip(d->img, mount_skip, fs->cat);
		rc = rl_writer_open(d->stream, d->img, d->name, &wopts, &d->w,
				    err);
		rl_image_set_skip(d->img, NULL, NULL);
		if (log_fault(rc)) {
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
	d->ino = fs->next_ino++;
	d->uuid = info->uuid;
	snprintf(d->name, sizeof(d->name), "%s", info->name);
	d->mode = info->mode;
	d->uid = info->uid;
	d->gid = info->gid;
	return d;
}

/* One writer of the catalog: refuse a catalog another mount claimed last
 * (unless --takeover), then claim it with the next epoch. */
static int catalog_claim(struct fs *fs, struct rl_err *err)
{
	const char *owner = rl_catalog_owner(fs->cat);
	struct rl_record claim = { .type = RL_CLAIM };
	uint8_t buf[RL_RECORD_HDR_SIZE + RL_NAME_MAX + 64];
	ssize_t len;
	int64_t pos;
	int rc;

	if (!fs->takeover && owner[0] && strcmp(owner, fs->claim_as) != 0)
		return rl_err_set(err, EBUSY, "log %s: in use by another "
				  "writer: its catalog belongs to %s (epoch %"
				  PRIu64 "), which may still be running; if it "
				  "is down, take over with --takeover "
				  "(docs/FAILOVER.md)", fs->log_uri, owner,
				  rl_catalog_epoch(fs->cat));
	claim.epoch = rl_catalog_epoch(fs->cat) + 1;
	claim.data = fs->claim_as;
	claim.data_len = strlen(fs->claim_as);
	len = rl_record_encode(&claim, 0, buf, sizeof(buf), err);
	if (len < 0)
		return (int)len;
	pos = rl_log_append_sync(fs->cat_stream, buf, (size_t)len);
	if (pos < 0)
		return rl_err_set(err, (int)-pos, "catalog: claim: log append "
				  "failed: %s", strerror((int)-pos));
	rc = catalog_catch_up(fs, (uint64_t)pos, err);
	if (rc == 0)
		rc = rl_catalog_apply(fs->cat, &claim, (uint64_t)pos, err);
	if (rc == 0 && rl_catalog_epoch(fs->cat) != claim.epoch)
		rc = RL_IGNORED_STALE;
	if (rc == RL_IGNORED_STALE)
		return rl_err_set(err, EBUSY, "catalog: another writer "
				  "claimed the log's catalog at the same time "
				  "(%s, epoch %" PRIu64 ")",
				  rl_catalog_owner(fs->cat),
				  rl_catalog_epoch(fs->cat));
	fs->cat_epoch = claim.epoch;
	return rc;
}

int fs_disks_load(struct fs *fs, struct rl_err *err)
{
	struct rl_disk_info *info = NULL;
	uint64_t end;
	size_t n;
	int rc;

	fs->next_ino = FUSE_ROOT_ID + 1;
	rc = rl_catalog_open(fs->datadir, &fs->cat, err);
	if (rc == 0)
		rc = rl_log_stream(fs->log, NULL, &fs->cat_stream, err);
	if (rc < 0)
		return rc;

	/* the catalog first: replay what the log holds past the state */
	rc = rl_log_end(fs->cat_stream, &end);
	if (rc < 0)
		return rl_err_set(err, -rc, "catalog: log end: %s",
				  strerror(-rc));
	rc = catalog_catch_up(fs, end, err);
	if (rc < 0)
		return rc;
	rc = catalog_claim(fs, err);
	if (rc < 0)
		return rc;

	n = rl_catalog_disks(fs->cat, NULL, 0);
	info = calloc(n ? n : 1, sizeof(*info));
	if (!info)
		return rl_err_set(err, ENOMEM, "out of memory");
	n = rl_catalog_disks(fs->cat, info, n);
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
	rl_catalog_close(fs->cat);
	fs->cat = NULL;
}

struct disk *fs_disk_by_ino(struct fs *fs, fuse_ino_t ino)
{
	for (struct disk *d = fs->disks; d; d = d->next)
		if (d->ino == ino && !d->deleted)
			return d;
	return NULL;
}

struct disk *fs_disk_by_name(struct fs *fs, const char *name)
{
	for (struct disk *d = fs->disks; d; d = d->next)
		if (!d->deleted && strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

int fs_disk_create(struct fs *fs, const char *name, mode_t mode, uid_t uid,
		   gid_t gid, struct disk **out)
{
	struct rl_record r = { .type = RL_CREATE, .name = name,
			       .mode = mode & 0777, .uid = uid, .gid = gid };
	struct rl_disk_info info;
	struct rl_err err;
	struct disk *d;
	int rc;

	rc = rl_name_check(name, &err);
	if (rc == 0)
		rc = change_check(fs, name);
	if (rc < 0)
		return rc;
	rl_uuid_generate(&r.disk);
	rc = catalog_change(fs, &r);
	if (rc < 0)
		return rc;
	info.uuid = r.disk;
	snprintf(info.name, sizeof(info.name), "%s", name);
	info.mode = r.mode;
	info.uid = uid;
	info.gid = gid;
	d = disk_new(fs, &info);
	if (!d)
		return -ENOMEM;
	rc = disk_open(fs, d, &err);
	if (rc < 0) {
		/* in the catalog, but unusable until a remount */
		fprintf(stderr, "repdisk: %s: %s\n", name, err.msg);
		d->deleted = true;
	}
	/* published whole: the checkpoint thread walks the list unlocked */
	d->next = fs->disks;
	fs->disks = d;
	*out = d;
	return rc < 0 ? -EIO : 0;
}

int fs_disk_delete(struct fs *fs, struct disk *d)
{
	struct rl_record r = { .type = RL_DELETE, .disk = d->uuid };
	int rc;

	if (d->open_count)
		return -EBUSY;
	rc = change_check(fs, NULL);
	if (rc < 0)
		return rc;
	if (d->deleted)
		return -ENOENT;	/* the log deleted it meanwhile */
	pthread_mutex_lock(&fs->close_lock);
	if (d->w) {
		rl_writer_drain(d->w);
		rl_writer_close(d->w);
		d->w = NULL;
	}
	rl_image_close(d->img);
	d->img = NULL;
	pthread_mutex_unlock(&fs->close_lock);
	d->deleted = true;
	return catalog_change(fs, &r);
}

int fs_disk_rename(struct fs *fs, struct disk *d, const char *name)
{
	struct rl_record r = { .type = RL_RENAME, .disk = d->uuid,
			       .name = name };
	struct rl_err err;
	int rc = rl_name_check(name, &err);

	if (rc == 0)
		rc = change_check(fs, name);
	if (rc == 0 && d->deleted)
		rc = -ENOENT;	/* the log deleted it meanwhile */
	if (rc == 0)
		rc = catalog_change(fs, &r);
	if (rc == 0)
		snprintf(d->name, sizeof(d->name), "%s", name);
	return rc;
}

int fs_disk_setattr(struct fs *fs, struct disk *d, uint32_t mode, uint32_t uid,
		    uint32_t gid)
{
	struct rl_record r = { .type = RL_SETATTR, .disk = d->uuid,
			       .mode = mode & 0777, .uid = uid, .gid = gid };
	int rc = change_check(fs, NULL);

	if (rc == 0 && d->deleted)
		rc = -ENOENT;	/* the log deleted it meanwhile */
	if (rc == 0)
		rc = catalog_change(fs, &r);
	if (rc == 0) {
		d->mode = r.mode;
		d->uid = uid;
		d->gid = gid;
	}
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

int fs_checkpoint_all(struct fs *fs)
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
		if (d->w && rl_writer_checkpoint(d->w, &err) < 0) {
			/* a failed image fdatasync is sticky: say it once */
			if (!d->ckpt_failed)
				fprintf(stderr, "repdisk: %s: %s\n", d->name,
					err.msg);
			d->ckpt_failed = true;
			rc = -EIO;
		} else if (d->w) {
			d->ckpt_failed = false;
		}
	}
	if (rc == 0 && !fs->keep_log)
		trim_logs(fs, list);
	pthread_mutex_unlock(&fs->close_lock);
	return rc;
}

/* Checkpoints every disk once a second, so a restart replays little. */
void *fs_checkpoint_main(void *arg)
{
	struct fs *fs = arg;

	pthread_mutex_lock(&fs->ckpt_wait_lock);
	while (!fs->stop) {
		struct timespec ts;
		uint64_t end;
		bool behind;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&fs->ckpt_wait, &fs->ckpt_wait_lock, &ts);
		if (fs->stop)
			break;
		pthread_mutex_unlock(&fs->ckpt_wait_lock);
		fs_log_reopen();
		pthread_mutex_lock(&fs->lock);
		behind = fs->cat_behind;
		pthread_mutex_unlock(&fs->lock);
		if (behind && rl_log_end(fs->cat_stream, &end) == 0) {
			pthread_mutex_lock(&fs->lock);
			fs_catalog_sync(fs, end);
			pthread_mutex_unlock(&fs->lock);
		}
		fs_checkpoint_all(fs);
		pthread_mutex_lock(&fs->ckpt_wait_lock);
	}
	pthread_mutex_unlock(&fs->ckpt_wait_lock);
	return NULL;
}
