/* The replay loop: read a stream from a target's next position and apply
 * each record to the target.
 *
 * Notes on the design
 * -------------------
 * Every reader of the log that changes something does the same thing: the
 * writer filling a gap in its image, a writer's replay at open, the
 * catalog catching up, the follower's steps.  The target (an image, the
 * catalog, or a caller's wrapper around one) says where it is (next_pos)
 * and applies one record at a time; the loop reads the records in order,
 * and is the one place that decides:
 *
 *   - when to stop: at `to`, at the budget, or at the log's end;
 *   - what a record that does not come means: below a durable `to` it must
 *     exist, so its absence is an error, not the end;
 *   - what an unreadable record means: the target may pass over it (a
 *     position the catalog skips), and the reader then reopens past it;
 *   - where the reader is after an error: a record that could not be read
 *     leaves the reader at it; one that was read but not applied leaves the
 *     reader past it, so the reader is closed and the next run reopens at
 *     the target's next position, and stops at the same record again.
 *
 * Errors are tagged with their layer (rl_err.layer): what the reader
 * returns is the log's (RL_ERR_LOG when the log did not answer,
 * RL_ERR_RECORD for a record that is damaged or gone), what the target
 * returns is its own (it tags it; RL_ERR_RECORD by default).
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

void rl_replay_init(struct rl_replay *rp, struct rl_stream *s,
		    const struct rl_replay_target *t)
{
	rp->stream = s;
	rp->reader = NULL;
	rp->t = *t;
}

void rl_replay_close(struct rl_replay *rp)
{
	rl_reader_close(rp->reader);
	rp->reader = NULL;
}

/* A reader's failure: the log's when it did not answer, else the record's
 * (damaged, forged, deleted by retention); running out of memory is
 * neither, and stays untagged. */
static int reader_failed(int rc, struct rl_err *err)
{
	if (rc == -ENOMEM)
		return rc;
	return rl_err_layer(err, rc == -EIO || rc == -ETIMEDOUT ?
			    RL_ERR_LOG : RL_ERR_RECORD, rc);
}

static int reopen(struct rl_replay *rp, struct rl_err *err)
{
	int rc;

	rl_replay_close(rp);
	rc = rl_reader_open(rp->stream, rp->t.next_pos(rp->t.arg), &rp->reader,
			    err);
	if (rc < 0) {
		rp->reader = NULL;
		return reader_failed(rc, err);
	}
	return 0;
}

int rl_replay_run(struct rl_replay *rp, uint64_t to, size_t budget,
		  int wait_ms, bool *at_end, struct rl_err *err)
{
	struct rl_err local;
	size_t n = 0;
	int rc;

	if (!err)
		err = &local;
	if (at_end)
		*at_end = false;
	if (rp->t.next_pos(rp->t.arg) >= to)
		return 0;
	if (!rp->reader && (rc = reopen(rp, err)) < 0)
		return rc;
	while ((!budget || n < budget) && rp->t.next_pos(rp->t.arg) < to) {
		uint64_t next = rp->t.next_pos(rp->t.arg), pos;
		struct rl_record rec;

		rc = rl_reader_next(rp->reader, &rec, &pos, wait_ms, err);
		if (rc == 0 && to == UINT64_MAX) {
			if (at_end)
				*at_end = true;
			break;
		}
		if (rc == 0)
			return rl_err_layer(err, RL_ERR_LOG,
					    rl_err_set(err, EIO, "%s position %"
						       PRIu64 " is durable but "
						       "cannot be read",
						       rp->t.what, next));
		if (rc < 0) {
			rc = reader_failed(rc, err);
			if (err->layer != RL_ERR_RECORD || !rp->t.skip_unreadable ||
			    !rp->t.skip_unreadable(rp->t.arg, err->msg))
				return rc;	/* the reader stays at it */
			/* a record the catalog skips: read on after it */
			n++;
			if ((rc = reopen(rp, err)) < 0)
				return rc;
			continue;
		}
		rc = rp->t.apply(rp->t.arg, &rec, pos, err);
		if (rc < 0) {
			rl_replay_close(rp);	/* it is past the record */
			return rl_err_layer(err, RL_ERR_RECORD, rc);
		}
		n++;
	}
	return (int)n;
}

int rl_replay_to(struct rl_stream *s, const struct rl_replay_target *t,
		 uint64_t to, struct rl_err *err)
{
	struct rl_replay rp;
	int rc;

	rl_replay_init(&rp, s, t);
	rc = rl_replay_run(&rp, to, 0, 1000, NULL, err);
	rl_replay_close(&rp);
	return rc;
}

/* ---- the two targets every caller starts from ---- */

static uint64_t image_next(void *arg)
{
	return rl_image_next_pos(arg);
}

static int image_apply(void *arg, const struct rl_record *r, uint64_t pos,
		       struct rl_err *err)
{
	return rl_image_apply(arg, r, pos, err);
}

static bool image_skip(void *arg, const char *why)
{
	return rl_image_skip_unreadable(arg, why);
}

struct rl_replay_target rl_replay_image(struct rl_image *img)
{
	return (struct rl_replay_target){ .what = "log", .arg = img,
					  .next_pos = image_next,
					  .apply = image_apply,
					  .skip_unreadable = image_skip };
}

static uint64_t catalog_next(void *arg)
{
	return rl_catalog_next_pos(arg);
}

static int catalog_apply(void *arg, const struct rl_record *r, uint64_t pos,
			 struct rl_err *err)
{
	return rl_catalog_apply(arg, r, pos, err);
}

struct rl_replay_target rl_replay_catalog(struct rl_catalog *cat)
{
	return (struct rl_replay_target){ .what = "catalog", .arg = cat,
					  .next_pos = catalog_next,
					  .apply = catalog_apply };
}

int rl_replay(struct rl_stream *s, struct rl_image *img, struct rl_err *err)
{
	struct rl_replay_target t = rl_replay_image(img);
	uint64_t end;
	int rc = rl_log_end(s, &end, err);

	return rc < 0 ? rc : rl_replay_to(s, &t, end, err);
}
