/* Unit tests of the follower (replog/follow.c): a replica of a primary's
 * file log, catalog and disks, resumed from its checkpoints, with disks
 * deleted while followed and a disk stopped at a record no claim covers;
 * a local disk error in one image (pwrite, fdatasync: faults.c) stops
 * that disk, never the follower, and is not taken for a log that does not
 * answer.  Shared fixtures are in fixture.c. */
#include "faults.h"
#include "fixture.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

START_TEST(test_follower)
{
	struct primary p;
	struct follower fo;
	struct model m1, m2;
	struct rl_catalog *cat;
	struct rl_disk_info info;
	struct rl_err err = { 0 };
	char path[PATH_MAX], u[RL_UUID_STRLEN + 1], ck[PATH_MAX];
	uint8_t data[3][20000];
	uint64_t seed = 4;
	struct rl_record r;

	model_init(&m1);
	model_init(&m2);
	for (int i = 0; i < 3; i++)
		unit_fill_random(data[i], sizeof(data[i]), &seed);
	primary_init(&p, "follow");
	datadir_init(&fo.dd, "follow-replica");

	/* before anything exists the follower has nothing to do */
	follower_open(&fo, p.logdir, 5);
	ck_assert_int_eq(follower_catch_up(&fo), 0);

	primary_catalog(&p, cat_create(&disk1, "a", 0600));
	primary_catalog(&p, cat_create(&disk2, "c", 0644));
	primary_catalog(&p, cat_create(&disk3, "gone", 0644));
	primary_append(&p, &disk1, rec_claim(&disk1, 1));
	for (int i = 0; i < 12; i++) {
		r = rec_write(1, 1 + (uint64_t)i, (uint64_t)i * 3000, data[0],
			      1000 + (size_t)i * 500);
		primary_append(&p, &disk1, r);
		model_apply(&m1, &r);
	}
	primary_catalog(&p, cat_rename(&disk1, "b"));
	primary_append(&p, &disk2, rec_claim(&disk2, 4));
	r = rec_write(4, 1, 100000, data[1], 20000);
	r.disk = disk2;
	primary_append(&p, &disk2, r);
	model_apply(&m2, &r);
	primary_append(&p, &disk3, rec_claim(&disk3, 1));
	primary_catalog(&p, (struct rl_record){ .type = RL_DELETE,
						.disk = disk3 });

	/* catalog (5) + a (13) + c (2); "gone" was deleted first */
	ck_assert_int_eq(follower_steps(&fo), 5 + 13 + 2);
	/* periodic checkpoints happened on the way (every 5 records) */
	{
		struct rl_checkpoint c;

		ck_assert_int_eq(rl_checkpoint_read(fo.dd.ckpt, &disk1, &c,
						    &err), 0);
		ck_assert_uint_eq(c.next_pos, 10);
	}
	ck_assert_int_eq(rl_follower_checkpoint(fo.f, &err), 0);
	expect_file(&fo.dd, "a", false);
	expect_file(&fo.dd, "gone", false);
	img_path(&fo.dd, "b", path, sizeof(path));
	model_check(&m1, path);
	img_path(&fo.dd, "c", path, sizeof(path));
	model_check(&m2, path);
	{
		struct stat st;

		ck_assert_uint_eq(file_mode(&fo.dd, "b", &st), 0600);
	}
	rl_uuid_format(&disk1, u);
	unit_path(ck, sizeof(ck), "%s/%s", fo.dd.ckpt, u);
	ck_assert_int_eq(access(ck, F_OK), 0);
	follower_close(&fo);

	cat = cat_open(&fo.dd);
	ck_assert_uint_eq(rl_catalog_next_pos(cat), 5);
	ck_assert_int_eq(rl_catalog_find_name(cat, "b", &info), 0);
	ck_assert(rl_uuid_eq(&info.uuid, &disk1));
	ck_assert_int_eq(rl_catalog_find_uuid(cat, &disk3, NULL), -ENOENT);
	rl_catalog_close(cat);

	/* more records while the follower is down: it resumes from its
	 * checkpoints and applies only those */
	for (int i = 0; i < 4; i++) {
		r = rec_range(i % 2 ? RL_ZERO : RL_DISCARD, 1, 13 + (uint64_t)i,
			      (uint64_t)i * 7000, 5000);
		primary_append(&p, &disk1, r);
		model_apply(&m1, &r);
	}
	primary_catalog(&p, (struct rl_record){ .type = RL_SETATTR,
						.disk = disk1, .mode = 0640 });
	follower_open(&fo, p.logdir, 5);
	ck_assert_int_eq(follower_catch_up(&fo), 4 + 1);
	img_path(&fo.dd, "b", path, sizeof(path));
	model_check(&m1, path);
	{
		struct stat st;

		ck_assert_uint_eq(file_mode(&fo.dd, "b", &st), 0640);
	}

	/* a disk deleted while followed: its file and checkpoint go, and a
	 * late record of its stream is not applied anywhere */
	{
		static const struct rl_uuid disk4 = { { 4, 4, 4, 4 } };
		char u4[RL_UUID_STRLEN + 1], ck4[PATH_MAX];

		rl_uuid_format(&disk4, u4);
		unit_path(ck4, sizeof(ck4), "%s/%s", fo.dd.ckpt, u4);
		primary_catalog(&p, cat_create(&disk4, "brief", 0644));
		primary_append(&p, &disk4, rec_claim(&disk4, 1));
		r = rec_write(1, 1, 0, data[2], 100);
		primary_append(&p, &disk4, r);
		ck_assert_int_eq(follower_catch_up(&fo), 1 + 2);
		expect_file(&fo.dd, "brief", true);
		ck_assert_int_eq(access(ck4, F_OK), 0);
		primary_catalog(&p, (struct rl_record){ .type = RL_DELETE,
							.disk = disk4 });
		r = rec_write(1, 2, 0, data[2], 100);
		primary_append(&p, &disk4, r);
		ck_assert_int_eq(follower_catch_up(&fo), 1);
		expect_file(&fo.dd, "brief", false);
		ck_assert_int_eq(access(ck4, F_OK), -1);
	}

	/* a record no claim covers stops that disk at that record, with a
	 * message naming the disk and position; nothing after it applies,
	 * and the follower's other disks go on */
	r = rec_write(5, 1, 0, data[2], 100);
	r.disk = disk2;
	primary_append(&p, &disk2, r);
	r = rec_write(4, 2, 0, data[2], 100);
	r.disk = disk2;
	primary_append(&p, &disk2, r);
	memset(&err, 0, sizeof(err));
	{
		char errf[PATH_MAX], *msg;
		int rc, tries = 0, saved;

		unit_path(errf, sizeof(errf), "%s/follower-stderr", unit_base);
		saved = unit_stderr_begin(errf);
		while ((rc = rl_follower_step(fo.f, &err)) > 0 && tries++ < 10)
			;
		msg = unit_stderr_end(saved, errf);
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_eq(rl_follower_stopped(fo.f), 1);
		ck_assert_msg(strstr(msg, "c:") && strstr(msg, "position 2") &&
			      strstr(msg, "epoch 5") &&
			      strstr(msg, "this disk stops there"),
			      "message: %s", msg);
		free(msg);
		/* and again: it stays stopped at that record, said once */
		saved = unit_stderr_begin(errf);
		ck_assert_int_eq(rl_follower_step(fo.f, &err), 0);
		msg = unit_stderr_end(saved, errf);
		ck_assert_uint_eq(rl_follower_stopped(fo.f), 1);
		ck_assert_str_eq(msg, "");
		free(msg);
	}
	img_path(&fo.dd, "c", path, sizeof(path));
	model_check(&m2, path);
	follower_close(&fo);

	primary_close(&p);
	free(m1.b);
	free(m2.b);
}
END_TEST


/* Two disks followed; image "a" hits a local EIO.  The follower must not
 * read it as the log not answering (it would wait for the log forever):
 * disk a stops, said once, disk b goes on, and once the disk answers
 * again a resumes.  Then a's fdatasync fails: its checkpoint is refused,
 * the image is opened again at the retry and replays from its last good
 * checkpoint, and the replica converges. */
START_TEST(test_follower_local_eio)
{
	struct rl_follow_opts o = { .checkpoint_records = 1000, .retry_ms = 1 };
	struct primary p;
	struct follower fo;
	struct model ma, mb;
	struct rl_err err = { 0 };
	char path[PATH_MAX], errf[PATH_MAX], *msg;
	uint8_t data[8192];
	uint64_t seed = 9, seq = 0;
	struct rl_record r;
	int saved, rc;

	model_init(&ma);
	model_init(&mb);
	unit_fill_random(data, sizeof(data), &seed);
	primary_init(&p, "eio");
	datadir_init(&fo.dd, "eio-replica");
	primary_catalog(&p, cat_create(&disk1, "a", 0600));
	primary_catalog(&p, cat_create(&disk2, "b", 0600));
	primary_append(&p, &disk1, rec_claim(&disk1, 1));
	primary_append(&p, &disk2, rec_claim(&disk2, 1));

	/* the fixture's follower, with a retry that comes at once */
	ck_assert_int_eq(rl_log_open(p.logdir, 0, NULL, &fo.log, &err), 0);
	fo.lock = rl_datadir_lock(fo.dd.dir, &err);
	ck_assert_int_ge(fo.lock, 0);
	ck_assert_int_eq(rl_follower_open(fo.log, fo.dd.dir, &o, &fo.f, &err),
			 0);
	follower_catch_up(&fo);
	img_path(&fo.dd, "a", path, sizeof(path));
	fault_path = path;

	for (int i = 0; i < 4; i++) {
		r = rec_write(1, ++seq, (uint64_t)i * 8192, data, sizeof(data));
		primary_append(&p, &disk1, r);
		model_apply(&ma, &r);
		r.disk = disk2;
		primary_append(&p, &disk2, r);
		model_apply(&mb, &r);
	}

	/* a's image cannot be written */
	fault_pwrite = true;
	unit_path(errf, sizeof(errf), "%s/eio.err", unit_base);
	saved = unit_stderr_begin(errf);
	rc = rl_follower_step(fo.f, &err);
	msg = unit_stderr_end(saved, errf);
	ck_assert_msg(rc >= 0, "a local EIO failed the step (%d): %s", rc,
		      err.msg);
	ck_assert_uint_eq(rl_follower_stopped(fo.f), 1);
	ck_assert_msg(strstr(msg, "follow: a: image") &&
		      strstr(msg, "Input/output error") &&
		      strstr(msg, "this disk stops there"), "message: %s", msg);
	free(msg);
	ck_assert_int_eq(rl_follower_checkpoint(fo.f, &err), 0);
	img_path(&fo.dd, "b", path, sizeof(path));
	model_check(&mb, path);

	/* the disk answers again: a resumes by itself */
	fault_pwrite = false;
	usleep(2000);
	follower_catch_up(&fo);
	ck_assert_uint_eq(rl_follower_stopped(fo.f), 0);
	img_path(&fo.dd, "a", path, sizeof(path));
	model_check(&ma, path);

	/* now its fdatasync fails: the checkpoint is refused, sticky */
	r = rec_write(1, ++seq, 3000, data, 5000);
	primary_append(&p, &disk1, r);
	model_apply(&ma, &r);
	ck_assert_int_gt(follower_steps(&fo), 0);
	fault_sync = true;
	saved = unit_stderr_begin(errf);
	rc = rl_follower_checkpoint(fo.f, &err);
	msg = unit_stderr_end(saved, errf);
	ck_assert_msg(rc == 0, "a local fdatasync failure failed the follower "
		      "(%d): %s", rc, err.msg);
	ck_assert_uint_eq(rl_follower_stopped(fo.f), 1);
	ck_assert_msg(strstr(msg, "fdatasync: Input/output error"),
		      "message: %s", msg);
	free(msg);

	/* the retry opens the image again, from its last good checkpoint */
	fault_sync = false;
	usleep(2000);
	follower_catch_up(&fo);
	ck_assert_uint_eq(rl_follower_stopped(fo.f), 0);
	model_check(&ma, path);

	/* a writeback error reported by the checkpoint's paced writeback
	 * (apply.c, "Paced checkpoints") is one too: the wait consumes it,
	 * so the fdatasync after would not see it */
	r = rec_write(1, ++seq, 7000, data, 5000);
	primary_append(&p, &disk1, r);
	model_apply(&ma, &r);
	ck_assert_int_gt(follower_steps(&fo), 0);
	fault_range = true;
	saved = unit_stderr_begin(errf);
	rc = rl_follower_checkpoint(fo.f, &err);
	msg = unit_stderr_end(saved, errf);
	ck_assert_msg(rc == 0, "a local writeback failure failed the follower "
		      "(%d): %s", rc, err.msg);
	ck_assert_uint_eq(rl_follower_stopped(fo.f), 1);
	ck_assert_msg(strstr(msg, "sync_file_range: Input/output error"),
		      "message: %s", msg);
	free(msg);
	fault_range = false;
	usleep(2000);
	follower_catch_up(&fo);
	ck_assert_uint_eq(rl_follower_stopped(fo.f), 0);
	model_check(&ma, path);
	{
		struct rl_checkpoint c;

		ck_assert_int_eq(rl_checkpoint_read(fo.dd.ckpt, &disk1, &c,
						    &err), 0);
		ck_assert_uint_eq(c.next_pos, 1 + seq);
	}
	follower_close(&fo);
	primary_close(&p);
	free(ma.b);
	free(mb.b);
}
END_TEST

static Suite *follow_suite(void)
{
	Suite *s = suite_create("follow");
	TCase *tf = tcase_create("follower");

	tcase_set_timeout(tf, 60);
	tcase_add_test(tf, test_follower);
	tcase_add_test(tf, test_follower_local_eio);
	suite_add_tcase(s, tf);
	return s;
}

int main(void)
{
	return fixture_main(follow_suite());
}
