/*
 * NVMe/TCP PDU codec: common header checks for every PDU type and field,
 * ICReq checks, data offsets, ICResp and C2HTermReq building, names.
 */
#include "config.h"

#include <check.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"

#define FEI_TYPE	offsetof(struct nvme_tcp_hdr, type)
#define FEI_FLAGS	offsetof(struct nvme_tcp_hdr, flags)
#define FEI_HLEN	offsetof(struct nvme_tcp_hdr, hlen)
#define FEI_PDO		offsetof(struct nvme_tcp_hdr, pdo)
#define FEI_PLEN	offsetof(struct nvme_tcp_hdr, plen)

#define F_HD		NVME_TCP_F_HDGST
#define F_DD		NVME_TCP_F_DDGST
#define F_LAST		NVME_TCP_F_DATA_LAST

static const struct pdu_limits no_digests = {
	.hdgst = false, .ddgst = false, .cpda = 0,
	.max_icd = 8192, .maxh2cdata = 131072,
};
static const struct pdu_limits digests = {
	.hdgst = true, .ddgst = true, .cpda = 0,
	.max_icd = 8192, .maxh2cdata = 131072,
};

static struct nvme_tcp_hdr
ch(uint8_t type, uint8_t flags, uint8_t hlen, uint8_t pdo, uint32_t plen)
{
	struct nvme_tcp_hdr h = {
		.type = type, .flags = flags, .hlen = hlen, .pdo = pdo,
		.plen = plen,
	};

	return (h);
}

/* Check a header; expect FES fes (0: accepted) and, if rejected, FEI fei. */
#define EXPECT(h, state, lim, fes, fei) do {				\
	struct nvme_tcp_hdr _h = (h);					\
	uint32_t _fei = 0xdeadbeef;					\
	int _fes = tcp_pdu_check_ch(&_h, (state), (lim), &_fei);	\
									\
	ck_assert_msg(_fes == (fes), "%s flags 0x%x hlen %u pdo %u "	\
	    "plen %u: FES %d, want %d", tcp_pdu_type_name(_h.type),	\
	    _h.flags, _h.hlen, _h.pdo, _h.plen, _fes, (fes));		\
	if ((fes) != 0)							\
		ck_assert_msg(_fei == (uint32_t)(fei), "%s: FEI %u, want %u", \
		    tcp_pdu_type_name(_h.type), _fei, (uint32_t)(fei));	\
} while (0)

#define OK(h, state, lim)	EXPECT(h, state, lim, 0, 0)
#define BAD(h, state, lim, fei)	\
	EXPECT(h, state, lim, NVME_TCP_FES_INVALID_HEADER, fei)

START_TEST(icreq_good)
{
	OK(ch(NVME_TCP_ICREQ, 0, 128, 0, 128), QP_WAIT_ICREQ, &no_digests);
	/* The limits are irrelevant before negotiation. */
	OK(ch(NVME_TCP_ICREQ, 0, 128, 0, 128), QP_WAIT_ICREQ, &digests);
}
END_TEST

START_TEST(types_a_controller_never_receives)
{
	/* Controller-to-host PDUs, the unassigned 8 and everything above. */
	for (unsigned t = 0; t < 256; t++) {
		if (t == NVME_TCP_ICREQ || t == NVME_TCP_H2C_TERM ||
		    t == NVME_TCP_CMD || t == NVME_TCP_H2C_DATA)
			continue;
		for (enum qpair_state s = QP_WAIT_ICREQ; s <= QP_ACTIVE; s++)
			BAD(ch(t, 0, 24, 0, 24), s, &no_digests, FEI_TYPE);
	}
}
END_TEST

START_TEST(sequence_errors)
{
	/* A second ICReq. */
	EXPECT(ch(NVME_TCP_ICREQ, 0, 128, 0, 128), QP_WAIT_CONNECT,
	    &no_digests, NVME_TCP_FES_PDU_SEQ_ERROR, FEI_TYPE);
	EXPECT(ch(NVME_TCP_ICREQ, 0, 128, 0, 128), QP_ACTIVE,
	    &no_digests, NVME_TCP_FES_PDU_SEQ_ERROR, FEI_TYPE);
	/* Commands and data before the connection is initialized. */
	EXPECT(ch(NVME_TCP_CMD, 0, 72, 0, 72), QP_WAIT_ICREQ,
	    &no_digests, NVME_TCP_FES_PDU_SEQ_ERROR, FEI_TYPE);
	EXPECT(ch(NVME_TCP_H2C_DATA, F_LAST, 24, 24, 24 + 512), QP_WAIT_ICREQ,
	    &no_digests, NVME_TCP_FES_PDU_SEQ_ERROR, FEI_TYPE);
	/* The same PDUs are fine afterwards. */
	OK(ch(NVME_TCP_CMD, 0, 72, 0, 72), QP_WAIT_CONNECT, &no_digests);
	OK(ch(NVME_TCP_H2C_DATA, F_LAST, 24, 24, 24 + 512), QP_ACTIVE,
	    &no_digests);
	/* A host may give up at any point. */
	OK(ch(NVME_TCP_H2C_TERM, 0, 24, 0, 24), QP_WAIT_ICREQ, &no_digests);
	OK(ch(NVME_TCP_H2C_TERM, 0, 24, 0, 24), QP_ACTIVE, &digests);
}
END_TEST

START_TEST(ch_flags)
{
	/* Header digest flag must match the negotiation, both ways. */
	BAD(ch(NVME_TCP_CMD, F_HD, 72, 0, 76), QP_ACTIVE, &no_digests,
	    FEI_FLAGS);
	BAD(ch(NVME_TCP_CMD, 0, 72, 0, 72), QP_ACTIVE, &digests, FEI_FLAGS);
	BAD(ch(NVME_TCP_H2C_DATA, F_LAST | F_DD, 24, 28, 28 + 512 + 4),
	    QP_ACTIVE, &digests, FEI_FLAGS);
	OK(ch(NVME_TCP_CMD, F_HD, 72, 0, 76), QP_ACTIVE, &digests);
	/* Unknown bits; LAST_PDU only means something on H2CData, and
	 * SUCCESS only on C2HData. */
	for (unsigned bit = 2; bit < 8; bit++)
		BAD(ch(NVME_TCP_CMD, 1u << bit, 72, 0, 72), QP_ACTIVE,
		    &no_digests, FEI_FLAGS);
	for (unsigned bit = 3; bit < 8; bit++)
		BAD(ch(NVME_TCP_H2C_DATA, F_LAST | 1u << bit, 24, 24, 24 + 8),
		    QP_ACTIVE, &no_digests, FEI_FLAGS);
	OK(ch(NVME_TCP_H2C_DATA, 0, 24, 24, 24 + 8), QP_ACTIVE, &no_digests);
	/* Data digest flag: must match the negotiation when data is present,
	 * and must be clear when there is none. */
	BAD(ch(NVME_TCP_CMD, F_DD, 72, 72, 72 + 64 + 4), QP_ACTIVE,
	    &no_digests, FEI_FLAGS);
	BAD(ch(NVME_TCP_CMD, F_HD, 72, 76, 76 + 64), QP_ACTIVE, &digests,
	    FEI_FLAGS);
	BAD(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 0, 76), QP_ACTIVE, &digests,
	    FEI_FLAGS);
	OK(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 76, 76 + 64 + 4), QP_ACTIVE,
	    &digests);
	OK(ch(NVME_TCP_H2C_DATA, F_HD | F_DD | F_LAST, 24, 28, 28 + 64 + 4),
	    QP_ACTIVE, &digests);
}
END_TEST

START_TEST(ch_hlen)
{
	static const struct { uint8_t type, hlen; } want[] = {
		{ NVME_TCP_ICREQ, 128 }, { NVME_TCP_H2C_TERM, 24 },
		{ NVME_TCP_CMD, 72 }, { NVME_TCP_H2C_DATA, 24 },
	};
	static const uint8_t wrong[] = { 0, 8, 23, 25, 64, 71, 73, 127, 129,
	    255 };

	for (size_t i = 0; i < nitems(want); i++) {
		enum qpair_state s = want[i].type == NVME_TCP_ICREQ ?
		    QP_WAIT_ICREQ : QP_ACTIVE;
		uint8_t flags = want[i].type == NVME_TCP_H2C_DATA ? F_LAST : 0;

		for (size_t k = 0; k < nitems(wrong); k++) {
			uint8_t h = wrong[k];

			if (h == want[i].hlen)
				continue;
			/* PLEN as the right HLEN would have it. */
			BAD(ch(want[i].type, flags, h, 0, want[i].hlen), s,
			    &no_digests, FEI_HLEN);
		}
	}
}
END_TEST

START_TEST(ch_pdo)
{
	struct pdu_limits cpda3 = digests;	/* 16-byte alignment */

	/* PDUs that never carry data here must have PDO 0. */
	BAD(ch(NVME_TCP_ICREQ, 0, 128, 128, 128), QP_WAIT_ICREQ, &no_digests,
	    FEI_PDO);
	BAD(ch(NVME_TCP_H2C_TERM, 0, 24, 8, 24), QP_ACTIVE, &no_digests,
	    FEI_PDO);
	BAD(ch(NVME_TCP_CMD, 0, 72, 72, 72), QP_ACTIVE, &no_digests, FEI_PDO);
	BAD(ch(NVME_TCP_CMD, F_HD, 72, 76, 76), QP_ACTIVE, &digests, FEI_PDO);

	/* Data must start after the header and its digest. */
	BAD(ch(NVME_TCP_CMD, 0, 72, 0, 72 + 64), QP_ACTIVE, &no_digests,
	    FEI_PDO);
	BAD(ch(NVME_TCP_CMD, 0, 72, 68, 72 + 64), QP_ACTIVE, &no_digests,
	    FEI_PDO);
	BAD(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 72, 76 + 64 + 4), QP_ACTIVE,
	    &digests, FEI_PDO);
	BAD(ch(NVME_TCP_H2C_DATA, F_HD | F_DD | F_LAST, 24, 24, 28 + 64 + 4),
	    QP_ACTIVE, &digests, FEI_PDO);
	BAD(ch(NVME_TCP_H2C_DATA, F_LAST, 24, 16, 24 + 64), QP_ACTIVE,
	    &no_digests, FEI_PDO);
	/* More padding than needed is allowed. */
	OK(ch(NVME_TCP_CMD, 0, 72, 80, 80 + 64), QP_ACTIVE, &no_digests);

	/* With CPDA 3 the data must sit on a 16-byte boundary. */
	cpda3.cpda = 3;
	BAD(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 76, 76 + 64 + 4), QP_ACTIVE,
	    &cpda3, FEI_PDO);
	BAD(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 84, 84 + 64 + 4), QP_ACTIVE,
	    &cpda3, FEI_PDO);
	BAD(ch(NVME_TCP_H2C_DATA, F_HD | F_DD | F_LAST, 24, 28, 28 + 64 + 4),
	    QP_ACTIVE, &cpda3, FEI_PDO);
	OK(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 80, 80 + 64 + 4), QP_ACTIVE,
	    &cpda3);
	OK(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 96, 96 + 64 + 4), QP_ACTIVE,
	    &cpda3);
	OK(ch(NVME_TCP_H2C_DATA, F_HD | F_DD | F_LAST, 24, 32, 32 + 64 + 4),
	    QP_ACTIVE, &cpda3);
}
END_TEST

START_TEST(ch_plen)
{
	/* ICReq: exactly 128. */
	BAD(ch(NVME_TCP_ICREQ, 0, 128, 0, 127), QP_WAIT_ICREQ, &no_digests,
	    FEI_PLEN);
	BAD(ch(NVME_TCP_ICREQ, 0, 128, 0, 132), QP_WAIT_ICREQ, &no_digests,
	    FEI_PLEN);
	/* H2CTermReq: the header plus up to 128 bytes of the bad PDU. */
	BAD(ch(NVME_TCP_H2C_TERM, 0, 24, 0, 23), QP_ACTIVE, &no_digests,
	    FEI_PLEN);
	BAD(ch(NVME_TCP_H2C_TERM, 0, 24, 0, 153), QP_ACTIVE, &no_digests,
	    FEI_PLEN);
	BAD(ch(NVME_TCP_H2C_TERM, 0, 24, 0, 0xffffffff), QP_ACTIVE,
	    &no_digests, FEI_PLEN);
	OK(ch(NVME_TCP_H2C_TERM, 0, 24, 0, 152), QP_ACTIVE, &no_digests);
	OK(ch(NVME_TCP_H2C_TERM, 0, 24, 0, 100), QP_ACTIVE, &no_digests);
	/* Capsule without data: header and its digest, nothing else. */
	BAD(ch(NVME_TCP_CMD, 0, 72, 0, 71), QP_ACTIVE, &no_digests, FEI_PLEN);
	BAD(ch(NVME_TCP_CMD, F_HD, 72, 0, 72), QP_ACTIVE, &digests, FEI_PLEN);
	BAD(ch(NVME_TCP_CMD, F_HD, 72, 0, 74), QP_ACTIVE, &digests, FEI_PLEN);
	/* Capsule with data too short to hold its data digest. */
	BAD(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 76, 76 + 4), QP_ACTIVE,
	    &digests, FEI_PLEN);
	BAD(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 76, 76 + 2), QP_ACTIVE,
	    &digests, FEI_PLEN);
	OK(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 76, 76 + 1 + 4), QP_ACTIVE,
	    &digests);
	/* Data offset beyond the PDU. */
	BAD(ch(NVME_TCP_CMD, 0, 72, 96, 80), QP_ACTIVE, &no_digests, FEI_PLEN);
	/* H2CData must carry data. */
	BAD(ch(NVME_TCP_H2C_DATA, F_LAST, 24, 0, 24), QP_ACTIVE, &no_digests,
	    FEI_PLEN);
	BAD(ch(NVME_TCP_H2C_DATA, F_HD | F_LAST, 24, 0, 28), QP_ACTIVE,
	    &digests, FEI_PLEN);
	BAD(ch(NVME_TCP_H2C_DATA, F_HD | F_DD | F_LAST, 24, 28, 28 + 4),
	    QP_ACTIVE, &digests, FEI_PLEN);
}
END_TEST

START_TEST(data_limits)
{
	/* In-capsule data up to max_icd, H2CData up to MAXH2CDATA. */
	OK(ch(NVME_TCP_CMD, 0, 72, 72, 72 + 8192), QP_ACTIVE, &no_digests);
	EXPECT(ch(NVME_TCP_CMD, 0, 72, 72, 72 + 8193), QP_ACTIVE, &no_digests,
	    NVME_TCP_FES_DATA_LIMIT, FEI_PLEN);
	OK(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 76, 76 + 8192 + 4), QP_ACTIVE,
	    &digests);
	EXPECT(ch(NVME_TCP_CMD, F_HD | F_DD, 72, 76, 76 + 8193 + 4),
	    QP_ACTIVE, &digests, NVME_TCP_FES_DATA_LIMIT, FEI_PLEN);
	OK(ch(NVME_TCP_H2C_DATA, F_LAST, 24, 24, 24 + 131072), QP_ACTIVE,
	    &no_digests);
	EXPECT(ch(NVME_TCP_H2C_DATA, F_LAST, 24, 24, 24 + 131073), QP_ACTIVE,
	    &no_digests, NVME_TCP_FES_DATA_LIMIT, FEI_PLEN);
	EXPECT(ch(NVME_TCP_H2C_DATA, F_HD | F_DD | F_LAST, 24, 28,
	    28 + 131073 + 4), QP_ACTIVE, &digests, NVME_TCP_FES_DATA_LIMIT,
	    FEI_PLEN);
	/* A huge PLEN must not wrap around into something acceptable. */
	EXPECT(ch(NVME_TCP_CMD, 0, 72, 72, 0xffffffff), QP_ACTIVE,
	    &no_digests, NVME_TCP_FES_DATA_LIMIT, FEI_PLEN);
}
END_TEST

/* The same framing rules for what a host receives (host-tcp.c). */
#define HEXPECT(h, ic_done, lim, fes, fei) do {				\
	struct nvme_tcp_hdr _h = (h);					\
	uint32_t _fei = 0xdeadbeef;					\
	int _fes = tcp_pdu_check_ch_host(&_h, (ic_done), (lim), &_fei);	\
									\
	ck_assert_msg(_fes == (fes), "host: %s flags 0x%x hlen %u pdo %u " \
	    "plen %u: FES %d, want %d", tcp_pdu_type_name(_h.type),	\
	    _h.flags, _h.hlen, _h.pdo, _h.plen, _fes, (fes));		\
	if ((fes) != 0)							\
		ck_assert_uint_eq(_fei, (uint32_t)(fei));		\
} while (0)
#define HOK(h, ic, lim)		HEXPECT(h, ic, lim, 0, 0)
#define HBAD(h, ic, lim, fei)	\
	HEXPECT(h, ic, lim, NVME_TCP_FES_INVALID_HEADER, fei)

START_TEST(host_role)
{
	const struct pdu_limits *n = &no_digests, *d = &digests;

	HOK(ch(NVME_TCP_ICRESP, 0, 128, 0, 128), false, n);
	HOK(ch(NVME_TCP_RSP, 0, 24, 0, 24), true, n);
	HOK(ch(NVME_TCP_RSP, F_HD, 24, 0, 28), true, d);
	HOK(ch(NVME_TCP_R2T, F_HD, 24, 0, 28), true, d);
	HOK(ch(NVME_TCP_C2H_DATA, F_HD | F_DD | F_LAST |
	    NVME_TCP_F_DATA_SUCCESS, 24, 28, 28 + 512 + 4), true, d);
	HOK(ch(NVME_TCP_C2H_TERM, 0, 24, 0, 24 + 128), false, n);
	HOK(ch(NVME_TCP_C2H_TERM, 0, 24, 0, 24), true, d);

	/* What only a controller receives, and the unassigned types. */
	for (unsigned t = 0; t < 256; t++) {
		if (t == NVME_TCP_ICRESP || t == NVME_TCP_C2H_TERM ||
		    t == NVME_TCP_RSP || t == NVME_TCP_C2H_DATA ||
		    t == NVME_TCP_R2T)
			continue;
		HBAD(ch(t, 0, 24, 0, 24), true, n, FEI_TYPE);
	}
	/* Order: ICResp first and once. */
	HEXPECT(ch(NVME_TCP_ICRESP, 0, 128, 0, 128), true, n,
	    NVME_TCP_FES_PDU_SEQ_ERROR, FEI_TYPE);
	HEXPECT(ch(NVME_TCP_RSP, 0, 24, 0, 24), false, n,
	    NVME_TCP_FES_PDU_SEQ_ERROR, FEI_TYPE);
	HEXPECT(ch(NVME_TCP_R2T, 0, 24, 0, 24), false, n,
	    NVME_TCP_FES_PDU_SEQ_ERROR, FEI_TYPE);

	/* Flags: no data digest where there is no data, LAST and SUCCESS
	 * only on C2HData. */
	HBAD(ch(NVME_TCP_RSP, F_HD | F_DD, 24, 0, 28), true, d, FEI_FLAGS);
	HBAD(ch(NVME_TCP_R2T, F_HD | F_LAST, 24, 0, 28), true, d, FEI_FLAGS);
	HBAD(ch(NVME_TCP_RSP, 0, 24, 0, 24), true, d, FEI_FLAGS);
	HBAD(ch(NVME_TCP_C2H_DATA, F_LAST | 0x10, 24, 24, 24 + 8), true, n,
	    FEI_FLAGS);
	/* HLEN, PDO, PLEN. */
	HBAD(ch(NVME_TCP_RSP, 0, 16, 0, 24), true, n, FEI_HLEN);
	HBAD(ch(NVME_TCP_ICRESP, 0, 24, 0, 128), false, n, FEI_HLEN);
	HBAD(ch(NVME_TCP_R2T, 0, 24, 24, 24), true, n, FEI_PDO);
	HBAD(ch(NVME_TCP_C2H_DATA, F_LAST, 24, 20, 24 + 8), true, n, FEI_PDO);
	HBAD(ch(NVME_TCP_RSP, 0, 24, 0, 32), true, n, FEI_PLEN);
	HBAD(ch(NVME_TCP_C2H_DATA, F_LAST, 24, 0, 24), true, n, FEI_PLEN);
	HBAD(ch(NVME_TCP_C2H_TERM, 0, 24, 0, 153), true, n, FEI_PLEN);
	HBAD(ch(NVME_TCP_ICRESP, 0, 128, 0, 129), false, n, FEI_PLEN);
}
END_TEST

static struct nvme_tcp_ic_pdu
icreq(uint16_t pfv, uint8_t pda, uint8_t digest)
{
	struct nvme_tcp_ic_pdu ic;

	memset(&ic, 0, sizeof(ic));
	ic.hdr = ch(NVME_TCP_ICREQ, 0, 128, 0, 128);
	ic.pfv = pfv;
	ic.pda = pda;
	ic.digest = digest;
	return (ic);
}

START_TEST(icreq_body)
{
	struct nvme_tcp_ic_pdu ic;
	uint32_t fei;

	for (unsigned d = 0; d < 4; d++) {
		ic = icreq(0, 31, d);
		ck_assert_int_eq(tcp_pdu_check_icreq(&ic, &fei), 0);
	}
	ic = icreq(1, 0, 0);
	ck_assert_int_eq(tcp_pdu_check_icreq(&ic, &fei),
	    NVME_TCP_FES_INVALID_HEADER);
	ck_assert_uint_eq(fei, 8);
	ic = icreq(0, 32, 0);
	ck_assert_int_eq(tcp_pdu_check_icreq(&ic, &fei),
	    NVME_TCP_FES_INVALID_HEADER);
	ck_assert_uint_eq(fei, 10);
	for (unsigned bit = 2; bit < 8; bit++) {
		ic = icreq(0, 0, 1u << bit | NVME_TCP_IC_HDGST);
		ck_assert_int_eq(tcp_pdu_check_icreq(&ic, &fei),
		    NVME_TCP_FES_INVALID_HEADER);
		ck_assert_uint_eq(fei, 11);
	}
	/* The first bad field is the one reported. */
	ic = icreq(1, 32, 0xff);
	ck_assert_int_eq(tcp_pdu_check_icreq(&ic, &fei),
	    NVME_TCP_FES_INVALID_HEADER);
	ck_assert_uint_eq(fei, 8);
}
END_TEST

START_TEST(data_offset)
{
	/* No alignment beyond dwords: straight after the header (+digest). */
	ck_assert_uint_eq(tcp_pdu_data_offset(24, false, 0), 24);
	ck_assert_uint_eq(tcp_pdu_data_offset(24, true, 0), 28);
	ck_assert_uint_eq(tcp_pdu_data_offset(72, false, 0), 72);
	ck_assert_uint_eq(tcp_pdu_data_offset(72, true, 0), 76);
	/* PDA n: multiples of (n + 1) * 4 bytes. */
	ck_assert_uint_eq(tcp_pdu_data_offset(24, false, 1), 24);
	ck_assert_uint_eq(tcp_pdu_data_offset(24, true, 1), 32);
	ck_assert_uint_eq(tcp_pdu_data_offset(24, true, 3), 32);
	ck_assert_uint_eq(tcp_pdu_data_offset(24, false, 7), 32);
	ck_assert_uint_eq(tcp_pdu_data_offset(72, true, 1), 80);
	ck_assert_uint_eq(tcp_pdu_data_offset(72, false, 15), 128);
	ck_assert_uint_eq(tcp_pdu_data_offset(24, true, 31), 128);
	ck_assert_uint_eq(tcp_pdu_data_offset(72, true, 31), 128);
	ck_assert_uint_eq(tcp_pdu_data_offset(24, false, 2), 24);
	ck_assert_uint_eq(tcp_pdu_data_offset(24, true, 2), 36);
}
END_TEST

START_TEST(icresp)
{
	struct nvme_tcp_ic_pdu ic;
	static const uint8_t zero[sizeof(ic.rsvd)];

	memset(&ic, 0xee, sizeof(ic));
	tcp_pdu_build_ic(&ic, NVME_TCP_ICRESP, 0, true, false, 131072);
	ck_assert_uint_eq(ic.hdr.type, NVME_TCP_ICRESP);
	ck_assert_uint_eq(ic.hdr.flags, 0);
	ck_assert_uint_eq(ic.hdr.hlen, 128);
	ck_assert_uint_eq(ic.hdr.pdo, 0);
	ck_assert_uint_eq(ic.hdr.plen, 128);
	ck_assert_uint_eq(ic.pfv, 0);
	ck_assert_uint_eq(ic.pda, 0);
	ck_assert_uint_eq(ic.digest, NVME_TCP_IC_HDGST);
	ck_assert_uint_eq(ic.maxr2t_or_maxh2cdata, 131072);
	ck_assert_mem_eq(ic.rsvd, zero, sizeof(zero));

	tcp_pdu_build_ic(&ic, NVME_TCP_ICRESP, 7, false, true, 4096);
	ck_assert_uint_eq(ic.pda, 7);
	ck_assert_uint_eq(ic.digest, NVME_TCP_IC_DDGST);
	ck_assert_uint_eq(ic.maxr2t_or_maxh2cdata, 4096);
	tcp_pdu_build_ic(&ic, NVME_TCP_ICRESP, 0, true, true, 65536);
	ck_assert_uint_eq(ic.digest, NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST);
	tcp_pdu_build_ic(&ic, NVME_TCP_ICRESP, 0, false, false, 65536);
	ck_assert_uint_eq(ic.digest, 0);
}
END_TEST

START_TEST(term)
{
	uint8_t out[sizeof(struct nvme_tcp_term_pdu) + NVME_TCP_TERM_MAX_DATA];
	const struct nvme_tcp_term_pdu *t = (const void *)out;
	uint8_t bad[200];
	uint32_t fei;
	size_t n;

	for (size_t i = 0; i < sizeof(bad); i++)
		bad[i] = (uint8_t)i;

	/* No offending header: just the 24-byte PDU. */
	memset(out, 0xee, sizeof(out));
	n = tcp_pdu_build_term(out, NVME_TCP_C2H_TERM,
	    NVME_TCP_FES_INVALID_HEADER, 2, NULL, 0);
	ck_assert_uint_eq(n, 24);
	ck_assert_uint_eq(t->hdr.type, NVME_TCP_C2H_TERM);
	ck_assert_uint_eq(t->hdr.flags, 0);
	ck_assert_uint_eq(t->hdr.hlen, 24);
	ck_assert_uint_eq(t->hdr.pdo, 0);
	ck_assert_uint_eq(t->hdr.plen, 24);
	ck_assert_uint_eq(t->fes, NVME_TCP_FES_INVALID_HEADER);
	ck_assert_uint_eq(t->fei, 2);
	for (size_t i = 0; i < sizeof(t->rsvd); i++)
		ck_assert_uint_eq(t->rsvd[i], 0);

	/* With the header: it follows the TermReq header verbatim, and PDO
	 * stays 0 (TermReqs have no PDU data offset). */
	n = tcp_pdu_build_term(out, NVME_TCP_C2H_TERM,
	    NVME_TCP_FES_INVALID_HEADER, 4, bad, 72);
	ck_assert_uint_eq(n, 24 + 72);
	ck_assert_uint_eq(t->hdr.plen, 24 + 72);
	ck_assert_uint_eq(t->hdr.hlen, 24);
	ck_assert_uint_eq(t->hdr.pdo, 0);
	ck_assert_mem_eq(out + 24, bad, 72);
	/* What we send passes our own receive checks, both directions. */
	ck_assert_int_eq(tcp_pdu_check_ch_host(&t->hdr, true, &no_digests,
	    &fei), 0);
	tcp_pdu_build_term(out, NVME_TCP_H2C_TERM,
	    NVME_TCP_FES_INVALID_HEADER, 4, bad, 72);
	ck_assert_int_eq(tcp_pdu_check_ch(&t->hdr, QP_ACTIVE, &no_digests,
	    &fei), 0);

	/* At most 128 bytes of it. */
	n = tcp_pdu_build_term(out, NVME_TCP_C2H_TERM,
	    NVME_TCP_FES_INVALID_HEADER, 0, bad, sizeof(bad));
	ck_assert_uint_eq(n, 24 + 128);
	ck_assert_uint_eq(t->hdr.plen, 152);
	ck_assert_mem_eq(out + 24, bad, 128);
	ck_assert_int_eq(tcp_pdu_check_ch_host(&t->hdr, true, &no_digests,
	    &fei), 0);

	/* FEI is only meaningful for invalid header fields. */
	for (uint16_t fes = NVME_TCP_FES_PDU_SEQ_ERROR;
	    fes <= NVME_TCP_FES_UNSUPPORTED_PARAM; fes++) {
		n = tcp_pdu_build_term(out, NVME_TCP_C2H_TERM, fes, 10, bad, 8);
		ck_assert_uint_eq(n, 32);
		ck_assert_uint_eq(t->fes, fes);
		ck_assert_uint_eq(t->fei, 0);
	}
	/* The same builder makes an H2CTermReq. */
	tcp_pdu_build_term(out, NVME_TCP_H2C_TERM, 1, 0, NULL, 0);
	ck_assert_uint_eq(t->hdr.type, NVME_TCP_H2C_TERM);
}
END_TEST

START_TEST(names)
{
	ck_assert_str_eq(tcp_pdu_type_name(NVME_TCP_ICREQ), "ICReq");
	ck_assert_str_eq(tcp_pdu_type_name(NVME_TCP_ICRESP), "ICResp");
	ck_assert_str_eq(tcp_pdu_type_name(NVME_TCP_H2C_TERM), "H2CTermReq");
	ck_assert_str_eq(tcp_pdu_type_name(NVME_TCP_C2H_TERM), "C2HTermReq");
	ck_assert_str_eq(tcp_pdu_type_name(NVME_TCP_CMD), "CapsuleCmd");
	ck_assert_str_eq(tcp_pdu_type_name(NVME_TCP_RSP), "CapsuleResp");
	ck_assert_str_eq(tcp_pdu_type_name(NVME_TCP_H2C_DATA), "H2CData");
	ck_assert_str_eq(tcp_pdu_type_name(NVME_TCP_C2H_DATA), "C2HData");
	ck_assert_str_eq(tcp_pdu_type_name(NVME_TCP_R2T), "R2T");
	ck_assert_str_eq(tcp_pdu_type_name(8), "type 8");
	ck_assert_str_eq(tcp_pdu_type_name(10), "unknown PDU");
	ck_assert_str_eq(tcp_pdu_type_name(255), "unknown PDU");

	ck_assert_str_eq(tcp_fes_name(NVME_TCP_FES_INVALID_HEADER),
	    "invalid PDU header field");
	ck_assert_str_eq(tcp_fes_name(NVME_TCP_FES_PDU_SEQ_ERROR),
	    "PDU sequence error");
	ck_assert_str_eq(tcp_fes_name(NVME_TCP_FES_HDGST_ERROR),
	    "header digest error");
	ck_assert_str_eq(tcp_fes_name(NVME_TCP_FES_DATA_OUT_OF_RANGE),
	    "data transfer out of range");
	ck_assert_str_eq(tcp_fes_name(NVME_TCP_FES_DATA_LIMIT),
	    "data transfer limit exceeded");
	ck_assert_str_eq(tcp_fes_name(NVME_TCP_FES_UNSUPPORTED_PARAM),
	    "unsupported parameter");
	ck_assert_str_eq(tcp_fes_name(0), "unknown error");
	ck_assert_str_eq(tcp_fes_name(7), "unknown error");
}
END_TEST

static Suite *
tcp_pdu_suite(void)
{
	Suite *s = suite_create("tcp_pdu");
	TCase *tc = tcase_create("check_ch");
	TCase *tc2 = tcase_create("build");

	tcase_add_test(tc, icreq_good);
	tcase_add_test(tc, types_a_controller_never_receives);
	tcase_add_test(tc, sequence_errors);
	tcase_add_test(tc, ch_flags);
	tcase_add_test(tc, ch_hlen);
	tcase_add_test(tc, ch_pdo);
	tcase_add_test(tc, ch_plen);
	tcase_add_test(tc, data_limits);
	tcase_add_test(tc, icreq_body);
	tcase_add_test(tc, host_role);
	suite_add_tcase(s, tc);
	tcase_add_test(tc2, data_offset);
	tcase_add_test(tc2, icresp);
	tcase_add_test(tc2, term);
	tcase_add_test(tc2, names);
	suite_add_tcase(s, tc2);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(tcp_pdu_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
