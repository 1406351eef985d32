/* The file log: the embedded default backend, "file:PATH".
 *
 * Notes on the design
 * -------------------
 * Layout (docs/FILELOG.md has the details):
 *
 *   PATH/lock                      flock()ed by the one writer; holds its pid
 *   PATH/catalog/                  the catalog stream
 *   PATH/disks/UUID/               one stream per disk
 *   STREAM/head                    16 bytes: magic, durable end (u64 LE)
 *   STREAM/00000000000000000000.seg  segments, named by their first position
 *
 * A segment is a 32-byte header (magic, first position, disk uuid) followed
 * by records back to back.  A position is a record's index in its stream.
 *
 * Where data becomes durable.  An append write()s the record at the end of
 * the current segment under the stream's lock (so file order is position
 * order) and queues its completion.  One flusher thread per log runs group
 * commit: it takes every stream with queued completions, swaps out their
 * queues, fdatasync()s each stream's segment once, and only then publishes
 * the new durable end in the stream's head and runs the completions in
 * position order.  Everything appended while one fdatasync runs is covered
 * by the next one.  A roll-over to a new segment fdatasync()s the old one
 * first, under the stream lock, so the flusher only ever syncs the current
 * segment; the old fd is retired and closed by the flusher, which may still
 * be using it.  A failed write is cut back; a failed fdatasync makes the
 * whole log refuse appends until it is reopened (sticky: after a failed
 * fdatasync the page cache can no longer be trusted to say what is on disk).
 *
 * Preallocated tail.  An fdatasync after an append that grew the file
 * commits the new size to the file system's journal as well; one after a
 * write over blocks already written has no metadata to commit, and on
 * ext4 here takes half as long (docs/BENCHMARKS.md, "Sync writes").  So a
 * disk stream keeps zeros written ahead of its last record (RUNWAY
 * bytes, extended when a small record would pass its end): a guest's
 * small sync writes then land on written blocks.  Large records append as
 * before (the zeros would double the bytes written, for a sync that costs
 * little next to the data).  Zeros are never a record (no magic), so
 * recovery cuts them like a torn tail, without a word when they are all
 * it cuts; a segment that is rolled over, and the current one at a clean
 * close, are cut to their last record first, so that a reader only meets
 * zeros past the durable end.  The catalog stream keeps no runway: its
 * changes are few.  The zeros are written only where the file has no
 * blocks yet: they reach the disk before the records that overwrite
 * them, so each small record's bytes were written twice (3.1 bytes on
 * the disk per byte of data, against 2.1 without; docs/BENCHMARKS.md,
 * "Zeros ahead only where there are no blocks").  Within the file's
 * size (a reused segment, or the zeros a direct append left), a small
 * record is written with zeros to the end of its last block instead, so
 * that the kernel need not read that block first; what lies past it is
 * left from the earlier use, which recovery tells apart (see "Reused
 * segments").
 *
 * Direct appends.  A record of DIRECT_MIN bytes or more (a guest's large
 * write) is written with O_DIRECT, from an aligned buffer, instead of
 * into the page cache: buffered, the log's dirty pages piled up between
 * fdatasyncs and each fdatasync then waited for their writeback, which
 * made the seq-write tail (docs/BENCHMARKS.md, "Direct log appends").
 * The buffer holds the record between whole blocks: the bytes of the
 * block it starts in that precede it (kept from the last direct append
 * in s->tail, else read back), the record, zeros to the end of its last
 * block.  Those zeros are the preallocated tail's: the next record
 * overwrites them.  A direct write is a synchronous device write under
 * the stream lock, so small records stay buffered (a direct write each
 * would serialise a guest's queue of small writes on the device); Linux
 * keeps the two coherent (a direct write writes back and drops the
 * cached pages of its range first), and the flusher's fdatasync of the
 * segment covers both.  Buffers come from a pool in the log, one per
 * append in flight, not one per stream.  A file system that refuses
 * O_DIRECT (EINVAL) turns direct appends off for the log.
 *
 * Reused segments.  Deleting a trimmed 64 MiB segment and allocating the
 * next one cost the write path its worst stalls: the unlink took 25-36 ms
 * and, on a file system mounted with `discard`, made the next journal
 * commit (which a log fdatasync waits for) discard the freed blocks
 * (docs/BENCHMARKS.md, "What the seq-write tail is made of").  So a disk
 * stream's trimmed segments become spares (renamed "spare.BASE"), and a
 * roll-over reuses one as the new segment: its first block is rewritten
 * (the new header, then zeros), synced, and only then is it renamed to its
 * segment name and the directory synced, so that a crash leaves either a
 * spare or a valid segment, never a spare holding acknowledged records.
 * Appends then overwrite blocks already allocated, as in the preallocated
 * tail.  A trim that takes segments out keeps twice as many spares as
 * roll-overs used since the last one that did, plus two (SPARE_BYTES of
 * them at most), and deletes the rest; after SPARE_IDLE_TRIMS trims in a
 * row with no roll-over, a trim deletes every spare (an idle stream keeps
 * none), and so do a clean close and a writer's open.
 *
 * A reused segment (magic RDLSEG02) holds the records of its earlier use
 * past its last new one, whole and valid.  Recovery must not take them
 * for a tail: the records of a disk stream rise in (epoch, seq) (a writer
 * numbers them under one lock, and each claim opens a higher epoch), and
 * every earlier-use record is older than every new one, so recovery of a
 * reused segment also cuts at the first record that is not after the
 * segment's first; the zeroed first block stops it before an old first
 * record.
 * Only a reader that holds a segment open while it is trimmed and reused
 * could meet new records at old offsets: it checks the header's base
 * after every read and stops with ERANGE if it changed.
 *
 * Readers.  The head is mmap()ed shared by the writer and by readers in
 * any process.  The writer stores the durable end into it after each
 * fdatasync; readers never read at or past it, so they never see a record
 * that is not durable or that recovery might cut.  (The head itself is not
 * synced: after a power loss it may be behind, never ahead.)  A reader
 * reads a chunk with O_DIRECT when most of it is not in the page cache
 * (mincore): direct appends leave large records out of the cache,
 * and so does a reboot, and reading them cold through the cache ran at a
 * quarter of the disk on a VM (docs/BENCHMARKS.md, "Direct log appends").
 * Small records just appended are read from the cache, where they are.
 * After a direct read the reader starts the next one in the background
 * (POSIX AIO, from the first record the chunk does not hold whole), so
 * that a follower's disk reads the log while the follower writes the
 * image: one read and one write at a time ran at 0.5-0.6 GB/s.
 *
 * Recovery.  When the writer opens a stream it verifies every record of the
 * last segment.  A bad or incomplete record at or past the head's durable
 * end is a torn tail from a crash: it is cut, and the cut is logged.  A bad
 * record below the durable end is damage to acknowledged data: the stream
 * refuses to open rather than drop it.
 */
#include "internal.h"

#include <aio.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SEG_MAGIC	"RDLSEG01"
#define SEG_MAGIC_REUSED "RDLSEG02"	/* see "Reused segments" */
#define SEG_HDR_SIZE	32
/* A reused segment's first block: its header, then zeros over where an
 * earlier use's first record began. */
#define SEG_FIRST_BLOCK	4096
/* At most this many bytes of spare segments per stream; all are deleted
 * after this many trims in a row (seconds, in the mount) with no
 * roll-over. */
#define SPARE_BYTES	(2ull << 30)
#define SPARE_IDLE_TRIMS 10
#define HEAD_MAGIC	"RDLHEAD1"
#define HEAD_SIZE	16
#define DEFAULT_SEGMENT_BYTES	(64ull << 20)
/* The preallocated tail of a disk stream: zeros written ahead when a
 * record of at most RUNWAY_RECORD bytes would pass its end. */
#define RUNWAY		(1u << 20)
#define RUNWAY_RECORD	(64u << 10)
/* See "Direct appends": records this large go direct, in pieces of at
 * most DIRECT_BUF bytes (a 1 MiB write's record and the block before it
 * in one), aligned to DIRECT_ALIGN (what O_DIRECT asks of any device with
 * blocks of 4 KiB or less).  Above the largest record the tests write
 * whole (64 KiB), so their offsets stay those of buffered appends. */
#define DIRECT_MIN	((size_t)128 << 10)
#define DIRECT_ALIGN	((size_t)4096)
#define DIRECT_BUF	(((size_t)1 << 20) + 2 * DIRECT_ALIGN)
/* A reader reads this much at a time, from a record's start: the largest
 * write a guest sends (1 MiB, one record) and its header, so that such a
 * record is read once, not once with the header before it and again
 * whole (which cost the follower three quarters of its time). */
#define READ_CHUNK	((1u << 20) + RL_RECORD_HDR_SIZE)

struct pending {
	rl_append_cb cb;
	void *opaque;
};

struct pending_vec {
	struct pending *v;
	size_t n, cap;
};

struct file_stream {
	struct rl_stream base;
	struct file_stream *next;	/* log->streams, under log->lock */
	struct rl_uuid disk;		/* nil for the catalog */
	char *dir;
	char label[64];			/* "catalog" or "disks/UUID" */
	int head_fd;
	_Atomic uint64_t *head;		/* durable end, in the shared map */
	void *head_map;

	/* Writer state.  Lock order: stream->lock, then log->lock. */
	pthread_mutex_t lock;
	int fd;				/* current segment, protected by lock */
	uint64_t seg_base;		/* protected by lock */
	uint64_t seg_bytes;		/* protected by lock */
	uint64_t seg_size;		/* the file's size, seg_bytes and the
					   zeros past it: under lock */
	uint64_t end;			/* next position, protected by lock */
	uint64_t durable;		/* protected by lock */
	int dfd;			/* O_DIRECT descriptor of fd, or -1:
					   "Direct appends", under lock */
	uint8_t tail[DIRECT_ALIGN];	/* the bytes of seg_bytes's block
					   before it, when tail_ok: under lock */
	bool tail_ok;
	uint64_t runway_end;		/* [seg_bytes, runway_end): zeros written
					   through the page cache, under lock */
	struct pending_vec queue;	/* positions durable.., under lock */
	int *retired;			/* old segment fds, under lock */
	size_t n_retired, cap_retired;
	uint64_t *spares;		/* old bases of DIR/spare.BASE, under
					   lock (see "Reused segments") */
	size_t n_spares, cap_spares;
	uint64_t rolls;			/* roll-overs since a trim last took
					   segments out, under lock */
	bool rolled;			/* a roll-over since the last trim,
					   under lock */
	unsigned idle_trims;		/* trims in a row with no roll-over
					   before, under lock */
	bool dirty;			/* queued for the flusher (on log->dirty
					   or the list it works through),
					   under log->lock */
	struct file_stream *dirty_next;	/* under log->lock */
};

struct file_log {
	struct rl_log base;
	char *dir;
	int lock_fd;
	uint64_t segment_bytes;
	bool quiet;

	pthread_mutex_t open_lock;	/* serializes rl_log_stream() */
	pthread_mutex_t lock;
	pthread_cond_t work;		/* flusher: dirty streams or stop */
	struct file_stream *streams;	/* protected by lock */
	struct file_stream *dirty;	/* protected by lock */
	bool stop;			/* protected by lock */
	_Atomic int failed;		/* sticky -errno */
	_Atomic bool no_direct;		/* O_DIRECT refused: "Direct appends" */
	pthread_mutex_t pool_lock;
	void **pool;			/* free DIRECT_BUF buffers, under
					   pool_lock */
	size_t n_pool, cap_pool;
	pthread_t flusher;
	bool has_flusher;
};

struct file_reader {
	struct rl_reader base;
	struct file_stream *s;
	uint64_t pos;			/* next record */
	uint64_t seg_base;
	uint64_t off;			/* byte of the next record in fd */
	int fd;
	int dfd;			/* fd with O_DIRECT, -1 not yet, -2
					   refused: "Readers" */
	uint8_t *buf;			/* bytes [buf_off, buf_off + buf_len),
					   aligned to DIRECT_ALIGN */
	size_t buf_cap, buf_len;
	uint64_t buf_off;
	uint64_t buf_durable;		/* records below this are complete in buf */
	/* Read-ahead ("Readers"): the direct read of the chunk the next
	 * fill will want, in flight into `ahead` while buf is decoded. */
	struct aiocb aio;
	bool ahead_busy;
	uint8_t *ahead;
	size_t ahead_cap;
	uint64_t ahead_rec;		/* the byte of the record it is for */
	uint64_t ahead_durable;		/* the durable end before it started */
	struct rl_decoder dec;
};

#define FLOG(l) ((struct file_log *)(l))
#define FSTREAM(s) ((struct file_stream *)(s))

static void seg_name(char *buf, size_t size, const char *dir, uint64_t base)
{
	snprintf(buf, size, "%s/%020" PRIu64 ".seg", dir, base);
}

static void spare_name(char *buf, size_t size, const char *dir, uint64_t base)
{
	snprintf(buf, size, "%s/spare.%020" PRIu64, dir, base);
}

/* ------------------------------------------------------------ segments */

/* Lists the segment bases of a stream directory, sorted.  Returns the
 * count (the array is malloc'ed) or -errno. */
static int list_segments(const char *dir, uint64_t **out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char *endp;
		uint64_t base;

		if (strlen(e->d_name) != 24 ||
		    strcmp(e->d_name + 20, ".seg") != 0)
			continue;
		errno = 0;
		base = strtoull(e->d_name, &endp, 10);
		if (errno || endp != e->d_name + 20)
			continue;
		if (rl_grow(&v, &cap, n + 1, sizeof(*v)) < 0) {
			free(v);
			closedir(d);
			return -ENOMEM;
		}
		v[n++] = base;
	}
	closedir(d);
	/* insertion sort: few segments, mostly in order already */
	for (size_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		size_t j = i;

		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	*out = v;
	return (int)n;
}

/* Returns 1 for a reused segment, 0 for another, or an error. */
static int seg_check_header(struct file_stream *s, int fd, uint64_t base,
			    struct rl_err *err)
{
	uint8_t h[SEG_HDR_SIZE];
	ssize_t n = rl_pread_full(fd, h, sizeof(h), 0);
	bool reused = n == SEG_HDR_SIZE && memcmp(h, SEG_MAGIC_REUSED, 8) == 0;

	if (n < 0)
		return rl_err_set(err, (int)-n, "%s/%020" PRIu64 ".seg: read: %s",
				  s->label, base, strerror((int)-n));
	if (n != SEG_HDR_SIZE || (memcmp(h, SEG_MAGIC, 8) != 0 && !reused) ||
	    rl_get_le64(h + 8) != base || memcmp(h + 16, s->disk.b, 16) != 0)
		return rl_err_set(err, EBADMSG, "%s/%020" PRIu64 ".seg: bad "
				  "segment header (not a segment of this stream)",
				  s->label, base);
	return reused;
}

static void seg_header(uint8_t *h, const char *magic, uint64_t base,
		       const struct file_stream *s)
{
	memcpy(h, magic, 8);
	rl_put_le64(h + 8, base);
	memcpy(h + 16, s->disk.b, 16);
}

/* Makes the file open as fd, named `from`, segment `base` durably: its
 * first len bytes (the header first), fdatasync, the rename to the
 * segment's name, fsync of the directory.  So a segment file always has
 * a valid header, and no record goes into one whose name a crash could
 * undo.  On failure fd is closed and `from` deleted. */
static int seg_install(struct file_stream *s, int fd, const char *from,
		       uint64_t base, const void *first, size_t len)
{
	char path[PATH_MAX];
	int rc;

	seg_name(path, sizeof(path), s->dir, base);
	rc = rl_pwrite_full(fd, first, len, 0);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (rc == 0 && rename(from, path) < 0)
		rc = -errno;
	if (rc == 0)
		rc = rl_fsync_dir(s->dir);
	if (rc < 0) {
		close(fd);
		unlink(from);	/* if the rename did not happen */
	}
	return rc;
}

/* Under s->lock: makes the newest spare segment `base` (see "Reused
 * segments").  Returns its fd, with its size in *size, or -errno; the
 * spare is gone either way. */
static int seg_reuse(struct file_stream *s, uint64_t base, uint64_t *size)
{
	uint8_t block[SEG_FIRST_BLOCK] = { 0 };
	char spare[PATH_MAX];
	struct stat st;
	int fd, rc;

	spare_name(spare, sizeof(spare), s->dir, s->spares[--s->n_spares]);
	fd = open(spare, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		unlink(spare);
		return rc;
	}
	seg_header(block, SEG_MAGIC_REUSED, base, s);
	rc = seg_install(s, fd, spare, base, block, sizeof(block));
	if (rc < 0)
		return rc;
	*size = (uint64_t)st.st_size > sizeof(block) ? (uint64_t)st.st_size :
						      sizeof(block);
	return fd;
}

/* Creates segment `base` under a temporary name (seg_install), or, under
 * s->lock, reuses a spare.  Returns the open fd, with the file's size in
 * *size, or -errno. */
static int seg_create(struct file_stream *s, uint64_t base, uint64_t *size)
{
	char tmp[PATH_MAX];
	uint8_t h[SEG_HDR_SIZE] = { 0 };
	int fd, rc;

	while (s->n_spares) {
		fd = seg_reuse(s, base, size);
		if (fd >= 0)
			return fd;
		/* that spare is deleted; a fresh segment does as well */
	}
	*size = SEG_HDR_SIZE;
	snprintf(tmp, sizeof(tmp), "%s/.new.seg", s->dir);
	unlink(tmp);	/* left by a crash */
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -errno;
	seg_header(h, SEG_MAGIC, base, s);
	rc = seg_install(s, fd, tmp, base, h, sizeof(h));
	return rc < 0 ? rc : fd;
}

/* ------------------------------------------------------------ head */

static int head_open(struct file_stream *s, bool writer, struct rl_err *err)
{
	char path[PATH_MAX];
	uint8_t h[HEAD_SIZE];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/head", s->dir);
	if (writer && access(path, F_OK) < 0) {
		/* appears whole (write, sync, rename): a reader never sees
		 * an empty head */
		memset(h, 0, sizeof(h));
		memcpy(h, HEAD_MAGIC, 8);
		if (rl_write_atomic(s->dir, "head", h, sizeof(h), err) < 0)
			return -EIO;
	}
	fd = open(path, (writer ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return rl_err_set(err, errno, "%s: open head: %s", s->label,
				  strerror(errno));
	n = rl_pread_full(fd, h, sizeof(h), 0);
	if (n != HEAD_SIZE || memcmp(h, HEAD_MAGIC, 8) != 0) {
		close(fd);
		return rl_err_set(err, EBADMSG, "%s/head: not a stream head "
				  "(%zd bytes)", s->label, n);
	}
	s->head_map = mmap(NULL, HEAD_SIZE, writer ? PROT_READ | PROT_WRITE :
			   PROT_READ, MAP_SHARED, fd, 0);
	if (s->head_map == MAP_FAILED) {
		s->head_map = NULL;
		close(fd);
		return rl_err_set(err, errno, "%s: mmap head: %s", s->label,
				  strerror(errno));
	}
	/* x86-64 and the other targets we build for are little-endian, so
	 * the u64 at offset 8 is the head's durable end as stored. */
	s->head = (_Atomic uint64_t *)((char *)s->head_map + 8);
	s->head_fd = fd;
	return 0;
}

static uint64_t head_load(const struct file_stream *s)
{
	return atomic_load_explicit(s->head, memory_order_acquire);
}

/* ------------------------------------------------------------ recovery */

/* Whether bytes [from, to) of fd are all zeros: the preallocated tail
 * (see its note) and nothing else.  At most twice RUNWAY is read. */
static bool tail_is_zeros(int fd, uint64_t from, uint64_t to)
{
	uint8_t buf[64 << 10];

	if (to - from > 2 * (uint64_t)RUNWAY)
		return false;
	while (from < to) {
		size_t n = to - from < sizeof(buf) ? (size_t)(to - from) :
						     sizeof(buf);
		ssize_t got = rl_pread_full(fd, buf, n, (off_t)from);

		if (got != (ssize_t)n)
			return false;
		for (size_t i = 0; i < n; i++)
			if (buf[i])
				return false;
		from += n;
	}
	return true;
}

/* Verifies the records of the stream's last segment; cuts a torn tail.
 * On success the stream's fd, seg_base, seg_bytes, end and durable are set. */
static int stream_recover(struct file_log *log, struct file_stream *s,
			  struct rl_err *err)
{
	uint64_t *segs = NULL, head = head_load(s);
	struct rl_decoder dec;
	uint8_t *buf = NULL;
	size_t cap = 0;
	uint64_t off = SEG_HDR_SIZE, pos, first_epoch = 0, first_seq = 0;
	struct stat st;
	char path[PATH_MAX], why[sizeof(err->msg)] = "";
	bool reused;
	int n, fd, rc = 0;

	n = list_segments(s->dir, &segs);
	if (n < 0)
		return rl_err_set(err, -n, "%s: list segments: %s", s->label,
				  strerror(-n));
	if (n == 0) {
		free(segs);
		if (head != 0)
			return rl_err_set(err, EIO, "%s: no segment, but the "
					  "head says %" PRIu64 " records are "
					  "durable", s->label, head);
		fd = seg_create(s, 0, &s->seg_size);
		if (fd < 0)
			return rl_err_set(err, -fd, "%s: create segment: %s",
					  s->label, strerror(-fd));
		s->fd = fd;
		s->seg_base = s->end = s->durable = 0;
		s->seg_bytes = SEG_HDR_SIZE;
		return 0;
	}
	s->seg_base = pos = segs[n - 1];
	free(segs);
	seg_name(path, sizeof(path), s->dir, s->seg_base);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return rl_err_set(err, errno, "%s: open %s: %s", s->label, path,
				  strerror(errno));
	rc = seg_check_header(s, fd, s->seg_base, err);
	if (rc < 0 || fstat(fd, &st) < 0) {
		close(fd);
		return rc < 0 ? rc : rl_err_set(err, errno, "fstat %s: %s",
						path, strerror(errno));
	}
	reused = rc == 1;
	rc = 0;

	rl_decoder_init(&dec);
	dec.keys = log->base.keys;	/* a record it cannot open is bad */

	/* The records below the head are durable (the head never runs
	 * ahead of an fdatasync that succeeded): only their headers are read
	 * and checked, to find where the rest begins.  Checking every byte of
	 * them would read the whole segment at every open (100 disks of
	 * 40 MiB: 4 GiB at mount); readers check each record they read, and
	 * stop at a damaged payload. */
	while (pos < head) {
		uint8_t hdr[RL_RECORD_HDR_SIZE];
		struct rl_err e = { 0 };
		ssize_t got = rl_pread_full(fd, hdr, sizeof(hdr), (off_t)off);
		ssize_t size = -1;

		if (got < 0) {
			rc = rl_err_set(err, (int)-got, "read %s: %s", path,
					strerror((int)-got));
			goto out;
		}
		if (got >= RL_RECORD_HDR_MIN &&
		    rl_record_check_header(&dec, hdr, (size_t)got, &e) == 0)
			size = rl_record_size(hdr, &e);
		if (size < 0 || off + (uint64_t)size > (uint64_t)st.st_size) {
			snprintf(why, sizeof(why), "%s", got < RL_RECORD_HDR_MIN
				 ? "missing" : size < 0 ? e.msg :
				 "incomplete record");
			break;	/* damage: said below (pos < head) */
		}
		if (off == SEG_HDR_SIZE)
			rl_record_order(hdr, &first_epoch, &first_seq);
		off += (uint64_t)size;
		pos++;
	}

	/* After a failed fdatasync the page cache may hold pages that never
	 * reached the disk (clean again, so they stay cached): drop them, so
	 * that recovery reads what the disk has.  Only past the durable
	 * records, which a successful fdatasync covered. */
	posix_fadvise(fd, (off_t)off, 0, POSIX_FADV_DONTNEED);
	while (!why[0]) {
		uint8_t hdr[RL_RECORD_HDR_MIN];
		struct rl_err e;
		struct rl_record r;
		ssize_t got = rl_pread_full(fd, hdr, sizeof(hdr), (off_t)off);
		ssize_t size;

		if (got < 0) {
			rc = rl_err_set(err, (int)-got, "read %s: %s", path,
					strerror((int)-got));
			goto out;
		}
		if (got == 0)
			break;
		if (got < (ssize_t)sizeof(hdr)) {
			snprintf(why, sizeof(why), "incomplete header");
			break;
		}
		size = rl_record_size(hdr, &e);
		if (size < 0) {
			snprintf(why, sizeof(why), "%s", e.msg);
			break;
		}
		size_t len = (size_t)size;

		if (len > cap) {
			uint8_t *nb = realloc(buf, len);

			if (!nb) {
				rc = rl_err_set(err, ENOMEM, "out of memory");
				goto out;
			}
			buf = nb;
			cap = len;
		}
		got = rl_pread_full(fd, buf, len, (off_t)off);
		if (got < 0) {
			rc = rl_err_set(err, (int)-got, "read %s: %s", path,
					strerror((int)-got));
			goto out;
		}
		if ((size_t)got < len) {
			snprintf(why, sizeof(why), "incomplete record");
			break;
		}
		if (rl_record_decode(&dec, buf, len, &r, &e) < 0) {
			if (e.code == ENOKEY) {
				/* not damage: this process cannot check it */
				rc = rl_err_set(err, ENOKEY, "%s: %s", s->label,
						e.msg);
				goto out;
			}
			snprintf(why, sizeof(why), "%s", e.msg);
			break;
		}
		/* every reader refuses a record of another stream: past the
		 * durable end it is a torn tail like any other bad record */
		if (!rl_uuid_is_nil(&s->disk) && !rl_uuid_eq(&r.disk, &s->disk)) {
			snprintf(why, sizeof(why), "record of another disk");
			break;
		}
		/* an earlier use's record in a reused segment: not after the
		 * segment's first (see "Reused segments"; every earlier-use
		 * record is older than every new one, and comparing with the
		 * first rather than the one before keeps one odd record, a
		 * forged one passed with `log skip`, say, from making the
		 * honest ones after it look old) */
		if (off == SEG_HDR_SIZE) {
			first_epoch = r.epoch;
			first_seq = r.seq;
		} else if (reused && (r.epoch < first_epoch ||
				      (r.epoch == first_epoch &&
				       r.seq <= first_seq))) {
			snprintf(why, sizeof(why), "a record of epoch %"
				 PRIu64 " seq %" PRIu64 " not after the "
				 "segment's first, epoch %" PRIu64 " seq %"
				 PRIu64, r.epoch, r.seq, first_epoch,
				 first_seq);
			break;
		}
		off += len;
		pos++;
	}

	if (pos < head) {
		rc = rl_err_set(err, EIO, "%s: record at position %" PRIu64
				" (%s byte %" PRIu64 ") is bad: %s; the head "
				"says %" PRIu64 " records are durable, so this "
				"is damage, not a torn tail: refusing to cut "
				"acknowledged records", s->label, pos, path,
				off, why[0] ? why : "missing", head);
		goto out;
	}
	if ((uint64_t)st.st_size > off) {
		bool runway = tail_is_zeros(fd, off, (uint64_t)st.st_size);

		if (ftruncate(fd, (off_t)off) < 0 || fdatasync(fd) < 0) {
			rc = rl_err_set(err, errno, "truncate %s: %s", path,
					strerror(errno));
			goto out;
		}
		if (!log->quiet && !runway)
			rl_msg(RL_LOG_NOTICE, "file log: %s: cut torn tail "
				"at byte %" PRIu64 " (position %" PRIu64 "): "
				"%" PRIu64 " bytes dropped: %s%s", path, off,
				pos, (uint64_t)st.st_size - off, why, reused ?
				" (a reused segment: what follows its last "
				"record is left from its earlier use)" : "");
	} else if (fdatasync(fd) < 0) {
		/* records a crashed writer left in the page cache */
		rc = rl_err_set(err, errno, "fdatasync %s: %s", path,
				strerror(errno));
		goto out;
	}
	s->fd = fd;
	s->seg_bytes = s->seg_size = off;
	s->end = s->durable = pos;
	atomic_store_explicit(s->head, pos, memory_order_release);
out:
	if (rc < 0)
		close(fd);
	rl_decoder_free(&dec);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------ flusher */

static void pending_push(struct pending_vec *q, rl_append_cb cb, void *opaque,
			 int *rc)
{
	if (rl_grow(&q->v, &q->cap, q->n + 1, sizeof(*q->v)) < 0) {
		*rc = -ENOMEM;
		return;
	}
	q->v[q->n++] = (struct pending){ cb, opaque };
}

static void flush_stream(struct file_log *log, struct file_stream *s,
			 struct pending_vec *batch)
{
	uint64_t first, target;
	int fd, rc = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n_retired; i++)
		close(s->retired[i]);
	s->n_retired = 0;
	/* swap queues: appenders go on filling the (empty) batch vector */
	struct pending_vec q = s->queue;

	s->queue = *batch;
	s->queue.n = 0;
	*batch = q;
	first = s->durable;
	target = s->end;
	fd = s->fd;
	pthread_mutex_unlock(&s->lock);

	if (atomic_load(&log->failed))
		rc = atomic_load(&log->failed);
	else if (fdatasync(fd) < 0)
		rc = -errno;

	if (rc < 0) {
		int expected = 0;

		if (atomic_compare_exchange_strong(&log->failed, &expected,
						   -EIO))
			rl_msg(RL_LOG_ERR, "file log: %s: fdatasync "
				"failed: %s; the log refuses appends until it "
				"is reopened", s->label, strerror(-rc));
		rc = -EIO;
	} else {
		pthread_mutex_lock(&s->lock);
		s->durable = target;
		atomic_store_explicit(s->head, target, memory_order_release);
		pthread_mutex_unlock(&s->lock);
	}
	for (size_t i = 0; i < batch->n; i++)
		batch->v[i].cb(batch->v[i].opaque, rc, first + i);
	batch->n = 0;
}

static void *flusher_main(void *arg)
{
	struct file_log *log = arg;
	struct pending_vec batch = { 0 };

	pthread_mutex_lock(&log->lock);
	for (;;) {
		while (!log->dirty && !log->stop)
			pthread_cond_wait(&log->work, &log->lock);
		if (!log->dirty)
			break;	/* stop, and nothing left to flush */
		/* Take the whole list, but clear each stream's flag only as
		 * it comes up, under log->lock.  A stream whose flag is
		 * still set is not linked again by file_append, so the
		 * dirty_next links of the streams still to flush stay
		 * intact.  (Clearing every flag up front let an append to
		 * the stream being walked relink it, overwriting its
		 * dirty_next, and the streams after it in this list were
		 * dropped with their completions queued: a disk whose
		 * writers then all waited was never flushed again.) */
		struct file_stream *list = log->dirty;

		log->dirty = NULL;
		while (list) {
			struct file_stream *s = list;

			list = s->dirty_next;
			s->dirty = false;
			pthread_mutex_unlock(&log->lock);
			flush_stream(log, s, &batch);
			pthread_mutex_lock(&log->lock);
		}
	}
	pthread_mutex_unlock(&log->lock);
	free(batch.v);
	return NULL;
}

/* ------------------------------------------------------------ append */

static void *pool_get(struct file_log *log);
static void pool_put(struct file_log *log, void *buf);

/* Under s->lock: writes zeros through the page cache from the last
 * record to RUNWAY bytes past `need` (see "Preallocated tail"), to the
 * segment's size at most, so that a small record up to `need` lands on
 * cached pages.  After a direct append the block of the last record is
 * not cached: it is written whole, its head from s->tail, so the kernel
 * need not read it first.  The zeros reach the disk with the next
 * fdatasync, the one the record waits for.  A failure costs only speed:
 * the next small record tries again. */
static void runway_extend(struct file_log *log, struct file_stream *s,
			  uint64_t need)
{
	static const uint8_t zeros[RUNWAY];
	uint64_t from = s->seg_bytes, to = need + RUNWAY;
	const uint8_t *src = zeros;
	uint8_t *buf = NULL;
	size_t head = 0;

	if (to > log->segment_bytes)
		to = log->segment_bytes > need ? log->segment_bytes : need;
	to = (to + DIRECT_ALIGN - 1) & ~(uint64_t)(DIRECT_ALIGN - 1);
	if (s->tail_ok && from % DIRECT_ALIGN) {
		head = (size_t)(from % DIRECT_ALIGN);
		from -= head;
		if (!(buf = pool_get(log)))
			return;
		src = buf;
	}
	if (to - from > (buf ? DIRECT_BUF : RUNWAY))	/* still past need */
		to = (from + (buf ? DIRECT_BUF : RUNWAY)) &
		     ~(uint64_t)(DIRECT_ALIGN - 1);
	if (to > s->seg_bytes) {
		if (buf) {
			memcpy(buf, s->tail, head);
			memset(buf + head, 0, (size_t)(to - from) - head);
		}
		if (rl_pwrite_full(s->fd, src, (size_t)(to - from),
				   (off_t)from) == 0) {
			s->runway_end = to;
			if (to > s->seg_size)
				s->seg_size = to;
		}
	}
	if (buf)
		pool_put(log, buf);
}

/* ------------------------------------------------------------ direct appends */

static void *pool_get(struct file_log *log)
{
	void *buf = NULL;

	pthread_mutex_lock(&log->pool_lock);
	if (log->n_pool)
		buf = log->pool[--log->n_pool];
	pthread_mutex_unlock(&log->pool_lock);
	if (!buf && posix_memalign(&buf, DIRECT_ALIGN, DIRECT_BUF) != 0)
		buf = NULL;
	return buf;
}

static void pool_put(struct file_log *log, void *buf)
{
	pthread_mutex_lock(&log->pool_lock);
	if (rl_grow(&log->pool, &log->cap_pool, log->n_pool + 1,
		    sizeof(*log->pool)) == 0) {
		log->pool[log->n_pool++] = buf;
		buf = NULL;
	}
	pthread_mutex_unlock(&log->pool_lock);
	free(buf);
}

/* Under s->lock: direct appends are off for the whole log, for good. */
static void direct_refused(struct file_log *log, struct file_stream *s,
			   int err)
{
	bool was = false;

	if (atomic_compare_exchange_strong(&log->no_direct, &was, true))
		rl_msg(RL_LOG_NOTICE, "file log %s: direct writes refused "
		       "(%s); appending through the page cache", log->dir,
		       strerror(err));
	if (s->dfd >= 0)
		close(s->dfd);
	s->dfd = -1;
}

/* Under s->lock: whether s->dfd, the current segment opened again with
 * O_DIRECT, is there (opened on first use). */
static bool direct_ready(struct file_log *log, struct file_stream *s)
{
	int fd;

	if (s->dfd >= 0)
		return true;
	if (atomic_load(&log->no_direct))
		return false;
	fd = rl_reopen_direct(s->fd, O_WRONLY);
	if (fd == -EINVAL)
		direct_refused(log, s, EINVAL);
	if (fd < 0)
		return false;
	s->dfd = fd;
	return true;
}

/* Fills buf with bytes [from, from + n) of what a direct append writes:
 * the head bytes of its first block, the record, zeros. */
static void direct_fill(uint8_t *buf, size_t n, size_t from,
			const uint8_t *head, size_t head_len,
			const uint8_t *rec, size_t len)
{
	size_t i = 0, k;

	if (from < head_len) {
		k = head_len - from < n ? head_len - from : n;
		memcpy(buf, head + from, k);
		i = k;
	}
	if (i < n && from + i < head_len + len) {
		size_t r = from + i - head_len;

		k = len - r < n - i ? len - r : n - i;
		memcpy(buf + i, rec + r, k);
		i += k;
	}
	memset(buf + i, 0, n - i);
}

/* Under s->lock: writes the record at s->seg_bytes through s->dfd (see
 * "Direct appends").  Returns 0; 1 if it is still to be written, through
 * the page cache (O_DIRECT refused, no buffer); or -errno, after which
 * the bytes past s->seg_bytes are unknown and the caller cuts them. */
static int append_direct(struct file_log *log, struct file_stream *s,
			 const uint8_t *rec, size_t len)
{
	uint64_t at = s->seg_bytes & ~(uint64_t)(DIRECT_ALIGN - 1);
	size_t head = (size_t)(s->seg_bytes - at);
	size_t total = (head + len + DIRECT_ALIGN - 1) & ~(DIRECT_ALIGN - 1);
	size_t done = 0, n = 0;
	uint8_t *buf;
	int rc = 0;

	if (!direct_ready(log, s) || !(buf = pool_get(log)))
		return 1;
	if (head && !s->tail_ok) {
		/* after a buffered append: from the page cache */
		ssize_t r = rl_pread_full(s->fd, s->tail, head, (off_t)at);

		if (r != (ssize_t)head) {
			pool_put(log, buf);
			return r < 0 ? (int)r : -EIO;
		}
		s->tail_ok = true;
	}
	while (done < total) {
		ssize_t w;

		n = total - done < DIRECT_BUF ? total - done : DIRECT_BUF;
		direct_fill(buf, n, done, s->tail, head, rec, len);
		w = pwrite(s->dfd, buf, n, (off_t)(at + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EINVAL && done == 0) {
			direct_refused(log, s, EINVAL);
			rc = 1;
			break;
		}
		if (w != (ssize_t)n) {
			/* a short write is a full disk */
			rc = w < 0 ? -errno : -ENOSPC;
			break;
		}
		done += n;
	}
	if (rc == 0) {
		/* the new tail: the last block's bytes before the zeros */
		memcpy(s->tail, buf + n - DIRECT_ALIGN,
		       (head + len) % DIRECT_ALIGN);
		if (at + total > s->seg_size)
			s->seg_size = at + total;
	}
	pool_put(log, buf);
	return rc;
}

/* Under s->lock: writes a small record within the file's size (a reused
 * segment, or the block a direct append padded: "Preallocated tail"):
 * the record, then zeros to the end of its last
 * block, so that the kernel need not read that block from the disk to
 * fill the rest of its page.  After a direct append the block the record
 * starts in is not cached either: it is written whole, its head from
 * s->tail. */
static int pwrite_padded(struct file_stream *s, const void *rec, size_t len)
{
	static const uint8_t zeros[DIRECT_ALIGN];
	uint64_t off = s->seg_bytes, end = off + len;
	size_t head = s->tail_ok ? (size_t)(off % DIRECT_ALIGN) : 0;
	struct iovec iov[3];
	int cnt = 0;

	if (head) {
		iov[cnt++] = (struct iovec){ s->tail, head };
		off -= head;
	}
	iov[cnt++] = (struct iovec){ (void *)rec, len };
	if (end % DIRECT_ALIGN)
		iov[cnt++] = (struct iovec){ (void *)zeros,
			DIRECT_ALIGN - (size_t)(end % DIRECT_ALIGN) };
	return rl_pwritev_full(s->fd, iov, cnt, (off_t)off);
}

static int file_append(struct rl_stream *base, const void *rec, size_t len,
		       rl_append_cb cb, void *opaque)
{
	struct file_stream *s = FSTREAM(base);
	struct file_log *log = FLOG(base->log);
	int rc;

	if (atomic_load(&log->failed))
		return -EIO;
	pthread_mutex_lock(&s->lock);
	if (s->seg_bytes >= log->segment_bytes) {
		/* roll over: the old segment is made durable here, so the
		 * flusher only syncs the current one */
		const char *what = "fdatasync";
		int fd;

		/* a closed segment ends at its last record: readers take
		 * its end for the next segment's start */
		if (s->seg_size > s->seg_bytes &&
		    ftruncate(s->fd, (off_t)s->seg_bytes) < 0)
			what = "cutting the preallocated tail";
		else if (fdatasync(s->fd) == 0)
			what = NULL;
		if (what) {
			/* sticky, as in the flusher: the kernel reports a
			 * writeback error once, so a later fdatasync of this
			 * segment could "succeed" over lost records; and a
			 * segment left with zeros would stop its readers */
			int expected = 0;

			rc = -errno;
			if (atomic_compare_exchange_strong(&log->failed,
							   &expected, -EIO))
				rl_msg(RL_LOG_ERR, "file log: %s: "
					"%s failed: %s; the log refuses "
					"appends until it is reopened",
					s->label, what, strerror(-rc));
			pthread_mutex_unlock(&s->lock);
			return -EIO;
		}
		uint64_t size;

		fd = seg_create(s, s->end, &size);
		if (fd < 0) {
			pthread_mutex_unlock(&s->lock);
			return fd;
		}
		if (rl_grow(&s->retired, &s->cap_retired, s->n_retired + 1,
			    sizeof(*s->retired)) < 0) {
			close(fd);
			pthread_mutex_unlock(&s->lock);
			return -ENOMEM;
		}
		s->retired[s->n_retired++] = s->fd;
		if (s->dfd >= 0)
			close(s->dfd);	/* only ever used under s->lock */
		s->dfd = -1;
		s->tail_ok = false;
		s->runway_end = 0;
		s->fd = fd;
		s->seg_base = s->end;
		s->seg_bytes = SEG_HDR_SIZE;
		s->seg_size = size;
		s->rolls++;
		s->rolled = true;
	}
	rc = 0;
	pending_push(&s->queue, cb, opaque, &rc);
	if (rc == 0) {
		bool disk = !rl_uuid_is_nil(&s->disk);

		rc = 1;
		if (len >= DIRECT_MIN && disk) {
			rc = append_direct(log, s, rec, len);
			if (rc != 1)	/* its range left the page cache */
				s->runway_end = 0;
		}
		if (rc == 1) {
			uint64_t end = s->seg_bytes + len;
			uint64_t blk_end = (end + DIRECT_ALIGN - 1) &
					   ~(uint64_t)(DIRECT_ALIGN - 1);

			if (disk && len <= RUNWAY_RECORD &&
			    end > s->runway_end && blk_end <= s->seg_size) {
				/* blocks already written: no zeros ahead */
				rc = pwrite_padded(s, rec, len);
			} else {
				if (disk && len <= RUNWAY_RECORD &&
				    end > s->runway_end)
					runway_extend(log, s, end);
				rc = rl_pwrite_full(s->fd, rec, len,
						    (off_t)s->seg_bytes);
			}
			s->tail_ok = false;
		}
		if (rc < 0) {
			s->queue.n--;
			/* cut a partial record back; if even that fails the
			 * segment's tail is unknown: stop the log */
			if (ftruncate(s->fd, (off_t)s->seg_bytes) < 0) {
				atomic_store(&log->failed, -EIO);
				rl_msg(RL_LOG_ERR, "file log: %s: cannot "
					"cut a failed append: %s; the log "
					"refuses appends until it is reopened",
					s->label, strerror(errno));
			} else {
				s->seg_size = s->runway_end = s->seg_bytes;
			}
		}
	}
	if (rc == 0) {
		s->seg_bytes += len;
		if (s->seg_bytes > s->seg_size)
			s->seg_size = s->seg_bytes;
		s->end++;
		pthread_mutex_lock(&log->lock);
		if (!s->dirty) {
			s->dirty = true;
			s->dirty_next = log->dirty;
			log->dirty = s;
			pthread_cond_signal(&log->work);
		}
		pthread_mutex_unlock(&log->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int file_end(struct rl_stream *base, uint64_t *end)
{
	*end = head_load(FSTREAM(base));
	return 0;
}

/* ------------------------------------------------------------ streams */

/* Deletes a writer's spare segments, and those a crashed writer left
 * (see "Reused segments"): off the write path, at open and close. */
static void spares_delete(struct file_stream *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	int gone = 0;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "spare.", 6) == 0 &&
		    unlinkat(dirfd(d), e->d_name, 0) == 0)
			gone++;
	}
	closedir(d);
	if (gone)
		rl_fsync_dir(s->dir);
	s->n_spares = 0;
}

static void stream_free(struct file_stream *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_retired; i++)
		close(s->retired[i]);
	free(s->retired);
	free(s->queue.v);
	if (s->n_spares)
		spares_delete(s);
	free(s->spares);
	if (s->dfd >= 0)
		close(s->dfd);
	if (s->fd >= 0) {
		/* a clean close leaves no zeros past the last record (the
		 * flusher is done: every record appended is durable) */
		if (s->seg_size > s->seg_bytes &&
		    ftruncate(s->fd, (off_t)s->seg_bytes) == 0)
			fdatasync(s->fd);
		close(s->fd);
	}
	if (s->head_map)
		munmap(s->head_map, HEAD_SIZE);
	if (s->head_fd >= 0)
		close(s->head_fd);
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s);
}

static int stream_open(struct rl_log *base, const struct rl_uuid *disk,
		       struct rl_stream **out, struct rl_err *err)
{
	struct file_log *log = FLOG(base);
	bool writer = base->flags & RL_LOG_WRITE;
	struct file_stream *s;
	char path[PATH_MAX];
	int rc;

	pthread_mutex_lock(&log->lock);
	for (s = log->streams; s; s = s->next) {
		if ((disk && rl_uuid_eq(&s->disk, disk)) ||
		    (!disk && rl_uuid_is_nil(&s->disk)))
			break;
	}
	pthread_mutex_unlock(&log->lock);
	if (s) {
		*out = &s->base;
		return 0;
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		return rl_err_set(err, ENOMEM, "out of memory");
	s->base.log = base;
	s->fd = s->dfd = s->head_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	if (disk) {
		char u[RL_UUID_STRLEN + 1];

		if (rl_uuid_is_nil(disk)) {
			stream_free(s);
			return rl_err_set(err, EINVAL, "nil disk uuid");
		}
		s->disk = s->base.disk = *disk;
		rl_uuid_format(disk, u);
		snprintf(s->label, sizeof(s->label), "disks/%s", u);
	} else {
		snprintf(s->label, sizeof(s->label), "catalog");
	}
	snprintf(path, sizeof(path), "%s/%s", log->dir, s->label);
	s->dir = strdup(path);
	if (!s->dir) {
		stream_free(s);
		return rl_err_set(err, ENOMEM, "out of memory");
	}
	if (writer && mkdir(path, 0700) == 0) {
		char parent[PATH_MAX];

		snprintf(parent, sizeof(parent), "%s%s", log->dir,
			 disk ? "/disks" : "");
		rc = rl_fsync_dir(parent);
		if (rc < 0) {
			stream_free(s);
			return rl_err_set(err, -rc, "log %s: fsync %s: %s",
					  log->dir, parent, strerror(-rc));
		}
	} else if (access(path, F_OK) < 0) {
		rc = errno;
		stream_free(s);
		return rl_err_set(err, rc, "log %s: %s: %s", log->dir, path,
				  rc == ENOENT ? "no such stream" : strerror(rc));
	}
	rc = head_open(s, writer, err);
	if (rc == 0 && writer) {
		spares_delete(s);
		rc = stream_recover(log, s, err);
	}
	if (rc < 0) {
		stream_free(s);
		return rc;
	}

	pthread_mutex_lock(&log->lock);
	s->next = log->streams;
	log->streams = s;
	pthread_mutex_unlock(&log->lock);
	*out = &s->base;
	return 0;
}

static int file_stream_get(struct rl_log *base, const struct rl_uuid *disk,
			   struct rl_stream **out, struct rl_err *err)
{
	struct file_log *log = FLOG(base);
	int rc;

	pthread_mutex_lock(&log->open_lock);
	rc = stream_open(base, disk, out, err);
	pthread_mutex_unlock(&log->open_lock);
	return rc;
}

static int file_list(struct rl_log *base, struct rl_uuid *uuids, size_t max,
		     struct rl_err *err)
{
	struct file_log *log = FLOG(base);
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/disks", log->dir);
	d = opendir(path);
	if (!d)
		return rl_err_set(err, errno, "log %s: %s", path,
				  strerror(errno));
	while ((e = readdir(d))) {
		struct rl_uuid u;

		if (rl_uuid_parse(e->d_name, &u) < 0)
			continue;
		if ((size_t)n < max)
			uuids[n] = u;
		n++;
	}
	closedir(d);
	return n;
}

/* ------------------------------------------------------------ open/close */

static void file_close(struct rl_log *base)
{
	struct file_log *log = FLOG(base);
	struct file_stream *s, *next;

	if (log->has_flusher) {
		pthread_mutex_lock(&log->lock);
		log->stop = true;
		pthread_cond_signal(&log->work);
		pthread_mutex_unlock(&log->lock);
		pthread_join(log->flusher, NULL);
	}
	for (s = log->streams; s; s = next) {
		next = s->next;
		stream_free(s);
	}
	if (log->lock_fd >= 0)
		close(log->lock_fd);	/* releases the flock */
	for (size_t i = 0; i < log->n_pool; i++)
		free(log->pool[i]);
	free(log->pool);
	pthread_cond_destroy(&log->work);
	pthread_mutex_destroy(&log->lock);
	pthread_mutex_destroy(&log->open_lock);
	pthread_mutex_destroy(&log->pool_lock);
	free(log->dir);
	free(log);
}

static int take_writer_lock(struct file_log *log, struct rl_err *err)
{
	char path[PATH_MAX], pid[32];
	int fd;

	snprintf(path, sizeof(path), "%s/lock", log->dir);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return rl_err_set(err, errno, "log %s: %s: %s", log->dir, path,
				  strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		ssize_t n = rl_pread_full(fd, pid, sizeof(pid) - 1, 0);

		close(fd);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			return rl_err_set(err, EBUSY, "log %s: already open "
					  "for writing by another process%s%s%s",
					  log->dir, pid[0] ? " (pid " : "", pid,
					  pid[0] ? ")" : "");
		return rl_err_set(err, e, "log %s: lock: %s", log->dir,
				  strerror(e));
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0) {
		/* the pid is only a hint for messages */
	}
	log->lock_fd = fd;
	return 0;
}

static int file_open(const char *where, unsigned flags,
		     const struct rl_log_opts *opts, struct rl_log **out,
		     struct rl_err *err)
{
	bool writer = flags & RL_LOG_WRITE;
	struct file_log *log;
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if (strlen(where) > PATH_MAX - 128)
		return rl_err_set(err, ENAMETOOLONG, "log %s: path too long",
				  where);
	if (writer) {
		/* the log holds every disk's data: 0700, ours, and never a
		 * directory someone else can write into */
		rc = rl_state_dir(where, true, err);
		snprintf(path, sizeof(path), "%s/disks", where);
		if (rc == 0)
			rc = rl_state_dir(path, true, err);
		if (rc < 0)
			return rc;
	}
	if (stat(where, &st) < 0)
		return rl_err_set(err, errno, "log %s: %s", where,
				  errno == ENOENT ? "no such log" :
				  strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return rl_err_set(err, ENOTDIR, "log %s: not a directory",
				  where);

	log = calloc(1, sizeof(*log));
	if (!log || !(log->dir = strdup(where))) {
		free(log);
		return rl_err_set(err, ENOMEM, "out of memory");
	}
	log->base.be = &rl_backend_file;
	log->base.flags = flags;
	log->lock_fd = -1;
	log->segment_bytes = opts->segment_bytes ? opts->segment_bytes :
			     DEFAULT_SEGMENT_BYTES;
	log->quiet = opts->quiet;
	pthread_mutex_init(&log->lock, NULL);
	pthread_cond_init(&log->work, NULL);
	pthread_mutex_init(&log->open_lock, NULL);
	pthread_mutex_init(&log->pool_lock, NULL);

	if (writer) {
		rc = take_writer_lock(log, err);
		if (rc == 0) {
			rc = -pthread_create(&log->flusher, NULL, flusher_main,
					     log);
			if (rc < 0)
				rl_err_set(err, -rc, "log %s: start flusher: %s",
					   where, strerror(-rc));
			log->has_flusher = rc == 0;
		}
		if (rc < 0) {
			file_close(&log->base);
			return rc;
		}
	}
	*out = &log->base;
	return 0;
}

/* ------------------------------------------------------------ readers */

/* Waits for the read-ahead in flight, if any: its bytes, or -errno. */
static ssize_t ahead_wait(struct file_reader *r)
{
	const struct aiocb *list[1] = { &r->aio };
	ssize_t n;
	int e;

	if (!r->ahead_busy)
		return -ECANCELED;
	while ((e = aio_error(&r->aio)) == EINPROGRESS)
		aio_suspend(list, 1, NULL);
	r->ahead_busy = false;
	n = aio_return(&r->aio);
	return n < 0 ? -e : n;
}

static void reader_drop_segment(struct file_reader *r)
{
	ahead_wait(r);		/* before its descriptor goes */
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	if (r->dfd >= 0)
		close(r->dfd);
	if (r->dfd != -2)
		r->dfd = -1;
	r->buf_len = 0;
}

static int reader_open_segment(struct file_reader *r, uint64_t base,
			       struct rl_err *err)
{
	char path[PATH_MAX];
	int fd, rc;

	reader_drop_segment(r);
	seg_name(path, sizeof(path), r->s->dir, base);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rl_err_set(err, errno == ENOENT ? EBADMSG : errno,
				  "%s: segment %020" PRIu64 ".seg: %s "
				  "(position %" PRIu64 ")", r->s->label, base,
				  strerror(errno), r->pos);
	/* no readahead: its header reads would pull the segment into the
	 * page cache, and a cold one is read direct (see "Readers") */
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	rc = seg_check_header(r->s, fd, base, err);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	r->fd = fd;
	r->seg_base = base;
	r->off = SEG_HDR_SIZE;
	return 0;
}

/* Whether r->fd is still segment r->seg_base: a trimmed segment that r
 * holds open may be reused (see "Reused segments").  A reuse rewrites the
 * header before any record, so bytes read before this says true are the
 * segment's own. */
static bool reader_same_segment(struct file_reader *r)
{
	uint8_t h[16];

	return rl_pread_full(r->fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	       rl_get_le64(h + 8) == r->seg_base;
}

/* Whether most of bytes [off, off + len) of fd, as far as the file goes,
 * are in the page cache (mincore over a mapping of them, which is never
 * touched; true if that cannot be told). */
static bool mostly_cached(int fd, uint64_t off, size_t len)
{
	uint64_t at = off & ~(uint64_t)(DIRECT_ALIGN - 1), end = off + len;
	unsigned char vec[READ_CHUNK / DIRECT_ALIGN + 2];
	size_t pages, cached = 0;
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0)
		return true;
	if (end > (uint64_t)st.st_size)
		end = (uint64_t)st.st_size;
	if (end <= at)
		return true;
	pages = (size_t)((end - at + DIRECT_ALIGN - 1) / DIRECT_ALIGN);
	if (pages > sizeof(vec))
		pages = sizeof(vec);
	p = mmap(NULL, pages * DIRECT_ALIGN, PROT_READ, MAP_SHARED, fd,
		 (off_t)at);
	if (p == MAP_FAILED)
		return true;
	if (mincore(p, pages * DIRECT_ALIGN, vec) < 0)
		cached = pages;
	else
		for (size_t i = 0; i < pages; i++)
			cached += vec[i] & 1;
	munmap(p, pages * DIRECT_ALIGN);
	return cached * 2 >= pages;
}

/* Whether this fill, of len bytes, reads the segment with O_DIRECT (see
 * "Readers"): when most of them are not in the page cache. */
static bool reader_direct(struct file_reader *r, size_t len)
{
	int fd;

	if (r->dfd == -2 || mostly_cached(r->fd, r->off, len))
		return false;
	if (r->dfd >= 0)
		return true;
	fd = rl_reopen_direct(r->fd, O_RDONLY);
	/* -EINVAL: no O_DIRECT here, for good */
	r->dfd = fd >= 0 ? fd : fd == -EINVAL ? -2 : -1;
	return fd >= 0;
}

/* After a direct fill that was not cut short by the end of the file:
 * starts reading, direct and in the background, the chunk that the next
 * fill will want, from the first record that buf does not hold whole.
 * Nothing if buf ends in what is not a record (the zeros past the last). */
static void ahead_start(struct file_reader *r)
{
	const uint64_t mask = DIRECT_ALIGN - 1;
	uint64_t o = r->off, end = r->buf_off + r->buf_len, from;
	size_t need = RL_RECORD_HDR_MIN, want;

	while (o + RL_RECORD_HDR_MIN <= end) {
		ssize_t size = rl_record_size(r->buf + (o - r->buf_off), NULL);

		if (size <= 0)
			return;
		if (o + (uint64_t)size > end) {
			need = (size_t)size;
			break;
		}
		o += (uint64_t)size;
	}
	want = need > READ_CHUNK ? need : READ_CHUNK;
	from = o & ~mask;
	want = (size_t)(((o + want + mask) & ~mask) - from);
	if (want > r->ahead_cap) {
		void *nb;

		if (posix_memalign(&nb, DIRECT_ALIGN, want) != 0)
			return;
		free(r->ahead);
		r->ahead = nb;
		r->ahead_cap = want;
	}
	memset(&r->aio, 0, sizeof(r->aio));
	r->aio.aio_fildes = r->dfd;
	r->aio.aio_buf = r->ahead;
	r->aio.aio_nbytes = want;
	r->aio.aio_offset = (off_t)from;
	r->aio.aio_sigevent.sigev_notify = SIGEV_NONE;
	/* records below it were written before it was published */
	r->ahead_durable = head_load(r->s);
	r->ahead_rec = o;
	r->ahead_busy = aio_read(&r->aio) == 0;
}

/* The read-ahead, if it was for r->off and holds need bytes of it whole,
 * as r->buf: 1, or 0 to read them now. */
static int ahead_take(struct file_reader *r, size_t need)
{
	bool mine = r->ahead_busy && r->ahead_rec == r->off;
	uint64_t from = (uint64_t)r->aio.aio_offset;
	ssize_t n = ahead_wait(r);
	uint8_t *b = r->buf;
	size_t cap = r->buf_cap;

	if (!mine || n < 0 || r->pos >= r->ahead_durable ||
	    r->off + need > from + (uint64_t)n)
		return 0;
	r->buf = r->ahead;
	r->buf_cap = r->ahead_cap;
	r->ahead = b;
	r->ahead_cap = cap;
	r->buf_off = from;
	r->buf_len = (size_t)n;
	r->buf_durable = r->ahead_durable;
	return 1;
}

/* Makes bytes [r->off, r->off + need) available in r->buf.  Returns 1 if
 * they are, 0 at the end of the segment file (fewer bytes exist), or -errno.
 * Bytes of records below r->buf_durable are complete: the durable end is
 * loaded before the read, and records below it were written before it was
 * published (a direct read writes back the cached pages of its range
 * first, so it sees a record appended through the page cache too). */
static int reader_fill(struct file_reader *r, size_t need)
{
	uint64_t durable = head_load(r->s);
	const uint64_t mask = DIRECT_ALIGN - 1;
	uint64_t from = r->off;
	bool direct;
	ssize_t n;

	if (r->off >= r->buf_off && r->off + need <= r->buf_off + r->buf_len &&
	    r->pos < r->buf_durable)
		return 1;
	if (r->ahead_busy) {
		if (ahead_take(r, need)) {
			if (!reader_same_segment(r))
				return -ESTALE;
			ahead_start(r);
			return 1;
		}
	}
	size_t want = need > READ_CHUNK ? need : READ_CHUNK;

	direct = reader_direct(r, want);
	if (direct) {
		from = r->off & ~mask;
		want = (size_t)(((r->off + want + mask) & ~mask) - from);
	}
	if (want > r->buf_cap) {
		void *nb;

		if (posix_memalign(&nb, DIRECT_ALIGN, want) != 0)
			return -ENOMEM;
		free(r->buf);
		r->buf = nb;
		r->buf_cap = want;
		r->buf_len = 0;
	}
	if (direct) {
		/* one read: a short one is the end of the file, and a second
		 * would start at an unaligned offset */
		do
			n = pread(r->dfd, r->buf, want, (off_t)from);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno == EINVAL) {
			close(r->dfd);
			r->dfd = -2;
			return reader_fill(r, need);
		}
		if (n < 0)
			n = -errno;
	} else {
		n = rl_pread_full(r->fd, r->buf, want, (off_t)from);
	}
	if (n < 0)
		return (int)n;
	if (!reader_same_segment(r))
		return -ESTALE;
	r->buf_off = from;
	r->buf_len = (size_t)n;
	r->buf_durable = durable;
	if (direct && (size_t)n == want)
		ahead_start(r);
	return r->off + need <= from + (uint64_t)n ? 1 : 0;
}

/* Reads the record at r->off without checking its checksum (used to skip
 * to a position).  Returns its length, 0 at the end of the segment, or an
 * error. */
static ssize_t reader_peek(struct file_reader *r, struct rl_err *err)
{
	int rc = reader_fill(r, RL_RECORD_HDR_MIN);

	if (rc < 0)
		return rl_err_set(err, -rc, "%s", strerror(-rc));
	if (rc == 0)
		return 0;
	return rl_record_size(r->buf + (r->off - r->buf_off), err);
}

static int reader_fail(struct file_reader *r, int code, const char *why,
		       struct rl_err *err)
{
	char msg[sizeof(err->msg)];

	if (code == ESTALE) {
		code = ERANGE;
		why = "the segment was deleted while this reader read it (every "
		      "registered follower was past it): this position is no "
		      "longer in the log";
	}
	snprintf(msg, sizeof(msg), "%s", why);
	return rl_err_set(err, code, "%s/%020" PRIu64 ".seg byte %" PRIu64
			  " (position %" PRIu64 "): %s", r->s->label,
			  r->seg_base, r->off, r->pos, msg);
}

static int file_reader_next(struct rl_reader *base, struct rl_record *rec,
			    uint64_t *pos, int timeout_ms, struct rl_err *err)
{
	struct file_reader *r = (struct file_reader *)base;
	struct timespec nap = { 0, 1000000 };
	int waited = 0;

	for (;;) {
		uint64_t durable = head_load(r->s);

		if (r->pos < durable)
			break;
		if (waited >= timeout_ms)
			return 0;
		nanosleep(&nap, NULL);
		waited += (int)(nap.tv_nsec / 1000000);
		if (nap.tv_nsec < 8000000)
			nap.tv_nsec *= 2;	/* back off to 8 ms when idle */
	}

	struct rl_err e;
	ssize_t len;

	if (r->fd < 0) {
		int rc = reader_open_segment(r, r->pos, err);

		if (rc < 0)
			return rc;
	}
	len = reader_peek(r, &e);
	if (len == -ESTALE) {
		/* the segment was reused.  If it was read to its end, the
		 * next one starts at r->pos and reading goes on there (a
		 * segment is trimmed once its successor's base is reported,
		 * which is where a caught-up follower waits); if not, no
		 * segment has that base, and r->pos is gone */
		struct rl_err e2;
		uint64_t seg = r->seg_base;

		if (reader_open_segment(r, r->pos, &e2) < 0) {
			r->seg_base = seg;
			return reader_fail(r, ESTALE, "", err);
		}
		len = reader_peek(r, &e);
	}
	if (len == 0) {
		/* end of this segment: the durable record at r->pos is the
		 * first of the next one */
		int rc = reader_open_segment(r, r->pos, err);

		if (rc < 0)
			return rc;
		len = reader_peek(r, &e);
		if (len == 0)
			return reader_fail(r, EBADMSG, "empty segment below "
					   "the durable end", err);
	}
	if (len < 0)
		return reader_fail(r, (int)-len, e.msg, err);
	int rc = reader_fill(r, (size_t)len);

	if (rc < 0)
		return reader_fail(r, -rc, strerror(-rc), err);
	if (rc == 0)
		return reader_fail(r, EBADMSG, "record cut short below the "
				   "durable end", err);
	rc = rl_record_decode(&r->dec, r->buf + (r->off - r->buf_off),
			      (size_t)len, rec, &e);
	if (rc < 0)
		return reader_fail(r, -rc, e.msg, err);
	if (!rl_uuid_eq(&rec->disk, &r->s->disk) && !rl_uuid_is_nil(&r->s->disk))
		return reader_fail(r, EBADMSG, "record of another disk", err);
	*pos = r->pos++;
	r->off += (uint64_t)len;
	return 1;
}

static void file_reader_close(struct rl_reader *base)
{
	struct file_reader *r = (struct file_reader *)base;

	reader_drop_segment(r);
	rl_decoder_free(&r->dec);
	free(r->buf);
	free(r->ahead);
	free(r);
}

static int file_reader_open(struct rl_stream *base, uint64_t pos,
			    struct rl_reader **out, struct rl_err *err)
{
	struct file_stream *s = FSTREAM(base);
	struct file_reader *r;
	uint64_t *segs = NULL, seg, end = head_load(s);
	int n, rc;

	if (pos > end)
		return rl_err_set(err, ERANGE, "%s: position %" PRIu64 " is "
				  "past the end of the log (%" PRIu64 ")",
				  s->label, pos, end);
	n = list_segments(s->dir, &segs);
	if (n == 0 && end == 0) {
		/* a stream being created: its first segment may not exist
		 * yet; reader_next opens it once a record is durable */
		seg = 0;
	} else if (n > 0 && segs[0] > pos) {
		uint64_t first = segs[0];

		free(segs);
		return rl_err_set(err, ERANGE, "%s: position %" PRIu64 " is "
				  "no longer in the log, which now starts at "
				  "position %" PRIu64 " (deleted once every "
				  "registered follower was past it): this "
				  "replica cannot catch up from the log and "
				  "must be reseeded from another one (repdisk "
				  "seed --from)", s->label, pos, first);
	} else if (n <= 0) {
		free(segs);
		return rl_err_set(err, n < 0 ? -n : ENOENT, "%s: no segment "
				  "holds position %" PRIu64, s->label, pos);
	} else {
		seg = segs[0];
	}
	for (int i = 0; i < n; i++)
		if (segs[i] <= pos)
			seg = segs[i];
	free(segs);

	r = calloc(1, sizeof(*r));
	if (!r)
		return rl_err_set(err, ENOMEM, "out of memory");
	r->base.stream = base;
	r->s = s;
	r->fd = r->dfd = -1;
	r->pos = seg;
	rl_decoder_init(&r->dec);
	r->dec.keys = base->log->keys;
	rc = n == 0 ? 0 : reader_open_segment(r, seg, err);
	/* skip to pos over durable records, reading headers only (not
	 * through r->buf, which would read a chunk at every record) */
	while (rc == 0 && r->pos < pos) {
		uint8_t hdr[RL_RECORD_HDR_MIN];
		struct rl_err e = { 0 };
		ssize_t len = rl_pread_full(r->fd, hdr, sizeof(hdr),
					    (off_t)r->off);

		if (len == (ssize_t)sizeof(hdr))
			len = rl_record_size(hdr, &e);
		else if (len >= 0)
			len = 0;	/* the segment ends */
		else
			snprintf(e.msg, sizeof(e.msg), "%s",
				 strerror((int)-len));
		if (len <= 0)
			rc = reader_fail(r, len < 0 ? (int)-len : EBADMSG,
					 len < 0 ? e.msg : "segment ends early",
					 err);
		else {
			r->off += (uint64_t)len;
			r->pos++;
		}
	}
	if (rc == 0 && r->fd >= 0 && !reader_same_segment(r))
		rc = reader_fail(r, ESTALE, "", err);
	if (rc < 0) {
		file_reader_close(&r->base);
		return rc;
	}
	*out = &r->base;
	return 0;
}

/* ------------------------------------------------------------ retention */

/* Takes the segments whose records are all below keep_from out of the
 * log: every segment but the last whose successor starts at or below
 * keep_from.  A disk stream keeps some of them as spares and deletes the
 * rest (how many: "Reused segments").
 * Readers that have a deleted segment open go on reading it (the file
 * stays until they close it), or stop with ERANGE once a spare is reused;
 * readers opened below the new first segment get -ERANGE. */
static int file_trim(struct rl_stream *base, uint64_t keep_from,
		     struct rl_err *err)
{
	struct file_stream *s = FSTREAM(base);
	struct file_log *log = FLOG(base->log);
	uint64_t *segs = NULL, *old = NULL, keep, want = 0;
	uint64_t spares_max = SPARE_BYTES / log->segment_bytes;
	size_t n_old = 0, n_new = 0;
	int n = list_segments(s->dir, &segs), out = 0, rc = 0;
	char path[PATH_MAX], spare[PATH_MAX];

	if (n < 0)
		return rl_err_set(err, -n, "%s: list segments: %s", s->label,
				  strerror(-n));
	if (keep_from == 0) {
		free(segs);	/* nothing is below 0 (fs/disks.c asks so,
				   to learn whether the log trims at all) */
		return 0;
	}
	for (int i = 0; i + 1 < n && segs[i + 1] <= keep_from; i++)
		out++;
	if (spares_max < 1)
		spares_max = 1;

	/* How many spares to keep, and the oldest ones beyond that. */
	pthread_mutex_lock(&s->lock);
	s->idle_trims = s->rolled ? 0 : s->idle_trims + 1;
	s->rolled = false;
	if (rl_uuid_is_nil(&s->disk) || s->idle_trims >= SPARE_IDLE_TRIMS)
		keep = 0;
	else if (out)		/* twice the need: rates vary */
		keep = 2 * s->rolls + 2 < spares_max ? 2 * s->rolls + 2 :
						       spares_max;
	else
		keep = s->n_spares;
	if (out)
		s->rolls = 0;
	if (s->n_spares > keep) {
		n_old = s->n_spares - (size_t)keep;
		old = malloc(n_old * sizeof(*old));
		if (old) {
			memcpy(old, s->spares, n_old * sizeof(*old));
			s->n_spares -= n_old;
			memmove(s->spares, s->spares + n_old,
				s->n_spares * sizeof(*s->spares));
		} else {
			n_old = 0;	/* deleted at a later trim */
		}
	}
	want = keep > s->n_spares ? keep - s->n_spares : 0;
	if (want > (uint64_t)out)
		want = (uint64_t)out;
	if (want && rl_grow(&s->spares, &s->cap_spares,
			    s->n_spares + (size_t)want, sizeof(*s->spares)) < 0)
		want = 0;
	pthread_mutex_unlock(&s->lock);

	/* Outside the lock (a delete can take tens of ms; appends never
	 * touch these files): the newest `want` segments out become spares,
	 * the rest go.  The renames are made durable before a roll-over can
	 * take one of them, so that a power loss never brings back a
	 * segment name over a reused file. */
	for (int i = 0; i < out; i++) {
		seg_name(path, sizeof(path), s->dir, segs[i]);
		if ((uint64_t)(out - i) <= want) {
			spare_name(spare, sizeof(spare), s->dir, segs[i]);
			if (rename(path, spare) == 0) {
				segs[n_new++] = segs[i];
				continue;
			}
		}
		if (unlink(path) < 0 && rc == 0)
			rc = rl_err_set(err, errno, "%s: %s", path,
					strerror(errno));
	}
	for (size_t i = 0; i < n_old; i++) {
		/* one left behind is deleted at the next open */
		spare_name(spare, sizeof(spare), s->dir, old[i]);
		unlink(spare);
	}
	free(old);
	if (out || n_old)
		rl_fsync_dir(s->dir);

	if (n_new) {
		pthread_mutex_lock(&s->lock);
		memcpy(s->spares + s->n_spares, segs, n_new * sizeof(*segs));
		s->n_spares += n_new;
		pthread_mutex_unlock(&s->lock);
	}
	free(segs);
	return rc < 0 ? rc : out;
}

/* The byte offset of position `to` in segment fd (base `pos`), found by
 * walking record headers from the first; where the walk ends if the
 * segment ends first. */
static uint64_t seg_offset_of(int fd, uint64_t pos, uint64_t to)
{
	uint64_t off = SEG_HDR_SIZE;

	for (; pos < to; pos++) {
		uint8_t hdr[RL_RECORD_HDR_MIN];
		ssize_t len;

		if (rl_pread_full(fd, hdr, sizeof(hdr), (off_t)off) !=
		    sizeof(hdr))
			break;
		len = rl_record_size(hdr, NULL);
		if (len < 0)
			break;
		off += (uint64_t)len;
	}
	return off;
}

/* Bytes from position `from` to the durable end: the rest of the segment
 * holding `from` plus every later segment, up to the durable end's byte
 * offset.  That is approximated by the last segment's size (what is past
 * the durable end is at most the records of one group commit), except in
 * a reused segment, whose size says nothing: there the headers are
 * walked. */
static int file_bytes_from(struct rl_stream *base, uint64_t from,
			   uint64_t *bytes)
{
	struct file_stream *s = FSTREAM(base);
	uint64_t *segs = NULL, end = head_load(s), total = 0;
	int n = list_segments(s->dir, &segs);

	*bytes = 0;
	if (n < 0)
		return n;
	if (from >= end || n == 0) {
		free(segs);
		return 0;
	}
	if (segs[0] > from) {
		free(segs);
		return -ERANGE;
	}
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX];
		struct stat st;
		uint64_t lo = SEG_HDR_SIZE, hi;
		int fd;

		if (i + 1 < n && segs[i + 1] <= from)
			continue;	/* wholly below from */
		seg_name(path, sizeof(path), s->dir, segs[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;	/* deleted meanwhile */
		if (fstat(fd, &st) < 0) {
			close(fd);
			continue;
		}
		hi = (uint64_t)st.st_size;
		if (segs[i] < from)
			lo = seg_offset_of(fd, segs[i], from);
		if (i == n - 1 && seg_check_header(s, fd, segs[i], NULL) == 1)
			hi = seg_offset_of(fd, segs[i], end);
		close(fd);
		if (hi > lo)
			total += hi - lo;
	}
	free(segs);
	*bytes = total;
	return 0;
}

/* ------------------------------------------------------------ positions */

/* Follower positions: LOGDIR/followers/NAME, one small text file per
 * follower (positions.c encodes it), replaced atomically: written under a
 * temporary name (".NAME.tmp", which listing skips: names start with a
 * letter or a digit), fdatasync'ed, renamed over.  Any process that may
 * read the log may publish, the writer's lock is not needed: each follower
 * writes only its own file. */

#define POS_DIR "followers"
#define POS_FILE_MAX (16u << 20)

static int file_pos_put(struct rl_log *base, const char *name,
			const void *buf, size_t len, struct rl_err *err)
{
	struct file_log *log = FLOG(base);
	char dir[PATH_MAX], path[PATH_MAX + RL_FOLLOWER_NAME_MAX + 2];
	struct rl_err e;

	snprintf(dir, sizeof(dir), "%s/" POS_DIR, log->dir);
	if (!buf) {
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (unlink(path) < 0 && errno != ENOENT)
			return rl_err_set(err, errno, "follower positions: "
					  "remove %s: %s", path,
					  strerror(errno));
		/* if this fails, the follower may reappear after a crash,
		 * which only keeps more: safe */
		rl_fsync_dir(dir);
		return 0;
	}
	if (mkdir(dir, 0700) == 0)
		rl_fsync_dir(log->dir);
	else if (errno != EEXIST)
		return rl_err_set(err, errno, "follower positions: mkdir %s: "
				  "%s", dir, strerror(errno));
	if (rl_write_atomic(dir, name, buf, len, &e) < 0)
		return rl_err_set(err, e.code, "follower positions: %s",
				  e.msg);
	return 0;
}

static int file_pos_read(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size > POS_FILE_MAX) {
		int rc = st.st_size > POS_FILE_MAX ? -EFBIG : -errno;

		close(fd);
		return rc;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = rl_pread_full(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	*out = buf;
	*len = (size_t)n;
	return 0;
}

static int file_pos_scan(struct rl_log *base,
			 int (*each)(void *opaque, const char *name,
				     const void *buf, size_t len,
				     const char *where, struct rl_err *err),
			 void *opaque, struct rl_err *err)
{
	struct file_log *log = FLOG(base);
	char dir[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s/" POS_DIR, log->dir);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 :	/* no follower published yet */
		       rl_err_set(err, errno, "follower positions: %s: %s",
				  dir, strerror(errno));
	while (rc == 0 && (e = readdir(d))) {
		char path[PATH_MAX + sizeof(e->d_name) + 1], *buf = NULL;
		size_t len = 0;

		if (e->d_name[0] == '.')
			continue;	/* ".", "..", temporary files */
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		rc = file_pos_read(path, &buf, &len);
		if (rc == -ENOENT) {
			rc = 0;		/* forgotten meanwhile */
			continue;
		}
		if (rc < 0) {
			rc = rl_err_set(err, -rc, "follower positions: read "
					"%s: %s", path, strerror(-rc));
			break;
		}
		rc = each(opaque, e->d_name, buf, len, path, err);
		free(buf);
	}
	closedir(d);
	return rc;
}

const struct rl_backend rl_backend_file = {
	.scheme = "file",
	.open = file_open,
	.close = file_close,
	.stream = file_stream_get,
	.list = file_list,
	.append = file_append,
	.end = file_end,
	.reader_open = file_reader_open,
	.reader_next = file_reader_next,
	.reader_close = file_reader_close,
	.pos_put = file_pos_put,
	.pos_scan = file_pos_scan,
	.trim = file_trim,
	.bytes_from = file_bytes_from,
};
