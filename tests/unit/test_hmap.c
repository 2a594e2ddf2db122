/*
 * hmap: puts, gets and deletes of many keys, with every remaining key still
 * found after each delete (backward-shift deletion keeps probe runs whole),
 * replacement of an equal key, and deletion guarded by the value.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

#define N	5000

static char keys[N][32];

static void
make_keys(void)
{
	for (int i = 0; i < N; i++)
		snprintf(keys[i], sizeof(keys[i]), "nqn.2026-11.io.test:%d", i);
}

START_TEST(test_put_get_del)
{
	struct hmap m;

	make_keys();
	hmap_init(&m);
	ck_assert_ptr_null(hmap_get(&m, "x", 1));
	ck_assert_ptr_null(hmap_del(&m, "x", 1, NULL));
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(hmap_put(&m, keys[i], strlen(keys[i]),
		    keys[i]), 0);
	ck_assert_uint_eq(m.n, N);
	ck_assert_uint_le(m.n * 4, m.cap * 3);
	for (int i = 0; i < N; i++)
		ck_assert_ptr_eq(hmap_get(&m, keys[i], strlen(keys[i])),
		    keys[i]);
	ck_assert_ptr_null(hmap_get(&m, "nqn.2026-11.io.test:5000", 24));

	/* Delete every third key; all others must still be found. */
	for (int i = 0; i < N; i += 3)
		ck_assert_ptr_eq(hmap_del(&m, keys[i], strlen(keys[i]), NULL),
		    keys[i]);
	for (int i = 0; i < N; i++)
		ck_assert_ptr_eq(hmap_get(&m, keys[i], strlen(keys[i])),
		    i % 3 == 0 ? NULL : keys[i]);
	ck_assert_uint_eq(m.n, N - (N + 2) / 3);

	/* The value guards deletion; an equal key replaces the value. */
	ck_assert_ptr_null(hmap_del(&m, keys[1], strlen(keys[1]), keys[2]));
	ck_assert_ptr_eq(hmap_get(&m, keys[1], strlen(keys[1])), keys[1]);
	ck_assert_int_eq(hmap_put(&m, keys[1], strlen(keys[1]), keys[2]), 0);
	ck_assert_ptr_eq(hmap_get(&m, keys[1], strlen(keys[1])), keys[2]);
	ck_assert_uint_eq(m.n, N - (N + 2) / 3);

	/* Empty it, then fill it again: no slot is left behind. */
	for (int i = 0; i < N; i++)
		hmap_del(&m, keys[i], strlen(keys[i]), NULL);
	ck_assert_uint_eq(m.n, 0);
	for (size_t i = 0; i < m.cap; i++)
		ck_assert_ptr_null(m.slots[i].key);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(hmap_put(&m, keys[i], strlen(keys[i]),
		    keys[i]), 0);
	ck_assert_ptr_eq(hmap_get(&m, keys[N - 1], strlen(keys[N - 1])),
	    keys[N - 1]);
	hmap_free(&m);
	ck_assert_uint_eq(m.cap, 0);
}
END_TEST

/* Binary keys of the same length that differ in one byte. */
START_TEST(test_binary_keys)
{
	static uint8_t ids[256][16];
	struct hmap m;

	hmap_init(&m);
	for (int i = 0; i < 256; i++) {
		ids[i][15] = (uint8_t)i;
		ck_assert_int_eq(hmap_put(&m, ids[i], 16, ids[i]), 0);
	}
	for (int i = 0; i < 256; i++)
		ck_assert_ptr_eq(hmap_get(&m, ids[i], 16), ids[i]);
	ck_assert_ptr_null(hmap_get(&m, ids[0], 8));
	hmap_free(&m);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("hmap");
	TCase *tc = tcase_create("hmap");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_put_get_del);
	tcase_add_test(tc, test_binary_keys);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
