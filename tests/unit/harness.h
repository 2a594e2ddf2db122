/*
 * Unit test harness: the daemon's queue pairs, controllers and discovery
 * service driven over a socketpair from the test, on the main loop only (no
 * worker threads), so every step is deterministic.
 *
 * The test plays the host: it writes PDUs to its end of the socketpair and
 * pumps the main loop until the responses are readable.
 */
#ifndef NVMFD_TEST_HARNESS_H
#define NVMFD_TEST_HARNESS_H

#include <check.h>

#include "nvmfd.h"

#define H_HOSTNQN	"nqn.2014-08.org.nvmexpress:uuid:" \
			    "6e7f1a22-0000-4000-8000-000000000001"
#define H_HOSTNQN2	"nqn.2014-08.org.nvmexpress:uuid:" \
			    "6e7f1a22-0000-4000-8000-000000000002"
#define H_NS_SIZE	(16u << 20)	/* RAM namespaces: small and quick */
#define H_TIMEOUT_MS	3000		/* longest wait for a reply */

/* The host's view of one connection (queue pair). */
struct h_conn {
	int		fd;		/* our end of the socketpair */
	struct port	*port;
	bool		hdgst, ddgst;	/* as the ICResp granted them */
	uint8_t		hpda;		/* C2HData alignment we asked for */
	uint8_t		cpda;		/* H2C alignment the controller asked */
	uint32_t	maxh2cdata;
	uint32_t	icd_max;	/* writes up to this go in capsules */
	uint32_t	h2c_chunk;	/* H2CData payload; 0: MAXH2CDATA */
	uint16_t	next_cid;
	uint16_t	qid;
	uint16_t	cntlid;
	/* What h_wait saw, for the tests to inspect. */
	unsigned	hdgst_checked, ddgst_checked;
	unsigned	nr2t, nh2c, nc2h;
	struct nvme_tcp_r2t_pdu last_r2t;
	uint8_t		last_c2h_pdo;
	uint16_t	last_sqhd;
	bool		last_c2h_success;
	/* Completions that arrived while waiting for another CID. */
	struct nvme_cqe	stash[256];	/* completions that came early */
	int		nstash;
};

/* Status as the NVME_SC_* constants encode it: (SCT << 8) | SC. */
static inline uint16_t
h_sc(const struct nvme_cqe *cqe)
{
	return ((cqe->status >> 1) & 0x7ff);
}

static inline bool
h_dnr(const struct nvme_cqe *cqe)
{
	return ((cqe->status & NVME_DNR) != 0);
}

/* Configuration builders; h_config() is the built-in default made small. */
struct config	*h_config(void);
struct port	*h_add_port(struct config *, uint16_t id, const char *addr,
		    const char *service);
struct subsystem *h_add_subsys(struct config *, const char *nqn);
struct namespace *h_add_ns(struct subsystem *, uint32_t nsid, uint64_t size);
void		 h_add_host(struct subsystem *, const char *hostnqn);
void		 h_subsys_ports(struct subsystem *, const uint16_t *ids,
		    size_t n);
struct referral	*h_add_referral(struct config *, const char *addr,
		    const char *service, uint16_t port_id);

/* Environment: h_start publishes cf's subsystems (opening namespaces) and
 * makes it the running config; h_stop closes every connection, checks that
 * no controller, namespace hold or port reference is left, and frees cf. */
void	h_start(struct config *cf);
void	h_stop(void);

/* Pieces of that environment, for tests (test_control.c) that drive the
 * control socket rather than queue pairs. */
uint64_t h_ms_now(void);
void	h_pump(void);		/* one pass over ready events, then flush */
void	h_pump_for(int ms);
void	h_env_init(void);	/* logging, SIGPIPE, the main loop only */
void	h_publish(struct config *cf);	/* running, without listeners */

/* Connections. */
struct h_conn *h_open(struct port *, const char *local_addr);
void	h_close(struct h_conn *);
void	h_send(struct h_conn *, const void *buf, size_t len);
void	h_recv(struct h_conn *, void *buf, size_t len);
bool	h_readable(struct h_conn *, int ms);
bool	h_closed(struct h_conn *, int ms);	/* EOF with nothing before */
/* The same on any socket, pumping the daemon's loop while waiting. */
void	h_send_fd(int fd, const void *buf, size_t len);
void	h_recv_fd(int fd, void *buf, size_t len);
bool	h_closed_fd(int fd, int ms);
uint8_t	*h_recv_pdu(struct h_conn *, size_t *len);	/* malloc'd */
void	h_expect_term(struct h_conn *, uint16_t fes, uint32_t fei);

/* Initialize Connection; digests is NVME_TCP_IC_HDGST | NVME_TCP_IC_DDGST. */
void	h_icreq(struct h_conn *, uint8_t digests, uint8_t hpda,
	    struct nvme_tcp_ic_pdu *resp);

/* Commands.  h_cmd picks the SGL: in-capsule data for writes up to
 * icd_max, R2T/H2CData above that, C2HData for reads; returns h_sc(). */
void	h_sgl_icd(struct nvme_sqe *, uint32_t len);
void	h_sgl_xport(struct nvme_sqe *, uint32_t len);
size_t	h_build_capsule(struct h_conn *, uint8_t *out, struct nvme_sqe *,
	    const void *icd, uint32_t icd_len);
uint16_t h_submit(struct h_conn *, struct nvme_sqe *, const void *icd,
	    uint32_t icd_len);
void	h_wait(struct h_conn *, uint16_t cid, struct nvme_cqe *,
	    const void *out, uint32_t out_len, void *in, uint32_t in_len);
uint16_t h_cmd(struct h_conn *, struct nvme_sqe *, const void *out,
	    uint32_t out_len, void *in, uint32_t in_len, struct nvme_cqe *);
/* One H2CData PDU carrying data[0, datal) at DATAO datao. */
size_t	h_build_h2c(struct h_conn *, uint8_t *out, uint16_t cccid,
	    uint16_t ttag, const void *data, uint32_t datao, uint32_t datal,
	    bool last);
void	h_send_h2c(struct h_conn *, uint16_t cccid, uint16_t ttag,
	    const void *data, uint32_t datao, uint32_t datal, bool last);

/* Fabrics and admin helpers. */
void	h_connect_sqe(struct nvme_sqe *, uint16_t qid, uint16_t sqsize,
	    uint32_t kato);
void	h_connect_data(struct nvmf_connect_data *, const char *subnqn,
	    const char *hostnqn, uint16_t cntlid);
struct nvme_cqe h_connect(struct h_conn *, uint16_t qid, uint16_t sqsize,
	    const char *subnqn, const char *hostnqn, uint16_t cntlid,
	    uint32_t kato);
uint16_t h_prop_get(struct h_conn *, uint32_t ofst, uint64_t *val);
uint16_t h_prop_set(struct h_conn *, uint32_t ofst, uint32_t val);
void	h_enable(struct h_conn *);
uint16_t h_identify(struct h_conn *, uint8_t cns, uint32_t nsid, uint8_t csi,
	    void *data);
uint16_t h_get_log(struct h_conn *, uint8_t lid, uint64_t offset,
	    uint32_t len, bool rae, void *data);
/* Get Log Page for one NSID, from offset 0. */
uint16_t h_get_log_ns(struct h_conn *, uint8_t lid, uint32_t nsid,
	    uint32_t len, void *data);
uint16_t h_set_feat(struct h_conn *, uint8_t fid, uint32_t v, uint32_t *dw0);
uint16_t h_get_feat(struct h_conn *, uint8_t fid, uint8_t sel, uint32_t *dw0);
uint16_t h_read(struct h_conn *, uint32_t nsid, uint64_t slba, uint32_t nlb,
	    void *buf, uint32_t len);
uint16_t h_write(struct h_conn *, uint32_t nsid, uint64_t slba, uint32_t nlb,
	    const void *buf, uint32_t len);
uint16_t h_submit_aer(struct h_conn *);	/* stays outstanding */

/* A connected, enabled admin queue and an I/O queue of its controller. */
struct h_conn *h_admin(struct port *, const char *subnqn, const char *hostnqn,
	    uint8_t digests);
struct h_conn *h_ioq(struct h_conn *admin, const char *subnqn,
	    const char *hostnqn, uint16_t qid, uint16_t sqsize,
	    uint8_t digests);

#endif
