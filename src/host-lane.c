/*
 * The data path of an association, on worker loops.  host.c brings an
 * association up on the main loop; each I/O queue it connects is then
 * handed to a lane, one per worker loop the association uses, and NBD
 * connections run on the loop of their lane.  A request thus goes from
 * the NBD socket to its NVMe/TCP queue and back on one thread, and the
 * lanes of different associations (or of one with several queues) run
 * in parallel.
 *
 * The main loop steers a lane with messages: a queue handed over, then
 * live; hold (the association is lost: close the queues, keep the I/O for
 * the next one); fail (past ctrl-loss-tmo: fail what waits and what
 * comes); release (the association is going).  A lane whose queue fails
 * says so with one message back.  The lane's fields are its loop's alone.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "nvmfd.h"
#include "host.h"

#define LANE_TICK_S	1	/* stuck commands, fast-io-fail */

bool host_direct;

void
host_post(struct loop *l, void (*fn)(void *), void *arg)
{
	if (host_direct)
		fn(arg);
	else
		loop_post(l, fn, arg);
}

struct lane_report {
	struct host_assoc *a;
	unsigned	gen;
	char		why[160];
};

static void lane_kick(struct host_lane *);

static void
report_msg(void *arg)
{
	struct lane_report *r = arg;

	host_lane_lost(r->a, r->gen, r->why);
	free(r);
}

static void lane_report(struct host_lane *, const char *, ...)
	    __printflike(2, 3);

/* Tell the main loop, once per live period, that a queue failed. */
static void
lane_report(struct host_lane *l, const char *fmt, ...)
{
	struct lane_report *r;
	va_list ap;

	if (l->reported || l->mode != LANE_LIVE)
		return;
	l->reported = true;
	if ((r = malloc(sizeof(*r))) == NULL) {
		/* Without the message the main loop would not know: the
		 * admin queue's keep-alive or a later kick finds it. */
		log_warnx("host lane: out of memory to report a lost queue");
		l->reported = false;
		return;
	}
	r->a = l->a;
	r->gen = l->gen;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	host_post(main_loop, report_msg, r);
}

static void
queue_failed(struct host_qpair *hq)
{
	struct host_lane *l = hq->user;

	lane_report(l, "I/O queue %u: %s", hq->qid, hq->error);
	lane_kick(l);
}

static void
close_queues(struct host_lane *l)
{
	for (int i = 0; i < l->nq; i++) {
		/* Failing what it carries: those go to held, or fail. */
		l->q[i]->on_fail = NULL;
		host_close(l->q[i]);
		l->q[i] = NULL;
	}
	l->nq = 0;
	l->next = 0;
}

static void
held_push(struct host_lane *l, struct host_io *io)
{
	TAILQ_INSERT_TAIL(&l->held, io, link);
	atomic_fetch_add(&l->nheld, 1);
}

static void
held_remove(struct host_lane *l, struct host_io *io)
{
	TAILQ_REMOVE(&l->held, io, link);
	atomic_fetch_sub(&l->nheld, 1);
}

/* ------------------------------------------------------------ data path */

static void
io_req_done(struct host_req *r, const struct nvme_cqe *cqe)
{
	struct host_io *io = r->arg;
	struct host_lane *l = io->lane;

	if (r->hq->dead && l->mode != LANE_FAIL) {
		lane_report(l, "I/O queue %u: %s", r->hq->qid, r->hq->error);
		/* The transport failed under it: hold it for the next
		 * association, unless it has outlived HOST_IO_RESETS of
		 * them (a command that no controller will ever answer). */
		if (++io->resets <= HOST_IO_RESETS) {
			io->held_since = now_ns();
			held_push(l, io);
			lane_kick(l);
			return;
		}
		log_peer_warnx("host %d: a command lost %d associations: "
		    "failed", l->a->id, HOST_IO_RESETS);
	}
	io->done(io, cqe->status >> 1);
	if (!TAILQ_EMPTY(&l->held))
		lane_kick(l);
}

static struct host_qpair *
pick_queue(struct host_lane *l)
{
	for (int k = 0; k < l->nq; k++) {
		struct host_qpair *hq = l->q[(l->next + k) % l->nq];

		if (!hq->dead && hq->outstanding < hq->depth) {
			l->next = (l->next + k + 1) % l->nq;
			return (hq);
		}
	}
	return (NULL);
}

static bool
try_submit(struct host_lane *l, struct host_io *io)
{
	struct host_qpair *hq = pick_queue(l);

	if (hq == NULL)
		return (false);
	io->req.done = io_req_done;
	io->req.arg = io;
	io->req.start_ns = now_ns();
	if (host_submit(hq, &io->req) != 0)
		return (false);
	/* Sent by the caller's host_lane_flush(), or else once this
	 * turn's callbacks are done: one write for all they queued. */
	lane_kick(l);
	return (true);
}

void
host_io_submit(struct host_lane *l, struct host_io *io)
{
	io->lane = l;
	io->resets = 0;
	if (l->mode == LANE_LIVE && TAILQ_EMPTY(&l->held) && try_submit(l, io))
		return;
	/* Held, or failed from the kick: done() never runs inside the
	 * submit. */
	io->held_since = now_ns();
	held_push(l, io);
	lane_kick(l);
}

void
host_lane_flush(struct host_lane *l)
{
	for (int i = 0; i < l->nq; i++)
		if (l->q[i]->tx_pending)
			host_flush(l->q[i]);
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct host_lane *l = arg;
	struct host_io *io;
	uint64_t fast = (uint64_t)l->fast_s * 1000000000ull;

	if (l->mode == LANE_HOLD && fast && l->lost_at &&
	    now_ns() - l->lost_at >= fast && !l->io_failing) {
		log_warnx("host %d: fast-io-fail timeout (%u s): failing I/O",
		    l->a->id, l->fast_s);
		l->io_failing = true;
	}
	while ((io = TAILQ_FIRST(&l->held)) != NULL) {
		if (l->mode == LANE_LIVE && l->nq > 0) {
			held_remove(l, io);
			if (!try_submit(l, io)) {
				TAILQ_INSERT_HEAD(&l->held, io, link);
				atomic_fetch_add(&l->nheld, 1);
				break;
			}
			continue;
		}
		if (l->mode != LANE_HOLD || l->io_failing) {
			/* Failing, or live with no queue here (the target
			 * granted fewer queues than there are lanes). */
			held_remove(l, io);
			io->done(io, HOST_ST_PATH_ERROR);
			continue;
		}
		break;
	}
	host_lane_flush(l);
}

static void
lane_kick(struct host_lane *l)
{
	event_active(l->kick_ev, 0, 0);
}

/*
 * Every second: a command stuck past HOST_CMD_TIMEOUT_S resets the
 * association; a queue that died idle is reported; fast-io-fail is judged.
 */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct host_lane *l = arg;
	uint64_t now = now_ns();

	for (int q = 0; q < l->nq && l->mode == LANE_LIVE; q++) {
		struct host_qpair *hq = l->q[q];

		if (hq->dead) {
			lane_report(l, "I/O queue %u: %s", hq->qid, hq->error);
			break;
		}
		for (uint16_t c = 0; c < hq->depth; c++)
			if (hq->reqs[c] != NULL && now - hq->reqs[c]->start_ns >
			    HOST_CMD_TIMEOUT_S * 1000000000ull) {
				lane_report(l, "I/O queue %u: command %u timed "
				    "out", hq->qid, c);
				break;
			}
	}
	if (!TAILQ_EMPTY(&l->held))
		lane_kick(l);
}

/* ------------------------------------------------------------ messages */

struct host_lane *
host_lane_new(struct host_assoc *a, int index, struct loop *loop)
{
	struct host_lane *l;
	struct timeval tv = { LANE_TICK_S, 0 };

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return (NULL);
	/* Made here, added here: the loop does not run them before the
	 * lane exists, and the lane never allocates. */
	if ((l->kick_ev = event_new(loop->base, -1, 0, kick_cb, l)) == NULL ||
	    (l->tick_ev = event_new(loop->base, -1, EV_PERSIST, tick_cb,
	    l)) == NULL) {
		if (l->kick_ev)
			event_free(l->kick_ev);
		free(l);
		return (NULL);
	}
	l->a = a;
	l->loop = loop;
	l->index = index;
	l->fast_s = a->p.fast_io_fail_tmo_s;
	l->mode = LANE_HOLD;
	TAILQ_INIT(&l->held);
	event_add(l->tick_ev, &tv);
	return (l);
}

static void
add_msg(void *arg)
{
	struct host_qpair *hq = arg;
	struct host_lane *l = hq->user;

	hq->on_fail = queue_failed;
	l->q[l->nq++] = hq;
	host_qpair_attach(hq, l->loop->base);
}

void
host_lane_add(struct host_lane *l, struct host_qpair *hq)
{
	host_qpair_detach(hq);
	hq->user = l;
	l->nq_main++;
	host_post(l->loop, add_msg, hq);
}

static void
live_msg(void *arg)
{
	struct host_lane *l = arg;

	l->mode = LANE_LIVE;
	l->gen = atomic_load(&l->live_gen);
	l->reported = false;
	l->io_failing = false;
	l->lost_at = 0;
	/* A queue that failed between the hand-over and now. */
	for (int i = 0; i < l->nq; i++)
		if (l->q[i]->dead)
			lane_report(l, "I/O queue %u: %s", l->q[i]->qid,
			    l->q[i]->error);
	lane_kick(l);
}

static void
hold_msg(void *arg)
{
	struct host_lane *l = arg;

	/* Held from now: the queues' commands come back here. */
	if (l->mode != LANE_HOLD)
		l->lost_at = now_ns();
	l->mode = LANE_HOLD;
	l->io_failing = false;
	close_queues(l);
	lane_kick(l);
}

static void
fail_msg(void *arg)
{
	struct host_lane *l = arg;

	l->mode = LANE_FAIL;
	close_queues(l);
	lane_kick(l);
}

void
host_lane_set(struct host_lane *l, enum lane_mode m)
{
	if (m == LANE_LIVE) {
		atomic_store(&l->live_gen, l->a->gen);
		host_post(l->loop, live_msg, l);
	} else
		host_post(l->loop, m == LANE_HOLD ? hold_msg : fail_msg, l);
}

static void
gone_msg(void *arg)
{
	struct host_lane *l = arg;
	struct host_assoc *a = l->a;

	free(l);
	host_lane_gone(a);
}

static void
release_msg(void *arg)
{
	struct host_lane *l = arg;
	struct host_io *io;

	l->mode = LANE_FAIL;
	close_queues(l);
	while ((io = TAILQ_FIRST(&l->held)) != NULL) {
		held_remove(l, io);
		io->done(io, HOST_ST_PATH_ERROR);
	}
	event_free(l->kick_ev);
	event_free(l->tick_ev);
	host_post(main_loop, gone_msg, l);
}

void
host_lane_release(struct host_lane *l)
{
	host_post(l->loop, release_msg, l);
}
