/*
 * NVMe/TCP queue pair, host role: the initiator side of the same codec the
 * controller uses.  Commands are submitted with host_submit() and complete
 * through their callback on the queue pair's loop.  Output of a loop turn is
 * sent with one sendmsg; C2HData payloads are read in place into the
 * request's buffer.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "nvmfd.h"
#include "host.h"

#define HQ_RX_BUF	(256 * 1024)
#define HQ_IOV_MAX	256
/* Most iovecs one queued entry needs: a header and a digest per PDU, and
 * its data, whose slices span at most HOST_REQ_IOV + PDUs - 1 iovecs. */
#define REQ_TX_IOV	(3 * HOST_H2C_PDUS + HOST_REQ_IOV)

enum { HTX_NONE, HTX_CAPSULE, HTX_H2C };

static void hq_read_cb(evutil_socket_t, short, void *);
static void hq_write_cb(evutil_socket_t, short, void *);

static void hq_fail(struct host_qpair *, const char *, ...) __printflike(2, 3);

static void
hq_fail(struct host_qpair *hq, const char *fmt, ...)
{
	va_list ap;

	if (hq->dead)
		return;
	hq->dead = true;
	va_start(ap, fmt);
	vsnprintf(hq->error, sizeof(hq->error), fmt, ap);
	va_end(ap);
	if (hq->rev)
		event_del(hq->rev);
	if (hq->wev)
		event_del(hq->wev);
	/* Every outstanding request fails with a transport error. */
	for (uint16_t i = 0; i < hq->depth; i++) {
		struct host_req *r = hq->reqs[i];
		struct nvme_cqe cqe = { .status = NVME_SC_DATA_XFER_ERROR << 1 };

		if (r == NULL)
			continue;
		hq->reqs[i] = NULL;
		hq->outstanding--;
		cqe.cid = i;
		r->done(r, &cqe);
	}
	if (hq->on_fail != NULL)
		hq->on_fail(hq);
}

static int
tcp_connect(const char *addr, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	int fd = -1, one = 1, rc;

	if ((rc = getaddrinfo(addr, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "%s:%s: %s", addr, port, gai_strerror(rc));
		return (-1);
	}
	for (a = ai; a != NULL; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		snprintf(err, errlen, "%s %s:%s: %s", fd < 0 ? "socket" :
		    "connect", addr, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return (fd);
}

/*
 * Connect and exchange ICReq/ICResp (blocking; set-up only).  The queue pair
 * then runs on base; depth is the number of commands it may have in flight.
 */
struct host_qpair *
host_connect(struct event_base *base, const char *addr, const char *port,
    bool hdgst, bool ddgst, uint16_t depth, char *err, size_t errlen)
{
	return (host_connect_tls(base, addr, port, NULL, hdgst, ddgst, depth,
	    err, errlen));
}

/* Close what host_connect_tls() set up before failing. */
static void
setup_fail(int fd, struct tls_conn *tls)
{
	tls_conn_free(tls);
	close(fd);
}

struct host_qpair *
host_connect_tls(struct event_base *base, const char *addr, const char *port,
    const struct host_psk *psk, bool hdgst, bool ddgst, uint16_t depth,
    char *err, size_t errlen)
{
	struct host_qpair *hq;
	struct nvme_tcp_ic_pdu ic = { 0 };
	struct pdu_limits lim = { 0 };
	struct tls_conn *tls = NULL;
	struct timeval tv = { 10, 0 };
	uint32_t fei;
	int fd;

	if ((fd = tcp_connect(addr, port, err, errlen)) < 0)
		return (NULL);
	/* HPDA 0: C2HData unpadded; MAXR2T 0: one R2T at a time. */
	tcp_pdu_build_ic(&ic, NVME_TCP_ICREQ, 0, hdgst, ddgst, 0);
	if (psk != NULL) {
		/* The blocking set-up: the handshake and IC exchange are
		 * bounded like the plain exchange is. */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if ((tls = tls_conn_connect(fd, addr, psk->identity, psk->psk,
		    psk->len, psk->hash, err, errlen)) == NULL) {
			close(fd);
			return (NULL);
		}
	}
	if ((tls == NULL && (write(fd, &ic, sizeof(ic)) != (ssize_t)sizeof(ic) ||
	    fd_read_full(fd, &ic, sizeof(ic), 10000) != 0)) ||
	    (tls != NULL && (tls_conn_write_full(tls, &ic, sizeof(ic)) != 0 ||
	    tls_conn_read_full(tls, &ic, sizeof(ic)) != 0))) {
		snprintf(err, errlen, "%s:%s: no ICResp", addr, port);
		setup_fail(fd, tls);
		return (NULL);
	}
	/* The ICResp body has the ICReq's layout and rules (PFV, PDA,
	 * digest bits), plus MAXH2CDATA. */
	if (tcp_pdu_check_ch_host(&ic.hdr, false, &lim, &fei) != 0 ||
	    tcp_pdu_check_icreq(&ic, &fei) != 0) {
		snprintf(err, errlen, "%s:%s: bad ICResp: the field at byte %u",
		    addr, port, fei);
		setup_fail(fd, tls);
		return (NULL);
	}
	if (ic.maxr2t_or_maxh2cdata < NVME_TCP_MIN_MAXH2CDATA ||
	    ic.maxr2t_or_maxh2cdata % 4 != 0) {
		snprintf(err, errlen, "%s:%s: bad ICResp: MAXH2CDATA %u",
		    addr, port, ic.maxr2t_or_maxh2cdata);
		setup_fail(fd, tls);
		return (NULL);
	}
	if (!!(ic.digest & NVME_TCP_IC_HDGST) != hdgst ||
	    !!(ic.digest & NVME_TCP_IC_DDGST) != ddgst) {
		snprintf(err, errlen, "%s:%s: digests refused", addr, port);
		setup_fail(fd, tls);
		return (NULL);
	}
	if ((hq = calloc(1, sizeof(*hq))) == NULL ||
	    (hq->reqs = calloc(depth, sizeof(*hq->reqs))) == NULL ||
	    (hq->rx.buf = malloc(HQ_RX_BUF)) == NULL ||
	    (hq->rev = event_new(base, fd, EV_READ | EV_PERSIST, hq_read_cb,
	    hq)) == NULL ||
	    (hq->wev = event_new(base, fd, EV_WRITE, hq_write_cb, hq)) == NULL) {
		if (hq) {
			if (hq->rev)
				event_free(hq->rev);
			free(hq->rx.buf);
			free(hq->reqs);
		}
		free(hq);
		setup_fail(fd, tls);
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	evutil_make_socket_nonblocking(fd);
	hq->fd = fd;
	hq->tls = tls;
	hq->base = base;
	hq->depth = depth;
	hq->hdgst = hdgst;
	hq->ddgst = ddgst;
	hq->cpda = ic.pda;
	hq->maxh2cdata = ic.maxr2t_or_maxh2cdata;
	hq->rx.cap = HQ_RX_BUF;
	TAILQ_INIT(&hq->txq);
	event_add(hq->rev, NULL);
	return (hq);
}

/* Off its loop (that loop's thread): nothing runs for it until attached. */
void
host_qpair_detach(struct host_qpair *hq)
{
	if (hq->rev)
		event_free(hq->rev);
	if (hq->wev)
		event_free(hq->wev);
	hq->rev = hq->wev = NULL;
	hq->base = NULL;
}

/* Onto base, from the thread of base's loop; -1 (it failed) without memory. */
int
host_qpair_attach(struct host_qpair *hq, struct event_base *base)
{
	hq->base = base;
	if ((hq->rev = event_new(base, hq->fd, EV_READ | EV_PERSIST,
	    hq_read_cb, hq)) == NULL ||
	    (hq->wev = event_new(base, hq->fd, EV_WRITE, hq_write_cb,
	    hq)) == NULL) {
		hq_fail(hq, "%s", "out of memory");
		return (-1);
	}
	event_add(hq->rev, NULL);
	/* Bytes read before the move wait for no socket event. */
	event_active(hq->rev, EV_READ, 0);
	if (!TAILQ_EMPTY(&hq->txq))
		event_add(hq->wev, NULL);
	return (0);
}

void
host_close(struct host_qpair *hq)
{
	hq_fail(hq, "%s", "closed");
	if (hq->rev)
		event_free(hq->rev);
	if (hq->wev)
		event_free(hq->wev);
	tls_conn_free(hq->tls);
	close(hq->fd);
	free(hq->reqs);
	free(hq->rx.buf);
	free(hq);
}

/* ------------------------------------------------------------ transmit */

static void
hq_enqueue(struct host_qpair *hq, struct host_req *r, int kind)
{
	r->tx_kind = kind;
	TAILQ_INSERT_TAIL(&hq->txq, r, tx_link);
	hq->tx_pending = true;
}

/* Bytes of one queued entry on the wire: the PLEN of its PDUs. */
static size_t
req_tx_bytes(const struct host_req *r)
{
	size_t bytes = 0;

	if (r->tx_kind == HTX_CAPSULE)
		return (((const struct nvme_tcp_hdr *)r->hdr)->plen);
	for (int p = 0; p < r->h2c_npdus; p++)
		bytes += ((const struct nvme_tcp_hdr *)r->h2c_hdr[p])->plen;
	return (bytes);
}

/* iovecs of one queued entry (at most REQ_TX_IOV); returns the count. */
static int
req_tx_iov(struct host_qpair *hq, struct host_req *r, struct iovec *iov)
{
	int n = 0;

	if (r->tx_kind == HTX_CAPSULE) {
		iov[n].iov_base = r->hdr;
		iov[n++].iov_len = r->hdr_len;
		if (!r->icd)
			return (n);
		n += iov_slice(r->iov, r->iovcnt, 0, r->data_len, iov + n,
		    HOST_REQ_IOV);
		if (hq->ddgst) {
			iov[n].iov_base = r->ddgst[0];
			iov[n++].iov_len = NVME_TCP_DIGEST_LEN;
		}
		return (n);
	}
	/* H2C: the PDUs prepared for the current R2T. */
	for (int p = 0; p < r->h2c_npdus; p++) {
		struct nvme_tcp_data_pdu *h = (void *)r->h2c_hdr[p];

		iov[n].iov_base = r->h2c_hdr[p];
		iov[n++].iov_len = h->hdr.pdo;
		n += iov_slice(r->iov, r->iovcnt, h->datao, h->datal, iov + n,
		    HOST_REQ_IOV);
		if (hq->ddgst) {
			iov[n].iov_base = r->ddgst[p];
			iov[n++].iov_len = NVME_TCP_DIGEST_LEN;
		}
	}
	return (n);
}

void
host_flush(struct host_qpair *hq)
{
	struct iovec iov[HQ_IOV_MAX];
	struct host_req *r;
	ssize_t n;

	hq->tx_pending = false;
	/* TLS records staged by an earlier turn go first. */
	if (hq->tls != NULL && tls_conn_tx_pending(hq->tls) &&
	    tls_conn_flush(hq->tls) != 0) {
		if (errno == EAGAIN)
			event_add(hq->wev, NULL);
		else
			hq_fail(hq, "send: %s", strerror(errno));
		return;
	}
	while (!hq->dead && !TAILQ_EMPTY(&hq->txq)) {
		int cnt = 0;

		TAILQ_FOREACH(r, &hq->txq, tx_link) {
			if (HQ_IOV_MAX - cnt < REQ_TX_IOV)
				break;
			cnt += req_tx_iov(hq, r, iov + cnt);
		}
		/* The first entry may be partly sent already. */
		cnt = iov_skip(iov, cnt, hq->tx_done);
		n = stream_sendv(hq->fd, hq->tls, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			hq_fail(hq, "send: %s", strerror(errno));
			return;
		}
		while (n > 0 && (r = TAILQ_FIRST(&hq->txq)) != NULL) {
			size_t left = req_tx_bytes(r) - hq->tx_done;

			if ((size_t)n < left) {
				hq->tx_done += n;
				n = 0;
				break;
			}
			n -= left;
			hq->tx_done = 0;
			TAILQ_REMOVE(&hq->txq, r, tx_link);
			r->tx_kind = HTX_NONE;
			if (r->h2c_more) {
				/* The R2T needs more PDUs than one batch. */
				r->h2c_more = false;
				host_queue_h2c(hq, r);
			}
		}
		if (hq->tx_done > 0)
			break;
	}
	if (!hq->dead && (!TAILQ_EMPTY(&hq->txq) ||
	    (hq->tls != NULL && tls_conn_tx_pending(hq->tls))))
		event_add(hq->wev, NULL);
}

static void
hq_write_cb(evutil_socket_t fd, short what, void *arg)
{
	host_flush(arg);
}

/* Build the CapsuleCmd; write data goes in the capsule when it fits. */
int
host_submit(struct host_qpair *hq, struct host_req *r)
{
	struct nvme_tcp_cmd_pdu *c = (struct nvme_tcp_cmd_pdu *)r->hdr;
	uint16_t cid;
	uint32_t pdo;

	if (hq->dead || hq->outstanding >= hq->depth)
		return (-1);
	for (cid = hq->next_cid; hq->reqs[cid] != NULL;
	    cid = (cid + 1) % hq->depth)
		;
	hq->next_cid = (cid + 1) % hq->depth;
	hq->reqs[cid] = r;
	hq->outstanding++;
	r->hq = hq;
	r->c2h_received = 0;
	r->h2c_sent = 0;
	r->h2c_more = false;
	r->sqe.cid = cid;
	r->sqe.flags = (r->sqe.flags & 0x3f) | 0x40;	/* PSDT: SGL */
	r->icd = r->dir == DIR_H2C && r->data_len > 0 &&
	    r->data_len <= (r->sqe.opc == NVME_FABRICS_COMMAND || hq->qid == 0 ?
	    NVMFD_ADMIN_ICD : hq->max_icd);
	if (!r->raw_sgl) {
		memset(r->sqe.sgl, 0, sizeof(r->sqe.sgl));
		put_le32(r->sqe.sgl + 8, r->data_len);
		r->sqe.sgl[15] = r->icd ? NVME_SGL_DATA_BLOCK_OFFSET :
		    NVME_SGL_TRANSPORT_DATA_BLOCK;
	}
	memset(&c->hdr, 0, sizeof(c->hdr));
	c->hdr.type = NVME_TCP_CMD;
	c->hdr.hlen = sizeof(*c);
	c->sqe = r->sqe;
	pdo = r->icd ? tcp_pdu_data_offset(sizeof(*c), hq->hdgst, hq->cpda) :
	    sizeof(*c) + (hq->hdgst ? NVME_TCP_DIGEST_LEN : 0);
	c->hdr.flags = (hq->hdgst ? NVME_TCP_F_HDGST : 0) |
	    (r->icd && hq->ddgst ? NVME_TCP_F_DDGST : 0);
	c->hdr.pdo = r->icd ? pdo : 0;
	c->hdr.plen = pdo + (r->icd ? r->data_len +
	    (hq->ddgst ? NVME_TCP_DIGEST_LEN : 0) : 0);
	memset(r->hdr + sizeof(*c), 0, pdo - sizeof(*c));
	tcp_pdu_put_hdgst(r->hdr, sizeof(*c), hq->hdgst);
	r->hdr_len = pdo;
	if (r->icd && hq->ddgst)
		put_le32(r->ddgst[0], crc32c_iov(r->iov, r->iovcnt, 0,
		    r->data_len));
	hq_enqueue(hq, r, HTX_CAPSULE);
	return (0);
}

/* H2CData PDUs for the outstanding R2T, at most HOST_H2C_PDUS per batch. */
void
host_queue_h2c(struct host_qpair *hq, struct host_req *r)
{
	uint32_t end = r->r2t_offset + r->r2t_len;
	int p;

	for (p = 0; p < HOST_H2C_PDUS && r->h2c_sent < end; p++) {
		struct nvme_tcp_data_pdu *h = (void *)r->h2c_hdr[p];
		uint32_t len = MINIMUM(end - r->h2c_sent, hq->maxh2cdata);
		uint32_t pdo = tcp_pdu_data_offset(sizeof(*h), hq->hdgst,
		    hq->cpda);

		memset(r->h2c_hdr[p], 0, pdo);
		h->hdr.type = NVME_TCP_H2C_DATA;
		h->hdr.flags = (hq->hdgst ? NVME_TCP_F_HDGST : 0) |
		    (hq->ddgst ? NVME_TCP_F_DDGST : 0) |
		    (r->h2c_sent + len == end ? NVME_TCP_F_DATA_LAST : 0);
		h->hdr.hlen = sizeof(*h);
		h->hdr.pdo = pdo;
		h->hdr.plen = pdo + len + (hq->ddgst ? NVME_TCP_DIGEST_LEN : 0);
		h->cccid = r->sqe.cid;
		h->ttag = r->ttag;
		h->datao = r->h2c_sent;
		h->datal = len;
		tcp_pdu_put_hdgst(r->h2c_hdr[p], sizeof(*h), hq->hdgst);
		if (hq->ddgst)
			put_le32(r->ddgst[p], crc32c_iov(r->iov, r->iovcnt,
			    r->h2c_sent, len));
		r->h2c_sent += len;
	}
	r->h2c_npdus = p;
	r->h2c_more = r->h2c_sent < end;
	hq_enqueue(hq, r, HTX_H2C);
}

/* ------------------------------------------------------------- receive */

static void
req_finish(struct host_qpair *hq, uint16_t cid, const struct nvme_cqe *cqe)
{
	struct host_req *r = hq->reqs[cid];

	hq->reqs[cid] = NULL;
	hq->outstanding--;
	r->done(r, cqe);
}

/*
 * The outstanding request a received PDU names, or NULL.  One still
 * waiting to send (its capsule or H2CData) cannot be answered yet: it
 * must not complete while the transmit queue holds it.
 */
static struct host_req *
req_by_cid(struct host_qpair *hq, uint16_t cid)
{
	struct host_req *r = cid < hq->depth ? hq->reqs[cid] : NULL;

	return (r != NULL && r->tx_kind == HTX_NONE ? r : NULL);
}

static void
hq_parse(struct host_qpair *hq)
{
	/* C2HData is aligned as our ICReq asked: HPDA 0. */
	struct pdu_limits lim = {
		.hdgst = hq->hdgst, .ddgst = hq->ddgst, .cpda = 0,
		.max_icd = 0, .maxh2cdata = UINT32_MAX,
	};

	while (!hq->dead && hq->rx.direct_left == 0) {
		const uint8_t *p = hq->rx.buf + hq->rx.off;
		size_t avail = hq->rx.len - hq->rx.off;
		const struct nvme_tcp_hdr *ch = (const void *)p;
		uint32_t fei, hd;
		struct host_req *r;

		if (hq->rx_req != NULL) {
			/* A C2HData payload is in: check its digest. */
			r = hq->rx_req;
			if (hq->ddgst) {
				if (avail < NVME_TCP_DIGEST_LEN)
					return;
				if (get_le32(p) != crc32c_iov(r->iov, r->iovcnt,
				    hq->rx_datao, hq->rx_datal)) {
					hq_fail(hq, "%s", "C2HData digest error");
					return;
				}
				hq->rx.off += NVME_TCP_DIGEST_LEN;
			}
			hq->rx_req = NULL;
			r->c2h_received += hq->rx_datal;
			if (hq->rx_success) {
				struct nvme_cqe cqe = { .cid = r->sqe.cid };

				req_finish(hq, r->sqe.cid, &cqe);
			}
			continue;
		}
		if (avail < sizeof(*ch))
			return;
		if (tcp_pdu_check_ch_host(ch, true, &lim, &fei) != 0) {
			hq_fail(hq, "bad %s header (FEI %u)",
			    tcp_pdu_type_name(ch->type), fei);
			return;
		}
		hd = ch->type != NVME_TCP_C2H_TERM && hq->hdgst ?
		    NVME_TCP_DIGEST_LEN : 0;
		if (ch->type == NVME_TCP_C2H_DATA ? avail < ch->pdo :
		    avail < ch->plen)
			return;
		if (hd && !tcp_pdu_hdgst_ok(p, ch->hlen)) {
			hq_fail(hq, "%s", "header digest error");
			return;
		}
		switch (ch->type) {
		case NVME_TCP_C2H_TERM: {
			const struct nvme_tcp_term_pdu *t = (const void *)p;

			hq_fail(hq, "C2HTermReq: %s, FEI %u",
			    tcp_fes_name(t->fes), t->fei);
			return;
		}
		case NVME_TCP_RSP: {
			const struct nvme_tcp_rsp_pdu *rsp = (const void *)p;

			hq->rx.off += ch->plen;
			if (req_by_cid(hq, rsp->cqe.cid) == NULL) {
				hq_fail(hq, "CapsuleResp for CID %u, which awaits "
				    "none", rsp->cqe.cid);
				return;
			}
			req_finish(hq, rsp->cqe.cid, &rsp->cqe);
			break;
		}
		case NVME_TCP_R2T: {
			const struct nvme_tcp_r2t_pdu *t = (const void *)p;

			hq->rx.off += ch->plen;
			r = req_by_cid(hq, t->cccid);
			if (r == NULL || r->dir != DIR_H2C || r->icd ||
			    t->r2tl == 0 || t->r2to < r->h2c_sent ||
			    (uint64_t)t->r2to + t->r2tl > r->data_len) {
				hq_fail(hq, "%s", "unexpected R2T");
				return;
			}
			r->ttag = t->ttag;
			r->r2t_offset = t->r2to;
			r->r2t_len = t->r2tl;
			r->h2c_sent = t->r2to;
			host_queue_h2c(hq, r);
			break;
		}
		case NVME_TCP_C2H_DATA: {
			const struct nvme_tcp_data_pdu *d = (const void *)p;
			uint32_t datal = ch->plen - ch->pdo -
			    (hq->ddgst ? NVME_TCP_DIGEST_LEN : 0);
			struct iovec part[HOST_REQ_IOV];

			/* SUCCESS comes with LAST (tcp_pdu_check_ch_host),
			 * and only with the last byte of the data. */
			r = req_by_cid(hq, d->cccid);
			if (r == NULL || r->dir != DIR_C2H || d->datal != datal ||
			    d->datao != r->c2h_received ||
			    (uint64_t)d->datao + datal > r->data_len ||
			    ((ch->flags & NVME_TCP_F_DATA_SUCCESS) &&
			    d->datao + datal != r->data_len)) {
				hq_fail(hq, "%s", "unexpected C2HData");
				return;
			}
			hq->rx.off += ch->pdo;
			hq->rx_req = r;
			hq->rx_datao = d->datao;
			hq->rx_datal = datal;
			hq->rx_success = ch->flags & NVME_TCP_F_DATA_SUCCESS;
			rxbuf_take(&hq->rx, part, iov_slice(r->iov, r->iovcnt,
			    d->datao, datal, part, HOST_REQ_IOV), datal);
			break;
		}
		default:
			hq_fail(hq, "unexpected %s", tcp_pdu_type_name(ch->type));
			return;
		}
	}
}

static void
hq_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct host_qpair *hq = arg;

	for (int round = 0; !hq->dead && round < 16; round++) {
		bool drained = false;
		ssize_t n = rxbuf_read(&hq->rx, hq->fd, hq->tls, &drained);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				hq_fail(hq, "receive: %s", strerror(errno));
			break;
		}
		if (n == 0) {
			hq_fail(hq, "%s", "connection closed by the controller");
			break;
		}
		hq_parse(hq);
		if (drained)
			break;
	}
	/* Records already decrypted wait for no socket event. */
	if (!hq->dead && hq->tls != NULL && tls_conn_rx_pending(hq->tls))
		event_active(hq->rev, EV_READ, 0);
	if (hq->tx_pending)
		host_flush(hq);
}

/* ------------------------------------------------ synchronous helpers */

static void
sync_done(struct host_req *r, const struct nvme_cqe *cqe)
{
	r->cqe = *cqe;
	r->completed = true;
}

/* Run one command to completion (set-up path only). */
int
host_run(struct host_qpair *hq, struct host_req *r, int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;

	r->done = sync_done;
	r->completed = false;
	if (host_submit(hq, r) != 0)
		return (-1);
	host_flush(hq);
	while (!r->completed) {
		if (hq->dead || now_ns() > deadline) {
			if (!hq->dead)
				hq_fail(hq, "%s", "command timed out");
			return (-1);
		}
		event_base_loop(hq->base, EVLOOP_ONCE);
	}
	return (0);
}

/* Fabrics Connect for this queue; returns the controller ID or -1. */
int
host_fabrics_connect(struct host_qpair *hq, uint16_t qid, uint16_t sqsize,
    const char *subnqn, const char *hostnqn, const uint8_t hostid[16],
    uint16_t cntlid, uint32_t kato_ms, uint16_t *status)
{
	struct nvmf_connect_data d;
	struct host_req r;

	memset(&r, 0, sizeof(r));
	host_cmd_connect(&r, &d, qid, sqsize, subnqn, hostnqn, hostid, cntlid,
	    kato_ms);
	hq->qid = qid;
	if (host_run(hq, &r, 10000) != 0)
		return (-1);
	*status = r.cqe.status >> 1;
	if (*status != 0)
		return (-1);
	hq->connect_dw0 = r.cqe.dw0;
	return (r.cqe.dw0 & 0xffff);
}
