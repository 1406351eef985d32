/* The applier: records in log order -> a raw image file.
 *
 * Notes on the design
 * -------------------
 * This is the only code that modifies images, on the primary and on
 * followers alike, so replicas that apply the same log converge byte for
 * byte.  Each record is an absolute change (set a range to data, set a
 * range to zeros, set the size), so replaying records from a checkpoint
 * over an image that already holds some of them gives the same bytes as
 * replaying them over the checkpointed image: recovery is "replay from the
 * checkpoint", whatever the crash left behind.
 *
 * ZERO and DISCARD punch holes (FALLOC_FL_PUNCH_HOLE) so images stay
 * sparse; ZERO past the end extends the file, DISCARD never does.
 *
 * Epochs.  A stream starts with a CLAIM.  The applier keeps the newest
 * claimed epoch and the last sequence number applied in it:
 *   - a record of an older epoch is stale (a fenced writer): ignored;
 *   - a record of the current epoch with a sequence number already applied
 *     is a duplicate: ignored;
 *   - a record of a newer epoch that is not a CLAIM was written by no one
 *     who claimed the disk: refused as an error.
 *
 * Gaps.  Without a key, a record past the next sequence number is applied
 * as it comes (an append failed before it).  Sealed records are held to
 * more, because someone who can write the log's storage could delete one
 * (ENCRYPTION.md).  Honest holes still happen: a failed append, when
 * records after it were in flight and landed.  So the rule is one that
 * every applier can follow alike, the primary's own included:
 *   - a sealed record past a hole in its epoch is void: not applied,
 *     its position passed.  The writer failed its submitter (EIO), and
 *     seals nothing more in that epoch: it claims again (writer.c);
 *   - a writer seals seq S only when all of S - RL_SEQ_WINDOW and before
 *     are durable.  A sealed record more than RL_SEQ_WINDOW past the hole
 *     proves the hole was durable once: refused, the disk stops there;
 *   - a sealed CLAIM ends the epoch before it: its seq is the last one
 *     its writer applied there, and its epoch the next one (1 for the
 *     first).  Less applied here means records were deleted, a newer
 *     epoch means claims were: refused.
 * A hole is thus found within RL_SEQ_WINDOW records or at the next claim,
 * and no applier ever applies a sealed record out of order.
 *
 * Where data becomes durable.  rl_image_checkpoint() fdatasync()s the
 * image, and only then replaces DATADIR/.repdisk/ckpt/UUID atomically with
 * the next position, the epoch and the last sequence number.  A checkpoint
 * therefore never claims more than the image holds.
 *
 * Image writeback.  Applied writes go to the page cache; a checkpoint's
 * fdatasync writes them back, once a second.  Under a steady sequential
 * write that is most of a second's data at once, and the log's
 * fdatasyncs, on the same disk, wait behind it: the write path's tail
 * latency.  So the mount also flushes each image between checkpoints
 * (rl_image_flush, every 50 ms: fs/disks.c) once FLUSH_MIN_BYTES were
 * written to it since in writes of FLUSH_LARGE or more: the same bytes
 * go back in smaller steps.  Only large writes count.  A guest's small
 * writes are scattered, and flushing them more often than the checkpoint
 * does only adds fdatasyncs over the same pages.  Measured against the
 * flush this replaced (every 200 ms past 32 MiB of any writes): seq-write
 * p99 61-65 -> 29-36 ms, random 4 KiB writes 29k -> 37-40k IOPS.
 * And the applier starts the writeback of each large write as it applies
 * it (sync_file_range, SYNC_FILE_RANGE_WRITE: it does not wait), so the
 * image's bytes go to the disk in a steady stream beside the log's
 * direct appends instead of in bursts at each flush; the pages stay
 * cached for reads.  With the log's appends direct, that took the
 * seq-write p99 from 29-31 to 14-20 ms (docs/BENCHMARKS.md, "Direct log
 * appends"); while the log went through the page cache too, it did not
 * help.
 *
 * Paced checkpoints.  Small writes (random 4 KiB, a guest's ordinary
 * traffic) are not written back as they come: their pages stay dirty
 * until the checkpoint's fdatasync, which then submits a second of them
 * at once, scattered (at 37k writes a second, ~120 MB).  The log's
 * group-commit writes and flushes queue behind those thousands of
 * requests: for 200-300 ms once a second, writes take several times as
 * long (the random-write tail).  So the applier counts the bytes of small
 * writes per region of the image (PACE_SLOTS regions, at least
 * 1 << PACE_MIN_SHIFT bytes each, more for a large image), and a
 * checkpoint first writes those regions back in offset order with
 * sync_file_range, with at most PACE_BUDGET counted bytes submitted and
 * not yet waited for: the log's requests then queue behind at most that
 * much.  What is dirtied meanwhile gets another pass (PACE_PASSES at
 * most), and the fdatasync that follows has little left to write.  The
 * counts only pace: the fdatasync still covers every page, so a count
 * lost to a region that moved (a resize) or to overflow costs a burst,
 * never data.  The wait reports a writeback error as fdatasync would,
 * and consumes it for this descriptor, so it fails the image the same
 * way.  Measured (BENCHMARKS.md, "Paced checkpoints"): the bursts once a
 * second are gone, random 4 KiB writes' p99 went from 4.9-5.0 to
 * 3.4-4.1 ms; 1 MiB in flight did as well, 16 MiB brought the bursts
 * back.
 *
 * Page-cache folios.  Linux sizes a page-cache folio by the write that
 * makes it (ext4 has large folios since 6.x): a 1 MiB write applied
 * whole leaves a 1 MiB folio, and every later 4 KiB write into it walks
 * its 256 block heads (ext4_block_write_begin: 23% of the CPU under
 * random 4 KiB writes, by perf).  So a write is applied in pieces of at
 * most APPLY_PIECE: random 4 KiB writes went from 20k to 26-28k IOPS;
 * sequential writes lost 0-5% (more calls), reads did not move.
 *
 * Direct writes (followers).  A follower's image is not read while it
 * follows, so the page cache only costs it: a copy of every byte into
 * pages allocated for the purpose, and their writeback at the next
 * checkpoint.  rl_image_set_direct() opens a second descriptor with
 * O_DIRECT, and the aligned middle of every write of at least
 * DIRECT_MIN bytes goes through it, copied first into an aligned buffer
 * (the record's bytes sit at any address in the reader's buffer): one
 * per applying thread, so that a follower of 100 disks holds 1 MiB of
 * them, not 100 MiB; the unaligned ends, small writes and everything else
 * (holes, sizes) use the ordinary descriptor.  Mixing the two is safe on
 * Linux: a direct write first writes back and then drops the cached
 * pages of its range, so each write lands in log order whichever way it
 * goes.  A checkpoint's fdatasync covers both (one file).  A file
 * system without O_DIRECT (tmpfs before 6.6) keeps the page cache.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/falloc.h>

#define CKPT_MAGIC "repdisk-checkpoint 1"

/* See "Image writeback". */
#define FLUSH_MIN_BYTES	(8ull << 20)
#define FLUSH_LARGE	((size_t)128 << 10)
/* See "Paced checkpoints". */
#define PACE_SLOTS	4096u
#define PACE_MIN_SHIFT	22u
#define PACE_BUDGET	((uint64_t)4 << 20)
#define PACE_DEPTH	64u	/* regions submitted and not waited for */
#define PACE_PASSES	3
/* See "Page-cache folios". */
#define APPLY_PIECE	((size_t)64 << 10)
/* See "Direct writes". */
#define DIRECT_MIN	((size_t)64 << 10)
#define DIRECT_BUF	((size_t)1 << 20)
/* What O_DIRECT asks of offsets, lengths and buffers on any device with
 * logical blocks of 4 KiB or less: a device that wants more refuses the
 * first write (EINVAL), and the image goes back to the page cache. */
#define DIRECT_ALIGN	((size_t)4096)

/* A disk's stream: claimed before anything is written, sequence numbers. */
static const struct rl_epoch_rules disk_rules = { .claim_first = true,
						  .seq = true };

struct rl_image {
	struct rl_uuid disk;
	char uuid_str[RL_UUID_STRLEN + 1];
	char *path;
	char *ckpt_dir;
	int fd;
	int direct_fd;		/* O_DIRECT, or -1: "Direct writes" */
	uint64_t next_pos;
	uint64_t epoch;
	uint64_t last_seq;
	uint64_t ckpt_pos;	/* next_pos as of the last checkpoint */
	uint64_t flush_pos;	/* ... as of the last flush or checkpoint */
	_Atomic uint64_t unflushed;	/* bytes of large writes since (the applier
					   adds, a flush or commit clears) */
	char owner[RL_NAME_MAX + 1];	/* host of the newest claim */
	/* "Paced checkpoints": bytes of small writes per region since the
	 * last pass (the applier adds, the checkpoint takes), and the
	 * region's size as a shift (set by the applier) */
	_Atomic uint32_t *pace;
	_Atomic unsigned pace_shift;
	/* -EIO once an fdatasync of the image failed: sticky, since the
	 * kernel reports a writeback error once, and a later fdatasync can
	 * "succeed" over pages that never reached the disk.  Set by the
	 * checkpointing thread, read by the applier. */
	_Atomic int failed;
	/* A position passed by repdisk log skip leaves a hole in the seqs of
	 * its epoch, if its record was of it: the next record applied, or
	 * the next claim, is taken as it comes (sealed gap rules and claim
	 * seq check suspended once).  Until then checkpoints keep the
	 * skipped position, so a restart passes it again. */
	bool resync;
	uint64_t resync_at;
	rl_skip_fn skip_fn;	/* rl_image_set_skip */
	void *skip_arg;
};

void rl_claim_owner(char out[RL_NAME_MAX + 1], const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t n = len < RL_NAME_MAX ? len : RL_NAME_MAX;

	for (size_t i = 0; i < n; i++)
		out[i] = p[i] > ' ' && p[i] < 0x7f ? (char)p[i] : '_';
	out[n] = '\0';
}

int rl_checkpoint_read(const char *ckpt_dir, const struct rl_uuid *disk,
		       struct rl_checkpoint *out, struct rl_err *err)
{
	char path[PATH_MAX], buf[512], want[RL_UUID_STRLEN + 1];
	uint64_t pos, epoch, seq;
	const char *p;
	int n;

	rl_uuid_format(disk, want);
	snprintf(path, sizeof(path), "%s/%s", ckpt_dir, want);
	n = rl_read_small_file(path, buf, sizeof(buf));
	if (n == -ENOENT) {
		memset(out, 0, sizeof(*out));	/* apply from position 0 */
		return rl_err_set(err, ENOENT, "checkpoint %s: none (the disk "
				  "has never been checkpointed here)", path);
	}
	if (n < 0)
		return rl_err_set(err, -n, "checkpoint %s: %s", path,
				  strerror(-n));
	/* exactly the lines rl_checkpoint_write() writes: a number is digits
	 * and nothing else (no sign, no blank, no "4junk") */
	p = rl_scan_lit(buf, CKPT_MAGIC "\ndisk ");
	p = rl_scan_lit(p, want);
	p = rl_scan_u64(rl_scan_lit(p, "\nnext_pos "), INT64_MAX, &pos, '\n');
	p = rl_scan_u64(rl_scan_lit(p, "epoch "), UINT64_MAX, &epoch, '\n');
	p = rl_scan_u64(rl_scan_lit(p, "last_seq "), UINT64_MAX, &seq, '\n');
	/* optional: checkpoints before it was added have no owner line */
	out->owner[0] = '\0';
	if (p && *p) {
		size_t len;

		p = rl_scan_lit(p, "owner ");
		len = p ? strcspn(p, "\n") : 0;
		if (p && len > 0 && len <= RL_NAME_MAX && p[len] == '\n' &&
		    !p[len + 1])
			rl_claim_owner(out->owner, p, len);
		else
			p = NULL;
	}
	if (!p)
		return rl_err_set(err, EBADMSG, "checkpoint %s: not a "
				  "checkpoint of disk %s", path, want);
	out->next_pos = pos;
	out->epoch = epoch;
	out->last_seq = seq;
	return 0;
}

static int ckpt_load(struct rl_image *img, struct rl_err *err)
{
	struct rl_checkpoint c;
	int rc = rl_checkpoint_read(img->ckpt_dir, &img->disk, &c, err);

	if (rc < 0 && rc != -ENOENT)
		return rc;
	img->next_pos = img->ckpt_pos = c.next_pos;
	img->epoch = c.epoch;
	img->last_seq = c.last_seq;
	memcpy(img->owner, c.owner, sizeof(img->owner));
	return 0;
}

/* Sizes the regions of "Paced checkpoints" to the image: PACE_SLOTS of
 * them cover it (a write past the end counts in the last). */
static void pace_resize(struct rl_image *img)
{
	struct stat st;
	unsigned shift = PACE_MIN_SHIFT;

	if (fstat(img->fd, &st) == 0)
		while (shift < 62 && ((uint64_t)st.st_size >> shift) >= PACE_SLOTS)
			shift++;
	atomic_store_explicit(&img->pace_shift, shift, memory_order_relaxed);
}

static void pace_count(struct rl_image *img, uint64_t off, size_t len)
{
	unsigned shift = atomic_load_explicit(&img->pace_shift,
					      memory_order_relaxed);
	uint64_t i = off >> shift;

	/* wraps past 4 GiB in a second: only pacing is lost */
	atomic_fetch_add_explicit(&img->pace[i < PACE_SLOTS ? i : PACE_SLOTS - 1],
				  (uint32_t)len, memory_order_relaxed);
}

int rl_image_open(const char *path, const char *ckpt_dir,
		  const struct rl_uuid *disk, struct rl_image **out,
		  struct rl_err *err)
{
	struct rl_image *img = calloc(1, sizeof(*img));
	int rc;

	if (!img)
		return rl_err_set(err, ENOMEM, "out of memory");
	img->disk = *disk;
	rl_uuid_format(disk, img->uuid_str);
	img->path = strdup(path);
	img->ckpt_dir = strdup(ckpt_dir);
	img->fd = -1;
	img->direct_fd = -1;
	img->pace = calloc(PACE_SLOTS, sizeof(*img->pace));
	if (!img->path || !img->ckpt_dir || !img->pace) {
		rl_image_close(img);
		return rl_err_set(err, ENOMEM, "out of memory");
	}
	rc = ckpt_load(img, err);
	if (rc < 0) {
		rl_image_close(img);
		return rc;
	}
	/* An image with a checkpoint holds what the log may no longer have
	 * (retention): one that is gone is restored or reseeded, never
	 * silently recreated empty.  Images are plain files, never links. */
	img->fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC |
		       (img->ckpt_pos ? 0 : O_CREAT), 0600);
	if (img->fd < 0 && errno == ENOENT) {
		rc = rl_err_set(err, ENOENT, "image %s is missing, but its "
				"checkpoint says it held the log up to position "
				"%" PRIu64 ": refusing to recreate it empty; "
				"restore the file, or rebuild this data "
				"directory's copy with repdisk seed "
				"(docs/FAILOVER.md)", path, img->ckpt_pos);
		rl_image_close(img);
		return rc;
	}
	if (img->fd < 0) {
		rc = rl_err_set(err, errno, "image %s: %s", path,
				errno == ELOOP ? "a symbolic link (images are "
				"plain files)" : strerror(errno));
		rl_image_close(img);
		return rc;
	}
	pace_resize(img);
	*out = img;
	return 0;
}

void rl_image_close(struct rl_image *img)
{
	if (!img)
		return;
	if (img->fd >= 0)
		close(img->fd);
	if (img->direct_fd >= 0)
		close(img->direct_fd);
	free(img->path);
	free(img->ckpt_dir);
	free(img->pace);
	free(img);
}

uint64_t rl_image_next_pos(const struct rl_image *img)
{
	return img->next_pos;
}

uint64_t rl_image_epoch(const struct rl_image *img)
{
	return img->epoch;
}

uint64_t rl_image_checkpointed(const struct rl_image *img)
{
	return img->ckpt_pos;
}

const char *rl_image_owner(const struct rl_image *img)
{
	return img->owner;
}

int rl_image_failed(const struct rl_image *img)
{
	return atomic_load(&((struct rl_image *)img)->failed);
}

uint64_t rl_image_last_seq(const struct rl_image *img)
{
	return img->last_seq;
}

int rl_image_fd(const struct rl_image *img)
{
	return img->fd;
}

static int write_zeros(int fd, uint64_t off, uint64_t len)
{
	static const char zeros[65536];

	while (len > 0) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		ssize_t w = pwrite(fd, zeros, n, (off_t)off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

/* Makes [off, off+len) read as zeros, deallocating it where the
 * filesystem can; never changes the size. */
static int punch(int fd, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	return write_zeros(fd, off, len);
}

/* Writes len bytes at off through the page cache, in pieces (see
 * "Page-cache folios"). */
static int write_cached(int fd, const char *p, uint64_t off, size_t len)
{
	while (len > 0) {
		size_t n = len < APPLY_PIECE ? len : APPLY_PIECE;
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		off += (uint64_t)w;
		len -= (size_t)w;
	}
	return 0;
}

/* The aligned buffer of "Direct writes": one per applying thread, not
 * per image (a follower of 100 disks would hold 100 MiB of them), freed
 * when the thread ends.  NULL if there is no memory for it. */
static pthread_key_t direct_key;
static pthread_once_t direct_once = PTHREAD_ONCE_INIT;
static bool direct_key_ok;

static void direct_key_make(void)
{
	direct_key_ok = pthread_key_create(&direct_key, free) == 0;
}

static void *direct_buffer(void)
{
	void *buf;

	pthread_once(&direct_once, direct_key_make);
	if (!direct_key_ok)
		return NULL;
	buf = pthread_getspecific(direct_key);
	if (buf)
		return buf;
	if (posix_memalign(&buf, DIRECT_ALIGN, DIRECT_BUF) != 0)
		return NULL;
	if (pthread_setspecific(direct_key, buf) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

bool rl_image_set_direct(struct rl_image *img)
{
	int fd;

	if (img->direct_fd >= 0)
		return true;
	fd = rl_reopen_direct(img->fd, O_RDWR);
	if (fd < 0)
		return false;
	img->direct_fd = fd;
	return true;
}

/* The image goes back to the page cache for good (a device that wants a
 * coarser alignment than DIRECT_ALIGN). */
static void direct_off(struct rl_image *img, int err)
{
	rl_msg(RL_LOG_NOTICE, "image %s: direct writes refused (%s); "
	       "writing through the page cache", img->path, strerror(err));
	close(img->direct_fd);
	img->direct_fd = -1;
}

/* Writes len bytes at off, both multiples of DIRECT_ALIGN, with O_DIRECT
 * through this thread's aligned buffer (see "Direct writes"). */
static int write_direct(struct rl_image *img, const char *p, uint64_t off,
			size_t len)
{
	uint8_t *buf = direct_buffer();

	while (len > 0) {
		size_t n = len < DIRECT_BUF ? len : DIRECT_BUF;
		ssize_t w;

		if (img->direct_fd < 0 || !buf)
			return write_cached(img->fd, p, off, len);
		memcpy(buf, p, n);
		w = pwrite(img->direct_fd, buf, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EINVAL) {
			direct_off(img, errno);
			continue;
		}
		if (w < 0)
			return -errno;
		if ((size_t)w < n) {
			/* short (a full disk, say): the rest of this piece
			 * as the page cache takes it, or its error */
			int rc = write_cached(img->fd, p + w, off + (uint64_t)w,
					      n - (size_t)w);

			if (rc < 0)
				return rc;
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int apply_write(struct rl_image *img, const struct rl_record *r)
{
	const char *p = r->data;
	uint64_t off = r->offset;
	size_t len = r->data_len, head, body;
	int rc;

	if (img->direct_fd < 0 || len < DIRECT_MIN) {
		rc = write_cached(img->fd, p, off, len);
		if (rc == 0 && len < FLUSH_LARGE)
			pace_count(img, off, len);
		if (rc == 0 && len >= FLUSH_LARGE) {
			/* its writeback starts now (see "Image writeback");
			 * a failure here costs only that */
			sync_file_range(img->fd, (off_t)off, (off_t)len,
					SYNC_FILE_RANGE_WRITE);
			atomic_fetch_add_explicit(&img->unflushed, len,
						  memory_order_relaxed);
		}
		return rc;
	}
	/* the unaligned ends through the page cache, the middle direct */
	head = (DIRECT_ALIGN - off % DIRECT_ALIGN) % DIRECT_ALIGN;
	body = (len - head) / DIRECT_ALIGN * DIRECT_ALIGN;
	if ((rc = write_cached(img->fd, p, off, head)) < 0 ||
	    (rc = write_direct(img, p + head, off + head, body)) < 0)
		return rc;
	return write_cached(img->fd, p + head + body, off + head + body,
			    len - head - body);
}

static int apply_range(struct rl_image *img, const struct rl_record *r)
{
	struct stat st;
	uint64_t end = r->offset + r->length, size;
	int rc;

	if (r->type == RL_WRITE)
		return apply_write(img, r);
	if (fstat(img->fd, &st) < 0)
		return -errno;
	size = (uint64_t)st.st_size;
	rc = punch(img->fd, r->offset, r->offset >= size ? 0 :
		   (end < size ? end : size) - r->offset);
	if (rc == 0 && r->type == RL_ZERO && end > size) {
		if (ftruncate(img->fd, (off_t)end) < 0)
			rc = -errno;
		else
			pace_resize(img);
	}
	return rc;
}

void rl_image_set_skip(struct rl_image *img, rl_skip_fn fn, void *arg)
{
	img->skip_fn = fn;
	img->skip_arg = arg;
}

/* Whether the refused position pos is one to pass over; says so. */
static bool skip_refused(struct rl_image *img, uint64_t pos, const char *why)
{
	if (!img->skip_fn || atomic_load(&img->failed) ||
	    pos != img->next_pos ||
	    !img->skip_fn(img->skip_arg, &img->disk, pos))
		return false;
	rl_msg(RL_LOG_NOTICE, "image %s: position %" PRIu64 " skipped, as "
	       "the catalog says (repdisk log skip): %s", img->path, pos, why);
	if (!img->resync)
		img->resync_at = pos;
	img->resync = true;
	img->next_pos++;
	return true;
}

bool rl_image_skip_unreadable(struct rl_image *img, const char *why)
{
	return skip_refused(img, img->next_pos, why);
}

static int image_apply(struct rl_image *img, const struct rl_record *r,
		       uint64_t pos, struct rl_err *err);

int rl_image_apply(struct rl_image *img, const struct rl_record *r,
		   uint64_t pos, struct rl_err *err)
{
	struct rl_err local;
	int rc;

	if (!err)
		err = &local;
	rc = image_apply(img, r, pos, err);
	if (rc < 0 && rc != -ENOMEM && skip_refused(img, pos, err->msg))
		return RL_SKIPPED;
	return rc;
}

static int image_apply(struct rl_image *img, const struct rl_record *r,
		       uint64_t pos, struct rl_err *err)
{
	const char *tn = rl_type_name(r->type);
	int rc = 0;

	if (atomic_load(&img->failed))
		return rl_err_layer(err, RL_ERR_IMAGE,
				    rl_err_set(err, EIO, "image %s: position %"
					       PRIu64 ": not applied: an "
					       "fdatasync of the image failed "
					       "(the disk must be opened "
					       "again)", img->path, pos));
	if (pos != img->next_pos)
		return rl_err_set(err, EINVAL, "image %s: position %" PRIu64
				  " applied out of order (next is %" PRIu64 ")",
				  img->path, pos, img->next_pos);
	if (!rl_uuid_eq(&r->disk, &img->disk))
		return rl_err_set(err, EBADMSG, "image %s: position %" PRIu64
				  ": record of another disk", img->path, pos);
	if (r->type != RL_CLAIM && r->type != RL_WRITE && r->type != RL_ZERO &&
	    r->type != RL_DISCARD && r->type != RL_RESIZE && r->type != RL_MARK)
		return rl_err_set(err, EBADMSG, "image %s: position %" PRIu64
				  ": %s record in a disk stream", img->path,
				  pos, tn ? tn : "unknown");
	switch (rl_epoch_judge(&disk_rules, img->epoch, img->last_seq, r)) {
	case RL_EPOCH_CLAIM:
	{
		char what[PATH_MAX + 8];
		struct rl_claim_chain cc = { .what = what, .kind = "",
					     .epoch = img->epoch,
					     .last_seq = img->last_seq,
					     .check_seq = img->epoch &&
							  !img->resync };

		snprintf(what, sizeof(what), "image %s", img->path);
		rc = rl_claim_chain_check(&cc, r, pos, err);
		if (rc < 0)
			return rc;
	}
		img->epoch = r->epoch;
		img->last_seq = r->seq;
		img->resync = false;
		rl_claim_owner(img->owner, r->data, r->data_len);
		img->next_pos++;
		return RL_APPLIED;
	case RL_EPOCH_STALE:
		img->next_pos++;
		return RL_IGNORED_STALE;
	case RL_EPOCH_DUP:
		/* No honest writer seals one seq twice: the file log appends
		 * each record once, and Kafka's idempotent producer keeps its
		 * retries out of the log.  Without a key a copy is ignored; a
		 * sealed one was copied into the log by someone who can write
		 * it (ENCRYPTION.md): the disk stops at it */
		if (r->key_id)
			return rl_err_set(err, EBADMSG, "image %s: position %"
					  PRIu64 ": a sealed %s record of epoch "
					  "%" PRIu64 " seq %" PRIu64 ", which "
					  "was applied already: a copy of an "
					  "earlier record, replayed into the log",
					  img->path, pos, tn, r->epoch, r->seq);
		img->next_pos++;
		return RL_IGNORED_DUP;
	case RL_EPOCH_GAP:
		if (!r->key_id || img->resync)
			break;		/* applied as it comes */
		if (r->seq - img->last_seq - 1 > RL_SEQ_WINDOW)
			return rl_err_set(err, EBADMSG, "image %s: position %"
					  PRIu64 ": a sealed %s record of epoch "
					  "%" PRIu64 " seq %" PRIu64 ", but seq %"
					  PRIu64 " is the last here, more than %d "
					  "before it: records of that epoch are "
					  "missing from the log (deleted?)",
					  img->path, pos, tn, r->epoch, r->seq,
					  img->last_seq, RL_SEQ_WINDOW);
		img->next_pos++;
		return RL_IGNORED_GAP;
	case RL_EPOCH_UNCLAIMED:
		return rl_err_set(err, EBADMSG, "image %s: position %" PRIu64
				  ": %s record before any CLAIM: written by no "
				  "writer that claimed the disk", img->path,
				  pos, tn);
	case RL_EPOCH_FUTURE:
		return rl_err_set(err, EBADMSG, "image %s: position %" PRIu64
				  ": %s record of epoch %" PRIu64 ", but the "
				  "newest claim is epoch %" PRIu64 ": written by "
				  "no writer that claimed the disk", img->path,
				  pos, tn, r->epoch, img->epoch);
	case RL_EPOCH_APPLY:
		break;
	}

	if (r->type == RL_MARK) {
		/* a label or a range to verify, for what reads the log: the
		 * image does not change */
	} else if (r->type == RL_RESIZE) {
		if (ftruncate(img->fd, (off_t)r->offset) < 0)
			rc = -errno;
		else
			pace_resize(img);
	} else {
		rc = apply_range(img, r);
	}
	if (rc < 0)
		return rl_err_layer(err, RL_ERR_IMAGE,
				    rl_err_set(err, -rc, "image %s: apply %s at "
					       "position %" PRIu64 ": %s",
					       img->path, tn, pos,
					       strerror(-rc)));
	img->last_seq = r->seq;
	img->resync = false;
	img->next_pos++;
	return RL_APPLIED;
}

void rl_image_snapshot(const struct rl_image *img, struct rl_checkpoint *c)
{
	c->next_pos = img->resync ? img->resync_at : img->next_pos;
	c->epoch = img->epoch;
	c->last_seq = img->last_seq;
	memcpy(c->owner, img->owner, sizeof(c->owner));
}

int rl_checkpoint_write(const char *ckpt_dir, const struct rl_uuid *disk,
			const struct rl_checkpoint *c, struct rl_err *err)
{
	char buf[512], u[RL_UUID_STRLEN + 1];
	int n;

	rl_uuid_format(disk, u);
	n = snprintf(buf, sizeof(buf), CKPT_MAGIC "\ndisk %s\nnext_pos %"
		     PRIu64 "\nepoch %" PRIu64 "\nlast_seq %" PRIu64 "\n%s%s%s",
		     u, c->next_pos, c->epoch, c->last_seq,
		     c->owner[0] ? "owner " : "", c->owner,
		     c->owner[0] ? "\n" : "");
	return rl_write_atomic(ckpt_dir, u, buf, (size_t)n, err);
}

/* One region of a pass: submitted, waited for in turn. */
struct pace_req {
	uint64_t off, len;	/* len 0: to the end of the file */
	uint32_t bytes;		/* what the applier counted there */
};

/* One pass of "Paced checkpoints": writes back the regions small writes
 * dirtied since the last, at most PACE_BUDGET counted bytes (and
 * PACE_DEPTH regions) in flight.  Returns the bytes counted, or -errno
 * of a failed wait (a writeback error). */
static int64_t pace_pass(struct rl_image *img)
{
	unsigned shift = atomic_load_explicit(&img->pace_shift,
					      memory_order_relaxed);
	struct pace_req q[PACE_DEPTH];
	unsigned head = 0, n = 0;
	uint64_t in_flight = 0;
	int64_t total = 0;
	int rc = 0;

	for (unsigned i = 0; i <= PACE_SLOTS; i++) {
		struct pace_req *r;
		uint32_t bytes = 0;

		/* wait for the oldest while over budget, and all at the end */
		while (n > 0 && (i == PACE_SLOTS || n == PACE_DEPTH ||
				 in_flight >= PACE_BUDGET)) {
			r = &q[head];
			if (sync_file_range(img->fd, (off_t)r->off,
					    (off_t)r->len,
					    SYNC_FILE_RANGE_WAIT_AFTER) < 0 &&
			    rc == 0)
				rc = -errno;
			in_flight -= r->bytes;
			head = (head + 1) % PACE_DEPTH;
			n--;
		}
		if (i == PACE_SLOTS)
			break;
		if (atomic_load_explicit(&img->pace[i], memory_order_relaxed))
			bytes = atomic_exchange_explicit(&img->pace[i], 0,
							 memory_order_relaxed);
		if (!bytes)
			continue;
		r = &q[(head + n) % PACE_DEPTH];
		r->off = (uint64_t)i << shift;
		r->len = i == PACE_SLOTS - 1 ? 0 : (uint64_t)1 << shift;
		r->bytes = bytes;
		/* a failed submission shows again in the wait, or in the
		 * fdatasync */
		sync_file_range(img->fd, (off_t)r->off, (off_t)r->len,
				SYNC_FILE_RANGE_WRITE);
		in_flight += bytes;
		total += bytes;
		n++;
	}
	return rc < 0 ? rc : total;
}

/* fdatasync()s the image, which then holds everything applied up to c. */
static int image_sync(struct rl_image *img, const struct rl_checkpoint *c,
		      struct rl_err *err)
{
	const char *what = "sync_file_range";
	int rc = 0, expected = 0;

	atomic_store(&img->unflushed, 0);	/* what comes after counts */
	for (int pass = 0; pass < PACE_PASSES; pass++) {
		int64_t n = pace_pass(img);

		if (n < 0)
			rc = (int)-n;
		if (n < (int64_t)PACE_BUDGET)
			break;
	}
	if (rc == 0 && fdatasync(img->fd) < 0) {
		rc = errno;
		what = "fdatasync";
	}
	if (rc) {
		atomic_compare_exchange_strong(&img->failed, &expected, -EIO);
		return rl_err_layer(err, RL_ERR_IMAGE, rl_err_set(err, rc, "image %s: %s: %s; what was "
				  "applied since the last checkpoint may not be "
				  "on disk, so the image takes no more records "
				  "and writes fail with EIO until the disk is "
				  "opened again (it then replays the log from "
				  "its last good checkpoint)", img->path, what,
				  strerror(rc)));
	}
	img->flush_pos = c->next_pos;
	return 0;
}

/* -EIO once an fdatasync of the image failed (img->failed). */
static int image_failed(struct rl_image *img, struct rl_err *err)
{
	if (!atomic_load(&img->failed))
		return 0;
	return rl_err_layer(err, RL_ERR_IMAGE,
			    rl_err_set(err, EIO, "image %s: a checkpoint "
				       "failed before (its writeback): none is "
				       "written until the disk is opened "
				       "again", img->path));
}

int rl_image_flush(struct rl_image *img, const struct rl_checkpoint *c,
		   struct rl_err *err)
{
	int rc = image_failed(img, err);

	if (rc < 0)
		return rc;
	if (c->next_pos == img->flush_pos || c->next_pos == img->ckpt_pos ||
	    atomic_load(&img->unflushed) < FLUSH_MIN_BYTES)
		return 0;
	return image_sync(img, c, err);
}

int rl_image_commit(struct rl_image *img, const struct rl_checkpoint *c,
		    struct rl_err *err)
{
	int rc = image_failed(img, err);

	if (rc < 0)
		return rc;
	if (c->next_pos == img->ckpt_pos)
		return 0;
	/* covers at least everything applied up to the snapshot */
	if (c->next_pos != img->flush_pos) {
		rc = image_sync(img, c, err);
		if (rc < 0)
			return rc;
	}
	rc = rl_err_layer(err, RL_ERR_STATE,
			  rl_checkpoint_write(img->ckpt_dir, &img->disk, c,
					      err));
	if (rc == 0)
		img->ckpt_pos = c->next_pos;
	return rc;
}

int rl_image_checkpoint(struct rl_image *img, struct rl_err *err)
{
	struct rl_checkpoint c;

	rl_image_snapshot(img, &c);
	return rl_image_commit(img, &c, err);
}
