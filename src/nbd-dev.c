/*
 * Kernel NBD devices served by nvmfd itself, as nbd-client does: a
 * socketpair, one end served as an NBD connection on the export (already
 * in transmission, nbd-server.c), the other handed to the kernel with
 * the nbd netlink CONNECT (nbd-netlink.c).  The device lives as long as
 * its export: while the association reconnects, the kernel's requests
 * wait in the lane like any NBD client's (the kernel's own timeout is
 * off unless asked for) and fail only at fast_io_fail_tmo or
 * ctrl-loss-tmo.  The export going (namespace removed, disconnect)
 * disconnects the device; so does detach and the daemon's exit.
 *
 * All on the main loop.  The netlink requests block, each bounded by a
 * receive timeout.  Before DISCONNECT our end stops reading
 * (shutdown(SHUT_RD)), so the kernel's NBD_CMD_DISC fails at once
 * instead of waiting for room in a socket nobody drains.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmfd.h"
#include "host.h"
#include "nbd.h"
#include "nbd-dev.h"

#define NBD_DEV_MAX		64	/* devices attached at once */

struct nbd_dev {
	TAILQ_ENTRY(nbd_dev) entry;
	char		path[32];
	uint32_t	index;
	struct nbd_export *exp;		/* NULL once it is removed */
	struct nbd_conn	*conn;		/* NULL once it is gone */
	bool		listed;
};

static TAILQ_HEAD(, nbd_dev) devs = TAILQ_HEAD_INITIALIZER(devs);
static int ndevs;

static struct nbd_dev *
dev_find(uint32_t index)
{
	struct nbd_dev *d;

	TAILQ_FOREACH(d, &devs, entry)
		if (d->index == index)
			return (d);
	return (NULL);
}

static void
dev_unlist(struct nbd_dev *d)
{
	if (d->listed) {
		TAILQ_REMOVE(&devs, d, entry);
		ndevs--;
		d->listed = false;
	}
}

/*
 * The kernel splits requests at max_sectors_kb, which may be more than
 * an export takes in one request: lower it (best effort).  Before the
 * CONNECT too, where the device exists already, so that not even the
 * first reads (a udev probe) are too large; a failure then is quiet.
 */
static void
limit_request_size(const struct nbd_dev *d, uint32_t max_payload,
    bool quiet)
{
	char path[96], buf[32];
	unsigned long cur;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/block/nbd%u/queue/max_sectors_kb",
	    d->index);
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
		if (quiet)
			return;
		log_warnx("nbd: %s: %s: %s; requests over %u KiB will fail",
		    d->path, path, strerror(errno), max_payload >> 10);
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	cur = strtoul(buf, NULL, 10);
	if (cur == 0 || cur > max_payload >> 10) {
		n = snprintf(buf, sizeof(buf), "%u", max_payload >> 10);
		if (pwrite(fd, buf, (size_t)n, 0) != n && !quiet)
			log_warnx("nbd: %s: max_sectors_kb %u: %s", d->path,
			    max_payload >> 10, strerror(errno));
	}
	close(fd);
}

int
nbd_dev_attach(struct nbd_export *e, const char *path, uint64_t timeout_s,
    uint64_t dead_conn_timeout_s, char *err, size_t errlen)
{
	const struct nbd_geom *g = nbd_export_geom(e);
	struct nbdnl_connect nc = { 0 };
	struct nbd_dev *d, *other;
	long page = sysconf(_SC_PAGESIZE);
	int index = nbdnl_device_index(path), sv[2];
	char peer[48];

	if (index < 0) {
		snprintf(err, errlen, "%.64s: not an NBD device (/dev/nbdN)",
		    path);
		return (-1);
	}
	if ((other = dev_find((uint32_t)index)) != NULL) {
		snprintf(err, errlen, "/dev/nbd%d is in use by export %s",
		    index, other->exp ? nbd_export_name(other->exp) : "(gone)");
		return (-1);
	}
	if (nbd_dev_of(e) != NULL) {
		snprintf(err, errlen, "export %s is on %s already",
		    nbd_export_name(e), nbd_dev_of(e));
		return (-1);
	}
	if (ndevs >= NBD_DEV_MAX) {
		snprintf(err, errlen, "at most %d NBD devices", NBD_DEV_MAX);
		return (-1);
	}
	/* The kernel takes power-of-two blocks from 512 bytes to a page. */
	if (g->block < 512 || (page > 0 && g->block > (uint64_t)page)) {
		snprintf(err, errlen, "export %s: %u-byte blocks are beyond "
		    "what the kernel's nbd driver takes", nbd_export_name(e),
		    g->block);
		return (-1);
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		free(d);
		return (-1);
	}
	if (fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) != 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		free(d);
		return (-1);
	}
	snprintf(d->path, sizeof(d->path), "/dev/nbd%d", index);
	d->index = (uint32_t)index;
	d->exp = e;
	snprintf(peer, sizeof(peer), "nbd%d", index);
	if ((d->conn = nbd_conn_adopt(e, sv[0], peer, d)) == NULL) {
		snprintf(err, errlen, "export %s: cannot serve a connection",
		    nbd_export_name(e));
		close(sv[1]);
		free(d);
		return (-1);
	}
	limit_request_size(d, g->max_payload, true);
	nc.index = d->index;
	nc.size = g->size;
	nc.block_size = g->block;
	nc.server_flags = nbd_transmission_flags(g, 0);
	nc.timeout_s = timeout_s;
	nc.dead_conn_timeout_s = dead_conn_timeout_s;
	nc.fd = sv[1];
	if (nbdnl_connect(&nc, err, errlen) != 0) {
		/* The connection goes, and d with it (nbd_dev_conn_gone). */
		close(sv[1]);
		d->exp = NULL;
		nbd_conn_shut(d->conn, SHUT_RDWR);
		return (-1);
	}
	close(sv[1]);		/* the kernel holds its own reference */
	TAILQ_INSERT_TAIL(&devs, d, entry);
	d->listed = true;
	ndevs++;
	limit_request_size(d, g->max_payload, false);
	log_info("nbd: %s: export %s attached (%llu bytes, %u-byte blocks%s)",
	    d->path, nbd_export_name(e), (unsigned long long)g->size, g->block,
	    g->readonly ? ", read-only" : "");
	return (0);
}

/* Disconnect the kernel's side, then close ours, whatever it said. */
static int
dev_disconnect(struct nbd_dev *d, const char *why, char *err, size_t errlen)
{
	char e2[128];
	bool still;
	int rc;

	dev_unlist(d);
	if (d->conn != NULL)
		nbd_conn_shut(d->conn, SHUT_RD);
	if ((rc = nbdnl_disconnect(d->index, err, errlen)) != 0)
		log_warnx("nbd: %s: %s", d->path, err);
	else if (nbdnl_status(d->index, &still, e2, sizeof(e2)) == 0 && still)
		log_info("nbd: %s: disconnected (%s); still open, the kernel "
		    "lets it go at its last close", d->path, why);
	else
		log_info("nbd: %s: disconnected (%s)", d->path, why);
	d->exp = NULL;
	if (d->conn != NULL)
		nbd_conn_shut(d->conn, SHUT_RDWR);
	else
		free(d);
	return (rc);
}

int
nbd_dev_detach(const char *path, char *err, size_t errlen)
{
	int index = nbdnl_device_index(path);
	struct nbd_dev *d;

	if (index < 0) {
		snprintf(err, errlen, "%.64s: not an NBD device (/dev/nbdN)",
		    path);
		return (-1);
	}
	if ((d = dev_find((uint32_t)index)) == NULL) {
		snprintf(err, errlen, "/dev/nbd%d is not attached by nvmfd",
		    index);
		return (-1);
	}
	return (dev_disconnect(d, "detached", err, errlen));
}

void
nbd_dev_export_added(struct host_assoc *a, struct nbd_export *e)
{
	char err[256];
	int index;

	if (a->p.nbd_device[0] == '\0')
		return;
	/* The association's first export; one that came back has its
	 * device still. */
	index = nbdnl_device_index(a->p.nbd_device);
	if (index >= 0 && dev_find((uint32_t)index) != NULL)
		return;
	if (nbd_dev_attach(e, a->p.nbd_device, a->p.nbd_timeout_s, 0, err,
	    sizeof(err)) != 0)
		log_warnx("host %d: %s: %s", a->id, a->p.nbd_device, err);
}

void
nbd_dev_export_removed(struct nbd_export *e)
{
	struct nbd_dev *d;

	TAILQ_FOREACH(d, &devs, entry)
		if (d->exp == e) {
			d->exp = NULL;
			return;
		}
}

const char *
nbd_dev_of(const struct nbd_export *e)
{
	struct nbd_dev *d;

	TAILQ_FOREACH(d, &devs, entry)
		if (d->exp == e)
			return (d->path);
	return (NULL);
}

void
nbd_dev_conn_gone(void *arg)
{
	struct nbd_dev *d = arg;
	char err[256];

	d->conn = NULL;
	if (!d->listed) {	/* detached, or never attached */
		free(d);
		return;
	}
	/* Closed under it (export removed, or the kernel's side went):
	 * the kernel keeps a dead device until it is told. */
	dev_disconnect(d, d->exp ? "connection closed" : "export removed", err,
	    sizeof(err));
}

void
nbd_dev_stop(void)
{
	struct nbd_dev *d, *next;
	char err[256];

	TAILQ_FOREACH_SAFE(d, &devs, entry, next)
		dev_disconnect(d, "nvmfd stopping", err, sizeof(err));
}
