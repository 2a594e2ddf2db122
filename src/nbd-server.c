/*
 * The NBD server: remote namespaces (host.c) served as NBD exports, fixed
 * newstyle handshake then transmission.  The handshake runs on the main
 * loop; at GO (or EXPORT_NAME) the connection moves to the loop of the
 * association's lane it is placed on (host-lane.c), so its requests reach
 * their NVMe/TCP queue on the thread that owns it.  The main loop keeps
 * the connection listed (exports, clients, shutdown) and reaches it there
 * only by message: close, and the last step of freeing it.
 *
 * Each connection owns NBD_SLOTS request slots, allocated when it is
 * accepted (a slot's data buffer on its first use), so the data path never
 * allocates.  A request larger than MDTS runs as several NVMe commands, at
 * most NBD_PIECES at once per slot.  With every slot busy the connection
 * stops reading: back-pressure reaches the client through TCP, and
 * memory stays bounded.  Commands the remote queues cannot take at once
 * wait in the association's held list, itself bounded by the slots.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "nvmfd.h"
#include "host.h"
#include "nbd.h"
#include "nbd-dev.h"

#define NBD_SLOTS		32	/* requests in flight per connection */
#define NBD_PIECES		4	/* NVMe commands in flight per request */
#define NBD_MAX_PAYLOAD		(1024 * 1024)
#define NBD_RX_BUF		(64 * 1024)
#define NBD_MAX_CONNS		256
#define NBD_MAX_DISCARD		(64ull << 20)	/* refused payload we skip */
#define NBD_MAX_OPTIONS		256	/* options in one handshake */

enum conn_state {
	CS_FLAGS, CS_OPT_HDR, CS_OPT_DATA, CS_TLS_HS, CS_REQ_HDR, CS_REQ_DATA,
	CS_DISCARD, CS_CLOSING,
};

struct nbd_export {
	TAILQ_ENTRY(nbd_export) entry;
	char		name[NBD_NAME_MAX + 1];
	struct host_assoc *a;
	uint32_t	nsid;
	uint32_t	lba_shift;
	uint32_t	max_cmd;	/* bytes one Read or Write may carry */
	bool		vwc;
	bool		tls_required;	/* its own: hidden from plain clients */
	struct nbd_geom	g;
	TAILQ_HEAD(, nbd_conn) conns;
};

struct nbd_conn;

struct nbd_slot {
	TAILQ_ENTRY(nbd_slot) link;	/* free list or transmit queue */
	struct nbd_conn	*c;
	struct nbd_request req;
	uint8_t		*buf;
	uint64_t	next;		/* bytes handed to NVMe commands */
	int		inflight;
	unsigned	piece_busy;	/* bitmap of io[] */
	uint32_t	error;
	struct host_io	io[NBD_PIECES];
	uint32_t	io_len[NBD_PIECES];
	uint8_t		dsm[NBD_PIECES][16];
	uint8_t		rhdr[64];	/* reply header and small payload */
	uint32_t	rhdr_len;
	uint32_t	payload_len;
};

struct nbd_conn {
	TAILQ_ENTRY(nbd_conn) entry;	/* all connections (main loop) */
	TAILQ_ENTRY(nbd_conn) exp_link;	/* its export's (main loop) */
	struct loop	*loop;		/* the lane's, once moved; else NULL */
	struct host_lane *lane;		/* placed at GO */
	bool		on_lane;	/* running there (its loop's view) */
	bool		move;		/* GO done: move after this read */
	bool		waiting;	/* GO done, no lane yet: not reading */
	bool		freeing;	/* unlinking asked of the main loop */
	void		*dev;		/* a kernel device's (nbd-dev.c) */
	/* the export as it was at GO: the lane's loop reads only these */
	uint32_t	nsid, lba_shift, max_cmd;
	bool		vwc;
	struct nbd_geom	g;
	int		fd;
	struct tls_conn	*tls;		/* after NBD_OPT_STARTTLS */
	struct event	*rev, *wev;
	struct event	*free_ev;	/* frees it from a callback of its own */
	struct event	*neg_ev;	/* negotiation timeout (main loop) */
	enum conn_state	state;
	struct nbd_export *exp;
	char		peer[80];
	bool		no_zeroes, paused, disc;
	unsigned	neg;		/* NBD_NEG_*: what was negotiated */
	struct nbd_meta	meta;		/* the last SET_META_CONTEXT */
	int		noptions;

	uint8_t		*rx;
	size_t		rx_off, rx_len;
	uint32_t	opt, opt_len;
	uint64_t	discard_left;
	enum conn_state	after_discard;
	struct nbd_slot	*rx_slot;	/* WRITE payload being read */
	uint32_t	rx_got;

	struct evbuffer	*hs_out;	/* handshake replies */
	struct nbd_slot	*slots;
	TAILQ_HEAD(, nbd_slot) free_slots, txq;
	int		busy;		/* slots not free */
	int		pieces;		/* NVMe commands in flight */
	size_t		tx_done;
};

static TAILQ_HEAD(, nbd_export) exports = TAILQ_HEAD_INITIALIZER(exports);
static TAILQ_HEAD(, nbd_conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static int nconns;

static struct {
	int		ufd, tfd;
	struct event	*uev, *tev;
	char		*socket;
	ino_t		ino;		/* of the socket we bound */
	dev_t		dev;
	char		address[64], port[16];
	enum port_tls	tls;
	struct nbd_psks	*psks;
} srv = { .ufd = -1, .tfd = -1 };

static void conn_process(struct nbd_conn *);
static void conn_free_cb(evutil_socket_t, short, void *);
static void conn_read_cb(evutil_socket_t, short, void *);
static void conn_write_cb(evutil_socket_t, short, void *);
static void conn_write(struct nbd_conn *);
static void conn_close(struct nbd_conn *, const char *why);
static void conn_close_any(struct nbd_conn *, const char *why);
static void conn_move(struct nbd_conn *);
static void slot_issue(struct nbd_slot *);

/* ------------------------------------------------------------ exports */

static void
export_fill(struct nbd_export *e, struct host_assoc *a, struct host_ns *n)
{
	e->a = a;
	e->nsid = n->nsid;
	e->lba_shift = n->lba_shift;
	e->vwc = a->vwc;
	e->tls_required = a->p.nbd_tls_required;
	e->g.size = n->nlb << n->lba_shift;
	e->g.block = 1u << n->lba_shift;
	e->g.max_payload = NBD_MAX_PAYLOAD;
	e->g.readonly = n->readonly;
	e->g.flush = true;
	e->g.fua = true;
	e->g.trim = a->oncs & (1u << 2);
	e->g.zeroes = a->oncs & (1u << 3);
	/* Beyond MDTS a request is split; a piece stays block aligned. */
	e->max_cmd = a->mdts && a->mdts < NBD_MAX_PAYLOAD ? a->mdts :
	    NBD_MAX_PAYLOAD;
	e->max_cmd &= ~(e->g.block - 1);
	if (e->max_cmd < e->g.block)
		e->max_cmd = e->g.block;
}

struct nbd_export *
nbd_export_add(struct host_assoc *a, struct host_ns *n)
{
	struct nbd_export *e;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		log_warnx("nbd: out of memory for an export");
		return (NULL);
	}
	snprintf(e->name, sizeof(e->name), "%s/%u", a->p.export_prefix[0] ?
	    a->p.export_prefix : a->p.subnqn, n->nsid);
	TAILQ_INIT(&e->conns);
	export_fill(e, a, n);
	TAILQ_INSERT_TAIL(&exports, e, entry);
	log_info("nbd: export %s: %llu bytes, %u-byte blocks%s", e->name,
	    (unsigned long long)e->g.size, e->g.block,
	    e->g.readonly ? ", read-only" : "");
	return (e);
}

void
nbd_export_update(struct nbd_export *e, struct host_assoc *a,
    struct host_ns *n)
{
	if (e != NULL)
		export_fill(e, a, n);
}

void
nbd_export_remove(struct nbd_export *e)
{
	struct nbd_conn *c;

	if (e == NULL)
		return;
	log_info("nbd: export %s removed", e->name);
	nbd_dev_export_removed(e);
	/* Its lanes go after it: the placements end here. */
	while ((c = TAILQ_FIRST(&e->conns)) != NULL) {
		TAILQ_REMOVE(&e->conns, c, exp_link);
		c->exp = NULL;
		host_lane_unplace(c->lane);
		conn_close_any(c, "export removed");
	}
	TAILQ_REMOVE(&exports, e, entry);
	free(e);
}

struct nbd_export *
nbd_export_find(const char *name)
{
	struct nbd_export *e;

	/* The empty name is the default export: the first one. */
	if (*name == '\0')
		return (TAILQ_FIRST(&exports));
	TAILQ_FOREACH(e, &exports, entry)
		if (strcmp(e->name, name) == 0)
			return (e);
	return (NULL);
}

/* Whether c may see and use e: one that requires TLS, only with it. */
static bool
export_ok(const struct nbd_conn *c, const struct nbd_export *e)
{
	return (nbd_tls_export_ok(e->tls_required, c->tls != NULL));
}

enum port_tls
nbd_server_tls(void)
{
	return (srv.tls);
}

const char *
nbd_export_name(const struct nbd_export *e)
{
	return (e->name);
}

const struct nbd_geom *
nbd_export_geom(const struct nbd_export *e)
{
	return (&e->g);
}

/* URIs in libnbd's form: the name is a path, so escape what must be. */
static void
uri_escape(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s && o + 4 < len; s++) {
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("-._~/", *s))
			out[o++] = *s;
		else
			o += snprintf(out + o, len - o, "%%%02X",
			    (unsigned char)*s);
	}
	out[o] = '\0';
}

void
nbd_export_describe(struct nbd_export *e, struct out *o)
{
	char name[3 * NBD_NAME_MAX + 1];
	int n = 0;
	struct nbd_conn *c;
	enum port_tls tls = srv.tls;
	const char *scheme;

	if (tls == PORT_TLS_OPTIONAL && e->tls_required)
		tls = PORT_TLS_REQUIRED;
	scheme = tls == PORT_TLS_REQUIRED ? "nbds" : "nbd";

	TAILQ_FOREACH(c, &e->conns, exp_link)
		n++;
	uri_escape(e->name, name, sizeof(name));
	out_str(o, "name", "%s", e->name);
	out_u64(o, "nsid", e->nsid);
	out_u64(o, "size", e->g.size);
	out_u64(o, "block_size", e->g.block);
	out_bool(o, "readonly", e->g.readonly);
	out_u64(o, "clients", n);
	out_str(o, "tls", "%s", port_tls_name(tls));
	out_str(o, "nbd_device", "%s", nbd_dev_of(e) ? nbd_dev_of(e) : "");
	/* nbds: libnbd's schemes for TLS (its tls-psk-file=... is the
	 * client's to add). */
	if (srv.socket != NULL)
		out_str(o, "uri_unix", "%s+unix:///%s?socket=%s", scheme, name,
		    srv.socket);
	if (srv.tfd >= 0)
		out_str(o, "uri_tcp", strchr(srv.address, ':') ?
		    "%s://[%s]:%s/%s" : "%s://%s:%s/%s", scheme, srv.address,
		    srv.port, name);
}

/* ------------------------------------------------------- connections */

/* The last step, on the connection's loop: nothing lists it any more. */
static void
conn_destroy(struct nbd_conn *c)
{
	event_free(c->rev);
	event_free(c->wev);
	event_free(c->free_ev);
	if (c->neg_ev != NULL)
		event_free(c->neg_ev);
	tls_conn_free(c->tls);
	close(c->fd);
	for (int i = 0; i < NBD_SLOTS; i++)
		free(c->slots[i].buf);
	free(c->slots);
	free(c->rx);
	evbuffer_free(c->hs_out);
	free(c);
}

static void
conn_destroy_msg(void *arg)
{
	conn_destroy(arg);
}

/* On the main loop: forget it, then free it where it runs. */
static void
conn_unlink_msg(void *arg)
{
	struct nbd_conn *c = arg;

	TAILQ_REMOVE(&conns, c, entry);
	nconns--;
	if (c->exp != NULL) {
		TAILQ_REMOVE(&c->exp->conns, c, exp_link);
		host_lane_unplace(c->lane);
	}
	if (c->dev != NULL)
		nbd_dev_conn_gone(c->dev);
	if (c->loop != NULL)
		host_post(c->loop, conn_destroy_msg, c);
	else
		conn_destroy(c);
}

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nbd_conn *c = arg;

	if (c->pieces > 0 || c->freeing)
		return;
	c->freeing = true;
	if (c->loop != NULL)
		host_post(main_loop, conn_unlink_msg, c);
	else
		conn_unlink_msg(c);
}

/*
 * Stop now; free once no NVMe command still points into it, and never
 * under a caller that may still look at it.
 */
static void
conn_close(struct nbd_conn *c, const char *why)
{
	if (c->state != CS_CLOSING)
		log_debug("nbd: %s: %s", c->peer, why);
	c->state = CS_CLOSING;
	event_del(c->rev);
	event_del(c->wev);
	if (c->pieces == 0)
		event_active(c->free_ev, 0, 0);
}

static void
conn_close_msg(void *arg)
{
	conn_close(arg, "closed by the server");
}

/* From the main loop, wherever the connection runs. */
static void
conn_close_any(struct nbd_conn *c, const char *why)
{
	if (c->loop != NULL)
		host_post(c->loop, conn_close_msg, c);
	else
		conn_close(c, why);
}

/* The client broke the protocol: say so (rate-limited), then close. */
static void
conn_refuse(struct nbd_conn *c, const char *why)
{
	log_peer_warnx("nbd: %s: %s; closing", c->peer, why);
	conn_close(c, why);
}

/* Records TLS has read and not yet given us wake no socket event. */
static void
conn_tls_rx_kick(struct nbd_conn *c)
{
	if (c->tls != NULL && c->state != CS_CLOSING && !c->paused &&
	    !c->waiting && tls_conn_rx_pending(c->tls))
		event_active(c->rev, EV_READ, 0);
}

static void
conn_pause(struct nbd_conn *c)
{
	if (!c->paused) {
		c->paused = true;
		event_del(c->rev);
	}
}

static void
conn_resume(struct nbd_conn *c)
{
	if (c->paused && c->state != CS_CLOSING && !c->disc) {
		c->paused = false;
		event_add(c->rev, NULL);
		/* What is already buffered will not wake us. */
		conn_process(c);
		conn_tls_rx_kick(c);
	}
}

static void
slot_free(struct nbd_slot *s)
{
	struct nbd_conn *c = s->c;

	c->busy--;
	TAILQ_INSERT_HEAD(&c->free_slots, s, link);
}

/* A final chunk header in the connection's format, into the slot. */
static void
chunk_hdr(struct nbd_slot *s, uint16_t type, uint64_t len)
{
	const struct nbd_request *r = &s->req;

	if (s->c->neg & NBD_NEG_EXTENDED)
		s->rhdr_len = nbd_ext_reply(s->rhdr, NBD_REPLY_FLAG_DONE, type,
		    r->cookie, r->offset, len);
	else
		s->rhdr_len = nbd_structured_reply(s->rhdr, NBD_REPLY_FLAG_DONE,
		    type, r->cookie, (uint32_t)len);
}

/*
 * base:allocation: one extent, the whole range, allocated data (flags 0).
 * NVMe has no allocation query (Get LBA Status reports blocks that may
 * be unrecoverable, not deallocated ones), and flags 0 is what the
 * context says when the server cannot tell.
 */
static void
block_status(struct nbd_slot *s)
{
	const struct nbd_request *r = &s->req;
	uint8_t *p;

	if (s->c->neg & NBD_NEG_EXTENDED) {
		chunk_hdr(s, NBD_REPLY_TYPE_BLOCK_STATUS_EXT, 24);
		p = s->rhdr + s->rhdr_len;
		nbd_put32(p, NBD_META_ALLOC_ID);
		nbd_put32(p + 4, 1);		/* one descriptor */
		nbd_put64(p + 8, r->length);
		nbd_put64(p + 16, 0);
		s->rhdr_len += 24;
	} else {
		chunk_hdr(s, NBD_REPLY_TYPE_BLOCK_STATUS, 12);
		p = s->rhdr + s->rhdr_len;
		nbd_put32(p, NBD_META_ALLOC_ID);
		nbd_put32(p + 4, (uint32_t)r->length);
		nbd_put32(p + 8, 0);
		s->rhdr_len += 12;
	}
}

/* Queue the slot's reply; the slot is free once it is sent. */
static void
slot_reply(struct nbd_slot *s)
{
	struct nbd_conn *c = s->c;
	const struct nbd_request *r = &s->req;
	uint8_t *p;

	s->payload_len = 0;
	if (!(c->neg & NBD_NEG_STRUCTURED)) {
		s->rhdr_len = nbd_simple_reply(s->rhdr, s->error, r->cookie);
		if (r->type == NBD_CMD_READ && s->error == 0)
			s->payload_len = (uint32_t)r->length;
	} else if (s->error) {
		chunk_hdr(s, NBD_REPLY_TYPE_ERROR, 6);
		p = s->rhdr + s->rhdr_len;
		nbd_put32(p, s->error);
		nbd_put16(p + 4, 0);		/* no message */
		s->rhdr_len += 6;
	} else if (r->type == NBD_CMD_READ) {
		chunk_hdr(s, NBD_REPLY_TYPE_OFFSET_DATA, 8 + r->length);
		nbd_put64(s->rhdr + s->rhdr_len, r->offset);
		s->rhdr_len += 8;
		s->payload_len = (uint32_t)r->length;
	} else if (r->type == NBD_CMD_BLOCK_STATUS)
		block_status(s);
	else
		chunk_hdr(s, NBD_REPLY_TYPE_NONE, 0);
	TAILQ_INSERT_TAIL(&c->txq, s, link);
}

static void
piece_done(struct host_io *io, uint16_t status)
{
	struct nbd_slot *s = io->arg;
	struct nbd_conn *c = s->c;
	int k = (int)(io - s->io);

	s->piece_busy &= ~(1u << k);
	s->inflight--;
	c->pieces--;
	if (status != 0 && s->error == 0) {
		s->error = nbd_errno_from_nvme(status);
		if (status != HOST_ST_PATH_ERROR)
			log_debug("nbd: %s: command 0x%x failed: status 0x%x",
			    c->peer, io->req.sqe.opc, status);
	}
	if (c->state == CS_CLOSING) {
		if (s->inflight == 0)
			slot_free(s);
		if (c->pieces == 0)
			event_active(c->free_ev, 0, 0);
		return;
	}
	if (s->error == 0 && s->next < s->req.length)
		slot_issue(s);
	if (s->inflight > 0)
		return;
	slot_reply(s);
	/*
	 * Written once the callback that completed it is done, with every
	 * other reply it completed: one writev for them all, and a client
	 * that reads them in one go.
	 */
	event_active(c->wev, EV_WRITE, 0);
}

/* One NVMe command for the slot's next range (or its flush). */
static void
piece_start(struct nbd_slot *s, uint64_t len)
{
	struct nbd_conn *c = s->c;
	const struct nbd_request *r = &s->req;
	int k = __builtin_ctz(~s->piece_busy);
	struct host_io *io = &s->io[k];
	struct host_req *q = &io->req;
	uint64_t slba = (r->offset + s->next) >> c->lba_shift;
	uint32_t nlb = (uint32_t)(len >> c->lba_shift);
	uint32_t fua = r->flags & NBD_CMD_FLAG_FUA ? 1u << 30 : 0;

	memset(q, 0, offsetof(struct host_req, hq));
	q->sqe.nsid = c->nsid;
	q->sqe.cdw10 = (uint32_t)slba;
	q->sqe.cdw11 = (uint32_t)(slba >> 32);
	switch (r->type) {
	case NBD_CMD_READ:
	case NBD_CMD_WRITE:
		q->sqe.opc = r->type == NBD_CMD_READ ? NVME_CMD_READ :
		    NVME_CMD_WRITE;
		q->sqe.cdw12 = (nlb - 1) | fua;
		q->iov[0].iov_base = s->buf + s->next;
		q->iov[0].iov_len = len;
		q->iovcnt = 1;
		q->data_len = (uint32_t)len;
		q->dir = r->type == NBD_CMD_READ ? DIR_C2H : DIR_H2C;
		break;
	case NBD_CMD_WRITE_ZEROES:
		q->sqe.opc = NVME_CMD_WRITE_ZEROES;
		/* Without NO_HOLE the target may deallocate (DEAC). */
		q->sqe.cdw12 = (nlb - 1) | fua |
		    (r->flags & NBD_CMD_FLAG_NO_HOLE ? 0 : 1u << 25);
		break;
	case NBD_CMD_TRIM:
		q->sqe.opc = NVME_CMD_DSM;
		q->sqe.cdw10 = 0;		/* one range */
		q->sqe.cdw11 = 1u << 2;		/* deallocate */
		q->sqe.cdw12 = 0;
		memset(s->dsm[k], 0, 16);
		put_le32(s->dsm[k] + 4, nlb);
		put_le64(s->dsm[k] + 8, slba);
		q->iov[0].iov_base = s->dsm[k];
		q->iov[0].iov_len = 16;
		q->iovcnt = 1;
		q->data_len = 16;
		q->dir = DIR_H2C;
		break;
	case NBD_CMD_FLUSH:
		q->sqe.opc = NVME_CMD_FLUSH;
		q->sqe.cdw10 = q->sqe.cdw11 = 0;
		break;
	}
	s->piece_busy |= 1u << k;
	s->io_len[k] = (uint32_t)len;
	s->inflight++;
	s->next += len;
	c->pieces++;
	io->done = piece_done;
	io->arg = s;
	host_io_submit(c->lane, io);
}

static void
slot_issue(struct nbd_slot *s)
{
	struct nbd_conn *c = s->c;
	const struct nbd_request *r = &s->req;
	uint64_t max;

	switch (r->type) {
	case NBD_CMD_WRITE_ZEROES:
		max = 65536ull << c->lba_shift;	/* NLB is 16 bits */
		break;
	case NBD_CMD_TRIM:
		max = 1ull << 30;
		break;
	default:
		max = c->max_cmd;
	}
	while (s->inflight < NBD_PIECES && s->next < r->length)
		piece_start(s, MINIMUM(r->length - s->next, max));
}

/* A request whose header (and payload) is in: run it. */
static void
slot_run(struct nbd_slot *s)
{
	struct nbd_conn *c = s->c;

	s->next = 0;
	s->inflight = 0;
	s->piece_busy = 0;
	switch (s->req.type) {
	case NBD_CMD_CACHE:		/* a hint: NVMe has no prefetch */
	case NBD_CMD_BLOCK_STATUS:
		break;
	case NBD_CMD_FLUSH:
		if (!c->vwc)
			break;
		piece_start(s, 0);
		return;
	default:
		slot_issue(s);
		return;
	}
	slot_reply(s);
	conn_write(c);
}

/* ---------------------------------------------------------- handshake */

static void
opt_reply(struct nbd_conn *c, uint32_t type, const void *data, uint32_t len)
{
	uint8_t h[20];

	if (type & NBD_REP_FLAG_ERROR)
		log_peer_info("nbd: %s: option %u refused: error 0x%x",
		    c->peer, c->opt, type);
	nbd_opt_reply(h, c->opt, type, len);
	evbuffer_add(c->hs_out, h, sizeof(h));
	if (len)
		evbuffer_add(c->hs_out, data, len);
}

static void
info_export(struct nbd_conn *c, struct nbd_export *e)
{
	uint8_t d[12];

	nbd_put16(d, NBD_INFO_EXPORT);
	nbd_put64(d + 2, e->g.size);
	nbd_put16(d + 10, nbd_transmission_flags(&e->g, c->neg));
	opt_reply(c, NBD_REP_INFO, d, sizeof(d));
}

/* Transmission on e: what the lane's loop needs, copied; a lane. */
static void
conn_bind(struct nbd_conn *c, struct nbd_export *e)
{
	c->exp = e;
	TAILQ_INSERT_TAIL(&e->conns, c, exp_link);
	c->nsid = e->nsid;
	c->lba_shift = e->lba_shift;
	c->max_cmd = e->max_cmd;
	c->vwc = e->vwc;
	c->g = e->g;
	c->lane = host_lane_place(e->a);
	c->state = CS_REQ_HDR;
	c->move = true;
	event_del(c->neg_ev);
}

static void
opt_go(struct nbd_conn *c, const uint8_t *data)
{
	struct nbd_go go;
	struct nbd_export *e;
	uint32_t err;
	uint8_t d[2 + NBD_NAME_MAX];

	if ((err = nbd_parse_go(data, c->opt_len, &go)) != 0) {
		opt_reply(c, err, NULL, 0);
		return;
	}
	if ((e = nbd_export_find(go.name)) == NULL) {
		opt_reply(c, NBD_REP_ERR_UNKNOWN, NULL, 0);
		return;
	}
	if (!export_ok(c, e)) {
		opt_reply(c, NBD_REP_ERR_TLS_REQD, NULL, 0);
		return;
	}
	/* Contexts set for another export do not follow us to this one. */
	if (c->meta.alloc && nbd_export_find(c->meta.name) != e)
		c->meta.alloc = false;
	info_export(c, e);
	for (int i = 0; i < go.ninfo; i++) {
		switch (go.info[i]) {
		case NBD_INFO_NAME: {
			size_t n = strlen(e->name);

			nbd_put16(d, NBD_INFO_NAME);
			memcpy(d + 2, e->name, n);
			opt_reply(c, NBD_REP_INFO, d, (uint32_t)(2 + n));
			break;
		}
		}
	}
	/*
	 * Sent asked or not: requests must be LBA aligned, which is not the
	 * default (1), and an INFO may tell more than was asked.
	 */
	nbd_put16(d, NBD_INFO_BLOCK_SIZE);
	nbd_put32(d + 2, e->g.block);
	nbd_put32(d + 6, MAXIMUM(e->g.block, 4096));
	nbd_put32(d + 10, e->g.max_payload);
	opt_reply(c, NBD_REP_INFO, d, 14);
	opt_reply(c, NBD_REP_ACK, NULL, 0);
	if (c->opt == NBD_OPT_GO) {
		if (c->meta.alloc)
			c->neg |= NBD_NEG_META_ALLOC;
		conn_bind(c, e);
		log_debug("nbd: %s: export %s", c->peer, e->name);
	}
}

static void
opt_export_name(struct nbd_conn *c, const uint8_t *data)
{
	char name[NBD_NAME_MAX + 1];
	struct nbd_export *e;
	uint8_t d[10 + 124];

	/* Extended headers forbid it: a client that knows them uses GO. */
	if (c->neg & NBD_NEG_EXTENDED) {
		conn_refuse(c, "NBD_OPT_EXPORT_NAME after extended headers");
		return;
	}
	/* No error reply exists for this option: a bad name closes. */
	if (c->opt_len > NBD_NAME_MAX || memchr(data, '\0', c->opt_len)) {
		conn_refuse(c, "bad NBD_OPT_EXPORT_NAME");
		return;
	}
	memcpy(name, data, c->opt_len);
	name[c->opt_len] = '\0';
	if ((e = nbd_export_find(name)) == NULL) {
		conn_refuse(c, "NBD_OPT_EXPORT_NAME: no such export");
		return;
	}
	if (!export_ok(c, e)) {
		conn_refuse(c, "NBD_OPT_EXPORT_NAME: the export requires TLS");
		return;
	}
	memset(d, 0, sizeof(d));
	nbd_put64(d, e->g.size);
	nbd_put16(d + 8, nbd_transmission_flags(&e->g, c->neg));
	evbuffer_add(c->hs_out, d, c->no_zeroes ? 10 : sizeof(d));
	conn_bind(c, e);
}

static void
opt_list(struct nbd_conn *c)
{
	struct nbd_export *e;
	uint8_t d[4 + NBD_NAME_MAX];

	if (c->opt_len != 0) {
		opt_reply(c, NBD_REP_ERR_INVALID, NULL, 0);
		return;
	}
	TAILQ_FOREACH(e, &exports, entry) {
		size_t n = strlen(e->name);

		if (!export_ok(c, e))
			continue;	/* TLS-only: not listed without */
		nbd_put32(d, (uint32_t)n);
		memcpy(d + 4, e->name, n);
		opt_reply(c, NBD_REP_SERVER, d, (uint32_t)(4 + n));
	}
	opt_reply(c, NBD_REP_ACK, NULL, 0);
}

/* LIST_ or SET_META_CONTEXT: base:allocation is the only context. */
static void
opt_meta(struct nbd_conn *c, const uint8_t *data)
{
	bool list = c->opt == NBD_OPT_LIST_META_CONTEXT;
	struct nbd_export *e;
	struct nbd_meta m;
	uint32_t err;
	uint8_t d[4 + sizeof(NBD_META_BASE_ALLOC) - 1];

	/* A failed SET leaves no context selected. */
	if (!list)
		c->meta.alloc = false;
	/* Block status replies are structured: no context without them. */
	if (!(c->neg & NBD_NEG_STRUCTURED)) {
		opt_reply(c, NBD_REP_ERR_INVALID, NULL, 0);
		return;
	}
	if ((err = nbd_parse_meta(data, c->opt_len, list, &m)) != 0) {
		opt_reply(c, err, NULL, 0);
		return;
	}
	if ((e = nbd_export_find(m.name)) == NULL) {
		opt_reply(c, NBD_REP_ERR_UNKNOWN, NULL, 0);
		return;
	}
	if (!export_ok(c, e)) {
		opt_reply(c, NBD_REP_ERR_TLS_REQD, NULL, 0);
		return;
	}
	if (m.alloc) {
		/* IDs in a LIST reply mean nothing: zero, as advised. */
		nbd_put32(d, list ? 0 : NBD_META_ALLOC_ID);
		memcpy(d + 4, NBD_META_BASE_ALLOC, sizeof(d) - 4);
		opt_reply(c, NBD_REP_META_CONTEXT, d, sizeof(d));
	}
	if (!list)
		c->meta = m;
	opt_reply(c, NBD_REP_ACK, NULL, 0);
}

/* STRUCTURED_REPLY or EXTENDED_HEADERS: each once, the latter wins. */
static void
opt_reply_format(struct nbd_conn *c)
{
	bool ext = c->opt == NBD_OPT_EXTENDED_HEADERS;

	if (c->opt_len != 0)
		opt_reply(c, NBD_REP_ERR_INVALID, NULL, 0);
	else if (!ext && (c->neg & NBD_NEG_EXTENDED))
		opt_reply(c, NBD_REP_ERR_EXT_HEADER_REQD, NULL, 0);
	else if (c->neg & (ext ? NBD_NEG_EXTENDED : NBD_NEG_STRUCTURED))
		opt_reply(c, NBD_REP_ERR_INVALID, NULL, 0);
	else {
		c->neg |= NBD_NEG_STRUCTURED | (ext ? NBD_NEG_EXTENDED : 0);
		opt_reply(c, NBD_REP_ACK, NULL, 0);
	}
}

/* NBD_OPT_STARTTLS accepted: the ACK goes in plain, then the handshake. */
static void
opt_starttls(struct nbd_conn *c)
{
	/* A client waits for the ACK before its ClientHello. */
	if (c->rx_len > c->rx_off) {
		conn_refuse(c, "data after NBD_OPT_STARTTLS before its reply");
		return;
	}
	if ((c->tls = tls_conn_accept_psk(c->fd, c->peer, nbd_psk_lookup,
	    srv.psks)) == NULL) {
		log_warnx("nbd: %s: cannot start TLS", c->peer);
		opt_reply(c, NBD_REP_ERR_PLATFORM, NULL, 0);
		conn_write(c);
		return;
	}
	opt_reply(c, NBD_REP_ACK, NULL, 0);
	c->state = CS_TLS_HS;
	conn_write(c);		/* the ACK, then the handshake's first step */
}

/* One step of the TLS handshake: the socket's events drive it. */
static void
conn_tls_step(struct nbd_conn *c)
{
	char why[200];

	switch (tls_conn_handshake(c->tls, why, sizeof(why))) {
	case 1:
		/* What was negotiated in plain does not carry over. */
		c->neg = 0;
		memset(&c->meta, 0, sizeof(c->meta));
		c->state = CS_OPT_HDR;
		log_info("nbd: %s: TLS %s, PSK identity %s", c->peer,
		    tls_conn_cipher(c->tls), tls_conn_identity(c->tls));
		conn_tls_rx_kick(c);
		break;
	case 0:
		break;		/* the read event brings the next step */
	case 2:
		event_add(c->wev, NULL);
		break;
	default:
		conn_refuse(c, why);
		break;
	}
}

static void
option(struct nbd_conn *c, const uint8_t *data)
{
	uint32_t tls;

	if (++c->noptions > NBD_MAX_OPTIONS) {
		conn_refuse(c, "too many options");
		return;
	}
	c->state = CS_OPT_HDR;
	switch ((tls = nbd_tls_option(srv.tls, c->tls != NULL, c->opt,
	    c->opt_len))) {
	case NBD_TLS_GO:
		break;
	case NBD_TLS_START:
		opt_starttls(c);
		return;
	case NBD_TLS_CLOSE:
		conn_refuse(c, "NBD_OPT_EXPORT_NAME without TLS");
		return;
	default:
		opt_reply(c, tls, NULL, 0);
		conn_write(c);
		return;
	}
	switch (c->opt) {
	case NBD_OPT_EXPORT_NAME:
		opt_export_name(c, data);
		break;
	case NBD_OPT_ABORT:
		opt_reply(c, NBD_REP_ACK, NULL, 0);
		conn_write(c);
		conn_close(c, "NBD_OPT_ABORT");
		return;
	case NBD_OPT_LIST:
		opt_list(c);
		break;
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		opt_go(c, data);
		break;
	case NBD_OPT_STRUCTURED_REPLY:
	case NBD_OPT_EXTENDED_HEADERS:
		opt_reply_format(c);
		break;
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT:
		opt_meta(c, data);
		break;
	default:
		opt_reply(c, NBD_REP_ERR_UNSUP, NULL, 0);
		break;
	}
	if (c->state != CS_CLOSING)
		conn_write(c);
}

/* ------------------------------------------------------- transmission */

/* A request header is in; returns false to stop reading. */
static bool
request(struct nbd_conn *c, const uint8_t *p)
{
	struct nbd_slot *s;
	uint32_t err;

	s = TAILQ_FIRST(&c->free_slots);
	if (nbd_parse_request(p, c->neg & NBD_NEG_EXTENDED, &s->req) != 0) {
		conn_refuse(c, "bad request magic");
		return (false);
	}
	if (s->req.type == NBD_CMD_DISC) {
		c->disc = true;
		conn_pause(c);
		if (c->busy == 0)
			conn_close(c, "NBD_CMD_DISC");
		return (false);
	}
	TAILQ_REMOVE(&c->free_slots, s, link);
	c->busy++;
	s->error = 0;
	err = nbd_check_request(&s->req, &c->g, c->neg);
	if (err != 0 && (s->req.type == NBD_CMD_WRITE ||
	    (c->neg & NBD_NEG_EXTENDED &&
	    s->req.flags & NBD_CMD_FLAG_PAYLOAD_LEN))) {
		/* Its payload follows all the same: skip it, or give up. */
		if (s->req.length > NBD_MAX_DISCARD) {
			conn_refuse(c, "oversized write");
			return (false);
		}
		c->discard_left = s->req.length;
		c->after_discard = CS_REQ_HDR;
		c->state = CS_DISCARD;
	}
	if (err != 0) {
		log_peer_info("nbd: %s: request type %u, %llu bytes at %llu, "
		    "flags 0x%x: refused, error %u", c->peer, s->req.type,
		    (unsigned long long)s->req.length,
		    (unsigned long long)s->req.offset, s->req.flags, err);
		s->error = err;
		slot_reply(s);
		conn_write(c);
		return (c->state != CS_CLOSING);
	}
	if ((s->req.type == NBD_CMD_READ || s->req.type == NBD_CMD_WRITE) &&
	    s->buf == NULL && (s->buf = aligned_alloc(4096,
	    NBD_MAX_PAYLOAD)) == NULL) {
		conn_close(c, "out of memory");
		return (false);
	}
	if (s->req.type == NBD_CMD_WRITE) {
		c->rx_slot = s;
		c->rx_got = 0;
		c->state = CS_REQ_DATA;
		return (true);
	}
	slot_run(s);
	return (c->state != CS_CLOSING);
}

/* ---------------------------------------------------------- moving */

/* On the lane's loop: start there with what came already. */
static void
conn_attach_msg(void *arg)
{
	struct nbd_conn *c = arg;

	c->on_lane = true;
	if (c->state == CS_CLOSING)
		return;
	event_add(c->rev, NULL);
	conn_write(c);
	conn_process(c);
	conn_tls_rx_kick(c);
	if (c->state != CS_CLOSING)
		host_lane_flush(c->lane);
}

/*
 * GO is answered: the connection leaves the main loop for its lane's.
 * Its events are made for that loop here, so the move cannot fail there.
 */
static void
conn_move(struct nbd_conn *c)
{
	struct event_base *b;
	struct event *rev = NULL, *wev = NULL, *fev = NULL;

	c->move = false;
	if (c->lane == NULL && (c->lane = host_lane_place(c->exp->a)) == NULL) {
		/* Its requests wait in the socket until a lane has a
		 * queue (nbd_export_lanes_ready). */
		if (!c->waiting)
			log_debug("nbd: %s: waiting for an I/O queue", c->peer);
		c->waiting = true;
		event_del(c->rev);
		return;
	}
	c->waiting = false;
	b = c->lane->loop->base;
	if ((rev = event_new(b, c->fd, EV_READ | EV_PERSIST, conn_read_cb,
	    c)) == NULL ||
	    (wev = event_new(b, c->fd, EV_WRITE, conn_write_cb, c)) == NULL ||
	    (fev = event_new(b, -1, 0, conn_free_cb, c)) == NULL) {
		if (rev)
			event_free(rev);
		if (wev)
			event_free(wev);
		conn_close(c, "out of memory");
		return;
	}
	event_free(c->rev);
	event_free(c->wev);
	event_free(c->free_ev);
	event_free(c->neg_ev);
	c->neg_ev = NULL;
	c->rev = rev;
	c->wev = wev;
	c->free_ev = fev;
	c->loop = c->lane->loop;
	host_post(c->loop, conn_attach_msg, c);
}

/* Main loop: the association's lanes changed; place who waits for one. */
void
nbd_export_lanes_ready(struct nbd_export *e)
{
	struct nbd_conn *c, *next;

	if (e == NULL)
		return;
	TAILQ_FOREACH_SAFE(c, &e->conns, exp_link, next)
		if (c->waiting && c->state != CS_CLOSING)
			conn_move(c);
}

/* ------------------------------------------------------------ receive */

/* Consume what the buffer holds, as the state wants. */
static void
conn_process(struct nbd_conn *c)
{
	for (;;) {
		uint8_t *p = c->rx + c->rx_off;
		size_t avail = c->rx_len - c->rx_off;
		uint32_t flags;

		switch (c->state) {
		case CS_CLOSING:
			return;
		case CS_FLAGS:
			if (avail < 4)
				return;
			flags = nbd_get32(p);
			c->rx_off += 4;
			if (!(flags & NBD_FLAG_C_FIXED_NEWSTYLE) ||
			    (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE |
			    NBD_FLAG_C_NO_ZEROES))) {
				conn_refuse(c, "unsupported client flags");
				return;
			}
			c->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
			c->state = CS_OPT_HDR;
			break;
		case CS_OPT_HDR:
			if (avail < 16)
				return;
			if (nbd_parse_opt_hdr(p, &c->opt, &c->opt_len) != 0) {
				conn_refuse(c, "bad option magic");
				return;
			}
			c->rx_off += 16;
			if (c->opt_len > NBD_OPT_MAX_LEN) {
				opt_reply(c, NBD_REP_ERR_TOO_BIG, NULL, 0);
				conn_write(c);
				if (c->opt_len > NBD_MAX_DISCARD) {
					conn_refuse(c, "option too long");
					return;
				}
				c->discard_left = c->opt_len;
				c->after_discard = CS_OPT_HDR;
				c->state = CS_DISCARD;
				break;
			}
			c->state = CS_OPT_DATA;
			break;
		case CS_OPT_DATA:
			if (avail < c->opt_len)
				return;
			c->rx_off += c->opt_len;
			option(c, p);
			break;
		case CS_TLS_HS:
			return;		/* the socket is TLS's now */
		case CS_REQ_HDR: {
			size_t hlen = c->neg & NBD_NEG_EXTENDED ?
			    NBD_EXT_REQUEST_LEN : NBD_REQUEST_LEN;

			/* Requests run on the lane's loop only. */
			if (c->disc || !c->on_lane)
				return;
			if (TAILQ_EMPTY(&c->free_slots)) {
				conn_pause(c);
				return;
			}
			if (avail < hlen)
				return;
			c->rx_off += hlen;
			if (!request(c, p))
				return;
			break;
		}
		case CS_REQ_DATA: {
			struct nbd_slot *s = c->rx_slot;
			size_t n = MINIMUM(avail, s->req.length - c->rx_got);

			memcpy(s->buf + c->rx_got, p, n);
			c->rx_off += n;
			c->rx_got += n;
			if (c->rx_got < s->req.length)
				return;
			c->rx_slot = NULL;
			c->state = CS_REQ_HDR;
			slot_run(s);
			break;
		}
		case CS_DISCARD: {
			size_t n = MINIMUM(avail, c->discard_left);

			c->rx_off += n;
			c->discard_left -= n;
			if (c->discard_left > 0)
				return;
			c->state = c->after_discard;
			break;
		}
		}
	}
}

/* recv(2), or TLS's records; as recv. */
static ssize_t
conn_recv(struct nbd_conn *c, void *buf, size_t len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	if (c->tls == NULL)
		return (recv(c->fd, buf, len, 0));
	return (tls_conn_readv(c->tls, &iov, 1));
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct nbd_conn *c = arg;

	if (c->state == CS_TLS_HS) {
		conn_tls_step(c);
		return;
	}
	for (int round = 0; round < 8 && c->state != CS_CLOSING &&
	    !c->paused && !c->move; round++) {
		ssize_t n;

		/* Keep the unread part at the front: room for a whole
		 * option or header after it. */
		if (c->rx_off > 0) {
			memmove(c->rx, c->rx + c->rx_off, c->rx_len - c->rx_off);
			c->rx_len -= c->rx_off;
			c->rx_off = 0;
		}
		n = conn_recv(c, c->rx + c->rx_len, NBD_RX_BUF - c->rx_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_close(c, n == 0 ? "closed by the client" :
			    strerror(errno));
			return;
		}
		c->rx_len += n;
		conn_process(c);
		if (c->state == CS_CLOSING)
			return;
		if ((size_t)n < NBD_RX_BUF / 2)
			break;
	}
	if (c->move)
		conn_move(c);
	else {
		conn_tls_rx_kick(c);
		if (c->on_lane)
			host_lane_flush(c->lane);
	}
}

/* ----------------------------------------------------------- transmit */

/* Handshake replies: plain until STARTTLS's ACK is out, then TLS.
 * Bytes taken (0 with errno EAGAIN: none), or -1. */
static ssize_t
hs_send(struct nbd_conn *c)
{
	size_t len = evbuffer_get_length(c->hs_out);
	struct iovec iov;
	ssize_t n;

	if (c->tls == NULL || c->state == CS_TLS_HS)
		return (evbuffer_write(c->hs_out, c->fd));
	iov.iov_len = len;
	if ((iov.iov_base = evbuffer_pullup(c->hs_out, len)) == NULL) {
		errno = ENOMEM;
		return (-1);
	}
	if ((n = tls_conn_sendv(c->tls, &iov, 1)) > 0)
		evbuffer_drain(c->hs_out, n);
	else if (n == 0)
		errno = EAGAIN;
	return (n);
}

static void
conn_write(struct nbd_conn *c)
{
	struct iovec iov[2 * 16];
	struct nbd_slot *s;
	bool freed = false;

	if (c->state == CS_CLOSING)
		return;
	/* Records made earlier and not yet out: first. */
	if (c->tls != NULL && c->state != CS_TLS_HS &&
	    tls_conn_tx_pending(c->tls) && tls_conn_flush(c->tls) != 0) {
		if (errno == EAGAIN || errno == EINTR)
			goto blocked;
		conn_close(c, strerror(errno));
		return;
	}
	while (evbuffer_get_length(c->hs_out) > 0) {
		if (hs_send(c) <= 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				goto blocked;
			conn_close(c, strerror(errno));
			return;
		}
	}
	/* STARTTLS's ACK is out: the handshake from here. */
	if (c->state == CS_TLS_HS) {
		conn_tls_step(c);
		return;
	}
	while (!TAILQ_EMPTY(&c->txq)) {
		int cnt = 0;
		ssize_t n;
		size_t skip = c->tx_done;

		TAILQ_FOREACH(s, &c->txq, link) {
			if (cnt == (int)nitems(iov))
				break;
			iov[cnt].iov_base = s->rhdr;
			iov[cnt++].iov_len = s->rhdr_len;
			if (s->payload_len) {
				iov[cnt].iov_base = s->buf;
				iov[cnt++].iov_len = s->payload_len;
			}
		}
		cnt = iov_skip(iov, cnt, skip);
		n = stream_sendv(c->fd, c->tls, iov, cnt);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				goto blocked;
			conn_close(c, strerror(errno));
			return;
		}
		while (n > 0 && (s = TAILQ_FIRST(&c->txq)) != NULL) {
			size_t left = s->rhdr_len + s->payload_len - c->tx_done;

			if ((size_t)n < left) {
				c->tx_done += n;
				break;
			}
			n -= left;
			c->tx_done = 0;
			TAILQ_REMOVE(&c->txq, s, link);
			slot_free(s);
			freed = true;
		}
	}
	if (c->tls != NULL && tls_conn_tx_pending(c->tls))
		goto blocked;
	event_del(c->wev);
	if (c->disc && c->busy == 0) {
		conn_close(c, "NBD_CMD_DISC");
		return;
	}
	if (freed)
		conn_resume(c);
	return;
blocked:
	event_add(c->wev, NULL);
	if (freed)
		conn_resume(c);
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_write(arg);
}

/* ------------------------------------------------------------ accept */

static void
conn_neg_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_refuse(arg, "negotiation timed out");
}

/* A connection on the main loop, listed; NULL (fd closed) if not. */
static struct nbd_conn *
conn_alloc(int fd, const char *peer)
{
	struct nbd_conn *c;

	if (nconns >= NBD_MAX_CONNS) {
		log_warnx("nbd: %s: too many connections", peer);
		close(fd);
		return (NULL);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->rx = malloc(NBD_RX_BUF)) == NULL ||
	    (c->slots = calloc(NBD_SLOTS, sizeof(*c->slots))) == NULL ||
	    (c->hs_out = evbuffer_new()) == NULL ||
	    (c->rev = event_new(main_loop->base, fd, EV_READ | EV_PERSIST,
	    conn_read_cb, c)) == NULL ||
	    (c->wev = event_new(main_loop->base, fd, EV_WRITE,
	    conn_write_cb, c)) == NULL ||
	    (c->free_ev = event_new(main_loop->base, -1, 0, conn_free_cb,
	    c)) == NULL ||
	    (c->neg_ev = evtimer_new(main_loop->base, conn_neg_timeout_cb,
	    c)) == NULL) {
		if (c) {
			if (c->free_ev)
				event_free(c->free_ev);
			if (c->rev)
				event_free(c->rev);
			if (c->wev)
				event_free(c->wev);
			if (c->hs_out)
				evbuffer_free(c->hs_out);
			free(c->slots);
			free(c->rx);
		}
		free(c);
		close(fd);
		log_warnx("nbd: %s: out of memory", peer);
		return (NULL);
	}
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	TAILQ_INIT(&c->free_slots);
	TAILQ_INIT(&c->txq);
	for (int i = 0; i < NBD_SLOTS; i++) {
		c->slots[i].c = c;
		TAILQ_INSERT_TAIL(&c->free_slots, &c->slots[i], link);
	}
	TAILQ_INSERT_TAIL(&conns, c, entry);
	nconns++;
	return (c);
}

static void
conn_new(int fd, const char *peer)
{
	struct timeval tv = { NBD_NEGOTIATE_TIMEOUT_S, 0 };
	struct nbd_conn *c;
	uint8_t hello[18];

	if ((c = conn_alloc(fd, peer)) == NULL)
		return;
	nbd_put64(hello, NBD_MAGIC);
	nbd_put64(hello + 8, NBD_IHAVEOPT);
	nbd_put16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	evbuffer_add(c->hs_out, hello, sizeof(hello));
	c->state = CS_FLAGS;
	event_add(c->rev, NULL);
	evtimer_add(c->neg_ev, &tv);
	conn_write(c);
}

/*
 * A connection that starts in transmission, as the kernel's nbd driver
 * expects of the socket it is given: no handshake, simple replies.
 */
struct nbd_conn *
nbd_conn_adopt(struct nbd_export *e, int fd, const char *peer, void *dev)
{
	struct nbd_conn *c;

	if (e->a->nlanes == 0) {
		close(fd);
		return (NULL);
	}
	if ((c = conn_alloc(fd, peer)) == NULL)
		return (NULL);
	c->dev = dev;
	conn_bind(c, e);
	conn_move(c);
	return (c);
}

/* Main loop: our end stops taking requests, then the connection closes
 * wherever it runs; what nbd_conn_adopt() gave is forgotten after. */
void
nbd_conn_shut(struct nbd_conn *c, int how)
{
	shutdown(c->fd, how);
	if (how == SHUT_RDWR)
		conn_close_any(c, "device detached");
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct sockaddr_storage ss;
	char peer[80], host[64] = "?", serv[16] = "?";
	int one = 1;

	for (int i = 0; i < 16; i++) {
		socklen_t len = sizeof(ss);
		int fd = accept_shedding(lfd, (struct sockaddr *)&ss, &len);

		if (fd < 0)
			return;
		if (ss.ss_family == AF_UNIX)
			snprintf(peer, sizeof(peer), "unix");
		else {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one));
			getnameinfo((struct sockaddr *)&ss, len, host,
			    sizeof(host), serv, sizeof(serv),
			    NI_NUMERICHOST | NI_NUMERICSERV);
			snprintf(peer, sizeof(peer), "%s:%s", host, serv);
		}
		conn_new(fd, peer);
	}
}

static int
listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "nbd socket %s: path too long", path);
		return (-1);
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0) {
		snprintf(err, errlen, "nbd socket: %s", strerror(errno));
		return (-1);
	}
	/* A socket someone answers on is theirs; a dead one is stale. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ||
	    errno == EAGAIN) {
		snprintf(err, errlen, "nbd socket %s: in use by another "
		    "process", path);
		close(fd);
		return (-1);
	}
	close(fd);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0) {
		snprintf(err, errlen, "nbd socket: %s", strerror(errno));
		return (-1);
	}
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(fd, 64) != 0) {
		snprintf(err, errlen, "nbd socket %s: %s", path,
		    strerror(errno));
		close(fd);
		return (-1);
	}
	return (fd);
}

static int
listen_tcp(const char *addr, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICHOST }, *ai;
	int fd, one = 1, rc;

	if ((rc = getaddrinfo(addr, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "nbd %s:%s: %s", addr, port,
		    gai_strerror(rc));
		return (-1);
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, 64) != 0) {
		snprintf(err, errlen, "nbd %s:%s: %s", addr, port,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return (-1);
	}
	freeaddrinfo(ai);
	return (fd);
}

int
nbd_server_start(const struct nbd_settings *st, char *err, size_t errlen)
{
	nbd_server_stop();
	if (st->tls != PORT_TLS_OFF) {
		if (st->tls_psk_file == NULL) {
			snprintf(err, errlen, "nbd tls %s needs a tls_psk_file",
			    port_tls_name(st->tls));
			goto fail;
		}
		if (nbd_psk_load(st->tls_psk_file, &srv.psks, err,
		    errlen) != 0)
			goto fail;
		srv.tls = st->tls;
	}
	if (st->socket != NULL) {
		struct stat sb;

		if ((srv.ufd = listen_unix(st->socket, err, errlen)) < 0 ||
		    (srv.socket = strdup(st->socket)) == NULL)
			goto fail;
		if (stat(srv.socket, &sb) == 0) {
			srv.ino = sb.st_ino;
			srv.dev = sb.st_dev;
		}
		srv.uev = event_new(main_loop->base, srv.ufd,
		    EV_READ | EV_PERSIST, accept_cb, NULL);
		event_add(srv.uev, NULL);
	}
	if (st->address != NULL) {
		snprintf(srv.address, sizeof(srv.address), "%s", st->address);
		snprintf(srv.port, sizeof(srv.port), "%s", st->port ?
		    st->port : NBD_DEFAULT_PORT);
		if ((srv.tfd = listen_tcp(srv.address, srv.port, err,
		    errlen)) < 0)
			goto fail;
		srv.tev = event_new(main_loop->base, srv.tfd,
		    EV_READ | EV_PERSIST, accept_cb, NULL);
		event_add(srv.tev, NULL);
	}
	if (srv.ufd >= 0)
		log_info("nbd: listening on %s", srv.socket);
	if (srv.tfd >= 0)
		log_info("nbd: listening on %s:%s", srv.address, srv.port);
	if (srv.tls != PORT_TLS_OFF)
		log_info("nbd: TLS %s, %d PSK%s", port_tls_name(srv.tls),
		    nbd_psks_count(srv.psks), nbd_psks_count(srv.psks) == 1 ?
		    "" : "s");
	return (0);
fail:
	nbd_server_stop();
	return (-1);
}

void
nbd_server_stop(void)
{
	struct nbd_conn *c, *next;

	if (srv.uev)
		event_free(srv.uev);
	if (srv.tev)
		event_free(srv.tev);
	if (srv.ufd >= 0) {
		struct stat st;

		/* Only our own: another daemon may have taken the path. */
		if (stat(srv.socket, &st) == 0 && st.st_ino == srv.ino &&
		    st.st_dev == srv.dev)
			unlink(srv.socket);
		close(srv.ufd);
	}
	if (srv.tfd >= 0)
		close(srv.tfd);
	free(srv.socket);
	srv.uev = srv.tev = NULL;
	srv.socket = NULL;
	srv.ufd = srv.tfd = -1;
	/* A connection mid-handshake is closed below: it asks no more. */
	srv.tls = PORT_TLS_OFF;
	/* A moved one's state is its loop's to look at. */
	TAILQ_FOREACH_SAFE(c, &conns, entry, next)
		if (c->loop != NULL || c->state != CS_CLOSING)
			conn_close_any(c, "server stopping");
	nbd_psks_free(srv.psks);
	srv.psks = NULL;
}

/* At exit, once the associations are gone: free what is left. */
void
nbd_server_reap(void)
{
	struct nbd_conn *c, *next;

	TAILQ_FOREACH_SAFE(c, &conns, entry, next)
		if (c->pieces == 0 && !c->freeing) {
			c->freeing = true;
			conn_unlink_msg(c);
		}
}
