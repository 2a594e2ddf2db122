/*
 * The atomic write unit nvmfd advertises (AWUN and AWUPF 0, 0's based: one
 * logical block) made true: a Read, Write or Write Zeroes of one block
 * never sees, nor leaves, a block that is part one write and part another.
 * Larger commands are exempt, as the spec allows, and pay nothing.
 *
 * Each namespace has a table of stripe words, indexed by LBA, used as
 * reader-writer locks; a command of one block takes exactly one (with a
 * larger unit it could straddle two: see ATOMIC_BLOCKS).  A command that
 * finds its stripe taken is parked (ns_park, the mechanism fused.c holds
 * writes back with) and runs again on its own loop when the holder lets
 * go: the event loops never wait for one another.
 *
 * What holds a stripe, and for how long:
 * - a fused Compare and Write of one block, exclusively, from before its
 *   compare until its write is done (fused.c);
 * - on files and devices, a one-block Read, Write or Write Zeroes while it
 *   is in the kernel (the page cache promises nothing between concurrent
 *   pread and pwrite);
 * - on RAM, a one-block write while it copies its data in (from the
 *   capsule, or from a buffer once all of it arrived, never as it
 *   arrives), and a one-block read from its completion until its data has
 *   gone into the socket (tcp.c lets go at once, with a copy, of any such
 *   read the socket has no room for): reads stay zero-copy.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"

#define ATOMIC_STRIPES	1024		/* a power of two; 4 KiB a namespace */
#define ATOMIC_BLOCKS	1		/* AWUN + 1; one stripe per command */

/* The stripe word */
#define ST_WRITER	(1u << 31)
#define ST_WAITERS	(1u << 30)	/* someone is parked on it */
#define ST_READERS	(ST_WAITERS - 1)

struct ns_atomic {
	_Atomic uint32_t word[ATOMIC_STRIPES];
	pthread_mutex_t	mtx;
	TAILQ_HEAD(, nvmf_cmd) parked;
};

int
atomic_attach(struct namespace *ns)
{
	struct ns_atomic *a;

	if (ns->atomic != NULL)
		return (0);
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return (-1);
	pthread_mutex_init(&a->mtx, NULL);
	TAILQ_INIT(&a->parked);
	ns->atomic = a;
	return (0);
}

void
atomic_detach(struct namespace *ns)
{
	if (ns->atomic == NULL)
		return;
	pthread_mutex_destroy(&ns->atomic->mtx);
	free(ns->atomic);
	ns->atomic = NULL;
}

/* True if a command of len bytes is within the atomic write unit. */
bool
atomic_covers(const struct namespace *ns, uint64_t len)
{
	return (ns->atomic != NULL && len != 0 &&
	    len <= (uint64_t)ATOMIC_BLOCKS << ns->lba_shift);
}

static _Atomic uint32_t *
stripe(const struct namespace *ns, uint64_t off)
{
	return (&ns->atomic->word[(off >> ns->lba_shift) /
	    ATOMIC_BLOCKS & (ATOMIC_STRIPES - 1)]);
}

static bool
lock_free_for(uint32_t s, bool excl, bool waiters_too)
{
	if (excl)
		return ((s & (ST_WRITER | ST_READERS)) == 0 &&
		    (!waiters_too || (s & ST_WAITERS) == 0));
	/* Readers yield to parked commands, or a writer could starve. */
	return ((s & ST_WRITER) == 0 && (s & ST_READERS) < ST_READERS &&
	    (!waiters_too || (s & ST_WAITERS) == 0));
}

static bool
lock_try(_Atomic uint32_t *w, bool excl, bool waiters_too)
{
	uint32_t s = atomic_load_explicit(w, memory_order_relaxed);

	do {
		if (!lock_free_for(s, excl, waiters_too))
			return (false);
	} while (!atomic_compare_exchange_weak_explicit(w, &s,
	    excl ? s | ST_WRITER : s + 1, memory_order_acquire,
	    memory_order_relaxed));
	return (true);
}

/* Let go of the stripe of off; parked commands go again once a writer,
 * or the last reader, is gone (a reader leaving others behind frees
 * nothing). */
static void
lock_release(struct namespace *ns, uint64_t off, bool excl)
{
	struct ns_atomic *a = ns->atomic;
	_Atomic uint32_t *w = stripe(ns, off);
	TAILQ_HEAD(, nvmf_cmd) wake = TAILQ_HEAD_INITIALIZER(wake);
	struct nvmf_cmd *c, *next;
	uint32_t s;

	s = excl ? atomic_fetch_and_explicit(w, ~ST_WRITER,
	    memory_order_release) : atomic_fetch_sub_explicit(w, 1,
	    memory_order_release);
	if ((s & ST_WAITERS) && (excl || (s & ST_READERS) == 1)) {
		pthread_mutex_lock(&a->mtx);
		atomic_fetch_and(w, ~ST_WAITERS);
		TAILQ_FOREACH_SAFE(c, &a->parked, link, next)
			if (stripe(c->ns, c->io.offset) == w) {
				TAILQ_REMOVE(&a->parked, c, link);
				TAILQ_INSERT_TAIL(&wake, c, link);
			}
		pthread_mutex_unlock(&a->mtx);
		TAILQ_FOREACH_SAFE(c, &wake, link, next)
			ns_unpark(c);
	}
}

static void
atomic_io_done(struct nvmf_io *io, int err)
{
	struct nvmf_cmd *cmd = (struct nvmf_cmd *)((char *)io -
	    offsetof(struct nvmf_cmd, io));

	lock_release(io->ns, io->offset, io->op != IO_READ);
	cmd->atomic_done(io, err);
}

/* Take the stripe of cmd->io.offset (shared for IO_READ) or park until it
 * is let go, to run then(cmd); true if taken. */
static bool
lock_or_park(struct nvmf_cmd *cmd, void (*then)(struct nvmf_cmd *))
{
	struct namespace *ns = cmd->ns;
	struct ns_atomic *a = ns->atomic;
	_Atomic uint32_t *w = stripe(ns, cmd->io.offset);
	bool excl = cmd->io.op != IO_READ;

	if (lock_try(w, excl, true))
		return (true);
	pthread_mutex_lock(&a->mtx);
	/* Let go meanwhile?  If the flag is only ours, it does not count. */
	if (lock_try(w, excl, (atomic_fetch_or(w, ST_WAITERS) &
	    ST_WAITERS) != 0)) {
		pthread_mutex_unlock(&a->mtx);
		return (true);
	}
	ns_park(cmd, then);
	TAILQ_INSERT_TAIL(&a->parked, cmd, link);
	pthread_mutex_unlock(&a->mtx);
	return (false);
}

static void
atomic_resubmit(struct nvmf_cmd *cmd)
{
	/* A write that waited for its stripe was not counted meanwhile, so
	 * a fused pair that began then did not wait for it: it waits for the
	 * pair (the gate is read after ns_take_back counted it again). */
	if (cmd->io.op != IO_READ && atomic_load(&cmd->ns->write_gate) &&
	    fused_hold_parked(cmd, atomic_resubmit))
		return;
	if (!lock_or_park(cmd, atomic_resubmit))
		return;
	/* Parked, it may have waited through a shrink that cut its block:
	 * the backend must not see it (ns-resize.c). */
	if (!io_still_fits(cmd)) {
		lock_release(cmd->ns, cmd->io.offset, cmd->io.op != IO_READ);
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_LBA_RANGE));
		return;
	}
	io_submit(cmd, cmd->io.op, cmd->io.offset, cmd->io.len,
	    atomic_io_done);
}

/*
 * io_submit for a covered Read, Write or Write Zeroes: with its stripe held
 * until the backend is done, then done().
 */
void
atomic_submit(struct nvmf_cmd *cmd, enum io_op op, uint64_t off,
    uint64_t len, void (*done)(struct nvmf_io *, int))
{
	cmd->io.op = op;
	cmd->io.offset = off;
	cmd->io.len = len;
	cmd->atomic_done = done;
	atomic_resubmit(cmd);
}

/* A covered write straight into RAM: true if the stripe was free and the
 * data went in; false, and nothing done, if it is taken. */
bool
atomic_ram_write(struct namespace *ns, uint64_t off, const void *src,
    uint64_t len)
{
	if (!lock_try(stripe(ns, off), true, true))
		return (false);
	memcpy(ns->mem + off, src, len);
	lock_release(ns, off, true);
	return (true);
}

/*
 * A covered read to be sent straight from RAM: hold its stripe shared
 * until atomic_unhold (tcp.c, once the data is in the socket), or park
 * until a write lets go, to run then(cmd).  True if held.
 */
bool
atomic_hold_read(struct nvmf_cmd *cmd, uint64_t off,
    void (*then)(struct nvmf_cmd *))
{
	cmd->io.op = IO_READ;
	cmd->io.offset = off;
	if (!lock_or_park(cmd, then))
		return (false);
	cmd->atomic_held = true;
	return (true);
}

void
atomic_unhold(struct nvmf_cmd *cmd)
{
	cmd->atomic_held = false;
	lock_release(cmd->ns, cmd->io.offset, false);
}

/*
 * A fused Compare and Write of one block (cmd its first, cmd->io its
 * range): hold the stripe exclusively from before the compare until the
 * write is done (atomic_unlock_pair), so that no read sees the pair half
 * done and no write parked before the pair began (the write gate does not
 * stop those) lands between its compare and its write.  True if taken;
 * else parked until then(cmd), which runs even if the queue died
 * meanwhile: the pair must let go of its namespace.
 */
bool
atomic_lock_pair(struct nvmf_cmd *cmd, void (*then)(struct nvmf_cmd *))
{
	cmd->io.op = IO_WRITE;			/* exclusive */
	cmd->park_always = true;
	if (!lock_or_park(cmd, then))
		return (false);
	cmd->park_always = false;
	cmd->pair_locked = true;
	return (true);
}

void
atomic_unlock_pair(struct nvmf_cmd *cmd)
{
	if (!cmd->pair_locked)
		return;
	cmd->pair_locked = false;
	lock_release(cmd->ns, cmd->io.offset, true);
}
