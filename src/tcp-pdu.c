/*
 * NVMe/TCP PDU codec: pure functions, no I/O.  Received headers are checked
 * field by field in wire order, so the lowest bad field is the one reported
 * (NVMe/TCP 1.0 section 3.6.2.1: FEI is the byte offset of that field).
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "nvmfd.h"

/* Offset of the data in a PDU whose receiver asked for (pda+1)*4 alignment. */
uint32_t
tcp_pdu_data_offset(uint8_t hlen, bool hdgst, uint8_t pda)
{
	uint32_t align = ((uint32_t)pda + 1) * 4;
	uint32_t off = hlen + (hdgst ? NVME_TCP_DIGEST_LEN : 0);

	return ((off + align - 1) / align * align);
}

/* What a receiver accepts of each PDU type. */
struct pdu_rule {
	uint8_t		hlen;
	bool		digested;	/* HDGST/DDGST apply */
	uint8_t		data;		/* 0 never, 1 optional, 2 required */
	uint8_t		flags;		/* allowed beyond the digest flags */
	bool		ic;		/* only as the first PDU */
};

static const struct pdu_rule *
pdu_rule(uint8_t type, bool host)
{
	static const struct pdu_rule ctrl_rules[] = {
		[NVME_TCP_ICREQ] = { 128, false, 0, 0, true },
		[NVME_TCP_H2C_TERM] = { 24, false, 0, 0, false },
		[NVME_TCP_CMD] = { 72, true, 1, 0, false },
		[NVME_TCP_H2C_DATA] = { 24, true, 2, NVME_TCP_F_DATA_LAST, false },
	};
	static const struct pdu_rule host_rules[] = {
		[NVME_TCP_ICRESP] = { 128, false, 0, 0, true },
		[NVME_TCP_C2H_TERM] = { 24, false, 0, 0, false },
		[NVME_TCP_RSP] = { 24, true, 0, 0, false },
		[NVME_TCP_C2H_DATA] = { 24, true, 2,
		    NVME_TCP_F_DATA_LAST | NVME_TCP_F_DATA_SUCCESS, false },
		[NVME_TCP_R2T] = { 24, true, 0, 0, false },
	};
	const struct pdu_rule *r;

	if (host) {
		if (type >= nitems(host_rules))
			return (NULL);
		r = &host_rules[type];
	} else {
		if (type >= nitems(ctrl_rules))
			return (NULL);
		r = &ctrl_rules[type];
	}
	return (r->hlen ? r : NULL);
}

#define CH_FAIL(field, fes) do {					\
	*fei = offsetof(struct nvme_tcp_hdr, field);			\
	return (fes);							\
} while (0)

/*
 * Check a received common header.  What a data PDU's DATAL/DATAO mean is
 * checked later against its command; here only the framing: type, flags,
 * HLEN, PDO and PLEN, in that (wire) order.
 */
static int
check_ch(const struct nvme_tcp_hdr *ch, bool host, bool ic_done,
    const struct pdu_limits *lim, uint32_t *fei)
{
	const struct pdu_rule *r = pdu_rule(ch->type, host);
	uint32_t plen = ch->plen, min_data_off, data_len, hd, dd;
	bool has_data;

	if (r == NULL)
		CH_FAIL(type, NVME_TCP_FES_INVALID_HEADER);
	/* The IC exchange comes first and only once. */
	if (r->ic == ic_done && (r->ic || r->digested))
		CH_FAIL(type, NVME_TCP_FES_PDU_SEQ_ERROR);

	hd = r->digested && lim->hdgst ? NVME_TCP_DIGEST_LEN : 0;
	has_data = plen > (uint32_t)r->hlen + hd;
	if (r->digested) {
		uint8_t allowed = NVME_TCP_F_HDGST | NVME_TCP_F_DDGST | r->flags;

		if ((ch->flags & ~allowed) != 0 ||
		    !!(ch->flags & NVME_TCP_F_HDGST) != lim->hdgst)
			CH_FAIL(flags, NVME_TCP_FES_INVALID_HEADER);
		/* SUCCESS only on the last C2HData of a command. */
		if ((ch->flags & NVME_TCP_F_DATA_SUCCESS) &&
		    !(ch->flags & NVME_TCP_F_DATA_LAST))
			CH_FAIL(flags, NVME_TCP_FES_INVALID_HEADER);
		if (has_data && r->data &&
		    !!(ch->flags & NVME_TCP_F_DDGST) != lim->ddgst)
			CH_FAIL(flags, NVME_TCP_FES_INVALID_HEADER);
		if ((!has_data || !r->data) && (ch->flags & NVME_TCP_F_DDGST))
			CH_FAIL(flags, NVME_TCP_FES_INVALID_HEADER);
	}
	if (ch->hlen != r->hlen)
		CH_FAIL(hlen, NVME_TCP_FES_INVALID_HEADER);

	if (!r->digested) {
		if (ch->pdo != 0)
			CH_FAIL(pdo, NVME_TCP_FES_INVALID_HEADER);
		if ((r->ic && plen != r->hlen) || (!r->ic &&
		    (plen < r->hlen || plen > (uint32_t)r->hlen +
		    NVME_TCP_TERM_MAX_DATA)))
			CH_FAIL(plen, NVME_TCP_FES_INVALID_HEADER);
		return (0);
	}
	if (!has_data || r->data == 0) {
		if (r->data == 2)
			CH_FAIL(plen, NVME_TCP_FES_INVALID_HEADER);
		if (ch->pdo != 0)
			CH_FAIL(pdo, NVME_TCP_FES_INVALID_HEADER);
		if (plen != r->hlen + hd)
			CH_FAIL(plen, NVME_TCP_FES_INVALID_HEADER);
		return (0);
	}
	min_data_off = tcp_pdu_data_offset(r->hlen, lim->hdgst, lim->cpda);
	if (ch->pdo < min_data_off ||
	    ch->pdo % (((uint32_t)lim->cpda + 1) * 4) != 0)
		CH_FAIL(pdo, NVME_TCP_FES_INVALID_HEADER);
	dd = lim->ddgst ? NVME_TCP_DIGEST_LEN : 0;
	if (plen < (uint32_t)ch->pdo + dd + 1)
		CH_FAIL(plen, NVME_TCP_FES_INVALID_HEADER);
	data_len = plen - ch->pdo - dd;
	if (ch->type == NVME_TCP_CMD && data_len > lim->max_icd)
		CH_FAIL(plen, NVME_TCP_FES_DATA_LIMIT);
	if (ch->type != NVME_TCP_CMD && data_len > lim->maxh2cdata)
		CH_FAIL(plen, NVME_TCP_FES_DATA_LIMIT);
	return (0);
}

int
tcp_pdu_check_ch(const struct nvme_tcp_hdr *ch, enum qpair_state state,
    const struct pdu_limits *lim, uint32_t *fei)
{
	return (check_ch(ch, false, state != QP_WAIT_ICREQ, lim, fei));
}

/* The same checks for PDUs a host receives (C2H direction). */
int
tcp_pdu_check_ch_host(const struct nvme_tcp_hdr *ch, bool ic_done,
    const struct pdu_limits *lim, uint32_t *fei)
{
	return (check_ch(ch, true, ic_done, lim, fei));
}

/* ICReq body (the common header already passed tcp_pdu_check_ch). */
int
tcp_pdu_check_icreq(const struct nvme_tcp_ic_pdu *ic, uint32_t *fei)
{
	if (ic->pfv != NVME_TCP_PFV_1_0) {
		*fei = offsetof(struct nvme_tcp_ic_pdu, pfv);
		return (NVME_TCP_FES_INVALID_HEADER);
	}
	if (ic->pda > 31) {
		*fei = offsetof(struct nvme_tcp_ic_pdu, pda);
		return (NVME_TCP_FES_INVALID_HEADER);
	}
	if (ic->digest & ~(NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST)) {
		*fei = offsetof(struct nvme_tcp_ic_pdu, digest);
		return (NVME_TCP_FES_INVALID_HEADER);
	}
	return (0);
}

/*
 * ICReq (the host's: HPDA, digests asked for, MAXR2T) or ICResp (the
 * controller's: CPDA, digests granted, MAXH2CDATA): one layout.
 */
void
tcp_pdu_build_ic(struct nvme_tcp_ic_pdu *ic, uint8_t type, uint8_t pda,
    bool hdgst, bool ddgst, uint32_t maxr2t_or_maxh2cdata)
{
	memset(ic, 0, sizeof(*ic));
	ic->hdr.type = type;
	ic->hdr.hlen = sizeof(*ic);
	ic->hdr.plen = sizeof(*ic);
	ic->pfv = NVME_TCP_PFV_1_0;
	ic->pda = pda;
	ic->digest = (hdgst ? NVME_TCP_IC_HDGST : 0) |
	    (ddgst ? NVME_TCP_IC_DDGST : 0);
	ic->maxr2t_or_maxh2cdata = maxr2t_or_maxh2cdata;
}

/* The header digest after hlen header bytes, when digests are on. */
void
tcp_pdu_put_hdgst(uint8_t *hdr, size_t hlen, bool on)
{
	if (on)
		put_le32(hdr + hlen, crc32c(hdr, hlen));
}

bool
tcp_pdu_hdgst_ok(const uint8_t *hdr, size_t hlen)
{
	return (get_le32(hdr + hlen) == crc32c(hdr, hlen));
}

/* TermReq carrying up to 128 bytes of the offending header; never digested. */
size_t
tcp_pdu_build_term(uint8_t *out, uint8_t type, uint16_t fes, uint32_t fei,
    const void *bad_hdr, size_t bad_len)
{
	struct nvme_tcp_term_pdu *t = (struct nvme_tcp_term_pdu *)out;

	if (bad_len > NVME_TCP_TERM_MAX_DATA)
		bad_len = NVME_TCP_TERM_MAX_DATA;
	memset(t, 0, sizeof(*t));
	t->hdr.type = type;
	t->hdr.hlen = sizeof(*t);
	/* PDO stays 0: the error data follows the fixed 24-byte header, and
	 * receivers (check_ch here too) reject a TermReq with a PDO. */
	t->hdr.pdo = 0;
	t->hdr.plen = sizeof(*t) + bad_len;
	t->fes = fes;
	/* FEI only means something for invalid header fields. */
	t->fei = (fes == NVME_TCP_FES_INVALID_HEADER) ? fei : 0;
	if (bad_len)
		memcpy(out + sizeof(*t), bad_hdr, bad_len);
	return (sizeof(*t) + bad_len);
}

const char *
tcp_pdu_type_name(uint8_t type)
{
	static const char *names[] = {
		"ICReq", "ICResp", "H2CTermReq", "C2HTermReq", "CapsuleCmd",
		"CapsuleResp", "H2CData", "C2HData", "type 8", "R2T",
	};

	return (type < nitems(names) ? names[type] : "unknown PDU");
}

const char *
tcp_fes_name(uint16_t fes)
{
	switch (fes) {
	case NVME_TCP_FES_INVALID_HEADER:
		return ("invalid PDU header field");
	case NVME_TCP_FES_PDU_SEQ_ERROR:
		return ("PDU sequence error");
	case NVME_TCP_FES_HDGST_ERROR:
		return ("header digest error");
	case NVME_TCP_FES_DATA_OUT_OF_RANGE:
		return ("data transfer out of range");
	case NVME_TCP_FES_DATA_LIMIT:
		return ("data transfer limit exceeded");
	case NVME_TCP_FES_UNSUPPORTED_PARAM:
		return ("unsupported parameter");
	default:
		return ("unknown error");
	}
}
