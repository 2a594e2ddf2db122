/*
 * Unit tests: buffer pool, RAM backend, file backend through both I/O
 * engines on a real event loop.
 *
 * The file tests run twice: once with the default engine (io_uring when the
 * kernel allows it) and once with NVMFD_IO_ENGINE=threads, which forces the
 * thread pool.  Files are created under $TMPDIR (default /tmp); running with
 * TMPDIR on a tmpfs exercises the Write Zeroes fallbacks.
 *
 * Block device tests run only when NVMFD_TEST_BLOCK names a scratch block
 * device: its contents are destroyed.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "nvmfd.h"

#define MIB		(1024 * 1024)

/* ------------------------------------------------------------- fixtures */

static struct loop tl;
static char tdir[256];
static int ndone;

struct treq {
	struct nvmf_io	io;
	int		err;
	bool		done;
	pthread_t	thread;
};

static void
treq_done(struct nvmf_io *io, int err)
{
	struct treq *r = (struct treq *)((char *)io - offsetof(struct treq, io));

	ck_assert(!r->done);
	r->err = err;
	r->done = true;
	r->thread = pthread_self();
	ndone++;
}

/* A bare worker loop: what loop.c would set up, minus the thread. */
/* Engine 1: the thread pool; 0: the default, or the one NVMFD_IO_ENGINE
 * named when the test started (valgrind.sh: threads, as valgrind cannot
 * see what io_uring writes). */
static void
tloop_init(int engine)
{
	static const char *given;
	static bool seen;

	if (!seen) {
		given = getenv("NVMFD_IO_ENGINE");
		given = given ? strdup(given) : NULL;
		seen = true;
	}
	if (engine == 1)
		setenv("NVMFD_IO_ENGINE", "threads", 1);
	else if (given != NULL)
		setenv("NVMFD_IO_ENGINE", given, 1);
	else
		unsetenv("NVMFD_IO_ENGINE");
	memset(&tl, 0, sizeof(tl));
	tl.index = 0;
	pthread_mutex_init(&tl.mtx, NULL);
	STAILQ_INIT(&tl.inbox);
	TAILQ_INIT(&tl.dirty);
	tl.base = event_base_new();
	ck_assert_ptr_nonnull(tl.base);
	tl.pool = bufpool_create(16 * MIB);
	ck_assert_ptr_nonnull(tl.pool);
	tl.engine = io_engine_create(&tl);
	ck_assert_ptr_nonnull(tl.engine);
	if (engine == 1)
		ck_assert_str_eq(io_engine_kind(tl.engine), "threads");
	cur_loop = &tl;
	ndone = 0;
}

static void
tloop_fini(void)
{
	io_engine_destroy(tl.engine);
	bufpool_destroy(tl.pool);
	event_base_free(tl.base);
	cur_loop = NULL;
}

static void
run_until(int n)
{
	while (ndone < n)
		ck_assert_int_ne(event_base_loop(tl.base, EVLOOP_ONCE), -1);
}

static void
tdir_setup(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tdir, sizeof(tdir), "%s/nvmfd-backend-XXXXXX",
	    t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
}

static void
tdir_teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tdir);
}

static char *
tpath(const char *name)
{
	static char p[300];

	snprintf(p, sizeof(p), "%s/%s", tdir, name);
	return (p);
}

static void
ns_init(struct namespace *ns, enum backend_type type, const char *path,
    uint64_t size, uint32_t bs)
{
	memset(ns, 0, sizeof(*ns));
	ns->nsid = 1;
	ns->type = type;
	ns->path = path ? strdup(path) : NULL;
	ns->size = size;
	ns->block_size = bs;
	ns->fd = -1;
	/* RAM tests watch chunks fill on demand: no background thread. */
	ns->populate = RAM_POPULATE_LAZY;
}

static void
ns_fini(struct namespace *ns)
{
	namespace_close(ns);
	free(ns->path);
}

static void
req_init(struct treq *r, struct namespace *ns, enum io_op op, uint64_t off,
    uint64_t len, struct iovec *iov, int iovcnt)
{
	memset(r, 0, sizeof(*r));
	r->io.op = op;
	r->io.ns = ns;
	r->io.offset = off;
	r->io.len = len;
	r->io.iov = iov;
	r->io.iovcnt = iovcnt;
	r->io.done = treq_done;
}

/* One I/O, start to finish; returns its status. */
static int
do_io(struct namespace *ns, enum io_op op, uint64_t off, uint64_t len,
    struct iovec *iov, int iovcnt, bool fua)
{
	struct treq r;
	int before = ndone;

	req_init(&r, ns, op, off, len, iov, iovcnt);
	r.io.fua = fua;
	ns->ops->submit(&r.io);
	run_until(before + 1);
	ck_assert(r.done);
	ck_assert(pthread_equal(r.thread, pthread_self()));
	return (r.err);
}

static int
do_buf(struct namespace *ns, enum io_op op, uint64_t off, void *buf,
    uint64_t len)
{
	struct iovec iov = { buf, len };

	return (do_io(ns, op, off, len, &iov, 1, false));
}

static uint8_t
pat(size_t i, unsigned seed)
{
	return ((uint8_t)(seed * 131 + i * 7 + (i >> 9)));
}

static void
fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pat(i, seed);
}

/* p[from, to) still holds what fill(p, ..., seed) put there. */
static bool
is_pat(const uint8_t *p, size_t from, size_t to, unsigned seed)
{
	for (size_t i = from; i < to; i++)
		if (p[i] != pat(i, seed))
			return (false);
	return (true);
}

static bool
all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != 0)
			return (false);
	return (true);
}

/* --------------------------------------------------------------- bufpool */

START_TEST(test_bufpool_classes)
{
	struct bufpool *bp = bufpool_create(MIB);
	void *a, *b, *c;

	ck_assert_ptr_nonnull(bp);
	/* 1 and 4096 share the 4 KiB class; 4097 goes to 8 KiB. */
	a = bufpool_get(bp, 1);
	ck_assert_ptr_nonnull(a);
	bufpool_put(bp, a, 1);
	b = bufpool_get(bp, 4096);
	ck_assert_ptr_eq(a, b);
	c = bufpool_get(bp, 4097);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_ne(b, c);
	memset(c, 0xa5, 8192);		/* the whole class is usable */
	bufpool_put(bp, c, 4097);
	ck_assert_ptr_eq(bufpool_get(bp, 8192), c);
	bufpool_put(bp, c, 8192);
	/* 6000 bytes come from the 8 KiB list, not the 4 KiB one. */
	bufpool_put(bp, b, 4096);
	ck_assert_ptr_eq(bufpool_get(bp, 6000), c);
	ck_assert_ptr_eq(bufpool_get(bp, 4000), b);
	bufpool_put(bp, c, 6000);
	bufpool_put(bp, b, 4000);
	bufpool_destroy(bp);
}
END_TEST

START_TEST(test_bufpool_reuse)
{
	struct bufpool *bp = bufpool_create(16 * MIB);
	void *p[8];

	for (int i = 0; i < 8; i++) {
		p[i] = bufpool_get(bp, 65536);
		ck_assert_ptr_nonnull(p[i]);
		for (int j = 0; j < i; j++)
			ck_assert_ptr_ne(p[i], p[j]);
	}
	for (int i = 0; i < 8; i++)
		bufpool_put(bp, p[i], 65536);
	/* Every one of them comes back before anything new is made. */
	for (int i = 0; i < 8; i++) {
		void *q = bufpool_get(bp, 40000);
		bool found = false;

		for (int j = 0; j < 8; j++)
			found |= q == p[j];
		ck_assert(found);
	}
	for (int i = 0; i < 8; i++)
		bufpool_put(bp, p[i], 65536);
	/* The largest class (mmap'd) is reused too. */
	p[0] = bufpool_get(bp, 16 * MIB);
	ck_assert_ptr_nonnull(p[0]);
	memset(p[0], 1, 16 * MIB);
	bufpool_put(bp, p[0], 16 * MIB);
	ck_assert_ptr_eq(bufpool_get(bp, 9 * MIB), p[0]);
	bufpool_put(bp, p[0], 9 * MIB);
	bufpool_destroy(bp);
}
END_TEST

START_TEST(test_bufpool_alignment)
{
	struct bufpool *bp = bufpool_create(16 * MIB);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	for (size_t len = 1; len <= 16 * MIB; len = len * 3 + 1) {
		void *p = bufpool_get(bp, len);

		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq((uintptr_t)p % pg, 0);
		ck_assert_uint_eq((uintptr_t)p % 4096, 0);
		bufpool_put(bp, p, len);
	}
	bufpool_destroy(bp);
}
END_TEST

START_TEST(test_bufpool_too_large)
{
	struct bufpool *bp = bufpool_create(128 * 1024);
	void *p;

	ck_assert_ptr_null(bufpool_get(bp, 128 * 1024 + 1));
	ck_assert_ptr_null(bufpool_get(bp, 16 * MIB));
	p = bufpool_get(bp, 128 * 1024);
	ck_assert_ptr_nonnull(p);
	bufpool_put(bp, p, 128 * 1024);
	/* MDTS need not be a power of two. */
	bufpool_destroy(bp);
	bp = bufpool_create(100000);
	ck_assert_ptr_nonnull((p = bufpool_get(bp, 100000)));
	ck_assert_ptr_null(bufpool_get(bp, 100001));
	bufpool_put(bp, p, 100000);
	bufpool_destroy(bp);
	bufpool_destroy(NULL);
}
END_TEST

/* ------------------------------------------------------------------- RAM */

/* RAM I/O runs on a loop: the first write to a chunk is populated on a pool
 * thread and completes later. */
static int
ram_io(struct namespace *ns, enum io_op op, uint64_t off, uint64_t len,
    struct iovec *iov, int iovcnt)
{
	return (do_io(ns, op, off, len, iov, iovcnt, false));
}

static void
ram_setup(void)
{
	tloop_init(0);
}

static void
ram_teardown(void)
{
	tloop_fini();
}

START_TEST(test_ram_open)
{
	struct namespace ns;
	char err[256];

	ns_init(&ns, BACKEND_RAM, NULL, 64 * MIB, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(ns.mem);
	ck_assert_uint_eq(ns.lba_shift, 9);
	ck_assert_uint_eq(ns.nlb, 64 * MIB / 512);
	ck_assert(!ns.vwc);
	ck_assert_ptr_eq(ns.ops, &backend_ram_ops);
	ns.mem[64 * MIB - 1] = 1;	/* the whole range is mapped */
	ns_fini(&ns);
	ck_assert_ptr_null(ns.mem);

	ns_init(&ns, BACKEND_RAM, NULL, MIB, 4096);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	ck_assert_uint_eq(ns.lba_shift, 12);
	ck_assert_uint_eq(ns.nlb, 256);
	ns_fini(&ns);

	ns_init(&ns, BACKEND_RAM, NULL, 0, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "size"));
	ns_fini(&ns);

	ns_init(&ns, BACKEND_RAM, NULL, 4000, 4096);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "less than one"));
	ck_assert_ptr_null(ns.ops);
	ns_fini(&ns);

	ns_init(&ns, BACKEND_RAM, NULL, MIB, 1000);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "block size 1000"));
	ns_fini(&ns);
}
END_TEST

/* Can this process reserve LEN bytes of address space at all? */
static bool
address_space_holds(uint64_t len)
{
	void *p = mmap(NULL, len, PROT_NONE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return (false);
	munmap(p, len);
	return (true);
}

/* Thousands of small RAM namespaces (a subsystem per volume): each one's
 * room to grow is address space, and together they must fit in a
 * process's.  At 64 GiB each the 2,171st failed to map. */
START_TEST(test_ram_many)
{
	enum { N = 2500 };
	static struct namespace ns[N];
	char err[256];

	/* Each reserves at least 1 GiB (backend-ram.c).  A process has 128
	 * TiB; valgrind gives its client 128 GiB, too few to check this. */
	if (!address_space_holds((uint64_t)N << 30)) {
		printf("test_ram_many: skipped: this process cannot reserve "
		    "%d GiB of address space\n", N);
		return;
	}
	for (int i = 0; i < N; i++) {
		ns_init(&ns[i], BACKEND_RAM, NULL, MIB, 0);
		ck_assert_msg(namespace_open(&ns[i], err, sizeof(err)) == 0,
		    "namespace %d: %s", i, err);
	}
	ns[N - 1].mem[MIB - 1] = 1;
	for (int i = 0; i < N; i++)
		ns_fini(&ns[i]);
}
END_TEST

START_TEST(test_ram_rw)
{
	struct namespace ns;
	static uint8_t a[20000], b[20000];
	struct iovec wv[3] = { { a, 1000 }, { a + 1000, 5000 },
	    { a + 6000, 14000 } };
	struct iovec rv[2] = { { b, 7 }, { b + 7, 20000 - 7 } };
	char err[256];

	ns_init(&ns, BACKEND_RAM, NULL, MIB, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	fill(a, sizeof(a), 1);
	ck_assert_int_eq(ram_io(&ns, IO_WRITE, 4096 + 512, 20000, wv, 3), 0);
	ck_assert_int_eq(memcmp(ns.mem + 4096 + 512, a, 20000), 0);
	ck_assert_int_eq(ram_io(&ns, IO_READ, 4096 + 512, 20000, rv, 2), 0);
	ck_assert_int_eq(memcmp(a, b, 20000), 0);
	ck_assert_int_eq(ram_io(&ns, IO_FLUSH, 0, 0, NULL, 0), 0);

	/* Out of range, and a buffer shorter than the transfer. */
	ck_assert_int_eq(ram_io(&ns, IO_READ, MIB - 512, 1024, rv, 2),
	    -EINVAL);
	ck_assert_int_eq(ram_io(&ns, IO_READ, 0, 30000, rv, 2), -EINVAL);
	ns_fini(&ns);
}
END_TEST

static void
ram_zero_case(enum io_op op)
{
	struct namespace ns;
	char err[256];
	const uint64_t off = 3 * 4096 - 512, len = 5 * 4096 + 1024;
	uint64_t size = MIB;

	static uint8_t data[MIB];
	struct iovec iov = { data, sizeof(data) };

	ns_init(&ns, BACKEND_RAM, NULL, size, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	fill(data, size, 2);
	ck_assert_int_eq(ram_io(&ns, IO_WRITE, 0, size, &iov, 1), 0);
	ck_assert(is_pat(ns.mem, 0, size, 2));
	ck_assert_int_eq(ram_io(&ns, op, off, len, NULL, 0), 0);
	ck_assert(all_zero(ns.mem + off, len));
	ck_assert(is_pat(ns.mem, 0, off, 2));
	ck_assert(is_pat(ns.mem, off + len, size, 2));
	/* Within one page: plain memset. */
	ck_assert_int_eq(ram_io(&ns, op, 512, 1024, NULL, 0), 0);
	ck_assert(all_zero(ns.mem + 512, 1024));
	ck_assert(is_pat(ns.mem, 0, 512, 2));
	ck_assert(is_pat(ns.mem, 1536, off, 2));
	/* The whole namespace. */
	ck_assert_int_eq(ram_io(&ns, op, 0, size, NULL, 0), 0);
	ck_assert(all_zero(ns.mem, size));
	ns_fini(&ns);
}

/* The backend's part of a live resize (ns-resize.c does the rest): the
 * memory stays where it is, a shrink gives back what lies past the end,
 * and growing again shows zeros there. */
START_TEST(test_ram_resize)
{
	struct namespace ns;
	static uint8_t data[4 * MIB], back[5 * MIB];
	const uint64_t cut = 3 * MIB + 1536;	/* inside a page */
	uint8_t *mem;
	char err[256];

	ns_init(&ns, BACKEND_RAM, NULL, 4 * MIB, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	ck_assert_uint_ge(ns.mem_reserved, 1ull << 30);
	mem = ns.mem;
	fill(data, sizeof(data), 5);
	ck_assert_int_eq(do_buf(&ns, IO_WRITE, 0, data, sizeof(data)), 0);

	ck_assert_int_eq(ns.ops->resize(&ns, 8 * MIB, err, sizeof(err)), 0);
	ck_assert_ptr_eq(ns.mem, mem);
	ck_assert_uint_eq(ns.size, 8 * MIB);
	ck_assert_int_eq(do_buf(&ns, IO_WRITE, 7 * MIB, data, MIB), 0);
	ck_assert(is_pat(ns.mem, 0, 4 * MIB, 5));

	ck_assert_int_eq(ns.ops->resize(&ns, cut, err, sizeof(err)), 0);
	ck_assert_ptr_eq(ns.mem, mem);
	ck_assert_uint_eq(ns.size, cut);
	ck_assert(is_pat(ns.mem, 0, cut, 5));
	ck_assert(all_zero(ns.mem + cut, 4096 - 1536));
	ck_assert_int_eq(do_buf(&ns, IO_READ, cut, back, 512), -EINVAL);
	ck_assert_uint_le(ram_resident(&ns), cut);

	/* Grown again: the old data up to the cut, zeros after it. */
	ck_assert_int_eq(ns.ops->resize(&ns, 8 * MIB, err, sizeof(err)), 0);
	ck_assert_int_eq(do_buf(&ns, IO_READ, 3 * MIB, back, 5 * MIB), 0);
	ck_assert_int_eq(memcmp(back, data + 3 * MIB, 1536), 0);
	ck_assert(all_zero(back + 1536, 5 * MIB - 1536));
	/* A write where the cut chunks were is populated and lands. */
	ck_assert_int_eq(do_buf(&ns, IO_WRITE, 6 * MIB, data, MIB), 0);
	ck_assert_int_eq(memcmp(ns.mem + 6 * MIB, data, MIB), 0);

	/* Beyond the room reserved: refused, nothing changes. */
	ck_assert_int_eq(ns.ops->resize(&ns, ns.mem_reserved + MIB, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "grows in place"));
	ck_assert_uint_eq(ns.size, 8 * MIB);
	ns_fini(&ns);
}
END_TEST

START_TEST(test_ram_write_zeroes)
{
	ram_zero_case(IO_WRITE_ZEROES);
}
END_TEST

START_TEST(test_ram_discard)
{
	ram_zero_case(IO_DISCARD);
}
END_TEST

START_TEST(test_ram_readonly)
{
	struct namespace ns;
	uint8_t buf[512];
	struct iovec iov = { buf, sizeof(buf) };
	char err[256];

	ns_init(&ns, BACKEND_RAM, NULL, MIB, 0);
	ns.readonly = true;
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	ck_assert_int_eq(ram_io(&ns, IO_WRITE, 0, 512, &iov, 1), -EROFS);
	ck_assert_int_eq(ram_io(&ns, IO_WRITE_ZEROES, 0, 512, NULL, 0),
	    -EROFS);
	ck_assert_int_eq(ram_io(&ns, IO_READ, 0, 512, &iov, 1), 0);
	ck_assert(all_zero(buf, sizeof(buf)));
	ns_fini(&ns);
}
END_TEST

/*
 * First touch: a write to a chunk never written is not done on the loop (the
 * page fault could take milliseconds); reads of such chunks come from a
 * zero mapping; a deallocated chunk reads as zeros and does not bring back
 * its old data when written again.
 */
START_TEST(test_ram_first_touch)
{
	struct namespace ns;
	static uint8_t a[8192], b[8192];
	struct iovec av = { a, sizeof(a) }, bv = { b, sizeof(b) };
	uint64_t chunk, off;
	const uint8_t *z;
	struct treq r;
	char err[256];

	ns_init(&ns, BACKEND_RAM, NULL, 64 * MIB, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	chunk = 1ull << ns.chunk_shift;
	ck_assert_uint_ge(chunk, 4096);
	off = chunk + 4096;			/* inside the second chunk */

	ck_assert(!ram_ready(&ns, off, sizeof(a)));
	z = ram_data(&ns, off, sizeof(a));
	ck_assert_ptr_nonnull(z);
	ck_assert_ptr_ne(z, ns.mem + off);
	ck_assert(all_zero(z, sizeof(a)));

	/* The write is handed to a pool thread: not done when submit returns. */
	fill(a, sizeof(a), 3);
	req_init(&r, &ns, IO_WRITE, off, sizeof(a), &av, 1);
	ns.ops->submit(&r.io);
	ck_assert(!r.done);
	run_until(1);
	ck_assert_int_eq(r.err, 0);
	ck_assert(pthread_equal(r.thread, pthread_self()));
	ck_assert(ram_ready(&ns, off, sizeof(a)));
	ck_assert_ptr_eq(ram_data(&ns, off, sizeof(a)), ns.mem + off);
	ck_assert(is_pat(ns.mem + off, 0, sizeof(a), 3));

	/* Now on the loop, at once. */
	req_init(&r, &ns, IO_WRITE, off, sizeof(a), &av, 1);
	ns.ops->submit(&r.io);
	ck_assert(r.done);
	ck_assert_int_eq(r.err, 0);

	/* Across the end of a populated chunk: mixed, the generic path. */
	ck_assert_ptr_null(ram_data(&ns, 2 * chunk - 4096, 8192));
	ck_assert_int_eq(ram_io(&ns, IO_READ, 2 * chunk - 4096, 8192, &bv, 1),
	    0);
	ck_assert(all_zero(b, sizeof(b)));
	ck_assert(ram_ready(&ns, 2 * chunk - 4096, 8192));

	/* Deallocate the whole chunk: zeros, and a write elsewhere in it does
	 * not bring the old data back. */
	ck_assert_int_eq(ram_io(&ns, IO_DISCARD, chunk, chunk, NULL, 0), 0);
	ck_assert(!ram_ready(&ns, off, sizeof(a)));
	ck_assert(all_zero(ram_data(&ns, off, sizeof(a)), sizeof(a)));
	fill(b, sizeof(b), 4);
	ck_assert_int_eq(ram_io(&ns, IO_WRITE, chunk, sizeof(b), &bv, 1), 0);
	ck_assert(is_pat(ns.mem + chunk, 0, sizeof(b), 4));
	ck_assert(all_zero(ram_data(&ns, off + 4096, 4096), 4096));
	ns_fini(&ns);
}
END_TEST

/*
 * populate: background: a thread fills the namespace with nobody writing;
 * data written meanwhile stays; closing a namespace the thread is still
 * filling waits for it to let go (ASan would see a use after unmap).
 */
START_TEST(test_ram_background)
{
	struct namespace ns;
	static uint8_t a[4096], b[4096];
	struct iovec av = { a, sizeof(a) }, bv = { b, sizeof(b) };
	char err[256];
	int i;

	ns_init(&ns, BACKEND_RAM, NULL, 16 * MIB, 0);
	ns.populate = RAM_POPULATE_BACKGROUND;
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	fill(a, sizeof(a), 7);
	ck_assert_int_eq(ram_io(&ns, IO_WRITE, 5 * MIB, sizeof(a), &av, 1), 0);
	for (i = 0; i < 1000 && ram_resident(&ns) < ns.size; i++)
		usleep(10000);
	ck_assert_uint_eq(ram_resident(&ns), ns.size);
	ck_assert(ram_ready(&ns, 0, ns.size));
	ck_assert_int_eq(ram_io(&ns, IO_READ, 5 * MIB, sizeof(b), &bv, 1), 0);
	ck_assert(is_pat(b, 0, sizeof(b), 7));
	ck_assert(all_zero(ns.mem, 4096));
	ns_fini(&ns);

	for (i = 0; i < 4; i++) {
		ns_init(&ns, BACKEND_RAM, NULL, 1024 * MIB, 0);
		ns.populate = RAM_POPULATE_BACKGROUND;
		ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
		usleep(i * 2000);
		ns_fini(&ns);
	}
}
END_TEST

/* ------------------------------------------------------------------ file */

static void
file_setup(void)
{
	tdir_setup();
}

static void
file_teardown(void)
{
	tdir_teardown();
}

static void
file_open_ok(struct namespace *ns, const char *name, uint64_t size)
{
	char err[256];

	ns_init(ns, BACKEND_FILE, tpath(name), size, 0);
	ck_assert_msg(namespace_open(ns, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_eq(ns->ops, &backend_file_ops);
}

START_TEST(test_file_open)
{
	struct namespace ns;
	struct stat st;
	char err[256];

	tloop_init(_i);
	/* Created at the configured size. */
	file_open_ok(&ns, "a", 8 * MIB);
	ck_assert_int_ge(ns.fd, 0);
	ck_assert(ns.vwc);
	ck_assert_uint_eq(ns.lba_shift, 9);
	ck_assert_uint_eq(ns.nlb, 8 * MIB / 512);
	ck_assert_int_eq(stat(tpath("a"), &st), 0);
	ck_assert_int_eq(st.st_size, 8 * MIB);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	/* Writes and deallocations are best in file system blocks. */
	ck_assert_uint_eq(ns.pref_write, st.st_blksize);
	ck_assert_uint_eq(ns.pref_discard, st.st_blksize);
	ns_fini(&ns);
	ck_assert_int_eq(ns.fd, -1);

	/* Grown when smaller, left alone when larger. */
	file_open_ok(&ns, "a", 16 * MIB);
	ck_assert_uint_eq(ns.nlb, 16 * MIB / 512);
	ns_fini(&ns);
	file_open_ok(&ns, "a", MIB);
	ck_assert_uint_eq(ns.nlb, 16 * MIB / 512);
	ns_fini(&ns);

	/* Existing file, no size given; 4 KiB blocks. */
	ns_init(&ns, BACKEND_FILE, tpath("a"), 0, 4096);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	ck_assert_uint_eq(ns.lba_shift, 12);
	ck_assert_uint_eq(ns.nlb, 16 * MIB / 4096);
	ns_fini(&ns);

	/* Missing, and nothing says how big to make it. */
	ns_init(&ns, BACKEND_FILE, tpath("nope"), 0, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	ns_fini(&ns);
	tloop_fini();
}
END_TEST

/* set-ns --size, rescan-ns and set-ns --path, the backend's part. */
START_TEST(test_file_resize)
{
	struct namespace ns;
	static uint8_t data[MIB], back[MIB];
	uint64_t bytes;
	struct stat st;
	char err[256];
	int fd;

	tloop_init(_i);
	file_open_ok(&ns, "r", 2 * MIB);
	fill(data, sizeof(data), 6);
	ck_assert_int_eq(do_buf(&ns, IO_WRITE, MIB, data, MIB), 0);
	ck_assert_int_eq(ns.ops->resize(&ns, 4 * MIB, err, sizeof(err)), 0);
	ck_assert_uint_eq(ns.size, 4 * MIB);
	ck_assert_int_eq(stat(tpath("r"), &st), 0);
	ck_assert_int_eq(st.st_size, 4 * MIB);
	ck_assert_int_eq(do_buf(&ns, IO_READ, 3 * MIB, back, MIB), 0);
	ck_assert(all_zero(back, MIB));
	ck_assert_int_eq(ns.ops->resize(&ns, MIB + 512, err, sizeof(err)), 0);
	ck_assert_int_eq(stat(tpath("r"), &st), 0);
	ck_assert_int_eq(st.st_size, MIB + 512);

	/* Someone else grows it: probe_size says so. */
	ck_assert_int_eq(truncate(tpath("r"), 5 * MIB), 0);
	ck_assert_int_eq(ns.ops->probe_size(&ns, &bytes, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(bytes, 5 * MIB);

	/* Other storage: its data from now on; bad paths change nothing. */
	ck_assert_int_ne(ns.ops->replace(&ns, tpath("none"), err,
	    sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	ck_assert_int_ne(ns.ops->replace(&ns, tdir, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	ck_assert_str_eq(ns.path, tpath("r"));
	fd = open(tpath("o"), O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, data, MIB, 0), MIB);
	close(fd);
	fd = ns.fd;
	ck_assert_int_eq(ns.ops->replace(&ns, tpath("o"), err, sizeof(err)),
	    0);
	ck_assert_int_eq(ns.fd, fd);		/* the same number */
	ck_assert_str_eq(ns.path, tpath("o"));
	ck_assert_int_eq(ns.ops->probe_size(&ns, &bytes, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(bytes, MIB);
	ck_assert_int_eq(do_buf(&ns, IO_READ, 0, back, MIB), 0);
	ck_assert_int_eq(memcmp(back, data, MIB), 0);
	ns_fini(&ns);
	tloop_fini();
}
END_TEST

START_TEST(test_file_rw)
{
	struct namespace ns;
	const size_t len = 256 * 1024;
	uint8_t *a, *b, c[8192];
	struct iovec wv[3], rv[4];

	tloop_init(_i);
	a = bufpool_get(tl.pool, len);
	b = bufpool_get(tl.pool, len);
	file_open_ok(&ns, "rw", 4 * MIB);

	fill(a, len, 3);
	wv[0] = (struct iovec){ a, 4096 };
	wv[1] = (struct iovec){ a + 4096, 512 };
	wv[2] = (struct iovec){ a + 4608, len - 4608 };
	ck_assert_int_eq(do_io(&ns, IO_WRITE, MIB + 512, len, wv, 3, false), 0);
	ck_assert_int_eq(do_io(&ns, IO_FLUSH, 0, 0, NULL, 0, false), 0);
	memset(b, 0, len);
	rv[0] = (struct iovec){ b, 100 };
	rv[1] = (struct iovec){ b + 100, 0 };
	rv[2] = (struct iovec){ b + 100, 70000 };
	rv[3] = (struct iovec){ b + 70100, len - 70100 };
	ck_assert_int_eq(do_io(&ns, IO_READ, MIB + 512, len, rv, 4, false), 0);
	ck_assert_int_eq(memcmp(a, b, len), 0);
	/* The iovecs are given back as they were. */
	ck_assert_ptr_eq(rv[2].iov_base, b + 100);
	ck_assert_uint_eq(rv[2].iov_len, 70000);

	/* FUA write, then read what is on the file directly. */
	fill(a, len, 4);
	ck_assert_int_eq(do_io(&ns, IO_WRITE, 0, 8192, wv, 3, true), 0);
	ck_assert_int_eq(pread(ns.fd, b, 8192, 0), 8192);
	ck_assert_int_eq(memcmp(a, b, 8192), 0);

	/* An iovec longer than the transfer: only len bytes move. */
	memcpy(b, a, 8192);
	fill(a, len, 11);
	ck_assert_int_eq(do_io(&ns, IO_WRITE, 0, 5120, wv, 3, false), 0);
	ck_assert_uint_eq(wv[2].iov_len, len - 4608);
	ck_assert_int_eq(pread(ns.fd, c, 8192, 0), 8192);
	ck_assert_int_eq(memcmp(c, a, 5120), 0);
	ck_assert_int_eq(memcmp(c + 5120, b + 5120, 8192 - 5120), 0);
	memset(b, 0xee, len);
	{
		struct iovec one = { b, len };

		ck_assert_int_eq(do_io(&ns, IO_READ, 0, 1024, &one, 1, false),
		    0);
		ck_assert_int_eq(memcmp(a, b, 1024), 0);
		ck_assert_uint_eq(b[1024], 0xee);
	}

	/* Errors: outside the namespace, iovec too short. */
	ck_assert_int_eq(do_io(&ns, IO_READ, 4 * MIB - 512, 1024, rv, 4,
	    false), -EINVAL);
	ck_assert_int_eq(do_io(&ns, IO_READ, 0, len + 512, rv, 4, false),
	    -EINVAL);

	bufpool_put(tl.pool, a, len);
	bufpool_put(tl.pool, b, len);
	ns_fini(&ns);
	tloop_fini();
}
END_TEST

/* One 16 MiB transfer, and more I/Os at once than the ring holds. */
START_TEST(test_file_large)
{
	struct namespace ns;
	const size_t big = 16 * MIB;
	const int n = 1500;
	uint8_t *a, *b;
	struct iovec v[2];
	struct treq *r;
	struct iovec *iov;

	tloop_init(_i);
	a = bufpool_get(tl.pool, big);
	b = bufpool_get(tl.pool, big);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	file_open_ok(&ns, "big", 2 * big);

	fill(a, big, 5);
	v[0] = (struct iovec){ a, big / 3 };
	v[1] = (struct iovec){ a + big / 3, big - big / 3 };
	ck_assert_int_eq(do_io(&ns, IO_WRITE, big, big, v, 2, false), 0);
	ck_assert_int_eq(do_buf(&ns, IO_READ, big, b, big), 0);
	ck_assert_int_eq(memcmp(a, b, big), 0);

	/* Batch: n 4 KiB writes submitted in one turn, then n reads. */
	r = calloc(n, sizeof(*r));
	iov = calloc(n, sizeof(*iov));
	fill(a, (size_t)n * 4096, 6);
	for (int i = 0; i < n; i++) {
		iov[i] = (struct iovec){ a + (size_t)i * 4096, 4096 };
		req_init(&r[i], &ns, IO_WRITE, (uint64_t)(n - 1 - i) * 4096,
		    4096, &iov[i], 1);
	}
	ndone = 0;
	for (int i = 0; i < n; i++)
		ns.ops->submit(&r[i].io);
	run_until(n);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(r[i].err, 0);
		iov[i].iov_base = b + (size_t)i * 4096;
		req_init(&r[i], &ns, IO_READ, (uint64_t)(n - 1 - i) * 4096,
		    4096, &iov[i], 1);
	}
	ndone = 0;
	memset(b, 0, (size_t)n * 4096);
	for (int i = 0; i < n; i++)
		ns.ops->submit(&r[i].io);
	run_until(n);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(r[i].err, 0);
	ck_assert_int_eq(memcmp(a, b, (size_t)n * 4096), 0);
	free(r);
	free(iov);

	bufpool_put(tl.pool, a, big);
	bufpool_put(tl.pool, b, big);
	ns_fini(&ns);
	tloop_fini();
}
END_TEST

/* A read running into the end of the file is resumed, then fails: a short
 * transfer is never success. */
START_TEST(test_file_short)
{
	struct namespace ns;
	uint8_t a[16384], b[16384];

	tloop_init(_i);
	file_open_ok(&ns, "short", MIB);
	fill(a, sizeof(a), 7);
	ck_assert_int_eq(do_buf(&ns, IO_WRITE, MIB - 16384, a, 16384), 0);
	/* Shrink the file behind the namespace's back. */
	ck_assert_int_eq(ftruncate(ns.fd, MIB - 8192), 0);
	memset(b, 0, sizeof(b));
	ck_assert_int_eq(do_buf(&ns, IO_READ, MIB - 16384, b, 16384), -EIO);
	ck_assert_int_eq(memcmp(a, b, 8192), 0);	/* the part there was */
	ck_assert_int_eq(do_buf(&ns, IO_READ, MIB - 16384, b, 8192), 0);
	ns_fini(&ns);
	tloop_fini();
}
END_TEST

static void
file_zero_case(enum io_op op, bool direct)
{
	struct namespace ns;
	const size_t len = 256 * 1024;
	const uint64_t off = 4096 + 512, zlen = 100 * 1024 + 512;
	uint8_t *a, *b;
	char err[256];

	a = bufpool_get(tl.pool, len);
	b = bufpool_get(tl.pool, len);
	ns_init(&ns, BACKEND_FILE, tpath("z"), 4 * MIB, direct ? 4096 : 0);
	ns.direct = direct;
	if (namespace_open(&ns, err, sizeof(err)) == -1) {
		/* Not every file system does direct I/O. */
		ck_assert_msg(direct, "%s", err);
		fprintf(stderr, "skipping O_DIRECT: %s\n", err);
		ns_fini(&ns);
		return;
	}
	if (direct) {
		ck_assert_int_eq(fcntl(ns.fd, F_GETFL) & O_DIRECT, O_DIRECT);
		ck_assert_uint_eq(ns.lba_shift, 12);
	}
	fill(a, len, 8);
	ck_assert_int_eq(do_buf(&ns, IO_WRITE, 0, a, len), 0);
	ck_assert_int_eq(do_buf(&ns, IO_WRITE, 2 * MIB, a, len), 0);
	if (direct) {
		ck_assert_int_eq(do_io(&ns, op, 8192, 65536, NULL, 0, false),
		    0);
		ck_assert_int_eq(do_buf(&ns, IO_READ, 0, b, len), 0);
		ck_assert_int_eq(memcmp(a, b, 8192), 0);
		ck_assert(op == IO_DISCARD || all_zero(b + 8192, 65536));
		ck_assert_int_eq(memcmp(a + 73728, b + 73728, len - 73728),
		    0);
	} else {
		ck_assert_int_eq(do_io(&ns, op, off, zlen, NULL, 0, false), 0);
		ck_assert_int_eq(do_buf(&ns, IO_READ, 0, b, len), 0);
		ck_assert_int_eq(memcmp(a, b, off), 0);
		ck_assert(all_zero(b + off, zlen));
		ck_assert_int_eq(memcmp(a + off + zlen, b + off + zlen,
		    len - off - zlen), 0);
	}
	/* Up to the end of the namespace. */
	ck_assert_int_eq(do_io(&ns, op, 2 * MIB, 2 * MIB, NULL, 0, false), 0);
	ck_assert_int_eq(do_buf(&ns, IO_READ, 2 * MIB, b, len), 0);
	if (op == IO_WRITE_ZEROES || !direct)
		ck_assert(all_zero(b, len));
	bufpool_put(tl.pool, a, len);
	bufpool_put(tl.pool, b, len);
	ns_fini(&ns);
}

START_TEST(test_file_write_zeroes)
{
	tloop_init(_i);
	file_zero_case(IO_WRITE_ZEROES, false);
	file_zero_case(IO_WRITE_ZEROES, true);
	tloop_fini();
}
END_TEST

START_TEST(test_file_discard)
{
	tloop_init(_i);
	file_zero_case(IO_DISCARD, false);
	file_zero_case(IO_DISCARD, true);
	tloop_fini();
}
END_TEST

START_TEST(test_file_readonly)
{
	struct namespace ns;
	uint8_t a[4096], b[4096];
	char err[256];

	tloop_init(_i);
	file_open_ok(&ns, "ro", MIB);
	fill(a, sizeof(a), 9);
	ck_assert_int_eq(do_buf(&ns, IO_WRITE, 8192, a, sizeof(a)), 0);
	ns_fini(&ns);

	ns_init(&ns, BACKEND_FILE, tpath("ro"), 2 * MIB, 0);
	ns.readonly = true;
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	ck_assert_int_eq(fcntl(ns.fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	ck_assert_uint_eq(ns.nlb, MIB / 512);	/* not grown */
	ck_assert_int_eq(do_buf(&ns, IO_READ, 8192, b, sizeof(b)), 0);
	ck_assert_int_eq(memcmp(a, b, sizeof(a)), 0);
	ck_assert_int_eq(do_buf(&ns, IO_WRITE, 8192, a, sizeof(a)), -EROFS);
	ck_assert_int_eq(do_io(&ns, IO_WRITE_ZEROES, 0, 512, NULL, 0, false),
	    -EROFS);
	ck_assert_int_eq(do_io(&ns, IO_FLUSH, 0, 0, NULL, 0, false), 0);
	ns_fini(&ns);

	/* Read-only never creates. */
	ns_init(&ns, BACKEND_FILE, tpath("ro-missing"), MIB, 0);
	ns.readonly = true;
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ck_assert_int_eq(access(tpath("ro-missing"), F_OK), -1);
	ns_fini(&ns);
	tloop_fini();
}
END_TEST

START_TEST(test_file_wrong_type)
{
	struct namespace ns;
	char err[256];
	int fd;

	ns_init(&ns, BACKEND_FILE, tdir, 0, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	ns_fini(&ns);

	ns_init(&ns, BACKEND_FILE, "/dev/null", 0, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	ns_fini(&ns);

	fd = open(tpath("plain"), O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, MIB), 0);
	close(fd);
	ns_init(&ns, BACKEND_BLOCK, tpath("plain"), 0, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a block device"));
	ck_assert_ptr_nonnull(strstr(err, "file namespace"));
	ns_fini(&ns);

	/* A block namespace never creates anything. */
	ns_init(&ns, BACKEND_BLOCK, tpath("nodev"), MIB, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ck_assert_int_eq(access(tpath("nodev"), F_OK), -1);
	ns_fini(&ns);

	ns_init(&ns, BACKEND_FILE, NULL, MIB, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "path"));
	ns_fini(&ns);
}
END_TEST

START_TEST(test_file_block_size)
{
	struct namespace ns;
	char err[256];
	static const uint32_t bad[] = { 256, 1000, 3000, 131072 };

	for (size_t i = 0; i < nitems(bad); i++) {
		ns_init(&ns, BACKEND_FILE, tpath("bs"), MIB, bad[i]);
		ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "block size"));
		ns_fini(&ns);
	}
	/* Smaller than one block. */
	ns_init(&ns, BACKEND_FILE, tpath("tiny"), 100, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "less than one"));
	ck_assert_int_eq(ns.fd, -1);
	ns_fini(&ns);
	ns_init(&ns, BACKEND_FILE, tpath("tiny"), 0, 0);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), -1);
	ns_fini(&ns);

	ns_init(&ns, BACKEND_FILE, tpath("bs64k"), MIB, 65536);
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	ck_assert_uint_eq(ns.lba_shift, 16);
	ck_assert_uint_eq(ns.nlb, 16);
	ns_fini(&ns);
}
END_TEST

START_TEST(test_engine_kind)
{
	tloop_init(_i);
	if (_i == 1)
		ck_assert_str_eq(io_engine_kind(tl.engine), "threads");
	else
		fprintf(stderr, "default file engine: %s\n",
		    io_engine_kind(tl.engine));
	tloop_fini();
}
END_TEST

/* ------------------------------------------------------------ block device */

START_TEST(test_block_device)
{
	const char *dev = getenv("NVMFD_TEST_BLOCK");
	struct namespace ns;
	const size_t len = 128 * 1024;
	uint8_t *a, *b;
	char err[256];

	if (dev == NULL || *dev == '\0')
		return;
	tloop_init(_i);
	a = bufpool_get(tl.pool, len);
	b = bufpool_get(tl.pool, len);

	ns_init(&ns, BACKEND_BLOCK, dev, 0, 0);
	ck_assert_msg(namespace_open(&ns, err, sizeof(err)) == 0, "%s", err);
	ck_assert(ns.vwc);
	ck_assert_uint_gt(ns.nlb, 0);
	fprintf(stderr, "%s: %llu blocks of %u bytes\n", dev,
	    (unsigned long long)ns.nlb, 1u << ns.lba_shift);

	fill(a, len, 10);
	ck_assert_int_eq(do_buf(&ns, IO_WRITE, 0, a, len), 0);
	ck_assert_int_eq(do_io(&ns, IO_FLUSH, 0, 0, NULL, 0, false), 0);
	ck_assert_int_eq(do_buf(&ns, IO_READ, 0, b, len), 0);
	ck_assert_int_eq(memcmp(a, b, len), 0);
	ck_assert_int_eq(do_io(&ns, IO_WRITE_ZEROES, 4096, 65536, NULL, 0,
	    false), 0);
	ck_assert_int_eq(do_buf(&ns, IO_READ, 0, b, len), 0);
	ck_assert_int_eq(memcmp(a, b, 4096), 0);
	ck_assert(all_zero(b + 4096, 65536));
	ck_assert_int_eq(memcmp(a + 69632, b + 69632, len - 69632), 0);
	ck_assert_int_eq(do_io(&ns, IO_DISCARD, 0, len, NULL, 0, false), 0);
	/* The last block. */
	ck_assert_int_eq(do_buf(&ns, IO_WRITE, (ns.nlb - 1) << ns.lba_shift,
	    a, 1u << ns.lba_shift), 0);
	ns_fini(&ns);

	/* Direct I/O with the device's own block size. */
	ns_init(&ns, BACKEND_BLOCK, dev, 0, 0);
	ns.direct = true;
	ck_assert_msg(namespace_open(&ns, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(fcntl(ns.fd, F_GETFL) & O_DIRECT, O_DIRECT);
	ck_assert_int_eq(do_buf(&ns, IO_READ, (ns.nlb - 1) << ns.lba_shift, b,
	    1u << ns.lba_shift), 0);
	ck_assert_int_eq(memcmp(a, b, 1u << ns.lba_shift), 0);
	{
		uint32_t lbs = 1u << ns.lba_shift;

		ns_fini(&ns);
		/* Blocks smaller than the device's are refused. */
		if (lbs > 512) {
			ns_init(&ns, BACKEND_BLOCK, dev, 0, lbs / 2);
			ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)),
			    -1);
			ck_assert_ptr_nonnull(strstr(err, "logical block size"));
			ns_fini(&ns);
		}
	}
	ns_init(&ns, BACKEND_BLOCK, dev, 0, 0);
	ns.readonly = true;
	ck_assert_int_eq(namespace_open(&ns, err, sizeof(err)), 0);
	ck_assert_int_eq(fcntl(ns.fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	ns_fini(&ns);

	bufpool_put(tl.pool, a, len);
	bufpool_put(tl.pool, b, len);
	tloop_fini();
}
END_TEST

static Suite *
backend_suite(void)
{
	Suite *s = suite_create("backend");
	TCase *tc;

	tc = tcase_create("bufpool");
	tcase_add_test(tc, test_bufpool_classes);
	tcase_add_test(tc, test_bufpool_reuse);
	tcase_add_test(tc, test_bufpool_alignment);
	tcase_add_test(tc, test_bufpool_too_large);
	suite_add_tcase(s, tc);

	tc = tcase_create("ram");
	tcase_add_checked_fixture(tc, ram_setup, ram_teardown);
	tcase_add_test(tc, test_ram_open);
	tcase_add_test(tc, test_ram_many);
	tcase_add_test(tc, test_ram_background);
	tcase_add_test(tc, test_ram_first_touch);
	tcase_add_test(tc, test_ram_rw);
	tcase_add_test(tc, test_ram_write_zeroes);
	tcase_add_test(tc, test_ram_discard);
	tcase_add_test(tc, test_ram_readonly);
	tcase_add_test(tc, test_ram_resize);
	suite_add_tcase(s, tc);

	/* Loop index: 0 = default engine, 1 = thread pool. */
	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, file_setup, file_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_engine_kind, 0, 2);
	tcase_add_loop_test(tc, test_file_open, 0, 2);
	tcase_add_loop_test(tc, test_file_rw, 0, 2);
	tcase_add_loop_test(tc, test_file_resize, 0, 2);
	tcase_add_loop_test(tc, test_file_large, 0, 2);
	tcase_add_loop_test(tc, test_file_short, 0, 2);
	tcase_add_loop_test(tc, test_file_write_zeroes, 0, 2);
	tcase_add_loop_test(tc, test_file_discard, 0, 2);
	tcase_add_loop_test(tc, test_file_readonly, 0, 2);
	tcase_add_test(tc, test_file_wrong_type);
	tcase_add_test(tc, test_file_block_size);
	tcase_add_loop_test(tc, test_block_device, 0, 2);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(backend_suite());
	int nfailed;

	log_init(1, 0);
	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
