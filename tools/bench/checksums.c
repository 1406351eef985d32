/* checksums: how fast each candidate for the record format's integrity
 * check and encryption runs on this machine, in GB/s on one core.
 *
 *   build/tools/bench/repdisk-checksum-bench [SECONDS]
 *
 * Every record's payload and header pass through the check once when the
 * writer seals it and once when each applier reads it, so its cost per
 * byte is a cost of the write path (docs/BENCHMARKS.md, "the checksum").
 * Candidates, over payloads of the sizes the write path sees (4 KiB to
 * 1 MiB):
 *
 *   BLAKE2b-256     libsodium crypto_generichash: format 1's check
 *   CRC32C          the SSE4.2 crc32 instruction, one stream, and three
 *                   streams at once (its latency is 3 cycles, its
 *                   throughput one a cycle: three independent streams keep
 *                   the unit busy).  The three CRCs are XORed here only to
 *                   keep them alive; a format would combine them properly
 *                   (a carry-less multiply, a few cycles per record)
 *   XXH3-64, XXH3-128  libxxhash (Debian's)
 *   AES-256-GCM     libsodium, where the CPU has AES-NI (encrypt + tag)
 *   XChaCha20-Poly1305  libsodium (encrypt + tag)
 *
 * Each runs for SECONDS (default 1) per size over the same buffer, warm in
 * the cache for the small sizes and streaming from memory for 1 MiB.
 * Figures, not a test: nothing passes or fails.
 */
#include <nmmintrin.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static uint32_t crc32c_1(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = crc;

	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
	}
	for (; n; n--, p++)
		c = _mm_crc32_u8((uint32_t)c, *p);
	return (uint32_t)c;
}

/* Three CRCs over three thirds, interleaved: the per-byte cost of a
 * CRC32C that keeps the instruction's unit busy. */
static uint32_t crc32c_3(const uint8_t *p, size_t n)
{
	size_t third = n / 3 & ~(size_t)7;
	const uint8_t *a = p, *b = p + third, *c = p + 2 * third;
	uint64_t ca = ~0u, cb = ~0u, cc = ~0u;

	for (size_t i = 0; i < third; i += 8) {
		uint64_t va, vb, vc;

		memcpy(&va, a + i, 8);
		memcpy(&vb, b + i, 8);
		memcpy(&vc, c + i, 8);
		ca = _mm_crc32_u64(ca, va);
		cb = _mm_crc32_u64(cb, vb);
		cc = _mm_crc32_u64(cc, vc);
	}
	cc = crc32c_1((uint32_t)cc, c + third, n - 3 * third);
	return (uint32_t)(ca ^ (cb << 1) ^ (cc << 2));
}

enum algo { BLAKE2B, CRC32C_1, CRC32C_3, XXH3_64, XXH3_128, AES_GCM,
	    XCHACHA, N_ALGO };

static const char *const names[N_ALGO] = {
	"BLAKE2b-256", "CRC32C (1 stream)", "CRC32C (3 streams)", "XXH3-64",
	"XXH3-128", "AES-256-GCM", "XChaCha20-Poly1305",
};

static volatile uint64_t sink;	/* keeps results alive */

static void run_one(enum algo a, const uint8_t *buf, uint8_t *out, size_t n,
		    const uint8_t *key)
{
	uint8_t nonce[24] = { 0 }, hdr[96] = { 0 }, h[32];
	unsigned long long clen;

	switch (a) {
	case BLAKE2B:
		crypto_generichash(h, sizeof(h), buf, n, NULL, 0);
		sink += h[0];
		break;
	case CRC32C_1:
		sink += crc32c_1(~0u, buf, n);
		break;
	case CRC32C_3:
		sink += crc32c_3(buf, n);
		break;
	case XXH3_64:
		sink += XXH3_64bits(buf, n);
		break;
	case XXH3_128:
		sink += XXH3_128bits(buf, n).low64;
		break;
	case AES_GCM:
		crypto_aead_aes256gcm_encrypt(out, &clen, buf, n, hdr,
					      sizeof(hdr), NULL, nonce, key);
		sink += out[0];
		break;
	case XCHACHA:
		crypto_aead_xchacha20poly1305_ietf_encrypt(out, &clen, buf, n,
							   hdr, sizeof(hdr),
							   NULL, nonce, key);
		sink += out[0];
		break;
	default:
		break;
	}
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 4096, 65536, 1 << 20 };
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	uint8_t key[32];
	uint8_t *buf, *out;

	if (sodium_init() < 0 || secs <= 0) {
		fprintf(stderr, "usage: %s [SECONDS]\n", argv[0]);
		return 2;
	}
	buf = malloc(1 << 20);
	out = malloc((1 << 20) + 64);
	if (!buf || !out)
		return 1;
	randombytes_buf(buf, 1 << 20);
	randombytes_buf(key, sizeof(key));
	printf("%-22s %10s %10s %10s   (GB/s, one core)\n", "candidate",
	       "4 KiB", "64 KiB", "1 MiB");
	for (int a = 0; a < N_ALGO; a++) {
		if (a == AES_GCM && !crypto_aead_aes256gcm_is_available()) {
			printf("%-22s %10s\n", names[a], "no AES-NI");
			continue;
		}
		printf("%-22s", names[a]);
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			double t0 = now(), t;
			uint64_t bytes = 0;

			do {
				for (int i = 0; i < 16; i++) {
					run_one((enum algo)a, buf, out, sizes[s],
						key);
					bytes += sizes[s];
				}
				t = now() - t0;
			} while (t < secs);
			printf(" %10.2f", (double)bytes / t / 1e9);
		}
		printf("\n");
	}
	free(buf);
	free(out);
	return 0;
}
