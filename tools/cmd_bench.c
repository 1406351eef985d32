/* repdisk log bench: a log's durable append rate.
 *
 * For 4 KiB and 1 MiB records (or the largest power of two a log with a
 * record size limit takes, e.g. 512 KiB on Kafka) and 1 and 32
 * concurrent appenders, each
 * appender appends one record at a time and waits until it is durable
 * (fdatasync'd by group commit), for a fixed time.  Prints appends per
 * second, MB/s and the latency of a durable append.  Figures, not a test. */
#include "repdisk.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

static const char usage[] =
	"usage: repdisk log bench [--dir DIR | --log URI] [--seconds N]\n"
	"\n"
	"Measures durable appends to a file log created in a temporary\n"
	"directory under DIR (default: the current directory), removed after,\n"
	"or to the log at URI (each workload appends to a new disk's stream,\n"
	"which is left there: use a scratch namespace).\n"
	"\n"
	"  -d, --dir DIR     where to create the log (its file system is measured)\n"
	"  -l, --log URI     measure this log instead, e.g. kafka:HOST:PORT?ns=bench\n"
	"  -s, --seconds N   seconds per workload (default 3)\n"
	"  -h, --help        show this help\n";

struct bench {
	struct rl_stream *s;
	const void *rec;
	size_t len;
	double deadline;
	pthread_mutex_t lock;
	double *lat;		/* latencies, under lock */
	size_t n, cap;
	int err;
};

static void *appender(void *arg)
{
	struct bench *b = arg;

	for (;;) {
		double t0 = tool_now();

		if (t0 >= b->deadline)
			break;
		int64_t pos = rl_log_append_sync(b->s, b->rec, b->len,
						 NULL);
		double dt = tool_now() - t0;

		pthread_mutex_lock(&b->lock);
		if (pos < 0) {
			b->err = (int)pos;
			pthread_mutex_unlock(&b->lock);
			break;
		}
		if (rl_grow(&b->lat, &b->cap, b->n + 1, sizeof(*b->lat)) < 0) {
			b->err = -ENOMEM;
			pthread_mutex_unlock(&b->lock);
			break;
		}
		b->lat[b->n++] = dt;
		pthread_mutex_unlock(&b->lock);
	}
	return NULL;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int run(const char *dir, const char *uri, int seconds, size_t size,
	       int threads)
{
	struct rl_record r = { .type = RL_WRITE, .epoch = 1, .seq = 1,
			       .length = size, .data_len = size };
	struct bench b = { .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t tid[64];
	struct rl_log *log = NULL;
	struct rl_err err;
	char path[PATH_MAX + 64];
	void *data = malloc(size), *rec = NULL;
	ssize_t len;
	double t0, elapsed;
	int rc;

	if (uri)
		snprintf(path, sizeof(path), "%s", uri);
	else
		snprintf(path, sizeof(path), "file:%s/log-%zu-%d", dir, size,
			 threads);
	rl_uuid_generate(&r.disk);
	if (!data)
		return -ENOMEM;
	randombytes_buf(data, size);	/* incompressible, like most disks */
	r.data = data;
	rec = malloc(rl_record_encoded_max(&r));
	len = rec ? rl_record_encode(&r, 0, rec, rl_record_encoded_max(&r),
				     &err) : -ENOMEM;
	rc = len < 0 ? (int)len : rl_log_open(path, RL_LOG_WRITE, NULL, &log,
					       &err);
	if (rc == 0)
		rc = rl_log_stream(log, &r.disk, &b.s, &err);
	if (rc < 0) {
		tool_error("log bench", "%s", err.msg);
		goto out;
	}
	if (rl_stream_max_record(b.s) && (size_t)len > rl_stream_max_record(b.s)) {
		/* the largest power of two that fits, as the writer splits */
		while (size > 4096 &&
		       size + RL_RECORD_HDR_SIZE > rl_stream_max_record(b.s))
			size /= 2;
		r.length = r.data_len = size;
		len = rl_record_encode(&r, 0, rec, rl_record_encoded_max(&r),
				       &err);
	}
	b.rec = rec;
	b.len = (size_t)len;
	t0 = tool_now();
	b.deadline = t0 + seconds;
	for (int i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, appender, &b);
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	elapsed = tool_now() - t0;
	if (b.err < 0) {
		tool_error("log bench", "append: %s", strerror(-b.err));
		rc = b.err;
		goto out;
	}
	qsort(b.lat, b.n, sizeof(double), cmp_double);
	printf("%8zu %10d %12.0f %10.1f %10.0f %10.0f\n", size, threads,
	       b.n / elapsed, b.n * (double)b.len / elapsed / 1e6,
	       b.n ? b.lat[b.n / 2] * 1e6 : 0,
	       b.n ? b.lat[(size_t)(b.n * 0.99)] * 1e6 : 0);
	fflush(stdout);
out:
	rl_log_close(log);
	free(b.lat);
	free(rec);
	free(data);
	return rc;
}

int cmd_log_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "seconds", required_argument, NULL, 's' },
		{ "log", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	static const size_t sizes[] = { 4096, 1 << 20 };
	static const int threads[] = { 1, 32 };
	const char *dir = ".", *uri = NULL;
	unsigned long long secs = 3;
	char tmp[PATH_MAX];
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "d:s:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			uri = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 's':
			if (cli_parse_u64(optarg, &secs) < 0 || secs == 0 ||
			    secs > 3600)
				return tool_usage_error(usage, "log bench: bad "
							"--seconds \"%s\"",
							optarg);
			break;
		default:
			return tool_option("log bench", usage, NULL, c, optarg);
		}
	}
	if (optind != argc)
		return tool_usage_error(usage, "log bench: unexpected argument");
	snprintf(tmp, sizeof(tmp), "%s/repdisk-bench.XXXXXX", dir);
	if (!mkdtemp(tmp)) {
		tool_error("log bench", "%s: %s", tmp, strerror(errno));
		return 1;
	}
	if (uri) {
		char shown[PATH_MAX + 64];

		rl_redact(uri, shown, sizeof(shown));
		printf("log %s, durable appends, %llu s each\n", shown, secs);
	} else {
		printf("file log, durable appends (fdatasync group commit), "
		       "%llu s each, in %s\n", secs, dir);
	}
	printf("%8s %10s %12s %10s %10s %10s\n", "record", "appenders",
	       "appends/s", "MB/s", "p50 us", "p99 us");
	for (size_t i = 0; i < 2 && rc == 0; i++)
		for (size_t j = 0; j < 2 && rc == 0; j++)
			rc = run(tmp, uri, (int)secs, sizes[i], threads[j]);
	if (nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		tool_error("log bench", "could not remove %s", tmp);
	return rc < 0 ? 1 : 0;
}
