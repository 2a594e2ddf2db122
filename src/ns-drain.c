/*
 * Waiting for the commands that started on a namespace before now: what
 * Preempt and Abort and a fused Compare and Write need before they act.
 *
 * Every command counts itself in one half of the namespace's epoch
 * (ns_hold).  A drain moves the epoch on (its own commands count in the new
 * half), lets every worker run one turn, so that a command that read the
 * old epoch has counted itself in by then, and waits, polling on the
 * caller's loop, until the old half is empty.  One drain at a time per
 * namespace; a later one waits its turn with its own commands set aside
 * (uncounted), or the two would wait for each other.  A drain gives up after 30 s (a
 * host that never sends a write's data) and says so in the log.
 */
#include "config.h"

#include <stdlib.h>

#include <event2/event.h>

#include "nvmfd.h"

#define DRAIN_POLL_US	1000
#define DRAIN_MAX_NS	(30ull * 1000000000)

struct ns_drain {
	struct namespace *ns;
	struct nvmf_cmd	*own[2];
	int		nown;
	void		(*done)(void *);
	void		*arg;
	struct event	*timer;
	atomic_int	turns;		/* workers yet to run a turn */
	unsigned	old;		/* epoch half to drain */
	bool		started;
	bool		aside;		/* own commands set aside */
	uint64_t	deadline;
};

static void
drain_turn_msg(void *arg)
{
	struct ns_drain *d = arg;

	atomic_fetch_sub(&d->turns, 1);
}

static void
drain_start(struct ns_drain *d)
{
	struct namespace *ns = d->ns;

	d->started = true;
	d->deadline = now_ns() + DRAIN_MAX_NS;	/* from its turn on */
	d->old = ns_epoch_next(ns);
	for (int i = 0; i < d->nown; i++) {
		ns_release(ns, d->own[i]->ns_epoch);
		d->own[i]->ns_epoch = ns_hold(ns);
	}
	atomic_init(&d->turns, loops_count());
	for (int i = 0; i < loops_count(); i++)
		loop_post(loop_worker(i), drain_turn_msg, d);
}

static void
drain_poll(evutil_socket_t fd, short what, void *arg)
{
	struct ns_drain *d = arg;
	struct namespace *ns = d->ns;
	struct timeval tv = { 0, DRAIN_POLL_US };
	bool idle = false;
	unsigned left;

	if (!d->started &&
	    atomic_compare_exchange_strong(&ns->drain_busy, &idle, true)) {
		for (int i = 0; d->aside && i < d->nown; i++)
			ns_take_back(d->own[i]);
		drain_start(d);
	} else if (!d->started && !d->aside) {
		for (int i = 0; i < d->nown; i++)
			ns_set_aside(d->own[i]);
		d->aside = true;
	}
	if (!d->started || atomic_load(&d->turns) > 0 ||
	    ((left = ns_epoch_count(ns, d->old)) > 0 &&
	    now_ns() < d->deadline)) {
		evtimer_add(d->timer, &tv);
		return;
	}
	if (left > 0)
		log_warnx("namespace %u: %u earlier command(s) still running "
		    "after %llu s; going on", ns->nsid, left,
		    DRAIN_MAX_NS / 1000000000);
	atomic_store(&ns->drain_busy, false);
	event_free(d->timer);
	d->done(d->arg);
	free(d);
	loop_finish_turn(cur_loop);
}

void
ns_drain(struct namespace *ns, struct nvmf_cmd **own, int nown,
    void (*done)(void *), void *arg)
{
	struct ns_drain *d;

	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->timer = evtimer_new(cur_loop->base, drain_poll, d)) == NULL) {
		free(d);
		log_warnx("namespace %u: out of memory: going on without "
		    "waiting for earlier commands", ns->nsid);
		done(arg);
		return;
	}
	d->ns = ns;
	for (int i = 0; i < nown && i < (int)nitems(d->own); i++)
		d->own[d->nown++] = own[i];
	d->done = done;
	d->arg = arg;
	drain_poll(-1, 0, d);
}
