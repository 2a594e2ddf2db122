/*
 * Identify data structures (NVMe base 2.0 section 5.17.2), built by byte
 * offset into the host's 4 KiB buffer (zeroed by the caller).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "nvmfd.h"

/* The largest logical block a namespace gets here: 512 or 4096 bytes
 * (config.c), and block devices of such sectors. */
#define ACWU_SHIFT	12

/* A fused Compare and Write's blocks of 1 << shift bytes that the
 * in-capsule data (icd bytes) holds, 0's based; 0 for one (or none: then
 * FUSES promises nothing the capsule cannot carry, and the pair fails with
 * Invalid Field). */
static uint16_t
acwu0(uint32_t icd, uint32_t shift)
{
	uint32_t n = icd >> shift;

	return ((uint16_t)(n == 0 ? 0 : MINIMUM(n, 65536u) - 1));
}

static uint8_t
mdts_shift(uint32_t mdts)
{
	uint8_t n = 0;

	while ((4096u << n) < mdts)
		n++;
	return (n);
}

void
identify_ctrl(struct controller *ctrl, uint8_t *d)
{
	struct subsystem *ss = ctrl->subsys;
	struct port *port = ctrl->port;
	uint32_t icd = ss ? port->inline_data_size : 0;

	put_le16(d + 0, 0);				/* VID */
	put_le16(d + 2, 0);				/* SSVID */
	put_padded(d + 4, 20, ss ? ss->serial : "nvmfd-discovery");
	put_padded(d + 24, 40, ss ? ss->model : "nvmfd discovery controller");
	put_padded(d + 64, 8, PACKAGE_VERSION);		/* FR */
	d[72] = 6;					/* RAB */
	/* CMIC: multi-controller, ANA reporting. */
	d[76] = ss ? (1u << 1 | 1u << 3) : 0;
	d[77] = ss ? mdts_shift(running_config->mdts) : 0;
	put_le16(d + 78, ctrl->cntlid);
	put_le32(d + 80, NVME_VS(1, 3, 0));
	put_le32(d + 92, ss ? NVME_AEN_CFG_NS_ATTR | NVME_AEN_CFG_ANA_CHANGE :
	    NVME_AEN_CFG_DISC_CHANGE);				/* OAES */
	/* CTRATT: 128-bit host ID; Traffic Based Keep Alive (any command
	 * restarts the timer, so a host busy with I/O need not send any) */
	put_le32(d + 96, 1u << 0 | 1u << 6);
	d[111] = ss ? 1 : 2;				/* CNTRLTYPE */
	put_le16(d + 256, 0);				/* OACS */
	d[258] = 3;					/* ACL */
	d[259] = NVMFD_AERL;
	d[260] = ss ? 0x3 : 0;				/* FRMW: 1 slot, read-only */
	/* LPA: SMART per namespace, effects log, extended data */
	d[261] = (ss ? 1u << 0 | 1u << 1 : 0) | 1u << 2;
	d[262] = NVMFD_ERR_ENTRIES - 1;			/* ELPE */
	put_le16(d + 320, NVMFD_KAS);			/* KAS: 100 ms units */
	if (ss) {
		d[343] = ANA_TT;			/* ANATT, seconds */
		/* ANACAP: every state is reported. */
		d[344] = 1u << 0 | 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4;
		put_le32(d + 348, ANA_GRPMAX);		/* ANAGRPMAX */
		put_le32(d + 352, ANA_GRPMAX);		/* NANAGRPID */
	}
	if (ss) {
		d[512] = 0x66;				/* SQES */
		d[513] = 0x44;				/* CQES */
	}
	put_le16(d + 514, port->max_queue_depth);	/* MAXCMD */
	put_le32(d + 516, ss ? NVMFD_MAX_NSID : 0);	/* NN */
	put_le32(d + 540, ss ? NVMFD_MAX_NSID : 0);	/* MNAN: Linux needs it */
	/* ONCS: Compare, Dataset Management, Write Zeroes, Reservations,
	 * Verify, Copy. */
	put_le16(d + 520, ss ? (1u << 0 | 1u << 2 | 1u << 3 | 1u << 5 |
	    1u << 7 | 1u << 8) : 0);
	put_le16(d + 534, ss ? 1u << 0 | 1u << 1 : 0);	/* OCFS: formats 0, 1 */
	/* FUSES: Compare and Write.  ACWU, 0's based in logical blocks:
	 * what the capsule holds (a fused pair's data comes in it) of the
	 * largest block nvmfd sets up (4 KiB), so it holds for every
	 * namespace; one with smaller blocks says how many in NACWU. */
	put_le16(d + 522, ss ? 1u << 0 : 0);
	put_le16(d + 532, ss ? acwu0(icd, ACWU_SHIFT) : 0);
	d[525] = ss && subsystem_has_vwc(ss) ? 1 : 0;	/* VWC */
	/* AWUN, AWUPF (0's based, in blocks): a write of one block is
	 * atomic, also to reads racing it (atomic.c).  NAWUN and NAWUPF
	 * stay 0 ("as AWUN, AWUPF") where a namespace sets NSFEAT.NSABP. */
	put_le16(d + 526, 0);
	put_le16(d + 528, 0);
	/* SGLS: supported, SGL offset for in-capsule data. */
	put_le32(d + 536, 1u << 0 | 1u << 20);
	snprintf((char *)d + 768, 256, "%s", ctrl->subnqn);
	put_le32(d + 1792, (64 + icd) / 16);		/* IOCCSZ */
	put_le32(d + 1796, 1);				/* IORCSZ */
	put_le16(d + 1800, 0);				/* ICDOFF */
	d[1802] = 0;					/* FCATT: dynamic */
	d[1803] = 1;					/* MSDBD */
	put_le16(d + 1804, 1u << 0);			/* OFCS: Disconnect */
	put_le16(d + 2048, 0);				/* PSD0 MP */
}

/* NVM command set specific controller data (CNS 06h, CSI 0). */
void
identify_ctrl_nvm(struct controller *ctrl, uint8_t *d)
{
	(void)ctrl;
	d[0] = mdts_shift(running_config->mdts);	/* VSL: one transfer */
}

/* Copy limits of a namespace: a range must fit one transfer. */
static uint16_t
copy_range_blocks(const struct namespace *ns)
{
	uint64_t n = running_config->mdts >> ns->lba_shift;

	return ((uint16_t)MINIMUM(n, NVMFD_COPY_RANGE_BLOCKS));
}

/* A size in bytes as a 0's based count of blocks; -1 if it says nothing
 * (not more than a block, not a whole number of them, too many). */
static int
blocks0(const struct namespace *ns, uint32_t bytes)
{
	uint32_t bs = 1u << ns->lba_shift;

	if (bytes <= bs || bytes % bs != 0 || bytes / bs > 65536)
		return (-1);
	return ((int)(bytes / bs - 1));
}

/* NSFEAT.OPTPERF with NPWG/NPWA, NPDG/NPDA and NOWS, where the backend
 * knows sizes larger than a block (file systems, devices). */
static void
io_hint_fields(const struct namespace *ns, uint8_t *d)
{
	int pwg = blocks0(ns, ns->pref_write);
	int pdg = blocks0(ns, ns->pref_discard);
	int ows = blocks0(ns, ns->opt_write);

	if (pwg < 0)
		return;
	d[24] |= 1u << 4;				/* NSFEAT: OPTPERF */
	put_le16(d + 64, pwg);				/* NPWG */
	put_le16(d + 66, pwg);				/* NPWA */
	put_le16(d + 68, pdg < 0 ? 0 : pdg);		/* NPDG */
	put_le16(d + 70, pdg < 0 ? 0 : pdg);		/* NPDA */
	put_le16(d + 72, ows < pwg ? pwg : ows);	/* NOWS */
}

/*
 * NSFEAT.NSABP with NAWUN, NAWUPF and NACWU, where this namespace's blocks
 * are smaller than ACWU counts in: then NACWU, 0's based in its own
 * blocks, says how many of them a fused Compare and Write keeps atomic.
 * NAWUN and NAWUPF stay 0, "as the controller says" (one block).
 */
static void
atomic_fields(const struct controller *ctrl, const struct namespace *ns,
    uint8_t *d)
{
	uint32_t icd = ctrl->port->inline_data_size;
	uint16_t nacwu = acwu0(icd, ns->lba_shift);

	if (ns->lba_shift >= ACWU_SHIFT || nacwu == acwu0(icd, ACWU_SHIFT))
		return;
	d[24] |= 1u << 1;				/* NSFEAT: NSABP */
	put_le16(d + 34, 0);				/* NAWUN */
	put_le16(d + 36, 0);				/* NAWUPF */
	put_le16(d + 38, nacwu);			/* NACWU */
}

uint16_t
identify_ns(struct controller *ctrl, uint32_t nsid, uint8_t *d)
{
	struct namespace *ns;

	if (nsid == 0 || nsid > NVMFD_MAX_NSID)
		return (NVME_SC_DNR(NVME_SC_INVALID_NS));
	/* An inactive NSID in range reads as all zeroes. */
	if ((ns = namespace_find(ctrl->subsys, nsid)) == NULL)
		return (NVME_SC_SUCCESS);
	put_le64(d + 0, ns->nlb);			/* NSZE */
	put_le64(d + 8, ns->nlb);			/* NCAP */
	put_le64(d + 16, ns->nlb);			/* NUSE */
	d[25] = 0;					/* NLBAF: one format */
	d[26] = 0;					/* FLBAS */
	d[30] = 1;					/* NMIC: shared */
	/* RESCAP: IEKEY, all six types, and PTPL where there is a state
	 * file to keep it in. */
	d[31] = 0xfe | (ns->resv && ns->resv->path ? 1 : 0);
	/* DLFEAT: deallocated blocks read as zeroes where that is certain
	 * (RAM, and files with punched holes); a device's discard may not. */
	d[33] = ns->type == BACKEND_BLOCK ? 0 : (1u << 3 | 1);
	atomic_fields(ctrl, ns, d);
	io_hint_fields(ns, d);
	put_le16(d + 74, copy_range_blocks(ns));	/* MSSRL */
	put_le32(d + 76, NVMFD_COPY_MAX_BLOCKS);	/* MCL */
	d[80] = NVMFD_COPY_RANGES - 1;			/* MSRC, 0's based */
	put_le32(d + 92, ns->anagrpid);			/* ANAGRPID */
	d[99] = ns->readonly ? 1 : 0;			/* NSATTR: write protected */
	memcpy(d + 104, ns->nguid, 16);
	memcpy(d + 120, ns->eui64, 8);
	d[128 + 2] = ns->lba_shift;			/* LBAF0.LBADS */
	return (NVME_SC_SUCCESS);
}

void
identify_active_ns(struct controller *ctrl, uint32_t after, uint8_t *d)
{
	struct namespace *ns;
	int n = 0;

	TAILQ_FOREACH(ns, &ctrl->subsys->namespaces, entry) {
		if (ns->nsid <= after)
			continue;
		if (n == 1024)
			break;
		put_le32(d + 4 * n++, ns->nsid);
	}
}

static uint8_t *
put_desc(uint8_t *p, uint8_t type, const void *id, uint8_t len)
{
	p[0] = type;
	p[1] = len;
	memcpy(p + 4, id, len);
	return (p + 4 + len);
}

uint16_t
identify_ns_descs(struct controller *ctrl, uint32_t nsid, uint8_t *d)
{
	struct namespace *ns;
	uint8_t csi = 0;

	if ((ns = namespace_find(ctrl->subsys, nsid)) == NULL)
		return (NVME_SC_DNR(NVME_SC_INVALID_NS));
	d = put_desc(d, NVME_NIDT_EUI64, ns->eui64, 8);
	d = put_desc(d, NVME_NIDT_NGUID, ns->nguid, 16);
	d = put_desc(d, NVME_NIDT_UUID, ns->uuid, 16);
	put_desc(d, NVME_NIDT_CSI, &csi, 1);
	return (NVME_SC_SUCCESS);
}

uint16_t
identify_ns_indep(struct controller *ctrl, uint32_t nsid, uint8_t *d)
{
	struct namespace *ns;

	if ((ns = namespace_find(ctrl->subsys, nsid)) == NULL)
		return (NVME_SC_DNR(NVME_SC_INVALID_NS));
	d[1] = 1;					/* NMIC */
	d[8] = ns->readonly ? 1 : 0;			/* NSATTR */
	d[14] = 1;					/* NSTAT: ready */
	return (NVME_SC_SUCCESS);
}
