/* Private to the Kafka backend: what its files share.
 *
 * The backend is one log split by concern (see "Files" at the top of
 * log_kafka.c, which also holds the design): the producer, streams and
 * readers in log_kafka.c, options and librdkafka configurations in
 * kafka_conf.c, topic administration in kafka_topics.c, the
 * follower-positions registry in kafka_positions.c.  They share struct
 * kafka_log and the calls below; everything else stays static in its
 * file.  Nothing outside these files includes this. */
#ifndef REPLOG_KAFKA_INTERNAL_H
#define REPLOG_KAFKA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "internal.h"

#define TOPIC_MAX	(RL_UUID_STRLEN + 256)
#define NS_MAX		200
#define PROPS_MAX	64

struct kafka_log {
	struct rl_log base;
	char brokers[1024];
	char ns[NS_MAX + 1];
	int rf, min_insync, timeout_ms;
	int max_message;		/* the brokers' message size limit */
	char last_error[256];		/* the cluster's last complaint */
	char *props[PROPS_MAX];		/* "key=value", owned */
	size_t nprops;
	rd_kafka_t *rk;			/* metadata, admin, watermarks */
	/* The writer's producer.  Replaced by the poller thread after a fatal
	 * error, under the write lock; appends produce under the read lock. */
	rd_kafka_t *prod;
	pthread_rwlock_t prod_lock;
	rd_kafka_conf_t *prod_conf;	/* a copy, for the next producer */
	pthread_t poller;
	bool poller_started;
	atomic_bool stop;
	pthread_mutex_t lock;		/* streams, inflight, fatal */
	pthread_cond_t cond;		/* a delivery report ran */
	struct kafka_stream *streams;
	uint64_t inflight;
	int fatal;			/* -EIO until a new producer runs */
	char fatal_msg[512];
	/* Follower positions: a producer of their own, made by the first
	 * publish (a follower's log is a reader's and has none).  Lock order:
	 * pos_lock, then lock. */
	pthread_mutex_t pos_lock;
	rd_kafka_t *pos_rk;		/* protected by pos_lock */
	bool pos_failing;		/* printed a failure, under pos_lock */
};

#define KLOG(b) ((struct kafka_log *)(b))

/* log_kafka.c */

/* kafka_conf.c */
/* Sets log's brokers and options from where and opts; -EINVAL with err. */
int kafka_parse_where(struct kafka_log *log, const char *where,
		      const struct rl_log_opts *opts, struct rl_err *err);
/* A librdkafka configuration with the brokers and the operator's
 * properties, then the pairs of `fixed` (NULL-terminated); NULL with err. */
rd_kafka_conf_t *kafka_make_conf(struct kafka_log *log,
				 const char *const *fixed, struct rl_err *err);

/* kafka_topics.c */
/* The topic of disk's stream (NULL or nil: the catalog's) into out. */
void kafka_topic_name(const struct kafka_log *log, const struct rl_uuid *disk,
		      char out[TOPIC_MAX]);
/* 1 with topic's replica and partition counts, 0 if missing, or -errno. */
int kafka_topic_lookup(struct kafka_log *log, const char *topic,
		       int *replicas, int *partitions, struct rl_err *err);
/* Creates topic if missing, warns of risky settings, refuses one whose
 * max.message.bytes is below the producer's batches: 0 or -errno. */
int kafka_topic_ensure(struct kafka_log *log, const char *topic,
		       struct rl_err *err);
/* An offset of partition 0 of topic, asked of its leader within
 * timeout_ms: which is RD_KAFKA_OFFSET_END (the high watermark) or
 * RD_KAFKA_OFFSET_BEGINNING (the low one).  Use it, never
 * rd_kafka_query_watermark_offsets(): see kafka_topics.c. */
rd_kafka_resp_err_t kafka_topic_offset(struct kafka_log *log,
				       const char *topic, int64_t which,
				       int timeout_ms, int64_t *out);

/* kafka_positions.c */
/* Whether topic is created compacted (the follower-positions topic). */
bool kafka_topic_compacted(const struct kafka_log *log, const char *topic);
/* The backend's pos_put and pos_scan (struct rl_backend, internal.h). */
int kafka_pos_put(struct rl_log *base, const char *name, const void *buf,
		  size_t len, struct rl_err *err);
int kafka_pos_scan(struct rl_log *base,
		   int (*each)(void *opaque, const char *name,
			       const void *buf, size_t len,
			       const char *where, struct rl_err *err),
		   void *opaque, struct rl_err *err);
/* Flushes and destroys the positions producer, if any (at log close). */
void kafka_pos_close(struct kafka_log *log);

#endif /* REPLOG_KAFKA_INTERNAL_H */
