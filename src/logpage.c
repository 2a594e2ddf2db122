/*
 * Log pages (NVMe base 2.0 section 5.16): each is built whole into a scratch
 * buffer, then the requested slice is copied, so any dword offset works.
 * The discovery log is kept per controller and built again only when its
 * generation changes: hosts read it in many chunks, and with thousands of
 * subsystems building it is the expensive part.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvmfd.h"

/* A 128-bit little-endian counter field from a 64-bit value. */
static void
put_le128(uint8_t *p, uint64_t v)
{
	put_le64(p, v);
	put_le64(p + 8, 0);
}

/*
 * SMART / Health Information: for the whole subsystem (NSID 0 or FFFFFFFFh,
 * what the Linux kernel target reports too: every host's I/O), or for one
 * namespace (LPA bit 0): what the namespaces' counters say, summed over the
 * loops, the same numbers nvmfctl stats shows.  0 if the NSID is neither.
 */
static size_t
log_smart(struct controller *ctrl, uint32_t nsid, uint8_t *p)
{
	struct subsystem *ss = ctrl->subsys;
	struct namespace *ns;
	struct ns_stats st;
	uint64_t rd = 0, wr = 0, brd = 0, bwr = 0, media = 0;
	bool all = nsid == 0 || nsid == NVME_NSID_ALL;

	if (!all && namespace_find(ss, nsid) == NULL)
		return (0);
	TAILQ_FOREACH(ns, &ss->namespaces, entry) {
		if (!all && ns->nsid != nsid)
			continue;
		ns_stats_sum(ns, &st);
		rd += st.reads;
		wr += st.writes;
		brd += st.bytes_read;
		bwr += st.bytes_written;
		media += st.media_errors;
	}
	put_le16(p + 1, 0x0141);	/* composite temperature, 321 K */
	p[3] = 100;			/* available spare */
	p[4] = 10;			/* spare threshold */
	/* Data units: thousands of 512-byte units, rounded up. */
	put_le128(p + 32, (brd + 512000 - 1) / 512000);
	put_le128(p + 48, (bwr + 512000 - 1) / 512000);
	put_le128(p + 64, rd);		/* host read commands */
	put_le128(p + 80, wr);		/* host write commands */
	/* Controller busy time: minutes with an I/O command outstanding on
	 * any of the subsystem's controllers, a started minute counted. */
	put_le128(p + 96, (health_busy_ns(&ss->busy, now_ns()) +
	    60000000000ull - 1) / 60000000000ull);
	/* Power cycles, power-on hours, unsafe shutdowns: this run's, or
	 * every run's where state_dir keeps them (health.c). */
	put_le128(p + 112, ss->power_cycles ? ss->power_cycles : 1);
	put_le128(p + 128, health_power_on_seconds(ss) / 3600);
	put_le128(p + 144, ss->unsafe_shutdowns);
	put_le128(p + 160, media);	/* media and data integrity errors */
	put_le128(p + 176, ctrl_error_count(ctrl)); /* error log entries */
	return (512);
}

static size_t
log_fw_slot(uint8_t *p)
{
	p[0] = 1;			/* active slot 1 */
	put_padded(p + 8, 8, PACKAGE_VERSION);
	return (512);
}

static size_t
log_changed_ns(struct controller *ctrl, uint8_t *p)
{
	if (ctrl->nchanged_ns < 0)
		put_le32(p, 0xffffffff);
	else
		for (int i = 0; i < ctrl->nchanged_ns; i++)
			put_le32(p + 4 * i, ctrl->changed_ns[i]);
	return (4096);
}

static size_t
log_cmd_effects(uint8_t *p)
{
	static const uint8_t admin[] = {
		NVME_ADM_GET_LOG_PAGE, NVME_ADM_IDENTIFY, NVME_ADM_ABORT,
		NVME_ADM_SET_FEATURES, NVME_ADM_GET_FEATURES,
		NVME_ADM_ASYNC_EVENT, NVME_ADM_KEEP_ALIVE,
	};
	static const uint8_t io[] = {
		NVME_CMD_FLUSH, NVME_CMD_READ, NVME_CMD_COMPARE,
		NVME_CMD_VERIFY, NVME_CMD_RESV_REGISTER, NVME_CMD_RESV_REPORT,
		NVME_CMD_RESV_ACQUIRE, NVME_CMD_RESV_RELEASE,
	};
	static const uint8_t io_lbcc[] = {
		NVME_CMD_WRITE, NVME_CMD_WRITE_ZEROES, NVME_CMD_DSM,
		NVME_CMD_COPY,
	};

	for (size_t i = 0; i < nitems(admin); i++)
		put_le32(p + 4 * admin[i], 1);			/* CSUPP */
	for (size_t i = 0; i < nitems(io); i++)
		put_le32(p + 1024 + 4 * io[i], 1);
	for (size_t i = 0; i < nitems(io_lbcc); i++)
		put_le32(p + 1024 + 4 * io_lbcc[i], 1 | 1u << 1); /* + LBCC */
	return (4096);
}

uint16_t
logpage_get(struct controller *ctrl, uint8_t lid, uint8_t lsp, uint32_t nsid,
    uint64_t off, uint8_t *buf, uint32_t len, bool rae)
{
	uint8_t *page = NULL;
	size_t size, copied;
	bool io = ctrl->subsys != NULL;

	if (lid == NVME_LOG_DISCOVERY) {
		if (io)
			return (NVME_SC_DNR(NVME_SC_INVALID_LOG_PAGE));
		if (ctrl->disc_log == NULL || ctrl->disc_gen != discovery_genctr) {
			free(ctrl->disc_log);
			ctrl->disc_len = discovery_log_build(ctrl,
			    &ctrl->disc_log);
			if (ctrl->disc_log == NULL)
				return (NVME_SC_INTERNAL);
			ctrl->disc_gen = discovery_genctr;
		}
		size = ctrl->disc_len;
	} else {
		if (!io)
			return (NVME_SC_DNR(NVME_SC_INVALID_LOG_PAGE));
		if ((page = calloc(1, MAXIMUM(4096, ana_log_max()))) == NULL)
			return (NVME_SC_INTERNAL);
		switch (lid) {
		case NVME_LOG_ERROR:
			size = ctrl_error_log(ctrl, page);
			break;
		case NVME_LOG_SMART:
			if ((size = log_smart(ctrl, nsid, page)) == 0) {
				free(page);
				return (NVME_SC_DNR(NVME_SC_INVALID_NS));
			}
			break;
		case NVME_LOG_FW_SLOT:
			size = log_fw_slot(page);
			break;
		case NVME_LOG_CHANGED_NS:
			size = log_changed_ns(ctrl, page);
			break;
		case NVME_LOG_CMD_EFFECTS:
			size = log_cmd_effects(page);
			break;
		case NVME_LOG_RESV_NOTICE:
			/* Reading takes the oldest notice off the queue. */
			if (off == 0)
				resv_log_page(ctrl, page);
			size = 64;
			break;
		case NVME_LOG_ANA:
			size = ana_log_build(ctrl, lsp & ANA_LOG_RGO, page);
			break;
		default:
			free(page);
			return (NVME_SC_DNR(NVME_SC_INVALID_LOG_PAGE));
		}
	}
	/* The discovery log can shrink between a host's chunked reads: past
	 * its end reads as zeroes, and the changed GENCTR tells the host. */
	if (off >= size && lid != NVME_LOG_DISCOVERY) {
		free(page);
		return (NVME_SC_DNR(NVME_SC_INVALID_FIELD));
	}
	copied = off < size ? MINIMUM(len, size - off) : 0;
	if (copied > 0)
		memcpy(buf, (page ? page : ctrl->disc_log) + off, copied);
	/* Past the end reads as zeroes, never as what the buffer held. */
	memset(buf + copied, 0, len - copied);
	free(page);
	/* Cleared by a read, but not by one that failed. */
	if (lid == NVME_LOG_CHANGED_NS)
		ctrl->nchanged_ns = 0;
	ctrl_log_read(ctrl, lid, rae);
	/* More notices queued: the host hears of the next one. */
	if (lid == NVME_LOG_RESV_NOTICE && !rae && ctrl->resv_nlog > 0)
		ctrl_event(ctrl, NVME_AER_RESV_LOG);
	return (NVME_SC_SUCCESS);
}
