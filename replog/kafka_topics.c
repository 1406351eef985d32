/* Topic administration of the Kafka log: topic names, metadata lookups,
 * creation, and the check of a topic's settings when a writer opens it.
 *
 * A writer's topic is created if missing (CreateTopics, or the broker's
 * auto-creation when the cluster names no controller, like the mock of
 * repdisk devbroker), then described (DescribeConfigs): settings that risk
 * acknowledged writes are warned about, a max.message.bytes below the
 * producer's batches is refused.  Why, and what is asked for, is in the
 * top comment of log_kafka.c.  Kept apart from the producer and readers:
 * this is the only code that uses the Admin API, and it runs when a stream
 * or the positions registry is first opened, never per record. */
#include "kafka_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


void kafka_topic_name(const struct kafka_log *log, const struct rl_uuid *disk,
		      char out[TOPIC_MAX])
{
	char u[RL_UUID_STRLEN + 1];

	if (!disk || rl_uuid_is_nil(disk)) {
		snprintf(out, TOPIC_MAX, "repdisk.%s.catalog", log->ns);
		return;
	}
	rl_uuid_format(disk, u);
	snprintf(out, TOPIC_MAX, "repdisk.%s.disk.%s", log->ns, u);
}

/* Looks topic up in the cluster's metadata: 1 with its replica count and
 * partition count, 0 if missing, or a negative errno. */
int kafka_topic_lookup(struct kafka_log *log, const char *topic,
		       int *replicas, int *partitions, struct rl_err *err)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t e = rd_kafka_metadata(log->rk, 1, NULL, &md,
						  log->timeout_ms);
	int found = 0;

	if (e) {
		char last[sizeof(log->last_error)];

		pthread_mutex_lock(&log->lock);
		snprintf(last, sizeof(last), "%s", log->last_error);
		pthread_mutex_unlock(&log->lock);
		return rl_err_set(err, EIO, "log kafka:%s: metadata: %s%s%s%s",
				  log->brokers, rd_kafka_err2str(e),
				  last[0] ? " (last error: " : "", last,
				  last[0] ? ")" : "");
	}
	for (int i = 0; i < md->topic_cnt; i++) {
		const rd_kafka_metadata_topic_t *t = &md->topics[i];

		if (strcmp(t->topic, topic) != 0 || t->err)
			continue;
		found = 1;
		*partitions = t->partition_cnt;
		*replicas = t->partition_cnt > 0 ?
			    t->partitions[0].replica_cnt : 0;
	}
	rd_kafka_metadata_destroy(md);
	return found;
}

static int topic_create(struct kafka_log *log, const char *topic,
			struct rl_err *err)
{
	char errstr[512], v[16];
	rd_kafka_NewTopic_t *nt;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	int rc = 0;

	nt = rd_kafka_NewTopic_new(topic, 1, log->rf, errstr, sizeof(errstr));
	if (!nt)
		return rl_err_set(err, EINVAL, "log kafka: topic %s: %s", topic,
				  errstr);
	snprintf(v, sizeof(v), "%d", log->min_insync);
	rd_kafka_NewTopic_set_config(nt, "min.insync.replicas", v);
	rd_kafka_NewTopic_set_config(nt, "retention.ms", "-1");
	rd_kafka_NewTopic_set_config(nt, "retention.bytes", "-1");
	rd_kafka_NewTopic_set_config(nt, "cleanup.policy",
				     kafka_topic_compacted(log, topic) ?
				     "compact" : "delete");
	snprintf(v, sizeof(v), "%d", log->max_message);
	rd_kafka_NewTopic_set_config(nt, "max.message.bytes", v);
	q = rd_kafka_queue_new(log->rk);
	rd_kafka_CreateTopics(log->rk, &nt, 1, NULL, q);
	ev = rd_kafka_queue_poll(q, log->timeout_ms + 5000);
	if (!ev) {
		rc = rl_err_set(err, ETIMEDOUT, "log kafka: create topic %s: "
				"no answer", topic);
	} else if (rd_kafka_event_error(ev)) {
		rc = rl_err_set(err, EIO, "log kafka: create topic %s: %s",
				topic, rd_kafka_event_error_string(ev));
	} else {
		const rd_kafka_CreateTopics_result_t *res =
			rd_kafka_event_CreateTopics_result(ev);
		size_t n = 0;
		const rd_kafka_topic_result_t **tr =
			rd_kafka_CreateTopics_result_topics(res, &n);

		for (size_t i = 0; i < n; i++) {
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
			const char *why = rd_kafka_topic_result_error_string(tr[i]);

			if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
				rc = rl_err_set(err, EIO, "log kafka: create "
						"topic %s: %s", topic,
						why ? why : rd_kafka_err2str(e));
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	return rc;
}

/* Whether the cluster names a controller among its brokers: CreateTopics
 * goes there.  librdkafka's mock cluster (2.0.2) names broker 0, which does
 * not exist, and does not implement CreateTopics: its clients wait for a
 * controller forever. */
static bool has_controller(struct kafka_log *log)
{
	const struct rd_kafka_metadata *md;
	int32_t id = rd_kafka_controllerid(log->rk, log->timeout_ms);
	bool found = false;

	if (id < 0 || rd_kafka_metadata(log->rk, 1, NULL, &md,
					log->timeout_ms) != 0)
		return false;
	for (int i = 0; i < md->broker_cnt; i++)
		found |= md->brokers[i].id == id;
	rd_kafka_metadata_destroy(md);
	return found;
}

/* Asks the broker to auto-create topic (a metadata request naming it). */
static int topic_autocreate(struct kafka_log *log, const char *topic,
			    struct rl_err *err)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(log->rk, topic, NULL);
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t e;

	if (!rkt)
		return rl_err_set(err, EINVAL, "log kafka: topic %s: %s", topic,
				  rd_kafka_err2str(rd_kafka_last_error()));
	e = rd_kafka_metadata(log->rk, 0, rkt, &md, log->timeout_ms);
	if (!e)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	if (e)
		return rl_err_set(err, EIO, "log kafka: topic %s: metadata: %s",
				  topic, rd_kafka_err2str(e));
	return 0;
}

/* What the cluster says of a topic's settings (Admin API DescribeConfigs):
 * -1 for one it did not report.  Only asked of clusters that name a
 * controller (not the development cluster's mock). */
struct topic_config {
	int min_insync;
	long long max_message;		/* max.message.bytes */
	int unclean;			/* unclean.leader.election.enable */
};

static void topic_describe(struct kafka_log *log, const char *topic,
			   struct topic_config *tc)
{
	rd_kafka_ConfigResource_t *res;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;

	tc->min_insync = -1;
	tc->max_message = -1;
	tc->unclean = -1;
	res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	if (!res)
		return;
	q = rd_kafka_queue_new(log->rk);
	rd_kafka_DescribeConfigs(log->rk, &res, 1, NULL, q);
	ev = rd_kafka_queue_poll(q, log->timeout_ms);
	if (ev && !rd_kafka_event_error(ev)) {
		const rd_kafka_DescribeConfigs_result_t *r =
			rd_kafka_event_DescribeConfigs_result(ev);
		size_t nres = 0, nent = 0;
		const rd_kafka_ConfigResource_t **rs =
			r ? rd_kafka_DescribeConfigs_result_resources(r, &nres)
			  : NULL;
		const rd_kafka_ConfigEntry_t **ents = nres ?
			rd_kafka_ConfigResource_configs(rs[0], &nent) : NULL;

		for (size_t i = 0; i < nent; i++) {
			const char *name = rd_kafka_ConfigEntry_name(ents[i]);
			const char *val = rd_kafka_ConfigEntry_value(ents[i]);

			if (!name || !val)
				continue;
			if (strcmp(name, "min.insync.replicas") == 0)
				tc->min_insync = atoi(val);
			else if (strcmp(name, "max.message.bytes") == 0)
				tc->max_message = atoll(val);
			else if (strcmp(name,
					"unclean.leader.election.enable") == 0)
				tc->unclean = strcmp(val, "true") == 0;
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_ConfigResource_destroy(res);
}

/* The topic exists (created if missing), with settings that keep
 * acknowledged writes (warned about otherwise) and that take the
 * producer's batches (refused otherwise). */
int kafka_topic_ensure(struct kafka_log *log, const char *topic,
		       struct rl_err *err)
{
	int replicas = 0, partitions = 0;
	int rc = kafka_topic_lookup(log, topic, &replicas, &partitions, err);
	bool autocreated = false;

	if (rc == 0) {
		if (has_controller(log)) {
			rc = topic_create(log, topic, err);
		} else {
			static atomic_bool warned;

			/* once per process: every topic gets the same */
			if (!atomic_exchange(&warned, true))
				rl_msg(RL_LOG_WARNING, "kafka log: warning: "
					"the cluster at %s names no controller "
					"(like the mock of repdisk devbroker), "
					"so it cannot create topics: they are "
					"auto-created with the brokers' "
					"defaults, not with replication factor "
					"%d and min.insync.replicas %d (first: "
					"%s)", log->brokers, log->rf,
					log->min_insync, topic);
			rc = topic_autocreate(log, topic, err);
			autocreated = true;
		}
		if (rc < 0)
			return rc;
		/* wait until the metadata shows it */
		for (int i = 0; i < 100; i++) {
			rc = kafka_topic_lookup(log, topic, &replicas,
						&partitions, err);
			if (rc != 0)
				break;
			struct timespec t = { 0, 50 * 1000000 };

			nanosleep(&t, NULL);
		}
		if (rc == 0)
			return rl_err_set(err, EIO, "log kafka: topic %s: "
					  "created but not in the metadata",
					  topic);
	}
	if (rc < 0)
		return rc;
	/* a cluster that cannot create topics was warned about above */
	if (partitions != 1 && !autocreated && has_controller(log))
		rl_msg(RL_LOG_WARNING, "kafka log: warning: topic %s has %d "
			"partitions; only partition 0 is used", topic,
			partitions);
	if (replicas < log->rf)
		rl_msg(RL_LOG_WARNING, "kafka log: warning: topic %s has "
			"replication factor %d, less than the %d asked for",
			topic, replicas, log->rf);
	if (!autocreated && has_controller(log)) {
		struct topic_config tc;

		topic_describe(log, topic, &tc);
		if (tc.min_insync >= 0 && tc.min_insync < log->min_insync)
			rl_msg(RL_LOG_WARNING, "kafka log: warning: topic %s "
				"has min.insync.replicas %d, less than the %d "
				"asked for: a write is acknowledged once %d "
				"replica%s it (raise it with kafka-configs "
				"--alter --add-config min.insync.replicas=%d)",
				topic, tc.min_insync, log->min_insync,
				tc.min_insync,
				tc.min_insync == 1 ? " has" : "s have",
				log->min_insync);
		if (tc.unclean == 1)
			rl_msg(RL_LOG_WARNING, "kafka log: warning: topic %s "
				"has unclean.leader.election.enable=true: a "
				"replica that is not in sync can become leader "
				"and acknowledged writes can be lost (set it to "
				"false with kafka-configs --alter --add-config "
				"unclean.leader.election.enable=false)", topic);
		/* The broker applies max.message.bytes to a whole batch of
		 * records, and the producer makes batches up to its own
		 * message.max.bytes (max_message) for every topic alike: a
		 * topic that takes less would refuse batches. */
		if (tc.max_message >= 0 && tc.max_message < log->max_message)
			return rl_err_set(err, EINVAL, "log kafka: topic %s "
					  "takes messages of at most %lld bytes "
					  "(max.message.bytes), less than the %d "
					  "this log sends: give max_message=%lld "
					  "in the log URI, or raise the topic's "
					  "max.message.bytes to %d", topic,
					  tc.max_message, log->max_message,
					  tc.max_message, log->max_message);
	}
	return 0;
}

/* rd_kafka_query_watermark_offsets() would do, but in librdkafka before
 * 2.3.0 it waits without bound while the broker it asks is down: it
 * loops until an answer comes and never looks at its timeout (librdkafka
 * issue #2588, fixed by pull request #4460 in 2.3.0).  A catalog sync
 * stuck in it held the catalog lock until the cluster came back.
 * rd_kafka_offsets_for_times() keeps to its timeout, and sends the same
 * ListOffsets request: a timestamp of -1 (RD_KAFKA_OFFSET_END) asks for
 * the latest offset, -2 (RD_KAFKA_OFFSET_BEGINNING) for the earliest. */
rd_kafka_resp_err_t kafka_topic_offset(struct kafka_log *log,
				       const char *topic, int64_t which,
				       int timeout_ms, int64_t *out)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_resp_err_t e;

	rd_kafka_topic_partition_list_add(l, topic, 0)->offset = which;
	e = rd_kafka_offsets_for_times(log->rk, l, timeout_ms);
	if (!e)
		e = l->elems[0].err;
	if (!e)
		*out = l->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(l);
	return e;
}
