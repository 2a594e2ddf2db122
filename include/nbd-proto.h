/*
 * The NBD protocol on the wire (big-endian): fixed newstyle handshake,
 * options, requests and replies, and the pure helpers of nbd-proto.c
 * that parse and check them.
 */
#ifndef NVMFD_NBD_PROTO_H
#define NVMFD_NBD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NBD_MAGIC		0x4e42444d41474943ull	/* "NBDMAGIC" */
#define NBD_IHAVEOPT		0x49484156454f5054ull	/* "IHAVEOPT" */
#define NBD_REP_MAGIC		0x0003e889045565a9ull

/* handshake flags (server), client flags */
#define NBD_FLAG_FIXED_NEWSTYLE	(1u << 0)
#define NBD_FLAG_NO_ZEROES	(1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES	NBD_FLAG_NO_ZEROES

/* options */
#define NBD_OPT_EXPORT_NAME	1
#define NBD_OPT_ABORT		2
#define NBD_OPT_LIST		3
#define NBD_OPT_STARTTLS	5
#define NBD_OPT_INFO		6
#define NBD_OPT_GO		7
#define NBD_OPT_STRUCTURED_REPLY 8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT 10
#define NBD_OPT_EXTENDED_HEADERS 11

/* option replies */
#define NBD_REP_ACK		1
#define NBD_REP_SERVER		2
#define NBD_REP_INFO		3
#define NBD_REP_META_CONTEXT	4
#define NBD_REP_FLAG_ERROR	(1u << 31)
#define NBD_REP_ERR_UNSUP	(NBD_REP_FLAG_ERROR | 1)
#define NBD_REP_ERR_POLICY	(NBD_REP_FLAG_ERROR | 2)
#define NBD_REP_ERR_INVALID	(NBD_REP_FLAG_ERROR | 3)
#define NBD_REP_ERR_PLATFORM	(NBD_REP_FLAG_ERROR | 4)
#define NBD_REP_ERR_TLS_REQD	(NBD_REP_FLAG_ERROR | 5)
#define NBD_REP_ERR_UNKNOWN	(NBD_REP_FLAG_ERROR | 6)
#define NBD_REP_ERR_SHUTDOWN	(NBD_REP_FLAG_ERROR | 7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8)
#define NBD_REP_ERR_TOO_BIG	(NBD_REP_FLAG_ERROR | 9)
#define NBD_REP_ERR_EXT_HEADER_REQD (NBD_REP_FLAG_ERROR | 10)

/* NBD_REP_INFO types */
#define NBD_INFO_EXPORT		0
#define NBD_INFO_NAME		1
#define NBD_INFO_DESCRIPTION	2
#define NBD_INFO_BLOCK_SIZE	3

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS	(1u << 0)
#define NBD_FLAG_READ_ONLY	(1u << 1)
#define NBD_FLAG_SEND_FLUSH	(1u << 2)
#define NBD_FLAG_SEND_FUA	(1u << 3)
#define NBD_FLAG_ROTATIONAL	(1u << 4)
#define NBD_FLAG_SEND_TRIM	(1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF	(1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN	(1u << 8)
#define NBD_FLAG_SEND_CACHE	(1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO	(1u << 11)

/* requests */
#define NBD_REQUEST_MAGIC	0x25609513u
#define NBD_REQUEST_LEN		28
#define NBD_CMD_READ		0
#define NBD_CMD_WRITE		1
#define NBD_CMD_DISC		2
#define NBD_CMD_FLUSH		3
#define NBD_CMD_TRIM		4
#define NBD_CMD_CACHE		5
#define NBD_CMD_WRITE_ZEROES	6
#define NBD_CMD_BLOCK_STATUS	7
#define NBD_CMD_FLAG_FUA	(1u << 0)
#define NBD_CMD_FLAG_NO_HOLE	(1u << 1)
#define NBD_CMD_FLAG_DF		(1u << 2)
#define NBD_CMD_FLAG_REQ_ONE	(1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO	(1u << 4)
#define NBD_CMD_FLAG_PAYLOAD_LEN (1u << 5)	/* extended headers only */

/* extended headers: 64-bit lengths both ways */
#define NBD_EXT_REQUEST_MAGIC	0x21e41c71u
#define NBD_EXT_REQUEST_LEN	32
#define NBD_EXT_REPLY_MAGIC	0x6e8a278cu
#define NBD_EXT_REPLY_LEN	32

/* replies */
#define NBD_SIMPLE_REPLY_MAGIC	0x67446698u
#define NBD_SIMPLE_REPLY_LEN	16
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu
#define NBD_STRUCTURED_REPLY_LEN 20
#define NBD_REPLY_FLAG_DONE	(1u << 0)
#define NBD_REPLY_TYPE_NONE	0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_BLOCK_STATUS_EXT 6
#define NBD_REPLY_TYPE_ERROR	((1u << 15) | 1)

/* errors */
#define NBD_EPERM		1
#define NBD_EIO			5
#define NBD_ENOMEM		12
#define NBD_EINVAL		22
#define NBD_ENOSPC		28
#define NBD_EOVERFLOW		75
#define NBD_ENOTSUP		95
#define NBD_ESHUTDOWN		108

/* Our limits on hostile input. */
#define NBD_OPT_MAX_LEN		4096	/* option data we read */
#define NBD_NAME_MAX		255	/* export name bytes */
#define NBD_INFO_REQ_MAX	16	/* info types one GO may ask for */

/* The one metadata context: allocation, and the ID we give it. */
#define NBD_META_BASE_ALLOC	"base:allocation"
#define NBD_META_ALLOC_ID	1

/* What the handshake negotiated, as far as requests care. */
#define NBD_NEG_STRUCTURED	(1u << 0)
#define NBD_NEG_EXTENDED	(1u << 1)
#define NBD_NEG_META_ALLOC	(1u << 2)

struct nbd_request {
	uint16_t	flags;
	uint16_t	type;
	uint64_t	cookie;
	uint64_t	offset;
	uint64_t	length;		/* 32 bits unless extended headers */
};

/* What a request is checked against. */
struct nbd_geom {
	uint64_t	size;		/* bytes */
	uint32_t	block;		/* minimum block size */
	uint32_t	max_payload;	/* largest READ/WRITE */
	bool		readonly, flush, trim, zeroes, fua;
};

/* LIST_ or SET_META_CONTEXT data, parsed. */
struct nbd_meta {
	char		name[NBD_NAME_MAX + 1];
	bool		alloc;		/* base:allocation selected or listed */
};

struct nbd_go {
	char		name[NBD_NAME_MAX + 1];
	uint16_t	info[NBD_INFO_REQ_MAX];
	int		ninfo;
};

static inline uint16_t
nbd_get16(const uint8_t *p)
{
	return ((uint16_t)(p[0] << 8 | p[1]));
}
static inline uint32_t
nbd_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3]);
}
static inline uint64_t
nbd_get64(const uint8_t *p)
{
	return ((uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4));
}
static inline void
nbd_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = (uint8_t)v;
}
static inline void
nbd_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void
nbd_put64(uint8_t *p, uint64_t v)
{
	nbd_put32(p, (uint32_t)(v >> 32));
	nbd_put32(p + 4, (uint32_t)v);
}

/* nbd-proto.c */
/* Option header (16 bytes): 0, or -1 on a bad magic. */
int	nbd_parse_opt_hdr(const uint8_t *p, uint32_t *opt, uint32_t *len);
/* GO/INFO data: 0, or the NBD_REP_ERR_* to answer. */
uint32_t nbd_parse_go(const uint8_t *data, uint32_t len, struct nbd_go *);
/* META_CONTEXT data (LIST if list): 0, or the NBD_REP_ERR_* to answer. */
uint32_t nbd_parse_meta(const uint8_t *data, uint32_t len, bool list,
	    struct nbd_meta *);
/* Request header, 28 bytes or extended 32: 0, or -1 on a bad magic. */
int	nbd_parse_request(const uint8_t *p, bool ext, struct nbd_request *);
/* A request against the export and what was negotiated (NBD_NEG_*):
 * 0, or the NBD error to answer. */
uint32_t nbd_check_request(const struct nbd_request *, const struct nbd_geom *,
	    unsigned neg);
/* An NVMe status (SCT << 8 | SC, DNR allowed) as an NBD error. */
uint32_t nbd_errno_from_nvme(uint16_t status);
/* Reply headers; return their length. */
size_t	nbd_simple_reply(uint8_t *out, uint32_t error, uint64_t cookie);
size_t	nbd_structured_reply(uint8_t *out, uint16_t flags, uint16_t type,
	    uint64_t cookie, uint32_t len);
size_t	nbd_ext_reply(uint8_t *out, uint16_t flags, uint16_t type,
	    uint64_t cookie, uint64_t offset, uint64_t len);
size_t	nbd_opt_reply(uint8_t *out, uint32_t opt, uint32_t type, uint32_t len);
uint16_t nbd_transmission_flags(const struct nbd_geom *, unsigned neg);

#endif
