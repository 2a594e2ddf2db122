/*
 * nvmfd internal interfaces, one banner per source file.
 *
 * Threading: every object is owned by exactly one loop (thread).  The main
 * loop owns configuration, listeners, controllers and admin/discovery queue
 * pairs; worker loops own I/O queue pairs and their in-flight commands.
 * Anything that crosses threads goes through loop_post().
 */
#ifndef NVMFD_H
#define NVMFD_H

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nvmfd's wire structures assume a little-endian CPU"
#endif

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>

#include <event2/event_struct.h>

#include "nvme.h"
#include "nvme-tcp.h"
#include "hmap.h"
#include "auth.h"
#include "reservation.h"
#include "ana.h"

struct event_base;
struct event;
struct loop;
struct qpair;
struct controller;
struct namespace;
struct subsystem;
struct port;
struct auth_qp;
struct host_params;
struct host_tls;

#define NVMFD_VERSION_STRING	PACKAGE_VERSION
#define NVMFD_DEFAULT_CONFIG	SYSCONFDIR "/nvmfd/nvmfd.yaml"
#define NVMFD_DEFAULT_NQN	"nqn.2026-11.io.nvmfd:ram0"
#define NVMFD_NQN_MAX		223	/* characters, without the NUL */
#define NVMFD_MAX_NSID		1024	/* namespaces per subsystem */
#define NVMFD_AERL		3	/* 0's based: four AERs outstanding */
#define NVMFD_KAS		10	/* keep-alive granularity, 100 ms units */
#define NVMFD_ADMIN_ICD		8192	/* admin queue in-capsule data */
#define NVMFD_ADMIN_QUEUE_DEPTH	32
#define NVMFD_CMD_MAX_IOV	4
#define NVMFD_ERR_ENTRIES	64	/* Error Information log (ELPE + 1) */

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST((head));				\
	    (var) && ((tvar) = TAILQ_NEXT((var), field), 1);		\
	    (var) = (tvar))
#endif

#define __printflike(a, b)	__attribute__((format(printf, a, b)))
#define __dead			__attribute__((noreturn))
#define nitems(a)		(sizeof(a) / sizeof((a)[0]))
#define MINIMUM(a, b)		((a) < (b) ? (a) : (b))
#define MAXIMUM(a, b)		((a) > (b) ? (a) : (b))

/* log.c */
void	log_init(int to_stderr, int debug);

/* fault.c: injected allocation failures (--enable-fault-injection). */
#ifdef NVMFD_FAULT_INJECTION
void	fault_init(void);
void	fault_arm(void);
void	fault_report(void);
#else
static inline void fault_init(void) { }
static inline void fault_arm(void) { }
static inline void fault_report(void) { }
#endif
void	log_warn(const char *, ...) __printflike(1, 2);
void	log_warnx(const char *, ...) __printflike(1, 2);
void	log_info(const char *, ...) __printflike(1, 2);
void	log_debug(const char *, ...) __printflike(1, 2);
/* Lines a remote peer can trigger: rate-limited together. */
void	log_peer_warnx(const char *, ...) __printflike(1, 2);
void	log_peer_info(const char *, ...) __printflike(1, 2);
__dead void fatal(const char *, ...) __printflike(1, 2);
__dead void fatalx(const char *, ...) __printflike(1, 2);
extern int log_debug_enabled;

/* crc32c.c: CRC32C (Castagnoli); seed with 0xffffffff, finish with ~ */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c(const void *buf, size_t len);
uint32_t crc32c_iov(const struct iovec *iov, int iovcnt, size_t skip, size_t len);

/* ---------------------------------------------------------------- config */

/* TLS on a port: an optional port serves plain and TLS connections. */
enum port_tls { PORT_TLS_OFF, PORT_TLS_OPTIONAL, PORT_TLS_REQUIRED };

/* Port (listener) settings. */
struct port {
	TAILQ_ENTRY(port) entry;
	uint16_t	id;		/* PORTID in the discovery log */
	char		address[64];	/* numeric IPv4/IPv6, "0.0.0.0", "::" */
	char		service[16];	/* TCP port, decimal */
	int		family;		/* AF_INET or AF_INET6 */
	uint32_t	inline_data_size; /* I/O queue in-capsule data bytes */
	uint32_t	maxh2cdata;
	uint32_t	max_queue_depth;  /* MQES + 1 */
	bool		header_digest;	/* allowed when a host asks */
	bool		data_digest;
	struct dhchap_offer dhchap;	/* hashes and groups offered */
	enum port_tls	tls;
	int		cfg_line, cfg_col; /* where it was declared */

	/* runtime */
	int		fd;
	struct event	*ev;
	atomic_int	refs;		/* connections using it, +1 while listed */
	bool		removed;
};
TAILQ_HEAD(port_list, port);

enum backend_type { BACKEND_RAM, BACKEND_FILE, BACKEND_BLOCK, BACKEND_RBD };

/* Where a Ceph RBD namespace's image is, and how to reach its cluster;
 * NULL members: librados' defaults (backend-rbd.c). */
struct rbd_spec {
	char		*pool;
	char		*image;
	char		*nspace;	/* RBD namespace within the pool */
	char		*user;		/* cephx id, without "client." */
	char		*keyring;	/* path */
	char		*conf;		/* ceph.conf path */
};

/* One cache line per loop: written only by that loop's thread.  Commands
 * count in the half of the namespace's epoch they started in, so Preempt
 * and Abort can wait for those that started before it (registry.c). */
struct ns_inflight {
	atomic_uint	n[2];
	char		pad[56];
};

/*
 * Counters with one writer (a loop thread) and readers on other threads
 * (listings, metrics): relaxed loads and stores, which cost what plain ones
 * do on the writer's side and are no data race.
 */
#define STAT_GET(f)	__atomic_load_n(&(f), __ATOMIC_RELAXED)
#define STAT_ADD(f, v)	__atomic_store_n(&(f), STAT_GET(f) + (v), \
			    __ATOMIC_RELAXED)

#define NS_LAT_BUCKETS	32	/* powers of two of microseconds */
struct ns_stats {
	uint64_t	reads, writes, other, errors;
	uint64_t	media_errors;	/* backend I/O errors (SCT 2) */
	uint64_t	bytes_read, bytes_written;
	uint64_t	lat_sum_ns;	/* of every command counted in lat[] */
	uint64_t	lat[NS_LAT_BUCKETS];
	char		pad[64 - (8 * 8 + NS_LAT_BUCKETS * 8) % 64];
};

/*
 * Busy time (SMART Controller Busy Time): busy while at least one I/O queue
 * has a command outstanding.  Queues on any loop enter and leave; only the
 * first in and the last out read the time (health.c).
 */
struct busy_clock {
	atomic_uint	nbusy;		/* queues with commands outstanding */
	_Atomic uint64_t since_ns;	/* start of the current busy spell */
	_Atomic uint64_t total_ns;	/* earlier spells */
};

/* When a RAM namespace's memory is populated (ram-populate.c). */
enum ram_populate {
	RAM_POPULATE_BACKGROUND,	/* all of it, by a thread, from start */
	RAM_POPULATE_LAZY,		/* a chunk at a time, as written */
};

struct retire;

struct namespace {
	TAILQ_ENTRY(namespace) entry;
	/* made when published, so taking it away allocates nothing */
	struct retire	*retire;
	struct subsystem *subsys;
	uint32_t	nsid;
	enum backend_type type;
	char		*path;		/* file or block device */
	struct rbd_spec	*rbd;		/* RBD image, or NULL */
	uint64_t	size;		/* bytes (ram, or to create a file) */
	uint32_t	block_size;	/* 0 = default / from the device */
	bool		readonly;
	bool		direct;		/* O_DIRECT for file/block */
	uint8_t		populate;	/* RAM: enum ram_populate */
	uint8_t		uuid[16];
	uint8_t		nguid[16];
	uint8_t		eui64[8];
	bool		has_uuid, has_nguid, has_eui64;
	_Atomic uint32_t anagrpid;	/* ANA group; workers read it */
	int		cfg_line, cfg_col;

	/* runtime, set by the backend's open */
	struct ns_inflight *inflight;	/* per loop, see registry.c */
	bool		published;
	struct ns_stats	*stats;		/* per loop */
	const struct backend_ops *ops;
	void		*priv;
	/* Injected errors (nvmfctl inject-error): the next fault_left reads
	 * and/or writes fail with fault_errno, or with a short transfer
	 * (fault_errno 0), either before they reach the backend (FAULT_AT_IO)
	 * or as the file I/O engine's completion (FAULT_AT_ENGINE, in
	 * fault-injection builds).  Atomic: set on the main loop while
	 * workers may be reading them. */
	atomic_uint	fault_left;
	_Atomic uint8_t	fault_ops;	/* FAULT_READ | FAULT_WRITE */
	_Atomic uint8_t	fault_at;	/* FAULT_AT_* */
	atomic_int	fault_errno;
	uint8_t		*mem;		/* RAM: data lives here (no copy) */
	uint64_t	mem_reserved;	/* RAM: address space, room to grow */
	uint64_t	mem_usable;	/* RAM: of it, accessible (the rest
					 * PROT_NONE) */
	_Atomic uint8_t	*chunks;	/* RAM: state of each chunk of mem */
	uint32_t	chunk_shift;
	int		fd;
	uint32_t	lba_shift;
	/* Capacity in logical blocks: what hosts may address.  It changes
	 * live (ns-resize.c, on the main loop); other threads read it with
	 * ns_nlb(), and size (bytes the backend holds) with ns_bytes(). */
	uint64_t	nlb;
	atomic_bool	resize_busy;	/* a shrink waits for earlier I/O */
	bool		vwc;		/* volatile write cache: Flush matters */
	/* Sizes that spare the backend work, in bytes, 0 = none (Identify
	 * NPWG, NOWS, NPDG): preferred write and deallocate granularity,
	 * optimal write size. */
	uint32_t	pref_write, opt_write, pref_discard;
	/* Reservations (reservation.c): the type held, 0 for none, read by
	 * the I/O path without a lock; the rest under resv->mtx. */
	_Atomic uint8_t	resv_rtype;
	struct ns_resv	*resv;
	atomic_uint	epoch;		/* moved on by ns_drain() */
	atomic_bool	drain_busy;
	/* Fused Compare and Write (fused.c): writes wait while write_gate
	 * is set; held_back counts commands set aside meanwhile. */
	atomic_uint	write_gate;
	atomic_uint	held_back;
	struct ns_fused	*fused;
	struct ns_atomic *atomic;	/* atomic.c: one-block commands */
};
TAILQ_HEAD(namespace_list, namespace);

/* An address prefix (prefix.c): 10.0.0.0/8, fd00::/8, 192.0.2.7/32. */
struct addr_prefix {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];
	uint8_t		bits;
};

struct host {
	TAILQ_ENTRY(host) entry;
	char		nqn[NVMFD_NQN_MAX + 1];
	/* Where it may connect from; none: anywhere. */
	struct addr_prefix *from;
	size_t		nfrom;
	/* DH-HMAC-CHAP: as configured (the secret or "@PATH"), and parsed */
	char		*dhchap_secret, *dhchap_ctrl_secret;
	struct dhchap_key key, ctrl_key;
	struct host_tls	*tls;		/* TLS PSK; NULL: none */
};
TAILQ_HEAD(host_list, host);

/*
 * Who may use the discovery controller (the discovery NQN), and with which
 * DH-HMAC-CHAP keys (discovery-access.c).  Open to any host by default:
 * listing a host with a key makes that host authenticate, it does not shut
 * others out; allow_any_host false does.
 */
struct discovery_access {
	bool		allow_any_host;
	struct host_list hosts;
	struct dhchap_offer dhchap;	/* hashes, groups; none: all */
};

struct subsystem {
	TAILQ_ENTRY(subsystem) entry;
	char		nqn[NVMFD_NQN_MAX + 1];
	char		serial[21];
	char		model[41];
	bool		allow_any_host;
	struct host_list hosts;
	struct namespace_list namespaces;	/* sorted by NSID */
	uint16_t	*port_ids;	/* NULL: every port */
	size_t		nport_ids;
	uint32_t	max_io_queues;
	struct dhchap_offer dhchap;
	uint16_t	cntlid_min, cntlid_max;	/* 0: the global range */
	struct ana_map	ana;		/* ANA group states by port */
	int		cfg_line, cfg_col;

	/* runtime (main loop) */
	TAILQ_HEAD(, controller) controllers;
	uint16_t	next_cntlid;
	/* NSID -> namespace, read lock-free by workers */
	_Atomic(struct namespace *) *ns_table;
	bool		removed;	/* freed when its controllers are gone */
	uint64_t	created;	/* time it went live: power-on hours */
	/* health.c: counters kept across runs in state_dir */
	char		*health_path;	/* NULL: no state_dir */
	uint64_t	power_on_before;	/* seconds on in earlier runs */
	uint64_t	power_cycles, unsafe_shutdowns;
	struct busy_clock busy;		/* any of its controllers busy */
};
TAILQ_HEAD(subsystem_list, subsystem);

struct referral {
	TAILQ_ENTRY(referral) entry;
	char		address[64];
	char		service[16];
	int		family;
	uint16_t	port_id;
};
TAILQ_HEAD(referral_list, referral);

struct config {
	char		*path;		/* NULL for the built-in default */
	int		workers;	/* 0 = one per CPU */
	uint32_t	poll_us;	/* adaptive polling window, 0 = off */
	uint32_t	mdts;		/* max data transfer, bytes */
	uint32_t	max_controllers;	/* I/O controllers */
	uint32_t	max_disc_controllers;	/* discovery controllers */
	uint32_t	max_connections;
	uint16_t	cntlid_min, cntlid_max;	/* dynamic controller IDs */
	char		*ctl_socket;	/* NULL: the default or -s */
	char		*ctl_group;	/* group allowed besides root */
	char		*ctl_ro_socket;	/* read-only socket, optional */
	char		metrics_address[64];	/* numeric, for metrics.c */
	uint32_t	metrics_port;	/* 0: no metrics listener */
	struct port_list ports;
	struct subsystem_list subsystems;
	struct hmap	subsys_by_nqn;	/* the subsystems, by NQN */
	struct referral_list referrals;
	struct discovery_access discovery;
	/* host role (host.h): read at start only */
	struct host_params *host_conns;
	size_t		nhost_conns;
	char		*nbd_socket;	/* NBD listeners */
	char		*nbd_address;
	char		*nbd_port;
	enum port_tls	nbd_tls;	/* NBD_OPT_STARTTLS: off, or offered */
	char		*nbd_tls_psk_file;
	char		*state_dir;	/* reservation state files, or NULL */
};

/* config.c */
struct config *config_default(void);
/* Returns NULL and fills err with "file:line:column: key: message". */
struct config *config_load(const char *path, char *err, size_t errlen);
struct config *config_load_string(const char *name, const char *text,
	    char *err, size_t errlen);
void	config_free(struct config *);
/* "4096", "16K", "1 G": 0, -1 malformed, -2 too large. */
int	config_parse_size(const char *, uint64_t *);

/* config-write.c */
int	config_write(const struct config *, FILE *, bool secrets);
bool	config_has_inline_secrets(const struct config *);

/* subsystem.c: lookups and stable identifiers */
struct subsystem *subsystem_find(struct config *, const char *nqn);
/* Add to / take out of cfg->subsystems and its index; link: -1 = no memory */
int	subsystem_link(struct config *, struct subsystem *);
void	subsystem_unlink(struct config *, struct subsystem *);
struct namespace *namespace_find(struct subsystem *, uint32_t nsid);
struct port	*port_find(struct config *, uint16_t id);
/* Whether hostnqn, connecting from peer, may use the subsystem. */
bool	subsystem_host_allowed(struct subsystem *, const char *hostnqn,
	    const struct sockaddr *peer);

/* prefix.c */
int	prefix_parse(const char *, struct addr_prefix *);
void	prefix_format(const struct addr_prefix *, char *, size_t);
bool	prefix_match(const struct addr_prefix *, size_t,
	    const struct sockaddr *);
/* "A[,B...]" into a new array; "any" or "" gives none.  0 or -1. */
int	prefix_list_parse(const char *, struct addr_prefix **, size_t *);
bool	subsystem_has_vwc(struct subsystem *);
struct host *host_find(struct subsystem *, const char *hostnqn);
struct host *host_list_find(struct host_list *, const char *hostnqn);
/* Whether hostnqn may connect from peer: any host, or a listed one whose
 * from: prefixes (if any) hold peer. */
bool	hosts_allow(bool allow_any_host, struct host_list *,
	    const char *hostnqn, const struct sockaddr *peer);
void	host_list_free(struct host_list *);
void	host_free(struct host *);
bool	subsystem_on_port(struct subsystem *, struct port *);
void	namespace_derive_ids(struct namespace *);
void	subsystem_derive_serial(struct subsystem *);
bool	nqn_valid(const char *nqn);

/* tls-key.c: TLS settings of ports and allowed hosts */
const char *port_tls_name(enum port_tls);
int	port_tls_parse(const char *, enum port_tls *);
/* spec: "NVMeTLSkey-1:..." or "@FILE"; kdf: "compat", "rfc8446" or NULL.
 * NULL with err set (never key bytes) on failure. */
struct host_tls *host_tls_load(const char *spec, const char *kdf, char *err,
	    size_t errlen);
void	host_tls_free(struct host_tls *);
bool	host_tls_equal(const struct host_tls *, const struct host_tls *);
const char *host_tls_spec(const struct host_tls *);
const char *host_tls_kdf_name(const struct host_tls *);
int	tls_read_secret_file(const char *path, char *buf, size_t bufsz,
	    char *err, size_t errlen);
struct host_psk;
int	host_psk_make(struct host_psk *, const char *spec, const char *kdf,
	    const char *hostnqn, const char *subnqn, char *err, size_t errlen);
/* The allowed host's PSK for a subsystem (the discovery NQN: its own in
 * the discovery section, else any subsystem's); NULL if there is none. */
const struct host_tls *host_tls_find(struct config *, const char *subnqn,
	    const char *hostnqn);
const char *backend_type_name(enum backend_type);
void	uuid_format(char *buf, size_t len, const uint8_t *uuid);

/* --------------------------------------------------------------- backends */

enum io_op { IO_READ, IO_WRITE, IO_FLUSH, IO_WRITE_ZEROES, IO_DISCARD };

/* Private to io-engine.c: lets it queue and resume an I/O without malloc.
 * While an I/O is in flight, its iov entries may be trimmed in place; they
 * are restored before done() is called. */
struct nvmf_io_eng {
	STAILQ_ENTRY(nvmf_io) link;	/* overflow, job or completion list */
	uint64_t	done;		/* bytes transferred so far */
	int		fd;
	int		res;		/* result of a thread-pool job */
	unsigned	flags;
	int		trim[2];	/* iov indexes trimmed, -1 = none */
	struct iovec	saved[2];	/* their original values */
	int		(*call)(struct nvmf_io *);	/* io_engine_call */
	int		fault;		/* injected errno; 0: short transfer */
};

struct nvmf_io {
	enum io_op	op;
	bool		fua;
	struct namespace *ns;
	uint64_t	offset;		/* bytes */
	uint64_t	len;		/* bytes */
	struct iovec	*iov;
	int		iovcnt;
	/* called on the submitting loop; err is 0 or a negative errno */
	void		(*done)(struct nvmf_io *, int err);
	struct nvmf_io_eng eng;
};

struct backend_ops {
	const char	*name;
	int	(*open)(struct namespace *, char *err, size_t errlen);
	void	(*close)(struct namespace *);
	/* Start an I/O from the current loop's thread; never blocks. */
	void	(*submit)(struct nvmf_io *);
	/* Optional: gain write access for a namespace opened read-only. */
	int	(*set_writable)(struct namespace *, char *err, size_t errlen);
	/* Optional, main loop: make the storage bytes long.  Called before a
	 * larger size is shown to hosts, and for a smaller one once every
	 * command that started before the change has completed. */
	int	(*resize)(struct namespace *, uint64_t bytes, char *err,
		    size_t errlen);
	/* Optional, main loop: the size of the storage now (a file grown by
	 * someone else, a block device resized). */
	int	(*probe_size)(struct namespace *, uint64_t *bytes, char *err,
		    size_t errlen);
	/* Optional, main loop: serve from other storage (path) from now on,
	 * in place: commands in flight finish on the old one. */
	int	(*replace)(struct namespace *, const char *path, char *err,
		    size_t errlen);
};

/* The live capacity, from any thread (see struct namespace). */
static inline uint64_t
ns_nlb(const struct namespace *ns)
{
	return (__atomic_load_n(&ns->nlb, __ATOMIC_ACQUIRE));
}

static inline uint64_t
ns_bytes(const struct namespace *ns)
{
	return (__atomic_load_n(&ns->size, __ATOMIC_ACQUIRE));
}

/* ns-resize.c, main loop.  A new size for a namespace; the backend's
 * storage follows (RAM memory, a file's length).  Hosts are told. */
int	ns_resize(struct namespace *, uint64_t bytes, char *err, size_t errlen);
/* The storage's own size again (file, block device); *changed says if the
 * namespace took a new one. */
int	ns_rescan(struct namespace *, bool *changed, char *err, size_t errlen);
/* Other storage for a file or block namespace (set-ns --path), its size
 * taken as rescan does; hosts are told.  -1 with err, -2 busy. */
int	ns_replace(struct namespace *, const char *path, char *err,
	    size_t errlen);

/* registry.c: the running configuration, changed live from the main loop */
int	registry_start(struct config *);
void	registry_stop(struct config *);
int	ns_publish(struct subsystem *, struct namespace *, char *err, size_t);
void	ns_unpublish(struct namespace *);
void	namespace_free(struct namespace *);
/* Count a command in; returns the epoch half to count it out with. */
unsigned ns_hold(struct namespace *);
void	ns_release(struct namespace *, unsigned epoch);
/* Start a new epoch; the old half's count, summed over loops, goes to 0
 * once every command counted in before has been counted out. */
unsigned ns_epoch_next(struct namespace *);
unsigned ns_epoch_count(struct namespace *, unsigned epoch);
/* Uncounted while it waits (ns->held_back keeps the namespace), counted
 * again after; both on the command's loop. */
void	ns_set_aside(struct nvmf_cmd *);
void	ns_take_back(struct nvmf_cmd *);
/* Set aside until ns_unpark (any thread) sends it back to its loop, which
 * runs then(cmd), or fails it if its queue died meanwhile (unless
 * cmd->park_always: then(cmd) runs anyway and sees to that).  The caller
 * keeps it on a list of its own (cmd->link) in between. */
void	ns_park(struct nvmf_cmd *, void (*then)(struct nvmf_cmd *));
void	ns_unpark(struct nvmf_cmd *);
/* ns-drain.c: done(arg) on this loop once every command that started on
 * the namespace before this call has completed, own[] (at most 2) aside. */
void	ns_drain(struct namespace *, struct nvmf_cmd **own, int nown,
	    void (*done)(void *), void *arg);
void	ns_account(struct namespace *, uint8_t opc, uint64_t bytes,
	    uint16_t status, uint64_t lat_ns);
void	ns_stats_sum(struct namespace *, struct ns_stats *);
/* Error completions by status (SCT << 8 | SC), counted per loop. */
#define METRICS_STATUSES	0x800
void	status_account(uint16_t status);
void	status_counts(uint64_t out[METRICS_STATUSES]);
int	ns_set_readonly(struct namespace *, bool ro, char *err, size_t);
int	subsystem_publish(struct config *, struct subsystem *, char *err, size_t);
void	subsystem_unpublish(struct config *, struct subsystem *);
void	subsystem_maybe_free(struct subsystem *);
int	port_publish(struct config *, struct port *, char *err, size_t);
void	port_unpublish(struct config *, struct port *);
void	host_revoke(struct subsystem *, const char *hostnqn);
void	port_ref(struct port *);
void	port_unref(struct port *);

/* backend.c */
int	namespace_open(struct namespace *, char *err, size_t errlen);
void	namespace_close(struct namespace *);
int	backend_io_check(const struct nvmf_io *);
bool	namespace_open_blocks(const struct namespace *);
int	namespace_open_async(struct namespace *,
	    void (*done)(struct namespace *, const char *err, void *),
	    void *arg);

#define FAULT_READ	0x1
#define FAULT_WRITE	0x2
#define FAULT_AT_IO	0
#define FAULT_AT_ENGINE	1
/* io.c: take one of ns's injected errors for a read or write (op) at
 * where (FAULT_AT_*); true, with the errno to report (0: a short
 * transfer), if this one fails. */
bool	fault_take(struct namespace *, enum io_op op, uint8_t where, int *err);

/* backend-ram.c, backend-file.c */
extern const struct backend_ops backend_ram_ops;
const uint8_t *ram_data(struct namespace *, uint64_t off, uint64_t len);
bool	ram_ready(struct namespace *, uint64_t off, uint64_t len);
uint64_t ram_chunk_count(const struct namespace *);
uint64_t ram_resident(struct namespace *);
bool	ram_chunk_prefill(struct namespace *, uint64_t chunk);

/* backend-rbd.c (configure --with-rbd) */
#ifdef HAVE_RBD
extern const struct backend_ops backend_rbd_ops;
/* Wait for images being closed off the loops (at exit). */
void	rbd_closes_wait(void);
#else
static inline void rbd_closes_wait(void) { }
#endif
/* subsystem.c: RBD settings */
void	rbd_spec_free(struct rbd_spec *);
bool	rbd_spec_equal(const struct rbd_spec *, const struct rbd_spec *);
/* "pool/[namespace/]image" into buf. */
void	rbd_spec_format(const struct rbd_spec *, char *buf, size_t len);

/* ram-populate.c */
void	ram_populate_start(struct namespace *);
void	ram_populate_cancel(struct namespace *);
extern const struct backend_ops backend_file_ops;

/* io-engine.c: per-loop asynchronous file I/O (io_uring, thread-pool fallback) */
struct io_engine;
struct io_engine *io_engine_create(struct loop *);
void	io_engine_destroy(struct io_engine *);
void	io_engine_submit(struct io_engine *, struct nvmf_io *, int fd);
/* Run fn(io) on a pool thread (work that may block, off the loop); its
 * result is the err given to io->done on the loop. */
void	io_engine_call(struct io_engine *, struct nvmf_io *,
	    int (*fn)(struct nvmf_io *));
void	io_engine_flush(struct io_engine *);	/* push queued submissions */
const char *io_engine_kind(struct io_engine *);

/* bufpool.c: per-loop data buffers (page aligned), no malloc in steady state */
struct bufpool;
struct bufpool *bufpool_create(size_t max_len);
void	bufpool_destroy(struct bufpool *);
void	*bufpool_get(struct bufpool *, size_t len);
void	bufpool_put(struct bufpool *, void *, size_t len);

/* ------------------------------------------------------------------ loops */

struct loop_msg;

struct loop {
	struct event_base *base;
	int		index;		/* -1 for the main loop */
	pthread_t	thread;
	pthread_mutex_t	mtx;
	STAILQ_HEAD(, loop_msg) inbox;
	struct event	*wake;
	atomic_uint	nqpairs;	/* load, for placing new queues */
	struct bufpool	*pool;
	struct io_engine *engine;
	TAILQ_HEAD(, qpair) dirty;	/* queue pairs with output to flush */
	uint64_t	now;		/* monotonic ns, read once per turn */
	uint64_t	turns;		/* callbacks run, for adaptive polling */
};

/* loop.c */
extern struct loop *main_loop;
extern uint64_t loop_poll_ns;	/* adaptive polling window, 0 = off */
extern __thread struct loop *cur_loop;
int	loops_init(int nworkers, size_t max_io);
void	loops_start(void);
void	loops_stop(void);
int	loops_count(void);
struct loop *loop_worker(int i);
struct loop *loop_pick_worker(void);
void	loop_post(struct loop *, void (*fn)(void *), void *arg);
void	loop_finish_turn(struct loop *);	/* flush dirty qpairs, kick engines */
void	loop_tick(struct loop *);		/* a turn begins: read the clock */

/* ------------------------------------------------------------- transport */

enum cmd_dir { DIR_NONE, DIR_H2C, DIR_C2H };

struct nvmf_cmd {
	TAILQ_ENTRY(nvmf_cmd) link;	/* free list or transmit queue */
	struct qpair	*qp;
	struct nvme_sqe	sqe;
	struct nvme_cqe	cqe;

	/* data as described by the SGL */
	enum cmd_dir	dir;
	uint32_t	data_len;
	const uint8_t	*icd;		/* in-capsule data, valid in dispatch */
	uint32_t	icd_len;
	struct iovec	iov[NVMFD_CMD_MAX_IOV];	/* where the data lives */
	int		iovcnt;
	void		*buf;		/* owned buffer, or NULL */
	void		*buf2;		/* second pool buffer (Compare, Copy) */
	uint32_t	buf2_len;
	uint32_t	seq;		/* progress through multi-step commands */
	size_t		buf_len;
	bool		buf_malloced;

	/* H2C data flow */
	uint32_t	h2c_received;
	bool		h2c_failed;	/* a data digest error: fail at the end */
	uint32_t	r2t_offset, r2t_len;
	uint16_t	ttag;
	void		(*data_ready)(struct nvmf_cmd *);

	/* backend request */
	struct nvmf_io	io;
	struct namespace *ns;
	unsigned	ns_epoch;	/* see ns_hold() */
	void		(*next)(struct nvmf_cmd *, uint16_t);	/* step after */
	struct nvmf_cmd	*fused_peer;	/* the other command of a fused pair */
	bool		resumed;	/* dispatched again after being held */
	void		(*parked_then)(struct nvmf_cmd *);	/* ns_park */
	bool		park_always;	/* then() even if the queue died */
	bool		pair_locked;	/* a fused pair holds its stripe */
	void		(*atomic_done)(struct nvmf_io *, int);	/* atomic.c */
	uint64_t	start_ns;

	/* transmit */
	int		tx_kind;
	uint8_t		hdr[sizeof(struct nvme_tcp_data_pdu) + 4];
	uint8_t		hdr_len;	/* header + digest */
	uint8_t		pad_len;	/* zeroes up to the host's PDA */
	uint8_t		rsp[sizeof(struct nvme_tcp_rsp_pdu) + 4];
	uint32_t	rsp_len;	/* 0 when C2HData carried SUCCESS */
	uint8_t		ddgst[4];
	uint32_t	c2h_len;	/* data bytes returned to the host */
	bool		busy;
	bool		in_backend;	/* the backend holds it: wait for done */
	bool		atomic_held;	/* sends RAM its block holds (atomic.c) */
};

/* tls-conn.c: TLS 1.3 on a connection's socket, controller role */
struct tls_conn;
int	tls_server_init(void);
void	tls_server_free(void);
struct tls_conn *tls_conn_accept(int fd, const char *peer);
struct tls_conn *tls_conn_connect(int fd, const char *peer,
	    const char *identity, const uint8_t *psk, size_t psklen, int hash,
	    char *err, size_t errlen);
/* A PSK by its identity (NUL-terminated, printable): 0 with psk and
 * *psklen (at most TLS_EXT_PSK_MAX) set, or -1: unknown. */
typedef int (*tls_psk_lookup_fn)(void *arg, const char *identity,
	    uint8_t *psk, size_t *psklen);
#define TLS_EXT_IDENTITY_MAX	128
#define TLS_EXT_PSK_MAX		64
/* Server side, PSKs named as in GnuTLS's PSK files (NBD); main loop. */
struct tls_conn *tls_conn_accept_psk(int fd, const char *peer,
	    tls_psk_lookup_fn, void *arg);
/* The identity the peer's PSK had (tls_conn_accept_psk), once done. */
const char *tls_conn_identity(struct tls_conn *);
int	tls_conn_write_full(struct tls_conn *, const void *, size_t);
int	tls_conn_read_full(struct tls_conn *, void *, size_t);
void	tls_conn_free(struct tls_conn *);
/* 1 done, 0 wants to read, 2 wants to write, -1 failed (why set). */
int	tls_conn_handshake(struct tls_conn *, char *why, size_t whylen);
const char *tls_conn_cipher(struct tls_conn *);
/* True if the PSK identity named this host and subsystem. */
bool	tls_conn_names(struct tls_conn *, const char *hostnqn,
	    const char *subnqn);
/* Decrypted bytes or a whole record wait (a partial record does not). */
bool	tls_conn_rx_pending(struct tls_conn *);
/* read(2) calls made for records so far (tests count them). */
uint64_t tls_conn_sys_reads(const struct tls_conn *);
bool	tls_conn_tx_pending(struct tls_conn *);
int	tls_conn_flush(struct tls_conn *);
ssize_t	tls_conn_readv(struct tls_conn *, const struct iovec *, int cnt);
ssize_t	tls_conn_sendv(struct tls_conn *, const struct iovec *, int cnt);

/*
 * The byte stream under NVMe/TCP: the socket itself, or TLS on it.  The
 * plain case is the system call and nothing else.
 */
static inline ssize_t
stream_readv(int fd, struct tls_conn *t, const struct iovec *iov, int cnt)
{
	if (t == NULL)
		return (readv(fd, iov, cnt));
	return (tls_conn_readv(t, iov, cnt));
}

static inline ssize_t
stream_sendv(int fd, struct tls_conn *t, struct iovec *iov, int cnt)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = cnt };

	if (t == NULL)
		return (sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT));
	return (tls_conn_sendv(t, iov, cnt));
}

/* tcp-io.c: iovecs, the receive buffer and blocking reads, shared by both
 * roles (and nvmfctl) */
struct rxbuf {
	uint8_t		*buf;
	size_t		cap, off, len;
	uint32_t	direct_left;	/* payload bytes still to read in place */
	struct iovec	direct[NVMFD_CMD_MAX_IOV];
	int		ndirect;
};
int	iov_slice(const struct iovec *src, int srccnt, size_t off, size_t len,
	    struct iovec *dst, int max);
int	iov_skip(struct iovec *, int cnt, size_t skip);
ssize_t	rxbuf_read(struct rxbuf *, int fd, struct tls_conn *, bool *drained);
void	rxbuf_take(struct rxbuf *, const struct iovec *dst, int ndst, size_t len);
int	fd_read_full(int fd, void *buf, size_t len, int timeout_ms);

enum qpair_state {
	QP_TLS_HANDSHAKE,	/* TLS port: first byte, then the handshake */
	QP_WAIT_ICREQ,		/* nothing received yet */
	QP_WAIT_CONNECT,	/* IC exchanged, only Connect accepted */
	QP_ACTIVE,
	QP_CLOSING,		/* TermReq or shutdown sent, draining output */
	QP_DEAD,
};

struct qpair_stats {
	uint64_t	cmds, bytes_read, bytes_written, errors;
	/* I/O commands completed on a namespace, as the SMART log counts */
	uint64_t	reads, writes, data_read, data_written;
};

struct qpair {
	TAILQ_ENTRY(qpair) dirty_link;
	TAILQ_ENTRY(qpair) all_link;	/* every connection, under a mutex */
	uint64_t	created;
	bool		on_dirty;
	atomic_int	refs;
	struct loop	*loop;		/* serving it now; NULL in transit */
	struct loop	*owner;		/* where messages for it go */
	struct loop	*handoff;	/* move here after this read turn */
	int		fd;
	struct tls_conn	*tls;		/* NULL: plain TCP */
	struct event	*rev, *wev, *timer;	/* in ev_store while attached */
	/* Attaching to a loop allocates nothing: a queue pair handed to a
	 * worker cannot be lost there for want of memory. */
	struct event	ev_store[3];
	enum qpair_state state;
	struct port	*port;
	char		peer[80];	/* "addr:port" of the host */
	struct sockaddr_storage peer_sa;
	char		local_addr[64];	/* our address the host reached */

	/* negotiated */
	bool		hdgst, ddgst;
	uint8_t		hpda;
	uint8_t		maxr2t;
	uint32_t	maxh2cdata;
	uint32_t	max_icd;	/* in-capsule data accepted on this queue */

	/* queue */
	uint16_t	qid;
	uint16_t	sqsize;		/* entries (not 0's based) */
	uint16_t	sqhd;
	bool		sqflow_disabled;
	struct controller *ctrl;
	struct nvmf_cmd	**cmds;		/* by transfer tag */
	uint16_t	ncmds;		/* allocated so far (slabs) */
	struct nvmf_cmd	*connect_cmd;	/* the one command before Connect */
	struct nvmf_cmd	*fused_first;	/* a fused first awaiting its second */
	TAILQ_HEAD(, nvmf_cmd) free_cmds;
	unsigned	inflight;	/* commands handed to the layer above */
	bool		busy_counted;	/* in ctrl->busy (I/O queue, inflight) */
	uint64_t	last_cmd_ns;	/* loop time of the last command: keep
					   alive by traffic (relaxed atomic) */

	/* receive */
	struct rxbuf	rx;
	struct nvmf_cmd	*rx_h2c_cmd;	/* H2CData payload being read */
	uint32_t	rx_h2c_datal;
	uint32_t	rx_h2c_datao;

	/* transmit */
	TAILQ_HEAD(, nvmf_cmd) txq;
	size_t		tx_done;	/* bytes of the head entry already sent */
	uint8_t		ctl_pdu[sizeof(struct nvme_tcp_term_pdu) + NVME_TCP_TERM_MAX_DATA];
	uint32_t	ctl_len, ctl_sent;	/* ICResp or C2HTermReq */
	bool		close_after_tx;

	struct qpair_stats stats;
	char		*error;		/* why it went down, for the log */

	/* DH-HMAC-CHAP (auth.c), on the loop that owns the queue */
	bool		auth_required;	/* Connect answered with ATR */
	bool		authenticated;
	struct auth_qp	*auth;		/* transaction state, NULL before one */
};

/* tcp-pdu.c: pure PDU codec */
struct pdu_limits {
	bool		hdgst, ddgst;
	uint8_t		cpda;		/* alignment we asked the peer for */
	uint32_t	max_icd;	/* in-capsule data limit (controller role) */
	uint32_t	maxh2cdata;	/* H2CData limit (controller role) */
};
/* Validate a received common header (all 8 bytes present) for the controller
 * role.  Returns 0, or a FES with *fei set to the offending byte offset. */
int	tcp_pdu_check_ch(const struct nvme_tcp_hdr *, enum qpair_state,
	    const struct pdu_limits *, uint32_t *fei);
int	tcp_pdu_check_ch_host(const struct nvme_tcp_hdr *, bool ic_done,
	    const struct pdu_limits *, uint32_t *fei);
int	tcp_pdu_check_icreq(const struct nvme_tcp_ic_pdu *, uint32_t *fei);
uint32_t tcp_pdu_data_offset(uint8_t hlen, bool hdgst, uint8_t pda);
void	tcp_pdu_build_ic(struct nvme_tcp_ic_pdu *, uint8_t type, uint8_t pda,
	    bool hdgst, bool ddgst, uint32_t maxr2t_or_maxh2cdata);
void	tcp_pdu_put_hdgst(uint8_t *hdr, size_t hlen, bool on);
bool	tcp_pdu_hdgst_ok(const uint8_t *hdr, size_t hlen);
size_t	tcp_pdu_build_term(uint8_t *out, uint8_t type, uint16_t fes, uint32_t fei,
	    const void *bad_hdr, size_t bad_len);
const char *tcp_pdu_type_name(uint8_t type);
const char *tcp_fes_name(uint16_t fes);

/* tcp.c: NVMe/TCP queue pair, controller role */
struct qpair *qpair_create(struct loop *, int fd, struct port *,
	    const char *peer, const char *local_addr);
void	qpair_attach(struct qpair *, struct loop *);	/* start I/O on a loop */
void	qpair_detach(struct qpair *);			/* stop I/O on its loop */
void	qpair_close(struct qpair *, const char *why);
void	qpairs_close_port(struct port *);	/* NULL: every port */
typedef void (*qpair_visit_fn)(struct qpair *, void *);
void	qpairs_foreach(qpair_visit_fn, void *);
void	qpair_fatal(struct qpair *, uint16_t fes, uint32_t fei, const char *why);
void	qpair_ref(struct qpair *);
void	qpair_unref(struct qpair *);
void	qpair_mark_dirty(struct qpair *);
void	qpair_flush(struct qpair *);
int	qpair_set_depth(struct qpair *, uint16_t sqsize);
/* Commands: the layer above completes every dispatched command exactly once. */
void	cmd_complete(struct nvmf_cmd *);
void	cmd_complete_status(struct nvmf_cmd *, uint16_t status);
void	cmd_fetch_data(struct nvmf_cmd *, void (*ready)(struct nvmf_cmd *));
int	cmd_alloc_buf(struct nvmf_cmd *, size_t len);

/* host-tcp.c: NVMe/TCP queue pair, host role */
#define HOST_REQ_IOV	NVMFD_CMD_MAX_IOV
#define HOST_H2C_PDUS	8

struct host_qpair;

struct host_req {
	/* filled by the caller */
	struct nvme_sqe	sqe;
	struct iovec	iov[HOST_REQ_IOV];
	int		iovcnt;
	uint32_t	data_len;
	enum cmd_dir	dir;
	void		(*done)(struct host_req *, const struct nvme_cqe *);
	void		*arg;
	uint64_t	start_ns;
	bool		raw_sgl;	/* send sqe's SGL descriptor as it is
					 * (perf --fuzz); data_len still frames */
	/* transport state */
	struct host_qpair *hq;
	TAILQ_ENTRY(host_req) tx_link;
	int		tx_kind;
	bool		icd;
	bool		completed;
	struct nvme_cqe	cqe;
	uint32_t	c2h_received;
	uint16_t	ttag;
	uint32_t	r2t_offset, r2t_len, h2c_sent;
	bool		h2c_more;
	int		h2c_npdus;
	uint8_t		hdr[sizeof(struct nvme_tcp_cmd_pdu) + 4 + 128];
	uint32_t	hdr_len;
	uint8_t		h2c_hdr[HOST_H2C_PDUS][sizeof(struct nvme_tcp_data_pdu) + 4 + 128];
	uint8_t		ddgst[HOST_H2C_PDUS][4];
};

/* A TLS PSK for the host role: the identity to offer and its TLS PSK. */
struct host_psk {
	char		identity[16 + 2 * 224];
	uint8_t		psk[48];
	size_t		len;
	int		hash;		/* 1 SHA-256, 2 SHA-384 */
};

struct host_qpair {
	int		fd;
	struct tls_conn	*tls;		/* NULL: plain TCP */
	struct event_base *base;
	struct event	*rev, *wev;
	bool		dead;
	char		error[128];
	bool		hdgst, ddgst;
	uint8_t		cpda;
	uint32_t	maxh2cdata;
	uint32_t	max_icd;	/* I/O in-capsule data (from IOCCSZ) */
	uint16_t	qid;
	uint16_t	depth, outstanding, next_cid;
	struct host_req	**reqs;		/* by CID */
	TAILQ_HEAD(, host_req) txq;
	size_t		tx_done;
	bool		tx_pending;
	struct rxbuf	rx;
	struct host_req	*rx_req;	/* C2HData payload being read */
	uint32_t	rx_datao, rx_datal;
	bool		rx_success;
	uint32_t	connect_dw0;	/* CNTLID and AUTHREQ of the Connect */
	/* told when the queue fails (on its loop), with user */
	void		(*on_fail)(struct host_qpair *);
	void		*user;
};

struct host_qpair *host_connect(struct event_base *, const char *addr,
	    const char *port, bool hdgst, bool ddgst, uint16_t depth,
	    char *err, size_t errlen);
/* The same inside TLS with psk (NULL: plain). */
struct host_qpair *host_connect_tls(struct event_base *, const char *addr,
	    const char *port, const struct host_psk *psk, bool hdgst,
	    bool ddgst, uint16_t depth, char *err, size_t errlen);
void	host_close(struct host_qpair *);
/* Stop its events on their loop, then (on the new loop's thread, or
 * before that loop runs it) start them on base; 0 or -1. */
void	host_qpair_detach(struct host_qpair *);
int	host_qpair_attach(struct host_qpair *, struct event_base *);
int	host_submit(struct host_qpair *, struct host_req *);
void	host_flush(struct host_qpair *);
void	host_queue_h2c(struct host_qpair *, struct host_req *);
int	host_run(struct host_qpair *, struct host_req *, int timeout_ms);
int	host_fabrics_connect(struct host_qpair *, uint16_t qid, uint16_t sqsize,
	    const char *subnqn, const char *hostnqn, const uint8_t hostid[16],
	    uint16_t cntlid, uint32_t kato_ms, uint16_t *status);
/* host-auth.c: DH-HMAC-CHAP on a queue whose Connect set ATR; ctrl_key
 * NULL or empty for unidirectional.  0, or -1 with err. */
int	host_authenticate(struct host_qpair *, const char *subnqn,
	    const char *hostnqn, const struct dhchap_key *key,
	    const struct dhchap_key *ctrl_key, char *err, size_t errlen);

/* perf.c: the load generator (nvmfd perf) */
int	perf_main(int argc, char *argv[]);

/* listener.c */
int	listener_start(struct port *);
void	listener_stop(struct port *);
void	listeners_stop(struct config *);
int	accept_shedding(int lfd, struct sockaddr *, socklen_t *);
extern atomic_uint nconnections;

/* ------------------------------------------------------------ controller */

struct controller {
	TAILQ_ENTRY(controller) entry;
	struct subsystem *subsys;	/* NULL for a discovery controller */
	struct port	*port;
	uint16_t	cntlid;
	char		hostnqn[NVMFD_NQN_MAX + 1];
	char		subnqn[NVMFD_NQN_MAX + 1];	/* as the host named it */
	uint8_t		hostid[16];
	struct qpair	*admin;
	struct qpair	**ioq;		/* [1..max_qid] */
	uint16_t	max_qid;
	uint16_t	nioq;
	uint32_t	cc, csts;
	uint32_t	kato_ms;
	struct event	*kato_ev;
	uint32_t	aen_cfg;
	uint32_t	aen_pending[4];	/* events waiting for an AER */
	int		naen_pending;
	uint32_t	aen_masked;	/* log pages whose event awaits a read */
	uint32_t	features[16];	/* plain stored values, by FID */
	struct nvmf_cmd	*aer[NVMFD_AERL + 1];
	int		naer;
	/* Reservation notices (resv-log.c) */
	uint8_t		resv_mask[NVMFD_MAX_NSID + 1];	/* by NSID */
	uint64_t	resv_log_count;
	struct resv_log_entry {
		uint64_t count;
		uint32_t nsid;
		uint8_t	type;
	}		resv_log[RESV_LOG_DEPTH];
	int		resv_nlog;
	uint32_t	changed_ns[1024];
	int		nchanged_ns;	/* -1 overflow: report 0xffffffff */
	bool		vwc_enabled;
	struct busy_clock busy;
	struct qpair_stats gone_stats;	/* of its I/O queues already gone */
	uint32_t	num_io_queues;	/* granted, 0's based */
	bool		dying;
	int		refs;		/* main loop only */
	uint64_t	created;
	/* Discovery: the log as built for this host, reused for every chunk
	 * the host reads until the generation changes. */
	uint8_t		*disc_log;
	size_t		disc_len;
	uint64_t	disc_gen;
	/* Error Information log: the last NVMFD_ERR_ENTRIES failed commands,
	 * written by whichever loop completes them. */
	pthread_mutex_t	err_mtx;
	uint64_t	err_count;
	uint8_t		err_log[NVMFD_ERR_ENTRIES][64];

	/* DH-HMAC-CHAP: written on the main loop, copied by every queue's
	 * Negotiate under auth_mtx (I/O queues run on workers) */
	pthread_mutex_t	auth_mtx;
	struct dhchap_cred auth_cred;
	atomic_int	auth_busy;	/* queues in a transaction */
	_Atomic uint64_t auth_last_ns;	/* last message, counts as traffic */
};

/* controller.c */
void	ctrl_dispatch_admin(struct nvmf_cmd *);
void	ctrl_dispatch_io(struct nvmf_cmd *);
void	ctrl_keep_alive(struct controller *);
void	ctrl_destroy(struct controller *, const char *why);
void	ctrl_admin_closing(struct controller *);
void	ctrl_admin_gone(struct controller *);
void	ctrl_ioq_gone(struct qpair *);
void	ctrl_notify_ns_changed(struct subsystem *, uint32_t nsid);
void	ctrl_event(struct controller *, uint32_t aer_dw0);
void	ctrl_log_read(struct controller *, uint8_t lid, bool rae);
void	ctrl_error_record(struct controller *, struct nvmf_cmd *);
size_t	ctrl_error_log(struct controller *, uint8_t *page);
uint64_t ctrl_error_count(struct controller *);
void	ctrl_counts(unsigned *io, unsigned *disc);
struct controller *ctrl_create(struct subsystem *, struct port *,
	    const char *subnqn, const char *hostnqn, const uint8_t *hostid,
	    uint32_t kato_ms);
struct controller *ctrl_find(struct subsystem *, uint16_t cntlid);
void	ctrl_set_cc(struct controller *, uint32_t cc);
void	qpair_handoff(struct qpair *, struct loop *);
extern TAILQ_HEAD(discovery_ctrl_list, controller) discovery_controllers;

/* fabrics.c: Connect, Property Get/Set, Disconnect */
void	fabrics_dispatch(struct nvmf_cmd *);
void	hostid_format(const uint8_t id[16], char *buf, size_t len);

/* Copy (io.c, identify.c): source ranges per command (MSRC + 1), blocks per
 * range (MSSRL, capped by MDTS) and in all (MCL). */
#define NVMFD_COPY_RANGES	128
#define NVMFD_COPY_RANGE_BLOCKS	65535
#define NVMFD_COPY_MAX_BLOCKS	(1u << 20)

/* identify.c */
void	identify_ctrl(struct controller *, uint8_t *buf);
void	identify_ctrl_nvm(struct controller *, uint8_t *buf);
uint16_t identify_ns(struct controller *, uint32_t nsid, uint8_t *buf);
void	identify_active_ns(struct controller *, uint32_t after, uint8_t *buf);
uint16_t identify_ns_descs(struct controller *, uint32_t nsid, uint8_t *buf);
uint16_t identify_ns_indep(struct controller *, uint32_t nsid, uint8_t *buf);

/* logpage.c */
uint16_t logpage_get(struct controller *, uint8_t lid, uint8_t lsp,
	    uint32_t nsid, uint64_t offset, uint8_t *buf, uint32_t len, bool rae);

/* discovery-access.c: the discovery controller's allowed hosts and keys */
struct host *discovery_host_find(struct config *, const char *hostnqn);
bool	discovery_host_allowed(struct config *, const char *hostnqn,
	    const struct sockaddr *peer);
/* Keys or offers changed: each discovery controller's next authentication
 * uses the new ones. */
void	discovery_auth_refresh(void);
/* Discovery controllers of hosts no longer allowed go (hostnqn NULL: of
 * any host). */
void	discovery_revoke(const char *hostnqn);

/* discovery.c */
extern uint64_t discovery_genctr;
size_t	discovery_log_build(struct controller *, uint8_t **out);
void	discovery_changed(void);

/* io.c: NVM command set */
void	io_dispatch(struct nvmf_cmd *);
/* The command's data into a pool buffer, then ready(). */
void	io_fetch_params(struct nvmf_cmd *, size_t len,
	    void (*ready)(struct nvmf_cmd *));
/* After the namespace lookup: reservation check, fused pairs, the command. */
void	io_execute(struct nvmf_cmd *);
bool	io_opc_writes(uint8_t opc);
uint16_t io_data_range(struct nvmf_cmd *, uint64_t *off, uint64_t *len);
uint16_t io_errno_status(enum io_op, int err);
bool	io_still_fits(const struct nvmf_cmd *);
void	io_submit(struct nvmf_cmd *, enum io_op, uint64_t off,
	    uint64_t len, void (*done)(struct nvmf_io *, int));
/* Compare cmd->buf with the media at cmd->io.offset/len, then then(). */
void	io_compare_media(struct nvmf_cmd *,
	    void (*then)(struct nvmf_cmd *, uint16_t));

/* fused.c: fused Compare and Write */
int	fused_attach(struct namespace *);
void	fused_detach(struct namespace *);
bool	fused_dispatch(struct nvmf_cmd *);
bool	fused_hold_back(struct nvmf_cmd *);
bool	fused_hold_parked(struct nvmf_cmd *, void (*then)(struct nvmf_cmd *));
void	fused_qpair_closing(struct qpair *);

/* atomic.c: Read, Write and Write Zeroes of one block are atomic */
int	atomic_attach(struct namespace *);
void	atomic_detach(struct namespace *);
bool	atomic_covers(const struct namespace *, uint64_t len);
void	atomic_submit(struct nvmf_cmd *, enum io_op, uint64_t off,
	    uint64_t len, void (*done)(struct nvmf_io *, int));
bool	atomic_ram_write(struct namespace *, uint64_t off, const void *,
	    uint64_t len);
bool	atomic_hold_read(struct nvmf_cmd *, uint64_t off,
	    void (*then)(struct nvmf_cmd *));
void	atomic_unhold(struct nvmf_cmd *);
bool	atomic_lock_pair(struct nvmf_cmd *, void (*then)(struct nvmf_cmd *));
void	atomic_unlock_pair(struct nvmf_cmd *);

/* ctl-out.c: structured command output, rendered as tables or JSON */
struct out;
struct evbuffer;
struct out *out_new(void);
void	out_free(struct out *);
void	out_object(struct out *, const char *key);
void	out_list(struct out *, const char *key);
void	out_end(struct out *);
void	out_str(struct out *, const char *key, const char *fmt, ...)
	    __printflike(3, 4);
void	out_u64(struct out *, const char *key, uint64_t);
void	out_double(struct out *, const char *key, double);
void	out_bool(struct out *, const char *key, bool);
int	out_render(struct out *, struct evbuffer *, bool json);

/* cmd.c: the control command table */
#define CMD_READONLY	0x1	/* allowed on the read-only socket */
#define CMD_LOCAL	0x2	/* nvmfctl can answer it alone */

struct cmd_ctx;
struct cmd_opt {
	const char	*name;
	bool		has_value;
	const char	*help;
};
struct cmd_entry {
	const char	*name;
	const char	*args;
	const char	*help;
	int		min_args, max_args;
	const struct cmd_opt *opts;
	int		flags;
	int		(*exec)(struct cmd_ctx *);
};
struct cmd_ctx {
	const struct cmd_entry *entry;
	int		argc;
	char		**argv;
	struct {
		const char *name;
		const char *value;
	}		opts[32];
	int		nopts;
	bool		json;
	bool		readonly_client;
	struct out	*out;		/* structured output */
	struct evbuffer	*text;		/* free text output */
	char		err[1024];
	void		*client;	/* control.c, while CMD_PENDING */
};
/* What exec returns when it answers later, with cmd_done(ctx, rc) on the
 * main loop; argv and the options are gone by then. */
#define CMD_PENDING	(-1)
void	cmd_done(struct cmd_ctx *, int rc);
const struct cmd_entry *cmd_find(const char *);
int	cmd_execute(struct cmd_ctx *, int argc, char **argv);
int	cmd_error(struct cmd_ctx *, int code, const char *, ...)
	    __printflike(3, 4);
const char *cmd_opt(struct cmd_ctx *, const char *name);
int	cmd_onoff(const char *);
void	cmd_help_text(const char *name, struct evbuffer *);
int	cmd_help(struct cmd_ctx *);
/* cmd-target.c */
struct subsystem *find_subsys(struct cmd_ctx *, const char *nqn, int *rc);
struct namespace *find_ns(struct cmd_ctx *, struct subsystem *,
	    const char *nsid, int *rc);
int	parse_uint(const char *, unsigned long max, unsigned long *);
int	cmd_version(struct cmd_ctx *);
int	cmd_list_subsys(struct cmd_ctx *);
int	cmd_show_subsys(struct cmd_ctx *);
int	cmd_add_subsys(struct cmd_ctx *);
int	cmd_set_subsys(struct cmd_ctx *);
int	cmd_del_subsys(struct cmd_ctx *);
int	cmd_list_ns(struct cmd_ctx *);
int	cmd_add_ns(struct cmd_ctx *);
int	cmd_set_ns(struct cmd_ctx *);
int	cmd_rescan_ns(struct cmd_ctx *);
int	cmd_inject_error(struct cmd_ctx *);
int	cmd_del_ns(struct cmd_ctx *);
int	cmd_list_hosts(struct cmd_ctx *);
int	cmd_add_host(struct cmd_ctx *);
int	cmd_set_host(struct cmd_ctx *);
int	cmd_del_host(struct cmd_ctx *);
int	cmd_list_ports(struct cmd_ctx *);
int	cmd_add_port(struct cmd_ctx *);
int	cmd_del_port(struct cmd_ctx *);
int	cmd_list_referrals(struct cmd_ctx *);
int	cmd_add_referral(struct cmd_ctx *);
int	cmd_del_referral(struct cmd_ctx *);
int	cmd_list_ctrl(struct cmd_ctx *);
int	cmd_terminate(struct cmd_ctx *);
int	cmd_stats(struct cmd_ctx *);
/* cmd-ana.c */
uint32_t cmd_ana_group(struct cmd_ctx *, const char *, int *rc);
int	cmd_set_ana(struct cmd_ctx *);
int	cmd_list_ana(struct cmd_ctx *);
/* cmd-host.c */
int	cmd_connect(struct cmd_ctx *);
int	cmd_disconnect(struct cmd_ctx *);
int	cmd_disconnect_all(struct cmd_ctx *);
int	cmd_reconnect(struct cmd_ctx *);
int	cmd_list_host(struct cmd_ctx *);
/* cmd-nbd-dev.c */
int	cmd_attach_nbd(struct cmd_ctx *);
int	cmd_detach_nbd(struct cmd_ctx *);
/* host-discover.c (run in nvmfctl) */
int	cmd_discover(struct cmd_ctx *);
/* cmd-config.c */
int	cmd_show_config(struct cmd_ctx *);
int	cmd_save(struct cmd_ctx *);
int	cmd_reload(struct cmd_ctx *);

/* reload.c: apply a new configuration to the running one */
int	config_apply(struct config *running, struct config *next, char *err,
	    size_t errlen);
/* 0 applied, -1 failed (err set), 1 later: namespaces that open off the
 * loop are opening; done(rc, err, arg) runs on the main loop after. */
int	config_reload(char *err, size_t errlen,
	    void (*done)(int rc, const char *err, void *), void *arg);

/* service.c: pidfile and sd_notify(3), without libsystemd */
/* Create and flock path, write our pid; fails "already running (pid N)"
 * while another process holds it.  Call after daemonizing. */
int	service_pidfile_open(const char *path, char *err, size_t errlen);
void	service_pidfile_remove(void);
/* Soft RLIMIT_NOFILE up to the hard one; warn when max_connections plus
 * NOFILE_RESERVE (listeners, loops, control, files) do not fit. */
#define NOFILE_RESERVE	64
void	service_raise_nofile(uint32_t max_connections);
/* One datagram to $NOTIFY_SOCKET (a path, or '@' for the abstract
 * namespace); nothing when unset.  RELOADING=1 gains MONOTONIC_USEC. */
void	service_notify(const char *fmt, ...) __printflike(1, 2);
/* Keep freed heap memory for reuse; give it back once a minute. */
void	service_heap_policy(struct event_base *);

/* state-file.c: small files replaced atomically (state_dir) */
int	state_file_write(const char *path, const char *text, size_t len,
	    char *err, size_t errlen);
int	state_file_remove(const char *path, char *err, size_t errlen);

/* health.c: SMART power cycles, power-on time, unsafe shutdowns */
void	health_attach(struct subsystem *, const char *state_dir);
void	health_detach(struct subsystem *);
uint64_t health_power_on_seconds(const struct subsystem *);
void	health_busy_enter(struct controller *, uint64_t now_ns);
void	health_busy_leave(struct controller *, uint64_t now_ns);
uint64_t health_busy_ns(struct busy_clock *, uint64_t now_ns);
void	health_stats_add(struct qpair_stats *to, struct qpair_stats *from);
void	health_ctrl_stats(struct controller *, struct qpair_stats *);

/* metrics.c: Prometheus text format over HTTP (evhttp) */
struct evbuffer;
int	metrics_start(const struct config *, char *err, size_t errlen);
void	metrics_stop(void);
int	metrics_render(struct evbuffer *);

/* control.c: the control sockets */
int	control_start(const char *path, const char *group, const char *ro_path);
void	control_stop(void);

/* cli.c: nvmfctl */
int	cli_main(int argc, char *argv[]);
int	cli_connect_remote(struct cmd_ctx *, const char *addr, const char *svc,
	    const char *nqn);

/* registry.c, loop.c */
extern struct config *running_config;
uint64_t now_ns(void);

#endif
