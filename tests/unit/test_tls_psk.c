/*
 * TLS PSKs: the interchange format (good and bad strings), identities and
 * derivations against libnvme's published vectors (tests/psk.c) and values
 * computed independently for the RFC 8446 and compat HKDF layouts.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"
#include "tls.h"

#define HOST	"nqn.psk-test-host"
#define SUB	"nqn.psk-test-subsys"
#define KEY32	"NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"
#define KEY48	"NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwP/w0S89ELi3W2LxIcLXVsDn8kXZQ==:"

static const uint8_t psk32[32] = {
	0x55, 0x12, 0xdb, 0xb6, 0x73, 0x7d, 0x01, 0x06, 0xf6, 0x59, 0x75, 0xb7,
	0x73, 0xdf, 0xb0, 0x11, 0xff, 0xc3, 0x44, 0xbc, 0xf4, 0x42, 0xe2, 0xdd,
	0x6d, 0x8b, 0xc4, 0x87, 0x0b, 0x5d, 0x5b, 0x03,
};

static void
unhex(const char *s, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned v;

		ck_assert(sscanf(s + 2 * i, "%2x", &v) == 1);
		out[i] = v;
	}
	ck_assert_uint_eq(strlen(s), 2 * len);
}

static void
check_bytes(const uint8_t *got, size_t gotlen, const char *hex)
{
	uint8_t want[TLS_PSK_MAX];

	ck_assert_uint_eq(gotlen, strlen(hex) / 2);
	unhex(hex, want, gotlen);
	ck_assert_mem_eq(got, want, gotlen);
}

static void
parse_ok(const char *s, struct tls_key *k)
{
	const char *why;

	ck_assert_msg(tls_key_parse(s, k, &why) == 0, "%s: %s", s, why);
}

static void
parse_bad(const char *s)
{
	struct tls_key k;
	const char *why = NULL;

	ck_assert_msg(tls_key_parse(s, &k, &why) == -1, "accepted %s", s);
	ck_assert_ptr_nonnull(why);
	ck_assert_uint_eq(k.len, 0);
}

START_TEST(interchange)
{
	struct tls_key k;

	parse_ok(KEY32, &k);
	ck_assert_int_eq(k.hmac, 1);
	ck_assert_uint_eq(k.len, 32);
	ck_assert_mem_eq(k.key, psk32, 32);
	parse_ok("NVMeTLSkey-1:00:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:",
	    &k);
	ck_assert_int_eq(k.hmac, 0);
	ck_assert_int_eq(tls_key_hash(&k), 1);
	parse_ok(KEY48, &k);
	ck_assert_int_eq(k.hmac, 2);
	ck_assert_uint_eq(k.len, 48);
	ck_assert_mem_eq(k.key, psk32, 32);
	ck_assert_mem_eq(k.key + 32, psk32 + 16, 16);
}
END_TEST

START_TEST(interchange_bad)
{
	/* CRC: last key byte changed (03 -> 02). */
	parse_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwJf9LrZ:");
	/* Unknown hash. */
	parse_bad("NVMeTLSkey-1:03:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:");
	parse_bad("NVMeTLSkey-1:1:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:");
	/* Hash and length disagree: a 32-byte key named SHA-384. */
	parse_bad("NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:");
	/* Wrong lengths: 16 bytes + CRC, truncated base64. */
	parse_bad("NVMeTLSkey-1:00:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:");
	parse_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9Lr:");
	/* Framing. */
	parse_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ");
	parse_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ::");
	parse_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0Qu dbYvEhwtdWwNf9LrZ:");
	parse_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWw=f9LrZ:");
	parse_bad("NVMeTLSkey-1:01::");
	parse_bad("NVMeTLSkey-2:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:");
	parse_bad("DHHC-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:");
	parse_bad("");
	parse_bad("NVMeTLSkey-1:");
}
END_TEST

START_TEST(identities)
{
	uint8_t retained[TLS_PSK_MAX];
	char id[TLS_IDENTITY_MAX + 1];
	struct tls_key k;

	parse_ok(KEY32, &k);
	ck_assert_int_eq(tls_retained_psk(&k, HOST, TLS_KDF_RFC8446,
	    retained), 0);
	check_bytes(retained, 32,
	    "073311dec37e219ff3acd43f130130c5bdd443c066e1cc3424e49030234ff7d5");
	ck_assert_int_eq(tls_identity_build(1, 1, retained, 32, HOST, SUB, id,
	    sizeof(id)), 0);
	ck_assert_str_eq(id, "NVMe1R01 " HOST " " SUB
	    " iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lEU=");
	ck_assert_int_eq(tls_identity_build(0, 1, retained, 32, HOST, SUB, id,
	    sizeof(id)), 0);
	ck_assert_str_eq(id, "NVMe0R01 " HOST " " SUB);

	parse_ok(KEY48, &k);
	ck_assert_int_eq(tls_retained_psk(&k, HOST, TLS_KDF_RFC8446,
	    retained), 0);
	ck_assert_int_eq(tls_identity_build(1, 2, retained, 48, HOST, SUB, id,
	    sizeof(id)), 0);
	ck_assert_str_eq(id, "NVMe1R02 " HOST " " SUB
	    " QhW2+Rp6RzHlNtCslyRxMnwJ11tKKhz8JCAQpQ+XUD8f9td1VeH5h53yz2wKJG1a");
}
END_TEST

static void
derive(const char *key, const char *identity, enum tls_kdf kdf,
    const char *want)
{
	struct tls_identity ti;
	struct tls_key k;
	uint8_t out[TLS_PSK_MAX];
	size_t len = 0;

	parse_ok(key, &k);
	ck_assert_int_eq(tls_identity_parse((const uint8_t *)identity,
	    strlen(identity), &ti), 0);
	ck_assert_int_eq(tls_psk_for_identity(&k, &ti, identity, kdf, out,
	    &len), 0);
	check_bytes(out, len, want);
}

START_TEST(tls_psk_rfc8446)
{
	derive(KEY32, "NVMe0R01 " HOST " " SUB, TLS_KDF_RFC8446,
	    "05c6503551ad136e6ee32e6eeb3f6d500b69701d84ec71e328f65c7f51566f68");
	derive(KEY32, "NVMe1R01 " HOST " " SUB
	    " iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lEU=", TLS_KDF_RFC8446,
	    "8fc3c0badfd4c0c66fa3ca33aadd0314f85536cc9bc47338b60f3e6e563786ca");
	derive(KEY48, "NVMe1R02 " HOST " " SUB
	    " QhW2+Rp6RzHlNtCslyRxMnwJ11tKKhz8JCAQpQ+XUD8f9td1VeH5h53yz2wKJG1a",
	    TLS_KDF_RFC8446,
	    "a2b2f943f479fc682555cec89857c80ed004ce92f32a973d5764155bb7e36b17"
	    "a85368a0666d250afac9282dda2e62ca");
}
END_TEST

/* What nvme-cli 2.13 puts into the kernel keyring (computed outside). */
START_TEST(tls_psk_compat)
{
	derive(KEY32, "NVMe0R01 " HOST " " SUB, TLS_KDF_COMPAT,
	    "09fb1983ac6d6d0353e7cae4f23daddd651c367fa347c59d9cf6936f5a83eafb");
	derive(KEY48, "NVMe0R02 " HOST " " SUB, TLS_KDF_COMPAT,
	    "2ee4754186a625b28a3936ef4a40d839c3ad958b2e017562ee07e2501f172ce9"
	    "99dc9c29033ea7ee33f814f192c13f47");
	derive("NVMeTLSkey-1:00:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:",
	    "NVMe0R01 " HOST " " SUB, TLS_KDF_COMPAT,
	    "e2b16189378b34adba9fec995ab479040cedec0bc7c6b47728ee4d8de6ff52ba");
}
END_TEST

static int
parse_id(const char *s)
{
	struct tls_identity ti;

	return (tls_identity_parse((const uint8_t *)s, strlen(s), &ti));
}

START_TEST(identity_bad)
{
	struct tls_identity ti;
	struct tls_key k;
	uint8_t out[TLS_PSK_MAX], big[2048];
	size_t len;
	const char *v1 = "NVMe1R01 " HOST " " SUB
	    " iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lEU=";

	ck_assert_int_eq(parse_id("NVMe0R01 " HOST " " SUB), 0);
	ck_assert_int_eq(parse_id(v1), 0);
	ck_assert_int_eq(parse_id("NVMe0R01 " HOST " " SUB " "), -1);
	ck_assert_int_eq(parse_id("NVMe0R01 " HOST "  " SUB), -1);
	ck_assert_int_eq(parse_id("NVMe0R01 " HOST), -1);
	ck_assert_int_eq(parse_id("NVMe0R03 " HOST " " SUB), -1);
	ck_assert_int_eq(parse_id("NVMe2R01 " HOST " " SUB), -1);
	ck_assert_int_eq(parse_id("NVMe0X01 " HOST " " SUB), -1);
	ck_assert_int_eq(parse_id("NVMe1R01 " HOST " " SUB " short="), -1);
	ck_assert_int_eq(parse_id("NVMe0R01"), -1);
	ck_assert_int_eq(parse_id(""), -1);
	ck_assert_int_eq(tls_identity_parse((const uint8_t *)"NVMe0R01 a\0b c",
	    14, &ti), -1);
	/* Oversized and overlong fields. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "NVMe0R01 ", 9);
	ck_assert_int_eq(tls_identity_parse(big, sizeof(big), &ti), -1);
	big[9 + 300] = ' ';
	ck_assert_int_eq(tls_identity_parse(big, 9 + 400, &ti), -1);
	/* A v1 digest that does not match the key; a hash the key lacks. */
	parse_ok(KEY32, &k);
	ck_assert_int_eq(tls_identity_parse((const uint8_t *)v1, strlen(v1),
	    &ti), 0);
	ti.digest[0] = 'j';
	ck_assert_int_eq(tls_psk_for_identity(&k, &ti, v1, TLS_KDF_RFC8446,
	    out, &len), -1);
	ck_assert_int_eq(parse_id("NVMe0R02 " HOST " " SUB), 0);
	tls_identity_parse((const uint8_t *)"NVMe0R02 " HOST " " SUB,
	    strlen("NVMe0R02 " HOST " " SUB), &ti);
	ck_assert_int_eq(tls_psk_for_identity(&k, &ti, "NVMe0R02 " HOST " " SUB,
	    TLS_KDF_COMPAT, out, &len), -1);
}
END_TEST

static Suite *
tls_psk_suite(void)
{
	Suite *s = suite_create("tls_psk");
	TCase *tc = tcase_create("tls_psk");

	tcase_add_test(tc, interchange);
	tcase_add_test(tc, interchange_bad);
	tcase_add_test(tc, identities);
	tcase_add_test(tc, tls_psk_rfc8446);
	tcase_add_test(tc, tls_psk_compat);
	tcase_add_test(tc, identity_bad);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(tls_psk_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
