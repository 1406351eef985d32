/* Helpers shared by the libFuzzer harnesses of tests/fuzz (fuzz_common.c).
 *
 * Each harness is one program: libFuzzer calls LLVMFuzzerTestOneInput()
 * once per input, in one process, for as long as it runs.  What a harness
 * puts on disk goes under one temporary directory per process, made on
 * first use and removed at exit (a crash leaves it: tests/fuzz/run.sh
 * points TMPDIR at a directory of its own and removes that).  A broken
 * property is a crash: fuzz_fail() prints why and aborts, which libFuzzer
 * reports with the input that did it.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "replog.h"

/* libFuzzer's entry points (it declares none itself for C). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The disk whose stream, checkpoint or report the harnesses write; the
 * seed corpus (gen_corpus.c) uses it too.  FORMAT.md's example disk,
 * 0f8e7d6c-5b4a-4938-8271-605f4e3d2c1b. */
#define FUZZ_DISK { { 0x0f, 0x8e, 0x7d, 0x6c, 0x5b, 0x4a, 0x49, 0x38, \
		      0x82, 0x71, 0x60, 0x5f, 0x4e, 0x3d, 0x2c, 0x1b } }
extern const struct rl_uuid fuzz_disk;

/* The per-process temporary directory (made on first call; replog's
 * diagnostics are dropped from then on: they are expected, and libFuzzer's
 * output is for findings). */
const char *fuzz_dir(void);
/* Removes everything below dir, leaving dir. */
void fuzz_clear(const char *dir);
/* mkdir 0700 and a whole file, or fuzz_fail(): the harness's own set-up
 * must not fail. */
void fuzz_mkdir(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fuzz_write(const char *path, const void *buf, size_t len);

void fuzz_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* Recomputes the checks of the record in rec[0, len) as if its payload
 * were what follows its version's header: random mutations almost never
 * get past an XXH3 or a BLAKE2b, so the harnesses also try each input
 * with its checks made right. */
void fuzz_fix_checksum(uint8_t *rec, size_t len);
/* The same for every whole record of a segment body, walked by headers. */
void fuzz_fix_checksums(uint8_t *body, size_t len);

/* The harnesses' deployment keys: key 1, from a fixed master key, so that
 * the sealed seeds gen_corpus makes open in the harnesses.  Loaded once
 * (from a key file written and removed again). */
const struct rl_keyring *fuzz_keys(void);
/* Writes that key file (mode 0600) at path, for a log's --key-file. */
void fuzz_key_file(const char *path);

/* The round trip of a decoded record: it must encode (decode and encode
 * apply the same field rules) and decode again to the same fields.  With
 * orig (the bytes it was decoded from), a version-3 record without a key
 * stored uncompressed must also encode to exactly those bytes: one
 * record, one encoding.  A sealed record is sealed again with its key
 * from fuzz_keys() (another nonce: other bytes).  what names the caller in a failure. */
void fuzz_check_record(const struct rl_record *r, const void *orig,
		       size_t orig_len, const char *what);

#endif /* FUZZ_COMMON_H */
