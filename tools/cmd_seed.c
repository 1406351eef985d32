/* repdisk seed: rebuild a replica from a copy of another one, plus the log.
 *
 * Replaying a disk's whole log can take long, and a log whose old records
 * were deleted cannot be replayed from the start at all.  A replica is
 * instead rebuilt from a plain copy of another replica's image, then
 * caught up from the log.
 *
 * Why a copy taken while the source keeps changing still converges: the
 * source's checkpoint (position C) is read before the image is copied, and
 * the image then holds at least everything before C.  Each block of the
 * copy holds the block's content at some position >= C.  Replaying every
 * record from C on rewrites each block that changed after C with its
 * final content, in log order, and a block that did not change after C
 * already holds it.  The same argument holds from any position <= C, so
 * the order of the steps below also makes seed itself safe to interrupt:
 *
 *   1. the destination's catalog: kept if it has one (the disk must be in
 *      it), else the source's catalog state is installed (it replays from
 *      its own position like a checkpoint);
 *   2. per disk: read the source's checkpoint C; remove the destination's
 *      checkpoint (an interrupted seed then replays from 0, never from a
 *      position past what the copy holds); copy the image sparsely under
 *      a temporary name, fdatasync, rename it into place; install C;
 *   3. catch the data directory up from the log, as `follow --once` does.
 *
 * Before the copies of step 2, seed registers the new replica as a
 * follower (its name, with the source's positions): file log retention
 * then keeps what the replay will need, however long the copy takes.
 *
 * seed_run reads as those steps: seed_open (the lock and step 1),
 * seed_list (the disks, each known to both catalogs), seed_register,
 * seed_copy (step 2, each disk said when done), replay (step 3).
 *
 * The source is only read (its files are replaced atomically by their
 * writers), so a running mount or follower may use it meanwhile.
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

static const char usage[] =
	"usage: repdisk seed --from SOURCE [--log URI] [OPTIONS] DATADIR [NAME...]\n"
	"\n"
	"Rebuilds the disks of DATADIR (NAMEs, or every disk of SOURCE) from a\n"
	"copy of another replica's images, then replays the log from where\n"
	"the copy starts, so SOURCE may keep changing while it is copied.\n"
	"SOURCE is that replica's data directory (a primary's or a follower's,\n"
	"running or not), readable from here.  DATADIR must not be in use.\n"
	"\n"
	"  -F, --from SOURCE   the data directory to copy from\n"
	"  -l, --log URI       the log to replay (default file:SOURCE/.repdisk/log)\n"
	"  -n, --name NAME     the new replica's follower name, registered with\n"
	"                      the log before the copy so that retention keeps\n"
	"                      what it needs (default HOST-DIR, as follow's)\n"
	"      --no-replay     copy only (a follower started later replays)\n"
	"  -q, --quiet         no progress line, even on a terminal\n"
	"      --namespace NS, -o kafka.PROP=VALUE, --kafka-config FILE\n"
	"                      Kafka log options, as for repdisk follow\n"
	"      --key-file FILE the deployment's keys (repdisk key)\n"
	"  -h, --help          show this help\n";

#define CHUNK	(1u << 20)

/* A seed under way: what seed_open opened, seed_close closes. */
struct seed {
	const char *src, *dst;
	struct tool_progress progress;
	uint64_t copied, total;		/* of the image being copied */
	uint8_t *buf;
	int lock;			/* the destination's */
	struct rl_catalog *src_cat, *dst_cat;
	struct rl_disk_info *disks;	/* the disks to seed */
	size_t nd;
	struct rl_log *log;
};

static bool all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* The bytes of data (not holes) in fd, for the progress line. */
static uint64_t data_bytes(int fd, off_t size)
{
	uint64_t total = 0;

	for (off_t o = 0; o < size;) {
		off_t d = lseek(fd, o, SEEK_DATA), h;

		if (d < 0)
			break;
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			h = size;
		total += (uint64_t)(h - d);
		o = h;
	}
	return total;
}

/* Copies the data extent [d, h) of in to out, leaving zero chunks as
 * holes. */
static int copy_extent(struct seed *s, const char *name, int in, int out,
		       off_t d, off_t h)
{
	for (off_t off = d; off < h;) {
		size_t n = (size_t)(h - off) < CHUNK ? (size_t)(h - off) : CHUNK;
		ssize_t r = pread(in, s->buf, n, off);

		if (r <= 0) {
			/* the source shrank while copied: the log's RESIZE
			 * will say what the size is */
			return r == 0 ? 0 : -errno;
		}
		if (!all_zero(s->buf, (size_t)r) &&
		    pwrite(out, s->buf, (size_t)r, off) != r)
			return errno ? -errno : -EIO;
		off += r;
		s->copied += (uint64_t)r;
		tool_progress(&s->progress, name, s->copied, s->total, false);
	}
	return 0;
}

/* Copies from's data extents into a new file `to`, keeping holes (and
 * turning zero chunks into holes); fdatasyncs it. */
static int copy_sparse(struct seed *s, const char *name, const char *from,
		       const char *to)
{
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
	struct stat st;
	off_t off = 0;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0 || fstat(in, &st) < 0) {
		rc = -errno;
		goto out;
	}
	tool_progress_start(&s->progress);
	s->copied = 0;
	s->total = data_bytes(in, st.st_size);
	while (rc == 0 && off < st.st_size) {
		off_t d = lseek(in, off, SEEK_DATA), h;

		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0) {
			rc = -errno;
			goto out;
		}
		h = lseek(in, d, SEEK_HOLE);
		if (h < 0)
			h = st.st_size;
		rc = copy_extent(s, name, in, out, d, h);
		off = h;
	}
	if (rc < 0)
		goto out;
	if (ftruncate(out, st.st_size) < 0 || fdatasync(out) < 0 ||
	    fchmod(out, st.st_mode & 07777) < 0)
		rc = -errno;
	tool_progress(&s->progress, name, s->copied, s->copied, true);
out:
	if (out >= 0)
		close(out);
	close(in);
	if (rc < 0)
		unlink(to);
	return rc;
}

/* What seeding one disk did, for seeded_print. */
struct seeded {
	const char *name;
	uint64_t pos;		/* the log position its replay starts at */
};

static void seeded_print(const struct seed *s, const struct seeded *r)
{
	printf("%s: copied from %s, log position %" PRIu64 "\n", r->name,
	       s->src, r->pos);
}

/* Copies d's image under a temporary name (u: d's uuid) and renames it
 * into place, owned as the catalog says. */
static int seed_image(struct seed *s, const struct rl_disk_info *d,
		      const char *u)
{
	/* sized for a directory of PATH_MAX plus a name */
	char from[PATH_MAX + 512], to[PATH_MAX + 512], tmp[PATH_MAX + 512];
	int rc;

	snprintf(from, sizeof(from), "%s/%s", s->src, d->name);
	snprintf(tmp, sizeof(tmp), "%s/.repdisk/seed-%s", s->dst, u);
	snprintf(to, sizeof(to), "%s/%s", s->dst, d->name);
	rc = copy_sparse(s, d->name, from, tmp);
	if (rc == 0 && rename(tmp, to) < 0)
		rc = -errno;
	if (rc < 0) {
		tool_error("seed", "%s: copy %s: %s", d->name, from,
			   strerror(-rc));
		unlink(tmp);
		return rc;
	}
	/* root keeps the owner the catalog gives the disk */
	if (geteuid() == 0 && chown(to, d->uid, d->gid) < 0) {
		tool_error("seed", "%s: %s", to, strerror(errno));
		return -EIO;
	}
	return 0;
}

/* Steps 1 to 3 of the top for one disk, into r. */
static int seed_disk(struct seed *s, const struct rl_disk_info *d,
		     struct seeded *r)
{
	char u[RL_UUID_STRLEN + 1], sck[PATH_MAX], dck[PATH_MAX];
	char path[PATH_MAX + 512];
	struct rl_checkpoint c;
	struct rl_err err = { 0 };
	bool have_ckpt;
	int rc;

	rl_uuid_format(&d->uuid, u);
	snprintf(sck, sizeof(sck), "%s/.repdisk/ckpt", s->src);
	snprintf(dck, sizeof(dck), "%s/.repdisk/ckpt", s->dst);

	/* 1. the source's checkpoint, before its image (none yet: the
	 * replay starts at 0) */
	rc = rl_checkpoint_read(sck, &d->uuid, &c, &err);
	have_ckpt = rc == 0;
	if (rc < 0 && rc != -ENOENT) {
		tool_error("seed", "%s", err.msg);
		return -EIO;
	}

	/* 2. no checkpoint here while the image is replaced */
	snprintf(path, sizeof(path), "%s/%s", dck, u);
	if (unlink(path) < 0 && errno != ENOENT) {
		tool_error("seed", "%s: %s", path, strerror(errno));
		return -EIO;
	}
	rc = seed_image(s, d, u);
	if (rc < 0)
		return rc;

	/* 3. the checkpoint: replay starts at C */
	if (have_ckpt && rl_checkpoint_write(dck, &d->uuid, &c, &err) < 0) {
		tool_error("seed", "%s", err.msg);
		return -EIO;
	}
	r->name = d->name;
	r->pos = c.next_pos;
	return 0;
}

/* Registers `name` as a follower at the source's positions (catalog and
 * each disk's checkpoint), before anything is copied. */
static int register_replica(struct rl_log *log, const char *name,
			    const struct seed *s, struct rl_catalog *src_cat,
			    const struct rl_disk_info *disks, size_t nd)
{
	struct rl_positions p = { .n = 0 };
	struct rl_err err = { 0 };
	char ck[PATH_MAX];
	int rc;

	p.pos = calloc(nd + 1, sizeof(*p.pos));
	if (!p.pos)
		return -ENOMEM;
	snprintf(p.name, sizeof(p.name), "%s", name);
	p.time_ms = rl_clock_ms(CLOCK_REALTIME);
	p.pos[p.n++].next_pos = rl_catalog_next_pos(src_cat);
	snprintf(ck, sizeof(ck), "%s/.repdisk/ckpt", s->src);
	for (size_t i = 0; i < nd; i++) {
		struct rl_checkpoint c;

		if (rl_checkpoint_read(ck, &disks[i].uuid, &c, NULL) < 0)
			c.next_pos = 0;
		p.pos[p.n].disk = disks[i].uuid;
		p.pos[p.n++].next_pos = c.next_pos;
	}
	rc = rl_positions_publish(log, &p, &err);
	free(p.pos);
	if (rc < 0)
		tool_error("seed", "register replica %s with the log: %s",
			   name, err.msg);
	return rc;
}

/* Catches the data directory up from the log: `follow --once`. */
static int replay(const char *datadir, struct rl_log *log, const char *uri,
		  const char *name)
{
	struct rl_follow_opts fopts = { .name = name };
	struct rl_follower *f = NULL;
	struct rl_err err = { 0 };
	long total = 0;
	int rc;

	rc = rl_follower_open(log, datadir, &fopts, &f, &err);
	while (rc == 0) {
		int n = rl_follower_step(f, &err);

		if (n <= 0) {
			rc = n;
			break;
		}
		total += n;
	}
	if (rc == 0)
		rc = rl_follower_checkpoint(f, &err);
	if (rc == 0 && rl_follower_publish(f, true, &err) < 0)
		tool_error("seed", "warning: %s", err.msg);
	if (rc < 0)
		tool_error("seed", "replay: %s", err.msg);
	else {
		char shown[PATH_MAX + 64];

		rl_redact(uri, shown, sizeof(shown));
		printf("replayed %ld records from %s\n", total, shown);
	}
	rl_follower_close(f);
	return rc;
}

struct seed_args {
	const char *src, *dst, *uri;
	char defuri[PATH_MAX + 32];
	char name[RL_FOLLOWER_NAME_MAX + 1];
	bool no_replay, quiet;
	char **names;		/* the disks to seed; none: every disk */
	int n;
	struct rl_log_opts lopts;
};

/* TOOL_GO_ON, or the exit status to return (--help, a usage error). */
static int seed_parse(int argc, char **argv, struct seed_args *a)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'F' },
		{ "log", required_argument, NULL, 'l' },
		{ "no-replay", no_argument, NULL, 'R' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "name", required_argument, NULL, 'n' },
		CLI_LOG_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct rl_err err;
	int c, rc;

	while ((c = getopt_long(argc, argv, "F:l:n:qo:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (rl_follower_name_check(optarg, &err) < 0)
				return tool_usage_error(usage, "seed: --name: %s",
							err.msg);
			snprintf(a->name, sizeof(a->name), "%s", optarg);
			break;
		case 'F': a->src = optarg; break;
		case 'l': a->uri = optarg; break;
		case 'R': a->no_replay = true; break;
		case 'q': a->quiet = true; break;
		default:
			rc = tool_option("seed", usage, &a->lopts, c, optarg);
			if (rc != TOOL_GO_ON)
				return rc;
		}
	}
	if (!a->src || optind >= argc)
		return tool_usage_error(usage, "seed: %s", !a->src ?
					"--from SOURCE is required" :
					"expected DATADIR");
	a->dst = argv[optind++];
	a->names = argv + optind;
	a->n = argc - optind;
	if (!a->uri) {
		tool_default_log(a->src, a->defuri, sizeof(a->defuri));
		a->uri = a->defuri;
	}
	return TOOL_GO_ON;
}

/* Locks the destination (made if missing) and opens both catalogs; step
 * 1 of the top. */
static int seed_open(struct seed *s)
{
	struct rl_err err = { 0 };
	char path[PATH_MAX];
	int rc;

	s->buf = malloc(CHUNK);
	rc = s->buf ? 0 : rl_err_set(&err, ENOMEM, "out of memory");
	if (rc == 0 && mkdir(s->dst, 0700) < 0 && errno != EEXIST)
		rc = rl_err_set(&err, errno, "%s: %s", s->dst, strerror(errno));
	if (rc == 0)
		rc = rl_datadir_prepare(s->dst, &err);
	if (rc == 0)
		rc = s->lock = rl_datadir_lock(s->dst, &err);
	if (rc >= 0)
		rc = rl_catalog_open(s->src, &s->src_cat, &err);
	/* 1. the catalog: the destination's if it has one, else the
	 * source's state, which replays from its own position */
	snprintf(path, sizeof(path), "%s/.repdisk/catalog", s->dst);
	if (rc >= 0 && access(path, F_OK) < 0)
		rc = rl_catalog_copy_state(s->src, s->dst, &err);
	if (rc >= 0)
		rc = rl_catalog_open(s->dst, &s->dst_cat, &err);
	if (rc < 0) {
		tool_error("seed", "%s", err.msg);
		return -1;
	}
	return 0;
}

/* The disks to seed (names, or every disk of the source), each of which
 * the destination's catalog must know by the same name. */
static int seed_list(struct seed *s, char **names, size_t n)
{
	s->nd = n ? n : rl_catalog_disks(s->src_cat, NULL, 0);
	s->disks = calloc(s->nd ? s->nd : 1, sizeof(*s->disks));
	if (!s->disks)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (rl_catalog_find_name(s->src_cat, names[i],
					 &s->disks[i]) < 0) {
			tool_error("seed", "%s: no such disk in %s", names[i],
				   s->src);
			return -1;
		}
	}
	if (!n)
		s->nd = rl_catalog_disks(s->src_cat, s->disks, s->nd);
	for (size_t i = 0; i < s->nd; i++) {
		const struct rl_disk_info *d = &s->disks[i];
		struct rl_disk_info here;

		if (rl_catalog_find_uuid(s->dst_cat, &d->uuid, &here) < 0 ||
		    strcmp(here.name, d->name) != 0) {
			tool_error("seed", "%s: %s does not know this disk by "
				   "that name yet (its catalog is behind "
				   "%s's): catch it up first with repdisk "
				   "follow --once, or seed into an empty data "
				   "directory", d->name, s->dst, s->src);
			return -1;
		}
	}
	return 0;
}

/* Opens the log and registers the new replica with it, under its name
 * (the default one if none was given). */
static int seed_register(struct seed *s, struct seed_args *a)
{
	struct rl_err err = { 0 };

	if (!a->name[0])
		tool_follower_name(a->name, s->dst);
	if (rl_log_open(a->uri, 0, &a->lopts, &s->log, &err) < 0) {
		tool_error("seed", "%s", err.msg);
		return -1;
	}
	return register_replica(s->log, a->name, s, s->src_cat, s->disks,
				s->nd);
}

/* 2. the disks, each said when copied.  The destination's catalog is
 * closed after: the replay opens its own. */
static int seed_copy(struct seed *s)
{
	for (size_t i = 0; i < s->nd; i++) {
		struct seeded r;

		if (seed_disk(s, &s->disks[i], &r) < 0)
			return -1;
		seeded_print(s, &r);
	}
	rl_catalog_close(s->dst_cat);
	s->dst_cat = NULL;
	return 0;
}

static void seed_close(struct seed *s)
{
	free(s->disks);
	if (s->src_cat)
		rl_catalog_close(s->src_cat);
	if (s->dst_cat)
		rl_catalog_close(s->dst_cat);
	if (s->lock >= 0)
		close(s->lock);
	free(s->buf);
	rl_log_close(s->log);
}

/* Seeds a->dst (see the top).  Each disk's copy and the replay are said
 * on stdout as each is done, errors on stderr: a seed takes long, and
 * what is done is done.  Returns the exit status. */
static int seed_run(struct seed_args *a)
{
	struct seed s = { .src = a->src, .dst = a->dst, .lock = -1,
			  .progress.on = isatty(2) && !a->quiet };
	int status;

	if (seed_open(&s) < 0 || seed_list(&s, a->names, (size_t)a->n) < 0 ||
	    seed_register(&s, a) < 0 || seed_copy(&s) < 0)
		status = 1;
	else if (!a->no_replay && replay(s.dst, s.log, a->uri, a->name) < 0)
		status = 1;	/* 3. the log */
	else
		status = 0;
	seed_close(&s);
	return status;
}

int cmd_seed(int argc, char **argv)
{
	struct seed_args a = { 0 };
	int rc = seed_parse(argc, argv, &a);

	if (rc == TOOL_GO_ON)
		rc = seed_run(&a);
	rl_log_opts_free(&a.lopts);
	return rc;
}
