/*
 * The host role inside the daemon: associations with remote NVMe/TCP
 * controllers (host.c, on the main loop) and the I/O path the NBD exports
 * use (host-lane.c): an association's I/O queues are spread over lanes,
 * one a worker loop, and an NBD connection runs on the loop of the lane
 * it submits to.
 */
#ifndef NVMFD_HOST_H
#define NVMFD_HOST_H

#include "nvmfd.h"

#define HOST_MAX_IOQ		16
#define HOST_MAX_NS		64	/* namespaces exported per association */
#define HOST_MAX_ASSOCS		1024	/* associations at once */
#define HOST_DEF_KATO		5	/* seconds */
#define HOST_DEF_RECONNECT	2
#define HOST_DEF_CTRL_LOSS	600
#define HOST_DEF_QUEUE_SIZE	128
#define HOST_CMD_TIMEOUT_S	30	/* an I/O older than this kills the queue */
#define HOST_STEP_TIMEOUT_S	10	/* a queue's connect, or an admin step */
#define HOST_IO_RESETS		5	/* associations one command may outlive */

/* Status given to host_io done() when the association cannot carry it. */
#define HOST_ST_PATH_ERROR	NVME_SC(3, 0x70)

enum assoc_state {
	AS_CONNECTING,		/* first bring-up */
	AS_LIVE,
	AS_RECONNECTING,	/* lost; I/O held until it is back */
	AS_DELETING,		/* orderly shutdown, then freed */
	AS_FAILED,		/* past ctrl-loss-tmo or refused for good */
};

/* A key as given to the host role: the secret itself, or @FILE. */
#define HOST_SECRET_MAX	256

struct host_params {
	char		traddr[64];
	char		trsvcid[16];
	char		subnqn[NVMFD_NQN_MAX + 1];
	char		hostnqn[NVMFD_NQN_MAX + 1];
	uint8_t		hostid[16];
	int		nr_io_queues;
	int		queue_size;	/* entries; depth is one less */
	uint32_t	kato_s;
	uint32_t	reconnect_delay_s;
	uint32_t	ctrl_loss_tmo_s;
	uint32_t	fast_io_fail_tmo_s;	/* 0: hold I/O until ctrl-loss */
	bool		hdgst, ddgst;
	char		export_prefix[128];	/* "" : the subsystem NQN */
	bool		nbd_tls_required;	/* exports only over TLS */
	char		nbd_device[32];	/* "/dev/nbdN" for the first export */
	uint32_t	nbd_timeout_s;	/* the kernel's; 0: off */
	/* As given, the secret or @FILE ("": none); host_params_clear()
	 * wipes them from a copy that goes */
	char		dhchap_secret[HOST_SECRET_MAX];
	char		dhchap_ctrl_secret[HOST_SECRET_MAX];
	char		tls_key[HOST_SECRET_MAX];	/* "": plain TCP */
	char		tls_kdf[16];	/* "": compat */
};

struct host_ns {
	uint32_t	nsid;
	uint64_t	nlb;
	uint32_t	lba_shift;
	bool		readonly;
	bool		seen;		/* in the latest active list */
	struct nbd_export *exp;
};

struct host_assoc;
struct host_lane;

/* One NVMe command of the data path, embedded in its user's memory. */
struct host_io {
	TAILQ_ENTRY(host_io) link;	/* held list */
	struct host_req	req;		/* sqe, iov, data_len, dir: the caller */
	struct host_lane *lane;
	uint64_t	held_since;
	int		resets;		/* associations lost under it */
	void		(*done)(struct host_io *, uint16_t status);
	void		*arg;
};
TAILQ_HEAD(host_io_list, host_io);

enum lane_mode {
	LANE_HOLD,		/* no queues: hold I/O (fast-io-fail aside) */
	LANE_LIVE,		/* submit to the queues */
	LANE_FAIL,		/* fail I/O at once */
};

/*
 * The data path of one association on one loop: the I/O queues placed
 * there, and the commands waiting for a queue.  The main loop steers it
 * with messages (queues handed over, live, hold, fail, release) and hears
 * of a failed queue by a message back; nothing else crosses.
 */
struct host_lane {
	struct host_assoc *a;		/* outlives the lane */
	struct loop	*loop;
	int		index;
	uint32_t	fast_s;		/* fast-io-fail-tmo, a copy */
	/* the lane's loop only */
	struct host_qpair *q[HOST_MAX_IOQ];
	int		nq, next;
	enum lane_mode	mode;
	unsigned	gen;		/* the association's, when made live */
	bool		reported;	/* a loss told since then */
	bool		io_failing;
	uint64_t	lost_at;
	struct host_io_list held;
	struct event	*kick_ev, *tick_ev;
	/* the main loop only */
	int		nconns;		/* NBD connections placed here */
	int		nq_main;	/* queues handed over, last bring-up */
	/* written by the lane, read by list-host */
	atomic_uint	nheld;
	atomic_uint	live_gen;	/* set by the main loop before "live" */
};

struct host_assoc {
	TAILQ_ENTRY(host_assoc) entry;
	int		id;
	bool		listed;		/* in host_assocs */
	struct host_params p;
	enum assoc_state state;
	char		error[160];	/* why it is not live */

	struct host_qpair *admin;
	struct host_qpair *ioq[HOST_MAX_IOQ];	/* until handed to lanes */
	int		nioq;		/* connected */
	int		qdepth;		/* of the I/O queues */
	struct host_lane *lanes[HOST_MAX_IOQ];
	int		nlanes;
	int		lanes_alive;	/* not yet released */
	unsigned	gen;		/* bring-ups so far */
	int		want_ioq;	/* granted by Set Features */
	int		next_q;
	uint16_t	cntlid;
	uint64_t	cap;
	uint32_t	vs;
	uint32_t	mdts;		/* bytes, 0 = no limit */
	uint32_t	max_icd;
	uint16_t	oncs;
	bool		vwc;

	struct host_ns	ns[HOST_MAX_NS];
	int		nns;

	/* bring-up and rescan: one admin command at a time */
	int		step;
	int		step_i;
	bool		rescan_pending;
	bool		step_busy;
	struct host_req	step_req;
	uint8_t		*page;		/* 4 KiB, aligned */
	uint32_t	*nslist;	/* 1024 entries */
	int		nnslist;
	uint64_t	deadline;	/* CSTS.RDY or SHST */
	struct event	*step_ev;	/* retry timer for polled steps */
	struct event	*step_to_ev;	/* the step in flight has timed out */

	struct host_req	ka_req;
	bool		ka_busy;
	struct event	*ka_ev;
	struct host_req	aer_req;
	bool		aer_busy;

	struct event	*lost_ev;	/* tear down after a failure */
	struct event	*handoff_ev;	/* I/O queues to the lanes */
	struct event	*retry_ev;	/* reconnect-delay */
	uint64_t	lost_at;	/* ns; 0 while live */
	uint64_t	connected_at;
	unsigned	reconnects;
	bool		retry_now;	/* asked for: no reconnect-delay */
	bool		tearing;	/* closing its queues */
	struct connect_job *job;	/* a queue being connected */

	/* A persistent discovery association (the discovery NQN): it
	 * connects to what the log lists, and again when it changes. */
	bool		discovery;
	struct follow_job *follow;	/* the log being read */
	bool		follow_again;	/* changed again meanwhile */
};
TAILQ_HEAD(host_assoc_list, host_assoc);

/* host-params.c */
void	host_params_default(struct host_params *);
int	host_param_set(struct host_params *, const char *key, const char *value,
	    char *err, size_t errlen);
int	host_params_check(const struct host_params *, char *err, size_t errlen);

/* host-sec.c: blocking, on an event base of its own */
/* A key as given (the secret or @FILE), TLS PSK or DH-HMAC-CHAP: does it
 * load?  0, or -1 with err (never quoting it). */
int	host_sec_check(bool tls, const char *spec, char *err, size_t errlen);
struct host_qpair *host_queue_open(struct event_base *,
	    const struct host_params *, const char *subnqn, uint16_t qid,
	    uint16_t depth, uint16_t sqsize, uint16_t cntlid, uint32_t kato_ms,
	    uint16_t *status, char *err, size_t errlen);
void	host_params_clear(struct host_params *);

/* host.c */
extern struct host_assoc_list host_assocs;
struct host_assoc *host_assoc_create(const struct host_params *, char *err,
	    size_t errlen);
/* Orderly shutdown (CC.SHN) then free; exports go at once. */
void	host_assoc_delete(struct host_assoc *);
int	host_connect_jobs(void);
void	host_assocs_delete_all(void);
/* Rebuild now (a failed one gets a new ctrl-loss-tmo); 0, or -1 with
 * why not in err. */
int	host_assoc_reconnect(struct host_assoc *, char *err, size_t errlen);
struct host_assoc *host_assoc_find(const char *nqn_or_id);
/* Not being deleted, and named by key: its ID, or its subsystem NQN. */
bool	host_assoc_matches(const struct host_assoc *, const char *key);
/* The NBD socket defaults to nbd.sock beside ctl_path. */
int	host_start(struct config *, const char *ctl_path, char *err,
	    size_t errlen);
void	host_stop(void);
const char *host_assoc_state_name(enum assoc_state);
/* The lane a new NBD connection should use: the one with queues and
 * the fewest connections, or NULL: none yet, wait (lanes_set() then
 * calls nbd_export_lanes_ready()).  Main loop; host_lane_unplace() when
 * done (NULL is fine). */
struct host_lane *host_lane_place(struct host_assoc *);
void	host_lane_unplace(struct host_lane *);
unsigned host_assoc_held(struct host_assoc *);

/* host-lane.c */
/* Set once the worker loops have stopped: messages run at once. */
extern bool host_direct;
void	host_post(struct loop *, void (*fn)(void *), void *arg);
struct host_lane *host_lane_new(struct host_assoc *, int index,
	    struct loop *);
/* Main loop: hand a connected I/O queue over, then steer the lane. */
void	host_lane_add(struct host_lane *, struct host_qpair *);
void	host_lane_set(struct host_lane *, enum lane_mode);
/* Main loop: close it; host_lane_gone(a) runs on the main loop after. */
void	host_lane_release(struct host_lane *);
void	host_lane_gone(struct host_assoc *);
/* host.c, on the main loop: a lane lost a queue of bring-up gen. */
void	host_lane_lost(struct host_assoc *, unsigned gen, const char *why);
/* On the lane's loop: queue a data command; done() always runs later
 * from that loop. */
void	host_io_submit(struct host_lane *, struct host_io *);
/* Push what the turn queued to the sockets. */
void	host_lane_flush(struct host_lane *);

/* host-follow.c: main loop */
void	host_follow_start(struct host_assoc *);
void	host_follow_cancel(struct host_assoc *);

/* host-discover.c: blocking (nvmfctl, or a thread of the daemon) */
int	host_discover_all(const struct host_params *,
	    struct nvmf_disc_log_entry **, uint64_t *,
	    void (*warn)(const char *, void *), void *warg, char *err,
	    size_t errlen);
void	host_disc_entry_fields(const struct nvmf_disc_log_entry *,
	    char addr[static 257], char svc[static 33], char nqn[static 257]);

/* host-cmd.c: admin command builders shared with perf */
void	host_cmd_property(struct host_req *, uint8_t fctype, uint32_t ofst,
	    bool wide, uint64_t value);
void	host_cmd_identify(struct host_req *, uint8_t cns, uint32_t nsid,
	    void *buf);
void	host_cmd_connect(struct host_req *, struct nvmf_connect_data *,
	    uint16_t qid, uint16_t sqsize, const char *subnqn,
	    const char *hostnqn, const uint8_t hostid[16], uint16_t cntlid,
	    uint32_t kato_ms);

#endif
