/* One writer per stream: the epoch rules every applier follows, and the
 * claim a writer makes to become the one.
 *
 * Notes on the design
 * -------------------
 * A disk's stream and the catalog stream are written by one writer at a
 * time, and the log, not a lock, says which: a writer appends a CLAIM with
 * a new epoch and stamps every record after it with that epoch.  Appliers
 * (images, the catalog, on the primary and on every follower alike) keep
 * the newest claimed epoch and judge each record by it (rl_epoch_judge):
 *
 *   - a CLAIM of a newer epoch makes that epoch current; any other CLAIM
 *     is stale (a writer that lost a race, or a replay);
 *   - a record of an older epoch is stale: its writer was fenced, and
 *     every replica ignores it alike;
 *   - a record of a newer epoch was written by no one who claimed the
 *     stream: refused (forged, or a bug);
 *   - in a disk stream, a record before any claim is refused the same way,
 *     and one whose sequence number was already applied in its epoch is a
 *     duplicate: ignored, or refused as a replay when it is sealed with a
 *     key (apply.c: no honest writer seals a seq twice);
 *   - one past the next sequence number follows a hole: applied as it
 *     comes without a key, void or refused when sealed (apply.c, "Gaps").
 *
 * A CLAIM carries, as its seq, the last sequence number its writer
 * applied in the epoch before; the new epoch's numbers go on from there.
 * Appliers that predate the rule did the same (a CLAIM's seq has always
 * set last_seq), so a stream stays readable by them.  Catalog
 *     records carry no sequence numbers, and those from before the first
 *     catalog claim (epoch 0) are applied as they come.
 *
 * The claim (rl_claim_run) is the same for a disk and for the catalog:
 * replay the stream to its end, so the target knows the newest claim;
 * refuse if that claim is another writer's (unless taking over, which
 * fences it); append a CLAIM with the next epoch; replay up to and
 * including it.  The claim is won only if our CLAIM is the one that set
 * the epoch: two writers that read the same epoch both claim the next one,
 * the first in the log wins, and the second finds its own CLAIM ignored
 * as stale, so both cannot go on each sure it owns the stream.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum rl_epoch_verdict rl_epoch_judge(const struct rl_epoch_rules *rules,
				     uint64_t epoch, uint64_t last_seq,
				     const struct rl_record *r)
{
	if (r->type == RL_CLAIM)
		return r->epoch > epoch ? RL_EPOCH_CLAIM : RL_EPOCH_STALE;
	if (rules->claim_first && epoch == 0)
		return RL_EPOCH_UNCLAIMED;
	if (r->epoch < epoch)
		return RL_EPOCH_STALE;
	if (r->epoch > epoch)
		return RL_EPOCH_FUTURE;
	if (rules->seq && r->seq <= last_seq)
		return RL_EPOCH_DUP;
	if (rules->seq && r->seq > last_seq + 1)
		return RL_EPOCH_GAP;
	return RL_EPOCH_APPLY;
}

int rl_claim_chain_check(const struct rl_claim_chain *c,
			 const struct rl_record *r, uint64_t pos,
			 struct rl_err *err)
{
	bool disk = !c->kind[0];

	if (!r->key_id)
		return 0;
	if (r->epoch != c->epoch + 1)
		return rl_err_set(err, EBADMSG, "%s: position %" PRIu64 ": a "
				  "sealed CLAIM of epoch %" PRIu64 ", but the "
				  "newest %sclaim%s is epoch %" PRIu64 ": the "
				  "claims of epochs %" PRIu64 " to %" PRIu64
				  " are missing from the log (deleted?)",
				  c->what, pos, r->epoch, c->kind,
				  disk ? " here" : "", c->epoch, c->epoch + 1,
				  r->epoch - 1);
	if (c->check_seq && r->seq > c->last_seq)
		return rl_err_set(err, EBADMSG, "%s: position %" PRIu64 ": a "
				  "sealed CLAIM says %sepoch %" PRIu64 " reached "
				  "seq %" PRIu64 ", but seq %" PRIu64 " is the "
				  "last here: %srecords%s are missing from the "
				  "log (deleted?)", c->what, pos, c->kind,
				  c->epoch, r->seq, c->last_seq, c->kind,
				  disk ? " of that epoch" : "");
	return 0;
}

/* The target, wrapped: notes what became of the record at our claim's
 * position. */
struct claim_watch {
	const struct rl_claim *c;
	uint64_t pos;
	int result;		/* of the record at pos; -1 until applied */
};

static uint64_t watch_next(void *arg)
{
	struct claim_watch *cw = arg;

	return cw->c->t.next_pos(cw->c->t.arg);
}

static int watch_apply(void *arg, const struct rl_record *r, uint64_t pos,
		       struct rl_err *err)
{
	struct claim_watch *cw = arg;
	int rc = cw->c->t.apply(cw->c->t.arg, r, pos, err);

	if (pos == cw->pos)
		cw->result = rc;
	return rc;
}

static bool watch_skip(void *arg, const char *why)
{
	struct claim_watch *cw = arg;

	return cw->c->t.skip_unreadable &&
	       cw->c->t.skip_unreadable(cw->c->t.arg, why);
}

/* Replays the target to the stream's end (its newest claim known). */
static int catch_up(const struct rl_claim *c, struct rl_err *err)
{
	uint64_t end;
	int rc = rl_log_end(c->stream, &end, err);

	if (rc < 0)
		return rl_err_prefix(err, "%s: ", c->what);
	rc = rl_replay_to(c->stream, &c->t, end, err);
	return rc < 0 ? rc : 0;
}

int rl_claim_run(const struct rl_claim *c, uint64_t *epoch, uint64_t *at,
		 struct rl_err *err)
{
	struct rl_record claim = { .type = RL_CLAIM };
	struct claim_watch watch = { .c = c, .result = -1 };
	struct rl_replay_target wt = { .what = c->t.what, .arg = &watch,
				       .next_pos = watch_next,
				       .apply = watch_apply,
				       .skip_unreadable = watch_skip };
	const char *host = c->host ? c->host : "", *owner;
	uint8_t *buf;
	int64_t pos;
	ssize_t len;
	int rc;

	rc = catch_up(c, err);
	if (rc < 0)
		return rc;
	owner = c->owner(c->t.arg);
	if (!c->takeover && owner[0] && strcmp(owner, host) != 0)
		return rl_err_set(err, EBUSY, "%s: in use by another writer: "
				  "%s belongs to %s (epoch %" PRIu64 "), which "
				  "may still be running; if it is down, take "
				  "over with --takeover (docs/FAILOVER.md)",
				  c->what, c->noun, owner, c->epoch(c->t.arg));
	if (c->before_claim)
		c->before_claim(c->before_arg);

	/* every record of an older epoch is stale from here; sequence
	 * numbers go on from the last one we applied, which readers check
	 * (apply.c: a sealed claim is the end of the epoch before it) */
	claim.disk = *rl_stream_disk(c->stream);
	claim.epoch = c->epoch(c->t.arg) + 1;
	claim.seq = c->last_seq ? c->last_seq(c->t.arg) : 0;
	claim.data = host;
	claim.data_len = strlen(host);
	buf = malloc(rl_record_encoded_max(&claim));
	if (!buf)
		return rl_err_set(err, ENOMEM, "out of memory");
	len = rl_record_encode_key(&claim, 0, rl_log_seal_key(c->stream->log),
				   buf, rl_record_encoded_max(&claim), err);
	pos = len < 0 ? len :
	      rl_log_append_sync(c->stream, buf, (size_t)len, err);
	free(buf);
	if (len < 0)
		return (int)len;
	if (pos < 0)
		return rl_err_prefix(err, "%s: claim: ", c->what);

	/* what others appended before it, then our claim, read back */
	watch.pos = (uint64_t)pos;
	rc = rl_replay_to(c->stream, &wt, (uint64_t)pos + 1, err);
	if (rc < 0)
		return rc;
	if (watch.result != RL_APPLIED || c->epoch(c->t.arg) != claim.epoch)
		return rl_err_set(err, EBUSY, "%s: %s claimed %s at the same "
				  "time, first, with epoch %" PRIu64 " (ours, "
				  "epoch %" PRIu64 " at log position %" PRId64
				  ", came later and is ignored): it is the "
				  "writer", c->what, c->owner(c->t.arg), c->noun,
				  c->epoch(c->t.arg), claim.epoch, pos);
	*epoch = claim.epoch;
	if (at)
		*at = (uint64_t)pos;
	return 0;
}
