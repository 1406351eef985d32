/* The Kafka log's options and librdkafka configurations.
 *
 * kafka_parse_where() fills a struct kafka_log from the log URI and struct
 * rl_log_opts (the options are described at the top of log_kafka.c: opts
 * first, the URI's query string overrides); kafka_make_conf() makes every
 * librdkafka configuration the backend uses, the metadata handle's, the
 * producers', the readers' consumers, from the brokers and the operator's
 * properties with the contract's settings applied last, so that they win.
 * Apart from the rest because it is the one place that turns text into
 * settings: the producer, topics and readers only read the result. */
#include "kafka_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int parse_int(const char *v, int min, int max, int *out)
{
	uint64_t n;

	if (rl_parse_u64(v, (uint64_t)max, &n, NULL) < 0 || n < (uint64_t)min)
		return -1;
	*out = (int)n;
	return 0;
}

static int add_prop(struct kafka_log *log, const char *kv, size_t len,
		    struct rl_err *err)
{
	if (log->nprops >= PROPS_MAX)
		return rl_err_set(err, EINVAL, "log kafka: more than %d "
				  "properties", PROPS_MAX);
	if (!memchr(kv, '=', len))
		return rl_err_set(err, EINVAL, "log kafka: property \"%.*s\" "
				  "is not key=value", (int)len, kv);
	log->props[log->nprops] = strndup(kv, len);
	if (!log->props[log->nprops])
		return rl_err_set(err, ENOMEM, "out of memory");
	log->nprops++;
	return 0;
}

static int parse_option(struct kafka_log *log, const char *kv, size_t len,
			struct rl_err *err)
{
	char key[64], val[512];
	const char *eq = memchr(kv, '=', len);
	size_t klen = eq ? (size_t)(eq - kv) : len;

	if (!eq || klen == 0 || klen >= sizeof(key) ||
	    len - klen - 1 >= sizeof(val))
		return rl_err_set(err, EINVAL, "log kafka: bad option \"%.*s\" "
				  "(want KEY=VALUE)", (int)len, kv);
	memcpy(key, kv, klen);
	key[klen] = '\0';
	memcpy(val, eq + 1, len - klen - 1);
	val[len - klen - 1] = '\0';

	if (strcmp(key, "ns") == 0) {
		if (!*val || strlen(val) > NS_MAX ||
		    strspn(val, "abcdefghijklmnopqrstuvwxyz"
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != strlen(val))
			return rl_err_set(err, EINVAL, "log kafka: bad namespace "
					  "\"%s\" (letters, digits, _ and -)",
					  val);
		memcpy(log->ns, val, strlen(val) + 1);	/* <= NS_MAX */
	} else if (strcmp(key, "rf") == 0) {
		if (parse_int(val, 1, 64, &log->rf) < 0)
			return rl_err_set(err, EINVAL, "log kafka: bad rf \"%s\"",
					  val);
	} else if (strcmp(key, "min_insync") == 0) {
		if (parse_int(val, 1, 64, &log->min_insync) < 0)
			return rl_err_set(err, EINVAL, "log kafka: bad "
					  "min_insync \"%s\"", val);
	} else if (strcmp(key, "timeout_ms") == 0) {
		if (parse_int(val, 1, 3600000, &log->timeout_ms) < 0)
			return rl_err_set(err, EINVAL, "log kafka: bad "
					  "timeout_ms \"%s\"", val);
	} else if (strcmp(key, "max_message") == 0) {
		if (parse_int(val, 65536, 1 << 30, &log->max_message) < 0)
			return rl_err_set(err, EINVAL, "log kafka: bad "
					  "max_message \"%s\" (bytes, at "
					  "least 65536)", val);
	} else if (strncmp(key, "kafka.", 6) == 0 && key[6]) {
		return add_prop(log, kv + 6, len - 6, err);
	} else {
		return rl_err_set(err, EINVAL, "log kafka: unknown option \"%s\" "
				  "(known: ns, rf, min_insync, timeout_ms, "
				  "max_message, kafka.PROPERTY)", key);
	}
	return 0;
}

int kafka_parse_where(struct kafka_log *log, const char *where,
		      const struct rl_log_opts *opts, struct rl_err *err)
{
	const char *q = strchr(where, '?');
	size_t blen = q ? (size_t)(q - where) : strlen(where);
	int rc;

	snprintf(log->ns, sizeof(log->ns), "%s", "default");
	log->rf = opts->kafka_replication > 0 ? opts->kafka_replication : 3;
	log->min_insync = opts->kafka_min_insync > 0 ? opts->kafka_min_insync : 2;
	log->timeout_ms = opts->kafka_timeout_ms > 0 ? opts->kafka_timeout_ms :
			  30000;
	log->max_message = 1048588;	/* Kafka's default message.max.bytes */
	if (opts->kafka_namespace) {
		char kv[NS_MAX + 8];

		snprintf(kv, sizeof(kv), "ns=%s", opts->kafka_namespace);
		rc = parse_option(log, kv, strlen(kv), err);
		if (rc < 0)
			return rc;
	}
	for (const char *const *p = opts->kafka_props; p && *p; p++) {
		rc = add_prop(log, *p, strlen(*p), err);
		if (rc < 0)
			return rc;
	}
	if (blen == 0 || blen >= sizeof(log->brokers))
		return rl_err_set(err, EINVAL, "log kafka:%s: want "
				  "HOST:PORT[,HOST:PORT...]", where);
	memcpy(log->brokers, where, blen);
	log->brokers[blen] = '\0';
	while (q && *q) {
		const char *kv = q + 1, *amp = strchr(kv, '&');
		size_t len = amp ? (size_t)(amp - kv) : strlen(kv);

		if (len > 0) {
			rc = parse_option(log, kv, len, err);
			if (rc < 0)
				return rc;
		}
		q = amp;
	}
	return 0;
}

/* A librdkafka configuration with the brokers and the operator's
 * properties, then ours where `fixed` (ours win: they are the contract). */
rd_kafka_conf_t *kafka_make_conf(struct kafka_log *log,
				 const char *const *fixed, struct rl_err *err)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[512];

	if (rd_kafka_conf_set(conf, "bootstrap.servers", log->brokers, errstr,
			      sizeof(errstr)) != RD_KAFKA_CONF_OK)
		goto bad;
	rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
	/* librdkafka checks message timeouts of a partition whose broker is
	 * down only between reconnect attempts, which back off up to 10 s by
	 * default: an append would then fail up to 10 s late, and the first
	 * ones after the broker returns too.  1 s keeps the bound close. */
	rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "1000", NULL, 0);
	/* A broker that stops answering (paused, a VM frozen, a cut link
	 * that drops packets) keeps its connections open: librdkafka waits
	 * socket.timeout.ms (60 s by default) for each request before it
	 * gives up on that broker and looks for the partition's new leader.
	 * A third of the write timeout (at least 5 s) leaves time for the
	 * retry to the new leader before the write fails. */
	char sock[16];

	snprintf(sock, sizeof(sock), "%d", log->timeout_ms / 3 < 5000 ? 5000 :
		 log->timeout_ms / 3);
	rd_kafka_conf_set(conf, "socket.timeout.ms", sock, NULL, 0);
	for (size_t i = 0; i < log->nprops; i++) {
		char *kv = log->props[i], *eq = strchr(kv, '=');

		*eq = '\0';
		rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, kv, eq + 1,
							    errstr,
							    sizeof(errstr));
		*eq = '=';
		if (res != RD_KAFKA_CONF_OK)
			goto bad;
	}
	for (const char *const *p = fixed; p && *p; p += 2)
		if (rd_kafka_conf_set(conf, p[0], p[1], errstr,
				      sizeof(errstr)) != RD_KAFKA_CONF_OK)
			goto bad;
	return conf;
bad:
	rd_kafka_conf_destroy(conf);
	rl_err_set(err, EINVAL, "log kafka:%s: %s", log->brokers, errstr);
	return NULL;
}
