/*
 * DH-HMAC-CHAP, controller role, as a host sees it: Connect's ATR, commands
 * refused before authentication, full exchanges (NULL and ffdhe groups,
 * uni- and bidirectional, admin and I/O queues, re-authentication with a
 * rotated key), and each bad message answered with its Failure1 reason;
 * then the same on the discovery controller, keyed by the discovery
 * section.
 * The host side is written here with the crypto core (dhchap.c).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NQN		"nqn.2026-11.io.nvmfd:auth"
#define NQN_OPEN	NVMFD_DEFAULT_NQN
/* 0x00..0x1f, SHA-256 transformed: protocol notes 5.5 */
#define KEY_A	"DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:"

static struct config *cfg;
static struct port *port;
static struct subsystem *ss;
static struct host *host;
static struct host *dhost;	/* H_HOSTNQN's discovery entry */
static struct dhchap_key key_b, key_c;	/* another host key; ctrl key */

static void
make_key(struct dhchap_key *k, uint8_t fill, uint8_t xform, size_t len)
{
	memset(k, 0, sizeof(*k));
	memset(k->data, fill, len);
	k->len = len;
	k->xform = xform;
}

static void
setup(void)
{
	struct config *cf = h_config();
	char err[128];

	cfg = cf;
	ss = h_add_subsys(cf, NQN);
	h_add_host(ss, H_HOSTNQN);
	h_add_host(ss, H_HOSTNQN2);		/* no key: no authentication */
	h_add_ns(ss, 1, 1u << 20);
	host = host_find(ss, H_HOSTNQN);
	ck_assert_int_eq(dhchap_key_parse(KEY_A, &host->key, err,
	    sizeof(err)), 0);
	make_key(&key_b, 0x5b, DHCHAP_SHA512, 64);
	make_key(&key_c, 0xc0, 0, 48);
	/* Discovery: H_HOSTNQN listed with KEY_A, the rest open. */
	dhost = calloc(1, sizeof(*dhost));
	ck_assert_ptr_nonnull(dhost);
	snprintf(dhost->nqn, sizeof(dhost->nqn), "%s", H_HOSTNQN);
	dhost->key = host->key;
	TAILQ_INSERT_TAIL(&cf->discovery.hosts, dhost, entry);
	h_start(cf);
	port = port_find(cf, 1);
}

static void
teardown(void)
{
	h_stop();
}

/* ---------------------------------------------------------- the host */

struct hauth {
	const char	*subnqn;
	struct dhchap_key key, ctrl_key;	/* ctrl_key.len: bidirectional */
	uint16_t	tid;
	uint8_t		hashes[3], nhashes;
	uint8_t		groups[6], ngroups;
	/* from the Challenge */
	uint8_t		hashid, dhgid, hl;
	uint32_t	s1, s2;
	uint8_t		c1[64], c2[64], r2[64];
	uint8_t		z[1024], pub[1024];
	size_t		zlen;
};

static void
hauth_init(struct hauth *a, const struct dhchap_key *key)
{
	static const uint8_t all_h[] = { 1, 2, 3 }, all_g[] = { 0, 1, 2, 3, 4, 5 };

	memset(a, 0, sizeof(*a));
	a->subnqn = NQN;
	a->key = *key;
	a->tid = 0x1234;
	memcpy(a->hashes, all_h, 3);
	a->nhashes = 3;
	memcpy(a->groups, all_g, 6);
	a->ngroups = 6;
}

static void
auth_sqe(struct nvme_sqe *sqe, uint8_t fctype, uint32_t len)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opc = NVME_FABRICS_COMMAND;
	((uint8_t *)sqe)[4] = fctype;
	sqe->cdw10 = (uint32_t)AUTH_SECP << 24 | AUTH_SPSP << 16 | AUTH_SPSP << 8;
	sqe->cdw11 = len;
}

static uint16_t
a_send(struct h_conn *c, const void *msg, size_t len)
{
	struct nvme_sqe sqe;

	auth_sqe(&sqe, NVMF_FCTYPE_AUTH_SEND, len);
	return (h_cmd(c, &sqe, msg, len, NULL, 0, NULL));
}

static uint16_t
a_recv(struct h_conn *c, uint8_t *buf, size_t al)
{
	struct nvme_sqe sqe;

	auth_sqe(&sqe, NVMF_FCTYPE_AUTH_RECV, al);
	memset(buf, 0xee, al);
	return (h_cmd(c, &sqe, NULL, 0, buf, al, NULL));
}

static size_t
build_negotiate(struct hauth *a, uint8_t *m)
{
	memset(m, 0, AUTH_NEGOTIATE_LEN + AUTH_DESC_LEN);
	m[0] = AUTH_COMMON;
	m[1] = AUTH_NEGOTIATE;
	put_le16(m + 4, a->tid);
	m[7] = 1;			/* NAPD */
	m[8] = AUTH_PROTO_DHCHAP;
	m[10] = a->nhashes;
	m[11] = a->ngroups;
	memcpy(m + 12, a->hashes, a->nhashes);
	memcpy(m + 42, a->groups, a->ngroups);
	return (AUTH_NEGOTIATE_LEN + AUTH_DESC_LEN);
}

/* Failure1's reason code, or -1 when m is not a Failure1. */
static int
failure1(const uint8_t *m)
{
	if (m[0] != AUTH_COMMON || m[1] != AUTH_FAILURE1)
		return (-1);
	ck_assert_uint_eq(m[6], 1);
	return (m[7]);
}

/* Negotiate and read the Challenge; returns -1 or the Failure1 reason. */
static int
h_negotiate(struct h_conn *c, struct hauth *a)
{
	uint8_t m[4096];
	size_t gs;

	ck_assert_uint_eq(a_send(c, m, build_negotiate(a, m)), NVME_SC_SUCCESS);
	ck_assert_uint_eq(a_recv(c, m, sizeof(m)), NVME_SC_SUCCESS);
	if (failure1(m) >= 0)
		return (failure1(m));
	ck_assert_uint_eq(m[0], AUTH_DHCHAP);
	ck_assert_uint_eq(m[1], AUTH_CHALLENGE);
	ck_assert_uint_eq(get_le16(m + 4), a->tid);
	a->hashid = m[8];
	a->dhgid = m[9];
	a->hl = m[6];
	ck_assert_uint_eq(a->hl, dhchap_hash_len(a->hashid));
	gs = get_le16(m + 10);
	ck_assert_uint_eq(gs, dhchap_group_size(a->dhgid));
	a->s1 = get_le32(m + 12);
	ck_assert_uint_ne(a->s1, 0);
	memcpy(a->c1, m + 16, a->hl);
	a->zlen = gs;
	/* Bytes past the message are zeros up to AL. */
	for (size_t i = 16 + a->hl + gs; i < sizeof(m); i++)
		ck_assert_uint_eq(m[i], 0);
	if (gs) {
		struct dhchap_dh *dh = dhchap_dh_new(a->dhgid);

		ck_assert_ptr_nonnull(dh);
		ck_assert_int_eq(dhchap_dh_derive(dh, m + 16 + a->hl, gs, a->z,
		    gs), 0);
		ck_assert_int_eq(dhchap_dh_public(dh, a->pub, gs), 0);
		dhchap_dh_free(dh);
	}
	return (-1);
}

static void
h_augment(struct hauth *a, const uint8_t *c, uint8_t *out)
{
	if (a->zlen == 0)
		memcpy(out, c, a->hl);
	else
		ck_assert_int_eq(dhchap_augment(a->hashid, a->z, a->zlen, c,
		    out), 0);
}

/* The Reply as the Linux host builds it; returns its length. */
static size_t
build_reply(struct hauth *a, uint8_t *m)
{
	uint8_t k[64], ca[64];
	size_t klen;

	memset(m, 0, 16 + 2 * a->hl + a->zlen);
	m[0] = AUTH_DHCHAP;
	m[1] = AUTH_REPLY;
	put_le16(m + 4, a->tid);
	m[6] = a->hl;
	put_le16(m + 10, a->zlen);
	ck_assert_int_eq(dhchap_transform(&a->key, H_HOSTNQN, k, &klen), 0);
	h_augment(a, a->c1, ca);
	ck_assert_int_eq(dhchap_response(a->hashid, k, klen, ca, a->s1, a->tid,
	    0, "HostHost", H_HOSTNQN, a->subnqn, m + 16), 0);
	if (a->ctrl_key.len) {
		m[8] = 1;			/* CVALID */
		a->s2 = 0x0badcafe;
		put_le32(m + 12, a->s2);
		memset(a->c2, 0x3c, a->hl);
		memcpy(m + 16 + a->hl, a->c2, a->hl);
		ck_assert_int_eq(dhchap_transform(&a->ctrl_key, a->subnqn, k,
		    &klen), 0);
		h_augment(a, a->c2, ca);
		ck_assert_int_eq(dhchap_response(a->hashid, k, klen, ca, a->s2,
		    a->tid, 0, "Controller", a->subnqn, H_HOSTNQN, a->r2), 0);
	}
	memcpy(m + 16 + 2 * a->hl, a->pub, a->zlen);
	return (16 + 2 * a->hl + a->zlen);
}

/* Reply, Success1 and (bidirectional) Success2: -1 or Failure1's reason. */
static int
h_finish(struct h_conn *c, struct hauth *a)
{
	uint8_t m[4096];

	ck_assert_uint_eq(a_send(c, m, build_reply(a, m)), NVME_SC_SUCCESS);
	ck_assert_uint_eq(a_recv(c, m, sizeof(m)), NVME_SC_SUCCESS);
	if (failure1(m) >= 0)
		return (failure1(m));
	ck_assert_uint_eq(m[1], AUTH_SUCCESS1);
	ck_assert_uint_eq(get_le16(m + 4), a->tid);
	ck_assert_uint_eq(m[6], a->hl);
	ck_assert_uint_eq(m[8], a->ctrl_key.len ? 1 : 0);
	if (a->ctrl_key.len) {
		ck_assert_mem_eq(m + 16, a->r2, a->hl);
		memset(m, 0, 16);
		m[0] = AUTH_DHCHAP;
		m[1] = AUTH_SUCCESS2;
		put_le16(m + 4, a->tid);
		ck_assert_uint_eq(a_send(c, m, 16), NVME_SC_SUCCESS);
	}
	return (-1);
}

static struct h_conn *
connect_to(const char *subnqn, const char *hostnqn, uint32_t kato,
    bool want_atr)
{
	struct h_conn *c = h_open(port, "127.0.0.1");
	struct nvme_cqe cqe;

	h_icreq(c, 0, 0, NULL);
	cqe = h_connect(c, 0, 31, subnqn, hostnqn, NVMF_CNTLID_DYNAMIC, kato);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	ck_assert_uint_eq(!!(cqe.dw0 & NVMF_CONNECT_AUTHREQ_ATR), want_atr);
	ck_assert_uint_eq(cqe.dw0 >> 16 & ~2u, 0);	/* only ATR, no ASCR */
	return (c);
}

static struct h_conn *
connect_admin(const char *hostnqn, uint32_t kato, bool want_atr)
{
	return (connect_to(NQN, hostnqn, kato, want_atr));
}

static void
expect_auth_required(uint16_t sc)
{
	ck_assert_msg(sc == NVME_SC_AUTH_REQUIRED, "status 0x%x", sc);
}

/* A full exchange the controller fails (wrong key, or none for it), and
 * the association that goes with it. */
static void
expect_failed_exchange(const char *subnqn, struct hauth *a)
{
	struct h_conn *c = connect_to(subnqn, H_HOSTNQN, 0, true);

	ck_assert_int_eq(h_negotiate(c, a), -1);
	ck_assert_int_eq(h_finish(c, a), AUTH_FAIL_FAILED);
	/* The association goes once Failure1 is out. */
	ck_assert(h_closed(c, H_TIMEOUT_MS));
	h_close(c);
}

/* ------------------------------------------------------------- tests */

START_TEST(refused_before_authentication)
{
	struct h_conn *c = connect_admin(H_HOSTNQN, 0, true);
	uint8_t id[4096];
	uint64_t v;

	expect_auth_required(h_prop_get(c, NVME_REG_CAP, &v));
	expect_auth_required(h_prop_set(c, NVME_REG_CC, 1));
	expect_auth_required(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, id));
	h_close(c);
	/* A host without a key is not asked to authenticate. */
	c = connect_admin(H_HOSTNQN2, 0, false);
	h_enable(c);
	h_close(c);
}
END_TEST

START_TEST(null_group_sha256)
{
	struct h_conn *c = connect_admin(H_HOSTNQN, 0, true);
	struct hauth a;
	uint8_t id[4096];

	ss->dhchap.ngroups = 1;
	ss->dhchap.groups[0] = DHCHAP_NULL;
	auth_subsys_refresh(ss);
	hauth_init(&a, &host->key);
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert_uint_eq(a.hashid, DHCHAP_SHA256);
	ck_assert_uint_eq(a.dhgid, DHCHAP_NULL);
	ck_assert_int_eq(h_finish(c, &a), -1);
	h_enable(c);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, id),
	    NVME_SC_SUCCESS);
	h_close(c);
}
END_TEST

/* Bidirectional over ffdhe2048 with SHA-512, the host's key untransformed. */
START_TEST(bidirectional_ffdhe2048)
{
	struct h_conn *c;
	struct hauth a;

	host->key = key_b;
	host->ctrl_key = key_c;
	ss->dhchap.nhashes = 1;
	ss->dhchap.hashes[0] = DHCHAP_SHA512;
	auth_subsys_refresh(ss);
	c = connect_admin(H_HOSTNQN, 0, true);
	hauth_init(&a, &key_b);
	a.ctrl_key = key_c;
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert_uint_eq(a.hashid, DHCHAP_SHA512);
	ck_assert_uint_eq(a.dhgid, DHCHAP_FFDHE2048);	/* the default first */
	ck_assert_int_eq(h_finish(c, &a), -1);
	h_enable(c);
	h_close(c);
}
END_TEST

START_TEST(wrong_host_key)
{
	struct hauth a;

	hauth_init(&a, &key_b);
	expect_failed_exchange(NQN, &a);
}
END_TEST

/* The host wants controller authentication; no controller key here. */
START_TEST(no_controller_key)
{
	struct hauth a;

	hauth_init(&a, &host->key);
	a.ctrl_key = key_c;
	expect_failed_exchange(NQN, &a);
}
END_TEST

START_TEST(no_common_hash_or_group)
{
	struct h_conn *c = connect_admin(H_HOSTNQN, 0, true);
	struct hauth a;

	ss->dhchap.nhashes = 1;
	ss->dhchap.hashes[0] = DHCHAP_SHA256;
	auth_subsys_refresh(ss);
	hauth_init(&a, &host->key);
	a.hashes[0] = DHCHAP_SHA512;
	a.nhashes = 1;
	ck_assert_int_eq(h_negotiate(c, &a), AUTH_FAIL_HASH);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
	h_close(c);

	/* The port limits the groups: only ffdhe8192 there. */
	port->dhchap.ngroups = 1;
	port->dhchap.groups[0] = DHCHAP_FFDHE8192;
	c = connect_admin(H_HOSTNQN, 0, true);
	hauth_init(&a, &host->key);
	a.groups[0] = DHCHAP_NULL;
	a.groups[1] = DHCHAP_FFDHE2048;
	a.ngroups = 2;
	ck_assert_int_eq(h_negotiate(c, &a), AUTH_FAIL_DHGROUP);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
	h_close(c);
	port->dhchap.ngroups = 0;
}
END_TEST

/* One bad message after a good Negotiate; returns Failure1's reason. */
static int
bad_reply(void (*mangle)(struct hauth *, uint8_t *, size_t *))
{
	struct h_conn *c = connect_admin(H_HOSTNQN, 0, true);
	struct hauth a;
	uint8_t m[4096];
	size_t len;
	int reason;

	hauth_init(&a, &host->key);
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	memset(m, 0, sizeof(m));	/* a mangled length may reach past it */
	len = build_reply(&a, m);
	mangle(&a, m, &len);
	ck_assert_uint_eq(a_send(c, m, len), NVME_SC_SUCCESS);
	ck_assert_uint_eq(a_recv(c, m, sizeof(m)), NVME_SC_SUCCESS);
	reason = failure1(m);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
	h_close(c);
	return (reason);
}

static void
truncate_reply(struct hauth *a, uint8_t *m, size_t *len)
{
	*len -= 1;
}

static void
oversize_reply(struct hauth *a, uint8_t *m, size_t *len)
{
	*len += 64;
}

static void
short_header(struct hauth *a, uint8_t *m, size_t *len)
{
	*len = 10;
}

static void
wrong_tid(struct hauth *a, uint8_t *m, size_t *len)
{
	put_le16(m + 4, a->tid + 1);
}

static void
wrong_hl(struct hauth *a, uint8_t *m, size_t *len)
{
	m[6] = 48;
}

static void
wrong_dhvlen(struct hauth *a, uint8_t *m, size_t *len)
{
	put_le16(m + 10, 256);
	*len += 256;
}

static void
success2_instead(struct hauth *a, uint8_t *m, size_t *len)
{
	m[1] = AUTH_SUCCESS2;
	*len = 16;
}

START_TEST(bad_messages)
{
	/* The harness's subsystem offers every group: force NULL. */
	ss->dhchap.ngroups = 1;
	ss->dhchap.groups[0] = DHCHAP_NULL;
	auth_subsys_refresh(ss);
	ck_assert_int_eq(bad_reply(truncate_reply), AUTH_FAIL_PAYLOAD);
	ck_assert_int_eq(bad_reply(oversize_reply), AUTH_FAIL_PAYLOAD);
	ck_assert_int_eq(bad_reply(short_header), AUTH_FAIL_PAYLOAD);
	ck_assert_int_eq(bad_reply(wrong_tid), AUTH_FAIL_PAYLOAD);
	ck_assert_int_eq(bad_reply(wrong_hl), AUTH_FAIL_PAYLOAD);
	ck_assert_int_eq(bad_reply(wrong_dhvlen), AUTH_FAIL_PAYLOAD);
	ck_assert_int_eq(bad_reply(success2_instead), AUTH_FAIL_MESSAGE);
}
END_TEST

START_TEST(bad_negotiate)
{
	struct h_conn *c;
	struct hauth a;
	uint8_t m[4096];
	size_t len;
	struct {
		size_t	off, len;	/* len 0: keep */
		uint8_t	val;
		int	reason;
	} cases[] = {
		{ 0, 20, 0, AUTH_FAIL_PAYLOAD },	/* truncated */
		{ 0, 200, 0, AUTH_FAIL_PAYLOAD },	/* oversized */
		{ 7, 0, 0, AUTH_FAIL_PAYLOAD },		/* NAPD 0 */
		{ 8, 0, 0x02, AUTH_FAIL_PROTOCOL },	/* not DH-HMAC-CHAP */
		{ 6, 0, 1, AUTH_FAIL_CONCAT },		/* SC_C: new TLS PSK */
		{ 10, 0, 31, AUTH_FAIL_PAYLOAD },	/* HALEN > 30 */
	};

	for (size_t i = 0; i < nitems(cases); i++) {
		c = connect_admin(H_HOSTNQN, 0, true);
		hauth_init(&a, &host->key);
		len = build_negotiate(&a, m);
		if (cases[i].len)
			len = cases[i].len;
		else
			m[cases[i].off] = cases[i].val;
		ck_assert_uint_eq(a_send(c, m, len), NVME_SC_SUCCESS);
		ck_assert_uint_eq(a_recv(c, m, sizeof(m)), NVME_SC_SUCCESS);
		ck_assert_msg(failure1(m) == cases[i].reason, "case %zu: %d",
		    i, failure1(m));
		ck_assert(h_closed(c, H_TIMEOUT_MS));
		h_close(c);
	}
}
END_TEST

/* Command-level checks: SECP/SPSP, TL and AL. */
START_TEST(bad_commands)
{
	struct h_conn *c = connect_admin(H_HOSTNQN, 0, true);
	struct nvme_sqe sqe;
	uint8_t m[128] = { 0 };

	auth_sqe(&sqe, NVMF_FCTYPE_AUTH_SEND, sizeof(m));
	sqe.cdw10 = 0xeau << 24 | 1 << 16 | 1 << 8;
	ck_assert_uint_eq(h_cmd(c, &sqe, m, sizeof(m), NULL, 0, NULL),
	    NVME_SC_INVALID_FIELD);
	auth_sqe(&sqe, NVMF_FCTYPE_AUTH_SEND, sizeof(m));
	sqe.cdw10 = (uint32_t)AUTH_SECP << 24 | 2 << 16 | 1 << 8;
	ck_assert_uint_eq(h_cmd(c, &sqe, m, sizeof(m), NULL, 0, NULL),
	    NVME_SC_INVALID_FIELD);
	auth_sqe(&sqe, NVMF_FCTYPE_AUTH_RECV, 0);
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, m, sizeof(m), NULL),
	    NVME_SC_INVALID_FIELD);
	/* TL says more than the capsule holds. */
	auth_sqe(&sqe, NVMF_FCTYPE_AUTH_SEND, 256);
	ck_assert_uint_eq(h_cmd(c, &sqe, m, sizeof(m), NULL, 0, NULL),
	    NVME_SC_SGL_INVALID_DATA_LEN);
	auth_sqe(&sqe, NVMF_FCTYPE_AUTH_SEND, 65536);
	ck_assert_uint_eq(h_cmd(c, &sqe, m, sizeof(m), NULL, 0, NULL),
	    NVME_SC_INVALID_FIELD);
	h_close(c);
}
END_TEST

/* After success, the same Reply again is out of sequence. */
START_TEST(replayed_reply)
{
	struct h_conn *c = connect_admin(H_HOSTNQN, 0, true);
	struct hauth a;
	uint8_t m[4096];
	size_t len;

	ss->dhchap.ngroups = 1;
	ss->dhchap.groups[0] = DHCHAP_NULL;
	auth_subsys_refresh(ss);
	hauth_init(&a, &host->key);
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	len = build_reply(&a, m);
	ck_assert_int_eq(h_finish(c, &a), -1);
	len = build_reply(&a, m);
	ck_assert_uint_eq(a_send(c, m, len), NVME_SC_SUCCESS);
	ck_assert_uint_eq(a_recv(c, m, sizeof(m)), NVME_SC_SUCCESS);
	ck_assert_int_eq(failure1(m), AUTH_FAIL_MESSAGE);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
	h_close(c);
}
END_TEST

/* Every I/O queue authenticates too; then a key rotated live is used by a
 * re-authentication on both queues, and the association stays. */
START_TEST(io_queue_and_reauth)
{
	struct h_conn *c = connect_admin(H_HOSTNQN, 0, true), *q;
	struct nvme_cqe cqe;
	struct hauth a;
	uint8_t buf[4096];

	hauth_init(&a, &host->key);
	a.groups[0] = DHCHAP_FFDHE8192 - 1;	/* ffdhe6144 ... */
	a.ngroups = 1;
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert_int_eq(h_finish(c, &a), -1);
	h_enable(c);
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_NUM_QUEUES, 0, NULL),
	    NVME_SC_SUCCESS);

	q = h_open(port, "127.0.0.1");
	h_icreq(q, 0, 0, NULL);
	cqe = h_connect(q, 1, 16, NQN, H_HOSTNQN, c->cntlid, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	ck_assert(cqe.dw0 & NVMF_CONNECT_AUTHREQ_ATR);
	expect_auth_required(h_read(q, 1, 0, 1, buf, 512));
	hauth_init(&a, &host->key);
	a.groups[0] = DHCHAP_NULL;
	a.ngroups = 1;
	ck_assert_int_eq(h_negotiate(q, &a), -1);
	ck_assert_int_eq(h_finish(q, &a), -1);
	ck_assert_uint_eq(h_read(q, 1, 0, 1, buf, 512),
	    NVME_SC_SUCCESS);

	/* Rotate.  A re-authentication under way leaves the queue usable. */
	host->key = key_b;
	auth_subsys_refresh(ss);
	ck_assert_int_eq(h_negotiate(q, &a), -1);
	ck_assert_uint_eq(h_read(q, 1, 0, 1, buf, 512),
	    NVME_SC_SUCCESS);
	hauth_init(&a, &key_b);
	a.groups[0] = DHCHAP_NULL;
	a.ngroups = 1;
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert_int_eq(h_finish(c, &a), -1);
	a.tid++;
	ck_assert_int_eq(h_negotiate(q, &a), -1);
	ck_assert_int_eq(h_finish(q, &a), -1);
	ck_assert_uint_eq(h_read(q, 1, 0, 1, buf, 512),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, buf), 0);
	h_close(q);
	h_close(c);
}
END_TEST

/* An exchange slower than KATO does not lose the controller. */
START_TEST(keep_alive_while_authenticating)
{
	struct h_conn *c = connect_admin(H_HOSTNQN, 300, true);
	struct hauth a;

	hauth_init(&a, &host->key);
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	h_pump_for(800);
	ck_assert(!h_closed(c, 0));
	ck_assert_int_eq(h_finish(c, &a), -1);
	h_enable(c);
	h_close(c);
}
END_TEST

/* A message outside any transaction starts none, and a failed exchange is
 * over: neither holds off the keep-alive timer while its Failure1 waits
 * for a Receive that a silent host never sends. */
START_TEST(failure_keeps_keep_alive)
{
	struct h_conn *c = connect_admin(H_HOSTNQN, 300, true);
	uint8_t m[AUTH_NEGOTIATE_LEN + AUTH_DESC_LEN] = { 0 };
	struct hauth a;

	m[0] = AUTH_DHCHAP;
	m[1] = AUTH_SUCCESS2;
	ck_assert_uint_eq(a_send(c, m, AUTH_HDR_LEN), NVME_SC_SUCCESS);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
	h_close(c);

	c = connect_admin(H_HOSTNQN, 300, true);
	hauth_init(&a, &host->key);
	a.hashes[0] = 0xff;
	a.nhashes = 1;
	ck_assert_uint_eq(a_send(c, m, build_negotiate(&a, m)),
	    NVME_SC_SUCCESS);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
	h_close(c);
}
END_TEST

/* A stalled first exchange closes the queue; a stalled re-authentication
 * only ends the transaction.  The limit (1 s) includes the controller's DH
 * key generation for the Challenge: less fails on a loaded machine. */
START_TEST(transaction_timeout)
{
	struct h_conn *c = connect_admin(H_HOSTNQN, 0, true);
	struct hauth a;
	uint8_t id[4096];

	auth_timeout_ms = 1000;
	hauth_init(&a, &host->key);
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
	h_close(c);

	/* Whole exchanges get the usual time: they may be slow (valgrind). */
	auth_timeout_ms = 120000;
	c = connect_admin(H_HOSTNQN, 0, true);
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert_int_eq(h_finish(c, &a), -1);
	h_enable(c);
	auth_timeout_ms = 1000;
	a.tid++;
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	h_pump_for(1500);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, id),
	    NVME_SC_SUCCESS);
	/* A fresh exchange after the stalled one succeeds. */
	auth_timeout_ms = 120000;
	a.tid++;
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert_int_eq(h_finish(c, &a), -1);
	h_close(c);
}
END_TEST

/* ------------------------------------------------ discovery controller */

#define DISC	NVMF_DISCOVERY_NQN

static void
disc_hauth_init(struct hauth *a, const struct dhchap_key *key)
{
	hauth_init(a, key);
	a->subnqn = DISC;
	a->groups[0] = DHCHAP_NULL;	/* quick; ffdhe is covered above */
	a->ngroups = 1;
}

/* The discovery log page: its header's record count, or the status. */
static uint16_t
disc_log(struct h_conn *c, uint64_t *numrec)
{
	uint8_t buf[1024];
	uint16_t sc = h_get_log(c, NVME_LOG_DISCOVERY, 0, sizeof(buf), false, buf);

	*numrec = sc == NVME_SC_SUCCESS ? get_le64(buf + 8) : 0;
	return (sc);
}

/* Open by default: an unlisted host discovers without authenticating; a
 * listed host with a key is asked to, and nothing else works before. */
START_TEST(discovery_keyed_host)
{
	struct h_conn *c = connect_to(DISC, H_HOSTNQN2, 0, false);
	struct hauth a;
	uint8_t id[4096];
	uint64_t v, n;

	h_enable(c);
	ck_assert_uint_eq(disc_log(c, &n), NVME_SC_SUCCESS);
	ck_assert_uint_ge(n, 2);	/* itself and the subsystem */
	h_close(c);

	c = connect_to(DISC, H_HOSTNQN, 0, true);
	expect_auth_required(h_prop_get(c, NVME_REG_CAP, &v));
	expect_auth_required(h_prop_set(c, NVME_REG_CC, 1));
	expect_auth_required(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, id));
	disc_hauth_init(&a, &dhost->key);
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert_uint_eq(a.dhgid, DHCHAP_NULL);
	ck_assert_int_eq(h_finish(c, &a), -1);
	h_enable(c);
	ck_assert_uint_eq(disc_log(c, &n), NVME_SC_SUCCESS);
	ck_assert_uint_ge(n, 2);
	h_close(c);
}
END_TEST

/* Bidirectional, with the discovery section's offer; a wrong key and a
 * missing controller key fail as on an I/O controller. */
START_TEST(discovery_bidirectional_and_failures)
{
	struct h_conn *c;
	struct hauth a;
	uint64_t n;

	dhost->ctrl_key = key_c;
	cfg->discovery.dhchap.nhashes = 1;
	cfg->discovery.dhchap.hashes[0] = DHCHAP_SHA384;
	c = connect_to(DISC, H_HOSTNQN, 0, true);
	disc_hauth_init(&a, &dhost->key);
	a.ctrl_key = key_c;
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert_uint_eq(a.hashid, DHCHAP_SHA384);
	ck_assert_int_eq(h_finish(c, &a), -1);
	h_enable(c);
	ck_assert_uint_eq(disc_log(c, &n), NVME_SC_SUCCESS);
	h_close(c);

	disc_hauth_init(&a, &key_b);
	expect_failed_exchange(DISC, &a);

	/* The host asks the controller to authenticate: no key for it. */
	memset(&dhost->ctrl_key, 0, sizeof(dhost->ctrl_key));
	disc_hauth_init(&a, &dhost->key);
	a.ctrl_key = key_c;
	expect_failed_exchange(DISC, &a);
}
END_TEST

/* allow_any_host off: unlisted hosts cannot connect to discovery. */
START_TEST(discovery_restricted)
{
	struct h_conn *c = h_open(port, "127.0.0.1");
	struct nvme_cqe cqe;

	cfg->discovery.allow_any_host = false;
	h_icreq(c, 0, 0, NULL);
	cqe = h_connect(c, 0, 31, DISC, H_HOSTNQN2, NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_CONNECT_INVALID_HOST);
	h_close(c);
	c = connect_to(DISC, H_HOSTNQN, 0, true);
	h_close(c);
	cfg->discovery.allow_any_host = true;
}
END_TEST

/* A key rotated live serves the next re-authentication on the same
 * discovery association; the old key no longer does. */
START_TEST(discovery_reauth_rotated)
{
	struct h_conn *c = connect_to(DISC, H_HOSTNQN, 0, true);
	struct hauth a;
	uint64_t n;

	disc_hauth_init(&a, &dhost->key);
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert_int_eq(h_finish(c, &a), -1);
	h_enable(c);
	dhost->key = key_b;
	discovery_auth_refresh();
	disc_hauth_init(&a, &key_b);
	a.tid++;
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert_int_eq(h_finish(c, &a), -1);
	ck_assert_uint_eq(disc_log(c, &n), NVME_SC_SUCCESS);
	disc_hauth_init(&a, &host->key);
	a.tid += 2;
	ck_assert_int_eq(h_negotiate(c, &a), -1);
	ck_assert_int_eq(h_finish(c, &a), AUTH_FAIL_FAILED);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
	h_close(c);
}
END_TEST

static Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("auth");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, refused_before_authentication);
	tcase_add_test(tc, null_group_sha256);
	tcase_add_test(tc, bidirectional_ffdhe2048);
	tcase_add_test(tc, wrong_host_key);
	tcase_add_test(tc, no_controller_key);
	tcase_add_test(tc, no_common_hash_or_group);
	tcase_add_test(tc, bad_messages);
	tcase_add_test(tc, bad_negotiate);
	tcase_add_test(tc, bad_commands);
	tcase_add_test(tc, replayed_reply);
	tcase_add_test(tc, io_queue_and_reauth);
	tcase_add_test(tc, keep_alive_while_authenticating);
	tcase_add_test(tc, failure_keeps_keep_alive);
	tcase_add_test(tc, transaction_timeout);
	tcase_add_test(tc, discovery_keyed_host);
	tcase_add_test(tc, discovery_bidirectional_and_failures);
	tcase_add_test(tc, discovery_restricted);
	tcase_add_test(tc, discovery_reauth_rotated);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
