/*
 * NBD exports of remote namespaces (nbd-server.c), served on the main
 * loop from Unix and TCP listeners.
 */
#ifndef NVMFD_NBD_H
#define NVMFD_NBD_H

#include "nbd-proto.h"

struct host_assoc;
struct host_ns;
struct out;
struct nbd_conn;

#define NBD_DEFAULT_PORT	"10809"

struct nbd_settings {
	char		*socket;	/* Unix socket path, or NULL */
	char		*address;	/* TCP address, or NULL: no TCP */
	char		*port;		/* NULL: 10809 */
};

struct nbd_export *nbd_export_add(struct host_assoc *, struct host_ns *);
void	nbd_export_update(struct nbd_export *, struct host_assoc *,
	    struct host_ns *);
void	nbd_export_remove(struct nbd_export *);
/* Start or restart the listeners; 0, or -1 with err. */
int	nbd_server_start(const struct nbd_settings *, char *err, size_t errlen);
void	nbd_server_stop(void);
void	nbd_server_reap(void);
struct nbd_export *nbd_export_find(const char *name);
const char *nbd_export_name(const struct nbd_export *);
const struct nbd_geom *nbd_export_geom(const struct nbd_export *);
/* fd (ours) becomes a connection on e already in transmission, as the
 * kernel's nbd driver speaks: NULL (fd closed) if it cannot.  dev is
 * given to nbd_dev_conn_gone() once the connection is gone. */
struct nbd_conn *nbd_conn_adopt(struct nbd_export *, int fd,
	    const char *peer, void *dev);
/* shutdown(2) our end; SHUT_RDWR also closes the connection. */
void	nbd_conn_shut(struct nbd_conn *, int how);
/* The export's fields and URIs, into the current object of o. */
void	nbd_export_describe(struct nbd_export *, struct out *o);

#endif
