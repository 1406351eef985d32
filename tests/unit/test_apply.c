/* Unit tests of the applier (replog/apply.c): what records in log order
 * make of an image file, checked byte for byte against a model of the
 * records' meaning; epochs and sequence numbers; checkpoints; and that an
 * image plus its checkpoint converges to the full replay whatever a crash
 * left (contract 2).  Shared fixtures are in fixture.c. */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/falloc.h>

static void apply_expect(struct rl_image *img, struct rl_record r,
			 uint64_t pos, int want)
{
	struct rl_err err = { 0 };
	int rc = rl_image_apply(img, &r, pos, &err);

	ck_assert_msg(rc == want, "apply %s at %llu: %d (%s), expected %d",
		      rl_type_name(r.type), (unsigned long long)pos, rc,
		      err.msg, want);
}

static void checkpoint(struct rl_image *img)
{
	struct rl_err err = { 0 };

	ck_assert_msg(rl_image_checkpoint(img, &err) == 0, "%s", err.msg);
}

/* Does the file system punch holes (so deallocation can be checked)? */
static bool can_punch(const char *dir)
{
	char path[PATH_MAX];
	uint8_t buf[65536];
	bool ok;
	int fd;

	unit_path(path, sizeof(path), "%s/.punch-probe", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	memset(buf, 1, sizeof(buf));
	ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	ok = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		       sizeof(buf)) == 0 &&
	     lseek(fd, 0, SEEK_DATA) < 0 && errno == ENXIO;
	close(fd);
	unlink(path);
	return ok;
}

/* Is [off, off + len) of the file a hole (no data allocated)? */
static bool is_hole(int fd, off_t off, off_t len)
{
	off_t d = lseek(fd, off, SEEK_DATA);

	if (d < 0)
		return errno == ENXIO;
	return d >= off + len;
}

static bool is_data(int fd, off_t off)
{
	return lseek(fd, off, SEEK_DATA) == off;
}

/* ------------------------------------------------------------ applier */

START_TEST(test_apply_in_order)
{
	struct datadir d;
	struct model m;
	char path[PATH_MAX];
	uint8_t a[8192], b[8192], c[100];
	struct rl_image *img;

	datadir_init(&d, "order");
	model_init(&m);
	memset(a, 'A', sizeof(a));
	memset(b, 'B', sizeof(b));
	memset(c, 'C', sizeof(c));
	img = img_open(&d, "disk", &disk1);
	ck_assert_uint_eq(rl_image_next_pos(img), 0);
	ck_assert_uint_eq(rl_image_epoch(img), 0);

	apply_expect(img, rec_claim(&disk1, 1), 0, RL_APPLIED);
	ck_assert_uint_eq(rl_image_epoch(img), 1);
	ck_assert_uint_eq(rl_image_last_seq(img), 0);

	struct rl_record seq[] = {
		rec_write(1, 1, 0, a, sizeof(a)),
		rec_write(1, 2, 4096, b, sizeof(b)),
		rec_write(1, 3, 100, c, sizeof(c)),
		rec_write(1, 4, 12000, a, 1000),
	};

	for (size_t i = 0; i < 4; i++) {
		apply_expect(img, seq[i], 1 + i, RL_APPLIED);
		model_apply(&m, &seq[i]);
	}
	ck_assert_uint_eq(rl_image_next_pos(img), 5);
	ck_assert_uint_eq(rl_image_last_seq(img), 4);
	img_path(&d, "disk", path, sizeof(path));
	model_check(&m, path);
	/* the last write wins where writes overlap */
	{
		uint8_t *buf;

		ck_assert_uint_eq(unit_read_file(path, &buf), 13000);
		ck_assert_int_eq(buf[99], 'A');
		ck_assert_int_eq(buf[100], 'C');
		ck_assert_int_eq(buf[199], 'C');
		ck_assert_int_eq(buf[200], 'A');
		ck_assert_int_eq(buf[4095], 'A');
		ck_assert_int_eq(buf[4096], 'B');
		ck_assert_int_eq(buf[11999], 'B');
		ck_assert_int_eq(buf[12000], 'A');
		ck_assert_int_eq(buf[12287], 'A');
		free(buf);
	}
	rl_image_close(img);
	free(m.b);
}
END_TEST

START_TEST(test_zero_and_discard_punch_holes)
{
	struct datadir d;
	struct model m;
	char path[PATH_MAX];
	size_t n = 1 << 20;
	uint8_t *data = malloc(n);
	uint64_t seed = 5;
	struct rl_image *img;
	struct stat st0, st1;
	bool holes;
	int fd;

	datadir_init(&d, "punch");
	holes = can_punch(d.dir);
	model_init(&m);
	unit_fill_random(data, n, &seed);
	img = img_open(&d, "disk", &disk1);
	fd = rl_image_fd(img);
	apply_expect(img, rec_claim(&disk1, 1), 0, RL_APPLIED);
	struct rl_record w = rec_write(1, 1, 0, data, n);

	apply_expect(img, w, 1, RL_APPLIED);
	model_apply(&m, &w);
	ck_assert_int_eq(fdatasync(fd), 0);
	ck_assert_int_eq(fstat(fd, &st0), 0);
	ck_assert(is_data(fd, 256 << 10));

	struct rl_record ops[] = {
		rec_range(RL_ZERO, 1, 2, 256 << 10, 256 << 10),
		rec_range(RL_DISCARD, 1, 3, 600 << 10, 100 << 10),
		rec_range(RL_ZERO, 1, 4, 1000, 4000),	/* unaligned */
		rec_range(RL_DISCARD, 1, 5, 900001, 3),
	};

	for (size_t i = 0; i < 4; i++) {
		apply_expect(img, ops[i], 2 + i, RL_APPLIED);
		model_apply(&m, &ops[i]);
	}
	img_path(&d, "disk", path, sizeof(path));
	model_check(&m, path);	/* zeros there, data around, same size */
	ck_assert_int_eq(fstat(fd, &st1), 0);
	ck_assert_int_eq(st1.st_size, (off_t)n);
	if (holes) {
		ck_assert(is_hole(fd, 256 << 10, 256 << 10));
		ck_assert(is_data(fd, 512 << 10));
		ck_assert(is_hole(fd, 600 << 10, 100 << 10));
		ck_assert(is_data(fd, 700 << 10));
		ck_assert_msg(st1.st_blocks <= st0.st_blocks - (356 << 10) / 512 + 8,
			      "blocks %lld -> %lld: ranges not deallocated",
			      (long long)st0.st_blocks, (long long)st1.st_blocks);
	} else {
		fprintf(stderr, "note: no hole punching in %s: deallocation "
			"not checked\n", d.dir);
	}
	rl_image_close(img);
	free(m.b);
	free(data);
}
END_TEST

START_TEST(test_zero_and_discard_past_eof)
{
	struct datadir d;
	struct model m;
	char path[PATH_MAX];
	uint8_t a[8192];
	struct rl_image *img;
	uint64_t pos = 0;
	int fd;

	datadir_init(&d, "eof");
	model_init(&m);
	memset(a, 'a', sizeof(a));
	img = img_open(&d, "disk", &disk1);
	fd = rl_image_fd(img);
	img_path(&d, "disk", path, sizeof(path));
	apply_expect(img, rec_claim(&disk1, 1), pos++, RL_APPLIED);

	/* sequence numbers written out: the order of ++ in an initializer
	 * list is unspecified */
	struct rl_record ops[] = {
		rec_write(1, 1, 0, a, 8192),
		/* ZERO across the end extends the image */
		rec_range(RL_ZERO, 1, 2, 4096, 16384),
		/* ZERO wholly past the end extends it too, sparsely */
		rec_range(RL_ZERO, 1, 3, 32768, 8192),
		rec_write(1, 4, 36864, a, 4096),
		/* DISCARD across the end zeroes up to it, and stops there */
		rec_range(RL_DISCARD, 1, 5, 38000, 100000),
		/* DISCARD wholly past the end changes nothing */
		rec_range(RL_DISCARD, 1, 6, 1 << 20, 4096),
	};
	const uint64_t sizes[] = { 8192, 20480, 40960, 40960, 40960, 40960 };

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		apply_expect(img, ops[i], pos++, RL_APPLIED);
		model_apply(&m, &ops[i]);
		ck_assert_uint_eq(unit_file_size(path), sizes[i]);
		model_check(&m, path);
	}
	if (can_punch(d.dir))
		ck_assert(is_hole(fd, 20480, 12288));	/* never written */
	rl_image_close(img);
	free(m.b);
}
END_TEST

START_TEST(test_resize)
{
	struct datadir d;
	struct model m;
	char path[PATH_MAX];
	uint8_t a[16384];
	uint64_t seed = 9;
	struct rl_image *img;

	datadir_init(&d, "resize");
	model_init(&m);
	unit_fill_random(a, sizeof(a), &seed);
	img = img_open(&d, "disk", &disk1);
	img_path(&d, "disk", path, sizeof(path));
	apply_expect(img, rec_claim(&disk1, 1), 0, RL_APPLIED);

	struct rl_record ops[] = {
		rec_range(RL_RESIZE, 1, 1, 1 << 20, 0),
		rec_write(1, 2, 0, a, sizeof(a)),
		rec_range(RL_RESIZE, 1, 3, 1000, 0),	/* shrink */
		rec_range(RL_RESIZE, 1, 4, 10000, 0),	/* grow: zeros */
		rec_range(RL_RESIZE, 1, 5, 0, 0),
		rec_range(RL_RESIZE, 1, 6, 3 << 20, 0),
	};
	const uint64_t sizes[] = { 1 << 20, 1 << 20, 1000, 10000, 0, 3 << 20 };

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		apply_expect(img, ops[i], 1 + i, RL_APPLIED);
		model_apply(&m, &ops[i]);
		ck_assert_uint_eq(unit_file_size(path), sizes[i]);
		model_check(&m, path);
	}
	rl_image_close(img);
	free(m.b);
}
END_TEST

/* Epochs and sequence numbers: stale and duplicate records are ignored,
 * records no claim covers are refused, and a refused record changes
 * nothing. */
START_TEST(test_epochs_and_refusals)
{
	struct datadir d;
	char path[PATH_MAX];
	uint8_t a[4096], b[4096], x[4096], *before, *after;
	size_t len_before, len_after;
	struct rl_image *img;
	struct rl_err err = { 0 };
	struct rl_record r;

	datadir_init(&d, "epochs");
	memset(a, 'A', sizeof(a));
	memset(b, 'B', sizeof(b));
	memset(x, 'X', sizeof(x));
	img = img_open(&d, "disk", &disk1);
	img_path(&d, "disk", path, sizeof(path));

	/* nothing applies before the first claim */
	r = rec_write(1, 1, 0, x, sizeof(x));
	ck_assert_int_eq(rl_image_apply(img, &r, 0, &err), -EBADMSG);
	r = rec_write(0, 1, 0, x, sizeof(x));
	ck_assert_int_eq(rl_image_apply(img, &r, 0, &err), -EBADMSG);
	ck_assert_uint_eq(rl_image_next_pos(img), 0);
	ck_assert_uint_eq(unit_file_size(path), 0);

	apply_expect(img, rec_claim(&disk1, 1), 0, RL_APPLIED);
	apply_expect(img, rec_write(1, 1, 0, a, sizeof(a)), 1, RL_APPLIED);
	apply_expect(img, rec_claim(&disk1, 2), 2, RL_APPLIED);
	ck_assert_uint_eq(rl_image_epoch(img), 2);
	ck_assert_uint_eq(rl_image_last_seq(img), 0);
	/* the fenced writer of epoch 1 goes on: ignored */
	apply_expect(img, rec_write(1, 2, 0, x, sizeof(x)), 3, RL_IGNORED_STALE);
	apply_expect(img, rec_range(RL_ZERO, 1, 3, 0, 4096), 4,
		     RL_IGNORED_STALE);
	apply_expect(img, rec_range(RL_RESIZE, 1, 4, 0, 0), 5,
		     RL_IGNORED_STALE);
	/* an older or equal claim does not take the disk back */
	apply_expect(img, rec_claim(&disk1, 1), 6, RL_IGNORED_STALE);
	apply_expect(img, rec_claim(&disk1, 2), 7, RL_IGNORED_STALE);
	ck_assert_uint_eq(rl_image_epoch(img), 2);
	ck_assert_uint_eq(rl_image_next_pos(img), 8);
	apply_expect(img, rec_write(2, 1, 4096, b, sizeof(b)), 8, RL_APPLIED);
	/* duplicates of sequence numbers already applied */
	apply_expect(img, rec_write(2, 1, 4096, x, sizeof(x)), 9, RL_IGNORED_DUP);
	apply_expect(img, rec_range(RL_ZERO, 2, 1, 0, 8192), 10, RL_IGNORED_DUP);
	apply_expect(img, rec_range(RL_RESIZE, 2, 0, 0, 0), 11, RL_IGNORED_DUP);
	ck_assert_uint_eq(rl_image_last_seq(img), 1);

	len_before = unit_read_file(path, &before);
	ck_assert_uint_eq(len_before, 8192);
	ck_assert_int_eq(before[0], 'A');
	ck_assert_int_eq(before[4096], 'B');

	/* a newer epoch with no claim: refused, nothing moves */
	r = rec_write(3, 1, 0, x, sizeof(x));
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(rl_image_apply(img, &r, 12, &err), -EBADMSG);
	ck_assert_msg(strstr(err.msg, "epoch 3") && strstr(err.msg, "position 12"),
		      "message: %s", err.msg);
	r = rec_range(RL_RESIZE, 3, 1, 0, 0);
	ck_assert_int_eq(rl_image_apply(img, &r, 12, &err), -EBADMSG);
	/* another disk's record */
	r = rec_write(2, 2, 0, x, sizeof(x));
	r.disk = disk2;
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(rl_image_apply(img, &r, 12, &err), -EBADMSG);
	ck_assert_msg(strstr(err.msg, "another disk"), "message: %s", err.msg);
	r = rec_claim(&disk2, 9);
	ck_assert_int_eq(rl_image_apply(img, &r, 12, &err), -EBADMSG);
	/* a catalog record in a disk stream */
	r = (struct rl_record){ .type = RL_CREATE, .disk = disk1, .name = "x" };
	ck_assert_int_eq(rl_image_apply(img, &r, 12, &err), -EBADMSG);
	r = (struct rl_record){ .type = RL_DELETE, .disk = disk1 };
	ck_assert_int_eq(rl_image_apply(img, &r, 12, &err), -EBADMSG);
	/* positions out of order */
	r = rec_write(2, 2, 0, x, sizeof(x));
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(rl_image_apply(img, &r, 13, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "out of order"), "message: %s", err.msg);
	ck_assert_int_eq(rl_image_apply(img, &r, 11, &err), -EINVAL);
	ck_assert_int_eq(rl_image_apply(img, &r, 0, &err), -EINVAL);

	ck_assert_uint_eq(rl_image_next_pos(img), 12);
	ck_assert_uint_eq(rl_image_epoch(img), 2);
	ck_assert_uint_eq(rl_image_last_seq(img), 1);
	len_after = unit_read_file(path, &after);
	ck_assert_uint_eq(len_after, len_before);
	ck_assert_mem_eq(after, before, len_before);
	free(after);

	/* and the stream goes on where it was */
	apply_expect(img, rec_write(2, 2, 0, b, 100), 12, RL_APPLIED);
	ck_assert_uint_eq(rl_image_last_seq(img), 2);
	len_after = unit_read_file(path, &after);
	ck_assert_int_eq(after[0], 'B');
	ck_assert_int_eq(after[100], 'A');
	free(after);
	free(before);
	rl_image_close(img);
}
END_TEST

/* Sealed records are held to their sequence numbers (apply.c, "Gaps"):
 * past a hole they are void, far past it or across a claim that says the
 * epoch reached further they stop the disk.  key_id is set by hand: the
 * applier judges the decoded record, and what the key protects is tested
 * in test_keys. */
static struct rl_record sealed(struct rl_record r)
{
	r.key_id = 1;
	return r;
}

static bool skip_all(void *arg, const struct rl_uuid *disk, uint64_t pos)
{
	(void)arg;
	(void)disk;
	(void)pos;
	return true;
}

static void apply_refused(struct rl_image *img, struct rl_record r,
			  uint64_t pos, const char *want)
{
	struct rl_err err = { 0 };
	uint64_t next = rl_image_next_pos(img), seq = rl_image_last_seq(img);

	ck_assert_int_eq(rl_image_apply(img, &r, pos, &err), -EBADMSG);
	ck_assert_msg(strstr(err.msg, want), "message: %s", err.msg);
	ck_assert_msg(strstr(err.msg, "missing"), "message: %s", err.msg);
	ck_assert_uint_eq(rl_image_next_pos(img), next);	/* stopped */
	ck_assert_uint_eq(rl_image_last_seq(img), seq);
}

START_TEST(test_sealed_gaps)
{
	struct datadir d;
	char path[PATH_MAX];
	uint8_t a[4096], b[4096];
	struct rl_image *img;
	uint8_t *got;
	uint64_t pos = 0;

	datadir_init(&d, "gaps");
	memset(a, 'A', sizeof(a));
	memset(b, 'B', sizeof(b));
	img = img_open(&d, "disk", &disk1);
	img_path(&d, "disk", path, sizeof(path));

	/* the first sealed claim is epoch 1: one of epoch 3 first means the
	 * claims before it are gone */
	apply_refused(img, sealed(rec_claim(&disk1, 3)), pos,
		      "epochs 1 to 2 are missing");
	apply_expect(img, sealed(rec_claim(&disk1, 1)), pos++, RL_APPLIED);
	apply_expect(img, sealed(rec_write(1, 1, 0, a, sizeof(a))), pos++,
		     RL_APPLIED);
	/* seq 2 failed: 3 and 4 landed after it, and are void (their
	 * writer got EIO and claims again) */
	apply_expect(img, sealed(rec_write(1, 3, 0, b, sizeof(b))), pos++,
		     RL_IGNORED_GAP);
	apply_expect(img, sealed(rec_write(1, 4, 4096, b, sizeof(b))), pos++,
		     RL_IGNORED_GAP);
	ck_assert_uint_eq(rl_image_last_seq(img), 1);
	/* the writer's claim again: epoch 2 from seq 1, what it applied */
	struct rl_record c = sealed(rec_claim(&disk1, 2));

	c.seq = 1;
	apply_expect(img, c, pos++, RL_APPLIED);
	ck_assert_uint_eq(rl_image_last_seq(img), 1);
	apply_expect(img, sealed(rec_write(2, 2, 4096, a, sizeof(a))), pos++,
		     RL_APPLIED);
	/* a late copy of the void record: older epoch, stale */
	apply_expect(img, sealed(rec_write(1, 3, 0, b, sizeof(b))), pos++,
		     RL_IGNORED_STALE);
	ck_assert_uint_eq(unit_read_file(path, &got), 8192);
	ck_assert_int_eq(got[0], 'A');
	ck_assert_int_eq(got[4096], 'A');
	free(got);

	/* seq 3 deleted: 4 .. 3 + RL_SEQ_WINDOW can be an honest hole, one
	 * further cannot (its writer knew 3 was durable) */
	apply_expect(img, sealed(rec_write(2, 4, 0, b, sizeof(b))), pos++,
		     RL_IGNORED_GAP);
	apply_expect(img, sealed(rec_write(2, 3 + RL_SEQ_WINDOW, 0, b, 16)),
		     pos++, RL_IGNORED_GAP);
	apply_refused(img, sealed(rec_write(2, 4 + RL_SEQ_WINDOW, 0, b, 16)),
		      pos, "seq 2 is the last here");
	/* ... and a claim that says epoch 2 reached seq 9 */
	c = sealed(rec_claim(&disk1, 3));
	c.seq = 9;
	apply_refused(img, c, pos, "reached seq 9");
	/* a claim that skips epoch 3 */
	c = sealed(rec_claim(&disk1, 4));
	c.seq = 2;
	apply_refused(img, c, pos, "epochs 3 to 3 are missing");
	/* the claim that says what was applied goes */
	c = sealed(rec_claim(&disk1, 3));
	c.seq = 2;
	apply_expect(img, c, pos++, RL_APPLIED);

	/* a position passed by log skip (its record unreadable, maybe of
	 * this epoch): the next record is taken as it comes, and until then
	 * a checkpoint keeps the skipped position */
	rl_image_set_skip(img, skip_all, NULL);
	ck_assert(rl_image_skip_unreadable(img, "test"));
	{
		struct rl_checkpoint ck;

		rl_image_snapshot(img, &ck);
		ck_assert_uint_eq(ck.next_pos, pos);
	}
	pos++;
	apply_expect(img, sealed(rec_write(3, 4, 0, a, 16)), pos++, RL_APPLIED);
	apply_expect(img, sealed(rec_write(3, 6, 0, a, 16)), pos++,
		     RL_IGNORED_GAP);
	rl_image_set_skip(img, NULL, NULL);

	/* without a key a hole is applied across, as ever */
	apply_expect(img, rec_write(3, 9, 0, b, sizeof(b)), pos++, RL_APPLIED);
	ck_assert_uint_eq(rl_image_last_seq(img), 9);
	rl_image_close(img);
}
END_TEST

START_TEST(test_checkpoint_reopen)
{
	struct datadir d;
	char path[PATH_MAX], ck[PATH_MAX], u[RL_UUID_STRLEN + 1];
	uint8_t a[512];
	struct rl_image *img;
	struct rl_checkpoint c;
	struct rl_err err = { 0 };
	struct stat st0, st1;

	datadir_init(&d, "ckpt");
	memset(a, 7, sizeof(a));
	rl_uuid_format(&disk1, u);
	unit_path(ck, sizeof(ck), "%s/%s", d.ckpt, u);

	img = img_open(&d, "disk", &disk1);
	ck_assert_int_eq(rl_checkpoint_read(d.ckpt, &disk1, &c, &err), -ENOENT);
	ck_assert_uint_eq(c.next_pos, 0);
	checkpoint(img);	/* nothing applied: nothing written */
	ck_assert_int_eq(access(ck, F_OK), -1);
	apply_expect(img, rec_claim(&disk1, 3), 0, RL_APPLIED);
	for (uint64_t i = 1; i <= 5; i++)
		apply_expect(img, rec_write(3, i + 10, i * 512, a, sizeof(a)), i,
			     RL_APPLIED);
	apply_expect(img, rec_write(3, 11, 0, a, 1), 6, RL_IGNORED_DUP);
	checkpoint(img);
	ck_assert_int_eq(stat(ck, &st0), 0);
	checkpoint(img);	/* unchanged: not rewritten */
	ck_assert_int_eq(stat(ck, &st1), 0);
	ck_assert_uint_eq(st0.st_ino, st1.st_ino);
	ck_assert_int_eq(rl_checkpoint_read(d.ckpt, &disk1, &c, &err), 0);
	ck_assert_uint_eq(c.next_pos, 7);
	ck_assert_uint_eq(c.epoch, 3);
	ck_assert_uint_eq(c.last_seq, 15);
	/* applied after the checkpoint, then closed without one */
	apply_expect(img, rec_write(3, 16, 0, a, 10), 7, RL_APPLIED);
	rl_image_close(img);

	img = img_open(&d, "disk", &disk1);
	ck_assert_uint_eq(rl_image_next_pos(img), 7);
	ck_assert_uint_eq(rl_image_epoch(img), 3);
	ck_assert_uint_eq(rl_image_last_seq(img), 15);
	/* the resumed applier makes the same decisions */
	apply_expect(img, rec_write(3, 15, 0, a, 10), 7, RL_IGNORED_DUP);
	apply_expect(img, rec_write(2, 99, 0, a, 10), 8, RL_IGNORED_STALE);
	apply_expect(img, rec_write(3, 16, 0, a, 10), 9, RL_APPLIED);
	checkpoint(img);
	rl_image_close(img);
	ck_assert_int_eq(rl_checkpoint_read(d.ckpt, &disk1, &c, NULL), 0);
	ck_assert_uint_eq(c.next_pos, 10);

	/* the image files themselves hold only image bytes */
	img_path(&d, "disk", path, sizeof(path));
	ck_assert_uint_eq(unit_file_size(path), 6 * 512);

	/* a damaged checkpoint, or another disk's, is refused */
	unit_write_file(ck, "repdisk-checkpoint 1\ngarbage\n", 29);
	ck_assert_int_eq(rl_image_open(path, d.ckpt, &disk1, &img, &err),
			 -EBADMSG);
	ck_assert_msg(strstr(err.msg, u), "message: %s", err.msg);
	/* ... and so is one whose numbers are not just digits (a sign, a
	 * blank, a tail), or that holds lines it does not know */
	{
		static const char *const bad[] = {
			"next_pos -1\nepoch 3\nlast_seq 4\n",
			"next_pos 1\nepoch +3\nlast_seq 4\n",
			"next_pos 1\nepoch 3\nlast_seq 4junk\n",
			"next_pos 1\nepoch  3\nlast_seq 4\n",
			"next_pos 1\nepoch 3\nlast_seq 4\nowner a\nmore 1\n",
			"next_pos 1\nepoch 3\nlast_seq 99999999999999999999\n",
		};
		char text[512];

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			int n = snprintf(text, sizeof(text), "repdisk-checkpoint "
					 "1\ndisk %s\n%s", u, bad[i]);

			unit_write_file(ck, text, (size_t)n);
			ck_assert_msg(rl_checkpoint_read(d.ckpt, &disk1, &c,
							 &err) == -EBADMSG,
				      "accepted: %s", bad[i]);
		}
		snprintf(text, sizeof(text), "repdisk-checkpoint 1\ndisk %s\n"
			 "next_pos 1\nepoch 3\nlast_seq 4\nowner h:/d\n", u);
		unit_write_file(ck, text, strlen(text));
		ck_assert_int_eq(rl_checkpoint_read(d.ckpt, &disk1, &c, &err), 0);
		ck_assert_str_eq(c.owner, "h:/d");
	}
	{
		char other[RL_UUID_STRLEN + 1], text[256];
		int n;

		rl_uuid_format(&disk2, other);
		n = snprintf(text, sizeof(text), "repdisk-checkpoint 1\ndisk %s\n"
			     "next_pos 1\nepoch 1\nlast_seq 0\n", other);
		unit_write_file(ck, text, (size_t)n);
		ck_assert_int_eq(rl_image_open(path, d.ckpt, &disk1, &img,
					       &err), -EBADMSG);
	}
}
END_TEST

/* A follower's image takes large writes with O_DIRECT (apply.c, "Direct
 * writes"): the same bytes as through the page cache, whatever the
 * alignment, with small writes, zeros and resizes over and between them,
 * and after a checkpoint and a reopen. */
START_TEST(test_direct_writes)
{
	struct datadir d;
	struct model m;
	char path[PATH_MAX];
	size_t cap = MODEL_CAP - (1 << 20);
	uint8_t *data = malloc(MODEL_CAP);
	uint64_t seed = 77, pos = 0, seq = 0;
	struct rl_image *img;

	ck_assert_ptr_nonnull(data);
	unit_fill_random(data, MODEL_CAP, &seed);
	datadir_init(&d, "direct");
	model_init(&m);
	img = img_open(&d, "disk", &disk1);
	img_path(&d, "disk", path, sizeof(path));
	if (!rl_image_set_direct(img))
		fprintf(stderr, "note: no O_DIRECT in %s: direct writes not "
			"exercised\n", d.dir);
	apply_expect(img, rec_claim(&disk1, 1), pos++, RL_APPLIED);
	for (int i = 0; i < 300; i++) {
		uint64_t k = unit_rand(&seed) % 100, off;
		size_t len;
		struct rl_record r;

		if (k < 60) {
			/* large: unaligned ends, or none, or several
			 * buffers of the image's aligned copy */
			len = (64 << 10) + unit_rand(&seed) % (2500 << 10);
			off = unit_rand(&seed) % (cap - len);
			if (k < 20)
				off &= ~4095ull, len &= ~4095ull;
		} else if (k < 85) {
			/* small, over what went direct */
			len = 1 + unit_rand(&seed) % 12000;
			off = unit_rand(&seed) % (cap - len);
		} else if (k < 95) {
			r = rec_range(k < 90 ? RL_ZERO : RL_DISCARD, 1, ++seq,
				      unit_rand(&seed) % cap,
				      1 + unit_rand(&seed) % (300 << 10));
			goto apply;
		} else {
			r = rec_range(RL_RESIZE, 1, ++seq,
				      unit_rand(&seed) % cap, 0);
			goto apply;
		}
		r = rec_write(1, ++seq, off, data + unit_rand(&seed) % (1 << 20),
			      len);
apply:
		apply_expect(img, r, pos++, RL_APPLIED);
		model_apply(&m, &r);
		if (i % 60 == 59)
			model_check(&m, path);
	}
	checkpoint(img);
	model_check(&m, path);
	rl_image_close(img);
	img = img_open(&d, "disk", &disk1);
	ck_assert_uint_eq(rl_image_next_pos(img), pos);
	model_check(&m, path);
	rl_image_close(img);
	free(m.b);
	free(data);
}
END_TEST

/* ------------------------------------------------ crash and convergence */

struct script {
	struct rl_record *r;
	uint8_t **data;
	size_t n;
	uint64_t final_epoch, final_seq;
};

/* A random but reproducible history of one disk: a claim, writes, zeros,
 * discards and resizes; then a second claim, late records of the first
 * writer, a duplicate, and more records of the second. */
static void script_make(struct script *s, uint64_t seed, struct model *m)
{
	size_t cap = 400;
	uint64_t epoch = 1, seq = 0;

	s->r = calloc(cap, sizeof(*s->r));
	s->data = calloc(cap, sizeof(*s->data));
	s->n = 0;
	ck_assert_ptr_nonnull(s->r);
	ck_assert_ptr_nonnull(s->data);
	s->r[s->n++] = rec_claim(&disk1, 1);
	for (int phase = 0; phase < 2; phase++) {
		for (int i = 0; i < 150; i++) {
			uint64_t k = unit_rand(&seed) % 100;
			struct rl_record r;

			if (k < 55) {
				size_t len = 1 + unit_rand(&seed) % 65536;
				uint64_t off = unit_rand(&seed) % (768 << 10);
				uint8_t *p = malloc(len);

				if (k < 20) {	/* block aligned */
					off &= ~4095ull;
					len = (len + 4095) & ~4095ull;
					p = realloc(p, len);
				}
				if (k % 2)
					unit_fill_random(p, len, &seed);
				else
					memset(p, (int)(k + 1), len);
				s->data[s->n] = p;
				r = rec_write(epoch, ++seq, off, p, len);
			} else if (k < 85) {
				uint64_t off = unit_rand(&seed) % (900 << 10);
				uint64_t len = 1 + unit_rand(&seed) % (200 << 10);

				if (k < 65) {
					off &= ~4095ull;
					len = (len + 4095) & ~4095ull;
				}
				r = rec_range(k < 70 ? RL_ZERO : RL_DISCARD,
					      epoch, ++seq, off, len);
			} else if (k < 90) {
				r = rec_range(RL_RESIZE, epoch, ++seq,
					      unit_rand(&seed) % (1 << 20), 0);
			} else {
				/* a duplicate of the last record */
				r = s->r[s->n - 1];
				if (r.type == RL_CLAIM)
					continue;
				if (r.type == RL_WRITE) {
					s->data[s->n] = malloc(r.length);
					memcpy(s->data[s->n], r.data, r.length);
					r.data = s->data[s->n];
				}
				s->r[s->n++] = r;
				continue;
			}
			model_apply(m, &r);
			s->r[s->n++] = r;
		}
		if (phase == 0) {
			/* a new writer claims; the old one has a few more
			 * records in flight, which must be ignored */
			s->r[s->n++] = rec_claim(&disk1, 2);
			for (int i = 0; i < 5; i++) {
				s->data[s->n] = malloc(4096);
				memset(s->data[s->n], 0xee, 4096);
				s->r[s->n] = rec_write(1, ++seq,
						       (uint64_t)i * 4096,
						       s->data[s->n], 4096);
				s->n++;
			}
			epoch = 2;
			seq = 0;
		}
	}
	s->final_epoch = epoch;
	s->final_seq = seq;
	ck_assert_uint_le(s->n, cap);
}

static void script_free(struct script *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->data[i]);
	free(s->data);
	free(s->r);
}

/* Applies records from the stream to img until its next position is
 * `until`. */
static void apply_until(struct rl_stream *st, struct rl_image *img,
			uint64_t until)
{
	struct rl_err err = { 0 };
	struct rl_reader *r;
	struct rl_record rec;
	uint64_t pos;

	if (rl_image_next_pos(img) >= until)
		return;
	ck_assert_int_eq(rl_reader_open(st, rl_image_next_pos(img), &r, &err), 0);
	while (rl_image_next_pos(img) < until) {
		ck_assert_int_eq(rl_reader_next(r, &rec, &pos, 0, &err), 1);
		ck_assert_msg(rl_image_apply(img, &rec, pos, &err) >= 0, "%s",
			      err.msg);
	}
	rl_reader_close(r);
}

/* Leaves a mix of the image at the checkpoint and the image after: each
 * 4 KiB block from either, and either size, as a crash can. */
static void mix_crash_state(const char *path, const uint8_t *ck, size_t ck_len,
			    uint64_t *seed)
{
	uint8_t *post, *mix;
	size_t post_len = unit_read_file(path, &post);
	size_t len = unit_rand(seed) % 2 ? post_len : ck_len;

	mix = calloc(1, len + 1);
	for (size_t off = 0; off < len; off += 4096) {
		size_t n = len - off < 4096 ? len - off : 4096;
		bool from_ck = unit_rand(seed) % 2;
		const uint8_t *src = from_ck ? ck : post;
		size_t src_len = from_ck ? ck_len : post_len;

		for (size_t i = 0; i < n; i++)
			mix[off + i] = off + i < src_len ? src[off + i] : 0;
	}
	unit_write_file(path, mix, len);
	free(mix);
	free(post);
}

/* Contract 2: an image plus its checkpoint equals the replay of the log
 * up to it, whatever a crash left after the checkpoint. */
START_TEST(test_crash_replay_converges)
{
	char logdir[PATH_MAX], ref_path[PATH_MAX];
	struct datadir ref;
	struct script sc;
	struct model m;
	struct rl_log *log;
	struct rl_stream *st;
	struct rl_image *img;
	struct rl_err err = { 0 };
	uint64_t seed = 1234 + (uint64_t)_i, n;
	int rc;

	model_init(&m);
	script_make(&sc, seed, &m);
	n = sc.n;
	unit_tmpdir("crashlog", logdir, sizeof(logdir));
	log = NULL;
	{
		struct rl_log_opts o = { .quiet = true, .segment_bytes = 1 << 20 };

		ck_assert_int_eq(rl_log_open(logdir, RL_LOG_WRITE, &o, &log,
					     &err), 0);
	}
	ck_assert_int_eq(rl_log_stream(log, &disk1, &st, &err), 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t *buf;
		size_t len = unit_encode(&sc.r[i], 4096, &buf);

		ck_assert_int_eq(rl_log_append_sync(st, buf, len, NULL), (int64_t)i);
		free(buf);
	}

	/* a full replay into a fresh data directory is the reference, and
	 * means what the records say */
	datadir_init(&ref, "ref");
	img = img_open(&ref, "disk", &disk1);
	rc = rl_replay(st, img, &err);
	ck_assert_msg(rc == (int)n, "replay: %d: %s", rc, err.msg);
	ck_assert_uint_eq(rl_image_next_pos(img), n);
	ck_assert_uint_eq(rl_image_epoch(img), 2);
	ck_assert_uint_eq(rl_image_last_seq(img), sc.final_seq);
	ck_assert_int_eq(rl_replay(st, img, &err), 0);
	rl_image_close(img);
	img_path(&ref, "disk", ref_path, sizeof(ref_path));
	model_check(&m, ref_path);

	const uint64_t points[][2] = {
		{ 0, 40 }, { 37, 200 }, { 150, 151 }, { 151, 158 },
		{ 160, n }, { n / 2, n - 1 }, { n - 1, n }, { 10, 10 },
	};

	for (size_t p = 0; p < sizeof(points) / sizeof(points[0]); p++) {
		for (int mixed = 0; mixed < 2; mixed++) {
			uint64_t ck = points[p][0], crash = points[p][1];
			struct datadir dd;
			char path[PATH_MAX];
			uint8_t *ck_bytes;
			size_t ck_len;
			uint64_t ck_epoch, ck_seq;
			int64_t diff;

			datadir_init(&dd, "crash");
			img_path(&dd, "disk", path, sizeof(path));
			img = img_open(&dd, "disk", &disk1);
			apply_until(st, img, ck);
			checkpoint(img);
			ck_epoch = rl_image_epoch(img);
			ck_seq = rl_image_last_seq(img);
			ck_len = unit_read_file(path, &ck_bytes);
			apply_until(st, img, crash);
			rl_image_close(img);	/* crash: no checkpoint */
			if (mixed)
				mix_crash_state(path, ck_bytes, ck_len, &seed);
			free(ck_bytes);

			img = img_open(&dd, "disk", &disk1);
			ck_assert_uint_eq(rl_image_next_pos(img), ck);
			ck_assert_uint_eq(rl_image_epoch(img), ck_epoch);
			ck_assert_uint_eq(rl_image_last_seq(img), ck_seq);
			rc = rl_replay(st, img, &err);
			ck_assert_msg(rc == (int)(n - ck), "replay: %d: %s", rc,
				      err.msg);
			ck_assert_uint_eq(rl_image_epoch(img), 2);
			ck_assert_uint_eq(rl_image_last_seq(img), sc.final_seq);
			rl_image_close(img);
			diff = unit_file_cmp(path, ref_path);
			ck_assert_msg(diff < 0, "checkpoint %llu, crash %llu%s: "
				      "image differs from the full replay at "
				      "byte %lld", (unsigned long long)ck,
				      (unsigned long long)crash,
				      mixed ? " (mixed state)" : "",
				      (long long)diff);
			unit_rm_rf(dd.dir);
		}
	}
	rl_log_close(log);
	script_free(&sc);
	free(m.b);
}
END_TEST

static Suite *apply_suite(void)
{
	Suite *s = suite_create("apply");
	TCase *tc = tcase_create("applier");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_apply_in_order);
	tcase_add_test(tc, test_zero_and_discard_punch_holes);
	tcase_add_test(tc, test_zero_and_discard_past_eof);
	tcase_add_test(tc, test_resize);
	tcase_add_test(tc, test_epochs_and_refusals);
	tcase_add_test(tc, test_sealed_gaps);
	tcase_add_test(tc, test_checkpoint_reopen);
	tcase_add_test(tc, test_direct_writes);
	tcase_add_loop_test(tc, test_crash_replay_converges, 0, 3);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return fixture_main(apply_suite());
}
