/* Unit tests of keys (replog/keys.c) and of records sealed with them
 * (record.c): the key file's rules (a secret only its owner can read,
 * strict lines, rotation), and that a sealed record round-trips, hides
 * its payload, and is refused when anything in it is altered, moved to
 * another disk, epoch or seq, sealed with a key the reader lacks, or
 * replaced by one without a key. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define OFF_VERSION	4
#define OFF_DISK	8
#define OFF_EPOCH	24
#define OFF_SEQ		32
#define OFF_KEY_ID	60
#define HDR		RL_RECORD_HDR_SIZE

static const struct rl_uuid disk1 = { { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc,
					0x4d, 0xef, 0x81, 0x23, 0x45, 0x67,
					0x89, 0xab, 0xcd, 0xef } };

/* A key file with `n` keys (ids 1..n) in a fresh directory. */
static struct rl_keyring *new_ring(const char *tag, int n, char *path,
				   size_t size)
{
	char dir[4096];
	struct rl_keyring *kr;
	struct rl_err err = { 0 };
	uint32_t id;

	unit_tmpdir(tag, dir, sizeof(dir));
	unit_path(path, size, "%s/keys", dir);
	for (int i = 0; i < n; i++) {
		ck_assert_msg(rl_keyfile_add(path, i == 0, &id, &err) == 0,
			      "add: %s", err.msg);
		ck_assert_uint_eq(id, (uint32_t)i + 1);
	}
	ck_assert_msg(rl_keyring_load(path, &kr, &err) == 0, "load: %s",
		      err.msg);
	return kr;
}

static size_t seal(const struct rl_record *r, size_t zstd_min,
		   const struct rl_key *key, uint8_t **out)
{
	size_t cap = rl_record_encoded_max(r);
	struct rl_err err = { 0 };
	ssize_t n;

	*out = malloc(cap);
	ck_assert_ptr_nonnull(*out);
	n = rl_record_encode_key(r, zstd_min, key, *out, cap, &err);
	ck_assert_msg(n >= HDR, "encode: %s", err.msg);
	return (size_t)n;
}

static int open_rec(const struct rl_keyring *kr, bool accept_unkeyed,
		    const uint8_t *buf, size_t len, struct rl_record *r,
		    struct rl_decoder *d, struct rl_err *err)
{
	d->keys = kr;
	d->accept_unkeyed = accept_unkeyed;
	return rl_record_decode(d, buf, len, r, err);
}

START_TEST(test_keyfile)
{
	char path[4096], link_path[4200];
	struct rl_keyring *kr = new_ring("keyfile", 3, path, sizeof(path));
	struct rl_err err = { 0 };
	struct stat st;
	uint32_t id;

	ck_assert_uint_eq(rl_keyring_count(kr), 3);
	ck_assert_uint_eq(rl_keyring_newest(kr)->id, 3);
	ck_assert_ptr_nonnull(rl_keyring_find(kr, 1));
	ck_assert_ptr_null(rl_keyring_find(kr, 4));
	ck_assert_ptr_null(rl_keyring_find(kr, 0));
	/* each key its own subkeys and fingerprint */
	ck_assert(memcmp(rl_keyring_at(kr, 0)->payload,
			 rl_keyring_at(kr, 1)->payload, 32) != 0);
	ck_assert(memcmp(rl_keyring_at(kr, 0)->payload,
			 rl_keyring_at(kr, 0)->header, 32) != 0);
	ck_assert(memcmp(rl_keyring_at(kr, 0)->fingerprint,
			 rl_keyring_at(kr, 2)->fingerprint, 8) != 0);
	rl_keyring_free(kr);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);

	/* never over an existing file */
	ck_assert_int_eq(rl_keyfile_add(path, true, &id, &err), -EEXIST);
	ck_assert_int_eq(rl_keyring_load(path, &kr, &err), 0);
	ck_assert_uint_eq(rl_keyring_count(kr), 3);
	rl_keyring_free(kr);

	/* a secret others could read, or a link to one, is refused */
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(rl_keyring_load(path, &kr, &err), -EACCES);
	ck_assert_msg(strstr(err.msg, "chmod 600") && strstr(err.msg, "0640"),
		      "message: %s", err.msg);
	ck_assert_int_eq(rl_keyfile_add(path, false, &id, &err), -EACCES);
	ck_assert_int_eq(chmod(path, 0400), 0);
	ck_assert_int_eq(rl_keyring_load(path, &kr, &err), 0);
	rl_keyring_free(kr);
	ck_assert_int_eq(chmod(path, 0600), 0);
	unit_path(link_path, sizeof(link_path), "%s.link", path);
	ck_assert_int_eq(symlink(path, link_path), 0);
	ck_assert_int_eq(rl_keyring_load(link_path, &kr, &err), -ELOOP);
	ck_assert_ptr_nonnull(strstr(err.msg, "symbolic link"));
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(path, 12345, 12345), 0);
		ck_assert_int_eq(rl_keyring_load(path, &kr, &err), -EACCES);
		ck_assert_ptr_nonnull(strstr(err.msg, "owned by uid 12345"));
	}
}
END_TEST

START_TEST(test_keyfile_strict)
{
	static const char *const bad[] = {
		"",
		"repdisk-keys 2\n",
		"repdisk-keys 1\n",			/* no key */
		"repdisk-keys 1\nkey 0 %s\n",
		"repdisk-keys 1\nkey 4294967296 %s\n",
		"repdisk-keys 1\nkey +1 %s\n",
		"repdisk-keys 1\nkey 1 %s",		/* no newline */
		"repdisk-keys 1\nkey 1 %s \n",
		"repdisk-keys 1\nkey 1  %s\n",
		"repdisk-keys 1\nkey 2 %s\nkey 1 %s\n",	/* not rising */
		"repdisk-keys 1\nkey 1 %s\nkey 1 %s\n",
		"repdisk-keys 1\nkey 1 %.63s\n",	/* short */
		"repdisk-keys 1\nkey 1 %sff\n",		/* long */
		"repdisk-keys 1\n\nkey 1 %s\n",
		"repdisk-keys 1\nkey 1 %s\n# a comment\n",
	};
	const char *hex = "00112233445566778899aabbccddeeff"
			  "00112233445566778899aabbccddeeff";
	char dir[4096], path[4200], text[512];
	struct rl_keyring *kr;
	struct rl_err err;
	int fd;

	unit_tmpdir("strict", dir, sizeof(dir));
	unit_path(path, sizeof(path), "%s/keys", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), bad[i], hex, hex);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, text, strlen(text)),
				 (ssize_t)strlen(text));
		close(fd);
		memset(&err, 0, sizeof(err));
		ck_assert_msg(rl_keyring_load(path, &kr, &err) == -EINVAL,
			      "accepted: \"%s\"", text);
		ck_assert_ptr_nonnull(strstr(err.msg, "line"));
	}
	/* and the good one, with upper-case hex too */
	snprintf(text, sizeof(text), "repdisk-keys 1\nkey 7 %s\nkey 9 "
		 "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF\n",
		 hex);
	unit_write_file(path, text, strlen(text));
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(rl_keyring_load(path, &kr, &err), 0);
	ck_assert_uint_eq(rl_keyring_newest(kr)->id, 9);
	/* the same master key gives the same subkeys */
	ck_assert_mem_eq(rl_keyring_find(kr, 7)->payload,
			 rl_keyring_find(kr, 9)->payload, 32);
	rl_keyring_free(kr);
}
END_TEST

START_TEST(test_sealed_roundtrip)
{
	char path[4096];
	struct rl_keyring *kr = new_ring("roundtrip", 2, path, sizeof(path));
	const struct rl_key *key = rl_keyring_newest(kr);
	static uint8_t text[8192], noise[3000];
	uint64_t seed = 5;
	struct rl_decoder d;
	struct rl_err err;

	memset(text, 'T', sizeof(text));
	unit_fill_random(noise, sizeof(noise), &seed);
	const struct rl_record recs[] = {
		{ .type = RL_WRITE, .disk = disk1, .epoch = 2, .seq = 9,
		  .offset = 4096, .length = sizeof(noise), .data = noise,
		  .data_len = sizeof(noise) },
		{ .type = RL_WRITE, .disk = disk1, .epoch = 2, .seq = 10,
		  .offset = 0, .length = sizeof(text), .data = text,
		  .data_len = sizeof(text) },
		{ .type = RL_ZERO, .disk = disk1, .epoch = 2, .seq = 11,
		  .offset = 0, .length = 4096 },
		{ .type = RL_RESIZE, .disk = disk1, .epoch = 2, .seq = 12,
		  .offset = 1 << 30 },
		{ .type = RL_CLAIM, .disk = disk1, .epoch = 3,
		  .data = "hv1:/srv", .data_len = 8 },
		{ .type = RL_MARK, .disk = disk1, .epoch = 3, .seq = 1,
		  .data = "label", .data_len = 5 },
		{ .type = RL_CREATE, .disk = disk1, .epoch = 1,
		  .name = "vm1.img", .mode = 0640, .uid = 7, .gid = 8 },
		{ .type = RL_RENAME, .disk = disk1, .epoch = 1, .name = "b" },
		{ .type = RL_DELETE, .disk = disk1, .epoch = 1 },
		{ .type = RL_SKIP, .disk = disk1, .offset = 3, .data = "why",
		  .data_len = 3 },
	};

	rl_decoder_init(&d);
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		for (size_t zmin = 0; zmin <= 1; zmin++) {
			const struct rl_record *in = &recs[i];
			struct rl_record out;
			uint8_t *a, *b;
			size_t na = seal(in, zmin, key, &a);
			size_t nb = seal(in, zmin, key, &b);
			int rc;

			ck_assert_uint_eq(na, nb);
			/* another nonce each time, so other bytes */
			ck_assert(memcmp(a + 72, b + 72, 24) != 0);
			ck_assert(memcmp(a, b, na) != 0);
			memset(&err, 0, sizeof(err));
			rc = open_rec(kr, false, a, na, &out, &d, &err);
			ck_assert_msg(rc == 0, "%s: %s", rl_type_name(in->type),
				      err.msg);
			ck_assert_int_eq(out.type, in->type);
			ck_assert_uint_eq(out.key_id, key->id);
			ck_assert_uint_eq(out.epoch, in->epoch);
			ck_assert_uint_eq(out.seq, in->seq);
			ck_assert_uint_eq(out.offset, in->offset);
			ck_assert_uint_eq(out.length, in->length);
			ck_assert(rl_uuid_eq(&out.disk, &in->disk));
			if (in->type == RL_WRITE || in->type == RL_CLAIM ||
			    in->type == RL_MARK || in->type == RL_SKIP) {
				ck_assert_uint_eq(out.data_len, in->data_len);
				ck_assert_mem_eq(out.data, in->data,
						 in->data_len);
			}
			if (in->name)
				ck_assert_str_eq(out.name, in->name);
			if (in->type == RL_CREATE) {
				ck_assert_uint_eq(out.mode, 0640);
				ck_assert_uint_eq(out.uid, 7);
				ck_assert_uint_eq(out.gid, 8);
			}
			free(a);
			free(b);
		}
	}
	/* what the log holds is ciphertext: no run of the plain data */
	{
		uint8_t *a;
		size_t n = seal(&recs[0], 0, key, &a);

		ck_assert_ptr_null(memmem(a, n, noise + 100, 16));
		free(a);
		n = seal(&recs[6], 0, key, &a);
		ck_assert_ptr_null(memmem(a, n, "vm1.img", 7));
		free(a);
	}
	rl_decoder_free(&d);
	rl_keyring_free(kr);
}
END_TEST

/* Anything altered is refused: every bit of a sealed record, a record
 * moved to another disk, epoch or seq (even with the unkeyed checks made
 * right: they are not what a sealed record is checked by), a payload
 * swapped in from another record. */
START_TEST(test_sealed_tamper)
{
	char path[4096];
	struct rl_keyring *kr = new_ring("tamper", 1, path, sizeof(path));
	const struct rl_key *key = rl_keyring_newest(kr);
	static const uint8_t data[64] = "the guest's data, 64 bytes of it";
	struct rl_record w = { .type = RL_WRITE, .disk = disk1, .epoch = 4,
			       .seq = 7, .offset = 8192, .length = 64,
			       .data = data, .data_len = 64 };
	struct rl_decoder d;
	struct rl_record out;
	struct rl_err err;
	uint8_t *a, *b;
	size_t n = seal(&w, 0, key, &a);

	rl_decoder_init(&d);
	for (size_t byte = 0; byte < n; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			int rc, want = EBADMSG;

			a[byte] ^= (uint8_t)(1u << bit);
			if (byte == OFF_VERSION || byte == OFF_VERSION + 1) {
				unsigned v = a[OFF_VERSION] | a[OFF_VERSION + 1] << 8;

				want = v < 1 || v > 3 ? EPROTO : EBADMSG;
			}
			/* a key it does not have; or none, and then a
			 * record without a key, which a reader with keys
			 * refuses */
			if (byte >= OFF_KEY_ID && byte < OFF_KEY_ID + 4 &&
			    (a[OFF_KEY_ID] | a[OFF_KEY_ID + 1] |
			     a[OFF_KEY_ID + 2] | a[OFF_KEY_ID + 3]))
				want = ENOKEY;
			rc = open_rec(kr, false, a, n, &out, &d, &err);
			ck_assert_msg(rc == -want, "byte %zu bit %d: %d (%s)",
				      byte, bit, rc, err.msg);
			a[byte] ^= (uint8_t)(1u << bit);
		}
	}
	ck_assert_int_eq(open_rec(kr, false, a, n, &out, &d, &err), 0);

	/* moved: another epoch, seq or disk */
	static const size_t fields[] = { OFF_EPOCH, OFF_SEQ, OFF_DISK };

	for (size_t i = 0; i < 3; i++) {
		b = malloc(n);
		ck_assert_ptr_nonnull(b);
		memcpy(b, a, n);
		b[fields[i]] ^= 1;
		ck_assert_int_eq(open_rec(kr, false, b, n, &out, &d, &err),
				 -EBADMSG);
		ck_assert_ptr_nonnull(strstr(err.msg, "header check"));
		free(b);
	}
	/* another record's payload and tag, under this header */
	{
		static const uint8_t data2[64] = "another 64 bytes, from seq 8";
		struct rl_record w2 = w;
		uint8_t *c;

		w2.seq = 8;
		w2.data = data2;
		seal(&w2, 0, key, &c);
		b = malloc(n);
		ck_assert_ptr_nonnull(b);
		memcpy(b, a, n);
		memcpy(b + 96, c + 96, 16);		/* its tag */
		memcpy(b + HDR, c + HDR, 64);		/* its payload */
		ck_assert_int_eq(open_rec(kr, false, b, n, &out, &d, &err),
				 -EBADMSG);
		free(b);
		free(c);
	}
	rl_decoder_free(&d);
	free(a);
	rl_keyring_free(kr);
}
END_TEST

/* Keys missing, rotated, or records without one. */
START_TEST(test_sealed_keys)
{
	char path[4096], path2[4096];
	struct rl_keyring *kr = new_ring("keys", 2, path, sizeof(path));
	struct rl_keyring *other = new_ring("other", 1, path2, sizeof(path2));
	struct rl_record c = { .type = RL_CLAIM, .disk = disk1, .epoch = 1,
			       .data = "h", .data_len = 1 };
	struct rl_decoder d;
	struct rl_record out;
	struct rl_err err;
	uint8_t *old, *plain;
	size_t nold = seal(&c, 0, rl_keyring_find(kr, 1), &old);
	size_t nplain = unit_encode(&c, 0, &plain);

	rl_decoder_init(&d);
	/* an old key still opens its records after a rotation */
	ck_assert_int_eq(open_rec(kr, false, old, nold, &out, &d, &err), 0);
	ck_assert_uint_eq(out.key_id, 1);
	/* no keys: the reader says which key it would need */
	ck_assert_int_eq(open_rec(NULL, false, old, nold, &out, &d, &err),
			 -ENOKEY);
	ck_assert_ptr_nonnull(strstr(err.msg, "key 1"));
	/* another deployment's key 1 is not this one */
	ck_assert_int_eq(open_rec(other, false, old, nold, &out, &d, &err),
			 -EBADMSG);
	/* with keys, a record without one is refused: anyone could have
	 * written it; unless the reader accepts them (a log from before) */
	ck_assert_int_eq(open_rec(kr, false, plain, nplain, &out, &d, &err),
			 -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err.msg, "without a key"));
	ck_assert_int_eq(open_rec(kr, true, plain, nplain, &out, &d, &err), 0);
	ck_assert_int_eq(open_rec(NULL, false, plain, nplain, &out, &d, &err),
			 0);
	rl_decoder_free(&d);
	free(old);
	free(plain);
	rl_keyring_free(kr);
	rl_keyring_free(other);
}
END_TEST

static Suite *keys_suite(void)
{
	Suite *s = suite_create("keys");
	TCase *tc = tcase_create("keys");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_keyfile);
	tcase_add_test(tc, test_keyfile_strict);
	tcase_add_test(tc, test_sealed_roundtrip);
	tcase_add_test(tc, test_sealed_tamper);
	tcase_add_test(tc, test_sealed_keys);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	return unit_main(keys_suite());
}
