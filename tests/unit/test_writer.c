/* Unit tests of the writer pipeline (replog/writer.c) on a file log:
 * concurrent submissions, claims and epochs, refused records, zero-copy
 * buffers, fencing by a newer writer, and two writers claiming at once;
 * what it wrote is checked against a follower's replay.  Shared fixtures
 * are in fixture.c. */
#include "fixture.h"
#include "internal.h"	/* RL_APPLIER_THREADS */

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect_same(const struct datadir *a, const char *an,
			const struct datadir *b, const char *bn)
{
	char pa[PATH_MAX], pb[PATH_MAX];
	int64_t diff;

	img_path(a, an, pa, sizeof(pa));
	img_path(b, bn, pb, sizeof(pb));
	diff = unit_file_cmp(pa, pb);
	ck_assert_msg(diff < 0, "%s and %s differ at byte %lld", pa, pb,
		      (long long)diff);
}

#define W_THREADS 8
#define W_PER_THREAD 150

struct wctx {
	struct rl_writer *w;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, errors, refused;
	int thread;
};

static void wdone(void *opaque, int err)
{
	struct wctx *c = opaque;

	pthread_mutex_lock(&c->lock);
	c->done++;
	if (err)
		c->errors++;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

struct wthread {
	struct wctx *c;
	int t;
};

static void *writer_thread(void *p)
{
	struct wthread *a = p;
	uint64_t seed = 77 + (uint64_t)a->t;
	uint8_t data[8192];

	for (int i = 0; i < W_PER_THREAD; i++) {
		uint64_t k = unit_rand(&seed) % 10;
		uint64_t off = (unit_rand(&seed) % 256) * 4096;
		size_t len = (k % 2 + 1) * 4096;
		struct rl_record r = { .type = RL_WRITE, .disk = disk1,
				       .offset = off, .length = len,
				       .data = data, .data_len = len };
		int rc;

		if (i % 2)
			unit_fill_random(data, len, &seed);
		else
			memset(data, 'a' + (a->t + i) % 26, len);
		if (k == 8) {
			r = rec_range(RL_ZERO, 0, 0, off, len);
		} else if (k == 9) {
			r = rec_range(RL_DISCARD, 0, 0, off, len + 1000);
		}
		if (k == 7) {	/* zero-copy submission */
			uint8_t *buf = malloc(RL_RECORD_HDR_SIZE + len);

			memcpy(buf + RL_RECORD_HDR_SIZE, data, len);
			r.data = buf + RL_RECORD_HDR_SIZE;
			rc = rl_writer_submit_buf(a->c->w, &r, buf,
						  RL_RECORD_HDR_SIZE + len,
						  wdone, a->c);
		} else {
			rc = rl_writer_submit(a->c->w, &r, wdone, a->c);
			memset(data, 0xff, sizeof(data));	/* copied */
		}
		if (rc != 0) {
			pthread_mutex_lock(&a->c->lock);
			a->c->refused++;
			pthread_mutex_unlock(&a->c->lock);
		}
	}
	return NULL;
}

/* rl_writer_submit_buf() and wait for the completion. */
static int submit_buf_sync(struct rl_writer *w, const struct rl_record *r,
			   void *buf, size_t cap)
{
	struct wctx c = { .lock = PTHREAD_MUTEX_INITIALIZER,
			  .cond = PTHREAD_COND_INITIALIZER };
	int rc = rl_writer_submit_buf(w, r, buf, cap, wdone, &c);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c.lock);
	while (!c.done)
		pthread_cond_wait(&c.cond, &c.lock);
	pthread_mutex_unlock(&c.lock);
	return c.errors ? -EIO : 0;
}

static struct rl_writer *writer_open(struct rl_stream *s, struct rl_image *img,
				     size_t zstd_min)
{
	struct rl_writer_opts o = { .host = "primary", .zstd_min = zstd_min };
	struct rl_err err = { 0 };
	struct rl_writer *w = NULL;
	int rc = rl_writer_open(s, img, "disk.img", &o, &w, &err);

	ck_assert_msg(rc == 0, "writer: %d: %s", rc, err.msg);
	return w;
}

START_TEST(test_writer_pipeline)
{
	struct primary p;
	struct follower fo;
	struct rl_stream *s;
	struct rl_image *img;
	struct rl_writer *w;
	struct rl_err err = { 0 };
	struct rl_checkpoint c;
	struct wctx ctx = { .lock = PTHREAD_MUTEX_INITIALIZER,
			    .cond = PTHREAD_COND_INITIALIZER };
	struct wthread args[W_THREADS];
	pthread_t th[W_THREADS];
	uint64_t end;

	primary_init(&p, "writer");
	primary_catalog(&p, cat_create(&disk1, "disk.img", 0644));
	ck_assert_int_eq(rl_log_stream(p.log, &disk1, &s, &err), 0);
	img = img_open(&p.dd, "disk.img", &disk1);

	/* an empty stream: the writer claims epoch 1 at position 0 */
	w = writer_open(s, img, 1024);
	ck_assert_uint_eq(rl_writer_epoch(w), 1);
	ck_assert_uint_eq(rl_image_epoch(img), 1);
	ck_assert_int_eq(rl_log_end(s, &end, NULL), 0);
	ck_assert_uint_eq(end, 1);
	ck_assert_int_eq(rl_checkpoint_read(p.dd.ckpt, &disk1, &c, &err), 0);
	ck_assert_uint_eq(c.next_pos, 1);
	ck_assert_uint_eq(c.epoch, 1);

	ctx.w = w;
	for (int t = 0; t < W_THREADS; t++) {
		args[t] = (struct wthread){ &ctx, t };
		ck_assert_int_eq(pthread_create(&th[t], NULL, writer_thread,
						&args[t]), 0);
	}
	for (int t = 0; t < W_THREADS; t++)
		pthread_join(th[t], NULL);
	rl_writer_drain(w);
	ck_assert_int_eq(ctx.refused, 0);
	ck_assert_int_eq(ctx.done, W_THREADS * W_PER_THREAD);
	ck_assert_int_eq(ctx.errors, 0);
	ck_assert_int_eq(rl_writer_failed(w), 0);
	ck_assert_int_eq(rl_log_end(s, &end, NULL), 0);
	ck_assert_uint_eq(end, 1 + W_THREADS * W_PER_THREAD);
	ck_assert_uint_eq(rl_image_next_pos(img), end);
	ck_assert_uint_eq(rl_image_last_seq(img), W_THREADS * W_PER_THREAD);
	ck_assert_int_eq(rl_writer_checkpoint(w, &err), 0);

	/* bad submissions are refused before they reach the log */
	{
		struct rl_record bad[] = {
			rec_range(RL_ZERO, 0, 0, 0, 0),
			(struct rl_record){ .type = RL_WRITE, .disk = disk1,
					    .length = 3, .data = "xy",
					    .data_len = 2 },
			rec_claim(&disk1, 7),
			cat_create(&disk1, "x", 0644),
			(struct rl_record){ .type = RL_DELETE, .disk = disk1 },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			int rc = rl_writer_submit(w, &bad[i], wdone, &ctx);

			ck_assert_msg(rc == -EINVAL, "bad record %zu (%s): %d",
				      i, rl_type_name(bad[i].type), rc);
		}
		ck_assert_int_eq(rl_log_end(s, &end, NULL), 0);
		ck_assert_uint_eq(end, 1 + W_THREADS * W_PER_THREAD);
		ck_assert_int_eq(rl_writer_failed(w), 0);
	}
	rl_writer_close(w);

	/* a follower's replay into another data directory is the same */
	datadir_init(&fo.dd, "writer-follower");
	follower_open(&fo, p.logdir, 0);
	ck_assert_int_eq(follower_catch_up(&fo), 2 + W_THREADS * W_PER_THREAD);
	expect_same(&p.dd, "disk.img", &fo.dd, "disk.img");

	/* the next writer claims epoch 2, after all of the first's records */
	w = writer_open(s, img, 0);
	ck_assert_uint_eq(rl_writer_epoch(w), 2);
	{
		uint8_t z[4096];

		memset(z, 'z', sizeof(z));
		struct rl_record r = rec_write(0, 0, 3 << 20, z, sizeof(z));

		ck_assert_int_eq(rl_writer_submit_sync(w, &r), 0);
		r = rec_range(RL_RESIZE, 0, 0, (3 << 20) + 100, 0);
		ck_assert_int_eq(rl_writer_submit_sync(w, &r), 0);

		/* zero-copy, not compressed: a buffer of exactly header room
		 * plus data is enough */
		size_t cap = RL_RECORD_HDR_SIZE + 5000;
		uint8_t *buf = malloc(cap);

		memset(buf + RL_RECORD_HDR_SIZE, 'q', 5000);
		r = rec_write(0, 0, 8190, buf + RL_RECORD_HDR_SIZE, 5000);
		ck_assert_int_eq(submit_buf_sync(w, &r, buf, cap), 0);
		/* refused: the writer frees the buffer all the same */
		buf = malloc(cap);
		r = rec_claim(&disk1, 9);
		ck_assert_int_eq(rl_writer_submit_buf(w, &r, buf, cap, wdone,
						      &ctx), -EINVAL);
	}
	/* epoch 2's numbers go on from epoch 1's last, which its claim
	 * carries */
	ck_assert_uint_eq(rl_image_last_seq(img),
			  W_THREADS * W_PER_THREAD + 3);
	{
		char path[PATH_MAX];
		uint8_t *bytes;

		img_path(&p.dd, "disk.img", path, sizeof(path));
		ck_assert_uint_ge(unit_read_file(path, &bytes), 8190 + 5000);
		for (int i = 0; i < 5000; i++)
			ck_assert_int_eq(bytes[8190 + i], 'q');
		free(bytes);
	}
	rl_writer_close(w);
	ck_assert_int_eq(follower_catch_up(&fo), 4);
	expect_same(&p.dd, "disk.img", &fo.dd, "disk.img");
	{
		char path[PATH_MAX];

		img_path(&fo.dd, "disk.img", path, sizeof(path));
		ck_assert_uint_eq(unit_file_size(path), (3 << 20) + 100);
	}
	follower_close(&fo);
	ck_assert_int_eq(rl_checkpoint_read(fo.dd.ckpt, &disk1, &c, &err), 0);
	ck_assert_uint_eq(c.next_pos, 5 + W_THREADS * W_PER_THREAD);
	ck_assert_uint_eq(c.epoch, 2);
	rl_image_close(img);
	primary_close(&p);
}
END_TEST

/* The threads of this process. */
static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

#define SHARED_DISKS 12

/* Many writers share the pool of applier threads (appliers.c): a dozen
 * disks open and written at once add at most RL_APPLIER_THREADS threads,
 * none is left once they close, and every disk's image is what a
 * follower's replay makes of its log.  Both ways a record is applied are
 * used: by a pool thread (many in flight) and on the log's completion
 * thread (one in flight, small: rl_writer_submit_sync). */
START_TEST(test_writers_share_appliers)
{
	struct primary p;
	struct follower fo;
	struct rl_uuid u[SHARED_DISKS];
	struct rl_image *img[SHARED_DISKS];
	struct rl_writer *w[SHARED_DISKS];
	struct wctx ctx = { .lock = PTHREAD_MUTEX_INITIALIZER,
			    .cond = PTHREAD_COND_INITIALIZER };
	struct rl_err err = { 0 };
	char name[32];
	uint8_t data[16384];
	uint64_t seed = 5;
	int base, n = 0;

	primary_init(&p, "shared");
	for (int i = 0; i < SHARED_DISKS; i++) {
		u[i] = unit_uuid((uint8_t)(0x40 + i));
		snprintf(name, sizeof(name), "vm%d.img", i);
		primary_catalog(&p, cat_create(&u[i], name, 0644));
	}
	base = thread_count();
	for (int i = 0; i < SHARED_DISKS; i++) {
		struct rl_writer_opts o = { .host = "primary" };
		struct rl_stream *s;

		snprintf(name, sizeof(name), "vm%d.img", i);
		ck_assert_int_eq(rl_log_stream(p.log, &u[i], &s, &err), 0);
		img[i] = img_open(&p.dd, name, &u[i]);
		ck_assert_msg(rl_writer_open(s, img[i], name, &o, &w[i],
					     &err) == 0, "%s", err.msg);
	}
	ck_assert_int_le(thread_count(), base + RL_APPLIER_THREADS);

	/* 40 records in flight on every disk at once, then one at a time */
	for (int k = 0; k < 40; k++) {
		for (int i = 0; i < SHARED_DISKS; i++) {
			size_t len = 4096 * (1 + unit_rand(&seed) % 4);
			struct rl_record r;

			unit_fill_random(data, len, &seed);
			r = rec_write(0, 0, (unit_rand(&seed) % 64) * 4096,
				      data, len);
			r.disk = u[i];
			ck_assert_int_eq(rl_writer_submit(w[i], &r, wdone,
							  &ctx), 0);
			n++;
		}
	}
	for (int i = 0; i < SHARED_DISKS; i++)
		rl_writer_drain(w[i]);
	for (int k = 0; k < 5; k++) {
		for (int i = 0; i < SHARED_DISKS; i++) {
			struct rl_record r;

			unit_fill_random(data, 4096, &seed);
			r = rec_write(0, 0, (uint64_t)k * 4096, data, 4096);
			r.disk = u[i];
			ck_assert_int_eq(rl_writer_submit_sync(w[i], &r), 0);
		}
	}
	ck_assert_int_le(thread_count(), base + RL_APPLIER_THREADS);
	ck_assert_int_eq(ctx.done, n);
	ck_assert_int_eq(ctx.errors, 0);
	for (int i = 0; i < SHARED_DISKS; i++) {
		ck_assert_int_eq(rl_writer_checkpoint(w[i], &err), 0);
		rl_writer_close(w[i]);
		rl_image_close(img[i]);
	}
	ck_assert_int_eq(thread_count(), base);

	datadir_init(&fo.dd, "shared-follower");
	follower_open(&fo, p.logdir, 0);
	follower_catch_up(&fo);
	for (int i = 0; i < SHARED_DISKS; i++) {
		snprintf(name, sizeof(name), "vm%d.img", i);
		expect_same(&p.dd, name, &fo.dd, name);
	}
	follower_close(&fo);
	primary_close(&p);
}
END_TEST

/* A writer whose disk was claimed by a newer writer never acknowledges
 * another write, and appliers ignore what it appended. */
START_TEST(test_writer_fenced)
{
	struct primary p;
	struct datadir dd2;
	struct follower fo;
	struct rl_stream *s;
	struct rl_image *img1, *img2;
	struct rl_writer *w1, *w2;
	struct rl_err err = { 0 };
	uint8_t a[4096], x[4096];
	struct rl_record r;
	char path[PATH_MAX], *msg;
	uint8_t *buf;
	int rc, saved;

	memset(a, 'a', sizeof(a));
	memset(x, 'x', sizeof(x));
	primary_init(&p, "fenced");
	primary_catalog(&p, cat_create(&disk1, "disk.img", 0644));
	ck_assert_int_eq(rl_log_stream(p.log, &disk1, &s, &err), 0);
	img1 = img_open(&p.dd, "disk.img", &disk1);
	w1 = writer_open(s, img1, 0);
	r = rec_write(0, 0, 0, a, sizeof(a));
	ck_assert_int_eq(rl_writer_submit_sync(w1, &r), 0);

	/* another writer takes the disk over (epoch 2) */
	datadir_init(&dd2, "fenced-2");
	img2 = img_open(&dd2, "disk.img", &disk1);
	w2 = writer_open(s, img2, 0);
	ck_assert_uint_eq(rl_writer_epoch(w2), 2);

	r = rec_write(0, 0, 0, x, sizeof(x));
	unit_path(path, sizeof(path), "%s/stderr", dd2.dir);
	saved = unit_stderr_begin(path);
	rc = rl_writer_submit_sync(w1, &r);
	msg = unit_stderr_end(saved, path);
	ck_assert_int_eq(rc, -EROFS);
	ck_assert_msg(strstr(msg, "disk.img") && strstr(msg, "refuses writes") &&
		      strstr(msg, "claimed by epoch 2 (host "),
		      "message: %s", msg);
	free(msg);
	ck_assert_int_eq(rl_writer_failed(w1), -EROFS);
	ck_assert_int_eq(rl_writer_submit_sync(w1, &r), -EROFS);
	rl_writer_close(w1);
	rl_writer_close(w2);

	/* appliers ignore the fenced writer's record */
	datadir_init(&fo.dd, "fenced-follower");
	follower_open(&fo, p.logdir, 0);
	ck_assert_int_eq(follower_catch_up(&fo), 1 + 4);
	img_path(&fo.dd, "disk.img", path, sizeof(path));
	ck_assert_uint_eq(unit_read_file(path, &buf), sizeof(a));
	ck_assert_mem_eq(buf, a, sizeof(a));
	free(buf);
	follower_close(&fo);
	rl_image_close(img1);
	rl_image_close(img2);
	primary_close(&p);
}
END_TEST

/* Two hosts take one disk over at the same moment: B has replayed (epoch 1)
 * when A, having read the same epoch, claims epoch 2; B then claims epoch
 * 2 as well.  Every applier ignores B's claim as stale: B must be refused,
 * never left to acknowledge writes beside A. */
struct race {
	struct rl_stream *s;
	struct rl_image *img_a;
	struct rl_writer *a;
};

static void race_claim_a(void *arg)
{
	struct race *rc = arg;
	struct rl_writer_opts o = { .host = "host-a", .takeover = true };
	struct rl_err err = { 0 };

	ck_assert_msg(rl_writer_open(rc->s, rc->img_a, "disk.img", &o, &rc->a,
				     &err) == 0, "writer A: %s", err.msg);
}

START_TEST(test_writer_claim_race)
{
	struct primary p;
	struct datadir dd_a, dd_b;
	struct follower fo;
	struct race race = { 0 };
	struct rl_image *img_b;
	struct rl_writer *b = NULL;
	struct rl_writer_opts ob = { .host = "host-b", .takeover = true,
				     .test_before_claim = race_claim_a,
				     .test_arg = &race };
	struct rl_err err = { 0 };
	uint8_t a[4096];
	struct rl_record r;
	char path[PATH_MAX];
	uint8_t *buf;
	int rc;

	memset(a, 'a', sizeof(a));
	primary_init(&p, "race");
	primary_catalog(&p, cat_create(&disk1, "disk.img", 0644));
	ck_assert_int_eq(rl_log_stream(p.log, &disk1, &race.s, &err), 0);
	primary_append(&p, &disk1, rec_claim(&disk1, 1));
	datadir_init(&dd_a, "race-a");
	datadir_init(&dd_b, "race-b");
	race.img_a = img_open(&dd_a, "disk.img", &disk1);
	img_b = img_open(&dd_b, "disk.img", &disk1);

	rc = rl_writer_open(race.s, img_b, "disk.img", &ob, &b, &err);
	ck_assert_ptr_nonnull(race.a);
	ck_assert_uint_eq(rl_writer_epoch(race.a), 2);
	ck_assert_msg(rc == -EBUSY, "writer B opened (%d) beside A: %s", rc,
		      err.msg);
	ck_assert_ptr_null(b);
	ck_assert_msg(strstr(err.msg, "host-a claimed the disk at the same "
			     "time, first, with epoch 2"),
		      "message: %s", err.msg);

	/* A is the writer, and every replica says so */
	r = rec_write(0, 0, 0, a, sizeof(a));
	ck_assert_int_eq(rl_writer_submit_sync(race.a, &r), 0);
	rl_writer_close(race.a);
	datadir_init(&fo.dd, "race-follower");
	follower_open(&fo, p.logdir, 0);
	follower_catch_up(&fo);
	img_path(&fo.dd, "disk.img", path, sizeof(path));
	ck_assert_uint_eq(unit_read_file(path, &buf), sizeof(a));
	ck_assert_mem_eq(buf, a, sizeof(a));
	free(buf);
	follower_close(&fo);
	rl_image_close(race.img_a);
	rl_image_close(img_b);
	primary_close(&p);
}
END_TEST

static Suite *writer_suite(void)
{
	Suite *s = suite_create("writer");
	TCase *tw = tcase_create("writer");

	tcase_set_timeout(tw, 60);
	tcase_add_test(tw, test_writer_pipeline);
	tcase_add_test(tw, test_writers_share_appliers);
	tcase_add_test(tw, test_writer_fenced);
	tcase_add_test(tw, test_writer_claim_race);
	suite_add_tcase(s, tw);
	return s;
}

int main(void)
{
	return fixture_main(writer_suite());
}
