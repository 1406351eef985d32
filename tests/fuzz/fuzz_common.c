/* Helpers shared by the harnesses: the temporary directory, file set-up,
 * checksum fix-ups and the record round trip (see fuzz_common.h). */
#include "fuzz_common.h"
#include "v1.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <xxhash.h>

const struct rl_uuid fuzz_disk = FUZZ_DISK;

static char fuzz_root[PATH_MAX];

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz: property broken: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static int rm_one(const char *path, const struct stat *st, int type,
		  struct FTW *ftw)
{
	(void)st;
	if (ftw->level == 0)
		return 0;	/* the directory itself stays */
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0 &&
	    errno != ENOENT)
		fuzz_fail("remove %s: %s", path, strerror(errno));
	return 0;
}

void fuzz_clear(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fuzz_cleanup(void)
{
	if (fuzz_root[0]) {
		fuzz_clear(fuzz_root);
		rmdir(fuzz_root);
	}
}

static void fuzz_drop_msg(enum rl_log_level level, const char *msg, void *arg)
{
	(void)level;
	(void)msg;
	(void)arg;
}

const char *fuzz_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	if (fuzz_root[0])
		return fuzz_root;
	snprintf(fuzz_root, sizeof(fuzz_root), "%s/repdisk-fuzz-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fuzz_root))
		fuzz_fail("mkdtemp %s: %s", fuzz_root, strerror(errno));
	atexit(fuzz_cleanup);
	rl_set_log_func(fuzz_drop_msg, NULL);
	return fuzz_root;
}

void fuzz_mkdir(const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		fuzz_fail("mkdir %s: %s", path, strerror(errno));
}

void fuzz_write(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *p = buf;

	if (fd < 0)
		fuzz_fail("create %s: %s", path, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			fuzz_fail("write %s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

void fuzz_key_file(const char *path)
{
	static const char text[] = "repdisk-keys 1\nkey 1 "
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

	fuzz_write(path, text, sizeof(text) - 1);
}

const struct rl_keyring *fuzz_keys(void)
{
	static struct rl_keyring *kr;
	char path[PATH_MAX];
	struct rl_err err = { 0 };

	if (kr)
		return kr;
	snprintf(path, sizeof(path), "%s/fuzz-keys", fuzz_dir());
	fuzz_key_file(path);
	if (rl_keyring_load(path, &kr, &err) < 0)
		fuzz_fail("fuzz keys: %s", err.msg);
	unlink(path);
	return kr;
}

/* Seals again, with its own key (fuzz_keys) and nonce, a version-3 record
 * whose payload is taken for plain text: FORMAT.md, "Keys". */
static void fix_sealed(uint8_t *rec, size_t len, uint32_t key_id)
{
	const struct rl_key *k = rl_keyring_find(fuzz_keys(), key_id);
	uint8_t aad[96];

	if (!k)
		return;
	memcpy(aad, rec, 96);
	memset(aad + 24, 0, 16);	/* epoch and seq */
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
		rec + RL_RECORD_HDR_SIZE, rec + 96, NULL,
		rec + RL_RECORD_HDR_SIZE, len - RL_RECORD_HDR_SIZE, aad,
		sizeof(aad), NULL, rec + 72, k->payload);
	crypto_generichash(rec + 112, 16, rec, 112, k->header,
			   sizeof(k->header));
}

/* FORMAT.md, "Checks": version 3, XXH3-128 of the payload as stored at
 * header byte 96 and of header[0, 112) at 112; versions 1 and 2,
 * BLAKE2b-256(payload as stored || header[0, 64)) at 64. */
void fuzz_fix_checksum(uint8_t *rec, size_t len)
{
	XXH128_canonical_t c;

	if (len < RL_RECORD_HDR_MIN)
		return;
	if ((rec[4] | rec[5] << 8) >= 3) {
		uint32_t key_id = (uint32_t)rec[60] | (uint32_t)rec[61] << 8 |
				  (uint32_t)rec[62] << 16 |
				  (uint32_t)rec[63] << 24;

		if (len < RL_RECORD_HDR_SIZE)
			return;
		if (key_id) {
			fix_sealed(rec, len, key_id);
			return;
		}
		XXH128_canonicalFromHash(&c, XXH3_128bits(rec + RL_RECORD_HDR_SIZE,
							   len - RL_RECORD_HDR_SIZE));
		memcpy(rec + 96, c.digest, 16);
		XXH128_canonicalFromHash(&c, XXH3_128bits(rec, 112));
		memcpy(rec + 112, c.digest, 16);
		return;
	}
	v1_seal(rec, len);
}

void fuzz_fix_checksums(uint8_t *body, size_t len)
{
	size_t off = 0;

	while (len - off >= RL_RECORD_HDR_MIN) {
		ssize_t size = rl_record_size(body + off, NULL);

		if (size < 0 || (size_t)size > len - off)
			return;
		fuzz_fix_checksum(body + off, (size_t)size);
		off += (size_t)size;
	}
}

static bool same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void compare(const struct rl_record *a, const struct rl_record *b,
		    const char *what, const char *how)
{
	const char *tn = rl_type_name(a->type);

	if (a->type != b->type || !rl_uuid_eq(&a->disk, &b->disk) ||
	    a->epoch != b->epoch || a->seq != b->seq ||
	    a->key_id != b->key_id ||
	    (a->time_ns && a->time_ns != b->time_ns) ||
	    a->offset != b->offset || a->length != b->length ||
	    a->mode != b->mode || a->uid != b->uid || a->gid != b->gid)
		fuzz_fail("%s: %s record %s decodes to other fields", what,
			  tn, how);
	if (!same_bytes(a->data, a->data_len, b->data, b->data_len))
		fuzz_fail("%s: %s record %s decodes to other data (%zu bytes, "
			  "then %zu)", what, tn, how, a->data_len, b->data_len);
	if (!a->name != !b->name || (a->name && strcmp(a->name, b->name) != 0))
		fuzz_fail("%s: %s record %s decodes to another name", what,
			  tn, how);
}

/* Encodes r with zstd_min, decodes the result and compares; returns the
 * encoded bytes (malloc'ed) in *out. */
static size_t round_trip(const struct rl_record *r, size_t zstd_min,
			 uint8_t **out, const char *what)
{
	size_t cap = rl_record_encoded_max(r);
	uint8_t *buf = malloc(cap);
	struct rl_decoder d;
	struct rl_record back;
	struct rl_err err = { 0 };
	ssize_t n;
	const char *how = zstd_min ? "re-encoded with zstd" : "re-encoded";

	const struct rl_key *key = NULL;

	if (!buf)
		fuzz_fail("%s: out of memory", what);
	if (r->key_id && !(key = rl_keyring_find(fuzz_keys(), r->key_id)))
		fuzz_fail("%s: opened a record of key %u, which the harness "
			  "does not have", what, r->key_id);
	n = rl_record_encode_key(r, zstd_min, key, buf, cap, &err);
	if (n < 0)
		fuzz_fail("%s: a decoded %s record does not encode: %s", what,
			  rl_type_name(r->type), err.msg);
	rl_decoder_init(&d);
	d.keys = key ? fuzz_keys() : NULL;
	if (rl_record_decode(&d, buf, (size_t)n, &back, &err) < 0)
		fuzz_fail("%s: a %s record %s does not decode: %s", what,
			  rl_type_name(r->type), how, err.msg);
	compare(r, &back, what, how);
	rl_decoder_free(&d);
	*out = buf;
	return (size_t)n;
}

void fuzz_check_record(const struct rl_record *r, const void *orig,
		       size_t orig_len, const char *what)
{
	uint8_t *buf;
	size_t n;

	if (!rl_type_name(r->type))
		fuzz_fail("%s: decoded a record of unknown type %d", what,
			  r->type);
	n = round_trip(r, 0, &buf, what);
	/* a version-3 record stored plain re-encodes to its very bytes
	 * (older versions are read, never written; a time of 0 is "now" to
	 * the encoder) */
	if (orig && r->codec == RL_CODEC_NONE && r->version == 3 &&
	    r->time_ns && !r->key_id) {
		if (!same_bytes(buf, n, orig, orig_len))
			fuzz_fail("%s: a %s record has two encodings (%zu "
				  "bytes read, %zu re-encoded)", what,
				  rl_type_name(r->type), orig_len, n);
	}
	free(buf);
	/* compressed, it must come back the same too (bounded: compressing
	 * megabytes per input would slow the fuzzer down for little) */
	if (r->type == RL_WRITE && r->data_len <= (1u << 20)) {
		round_trip(r, 1, &buf, what);
		free(buf);
	}
}
