/*
 * Associations with remote NVMe/TCP controllers (host role in the daemon).
 * Bring-up is a chain of admin commands, one at a time, each completion
 * starting the next: Connect, CAP, VS, CC.EN, CSTS.RDY (polled within
 * CAP.TO), Identify Controller, Number of Queues, Async Event
 * Configuration, the active namespace list and each namespace, then the
 * I/O queues.  A live association keeps an AER outstanding and sends Keep
 * Alive at KATO/2.  A lost one is rebuilt every reconnect-delay until
 * ctrl-loss-tmo; its I/O is held meanwhile.
 *
 * All of that runs on the main loop.  Only a queue's set-up (TCP, TLS with
 * a tls_key, ICReq/ICResp, Connect and DH-HMAC-CHAP when the controller
 * asks: host_queue_open, which blocks) runs on a short-lived thread, so
 * the loop never waits for a remote peer, and a daemon can connect to its
 * own target.  Once up, the I/O queues go to the
 * association's lanes on the worker loops (host-lane.c), where the NBD
 * connections submit to them.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "nvmfd.h"
#include "ctl-proto.h"
#include "host.h"
#include "nbd.h"
#include "nbd-dev.h"

/* A queue's set-up up to its Connect (and authentication), on a thread
 * of its own. */
struct connect_job {
	struct host_assoc *a;		/* NULL once it is gone */
	struct host_params p;		/* its secrets wiped by the thread */
	uint16_t	depth, qid, sqsize, cntlid;
	uint32_t	kato_ms;
	struct host_qpair *hq;		/* detached: no event base */
	uint16_t	status;		/* the Connect's, when refused */
	char		err[256];
};

struct host_assoc_list host_assocs = TAILQ_HEAD_INITIALIZER(host_assocs);
static int next_assoc_id = 1;
static int nassocs;		/* listed, deleting ones too */
static int connect_jobs;	/* threads whose connect_done is to come */

enum {
	ST_ADMIN, ST_CAP, ST_VS, ST_CC, ST_RDY, ST_IDCTRL, ST_NQ, ST_AEC,
	ST_NSLIST, ST_IDNS, ST_IOQ, ST_DONE,
	ST_CHANGED_LOG,			/* rescan: clear the event first */
	ST_DISC_LOG,			/* discovery: the same */
	ST_SHN, ST_SHST,		/* orderly shutdown */
};

static void step_run(struct host_assoc *);
static void step_done(struct host_req *, const struct nvme_cqe *);
static void assoc_lost(struct host_assoc *, const char *, ...)
	    __printflike(2, 3);
static void assoc_free(struct host_assoc *);
static void aer_submit(struct host_assoc *);
static void lanes_set(struct host_assoc *, enum lane_mode);
static void connect_done(void *);
static uint64_t ka_period_ms(const struct host_assoc *);

const char *
host_assoc_state_name(enum assoc_state s)
{
	switch (s) {
	case AS_CONNECTING:	return ("connecting");
	case AS_LIVE:		return ("live");
	case AS_RECONNECTING:	return ("reconnecting");
	case AS_DELETING:	return ("deleting");
	case AS_FAILED:		return ("failed");
	}
	return ("?");
}

static void
tv_set(struct timeval *tv, uint64_t ms)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/* ------------------------------------------------------------ queues */

static void
close_queues(struct host_assoc *a)
{
	/* A queue still connecting is closed when it is done. */
	if (a->job != NULL) {
		a->job->a = NULL;
		a->job = NULL;
	}
	/* Those not handed to a lane yet carry no I/O. */
	for (int i = 0; i < HOST_MAX_IOQ; i++)
		if (a->ioq[i] != NULL) {
			host_close(a->ioq[i]);
			a->ioq[i] = NULL;
		}
	a->nioq = 0;
	if (a->admin != NULL) {
		host_close(a->admin);
		a->admin = NULL;
	}
	a->step_busy = a->ka_busy = a->aer_busy = false;
	/* An association whose creation ran out of memory may lack them. */
	if (a->ka_ev != NULL)
		evtimer_del(a->ka_ev);
	if (a->step_ev != NULL)
		evtimer_del(a->step_ev);
	if (a->step_to_ev != NULL)
		evtimer_del(a->step_to_ev);
}

/* ---------------------------------------------------------- exports */

static void
exports_update(struct host_assoc *a)
{
	for (int i = 0; i < a->nns; i++) {
		struct host_ns *n = &a->ns[i];

		if (n->seen && n->exp == NULL) {
			if ((n->exp = nbd_export_add(a, n)) != NULL)
				nbd_dev_export_added(a, n->exp);
		} else if (n->seen)
			nbd_export_update(n->exp, a, n);
	}
	/* Namespaces gone from the active list: their exports go too. */
	for (int i = 0; i < a->nns;) {
		if (a->ns[i].seen) {
			i++;
			continue;
		}
		if (a->ns[i].exp != NULL)
			nbd_export_remove(a->ns[i].exp);
		a->ns[i] = a->ns[--a->nns];
	}
}

/* ------------------------------------------------------ bring-up chain */

static void
step_fail(struct host_assoc *a, uint16_t status, const char *what)
{
	/* A refusal the controller says not to retry ends the association. */
	if (status & NVME_DNR >> 1) {
		snprintf(a->error, sizeof(a->error), "%s: status 0x%x (do not "
		    "retry)", what, status & 0x7ff);
		log_warnx("host %d: %s: %s", a->id, a->p.subnqn, a->error);
		a->state = AS_FAILED;
		event_active(a->lost_ev, 0, 0);
		return;
	}
	assoc_lost(a, "%s: status 0x%x%s%s", what, status & 0x7ff,
	    a->admin && a->admin->dead ? ": " : "",
	    a->admin && a->admin->dead ? a->admin->error : "");
}

/*
 * A controller that accepts the connection and then says nothing must not
 * stall the association: without an answer in HOST_STEP_TIMEOUT_S the
 * attempt is lost, and reconnect-delay and ctrl-loss-tmo take over.
 */
/* A queue's set-up with TLS or DH-HMAC-CHAP has round trips of its own. */
static int
step_limit_s(const struct host_assoc *a)
{
	return (a->job != NULL && (a->p.dhchap_secret[0] || a->p.tls_key[0]) ?
	    3 * HOST_STEP_TIMEOUT_S : HOST_STEP_TIMEOUT_S);
}

static void
step_deadline(struct host_assoc *a)
{
	struct timeval tv = { step_limit_s(a), 0 };

	evtimer_add(a->step_to_ev, &tv);
}

static void
step_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct host_assoc *a = arg;

	if (a->step_busy)
		assoc_lost(a, "%s (step %d): no answer in %d s", a->job != NULL ?
		    "queue connect" : "admin command", a->step,
		    step_limit_s(a));
}

static void
step_submit(struct host_assoc *a, struct host_qpair *hq)
{
	a->step_req.done = step_done;
	a->step_req.arg = a;
	if (host_submit(hq, &a->step_req) != 0) {
		assoc_lost(a, "step %d: cannot submit", a->step);
		return;
	}
	a->step_busy = true;
	step_deadline(a);
	host_flush(hq);
}

static void
step_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	step_run(arg);
}

static void *
connect_thread(void *arg)
{
	struct connect_job *j = arg;
	struct event_base *base;

	if ((base = event_base_new()) == NULL)
		snprintf(j->err, sizeof(j->err), "out of memory");
	else if ((j->hq = host_queue_open(base, &j->p, j->p.subnqn, j->qid,
	    j->depth, j->sqsize, j->cntlid, j->kato_ms, &j->status, j->err,
	    sizeof(j->err))) != NULL)
		host_qpair_detach(j->hq);
	if (base != NULL)
		event_base_free(base);
	host_params_clear(&j->p);
	loop_post(main_loop, connect_done, j);
	return (NULL);
}

/* Back on the main loop: the queue is connected (or not). */
static void
connect_done(void *arg)
{
	struct connect_job *j = arg;
	struct host_assoc *a = j->a;
	struct host_qpair *hq = j->hq;
	uint16_t status = j->status;
	char err[256];

	connect_jobs--;
	snprintf(err, sizeof(err), "%s", j->err);
	free(j);
	if (hq != NULL && host_qpair_attach(hq, main_loop->base) != 0) {
		host_close(hq);
		hq = NULL;
		snprintf(err, sizeof(err), "out of memory");
	}
	if (a == NULL) {
		if (hq != NULL)
			host_close(hq);
		return;
	}
	a->job = NULL;
	a->step_busy = false;
	evtimer_del(a->step_to_ev);
	if (hq == NULL && status != 0) {
		step_fail(a, status, a->step == ST_ADMIN ? "Connect" :
		    "I/O queue Connect");
		return;
	}
	if (hq == NULL) {
		assoc_lost(a, "%s%s", a->step == ST_ADMIN ? "" : "I/O queue: ",
		    err);
		return;
	}
	if (a->step == ST_ADMIN) {
		a->admin = hq;
		a->cntlid = hq->connect_dw0 & 0xffff;
		a->step = ST_CAP;
	} else {
		hq->max_icd = a->max_icd;
		a->qdepth = hq->depth;
		a->ioq[a->nioq++] = hq;
	}
	step_run(a);
}

/* Connect threads still to report, those of deleted associations too:
 * they post to the main loop, which must outlive them. */
int
host_connect_jobs(void)
{
	return (connect_jobs);
}

static void
connect_start(struct host_assoc *a, uint16_t depth)
{
	struct connect_job *j;
	pthread_attr_t attr;
	pthread_t tid;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		assoc_lost(a, "%s", "out of memory");
		return;
	}
	j->a = a;
	j->p = a->p;
	j->depth = depth;
	if (a->step == ST_ADMIN) {
		j->sqsize = NVMFD_ADMIN_QUEUE_DEPTH;
		j->cntlid = NVMF_CNTLID_DYNAMIC;
		j->kato_ms = a->p.kato_s * 1000;
	} else {
		j->qid = (uint16_t)(a->nioq + 1);
		j->sqsize = (uint16_t)a->p.queue_size;
		j->cntlid = a->cntlid;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, connect_thread, j) != 0) {
		pthread_attr_destroy(&attr);
		host_params_clear(&j->p);
		free(j);
		assoc_lost(a, "%s", "cannot start a connect thread");
		return;
	}
	pthread_attr_destroy(&attr);
	connect_jobs++;
	a->job = j;
	a->step_busy = true;
	step_deadline(a);
}

static void
step_run(struct host_assoc *a)
{
	struct host_req *r = &a->step_req;

	if (a->step_busy)
		return;
	switch (a->step) {
	case ST_ADMIN:
		connect_start(a, NVMFD_ADMIN_QUEUE_DEPTH - 1);
		return;
	case ST_CAP:
		host_cmd_property(r, NVMF_FCTYPE_PROPERTY_GET, NVME_REG_CAP,
		    true, 0);
		break;
	case ST_VS:
		host_cmd_property(r, NVMF_FCTYPE_PROPERTY_GET, NVME_REG_VS,
		    false, 0);
		break;
	case ST_CC:
		/* 64-byte SQEs, 16-byte CQEs, enable. */
		host_cmd_property(r, NVMF_FCTYPE_PROPERTY_SET, NVME_REG_CC,
		    false, NVME_CC_EN | 6u << 16 | 4u << 20);
		break;
	case ST_RDY:
	case ST_SHST:
		host_cmd_property(r, NVMF_FCTYPE_PROPERTY_GET, NVME_REG_CSTS,
		    false, 0);
		break;
	case ST_IDCTRL:
		host_cmd_identify(r, NVME_ID_CNS_CTRL, 0, a->page);
		break;
	case ST_NQ:
		memset(r, 0, offsetof(struct host_req, hq));
		r->sqe.opc = NVME_ADM_SET_FEATURES;
		r->sqe.cdw10 = NVME_FEAT_NUM_QUEUES;
		r->sqe.cdw11 = (uint32_t)(a->p.nr_io_queues - 1) * 0x10001u;
		break;
	case ST_AEC:
		memset(r, 0, offsetof(struct host_req, hq));
		r->sqe.opc = NVME_ADM_SET_FEATURES;
		r->sqe.cdw10 = NVME_FEAT_ASYNC_EVENT;
		r->sqe.cdw11 = a->discovery ? NVME_AEN_CFG_DISC_CHANGE :
		    NVME_AEN_CFG_NS_ATTR;
		break;
	case ST_CHANGED_LOG:
	case ST_DISC_LOG: {
		/* Read here, on the controller that sent the event, so that
		 * it sends the next one; the discovery log itself is read
		 * again in full by host_follow_start(). */
		uint32_t len = a->step == ST_DISC_LOG ? 1024 : 4096;

		memset(r, 0, offsetof(struct host_req, hq));
		r->sqe.opc = NVME_ADM_GET_LOG_PAGE;
		r->sqe.cdw10 = (a->step == ST_DISC_LOG ? NVME_LOG_DISCOVERY :
		    NVME_LOG_CHANGED_NS) | (len / 4 - 1) << 16;
		r->iov[0].iov_base = a->page;
		r->iov[0].iov_len = len;
		r->iovcnt = 1;
		r->data_len = len;
		r->dir = DIR_C2H;
		break;
	}
	case ST_NSLIST:
		host_cmd_identify(r, NVME_ID_CNS_NS_ACTIVE_LIST, 0, a->page);
		break;
	case ST_IDNS:
		if (a->step_i >= a->nnslist) {
			a->step = ST_IOQ;
			exports_update(a);
			step_run(a);
			return;
		}
		host_cmd_identify(r, NVME_ID_CNS_NS, a->nslist[a->step_i],
		    a->page);
		break;
	case ST_IOQ:
		if (a->nioq < a->want_ioq) {
			connect_start(a, a->p.queue_size - 1);
			return;
		}
		a->step = ST_DONE;
		/* FALLTHROUGH */
	case ST_DONE:
		if (a->state != AS_LIVE) {
			struct timeval tv;

			log_info("host %d: %s at %s:%s live: controller %u, "
			    "%d I/O queue%s, %d namespace%s", a->id,
			    a->p.subnqn, a->p.traddr, a->p.trsvcid, a->cntlid,
			    a->nioq, a->nioq == 1 ? "" : "s", a->nns,
			    a->nns == 1 ? "" : "s");
			a->state = AS_LIVE;
			a->error[0] = '\0';
			a->lost_at = 0;
			a->connected_at = now_ns();
			/* Not from here: the last queue's own read callback
			 * may be on the stack, and it must be done with the
			 * queue before another loop takes it. */
			event_active(a->handoff_ev, 0, 0);
			tv_set(&tv, ka_period_ms(a));
			evtimer_add(a->ka_ev, &tv);
			/* A log that changed while we were away too. */
			if (a->discovery)
				host_follow_start(a);
		}
		if (!a->aer_busy)
			aer_submit(a);
		if (a->rescan_pending) {
			a->rescan_pending = false;
			a->step = a->discovery ? ST_DISC_LOG : ST_CHANGED_LOG;
			step_run(a);
		}
		return;
	case ST_SHN:
		host_cmd_property(r, NVMF_FCTYPE_PROPERTY_SET, NVME_REG_CC,
		    false, NVME_CC_EN | 6u << 16 | 4u << 20 |
		    1u << NVME_CC_SHN_SHIFT);
		break;
	}
	step_submit(a, a->admin);
}

static void
step_done(struct host_req *r, const struct nvme_cqe *cqe)
{
	struct host_assoc *a = r->arg;
	uint16_t status = cqe->status >> 1;
	uint64_t v = cqe->dw0 | (uint64_t)cqe->dw1 << 32;
	const uint8_t *id = a->page;
	struct timeval tv;

	a->step_busy = false;
	evtimer_del(a->step_to_ev);
	if (a->state == AS_DELETING && (a->step == ST_SHN ||
	    a->step == ST_SHST)) {
		/* Shutdown: a failure or SHST complete ends it. */
		if (status == 0 && a->step == ST_SHN) {
			a->step = ST_SHST;
			a->deadline = now_ns() + 5000000000ull;
			step_run(a);
			return;
		}
		if (status == 0 && (v & NVME_CSTS_SHST_MASK) !=
		    NVME_CSTS_SHST_COMPLETE && now_ns() < a->deadline) {
			tv_set(&tv, 20);
			evtimer_add(a->step_ev, &tv);
			return;
		}
		event_active(a->lost_ev, 0, 0);
		return;
	}
	if (a->state != AS_CONNECTING && a->state != AS_RECONNECTING &&
	    a->state != AS_LIVE)
		return;
	if (status != 0) {
		step_fail(a, cqe->status >> 1, "bring-up");
		return;
	}
	switch (a->step) {
	case ST_CAP:
		a->cap = v;
		/* Queues hold MQES + 1 entries at most. */
		if ((uint64_t)a->p.queue_size > (v & 0xffff) + 1)
			a->p.queue_size = (int)(v & 0xffff) + 1;
		a->step = ST_VS;
		break;
	case ST_VS:
		a->vs = (uint32_t)v;
		a->step = ST_CC;
		break;
	case ST_CC:
		/* CAP.TO: 500 ms units. */
		a->deadline = now_ns() + (((a->cap >> 24) & 0xff) + 1) *
		    500000000ull;
		a->step = ST_RDY;
		break;
	case ST_RDY:
		if (v & NVME_CSTS_CFS) {
			assoc_lost(a, "%s", "controller fatal status");
			return;
		}
		if (!(v & NVME_CSTS_RDY)) {
			if (now_ns() > a->deadline) {
				assoc_lost(a, "%s", "not ready within CAP.TO");
				return;
			}
			tv_set(&tv, 20);
			evtimer_add(a->step_ev, &tv);
			return;
		}
		a->step = ST_IDCTRL;
		break;
	case ST_IDCTRL: {
		uint32_t ioccsz = get_le32(id + 1792);

		/* MDTS counts 4 KiB pages (CAP.MPSMIN 0) as a power of 2. */
		a->mdts = id[77] && id[77] < 20 ? 4096u << id[77] : 0;
		a->max_icd = ioccsz > 4 ? ioccsz * 16 - 64 : 0;
		a->oncs = get_le16(id + 520);
		a->vwc = id[525] & 1;
		/* A discovery controller has no I/O queues or namespaces. */
		a->step = a->discovery ? ST_AEC : ST_NQ;
		break;
	}
	case ST_NQ:
		a->want_ioq = MINIMUM((int)(cqe->dw0 & 0xffff) + 1,
		    (int)(cqe->dw0 >> 16) + 1);
		a->want_ioq = MINIMUM(a->want_ioq, a->p.nr_io_queues);
		a->step = ST_AEC;
		break;
	case ST_AEC:
		a->step = a->discovery ? ST_DONE : ST_NSLIST;
		break;
	case ST_CHANGED_LOG:
		a->step = ST_NSLIST;
		break;
	case ST_DISC_LOG:
		a->step = ST_DONE;
		host_follow_start(a);
		break;
	case ST_NSLIST:
		a->nnslist = 0;
		for (int i = 0; i < 1024 && a->nnslist < HOST_MAX_NS; i++) {
			uint32_t nsid = get_le32(id + 4 * i);

			if (nsid == 0)
				break;
			a->nslist[a->nnslist++] = nsid;
		}
		for (int i = 0; i < a->nns; i++)
			a->ns[i].seen = false;
		a->step_i = 0;
		a->step = ST_IDNS;
		break;
	case ST_IDNS: {
		uint32_t nsid = a->nslist[a->step_i++];
		uint32_t lbads = id[128 + 4 * (id[26] & 0xf) + 2];
		struct host_ns *n = NULL;

		if (get_le64(id) == 0 || lbads < 9 || lbads > 16) {
			log_warnx("host %d: namespace %u: not usable (size %llu,"
			    " LBA 2^%u)", a->id, nsid,
			    (unsigned long long)get_le64(id), lbads);
			break;
		}
		for (int i = 0; i < a->nns; i++)
			if (a->ns[i].nsid == nsid)
				n = &a->ns[i];
		if (n == NULL) {
			n = &a->ns[a->nns++];
			memset(n, 0, sizeof(*n));
			n->nsid = nsid;
		}
		n->nlb = get_le64(id);
		n->lba_shift = lbads;
		n->readonly = id[99] & 1;
		n->seen = true;
		break;
	}
	}
	step_run(a);
}

/* ------------------------------------------------ keep alive and AER */

static void
ka_done(struct host_req *r, const struct nvme_cqe *cqe)
{
	struct host_assoc *a = r->arg;

	a->ka_busy = false;
	if ((cqe->status >> 1) != 0 && a->state == AS_LIVE)
		assoc_lost(a, "Keep Alive failed: status 0x%x",
		    cqe->status >> 1);
}

/*
 * Keep Alive goes every KATO/2.  The same timer looks for I/O stuck past
 * HOST_CMD_TIMEOUT_S, so it runs without KATO too.
 */
static uint64_t
ka_period_ms(const struct host_assoc *a)
{
	return (a->p.kato_s ? a->p.kato_s * 500ull : 5000);
}

static void
ka_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct host_assoc *a = arg;
	struct timeval tv;

	if (a->state != AS_LIVE)
		return;
	if (a->ka_busy) {
		/* Unanswered for KATO/2: the association is dead. */
		assoc_lost(a, "%s", "Keep Alive unanswered");
		return;
	}
	tv_set(&tv, ka_period_ms(a));
	evtimer_add(a->ka_ev, &tv);
	if (a->p.kato_s == 0)
		return;
	memset(&a->ka_req, 0, offsetof(struct host_req, hq));
	a->ka_req.sqe.opc = NVME_ADM_KEEP_ALIVE;
	a->ka_req.done = ka_done;
	a->ka_req.arg = a;
	if (host_submit(a->admin, &a->ka_req) != 0) {
		evtimer_del(a->ka_ev);
		assoc_lost(a, "%s", "admin queue gone");
		return;
	}
	a->ka_busy = true;
	host_flush(a->admin);
}

static void
aer_done(struct host_req *r, const struct nvme_cqe *cqe)
{
	struct host_assoc *a = r->arg;

	a->aer_busy = false;
	if (a->state != AS_LIVE)
		return;
	if ((cqe->status >> 1) != 0) {
		/* Aborted at shutdown, or the queue failed. */
		if (a->admin->dead)
			assoc_lost(a, "admin queue: %s", a->admin->error);
		return;
	}
	log_info("host %d: asynchronous event 0x%08x", a->id, cqe->dw0);
	if ((cqe->dw0 & 0xff00ff) == (NVME_AER_NS_CHANGED & 0xff00ff) ||
	    (a->discovery &&
	    (cqe->dw0 & 0xff00ff) == (NVME_AER_DISC_CHANGED & 0xff00ff))) {
		if (a->step_busy || a->step != ST_DONE)
			a->rescan_pending = true;
		else {
			a->step = a->discovery ? ST_DISC_LOG : ST_CHANGED_LOG;
			step_run(a);
		}
	}
	aer_submit(a);
}

static void
aer_submit(struct host_assoc *a)
{
	memset(&a->aer_req, 0, offsetof(struct host_req, hq));
	a->aer_req.sqe.opc = NVME_ADM_ASYNC_EVENT;
	a->aer_req.done = aer_done;
	a->aer_req.arg = a;
	if (host_submit(a->admin, &a->aer_req) == 0) {
		a->aer_busy = true;
		host_flush(a->admin);
	}
}

/* ----------------------------------------------- loss and reconnection */

static void
assoc_lost(struct host_assoc *a, const char *fmt, ...)
{
	va_list ap;

	if (a->state == AS_DELETING) {
		event_active(a->lost_ev, 0, 0);
		return;
	}
	/* Queues being closed report their end: that is known. */
	if (a->state == AS_FAILED || a->tearing)
		return;
	va_start(ap, fmt);
	vsnprintf(a->error, sizeof(a->error), fmt, ap);
	va_end(ap);
	log_warnx("host %d: %s at %s:%s: %s", a->id, a->p.subnqn,
	    a->p.traddr, a->p.trsvcid, a->error);
	if (a->lost_at == 0)
		a->lost_at = now_ns();
	a->state = AS_RECONNECTING;
	/* Not here: a queue's own callback may be on the stack. */
	event_active(a->lost_ev, 0, 0);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct host_assoc *a = arg;
	uint64_t down = now_ns() - a->lost_at;

	if (a->state != AS_RECONNECTING)
		return;
	if (down >= (uint64_t)a->p.ctrl_loss_tmo_s * 1000000000ull) {
		log_warnx("host %d: %s: controller loss timeout (%u s); I/O "
		    "fails from now on", a->id, a->p.subnqn,
		    a->p.ctrl_loss_tmo_s);
		a->state = AS_FAILED;
		lanes_set(a, LANE_FAIL);
		return;
	}
	a->reconnects++;
	a->step = ST_ADMIN;
	a->step_busy = false;
	step_run(a);
}

int
host_assoc_reconnect(struct host_assoc *a, char *err, size_t errlen)
{
	switch (a->state) {
	case AS_LIVE:
		a->retry_now = true;
		assoc_lost(a, "%s", "reconnect asked for");
		return (0);
	case AS_FAILED:
		/* A new ctrl-loss-tmo from now; held I/O waits again. */
		log_info("host %d: %s: reconnecting as asked", a->id,
		    a->p.subnqn);
		a->state = AS_RECONNECTING;
		a->lost_at = now_ns();
		lanes_set(a, LANE_HOLD);
		break;
	case AS_RECONNECTING:
		if (!a->step_busy && a->step == ST_ADMIN)
			break;
		/* FALLTHROUGH */
	default:
		snprintf(err, errlen, "host %d is %s already", a->id,
		    a->state == AS_DELETING ? "disconnecting" : "connecting");
		return (-1);
	}
	evtimer_del(a->retry_ev);
	event_active(a->retry_ev, 0, 0);
	return (0);
}

/*
 * Queue i to the i-th lane mod n, the lanes with the most NBD connections
 * first: with fewer queues than lanes (the target granted fewer than we
 * asked for), the lanes clients are on get them.  Then the lanes submit.
 */
static void
handoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct host_assoc *a = arg;
	struct host_lane *order[HOST_MAX_IOQ];

	if (a->state != AS_LIVE)
		return;		/* lost since: lost_cb closed them */
	a->gen++;
	for (int i = 0; i < a->nlanes; i++) {
		int j = i;

		a->lanes[i]->nq_main = 0;
		/* Insertion sort, stable: by connections, most first. */
		for (; j > 0 && order[j - 1]->nconns < a->lanes[i]->nconns; j--)
			order[j] = order[j - 1];
		order[j] = a->lanes[i];
	}
	for (int i = 0; i < a->nioq; i++)
		if (a->ioq[i] != NULL) {
			host_lane_add(order[i % a->nlanes], a->ioq[i]);
			a->ioq[i] = NULL;
		}
	lanes_set(a, LANE_LIVE);
}

static void
lost_cb(evutil_socket_t fd, short what, void *arg)
{
	struct host_assoc *a = arg;
	struct timeval tv;

	a->tearing = true;
	close_queues(a);
	a->tearing = false;
	if (a->state == AS_DELETING) {
		assoc_free(a);
		return;
	}
	if (a->state == AS_RECONNECTING) {
		tv_set(&tv, a->retry_now ? 0 :
		    (uint64_t)a->p.reconnect_delay_s * 1000);
		a->retry_now = false;
		evtimer_add(a->retry_ev, &tv);
	}
	lanes_set(a, a->state == AS_FAILED ? LANE_FAIL : LANE_HOLD);
}

/* ------------------------------------------------------------ lanes */

/* Every lane, to mode, unless it is there already as far as we know;
 * NBD connections that wait for a lane may have one now. */
static void
lanes_set(struct host_assoc *a, enum lane_mode m)
{
	for (int i = 0; i < a->nlanes; i++)
		host_lane_set(a->lanes[i], m);
	for (int i = 0; i < a->nns; i++)
		nbd_export_lanes_ready(a->ns[i].exp);
}

/* A lane's queue failed in bring-up gen; another one is old news. */
void
host_lane_lost(struct host_assoc *a, unsigned gen, const char *why)
{
	if (gen == a->gen && a->state == AS_LIVE)
		assoc_lost(a, "%s", why);
}

/*
 * Lanes that have a queue, or had one in the last bring-up (their I/O is
 * held there until the queues return).  None before the first bring-up:
 * the connection waits for one (NULL) unless the association has failed,
 * where any lane fails its I/O at once.  Never a lane a live association
 * gave no queue: its I/O could only fail.
 */
struct host_lane *
host_lane_place(struct host_assoc *a)
{
	struct host_lane *best = NULL;
	bool any = false;

	for (int i = 0; i < a->nlanes; i++)
		any |= a->lanes[i]->nq_main > 0;
	if (!any && a->state != AS_FAILED)
		return (NULL);
	for (int i = 0; i < a->nlanes; i++) {
		struct host_lane *l = a->lanes[i];

		if ((l->nq_main > 0 || !any) &&
		    (best == NULL || l->nconns < best->nconns))
			best = l;
	}
	if (best != NULL)
		best->nconns++;
	return (best);
}

void
host_lane_unplace(struct host_lane *l)
{
	if (l != NULL)
		l->nconns--;
}

unsigned
host_assoc_held(struct host_assoc *a)
{
	unsigned n = 0;

	for (int i = 0; i < a->nlanes; i++)
		n += atomic_load(&a->lanes[i]->nheld);
	return (n);
}

static void
assoc_free_final(struct host_assoc *a)
{
	if (a->listed) {
		TAILQ_REMOVE(&host_assocs, a, entry);
		nassocs--;
	}
	host_params_clear(&a->p);
	free(a);
}

/* A lane of a is gone; the last one lets a go. */
void
host_lane_gone(struct host_assoc *a)
{
	if (--a->lanes_alive == 0)
		assoc_free_final(a);
}

/* ------------------------------------------------------------ lifetime */

struct host_assoc *
host_assoc_create(const struct host_params *p, char *err, size_t errlen)
{
	static unsigned next_worker;
	struct host_assoc *a;
	struct event_base *base = main_loop->base;
	int nw = loops_count();

	if (p->nr_io_queues < 1 || p->nr_io_queues > HOST_MAX_IOQ) {
		snprintf(err, errlen, "nr-io-queues: 1 to %d", HOST_MAX_IOQ);
		return (NULL);
	}
	if (p->queue_size < 2 || p->queue_size > 1024) {
		snprintf(err, errlen, "queue-size: 2 to 1024");
		return (NULL);
	}
	if (!nqn_valid(p->subnqn) || !nqn_valid(p->hostnqn)) {
		snprintf(err, errlen, "invalid NQN");
		return (NULL);
	}
	/* A discovery log (or a script) cannot make them without end. */
	if (nassocs >= HOST_MAX_ASSOCS) {
		snprintf(err, errlen, "%d associations already, the most there "
		    "can be", nassocs);
		return (NULL);
	}
	TAILQ_FOREACH(a, &host_assocs, entry)
		if (strcmp(a->p.subnqn, p->subnqn) == 0 &&
		    strcmp(a->p.traddr, p->traddr) == 0 &&
		    strcmp(a->p.trsvcid, p->trsvcid) == 0) {
			snprintf(err, errlen, "already connected to %s at "
			    "%s:%s (host %d)", p->subnqn, p->traddr,
			    p->trsvcid, a->id);
			return (NULL);
		}
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->page = aligned_alloc(4096, 4096)) == NULL ||
	    (a->nslist = calloc(1024, sizeof(*a->nslist))) == NULL ||
	    (a->step_ev = evtimer_new(base, step_timer_cb, a)) == NULL ||
	    (a->step_to_ev = evtimer_new(base, step_timeout_cb, a)) == NULL ||
	    (a->ka_ev = evtimer_new(base, ka_timer_cb, a)) == NULL ||
	    (a->lost_ev = event_new(base, -1, 0, lost_cb, a)) == NULL ||
	    (a->handoff_ev = event_new(base, -1, 0, handoff_cb, a)) == NULL ||
	    (a->retry_ev = evtimer_new(base, retry_cb, a)) == NULL) {
		if (a)
			assoc_free(a);
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	a->p = *p;
	a->id = next_assoc_id++;
	a->discovery = strcmp(p->subnqn, NVMF_DISCOVERY_NQN) == 0;
	/* One lane a worker, as many as there are queues to spread. */
	a->nlanes = nw == 0 ? 1 : MINIMUM(nw, p->nr_io_queues);
	for (int i = 0; i < a->nlanes; i++) {
		if ((a->lanes[i] = host_lane_new(a, i, nw == 0 ? main_loop :
		    loop_worker((next_worker + i) % nw))) == NULL) {
			assoc_free(a);
			snprintf(err, errlen, "out of memory");
			return (NULL);
		}
		a->lanes_alive++;
	}
	next_worker += a->nlanes;
	a->state = AS_CONNECTING;
	snprintf(a->error, sizeof(a->error), "connecting");
	TAILQ_INSERT_TAIL(&host_assocs, a, entry);
	a->listed = true;
	nassocs++;
	a->lost_at = now_ns();	/* ctrl-loss-tmo bounds the first try too */
	a->step = ST_ADMIN;
	step_run(a);
	return (a);
}

/*
 * Free it: exports and queues now, then the lanes, which fail what they
 * hold on their loops; the last one gone frees a (it stays listed until
 * then, as deleting).
 */
static void
assoc_free(struct host_assoc *a)
{
	close_queues(a);
	host_follow_cancel(a);
	for (int i = 0; i < a->nns; i++)
		if (a->ns[i].exp != NULL) {
			nbd_export_remove(a->ns[i].exp);
			a->ns[i].exp = NULL;
		}
	if (a->step_ev)
		event_free(a->step_ev);
	if (a->step_to_ev)
		event_free(a->step_to_ev);
	if (a->ka_ev)
		event_free(a->ka_ev);
	if (a->lost_ev)
		event_free(a->lost_ev);
	if (a->handoff_ev)
		event_free(a->handoff_ev);
	if (a->retry_ev)
		event_free(a->retry_ev);
	free(a->page);
	free(a->nslist);
	a->page = NULL;
	a->nslist = NULL;
	a->step_ev = a->step_to_ev = a->ka_ev = a->lost_ev = a->retry_ev =
	    a->handoff_ev = NULL;
	if (a->lanes_alive == 0) {
		assoc_free_final(a);
		return;
	}
	for (int i = 0; i < a->nlanes; i++)
		if (a->lanes[i] != NULL)
			host_lane_release(a->lanes[i]);
}

void
host_assoc_delete(struct host_assoc *a)
{
	enum assoc_state was = a->state;

	log_info("host %d: disconnecting from %s", a->id, a->p.subnqn);
	a->state = AS_DELETING;
	/* Exports go first: their clients' I/O fails now. */
	for (int i = 0; i < a->nns; i++)
		if (a->ns[i].exp != NULL) {
			nbd_export_remove(a->ns[i].exp);
			a->ns[i].exp = NULL;
		}
	evtimer_del(a->retry_ev);
	evtimer_del(a->ka_ev);
	evtimer_del(a->step_ev);
	if (was == AS_LIVE && !a->step_busy && a->admin != NULL &&
	    !a->admin->dead) {
		/* Orderly: CC.SHN, then wait for CSTS.SHST. */
		a->step = ST_SHN;
		step_run(a);
		return;
	}
	event_active(a->lost_ev, 0, 0);
}

void
host_assocs_delete_all(void)
{
	struct host_assoc *a, *next;

	TAILQ_FOREACH_SAFE(a, &host_assocs, entry, next)
		if (a->state != AS_DELETING)
			host_assoc_delete(a);
}

bool
host_assoc_matches(const struct host_assoc *a, const char *key)
{
	char *end;
	long id = strtol(key, &end, 10);

	if (a->state == AS_DELETING)
		return (false);
	return ((*end == '\0' && a->id == id) || strcmp(a->p.subnqn, key) == 0);
}

struct host_assoc *
host_assoc_find(const char *key)
{
	struct host_assoc *a;

	TAILQ_FOREACH(a, &host_assocs, entry)
		if (host_assoc_matches(a, key))
			return (a);
	return (NULL);
}

/* At start: the NBD listeners, then the connections the file declares. */
int
host_start(struct config *cf, const char *ctl_path, char *err, size_t errlen)
{
	char def[PATH_MAX];
	struct nbd_settings st = {
		.socket = cf->nbd_socket, .address = cf->nbd_address,
		.port = cf->nbd_port, .tls = cf->nbd_tls,
		.tls_psk_file = cf->nbd_tls_psk_file,
	};
	char e[256];

	if (st.socket == NULL && st.address == NULL) {
		/* Not asked for: NAME-nbd.sock beside the control socket
		 * NAME.sock, if it can be had. */
		size_t n = strlen(ctl_path);

		if (n > 5 && strcmp(ctl_path + n - 5, ".sock") == 0)
			n -= 5;
		snprintf(def, sizeof(def), "%.*s-nbd.sock", (int)n, ctl_path);
		st.socket = def;
		if (nbd_server_start(&st, e, sizeof(e)) != 0)
			log_warnx("%s; no NBD listener", e);
	} else if (nbd_server_start(&st, err, errlen) != 0)
		return (-1);
	for (size_t i = 0; i < cf->nhost_conns; i++)
		if (host_assoc_create(&cf->host_conns[i], e, sizeof(e)) == NULL)
			log_warnx("host connection %zu: %s", i, e);
	return (0);
}

/*
 * At exit, once the worker loops have stopped: whatever the orderly
 * shutdown did not finish, with messages run at once.
 */
void
host_stop(void)
{
	struct host_assoc *a, *next;

	host_direct = true;
	nbd_dev_stop();
	nbd_server_stop();
	TAILQ_FOREACH_SAFE(a, &host_assocs, entry, next) {
		/* Being freed: its lanes' messages will not run now, and
		 * it stays (listed) as it is. */
		if (a->state == AS_DELETING && a->step_ev == NULL)
			continue;
		a->state = AS_DELETING;
		assoc_free(a);
	}
	nbd_server_reap();
}
