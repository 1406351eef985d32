/* Fixtures shared by the tests of the applier (test_apply.c), the catalog
 * (test_catalog.c), the writer (test_writer.c) and the follower
 * (test_follow.c): data directories, images, records, a model of an
 * image's bytes, catalogs, and a primary and a follower on a file log.
 * They assert as they go (check), so a test reads as the steps it takes. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

const struct rl_uuid disk1 = { { 0xa1, 0x1c, 0xe0, 0x01, 0x02, 0x03,
				 0x44, 0x05, 0x86, 0x07, 0x08, 0x09,
				 0x0a, 0x0b, 0x0c, 0x0d } };
const struct rl_uuid disk2 = { { 0xb0, 0xb0, 0xe0, 0x01, 0x02, 0x03,
				 0x44, 0x05, 0x86, 0x07, 0x08, 0x09,
				 0x0a, 0x0b, 0x0c, 0x0d } };
const struct rl_uuid disk3 = { { 0xc3, 0xc3, 0xe0, 0x01, 0x02, 0x03,
				 0x44, 0x05, 0x86, 0x07, 0x08, 0x09,
				 0x0a, 0x0b, 0x0c, 0x0d } };

void datadir_init(struct datadir *d, const char *tag)
{
	struct rl_err err = { 0 };

	unit_tmpdir(tag, d->dir, sizeof(d->dir));
	ck_assert_msg(rl_datadir_prepare(d->dir, &err) == 0, "%s", err.msg);
	unit_path(d->ckpt, sizeof(d->ckpt), "%s/.repdisk/ckpt", d->dir);
}

struct rl_image *img_open(const struct datadir *d, const char *name,
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

struct rl_record rec_claim(const struct rl_uuid *u, uint64_t epoch)
{
	return (struct rl_record){ .type = RL_CLAIM, .disk = *u,
				   .epoch = epoch, .data = "h", .data_len = 1 };
}

struct rl_record rec_write(uint64_t epoch, uint64_t seq, uint64_t off,
			   const void *data, size_t len)
{
	return (struct rl_record){ .type = RL_WRITE, .disk = disk1,
				   .epoch = epoch, .seq = seq, .offset = off,
				   .length = len, .data = data,
				   .data_len = len };
}

struct rl_record rec_range(enum rl_type t, uint64_t epoch, uint64_t seq,
			   uint64_t off, uint64_t len)
{
	return (struct rl_record){ .type = t, .disk = disk1, .epoch = epoch,
				   .seq = seq, .offset = off, .length = len };
}

void model_init(struct model *m)
{
	m->b = calloc(1, MODEL_CAP);
	ck_assert_ptr_nonnull(m->b);
	m->size = 0;
}

void model_apply(struct model *m, const struct rl_record *r)
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
void model_check(const struct model *m, const char *path)
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

void img_path(const struct datadir *d, const char *name, char *out,
	      size_t size)
{
	unit_path(out, size, "%s/%s", d->dir, name);
}

struct rl_catalog *cat_open(const struct datadir *d)
{
	struct rl_err err = { 0 };
	struct rl_catalog *cat = NULL;

	ck_assert_msg(rl_catalog_open(d->dir, &cat, &err) == 0, "%s", err.msg);
	return cat;
}

void cat_apply(struct rl_catalog *cat, struct rl_record r, uint64_t pos)
{
	struct rl_err err = { 0 };
	int rc = rl_catalog_apply(cat, &r, pos, &err);

	ck_assert_msg(rc == 0, "catalog %s at %llu: %d: %s",
		      rl_type_name(r.type), (unsigned long long)pos, rc,
		      err.msg);
	ck_assert_uint_eq(rl_catalog_next_pos(cat), pos + 1);
}

struct rl_record cat_create(const struct rl_uuid *u, const char *name,
			    uint32_t mode)
{
	return (struct rl_record){ .type = RL_CREATE, .disk = *u, .name = name,
				   .mode = mode, .uid = 1234, .gid = 5678 };
}

struct rl_record cat_rename(const struct rl_uuid *u, const char *name)
{
	return (struct rl_record){ .type = RL_RENAME, .disk = *u, .name = name };
}

void expect_file(const struct datadir *d, const char *name,
		 bool exists)
{
	char path[PATH_MAX];

	unit_path(path, sizeof(path), "%s/%s", d->dir, name);
	ck_assert_msg((access(path, F_OK) == 0) == exists, "%s %s", path,
		      exists ? "missing" : "still there");
}

uint32_t file_mode(const struct datadir *d, const char *name,
		   struct stat *st)
{
	char path[PATH_MAX];

	unit_path(path, sizeof(path), "%s/%s", d->dir, name);
	ck_assert_int_eq(stat(path, st), 0);
	return st->st_mode & 07777;
}

void primary_init(struct primary *p, const char *tag)
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

void primary_close(struct primary *p)
{
	rl_catalog_close(p->cat);
	rl_log_close(p->log);
}

/* Appends a catalog record to the log and applies it to the primary's
 * data directory, as a mount would. */
void primary_catalog(struct primary *p, struct rl_record r)
{
	uint8_t *buf;
	size_t len = unit_encode(&r, 0, &buf);
	int64_t pos = rl_log_append_sync(p->cat_stream, buf, len, NULL);

	ck_assert_int_ge(pos, 0);
	free(buf);
	cat_apply(p->cat, r, (uint64_t)pos);
}

/* Appends disk records (sealed here) straight to the log. */
void primary_append(struct primary *p, const struct rl_uuid *u,
		    struct rl_record r)
{
	struct rl_err err = { 0 };
	struct rl_stream *s;
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(rl_log_stream(p->log, u, &s, &err), 0);
	r.disk = *u;
	len = unit_encode(&r, 1024, &buf);
	ck_assert_int_ge(rl_log_append_sync(s, buf, len, NULL), 0);
	free(buf);
}

void follower_open(struct follower *fo, const char *logdir,
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
int follower_steps(struct follower *fo)
{
	struct rl_err err = { 0 };
	int total = 0, rc;

	while ((rc = rl_follower_step(fo->f, &err)) > 0)
		total += rc;
	ck_assert_msg(rc == 0, "follower: %d: %s", rc, err.msg);
	return total;
}

/* The same, then checkpoints. */
int follower_catch_up(struct follower *fo)
{
	struct rl_err err = { 0 };
	int total = follower_steps(fo);

	ck_assert_msg(rl_follower_checkpoint(fo->f, &err) == 0, "%s", err.msg);
	return total;
}

void follower_close(struct follower *fo)
{
	rl_follower_close(fo->f);
	rl_log_close(fo->log);
	close(fo->lock);
}

/* Runs the suite (unit_main()) once libsodium is ready: record checksums
 * use it. */
int fixture_main(Suite *s)
{
	if (sodium_init() < 0)
		return 1;
	return unit_main(s);
}
