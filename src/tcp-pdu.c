/*
 * NVMe/TCP PDU codec: pure functions, no I/O.  Received headers are checked
 * field by field in wire order, so the lowest bad field is the one reported
 * (NVMe/TCP 1.0 section 3.6.2.1: FEI is the byte offset of that field).
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "nvmfd.h"

#define HDGST(l)	((l)->hdgst ? NVME_TCP_DIGEST_LEN : 0)
#define DDGST(l)	((l)->ddgst ? NVME_TCP_DIGEST_LEN : 0)

/* Offset of the data in a PDU whose receiver asked for (pda+1)*4 alignment. */
uint32_t
tcp_pdu_data_offset(uint8_t hlen, bool hdgst, uint8_t pda)
{
	uint32_t align = ((uint32_t)pda + 1) * 4;
	uint32_t off = hlen + (hdgst ? NVME_TCP_DIGEST_LEN : 0);

	return ((off + align - 1) / align * align);
}

static uint8_t
expected_hlen(uint8_t type)
{
	switch (type) {
	case NVME_TCP_ICREQ:
		return (sizeof(struct nvme_tcp_ic_pdu));
	case NVME_TCP_H2C_TERM:
		return (sizeof(struct nvme_tcp_term_pdu));
	case NVME_TCP_CMD:
		return (sizeof(struct nvme_tcp_cmd_pdu));
	case NVME_TCP_H2C_DATA:
		return (sizeof(struct nvme_tcp_data_pdu));
	default:
		return (0);
	}
}

/*
 * Check a common header received by the controller.  What a data PDU's
 * DATAL/DATAO mean is checked later against its command; here only the
 * framing: type, flags, HLEN, PDO and PLEN.
 */
int
tcp_pdu_check_ch(const struct nvme_tcp_hdr *ch, enum qpair_state state,
    const struct pdu_limits *lim, uint32_t *fei)
{
	uint8_t hlen, type = ch->type;
	uint32_t plen = ch->plen, min_data_off, data_len;
	bool digested, has_data;

	/* Type: only host-to-controller PDUs, ICReq first and only first. */
	switch (type) {
	case NVME_TCP_ICREQ:
		if (state != QP_WAIT_ICREQ) {
			*fei = offsetof(struct nvme_tcp_hdr, type);
			return (NVME_TCP_FES_PDU_SEQ_ERROR);
		}
		break;
	case NVME_TCP_H2C_TERM:
		break;
	case NVME_TCP_CMD:
	case NVME_TCP_H2C_DATA:
		if (state == QP_WAIT_ICREQ) {
			*fei = offsetof(struct nvme_tcp_hdr, type);
			return (NVME_TCP_FES_PDU_SEQ_ERROR);
		}
		break;
	default:
		*fei = offsetof(struct nvme_tcp_hdr, type);
		return (NVME_TCP_FES_INVALID_HEADER);
	}
	hlen = expected_hlen(type);
	digested = type == NVME_TCP_CMD || type == NVME_TCP_H2C_DATA;

	/* Flags: digest flags must match what was negotiated. */
	if (digested) {
		uint8_t allowed = NVME_TCP_F_HDGST | NVME_TCP_F_DDGST |
		    (type == NVME_TCP_H2C_DATA ? NVME_TCP_F_DATA_LAST : 0);

		if ((ch->flags & ~allowed) != 0 ||
		    !!(ch->flags & NVME_TCP_F_HDGST) != lim->hdgst) {
			*fei = offsetof(struct nvme_tcp_hdr, flags);
			return (NVME_TCP_FES_INVALID_HEADER);
		}
	}

	if (ch->hlen != hlen) {
		*fei = offsetof(struct nvme_tcp_hdr, hlen);
		return (NVME_TCP_FES_INVALID_HEADER);
	}

	if (!digested) {
		if (ch->pdo != 0) {
			*fei = offsetof(struct nvme_tcp_hdr, pdo);
			return (NVME_TCP_FES_INVALID_HEADER);
		}
		if ((type == NVME_TCP_ICREQ && plen != hlen) ||
		    (type == NVME_TCP_H2C_TERM &&
		    (plen < hlen || plen > (uint32_t)hlen + NVME_TCP_TERM_MAX_DATA))) {
			*fei = offsetof(struct nvme_tcp_hdr, plen);
			return (NVME_TCP_FES_INVALID_HEADER);
		}
		return (0);
	}

	/* Digested PDUs: data present when PLEN goes beyond the header. */
	has_data = plen > (uint32_t)hlen + HDGST(lim);
	if (type == NVME_TCP_H2C_DATA && !has_data) {
		*fei = offsetof(struct nvme_tcp_hdr, plen);
		return (NVME_TCP_FES_INVALID_HEADER);
	}
	if (has_data && !!(ch->flags & NVME_TCP_F_DDGST) != lim->ddgst) {
		*fei = offsetof(struct nvme_tcp_hdr, flags);
		return (NVME_TCP_FES_INVALID_HEADER);
	}
	if (!has_data && (ch->flags & NVME_TCP_F_DDGST)) {
		*fei = offsetof(struct nvme_tcp_hdr, flags);
		return (NVME_TCP_FES_INVALID_HEADER);
	}
	min_data_off = tcp_pdu_data_offset(hlen, lim->hdgst, lim->cpda);
	if (!has_data) {
		if (ch->pdo != 0) {
			*fei = offsetof(struct nvme_tcp_hdr, pdo);
			return (NVME_TCP_FES_INVALID_HEADER);
		}
		if (plen != (uint32_t)hlen + HDGST(lim)) {
			*fei = offsetof(struct nvme_tcp_hdr, plen);
			return (NVME_TCP_FES_INVALID_HEADER);
		}
		return (0);
	}
	if (ch->pdo < min_data_off ||
	    ch->pdo % (((uint32_t)lim->cpda + 1) * 4) != 0) {
		*fei = offsetof(struct nvme_tcp_hdr, pdo);
		return (NVME_TCP_FES_INVALID_HEADER);
	}
	if (plen < (uint32_t)ch->pdo + DDGST(lim) + 1) {
		*fei = offsetof(struct nvme_tcp_hdr, plen);
		return (NVME_TCP_FES_INVALID_HEADER);
	}
	data_len = plen - ch->pdo - DDGST(lim);
	if (type == NVME_TCP_CMD && data_len > lim->max_icd) {
		*fei = offsetof(struct nvme_tcp_hdr, plen);
		return (NVME_TCP_FES_DATA_LIMIT);
	}
	if (type == NVME_TCP_H2C_DATA && data_len > lim->maxh2cdata) {
		*fei = offsetof(struct nvme_tcp_hdr, plen);
		return (NVME_TCP_FES_DATA_LIMIT);
	}
	return (0);
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

void
tcp_pdu_build_icresp(struct nvme_tcp_ic_pdu *ic, uint8_t cpda, bool hdgst,
    bool ddgst, uint32_t maxh2cdata)
{
	memset(ic, 0, sizeof(*ic));
	ic->hdr.type = NVME_TCP_ICRESP;
	ic->hdr.hlen = sizeof(*ic);
	ic->hdr.plen = sizeof(*ic);
	ic->pfv = NVME_TCP_PFV_1_0;
	ic->pda = cpda;
	ic->digest = (hdgst ? NVME_TCP_IC_HDGST : 0) |
	    (ddgst ? NVME_TCP_IC_DDGST : 0);
	ic->maxr2t_or_maxh2cdata = maxh2cdata;
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
	t->hdr.pdo = bad_len ? sizeof(*t) : 0;
	t->hdr.plen = sizeof(*t) + bad_len;
	t->fes = fes;
	/* FEI only means something for header-field and sequence errors. */
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
