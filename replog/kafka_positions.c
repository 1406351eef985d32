/* The follower-positions registry of the Kafka log: the pos_put and
 * pos_scan backend operations (internal.h), over a topic of its own.
 *
 * Follower positions: topic repdisk.NS.followers, one partition (0), one
 * message per report, keyed by the follower's name; its value is the
 * report (positions.c), a null value (tombstone) forgets the follower.
 *
 * A follower's log is a reader's, with no producer of its own: the first
 * publish makes the topic (CreateTopics with cleanup.policy=compact, so a
 * real cluster keeps the newest report of every name and drops the rest;
 * a cluster that cannot create topics auto-creates it, and then the
 * operator should set cleanup.policy=compact on it) and an idempotent
 * acks=all producer for reports only.  Publishing does not wait for the
 * acknowledgement: a follower that reports once a second must not stall
 * applying records while the cluster lacks a quorum.  Delivery reports are
 * served by the next publish (rd_kafka_poll) and at close (flush, bounded
 * by timeout_ms); a failure is printed once per outage.
 *
 * Listing reads the partition from the beginning to the high watermark it
 * had at the start and keeps the newest value of every key.  Without
 * compaction (librdkafka's mock keeps about 5 MiB per partition and drops
 * older records) the oldest reports are lost first: a follower that has
 * not reported for long may vanish from the list there. */
#include "kafka_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void followers_topic(const struct kafka_log *log, char out[TOPIC_MAX])
{
	snprintf(out, TOPIC_MAX, "repdisk.%s.followers", log->ns);
}

bool kafka_topic_compacted(const struct kafka_log *log, const char *topic)
{
	char t[TOPIC_MAX];

	followers_topic(log, t);
	return strcmp(t, topic) == 0;
}

/* Runs in rd_kafka_poll()/rd_kafka_flush() of pos_rk, under pos_lock or at
 * close. */
static void pos_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
			 void *arg)
{
	struct kafka_log *log = arg;

	(void)rk;
	if (m->err && !log->pos_failing)
		rl_msg(RL_LOG_ERR, "kafka log: topic %s: publishing "
			"follower positions failed: %s",
			rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
	else if (!m->err && log->pos_failing)
		rl_msg(RL_LOG_NOTICE, "kafka log: topic %s: follower "
			"positions are published again",
			rd_kafka_topic_name(m->rkt));
	log->pos_failing = m->err != 0;
}

static int pos_producer(struct kafka_log *log, struct rl_err *err)
{
	char topic[TOPIC_MAX], tmo[16], errstr[512];
	rd_kafka_conf_t *conf;
	int rc;

	followers_topic(log, topic);
	rc = kafka_topic_ensure(log, topic, err);
	if (rc < 0)
		return rc;
	snprintf(tmo, sizeof(tmo), "%d", log->timeout_ms);
	const char *const producer[] = {
		"acks", "all",
		"enable.idempotence", "true",
		"socket.nagle.disable", "true",
		"message.timeout.ms", tmo,
		"linger.ms", "0",
		NULL
	};
	conf = kafka_make_conf(log, producer, err);
	if (!conf)
		return -EINVAL;
	rd_kafka_conf_set_opaque(conf, log);
	rd_kafka_conf_set_dr_msg_cb(conf, pos_delivery);
	log->pos_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
				   sizeof(errstr));
	if (!log->pos_rk) {
		rd_kafka_conf_destroy(conf);
		return rl_err_set(err, EINVAL, "log kafka:%s: %s", log->brokers,
				  errstr);
	}
	return 0;
}

int kafka_pos_put(struct rl_log *base, const char *name,
		  const void *buf, size_t len, struct rl_err *err)
{
	struct kafka_log *log = KLOG(base);
	char topic[TOPIC_MAX];
	rd_kafka_resp_err_t e;
	int rc = 0;

	followers_topic(log, topic);
	pthread_mutex_lock(&log->pos_lock);
	if (!log->pos_rk)
		rc = pos_producer(log, err);
	if (rc < 0) {
		pthread_mutex_unlock(&log->pos_lock);
		return rc;
	}
	rd_kafka_poll(log->pos_rk, 0);	/* reports of earlier publishes */
	e = rd_kafka_producev(log->pos_rk, RD_KAFKA_V_TOPIC(topic),
			      RD_KAFKA_V_PARTITION(0),
			      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			      RD_KAFKA_V_KEY(name, strlen(name)),
			      RD_KAFKA_V_VALUE((void *)buf, buf ? len : 0),
			      RD_KAFKA_V_END);
	pthread_mutex_unlock(&log->pos_lock);
	if (e)
		return rl_err_set(err, EIO, "follower positions: topic %s: "
				  "produce: %s", topic, rd_kafka_err2str(e));
	return 0;
}

void kafka_pos_close(struct kafka_log *log)
{
	if (!log->pos_rk)
		return;
	if (rd_kafka_flush(log->pos_rk, log->timeout_ms) != 0) {
		char topic[TOPIC_MAX];

		followers_topic(log, topic);
		rl_msg(RL_LOG_ERR, "kafka log: topic %s: %d follower "
			"position reports not delivered within %d ms", topic,
			rd_kafka_outq_len(log->pos_rk), log->timeout_ms);
	}
	rd_kafka_destroy(log->pos_rk);
	log->pos_rk = NULL;
}

/* The newest value of one key while listing. */
struct pos_entry {
	char key[RL_FOLLOWER_NAME_MAX + 1];
	void *val;		/* NULL: forgotten (a tombstone) */
	size_t len;
	int64_t offset;
};

static int pos_note(struct pos_entry **v, size_t *n, size_t *cap,
		    const char *topic, const rd_kafka_message_t *m,
		    struct rl_err *err)
{
	struct pos_entry *p = NULL;

	if (!m->key || m->key_len == 0 || m->key_len > RL_FOLLOWER_NAME_MAX ||
	    memchr(m->key, '\0', m->key_len))
		return rl_err_set(err, EBADMSG, "follower positions: topic %s "
				  "offset %" PRId64 ": bad key (want a "
				  "follower name)", topic, m->offset);
	for (size_t i = 0; i < *n && !p; i++)
		if (strlen((*v)[i].key) == m->key_len &&
		    memcmp((*v)[i].key, m->key, m->key_len) == 0)
			p = &(*v)[i];
	if (!p) {
		if (rl_grow(v, cap, *n + 1, sizeof(**v)) < 0)
			return rl_err_set(err, ENOMEM, "out of memory");
		p = &(*v)[(*n)++];
		memset(p, 0, sizeof(*p));
		memcpy(p->key, m->key, m->key_len);
	}
	free(p->val);
	p->val = NULL;
	p->len = 0;
	p->offset = m->offset;
	if (m->payload) {
		p->val = malloc(m->len ? m->len : 1);
		if (!p->val)
			return rl_err_set(err, ENOMEM, "out of memory");
		memcpy(p->val, m->payload, m->len);
		p->len = m->len;
	}
	return 0;
}

int kafka_pos_scan(struct rl_log *base,
		   int (*each)(void *opaque, const char *name,
			       const void *buf, size_t len,
			       const char *where, struct rl_err *err),
		   void *opaque, struct rl_err *err)
{
	struct kafka_log *log = KLOG(base);
	char topic[TOPIC_MAX], errstr[512];
	struct pos_entry *v = NULL;
	size_t n = 0, cap = 0;
	rd_kafka_t *rk = NULL;
	rd_kafka_topic_t *rkt = NULL;
	rd_kafka_conf_t *conf;
	rd_kafka_resp_err_t e;
	int64_t lo, hi, deadline;
	int replicas, partitions, rc;

	followers_topic(log, topic);
	rc = kafka_topic_lookup(log, topic, &replicas, &partitions, err);
	if (rc <= 0)
		return rc;	/* 0: no follower ever published */
	e = kafka_topic_offset(log, topic, RD_KAFKA_OFFSET_BEGINNING,
			       log->timeout_ms, &lo);
	if (!e)
		e = kafka_topic_offset(log, topic, RD_KAFKA_OFFSET_END,
				       log->timeout_ms, &hi);
	if (e)
		return rl_err_set(err, e == RD_KAFKA_RESP_ERR__TIMED_OUT ?
				  ETIMEDOUT : EIO, "follower positions: topic "
				  "%s: high watermark: %s", topic,
				  rd_kafka_err2str(e));
	if (hi <= lo)
		return 0;
	const char *const consumer[] = {
		"enable.auto.commit", "false",
		"enable.auto.offset.store", "false",
		"auto.offset.reset", "earliest",
		"enable.partition.eof", "true",
		"fetch.wait.max.ms", "100",
		"socket.nagle.disable", "true",
		NULL
	};
	conf = kafka_make_conf(log, consumer, err);
	if (!conf)
		return -EINVAL;
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		return rl_err_set(err, EINVAL, "follower positions: topic %s: "
				  "consumer: %s", topic, errstr);
	}
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (!rkt || rd_kafka_consume_start(rkt, 0,
					   RD_KAFKA_OFFSET_BEGINNING) < 0) {
		rc = rl_err_set(err, EIO, "follower positions: topic %s: start "
				"consumer: %s", topic,
				rd_kafka_err2str(rd_kafka_last_error()));
		if (rkt)
			rd_kafka_topic_destroy(rkt);
		rd_kafka_destroy(rk);
		return rc;
	}
	/* every offset below hi is there (or was dropped): read up to hi - 1
	 * or the end the broker reports, whichever comes first */
	deadline = rl_clock_ms(CLOCK_MONOTONIC) + log->timeout_ms + 5000;
	rc = 0;
	for (;;) {
		int64_t left = deadline - rl_clock_ms(CLOCK_MONOTONIC);
		rd_kafka_message_t *m;

		if (left <= 0) {
			rc = rl_err_set(err, ETIMEDOUT, "follower positions: "
					"topic %s: offsets up to %" PRId64 " "
					"did not arrive within %d ms", topic,
					hi - 1, log->timeout_ms + 5000);
			break;
		}
		m = rd_kafka_consume(rkt, 0, (int)left);
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(m);
			break;
		}
		if (m->err) {
			rc = rl_err_set(err, EIO, "follower positions: topic "
					"%s: consume: %s", topic,
					rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			break;
		}
		rc = pos_note(&v, &n, &cap, topic, m, err);
		bool last = m->offset >= hi - 1;

		rd_kafka_message_destroy(m);
		if (rc < 0 || last)
			break;
	}
	rd_kafka_consume_stop(rkt, 0);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	for (size_t i = 0; i < n && rc == 0; i++) {
		char where[TOPIC_MAX + 64];

		if (!v[i].val)
			continue;
		snprintf(where, sizeof(where), "topic %s offset %" PRId64,
			 topic, v[i].offset);
		rc = each(opaque, v[i].key, v[i].val, v[i].len, where, err);
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].val);
	free(v);
	return rc;
}
