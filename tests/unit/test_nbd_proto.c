/*
 * NBD protocol helpers: option and request parsing against hostile
 * input, the checks a request meets before it reaches NVMe, the mapping
 * of NVMe status to NBD errors, and the reply headers.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"
#include "nbd-proto.h"

static const struct nbd_geom geom = {
	.size = 1 << 20, .block = 512, .max_payload = 65536,
	.flush = true, .trim = true, .zeroes = true, .fua = true,
};

static void
req_bytes(uint8_t *p, uint32_t magic, uint16_t flags, uint16_t type,
    uint64_t cookie, uint64_t off, uint32_t len)
{
	nbd_put32(p, magic);
	nbd_put16(p + 4, flags);
	nbd_put16(p + 6, type);
	nbd_put64(p + 8, cookie);
	nbd_put64(p + 16, off);
	nbd_put32(p + 24, len);
}

static uint32_t
check_neg(uint16_t type, uint16_t flags, uint64_t off, uint64_t len,
    const struct nbd_geom *g, unsigned neg)
{
	struct nbd_request r = { .type = type, .flags = flags, .offset = off,
	    .length = len };

	return (nbd_check_request(&r, g, neg));
}

static uint32_t
check(uint16_t type, uint16_t flags, uint64_t off, uint32_t len,
    const struct nbd_geom *g)
{
	return (check_neg(type, flags, off, len, g, 0));
}

/* META_CONTEXT data: name, then the queries. */
static uint32_t
meta_bytes(uint8_t *d, const char *name, int nq, const char **q)
{
	uint32_t o = 0;

	nbd_put32(d, (uint32_t)strlen(name));
	memcpy(d + 4, name, strlen(name));
	o = 4 + (uint32_t)strlen(name);
	nbd_put32(d + o, (uint32_t)nq);
	o += 4;
	for (int i = 0; i < nq; i++) {
		nbd_put32(d + o, (uint32_t)strlen(q[i]));
		memcpy(d + o + 4, q[i], strlen(q[i]));
		o += 4 + (uint32_t)strlen(q[i]);
	}
	return (o);
}

START_TEST(opt_header)
{
	uint8_t p[16];
	uint32_t opt, len;

	nbd_put64(p, NBD_IHAVEOPT);
	nbd_put32(p + 8, NBD_OPT_GO);
	nbd_put32(p + 12, 1234);
	ck_assert_int_eq(nbd_parse_opt_hdr(p, &opt, &len), 0);
	ck_assert_uint_eq(opt, NBD_OPT_GO);
	ck_assert_uint_eq(len, 1234);
	p[0] ^= 1;
	ck_assert_int_eq(nbd_parse_opt_hdr(p, &opt, &len), -1);
}
END_TEST

START_TEST(go_data)
{
	uint8_t d[600];
	struct nbd_go go;

	/* name "ab", two info requests */
	nbd_put32(d, 2);
	memcpy(d + 4, "ab", 2);
	nbd_put16(d + 6, 2);
	nbd_put16(d + 8, NBD_INFO_BLOCK_SIZE);
	nbd_put16(d + 10, NBD_INFO_NAME);
	ck_assert_uint_eq(nbd_parse_go(d, 12, &go), 0);
	ck_assert_str_eq(go.name, "ab");
	ck_assert_int_eq(go.ninfo, 2);
	ck_assert_uint_eq(go.info[0], NBD_INFO_BLOCK_SIZE);
	/* too short, trailing bytes, count beyond the data */
	ck_assert_uint_eq(nbd_parse_go(d, 5, &go), NBD_REP_ERR_INVALID);
	ck_assert_uint_eq(nbd_parse_go(d, 13, &go), NBD_REP_ERR_INVALID);
	ck_assert_uint_eq(nbd_parse_go(d, 11, &go), NBD_REP_ERR_INVALID);
	/* name length beyond the data, and beyond 4 GiB arithmetic */
	nbd_put32(d, 7);
	ck_assert_uint_eq(nbd_parse_go(d, 12, &go), NBD_REP_ERR_INVALID);
	nbd_put32(d, 0xffffffff);
	ck_assert_uint_eq(nbd_parse_go(d, 12, &go), NBD_REP_ERR_INVALID);
	/* a NUL inside the name */
	nbd_put32(d, 2);
	d[5] = '\0';
	ck_assert_uint_eq(nbd_parse_go(d, 12, &go), NBD_REP_ERR_INVALID);
	/* empty name: the default export */
	nbd_put32(d, 0);
	nbd_put16(d + 4, 0);
	ck_assert_uint_eq(nbd_parse_go(d, 6, &go), 0);
	ck_assert_str_eq(go.name, "");
	/* a name longer than we take */
	memset(d, 'x', sizeof(d));
	nbd_put32(d, NBD_NAME_MAX + 1);
	nbd_put16(d + 4 + NBD_NAME_MAX + 1, 0);
	ck_assert_uint_eq(nbd_parse_go(d, 6 + NBD_NAME_MAX + 1, &go),
	    NBD_REP_ERR_TOO_BIG);
	/* more info requests than we keep: accepted, first ones kept */
	nbd_put32(d, 0);
	nbd_put16(d + 4, 40);
	for (int i = 0; i < 40; i++)
		nbd_put16(d + 6 + 2 * i, (uint16_t)i);
	ck_assert_uint_eq(nbd_parse_go(d, 6 + 80, &go), 0);
	ck_assert_int_eq(go.ninfo, NBD_INFO_REQ_MAX);
}
END_TEST

START_TEST(request_parse)
{
	uint8_t p[NBD_REQUEST_LEN];
	struct nbd_request r;

	req_bytes(p, NBD_REQUEST_MAGIC, NBD_CMD_FLAG_FUA, NBD_CMD_WRITE,
	    0x1122334455667788ull, 4096, 512);
	ck_assert_int_eq(nbd_parse_request(p, false, &r), 0);
	ck_assert_uint_eq(r.type, NBD_CMD_WRITE);
	ck_assert_uint_eq(r.flags, NBD_CMD_FLAG_FUA);
	ck_assert_uint_eq(r.cookie, 0x1122334455667788ull);
	ck_assert_uint_eq(r.offset, 4096);
	ck_assert_uint_eq(r.length, 512);
	req_bytes(p, NBD_SIMPLE_REPLY_MAGIC, 0, NBD_CMD_READ, 1, 0, 512);
	ck_assert_int_eq(nbd_parse_request(p, false, &r), -1);
}
END_TEST

START_TEST(request_checks)
{
	struct nbd_geom ro = geom, bare = geom;

	ro.readonly = true;
	bare.trim = bare.zeroes = false;
	ck_assert_uint_eq(check(NBD_CMD_READ, 0, 0, 4096, &geom), 0);
	ck_assert_uint_eq(check(NBD_CMD_WRITE, NBD_CMD_FLAG_FUA, 512, 512,
	    &geom), 0);
	/* unaligned offset or length, zero length */
	ck_assert_uint_eq(check(NBD_CMD_READ, 0, 100, 512, &geom), NBD_EINVAL);
	ck_assert_uint_eq(check(NBD_CMD_READ, 0, 0, 100, &geom), NBD_EINVAL);
	ck_assert_uint_eq(check(NBD_CMD_READ, 0, 0, 0, &geom), NBD_EINVAL);
	/* beyond the end: reads EINVAL, writes ENOSPC, no overflow */
	ck_assert_uint_eq(check(NBD_CMD_READ, 0, 1 << 20, 512, &geom),
	    NBD_EINVAL);
	ck_assert_uint_eq(check(NBD_CMD_WRITE, 0, (1 << 20) - 512, 1024,
	    &geom), NBD_ENOSPC);
	ck_assert_uint_eq(check(NBD_CMD_WRITE_ZEROES, 0,
	    0xfffffffffffffe00ull, 1024, &geom), NBD_ENOSPC);
	ck_assert_uint_eq(check(NBD_CMD_TRIM, 0, 0, 1 << 20, &geom), 0);
	/* larger than a payload may be; TRIM and zeroes are not payloads */
	ck_assert_uint_eq(check(NBD_CMD_WRITE, 0, 0, 65536 + 512, &geom),
	    NBD_EINVAL);
	ck_assert_uint_eq(check(NBD_CMD_WRITE_ZEROES, 0, 0, 1 << 20, &geom),
	    0);
	/* read-only */
	ck_assert_uint_eq(check(NBD_CMD_WRITE, 0, 0, 512, &ro), NBD_EPERM);
	ck_assert_uint_eq(check(NBD_CMD_TRIM, 0, 0, 512, &ro), NBD_EPERM);
	ck_assert_uint_eq(check(NBD_CMD_READ, 0, 0, 512, &ro), 0);
	/* not advertised */
	ck_assert_uint_eq(check(NBD_CMD_TRIM, 0, 0, 512, &bare), NBD_EINVAL);
	ck_assert_uint_eq(check(NBD_CMD_WRITE_ZEROES, 0, 0, 512, &bare),
	    NBD_EINVAL);
	ck_assert_uint_eq(check(NBD_CMD_BLOCK_STATUS, 0, 0, 512, &geom),
	    NBD_EINVAL);
	ck_assert_uint_eq(check(99, 0, 0, 512, &geom), NBD_EINVAL);
	/* flags where they do not belong */
	ck_assert_uint_eq(check(NBD_CMD_READ, NBD_CMD_FLAG_FUA, 0, 512, &geom),
	    NBD_EINVAL);
	ck_assert_uint_eq(check(NBD_CMD_WRITE, NBD_CMD_FLAG_NO_HOLE, 0, 512,
	    &geom), NBD_EINVAL);
	ck_assert_uint_eq(check(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE |
	    NBD_CMD_FLAG_FUA, 0, 512, &geom), 0);
	ck_assert_uint_eq(check(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO,
	    0, 512, &geom), 0);
	ck_assert_uint_eq(check(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO,
	    0, 512, &bare), NBD_EINVAL);
	/* DF only with structured replies; PAYLOAD_LEN only extended */
	ck_assert_uint_eq(check(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 512, &geom),
	    NBD_EINVAL);
	ck_assert_uint_eq(check_neg(NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 512,
	    &geom, NBD_NEG_STRUCTURED), 0);
	ck_assert_uint_eq(check_neg(NBD_CMD_WRITE, NBD_CMD_FLAG_PAYLOAD_LEN, 0,
	    512, &geom, NBD_NEG_STRUCTURED), NBD_EINVAL);
	ck_assert_uint_eq(check_neg(NBD_CMD_WRITE, NBD_CMD_FLAG_PAYLOAD_LEN, 0,
	    512, &geom, NBD_NEG_STRUCTURED | NBD_NEG_EXTENDED), 0);
	/* BLOCK_STATUS: only once base:allocation was selected */
	ck_assert_uint_eq(check_neg(NBD_CMD_BLOCK_STATUS, 0, 0, 512, &geom,
	    NBD_NEG_STRUCTURED), NBD_EINVAL);
	ck_assert_uint_eq(check_neg(NBD_CMD_BLOCK_STATUS,
	    NBD_CMD_FLAG_REQ_ONE, 0, 1 << 20, &ro,
	    NBD_NEG_STRUCTURED | NBD_NEG_META_ALLOC), 0);
	ck_assert_uint_eq(check_neg(NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_FUA, 0,
	    512, &geom, NBD_NEG_STRUCTURED | NBD_NEG_META_ALLOC), NBD_EINVAL);
	ck_assert_uint_eq(check_neg(NBD_CMD_BLOCK_STATUS, 0, 512, 1 << 20,
	    &geom, NBD_NEG_STRUCTURED | NBD_NEG_META_ALLOC), NBD_EINVAL);
	/* 64-bit lengths: no wrap past the end */
	ck_assert_uint_eq(check_neg(NBD_CMD_TRIM, 0, 512, UINT64_MAX - 511,
	    &geom, NBD_NEG_EXTENDED), NBD_ENOSPC);
	ck_assert_uint_eq(check_neg(NBD_CMD_READ, 0, 0, 1ull << 33, &geom,
	    NBD_NEG_EXTENDED), NBD_EINVAL);
	/* FLUSH carries no range */
	ck_assert_uint_eq(check(NBD_CMD_FLUSH, 0, 0, 0, &geom), 0);
	ck_assert_uint_eq(check(NBD_CMD_FLUSH, 0, 0, 512, &geom), NBD_EINVAL);
	ck_assert_uint_eq(check(NBD_CMD_DISC, 0, 0, 0, &geom), 0);
}
END_TEST

START_TEST(ext_request_parse)
{
	uint8_t p[NBD_EXT_REQUEST_LEN];
	struct nbd_request r;

	nbd_put32(p, NBD_EXT_REQUEST_MAGIC);
	nbd_put16(p + 4, NBD_CMD_FLAG_FUA);
	nbd_put16(p + 6, NBD_CMD_WRITE_ZEROES);
	nbd_put64(p + 8, 42);
	nbd_put64(p + 16, 1ull << 40);
	nbd_put64(p + 24, 5ull << 32);
	ck_assert_int_eq(nbd_parse_request(p, true, &r), 0);
	ck_assert_uint_eq(r.type, NBD_CMD_WRITE_ZEROES);
	ck_assert_uint_eq(r.cookie, 42);
	ck_assert_uint_eq(r.offset, 1ull << 40);
	ck_assert_uint_eq(r.length, 5ull << 32);
	/* the compact magic is not the extended one, nor the reverse */
	nbd_put32(p, NBD_REQUEST_MAGIC);
	ck_assert_int_eq(nbd_parse_request(p, true, &r), -1);
	nbd_put32(p, NBD_EXT_REQUEST_MAGIC);
	ck_assert_int_eq(nbd_parse_request(p, false, &r), -1);
}
END_TEST

START_TEST(meta_data)
{
	uint8_t d[512];
	struct nbd_meta m;
	const char *alloc[] = { "base:allocation" };
	const char *base[] = { "base:" };
	const char *other[] = { "qemu:dirty-bitmap:x", "x-foo:bar" };
	const char *bad[] = { "nocolon" };
	uint32_t n;

	/* SET base:allocation */
	n = meta_bytes(d, "exp", 1, alloc);
	ck_assert_uint_eq(nbd_parse_meta(d, n, false, &m), 0);
	ck_assert(m.alloc);
	ck_assert_str_eq(m.name, "exp");
	/* LIST with no query lists all; SET with none selects none */
	n = meta_bytes(d, "", 0, NULL);
	ck_assert_uint_eq(nbd_parse_meta(d, n, true, &m), 0);
	ck_assert(m.alloc);
	ck_assert_uint_eq(nbd_parse_meta(d, n, false, &m), 0);
	ck_assert(!m.alloc);
	/* "base:" lists, but does not select */
	n = meta_bytes(d, "", 1, base);
	ck_assert_uint_eq(nbd_parse_meta(d, n, true, &m), 0);
	ck_assert(m.alloc);
	ck_assert_uint_eq(nbd_parse_meta(d, n, false, &m), 0);
	ck_assert(!m.alloc);
	/* unknown contexts: no match, no error */
	n = meta_bytes(d, "", 2, other);
	ck_assert_uint_eq(nbd_parse_meta(d, n, false, &m), 0);
	ck_assert(!m.alloc);
	/* a query without a namespace */
	n = meta_bytes(d, "", 1, bad);
	ck_assert_uint_eq(nbd_parse_meta(d, n, false, &m), NBD_REP_ERR_INVALID);
	/* a count that lies, in both directions; trailing bytes */
	n = meta_bytes(d, "e", 1, alloc);
	nbd_put32(d + 5, 0x40000000);
	ck_assert_uint_eq(nbd_parse_meta(d, n, false, &m), NBD_REP_ERR_INVALID);
	nbd_put32(d + 5, 0);
	ck_assert_uint_eq(nbd_parse_meta(d, n, false, &m), NBD_REP_ERR_INVALID);
	n = meta_bytes(d, "e", 1, alloc);
	ck_assert_uint_eq(nbd_parse_meta(d, n - 1, false, &m),
	    NBD_REP_ERR_INVALID);
	/* a query length past the data; a name length past it */
	nbd_put32(d + 9, 1000);
	ck_assert_uint_eq(nbd_parse_meta(d, n, false, &m), NBD_REP_ERR_INVALID);
	nbd_put32(d, 0xfffffff0);
	ck_assert_uint_eq(nbd_parse_meta(d, n, false, &m), NBD_REP_ERR_INVALID);
	ck_assert_uint_eq(nbd_parse_meta(d, 7, false, &m), NBD_REP_ERR_INVALID);
	/* a name too long for us */
	memset(d, 0, sizeof(d));
	nbd_put32(d, 300);
	ck_assert_uint_eq(nbd_parse_meta(d, 308, false, &m),
	    NBD_REP_ERR_TOO_BIG);
}
END_TEST

START_TEST(nvme_errors)
{
	ck_assert_uint_eq(nbd_errno_from_nvme(0), 0);
	ck_assert_uint_eq(nbd_errno_from_nvme(NVME_SC_NS_WRITE_PROTECTED),
	    NBD_EPERM);
	ck_assert_uint_eq(nbd_errno_from_nvme(NVME_SC_CAP_EXCEEDED |
	    NVME_DNR >> 1), NBD_ENOSPC);
	ck_assert_uint_eq(nbd_errno_from_nvme(NVME_SC_LBA_RANGE), NBD_EINVAL);
	ck_assert_uint_eq(nbd_errno_from_nvme(NVME_SC_INVALID_OPCODE),
	    NBD_ENOTSUP);
	ck_assert_uint_eq(nbd_errno_from_nvme(NVME_SC_DATA_XFER_ERROR),
	    NBD_EIO);
	ck_assert_uint_eq(nbd_errno_from_nvme(NVME_SC_WRITE_FAULT), NBD_EIO);
	ck_assert_uint_eq(nbd_errno_from_nvme(NVME_SC(3, 0x70)), NBD_EIO);
	ck_assert_uint_eq(nbd_errno_from_nvme(NVME_SC(1, 0x82)), NBD_EPERM);
	ck_assert_uint_eq(nbd_errno_from_nvme(NVME_SC(2, 0x86)), NBD_EPERM);
}
END_TEST

START_TEST(replies)
{
	uint8_t b[32];
	struct nbd_geom ro = geom;

	ck_assert_uint_eq(nbd_simple_reply(b, NBD_EIO, 7), 16);
	ck_assert_uint_eq(nbd_get32(b), NBD_SIMPLE_REPLY_MAGIC);
	ck_assert_uint_eq(nbd_get32(b + 4), NBD_EIO);
	ck_assert_uint_eq(nbd_get64(b + 8), 7);
	ck_assert_uint_eq(nbd_structured_reply(b, NBD_REPLY_FLAG_DONE,
	    NBD_REPLY_TYPE_OFFSET_DATA, 9, 520), 20);
	ck_assert_uint_eq(nbd_get32(b), NBD_STRUCTURED_REPLY_MAGIC);
	ck_assert_uint_eq(nbd_get16(b + 4), NBD_REPLY_FLAG_DONE);
	ck_assert_uint_eq(nbd_get16(b + 6), NBD_REPLY_TYPE_OFFSET_DATA);
	ck_assert_uint_eq(nbd_get32(b + 16), 520);
	ck_assert_uint_eq(nbd_opt_reply(b, NBD_OPT_GO, NBD_REP_ERR_UNKNOWN, 0),
	    20);
	ck_assert_uint_eq(nbd_get64(b), NBD_REP_MAGIC);
	ck_assert_uint_eq(nbd_get32(b + 12), NBD_REP_ERR_UNKNOWN);
	ck_assert_uint_eq(nbd_ext_reply(b, NBD_REPLY_FLAG_DONE,
	    NBD_REPLY_TYPE_BLOCK_STATUS_EXT, 5, 1ull << 35, 24), 32);
	ck_assert_uint_eq(nbd_get32(b), NBD_EXT_REPLY_MAGIC);
	ck_assert_uint_eq(nbd_get16(b + 6), NBD_REPLY_TYPE_BLOCK_STATUS_EXT);
	ck_assert_uint_eq(nbd_get64(b + 8), 5);
	ck_assert_uint_eq(nbd_get64(b + 16), 1ull << 35);
	ck_assert_uint_eq(nbd_get64(b + 24), 24);
	ck_assert(nbd_transmission_flags(&geom, 0) & NBD_FLAG_SEND_TRIM);
	ck_assert(nbd_transmission_flags(&geom, 0) & NBD_FLAG_CAN_MULTI_CONN);
	ck_assert(nbd_transmission_flags(&geom, 0) & NBD_FLAG_SEND_FAST_ZERO);
	ck_assert(!(nbd_transmission_flags(&geom, 0) & NBD_FLAG_SEND_DF));
	ck_assert(nbd_transmission_flags(&geom, NBD_NEG_STRUCTURED) &
	    NBD_FLAG_SEND_DF);
	ro.readonly = true;
	ck_assert(nbd_transmission_flags(&ro, 0) & NBD_FLAG_READ_ONLY);
	ck_assert(!(nbd_transmission_flags(&ro, 0) &
	    (NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO)));
}
END_TEST

static Suite *
nbd_suite(void)
{
	Suite *s = suite_create("nbd_proto");
	TCase *tc = tcase_create("nbd_proto");

	tcase_add_test(tc, opt_header);
	tcase_add_test(tc, go_data);
	tcase_add_test(tc, request_parse);
	tcase_add_test(tc, request_checks);
	tcase_add_test(tc, ext_request_parse);
	tcase_add_test(tc, meta_data);
	tcase_add_test(tc, nvme_errors);
	tcase_add_test(tc, replies);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(nbd_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
