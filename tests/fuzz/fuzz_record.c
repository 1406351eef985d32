/* Fuzz harness: one record's bytes, as a log hands them to a reader.
 *
 * The input is a record of any version (FORMAT.md): rl_record_size() looks
 * at its first 96 bytes and rl_record_decode() at all of it, once as it is
 * and once with its checks made right (fuzz_fix_checksum), so that
 * mutations reach the field rules, the names and the zstd frames behind
 * the XXH3 (version 3) or the BLAKE2b (versions 1 and 2).
 * Each input is decoded by two decoders, reused as readers reuse theirs:
 * one without keys, and one with the harness's key (fuzz_keys), which
 * opens sealed records and refuses records without a key.
 *
 * Checked beyond "no crash":
 *   - a refusal is -EBADMSG, -EPROTO, -ENOKEY or -ENOMEM with its code and a
 *     message in the rl_err; rl_record_size refuses what decode refuses
 *     for its header, and a header it accepts spans at most its header
 *     and 16 MiB;
 *   - a record that decodes is as long as its header says, encodes again
 *     (plain and with zstd) and decodes to the same fields, data and
 *     name; a version-3 one stored plain re-encodes to the very bytes it
 *     came from (fuzz_check_record).
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct rl_decoder dec, keyed;	/* without keys; with them */

static void decode_with(struct rl_decoder *d, const uint8_t *buf, size_t len,
			const char *what)
{
	struct rl_err err = { 0 };
	struct rl_record r;
	int rc = rl_record_decode(d, buf, len, &r, &err);

	if (rc < 0) {
		if (rc != -EBADMSG && rc != -EPROTO && rc != -ENOKEY &&
		    rc != -ENOMEM)
			fuzz_fail("%s: decode returned %d", what, rc);
		if (err.code != -rc || !err.msg[0])
			fuzz_fail("%s: decode returned %d with code %d, "
				  "message \"%s\"", what, rc, err.code,
				  err.msg);
		return;
	}
	if (len != (r.version >= 3 ? RL_RECORD_HDR_SIZE : RL_RECORD_HDR_MIN) +
		   (size_t)r.stored_len)
		fuzz_fail("%s: decoded %zu bytes as a record of %u stored "
			  "payload bytes", what, len, r.stored_len);
	if (r.key_id && !d->keys)
		fuzz_fail("%s: a sealed record opened without keys", what);
	if (!r.key_id && d->keys)
		fuzz_fail("%s: a record without a key accepted by a reader "
			  "with keys", what);
	fuzz_check_record(&r, buf, len, what);
}

static void decode_one(const uint8_t *buf, size_t len, const char *what)
{
	keyed.keys = fuzz_keys();
	decode_with(&dec, buf, len, what);
	decode_with(&keyed, buf, len, what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)fuzz_dir();	/* quiet replog: nothing is written */
	if (size >= RL_RECORD_HDR_MIN) {
		struct rl_err err = { 0 }, derr = { 0 };
		struct rl_record r;
		ssize_t n = rl_record_size(data, &err);

		if (n < 0) {
			if ((n != -EBADMSG && n != -EPROTO) ||
			    err.code != -n || !err.msg[0])
				fuzz_fail("rl_record_size returned %zd with "
					  "code %d, message \"%s\"", n,
					  err.code, err.msg);
			/* decode checks the header first, the same way */
			if (rl_record_decode(&dec, data, size, &r, &derr) !=
			    (int)n)
				fuzz_fail("rl_record_size refuses (%s), decode "
					  "does not say the same (%s)",
					  err.msg, derr.msg);
		} else if (n < RL_RECORD_HDR_MIN ||
			   n > (ssize_t)(RL_RECORD_HDR_SIZE +
					 RL_RECORD_MAX_PAYLOAD)) {
			fuzz_fail("rl_record_size accepts a record of %zd "
				  "bytes", n);
		}
	}
	decode_one(data, size, "as given");
	if (size >= RL_RECORD_HDR_MIN) {
		uint8_t *copy = malloc(size);

		if (!copy)
			return 0;
		memcpy(copy, data, size);
		fuzz_fix_checksum(copy, size);
		decode_one(copy, size, "checks fixed");
		free(copy);
	}
	return 0;
}
