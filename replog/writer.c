/* The writer of a disk: claim, number, append, apply, complete.
 *
 * Notes on the design
 * -------------------
 * rl_writer is the write pipeline of one disk, without FUSE: the mount
 * hands it records and gets a completion per record once the record is
 * durable in the log and applied to the image.
 *
 *   submit (any thread)      prepare: copy or compress the payload, hash it
 *                            (no lock: parallel across callers)
 *                            under w->lock: seal with epoch and the next
 *                            sequence number, append (positions and
 *                            sequence numbers rise together)
 *   log completion thread    in position order: queue for the applier
 *   applier                  in position order: apply to the image, then
 *                            call the submitter's completion (a job of
 *                            the process's applier threads, appliers.c:
 *                            no thread per disk)
 *
 * Many records are in flight at once; nothing waits for a round trip under
 * a lock.  Opening a writer first replays the log into the image from its
 * checkpoint (so the image holds everything the log does), then appends a
 * CLAIM with the next epoch, which makes records of any older writer stale
 * for every applier.
 *
 * The image follows the log, not the completions.  The applier applies
 * position after position; when a completion reports a position beyond
 * the image's next one, the records in between are read back from the log
 * and applied first ("filling the gap").  Gaps appear when:
 *
 *   - an append failed but its record was "possibly persisted" (Kafka: a
 *     request timed out after the broker had written it), so it sits in
 *     the log although its submitter got -EIO;
 *   - applying a durable record failed (ENOSPC in the data directory, ...);
 *   - another writer appended: its CLAIM fences us (below).
 *
 * Because of that, failures are not sticky: a write that fails gets -EIO,
 * and the next one that the log accepts brings the image up to date before
 * it is acknowledged.  A record that failed but landed must reach the image
 * even if no write follows (the guest may have stopped writing, or the
 * operator stopped it): otherwise the image and every follower's would
 * differ, each showing one side of the failed write.  So for a while after
 * a failed append (RECHECK_NS), the applier, once a second while nothing
 * is in flight, reads the log's end and fills the gap up to it (idle_catch_up).  That is what lets a disk take writes again, without
 * a restart, once a Kafka cluster has its quorum back (DESIGN.md, contract
 * item 6).  Every record, whatever its submitter was told, is applied by
 * the same rules on every replica, so they converge.
 *
 * Sealed with a key, an epoch has no holes (apply.c, "Gaps"): a record
 * sealed after one whose append failed is void for every applier.  So
 * when an append fails, the writer seals nothing more in that epoch
 * (submits get -EIO at once) and, once nothing is in flight, claims the
 * disk again from the applier thread, once a second until the log takes
 * the CLAIM (reclaim).  The claim reads the log to its end first, so
 * records that landed after all are applied, as above.  Also for the
 * readers' sake, no more than RL_SEQ_WINDOW records are ever in flight
 * (window_wait), and a seq the log refused at once is given back.
 *
 * Fencing is the one sticky state.  A newer CLAIM in the log makes our own
 * records stale for every applier; we find it either as the record that
 * fills a gap or because our record comes back ignored as stale.  From
 * then on every submit fails with -EROFS and names the new owner.
 *
 * Large writes are split into several WRITE records when the log limits
 * the size of a record (rl_stream_max_record(): Kafka's message size
 * limit); the submitter's completion runs once, when all parts are done.
 *
 * Stuck records.  Every record in flight is on a list in submission order,
 * with the time it was submitted.  A log either completes a record or
 * fails it within its write timeout; one that does neither is a bug or a
 * hung disk, and its client (a guest) hangs with it.  The applier thread
 * wakes once a second while records are in flight and reports the oldest
 * one once it is older than opts->stuck_ms, and again when it completes,
 * so that a hang in the field is visible in the mount's log.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Lock order: a lock is taken while holding only those listed before it
 * on its line, never the reverse.
 *
 *	ckpt_lock -> apply_lock		(a checkpoint's snapshot)
 *	lock -> idle_lock		(a record goes in flight as it is sealed)
 *	lock -> the log's own locks	(rl_log_append under lock)
 *	q_lock				(alone: the log's completion thread and
 *					 the applier hand records over; the
 *					 applier is woken after it is let go)
 *
 * apply_lock is held across reading the log back (a gap filled), never
 * with lock or idle_lock; no writer lock is held across a wait for an
 * append to complete. */
struct rl_writer {
	struct rl_stream *stream;
	struct rl_image *img;
	char name[RL_NAME_MAX + 1];	/* for messages */
	size_t zstd_min;
	const struct rl_key *seal_key;	/* the log's newest key, or NULL */

	char *host;			/* who claims: HOST:DATADIR */
	pthread_mutex_t lock;		/* orders seal + append */
	_Atomic uint64_t epoch;		/* set under lock (at open, and by the
					   applier when it claims again) */
	uint64_t seq;			/* last sequence number used, under lock */
	bool reclaim;			/* sealed, an append of this epoch
					   failed: nothing more is sealed in it
					   until the applier claims again
					   (under lock) */
	bool reclaim_said;		/* applier only: a failed claim said */
	bool append_refused;		/* the log refuses appends at once (a
					   full disk): said once, under lock */

	/* The image is changed by the applier thread and checkpointed
	 * by the owner: apply_lock keeps the two apart. */
	pthread_mutex_t apply_lock;
	struct rl_decoder dec;		/* under apply_lock */
	pthread_mutex_t ckpt_lock;	/* one checkpoint at a time */
	_Atomic int fenced;		/* -EROFS once a newer claim is seen */
	char fenced_by[RL_NAME_MAX + 64];	/* "epoch N (host H)" */
	size_t max_data;		/* largest WRITE payload; 0: no limit */

	/* Outage reporting, on the applier thread only: one line when
	 * appends start failing, one when they succeed again. */
	bool outage;
	uint64_t recheck_until;		/* idle_catch_up until then (ns) */
	uint64_t outage_failures;
	bool apply_failing;

	pthread_mutex_t idle_lock;
	pthread_cond_t idle;
	pthread_cond_t room;		/* in_flight fell below RL_SEQ_WINDOW */
	uint64_t in_flight;		/* under idle_lock */
	struct submission *fly_head, *fly_tail;	/* in flight, oldest first,
						   under idle_lock */
	uint64_t stuck_ns;		/* report records older than this */
	uint64_t stuck_seq;		/* applier only: the one reported, 0 none */
	uint64_t stuck_since;		/* applier only: its submit time */

	/* Durable records wait here for the applier, so the log's
	 * completion thread goes back to its next fdatasync at once and
	 * applying one batch overlaps making the next durable.  "On the
	 * applier thread" below means in this job: one pool thread at a
	 * time. */
	struct rl_applier job;
	bool joined;
	pthread_mutex_t q_lock;
	struct submission *q_head, *q_tail;	/* under q_lock */
};

struct submission {
	struct rl_writer *w;
	rl_done_cb cb;
	void *opaque;
	uint8_t *buf;			/* the encoded record */
	size_t len;
	uint8_t *plain;			/* the submitter's buffer, kept when the
					   payload in buf is compressed or
					   sealed: rec.data points into it */
	struct rl_record rec;		/* what to apply; data points into buf
					   or plain, unless the payload is
					   opaque */
	bool opaque_payload;		/* compressed or encrypted, and the
					   plaintext not kept: decode buf to
					   apply it */
	int err;			/* from the log's completion */
	uint64_t pos;
	struct submission *next;	/* in w->q_head, under w->q_lock */
	uint64_t t_submit;		/* CLOCK_MONOTONIC ns */
	struct submission *fly_prev, *fly_next;	/* under w->idle_lock */
};

/* On the applier thread: a newer claim was applied to our image. */
static void writer_fenced(struct rl_writer *w)
{
	int expected = 0;

	if (atomic_compare_exchange_strong(&w->fenced, &expected, -EROFS))
		rl_msg(RL_LOG_ERR, "%s: fenced: the disk was claimed by "
			"%s; this writer (epoch %" PRIu64 ") refuses writes",
			w->name, w->fenced_by, w->epoch);
}

/* How long after a failed append the applier looks for records that
 * landed after all: twice the longest write timeout that is sensible. */
#define RECHECK_NS	(120ull * 1000000000)

/* On the applier thread: an append failed. */
static void outage_begin(struct rl_writer *w)
{
	const char *why = rl_stream_fail_why(w->stream);

	w->recheck_until = rl_clock_ns(CLOCK_MONOTONIC) + RECHECK_NS;
	w->outage_failures++;
	if (w->outage)
		return;
	w->outage = true;
	rl_msg(RL_LOG_ERR, "%s: log append failed: %s; writes fail with "
		"EIO until the log accepts appends again (reads go on from "
		"the local image)", w->name, *why ? why : "I/O error");
}

/* On the applier thread: an append succeeded. */
static void outage_end(struct rl_writer *w)
{
	if (!w->outage)
		return;
	w->outage = false;
	rl_msg(RL_LOG_NOTICE, "%s: the log accepts appends again; %" PRIu64
		" writes failed with EIO meanwhile", w->name,
		w->outage_failures);
	w->outage_failures = 0;
}

/* A record goes in flight (before it is appended) ... */
static void flight_begin(struct rl_writer *w, struct submission *sub)
{
	sub->t_submit = rl_clock_ns(CLOCK_MONOTONIC);
	sub->fly_next = NULL;
	pthread_mutex_lock(&w->idle_lock);
	sub->fly_prev = w->fly_tail;
	if (w->fly_tail)
		w->fly_tail->fly_next = sub;
	else
		w->fly_head = sub;
	w->fly_tail = sub;
	w->in_flight++;
	pthread_mutex_unlock(&w->idle_lock);
}

/* ... and leaves it once completed, or refused by the log. */
static void flight_end(struct rl_writer *w, struct submission *sub)
{
	pthread_mutex_lock(&w->idle_lock);
	if (sub->fly_prev)
		sub->fly_prev->fly_next = sub->fly_next;
	else
		w->fly_head = sub->fly_next;
	if (sub->fly_next)
		sub->fly_next->fly_prev = sub->fly_prev;
	else
		w->fly_tail = sub->fly_prev;
	if (--w->in_flight == 0)
		pthread_cond_broadcast(&w->idle);
	if (w->in_flight == RL_SEQ_WINDOW - 1)
		pthread_cond_broadcast(&w->room);
	pthread_mutex_unlock(&w->idle_lock);
}

/* Under w->lock: waits (without it) until fewer than RL_SEQ_WINDOW
 * records are in flight, the promise every sealed record makes to its
 * readers (apply.c, "Gaps").  Records complete in seq order, so then
 * every seq up to the next one less RL_SEQ_WINDOW has completed. */
static void window_wait(struct rl_writer *w)
{
	pthread_mutex_lock(&w->idle_lock);
	while (w->in_flight >= RL_SEQ_WINDOW) {
		pthread_mutex_unlock(&w->lock);
		pthread_cond_wait(&w->room, &w->idle_lock);
		pthread_mutex_unlock(&w->idle_lock);
		pthread_mutex_lock(&w->lock);
		pthread_mutex_lock(&w->idle_lock);
	}
	pthread_mutex_unlock(&w->idle_lock);
}

/* On the applier thread, about once a second while records are in
 * flight: reports the oldest record once it has waited longer than
 * stuck_ns, and when the one reported completes.  The record's own data
 * may be freed by its completion at any time: only what is copied under
 * idle_lock is used. */
static void stuck_check(struct rl_writer *w)
{
	uint64_t now = rl_clock_ns(CLOCK_MONOTONIC), seq = 0, t = 0, off = 0, len = 0, n;
	int type = 0;

	pthread_mutex_lock(&w->idle_lock);
	n = w->in_flight;
	if (w->fly_head && now - w->fly_head->t_submit > w->stuck_ns) {
		seq = w->fly_head->rec.seq;
		t = w->fly_head->t_submit;
		type = w->fly_head->rec.type;
		off = w->fly_head->rec.offset;
		len = w->fly_head->rec.length;
	}
	pthread_mutex_unlock(&w->idle_lock);

	if (w->stuck_seq && seq != w->stuck_seq) {
		rl_msg(RL_LOG_NOTICE, "%s: the record stuck in the log "
			"(seq %" PRIu64 ") completed after %.0f s", w->name,
			w->stuck_seq, (double)(now - w->stuck_since) / 1e9);
		w->stuck_seq = 0;
	}
	if (seq && seq != w->stuck_seq) {
		/* no log query here: on Kafka it is a round trip, and the
		 * log may be what hangs */
		rl_msg(RL_LOG_ERR, "%s: a %s record (offset %" PRIu64
			", length %" PRIu64 ", epoch %" PRIu64 ", seq %" PRIu64
			") has waited %.0f s for the log, which has neither "
			"made it durable nor failed it; %" PRIu64 " records "
			"of this disk are in flight and the image holds the "
			"log up to position %" PRIu64 "; their clients wait "
			"until the log answers", w->name,
			rl_type_name((enum rl_type)type), off, len, w->epoch,
			seq, (double)(now - t) / 1e9, n,
			rl_image_next_pos(w->img));
		w->stuck_seq = seq;
		w->stuck_since = t;
	}
}

static void apply_one(struct rl_writer *w, struct submission *sub);

/* Whether the completion thread applies sub itself: the one record in
 * flight, small, durable and next for the image, and no pool thread on
 * the job.  That is a synchronous writer's record (a guest's flush, a qd1
 * workload), which would otherwise wait for the hand-over to a pool
 * thread as well.  Anything else (a pipeline of records, a large one, a
 * gap to fill from the log, a failure) goes to the pool: the completion
 * thread's next fdatasync must not wait behind it. */
#define INLINE_MAX	(64u << 10)

static bool apply_inline(struct rl_writer *w, struct submission *sub)
{
	bool alone;

	if (sub->err < 0 || sub->len > INLINE_MAX)
		return false;
	pthread_mutex_lock(&w->idle_lock);
	alone = w->in_flight == 1;
	pthread_mutex_unlock(&w->idle_lock);
	if (!alone || !rl_applier_try_claim(&w->job))
		return false;
	/* the job is ours: nothing else applies, so the image's next
	 * position holds still (and no record is queued: the queue is filled
	 * only here, and would have woken the job) */
	pthread_mutex_lock(&w->apply_lock);
	bool next = sub->pos == rl_image_next_pos(w->img);
	pthread_mutex_unlock(&w->apply_lock);
	if (next)
		apply_one(w, sub);
	rl_applier_release(&w->job, false);
	return next;
}

/* Runs on the log's completion thread, in position order: hands the
 * record to the applier, in the same order (or applies it, above). */
static void writer_durable(void *opaque, int err, uint64_t pos)
{
	struct submission *sub = opaque;
	struct rl_writer *w = sub->w;

	sub->err = err;
	sub->pos = pos;
	sub->next = NULL;
	if (apply_inline(w, sub))
		return;
	pthread_mutex_lock(&w->q_lock);
	if (w->q_tail)
		w->q_tail->next = sub;
	else
		w->q_head = sub;
	w->q_tail = sub;
	pthread_mutex_unlock(&w->q_lock);
	rl_applier_wake(&w->job);
}

/* The gap's target: the image, noting a newer writer's claim on the way
 * (for the message that says who fenced us). */
static uint64_t gap_next(void *arg)
{
	struct rl_writer *w = arg;

	return rl_image_next_pos(w->img);
}

static int gap_apply(void *arg, const struct rl_record *rec, uint64_t at,
		     struct rl_err *e)
{
	struct rl_writer *w = arg;
	int rc = rl_image_apply(w->img, rec, at, e);

	if (rc >= 0 && rec->type == RL_CLAIM && rec->epoch > w->epoch)
		snprintf(w->fenced_by, sizeof(w->fenced_by),
			 "epoch %" PRIu64 " (host %.*s) at log position %"
			 PRIu64, rec->epoch,
			 (int)(rec->data_len < RL_NAME_MAX ? rec->data_len :
			       RL_NAME_MAX), (const char *)rec->data, at);
	return rc;
}

/* Applies the log's records from the image's next position up to pos
 * (exclusive), read back from the log: see "The image follows the log"
 * above.  They are durable (a later record was acknowledged), so they
 * are there to read.  Under apply_lock, on the applier thread. */
static int fill_gap(struct rl_writer *w, uint64_t pos, struct rl_err *e)
{
	struct rl_replay_target t = { .what = "log", .arg = w,
				      .next_pos = gap_next,
				      .apply = gap_apply };
	int rc = rl_replay_to(w->stream, &t, pos, e);

	return rc < 0 ? rc : 0;
}

/* Applies one durable record and completes it; on the applier thread. */
static void apply_one(struct rl_writer *w, struct submission *sub)
{
	const struct rl_record *r = &sub->rec;
	struct rl_record decoded;
	struct rl_err e = { 0 };
	uint64_t pos = sub->pos;
	int rc = sub->err;

	if (rc < 0) {
		outage_begin(w);
		if (w->seal_key) {
			/* the records after it that land are void (apply.c,
			 * "Gaps"): this epoch is over */
			pthread_mutex_lock(&w->lock);
			w->reclaim = true;
			pthread_mutex_unlock(&w->lock);
		}
		rc = -EIO;
	} else {
		outage_end(w);
		pthread_mutex_lock(&w->apply_lock);
		rc = atomic_load(&w->fenced);
		if (rc == 0 && pos > rl_image_next_pos(w->img))
			rc = fill_gap(w, pos, &e);
		if (rc == 0 && sub->opaque_payload) {
			rc = rl_record_decode(&w->dec, sub->buf, sub->len,
					      &decoded, &e);
			r = &decoded;
		}
		if (rc == 0)
			rc = rl_image_apply(w->img, r, pos, &e);
		if (rc == RL_IGNORED_STALE && !w->fenced_by[0])
			snprintf(w->fenced_by, sizeof(w->fenced_by),
				 "epoch %" PRIu64, rl_image_epoch(w->img));
		pthread_mutex_unlock(&w->apply_lock);
		if (rc == RL_IGNORED_GAP) {
			/* sealed after one that failed: void everywhere, said
			 * by outage_begin already */
			rc = -EIO;
		} else if (rc == RL_IGNORED_STALE || rc == -EROFS) {
			/* our own record ignored as stale: a newer writer
			 * claimed the disk */
			writer_fenced(w);
			rc = -EROFS;
		} else if (rc != 0) {
			/* Not applied: the image stays behind the log, and
			 * the next record acknowledged fills the gap. */
			if (!w->apply_failing)
				rl_msg(RL_LOG_ERR, "%s: cannot apply log "
					"position %" PRIu64 ": %s; writes fail "
					"with EIO until it can", w->name,
					pos, rc > 0 ? "applied twice" : e.msg);
			w->apply_failing = true;
			rc = -EIO;
		} else if (w->apply_failing) {
			rl_msg(RL_LOG_NOTICE, "%s: the image is up to date "
				"with the log again", w->name);
			w->apply_failing = false;
		}
	}
	/* the completion first: rl_writer_drain() returns once nothing is
	 * in flight, and callers rely on every completion having run */
	sub->cb(sub->opaque, rc);
	flight_end(w, sub);
	free(sub->plain);
	free(sub->buf);
	free(sub);
}

/* On the applier thread, while nothing is in flight, for a while after a
 * failed append: records in the log beyond the image (appends that failed
 * but landed) are applied.  The log's end is read without any lock, so
 * that a stalled log blocks no writer; it counts only if no record was
 * appended meanwhile (w->seq unchanged): a record of ours beyond it then
 * lies at or after the end, and fill_gap stops before it. */
static void idle_catch_up(struct rl_writer *w)
{
	struct rl_err e = { 0 };
	uint64_t seq, end, busy;

	if (!w->recheck_until || rl_clock_ns(CLOCK_MONOTONIC) > w->recheck_until ||
	    atomic_load(&w->fenced))
		return;
	pthread_mutex_lock(&w->lock);
	seq = w->seq;
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_lock(&w->idle_lock);
	busy = w->in_flight;
	pthread_mutex_unlock(&w->idle_lock);
	if (busy || rl_log_end(w->stream, &end, NULL) < 0)
		return;
	pthread_mutex_lock(&w->lock);
	bool quiet = w->seq == seq;

	pthread_mutex_unlock(&w->lock);
	pthread_mutex_lock(&w->idle_lock);
	quiet = quiet && w->in_flight == 0;
	pthread_mutex_unlock(&w->idle_lock);
	if (!quiet)
		return;
	pthread_mutex_lock(&w->apply_lock);
	if (end > rl_image_next_pos(w->img) && fill_gap(w, end, &e) == 0)
		rl_msg(RL_LOG_NOTICE, "%s: applied the log up to position "
			"%" PRIu64 ": records of writes that failed landed in "
			"the log after all", w->name, end);
	pthread_mutex_unlock(&w->apply_lock);
}

static uint64_t claim_epoch(void *img)
{
	return rl_image_epoch(img);
}

static uint64_t claim_last_seq(void *img)
{
	return rl_image_last_seq(img);
}

static const char *claim_owner(void *img)
{
	return rl_image_owner(img);
}

static struct rl_claim writer_claim(struct rl_writer *w)
{
	return (struct rl_claim){ .stream = w->stream,
				  .t = rl_replay_image(w->img),
				  .epoch = claim_epoch,
				  .last_seq = claim_last_seq,
				  .owner = claim_owner, .what = w->name,
				  .noun = "the disk", .host = w->host };
}

/* On the applier thread, once a second while nothing is in flight, after
 * an append of a sealed epoch failed: claim the disk again, which reads
 * the log to its end (the records that landed after all are applied, the
 * void ones passed) and starts a new epoch from the last seq applied.
 * Writes fail with EIO until then. */
static void reclaim(struct rl_writer *w)
{
	struct rl_claim c = writer_claim(w);
	struct rl_err e = { 0 };
	uint64_t epoch, busy;
	int rc;

	pthread_mutex_lock(&w->idle_lock);
	busy = w->in_flight;
	pthread_mutex_unlock(&w->idle_lock);
	if (busy || atomic_load(&w->fenced))
		return;
	pthread_mutex_lock(&w->apply_lock);
	rc = rl_claim_run(&c, &epoch, NULL, &e);
	pthread_mutex_unlock(&w->apply_lock);
	if (rc == 0) {
		pthread_mutex_lock(&w->lock);
		atomic_store(&w->epoch, epoch);
		w->seq = rl_image_last_seq(w->img);
		w->reclaim = false;
		pthread_mutex_unlock(&w->lock);
		w->reclaim_said = false;
		rl_msg(RL_LOG_NOTICE, "%s: claimed the disk again after "
			"failed appends (epoch %" PRIu64 ", from seq %" PRIu64
			"): writes go on", w->name, epoch, w->seq);
	} else if (rc == -EBUSY && strcmp(rl_image_owner(w->img), w->host)) {
		snprintf(w->fenced_by, sizeof(w->fenced_by), "%.*s",
			 (int)sizeof(w->fenced_by) - 1, e.msg);
		writer_fenced(w);
	} else if (!w->reclaim_said) {
		/* (-EBUSY with ourselves the owner: an earlier claim of ours
		 * that failed landed after all, ahead of this one; the next
		 * try claims past it) */
		rl_msg(RL_LOG_ERR, "%s: cannot claim the disk again after "
			"failed appends: %s; writes fail with EIO until it can "
			"(tried once a second)", w->name, e.msg);
		w->reclaim_said = true;
	}
}

/* On the applier thread, while idle: what a failed append left to do. */
static void after_failure(struct rl_writer *w)
{
	bool again;

	pthread_mutex_lock(&w->lock);
	again = w->reclaim;
	pthread_mutex_unlock(&w->lock);
	if (again)
		reclaim(w);
	else
		idle_catch_up(w);
}

/* The applier's job (appliers.c): the durable records queued so far,
 * then, once a second, what the writer does while idle. */
static void writer_run(struct rl_applier *job, bool tick)
{
	struct rl_writer *w = (struct rl_writer *)((char *)job -
						   offsetof(struct rl_writer, job));
	struct submission *list;

	pthread_mutex_lock(&w->q_lock);
	list = w->q_head;
	w->q_head = w->q_tail = NULL;
	pthread_mutex_unlock(&w->q_lock);
	if (list) {
		while (list) {
			struct submission *next = list->next;

			apply_one(w, list);
			list = next;
		}
		if (w->stuck_seq)
			stuck_check(w);
	}
	if (tick) {
		stuck_check(w);
		after_failure(w);
	}
}

/* Seals and appends a prepared record; takes ownership of sub. */
static int writer_append(struct rl_writer *w, struct submission *sub,
			 struct rl_sealer *sealer)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	window_wait(w);
	if (w->reclaim) {
		pthread_mutex_unlock(&w->lock);
		free(sub->plain);
		free(sub->buf);
		free(sub);
		return -EIO;
	}
	sub->rec.epoch = atomic_load(&w->epoch);
	sub->rec.seq = ++w->seq;
	rl_record_seal(sub->buf, sealer, sub->rec.epoch, sub->rec.seq);
	/* on the list once its seq is set (stuck_check reads it under
	 * idle_lock), before the log can complete it */
	flight_begin(w, sub);
	rc = rl_log_append(w->stream, sub->buf, sub->len, writer_durable, sub);
	if (rc < 0 && !w->append_refused)
		rl_msg(RL_LOG_ERR, "%s: log append failed: %s; writes "
			"fail with EIO until the log accepts appends again",
			w->name, strerror(-rc));
	else if (rc == 0 && w->append_refused)
		rl_msg(RL_LOG_NOTICE, "%s: the log accepts appends again",
			w->name);
	w->append_refused = rc < 0;
	if (rc < 0)
		w->seq--;	/* never the log's: the next record takes it */
	pthread_mutex_unlock(&w->lock);
	if (rc < 0) {
		flight_end(w, sub);
		free(sub->plain);
		free(sub->buf);
		free(sub);
	}
	return rc;
}

/* Prepares one record and hands it to writer_append; owns buf.
 *
 * A WRITE whose data the submitter handed over in place (at buf +
 * RL_RECORD_HDR_SIZE, the zero-copy path) and that is to be compressed
 * or sealed is encoded into a second buffer, and buf is kept until the
 * record is applied: the applier then applies the plaintext it already
 * holds instead of decompressing or decrypting what it just encoded. */
static int submit_one(struct rl_writer *w, const struct rl_record *r,
		      void *buf, size_t cap, rl_done_cb cb, void *opaque)
{
	struct submission *sub;
	struct rl_sealer sealer = { .key = w->seal_key };
	size_t want = rl_record_encoded_max(r);
	bool compress = w->zstd_min && r->type == RL_WRITE &&
			r->data_len >= w->zstd_min;
	bool in_place = r->type == RL_WRITE && r->data_len &&
			r->data == (uint8_t *)buf + RL_RECORD_HDR_SIZE;
	ssize_t len;

	sub = malloc(sizeof(*sub));
	if (!sub) {
		free(buf);
		return -ENOMEM;
	}
	sub->plain = NULL;
	if (in_place && (compress || w->seal_key)) {
		sub->plain = buf;
		sub->buf = malloc(want);
		cap = want;
	} else if (compress) {
		/* compression needs a second buffer: it cannot run in place */
		sub->buf = malloc(want);
		cap = want;
	} else {
		sub->buf = buf;
	}
	if (sub->buf == buf || sub->plain == buf)
		buf = NULL;
	len = sub->buf ? rl_record_prepare(r, w->zstd_min, sub->buf, cap,
					   &sealer, NULL) : -ENOMEM;
	free(buf);
	if (len < 0) {
		free(sub->plain);
		free(sub->buf);
		free(sub);
		return (int)len;
	}
	sub->w = w;
	sub->cb = cb;
	sub->opaque = opaque;
	sub->len = (size_t)len;
	sub->rec = *r;
	sub->opaque_payload = !sub->plain &&
			      (sealer.codec != RL_CODEC_NONE || sealer.key);
	if (r->data_len && !sub->plain)
		sub->rec.data = sub->buf + RL_RECORD_HDR_SIZE;
	/* applied as every reader decodes it: sealed (apply.c judges a
	 * sealed record by its own rules) */
	sub->rec.key_id = sealer.key ? sealer.key->id : 0;
	return writer_append(w, sub, &sealer);
}

/* The parts of a split WRITE share one completion. */
struct split {
	rl_done_cb cb;
	void *opaque;
	atomic_size_t left;		/* parts not completed yet */
	_Atomic int err;		/* the first part's error */
};

static void split_put(struct split *sp, size_t parts, int err)
{
	int none = 0;

	if (err)
		atomic_compare_exchange_strong(&sp->err, &none, err);
	if (atomic_fetch_sub(&sp->left, parts) == parts) {
		sp->cb(sp->opaque, atomic_load(&sp->err));
		free(sp);
	}
}

static void split_done(void *opaque, int err)
{
	split_put(opaque, 1, err);
}

/* Submits a WRITE larger than the log's record limit as several records
 * of w->max_data bytes at most.  Every part but the first is copied out
 * before anything is submitted: r->data may point into buf, which the
 * first part owns and frees when it completes. */
static int submit_split(struct rl_writer *w, const struct rl_record *r,
			void *buf, size_t cap, rl_done_cb cb, void *opaque)
{
	size_t n = (r->data_len + w->max_data - 1) / w->max_data;
	uint8_t **parts = calloc(n, sizeof(*parts));
	struct split *sp = malloc(sizeof(*sp));
	bool ok = parts && sp;

	for (size_t i = 1; ok && i < n; i++) {
		size_t off = i * w->max_data;
		size_t len = r->data_len - off < w->max_data ?
			     r->data_len - off : w->max_data;

		parts[i] = malloc(RL_RECORD_HDR_SIZE + len);
		ok = parts[i] != NULL;
		if (ok)
			memcpy(parts[i] + RL_RECORD_HDR_SIZE,
			       (const uint8_t *)r->data + off, len);
	}
	if (!ok) {
		for (size_t i = 1; parts && i < n; i++)
			free(parts[i]);
		free(parts);
		free(sp);
		free(buf);
		return -ENOMEM;
	}
	sp->cb = cb;
	sp->opaque = opaque;
	atomic_init(&sp->left, n);
	atomic_init(&sp->err, 0);
	parts[0] = buf;
	for (size_t i = 0; i < n; i++) {
		struct rl_record part = *r;
		size_t off = i * w->max_data;
		int rc;

		part.offset = r->offset + off;
		part.length = part.data_len = r->data_len - off < w->max_data ?
					      r->data_len - off : w->max_data;
		part.data = i == 0 ? (const uint8_t *)r->data + 0 :
				     parts[i] + RL_RECORD_HDR_SIZE;
		rc = submit_one(w, &part, parts[i],
				i == 0 ? cap : RL_RECORD_HDR_SIZE + part.data_len,
				split_done, sp);
		if (rc < 0) {
			for (size_t j = i + 1; j < n; j++)
				free(parts[j]);
			free(parts);
			if (i == 0) {
				free(sp);
				return rc;	/* nothing submitted */
			}
			split_put(sp, n - i, rc);
			return 0;
		}
	}
	free(parts);
	return 0;
}

int rl_writer_submit_buf(struct rl_writer *w, const struct rl_record *r,
			 void *buf, size_t cap, rl_done_cb cb, void *opaque)
{
	int rc;

	/* Only the disk's own changes go through a writer: a CLAIM sealed
	 * with our epoch, or a catalog record, would be appended durably and
	 * then refused (or ignored) by every applier, poisoning the stream. */
	if (r->type != RL_WRITE && r->type != RL_ZERO &&
	    r->type != RL_DISCARD && r->type != RL_RESIZE &&
	    r->type != RL_MARK) {
		free(buf);
		return -EINVAL;
	}
	rc = atomic_load(&w->fenced);
	if (rc == 0)
		rc = rl_image_failed(w->img);	/* its durability is doubtful */
	if (rc) {
		free(buf);
		return rc;
	}
	if (r->type == RL_WRITE && w->max_data && r->data_len > w->max_data)
		return submit_split(w, r, buf, cap, cb, opaque);
	return submit_one(w, r, buf, cap, cb, opaque);
}

int rl_writer_submit(struct rl_writer *w, const struct rl_record *r,
		     rl_done_cb cb, void *opaque)
{
	size_t cap = rl_record_encoded_max(r);
	void *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	return rl_writer_submit_buf(w, r, buf, cap, cb, opaque);
}

static void sync_cb(void *opaque, int err)
{
	rl_waiter_done(opaque, err, 0);
}

int rl_writer_submit_sync(struct rl_writer *w, const struct rl_record *r)
{
	struct rl_waiter s = RL_WAITER_INIT;
	int rc = rl_writer_submit(w, r, sync_cb, &s);

	return rc < 0 ? rc : rl_waiter_wait(&s);
}

void rl_writer_drain(struct rl_writer *w)
{
	pthread_mutex_lock(&w->idle_lock);
	while (w->in_flight > 0)
		pthread_cond_wait(&w->idle, &w->idle_lock);
	pthread_mutex_unlock(&w->idle_lock);
}

/* A checkpoint or a flush of what is applied: the snapshot under
 * apply_lock, the fdatasync without it, so that applies go on while the
 * image is written back. */
static int writer_sync(struct rl_writer *w,
		       int (*sync)(struct rl_image *,
				   const struct rl_checkpoint *,
				   struct rl_err *),
		       struct rl_err *err)
{
	struct rl_checkpoint c;
	int rc;

	pthread_mutex_lock(&w->ckpt_lock);
	pthread_mutex_lock(&w->apply_lock);
	rl_image_snapshot(w->img, &c);
	pthread_mutex_unlock(&w->apply_lock);
	rc = sync(w->img, &c, err);
	pthread_mutex_unlock(&w->ckpt_lock);
	return rc;
}

int rl_writer_checkpoint(struct rl_writer *w, struct rl_err *err)
{
	return writer_sync(w, rl_image_commit, err);
}

int rl_writer_flush(struct rl_writer *w, struct rl_err *err)
{
	return writer_sync(w, rl_image_flush, err);
}

uint64_t rl_writer_epoch(const struct rl_writer *w)
{
	return atomic_load(&w->epoch);
}

int rl_writer_failed(struct rl_writer *w)
{
	return atomic_load(&w->fenced);
}

static void writer_free(struct rl_writer *w)
{
	if (w->joined)
		rl_applier_leave(&w->job);
	pthread_mutex_destroy(&w->q_lock);
	rl_decoder_free(&w->dec);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->apply_lock);
	pthread_mutex_destroy(&w->ckpt_lock);
	pthread_mutex_destroy(&w->idle_lock);
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->room);
	free(w->host);
	free(w);
}

int rl_writer_open(struct rl_stream *s, struct rl_image *img,
		   const char *name, const struct rl_writer_opts *opts,
		   struct rl_writer **out, struct rl_err *err)
{
	struct rl_writer *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return rl_err_set(err, ENOMEM, "out of memory");
	w->stream = s;
	w->img = img;
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->zstd_min = opts ? opts->zstd_min : 0;
	if (rl_stream_max_record(s)) {
		/* the largest power of two that fits twice: whole pages per
		 * part, and a producer's batch (at most the record limit, on
		 * Kafka) holds three parts, not one: a 1 MiB write is then 4
		 * parts in 2 requests instead of 2 parts in 2 requests, and
		 * requests in flight are what bounds a Kafka writer
		 * (BENCHMARKS.md, "Kafka ... again") */
		size_t avail = (rl_stream_max_record(s) - RL_RECORD_HDR_SIZE) / 2;

		w->max_data = 4096;
		while (w->max_data * 2 <= avail)
			w->max_data *= 2;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->apply_lock, NULL);
	pthread_mutex_init(&w->ckpt_lock, NULL);
	pthread_mutex_init(&w->idle_lock, NULL);
	pthread_cond_init(&w->idle, NULL);
	pthread_cond_init(&w->room, NULL);
	pthread_mutex_init(&w->q_lock, NULL);
	w->job.run = writer_run;
	w->stuck_ns = (uint64_t)(opts && opts->stuck_ms ? opts->stuck_ms :
				 RL_WRITER_STUCK_MS) * 1000000u;
	rl_decoder_init(&w->dec);
	w->dec.keys = rl_log_keys(s->log);
	w->seal_key = rl_log_seal_key(s->log);

	/* One writer per disk: a disk another host claimed last may still
	 * be written there.  Only an explicit takeover claims it (and
	 * fences that writer). */
	w->host = strdup(opts && opts->host ? opts->host : "");
	if (!w->host) {
		writer_free(w);
		return rl_err_set(err, ENOMEM, "out of memory");
	}
	struct rl_claim c = writer_claim(w);
	uint64_t epoch = 0;

	c.takeover = opts && opts->takeover;
	c.before_claim = opts ? opts->test_before_claim : NULL;
	c.before_arg = opts ? opts->test_arg : NULL;
	rc = rl_claim_run(&c, &epoch, NULL, err);
	atomic_store(&w->epoch, epoch);
	if (rc == 0)
		rc = rl_image_checkpoint(img, err);
	if (rc < 0) {
		writer_free(w);
		return rc;
	}
	w->seq = rl_image_last_seq(img);	/* the claim's: numbers go on */
	rc = rl_applier_join(&w->job, err);
	if (rc < 0) {
		writer_free(w);
		return rc;
	}
	w->joined = true;
	*out = w;
	return 0;
}

void rl_writer_close(struct rl_writer *w)
{
	if (!w)
		return;
	rl_writer_drain(w);
	writer_free(w);
}
