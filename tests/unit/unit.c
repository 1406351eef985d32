/* Helpers shared by the replog unit tests. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char unit_base[4096];

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void unit_rm_rf(const char *path)
{
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

int unit_main(Suite *s)
{
	const char *tmp = getenv("TMPDIR");
	SRunner *sr;
	int failed;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	sr = srunner_create(s);
	snprintf(unit_base, sizeof(unit_base), "%s/repdisk-unit-XXXXXX", tmp);
	if (!mkdtemp(unit_base)) {
		fprintf(stderr, "skip: cannot make a temporary directory under "
			"%s: %s\n", tmp, strerror(errno));
		srunner_free(sr);
		return UNIT_SKIP;
	}
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	unit_rm_rf(unit_base);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void unit_tmpdir(const char *tag, char *out, size_t size)
{
	int n = snprintf(out, size, "%s/%s-XXXXXX", unit_base, tag);

	ck_assert_int_lt(n, (int)size);
	ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp %s: %s", out,
		      strerror(errno));
}

void unit_path(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	ck_assert_msg(n >= 0 && (size_t)n < size, "path too long: %s", out);
}

int unit_stderr_begin(const char *path)
{
	int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC |
				      O_CLOEXEC, 0644);

	ck_assert_int_ge(saved, 0);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	fflush(stderr);
	ck_assert_int_eq(dup2(fd, 2), 2);
	close(fd);
	return saved;
}

char *unit_stderr_end(int saved, const char *path)
{
	uint8_t *text;
	size_t len;

	fflush(stderr);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	len = unit_read_file(path, &text);
	text[len] = '\0';
	return (char *)text;
}

uint64_t unit_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void unit_fill_random(void *buf, size_t n, uint64_t *state)
{
	uint8_t *p = buf;

	while (n > 0) {
		uint64_t v = unit_rand(state);
		size_t k = n < 8 ? n : 8;

		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}

size_t unit_encode(const struct rl_record *r, size_t zstd_min, uint8_t **out)
{
	size_t cap = rl_record_encoded_max(r);
	struct rl_err err = { 0 };
	uint8_t *buf = malloc(cap);
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	n = rl_record_encode(r, zstd_min, buf, cap, &err);
	ck_assert_msg(n >= RL_RECORD_HDR_SIZE, "encode %s: %zd: %s",
		      rl_type_name(r->type), n, err.msg);
	*out = buf;
	return (size_t)n;
}

size_t unit_read_file(const char *path, uint8_t **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	size_t done = 0;

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	while (done < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + done, (size_t)st.st_size - done,
				  (off_t)done);

		ck_assert_msg(n > 0, "read %s: %s", path, strerror(errno));
		done += (size_t)n;
	}
	close(fd);
	*out = buf;
	return done;
}

static void write_flags(const char *path, const void *buf, size_t len,
			int flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
	const char *p = buf;

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		ck_assert_msg(n > 0, "write %s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	ck_assert_int_eq(close(fd), 0);
}

void unit_write_file(const char *path, const void *buf, size_t len)
{
	write_flags(path, buf, len, O_TRUNC);
}

void unit_append_file(const char *path, const void *buf, size_t len)
{
	write_flags(path, buf, len, O_APPEND);
}

uint64_t unit_file_size(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path,
		      strerror(errno));
	return (uint64_t)st.st_size;
}

int64_t unit_file_cmp(const char *a, const char *b)
{
	uint8_t *x, *y;
	size_t nx = unit_read_file(a, &x), ny = unit_read_file(b, &y);
	size_t n = nx < ny ? nx : ny;
	int64_t at = -1;

	for (size_t i = 0; i < n; i++) {
		if (x[i] != y[i]) {
			at = (int64_t)i;
			break;
		}
	}
	if (at < 0 && nx != ny)
		at = (int64_t)n;
	free(x);
	free(y);
	return at;
}

struct rl_uuid unit_uuid(uint8_t b)
{
	struct rl_uuid u;

	memset(u.b, b, sizeof(u.b));
	return u;
}
