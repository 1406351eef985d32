/* repdisk mount: runs the FUSE daemon, repdisk-mount.
 *
 * The daemon is its own program so that this tool, and the follower hosts
 * that use it, do not depend on libfuse.  It is looked for beside this
 * program, then in the build tree (../fs), then where it is installed. */
#include "repdisk.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef REPDISK_LIBEXECDIR
#define REPDISK_LIBEXECDIR "/usr/local/lib/repdisk"
#endif

int cmd_mount(int argc, char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 32];
	const char *env = getenv("REPDISK_MOUNT");
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *dirs[3] = { NULL, NULL, REPDISK_LIBEXECDIR };

	if (n > 0) {
		self[n] = '\0';
		*strrchr(self, '/') = '\0';
		dirs[0] = self;
	}
	(void)argc;	/* argv is NULL-terminated: passed on whole */
	argv[0] = "repdisk mount";
	if (env) {
		execv(env, argv);
		tool_error("mount", "%s: %s", env, strerror(errno));
		return 1;
	}
	for (int i = 0; i < 3; i++) {
		if (!dirs[i])
			continue;
		snprintf(path, sizeof(path), "%s/repdisk-mount", dirs[i]);
		if (access(path, X_OK) == 0)
			execv(path, argv);
		if (i == 0) {
			snprintf(path, sizeof(path), "%s/../fs/repdisk-mount",
				 self);
			if (access(path, X_OK) == 0)
				execv(path, argv);
		}
	}
	tool_error("mount", "the FUSE daemon repdisk-mount is not installed "
		   "(looked beside %s and in %s)", n > 0 ? self : "repdisk",
		   REPDISK_LIBEXECDIR);
	return 1;
}
