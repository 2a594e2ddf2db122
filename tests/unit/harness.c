/*
 * Unit test harness: see harness.h.  Everything runs on the test's thread:
 * loops_init(0, ...) creates no workers, so I/O queues stay on the main
 * loop (qpair_handoff to the same loop does nothing) and the test pumps
 * that loop itself whenever it waits for a reply.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "harness.h"

static const uint8_t h_hostid[16] = {
	0x6e, 0x7f, 0x1a, 0x22, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1,
};

#define MAX_CONNS	256
static struct h_conn *conns[MAX_CONNS];
static int nconns;

/* ------------------------------------------------------ configuration */

struct config *
h_config(void)
{
	struct config *cf = config_default();
	struct namespace *ns;

	ck_assert_ptr_nonnull(cf);
	/* The default namespace is 1 GiB; the tests need far less. */
	ns = TAILQ_FIRST(&TAILQ_FIRST(&cf->subsystems)->namespaces);
	ns->size = H_NS_SIZE;
	return (cf);
}

struct port *
h_add_port(struct config *cf, uint16_t id, const char *addr,
    const char *service)
{
	struct port *p = calloc(1, sizeof(*p));

	ck_assert_ptr_nonnull(p);
	p->id = id;
	snprintf(p->address, sizeof(p->address), "%s", addr);
	snprintf(p->service, sizeof(p->service), "%s", service);
	p->family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
	p->inline_data_size = 16384;
	p->maxh2cdata = 131072;
	p->max_queue_depth = 128;
	p->header_digest = true;
	p->data_digest = true;
	p->fd = -1;
	TAILQ_INSERT_TAIL(&cf->ports, p, entry);
	return (p);
}

struct subsystem *
h_add_subsys(struct config *cf, const char *nqn)
{
	struct subsystem *ss = calloc(1, sizeof(*ss));

	ck_assert_ptr_nonnull(ss);
	snprintf(ss->nqn, sizeof(ss->nqn), "%s", nqn);
	snprintf(ss->model, sizeof(ss->model), "nvmfd");
	ss->allow_any_host = true;
	TAILQ_INIT(&ss->hosts);
	TAILQ_INIT(&ss->namespaces);
	TAILQ_INIT(&ss->controllers);
	ss->max_io_queues = 32;
	ss->next_cntlid = 1;
	subsystem_derive_serial(ss);
	ck_assert_int_eq(subsystem_link(cf, ss), 0);
	return (ss);
}

struct namespace *
h_add_ns(struct subsystem *ss, uint32_t nsid, uint64_t size)
{
	struct namespace *ns = calloc(1, sizeof(*ns)), *at;

	ck_assert_ptr_nonnull(ns);
	ns->subsys = ss;
	ns->nsid = nsid;
	ns->type = BACKEND_RAM;
	ns->size = size;
	ns->block_size = 512;
	ns->fd = -1;
	namespace_derive_ids(ns);
	/* The list is kept sorted by NSID; lookups rely on it. */
	TAILQ_FOREACH(at, &ss->namespaces, entry)
		if (at->nsid > nsid)
			break;
	if (at != NULL)
		TAILQ_INSERT_BEFORE(at, ns, entry);
	else
		TAILQ_INSERT_TAIL(&ss->namespaces, ns, entry);
	return (ns);
}

void
h_add_host(struct subsystem *ss, const char *hostnqn)
{
	struct host *h = calloc(1, sizeof(*h));

	ck_assert_ptr_nonnull(h);
	snprintf(h->nqn, sizeof(h->nqn), "%s", hostnqn);
	TAILQ_INSERT_TAIL(&ss->hosts, h, entry);
	ss->allow_any_host = false;
}

void
h_subsys_ports(struct subsystem *ss, const uint16_t *ids, size_t n)
{
	free(ss->port_ids);
	ss->port_ids = calloc(n ? n : 1, sizeof(*ids));
	ck_assert_ptr_nonnull(ss->port_ids);
	memcpy(ss->port_ids, ids, n * sizeof(*ids));
	ss->nport_ids = n;
}

struct referral *
h_add_referral(struct config *cf, const char *addr, const char *service,
    uint16_t port_id)
{
	struct referral *r = calloc(1, sizeof(*r));

	ck_assert_ptr_nonnull(r);
	snprintf(r->address, sizeof(r->address), "%s", addr);
	snprintf(r->service, sizeof(r->service), "%s", service);
	r->family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
	r->port_id = port_id;
	TAILQ_INSERT_TAIL(&cf->referrals, r, entry);
	return (r);
}

/* -------------------------------------------------------- environment */

uint64_t
h_ms_now(void)
{
	return (now_ns() / 1000000);
}

/* One pass over ready events, then write out what they produced (a test
 * calling into the daemon directly leaves output queued, too). */
void
h_pump(void)
{
	event_base_loop(main_loop->base, EVLOOP_NONBLOCK);
	loop_finish_turn(main_loop);
}

void
h_pump_for(int ms)
{
	uint64_t end = h_ms_now() + ms;

	do {
		h_pump();
		usleep(1000);
	} while (h_ms_now() < end);
}

/* Logging, SIGPIPE ignored, and the main loop without workers: I/O queues
 * stay on it (qpair_handoff to the same loop does nothing). */
void
h_env_init(void)
{
	static bool loops_ready;

	log_init(1, getenv("NVMFD_TEST_DEBUG") != NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Once per process: Check normally forks per test, but CK_FORK=no
	 * runs them all in one. */
	if (!loops_ready) {
		ck_assert_int_eq(loops_init(0, 1u << 20), 0);
		loops_ready = true;
	}
}

/* cf becomes the running config, published as registry_start() does it,
 * minus the listening sockets: the tests connect by themselves. */
void
h_publish(struct config *cf)
{
	struct subsystem *ss;
	struct port *port;
	char err[512];

	running_config = cf;
	TAILQ_FOREACH(ss, &cf->subsystems, entry)
		ck_assert_msg(subsystem_publish(cf, ss, err, sizeof(err)) == 0,
		    "%s", err);
	TAILQ_FOREACH(port, &cf->ports, entry)
		atomic_init(&port->refs, 1);	/* the listing's reference */
}

void
h_start(struct config *cf)
{
	h_env_init();
	/* The tests hand connections to qpair_create() themselves. */
	h_publish(cf);
}

static bool
no_controllers(void)
{
	struct subsystem *ss;

	if (!TAILQ_EMPTY(&discovery_controllers))
		return (false);
	TAILQ_FOREACH(ss, &running_config->subsystems, entry)
		if (!TAILQ_EMPTY(&ss->controllers))
			return (false);
	return (true);
}

/* Each queue pair holds its port until it is freed. */
static bool
no_qpairs(void)
{
	struct port *port;

	TAILQ_FOREACH(port, &running_config->ports, entry)
		if (atomic_load(&port->refs) != 1)
			return (false);
	return (true);
}

void
h_stop(void)
{
	struct subsystem *ss;
	struct namespace *ns;
	struct port *port;
	uint64_t end = h_ms_now() + H_TIMEOUT_MS;

	for (int i = 0; i < nconns; i++)
		if (conns[i]->fd >= 0) {
			close(conns[i]->fd);
			conns[i]->fd = -1;
		}
	/* Every queue pair and controller must go once the host has closed
	 * its sockets: a leftover one means a reference was leaked. */
	while ((!no_controllers() || !no_qpairs()) && h_ms_now() < end) {
		h_pump();
		usleep(1000);
	}
	ck_assert_msg(no_controllers(), "controllers left after all "
	    "connections closed");
	for (int i = 0; i < nconns; i++)
		free(conns[i]);
	nconns = 0;
	/* Nothing holds a namespace or a port any more. */
	TAILQ_FOREACH(ss, &running_config->subsystems, entry)
		TAILQ_FOREACH(ns, &ss->namespaces, entry) {
			unsigned n = ns_epoch_count(ns, 0) +
			    ns_epoch_count(ns, 1);

			ck_assert_msg(n == 0, "%s namespace %u: %u commands "
			    "still counted", ss->nqn, ns->nsid, n);
		}
	TAILQ_FOREACH(port, &running_config->ports, entry)
		ck_assert_msg(atomic_load(&port->refs) == 1, "port %u: %d "
		    "references left", port->id, atomic_load(&port->refs));
	registry_stop(running_config);
	config_free(running_config);
	running_config = NULL;
}

/* Pump until fd is ready for events or the time is up. */
static bool
wait_fd(int fd, short events, int ms)
{
	uint64_t end = h_ms_now() + ms;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };

		h_pump();
		if (poll(&pfd, 1, 1) > 0 && pfd.revents != 0)
			return (true);
		if (h_ms_now() >= end)
			return (false);
	}
}

/* -------------------------------------------------------- connections */

struct h_conn *
h_open(struct port *port, const char *local_addr)
{
	struct h_conn *c;
	int sv[2];

	ck_assert_int_lt(nconns, MAX_CONNS);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* The daemon's end must not block, as accepted sockets do not. */
	ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	c = calloc(1, sizeof(*c));
	ck_assert_ptr_nonnull(c);
	c->fd = sv[0];
	c->port = port;
	c->icd_max = NVMFD_ADMIN_ICD;
	c->maxh2cdata = NVME_TCP_MIN_MAXH2CDATA;
	c->next_cid = 1;
	/* The listener counts connections; the queue pair uncounts them. */
	atomic_fetch_add(&nconnections, 1);
	ck_assert_ptr_nonnull(qpair_create(main_loop, sv[1], port, "test",
	    local_addr));
	conns[nconns++] = c;
	return (c);
}

void
h_close(struct h_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	h_pump_for(5);
}

void
h_send_fd(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t end = h_ms_now() + H_TIMEOUT_MS;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			/* The daemon reads only when the loop runs. */
			ck_assert_msg(h_ms_now() < end, "send timed out");
			wait_fd(fd, POLLOUT, 10);
			continue;
		}
		ck_assert_msg(n > 0, "send: %s", strerror(errno));
		p += n;
		len -= n;
	}
	h_pump();
}

void
h_recv_fd(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;
	uint64_t end = h_ms_now() + H_TIMEOUT_MS;

	while (got < len) {
		ssize_t n = recv(fd, p + got, len - got, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			ck_assert_msg(h_ms_now() < end, "timed out after %zu of "
			    "%zu bytes", got, len);
			wait_fd(fd, POLLIN, 10);
			continue;
		}
		ck_assert_msg(n != 0, "connection closed after %zu of %zu "
		    "bytes", got, len);
		ck_assert_msg(n > 0, "recv: %s", strerror(errno));
		got += n;
	}
}

bool
h_readable(struct h_conn *c, int ms)
{
	return (wait_fd(c->fd, POLLIN, ms));
}

bool
h_closed_fd(int fd, int ms)
{
	uint64_t end = h_ms_now() + ms;
	uint8_t b;

	for (;;) {
		ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return (true);
		ck_assert_msg(n < 0, "unexpected data before the close");
		if (h_ms_now() >= end)
			return (false);
		wait_fd(fd, POLLIN, 10);
	}
}

void
h_send(struct h_conn *c, const void *buf, size_t len)
{
	h_send_fd(c->fd, buf, len);
}

void
h_recv(struct h_conn *c, void *buf, size_t len)
{
	h_recv_fd(c->fd, buf, len);
}

bool
h_closed(struct h_conn *c, int ms)
{
	return (h_closed_fd(c->fd, ms));
}

static void
check_hdgst(struct h_conn *c, const uint8_t *p, size_t len)
{
	const struct nvme_tcp_hdr *ch = (const void *)p;
	bool flag = ch->flags & NVME_TCP_F_HDGST;

	ck_assert_msg(flag == c->hdgst, "%s: HDGSTF %d, negotiated %d",
	    tcp_pdu_type_name(ch->type), flag, c->hdgst);
	if (!flag)
		return;
	ck_assert_uint_ge(len, (size_t)ch->hlen + NVME_TCP_DIGEST_LEN);
	ck_assert_msg(get_le32(p + ch->hlen) == crc32c(p, ch->hlen),
	    "%s: bad header digest", tcp_pdu_type_name(ch->type));
	c->hdgst_checked++;
}

uint8_t *
h_recv_pdu(struct h_conn *c, size_t *lenp)
{
	struct nvme_tcp_hdr ch;
	uint8_t *p;

	h_recv(c, &ch, sizeof(ch));
	ck_assert_msg(ch.plen >= sizeof(ch) && ch.plen <= (32u << 20),
	    "%s with PLEN %u", tcp_pdu_type_name(ch.type), ch.plen);
	ck_assert_uint_ge(ch.plen, ch.hlen);
	p = malloc(ch.plen);
	ck_assert_ptr_nonnull(p);
	memcpy(p, &ch, sizeof(ch));
	h_recv(c, p + sizeof(ch), ch.plen - sizeof(ch));

	switch (ch.type) {
	case NVME_TCP_RSP:
	case NVME_TCP_R2T:
		check_hdgst(c, p, ch.plen);
		ck_assert_uint_eq(ch.pdo, 0);
		ck_assert_uint_eq(ch.plen, ch.hlen +
		    (c->hdgst ? NVME_TCP_DIGEST_LEN : 0));
		break;
	case NVME_TCP_C2H_DATA: {
		const struct nvme_tcp_data_pdu *d = (const void *)p;
		uint32_t dd = c->ddgst ? NVME_TCP_DIGEST_LEN : 0;

		check_hdgst(c, p, ch.plen);
		ck_assert_uint_eq(ch.hlen, sizeof(*d));
		/* The data starts where our HPDA asked, right after the
		 * header (and its digest) rounded up. */
		ck_assert_uint_eq(ch.pdo, tcp_pdu_data_offset(ch.hlen,
		    c->hdgst, c->hpda));
		ck_assert_uint_eq(ch.plen, ch.pdo + d->datal + dd);
		ck_assert_msg(!!(ch.flags & NVME_TCP_F_DDGST) == c->ddgst,
		    "C2HData DDGSTF %d, negotiated %d",
		    !!(ch.flags & NVME_TCP_F_DDGST), c->ddgst);
		if (dd) {
			ck_assert_msg(get_le32(p + ch.pdo + d->datal) ==
			    crc32c(p + ch.pdo, d->datal),
			    "C2HData: bad data digest");
			c->ddgst_checked++;
		}
		break;
	}
	default:
		break;
	}
	if (lenp != NULL)
		*lenp = ch.plen;
	return (p);
}

void
h_expect_term(struct h_conn *c, uint16_t fes, uint32_t fei)
{
	size_t len;
	uint8_t *p = h_recv_pdu(c, &len);
	const struct nvme_tcp_term_pdu *t = (const void *)p;

	ck_assert_msg(t->hdr.type == NVME_TCP_C2H_TERM, "got %s, not "
	    "C2HTermReq", tcp_pdu_type_name(t->hdr.type));
	ck_assert_uint_eq(t->hdr.hlen, sizeof(*t));
	ck_assert_uint_ge(t->hdr.plen, sizeof(*t));
	ck_assert_uint_le(t->hdr.plen, sizeof(*t) + NVME_TCP_TERM_MAX_DATA);
	ck_assert_uint_eq(t->fes, fes);
	ck_assert_uint_eq(t->fei, fei);
	free(p);
	ck_assert_msg(h_closed(c, H_TIMEOUT_MS), "still open after "
	    "C2HTermReq");
}

void
h_icreq(struct h_conn *c, uint8_t digests, uint8_t hpda,
    struct nvme_tcp_ic_pdu *resp)
{
	struct nvme_tcp_ic_pdu ic, r;
	uint8_t *p;
	size_t len;

	/* MAXR2T is 0's based: one R2T at a time. */
	tcp_pdu_build_ic(&ic, NVME_TCP_ICREQ, hpda, digests & NVME_TCP_IC_HDGST,
	    digests & NVME_TCP_IC_DDGST, 0);
	h_send(c, &ic, sizeof(ic));
	p = h_recv_pdu(c, &len);
	ck_assert_uint_eq(len, sizeof(r));
	memcpy(&r, p, sizeof(r));
	free(p);
	ck_assert_msg(r.hdr.type == NVME_TCP_ICRESP, "got %s, not ICResp",
	    tcp_pdu_type_name(r.hdr.type));
	c->hdgst = r.digest & NVME_TCP_IC_HDGST;
	c->ddgst = r.digest & NVME_TCP_IC_DDGST;
	c->hpda = hpda;
	c->cpda = r.pda;
	c->maxh2cdata = r.maxr2t_or_maxh2cdata;
	if (resp != NULL)
		*resp = r;
}

/* ----------------------------------------------------------- commands */

void
h_sgl_icd(struct nvme_sqe *sqe, uint32_t len)
{
	memset(sqe->sgl, 0, sizeof(sqe->sgl));
	put_le32(sqe->sgl + 8, len);
	sqe->sgl[15] = NVME_SGL_DATA_BLOCK_OFFSET;
	sqe->flags = (sqe->flags & 0x3f) | 0x40;	/* PSDT: SGL */
}

void
h_sgl_xport(struct nvme_sqe *sqe, uint32_t len)
{
	memset(sqe->sgl, 0, sizeof(sqe->sgl));
	put_le32(sqe->sgl + 8, len);
	sqe->sgl[15] = NVME_SGL_TRANSPORT_DATA_BLOCK;
	sqe->flags = (sqe->flags & 0x3f) | 0x40;
}

/* out needs 256 + icd_len bytes. */
size_t
h_build_capsule(struct h_conn *c, uint8_t *out, struct nvme_sqe *sqe,
    const void *icd, uint32_t icd_len)
{
	struct nvme_tcp_cmd_pdu *pdu = (struct nvme_tcp_cmd_pdu *)out;
	uint32_t hd = c->hdgst ? NVME_TCP_DIGEST_LEN : 0;
	uint32_t dd = c->ddgst ? NVME_TCP_DIGEST_LEN : 0;
	uint32_t pdo = 0, plen = sizeof(*pdu) + hd;

	if (icd_len > 0) {
		pdo = tcp_pdu_data_offset(sizeof(*pdu), c->hdgst, c->cpda);
		plen = pdo + icd_len + dd;
	}
	memset(out, 0, pdo ? pdo : plen);
	sqe->cid = c->next_cid++;
	pdu->hdr.type = NVME_TCP_CMD;
	pdu->hdr.flags = (hd ? NVME_TCP_F_HDGST : 0) |
	    (icd_len && dd ? NVME_TCP_F_DDGST : 0);
	pdu->hdr.hlen = sizeof(*pdu);
	pdu->hdr.pdo = pdo;
	pdu->hdr.plen = plen;
	pdu->sqe = *sqe;
	if (hd)
		put_le32(out + sizeof(*pdu), crc32c(out, sizeof(*pdu)));
	if (icd_len > 0) {
		memcpy(out + pdo, icd, icd_len);
		if (dd)
			put_le32(out + pdo + icd_len, crc32c(icd, icd_len));
	}
	return (plen);
}

uint16_t
h_submit(struct h_conn *c, struct nvme_sqe *sqe, const void *icd,
    uint32_t icd_len)
{
	uint8_t *buf = malloc(256 + icd_len);
	size_t len;

	ck_assert_ptr_nonnull(buf);
	len = h_build_capsule(c, buf, sqe, icd, icd_len);
	h_send(c, buf, len);
	free(buf);
	return (sqe->cid);
}

/* out needs 256 + datal bytes. */
size_t
h_build_h2c(struct h_conn *c, uint8_t *out, uint16_t cccid, uint16_t ttag,
    const void *data, uint32_t datao, uint32_t datal, bool last)
{
	uint32_t dd = c->ddgst ? NVME_TCP_DIGEST_LEN : 0;
	uint32_t pdo = tcp_pdu_data_offset(sizeof(struct nvme_tcp_data_pdu),
	    c->hdgst, c->cpda);
	struct nvme_tcp_data_pdu *h = (struct nvme_tcp_data_pdu *)out;

	memset(out, 0, pdo);
	h->hdr.type = NVME_TCP_H2C_DATA;
	h->hdr.flags = (c->hdgst ? NVME_TCP_F_HDGST : 0) |
	    (dd ? NVME_TCP_F_DDGST : 0) | (last ? NVME_TCP_F_DATA_LAST : 0);
	h->hdr.hlen = sizeof(*h);
	h->hdr.pdo = pdo;
	h->hdr.plen = pdo + datal + dd;
	h->cccid = cccid;
	h->ttag = ttag;
	h->datao = datao;
	h->datal = datal;
	if (c->hdgst)
		put_le32(out + sizeof(*h), crc32c(out, sizeof(*h)));
	memcpy(out + pdo, data, datal);
	if (dd)
		put_le32(out + pdo + datal, crc32c(data, datal));
	return (h->hdr.plen);
}

void
h_send_h2c(struct h_conn *c, uint16_t cccid, uint16_t ttag, const void *data,
    uint32_t datao, uint32_t datal, bool last)
{
	uint8_t *p = malloc(256 + datal);
	size_t len;

	ck_assert_ptr_nonnull(p);
	len = h_build_h2c(c, p, cccid, ttag, data, datao, datal, last);
	h_send(c, p, len);
	free(p);
	c->nh2c++;
}

/* Answer an R2T with H2CData PDUs of at most h2c_chunk bytes each. */
static void
answer_r2t(struct h_conn *c, const struct nvme_tcp_r2t_pdu *r2t,
    const uint8_t *out, uint32_t out_len)
{
	uint32_t chunk = c->h2c_chunk ? c->h2c_chunk : c->maxh2cdata;
	uint32_t off = r2t->r2to, end = r2t->r2to + r2t->r2tl;

	ck_assert_msg(out != NULL && end <= out_len, "R2T for %u+%u beyond "
	    "the %u bytes to write", r2t->r2to, r2t->r2tl, out_len);
	ck_assert_uint_le(chunk, c->maxh2cdata);
	while (off < end) {
		uint32_t n = MINIMUM(chunk, end - off);

		h_send_h2c(c, r2t->cccid, r2t->ttag, out + off, off, n,
		    off + n == end);
		off += n;
	}
}

void
h_wait(struct h_conn *c, uint16_t cid, struct nvme_cqe *cqe, const void *out,
    uint32_t out_len, void *in, uint32_t in_len)
{
	uint32_t got = 0;

	for (;;) {
		const struct nvme_tcp_hdr *ch;
		uint8_t *p;
		size_t len;

		for (int i = 0; i < c->nstash; i++) {
			if (c->stash[i].cid != cid)
				continue;
			*cqe = c->stash[i];
			c->stash[i] = c->stash[--c->nstash];
			return;
		}
		p = h_recv_pdu(c, &len);
		ch = (const void *)p;
		switch (ch->type) {
		case NVME_TCP_RSP: {
			const struct nvme_tcp_rsp_pdu *r = (const void *)p;

			if (c->cntlid != 0)	/* connected */
				ck_assert_uint_eq(r->cqe.sqid, c->qid);
			c->last_sqhd = r->cqe.sqhd;
			if (r->cqe.cid == cid) {
				*cqe = r->cqe;
				free(p);
				return;
			}
			ck_assert_int_lt(c->nstash, (int)nitems(c->stash));
			c->stash[c->nstash++] = r->cqe;
			break;
		}
		case NVME_TCP_C2H_DATA: {
			const struct nvme_tcp_data_pdu *d = (const void *)p;

			ck_assert_uint_eq(d->cccid, cid);
			ck_assert_uint_eq(d->datao, got);
			ck_assert_msg(in != NULL &&
			    d->datao + d->datal <= in_len, "C2HData %u+%u "
			    "beyond the %u bytes asked for", d->datao,
			    d->datal, in_len);
			memcpy((uint8_t *)in + d->datao, p + ch->pdo, d->datal);
			got += d->datal;
			c->nc2h++;
			c->last_c2h_pdo = ch->pdo;
			c->last_c2h_success =
			    ch->flags & NVME_TCP_F_DATA_SUCCESS;
			if (ch->flags & NVME_TCP_F_DATA_SUCCESS) {
				/* No CapsuleResp follows (SQ flow control
				 * disabled): the command succeeded. */
				ck_assert(ch->flags & NVME_TCP_F_DATA_LAST);
				memset(cqe, 0, sizeof(*cqe));
				cqe->cid = cid;
				cqe->sqid = c->qid;
				cqe->sqhd = 0xffff;
				free(p);
				return;
			}
			break;
		}
		case NVME_TCP_R2T: {
			const struct nvme_tcp_r2t_pdu *r2t = (const void *)p;

			ck_assert_uint_eq(r2t->cccid, cid);
			c->last_r2t = *r2t;
			c->nr2t++;
			answer_r2t(c, r2t, out, out_len);
			break;
		}
		case NVME_TCP_C2H_TERM: {
			const struct nvme_tcp_term_pdu *t = (const void *)p;

			ck_abort_msg("C2HTermReq while waiting for CID %u: FES "
			    "%u FEI %u", cid, t->fes, t->fei);
			break;
		}
		default:
			ck_abort_msg("unexpected %s while waiting for CID %u",
			    tcp_pdu_type_name(ch->type), cid);
		}
		free(p);
	}
}

uint16_t
h_cmd(struct h_conn *c, struct nvme_sqe *sqe, const void *out,
    uint32_t out_len, void *in, uint32_t in_len, struct nvme_cqe *cqe)
{
	struct nvme_cqe tmp;
	bool icd = out_len > 0 && out_len <= c->icd_max;
	uint16_t cid;

	if (cqe == NULL)
		cqe = &tmp;
	if (icd)
		h_sgl_icd(sqe, out_len);
	else
		h_sgl_xport(sqe, out_len ? out_len : in_len);
	cid = h_submit(c, sqe, icd ? out : NULL, icd ? out_len : 0);
	h_wait(c, cid, cqe, out, out_len, in, in_len);
	return (h_sc(cqe));
}

/* ------------------------------------------------------------ fabrics */

void
h_connect_sqe(struct nvme_sqe *sqe, uint16_t qid, uint16_t sqsize,
    uint32_t kato)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opc = NVME_FABRICS_COMMAND;
	((uint8_t *)sqe)[4] = NVMF_FCTYPE_CONNECT;
	sqe->cdw10 = (uint32_t)qid << 16;	/* RECFMT 0 */
	sqe->cdw11 = sqsize;			/* 0's based; CATTR 0 */
	sqe->cdw12 = kato;
}

void
h_connect_data(struct nvmf_connect_data *d, const char *subnqn,
    const char *hostnqn, uint16_t cntlid)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->hostid, h_hostid, sizeof(d->hostid));
	d->cntlid = cntlid;
	snprintf(d->subnqn, sizeof(d->subnqn), "%s", subnqn);
	snprintf(d->hostnqn, sizeof(d->hostnqn), "%s", hostnqn);
}

struct nvme_cqe
h_connect(struct h_conn *c, uint16_t qid, uint16_t sqsize, const char *subnqn,
    const char *hostnqn, uint16_t cntlid, uint32_t kato)
{
	struct nvmf_connect_data d;
	struct nvme_sqe sqe;
	struct nvme_cqe cqe;

	h_connect_sqe(&sqe, qid, sqsize, kato);
	h_connect_data(&d, subnqn, hostnqn, cntlid);
	if (h_cmd(c, &sqe, &d, sizeof(d), NULL, 0, &cqe) == NVME_SC_SUCCESS) {
		ck_assert_uint_eq(cqe.sqid, qid);
		c->qid = qid;
		c->cntlid = cqe.dw0 & 0xffff;
		if (qid != 0)
			c->icd_max = c->port->inline_data_size;
	}
	return (cqe);
}

uint16_t
h_prop_get(struct h_conn *c, uint32_t ofst, uint64_t *val)
{
	struct nvme_sqe sqe = { .opc = NVME_FABRICS_COMMAND };
	struct nvme_cqe cqe;
	uint16_t sc;

	((uint8_t *)&sqe)[4] = NVMF_FCTYPE_PROPERTY_GET;
	sqe.cdw10 = ofst == NVME_REG_CAP ? 1 : 0;	/* size: 8 or 4 bytes */
	sqe.cdw11 = ofst;
	sc = h_cmd(c, &sqe, NULL, 0, NULL, 0, &cqe);
	if (val != NULL)
		*val = cqe.dw0 | (uint64_t)cqe.dw1 << 32;
	return (sc);
}

uint16_t
h_prop_set(struct h_conn *c, uint32_t ofst, uint32_t val)
{
	struct nvme_sqe sqe = { .opc = NVME_FABRICS_COMMAND };

	((uint8_t *)&sqe)[4] = NVMF_FCTYPE_PROPERTY_SET;
	sqe.cdw10 = 0;
	sqe.cdw11 = ofst;
	sqe.cdw12 = val;
	return (h_cmd(c, &sqe, NULL, 0, NULL, 0, NULL));
}

void
h_enable(struct h_conn *c)
{
	uint64_t csts;

	/* IOSQES 6 (64 bytes), IOCQES 4 (16 bytes), as Linux sets them. */
	ck_assert_uint_eq(h_prop_set(c, NVME_REG_CC,
	    NVME_CC_EN | 6u << 16 | 4u << 20), NVME_SC_SUCCESS);
	ck_assert_uint_eq(h_prop_get(c, NVME_REG_CSTS, &csts), NVME_SC_SUCCESS);
	ck_assert_uint_eq(csts & (NVME_CSTS_RDY | NVME_CSTS_CFS),
	    NVME_CSTS_RDY);
}

/* ------------------------------------------------------- admin, NVM */

uint16_t
h_identify(struct h_conn *c, uint8_t cns, uint32_t nsid, uint8_t csi,
    void *data)
{
	struct nvme_sqe sqe = { .opc = NVME_ADM_IDENTIFY, .nsid = nsid };

	sqe.cdw10 = cns;
	sqe.cdw11 = (uint32_t)csi << 24;
	memset(data, 0xa5, 4096);	/* so untouched bytes show */
	return (h_cmd(c, &sqe, NULL, 0, data, 4096, NULL));
}

static uint16_t
get_log(struct h_conn *c, uint8_t lid, uint32_t nsid, uint64_t offset,
    uint32_t len, bool rae, void *data)
{
	struct nvme_sqe sqe = { .opc = NVME_ADM_GET_LOG_PAGE, .nsid = nsid };
	uint32_t numd = len / 4 - 1;

	sqe.cdw10 = lid | (rae ? 1u << 15 : 0) | (numd & 0xffff) << 16;
	sqe.cdw11 = numd >> 16;
	sqe.cdw12 = (uint32_t)offset;
	sqe.cdw13 = (uint32_t)(offset >> 32);
	memset(data, 0xa5, len);
	return (h_cmd(c, &sqe, NULL, 0, data, len, NULL));
}

uint16_t
h_get_log(struct h_conn *c, uint8_t lid, uint64_t offset, uint32_t len,
    bool rae, void *data)
{
	return (get_log(c, lid, 0, offset, len, rae, data));
}

uint16_t
h_get_log_ns(struct h_conn *c, uint8_t lid, uint32_t nsid, uint32_t len,
    void *data)
{
	return (get_log(c, lid, nsid, 0, len, false, data));
}

uint16_t
h_set_feat(struct h_conn *c, uint8_t fid, uint32_t v, uint32_t *dw0)
{
	struct nvme_sqe sqe = { .opc = NVME_ADM_SET_FEATURES };
	struct nvme_cqe cqe;
	uint16_t sc;

	sqe.cdw10 = fid;
	sqe.cdw11 = v;
	sc = h_cmd(c, &sqe, NULL, 0, NULL, 0, &cqe);
	if (dw0 != NULL)
		*dw0 = cqe.dw0;
	return (sc);
}

uint16_t
h_get_feat(struct h_conn *c, uint8_t fid, uint8_t sel, uint32_t *dw0)
{
	struct nvme_sqe sqe = { .opc = NVME_ADM_GET_FEATURES };
	struct nvme_cqe cqe;
	uint16_t sc;

	sqe.cdw10 = fid | (uint32_t)sel << 8;
	sc = h_cmd(c, &sqe, NULL, 0, NULL, 0, &cqe);
	if (dw0 != NULL)
		*dw0 = cqe.dw0;
	return (sc);
}

static void
rw_sqe(struct nvme_sqe *sqe, uint8_t opc, uint32_t nsid, uint64_t slba,
    uint32_t nlb)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opc = opc;
	sqe->nsid = nsid;
	sqe->cdw10 = (uint32_t)slba;
	sqe->cdw11 = (uint32_t)(slba >> 32);
	sqe->cdw12 = (nlb - 1) & 0xffff;
}

uint16_t
h_read(struct h_conn *c, uint32_t nsid, uint64_t slba, uint32_t nlb,
    void *buf, uint32_t len)
{
	struct nvme_sqe sqe;

	rw_sqe(&sqe, NVME_CMD_READ, nsid, slba, nlb);
	return (h_cmd(c, &sqe, NULL, 0, buf, len, NULL));
}

uint16_t
h_write(struct h_conn *c, uint32_t nsid, uint64_t slba, uint32_t nlb,
    const void *buf, uint32_t len)
{
	struct nvme_sqe sqe;

	rw_sqe(&sqe, NVME_CMD_WRITE, nsid, slba, nlb);
	return (h_cmd(c, &sqe, buf, len, NULL, 0, NULL));
}

/* An Asynchronous Event Request; returns its CID (it stays outstanding). */
uint16_t
h_submit_aer(struct h_conn *c)
{
	struct nvme_sqe sqe = { .opc = NVME_ADM_ASYNC_EVENT };

	h_sgl_xport(&sqe, 0);
	return (h_submit(c, &sqe, NULL, 0));
}

/* --------------------------------------------------------- shortcuts */

static const char *
local_for(struct port *port)
{
	/* A wildcard listener reports the address the host reached. */
	if (strcmp(port->address, "0.0.0.0") == 0)
		return ("127.0.0.1");
	if (strcmp(port->address, "::") == 0)
		return ("::1");
	return (port->address);
}

struct h_conn *
h_admin(struct port *port, const char *subnqn, const char *hostnqn,
    uint8_t digests)
{
	struct h_conn *c = h_open(port, local_for(port));
	struct nvme_cqe cqe;

	h_icreq(c, digests, 0, NULL);
	cqe = h_connect(c, 0, NVMFD_ADMIN_QUEUE_DEPTH - 1, subnqn, hostnqn,
	    NVMF_CNTLID_DYNAMIC, 0);
	ck_assert_msg(h_sc(&cqe) == NVME_SC_SUCCESS, "admin connect to %s: "
	    "status 0x%x", subnqn, h_sc(&cqe));
	h_enable(c);
	return (c);
}

struct h_conn *
h_ioq(struct h_conn *admin, const char *subnqn, const char *hostnqn,
    uint16_t qid, uint16_t sqsize, uint8_t digests)
{
	struct h_conn *c = h_open(admin->port, local_for(admin->port));
	struct nvme_cqe cqe;

	h_icreq(c, digests, 0, NULL);
	cqe = h_connect(c, qid, sqsize, subnqn, hostnqn, admin->cntlid, 0);
	ck_assert_msg(h_sc(&cqe) == NVME_SC_SUCCESS, "I/O connect qid %u: "
	    "status 0x%x", qid, h_sc(&cqe));
	ck_assert_uint_eq(cqe.dw0 & 0xffff, admin->cntlid);
	return (c);
}
