/* Small shared helpers: error messages, uuids, disk names, durable file
 * replacement. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

int rl_err_set(struct rl_err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = code;
		err->layer = RL_ERR_UNKNOWN;
	}
	return -code;
}

int rl_err_prefix(struct rl_err *err, const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;
	int n;

	if (!err)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, "%s", err->msg);
	memcpy(err->msg, msg, sizeof(msg));
	return -err->code;
}

int rl_err_layer(struct rl_err *err, enum rl_err_layer layer, int rc)
{
	if (err && rc < 0 && err->layer == RL_ERR_UNKNOWN)
		err->layer = layer;
	return rc;
}

int rl_parse_u64(const char *s, uint64_t max, uint64_t *out,
		 const char **rest)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || v > max || (!rest && *end))
		return -1;
	if (rest)
		*rest = end;
	*out = v;
	return 0;
}

const char *rl_scan_lit(const char *p, const char *lit)
{
	size_t n = strlen(lit);

	return p && strncmp(p, lit, n) == 0 ? p + n : NULL;
}

const char *rl_scan_u64(const char *p, uint64_t max, uint64_t *v, char term)
{
	const char *end;

	if (!p || rl_parse_u64(p, max, v, &end) < 0 || *end != term)
		return NULL;
	return term ? end + 1 : end;
}

int64_t rl_clock_ms(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

uint64_t rl_clock_ns(clockid_t id)
{
	struct timespec t;

	clock_gettime(id, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- diagnostics ---- */

static void log_default(enum rl_log_level level, const char *msg, void *arg)
{
	(void)level;
	(void)arg;
	fprintf(stderr, "repdisk: %s\n", msg);
}

static rl_log_func log_fn = log_default;
static void *log_arg;

void rl_set_log_func(rl_log_func fn, void *arg)
{
	log_fn = fn ? fn : log_default;
	log_arg = fn ? arg : NULL;
}

void rl_msg(enum rl_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fn(level, msg, log_arg);
}

void rl_uuid_generate(struct rl_uuid *u)
{
	randombytes_buf(u->b, sizeof(u->b));
	u->b[6] = (u->b[6] & 0x0f) | 0x40;	/* version 4 */
	u->b[8] = (u->b[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
}

void rl_uuid_format(const struct rl_uuid *u, char out[RL_UUID_STRLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u->b[i] >> 4];
		*p++ = hex[u->b[i] & 15];
	}
	*p = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int rl_uuid_parse(const char *s, struct rl_uuid *u)
{
	struct rl_uuid v;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10) {
			if (*s++ != '-')
				return -EINVAL;
		}
		int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		v.b[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	if (*s != '\0')
		return -EINVAL;
	*u = v;
	return 0;
}

bool rl_uuid_is_nil(const struct rl_uuid *u)
{
	static const struct rl_uuid nil;

	return memcmp(u, &nil, sizeof(nil)) == 0;
}

bool rl_uuid_eq(const struct rl_uuid *a, const struct rl_uuid *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

int rl_name_check(const char *name, struct rl_err *err)
{
	size_t len = strlen(name);

	if (len == 0)
		return rl_err_set(err, EINVAL, "invalid disk name: empty");
	if (len > RL_NAME_MAX)
		return rl_err_set(err, ENAMETOOLONG,
				  "invalid disk name: %zu bytes, at most %d",
				  len, RL_NAME_MAX);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return rl_err_set(err, EINVAL, "invalid disk name: \"%s\"", name);
	if (strncmp(name, ".repdisk", 8) == 0)
		return rl_err_set(err, EINVAL,
				  "invalid disk name: %s: names starting with "
				  "\".repdisk\" are reserved", name);
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p == '/')
			return rl_err_set(err, EINVAL,
					  "invalid disk name: %s: contains '/'",
					  name);
		if (*p < 0x20 || *p == 0x7f)
			return rl_err_set(err, EINVAL,
					  "invalid disk name: contains control "
					  "character 0x%02x", *p);
	}
	return 0;
}

int rl_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int rl_state_dir(const char *path, bool create, struct rl_err *err)
{
	struct stat st;

	if (create && mkdir(path, 0700) == 0) {
		char parent[PATH_MAX];
		char *slash;

		snprintf(parent, sizeof(parent), "%s", path);
		slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			int rc;

			*slash = '\0';
			rc = rl_fsync_dir(parent);
			if (rc < 0)
				return rl_err_set(err, -rc, "%s: fsync: %s",
						  parent, strerror(-rc));
		}
	} else if (create && errno != EEXIST) {
		return rl_err_set(err, errno, "%s: mkdir: %s", path,
				  strerror(errno));
	}
	if (lstat(path, &st) < 0)
		return rl_err_set(err, errno, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return rl_err_set(err, ENOTDIR, "%s: not a directory%s", path,
				  S_ISLNK(st.st_mode) ? " (a symbolic link: "
				  "repdisk's state is never followed through "
				  "links)" : "");
	if (st.st_uid != geteuid())
		return rl_err_set(err, EPERM, "%s: owned by uid %u, not by "
				  "this process (uid %u): refusing to keep "
				  "disks' data in it", path,
				  (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return rl_err_set(err, EPERM, "%s: writable by group or "
				  "others (mode %04o): refusing to keep disks' "
				  "data in it; find out who changed it, then "
				  "chmod 700 it", path,
				  (unsigned)(st.st_mode & 07777));
	/* readable by others (made by an older version, or by hand):
	 * the state holds every disk's data, so close it */
	if ((st.st_mode & 0777) != 0700 && chmod(path, 0700) < 0)
		return rl_err_set(err, errno, "%s: chmod 700: %s", path,
				  strerror(errno));
	return 0;
}

int rl_write_atomic(const char *dir, const char *name, const void *buf,
		    size_t len, struct rl_err *err)
{
	char tmp[4096], dst[4096];
	int fd, rc = 0;

	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	/* a new file, never one planted there: a stale one from a crash
	 * goes first */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return rl_err_set(err, errno, "create %s: %s", tmp,
				  strerror(errno));
	if (rl_write_full(fd, buf, len) < 0 || fdatasync(fd) < 0) {
		rc = rl_err_set(err, errno, "write %s: %s", tmp,
				strerror(errno));
		close(fd);
		unlink(tmp);
		return rc;
	}
	close(fd);
	if (rename(tmp, dst) < 0) {
		rc = rl_err_set(err, errno, "rename %s: %s", dst,
				strerror(errno));
		unlink(tmp);
		return rc;
	}
	rc = rl_fsync_dir(dir);
	if (rc < 0)
		return rl_err_set(err, -rc, "fsync %s: %s", dir, strerror(-rc));
	return 0;
}

int rl_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int rl_pwritev_full(int fd, struct iovec *iov, int cnt, off_t off)
{
	while (cnt > 0) {
		ssize_t n = pwritev(fd, iov, cnt, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENOSPC;
		off += n;
		for (; cnt > 0 && (size_t)n >= iov->iov_len; iov++, cnt--)
			n -= (ssize_t)iov->iov_len;
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int rl_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	struct iovec iov = { (void *)buf, len };

	return rl_pwritev_full(fd, &iov, 1, off);
}

int rl_reopen_direct(int fd, int flags)
{
	char proc[64];
	struct stat a, b;
	int dfd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	dfd = open(proc, flags | O_CLOEXEC | O_DIRECT);
	if (dfd < 0)
		return -errno;
	if (fstat(dfd, &a) < 0 || fstat(fd, &b) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(dfd);
		return -ESTALE;
	}
	return dfd;
}

ssize_t rl_pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int rl_read_small_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = rl_pread_full(fd, buf, size - 1, 0);
	close(fd);
	if (n < 0)
		return (int)n;
	if ((size_t)n == size - 1)
		return -EFBIG;
	buf[n] = '\0';
	return (int)n;
}

void rl_waiter_done(struct rl_waiter *w, int err, uint64_t pos)
{
	pthread_mutex_lock(&w->lock);
	w->done = true;
	w->err = err;
	w->pos = pos;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int rl_waiter_wait(struct rl_waiter *w)
{
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return w->err;
}

void rl_fd_limit_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}
