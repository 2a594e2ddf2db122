/*
 * Event loops: the main loop and one worker loop per thread.  Objects are
 * owned by one loop; work crosses threads only as messages (loop_post), so
 * the data path never takes a lock.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "nvmfd.h"

struct loop_msg {
	STAILQ_ENTRY(loop_msg) entry;
	void		(*fn)(void *);
	void		*arg;
};

/*
 * Messages must not be lost (a queue pair handed over, a connection gone):
 * when malloc fails, one comes from a reserve kept for that.  A message
 * from it goes back after it ran.
 */
#define LOOP_MSG_RESERVE	64
static struct loop_msg reserve[LOOP_MSG_RESERVE];
static struct loop_msg *reserve_free[LOOP_MSG_RESERVE];
static int nreserve_free = -1;		/* -1: not filled yet */
static pthread_mutex_t reserve_mtx = PTHREAD_MUTEX_INITIALIZER;

struct loop *main_loop;
__thread struct loop *cur_loop;
static struct loop **workers;
static int nworkers;

static struct loop_msg *
msg_alloc(void)
{
	struct loop_msg *m;

	if ((m = malloc(sizeof(*m))) != NULL)
		return (m);
	pthread_mutex_lock(&reserve_mtx);
	if (nreserve_free < 0)
		for (nreserve_free = 0; nreserve_free < LOOP_MSG_RESERVE;
		    nreserve_free++)
			reserve_free[nreserve_free] = &reserve[nreserve_free];
	if (nreserve_free > 0)
		m = reserve_free[--nreserve_free];
	pthread_mutex_unlock(&reserve_mtx);
	return (m);
}

static void
msg_free(struct loop_msg *m)
{
	uintptr_t at = (uintptr_t)m, lo = (uintptr_t)reserve;

	if (at < lo || at >= lo + sizeof(reserve)) {
		free(m);
		return;
	}
	pthread_mutex_lock(&reserve_mtx);
	reserve_free[nreserve_free++] = m;
	pthread_mutex_unlock(&reserve_mtx);
}

static void
loop_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct loop *l = arg;
	STAILQ_HEAD(, loop_msg) batch = STAILQ_HEAD_INITIALIZER(batch);
	struct loop_msg *m;

	pthread_mutex_lock(&l->mtx);
	STAILQ_CONCAT(&batch, &l->inbox);
	pthread_mutex_unlock(&l->mtx);
	while ((m = STAILQ_FIRST(&batch)) != NULL) {
		STAILQ_REMOVE_HEAD(&batch, entry);
		m->fn(m->arg);
		msg_free(m);
	}
	loop_finish_turn(l);
}

static struct loop *
loop_create(int index, size_t max_io)
{
	struct loop *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return (NULL);
	l->index = index;
	pthread_mutex_init(&l->mtx, NULL);
	STAILQ_INIT(&l->inbox);
	TAILQ_INIT(&l->dirty);
	if ((l->base = event_base_new()) == NULL)
		goto fail;
	if ((l->wake = event_new(l->base, -1, 0, loop_wake_cb, l)) == NULL)
		goto fail;
	if ((l->pool = bufpool_create(max_io)) == NULL)
		goto fail;
	if ((l->engine = io_engine_create(l)) == NULL)
		goto fail;
	return (l);
fail:
	if (l->pool)
		bufpool_destroy(l->pool);
	if (l->wake)
		event_free(l->wake);
	if (l->base)
		event_base_free(l->base);
	free(l);
	return (NULL);
}

int
loops_init(int n, size_t max_io)
{
	if (evthread_use_pthreads() != 0) {
		log_warnx("libevent has no pthreads support");
		return (-1);
	}
	if ((main_loop = loop_create(-1, max_io)) == NULL)
		return (-1);
	cur_loop = main_loop;
	if ((workers = calloc(n, sizeof(*workers))) == NULL)
		return (-1);
	for (nworkers = 0; nworkers < n; nworkers++)
		if ((workers[nworkers] = loop_create(nworkers, max_io)) == NULL)
			return (-1);
	log_debug("%d worker loops, file engine %s", n,
	    io_engine_kind(main_loop->engine));
	return (0);
}

uint64_t loop_poll_ns;

/*
 * Adaptive polling: after a turn that did work, keep asking the kernel
 * for events without sleeping for up to loop_poll_ns, so the next command
 * of a lightly loaded queue does not pay for waking this thread.  An idle
 * worker sleeps as usual once the window has passed.
 */
static void
worker_poll(struct loop *l)
{
	uint64_t last = now_ns(), seen = l->turns;

	/* loop_exit_msg() breaks the loop from inside a turn. */
	do {
		if (l->turns != seen) {
			seen = l->turns;
			last = l->now;
		} else if (now_ns() - last > loop_poll_ns) {
			event_base_loop(l->base, EVLOOP_ONCE);	/* sleep */
			seen = l->turns;
			last = now_ns();
			continue;
		}
		event_base_loop(l->base, EVLOOP_NONBLOCK);
	} while (!event_base_got_break(l->base));
}

static void *
worker_main(void *arg)
{
	struct loop *l = arg;

	cur_loop = l;
	if (loop_poll_ns > 0)
		worker_poll(l);
	else
		event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return (NULL);
}

void
loops_start(void)
{
	for (int i = 0; i < nworkers; i++) {
		int rc = pthread_create(&workers[i]->thread, NULL, worker_main,
		    workers[i]);

		if (rc != 0) {
			errno = rc;
			fatal("pthread_create");
		}
	}
}

static void
loop_exit_msg(void *arg)
{
	struct loop *l = arg;

	event_base_loopbreak(l->base);
}

void
loops_stop(void)
{
	for (int i = 0; i < nworkers; i++) {
		loop_post(workers[i], loop_exit_msg, workers[i]);
		pthread_join(workers[i]->thread, NULL);
	}
}

int
loops_count(void)
{
	return (nworkers);
}

struct loop *
loop_worker(int i)
{
	return (workers[i]);
}

/* Least-loaded worker: the one with the fewest queue pairs right now. */
struct loop *
loop_pick_worker(void)
{
	struct loop *best = NULL;
	unsigned bestn = 0;

	for (int i = 0; i < nworkers; i++) {
		unsigned n = atomic_load(&workers[i]->nqpairs);

		if (best == NULL || n < bestn) {
			best = workers[i];
			bestn = n;
		}
	}
	return (best ? best : main_loop);
}

uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

void
loop_post(struct loop *l, void (*fn)(void *), void *arg)
{
	struct loop_msg *m;

	/* Control-plane only: the reserve makes up for a failing malloc, and
	 * only when it is used up too is there no way on. */
	if ((m = msg_alloc()) == NULL)
		fatal("loop_post");
	m->fn = fn;
	m->arg = arg;
	pthread_mutex_lock(&l->mtx);
	STAILQ_INSERT_TAIL(&l->inbox, m, entry);
	pthread_mutex_unlock(&l->mtx);
	event_active(l->wake, EV_READ, 0);
}

/*
 * One clock read per loop turn, not two per command: command latencies are
 * measured at the granularity of the turns that received and completed them.
 */
void
loop_tick(struct loop *l)
{
	l->now = now_ns();
	l->turns++;
}

/* End of a callback: push queued disk I/O, then write out every queue pair
 * that produced output, one writev each. */
void
loop_finish_turn(struct loop *l)
{
	struct qpair *qp;

	io_engine_flush(l->engine);
	while ((qp = TAILQ_FIRST(&l->dirty)) != NULL) {
		TAILQ_REMOVE(&l->dirty, qp, dirty_link);
		qp->on_dirty = false;
		qpair_flush(qp);
	}
}
