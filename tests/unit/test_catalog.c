/* Unit tests of the catalog (replog/catalog.c): how catalog records
 * create, rename, change and delete image files in a data directory, what
 * it refuses, that re-applying a record after a crash comes out right, and
 * the data directory's lock.  Shared fixtures are in fixture.c. */
#include "faults.h"
#include "fixture.h"

#include <stdio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

START_TEST(test_catalog_changes_files)
{
	struct datadir d;
	struct rl_catalog *cat;
	struct rl_disk_info info, all[4];
	char path[PATH_MAX], ck[PATH_MAX], u[RL_UUID_STRLEN + 1];
	struct stat st;
	uint8_t *buf;

	datadir_init(&d, "catalog");
	cat = cat_open(&d);
	ck_assert_uint_eq(rl_catalog_next_pos(cat), 0);
	ck_assert_uint_eq(rl_catalog_disks(cat, NULL, 0), 0);

	cat_apply(cat, cat_create(&disk1, "vm1.img", 0600), 0);
	expect_file(&d, "vm1.img", true);
	ck_assert_uint_eq(file_mode(&d, "vm1.img", &st), 0600);
	ck_assert_int_eq(st.st_size, 0);
	if (geteuid() == 0) {
		ck_assert_uint_eq(st.st_uid, 1234);
		ck_assert_uint_eq(st.st_gid, 5678);
	}
	ck_assert_int_eq(rl_catalog_find_name(cat, "vm1.img", &info), 0);
	ck_assert(rl_uuid_eq(&info.uuid, &disk1));
	ck_assert_uint_eq(info.mode, 0600);
	ck_assert_uint_eq(info.uid, 1234);
	ck_assert_int_eq(rl_catalog_find_uuid(cat, &disk1, &info), 0);
	ck_assert_str_eq(info.name, "vm1.img");
	ck_assert_int_eq(rl_catalog_find_name(cat, "nope", NULL), -ENOENT);
	ck_assert_int_eq(rl_catalog_find_uuid(cat, &disk2, NULL), -ENOENT);

	/* the image gets data, and a checkpoint, as an applier would */
	unit_path(path, sizeof(path), "%s/vm1.img", d.dir);
	unit_write_file(path, "payload", 7);
	rl_uuid_format(&disk1, u);
	unit_path(ck, sizeof(ck), "%s/%s", d.ckpt, u);
	unit_write_file(ck, "x", 1);

	cat_apply(cat, cat_rename(&disk1, "vm2.img"), 1);
	expect_file(&d, "vm1.img", false);
	expect_file(&d, "vm2.img", true);
	unit_path(path, sizeof(path), "%s/vm2.img", d.dir);
	ck_assert_uint_eq(unit_read_file(path, &buf), 7);
	ck_assert_mem_eq(buf, "payload", 7);
	free(buf);
	ck_assert_int_eq(rl_catalog_find_name(cat, "vm1.img", NULL), -ENOENT);
	ck_assert_int_eq(rl_catalog_find_name(cat, "vm2.img", &info), 0);
	ck_assert_int_eq(access(ck, F_OK), 0);	/* checkpoints go by uuid */

	cat_apply(cat, (struct rl_record){ .type = RL_SETATTR, .disk = disk1,
					   .mode = 0640, .uid = 42, .gid = 43 },
		  2);
	ck_assert_uint_eq(file_mode(&d, "vm2.img", &st), 0640);
	if (geteuid() == 0) {
		ck_assert_uint_eq(st.st_uid, 42);
		ck_assert_uint_eq(st.st_gid, 43);
	}
	cat_apply(cat, cat_create(&disk2, " spaced name ", 0644), 3);
	cat_apply(cat, cat_create(&disk3, "third", 0), 4);
	expect_file(&d, " spaced name ", true);
	rl_catalog_close(cat);

	/* the state survives a reopen */
	cat = cat_open(&d);
	ck_assert_uint_eq(rl_catalog_next_pos(cat), 5);
	ck_assert_uint_eq(rl_catalog_disks(cat, all, 4), 3);
	ck_assert_int_eq(rl_catalog_find_uuid(cat, &disk1, &info), 0);
	ck_assert_str_eq(info.name, "vm2.img");
	ck_assert_uint_eq(info.mode, 0640);
	ck_assert_uint_eq(info.uid, 42);
	ck_assert_uint_eq(info.gid, 43);
	ck_assert_int_eq(rl_catalog_find_name(cat, " spaced name ", &info), 0);
	ck_assert(rl_uuid_eq(&info.uuid, &disk2));
	ck_assert_int_eq(rl_catalog_find_name(cat, "third", NULL), 0);

	cat_apply(cat, (struct rl_record){ .type = RL_DELETE, .disk = disk1 },
		  5);
	expect_file(&d, "vm2.img", false);
	ck_assert_int_eq(access(ck, F_OK), -1);	/* its checkpoint too */
	ck_assert_int_eq(rl_catalog_find_uuid(cat, &disk1, NULL), -ENOENT);
	rl_catalog_close(cat);
	cat = cat_open(&d);
	ck_assert_uint_eq(rl_catalog_disks(cat, NULL, 0), 2);
	ck_assert_int_eq(rl_catalog_find_uuid(cat, &disk1, NULL), -ENOENT);
	expect_file(&d, " spaced name ", true);
	rl_catalog_close(cat);
}
END_TEST

START_TEST(test_catalog_refuses)
{
	struct datadir d;
	struct rl_catalog *cat;
	struct rl_err err = { 0 };
	struct rl_record r;
	char path[PATH_MAX];
	uint8_t *buf;

	datadir_init(&d, "catrefuse");
	cat = cat_open(&d);
	cat_apply(cat, cat_create(&disk1, "a", 0644), 0);
	cat_apply(cat, cat_create(&disk2, "b", 0644), 1);
	unit_path(path, sizeof(path), "%s/a", d.dir);
	unit_write_file(path, "data of a", 9);

	/* a name in use by another disk */
	r = cat_create(&disk3, "a", 0644);
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(rl_catalog_apply(cat, &r, 2, &err), -EBADMSG);
	ck_assert_msg(strstr(err.msg, "in use"), "message: %s", err.msg);
	r = cat_rename(&disk2, "a");
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(rl_catalog_apply(cat, &r, 2, &err), -EBADMSG);
	ck_assert_msg(strstr(err.msg, "in use"), "message: %s", err.msg);
	/* unknown disks */
	r = cat_rename(&disk3, "c");
	ck_assert_int_eq(rl_catalog_apply(cat, &r, 2, &err), -EBADMSG);
	r = (struct rl_record){ .type = RL_SETATTR, .disk = disk3, .mode = 0 };
	ck_assert_int_eq(rl_catalog_apply(cat, &r, 2, &err), -EBADMSG);
	/* disk records in the catalog */
	r = rec_claim(&disk1, 1);
	ck_assert_int_eq(rl_catalog_apply(cat, &r, 2, &err), -EBADMSG);
	r = rec_range(RL_ZERO, 1, 1, 0, 10);
	ck_assert_int_eq(rl_catalog_apply(cat, &r, 2, &err), -EBADMSG);
	/* an epoch no catalog claim reached: forged */
	r = cat_create(&disk3, "c", 0644);
	r.epoch = 7;
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(rl_catalog_apply(cat, &r, 2, &err), -EBADMSG);
	ck_assert_msg(strstr(err.msg, "epoch 7") &&
		      strstr(err.msg, "written by no writer that claimed"),
		      "message: %s", err.msg);
	/* positions out of order */
	r = cat_create(&disk3, "c", 0644);
	ck_assert_int_eq(rl_catalog_apply(cat, &r, 3, &err), -EINVAL);
	ck_assert_int_eq(rl_catalog_apply(cat, &r, 1, &err), -EINVAL);

	/* nothing changed */
	ck_assert_uint_eq(rl_catalog_next_pos(cat), 2);
	ck_assert_uint_eq(rl_catalog_disks(cat, NULL, 0), 2);
	ck_assert_uint_eq(unit_read_file(path, &buf), 9);
	ck_assert_mem_eq(buf, "data of a", 9);
	free(buf);
	expect_file(&d, "b", true);
	expect_file(&d, "c", false);
	rl_catalog_close(cat);
	cat = cat_open(&d);
	ck_assert_uint_eq(rl_catalog_next_pos(cat), 2);
	/* a DELETE of a disk that is already gone is done */
	cat_apply(cat, (struct rl_record){ .type = RL_DELETE, .disk = disk3 }, 2);
	cat_apply(cat, cat_create(&disk3, "c", 0644), 3);
	rl_catalog_close(cat);
}
END_TEST

/* A crash between a catalog record's file change and its state write:
 * the state is from before, the files from after; re-applying the same
 * record at the same position must come out right. */
START_TEST(test_catalog_crash_idempotent)
{
	struct datadir d;
	struct rl_catalog *cat;
	struct rl_disk_info info;
	char state[PATH_MAX], path[PATH_MAX];
	uint8_t *saved, *buf;
	size_t saved_len;
	struct stat st;
	const struct rl_record ops[] = {
		cat_create(&disk1, "one", 0600),
		cat_rename(&disk1, "two"),
		(struct rl_record){ .type = RL_SETATTR, .disk = disk1,
				    .mode = 0604 },
		cat_create(&disk2, "other", 0644),
		(struct rl_record){ .type = RL_DELETE, .disk = disk1 },
	};

	datadir_init(&d, "catcrash");
	unit_path(state, sizeof(state), "%s/.repdisk/catalog", d.dir);
	cat = cat_open(&d);
	rl_catalog_close(cat);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		cat = cat_open(&d);
		ck_assert_uint_eq(rl_catalog_next_pos(cat), i);
		saved_len = access(state, F_OK) == 0 ?
			    unit_read_file(state, &saved) : 0;
		if (!saved_len)
			saved = NULL;
		cat_apply(cat, ops[i], i);
		rl_catalog_close(cat);
		if (i == 1) {	/* data written under the new name */
			unit_path(path, sizeof(path), "%s/two", d.dir);
			unit_write_file(path, "2", 1);
		}
		/* crash: the state write is lost */
		if (saved)
			unit_write_file(state, saved, saved_len);
		else
			unlink(state);
		free(saved);
		cat = cat_open(&d);
		ck_assert_uint_eq(rl_catalog_next_pos(cat), i);
		cat_apply(cat, ops[i], i);	/* again, after the restart */
		rl_catalog_close(cat);
	}
	cat = cat_open(&d);
	ck_assert_uint_eq(rl_catalog_next_pos(cat), 5);
	ck_assert_uint_eq(rl_catalog_disks(cat, &info, 1), 1);
	ck_assert(rl_uuid_eq(&info.uuid, &disk2));
	ck_assert_str_eq(info.name, "other");
	rl_catalog_close(cat);
	expect_file(&d, "one", false);
	expect_file(&d, "two", false);
	expect_file(&d, "other", true);

	/* a stray file where a new disk goes (no checkpoint of the disk:
	 * its log replays from 0) is emptied, not replayed over */
	unit_path(path, sizeof(path), "%s/stray", d.dir);
	unit_write_file(path, "foreign bytes", 13);
	cat = cat_open(&d);
	cat_apply(cat, cat_create(&disk3, "stray", 0644), 5);
	rl_catalog_close(cat);
	ck_assert_uint_eq(unit_file_size(path), 0);

	/* the rename kept the data; check it on a fresh directory */
	datadir_init(&d, "catcrash2");
	unit_path(state, sizeof(state), "%s/.repdisk/catalog", d.dir);
	cat = cat_open(&d);
	cat_apply(cat, ops[0], 0);
	rl_catalog_close(cat);
	unit_path(path, sizeof(path), "%s/one", d.dir);
	unit_write_file(path, "kept", 4);
	saved_len = unit_read_file(state, &saved);
	cat = cat_open(&d);
	cat_apply(cat, ops[1], 1);
	rl_catalog_close(cat);
	unit_write_file(state, saved, saved_len);
	free(saved);
	cat = cat_open(&d);
	cat_apply(cat, ops[1], 1);
	ck_assert_int_eq(rl_catalog_find_name(cat, "two", NULL), 0);
	rl_catalog_close(cat);
	unit_path(path, sizeof(path), "%s/two", d.dir);
	ck_assert_uint_eq(unit_read_file(path, &buf), 4);
	ck_assert_mem_eq(buf, "kept", 4);
	free(buf);
	ck_assert_uint_eq(file_mode(&d, "two", &st), 0600);
}
END_TEST

START_TEST(test_datadir_lock)
{
	struct datadir d;
	struct rl_err err = { 0 };
	int fd, fd2;

	datadir_init(&d, "lock");
	fd = rl_datadir_lock(d.dir, &err);
	ck_assert_int_ge(fd, 0);
	fd2 = rl_datadir_lock(d.dir, &err);
	ck_assert_int_eq(fd2, -EBUSY);
	ck_assert_msg(strstr(err.msg, "in use"), "message: %s", err.msg);
	close(fd);
	fd2 = rl_datadir_lock(d.dir, &err);
	ck_assert_int_ge(fd2, 0);
	close(fd2);
}
END_TEST


/* Copying a catalog's state with memory running out fails cleanly (it
 * freed one pointer twice once), whichever allocation fails. */
START_TEST(test_catalog_copy_state_oom)
{
	struct datadir a, b;
	struct rl_catalog *cat;
	struct rl_err err = { 0 };
	int rc;

	datadir_init(&a, "oom-from");
	datadir_init(&b, "oom-to");
	cat = cat_open(&a);
	cat_apply(cat, cat_create(&disk1, "vm.img", 0600), 0);
	rl_catalog_close(cat);
	for (int n = 1; n <= 4; n++) {
		fault_strdup_in = n;
		rc = rl_catalog_copy_state(a.dir, b.dir, &err);
		ck_assert_msg(rc == -ENOMEM || (rc == 0 && fault_strdup_in > 0),
			      "strdup %d failing: %d: %s", n, rc, err.msg);
		fault_strdup_in = 0;
	}
	ck_assert_int_eq(rl_catalog_copy_state(a.dir, b.dir, &err), 0);
	cat = cat_open(&b);
	ck_assert_int_eq(rl_catalog_find_name(cat, "vm.img", NULL), 0);
	rl_catalog_close(cat);
}
END_TEST

/* The catalog writer: claims the catalog, makes each change durable and
 * applies it; a second mount is refused, or fences the first with a
 * takeover; a failed append leaves it behind the log, refusing changes
 * at once until it has caught up. */
START_TEST(test_catalog_writer)
{
	struct rl_catalog_writer_opts oa = { .host = "host-a", .what = "log L" };
	struct rl_catalog_writer_opts ob = { .host = "host-b", .what = "log L" };
	struct rl_catalog_writer *a, *b;
	struct datadir da, db;
	struct rl_err err = { 0 };
	struct rl_disk_info info;
	struct rl_record r;
	struct rl_log *log;
	char logdir[PATH_MAX], errf[PATH_MAX], *msg;
	struct stat st;
	int saved;

	unit_tmpdir("cw-log", logdir, sizeof(logdir));
	ck_assert_int_eq(rl_log_open(logdir, RL_LOG_WRITE, NULL, &log, &err), 0);
	datadir_init(&da, "cw-a");
	datadir_init(&db, "cw-b");
	ck_assert_int_eq(rl_catalog_writer_open(log, da.dir, &oa, &a, &err), 0);
	ck_assert_uint_eq(rl_catalog_epoch(rl_catalog_writer_catalog(a)), 1);
	ck_assert_str_eq(rl_catalog_owner(rl_catalog_writer_catalog(a)),
			 "host-a");

	r = cat_create(&disk1, "vm.img", 0640);
	ck_assert_int_eq(rl_catalog_writer_change(a, &r, &err), 0);
	ck_assert_uint_eq(r.epoch, 1);
	expect_file(&da, "vm.img", true);
	r = cat_rename(&disk1, "vm2.img");
	ck_assert_int_eq(rl_catalog_writer_change(a, &r, &err), 0);
	expect_file(&da, "vm.img", false);
	r = (struct rl_record){ .type = RL_SETATTR, .disk = disk1,
				.mode = 0600, .uid = 1, .gid = 2 };
	ck_assert_int_eq(rl_catalog_writer_change(a, &r, &err), 0);
	ck_assert_uint_eq(file_mode(&da, "vm2.img", &st), 0600);
	r = rec_claim(&disk1, 9);
	ck_assert_int_eq(rl_catalog_writer_change(a, &r, &err), -EINVAL);

	/* another mount of the log is refused: the catalog is host-a's */
	ck_assert_int_eq(rl_catalog_writer_open(log, db.dir, &ob, &b, &err),
			 -EBUSY);
	ck_assert_msg(strstr(err.msg, "log L: in use by another writer: its "
			     "catalog belongs to host-a (epoch 1)") &&
		      strstr(err.msg, "--takeover"), "message: %s", err.msg);
	/* ... unless it takes over: then host-a is fenced, said once */
	ob.takeover = true;
	ck_assert_int_eq(rl_catalog_writer_open(log, db.dir, &ob, &b, &err), 0);
	ck_assert_int_eq(rl_catalog_find_uuid(rl_catalog_writer_catalog(b),
					      &disk1, &info), 0);
	ck_assert_str_eq(info.name, "vm2.img");
	unit_path(errf, sizeof(errf), "%s/cw.err", unit_base);
	saved = unit_stderr_begin(errf);
	r = cat_create(&disk2, "x.img", 0600);
	ck_assert_int_eq(rl_catalog_writer_change(a, &r, &err), -EROFS);
	ck_assert_int_eq(rl_catalog_writer_change(a, &r, &err), -EROFS);
	msg = unit_stderr_end(saved, errf);
	ck_assert_msg(strstr(msg, "catalog: fenced: the log's catalog was "
			     "claimed by host-b (epoch 2)") &&
		      !strstr(strstr(msg, "fenced") + 1, "fenced"),
		      "message: %s", msg);
	free(msg);
	ck_assert(rl_catalog_writer_fenced(a));
	expect_file(&da, "x.img", false);
	rl_catalog_writer_close(a);

	/* the log's disk fails an append: b falls behind, and refuses
	 * changes at once (appending nothing) until it has caught up */
	fault_path = logdir;
	fault_sync = true;
	saved = unit_stderr_begin(errf);
	r = cat_create(&disk2, "y.img", 0600);
	ck_assert_int_eq(rl_catalog_writer_change(b, &r, &err), -EIO);
	ck_assert_int_eq(err.layer, RL_ERR_LOG);
	ck_assert(rl_catalog_writer_behind(b));
	r = cat_create(&disk3, "z.img", 0600);
	ck_assert_int_eq(rl_catalog_writer_change(b, &r, &err), -EIO);
	msg = unit_stderr_end(saved, errf);
	ck_assert_msg(strstr(msg, "catalog: log append failed"), "message: %s",
		      msg);
	free(msg);
	fault_sync = false;
	ck_assert_int_eq(rl_catalog_writer_sync(b, &err), 0);
	ck_assert(!rl_catalog_writer_behind(b));
	expect_file(&db, "y.img", false);
	expect_file(&db, "z.img", false);
	rl_catalog_writer_close(b);
	rl_log_close(log);
}
END_TEST

/* A catalog state file is read strictly: numbers are digits alone, a mode
 * is octal permission bits, one line per disk and one disk per name. */
/* Sealed catalog records are held to their numbers (catalog.c): the
 * catalog writer makes one change at a time and claims again after a
 * failed one, so a copy or a hole is an attack, found at once. */
static struct rl_record csealed(struct rl_record r, uint64_t epoch,
				uint64_t seq)
{
	r.key_id = 1;
	r.epoch = epoch;
	r.seq = seq;
	return r;
}

static void cat_refused(struct rl_catalog *cat, struct rl_record r,
			uint64_t pos, const char *want)
{
	struct rl_err err = { 0 };

	ck_assert_int_eq(rl_catalog_apply(cat, &r, pos, &err), -EBADMSG);
	ck_assert_msg(strstr(err.msg, want), "message: %s", err.msg);
	ck_assert_uint_eq(rl_catalog_next_pos(cat), pos);
}

START_TEST(test_catalog_sealed_numbers)
{
	struct datadir d;
	struct rl_catalog *cat;
	static const struct rl_uuid nil;
	struct rl_record c = rec_claim(&nil, 1);
	char path[PATH_MAX];
	uint8_t *text;

	datadir_init(&d, "cat-sealed");
	cat = cat_open(&d);
	cat_apply(cat, csealed(c, 1, 0), 0);
	cat_apply(cat, csealed(cat_create(&disk1, "vm1.img", 0600), 1, 1), 1);
	/* a copy of seq 1 (a replay), then seq 3 (seq 2 deleted) */
	cat_refused(cat, csealed(cat_rename(&disk1, "x.img"), 1, 1), 2,
		    "which was applied already: a copy of an earlier record, "
		    "replayed into the log");
	cat_refused(cat, csealed(cat_rename(&disk1, "x.img"), 1, 3), 2,
		    "seq 3, but seq 1 is the last here: catalog records are "
		    "missing");
	expect_file(&d, "x.img", false);
	cat_apply(cat, csealed(cat_rename(&disk1, "vm2.img"), 1, 2), 2);
	/* unnumbered (seq 0: a writer before numbers, or log skip) */
	cat_apply(cat, csealed(cat_rename(&disk1, "vm3.img"), 1, 0), 3);
	ck_assert_uint_eq(rl_catalog_last_seq(cat), 2);
	rl_catalog_close(cat);

	/* kept in the state file, which is version 2 once numbered */
	unit_path(path, sizeof(path), "%s/.repdisk/catalog", d.dir);
	ck_assert_uint_gt(unit_read_file(path, &text), 0);
	ck_assert_msg(strncmp((char *)text, "repdisk-catalog 2\nnext_pos 4\n"
			      "last_seq 2\n", 40) == 0, "state: %s", text);
	free(text);
	cat = cat_open(&d);
	ck_assert_uint_eq(rl_catalog_last_seq(cat), 2);
	/* a claim ends the epoch before it, and is of the next one */
	cat_refused(cat, csealed(c, 2, 5), 4, "says catalog epoch 1 reached "
		    "seq 5, but seq 2 is the last here");
	cat_refused(cat, csealed(c, 3, 2), 4, "the claims of epochs 2 to 2 "
		    "are missing");
	cat_apply(cat, csealed(c, 2, 2), 4);
	cat_apply(cat, csealed(cat_rename(&disk1, "vm4.img"), 2, 3), 5);
	/* the fenced writer of epoch 1: stale, as ever */
	struct rl_err err = { 0 };
	struct rl_record old = csealed(cat_rename(&disk1, "old.img"), 1, 9);

	ck_assert_int_eq(rl_catalog_apply(cat, &old, 6, &err),
			 RL_IGNORED_STALE);
	/* without a key, numbers are not checked */
	struct rl_record plain = cat_rename(&disk1, "vm5.img");

	plain.epoch = 2;
	plain.seq = 9;
	cat_apply(cat, plain, 7);
	expect_file(&d, "vm5.img", true);
	rl_catalog_close(cat);
}
END_TEST

START_TEST(test_catalog_state_strict)
{
	static const char *const bad[] = {
		"next_pos +1\n",
		"next_pos 1junk\n",
		"next_pos 1\nepoch -2\n",
		"next_pos 1\ndisk 00000000-0000-4000-8000-000000000001 9644 0 0 a\n",
		"next_pos 1\ndisk 00000000-0000-4000-8000-000000000001 644 -1 0 a\n",
		"next_pos 1\ndisk 00000000-0000-4000-8000-000000000001 644 0 0 a\n"
		"disk 00000000-0000-4000-8000-000000000002 644 0 0 a\n",
		"next_pos 1\ndisk 00000000-0000-4000-8000-000000000001 644 0 0 a\n"
		"disk 00000000-0000-4000-8000-000000000001 644 0 0 b\n",
		"next_pos 1\nskip 00000000-0000-4000-8000-000000000001 x\n",
		"next_pos 1\nlast_seq 3\n",	/* version 2 only */
	};
	struct datadir d;
	struct rl_catalog *cat;
	struct rl_err err = { 0 };
	char path[PATH_MAX], text[512];

	datadir_init(&d, "strict");
	unit_path(path, sizeof(path), "%s/.repdisk/catalog", d.dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = snprintf(text, sizeof(text), "repdisk-catalog 1\n%s",
				 bad[i]);

		unit_write_file(path, text, (size_t)n);
		ck_assert_msg(rl_catalog_open(d.dir, &cat, &err) == -EBADMSG,
			      "accepted: %s", bad[i]);
	}
	snprintf(text, sizeof(text), "repdisk-catalog 1\nnext_pos 3\nepoch 2\n"
		 "owner h:/d\ndisk 00000000-0000-4000-8000-000000000001 640 7 8 "
		 "a b\nskip 00000000-0000-4000-8000-000000000001 5 who why\n");
	unit_write_file(path, text, strlen(text));
	ck_assert_int_eq(rl_catalog_open(d.dir, &cat, &err), 0);
	ck_assert_uint_eq(rl_catalog_next_pos(cat), 3);
	ck_assert_uint_eq(rl_catalog_epoch(cat), 2);
	ck_assert_str_eq(rl_catalog_owner(cat), "h:/d");
	{
		struct rl_disk_info info;

		ck_assert_int_eq(rl_catalog_find_name(cat, "a b", &info), 0);
		ck_assert_uint_eq(info.mode, 0640);
		ck_assert_uint_eq(info.uid, 7);
		ck_assert(rl_catalog_skipped(cat, &info.uuid, 5));
	}
	rl_catalog_close(cat);
}
END_TEST

static Suite *catalog_suite(void)
{
	Suite *s = suite_create("catalog");
	TCase *tcat = tcase_create("catalog");

	tcase_set_timeout(tcat, 60);
	tcase_add_test(tcat, test_catalog_changes_files);
	tcase_add_test(tcat, test_catalog_refuses);
	tcase_add_test(tcat, test_catalog_crash_idempotent);
	tcase_add_test(tcat, test_datadir_lock);
	tcase_add_test(tcat, test_catalog_copy_state_oom);
	tcase_add_test(tcat, test_catalog_writer);
	tcase_add_test(tcat, test_catalog_state_strict);
	tcase_add_test(tcat, test_catalog_sealed_numbers);
	suite_add_tcase(s, tcat);
	return s;
}

int main(void)
{
	return fixture_main(catalog_suite());
}
