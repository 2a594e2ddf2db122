/*
 * The Linux nbd driver's generic-netlink interface, with plain netlink
 * sockets: the family ID from the generic-netlink controller, then
 * CONNECT (a socket, size, block size, flags and timeouts), DISCONNECT
 * and STATUS.  Netlink is in host byte order, every message and
 * attribute padded to 4 bytes.  The builders and the parser below are
 * pure (tests/unit/test_nbd_netlink.c); the requests at the end block,
 * each bounded by a receive timeout and a count of messages read.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/netlink.h>
#endif

#include "nbd-dev.h"

#define NL_HDR		16		/* struct nlmsghdr */
#define GENL_HDR	4		/* struct genlmsghdr */
#define NLA_HDR		4		/* struct nlattr */
#define NL_ALIGN(n)	(((n) + 3) & ~(size_t)3)
#define NL_MSG_ERROR	2
#define NL_MSG_DONE	3
#define NL_F_REQUEST	0x1
#define NL_F_ACK	0x4
#define NLA_NESTED	0x8000
#define NL_ATTR_TYPE_MASK	0x3fff
#define GENL_CTRL_ID	0x10
#define CTRL_GETFAMILY	3
#define CTRL_FAMILY_ID	1
#define CTRL_FAMILY_NAME 2

#define NL_TIMEOUT_S	10		/* one answer from the kernel */
#define NL_MAX_READS	32		/* messages read for one request */

struct nlbuf {
	uint8_t		*p;
	size_t		len, off;
	bool		full;
};

static void
put(struct nlbuf *b, const void *d, size_t n)
{
	if (b->full || b->off + NL_ALIGN(n) > b->len) {
		b->full = true;
		return;
	}
	memcpy(b->p + b->off, d, n);
	memset(b->p + b->off + n, 0, NL_ALIGN(n) - n);
	b->off += NL_ALIGN(n);
}

static void
put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void
put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* An attribute's header and payload; returns its offset for nesting. */
static size_t
attr(struct nlbuf *b, uint16_t type, const void *d, size_t n)
{
	uint8_t h[NLA_HDR];
	size_t at = b->off;

	put16(h, (uint16_t)(NLA_HDR + n));
	put16(h + 2, type);
	put(b, h, NLA_HDR);
	if (n)
		put(b, d, n);
	return (at);
}

static void
attr_u32(struct nlbuf *b, uint16_t type, uint32_t v)
{
	attr(b, type, &v, 4);
}

static void
attr_u64(struct nlbuf *b, uint16_t type, uint64_t v)
{
	attr(b, type, &v, 8);
}

/* A nested attribute ends here: its length covers what followed. */
static void
nest_end(struct nlbuf *b, size_t at)
{
	if (!b->full)
		put16(b->p + at, (uint16_t)(b->off - at));
}

static void
msg_start(struct nlbuf *b, uint16_t type, uint32_t seq, uint8_t cmd,
    uint8_t version)
{
	uint8_t h[NL_HDR + GENL_HDR] = { 0 };

	put16(h + 4, type);
	put16(h + 6, NL_F_REQUEST | NL_F_ACK);
	put32(h + 8, seq);
	h[NL_HDR] = cmd;
	h[NL_HDR + 1] = version;
	put(b, h, sizeof(h));
}

static size_t
msg_end(struct nlbuf *b)
{
	if (b->full)
		return (0);
	put32(b->p, (uint32_t)b->off);
	return (b->off);
}

size_t
nbdnl_msg_getfamily(uint8_t *buf, size_t len, uint32_t seq)
{
	struct nlbuf b = { .p = buf, .len = len };

	msg_start(&b, GENL_CTRL_ID, seq, CTRL_GETFAMILY, 1);
	attr(&b, CTRL_FAMILY_NAME, NBDNL_FAMILY_NAME,
	    sizeof(NBDNL_FAMILY_NAME));
	return (msg_end(&b));
}

size_t
nbdnl_msg_connect(uint8_t *buf, size_t len, uint16_t family, uint32_t seq,
    const struct nbdnl_connect *c)
{
	struct nlbuf b = { .p = buf, .len = len };
	size_t socks, item;

	msg_start(&b, family, seq, NBDNL_CMD_CONNECT, NBDNL_VERSION);
	attr_u32(&b, NBDNL_ATTR_INDEX, c->index);
	attr_u64(&b, NBDNL_ATTR_SIZE_BYTES, c->size);
	attr_u64(&b, NBDNL_ATTR_BLOCK_SIZE_BYTES, c->block_size);
	attr_u64(&b, NBDNL_ATTR_SERVER_FLAGS, c->server_flags);
	if (c->timeout_s)
		attr_u64(&b, NBDNL_ATTR_TIMEOUT, c->timeout_s);
	if (c->dead_conn_timeout_s)
		attr_u64(&b, NBDNL_ATTR_DEAD_CONN_TIMEOUT,
		    c->dead_conn_timeout_s);
	socks = attr(&b, NBDNL_ATTR_SOCKETS | NLA_NESTED, NULL, 0);
	item = attr(&b, NBDNL_SOCK_ITEM | NLA_NESTED, NULL, 0);
	attr_u32(&b, NBDNL_SOCK_FD, (uint32_t)c->fd);
	nest_end(&b, item);
	nest_end(&b, socks);
	return (msg_end(&b));
}

size_t
nbdnl_msg_index(uint8_t *buf, size_t len, uint16_t family, uint8_t cmd,
    uint32_t seq, uint32_t index)
{
	struct nlbuf b = { .p = buf, .len = len };

	msg_start(&b, family, seq, cmd, NBDNL_VERSION);
	attr_u32(&b, NBDNL_ATTR_INDEX, index);
	return (msg_end(&b));
}

/* ------------------------------------------------------------ parsing */

static uint16_t
get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return (v);
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return (v);
}

/*
 * Walk the attributes in p[0..len): fn for each; -1 if one's length
 * runs past the end or below its header.
 */
static int
attrs(const uint8_t *p, size_t len,
    int (*fn)(uint16_t, const uint8_t *, size_t, void *), void *arg)
{
	size_t off = 0;

	while (len - off >= NLA_HDR) {
		uint16_t alen = get16(p + off);

		if (alen < NLA_HDR || alen > len - off)
			return (-1);
		if (fn(get16(p + off + 2) & NL_ATTR_TYPE_MASK, p + off + NLA_HDR,
		    alen - NLA_HDR, arg) != 0)
			return (-1);
		off += NL_ALIGN(alen);
		if (off > len)
			off = len;
	}
	return (0);
}

static int
ctrl_attr(uint16_t type, const uint8_t *d, size_t n, void *arg)
{
	struct nbdnl_reply *r = arg;

	if (type == CTRL_FAMILY_ID) {
		if (n < 2)
			return (-1);
		r->family = get16(d);
	}
	return (0);
}

static int
device_attr(uint16_t type, const uint8_t *d, size_t n, void *arg)
{
	struct nbdnl_reply *r = arg;

	if (type == NBDNL_DEVICE_INDEX) {
		if (n < 4)
			return (-1);
		r->dev[r->ndev].index = get32(d);
	} else if (type == NBDNL_DEVICE_CONNECTED) {
		if (n < 1)
			return (-1);
		r->dev[r->ndev].connected = d[0] != 0;
	}
	return (0);
}

static int
device_item(uint16_t type, const uint8_t *d, size_t n, void *arg)
{
	struct nbdnl_reply *r = arg;

	if (type != NBDNL_DEVICE_ITEM || r->ndev == NBDNL_MAX_DEVICES)
		return (0);
	r->dev[r->ndev].index = UINT32_MAX;
	r->dev[r->ndev].connected = false;
	if (attrs(d, n, device_attr, r) != 0)
		return (-1);
	r->ndev++;
	return (0);
}

static int
nbd_attr(uint16_t type, const uint8_t *d, size_t n, void *arg)
{
	struct nbdnl_reply *r = arg;

	if (type == NBDNL_ATTR_INDEX) {
		if (n < 4)
			return (-1);
		r->has_index = true;
		r->index = get32(d);
	} else if (type == NBDNL_ATTR_DEVICE_LIST)
		return (attrs(d, n, device_item, r));
	return (0);
}

long
nbdnl_parse(const uint8_t *buf, size_t len, uint32_t seq, bool ctrl,
    struct nbdnl_reply *r)
{
	size_t off = 0;

	while (len - off >= NL_HDR) {
		const uint8_t *m = buf + off;
		uint32_t mlen = get32(m);
		uint16_t type = get16(m + 4);
		size_t next;

		if (mlen < NL_HDR || mlen > len - off)
			return (-1);
		next = off + NL_ALIGN(mlen);
		if (next > len)
			next = len;
		if (get32(m + 8) != seq) {	/* not ours: an old answer */
			off = next;
			continue;
		}
		memset(r, 0, sizeof(*r));
		if (type == NL_MSG_ERROR) {
			int32_t e;

			if (mlen < NL_HDR + 4)
				return (-1);
			memcpy(&e, m + NL_HDR, 4);
			r->ack = true;
			r->error = e < 0 ? -e : e;
		} else if (type == NL_MSG_DONE)
			r->ack = true;
		else {
			if (mlen < NL_HDR + GENL_HDR)
				return (-1);
			if (attrs(m + NL_HDR + GENL_HDR,
			    mlen - NL_HDR - GENL_HDR, ctrl ? ctrl_attr :
			    nbd_attr, r) != 0)
				return (-1);
		}
		return ((long)next);
	}
	return (0);
}

int
nbdnl_device_index(const char *path)
{
	const char *s = path;
	long n = 0;

	if (strncmp(s, "/dev/", 5) == 0)
		s += 5;
	if (strncmp(s, "nbd", 3) != 0)
		return (-1);
	s += 3;
	if (*s < '0' || *s > '9' || (*s == '0' && s[1] != '\0'))
		return (-1);
	for (; *s >= '0' && *s <= '9'; s++) {
		n = n * 10 + (*s - '0');
		if (n > 65535)
			return (-1);
	}
	return (*s == '\0' ? (int)n : -1);
}

/* ------------------------------------------------------------ kernel */

#ifdef __linux__

struct nl {
	int		fd;
	uint32_t	seq;
	uint16_t	family;
};

/* "nbd netlink: WHAT[: errno's text]" */
static int
nl_fail(char *err, size_t errlen, const char *what, int e)
{
	snprintf(err, errlen, "nbd netlink: %s%s%s", what, e ? ": " : "",
	    e ? strerror(e) : "");
	return (-1);
}

/*
 * Send one request, read until its acknowledgement; the last message
 * with data for it in *r (with ack and error set from the end).
 */
static int
nl_request(struct nl *nl, const uint8_t *msg, size_t len, bool ctrl,
    struct nbdnl_reply *r, char *err, size_t errlen)
{
	static uint8_t rx[16384];
	struct nbdnl_reply one, data;
	bool have = false;

	if (send(nl->fd, msg, len, 0) != (ssize_t)len)
		return (nl_fail(err, errlen, "send", errno));
	for (int reads = 0; reads < NL_MAX_READS; reads++) {
		ssize_t n = recv(nl->fd, rx, sizeof(rx), 0);
		size_t off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return (nl_fail(err, errlen, "no answer from the "
			    "kernel", 0));
		if (n < 0)
			return (nl_fail(err, errlen, "recv", errno));
		while (off < (size_t)n) {
			long used = nbdnl_parse(rx + off, (size_t)n - off,
			    nl->seq, ctrl, &one);

			if (used < 0)
				return (nl_fail(err, errlen, "malformed answer",
				    0));
			if (used == 0)
				break;
			off += (size_t)used;
			if (one.ack) {
				if (have)
					*r = data;
				else
					memset(r, 0, sizeof(*r));
				r->ack = true;
				r->error = one.error;
				return (0);
			}
			data = one;
			have = true;
		}
	}
	return (nl_fail(err, errlen, "no acknowledgement", 0));
}

/* A netlink socket and the nbd family's ID. */
static int
nl_open(struct nl *nl, char *err, size_t errlen)
{
	struct timeval tv = { .tv_sec = NL_TIMEOUT_S };
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	uint8_t msg[NBDNL_MSG_MAX];
	struct nbdnl_reply r;
	size_t len;

	nl->seq = (uint32_t)getpid() << 8;
	if ((nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC,
	    NETLINK_GENERIC)) < 0)
		return (nl_fail(err, errlen, "socket", errno));
	if (setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		nl_fail(err, errlen, "socket", errno);
		close(nl->fd);
		return (-1);
	}
	len = nbdnl_msg_getfamily(msg, sizeof(msg), ++nl->seq);
	if (nl_request(nl, msg, len, true, &r, err, errlen) != 0) {
		close(nl->fd);
		return (-1);
	}
	if (r.error != 0 || r.family == 0) {
		if (r.error == ENOENT || (r.error == 0 && r.family == 0))
			snprintf(err, errlen, "the kernel has no nbd driver "
			    "(modprobe nbd)");
		else
			snprintf(err, errlen, "nbd netlink: family lookup: %s",
			    strerror(r.error));
		close(nl->fd);
		return (-1);
	}
	nl->family = r.family;
	return (0);
}

/* One nbd request; the kernel's error, if any, put in words. */
static int
nl_nbd(const uint8_t *msg, size_t len, struct nl *nl, uint32_t index,
    const char *what, struct nbdnl_reply *r, char *err, size_t errlen)
{
	int rc = nl_request(nl, msg, len, false, r, err, errlen);

	close(nl->fd);
	if (rc != 0)
		return (-1);
	switch (r->error) {
	case 0:
		return (0);
	case EBUSY:
		snprintf(err, errlen, "/dev/nbd%u is in use", index);
		break;
	case EPERM:
	case EACCES:
		snprintf(err, errlen, "nbd %s: not permitted (needs "
		    "CAP_SYS_ADMIN)", what);
		break;
	case EINVAL:
		snprintf(err, errlen, "nbd %s of /dev/nbd%u: refused by the "
		    "kernel (invalid argument)", what, index);
		break;
	default:
		snprintf(err, errlen, "nbd %s of /dev/nbd%u: %s", what, index,
		    strerror(r->error));
	}
	return (-1);
}

int
nbdnl_connect(const struct nbdnl_connect *c, char *err, size_t errlen)
{
	uint8_t msg[NBDNL_MSG_MAX];
	struct nbdnl_reply r;
	struct nl nl;
	size_t len;

	if (nl_open(&nl, err, errlen) != 0)
		return (-1);
	len = nbdnl_msg_connect(msg, sizeof(msg), nl.family, ++nl.seq, c);
	return (nl_nbd(msg, len, &nl, c->index, "connect", &r, err, errlen));
}

int
nbdnl_disconnect(uint32_t index, char *err, size_t errlen)
{
	uint8_t msg[NBDNL_MSG_MAX];
	struct nbdnl_reply r;
	struct nl nl;
	size_t len;

	if (nl_open(&nl, err, errlen) != 0)
		return (-1);
	len = nbdnl_msg_index(msg, sizeof(msg), nl.family, NBDNL_CMD_DISCONNECT,
	    ++nl.seq, index);
	return (nl_nbd(msg, len, &nl, index, "disconnect", &r, err, errlen));
}

int
nbdnl_status(uint32_t index, bool *connected, char *err, size_t errlen)
{
	uint8_t msg[NBDNL_MSG_MAX];
	struct nbdnl_reply r;
	struct nl nl;
	size_t len;

	if (nl_open(&nl, err, errlen) != 0)
		return (-1);
	len = nbdnl_msg_index(msg, sizeof(msg), nl.family, NBDNL_CMD_STATUS,
	    ++nl.seq, index);
	if (nl_nbd(msg, len, &nl, index, "status", &r, err, errlen) != 0)
		return (-1);
	*connected = false;
	for (int i = 0; i < r.ndev; i++)
		if (r.dev[i].index == index)
			*connected = r.dev[i].connected;
	return (0);
}

#else	/* !__linux__ */

static int
no_nbd(char *err, size_t errlen)
{
	snprintf(err, errlen, "kernel NBD devices need Linux");
	return (-1);
}

int
nbdnl_connect(const struct nbdnl_connect *c, char *err, size_t errlen)
{
	return (no_nbd(err, errlen));
}

int
nbdnl_disconnect(uint32_t index, char *err, size_t errlen)
{
	return (no_nbd(err, errlen));
}

int
nbdnl_status(uint32_t index, bool *connected, char *err, size_t errlen)
{
	return (no_nbd(err, errlen));
}

#endif
