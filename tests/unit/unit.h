/* Helpers shared by the replog unit tests (check framework). */
#ifndef REPDISK_UNIT_H
#define REPDISK_UNIT_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "replog.h"

#define UNIT_SKIP 77

/* The test binary's own temporary directory, made by unit_main() under
 * ${TMPDIR:-/tmp} and removed when the binary ends (whether tests pass or
 * not: check runs each test in a child, this runs in the parent). */
extern char unit_base[4096];

/* Runs the suite (CK_ENV output) in a fresh unit_base; returns the exit
 * status for main(). */
int unit_main(Suite *s);

/* Makes a new empty directory under unit_base, named after tag, into out
 * (PATH_MAX bytes). */
void unit_tmpdir(const char *tag, char *out, size_t size);

/* snprintf() into a path buffer, asserting the result fits. */
void unit_path(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sends stderr to the file path (truncated) until unit_stderr_end(), which
 * returns what was written there (malloc'ed, NUL-terminated). */
int unit_stderr_begin(const char *path);
char *unit_stderr_end(int saved, const char *path);

/* Removes path and everything under it. */
void unit_rm_rf(const char *path);

/* A deterministic pseudo-random generator (splitmix64). */
uint64_t unit_rand(uint64_t *state);
void unit_fill_random(void *buf, size_t n, uint64_t *state);

/* Encodes r (asserting success) into a malloc'ed buffer; returns its size. */
size_t unit_encode(const struct rl_record *r, size_t zstd_min, uint8_t **out);

/* Reads a whole file into a malloc'ed buffer (asserting success). */
size_t unit_read_file(const char *path, uint8_t **out);
void unit_write_file(const char *path, const void *buf, size_t len);
void unit_append_file(const char *path, const void *buf, size_t len);
uint64_t unit_file_size(const char *path);

/* Compares two files byte for byte (sizes too).  Returns -1 when they are
 * equal, else the first differing byte offset (or the shorter size). */
int64_t unit_file_cmp(const char *a, const char *b);

/* A uuid with every byte set to b (never nil for b != 0). */
struct rl_uuid unit_uuid(uint8_t b);

#endif
