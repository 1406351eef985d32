/* replog private declarations: the backend operations table and helpers
 * shared between modules.  Nothing outside replog/ includes this. */
#ifndef REPLOG_INTERNAL_H
#define REPLOG_INTERNAL_H

#include <pthread.h>
#include <sys/uio.h>

#include "replog.h"
#include "vec.h"

/* A log backend: one per file, listed in log.c's table by URI scheme.  Each
 * backend's log, stream and reader structures start with the base structs
 * below, so log.c can dispatch without knowing the backend. */
struct rl_backend {
	const char *scheme;	/* "file" */
	int (*open)(const char *where, unsigned flags,
		    const struct rl_log_opts *opts, struct rl_log **out,
		    struct rl_err *err);
	void (*close)(struct rl_log *log);
	int (*stream)(struct rl_log *log, const struct rl_uuid *disk,
		      struct rl_stream **out, struct rl_err *err);
	int (*list)(struct rl_log *log, struct rl_uuid *uuids, size_t max,
		    struct rl_err *err);
	int (*append)(struct rl_stream *s, const void *rec, size_t len,
		      rl_append_cb cb, void *opaque);
	int (*end)(struct rl_stream *s, uint64_t *end);
	int (*reader_open)(struct rl_stream *s, uint64_t pos,
			   struct rl_reader **out, struct rl_err *err);
	int (*reader_next)(struct rl_reader *r, struct rl_record *rec,
			   uint64_t *pos, int timeout_ms, struct rl_err *err);
	void (*reader_close)(struct rl_reader *r);
	/* Deletes what is below keep_from where whole units (segments) can
	 * go; returns how many went.  NULL: the log keeps everything, or
	 * its own retention rules (Kafka). */
	int (*trim)(struct rl_stream *s, uint64_t keep_from,
		    struct rl_err *err);
	/* Bytes the stream holds from position `from` to its durable end.
	 * NULL: the backend cannot tell cheaply (Kafka). */
	int (*bytes_from)(struct rl_stream *s, uint64_t from, uint64_t *bytes);
	/* Follower positions (positions.c encodes and checks them): pos_put
	 * stores the report `buf` of follower `name`, replacing the last one
	 * (buf NULL: forgets the follower); pos_scan calls each() once per
	 * known follower with its newest report and a label for messages
	 * ("LOGDIR/followers/NAME", "topic T offset O"), stopping at the
	 * first non-zero return, which it returns. */
	int (*pos_put)(struct rl_log *log, const char *name, const void *buf,
		       size_t len, struct rl_err *err);
	int (*pos_scan)(struct rl_log *log,
			int (*each)(void *opaque, const char *name,
				    const void *buf, size_t len,
				    const char *where, struct rl_err *err),
			void *opaque, struct rl_err *err);
};

struct rl_log {
	const struct rl_backend *be;
	unsigned flags;
	size_t max_record;	/* largest encoded record appended; 0: any */
	struct rl_keyring *keys;	/* opts->key_file; NULL: none.  Set
					   by rl_log_open before any stream
					   exists; freed by rl_log_close */
};

struct rl_stream {
	struct rl_log *log;
	struct rl_uuid disk;	/* nil for the catalog */
	/* Why the last failed append failed, for the writer's message
	 * ("Broker: Not enough in-sync replicas"): set by the backend before
	 * it completes an append with an error, on its completion thread. */
	char fail_why[256];
};

struct rl_reader {
	struct rl_stream *stream;
};

extern const struct rl_backend rl_backend_file;
extern const struct rl_backend rl_backend_kafka;

/* A one-shot completion another thread sets: for the synchronous forms
 * of asynchronous calls (util.c). */
struct rl_waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int err;
	uint64_t pos;
};

#define RL_WAITER_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, \
			 false, 0, 0 }

void rl_waiter_done(struct rl_waiter *w, int err, uint64_t pos);
/* Waits until done; returns its err. */
int rl_waiter_wait(struct rl_waiter *w);

/* Why the last append of the stream that failed failed ("" if the backend
 * did not say), for the writer's message; read it from the append's
 * completion.  rl_log_append_sync() puts it in its rl_err. */
static inline const char *rl_stream_fail_why(const struct rl_stream *s)
{
	return s->fail_why;
}

/* Diagnostics through the program's rl_set_log_func() (util.c). */
void rl_msg(enum rl_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* appliers.c: the threads that apply every writer's durable records (see
 * its notes).  A job is embedded in its owner; run() is called on a pool
 * thread, never on two at once for one job, after rl_applier_wake() and
 * once a second with tick set. */
#define RL_APPLIER_THREADS 4
struct rl_applier {
	void (*run)(struct rl_applier *a, bool tick);
	/* the pool's, under its lock */
	bool queued, running, again, tick_due;
	struct rl_applier *next_ready, *prev_all, *next_all;
};
int rl_applier_join(struct rl_applier *a, struct rl_err *err);
/* It has work: run it soon (again, if it is running). */
void rl_applier_wake(struct rl_applier *a);
/* Runs it on the caller's thread instead: true if no pool thread runs it
 * or is about to (it is then the caller's until rl_applier_release). */
bool rl_applier_try_claim(struct rl_applier *a);
/* Gives it back; wake: it has work left for the pool. */
void rl_applier_release(struct rl_applier *a, bool wake);
/* Waits until it is not running, and takes it out of the pool. */
void rl_applier_leave(struct rl_applier *a);

/* replay.c: the one loop that reads a stream and applies its records (see
 * its notes).  A target is where records go: an image, the catalog, or a
 * caller's wrapper around either. */
struct rl_replay_target {
	const char *what;	/* "log", "catalog": for messages */
	void *arg;
	uint64_t (*next_pos)(void *arg);
	/* an rl_apply_result (>= 0), or -errno with err set (and tagged) */
	int (*apply)(void *arg, const struct rl_record *r, uint64_t pos,
		     struct rl_err *err);
	/* the record at next_pos cannot be read: pass over it?  NULL: no */
	bool (*skip_unreadable)(void *arg, const char *why);
};

struct rl_replay {
	struct rl_stream *stream;
	struct rl_reader *reader;	/* kept between runs; NULL: reopen */
	struct rl_replay_target t;
};

struct rl_replay_target rl_replay_image(struct rl_image *img);
struct rl_replay_target rl_replay_catalog(struct rl_catalog *cat);
void rl_replay_init(struct rl_replay *rp, struct rl_stream *s,
		    const struct rl_replay_target *t);
/* Applies records from the target's next position while it is below to,
 * at most budget of them (0: no limit).  Below a finite `to` every record
 * is durable and must come within wait_ms; with to == UINT64_MAX the run
 * ends where the log has no more (*at_end set, if not NULL).  Returns the
 * records passed (applied, ignored or skipped) or -errno, err tagged. */
int rl_replay_run(struct rl_replay *rp, uint64_t to, size_t budget,
		  int wait_ms, bool *at_end, struct rl_err *err);
void rl_replay_close(struct rl_replay *rp);
/* One run to a durable `to`, with a reader of its own: the records below
 * `to` must come (1 s each).  The records passed, or -errno. */
int rl_replay_to(struct rl_stream *s, const struct rl_replay_target *t,
		 uint64_t to, struct rl_err *err);

/* record.c: checks a record's header alone (hdr holds its first len
 * bytes, at least the whole header for version 3): its framing, and for
 * version 3 its header check (a sealed one only if d holds its key).  0,
 * or -EBADMSG/-EPROTO with a message.  Versions 1 and 2 have one checksum
 * over header and payload: only the framing is checked. */
int rl_record_check_header(const struct rl_decoder *d, const void *hdr,
			   size_t len, struct rl_err *err);

/* claim.c: the epoch rules and the claim sequence (see its notes). */
struct rl_epoch_rules {
	bool claim_first;	/* records before any claim are refused */
	bool seq;		/* sequence numbers: duplicates are ignored */
};

enum rl_epoch_verdict {
	RL_EPOCH_APPLY,		/* the current epoch, a new sequence number */
	RL_EPOCH_CLAIM,		/* a CLAIM of a newer epoch: it becomes current */
	RL_EPOCH_STALE,		/* an older epoch (or a CLAIM not newer) */
	RL_EPOCH_DUP,		/* a sequence number already applied */
	RL_EPOCH_GAP,		/* past the next sequence number: a hole */
	RL_EPOCH_UNCLAIMED,	/* refused: no claim yet */
	RL_EPOCH_FUTURE,	/* refused: an epoch no claim has reached */
};

enum rl_epoch_verdict rl_epoch_judge(const struct rl_epoch_rules *rules,
				     uint64_t epoch, uint64_t last_seq,
				     const struct rl_record *r);

/* A sealed CLAIM ends the epoch before it (apply.c, "Gaps"): it must be of
 * the next epoch, and (check_seq) must not say that epoch reached a seq
 * past last_seq.  0, or -EBADMSG with a message that starts with what. */
struct rl_claim_chain {
	const char *what;	/* "image PATH", "catalog" */
	const char *kind;	/* "" for a disk, "catalog " */
	uint64_t epoch, last_seq;
	bool check_seq;
};
int rl_claim_chain_check(const struct rl_claim_chain *c,
			 const struct rl_record *r, uint64_t pos,
			 struct rl_err *err);

/* A claim of a stream by a writer: its target (image or catalog) and how
 * to ask it for the newest claim. */
struct rl_claim {
	struct rl_stream *stream;
	struct rl_replay_target t;
	uint64_t (*epoch)(void *arg);		/* the target's newest claim */
	uint64_t (*last_seq)(void *arg);	/* the last seq it applied in
						   that epoch; NULL: none */
	const char *(*owner)(void *arg);	/* its host, "" if unknown */
	const char *what;	/* "vm1.img", "log URI": starts messages */
	const char *noun;	/* "the disk", "its catalog" */
	const char *host;	/* who claims */
	bool takeover;		/* claim what another host owns */
	void (*before_claim)(void *arg);	/* tests: just before CLAIM */
	void *before_arg;
};

/* Replays to the end, refuses another owner's stream (-EBUSY, unless
 * takeover), appends a CLAIM of the next epoch and replays through it.
 * 0 with *epoch (and *at, its position, if not NULL) when the claim won;
 * -EBUSY when another writer's claim came first; -errno, err tagged. */
int rl_claim_run(const struct rl_claim *c, uint64_t *epoch, uint64_t *at,
		 struct rl_err *err);

/* util.c */
/* Strict scanning of the state files' "key value" lines: p after the
 * literal lit, or NULL (p NULL: NULL); p after a decimal number (at most
 * max) and the character term that must follow it, or NULL. */
const char *rl_scan_lit(const char *p, const char *lit);
const char *rl_scan_u64(const char *p, uint64_t max, uint64_t *v, char term);
int rl_fsync_dir(const char *dir);
/* Makes sure path is a directory fit for repdisk's state, making it (0700,
 * parent fsync'ed) when create and it is missing: a real directory (not a
 * link), owned by this process's user, that group and others cannot write
 * (-EPERM with a message otherwise).  One that they can read or search is
 * tightened to 0700: the state holds every disk's data. */
int rl_state_dir(const char *path, bool create, struct rl_err *err);
int rl_write_full(int fd, const void *buf, size_t len);
/* Writes all of buf at off (appends go at a tracked end, never at the
 * fd's file offset, which recovery does not move). */
int rl_pwrite_full(int fd, const void *buf, size_t len, off_t off);
/* The same for cnt buffers in order, in as few pwritev calls as the
 * kernel allows; iov is used up (its entries are advanced past what was
 * written).  A write of nothing is taken for a full disk (-ENOSPC). */
int rl_pwritev_full(int fd, struct iovec *iov, int cnt, off_t off);
ssize_t rl_pread_full(int fd, void *buf, size_t len, off_t off);
/* The file of fd opened again with O_DIRECT and flags (O_RDONLY, ...):
 * through /proc/self/fd, so the same file even if its path was replaced
 * since, and checked to be the same inode.  A descriptor, or -errno
 * (-EINVAL: the file system refuses O_DIRECT). */
int rl_reopen_direct(int fd, int flags);
/* Reads a whole small file into buf as a string; bytes read or -errno. */
int rl_read_small_file(const char *path, char *buf, size_t size);
/* Replaces dir/name with buf durably: write a temporary file, fdatasync,
 * rename over, fsync the directory. */
int rl_write_atomic(const char *dir, const char *name, const void *buf,
		    size_t len, struct rl_err *err);

/* Little-endian helpers for the on-disk formats. */
static inline void rl_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void rl_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void rl_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t rl_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t rl_get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline uint64_t rl_get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#endif /* REPLOG_INTERNAL_H */
