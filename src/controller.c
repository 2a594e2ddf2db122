/*
 * Controllers: life cycle (create, keep-alive, reset, teardown), the admin
 * command set and asynchronous events.  Runs on the main loop; I/O queues
 * live on workers and are told to close with messages.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "nvmfd.h"

struct discovery_ctrl_list discovery_controllers =
    TAILQ_HEAD_INITIALIZER(discovery_controllers);
static unsigned ncontrollers, ndisc_controllers;

static void kato_arm(struct controller *);

static void kato_arm_ms(struct controller *, uint64_t ms);

/* The timer runs at the granularity Identify states (KAS): a host's KATO is
 * given one granule more before the controller gives up on it. */
#define KATO_GRACE_MS	(NVMFD_KAS * 100)

/* The last sign of life: a command on any queue (Traffic Based Keep Alive,
 * which Identify advertises) or an authentication message. */
static uint64_t
ctrl_last_traffic(struct controller *ctrl)
{
	uint64_t last = atomic_load(&ctrl->auth_last_ns), t;

	if (ctrl->admin != NULL &&
	    (t = __atomic_load_n(&ctrl->admin->last_cmd_ns,
	    __ATOMIC_RELAXED)) > last)
		last = t;
	for (uint16_t q = 1; ctrl->ioq != NULL && q <= ctrl->max_qid; q++)
		if (ctrl->ioq[q] != NULL &&
		    (t = __atomic_load_n(&ctrl->ioq[q]->last_cmd_ns,
		    __ATOMIC_RELAXED)) > last)
			last = t;
	return (last);
}

static void
kato_expired(evutil_socket_t fd, short what, void *arg)
{
	struct controller *ctrl = arg;
	uint64_t now = now_ns(), last = ctrl_last_traffic(ctrl);
	uint64_t idle_ms = now > last ? (now - last) / 1000000 : 0;

	/* A queue busy authenticating (slow DH on a slow host) is traffic. */
	if (atomic_load(&ctrl->auth_busy) > 0) {
		kato_arm(ctrl);
		return;
	}
	if (idle_ms < (uint64_t)ctrl->kato_ms + KATO_GRACE_MS) {
		kato_arm_ms(ctrl, (uint64_t)ctrl->kato_ms + KATO_GRACE_MS -
		    idle_ms);
		return;
	}
	log_peer_warnx("controller %u (%s): no keep alive within %u ms",
	    ctrl->cntlid, ctrl->hostnqn, ctrl->kato_ms);
	ctrl_destroy(ctrl, "keep alive timeout");
	loop_finish_turn(main_loop);
}

static void
kato_arm_ms(struct controller *ctrl, uint64_t ms)
{
	struct timeval tv = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000 * 1000),
	};

	if (ctrl->kato_ms == 0 || ctrl->dying)
		evtimer_del(ctrl->kato_ev);
	else
		evtimer_add(ctrl->kato_ev, &tv);
}

static void
kato_arm(struct controller *ctrl)
{
	/* 64 bits: a host's KATO may be up to 2^32 - 1 ms. */
	kato_arm_ms(ctrl, (uint64_t)ctrl->kato_ms + KATO_GRACE_MS);
}

void
ctrl_keep_alive(struct controller *ctrl)
{
	kato_arm(ctrl);
}

static bool
cntlid_in_use(struct subsystem *ss, uint16_t id)
{
	return (ctrl_find(ss, id) != NULL);
}

struct controller *
ctrl_create(struct subsystem *ss, struct port *port, const char *subnqn,
    const char *hostnqn, const uint8_t *hostid, uint32_t kato_ms)
{
	struct controller *ctrl;
	static uint16_t next_disc_cntlid = 1;
	uint16_t *next = ss ? &ss->next_cntlid : &next_disc_cntlid;
	int tries, lo = 1, hi = NVMF_CNTLID_MAX;

	/* Separate limits: a full set of I/O controllers must not lock
	 * hosts out of discovery. */
	if (ss != NULL ? ncontrollers >= running_config->max_controllers :
	    ndisc_controllers >= running_config->max_disc_controllers)
		return (NULL);
	if ((ctrl = calloc(1, sizeof(*ctrl))) == NULL)
		return (NULL);
	ctrl->subsys = ss;
	ctrl->port = port;
	snprintf(ctrl->hostnqn, sizeof(ctrl->hostnqn), "%s", hostnqn);
	snprintf(ctrl->subnqn, sizeof(ctrl->subnqn), "%s", subnqn);
	memcpy(ctrl->hostid, hostid, sizeof(ctrl->hostid));
	/* Dynamic controller IDs, unique within the subsystem, from its
	 * range: nodes serving one subsystem are given ranges apart. */
	if (ss != NULL) {
		lo = ss->cntlid_min ? ss->cntlid_min : running_config->cntlid_min;
		hi = ss->cntlid_min ? ss->cntlid_max : running_config->cntlid_max;
		if (lo == 0 || hi < lo) {
			lo = 1;
			hi = NVMF_CNTLID_MAX;
		}
	}
	for (tries = 0; tries <= hi - lo; tries++) {
		uint16_t id = *next < lo || *next > hi ? lo : *next;

		*next = id >= hi ? lo : id + 1;
		if (ss == NULL || !cntlid_in_use(ss, id)) {
			ctrl->cntlid = id;
			break;
		}
	}
	if (ctrl->cntlid == 0) {
		free(ctrl);
		return (NULL);
	}
	ctrl->max_qid = ss ? ss->max_io_queues : 0;
	if ((ss && (ctrl->ioq = calloc(ctrl->max_qid + 1,
	    sizeof(*ctrl->ioq))) == NULL) ||
	    (ctrl->kato_ev = evtimer_new(main_loop->base, kato_expired,
	    ctrl)) == NULL) {
		free(ctrl->ioq);
		free(ctrl);
		return (NULL);
	}
	ctrl->kato_ms = kato_ms;
	pthread_mutex_init(&ctrl->auth_mtx, NULL);
	ctrl->refs = 1;		/* the admin queue */
	ctrl->num_io_queues = ss ? ss->max_io_queues - 1 : 0;
	ctrl->features[NVME_FEAT_TEMP_THRESH] = 0x0157;	/* 343 K */
	ctrl->created = (uint64_t)time(NULL);
	/* A page cache or disk cache is on until the host turns it off. */
	ctrl->vwc_enabled = true;
	pthread_mutex_init(&ctrl->err_mtx, NULL);
	if (ss)
		TAILQ_INSERT_TAIL(&ss->controllers, ctrl, entry);
	else
		TAILQ_INSERT_TAIL(&discovery_controllers, ctrl, entry);
	if (ss)
		ncontrollers++;
	else
		ndisc_controllers++;
	kato_arm(ctrl);
	return (ctrl);
}

struct controller *
ctrl_find(struct subsystem *ss, uint16_t cntlid)
{
	struct controller *ctrl;

	TAILQ_FOREACH(ctrl, &ss->controllers, entry)
		if (ctrl->cntlid == cntlid && !ctrl->dying)
			return (ctrl);
	return (NULL);
}

static void
ctrl_unref(struct controller *ctrl)
{
	if (--ctrl->refs > 0)
		return;
	if (ctrl->subsys)
		TAILQ_REMOVE(&ctrl->subsys->controllers, ctrl, entry);
	else
		TAILQ_REMOVE(&discovery_controllers, ctrl, entry);
	if (ctrl->subsys)
		ncontrollers--;
	else
		ndisc_controllers--;
	free(ctrl->disc_log);
	pthread_mutex_destroy(&ctrl->err_mtx);
	event_free(ctrl->kato_ev);
	pthread_mutex_destroy(&ctrl->auth_mtx);
	dhchap_key_clear(&ctrl->auth_cred.host);
	dhchap_key_clear(&ctrl->auth_cred.ctrl);
	if (ctrl->subsys)
		subsystem_maybe_free(ctrl->subsys);
	free(ctrl->ioq);
	free(ctrl);
}

static void
ioq_kill_msg(void *arg)
{
	struct qpair *qp = arg;

	qpair_close(qp, "controller reset or deleted");
	loop_finish_turn(cur_loop);
	qpair_unref(qp);
}

static void
ctrl_kill_io_queues(struct controller *ctrl)
{
	for (uint16_t q = 1; ctrl->ioq && q <= ctrl->max_qid; q++) {
		struct qpair *qp = ctrl->ioq[q];

		if (qp == NULL)
			continue;
		qpair_ref(qp);
		loop_post(qp->owner, ioq_kill_msg, qp);
	}
}

/* Tear the association down: I/O queues first, then the admin queue. */
void
ctrl_destroy(struct controller *ctrl, const char *why)
{
	if (ctrl->dying)
		return;
	log_peer_info("controller %u of %s for %s: %s", ctrl->cntlid,
	    ctrl->subnqn, ctrl->hostnqn, why);
	ctrl->dying = true;
	evtimer_del(ctrl->kato_ev);
	ctrl_kill_io_queues(ctrl);
	if (ctrl->admin)
		qpair_close(ctrl->admin, why);
}

/* The admin queue stopped: release held AERs, the I/O queues go too. */
void
ctrl_admin_closing(struct controller *ctrl)
{
	/* Completing the last AER can finish the admin queue, which drops
	 * its reference on us: hold one until we are done here. */
	ctrl->refs++;
	for (int i = 0; i < ctrl->naer; i++)
		cmd_complete_status(ctrl->aer[i], NVME_SC_ABORT_SQ_DELETED);
	ctrl->naer = 0;
	if (!ctrl->dying) {
		log_peer_info("controller %u of %s for %s: admin queue closed",
		    ctrl->cntlid, ctrl->subnqn, ctrl->hostnqn);
		ctrl->dying = true;
		evtimer_del(ctrl->kato_ev);
		ctrl_kill_io_queues(ctrl);
	}
	ctrl_unref(ctrl);
}

void
ctrl_admin_gone(struct controller *ctrl)
{
	struct qpair *qp = ctrl->admin;

	ctrl->admin = NULL;
	if (qp)
		qpair_unref(qp);
	ctrl_unref(ctrl);
}

/* An I/O queue finished on its worker (message on the main loop). */
void
ctrl_ioq_gone(struct qpair *qp)
{
	struct controller *ctrl = qp->ctrl;

	if (ctrl->ioq[qp->qid] == qp) {
		ctrl->ioq[qp->qid] = NULL;
		ctrl->nioq--;
	}
	/* Its counters stay with the controller (the queue is idle now). */
	health_stats_add(&ctrl->gone_stats, &qp->stats);
	qpair_unref(qp);
	ctrl_unref(ctrl);
}

/* CC writes: enable, disable (reset) and shutdown (NVMe base 3.7). */
void
ctrl_set_cc(struct controller *ctrl, uint32_t cc)
{
	uint32_t old = ctrl->cc;

	ctrl->cc = cc;
	if ((cc & NVME_CC_SHN_MASK) && !(old & NVME_CC_SHN_MASK)) {
		ctrl_kill_io_queues(ctrl);
		ctrl->csts = (ctrl->csts & ~NVME_CSTS_SHST_MASK) |
		    NVME_CSTS_SHST_COMPLETE;
	}
	if ((cc & NVME_CC_EN) && !(old & NVME_CC_EN)) {
		uint32_t iosqes = (cc >> 16) & 0xf, iocqes = (cc >> 20) & 0xf;
		uint32_t mps = (cc >> 7) & 0xf, css = (cc >> 4) & 0x7;

		/* I/O queue entry sizes only matter to I/O controllers. */
		if (mps != 0 || css != 0 || (ctrl->subsys &&
		    (iosqes != 6 || iocqes != 4))) {
			log_peer_warnx("controller %u: bad CC 0x%08x", ctrl->cntlid, cc);
			ctrl->csts |= NVME_CSTS_CFS;
			return;
		}
		ctrl->csts = NVME_CSTS_RDY;
	} else if (!(cc & NVME_CC_EN) && (old & NVME_CC_EN)) {
		ctrl_kill_io_queues(ctrl);
		ctrl->csts &= ~(NVME_CSTS_RDY | NVME_CSTS_CFS);
		if (!(cc & NVME_CC_SHN_MASK))
			ctrl->csts &= ~NVME_CSTS_SHST_MASK;
		ctrl->aen_masked = 0;
		ctrl->naen_pending = 0;
	}
}

/* ------------------------------------------------------------ events */

static uint32_t
aen_log_page(uint32_t dw0)
{
	return ((dw0 >> 16) & 0xff);
}

/* Queue or deliver an asynchronous event (masked until its log is read). */
void
ctrl_event(struct controller *ctrl, uint32_t dw0)
{
	uint32_t lid = aen_log_page(dw0);
	uint32_t bit = lid == NVME_LOG_DISCOVERY ? 1u << 31 : 1u << (lid & 31);

	if (ctrl->dying || (ctrl->aen_masked & bit))
		return;
	for (int i = 0; i < ctrl->naen_pending; i++)
		if (ctrl->aen_pending[i] == dw0)
			return;
	if (ctrl->naer > 0) {
		struct nvmf_cmd *cmd = ctrl->aer[--ctrl->naer];

		ctrl->aen_masked |= bit;
		cmd->cqe.dw0 = dw0;
		cmd_complete_status(cmd, NVME_SC_SUCCESS);
		return;
	}
	if (ctrl->naen_pending < (int)nitems(ctrl->aen_pending))
		ctrl->aen_pending[ctrl->naen_pending++] = dw0;
}

/*
 * A command failed: keep it in the Error Information log (newest last, the
 * oldest overwritten) and set the More bit, which tells the host that log
 * holds more about it.  Called on the loop that completes the command;
 * errors are rare, so a mutex is cheap here.
 */
void
ctrl_error_record(struct controller *ctrl, struct nvmf_cmd *cmd)
{
	const struct nvme_sqe *sqe = &cmd->sqe;
	bool has_lba = ctrl->subsys != NULL && cmd->qp->qid != 0 &&
	    (sqe->opc == NVME_CMD_READ || sqe->opc == NVME_CMD_WRITE ||
	    sqe->opc == NVME_CMD_COMPARE || sqe->opc == NVME_CMD_WRITE_ZEROES);
	uint8_t *e;

	cmd->cqe.status |= NVME_STATUS_MORE;
	pthread_mutex_lock(&ctrl->err_mtx);
	e = ctrl->err_log[ctrl->err_count % NVMFD_ERR_ENTRIES];
	memset(e, 0, 64);
	put_le64(e, ++ctrl->err_count);
	put_le16(e + 8, cmd->qp->qid);
	put_le16(e + 10, sqe->cid);
	put_le16(e + 12, cmd->cqe.status & ~1u);	/* status, no phase */
	put_le16(e + 14, 0xffff);		/* parameter location: none */
	if (has_lba)
		put_le64(e + 16, sqe->cdw10 | (uint64_t)sqe->cdw11 << 32);
	put_le32(e + 24, sqe->nsid);
	e[29] = NVMF_TRTYPE_TCP;
	pthread_mutex_unlock(&ctrl->err_mtx);
}

/* How many controllers exist (main loop). */
void
ctrl_counts(unsigned *io, unsigned *disc)
{
	*io = ncontrollers;
	*disc = ndisc_controllers;
}

uint64_t
ctrl_error_count(struct controller *ctrl)
{
	uint64_t n;

	pthread_mutex_lock(&ctrl->err_mtx);
	n = ctrl->err_count;
	pthread_mutex_unlock(&ctrl->err_mtx);
	return (n);
}

/* The Error Information log page, newest entry first; the rest zeros. */
size_t
ctrl_error_log(struct controller *ctrl, uint8_t *p)
{
	uint64_t n;

	pthread_mutex_lock(&ctrl->err_mtx);
	n = MINIMUM(ctrl->err_count, NVMFD_ERR_ENTRIES);
	for (uint64_t i = 0; i < n; i++)
		memcpy(p + 64 * i, ctrl->err_log[(ctrl->err_count - 1 - i) %
		    NVMFD_ERR_ENTRIES], 64);
	pthread_mutex_unlock(&ctrl->err_mtx);
	return (64 * NVMFD_ERR_ENTRIES);
}

void
ctrl_log_read(struct controller *ctrl, uint8_t lid, bool rae)
{
	uint32_t bit = lid == NVME_LOG_DISCOVERY ? 1u << 31 : 1u << (lid & 31);

	if (!rae)
		ctrl->aen_masked &= ~bit;
}

/* A namespace of ss appeared, disappeared or changed. */
void
ctrl_notify_ns_changed(struct subsystem *ss, uint32_t nsid)
{
	struct controller *ctrl;

	TAILQ_FOREACH(ctrl, &ss->controllers, entry) {
		bool dup = false;

		if (ctrl->nchanged_ns >= 0) {
			for (int i = 0; i < ctrl->nchanged_ns; i++)
				dup |= ctrl->changed_ns[i] == nsid;
			if (!dup && ctrl->nchanged_ns ==
			    (int)nitems(ctrl->changed_ns))
				ctrl->nchanged_ns = -1;
			else if (!dup)
				ctrl->changed_ns[ctrl->nchanged_ns++] = nsid;
		}
		if (ctrl->aen_cfg & NVME_AEN_CFG_NS_ATTR)
			ctrl_event(ctrl, NVME_AER_NS_CHANGED);
	}
}

static void
admin_aer(struct nvmf_cmd *cmd)
{
	struct controller *ctrl = cmd->qp->ctrl;

	if (ctrl->naer > NVMFD_AERL) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_AER_LIMIT));
		return;
	}
	ctrl->aer[ctrl->naer++] = cmd;
	if (ctrl->naen_pending > 0) {
		uint32_t dw0 = ctrl->aen_pending[0];

		memmove(ctrl->aen_pending, ctrl->aen_pending + 1,
		    --ctrl->naen_pending * sizeof(uint32_t));
		ctrl_event(ctrl, dw0);
	}
}

/* ---------------------------------------------------------- features */

static int admin_c2h_buf(struct nvmf_cmd *, uint32_t);

/* Host Identifier (81h): the Host ID of the Connect, always 128 bits here
 * (EXHID must be set); reservations key registrations by it.  Set Features
 * cannot change it on fabrics. */
static void
feat_host_id(struct nvmf_cmd *cmd, uint8_t sel)
{
	struct controller *ctrl = cmd->qp->ctrl;

	if (sel == 3) {
		cmd->cqe.dw0 = 0;
		cmd_complete_status(cmd, NVME_SC_SUCCESS);
		return;
	}
	if (ctrl->subsys == NULL || sel > 3 || !(cmd->sqe.cdw11 & 1) ||
	    cmd->data_len < 16) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		return;
	}
	if (admin_c2h_buf(cmd, 16) != 0)
		return;
	memcpy(cmd->buf, ctrl->hostid, 16);
	cmd_complete_status(cmd, NVME_SC_SUCCESS);
}

/* Reservation Notification Mask (82h) and Reservation Persistence (83h):
 * per namespace, so they take the command's NSID. */
static uint16_t
feat_resv(struct nvmf_cmd *cmd, uint8_t fid, bool set, uint32_t *v)
{
	struct controller *ctrl = cmd->qp->ctrl;
	uint32_t nsid = cmd->sqe.nsid;
	struct namespace *ns;

	if (ctrl->subsys == NULL)
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	if (fid == NVME_FEAT_RESV_MASK)
		return (set ? resv_mask_set(ctrl, nsid, *v) :
		    resv_mask_get(ctrl, nsid, v));
	if ((ns = namespace_find(ctrl->subsys, nsid)) == NULL ||
	    ns->resv == NULL)
		return (NVME_SC_DNR(NVME_SC_INVALID_NS));
	if (set && (*v & ~1u))
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	return (set ? resv_set_ptpl(ns, *v & 1) : resv_get_ptpl(ns, v));
}

static void
admin_set_features(struct nvmf_cmd *cmd)
{
	struct controller *ctrl = cmd->qp->ctrl;
	uint8_t fid = cmd->sqe.cdw10 & 0xff;
	uint32_t v = cmd->sqe.cdw11;

	if (cmd->sqe.cdw10 & (1u << 31)) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_FEATURE_NOT_SAVEABLE));
		return;
	}
	switch (fid) {
	case NVME_FEAT_NUM_QUEUES: {
		uint32_t nsq = v & 0xffff, ncq = v >> 16, n;

		if (ctrl->subsys == NULL || nsq == 0xffff || ncq == 0xffff)
			goto invalid;
		if (ctrl->nioq > 0) {
			cmd_complete_status(cmd, NVME_SC_CMD_SEQ_ERROR);
			return;
		}
		n = MINIMUM(MINIMUM(nsq, ncq), ctrl->max_qid - 1u);
		ctrl->num_io_queues = n;
		cmd->cqe.dw0 = n | (n << 16);
		break;
	}
	case NVME_FEAT_ASYNC_EVENT:
		ctrl->aen_cfg = v & (ctrl->subsys ? NVME_AEN_CFG_NS_ATTR |
		    NVME_AEN_CFG_ANA_CHANGE : NVME_AEN_CFG_DISC_CHANGE);
		break;
	case NVME_FEAT_KATO:
		ctrl->kato_ms = v;
		kato_arm(ctrl);
		break;
	case NVME_FEAT_RESV_MASK:
	case NVME_FEAT_RESV_PERSIST:
		cmd_complete_status(cmd, feat_resv(cmd, fid, true, &v));
		return;
	case NVME_FEAT_VOLATILE_WC:
		/* Only where Identify says there is a cache to switch. */
		if (ctrl->subsys == NULL || !subsystem_has_vwc(ctrl->subsys))
			goto invalid;
		ctrl->vwc_enabled = v & 1;
		break;
	case NVME_FEAT_ARBITRATION:
	case NVME_FEAT_POWER_MGMT:
	case NVME_FEAT_TEMP_THRESH:
	case NVME_FEAT_ERR_RECOVERY:
	case NVME_FEAT_IRQ_COALESCE:
	case NVME_FEAT_WRITE_ATOMIC:
		if (ctrl->subsys == NULL)
			goto invalid;
		ctrl->features[fid] = v;
		break;
	default:
		goto invalid;
	}
	cmd_complete_status(cmd, NVME_SC_SUCCESS);
	return;
invalid:
	cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
}

static void
admin_get_features(struct nvmf_cmd *cmd)
{
	struct controller *ctrl = cmd->qp->ctrl;
	uint8_t fid = cmd->sqe.cdw10 & 0xff;
	uint8_t sel = (cmd->sqe.cdw10 >> 8) & 7;
	uint32_t v;

	switch (fid) {
	case NVME_FEAT_HOST_ID:
		feat_host_id(cmd, sel);
		return;
	case NVME_FEAT_NUM_QUEUES:
		if (ctrl->subsys == NULL)
			goto invalid;
		v = ctrl->num_io_queues | (ctrl->num_io_queues << 16);
		break;
	case NVME_FEAT_ASYNC_EVENT:
		v = ctrl->aen_cfg;
		break;
	case NVME_FEAT_KATO:
		v = ctrl->kato_ms;
		break;
	case NVME_FEAT_RESV_MASK:
	case NVME_FEAT_RESV_PERSIST: {
		uint16_t sc = sel == 3 ? 0 : feat_resv(cmd, fid, false, &v);

		if (sc != 0) {
			cmd_complete_status(cmd, sc);
			return;
		}
		if (sel == 3)
			v = 1u << 1 | 1u << 2;	/* per namespace, changeable */
		cmd->cqe.dw0 = v;
		cmd_complete_status(cmd, NVME_SC_SUCCESS);
		return;
	}
	case NVME_FEAT_VOLATILE_WC:
		if (ctrl->subsys == NULL || !subsystem_has_vwc(ctrl->subsys))
			goto invalid;
		v = ctrl->vwc_enabled;
		break;
	case NVME_FEAT_ARBITRATION:
	case NVME_FEAT_POWER_MGMT:
	case NVME_FEAT_TEMP_THRESH:
	case NVME_FEAT_ERR_RECOVERY:
	case NVME_FEAT_IRQ_COALESCE:
	case NVME_FEAT_WRITE_ATOMIC:
		if (ctrl->subsys == NULL)
			goto invalid;
		v = ctrl->features[fid];
		break;
	default:
		goto invalid;
	}
	if (sel == 3)
		v = 1u << 2;	/* supported capabilities: changeable */
	else if (sel > 3)
		goto invalid;
	cmd->cqe.dw0 = v;
	cmd_complete_status(cmd, NVME_SC_SUCCESS);
	return;
invalid:
	cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
}

/* ------------------------------------------------- identify, log page */

static int
admin_c2h_buf(struct nvmf_cmd *cmd, uint32_t len)
{
	if (cmd_alloc_buf(cmd, len) != 0) {
		cmd_complete_status(cmd, NVME_SC_INTERNAL);
		return (-1);
	}
	cmd->dir = DIR_C2H;
	cmd->c2h_len = MINIMUM(len, cmd->data_len);
	cmd->iov[0].iov_len = cmd->c2h_len;
	return (0);
}

static void
admin_identify(struct nvmf_cmd *cmd)
{
	struct controller *ctrl = cmd->qp->ctrl;
	uint8_t cns = cmd->sqe.cdw10 & 0xff;
	uint8_t csi = cmd->sqe.cdw11 >> 24;
	uint32_t nsid = cmd->sqe.nsid;
	uint16_t status = NVME_SC_SUCCESS;

	if (ctrl->subsys == NULL && cns != NVME_ID_CNS_CTRL) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		return;
	}
	if (admin_c2h_buf(cmd, 4096) != 0)
		return;
	switch (cns) {
	case NVME_ID_CNS_CTRL:
		identify_ctrl(ctrl, cmd->buf);
		break;
	case NVME_ID_CNS_NS:
		status = identify_ns(ctrl, nsid, cmd->buf);
		break;
	case NVME_ID_CNS_NS_ACTIVE_LIST:
		if (nsid >= 0xfffffffe)
			status = NVME_SC_DNR(NVME_SC_INVALID_NS);
		else
			identify_active_ns(ctrl, nsid, cmd->buf);
		break;
	case NVME_ID_CNS_NS_DESC_LIST:
		status = identify_ns_descs(ctrl, nsid, cmd->buf);
		break;
	case NVME_ID_CNS_CS_CTRL:
		if (csi != 0)
			status = NVME_SC_DNR(NVME_SC_INVALID_FIELD);
		else
			identify_ctrl_nvm(ctrl, cmd->buf);
		break;
	case NVME_ID_CNS_CS_NS:
		if (csi != 0)
			status = NVME_SC_DNR(NVME_SC_INVALID_FIELD);
		else if (namespace_find(ctrl->subsys, nsid) == NULL)
			status = NVME_SC_DNR(NVME_SC_INVALID_NS);
		break;
	case NVME_ID_CNS_NS_CS_INDEP:
		status = identify_ns_indep(ctrl, nsid, cmd->buf);
		break;
	default:
		status = NVME_SC_DNR(NVME_SC_INVALID_FIELD);
		break;
	}
	cmd_complete_status(cmd, status);
}

static void
admin_get_log_page(struct nvmf_cmd *cmd)
{
	struct controller *ctrl = cmd->qp->ctrl;
	uint32_t cdw10 = cmd->sqe.cdw10, cdw11 = cmd->sqe.cdw11;
	uint8_t lid = cdw10 & 0xff;
	uint8_t lsp = (cdw10 >> 8) & 0x7f;
	bool rae = cdw10 & (1u << 15);
	uint64_t numd = ((uint64_t)(cdw11 & 0xffff) << 16 | (cdw10 >> 16)) + 1;
	uint64_t off = cmd->sqe.cdw12 | (uint64_t)cmd->sqe.cdw13 << 32;
	uint64_t len = numd * 4;
	uint16_t status;

	if ((off & 3) || len > cmd->data_len || len > running_config->mdts) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		return;
	}
	if (admin_c2h_buf(cmd, len) != 0)
		return;
	status = logpage_get(ctrl, lid, lsp, cmd->sqe.nsid, off, cmd->buf, len,
	    rae);
	cmd_complete_status(cmd, status);
}

/* --------------------------------------------------------- dispatch */

void
ctrl_dispatch_admin(struct nvmf_cmd *cmd)
{
	struct qpair *qp = cmd->qp;
	struct controller *ctrl = qp->ctrl;
	uint8_t opc = cmd->sqe.opc;

	cmd->dir = DIR_NONE;
	if (opc == NVME_FABRICS_COMMAND) {
		fabrics_dispatch(cmd);
		return;
	}
	if (ctrl == NULL || qp->state != QP_ACTIVE) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_CMD_SEQ_ERROR));
		return;
	}
	if (qp->auth_required && !qp->authenticated) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_AUTH_REQUIRED));
		return;
	}
	if (!(ctrl->csts & NVME_CSTS_RDY)) {
		cmd_complete_status(cmd, NVME_SC_CMD_SEQ_ERROR);
		return;
	}
	switch (opc) {
	case NVME_ADM_IDENTIFY:
		admin_identify(cmd);
		break;
	case NVME_ADM_GET_LOG_PAGE:
		admin_get_log_page(cmd);
		break;
	case NVME_ADM_SET_FEATURES:
		admin_set_features(cmd);
		break;
	case NVME_ADM_GET_FEATURES:
		admin_get_features(cmd);
		break;
	case NVME_ADM_ASYNC_EVENT:
		admin_aer(cmd);
		break;
	case NVME_ADM_KEEP_ALIVE:
		ctrl_keep_alive(ctrl);
		cmd_complete_status(cmd, NVME_SC_SUCCESS);
		break;
	case NVME_ADM_ABORT:
		if (ctrl->subsys == NULL)
			goto invalid;
		/* Commands are never queued here long enough to abort one;
		 * DW0 bit 0 set means "not aborted". */
		cmd->cqe.dw0 = 1;
		cmd_complete_status(cmd, NVME_SC_SUCCESS);
		break;
	default:
	invalid:
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_OPCODE));
		break;
	}
}

void
ctrl_dispatch_io(struct nvmf_cmd *cmd)
{
	cmd->dir = DIR_NONE;
	if (cmd->sqe.opc == NVME_FABRICS_COMMAND) {
		fabrics_dispatch(cmd);
		return;
	}
	if (cmd->qp->auth_required && !cmd->qp->authenticated) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_AUTH_REQUIRED));
		return;
	}
	io_dispatch(cmd);
}
