/* Fuzz harness: a data directory's catalog state, DATADIR/.repdisk/catalog
 * (FILELOG.md, "Catalog state"), as a damaged or planted file may read.
 *
 * The input is the file's contents; rl_catalog_open() reads it, as every
 * mount, follower and tool does before anything else.
 *
 * Checked beyond "no crash":
 *   - a refusal comes with its code and a message;
 *   - a catalog that opens lists its disks consistently (the count, then
 *     the copies), every name passes rl_name_check() and is found by name
 *     and every uuid by uuid; every skip is found by rl_catalog_skipped()
 *     and its note is printable; the owner is terminated.
 */
#include "fuzz_common.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char datadir[PATH_MAX], path[PATH_MAX + 64];
	struct rl_err err = { 0 };
	struct rl_catalog *cat;
	struct rl_disk_info *v;
	const struct rl_skip *skips;
	size_t n, ns;
	int rc;

	fuzz_clear(fuzz_dir());
	snprintf(datadir, sizeof(datadir), "%s/data", fuzz_dir());
	fuzz_mkdir("%s", datadir);
	fuzz_mkdir("%s/.repdisk", datadir);
	snprintf(path, sizeof(path), "%s/.repdisk/catalog", datadir);
	fuzz_write(path, data, size);

	rc = rl_catalog_open(datadir, &cat, &err);
	if (rc < 0) {
		if (err.code != -rc || !err.msg[0])
			fuzz_fail("catalog open returned %d, code %d, message "
				  "\"%s\"", rc, err.code, err.msg);
		return 0;
	}
	n = rl_catalog_disks(cat, NULL, 0);
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		fuzz_fail("out of memory");
	if (rl_catalog_disks(cat, v, n) != n)
		fuzz_fail("catalog: the disk count changed");
	for (size_t i = 0; i < n; i++) {
		struct rl_disk_info d;
		struct rl_err e;

		if (strnlen(v[i].name, sizeof(v[i].name)) > RL_NAME_MAX)
			fuzz_fail("catalog: name not terminated");
		if (rl_name_check(v[i].name, &e) < 0)
			fuzz_fail("catalog: disk name \"%s\": %s", v[i].name,
				  e.msg);
		if (rl_catalog_find_name(cat, v[i].name, &d) < 0)
			fuzz_fail("catalog: disk \"%s\" not found by name",
				  v[i].name);
		if (rl_catalog_find_uuid(cat, &v[i].uuid, &d) < 0)
			fuzz_fail("catalog: disk \"%s\" not found by uuid",
				  v[i].name);
	}
	free(v);
	ns = rl_catalog_skips(cat, &skips);
	for (size_t i = 0; i < ns; i++) {
		size_t len = strnlen(skips[i].note, sizeof(skips[i].note));

		if (len >= sizeof(skips[i].note))
			fuzz_fail("catalog: skip note not terminated");
		for (size_t j = 0; j < len; j++)
			if (skips[i].note[j] < 0x20 || skips[i].note[j] >= 0x7f)
				fuzz_fail("catalog: skip note has byte 0x%02x",
					  (unsigned char)skips[i].note[j]);
		if (!rl_catalog_skipped(cat, &skips[i].disk, skips[i].pos))
			fuzz_fail("catalog: a skip it lists is not skipped");
	}
	if (strnlen(rl_catalog_owner(cat), RL_NAME_MAX + 1) > RL_NAME_MAX)
		fuzz_fail("catalog: owner not terminated");
	rl_catalog_close(cat);
	return 0;
}
