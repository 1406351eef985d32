/* The command-line options of a log that every program shares.
 *
 * `repdisk mount`, `follow`, `status` and `log` all open a log and take
 * the same options for it, so they parse them with one function:
 *
 *   --namespace NS          kafka: topics repdisk.NS.*
 *   --write-timeout SECS    kafka: an append not acknowledged by then fails
 *   -o kafka.PROP=VALUE     kafka: any librdkafka property (TLS, SASL, ...)
 *   --kafka-config FILE     kafka: PROP=VALUE lines, '#' comments; for
 *                           secrets, which should not be on a command line
 *   --key-file FILE         the deployment's keys (keys.c): records are
 *                           sealed with the newest and opened with theirs
 *
 * Options in the log URI's query string (see log_kafka.c) override these.
 * The file log ignores them: appends to a local file do not wait for a
 * quorum, and a failing disk fails them at once.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where the value of a "kafka.KEY=" in s begins, at or after s, or NULL;
 * *end is set to where it ends ('&' or the end of s). */
static char *secret_value(const char *s, const char **end)
{
	for (const char *p = strstr(s, "kafka."); p; p = strstr(p + 1, "kafka.")) {
		const char *k = p + 6;

		k += strspn(k, "abcdefghijklmnopqrstuvwxyz"
			       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
		if (*k == '=' && k > p + 6) {
			*end = k + 1 + strcspn(k + 1, "&");
			return (char *)(k + 1);
		}
	}
	return NULL;
}

void rl_redact(const char *s, char *out, size_t size)
{
	size_t n = 0;
	const char *v, *end;

	if (!size)
		return;
	while ((v = secret_value(s, &end))) {
		n += (size_t)snprintf(out + (n < size ? n : size - 1),
				      n < size ? size - n : 1, "%.*s***",
				      (int)(v - s), s);
		s = end;
	}
	snprintf(out + (n < size ? n : size - 1), n < size ? size - n : 1,
		 "%s", s);
}

void rl_argv_scrub(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *end;
		char *v = argv[i];

		while ((v = secret_value(v, &end))) {
			memset(v, '*', (size_t)(end - v));
			v = (char *)end;
		}
	}
}

static int add_prop(struct rl_log_opts *o, const char *kv, struct rl_err *err)
{
	size_t n = 0;
	char **props = (char **)o->kafka_props, *dup;

	if (!strchr(kv, '=') || kv[0] == '=')
		return rl_err_set(err, EINVAL, "kafka property \"%.*s\" is not "
				  "PROPERTY=VALUE", (int)strcspn(kv, " \t:"),
				  kv);
	while (props && props[n])
		n++;
	dup = strdup(kv);
	props = dup ? realloc(props, (n + 2) * sizeof(*props)) : NULL;
	if (!props) {
		free(dup);
		return rl_err_set(err, ENOMEM, "out of memory");
	}
	props[n] = dup;
	props[n + 1] = NULL;
	o->kafka_props = (const char *const *)props;
	return 0;
}

static int load_config(struct rl_log_opts *o, const char *path,
		       struct rl_err *err)
{
	FILE *f = fopen(path, "re");
	char line[4096];
	int rc = 0, lineno = 0;
	struct stat st;

	if (!f)
		return rl_err_set(err, errno, "kafka config %s: %s", path,
				  strerror(errno));
	/* it holds secrets: only its owner, who runs us, may read it */
	if (fstat(fileno(f), &st) < 0 || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		rc = rl_err_set(err, EPERM, "kafka config %s: %s (mode %04o, "
				"uid %u): it holds secrets; make it the user's "
				"own, mode 0600", path, st.st_uid != geteuid() ?
				"not owned by this user" :
				"readable by group or others",
				(unsigned)(st.st_mode & 07777),
				(unsigned)st.st_uid);
		fclose(f);
		return rc;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char *s = line, *e;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			rc = rl_err_set(err, EINVAL, "kafka config %s:%d: line "
					"too long", path, lineno);
			break;
		}
		s += strspn(s, " \t");
		e = s + strlen(s);
		while (e > s && strchr(" \t\r\n", e[-1]))
			*--e = '\0';
		if (*s == '\0' || *s == '#')
			continue;
		if (!strchr(s, '=') || *s == '=') {
			/* never echoed: the line may hold a secret */
			rc = rl_err_set(err, EINVAL, "kafka config %s:%d: want "
					"PROPERTY=VALUE (the line is not shown: "
					"it may hold a secret)", path, lineno);
			break;
		}
		rc = add_prop(o, s, err);
	}
	fclose(f);
	return rc;
}

int rl_log_opts_set(struct rl_log_opts *o, const char *opt, const char *val,
		    struct rl_err *err)
{
	if (strcmp(opt, "namespace") == 0) {
		o->kafka_namespace = val;
		return 0;
	}
	if (strcmp(opt, "write-timeout") == 0) {
		char *end;
		double s;

		errno = 0;
		s = strtod(val, &end);
		if (errno || end == val || *end || !(s >= 0.001 && s <= 3600))
			return rl_err_set(err, EINVAL, "--write-timeout \"%s\": "
					  "want seconds, 0.001 to 3600", val);
		o->kafka_timeout_ms = (int)(s * 1000 + 0.5);
		return 0;
	}
	if (strcmp(opt, "kafka-config") == 0)
		return load_config(o, val, err);
	if (strcmp(opt, "key-file") == 0) {
		o->key_file = val;	/* loaded (and checked) at rl_log_open */
		return 0;
	}
	if (strcmp(opt, "o") == 0) {
		if (strncmp(val, "kafka.", 6) != 0 || !val[6])
			return rl_err_set(err, EINVAL, "-o %s: only kafka."
					  "PROPERTY=VALUE options are log "
					  "options", val);
		return add_prop(o, val + 6, err);
	}
	return rl_err_set(err, EINVAL, "unknown log option --%s", opt);
}

void rl_log_opts_free(struct rl_log_opts *o)
{
	char **props = (char **)o->kafka_props;

	for (size_t i = 0; props && props[i]; i++)
		free(props[i]);
	free(props);
	o->kafka_props = NULL;
}
