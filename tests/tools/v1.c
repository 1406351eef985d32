/* Records as writers before version 3 wrote them: see v1.h.  The first 60
 * header bytes (magic to payload length) are laid out alike in every
 * version, so a version-3 record becomes a version-1 one by its version
 * number, 4 reserved zero bytes and the checksum, with no time and no
 * version-3 checks. */
#include "v1.h"

#include <string.h>

#include <sodium.h>

#include "replog.h"

#define V1_OFF_CHECKSUM 64

void v1_seal(uint8_t *rec, size_t len)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, rec + RL_RECORD_HDR_MIN,
				  len - RL_RECORD_HDR_MIN);
	crypto_generichash_update(&st, rec, V1_OFF_CHECKSUM);
	crypto_generichash_final(&st, rec + V1_OFF_CHECKSUM, 32);
}

size_t v1_downgrade(const uint8_t *rec, size_t len, uint8_t *out)
{
	size_t payload = len - RL_RECORD_HDR_SIZE;

	memcpy(out, rec, 60);
	out[4] = rec[6] == RL_SKIP ? 2 : 1;
	out[5] = 0;
	memset(out + 60, 0, RL_RECORD_HDR_MIN - 60);
	memcpy(out + RL_RECORD_HDR_MIN, rec + RL_RECORD_HDR_SIZE, payload);
	v1_seal(out, RL_RECORD_HDR_MIN + payload);
	return RL_RECORD_HDR_MIN + payload;
}
