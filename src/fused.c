/*
 * Fused Compare and Write (the FUSE bits of the SQE): a Compare marked
 * first, then a Write marked second for the same namespace and LBA range,
 * next to each other in one queue.  Their data must come in the capsule,
 * so the pair is whole when its second command arrives and nothing of it
 * waits on the wire.
 *
 * A pair owns its namespace while it runs; other pairs queue.  Owning sets
 * ns->write_gate, which the write path loads (one atomic): a write that
 * finds it set is held back (its in-capsule data copied to a pool buffer)
 * and dispatched again on its own loop when the pair is done.  Before it
 * compares, the pair waits for every command that started before the gate
 * closed (ns_drain), so no other write lands between its compare and its
 * write, from any queue.  A write of one block that was parked for its
 * block's stripe (atomic.c) is not counted, so the drain does not wait for
 * it: once it has the stripe it looks at the gate again and waits for the
 * pair.  A pair of one block also holds that stripe from before its
 * compare until its write is done, so that no read of the block, which no
 * gate stops, sees it half done.  A pair that waited (for its turn, the
 * drain, the stripe) checks its range again: a shrink meanwhile fails it
 * with LBA Out of Range.  A mismatch fails the Compare with Compare Failure
 * and the Write with Command Aborted due to Failed Fused Command.
 *
 * Commands held back, queued pairs and a first waiting for its second are
 * not counted in the namespace's epoch (a drain must not wait for them) but
 * in ns->held_back, which keeps the namespace from being freed under them.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"

struct ns_fused {
	pthread_mutex_t	mtx;
	bool		busy;			/* a pair owns the namespace */
	TAILQ_HEAD(, nvmf_cmd) held;		/* writes held back */
	TAILQ_HEAD(, nvmf_cmd) pairs;		/* firsts waiting their turn */
};

int
fused_attach(struct namespace *ns)
{
	struct ns_fused *f;

	if (ns->fused != NULL)
		return (0);
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return (-1);
	pthread_mutex_init(&f->mtx, NULL);
	TAILQ_INIT(&f->held);
	TAILQ_INIT(&f->pairs);
	ns->fused = f;
	return (0);
}

void
fused_detach(struct namespace *ns)
{
	if (ns->fused == NULL)
		return;
	pthread_mutex_destroy(&ns->fused->mtx);
	free(ns->fused);
	ns->fused = NULL;
}

/* The capsule's data into the command's own buffer (it is valid only
 * during dispatch). */
static uint16_t
keep_data(struct nvmf_cmd *cmd, uint64_t len)
{
	if (cmd->icd == NULL || cmd->icd_len < len)
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	if (cmd_alloc_buf(cmd, len) != 0)
		return (NVME_SC_INTERNAL);
	memcpy(cmd->buf, cmd->icd, len);
	cmd->icd = NULL;
	cmd->dir = DIR_H2C;
	return (0);
}

static void
first_fail(struct nvmf_cmd *first, uint16_t sc)
{
	ns_take_back(first);
	cmd_complete_status(first, sc);
}

static void fused_release(struct namespace *);
static void fused_run(struct nvmf_cmd *);

static void
fused_written(struct nvmf_io *io, int err)
{
	struct nvmf_cmd *second = (struct nvmf_cmd *)((char *)io -
	    offsetof(struct nvmf_cmd, io));

	/* Let the next one in before completing: completion may drop the
	 * last hold on the namespace. */
	atomic_unlock_pair(second->fused_peer);
	fused_release(second->ns);
	cmd_complete_status(second->fused_peer, NVME_SC_SUCCESS);
	cmd_complete_status(second, err ? io_errno_status(IO_WRITE, err) :
	    NVME_SC_SUCCESS);
}

static void
fused_compared(struct nvmf_cmd *first, uint16_t sc)
{
	struct nvmf_cmd *second = first->fused_peer;

	if (sc != NVME_SC_SUCCESS) {
		atomic_unlock_pair(first);
		fused_release(first->ns);
		cmd_complete_status(first, sc);
		cmd_complete_status(second, NVME_SC_DNR(NVME_SC_FUSED_FAILED));
		return;
	}
	io_submit(second, IO_WRITE, second->io.offset, second->io.len,
	    fused_written);
}

/* Its host is gone: nothing to run the pair for. */
static void
fused_abort_dead(struct nvmf_cmd *first)
{
	fused_release(first->ns);
	cmd_complete_status(first, NVME_SC_ABORT_SQ_DELETED);
	cmd_complete_status(first->fused_peer, NVME_SC_ABORT_SQ_DELETED);
}

/*
 * The namespace is the pair's and the earlier commands are done; again
 * when a pair of one block parked for its block's stripe (atomic.c) gets
 * it.  Either wait may have outlasted a shrink that cut its range.
 */
static void
fused_compare(struct nvmf_cmd *first)
{
	if (first->qp->state == QP_DEAD) {
		fused_abort_dead(first);
		return;
	}
	if (!io_still_fits(first)) {
		fused_compared(first, NVME_SC_DNR(NVME_SC_LBA_RANGE));
		return;
	}
	if (atomic_covers(first->ns, first->io.len) &&
	    !atomic_lock_pair(first, fused_compare))
		return;
	io_compare_media(first, fused_compared);
}

static void
fused_drained(void *arg)
{
	fused_compare(arg);
}

static void
fused_run(struct nvmf_cmd *first)
{
	struct nvmf_cmd *own[2] = { first, first->fused_peer };

	ns_drain(first->ns, own, 2, fused_drained, first);
}

/* A queued pair's turn came (a message on its loop). */
static void
fused_turn_msg(void *arg)
{
	struct nvmf_cmd *first = arg;

	ns_take_back(first);
	ns_take_back(first->fused_peer);
	if (first->qp->state == QP_DEAD)
		fused_abort_dead(first);
	else
		fused_run(first);
	loop_finish_turn(cur_loop);
}

static void
fused_start(struct nvmf_cmd *first)
{
	struct namespace *ns = first->ns;
	struct ns_fused *f = ns->fused;

	pthread_mutex_lock(&f->mtx);
	if (f->busy) {
		ns_set_aside(first);
		ns_set_aside(first->fused_peer);
		TAILQ_INSERT_TAIL(&f->pairs, first, link);
		pthread_mutex_unlock(&f->mtx);
		return;
	}
	f->busy = true;
	/* Before the drain moves the epoch on: a write that counts itself
	 * in the new half then finds the gate closed. */
	atomic_store(&ns->write_gate, 1);
	pthread_mutex_unlock(&f->mtx);
	fused_run(first);
}

/* A held-back write goes on, on its loop (ns_unpark). */
static void
fused_held_resume(struct nvmf_cmd *cmd)
{
	void *saved = cmd->buf2;
	uint32_t saved_len = cmd->buf2_len;

	if (saved != NULL) {
		cmd->buf2 = NULL;
		cmd->icd = saved;
		cmd->icd_len = saved_len;
	}
	cmd->resumed = true;
	io_execute(cmd);
	/* Dispatch took what it needed from the capsule copy. */
	if (saved != NULL)
		bufpool_put(cur_loop->pool, saved, saved_len);
}

static void
fused_release(struct namespace *ns)
{
	struct ns_fused *f = ns->fused;
	struct nvmf_cmd *cmd, *next;
	TAILQ_HEAD(, nvmf_cmd) held = TAILQ_HEAD_INITIALIZER(held);

	pthread_mutex_lock(&f->mtx);
	if ((cmd = TAILQ_FIRST(&f->pairs)) != NULL) {
		/* The next pair keeps the gate closed. */
		TAILQ_REMOVE(&f->pairs, cmd, link);
		pthread_mutex_unlock(&f->mtx);
		loop_post(cmd->qp->owner, fused_turn_msg, cmd);
		return;
	}
	f->busy = false;
	atomic_store(&ns->write_gate, 0);
	TAILQ_CONCAT(&held, &f->held, link);
	pthread_mutex_unlock(&f->mtx);
	TAILQ_FOREACH_SAFE(cmd, &held, link, next)
		ns_unpark(cmd);
}

/* Under f->mtx: is a pair running?  If not, the lock is let go. */
static bool
pair_running(struct ns_fused *f)
{
	if (f == NULL)
		return (false);
	pthread_mutex_lock(&f->mtx);
	if (!f->busy) {
		pthread_mutex_unlock(&f->mtx);
		return (false);
	}
	return (true);
}

/* Under f->mtx, which it lets go: park cmd until the pair is done. */
static void
hold_until_done(struct ns_fused *f, struct nvmf_cmd *cmd,
    void (*then)(struct nvmf_cmd *))
{
	ns_park(cmd, then);
	TAILQ_INSERT_TAIL(&f->held, cmd, link);
	pthread_mutex_unlock(&f->mtx);
}

/* A write met the closed gate: hold it back, unless the pair is gone. */
bool
fused_hold_back(struct nvmf_cmd *cmd)
{
	struct ns_fused *f = cmd->ns->fused;

	if (!pair_running(f))
		return (false);
	if (cmd->icd != NULL) {
		if ((cmd->buf2 = bufpool_get(cmd->qp->loop->pool,
		    cmd->icd_len)) == NULL) {
			pthread_mutex_unlock(&f->mtx);
			cmd_complete_status(cmd, NVME_SC_INTERNAL);
			return (true);
		}
		memcpy(cmd->buf2, cmd->icd, cmd->icd_len);
		cmd->buf2_len = cmd->icd_len;
		cmd->icd = NULL;
	}
	hold_until_done(f, cmd, fused_held_resume);
	return (true);
}

/*
 * A write of one block that waited for its stripe (atomic.c), its data in
 * hand, met the closed gate: it was not counted while it waited, so the
 * pair did not wait for it; it waits for the pair, to go on with then(cmd).
 */
bool
fused_hold_parked(struct nvmf_cmd *cmd, void (*then)(struct nvmf_cmd *))
{
	struct ns_fused *f = cmd->ns->fused;

	if (!pair_running(f))
		return (false);
	hold_until_done(f, cmd, then);
	return (true);
}

static bool
same_range(const struct nvmf_cmd *a, const struct nvmf_cmd *b)
{
	return (a->ns == b->ns && a->sqe.cdw10 == b->sqe.cdw10 &&
	    a->sqe.cdw11 == b->sqe.cdw11 &&
	    (a->sqe.cdw12 & 0xffff) == (b->sqe.cdw12 & 0xffff));
}

static uint16_t
second_check(struct nvmf_cmd *cmd, struct nvmf_cmd *first)
{
	uint64_t off, len;
	uint16_t sc;

	if (cmd->sqe.opc != NVME_CMD_WRITE || !same_range(cmd, first))
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	if (cmd->ns->readonly)
		return (NVME_SC_DNR(NVME_SC_NS_WRITE_PROTECTED));
	if ((sc = io_data_range(cmd, &off, &len)) != 0 ||
	    (sc = keep_data(cmd, len)) != 0)
		return (sc);
	cmd->io.offset = off;
	cmd->io.len = len;
	return (0);
}

/*
 * Commands with FUSE bits, and any command while a first waits for its
 * second.  Returns false for a plain command that goes on as usual.
 */
bool
fused_dispatch(struct nvmf_cmd *cmd)
{
	struct qpair *qp = cmd->qp;
	struct nvmf_cmd *first = qp->fused_first;
	unsigned fuse = cmd->sqe.flags & NVME_FUSE_MASK;
	uint64_t off, len;
	uint16_t sc;

	qp->fused_first = NULL;
	if (first != NULL && fuse != NVME_FUSE_SECOND)
		first_fail(first, NVME_SC_DNR(NVME_SC_FUSED_MISSING));
	switch (fuse) {
	case 0:
		return (false);
	case NVME_FUSE_FIRST:
		if (cmd->sqe.opc != NVME_CMD_COMPARE || cmd->ns->fused == NULL)
			sc = NVME_SC_DNR(NVME_SC_INVALID_FIELD);
		else if ((sc = io_data_range(cmd, &off, &len)) == 0 &&
		    (sc = keep_data(cmd, len)) == 0) {
			cmd->io.offset = off;
			cmd->io.len = len;
			cmd->fused_peer = NULL;
			ns_set_aside(cmd);
			qp->fused_first = cmd;
			return (true);
		}
		cmd_complete_status(cmd, sc);
		return (true);
	case NVME_FUSE_SECOND:
		if (first == NULL) {
			cmd_complete_status(cmd,
			    NVME_SC_DNR(NVME_SC_FUSED_MISSING));
			return (true);
		}
		if ((sc = second_check(cmd, first)) != 0) {
			first_fail(first, NVME_SC_DNR(NVME_SC_FUSED_FAILED));
			cmd_complete_status(cmd, sc);
			return (true);
		}
		ns_take_back(first);
		first->fused_peer = cmd;
		cmd->fused_peer = first;
		fused_start(first);
		return (true);
	default:
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		return (true);
	}
}

/* The queue goes away with a first still waiting for its second. */
void
fused_qpair_closing(struct qpair *qp)
{
	struct nvmf_cmd *first = qp->fused_first;

	if (first == NULL)
		return;
	qp->fused_first = NULL;
	first_fail(first, NVME_SC_ABORT_SQ_DELETED);
}
