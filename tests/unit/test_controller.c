/*
 * Controllers: Connect, properties, Identify, log pages, features,
 * asynchronous events and keep alive, as a host sees them.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NQN		NVMFD_DEFAULT_NQN
#define NQN_LOCKED	"nqn.2026-11.io.nvmfd:locked"
#define NQN_UNKNOWN	"nqn.2026-11.io.nvmfd:nowhere"

static struct port *port;
static struct subsystem *ss;
static struct namespace *ns1, *ns3;

static void
setup(void)
{
	struct config *cf = h_config();
	struct subsystem *locked;

	/* A second namespace with a gap before it, and a subsystem only
	 * H_HOSTNQN2 may use. */
	ns3 = h_add_ns(TAILQ_FIRST(&cf->subsystems), 3, 1u << 20);
	ns3->block_size = 4096;
	locked = h_add_subsys(cf, NQN_LOCKED);
	h_add_host(locked, H_HOSTNQN2);
	h_add_ns(locked, 1, 1u << 20);
	h_start(cf);
	port = port_find(cf, 1);
	ss = subsystem_find(cf, NQN);
	ns1 = namespace_find(ss, 1);
}

static void
teardown(void)
{
	h_stop();
}

static struct h_conn *
ic_conn(void)
{
	struct h_conn *c = h_open(port, "127.0.0.1");

	h_icreq(c, 0, 0, NULL);
	return (c);
}

/* Connect must fail with status sc pointing at ipo, with DNR or not. */
static void
expect_refused(const struct nvme_cqe *cqe, uint16_t sc, bool in_data,
    uint16_t ipo, bool dnr)
{
	ck_assert_msg(h_sc(cqe) == sc, "status 0x%x, want 0x%x", h_sc(cqe), sc);
	ck_assert(h_dnr(cqe) == dnr);
	ck_assert_uint_eq(cqe->dw0, ipo | (in_data ? 1u << 16 : 0));
}

/* A refusal that retrying cannot mend. */
static void
expect_invalid(const struct nvme_cqe *cqe, uint16_t sc, bool in_data,
    uint16_t ipo)
{
	expect_refused(cqe, sc, in_data, ipo, true);
}

/* ----------------------------------------------------------- connect */

START_TEST(connect_admin)
{
	struct h_conn *c = ic_conn(), *c2 = ic_conn();
	struct nvme_cqe cqe, cqe2;

	cqe = h_connect(c, 0, 31, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	ck_assert_uint_ge(cqe.dw0, 1);
	ck_assert_uint_le(cqe.dw0, 0xffef);
	ck_assert_uint_eq(cqe.sqid, 0);
	/* A second association gets its own CNTLID. */
	cqe2 = h_connect(c2, 0, 31, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_eq(h_sc(&cqe2), NVME_SC_SUCCESS);
	ck_assert_uint_ne(cqe2.dw0, cqe.dw0);
	/* An empty host NQN (SPDK's default) where any host may connect. */
	cqe2 = h_connect(ic_conn(), 0, 31, NQN, "", NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_eq(h_sc(&cqe2), NVME_SC_SUCCESS);
	/* The host on the list gets into the locked subsystem. */
	c = ic_conn();
	cqe = h_connect(c, 0, 31, NQN_LOCKED, H_HOSTNQN2, NVMF_CNTLID_DYNAMIC,
	    0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	/* Connect is answered only once per queue. */
	cqe = h_connect(c, 0, 31, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_CMD_SEQ_ERROR);
}
END_TEST

START_TEST(connect_errors)
{
	struct nvmf_connect_data d;
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	struct h_conn *c;

	/* Retryable: the subsystem may be created (again) later. */
	cqe = h_connect(ic_conn(), 0, 31, NQN_UNKNOWN, H_HOSTNQN,
	    NVMF_CNTLID_DYNAMIC, 0);
	expect_refused(&cqe, NVME_SC_CONNECT_INVALID_PARAM, true, 256, false);
	cqe = h_connect(ic_conn(), 0, 31, "", H_HOSTNQN, NVMF_CNTLID_DYNAMIC,
	    0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, true, 256);

	cqe = h_connect(ic_conn(), 0, 31, NQN_LOCKED, H_HOSTNQN,
	    NVMF_CNTLID_DYNAMIC, 0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_HOST, true, 512);
	/* No host NQN at all (SPDK's default): not on an allow-list. */
	cqe = h_connect(ic_conn(), 0, 31, NQN_LOCKED, "", NVMF_CNTLID_DYNAMIC,
	    0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_HOST, true, 512);

	/* SQSIZE is 0's based: 0 would be a one-entry queue. */
	cqe = h_connect(ic_conn(), 0, 0, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC,
	    0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, false, 44);
	cqe = h_connect(ic_conn(), 0, port->max_queue_depth, NQN, H_HOSTNQN,
	    NVMF_CNTLID_DYNAMIC, 0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, false, 44);

	/* Admin queues take only the dynamic controller ID. */
	cqe = h_connect(ic_conn(), 0, 31, NQN, H_HOSTNQN, 1, 0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, true, 16);

	/* Record format 1 does not exist. */
	c = ic_conn();
	h_connect_sqe(&sqe, 0, 31, 0);
	sqe.cdw10 |= 1;
	h_connect_data(&d, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC);
	ck_assert_uint_eq(h_cmd(c, &sqe, &d, sizeof(d), NULL, 0, &cqe),
	    NVME_SC_CONNECT_FORMAT);
	ck_assert(h_dnr(&cqe));

	/* NQNs must be terminated within their 256 bytes. */
	h_connect_sqe(&sqe, 0, 31, 0);
	h_connect_data(&d, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC);
	memset(d.subnqn, 'a', sizeof(d.subnqn));
	h_cmd(c, &sqe, &d, sizeof(d), NULL, 0, &cqe);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, true, 256);
	h_connect_data(&d, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC);
	memset(d.hostnqn, 'b', sizeof(d.hostnqn));
	h_cmd(c, &sqe, &d, sizeof(d), NULL, 0, &cqe);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, true, 512);

	/* Connect data must be 1 KiB in the capsule. */
	h_connect_data(&d, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC);
	ck_assert_uint_eq(h_cmd(c, &sqe, &d, 512, NULL, 0, &cqe),
	    NVME_SC_SGL_INVALID_DATA_LEN);

	/* After all that, the queue still connects. */
	cqe = h_connect(c, 0, 31, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
}
END_TEST

START_TEST(connect_io)
{
	struct h_conn *a = ic_conn(), *c;
	struct nvme_cqe cqe;
	uint16_t cntlid;

	cqe = h_connect(a, 0, 31, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	cntlid = cqe.dw0;

	/* Not before the controller is enabled. */
	c = ic_conn();
	cqe = h_connect(c, 1, 31, NQN, H_HOSTNQN, cntlid, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_CMD_SEQ_ERROR);
	h_enable(a);
	cqe = h_connect(c, 1, 31, NQN, H_HOSTNQN, cntlid, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	ck_assert_uint_eq(cqe.dw0, cntlid);
	ck_assert_uint_eq(cqe.sqid, 1);

	/* The same QID twice. */
	cqe = h_connect(ic_conn(), 1, 31, NQN, H_HOSTNQN, cntlid, 0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, false, 42);
	/* Beyond the granted number of queues (32 by default). */
	cqe = h_connect(ic_conn(), ss->max_io_queues + 1, 31, NQN, H_HOSTNQN,
	    cntlid, 0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, false, 42);
	cqe = h_connect(ic_conn(), 0xfffe, 31, NQN, H_HOSTNQN, cntlid, 0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, false, 42);
	cqe = h_connect(ic_conn(), ss->max_io_queues, 31, NQN, H_HOSTNQN,
	    cntlid, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	/* A controller that does not exist, or belongs to another host. */
	cqe = h_connect(ic_conn(), 2, 31, NQN, H_HOSTNQN, cntlid + 100, 0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, true, 16);
	cqe = h_connect(ic_conn(), 2, 31, NQN, H_HOSTNQN2, cntlid, 0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, true, 16);
	/* The discovery controller has no I/O queues. */
	cqe = h_connect(ic_conn(), 1, 31, NVMF_DISCOVERY_NQN, H_HOSTNQN,
	    cntlid, 0);
	expect_invalid(&cqe, NVME_SC_CONNECT_INVALID_PARAM, false, 42);
}
END_TEST

START_TEST(commands_before_connect_or_enable)
{
	struct h_conn *c = ic_conn();
	uint8_t id[4096];
	uint64_t v;

	/* Nothing but Connect before Connect. */
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, id),
	    NVME_SC_CMD_SEQ_ERROR);
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_CAP, &v),
	    NVME_SC_CMD_SEQ_ERROR);
	h_connect(c, 0, 31, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC, 0);
	/* Properties, but no admin commands, before CC.EN. */
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_CAP, &v), NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, id),
	    NVME_SC_CMD_SEQ_ERROR);
	h_enable(c);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, id),
	    NVME_SC_SUCCESS);
}
END_TEST

/* -------------------------------------------------------- properties */

START_TEST(properties)
{
	struct h_conn *c = ic_conn();
	struct nvme_sqe sqe = { .opc = NVME_FABRICS_COMMAND };
	uint64_t v;

	h_connect(c, 0, 31, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_CAP, &v), NVME_SC_SUCCESS);
	/* MQES */
	ck_assert_uint_eq(v & 0xffff, port->max_queue_depth - 1);
	ck_assert(v & 1ull << 16);				/* CQR */
	ck_assert_uint_ne((v >> 24) & 0xff, 0);			/* TO */
	ck_assert(v & 1ull << 37);				/* CSS: NVM */
	ck_assert_uint_eq((v >> 48) & 0xf, 0);			/* MPSMIN 4K */
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_VS, &v), NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, NVME_VS(1, 3, 0));
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_CC, &v), NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 0);
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_CSTS, &v), NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 0);

	/* Enable: RDY follows EN. */
	h_enable(c);
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_CC, &v), NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, NVME_CC_EN | 6u << 16 | 4u << 20);

	/* Shutdown: SHST reports complete. */
	ck_assert_uint_eq(h_prop_set(c, NVME_REG_CC, NVME_CC_EN | 6u << 16 |
	    4u << 20 | 1u << NVME_CC_SHN_SHIFT), NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_CSTS, &v), NVME_SC_SUCCESS);
	ck_assert_uint_eq((v >> 2) & 3, 2);

	/* Disable (reset): RDY and SHST clear. */
	ck_assert_uint_eq(h_prop_set(c, NVME_REG_CC, 0), NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_CSTS, &v), NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 0);

	/* Bad I/O queue entry sizes: controller fatal status. */
	ck_assert_uint_eq(h_prop_set(c, NVME_REG_CC, NVME_CC_EN),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_CSTS, &v), NVME_SC_SUCCESS);
	ck_assert(v & NVME_CSTS_CFS);
	ck_assert(!(v & NVME_CSTS_RDY));
	ck_assert_uint_eq(h_prop_set(c, NVME_REG_CC, 0), NVME_SC_SUCCESS);
	h_enable(c);

	/* Wrong sizes and unknown or read-only properties. */
	((uint8_t *)&sqe)[4] = NVMF_FCTYPE_PROPERTY_GET;
	sqe.cdw10 = 0;			/* CAP is 8 bytes */
	sqe.cdw11 = NVME_REG_CAP;
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, NULL, 0, NULL),
	    NVME_SC_INVALID_FIELD);
	sqe.cdw10 = 1;			/* VS is 4 */
	sqe.cdw11 = NVME_REG_VS;
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, NULL, 0, NULL),
	    NVME_SC_INVALID_FIELD);
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_NSSR, &v),
	    NVME_SC_INVALID_FIELD);
	ck_assert_uint_eq(h_prop_set(c, NVME_REG_CSTS, 0),
	    NVME_SC_INVALID_FIELD);
	ck_assert_uint_eq(h_prop_set(c, NVME_REG_CAP, 0),
	    NVME_SC_INVALID_FIELD);
}
END_TEST

/* ---------------------------------------------------------- identify */

START_TEST(identify_controller)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	uint8_t d[4096];
	char nqn[257];

	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le16(d + 78), c->cntlid);		/* CNTLID */
	ck_assert_uint_eq(get_le32(d + 80), NVME_VS(1, 3, 0));	/* VER */
	ck_assert_uint_eq(d[76], 1u << 1 | 1u << 3);		/* CMIC: +ANA */
	ck_assert_uint_eq(d[77], 8);		/* MDTS: 4 KiB << 8 = 1 MiB */
	ck_assert_uint_eq(d[111], 1);				/* CNTRLTYPE */
	ck_assert_uint_ne(get_le16(d + 320), 0);		/* KAS */
	/* CTRATT: 128-bit host ID, traffic based keep alive */
	ck_assert_uint_eq(get_le32(d + 96), 1u << 0 | 1u << 6);
	ck_assert_uint_eq(d[259], NVMFD_AERL);			/* AERL */
	ck_assert_uint_eq(d[512], 0x66);			/* SQES */
	ck_assert_uint_eq(d[513], 0x44);			/* CQES */
	/* MAXCMD */
	ck_assert_uint_eq(get_le16(d + 514), port->max_queue_depth);
	ck_assert_uint_eq(get_le32(d + 516), NVMFD_MAX_NSID);	/* NN */
	ck_assert_uint_eq(d[525], 0);				/* VWC */
	/* SGLS: SGLs supported (the Linux host refuses otherwise), with
	 * offsets for in-capsule data. */
	ck_assert(get_le32(d + 536) & 0x3);
	ck_assert(get_le32(d + 536) & 1u << 20);
	memcpy(nqn, d + 768, 256);
	nqn[256] = '\0';
	ck_assert_str_eq(nqn, NQN);				/* SUBNQN */
	/* IOCCSZ: the SQE and the port's in-capsule data, in 16 bytes. */
	ck_assert_uint_eq(get_le32(d + 1792),
	    (64 + port->inline_data_size) / 16);
	ck_assert_uint_eq(get_le32(d + 1796), 1);		/* IORCSZ */
	ck_assert_uint_eq(get_le16(d + 1800), 0);		/* ICDOFF */
	ck_assert_uint_eq(d[1802], 0);				/* FCATT */
	ck_assert_uint_eq(d[1803], 1);				/* MSDBD */
	/* Serial and model: space padded. */
	ck_assert_mem_eq(d + 4, ss->serial, strlen(ss->serial));
	ck_assert_uint_eq(d[24 + strlen(ss->model)], ' ');
	ck_assert_uint_eq(d[24 + 39], ' ');
}
END_TEST

START_TEST(identify_namespaces)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	uint8_t d[4096], zero[4096];

	memset(zero, 0, sizeof(zero));
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 1, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le64(d + 0), H_NS_SIZE / 512);	/* NSZE */
	ck_assert_uint_eq(get_le64(d + 8), H_NS_SIZE / 512);	/* NCAP */
	ck_assert_uint_eq(d[25], 0);				/* NLBAF */
	ck_assert_uint_eq(d[26], 0);				/* FLBAS */
	ck_assert_mem_eq(d + 104, ns1->nguid, 16);		/* NGUID */
	ck_assert_mem_eq(d + 120, ns1->eui64, 8);		/* EUI64 */
	ck_assert_uint_eq(d[128 + 2], 9);			/* LBADS */
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 3, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le64(d + 0), (1u << 20) / 4096);
	ck_assert_uint_eq(d[128 + 2], 12);
	ck_assert_mem_eq(d + 104, ns3->nguid, 16);
	/* The namespaces' IDs differ from each other. */
	ck_assert(memcmp(ns1->nguid, ns3->nguid, 16) != 0);

	/* An inactive NSID reads as zeroes; 0 and the broadcast do not. */
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 2, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_mem_eq(d, zero, 4096);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 0, 0, d),
	    NVME_SC_INVALID_NS);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 0xffffffff, 0, d),
	    NVME_SC_INVALID_NS);

	/* Active namespace list: ascending, after the given NSID. */
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS_ACTIVE_LIST, 0, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le32(d + 0), 1);
	ck_assert_uint_eq(get_le32(d + 4), 3);
	ck_assert_mem_eq(d + 8, zero, 4096 - 8);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS_ACTIVE_LIST, 1, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le32(d + 0), 3);
	ck_assert_uint_eq(get_le32(d + 4), 0);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS_ACTIVE_LIST, 3, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_mem_eq(d, zero, 4096);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS_ACTIVE_LIST,
	    0xfffffffe, 0, d), NVME_SC_INVALID_NS);
}
END_TEST

/*
 * The NVM command set's namespace fields by their spec offsets: copy limits
 * at 75:74 (MSSRL), 79:76 (MCL) and 80 (MSRC), the I/O hints at 64..73,
 * the atomic units at 34..39, and what lies between them (NABSN, NABO,
 * NABSPF, NOIOB, NVMCAP) left zero.
 */
START_TEST(identify_ns_nvm_fields)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	uint8_t d[4096], zero[32];
	uint32_t icd = port->inline_data_size;

	memset(zero, 0, sizeof(zero));
	/* Hints as a file system with 4 KiB blocks gives them. */
	ns1->pref_write = ns1->pref_discard = 4096;
	ns1->opt_write = 0;
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 1, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le16(d + 74), 2048);	/* MSSRL: 1 MiB / 512 */
	ck_assert_uint_eq(get_le32(d + 76), NVMFD_COPY_MAX_BLOCKS);	/* MCL */
	ck_assert_uint_eq(d[80], NVMFD_COPY_RANGES - 1);	/* MSRC */
	ck_assert_mem_eq(d + 81, zero, 92 - 81);	/* reserved */
	/* NPWG, NPWA, NPDG, NPDA, NOWS: 8 blocks of 512, 0's based. */
	ck_assert_uint_eq(d[24] & 1u << 4, 1u << 4);	/* NSFEAT: OPTPERF */
	for (int o = 64; o <= 72; o += 2)
		ck_assert_uint_eq(get_le16(d + o), 7);
	/* NABSN, NABO, NABSPF, NOIOB: nothing said; NVMCAP: not reported. */
	ck_assert_mem_eq(d + 40, zero, 8);
	ck_assert_uint_eq(get_le16(d + 46), 0);		/* NOIOB */
	ck_assert_mem_eq(d + 48, zero, 16);		/* NVMCAP */
	/* 512-byte blocks: a capsule holds more of them than ACWU counts
	 * (in 4 KiB blocks), so NSABP and NACWU say how many. */
	ck_assert_uint_eq(d[24] & 1u << 1, 1u << 1);	/* NSFEAT: NSABP */
	ck_assert_uint_eq(get_le16(d + 34), 0);		/* NAWUN: as AWUN */
	ck_assert_uint_eq(get_le16(d + 36), 0);		/* NAWUPF */
	ck_assert_uint_eq(get_le16(d + 38), icd / 512 - 1);	/* NACWU */

	/* Without hints, the copy limits stay where they are. */
	ns1->pref_write = ns1->pref_discard = 0;
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 1, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(d[24] & 1u << 4, 0);
	ck_assert_mem_eq(d + 64, zero, 10);
	ck_assert_uint_eq(get_le16(d + 74), 2048);
	ck_assert_uint_eq(get_le32(d + 76), NVMFD_COPY_MAX_BLOCKS);

	/* 4 KiB blocks: ACWU already counts in them; NSABP stays clear. */
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 3, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le16(d + 74), 256);	/* MSSRL: 1 MiB / 4K */
	ck_assert_uint_eq(d[80], NVMFD_COPY_RANGES - 1);
	ck_assert_uint_eq(d[24] & 1u << 1, 0);
	ck_assert_mem_eq(d + 34, zero, 64 - 34);

	/* ACWU (Identify Controller), 0's based in 4 KiB blocks. */
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le16(d + 522), 1);	/* FUSES */
	ck_assert_uint_eq(get_le16(d + 532), icd / 4096 - 1);	/* ACWU */
	ck_assert_uint_eq(get_le16(d + 526), 0);	/* AWUN */
	ck_assert_uint_eq(get_le16(d + 528), 0);	/* AWUPF */

	/* A capsule of less than 4 KiB: ACWU 0, and the 512-byte
	 * namespace counts its own blocks. */
	port->inline_data_size = 2048;
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le16(d + 532), 0);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS, 1, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(d[24] & 1u << 1, 1u << 1);
	ck_assert_uint_eq(get_le16(d + 38), 3);
	port->inline_data_size = icd;
}
END_TEST

START_TEST(identify_descriptors)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	uint8_t d[4096], zero[4096];
	size_t o = 0;

	memset(zero, 0, sizeof(zero));
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS_DESC_LIST, 1, 0, d),
	    NVME_SC_SUCCESS);
	/* Each: NIDT, NIDL (exactly as the spec fixes it), 2 reserved. */
	ck_assert_uint_eq(d[o], NVME_NIDT_EUI64);
	ck_assert_uint_eq(d[o + 1], 8);
	ck_assert_uint_eq(get_le16(d + o + 2), 0);
	ck_assert_mem_eq(d + o + 4, ns1->eui64, 8);
	o += 4 + 8;
	ck_assert_uint_eq(d[o], NVME_NIDT_NGUID);
	ck_assert_uint_eq(d[o + 1], 16);
	ck_assert_mem_eq(d + o + 4, ns1->nguid, 16);
	o += 4 + 16;
	ck_assert_uint_eq(d[o], NVME_NIDT_UUID);
	ck_assert_uint_eq(d[o + 1], 16);
	ck_assert_mem_eq(d + o + 4, ns1->uuid, 16);
	o += 4 + 16;
	ck_assert_uint_eq(d[o], NVME_NIDT_CSI);
	ck_assert_uint_eq(d[o + 1], 1);
	ck_assert_uint_eq(d[o + 4], 0);		/* NVM command set */
	o += 4 + 1;
	/* Then a zero NIDT ends the list. */
	ck_assert_mem_eq(d + o, zero, 4096 - o);

	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS_DESC_LIST, 2, 0, d),
	    NVME_SC_INVALID_NS);
}
END_TEST

START_TEST(identify_other_cns)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	struct nvme_cqe cqe;
	struct nvme_sqe sqe = { .opc = NVME_ADM_IDENTIFY };
	uint8_t d[4096], zero[4096];

	memset(zero, 0, sizeof(zero));
	/* NVM command set specific controller data: VSL (Verify) is one
	 * transfer, MDTS's 1 MiB = 4 KiB << 8; the rest is zero. */
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CS_CTRL, 0, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(d[0], 8);
	ck_assert_mem_eq(d + 1, zero, 4095);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CS_CTRL, 0, 2, d),
	    NVME_SC_INVALID_FIELD);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CS_NS, 1, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CS_NS, 2, 0, d),
	    NVME_SC_INVALID_NS);
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_NS_CS_INDEP, 1, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(d[14], 1);			/* NSTAT: ready */
	/* An unknown CNS. */
	sqe.cdw10 = 0x1f;
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, d, sizeof(d), &cqe),
	    NVME_SC_INVALID_FIELD);
	ck_assert(h_dnr(&cqe));
	/* A buffer smaller than the structure gets only what fits. */
	memset(d, 0xa5, sizeof(d));
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_IDENTIFY;
	sqe.cdw10 = NVME_ID_CNS_CTRL;
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, d, 1024, &cqe),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le16(d + 78), c->cntlid);
	ck_assert_uint_eq(d[1024], 0xa5);
}
END_TEST

/* --------------------------------------------------------- log pages */

START_TEST(log_pages)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	uint8_t d[4096], zero[4096];
	char fr[9];

	memset(zero, 0, sizeof(zero));
	/* Error information: 64 entries of 64 bytes, none used yet. */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_ERROR, 0, 4096, false, d),
	    NVME_SC_SUCCESS);
	ck_assert_mem_eq(d, zero, 4096);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_ERROR, 4096, 64, false, d),
	    NVME_SC_INVALID_FIELD);
	/* That failure is now its first entry (see test_qpair for I/O). */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_ERROR, 0, 128, false, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le64(d), 1);		/* error count */
	ck_assert_uint_eq(get_le16(d + 8), 0);		/* SQID */
	ck_assert_uint_eq((get_le16(d + 12) >> 1) & 0x7ff,
	    NVME_SC_INVALID_FIELD);
	ck_assert_mem_eq(d + 64, zero, 64);

	/* SMART / health: 512 bytes, any dword offset. */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_SMART, 0, 512, false, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_ne(get_le16(d + 1), 0);		/* temperature */
	ck_assert_uint_eq(d[3], 100);			/* available spare */
	ck_assert_uint_eq(d[4], 10);			/* its threshold */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_SMART, 4, 8, false, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(d[0], 10);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_SMART, 508, 4, false, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_SMART, 512, 4, false, d),
	    NVME_SC_INVALID_FIELD);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_SMART, 2, 4, false, d),
	    NVME_SC_INVALID_FIELD);		/* not a dword offset */

	/* Firmware slots: slot 1 active, holding our version. */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_FW_SLOT, 0, 512, false, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(d[0], 1);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_FW_SLOT, 8, 8, false, d),
	    NVME_SC_SUCCESS);
	snprintf(fr, sizeof(fr), "%-8s", PACKAGE_VERSION);
	ck_assert_mem_eq(d, fr, 8);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_FW_SLOT, 512, 4, false, d),
	    NVME_SC_INVALID_FIELD);

	/* Changed namespaces: 4 KiB, empty. */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_CHANGED_NS, 0, 4096, false,
	    d), NVME_SC_SUCCESS);
	ck_assert_mem_eq(d, zero, 4096);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_CHANGED_NS, 4096, 4, false,
	    d), NVME_SC_INVALID_FIELD);

	/* Commands supported and effects. */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_CMD_EFFECTS, 0, 4096, false,
	    d), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le32(d + 4 * NVME_ADM_IDENTIFY), 1);
	ck_assert_uint_eq(get_le32(d + 4 * NVME_ADM_KEEP_ALIVE), 1);
	ck_assert_uint_eq(get_le32(d + 4 * 0x80), 0);	/* Format: no */
	ck_assert_uint_eq(get_le32(d + 1024 + 4 * NVME_CMD_READ), 1);
	ck_assert_uint_eq(get_le32(d + 1024 + 4 * NVME_CMD_WRITE), 3);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_CMD_EFFECTS, 1024 + 4, 4,
	    false, d), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le32(d), 3);	/* Write, at an offset */

	/* Unknown pages; the discovery log is not an I/O controller's. */
	ck_assert_uint_eq(h_get_log(c, 0x7f, 0, 512, false, d),
	    NVME_SC_INVALID_LOG_PAGE);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_DISCOVERY, 0, 1024, false, d),
	    NVME_SC_INVALID_LOG_PAGE);
}
END_TEST

START_TEST(log_page_length_checks)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	struct nvme_sqe sqe = { .opc = NVME_ADM_GET_LOG_PAGE };
	uint8_t d[4096];

	/* NUMD larger than the buffer the SGL describes. */
	sqe.cdw10 = NVME_LOG_SMART | (512 / 4 - 1) << 16;
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, d, 256, NULL),
	    NVME_SC_INVALID_FIELD);
	/* NUMDU: beyond MDTS. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_ADM_GET_LOG_PAGE;
	sqe.cdw10 = NVME_LOG_SMART | 0xffffu << 16;
	sqe.cdw11 = 0xffff;
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, d, 4096, NULL),
	    NVME_SC_INVALID_FIELD);
	/* The upper half of the offset counts. */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_SMART, 1ull << 32, 4, false,
	    d), NVME_SC_INVALID_FIELD);
}
END_TEST

/* ---------------------------------------------------------- features */

START_TEST(features)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	struct nvme_sqe sqe = { .opc = NVME_ADM_SET_FEATURES };
	uint8_t d[4096];
	uint32_t v;

	/* Number of queues: 0's based, capped at what the subsystem has. */
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_NUM_QUEUES, 0, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, (ss->max_io_queues - 1) * 0x10001u);
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_NUM_QUEUES, 0xfffeu | 0xfffeu
	    << 16, &v), NVME_SC_SUCCESS);
	ck_assert_uint_eq(v & 0xffff, ss->max_io_queues - 1);
	ck_assert_uint_eq(v >> 16, ss->max_io_queues - 1);
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_NUM_QUEUES, 3 | 7 << 16, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 3 | 3 << 16);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_NUM_QUEUES, 0, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 3 | 3 << 16);
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_NUM_QUEUES, 0xffff, &v),
	    NVME_SC_INVALID_FIELD);
	/* The grant limits the I/O queues: four of them, QIDs 1..4. */
	h_ioq(c, NQN, H_HOSTNQN, 4, 31, 0);
	{
		struct nvme_cqe cqe = h_connect(ic_conn(), 5, 31, NQN,
		    H_HOSTNQN, c->cntlid, 0);

		ck_assert_uint_eq(h_sc(&cqe), NVME_SC_CONNECT_INVALID_PARAM);
	}
	/* ...and cannot change once an I/O queue exists. */
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_NUM_QUEUES, 1 | 1 << 16,
	    &v), NVME_SC_CMD_SEQ_ERROR);

	/* Keep alive timeout. */
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_KATO, 120000, NULL),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_KATO, 0, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 120000);
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_KATO, 0, NULL),
	    NVME_SC_SUCCESS);

	/* Asynchronous event configuration: only the namespace attribute
	 * and ANA change notices are supported, the rest is dropped. */
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_ASYNC_EVENT, 0xffffffff,
	    NULL), NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_ASYNC_EVENT, 0, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, NVME_AEN_CFG_NS_ATTR | NVME_AEN_CFG_ANA_CHANGE);

	/* Volatile write cache: RAM has none, and Identify says so; Set and
	 * Get Features agree with it. */
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(d[525] & 1, 0);
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_VOLATILE_WC, 1, NULL),
	    NVME_SC_INVALID_FIELD);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_VOLATILE_WC, 0, &v),
	    NVME_SC_INVALID_FIELD);
	/* A namespace with a cache (as a file's open sets it): on by
	 * default, and the host may turn it off. */
	ns1->vwc = true;
	ck_assert_uint_eq(h_identify(c, NVME_ID_CNS_CTRL, 0, 0, d),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(d[525] & 1, 1);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_VOLATILE_WC, 0, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 1);
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_VOLATILE_WC, 1, NULL),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_VOLATILE_WC, 0, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 1);
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_VOLATILE_WC, 0, NULL),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_VOLATILE_WC, 0, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 0);

	/* Stored-only features keep their value. */
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_TEMP_THRESH, 0, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 0x157);
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_ARBITRATION, 0x3, NULL),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_ARBITRATION, 0, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 0x3);

	/* SEL 3: capabilities; 4 and up do not exist. */
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_KATO, 3, &v),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(v, 1u << 2);
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_KATO, 4, &v),
	    NVME_SC_INVALID_FIELD);
	/* Unknown features, and saving. */
	ck_assert_uint_eq(h_get_feat(c, 0x7d, 0, &v), NVME_SC_INVALID_FIELD);
	ck_assert_uint_eq(h_set_feat(c, 0x7d, 0, &v), NVME_SC_INVALID_FIELD);
	sqe.cdw10 = NVME_FEAT_KATO | 1u << 31;
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, NULL, 0, NULL),
	    NVME_SC_FEATURE_NOT_SAVEABLE);
}
END_TEST

/* ------------------------------------------------------------- events */

START_TEST(aer_namespace_change)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	struct nvme_cqe cqe;
	uint8_t d[4096], zero[4096];
	uint16_t aer;

	memset(zero, 0, sizeof(zero));
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_ASYNC_EVENT,
	    NVME_AEN_CFG_NS_ATTR, NULL), NVME_SC_SUCCESS);
	aer = h_submit_aer(c);
	/* Held: nothing comes back, other commands are answered. */
	ck_assert(!h_readable(c, 50));
	ck_assert_uint_eq(h_get_feat(c, NVME_FEAT_KATO, 0, NULL),
	    NVME_SC_SUCCESS);

	ctrl_notify_ns_changed(ss, 1);
	h_wait(c, aer, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	ck_assert_uint_eq(cqe.dw0, NVME_AER_NS_CHANGED);

	/* A read that fails does not lose the list. */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_CHANGED_NS, 4096, 4, false,
	    d), NVME_SC_INVALID_FIELD);
	/* The log lists the namespace once, then is empty. */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_CHANGED_NS, 0, 4096, false,
	    d), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le32(d), 1);
	ck_assert_mem_eq(d + 4, zero, 4092);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_CHANGED_NS, 0, 4096, false,
	    d), NVME_SC_SUCCESS);
	ck_assert_mem_eq(d, zero, 4096);

	/* Duplicates collapse; several namespaces are listed in turn. */
	ctrl_notify_ns_changed(ss, 3);
	ctrl_notify_ns_changed(ss, 1);
	ctrl_notify_ns_changed(ss, 3);
	aer = h_submit_aer(c);	/* the event waited for it */
	h_wait(c, aer, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(cqe.dw0, NVME_AER_NS_CHANGED);
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_CHANGED_NS, 0, 4096, false,
	    d), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le32(d), 3);
	ck_assert_uint_eq(get_le32(d + 4), 1);
	ck_assert_uint_eq(get_le32(d + 8), 0);
}
END_TEST

START_TEST(aer_masked_until_log_read)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	struct nvme_cqe cqe;
	uint8_t d[4096];
	uint16_t a1, a2;

	h_set_feat(c, NVME_FEAT_ASYNC_EVENT, NVME_AEN_CFG_NS_ATTR, NULL);
	a1 = h_submit_aer(c);
	a2 = h_submit_aer(c);
	ctrl_notify_ns_changed(ss, 1);
	h_wait(c, a2, &cqe, NULL, 0, NULL, 0);	/* one of them completes */
	ck_assert_uint_eq(cqe.dw0, NVME_AER_NS_CHANGED);
	/* Until the host reads the log, the same event is not repeated. */
	ctrl_notify_ns_changed(ss, 3);
	ck_assert(!h_readable(c, 50));
	/* Reading with RAE keeps it masked. */
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_CHANGED_NS, 0, 4096, true,
	    d), NVME_SC_SUCCESS);
	ctrl_notify_ns_changed(ss, 3);
	ck_assert(!h_readable(c, 50));
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_CHANGED_NS, 0, 4096, false,
	    d), NVME_SC_SUCCESS);
	ctrl_notify_ns_changed(ss, 1);
	h_wait(c, a1, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(cqe.dw0, NVME_AER_NS_CHANGED);
}
END_TEST

START_TEST(aer_not_enabled)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	uint8_t d[4096];

	/* Without the configuration bit: no event, but the log records. */
	h_submit_aer(c);
	ctrl_notify_ns_changed(ss, 3);
	ck_assert(!h_readable(c, 50));
	ck_assert_uint_eq(h_get_log(c, NVME_LOG_CHANGED_NS, 0, 4096, false,
	    d), NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le32(d), 3);
}
END_TEST

START_TEST(aer_limit)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	struct nvme_cqe cqe;
	uint16_t cid;

	/* AERL is 0's based: NVMFD_AERL + 1 may be outstanding. */
	for (int i = 0; i <= NVMFD_AERL; i++)
		h_submit_aer(c);
	ck_assert(!h_readable(c, 20));
	cid = h_submit_aer(c);
	h_wait(c, cid, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_AER_LIMIT);
	ck_assert_uint_eq(h_sc(&cqe) >> 8, 1);		/* SCT */
	ck_assert_uint_eq(h_sc(&cqe) & 0xff, 5);	/* SC */
	ck_assert(h_dnr(&cqe));
	/* Closing the queue answers the held ones; the controller goes
	 * (h_stop checks that). */
}
END_TEST

/* --------------------------------------------------------- keep alive */

START_TEST(keep_alive)
{
	struct h_conn *c = h_open(port, "127.0.0.1");
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;

	h_icreq(c, 0, 0, NULL);
	cqe = h_connect(c, 0, 31, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC, 200);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	h_enable(c);
	/* Keep Alive every 50 ms holds the 200 ms timeout off... */
	for (int i = 0; i < 10; i++) {
		memset(&sqe, 0, sizeof(sqe));
		sqe.opc = NVME_ADM_KEEP_ALIVE;
		ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, NULL, 0, &cqe),
		    NVME_SC_SUCCESS);
		h_pump_for(50);
	}
	/* ...and without it the controller goes, with its queue. */
	ck_assert(h_closed(c, H_TIMEOUT_MS));
}
END_TEST

START_TEST(kato_feature_rearms)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);

	/* KATO 0 at connect: no timer; setting one starts it. */
	h_pump_for(100);
	ck_assert_uint_eq(h_set_feat(c, NVME_FEAT_KATO, 100, NULL),
	    NVME_SC_SUCCESS);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
}
END_TEST

/* The longest KATO a host can ask for (2^32 - 1 ms, 49 days), plus the
 * timer's granule, keeps the host connected. */
START_TEST(kato_longest)
{
	struct h_conn *c = h_open(port, "127.0.0.1");
	struct nvme_cqe cqe;

	h_icreq(c, 0, 0, NULL);
	cqe = h_connect(c, 0, 31, NQN, H_HOSTNQN, NVMF_CNTLID_DYNAMIC,
	    0xffffffffu);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	h_enable(c);
	ck_assert(!h_closed(c, 1500));
}
END_TEST

START_TEST(abort_and_unknown)
{
	struct h_conn *c = h_admin(port, NQN, H_HOSTNQN, 0);
	struct nvme_sqe sqe = { .opc = NVME_ADM_ABORT };
	struct nvme_cqe cqe;

	/* Abort never finds anything: DW0 bit 0 says "not aborted". */
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, NULL, 0, &cqe),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(cqe.dw0 & 1, 1);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = 0x80;		/* Format NVM */
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, NULL, 0, &cqe),
	    NVME_SC_INVALID_OPCODE);
	ck_assert(h_dnr(&cqe));
}
END_TEST

static Suite *
controller_suite(void)
{
	Suite *s = suite_create("controller");
	TCase *tc = tcase_create("controller");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, connect_admin);
	tcase_add_test(tc, connect_errors);
	tcase_add_test(tc, connect_io);
	tcase_add_test(tc, commands_before_connect_or_enable);
	tcase_add_test(tc, properties);
	tcase_add_test(tc, identify_controller);
	tcase_add_test(tc, identify_namespaces);
	tcase_add_test(tc, identify_ns_nvm_fields);
	tcase_add_test(tc, identify_descriptors);
	tcase_add_test(tc, identify_other_cns);
	tcase_add_test(tc, log_pages);
	tcase_add_test(tc, log_page_length_checks);
	tcase_add_test(tc, features);
	tcase_add_test(tc, aer_namespace_change);
	tcase_add_test(tc, aer_masked_until_log_read);
	tcase_add_test(tc, aer_not_enabled);
	tcase_add_test(tc, aer_limit);
	tcase_add_test(tc, keep_alive);
	tcase_add_test(tc, kato_feature_rearms);
	tcase_add_test(tc, kato_longest);
	tcase_add_test(tc, abort_and_unknown);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(controller_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
