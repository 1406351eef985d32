/* Fuzz harness: follower reports, LOGDIR/followers/NAME (positions.c has
 * the format), which any process that can write the log directory plants.
 *
 * The input is up to three reports separated by the line "--8<--"; each
 * is stored as followers/f0, f1, f2, unless it starts with "@NAME\n",
 * which stores it under NAME (a name rl_follower_name_check() may refuse;
 * never one with '/' or a leading '.').  rl_positions_list() on a reader's
 * log reads them all: the decoder is static in positions.c, and the file
 * log's registry is the way a hostile report reaches it.
 *
 * Checked beyond "no crash":
 *   - a refusal comes with its code and a message;
 *   - a listing has one report per file, sorted by name, each named as
 *     its file, with its positions sorted by disk, no disk twice, each
 *     found by rl_positions_find();
 *   - each report published again (rl_positions_publish(), the canonical
 *     encoding) lists the same: time, positions and, for disks, the time
 *     they were caught up.  (The catalog's line takes a caught-up time on
 *     reading but is written without one; followers never set it.)
 */
#include "fuzz_common.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEP "\n--8<--\n"
#define MAX_REPORTS 3

static void check_list(const struct rl_positions *v, int n)
{
	for (int i = 0; i < n; i++) {
		const struct rl_positions *p = &v[i];
		struct rl_err e;

		if (rl_follower_name_check(p->name, &e) < 0)
			fuzz_fail("positions: listed name: %s", e.msg);
		if (i > 0 && strcmp(v[i - 1].name, p->name) >= 0)
			fuzz_fail("positions: names not sorted");
		if (p->time_ms < 0 || !p->sorted)
			fuzz_fail("positions: %s: time %lld, sorted %d",
				  p->name, (long long)p->time_ms, p->sorted);
		for (size_t j = 0; j < p->n; j++) {
			const struct rl_position *q = &p->pos[j];
			bool nil = rl_uuid_is_nil(&q->disk);

			if (j > 0 && memcmp(p->pos[j - 1].disk.b, q->disk.b,
					    16) >= 0)
				fuzz_fail("positions: %s: disks not sorted or "
					  "named twice", p->name);
			if (rl_positions_find(p, nil ? NULL : &q->disk) != q)
				fuzz_fail("positions: %s: a position not "
					  "found", p->name);
			if (q->caught_up_ms < 0)
				fuzz_fail("positions: negative caught_up_ms");
		}
		(void)rl_retention_bound(v, (size_t)n, &fuzz_disk, UINT64_MAX);
	}
}

static void compare_lists(const struct rl_positions *a,
			  const struct rl_positions *b, int n)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(a[i].name, b[i].name) != 0 ||
		    a[i].time_ms != b[i].time_ms || a[i].n != b[i].n)
			fuzz_fail("positions: %s published again lists "
				  "otherwise", a[i].name);
		for (size_t j = 0; j < a[i].n; j++) {
			const struct rl_position *p = &a[i].pos[j];
			const struct rl_position *q = &b[i].pos[j];

			if (!rl_uuid_eq(&p->disk, &q->disk) ||
			    p->next_pos != q->next_pos ||
			    (!rl_uuid_is_nil(&p->disk) &&
			     p->caught_up_ms != q->caught_up_ms))
				fuzz_fail("positions: %s published again has "
					  "other positions", a[i].name);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[PATH_MAX], pdir[PATH_MAX + 16], path[PATH_MAX + 128];
	const char *p = (const char *)data, *endp = p + size;
	struct rl_err err = { 0 };
	struct rl_positions *v, *w;
	char names[MAX_REPORTS][RL_FOLLOWER_NAME_MAX + 8];
	struct rl_log *log;
	int n, m, files = 0;

	fuzz_clear(fuzz_dir());
	snprintf(dir, sizeof(dir), "%s/log", fuzz_dir());
	snprintf(pdir, sizeof(pdir), "%s/followers", dir);
	fuzz_mkdir("%s", dir);
	fuzz_mkdir("%s", pdir);
	for (int i = 0; i < MAX_REPORTS && p; i++) {
		const char *sep = i + 1 < MAX_REPORTS ?
				  memmem(p, (size_t)(endp - p), SEP,
					 strlen(SEP)) : NULL;
		const char *q = sep ? sep : endp;
		char *name = names[i];

		snprintf(name, sizeof(names[i]), "f%d", i);
		if (q > p && *p == '@') {
			const char *nl = memchr(p, '\n', (size_t)(q - p));
			size_t len = nl ? (size_t)(nl - p - 1) : 0;

			if (nl && len > 0 && len < sizeof(names[i]) &&
			    !memchr(p + 1, '/', len) &&
			    !memchr(p + 1, '\0', len) && p[1] != '.') {
				memcpy(name, p + 1, len);
				name[len] = '\0';
				p = nl + 1;
			}
		}
		snprintf(path, sizeof(path), "%s/%s", pdir, name);
		fuzz_write(path, p, (size_t)(q - p));
		files++;
		for (int j = 0; j < i; j++)
			if (strcmp(names[j], name) == 0)
				files--;	/* the same file again */
		p = sep ? sep + strlen(SEP) : NULL;
	}

	if (rl_log_open(dir, 0, NULL, &log, &err) < 0)
		fuzz_fail("open log %s: %s", dir, err.msg);
	n = rl_positions_list(log, &v, &err);
	if (n < 0) {
		if (err.code != -n || !err.msg[0])
			fuzz_fail("positions list returned %d, code %d, "
				  "message \"%s\"", n, err.code, err.msg);
		rl_log_close(log);
		return 0;
	}
	if (n != files)
		fuzz_fail("positions: %d files list as %d reports", files, n);
	check_list(v, n);
	for (int i = 0; i < n; i++)
		if (rl_positions_publish(log, &v[i], &err) < 0)
			fuzz_fail("positions: publish %s again: %s", v[i].name,
				  err.msg);
	m = rl_positions_list(log, &w, &err);
	if (m != n)
		fuzz_fail("positions: %d reports published again list as %d "
			  "(%s)", n, m, m < 0 ? err.msg : "");
	compare_lists(v, w, n);
	rl_positions_free(v, (size_t)n);
	rl_positions_free(w, (size_t)m);
	rl_log_close(log);
	return 0;
}
