/* replog: the replicated write log of repdisk, with no FUSE dependency.
 *
 * This is the one header that fs/ and tools/ include.  It has six parts:
 *
 *   records   the versioned binary format of every change (record.c)
 *   log       ordered, durable streams of records behind a backend table
 *             chosen by URI scheme: file:PATH (log_file.c), later kafka:
 *   applier   the only code that modifies images: records in log order ->
 *             DATADIR/NAME, with checkpoints beside the image (apply.c),
 *             and the catalog of names (catalog.c)
 *   positions where every follower is, published in the log by the
 *             followers themselves (positions.c)
 *   follower  catch up and tail a log into a data directory (follow.c)
 *   writer    the write pipeline of one disk: claim, number, append, apply
 *             in log order, complete (writer.c)
 *
 * Error convention: functions return 0 (or a count) on success and a negative
 * errno on failure.  Those that take a `struct rl_err *` also leave there a
 * message that names what was wrong ("what: object: reason"), so the caller
 * prints it once where it knows the context.  The pointer may be NULL.
 */
#ifndef REPLOG_H
#define REPLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ errors */

/* Which layer failed, so that a caller acts on each as it should: a log
 * that does not answer is waited for; a record that cannot be applied
 * stops its disk; a local image or state that failed stops its disk until
 * it is opened again (it then replays from its last good checkpoint). */
enum rl_err_layer {
	RL_ERR_UNKNOWN = 0,	/* not said (argument checks, memory) */
	RL_ERR_LOG,		/* the log did not answer or failed an append */
	RL_ERR_RECORD,		/* what the log holds: damaged, refused, gone */
	RL_ERR_IMAGE,		/* the local image: its writes or fdatasync */
	RL_ERR_STATE,		/* the data directory's own state files */
};

struct rl_err {
	int code;		/* positive errno, 0 if no error was set */
	enum rl_err_layer layer;
	char msg[512];
};

/* Formats a message into err (if not NULL), with layer RL_ERR_UNKNOWN,
 * and returns -code. */
int rl_err_set(struct rl_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Puts a formatted prefix before err's message ("follow: vm1.img: "),
 * keeping its code and layer; returns -code. */
int rl_err_prefix(struct rl_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Tags err with layer unless a layer is set already; returns rc. */
int rl_err_layer(struct rl_err *err, enum rl_err_layer layer, int rc);

/* ------------------------------------------------------------------ diagnostics
 *
 * What replog has to say while it works (a torn tail cut, an outage begun
 * and ended, a disk fenced) goes to one function: by default a line
 * "repdisk: MSG" on stderr.  A program routes it elsewhere (its log file,
 * a prefix of its own) or drops it, after libfuse's fuse_set_log_func().
 * Errors of a call are not logged: they come back in its struct rl_err.
 */
enum rl_log_level {
	RL_LOG_ERR,		/* something failed; what happens now */
	RL_LOG_WARNING,		/* works, but at risk (a topic's settings) */
	RL_LOG_NOTICE,		/* a state changed (recovered, caught up) */
};

typedef void (*rl_log_func)(enum rl_log_level level, const char *msg,
			    void *arg);
/* fn NULL: the default.  Set it before any other replog call. */
void rl_set_log_func(rl_log_func fn, void *arg);

/* ------------------------------------------------------------------ clocks */

/* clock_gettime(id) in milliseconds and in nanoseconds. */
int64_t rl_clock_ms(clockid_t id);
uint64_t rl_clock_ns(clockid_t id);

/* ------------------------------------------------------------------ numbers */

/* Parses a non-negative decimal integer: digits only (no sign, no blank
 * before), at most max.  With rest NULL nothing may follow it; else *rest
 * points after the digits.  0, or -1 for anything else. */
int rl_parse_u64(const char *s, uint64_t max, uint64_t *out,
		 const char **rest);

/* ------------------------------------------------------------------ uuids */

struct rl_uuid {
	uint8_t b[16];
};

#define RL_UUID_STRLEN 36	/* without the NUL */

void rl_uuid_generate(struct rl_uuid *u);
void rl_uuid_format(const struct rl_uuid *u, char out[RL_UUID_STRLEN + 1]);
int rl_uuid_parse(const char *s, struct rl_uuid *u);	/* 0 or -EINVAL */
bool rl_uuid_is_nil(const struct rl_uuid *u);
bool rl_uuid_eq(const struct rl_uuid *a, const struct rl_uuid *b);

/* ------------------------------------------------------------------ names */

#define RL_NAME_MAX 255

/* Checks a disk name: 1..RL_NAME_MAX bytes, no '/', no control characters,
 * not "." or "..", and not starting with ".repdisk" (reserved for repdisk's
 * own state).  Returns 0, -EINVAL or -ENAMETOOLONG with a message. */
int rl_name_check(const char *name, struct rl_err *err);

/* ------------------------------------------------------------------ records
 *
 * The byte layout is in docs/FORMAT.md.  A disk's stream holds CLAIM, WRITE,
 * ZERO, DISCARD, RESIZE and MARK records; the catalog stream holds CREATE,
 * RENAME, DELETE, SETATTR and SKIP records.
 */

#define RL_RECORD_VERSION	3	/* what every record is written as */
#define RL_RECORD_VERSION_MAX	3	/* readers read versions 1 to 3 */
#define RL_RECORD_HDR_SIZE	128	/* a version-3 header: a writer's
					   payload starts here */
/* The most records of one epoch a writer has in flight: it seals seq S
 * only once every seq up to S - RL_SEQ_WINDOW is durable.  A reader that
 * finds a sealed record more than this far past a hole in its epoch knows
 * the hole was durable once: a record deleted (FORMAT.md, Gaps). */
#define RL_SEQ_WINDOW		4096
#define RL_RECORD_HDR_MIN	96	/* the first bytes of every version's
					   header: enough to size a record
					   (rl_record_size) */
#define RL_RECORD_MAX_PAYLOAD	(16u << 20)	/* stored bytes, 16 MiB */
#define RL_RECORD_MAX_DATA	(16u << 20)	/* uncompressed WRITE data */
#define RL_MARK_LABEL_MAX	1024		/* bytes of a MARK's label */

enum rl_type {
	/* disk stream */
	RL_WRITE = 1,	/* offset, length, data */
	RL_ZERO = 2,	/* offset, length: the range reads as zeros */
	RL_DISCARD = 3,	/* offset, length: the guest no longer needs the range */
	RL_RESIZE = 4,	/* offset = new size in bytes */
	RL_CLAIM = 5,	/* a writer takes the disk with a new epoch; data = host */
	RL_MARK = 6,	/* data = a label; offset, length: a byte range to
			   verify (length 0: none).  Version 3.  Appliers
			   change nothing for it but pass its position */
	/* catalog stream */
	RL_CREATE = 16,	/* disk, name, mode, uid, gid */
	RL_RENAME = 17,	/* disk, name (the new name) */
	RL_DELETE = 18,	/* disk */
	RL_SETATTR = 19,	/* disk, mode, uid, gid */
	RL_SKIP = 20,	/* disk, offset = a position of its stream that every
			   applier passes over (repdisk log skip); data =
			   who, when and why, for the audit.  Version 2 */
};

enum rl_codec {
	RL_CODEC_NONE = 0,
	RL_CODEC_ZSTD = 1,
};

/* ------------------------------------------------------------------ keys
 *
 * A deployment's keys (replog/keys.c): a key file of "key ID HEX" lines,
 * oldest first, mode 0600 and owned by its reader.  Writers seal with the
 * newest key; readers open each record with the key its header names.
 */

#define RL_KEY_BYTES	32

struct rl_key {
	uint32_t id;				/* 1..2^32-1 */
	unsigned char payload[32];		/* XChaCha20-Poly1305 */
	unsigned char header[32];		/* keyed BLAKE2b */
	unsigned char fingerprint[8];		/* shown by `key list` */
};

struct rl_keyring;

/* Loads the key file at path: refused (-EACCES) unless it is a regular
 * file owned by this user with no access for group or others; -EINVAL
 * naming the line for a bad one.  0 or -errno with err. */
int rl_keyring_load(const char *path, struct rl_keyring **out,
		    struct rl_err *err);
void rl_keyring_free(struct rl_keyring *kr);
const struct rl_key *rl_keyring_newest(const struct rl_keyring *kr);
const struct rl_key *rl_keyring_find(const struct rl_keyring *kr,
				     uint32_t id);
size_t rl_keyring_count(const struct rl_keyring *kr);
const struct rl_key *rl_keyring_at(const struct rl_keyring *kr, size_t i);
/* Adds a new random key to the key file at path, with the next id (1 in
 * a new file, which create makes, mode 0600, and never over an existing
 * one); the file is replaced whole.  0 with *id, or -errno with err. */
int rl_keyfile_add(const char *path, bool create, uint32_t *id,
		   struct rl_err *err);

/* A decoded record, or one to encode.  `data` is the uncompressed payload
 * (WRITE data, CLAIM host name); `name` is set for CREATE and RENAME. */
struct rl_record {
	enum rl_type type;
	enum rl_codec codec;	/* how the payload is (or was) stored */
	struct rl_uuid disk;
	uint64_t epoch;
	uint64_t seq;		/* per writer and epoch, from 0 */
	uint64_t offset;	/* WRITE/ZERO/DISCARD: byte offset; RESIZE: size */
	uint64_t length;	/* WRITE/ZERO/DISCARD: byte length */
	const void *data;
	size_t data_len;
	const char *name;
	uint32_t mode, uid, gid;
	uint32_t stored_len;	/* payload bytes as stored (decode only) */
	uint64_t time_ns;	/* the writer's wall clock when it encoded the
				   record, ns since 1970 (version 3; to
				   encode, 0 means now) */
	uint16_t version;	/* decode only */
	uint32_t key_id;	/* decode only: the key it was sealed with, 0
				   for none */
};

const char *rl_type_name(enum rl_type t);	/* "WRITE", ..., or NULL */

/* Upper bound of the encoded size of r. */
size_t rl_record_encoded_max(const struct rl_record *r);

/* Encodes r into buf (at least rl_record_encoded_max(r) bytes).  A WRITE
 * payload of at least `zstd_min` bytes is compressed with zstd when that
 * makes it smaller (zstd_min 0: never).  Returns the encoded size or a
 * negative errno (-EINVAL for a record that breaks the format's rules). */
ssize_t rl_record_encode(const struct rl_record *r, size_t zstd_min,
			 void *buf, size_t size, struct rl_err *err);
/* The same, sealed with key (NULL: none). */
ssize_t rl_record_encode_key(const struct rl_record *r, size_t zstd_min,
			     const struct rl_key *key, void *buf, size_t size,
			     struct rl_err *err);

/* Two-phase encoding, for writers that number records under a lock:
 * rl_record_prepare() does the expensive part (copy or compress the
 * payload, check it) and leaves the epoch and sequence number blank;
 * rl_record_seal() writes them and checks the header (112 bytes of
 * hashing).  rl_record_encode() is both in one call. */
struct rl_sealer {
	const struct rl_key *key;	/* in: seal with it; NULL: no key */
	enum rl_codec codec;		/* out: how prepare stored the payload */
};

ssize_t rl_record_prepare(const struct rl_record *r, size_t zstd_min,
			  void *buf, size_t size, struct rl_sealer *sealer,
			  struct rl_err *err);
void rl_record_seal(void *buf, struct rl_sealer *sealer, uint64_t epoch,
		    uint64_t seq);

/* Reusable decoding state: owns the buffer that decompressed payloads and
 * names of the last decoded record point into. */
struct rl_decoder {
	void *buf;
	size_t cap;
	void *zctx;		/* ZSTD_DCtx */
	void *plain;		/* a sealed record's decrypted payload */
	size_t plain_cap;
	/* Set by the caller after rl_decoder_init(): the keys to open sealed
	 * records with.  With keys, a record without a key is refused
	 * (anyone can forge one) unless accept_unkeyed. */
	const struct rl_keyring *keys;
	bool accept_unkeyed;
};

void rl_decoder_init(struct rl_decoder *d);
void rl_decoder_free(struct rl_decoder *d);

/* Validates the first RL_RECORD_HDR_MIN bytes of a record alone: magic,
 * version, type, codec, reserved fields, lengths.  On success returns the
 * record's whole size (header and payload), so a reader knows how many
 * bytes it spans.  -EBADMSG (or -EPROTO for an unknown version) with a
 * message otherwise. */
ssize_t rl_record_size(const void *hdr, struct rl_err *err);

/* The epoch and seq of a header that rl_record_size() accepted (every
 * version keeps them at the same offsets).  The file log's recovery of a
 * reused segment orders records by them. */
void rl_record_order(const void *hdr, uint64_t *epoch, uint64_t *seq);

/* Strictly decodes exactly `len` bytes into *r.  Pointers in *r point into
 * buf or into d's buffer and stay valid until the next decode with d.
 * Errors: -EBADMSG (corrupt, truncated, a bad check, a bad zstd frame),
 * -EPROTO (unknown version), each with a message; *r is then untouched. */
int rl_record_decode(struct rl_decoder *d, const void *buf, size_t len,
		     struct rl_record *r, struct rl_err *err);

/* ------------------------------------------------------------------ log
 *
 * A log holds one stream per disk plus one catalog stream.  A position is
 * the index of a record in its stream, from 0; a stream's end is the
 * position the next record will get.  Only the durable prefix of a stream
 * is ever visible to readers.
 */

struct rl_log;
struct rl_stream;
struct rl_reader;

enum {
	RL_LOG_WRITE = 1 << 0,	/* writer: exclusive, recovers torn tails */
};

struct rl_log_opts {
	uint64_t segment_bytes;	/* file: roll segments at this size; 0 = default */
	bool quiet;		/* do not print recovery notes to stderr */
	/* kafka (each 0/NULL = default; options in the URI override these) */
	const char *kafka_namespace;	/* topics repdisk.NS.*; "default" */
	int kafka_replication;		/* replication factor of new topics; 3 */
	int kafka_min_insync;		/* their min.insync.replicas; 2 */
	int kafka_timeout_ms;		/* an append fails after this; 30000 */
	const char *const *kafka_props;	/* NULL-terminated librdkafka
					   "key=value" passed through */
	/* both backends: the key file (keys.c).  Records are then sealed
	 * with its newest key, opened with the key each names, and records
	 * without a key are refused.  NULL: no keys. */
	const char *key_file;
};

/* The log options programs take on their command line (logopts.c): opt
 * is "namespace", "write-timeout" (seconds), "kafka-config" (a file of
 * PROPERTY=VALUE lines) or "o" (val "kafka.PROPERTY=VALUE").  val must
 * outlive o.  Returns 0 or -EINVAL with a message.  rl_log_opts_free()
 * frees what rl_log_opts_set() allocated. */
int rl_log_opts_set(struct rl_log_opts *o, const char *opt, const char *val,
		    struct rl_err *err);
void rl_log_opts_free(struct rl_log_opts *o);

/* Completion of an append: called once, from the log's completion thread,
 * in position order for each stream, after the record is durable (err 0)
 * or when it cannot be (err < 0, then pos is meaningless).  It must not
 * block for long: a slow callback delays every later completion. */
typedef void (*rl_append_cb)(void *opaque, int err, uint64_t pos);

/* Opens the log named by uri ("file:PATH", a bare path, or
 * "kafka:HOST:PORT[,...][?KEY=VALUE&...]", see log_kafka.c).  With
 * RL_LOG_WRITE the caller becomes the only writer: a second writer gets
 * -EBUSY with a message at once (file backend only: Kafka has no lock, see
 * log_kafka.c).  Readers may open a log any number of times, while it is
 * written.  Errors: -EINVAL (bad uri), -ENOENT, -EBUSY,
 * -EIO, and what the backend's system calls return. */
int rl_log_open(const char *uri, unsigned flags, const struct rl_log_opts *opts,
		struct rl_log **out, struct rl_err *err);
/* Waits for appends in flight to complete, then closes.  Streams and
 * readers of the log must be closed first. */
void rl_log_close(struct rl_log *log);
/* The log's keys (opts->key_file) and the one new records are sealed
 * with; NULL without keys. */
const struct rl_keyring *rl_log_keys(const struct rl_log *log);
const struct rl_key *rl_log_seal_key(const struct rl_log *log);

/* Secrets (SASL passwords, key passphrases) travel as kafka.PROPERTY=VALUE
 * in URIs and -o options: never print or keep them where others can see.
 * rl_redact() copies s into out with the VALUE of every "kafka.KEY=VALUE"
 * in it replaced by "***" (for messages); rl_argv_scrub() overwrites those
 * values in argv in place with '*', so that ps and /proc/PID/cmdline do
 * not show them (call it once the options have been copied). */
void rl_redact(const char *s, char *out, size_t size);
void rl_argv_scrub(int argc, char **argv);

/* Raises this process's soft limit on open files to its hard limit: a
 * mount or a follower holds a few descriptors per disk (a segment, its
 * direct twin, the head, the image), and 1024 would cap it near 200
 * disks.  Quietly does nothing if it cannot. */
void rl_fd_limit_raise(void);

/* The stream of a disk (disk != NULL) or the catalog (disk == NULL).  A
 * writer creates it if missing; a reader gets -ENOENT if it does not exist.
 * The stream belongs to the log and lives until rl_log_close(). */
int rl_log_stream(struct rl_log *log, const struct rl_uuid *disk,
		  struct rl_stream **out, struct rl_err *err);

/* Lists the disk streams present in the log: fills up to max uuids and
 * returns how many there are (which may be more than max). */
int rl_log_list(struct rl_log *log, struct rl_uuid *uuids, size_t max,
		struct rl_err *err);

/* Appends one encoded record (a writer's log only).  The bytes are copied
 * before this returns; cb runs later.  Returns 0 when the append is under
 * way (cb will run), or a negative errno when it is refused (cb will not
 * run): -EROFS on a reader's log, -EIO once the log has failed (sticky),
 * -EMSGSIZE for a record larger than rl_stream_max_record(). */
int rl_log_append(struct rl_stream *s, const void *rec, size_t len,
		  rl_append_cb cb, void *opaque);

/* Appends and waits until the record is durable.  Returns its position
 * (>= 0) or a negative errno, with err saying why ("log append failed:
 * Broker: Not enough in-sync replicas"), layer RL_ERR_LOG. */
int64_t rl_log_append_sync(struct rl_stream *s, const void *rec, size_t len,
			   struct rl_err *err);

/* Log retention (a writer's log only): deletes records below keep_from
 * where the backend can, in whole segments (the file log; never the
 * segment being written).  Returns how many segments went, -EOPNOTSUPP
 * for a log that keeps its own retention (Kafka: the topic's settings).
 * A reader opened below what is left gets -ERANGE, saying the replica
 * must be reseeded.  Callers pick keep_from with rl_retention_bound(). */
int rl_log_trim(struct rl_stream *s, uint64_t keep_from, struct rl_err *err);

/* How many bytes of records the stream holds from position `from` to its
 * durable end (a follower's lag in bytes).  -EOPNOTSUPP where the backend
 * cannot tell cheaply (Kafka); -ERANGE below the log's start. */
int rl_log_bytes_from(struct rl_stream *s, uint64_t from, uint64_t *bytes,
		      struct rl_err *err);

/* The largest encoded record the stream's log takes (0: no limit), e.g. the
 * Kafka broker's message size limit.  The writer splits WRITE records that
 * would be larger. */
size_t rl_stream_max_record(const struct rl_stream *s);

/* The disk a stream belongs to (the nil uuid for the catalog). */
const struct rl_uuid *rl_stream_disk(const struct rl_stream *s);

/* The durable end of the stream: every position below it is durable.
 * 0, or -errno with err set (layer RL_ERR_LOG). */
int rl_log_end(struct rl_stream *s, uint64_t *end, struct rl_err *err);

/* Opens a reader at position pos (pos may equal the end: it then tails). */
int rl_reader_open(struct rl_stream *s, uint64_t pos, struct rl_reader **out,
		   struct rl_err *err);

/* Reads and strictly decodes the next record.  Returns 1 with *rec and *pos
 * set (pointers valid until the next call), 0 if no durable record came
 * within timeout_ms (0: do not wait), or a negative errno with a message that
 * names the stream, segment, byte offset and position of the bad record.
 * After an error the reader stays at the bad record. */
int rl_reader_next(struct rl_reader *r, struct rl_record *rec, uint64_t *pos,
		   int timeout_ms, struct rl_err *err);
void rl_reader_close(struct rl_reader *r);

/* ------------------------------------------------------------------ images
 *
 * The applier.  An image is DATADIR/NAME, a plain raw file; its checkpoint
 * is DATADIR/.repdisk/ckpt/UUID, a small text file written atomically after
 * the image was fdatasync'd, holding the next position to apply, the newest
 * claimed epoch and the last sequence number applied in that epoch.
 */

struct rl_image;

struct rl_checkpoint {
	uint64_t next_pos;	/* the next log position to apply */
	uint64_t epoch;		/* the newest claimed epoch applied */
	uint64_t last_seq;	/* the last sequence number applied in it */
	char owner[RL_NAME_MAX + 1];	/* the host that claimed it ("" if
					   unknown), as one printable word */
};

/* Reads a disk's checkpoint without touching anything.  -ENOENT (with *out
 * zeroed) when the disk has none yet; -EBADMSG for a damaged one. */
int rl_checkpoint_read(const char *ckpt_dir, const struct rl_uuid *disk,
		       struct rl_checkpoint *out, struct rl_err *err);
/* Replaces a disk's checkpoint file atomically and durably with c (it is
 * the caller's job that the image holds what c says: rl_image_commit()
 * syncs it first; a seed copies an image taken after c). */
int rl_checkpoint_write(const char *ckpt_dir, const struct rl_uuid *disk,
			const struct rl_checkpoint *c, struct rl_err *err);

/* A claim's writer name as checkpoints and the catalog state keep it: one
 * word of printable ASCII (other bytes become '_'), at most RL_NAME_MAX. */
void rl_claim_owner(char out[RL_NAME_MAX + 1], const void *data, size_t len);

/* Opens (creating if missing) the image of disk at path and loads its
 * checkpoint from ckpt_dir. */
int rl_image_open(const char *path, const char *ckpt_dir,
		  const struct rl_uuid *disk, struct rl_image **out,
		  struct rl_err *err);
void rl_image_close(struct rl_image *img);

/* The next log position to apply (0 for a new image). */
uint64_t rl_image_next_pos(const struct rl_image *img);
uint64_t rl_image_epoch(const struct rl_image *img);
uint64_t rl_image_last_seq(const struct rl_image *img);
/* The next position as of the image's last checkpoint (what a restart
 * replays from). */
uint64_t rl_image_checkpointed(const struct rl_image *img);
/* The host named by the newest claim applied ("" if none or unknown). */
const char *rl_image_owner(const struct rl_image *img);
/* 0, or -EIO once an fdatasync of the image failed (sticky: the image
 * then takes no records and writes no checkpoint until it is reopened). */
int rl_image_failed(const struct rl_image *img);
int rl_image_fd(const struct rl_image *img);
/* From now on, large writes go to the image with O_DIRECT, past the page
 * cache (for an image that is not read while it is written: a follower's;
 * apply.c, "Direct writes").  True if they do; false leaves the image as
 * it was (a file system without O_DIRECT). */
bool rl_image_set_direct(struct rl_image *img);

enum rl_apply_result {
	RL_APPLIED = 0,
	RL_IGNORED_STALE = 1,	/* an epoch older than the newest claim */
	RL_IGNORED_DUP = 2,	/* a sequence number already applied */
	RL_SKIPPED = 3,		/* refused, but a position the catalog skips */
	RL_IGNORED_GAP = 4,	/* sealed, past a hole in its epoch: void */
};

/* Which positions the image may pass over when their record cannot be
 * read or applied (rl_catalog_skipped() with the catalog as arg, say);
 * NULL: none.  Asked only on failure, from the thread that applies. */
typedef bool (*rl_skip_fn)(void *arg, const struct rl_uuid *disk,
			   uint64_t pos);
void rl_image_set_skip(struct rl_image *img, rl_skip_fn fn, void *arg);
/* The record at the image's next position could not be read: true (and
 * next_pos moved past it, with a note on stderr) if that position is one
 * to skip. */
bool rl_image_skip_unreadable(struct rl_image *img, const char *why);

/* Applies the record at position pos.  Positions must come in order: pos
 * must equal rl_image_next_pos() (-EINVAL otherwise); then next_pos becomes
 * pos + 1.  Returns an rl_apply_result (>= 0), or a negative errno: -EBADMSG
 * for a record that does not belong here (another disk, a catalog type, an
 * epoch newer than the newest claim), -EIO and others from the image's
 * system calls.  On error nothing is applied and next_pos does not move. */
int rl_image_apply(struct rl_image *img, const struct rl_record *r,
		   uint64_t pos, struct rl_err *err);

/* Makes what was applied durable: fdatasync the image, then atomically
 * replace the checkpoint file.  No-op when nothing changed. */
int rl_image_checkpoint(struct rl_image *img, struct rl_err *err);

/* The same in two steps, for an image applied to by another thread: take
 * the snapshot under the lock that serializes applies, then commit without
 * it (the fdatasync can take long; applies go on meanwhile).  Commits of
 * one image must not run concurrently. */
void rl_image_snapshot(const struct rl_image *img, struct rl_checkpoint *c);
int rl_image_commit(struct rl_image *img, const struct rl_checkpoint *c,
		    struct rl_err *err);
/* Only the first step of a commit: fdatasync()s the image if anything was
 * applied up to the snapshot c since the last flush or commit, without
 * replacing the checkpoint file.  Between checkpoints it writes the
 * image back in smaller steps (apply.c, "Image writeback"); a failure is
 * as sticky as a commit's.  Not concurrently with a commit. */
int rl_image_flush(struct rl_image *img, const struct rl_checkpoint *c,
		   struct rl_err *err);

/* Replays the stream into img from its next position up to the stream's
 * durable end.  Returns the number of records applied or a negative errno. */
int rl_replay(struct rl_stream *s, struct rl_image *img, struct rl_err *err);

/* ------------------------------------------------------------------ writer
 *
 * The write pipeline of one disk (writer.c): records go in from any thread,
 * are sealed with the writer's epoch and the next sequence number, appended,
 * and applied to the image in log order once durable; then the submitter's
 * completion runs: on a thread of the appliers' pool, or on the log's own
 * completion thread (a lone small record).  So a completion must not wait
 * for the log, or for another record of the writer, to complete.
 */

struct rl_writer;

struct rl_writer_opts {
	const char *host;	/* named in the CLAIM record */
	size_t zstd_min;	/* compress WRITE payloads from this size; 0 off */
	bool takeover;		/* claim a disk another host owns */
	unsigned stuck_ms;	/* report a record in flight longer than this
				   (the mount's log); 0: RL_WRITER_STUCK_MS */
	/* For tests: called after the replay, just before the CLAIM is
	 * appended, so that a test can interleave another claim there. */
	void (*test_before_claim)(void *arg);
	void *test_arg;
};

/* A log fails an append it cannot make durable within its write timeout
 * (30 s by default): a record older than that plus a margin is stuck. */
#define RL_WRITER_STUCK_MS	40000

/* Completion of a submitted record: err is 0 once the record is durable and
 * applied, -EIO if the log or the image failed, -EROFS if the writer was
 * fenced by a newer claim. */
typedef void (*rl_done_cb)(void *opaque, int err);

/* Replays s into img, then claims the disk with the next epoch (a CLAIM
 * naming opts->host), and checkpoints.  A disk whose newest claim names
 * another host is refused with -EBUSY unless opts->takeover: that host's
 * writer may still be running, and a takeover fences it.  The caller owns s (a writer's log)
 * and img, which must outlive the writer. */
int rl_writer_open(struct rl_stream *s, struct rl_image *img, const char *name,
		   const struct rl_writer_opts *opts, struct rl_writer **out,
		   struct rl_err *err);
/* Waits for records in flight, then frees the writer (no checkpoint). */
void rl_writer_close(struct rl_writer *w);

/* Submits a WRITE, ZERO, DISCARD or RESIZE record (epoch and seq are the
 * writer's own).  The data is copied before this returns.  Returns 0 (cb will
 * run) or a negative errno (cb will not run): -EIO once the writer failed,
 * -EINVAL for a bad record, -ENOMEM. */
int rl_writer_submit(struct rl_writer *w, const struct rl_record *r,
		     rl_done_cb cb, void *opaque);
/* The same without copying the data: buf (malloc'ed, cap bytes) already
 * holds the WRITE data at buf + RL_RECORD_HDR_SIZE, where r->data points.
 * The writer owns buf from this call on, whatever it returns.  cap must be
 * at least RL_RECORD_HDR_SIZE + r->data_len. */
int rl_writer_submit_buf(struct rl_writer *w, const struct rl_record *r,
			 void *buf, size_t cap, rl_done_cb cb, void *opaque);
/* Submits and waits; returns the completion's err. */
int rl_writer_submit_sync(struct rl_writer *w, const struct rl_record *r);
/* Waits until no record is in flight. */
void rl_writer_drain(struct rl_writer *w);
/* Checkpoints the image (safe while records complete). */
int rl_writer_checkpoint(struct rl_writer *w, struct rl_err *err);
/* rl_image_flush() of what is applied (safe while records complete). */
int rl_writer_flush(struct rl_writer *w, struct rl_err *err);
uint64_t rl_writer_epoch(const struct rl_writer *w);
/* 0, or the sticky error that makes the writer refuse submits. */
int rl_writer_failed(struct rl_writer *w);

/* ------------------------------------------------------------------ catalog
 *
 * The names of a data directory's disks.  State is DATADIR/.repdisk/catalog,
 * replaced atomically after every applied catalog record (they are rare).
 */

struct rl_catalog;

struct rl_disk_info {
	struct rl_uuid uuid;
	char name[RL_NAME_MAX + 1];
	uint32_t mode, uid, gid;
};

int rl_catalog_open(const char *datadir, struct rl_catalog **out,
		    struct rl_err *err);
void rl_catalog_close(struct rl_catalog *cat);
uint64_t rl_catalog_next_pos(const struct rl_catalog *cat);
/* Installs data directory `from`'s catalog state (validated) as `to`'s,
 * atomically, so that `to` replays the catalog from `from`'s position (an
 * empty catalog at position 0 if `from` has none yet).  `to` must have
 * been prepared (rl_datadir_prepare). */
int rl_catalog_copy_state(const char *from, const char *to,
			  struct rl_err *err);
/* The newest catalog claim's epoch (0: none) and owner ("" if unknown). */
uint64_t rl_catalog_epoch(const struct rl_catalog *cat);
/* The last sequence number applied in that epoch (0: none numbered). */
uint64_t rl_catalog_last_seq(const struct rl_catalog *cat);
const char *rl_catalog_owner(const struct rl_catalog *cat);

/* Applies a catalog record at pos (== next_pos): creates, renames or deletes
 * the image file and its checkpoint, or changes its mode and owner; a CLAIM
 * of the nil disk claims the catalog (see catalog.c).  Returns 0, or
 * RL_IGNORED_STALE for a record of an epoch older than the newest catalog
 * claim (ignored; next_pos moves on), or a negative errno; -EBADMSG for a
 * record that breaks the catalog's rules (a name in use by another disk, a
 * disk type in the catalog stream). */
int rl_catalog_apply(struct rl_catalog *cat, const struct rl_record *r,
		     uint64_t pos, struct rl_err *err);

/* The disks, in no particular order: returns their count and, if out is
 * not NULL, copies up to max of them. */
size_t rl_catalog_disks(const struct rl_catalog *cat, struct rl_disk_info *out,
			size_t max);
int rl_catalog_find_name(const struct rl_catalog *cat, const char *name,
			 struct rl_disk_info *out);	/* 0 or -ENOENT */
int rl_catalog_find_uuid(const struct rl_catalog *cat,
			 const struct rl_uuid *uuid,
			 struct rl_disk_info *out);	/* 0 or -ENOENT */

/* A position of a disk's stream that every applier passes over, put in
 * the catalog by `repdisk log skip` (an RL_SKIP record): the way past a
 * damaged or forged record that stops the disk, recorded in the log
 * itself so that every replica skips the same one. */
struct rl_skip {
	struct rl_uuid disk;
	uint64_t pos;
	char note[160];		/* who, when, why (printable) */
};
bool rl_catalog_skipped(const struct rl_catalog *cat,
			const struct rl_uuid *disk, uint64_t pos);
size_t rl_catalog_skips(const struct rl_catalog *cat,
			const struct rl_skip **out);

/* ------------------------------------------------------------------ catalog writer
 *
 * The one writer of a log's catalog (catalog_writer.c): changes go to the
 * log, then to the catalog.  Not thread-safe: the caller serializes.
 */

struct rl_catalog_writer;

struct rl_catalog_writer_opts {
	const char *host;	/* named in the catalog CLAIM */
	bool takeover;		/* claim a catalog another host owns */
	const char *what;	/* starts messages: "log URI" */
};

/* Opens DATADIR's catalog, catches it up with the log and claims the
 * catalog stream with the next epoch.  -EBUSY when another host owns it
 * (unless takeover) or claimed it at the same time. */
int rl_catalog_writer_open(struct rl_log *log, const char *datadir,
			   const struct rl_catalog_writer_opts *opts,
			   struct rl_catalog_writer **out, struct rl_err *err);
void rl_catalog_writer_close(struct rl_catalog_writer *cw);
/* The catalog it keeps (read it only where changes are serialized). */
struct rl_catalog *rl_catalog_writer_catalog(struct rl_catalog_writer *cw);
/* Appends a CREATE, RENAME, DELETE or SETATTR (r->epoch is set here),
 * waits until durable, applies it.  0; -EROFS once fenced (said once on
 * the log function); -EIO when it failed or the catalog is behind the log
 * (said once; a record that reached the log takes effect at a later
 * sync); -EINVAL for another record type. */
int rl_catalog_writer_change(struct rl_catalog_writer *cw,
			     struct rl_record *r, struct rl_err *err);
/* True while a failed change left the catalog behind the log: changes
 * fail at once.  Safe from any thread. */
bool rl_catalog_writer_behind(const struct rl_catalog_writer *cw);
/* True once a newer claim of the catalog was applied: changes fail with
 * -EROFS.  Where changes are serialized. */
bool rl_catalog_writer_fenced(const struct rl_catalog_writer *cw);
/* When behind: applies what the log holds up to its end.  0 (up to date,
 * or was), -EROFS (fenced), or -errno (still behind; try again). */
int rl_catalog_writer_sync(struct rl_catalog_writer *cw, struct rl_err *err);

/* ------------------------------------------------------------------ datadir */

/* DATADIR/.repdisk and its subdirectories; created if missing. */
int rl_datadir_prepare(const char *datadir, struct rl_err *err);
/* Takes DATADIR/.repdisk/lock exclusively (one process applies into a data
 * directory).  Returns the lock's fd, or -EBUSY with a message. */
int rl_datadir_lock(const char *datadir, struct rl_err *err);
/* The largest image DATADIR's file system can hold, in bytes (its
 * s_maxbytes: 16 TiB - 4 KiB on ext4 with 4 KiB blocks), found by growing
 * a scratch file there, or -errno with a message.  A disk may never be
 * made larger: its RESIZE would be durable in the log and then fail to
 * apply everywhere. */
int64_t rl_datadir_max_size(const char *datadir, struct rl_err *err);

/* ------------------------------------------------------------------ follower positions
 *
 * Where every follower is, kept in the log itself so that any host can see
 * it: `repdisk status` shows each follower's lag, and log retention may
 * drop only what the local checkpoint and every follower are past.  A
 * follower publishes a report under its name: for the catalog and each
 * disk, the next position to apply as of its checkpoints (never a position
 * whose data is not yet fdatasync'ed and checkpointed in its data
 * directory), and the time.  Readers list the newest report of every name.
 *
 *   file   LOGDIR/followers/NAME, a small text file replaced atomically
 *   kafka  topic repdisk.NS.followers, keyed by name (compacted on a real
 *          cluster: only the newest report of each name is kept)
 *
 * A report is text, one "KEY VALUE..." line each (positions.c);
 * readers ignore keys and trailing fields they do not know, so later
 * versions can report more (bytes, record times) to readers of today.
 * Names must be unique per log: two followers under one name overwrite
 * each other's reports.
 */

#define RL_FOLLOWER_NAME_MAX 64

struct rl_position {
	struct rl_uuid disk;	/* nil: the catalog */
	uint64_t next_pos;	/* every record below is applied and durable */
	int64_t caught_up_ms;	/* when the follower last held all the log
				   had of it (wall clock ms); 0: unknown */
};

struct rl_positions {
	char name[RL_FOLLOWER_NAME_MAX + 1];
	int64_t time_ms;	/* when published: wall clock, ms since 1970 */
	size_t n;
	struct rl_position *pos;
	bool sorted;		/* pos sorted by disk (as read from a log) */
};

/* Checks a follower name: 1..RL_FOLLOWER_NAME_MAX letters, digits, '.',
 * '_' and '-', starting with a letter or a digit.  0 or -EINVAL with a
 * message. */
int rl_follower_name_check(const char *name, struct rl_err *err);

/* This host's name made into a follower name (other characters become
 * '-', cut to RL_FOLLOWER_NAME_MAX; "follower" if nothing is left). */
void rl_follower_default_name(char out[RL_FOLLOWER_NAME_MAX + 1]);

/* Publishes p under p->name, replacing that follower's last report; any
 * log, a reader's too.  file: durable when it returns.  kafka: handed to a
 * producer of its own, which delivers it in the background and prints a
 * failure to deliver on stderr.  Errors: -EINVAL (a bad name, with a
 * message), -ENOMEM, and the backend's (-EIO, what mkdir/write return). */
int rl_positions_publish(struct rl_log *log, const struct rl_positions *p,
			 struct rl_err *err);

/* Forgets follower `name` (a follower that is gone for good must be
 * forgotten, or retention keeps what it would need).  Forgetting a name
 * that has no report is not an error. */
int rl_positions_forget(struct rl_log *log, const char *name,
			struct rl_err *err);

/* Lists the newest report of every follower, sorted by name, into a
 * malloc'ed array (free it with rl_positions_free()).  Returns the count,
 * or a negative errno: -EBADMSG with a message naming the report for one
 * that is damaged (so retention never guesses), -EIO, -ETIMEDOUT. */
int rl_positions_list(struct rl_log *log, struct rl_positions **out,
		      struct rl_err *err);
void rl_positions_free(struct rl_positions *v, size_t n);

/* What a writer may delete of a disk's stream: everything below the
 * smallest of `local` (its own checkpoint) and every follower's reported
 * position for the disk (0 for a follower that reports none). */
uint64_t rl_retention_bound(const struct rl_positions *v, size_t n,
			    const struct rl_uuid *disk, uint64_t local);

/* The position p reports for disk (NULL: the catalog), or NULL. */
const struct rl_position *rl_positions_find(const struct rl_positions *p,
					    const struct rl_uuid *disk);

/* ------------------------------------------------------------------ follower
 *
 * Catch up a data directory to a log, the same way on a primary at mount and
 * on a follower host: catalog first, then each disk from its checkpoint.
 */

struct rl_follower;

struct rl_follow_opts {
	uint64_t checkpoint_records;	/* checkpoint a disk after this many
					   applied records; 0 = default */
	const char *name;		/* publish positions under this name
					   (rl_follower_publish); NULL: never */
	int publish_ms;			/* at most one report per this many
					   ms; 0 = 1000 */
	int retry_ms;			/* try a disk stopped at a record (or
					   whose image failed) again this
					   often; 0 = 10000 */
};

/* The caller holds the data directory's lock. */
int rl_follower_open(struct rl_log *log, const char *datadir,
		     const struct rl_follow_opts *opts,
		     struct rl_follower **out, struct rl_err *err);
void rl_follower_close(struct rl_follower *f);

/* Applies what is durable in the log now (bounded work per disk per call)
 * and returns the number of records applied (0 when caught up), or a
 * negative errno with a message naming the disk and the bad record. */
int rl_follower_step(struct rl_follower *f, struct rl_err *err);
/* How many disks are stopped at a record they cannot read or apply, or
 * because their image failed locally (each said once; the other disks go
 * on, and a stopped one is tried again every retry_ms: a failed image is
 * then opened again and replays from its last good checkpoint). */
size_t rl_follower_stopped(const struct rl_follower *f);

/* Checkpoints every disk.  The positions checkpointed become those the
 * next rl_follower_publish() reports. */
int rl_follower_checkpoint(struct rl_follower *f, struct rl_err *err);

/* Publishes the follower's positions (see "follower positions") as of its
 * last checkpoints, if it has a name and either they changed since the
 * last report or the last report is 30 s old, and the last attempt is at
 * least publish_ms old (force: whatever its age).  Call it often: it does
 * nothing until a report is due.  Returns 1 when it published, 0 when
 * nothing was due, or a negative errno with a message: the report was not
 * published and will be tried again; the follower may go on applying. */
int rl_follower_publish(struct rl_follower *f, bool force, struct rl_err *err);

#ifdef __cplusplus
}
#endif

#endif /* REPLOG_H */
