/*
 * Discovery controller: Identify, the discovery log page read in chunks,
 * its generation counter, per-host filtering, wildcard addresses,
 * referrals and the Discovery Log Change event.
 */
#include "config.h"

#include <sys/socket.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NQN_A	NVMFD_DEFAULT_NQN		/* any host, every port */
#define NQN_B	"nqn.2026-11.io.nvmfd:only-host1"	/* H_HOSTNQN, port 2 */
#define NQN_C	"nqn.2026-11.io.nvmfd:port1"	/* any host, port 1 */
#define REF_ADDR	"192.0.2.50"
#define LOCAL2	"203.0.113.5"	/* where the host reached wildcard port 2 */

static struct port *port1, *port2;

/*
 * Port 1: 127.0.0.1:4420.  Port 2: 0.0.0.0:4421 (wildcard).
 * A on both ports, B on port 2 for H_HOSTNQN only, C on port 1.
 */
static void
setup(void)
{
	struct config *cf = h_config();
	struct subsystem *b, *c;
	static const uint16_t p2[] = { 2 }, p1[] = { 1 };

	port2 = h_add_port(cf, 2, "0.0.0.0", "4421");
	b = h_add_subsys(cf, NQN_B);
	h_add_host(b, H_HOSTNQN);
	h_subsys_ports(b, p2, 1);
	h_add_ns(b, 1, 1u << 20);
	c = h_add_subsys(cf, NQN_C);
	h_subsys_ports(c, p1, 1);
	h_add_referral(cf, REF_ADDR, "8009", 7);
	h_start(cf);
	port1 = port_find(cf, 1);
}

static void
teardown(void)
{
	h_stop();
}

/* A fixed-width field padded with spaces (or NULs), as a C string. */
static const char *
field(const char *f, size_t width)
{
	static char buf[4][257];
	static int which;
	char *s = buf[which++ % 4];

	memcpy(s, f, width);
	s[width] = '\0';
	for (size_t n = strlen(s); n > 0 && s[n - 1] == ' '; n--)
		s[n - 1] = '\0';
	return (s);
}

/* Read the whole log: header first for its size, then 4 KiB chunks. */
static uint8_t *
read_log(struct h_conn *c, uint64_t *genctr, uint64_t *numrec)
{
	struct nvmf_disc_log_hdr hdr;
	uint8_t *log;
	size_t size;

	ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, 0, sizeof(hdr),
	    false, &hdr), NVME_SC_SUCCESS);
	ck_assert_uint_eq(hdr.recfmt, 0);
	ck_assert_uint_lt(hdr.numrec, 64);
	size = sizeof(hdr) + hdr.numrec * sizeof(struct nvmf_disc_log_entry);
	log = malloc(size);
	for (size_t off = 0; off < size; off += 4096)
		ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, off,
		    MINIMUM(4096, size - off), false, log + off),
		    NVME_SC_SUCCESS);
	/* Unchanged while we read: same generation at the end. */
	ck_assert_uint_eq(((struct nvmf_disc_log_hdr *)log)->genctr,
	    hdr.genctr);
	*genctr = hdr.genctr;
	*numrec = hdr.numrec;
	return (log);
}

static const struct nvmf_disc_log_entry *
entry(const uint8_t *log, int i)
{
	return ((const struct nvmf_disc_log_entry *)(log +
	    sizeof(struct nvmf_disc_log_hdr)) + i);
}

/* Find the entry for nqn on port id; NULL if absent. */
static const struct nvmf_disc_log_entry *
find(const uint8_t *log, uint64_t n, const char *nqn, uint16_t portid,
    uint8_t subtype)
{
	for (uint64_t i = 0; i < n; i++) {
		const struct nvmf_disc_log_entry *e = entry(log, i);

		if (strcmp(e->subnqn, nqn) == 0 && e->portid == portid &&
		    e->subtype == subtype)
			return (e);
	}
	return (NULL);
}

static void
check_entry(const struct nvmf_disc_log_entry *e, const char *addr,
    const char *svc)
{
	static const uint8_t zero[256];

	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->trtype, NVMF_TRTYPE_TCP);
	ck_assert_uint_eq(e->adrfam, NVMF_ADRFAM_IPV4);
	ck_assert_uint_eq(e->treq & 3, NVMF_TREQ_NOT_SPECIFIED);
	ck_assert_uint_eq(e->cntlid, NVMF_CNTLID_DYNAMIC);
	ck_assert_uint_eq(e->asqsz, NVMFD_ADMIN_QUEUE_DEPTH);
	ck_assert_str_eq(field(e->traddr, sizeof(e->traddr)), addr);
	ck_assert_str_eq(field(e->trsvcid, sizeof(e->trsvcid)), svc);
	ck_assert_ptr_nonnull(memchr(e->subnqn, '\0', sizeof(e->subnqn)));
	ck_assert_mem_eq(e->tsas, zero, sizeof(e->tsas));	/* no TLS */
}

START_TEST(identify)
{
	struct h_conn *c = h_admin(port1, NVMF_DISCOVERY_NQN, H_HOSTNQN, 0);
	uint8_t d[4096];
	char nqn[257];

	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(d[111], 2);				/* CNTRLTYPE */
	ck_assert_uint_eq(get_le16(d + 78), c->cntlid);
	ck_assert_uint_eq(get_le32(d + 80), NVME_VS(1, 3, 0));
	memcpy(nqn, d + 768, 256);
	nqn[256] = '\0';
	ck_assert_str_eq(nqn, NVMF_DISCOVERY_NQN);
	ck_assert_uint_eq(get_le32(d + 516), 0);		/* NN */
	ck_assert_uint_eq(d[76], 0);				/* CMIC */
	/* OAES */
	ck_assert_uint_eq(get_le32(d + 92), NVME_AEN_CFG_DISC_CHANGE);
	ck_assert(d[261] & 1u << 2);			/* LPA: extended */
	ck_assert_uint_ne(get_le16(d + 320), 0);		/* KAS */

	/* Nothing else: no namespaces here. */
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 1, 0, d),
	    NVME_SC_INVALID_FIELD);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS_ACTIVE_LIST, 0, 0, d),
	    NVME_SC_INVALID_FIELD);
	/* Nor I/O controller log pages and features. */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_SMART, 0, 512, false, d),
	    NVME_SC_INVALID_LOG_PAGE);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_NUM_QUEUES, 0, NULL),
	    NVME_SC_INVALID_FIELD);
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_VOLATILE_WC, 1, NULL),
	    NVME_SC_INVALID_FIELD);
}
END_TEST

START_TEST(log_entries)
{
	struct h_conn *c = h_admin(port1, NVMF_DISCOVERY_NQN, H_HOSTNQN, 0);
	const struct nvmf_disc_log_entry *e;
	uint64_t gen, n;
	uint8_t *log = read_log(c, &gen, &n);

	/* This discovery controller, A on both ports, B on 2, C on 1,
	 * and the referral. */
	ck_assert_uint_eq(n, 6);
	e = entry(log, 0);
	ck_assert_uint_eq(e->subtype, NVMF_SUBTYPE_CURRENT_DISC);
	ck_assert_str_eq(e->subnqn, NVMF_DISCOVERY_NQN);
	ck_assert_uint_eq(e->portid, 1);
	ck_assert_uint_eq(e->eflags, NVMF_DISC_EFLAGS_DUPRETINFO |
	    NVMF_DISC_EFLAGS_EPCSD);
	check_entry(e, "127.0.0.1", "4420");

	e = find(log, n, NQN_A, 1, NVMF_SUBTYPE_NVME);
	check_entry(e, "127.0.0.1", "4420");
	ck_assert_uint_eq(e->eflags, 0);
	/* Port 2 listens on every address: the entry names the one this
	 * host used (the qpair's local address). */
	check_entry(find(log, n, NQN_A, 2, NVMF_SUBTYPE_NVME), "127.0.0.1",
	    "4421");
	check_entry(find(log, n, NQN_B, 2, NVMF_SUBTYPE_NVME), "127.0.0.1",
	    "4421");
	check_entry(find(log, n, NQN_C, 1, NVMF_SUBTYPE_NVME), "127.0.0.1",
	    "4420");
	ck_assert_ptr_null(find(log, n, NQN_B, 1, NVMF_SUBTYPE_NVME));
	ck_assert_ptr_null(find(log, n, NQN_C, 2, NVMF_SUBTYPE_NVME));

	e = find(log, n, NVMF_DISCOVERY_NQN, 7, NVMF_SUBTYPE_REFERRAL);
	check_entry(e, REF_ADDR, "8009");
	ck_assert_ptr_eq(e, entry(log, n - 1));	/* referrals come last */
	free(log);
}
END_TEST

START_TEST(host_filtering)
{
	struct h_conn *c = h_admin(port1, NVMF_DISCOVERY_NQN, H_HOSTNQN2, 0);
	uint64_t gen, n;
	uint8_t *log = read_log(c, &gen, &n);

	/* B is H_HOSTNQN's only: another host does not see it at all. */
	ck_assert_uint_eq(n, 5);
	for (uint64_t i = 0; i < n; i++)
		ck_assert_str_ne(entry(log, i)->subnqn, NQN_B);
	ck_assert_ptr_nonnull(find(log, n, NQN_A, 1, NVMF_SUBTYPE_NVME));
	ck_assert_ptr_nonnull(find(log, n, NQN_A, 2, NVMF_SUBTYPE_NVME));
	free(log);
}
END_TEST

START_TEST(wildcard_address)
{
	struct h_conn *c = h_open(port2, LOCAL2);
	struct nvme_cqe cqe;
	const struct nvmf_disc_log_entry *e;
	uint64_t gen, n;
	uint8_t *log;

	h_icreq(c, 0, 0, NULL);
	cqe = h_connect(c, 0, 31, NVMF_DISCOVERY_NQN, H_HOSTNQN,
	    NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	h_enable(c);
	log = read_log(c, &gen, &n);
	/* This controller is on port 2, reached at LOCAL2. */
	e = entry(log, 0);
	ck_assert_uint_eq(e->subtype, NVMF_SUBTYPE_CURRENT_DISC);
	ck_assert_uint_eq(e->portid, 2);
	check_entry(e, LOCAL2, "4421");
	check_entry(find(log, n, NQN_A, 2, NVMF_SUBTYPE_NVME), LOCAL2, "4421");
	check_entry(find(log, n, NQN_B, 2, NVMF_SUBTYPE_NVME), LOCAL2, "4421");
	/* A specific address stays as configured. */
	check_entry(find(log, n, NQN_A, 1, NVMF_SUBTYPE_NVME), "127.0.0.1",
	    "4420");
	/* Referrals are never rewritten. */
	check_entry(find(log, n, NVMF_DISCOVERY_NQN, 7, NVMF_SUBTYPE_REFERRAL),
	    REF_ADDR, "8009");
	free(log);
}
END_TEST

START_TEST(chunked_reads)
{
	struct h_conn *c = h_admin(port1, NVMF_DISCOVERY_NQN, H_HOSTNQN, 0);
	uint64_t gen, n;
	uint8_t *log = read_log(c, &gen, &n), *whole, part[4096];
	size_t size = 1024 * (n + 1);

	/* One read of everything gives the same bytes as the chunks. */
	whole = malloc(size);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, 0, size, false,
	    whole), NVME_SC_SUCCESS);
	ck_assert_mem_eq(whole, log, size);
	/* Any dword offset, any dword length, across entry boundaries. */
	for (size_t off = 0; off + 100 <= size; off += 1020) {
		ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, off, 100,
		    false, part), NVME_SC_SUCCESS);
		ck_assert_mem_eq(part, whole + off, 100);
	}
	/* Past the end reads as zeroes (the log can shrink between the
	 * chunks of a host's read). */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, size + 4096, 1024,
	    false, part), NVME_SC_SUCCESS);
	for (int i = 0; i < 1024; i++)
		ck_assert_uint_eq(part[i], 0);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, size - 512, 1024,
	    false, part), NVME_SC_SUCCESS);
	ck_assert_mem_eq(part, whole + size - 512, 512);
	for (int i = 512; i < 1024; i++)
		ck_assert_uint_eq(part[i], 0);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, 2, 1024, false,
	    part), NVME_SC_INVALID_FIELD);
	free(whole);
	free(log);
}
END_TEST

START_TEST(generation_counter)
{
	struct h_conn *c = h_admin(port1, NVMF_DISCOVERY_NQN, H_HOSTNQN, 0);
	struct nvmf_disc_log_hdr hdr;
	struct subsystem *d;
	uint64_t gen, gen2, n, n2;
	uint8_t *log = read_log(c, &gen, &n), chunk[4096];
	char err[256];

	/* Reading again without a change: same generation. */
	free(read_log(c, &gen2, &n2));
	ck_assert_uint_eq(gen2, gen);

	/* A host reads the header and the first chunk... */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, 0, 4096, false,
	    chunk), NVME_SC_SUCCESS);
	/* ...the configuration changes: a new subsystem on every port... */
	d = h_add_subsys(running_config, "nqn.2026-11.io.nvmfd:new");
	ck_assert_int_eq(subsystem_publish(running_config, d, err,
	    sizeof(err)), 0);
	discovery_changed();
	/* ...the next chunk comes from the new log, and the header read
	 * after the chunks shows a different GENCTR, so it starts over. */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, 4096, 4096, false,
	    chunk), NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, 0, sizeof(hdr),
	    false, &hdr), NVME_SC_SUCCESS);
	ck_assert_uint_ne(hdr.genctr, gen);
	ck_assert_uint_eq(hdr.numrec, n + 2);
	free(log);
	log = read_log(c, &gen2, &n2);
	ck_assert_uint_eq(gen2, hdr.genctr);
	ck_assert_ptr_nonnull(find(log, n2, d->nqn, 1, NVMF_SUBTYPE_NVME));
	ck_assert_ptr_nonnull(find(log, n2, d->nqn, 2, NVMF_SUBTYPE_NVME));
	free(log);
}
END_TEST

static struct h_conn *
icreq_conn(struct port *port)
{
	struct h_conn *c = h_open(port, "127.0.0.1");

	h_icreq(c, 0, 0, NULL);
	return (c);
}

/* I/O and discovery controllers have limits of their own: a full set of
 * I/O controllers does not keep a host from discovery. */
START_TEST(separate_limits)
{
	struct h_conn *io, *disc;
	struct nvme_cqe cqe;

	running_config->max_controllers = 1;
	running_config->max_disc_controllers = 1;
	io = h_admin(port1, NQN_A, H_HOSTNQN, 0);
	cqe = h_connect(icreq_conn(port1), 0, 31, NQN_A, H_HOSTNQN2,
	    NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_CONNECT_CTRL_BUSY);
	disc = h_admin(port1, NVMF_DISCOVERY_NQN, H_HOSTNQN, 0);
	cqe = h_connect(icreq_conn(port1), 0, 31, NVMF_DISCOVERY_NQN,
	    H_HOSTNQN2, NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_CONNECT_CTRL_BUSY);
	(void)io;
	(void)disc;
}
END_TEST

START_TEST(log_change_event)
{
	struct h_conn *c = h_admin(port1, NVMF_DISCOVERY_NQN, H_HOSTNQN, 0);
	struct h_conn *quiet = h_admin(port1, NVMF_DISCOVERY_NQN, H_HOSTNQN2,
	    0);
	struct nvme_cqe cqe;
	uint8_t d[1024];
	uint32_t v;
	uint16_t a1, a2;

	/* Only the discovery log change notice exists here. */
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_ASYNC_EVENT,
	    NVME_AEN_CFG_DISC_CHANGE | NVME_AEN_CFG_NS_ATTR, NULL),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_ASYNC_EVENT, 0, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, NVME_AEN_CFG_DISC_CHANGE);

	a1 = h_submit_aer(c);
	a2 = h_submit_aer(c);
	h_submit_aer(quiet);		/* did not ask for the notice */
	ck_assert(!h_readable(c, 50));
	discovery_changed();
	h_wait(c, a2, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	ck_assert_uint_eq(cqe.dw0, NVME_AER_DISC_CHANGED);
	ck_assert(!h_readable(quiet, 50));

	/* Masked until the host reads the log (without RAE). */
	discovery_changed();
	ck_assert(!h_readable(c, 50));
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, 0, sizeof(d), true,
	    d), NVME_SC_SUCCESS);
	discovery_changed();
	ck_assert(!h_readable(c, 50));
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, 0, sizeof(d),
	    false, d), NVME_SC_SUCCESS);
	discovery_changed();
	h_wait(c, a1, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(cqe.dw0, NVME_AER_DISC_CHANGED);
}
END_TEST

START_TEST(keep_alive_and_kato)
{
	struct h_conn *c = h_admin(port1, NVMF_DISCOVERY_NQN, H_HOSTNQN, 0);
	struct nvme_sqe sqe = { .opc = NVME_ADM_KEEP_ALIVE };
	uint32_t v;

	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, NULL, 0, NULL),
	    NVME_SC_SUCCESS);
	/* A persistent discovery controller may use a timeout... */
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_KATO, 100, NULL),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_KATO, 0, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 100);
	/* ...and is dropped when the host goes quiet. */
	ck_assert(h_closed(c, H_TIMEOUT_MS));
}
END_TEST

static Suite *
discovery_suite(void)
{
	Suite *s = suite_create("discovery");
	TCase *tc = tcase_create("discovery");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, identify);
	tcase_add_test(tc, log_entries);
	tcase_add_test(tc, host_filtering);
	tcase_add_test(tc, wildcard_address);
	tcase_add_test(tc, chunked_reads);
	tcase_add_test(tc, generation_counter);
	tcase_add_test(tc, log_change_event);
	tcase_add_test(tc, separate_limits);
	tcase_add_test(tc, keep_alive_and_kato);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(discovery_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
