/* Records: the versioned binary format of every change to a disk.
 *
 * Design notes
 * ------------
 * A record is a fixed header followed by a payload (docs/FORMAT.md has the
 * byte layout).  All integers are little-endian.  Writers write version 3:
 * a 128-byte header whose last 32 bytes are two XXH3-128 checks, one of
 * the stored payload and one of the header's first 112 bytes (which hold
 * the payload's), so any flipped bit anywhere in a record is caught before
 * a byte of it is applied.  XXH3 runs at ~19 GB/s a core here, where the
 * BLAKE2b-256 of versions 1 and 2 ran at ~1 GB/s and took half of the
 * mount's CPU (docs/BENCHMARKS.md): a check against accidents, as
 * BLAKE2b unkeyed was too.
 *
 * Sealed with a key (keys.c), the same two fields authenticate instead:
 * the payload is encrypted with XChaCha20-Poly1305 under a random 192-bit
 * nonce, with the header's first 96 bytes (epoch and seq still 0) as
 * associated data, and its tag is the payload check; the header check is
 * a BLAKE2b-128 keyed with a second key, over the header with epoch and
 * seq.  A random 192-bit nonce repeats with odds of about 2^-97 after
 * 2^48 records under one key, whatever the writers do: crashes,
 * restarts, takeovers, zombies and racing claims need no argument, and
 * nothing about a nonce has to be remembered (see FORMAT.md, "Keys").
 *
 * Checking the payload apart from the header lets a writer compress and
 * check in parallel threads and stamp the epoch and sequence number (which
 * must follow log order) later, under its lock, at the cost of hashing 112
 * bytes: rl_record_prepare() then rl_record_seal().
 *
 * Versions 1 and 2 (a 96-byte header ending in a BLAKE2b-256 of the
 * payload and the header's first 64 bytes) are still read: a stream may
 * hold all three.  The first 96 bytes of every version give its size
 * (rl_record_size), which is all a log needs to frame records.
 *
 * Decoding is strict and all-or-nothing: every field is checked against
 * the rules of its type (lengths add up, reserved bytes are zero, offsets
 * do not overflow, names are valid), the checks are verified, and a zstd
 * payload must decompress to exactly the declared length.  Only then is the
 * caller's struct filled in, so a bad record is never partly seen.
 *
 * WRITE payloads of at least `zstd_min` bytes are compressed with zstd at
 * level 1 (fast: this runs on the write path) and kept compressed only when
 * that saves space.  Compression contexts are per thread and reused.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <xxhash.h>
#include <zstd.h>

#define RL_MAGIC	0x524c4452u	/* "RDLR" as little-endian bytes */
#define OFF_MAGIC	0
#define OFF_VERSION	4
#define OFF_TYPE	6
#define OFF_CODEC	7
#define OFF_DISK	8
#define OFF_EPOCH	24
#define OFF_SEQ		32
#define OFF_OFFSET	40
#define OFF_LENGTH	48
#define OFF_PAYLOAD_LEN	56
#define OFF_KEY_ID	60	/* version 3; 1 and 2: reserved, 0 */
/* versions 1 and 2 */
#define V1_OFF_CHECKSUM	64
#define V1_CHECKSUM_LEN	32
#define V1_HDR_SIZE	96
/* version 3 */
#define OFF_TIME	64
#define OFF_NONCE	72
#define NONCE_LEN	24	/* 0 without a key */
#define OFF_PAYLOAD_CHECK 96
#define OFF_HEADER_CHECK 112
#define CHECK_LEN	16

#define ATTR_LEN	12	/* mode, uid, gid */
#define HOST_MAX	255
#define SKIP_NOTE_MAX	1024
#define ZSTD_LEVEL	1

_Static_assert(V1_OFF_CHECKSUM + V1_CHECKSUM_LEN == V1_HDR_SIZE &&
	       V1_HDR_SIZE == RL_RECORD_HDR_MIN, "version 1 header layout");
_Static_assert(OFF_NONCE + NONCE_LEN == OFF_PAYLOAD_CHECK &&
	       OFF_HEADER_CHECK + CHECK_LEN == RL_RECORD_HDR_SIZE,
	       "version 3 header layout");

#define KEY_HCHECK_BYTES 16	/* keyed BLAKE2b output */
#define AAD_LEN		96	/* header bytes the AEAD authenticates */

static size_t hdr_size(unsigned version)
{
	return version >= 3 ? RL_RECORD_HDR_SIZE : V1_HDR_SIZE;
}

const char *rl_type_name(enum rl_type t)
{
	switch (t) {
	case RL_WRITE: return "WRITE";
	case RL_ZERO: return "ZERO";
	case RL_DISCARD: return "DISCARD";
	case RL_RESIZE: return "RESIZE";
	case RL_CLAIM: return "CLAIM";
	case RL_MARK: return "MARK";
	case RL_CREATE: return "CREATE";
	case RL_RENAME: return "RENAME";
	case RL_DELETE: return "DELETE";
	case RL_SETATTR: return "SETATTR";
	case RL_SKIP: return "SKIP";
	}
	return NULL;
}

/* A version-3 check: XXH3-128, stored in its canonical (big-endian) form. */
static void check128(const void *p, size_t len, uint8_t out[CHECK_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits(p, len));
	memcpy(out, c.digest, CHECK_LEN);
}

/* The BLAKE2b-256 checksum of versions 1 and 2, over the payload, then
 * the header's first 64 bytes. */
static void v1_checksum(const uint8_t *hdr, const void *payload, size_t len,
			uint8_t out[V1_CHECKSUM_LEN])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, V1_CHECKSUM_LEN);
	if (len)
		crypto_generichash_update(&st, payload, len);
	crypto_generichash_update(&st, hdr, V1_OFF_CHECKSUM);
	crypto_generichash_final(&st, out, V1_CHECKSUM_LEN);
}

/* The rules every record of a type obeys, whether encoded or decoded.
 * `stored` is the payload length as stored, `raw` the payload after
 * decompression.  Returns 0 or -EBADMSG/-EINVAL-style code via err. */
static int check_fields(const struct rl_record *r, size_t stored, size_t raw,
			int code, struct rl_err *err)
{
	const char *tn = rl_type_name(r->type);

	if (!tn)
		return rl_err_set(err, code, "unknown record type %d", r->type);
	if (r->codec != RL_CODEC_NONE && r->codec != RL_CODEC_ZSTD)
		return rl_err_set(err, code, "%s record: unknown codec %d", tn,
				  r->codec);
	if (r->codec == RL_CODEC_ZSTD && r->type != RL_WRITE)
		return rl_err_set(err, code, "%s record: only WRITE payloads "
				  "may be compressed", tn);
	if (stored > RL_RECORD_MAX_PAYLOAD)
		return rl_err_set(err, code, "%s record: payload of %zu bytes, "
				  "at most %u", tn, stored, RL_RECORD_MAX_PAYLOAD);
	if (r->codec == RL_CODEC_NONE && stored != raw)
		return rl_err_set(err, code, "%s record: stored length %zu "
				  "differs from length %zu", tn, stored, raw);
	if (r->codec == RL_CODEC_ZSTD && (stored == 0 || stored >= raw))
		return rl_err_set(err, code, "%s record: compressed payload of "
				  "%zu bytes for %zu bytes of data", tn, stored,
				  raw);
	/* a CLAIM of the nil disk claims the catalog stream */
	if (rl_uuid_is_nil(&r->disk) && r->type != RL_CLAIM)
		return rl_err_set(err, code, "%s record: nil disk uuid", tn);

	switch (r->type) {
	case RL_WRITE:
	case RL_ZERO:
	case RL_DISCARD:
		if (r->length == 0)
			return rl_err_set(err, code, "%s record: zero length",
					  tn);
		if (r->offset > INT64_MAX || r->length > INT64_MAX - r->offset)
			return rl_err_set(err, code, "%s record: range %llu+%llu "
					  "overflows", tn,
					  (unsigned long long)r->offset,
					  (unsigned long long)r->length);
		if (r->type == RL_WRITE) {
			if (r->length > RL_RECORD_MAX_DATA || raw != r->length)
				return rl_err_set(err, code, "WRITE record: "
						  "length %llu but %zu bytes of "
						  "data",
						  (unsigned long long)r->length,
						  raw);
		} else if (raw != 0) {
			return rl_err_set(err, code, "%s record: unexpected "
					  "payload of %zu bytes", tn, raw);
		}
		return 0;
	case RL_RESIZE:
		if (r->offset > INT64_MAX || r->length != 0 || raw != 0)
			return rl_err_set(err, code, "RESIZE record: bad size "
					  "%llu, length %llu or payload %zu",
					  (unsigned long long)r->offset,
					  (unsigned long long)r->length, raw);
		return 0;
	case RL_CLAIM:
		if (r->epoch == 0 || r->offset || r->length || raw > HOST_MAX)
			return rl_err_set(err, code, "CLAIM record: bad epoch "
					  "%llu, offset, length or host",
					  (unsigned long long)r->epoch);
		return 0;
	case RL_CREATE:
	case RL_RENAME:
	case RL_DELETE:
	case RL_SETATTR:
		if (r->offset || r->length)
			return rl_err_set(err, code, "%s record: offset and "
					  "length must be 0", tn);
		if ((r->type == RL_DELETE && raw != 0) ||
		    (r->type == RL_SETATTR && raw != ATTR_LEN) ||
		    (r->type == RL_CREATE && raw <= ATTR_LEN) ||
		    (r->type == RL_RENAME && raw == 0))
			return rl_err_set(err, code, "%s record: payload of %zu "
					  "bytes", tn, raw);
		return 0;
	case RL_MARK:
		if (raw > RL_MARK_LABEL_MAX || r->offset > INT64_MAX ||
		    r->length > INT64_MAX - r->offset ||
		    (r->length == 0 && r->offset != 0))
			return rl_err_set(err, code, "MARK record: bad range "
					  "%llu+%llu or label of %zu bytes",
					  (unsigned long long)r->offset,
					  (unsigned long long)r->length, raw);
		return 0;
	case RL_SKIP:
		if (r->offset > INT64_MAX || r->length || raw > SKIP_NOTE_MAX)
			return rl_err_set(err, code, "SKIP record: bad position "
					  "%llu, length or note",
					  (unsigned long long)r->offset);
		return 0;
	}
	return rl_err_set(err, code, "unknown record type %d", r->type);
}

size_t rl_record_encoded_max(const struct rl_record *r)
{
	size_t payload;

	switch (r->type) {
	case RL_WRITE:
		payload = ZSTD_compressBound(r->data_len);
		break;
	case RL_CLAIM:
	case RL_MARK:
	case RL_SKIP:
		payload = r->data_len;
		break;
	case RL_CREATE:
	case RL_RENAME:
		payload = ATTR_LEN + (r->name ? strlen(r->name) : 0);
		break;
	case RL_SETATTR:
		payload = ATTR_LEN;
		break;
	default:
		payload = 0;
	}
	return RL_RECORD_HDR_SIZE + payload;
}

static pthread_key_t cctx_key;
static pthread_once_t cctx_once = PTHREAD_ONCE_INIT;

static void cctx_free(void *p)
{
	ZSTD_freeCCtx(p);
}

static void cctx_key_init(void)
{
	if (pthread_key_create(&cctx_key, cctx_free) != 0)
		abort();
}

static ZSTD_CCtx *thread_cctx(void)
{
	ZSTD_CCtx *c;

	pthread_once(&cctx_once, cctx_key_init);
	c = pthread_getspecific(cctx_key);
	if (!c) {
		c = ZSTD_createCCtx();
		if (c)
			pthread_setspecific(cctx_key, c);
	}
	return c;
}

/* Compresses src into dst (of `cap` bytes); returns the compressed size or
 * 0 when compression fails or does not save space. */
static size_t try_zstd(void *dst, size_t cap, const void *src, size_t len)
{
	ZSTD_CCtx *c = thread_cctx();
	size_t n;

	if (!c)
		return 0;
	n = ZSTD_compressCCtx(c, dst, cap < len ? cap : len - 1, src, len,
			      ZSTD_LEVEL);
	if (ZSTD_isError(n) || n >= len)
		return 0;
	return n;
}

ssize_t rl_record_prepare(const struct rl_record *r, size_t zstd_min,
			  void *buf, size_t size, struct rl_sealer *sealer,
			  struct rl_err *err)
{
	uint8_t *h = buf, *p = h + RL_RECORD_HDR_SIZE;
	struct rl_record e = *r;
	size_t stored = 0, raw = 0, name_len = r->name ? strlen(r->name) : 0;
	const uint8_t *src = p;		/* the payload to seal */

	/* room for the worst case, or for the data as it is when it will
	 * not be compressed (a writer's zero-copy buffer is exactly that) */
	bool compress = r->type == RL_WRITE && zstd_min &&
			r->data_len >= zstd_min && r->data != p;

	if (size < (compress || r->type != RL_WRITE ?
		    rl_record_encoded_max(r) : RL_RECORD_HDR_SIZE + r->data_len))
		return rl_err_set(err, ENOBUFS, "encode: buffer too small");

	e.codec = RL_CODEC_NONE;
	switch (r->type) {
	case RL_WRITE:
		raw = r->data_len;
		/* data already in place (a writer's zero-copy buffer) cannot
		 * be compressed over itself */
		if (compress)
			stored = try_zstd(p, size - RL_RECORD_HDR_SIZE,
					  r->data, raw);
		if (stored) {
			e.codec = RL_CODEC_ZSTD;
		} else {
			/* data may be NULL when raw is 0 (refused below), and
			 * memcpy() from NULL is undefined even for 0 bytes.
			 * Sealed, the cipher reads the data where it is. */
			if (raw && r->data != p && sealer->key)
				src = r->data;
			else if (raw && r->data != p)
				memcpy(p, r->data, raw);
			stored = raw;
		}
		break;
	case RL_CLAIM:
	case RL_MARK:
	case RL_SKIP:
		if (r->data_len)
			memcpy(p, r->data, r->data_len);
		stored = raw = r->data_len;
		break;
	case RL_CREATE:
	case RL_RENAME:
	case RL_SETATTR:
		if (r->type != RL_RENAME) {
			rl_put_le32(p, r->mode);
			rl_put_le32(p + 4, r->uid);
			rl_put_le32(p + 8, r->gid);
			stored = ATTR_LEN;
		}
		if (r->type != RL_SETATTR) {
			int rc;

			if (!r->name)
				return rl_err_set(err, EINVAL, "%s record: no name",
						  rl_type_name(r->type));
			rc = rl_name_check(r->name, err);
			if (rc < 0)
				return rc;
			memcpy(p + stored, r->name, name_len);
			stored += name_len;
		}
		raw = stored;
		break;
	default:
		break;
	}

	int rc = check_fields(&e, stored, raw, EINVAL, err);

	if (rc < 0)
		return rc;

	memset(h, 0, RL_RECORD_HDR_SIZE);
	rl_put_le32(h + OFF_MAGIC, RL_MAGIC);
	rl_put_le16(h + OFF_VERSION, RL_RECORD_VERSION);
	h[OFF_TYPE] = (uint8_t)e.type;
	h[OFF_CODEC] = (uint8_t)e.codec;
	memcpy(h + OFF_DISK, e.disk.b, 16);
	rl_put_le64(h + OFF_OFFSET, e.offset);
	rl_put_le64(h + OFF_LENGTH, e.length);
	rl_put_le32(h + OFF_PAYLOAD_LEN, (uint32_t)stored);
	rl_put_le64(h + OFF_TIME, e.time_ns ? e.time_ns :
		    (uint64_t)rl_clock_ns(CLOCK_REALTIME));
	sealer->codec = e.codec;
	if (!sealer->key) {
		check128(p, stored, h + OFF_PAYLOAD_CHECK);
		return (ssize_t)(RL_RECORD_HDR_SIZE + stored);
	}
	/* into buf, in place unless the data lies elsewhere: the payload in
	 * buf is ciphertext from here on */
	rl_put_le32(h + OFF_KEY_ID, sealer->key->id);
	randombytes_buf(h + OFF_NONCE, NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(p,
		h + OFF_PAYLOAD_CHECK, NULL, src, stored, h, AAD_LEN, NULL,
		h + OFF_NONCE, sealer->key->payload);
	return (ssize_t)(RL_RECORD_HDR_SIZE + stored);
}

/* The header check of a record sealed with key. */
static void key_header_check(const uint8_t *h, const struct rl_key *key,
			     uint8_t out[KEY_HCHECK_BYTES])
{
	crypto_generichash(out, KEY_HCHECK_BYTES, h, OFF_HEADER_CHECK,
			   key->header, sizeof(key->header));
}

void rl_record_seal(void *buf, struct rl_sealer *sealer, uint64_t epoch,
		    uint64_t seq)
{
	uint8_t *h = buf;

	rl_put_le64(h + OFF_EPOCH, epoch);
	rl_put_le64(h + OFF_SEQ, seq);
	if (sealer->key)
		key_header_check(h, sealer->key, h + OFF_HEADER_CHECK);
	else
		check128(h, OFF_HEADER_CHECK, h + OFF_HEADER_CHECK);
}

ssize_t rl_record_encode_key(const struct rl_record *r, size_t zstd_min,
			     const struct rl_key *key, void *buf, size_t size,
			     struct rl_err *err)
{
	struct rl_sealer sealer = { .key = key };
	ssize_t n = rl_record_prepare(r, zstd_min, buf, size, &sealer, err);

	if (n >= 0)
		rl_record_seal(buf, &sealer, r->epoch, r->seq);
	return n;
}

ssize_t rl_record_encode(const struct rl_record *r, size_t zstd_min,
			 void *buf, size_t size, struct rl_err *err)
{
	return rl_record_encode_key(r, zstd_min, NULL, buf, size, err);
}


void rl_decoder_init(struct rl_decoder *d)
{
	memset(d, 0, sizeof(*d));
}

void rl_decoder_free(struct rl_decoder *d)
{
	free(d->buf);
	free(d->plain);
	ZSTD_freeDCtx(d->zctx);
	memset(d, 0, sizeof(*d));
}

static int decoder_reserve(struct rl_decoder *d, size_t n)
{
	void *p;

	if (n <= d->cap)
		return 0;
	p = realloc(d->buf, n);
	if (!p)
		return -ENOMEM;
	d->buf = p;
	d->cap = n;
	return 0;
}

ssize_t rl_record_size(const void *hdr, struct rl_err *err)
{
	const uint8_t *h = hdr;
	uint32_t magic = rl_get_le32(h + OFF_MAGIC);
	uint16_t version = rl_get_le16(h + OFF_VERSION);
	uint32_t stored = rl_get_le32(h + OFF_PAYLOAD_LEN);
	uint32_t key = rl_get_le32(h + OFF_KEY_ID);

	if (magic != RL_MAGIC)
		return rl_err_set(err, EBADMSG, "bad magic 0x%08x", magic);
	if (version < 1 || version > RL_RECORD_VERSION_MAX)
		return rl_err_set(err, EPROTO, "unknown record version %u "
				  "(this build reads versions 1 to %d)", version,
				  RL_RECORD_VERSION_MAX);
	if (!rl_type_name(h[OFF_TYPE]) ||
	    (h[OFF_TYPE] == RL_SKIP && version < 2) ||
	    (h[OFF_TYPE] == RL_MARK && version < 3))
		return rl_err_set(err, EBADMSG, "unknown record type %u",
				  h[OFF_TYPE]);
	if (h[OFF_CODEC] > RL_CODEC_ZSTD)
		return rl_err_set(err, EBADMSG, "unknown codec %u", h[OFF_CODEC]);
	if (version < 3 && key != 0)
		return rl_err_set(err, EBADMSG, "reserved header field is not 0");
	if (stored > RL_RECORD_MAX_PAYLOAD)
		return rl_err_set(err, EBADMSG, "payload of %u bytes, at most %u",
				  stored, RL_RECORD_MAX_PAYLOAD);
	return (ssize_t)(hdr_size(version) + stored);
}

void rl_record_order(const void *hdr, uint64_t *epoch, uint64_t *seq)
{
	const uint8_t *h = hdr;

	*epoch = rl_get_le64(h + OFF_EPOCH);
	*seq = rl_get_le64(h + OFF_SEQ);
}

int rl_record_check_header(const struct rl_decoder *d, const void *hdr,
			   size_t len, struct rl_err *err)
{
	const uint8_t *h = hdr;
	ssize_t size = len >= RL_RECORD_HDR_MIN ? rl_record_size(h, err) :
		       rl_err_set(err, EBADMSG, "incomplete header");
	unsigned version;
	uint32_t key_id;
	uint8_t sum[CHECK_LEN];
	const struct rl_key *key;

	if (size < 0)
		return (int)size;
	version = rl_get_le16(h + OFF_VERSION);
	if (version < 3)
		return 0;	/* one checksum over it all: nothing apart */
	if (len < RL_RECORD_HDR_SIZE)
		return rl_err_set(err, EBADMSG, "incomplete header");
	key_id = rl_get_le32(h + OFF_KEY_ID);
	if (!key_id) {
		check128(h, OFF_HEADER_CHECK, sum);
		return memcmp(sum, h + OFF_HEADER_CHECK, CHECK_LEN) == 0 ? 0 :
		       rl_err_set(err, EBADMSG, "bad header check");
	}
	key = d->keys ? rl_keyring_find(d->keys, key_id) : NULL;
	if (!key)
		return 0;	/* the reader that decodes it says so */
	key_header_check(h, key, sum);
	return sodium_memcmp(sum, h + OFF_HEADER_CHECK, KEY_HCHECK_BYTES) ==
	       0 ? 0 : rl_err_set(err, EBADMSG, "bad header check (altered, "
				  "or sealed with another key %u)", key_id);
}

/* Verifies the checks of a record whose header says it spans len bytes,
 * and opens one sealed with a key into d->plain.  *payload is then where
 * its payload is in the clear. */
static int verify(struct rl_decoder *d, const uint8_t *h, size_t len,
		  const uint8_t **payload, struct rl_err *err)
{
	unsigned version = rl_get_le16(h + OFF_VERSION);
	uint32_t key_id = version >= 3 ? rl_get_le32(h + OFF_KEY_ID) : 0;
	size_t hs = hdr_size(version), stored = len - hs;
	uint8_t sum[V1_CHECKSUM_LEN], aad[AAD_LEN];
	const struct rl_key *key;

	*payload = h + hs;
	if (!key_id && d->keys && !d->accept_unkeyed)
		return rl_err_set(err, EBADMSG, "a record without a key in a "
				  "log sealed with keys: forged, or written "
				  "before the keys");
	if (version < 3) {
		v1_checksum(h, h + hs, stored, sum);
		if (sodium_memcmp(sum, h + V1_OFF_CHECKSUM, V1_CHECKSUM_LEN))
			return rl_err_set(err, EBADMSG, "bad checksum");
		return 0;
	}
	if (!key_id) {
		if (!sodium_is_zero(h + OFF_NONCE, NONCE_LEN))
			return rl_err_set(err, EBADMSG, "a nonce in a record "
					  "without a key");
		check128(h, OFF_HEADER_CHECK, sum);
		if (memcmp(sum, h + OFF_HEADER_CHECK, CHECK_LEN) != 0)
			return rl_err_set(err, EBADMSG, "bad header check");
		check128(h + hs, stored, sum);
		if (memcmp(sum, h + OFF_PAYLOAD_CHECK, CHECK_LEN) != 0)
			return rl_err_set(err, EBADMSG, "bad payload check");
		return 0;
	}
	key = rl_keyring_find(d->keys, key_id);
	if (!key)
		return rl_err_set(err, ENOKEY, "record sealed with key %u, "
				  "which %s", key_id, d->keys ? "the key file "
				  "does not hold" : "this reader does not have "
				  "(give the deployment's key file)");
	key_header_check(h, key, sum);
	if (sodium_memcmp(sum, h + OFF_HEADER_CHECK, KEY_HCHECK_BYTES))
		return rl_err_set(err, EBADMSG, "bad header check (altered, "
				  "or sealed with another key %u)", key_id);
	if (stored > d->plain_cap) {
		void *np = realloc(d->plain, stored);

		if (!np)
			return rl_err_set(err, ENOMEM, "decode: out of memory");
		d->plain = np;
		d->plain_cap = stored;
	}
	/* the header as it was sealed: epoch and seq came later */
	memcpy(aad, h, AAD_LEN);
	memset(aad + OFF_EPOCH, 0, 16);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(d->plain, NULL,
			h + hs, stored, h + OFF_PAYLOAD_CHECK, aad, AAD_LEN,
			h + OFF_NONCE, key->payload) != 0)
		return rl_err_set(err, EBADMSG, "bad payload check (altered, "
				  "or sealed with another key %u)", key_id);
	*payload = d->plain;
	return 0;
}

int rl_record_decode(struct rl_decoder *d, const void *buf, size_t len,
		     struct rl_record *out, struct rl_err *err)
{
	const uint8_t *h = buf, *p;
	struct rl_record r;
	ssize_t size;
	size_t raw, stored;
	int rc;

	if (len < RL_RECORD_HDR_MIN)
		return rl_err_set(err, EBADMSG, "truncated record: %zu bytes, "
				  "a header is at least %d", len,
				  RL_RECORD_HDR_MIN);
	size = rl_record_size(h, err);
	if (size < 0)
		return (int)size;
	if (len != (size_t)size)
		return rl_err_set(err, EBADMSG, "%s record: %zu bytes, header "
				  "says %zd", len < (size_t)size ?
				  "truncated" : "oversized", len, size);
	rc = verify(d, h, len, &p, err);
	if (rc < 0)
		return rc;
	stored = rl_get_le32(h + OFF_PAYLOAD_LEN);

	memset(&r, 0, sizeof(r));
	r.type = h[OFF_TYPE];
	r.codec = h[OFF_CODEC];
	memcpy(r.disk.b, h + OFF_DISK, 16);
	r.epoch = rl_get_le64(h + OFF_EPOCH);
	r.seq = rl_get_le64(h + OFF_SEQ);
	r.offset = rl_get_le64(h + OFF_OFFSET);
	r.length = rl_get_le64(h + OFF_LENGTH);
	r.stored_len = (uint32_t)stored;
	r.version = rl_get_le16(h + OFF_VERSION);
	if (r.version >= 3) {
		r.time_ns = rl_get_le64(h + OFF_TIME);
		r.key_id = rl_get_le32(h + OFF_KEY_ID);
	}

	raw = (size_t)stored;
	r.data = p;
	if (r.codec == RL_CODEC_ZSTD) {
		unsigned long long n = ZSTD_getFrameContentSize(p, (size_t)stored);

		if (r.type != RL_WRITE || n == ZSTD_CONTENTSIZE_ERROR ||
		    n == ZSTD_CONTENTSIZE_UNKNOWN || n != r.length ||
		    n > RL_RECORD_MAX_DATA)
			return rl_err_set(err, EBADMSG, "%s record: corrupt zstd "
					  "frame header", rl_type_name(r.type));
		/* exactly one frame, as the encoder writes: the decompressor
		 * would also take more frames (empty or skippable ones) after
		 * it, giving one record several encodings */
		if (ZSTD_findFrameCompressedSize(p, (size_t)stored) !=
		    (size_t)stored)
			return rl_err_set(err, EBADMSG, "WRITE record: zstd "
					  "payload is not exactly one frame");
		if (decoder_reserve(d, (size_t)n) < 0)
			return rl_err_set(err, ENOMEM, "decode: out of memory");
		if (!d->zctx && !(d->zctx = ZSTD_createDCtx()))
			return rl_err_set(err, ENOMEM, "decode: out of memory");
		size_t got = ZSTD_decompressDCtx(d->zctx, d->buf, (size_t)n, p,
						 (size_t)stored);
		if (ZSTD_isError(got) || got != n)
			return rl_err_set(err, EBADMSG, "WRITE record: corrupt "
					  "zstd frame: %s", ZSTD_isError(got) ?
					  ZSTD_getErrorName(got) : "short");
		raw = (size_t)n;
		r.data = d->buf;
	}
	rc = check_fields(&r, (size_t)stored, raw, EBADMSG, err);
	if (rc < 0)
		return rc;
	r.data_len = raw;

	switch (r.type) {
	case RL_CREATE:
	case RL_SETATTR:
		r.mode = rl_get_le32(p);
		r.uid = rl_get_le32(p + 4);
		r.gid = rl_get_le32(p + 8);
		if (r.type == RL_SETATTR)
			break;
		p += ATTR_LEN;
		raw -= ATTR_LEN;
		/* fall through */
	case RL_RENAME:
		if (raw > RL_NAME_MAX || decoder_reserve(d, raw + 1) < 0)
			return rl_err_set(err, EBADMSG, "%s record: bad name",
					  rl_type_name(r.type));
		memcpy(d->buf, p, raw);
		((char *)d->buf)[raw] = '\0';
		if (memchr(p, '\0', raw))
			return rl_err_set(err, EBADMSG, "%s record: NUL in name",
					  rl_type_name(r.type));
		struct rl_err why;

		if (rl_name_check(d->buf, &why) < 0)
			return rl_err_set(err, EBADMSG, "%s record: %s",
					  rl_type_name(r.type), why.msg);
		r.name = d->buf;
		break;
	default:
		break;
	}
	if (r.type != RL_WRITE && r.type != RL_CLAIM && r.type != RL_MARK &&
	    r.type != RL_SKIP) {
		r.data = NULL;
		r.data_len = 0;
	}
	*out = r;
	return 0;
}
