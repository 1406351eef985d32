/* Local faults for the unit tests, injected into the replog library's own
 * calls through the linker (-Wl,--wrap=SYMBOL, see CMakeLists.txt: only
 * the tests that link this file wrap them):
 *
 *   a disk error   pwrite, fdatasync, and the wait of sync_file_range
 *                  (a writeback error it reports) of a file whose path
 *                  starts with fault_path fail with EIO (fault_pwrite,
 *                  fault_sync, fault_range);
 *   memory         the fault_strdup_in-th strdup from now fails (ENOMEM).
 */
#include "faults.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *fault_path;
bool fault_pwrite, fault_sync, fault_range;
int fault_strdup_in;

static bool fd_faulty(int fd, bool which)
{
	char link[64], path[PATH_MAX];
	ssize_t n;

	if (!which || !fault_path)
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return false;
	path[n] = '\0';
	return strncmp(path, fault_path, strlen(fault_path)) == 0;
}

ssize_t __real_pwrite64(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	if (fd_faulty(fd, fault_pwrite)) {
		errno = EIO;
		return -1;
	}
	return __real_pwrite64(fd, buf, n, off);
}

int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
	if (fd_faulty(fd, fault_sync)) {
		errno = EIO;
		return -1;
	}
	return __real_fdatasync(fd);
}

int __real_sync_file_range(int fd, off_t off, off_t n, unsigned flags);
int __wrap_sync_file_range(int fd, off_t off, off_t n, unsigned flags);
int __wrap_sync_file_range(int fd, off_t off, off_t n, unsigned flags)
{
	if ((flags & SYNC_FILE_RANGE_WAIT_AFTER) && fd_faulty(fd, fault_range)) {
		errno = EIO;
		return -1;
	}
	return __real_sync_file_range(fd, off, n, flags);
}

char *__real_strdup(const char *s);
char *__wrap_strdup(const char *s);
char *__wrap_strdup(const char *s)
{
	if (fault_strdup_in > 0 && --fault_strdup_in == 0) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_strdup(s);
}
