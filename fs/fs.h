/* The repdisk FUSE daemon: shared state of the handlers.
 *
 *   main.c    options, daemon start-up with a readiness pipe, teardown
 *   disks.c   the table of disks, the catalog changes that change it (through
 *             replog's catalog writer), the checkpoint thread
 *   ops.c     metadata handlers: lookup, getattr, setattr, readdir, create,
 *             unlink, rename, statfs, open, fsync, lseek, refusals
 *   io.c      the data path: read (spliced from the image), write_buf (the
 *             write pipeline), fallocate
 *
 * Locks, numbered where they are declared in struct fs: fs->cat_lock may
 * be held when fs->lock is taken, never the reverse.  fs->close_lock and
 * fs->flight_lock nest with neither: each is taken alone, with only
 * replog's own locks inside.  cat_lock is held across a catalog change's
 * log round trip, close_lock across a truncate's (so that its writer is
 * not closed under it: the checkpoint thread waits meanwhile); fs->lock
 * never is.
 */
#ifndef REPDISK_FS_H
#define REPDISK_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>

#include "replog.h"

struct disk {
	fuse_ino_t ino;
	struct rl_uuid uuid;
	char name[RL_NAME_MAX + 1];	/* under fs->lock */
	uint32_t mode, uid, gid;	/* under fs->lock */
	unsigned open_count;		/* under fs->lock */
	bool deleted;			/* under fs->lock */
	struct rl_stream *stream;
	struct rl_image *img;		/* NULL once deleted */
	struct rl_writer *w;		/* NULL once deleted, or read-only */
	bool ckpt_failed;		/* checkpoint thread: said once */
	struct disk *next;		/* under fs->lock */
};

struct fs {
	const char *datadir;
	const char *log_uri;
	/* Who claims the disks: "HOST:DATADIR" as one printable word (the
	 * way checkpoints keep a claim's owner).  A disk whose newest claim
	 * names someone else is another writer's (see --takeover). */
	char claim_as[RL_NAME_MAX + 1];
	bool takeover;			/* --takeover: claim other hosts' disks */
	bool keep_log;			/* --keep-log: no retention */
	bool trim_failing;		/* checkpoint thread only */
	int datadir_lock_fd;
	size_t zstd_min;
	unsigned stuck_ms;		/* report writes in flight this long */
	uint64_t max_size;		/* the largest image the data
					   directory holds: no disk grows past
					   it (rl_datadir_max_size) */

	struct rl_log *log;

	/* 1. serializes catalog changes, held across their round trips */
	pthread_mutex_t cat_lock;
	struct rl_catalog_writer *cw;	/* under cat_lock */

	/* 2. the disk table: held only to look up and mark */
	pthread_mutex_t lock;
	struct disk *disks;		/* all, deleted ones too; under lock */
	fuse_ino_t next_ino;		/* under lock */

	/* 3. writers closed vs checkpointed and truncates; alone */
	pthread_mutex_t close_lock;

	/* 4. back-pressure: bytes of writes in flight; alone */
	pthread_mutex_t flight_lock;
	pthread_cond_t flight_cond;
	size_t flight_bytes, max_flight_bytes;	/* under flight_lock */

	pthread_t ckpt_thread;
	pthread_mutex_t ckpt_wait_lock;
	pthread_cond_t ckpt_wait;
	bool stop;			/* under ckpt_wait_lock */
};

/* disks.c */
int fs_disks_load(struct fs *fs, struct rl_err *err);
void fs_disks_close(struct fs *fs);
struct disk *fs_disk_by_ino(struct fs *fs, fuse_ino_t ino);	/* fs->lock */
struct disk *fs_disk_by_name(struct fs *fs, const char *name);	/* fs->lock */
/* Finds the disk of ino and pins it (open_count: it is not deleted while
 * pinned), taking fs->lock; NULL if there is none.  An open file pins its
 * disk until release. */
struct disk *fs_disk_pin(struct fs *fs, fuse_ino_t ino);
void fs_disk_unpin(struct fs *fs, struct disk *d);
/* The catalog changes; each returns 0 or -errno, called with no lock held
 * (they wait for the log).  create: *out is the new disk, pinned (its
 * open_count 1) when open.  setattr: d pinned by the caller. */
int fs_disk_create(struct fs *fs, const char *name, mode_t mode, uid_t uid,
		   gid_t gid, bool open, struct disk **out);
int fs_disk_delete(struct fs *fs, const char *name);
int fs_disk_rename(struct fs *fs, const char *name, const char *newname,
		   bool noreplace);
int fs_disk_setattr(struct fs *fs, struct disk *d, uint32_t mode, uint32_t uid,
		    uint32_t gid);
int fs_checkpoint_all(struct fs *fs);
/* While a failed change left the catalog behind the log: applies what
 * the catalog stream holds, ours that failed to apply included, and
 * brings the disk table in line with it.  0, -EIO (still behind) or
 * -EROFS (fenced).  No lock held. */
int fs_catalog_sync(struct fs *fs);
/* main.c: reopens the log file after a SIGHUP (checkpoint thread). */
void fs_log_reopen(void);
void *fs_checkpoint_main(void *arg);

/* ops.c, io.c */
extern const struct fuse_lowlevel_ops fs_ops;
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void fs_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
		     off_t off, struct fuse_file_info *fi);
void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		     off_t len, struct fuse_file_info *fi);
/* Submits a RESIZE and waits for it: 0 or -errno. */
int fs_resize(struct fs *fs, struct disk *d, uint64_t size);
/* Maps a writer's error to what a client sees: EROFS when fenced, EIO. */
int fs_write_errno(int err);

#endif
