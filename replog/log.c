/* The log front end: picks a backend by URI scheme and dispatches to its
 * operations table.  Backends are listed here explicitly (no constructor
 * self-registration, which static linking would silently drop). */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static const struct rl_backend *const backends[] = {
	&rl_backend_file,
	&rl_backend_kafka,
};

int rl_log_open(const char *uri, unsigned flags, const struct rl_log_opts *opts,
		struct rl_log **out, struct rl_err *err)
{
	static const struct rl_log_opts defaults;
	struct rl_keyring *keys = NULL;
	const char *where = uri;
	int rc;
	const struct rl_backend *be = &rl_backend_file;	/* a bare path */
	size_t n = strspn(uri, "abcdefghijklmnopqrstuvwxyz");

	if (!opts)
		opts = &defaults;
	if (n > 0 && uri[n] == ':') {
		be = NULL;
		for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
			if (strlen(backends[i]->scheme) == n &&
			    strncmp(uri, backends[i]->scheme, n) == 0)
				be = backends[i];
		}
		if (!be)
			return rl_err_set(err, EINVAL, "log %s: unknown scheme "
					  "\"%.*s\" (known: file, kafka)", uri,
					  (int)n, uri);
		where = uri + n + 1;
	}
	if (*where == '\0')
		return rl_err_set(err, EINVAL, "log %s: no location", uri);
	if (opts->key_file) {
		rc = rl_keyring_load(opts->key_file, &keys, err);
		if (rc < 0)
			return rc;
	}
	rc = be->open(where, flags, opts, out, err);
	if (rc < 0) {
		rl_keyring_free(keys);
		return rc;
	}
	(*out)->keys = keys;
	return rc;
}

void rl_log_close(struct rl_log *log)
{
	struct rl_keyring *keys;

	if (!log)
		return;
	keys = log->keys;	/* the backend frees log */
	log->be->close(log);
	rl_keyring_free(keys);
}

const struct rl_keyring *rl_log_keys(const struct rl_log *log)
{
	return log ? log->keys : NULL;
}

const struct rl_key *rl_log_seal_key(const struct rl_log *log)
{
	return rl_keyring_newest(rl_log_keys(log));
}

int rl_log_stream(struct rl_log *log, const struct rl_uuid *disk,
		  struct rl_stream **out, struct rl_err *err)
{
	return log->be->stream(log, disk, out, err);
}

int rl_log_list(struct rl_log *log, struct rl_uuid *uuids, size_t max,
		struct rl_err *err)
{
	return log->be->list(log, uuids, max, err);
}

int rl_log_append(struct rl_stream *s, const void *rec, size_t len,
		  rl_append_cb cb, void *opaque)
{
	if (!(s->log->flags & RL_LOG_WRITE))
		return -EROFS;
	return s->log->be->append(s, rec, len, cb, opaque);
}

static void sync_done(void *opaque, int err, uint64_t pos)
{
	rl_waiter_done(opaque, err, pos);
}

int64_t rl_log_append_sync(struct rl_stream *s, const void *rec, size_t len,
			   struct rl_err *err)
{
	struct rl_waiter w = RL_WAITER_INIT;
	int rc = rl_log_append(s, rec, len, sync_done, &w);

	if (rc < 0)
		return rl_err_layer(err, RL_ERR_LOG,
				    rl_err_set(err, -rc, "log append refused: "
					       "%s", strerror(-rc)));
	rc = rl_waiter_wait(&w);
	if (rc < 0)
		/* the backend's reason, set before it completed the append */
		return rl_err_layer(err, RL_ERR_LOG,
				    rl_err_set(err, -rc, "log append failed: "
					       "%s", s->fail_why[0] ?
					       s->fail_why : strerror(-rc)));
	return (int64_t)w.pos;
}

const struct rl_uuid *rl_stream_disk(const struct rl_stream *s)
{
	return &s->disk;
}

int rl_log_trim(struct rl_stream *s, uint64_t keep_from, struct rl_err *err)
{
	if (!(s->log->flags & RL_LOG_WRITE))
		return -EROFS;
	if (!s->log->be->trim)
		return -EOPNOTSUPP;
	return s->log->be->trim(s, keep_from, err);
}

int rl_log_bytes_from(struct rl_stream *s, uint64_t from, uint64_t *bytes,
		      struct rl_err *err)
{
	int rc = s->log->be->bytes_from ? s->log->be->bytes_from(s, from, bytes) :
		 -EOPNOTSUPP;

	if (rc < 0)
		return rl_err_layer(err, rc == -ERANGE ? RL_ERR_RECORD :
				    RL_ERR_LOG,
				    rl_err_set(err, -rc, "log bytes from "
					       "position %" PRIu64 ": %s", from,
					       strerror(-rc)));
	return rc;
}

size_t rl_stream_max_record(const struct rl_stream *s)
{
	return s->log->max_record;
}

int rl_log_end(struct rl_stream *s, uint64_t *end, struct rl_err *err)
{
	int rc = s->log->be->end(s, end);

	if (rc < 0)
		return rl_err_layer(err, RL_ERR_LOG,
				    rl_err_set(err, -rc, "log end: %s",
					       strerror(-rc)));
	return rc;
}

int rl_reader_open(struct rl_stream *s, uint64_t pos, struct rl_reader **out,
		   struct rl_err *err)
{
	return s->log->be->reader_open(s, pos, out, err);
}

int rl_reader_next(struct rl_reader *r, struct rl_record *rec, uint64_t *pos,
		   int timeout_ms, struct rl_err *err)
{
	return r->stream->log->be->reader_next(r, rec, pos, timeout_ms, err);
}

void rl_reader_close(struct rl_reader *r)
{
	if (r)
		r->stream->log->be->reader_close(r);
}
