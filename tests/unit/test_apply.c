/* Unit tests of the applier (replog/apply.c), the catalog (catalog.c), the
 * writer pipeline (writer.c) and the follower (follow.c): what ends up in
 * image files and data directories, checked byte for byte against a model
 * of the records' meaning and against independent replays. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <sodium.h>

static const struct rl_uuid disk1 = { { 0xa1, 0x1c, 0xe0, 0x01, 0x02, 0x03,
					0x44, 0x05, 0x86, 0x07, 0x08, 0x09,
					0x0a, 0x0b, 0x0c, 0x0d } };
static const struct rl_uuid disk2 = { { 0xb0, 0xb0, 0xe0, 0x01, 0x02, 0x03,
					0x44, 0x05, 0x86, 0x07, 0x08, 0x09,
					0x0a, 0x0b, 0x0c, 0x0d } };
static const struct rl_uuid disk3 = { { 0xc3, 0xc3, 0xe0, 0x01, 0x02, 0x03,
					0x44, 0x05, 0x86, 0x07, 0x08, 0x09,
					0x0a, 0x0b, 0x0c, 0x0d } };

/* ------------------------------------------------------------ helpers */

struct datadir {
	char dir[PATH_MAX];
	char ckpt[PATH_MAX];
};

static void datadir_init(struct datadir *d, const char *tag)
{
	struct rl_err err = { 0 };

	unit_tmpdir(tag, d->dir, sizeof(d->dir));
	ck_assert_msg(rl_datadir_prepare(d->dir, &err) == 0, "%s", err.msg);
	unit_path(d->ckpt, sizeof(d->ckpt), "%s/.repdisk/ckpt", d->dir);
}

static struct rl_image *img_open(const struct datadir *d, const char *name,
				 const struct rl_uuid *u)
{
	char path[PATH_MAX];
	struct rl_err err = { 0 };
	struct rl_image *img = NULL;
	int rc;

	unit_path(path, sizeof(path), "%s/%s", d->dir, name);
	rc = rl_image_open(path, d->ckpt, u, &img, &err);
	ck_assert_msg(rc == 0, "image %s: %d: %s", path, rc, err.msg);
	return img;
}

static struct rl_record rec_claim(const struct rl_uuid *u, uint64_t epoch)
{
	return (struct rl_record){ .type = RL_CLAIM, .disk = *u,
				   .epoch = epoch, .data = "h", .data_len = 1 };
}

static struct rl_record rec_write(uint64_t epoch, uint64_t seq, uint64_t off,
				  const void *data, size_t len)
{
	return (struct rl_record){ .type = RL_WRITE, .disk = disk1,
				   .epoch = epoch, .seq = seq, .offset = off,
				   .length = len, .data = data,
				   .data_len = len };
}

static struct rl_record rec_range(enum rl_type t, uint64_t epoch, uint64_t seq,
				  uint64_t off, uint64_t len)
{
	return (struct rl_record){ .type = t, .disk = disk1, .epoch = epoch,
				   .seq = seq, .offset = off, .length = len };
}

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

/* A model of an image: the bytes and the size that the records mean. */
#define MODEL_CAP (4u << 20)

struct model {
	uint8_t *b;		/* zero beyond size */
	uint64_t size;
};

static void model_init(struct model *m)
{
	m->b = calloc(1, MODEL_CAP);
	ck_assert_ptr_nonnull(m->b);
	m->size = 0;
}

static void model_apply(struct model *m, const struct rl_record *r)
{
	uint64_t end = r->offset + r->length;

	switch (r->type) {
	case RL_WRITE:
		ck_assert_uint_le(end, MODEL_CAP);
		memcpy(m->b + r->offset, r->data, r->length);
		if (end > m->size)
			m->size = end;
		break;
	case RL_ZERO:
		ck_assert_uint_le(end, MODEL_CAP);
		memset(m->b + r->offset, 0, r->length);
		if (end > m->size)
			m->size = end;
		break;
	case RL_DISCARD:
		if (r->offset < m->size)
			memset(m->b + r->offset, 0,
			       (end < m->size ? end : m->size) - r->offset);
		break;
	case RL_RESIZE:
		ck_assert_uint_le(r->offset, MODEL_CAP);
		if (r->offset < m->size)
			memset(m->b + r->offset, 0, m->size - r->offset);
		m->size = r->offset;
		break;
	default:
		break;
	}
}

/* Compares an image file with the model. */
static void model_check(const struct model *m, const char *path)
{
	uint8_t *buf;
	size_t len = unit_read_file(path, &buf);

	ck_assert_msg(len == m->size, "%s: size %zu, expected %llu", path, len,
		      (unsigned long long)m->size);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != m->b[i])
			ck_abort_msg("%s: byte %zu is 0x%02x, expected 0x%02x",
				     path, i, buf[i], m->b[i]);
	free(buf);
}

static void img_path(const struct datadir *d, const char *name, char *out,
		     size_t size)
{
	unit_path(out, size, "%s/%s", d->dir, name);
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
	uint64_t pos = 0, seq = 0;
	int fd;

	datadir_init(&d, "eof");
	model_init(&m);
	memset(a, 'a', sizeof(a));
	img = img_open(&d, "disk", &disk1);
	fd = rl_image_fd(img);
	img_path(&d, "disk", path, sizeof(path));
	apply_expect(img, rec_claim(&disk1, 1), pos++, RL_APPLIED);

	struct rl_record ops[] = {
		rec_write(1, ++seq, 0, a, 8192),
		/* ZERO across the end extends the image */
		rec_range(RL_ZERO, 1, ++seq, 4096, 16384),
		/* ZERO wholly past the end extends it too, sparsely */
		rec_range(RL_ZERO, 1, ++seq, 32768, 8192),
		rec_write(1, ++seq, 36864, a, 4096),
		/* DISCARD across the end zeroes up to it, and stops there */
		rec_range(RL_DISCARD, 1, ++seq, 38000, 100000),
		/* DISCARD wholly past the end changes nothing */
		rec_range(RL_DISCARD, 1, ++seq, 1 << 20, 4096),
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

		ck_assert_int_eq(rl_log_append_sync(st, buf, len), (int64_t)i);
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

/* ------------------------------------------------------------ catalog */

static struct rl_catalog *cat_open(const struct datadir *d)
{
	struct rl_err err = { 0 };
	struct rl_catalog *cat = NULL;

	ck_assert_msg(rl_catalog_open(d->dir, &cat, &err) == 0, "%s", err.msg);
	return cat;
}

static void cat_apply(struct rl_catalog *cat, struct rl_record r, uint64_t pos)
{
	struct rl_err err = { 0 };
	int rc = rl_catalog_apply(cat, &r, pos, &err);

	ck_assert_msg(rc == 0, "catalog %s at %llu: %d: %s",
		      rl_type_name(r.type), (unsigned long long)pos, rc,
		      err.msg);
	ck_assert_uint_eq(rl_catalog_next_pos(cat), pos + 1);
}

static struct rl_record cat_create(const struct rl_uuid *u, const char *name,
				   uint32_t mode)
{
	return (struct rl_record){ .type = RL_CREATE, .disk = *u, .name = name,
				   .mode = mode, .uid = 1234, .gid = 5678 };
}

static struct rl_record cat_rename(const struct rl_uuid *u, const char *name)
{
	return (struct rl_record){ .type = RL_RENAME, .disk = *u, .name = name };
}

static void expect_file(const struct datadir *d, const char *name,
			bool exists)
{
	char path[PATH_MAX];

	unit_path(path, sizeof(path), "%s/%s", d->dir, name);
	ck_assert_msg((access(path, F_OK) == 0) == exists, "%s %s", path,
		      exists ? "missing" : "still there");
}

static uint32_t file_mode(const struct datadir *d, const char *name,
			  struct stat *st)
{
	char path[PATH_MAX];

	unit_path(path, sizeof(path), "%s/%s", d->dir, name);
	ck_assert_int_eq(stat(path, st), 0);
	return st->st_mode & 07777;
}

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

/* ------------------------------------------------------------ writer */

struct primary {
	char logdir[PATH_MAX];
	struct datadir dd;
	struct rl_log *log;
	struct rl_stream *cat_stream;
	struct rl_catalog *cat;
};

static void primary_init(struct primary *p, const char *tag)
{
	struct rl_log_opts o = { .quiet = true };
	struct rl_err err = { 0 };
	char t[64];

	snprintf(t, sizeof(t), "%s-log", tag);
	unit_tmpdir(t, p->logdir, sizeof(p->logdir));
	datadir_init(&p->dd, tag);
	ck_assert_int_eq(rl_log_open(p->logdir, RL_LOG_WRITE, &o, &p->log,
				     &err), 0);
	ck_assert_int_eq(rl_log_stream(p->log, NULL, &p->cat_stream, &err), 0);
	p->cat = cat_open(&p->dd);
}

static void primary_close(struct primary *p)
{
	rl_catalog_close(p->cat);
	rl_log_close(p->log);
}

/* Appends a catalog record to the log and applies it to the primary's
 * data directory, as a mount would. */
static void primary_catalog(struct primary *p, struct rl_record r)
{
	uint8_t *buf;
	size_t len = unit_encode(&r, 0, &buf);
	int64_t pos = rl_log_append_sync(p->cat_stream, buf, len);

	ck_assert_int_ge(pos, 0);
	free(buf);
	cat_apply(p->cat, r, (uint64_t)pos);
}

/* Appends disk records (sealed here) straight to the log. */
static void primary_append(struct primary *p, const struct rl_uuid *u,
			   struct rl_record r)
{
	struct rl_err err = { 0 };
	struct rl_stream *s;
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(rl_log_stream(p->log, u, &s, &err), 0);
	r.disk = *u;
	len = unit_encode(&r, 1024, &buf);
	ck_assert_int_ge(rl_log_append_sync(s, buf, len), 0);
	free(buf);
}

struct follower {
	struct datadir dd;
	struct rl_log *log;
	struct rl_follower *f;
	int lock;
};

static void follower_open(struct follower *fo, const char *logdir,
			  uint64_t ckpt_records)
{
	struct rl_follow_opts o = { .checkpoint_records = ckpt_records };
	struct rl_err err = { 0 };

	ck_assert_int_eq(rl_log_open(logdir, 0, NULL, &fo->log, &err), 0);
	fo->lock = rl_datadir_lock(fo->dd.dir, &err);
	ck_assert_msg(fo->lock >= 0, "%s", err.msg);
	ck_assert_msg(rl_follower_open(fo->log, fo->dd.dir, &o, &fo->f, &err)
		      == 0, "%s", err.msg);
}

/* Steps until caught up; returns the number of records applied. */
static int follower_steps(struct follower *fo)
{
	struct rl_err err = { 0 };
	int total = 0, rc;

	while ((rc = rl_follower_step(fo->f, &err)) > 0)
		total += rc;
	ck_assert_msg(rc == 0, "follower: %d: %s", rc, err.msg);
	return total;
}

/* The same, then checkpoints. */
static int follower_catch_up(struct follower *fo)
{
	struct rl_err err = { 0 };
	int total = follower_steps(fo);

	ck_assert_msg(rl_follower_checkpoint(fo->f, &err) == 0, "%s", err.msg);
	return total;
}

static void follower_close(struct follower *fo)
{
	rl_follower_close(fo->f);
	rl_log_close(fo->log);
	close(fo->lock);
}

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
	ck_assert_int_eq(rl_log_end(s, &end), 0);
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
	ck_assert_int_eq(rl_log_end(s, &end), 0);
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
		ck_assert_int_eq(rl_log_end(s, &end), 0);
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
	ck_assert_uint_eq(rl_image_last_seq(img), 3);
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

/* ------------------------------------------------------------ follower */

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

static Suite *apply_suite(void)
{
	Suite *s = suite_create("apply");
	TCase *tc = tcase_create("applier");
	TCase *tcat = tcase_create("catalog");
	TCase *tw = tcase_create("writer");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_apply_in_order);
	tcase_add_test(tc, test_zero_and_discard_punch_holes);
	tcase_add_test(tc, test_zero_and_discard_past_eof);
	tcase_add_test(tc, test_resize);
	tcase_add_test(tc, test_epochs_and_refusals);
	tcase_add_test(tc, test_checkpoint_reopen);
	tcase_add_loop_test(tc, test_crash_replay_converges, 0, 3);
	suite_add_tcase(s, tc);

	tcase_set_timeout(tcat, 60);
	tcase_add_test(tcat, test_catalog_changes_files);
	tcase_add_test(tcat, test_catalog_refuses);
	tcase_add_test(tcat, test_catalog_crash_idempotent);
	tcase_add_test(tcat, test_datadir_lock);
	suite_add_tcase(s, tcat);

	tcase_set_timeout(tw, 60);
	tcase_add_test(tw, test_writer_pipeline);
	tcase_add_test(tw, test_writer_fenced);
	tcase_add_test(tw, test_writer_claim_race);
	tcase_add_test(tw, test_follower);
	suite_add_tcase(s, tw);
	return s;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	return unit_main(apply_suite());
}
