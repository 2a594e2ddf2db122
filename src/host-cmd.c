/*
 * Admin and Fabrics command builders of the host role, shared by the
 * daemon's associations (host.c), perf and the blocking set-up helpers.
 * They fill a host_req; the caller submits it.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "nvmfd.h"
#include "host.h"

/* Fabrics Property Get or Set of a 4-byte (or, wide, 8-byte) property. */
void
host_cmd_property(struct host_req *r, uint8_t fctype, uint32_t ofst,
    bool wide, uint64_t value)
{
	memset(r, 0, offsetof(struct host_req, hq));
	r->sqe.opc = NVME_FABRICS_COMMAND;
	((uint8_t *)&r->sqe)[4] = fctype;
	r->sqe.cdw10 = wide;
	r->sqe.cdw11 = ofst;
	r->sqe.cdw12 = (uint32_t)value;
	r->sqe.cdw13 = (uint32_t)(value >> 32);
}

/* Identify, one 4 KiB page into buf. */
void
host_cmd_identify(struct host_req *r, uint8_t cns, uint32_t nsid, void *buf)
{
	memset(r, 0, offsetof(struct host_req, hq));
	r->sqe.opc = NVME_ADM_IDENTIFY;
	r->sqe.nsid = nsid;
	r->sqe.cdw10 = cns;
	r->iov[0].iov_base = buf;
	r->iov[0].iov_len = 4096;
	r->iovcnt = 1;
	r->data_len = 4096;
	r->dir = DIR_C2H;
}

/* Fabrics Connect for queue qid; d must live until it completes. */
void
host_cmd_connect(struct host_req *r, struct nvmf_connect_data *d,
    uint16_t qid, uint16_t sqsize, const char *subnqn, const char *hostnqn,
    const uint8_t hostid[16], uint16_t cntlid, uint32_t kato_ms)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->hostid, hostid, 16);
	d->cntlid = cntlid;
	snprintf(d->subnqn, sizeof(d->subnqn), "%s", subnqn);
	snprintf(d->hostnqn, sizeof(d->hostnqn), "%s", hostnqn);
	memset(r, 0, offsetof(struct host_req, hq));
	r->sqe.opc = NVME_FABRICS_COMMAND;
	((uint8_t *)&r->sqe)[4] = NVMF_FCTYPE_CONNECT;
	r->sqe.cdw10 = (uint32_t)qid << 16;
	r->sqe.cdw11 = sqsize - 1u;
	r->sqe.cdw12 = kato_ms;
	r->iov[0].iov_base = d;
	r->iov[0].iov_len = sizeof(*d);
	r->iovcnt = 1;
	r->data_len = sizeof(*d);
	r->dir = DIR_H2C;
}
