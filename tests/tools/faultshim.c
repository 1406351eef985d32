/* faultshim: makes fdatasync and fsync fail or hang, for fault tests.
 *
 *   LD_PRELOAD=libfaultshim.so FAULTSHIM_CTL=FILE repdisk mount ...
 *
 * Before each fdatasync(2) or fsync(2) the shim reads FILE, one rule a
 * line, "ACTION SUBSTRING": the call is faulted when the path of its
 * descriptor (/proc/self/fd/N) contains SUBSTRING.  ACTION is
 *
 *   eio      the call fails with EIO, as after a lost writeback
 *   enospc   the call fails with ENOSPC
 *   hang     the call blocks for as long as FILE still has this rule
 *            (a disk that stops answering), then goes on
 *
 * No FILE, or no matching rule: the real call.  A test changes the rules
 * while the program runs by rewriting FILE (write a new file, rename it
 * over).  Only for tests: it reads FILE on every call.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int fdatasync(int fd);
int fsync(int fd);

enum action { NONE, FAIL_EIO, FAIL_ENOSPC, HANG };

/* The first rule of FILE that matches the path of fd. */
static enum action shim_rule(int fd)
{
	const char *ctl = getenv("FAULTSHIM_CTL");
	char link[64], path[4096], line[4200];
	enum action a = NONE;
	ssize_t n;
	FILE *f;

	if (!ctl)
		return NONE;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return NONE;
	path[n] = '\0';
	f = fopen(ctl, "re");
	if (!f)
		return NONE;
	while (a == NONE && fgets(line, sizeof(line), f)) {
		char *sub = strchr(line, ' ');

		if (!sub)
			continue;
		*sub++ = '\0';
		sub[strcspn(sub, "\n")] = '\0';
		if (!*sub || !strstr(path, sub))
			continue;
		if (strcmp(line, "eio") == 0)
			a = FAIL_EIO;
		else if (strcmp(line, "enospc") == 0)
			a = FAIL_ENOSPC;
		else if (strcmp(line, "hang") == 0)
			a = HANG;
	}
	fclose(f);
	return a;
}

/* Applies the rules to fd: 0 to go on with the real call, or -1 with
 * errno set. */
static int shim_fault(int fd)
{
	for (;;) {
		switch (shim_rule(fd)) {
		case NONE:
			return 0;
		case FAIL_EIO:
			errno = EIO;
			return -1;
		case FAIL_ENOSPC:
			errno = ENOSPC;
			return -1;
		case HANG: {
			struct timespec ts = { 0, 20 * 1000 * 1000 };

			nanosleep(&ts, NULL);
			break;
		}
		}
	}
}

int fdatasync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	return shim_fault(fd) < 0 ? -1 : real(fd);
}

int fsync(int fd)
{
	static int (*real)(int);

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	return shim_fault(fd) < 0 ? -1 : real(fd);
}
