/*
 * NVMe/TCP queue pair, controller role.
 *
 * Receive: read as much as the socket has into a per-queue buffer and parse
 * every complete PDU in it; H2CData payloads beyond what is buffered are read
 * straight into the command's destination (namespace memory or a pool
 * buffer), with the rest of the receive buffer as a second iovec so the next
 * headers arrive in the same system call.
 * Transmit: responses, R2Ts and C2HData queue on the queue pair and go out in
 * one sendmsg per loop turn (loop_finish_turn), data iovecs pointing at the
 * command's data without a copy.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <limits.h>
#ifdef HAVE_MALLOC_H
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "nvmfd.h"

enum tx_kind { TX_NONE, TX_R2T, TX_C2H, TX_RSP };

#define QP_SETUP_SECONDS	10
#define CMD_SLAB		32	/* command contexts allocated at once */
#define QP_LINGER_SECONDS	5

/* Large enough for a deep queue of small writes per read(); above glibc's
 * mmap threshold, so untouched pages of idle queues cost nothing. */
#define RX_BUF_MIN	(256 * 1024)
#define TX_IOV_MAX	256
#define PDU_ALIGN_MAX	128	/* (31 + 1) * 4 */

static const uint8_t zero_pad[PDU_ALIGN_MAX];	/* C2H padding for HPDA */

static pthread_mutex_t all_mtx = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, qpair) all_qpairs = TAILQ_HEAD_INITIALIZER(all_qpairs);

static void qpair_read_cb(evutil_socket_t, short, void *);
static void qpair_timeout_cb(evutil_socket_t, short, void *);
static void qpair_write_cb(evutil_socket_t, short, void *);
static void qpair_maybe_finish(struct qpair *);
static void cmd_release(struct nvmf_cmd *);
static void qpair_account(struct qpair *, uint8_t opc, uint64_t bytes);

static struct pdu_limits
qpair_limits(struct qpair *qp)
{
	struct pdu_limits lim = {
		.hdgst = qp->hdgst,
		.ddgst = qp->ddgst,
		.cpda = 0,
		.max_icd = qp->max_icd,
		.maxh2cdata = qp->maxh2cdata,
	};

	return (lim);
}

struct qpair *
qpair_create(struct loop *l, int fd, struct port *port, const char *peer,
    const char *local_addr)
{
	struct qpair *qp;
	size_t icd = MAXIMUM(port->inline_data_size, NVMFD_ADMIN_ICD);

	if ((qp = calloc(1, sizeof(*qp))) == NULL)
		return (NULL);
	atomic_init(&qp->refs, 1);
	qp->fd = fd;
	qp->port = port;
	/* For allow lists bound to addresses; AF_UNSPEC if unknown. */
	if (getpeername(fd, (struct sockaddr *)&qp->peer_sa,
	    &(socklen_t){ sizeof(qp->peer_sa) }) != 0)
		qp->peer_sa.ss_family = AF_UNSPEC;
	qp->state = port->tls != PORT_TLS_OFF ? QP_TLS_HANDSHAKE : QP_WAIT_ICREQ;
	snprintf(qp->peer, sizeof(qp->peer), "%s", peer);
	snprintf(qp->local_addr, sizeof(qp->local_addr), "%s", local_addr);
	qp->max_icd = NVMFD_ADMIN_ICD;	/* Fabrics commands until Connect */
	qp->maxh2cdata = port->maxh2cdata;
	TAILQ_INIT(&qp->free_cmds);
	TAILQ_INIT(&qp->txq);
	/* Room for the largest capsule plus a batch of small PDUs behind it. */
	qp->rx.cap = RX_BUF_MIN + icd + sizeof(struct nvme_tcp_cmd_pdu) +
	    PDU_ALIGN_MAX + 2 * NVME_TCP_DIGEST_LEN;
	if ((qp->rx.buf = malloc(qp->rx.cap)) == NULL ||
	    (qp->connect_cmd = calloc(1, sizeof(*qp->connect_cmd))) == NULL) {
		free(qp->rx.buf);
		free(qp);
		return (NULL);
	}
	qp->connect_cmd->qp = qp;
	qp->created = now_ns();
	port_ref(port);
	pthread_mutex_lock(&all_mtx);
	TAILQ_INSERT_TAIL(&all_qpairs, qp, all_link);
	pthread_mutex_unlock(&all_mtx);
	qpair_attach(qp, l);
	return (qp);
}

/*
 * A connection must finish ICReq and Connect within QP_SETUP_SECONDS, and
 * one being closed after a TermReq must take its last bytes within
 * QP_LINGER_SECONDS: a silent peer never pins a connection.
 */
static void
qpair_arm_timer(struct qpair *qp, int seconds)
{
	struct timeval tv = { seconds, 0 };

	if (qp->timer != NULL)
		evtimer_add(qp->timer, &tv);
}

static void
qpair_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qpair *qp = arg;
	struct loop *l = qp->loop;

	qpair_ref(qp);
	qpair_close(qp, qp->state == QP_CLOSING ? "peer stopped reading" :
	    qp->state == QP_TLS_HANDSHAKE ? "no TLS handshake within the "
	    "set-up time" : "no Connect within the set-up time");
	loop_finish_turn(l);
	qpair_unref(qp);
}

/* Start serving the socket from loop l; called on l's thread. */
void
qpair_attach(struct qpair *qp, struct loop *l)
{
	/* Atomic: qpairs_close_port() looks at it from the main loop. */
	__atomic_store_n(&qp->loop, l, __ATOMIC_RELEASE);
	qp->owner = l;
	qp->rev = &qp->ev_store[0];
	qp->wev = &qp->ev_store[1];
	qp->timer = &qp->ev_store[2];
	event_assign(qp->rev, l->base, qp->fd, EV_READ | EV_PERSIST,
	    qpair_read_cb, qp);
	event_assign(qp->wev, l->base, qp->fd, EV_WRITE, qpair_write_cb, qp);
	evtimer_assign(qp->timer, l->base, qpair_timeout_cb, qp);
	atomic_fetch_add(&l->nqpairs, 1);
	/* Closed in transit (a kill message overtook the handoff): finish it
	 * here.  qpair_close() does nothing for one already dead. */
	if (qp->state == QP_DEAD) {
		qpair_maybe_finish(qp);
		return;
	}
	if (qp->state == QP_CLOSING) {
		qpair_close(qp, NULL);
		return;
	}
	/* The loop's table of sockets may have to grow: without memory the
	 * connection could never be read, so it goes now. */
	if (event_add(qp->rev, NULL) != 0) {
		qpair_close(qp, "out of memory");
		return;
	}
	if (qp->state != QP_ACTIVE)
		qpair_arm_timer(qp, QP_SETUP_SECONDS);
	/* PDUs that arrived behind the Connect are already buffered (here,
	 * or decrypted or not inside TLS). */
	if (qp->rx.len > qp->rx.off ||
	    (qp->tls != NULL && tls_conn_rx_pending(qp->tls)))
		event_active(qp->rev, EV_READ, 0);
	if (!TAILQ_EMPTY(&qp->txq) || qp->ctl_len)
		qpair_mark_dirty(qp);
}

/* Stop serving on the current loop, before handing the queue to another. */
void
qpair_detach(struct qpair *qp)
{
	struct loop *l = qp->loop;

	if (qp->on_dirty) {
		TAILQ_REMOVE(&l->dirty, qp, dirty_link);
		qp->on_dirty = false;
	}
	event_del(qp->rev);
	event_del(qp->wev);
	evtimer_del(qp->timer);
	qp->rev = qp->wev = qp->timer = NULL;
	atomic_fetch_sub(&l->nqpairs, 1);
	__atomic_store_n(&qp->loop, NULL, __ATOMIC_RELEASE);
}

void
qpair_ref(struct qpair *qp)
{
	atomic_fetch_add(&qp->refs, 1);
}

void
qpair_unref(struct qpair *qp)
{
	if (atomic_fetch_sub(&qp->refs, 1) != 1)
		return;
	pthread_mutex_lock(&all_mtx);
	TAILQ_REMOVE(&all_qpairs, qp, all_link);
	pthread_mutex_unlock(&all_mtx);
	port_unref(qp->port);
	free(qp->connect_cmd);
	free(qp->error);
	free(qp);
}

/*
 * Command contexts, found by transfer tag.  They are allocated in slabs as
 * the host first fills the queue, up to its depth, and then only reused:
 * an idle queue of depth 1024 costs one slab, a busy one never allocates.
 */
static int
qpair_grow(struct qpair *qp)
{
	uint16_t n = MINIMUM(CMD_SLAB, qp->sqsize - qp->ncmds);
	struct nvmf_cmd *slab;

	if (n == 0 || (slab = calloc(n, sizeof(*slab))) == NULL)
		return (-1);
	for (uint16_t i = 0; i < n; i++) {
		slab[i].qp = qp;
		slab[i].ttag = qp->ncmds;
		qp->cmds[qp->ncmds++] = &slab[i];
		TAILQ_INSERT_TAIL(&qp->free_cmds, &slab[i], link);
	}
	return (0);
}

static void
qpair_free_cmds(struct qpair *qp)
{
	for (uint16_t i = 0; i < qp->ncmds; i += CMD_SLAB)
		free(qp->cmds[i]);
	free(qp->cmds);
	qp->cmds = NULL;
	qp->ncmds = 0;
}

/* The queue size is known (Connect): set up the tag table. */
int
qpair_set_depth(struct qpair *qp, uint16_t sqsize)
{
	if ((qp->cmds = calloc(sqsize, sizeof(*qp->cmds))) == NULL)
		return (-1);
	qp->sqsize = sqsize;
	if (qpair_grow(qp) != 0)
		return (-1);
	qp->max_icd = qp->qid == 0 ? NVMFD_ADMIN_ICD : qp->port->inline_data_size;
	qp->state = QP_ACTIVE;
	if (qp->timer != NULL)
		evtimer_del(qp->timer);
	return (0);
}

void
qpair_mark_dirty(struct qpair *qp)
{
	if (!qp->on_dirty && qp->loop != NULL) {
		TAILQ_INSERT_TAIL(&qp->loop->dirty, qp, dirty_link);
		qp->on_dirty = true;
	}
}

/* ------------------------------------------------------------ teardown */

/* Stop reading and writing; in-flight backend I/O still completes. */
void
qpair_close(struct qpair *qp, const char *why)
{
	struct nvmf_cmd *cmd;

	if (qp->state == QP_DEAD)
		return;
	qpair_ref(qp);
	if (why != NULL && qp->error == NULL) {
		qp->error = strdup(why);
		log_peer_info("%s: qid %u closed: %s", qp->peer, qp->qid, why);
	}
	qp->state = QP_DEAD;
	if (qp->rev)
		event_del(qp->rev);
	if (qp->wev)
		event_del(qp->wev);
	if (qp->timer)
		evtimer_del(qp->timer);
	auth_qpair_free(qp);
	if (qp->tls != NULL) {
		tls_conn_free(qp->tls);
		qp->tls = NULL;
	}
	if (qp->fd >= 0) {
		close(qp->fd);
		qp->fd = -1;
	}
	/* Drop queued output; commands waiting only for the wire are done. */
	while ((cmd = TAILQ_FIRST(&qp->txq)) != NULL) {
		TAILQ_REMOVE(&qp->txq, cmd, link);
		cmd->tx_kind = TX_NONE;
		if (cmd->data_ready == NULL || cmd->rsp_len || cmd->c2h_len)
			cmd_release(cmd);
	}
	qp->ctl_len = 0;
	fused_qpair_closing(qp);
	/* Commands waiting for H2C data will never get it. */
	for (uint16_t i = 0; i < qp->ncmds; i++) {
		cmd = qp->cmds[i];
		if (cmd->busy && cmd->data_ready != NULL && !cmd->in_backend)
			cmd_release(cmd);
	}
	if (qp->ctrl != NULL && qp->qid == 0)
		ctrl_admin_closing(qp->ctrl);
	qpair_maybe_finish(qp);
	qpair_unref(qp);
}

/*
 * Close the connections on the main loop that have no controller yet (those
 * with one go with their controller); port NULL means every port.
 */
void
qpairs_close_port(struct port *port)
{
	struct qpair *qp, *next, *victims[64];
	int n;

	do {
		n = 0;
		pthread_mutex_lock(&all_mtx);
		TAILQ_FOREACH_SAFE(qp, &all_qpairs, all_link, next) {
			/* A worker may be detaching it now: only the main
			 * loop's own are looked at further. */
			if (__atomic_load_n(&qp->loop, __ATOMIC_ACQUIRE) !=
			    main_loop || qp->ctrl != NULL ||
			    qp->state == QP_DEAD ||
			    (port != NULL && qp->port != port))
				continue;
			qpair_ref(qp);
			victims[n++] = qp;
			if (n == (int)nitems(victims))
				break;
		}
		pthread_mutex_unlock(&all_mtx);
		for (int i = 0; i < n; i++) {
			qpair_close(victims[i], "port closed");
			qpair_unref(victims[i]);
		}
	} while (n == (int)nitems(victims));
}

/* Visit every connection (for listings; the callback must not block). */
void
qpairs_foreach(qpair_visit_fn fn, void *arg)
{
	struct qpair *qp;

	pthread_mutex_lock(&all_mtx);
	TAILQ_FOREACH(qp, &all_qpairs, all_link)
		fn(qp, arg);
	pthread_mutex_unlock(&all_mtx);
}

static void
ioq_gone_msg(void *arg)
{
	ctrl_ioq_gone(arg);
}

/* Free what belongs to this loop once nothing is in flight any more. */
static void
qpair_maybe_finish(struct qpair *qp)
{
	if (qp->state != QP_DEAD || qp->inflight > 0 || qp->loop == NULL)
		return;
	qpair_detach(qp);
	qpair_free_cmds(qp);
	free(qp->rx.buf);
	qp->rx.buf = NULL;
	/* The last connection gone: give freed heap back to the system. */
	if (atomic_fetch_sub(&nconnections, 1) == 1) {
#ifdef HAVE_MALLOC_TRIM
		malloc_trim(0);
#endif
	}
	/* The controller's reference keeps qp alive past our own. */
	if (qp->ctrl != NULL && qp->qid == 0)
		ctrl_admin_gone(qp->ctrl);	/* admin queues live on main */
	else if (qp->ctrl != NULL)
		loop_post(main_loop, ioq_gone_msg, qp);
	qpair_unref(qp);
}

static void
qpair_adopt_msg(void *arg)
{
	struct qpair *qp = arg;

	qpair_attach(qp, cur_loop);
}

/*
 * Move an I/O queue to a worker after its Connect: the receive buffer and any
 * queued output go with it, and the worker owns it from then on.
 */
void
qpair_handoff(struct qpair *qp, struct loop *to)
{
	if (to == qp->loop)
		return;
	qp->handoff = to;
	qp->owner = to;
}

static void
qpair_do_handoff(struct qpair *qp)
{
	struct loop *to = qp->handoff;

	qp->handoff = NULL;
	qpair_detach(qp);
	loop_post(to, qpair_adopt_msg, qp);
}

/* Report a fatal transport error with C2HTermReq, then close. */
void
qpair_fatal(struct qpair *qp, uint16_t fes, uint32_t fei, const char *why)
{
	const uint8_t *bad = qp->rx.buf + qp->rx.off;
	size_t badlen = MINIMUM(qp->rx.len - qp->rx.off, NVME_TCP_TERM_MAX_DATA);

	if (qp->state >= QP_CLOSING)
		return;
	log_peer_warnx("%s: qid %u: %s (%s, FEI %u)", qp->peer, qp->qid, why,
	    tcp_fes_name(fes), fei);
	STAT_ADD(qp->stats.errors, 1);
	if (badlen > 0) {
		const struct nvme_tcp_hdr *ch = (const void *)bad;

		if (badlen >= sizeof(*ch) && ch->hlen >= sizeof(*ch))
			badlen = MINIMUM(badlen, ch->hlen);
	}
	qp->ctl_len = tcp_pdu_build_term(qp->ctl_pdu, NVME_TCP_C2H_TERM, fes,
	    fei, bad, badlen);
	qp->ctl_sent = 0;
	qp->state = QP_CLOSING;
	qpair_arm_timer(qp, QP_LINGER_SECONDS);
	qp->close_after_tx = true;
	if (qp->error == NULL)
		qp->error = strdup(why);
	event_del(qp->rev);
	qpair_mark_dirty(qp);
}

/* -------------------------------------------------------------- transmit */

static int
cmd_tx_iov(struct nvmf_cmd *cmd, struct iovec *iov, int max)
{
	int n = 0;

	if (max < 4 + NVMFD_CMD_MAX_IOV)
		return (0);
	if (cmd->hdr_len) {
		iov[n].iov_base = cmd->hdr;
		iov[n++].iov_len = cmd->hdr_len;
	}
	if (cmd->pad_len) {
		iov[n].iov_base = (void *)zero_pad;
		iov[n++].iov_len = cmd->pad_len;
	}
	if (cmd->tx_kind == TX_C2H) {
		size_t left = cmd->c2h_len;

		for (int i = 0; i < cmd->iovcnt && left > 0; i++) {
			iov[n].iov_base = cmd->iov[i].iov_base;
			iov[n].iov_len = MINIMUM(cmd->iov[i].iov_len, left);
			left -= iov[n++].iov_len;
		}
		if (cmd->qp->ddgst) {
			iov[n].iov_base = cmd->ddgst;
			iov[n++].iov_len = NVME_TCP_DIGEST_LEN;
		}
	}
	if (cmd->rsp_len) {
		iov[n].iov_base = cmd->rsp;
		iov[n++].iov_len = cmd->rsp_len;
	}
	return (n);
}

static size_t
cmd_tx_bytes(struct nvmf_cmd *cmd)
{
	size_t n = cmd->hdr_len + cmd->pad_len + cmd->rsp_len;

	if (cmd->tx_kind == TX_C2H)
		n += cmd->c2h_len + (cmd->qp->ddgst ? NVME_TCP_DIGEST_LEN : 0);
	return (n);
}

/* A queued entry has been written completely. */
static void
cmd_tx_done(struct nvmf_cmd *cmd)
{
	int kind = cmd->tx_kind;

	cmd->tx_kind = TX_NONE;
	cmd->hdr_len = 0;
	cmd->pad_len = 0;
	if (kind != TX_R2T)
		cmd_release(cmd);
}

/* TLS: records staged earlier go first.  0, -1 to wait, -2 closed. */
static int
qpair_flush_stream(struct qpair *qp)
{
	if (qp->tls == NULL || !tls_conn_tx_pending(qp->tls))
		return (0);
	if (tls_conn_flush(qp->tls) == 0)
		return (0);
	if (errno == EAGAIN) {
		event_add(qp->wev, NULL);
		return (-1);
	}
	qpair_close(qp, strerror(errno));
	return (-2);
}

/*
 * Reads of one block sent from RAM hold their block (atomic.c) until their
 * data is in the socket.  Those the socket had no room for are copied to a
 * buffer and let go now: a host that does not read must not keep writers
 * of those blocks waiting.
 */
static void
tx_unhold(struct qpair *qp)
{
	struct nvmf_cmd *cmd;

	TAILQ_FOREACH(cmd, &qp->txq, link) {
		const void *src = cmd->iov[0].iov_base;

		if (!cmd->atomic_held || cmd->buf != NULL ||
		    cmd_alloc_buf(cmd, cmd->c2h_len) != 0)
			continue;	/* no buffer: held until sent */
		memcpy(cmd->buf, src, cmd->c2h_len);
		atomic_unhold(cmd);
	}
}

void
qpair_flush(struct qpair *qp)
{
	struct iovec iov[TX_IOV_MAX];
	struct nvmf_cmd *cmd;
	size_t skip;
	ssize_t n;
	int cnt;
	bool ctl;

	if (qp->fd < 0 || qp->state == QP_DEAD ||
	    qp->state == QP_TLS_HANDSHAKE)
		return;
	switch (qpair_flush_stream(qp)) {
	case 0:
		break;
	case -1:
		tx_unhold(qp);
		return;
	default:
		return;		/* closed: qp may be gone */
	}
	while (qp->ctl_len > 0 || !TAILQ_EMPTY(&qp->txq)) {
		cnt = 0;
		skip = qp->tx_done;
		/* A control PDU (ICResp, C2HTermReq) never goes inside another
		 * PDU: a partly sent entry is finished first. */
		ctl = qp->ctl_len > 0 && qp->tx_done == 0;
		if (ctl) {
			iov[cnt].iov_base = qp->ctl_pdu + qp->ctl_sent;
			iov[cnt++].iov_len = qp->ctl_len - qp->ctl_sent;
		} else {
			TAILQ_FOREACH(cmd, &qp->txq, link) {
				int k = cmd_tx_iov(cmd, iov + cnt, TX_IOV_MAX - cnt);

				if (k == 0)
					break;
				/* Drop what an earlier partial write sent: it
				 * lies within the first entry, which is retired
				 * as soon as it went out whole. */
				if (skip > 0) {
					k = iov_skip(iov + cnt, k, skip);
					skip = 0;
				}
				cnt += k;
				if (qp->ctl_len > 0)
					break;
			}
		}
		n = stream_sendv(qp->fd, qp->tls, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			qpair_close(qp, strerror(errno));
			return;
		}
		if (ctl) {
			qp->ctl_sent += n;
			if (qp->ctl_sent < qp->ctl_len)
				break;	/* the socket is full */
			qp->ctl_len = qp->ctl_sent = 0;
			/* Nothing may follow a C2HTermReq: drop the rest
			 * (once TLS wrote it out). */
			if (qp->state == QP_CLOSING) {
				if (qpair_flush_stream(qp) == 0)
					qpair_close(qp, NULL);
				return;
			}
			continue;
		}
		/* Retire every entry that went out whole. */
		while (n > 0 && (cmd = TAILQ_FIRST(&qp->txq)) != NULL) {
			size_t left = cmd_tx_bytes(cmd) - qp->tx_done;

			if ((size_t)n < left) {
				qp->tx_done += n;
				break;
			}
			n -= left;
			qp->tx_done = 0;
			TAILQ_REMOVE(&qp->txq, cmd, link);
			cmd_tx_done(cmd);
		}
		if (n > 0 || qp->tx_done > 0)
			break;	/* short write: the socket is full */
	}
	if (qp->ctl_len > 0 || !TAILQ_EMPTY(&qp->txq) ||
	    (qp->tls != NULL && tls_conn_tx_pending(qp->tls))) {
		event_add(qp->wev, NULL);
		tx_unhold(qp);
		return;
	}
	if (qp->close_after_tx)
		qpair_close(qp, NULL);
}

static void
qpair_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qpair *qp = arg;
	struct loop *l = qp->loop;

	qpair_ref(qp);
	if (qp->state == QP_TLS_HANDSHAKE)
		event_active(qp->rev, EV_READ, 0);	/* it drives the handshake */
	else
		qpair_flush(qp);
	loop_finish_turn(l);
	qpair_unref(qp);
}

static void
tx_enqueue(struct nvmf_cmd *cmd, int kind)
{
	struct qpair *qp = cmd->qp;

	cmd->tx_kind = kind;
	TAILQ_INSERT_TAIL(&qp->txq, cmd, link);
	qpair_mark_dirty(qp);
}

static void
build_rsp(struct nvmf_cmd *cmd)
{
	struct qpair *qp = cmd->qp;
	struct nvme_tcp_rsp_pdu *rsp = (struct nvme_tcp_rsp_pdu *)cmd->rsp;

	memset(rsp, 0, sizeof(*rsp));
	rsp->hdr.type = NVME_TCP_RSP;
	rsp->hdr.flags = qp->hdgst ? NVME_TCP_F_HDGST : 0;
	rsp->hdr.hlen = sizeof(*rsp);
	rsp->hdr.plen = sizeof(*rsp) + (qp->hdgst ? NVME_TCP_DIGEST_LEN : 0);
	cmd->cqe.cid = cmd->sqe.cid;
	cmd->cqe.sqid = qp->qid;
	cmd->cqe.sqhd = qp->sqflow_disabled ? 0xffff : qp->sqhd;
	rsp->cqe = cmd->cqe;
	tcp_pdu_put_hdgst(cmd->rsp, sizeof(*rsp), qp->hdgst);
	cmd->rsp_len = rsp->hdr.plen;
}

static void
build_c2h(struct nvmf_cmd *cmd, bool success)
{
	struct qpair *qp = cmd->qp;
	struct nvme_tcp_data_pdu *h = (struct nvme_tcp_data_pdu *)cmd->hdr;
	uint32_t pdo = tcp_pdu_data_offset(sizeof(*h), qp->hdgst, qp->hpda);

	memset(cmd->hdr, 0, sizeof(*h));
	h->hdr.type = NVME_TCP_C2H_DATA;
	h->hdr.flags = NVME_TCP_F_DATA_LAST |
	    (success ? NVME_TCP_F_DATA_SUCCESS : 0) |
	    (qp->hdgst ? NVME_TCP_F_HDGST : 0) |
	    (qp->ddgst ? NVME_TCP_F_DDGST : 0);
	h->hdr.hlen = sizeof(*h);
	h->hdr.pdo = pdo;
	h->hdr.plen = pdo + cmd->c2h_len + (qp->ddgst ? NVME_TCP_DIGEST_LEN : 0);
	h->cccid = cmd->sqe.cid;
	h->datao = 0;
	h->datal = cmd->c2h_len;
	tcp_pdu_put_hdgst(cmd->hdr, sizeof(*h), qp->hdgst);
	cmd->hdr_len = sizeof(*h) + (qp->hdgst ? NVME_TCP_DIGEST_LEN : 0);
	cmd->pad_len = pdo - cmd->hdr_len;
	if (qp->ddgst)
		put_le32(cmd->ddgst, crc32c_iov(cmd->iov, cmd->iovcnt, 0,
		    cmd->c2h_len));
}

/*
 * Finish a command: C2HData for its data (if it succeeded and returns any),
 * then the CapsuleResp, unless the host disabled SQ flow control, in which
 * case a successful C2HData carries SUCCESS and no response follows.
 */
void
cmd_complete(struct nvmf_cmd *cmd)
{
	struct qpair *qp = cmd->qp;
	bool ok = (cmd->cqe.status >> 1) == 0;

	cmd->in_backend = false;
	cmd->data_ready = NULL;
	if (cmd->ns != NULL) {
		ns_account(cmd->ns, cmd->sqe.opc, cmd->data_len,
		    cmd->cqe.status >> 1, cur_loop->now - cmd->start_ns);
		qpair_account(qp, cmd->sqe.opc, ok ? cmd->data_len : 0);
	}
	if (qp->state == QP_DEAD) {
		cmd_release(cmd);
		qpair_maybe_finish(qp);
		return;
	}
	if (!ok) {
		STAT_ADD(qp->stats.errors, 1);
		status_account(cmd->cqe.status >> 1);
		if (qp->ctrl != NULL)
			ctrl_error_record(qp->ctrl, cmd);
	}
	cmd->hdr_len = 0;
	cmd->pad_len = 0;
	cmd->rsp_len = 0;
	if (ok && cmd->dir == DIR_C2H && cmd->c2h_len > 0) {
		bool success = qp->sqflow_disabled && cmd->cqe.dw0 == 0 &&
		    cmd->cqe.dw1 == 0;

		STAT_ADD(qp->stats.bytes_read, cmd->c2h_len);
		build_c2h(cmd, success);
		if (!success)
			build_rsp(cmd);
		tx_enqueue(cmd, TX_C2H);
		return;
	}
	cmd->c2h_len = 0;
	build_rsp(cmd);
	tx_enqueue(cmd, TX_RSP);
}

void
cmd_complete_status(struct nvmf_cmd *cmd, uint16_t status)
{
	cmd->cqe.status = (uint16_t)(status << 1);
	cmd_complete(cmd);
}

int
cmd_alloc_buf(struct nvmf_cmd *cmd, size_t len)
{
	struct qpair *qp = cmd->qp;

	if (qp->qid == 0 || qp->ncmds == 0) {
		cmd->buf = calloc(1, len ? len : 1);
		cmd->buf_malloced = true;
	} else {
		cmd->buf = bufpool_get(qp->loop->pool, len);
		cmd->buf_malloced = false;
	}
	if (cmd->buf == NULL)
		return (-1);
	cmd->buf_len = len;
	cmd->iov[0].iov_base = cmd->buf;
	cmd->iov[0].iov_len = len;
	cmd->iovcnt = 1;
	return (0);
}

static void
cmd_release(struct nvmf_cmd *cmd)
{
	struct qpair *qp = cmd->qp;

	if (cmd->buf != NULL) {
		if (cmd->buf_malloced)
			free(cmd->buf);
		else
			bufpool_put(qp->loop ? qp->loop->pool : cur_loop->pool,
			    cmd->buf, cmd->buf_len);
		cmd->buf = NULL;
	}
	if (cmd->buf2 != NULL) {
		bufpool_put(qp->loop ? qp->loop->pool : cur_loop->pool,
		    cmd->buf2, cmd->buf2_len);
		cmd->buf2 = NULL;
	}
	if (cmd->atomic_held)
		atomic_unhold(cmd);
	if (cmd->ns != NULL) {
		ns_release(cmd->ns, cmd->ns_epoch);
		cmd->ns = NULL;
	}
	cmd->busy = false;
	cmd->data_ready = NULL;
	cmd->tx_kind = TX_NONE;
	if (--qp->inflight == 0 && qp->busy_counted) {
		qp->busy_counted = false;
		health_busy_leave(qp->ctrl, now_ns());
	}
	if (cmd != qp->connect_cmd)
		TAILQ_INSERT_HEAD(&qp->free_cmds, cmd, link);
}

/* The controller's view of the I/O (SMART per controller, list-ctrl). */
static void
qpair_account(struct qpair *qp, uint8_t opc, uint64_t bytes)
{
	if (opc == NVME_CMD_READ) {
		STAT_ADD(qp->stats.reads, 1);
		STAT_ADD(qp->stats.data_read, bytes);
	} else if (opc == NVME_CMD_WRITE) {
		STAT_ADD(qp->stats.writes, 1);
		STAT_ADD(qp->stats.data_written, bytes);
	}
}

/*
 * Get the host's data for a write-type command into cmd->iov: copy it from
 * the capsule, or ask for it with one R2T covering the whole transfer.
 */
void
cmd_fetch_data(struct nvmf_cmd *cmd, void (*ready)(struct nvmf_cmd *))
{
	struct qpair *qp = cmd->qp;
	struct nvme_tcp_r2t_pdu *r2t = (struct nvme_tcp_r2t_pdu *)cmd->hdr;

	if (cmd->icd != NULL) {
		const uint8_t *src = cmd->icd;
		uint32_t left = cmd->icd_len;

		for (int i = 0; i < cmd->iovcnt && left > 0; i++) {
			size_t n = MINIMUM(cmd->iov[i].iov_len, left);

			memcpy(cmd->iov[i].iov_base, src, n);
			src += n;
			left -= n;
		}
		cmd->icd = NULL;
		ready(cmd);
		return;
	}
	cmd->data_ready = ready;
	cmd->h2c_received = 0;
	cmd->h2c_failed = false;
	cmd->r2t_offset = 0;
	cmd->r2t_len = cmd->data_len;
	memset(r2t, 0, sizeof(*r2t));
	r2t->hdr.type = NVME_TCP_R2T;
	r2t->hdr.flags = qp->hdgst ? NVME_TCP_F_HDGST : 0;
	r2t->hdr.hlen = sizeof(*r2t);
	r2t->hdr.plen = sizeof(*r2t) + (qp->hdgst ? NVME_TCP_DIGEST_LEN : 0);
	r2t->cccid = cmd->sqe.cid;
	r2t->ttag = cmd->ttag;
	r2t->r2to = 0;
	r2t->r2tl = cmd->data_len;
	tcp_pdu_put_hdgst(cmd->hdr, sizeof(*r2t), qp->hdgst);
	cmd->hdr_len = r2t->hdr.plen;
	cmd->pad_len = 0;
	cmd->rsp_len = 0;
	cmd->c2h_len = 0;
	tx_enqueue(cmd, TX_R2T);
}

/* --------------------------------------------------------------- receive */

static void
handle_icreq(struct qpair *qp, const struct nvme_tcp_ic_pdu *ic)
{
	uint32_t fei;
	int fes;

	if ((fes = tcp_pdu_check_icreq(ic, &fei)) != 0) {
		qpair_fatal(qp, fes, fei, "bad ICReq");
		return;
	}
	qp->hpda = ic->pda;
	qp->maxr2t = ic->maxr2t_or_maxh2cdata;
	/* Echo the host's digest choice where the port allows it; a host
	 * that insists on a refused digest then fails the connect itself. */
	qp->hdgst = (ic->digest & NVME_TCP_IC_HDGST) && qp->port->header_digest;
	qp->ddgst = (ic->digest & NVME_TCP_IC_DDGST) && qp->port->data_digest;
	tcp_pdu_build_ic((struct nvme_tcp_ic_pdu *)qp->ctl_pdu,
	    NVME_TCP_ICRESP, 0, qp->hdgst, qp->ddgst, qp->maxh2cdata);
	qp->ctl_len = sizeof(struct nvme_tcp_ic_pdu);
	qp->ctl_sent = 0;
	qp->state = QP_WAIT_CONNECT;
	qpair_mark_dirty(qp);
}

static struct nvmf_cmd *
cmd_get(struct qpair *qp)
{
	struct nvmf_cmd *cmd;

	if (qp->state == QP_WAIT_CONNECT) {
		cmd = qp->connect_cmd;
		if (cmd->busy)
			return (NULL);
	} else {
		if (TAILQ_EMPTY(&qp->free_cmds) && qpair_grow(qp) != 0)
			return (NULL);
		cmd = TAILQ_FIRST(&qp->free_cmds);
		TAILQ_REMOVE(&qp->free_cmds, cmd, link);
	}
	cmd->busy = true;
	cmd->in_backend = false;
	cmd->data_ready = NULL;
	cmd->buf = NULL;
	cmd->buf2 = NULL;
	cmd->iovcnt = 0;
	cmd->c2h_len = 0;
	cmd->ns = NULL;
	cmd->tx_kind = TX_NONE;
	memset(&cmd->cqe, 0, sizeof(cmd->cqe));
	if (qp->inflight++ == 0 && qp->qid != 0 && qp->ctrl != NULL) {
		qp->busy_counted = true;
		health_busy_enter(qp->ctrl, now_ns());
	}
	return (cmd);
}

/* Check the SGL against the capsule (NVMe/TCP 1.0 section 3.3.1). */
static uint16_t
cmd_parse_sgl(struct nvmf_cmd *cmd, const uint8_t *icd, uint32_t icd_len)
{
	const uint8_t *sgl = cmd->sqe.sgl;
	uint64_t addr = get_le64(sgl);
	uint32_t len = get_le32(sgl + 8);
	uint8_t id = sgl[15];

	cmd->data_len = len;
	cmd->icd = NULL;
	cmd->icd_len = 0;
	if ((cmd->sqe.flags >> 6) == 0 && cmd->sqe.opc != NVME_FABRICS_COMMAND)
		return (NVME_SC_INVALID_FIELD);		/* PRPs: not on fabrics */
	switch (id) {
	case NVME_SGL_DATA_BLOCK_OFFSET:
		if (icd_len == 0 && len != 0)
			return (NVME_SC_SGL_INVALID_DATA_LEN);
		if (addr != 0)
			return (NVME_SC_SGL_INVALID_OFFSET);
		if (len != icd_len)
			return (NVME_SC_SGL_INVALID_DATA_LEN);
		cmd->icd = icd;
		cmd->icd_len = icd_len;
		return (0);
	case NVME_SGL_TRANSPORT_DATA_BLOCK:
		if (icd_len != 0)
			return (NVME_SC_SGL_INVALID_TYPE);
		if (addr != 0)
			return (NVME_SC_SGL_INVALID_OFFSET);
		return (0);
	default:
		if (icd_len != 0)
			return (NVME_SC_SGL_INVALID_TYPE);
		if (len == 0 && addr == 0)
			return (0);	/* no data */
		return (NVME_SC_SGL_INVALID_TYPE);
	}
}

static void
handle_capsule(struct qpair *qp, const struct nvme_tcp_cmd_pdu *pdu,
    const uint8_t *icd, uint32_t icd_len, bool ddgst_ok)
{
	struct nvmf_cmd *cmd;
	uint16_t status;

	if ((cmd = cmd_get(qp)) == NULL) {
		qpair_fatal(qp, NVME_TCP_FES_PDU_SEQ_ERROR, 0,
		    "host exceeded the queue depth");
		return;
	}
	memcpy(&cmd->sqe, &pdu->sqe, sizeof(cmd->sqe));
	STAT_ADD(qp->stats.cmds, 1);
	__atomic_store_n(&qp->last_cmd_ns, cur_loop->now, __ATOMIC_RELAXED);
	if (qp->sqsize)
		qp->sqhd = (qp->sqhd + 1) % qp->sqsize;
	cmd->start_ns = 0;
	if (!ddgst_ok) {
		cmd_complete_status(cmd, NVME_SC_DATA_XFER_ERROR);
		return;
	}
	if ((status = cmd_parse_sgl(cmd, icd, icd_len)) != 0) {
		cmd_complete_status(cmd, NVME_SC_DNR(status));
		return;
	}
	if (qp->qid == 0)
		ctrl_dispatch_admin(cmd);
	else
		ctrl_dispatch_io(cmd);
	/* In-capsule data lives in the receive buffer only until now. */
	if (cmd->busy)
		cmd->icd = NULL;
}

/* Validate an H2CData header against its command (after the CH checks). */
static struct nvmf_cmd *
h2c_lookup(struct qpair *qp, const struct nvme_tcp_data_pdu *h, uint32_t datal,
    int *fes, uint32_t *fei)
{
	struct nvmf_cmd *cmd;

	if (h->ttag >= qp->ncmds) {
		*fes = NVME_TCP_FES_INVALID_HEADER;
		*fei = offsetof(struct nvme_tcp_data_pdu, ttag);
		return (NULL);
	}
	cmd = qp->cmds[h->ttag];
	if (!cmd->busy || cmd->data_ready == NULL || cmd->icd != NULL ||
	    cmd->tx_kind == TX_R2T) {
		/* No R2T outstanding for this tag. */
		*fes = NVME_TCP_FES_PDU_SEQ_ERROR;
		*fei = offsetof(struct nvme_tcp_data_pdu, ttag);
		return (NULL);
	}
	if (h->cccid != cmd->sqe.cid) {
		*fes = NVME_TCP_FES_INVALID_HEADER;
		*fei = offsetof(struct nvme_tcp_data_pdu, cccid);
		return (NULL);
	}
	if (h->datao != cmd->h2c_received) {
		*fes = NVME_TCP_FES_DATA_OUT_OF_RANGE;
		*fei = offsetof(struct nvme_tcp_data_pdu, datao);
		return (NULL);
	}
	if (h->datal != datal || datal == 0 ||
	    (uint64_t)h->datao + datal > (uint64_t)cmd->r2t_offset + cmd->r2t_len) {
		*fes = NVME_TCP_FES_DATA_OUT_OF_RANGE;
		*fei = offsetof(struct nvme_tcp_data_pdu, datal);
		return (NULL);
	}
	return (cmd);
}

static void
h2c_payload_done(struct qpair *qp, const uint8_t *ddgst)
{
	struct nvmf_cmd *cmd = qp->rx_h2c_cmd;

	qp->rx_h2c_cmd = NULL;
	if (ddgst != NULL && get_le32(ddgst) != crc32c_iov(cmd->iov,
	    cmd->iovcnt, qp->rx_h2c_datao, qp->rx_h2c_datal)) {
		log_peer_warnx("%s: qid %u cid %u: H2CData data digest error",
		    qp->peer, qp->qid, cmd->sqe.cid);
		/* The host still sends the rest of the transfer: take it,
		 * then fail the command instead of running it. */
		cmd->h2c_failed = true;
	}
	cmd->h2c_received += qp->rx_h2c_datal;
	STAT_ADD(qp->stats.bytes_written, qp->rx_h2c_datal);
	if (cmd->h2c_received == cmd->data_len) {
		void (*ready)(struct nvmf_cmd *) = cmd->data_ready;

		cmd->data_ready = NULL;
		if (cmd->h2c_failed)
			cmd_complete_status(cmd, NVME_SC_DATA_XFER_ERROR);
		else
			ready(cmd);
	}
}

/*
 * Parse every complete PDU in the receive buffer.  Returns with the buffer
 * holding at most one incomplete PDU, or with rx.direct_left set when an
 * H2CData payload is to be read in place.
 */
static void
qpair_parse(struct qpair *qp)
{
	struct pdu_limits lim;

	while (qp->state < QP_CLOSING && qp->rx.direct_left == 0 &&
	    qp->handoff == NULL && !qp->close_after_tx) {
		const uint8_t *p = qp->rx.buf + qp->rx.off;
		size_t avail = qp->rx.len - qp->rx.off;
		const struct nvme_tcp_hdr *ch = (const void *)p;
		uint32_t fei = 0, hd;
		int fes;

		if (qp->rx_h2c_cmd != NULL) {
			/* Payload in place: only its data digest is left. */
			if (qp->ddgst) {
				if (avail < NVME_TCP_DIGEST_LEN)
					return;
				qp->rx.off += NVME_TCP_DIGEST_LEN;
				h2c_payload_done(qp, p);
			} else
				h2c_payload_done(qp, NULL);
			continue;
		}
		if (avail < sizeof(*ch))
			return;
		lim = qpair_limits(qp);
		if ((fes = tcp_pdu_check_ch(ch, qp->state, &lim, &fei)) != 0) {
			qpair_fatal(qp, fes, fei, "bad PDU header");
			return;
		}
		hd = (ch->type == NVME_TCP_CMD || ch->type == NVME_TCP_H2C_DATA) &&
		    qp->hdgst ? NVME_TCP_DIGEST_LEN : 0;
		if (ch->type != NVME_TCP_H2C_DATA) {
			/* Whole PDU in the buffer (sizes bounded above). */
			if (avail < ch->plen)
				return;
		} else if (avail < (size_t)ch->hlen + hd)
			return;
		if (hd && !tcp_pdu_hdgst_ok(p, ch->hlen)) {
			qpair_fatal(qp, NVME_TCP_FES_HDGST_ERROR, 0,
			    "header digest error");
			return;
		}

		switch (ch->type) {
		case NVME_TCP_ICREQ:
			handle_icreq(qp, (const void *)p);
			qp->rx.off += ch->plen;
			break;
		case NVME_TCP_H2C_TERM: {
			const struct nvme_tcp_term_pdu *t = (const void *)p;

			log_peer_warnx("%s: qid %u: host terminated the connection: "
			    "%s (FES %u, FEI %u)", qp->peer, qp->qid,
			    tcp_fes_name(t->fes), t->fes, t->fei);
			qp->rx.off += ch->plen;
			qpair_close(qp, "H2CTermReq");
			return;
		}
		case NVME_TCP_CMD: {
			uint32_t icd_len = 0;
			const uint8_t *icd = NULL;
			bool ok = true;

			if (ch->pdo) {
				icd = p + ch->pdo;
				icd_len = ch->plen - ch->pdo -
				    (qp->ddgst ? NVME_TCP_DIGEST_LEN : 0);
				if (qp->ddgst)
					ok = get_le32(icd + icd_len) ==
					    crc32c(icd, icd_len);
				if (!ok)
					log_peer_warnx("%s: qid %u: capsule data "
					    "digest error", qp->peer, qp->qid);
			}
			qp->rx.off += ch->plen;
			handle_capsule(qp, (const void *)p, icd, icd_len, ok);
			break;
		}
		case NVME_TCP_H2C_DATA: {
			const struct nvme_tcp_data_pdu *h = (const void *)p;
			uint32_t datal = ch->plen - ch->pdo -
			    (qp->ddgst ? NVME_TCP_DIGEST_LEN : 0);
			struct iovec part[NVMFD_CMD_MAX_IOV];
			struct nvmf_cmd *cmd;

			if (avail < ch->pdo)
				return;		/* header padding */
			if ((cmd = h2c_lookup(qp, h, datal, &fes, &fei)) == NULL) {
				qpair_fatal(qp, fes, fei, "bad H2CData");
				return;
			}
			qp->rx_h2c_cmd = cmd;
			qp->rx_h2c_datao = h->datao;
			qp->rx_h2c_datal = datal;
			qp->rx.off += ch->pdo;
			/* Copy what is buffered; read the rest in place. */
			rxbuf_take(&qp->rx, part, iov_slice(cmd->iov,
			    cmd->iovcnt, h->datao, datal, part,
			    NVMFD_CMD_MAX_IOV), datal);
			break;
		}
		}
	}
}

/*
 * A TLS port's connection before ICReq: tell TLS from plain by the first
 * byte (a handshake record is 0x16, an ICReq 0x00), then run the handshake
 * on this loop.  Returns true once the stream is ready for PDUs.
 */
static bool
qpair_tls_start(struct qpair *qp)
{
	char why[200];
	uint8_t first;
	ssize_t n;
	int rc;

	if (qp->tls == NULL) {
		n = recv(qp->fd, &first, 1, MSG_PEEK);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			return (false);
		if (n <= 0) {
			qpair_close(qp, n == 0 ? "connection closed by host" :
			    strerror(errno));
			return (false);
		}
		if (first != 0x16) {
			if (qp->port->tls == PORT_TLS_REQUIRED) {
				qpair_close(qp, "plain connection on a port "
				    "that requires TLS");
				return (false);
			}
			qp->state = QP_WAIT_ICREQ;
			return (true);
		}
		if ((qp->tls = tls_conn_accept(qp->fd, qp->peer)) == NULL) {
			qpair_close(qp, "out of memory for TLS");
			return (false);
		}
	}
	switch ((rc = tls_conn_handshake(qp->tls, why, sizeof(why)))) {
	case 0:
		event_del(qp->wev);
		return (false);
	case 2:
		event_add(qp->wev, NULL);
		return (false);
	case 1:
		log_debug("%s: TLS 1.3 %s", qp->peer, tls_conn_cipher(qp->tls));
		qp->state = QP_WAIT_ICREQ;
		return (true);
	default:
		qpair_close(qp, why);
		return (false);
	}
}

static void
qpair_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qpair *qp = arg;
	struct loop *l = qp->loop;
	int rounds = 0;

	qpair_ref(qp);		/* closing may drop the last reference */
	loop_tick(l);
	if (qp->state == QP_TLS_HANDSHAKE && !qpair_tls_start(qp))
		goto out;
	/* Parse what is buffered first (PDUs that came with a handoff). */
	qpair_parse(qp);
	while (qp->state < QP_CLOSING && qp->handoff == NULL && rounds++ < 16) {
		bool drained = false;
		ssize_t n = rxbuf_read(&qp->rx, qp->fd, qp->tls, &drained);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				qpair_close(qp, strerror(errno));
			break;
		}
		if (n == 0) {
			qpair_close(qp, "connection closed by host");
			break;
		}
		qpair_parse(qp);
		if (drained)
			break;
	}
	if (qp->handoff != NULL && qp->state < QP_CLOSING) {
		/* From here the worker owns it and may be running it already:
		 * touch nothing of it here but our reference. */
		qpair_do_handoff(qp);
		loop_finish_turn(l);
		qpair_unref(qp);
		return;
	}
	if (qp->tls != NULL && qp->state < QP_CLOSING &&
	    tls_conn_rx_pending(qp->tls))
		event_active(qp->rev, EV_READ, 0);	/* decrypted, not read */
 out:
	loop_finish_turn(l);
	if (qp->state == QP_DEAD)
		qpair_maybe_finish(qp);
	qpair_unref(qp);
}
