/*
 * RAM namespace: an anonymous mapping, populated off the worker loops.  io.c moves data to
 * and from ns->mem directly; submit() is the generic path.
 *
 * The first write to a huge page makes the kernel find (and with THP's
 * usual "madvise" defrag setting, compact memory for) 2 MiB, and zero it:
 * hundreds of microseconds to milliseconds.  That must not happen on a worker
 * loop, where every queue of the worker would wait.  So the mapping is
 * tracked in chunks of one huge page: a chunk is populated by a pool thread
 * (io_engine_call) before the first write lands in it, reads of chunks never
 * written are served from a shared read-only zero mapping.  ram-populate.c
 * fills the chunks ahead of the writes, in the background, unless the
 * namespace is lazy.
 *
 * The size can change live (ns-resize.c).  io.c sends from and receives
 * into ns->mem directly, so the memory never moves: the mapping is made
 * bigger than the namespace, with the part past its end inaccessible
 * (PROT_NONE, MAP_NORESERVE: address space only), and a namespace grows
 * into it.  A shrink gives the pages past the new end back to the kernel
 * once the commands that might still use them are done, but leaves them
 * accessible, so even a command that outlived that wait (ns_drain gives
 * up after 30 s) touches mapped memory, never freed memory.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmfd.h"

/* ns->chunks[] */
enum chunk_state {
	CHUNK_UNTOUCHED,	/* never written: unmapped, reads as zeros */
	CHUNK_READY,		/* populated: the loops read and write it */
	CHUNK_DROPPED,		/* deallocated: reads as zeros, may hold stale
				 * bytes from a write that raced the
				 * deallocation, so it is cleared on refill */
	CHUNK_FILLING,		/* a pool thread is populating it */
};

#define ZERO_MAP_LEN	(16u << 20)	/* the largest MDTS */
/* Room to grow: address space for 4 times the size at start, at least
 * this much; less where the system refuses so much.  Small, because it adds
 * up: 20,000 namespaces of 1 GiB each take 20 of the 128 TiB a process can
 * address (64 GiB each ran out at the 2,171st). */
#define RESERVE_MIN	(1ull << 30)
#define RESERVE_GROWTH	4

/*
 * Hosts may read and write the same blocks from two queues (two worker
 * threads) at once; beyond the atomic write unit (one block, atomic.c)
 * NVMe leaves the outcome undefined and the data is copied without locks.
 * Tell ThreadSanitizer so, for exactly the namespace's memory, and nothing
 * else.
 */
#if defined(__SANITIZE_THREAD__)
void	AnnotateBenignRaceSized(const char *, int, const volatile void *, long,
	    const char *);
#define DATA_RACES_OK(p, n)	AnnotateBenignRaceSized(__FILE__, __LINE__, \
	    (p), (long)(n), "namespace data")
#else
#define DATA_RACES_OK(p, n)	do { } while (0)
#endif

static const uint8_t *zero_map;
static pthread_once_t zero_once = PTHREAD_ONCE_INIT;

static void
zero_map_init(void)
{
	void *p = mmap(NULL, ZERO_MAP_LEN, PROT_READ,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return;
#ifdef MADV_POPULATE_READ
	/* Map the kernel's zero page everywhere now, not on a worker. */
	(void)madvise(p, ZERO_MAP_LEN, MADV_POPULATE_READ);
#endif
	zero_map = p;
}

/* The THP size, or 2 MiB where the kernel does not say. */
static uint32_t
chunk_shift(void)
{
	char buf[32];
	ssize_t n;
	int fd;
	unsigned long v = 0;

	fd = open("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
	    O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
			buf[n] = '\0';
			v = strtoul(buf, NULL, 10);
		}
		close(fd);
	}
	if (v < 4096 || v > (1ul << 30) || (v & (v - 1)) != 0)
		v = 2ul << 20;
	return ((uint32_t)__builtin_ctzl(v));
}

static uint64_t
chunks_for(const struct namespace *ns, uint64_t bytes)
{
	return ((bytes + (1ull << ns->chunk_shift) - 1) >> ns->chunk_shift);
}

uint64_t
ram_chunk_count(const struct namespace *ns)
{
	return (chunks_for(ns, ns_bytes(ns)));
}

/* Chunk indexes [*first, *last] that overlap [off, off + len), len > 0. */
static void
chunk_span(const struct namespace *ns, uint64_t off, uint64_t len,
    uint64_t *first, uint64_t *last)
{
	*first = off >> ns->chunk_shift;
	*last = (off + len - 1) >> ns->chunk_shift;
}

/* Bytes of the namespace populated now (listings). */
uint64_t
ram_resident(struct namespace *ns)
{
	uint64_t size = ns_bytes(ns), c, n = chunks_for(ns, size), ready = 0;

	for (c = 0; c < n; c++)
		if (atomic_load_explicit(&ns->chunks[c], memory_order_relaxed) ==
		    CHUNK_READY)
			ready++;
	return (MINIMUM(ready << ns->chunk_shift, size));
}

/* True if every chunk of the range is populated: writes may land there. */
bool
ram_ready(struct namespace *ns, uint64_t off, uint64_t len)
{
	uint64_t c, last;

	if (len == 0)
		return (true);
	for (chunk_span(ns, off, len, &c, &last); c <= last; c++)
		if (atomic_load_explicit(&ns->chunks[c], memory_order_acquire) !=
		    CHUNK_READY)
			return (false);
	return (true);
}

/*
 * Where a read of the range can be sent from without faulting on the loop:
 * namespace memory if it is all populated, zeros if none of it is, NULL if
 * it is mixed (the caller takes the generic path, which populates first).
 */
const uint8_t *
ram_data(struct namespace *ns, uint64_t off, uint64_t len)
{
	uint64_t c, last;
	int ready = 0, n = 0;

	if (len == 0)
		return (ns->mem + off);
	for (chunk_span(ns, off, len, &c, &last); c <= last; c++, n++)
		if (atomic_load_explicit(&ns->chunks[c], memory_order_acquire) ==
		    CHUNK_READY)
			ready++;
	if (ready == n)
		return (ns->mem + off);
	if (ready == 0 && zero_map != NULL && len <= ZERO_MAP_LEN)
		return (zero_map);
	return (NULL);
}

/* Pool thread: make one chunk READY. */
static void
chunk_fill(struct namespace *ns, uint64_t c)
{
	uint64_t size = 1ull << ns->chunk_shift, end = ns_bytes(ns);
	uint8_t *base = ns->mem + (c << ns->chunk_shift);
	uint64_t len;
	uint8_t s;

	/* Past the end: only a command that outlived a shrink's wait. */
	if ((c << ns->chunk_shift) >= end)
		return;
	len = MINIMUM(size, end - (c << ns->chunk_shift));
	for (;;) {
		s = atomic_load_explicit(&ns->chunks[c], memory_order_acquire);
		if (s == CHUNK_READY)
			return;
		if (s == CHUNK_FILLING) {
			usleep(20);	/* another thread is at it */
			continue;
		}
		if (atomic_compare_exchange_weak(&ns->chunks[c], &s,
		    CHUNK_FILLING))
			break;
	}
	if (s == CHUNK_DROPPED)
		memset(base, 0, len);
	else if (!ns->readonly) {
		long pg = sysconf(_SC_PAGESIZE);
		int r = -1;

#ifdef MADV_POPULATE_WRITE
		r = madvise(base, len, MADV_POPULATE_WRITE);
#endif
		/* Before Linux 5.14: touch each page.  Nothing else writes to
		 * an untouched chunk while it fills, so a plain store is safe. */
		for (uint64_t o = 0; r != 0 && o < len; o += pg)
			((volatile uint8_t *)base)[o] = 0;
	}
	atomic_store_explicit(&ns->chunks[c], CHUNK_READY, memory_order_release);
}

/*
 * ram-populate.c's thread: populate chunk c if nobody wrote there yet.  It
 * never claims the chunk (FILLING), so a write never waits for this
 * low-priority thread: populating pages does not change what they hold,
 * and if a pool thread filled the chunk meanwhile, the CAS below fails.
 */
bool
ram_chunk_prefill(struct namespace *ns, uint64_t c)
{
	uint64_t size = 1ull << ns->chunk_shift, end = ns_bytes(ns);
	uint8_t *base = ns->mem + (c << ns->chunk_shift);
	uint64_t len;
	uint8_t s = CHUNK_UNTOUCHED;
	int r = -1;

	if ((c << ns->chunk_shift) >= end ||
	    atomic_load_explicit(&ns->chunks[c], memory_order_acquire) != s)
		return (false);
	len = MINIMUM(size, end - (c << ns->chunk_shift));
#ifdef MADV_POPULATE_WRITE
	r = madvise(base, len, MADV_POPULATE_WRITE);
#endif
	/* Before Linux 5.14: write each page without changing it; a plain
	 * store could undo a write that landed after the chunk turned READY. */
	for (uint64_t o = 0; r != 0 && o < len; o += (uint64_t)getpagesize())
		__atomic_fetch_or(base + o, 0, __ATOMIC_RELAXED);
	return (atomic_compare_exchange_strong(&ns->chunks[c], &s,
	    CHUNK_READY));
}

static uint64_t
page_up(uint64_t bytes)
{
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);

	return ((bytes + pg - 1) & ~(pg - 1));
}

static int
ram_prot(const struct namespace *ns)
{
	return (PROT_READ | (ns->readonly ? 0 : PROT_WRITE));
}

/* The mapping: as much room to grow as the system lets us reserve, the
 * namespace's part accessible. */
static void *
ram_map(struct namespace *ns)
{
	uint64_t need = page_up(ns->size), want;
	void *p;

	want = MAXIMUM(need, RESERVE_MIN);
	if (need <= UINT64_MAX / RESERVE_GROWTH)
		want = MAXIMUM(want, need * RESERVE_GROWTH);
	for (;;) {
		want = MINIMUM(want, SIZE_MAX / 2);
		p = mmap(NULL, want, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p != MAP_FAILED || want == need)
			break;
		want = MAXIMUM(page_up(want / 4), need);
	}
	if (p == MAP_FAILED)
		return (p);
	if (mprotect(p, need, ram_prot(ns)) != 0) {
		munmap(p, want);
		return (MAP_FAILED);
	}
	ns->mem_reserved = want;
	ns->mem_usable = need;
	return (p);
}

static int
ram_open(struct namespace *ns, char *err, size_t errlen)
{
	uint32_t bs = ns->block_size ? ns->block_size : 512;
	void *p;

	if (ns->size == 0 || ns->size > SIZE_MAX / 2) {
		snprintf(err, errlen, "ram namespace needs a size");
		return (-1);
	}
	/* NORESERVE: the host decides how much of it ever becomes resident. */
	if ((p = ram_map(ns)) == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %llu bytes: %s",
		    (unsigned long long)ns->size, strerror(errno));
		return (-1);
	}
#ifdef MADV_HUGEPAGE
	(void)madvise(p, ns->mem_reserved, MADV_HUGEPAGE);
#endif
	ns->chunk_shift = chunk_shift();
	/* For all the room: the array never moves under the loops either. */
	ns->chunks = calloc(chunks_for(ns, ns->mem_reserved),
	    sizeof(*ns->chunks));
	if (ns->chunks == NULL) {
		snprintf(err, errlen, "out of memory");
		munmap(p, ns->mem_reserved);
		return (-1);
	}
	pthread_once(&zero_once, zero_map_init);
	DATA_RACES_OK(p, ns->mem_reserved);
	ns->mem = p;
	ns->lba_shift = (uint32_t)__builtin_ctz(bs);
	ns->vwc = false;
	ram_populate_start(ns);
	return (0);
}

static void
ram_close(struct namespace *ns)
{
	ram_populate_cancel(ns);
	if (ns->mem != NULL)
		munmap(ns->mem, ns->mem_reserved);
	ns->mem = NULL;
	free(ns->chunks);
	ns->chunks = NULL;
}

/* Copy between the namespace and the iovec; -EINVAL if the iovec is short. */
static int
ram_copy(struct nvmf_io *io, bool to_mem)
{
	uint8_t *m = io->ns->mem + io->offset;
	uint64_t left = io->len;

	for (int i = 0; i < io->iovcnt && left > 0; i++) {
		size_t n = MINIMUM(io->iov[i].iov_len, left);

		if (to_mem)
			memcpy(m, io->iov[i].iov_base, n);
		else
			memcpy(io->iov[i].iov_base, m, n);
		m += n;
		left -= n;
	}
	return (left ? -EINVAL : 0);
}

/* Zero [off, end) within one populated chunk: whole pages go back to the
 * kernel (they read as zeros and free the memory), only the partial pages at
 * the edges are cleared. */
static void
zero_in_chunk(struct namespace *ns, uint64_t off, uint64_t end)
{
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t a = (off + pg - 1) & ~(pg - 1);
	uint64_t b = end & ~(pg - 1);

	if (a < b && madvise(ns->mem + a, b - a, MADV_DONTNEED) == 0) {
		memset(ns->mem + off, 0, a - off);
		memset(ns->mem + b, 0, end - b);
	} else
		memset(ns->mem + off, 0, end - off);
}

/*
 * Zero a range.  Chunks never written, or deallocated, already read as
 * zeros; a whole populated chunk is given back to the kernel and marked
 * DROPPED, so the next write there is populated off the loop again.
 */
static void
ram_zero(struct namespace *ns, uint64_t off, uint64_t len)
{
	uint64_t c, last, size = 1ull << ns->chunk_shift;

	if (len == 0)
		return;
	for (chunk_span(ns, off, len, &c, &last); c <= last; c++) {
		uint64_t cs = c << ns->chunk_shift;
		uint64_t ce = MINIMUM(cs + size, ns_bytes(ns));
		uint64_t a = MAXIMUM(off, cs), b = MINIMUM(off + len, ce);
		uint8_t ready = CHUNK_READY;

		if (atomic_load(&ns->chunks[c]) != CHUNK_READY)
			continue;
		if (a == cs && b == ce) {
			if (atomic_compare_exchange_strong(&ns->chunks[c],
			    &ready, CHUNK_DROPPED))
				(void)madvise(ns->mem + cs, ce - cs,
				    MADV_DONTNEED);
		} else
			zero_in_chunk(ns, a, b);
	}
}

/* What ram_submit does, on the thread it runs on. */
static int
ram_exec(struct nvmf_io *io)
{
	struct namespace *ns = io->ns;

	switch (io->op) {
	case IO_READ:
		return (ram_copy(io, false));
	case IO_WRITE:
		return (ram_copy(io, true));
	case IO_FLUSH:
		return (0);
	case IO_WRITE_ZEROES:
	case IO_DISCARD:
		ram_zero(ns, io->offset, io->len);
		return (0);
	}
	return (-EOPNOTSUPP);
}

/* Pool thread: populate the range's chunks, then do the I/O. */
static int
ram_fill_exec(struct nvmf_io *io)
{
	uint64_t c, last;

	for (chunk_span(io->ns, io->offset, io->len, &c, &last); c <= last; c++)
		chunk_fill(io->ns, c);
	return (ram_exec(io));
}

static void
ram_submit(struct nvmf_io *io)
{
	struct namespace *ns = io->ns;
	int rc;

	if ((rc = backend_io_check(io)) != 0) {
		io->done(io, rc);
		return;
	}
	/* Touching memory that is not populated yet faults: not here. */
	if ((io->op == IO_READ || io->op == IO_WRITE) &&
	    !ram_ready(ns, io->offset, io->len)) {
		io_engine_call(cur_loop->engine, io, ram_fill_exec);
		return;
	}
	io->done(io, ram_exec(io));
}

/* Read-only RAM is mapped without write permission; lift that. */
static int
ram_set_writable(struct namespace *ns, char *err, size_t errlen)
{
	if (mprotect(ns->mem, ns->mem_usable, PROT_READ | PROT_WRITE) != 0) {
		snprintf(err, errlen, "mprotect: %s", strerror(errno));
		return (-1);
	}
	return (0);
}

/*
 * Give back what lies past bytes (main loop, nothing uses it any more):
 * whole pages go to the kernel and read as zeros again, and so do the
 * chunks past the end, UNTOUCHED: growing again, they are populated as a
 * new namespace's are, in the background or as written.
 */
static void
ram_cut(struct namespace *ns, uint64_t bytes)
{
	uint64_t a = page_up(bytes), b = page_up(ns->size);
	uint64_t c = chunks_for(ns, bytes), n = ram_chunk_count(ns);
	uint8_t s;

	if (a < b)
		(void)madvise(ns->mem + a, b - a, MADV_DONTNEED);
	/* The rest of the last page, if it is populated and writable. */
	if (a > bytes && !ns->readonly &&
	    atomic_load(&ns->chunks[(bytes - 1) >> ns->chunk_shift]) ==
	    CHUNK_READY)
		memset(ns->mem + bytes, 0, a - bytes);
	for (; c < n; c++) {
		s = atomic_load(&ns->chunks[c]);
		if (s == CHUNK_READY || s == CHUNK_DROPPED)
			(void)atomic_compare_exchange_strong(&ns->chunks[c],
			    &s, CHUNK_UNTOUCHED);
	}
}

/* A new size within the mapping; background population follows it. */
static int
ram_resize(struct namespace *ns, uint64_t bytes, char *err, size_t errlen)
{
	if (page_up(bytes) > ns->mem_reserved || bytes > SIZE_MAX / 2) {
		snprintf(err, errlen, "a RAM namespace grows in place up to "
		    "%llu bytes (the room reserved when it was added); remove "
		    "and add it to go beyond",
		    (unsigned long long)ns->mem_reserved);
		return (-1);
	}
	/* Open up what it grows into, once; a shrink leaves it open. */
	if (page_up(bytes) > ns->mem_usable) {
		uint64_t len = page_up(bytes) - ns->mem_usable;

		if (mprotect(ns->mem + ns->mem_usable, len, ram_prot(ns)) != 0) {
			snprintf(err, errlen, "cannot grow the mapping by %llu "
			    "bytes: %s", (unsigned long long)len,
			    strerror(errno));
			return (-1);
		}
		ns->mem_usable += len;
	}
	/* The thread must not populate what is cut, nor stop short of
	 * what is added: it starts over (populated chunks are skipped). */
	ram_populate_cancel(ns);
	if (bytes < ns->size)
		ram_cut(ns, bytes);
	__atomic_store_n(&ns->size, bytes, __ATOMIC_RELEASE);
	ram_populate_start(ns);
	return (0);
}

const struct backend_ops backend_ram_ops = {
	.name = "ram",
	.open = ram_open,
	.close = ram_close,
	.submit = ram_submit,
	.set_writable = ram_set_writable,
	.resize = ram_resize,
};
