/* rl_testwriter: a test fixture that writes a disk the way the mount does,
 * through replog's real write pipeline (rl_writer), and checks afterwards
 * that the log kept every record it acknowledged.
 *
 *   rl_testwriter load --log URI --datadir DIR --disk NAME --acks FILE
 *                      [--count N] [--inflight K] [--seed S] [--size-mb M]
 *                      [--segment-bytes B] [--zstd] [--trim]
 *                      [--write-kb K]
 *       Opens the log as its writer (recovering a torn tail), creates the
 *       disk if the catalog lacks it, replays the image from its checkpoint,
 *       claims the disk, then submits N random WRITE/ZERO/DISCARD/RESIZE
 *       records with K in flight.  After each record is reported durable
 *       and applied, appends "EPOCH SEQ HASH" to FILE (O_APPEND, so a
 *       SIGKILL keeps every line written).  Checkpoints every 500 records
 *       and at the end.  --count 0 only recovers, claims and checkpoints.
 *       --trim: checkpoints every 100 records, and after each checkpoint
 *       trims the log as the mount does (below its checkpoint and every
 *       registered follower), so that a file log reuses its segments.
 *       --write-kb K: every record a WRITE of K KiB (K < 1024), so that a
 *       reused segment's earlier records lie where the new ones begin.
 *
 *   rl_testwriter verify --log URI --disk NAME --acks FILE
 *       Reads the disk's stream and checks that every acknowledged record
 *       is there with the same contents, and that the records rise in
 *       (epoch, seq), as an honest writer writes them.  Acknowledged
 *       records older than the first record left in a trimmed log are
 *       skipped.  Exit 0, or 1 naming the first missing or different
 *       record.
 *
 *   rl_testwriter downgrade LOGDIR
 *       Rewrites every segment of the file log in LOGDIR (no process may
 *       have it open) with its records in version 1 (version 2 for SKIP):
 *       the log a repdisk from before version 3 would have written.
 *
 *   rl_testwriter forge --log URI --disk NAME --acks - [--key-file FILE]
 *       Appends to the disk's stream a well-formed WRITE of an epoch no
 *       writer claimed (what an intruder with access to the log would
 *       write): every applier refuses it.  Prints its position.
 */
#include "replog.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sys/stat.h>

#include "v1.h"

#define HASH_LEN 16

struct opts {
	const char *log, *datadir, *disk, *acks, *key_file;
	unsigned long long count, inflight, seed, size_mb, segment_bytes;
	unsigned long long write_kb;
	bool zstd, trim;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("rl_testwriter: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* What identifies a record's effect: type, range and data. */
static void record_hash(const struct rl_record *r, char out[2 * HASH_LEN + 1])
{
	crypto_generichash_state st;
	uint8_t h[HASH_LEN];
	uint64_t fields[3] = { (uint64_t)r->type, r->offset, r->length };

	crypto_generichash_init(&st, NULL, 0, HASH_LEN);
	crypto_generichash_update(&st, (const uint8_t *)fields, sizeof(fields));
	if (r->type == RL_WRITE)
		crypto_generichash_update(&st, r->data, r->data_len);
	crypto_generichash_final(&st, h, HASH_LEN);
	sodium_bin2hex(out, 2 * HASH_LEN + 1, h, HASH_LEN);
}

/* ------------------------------------------------------------ load */

struct load {
	struct rl_writer *w;
	int acks_fd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long long in_flight, done, failed;
};

struct job {
	struct load *l;
	struct rl_record r;
	uint8_t *data;
};

static void job_done(void *opaque, int err)
{
	struct job *j = opaque;
	struct load *l = j->l;

	if (err == 0) {
		char hash[2 * HASH_LEN + 1], line[128];
		int n;

		record_hash(&j->r, hash);
		n = snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 " %s\n",
			     rl_writer_epoch(l->w), j->r.seq, hash);
		if (write(l->acks_fd, line, (size_t)n) != n)
			die("write acks: %s", strerror(errno));
	}
	pthread_mutex_lock(&l->lock);
	l->in_flight--;
	l->done++;
	l->failed += err != 0;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	free(j->data);
	free(j);
}

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: reproducible from the seed */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* A random record; write_kb > 0: a WRITE of that many KiB of random
 * bytes, so that every record has the same size. */
static void make_record(struct job *j, const struct rl_uuid *disk,
			uint64_t *st, uint64_t disk_size, bool zstd,
			unsigned long long write_kb)
{
	uint64_t k = rnd(st) % 100, len;
	struct rl_record *r = &j->r;

	memset(r, 0, sizeof(*r));
	r->disk = *disk;
	len = (1 + rnd(st) % 128) * 512;	/* 512 B .. 64 KiB */
	if (write_kb) {
		k = 74;		/* a WRITE of random bytes */
		len = write_kb << 10;
	}
	r->offset = (rnd(st) % (disk_size / 512)) * 512;
	r->length = len;
	if (k < 75) {
		r->type = RL_WRITE;
		j->data = malloc(len);
		if (!j->data)
			die("out of memory");
		if (zstd && k < 40) {
			memset(j->data, (int)(rnd(st) & 0xff), len);
			j->data[0] = (uint8_t)rnd(st);
		} else {
			for (uint64_t i = 0; i < len; i += 8) {
				uint64_t v = rnd(st);

				memcpy(j->data + i, &v, 8);
			}
		}
		r->data = j->data;
		r->data_len = len;
	} else if (k < 87) {
		r->type = RL_ZERO;
	} else if (k < 98) {
		r->type = RL_DISCARD;
	} else {
		r->type = RL_RESIZE;
		r->offset = disk_size / 2 + (rnd(st) % (disk_size / 2));
		r->length = 0;
	}
}

static void load_disk_uuid(struct rl_log *log, struct rl_catalog *cat,
			   const char *name, struct rl_uuid *out)
{
	struct rl_stream *s;
	struct rl_reader *rd;
	struct rl_disk_info info;
	struct rl_err err;
	int rc;

	/* catch the catalog up to the log, as a mount does at start */
	if (rl_log_stream(log, NULL, &s, &err) < 0)
		die("%s", err.msg);
	if (rl_reader_open(s, rl_catalog_next_pos(cat), &rd, &err) < 0)
		die("%s", err.msg);
	for (;;) {
		struct rl_record r;
		uint64_t pos;

		rc = rl_reader_next(rd, &r, &pos, 0, &err);
		if (rc < 0)
			die("%s", err.msg);
		if (rc == 0)
			break;
		if (rl_catalog_apply(cat, &r, pos, &err) < 0)
			die("%s", err.msg);
	}
	rl_reader_close(rd);
	if (rl_catalog_find_name(cat, name, &info) == 0) {
		*out = info.uuid;
		return;
	}

	/* stamped with the catalog's epoch, as its writer would: a record
	 * of an epoch no catalog claim reached is refused */
	struct rl_record c = { .type = RL_CREATE,
			       .epoch = rl_catalog_epoch(cat), .name = name,
			       .mode = 0644 };
	uint8_t buf[RL_RECORD_HDR_SIZE + 512];
	ssize_t len;
	int64_t pos;

	rl_uuid_generate(&c.disk);
	len = rl_record_encode(&c, 0, buf, sizeof(buf), &err);
	if (len < 0)
		die("%s", err.msg);
	pos = rl_log_append_sync(s, buf, (size_t)len, NULL);
	if (pos < 0)
		die("create %s: %s", name, strerror((int)-pos));
	if (rl_catalog_apply(cat, &c, (uint64_t)pos, &err) < 0)
		die("%s", err.msg);
	*out = c.disk;
}

/* After a checkpoint: what the mount's retention would delete. */
static void trim_log(struct rl_log *log, struct rl_stream *s,
		     struct rl_image *img, const struct rl_uuid *disk)
{
	struct rl_positions *fol = NULL;
	struct rl_err err;
	int nf = rl_positions_list(log, &fol, &err);

	if (nf < 0)
		die("positions: %s", err.msg);
	if (rl_log_trim(s, rl_retention_bound(fol, (size_t)nf, disk,
					      rl_image_checkpointed(img)),
			&err) < 0)
		die("trim: %s", err.msg);
	rl_positions_free(fol, (size_t)nf);
}

static int do_load(const struct opts *o)
{
	struct rl_log_opts lopts = { .segment_bytes = o->segment_bytes };
	struct rl_writer_opts wopts = { .host = "testwriter",
					.zstd_min = o->zstd ? 4096 : 0 };
	struct load l = { .lock = PTHREAD_MUTEX_INITIALIZER,
			  .cond = PTHREAD_COND_INITIALIZER };
	char path[PATH_MAX], ckpt[PATH_MAX];
	struct rl_catalog *cat;
	struct rl_stream *s;
	struct rl_image *img;
	struct rl_log *log;
	struct rl_uuid disk;
	struct rl_err err;
	uint64_t st = o->seed * 0x9e3779b97f4a7c15ull + 1;
	uint64_t disk_size = o->size_mb << 20;

	if (rl_datadir_prepare(o->datadir, &err) < 0 ||
	    rl_datadir_lock(o->datadir, &err) < 0 ||
	    rl_log_open(o->log, RL_LOG_WRITE, &lopts, &log, &err) < 0 ||
	    rl_catalog_open(o->datadir, &cat, &err) < 0)
		die("%s", err.msg);
	load_disk_uuid(log, cat, o->disk, &disk);
	snprintf(path, sizeof(path), "%s/%s", o->datadir, o->disk);
	snprintf(ckpt, sizeof(ckpt), "%s/.repdisk/ckpt", o->datadir);
	if (rl_log_stream(log, &disk, &s, &err) < 0 ||
	    rl_image_open(path, ckpt, &disk, &img, &err) < 0 ||
	    rl_writer_open(s, img, o->disk, &wopts, &l.w, &err) < 0)
		die("%s", err.msg);
	l.acks_fd = open(o->acks, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			 0644);
	if (l.acks_fd < 0)
		die("%s: %s", o->acks, strerror(errno));

	/* the claim's seq: the writer numbers on from it */
	uint64_t base = rl_image_last_seq(img);
	unsigned long long ckpt_every = o->trim ? 100 : 500;

	for (unsigned long long i = 0; i < o->count; i++) {
		struct job *j = calloc(1, sizeof(*j));
		int rc;

		if (!j)
			die("out of memory");
		j->l = &l;
		make_record(j, &disk, &st, disk_size, o->zstd, o->write_kb);
		pthread_mutex_lock(&l.lock);
		while (l.in_flight >= o->inflight)
			pthread_cond_wait(&l.cond, &l.lock);
		l.in_flight++;
		pthread_mutex_unlock(&l.lock);
		/* the writer numbers records on from its claim's seq, and
		 * this loop is its only submitter; verify checks it */
		j->r.seq = base + i + 1;
		rc = rl_writer_submit(l.w, &j->r, job_done, j);
		if (rc < 0)
			die("submit: %s", strerror(-rc));
		if ((i + 1) % ckpt_every == 0) {
			if (rl_writer_checkpoint(l.w, &err) < 0)
				die("%s", err.msg);
			if (o->trim)
				trim_log(log, s, img, &disk);
		}
	}
	rl_writer_drain(l.w);
	if (l.failed)
		die("%llu records failed", l.failed);
	if (rl_writer_checkpoint(l.w, &err) < 0)
		die("%s", err.msg);
	if (o->trim)
		trim_log(log, s, img, &disk);
	rl_writer_close(l.w);
	rl_image_close(img);
	rl_catalog_close(cat);
	rl_log_close(log);
	close(l.acks_fd);
	return 0;
}

/* The uuid of disk name, from the catalog stream of log; dies if none. */
static struct rl_uuid catalog_disk(struct rl_log *log, const char *name)
{
	struct rl_stream *cs;
	struct rl_reader *rd;
	struct rl_uuid disk;
	struct rl_err err;
	bool found = false;
	int rc;

	if (rl_log_stream(log, NULL, &cs, &err) < 0 ||
	    rl_reader_open(cs, 0, &rd, &err) < 0)
		die("%s", err.msg);
	for (;;) {
		struct rl_record r;
		uint64_t at;

		rc = rl_reader_next(rd, &r, &at, 0, &err);
		if (rc < 0)
			die("%s", err.msg);
		if (rc == 0)
			break;
		if (r.type == RL_CREATE && strcmp(r.name, name) == 0) {
			disk = r.disk;
			found = true;
		}
	}
	rl_reader_close(rd);
	if (!found)
		die("disk %s not in the catalog", name);
	return disk;
}

/* ------------------------------------------------------------ forge */

static int do_forge(const struct opts *o)
{
	struct rl_log *log;
	struct rl_stream *s;
	struct rl_uuid disk;
	struct rl_err err;
	uint8_t data[512], buf[RL_RECORD_HDR_SIZE + 512];
	struct rl_record w = { .type = RL_WRITE, .epoch = 999, .seq = 1,
			       .length = sizeof(data), .data = data,
			       .data_len = sizeof(data) };
	ssize_t len;
	int64_t pos;

	/* with --key-file, only to open the log (its recovery checks the
	 * sealed records): the forged record itself is sealed with no key,
	 * as by someone who can write the log but has no key */
	struct rl_log_opts lo = { .key_file = o->key_file };

	if (rl_log_open(o->log, RL_LOG_WRITE, &lo, &log, &err) < 0)
		die("%s", err.msg);
	disk = catalog_disk(log, o->disk);
	memset(data, 'F', sizeof(data));
	w.disk = disk;
	len = rl_record_encode(&w, 0, buf, sizeof(buf), &err);
	if (len < 0 || rl_log_stream(log, &disk, &s, &err) < 0)
		die("%s", err.msg);
	pos = rl_log_append_sync(s, buf, (size_t)len, NULL);
	if (pos < 0)
		die("append: %s", strerror((int)-pos));
	printf("%" PRId64 "\n", pos);
	rl_log_close(log);
	return 0;
}

/* ------------------------------------------------------------ verify */

struct seen {
	uint64_t epoch, seq;
	char hash[2 * HASH_LEN + 1];
};

static int do_verify(const struct opts *o)
{
	struct rl_log *log;
	struct rl_stream *s;
	struct rl_reader *rd;
	struct rl_uuid disk;
	struct rl_err err;
	struct seen *v = NULL;
	size_t n = 0, cap = 0, acks = 0, older = 0;
	uint64_t prev_epoch = 0, prev_seq = 0, first_epoch = 0, first_seq = 0;
	bool any = false;
	char line[256], *start;
	FILE *f;
	int rc;

	if (rl_log_open(o->log, 0, NULL, &log, &err) < 0)
		die("%s", err.msg);
	disk = catalog_disk(log, o->disk);
	if (rl_log_stream(log, &disk, &s, &err) < 0)
		die("%s", err.msg);
	rc = rl_reader_open(s, 0, &rd, &err);
	if (rc == -ERANGE && (start = strstr(err.msg, "starts at position ")))
		rc = rl_reader_open(s, strtoull(start + 19, NULL, 10), &rd,
				    &err);	/* a trimmed log */
	if (rc < 0)
		die("%s", err.msg);
	for (;;) {
		struct rl_record r;
		uint64_t pos;

		rc = rl_reader_next(rd, &r, &pos, 0, &err);
		if (rc < 0)
			die("%s", err.msg);
		if (rc == 0)
			break;
		if (any && (r.epoch < prev_epoch ||
			    (r.epoch == prev_epoch && r.seq <= prev_seq)))
			die("position %" PRIu64 ": epoch %" PRIu64 " seq %"
			    PRIu64 " after epoch %" PRIu64 " seq %" PRIu64
			    ": the records do not rise", pos, r.epoch, r.seq,
			    prev_epoch, prev_seq);
		if (!any) {
			first_epoch = r.epoch;
			first_seq = r.seq;
		}
		any = true;
		prev_epoch = r.epoch;
		prev_seq = r.seq;
		if (r.type == RL_CLAIM)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				die("out of memory");
		}
		v[n].epoch = r.epoch;
		v[n].seq = r.seq;
		record_hash(&r, v[n].hash);
		n++;
	}
	rl_reader_close(rd);

	f = fopen(o->acks, "r");
	if (!f)
		die("%s: %s", o->acks, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long epoch, seq;
		char hash[2 * HASH_LEN + 1];
		bool ok = false;

		if (sscanf(line, "%llu %llu %32s", &epoch, &seq, hash) != 3)
			die("%s: bad line \"%s\"", o->acks, line);
		/* older than the first record left (a claim, it may be,
		 * when the rest was trimmed): trimmed from the log */
		if (any && (epoch < first_epoch ||
			    (epoch == first_epoch && seq < first_seq))) {
			older++;
			continue;
		}
		/* records of one epoch are in seq order: binary search would
		 * do, a scan is fast enough for test sizes */
		for (size_t i = 0; i < n && !ok; i++)
			if (v[i].epoch == epoch && v[i].seq == seq) {
				if (strcmp(v[i].hash, hash) != 0)
					die("acknowledged record epoch %llu seq "
					    "%llu differs in the log", epoch, seq);
				ok = true;
			}
		if (!ok)
			die("acknowledged record epoch %llu seq %llu is not in "
			    "the log", epoch, seq);
		acks++;
	}
	fclose(f);
	printf("verified %zu acknowledged records against %zu in the log",
	       acks, n);
	if (older)
		printf(" (%zu older ones trimmed from it)", older);
	printf("\n");
	free(v);
	rl_log_close(log);
	return 0;
}

/* One segment of downgrade: its 32-byte header as it is, then each record
 * in version 1; into path.new, then renamed over path. */
static int downgrade_one(const char *path, const struct stat *st, int type,
			 struct FTW *ftw)
{
	size_t len = (size_t)st->st_size, in = 32, out = 32;
	char tmp[PATH_MAX];
	uint8_t *a, *b;
	FILE *f;

	(void)ftw;
	if (type != FTW_F || strlen(path) < 4 ||
	    strcmp(path + strlen(path) - 4, ".seg") != 0)
		return 0;
	a = malloc(len ? len : 1);
	b = malloc(len ? len : 1);
	f = fopen(path, "rb");
	if (!a || !b || !f || fread(a, 1, len, f) != len || len < 32)
		die("read %s", path);
	fclose(f);
	memcpy(b, a, 32);
	while (in < len) {
		struct rl_err err;
		ssize_t n = rl_record_size(a + in, &err);

		if (n < 0 || (size_t)n > len - in)
			die("%s: byte %zu: %s", path, in,
			    n < 0 ? err.msg : "cut record");
		if (a[in + 4] == 3) {
			out += v1_downgrade(a + in, (size_t)n, b + out);
		} else {
			memcpy(b + out, a + in, (size_t)n);
			out += (size_t)n;
		}
		in += (size_t)n;
	}
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "wb");
	if (!f || fwrite(b, 1, out, f) != out || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0)
		die("write %s", tmp);
	free(a);
	free(b);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "datadir", required_argument, NULL, 'd' },
		{ "disk", required_argument, NULL, 'n' },
		{ "acks", required_argument, NULL, 'a' },
		{ "count", required_argument, NULL, 'c' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "seed", required_argument, NULL, 's' },
		{ "size-mb", required_argument, NULL, 'm' },
		{ "segment-bytes", required_argument, NULL, 'b' },
		{ "zstd", no_argument, NULL, 'z' },
		{ "trim", no_argument, NULL, 't' },
		{ "write-kb", required_argument, NULL, 'w' },
		{ "key-file", required_argument, NULL, 'k' },
		{ 0 }
	};
	struct opts o = { .count = 1000, .inflight = 16, .seed = 1,
			  .size_mb = 16 };
	int c;

	if (argc < 2 || sodium_init() < 0)
		die("usage: rl_testwriter load|verify|forge OPTIONS, or "
		    "downgrade LOGDIR");
	if (strcmp(argv[1], "downgrade") == 0) {
		if (argc != 3 || nftw(argv[2], downgrade_one, 16, FTW_PHYS) != 0)
			die("downgrade LOGDIR: %s", argc == 3 ? argv[2] :
			    "no directory given");
		return 0;
	}
	while ((c = getopt_long(argc - 1, argv + 1, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'l': o.log = optarg; break;
		case 'd': o.datadir = optarg; break;
		case 'n': o.disk = optarg; break;
		case 'a': o.acks = optarg; break;
		case 'c': o.count = strtoull(optarg, NULL, 10); break;
		case 'i': o.inflight = strtoull(optarg, NULL, 10); break;
		case 's': o.seed = strtoull(optarg, NULL, 10); break;
		case 'm': o.size_mb = strtoull(optarg, NULL, 10); break;
		case 'b': o.segment_bytes = strtoull(optarg, NULL, 10); break;
		case 'z': o.zstd = true; break;
		case 't': o.trim = true; break;
		case 'w': o.write_kb = strtoull(optarg, NULL, 10); break;
		case 'k': o.key_file = optarg; break;
		default: die("bad option");
		}
	}
	if (!o.log || !o.disk || !o.acks || o.inflight == 0 || o.size_mb == 0)
		die("--log, --disk and --acks are required");
	if (strcmp(argv[1], "load") == 0) {
		if (!o.datadir)
			die("load needs --datadir");
		return do_load(&o);
	}
	if (strcmp(argv[1], "verify") == 0)
		return do_verify(&o);
	if (strcmp(argv[1], "forge") == 0)
		return do_forge(&o);
	die("unknown mode %s", argv[1]);
}
