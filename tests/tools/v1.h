/* Records as writers before version 3 wrote them (docs/FORMAT.md,
 * "Versions 1 and 2"), for the tests of reading old logs: replog reads
 * versions 1 and 2 but writes only version 3. */
#ifndef TESTS_V1_H
#define TESTS_V1_H

#include <stddef.h>
#include <stdint.h>

/* Recomputes the BLAKE2b-256 checksum of the version-1 or -2 record in
 * rec[0, len), as if its payload were rec[96, len). */
void v1_seal(uint8_t *rec, size_t len);

/* Writes into out (room for len bytes; not rec) the version-1 form
 * (version 2 for SKIP) of the version-3 record without a key in rec[0,
 * len): the same fields, no time, a 96-byte header.  Returns its length,
 * 32 bytes less. */
size_t v1_downgrade(const uint8_t *rec, size_t len, uint8_t *out);

#endif /* TESTS_V1_H */
