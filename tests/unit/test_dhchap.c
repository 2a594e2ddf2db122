/*
 * DH-HMAC-CHAP crypto: secret parsing (good, bad CRC, bad lengths, unknown
 * hash), the transformation and response known answers, and every DH group
 * against OpenSSL's own modular exponentiation.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "nvmfd.h"
#include "auth.h"

#define EXAMPLE_KEY	"DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:"
#define EXAMPLE_HOST	"nqn.2014-08.org.nvmexpress:uuid:" \
			    "00000000-0000-0000-0000-000000000001"
#define EXAMPLE_SUBSYS	"nqn.2024-01.io.example:sub1"

static void
unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		ck_assert(sscanf(s + 2 * i, "%2x", &v) == 1);
		out[i] = v;
	}
}

START_TEST(key_parse_example)
{
	struct dhchap_key k;
	char err[128], buf[128];

	ck_assert_int_eq(dhchap_key_parse(EXAMPLE_KEY, &k, err, sizeof(err)), 0);
	ck_assert_uint_eq(k.len, 32);
	ck_assert_uint_eq(k.xform, 1);
	for (int i = 0; i < 32; i++)
		ck_assert_uint_eq(k.data[i], i);
	ck_assert_int_eq(dhchap_key_format(&k, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, EXAMPLE_KEY);
	dhchap_key_clear(&k);
	ck_assert_uint_eq(k.len, 0);
}
END_TEST

/* 48- and 64-byte secrets round-trip through format and parse. */
START_TEST(key_lengths)
{
	struct dhchap_key k, k2;
	char err[128], buf[160];
	size_t lens[] = { 32, 48, 64 };

	for (size_t i = 0; i < nitems(lens); i++) {
		memset(&k, 0, sizeof(k));
		k.len = lens[i];
		k.xform = i + 1;
		for (size_t j = 0; j < k.len; j++)
			k.data[j] = 0xa5 ^ (uint8_t)j;
		ck_assert_int_eq(dhchap_key_format(&k, buf, sizeof(buf)), 0);
		ck_assert_int_eq(dhchap_key_parse(buf, &k2, err, sizeof(err)), 0);
		ck_assert_uint_eq(k2.len, k.len);
		ck_assert_uint_eq(k2.xform, k.xform);
		ck_assert_mem_eq(k2.data, k.data, k.len);
	}
}
END_TEST

START_TEST(key_refused)
{
	struct dhchap_key k;
	char err[128];
	/* The example with one base64 character changed: the CRC fails. */
	const char *bad_crc =
	    "DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:";
	struct dhchap_key s31 = { .len = 31 };
	char short_key[128];

	ck_assert_int_eq(dhchap_key_parse(bad_crc, &k, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "CRC"));
	ck_assert_int_eq(dhchap_key_parse(
	    "DHHC-1:04:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:",
	    &k, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "transformation hash 04"));
	ck_assert_int_eq(dhchap_key_parse("DHHC-2:01:AAAA:", &k, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(dhchap_key_parse(
	    "DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR",
	    &k, err, sizeof(err)), -1);
	ck_assert_int_eq(dhchap_key_parse("DHHC-1:01:AAE*:", &k, err,
	    sizeof(err)), -1);
	/* A well-formed 31-byte secret with its CRC: the length is refused. */
	ck_assert_int_eq(dhchap_key_format(&s31, short_key,
	    sizeof(short_key)), 0);
	ck_assert_int_eq(dhchap_key_parse(short_key, &k, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "must be 32, 48 or 64"));
	ck_assert_uint_eq(k.len, 0);
}
END_TEST

/* protocol-notes 5.5 / 5.6: Kh, then R1 with SHA-256 and the NULL group. */
START_TEST(response_example)
{
	struct dhchap_key k;
	uint8_t kh[64], want[32], c1[32], r1[32];
	size_t khlen;
	char err[128];

	ck_assert_int_eq(dhchap_key_parse(EXAMPLE_KEY, &k, err, sizeof(err)), 0);
	ck_assert_int_eq(dhchap_transform(&k, EXAMPLE_HOST, kh, &khlen), 0);
	ck_assert_uint_eq(khlen, 32);
	unhex("6c7b81cb2a746f74454b1d7140f3153b51ca99459fcef7a86a17f27695b87cd8",
	    want, 32);
	ck_assert_mem_eq(kh, want, 32);
	memset(c1, 0xaa, sizeof(c1));
	ck_assert_int_eq(dhchap_response(DHCHAP_SHA256, kh, khlen, c1,
	    0x12345678, 1, 0, "HostHost", EXAMPLE_HOST, EXAMPLE_SUBSYS, r1), 0);
	unhex("c9a60da9fb27d87837b56bc9c95ad4771f8863f9be233bb58129c544ba690440",
	    want, 32);
	ck_assert_mem_eq(r1, want, 32);
	ck_assert(dhchap_equal(r1, want, 32));
	r1[31] ^= 1;
	ck_assert(!dhchap_equal(r1, want, 32));
}
END_TEST

/* XX = 00 uses the secret as it is; the response length follows the hash. */
START_TEST(transform_none_and_hash_lengths)
{
	struct dhchap_key k = { .len = 48, .xform = 0 };
	uint8_t out[64], c[64] = { 0 }, r[64];
	size_t olen;

	memset(k.data, 7, k.len);
	ck_assert_int_eq(dhchap_transform(&k, EXAMPLE_HOST, out, &olen), 0);
	ck_assert_uint_eq(olen, 48);
	ck_assert_mem_eq(out, k.data, 48);
	k.xform = DHCHAP_SHA512;
	ck_assert_int_eq(dhchap_transform(&k, EXAMPLE_HOST, out, &olen), 0);
	ck_assert_uint_eq(olen, 64);
	ck_assert_uint_eq(dhchap_hash_len(DHCHAP_SHA384), 48);
	ck_assert_uint_eq(dhchap_hash_len(4), 0);
	ck_assert_int_eq(dhchap_response(4, out, olen, c, 1, 1, 0, "Controller",
	    EXAMPLE_SUBSYS, EXAMPLE_HOST, r), -1);
	ck_assert_int_eq(dhchap_hash_id("sha384"), DHCHAP_SHA384);
	ck_assert_int_eq(dhchap_group_id("ffdhe6144"), 4);
	ck_assert_int_eq(dhchap_group_id("ffdhe1024"), -1);
}
END_TEST

/* peer^x mod p with BN_mod_exp, from x and p as OpenSSL stores them. */
static void
reference_z(struct dhchap_dh *dh_unused, EVP_PKEY *mine, const uint8_t *peer,
    size_t len, uint8_t *z)
{
	BIGNUM *x = NULL, *p = NULL, *y, *r;
	BN_CTX *bc = BN_CTX_new();

	(void)dh_unused;
	ck_assert(EVP_PKEY_get_bn_param(mine, OSSL_PKEY_PARAM_PRIV_KEY, &x) == 1);
	ck_assert(EVP_PKEY_get_bn_param(mine, OSSL_PKEY_PARAM_FFC_P, &p) == 1);
	y = BN_bin2bn(peer, len, NULL);
	r = BN_new();
	ck_assert(BN_mod_exp(r, y, x, p, bc) == 1);
	ck_assert_int_eq(BN_bn2binpad(r, z, len), (int)len);
	BN_clear_free(x);
	BN_free(p);
	BN_free(y);
	BN_free(r);
	BN_CTX_free(bc);
}

/* The layout of struct dhchap_dh is private; its first members are known. */
struct dh_view {
	uint8_t		group;
	EVP_PKEY	*pkey;
};

START_TEST(dh_groups)
{
	uint8_t g = _i + 1;
	size_t gs = dhchap_group_size(g);
	struct dhchap_dh *a, *b;
	uint8_t *pa, *pb, *za, *zb, *zr;

	static const size_t sizes[] = { 256, 384, 512, 768, 1024 };

	ck_assert_uint_eq(gs, sizes[_i]);
	a = dhchap_dh_new(g);
	b = dhchap_dh_new(g);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	pa = malloc(gs);
	pb = malloc(gs);
	za = malloc(gs);
	zb = malloc(gs);
	zr = malloc(gs);
	ck_assert_int_eq(dhchap_dh_public(a, pa, gs), 0);
	ck_assert_int_eq(dhchap_dh_public(b, pb, gs), 0);
	ck_assert_int_eq(dhchap_dh_public(a, pa, gs - 1), -1);
	ck_assert_int_eq(dhchap_dh_derive(a, pb, gs, za, gs), 0);
	ck_assert_int_eq(dhchap_dh_derive(b, pa, gs, zb, gs), 0);
	ck_assert_mem_eq(za, zb, gs);
	reference_z(a, ((struct dh_view *)a)->pkey, pb, gs, zr);
	ck_assert_mem_eq(za, zr, gs);
	/* Wrong length, 0, 1 and p-1 are refused. */
	ck_assert_int_eq(dhchap_dh_derive(a, pb, gs - 1, za, gs), -1);
	memset(pb, 0, gs);
	ck_assert_int_eq(dhchap_dh_derive(a, pb, gs, za, gs), -1);
	pb[gs - 1] = 1;
	ck_assert_int_eq(dhchap_dh_derive(a, pb, gs, za, gs), -1);
	memset(pb, 0xff, gs);	/* above p: every ffdhe p has top bits 1 */
	ck_assert_int_eq(dhchap_dh_derive(a, pb, gs, za, gs), -1);
	dhchap_dh_free(a);
	dhchap_dh_free(b);
	free(pa);
	free(pb);
	free(za);
	free(zb);
	free(zr);
}
END_TEST

START_TEST(dh_null_group)
{
	ck_assert_ptr_null(dhchap_dh_new(DHCHAP_NULL));
	ck_assert_ptr_null(dhchap_dh_new(6));
}
END_TEST

/* The augmented challenge is HMAC(H(Z), C). */
START_TEST(augment)
{
	uint8_t z[256], c[32], out[32], hz[32], want[32];
	unsigned int l;

	memset(z, 3, sizeof(z));
	memset(c, 5, sizeof(c));
	ck_assert_int_eq(dhchap_augment(DHCHAP_SHA256, z, sizeof(z), c, out), 0);
	EVP_Digest(z, sizeof(z), hz, &l, EVP_sha256(), NULL);
	HMAC(EVP_sha256(), hz, 32, c, 32, want, &l);
	ck_assert_mem_eq(out, want, 32);
}
END_TEST

static Suite *
dhchap_suite(void)
{
	Suite *s = suite_create("dhchap");
	TCase *tc = tcase_create("dhchap");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, key_parse_example);
	tcase_add_test(tc, key_lengths);
	tcase_add_test(tc, key_refused);
	tcase_add_test(tc, response_example);
	tcase_add_test(tc, transform_none_and_hash_lengths);
	tcase_add_loop_test(tc, dh_groups, 0, 5);
	tcase_add_test(tc, dh_null_group);
	tcase_add_test(tc, augment);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(dhchap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
