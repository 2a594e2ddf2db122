/*
 * NVM command set on I/O queues (worker loops): Read, Write, Flush, Write
 * Zeroes, Dataset Management, Compare, Verify, Copy, and the reservation
 * commands (reservation.c), which also decide who may run the others.
 * RAM namespaces are served in place: reads send straight from namespace
 * memory and writes land there directly, once the backend has populated
 * that part (ram_ready/ram_data); before that, they take the generic path
 * below.  Other backends get a pool buffer and an asynchronous request.
 * Commands of one block are atomic (atomic.c): they hold their block's
 * stripe while they touch it (a RAM read until its data is sent).
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "nvmfd.h"

/* Status for a failed backend request. */
uint16_t
io_errno_status(enum io_op op, int err)
{
	if (err == -ENOSPC)
		return (NVME_SC_CAP_EXCEEDED);
	if (err == -EROFS || err == -EPERM)
		return (NVME_SC_DNR(NVME_SC_NS_WRITE_PROTECTED));
	return (op == IO_READ ? NVME_SC_READ_ERROR : NVME_SC_WRITE_FAULT);
}

static struct nvmf_cmd *
io_cmd(struct nvmf_io *io)
{
	return ((struct nvmf_cmd *)((char *)io - offsetof(struct nvmf_cmd, io)));
}

static void
io_done(struct nvmf_io *io, int err)
{
	struct nvmf_cmd *cmd = io_cmd(io);

	if (err != 0) {
		log_debug("nsid %u: %s at %llu+%llu: %s", cmd->ns->nsid,
		    io->op == IO_READ ? "read" : "write",
		    (unsigned long long)io->offset, (unsigned long long)io->len,
		    strerror(-err));
		cmd_complete_status(cmd, io_errno_status(io->op, err));
		return;
	}
	cmd_complete_status(cmd, NVME_SC_SUCCESS);
}

void
io_submit(struct nvmf_cmd *cmd, enum io_op op, uint64_t off, uint64_t len,
    void (*done)(struct nvmf_io *, int))
{
	struct nvmf_io *io = &cmd->io;

	io->op = op;
	io->ns = cmd->ns;
	io->offset = off;
	io->len = len;
	io->iov = cmd->iov;
	io->iovcnt = cmd->iovcnt;
	/* With the cache turned off (Set Features), every write is FUA. */
	io->fua = op == IO_WRITE && ((cmd->sqe.cdw12 & (1u << 30)) ||
	    !cmd->qp->ctrl->vwc_enabled);
	io->done = done;
	cmd->in_backend = true;
	cmd->ns->ops->submit(io);
}

/* Read, Write and Write Zeroes: one block holds its stripe while the
 * backend has it (atomic.c). */
static void
io_submit_atomic(struct nvmf_cmd *cmd, enum io_op op, uint64_t off,
    uint64_t len)
{
	if (atomic_covers(cmd->ns, len))
		atomic_submit(cmd, op, off, len, io_done);
	else
		io_submit(cmd, op, off, len, io_done);
}

/*
 * One of the errors injected with nvmfctl inject-error, while the count
 * lasts.  One load per I/O when nothing is injected.  inject-error sets
 * the mode while the count is 0, then the count (all atomics).
 */
bool
fault_take(struct namespace *ns, enum io_op op, uint8_t where, int *err)
{
	unsigned left = atomic_load_explicit(&ns->fault_left,
	    memory_order_acquire);

	if (left == 0 || ns->fault_at != where ||
	    !(ns->fault_ops & (op == IO_READ ? FAULT_READ : FAULT_WRITE)))
		return (false);
	do {
		if (left == 0)
			return (false);
	} while (!atomic_compare_exchange_weak(&ns->fault_left, &left,
	    left - 1));
	*err = ns->fault_errno;
	return (true);
}

/* Injected at the command (--at io): fail it as the backend would have,
 * without reaching it.  A short transfer ends as the engine ends one: EIO. */
static bool
io_injected(struct nvmf_cmd *cmd, enum io_op op)
{
	int err;

	if (!fault_take(cmd->ns, op, FAULT_AT_IO, &err))
		return (false);
	cmd_complete_status(cmd, io_errno_status(op, err ? -err : -EIO));
	return (true);
}

/* True if nlb blocks from slba fit in a namespace of cap blocks (cap is
 * read once, after ns_hold(): it may shrink live, see ns-resize.c). */
static bool
lba_fits(uint64_t cap, uint64_t slba, uint64_t nlb)
{
	return (slba < cap && nlb <= cap - slba);
}

/* For a command that waited (parked, or queued behind a drain) since its
 * range was checked: does cmd->io still lie within the namespace, which
 * may have shrunk meanwhile?  Called once it counts again (ns_take_back),
 * so a shrink it did not see waits for it (ns-resize.c). */
bool
io_still_fits(const struct nvmf_cmd *cmd)
{
	const struct namespace *ns = cmd->ns;

	return (lba_fits(ns_nlb(ns), cmd->io.offset >> ns->lba_shift,
	    cmd->io.len >> ns->lba_shift));
}

/* Decode and check SLBA/NLB; returns 0 and the byte range, or a status. */
static uint16_t
io_range(struct nvmf_cmd *cmd, uint64_t *off, uint64_t *len)
{
	struct namespace *ns = cmd->ns;
	uint64_t slba = cmd->sqe.cdw10 | (uint64_t)cmd->sqe.cdw11 << 32;
	uint64_t nlb = (cmd->sqe.cdw12 & 0xffff) + 1, cap = ns_nlb(ns);

	if (!lba_fits(cap, slba, nlb))
		return (NVME_SC_DNR(NVME_SC_LBA_RANGE));
	*off = slba << ns->lba_shift;
	*len = nlb << ns->lba_shift;
	return (0);
}

/* Data commands: the SGL must describe exactly the blocks, within MDTS. */
uint16_t
io_data_range(struct nvmf_cmd *cmd, uint64_t *off, uint64_t *len)
{
	uint16_t sc;

	if ((sc = io_range(cmd, off, len)) != 0)
		return (sc);
	if (*len > running_config->mdts)
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	if (cmd->data_len != *len)
		return (NVME_SC_DNR(NVME_SC_SGL_INVALID_DATA_LEN));
	return (0);
}

static void
io_read(struct nvmf_cmd *cmd)
{
	struct namespace *ns = cmd->ns;
	uint64_t off, len;
	uint16_t sc;

	if ((sc = io_data_range(cmd, &off, &len)) != 0) {
		cmd_complete_status(cmd, sc);
		return;
	}
	if (io_injected(cmd, IO_READ))
		return;
	cmd->dir = DIR_C2H;
	cmd->c2h_len = len;
	if (ns->mem != NULL) {
		const uint8_t *src = ram_data(ns, off, len);

		if (src != NULL) {
			/* One block holds its stripe until it is sent, or
			 * waits for the write that has it (atomic.c). */
			if (src == ns->mem + off && atomic_covers(ns, len) &&
			    !atomic_hold_read(cmd, off, io_read))
				return;
			cmd->iov[0].iov_base = (void *)src;
			cmd->iov[0].iov_len = len;
			cmd->iovcnt = 1;
			cmd_complete_status(cmd, NVME_SC_SUCCESS);
			return;
		}
	}
	if (cmd_alloc_buf(cmd, len) != 0) {
		cmd_complete_status(cmd, NVME_SC_INTERNAL);
		return;
	}
	io_submit_atomic(cmd, IO_READ, off, len);
}

static void
io_write_ready(struct nvmf_cmd *cmd)
{
	if (cmd->ns->mem != NULL && cmd->buf == NULL) {
		/* The data already landed in namespace memory. */
		cmd_complete_status(cmd, NVME_SC_SUCCESS);
		return;
	}
	io_submit_atomic(cmd, IO_WRITE, cmd->io.offset, cmd->io.len);
}

static void
io_write(struct nvmf_cmd *cmd)
{
	struct namespace *ns = cmd->ns;
	uint64_t off, len;
	uint16_t sc;

	if (ns->readonly) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_NS_WRITE_PROTECTED));
		return;
	}
	if ((sc = io_data_range(cmd, &off, &len)) != 0) {
		cmd_complete_status(cmd, sc);
		return;
	}
	if (io_injected(cmd, IO_WRITE))
		return;
	cmd->dir = DIR_H2C;
	cmd->io.offset = off;
	cmd->io.len = len;
	/* Into namespace memory once it is populated; until then through a
	 * buffer, and the backend populates it off the loop.  One block goes
	 * in whole (atomic.c): from the capsule if its stripe is free, else
	 * through a buffer, never as it arrives. */
	if (ns->mem != NULL && atomic_covers(ns, len) && cmd->icd != NULL &&
	    ram_ready(ns, off, len) &&
	    atomic_ram_write(ns, off, cmd->icd, len)) {
		cmd->icd = NULL;
		cmd_complete_status(cmd, NVME_SC_SUCCESS);
		return;
	}
	if (ns->mem != NULL && !atomic_covers(ns, len) &&
	    ram_ready(ns, off, len)) {
		cmd->iov[0].iov_base = ns->mem + off;
		cmd->iov[0].iov_len = len;
		cmd->iovcnt = 1;
	} else if (cmd_alloc_buf(cmd, len) != 0) {
		cmd_complete_status(cmd, NVME_SC_INTERNAL);
		return;
	}
	cmd_fetch_data(cmd, io_write_ready);
}

static void
io_flush(struct nvmf_cmd *cmd)
{
	if (!cmd->ns->vwc) {
		cmd_complete_status(cmd, NVME_SC_SUCCESS);
		return;
	}
	cmd->iovcnt = 0;
	io_submit(cmd, IO_FLUSH, 0, 0, io_done);
}

static void
io_write_zeroes(struct nvmf_cmd *cmd)
{
	uint64_t off, len;
	uint16_t sc;

	if (cmd->ns->readonly) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_NS_WRITE_PROTECTED));
		return;
	}
	if ((sc = io_range(cmd, &off, &len)) != 0) {
		cmd_complete_status(cmd, sc);
		return;
	}
	cmd->iovcnt = 0;
	io_submit_atomic(cmd, IO_WRITE_ZEROES, off, len);
}

/* Commands whose data are parameters (ranges, descriptors, the data to
 * compare): into a buffer, then ready(). */
void
io_fetch_params(struct nvmf_cmd *cmd, size_t len,
    void (*ready)(struct nvmf_cmd *))
{
	if (cmd_alloc_buf(cmd, len) != 0) {
		cmd_complete_status(cmd, NVME_SC_INTERNAL);
		return;
	}
	cmd->dir = DIR_H2C;
	cmd_fetch_data(cmd, ready);
}

/* Dataset Management: deallocate each range in turn (cmd->seq counts). */
static void
dsm_next(struct nvmf_io *io, int err)
{
	struct nvmf_cmd *cmd = io_cmd(io);
	struct namespace *ns = cmd->ns;
	uint32_t nr = (cmd->sqe.cdw10 & 0xff) + 1;
	const uint8_t *r;
	uint64_t slba, nlb;

	/* Deallocation is advisory: a failed range does not fail the rest. */
	while (cmd->seq < nr) {
		r = (const uint8_t *)cmd->buf + 16 * cmd->seq++;
		nlb = get_le32(r + 4);
		slba = get_le64(r + 8);
		if (nlb == 0)
			continue;
		io_submit(cmd, IO_DISCARD, slba << ns->lba_shift,
		    nlb << ns->lba_shift, dsm_next);
		return;
	}
	cmd_complete_status(cmd, NVME_SC_SUCCESS);
}

static void
dsm_ready(struct nvmf_cmd *cmd)
{
	struct namespace *ns = cmd->ns;
	uint32_t nr = (cmd->sqe.cdw10 & 0xff) + 1;
	uint64_t cap = ns_nlb(ns);

	/* Check every range before touching any. */
	for (uint32_t i = 0; i < nr; i++) {
		const uint8_t *r = (const uint8_t *)cmd->buf + 16 * i;
		uint64_t nlb = get_le32(r + 4), slba = get_le64(r + 8);

		if (nlb > 0 && !lba_fits(cap, slba, nlb)) {
			cmd_complete_status(cmd,
			    NVME_SC_DNR(NVME_SC_LBA_RANGE));
			return;
		}
	}
	if (!(cmd->sqe.cdw11 & (1u << 2)) || ns->readonly) {
		/* Only attributes (no AD): nothing to do. */
		cmd_complete_status(cmd, ns->readonly && (cmd->sqe.cdw11 & 4) ?
		    NVME_SC_DNR(NVME_SC_NS_WRITE_PROTECTED) : NVME_SC_SUCCESS);
		return;
	}
	cmd->seq = 0;
	cmd->iovcnt = 0;
	dsm_next(&cmd->io, 0);
}

static void
io_dsm(struct nvmf_cmd *cmd)
{
	uint32_t nr = (cmd->sqe.cdw10 & 0xff) + 1;

	if (cmd->data_len < nr * 16 || cmd->data_len > 4096) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_SGL_INVALID_DATA_LEN));
		return;
	}
	io_fetch_params(cmd, cmd->data_len, dsm_ready);
}

/*
 * Verify: the blocks must be readable.  RAM always is; other backends read
 * them into a pool buffer (VSL keeps it to one transfer) and drop the data.
 */
static void
io_verify(struct nvmf_cmd *cmd)
{
	uint64_t off, len;
	uint16_t sc;

	if ((sc = io_range(cmd, &off, &len)) != 0) {
		cmd_complete_status(cmd, sc);
		return;
	}
	if (len > running_config->mdts) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		return;
	}
	if (io_injected(cmd, IO_READ))
		return;
	if (cmd->ns->mem != NULL) {
		cmd_complete_status(cmd, NVME_SC_SUCCESS);
		return;
	}
	if (cmd_alloc_buf(cmd, len) != 0) {
		cmd_complete_status(cmd, NVME_SC_INTERNAL);
		return;
	}
	io_submit(cmd, IO_READ, off, len, io_done);
}

/*
 * Copy (descriptor formats 0 and 1): each source range is read into buf2 and
 * written at the destination, one after the other; cmd->seq counts the
 * steps, two per range (read, then write).  The destination of range i is
 * SDLBA plus the blocks of the ranges before it.
 */
/* A source range descriptor's length: format 1 has wider protection tags
 * after the same SLBA and NLB. */
static size_t
copy_desc_len(const struct nvmf_cmd *cmd)
{
	return (((cmd->sqe.cdw12 >> 8) & 0xf) == 1 ? 40 : 32);
}

static void
copy_range(const struct nvmf_cmd *cmd, uint32_t i, uint64_t *slba,
    uint64_t *nlb)
{
	const uint8_t *d = (const uint8_t *)cmd->buf + copy_desc_len(cmd) * i;

	*slba = get_le64(d + 8);
	*nlb = (uint64_t)get_le16(d + 16) + 1;
}

static void
copy_next(struct nvmf_io *io, int err)
{
	struct nvmf_cmd *cmd = io_cmd(io);
	struct namespace *ns = cmd->ns;
	uint32_t nr = (cmd->sqe.cdw12 & 0xff) + 1, i = cmd->seq / 2;
	uint64_t dst = cmd->sqe.cdw10 | (uint64_t)cmd->sqe.cdw11 << 32;
	uint64_t slba, nlb;

	if (err != 0) {
		cmd_complete_status(cmd, io_errno_status(cmd->seq % 2 ?
		    IO_READ : IO_WRITE, err));
		return;
	}
	if (i >= nr) {
		cmd_complete_status(cmd, NVME_SC_SUCCESS);
		return;
	}
	copy_range(cmd, i, &slba, &nlb);
	cmd->iov[0].iov_base = cmd->buf2;
	cmd->iov[0].iov_len = nlb << ns->lba_shift;
	cmd->iovcnt = 1;
	if (cmd->seq++ % 2 == 0) {
		io_submit(cmd, IO_READ, slba << ns->lba_shift,
		    nlb << ns->lba_shift, copy_next);
		return;
	}
	for (uint32_t j = 0; j < i; j++) {
		uint64_t s, n;

		copy_range(cmd, j, &s, &n);
		dst += n;
	}
	io_submit(cmd, IO_WRITE, dst << ns->lba_shift, nlb << ns->lba_shift,
	    copy_next);
}

static void
copy_ready(struct nvmf_cmd *cmd)
{
	struct namespace *ns = cmd->ns;
	uint32_t nr = (cmd->sqe.cdw12 & 0xff) + 1;
	uint64_t dst = cmd->sqe.cdw10 | (uint64_t)cmd->sqe.cdw11 << 32;
	uint64_t total = 0, range_max, slba, nlb, cap = ns_nlb(ns);

	range_max = MINIMUM(running_config->mdts >> ns->lba_shift,
	    NVMFD_COPY_RANGE_BLOCKS);
	/* Check every range, and the destination, before copying any. */
	for (uint32_t i = 0; i < nr; i++) {
		copy_range(cmd, i, &slba, &nlb);
		if (nlb > range_max) {
			cmd_complete_status(cmd,
			    NVME_SC_DNR(NVME_SC_CMD_SIZE_LIMIT));
			return;
		}
		if (!lba_fits(cap, slba, nlb)) {
			cmd_complete_status(cmd,
			    NVME_SC_DNR(NVME_SC_LBA_RANGE));
			return;
		}
		total += nlb;
	}
	if (total > NVMFD_COPY_MAX_BLOCKS) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_CMD_SIZE_LIMIT));
		return;
	}
	if (!lba_fits(cap, dst, total)) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_LBA_RANGE));
		return;
	}
	cmd->buf2_len = range_max << ns->lba_shift;
	if ((cmd->buf2 = bufpool_get(cmd->qp->loop->pool, cmd->buf2_len)) ==
	    NULL) {
		cmd_complete_status(cmd, NVME_SC_INTERNAL);
		return;
	}
	cmd->seq = 0;
	copy_next(&cmd->io, 0);
}

static void
io_copy(struct nvmf_cmd *cmd)
{
	uint32_t nr = (cmd->sqe.cdw12 & 0xff) + 1;
	uint8_t fmt = (cmd->sqe.cdw12 >> 8) & 0xf;

	if (cmd->ns->readonly) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_NS_WRITE_PROTECTED));
		return;
	}
	/* Formats 0 and 1 differ only in the protection tags after NLB
	 * (format 1's descriptor is 40 bytes, not 32), and nvmfd formats
	 * no namespace with protection information.  2 and 3 (another
	 * namespace as source) are not offered in OCFS. */
	if (fmt > 1) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		return;
	}
	if (nr > NVMFD_COPY_RANGES) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_CMD_SIZE_LIMIT));
		return;
	}
	if (cmd->data_len != nr * copy_desc_len(cmd)) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_SGL_INVALID_DATA_LEN));
		return;
	}
	io_fetch_params(cmd, cmd->data_len, copy_ready);
}

/* Compare: host data in buf, media data read into buf2, then memcmp;
 * cmd->next gets the outcome (the fused pair goes on with its write). */
static void
compare_read_done(struct nvmf_io *io, int err)
{
	struct nvmf_cmd *cmd = io_cmd(io);

	if (err != 0) {
		cmd->next(cmd, io_errno_status(IO_READ, err));
		return;
	}
	cmd->next(cmd, memcmp(cmd->buf, cmd->buf2, io->len) == 0 ?
	    NVME_SC_SUCCESS : NVME_SC_DNR(NVME_SC_COMPARE_FAILED));
}

void
io_compare_media(struct nvmf_cmd *cmd,
    void (*then)(struct nvmf_cmd *, uint16_t))
{
	struct namespace *ns = cmd->ns;
	uint64_t off = cmd->io.offset, len = cmd->io.len;
	const uint8_t *media;

	cmd->next = then;
	if (ns->mem != NULL && (media = ram_data(ns, off, len)) != NULL) {
		then(cmd, memcmp(cmd->buf, media, len) == 0 ?
		    NVME_SC_SUCCESS : NVME_SC_DNR(NVME_SC_COMPARE_FAILED));
		return;
	}
	cmd->buf2_len = len;
	if ((cmd->buf2 = bufpool_get(cmd->qp->loop->pool, len)) == NULL) {
		then(cmd, NVME_SC_INTERNAL);
		return;
	}
	cmd->iov[0].iov_base = cmd->buf2;
	cmd->iov[0].iov_len = len;
	cmd->iovcnt = 1;
	io_submit(cmd, IO_READ, off, len, compare_read_done);
}

static void
compare_ready(struct nvmf_cmd *cmd)
{
	io_compare_media(cmd, cmd_complete_status);
}

static void
io_compare(struct nvmf_cmd *cmd)
{
	uint64_t off, len;
	uint16_t sc;

	if ((sc = io_data_range(cmd, &off, &len)) != 0) {
		cmd_complete_status(cmd, sc);
		return;
	}
	cmd->io.offset = off;
	cmd->io.len = len;
	io_fetch_params(cmd, len, compare_ready);
}

void
io_dispatch(struct nvmf_cmd *cmd)
{
	struct controller *ctrl = cmd->qp->ctrl;
	uint16_t sc;

	if ((cmd->ns = namespace_find(ctrl->subsys, cmd->sqe.nsid)) == NULL) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_NS));
		return;
	}
	cmd->ns_epoch = ns_hold(cmd->ns);	/* released with the command */
	cmd->start_ns = cur_loop->now;
	/* No DNR: the host retries on another path. */
	if ((sc = ana_io_status(ctrl->subsys, cmd->ns, ctrl->port->id)) != 0) {
		cmd_complete_status(cmd, sc);
		return;
	}
	cmd->resumed = false;
	io_execute(cmd);
}

/* Commands that take part in reservations and fused operations. */
bool
io_opc_writes(uint8_t opc)
{
	return (opc == NVME_CMD_WRITE || opc == NVME_CMD_WRITE_ZEROES ||
	    opc == NVME_CMD_DSM || opc == NVME_CMD_COPY ||
	    opc == NVME_CMD_FLUSH || opc == NVME_CMD_WRITE_UNCOR);
}

/* A command whose namespace is held; again for one held back (fused.c). */
void
io_execute(struct nvmf_cmd *cmd)
{
	struct namespace *ns = cmd->ns;
	uint16_t sc;

	/* No reservation (the usual case): one atomic load, no lock. */
	if (atomic_load_explicit(&ns->resv_rtype,
	    memory_order_acquire) != RESV_NONE &&
	    (sc = resv_check_slow(cmd)) != 0) {
		cmd_complete_status(cmd, sc);
		return;
	}
	/* Fused pairs, and writes while one runs: one load each otherwise. */
	if (((cmd->sqe.flags & NVME_FUSE_MASK) ||
	    (cmd->qp->fused_first && !cmd->resumed)) && fused_dispatch(cmd))
		return;
	if (atomic_load(&ns->write_gate) && io_opc_writes(cmd->sqe.opc) &&
	    fused_hold_back(cmd))
		return;
	switch (cmd->sqe.opc) {
	case NVME_CMD_READ:
		io_read(cmd);
		break;
	case NVME_CMD_WRITE:
		io_write(cmd);
		break;
	case NVME_CMD_FLUSH:
		io_flush(cmd);
		break;
	case NVME_CMD_WRITE_ZEROES:
		io_write_zeroes(cmd);
		break;
	case NVME_CMD_DSM:
		io_dsm(cmd);
		break;
	case NVME_CMD_COMPARE:
		io_compare(cmd);
		break;
	case NVME_CMD_VERIFY:
		io_verify(cmd);
		break;
	case NVME_CMD_COPY:
		io_copy(cmd);
		break;
	case NVME_CMD_RESV_REGISTER:
	case NVME_CMD_RESV_REPORT:
	case NVME_CMD_RESV_ACQUIRE:
	case NVME_CMD_RESV_RELEASE:
		resv_dispatch(cmd);
		break;
	default:
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_OPCODE));
		break;
	}
}
