/* Fuzz harness: the file log's stream files, as a crash, a bad disk or a
 * hostile writer of the log directory can leave them (FILELOG.md).
 *
 * The input describes one stream of a fresh log directory:
 *
 *   byte 0       flags (below)
 *   bytes 1-8    the head's durable end (u64 LE)
 *   bytes 9-10   where the body splits into two segments (u16 LE)
 *   byte 11      the second segment's base (its first position)
 *   bytes 12..   the body: records back to back (segment headers too,
 *                with F_RAWHDR)
 *
 *   F_CATALOG    the catalog stream (else disks/UUID of fuzz_disk)
 *   F_RAWHDR     each segment file is its bytes as given (else the
 *                harness writes a valid 32-byte header before them)
 *   F_FIXSUM     every whole record's checksum is made right first
 *   F_SPLIT      two segments, 0 and the base of byte 11 (not 0)
 *   F_APPEND     after recovery, append a CLAIM and read it back
 *   F_NOHEAD     no head file (a writer makes one saying 0)
 *   F_KEY        every log opened with the harness's key file
 *                (fuzz_key_file): sealed records open, others are bad
 *
 * Then: a reader reads the stream from 0 and from the durable end (a
 * reader trusts the head: it does no recovery); a writer opens the log
 * and the stream, which runs recovery (torn tails cut, damage below the
 * head refused); readers read again.
 *
 * Checked beyond "no crash":
 *   - every record a reader returns is at the next position, belongs to
 *     the stream's disk, and passes the record round trip
 *     (fuzz_check_record); a reader returns no more records than the
 *     bytes can hold, and stops (0) only at the durable end; an error
 *     comes with a message;
 *   - recovery that succeeds leaves a durable end at or past the head's;
 *     with one segment (the one recovery verifies), a reader then reads
 *     every record below it with no error;
 *   - after recovery an append lands at the durable end and reads back.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F_CATALOG	0x01
#define F_RAWHDR	0x02
#define F_FIXSUM	0x04
#define F_SPLIT		0x08
#define F_APPEND	0x10
#define F_NOHEAD	0x20
#define F_KEY		0x40
#define PREFIX		12
#define SEG_HDR_SIZE	32

static void write_segment(const char *sdir, uint64_t base,
			  const struct rl_uuid *disk, const uint8_t *p,
			  size_t n, bool raw)
{
	char path[PATH_MAX];
	uint8_t *buf = malloc(SEG_HDR_SIZE + n);

	if (!buf)
		fuzz_fail("out of memory");
	snprintf(path, sizeof(path), "%s/%020" PRIu64 ".seg", sdir, base);
	if (raw) {
		if (n)
			memcpy(buf, p, n);
	} else {
		memset(buf, 0, SEG_HDR_SIZE);
		memcpy(buf, "RDLSEG01", 8);
		for (int i = 0; i < 8; i++)
			buf[8 + i] = (uint8_t)(base >> (8 * i));
		if (disk)
			memcpy(buf + 16, disk->b, 16);
		if (n)
			memcpy(buf + SEG_HDR_SIZE, p, n);
		n += SEG_HDR_SIZE;
	}
	fuzz_write(path, buf, n);
	free(buf);
}

/* Reads the stream from `from` with a log of its own (as another process
 * would).  Returns the records read; *rc_out is the last rl_reader_next()
 * (0 at the durable end) or an open's error. */
static const char *key_file;	/* F_KEY: the logs' --key-file */

static uint64_t read_stream(const char *dir, const struct rl_uuid *disk,
			    uint64_t from, size_t bound, int *rc_out)
{
	struct rl_log_opts o = { .quiet = true, .key_file = key_file };
	struct rl_err err = { 0 };
	struct rl_log *log;
	struct rl_stream *s;
	struct rl_reader *r;
	uint64_t n = 0, end = 0;
	int rc;

	rc = rl_log_open(dir, 0, &o, &log, &err);
	if (rc < 0)
		fuzz_fail("reader: open log %s: %s", dir, err.msg);
	rc = rl_log_stream(log, disk, &s, &err);
	if (rc == 0)
		rc = rl_log_end(s, &end, &err);
	if (rc == 0)
		rc = rl_reader_open(s, from, &r, &err);
	if (rc < 0)
		goto out;
	for (;;) {
		struct rl_record rec;
		uint64_t pos;

		err.msg[0] = '\0';
		rc = rl_reader_next(r, &rec, &pos, 0, &err);
		if (rc <= 0)
			break;
		if (pos != from + n)
			fuzz_fail("reader: record at position %" PRIu64 ", "
				  "expected %" PRIu64, pos, from + n);
		if (disk && !rl_uuid_eq(&rec.disk, disk))
			fuzz_fail("reader: a record of another disk at "
				  "position %" PRIu64, pos);
		if (key_file && !rec.key_id)
			fuzz_fail("reader: a record without a key from a log "
				  "opened with keys, at position %" PRIu64, pos);
		fuzz_check_record(&rec, NULL, 0, "reader");
		if (++n > bound)
			fuzz_fail("reader: %" PRIu64 " records from %zu "
				  "bytes", n, bound * RL_RECORD_HDR_MIN);
	}
	if (rc == 0 && from + n != end)
		fuzz_fail("reader: stopped at position %" PRIu64 " before "
			  "the durable end %" PRIu64, from + n, end);
	rl_reader_close(r);
out:
	if (rc < 0 && !err.msg[0])
		fuzz_fail("reader: error %d without a message", rc);
	rl_log_close(log);
	*rc_out = rc;
	return n;
}

/* Appends a CLAIM through the writer and reads it back. */
static void append_one(const char *dir, struct rl_stream *ws,
		       const struct rl_uuid *disk, uint64_t end)
{
	struct rl_record c = { .type = RL_CLAIM, .epoch = 1, .data = "fuzz",
			       .data_len = 4 };
	uint8_t buf[RL_RECORD_HDR_SIZE + 4];
	struct rl_err err = { 0 };
	int64_t pos;
	int rc;

	if (disk)
		c.disk = *disk;
	if (rl_record_encode_key(&c, 0, key_file ?
				 rl_keyring_newest(fuzz_keys()) : NULL, buf,
				 sizeof(buf), &err) < 0)
		fuzz_fail("encode a CLAIM: %s", err.msg);
	pos = rl_log_append_sync(ws, buf, sizeof(buf), &err);
	if (pos < 0)
		fuzz_fail("append after recovery: %s", err.msg);
	if ((uint64_t)pos != end)
		fuzz_fail("append after recovery at position %" PRId64 ", the "
			  "durable end was %" PRIu64, pos, end);
	if (read_stream(dir, disk, end, 1, &rc) != 1 || rc != 0)
		fuzz_fail("the record appended after recovery does not read "
			  "back (%d)", rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[PATH_MAX], sdir[PATH_MAX + 64], path[PATH_MAX + 80];
	struct rl_log_opts o = { .quiet = true };
	struct rl_err err = { 0 };
	const struct rl_uuid *disk = &fuzz_disk;
	struct rl_log *wlog;
	struct rl_stream *ws;
	uint64_t head = 0, end;
	uint8_t flags, *body;
	size_t blen, split, bound;
	unsigned base2;
	bool two = false;
	int rc;

	if (size < PREFIX)
		return 0;
	flags = data[0];
	for (int i = 0; i < 8; i++)
		head |= (uint64_t)data[1 + i] << (8 * i);
	split = (size_t)(data[9] | data[10] << 8);
	base2 = data[11];
	blen = size - PREFIX;
	bound = blen / RL_RECORD_HDR_MIN + 1;
	if (flags & F_NOHEAD)
		head = 0;

	fuzz_clear(fuzz_dir());
	key_file = NULL;
	if (flags & F_KEY) {
		static char kpath[PATH_MAX];

		snprintf(kpath, sizeof(kpath), "%s/keys", fuzz_dir());
		fuzz_key_file(kpath);
		key_file = kpath;
	}
	o.key_file = key_file;
	snprintf(dir, sizeof(dir), "%s/log", fuzz_dir());
	fuzz_mkdir("%s", dir);
	fuzz_mkdir("%s/disks", dir);
	if (flags & F_CATALOG) {
		disk = NULL;
		snprintf(sdir, sizeof(sdir), "%s/catalog", dir);
	} else {
		char u[RL_UUID_STRLEN + 1];

		rl_uuid_format(disk, u);
		snprintf(sdir, sizeof(sdir), "%s/disks/%s", dir, u);
	}
	fuzz_mkdir("%s", sdir);

	body = malloc(blen + 1);
	if (!body)
		return 0;
	memcpy(body, data + PREFIX, blen);
	if (flags & F_FIXSUM)
		fuzz_fix_checksums(body + (flags & F_RAWHDR ? SEG_HDR_SIZE : 0),
				   blen > SEG_HDR_SIZE || !(flags & F_RAWHDR) ?
				   blen - (flags & F_RAWHDR ? SEG_HDR_SIZE : 0)
				   : 0);
	if ((flags & F_SPLIT) && split <= blen && base2 > 0) {
		two = true;
		write_segment(sdir, 0, disk, body, split, flags & F_RAWHDR);
		write_segment(sdir, base2, disk, body + split, blen - split,
			      flags & F_RAWHDR);
	} else {
		write_segment(sdir, 0, disk, body, blen, flags & F_RAWHDR);
	}
	free(body);
	if (!(flags & F_NOHEAD)) {
		uint8_t h[16];

		memcpy(h, "RDLHEAD1", 8);
		for (int i = 0; i < 8; i++)
			h[8 + i] = (uint8_t)(head >> (8 * i));
		snprintf(path, sizeof(path), "%s/head", sdir);
		fuzz_write(path, h, sizeof(h));
	}

	/* readers before recovery: they trust the head */
	read_stream(dir, disk, 0, bound, &rc);
	read_stream(dir, disk, head, bound, &rc);

	/* the writer: recovery */
	if (rl_log_open(dir, RL_LOG_WRITE, &o, &wlog, &err) < 0)
		fuzz_fail("writer: open log %s: %s", dir, err.msg);
	rc = rl_log_stream(wlog, disk, &ws, &err);
	if (rc < 0) {
		if (!err.msg[0])
			fuzz_fail("recovery: error %d without a message", rc);
		rl_log_close(wlog);
		return 0;
	}
	if (rl_log_end(ws, &end, &err) < 0)
		fuzz_fail("writer: end: %s", err.msg);
	if (end < head)
		fuzz_fail("recovery set the durable end to %" PRIu64 ", below "
			  "the head's %" PRIu64, end, head);
	if (!two) {
		uint64_t n = read_stream(dir, disk, 0, bound, &rc);

		/* recovery checks only the headers of records below the
		 * head (FILELOG.md, Recovery): a damaged payload there, or a
		 * record sealed with a key not in the file, stops the reader
		 * at it */
		bool damage_below_head = (rc == -EBADMSG || rc == -ENOKEY) &&
					 n < head;

		if ((rc != 0 || n != end) && !damage_below_head)
			fuzz_fail("after recovery to %" PRIu64 " records, a "
				  "reader read %" PRIu64 " (%d)", end, n, rc);
	} else {
		read_stream(dir, disk, 0, bound, &rc);
	}
	if (flags & F_APPEND)
		append_one(dir, ws, disk, end);
	rl_log_close(wlog);
	return 0;
}
