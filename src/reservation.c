/*
 * NVMe reservations: the rules (pure functions on a struct resv_state, unit
 * tested) and the four commands on I/O queues (worker loops).  A command
 * takes the namespace's mutex, changes a copy of the state, saves it when
 * PTPL is on, and only then makes it current; notices go to the main loop,
 * which owns the controllers (resv-log.c).
 *
 * Preempt and Abort preempts like Preempt, then waits: it completes only
 * once every command that started on the namespace before it (in the
 * backend, or a write whose data is still arriving) has completed, so when
 * the host sees it done, nothing the preempted hosts sent earlier can still
 * land.  Those commands are not cut short; every command the preempted
 * hosts send after the preemption gets Reservation Conflict.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"
#include "reservation.h"

/* CDW10 fields */
#define RESV_ACTION(cdw10)	((cdw10) & 0x7)
#define RESV_IEKEY(cdw10)	(((cdw10) >> 3) & 1)
#define RESV_RTYPE(cdw10)	(((cdw10) >> 8) & 0xff)
#define RESV_CPTPL(cdw10)	((cdw10) >> 30)

static bool
all_registrants(uint8_t rtype)
{
	return (rtype == RESV_WRITE_EXCL_ALL_REGS ||
	    rtype == RESV_EXCL_ACCESS_ALL_REGS);
}

/*
 * Who may do what (NVMe base 2.0, "Command Behavior in the Presence of a
 * Reservation").  Writes: only the holder under the two plain types, every
 * registrant under the others.  Reads: anyone under the write exclusive
 * types; the holder, or for the registrants-only and all-registrants kinds
 * any registrant, under the exclusive access types.
 */
bool
resv_access_allowed(uint8_t rtype, enum resv_role role, bool write)
{
	if (rtype == RESV_NONE || role == RESV_ROLE_HOLDER)
		return (true);
	switch (rtype) {
	case RESV_WRITE_EXCL:
		return (!write);
	case RESV_EXCL_ACCESS:
		return (false);
	case RESV_WRITE_EXCL_REG_ONLY:
	case RESV_WRITE_EXCL_ALL_REGS:
		return (!write || role == RESV_ROLE_REGISTRANT);
	case RESV_EXCL_ACCESS_REG_ONLY:
	case RESV_EXCL_ACCESS_ALL_REGS:
		return (role == RESV_ROLE_REGISTRANT);
	}
	return (false);
}

static int
reg_find(const struct resv_state *st, const uint8_t hostid[16])
{
	for (int i = 0; i < st->nregs; i++)
		if (memcmp(st->regs[i].hostid, hostid, 16) == 0)
			return (i);
	return (-1);
}

enum resv_role
resv_role_of(const struct resv_state *st, const uint8_t hostid[16])
{
	if (reg_find(st, hostid) < 0)
		return (RESV_ROLE_OTHER);
	if (st->rtype != RESV_NONE && (all_registrants(st->rtype) ||
	    memcmp(st->holder, hostid, 16) == 0))
		return (RESV_ROLE_HOLDER);
	return (RESV_ROLE_REGISTRANT);
}

static void
notice_add(struct resv_notices *nt, const uint8_t hostid[16], uint8_t type)
{
	if (nt->n == (int)nitems(nt->v))
		return;
	memcpy(nt->v[nt->n].hostid, hostid, 16);
	nt->v[nt->n++].type = type;
}

/* Every registrant but the issuer hears of it. */
static void
notice_others(const struct resv_state *st, const uint8_t hostid[16],
    uint8_t type, struct resv_notices *nt)
{
	for (int i = 0; i < st->nregs; i++)
		if (memcmp(st->regs[i].hostid, hostid, 16) != 0)
			notice_add(nt, st->regs[i].hostid, type);
}

static void
reg_remove(struct resv_state *st, int i)
{
	st->regs[i] = st->regs[--st->nregs];
}

/* The reservation goes; under the registrants-only and all-registrants
 * types the other registrants are told. */
static void
resv_released(struct resv_state *st, const uint8_t hostid[16],
    struct resv_notices *nt)
{
	if (st->rtype != RESV_WRITE_EXCL && st->rtype != RESV_EXCL_ACCESS)
		notice_others(st, hostid, RESV_NOTICE_RELEASED, nt);
	st->rtype = RESV_NONE;
	memset(st->holder, 0, 16);
}

/* The issuer must be a registrant with that key (unless IEKEY). */
static int
reg_check(const struct resv_state *st, const uint8_t hostid[16],
    uint64_t crkey, bool iekey)
{
	int i = reg_find(st, hostid);

	if (i < 0 || (!iekey && st->regs[i].key != crkey))
		return (-1);
	return (i);
}

uint16_t
resv_do_register(struct resv_state *st, const uint8_t hostid[16],
    uint32_t cdw10, uint64_t crkey, uint64_t nrkey, bool ptpl_capable,
    struct resv_notices *nt)
{
	uint32_t cptpl = RESV_CPTPL(cdw10);
	bool iekey = RESV_IEKEY(cdw10);
	int i;

	if (cptpl == 1 || (cptpl == 3 && !ptpl_capable))
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	switch (RESV_ACTION(cdw10)) {
	case 0:		/* register */
		if (nrkey == 0)
			return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		if ((i = reg_find(st, hostid)) >= 0) {
			if (st->regs[i].key != nrkey)
				return (NVME_SC_RESV_CONFLICT);
			break;
		}
		if (st->nregs == RESV_MAX_REGS)
			return (NVME_SC_INTERNAL);
		memcpy(st->regs[st->nregs].hostid, hostid, 16);
		st->regs[st->nregs++].key = nrkey;
		break;
	case 1:		/* unregister */
		if ((i = reg_check(st, hostid, crkey, iekey)) < 0)
			return (NVME_SC_RESV_CONFLICT);
		if (resv_role_of(st, hostid) == RESV_ROLE_HOLDER &&
		    (!all_registrants(st->rtype) || st->nregs == 1))
			resv_released(st, hostid, nt);
		reg_remove(st, i);
		break;
	case 2:		/* replace */
		if (nrkey == 0)
			return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		if ((i = reg_check(st, hostid, crkey, iekey)) < 0)
			return (NVME_SC_RESV_CONFLICT);
		st->regs[i].key = nrkey;
		break;
	default:
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	}
	if (cptpl >= 2)
		st->ptpl = cptpl == 3;
	st->gen++;
	return (NVME_SC_SUCCESS);
}

/* Unregister every other host registered with key; how many went. */
static int
preempt_key(struct resv_state *st, const uint8_t hostid[16], uint64_t key,
    bool any_key, struct resv_notices *nt)
{
	int n = 0;

	for (int i = st->nregs - 1; i >= 0; i--) {
		if (memcmp(st->regs[i].hostid, hostid, 16) == 0 ||
		    (!any_key && st->regs[i].key != key))
			continue;
		notice_add(nt, st->regs[i].hostid, RESV_NOTICE_REG_PREEMPTED);
		reg_remove(st, i);
		n++;
	}
	return (n);
}

static void
resv_take(struct resv_state *st, const uint8_t hostid[16], uint8_t rtype)
{
	st->rtype = rtype;
	memcpy(st->holder, hostid, 16);
}

static uint16_t
resv_preempt(struct resv_state *st, const uint8_t hostid[16], uint8_t rtype,
    uint64_t prkey, struct resv_notices *nt)
{
	int i;

	if (st->rtype == RESV_NONE) {
		/* Nothing held: only registrations to remove. */
		if (preempt_key(st, hostid, prkey, false, nt) == 0)
			return (NVME_SC_RESV_CONFLICT);
	} else if (all_registrants(st->rtype)) {
		if (prkey == 0) {
			preempt_key(st, hostid, 0, true, nt);
			resv_take(st, hostid, rtype);
		} else if (preempt_key(st, hostid, prkey, false, nt) == 0)
			return (NVME_SC_RESV_CONFLICT);
	} else if ((i = reg_find(st, st->holder)) >= 0 &&
	    st->regs[i].key == prkey) {
		/* The holder's key: the reservation changes hands (or type,
		 * when the holder preempts itself). */
		preempt_key(st, hostid, prkey, false, nt);
		resv_take(st, hostid, rtype);
	} else if (prkey == 0)
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	else if (preempt_key(st, hostid, prkey, false, nt) == 0)
		return (NVME_SC_RESV_CONFLICT);
	st->gen++;
	return (NVME_SC_SUCCESS);
}

uint16_t
resv_do_acquire(struct resv_state *st, const uint8_t hostid[16],
    uint32_t cdw10, uint64_t crkey, uint64_t prkey, struct resv_notices *nt)
{
	uint8_t rtype = RESV_RTYPE(cdw10);
	uint32_t action = RESV_ACTION(cdw10);

	if (action > 2 || rtype < RESV_WRITE_EXCL ||
	    rtype > RESV_EXCL_ACCESS_ALL_REGS)
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	if (reg_check(st, hostid, crkey, RESV_IEKEY(cdw10)) < 0)
		return (NVME_SC_RESV_CONFLICT);
	if (action != 0)	/* preempt, preempt and abort */
		return (resv_preempt(st, hostid, rtype, prkey, nt));
	if (st->rtype == RESV_NONE) {
		resv_take(st, hostid, rtype);
		return (NVME_SC_SUCCESS);
	}
	/* Acquiring again what one holds succeeds; any other is refused. */
	if (resv_role_of(st, hostid) == RESV_ROLE_HOLDER && st->rtype == rtype)
		return (NVME_SC_SUCCESS);
	return (NVME_SC_RESV_CONFLICT);
}

uint16_t
resv_do_release(struct resv_state *st, const uint8_t hostid[16],
    uint32_t cdw10, uint64_t crkey, struct resv_notices *nt)
{
	uint8_t rtype = RESV_RTYPE(cdw10);

	if (RESV_ACTION(cdw10) > 1)
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	if (reg_check(st, hostid, crkey, RESV_IEKEY(cdw10)) < 0)
		return (NVME_SC_RESV_CONFLICT);
	if (RESV_ACTION(cdw10) == 1) {		/* clear */
		notice_others(st, hostid, RESV_NOTICE_PREEMPTED, nt);
		st->rtype = RESV_NONE;
		memset(st->holder, 0, 16);
		st->nregs = 0;
		st->gen++;
		return (NVME_SC_SUCCESS);
	}
	if (rtype < RESV_WRITE_EXCL || rtype > RESV_EXCL_ACCESS_ALL_REGS)
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	/* Releasing what one does not hold does nothing. */
	if (resv_role_of(st, hostid) != RESV_ROLE_HOLDER)
		return (NVME_SC_SUCCESS);
	if (st->rtype != rtype)
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	resv_released(st, hostid, nt);
	return (NVME_SC_SUCCESS);
}

/*
 * Reservation Status, extended data structure: a 64-byte header (GEN,
 * RTYPE, REGCTL, PTPLS), then 64 bytes per registrant (CNTLID, RCSTS,
 * RKEY, HOSTID).  CNTLID is FFFFh: a host's registration is shared by all
 * its controllers.
 */
size_t
resv_report(const struct resv_state *st, uint8_t *buf, size_t len)
{
	uint8_t e[64];
	size_t need = 64 + 64 * (size_t)st->nregs;

	memset(e, 0, sizeof(e));
	put_le32(e, st->gen);
	e[4] = st->rtype;
	put_le16(e + 5, st->nregs);
	e[9] = st->ptpl;
	memcpy(buf, e, MINIMUM(len, 64));
	for (int i = 0; i < st->nregs; i++) {
		size_t off = 64 + 64 * (size_t)i;

		if (off >= len)
			break;
		memset(e, 0, sizeof(e));
		put_le16(e, 0xffff);
		e[2] = resv_role_of(st, st->regs[i].hostid) == RESV_ROLE_HOLDER;
		put_le64(e + 8, st->regs[i].key);
		memcpy(e + 16, st->regs[i].hostid, 16);
		memcpy(buf + off, e, MINIMUM(len - off, 64));
	}
	return (need);
}

/* ------------------------------------------------------ namespaces */

static void
resv_publish(struct namespace *ns)
{
	atomic_store_explicit(&ns->resv_rtype, ns->resv->st.rtype,
	    memory_order_release);
}

/* The state file of a namespace: its NGUID names it, stable across
 * restarts and unique within the daemon. */
int
resv_attach(struct namespace *ns, const char *state_dir, char *err,
    size_t errlen)
{
	struct ns_resv *r;
	char name[33];

	if (ns->resv != NULL)
		return (0);
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	pthread_mutex_init(&r->mtx, NULL);
	if (state_dir != NULL) {
		if (mkdir(state_dir, 0700) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "%s: %s", state_dir,
			    strerror(errno));
			goto fail;
		}
		for (int i = 0; i < 16; i++)
			snprintf(name + 2 * i, 3, "%02x", ns->nguid[i]);
		if (asprintf(&r->path, "%s/%s.resv", state_dir, name) == -1) {
			r->path = NULL;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (resv_state_load(r->path, &r->st, err, errlen) != 0)
			goto fail;
	}
	ns->resv = r;
	resv_publish(ns);
	if (r->st.ptpl)
		log_info("namespace %u: %d registrant(s) and reservation type "
		    "%u restored from %s", ns->nsid, r->st.nregs, r->st.rtype,
		    r->path);
	return (0);
fail:
	pthread_mutex_destroy(&r->mtx);
	free(r->path);
	free(r);
	return (-1);
}

void
resv_detach(struct namespace *ns)
{
	if (ns->resv == NULL)
		return;
	pthread_mutex_destroy(&ns->resv->mtx);
	free(ns->resv->path);
	free(ns->resv);
	ns->resv = NULL;
}

/* Make next the state: saved first when PTPL is (or was) on. */
static uint16_t
resv_commit(struct namespace *ns, struct resv_state *next)
{
	struct ns_resv *r = ns->resv;
	char err[256];

	if (r->path != NULL && (next->ptpl || r->st.ptpl) &&
	    resv_state_save(r->path, next, err, sizeof(err)) != 0) {
		log_warnx("namespace %u: %s", ns->nsid, err);
		return (NVME_SC_INTERNAL);
	}
	r->st = *next;
	resv_publish(ns);
	return (NVME_SC_SUCCESS);
}

/* A reservation exists (the caller saw resv_rtype != 0). */
uint16_t
resv_check_slow(struct nvmf_cmd *cmd)
{
	struct ns_resv *r = cmd->ns->resv;
	uint8_t opc = cmd->sqe.opc;
	bool ok;

	if (opc == NVME_CMD_RESV_REGISTER || opc == NVME_CMD_RESV_REPORT ||
	    opc == NVME_CMD_RESV_ACQUIRE || opc == NVME_CMD_RESV_RELEASE)
		return (0);
	pthread_mutex_lock(&r->mtx);
	ok = resv_access_allowed(r->st.rtype, resv_role_of(&r->st,
	    cmd->qp->ctrl->hostid), io_opc_writes(opc));
	pthread_mutex_unlock(&r->mtx);
	return (ok ? 0 : NVME_SC_RESV_CONFLICT);
}

/* Preempt and Abort completes once the earlier commands are done. */
static void
resv_drained(void *arg)
{
	cmd_complete_status(arg, NVME_SC_SUCCESS);
}

/* Data of Register (CRKEY, NRKEY), Acquire (CRKEY, PRKEY), Release (CRKEY) */
static size_t
resv_data_len(uint8_t opc)
{
	return (opc == NVME_CMD_RESV_RELEASE ? 8 : 16);
}

static void
resv_data_ready(struct nvmf_cmd *cmd)
{
	struct namespace *ns = cmd->ns;
	struct ns_resv *r = ns->resv;
	const uint8_t *d = cmd->buf, *hostid = cmd->qp->ctrl->hostid;
	uint64_t k1 = get_le64(d), k2 = 0;
	uint32_t cdw10 = cmd->sqe.cdw10;
	struct resv_notices nt;
	struct resv_state next;
	uint16_t sc;

	if (resv_data_len(cmd->sqe.opc) == 16)
		k2 = get_le64(d + 8);
	nt.n = 0;
	pthread_mutex_lock(&r->mtx);
	next = r->st;
	switch (cmd->sqe.opc) {
	case NVME_CMD_RESV_REGISTER:
		sc = resv_do_register(&next, hostid, cdw10, k1, k2,
		    r->path != NULL, &nt);
		break;
	case NVME_CMD_RESV_ACQUIRE:
		sc = resv_do_acquire(&next, hostid, cdw10, k1, k2, &nt);
		break;
	default:
		sc = resv_do_release(&next, hostid, cdw10, k1, &nt);
		break;
	}
	if (sc == NVME_SC_SUCCESS && (sc = resv_commit(ns, &next)) != 0)
		nt.n = 0;
	pthread_mutex_unlock(&r->mtx);
	if (nt.n > 0)
		resv_log_post(ns->subsys->nqn, ns->nsid, &nt);
	if (sc == NVME_SC_SUCCESS && cmd->sqe.opc == NVME_CMD_RESV_ACQUIRE &&
	    RESV_ACTION(cdw10) == 2)
		ns_drain(ns, &cmd, 1, resv_drained, cmd);
	else
		cmd_complete_status(cmd, sc);
}

static void
resv_do_report(struct nvmf_cmd *cmd)
{
	struct ns_resv *r = cmd->ns->resv;
	uint64_t len = ((uint64_t)cmd->sqe.cdw10 + 1) * 4;

	/* 64-bit host IDs (EDS=0) do not exist here: CTRATT says 128. */
	if (!(cmd->sqe.cdw11 & 1)) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_HOSTID_INCONSISTENT));
		return;
	}
	if (len > cmd->data_len) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_SGL_INVALID_DATA_LEN));
		return;
	}
	if (len > running_config->mdts) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		return;
	}
	if (cmd_alloc_buf(cmd, len) != 0) {
		cmd_complete_status(cmd, NVME_SC_INTERNAL);
		return;
	}
	memset(cmd->buf, 0, len);
	pthread_mutex_lock(&r->mtx);
	resv_report(&r->st, cmd->buf, len);
	pthread_mutex_unlock(&r->mtx);
	cmd->dir = DIR_C2H;
	cmd->c2h_len = len;
	cmd_complete_status(cmd, NVME_SC_SUCCESS);
}

/* Reservation Register, Report, Acquire, Release (cmd->ns held). */
void
resv_dispatch(struct nvmf_cmd *cmd)
{
	static const uint8_t zero[16];
	size_t need = resv_data_len(cmd->sqe.opc);

	if (cmd->ns->resv == NULL) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_OPCODE));
		return;
	}
	/* Registrations are keyed by host ID: a host without one cannot
	 * take part. */
	if (memcmp(cmd->qp->ctrl->hostid, zero, 16) == 0) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_HOSTID_INCONSISTENT));
		return;
	}
	if (cmd->sqe.opc == NVME_CMD_RESV_REPORT) {
		resv_do_report(cmd);
		return;
	}
	if (cmd->data_len < need || cmd->data_len > 4096) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_SGL_INVALID_DATA_LEN));
		return;
	}
	io_fetch_params(cmd, cmd->data_len, resv_data_ready);
}

/* Reservation Persistence feature (83h), from the admin queue. */
uint16_t
resv_get_ptpl(struct namespace *ns, uint32_t *dw0)
{
	pthread_mutex_lock(&ns->resv->mtx);
	*dw0 = ns->resv->st.ptpl;
	pthread_mutex_unlock(&ns->resv->mtx);
	return (NVME_SC_SUCCESS);
}

uint16_t
resv_set_ptpl(struct namespace *ns, bool on)
{
	struct ns_resv *r = ns->resv;
	struct resv_state next;
	uint16_t sc;

	if (on && r->path == NULL)
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	pthread_mutex_lock(&r->mtx);
	next = r->st;
	next.ptpl = on;
	sc = resv_commit(ns, &next);
	pthread_mutex_unlock(&r->mtx);
	return (sc);
}
