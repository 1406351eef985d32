/* The data path: reads from the image, the write pipeline, fallocate.
 *
 * Notes on the design
 * -------------------
 * A write is copied once, from the FUSE buffer into a record buffer with
 * room for the header in front, and handed to the disk's writer
 * (rl_writer_submit_buf); the handler returns without replying.  The
 * writer appends it to the log; once the log reports it durable the
 * writer applies it to the image, in log order, and only then does
 * write_done() answer the request, from the writer's applier.  So
 * many writes are in flight at once, overlapping writes land in log
 * order, and nothing waits for a round trip under a lock.
 *
 * A buffer of zeros becomes a ZERO record (a hole in the image, 128 bytes
 * in the log).  Bytes in flight are bounded (fs->max_flight_bytes): a
 * handler waits for room before copying, so memory stays flat however
 * fast clients write.
 *
 * Reads are spliced from the image file (zero-copy where the kernel
 * allows).  A read of a range with a write in flight sees the old or the
 * new data, as with any disk: only acknowledged writes are promised.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <linux/falloc.h>

struct wreq {
	fuse_req_t req;
	struct fs *fs;
	size_t size;		/* bytes to report written; 0: reply_err(0) */
	size_t flight;		/* bytes counted against back-pressure */
};

static struct disk *disk_of(struct fuse_file_info *fi)
{
	return (struct disk *)(uintptr_t)fi->fh;
}

int fs_write_errno(int err)
{
	return err == -EROFS ? EROFS : EIO;
}

static void flight_acquire(struct fs *fs, size_t n)
{
	pthread_mutex_lock(&fs->flight_lock);
	/* one request alone may exceed the bound; it must still go */
	while (fs->flight_bytes > 0 && fs->flight_bytes + n > fs->max_flight_bytes)
		pthread_cond_wait(&fs->flight_cond, &fs->flight_lock);
	fs->flight_bytes += n;
	pthread_mutex_unlock(&fs->flight_lock);
}

static void flight_release(struct fs *fs, size_t n)
{
	pthread_mutex_lock(&fs->flight_lock);
	fs->flight_bytes -= n;
	pthread_cond_broadcast(&fs->flight_cond);
	pthread_mutex_unlock(&fs->flight_lock);
}

/* Runs on the writer's applier (replog.h: never waits) once durable and
 * applied (err 0), or failed. */
static void write_done(void *opaque, int err)
{
	struct wreq *wr = opaque;

	if (err < 0)
		fuse_reply_err(wr->req, fs_write_errno(err));
	else if (wr->size)
		fuse_reply_write(wr->req, wr->size);
	else
		fuse_reply_err(wr->req, 0);
	flight_release(wr->fs, wr->flight);
	free(wr);
}

/* Submits a record whose completion answers req.  Takes buf (NULL for
 * records without data) and the r->data_len bytes of back-pressure that
 * the caller acquired. */
static void submit(fuse_req_t req, struct disk *d, const struct rl_record *r,
		   void *buf, size_t cap, size_t reply_size)
{
	struct fs *fs = fuse_req_userdata(req);
	struct wreq *wr = malloc(sizeof(*wr));
	int rc;

	if (!wr) {
		free(buf);
		flight_release(fs, r->data_len);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	*wr = (struct wreq){ req, fs, reply_size, r->data_len };
	if (!d->w) {
		free(buf);
		rc = -EIO;	/* read-only: its log cannot be applied */
	} else if (buf)
		rc = rl_writer_submit_buf(d->w, r, buf, cap, write_done, wr);
	else
		rc = rl_writer_submit(d->w, r, write_done, wr);
	if (rc < 0) {
		flight_release(fs, wr->flight);
		free(wr);
		fuse_reply_err(req, rc == -ENOMEM || rc == -EINVAL ? -rc :
			       fs_write_errno(rc));
	}
}

static bool all_zero(const uint8_t *p, size_t n)
{
	/* a zero prefix, then the buffer compared with itself shifted */
	if (n < 16)
		return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
	for (size_t i = 0; i < 16; i++)
		if (p[i])
			return false;
	return memcmp(p, p + 16, n - 16) == 0;
}

void fs_op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
		     off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct disk *d = disk_of(fi);
	size_t size = fuse_buf_size(bufv);
	struct rl_record r = { .disk = d->uuid, .offset = (uint64_t)off,
			       .length = size };
	uint8_t *buf;
	ssize_t n;

	(void)ino;
	if (size == 0)
		return (void)fuse_reply_write(req, 0);
	/* past what the data directory's file system holds, the record
	 * would be durable and then fail to apply on every replica */
	if (off < 0 || (uint64_t)off > fs->max_size ||
	    size > fs->max_size - (uint64_t)off)
		return (void)fuse_reply_err(req, EFBIG);
	if (size > RL_RECORD_MAX_DATA)
		return (void)fuse_reply_err(req, EINVAL);

	flight_acquire(fs, size);
	buf = malloc(RL_RECORD_HDR_SIZE + size);
	if (!buf) {
		flight_release(fs, size);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);

	dst.buf[0].mem = buf + RL_RECORD_HDR_SIZE;
	n = fuse_buf_copy(&dst, bufv, 0);
	if (n < 0 || (size_t)n != size) {
		free(buf);
		flight_release(fs, size);
		return (void)fuse_reply_err(req, n < 0 ? (int)-n : EIO);
	}
	if (all_zero(buf + RL_RECORD_HDR_SIZE, size)) {
		/* a hole: the buffer goes now, the record is 128 bytes */
		r.type = RL_ZERO;
		free(buf);
		flight_release(fs, size);
		return submit(req, d, &r, NULL, 0, size);
	}
	r.type = RL_WRITE;
	r.data = buf + RL_RECORD_HDR_SIZE;
	r.data_len = size;
	submit(req, d, &r, buf, RL_RECORD_HDR_SIZE + size, size);
}

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	struct disk *d = disk_of(fi);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	(void)ino;
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = rl_image_fd(d->img);
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

int fs_resize(struct fs *fs, struct disk *d, uint64_t size)
{
	struct rl_record r = { .type = RL_RESIZE, .disk = d->uuid,
			       .offset = size };
	int rc;

	if (size > fs->max_size)
		return -EFBIG;	/* see fs_op_write_buf */
	/* not under fs->lock (the caller pinned d): close_lock keeps the
	 * writer from being closed under us while the RESIZE waits */
	pthread_mutex_lock(&fs->close_lock);
	/* no writer: read-only, its log cannot be applied */
	rc = d->w ? rl_writer_submit_sync(d->w, &r) : -EIO;
	pthread_mutex_unlock(&fs->close_lock);
	return rc < 0 ? -fs_write_errno(rc) : 0;
}

void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		     off_t len, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct disk *d = disk_of(fi);
	struct rl_record r = { .disk = d->uuid, .offset = (uint64_t)off,
			       .length = (uint64_t)len };
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	struct stat st;

	(void)ino;
	if (off < 0 || len <= 0 || off > INT64_MAX - len)
		return (void)fuse_reply_err(req, EINVAL);
	if ((uint64_t)(off + len) > fs->max_size && !keep)
		return (void)fuse_reply_err(req, EFBIG);	/* see write */
	if (fstat(rl_image_fd(d->img), &st) < 0)
		return (void)fuse_reply_err(req, errno);
	mode &= ~FALLOC_FL_KEEP_SIZE;

	switch (mode) {
	case 0:
		/* preallocation: a raw image reads the same either way, so
		 * only a size change is a change to the disk */
		if (keep || off + len <= st.st_size)
			return (void)fuse_reply_err(req, 0);
		r.type = RL_RESIZE;
		r.offset = (uint64_t)(off + len);
		r.length = 0;
		break;
	case FALLOC_FL_PUNCH_HOLE:
		if (!keep)
			return (void)fuse_reply_err(req, EINVAL);
		r.type = RL_DISCARD;
		break;
	case FALLOC_FL_ZERO_RANGE:
		if (keep && off + len > st.st_size) {
			if (off >= st.st_size)
				return (void)fuse_reply_err(req, 0);
			r.length = (uint64_t)(st.st_size - off);
		}
		r.type = RL_ZERO;
		break;
	default:
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	}
	submit(req, d, &r, NULL, 0, 0);
}
