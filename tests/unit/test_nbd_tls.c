/*
 * TLS on NBD (nbd-tls.c): the PSK file's format against hostile text, the
 * lookup a handshake makes, the PSK file's mode, and which options and
 * exports a connection may use before and after TLS in each mode.
 */
#include "config.h"

#include <sys/stat.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmfd.h"
#include "nbd.h"

#define K32	"00112233445566778899aabbccddeeff" \
		"00112233445566778899AABBCCDDEEFF"

static char err[256];

static struct nbd_psks *
parse_ok(const char *text)
{
	struct nbd_psks *ps;

	ck_assert_msg(nbd_psk_parse(text, &ps, err, sizeof(err)) == 0,
	    "\"%s\": %s", text, err);
	return (ps);
}

static void
parse_bad(const char *text, const char *why)
{
	struct nbd_psks *ps = (void *)1;

	err[0] = '\0';
	ck_assert_msg(nbd_psk_parse(text, &ps, err, sizeof(err)) != 0,
	    "\"%s\" was taken", text);
	ck_assert_ptr_null(ps);
	ck_assert_msg(strstr(err, why) != NULL, "\"%s\": want \"%s\" in \"%s\"",
	    text, why, err);
	/* Never the key's bytes in a message. */
	ck_assert(strstr(err, "00112233") == NULL);
}

START_TEST(psk_file)
{
	struct nbd_psks *ps;
	uint8_t key[TLS_EXT_PSK_MAX];
	size_t len = 0;

	ps = parse_ok("# keys\n\nalice:" K32 "\r\nbob:0123456789abcdef"
	    "0123456789abcdef  \nmallory:" K32);
	ck_assert_int_eq(nbd_psks_count(ps), 3);
	ck_assert_int_eq(nbd_psk_lookup(ps, "alice", key, &len), 0);
	ck_assert_uint_eq(len, 32);
	ck_assert_uint_eq(key[0], 0x00);
	ck_assert_uint_eq(key[15], 0xff);
	ck_assert_uint_eq(key[31], 0xff);
	ck_assert_int_eq(nbd_psk_lookup(ps, "bob", key, &len), 0);
	ck_assert_uint_eq(len, 16);
	ck_assert_uint_eq(key[1], 0x23);
	ck_assert_int_eq(nbd_psk_lookup(ps, "mallory", key, &len), 0);
	ck_assert_int_eq(nbd_psk_lookup(ps, "eve", key, &len), -1);
	ck_assert_int_eq(nbd_psk_lookup(ps, "alic", key, &len), -1);
	ck_assert_int_eq(nbd_psk_lookup(ps, "", key, &len), -1);
	nbd_psks_free(ps);
	ck_assert_int_eq(nbd_psk_lookup(NULL, "alice", key, &len), -1);
	nbd_psks_free(NULL);
}
END_TEST

START_TEST(psk_file_bad)
{
	char big[8192];
	size_t n = 0;

	parse_bad("", "no keys");
	parse_bad("# only a comment\n\n", "no keys");
	parse_bad("alice " K32 "\n", "line 1 is not identity:hexkey");
	parse_bad("alice:" K32 "\n:" K32 "\n", "line 2 has an empty");
	parse_bad("al ice:" K32, "not printable");
	parse_bad("al\x01ice:" K32, "not printable");
	parse_bad("alice:0123", "not 16 to 64 bytes");
	parse_bad("alice:" K32 "0", "not 16 to 64 bytes");
	parse_bad("alice:" K32 K32 "00", "not 16 to 64 bytes");
	parse_bad("alice:" K32 "\n" "bob:" "0123456789abcdef0123456789abcdeg",
	    "line 2 has a key that is not hex");
	parse_bad("alice:" K32 "\nalice:" K32, "identity alice again");
	/* Too long an identity, too many keys. */
	memset(big, 'a', 200);
	snprintf(big + 200, sizeof(big) - 200, ":" K32);
	parse_bad(big, "too long identity");
	for (int i = 0; i <= NBD_PSK_MAX_KEYS; i++)
		n += snprintf(big + n, sizeof(big) - n, "u%d:%s\n", i,
		    "0123456789abcdef0123456789abcdef");
	parse_bad(big, "more than 64 keys");
}
END_TEST

START_TEST(psk_file_mode)
{
	char path[] = "/tmp/nvmfd-test-psk.XXXXXX";
	struct nbd_psks *ps;
	FILE *f;
	int fd;

	ck_assert_int_ne(fd = mkstemp(path), -1);
	ck_assert_ptr_nonnull(f = fdopen(fd, "w"));
	fprintf(f, "alice:%s\n", K32);
	fclose(f);
	chmod(path, 0644);
	ck_assert_int_eq(nbd_psk_load(path, &ps, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "chmod 600") != NULL, "%s", err);
	chmod(path, 0600);
	ck_assert_msg(nbd_psk_load(path, &ps, err, sizeof(err)) == 0, "%s",
	    err);
	ck_assert_int_eq(nbd_psks_count(ps), 1);
	nbd_psks_free(ps);
	ck_assert_int_eq(nbd_psk_load("relative.psk", &ps, err, sizeof(err)),
	    -1);
	unlink(path);
	ck_assert_int_eq(nbd_psk_load(path, &ps, err, sizeof(err)), -1);
	ck_assert_ptr_null(ps);
}
END_TEST

/* The option gate: every option, each mode, before and after TLS. */
START_TEST(option_gate)
{
	static const uint32_t opts[] = { NBD_OPT_EXPORT_NAME, NBD_OPT_ABORT,
	    NBD_OPT_LIST, NBD_OPT_INFO, NBD_OPT_GO, NBD_OPT_STRUCTURED_REPLY,
	    NBD_OPT_LIST_META_CONTEXT, NBD_OPT_SET_META_CONTEXT,
	    NBD_OPT_EXTENDED_HEADERS, 4, 12, 0xffffffff };

	/* STARTTLS */
	ck_assert_uint_eq(nbd_tls_option(PORT_TLS_OFF, false,
	    NBD_OPT_STARTTLS, 0), NBD_REP_ERR_UNSUP);
	ck_assert_uint_eq(nbd_tls_option(PORT_TLS_OPTIONAL, false,
	    NBD_OPT_STARTTLS, 0), NBD_TLS_START);
	ck_assert_uint_eq(nbd_tls_option(PORT_TLS_REQUIRED, false,
	    NBD_OPT_STARTTLS, 0), NBD_TLS_START);
	ck_assert_uint_eq(nbd_tls_option(PORT_TLS_REQUIRED, true,
	    NBD_OPT_STARTTLS, 0), NBD_REP_ERR_INVALID);
	ck_assert_uint_eq(nbd_tls_option(PORT_TLS_OPTIONAL, false,
	    NBD_OPT_STARTTLS, 1), NBD_REP_ERR_INVALID);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		uint32_t o = opts[i];
		uint32_t plain_req = nbd_tls_option(PORT_TLS_REQUIRED, false,
		    o, 0);

		/* off and optional: the option's own handling decides */
		ck_assert_uint_eq(nbd_tls_option(PORT_TLS_OFF, false, o, 0),
		    NBD_TLS_GO);
		ck_assert_uint_eq(nbd_tls_option(PORT_TLS_OPTIONAL, false, o,
		    7), NBD_TLS_GO);
		/* after TLS, never TLS_REQD */
		ck_assert_uint_eq(nbd_tls_option(PORT_TLS_REQUIRED, true, o,
		    0), NBD_TLS_GO);
		ck_assert_uint_eq(nbd_tls_option(PORT_TLS_OPTIONAL, true, o,
		    0), NBD_TLS_GO);
		if (o == NBD_OPT_ABORT)
			ck_assert_uint_eq(plain_req, NBD_TLS_GO);
		else if (o == NBD_OPT_EXPORT_NAME)
			ck_assert_uint_eq(plain_req, NBD_TLS_CLOSE);
		else
			ck_assert_uint_eq(plain_req, NBD_REP_ERR_TLS_REQD);
	}
	/* TLS-only exports */
	ck_assert(nbd_tls_export_ok(false, false));
	ck_assert(nbd_tls_export_ok(false, true));
	ck_assert(!nbd_tls_export_ok(true, false));
	ck_assert(nbd_tls_export_ok(true, true));
}
END_TEST

static Suite *
nbd_tls_suite(void)
{
	Suite *s = suite_create("nbd_tls");
	TCase *tc = tcase_create("nbd_tls");

	tcase_add_test(tc, psk_file);
	tcase_add_test(tc, psk_file_bad);
	tcase_add_test(tc, psk_file_mode);
	tcase_add_test(tc, option_gate);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(nbd_tls_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
