/* Unit tests of the epoch rules (replog/claim.c): what every applier does
 * with a record, given the newest claimed epoch and the last sequence
 * number applied in it, for a disk's stream and for the catalog's.  The
 * claim sequence itself is tested through its users: the writer's claim
 * race (test_writer.c) and the catalog writer (test_catalog.c). */
#include "unit.h"

#include "internal.h"

static const struct rl_epoch_rules disk = { .claim_first = true, .seq = true };
static const struct rl_epoch_rules catalog = { .claim_first = false,
					       .seq = false };

static enum rl_epoch_verdict judge(const struct rl_epoch_rules *rules,
				   uint64_t epoch, uint64_t last_seq,
				   enum rl_type type, uint64_t r_epoch,
				   uint64_t r_seq)
{
	struct rl_record r = { .type = type, .epoch = r_epoch, .seq = r_seq };

	return rl_epoch_judge(rules, epoch, last_seq, &r);
}

START_TEST(test_epoch_rules_disk)
{
	/* a claim: only a newer epoch takes the disk */
	ck_assert_int_eq(judge(&disk, 0, 0, RL_CLAIM, 1, 0), RL_EPOCH_CLAIM);
	ck_assert_int_eq(judge(&disk, 3, 7, RL_CLAIM, 4, 0), RL_EPOCH_CLAIM);
	ck_assert_int_eq(judge(&disk, 3, 7, RL_CLAIM, 3, 0), RL_EPOCH_STALE);
	ck_assert_int_eq(judge(&disk, 3, 7, RL_CLAIM, 2, 0), RL_EPOCH_STALE);
	/* nothing before the first claim */
	ck_assert_int_eq(judge(&disk, 0, 0, RL_WRITE, 0, 1),
			 RL_EPOCH_UNCLAIMED);
	ck_assert_int_eq(judge(&disk, 0, 0, RL_RESIZE, 1, 1),
			 RL_EPOCH_UNCLAIMED);
	/* a fenced writer's records, and records of no claim */
	ck_assert_int_eq(judge(&disk, 3, 7, RL_WRITE, 2, 99), RL_EPOCH_STALE);
	ck_assert_int_eq(judge(&disk, 3, 7, RL_ZERO, 4, 1), RL_EPOCH_FUTURE);
	/* sequence numbers within the epoch */
	ck_assert_int_eq(judge(&disk, 3, 7, RL_WRITE, 3, 7), RL_EPOCH_DUP);
	ck_assert_int_eq(judge(&disk, 3, 7, RL_WRITE, 3, 2), RL_EPOCH_DUP);
	ck_assert_int_eq(judge(&disk, 3, 7, RL_DISCARD, 3, 8), RL_EPOCH_APPLY);
	ck_assert_int_eq(judge(&disk, 3, 7, RL_WRITE, 3, 9), RL_EPOCH_GAP);
	ck_assert_int_eq(judge(&disk, 3, 7, RL_WRITE, 3, 100), RL_EPOCH_GAP);
}
END_TEST

START_TEST(test_epoch_rules_catalog)
{
	/* records from before the first claim are applied as they come */
	ck_assert_int_eq(judge(&catalog, 0, 0, RL_CREATE, 0, 0),
			 RL_EPOCH_APPLY);
	ck_assert_int_eq(judge(&catalog, 0, 0, RL_CLAIM, 1, 0), RL_EPOCH_CLAIM);
	ck_assert_int_eq(judge(&catalog, 2, 0, RL_CLAIM, 2, 0), RL_EPOCH_STALE);
	/* no sequence numbers: every record of the epoch applies */
	ck_assert_int_eq(judge(&catalog, 2, 0, RL_RENAME, 2, 0),
			 RL_EPOCH_APPLY);
	ck_assert_int_eq(judge(&catalog, 2, 0, RL_DELETE, 2, 0),
			 RL_EPOCH_APPLY);
	ck_assert_int_eq(judge(&catalog, 2, 0, RL_SETATTR, 1, 0),
			 RL_EPOCH_STALE);
	ck_assert_int_eq(judge(&catalog, 2, 0, RL_CREATE, 3, 0),
			 RL_EPOCH_FUTURE);
}
END_TEST

static Suite *claim_suite(void)
{
	Suite *s = suite_create("claim");
	TCase *tc = tcase_create("epochs");

	tcase_add_test(tc, test_epoch_rules_disk);
	tcase_add_test(tc, test_epoch_rules_catalog);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_main(claim_suite());
}
