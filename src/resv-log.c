/*
 * Reservation notices on the controller side (main loop): the Reservation
 * Notification log page (80h), one entry handed out per read, oldest first;
 * the Reservation Notification Mask feature (82h) per namespace; and the
 * asynchronous event that says the log has something.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"
#include "reservation.h"

#define RESV_MASK_BITS	(1u << RESV_NOTICE_REG_PREEMPTED | \
	    1u << RESV_NOTICE_RELEASED | 1u << RESV_NOTICE_PREEMPTED)

struct resv_log_msg {
	char		subnqn[NVMFD_NQN_MAX + 1];
	uint32_t	nsid;
	struct resv_notices nt;
};

static void
resv_log_add(struct controller *ctrl, uint32_t nsid, uint8_t type)
{
	struct resv_log_entry *e;

	if (ctrl->resv_mask[nsid] & (1u << type))
		return;
	/* A full queue loses the notice; the count still moves, so the
	 * host sees the gap. */
	if (++ctrl->resv_log_count == 0)
		ctrl->resv_log_count = 1;
	if (ctrl->resv_nlog < RESV_LOG_DEPTH) {
		e = &ctrl->resv_log[ctrl->resv_nlog++];
		e->count = ctrl->resv_log_count;
		e->nsid = nsid;
		e->type = type;
	}
	ctrl_event(ctrl, NVME_AER_RESV_LOG);
}

static void
resv_log_msg(void *arg)
{
	struct resv_log_msg *m = arg;
	struct subsystem *ss = subsystem_find(running_config, m->subnqn);
	struct controller *ctrl;

	if (ss != NULL)
		TAILQ_FOREACH(ctrl, &ss->controllers, entry)
			for (int i = 0; i < m->nt.n; i++)
				if (!ctrl->dying && memcmp(ctrl->hostid,
				    m->nt.v[i].hostid, 16) == 0)
					resv_log_add(ctrl, m->nsid,
					    m->nt.v[i].type);
	free(m);
	loop_finish_turn(main_loop);
}

/* From any loop: tell the controllers of the hosts named. */
void
resv_log_post(const char *subnqn, uint32_t nsid, const struct resv_notices *nt)
{
	struct resv_log_msg *m;

	if ((m = malloc(sizeof(*m))) == NULL) {
		log_warnx("%s namespace %u: reservation notices lost: out of "
		    "memory", subnqn, nsid);
		return;
	}
	snprintf(m->subnqn, sizeof(m->subnqn), "%s", subnqn);
	m->nsid = nsid;
	m->nt = *nt;
	loop_post(main_loop, resv_log_msg, m);
}

/* Log page 80h: the oldest notice, taken off the queue (type 0 if none). */
uint16_t
resv_log_page(struct controller *ctrl, uint8_t *p)
{
	struct resv_log_entry *e = &ctrl->resv_log[0];

	if (ctrl->resv_nlog == 0)
		return (NVME_SC_SUCCESS);
	put_le64(p, e->count);
	p[8] = e->type;
	p[9] = MINIMUM(ctrl->resv_nlog - 1, 255);
	put_le32(p + 12, e->nsid);
	memmove(ctrl->resv_log, ctrl->resv_log + 1,
	    --ctrl->resv_nlog * sizeof(*e));
	return (NVME_SC_SUCCESS);
}

/* Feature 82h: NSID FFFFFFFFh sets every namespace's mask. */
uint16_t
resv_mask_set(struct controller *ctrl, uint32_t nsid, uint32_t mask)
{
	if (mask & ~RESV_MASK_BITS)
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	if (nsid == 0xffffffff) {
		memset(ctrl->resv_mask, mask, sizeof(ctrl->resv_mask));
		return (NVME_SC_SUCCESS);
	}
	if (namespace_find(ctrl->subsys, nsid) == NULL)
		return (NVME_SC_DNR(NVME_SC_INVALID_NS));
	ctrl->resv_mask[nsid] = mask;
	return (NVME_SC_SUCCESS);
}

uint16_t
resv_mask_get(struct controller *ctrl, uint32_t nsid, uint32_t *mask)
{
	if (namespace_find(ctrl->subsys, nsid) == NULL)
		return (NVME_SC_DNR(NVME_SC_INVALID_NS));
	*mask = ctrl->resv_mask[nsid];
	return (NVME_SC_SUCCESS);
}
