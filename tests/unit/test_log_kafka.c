/* Unit tests of the kafka log (replog/log_kafka.c) against librdkafka's
 * in-process mock cluster: completions in position order with positions =
 * offsets, the durable end, readers (timeout 0 still returns every record
 * below the end, 0 at the end, tailing), a failed append that does not make
 * the log refuse later ones (quorum loss is not permanent), a fatal
 * producer error that a new producer replaces, a record of
 * another disk refused, rl_log_list, and bad URIs. */
#include "unit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static const struct rl_uuid disk1 = { { 0xd1, 0x5c, 0x00, 0x01, 0x02, 0x03,
					0x44, 0x05, 0x86, 0x07, 0x08, 0x09,
					0x0a, 0x0b, 0x0c, 0x0d } };
static const struct rl_uuid disk2 = { { 0xd2, 0x5c, 0x00, 0x01, 0x02, 0x03,
					0x44, 0x05, 0x86, 0x07, 0x08, 0x09,
					0x0a, 0x0b, 0x0c, 0x0d } };

static rd_kafka_t *mrk;
static rd_kafka_mock_cluster_t *mc;
static char bootstraps[512];

static void topic_of(const struct rl_uuid *d, char *out, size_t size)
{
	char u[RL_UUID_STRLEN + 1];

	rl_uuid_format(d, u);
	snprintf(out, size, "repdisk.u.disk.%s", u);
}

/* A 3-broker mock cluster with the catalog and disk1's topics (one
 * partition each, led by broker 1). */
static void mock_start(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256], topic[128];

	rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
	mrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	ck_assert_ptr_nonnull(mrk);
	mc = rd_kafka_mock_cluster_new(mrk, 3);
	ck_assert_ptr_nonnull(mc);
	snprintf(bootstraps, sizeof(bootstraps), "%s",
		 rd_kafka_mock_cluster_bootstraps(mc));
	ck_assert_int_eq(rd_kafka_mock_topic_create(mc, "repdisk.u.catalog", 1,
						    3), 0);
	topic_of(&disk1, topic, sizeof(topic));
	ck_assert_int_eq(rd_kafka_mock_topic_create(mc, topic, 1, 3), 0);
	rd_kafka_mock_partition_set_leader(mc, topic, 0, 1);
}

static void mock_stop(void)
{
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(mrk);
}

/* The key file the next log opened seals with (NULL: none). */
static const char *log_key_file;

static struct rl_log *open_log_query(unsigned flags, int timeout_ms,
				     const char *query)
{
	static const char *const props[] = { "client.id=repdisk-unit",
					     "log_level=0", NULL };
	struct rl_log_opts opts = { .kafka_namespace = "u",
				    .kafka_timeout_ms = timeout_ms,
				    .kafka_props = props,
				    .key_file = log_key_file };
	struct rl_log *log;
	struct rl_err err = { 0 };
	char uri[600];

	snprintf(uri, sizeof(uri), "kafka:%s%s", bootstraps, query);
	ck_assert_msg(rl_log_open(uri, flags, &opts, &log, &err) == 0, "%s",
		      err.msg);
	return log;
}

static struct rl_log *open_log(unsigned flags, int timeout_ms)
{
	return open_log_query(flags, timeout_ms, "");
}

static size_t tag_len(uint64_t tag)
{
	return 1 + (size_t)(tag * 37 % 3000);
}

static size_t tag_record(const struct rl_uuid *d, uint64_t tag, uint8_t **out)
{
	uint8_t data[4096];
	uint64_t seed = tag * 7919 + 1;
	size_t dlen = tag_len(tag);
	struct rl_record r = { .type = RL_WRITE, .disk = *d, .epoch = 1,
			       .seq = tag, .offset = tag * 512,
			       .length = dlen, .data = data, .data_len = dlen };

	unit_fill_random(data, dlen, &seed);
	return unit_encode(&r, 0, out);
}

static void tag_check(const struct rl_record *rec, uint64_t tag)
{
	uint8_t data[4096];
	uint64_t seed = tag * 7919 + 1;
	size_t dlen = tag_len(tag);

	ck_assert_int_eq(rec->type, RL_WRITE);
	ck_assert(rl_uuid_eq(&rec->disk, &disk1));
	ck_assert_uint_eq(rec->seq, tag);
	ck_assert_uint_eq(rec->data_len, dlen);
	unit_fill_random(data, dlen, &seed);
	ck_assert(memcmp(rec->data, data, dlen) == 0);
}

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ order */

#define N 300

struct done_log {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t n;
	uint64_t tag[N + 1];
	uint64_t pos[N + 1];
	int err[N + 1];
};

static struct done_log dl = { PTHREAD_MUTEX_INITIALIZER,
			      PTHREAD_COND_INITIALIZER, 0, { 0 }, { 0 },
			      { 0 } };

static void on_done(void *opaque, int err, uint64_t pos)
{
	pthread_mutex_lock(&dl.lock);
	dl.tag[dl.n] = (uint64_t)(uintptr_t)opaque;
	dl.pos[dl.n] = pos;
	dl.err[dl.n] = err;
	dl.n++;
	pthread_cond_broadcast(&dl.cond);
	pthread_mutex_unlock(&dl.lock);
}

/* Appends records tagged 0..n-1 to s (asynchronously, all at once) and
 * waits for their n completions, noted in dl from its start. */
static void append_tags(struct rl_stream *s, uint64_t n)
{
	uint8_t *buf;
	size_t len;

	pthread_mutex_lock(&dl.lock);
	dl.n = 0;
	pthread_mutex_unlock(&dl.lock);
	for (uint64_t i = 0; i < n; i++) {
		len = tag_record(&disk1, i, &buf);
		ck_assert_int_eq(rl_log_append(s, buf, len, on_done,
					       (void *)(uintptr_t)i), 0);
		free(buf);
	}
	pthread_mutex_lock(&dl.lock);
	while (dl.n < n)
		pthread_cond_wait(&dl.cond, &dl.lock);
	pthread_mutex_unlock(&dl.lock);
}

START_TEST(test_order_end_and_readers)
{
	struct rl_log *wlog, *rlog;
	struct rl_stream *ws, *rs, *missing;
	struct rl_reader *rd;
	struct rl_record rec;
	struct rl_err err = { 0 };
	struct rl_uuid uuids[4];
	uint64_t end, pos;
	int64_t t0;
	uint8_t *buf;
	size_t len;

	mock_start();
	wlog = open_log(RL_LOG_WRITE, 10000);
	ck_assert_msg(rl_log_stream(wlog, &disk1, &ws, &err) == 0, "%s",
		      err.msg);
	append_tags(ws, N);
	for (uint64_t i = 0; i < N; i++) {
		ck_assert_int_eq(dl.err[i], 0);
		ck_assert_uint_eq(dl.tag[i], i);	/* completion order */
		ck_assert_uint_eq(dl.pos[i], i);	/* positions = offsets */
	}
	ck_assert_int_eq(rl_log_end(ws, &end, NULL), 0);
	ck_assert_uint_eq(end, N);

	/* a reader's log: every record below the end even with timeout 0 */
	rlog = open_log(0, 10000);
	ck_assert_int_eq(rl_log_stream(rlog, &disk2, &missing, &err), -ENOENT);
	ck_assert_msg(strstr(err.msg, "does not exist"), "%s", err.msg);
	ck_assert_msg(rl_log_stream(rlog, &disk1, &rs, &err) == 0, "%s",
		      err.msg);
	ck_assert_int_eq(rl_log_append(rs, "x", 1, on_done, NULL), -EROFS);
	ck_assert_msg(rl_reader_open(rs, 0, &rd, &err) == 0, "%s", err.msg);
	for (uint64_t i = 0; i < N; i++) {
		int rc = rl_reader_next(rd, &rec, &pos, 0, &err);

		ck_assert_msg(rc == 1, "record %lu: %d %s", (unsigned long)i,
			      rc, err.msg);
		ck_assert_uint_eq(pos, i);
		tag_check(&rec, i);
	}
	ck_assert_int_eq(rl_reader_next(rd, &rec, &pos, 0, &err), 0);
	t0 = now_ms();
	ck_assert_int_eq(rl_reader_next(rd, &rec, &pos, 300, &err), 0);
	ck_assert_int_ge(now_ms() - t0, 250);

	/* tailing: a record appended now arrives */
	len = tag_record(&disk1, N, &buf);
	ck_assert_int_eq(rl_log_append_sync(ws, buf, len, NULL), N);
	free(buf);
	ck_assert_int_eq(rl_reader_next(rd, &rec, &pos, 10000, &err), 1);
	ck_assert_uint_eq(pos, N);
	tag_check(&rec, N);
	rl_reader_close(rd);

	/* in the middle, and past the end */
	ck_assert_int_eq(rl_reader_open(rs, N - 4, &rd, &err), 0);
	for (uint64_t i = N - 4; i <= N; i++) {
		ck_assert_int_eq(rl_reader_next(rd, &rec, &pos, 0, &err), 1);
		ck_assert_uint_eq(pos, i);
		tag_check(&rec, i);
	}
	ck_assert_int_eq(rl_reader_next(rd, &rec, &pos, 0, &err), 0);
	rl_reader_close(rd);
	ck_assert_int_eq(rl_reader_open(rs, N + 2, &rd, &err), -ERANGE);
	ck_assert_msg(strstr(err.msg, "past the end"), "%s", err.msg);

	ck_assert_int_eq(rl_log_list(rlog, uuids, 4, &err), 1);
	ck_assert(rl_uuid_eq(&uuids[0], &disk1));
	rl_log_close(rlog);
	rl_log_close(wlog);
	mock_stop();
}
END_TEST

/* ------------------------------------------------------------ quorum */

START_TEST(test_failed_append_is_not_sticky)
{
	char path[4096], dir[4096], topic[128];
	struct rl_log *log;
	struct rl_stream *s;
	struct rl_err err = { 0 };
	uint64_t end;
	int64_t t0, pos;
	uint8_t *buf;
	size_t len;
	char *out;
	int saved;

	mock_start();
	topic_of(&disk1, topic, sizeof(topic));
	log = open_log(RL_LOG_WRITE, 1500);
	ck_assert_msg(rl_log_stream(log, &disk1, &s, &err) == 0, "%s", err.msg);
	len = tag_record(&disk1, 0, &buf);
	ck_assert_int_eq(rl_log_append_sync(s, buf, len, NULL), 0);

	/* the leader down: the mock moves no leader, the append times out */
	unit_tmpdir("quorum", dir, sizeof(dir));
	unit_path(path, sizeof(path), "%s/stderr", dir);
	rd_kafka_mock_broker_set_down(mc, 1);
	saved = unit_stderr_begin(path);
	t0 = now_ms();
	pos = rl_log_append_sync(s, buf, len, NULL);
	out = unit_stderr_end(saved, path);
	ck_assert_int_eq(pos, -EIO);
	ck_assert_int_ge(now_ms() - t0, 1000);
	ck_assert_int_le(now_ms() - t0, 8000);
	ck_assert_msg(strstr(out, topic) && strstr(out, "append failed after 2 s") &&
		      strstr(out, "timed out"), "stderr: %s", out);
	free(out);

	/* back up: the same log accepts appends again */
	rd_kafka_mock_broker_set_up(mc, 1);
	pos = rl_log_append_sync(s, buf, len, NULL);
	ck_assert_int_eq(pos, 1);
	ck_assert_int_eq(rl_log_end(s, &end, NULL), 0);
	ck_assert_uint_eq(end, (uint64_t)pos + 1);
	free(buf);
	rl_log_close(log);
	mock_stop();
}
END_TEST

/* More records than librdkafka's idempotence window takes wait in the
 * stream (log_kafka.c, "The idempotence window").  With the leader down,
 * every one of them still fails after about the write timeout (once
 * HOLD_MAX_MS passed, the held ones go to librdkafka too), not after two;
 * and once it is back, appends go on, in order. */
START_TEST(test_window_outage)
{
	enum { M = 60 };
	struct rl_log *log;
	struct rl_stream *s;
	struct rl_err err = { 0 };
	int64_t t0, took;
	uint8_t *buf;
	size_t len;

	mock_start();
	log = open_log(RL_LOG_WRITE, 5000);
	ck_assert_msg(rl_log_stream(log, &disk1, &s, &err) == 0, "%s", err.msg);
	len = tag_record(&disk1, 0, &buf);
	ck_assert_int_eq(rl_log_append_sync(s, buf, len, NULL), 0);
	free(buf);

	rd_kafka_mock_broker_set_down(mc, 1);
	t0 = now_ms();
	append_tags(s, M);
	took = now_ms() - t0;
	for (uint64_t i = 0; i < M; i++) {
		ck_assert_uint_eq(dl.tag[i], i);
		ck_assert_int_eq(dl.err[i], -EIO);
	}
	ck_assert_msg(took < 2 * 5000, "the last of %d appends failed after "
		      "%lld ms: the held ones waited a timeout of their own",
		      M, (long long)took);

	rd_kafka_mock_broker_set_up(mc, 1);
	append_tags(s, M);
	for (uint64_t i = 1; i < M; i++) {
		ck_assert_int_eq(dl.err[i], 0);
		ck_assert_uint_eq(dl.tag[i], i);
		ck_assert_uint_eq(dl.pos[i], dl.pos[0] + i);
	}
	rl_log_close(log);
	mock_stop();
}
END_TEST

/* ------------------------------------------------------------ the writer */

/* An image of disk1 in a fresh data directory under tag. */
static struct rl_image *image_in(const char *tag, char *path, size_t size)
{
	char dir[4096], ckpt[4200];
	struct rl_image *img;
	struct rl_err err = { 0 };

	unit_tmpdir(tag, dir, sizeof(dir));
	ck_assert_msg(rl_datadir_prepare(dir, &err) == 0, "%s", err.msg);
	unit_path(ckpt, sizeof(ckpt), "%s/.repdisk/ckpt", dir);
	unit_path(path, size, "%s/vm.img", dir);
	ck_assert_msg(rl_image_open(path, ckpt, &disk1, &img, &err) == 0, "%s",
		      err.msg);
	return img;
}

static int write_sync(struct rl_writer *w, uint64_t off, char fill)
{
	uint8_t data[4096];
	struct rl_record r = { .type = RL_WRITE, .disk = disk1, .offset = off,
			       .length = sizeof(data), .data = data,
			       .data_len = sizeof(data) };

	memset(data, fill, sizeof(data));
	return rl_writer_submit_sync(w, &r);
}

/* Appends a record of disk1 straight to the log, as another process
 * would (or as a "possibly persisted" append would land). */
static void append_raw(struct rl_stream *s, enum rl_type type, uint64_t epoch,
		       uint64_t seq, uint64_t off, const char *data)
{
	struct rl_record r = { .type = type, .disk = disk1, .epoch = epoch,
			       .seq = seq, .offset = off, .data = data,
			       .data_len = strlen(data) };
	uint8_t *buf;
	size_t len;

	if (type == RL_WRITE)
		r.length = r.data_len;
	len = unit_encode(&r, 0, &buf);
	ck_assert_int_ge(rl_log_append_sync(s, buf, len, NULL), 0);
	free(buf);
}

/* The image at path (img, closed here) is exactly what a replay of the
 * stream into a fresh image makes. */
static void replay_equals(struct rl_stream *s, struct rl_image *img,
			  const char *path, const char *tag)
{
	struct rl_err err = { 0 };
	struct rl_image *img2;
	char p2[4096];

	img2 = image_in(tag, p2, sizeof(p2));
	ck_assert_msg(rl_replay(s, img2, &err) >= 0, "%s", err.msg);
	ck_assert_int_eq(rl_image_checkpoint(img, &err), 0);
	ck_assert_int_eq(rl_image_checkpoint(img2, &err), 0);
	ck_assert_uint_eq(rl_image_next_pos(img), rl_image_next_pos(img2));
	ck_assert_int_eq(unit_file_cmp(path, p2), -1);
	rl_image_close(img);
	rl_image_close(img2);
}

/* A writer of disk1 on a fresh mock cluster: its log (URI query), stream,
 * and image in a data directory of its own (at path). */
struct wfix {
	struct rl_log *log;
	struct rl_stream *s;
	struct rl_image *img;
	struct rl_writer *w;
	char path[4096];
};

static void wfix_open(struct wfix *f, const char *tag, int timeout_ms,
		      const char *query)
{
	struct rl_writer_opts wo = { .host = "host-a" };
	struct rl_err err = { 0 };

	mock_start();
	f->log = open_log_query(RL_LOG_WRITE, timeout_ms, query);
	ck_assert_msg(rl_log_stream(f->log, &disk1, &f->s, &err) == 0, "%s",
		      err.msg);
	f->img = image_in(tag, f->path, sizeof(f->path));
	ck_assert_msg(rl_writer_open(f->s, f->img, "vm.img", &wo, &f->w,
				     &err) == 0, "%s", err.msg);
}

/* Closes the writer: its image must be what a replay of the log makes
 * (into an image under replay_tag); then the log and the cluster. */
static void wfix_close(struct wfix *f, const char *replay_tag)
{
	rl_writer_close(f->w);
	replay_equals(f->s, f->img, f->path, replay_tag);
	rl_log_close(f->log);
	mock_stop();
}

/* Contract item 6 on the writer: without a quorum a write fails with EIO
 * after the timeout, and once the cluster is back writes succeed again
 * with no restart.  Records the writer did not expect in its stream (a
 * timed-out append that was persisted after all, another writer's claim)
 * are applied from the log before the next acknowledgement: the image
 * stays what a replay of the log gives, and a newer claim fences. */
START_TEST(test_writer_outage_and_gaps)
{
	char dir[4096], path[4200];
	struct wfix f;
	int64_t t0;
	char *out;
	int saved;

	wfix_open(&f, "writer-a", 1500, "");
	ck_assert_int_eq(write_sync(f.w, 0, 'a'), 0);

	unit_tmpdir("writer-msgs", dir, sizeof(dir));
	unit_path(path, sizeof(path), "%s/stderr", dir);
	rd_kafka_mock_broker_set_down(mc, 1);
	saved = unit_stderr_begin(path);
	t0 = now_ms();
	ck_assert_int_eq(write_sync(f.w, 4096, 'b'), -EIO);
	ck_assert_int_le(now_ms() - t0, 8000);
	rd_kafka_mock_broker_set_up(mc, 1);
	ck_assert_int_eq(write_sync(f.w, 8192, 'c'), 0);
	out = unit_stderr_end(saved, path);
	ck_assert_msg(strstr(out, "vm.img: log append failed: ") &&
		      strstr(out, "writes fail with EIO until the log accepts "
			     "appends again") &&
		      strstr(out, "vm.img: the log accepts appends again"),
		      "stderr: %s", out);
	free(out);
	ck_assert_int_eq(rl_writer_failed(f.w), 0);

	/* a record of ours the writer thinks failed lands after all (a
	 * sequence number already used: every applier ignores it), then
	 * one of an older writer (stale): both fill a gap, neither applies */
	append_raw(f.s, RL_WRITE, rl_writer_epoch(f.w), 1, 12288, "possibly");
	append_raw(f.s, RL_WRITE, rl_writer_epoch(f.w) - 1, 1, 12288, "old");
	ck_assert_int_eq(write_sync(f.w, 16384, 'd'), 0);

	/* another writer claims the disk: we are fenced, and say by whom */
	append_raw(f.s, RL_CLAIM, rl_writer_epoch(f.w) + 1, 0, 0, "host-b");
	saved = unit_stderr_begin(path);
	ck_assert_int_eq(write_sync(f.w, 20480, 'e'), -EROFS);
	out = unit_stderr_end(saved, path);
	ck_assert_msg(strstr(out, "vm.img: fenced: the disk was claimed by "
			     "epoch 2 (host host-b)") &&
		      strstr(out, "refuses writes"), "stderr: %s", out);
	free(out);
	ck_assert_int_eq(write_sync(f.w, 20480, 'e'), -EROFS);
	/* the image is exactly what a replay of the log makes */
	wfix_close(&f, "writer-replay");
}
END_TEST

/* Sealed, an epoch is a run with no hole (apply.c, "Gaps"): after a
 * failed append the writer seals nothing more in it, claims the disk
 * again, and writes go on in the next epoch, numbered on from the last
 * seq applied; the image is still what a replay of the log makes. */
START_TEST(test_writer_sealed_reclaim)
{
	char dir[4096], path[4200], keys[4200];
	struct rl_err err = { 0 };
	struct wfix f;
	uint32_t id;
	char *out;
	int saved, rc = -EIO;

	unit_tmpdir("sealed-reclaim", dir, sizeof(dir));
	unit_path(keys, sizeof(keys), "%s/keys", dir);
	unit_path(path, sizeof(path), "%s/stderr", dir);
	ck_assert_msg(rl_keyfile_add(keys, true, &id, &err) == 0, "%s",
		      err.msg);
	log_key_file = keys;
	wfix_open(&f, "sealed-a", 1500, "");
	log_key_file = NULL;
	ck_assert_int_eq(write_sync(f.w, 0, 'a'), 0);		/* seq 1 */
	ck_assert_uint_eq(rl_writer_epoch(f.w), 1);
	rd_kafka_mock_broker_set_down(mc, 1);
	saved = unit_stderr_begin(path);
	ck_assert_int_eq(write_sync(f.w, 4096, 'b'), -EIO);	/* seq 2 */
	rd_kafka_mock_broker_set_up(mc, 1);
	/* EIO at once until the writer has claimed again, then success */
	for (int i = 0; i < 300 && rc == -EIO; i++) {
		struct timespec t = { 0, 100 * 1000000 };

		rc = write_sync(f.w, 8192, 'c');
		if (rc == -EIO)
			nanosleep(&t, NULL);
	}
	out = unit_stderr_end(saved, path);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(strstr(out, "vm.img: claimed the disk again after "
			     "failed appends (epoch 2, from seq 1)"),
		      "stderr: %s", out);
	free(out);
	ck_assert_uint_eq(rl_writer_epoch(f.w), 2);
	ck_assert_uint_eq(rl_image_last_seq(f.img), 2);
	ck_assert_int_eq(rl_writer_failed(f.w), 0);
	wfix_close(&f, "sealed-replay");
}
END_TEST

/* A write that failed (the partition's leader down) but whose record
 * lands in the log after all, with no write after it: the writer applies
 * it by itself within seconds, so that its image and every follower's
 * agree (they apply it too) without waiting for the next write. */
START_TEST(test_writer_idle_catch_up)
{
	char got[8] = { 0 };
	struct wfix f;
	int fd;

	wfix_open(&f, "catchup-a", 1500, "");
	ck_assert_int_eq(write_sync(f.w, 0, 'a'), 0);		/* seq 1 */
	rd_kafka_mock_broker_set_down(mc, 1);
	ck_assert_int_eq(write_sync(f.w, 4096, 'b'), -EIO);	/* seq 2 */
	rd_kafka_mock_broker_set_up(mc, 1);
	/* the failed record "lands": seq 2 of our epoch */
	append_raw(f.s, RL_WRITE, rl_writer_epoch(f.w), 2, 4096, "landed");
	fd = open(f.path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 100 && strcmp(got, "landed") != 0; i++) {
		struct timespec t = { 0, 100 * 1000000 };

		nanosleep(&t, NULL);
		if (pread(fd, got, 6, 4096) != 6)	/* not there yet */
			got[0] = '\0';
	}
	close(fd);
	ck_assert_str_eq(got, "landed");
	wfix_close(&f, "catchup-replay");
}
END_TEST

/* A fatal idempotent-producer error (librdkafka 2.0.2 raises one after some
 * disconnects; here the mock answers a produce with INVALID_PRODUCER_EPOCH,
 * which the producer makes fatal with enable.gapless.guarantee): the log
 * makes a new producer by itself.  The write in flight fails with EIO, the next ones
 * succeed with no reopen, and the image is what a replay of the log
 * makes. */
START_TEST(test_fatal_producer_error)
{
	char dir[4096], path[4200];
	struct wfix f;
	char *out;
	int saved, rc = 0;

	wfix_open(&f, "fatal-a", 3000, "?kafka.enable.gapless.guarantee=true");
	ck_assert_int_eq(write_sync(f.w, 0, 'a'), 0);

	unit_tmpdir("fatal-msgs", dir, sizeof(dir));
	unit_path(path, sizeof(path), "%s/stderr", dir);
	saved = unit_stderr_begin(path);
	rd_kafka_mock_push_request_errors(mc, 0 /* Produce */, 1,
					  RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH);
	ck_assert_int_eq(write_sync(f.w, 4096, 'b'), -EIO);
	/* until the new producer runs, writes fail at once */
	for (int i = 0; i < 100; i++) {
		rc = write_sync(f.w, 8192, 'c');
		if (rc == 0)
			break;
		struct timespec t = { 0, 50 * 1000000 };

		nanosleep(&t, NULL);
	}
	out = unit_stderr_end(saved, path);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(strstr(out, "fatal producer error") &&
		      strstr(out, "a new producer replaced the one that failed") &&
		      strstr(out, "appends are accepted again"), "stderr: %s", out);
	free(out);
	ck_assert_int_eq(write_sync(f.w, 12288, 'd'), 0);
	wfix_close(&f, "fatal-replay");
}
END_TEST

/* ------------------------------------------------------------ bad records */

START_TEST(test_record_of_another_disk)
{
	struct rl_log *log;
	struct rl_stream *s;
	struct rl_reader *rd;
	struct rl_record rec;
	struct rl_err err = { 0 };
	char topic[128];
	uint64_t pos;
	uint8_t *buf;
	size_t len;

	mock_start();
	topic_of(&disk1, topic, sizeof(topic));
	log = open_log(RL_LOG_WRITE, 10000);
	ck_assert_int_eq(rl_log_stream(log, &disk1, &s, &err), 0);
	len = tag_record(&disk1, 0, &buf);
	ck_assert_int_eq(rl_log_append_sync(s, buf, len, NULL), 0);
	free(buf);
	len = tag_record(&disk2, 1, &buf);	/* the log does not check */
	ck_assert_int_eq(rl_log_append_sync(s, buf, len, NULL), 1);
	free(buf);
	ck_assert_int_eq(rl_log_append_sync(s, "garbage", 7, NULL), 2);

	ck_assert_int_eq(rl_reader_open(s, 0, &rd, &err), 0);
	ck_assert_int_eq(rl_reader_next(rd, &rec, &pos, 0, &err), 1);
	for (int i = 0; i < 2; i++) {	/* the reader stays at the bad one */
		ck_assert_int_eq(rl_reader_next(rd, &rec, &pos, 0, &err),
				 -EBADMSG);
		ck_assert_msg(strstr(err.msg, topic) &&
			      strstr(err.msg, "offset 1 ") &&
			      strstr(err.msg, "another disk"), "%s", err.msg);
	}
	rl_reader_close(rd);
	ck_assert_int_eq(rl_reader_open(s, 2, &rd, &err), 0);
	ck_assert_int_eq(rl_reader_next(rd, &rec, &pos, 0, &err), -EBADMSG);
	ck_assert_msg(strstr(err.msg, "offset 2 "), "%s", err.msg);
	rl_reader_close(rd);
	rl_log_close(log);
	mock_stop();
}
END_TEST

/* ------------------------------------------------------------ large */

START_TEST(test_largest_record)
{
	struct rl_log *log;
	struct rl_stream *s;
	struct rl_reader *rd;
	struct rl_record rec, r = { .type = RL_WRITE, .disk = disk2,
				    .epoch = 1, .seq = 1,
				    .length = RL_RECORD_MAX_DATA,
				    .data_len = RL_RECORD_MAX_DATA };
	struct rl_err err = { 0 };
	char topic[128];
	uint64_t pos, seed = 42;
	uint8_t *data = malloc(RL_RECORD_MAX_DATA), *buf;
	size_t len;

	ck_assert_ptr_nonnull(data);
	unit_fill_random(data, RL_RECORD_MAX_DATA, &seed);
	r.data = data;
	len = unit_encode(&r, 0, &buf);
	mock_start();
	/* the mock keeps about 5 MiB per partition: a topic of its own */
	topic_of(&disk2, topic, sizeof(topic));
	ck_assert_int_eq(rd_kafka_mock_topic_create(mc, topic, 1, 3), 0);
	/* by default, records stay under Kafka's default message size */
	log = open_log(RL_LOG_WRITE, 10000);
	ck_assert_int_eq(rl_log_stream(log, &disk2, &s, &err), 0);
	ck_assert_uint_eq(rl_stream_max_record(s), 1048588 - 512);
	ck_assert_int_eq(rl_log_append_sync(s, buf, len, NULL), -EMSGSIZE);
	rl_log_close(log);

	/* a cluster configured for larger messages takes the largest record */
	log = open_log_query(RL_LOG_WRITE, 10000, "?max_message=18874368");
	ck_assert_int_eq(rl_log_stream(log, &disk2, &s, &err), 0);
	ck_assert_uint_ge(rl_stream_max_record(s), len);
	ck_assert_int_eq(rl_log_append_sync(s, buf, len, NULL), 0);
	ck_assert_int_eq(rl_reader_open(s, 0, &rd, &err), 0);
	ck_assert_msg(rl_reader_next(rd, &rec, &pos, 0, &err) == 1, "%s",
		      err.msg);
	ck_assert_uint_eq(rec.data_len, RL_RECORD_MAX_DATA);
	ck_assert(memcmp(rec.data, data, RL_RECORD_MAX_DATA) == 0);
	rl_reader_close(rd);
	rl_log_close(log);
	mock_stop();
	free(buf);
	free(data);
}
END_TEST

/* ------------------------------------------------------------ uris */

START_TEST(test_bad_uris)
{
	static const char *const bad[] = {
		"kafka:",
		"kafka:?ns=x",
		"kafka:127.0.0.1:1?ns=a.b",
		"kafka:127.0.0.1:1?rf=0",
		"kafka:127.0.0.1:1?min_insync=x",
		"kafka:127.0.0.1:1?timeout_ms=0",
		"kafka:127.0.0.1:1?color=blue",
		"kafka:127.0.0.1:1?kafka.no.such.property=1",
		"kafka:127.0.0.1:1?ns",
		NULL
	};
	struct rl_log *log;
	struct rl_err err;

	for (const char *const *u = bad; *u; u++) {
		memset(&err, 0, sizeof(err));
		ck_assert_msg(rl_log_open(*u, 0, NULL, &log, &err) == -EINVAL,
			      "%s accepted", *u);
		ck_assert_msg(err.msg[0], "%s: no message", *u);
	}
}
END_TEST

static Suite *log_kafka_suite(void)
{
	Suite *s = suite_create("log_kafka");
	TCase *tc = tcase_create("log_kafka");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_order_end_and_readers);
	tcase_add_test(tc, test_failed_append_is_not_sticky);
	tcase_add_test(tc, test_window_outage);
	tcase_add_test(tc, test_writer_outage_and_gaps);
	tcase_add_test(tc, test_writer_idle_catch_up);
	tcase_add_test(tc, test_writer_sealed_reclaim);
	tcase_add_test(tc, test_fatal_producer_error);
	tcase_add_test(tc, test_record_of_another_disk);
	tcase_add_test(tc, test_largest_record);
	tcase_add_test(tc, test_bad_uris);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_main(log_kafka_suite());
}
