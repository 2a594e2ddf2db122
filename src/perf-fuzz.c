/*
 * nvmfd perf --fuzz SEED: a command fuzzer over the network.  Random but
 * well-framed commands (random opcodes, CDWs, NSIDs, SGL descriptors, data
 * lengths) go to the admin queue and the I/O queues at
 * --rate commands a second, from a generator seeded with SEED, so a run
 * can be repeated.  Every command must get exactly one completion within
 * FZ_TIMEOUT_S; a queue the target ends must end with a C2HTermReq (it
 * found a command it will not take), never with a protocol violation (a
 * completion for a command not outstanding, data nobody asked for); such a
 * queue is connected again.  At the end the host unregisters from the
 * namespaces' reservations (so other hosts can write again), and the
 * controller must still answer on its admin queue and a new association
 * must come up.
 *
 * Commands that end an association on purpose are not sent: Property Set
 * (CC.EN = 0 resets the controller), Disconnect, Set Features of the Keep
 * Alive Timer, and Asynchronous Event Requests (they complete only on an
 * event).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "nvmfd.h"
#include "host.h"
#include "perf.h"

#define FZ_MAX_DATA	(64 * 1024)	/* data buffer of each command slot */
#define FZ_TIMEOUT_S	10		/* the longest a completion may take */
#define FZ_TICK_MS	10
#define FZ_MAX_QUEUES	16
#define FZ_DEPTH	16

struct fz_queue;

struct fz_cmd {
	struct host_req	req;
	struct fz_queue	*q;
	bool		busy;
	uint8_t		*buf;
};

struct fz;

struct fz_queue {
	struct fz	*f;
	struct host_qpair *hq;
	int		qid;
	int		busy;
	struct fz_cmd	cmds[FZ_DEPTH];
	struct host_req	last;		/* the latest command sent, to report */
};

struct fz {
	const struct perf_opts *o;
	const uint8_t	*hostid;
	struct event_base *base;
	uint64_t	rng;
	uint16_t	cntlid;
	uint64_t	nlb;
	uint32_t	lba_shift, max_icd;
	struct fz_queue	q[FZ_MAX_QUEUES + 1];	/* [0]: admin */
	int		nq;
	double		credit;
	bool		stopping;
	/* what happened */
	uint64_t	sent, ok, failed, lost, twice, late;
	uint64_t	terminated, reconnects;
	uint64_t	violations;
	char		last_violation[320], last_term[160];
};

static uint64_t
rnd(struct fz *f)
{
	uint64_t x = f->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (f->rng = x);
}

static uint32_t
rnd_below(struct fz *f, uint32_t n)
{
	return ((uint32_t)(rnd(f) % n));
}

static const uint8_t admin_ops[] = {
	NVME_ADM_GET_LOG_PAGE, NVME_ADM_IDENTIFY, NVME_ADM_ABORT,
	NVME_ADM_SET_FEATURES, NVME_ADM_GET_FEATURES, NVME_ADM_KEEP_ALIVE,
	NVME_FABRICS_COMMAND, 0x01, 0x05, 0x0d, 0x10, 0x11, 0x15, 0x80,
	0x81, 0x84,
};
static const uint8_t io_ops[] = {
	NVME_CMD_FLUSH, NVME_CMD_WRITE, NVME_CMD_READ, NVME_CMD_COMPARE,
	NVME_CMD_WRITE_ZEROES, NVME_CMD_DSM, NVME_CMD_VERIFY, NVME_CMD_COPY,
	0x04, 0x0d, 0x0e, 0x11, 0x15, NVME_FABRICS_COMMAND,
};
static const uint8_t fctypes[] = {
	NVMF_FCTYPE_CONNECT, NVMF_FCTYPE_PROPERTY_GET, NVMF_FCTYPE_AUTH_SEND,
	NVMF_FCTYPE_AUTH_RECV, 0x02, 0x03, 0x7f, 0xff,
};

/* Not sent: they end the association or never complete on their own. */
static bool
excluded(const struct nvme_sqe *sqe, bool admin)
{
	uint8_t fctype = ((const uint8_t *)sqe)[4];

	if (sqe->opc == NVME_FABRICS_COMMAND)
		return (fctype == NVMF_FCTYPE_PROPERTY_SET ||
		    fctype == NVMF_FCTYPE_DISCONNECT);
	/* A Keep Alive Timeout we do not keep would end it too. */
	return (admin && (sqe->opc == NVME_ADM_ASYNC_EVENT ||
	    (sqe->opc == NVME_ADM_SET_FEATURES &&
	    (sqe->cdw10 & 0xff) == NVME_FEAT_KATO)));
}

static void
fz_violation(struct fz *f, const char *fmt, ...) __printflike(2, 3);

static void
fz_violation(struct fz *f, const char *fmt, ...)
{
	va_list ap;

	f->violations++;
	va_start(ap, fmt);
	vsnprintf(f->last_violation, sizeof(f->last_violation), fmt, ap);
	va_end(ap);
	log_warnx("perf --fuzz: %s", f->last_violation);
}

static void
fz_done(struct host_req *r, const struct nvme_cqe *cqe)
{
	struct fz_cmd *c = r->arg;
	struct fz_queue *q = c->q;
	struct fz *f = q->f;

	if (!c->busy) {
		f->twice++;
		fz_violation(f, "queue %d: a second completion for CID %u",
		    q->qid, cqe->cid);
		return;
	}
	c->busy = false;
	q->busy--;
	if (q->hq->dead)
		f->lost++;	/* failed with its queue, not by the target */
	else if ((cqe->status >> 1) == 0)
		f->ok++;
	else
		f->failed++;
}

/* Fill c's request with one random command for its queue. */
static void
gen(struct fz *f, struct fz_cmd *c)
{
	struct host_req *r = &c->req;
	bool admin = c->q->qid == 0;
	uint32_t len = 0, blocks;
	int dir;

	do {
		memset(&r->sqe, 0, sizeof(r->sqe));
		r->sqe.cdw10 = (uint32_t)rnd(f);
		if (rnd_below(f, 100) < 70)
			r->sqe.opc = admin ? admin_ops[rnd_below(f,
			    nitems(admin_ops))] : io_ops[rnd_below(f,
			    nitems(io_ops))];
		else
			r->sqe.opc = (uint8_t)rnd(f);
		if (r->sqe.opc == NVME_FABRICS_COMMAND)
			((uint8_t *)&r->sqe)[4] = rnd_below(f, 4) ?
			    fctypes[rnd_below(f, nitems(fctypes))] :
			    (uint8_t)rnd(f);
	} while (excluded(&r->sqe, admin));
	/* A Fabrics command's FCTYPE is where other commands' NSID is. */
	switch (r->sqe.opc == NVME_FABRICS_COMMAND ? -1 : (int)rnd_below(f, 8)) {
	case -1: break;
	case 0: r->sqe.nsid = 0; break;
	case 1: r->sqe.nsid = 0xffffffff; break;
	case 2: r->sqe.nsid = (uint32_t)rnd(f); break;
	case 3: r->sqe.nsid = 2; break;
	default: r->sqe.nsid = f->o->nsid; break;
	}
	r->sqe.cdw11 = (uint32_t)rnd(f);
	r->sqe.cdw12 = (uint32_t)rnd(f);
	r->sqe.cdw13 = (uint32_t)rnd(f);
	r->sqe.cdw14 = (uint32_t)rnd(f);
	r->sqe.cdw15 = (uint32_t)rnd(f);
	/* Reads and writes mostly in range, so data moves. */
	blocks = 1 + rnd_below(f, 16);
	if (!admin && rnd_below(f, 4) != 0 && (r->sqe.opc == NVME_CMD_READ ||
	    r->sqe.opc == NVME_CMD_WRITE || r->sqe.opc == NVME_CMD_COMPARE ||
	    r->sqe.opc == NVME_CMD_WRITE_ZEROES || r->sqe.opc == 0x04)) {
		uint64_t slba = rnd(f) % (f->nlb > blocks ? f->nlb - blocks : 1);

		r->sqe.cdw10 = (uint32_t)slba;
		r->sqe.cdw11 = (uint32_t)(slba >> 32);
		r->sqe.cdw12 = (blocks - 1) | (rnd_below(f, 8) == 0 ?
		    (uint32_t)rnd(f) & 0xffff0000u : 0);
		len = blocks << f->lba_shift;
	} else if (admin && rnd_below(f, 2)) {
		/* Admin data is mostly a page, as Identify and logs are. */
		len = 4096;
	}
	/* The data direction is the opcode's (bits 1:0): the target moves
	 * data as the opcode says, and well-framed means the same. */
	dir = r->sqe.opc & 3;
	if (len == 0 && dir != 0 && rnd_below(f, 2))
		len = rnd_below(f, 3) == 0 ? rnd_below(f, FZ_MAX_DATA + 1) :
		    512u << rnd_below(f, 8);
	len = MINIMUM(len, FZ_MAX_DATA);
	r->dir = len == 0 ? DIR_NONE : dir == 1 ? DIR_H2C : DIR_C2H;
	r->data_len = r->dir == DIR_NONE ? 0 : len;
	r->iov[0].iov_base = c->buf;
	r->iov[0].iov_len = r->data_len;
	r->iovcnt = r->data_len ? 1 : 0;
	if (r->dir == DIR_H2C)
		for (uint32_t i = 0; i < r->data_len; i += 8)
			memcpy(c->buf + i, &(uint64_t){ rnd(f) },
			    MINIMUM(8, r->data_len - i));
	/* Now and then a descriptor of another type, subtype, address or
	 * (for in-capsule data) length than the data that goes with it. */
	r->raw_sgl = rnd_below(f, 8) == 0;
	if (r->raw_sgl) {
		bool icd = r->dir == DIR_H2C && r->data_len <= (admin ||
		    r->sqe.opc == NVME_FABRICS_COMMAND ? NVMFD_ADMIN_ICD :
		    f->max_icd);

		bool transport;

		for (int i = 0; i < 16; i += 8)
			memcpy(r->sqe.sgl + i, &(uint64_t){ rnd(f) }, 8);
		/* Data that moves by R2T or C2HData is framed by a transport
		 * descriptor of its length; no data, or data in the capsule,
		 * by any other (of any length, for the capsule). */
		transport = (r->sqe.sgl[15] >> 4) == 5;
		if (r->dir != DIR_NONE && !icd) {
			put_le32(r->sqe.sgl + 8, r->data_len);
			r->sqe.sgl[15] = NVME_SGL_TRANSPORT_DATA_BLOCK;
		} else if (transport && icd)
			r->sqe.sgl[15] = NVME_SGL_DATA_BLOCK_OFFSET;
		else if (transport)
			put_le32(r->sqe.sgl + 8, 0);
		if (icd && rnd_below(f, 2))
			put_le32(r->sqe.sgl + 8, r->data_len);
	}
	r->arg = c;
	r->done = fz_done;
}

/* Send up to the credit the rate gives, on random queues with room. */
static void
issue(struct fz *f)
{
	while (f->credit >= 1) {
		struct fz_queue *q = &f->q[rnd_below(f, (uint32_t)f->nq)];
		struct fz_cmd *c = NULL;

		if (q->hq == NULL || q->hq->dead || q->busy == FZ_DEPTH - 1)
			return;		/* full or down: wait a tick */
		for (int i = 0; i < FZ_DEPTH && c == NULL; i++)
			if (!q->cmds[i].busy)
				c = &q->cmds[i];
		gen(f, c);
		c->req.start_ns = now_ns();
		if (host_submit(q->hq, &c->req) != 0)
			return;
		c->busy = true;
		q->busy++;
		q->last = c->req;
		f->sent++;
		f->credit -= 1;
		host_flush(q->hq);
	}
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fz *f = arg;

	if (!f->stopping)
		f->credit = MINIMUM(f->credit + f->o->rate * FZ_TICK_MS / 1000.0,
		    (double)f->nq * FZ_DEPTH);
}

/* Connect queue qid (0: the admin queue, a new association). */
static void
fz_connect(struct fz *f, int qid)
{
	struct fz_queue *q = &f->q[qid];
	uint32_t mdts;
	uint16_t status;
	char err[256];

	q->f = f;
	q->qid = qid;
	if (qid == 0) {
		q->hq = perf_admin(f->base, f->o, f->hostid, &f->cntlid, &f->nlb,
		    &f->lba_shift, &f->max_icd, &mdts);
		return;
	}
	if ((q->hq = host_connect_tls(f->base, f->o->addr, f->o->port,
	    f->o->tls_key ? &f->o->psk : NULL, f->o->hdgst, f->o->ddgst,
	    FZ_DEPTH, err, sizeof(err))) == NULL)
		fatalx("perf --fuzz: queue %d: %s", qid, err);
	q->hq->max_icd = f->max_icd;
	if (host_fabrics_connect(q->hq, (uint16_t)qid, FZ_DEPTH, f->o->nqn,
	    f->o->hostnqn, f->hostid, f->cntlid, 0, &status) < 0)
		fatalx("perf --fuzz: I/O queue %d connect failed: status 0x%x %s",
		    qid, status, q->hq->error);
	perf_auth(q->hq, f->o, qid);
}

/*
 * A queue the target ended: with a C2HTermReq that is its right (it met a
 * command it will not take); anything else is a violation.  Then connect
 * it again (the admin queue takes the association, and so every queue,
 * with it).  Outside the loop's callbacks: connecting runs the loop.
 */
static void
fz_recover(struct fz *f)
{
	bool admin_dead = f->q[0].hq == NULL || f->q[0].hq->dead;

	for (int i = 0; i < f->nq; i++) {
		struct fz_queue *q = &f->q[i];

		if (q->hq == NULL || (!q->hq->dead && !admin_dead))
			continue;
		if (q->hq->dead) {
			if (strncmp(q->hq->error, "C2HTermReq", 10) == 0) {
				f->terminated++;
				snprintf(f->last_term, sizeof(f->last_term),
				    "queue %d: %s", q->qid, q->hq->error);
			} else {
				const struct host_req *l = &q->last;

				fz_violation(f, "queue %d: %s (the last command "
				    "sent: opcode 0x%02x fctype 0x%02x NSID %u "
				    "CDW10 0x%x CDW11 0x%x CDW12 0x%x, %u bytes "
				    "%s, SGL type 0x%02x length %u%s)", q->qid,
				    q->hq->error, l->sqe.opc,
				    ((const uint8_t *)&l->sqe)[4], l->sqe.nsid,
				    l->sqe.cdw10, l->sqe.cdw11, l->sqe.cdw12,
				    l->data_len, l->dir == DIR_H2C ? "out" :
				    l->dir == DIR_C2H ? "in" : "", l->sqe.sgl[15],
				    get_le32(l->sqe.sgl + 8), l->raw_sgl ?
				    ", raw" : "");
			}
		}
		host_close(q->hq);	/* fails what it still had */
		q->hq = NULL;
	}
	for (int i = 0; i < f->nq; i++)
		if (f->q[i].hq == NULL) {
			fz_connect(f, i);
			f->reconnects++;
		}
}

/* A command past FZ_TIMEOUT_S on a live queue got no completion. */
static void
fz_check_late(struct fz *f)
{
	uint64_t limit = now_ns() - (uint64_t)FZ_TIMEOUT_S * 1000000000ull;

	for (int i = 0; i < f->nq; i++)
		for (int k = 0; k < FZ_DEPTH; k++) {
			struct fz_cmd *c = &f->q[i].cmds[k];

			if (!c->busy || c->req.start_ns > limit ||
			    f->q[i].hq == NULL || f->q[i].hq->dead)
				continue;
			f->late++;
			fz_violation(f, "queue %d: opcode 0x%02x CID %u: no "
			    "completion in %d s", f->q[i].qid, c->req.sqe.opc,
			    c->req.sqe.cid, FZ_TIMEOUT_S);
			/* The queue goes, and fails what it still had. */
			host_close(f->q[i].hq);
			f->q[i].hq = NULL;
			break;
		}
}

static bool
any_dead(struct fz *f)
{
	for (int i = 0; i < f->nq; i++)
		if (f->q[i].hq == NULL || f->q[i].hq->dead)
			return (true);
	return (false);
}

static bool
any_busy(struct fz *f)
{
	for (int i = 0; i < f->nq; i++)
		if (f->q[i].busy)
			return (true);
	return (false);
}

/*
 * Random Reservation commands may have left this host (every queue has
 * the same host ID) registered, or holding a reservation that would keep
 * other hosts from writing: unregister it (IEKEY, whatever its key), which
 * also releases what it holds.  Namespaces it is not registered on say so.
 */
static void
fz_unreserve(struct fz *f)
{
	const uint32_t nsids[] = { f->o->nsid, 1, 2, 3, 4 };
	uint8_t keys[16] = { 0 };
	struct host_req r;

	if (f->nq < 2 || f->q[1].hq == NULL || f->q[1].hq->dead)
		return;
	for (size_t i = 0; i < nitems(nsids); i++) {
		memset(&r, 0, sizeof(r));
		r.sqe.opc = 0x0d;			/* Reservation Register */
		r.sqe.nsid = nsids[i];
		r.sqe.cdw10 = 1 | 1u << 3;		/* unregister, IEKEY */
		r.iov[0].iov_base = keys;
		r.iov[0].iov_len = sizeof(keys);
		r.iovcnt = 1;
		r.data_len = sizeof(keys);
		r.dir = DIR_H2C;
		(void)host_run(f->q[1].hq, &r, 5000);
	}
}

/* The controller still answers, and a new association comes up. */
static bool
fz_healthy(struct fz *f)
{
	struct host_req r;
	struct fz_queue spare;

	memset(&r, 0, sizeof(r));
	host_cmd_property(&r, NVMF_FCTYPE_PROPERTY_GET, NVME_REG_CSTS, false,
	    0);
	if (host_run(f->q[0].hq, &r, 5000) != 0 || (r.cqe.status >> 1) != 0 ||
	    (r.cqe.dw0 & NVME_CSTS_CFS)) {
		log_warnx("perf --fuzz: the controller does not answer "
		    "Property Get CSTS (or is fatal)");
		return (false);
	}
	spare = f->q[0];
	fz_connect(f, 0);	/* exits when it cannot */
	host_close(f->q[0].hq);
	f->q[0] = spare;
	return (true);
}

int
perf_fuzz(const struct perf_opts *o, const uint8_t hostid[16])
{
	struct fz *f;
	struct event *tick;
	struct timeval tv = { 0, FZ_TICK_MS * 1000 };
	uint64_t end, drain_end;
	bool healthy;
	int rc;

	if (o->queues > FZ_MAX_QUEUES)
		fatalx("perf --fuzz: at most %d I/O queues", FZ_MAX_QUEUES);
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->base = event_base_new()) == NULL)
		fatal("perf --fuzz");
	f->o = o;
	f->hostid = hostid;
	f->rng = o->seed * 0x9e3779b97f4a7c15ull + 1;
	f->nq = o->queues + 1;
	for (int i = 0; i < f->nq; i++)
		for (int k = 0; k < FZ_DEPTH; k++) {
			f->q[i].cmds[k].q = &f->q[i];
			if ((f->q[i].cmds[k].buf = aligned_alloc(4096,
			    FZ_MAX_DATA)) == NULL)
				fatal("perf --fuzz");
		}
	for (int i = 0; i < f->nq; i++)
		fz_connect(f, i);
	if (!o->json)
		fprintf(stderr, "perf --fuzz: seed %llu, %u commands/s on the "
		    "admin queue and %d I/O queue%s of %s, %.1f s\n",
		    (unsigned long long)o->seed, o->rate, o->queues,
		    o->queues == 1 ? "" : "s", o->nqn, o->seconds);
	if ((tick = event_new(f->base, -1, EV_PERSIST, tick_cb, f)) == NULL)
		fatal("perf --fuzz");
	event_add(tick, &tv);
	end = now_ns() + (uint64_t)(o->seconds * 1e9);
	drain_end = end + (uint64_t)(FZ_TIMEOUT_S + 1) * 1000000000ull;
	while (now_ns() < drain_end) {
		event_base_loop(f->base, EVLOOP_ONCE);
		if (!f->stopping && now_ns() >= end) {
			f->stopping = true;
			f->credit = 0;
		}
		fz_check_late(f);
		if (any_dead(f))
			fz_recover(f);
		if (f->stopping && !any_busy(f))
			break;
		issue(f);
	}
	event_free(tick);
	if (any_dead(f))
		fz_recover(f);
	fz_unreserve(f);
	healthy = fz_healthy(f);
	rc = f->violations || !healthy ? 1 : 0;
	if (o->json)
		printf("{\"seed\":%llu,\"sent\":%llu,\"ok\":%llu,"
		    "\"failed\":%llu,\"lost_with_queue\":%llu,"
		    "\"terminated_queues\":%llu,\"reconnects\":%llu,"
		    "\"violations\":%llu,\"healthy\":%s}\n",
		    (unsigned long long)o->seed, (unsigned long long)f->sent,
		    (unsigned long long)f->ok, (unsigned long long)f->failed,
		    (unsigned long long)f->lost,
		    (unsigned long long)f->terminated,
		    (unsigned long long)f->reconnects,
		    (unsigned long long)f->violations,
		    healthy ? "true" : "false");
	else
		printf("%llu commands: %llu succeeded, %llu failed with a "
		    "status, %llu lost with their queue; %llu queues ended by "
		    "the target%s%s; %llu violations%s%s; %s\n",
		    (unsigned long long)f->sent, (unsigned long long)f->ok,
		    (unsigned long long)f->failed, (unsigned long long)f->lost,
		    (unsigned long long)f->terminated,
		    f->terminated ? " (last: " : "", f->terminated ?
		    f->last_term : "", (unsigned long long)f->violations,
		    f->violations ? " (last: " : "", f->violations ?
		    f->last_violation : "", healthy ? "the controller still "
		    "serves" : "the controller is not healthy");
	for (int i = 0; i < f->nq; i++) {
		host_close(f->q[i].hq);
		for (int k = 0; k < FZ_DEPTH; k++)
			free(f->q[i].cmds[k].buf);
	}
	event_base_free(f->base);
	free(f);
	return (rc);
}
