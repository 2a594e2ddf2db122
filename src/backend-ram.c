/*
 * RAM namespace: an anonymous mapping, populated lazily by the kernel.  io.c
 * moves data to and from ns->mem directly; submit() is the generic path and
 * completes synchronously.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nvmfd.h"

static size_t
ram_map_len(const struct namespace *ns)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return ((ns->size + pg - 1) & ~(pg - 1));
}

static int
ram_open(struct namespace *ns, char *err, size_t errlen)
{
	uint32_t bs = ns->block_size ? ns->block_size : 512;
	int prot = PROT_READ | (ns->readonly ? 0 : PROT_WRITE);
	void *p;

	if (ns->size == 0 || ns->size > SIZE_MAX / 2) {
		snprintf(err, errlen, "ram namespace needs a size");
		return (-1);
	}
	/* NORESERVE: the host decides how much of it ever becomes resident. */
	p = mmap(NULL, ram_map_len(ns), prot,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %llu bytes: %s",
		    (unsigned long long)ns->size, strerror(errno));
		return (-1);
	}
#ifdef MADV_HUGEPAGE
	(void)madvise(p, ram_map_len(ns), MADV_HUGEPAGE);
#endif
	ns->mem = p;
	ns->lba_shift = (uint32_t)__builtin_ctz(bs);
	ns->vwc = false;
	return (0);
}

static void
ram_close(struct namespace *ns)
{
	if (ns->mem != NULL)
		munmap(ns->mem, ram_map_len(ns));
	ns->mem = NULL;
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

/* Zero a range: whole pages go back to the kernel (they read as zeros and
 * free the memory), only the partial pages at the edges are cleared. */
static void
ram_zero(struct namespace *ns, uint64_t off, uint64_t len)
{
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t end = off + len;
	uint64_t a = (off + pg - 1) & ~(pg - 1);
	uint64_t b = end & ~(pg - 1);

	if (a < b && madvise(ns->mem + a, b - a, MADV_DONTNEED) == 0) {
		memset(ns->mem + off, 0, a - off);
		memset(ns->mem + b, 0, end - b);
	} else
		memset(ns->mem + off, 0, len);
}

static void
ram_submit(struct nvmf_io *io)
{
	struct namespace *ns = io->ns;
	int err = 0;

	if (io->op != IO_FLUSH && (io->offset > ns->size ||
	    io->len > ns->size - io->offset)) {
		io->done(io, -EINVAL);
		return;
	}
	if (ns->readonly && io->op != IO_READ && io->op != IO_FLUSH) {
		io->done(io, -EROFS);
		return;
	}
	switch (io->op) {
	case IO_READ:
		err = ram_copy(io, false);
		break;
	case IO_WRITE:
		err = ram_copy(io, true);
		break;
	case IO_FLUSH:
		break;
	case IO_WRITE_ZEROES:
	case IO_DISCARD:
		ram_zero(ns, io->offset, io->len);
		break;
	default:
		err = -EOPNOTSUPP;
		break;
	}
	io->done(io, err);
}

/* Read-only RAM is mapped without write permission; lift that. */
static int
ram_set_writable(struct namespace *ns, char *err, size_t errlen)
{
	if (mprotect(ns->mem, ram_map_len(ns), PROT_READ | PROT_WRITE) != 0) {
		snprintf(err, errlen, "mprotect: %s", strerror(errno));
		return (-1);
	}
	return (0);
}

const struct backend_ops backend_ram_ops = {
	.name = "ram",
	.open = ram_open,
	.close = ram_close,
	.submit = ram_submit,
	.set_writable = ram_set_writable,
};
