/*
 * NVMe/TCP transport PDUs (NVMe/TCP Transport Specification 1.0, section 3).
 */
#ifndef NVMFD_NVME_TCP_H
#define NVMFD_NVME_TCP_H

#include <stdint.h>
#include "nvme.h"

enum nvme_tcp_pdu_type {
	NVME_TCP_ICREQ		= 0x00,
	NVME_TCP_ICRESP		= 0x01,
	NVME_TCP_H2C_TERM	= 0x02,
	NVME_TCP_C2H_TERM	= 0x03,
	NVME_TCP_CMD		= 0x04,
	NVME_TCP_RSP		= 0x05,
	NVME_TCP_H2C_DATA	= 0x06,
	NVME_TCP_C2H_DATA	= 0x07,
	NVME_TCP_R2T		= 0x09,
};

#define NVME_TCP_F_HDGST	(1u << 0)
#define NVME_TCP_F_DDGST	(1u << 1)
#define NVME_TCP_F_DATA_LAST	(1u << 2)
#define NVME_TCP_F_DATA_SUCCESS	(1u << 3)

#define NVME_TCP_DIGEST_LEN	4
#define NVME_TCP_PFV_1_0	0
#define NVME_TCP_MIN_MAXH2CDATA	4096
#define NVME_TCP_TERM_MAX_DATA	128

/* Common header. */
struct nvme_tcp_hdr {
	uint8_t		type;
	uint8_t		flags;
	uint8_t		hlen;
	uint8_t		pdo;
	uint32_t	plen;
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_tcp_hdr) == 8, "common header");

struct nvme_tcp_ic_pdu {		/* ICReq and ICResp */
	struct nvme_tcp_hdr hdr;
	uint16_t	pfv;
	uint8_t		pda;		/* HPDA (req) / CPDA (resp) */
	uint8_t		digest;		/* bit0 HDGST, bit1 DDGST */
	uint32_t	maxr2t_or_maxh2cdata;
	uint8_t		rsvd[112];
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_tcp_ic_pdu) == 128, "IC PDU");

#define NVME_TCP_IC_HDGST	(1u << 0)
#define NVME_TCP_IC_DDGST	(1u << 1)

struct nvme_tcp_term_pdu {
	struct nvme_tcp_hdr hdr;
	uint16_t	fes;
	uint32_t	fei;
	uint8_t		rsvd[10];
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_tcp_term_pdu) == 24, "TermReq PDU");

/* Fatal error status for TermReq. */
#define NVME_TCP_FES_INVALID_HEADER	0x01
#define NVME_TCP_FES_PDU_SEQ_ERROR	0x02
#define NVME_TCP_FES_HDGST_ERROR	0x03
#define NVME_TCP_FES_DATA_OUT_OF_RANGE	0x04
#define NVME_TCP_FES_DATA_LIMIT		0x05
#define NVME_TCP_FES_UNSUPPORTED_PARAM	0x06

struct nvme_tcp_cmd_pdu {
	struct nvme_tcp_hdr hdr;
	struct nvme_sqe	sqe;
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_tcp_cmd_pdu) == 72, "CapsuleCmd PDU");

struct nvme_tcp_rsp_pdu {
	struct nvme_tcp_hdr hdr;
	struct nvme_cqe	cqe;
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_tcp_rsp_pdu) == 24, "CapsuleResp PDU");

struct nvme_tcp_data_pdu {		/* H2CData and C2HData */
	struct nvme_tcp_hdr hdr;
	uint16_t	cccid;
	uint16_t	ttag;		/* H2C only */
	uint32_t	datao;
	uint32_t	datal;
	uint32_t	rsvd;
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_tcp_data_pdu) == 24, "data PDU");

struct nvme_tcp_r2t_pdu {
	struct nvme_tcp_hdr hdr;
	uint16_t	cccid;
	uint16_t	ttag;
	uint32_t	r2to;
	uint32_t	r2tl;
	uint32_t	rsvd;
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_tcp_r2t_pdu) == 24, "R2T PDU");

/* Largest header (with header digest) we ever need to hold at once. */
#define NVME_TCP_MAX_HDR	(sizeof(struct nvme_tcp_ic_pdu))

#endif
