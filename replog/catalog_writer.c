/* The catalog's writer: create, rename, delete and set the attributes of
 * disks, through the log.
 *
 * Notes on the design
 * -------------------
 * A catalog change is one record in the catalog stream: stamped with the
 * writer's epoch, appended and waited for (durable), then applied by the
 * same catalog applier followers run (catalog.c), which changes the image
 * file.  Catalog changes are rare, so waiting for each is fine.  The
 * writer is not thread-safe: its caller serializes changes (the mount
 * with a lock of their own, so that nothing else waits behind a change).
 *
 * Opening it catches the catalog up with the log and claims the catalog
 * stream (claim.c), so that one mount at a time changes it.  A newer claim
 * found later fences us: every change is then refused with -EROFS, said
 * once.
 *
 * The catalog is never changed on a stale view.  A change that fails
 * after it may have reached the log (its record durable but not applied,
 * say on ENOSPC; an append that timed out, which Kafka may still have
 * "possibly persisted") leaves the catalog behind the log.  Until it has
 * caught up (rl_catalog_writer_sync, which the mount calls once a second),
 * every change is refused with -EIO and appends nothing, so a retry cannot
 * pile records up or append a second CREATE of one name, which every
 * applier would refuse.  A change that was durable takes effect by itself
 * once its cause is gone.
 *
 * Each change is numbered (seq) on from the last one applied, so with
 * one change at a time there are no holes and no copies of a number, and
 * appliers hold sealed records to that (catalog.c).  A failed append
 * might still land after the next change took its number, so with a key
 * the catch-up ends with a new claim of the catalog: a late copy is then
 * of an older epoch, stale for everyone.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rl_catalog_writer {
	struct rl_catalog *cat;
	struct rl_stream *stream;
	uint64_t epoch;			/* our claim */
	char *host, *what;		/* for claiming again */
	bool takeover;
	_Atomic bool behind;		/* see the notes */
	bool fenced;			/* said so */
};

static uint64_t cat_epoch(void *cat)
{
	return rl_catalog_epoch(cat);
}

static const char *cat_owner(void *cat)
{
	return rl_catalog_owner(cat);
}

static uint64_t cat_last_seq(void *cat)
{
	return rl_catalog_last_seq(cat);
}

/* takeover only at open: claiming again must not claim over a mount
 * that took the catalog meanwhile */
static int claim(struct rl_catalog_writer *cw, bool takeover,
		 struct rl_err *err)
{
	struct rl_claim c = { .stream = cw->stream,
			      .t = rl_replay_catalog(cw->cat),
			      .epoch = cat_epoch, .last_seq = cat_last_seq,
			      .owner = cat_owner, .what = cw->what,
			      .noun = "its catalog", .host = cw->host,
			      .takeover = takeover };

	return rl_claim_run(&c, &cw->epoch, NULL, err);
}

/* Applies the catalog stream's records from the catalog's next position
 * up to `to` (exclusive): what other writers appended. */
static int catch_up(struct rl_catalog_writer *cw, uint64_t to,
		    struct rl_err *err)
{
	struct rl_replay_target t = rl_replay_catalog(cw->cat);
	int rc = rl_replay_to(cw->stream, &t, to, err);

	return rc < 0 ? rc : 0;
}

int rl_catalog_writer_open(struct rl_log *log, const char *datadir,
			   const struct rl_catalog_writer_opts *o,
			   struct rl_catalog_writer **out, struct rl_err *err)
{
	struct rl_catalog_writer *cw = calloc(1, sizeof(*cw));
	int rc;

	if (!cw)
		return rl_err_set(err, ENOMEM, "out of memory");
	cw->host = strdup(o->host ? o->host : "");
	cw->what = strdup(o->what ? o->what : "catalog");
	cw->takeover = o->takeover;
	rc = cw->host && cw->what ? rl_catalog_open(datadir, &cw->cat, err) :
	     rl_err_set(err, ENOMEM, "out of memory");
	if (rc == 0)
		rc = rl_log_stream(log, NULL, &cw->stream, err);
	if (rc == 0)
		rc = claim(cw, cw->takeover, err);
	if (rc < 0) {
		rl_catalog_writer_close(cw);
		return rc;
	}
	*out = cw;
	return 0;
}

void rl_catalog_writer_close(struct rl_catalog_writer *cw)
{
	if (!cw)
		return;
	rl_catalog_close(cw->cat);
	free(cw->host);
	free(cw->what);
	free(cw);
}

struct rl_catalog *rl_catalog_writer_catalog(struct rl_catalog_writer *cw)
{
	return cw->cat;
}

bool rl_catalog_writer_fenced(const struct rl_catalog_writer *cw)
{
	return rl_catalog_epoch(cw->cat) > cw->epoch;
}

bool rl_catalog_writer_behind(const struct rl_catalog_writer *cw)
{
	return atomic_load(&((struct rl_catalog_writer *)cw)->behind);
}

/* Another mount claimed the catalog: said once; -EROFS. */
static int fenced(struct rl_catalog_writer *cw, struct rl_err *err)
{
	if (!cw->fenced)
		rl_msg(RL_LOG_ERR, "catalog: fenced: the log's catalog was "
		       "claimed by %s (epoch %" PRIu64 "); this mount makes no "
		       "more catalog changes", rl_catalog_owner(cw->cat),
		       rl_catalog_epoch(cw->cat));
	cw->fenced = true;
	return rl_err_set(err, EROFS, "catalog: fenced by %s (epoch %" PRIu64
			  ")", rl_catalog_owner(cw->cat),
			  rl_catalog_epoch(cw->cat));
}

int rl_catalog_writer_change(struct rl_catalog_writer *cw,
			     struct rl_record *r, struct rl_err *err)
{
	uint8_t buf[RL_RECORD_HDR_SIZE + RL_NAME_MAX + 64];
	struct rl_err why;
	ssize_t len;
	int64_t pos;
	int rc;

	if (atomic_load(&cw->behind))
		return rl_err_set(err, EIO, "catalog: behind the log (a change "
				  "failed): no change until it has caught up");
	if (rl_catalog_epoch(cw->cat) > cw->epoch)
		return fenced(cw, err);
	if (r->type != RL_CREATE && r->type != RL_RENAME &&
	    r->type != RL_DELETE && r->type != RL_SETATTR)
		return rl_err_set(err, EINVAL, "catalog: a %s record is not a "
				  "catalog change", rl_type_name(r->type) ?
				  rl_type_name(r->type) : "unknown");
	r->epoch = cw->epoch;
	r->seq = rl_catalog_last_seq(cw->cat) + 1;
	len = rl_record_encode_key(r, 0, rl_log_seal_key(cw->stream->log), buf,
				   sizeof(buf), err);
	if (len < 0)
		return (int)len;
	pos = rl_log_append_sync(cw->stream, buf, (size_t)len, &why);
	if (pos < 0) {
		/* not in the log, or "possibly persisted": the sync finds
		 * out */
		rl_msg(RL_LOG_ERR, "catalog: %s; catalog changes fail with EIO "
		       "and append nothing until the catalog has caught up "
		       "with the log (tried every second)", why.msg);
		atomic_store(&cw->behind, true);
		if (err)
			*err = why;
		rl_err_prefix(err, "catalog: ");
		return -EIO;
	}
	rc = catch_up(cw, (uint64_t)pos, &why);
	if (rc == 0)
		rc = rl_catalog_apply(cw->cat, r, (uint64_t)pos, &why);
	if (rc == RL_IGNORED_STALE)
		return fenced(cw, err);
	if (rc < 0) {
		/* durable in the log but not applied: the sync applies it
		 * once it can */
		rl_msg(RL_LOG_ERR, "%s; the change is in the log and takes "
		       "effect here once it can be applied (tried again every "
		       "second)", why.msg);
		atomic_store(&cw->behind, true);
		if (err)
			*err = why;
		return -EIO;
	}
	return 0;
}

int rl_catalog_writer_sync(struct rl_catalog_writer *cw, struct rl_err *err)
{
	uint64_t end;
	int rc;

	if (!atomic_load(&cw->behind))
		return 0;
	rc = rl_log_end(cw->stream, &end, err);
	if (rc < 0)
		return rl_err_prefix(err, "catalog: ");
	rc = catch_up(cw, end, err);
	if (rc < 0)
		return rc;	/* said when it fell behind; tried again */
	if (rl_catalog_epoch(cw->cat) > cw->epoch) {
		atomic_store(&cw->behind, false);
		return fenced(cw, err);
	}
	if (rl_log_seal_key(cw->stream->log)) {
		/* see the notes: the failed change's number is not reused */
		rc = claim(cw, false, err);
		if (rc == -EBUSY) {
			atomic_store(&cw->behind, false);
			return fenced(cw, err);
		}
		if (rc < 0)
			return rc;
	}
	rl_msg(RL_LOG_NOTICE, "catalog: up to date with the log again%s",
	       rl_log_seal_key(cw->stream->log) ? " (claimed again)" : "");
	atomic_store(&cw->behind, false);
	return 0;
}
