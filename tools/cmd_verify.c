/* repdisk verify: are two replicas of a disk the same bytes?
 *
 * Compares two images chunk by chunk with BLAKE2b and prints the ranges
 * that differ, to 4 KiB.  The images are either the disks of two data
 * directories (by name), or two image files, or (--replay) a disk's image
 * against a fresh replay of its log.
 *
 * Replicas legitimately differ while they are at different log positions,
 * so two data directories are compared only at a common position: verify
 * takes each directory's lock (no mount or follower may be applying while
 * it reads) and requires both checkpoints at the same position.  A
 * replica stopped cleanly (unmount, SIGTERM) has its image exactly at its
 * checkpoint.
 *
 * Sparse images are compared by their maps first: a range that is a hole
 * in both (SEEK_DATA) is equal without reading it, so a 10 GiB disk with
 * 1 GiB of data reads about 1 GiB from each side.  A range that is data on
 * one side only is read on both (the hole reads as zeros).
 *
 * Exit status: 0 every disk matches, 1 some differ, 2 usage, 3 error.
 */
#include "repdisk.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

static const char usage[] =
	"usage: repdisk verify [OPTIONS] DATADIR-A DATADIR-B [NAME...]\n"
	"       repdisk verify [OPTIONS] IMAGE-A IMAGE-B\n"
	"       repdisk verify --replay [--log URI] [OPTIONS] DATADIR [NAME...]\n"
	"\n"
	"Compares disks byte for byte, in chunks hashed with BLAKE2b, and prints\n"
	"the ranges that differ.  Data directories are compared disk by disk\n"
	"(NAMEs, or every disk of DATADIR-A) at a common log position: both\n"
	"must be at rest (verify takes their locks: stop the mount or follower\n"
	"using one, e.g. with SIGTERM) and their checkpoints at the same\n"
	"position.  --replay compares each image with a replay of its log from\n"
	"the start up to the image's position, made in a scratch file beside it.\n"
	"Holes present in both images are compared by map, not read.\n"
	"\n"
	"  -l, --log URI       the log for --replay (default file:DATADIR/.repdisk/log)\n"
	"      --replay        compare images with a replay of the log\n"
	"  -c, --chunk BYTES   bytes hashed at a time (default 1048576)\n"
	"  -q, --quiet         no progress line, even on a terminal\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 all match, 1 some differ, 2 usage, 3 error.\n";

#define EXIT_DIFFER	1
#define EXIT_ERROR	3
#define BLOCK		4096

struct verify {
	size_t chunk;
	struct tool_progress progress;
	uint8_t *a, *b;			/* chunk buffers */
	/* the range being reported, merged with adjacent differences */
	off_t diff_start, diff_end;
	uint64_t diff_bytes;
};

static void diff_flush(struct verify *v, const char *name)
{
	if (v->diff_end <= v->diff_start)
		return;
	if (v->progress.on)
		fputc('\r', stderr);
	printf("%s: differ at bytes %jd..%jd (%jd bytes)\n", name,
	       (intmax_t)v->diff_start, (intmax_t)v->diff_end - 1,
	       (intmax_t)(v->diff_end - v->diff_start));
	v->diff_bytes += (uint64_t)(v->diff_end - v->diff_start);
	v->diff_start = v->diff_end = 0;
}

static void diff_add(struct verify *v, const char *name, off_t start,
		     off_t end)
{
	if (v->diff_end > v->diff_start && v->diff_end == start) {
		v->diff_end = end;
		return;
	}
	diff_flush(v, name);
	v->diff_start = start;
	v->diff_end = end;
}

/* The next offset >= off holding data in fd, or size if none. */
static int next_data(int fd, off_t off, off_t size, off_t *out)
{
	off_t d;

	if (off >= size) {
		*out = size;
		return 0;
	}
	d = lseek(fd, off, SEEK_DATA);
	if (d < 0 && errno == ENXIO)
		d = size;
	else if (d < 0)
		return -errno;
	*out = d < size ? d : size;
	return 0;
}

/* Reads len bytes at off; zeros past the end of the file. */
static int read_at(int fd, void *buf, size_t len, off_t off, off_t size)
{
	size_t n = off >= size ? 0 : (size_t)(size - off) < len ?
		   (size_t)(size - off) : len;
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, (uint8_t *)buf + got, n - got,
				  off + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	memset((uint8_t *)buf + n, 0, len - n);
	return 0;
}

/* Compares the chunk [off, end) read into v->a and v->b by hash, and
 * adds each 4 KiB block that differs. */
static void compare_chunk(struct verify *v, const char *name, off_t off,
			  off_t end)
{
	uint8_t ha[32], hb[32];

	crypto_generichash(ha, sizeof(ha), v->a, (size_t)(end - off), NULL, 0);
	crypto_generichash(hb, sizeof(hb), v->b, (size_t)(end - off), NULL, 0);
	if (memcmp(ha, hb, sizeof(ha)) == 0)
		return;
	/* narrow the difference down to blocks */
	for (off_t o = off; o < end; o += BLOCK) {
		size_t n = end - o < BLOCK ? (size_t)(end - o) : BLOCK;

		if (memcmp(v->a + (o - off), v->b + (o - off), n) != 0)
			diff_add(v, name, o, o + (off_t)n);
	}
}

/* Compares two open images.  Returns 0 equal, 1 different, -errno. */
static int compare_fds(struct verify *v, const char *name, int fa, int fb)
{
	struct stat sa, sb;
	off_t size, off = 0, da = -1, db = -1;
	int rc;

	if (fstat(fa, &sa) < 0 || fstat(fb, &sb) < 0)
		return -errno;
	size = sa.st_size > sb.st_size ? sa.st_size : sb.st_size;
	v->diff_bytes = 0;
	v->diff_start = v->diff_end = 0;
	tool_progress_start(&v->progress);
	if (sa.st_size != sb.st_size)
		printf("%s: sizes differ: %jd and %jd bytes\n", name,
		       (intmax_t)sa.st_size, (intmax_t)sb.st_size);
	while (off < size) {
		off_t end, hole_to;

		/* skip what is a hole in both */
		if (da < off && (rc = next_data(fa, off, sa.st_size, &da)) < 0)
			return rc;
		if (db < off && (rc = next_data(fb, off, sb.st_size, &db)) < 0)
			return rc;
		if (da >= sa.st_size)
			da = size;
		if (db >= sb.st_size)
			db = size;
		hole_to = da < db ? da : db;
		if (hole_to > off) {
			/* a hole in both: equal without reading */
			off = hole_to;
			if (off >= size)
				break;
		}
		end = off + (off_t)v->chunk < size ? off + (off_t)v->chunk : size;
		rc = read_at(fa, v->a, (size_t)(end - off), off, sa.st_size);
		if (rc == 0)
			rc = read_at(fb, v->b, (size_t)(end - off), off,
				     sb.st_size);
		if (rc < 0)
			return rc;
		compare_chunk(v, name, off, end);
		off = end;
		tool_progress(&v->progress, name, (uint64_t)off, (uint64_t)size,
			      false);
	}
	diff_flush(v, name);
	tool_progress(&v->progress, name, (uint64_t)size, (uint64_t)size, true);
	return v->diff_bytes || sa.st_size != sb.st_size ? 1 : 0;
}

static int compare_paths(struct verify *v, const char *name, const char *pa,
			 const char *pb)
{
	int fa = open(pa, O_RDONLY | O_CLOEXEC), fb = -1, rc;

	if (fa < 0 || (fb = open(pb, O_RDONLY | O_CLOEXEC)) < 0) {
		tool_error("verify", "%s: %s", fa < 0 ? pa : pb,
			   strerror(errno));
		if (fa >= 0)
			close(fa);
		return -EIO;
	}
	rc = compare_fds(v, name, fa, fb);
	if (rc < 0)
		tool_error("verify", "%s: reading %s and %s: %s", name, pa, pb,
			   strerror(-rc));
	close(fa);
	close(fb);
	return rc;
}

/* What one comparison found, for verdict_print.  The differing ranges
 * are printed while the comparison runs (it may take long); the verdict
 * is the line that ends a disk. */
struct verdict {
	enum { V_IMAGES, V_DISKS, V_REPLAY, V_UUIDS } what;
	const char *name;	/* the disk, or image A */
	const char *other;	/* image B (V_IMAGES) */
	int rc;			/* 0 equal, 1 different, -errno (said already) */
	uint64_t pos;		/* the log position compared at */
	uint64_t diff_bytes;
};

static void verdict_print(const struct verdict *r)
{
	if (r->rc < 0)
		return;
	switch (r->what) {
	case V_IMAGES:
		if (r->rc == 0)
			printf("%s and %s: identical\n", r->name, r->other);
		else
			printf("%s and %s: DIFFERENT: %" PRIu64 " bytes differ\n",
			       r->name, r->other, r->diff_bytes);
		break;
	case V_DISKS:
		if (r->rc == 0)
			printf("%s: identical at log position %" PRIu64 "\n",
			       r->name, r->pos);
		else
			printf("%s: DIFFERENT at log position %" PRIu64 ": %"
			       PRIu64 " bytes differ\n", r->name, r->pos,
			       r->diff_bytes);
		break;
	case V_REPLAY:
		if (r->rc == 0)
			printf("%s: identical to a replay of the log up to "
			       "position %" PRIu64 "\n", r->name, r->pos);
		else
			printf("%s: DIFFERENT from a replay of the log up to "
			       "position %" PRIu64 ": %" PRIu64 " bytes differ\n",
			       r->name, r->pos, r->diff_bytes);
		break;
	case V_UUIDS:
		printf("%s: not the same disk: different uuids\n", r->name);
		break;
	}
}

/* Compares two paths into r (r->what and r->pos set by the caller). */
static int verdict_compare(struct verify *v, struct verdict *r,
			   const char *pa, const char *pb)
{
	r->rc = compare_paths(v, r->name, pa, pb);
	r->diff_bytes = v->diff_bytes;
	return r->rc;
}

/* ------------------------------------------------------------ datadirs */

struct side {
	const char *dir;
	char ckpt[PATH_MAX];
	struct rl_catalog *cat;
	int lock;
};

static int side_open(struct side *s, const char *dir)
{
	struct rl_err err = { 0 };

	s->dir = dir;
	s->cat = NULL;
	snprintf(s->ckpt, sizeof(s->ckpt), "%s/.repdisk/ckpt", dir);
	s->lock = rl_datadir_lock(dir, &err);
	if (s->lock < 0) {
		tool_error("verify", "%s%s", err.msg, s->lock == -EBUSY ?
			   " (a mount or follower: stop it first, e.g. "
			   "fusermount3 -u or SIGTERM)" : "");
		return -1;
	}
	if (rl_catalog_open(dir, &s->cat, &err) < 0) {
		tool_error("verify", "%s", err.msg);
		close(s->lock);
		s->lock = -1;
		return -1;
	}
	return 0;
}

static void side_close(struct side *s)
{
	if (s->cat)
		rl_catalog_close(s->cat);
	if (s->lock >= 0)
		close(s->lock);
}

static bool is_datadir(const char *p)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/.repdisk", p);
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
	       stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The log position at which both sides hold disk u: -errno (said) when
 * they hold it at different ones. */
static int common_pos(struct side *a, struct side *b, const char *name,
		      const struct rl_uuid *u, uint64_t *pos)
{
	struct rl_checkpoint ca, cb;
	struct rl_err err = { 0 };

	if (rl_checkpoint_read(a->ckpt, u, &ca, &err) < 0 ||
	    rl_checkpoint_read(b->ckpt, u, &cb, &err) < 0) {
		if (err.code != ENOENT) {
			tool_error("verify", "%s: %s", name, err.msg);
			return -EIO;
		}
		/* no checkpoint yet on a side: only comparable if neither
		 * has one (both at position 0) */
		if (rl_checkpoint_read(a->ckpt, u, &ca, NULL) < 0)
			memset(&ca, 0, sizeof(ca));
		if (rl_checkpoint_read(b->ckpt, u, &cb, NULL) < 0)
			memset(&cb, 0, sizeof(cb));
	}
	if (ca.next_pos != cb.next_pos) {
		tool_error("verify", "%s: not at a common log position: %s is "
			   "at %" PRIu64 ", %s at %" PRIu64 "; let the one "
			   "behind catch up (repdisk follow --once) and retry",
			   name, a->dir, ca.next_pos, b->dir, cb.next_pos);
		return -EAGAIN;
	}
	*pos = ca.next_pos;
	return 0;
}

/* Compares disk r->name of two data directories at a common position. */
static int verify_disk(struct verify *v, struct side *a, struct side *b,
		       struct verdict *r)
{
	struct rl_disk_info da, db;
	char pa[PATH_MAX], pb[PATH_MAX];

	r->what = V_DISKS;
	if (rl_catalog_find_name(a->cat, r->name, &da) < 0 ||
	    rl_catalog_find_name(b->cat, r->name, &db) < 0) {
		tool_error("verify", "%s: no such disk in %s", r->name,
			   rl_catalog_find_name(a->cat, r->name, &da) < 0 ?
			   a->dir : b->dir);
		return r->rc = -ENOENT;
	}
	if (!rl_uuid_eq(&da.uuid, &db.uuid)) {
		r->what = V_UUIDS;
		return r->rc = 1;
	}
	r->rc = common_pos(a, b, r->name, &da.uuid, &r->pos);
	if (r->rc < 0)
		return r->rc;
	snprintf(pa, sizeof(pa), "%s/%s", a->dir, r->name);
	snprintf(pb, sizeof(pb), "%s/%s", b->dir, r->name);
	return verdict_compare(v, r, pa, pb);
}

/* --replay: a scratch image and its checkpoint directory, in the data
 * directory's state (.repdisk/verify/), removed after each disk. */
struct scratch {
	char dir[PATH_MAX], image[PATH_MAX];
	struct rl_uuid disk;
};

static void scratch_init(struct scratch *sc, const char *datadir,
			 const struct rl_uuid *disk)
{
	sc->disk = *disk;
	snprintf(sc->dir, sizeof(sc->dir), "%s/.repdisk/verify", datadir);
	snprintf(sc->image, sizeof(sc->image), "%s/.repdisk/verify/image",
		 datadir);
}

static int scratch_make(const struct scratch *sc, struct rl_err *err)
{
	unlink(sc->image);	/* left by an interrupted verify */
	if (mkdir(sc->dir, 0700) < 0 && errno != EEXIST)
		return rl_err_set(err, errno, "%s: %s", sc->dir,
				  strerror(errno));
	return 0;
}

static void scratch_remove(const struct scratch *sc)
{
	/* the scratch checkpoint, if one was written */
	char u[RL_UUID_STRLEN + 1], p[PATH_MAX + 64];

	unlink(sc->image);
	rl_uuid_format(&sc->disk, u);
	snprintf(p, sizeof(p), "%s/%s", sc->dir, u);
	unlink(p);
	rmdir(sc->dir);
}

/* Applies the disk's stream from 0 up to position `to` to the scratch
 * image. */
static int scratch_replay(const struct scratch *sc, struct rl_log *log,
			  uint64_t to, struct rl_err *err)
{
	struct rl_stream *s;
	struct rl_reader *r = NULL;
	struct rl_image *img = NULL;
	int rc;

	rc = rl_log_stream(log, &sc->disk, &s, err);
	if (rc == 0)
		rc = rl_image_open(sc->image, sc->dir, &sc->disk, &img, err);
	if (rc == 0 && to > 0)
		rc = rl_reader_open(s, 0, &r, err);
	while (rc >= 0 && rl_image_next_pos(img) < to) {
		struct rl_record rec;
		uint64_t pos;

		rc = rl_reader_next(r, &rec, &pos, 5000, err);
		if (rc == 0)
			rc = rl_err_set(err, EIO, "the log ends at position "
					"%" PRIu64 ", before the image's %" PRIu64,
					rl_image_next_pos(img), to);
		if (rc > 0)
			rc = rl_image_apply(img, &rec, pos, err);
	}
	rl_reader_close(r);
	rl_image_close(img);
	return rc;
}

/* Replays disk r->name's stream from 0 up to the image's checkpoint into
 * a scratch image beside it, and compares. */
static int verify_replay(struct verify *v, struct side *a, struct rl_log *log,
			 struct verdict *r)
{
	struct rl_disk_info d;
	struct rl_checkpoint c;
	struct rl_err err = { 0 };
	struct scratch sc;
	char pa[PATH_MAX];
	int rc;

	r->what = V_REPLAY;
	if (rl_catalog_find_name(a->cat, r->name, &d) < 0) {
		tool_error("verify", "%s: no such disk in %s", r->name, a->dir);
		return r->rc = -ENOENT;
	}
	scratch_init(&sc, a->dir, &d.uuid);
	rc = rl_checkpoint_read(a->ckpt, &d.uuid, &c, &err);
	if (rc == -ENOENT)
		rc = 0;		/* c is zeroed: replay nothing */
	if (rc == 0)
		rc = scratch_make(&sc, &err);
	if (rc == 0)
		rc = scratch_replay(&sc, log, c.next_pos, &err);
	if (rc < 0) {
		tool_error("verify", "%s: replay: %s", r->name, err.msg);
		r->rc = rc;
	} else {
		r->pos = c.next_pos;
		snprintf(pa, sizeof(pa), "%s/%s", a->dir, r->name);
		verdict_compare(v, r, pa, sc.image);
	}
	scratch_remove(&sc);
	return r->rc;
}

struct verify_args {
	const char *uri;
	bool replay, quiet;
	size_t chunk;
	char **paths;		/* data directories or images, then NAMEs */
	int n;
};

/* TOOL_GO_ON, or the exit status to return (--help, a usage error). */
static int verify_parse(int argc, char **argv, struct verify_args *a)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "replay", no_argument, NULL, 'R' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	unsigned long long n;
	int c;

	a->chunk = 1 << 20;
	while ((c = getopt_long(argc, argv, "l:c:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'l': a->uri = optarg; break;
		case 'R': a->replay = true; break;
		case 'q': a->quiet = true; break;
		case 'c':
			if (cli_parse_u64(optarg, &n) < 0 || n < BLOCK ||
			    n > (64u << 20) || n % BLOCK)
				return tool_usage_error(usage, "verify: bad "
					"--chunk \"%s\" (a multiple of 4096, "
					"at most 64 MiB)", optarg);
			a->chunk = (size_t)n;
			break;
		default:
			return tool_option("verify", usage, NULL, c, optarg);
		}
	}
	a->paths = argv + optind;
	a->n = argc - optind;
	if (a->n < (a->replay ? 1 : 2))
		return tool_usage_error(usage, "verify: expected %s",
					a->replay ? "DATADIR" : "two data "
					"directories or two images");
	return TOOL_GO_ON;
}

/* 0 all equal, 1 some differ, -errno an error: the exit status. */
static int verify_status(int worst)
{
	return worst < 0 ? EXIT_ERROR : worst ? EXIT_DIFFER : 0;
}

/* Two image files, not data directories: no positions to check. */
static int verify_images(struct verify *v, const struct verify_args *args)
{
	struct verdict r = { .what = V_IMAGES, .name = args->paths[0],
			     .other = args->paths[1] };

	if (args->n != 2)
		return tool_usage_error(usage, "verify: NAMEs are for data "
					"directories");
	verdict_compare(v, &r, r.name, r.other);
	verdict_print(&r);
	return verify_status(r.rc);
}

/* Locks and opens the data directories, and the log for --replay. */
static int datadirs_open(const struct verify_args *args, struct side *a,
			 struct side *b, struct rl_log **log)
{
	struct rl_err err = { 0 };
	char defuri[PATH_MAX + 32];
	const char *uri = args->uri;

	if (side_open(a, args->paths[0]) < 0 ||
	    (!args->replay && side_open(b, args->paths[1]) < 0))
		return -1;
	if (!args->replay)
		return 0;
	if (!uri) {
		tool_default_log(args->paths[0], defuri, sizeof(defuri));
		uri = defuri;
	}
	if (rl_log_open(uri, 0, NULL, log, &err) < 0) {
		tool_error("verify", "%s", err.msg);
		return -1;
	}
	return 0;
}

/* Compares the disks named after the data directories, or every disk of
 * a, one by one, each verdict printed when that disk is done; stops at
 * the first error.  Returns 0, 1 some differ, or -errno. */
static int verify_each(struct verify *v, const struct verify_args *args,
		       struct side *a, struct side *b, struct rl_log *log)
{
	int first = args->replay ? 1 : 2, worst = 0;
	size_t nd = (size_t)(args->n - first);
	struct rl_disk_info *disks = NULL;

	if (nd == 0) {
		nd = rl_catalog_disks(a->cat, NULL, 0);
		disks = calloc(nd ? nd : 1, sizeof(*disks));
		if (!disks)
			return -ENOMEM;
		nd = rl_catalog_disks(a->cat, disks, nd);
	}
	for (size_t i = 0; worst >= 0 && i < nd; i++) {
		struct verdict r = { .name = disks ? disks[i].name :
						     args->paths[first + i] };

		if (args->replay)
			verify_replay(v, a, log, &r);
		else
			verify_disk(v, a, b, &r);
		verdict_print(&r);
		if (r.rc < 0)
			worst = r.rc;
		else if (r.rc > 0 && worst == 0)
			worst = 1;
	}
	free(disks);
	return worst;
}

static int verify_datadirs(struct verify *v, const struct verify_args *args)
{
	struct side a = { .lock = -1 }, b = { .lock = -1 };
	struct rl_log *log = NULL;
	int worst = -EIO;

	if (datadirs_open(args, &a, &b, &log) == 0)
		worst = verify_each(v, args, &a, &b, log);
	rl_log_close(log);
	side_close(&a);
	side_close(&b);
	return verify_status(worst);
}

/* Compares what args names; each difference and each disk's verdict is
 * printed as it is found (a comparison of large disks takes long).
 * Returns the exit status. */
static int verify_run(const struct verify_args *args)
{
	struct verify v = { .chunk = args->chunk,
			    .progress.on = isatty(2) && !args->quiet };
	int rc;

	v.a = malloc(v.chunk);
	v.b = malloc(v.chunk);
	if (!v.a || !v.b) {
		tool_error("verify", "out of memory");
		rc = EXIT_ERROR;
	} else if (!args->replay && !is_datadir(args->paths[0]) &&
		   !is_datadir(args->paths[1])) {
		rc = verify_images(&v, args);
	} else {
		rc = verify_datadirs(&v, args);
	}
	free(v.a);
	free(v.b);
	return rc;
}

int cmd_verify(int argc, char **argv)
{
	struct verify_args a = { 0 };
	int rc = verify_parse(argc, argv, &a);

	return rc == TOOL_GO_ON ? verify_run(&a) : rc;
}
