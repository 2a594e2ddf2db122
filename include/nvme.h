/*
 * NVMe and NVMe over Fabrics wire structures and constants (controller view).
 * All multi-byte fields are little-endian on the wire.
 */
#ifndef NVMFD_NVME_H
#define NVMFD_NVME_H

#include <stdint.h>
#include <string.h>

/* Submission queue entry (64 bytes). */
struct nvme_sqe {
	uint8_t		opc;
	uint8_t		flags;		/* FUSE[1:0], PSDT[7:6] */
	uint16_t	cid;
	uint32_t	nsid;
	uint32_t	cdw2;
	uint32_t	cdw3;
	uint64_t	mptr;
	uint8_t		sgl[16];	/* DPTR: SGL descriptor 1 */
	uint32_t	cdw10;
	uint32_t	cdw11;
	uint32_t	cdw12;
	uint32_t	cdw13;
	uint32_t	cdw14;
	uint32_t	cdw15;
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_sqe) == 64, "SQE is 64 bytes");

/* FUSE (flags bits 1:0): a fused pair's first and second command. */
#define NVME_FUSE_MASK			0x3
#define NVME_FUSE_FIRST			0x1
#define NVME_FUSE_SECOND		0x2

/* Completion queue entry (16 bytes). */
struct nvme_cqe {
	uint32_t	dw0;
	uint32_t	dw1;
	uint16_t	sqhd;
	uint16_t	sqid;
	uint16_t	cid;
	uint16_t	status;		/* P bit 0, SC 8:1, SCT 11:9, CRD 13:12, M 14, DNR 15 */
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_cqe) == 16, "CQE is 16 bytes");

/* SGL descriptor identifiers (byte 15 of the descriptor). */
#define NVME_SGL_DATA_BLOCK_OFFSET	0x01	/* in-capsule data */
#define NVME_SGL_TRANSPORT_DATA_BLOCK	0x5a	/* data moved by R2T/H2C or C2H */

/* Status: (SCT << 8) | SC, shifted into place by nvme_status(). */
#define NVME_SCT_GENERIC		0x0
#define NVME_SCT_CMD_SPECIFIC		0x1
#define NVME_SCT_MEDIA			0x2
#define NVME_SC(sct, sc)		((uint16_t)(((sct) << 8) | (sc)))
#define NVME_DNR			0x8000	/* in the encoded status word */
#define NVME_STATUS_MORE		0x4000	/* M: see the error log */
/* A status as cmd_complete_status() takes it, with Do Not Retry set. */
#define NVME_SC_DNR(sc)			((uint16_t)((sc) | NVME_DNR >> 1))

#define NVME_SC_SUCCESS			NVME_SC(0, 0x00)
#define NVME_SC_INVALID_OPCODE		NVME_SC(0, 0x01)
#define NVME_SC_INVALID_FIELD		NVME_SC(0, 0x02)
#define NVME_SC_CMDID_CONFLICT		NVME_SC(0, 0x03)
#define NVME_SC_DATA_XFER_ERROR		NVME_SC(0, 0x04)
#define NVME_SC_INTERNAL		NVME_SC(0, 0x06)
#define NVME_SC_ABORT_REQ		NVME_SC(0, 0x07)
#define NVME_SC_ABORT_SQ_DELETED	NVME_SC(0, 0x08)
#define NVME_SC_FUSED_FAILED		NVME_SC(0, 0x09)
#define NVME_SC_FUSED_MISSING		NVME_SC(0, 0x0a)
#define NVME_SC_INVALID_NS		NVME_SC(0, 0x0b)
#define NVME_SC_CMD_SEQ_ERROR		NVME_SC(0, 0x0c)
#define NVME_SC_SGL_INVALID_LAST	NVME_SC(0, 0x0d)
#define NVME_SC_SGL_INVALID_COUNT	NVME_SC(0, 0x0e)
#define NVME_SC_SGL_INVALID_DATA_LEN	NVME_SC(0, 0x0f)
#define NVME_SC_SGL_INVALID_TYPE	NVME_SC(0, 0x11)
#define NVME_SC_SGL_INVALID_OFFSET	NVME_SC(0, 0x16)
#define NVME_SC_HOSTID_INCONSISTENT	NVME_SC(0, 0x18)
#define NVME_SC_NS_WRITE_PROTECTED	NVME_SC(0, 0x20)
#define NVME_SC_LBA_RANGE		NVME_SC(0, 0x80)
#define NVME_SC_CAP_EXCEEDED		NVME_SC(0, 0x81)
#define NVME_SC_NS_NOT_READY		NVME_SC(0, 0x82)
#define NVME_SC_RESV_CONFLICT		NVME_SC(0, 0x83)
#define NVME_SC_INVALID_QUEUE_SIZE	NVME_SC(1, 0x02)
#define NVME_SC_AER_LIMIT		NVME_SC(1, 0x05)
#define NVME_SC_CMD_SIZE_LIMIT		NVME_SC(1, 0x83)	/* Copy */
#define NVME_SC_INVALID_LOG_PAGE	NVME_SC(1, 0x09)
#define NVME_SC_FEATURE_NOT_SAVEABLE	NVME_SC(1, 0x0d)
#define NVME_SC_FEATURE_NOT_CHANGEABLE	NVME_SC(1, 0x0e)
#define NVME_SC_CONNECT_FORMAT		NVME_SC(1, 0x80)
#define NVME_SC_CONNECT_CTRL_BUSY	NVME_SC(1, 0x81)
#define NVME_SC_CONNECT_INVALID_PARAM	NVME_SC(1, 0x82)
#define NVME_SC_CONNECT_RESTART_DISC	NVME_SC(1, 0x83)
#define NVME_SC_CONNECT_INVALID_HOST	NVME_SC(1, 0x84)
#define NVME_SC_AUTH_REQUIRED		NVME_SC(1, 0x91)
#define NVMF_CONNECT_AUTHREQ_ATR	(1u << 17)	/* Connect DW0 */
#define NVME_SC_WRITE_FAULT		NVME_SC(2, 0x80)
#define NVME_SC_READ_ERROR		NVME_SC(2, 0x81)
#define NVME_SC_COMPARE_FAILED		NVME_SC(2, 0x85)
/* Path related (SCT 3h): the host retries on another path. */
#define NVME_SCT_PATH			0x3
#define NVME_SC_ANA_PERSISTENT_LOSS	NVME_SC(3, 0x01)
#define NVME_SC_ANA_INACCESSIBLE	NVME_SC(3, 0x02)
#define NVME_SC_ANA_TRANSITION		NVME_SC(3, 0x03)

/* Admin opcodes. */
#define NVME_ADM_GET_LOG_PAGE		0x02
#define NVME_ADM_IDENTIFY		0x06
#define NVME_ADM_ABORT			0x08
#define NVME_ADM_SET_FEATURES		0x09
#define NVME_ADM_GET_FEATURES		0x0a
#define NVME_ADM_ASYNC_EVENT		0x0c
#define NVME_ADM_KEEP_ALIVE		0x18
#define NVME_FABRICS_COMMAND		0x7f

/* NVM opcodes. */
#define NVME_CMD_FLUSH			0x00
#define NVME_CMD_WRITE			0x01
#define NVME_CMD_READ			0x02
#define NVME_CMD_WRITE_UNCOR		0x04
#define NVME_CMD_COMPARE		0x05
#define NVME_CMD_WRITE_ZEROES		0x08
#define NVME_CMD_DSM			0x09
#define NVME_CMD_VERIFY			0x0C
#define NVME_CMD_COPY			0x19

/* Fabrics command types (SQE byte 4). */
#define NVMF_FCTYPE_PROPERTY_SET	0x00
#define NVMF_FCTYPE_CONNECT		0x01
#define NVMF_FCTYPE_PROPERTY_GET	0x04
#define NVMF_FCTYPE_AUTH_SEND		0x05
#define NVMF_FCTYPE_AUTH_RECV		0x06
#define NVMF_FCTYPE_DISCONNECT		0x08

/* Connect data (1024 bytes, in-capsule). */
struct nvmf_connect_data {
	uint8_t		hostid[16];
	uint16_t	cntlid;
	uint8_t		rsvd18[238];
	char		subnqn[256];
	char		hostnqn[256];
	uint8_t		rsvd768[256];
} __attribute__((packed));
_Static_assert(sizeof(struct nvmf_connect_data) == 1024, "connect data is 1 KiB");

#define NVMF_CONNECT_DATA_CNTLID_OFF	16
#define NVMF_CONNECT_DATA_SUBNQN_OFF	256
#define NVMF_CONNECT_DATA_HOSTNQN_OFF	512
#define NVMF_CNTLID_DYNAMIC		0xffff
#define NVMF_CNTLID_MAX			0xffef	/* dynamic IDs: 1..0xffef */
#define NVMF_CATTR_DISABLE_SQFLOW	(1u << 2)

/* Controller properties (register offsets). */
#define NVME_REG_CAP			0x00
#define NVME_REG_VS			0x08
#define NVME_REG_CC			0x14
#define NVME_REG_CSTS			0x1c
#define NVME_REG_NSSR			0x20

#define NVME_CC_EN			(1u << 0)
#define NVME_CC_SHN_SHIFT		14
#define NVME_CC_SHN_MASK		(3u << 14)
#define NVME_CSTS_RDY			(1u << 0)
#define NVME_CSTS_CFS			(1u << 1)
#define NVME_CSTS_SHST_COMPLETE		(2u << 2)
#define NVME_CSTS_SHST_MASK		(3u << 2)

#define NVME_VS(maj, min, ter)		(((maj) << 16) | ((min) << 8) | (ter))

/* Identify CNS values. */
#define NVME_ID_CNS_NS			0x00
#define NVME_ID_CNS_CTRL		0x01
#define NVME_ID_CNS_NS_ACTIVE_LIST	0x02
#define NVME_ID_CNS_NS_DESC_LIST	0x03
#define NVME_ID_CNS_CS_NS		0x05
#define NVME_ID_CNS_CS_CTRL		0x06
#define NVME_ID_CNS_NS_CS_INDEP		0x08

/* Namespace identification descriptor types and exact lengths. */
#define NVME_NIDT_EUI64			0x01
#define NVME_NIDT_NGUID			0x02
#define NVME_NIDT_UUID			0x03
#define NVME_NIDT_CSI			0x04

/* NSID meaning every namespace. */
#define NVME_NSID_ALL			0xffffffffu

/* Log page identifiers. */
#define NVME_LOG_ERROR			0x01
#define NVME_LOG_SMART			0x02
#define NVME_LOG_FW_SLOT		0x03
#define NVME_LOG_CHANGED_NS		0x04
#define NVME_LOG_CMD_EFFECTS		0x05
#define NVME_LOG_ANA			0x0c
#define NVME_LOG_DISCOVERY		0x70

/* Feature identifiers. */
#define NVME_FEAT_ARBITRATION		0x01
#define NVME_FEAT_POWER_MGMT		0x02
#define NVME_FEAT_TEMP_THRESH		0x04
#define NVME_FEAT_ERR_RECOVERY		0x05
#define NVME_FEAT_VOLATILE_WC		0x06
#define NVME_FEAT_NUM_QUEUES		0x07
#define NVME_FEAT_IRQ_COALESCE		0x08
#define NVME_FEAT_WRITE_ATOMIC		0x0a
#define NVME_FEAT_ASYNC_EVENT		0x0b
#define NVME_FEAT_KATO			0x0f
#define NVME_FEAT_HOST_ID		0x81

/* Asynchronous event configuration bits and completion values. */
#define NVME_AEN_CFG_NS_ATTR		(1u << 8)
#define NVME_AEN_CFG_ANA_CHANGE		(1u << 11)
#define NVME_AEN_CFG_DISC_CHANGE	(1u << 31)
#define NVME_AER_NS_CHANGED		0x00040002u
#define NVME_AER_ANA_CHANGED		0x000c0302u
#define NVME_AER_DISC_CHANGED		0x0070f002u

/* Discovery log page. */
#define NVMF_DISCOVERY_NQN		"nqn.2014-08.org.nvmexpress.discovery"
#define NVMF_TRTYPE_TCP			3
#define NVMF_ADRFAM_IPV4		1
#define NVMF_ADRFAM_IPV6		2
#define NVMF_SUBTYPE_REFERRAL		1
#define NVMF_SUBTYPE_NVME		2
#define NVMF_SUBTYPE_CURRENT_DISC	3
#define NVMF_TREQ_NOT_SPECIFIED		0
#define NVMF_TREQ_REQUIRED		1
#define NVMF_TREQ_NOT_REQUIRED		2
#define NVMF_TREQ_DISABLE_SQFLOW	(1u << 2)
#define NVMF_TCP_SECTYPE_NONE		0
#define NVMF_TCP_SECTYPE_TLS13		2
#define NVMF_DISC_EFLAGS_DUPRETINFO	(1u << 0)
#define NVMF_DISC_EFLAGS_EPCSD		(1u << 1)

struct nvmf_disc_log_hdr {
	uint64_t	genctr;
	uint64_t	numrec;
	uint16_t	recfmt;
	uint8_t		rsvd18[1006];
} __attribute__((packed));
_Static_assert(sizeof(struct nvmf_disc_log_hdr) == 1024, "discovery log header");

struct nvmf_disc_log_entry {
	uint8_t		trtype;
	uint8_t		adrfam;
	uint8_t		subtype;
	uint8_t		treq;
	uint16_t	portid;
	uint16_t	cntlid;
	uint16_t	asqsz;
	uint16_t	eflags;
	uint8_t		rsvd12[20];
	char		trsvcid[32];
	uint8_t		rsvd64[192];
	char		subnqn[256];
	char		traddr[256];
	uint8_t		tsas[256];
} __attribute__((packed));
_Static_assert(sizeof(struct nvmf_disc_log_entry) == 1024, "discovery log entry");

/* Little-endian accessors for building data structures by offset. */
static inline void put_le16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static inline void put_le32(uint8_t *p, uint32_t v)
{ p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24; }
static inline void put_le64(uint8_t *p, uint64_t v)
{ put_le32(p, (uint32_t)v); put_le32(p + 4, (uint32_t)(v >> 32)); }
static inline uint16_t get_le16(const uint8_t *p) { return p[0] | (p[1] << 8); }
static inline uint32_t get_le32(const uint8_t *p)
{ return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24); }
static inline uint64_t get_le64(const uint8_t *p)
{ return get_le32(p) | ((uint64_t)get_le32(p + 4) << 32); }

/* Copy a string into a fixed-width field padded with spaces (SN, MN, FR, TRADDR). */
static inline void put_padded(void *dst, size_t width, const char *s)
{
	size_t n = strlen(s);

	if (n > width)
		n = width;
	memset(dst, ' ', width);
	memcpy(dst, s, n);
}

#endif
