/*
 * The atomic write unit nvmfd advertises (AWUN and AWUPF 0, 0's based: one
 * logical block) made true: a Read, Write or Write Zeroes of one block
 * never sees, nor leaves, a block that is part one write and part another.
 * Larger commands are exempt, as the spec allows, and pay nothing.
 *
 * Each namespace has a table of stripe words, indexed by LBA.  A command
 * of one block touches exactly one stripe (with a larger unit it could
 * straddle two: see ATOMIC_BLOCKS).
 *
 * RAM namespaces use them as sequence counters (a seqlock): a write copies
 * its block in with the counter odd, a read copies the block out to a pool
 * buffer between two equal even readings, and again if they differ.
 * Nothing is held across a loop turn, so waiting is a short spin on
 * another thread's memcpy.  Writes of a block take a buffer (or go from
 * the capsule) instead of landing in namespace memory as they arrive;
 * reads of a block are sent from a copy instead of namespace memory.
 *
 * File and block namespaces use them as reader-writer locks held while the
 * I/O is in the kernel, where the page cache gives no such guarantee.  A
 * command that finds its stripe taken is parked (ns_park, the mechanism
 * fused.c holds writes back with) and tries again on its own loop when
 * the holder lets go; the event loops never wait.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"

#define ATOMIC_STRIPES	4096		/* a power of two */
#define ATOMIC_BLOCKS	1		/* AWUN + 1; one stripe per command */

/* File and block: the stripe word as a lock. */
#define ST_WRITER	(1u << 31)
#define ST_WAITERS	(1u << 30)	/* someone is parked on it */
#define ST_READERS	(ST_WAITERS - 1)

struct ns_atomic {
	_Atomic uint32_t word[ATOMIC_STRIPES];
	pthread_mutex_t	mtx;
	TAILQ_HEAD(, nvmf_cmd) parked;
};

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax()	__builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax()	__asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax()	do { } while (0)
#endif

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

/* ------------------------------------------------------------ RAM: seqlock */

static uint32_t
seq_write_begin(_Atomic uint32_t *w)
{
	uint32_t s;

	for (;;) {
		s = atomic_load_explicit(w, memory_order_relaxed);
		if ((s & 1) == 0 && atomic_compare_exchange_weak_explicit(w,
		    &s, s + 1, memory_order_relaxed, memory_order_relaxed))
			break;
		cpu_relax();
	}
	/* The odd count is visible before any byte of the block changes. */
	atomic_thread_fence(memory_order_release);
	return (s + 2);
}

/* Copy into namespace memory; covered ranges only, iov holding len bytes. */
void
atomic_ram_store(struct namespace *ns, uint64_t off, const struct iovec *iov,
    int iovcnt, uint64_t len)
{
	_Atomic uint32_t *w = stripe(ns, off);
	uint32_t end = seq_write_begin(w);
	uint8_t *m = ns->mem + off;

	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t n = MINIMUM(iov[i].iov_len, len);

		memcpy(m, iov[i].iov_base, n);
		m += n;
		len -= n;
	}
	atomic_store_explicit(w, end, memory_order_release);
}

/* Zero a covered range of namespace memory. */
void
atomic_ram_zero(struct namespace *ns, uint64_t off, uint64_t len)
{
	_Atomic uint32_t *w = stripe(ns, off);
	uint32_t end = seq_write_begin(w);

	memset(ns->mem + off, 0, len);
	atomic_store_explicit(w, end, memory_order_release);
}

/* Copy a covered range out of namespace memory, never half written. */
void
atomic_ram_load(struct namespace *ns, uint64_t off, const struct iovec *iov,
    int iovcnt, uint64_t len)
{
	_Atomic uint32_t *w = stripe(ns, off);
	uint32_t s1, s2;

	for (;;) {
		const uint8_t *m = ns->mem + off;
		uint64_t left = len;

		s1 = atomic_load_explicit(w, memory_order_acquire);
		if (s1 & 1) {
			cpu_relax();
			continue;
		}
		for (int i = 0; i < iovcnt && left > 0; i++) {
			size_t n = MINIMUM(iov[i].iov_len, left);

			memcpy(iov[i].iov_base, m, n);
			m += n;
			left -= n;
		}
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(w, memory_order_relaxed);
		if (s1 == s2)
			return;
	}
}

/* --------------------------------------------------- file and block: locks */

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

static void atomic_resubmit(struct nvmf_cmd *);

static void
atomic_io_done(struct nvmf_io *io, int err)
{
	struct nvmf_cmd *cmd = (struct nvmf_cmd *)((char *)io -
	    offsetof(struct nvmf_cmd, io));
	struct ns_atomic *a = io->ns->atomic;
	_Atomic uint32_t *w = stripe(io->ns, io->offset);
	bool excl = io->op != IO_READ;
	TAILQ_HEAD(, nvmf_cmd) wake = TAILQ_HEAD_INITIALIZER(wake);
	struct nvmf_cmd *c, *next;
	uint32_t s;

	s = excl ? atomic_fetch_and_explicit(w, ~ST_WRITER,
	    memory_order_release) : atomic_fetch_sub_explicit(w, 1,
	    memory_order_release);
	/* Parked commands go again once a writer, or the last reader, is
	 * gone (a reader leaving others behind frees nothing). */
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
	cmd->atomic_done(io, err);
}

/* Take the stripe or park until it is let go; true if taken. */
static bool
lock_or_park(struct nvmf_cmd *cmd)
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
	ns_park(cmd, atomic_resubmit);
	TAILQ_INSERT_TAIL(&a->parked, cmd, link);
	pthread_mutex_unlock(&a->mtx);
	return (false);
}

static void
atomic_resubmit(struct nvmf_cmd *cmd)
{
	if (lock_or_park(cmd))
		io_submit(cmd, cmd->io.op, cmd->io.offset, cmd->io.len,
		    atomic_io_done);
}

/*
 * io_submit for a covered Read, Write or Write Zeroes on a file or block
 * namespace: with its stripe held until the backend is done, then done().
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
