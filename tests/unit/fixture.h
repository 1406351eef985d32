/* Fixtures shared by the tests of the applier (test_apply.c), the catalog
 * (test_catalog.c), the writer (test_writer.c) and the follower
 * (test_follow.c), in fixture.c.  Each asserts success (check), so a
 * failed step fails the test where it is called. */
#ifndef REPDISK_FIXTURE_H
#define REPDISK_FIXTURE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "unit.h"

/* Three disks; rec_write() and rec_range() make records of disk1. */
extern const struct rl_uuid disk1, disk2, disk3;

/* A data directory (rl_datadir_prepare'd) and its checkpoint directory. */
struct datadir {
	char dir[PATH_MAX];
	char ckpt[PATH_MAX];
};

/* Makes a fresh data directory under unit_base, named after tag. */
void datadir_init(struct datadir *d, const char *tag);
/* Opens image d/name of disk u. */
struct rl_image *img_open(const struct datadir *d, const char *name,
			  const struct rl_uuid *u);
/* The path of image d/name into out. */
void img_path(const struct datadir *d, const char *name, char *out,
	      size_t size);

/* Records: a CLAIM of u at epoch; a WRITE, and a ZERO, DISCARD or RESIZE
 * (type t), of disk1. */
struct rl_record rec_claim(const struct rl_uuid *u, uint64_t epoch);
struct rl_record rec_write(uint64_t epoch, uint64_t seq, uint64_t off,
			   const void *data, size_t len);
struct rl_record rec_range(enum rl_type t, uint64_t epoch, uint64_t seq,
			   uint64_t off, uint64_t len);

/* A model of an image: the bytes and the size that the records mean. */
#define MODEL_CAP (4u << 20)

struct model {
	uint8_t *b;		/* zero beyond size */
	uint64_t size;
};

void model_init(struct model *m);
/* Applies r's meaning to the model (data records; others are ignored). */
void model_apply(struct model *m, const struct rl_record *r);
/* Compares the image file at path with the model, byte for byte. */
void model_check(const struct model *m, const char *path);

/* Opens d's catalog. */
struct rl_catalog *cat_open(const struct datadir *d);
/* Applies r at pos, asserting success and the next position. */
void cat_apply(struct rl_catalog *cat, struct rl_record r, uint64_t pos);
/* Catalog records: CREATE of u as name (uid 1234, gid 5678), RENAME. */
struct rl_record cat_create(const struct rl_uuid *u, const char *name,
			    uint32_t mode);
struct rl_record cat_rename(const struct rl_uuid *u, const char *name);
/* Asserts that d/name exists, or that it does not. */
void expect_file(const struct datadir *d, const char *name,
		 bool exists);
/* stat()s d/name into st; returns its permission bits. */
uint32_t file_mode(const struct datadir *d, const char *name,
		   struct stat *st);

/* A primary: a file log (written), a data directory and its catalog. */
struct primary {
	char logdir[PATH_MAX];
	struct datadir dd;
	struct rl_log *log;
	struct rl_stream *cat_stream;
	struct rl_catalog *cat;
};

/* Makes a primary's log and data directory under unit_base. */
void primary_init(struct primary *p, const char *tag);
void primary_close(struct primary *p);
/* Appends a catalog record and applies it to the primary's catalog. */
void primary_catalog(struct primary *p, struct rl_record r);
/* Appends a record of disk u (sealed here) straight to the log. */
void primary_append(struct primary *p, const struct rl_uuid *u,
		    struct rl_record r);

/* A follower of a primary's log into its own data directory (dd, which
 * the caller makes with datadir_init() before follower_open()). */
struct follower {
	struct datadir dd;
	struct rl_log *log;
	struct rl_follower *f;
	int lock;
};

/* Opens the log at logdir, locks fo->dd and starts the follower
 * (checkpointing every ckpt_records; 0: the default). */
void follower_open(struct follower *fo, const char *logdir,
		   uint64_t ckpt_records);
/* Steps until caught up; returns the number of records applied. */
int follower_steps(struct follower *fo);
/* The same, then checkpoints. */
int follower_catch_up(struct follower *fo);
void follower_close(struct follower *fo);

/* main() of these tests: unit_main(s) once libsodium is initialised. */
int fixture_main(Suite *s);

#endif
