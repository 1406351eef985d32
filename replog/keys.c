/* Keys: the deployment's keys for records sealed with a key.
 *
 * Design notes
 * ------------
 * A key file holds every key of a deployment, oldest first:
 *
 *     repdisk-keys 1
 *     key 1 <64 hex digits>
 *     key 2 <64 hex digits>
 *
 * Writers seal new records with the last key (the newest); readers open a
 * record with the key its header names, so after a rotation old records
 * stay readable as long as the file keeps their key.  Key ids are 1 to
 * 2^32-1, each at most once, rising (0 is "no key" in a record).
 *
 * The file is a secret: it is refused unless it is a regular file (not
 * a symbolic link), owned by the user who reads it, with no permission
 * for its group or others (mode 0600 or 0400), so that a key never works
 * from a file that others could have read or replaced.  Parsing is strict
 * and all or nothing, as for the other state files.
 *
 * Two keys are derived from each master key with libsodium's KDF
 * (BLAKE2b), one per use, so that no key serves two algorithms: the
 * XChaCha20-Poly1305 key that encrypts payloads, and the BLAKE2b key that
 * authenticates headers (record.c).  Key bytes live in memory locked
 * against swapping where the system allows, and are wiped when freed.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define KEYS_MAGIC	"repdisk-keys 1"
#define KEYS_FILE_MAX	(64u << 10)
#define KDF_CONTEXT	"repdisk1"	/* crypto_kdf_CONTEXTBYTES = 8 */

_Static_assert(sizeof(KDF_CONTEXT) - 1 == crypto_kdf_CONTEXTBYTES,
	       "KDF context");
_Static_assert(crypto_kdf_KEYBYTES == RL_KEY_BYTES, "master key size");

struct rl_keyring {
	struct rl_key *keys;	/* sodium_malloc'ed, oldest first */
	size_t n;
};

/* Derives k's subkeys from master. */
static void derive(struct rl_key *k, const uint8_t master[RL_KEY_BYTES])
{
	crypto_kdf_derive_from_key(k->payload, sizeof(k->payload), 1,
				   KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(k->header, sizeof(k->header), 2,
				   KDF_CONTEXT, master);
	crypto_generichash(k->fingerprint, sizeof(k->fingerprint), master,
			   RL_KEY_BYTES, (const uint8_t *)"repdisk key id", 14);
}

/* Reads the key file at path (a secret: see the notes) into buf, NUL
 * terminated.  Returns its length or -errno with err. */
static ssize_t read_secret(const char *path, char *buf, size_t cap,
			   struct rl_err *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	size_t got = 0;

	if (fd < 0)
		return rl_err_set(err, errno, "key file %s: %s%s", path,
				  strerror(errno), errno == ELOOP ?
				  " (a symbolic link: give the file itself)" :
				  "");
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return rl_err_set(err, e, "key file %s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077)) {
		close(fd);
		return rl_err_set(err, EACCES, "key file %s: refused: it must "
				  "be a regular file owned by uid %u with no "
				  "access for group or others (chmod 600); it "
				  "is %s, owned by uid %u, mode %04o", path,
				  (unsigned)geteuid(), S_ISREG(st.st_mode) ?
				  "a file" : "not a regular file",
				  (unsigned)st.st_uid,
				  (unsigned)(st.st_mode & 07777));
	}
	while (got < cap - 1) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			return rl_err_set(err, e, "key file %s: %s", path,
					  strerror(e));
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got == cap - 1)
		return rl_err_set(err, EFBIG, "key file %s: larger than %u "
				  "bytes", path, KEYS_FILE_MAX);
	buf[got] = '\0';
	return (ssize_t)got;
}

static int bad(const char *path, unsigned line, const char *why,
	       struct rl_err *err)
{
	return rl_err_set(err, EINVAL, "key file %s: line %u: %s", path, line,
			  why);
}

/* libsodium's guarded memory (sodium_malloc) and its random numbers need
 * sodium_init(), which may run any number of times, from any thread. */
static int crypto_ready(struct rl_err *err)
{
	if (sodium_init() < 0)
		return rl_err_set(err, EIO, "libsodium does not initialise");
	return 0;
}

int rl_keyring_load(const char *path, struct rl_keyring **out,
		    struct rl_err *err)
{
	char *text;
	struct rl_keyring *kr;
	uint8_t master[RL_KEY_BYTES];
	size_t cap = 0, len;
	unsigned line = 1;
	ssize_t n;
	char *p, *nl;
	int rc = 0;

	*out = NULL;
	rc = crypto_ready(err);
	if (rc < 0)
		return rc;
	text = sodium_malloc(KEYS_FILE_MAX + 1);
	kr = calloc(1, sizeof(*kr));
	if (!text || !kr) {
		rc = rl_err_set(err, ENOMEM, "key file %s: out of memory", path);
		goto out;
	}
	n = read_secret(path, text, KEYS_FILE_MAX + 1, err);
	if (n < 0) {
		rc = (int)n;
		goto out;
	}
	len = (size_t)n;
	if (len < sizeof(KEYS_MAGIC) || memcmp(text, KEYS_MAGIC "\n",
					       sizeof(KEYS_MAGIC)) != 0) {
		rc = bad(path, 1, "not a repdisk key file (it must start with \""
			 KEYS_MAGIC "\")", err);
		goto out;
	}
	for (p = text + sizeof(KEYS_MAGIC); *p; p = nl + 1) {
		uint64_t id;
		const char *rest, *hex_end;
		size_t bin_len;

		line++;
		nl = strchr(p, '\n');
		if (!nl) {
			rc = bad(path, line, "no newline at the end", err);
			goto out;
		}
		*nl = '\0';
		if (strncmp(p, "key ", 4) != 0 ||
		    rl_parse_u64(p + 4, UINT32_MAX, &id, &rest) < 0 ||
		    id == 0 || *rest != ' ') {
			rc = bad(path, line, "not \"key ID HEX\" with an id "
				 "from 1 to 4294967295", err);
			goto out;
		}
		if (kr->n && id <= kr->keys[kr->n - 1].id) {
			rc = bad(path, line, "key ids must rise, each once",
				 err);
			goto out;
		}
		if (strlen(rest + 1) != 2 * RL_KEY_BYTES ||
		    sodium_hex2bin(master, sizeof(master), rest + 1,
				   2 * RL_KEY_BYTES, NULL, &bin_len,
				   &hex_end) != 0 ||
		    bin_len != RL_KEY_BYTES || *hex_end) {
			rc = bad(path, line, "a key is 64 hex digits", err);
			goto out;
		}
		if (kr->n == cap) {
			size_t ncap = cap ? 2 * cap : 4;
			struct rl_key *nk = sodium_allocarray(ncap, sizeof(*nk));

			if (!nk) {
				rc = rl_err_set(err, ENOMEM, "key file %s: out "
						"of memory", path);
				goto out;
			}
			if (kr->n)
				memcpy(nk, kr->keys, kr->n * sizeof(*nk));
			sodium_free(kr->keys);
			kr->keys = nk;
			cap = ncap;
		}
		kr->keys[kr->n].id = (uint32_t)id;
		derive(&kr->keys[kr->n], master);
		kr->n++;
	}
	if (kr->n == 0)
		rc = bad(path, line, "no key", err);
out:
	sodium_memzero(master, sizeof(master));
	sodium_free(text);
	if (rc < 0) {
		rl_keyring_free(kr);
		return rc;
	}
	*out = kr;
	return 0;
}

void rl_keyring_free(struct rl_keyring *kr)
{
	if (!kr)
		return;
	sodium_free(kr->keys);	/* wipes them */
	free(kr);
}

const struct rl_key *rl_keyring_newest(const struct rl_keyring *kr)
{
	return kr && kr->n ? &kr->keys[kr->n - 1] : NULL;
}

const struct rl_key *rl_keyring_find(const struct rl_keyring *kr, uint32_t id)
{
	for (size_t i = 0; kr && i < kr->n; i++)
		if (kr->keys[i].id == id)
			return &kr->keys[i];
	return NULL;
}

size_t rl_keyring_count(const struct rl_keyring *kr)
{
	return kr ? kr->n : 0;
}

const struct rl_key *rl_keyring_at(const struct rl_keyring *kr, size_t i)
{
	return kr && i < kr->n ? &kr->keys[i] : NULL;
}

int rl_keyfile_add(const char *path, bool create, uint32_t *id,
		   struct rl_err *err)
{
	char *text, tmp[4096], hex[2 * RL_KEY_BYTES + 1];
	uint8_t master[RL_KEY_BYTES];
	struct rl_keyring *kr = NULL;
	size_t len = 0;
	int fd = -1, rc = 0;

	if (crypto_ready(err) < 0)
		return -EIO;
	text = sodium_malloc(KEYS_FILE_MAX + 256);
	if (!text)
		return rl_err_set(err, ENOMEM, "key file %s: out of memory",
				  path);
	if (create) {
		len = (size_t)snprintf(text, KEYS_FILE_MAX, KEYS_MAGIC "\n");
		*id = 1;
	} else {
		ssize_t n;

		rc = rl_keyring_load(path, &kr, err);
		if (rc < 0)
			goto out;
		if (kr->keys[kr->n - 1].id == UINT32_MAX) {
			rc = rl_err_set(err, EOVERFLOW, "key file %s: the last "
					"key id is 4294967295", path);
			goto out;
		}
		*id = kr->keys[kr->n - 1].id + 1;
		n = read_secret(path, text, KEYS_FILE_MAX + 1, err);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		len = (size_t)n;
	}
	randombytes_buf(master, sizeof(master));
	sodium_bin2hex(hex, sizeof(hex), master, sizeof(master));
	len += (size_t)snprintf(text + len, KEYS_FILE_MAX + 256 - len,
				"key %" PRIu32 " %s\n", *id, hex);
	sodium_memzero(hex, sizeof(hex));
	if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp)) {
		rc = rl_err_set(err, ENAMETOOLONG, "key file %s: path too long",
				path);
		goto out;
	}
	/* a new file, 0600 from the start, then renamed over the old one:
	 * a crash leaves the old file or the new one, whole */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		rc = rl_err_set(err, errno, "key file %s: %s%s", tmp,
				strerror(errno), errno == EEXIST ? " (left by "
				"a key command that did not finish: remove it)"
				: "");
		goto out;
	}
	if (rl_write_full(fd, text, len) < 0 || fsync(fd) < 0) {
		rc = rl_err_set(err, errno, "key file %s: %s", tmp,
				strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (create ? link(tmp, path) < 0 : rename(tmp, path) < 0) {
		rc = rl_err_set(err, errno, "key file %s: %s", path,
				strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (create)
		unlink(tmp);	/* link(): never over an existing file */
out:
	if (fd >= 0)
		close(fd);
	sodium_memzero(master, sizeof(master));
	sodium_memzero(text, KEYS_FILE_MAX + 256);
	sodium_free(text);
	rl_keyring_free(kr);
	return rc;
}
