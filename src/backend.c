/*
 * Namespace storage: pick the backend for a namespace and open it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"

int
namespace_open(struct namespace *ns, char *err, size_t errlen)
{
	const struct backend_ops *ops;

	switch (ns->type) {
	case BACKEND_RAM:
		ops = &backend_ram_ops;
		break;
	case BACKEND_FILE:
	case BACKEND_BLOCK:
		ops = &backend_file_ops;
		break;
	case BACKEND_RBD:
#ifdef HAVE_RBD
		ops = &backend_rbd_ops;
		break;
#else
		snprintf(err, errlen, "this nvmfd was built without RBD "
		    "support (configure --with-rbd)");
		return (-1);
#endif
	default:
		snprintf(err, errlen, "unknown backend type %d", (int)ns->type);
		return (-1);
	}

	/* LBADS is a power of two; hosts handle 512 bytes up to 64 KiB. */
	if (ns->block_size != 0 && (ns->block_size < 512 ||
	    ns->block_size > 65536 ||
	    (ns->block_size & (ns->block_size - 1)) != 0)) {
		snprintf(err, errlen, "block size %u is not a power of two "
		    "from 512 to 65536", ns->block_size);
		return (-1);
	}

	ns->fd = -1;
	ns->mem = NULL;
	ns->priv = NULL;
	if (ops->open(ns, err, errlen) == -1)
		return (-1);
	/* The backend sets size (bytes) and lba_shift. */
	if ((ns->size >> ns->lba_shift) == 0) {
		snprintf(err, errlen, "capacity of %llu bytes is less than one "
		    "%u-byte block", (unsigned long long)ns->size,
		    1u << ns->lba_shift);
		ops->close(ns);
		return (-1);
	}
	ns->nlb = ns->size >> ns->lba_shift;
	ns->ops = ops;
	return (0);
}

void
namespace_close(struct namespace *ns)
{
	if (ns->ops == NULL)
		return;
	ns->ops->close(ns);
	ns->ops = NULL;
	ns->nlb = 0;
}

/* What every backend refuses before its own work: 0, or the errno to fail
 * the I/O with. */
int
backend_io_check(const struct nvmf_io *io)
{
	const struct namespace *ns = io->ns;
	uint64_t size = ns_bytes(ns);

	if (io->op != IO_FLUSH && (io->offset > size ||
	    io->len > size - io->offset))
		return (-EINVAL);
	if (ns->readonly && io->op != IO_READ && io->op != IO_FLUSH)
		return (-EROFS);
	return (0);
}

/* Opening an rbd namespace waits for the cluster: not on a loop. */
bool
namespace_open_blocks(const struct namespace *ns)
{
	return (ns->type == BACKEND_RBD);
}

struct ns_open_job {
	struct nvmf_io	io;		/* first: the pool's handle on it */
	struct namespace *ns;
	void		(*done)(struct namespace *, const char *, void *);
	void		*arg;
	char		err[512];
};

static int
open_job_run(struct nvmf_io *io)
{
	struct ns_open_job *j = (struct ns_open_job *)io;

	return (namespace_open(j->ns, j->err, sizeof(j->err)) == 0 ? 0 : -EIO);
}

static void
open_job_done(struct nvmf_io *io, int err)
{
	struct ns_open_job *j = (struct ns_open_job *)io;

	if (err != 0 && j->err[0] == '\0')
		snprintf(j->err, sizeof(j->err), "%s", strerror(-err));
	j->done(j->ns, err != 0 ? j->err : NULL, j->arg);
	free(j);
}

/*
 * namespace_open() on a thread of the main loop's pool; done(ns, err, arg)
 * on the main loop after, err NULL when it opened.  -1: no memory (done
 * is not called).
 */
int
namespace_open_async(struct namespace *ns,
    void (*done)(struct namespace *, const char *err, void *), void *arg)
{
	struct ns_open_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return (-1);
	j->ns = ns;
	j->done = done;
	j->arg = arg;
	j->io.ns = ns;
	j->io.done = open_job_done;
	io_engine_call(main_loop->engine, &j->io, open_job_run);
	return (0);
}
