/* Unit tests of the file log (replog/log_file.c, replog/log.c): appends and
 * reads, the durable end, group commit under many concurrent appenders,
 * segment roll-over, torn-tail recovery, damage detection, the one-writer
 * lock, readers tailing a live writer from another process, and errors.
 *
 * This binary is linked with -Wl,--wrap=fdatasync: every fdatasync() of the
 * replog library goes through __wrap_fdatasync() below, which (when a test
 * turns it on) notes how many appends had started before each sync began.
 * A record is durable only once a sync that began after its append started
 * has returned, which lets a reader in another process check that it never
 * sees a record before that.
 *
 * It is linked with -Wl,--wrap=pread64 too: when refuse_direct is set, a
 * read of a descriptor opened with O_DIRECT fails with EINVAL, as on a
 * filesystem that takes the flag at open but not the read's alignment,
 * so that the readers' fallback to the page cache runs. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <sodium.h>

/* ------------------------------------------------------------ fdatasync */

struct sync_watch {
	_Atomic uint64_t started;	/* appends started by the writer */
	_Atomic uint64_t durable_ub;	/* no record at or past this is durable */
	_Atomic uint64_t syncs;
	_Atomic int delay_us;		/* before each real fdatasync */
};

static struct sync_watch *watch;	/* shared memory, NULL when off */

int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);

int __wrap_fdatasync(int fd)
{
	struct sync_watch *w = watch;
	uint64_t ub, cur;
	int rc;

	if (!w)
		return __real_fdatasync(fd);
	ub = atomic_load(&w->started);
	if (atomic_load(&w->delay_us))
		usleep((useconds_t)atomic_load(&w->delay_us));
	rc = __real_fdatasync(fd);
	if (rc == 0) {
		cur = atomic_load(&w->durable_ub);
		while (cur < ub &&
		       !atomic_compare_exchange_weak(&w->durable_ub, &cur, ub))
			;
		atomic_fetch_add(&w->syncs, 1);
	}
	return rc;
}

/* ------------------------------------------------------------ pread */

static _Atomic bool refuse_direct;
static _Atomic unsigned refused_reads;

ssize_t __real_pread64(int fd, void *buf, size_t n, off_t off);
ssize_t __wrap_pread64(int fd, void *buf, size_t n, off_t off);

ssize_t __wrap_pread64(int fd, void *buf, size_t n, off_t off)
{
	int fl;

	if (atomic_load(&refuse_direct) && (fl = fcntl(fd, F_GETFL)) >= 0 &&
	    (fl & O_DIRECT)) {
		atomic_fetch_add(&refused_reads, 1);
		errno = EINVAL;
		return -1;
	}
	return __real_pread64(fd, buf, n, off);
}

/* ------------------------------------------------------------ helpers */

static const struct rl_uuid disk1 = { { 0xd1, 0x5c, 0x00, 0x01, 0x02, 0x03,
					0x44, 0x05, 0x86, 0x07, 0x08, 0x09,
					0x0a, 0x0b, 0x0c, 0x0d } };

/* Record `tag`: a WRITE whose seq is the tag and whose data (dlen bytes)
 * is derived from it, so a reader can check what it got. */
static size_t tag_record(uint64_t tag, size_t dlen, uint8_t **out)
{
	uint8_t data[4096];
	uint64_t seed = tag * 7919 + 1;
	struct rl_record r = { .type = RL_WRITE, .disk = disk1, .epoch = 1,
			       .seq = tag, .offset = tag * 512,
			       .length = dlen, .data = data, .data_len = dlen };

	ck_assert_uint_le(dlen, sizeof(data));
	unit_fill_random(data, dlen, &seed);
	return unit_encode(&r, 0, out);
}

static size_t tag_len(uint64_t tag)
{
	return 1 + (size_t)(tag * 37 % 200);
}

/* Is rec record `tag` (as made by tag_record with tag_len)?  Returns NULL
 * or what differs. */
static const char *tag_check(const struct rl_record *rec, uint64_t tag)
{
	uint8_t data[4096];
	uint64_t seed = tag * 7919 + 1;
	size_t dlen = tag_len(tag);

	if (rec->type != RL_WRITE)
		return "type";
	if (!rl_uuid_eq(&rec->disk, &disk1))
		return "disk";
	if (rec->seq != tag)
		return "seq";
	if (rec->offset != tag * 512 || rec->length != dlen ||
	    rec->data_len != dlen)
		return "range";
	unit_fill_random(data, dlen, &seed);
	if (memcmp(rec->data, data, dlen) != 0)
		return "data";
	return NULL;
}

static struct rl_log *open_log(const char *dir, unsigned flags,
			       uint64_t segment_bytes)
{
	struct rl_log_opts opts = { .segment_bytes = segment_bytes,
				    .quiet = true };
	struct rl_err err = { 0 };
	struct rl_log *log = NULL;
	int rc = rl_log_open(dir, flags, &opts, &log, &err);

	ck_assert_msg(rc == 0, "open log %s: %d: %s", dir, rc, err.msg);
	ck_assert_ptr_nonnull(log);
	return log;
}

static struct rl_stream *get_stream(struct rl_log *log,
				    const struct rl_uuid *disk)
{
	struct rl_err err = { 0 };
	struct rl_stream *s = NULL;
	int rc = rl_log_stream(log, disk, &s, &err);

	ck_assert_msg(rc == 0, "stream: %d: %s", rc, err.msg);
	return s;
}

static uint64_t log_end(struct rl_stream *s)
{
	uint64_t end = UINT64_MAX;

	ck_assert_int_eq(rl_log_end(s, &end, NULL), 0);
	return end;
}

/* Appends records tag0 .. tag0+n-1 synchronously; checks their positions. */
static void append_tags(struct rl_stream *s, uint64_t tag0, uint64_t n,
			uint64_t pos0)
{
	for (uint64_t t = tag0; t < tag0 + n; t++) {
		uint8_t *rec;
		size_t len = tag_record(t, tag_len(t), &rec);
		int64_t pos = rl_log_append_sync(s, rec, len, NULL);

		ck_assert_msg(pos == (int64_t)(pos0 + t - tag0),
			      "append of record %llu at position %lld, "
			      "expected %llu", (unsigned long long)t,
			      (long long)pos,
			      (unsigned long long)(pos0 + t - tag0));
		free(rec);
	}
}

/* Reads from pos to the durable end (tag == position) and expects exactly
 * `want_end` there. */
static void read_tags(struct rl_stream *s, uint64_t from, uint64_t want_end)
{
	struct rl_err err = { 0 };
	struct rl_reader *r = NULL;
	struct rl_record rec;
	uint64_t pos;
	int rc = rl_reader_open(s, from, &r, &err);

	ck_assert_msg(rc == 0, "reader at %llu: %d: %s",
		      (unsigned long long)from, rc, err.msg);
	for (uint64_t want = from; want < want_end; want++) {
		const char *bad;

		rc = rl_reader_next(r, &rec, &pos, 0, &err);
		ck_assert_msg(rc == 1, "read position %llu (reader from %llu): "
			      "%d: %s", (unsigned long long)want,
			      (unsigned long long)from, rc, err.msg);
		ck_assert_uint_eq(pos, want);
		bad = tag_check(&rec, want);
		ck_assert_msg(!bad, "position %llu: wrong %s",
			      (unsigned long long)want, bad);
	}
	rc = rl_reader_next(r, &rec, &pos, 0, &err);
	ck_assert_msg(rc == 0, "read past the end (%llu): %d: %s",
		      (unsigned long long)want_end, rc, err.msg);
	rl_reader_close(r);
}

static void stream_dir(const char *logdir, char *out, size_t size)
{
	char u[RL_UUID_STRLEN + 1];

	rl_uuid_format(&disk1, u);
	unit_path(out, size, "%s/disks/%s", logdir, u);
}

/* The segment files of a stream directory, sorted (names into out). */
static int list_segs(const char *dir, char out[][32], int max)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l == 24 && strcmp(e->d_name + 20, ".seg") == 0) {
			ck_assert_int_lt(n, max);
			memcpy(out[n++], e->d_name, 25);
		}
	}
	closedir(d);
	qsort(out, (size_t)n, 32, (int (*)(const void *, const void *))strcmp);
	return n;
}

/* ------------------------------------------------------------ tests */

START_TEST(test_append_and_read_back)
{
	char dir[PATH_MAX];
	struct rl_log *log, *rlog;
	struct rl_stream *s, *rs, *cat;
	struct rl_reader *r;
	struct rl_err err = { 0 };
	struct rl_record rec;
	uint64_t pos;

	unit_tmpdir("append", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 0);
	s = get_stream(log, &disk1);
	ck_assert(rl_uuid_eq(rl_stream_disk(s), &disk1));
	ck_assert_uint_eq(log_end(s), 0);
	/* the same stream object for the same disk */
	ck_assert_ptr_eq(get_stream(log, &disk1), s);

	append_tags(s, 0, 10, 0);
	ck_assert_uint_eq(log_end(s), 10);
	read_tags(s, 0, 10);
	read_tags(s, 5, 10);
	read_tags(s, 9, 10);
	read_tags(s, 10, 10);
	ck_assert_int_eq(rl_reader_open(s, 11, &r, &err), -ERANGE);

	/* the catalog is a stream of its own, with a nil disk */
	cat = get_stream(log, NULL);
	ck_assert(rl_uuid_is_nil(rl_stream_disk(cat)));
	ck_assert_uint_eq(log_end(cat), 0);
	{
		struct rl_record c = { .type = RL_CREATE, .disk = disk1,
				       .name = "vm1", .mode = 0600 };
		uint8_t *buf;
		size_t len = unit_encode(&c, 0, &buf);

		ck_assert_int_eq(rl_log_append_sync(cat, buf, len, NULL), 0);
		free(buf);
	}
	ck_assert_uint_eq(log_end(cat), 1);
	ck_assert_uint_eq(log_end(s), 10);

	/* a reader's log in the same process sees the same records */
	rlog = open_log(dir, 0, 0);
	rs = get_stream(rlog, &disk1);
	ck_assert_uint_eq(log_end(rs), 10);
	read_tags(rs, 0, 10);
	ck_assert_int_eq(rl_reader_open(get_stream(rlog, NULL), 0, &r, &err), 0);
	ck_assert_int_eq(rl_reader_next(r, &rec, &pos, 0, &err), 1);
	ck_assert_int_eq(rec.type, RL_CREATE);
	ck_assert_str_eq(rec.name, "vm1");
	ck_assert_uint_eq(pos, 0);
	rl_reader_close(r);
	/* appending to a reader's log is refused */
	{
		uint8_t *buf;
		size_t len = tag_record(10, tag_len(10), &buf);

		ck_assert_int_eq(rl_log_append_sync(rs, buf, len, NULL), -EROFS);
		ck_assert_int_eq(rl_log_append(rs, buf, len, NULL, NULL),
				 -EROFS);
		free(buf);
	}
	rl_log_close(rlog);
	rl_log_close(log);

	/* reopened as writer: the records are there, appends go on */
	log = open_log(dir, RL_LOG_WRITE, 0);
	s = get_stream(log, &disk1);
	ck_assert_uint_eq(log_end(s), 10);
	append_tags(s, 10, 5, 10);
	read_tags(s, 0, 15);
	rl_log_close(log);
}
END_TEST

struct durable_ctx {
	struct rl_stream *s;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, err;
	uint64_t pos, end_in_cb;
};

static void durable_cb(void *opaque, int err, uint64_t pos)
{
	struct durable_ctx *c = opaque;
	uint64_t end = 0;

	rl_log_end(c->s, &end, NULL);
	pthread_mutex_lock(&c->lock);
	c->err = err;
	c->pos = pos;
	c->end_in_cb = end;
	c->done++;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* The durable end covers a record before its completion runs, and readers
 * in other log handles see the same end. */
START_TEST(test_durable_end)
{
	char dir[PATH_MAX];
	struct rl_log *log, *rlog;
	struct rl_stream *s, *rs;
	struct durable_ctx c = { .lock = PTHREAD_MUTEX_INITIALIZER,
				 .cond = PTHREAD_COND_INITIALIZER };

	unit_tmpdir("durable", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 0);
	s = get_stream(log, &disk1);
	rlog = open_log(dir, 0, 0);
	rs = get_stream(rlog, &disk1);
	ck_assert_uint_eq(log_end(rs), 0);
	c.s = s;
	for (uint64_t t = 0; t < 20; t++) {
		uint8_t *buf;
		size_t len = tag_record(t, tag_len(t), &buf);

		ck_assert_int_eq(rl_log_append(s, buf, len, durable_cb, &c), 0);
		memset(buf, 0xff, len);	/* the log copied it already */
		free(buf);
		pthread_mutex_lock(&c.lock);
		while (c.done <= (int)t)
			pthread_cond_wait(&c.cond, &c.lock);
		pthread_mutex_unlock(&c.lock);
		ck_assert_int_eq(c.err, 0);
		ck_assert_uint_eq(c.pos, t);
		ck_assert_uint_ge(c.end_in_cb, t + 1);
		ck_assert_uint_eq(log_end(s), t + 1);
		ck_assert_uint_eq(log_end(rs), t + 1);
	}
	read_tags(rs, 0, 20);
	rl_log_close(rlog);
	rl_log_close(log);
}
END_TEST

/* ------------------------------------------------ concurrent appenders */

#define N_THREADS 32
#define N_PER_THREAD 200
#define N_TOTAL (N_THREADS * N_PER_THREAD)

struct conc_slot {
	int done;		/* callbacks run for this record */
	int err;
	uint64_t pos;
};

struct conc {
	struct rl_stream *s;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct conc_slot slot[N_TOTAL];
	uint64_t completed;
	uint64_t next_pos;	/* the position the next completion must have */
	uint64_t out_of_order;
	uint64_t append_errors;
};

struct conc_arg {
	struct conc *c;
	int thread;
};

struct conc_op {
	struct conc *c;
	uint64_t tag;
};

static void conc_cb(void *opaque, int err, uint64_t pos)
{
	struct conc_op *op = opaque;
	struct conc *c = op->c;

	pthread_mutex_lock(&c->lock);
	c->slot[op->tag].done++;
	c->slot[op->tag].err = err;
	c->slot[op->tag].pos = pos;
	if (pos != c->next_pos)
		c->out_of_order++;
	c->next_pos = pos + 1;
	c->completed++;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	free(op);
}

static void *conc_thread(void *p)
{
	struct conc_arg *a = p;

	for (int i = 0; i < N_PER_THREAD; i++) {
		uint64_t tag = (uint64_t)a->thread * N_PER_THREAD + (uint64_t)i;
		struct conc_op *op = malloc(sizeof(*op));
		uint8_t *buf;
		size_t len = tag_record(tag, tag_len(tag), &buf);

		op->c = a->c;
		op->tag = tag;
		if (rl_log_append(a->c->s, buf, len, conc_cb, op) != 0) {
			pthread_mutex_lock(&a->c->lock);
			a->c->append_errors++;
			pthread_mutex_unlock(&a->c->lock);
			free(op);
		}
		memset(buf, 0, len);	/* must have been copied */
		free(buf);
	}
	return NULL;
}

START_TEST(test_concurrent_appenders)
{
	char dir[PATH_MAX], sdir[PATH_MAX], segs[1024][32];
	struct conc *c = calloc(1, sizeof(*c));
	struct conc_arg args[N_THREADS];
	pthread_t th[N_THREADS];
	struct rl_log *log;
	uint8_t *seen;

	ck_assert_ptr_nonnull(c);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	unit_tmpdir("concurrent", dir, sizeof(dir));
	/* small segments, so roll-overs happen under concurrent appends */
	log = open_log(dir, RL_LOG_WRITE, 64 * 1024);
	c->s = get_stream(log, &disk1);
	for (int t = 0; t < N_THREADS; t++) {
		args[t] = (struct conc_arg){ c, t };
		ck_assert_int_eq(pthread_create(&th[t], NULL, conc_thread,
						&args[t]), 0);
	}
	for (int t = 0; t < N_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_lock(&c->lock);
	while (c->completed < N_TOTAL - c->append_errors)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);

	ck_assert_uint_eq(c->append_errors, 0);
	ck_assert_uint_eq(c->completed, N_TOTAL);
	ck_assert_msg(c->out_of_order == 0, "%llu completions out of "
		      "position order", (unsigned long long)c->out_of_order);
	seen = calloc(N_TOTAL, 1);
	for (uint64_t tag = 0; tag < N_TOTAL; tag++) {
		struct conc_slot *sl = &c->slot[tag];

		ck_assert_msg(sl->done == 1, "record %llu: %d callbacks",
			      (unsigned long long)tag, sl->done);
		ck_assert_msg(sl->err == 0, "record %llu: err %d",
			      (unsigned long long)tag, sl->err);
		ck_assert_uint_lt(sl->pos, N_TOTAL);
		ck_assert_msg(!seen[sl->pos], "position %llu given twice",
			      (unsigned long long)sl->pos);
		seen[sl->pos] = 1;
		if (tag % N_PER_THREAD)	/* per thread, in submission order */
			ck_assert_uint_gt(sl->pos, c->slot[tag - 1].pos);
	}
	free(seen);
	ck_assert_uint_eq(log_end(c->s), N_TOTAL);

	/* every record reads back at its position with its contents */
	{
		struct rl_err err = { 0 };
		struct rl_reader *r;
		struct rl_record rec;
		uint64_t pos;

		ck_assert_int_eq(rl_reader_open(c->s, 0, &r, &err), 0);
		for (uint64_t want = 0; want < N_TOTAL; want++) {
			int rc = rl_reader_next(r, &rec, &pos, 0, &err);

			ck_assert_msg(rc == 1, "position %llu: %d: %s",
				      (unsigned long long)want, rc, err.msg);
			ck_assert_uint_eq(pos, want);
			ck_assert_uint_lt(rec.seq, N_TOTAL);
			ck_assert_uint_eq(c->slot[rec.seq].pos, pos);
			ck_assert_ptr_null(tag_check(&rec, rec.seq));
		}
		ck_assert_int_eq(rl_reader_next(r, &rec, &pos, 0, &err), 0);
		rl_reader_close(r);
	}
	rl_log_close(log);
	stream_dir(dir, sdir, sizeof(sdir));
	ck_assert_int_gt(list_segs(sdir, segs, 1024), 3);

	/* and again from a reader's log after the writer is gone */
	log = open_log(dir, 0, 0);
	{
		struct rl_stream *s = get_stream(log, &disk1);
		struct rl_err err = { 0 };
		struct rl_reader *r;
		struct rl_record rec;
		uint64_t pos, n = 0;

		ck_assert_uint_eq(log_end(s), N_TOTAL);
		ck_assert_int_eq(rl_reader_open(s, N_TOTAL / 2, &r, &err), 0);
		while (rl_reader_next(r, &rec, &pos, 0, &err) == 1) {
			ck_assert_uint_eq(pos, N_TOTAL / 2 + n);
			ck_assert_uint_eq(c->slot[rec.seq].pos, pos);
			n++;
		}
		ck_assert_uint_eq(n, N_TOTAL / 2);
		rl_reader_close(r);
	}
	rl_log_close(log);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}
END_TEST

/* Many streams appended at once, each by a thread that keeps a few
 * records in flight and appends more only as they complete (a guest's
 * iodepth): every completion must come, in bounded time.  The flusher
 * once lost streams from its batch when an append relinked one it was
 * walking, and such a writer then waited for ever. */
#define MS_STREAMS	16
#define MS_DEPTH	4
#define MS_RECORDS	400

struct ms_stream {
	struct rl_stream *s;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned in_flight, completed, errors;
	uint64_t next_pos, out_of_order;
	bool hung;
};

static void ms_cb(void *opaque, int err, uint64_t pos)
{
	struct ms_stream *m = opaque;

	pthread_mutex_lock(&m->lock);
	m->in_flight--;
	m->completed++;
	if (err)
		m->errors++;
	if (pos != m->next_pos)
		m->out_of_order++;
	m->next_pos = pos + 1;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/* Waits until fewer than depth records are in flight; false after 30 s. */
static bool ms_wait(struct ms_stream *m, unsigned depth)
{
	struct timespec until;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&m->lock);
	while (ok && m->in_flight >= depth)
		ok = pthread_cond_timedwait(&m->cond, &m->lock, &until) == 0 ||
		     m->in_flight < depth;
	pthread_mutex_unlock(&m->lock);
	return ok;
}

static void *ms_thread(void *p)
{
	struct ms_stream *m = p;
	uint8_t *buf;
	size_t len = tag_record(7, 4096, &buf);

	uint64_t rnd = (uint64_t)(uintptr_t)m;

	for (unsigned i = 0; i < MS_RECORDS && !m->hung; i++) {
		/* appends at scattered moments, as guests' writes come */
		struct timespec pause = { 0, (long)(unit_rand(&rnd) % 50000) };

		nanosleep(&pause, NULL);
		if (!ms_wait(m, MS_DEPTH)) {
			m->hung = true;
			break;
		}
		pthread_mutex_lock(&m->lock);
		m->in_flight++;
		pthread_mutex_unlock(&m->lock);
		if (rl_log_append(m->s, buf, len, ms_cb, m) != 0) {
			pthread_mutex_lock(&m->lock);
			m->in_flight--;
			m->errors++;
			pthread_mutex_unlock(&m->lock);
		}
	}
	if (!m->hung && !ms_wait(m, 1))
		m->hung = true;
	free(buf);
	return NULL;
}

START_TEST(test_many_streams_at_once)
{
	static struct ms_stream ms[MS_STREAMS];
	pthread_t th[MS_STREAMS];
	char dir[PATH_MAX];
	struct rl_log *log;

	unit_tmpdir("many-streams", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 0);
	for (int i = 0; i < MS_STREAMS; i++) {
		struct rl_uuid u = unit_uuid((uint8_t)(0x40 + i));

		ms[i] = (struct ms_stream){ .s = get_stream(log, &u) };
		pthread_mutex_init(&ms[i].lock, NULL);
		pthread_cond_init(&ms[i].cond, NULL);
	}
	for (int i = 0; i < MS_STREAMS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, ms_thread,
						&ms[i]), 0);
	for (int i = 0; i < MS_STREAMS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < MS_STREAMS; i++) {
		ck_assert_msg(!ms[i].hung, "stream %d: %u appends never "
			      "completed (%u of %u did)", i, ms[i].in_flight,
			      ms[i].completed, MS_RECORDS);
		ck_assert_uint_eq(ms[i].errors, 0);
		ck_assert_uint_eq(ms[i].completed, MS_RECORDS);
		ck_assert_uint_eq(ms[i].out_of_order, 0);
		ck_assert_uint_eq(log_end(ms[i].s), MS_RECORDS);
	}
	rl_log_close(log);
	for (int i = 0; i < MS_STREAMS; i++) {
		pthread_mutex_destroy(&ms[i].lock);
		pthread_cond_destroy(&ms[i].cond);
	}
}
END_TEST

START_TEST(test_segment_rollover)
{
	char dir[PATH_MAX], sdir[PATH_MAX], path[PATH_MAX], segs[256][32];
	struct rl_log *log;
	struct rl_stream *s;
	const uint64_t n = 120;
	int nseg;

	unit_tmpdir("segments", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 4096);
	s = get_stream(log, &disk1);
	append_tags(s, 0, n, 0);
	stream_dir(dir, sdir, sizeof(sdir));
	nseg = list_segs(sdir, segs, 256);
	ck_assert_int_ge(nseg, 4);
	ck_assert_str_eq(segs[0], "00000000000000000000.seg");

	/* each segment is named by the position of its first record, and
	 * holds records up to the next one */
	{
		uint64_t pos = 0;

		for (int i = 0; i < nseg; i++) {
			uint8_t *buf;
			size_t len, off = 32;

			ck_assert_uint_eq(strtoull(segs[i], NULL, 10), pos);
			unit_path(path, sizeof(path), "%s/%s", sdir, segs[i]);
			len = unit_read_file(path, &buf);
			ck_assert_mem_eq(buf, "RDLSEG01", 8);
			while (off < len) {
				struct rl_decoder d;
				struct rl_record rec;
				ssize_t size;

				if (i == nseg - 1 && buf[off] == 0) {
					/* the current segment's preallocated
					 * tail: zeros to whole blocks */
					for (size_t z = off; z < len; z++)
						ck_assert_uint_eq(buf[z], 0);
					ck_assert_uint_eq(len % 4096, 0);
					break;
				}
				size = rl_record_size(buf + off, NULL);

				ck_assert_int_ge(size, RL_RECORD_HDR_SIZE);
				rl_decoder_init(&d);
				ck_assert_int_eq(rl_record_decode(&d, buf + off,
						 (size_t)size, &rec, NULL), 0);
				ck_assert_ptr_null(tag_check(&rec, pos));
				rl_decoder_free(&d);
				off += (size_t)size;
				pos++;
			}
			ck_assert_uint_eq(off, i == nseg - 1 && off < len &&
					  buf[off] == 0 ? off : len);
			/* rolled at the size, give or take the last record */
			if (i < nseg - 1)
				ck_assert_uint_lt(len, 4096 + RL_RECORD_HDR_SIZE + 200);
			free(buf);
		}
		ck_assert_uint_eq(pos, n);
	}

	/* readers cross segments from anywhere, including boundaries */
	for (uint64_t from = 0; from <= n; from++)
		read_tags(s, from, n);
	rl_log_close(log);

	/* after a reopen (recovery of the last segment) appends go on */
	log = open_log(dir, RL_LOG_WRITE, 4096);
	s = get_stream(log, &disk1);
	ck_assert_uint_eq(log_end(s), n);
	append_tags(s, n, 40, n);
	rl_log_close(log);
	log = open_log(dir, 0, 0);
	s = get_stream(log, &disk1);
	for (uint64_t from = 0; from <= n + 40; from += 7)
		read_tags(s, from, n + 40);
	rl_log_close(log);
	ck_assert_int_gt(list_segs(sdir, segs, 256), nseg);
}
END_TEST

/* ------------------------------------------------------------ recovery */

static void last_segment(const char *dir, char *out, size_t size)
{
	char sdir[PATH_MAX], segs[256][32];
	int n;

	stream_dir(dir, sdir, sizeof(sdir));
	n = list_segs(sdir, segs, 256);
	ck_assert_int_gt(n, 0);
	unit_path(out, size, "%s/%s", sdir, segs[n - 1]);
}

enum torn { TORN_GARBAGE, TORN_PARTIAL, TORN_HEADER_ONLY, TORN_BAD_SUM,
	    TORN_ZEROS, TORN_OTHER_DISK, TORN_MAX };

static void torn_case(enum torn how, bool loud)
{
	char dir[PATH_MAX], seg[PATH_MAX], errfile[PATH_MAX], *msg;
	const uint64_t n = 60;
	uint8_t junk[4096], *rec;
	uint64_t seed = 99 + how, size0;
	struct rl_log *log;
	struct rl_stream *s;
	size_t len, jlen = 0;

	unit_tmpdir("torn", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 4096);
	append_tags(get_stream(log, &disk1), 0, n, 0);
	rl_log_close(log);
	last_segment(dir, seg, sizeof(seg));
	size0 = unit_file_size(seg);

	len = tag_record(1000, 300, &rec);
	switch (how) {
	case TORN_GARBAGE:
		unit_fill_random(junk, jlen = 333, &seed);
		break;
	case TORN_PARTIAL:
		memcpy(junk, rec, jlen = len - 17);
		break;
	case TORN_HEADER_ONLY:
		memcpy(junk, rec, jlen = 50);
		break;
	case TORN_BAD_SUM:
		memcpy(junk, rec, jlen = len);
		junk[len - 1] ^= 1;
		break;
	case TORN_OTHER_DISK: {
		/* whole and valid, but of another disk: every reader would
		 * refuse it, so recovery must not keep it */
		uint8_t *other;
		struct rl_record r = { .type = RL_ZERO, .disk = unit_uuid(0x77),
				       .epoch = 1, .seq = 1000, .length = 512 };
		size_t olen = unit_encode(&r, 0, &other);

		memcpy(junk, other, jlen = olen);
		free(other);
		break;
	}
	default:
		memset(junk, 0, jlen = 4096 - 1);
		break;
	}
	free(rec);
	unit_append_file(seg, junk, jlen);
	ck_assert_uint_eq(unit_file_size(seg), size0 + jlen);

	/* readers never look past the durable end: they see n records */
	log = open_log(dir, 0, 0);
	s = get_stream(log, &disk1);
	ck_assert_uint_eq(log_end(s), n);
	read_tags(s, 0, n);
	rl_log_close(log);

	/* the writer cuts the torn part and goes on at position n */
	unit_path(errfile, sizeof(errfile), "%s/stderr", dir);
	if (loud) {
		struct rl_log_opts opts = { .segment_bytes = 4096 };
		struct rl_err err = { 0 };
		int saved = unit_stderr_begin(errfile), rc;

		ck_assert_int_eq(rl_log_open(dir, RL_LOG_WRITE, &opts, &log,
					     &err), 0);
		rc = rl_log_stream(log, &disk1, &s, &err);
		msg = unit_stderr_end(saved, errfile);
		ck_assert_msg(rc == 0, "stream: %s", err.msg);
		ck_assert_msg(strstr(msg, "cut torn tail") && strstr(msg, seg),
			      "recovery note: \"%s\"", msg);
		free(msg);
	} else {
		log = open_log(dir, RL_LOG_WRITE, 4096);
		s = get_stream(log, &disk1);
	}
	ck_assert_uint_eq(log_end(s), n);
	ck_assert_uint_eq(unit_file_size(seg), size0);
	append_tags(s, n, 3, n);
	read_tags(s, 0, n + 3);
	rl_log_close(log);

	log = open_log(dir, 0, 0);
	read_tags(get_stream(log, &disk1), 0, n + 3);
	rl_log_close(log);
}

START_TEST(test_torn_tail)
{
	torn_case((enum torn)_i, _i == TORN_GARBAGE);
}
END_TEST

/* The bytes of the records of segment file buf[0, len): where the first
 * byte that is not a record's is. */
static size_t records_end(const uint8_t *buf, size_t len)
{
	size_t off = 32;

	while (off + RL_RECORD_HDR_MIN <= len && buf[off]) {
		ssize_t size = rl_record_size(buf + off, NULL);

		ck_assert_int_ge(size, RL_RECORD_HDR_SIZE);
		off += (size_t)size;
	}
	return off;
}

/* A disk stream keeps zeros written past its last record while it is
 * written (log_file.c, "Preallocated tail"), so that small sync writes
 * land on written blocks.  What a crash leaves of them is cut without a
 * word, a clean close leaves none, and a large record (written direct)
 * adds none but the rest of its last block. */
START_TEST(test_preallocated_tail)
{
	char dir[PATH_MAX], crash[PATH_MAX], seg[PATH_MAX], cseg[PATH_MAX];
	char errfile[PATH_MAX], cmd[3 * PATH_MAX], *msg;
	struct rl_log_opts loud = { 0 };
	struct rl_err err = { 0 };
	struct rl_log *log;
	struct rl_stream *s;
	uint8_t *buf;
	size_t len, end;
	int saved, rc;

	unit_tmpdir("prealloc", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 0);
	s = get_stream(log, &disk1);
	append_tags(s, 0, 20, 0);
	last_segment(dir, seg, sizeof(seg));
	len = unit_read_file(seg, &buf);
	end = records_end(buf, len);
	ck_assert_uint_gt(len, end);
	ck_assert_uint_eq(len % 4096, 0);
	for (size_t i = end; i < len; i++)
		ck_assert_uint_eq(buf[i], 0);
	free(buf);
	read_tags(s, 0, 20);

	/* what a crash would leave: the files as they are while written */
	unit_tmpdir("prealloc-crash", crash, sizeof(crash));
	snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s/'", dir, crash);
	ck_assert_int_eq(system(cmd), 0);
	rl_log_close(log);
	ck_assert_uint_eq(unit_file_size(seg), end);

	last_segment(crash, cseg, sizeof(cseg));
	ck_assert_uint_eq(unit_file_size(cseg), len);
	unit_path(errfile, sizeof(errfile), "%s/stderr", dir);
	saved = unit_stderr_begin(errfile);
	rc = rl_log_open(crash, RL_LOG_WRITE, &loud, &log, &err);
	if (rc == 0)
		rc = rl_log_stream(log, &disk1, &s, &err);
	msg = unit_stderr_end(saved, errfile);
	ck_assert_msg(rc == 0, "open: %s", err.msg);
	ck_assert_msg(!strstr(msg, "cut torn tail"), "recovery said \"%s\"",
		      msg);
	free(msg);
	ck_assert_uint_eq(log_end(s), 20);
	ck_assert_uint_eq(unit_file_size(cseg), end);
	append_tags(s, 20, 3, 20);
	read_tags(s, 0, 23);
	rl_log_close(log);
	log = open_log(crash, 0, 0);
	read_tags(get_stream(log, &disk1), 0, 23);
	rl_log_close(log);

	/* a large record: no zeros */
	{
		static uint8_t data[256 << 10];
		struct rl_record r = { .type = RL_WRITE, .disk = disk1,
				       .epoch = 1, .seq = 1, .length = sizeof(data),
				       .data = data, .data_len = sizeof(data) };
		uint8_t *rec;
		size_t rlen = unit_encode(&r, 0, &rec);

		unit_tmpdir("prealloc-large", dir, sizeof(dir));
		log = open_log(dir, RL_LOG_WRITE, 0);
		s = get_stream(log, &disk1);
		ck_assert_int_eq(rl_log_append_sync(s, rec, rlen, NULL), 0);
		last_segment(dir, seg, sizeof(seg));
		/* written direct: zeros only to the end of its last block */
		ck_assert_uint_eq(unit_file_size(seg),
				  (32 + rlen + 4095) / 4096 * 4096);
		rl_log_close(log);
		ck_assert_uint_eq(unit_file_size(seg), 32 + rlen);
		free(rec);
	}
}
END_TEST

/* ------------------------------------------------------------ direct */

/* A record of seq `tag` and dlen bytes of data derived from the tag. */
static size_t big_record(uint64_t tag, size_t dlen, uint8_t **out)
{
	uint8_t *data = malloc(dlen);
	uint64_t seed = tag * 7919 + 1;
	struct rl_record r = { .type = RL_WRITE, .disk = disk1, .epoch = 1,
			       .seq = tag, .offset = tag << 20, .length = dlen,
			       .data = data, .data_len = dlen };
	size_t len;

	ck_assert_ptr_nonnull(data);
	unit_fill_random(data, dlen, &seed);
	len = unit_encode(&r, 0, out);
	free(data);
	return len;
}

/* Sizes that cross blocks every way: small ones (buffered) between large
 * ones (direct), a large one after a large one, one of a block's size,
 * one larger than a direct piece. */
static size_t direct_len(uint64_t tag)
{
	static const size_t sizes[] = { 100, 300 << 10, 1 << 20, 4000,
					(1 << 20) + 12345, 128 << 10, 7,
					(3 << 20) + 1, 4096, 200 << 10 };

	return sizes[tag % (sizeof(sizes) / sizeof(sizes[0]))];
}

static void direct_read(struct rl_stream *s, uint64_t n)
{
	struct rl_err err = { 0 };
	struct rl_reader *r = NULL;
	struct rl_record rec;
	uint64_t pos;

	ck_assert_int_eq(rl_reader_open(s, 0, &r, &err), 0);
	for (uint64_t t = 0; t < n; t++) {
		size_t dlen = direct_len(t);
		uint8_t *want = malloc(dlen);
		uint64_t seed = t * 7919 + 1;
		int rc = rl_reader_next(r, &rec, &pos, 0, &err);

		ck_assert_msg(rc == 1, "read %llu: %d: %s",
			      (unsigned long long)t, rc, err.msg);
		ck_assert_uint_eq(pos, t);
		ck_assert_uint_eq(rec.seq, t);
		ck_assert_uint_eq(rec.data_len, dlen);
		unit_fill_random(want, dlen, &seed);
		ck_assert_msg(memcmp(rec.data, want, dlen) == 0,
			      "position %llu: wrong data", (unsigned long long)t);
		free(want);
	}
	ck_assert_int_eq(rl_reader_next(r, &rec, &pos, 0, &err), 0);
	rl_reader_close(r);
}

/* Drops the page cache of disk1's segments in logdir (written back
 * first), as a reboot would: a reader then finds them cold. */
static void drop_cache(const char *logdir)
{
	char sdir[PATH_MAX], path[PATH_MAX], names[64][32];
	int n;

	stream_dir(logdir, sdir, sizeof(sdir));
	n = list_segs(sdir, names, 64);
	for (int i = 0; i < n; i++) {
		int fd;

		unit_path(path, sizeof(path), "%s/%s", sdir, names[i]);
		fd = open(path, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(fdatasync(fd), 0);
		ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED),
				 0);
		close(fd);
	}
}

/* Whether files in dir can be opened with O_DIRECT at all. */
static bool direct_supported(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	unit_path(path, sizeof(path), "%s/direct-probe", dir);
	fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600);
	if (fd < 0)
		return false;
	close(fd);
	unlink(path);
	return true;
}

/* Large records are appended with O_DIRECT, small ones through the page
 * cache (log_file.c, "Direct appends"), in any order, over roll-overs:
 * every byte reads back, in this process, after a reopen, cold (read
 * direct: "Readers"), and cold where direct reads are refused (read through
 * the page cache); what a crash leaves recovers silently to the same
 * records and takes appends; a clean close leaves no zeros. */
START_TEST(test_direct_appends)
{
	char dir[PATH_MAX], crash[PATH_MAX], seg[PATH_MAX], errfile[PATH_MAX];
	char cmd[3 * PATH_MAX], *msg;
	struct rl_log_opts loud = { 0 };
	struct rl_err err = { 0 };
	const uint64_t n = 40;
	struct rl_log *log;
	struct rl_stream *s;
	int saved, rc;

	unit_tmpdir("direct", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 8u << 20);
	s = get_stream(log, &disk1);
	for (uint64_t t = 0; t < n; t++) {
		uint8_t *rec;
		size_t len = big_record(t, direct_len(t), &rec);

		ck_assert_int_eq(rl_log_append_sync(s, rec, len, NULL),
				 (int64_t)t);
		free(rec);
		if (t == n / 2) {
			/* what a crash would leave, mid-write */
			unit_tmpdir("direct-crash", crash, sizeof(crash));
			snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s/'", dir,
				 crash);
			ck_assert_int_eq(system(cmd), 0);
		}
	}
	direct_read(s, n);
	rl_log_close(log);
	last_segment(dir, seg, sizeof(seg));
	{
		uint8_t *buf;
		size_t len = unit_read_file(seg, &buf);

		ck_assert_uint_eq(records_end(buf, len), len);
		free(buf);
	}
	log = open_log(dir, 0, 0);
	direct_read(get_stream(log, &disk1), n);
	rl_log_close(log);
	drop_cache(dir);
	log = open_log(dir, 0, 0);
	direct_read(get_stream(log, &disk1), n);
	rl_log_close(log);
	/* cold again, where a direct read is refused: the reader reads
	 * through the page cache instead, every byte the same */
	drop_cache(dir);
	atomic_store(&refuse_direct, true);
	log = open_log(dir, 0, 0);
	direct_read(get_stream(log, &disk1), n);
	rl_log_close(log);
	atomic_store(&refuse_direct, false);
	if (direct_supported(dir))
		ck_assert_uint_gt(atomic_load(&refused_reads), 0);

	unit_path(errfile, sizeof(errfile), "%s/stderr", dir);
	saved = unit_stderr_begin(errfile);
	rc = rl_log_open(crash, RL_LOG_WRITE, &loud, &log, &err);
	if (rc == 0)
		rc = rl_log_stream(log, &disk1, &s, &err);
	msg = unit_stderr_end(saved, errfile);
	ck_assert_msg(rc == 0, "open: %s", err.msg);
	ck_assert_msg(!strstr(msg, "cut torn tail"), "recovery said \"%s\"",
		      msg);
	free(msg);
	ck_assert_uint_eq(log_end(s), n / 2 + 1);
	direct_read(s, n / 2 + 1);
	for (uint64_t t = n / 2 + 1; t < n; t++) {
		uint8_t *rec;
		size_t len = big_record(t, direct_len(t), &rec);

		ck_assert_int_eq(rl_log_append_sync(s, rec, len, NULL),
				 (int64_t)t);
		free(rec);
	}
	direct_read(s, n);
	rl_log_close(log);
}
END_TEST

/* ------------------------------------------------------------ reuse */

static int count_spares(const char *sdir)
{
	DIR *d = opendir(sdir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n += strncmp(e->d_name, "spare.", 6) == 0;
	closedir(d);
	return n;
}

static bool seg_is_reused(const char *sdir, const char *name)
{
	char path[PATH_MAX];
	uint8_t h[8];
	int fd;

	unit_path(path, sizeof(path), "%s/%s", sdir, name);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, h, 8, 0), 8);
	close(fd);
	return memcmp(h, "RDLSEG02", 8) == 0;
}

/* Where the records [base, end) of segment file buf end, walking headers. */
static size_t records_span(const uint8_t *buf, size_t len, uint64_t base,
			   uint64_t end)
{
	size_t off = 32;

	for (uint64_t p = base; p < end; p++) {
		ssize_t size;

		ck_assert_uint_le(off + RL_RECORD_HDR_MIN, len);
		size = rl_record_size(buf + off, NULL);
		ck_assert_int_ge(size, RL_RECORD_HDR_SIZE);
		off += (size_t)size;
	}
	return off;
}

static void set_head(const char *sdir, uint64_t end)
{
	char head[PATH_MAX];
	uint8_t h[16];

	memcpy(h, "RDLHEAD1", 8);
	for (int i = 0; i < 8; i++)
		h[8 + i] = (uint8_t)(end >> (8 * i));
	unit_path(head, sizeof(head), "%s/head", sdir);
	unit_write_file(head, h, sizeof(h));
}

/* Opens crash as the writer, loudly; returns the stream and what
 * recovery said (free it). */
static struct rl_stream *recover_loud(const char *crash, struct rl_log **log,
				      char **msg)
{
	struct rl_log_opts opts = { .segment_bytes = 16384 };
	struct rl_err err = { 0 };
	struct rl_stream *s = NULL;
	char errfile[PATH_MAX];
	int saved, rc;

	unit_path(errfile, sizeof(errfile), "%s.stderr", crash);
	saved = unit_stderr_begin(errfile);
	rc = rl_log_open(crash, RL_LOG_WRITE, &opts, log, &err);
	if (rc == 0)
		rc = rl_log_stream(*log, &disk1, &s, &err);
	*msg = unit_stderr_end(saved, errfile);
	ck_assert_msg(rc == 0, "recovery: %s", err.msg);
	return s;
}

/* Trimmed segments become spares that roll-overs reuse (log_file.c,
 * "Reused segments").  A reused segment holds its earlier use's records
 * past its new ones: after a crash, recovery cuts them, whether they are
 * bytes in the middle of an old record, a whole old record where the next
 * new one would begin (it is older than the record before it), or old
 * records behind the zeroed first block of a segment reused just before
 * the crash.  A reader that held a reused segment open stops with ERANGE
 * instead of reading the new records as old positions.  Spares go when a
 * stream idles, at a clean close and at a writer's open. */
START_TEST(test_reused_segments)
{
	char dir[PATH_MAX], sdir[PATH_MAX], crash[PATH_MAX], csdir[PATH_MAX];
	char seg[PATH_MAX], cseg[PATH_MAX], cmd[4 * PATH_MAX], segs[256][32];
	char *msg;
	struct rl_log *log, *clog;
	struct rl_stream *s, *cs;
	struct rl_reader *r, *r2;
	struct rl_record rec;
	struct rl_err err = { 0 };
	uint64_t base = 0, end = 0, bytes, pos;
	uint8_t *buf, *old;
	size_t len, rend, olen, at;
	int nseg, gone, reused = 0;

	unit_tmpdir("reuse", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 16384);
	s = get_stream(log, &disk1);
	stream_dir(dir, sdir, sizeof(sdir));
	append_tags(s, 0, 600, 0);
	ck_assert_int_ge(list_segs(sdir, segs, 256), 8);

	/* a reader holding segment 0 open, not yet having read from it;
	 * and one that read it to its end, where a caught-up follower
	 * waits for the next segment */
	ck_assert_int_eq(rl_reader_open(s, 0, &r, &err), 0);
	nseg = list_segs(sdir, segs, 256);
	for (int i = 1; i < nseg; i++) {
		if (strtoull(segs[i], NULL, 10) > 300)
			break;
		base = strtoull(segs[i - 1], NULL, 10);
		end = strtoull(segs[i], NULL, 10);	/* kept by trim(300) */
	}
	ck_assert_int_eq(rl_reader_open(s, base, &r2, &err), 0);
	for (uint64_t p = base; p < end; p++) {
		ck_assert_int_eq(rl_reader_next(r2, &rec, &pos, 0, &err), 1);
		ck_assert_uint_eq(pos, p);
	}

	/* a trim keeps what it takes out as spares (there were more
	 * roll-overs than that); the next roll-overs reuse all of them */
	gone = rl_log_trim(s, 300, &err);
	ck_assert_int_ge(gone, 3);
	ck_assert_int_eq(count_spares(sdir), gone);
	append_tags(s, 600, 400, 600);
	ck_assert_int_eq(count_spares(sdir), 0);
	nseg = list_segs(sdir, segs, 256);
	for (int i = 0; i < nseg; i++)
		reused += seg_is_reused(sdir, segs[i]);
	ck_assert_int_eq(reused, gone);
	base = strtoull(segs[0], NULL, 10);
	ck_assert_uint_le(base, 300);
	for (uint64_t from = base; from <= 1000; from += 11)
		read_tags(s, from, 1000);

	/* segment 0's file is one of the new segments now */
	ck_assert_int_lt(rl_reader_next(r, &rec, &pos, 0, &err), 0);
	ck_assert_int_eq(err.code, ERANGE);
	ck_assert_msg(strstr(err.msg, "deleted while this reader read it"),
		      "reader: %s", err.msg);
	rl_reader_close(r);
	for (uint64_t p = end; p < 1000; p++) {
		const char *bad;

		ck_assert_msg(rl_reader_next(r2, &rec, &pos, 0, &err) == 1,
			      "position %llu: %s", (unsigned long long)p,
			      err.msg);
		ck_assert_uint_eq(pos, p);
		bad = tag_check(&rec, p);
		ck_assert_msg(!bad, "position %llu: wrong %s",
			      (unsigned long long)p, bad);
	}
	rl_reader_close(r2);

	/* the current segment reused, with old bytes past its records */
	ck_assert_int_gt(rl_log_trim(s, 950, &err), 0);
	ck_assert_int_gt(count_spares(sdir), 0);
	append_tags(s, 1000, 60, 1000);
	nseg = list_segs(sdir, segs, 256);
	ck_assert(seg_is_reused(sdir, segs[nseg - 1]));
	base = strtoull(segs[nseg - 1], NULL, 10);
	ck_assert_uint_lt(base, 1060);
	unit_path(seg, sizeof(seg), "%s/%s", sdir, segs[nseg - 1]);
	len = unit_read_file(seg, &buf);
	rend = records_span(buf, len, base, 1060);
	ck_assert_uint_gt(len, rend);
	/* no zeros written ahead there ("Preallocated tail": they would
	 * reach the segment size, 16384), only to the end of the last
	 * record's block */
	for (at = rend; at % 4096; at++)
		ck_assert_uint_eq(buf[at], 0);
	while (at < len && !buf[at])
		at++;
	ck_assert_msg(at < 16384, "zeros from byte %zu to %zu", rend, at);
	free(buf);
	ck_assert_int_eq(rl_log_bytes_from(s, base, &bytes, &err), 0);
	ck_assert_uint_eq(bytes, rend - 32);

	/* what a crash leaves, four ways */
	for (int how = 0; how < 4; how++) {
		unit_path(crash, sizeof(crash), "%s/../reuse-crash-%d", dir, how);
		unit_rm_rf(crash);
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -a '%s/.' '%s/'",
			 crash, dir, crash);
		ck_assert_int_eq(system(cmd), 0);
		stream_dir(crash, csdir, sizeof(csdir));
		unit_path(cseg, sizeof(cseg), "%s/%s", csdir, segs[nseg - 1]);
		end = 1060;
		if (how == 1) {
			/* a whole, valid record of the stream where the next
			 * one would begin, as an earlier use leaves one when
			 * the records line up */
			int fd = open(cseg, O_WRONLY);

			olen = tag_record(5, tag_len(5), &old);
			ck_assert_int_eq(pwrite(fd, old, olen, (off_t)rend),
					 (ssize_t)olen);
			close(fd);
			free(old);
		} else if (how == 2) {
			/* reused just before the crash: the zeroed first
			 * block, and records behind it */
			static const uint8_t zeros[4096 - 32];
			int fd = open(cseg, O_WRONLY);

			ck_assert_int_eq(pwrite(fd, zeros, sizeof(zeros), 32),
					 (ssize_t)sizeof(zeros));
			close(fd);
			set_head(csdir, end = base);
		} else if (how == 3) {
			/* the head behind what was synced (a power loss):
			 * every new record past it is kept */
			set_head(csdir, base);
		}
		cs = recover_loud(crash, &clog, &msg);
		ck_assert_msg(strstr(msg, "cut torn tail") &&
			      strstr(msg, "a reused segment"),
			      "case %d: recovery said \"%s\"", how, msg);
		if (how == 1) {
			char want[128];

			snprintf(want, sizeof(want), "a record of epoch 1 seq 5 "
				 "not after the segment's first, epoch 1 seq "
				 "%llu", (unsigned long long)base);
			ck_assert_msg(strstr(msg, want), "recovery said \"%s\"",
				      msg);
		}
		free(msg);
		ck_assert_uint_eq(log_end(cs), end);
		ck_assert_uint_eq(unit_file_size(cseg), how == 2 ? 32 : rend);
		append_tags(cs, end, 30, end);
		read_tags(cs, base, end + 30);
		rl_log_close(clog);
		clog = open_log(crash, 0, 0);
		read_tags(get_stream(clog, &disk1), base, end + 30);
		rl_log_close(clog);
		unit_rm_rf(crash);
	}

	/* spares go: after ten trims in a row with no roll-over (ten
	 * seconds idle, in the mount), at a clean close, at a writer's
	 * open */
	append_tags(s, 1060, 200, 1060);
	ck_assert_int_gt(rl_log_trim(s, 1200, &err), 0);
	ck_assert_int_gt(count_spares(sdir), 0);
	for (int i = 1; i < 10; i++) {
		ck_assert_int_eq(rl_log_trim(s, 1200, &err), 0);
		ck_assert_int_gt(count_spares(sdir), 0);
	}
	ck_assert_int_eq(rl_log_trim(s, 1200, &err), 0);
	ck_assert_int_eq(count_spares(sdir), 0);
	append_tags(s, 1260, 200, 1260);
	ck_assert_int_gt(rl_log_trim(s, 1400, &err), 0);
	ck_assert_int_gt(count_spares(sdir), 1);

	/* a reuse zeroes its first block past the header: after the first
	 * record, zeros */
	nseg = list_segs(sdir, segs, 256);
	for (end = 1460; list_segs(sdir, segs, 256) == nseg; end++)
		append_tags(s, end, 1, end);
	nseg = list_segs(sdir, segs, 256);
	ck_assert(seg_is_reused(sdir, segs[nseg - 1]));
	ck_assert_uint_eq(strtoull(segs[nseg - 1], NULL, 10), end - 1);
	unit_path(seg, sizeof(seg), "%s/%s", sdir, segs[nseg - 1]);
	len = unit_read_file(seg, &buf);
	rend = records_span(buf, len, end - 1, end);
	ck_assert_uint_gt(len, 4096);
	for (size_t i = rend; i < 4096; i++)
		ck_assert_uint_eq(buf[i], 0);
	free(buf);
	ck_assert_int_gt(count_spares(sdir), 0);
	rl_log_close(log);
	ck_assert_int_eq(count_spares(sdir), 0);

	unit_path(seg, sizeof(seg), "%s/spare.00000000000000000007", sdir);
	unit_write_file(seg, "x", 1);
	log = open_log(dir, RL_LOG_WRITE, 16384);
	s = get_stream(log, &disk1);
	ck_assert_int_eq(count_spares(sdir), 0);
	ck_assert_uint_eq(log_end(s), end);
	nseg = list_segs(sdir, segs, 256);
	read_tags(s, strtoull(segs[0], NULL, 10), end);
	rl_log_close(log);
}
END_TEST

/* A power loss can leave the head behind the records that were synced:
 * complete, valid records past it are kept, not cut. */
START_TEST(test_head_behind)
{
	char dir[PATH_MAX], sdir[PATH_MAX], head[PATH_MAX];
	uint8_t h[16];
	struct rl_log *log;
	struct rl_stream *s;
	int fd;

	unit_tmpdir("head", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 0);
	append_tags(get_stream(log, &disk1), 0, 30, 0);
	rl_log_close(log);
	stream_dir(dir, sdir, sizeof(sdir));
	unit_path(head, sizeof(head), "%s/head", sdir);
	fd = open(head, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, h, 16, 0), 16);
	ck_assert_mem_eq(h, "RDLHEAD1", 8);
	ck_assert_uint_eq(h[8], 30);
	h[8] = 25;
	ck_assert_int_eq(pwrite(fd, h, 16, 0), 16);
	close(fd);

	log = open_log(dir, 0, 0);
	s = get_stream(log, &disk1);
	ck_assert_uint_eq(log_end(s), 25);
	read_tags(s, 0, 25);
	rl_log_close(log);

	log = open_log(dir, RL_LOG_WRITE, 0);
	s = get_stream(log, &disk1);
	ck_assert_uint_eq(log_end(s), 30);
	append_tags(s, 30, 1, 30);
	read_tags(s, 0, 31);
	rl_log_close(log);
}
END_TEST

/* Damage below the durable end is not a torn tail.  In a header (framing
 * or header check) the writer refuses the stream and cuts nothing.  In a
 * payload, the writer's open does not read it (it checks the headers of
 * durable records only, so that opening costs no segment's worth of
 * reads) and cuts nothing; a reader stops at the bad record. */
START_TEST(test_damage_below_durable_end)
{
	char dir[PATH_MAX], seg[PATH_MAX];
	struct rl_log *log;
	struct rl_stream *s;
	struct rl_err err = { 0 };
	struct rl_reader *r;
	struct rl_record rec;
	uint8_t *before, *after;
	uint64_t pos, off = 32;
	size_t len, len2;
	int rc;

	unit_tmpdir("damage", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 0);
	append_tags(get_stream(log, &disk1), 0, 12, 0);
	rl_log_close(log);
	last_segment(dir, seg, sizeof(seg));
	for (uint64_t t = 0; t < 3; t++)
		off += RL_RECORD_HDR_SIZE + tag_len(t);
	len = unit_read_file(seg, &before);
	before[off + RL_RECORD_HDR_SIZE + 2] ^= 0x10;	/* record 3's data */
	unit_write_file(seg, before, len);

	log = NULL;
	{
		struct rl_log_opts opts = { .quiet = true };

		ck_assert_int_eq(rl_log_open(dir, RL_LOG_WRITE, &opts, &log,
					     &err), 0);
	}
	rc = rl_log_stream(log, &disk1, &s, &err);
	ck_assert_msg(rc == 0, "%s", err.msg);
	ck_assert_uint_eq(log_end(s), 12);
	/* the catalog and other disks open */
	ck_assert_ptr_nonnull(get_stream(log, NULL));
	rl_log_close(log);
	len2 = unit_read_file(seg, &after);
	ck_assert_uint_eq(len2, len);
	ck_assert_mem_eq(after, before, len);
	free(after);

	/* a reader gets records 0..2, then an error naming the record */
	log = open_log(dir, 0, 0);
	s = get_stream(log, &disk1);
	ck_assert_uint_eq(log_end(s), 12);
	ck_assert_int_eq(rl_reader_open(s, 0, &r, &err), 0);
	for (uint64_t t = 0; t < 3; t++) {
		ck_assert_int_eq(rl_reader_next(r, &rec, &pos, 0, &err), 1);
		ck_assert_uint_eq(pos, t);
	}
	for (int again = 0; again < 2; again++) {
		memset(&err, 0, sizeof(err));
		ck_assert_int_eq(rl_reader_next(r, &rec, &pos, 0, &err),
				 -EBADMSG);
		ck_assert_msg(strstr(err.msg, "position 3") &&
			      strstr(err.msg, "00000000000000000000.seg") &&
			      strstr(err.msg, "bad payload check"),
			      "message: %s", err.msg);
	}
	rl_reader_close(r);
	rl_log_close(log);

	/* a record whose header claims more bytes than the file has */
	before[off + RL_RECORD_HDR_SIZE + 2] ^= 0x10;
	before[off + 56 + 2] = 0x01;	/* payload length + 64 KiB */
	unit_write_file(seg, before, len);
	{
		struct rl_log_opts opts = { .quiet = true };

		ck_assert_int_eq(rl_log_open(dir, RL_LOG_WRITE, &opts, &log,
					     &err), 0);
	}
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(rl_log_stream(log, &disk1, &s, &err), -EIO);
	ck_assert_msg(strstr(err.msg, "position 3") &&
		      strstr(err.msg, "bad header check") &&
		      strstr(err.msg, "refusing to cut acknowledged records"),
		      "message: %s", err.msg);
	rl_log_close(log);
	ck_assert_uint_eq(unit_file_size(seg), len);
	/* restored, the segment opens again, nothing cut */
	before[off + 56 + 2] = 0x00;
	unit_write_file(seg, before, len);
	ck_assert_int_eq(rl_log_open(dir, RL_LOG_WRITE, &(struct rl_log_opts){
		.quiet = true }, &log, &err), 0);
	ck_assert_int_eq(rl_log_stream(log, &disk1, &s, &err), 0);
	rl_log_close(log);
	free(before);
}
END_TEST

/* ------------------------------------------------------------ processes */

/* Runs fn in a child process; returns its exit status and what it wrote
 * to its stdout pipe (into msg). */
static int in_child(int (*fn)(const char *dir, int out), const char *dir,
		    char *msg, size_t size)
{
	int p[2], status = -1;
	pid_t pid;
	ssize_t n, got = 0;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		_exit(fn(dir, p[1]));
	}
	close(p[1]);
	while (got < (ssize_t)size - 1 &&
	       (n = read(p[0], msg + got, size - 1 - (size_t)got)) > 0)
		got += n;
	msg[got] = '\0';
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child died: status 0x%x", status);
	return WEXITSTATUS(status);
}

static int child_open_writer(const char *dir, int out)
{
	struct rl_err err = { 0 };
	struct rl_log *log = NULL;
	int rc = rl_log_open(dir, RL_LOG_WRITE, NULL, &log, &err);

	dprintf(out, "%d %s", rc, err.msg);
	if (rc == 0)
		rl_log_close(log);
	return rc == 0 ? 0 : 1;
}

static int child_open_reader(const char *dir, int out)
{
	struct rl_err err = { 0 };
	struct rl_log *log = NULL;
	struct rl_stream *s;
	uint64_t end = 0;
	int rc = rl_log_open(dir, 0, NULL, &log, &err);

	if (rc == 0)
		rc = rl_log_stream(log, &disk1, &s, &err);
	if (rc == 0)
		rc = rl_log_end(s, &end, NULL);
	dprintf(out, "%d %llu %s", rc, (unsigned long long)end, err.msg);
	rl_log_close(log);
	return rc == 0 ? 0 : 1;
}

START_TEST(test_second_writer_refused)
{
	char dir[PATH_MAX], msg[1024], want[64];
	struct rl_log *log, *again = NULL;
	struct rl_err err = { 0 };
	int rc;

	unit_tmpdir("busy", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 0);
	append_tags(get_stream(log, &disk1), 0, 3, 0);

	/* another process */
	rc = in_child(child_open_writer, dir, msg, sizeof(msg));
	ck_assert_int_eq(rc, 1);
	snprintf(want, sizeof(want), "%d ", -EBUSY);
	ck_assert_msg(strncmp(msg, want, strlen(want)) == 0, "child: %s", msg);
	ck_assert_msg(strstr(msg, "already open for writing"), "child: %s", msg);
	snprintf(want, sizeof(want), "(pid %ld)", (long)getpid());
	ck_assert_msg(strstr(msg, want), "child: %s (wanted %s)", msg, want);

	/* another open file description in this process */
	rc = rl_log_open(dir, RL_LOG_WRITE, NULL, &again, &err);
	ck_assert_int_eq(rc, -EBUSY);
	ck_assert_ptr_null(again);
	ck_assert_ptr_nonnull(strstr(err.msg, "already open for writing"));

	/* readers are welcome meanwhile */
	rc = in_child(child_open_reader, dir, msg, sizeof(msg));
	ck_assert_msg(rc == 0 && strncmp(msg, "0 3 ", 4) == 0, "reader: %s",
		      msg);

	rl_log_close(log);
	/* once the writer is gone, the next one gets in */
	rc = in_child(child_open_writer, dir, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "child: %s", msg);
}
END_TEST

#define TAIL_N 300

static int child_tail(const char *dir, int out)
{
	struct rl_err err = { 0 };
	struct rl_log *log = NULL;
	struct rl_stream *s;
	struct rl_reader *r;
	struct rl_record rec;
	uint64_t pos;
	int rc;

	rc = rl_log_open(dir, 0, NULL, &log, &err);
	if (rc == 0)
		rc = rl_log_stream(log, &disk1, &s, &err);
	if (rc == 0)
		rc = rl_reader_open(s, 0, &r, &err);
	if (rc < 0) {
		dprintf(out, "open: %d %s\n", rc, err.msg);
		return 2;
	}
	/* nothing yet: an empty read returns 0 at once */
	rc = rl_reader_next(r, &rec, &pos, 0, &err);
	if (rc != 0) {
		dprintf(out, "empty read: %d %s\n", rc, err.msg);
		return 3;
	}
	dprintf(out, "ready\n");
	for (uint64_t want = 0; want < TAIL_N; want++) {
		const char *bad;

		rc = rl_reader_next(r, &rec, &pos, 10000, &err);
		if (rc != 1) {
			dprintf(out, "read %llu: %d %s\n",
				(unsigned long long)want, rc, err.msg);
			return 4;
		}
		uint64_t ub = atomic_load(&watch->durable_ub);

		if (pos >= ub) {
			dprintf(out, "read position %llu before it was "
				"durable (durable below %llu)\n",
				(unsigned long long)pos,
				(unsigned long long)ub);
			return 5;
		}
		bad = tag_check(&rec, want);
		if (pos != want || bad) {
			dprintf(out, "position %llu: wrong %s\n",
				(unsigned long long)pos, bad ? bad : "pos");
			return 6;
		}
	}
	rc = rl_reader_next(r, &rec, &pos, 20, &err);
	if (rc != 0) {
		dprintf(out, "read past the end: %d\n", rc);
		return 7;
	}
	rl_reader_close(r);
	rl_log_close(log);
	dprintf(out, "done\n");
	return 0;
}

/* A reader in another process tails a live writer: it gets every record
 * as it becomes durable, in order, and never one that is not durable yet
 * (each fdatasync is slowed down to widen any window). */
START_TEST(test_reader_tails_live_writer)
{
	char dir[PATH_MAX], line[1024];
	struct rl_log *log;
	struct rl_stream *s;
	int p[2], status;
	pid_t pid;
	ssize_t n, got = 0;
	FILE *in;

	watch = mmap(NULL, sizeof(*watch), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(watch, MAP_FAILED);
	memset(watch, 0, sizeof(*watch));
	unit_tmpdir("tail", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 8192);
	s = get_stream(log, &disk1);
	rl_log_close(log);	/* no threads at fork() */

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		_exit(child_tail(dir, p[1]));
	}
	close(p[1]);
	in = fdopen(p[0], "r");
	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), in));
	if (strcmp(line, "ready\n") != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ck_abort_msg("child: %s", line);
	}

	log = open_log(dir, RL_LOG_WRITE, 8192);
	s = get_stream(log, &disk1);
	atomic_store(&watch->delay_us, 1000);
	{
		struct durable_ctx c = { .lock = PTHREAD_MUTEX_INITIALIZER,
					 .cond = PTHREAD_COND_INITIALIZER,
					 .s = s };
		struct timespec nap = { 0, 300000 };

		for (uint64_t t = 0; t < TAIL_N; t++) {
			uint8_t *buf;
			size_t len = tag_record(t, tag_len(t), &buf);

			atomic_fetch_add(&watch->started, 1);
			ck_assert_int_eq(rl_log_append(s, buf, len, durable_cb,
						       &c), 0);
			free(buf);
			if (t % 10 == 9)	/* bursts of ten */
				nanosleep(&nap, NULL);
		}
		pthread_mutex_lock(&c.lock);
		while (c.done < TAIL_N)
			pthread_cond_wait(&c.cond, &c.lock);
		pthread_mutex_unlock(&c.lock);
		ck_assert_int_eq(c.err, 0);
	}
	n = 0;
	line[0] = '\0';
	while (fgets(line + got, (int)(sizeof(line) - (size_t)got), in))
		got = (ssize_t)strlen(line);
	fclose(in);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	rl_log_close(log);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "reader process: status 0x%x: %s", status, line);
	ck_assert_str_eq(line, "done\n");
	ck_assert_uint_gt(atomic_load(&watch->syncs), 0);
	(void)n;
	munmap(watch, sizeof(*watch));
	watch = NULL;
}
END_TEST

START_TEST(test_missing_and_bad_uris)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct rl_log *log = NULL, *w;
	struct rl_stream *s = NULL;
	struct rl_err err = { 0 };
	struct rl_uuid other = unit_uuid(0x77), nil = { { 0 } };

	unit_tmpdir("missing", dir, sizeof(dir));

	/* no log there */
	unit_path(path, sizeof(path), "%s/nolog", dir);
	ck_assert_int_eq(rl_log_open(path, 0, NULL, &log, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "no such log"));
	ck_assert_ptr_null(log);
	unit_path(path, sizeof(path), "file:%s/nolog", dir);
	ck_assert_int_eq(rl_log_open(path, 0, NULL, &log, &err), -ENOENT);

	/* a file, not a log */
	unit_path(path, sizeof(path), "%s/plain", dir);
	unit_write_file(path, "x", 1);
	ck_assert_int_eq(rl_log_open(path, 0, NULL, &log, &err), -ENOTDIR);

	/* bad uris */
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(rl_log_open("nosuch:/tmp/x", 0, NULL, &log, &err),
			 -EINVAL);
	ck_assert_msg(strstr(err.msg, "nosuch"), "message: %s", err.msg);
	ck_assert_int_eq(rl_log_open("nosuch:/tmp/x", RL_LOG_WRITE, NULL, &log,
				     &err), -EINVAL);
	ck_assert_int_eq(rl_log_open("file:", 0, NULL, &log, &err), -EINVAL);
	ck_assert_int_eq(rl_log_open("", 0, NULL, &log, &err), -EINVAL);
	ck_assert_ptr_null(log);

	/* a log with a disk, opened by file: uri; missing streams */
	unit_path(path, sizeof(path), "file:%s/log", dir);
	w = open_log(path, RL_LOG_WRITE, 0);
	append_tags(get_stream(w, &disk1), 0, 2, 0);
	ck_assert_int_eq(rl_log_stream(w, &nil, &s, &err), -EINVAL);
	log = open_log(path, 0, 0);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(rl_log_stream(log, &other, &s, &err), -ENOENT);
	ck_assert_msg(strstr(err.msg, "no such stream"), "message: %s",
		      err.msg);
	ck_assert_int_eq(rl_log_stream(log, NULL, &s, &err), -ENOENT);
	/* a reader does not create anything */
	unit_path(path, sizeof(path), "%s/log/catalog", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	s = get_stream(log, &disk1);
	ck_assert_uint_eq(log_end(s), 2);
	read_tags(s, 0, 2);
	rl_log_close(log);
	rl_log_close(w);
}
END_TEST

static int uuid_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct rl_uuid));
}

START_TEST(test_log_list)
{
	char dir[PATH_MAX];
	struct rl_uuid want[3] = { unit_uuid(3), unit_uuid(1), unit_uuid(2) };
	struct rl_uuid got[8], one[2];
	struct rl_log *log, *rlog;
	struct rl_err err = { 0 };

	unit_tmpdir("list", dir, sizeof(dir));
	log = open_log(dir, RL_LOG_WRITE, 0);
	ck_assert_int_eq(rl_log_list(log, got, 8, &err), 0);
	get_stream(log, NULL);	/* the catalog is not a disk */
	for (int i = 0; i < 3; i++)
		get_stream(log, &want[i]);
	ck_assert_int_eq(rl_log_list(log, got, 8, &err), 3);
	qsort(got, 3, sizeof(got[0]), uuid_cmp);
	qsort(want, 3, sizeof(want[0]), uuid_cmp);
	ck_assert_mem_eq(got, want, sizeof(want));

	/* more disks than room: the count, and only max filled in */
	one[1] = unit_uuid(0xee);
	ck_assert_int_eq(rl_log_list(log, one, 1, &err), 3);
	ck_assert(rl_uuid_eq(&one[1], &(struct rl_uuid){ { 0xee, 0xee, 0xee,
		0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
		0xee, 0xee, 0xee } }));
	ck_assert_int_eq(rl_log_list(log, NULL, 0, &err), 3);

	rlog = open_log(dir, 0, 0);
	memset(got, 0, sizeof(got));
	ck_assert_int_eq(rl_log_list(rlog, got, 8, &err), 3);
	qsort(got, 3, sizeof(got[0]), uuid_cmp);
	ck_assert_mem_eq(got, want, sizeof(want));
	rl_log_close(rlog);
	rl_log_close(log);
}
END_TEST

static Suite *log_file_suite(void)
{
	Suite *s = suite_create("log_file");
	TCase *tc = tcase_create("log_file");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_append_and_read_back);
	tcase_add_test(tc, test_durable_end);
	tcase_add_test(tc, test_concurrent_appenders);
	tcase_add_test(tc, test_many_streams_at_once);
	tcase_add_test(tc, test_segment_rollover);
	tcase_add_loop_test(tc, test_torn_tail, 0, TORN_MAX);
	tcase_add_test(tc, test_preallocated_tail);
	tcase_add_test(tc, test_direct_appends);
	tcase_add_test(tc, test_reused_segments);
	tcase_add_test(tc, test_head_behind);
	tcase_add_test(tc, test_damage_below_durable_end);
	tcase_add_test(tc, test_second_writer_refused);
	tcase_add_test(tc, test_reader_tails_live_writer);
	tcase_add_test(tc, test_missing_and_bad_uris);
	tcase_add_test(tc, test_log_list);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	return unit_main(log_file_suite());
}
