/* repdisk key: make and rotate a deployment's key file (replog/keys.c).
 * Every host that mounts or follows the disks needs the same file; the
 * key bytes never leave it (list shows ids and fingerprints only). */
#include "repdisk.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
	"usage: repdisk key generate FILE\n"
	"       repdisk key rotate FILE\n"
	"       repdisk key list FILE\n"
	"\n"
	"generate makes a new key file with one random key (id 1), mode 0600;\n"
	"it never overwrites a file.  rotate adds a new random key with the next\n"
	"id: new records are sealed with it, and the older keys stay in the\n"
	"file so that older records stay readable.  Copy the file to every\n"
	"host of the deployment (mounts, followers, tools) after each rotation,\n"
	"readers first.  list prints each key's id and fingerprint, newest last.\n"
	"\n"
	"With --key-file FILE, mount, follow, seed, status and log seal every\n"
	"new record (its payload encrypted with XChaCha20-Poly1305, its header\n"
	"authenticated) and refuse records that are not sealed with one of\n"
	"FILE's keys.  The file must be owned by the user that reads it, with\n"
	"no access for group or others.\n"
	"\n"
	"  -h, --help    show this help\n";

static int key_list(const char *path)
{
	struct rl_keyring *kr;
	struct rl_err err;

	if (rl_keyring_load(path, &kr, &err) < 0) {
		tool_error("key list", "%s", err.msg);
		return 1;
	}
	for (size_t i = 0; i < rl_keyring_count(kr); i++) {
		const struct rl_key *k = rl_keyring_at(kr, i);

		printf("key %u fingerprint ", k->id);
		for (size_t j = 0; j < sizeof(k->fingerprint); j++)
			printf("%02x", k->fingerprint[j]);
		printf("%s\n", i + 1 == rl_keyring_count(kr) ?
		       " (seals new records)" : "");
	}
	rl_keyring_free(kr);
	return 0;
}

int cmd_key(int argc, char **argv)
{
	struct rl_err err;
	bool create;
	uint32_t id;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 ||
			  strcmp(argv[1], "--help") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc != 3)
		return tool_usage_error(usage, "key: want a subcommand and a "
					"FILE");
	if (strcmp(argv[1], "list") == 0)
		return key_list(argv[2]);
	if (strcmp(argv[1], "generate") != 0 && strcmp(argv[1], "rotate") != 0)
		return tool_usage_error(usage, "key: unknown subcommand \"%s\"",
					argv[1]);
	create = argv[1][0] == 'g';
	if (rl_keyfile_add(argv[2], create, &id, &err) < 0) {
		tool_error(create ? "key generate" : "key rotate", "%s",
			   err.msg);
		return 1;
	}
	printf("%s: key %u %s\n", argv[2], id, create ? "made" :
	       "added: it seals new records from now on");
	return 0;
}
