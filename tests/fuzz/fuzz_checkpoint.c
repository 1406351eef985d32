/* Fuzz harness: a disk's checkpoint file, DATADIR/.repdisk/ckpt/UUID
 * (FILELOG.md, "Checkpoint"), as a damaged or planted file may read.
 *
 * The input is the file's contents, written under fuzz_disk's name and
 * read with rl_checkpoint_read(), which every image open runs.
 *
 * Checked beyond "no crash":
 *   - a refusal comes with a message; a missing file is the only -ENOENT;
 *   - a checkpoint that reads has an owner of at most RL_NAME_MAX bytes
 *     of printable ASCII with no blank (one word, what rl_claim_owner()
 *     makes), and survives rl_checkpoint_write() then a read unchanged.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char dir[PATH_MAX], path[PATH_MAX + 64], u[RL_UUID_STRLEN + 1];
	struct rl_checkpoint c, back;
	struct rl_err err = { 0 };
	int rc;

	fuzz_clear(fuzz_dir());
	snprintf(dir, sizeof(dir), "%s/ckpt", fuzz_dir());
	fuzz_mkdir("%s", dir);
	rl_uuid_format(&fuzz_disk, u);
	snprintf(path, sizeof(path), "%s/%s", dir, u);
	fuzz_write(path, data, size);

	rc = rl_checkpoint_read(dir, &fuzz_disk, &c, &err);
	if (rc < 0) {
		if (rc == -ENOENT || err.code != -rc || !err.msg[0])
			fuzz_fail("checkpoint read returned %d, code %d, "
				  "message \"%s\"", rc, err.code, err.msg);
		return 0;
	}
	size_t olen = strnlen(c.owner, sizeof(c.owner));

	if (olen > RL_NAME_MAX)
		fuzz_fail("checkpoint owner not terminated");
	for (size_t i = 0; i < olen; i++)
		if (c.owner[i] <= ' ' || c.owner[i] >= 0x7f)
			fuzz_fail("checkpoint owner has byte 0x%02x",
				  (unsigned char)c.owner[i]);

	if (rl_checkpoint_write(dir, &fuzz_disk, &c, &err) < 0)
		fuzz_fail("checkpoint write: %s", err.msg);
	if (rl_checkpoint_read(dir, &fuzz_disk, &back, &err) < 0)
		fuzz_fail("a checkpoint written from one read does not read: "
			  "%s", err.msg);
	if (back.next_pos != c.next_pos || back.epoch != c.epoch ||
	    back.last_seq != c.last_seq || strcmp(back.owner, c.owner) != 0)
		fuzz_fail("a checkpoint written from one read reads otherwise");
	return 0;
}
