/* Unit tests of follower positions (replog/positions.c, the file log's
 * registry in replog/log_file.c, and publishing in replog/follow.c):
 * publish, overwrite, list, forget; bad names and damaged reports refused
 * with a message; reports from a later version read as far as they can;
 * a follower reports only what its checkpoints cover, rate-limited; and
 * the same registry on Kafka (librdkafka's in-process mock cluster). */
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <sodium.h>

static const struct rl_uuid disk1 = { { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
					0x47, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
					0xdd, 0xee, 0xff, 0x01 } };
static const struct rl_uuid disk2 = { { 0x21, 0x22, 0x33, 0x44, 0x55, 0x66,
					0x47, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
					0xdd, 0xee, 0xff, 0x02 } };

/* A new empty file log (made by a writer, then closed) in dir. */
static void make_log(const char *tag, char *dir, size_t size)
{
	struct rl_log *log;
	struct rl_err err = { 0 };
	struct rl_log_opts o = { .quiet = true };

	unit_tmpdir(tag, dir, size);
	ck_assert_msg(rl_log_open(dir, RL_LOG_WRITE, &o, &log, &err) == 0,
		      "%s", err.msg);
	rl_log_close(log);
}

static struct rl_log *open_reader(const char *dir)
{
	struct rl_log *log;
	struct rl_err err = { 0 };

	ck_assert_msg(rl_log_open(dir, 0, NULL, &log, &err) == 0, "%s",
		      err.msg);
	return log;
}

static void publish(struct rl_log *log, const char *name, int64_t t,
		    uint64_t cat, uint64_t p1, uint64_t p2)
{
	struct rl_position pos[3] = {
		{ .next_pos = cat },
		{ .disk = disk1, .next_pos = p1 },
		{ .disk = disk2, .next_pos = p2 },
	};
	struct rl_positions p = { .time_ms = t, .n = 3, .pos = pos };
	struct rl_err err = { 0 };

	snprintf(p.name, sizeof(p.name), "%s", name);
	ck_assert_msg(rl_positions_publish(log, &p, &err) == 0, "%s", err.msg);
}

static uint64_t pos_of(const struct rl_positions *p, const struct rl_uuid *u)
{
	const struct rl_position *x = rl_positions_find(p, u);

	ck_assert_ptr_nonnull(x);
	return x->next_pos;
}

START_TEST(test_publish_overwrite_list_forget)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct rl_positions *v = NULL;
	struct rl_err err = { 0 };
	struct rl_log *log;
	int n;

	make_log("pos-basic", dir, sizeof(dir));
	/* a reader's log: followers open it so, and may publish */
	log = open_reader(dir);

	/* nothing published yet: an empty list, not an error */
	n = rl_positions_list(log, &v, &err);
	ck_assert_msg(n == 0, "%d %s", n, err.msg);
	rl_positions_free(v, 0);

	publish(log, "zeta", 1000, 1, 10, 20);
	publish(log, "alpha.host_1-b", 2000, 2, 30, 40);
	unit_path(path, sizeof(path), "%s/followers/zeta", dir);
	ck_assert_int_eq(access(path, F_OK), 0);

	n = rl_positions_list(log, &v, &err);
	ck_assert_msg(n == 2, "%d %s", n, err.msg);
	ck_assert_str_eq(v[0].name, "alpha.host_1-b");	/* sorted by name */
	ck_assert_str_eq(v[1].name, "zeta");
	ck_assert_int_eq(v[1].time_ms, 1000);
	ck_assert_uint_eq(v[1].n, 3);
	ck_assert_uint_eq(pos_of(&v[1], NULL), 1);
	ck_assert_uint_eq(pos_of(&v[1], &disk1), 10);
	ck_assert_uint_eq(pos_of(&v[1], &disk2), 20);
	ck_assert_uint_eq(pos_of(&v[0], &disk2), 40);
	rl_positions_free(v, (size_t)n);

	/* a newer report replaces the last one; no temporary file is left */
	publish(log, "zeta", 3000, 5, 11, 21);
	n = rl_positions_list(log, &v, &err);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(v[1].time_ms, 3000);
	ck_assert_uint_eq(pos_of(&v[1], NULL), 5);
	ck_assert_uint_eq(pos_of(&v[1], &disk1), 11);
	rl_positions_free(v, (size_t)n);
	unit_path(path, sizeof(path), "%s/followers/.zeta.tmp", dir);
	ck_assert_int_eq(access(path, F_OK), -1);

	/* a report without disks: only the catalog */
	{
		struct rl_position cat = { .next_pos = 0 };
		struct rl_positions p = { .name = "empty", .time_ms = 1,
					  .n = 1, .pos = &cat };

		ck_assert_int_eq(rl_positions_publish(log, &p, &err), 0);
	}
	n = rl_positions_list(log, &v, &err);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(v[1].name, "empty");
	ck_assert_uint_eq(v[1].n, 1);
	ck_assert_ptr_null(rl_positions_find(&v[1], &disk1));
	rl_positions_free(v, (size_t)n);

	/* forgotten followers are gone; forgetting twice is fine */
	ck_assert_int_eq(rl_positions_forget(log, "zeta", &err), 0);
	ck_assert_int_eq(rl_positions_forget(log, "zeta", &err), 0);
	ck_assert_int_eq(rl_positions_forget(log, "empty", &err), 0);
	n = rl_positions_list(log, &v, &err);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(v[0].name, "alpha.host_1-b");
	rl_positions_free(v, (size_t)n);
	rl_log_close(log);
}
END_TEST

START_TEST(test_bad_names)
{
	static const char *const bad[] = {
		"", ".hidden", "-dash", "_under", "has space", "a/b", "..",
		"caf\xc3\xa9", "tab\there", "new\nline",
		NULL,	/* 65 bytes, below */
	};
	char long_name[RL_FOLLOWER_NAME_MAX + 2];
	char dir[PATH_MAX], fdir[PATH_MAX];
	struct rl_positions *v = NULL;
	struct rl_err err = { 0 };
	struct rl_log *log;

	make_log("pos-names", dir, sizeof(dir));
	log = open_reader(dir);
	/* 64 bytes is the limit, and allowed */
	memset(long_name, 'x', RL_FOLLOWER_NAME_MAX);
	long_name[RL_FOLLOWER_NAME_MAX] = '\0';
	ck_assert_int_eq(rl_follower_name_check(long_name, &err), 0);
	long_name[RL_FOLLOWER_NAME_MAX] = 'y';
	long_name[RL_FOLLOWER_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(rl_follower_name_check("9host.example-1_b", &err), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rl_position cat = { .next_pos = 1 };
		struct rl_positions p = { .time_ms = 1, .n = 1, .pos = &cat };
		const char *name = bad[i] ? bad[i] : long_name;

		memset(&err, 0, sizeof(err));
		ck_assert_int_eq(rl_follower_name_check(name, &err), -EINVAL);
		ck_assert_msg(strstr(err.msg, "invalid follower name"), "%s",
			      err.msg);
		/* p.name holds at most 64 bytes: the long one is cut there */
		if (bad[i]) {
			snprintf(p.name, sizeof(p.name), "%s", bad[i]);
			memset(&err, 0, sizeof(err));
			ck_assert_int_eq(rl_positions_publish(log, &p, &err),
					 -EINVAL);
			ck_assert_msg(strstr(err.msg, "invalid follower name"),
				      "%s", err.msg);
		}
		ck_assert_int_eq(rl_positions_forget(log, name, &err), -EINVAL);
	}
	/* nothing was written: no directory even */
	unit_path(fdir, sizeof(fdir), "%s/followers", dir);
	ck_assert_int_eq(access(fdir, F_OK), -1);
	ck_assert_int_eq(rl_positions_list(log, &v, &err), 0);
	rl_positions_free(v, 0);

	/* the default name is a valid one */
	{
		char name[RL_FOLLOWER_NAME_MAX + 1];

		rl_follower_default_name(name);
		ck_assert_msg(rl_follower_name_check(name, &err) == 0,
			      "default name \"%s\": %s", name, err.msg);
	}
	rl_log_close(log);
}
END_TEST

/* Writes a report file by hand; returns the list's result and leaves the
 * error's message in err. */
static int list_with(const char *dir, const char *name, const char *text,
		     struct rl_positions **v, struct rl_err *err)
{
	char fdir[PATH_MAX], path[PATH_MAX];
	struct rl_log *log = open_reader(dir);
	int n;

	unit_path(fdir, sizeof(fdir), "%s/followers", dir);
	mkdir(fdir, 0755);
	unit_path(path, sizeof(path), "%s/%s", fdir, name);
	unit_write_file(path, text, strlen(text));
	memset(err, 0, sizeof(*err));
	*v = NULL;
	n = rl_positions_list(log, v, err);
	unlink(path);
	rl_log_close(log);
	return n;
}

START_TEST(test_damaged_and_newer_reports)
{
	static const struct {
		const char *text, *why;
		int code;
	} bad[] = {
		{ "", "empty", -EBADMSG },
		{ "garbage\n", "not a report", -EBADMSG },
		{ "repdisk-positions 1\nname f\n", "no time_ms", -EBADMSG },
		{ "repdisk-positions 1\ntime_ms 5\n", "no name", -EBADMSG },
		{ "repdisk-positions 1\nname other\ntime_ms 5\n",
		  "names follower \"other\"", -EBADMSG },
		{ "repdisk-positions 1\nname f\ntime_ms x\n", "bad time_ms",
		  -EBADMSG },
		{ "repdisk-positions 1\nname f\ntime_ms 5\ndisk nope 3\n",
		  "bad disk uuid", -EBADMSG },
		{ "repdisk-positions 1\nname f\ntime_ms 5\n"
		  "disk 11223344-5566-4788-99aa-bbccddeeff01 -3\n",
		  "bad position", -EBADMSG },
		{ "repdisk-positions 1\nname f\ntime_ms 5\n"
		  "disk 11223344-5566-4788-99aa-bbccddeeff01 3\n"
		  "disk 11223344-5566-4788-99aa-bbccddeeff01 4\n",
		  "named twice", -EBADMSG },
		{ "repdisk-positions 1\nname f\ntime_ms 5\ncatalog\x01\n",
		  NULL, 1 },	/* a key alone is unknown, ignored */
		{ "repdisk-positions 2\nname f\ntime_ms 5\n", "version 2",
		  -EPROTO },
	};
	char dir[PATH_MAX];
	struct rl_positions *v;
	struct rl_err err;

	make_log("pos-damaged", dir, sizeof(dir));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = list_with(dir, "f", bad[i].text, &v, &err);

		ck_assert_msg(n == bad[i].code, "case %zu: %d (%s)", i, n,
			      err.msg);
		if (n < 0) {
			ck_assert_msg(strstr(err.msg, bad[i].why) &&
				      strstr(err.msg, "followers/f"),
				      "case %zu: %s", i, err.msg);
			ck_assert_ptr_null(v);
		} else {
			rl_positions_free(v, (size_t)n);
		}
	}

	/* a later version's extra lines and fields are skipped */
	{
		int n = list_with(dir, "f", "repdisk-positions 1\n"
				  "name f\n"
				  "time_ms 77 utc\n"
				  "host somewhere\n"
				  "catalog 4 bytes=900\n"
				  "disk 11223344-5566-4788-99aa-bbccddeeff01 "
				  "12 bytes=4096 t=99\n"
				  "\n", &v, &err);

		ck_assert_msg(n == 1, "%d %s", n, err.msg);
		ck_assert_int_eq(v[0].time_ms, 77);
		ck_assert_uint_eq(pos_of(&v[0], NULL), 4);
		ck_assert_uint_eq(pos_of(&v[0], &disk1), 12);
		rl_positions_free(v, 1);
	}

	/* a file whose name is not a follower name */
	ck_assert_int_eq(list_with(dir, "bad name", "repdisk-positions 1\n"
				   "name bad name\ntime_ms 5\n", &v, &err),
			 -EBADMSG);
	ck_assert_msg(strstr(err.msg, "invalid follower name"), "%s", err.msg);

	/* temporary files of a publish in progress are not reports */
	ck_assert_int_eq(list_with(dir, ".f.tmp", "half", &v, &err), 0);
	rl_positions_free(v, 0);
}
END_TEST

/* ------------------------------------------------------------ follower */

static void append(struct rl_log *log, const struct rl_uuid *disk,
		   struct rl_record r)
{
	struct rl_stream *s;
	struct rl_err err = { 0 };
	uint8_t *buf;
	size_t len = unit_encode(&r, 0, &buf);

	ck_assert_msg(rl_log_stream(log, disk, &s, &err) == 0, "%s", err.msg);
	ck_assert_int_ge(rl_log_append_sync(s, buf, len, NULL), 0);
	free(buf);
}

static int list_one(struct rl_log *log, const char *name,
		    struct rl_positions **out)
{
	struct rl_positions *v = NULL;
	struct rl_err err = { 0 };
	int n = rl_positions_list(log, &v, &err);

	ck_assert_msg(n >= 0, "%s", err.msg);
	for (int i = 0; i < n; i++) {
		if (strcmp(v[i].name, name) == 0) {
			struct rl_positions *one = malloc(sizeof(*one));

			ck_assert_ptr_nonnull(one);
			*one = v[i];
			v[i].pos = NULL;
			rl_positions_free(v, (size_t)n);
			*out = one;
			return 1;
		}
	}
	rl_positions_free(v, (size_t)n);
	return 0;
}

START_TEST(test_follower_reports_checkpoints)
{
	char logdir[PATH_MAX], dd[PATH_MAX];
	struct rl_log_opts o = { .quiet = true };
	struct rl_follow_opts fo = { .checkpoint_records = 1000,
				     .name = "replica-1", .publish_ms = 300 };
	struct rl_log *wlog, *rlog;
	struct rl_follower *f;
	struct rl_positions *p;
	struct rl_err err = { 0 };
	uint8_t data[4096];
	uint64_t seed = 9;
	struct timespec t0, t1;

	unit_fill_random(data, sizeof(data), &seed);
	unit_tmpdir("pos-follow-log", logdir, sizeof(logdir));
	unit_tmpdir("pos-follow-dd", dd, sizeof(dd));
	ck_assert_msg(rl_log_open(logdir, RL_LOG_WRITE, &o, &wlog, &err) == 0,
		      "%s", err.msg);
	append(wlog, NULL, (struct rl_record){ .type = RL_CREATE, .disk = disk1,
					       .name = "vm1", .mode = 0644,
					       .uid = getuid(),
					       .gid = getgid() });
	append(wlog, &disk1, (struct rl_record){ .type = RL_CLAIM,
						 .disk = disk1, .epoch = 1,
						 .data = "h", .data_len = 1 });
	for (uint64_t i = 0; i < 9; i++)
		append(wlog, &disk1, (struct rl_record){
			.type = RL_WRITE, .disk = disk1, .epoch = 1,
			.seq = i + 1, .offset = i * 4096, .length = 4096,
			.data = data, .data_len = 4096 });

	rlog = open_reader(logdir);
	/* bad names are refused when the follower opens */
	{
		struct rl_follow_opts bad = { .name = "no/slash" };

		ck_assert_int_eq(rl_follower_open(rlog, dd, &bad, &f, &err),
				 -EINVAL);
		ck_assert_msg(strstr(err.msg, "invalid follower name"), "%s",
			      err.msg);
	}
	ck_assert_msg(rl_follower_open(rlog, dd, &fo, &f, &err) == 0, "%s",
		      err.msg);

	/* applied but not checkpointed: the report says 0 for the disk */
	ck_assert_int_eq(rl_follower_step(f, &err), 1 + 10);
	ck_assert_int_eq(rl_follower_publish(f, false, &err), 1);
	ck_assert_int_eq(list_one(rlog, "replica-1", &p), 1);
	ck_assert_uint_eq(pos_of(p, NULL), 1);
	ck_assert_uint_eq(pos_of(p, &disk1), 0);
	rl_positions_free(p, 1);

	/* checkpointed: now it may say 10, but not within publish_ms... */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(rl_follower_checkpoint(f, &err), 0);
	ck_assert_int_eq(rl_follower_publish(f, false, &err), 0);
	ck_assert_int_eq(list_one(rlog, "replica-1", &p), 1);
	ck_assert_uint_eq(pos_of(p, &disk1), 0);
	rl_positions_free(p, 1);
	/* ...unless forced (a follower that stops) */
	ck_assert_int_eq(rl_follower_publish(f, true, &err), 1);
	ck_assert_int_eq(list_one(rlog, "replica-1", &p), 1);
	ck_assert_uint_eq(pos_of(p, &disk1), 10);
	rl_positions_free(p, 1);
	/* nothing changed: nothing to publish, forced or not */
	ck_assert_int_eq(rl_follower_publish(f, true, &err), 0);

	/* one more record, checkpointed: published once publish_ms passed */
	append(wlog, &disk1, (struct rl_record){
		.type = RL_ZERO, .disk = disk1, .epoch = 1, .seq = 10,
		.offset = 0, .length = 4096 });
	ck_assert_int_eq(rl_follower_step(f, &err), 1);
	ck_assert_int_eq(rl_follower_checkpoint(f, &err), 0);
	for (;;) {
		int rc = rl_follower_publish(f, false, &err);

		ck_assert_int_ge(rc, 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (rc == 1)
			break;
		usleep(10000);
	}
	ck_assert_int_ge((t1.tv_sec - t0.tv_sec) * 1000 +
			 (t1.tv_nsec - t0.tv_nsec) / 1000000, 300);
	ck_assert_int_eq(list_one(rlog, "replica-1", &p), 1);
	ck_assert_uint_eq(pos_of(p, &disk1), 11);
	rl_positions_free(p, 1);

	/* a follower reopened reports what its checkpoints hold */
	rl_follower_close(f);
	ck_assert_int_eq(rl_follower_open(rlog, dd, &fo, &f, &err), 0);
	ck_assert_int_eq(rl_follower_step(f, &err), 0);
	ck_assert_int_eq(rl_follower_publish(f, false, &err), 1);
	ck_assert_int_eq(list_one(rlog, "replica-1", &p), 1);
	ck_assert_uint_eq(pos_of(p, &disk1), 11);
	rl_positions_free(p, 1);

	/* a follower without a name never publishes */
	rl_follower_close(f);
	ck_assert_int_eq(rl_positions_forget(rlog, "replica-1", &err), 0);
	fo.name = NULL;
	ck_assert_int_eq(rl_follower_open(rlog, dd, &fo, &f, &err), 0);
	ck_assert_int_eq(rl_follower_step(f, &err), 0);
	ck_assert_int_eq(rl_follower_publish(f, true, &err), 0);
	ck_assert_int_eq(list_one(rlog, "replica-1", &p), 0);
	rl_follower_close(f);
	rl_log_close(rlog);
	rl_log_close(wlog);
}
END_TEST

/* ------------------------------------------------------------ kafka */

/* The registry on Kafka, against librdkafka's in-process mock cluster:
 * the newest report of each key wins, a tombstone forgets, a report is
 * delivered by close at the latest, a message that is not a report is
 * refused with its offset named. */

static struct rl_log *kafka_log(const char *bootstraps)
{
	static const char *const props[] = { "log_level=0", NULL };
	struct rl_log_opts o = { .kafka_namespace = "u",
				 .kafka_timeout_ms = 10000,
				 .kafka_props = props };
	char uri[600];
	struct rl_log *log;
	struct rl_err err = { 0 };

	snprintf(uri, sizeof(uri), "kafka:%s", bootstraps);
	ck_assert_msg(rl_log_open(uri, 0, &o, &log, &err) == 0, "%s", err.msg);
	return log;
}

/* Publishes from a log of its own and closes it: delivered. */
static void kafka_publish(const char *bs, const char *name, int64_t t,
			  uint64_t p1)
{
	struct rl_log *log = kafka_log(bs);

	publish(log, name, t, 1, p1, 0);
	rl_log_close(log);
}

START_TEST(test_kafka_registry)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_t *mrk;
	struct rl_positions *v = NULL;
	struct rl_err err = { 0 };
	struct rl_log *log;
	char errstr[256], bs[512];
	int n;

	rd_kafka_conf_set(conf, "log_level", "0", NULL, 0);
	mrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	ck_assert_ptr_nonnull(mrk);
	mc = rd_kafka_mock_cluster_new(mrk, 3);
	ck_assert_ptr_nonnull(mc);
	snprintf(bs, sizeof(bs), "%s", rd_kafka_mock_cluster_bootstraps(mc));

	/* no topic yet: no followers */
	log = kafka_log(bs);
	n = rl_positions_list(log, &v, &err);
	ck_assert_msg(n == 0, "%d %s", n, err.msg);
	rl_log_close(log);

	ck_assert_int_eq(rd_kafka_mock_topic_create(mc, "repdisk.u.followers",
						    1, 3), 0);
	kafka_publish(bs, "b", 100, 7);
	kafka_publish(bs, "a", 200, 8);
	kafka_publish(bs, "b", 300, 9);		/* replaces b's first */
	log = kafka_log(bs);
	n = rl_positions_list(log, &v, &err);
	ck_assert_msg(n == 2, "%d %s", n, err.msg);
	ck_assert_str_eq(v[0].name, "a");
	ck_assert_str_eq(v[1].name, "b");
	ck_assert_int_eq(v[1].time_ms, 300);
	ck_assert_uint_eq(pos_of(&v[1], &disk1), 9);
	ck_assert_uint_eq(pos_of(&v[0], &disk1), 8);
	rl_positions_free(v, (size_t)n);

	/* forgotten: a tombstone hides the reports before it */
	ck_assert_int_eq(rl_positions_forget(log, "a", &err), 0);
	ck_assert_int_eq(rl_positions_publish(log, &(struct rl_positions){
		.name = "x/y" }, &err), -EINVAL);
	rl_log_close(log);
	log = kafka_log(bs);
	n = rl_positions_list(log, &v, &err);
	ck_assert_msg(n == 1, "%d %s", n, err.msg);
	ck_assert_str_eq(v[0].name, "b");
	rl_positions_free(v, (size_t)n);

	/* a message that is not a report: refused, offset named */
	{
		rd_kafka_t *p;
		rd_kafka_conf_t *pc = rd_kafka_conf_new();

		rd_kafka_conf_set(pc, "bootstrap.servers", bs, NULL, 0);
		rd_kafka_conf_set(pc, "log_level", "0", NULL, 0);
		p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof(errstr));
		ck_assert_ptr_nonnull(p);
		ck_assert_int_eq(rd_kafka_producev(p,
			RD_KAFKA_V_TOPIC("repdisk.u.followers"),
			RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY("c", 1),
			RD_KAFKA_V_VALUE("junk", 4), RD_KAFKA_V_END), 0);
		ck_assert_int_eq(rd_kafka_flush(p, 10000), 0);
		rd_kafka_destroy(p);
	}
	n = rl_positions_list(log, &v, &err);
	ck_assert_int_eq(n, -EBADMSG);
	ck_assert_msg(strstr(err.msg, "topic repdisk.u.followers offset 4") &&
		      strstr(err.msg, "not a report"), "%s", err.msg);
	/* a report replacing it heals the listing */
	kafka_publish(bs, "c", 400, 10);
	n = rl_positions_list(log, &v, &err);
	ck_assert_msg(n == 2, "%d %s", n, err.msg);
	rl_positions_free(v, (size_t)n);
	rl_log_close(log);

	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(mrk);
}
END_TEST

static Suite *positions_suite(void)
{
	Suite *s = suite_create("positions");
	TCase *tc = tcase_create("registry");
	TCase *tf = tcase_create("follower");
	TCase *tk = tcase_create("kafka");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_publish_overwrite_list_forget);
	tcase_add_test(tc, test_bad_names);
	tcase_add_test(tc, test_damaged_and_newer_reports);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tf, 60);
	tcase_add_test(tf, test_follower_reports_checkpoints);
	suite_add_tcase(s, tf);
	tcase_set_timeout(tk, 120);
	tcase_add_test(tk, test_kafka_registry);
	suite_add_tcase(s, tk);
	return s;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	return unit_main(positions_suite());
}
