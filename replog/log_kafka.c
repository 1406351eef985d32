/* The Kafka log: "kafka:HOST:PORT[,HOST:PORT...][?KEY=VALUE&...]".
 *
 * Notes on the design
 * -------------------
 * Topics.  One catalog topic and one topic per disk, single partition
 * each, under a namespace NS:
 *
 *   repdisk.NS.catalog             the catalog stream
 *   repdisk.NS.disk.UUID           one stream per disk
 *   repdisk.NS.followers           follower positions, keyed by name
 *                                  (see kafka_positions.c)
 *
 * A position is the Kafka offset of the record in partition 0.  That holds
 * because repdisk never uses transactions (no control records) and creates
 * its topics with retention.ms=-1, retention.bytes=-1 and
 * cleanup.policy=delete (no compaction, nothing deleted).  A reader checks
 * every offset it gets against the position it expects and refuses a gap.
 *
 * Options.  From struct rl_log_opts (kafka_*), overridden by the URI's
 * query string, KEY=VALUE separated by '&':
 *
 *   ns=NAME          namespace (default "default")
 *   rf=N             replication factor of topics created (default 3)
 *   min_insync=N     their min.insync.replicas (default 2)
 *   timeout_ms=N     an append not acknowledged by then fails (30000)
 *   max_message=N    the largest batch of records the producer sends,
 *                    and max.message.bytes of the topics created, bytes
 *                    (1048588, Kafka's default)
 *   kafka.PROP=VAL   any librdkafka property, passed through verbatim
 *                    (TLS, SASL, ...), after opts->kafka_props
 *
 * E.g. kafka:10.0.0.1:9092,10.0.0.2:9092?ns=prod&timeout_ms=5000&
 * kafka.security.protocol=SSL.  The contract's settings (acks=all,
 * idempotence, message.timeout.ms = timeout_ms, ...) are applied after the
 * operator's properties and win.
 *
 * Topics missing are created with the Admin API (CreateTopics) by a writer,
 * with rf, min.insync.replicas, retention.ms=-1 and max.message.bytes.
 * Every topic a writer opens is then described (DescribeConfigs): one with
 * fewer replicas or a lower min.insync.replicas than asked, or with
 * unclean.leader.election.enable=true, is used with a warning that says
 * what it risks and how to fix it.  Records are kept under max_message
 * (less a margin for the batch): the broker applies a topic's
 * max.message.bytes to whole batches, which the producer makes up to
 * max_message for every topic alike, so a topic that takes less than
 * max_message is refused when it is opened, saying what to change.
 * A reader gets -ENOENT for a topic that does not exist.  librdkafka's mock
 * cluster (2.0.2, so `repdisk devbroker`) does not implement CreateTopics
 * and names broker 0, which does not exist, as its controller (an admin
 * request would wait forever): when the controller is not one of the
 * brokers, the writer warns and lets the broker auto-create the topic with
 * a metadata request (the mock makes 4 partitions; partition 0 is used).
 * The mock also keeps only about 5 MiB per partition and drops older
 * records; a reader then fails with -ERANGE, saying the replica must be
 * reseeded (never skips), as it does after a real topic's retention.
 *
 * Writer.  One idempotent producer per log (acks=all, nagle off,
 * message.timeout.ms = timeout_ms, message.max.bytes = max_message).  A
 * dedicated poller thread calls rd_kafka_poll(): it is the only thread
 * that runs delivery reports, so completions run there.
 * Each append carries a struct kpending as RD_KAFKA_V_OPAQUE; it is queued
 * in the stream's FIFO before produce (under the stream's produce lock, so
 * FIFO order is produce order), marked done by its delivery report, and
 * completions run from the head of the FIFO while done: in position order
 * per stream even if reports came out of order.  A full local queue is
 * back-pressure: the append waits for a delivery report and retries.  A
 * delivery failure (timed out while the cluster has no quorum, ...)
 * completes that record with -EIO and prints the cause once per stream and
 * outage; later appends are accepted (quorum loss is not permanent).
 *
 * The idempotence window.  With idempotence, librdkafka 2.0.2 sends a
 * partition's next request only while fewer than 5 of its messages
 * (RD_KAFKA_IDEMP_MAX_INFLIGHT: messages, not requests) are in flight;
 * when a batch is ready but the window is full, its broker thread sets
 * its next wake-up to now and polls its socket with a timeout of 0 until
 * an answer comes: a spin, most of a core, on the cores the brokers need
 * (BENCHMARKS.md, "Kafka: the ceiling measured").  So a stream hands
 * librdkafka a record only while fewer than IDEMP_WINDOW of its records
 * are handed over and not yet reported (s->handed): librdkafka can then
 * send at once whatever it holds.  The others wait in the stream's held
 * list, copied, and are handed over as one group (at most one batch,
 * max_message, which librdkafka sends as one request) as soon as the
 * window has room again: from the delivery report that makes it, on the
 * poller thread.  Small records keep travelling many to a request, as
 * before.  A record is never held longer than HOLD_MAX_MS: past that
 * (answers slower than that, an outage), the group goes to librdkafka
 * anyway, so an append still fails after about its timeout, not two.
 *
 * Fatal producer errors.  An idempotent producer can fail for good
 * (rd_kafka_fatal_error): librdkafka 2.0.2 does so after some disconnects
 * (OUT_OF_ORDER_SEQUENCE_NUMBER, a bug fixed in 2.3.0), a broker can cause
 * it too.  The log then refuses new appends with -EIO, and the poller
 * thread makes a new producer: it purges the old one's messages, whose
 * appends fail with -EIO (possibly persisted, as after a timeout), waits
 * for their delivery reports, destroys it and starts a new one from the
 * same configuration, which gets a new producer id.  Appends are accepted
 * again from then on, with no remount.  The writer needs nothing more
 * than it does after a timeout: a record that failed but landed is found
 * when the next one fills the gap (writer.c).  Only the producer is
 * replaced: metadata, admin requests and watermarks go through a handle
 * of their own (rk), which nothing replaces.
 *
 * Durable end.  rl_log_end() is the partition's high watermark: with
 * acks=all, what the in-sync replicas hold.  Consumers only ever receive
 * records below the high watermark, so readers see the durable prefix only.
 *
 * Readers.  One consumer per reader, no consumer group: the legacy simple
 * consumer API starts the partition at the position.  rl_reader_next() with
 * a short timeout still returns every record below the high watermark it
 * last saw (it returns 0 only when it is at the end), since callers such as
 * rl_replay() read to rl_log_end() with timeout 0.
 *
 * Timeouts.  A record not acknowledged within message.timeout.ms fails;
 * librdkafka checks that timeout for a partition whose leader is down only
 * between reconnect attempts, so reconnect.backoff.max.ms defaults to 1 s
 * here (10 s in librdkafka) to keep the bound close.
 *
 * Writer exclusivity.  Kafka has no equivalent of the file log's flock:
 * writers are kept apart by CLAIM records (of the catalog and of each
 * disk) naming HOST:DATADIR, which a mount that is not the owner refuses
 * without --takeover, and by their epochs, which fence an old writer
 * (writer.c reads its own log to find a newer claim; DESIGN.md, contract
 * item 4).
 *
 * Limits.  Kafka does not fsync by default (flush.messages): durability
 * is replication to the in-sync replicas.  A follower of many disks opens
 * one consumer per disk.  librdkafka's own log lines (e.g. connection
 * refused) go to stderr.  A reader below what the topic's retention kept
 * gets -ERANGE (reseed).  rl_log_end() asks the partition's leader for
 * its high watermark (kafka_topic_offset(), which keeps to the log's
 * timeout where librdkafka 2.0.2's rd_kafka_query_watermark_offsets()
 * does not); readers use their own fetches' high watermark instead once
 * they have one.
 *
 * Files.  The backend is split by concern around kafka_internal.h, which
 * holds struct kafka_log and the calls that cross files:
 *
 *   log_kafka.c        this note; the backend table, the producer and its
 *                      poller thread, streams and appends, the durable
 *                      end, readers
 *   kafka_conf.c       the URI's options; librdkafka configurations
 *   kafka_topics.c     topic names, lookup, creation and the check of
 *                      their settings (DescribeConfigs)
 *   kafka_positions.c  the follower-positions registry
 */
#include "kafka_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* See "The idempotence window". */
#define IDEMP_WINDOW	5
#define HOLD_MAX_MS	1000
#define BATCH_OVERHEAD	80	/* bytes a record adds to a batch, at most */

struct kpending {
	struct kpending *next;
	struct kafka_stream *s;
	rl_append_cb cb;
	void *opaque;
	bool done;
	int err;
	uint64_t pos;
	/* while held: the record's copy, and since when */
	struct kpending *hnext;
	void *buf;
	size_t len;
	uint64_t held_ns;
};

struct kafka_stream {
	struct rl_stream base;
	struct kafka_stream *next;
	char topic[TOPIC_MAX];
	pthread_mutex_t produce_lock;	/* FIFO order = produce order */
	pthread_mutex_t lock;		/* the FIFO, the held list, handed */
	struct kpending *head, *tail;
	struct kpending *held, *held_tail;	/* not yet handed over */
	int handed;			/* handed over, not yet reported */
	atomic_bool release_wanted;	/* a report found produce_lock taken */
	bool failing;			/* printed a failure, not yet ok */
};

struct kafka_reader {
	struct rl_reader base;
	struct kafka_stream *s;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	rd_kafka_message_t *held;	/* a bad record, kept for retries */
	rd_kafka_message_t *last;	/* the record returned last */
	struct rl_decoder dec;
	uint64_t pos, end;		/* next position; high watermark seen */
};

#define KSTREAM(b) ((struct kafka_stream *)(b))

/* ------------------------------------------------------------ writer */

static void stream_complete(struct kafka_stream *s)
{
	for (;;) {
		struct kpending *p;

		pthread_mutex_lock(&s->lock);
		p = s->head;
		if (!p || !p->done) {
			pthread_mutex_unlock(&s->lock);
			return;
		}
		s->head = p->next;
		if (!s->head)
			s->tail = NULL;
		pthread_mutex_unlock(&s->lock);
		p->cb(p->opaque, p->err, p->pos);
		free(p);
	}
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Marks p, which never reached librdkafka, done with err.  Its caller
 * runs the completions (stream_complete) and lowers the log's inflight
 * count once it holds no lock a completion might want. */
static void pending_fail(struct kpending *p, int err)
{
	struct kafka_stream *s = p->s;

	free(p->buf);
	p->buf = NULL;
	pthread_mutex_lock(&s->lock);
	p->err = err;
	p->done = true;
	pthread_mutex_unlock(&s->lock);
}

/* Who calls release_locked: an appender (which must not complete a
 * record: completions run on the poller thread, in order), the poller
 * thread, or the poller thread failing them all after a fatal error. */
enum release { REL_APPENDER, REL_POLLER, REL_FAIL };

/* Under s->produce_lock: hands s's held records to librdkafka, a group
 * (one batch) at a time, while the window has room or the oldest was held
 * HOLD_MAX_MS; or (REL_FAIL) fails them all, the producer having failed.
 * Returns how many it marked failed (pending_fail; never an appender's).
 * A record librdkafka does not take goes back to the head of the held
 * list with the rest of its group, in order (appenders add only under
 * produce_lock, which this holds): for the next delivery report or round
 * when its queue is full, for the poller to fail it otherwise. */
static int release_locked(struct kafka_log *log, struct kafka_stream *s,
			  enum release who)
{
	size_t cap = (size_t)log->max_message - 512;
	bool fail = who == REL_FAIL;
	int failed = 0;

	for (;;) {
		struct kpending *group = NULL, **end = &group, *p;
		size_t bytes = 0;

		pthread_mutex_lock(&s->lock);
		p = s->held;
		if (!p || (!fail && s->handed >= IDEMP_WINDOW &&
			   now_ns() - p->held_ns < HOLD_MAX_MS * 1000000ull)) {
			pthread_mutex_unlock(&s->lock);
			return failed;
		}
		while (p && (!group || bytes + p->len + BATCH_OVERHEAD <= cap)) {
			bytes += p->len + BATCH_OVERHEAD;
			*end = p;
			end = &p->hnext;
			s->handed++;
			p = p->hnext;
		}
		*end = NULL;
		s->held = p;
		if (!p)
			s->held_tail = NULL;
		pthread_mutex_unlock(&s->lock);

		pthread_rwlock_rdlock(&log->prod_lock);
		for (p = group; p; p = group) {
			/* once librdkafka has it, its delivery report may
			 * complete and free p at any moment: nothing of p is
			 * touched after a successful produce */
			struct kpending *next = p->hnext;
			rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__FATAL;

			if (!fail)
				e = rd_kafka_producev(log->prod,
					RD_KAFKA_V_TOPIC(s->topic),
					RD_KAFKA_V_PARTITION(0),
					RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
					RD_KAFKA_V_VALUE(p->buf, p->len),
					RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
			if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
				group = next;	/* p->buf is librdkafka's now */
				continue;
			}
			if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL ||
			    who == REL_APPENDER)
				break;
			group = next;
			pthread_mutex_lock(&s->lock);
			s->handed--;
			pthread_mutex_unlock(&s->lock);
			/* a fatal error is said by on_error, once */
			if (!fail && e != RD_KAFKA_RESP_ERR__FATAL)
				rl_msg(RL_LOG_ERR, "kafka log: topic %s: produce: "
				       "%s", s->topic, rd_kafka_err2str(e));
			pending_fail(p, -EIO);
			failed++;
		}
		pthread_rwlock_unlock(&log->prod_lock);
		if (!group)
			continue;
		pthread_mutex_lock(&s->lock);
		for (p = group; ; p = p->hnext) {
			s->handed--;
			if (!p->hnext)
				break;
		}
		p->hnext = s->held;
		if (!s->held)
			s->held_tail = p;
		s->held = group;
		pthread_mutex_unlock(&s->lock);
		return failed;
	}
}

/* release_locked from the poller thread, which must not block on an
 * appender: a stream being appended to is flagged instead, and its
 * appender does the release on its way out (appender_leave).  Failed
 * records are completed here, with no lock held. */
static void stream_release(struct kafka_log *log, struct kafka_stream *s,
			   bool fail)
{
	if (pthread_mutex_trylock(&s->produce_lock) != 0) {
		atomic_store(&s->release_wanted, true);
		/* its holder may have let go before it saw the flag */
		if (pthread_mutex_trylock(&s->produce_lock) != 0)
			return;
		atomic_store(&s->release_wanted, false);
	}
	int failed = release_locked(log, s, fail ? REL_FAIL : REL_POLLER);

	pthread_mutex_unlock(&s->produce_lock);
	if (!failed)
		return;
	stream_complete(s);
	pthread_mutex_lock(&log->lock);
	log->inflight -= (uint64_t)failed;
	pthread_cond_broadcast(&log->cond);
	pthread_mutex_unlock(&log->lock);
}

/* An appender lets go of produce_lock, and does the release a delivery
 * report asked for meanwhile (stream_release found the lock taken):
 * otherwise the held records would wait for the poller's next round. */
static void appender_leave(struct kafka_log *log, struct kafka_stream *s)
{
	pthread_mutex_unlock(&s->produce_lock);
	while (atomic_exchange(&s->release_wanted, false)) {
		if (pthread_mutex_trylock(&s->produce_lock) != 0) {
			/* its holder leaves through here too */
			atomic_store(&s->release_wanted, true);
			return;
		}
		(void)release_locked(log, s, REL_APPENDER);	/* fails none */
		pthread_mutex_unlock(&s->produce_lock);
	}
}

/* stream_release for every stream (streams are only ever added, at the
 * head, and freed when the log is closed). */
static void streams_release(struct kafka_log *log, bool fail)
{
	struct kafka_stream *s;

	pthread_mutex_lock(&log->lock);
	s = log->streams;
	pthread_mutex_unlock(&log->lock);
	for (; s; s = s->next)
		stream_release(log, s, fail);
}

/* Runs on the poller thread only. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
			void *arg)
{
	struct kafka_log *log = arg;
	struct kpending *p = m->_private;
	struct kafka_stream *s = p->s;

	(void)rk;
	if (m->err) {
		p->err = -EIO;
		pthread_mutex_lock(&log->lock);
		if (log->last_error[0] && m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
			snprintf(s->base.fail_why, sizeof(s->base.fail_why),
				 "no answer from the cluster within %d ms "
				 "(last error: %.180s)", log->timeout_ms,
				 log->last_error);
		else
			snprintf(s->base.fail_why, sizeof(s->base.fail_why),
				 "%s", rd_kafka_err2str(m->err));
		pthread_mutex_unlock(&log->lock);
		if (!s->failing)
			rl_msg(RL_LOG_ERR, "kafka log: topic %s: log "
				"append failed after %d s: %s", s->topic,
				(log->timeout_ms + 999) / 1000,
				rd_kafka_err2str(m->err));
		s->failing = true;
	} else {
		p->pos = (uint64_t)m->offset;
		if (s->failing)
			rl_msg(RL_LOG_NOTICE, "kafka log: topic %s: appends "
				"succeed again", s->topic);
		s->failing = false;
	}
	pthread_mutex_lock(&s->lock);
	p->done = true;
	s->handed--;
	pthread_mutex_unlock(&s->lock);
	stream_complete(s);
	pthread_mutex_lock(&log->lock);
	if (!m->err)
		log->last_error[0] = '\0';
	log->inflight--;
	pthread_cond_broadcast(&log->cond);
	pthread_mutex_unlock(&log->lock);
	stream_release(log, s, false);
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *arg)
{
	struct kafka_log *log = arg;
	char buf[256];

	if (code != RD_KAFKA_RESP_ERR__FATAL) {
		/* transient: librdkafka retries; kept to explain timeouts */
		pthread_mutex_lock(&log->lock);
		snprintf(log->last_error, sizeof(log->last_error), "%s",
			 reason);
		pthread_mutex_unlock(&log->lock);
		return;
	}
	rd_kafka_fatal_error(rk, buf, sizeof(buf));
	pthread_mutex_lock(&log->lock);
	if (!log->fatal) {
		log->fatal = -EIO;
		snprintf(log->fatal_msg, sizeof(log->fatal_msg), "%s (%s)", buf,
			 reason);
		rl_msg(RL_LOG_ERR, "kafka log %s: fatal producer error: "
			"%s; appends fail with EIO until a new producer "
			"runs", log->brokers, log->fatal_msg);
	}
	pthread_mutex_unlock(&log->lock);
}

/* A producer made from the writer's configuration (log->prod_conf, which
 * stays: rd_kafka_new takes the copy). */
static rd_kafka_t *producer_new(struct kafka_log *log, char *errstr,
				size_t size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(log->prod_conf);
	rd_kafka_t *rk;

	if (!conf) {
		snprintf(errstr, size, "out of memory");
		return NULL;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, size);
	if (!rk)
		rd_kafka_conf_destroy(conf);
	return rk;
}

/* After a fatal error, on the poller thread: every message of the old
 * producer gets its delivery report (an error), then a new producer
 * replaces it.  Appends are refused meanwhile (log->fatal), so the count
 * of those in flight only goes down. */
static void producer_replace(struct kafka_log *log)
{
	char errstr[512];
	rd_kafka_t *rk;

	rd_kafka_purge(log->prod, RD_KAFKA_PURGE_F_QUEUE |
				  RD_KAFKA_PURGE_F_INFLIGHT);
	for (;;) {
		streams_release(log, true);	/* held records fail too */
		pthread_mutex_lock(&log->lock);
		bool idle = log->inflight == 0;

		pthread_mutex_unlock(&log->lock);
		if (idle)
			break;
		if (atomic_load(&log->stop))
			return;		/* closing: no new producer */
		rd_kafka_poll(log->prod, 50);
	}
	rk = producer_new(log, errstr, sizeof(errstr));
	if (!rk) {
		rl_msg(RL_LOG_ERR, "kafka log %s: cannot make a new "
			"producer (%s); retrying in 1 s", log->brokers,
			errstr);
		struct timespec t = { 1, 0 };

		nanosleep(&t, NULL);
		return;
	}
	pthread_rwlock_wrlock(&log->prod_lock);
	rd_kafka_t *old = log->prod;

	log->prod = rk;
	pthread_rwlock_unlock(&log->prod_lock);
	rd_kafka_destroy(old);
	pthread_mutex_lock(&log->lock);
	log->fatal = 0;
	pthread_mutex_unlock(&log->lock);
	rl_msg(RL_LOG_NOTICE, "kafka log %s: a new producer replaced the "
		"one that failed (%s); appends are accepted again",
		log->brokers, log->fatal_msg);
}

static void *poller_main(void *arg)
{
	struct kafka_log *log = arg;

	while (!atomic_load(&log->stop)) {
		rd_kafka_poll(log->prod, 50);
		pthread_mutex_lock(&log->lock);
		bool fatal = log->fatal != 0;

		pthread_mutex_unlock(&log->lock);
		if (fatal)
			producer_replace(log);
		else
			streams_release(log, false);
	}
	return NULL;
}

/* Under s->lock: p joins the completion FIFO (produce order). */
static void fifo_push(struct kafka_stream *s, struct kpending *p)
{
	if (s->tail)
		s->tail->next = p;
	else
		s->head = p;
	s->tail = p;
}

static int kafka_append(struct rl_stream *base, const void *rec, size_t len,
			rl_append_cb cb, void *opaque)
{
	struct kafka_stream *s = KSTREAM(base);
	struct kafka_log *log = KLOG(base->log);
	struct kpending *p = calloc(1, sizeof(*p));
	rd_kafka_resp_err_t e;

	if (len > log->base.max_record) {
		free(p);
		return -EMSGSIZE;	/* the writer splits records below this */
	}
	if (!p)
		return -ENOMEM;
	p->s = s;
	p->cb = cb;
	p->opaque = opaque;
	pthread_mutex_lock(&log->lock);
	if (log->fatal) {
		pthread_mutex_unlock(&log->lock);
		free(p);
		return -EIO;
	}
	log->inflight++;
	pthread_mutex_unlock(&log->lock);

	pthread_mutex_lock(&s->produce_lock);
	pthread_mutex_lock(&s->lock);
	if (s->held || s->handed >= IDEMP_WINDOW) {
		/* the window is full (see "The idempotence window"): held,
		 * a copy, handed over by a delivery report; copied without
		 * s->lock, which delivery reports take (produce_lock keeps
		 * every other appender out meanwhile) */
		pthread_mutex_unlock(&s->lock);
		p->buf = malloc(len);
		if (p->buf)
			memcpy(p->buf, rec, len);
		pthread_mutex_lock(&s->lock);
		if (p->buf) {
			p->len = len;
			p->held_ns = now_ns();
			fifo_push(s, p);
			if (s->held_tail)
				s->held_tail->hnext = p;
			else
				s->held = p;
			s->held_tail = p;
		}
		bool held = p->buf != NULL;

		pthread_mutex_unlock(&s->lock);
		/* reports may have come meanwhile (and p may be done and
		 * freed once this returns) */
		if (held)
			(void)release_locked(log, s, REL_APPENDER);
		appender_leave(log, s);
		if (held)
			return 0;
		free(p);
		pthread_mutex_lock(&log->lock);
		log->inflight--;
		pthread_cond_broadcast(&log->cond);
		pthread_mutex_unlock(&log->lock);
		return -ENOMEM;
	}
	fifo_push(s, p);
	s->handed++;
	pthread_mutex_unlock(&s->lock);
	pthread_rwlock_rdlock(&log->prod_lock);
	for (;;) {
		e = rd_kafka_producev(log->prod, RD_KAFKA_V_TOPIC(s->topic),
				      RD_KAFKA_V_PARTITION(0),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				      RD_KAFKA_V_VALUE((void *)rec, len),
				      RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		/* back-pressure: wait for a delivery report, then retry */
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 10 * 1000000;
		if (t.tv_nsec >= 1000000000) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&log->lock);
		pthread_cond_timedwait(&log->cond, &log->lock, &t);
		pthread_mutex_unlock(&log->lock);
	}
	if (e == RD_KAFKA_RESP_ERR__FATAL) {
		char buf[256];

		rd_kafka_fatal_error(log->prod, buf, sizeof(buf));
		pthread_mutex_lock(&log->lock);
		if (!log->fatal) {
			log->fatal = -EIO;
			snprintf(log->fatal_msg, sizeof(log->fatal_msg), "%s",
				 buf);
		}
		pthread_mutex_unlock(&log->lock);
	}
	pthread_rwlock_unlock(&log->prod_lock);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		/* p is the tail (we hold produce_lock) and not done: unlink */
		pthread_mutex_lock(&s->lock);
		s->handed--;
		if (s->head == p) {
			s->head = s->tail = NULL;
		} else {
			struct kpending *q = s->head;

			while (q->next != p)
				q = q->next;
			q->next = NULL;
			s->tail = q;
		}
		pthread_mutex_unlock(&s->lock);
		appender_leave(log, s);
		free(p);
		pthread_mutex_lock(&log->lock);
		log->inflight--;
		pthread_cond_broadcast(&log->cond);
		pthread_mutex_unlock(&log->lock);
		rl_msg(RL_LOG_ERR, "kafka log: topic %s: produce: %s",
			s->topic, rd_kafka_err2str(e));
		return -EIO;
	}
	appender_leave(log, s);
	return 0;
}

/* ------------------------------------------------------------ log */

static int kafka_stream_get(struct rl_log *base, const struct rl_uuid *disk,
			    struct rl_stream **out, struct rl_err *err)
{
	struct kafka_log *log = KLOG(base);
	struct kafka_stream *s;
	char topic[TOPIC_MAX];
	int rc;

	kafka_topic_name(log, disk, topic);
	pthread_mutex_lock(&log->lock);
	for (s = log->streams; s; s = s->next)
		if (strcmp(s->topic, topic) == 0)
			break;
	pthread_mutex_unlock(&log->lock);
	if (s) {
		*out = &s->base;
		return 0;
	}
	if (base->flags & RL_LOG_WRITE) {
		rc = kafka_topic_ensure(log, topic, err);
	} else {
		int replicas, partitions;

		rc = kafka_topic_lookup(log, topic, &replicas, &partitions,
					err);
		if (rc == 0)
			rc = rl_err_set(err, ENOENT, "log kafka: topic %s does "
					"not exist", topic);
	}
	if (rc < 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return rl_err_set(err, ENOMEM, "out of memory");
	s->base.log = base;
	if (disk)
		s->base.disk = *disk;
	memcpy(s->topic, topic, sizeof(topic));
	pthread_mutex_init(&s->produce_lock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_lock(&log->lock);
	struct kafka_stream *other;

	for (other = log->streams; other; other = other->next)
		if (strcmp(other->topic, topic) == 0)
			break;
	if (other) {		/* another thread was faster */
		pthread_mutex_unlock(&log->lock);
		pthread_mutex_destroy(&s->produce_lock);
		pthread_mutex_destroy(&s->lock);
		free(s);
		*out = &other->base;
		return 0;
	}
	s->next = log->streams;
	log->streams = s;
	pthread_mutex_unlock(&log->lock);
	*out = &s->base;
	return 0;
}

static int kafka_list(struct rl_log *base, struct rl_uuid *uuids, size_t max,
		      struct rl_err *err)
{
	struct kafka_log *log = KLOG(base);
	const struct rd_kafka_metadata *md;
	char prefix[TOPIC_MAX];
	size_t plen;
	int n = 0;
	rd_kafka_resp_err_t e = rd_kafka_metadata(log->rk, 1, NULL, &md,
						  log->timeout_ms);

	if (e)
		return rl_err_set(err, EIO, "log kafka:%s: metadata: %s",
				  log->brokers, rd_kafka_err2str(e));
	snprintf(prefix, sizeof(prefix), "repdisk.%s.disk.", log->ns);
	plen = strlen(prefix);
	for (int i = 0; i < md->topic_cnt; i++) {
		struct rl_uuid u;

		if (strncmp(md->topics[i].topic, prefix, plen) != 0 ||
		    strlen(md->topics[i].topic + plen) != RL_UUID_STRLEN ||
		    rl_uuid_parse(md->topics[i].topic + plen, &u) < 0)
			continue;
		if ((size_t)n < max)
			uuids[n] = u;
		n++;
	}
	rd_kafka_metadata_destroy(md);
	return n;
}

/* Refreshes librdkafka's metadata of one topic (its partition's leader),
 * waiting at most ms. */
static void metadata_refresh(struct kafka_log *log, const char *topic,
			     int64_t ms)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(log->rk, topic, NULL);
	const struct rd_kafka_metadata *md;

	if (!rkt)
		return;
	if (rd_kafka_metadata(log->rk, 0, rkt, &md,
			      ms > 5000 ? 5000 : ms > 0 ? (int)ms : 1) == 0)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
}

static int kafka_end(struct rl_stream *base, uint64_t *end)
{
	struct kafka_stream *s = KSTREAM(base);
	struct kafka_log *log = KLOG(base->log);
	int64_t hi, deadline = rl_clock_ms(CLOCK_MONOTONIC) + log->timeout_ms;
	rd_kafka_resp_err_t e;

	/* A leader that moved (a broker went down) answers "not leader"
	 * until librdkafka has refreshed its metadata: retry that until the
	 * log's timeout, like appends do. */
	for (;;) {
		int64_t left = deadline - rl_clock_ms(CLOCK_MONOTONIC);

		e = kafka_topic_offset(log, s->topic, RD_KAFKA_OFFSET_END,
				       left > 0 ? (int)left : 1, &hi);
		/* ... and a topic just created is "unknown" to a broker, or
		 * to librdkafka's metadata, for a moment */
		if (left <= 0 ||
		    (e != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
		     e != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
		     e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
		     e != RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION &&
		     e != RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC &&
		     e != RD_KAFKA_RESP_ERR__TRANSPORT))
			break;
		struct timespec t = { 0, 100 * 1000000 };

		nanosleep(&t, NULL);
		/* librdkafka does not refresh its metadata for a watermark
		 * query that a former leader refuses: ask for the topic's */
		if (e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
		    e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
		    e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
			metadata_refresh(log, s->topic, left);
	}
	if (e) {
		rl_msg(RL_LOG_ERR, "kafka log: topic %s: high watermark: "
			"%s", s->topic, rd_kafka_err2str(e));
		return e == RD_KAFKA_RESP_ERR__TIMED_OUT ? -ETIMEDOUT : -EIO;
	}
	*end = (uint64_t)hi;
	return 0;
}

static void kafka_close(struct rl_log *base)
{
	struct kafka_log *log = KLOG(base);

	/* every message gets a delivery report by message.timeout.ms */
	pthread_mutex_lock(&log->lock);
	while (log->inflight > 0)
		pthread_cond_wait(&log->cond, &log->lock);
	pthread_mutex_unlock(&log->lock);
	if (log->poller_started) {
		atomic_store(&log->stop, true);
		pthread_join(log->poller, NULL);
	}
	kafka_pos_close(log);
	if (log->prod)
		rd_kafka_destroy(log->prod);
	if (log->prod_conf)
		rd_kafka_conf_destroy(log->prod_conf);
	if (log->rk)
		rd_kafka_destroy(log->rk);
	while (log->streams) {
		struct kafka_stream *s = log->streams;

		log->streams = s->next;
		pthread_mutex_destroy(&s->produce_lock);
		pthread_mutex_destroy(&s->lock);
		free(s);
	}
	for (size_t i = 0; i < log->nprops; i++)
		free(log->props[i]);
	pthread_mutex_destroy(&log->lock);
	pthread_mutex_destroy(&log->pos_lock);
	pthread_rwlock_destroy(&log->prod_lock);
	pthread_cond_destroy(&log->cond);
	free(log);
}

static int kafka_open(const char *where, unsigned flags,
		      const struct rl_log_opts *opts, struct rl_log **out,
		      struct rl_err *err)
{
	struct kafka_log *log = calloc(1, sizeof(*log));
	bool writer = flags & RL_LOG_WRITE;
	char tmo[16], maxb[16], errstr[512];
	rd_kafka_conf_t *conf;
	int rc;

	if (!log)
		return rl_err_set(err, ENOMEM, "out of memory");
	log->base.be = &rl_backend_kafka;
	log->base.flags = flags;
	pthread_mutex_init(&log->lock, NULL);
	pthread_mutex_init(&log->pos_lock, NULL);
	pthread_rwlock_init(&log->prod_lock, NULL);
	pthread_cond_init(&log->cond, NULL);
	rc = kafka_parse_where(log, where, opts, err);
	if (rc < 0)
		goto fail;
	snprintf(tmo, sizeof(tmo), "%d", log->timeout_ms);
	/* The producer's batches are at most max_message, and every topic
	 * takes that much (kafka_topic_ensure).  A record batch adds some 70
	 * bytes around a record; keep a margin. */
	snprintf(maxb, sizeof(maxb), "%d", log->max_message);
	log->base.max_record = (size_t)log->max_message - 512;
	const char *const producer[] = {
		"acks", "all",
		"enable.idempotence", "true",
		"socket.nagle.disable", "true",
		"message.timeout.ms", tmo,
		"message.max.bytes", maxb,
		/* batches as large as the topics take (librdkafka's default
		 * is 1000000, less than Kafka's 1048588) */
		"batch.size", maxb,
		"linger.ms", "0",
		NULL
	};
	/* the metadata handle produces nothing: producer-only properties an
	 * operator gives for the writer must not make it invalid */
	const char *const meta[] = {
		"socket.nagle.disable", "true",
		"enable.gapless.guarantee", "false",
		NULL
	};
	conf = kafka_make_conf(log, meta, err);
	if (!conf) {
		rc = -EINVAL;
		goto fail;
	}
	/* its errors (authentication, TLS, ...) explain a failed request */
	rd_kafka_conf_set_opaque(conf, log);
	rd_kafka_conf_set_error_cb(conf, on_error);
	log->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!log->rk) {
		rd_kafka_conf_destroy(conf);
		rc = rl_err_set(err, EINVAL, "log kafka:%s: %s", log->brokers,
				errstr);
		goto fail;
	}
	if (writer) {
		conf = kafka_make_conf(log, producer, err);
		if (!conf) {
			rc = -EINVAL;
			goto fail;
		}
		rd_kafka_conf_set_opaque(conf, log);
		rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
		rd_kafka_conf_set_error_cb(conf, on_error);
		log->prod_conf = conf;
		log->prod = producer_new(log, errstr, sizeof(errstr));
		if (!log->prod) {
			rc = rl_err_set(err, EINVAL, "log kafka:%s: %s",
					log->brokers, errstr);
			goto fail;
		}
		rc = -pthread_create(&log->poller, NULL, poller_main, log);
		if (rc < 0) {
			rl_err_set(err, -rc, "log kafka:%s: start poller: %s",
				   log->brokers, strerror(-rc));
			goto fail;
		}
		log->poller_started = true;
	}
	*out = &log->base;
	return 0;
fail:
	kafka_close(&log->base);
	return rc;
}

/* ------------------------------------------------------------ readers */

static int reader_fail(struct kafka_reader *r, int code, const char *why,
		       struct rl_err *err)
{
	char msg[sizeof(err->msg)];

	snprintf(msg, sizeof(msg), "%s", why);
	return rl_err_set(err, code, "log kafka: topic %s offset %" PRIu64
			  " (position %" PRIu64 "): %s", r->s->topic, r->pos,
			  r->pos, msg);
}

static int kafka_reader_next(struct rl_reader *base, struct rl_record *rec,
			     uint64_t *pos, int timeout_ms, struct rl_err *err)
{
	struct kafka_reader *r = (struct kafka_reader *)base;
	struct kafka_log *log = KLOG(r->s->base.log);
	rd_kafka_message_t *m = r->held;
	struct rl_err e;
	int rc;

	if (r->last) {
		rd_kafka_message_destroy(r->last);
		r->last = NULL;
	}

	if (!m && r->pos >= r->end) {
		int64_t lo = -1, hi = -1;
		uint64_t end;

		/* The high watermark the consumer learnt from its last fetch:
		 * no request, and it follows a leader that moved (asking the
		 * cached leader of a broker that went down can hang in
		 * librdkafka 2.0.2).  Before any fetch, ask the cluster. */
		if (rd_kafka_get_watermark_offsets(r->rk, r->s->topic, 0, &lo,
						   &hi) == 0 && hi >= 0) {
			end = (uint64_t)hi;
		} else {
			rc = kafka_end(&r->s->base, &end);
			if (rc < 0)
				return rl_err_set(err, -rc, "log kafka: topic "
						  "%s: high watermark: %s",
						  r->s->topic, strerror(-rc));
		}
		if (end > r->end)
			r->end = end;
	}
	if (!m) {
		/* below the end a record is there: wait for it as long as a
		 * write may take; at the end, timeout_ms */
		bool below = r->pos < r->end;
		int64_t deadline = rl_clock_ms(CLOCK_MONOTONIC) +
				   (below ? log->timeout_ms + 5000 :
				    timeout_ms);

		for (;;) {
			int64_t left = deadline - rl_clock_ms(CLOCK_MONOTONIC);

			m = rd_kafka_consume(r->rkt, 0, left > 0 ? (int)left : 0);
			if (m && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				rd_kafka_message_destroy(m);
				m = NULL;
			}
			if (m && (m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
				  m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)) {
				int64_t lo = -1;

				rd_kafka_message_destroy(m);
				kafka_topic_offset(log, r->s->topic,
						   RD_KAFKA_OFFSET_BEGINNING,
						   5000, &lo);
				snprintf(e.msg, sizeof(e.msg), "no longer in the "
					 "log, which now starts at position %"
					 PRId64 " (deleted by the topic's "
					 "retention): this replica cannot catch "
					 "up from the log and must be reseeded "
					 "from another one (repdisk seed --from)",
					 lo);
				return reader_fail(r, ERANGE, e.msg, err);
			}
			if (m && m->err) {
				snprintf(e.msg, sizeof(e.msg), "consume: %s",
					 rd_kafka_message_errstr(m));
				rd_kafka_message_destroy(m);
				return reader_fail(r, EIO, e.msg, err);
			}
			if (m || rl_clock_ms(CLOCK_MONOTONIC) >= deadline)
				break;
		}
		if (!m && below)
			return reader_fail(r, EIO, "the record below the high "
					   "watermark did not arrive", err);
		if (!m)
			return 0;
		r->held = m;
	}
	if (m->offset < 0 || (uint64_t)m->offset != r->pos) {
		snprintf(e.msg, sizeof(e.msg), "got offset %" PRId64
			 " instead: a gap in the stream", m->offset);
		return reader_fail(r, EBADMSG, e.msg, err);
	}
	rc = rl_record_decode(&r->dec, m->payload, m->len, rec, &e);
	if (rc < 0)
		return reader_fail(r, -rc, e.msg, err);
	if (!rl_uuid_is_nil(&r->s->base.disk) &&
	    !rl_uuid_eq(&rec->disk, &r->s->base.disk))
		return reader_fail(r, EBADMSG, "record of another disk", err);
	/* rec may point into m's payload: keep m until the next call */
	r->held = NULL;
	r->last = m;
	*pos = r->pos++;
	if (r->pos > r->end)
		r->end = r->pos;
	return 1;
}

static void kafka_reader_close(struct rl_reader *base)
{
	struct kafka_reader *r = (struct kafka_reader *)base;

	if (r->held)
		rd_kafka_message_destroy(r->held);
	if (r->last)
		rd_kafka_message_destroy(r->last);
	if (r->rkt) {
		rd_kafka_consume_stop(r->rkt, 0);
		rd_kafka_topic_destroy(r->rkt);
	}
	if (r->rk)
		rd_kafka_destroy(r->rk);
	rl_decoder_free(&r->dec);
	free(r);
}

static int kafka_reader_open(struct rl_stream *base, uint64_t pos,
			     struct rl_reader **out, struct rl_err *err)
{
	struct kafka_stream *s = KSTREAM(base);
	struct kafka_log *log = KLOG(base->log);
	struct kafka_reader *r;
	char errstr[512];
	rd_kafka_conf_t *conf;
	uint64_t end;
	int rc = kafka_end(base, &end);

	if (rc < 0)
		return rl_err_set(err, -rc, "log kafka: topic %s: high "
				  "watermark: %s", s->topic, strerror(-rc));
	if (pos > end)
		return rl_err_set(err, ERANGE, "log kafka: topic %s: position "
				  "%" PRIu64 " is past the end of the log (%"
				  PRIu64 ")", s->topic, pos, end);
	const char *const consumer[] = {
		"enable.auto.commit", "false",
		"enable.auto.offset.store", "false",
		"auto.offset.reset", "error",
		"enable.partition.eof", "false",
		"fetch.wait.max.ms", "100",
		"fetch.max.bytes", "104857600",
		"receive.message.max.bytes", "134217728",
		"queued.max.messages.kbytes", "65536",
		"socket.nagle.disable", "true",
		NULL
	};
	r = calloc(1, sizeof(*r));
	if (!r)
		return rl_err_set(err, ENOMEM, "out of memory");
	r->base.stream = base;
	r->s = s;
	r->pos = pos;
	r->end = end;
	rl_decoder_init(&r->dec);
	r->dec.keys = base->log->keys;
	conf = kafka_make_conf(log, consumer, err);
	if (!conf) {
		rc = -EINVAL;
		goto fail;
	}
	r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!r->rk) {
		rd_kafka_conf_destroy(conf);
		rc = rl_err_set(err, EINVAL, "log kafka: topic %s: consumer: %s",
				s->topic, errstr);
		goto fail;
	}
	r->rkt = rd_kafka_topic_new(r->rk, s->topic, NULL);
	if (!r->rkt || rd_kafka_consume_start(r->rkt, 0, (int64_t)pos) < 0) {
		rc = rl_err_set(err, EIO, "log kafka: topic %s: start "
				"consumer at offset %" PRIu64 ": %s", s->topic,
				pos, rd_kafka_err2str(rd_kafka_last_error()));
		if (r->rkt) {
			rd_kafka_topic_destroy(r->rkt);
			r->rkt = NULL;
		}
		goto fail;
	}
	*out = &r->base;
	return 0;
fail:
	kafka_reader_close(&r->base);
	return rc;
}

const struct rl_backend rl_backend_kafka = {
	.scheme = "kafka",
	.open = kafka_open,
	.close = kafka_close,
	.stream = kafka_stream_get,
	.list = kafka_list,
	.append = kafka_append,
	.end = kafka_end,
	.reader_open = kafka_reader_open,
	.reader_next = kafka_reader_next,
	.reader_close = kafka_reader_close,
	.pos_put = kafka_pos_put,
	.pos_scan = kafka_pos_scan,
};
