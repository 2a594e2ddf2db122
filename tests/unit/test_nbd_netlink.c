/*
 * The nbd generic-netlink messages (nbd-netlink.c), without a kernel:
 * what CONNECT, DISCONNECT, STATUS and the family lookup put on the
 * wire, decoded here independently, and the reply parser against good
 * and hostile answers.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-dev.h"

static uint16_t
g16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return (v);
}

static uint32_t
g32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return (v);
}

static uint64_t
g64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return (v);
}

static void
p16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void
p32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* The attribute of type t among p[0..len) (nested flag ignored), or NULL;
 * *alen its payload length.  Fails the test on a malformed layout. */
static const uint8_t *
find_attr(const uint8_t *p, size_t len, uint16_t t, size_t *alen)
{
	size_t off = 0;

	while (off + 4 <= len) {
		uint16_t l = g16(p + off), type = g16(p + off + 2) & 0x3fff;

		ck_assert_uint_ge(l, 4);
		ck_assert_uint_le(off + l, len);
		if (type == t) {
			*alen = l - 4;
			return (p + off + 4);
		}
		off += (l + 3u) & ~3u;
	}
	ck_assert_uint_eq(off, len);
	return (NULL);
}

/* Checks the netlink and genl headers; returns the attributes. */
static const uint8_t *
check_hdr(const uint8_t *m, size_t len, uint16_t type, uint32_t seq,
    uint8_t cmd, size_t *alen)
{
	ck_assert_uint_ge(len, 20);
	ck_assert_uint_eq(len % 4, 0);
	ck_assert_uint_eq(g32(m), len);
	ck_assert_uint_eq(g16(m + 4), type);
	ck_assert_uint_eq(g16(m + 6), 0x1 | 0x4);	/* REQUEST | ACK */
	ck_assert_uint_eq(g32(m + 8), seq);
	ck_assert_uint_eq(g32(m + 12), 0);
	ck_assert_uint_eq(m[16], cmd);
	*alen = len - 20;
	return (m + 20);
}

START_TEST(getfamily)
{
	uint8_t m[NBDNL_MSG_MAX];
	size_t len = nbdnl_msg_getfamily(m, sizeof(m), 7), alen, n;
	const uint8_t *a = check_hdr(m, len, 0x10, 7, 3, &alen), *name;

	name = find_attr(a, alen, 2, &n);	/* CTRL_ATTR_FAMILY_NAME */
	ck_assert_ptr_nonnull(name);
	ck_assert_uint_eq(n, 4);
	ck_assert_mem_eq(name, "nbd", 4);
	ck_assert_uint_eq(nbdnl_msg_getfamily(m, 20, 7), 0);
}
END_TEST

START_TEST(connect_msg)
{
	struct nbdnl_connect c = {
		.index = 3, .size = 1ull << 33, .block_size = 4096,
		.server_flags = 0x12d, .fd = 9,
	};
	uint8_t m[NBDNL_MSG_MAX];
	size_t len = nbdnl_msg_connect(m, sizeof(m), 0x1234, 99, &c), alen, n;
	const uint8_t *a = check_hdr(m, len, 0x1234, 99, NBDNL_CMD_CONNECT,
	    &alen), *v, *socks, *item;

	ck_assert_uint_eq(m[17], NBDNL_VERSION);
	v = find_attr(a, alen, NBDNL_ATTR_INDEX, &n);
	ck_assert(v != NULL && n == 4 && g32(v) == 3);
	v = find_attr(a, alen, NBDNL_ATTR_SIZE_BYTES, &n);
	ck_assert(v != NULL && n == 8 && g64(v) == 1ull << 33);
	v = find_attr(a, alen, NBDNL_ATTR_BLOCK_SIZE_BYTES, &n);
	ck_assert(v != NULL && n == 8 && g64(v) == 4096);
	v = find_attr(a, alen, NBDNL_ATTR_SERVER_FLAGS, &n);
	ck_assert(v != NULL && n == 8 && g64(v) == 0x12d);
	/* Timeouts left at 0 are not sent: the kernel's defaults hold. */
	ck_assert_ptr_null(find_attr(a, alen, NBDNL_ATTR_TIMEOUT, &n));
	ck_assert_ptr_null(find_attr(a, alen, NBDNL_ATTR_DEAD_CONN_TIMEOUT,
	    &n));
	/* SOCKETS { SOCK_ITEM { SOCK_FD } }, both nested and flagged so. */
	socks = find_attr(a, alen, NBDNL_ATTR_SOCKETS, &n);
	ck_assert_ptr_nonnull(socks);
	ck_assert(g16(socks - 2) & 0x8000);
	item = find_attr(socks, n, NBDNL_SOCK_ITEM, &n);
	ck_assert_ptr_nonnull(item);
	ck_assert(g16(item - 2) & 0x8000);
	v = find_attr(item, n, NBDNL_SOCK_FD, &n);
	ck_assert(v != NULL && n == 4 && g32(v) == 9);

	c.timeout_s = 30;
	c.dead_conn_timeout_s = 120;
	len = nbdnl_msg_connect(m, sizeof(m), 0x1234, 100, &c);
	a = check_hdr(m, len, 0x1234, 100, NBDNL_CMD_CONNECT, &alen);
	v = find_attr(a, alen, NBDNL_ATTR_TIMEOUT, &n);
	ck_assert(v != NULL && n == 8 && g64(v) == 30);
	v = find_attr(a, alen, NBDNL_ATTR_DEAD_CONN_TIMEOUT, &n);
	ck_assert(v != NULL && n == 8 && g64(v) == 120);
	/* Too small a buffer: nothing, never a partial message. */
	ck_assert_uint_eq(nbdnl_msg_connect(m, len - 4, 0x1234, 100, &c), 0);
	ck_assert_uint_eq(nbdnl_msg_connect(m, 8, 0x1234, 100, &c), 0);
}
END_TEST

START_TEST(index_msg)
{
	uint8_t m[64];
	size_t len, alen, n;
	const uint8_t *a, *v;

	len = nbdnl_msg_index(m, sizeof(m), 0x21, NBDNL_CMD_DISCONNECT, 5, 15);
	a = check_hdr(m, len, 0x21, 5, NBDNL_CMD_DISCONNECT, &alen);
	v = find_attr(a, alen, NBDNL_ATTR_INDEX, &n);
	ck_assert(v != NULL && n == 4 && g32(v) == 15);
	len = nbdnl_msg_index(m, sizeof(m), 0x21, NBDNL_CMD_STATUS, 6, 0);
	check_hdr(m, len, 0x21, 6, NBDNL_CMD_STATUS, &alen);
}
END_TEST

/* A reply: netlink header (type, seq), genl header, then attrs. */
static size_t
reply(uint8_t *m, uint16_t type, uint32_t seq, const uint8_t *attrs,
    size_t alen)
{
	size_t len = 20 + alen;

	memset(m, 0, 20);
	p32(m, (uint32_t)len);
	p16(m + 4, type);
	p32(m + 8, seq);
	memcpy(m + 20, attrs, alen);
	return ((len + 3) & ~(size_t)3);
}

static size_t
ack(uint8_t *m, uint32_t seq, int32_t err)
{
	memset(m, 0, 36);
	p32(m, 36);
	p16(m + 4, 2);			/* NLMSG_ERROR */
	p32(m + 8, seq);
	memcpy(m + 16, &err, 4);
	return (36);
}

START_TEST(parse_ack)
{
	uint8_t m[128];
	struct nbdnl_reply r;
	size_t len = ack(m, 4, 0);

	ck_assert_int_eq(nbdnl_parse(m, len, 4, false, &r), (long)len);
	ck_assert(r.ack);
	ck_assert_int_eq(r.error, 0);
	len = ack(m, 4, -EBUSY);
	ck_assert_int_eq(nbdnl_parse(m, len, 4, false, &r), (long)len);
	ck_assert(r.ack);
	ck_assert_int_eq(r.error, EBUSY);
	/* Someone else's sequence number: skipped, nothing for us. */
	ck_assert_int_eq(nbdnl_parse(m, len, 5, false, &r), 0);
	/* An old answer then ours: ours, the length up to its end. */
	len += ack(m + len, 5, -EPERM);
	ck_assert_int_eq(nbdnl_parse(m, len, 5, false, &r), (long)len);
	ck_assert_int_eq(r.error, EPERM);
}
END_TEST

START_TEST(parse_family)
{
	uint8_t m[128], at[16];
	struct nbdnl_reply r;
	size_t len;

	p16(at, 6);			/* CTRL_ATTR_FAMILY_ID, u16 */
	p16(at + 2, 1);
	p16(at + 4, 0x2a);
	p16(at + 6, 0);
	len = reply(m, 0x10, 9, at, 8);
	ck_assert_int_eq(nbdnl_parse(m, len, 9, true, &r), (long)len);
	ck_assert(!r.ack);
	ck_assert_uint_eq(r.family, 0x2a);
	/* The same bytes as an nbd reply: attribute 1 is then the u32
	 * INDEX, and 2 bytes of it are malformed. */
	ck_assert_int_eq(nbdnl_parse(m, len, 9, false, &r), -1);
	/* A family ID shorter than 2 bytes is malformed. */
	p16(at, 5);
	len = reply(m, 0x10, 9, at, 5);
	ck_assert_int_eq(nbdnl_parse(m, len, 9, true, &r), -1);
}
END_TEST

/* DEVICE_LIST with n items: index i, connected when i is odd. */
static size_t
device_list(uint8_t *at, int n)
{
	size_t o = 4;

	for (int i = 0; i < n; i++) {
		p16(at + o, 4 + 8 + 8);
		p16(at + o + 2, NBDNL_DEVICE_ITEM | 0x8000);
		p16(at + o + 4, 8);
		p16(at + o + 6, NBDNL_DEVICE_INDEX);
		p32(at + o + 8, (uint32_t)i);
		p16(at + o + 12, 5);
		p16(at + o + 14, NBDNL_DEVICE_CONNECTED);
		at[o + 16] = (uint8_t)(i & 1);
		at[o + 17] = at[o + 18] = at[o + 19] = 0;
		o += 20;
	}
	p16(at, (uint16_t)o);
	p16(at + 2, NBDNL_ATTR_DEVICE_LIST | 0x8000);
	return (o);
}

START_TEST(parse_status)
{
	static uint8_t m[4096], at[4000];
	struct nbdnl_reply r;
	size_t alen = device_list(at, 3), len;

	p16(at + alen, 8);		/* and an INDEX */
	p16(at + alen + 2, NBDNL_ATTR_INDEX);
	p32(at + alen + 4, 2);
	len = reply(m, 0x2a, 3, at, alen + 8);
	ck_assert_int_eq(nbdnl_parse(m, len, 3, false, &r), (long)len);
	ck_assert_int_eq(r.ndev, 3);
	ck_assert(r.has_index && r.index == 2);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(r.dev[i].index, (uint32_t)i);
		ck_assert(r.dev[i].connected == (i & 1));
	}
	/* More devices than kept: the first NBDNL_MAX_DEVICES. */
	alen = device_list(at, NBDNL_MAX_DEVICES + 10);
	len = reply(m, 0x2a, 3, at, alen);
	ck_assert_int_eq(nbdnl_parse(m, len, 3, false, &r), (long)len);
	ck_assert_int_eq(r.ndev, NBDNL_MAX_DEVICES);
	/* An item whose inner attribute runs past the item: malformed. */
	alen = device_list(at, 1);
	p16(at + 8, 40);
	len = reply(m, 0x2a, 3, at, alen);
	ck_assert_int_eq(nbdnl_parse(m, len, 3, false, &r), -1);
	/* A truncated INDEX: malformed. */
	p16(at, 6);
	p16(at + 2, NBDNL_ATTR_INDEX);
	len = reply(m, 0x2a, 3, at, 6);
	ck_assert_int_eq(nbdnl_parse(m, len, 3, false, &r), -1);
}
END_TEST

START_TEST(parse_hostile)
{
	uint8_t m[128], at[8];
	struct nbdnl_reply r;
	size_t len;

	/* Less than a header: nothing to read yet. */
	ck_assert_int_eq(nbdnl_parse(m, 0, 1, false, &r), 0);
	ck_assert_int_eq(nbdnl_parse(m, 15, 1, false, &r), 0);
	/* A length below the header, or beyond the buffer. */
	len = ack(m, 1, 0);
	p32(m, 8);
	ck_assert_int_eq(nbdnl_parse(m, len, 1, false, &r), -1);
	p32(m, 200);
	ck_assert_int_eq(nbdnl_parse(m, len, 1, false, &r), -1);
	/* An error message without its error code. */
	p32(m, 16);
	ck_assert_int_eq(nbdnl_parse(m, 16, 1, false, &r), -1);
	/* A reply without its genl header. */
	p32(m, 18);
	p16(m + 4, 0x2a);
	ck_assert_int_eq(nbdnl_parse(m, 20, 1, false, &r), -1);
	/* An attribute shorter than its own header, or past the end. */
	p16(at, 2);
	p16(at + 2, NBDNL_ATTR_INDEX);
	len = reply(m, 0x2a, 1, at, 4);
	ck_assert_int_eq(nbdnl_parse(m, len, 1, false, &r), -1);
	p16(at, 12);
	len = reply(m, 0x2a, 1, at, 8);
	ck_assert_int_eq(nbdnl_parse(m, len, 1, false, &r), -1);
	/* Every truncation of a good ack is refused or waits, never read
	 * past. */
	len = ack(m, 1, 0);
	for (size_t n = 0; n < len; n++) {
		uint8_t *copy = malloc(n ? n : 1);

		memcpy(copy, m, n);
		ck_assert_int_le(nbdnl_parse(copy, n, 1, false, &r), 0);
		free(copy);
	}
}
END_TEST

START_TEST(device_names)
{
	ck_assert_int_eq(nbdnl_device_index("/dev/nbd0"), 0);
	ck_assert_int_eq(nbdnl_device_index("/dev/nbd15"), 15);
	ck_assert_int_eq(nbdnl_device_index("nbd7"), 7);
	ck_assert_int_eq(nbdnl_device_index("/dev/nbd65535"), 65535);
	ck_assert_int_eq(nbdnl_device_index("/dev/nbd65536"), -1);
	ck_assert_int_eq(nbdnl_device_index("/dev/nbd99999999999999999999"),
	    -1);
	ck_assert_int_eq(nbdnl_device_index("/dev/nbd"), -1);
	ck_assert_int_eq(nbdnl_device_index("/dev/nbd01"), -1);
	ck_assert_int_eq(nbdnl_device_index("/dev/nbd-1"), -1);
	ck_assert_int_eq(nbdnl_device_index("/dev/nbd0p1"), -1);
	ck_assert_int_eq(nbdnl_device_index("/dev/nbd1 "), -1);
	ck_assert_int_eq(nbdnl_device_index("/dev/sda"), -1);
	ck_assert_int_eq(nbdnl_device_index("/tmp/nbd0"), -1);
	ck_assert_int_eq(nbdnl_device_index(""), -1);
}
END_TEST

static Suite *
nbdnl_suite(void)
{
	Suite *s = suite_create("nbd_netlink");
	TCase *tc = tcase_create("nbd_netlink");

	tcase_add_test(tc, getfamily);
	tcase_add_test(tc, connect_msg);
	tcase_add_test(tc, index_msg);
	tcase_add_test(tc, parse_ack);
	tcase_add_test(tc, parse_family);
	tcase_add_test(tc, parse_status);
	tcase_add_test(tc, parse_hostile);
	tcase_add_test(tc, device_names);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(nbdnl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
