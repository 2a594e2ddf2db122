/*
 * NBD exports of remote namespaces (nbd-server.c), served on the main
 * loop from Unix and TCP listeners.
 */
#ifndef NVMFD_NBD_H
#define NVMFD_NBD_H

#include "nbd-proto.h"
#include "nvmfd.h"

struct host_assoc;
struct host_ns;
struct out;
struct nbd_conn;

#define NBD_DEFAULT_PORT	"10809"

struct nbd_settings {
	char		*socket;	/* Unix socket path, or NULL */
	char		*address;	/* TCP address, or NULL: no TCP */
	char		*port;		/* NULL: 10809 */
	enum port_tls	tls;		/* NBD_OPT_STARTTLS: off, or offered */
	char		*tls_psk_file;	/* "identity:hexkey" lines */
};

/* A negotiation (up to GO) that takes longer than this is closed. */
#define NBD_NEGOTIATE_TIMEOUT_S	30

struct nbd_export *nbd_export_add(struct host_assoc *, struct host_ns *);
void	nbd_export_update(struct nbd_export *, struct host_assoc *,
	    struct host_ns *);
void	nbd_export_remove(struct nbd_export *);
/* The association's lanes changed: connections waiting for one move
 * (NULL is fine). */
void	nbd_export_lanes_ready(struct nbd_export *);
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
/* The TLS mode the server runs with (off while it is stopped). */
enum port_tls nbd_server_tls(void);

/* nbd-tls.c */
#define NBD_PSK_MAX_KEYS	64	/* lines of a PSK file */
#define NBD_PSK_MIN_LEN		16	/* key bytes */
struct nbd_psks;
/* A PSK file's text ("identity:hexkey" lines; blank and # lines are
 * skipped): 0, or -1 with err (never key bytes). */
int	nbd_psk_parse(const char *text, struct nbd_psks **, char *err,
	    size_t errlen);
/* The same from a file of mode 0600 or stricter. */
int	nbd_psk_load(const char *path, struct nbd_psks **, char *err,
	    size_t errlen);
void	nbd_psks_free(struct nbd_psks *);
int	nbd_psks_count(const struct nbd_psks *);
/* A tls_psk_lookup_fn; arg is the struct nbd_psks. */
int	nbd_psk_lookup(void *arg, const char *identity, uint8_t *psk,
	    size_t *len);
/* What an option may do before or after TLS (NBD_REP_ERR_* or these). */
#define NBD_TLS_GO		0
#define NBD_TLS_START		1
#define NBD_TLS_CLOSE		2
uint32_t nbd_tls_option(enum port_tls mode, bool tls, uint32_t opt,
	    uint32_t len);
bool	nbd_tls_export_ok(bool export_requires, bool tls);

#endif
