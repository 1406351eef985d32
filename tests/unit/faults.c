/* Local faults for the unit tests, injected into the replog library's own
 * calls through the linker (-Wl,--wrap=SYMBOL, see CMakeLists.txt: only
 * the tests that link this file wrap them):
 *
 *   a disk error   pwrite and fdatasync of a file whose path starts with
 *                  fault_path fail with EIO (fault_pwrite, fault_sync);
 *   memory         the fault_strdup_in-th strdup from now fails (ENOMEM).
 */
#include "faults.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *fault_path;
bool fault_pwrite, fault_sync;
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
