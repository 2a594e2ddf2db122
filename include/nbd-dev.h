/*
 * Kernel /dev/nbdN devices backed by nvmfd's own NBD exports (nbd-dev.c),
 * set up through the Linux nbd generic-netlink family (nbd-netlink.c,
 * plain netlink sockets).  The message builders and the reply parser are
 * pure, so they are tested without a kernel; the numbers are the kernel's
 * (linux/nbd-netlink.h), kept here so other systems build too.
 */
#ifndef NVMFD_NBD_DEV_H
#define NVMFD_NBD_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NBDNL_FAMILY_NAME	"nbd"
#define NBDNL_VERSION		1

/* nbd family commands */
#define NBDNL_CMD_CONNECT	1
#define NBDNL_CMD_DISCONNECT	2
#define NBDNL_CMD_STATUS	5

/* nbd family attributes */
#define NBDNL_ATTR_INDEX		1	/* u32 */
#define NBDNL_ATTR_SIZE_BYTES		2	/* u64 */
#define NBDNL_ATTR_BLOCK_SIZE_BYTES	3	/* u64 */
#define NBDNL_ATTR_TIMEOUT		4	/* u64, seconds */
#define NBDNL_ATTR_SERVER_FLAGS		5	/* u64 */
#define NBDNL_ATTR_CLIENT_FLAGS		6	/* u64 */
#define NBDNL_ATTR_SOCKETS		7	/* nested SOCK_ITEMs */
#define NBDNL_ATTR_DEAD_CONN_TIMEOUT	8	/* u64, seconds */
#define NBDNL_ATTR_DEVICE_LIST		9	/* nested DEVICE_ITEMs */
#define NBDNL_SOCK_ITEM			1	/* nested: SOCK_FD */
#define NBDNL_SOCK_FD			1	/* u32 */
#define NBDNL_DEVICE_ITEM		1	/* nested: INDEX, CONNECTED */
#define NBDNL_DEVICE_INDEX		1	/* u32 */
#define NBDNL_DEVICE_CONNECTED		2	/* u8 */

#define NBDNL_MAX_DEVICES	64	/* STATUS entries kept from a reply */
#define NBDNL_MSG_MAX		512	/* our requests fit in this */

struct nbdnl_connect {
	uint32_t	index;
	uint64_t	size;
	uint64_t	block_size;
	uint64_t	server_flags;	/* NBD transmission flags */
	uint64_t	timeout_s;	/* 0: not sent (the kernel waits) */
	uint64_t	dead_conn_timeout_s;	/* 0: not sent */
	int		fd;		/* the kernel's end of the socket */
};

/* What one reply message said. */
struct nbdnl_reply {
	bool		ack;		/* NLMSG_ERROR: the request is done */
	int		error;		/* its errno, 0 on success */
	uint16_t	family;		/* CTRL_ATTR_FAMILY_ID, 0 if none */
	bool		has_index;
	uint32_t	index;
	int		ndev;
	struct {
		uint32_t index;
		bool	connected;
	} dev[NBDNL_MAX_DEVICES];
};

/* nbd-netlink.c: builders return the message length, 0 if it does not
 * fit in len. */
size_t	nbdnl_msg_getfamily(uint8_t *buf, size_t len, uint32_t seq);
size_t	nbdnl_msg_connect(uint8_t *buf, size_t len, uint16_t family,
	    uint32_t seq, const struct nbdnl_connect *);
/* DISCONNECT or STATUS of one device. */
size_t	nbdnl_msg_index(uint8_t *buf, size_t len, uint16_t family,
	    uint8_t cmd, uint32_t seq, uint32_t index);
/*
 * The first message in buf that answers seq: its length (the caller
 * skips that much and looks again), 0 when buf holds none for seq, -1
 * when buf is malformed.  ctrl: a reply of the generic-netlink controller
 * (family lookup), whose attributes are numbered differently.
 */
long	nbdnl_parse(const uint8_t *buf, size_t len, uint32_t seq, bool ctrl,
	    struct nbdnl_reply *);
/* "/dev/nbdN" (or "nbdN"): N, or -1. */
int	nbdnl_device_index(const char *path);

/* Blocking requests to the kernel, bounded in time; 0, or -1 with err. */
int	nbdnl_connect(const struct nbdnl_connect *, char *err, size_t errlen);
int	nbdnl_disconnect(uint32_t index, char *err, size_t errlen);
/* Whether the kernel has index configured. */
int	nbdnl_status(uint32_t index, bool *connected, char *err,
	    size_t errlen);

/* nbd-dev.c, main loop */
struct nbd_export;
struct host_assoc;
struct out;
/* Serve export e on /dev/nbdN; 0, or -1 with err. */
int	nbd_dev_attach(struct nbd_export *, const char *path,
	    uint64_t timeout_s, uint64_t dead_conn_timeout_s, char *err,
	    size_t errlen);
/* Disconnect the kernel device, then close our side whatever it said. */
int	nbd_dev_detach(const char *path, char *err, size_t errlen);
/* A new export of a: its --nbd-device, if it has one and it is free. */
void	nbd_dev_export_added(struct host_assoc *, struct nbd_export *);
/* e is going: a device on it forgets it (its connection closes next). */
void	nbd_dev_export_removed(struct nbd_export *);
/* The device of e, or NULL. */
const char *nbd_dev_of(const struct nbd_export *);
/* At exit: every device disconnected. */
void	nbd_dev_stop(void);
/* nbd-server.c calls this (main loop) when a device's connection is
 * gone, whoever closed it. */
void	nbd_dev_conn_gone(void *dev);

#endif
