/* repdisk-mount: the FUSE daemon ("repdisk mount" runs it).
 *
 * Start-up order: check the options and directories; fork (unless -f),
 * the parent waiting on a pipe for the child's readiness; take the data
 * directory's lock and open the log as its writer (a second mount of the
 * same data directory or log fails here, with the other's pid); replay
 * the catalog and every disk from its checkpoint and claim each disk;
 * mount; then report readiness, so the parent exits 0 only once the mount
 * is usable.  Until then every error goes to the caller's terminal and
 * the parent exits 1; afterwards the daemon writes to its log file.
 *
 * Refused up front: a mount point that is already mounted (the new mount
 * would hide the old one from its users), and a data directory, log or
 * log file under the mount point (the daemon would wait on itself: it
 * opens them before it serves the mount).
 *
 * Teardown (fusermount3 -u, umount, SIGTERM, SIGINT): the FUSE loop ends,
 * every write in flight completes, every disk is checkpointed, the log is
 * closed, exit 0.  SIGHUP (logrotate) only reopens the log file.
 */
#include "fs.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <mntent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

static const char usage[] =
	"usage: repdisk mount [OPTIONS] DATADIR MOUNTPOINT\n"
	"\n"
	"Mounts the disks of DATADIR on MOUNTPOINT: each file there is one disk,\n"
	"every change is appended to the log, then applied to the raw image\n"
	"DATADIR/NAME.  Runs as a daemon once the mount is usable.\n"
	"\n"
	"  -l, --log URI          the log (default file:DATADIR/.repdisk/log)\n"
	"  -f, --foreground       stay in the foreground, messages on stderr\n"
	"  -o OPT[,OPT...]        FUSE mount options, e.g. allow_other,\n"
	"                         default_permissions (for QEMU as another user)\n"
	"\n"
	"Kafka log options (the file log ignores them):\n"
	"      --namespace NS     topics repdisk.NS.* (default \"default\")\n"
	"      --write-timeout S  a write the log has not accepted after S\n"
	"                         seconds fails with EIO (default 30); one\n"
	"                         in flight 10 s longer (any log) is\n"
	"                         reported in the mount log as stuck\n"
	"  -o kafka.PROP=VALUE    a librdkafka property (TLS, SASL, ...); one\n"
	"                         per -o, the value may contain commas\n"
	"      --kafka-config F   librdkafka properties from file F, one\n"
	"                         PROP=VALUE per line (for secrets)\n"
	"      --key-file F       the deployment's keys (repdisk key): every\n"
	"                         record is sealed with the newest, and\n"
	"                         records not sealed with one are refused\n"
	"\n"
	"Other options:\n"
	"      --log-file PATH    the daemon's messages (default\n"
	"                         DATADIR/.repdisk/mount.log)\n"
	"      --host NAME        this host's name in each disk's claim, as\n"
	"                         HOST:DATADIR (default: the host name)\n"
	"      --takeover         claim disks another host claimed last (its\n"
	"                         writer is fenced: see docs/FAILOVER.md)\n"
	"      --keep-log         file log: keep every record (by default a\n"
	"                         segment goes once this mount and every\n"
	"                         follower reporting to the log are past it)\n"
	"      --segment-mb N     file log: segment size (default 64)\n"
	"      --zstd-min BYTES   compress writes of at least BYTES (default 0: off)\n"
	"      --max-inflight-mb N  bytes of writes in flight at most (default 64)\n"
	"  -h, --help             show this help\n"
	"\n"
	"Stop with: fusermount3 -u MOUNTPOINT (or umount, or SIGTERM).\n";

/* "repdisk mount: MSG", the usage on stderr; returns 2 */
#define usage_error(...) cli_usage_error("repdisk mount", usage, __VA_ARGS__)

struct options {
	const char *log_uri, *mountpoint, *log_file;
	char mountpoint_real[PATH_MAX];	/* resolved: what is mounted */
	char log_uri_copy[8192];	/* --log's, off the scrubbed argv */
	char fuse_opts[4096];		/* -o options for FUSE, comma-joined */
	struct rl_log_opts log_opts;
	char datadir[PATH_MAX];
	bool foreground, takeover, keep_log;
	char host[64];
	unsigned long long zstd_min, inflight_mb;
};

/* HOST:DATADIR, cut to fit (the end of a long path is what differs), with
 * what a checkpoint could not keep (spaces, control bytes) made '_'. */
static void claim_identity(char out[RL_NAME_MAX + 1], const char *host,
			   const char *datadir)
{
	size_t hl = strlen(host), dl = strlen(datadir), room;
	char buf[RL_NAME_MAX + 1];

	room = RL_NAME_MAX > hl + 1 ? RL_NAME_MAX - hl - 1 : 0;
	if (dl > room)
		datadir += dl - room;
	snprintf(buf, sizeof(buf), "%.64s:%.*s", host, (int)room, datadir);
	rl_claim_owner(out, buf, strlen(buf));
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-file", required_argument, NULL, 'L' },
		{ "host", required_argument, NULL, 'H' },
		{ "zstd-min", required_argument, NULL, 'z' },
		{ "max-inflight-mb", required_argument, NULL, 'm' },
		CLI_LOG_LONGOPTS,
		{ "takeover", no_argument, NULL, 'T' },
		{ "keep-log", no_argument, NULL, 'k' },
		{ "segment-mb", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct rl_err err = { 0 };
	int c;

	o->inflight_mb = 64;
	gethostname(o->host, sizeof(o->host) - 1);
	while ((c = getopt_long(argc, argv, "l:fo:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			/* a copy: argv is scrubbed of secrets */
			if (strlen(optarg) >= sizeof(o->log_uri_copy))
				return usage_error("--log URI too long");
			snprintf(o->log_uri_copy, sizeof(o->log_uri_copy),
				 "%s", optarg);
			o->log_uri = o->log_uri_copy;
			break;
		case 'f': o->foreground = true; break;
		case 'o':
			if (strncmp(optarg, "kafka.", 6) == 0) {
				if (rl_log_opts_set(&o->log_opts, "o", optarg,
						    &err) < 0)
					return usage_error("%s", err.msg);
				break;
			}
			if (strlen(o->fuse_opts) + strlen(optarg) + 2 >
			    sizeof(o->fuse_opts))
				return usage_error("-o options too long");
			if (o->fuse_opts[0])
				strcat(o->fuse_opts, ",");
			strcat(o->fuse_opts, optarg);
			break;
		case 'T':
			o->takeover = true;
			break;
		case 'k':
			o->keep_log = true;
			break;
		case 'S': {
			unsigned long long mb;

			if (cli_parse_u64(optarg, &mb) < 0 || mb == 0 || mb > 65536)
				return usage_error("bad --segment-mb \"%s\"",
						   optarg);
			o->log_opts.segment_bytes = mb << 20;
			break;
		}
		case 'N':
		case 'W':
		case 'K':
		case 'Y':
			if (cli_log_option(&o->log_opts, c, optarg, &err) < 0)
				return usage_error("%s", err.msg);
			break;
		case 'L': o->log_file = optarg; break;
		case 'H':
			snprintf(o->host, sizeof(o->host), "%s", optarg);
			break;
		case 'z':
			if (cli_parse_u64(optarg, &o->zstd_min) < 0)
				return usage_error("bad --zstd-min \"%s\"", optarg);
			break;
		case 'm':
			if (cli_parse_u64(optarg, &o->inflight_mb) < 0 ||
			    o->inflight_mb == 0 || o->inflight_mb > 65536)
				return usage_error("bad --max-inflight-mb \"%s\"",
						   optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		default:
			return usage_error("bad option");
		}
	}
	if (argc - optind != 2)
		return usage_error("expected DATADIR and MOUNTPOINT");
	if (!realpath(argv[optind], o->datadir)) {
		fprintf(stderr, "repdisk mount: data directory %s: %s\n",
			argv[optind], strerror(errno));
		return 3;
	}
	o->mountpoint = argv[optind + 1];
	return 0;
}

/* Sends the daemon's output to its log file once it is running. */
static int redirect_output(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
		      O_CLOEXEC, 0600);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || null < 0) {
		if (fd >= 0)
			close(fd);
		if (null >= 0)
			close(null);
		return -1;
	}
	dup2(null, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	close(null);
	setvbuf(stderr, NULL, _IOLBF, 0);
	return 0;
}

/* SIGHUP: logrotate moved the log file away; the checkpoint thread opens
 * a new one (fs_log_reopen), outside the signal handler. */
static volatile sig_atomic_t hup;
static const char *log_file;	/* NULL in the foreground */

static void on_hup(int sig)
{
	(void)sig;
	hup = 1;
}

void fs_log_reopen(void)
{
	if (!hup)
		return;
	hup = 0;
	if (!log_file)
		return;
	if (redirect_output(log_file) < 0)
		fprintf(stderr, "repdisk: log file %s: %s; still writing to "
			"the old one\n", log_file, strerror(errno));
	else
		fprintf(stderr, "repdisk: log file reopened (SIGHUP)\n");
}

/* path, or the directory it would be made in, resolved: for paths that
 * may not exist yet.  false if neither resolves. */
static bool resolve(const char *path, char out[PATH_MAX])
{
	char dir[PATH_MAX], *slash;

	if (realpath(path, out))
		return true;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		return realpath(".", out) != NULL;
	*slash = '\0';
	return realpath(slash == dir ? "/" : dir, out) != NULL;
}

/* Whether resolved path p is dir or lies under it. */
static bool under(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(p, dir, n) == 0 &&
	       (p[n] == '\0' || p[n] == '/' || (n == 1 && dir[0] == '/'));
}

/* The refusals made before anything is touched (see the top). */
static int check_mount_point(struct options *o, const char *log_uri)
{
	char *mp = o->mountpoint_real, p[PATH_MAX];
	struct mntent *m;
	FILE *f;

	if (!realpath(o->mountpoint, mp)) {
		fprintf(stderr, "repdisk mount: mount point %s: %s\n",
			o->mountpoint, strerror(errno));
		return -1;
	}
	f = setmntent("/proc/self/mounts", "r");
	while (f && (m = getmntent(f))) {
		if (strcmp(m->mnt_dir, mp) == 0) {
			fprintf(stderr, "repdisk mount: mount point %s: "
				"already mounted (%s, type %s): unmount it "
				"first\n", mp, m->mnt_fsname, m->mnt_type);
			endmntent(f);
			return -1;
		}
	}
	if (f)
		endmntent(f);
	if (under(o->datadir, mp)) {
		fprintf(stderr, "repdisk mount: data directory %s is under "
			"the mount point %s: choose a data directory outside "
			"it\n", o->datadir, mp);
		return -1;
	}
	if (strncmp(log_uri, "file:", 5) == 0 && resolve(log_uri + 5, p) &&
	    under(p, mp)) {
		fprintf(stderr, "repdisk mount: log %s is under the mount "
			"point %s: choose a log outside it\n", log_uri + 5, mp);
		return -1;
	}
	if (o->log_file && resolve(o->log_file, p) && under(p, mp)) {
		fprintf(stderr, "repdisk mount: log file %s is under the "
			"mount point %s: choose a log file outside it\n",
			o->log_file, mp);
		return -1;
	}
	return 0;
}

/* Forks; the parent waits for the child's readiness byte and exits.
 * Returns the write end of the pipe in the child. */
static int daemonize(void)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p) < 0 || (pid = fork()) < 0) {
		fprintf(stderr, "repdisk mount: fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		int status;

		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			exit(0);	/* mounted and ready */
		waitpid(pid, &status, 0);
		exit(WIFEXITED(status) && WEXITSTATUS(status) ?
		     WEXITSTATUS(status) : 1);
	}
	close(p[0]);
	setsid();
	return p[1];
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct fs fs = { .datadir_lock_fd = -1 };
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *cfg = NULL;
	char uri[PATH_MAX + 32], fsname[PATH_MAX + 64], logf[PATH_MAX + 32];
	char log_uri_shown[PATH_MAX + 64];
	struct rl_err err;
	struct stat st;
	int rc, ready_fd = -1, status = 1;
	bool mounted = false, ckpt_thread = false;

	umask(077);	/* as in tools/repdisk.c: state is the owner's only */
	rl_fd_limit_raise();
	rc = parse_options(argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc == 3 ? 1 : rc;
	/* secrets in -o kafka.* and the URI: copied by now, off our argv */
	rl_argv_scrub(argc, argv);
	if (stat(o.mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "repdisk mount: mount point %s: %s\n",
			o.mountpoint, errno ? strerror(errno) : "not a directory");
		return 1;
	}
	if (!o.log_uri) {
		snprintf(uri, sizeof(uri), "file:%s/.repdisk/log", o.datadir);
		o.log_uri = uri;
	}
	if (check_mount_point(&o, o.log_uri) < 0)
		return 1;
	snprintf(logf, sizeof(logf), "%s/.repdisk/mount.log", o.datadir);
	if (!o.log_file)
		o.log_file = logf;

	if (!o.foreground)
		ready_fd = daemonize();
	if (sodium_init() < 0) {
		fprintf(stderr, "repdisk mount: libsodium failed to start\n");
		return 1;
	}

	fs.datadir = o.datadir;
	rl_redact(o.log_uri, log_uri_shown, sizeof(log_uri_shown));
	fs.log_uri = log_uri_shown;	/* for messages only */
	fs.zstd_min = o.zstd_min;
	/* a log fails what it cannot make durable within the write timeout:
	 * a write still in flight 10 s after that is reported as stuck */
	fs.stuck_ms = (unsigned)(o.log_opts.kafka_timeout_ms ?
				 o.log_opts.kafka_timeout_ms : 30000) + 10000;
	fs.max_flight_bytes = o.inflight_mb << 20;
	claim_identity(fs.claim_as, o.host, o.datadir);
	fs.takeover = o.takeover;
	fs.keep_log = o.keep_log;
	pthread_mutex_init(&fs.cat_lock, NULL);
	pthread_mutex_init(&fs.lock, NULL);
	pthread_mutex_init(&fs.close_lock, NULL);
	pthread_mutex_init(&fs.flight_lock, NULL);
	pthread_cond_init(&fs.flight_cond, NULL);
	pthread_mutex_init(&fs.ckpt_wait_lock, NULL);
	pthread_cond_init(&fs.ckpt_wait, NULL);

	/* A log named on the command line is opened first, so that a wrong
	 * one leaves nothing behind in the data directory; the default one
	 * lives in the data directory's state, which comes first then. */
	rc = 0;
	if (o.log_uri != uri)
		rc = rl_log_open(o.log_uri, RL_LOG_WRITE, &o.log_opts, &fs.log,
				 &err);
	if (rc == 0)
		rc = rl_datadir_prepare(o.datadir, &err);
	if (rc == 0)
		rc = fs.datadir_lock_fd = rl_datadir_lock(o.datadir, &err);
	if (rc >= 0) {
		int64_t max = rl_datadir_max_size(o.datadir, &err);

		rc = max < 0 ? (int)max : 0;
		fs.max_size = max < 0 ? 0 : (uint64_t)max;
	}
	if (rc >= 0 && !fs.log)
		rc = rl_log_open(o.log_uri, RL_LOG_WRITE, &o.log_opts, &fs.log,
				 &err);
	if (rc >= 0)
		rc = fs_disks_load(&fs, &err);
	if (rc < 0) {
		fprintf(stderr, "repdisk mount: %s\n", err.msg);
		goto out;
	}

	snprintf(fsname, sizeof(fsname), "-osubtype=repdisk,fsname=repdisk:%s",
		 o.datadir);
	/* The kernel checks every access against a disk's mode and owner
	 * (default_permissions), always: no handler does, and without it
	 * allow_other would give every local user every disk. */
	if (fuse_opt_add_arg(&args, "repdisk") || fuse_opt_add_arg(&args, fsname) ||
	    fuse_opt_add_arg(&args, "-odefault_permissions") ||
	    (o.fuse_opts[0] && (fuse_opt_add_arg(&args, "-o") ||
			     fuse_opt_add_arg(&args, o.fuse_opts)))) {
		fprintf(stderr, "repdisk mount: out of memory\n");
		goto out;
	}
	se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
	if (!se) {
		fprintf(stderr, "repdisk mount: bad mount options \"%s\"\n",
			o.fuse_opts);
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	/* SIGHUP is logrotate's "reopen your log", not "stop": unmounting
	 * the disks under running guests would be the worst answer */
	{
		struct sigaction sa = { .sa_handler = on_hup };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGHUP, &sa, NULL);
	}
	if (fuse_session_mount(se, o.mountpoint_real) != 0) {
		fprintf(stderr, "repdisk mount: cannot mount on %s\n",
			o.mountpoint);
		goto out;
	}
	mounted = true;
	if (pthread_create(&fs.ckpt_thread, NULL, fs_checkpoint_main, &fs) != 0)
		goto out;
	ckpt_thread = true;

	fprintf(stderr, "repdisk: %s mounted on %s (log %s)\n", o.datadir,
		o.mountpoint, fs.log_uri);
	if (ready_fd >= 0) {
		log_file = o.log_file;
		if (redirect_output(o.log_file) < 0) {
			fprintf(stderr, "repdisk mount: log file %s: %s\n",
				o.log_file, strerror(errno));
			goto out;
		}
		fprintf(stderr, "repdisk: %s mounted on %s (log %s)\n",
			o.datadir, o.mountpoint, fs.log_uri);
		if (write(ready_fd, "R", 1) != 1)
			goto out;
		close(ready_fd);
		ready_fd = -1;
	}

	cfg = fuse_loop_cfg_create();
	if (!cfg)
		goto out;
	fuse_loop_cfg_set_max_threads(cfg, 32);
	fuse_loop_cfg_set_idle_threads(cfg, 8);
	rc = fuse_session_loop_mt(se, cfg);
	status = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
out:
	if (ckpt_thread) {
		pthread_mutex_lock(&fs.ckpt_wait_lock);
		fs.stop = true;
		pthread_cond_signal(&fs.ckpt_wait);
		pthread_mutex_unlock(&fs.ckpt_wait_lock);
		pthread_join(fs.ckpt_thread, NULL);
	}
	/* every write in flight is answered and every disk checkpointed
	 * before the session goes */
	fs_disks_close(&fs);
	if (mounted)
		fuse_session_unmount(se);
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	fuse_loop_cfg_destroy(cfg);
	fuse_opt_free_args(&args);
	rl_log_close(fs.log);
	rl_log_opts_free(&o.log_opts);
	if (fs.datadir_lock_fd >= 0)
		close(fs.datadir_lock_fd);
	if (status == 0)
		fprintf(stderr, "repdisk: %s unmounted, disks checkpointed\n",
			o.mountpoint);
	return status;
}
