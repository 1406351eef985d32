/* ackwriter: a disk client for crash tests that knows what it was promised.
 *
 *   ackwriter write  FILE ACKS [--threads N] [--blocks B] [--bs BYTES]
 *   ackwriter verify FILE ACKS [--threads N] [--blocks B] [--bs BYTES]
 *
 * write: N threads each own B blocks of BS bytes (thread t: blocks t*B ..
 * t*B+B-1) and rewrite random ones of them forever with O_DIRECT pwrite, a
 * new generation each time; every 64-byte unit of a block says (block,
 * generation).  After a pwrite returns success, "BLOCK GEN MS" is appended
 * to ACKS with one write(2), so a line exists only for an acknowledged
 * write; MS is when it was acknowledged (CLOCK_REALTIME, milliseconds),
 * from which a test tells how long writes stalled.
 * It exits when a write fails (the daemon was killed, or fenced), naming
 * the error on stderr.  --delay-us U sleeps U microseconds after each
 * write (per thread): a gentler load for logs that keep little history.
 *
 * verify: each block must hold exactly its last acknowledged generation,
 * or the next one (a write in flight when the daemon died, which the log
 * may have kept), whole: never a mix of generations, never an older one.
 * At most one block per thread may be ahead, or --max-ahead N: after
 * several write sessions on the same ACKS, each of which may have left
 * its threads' last writes in flight, and whose records may land in the
 * log later than the next session started (a failed write that was
 * "possibly persisted").  Exit 0, or 1 naming the first bad block.
 *
 * --tear-unit U (verify): a log that splits large writes into records of U
 * bytes (Kafka, whose message size limit is about 1 MB) may keep only the
 * first parts of a write in flight at a crash, as a physical disk may
 * tear a large write.  The in-flight generation may then cover whole
 * U-byte parts at the start of a block, the acknowledged one the rest.
 * An acknowledged write must still be whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define UNIT 64
#define MAGIC 0x6b636177646b7072ull	/* "rpkdwack" */

static const char *file, *acks;
static unsigned threads = 4, blocks = 256;
static size_t bs = 65536;
static unsigned delay_us;
static unsigned max_ahead;	/* verify: 0, one per thread */
static size_t tear_unit;
static int acks_fd, disk_fd;
static uint64_t *acked;		/* last acknowledged generation per block */

/* Loads the acknowledgements so far: later runs go on numbering from them,
 * so generations only grow across crashes. */
static int load_acks(void)
{
	uint64_t total = (uint64_t)threads * blocks;
	unsigned long long b, g;
	FILE *f;

	acked = calloc(total, sizeof(*acked));
	if (!acked)
		return -1;
	f = fopen(acks, "r");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	char line[128];

	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%llu %llu", &b, &g) == 2 && b < total &&
		    g > acked[b])
			acked[b] = g;
	fclose(f);
	return 0;
}

static void fill(uint8_t *buf, uint64_t block, uint64_t gen)
{
	for (size_t i = 0; i < bs; i += UNIT) {
		uint64_t v[UNIT / 8] = { MAGIC, block, gen, i };

		memcpy(buf + i, v, UNIT);
	}
}

static void *writer(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t *gens = acked + (uint64_t)t * blocks;	/* this thread's */
	unsigned seed = t * 7919 + (unsigned)getpid();
	void *buf;

	if (posix_memalign(&buf, 4096, bs) != 0)
		exit(2);
	for (;;) {
		uint64_t b = (uint64_t)t * blocks + (unsigned)rand_r(&seed) % blocks;
		uint64_t gen = ++gens[b - (uint64_t)t * blocks];
		char line[64];
		int n;

		fill(buf, b, gen);
		if (pwrite(disk_fd, buf, bs, (off_t)(b * bs)) != (ssize_t)bs) {
			/* the disk went away: done */
			fprintf(stderr, "ackwriter: write failed: %s\n",
				strerror(errno));
			exit(0);
		}
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		n = snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 " %lld\n",
			     b, gen, (long long)now.tv_sec * 1000 +
			     now.tv_nsec / 1000000);
		if (write(acks_fd, line, (size_t)n) != n)
			exit(2);
		if (delay_us)
			usleep(delay_us);
	}
	return NULL;
}

/* Before writing again: a block that holds, whole, the generation after
 * its last acknowledged one kept a write that was in flight at the last
 * crash.  The disk has shown it since, so it counts as acknowledged from
 * now on; else such blocks would pile up, round after round, beyond the
 * one-per-thread that verify allows. */
static int adopt_kept_writes(void)
{
	uint64_t total = (uint64_t)threads * blocks;
	int fd = open(file, O_RDONLY);
	uint8_t *buf = malloc(bs);

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (uint64_t b = 0; b < total; b++) {
		uint64_t want = acked[b] + 1;
		bool whole = pread(fd, buf, bs, (off_t)(b * bs)) == (ssize_t)bs;

		for (size_t i = 0; whole && i < bs; i += UNIT) {
			uint64_t v[UNIT / 8];

			memcpy(v, buf + i, UNIT);
			whole = v[0] == MAGIC && v[1] == b && v[2] == want &&
				v[3] == i;
		}
		if (whole) {
			char line[64];
			int n = snprintf(line, sizeof(line), "%" PRIu64 " %"
					 PRIu64 "\n", b, want);

			acked[b] = want;
			if (write(acks_fd, line, (size_t)n) != n)
				return -1;
		}
	}
	free(buf);
	close(fd);
	return 0;
}

static int verify(void)
{
	uint64_t total = (uint64_t)threads * blocks, ahead = 0, checked = 0;
	uint64_t *last = acked;
	uint8_t *buf = malloc(bs);
	unsigned long long b;
	int rc = 1;

	if (!buf)
		return 2;
	for (b = 0; b < total; b++) {
		uint64_t gen = 0;

		if (pread(disk_fd, buf, bs, (off_t)(b * bs)) != (ssize_t)bs) {
			fprintf(stderr, "ackwriter: read block %llu: %s\n", b,
				strerror(errno));
			goto out;
		}
		uint64_t want = 0;	/* generation expected from here */
		bool torn = false;

		for (size_t i = 0; i < bs; i += UNIT) {
			uint64_t v[UNIT / 8], zero[UNIT / 8] = { 0 };

			memcpy(v, buf + i, UNIT);
			/* an in-flight write (generation last + 1) kept in
			 * its first whole parts only: the rest is the
			 * acknowledged generation */
			if (tear_unit && i > 0 && i % tear_unit == 0 && !torn &&
			    gen == last[b] + 1 &&
			    ((last[b] == 0 && memcmp(v, zero, UNIT) == 0) ||
			     (last[b] && v[0] == MAGIC && v[1] == b &&
			      v[2] == last[b]))) {
				torn = true;
				want = gen;
				gen = last[b];
			}
			if (i == 0 && memcmp(v, zero, UNIT) == 0)
				gen = 0;
			else if (i == 0 && v[0] == MAGIC && v[1] == b)
				gen = v[2];
			else if (i == 0) {
				fprintf(stderr, "ackwriter: block %llu holds "
					"foreign bytes\n", b);
				goto out;
			}
			if ((gen == 0 && memcmp(v, zero, UNIT) != 0) ||
			    (gen && (v[0] != MAGIC || v[1] != b || v[2] != gen ||
				     v[3] != i))) {
				fprintf(stderr, "ackwriter: block %llu is torn "
					"at byte %zu (generation %" PRIu64
					" at its start)\n", b, i, gen);
				goto out;
			}
		}
		if (torn)
			gen = want;	/* counts as the write in flight */
		if (gen < last[b]) {
			fprintf(stderr, "ackwriter: block %llu: acknowledged "
				"generation %" PRIu64 " lost (holds %" PRIu64
				")\n", b, last[b], gen);
			goto out;
		}
		if (gen > last[b] + 1) {
			fprintf(stderr, "ackwriter: block %llu: generation %"
				PRIu64 " was never written (last acknowledged %"
				PRIu64 ")\n", b, gen, last[b]);
			goto out;
		}
		ahead += gen == last[b] + 1;
		checked += last[b] > 0;
	}
	if (ahead > (max_ahead ? max_ahead : threads)) {
		fprintf(stderr, "ackwriter: %" PRIu64 " blocks ahead of their "
			"acknowledgement, at most %u writes were in flight\n",
			ahead, max_ahead ? max_ahead : threads);
		goto out;
	}
	printf("verified %" PRIu64 " blocks with acknowledged writes (%" PRIu64
	       " kept an unacknowledged write in flight)\n", checked, ahead);
	rc = 0;
out:
	free(buf);
	free(acked);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "blocks", required_argument, NULL, 'b' },
		{ "bs", required_argument, NULL, 's' },
		{ "delay-us", required_argument, NULL, 'd' },
		{ "tear-unit", required_argument, NULL, 'u' },
		{ "max-ahead", required_argument, NULL, 'm' },
		{ 0 }
	};
	bool do_write;
	int c;

	if (argc < 4 || (strcmp(argv[1], "write") && strcmp(argv[1], "verify"))) {
		fprintf(stderr, "usage: ackwriter write|verify FILE ACKS "
			"[--threads N] [--blocks B] [--bs BYTES]\n");
		return 2;
	}
	do_write = strcmp(argv[1], "write") == 0;
	file = argv[2];
	acks = argv[3];
	optind = 4;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': threads = (unsigned)atoi(optarg); break;
		case 'b': blocks = (unsigned)atoi(optarg); break;
		case 's': bs = (size_t)atol(optarg); break;
		case 'd': delay_us = (unsigned)atoi(optarg); break;
		case 'u': tear_unit = (size_t)atol(optarg); break;
		case 'm': max_ahead = (unsigned)atoi(optarg); break;
		default: return 2;
		}
	}
	if (!threads || !blocks || bs < 4096 || bs % 4096)
		return 2;
	disk_fd = open(file, do_write ? O_WRONLY | O_DIRECT : O_RDONLY);
	if (disk_fd < 0) {
		fprintf(stderr, "ackwriter: %s: %s\n", file, strerror(errno));
		return 2;
	}
	if (load_acks() < 0) {
		fprintf(stderr, "ackwriter: %s: %s\n", acks, strerror(errno));
		return 2;
	}
	if (!do_write)
		return verify();
	acks_fd = open(acks, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (acks_fd < 0 || adopt_kept_writes() < 0)
		return 2;
	pthread_t tid[256];

	if (threads > 256)
		return 2;
	for (unsigned t = 0; t < threads; t++)
		pthread_create(&tid[t], NULL, writer, (void *)(uintptr_t)t);
	for (unsigned t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	return 0;
}
