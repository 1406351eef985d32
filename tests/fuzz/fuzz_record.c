/* Fuzz harness: one record's bytes, as a log hands them to a reader.
 *
 * The input is a record (FORMAT.md): rl_record_check_header() looks at its
 * first 96 bytes and rl_record_decode() at all of it, once as it is and
 * once with its checksum made right (fuzz_fix_checksum), so that mutations
 * reach the field rules, the names and the zstd frames behind the BLAKE2b.
 * One decoder serves every input, as a reader's does.
 *
 * Checked beyond "no crash":
 *   - a refusal is -EBADMSG, -EPROTO or -ENOMEM with its code and a
 *     message in the rl_err; check_header refuses what decode refuses
 *     for its header, and a header it accepts says at most 16 MiB;
 *   - a record that decodes is as long as its header says, encodes again
 *     (plain and with zstd) and decodes to the same fields, data and
 *     name; stored plain with its type's version, it re-encodes to the
 *     very bytes it came from (fuzz_check_record).
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct rl_decoder dec;	/* reused, as readers reuse theirs */

static void decode_one(const uint8_t *buf, size_t len, const char *what)
{
	struct rl_err err = { 0 };
	struct rl_record r;
	int rc = rl_record_decode(&dec, buf, len, &r, &err);

	if (rc < 0) {
		if (rc != -EBADMSG && rc != -EPROTO && rc != -ENOMEM)
			fuzz_fail("%s: decode returned %d", what, rc);
		if (err.code != -rc || !err.msg[0])
			fuzz_fail("%s: decode returned %d with code %d, "
				  "message \"%s\"", what, rc, err.code,
				  err.msg);
		return;
	}
	if (len != RL_RECORD_HDR_SIZE + (size_t)r.stored_len)
		fuzz_fail("%s: decoded %zu bytes as a record of %u stored "
			  "payload bytes", what, len, r.stored_len);
	fuzz_check_record(&r, buf, len, what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)fuzz_dir();	/* quiet replog: nothing is written */
	if (size >= RL_RECORD_HDR_SIZE) {
		struct rl_err err = { 0 }, derr = { 0 };
		struct rl_record r;
		ssize_t stored = rl_record_check_header(data, &err);

		if (stored < 0) {
			if ((stored != -EBADMSG && stored != -EPROTO) ||
			    err.code != -stored || !err.msg[0])
				fuzz_fail("check_header returned %zd with "
					  "code %d, message \"%s\"", stored,
					  err.code, err.msg);
			/* decode checks the header first, the same way */
			if (rl_record_decode(&dec, data, size, &r, &derr) !=
			    (int)stored)
				fuzz_fail("check_header refuses (%s), decode "
					  "does not say the same (%s)",
					  err.msg, derr.msg);
		} else if (stored > (ssize_t)RL_RECORD_MAX_PAYLOAD) {
			fuzz_fail("check_header accepts %zd payload bytes",
				  stored);
		}
	}
	decode_one(data, size, "as given");
	if (size >= RL_RECORD_HDR_SIZE) {
		uint8_t *copy = malloc(size);

		if (!copy)
			return 0;
		memcpy(copy, data, size);
		fuzz_fix_checksum(copy, size);
		decode_one(copy, size, "checksum fixed");
		free(copy);
	}
	return 0;
}
