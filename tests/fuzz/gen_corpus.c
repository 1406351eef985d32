/* gen_corpus OUTDIR: writes the seed corpus of the fuzz harnesses.
 *
 * Every seed is made by replog itself, the way repdisk makes these files:
 * records by rl_record_encode(), segments by a file log's writer (then
 * wrapped in fuzz_segment's input layout), the catalog state by applying
 * catalog records, checkpoints by rl_checkpoint_write(), follower reports
 * by rl_positions_publish().  So a seed is a valid input, and the fuzzer
 * starts from inputs that reach deep.  OUTDIR/NAME/ is the corpus of
 * fuzz_NAME; run it again after a format change and commit the result.
 */
#include "fuzz_common.h"
#include "v1.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DISK2 { { 0x21, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x88, 0x99, 0xaa, \
		  0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x02 } }
static const char *outdir;
static char data4k[4096];

static void emit(const char *corpus, const char *name, const void *buf,
		 size_t len)
{
	char path[PATH_MAX];

	fuzz_mkdir("%s/%s", outdir, corpus);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, corpus, name);
	fuzz_write(path, buf, len);
}

/* The whole file at path, malloc'ed. */
static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(1u << 20);

	if (!f || !buf)
		fuzz_fail("read %s: %s", path, strerror(errno));
	*len = fread(buf, 1, 1u << 20, f);
	fclose(f);
	return buf;
}

static size_t encode_key(const struct rl_record *r, size_t zstd_min,
			 const struct rl_key *key, uint8_t *buf, size_t size)
{
	struct rl_err err = { 0 };
	struct rl_record e = *r;
	ssize_t n;

	e.time_ns = 1796150000123456789ull;	/* a seed stays the same */
	n = rl_record_encode_key(&e, zstd_min, key, buf, size, &err);
	if (n < 0)
		fuzz_fail("encode %s: %s", rl_type_name(r->type), err.msg);
	return (size_t)n;
}

static size_t encode(const struct rl_record *r, size_t zstd_min, uint8_t *buf,
		     size_t size)
{
	return encode_key(r, zstd_min, NULL, buf, size);
}

static const struct rl_record disk_recs[] = {
	{ .type = RL_CLAIM, .disk = FUZZ_DISK, .epoch = 1, .data = "hv1:/srv",
	  .data_len = 8 },
	{ .type = RL_RESIZE, .disk = FUZZ_DISK, .epoch = 1, .seq = 1,
	  .offset = 1 << 20 },
	{ .type = RL_WRITE, .disk = FUZZ_DISK, .epoch = 1, .seq = 2,
	  .offset = 4096, .length = 4, .data = "abcd", .data_len = 4 },
	{ .type = RL_WRITE, .disk = FUZZ_DISK, .epoch = 1, .seq = 3,
	  .offset = 65536, .length = sizeof(data4k), .data = data4k,
	  .data_len = sizeof(data4k) },
	{ .type = RL_ZERO, .disk = FUZZ_DISK, .epoch = 1, .seq = 4,
	  .offset = 65536, .length = 4096 },
	{ .type = RL_DISCARD, .disk = FUZZ_DISK, .epoch = 1, .seq = 5,
	  .offset = 0, .length = 512 },
};

/* numbered as the catalog writer numbers them; SKIP as log skip writes
 * it (seq 0, unnumbered) */
static const struct rl_record cat_recs[] = {
	{ .type = RL_CLAIM, .epoch = 1, .data = "hv1:/srv", .data_len = 8 },
	{ .type = RL_CREATE, .disk = FUZZ_DISK, .epoch = 1, .seq = 1,
	  .name = "vm1.img", .mode = 0644 },
	{ .type = RL_CREATE, .disk = DISK2, .epoch = 1, .seq = 2,
	  .name = "vm2.img", .mode = 0600, .uid = 1000, .gid = 1000 },
	{ .type = RL_RENAME, .disk = DISK2, .epoch = 1, .seq = 3,
	  .name = "vm 2.img" },
	{ .type = RL_SETATTR, .disk = FUZZ_DISK, .epoch = 1, .seq = 4,
	  .mode = 0640 },
	{ .type = RL_SKIP, .disk = FUZZ_DISK, .epoch = 1, .offset = 7,
	  .data = "by root@hv1 at 2024-01-01 12:00:00: damaged",
	  .data_len = 43 },
	{ .type = RL_DELETE, .disk = DISK2, .epoch = 1, .seq = 5 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void gen_records(void)
{
	static uint8_t buf[RL_RECORD_HDR_SIZE + 8192];
	char name[64];

	for (size_t i = 0; i < N(disk_recs); i++) {
		snprintf(name, sizeof(name), "disk-%zu-%s", i,
			 rl_type_name(disk_recs[i].type));
		emit("record", name, buf, encode(&disk_recs[i], 0, buf,
						  sizeof(buf)));
	}
	/* the 4 KiB WRITE compressed */
	emit("record", "disk-3-WRITE-zstd", buf,
	     encode(&disk_recs[3], 1, buf, sizeof(buf)));
	/* as writers before version 3 wrote them */
	for (size_t i = 0; i < N(disk_recs); i += 2) {
		static uint8_t v1[RL_RECORD_HDR_SIZE + 8192];
		size_t n = encode(&disk_recs[i], 0, buf, sizeof(buf));

		snprintf(name, sizeof(name), "v1-disk-%zu-%s", i,
			 rl_type_name(disk_recs[i].type));
		emit("record", name, v1, v1_downgrade(buf, n, v1));
	}
	{
		static uint8_t v1[RL_RECORD_HDR_SIZE + 8192];
		size_t n = encode(&cat_recs[5], 0, buf, sizeof(buf));

		emit("record", "v2-catalog-5-SKIP", v1,
		     v1_downgrade(buf, n, v1));
	}
	/* sealed with the harnesses' key (fuzz_keys) */
	{
		const struct rl_key *k = rl_keyring_newest(fuzz_keys());

		for (size_t i = 0; i < N(disk_recs); i++) {
			snprintf(name, sizeof(name), "key-disk-%zu-%s", i,
				 rl_type_name(disk_recs[i].type));
			emit("record", name, buf, encode_key(&disk_recs[i], 0, k,
							     buf, sizeof(buf)));
		}
		emit("record", "key-disk-3-WRITE-zstd", buf,
		     encode_key(&disk_recs[3], 1, k, buf, sizeof(buf)));
		emit("record", "key-catalog-1-CREATE", buf,
		     encode_key(&cat_recs[1], 0, k, buf, sizeof(buf)));
	}
	{
		struct rl_record m = { .type = RL_MARK, .disk = FUZZ_DISK,
				       .epoch = 1, .seq = 6, .offset = 0,
				       .length = 1 << 20, .data = "nightly",
				       .data_len = 7 };

		emit("record", "disk-6-MARK", buf, encode(&m, 0, buf,
							 sizeof(buf)));
	}
	for (size_t i = 0; i < N(cat_recs); i++) {
		snprintf(name, sizeof(name), "catalog-%zu-%s", i,
			 rl_type_name(cat_recs[i].type));
		emit("record", name, buf, encode(&cat_recs[i], 0, buf,
						  sizeof(buf)));
	}
}

/* A file log with the records appended to one stream, by its writer. */
static void write_log_key(const char *dir, const struct rl_uuid *disk,
			  const struct rl_record *recs, size_t n,
			  uint64_t segment_bytes, const char *key_file)
{
	struct rl_log_opts o = { .quiet = true,
				 .segment_bytes = segment_bytes,
				 .key_file = key_file };
	static uint8_t buf[RL_RECORD_HDR_SIZE + 8192];
	struct rl_err err = { 0 };
	struct rl_log *log;
	struct rl_stream *s;

	if (rl_log_open(dir, RL_LOG_WRITE, &o, &log, &err) < 0 ||
	    rl_log_stream(log, disk, &s, &err) < 0)
		fuzz_fail("log %s: %s", dir, err.msg);
	for (size_t i = 0; i < n; i++) {
		size_t len = encode_key(&recs[i], i == 3 ? 1 : 0,
					rl_log_seal_key(log), buf, sizeof(buf));

		if (rl_log_append_sync(s, buf, len, &err) < 0)
			fuzz_fail("append: %s", err.msg);
	}
	rl_log_close(log);
}

static void write_log(const char *dir, const struct rl_uuid *disk,
		      const struct rl_record *recs, size_t n,
		      uint64_t segment_bytes)
{
	write_log_key(dir, disk, recs, n, segment_bytes, NULL);
}

/* fuzz_segment's input: flags, head, split, base2, body. */
static void emit_segment(const char *name, uint8_t flags, uint64_t head,
			 size_t split, uint8_t base2, const uint8_t *body,
			 size_t len)
{
	uint8_t *in = malloc(12 + len);

	in[0] = flags;
	for (int i = 0; i < 8; i++)
		in[1 + i] = (uint8_t)(head >> (8 * i));
	in[9] = (uint8_t)split;
	in[10] = (uint8_t)(split >> 8);
	in[11] = base2;
	memcpy(in + 12, body, len);
	emit("segment", name, in, 12 + len);
	free(in);
}

static void gen_segments(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 128], u[RL_UUID_STRLEN + 1];
	uint8_t *seg, *seg2, *both;
	size_t len, len2;

	rl_uuid_format(&fuzz_disk, u);
	snprintf(dir, sizeof(dir), "%s/log1", fuzz_dir());
	write_log(dir, &fuzz_disk, disk_recs, N(disk_recs), 0);
	snprintf(path, sizeof(path), "%s/disks/%s/%020d.seg", dir, u, 0);
	seg = slurp(path, &len);
	emit_segment("disk", 0, N(disk_recs), 0, 0, seg + 32, len - 32);
	emit_segment("disk-append", 0x10, N(disk_recs), 0, 0, seg + 32,
		     len - 32);
	emit_segment("disk-raw-header", 0x02, N(disk_recs), 0, 0, seg, len);
	/* a power loss: the head is behind the records */
	emit_segment("disk-head-behind", 0, 2, 0, 0, seg + 32, len - 32);
	/* a crash in the middle of an append: a torn tail past the head */
	emit_segment("disk-torn-tail", 0, N(disk_recs) - 1, 0, 0, seg + 32,
		     len - 32 - 50);
	/* a stream written before version 3, then on by a version-3 writer:
	 * its first 3 records in version 1 */
	{
		uint8_t *mixed = malloc(len);
		size_t in = 32, out = 0;

		for (int i = 0; in < len; i++) {
			size_t n = (size_t)rl_record_size(seg + in, NULL);

			if (i < 3) {
				out += v1_downgrade(seg + in, n, mixed + out);
			} else {
				memcpy(mixed + out, seg + in, n);
				out += n;
			}
			in += n;
		}
		emit_segment("disk-v1-then-v3", 0, N(disk_recs), 0, 0, mixed,
			     out);
		free(mixed);
	}
	free(seg);

	/* sealed with the harnesses' key (fuzz_segment's F_KEY, 0x40) */
	{
		char kpath[PATH_MAX + 16];

		snprintf(kpath, sizeof(kpath), "%s/keys", fuzz_dir());
		fuzz_key_file(kpath);
		snprintf(dir, sizeof(dir), "%s/log-key", fuzz_dir());
		write_log_key(dir, &fuzz_disk, disk_recs, N(disk_recs), 0,
			      kpath);
		snprintf(path, sizeof(path), "%s/disks/%s/%020d.seg", dir, u,
			 0);
		seg = slurp(path, &len);
		emit_segment("key-disk", 0x40, N(disk_recs), 0, 0, seg + 32,
			     len - 32);
		emit_segment("key-disk-torn-tail", 0x40, N(disk_recs) - 1, 0,
			     0, seg + 32, len - 32 - 50);
		free(seg);
	}

	snprintf(dir, sizeof(dir), "%s/log2", fuzz_dir());
	write_log(dir, NULL, cat_recs, N(cat_recs), 0);
	snprintf(path, sizeof(path), "%s/catalog/%020d.seg", dir, 0);
	seg = slurp(path, &len);
	emit_segment("catalog", 0x01, N(cat_recs), 0, 0, seg + 32, len - 32);
	free(seg);

	/* two segments: 400-byte segments roll after the CLAIM, RESIZE and
	 * small WRITE (position 3 starts the second) */
	snprintf(dir, sizeof(dir), "%s/log3", fuzz_dir());
	write_log(dir, &fuzz_disk, disk_recs, N(disk_recs), 400);
	snprintf(path, sizeof(path), "%s/disks/%s/%020d.seg", dir, u, 0);
	seg = slurp(path, &len);
	snprintf(path, sizeof(path), "%s/disks/%s/%020d.seg", dir, u, 3);
	seg2 = slurp(path, &len2);
	both = malloc(len + len2);
	memcpy(both, seg + 32, len - 32);
	memcpy(both + len - 32, seg2 + 32, len2 - 32);
	emit_segment("disk-two-segments", 0x08, N(disk_recs), len - 32, 3,
		     both, len - 32 + len2 - 32);
	free(both);
	free(seg);
	free(seg2);
}

static void gen_catalog_state(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	struct rl_err err = { 0 };
	struct rl_catalog *cat;
	uint8_t *state;
	size_t len;

	snprintf(dir, sizeof(dir), "%s/data", fuzz_dir());
	fuzz_mkdir("%s", dir);
	snprintf(path, sizeof(path), "%s/.repdisk/catalog", dir);
	if (rl_datadir_prepare(dir, &err) < 0 ||
	    rl_catalog_open(dir, &cat, &err) < 0)
		fuzz_fail("catalog %s: %s", dir, err.msg);
	for (size_t i = 0; i < N(cat_recs); i++) {
		char name[64];

		if (rl_catalog_apply(cat, &cat_recs[i], i, &err) < 0)
			fuzz_fail("catalog apply %s: %s",
				  rl_type_name(cat_recs[i].type), err.msg);
		if (i != 1 && i != 5 && i + 1 != N(cat_recs))
			continue;
		state = slurp(path, &len);
		snprintf(name, sizeof(name), "after-%zu-%s", i,
			 rl_type_name(cat_recs[i].type));
		emit("catalog_state", name, state, len);
		free(state);
	}
	rl_catalog_close(cat);
}

static void gen_checkpoints(void)
{
	struct rl_checkpoint c = { .next_pos = 5, .epoch = 1, .last_seq = 4 };
	char dir[PATH_MAX], path[PATH_MAX + 64], u[RL_UUID_STRLEN + 1];
	struct rl_err err = { 0 };
	uint8_t *ck;
	size_t len;

	snprintf(dir, sizeof(dir), "%s/ckpt", fuzz_dir());
	fuzz_mkdir("%s", dir);
	rl_uuid_format(&fuzz_disk, u);
	snprintf(path, sizeof(path), "%s/%s", dir, u);
	if (rl_checkpoint_write(dir, &fuzz_disk, &c, &err) < 0)
		fuzz_fail("checkpoint: %s", err.msg);
	ck = slurp(path, &len);
	emit("checkpoint", "no-owner", ck, len);
	free(ck);
	snprintf(c.owner, sizeof(c.owner), "hv1:/srv/disks");
	if (rl_checkpoint_write(dir, &fuzz_disk, &c, &err) < 0)
		fuzz_fail("checkpoint: %s", err.msg);
	ck = slurp(path, &len);
	emit("checkpoint", "owner", ck, len);
	free(ck);
}

static void gen_positions(void)
{
	struct rl_position pos[] = {
		{ .next_pos = 7 },
		{ .disk = FUZZ_DISK, .next_pos = 5, .caught_up_ms = 1700000000000 },
		{ .disk = DISK2, .next_pos = 0 },
	};
	struct rl_positions p = { .time_ms = 1700000000123, .n = N(pos),
				  .pos = pos };
	char dir[PATH_MAX], path[PATH_MAX + 64], all[8192];
	struct rl_err err = { 0 };
	struct rl_log_opts o = { .quiet = true };
	struct rl_log *log;
	size_t n = 0, len;
	uint8_t *rep;

	snprintf(dir, sizeof(dir), "%s/log4", fuzz_dir());
	if (rl_log_open(dir, RL_LOG_WRITE, &o, &log, &err) < 0)
		fuzz_fail("log %s: %s", dir, err.msg);
	for (int i = 0; i < 3; i++) {
		snprintf(p.name, sizeof(p.name), "f%d", i);
		p.n = N(pos) - (size_t)i;	/* f2: the catalog alone */
		if (rl_positions_publish(log, &p, &err) < 0)
			fuzz_fail("publish: %s", err.msg);
		snprintf(path, sizeof(path), "%s/followers/f%d", dir, i);
		rep = slurp(path, &len);
		if (i == 0)
			emit("positions", "one", rep, len);
		if (i > 0)
			n += (size_t)snprintf(all + n, sizeof(all) - n,
					      "\n--8<--\n");
		memcpy(all + n, rep, len);
		n += len;
		free(rep);
	}
	emit("positions", "three", all, n);
	snprintf(p.name, sizeof(p.name), "hostA");
	p.n = N(pos);
	if (rl_positions_publish(log, &p, &err) < 0)
		fuzz_fail("publish: %s", err.msg);
	snprintf(path, sizeof(path), "%s/followers/hostA", dir);
	rep = slurp(path, &len);
	n = (size_t)snprintf(all, sizeof(all), "@hostA\n");
	memcpy(all + n, rep, len);
	emit("positions", "named", all, n + len);
	free(rep);
	rl_log_close(log);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	for (size_t i = 0; i < sizeof(data4k); i++)
		data4k[i] = (char)("repdisk "[i % 8]);
	fuzz_mkdir("%s", outdir);
	gen_records();
	gen_segments();
	gen_catalog_state();
	gen_checkpoints();
	gen_positions();
	return 0;
}
