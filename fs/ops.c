/* Metadata handlers: a flat directory of disk files.
 *
 * Every handler replies exactly once on every path.  Changes to names,
 * modes and owners go through the catalog (disks.c); a size change is a
 * RESIZE record through the disk's writer; times are kept on the local
 * image only (they are not part of a disk's contents).  Directories,
 * links and device nodes are refused with EPERM.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define ATTR_TIMEOUT 1.0

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int root_stat(struct fs *fs, struct stat *st)
{
	if (stat(fs->datadir, st) < 0)
		return -errno;
	st->st_ino = FUSE_ROOT_ID;
	st->st_mode = S_IFDIR | (st->st_mode & 07777);
	st->st_nlink = 2;
	return 0;
}

/* fs->lock held */
static int disk_stat(struct disk *d, struct stat *st)
{
	if (!d->img)
		return -ENOENT;
	if (fstat(rl_image_fd(d->img), st) < 0)
		return -errno;
	st->st_ino = d->ino;
	st->st_mode = S_IFREG | d->mode;
	st->st_nlink = 1;
	st->st_uid = d->uid;
	st->st_gid = d->gid;
	return 0;
}

/* fs->lock held */
static int disk_entry(struct disk *d, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = d->ino;
	e->attr_timeout = ATTR_TIMEOUT;
	e->entry_timeout = ATTR_TIMEOUT;
	return disk_stat(d, &e->attr);
}

static void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct disk *d;
	int rc = -ENOENT;

	if (parent != FUSE_ROOT_ID)
		return (void)fuse_reply_err(req, ENOTDIR);
	pthread_mutex_lock(&fs->lock);
	d = fs_disk_by_name(fs, name);
	if (d)
		rc = disk_entry(d, &e);
	pthread_mutex_unlock(&fs->lock);
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	fuse_reply_entry(req, &e);
}

static void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	/* disks live until unmount: nothing to free */
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void fs_op_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct stat st;
	struct disk *d;
	int rc;

	(void)fi;
	if (ino == FUSE_ROOT_ID) {
		rc = root_stat(fs, &st);
	} else {
		pthread_mutex_lock(&fs->lock);
		d = fs_disk_by_ino(fs, ino);
		rc = d ? disk_stat(d, &st) : -ENOENT;
		pthread_mutex_unlock(&fs->lock);
	}
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			  int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct stat st;
	struct disk *d;
	int rc = 0;

	(void)fi;
	if (ino == FUSE_ROOT_ID)
		return (void)fuse_reply_err(req, EPERM);
	/* pinned, not locked: a change of mode or size waits for the log */
	d = fs_disk_pin(fs, ino);
	if (!d)
		return (void)fuse_reply_err(req, ENOENT);
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
		      FUSE_SET_ATTR_GID)) {
		uint32_t mode = to_set & FUSE_SET_ATTR_MODE ?
				(attr->st_mode & 0777) : d->mode;
		uint32_t uid = to_set & FUSE_SET_ATTR_UID ? attr->st_uid : d->uid;
		uint32_t gid = to_set & FUSE_SET_ATTR_GID ? attr->st_gid : d->gid;

		rc = fs_disk_setattr(fs, d, mode, uid, gid);
		if (rc < 0)
			goto out;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (attr->st_size < 0) {
			rc = -EINVAL;
			goto out;
		}
		rc = fs_resize(fs, d, (uint64_t)attr->st_size);
		if (rc < 0)
			goto out;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2] = {
			{ .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT }
		};

		if (to_set & FUSE_SET_ATTR_ATIME)
			ts[0] = to_set & FUSE_SET_ATTR_ATIME_NOW ?
				(struct timespec){ .tv_nsec = UTIME_NOW } :
				attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME)
			ts[1] = to_set & FUSE_SET_ATTR_MTIME_NOW ?
				(struct timespec){ .tv_nsec = UTIME_NOW } :
				attr->st_mtim;
		if (futimens(rl_image_fd(d->img), ts) < 0) {
			rc = -errno;
			goto out;
		}
	}
out:
	pthread_mutex_lock(&fs->lock);
	if (rc == 0)
		rc = disk_stat(d, &st);
	d->open_count--;
	pthread_mutex_unlock(&fs->lock);
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	char *buf;
	size_t used = 0;
	off_t i = 0;

	(void)fi;
	if (ino != FUSE_ROOT_ID)
		return (void)fuse_reply_err(req, ENOTDIR);
	buf = malloc(size);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);

	/* entry i has offset i + 1: ".", "..", then the disks in list order
	 * (new disks go to the front; a disk created during a listing may
	 * shift entries, as on any directory being changed) */
	pthread_mutex_lock(&fs->lock);
	struct disk *d = fs->disks;

	for (;; i++) {
		struct stat st = { 0 };
		const char *name;
		size_t n;

		if (i == 0 || i == 1) {
			name = i == 0 ? "." : "..";
			st.st_ino = FUSE_ROOT_ID;
			st.st_mode = S_IFDIR;
		} else {
			while (d && d->deleted)
				d = d->next;
			if (!d)
				break;
			name = d->name;
			st.st_ino = d->ino;
			st.st_mode = S_IFREG;
			d = d->next;
		}
		if (i < off)
			continue;
		n = fuse_add_direntry(req, buf + used, size - used, name, &st,
				      i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static int create_disk(fuse_req_t req, const char *name, mode_t mode,
		       struct fuse_entry_param *e, struct disk **out)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct disk *d;
	int rc;

	rc = fs_disk_create(fs, name, mode & ~ctx->umask, ctx->uid, ctx->gid,
			    out != NULL, &d);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&fs->lock);
	rc = disk_entry(d, e);
	if (rc < 0 && out)
		d->open_count--;
	pthread_mutex_unlock(&fs->lock);
	if (rc == 0 && out)
		*out = d;
	return rc;
}

static void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	struct disk *d;
	int rc;

	if (parent != FUSE_ROOT_ID)
		return (void)fuse_reply_err(req, ENOTDIR);
	if (!S_ISREG(mode))
		return (void)fuse_reply_err(req, EPERM);
	rc = create_disk(req, name, mode, &e, &d);
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	fi->fh = (uintptr_t)d;	/* the data path needs no lock to find it */
	fi->keep_cache = 0;
	if (fuse_reply_create(req, &e, fi) != 0)
		/* the open was interrupted: no release will come */
		fs_disk_unpin(fs_of(req), d);
}

static void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	struct fuse_entry_param e;
	int rc;

	(void)rdev;
	if (parent != FUSE_ROOT_ID)
		return (void)fuse_reply_err(req, ENOTDIR);
	if (!S_ISREG(mode))
		return (void)fuse_reply_err(req, EPERM);	/* no devices */
	rc = create_disk(req, name, mode, &e, NULL);
	if (rc < 0)
		return (void)fuse_reply_err(req, -rc);
	fuse_reply_entry(req, &e);
}

static void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode)
{
	(void)parent;
	(void)name;
	(void)mode;
	fuse_reply_err(req, EPERM);	/* a flat directory of disks */
}

static void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			  const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EPERM);
}

static void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		       const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EPERM);	/* one name per disk */
}

static void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	int rc;

	if (parent != FUSE_ROOT_ID)
		return (void)fuse_reply_err(req, ENOTDIR);
	rc = fs_disk_delete(fs, name);
	fuse_reply_err(req, -rc);
}

static void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	bool exists;

	(void)parent;
	pthread_mutex_lock(&fs->lock);
	exists = fs_disk_by_name(fs, name) != NULL;
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_err(req, exists ? ENOTDIR : ENOENT);
}

static void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname,
			 unsigned int flags)
{
	struct fs *fs = fs_of(req);
	int rc;

	if (parent != FUSE_ROOT_ID || newparent != FUSE_ROOT_ID)
		return (void)fuse_reply_err(req, ENOTDIR);
	if (flags & ~RENAME_NOREPLACE)
		return (void)fuse_reply_err(req, EINVAL);	/* exchange,
								   whiteout */
	rc = fs_disk_rename(fs, name, newname, flags & RENAME_NOREPLACE);
	fuse_reply_err(req, -rc);
}

static void fs_op_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct disk *d;

	d = fs_disk_pin(fs, ino);
	if (!d)
		return (void)fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR :
					    ENOENT);
	fi->fh = (uintptr_t)d;	/* the data path needs no lock to find it */
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0)
		fs_disk_unpin(fs, d);	/* interrupted: no release comes */
}

static void fs_op_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct disk *d;

	(void)fi;
	pthread_mutex_lock(&fs->lock);
	for (d = fs->disks; d; d = d->next)
		if (d->ino == ino && d->open_count > 0)
			d->open_count--;
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_err(req, 0);
}

/* Every write is answered only once durable, so by the time a client
 * calls fsync the writes it completed are in the log already: fsync only
 * reports whether the disk can still be trusted. */
static void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct disk *d;
	int rc;

	(void)datasync;
	(void)fi;
	pthread_mutex_lock(&fs->lock);
	d = fs_disk_by_ino(fs, ino);
	rc = !d ? ENOENT : d->w && rl_writer_failed(d->w) ? EIO : 0;
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_err(req, rc);
}

static void fs_op_flush(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	fs_op_fsync(req, ino, 1, fi);
}

static void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct statvfs sv;

	(void)ino;
	if (statvfs(fs->datadir, &sv) < 0)
		return (void)fuse_reply_err(req, errno);
	sv.f_namemax = RL_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

static void fs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
			struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct disk *d;
	off_t res = -1;
	int rc = 0;

	(void)fi;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return (void)fuse_reply_err(req, EINVAL);
	pthread_mutex_lock(&fs->lock);
	d = fs_disk_by_ino(fs, ino);
	if (!d)
		rc = ENOENT;
	else if ((res = lseek(rl_image_fd(d->img), off, whence)) < 0)
		rc = errno;
	pthread_mutex_unlock(&fs->lock);
	if (rc)
		return (void)fuse_reply_err(req, rc);
	fuse_reply_lseek(req, res);
}

static void fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* many writes in flight: QEMU and fio issue them in parallel, and
	 * each waits for the log; async direct I/O lets one file descriptor
	 * have many outstanding */
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* write-through: a write is answered when durable, never cached */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
	conn->max_background = 128;
	conn->congestion_threshold = 96;
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_op_init,
	.lookup = fs_op_lookup,
	.forget = fs_op_forget,
	.getattr = fs_op_getattr,
	.setattr = fs_op_setattr,
	.readdir = fs_op_readdir,
	.create = fs_op_create,
	.mknod = fs_op_mknod,
	.mkdir = fs_op_mkdir,
	.symlink = fs_op_symlink,
	.link = fs_op_link,
	.unlink = fs_op_unlink,
	.rmdir = fs_op_rmdir,
	.rename = fs_op_rename,
	.open = fs_op_open,
	.release = fs_op_release,
	.flush = fs_op_flush,
	.fsync = fs_op_fsync,
	.statfs = fs_op_statfs,
	.lseek = fs_op_lseek,
	.read = fs_op_read,
	.write_buf = fs_op_write_buf,
	.fallocate = fs_op_fallocate,
};
