/*
 * Asymmetric Namespace Access: the group states by port and their
 * bookkeeping, the Identify fields Linux checks, the ANA log page as each
 * port sees it (with and without RGO), the path-related statuses of I/O
 * commands, the ANA change event, a namespace moving between groups and
 * the controller ID range.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "harness.h"

#define NQN	"nqn.2026-11.io.nvmfd:ana"

static struct port *port1, *port2;
static struct subsystem *ss;

/* Port 1: 127.0.0.1:4420, port 2: 127.0.0.2:4421.  NSID 1 in group 1,
 * NSIDs 2 and 3 in group 2. */
static void
setup(void)
{
	struct config *cf = h_config();

	h_add_port(cf, 2, "127.0.0.2", "4421");
	ss = h_add_subsys(cf, NQN);
	h_add_ns(ss, 1, 1u << 20);
	h_add_ns(ss, 3, 1u << 20)->anagrpid = 2;
	h_add_ns(ss, 2, 1u << 20)->anagrpid = 2;
	h_start(cf);
	port1 = port_find(cf, 1);
	port2 = port_find(cf, 2);
}

static void
teardown(void)
{
	h_stop();
}

/* Bytes of the ANA log; 0 when the read failed. */
static uint16_t
ana_log(struct h_conn *c, bool rgo, uint8_t *d, uint32_t len)
{
	struct nvme_sqe sqe = { .opc = NVME_ADM_GET_LOG_PAGE };
	uint32_t numd = len / 4 - 1;

	sqe.nsid = 0xffffffff;
	sqe.cdw10 = NVME_LOG_ANA | (rgo ? ANA_LOG_RGO << 8 : 0) |
	    (numd & 0xffff) << 16;
	sqe.cdw11 = numd >> 16;
	memset(d, 0xa5, len);
	return (h_cmd(c, &sqe, NULL, 0, d, len, NULL));
}

/* The descriptor of group grpid in a log, or NULL. */
static const uint8_t *
find_group(const uint8_t *d, uint32_t grpid)
{
	const uint8_t *p = d + 16;

	for (uint16_t i = 0; i < get_le16(d + 8); i++) {
		if (get_le32(p) == grpid)
			return (p);
		p += 32 + 4 * get_le32(p + 4);
	}
	return (NULL);
}

START_TEST(states_by_port)
{
	struct ana_map m;
	uint8_t st;

	memset(&m, 0, sizeof(m));
	/* Nothing set: optimized everywhere; optimized sets nothing. */
	ck_assert_uint_eq(ana_state(&m, 1, 7), ANA_OPTIMIZED);
	ck_assert_int_eq(ana_set(&m, 1, 7, ANA_OPTIMIZED), 0);
	ck_assert_uint_eq(atomic_load(&m.nports), 0);

	ck_assert_int_eq(ana_set(&m, 2, 7, ANA_INACCESSIBLE), 1);
	ck_assert_int_eq(ana_set(&m, 2, 7, ANA_INACCESSIBLE), 0);
	ck_assert_uint_eq(ana_state(&m, 2, 7), ANA_INACCESSIBLE);
	ck_assert_uint_eq(ana_state(&m, 2, 8), ANA_OPTIMIZED);
	ck_assert_uint_eq(ana_state(&m, 1, 7), ANA_OPTIMIZED);
	ck_assert(ana_group_has_states(&m, 2));
	ck_assert(!ana_group_has_states(&m, 1));
	/* Every state and back. */
	ck_assert_int_eq(ana_set(&m, 2, 7, ANA_CHANGE), 1);
	ck_assert_int_eq(ana_set(&m, 2, 7, ANA_PERSISTENT_LOSS), 1);
	ck_assert_int_eq(ana_set(&m, 2, 7, ANA_NON_OPTIMIZED), 1);
	ck_assert(ana_group_has_states(&m, 2));
	ck_assert_int_eq(ana_set(&m, 2, 7, ANA_OPTIMIZED), 1);
	ck_assert(!ana_group_has_states(&m, 2));

	/* Bad groups and states change nothing. */
	ck_assert_int_eq(ana_set(&m, 0, 7, ANA_INACCESSIBLE), -1);
	ck_assert_int_eq(ana_set(&m, ANA_GRPMAX + 1, 7, ANA_INACCESSIBLE), -1);
	ck_assert_int_eq(ana_set(&m, 1, 7, 0), -1);
	ck_assert_int_eq(ana_set(&m, 1, 7, 5), -1);
	ck_assert_uint_eq(ana_state(&m, ANA_GRPMAX + 1, 7), ANA_OPTIMIZED);

	/* A slot per port, no more than ANA_PORTS of them. */
	for (uint16_t p = 100; p < 100 + ANA_PORTS - 1; p++)
		ck_assert_int_eq(ana_set(&m, ANA_GRPMAX, p, ANA_CHANGE), 1);
	ck_assert_uint_eq(atomic_load(&m.nports), ANA_PORTS);
	ck_assert_int_eq(ana_set(&m, 1, 999, ANA_CHANGE), -1);
	ck_assert_uint_eq(ana_state(&m, 1, 999), ANA_OPTIMIZED);
	/* A port that has a slot still changes. */
	ck_assert_int_eq(ana_set(&m, 1, 100, ANA_INACCESSIBLE), 1);
	/* A port removed: its states go. */
	ana_forget_port(&m, 100);
	ck_assert_uint_eq(ana_state(&m, 1, 100), ANA_OPTIMIZED);
	ck_assert_uint_eq(ana_state(&m, ANA_GRPMAX, 100), ANA_OPTIMIZED);
	ck_assert_uint_eq(ana_state(&m, ANA_GRPMAX, 101), ANA_CHANGE);

	/* Names round-trip; unknown ones are refused. */
	for (uint8_t s = 0; s < 16; s++) {
		const char *name = ana_state_name(s);

		if (strcmp(name, "unknown") == 0)
			continue;
		ck_assert_int_eq(ana_state_parse(name, &st), 0);
		ck_assert_uint_eq(st, s);
	}
	ck_assert_int_eq(ana_state_parse("Optimized", &st), -1);
	ck_assert_int_eq(ana_state_parse("", &st), -1);
}
END_TEST

START_TEST(copy_for_reload)
{
	struct ana_map r, n;

	memset(&r, 0, sizeof(r));
	memset(&n, 0, sizeof(n));
	ana_set(&r, 1, 1, ANA_INACCESSIBLE);
	ana_set(&n, 2, 3, ANA_CHANGE);
	ck_assert(ana_copy(&r, &n));
	ck_assert_uint_eq(ana_state(&r, 1, 1), ANA_OPTIMIZED);
	ck_assert_uint_eq(ana_state(&r, 2, 3), ANA_CHANGE);
	ck_assert(!ana_copy(&r, &n));
}
END_TEST

START_TEST(identify_fields)
{
	struct h_conn *c = h_admin(port1, NQN, H_HOSTNQN, 0);
	uint8_t d[4096];

	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(d[76], 1u << 1 | 1u << 3);	/* CMIC */
	ck_assert(get_le32(d + 92) & NVME_AEN_CFG_ANA_CHANGE);	/* OAES */
	ck_assert_uint_eq(d[343], ANA_TT);
	ck_assert_uint_eq(d[344], 0x1f);		/* ANACAP */
	ck_assert_uint_eq(get_le32(d + 348), ANA_GRPMAX);
	ck_assert_uint_eq(get_le32(d + 352), ANA_GRPMAX);
	/* Linux refuses ANA without 0 < MNAN <= NN. */
	ck_assert_uint_eq(get_le32(d + 540), get_le32(d + 516));
	ck_assert_uint_gt(get_le32(d + 540), 0);
	/* ... and a log that needs more than MDTS. */
	ck_assert_uint_le(16 + 32 * get_le32(d + 352) + 4 * get_le32(d + 540),
	    4096u << d[77]);

	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 1, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le32(d + 92), 1);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 3, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le32(d + 92), 2);
	h_close(c);
}
END_TEST

START_TEST(log_layout)
{
	struct h_conn *c1 = h_admin(port1, NQN, H_HOSTNQN, 0);
	struct h_conn *c2 = h_admin(port2, NQN, H_HOSTNQN, 0);
	size_t max = ana_log_max();
	uint8_t *d = malloc(max);
	const uint8_t *g;

	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(ana_set(&ss->ana, 2, 2, ANA_INACCESSIBLE), 1);
	ana_changed(ss, 2);

	/* The whole read Linux makes: header, two groups, zeroes after. */
	ck_assert_uint_eq(ana_log(c1, false, d, max), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le64(d), 1);			/* CHGCNT */
	ck_assert_uint_eq(get_le16(d + 8), 2);			/* NGRPS */
	g = d + 16;
	ck_assert_uint_eq(get_le32(g), 1);
	ck_assert_uint_eq(get_le32(g + 4), 1);
	ck_assert_uint_eq(get_le64(g + 8), 1);
	ck_assert_uint_eq(g[16], ANA_OPTIMIZED);
	ck_assert_uint_eq(get_le32(g + 32), 1);
	g += 36;
	ck_assert_uint_eq(get_le32(g), 2);
	ck_assert_uint_eq(get_le32(g + 4), 2);
	ck_assert_uint_eq(g[16], ANA_OPTIMIZED);		/* port 1 */
	ck_assert_uint_eq(get_le32(g + 32), 2);			/* ascending */
	ck_assert_uint_eq(get_le32(g + 36), 3);
	g += 40;
	for (const uint8_t *z = g; z < d + max; z++)
		ck_assert_uint_eq(*z, 0);

	/* Port 2 sees its own state. */
	ck_assert_uint_eq(ana_log(c2, false, d, max), NVME_SC_SUCCESS);
	ck_assert_ptr_nonnull(g = find_group(d, 2));
	ck_assert_uint_eq(g[16], ANA_INACCESSIBLE);
	ck_assert_uint_eq(find_group(d, 1)[16], ANA_OPTIMIZED);

	/* RGO: the groups without their NSIDs. */
	ck_assert_uint_eq(ana_log(c2, true, d, 4096), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le16(d + 8), 2);
	ck_assert_uint_eq(get_le32(d + 16 + 4), 0);
	ck_assert_uint_eq(get_le32(d + 48), 2);
	ck_assert_uint_eq(get_le32(d + 48 + 4), 0);
	ck_assert_uint_eq(d[48 + 16], ANA_INACCESSIBLE);
	ck_assert_uint_eq(get_le32(d + 80), 0);

	/* A group with a state but no namespace is listed too. */
	ck_assert_uint_eq(ana_set(&ss->ana, 9, 1, ANA_NON_OPTIMIZED), 1);
	ck_assert_uint_eq(ana_log(c2, false, d, 4096), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le16(d + 8), 3);
	ck_assert_ptr_nonnull(g = find_group(d, 9));
	ck_assert_uint_eq(get_le32(g + 4), 0);
	ck_assert_uint_eq(g[16], ANA_OPTIMIZED);		/* on port 2 */
	/* Past the end is refused, a slice is served. */
	ck_assert_uint_eq(ana_log(c1, false, d, 8), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le64(d), 1);
	free(d);
	h_close(c1);
	h_close(c2);
}
END_TEST

START_TEST(io_statuses)
{
	struct h_conn *a = h_admin(port2, NQN, H_HOSTNQN, 0);
	struct h_conn *q = h_ioq(a, NQN, H_HOSTNQN, 1, 16, 0);
	struct h_conn *a1 = h_admin(port1, NQN, H_HOSTNQN2, 0);
	struct h_conn *q1 = h_ioq(a1, NQN, H_HOSTNQN2, 1, 16, 0);
	static const struct {
		uint8_t		state;
		uint16_t	sc;
	} cases[] = {
		{ ANA_INACCESSIBLE, NVME_SC_ANA_INACCESSIBLE },
		{ ANA_PERSISTENT_LOSS, NVME_SC_ANA_PERSISTENT_LOSS },
		{ ANA_CHANGE, NVME_SC_ANA_TRANSITION },
		{ ANA_NON_OPTIMIZED, NVME_SC_SUCCESS },
		{ ANA_OPTIMIZED, NVME_SC_SUCCESS },
	};
	uint8_t buf[512] = { 0 };
	struct nvme_cqe cqe;
	struct nvme_sqe sqe;

	for (size_t i = 0; i < nitems(cases); i++) {
		ana_set(&ss->ana, 2, 2, cases[i].state);
		ck_assert_uint_eq(h_read(q, 2, 0, 1, buf, sizeof(buf)),
		    cases[i].sc);
		ck_assert_uint_eq(h_write(q, 3, 0, 1, buf, sizeof(buf)),
		    cases[i].sc);
		/* Group 1 on port 2, and group 2 on port 1, still work. */
		ck_assert_uint_eq(h_read(q, 1, 0, 1, buf, sizeof(buf)),
		    NVME_SC_SUCCESS);
		ck_assert_uint_eq(h_read(q1, 2, 0, 1, buf, sizeof(buf)),
		    NVME_SC_SUCCESS);
	}
	/* Flush too, and the status carries no DNR: the host retries
	 * elsewhere. */
	ana_set(&ss->ana, 2, 2, ANA_INACCESSIBLE);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_CMD_FLUSH;
	sqe.nsid = 2;
	h_sgl_xport(&sqe, 0);
	ck_assert_uint_eq(h_cmd(q, &sqe, NULL, 0, NULL, 0, &cqe),
	    NVME_SC_ANA_INACCESSIBLE);
	ck_assert(!h_dnr(&cqe));
	ck_assert_uint_eq((cqe.status >> 9) & 7, NVME_SCT_PATH);
	h_close(q);
	h_close(a);
	h_close(q1);
	h_close(a1);
}
END_TEST

START_TEST(change_event)
{
	struct h_conn *c2 = h_admin(port2, NQN, H_HOSTNQN, 0);
	struct h_conn *c1 = h_admin(port1, NQN, H_HOSTNQN2, 0);
	uint8_t d[4096];
	struct nvme_cqe cqe;
	uint16_t aer, aer1;

	ck_assert_uint_eq(h_set_feat(c2, NVME_FEAT_ASYNC_EVENT,
	    NVME_AEN_CFG_ANA_CHANGE, NULL), NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_set_feat(c1, NVME_FEAT_ASYNC_EVENT,
	    NVME_AEN_CFG_ANA_CHANGE, NULL), NVME_SC_SUCCESS);
	aer = h_submit_aer(c2);
	aer1 = h_submit_aer(c1);

	/* A change on port 2 is news to port 2's hosts only. */
	ana_set(&ss->ana, 2, 2, ANA_INACCESSIBLE);
	ana_changed(ss, 2);
	h_wait(c2, aer, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	ck_assert_uint_eq(cqe.dw0, NVME_AER_ANA_CHANGED);
	ck_assert(!h_readable(c1, 50));

	/* Masked until the log is read. */
	aer = h_submit_aer(c2);
	ana_set(&ss->ana, 2, 2, ANA_OPTIMIZED);
	ana_changed(ss, 2);
	ck_assert(!h_readable(c2, 50));
	ck_assert_uint_eq(ana_log(c2, false, d, sizeof(d)), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le64(d), 2);
	ana_set(&ss->ana, 2, 2, ANA_CHANGE);
	ana_changed(ss, 2);
	h_wait(c2, aer, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(cqe.dw0, NVME_AER_ANA_CHANGED);

	/* A namespace moving groups: both events, on every port. */
	ana_move_ns(namespace_find(ss, 3), 4);
	h_wait(c1, aer1, &cqe, NULL, 0, NULL, 0);
	ck_assert(cqe.dw0 == NVME_AER_ANA_CHANGED);
	ck_assert_uint_eq(h_get_log(c1, NVME_LOG_CHANGED_NS, 0, 4096, false,
	    d), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le32(d), 3);
	ck_assert_uint_eq(ana_log(c1, false, d, sizeof(d)), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le16(d + 8), 3);
	ck_assert_uint_eq(get_le32(find_group(d, 4) + 32), 3);
	ck_assert_uint_eq(get_le32(find_group(d, 2) + 4), 1);
	ck_assert_uint_eq(h_identify(c1, NVME_ID_CNS_NS, 3, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le32(d + 92), 4);
	h_close(c1);
	h_close(c2);
}
END_TEST

/* Without bit 11 in Async Event Configuration: nothing is sent. */
START_TEST(event_needs_config)
{
	struct h_conn *c = h_admin(port2, NQN, H_HOSTNQN, 0);

	h_submit_aer(c);
	ana_set(&ss->ana, 2, 2, ANA_INACCESSIBLE);
	ana_changed(ss, -1);
	ck_assert(!h_readable(c, 50));
	h_close(c);
}
END_TEST

START_TEST(metrics_series)
{
	struct evbuffer *b = evbuffer_new();
	char *page;

	ck_assert_ptr_nonnull(b);
	ana_set(&ss->ana, 2, 2, ANA_INACCESSIBLE);
	ck_assert_int_eq(metrics_render(b), 0);
	evbuffer_add(b, "", 1);
	page = (char *)evbuffer_pullup(b, -1);
	ck_assert_ptr_nonnull(strstr(page, "\nnvmfd_ana_group_state{subsystem=\""
	    NQN "\",port=\"2\",group=\"2\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(page, "\nnvmfd_ana_group_state{subsystem=\""
	    NQN "\",port=\"2\",group=\"1\"} 1\n"));
	/* Port 1 and the other subsystem have no state set: not listed. */
	ck_assert_ptr_null(strstr(page, "port=\"1\",group="));
	ck_assert_ptr_null(strstr(page, "state{subsystem=\"" NVMFD_DEFAULT_NQN));
	evbuffer_free(b);
}
END_TEST

START_TEST(cntlid_range)
{
	struct h_conn *c[3];
	struct nvme_cqe cqe;

	running_config->cntlid_min = 500;
	running_config->cntlid_max = 501;
	c[0] = h_admin(port1, NQN, H_HOSTNQN, 0);
	c[1] = h_admin(port1, NQN, H_HOSTNQN, 0);
	ck_assert_uint_eq(c[0]->cntlid, 500);
	ck_assert_uint_eq(c[1]->cntlid, 501);
	/* The range is full: the next Connect is refused. */
	c[2] = h_open(port1, NULL);
	h_icreq(c[2], 0, 0, NULL);
	cqe = h_connect(c[2], 0, 31, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_ne(h_sc(&cqe), NVME_SC_SUCCESS);
	h_close(c[2]);
	h_close(c[0]);
	/* A subsystem's own range wins over the global one. */
	ss->cntlid_min = 7000;
	ss->cntlid_max = 7001;
	c[0] = h_admin(port1, NQN, H_HOSTNQN, 0);
	ck_assert_uint_eq(c[0]->cntlid, 7000);
	h_close(c[0]);
	h_close(c[1]);
}
END_TEST

static Suite *
ana_suite(void)
{
	Suite *s = suite_create("ana");
	TCase *tc = tcase_create("ana");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, states_by_port);
	tcase_add_test(tc, copy_for_reload);
	tcase_add_test(tc, identify_fields);
	tcase_add_test(tc, log_layout);
	tcase_add_test(tc, io_statuses);
	tcase_add_test(tc, change_event);
	tcase_add_test(tc, event_needs_config);
	tcase_add_test(tc, metrics_series);
	tcase_add_test(tc, cntlid_range);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(ana_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
