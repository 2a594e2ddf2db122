/*
 * NBD protocol helpers without I/O: parsing and checking what a client
 * sends (all of it hostile) and building reply headers.  The server in
 * nbd-server.c calls them; unit tests call them directly.
 */
#include "config.h"

#include <string.h>

#include "nvme.h"
#include "nbd-proto.h"

int
nbd_parse_opt_hdr(const uint8_t *p, uint32_t *opt, uint32_t *len)
{
	if (nbd_get64(p) != NBD_IHAVEOPT)
		return (-1);
	*opt = nbd_get32(p + 8);
	*len = nbd_get32(p + 12);
	return (0);
}

/* u32 name length, name, u16 count, count u16 info types: exactly. */
uint32_t
nbd_parse_go(const uint8_t *data, uint32_t len, struct nbd_go *go)
{
	uint32_t nlen;
	uint16_t n;

	memset(go, 0, sizeof(*go));
	if (len < 6)
		return (NBD_REP_ERR_INVALID);
	nlen = nbd_get32(data);
	if (nlen > len - 6)
		return (NBD_REP_ERR_INVALID);
	if (nlen > NBD_NAME_MAX)
		return (NBD_REP_ERR_TOO_BIG);
	n = nbd_get16(data + 4 + nlen);
	if ((uint64_t)len != 6ull + nlen + 2ull * n)
		return (NBD_REP_ERR_INVALID);
	if (memchr(data + 4, '\0', nlen) != NULL)
		return (NBD_REP_ERR_INVALID);
	memcpy(go->name, data + 4, nlen);
	go->name[nlen] = '\0';
	for (uint16_t i = 0; i < n; i++) {
		uint16_t t = nbd_get16(data + 6 + nlen + 2 * i);

		/* Repeats and unknown types are harmless: keep the first. */
		if (go->ninfo < NBD_INFO_REQ_MAX)
			go->info[go->ninfo++] = t;
	}
	return (0);
}

/*
 * u32 name length, name, u32 query count, then each query as u32 length
 * and string: exactly.  base:allocation is the only context; a LIST with
 * no query, or with the namespace query "base:", names it too.
 */
uint32_t
nbd_parse_meta(const uint8_t *data, uint32_t len, bool list,
    struct nbd_meta *m)
{
	static const char alloc[] = NBD_META_BASE_ALLOC;
	uint32_t nlen, nq, off;

	memset(m, 0, sizeof(*m));
	if (len < 8)
		return (NBD_REP_ERR_INVALID);
	nlen = nbd_get32(data);
	if (nlen > len - 8)
		return (NBD_REP_ERR_INVALID);
	if (nlen > NBD_NAME_MAX)
		return (NBD_REP_ERR_TOO_BIG);
	if (memchr(data + 4, '\0', nlen) != NULL)
		return (NBD_REP_ERR_INVALID);
	memcpy(m->name, data + 4, nlen);
	m->name[nlen] = '\0';
	off = 4 + nlen;
	nq = nbd_get32(data + off);
	off += 4;
	if (list && nq == 0)
		m->alloc = true;
	/* Each query takes 4 bytes at least: a lying count runs out. */
	for (uint32_t i = 0; i < nq; i++) {
		const uint8_t *q;
		uint32_t qlen;

		if (len - off < 4)
			return (NBD_REP_ERR_INVALID);
		qlen = nbd_get32(data + off);
		off += 4;
		if (qlen > len - off)
			return (NBD_REP_ERR_INVALID);
		q = data + off;
		off += qlen;
		/* A query starts with a namespace and its colon. */
		if (memchr(q, ':', qlen) == NULL ||
		    memchr(q, '\0', qlen) != NULL)
			return (NBD_REP_ERR_INVALID);
		if (qlen == sizeof(alloc) - 1 && memcmp(q, alloc, qlen) == 0)
			m->alloc = true;
		else if (list && qlen == 5 && memcmp(q, "base:", 5) == 0)
			m->alloc = true;
	}
	if (off != len)
		return (NBD_REP_ERR_INVALID);
	return (0);
}

int
nbd_parse_request(const uint8_t *p, bool ext, struct nbd_request *r)
{
	if (nbd_get32(p) != (ext ? NBD_EXT_REQUEST_MAGIC : NBD_REQUEST_MAGIC))
		return (-1);
	r->flags = nbd_get16(p + 4);
	r->type = nbd_get16(p + 6);
	r->cookie = nbd_get64(p + 8);
	r->offset = nbd_get64(p + 16);
	r->length = ext ? nbd_get64(p + 24) : nbd_get32(p + 24);
	return (0);
}

static bool
is_write(uint16_t type)
{
	return (type == NBD_CMD_WRITE || type == NBD_CMD_TRIM ||
	    type == NBD_CMD_WRITE_ZEROES);
}

uint32_t
nbd_check_request(const struct nbd_request *r, const struct nbd_geom *g,
    unsigned neg)
{
	uint16_t allowed = 0;

	switch (r->type) {
	case NBD_CMD_DISC:
		return (0);
	case NBD_CMD_FLUSH:
		if (r->offset != 0 || r->length != 0 || r->flags != 0)
			return (NBD_EINVAL);
		return (0);
	case NBD_CMD_READ:
		/* One data chunk is all we ever send: DF holds anyway. */
		if (neg & NBD_NEG_STRUCTURED)
			allowed = NBD_CMD_FLAG_DF;
		break;
	case NBD_CMD_CACHE:
		break;
	case NBD_CMD_WRITE:
		allowed = NBD_CMD_FLAG_FUA;
		/* A write's length is its payload's: the flag changes nothing. */
		if (neg & NBD_NEG_EXTENDED)
			allowed |= NBD_CMD_FLAG_PAYLOAD_LEN;
		break;
	case NBD_CMD_TRIM:
		if (!g->trim)
			return (NBD_EINVAL);
		allowed = NBD_CMD_FLAG_FUA;
		break;
	case NBD_CMD_WRITE_ZEROES:
		if (!g->zeroes)
			return (NBD_EINVAL);
		allowed = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE |
		    NBD_CMD_FLAG_FAST_ZERO;
		break;
	case NBD_CMD_BLOCK_STATUS:
		if (!(neg & NBD_NEG_META_ALLOC))
			return (NBD_EINVAL);
		allowed = NBD_CMD_FLAG_REQ_ONE;
		break;
	default:
		return (NBD_EINVAL);
	}
	if (r->flags & ~allowed)
		return (NBD_EINVAL);
	if (is_write(r->type) && g->readonly)
		return (NBD_EPERM);
	if (r->length == 0 || r->offset % g->block || r->length % g->block)
		return (NBD_EINVAL);
	if (r->offset > g->size || r->length > g->size - r->offset)
		return (is_write(r->type) ? NBD_ENOSPC : NBD_EINVAL);
	if ((r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE) &&
	    r->length > g->max_payload)
		return (NBD_EINVAL);
	return (0);
}

/* For I/O commands: their command specific codes are read as such. */
uint32_t
nbd_errno_from_nvme(uint16_t status)
{
	switch (status & 0x7ff) {
	case NVME_SC_SUCCESS:
		return (0);
	case NVME_SC_NS_WRITE_PROTECTED:
	case NVME_SC(1, 0x82):		/* write to a read-only range */
	case NVME_SC(2, 0x86):		/* access denied */
		return (NBD_EPERM);
	case NVME_SC_CAP_EXCEEDED:
		return (NBD_ENOSPC);
	case NVME_SC_LBA_RANGE:
	case NVME_SC_INVALID_FIELD:
	case NVME_SC_INVALID_NS:
	case NVME_SC_SGL_INVALID_DATA_LEN:
		return (NBD_EINVAL);
	case NVME_SC_INVALID_OPCODE:
		return (NBD_ENOTSUP);
	default:
		return (NBD_EIO);
	}
}

size_t
nbd_simple_reply(uint8_t *out, uint32_t error, uint64_t cookie)
{
	nbd_put32(out, NBD_SIMPLE_REPLY_MAGIC);
	nbd_put32(out + 4, error);
	nbd_put64(out + 8, cookie);
	return (NBD_SIMPLE_REPLY_LEN);
}

size_t
nbd_structured_reply(uint8_t *out, uint16_t flags, uint16_t type,
    uint64_t cookie, uint32_t len)
{
	nbd_put32(out, NBD_STRUCTURED_REPLY_MAGIC);
	nbd_put16(out + 4, flags);
	nbd_put16(out + 6, type);
	nbd_put64(out + 8, cookie);
	nbd_put32(out + 16, len);
	return (NBD_STRUCTURED_REPLY_LEN);
}

size_t
nbd_ext_reply(uint8_t *out, uint16_t flags, uint16_t type, uint64_t cookie,
    uint64_t offset, uint64_t len)
{
	nbd_put32(out, NBD_EXT_REPLY_MAGIC);
	nbd_put16(out + 4, flags);
	nbd_put16(out + 6, type);
	nbd_put64(out + 8, cookie);
	nbd_put64(out + 16, offset);
	nbd_put64(out + 24, len);
	return (NBD_EXT_REPLY_LEN);
}

size_t
nbd_opt_reply(uint8_t *out, uint32_t opt, uint32_t type, uint32_t len)
{
	nbd_put64(out, NBD_REP_MAGIC);
	nbd_put32(out + 8, opt);
	nbd_put32(out + 12, type);
	nbd_put32(out + 16, len);
	return (20);
}

/*
 * CAN_MULTI_CONN holds: FLUSH becomes an NVMe Flush of the namespace,
 * which covers every write the controller completed, whichever queue or
 * NBD connection carried it.  FAST_ZERO holds too: Write Zeroes moves no
 * data over the fabric, where a WRITE of zeroes would move all of it.
 */
uint16_t
nbd_transmission_flags(const struct nbd_geom *g, unsigned neg)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
	    NBD_FLAG_SEND_CACHE | NBD_FLAG_CAN_MULTI_CONN;

	if (neg & NBD_NEG_STRUCTURED)
		f |= NBD_FLAG_SEND_DF;

	if (g->readonly)
		return (f | NBD_FLAG_READ_ONLY);
	f |= NBD_FLAG_SEND_FUA;
	if (g->trim)
		f |= NBD_FLAG_SEND_TRIM;
	if (g->zeroes)
		f |= NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
	return (f);
}
