/*
 * nvmfd perf: the load generator (perf.c) and its command fuzzer
 * (perf-fuzz.c), both on the host role.
 */
#ifndef NVMFD_PERF_H
#define NVMFD_PERF_H

#include "nvmfd.h"
#include "auth.h"
#include "tls.h"

enum workload { W_READ, W_WRITE, W_RANDREAD, W_RANDWRITE, W_RANDRW };

struct perf_opts {
	const char	*addr, *port, *nqn, *hostnqn;
	uint32_t	nsid;
	int		queues, threads, depth;
	uint32_t	bs;
	enum workload	workload;
	int		mix;		/* percent reads for randrw */
	double		seconds;
	bool		hdgst, ddgst, verify, json, poll;
	struct dhchap_key key, ctrl_key;	/* DH-HMAC-CHAP, len 0: none */
	const char	*tls_key, *tls_kdf;	/* -K, -k */
	struct host_psk	psk;			/* derived from -K */
	bool		fuzz;			/* --fuzz SEED */
	uint64_t	seed;
	unsigned	rate;			/* --rate: commands a second */
};

/* Admin queue: Connect, enable, Identify, Set Features; exits on failure. */
struct host_qpair *perf_admin(struct event_base *, const struct perf_opts *,
	    const uint8_t hostid[16], uint16_t *cntlid, uint64_t *nlb,
	    uint32_t *lba_shift, uint32_t *max_icd, uint32_t *mdts);
/* After a Connect: DH-HMAC-CHAP when the controller asks for it. */
void	perf_auth(struct host_qpair *, const struct perf_opts *, int qid);
/* perf-fuzz.c: the --fuzz run; the exit status. */
int	perf_fuzz(const struct perf_opts *, const uint8_t hostid[16]);

#endif
