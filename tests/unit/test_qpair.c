/*
 * NVMe/TCP queue pairs end to end over a socketpair: connection setup,
 * in-capsule and R2T writes, C2HData reads, digests, fatal errors, partial
 * and pipelined delivery.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NQN	NVMFD_DEFAULT_NQN

static struct port *port;
static struct namespace *ns1;

static void
setup(void)
{
	struct config *cf = h_config();

	h_start(cf);
	port = port_find(cf, 1);
	ns1 = namespace_find(subsystem_find(cf, NQN), 1);
	ck_assert_ptr_nonnull(port);
	ck_assert_ptr_nonnull(ns1);
}

static void
teardown(void)
{
	h_stop();
}

static void
pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

/* An admin queue and I/O queue 1 of one controller. */
static struct h_conn *
io_queue(uint8_t digests, struct h_conn **adminp)
{
	struct h_conn *a = h_admin(port, NQN, H_HOSTNQN, digests);

	if (adminp != NULL)
		*adminp = a;
	return (h_ioq(a, NQN, H_HOSTNQN, 1, 127, digests));
}

/* ------------------------------------------------------- connection setup */

START_TEST(ic_exchange)
{
	struct nvme_tcp_ic_pdu r;
	struct h_conn *c;

	c = h_open(port, "127.0.0.1");
	h_icreq(c, NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST, 0, &r);
	ck_assert_uint_eq(r.hdr.type, NVME_TCP_ICRESP);
	ck_assert_uint_eq(r.hdr.flags, 0);
	ck_assert_uint_eq(r.hdr.hlen, 128);
	ck_assert_uint_eq(r.hdr.pdo, 0);
	ck_assert_uint_eq(r.hdr.plen, 128);
	ck_assert_uint_eq(r.pfv, NVME_TCP_PFV_1_0);
	ck_assert_uint_eq(r.pda, 0);
	ck_assert_uint_eq(r.digest, NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST);
	ck_assert_uint_eq(r.maxr2t_or_maxh2cdata, port->maxh2cdata);

	/* The host's choice is echoed... */
	c = h_open(port, "127.0.0.1");
	h_icreq(c, 0, 0, &r);
	ck_assert_uint_eq(r.digest, 0);
	c = h_open(port, "127.0.0.1");
	h_icreq(c, NVME_TCP_IC_DDGST, 5, &r);
	ck_assert_uint_eq(r.digest, NVME_TCP_IC_DDGST);

	/* ...as far as the port allows it. */
	port->header_digest = false;
	c = h_open(port, "127.0.0.1");
	h_icreq(c, NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST, 0, &r);
	ck_assert_uint_eq(r.digest, NVME_TCP_IC_DDGST);
	port->data_digest = false;
	c = h_open(port, "127.0.0.1");
	h_icreq(c, NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST, 0, &r);
	ck_assert_uint_eq(r.digest, 0);

	/* MAXH2CDATA comes from the port. */
	port->maxh2cdata = 8192;
	c = h_open(port, "127.0.0.1");
	h_icreq(c, 0, 0, &r);
	ck_assert_uint_eq(r.maxr2t_or_maxh2cdata, 8192);
}
END_TEST

START_TEST(icreq_bad_pfv)
{
	struct h_conn *c = h_open(port, "127.0.0.1");
	struct nvme_tcp_ic_pdu ic;
	const struct nvme_tcp_term_pdu *t;
	uint8_t *p;
	size_t len;

	memset(&ic, 0, sizeof(ic));
	ic.hdr.type = NVME_TCP_ICREQ;
	ic.hdr.hlen = ic.hdr.plen = sizeof(ic);
	ic.pfv = 1;
	h_send(c, &ic, sizeof(ic));
	p = h_recv_pdu(c, &len);
	t = (const void *)p;
	ck_assert_uint_eq(t->hdr.type, NVME_TCP_C2H_TERM);
	ck_assert_uint_eq(t->fes, NVME_TCP_FES_INVALID_HEADER);
	ck_assert_uint_eq(t->fei, offsetof(struct nvme_tcp_ic_pdu, pfv));
	/* The offending PDU comes back whole: 128 bytes fit. */
	ck_assert_uint_eq(len, 24 + 128);
	ck_assert_mem_eq(p + 24, &ic, 128);
	free(p);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
}
END_TEST

START_TEST(malformed_pdus)
{
	struct h_conn *c;
	uint8_t buf[256 + 8192 + 64];
	struct nvme_tcp_cmd_pdu *cmd = (struct nvme_tcp_cmd_pdu *)buf;
	const struct nvme_tcp_term_pdu *t;
	uint8_t *p;
	size_t len;

	/* Wrong HLEN for a capsule: FEI 2, and the header comes back as far
	 * as the (bad) HLEN says. */
	c = h_open(port, "127.0.0.1");
	h_icreq(c, 0, 0, NULL);
	memset(buf, 0, sizeof(buf));
	cmd->hdr.type = NVME_TCP_CMD;
	cmd->hdr.hlen = 71;
	cmd->hdr.plen = 72;
	cmd->sqe.opc = 0x42;
	h_send(c, buf, 72);
	p = h_recv_pdu(c, &len);
	t = (const void *)p;
	ck_assert_uint_eq(t->hdr.type, NVME_TCP_C2H_TERM);
	ck_assert_uint_eq(t->fes, NVME_TCP_FES_INVALID_HEADER);
	ck_assert_uint_eq(t->fei, 2);
	ck_assert_uint_eq(len, 24 + 71);
	ck_assert_mem_eq(p + 24, buf, 71);
	free(p);
	ck_assert(h_closed(c, H_TIMEOUT_MS));

	/* A PDU only a controller sends. */
	c = h_open(port, "127.0.0.1");
	h_icreq(c, 0, 0, NULL);
	memset(buf, 0, 24);
	buf[0] = NVME_TCP_RSP;
	buf[2] = 24;
	buf[4] = 24;
	h_send(c, buf, 24);
	h_expect_term(c, NVME_TCP_FES_INVALID_HEADER, 0);

	/* A second ICReq. */
	c = h_open(port, "127.0.0.1");
	h_icreq(c, 0, 0, NULL);
	memset(buf, 0, 128);
	buf[0] = NVME_TCP_ICREQ;
	buf[2] = 128;
	buf[4] = 128;
	h_send(c, buf, 128);
	h_expect_term(c, NVME_TCP_FES_PDU_SEQ_ERROR, 0);

	/* A capsule before the ICReq. */
	c = h_open(port, "127.0.0.1");
	memset(buf, 0, 72);
	cmd->hdr.type = NVME_TCP_CMD;
	cmd->hdr.hlen = 72;
	cmd->hdr.plen = 72;
	h_send(c, buf, 72);
	h_expect_term(c, NVME_TCP_FES_PDU_SEQ_ERROR, 0);

	/* Header digest flag the host did not negotiate. */
	c = h_open(port, "127.0.0.1");
	h_icreq(c, 0, 0, NULL);
	memset(buf, 0, 76);
	cmd->hdr.type = NVME_TCP_CMD;
	cmd->hdr.flags = NVME_TCP_F_HDGST;
	cmd->hdr.hlen = 72;
	cmd->hdr.plen = 76;
	h_send(c, buf, 76);
	h_expect_term(c, NVME_TCP_FES_INVALID_HEADER, 1);

	/* More in-capsule data than the admin queue takes (8 KiB): the
	 * header alone is enough to refuse it. */
	c = h_open(port, "127.0.0.1");
	h_icreq(c, 0, 0, NULL);
	memset(buf, 0, 72);
	cmd->hdr.type = NVME_TCP_CMD;
	cmd->hdr.hlen = 72;
	cmd->hdr.pdo = 72;
	cmd->hdr.plen = 72 + 8192 + 4;
	h_send(c, buf, 72);
	h_expect_term(c, NVME_TCP_FES_DATA_LIMIT, 0);

	/* A bad header digest. */
	c = h_open(port, "127.0.0.1");
	h_icreq(c, NVME_TCP_IC_HDGST, 0, NULL);
	memset(buf, 0, 76);
	cmd->hdr.type = NVME_TCP_CMD;
	cmd->hdr.flags = NVME_TCP_F_HDGST;
	cmd->hdr.hlen = 72;
	cmd->hdr.plen = 76;
	put_le32(buf + 72, crc32c(buf, 72) ^ 1);
	h_send(c, buf, 76);
	h_expect_term(c, NVME_TCP_FES_HDGST_ERROR, 0);
}
END_TEST

START_TEST(host_terminates)
{
	struct h_conn *a = h_admin(port, NQN, H_HOSTNQN, 0);
	uint8_t term[24 + 8];
	size_t n;

	/* The host gives up: we close without answering. */
	n = tcp_pdu_build_term(term, NVME_TCP_H2C_TERM,
	    NVME_TCP_FES_INVALID_HEADER, 0, NULL, 0);
	h_send(a, term, n);
	ck_assert(h_closed(a, H_TIMEOUT_MS));
}
END_TEST

/* ------------------------------------------------------------- data path */

START_TEST(write_in_capsule_read_c2h)
{
	struct h_conn *c = io_queue(0, NULL);
	uint8_t out[4096], in[4096];

	pattern(out, sizeof(out), 1);
	ck_assert_uint_eq(h_write(c, 1, 16, 8, out, sizeof(out)),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(c->nr2t, 0);		/* it went in the capsule */
	ck_assert_mem_eq(ns1->mem + 16 * 512, out, sizeof(out));

	memset(in, 0, sizeof(in));
	ck_assert_uint_eq(h_read(c, 1, 16, 8, in, sizeof(in)), NVME_SC_SUCCESS);
	ck_assert_mem_eq(in, out, sizeof(in));
	/* One C2HData, then a CapsuleResp (no SUCCESS shortcut). */
	ck_assert_uint_eq(c->nc2h, 1);
	ck_assert(!c->last_c2h_success);
	ck_assert_uint_eq(c->last_c2h_pdo, 24);

	/* The I/O queue takes up to inline_data_size in the capsule. */
	{
		uint8_t *big = malloc(16384);

		pattern(big, 16384, 2);
		ck_assert_uint_eq(h_write(c, 1, 100, 32, big, 16384),
		    NVME_SC_SUCCESS);
		ck_assert_uint_eq(c->nr2t, 0);
		ck_assert_mem_eq(ns1->mem + 100 * 512, big, 16384);
		free(big);
	}
}
END_TEST

START_TEST(write_r2t_split)
{
	struct h_conn *c = io_queue(0, NULL);
	const uint32_t len = 64 * 1024;
	uint8_t *out = malloc(len), *in = malloc(len);

	pattern(out, len, 3);
	c->icd_max = 0;			/* always ask for an R2T */
	c->h2c_chunk = 4096;
	ck_assert_uint_eq(h_write(c, 1, 256, len / 512, out, len),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(c->nr2t, 1);
	ck_assert_uint_eq(c->last_r2t.r2to, 0);
	ck_assert_uint_eq(c->last_r2t.r2tl, len);
	ck_assert_uint_eq(c->last_r2t.hdr.hlen, 24);
	ck_assert_uint_eq(c->nh2c, len / 4096);
	ck_assert_mem_eq(ns1->mem + 256 * 512, out, len);

	/* Odd-sized pieces that do not line up with anything. */
	pattern(out, len, 4);
	c->h2c_chunk = 1000;
	ck_assert_uint_eq(h_write(c, 1, 256, len / 512, out, len),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(c->nh2c, len / 4096 + (len + 999) / 1000);
	ck_assert_uint_eq(h_read(c, 1, 256, len / 512, in, len),
	    NVME_SC_SUCCESS);
	ck_assert_mem_eq(in, out, len);
	free(out);
	free(in);
}
END_TEST

/* The largest transfer (MDTS, 1 MiB): H2CData at MAXH2CDATA each. */
START_TEST(mdts_transfer)
{
	struct h_conn *c = io_queue(NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST,
	    NULL);
	const uint32_t len = 1u << 20;
	uint8_t *out = malloc(len), *in = malloc(len);

	pattern(out, len, 5);
	ck_assert_uint_eq(h_write(c, 1, 0, len / 512, out, len),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(c->nh2c, len / port->maxh2cdata);
	ck_assert_uint_eq(h_read(c, 1, 0, len / 512, in, len),
	    NVME_SC_SUCCESS);
	ck_assert_mem_eq(in, out, len);
	/* One more block is beyond MDTS. */
	ck_assert_uint_eq(h_read(c, 1, 0, len / 512 + 1, in, len + 512),
	    NVME_SC_INVALID_FIELD);
	free(out);
	free(in);
}
END_TEST

START_TEST(digests_on_every_pdu)
{
	const uint8_t both = NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST;
	struct h_conn *a, *c;
	uint8_t out[8192], in[8192], id[4096];

	c = io_queue(both, &a);
	ck_assert(a->hdgst && a->ddgst && c->hdgst && c->ddgst);
	/* Admin: CapsuleResp and C2HData (Identify). */
	ck_assert_uint_eq(h_identify(a, NVME_ID_CNS_CTRL, 0, 0, id),
	    NVME_SC_SUCCESS);
	ck_assert_uint_gt(a->hdgst_checked, 0);
	ck_assert_uint_gt(a->ddgst_checked, 0);

	/* I/O: in-capsule write, R2T write, read. */
	pattern(out, sizeof(out), 6);
	ck_assert_uint_eq(h_write(c, 1, 8, 16, out, sizeof(out)),
	    NVME_SC_SUCCESS);
	c->icd_max = 0;
	c->h2c_chunk = 3000;
	ck_assert_uint_eq(h_write(c, 1, 40, 16, out, sizeof(out)),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(c->nr2t, 1);
	ck_assert_uint_eq(h_read(c, 1, 40, 16, in, sizeof(in)),
	    NVME_SC_SUCCESS);
	ck_assert_mem_eq(in, out, sizeof(in));
	/* Connect, two writes, a read: every CapsuleResp and the R2T. */
	ck_assert_uint_ge(c->hdgst_checked, 6);
	ck_assert_uint_eq(c->ddgst_checked, 1);
	ck_assert_uint_eq(c->last_c2h_pdo, 28);
	ck_assert_mem_eq(ns1->mem + 8 * 512, out, sizeof(out));

	/* Header digest only. */
	c = h_ioq(a, NQN, H_HOSTNQN, 2, 31, NVME_TCP_IC_HDGST);
	ck_assert(c->hdgst && !c->ddgst);
	ck_assert_uint_eq(h_read(c, 1, 40, 16, in, sizeof(in)),
	    NVME_SC_SUCCESS);
	ck_assert_mem_eq(in, out, sizeof(in));
	ck_assert_uint_eq(c->ddgst_checked, 0);
}
END_TEST

START_TEST(c2h_alignment)
{
	struct h_conn *a = h_admin(port, NQN, H_HOSTNQN, 0), *c;
	struct nvme_cqe cqe;
	uint8_t in[1024];

	/* HPDA 3: C2HData payloads on 16-byte boundaries. */
	c = h_open(port, "127.0.0.1");
	h_icreq(c, NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST, 3, NULL);
	cqe = h_connect(c, 1, 31, NQN, H_HOSTNQN, a->cntlid, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_read(c, 1, 0, 2, in, sizeof(in)), NVME_SC_SUCCESS);
	ck_assert_uint_eq(c->last_c2h_pdo, 32);

	/* HPDA 31: 128 bytes. */
	c = h_open(port, "127.0.0.1");
	h_icreq(c, 0, 31, NULL);
	cqe = h_connect(c, 2, 31, NQN, H_HOSTNQN, a->cntlid, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_read(c, 1, 0, 2, in, sizeof(in)), NVME_SC_SUCCESS);
	ck_assert_uint_eq(c->last_c2h_pdo, 128);
}
END_TEST

START_TEST(data_digest_errors)
{
	const uint8_t both = NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST;
	struct h_conn *c = io_queue(both, NULL);
	uint8_t out[2048], buf[256 + 2048];
	struct nvme_sqe sqe = { .opc = NVME_CMD_WRITE, .nsid = 1 };
	struct nvme_tcp_r2t_pdu *r2t;
	struct nvme_cqe cqe;
	uint16_t cid;
	size_t n;

	/* In-capsule data with a bad digest: the command fails, the
	 * connection stays. */
	pattern(out, sizeof(out), 7);
	memset(ns1->mem, 0, 4096);
	sqe.cdw12 = 3;
	h_sgl_icd(&sqe, sizeof(out));
	n = h_build_capsule(c, buf, &sqe, out, sizeof(out));
	buf[n - 1] ^= 0x80;
	h_send(c, buf, n);
	h_wait(c, sqe.cid, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_DATA_XFER_ERROR);

	/* The same for H2CData. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_CMD_WRITE;
	sqe.nsid = 1;
	sqe.cdw12 = 3;
	h_sgl_xport(&sqe, sizeof(out));
	cid = h_submit(c, &sqe, NULL, 0);
	r2t = (struct nvme_tcp_r2t_pdu *)h_recv_pdu(c, NULL);
	ck_assert_uint_eq(r2t->hdr.type, NVME_TCP_R2T);
	ck_assert_uint_eq(r2t->cccid, cid);
	n = h_build_h2c(c, buf, cid, r2t->ttag, out, 0, sizeof(out), true);
	buf[n - 1] ^= 0x01;
	h_send(c, buf, n);
	free(r2t);
	h_wait(c, cid, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_DATA_XFER_ERROR);

	/* Still usable afterwards. */
	ck_assert_uint_eq(h_write(c, 1, 0, 4, out, sizeof(out)),
	    NVME_SC_SUCCESS);
	ck_assert_mem_eq(ns1->mem, out, sizeof(out));
}
END_TEST

/* Start a write that the controller answers with an R2T; returns the R2T. */
static struct nvme_tcp_r2t_pdu
start_r2t_write(struct h_conn *c, uint32_t len, uint16_t *cid)
{
	struct nvme_sqe sqe = { .opc = NVME_CMD_WRITE, .nsid = 1 };
	struct nvme_tcp_r2t_pdu r2t, *p;

	sqe.cdw12 = len / 512 - 1;
	h_sgl_xport(&sqe, len);
	*cid = h_submit(c, &sqe, NULL, 0);
	p = (struct nvme_tcp_r2t_pdu *)h_recv_pdu(c, NULL);
	ck_assert_uint_eq(p->hdr.type, NVME_TCP_R2T);
	ck_assert_uint_eq(p->cccid, *cid);
	ck_assert_uint_eq(p->r2to, 0);
	ck_assert_uint_eq(p->r2tl, len);
	r2t = *p;
	free(p);
	return (r2t);
}

START_TEST(h2c_errors)
{
	struct h_conn *a, *c;
	struct nvme_tcp_r2t_pdu r2t;
	uint8_t data[4096];
	uint16_t cid;

	memset(data, 0x5a, sizeof(data));
	/* A transfer tag beyond the queue. */
	c = io_queue(0, &a);
	h_send_h2c(c, 1, 0xffff, data, 0, 512, true);
	h_expect_term(c, NVME_TCP_FES_INVALID_HEADER,
	    offsetof(struct nvme_tcp_data_pdu, ttag));

	/* A valid tag with no R2T outstanding. */
	c = h_ioq(a, NQN, H_HOSTNQN, 2, 127, 0);
	h_send_h2c(c, 1, 0, data, 0, 512, true);
	h_expect_term(c, NVME_TCP_FES_PDU_SEQ_ERROR, 0);

	/* The wrong command for the tag. */
	c = h_ioq(a, NQN, H_HOSTNQN, 3, 127, 0);
	r2t = start_r2t_write(c, 4096, &cid);
	h_send_h2c(c, cid + 1, r2t.ttag, data, 0, 512, false);
	h_expect_term(c, NVME_TCP_FES_INVALID_HEADER,
	    offsetof(struct nvme_tcp_data_pdu, cccid));

	/* Data out of order. */
	c = h_ioq(a, NQN, H_HOSTNQN, 4, 127, 0);
	r2t = start_r2t_write(c, 4096, &cid);
	h_send_h2c(c, cid, r2t.ttag, data, 512, 512, false);
	h_expect_term(c, NVME_TCP_FES_DATA_OUT_OF_RANGE, 0);

	/* More data than the R2T asked for. */
	c = h_ioq(a, NQN, H_HOSTNQN, 5, 127, 0);
	r2t = start_r2t_write(c, 2048, &cid);
	h_send_h2c(c, cid, r2t.ttag, data, 0, 2560, true);
	h_expect_term(c, NVME_TCP_FES_DATA_OUT_OF_RANGE, 0);

	/* The admin queue is not affected by any of it. */
	ck_assert_uint_eq(h_set_feat(a, NVME_FEAT_KATO, 0, NULL),
	    NVME_SC_SUCCESS);
}
END_TEST

START_TEST(partial_delivery)
{
	struct h_conn *c = io_queue(NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST,
	    NULL);
	struct nvme_sqe sqe = { .opc = NVME_CMD_WRITE, .nsid = 1 };
	struct nvme_tcp_r2t_pdu r2t;
	struct nvme_cqe cqe;
	uint8_t out[4096], in[4096], *buf = malloc(256 + 8192);
	uint16_t cid;
	size_t n, off;

	/* A capsule with data, one byte per loop turn. */
	pattern(out, sizeof(out), 8);
	sqe.cdw10 = 500;
	sqe.cdw12 = 7;
	h_sgl_icd(&sqe, sizeof(out));
	n = h_build_capsule(c, buf, &sqe, out, sizeof(out));
	for (size_t i = 0; i < n; i++) {
		/* Nothing comes back until the capsule is whole. */
		if (i % 512 == 0 || i + 1 == n)
			ck_assert(!h_readable(c, 0));
		h_send(c, buf + i, 1);
	}
	h_wait(c, sqe.cid, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	ck_assert_mem_eq(ns1->mem + 500 * 512, out, sizeof(out));

	/* H2CData in 7-byte fragments: header, payload and digest split
	 * everywhere. */
	pattern(out, sizeof(out), 9);
	r2t = start_r2t_write(c, sizeof(out), &cid);
	n = h_build_h2c(c, buf, cid, r2t.ttag, out, 0, 2048, false);
	n += h_build_h2c(c, buf + n, cid, r2t.ttag, out + 2048, 2048, 2048,
	    true);
	for (off = 0; off < n; off += 7)
		h_send(c, buf + off, MINIMUM(7, n - off));
	h_wait(c, cid, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_read(c, 1, 0, 8, in, sizeof(in)), NVME_SC_SUCCESS);
	ck_assert_mem_eq(ns1->mem, out, sizeof(out));
	ck_assert_mem_eq(in, out, sizeof(in));
	free(buf);
}
END_TEST

START_TEST(pipelined)
{
	enum { N = 100, BS = 512 };
	struct h_conn *c = io_queue(NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST,
	    NULL);
	uint8_t *buf = malloc(N * (256 + BS)), data[BS], in[BS];
	uint16_t cids[N];
	struct nvme_cqe cqe;
	size_t len = 0;

	/* N writes in one send. */
	for (int i = 0; i < N; i++) {
		struct nvme_sqe sqe = { .opc = NVME_CMD_WRITE, .nsid = 1 };

		sqe.cdw10 = 1000 + i;
		h_sgl_icd(&sqe, BS);
		pattern(data, BS, 100 + i);
		len += h_build_capsule(c, buf + len, &sqe, data, BS);
		cids[i] = sqe.cid;
	}
	h_send(c, buf, len);
	for (int i = 0; i < N; i++) {
		h_wait(c, cids[i], &cqe, NULL, 0, NULL, 0);
		ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
	}

	/* N reads in one send, answered in order. */
	len = 0;
	for (int i = 0; i < N; i++) {
		struct nvme_sqe sqe = { .opc = NVME_CMD_READ, .nsid = 1 };

		sqe.cdw10 = 1000 + i;
		h_sgl_xport(&sqe, BS);
		len += h_build_capsule(c, buf + len, &sqe, NULL, 0);
		cids[i] = sqe.cid;
	}
	h_send(c, buf, len);
	for (int i = 0; i < N; i++) {
		h_wait(c, cids[i], &cqe, NULL, 0, in, BS);
		ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SUCCESS);
		pattern(data, BS, 100 + i);
		ck_assert_mem_eq(in, data, BS);
	}
	ck_assert_int_eq(c->nstash, 0);
	free(buf);
}
END_TEST

/*
 * Health that monitoring reads: the SMART log counts what the I/O queue did
 * (commands, data units of 1000 x 512 bytes rounded up), and a failed I/O
 * command is in the Error Information log with its queue, CID, status, LBA
 * and NSID, its completion carrying the More bit.
 */
START_TEST(health_logs)
{
	struct h_conn *a, *c = io_queue(0, &a);
	static uint8_t buf[8 * 512], log[4096];
	struct nvme_sqe sqe = { .opc = NVME_CMD_READ, .nsid = 1 };
	struct nvme_cqe cqe;
	uint64_t past = ns1->nlb;
	struct controller *ctrl;
	struct qpair_stats st;

	/* No I/O yet: not a minute busy. */
	ck_assert_uint_eq(h_get_log(a, NVME_LOG_SMART, 0, 512, false, log),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le64(log + 96), 0);	/* busy minutes */
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(h_write(c, 1, 8 * i, 8, buf, sizeof(buf)),
		    NVME_SC_SUCCESS);
	for (int i = 0; i < 5; i++)
		ck_assert_uint_eq(h_read(c, 1, 8 * i, 8, buf, sizeof(buf)),
		    NVME_SC_SUCCESS);
	sqe.cdw10 = (uint32_t)past;
	sqe.cdw11 = (uint32_t)(past >> 32);
	h_sgl_xport(&sqe, 512);
	h_cmd(c, &sqe, NULL, 0, buf, 512, &cqe);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_LBA_RANGE);
	ck_assert(cqe.status & NVME_STATUS_MORE);

	ck_assert_uint_eq(h_get_log(a, NVME_LOG_SMART, 0, 512, false, log),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le64(log + 32), 1);	/* 20 KiB read */
	ck_assert_uint_eq(get_le64(log + 48), 1);	/* 12 KiB written */
	ck_assert_uint_eq(get_le64(log + 64), 6);	/* read commands */
	ck_assert_uint_eq(get_le64(log + 80), 3);	/* write commands */
	ck_assert_uint_eq(get_le64(log + 96), 1);	/* a started minute */
	ck_assert_uint_eq(get_le64(log + 160), 0);	/* media errors */
	/* The same I/O seen from the one controller (list-ctrl). */
	ctrl = TAILQ_FIRST(&ns1->subsys->controllers);
	ck_assert_ptr_nonnull(ctrl);
	health_ctrl_stats(ctrl, &st);
	ck_assert_uint_eq(st.reads, 6);
	ck_assert_uint_eq(st.writes, 3);
	ck_assert_uint_eq(st.data_read, 5 * sizeof(buf));
	ck_assert_uint_eq(st.data_written, 3 * sizeof(buf));
	ck_assert_uint_gt(health_busy_ns(&ctrl->busy, now_ns()), 0);
	ck_assert_uint_eq(atomic_load(&ctrl->busy.nbusy), 0);
	ck_assert_uint_eq(get_le64(log + 176), 1);	/* error entries */

	ck_assert_uint_eq(h_get_log(a, NVME_LOG_ERROR, 0, 4096, false, log),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le64(log), 1);
	ck_assert_uint_eq(get_le16(log + 8), 1);		/* SQID */
	ck_assert_uint_eq(get_le16(log + 10), sqe.cid);
	ck_assert_uint_eq((get_le16(log + 12) >> 1) & 0x7ff,
	    NVME_SC_LBA_RANGE);
	ck_assert_uint_eq(get_le64(log + 16), past);		/* LBA */
	ck_assert_uint_eq(get_le32(log + 24), 1);		/* NSID */

	/* The same for namespace 1 alone (LPA bit 0); no such NSID 9. */
	ck_assert_uint_eq(h_get_log_ns(a, NVME_LOG_SMART, 1, 512, log),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(get_le64(log + 64), 6);
	ck_assert_uint_eq(get_le64(log + 80), 3);
	ck_assert_uint_eq(h_get_log_ns(a, NVME_LOG_SMART, 9, 512, log),
	    NVME_SC_INVALID_NS);
}
END_TEST

START_TEST(sq_flow_control)
{
	struct h_conn *a = h_admin(port, NQN, H_HOSTNQN, 0), *c;
	struct nvmf_connect_data d;
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	uint8_t out[1024], in[1024];
	uint16_t hd;

	/* SQHD advances by one per command, modulo the queue size. */
	c = h_ioq(a, NQN, H_HOSTNQN, 1, 3, 0);
	memset(out, 0, sizeof(out));
	ck_assert_uint_eq(h_write(c, 1, 0, 2, out, sizeof(out)),
	    NVME_SC_SUCCESS);
	hd = c->last_sqhd;
	for (int i = 1; i <= 5; i++) {
		ck_assert_uint_eq(h_write(c, 1, 0, 2, out, sizeof(out)),
		    NVME_SC_SUCCESS);
		ck_assert_uint_eq(c->last_sqhd, (hd + i) % 4);
	}

	/* SQ flow control disabled: SQHD 0xffff, and a successful read
	 * ends with C2HData carrying SUCCESS, no CapsuleResp. */
	c = h_open(port, "127.0.0.1");
	h_icreq(c, 0, 0, NULL);
	h_connect_sqe(&sqe, 2, 31, 0);
	sqe.cdw11 |= NVMF_CATTR_DISABLE_SQFLOW << 16;
	h_connect_data(&d, NQN, H_HOSTNQN, a->cntlid);
	ck_assert_uint_eq(h_cmd(c, &sqe, &d, sizeof(d), NULL, 0, &cqe),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(cqe.sqhd, 0xffff);
	c->qid = 2;
	c->cntlid = a->cntlid;
	c->icd_max = port->inline_data_size;

	pattern(out, sizeof(out), 10);
	ck_assert_uint_eq(h_write(c, 1, 2, 2, out, sizeof(out)),
	    NVME_SC_SUCCESS);
	ck_assert_uint_eq(c->last_sqhd, 0xffff);
	ck_assert_uint_eq(h_read(c, 1, 2, 2, in, sizeof(in)), NVME_SC_SUCCESS);
	ck_assert(c->last_c2h_success);
	ck_assert_mem_eq(in, out, sizeof(in));
	/* The next reply is the flush's: no response for the read came. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_CMD_FLUSH;
	sqe.nsid = 1;
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, NULL, 0, &cqe),
	    NVME_SC_SUCCESS);
	ck_assert_int_eq(c->nstash, 0);
	/* A failed read still gets a CapsuleResp. */
	ck_assert_uint_eq(h_read(c, 1, ns1->nlb, 1, in, 512),
	    NVME_SC_LBA_RANGE);
}
END_TEST

START_TEST(sgl_checks)
{
	struct h_conn *c = io_queue(0, NULL);
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;
	uint8_t out[1024], buf[256 + 1024];
	size_t n;

	memset(out, 0, sizeof(out));
	/* In-capsule SGL longer than the data in the capsule. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_CMD_WRITE;
	sqe.nsid = 1;
	sqe.cdw12 = 1;
	h_sgl_icd(&sqe, sizeof(out));
	n = h_build_capsule(c, buf, &sqe, out, 512);
	h_send(c, buf, n);
	h_wait(c, sqe.cid, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SGL_INVALID_DATA_LEN);
	ck_assert(h_dnr(&cqe));

	/* Transport SGL but data in the capsule. */
	h_sgl_xport(&sqe, sizeof(out));
	n = h_build_capsule(c, buf, &sqe, out, sizeof(out));
	h_send(c, buf, n);
	h_wait(c, sqe.cid, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_SGL_INVALID_TYPE);

	/* PRPs are not for fabrics. */
	h_sgl_xport(&sqe, sizeof(out));
	sqe.flags = 0;
	h_submit(c, &sqe, NULL, 0);
	h_wait(c, sqe.cid, &cqe, NULL, 0, NULL, 0);
	ck_assert_uint_eq(h_sc(&cqe), NVME_SC_INVALID_FIELD);

	/* SGL length not matching the blocks. */
	sqe.cdw12 = 0;
	ck_assert_uint_eq(h_cmd(c, &sqe, out, sizeof(out), NULL, 0, &cqe),
	    NVME_SC_SGL_INVALID_DATA_LEN);
	/* Unknown namespace, blocks past the end, unknown opcode. */
	ck_assert_uint_eq(h_read(c, 2, 0, 1, out, 512), NVME_SC_INVALID_NS);
	ck_assert_uint_eq(h_read(c, 1, ns1->nlb - 1, 2, out, 1024),
	    NVME_SC_LBA_RANGE);
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = 0x7e;
	sqe.nsid = 1;
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, NULL, 0, &cqe),
	    NVME_SC_INVALID_OPCODE);
	/* And the queue still works. */
	ck_assert_uint_eq(h_read(c, 1, ns1->nlb - 2, 2, out, 1024),
	    NVME_SC_SUCCESS);
}
END_TEST

START_TEST(disconnect)
{
	struct h_conn *a, *c = io_queue(0, &a);
	struct nvme_sqe sqe = { .opc = NVME_FABRICS_COMMAND };
	struct nvme_cqe cqe;

	/* Disconnect on the admin queue is not a thing. */
	((uint8_t *)&sqe)[4] = NVMF_FCTYPE_DISCONNECT;
	ck_assert_uint_eq(h_cmd(a, &sqe, NULL, 0, NULL, 0, &cqe),
	    NVME_SC_INVALID_OPCODE);
	/* On an I/O queue: answered, then the queue goes away. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opc = NVME_FABRICS_COMMAND;
	((uint8_t *)&sqe)[4] = NVMF_FCTYPE_DISCONNECT;
	ck_assert_uint_eq(h_cmd(c, &sqe, NULL, 0, NULL, 0, &cqe),
	    NVME_SC_SUCCESS);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
	/* The QID is free again. */
	c = h_ioq(a, NQN, H_HOSTNQN, 1, 31, 0);
	ck_assert_uint_eq(h_set_feat(a, NVME_FEAT_KATO, 0, NULL),
	    NVME_SC_SUCCESS);
}
END_TEST

START_TEST(admin_gone_takes_io_queues)
{
	struct h_conn *a, *c = io_queue(0, &a);

	h_close(a);
	ck_assert(h_closed(c, H_TIMEOUT_MS));
}
END_TEST

static Suite *
qpair_suite(void)
{
	Suite *s = suite_create("qpair");
	TCase *tc = tcase_create("qpair");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ic_exchange);
	tcase_add_test(tc, icreq_bad_pfv);
	tcase_add_test(tc, malformed_pdus);
	tcase_add_test(tc, host_terminates);
	tcase_add_test(tc, write_in_capsule_read_c2h);
	tcase_add_test(tc, write_r2t_split);
	tcase_add_test(tc, mdts_transfer);
	tcase_add_test(tc, digests_on_every_pdu);
	tcase_add_test(tc, c2h_alignment);
	tcase_add_test(tc, data_digest_errors);
	tcase_add_test(tc, h2c_errors);
	tcase_add_test(tc, partial_delivery);
	tcase_add_test(tc, pipelined);
	tcase_add_test(tc, health_logs);
	tcase_add_test(tc, sq_flow_control);
	tcase_add_test(tc, sgl_checks);
	tcase_add_test(tc, disconnect);
	tcase_add_test(tc, admin_gone_takes_io_queues);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(qpair_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
