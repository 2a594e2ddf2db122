/*
 * Fabrics commands: Connect, Property Get/Set, Disconnect (NVMe over
 * Fabrics 1.1, section 3); Authentication Send/Receive go to auth.c.
 * Connect on an I/O queue hands the queue pair to a worker loop once the
 * response is queued: its authentication, if any, runs there.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "nvmfd.h"

#define CONNECT_SQE_QID		42
#define CONNECT_SQE_SQSIZE	44

/*
 * Connect Invalid Parameters, pointing at the offending field.  Most
 * refusals carry DNR: the same Connect can never succeed.
 */
static void
connect_refuse(struct nvmf_cmd *cmd, bool in_data, uint16_t off, uint16_t sc,
    bool dnr)
{
	cmd->cqe.dw0 = off | (in_data ? 1u << 16 : 0);
	cmd_complete_status(cmd, sc | (dnr ? NVME_DNR >> 1 : 0));
}

static void
connect_invalid(struct nvmf_cmd *cmd, bool in_data, uint16_t off, uint16_t sc)
{
	connect_refuse(cmd, in_data, off, sc, true);
}

/* An NQN field must end within its 256 bytes. */
static bool
nqn_terminated(const char *s)
{
	return (memchr(s, '\0', 256) != NULL);
}

/* "8-4-4-4-12" hex, the way nvme-cli prints a Host Identifier. */
void
hostid_format(const uint8_t id[16], char *buf, size_t len)
{
	snprintf(buf, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", id[0], id[1], id[2], id[3], id[4],
	    id[5], id[6], id[7], id[8], id[9], id[10], id[11], id[12], id[13],
	    id[14], id[15]);
}

static void
connect_data_ready(struct nvmf_cmd *cmd)
{
	struct qpair *qp = cmd->qp;
	const struct nvmf_connect_data *d = cmd->buf;
	struct config *cf = running_config;
	uint16_t qid = cmd->sqe.cdw10 >> 16;
	uint32_t sqsize = (cmd->sqe.cdw11 & 0xffff) + 1;
	uint8_t cattr = (cmd->sqe.cdw11 >> 16) & 0xff;
	uint32_t kato = cmd->sqe.cdw12;
	struct subsystem *ss = NULL;
	struct controller *ctrl;
	bool discovery;

	if (!nqn_terminated(d->subnqn) || d->subnqn[0] == '\0') {
		connect_invalid(cmd, true, NVMF_CONNECT_DATA_SUBNQN_OFF,
		    NVME_SC_CONNECT_INVALID_PARAM);
		return;
	}
	if (!nqn_terminated(d->hostnqn)) {
		connect_invalid(cmd, true, NVMF_CONNECT_DATA_HOSTNQN_OFF,
		    NVME_SC_CONNECT_INVALID_PARAM);
		return;
	}
	/* Over TLS the PSK identity named host and subsystem: the same. */
	if (qp->tls != NULL && !tls_conn_names(qp->tls, d->hostnqn,
	    d->subnqn)) {
		log_peer_warnx("%s: Connect as %.223s to %.223s does not match the "
		    "TLS PSK identity", qp->peer, d->hostnqn, d->subnqn);
		connect_invalid(cmd, true, NVMF_CONNECT_DATA_HOSTNQN_OFF,
		    NVME_SC_CONNECT_INVALID_HOST);
		return;
	}
	discovery = strcmp(d->subnqn, NVMF_DISCOVERY_NQN) == 0;
	if (discovery && !discovery_host_allowed(cf, d->hostnqn,
	    (struct sockaddr *)&qp->peer_sa)) {
		log_peer_warnx("%s: host %.223s not allowed to discover",
		    qp->peer, d->hostnqn);
		connect_invalid(cmd, true, NVMF_CONNECT_DATA_HOSTNQN_OFF,
		    NVME_SC_CONNECT_INVALID_HOST);
		return;
	}
	if (!discovery) {
		ss = subsystem_find(cf, d->subnqn);
		if (ss == NULL || !subsystem_on_port(ss, qp->port)) {
			/*
			 * No DNR: the subsystem may be (re)created at any
			 * time, and a host told not to retry gives up on it
			 * for good.
			 */
			log_peer_warnx("%s: connect to unknown subsystem %.223s",
			    qp->peer, d->subnqn);
			connect_refuse(cmd, true, NVMF_CONNECT_DATA_SUBNQN_OFF,
			    NVME_SC_CONNECT_INVALID_PARAM, false);
			return;
		}
		if (!subsystem_host_allowed(ss, d->hostnqn,
		    (struct sockaddr *)&qp->peer_sa)) {
			log_peer_warnx("%s: host %.223s not allowed on %s", qp->peer,
			    d->hostnqn, ss->nqn);
			connect_invalid(cmd, true, NVMF_CONNECT_DATA_HOSTNQN_OFF,
			    NVME_SC_CONNECT_INVALID_HOST);
			return;
		}
	}
	if (sqsize < 2 || sqsize > qp->port->max_queue_depth) {
		connect_invalid(cmd, false, CONNECT_SQE_SQSIZE,
		    NVME_SC_CONNECT_INVALID_PARAM);
		return;
	}

	if (qid == 0) {
		if (d->hostnqn[0] == '\0') {
			/* SPDK's initiator sends none by default. */
			char id[40];

			hostid_format(d->hostid, id, sizeof(id));
			log_peer_info("%s: empty host NQN, host identifier %s",
			    qp->peer, id);
		}
		if (d->cntlid != NVMF_CNTLID_DYNAMIC) {
			connect_invalid(cmd, true, NVMF_CONNECT_DATA_CNTLID_OFF,
			    NVME_SC_CONNECT_INVALID_PARAM);
			return;
		}
		ctrl = ctrl_create(ss, qp->port, d->subnqn, d->hostnqn,
		    d->hostid, kato);
		if (ctrl == NULL) {
			cmd_complete_status(cmd, NVME_SC_CONNECT_CTRL_BUSY);
			return;
		}
		ctrl->admin = qp;
		qpair_ref(qp);
		qp->ctrl = ctrl;
		qp->qid = 0;
		auth_ctrl_refresh(ctrl);
		log_peer_info("%s: %s controller %u for %s on %s (KATO %u ms)",
		    qp->peer, discovery ? "discovery" : "I/O", ctrl->cntlid,
		    d->hostnqn, d->subnqn, kato);
	} else {
		if (discovery) {
			connect_invalid(cmd, false, CONNECT_SQE_QID,
			    NVME_SC_CONNECT_INVALID_PARAM);
			return;
		}
		ctrl = ctrl_find(ss, d->cntlid);
		if (ctrl == NULL || strcmp(ctrl->hostnqn, d->hostnqn) != 0 ||
		    memcmp(ctrl->hostid, d->hostid, sizeof(d->hostid)) != 0) {
			connect_invalid(cmd, true, NVMF_CONNECT_DATA_CNTLID_OFF,
			    NVME_SC_CONNECT_INVALID_PARAM);
			return;
		}
		if (!(ctrl->csts & NVME_CSTS_RDY)) {
			cmd_complete_status(cmd, NVME_SC_CMD_SEQ_ERROR);
			return;
		}
		if (qid > ctrl->num_io_queues + 1 || ctrl->ioq[qid] != NULL) {
			/* ioq[] has max_qid + 1 slots: only index it in range. */
			log_peer_warnx("%s: controller %u: I/O queue %u %s", qp->peer,
			    ctrl->cntlid, qid, qid > ctrl->num_io_queues + 1 ?
			    "beyond the granted count" : "already connected");
			connect_invalid(cmd, false, CONNECT_SQE_QID,
			    NVME_SC_CONNECT_INVALID_PARAM);
			return;
		}
		ctrl->ioq[qid] = qp;
		ctrl->nioq++;
		ctrl->refs++;
		qpair_ref(qp);		/* dropped by ctrl_ioq_gone */
		qp->ctrl = ctrl;
		qp->qid = qid;
	}
	qp->sqflow_disabled = cattr & NVMF_CATTR_DISABLE_SQFLOW;
	if (qpair_set_depth(qp, sqsize) != 0) {
		cmd_complete_status(cmd, NVME_SC_INTERNAL);
		return;
	}
	cmd->cqe.dw0 = ctrl->cntlid;
	/* A host with a key authenticates every queue before using it. */
	if (ctrl->auth_cred.host.len != 0) {
		qp->auth_required = true;
		cmd->cqe.dw0 |= NVMF_CONNECT_AUTHREQ_ATR;
	}
	cmd_complete_status(cmd, NVME_SC_SUCCESS);
	if (qid != 0)
		qpair_handoff(qp, loop_pick_worker());
}

static void
fabrics_connect(struct nvmf_cmd *cmd)
{
	struct qpair *qp = cmd->qp;
	uint16_t recfmt = cmd->sqe.cdw10 & 0xffff;

	if (qp->state != QP_WAIT_CONNECT) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_CMD_SEQ_ERROR));
		return;
	}
	if (recfmt != 0) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_CONNECT_FORMAT));
		return;
	}
	/* The 1 KiB of connect data always travels in the capsule. */
	if (cmd->data_len != sizeof(struct nvmf_connect_data) || cmd->icd == NULL) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_SGL_INVALID_DATA_LEN));
		return;
	}
	if (cmd_alloc_buf(cmd, sizeof(struct nvmf_connect_data)) != 0) {
		cmd_complete_status(cmd, NVME_SC_INTERNAL);
		return;
	}
	cmd->dir = DIR_H2C;
	cmd_fetch_data(cmd, connect_data_ready);
}

static uint64_t
property_cap(struct controller *ctrl)
{
	uint64_t mqes = ctrl->port->max_queue_depth - 1;

	return (mqes |			/* MQES */
	    1ull << 16 |		/* CQR: contiguous queues required */
	    10ull << 24 |		/* TO: 5 s to become ready */
	    1ull << 37);		/* CSS: NVM command set */
}

static void
fabrics_property_get(struct nvmf_cmd *cmd)
{
	struct controller *ctrl = cmd->qp->ctrl;
	bool wide = (cmd->sqe.cdw10 & 7) == 1;
	uint32_t ofst = cmd->sqe.cdw11;
	uint64_t v;

	switch (ofst) {
	case NVME_REG_CAP:
		v = property_cap(ctrl);
		break;
	case NVME_REG_VS:
		v = NVME_VS(1, 3, 0);
		break;
	case NVME_REG_CC:
		v = ctrl->cc;
		break;
	case NVME_REG_CSTS:
		v = ctrl->csts;
		break;
	default:
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		return;
	}
	if ((cmd->sqe.cdw10 & 7) > 1 || wide != (ofst == NVME_REG_CAP)) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		return;
	}
	cmd->cqe.dw0 = (uint32_t)v;
	cmd->cqe.dw1 = (uint32_t)(v >> 32);
	cmd_complete_status(cmd, NVME_SC_SUCCESS);
}

static void
fabrics_property_set(struct nvmf_cmd *cmd)
{
	struct controller *ctrl = cmd->qp->ctrl;
	uint32_t ofst = cmd->sqe.cdw11;

	if ((cmd->sqe.cdw10 & 7) != 0 || ofst != NVME_REG_CC) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		return;
	}
	ctrl_set_cc(ctrl, cmd->sqe.cdw12);
	cmd_complete_status(cmd, NVME_SC_SUCCESS);
}

void
fabrics_dispatch(struct nvmf_cmd *cmd)
{
	struct qpair *qp = cmd->qp;
	uint8_t fctype = ((const uint8_t *)&cmd->sqe)[4];

	if (fctype == NVMF_FCTYPE_CONNECT) {
		fabrics_connect(cmd);
		return;
	}
	if (qp->state != QP_ACTIVE || qp->ctrl == NULL) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_CMD_SEQ_ERROR));
		return;
	}
	if (fctype == NVMF_FCTYPE_AUTH_SEND || fctype == NVMF_FCTYPE_AUTH_RECV) {
		auth_dispatch(cmd);
		return;
	}
	if (qp->auth_required && !qp->authenticated) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_AUTH_REQUIRED));
		return;
	}
	switch (fctype) {
	case NVMF_FCTYPE_PROPERTY_GET:
		if (qp->qid != 0)
			break;
		fabrics_property_get(cmd);
		return;
	case NVMF_FCTYPE_PROPERTY_SET:
		if (qp->qid != 0)
			break;
		fabrics_property_set(cmd);
		return;
	case NVMF_FCTYPE_DISCONNECT:
		/* Deletes this I/O queue once the response is out. */
		if (qp->qid == 0)
			break;
		qp->close_after_tx = true;
		cmd_complete_status(cmd, NVME_SC_SUCCESS);
		return;
	}
	cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_OPCODE));
}
