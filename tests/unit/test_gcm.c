/*
 * Our AES-GCM (gcm-vaes.c): the GCM specification's test cases, then
 * OpenSSL's EVP as the reference over random keys, nonces, additional
 * data, lengths and piece boundaries, in place and not; and TLS records
 * sealed by one engine and opened by the other.  On a CPU without VAES
 * and VPCLMULQDQ the engine is not used and these tests say so.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "gcm.h"
#include "nvmfd.h"
#include "tls.h"
#include "../gcm-evp.h"

#define BIG	(3 * 16384 + 77)

static void
unhex(const char *s, uint8_t *out, size_t len)
{
	ck_assert_uint_eq(strlen(s), 2 * len);
	for (size_t i = 0; i < len; i++) {
		unsigned v;

		ck_assert(sscanf(s + 2 * i, "%2x", &v) == 1);
		out[i] = v;
	}
}

static bool
usable(void)
{
	if (gcm_fast_usable())
		return (true);
	printf("test_gcm: this CPU has no VAES/VPCLMULQDQ: engine not "
	    "tested (TLS uses OpenSSL here)\n");
	return (false);
}

/* OpenSSL's answer for the same message. */
/* Feed len bytes to the engine in random pieces, some tiny. */
static void
fast_pieces(struct gcm_fast *g, bool enc, uint8_t *out, const uint8_t *in,
    size_t len)
{
	size_t off = 0;

	while (off < len) {
		size_t p = random() % 3 == 0 ? (size_t)(random() % 40) :
		    (size_t)random() % (len - off + 1);

		if (p > len - off)
			p = len - off;
		gcm_fast_update(g, enc, out + off, in + off, p);
		off += p;
	}
}

/* The GCM specification's test cases 4 (AES-128) and 16 (AES-256). */
START_TEST(spec_vectors)
{
	static const char *keys[] = {
		"feffe9928665731c6d6a8f9467308308",
		"feffe9928665731c6d6a8f9467308308"
		    "feffe9928665731c6d6a8f9467308308",
	};
	static const char *cts[] = {
		"42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e23"
		    "29aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac97"
		    "3d58e091",
		"522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd"
		    "2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0a"
		    "bcc9f662",
	};
	static const char *tags[] = {
		"5bc94fbc3221a5db94fae95ae7121a47",
		"76fc6ece0f4e1768cddf8853bb2d551b",
	};
	uint8_t key[32], iv[12], aad[20], pt[60], ct[60], want[60], tag[16],
	    wtag[16];
	struct gcm_fast *g;

	if (!usable())
		return;
	g = aligned_alloc(64, sizeof(*g));
	ck_assert_ptr_nonnull(g);
	unhex("cafebabefacedbaddecaf888", iv, 12);
	unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, 20);
	unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", pt, 60);
	for (int i = 0; i < 2; i++) {
		size_t klen = i == 0 ? 16 : 32;

		unhex(keys[i], key, klen);
		unhex(cts[i], want, 60);
		unhex(tags[i], wtag, 16);
		ck_assert_int_eq(gcm_fast_init(g, key, klen), 0);
		gcm_fast_start(g, iv, aad, sizeof(aad));
		gcm_fast_update(g, true, ct, pt, sizeof(pt));
		gcm_fast_tag(g, tag);
		ck_assert_mem_eq(ct, want, sizeof(ct));
		ck_assert_mem_eq(tag, wtag, sizeof(tag));
	}
	ck_assert_int_eq(gcm_fast_init(g, key, 24), -1);
	gcm_fast_clear(g);
	free(g);
}
END_TEST

START_TEST(against_openssl)
{
	uint8_t *in = malloc(BIG), *ref = malloc(BIG + 16), *out = malloc(BIG);
	uint8_t key[32], iv[12], aad[40], tag[16], rtag[16];
	struct gcm_fast *g = aligned_alloc(64, sizeof(*g));

	ck_assert(in != NULL && ref != NULL && out != NULL && g != NULL);
	if (!usable())
		goto out;
	srandom(12345);
	for (int it = 0; it < 3000; it++) {
		size_t klen = it % 2 ? 32 : 16, alen = random() % 41;
		size_t len = it < 2000 ? (size_t)(random() % 700) :
		    (size_t)(random() % BIG);

		ck_assert_int_eq(RAND_bytes(key, sizeof(key)), 1);
		ck_assert_int_eq(RAND_bytes(iv, sizeof(iv)), 1);
		ck_assert_int_eq(RAND_bytes(aad, sizeof(aad)), 1);
		ck_assert_int_eq(RAND_bytes(in, BIG), 1);
		ck_assert_int_eq(gcm_evp_seal(key, klen, iv, aad, alen, in, len,
		    ref, rtag), 0);

		ck_assert_int_eq(gcm_fast_init(g, key, klen), 0);
		gcm_fast_start(g, iv, aad, alen);
		fast_pieces(g, true, out, in, len);
		gcm_fast_tag(g, tag);
		ck_assert_msg(memcmp(out, ref, len) == 0,
		    "ciphertext differs: klen %zu len %zu", klen, len);
		ck_assert_msg(memcmp(tag, rtag, 16) == 0,
		    "tag differs: klen %zu alen %zu len %zu", klen, alen, len);

		/* Decrypt in place, in other pieces. */
		gcm_fast_start(g, iv, aad, alen);
		fast_pieces(g, false, out, out, len);
		gcm_fast_tag(g, tag);
		ck_assert_msg(memcmp(out, in, len) == 0,
		    "plaintext differs: len %zu", len);
		ck_assert_mem_eq(tag, rtag, 16);

		/* One flipped ciphertext bit changes the tag. */
		if (len > 0) {
			ref[random() % len] ^= 1 << (random() % 8);
			gcm_fast_start(g, iv, aad, alen);
			gcm_fast_update(g, false, out, ref, len);
			gcm_fast_tag(g, tag);
			ck_assert(memcmp(tag, rtag, 16) != 0);
		}
	}
out:
	gcm_fast_clear(g);
	free(g);
	free(in);
	free(ref);
	free(out);
}
END_TEST

/* Records sealed by our engine open with OpenSSL's, and the reverse. */
static void
cross(uint16_t suite, bool fast_seals)
{
	uint8_t secret[48], *rec = malloc(TLS_REC_WIRE), *buf = malloc(16384);
	uint8_t *back = malloc(16384), type = 0;
	struct tls_rec seal, open;
	struct iovec iov[2];
	size_t slen = suite == 0x1302 ? 48 : 32;

	ck_assert(rec != NULL && buf != NULL && back != NULL);
	ck_assert_int_eq(RAND_bytes(secret, sizeof(secret)), 1);
	ck_assert_int_eq(RAND_bytes(buf, 16384), 1);
	setenv("NVMFD_TLS_GCM", "openssl", 1);
	if (fast_seals)
		unsetenv("NVMFD_TLS_GCM");
	ck_assert_int_eq(tls_rec_init(&seal, suite, secret, slen, true), 0);
	ck_assert(fast_seals == (seal.fast != NULL));
	if (fast_seals)
		setenv("NVMFD_TLS_GCM", "openssl", 1);
	else
		unsetenv("NVMFD_TLS_GCM");
	ck_assert_int_eq(tls_rec_init(&open, suite, secret, slen, false), 0);
	ck_assert(fast_seals == (open.fast == NULL));
	unsetenv("NVMFD_TLS_GCM");
	for (int i = 0; i < 40; i++) {
		size_t a = random() % 200, b = random() % (16384 - 200);
		ssize_t w, n;

		if (i == 3)	/* a KeyUpdate on both sides */
			ck_assert(tls_rec_rekey(&seal) == 0 &&
			    tls_rec_rekey(&open) == 0);
		iov[0] = (struct iovec){ buf, a };
		iov[1] = (struct iovec){ buf + a, b };
		w = tls_rec_seal(&seal, TLS_CT_APPDATA, iov, 2, 0, a + b, rec);
		ck_assert_int_eq(w, TLS_REC_SEALED(a + b));
		iov[0] = (struct iovec){ back, 7 };
		iov[1] = (struct iovec){ back + 7, 16384 - 7 };
		n = tls_rec_open(&open, rec, iov, 2, &type);
		ck_assert_int_eq(n, a + b);
		ck_assert_int_eq(type, TLS_CT_APPDATA);
		ck_assert_mem_eq(back, buf, a + b);
		if (i == 39) {	/* a tampered tag is refused */
			w = tls_rec_seal(&seal, TLS_CT_APPDATA, iov, 1, 0, 5,
			    rec);
			rec[w - 1] ^= 0x80;
			ck_assert_int_eq(tls_rec_open(&open, rec, NULL, 0,
			    &type), -1);
		}
	}
	tls_rec_free(&seal);
	tls_rec_free(&open);
	free(rec);
	free(buf);
	free(back);
}

START_TEST(records_cross)
{
	if (!usable())
		return;
	cross(0x1301, true);
	cross(0x1301, false);
	cross(0x1302, true);
	cross(0x1302, false);
}
END_TEST

static Suite *
gcm_suite(void)
{
	Suite *s = suite_create("gcm");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, spec_vectors);
	tcase_add_test(tc, against_openssl);
	tcase_add_test(tc, records_cross);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(gcm_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
