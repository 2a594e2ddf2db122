/*
 * Per-loop asynchronous file I/O.
 *
 * io_uring when the kernel lets us have it: submissions become SQEs that are
 * pushed to the kernel in one io_uring_enter per loop turn (io_engine_flush),
 * and completions wake the loop through an eventfd.  Otherwise, and for the
 * few operations io_uring cannot do here, a small pool of threads runs the
 * blocking system calls and hands the results back to the loop through a
 * locked list and another eventfd.  Either way done() runs on the loop.
 *
 * Setting NVMFD_IO_ENGINE=threads in the environment forces the thread pool
 * (for tests, or to sidestep a misbehaving io_uring).
 *
 * In a fault-injection build, nvmfctl inject-error --at engine makes reads
 * and writes fail here, as the kernel's completion (either engine's): the
 * I/O is done, then its result replaced by the errno, or by half of what
 * was transferred and then end of file (a short transfer), so that the
 * engine's own handling of those and the status mapping above it run as
 * they would for a failing disk.
 */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <linux/falloc.h>
#include <linux/fs.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#include "nvmfd.h"

#define URING_DEPTH	512	/* SQ entries, and the in-flight limit */
#define CQE_BATCH	64
#define POOL_THREADS	4
#define ZERO_BUF_LEN	(64 * 1024)
#define ZERO_IOVS	16

/* nvmf_io.eng.flags */
#define ENG_ZERO_RANGE_FAILED	0x1	/* io_uring already tried it */
#define ENG_FAULT		0x2	/* report eng.fault, or a short one */
#define ENG_FAULT_EOF		0x4	/* short transfer done: end of file */

STAILQ_HEAD(io_list, nvmf_io);

struct io_pool {
	pthread_t	threads[POOL_THREADS];
	int		nthreads;
	bool		started;

	/* shared with the threads, under mtx */
	pthread_mutex_t	mtx;
	pthread_cond_t	cond;
	struct io_list	jobs;
	bool		stop;

	/* results going back to the loop, under cmtx */
	pthread_mutex_t	cmtx;
	struct io_list	completed;
	int		efd;
	struct event	*ev;

	/* loop side only */
	struct io_list	pending;	/* queued until the next flush */
	unsigned	npending;
	unsigned	inflight;	/* queued, running or completed */
};

struct io_engine {
	struct loop	*loop;
	const char	*kind;
	struct event	*flush_ev;	/* flushes what a turn left queued */
	bool		flush_armed;
	struct io_pool	pool;
#ifdef HAVE_LIBURING
	bool		uring;
	bool		uring_no_fallocate;
	bool		uring_warned;
	struct io_uring	ring;
	int		uring_efd;
	struct event	*uring_ev;
	unsigned	depth;
	unsigned	inflight;	/* SQEs prepared, not yet reaped */
	struct io_list	overflow;	/* waiting for ring space */
#endif
};

static void pool_queue(struct io_engine *, struct nvmf_io *);

/* Make sure what is queued gets pushed once the current callback returns,
 * even if it does not end with loop_finish_turn(). */
static void
arm_flush(struct io_engine *e)
{
	if (!e->flush_armed) {
		e->flush_armed = true;
		event_active(e->flush_ev, EV_TIMEOUT, 0);
	}
}

/* ------------------------------------------------------------ iovec window */

static void
iov_restore(struct nvmf_io *io)
{
	for (int k = 1; k >= 0; k--) {
		if (io->eng.trim[k] >= 0)
			io->iov[io->eng.trim[k]] = io->eng.saved[k];
		io->eng.trim[k] = -1;
	}
}

/*
 * Make io->iov describe exactly the bytes [done, len) still to transfer,
 * trimming at most the first and last entries in place.  Returns the entry
 * count (0 when nothing is left) and the first entry in *out.
 */
static int
iov_window(struct nvmf_io *io, struct iovec **out)
{
	uint64_t skip = io->eng.done, left = io->len - io->eng.done;
	uint64_t avail;
	int i = 0, j;

	iov_restore(io);
	if (left == 0)
		return (0);
	while (i < io->iovcnt && skip >= io->iov[i].iov_len)
		skip -= io->iov[i++].iov_len;
	avail = io->iov[i].iov_len - skip;
	for (j = i; avail < left && j + 1 < io->iovcnt; )
		avail += io->iov[++j].iov_len;

	if (i == j) {
		if (skip != 0 || avail > left) {
			io->eng.trim[0] = i;
			io->eng.saved[0] = io->iov[i];
			io->iov[i].iov_base = (uint8_t *)io->iov[i].iov_base + skip;
			io->iov[i].iov_len = left;
		}
	} else {
		if (skip != 0) {
			io->eng.trim[0] = i;
			io->eng.saved[0] = io->iov[i];
			io->iov[i].iov_base = (uint8_t *)io->iov[i].iov_base + skip;
			io->iov[i].iov_len -= skip;
		}
		if (avail > left) {
			io->eng.trim[1] = j;
			io->eng.saved[1] = io->iov[j];
			io->iov[j].iov_len -= avail - left;
		}
	}
	*out = io->iov + i;
	return (j - i + 1);
}

static bool
iov_covers(const struct nvmf_io *io)
{
	uint64_t total = 0;

	for (int i = 0; i < io->iovcnt && total < io->len; i++)
		total += io->iov[i].iov_len;
	return (total >= io->len);
}

/*
 * The result the kernel gave a read or write (res >= 0 bytes), or the
 * injected one instead: -errno; half of res, then 0 bytes (end of file)
 * the next time, which the engine turns into EIO.  Real errors (res < 0)
 * pass, and the injection waits for the retry.
 */
static ssize_t
fault_result(struct nvmf_io *io, ssize_t res)
{
#ifdef NVMFD_FAULT_INJECTION
	if (res < 0 || !(io->eng.flags & (ENG_FAULT | ENG_FAULT_EOF)))
		return (res);
	if (io->eng.flags & ENG_FAULT_EOF) {
		io->eng.flags &= ~ENG_FAULT_EOF;
		return (0);
	}
	io->eng.flags &= ~ENG_FAULT;
	if (io->eng.fault != 0)
		return (-io->eng.fault);
	io->eng.flags |= ENG_FAULT_EOF;
	return (res / 2);
#else
	(void)io;
	return (res);
#endif
}

/* Errors meaning "this file or kernel cannot do that operation". */
static bool
unsupported(int err)
{
	return (err == -EOPNOTSUPP || err == -EINVAL || err == -ENOSYS ||
	    err == -ENOTTY || err == -ENODEV);
}

static bool
is_block(const struct nvmf_io *io)
{
	return (io->ns != NULL && io->ns->type == BACKEND_BLOCK);
}

/* ---------------------------------------------------- blocking operations */

static int
do_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
	int r;

	while ((r = fallocate(fd, mode, (off_t)off, (off_t)len)) == -1 &&
	    errno == EINTR)
		;
	return (r == -1 ? -errno : 0);
}

/* The last resort for Write Zeroes: write them. */
static int
write_zeros(int fd, uint64_t off, uint64_t len)
{
	/* Page aligned so that O_DIRECT accepts it; never written to. */
	static uint8_t zeros[ZERO_BUF_LEN] __attribute__((aligned(4096)));
	struct iovec iov[ZERO_IOVS];

	while (len > 0) {
		uint64_t n = MINIMUM(len, (uint64_t)ZERO_BUF_LEN * ZERO_IOVS);
		int cnt = 0;
		ssize_t w;

		for (uint64_t k = 0; k < n; k += ZERO_BUF_LEN) {
			iov[cnt].iov_base = zeros;
			iov[cnt++].iov_len = MINIMUM(n - k, ZERO_BUF_LEN);
		}
		if ((w = pwritev(fd, iov, cnt, (off_t)off)) == -1) {
			if (errno == EINTR)
				continue;
			return (-errno);
		}
		if (w == 0)
			return (-EIO);
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return (0);
}

static int
blocking_zero(struct nvmf_io *io)
{
	int fd = io->eng.fd, r;

	if (!(io->eng.flags & ENG_ZERO_RANGE_FAILED)) {
		r = do_fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		    io->offset, io->len);
		if (r == 0 || !unsupported(r))
			return (r);
	}
	if (is_block(io)) {
		uint64_t range[2] = { io->offset, io->len };

		if (ioctl(fd, BLKZEROOUT, range) == 0)
			return (0);
		r = -errno;
	} else {
		/* A hole reads back as zeros just as well. */
		r = do_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		    io->offset, io->len);
		if (r == 0)
			return (0);
	}
	if (!unsupported(r))
		return (r);
	return (write_zeros(fd, io->offset, io->len));
}

static int
blocking_rw(struct nvmf_io *io)
{
	bool dsync = io->op == IO_WRITE && io->fua;
	struct iovec *iov;
	int cnt, r = 0;

	while ((cnt = iov_window(io, &iov)) > 0) {
		off_t off = (off_t)(io->offset + io->eng.done);
		ssize_t n;

		if (io->op == IO_READ)
			n = preadv(io->eng.fd, iov, cnt, off);
		else if (dsync) {
			n = pwritev2(io->eng.fd, iov, cnt, off, RWF_DSYNC);
			if (n == -1 && errno == EOPNOTSUPP) {
				/* Old kernel: write, then sync the lot. */
				dsync = false;
				continue;
			}
		} else
			n = pwritev(io->eng.fd, iov, cnt, off);
		if (n >= 0 && (n = fault_result(io, n)) < 0) {
			r = (int)n;
			break;
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0) {
			r = -EIO;	/* end of file or device */
			break;
		}
		io->eng.done += (uint64_t)n;
	}
	iov_restore(io);
	if (r == 0 && io->op == IO_WRITE && io->fua && !dsync &&
	    fdatasync(io->eng.fd) == -1)
		r = -errno;
	return (r);
}

static int
blocking_exec(struct nvmf_io *io)
{
	int r;

	if (io->eng.call != NULL)
		return (io->eng.call(io));
	switch (io->op) {
	case IO_READ:
	case IO_WRITE:
		return (blocking_rw(io));
	case IO_FLUSH:
		while ((r = fdatasync(io->eng.fd)) == -1 && errno == EINTR)
			;
		return (r == -1 ? -errno : 0);
	case IO_WRITE_ZEROES:
		return (blocking_zero(io));
	case IO_DISCARD:
		r = do_fallocate(io->eng.fd,
		    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		    io->offset, io->len);
		/* Deallocation is advisory: not doing it is fine. */
		return (unsupported(r) ? 0 : r);
	}
	return (-EOPNOTSUPP);
}

/* ------------------------------------------------------------- thread pool */

/* Thread side: hand a result to the loop; wake it only for the first one,
 * the loop takes the whole list at once. */
static void
pool_post(struct io_pool *p, struct nvmf_io *io)
{
	uint64_t one = 1;
	bool wake;

	pthread_mutex_lock(&p->cmtx);
	wake = STAILQ_EMPTY(&p->completed);
	STAILQ_INSERT_TAIL(&p->completed, io, eng.link);
	pthread_mutex_unlock(&p->cmtx);
	if (wake && write(p->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("io pool: eventfd write");
}

static void *
pool_main(void *arg)
{
	struct io_pool *p = arg;
	struct nvmf_io *io;

	pthread_mutex_lock(&p->mtx);
	for (;;) {
		while (STAILQ_EMPTY(&p->jobs) && !p->stop)
			pthread_cond_wait(&p->cond, &p->mtx);
		/* On stop, finish what was handed over: buffers are in use. */
		if ((io = STAILQ_FIRST(&p->jobs)) == NULL)
			break;
		STAILQ_REMOVE_HEAD(&p->jobs, eng.link);
		pthread_mutex_unlock(&p->mtx);
		io->eng.res = blocking_exec(io);
		pool_post(p, io);
		pthread_mutex_lock(&p->mtx);
	}
	pthread_mutex_unlock(&p->mtx);
	return (NULL);
}

static void
pool_start(struct io_pool *p)
{
	sigset_t all, old;

	p->started = true;
	/* Signals belong to the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < POOL_THREADS; i++) {
		int rc = pthread_create(&p->threads[p->nthreads], NULL,
		    pool_main, p);

		if (rc != 0) {
			errno = rc;
			log_warn("io pool: pthread_create");
			break;
		}
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Loop side: results are in, call done() for each. */
static void
pool_cb(evutil_socket_t fd, short what, void *arg)
{
	struct io_engine *e = arg;
	struct io_pool *p = &e->pool;
	struct io_list batch = STAILQ_HEAD_INITIALIZER(batch);
	struct nvmf_io *io;
	uint64_t v;

	(void)fd;
	(void)what;
	if (read(p->efd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_warn("io pool: eventfd read");
	pthread_mutex_lock(&p->cmtx);
	STAILQ_CONCAT(&batch, &p->completed);
	pthread_mutex_unlock(&p->cmtx);
	loop_tick(e->loop);
	while ((io = STAILQ_FIRST(&batch)) != NULL) {
		STAILQ_REMOVE_HEAD(&batch, eng.link);
		p->inflight--;
		io->done(io, io->eng.res);
	}
	loop_finish_turn(e->loop);
}

/* Hand the queued jobs to the threads in one lock round trip. */
static void
pool_flush(struct io_engine *e)
{
	struct io_pool *p = &e->pool;
	struct nvmf_io *io;

	if (!p->started)
		pool_start(p);
	if (p->nthreads == 0) {
		/* No thread to run them: fail them, from the loop. */
		while ((io = STAILQ_FIRST(&p->pending)) != NULL) {
			STAILQ_REMOVE_HEAD(&p->pending, eng.link);
			io->eng.res = -EAGAIN;
			pool_post(p, io);
		}
	} else {
		pthread_mutex_lock(&p->mtx);
		STAILQ_CONCAT(&p->jobs, &p->pending);
		if (p->npending == 1)
			pthread_cond_signal(&p->cond);
		else
			pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->mtx);
	}
	p->npending = 0;
}

static int
pool_init(struct io_engine *e)
{
	struct io_pool *p = &e->pool;

	pthread_mutex_init(&p->mtx, NULL);
	pthread_mutex_init(&p->cmtx, NULL);
	pthread_cond_init(&p->cond, NULL);
	STAILQ_INIT(&p->jobs);
	STAILQ_INIT(&p->completed);
	STAILQ_INIT(&p->pending);
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		log_warn("io pool: eventfd");
		return (-1);
	}
	p->ev = event_new(e->loop->base, p->efd, EV_READ | EV_PERSIST, pool_cb,
	    e);
	if (p->ev == NULL || event_add(p->ev, NULL) == -1) {
		log_warnx("io pool: cannot add the completion event");
		return (-1);
	}
	return (0);
}

static void
pool_destroy(struct io_pool *p)
{
	if (p->started) {
		pthread_mutex_lock(&p->mtx);
		p->stop = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->mtx);
		for (int i = 0; i < p->nthreads; i++)
			pthread_join(p->threads[i], NULL);
	}
	if (p->inflight > 0)
		log_warnx("io pool: %u I/Os dropped at shutdown", p->inflight);
	if (p->ev != NULL)
		event_free(p->ev);
	if (p->efd != -1)
		close(p->efd);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->cmtx);
	pthread_mutex_destroy(&p->mtx);
}

/* ----------------------------------------------------------------- io_uring */

#ifdef HAVE_LIBURING
static void uring_queue(struct io_engine *, struct nvmf_io *);

static void
uring_submit(struct io_engine *e)
{
	int r = io_uring_submit(&e->ring);

	if (r < 0 && io_uring_sq_ready(&e->ring) > 0) {
		/* Kernel short of memory: the SQEs stay queued, retry soon. */
		struct timeval tv = { 0, 1000 };

		if (!e->uring_warned)
			log_warnx("io_uring submit: %s; retrying",
			    strerror(-r));
		e->uring_warned = true;
		event_add(e->flush_ev, &tv);
	}
}

/* Turn an I/O into an SQE; false if the ring has no room. */
static bool
uring_prep(struct io_engine *e, struct nvmf_io *io)
{
	struct io_uring_sqe *sqe;
	struct iovec *iov;
	int cnt, fd = io->eng.fd;

	if (e->inflight >= e->depth)
		return (false);
	if ((sqe = io_uring_get_sqe(&e->ring)) == NULL) {
		uring_submit(e);
		if ((sqe = io_uring_get_sqe(&e->ring)) == NULL)
			return (false);
	}
	switch (io->op) {
	case IO_READ:
		cnt = iov_window(io, &iov);
		io_uring_prep_readv(sqe, fd, iov, (unsigned)cnt,
		    io->offset + io->eng.done);
		break;
	case IO_WRITE:
		cnt = iov_window(io, &iov);
		io_uring_prep_writev(sqe, fd, iov, (unsigned)cnt,
		    io->offset + io->eng.done);
		if (io->fua)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case IO_FLUSH:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	case IO_WRITE_ZEROES:
		io_uring_prep_fallocate(sqe, fd,
		    FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		    io->offset, io->len);
		break;
	case IO_DISCARD:
		io_uring_prep_fallocate(sqe, fd,
		    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		    io->offset, io->len);
		break;
	}
	io_uring_sqe_set_data(sqe, io);
	e->inflight++;
	arm_flush(e);
	return (true);
}

static void
uring_queue(struct io_engine *e, struct nvmf_io *io)
{
	/* Keep the order: nothing overtakes what already waits. */
	if (!STAILQ_EMPTY(&e->overflow) || !uring_prep(e, io))
		STAILQ_INSERT_TAIL(&e->overflow, io, eng.link);
}

static void
uring_complete(struct io_engine *e, struct nvmf_io *io, int res)
{
	e->inflight--;
	switch (io->op) {
	case IO_READ:
	case IO_WRITE:
		res = (int)fault_result(io, res);
		if (res == -EINTR || res == -EAGAIN)
			res = 0;	/* try again */
		else if (res == 0)
			res = -EIO;	/* end of file or device */
		if (res < 0)
			break;
		/* Short transfer: go on with the rest. */
		io->eng.done += (uint64_t)res;
		if (io->eng.done < io->len) {
			uring_queue(e, io);
			return;
		}
		res = 0;
		break;
	case IO_WRITE_ZEROES:
		if (unsupported(res)) {
			/* The slower ways live in the thread pool. */
			io->eng.flags |= ENG_ZERO_RANGE_FAILED;
			pool_queue(e, io);
			return;
		}
		break;
	case IO_DISCARD:
		if (unsupported(res))
			res = 0;
		break;
	case IO_FLUSH:
		break;
	}
	iov_restore(io);
	io->done(io, res);
}

/* Move waiting I/Os into the ring while it has room. */
static void
uring_drain(struct io_engine *e)
{
	struct nvmf_io *io;

	while ((io = STAILQ_FIRST(&e->overflow)) != NULL && uring_prep(e, io))
		STAILQ_REMOVE_HEAD(&e->overflow, eng.link);
}

static void
uring_reap(struct io_engine *e)
{
	struct io_uring_cqe *cqes[CQE_BATCH];
	struct nvmf_io *ios[CQE_BATCH];
	int res[CQE_BATCH];
	unsigned n;

	/* Copy out and release the CQEs before done() can submit more. */
	while ((n = io_uring_peek_batch_cqe(&e->ring, cqes, CQE_BATCH)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			ios[i] = io_uring_cqe_get_data(cqes[i]);
			res[i] = cqes[i]->res;
		}
		io_uring_cq_advance(&e->ring, n);
		for (unsigned i = 0; i < n; i++)
			uring_complete(e, ios[i], res[i]);
	}
	/* The waiting I/Os move into the freed room in io_engine_flush(),
	 * at the end of this turn. */
}

static void
uring_cb(evutil_socket_t fd, short what, void *arg)
{
	struct io_engine *e = arg;
	uint64_t v;

	(void)fd;
	(void)what;
	/* Reset the counter first: a CQE posted after it wakes us again. */
	if (read(e->uring_efd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_warn("io_uring: eventfd read");
	loop_tick(e->loop);
	uring_reap(e);
	loop_finish_turn(e->loop);
}

static bool
uring_init(struct io_engine *e, const char **why)
{
	struct io_uring_probe *probe;
	int r;

	if ((r = io_uring_queue_init(URING_DEPTH, &e->ring, 0)) < 0) {
		*why = strerror(-r);
		return (false);
	}
	/* Kernels before 5.6 have no probe, and no fallocate either. */
	if ((probe = io_uring_get_probe_ring(&e->ring)) != NULL) {
		if (!io_uring_opcode_supported(probe, IORING_OP_READV) ||
		    !io_uring_opcode_supported(probe, IORING_OP_WRITEV) ||
		    !io_uring_opcode_supported(probe, IORING_OP_FSYNC)) {
			io_uring_free_probe(probe);
			*why = "no readv, writev or fsync";
			goto fail;
		}
		e->uring_no_fallocate =
		    !io_uring_opcode_supported(probe, IORING_OP_FALLOCATE);
		io_uring_free_probe(probe);
	} else
		e->uring_no_fallocate = true;

	if ((e->uring_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		*why = strerror(errno);
		goto fail;
	}
	if ((r = io_uring_register_eventfd(&e->ring, e->uring_efd)) < 0) {
		*why = strerror(-r);
		goto fail;
	}
	e->uring_ev = event_new(e->loop->base, e->uring_efd,
	    EV_READ | EV_PERSIST, uring_cb, e);
	if (e->uring_ev == NULL || event_add(e->uring_ev, NULL) == -1) {
		*why = "cannot add the completion event";
		goto fail;
	}
	e->depth = MINIMUM(URING_DEPTH, e->ring.sq.ring_entries);
	e->uring = true;
	e->kind = "io_uring";
	return (true);
fail:
	if (e->uring_ev != NULL)
		event_free(e->uring_ev);
	e->uring_ev = NULL;
	if (e->uring_efd != -1)
		close(e->uring_efd);
	e->uring_efd = -1;
	io_uring_queue_exit(&e->ring);
	return (false);
}

static void
uring_destroy(struct io_engine *e)
{
	struct io_uring_cqe *cqe;

	if (!e->uring)
		return;
	/* The kernel may still be using the buffers: wait for it, but do
	 * not call done() on a loop that is going away. */
	if (e->inflight > 0) {
		log_warnx("io_uring: waiting for %u I/Os at shutdown",
		    e->inflight);
		io_uring_submit(&e->ring);
		while (e->inflight > 0 && io_uring_wait_cqe(&e->ring, &cqe) == 0) {
			io_uring_cqe_seen(&e->ring, cqe);
			e->inflight--;
		}
	}
	event_free(e->uring_ev);
	io_uring_queue_exit(&e->ring);
	close(e->uring_efd);
}
#endif /* HAVE_LIBURING */

/* ------------------------------------------------------------------ engine */

static void
pool_queue(struct io_engine *e, struct nvmf_io *io)
{
	struct io_pool *p = &e->pool;

	STAILQ_INSERT_TAIL(&p->pending, io, eng.link);
	p->npending++;
	p->inflight++;
	arm_flush(e);
}

/* Runs after the callback that queued work (or to retry a submit). */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct io_engine *e = arg;

	(void)fd;
	(void)what;
	e->flush_armed = false;
	io_engine_flush(e);
}

struct io_engine *
io_engine_create(struct loop *l)
{
	static atomic_bool logged;
	struct io_engine *e;
	const char *want = getenv("NVMFD_IO_ENGINE");

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return (NULL);
	e->loop = l;
	e->kind = "threads";
	e->pool.efd = -1;
	if (pool_init(e) == -1)
		goto fail;
	if ((e->flush_ev = event_new(l->base, -1, 0, flush_cb, e)) == NULL)
		goto fail;
#ifdef HAVE_LIBURING
	e->uring_efd = -1;
	STAILQ_INIT(&e->overflow);
	if (want == NULL || strcmp(want, "threads") != 0) {
		const char *why = NULL;

		if (!uring_init(e, &why) && !atomic_exchange(&logged, true))
			log_info("io_uring unavailable (%s): file I/O uses "
			    "a thread pool", why);
	}
#else
	(void)want;
	(void)logged;
#endif
	return (e);
fail:
	io_engine_destroy(e);
	return (NULL);
}

void
io_engine_destroy(struct io_engine *e)
{
	if (e == NULL)
		return;
#ifdef HAVE_LIBURING
	uring_destroy(e);
#endif
	pool_destroy(&e->pool);
	if (e->flush_ev != NULL)
		event_free(e->flush_ev);
	free(e);
}

static bool
needs_pool(struct io_engine *e, const struct nvmf_io *io)
{
#ifdef HAVE_LIBURING
	if (!e->uring)
		return (true);
	return (e->uring_no_fallocate &&
	    (io->op == IO_WRITE_ZEROES || io->op == IO_DISCARD));
#else
	(void)e;
	(void)io;
	return (true);
#endif
}

static void
eng_reset(struct nvmf_io *io, int fd)
{
	io->eng.fd = fd;
	io->eng.done = 0;
	io->eng.res = 0;
	io->eng.flags = 0;
	io->eng.trim[0] = io->eng.trim[1] = -1;
	io->eng.call = NULL;
	io->eng.fault = 0;
}

void
io_engine_call(struct io_engine *e, struct nvmf_io *io,
    int (*fn)(struct nvmf_io *))
{
	eng_reset(io, -1);
	io->eng.call = fn;
	pool_queue(e, io);
}

void
io_engine_submit(struct io_engine *e, struct nvmf_io *io, int fd)
{
	eng_reset(io, fd);
#ifdef NVMFD_FAULT_INJECTION
	if ((io->op == IO_READ || io->op == IO_WRITE) && io->ns != NULL &&
	    fault_take(io->ns, io->op, FAULT_AT_ENGINE, &io->eng.fault))
		io->eng.flags |= ENG_FAULT;
#endif

	if ((io->op == IO_READ || io->op == IO_WRITE) &&
	    (io->len == 0 || !iov_covers(io))) {
		/* Nothing to do, or nowhere to put it: answer from the loop. */
		io->eng.res = io->len == 0 ? 0 : -EINVAL;
		e->pool.inflight++;
		pool_post(&e->pool, io);
		return;
	}
	if (io->op > IO_DISCARD) {
		io->eng.res = -EOPNOTSUPP;
		e->pool.inflight++;
		pool_post(&e->pool, io);
		return;
	}
	if (needs_pool(e, io)) {
		pool_queue(e, io);
		return;
	}
#ifdef HAVE_LIBURING
	uring_queue(e, io);
#endif
}

void
io_engine_flush(struct io_engine *e)
{
	if (e == NULL)
		return;
#ifdef HAVE_LIBURING
	if (e->uring) {
		uring_drain(e);
		if (io_uring_sq_ready(&e->ring) > 0)
			uring_submit(e);
	}
#endif
	if (e->pool.npending > 0)
		pool_flush(e);
}

const char *
io_engine_kind(struct io_engine *e)
{
	return (e->kind);
}
