/*
 * nvmfd perf: an NVMe/TCP load generator (host role), for measuring a
 * target: IOPS, bandwidth, latency percentiles and the client's own CPU
 * time per I/O.  One thread per group of I/O queues, each with its own
 * event loop; completions resubmit at once so the queue depth stays full.
 */
#include "config.h"

#include <sys/resource.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "nvmfd.h"
#include "host.h"
#include "perf.h"

#define LAT_BUCKETS	(64 * 32)

static const char *workload_names[] = { "read", "write", "randread",
    "randwrite", "randrw" };

struct perf_thread;

struct perf_io {
	struct host_req	req;
	struct perf_thread *t;
	struct host_qpair *hq;
	uint8_t		*buf;
	uint64_t	lba;
	bool		is_read;
};

struct perf_thread {
	pthread_t	tid;
	struct event_base *base;
	struct event	*stop_ev;
	struct host_qpair **hqs;
	int		nhq;
	struct perf_io	*ios;
	int		nios;
	const struct perf_opts *o;
	uint64_t	nlb, blocks_per_io, seq_next, rng;
	uint32_t	lba_shift;
	bool		stopping;
	bool		finished;	/* the loop may return */
	atomic_bool	exited;		/* the thread is done: all its queues
					 * finished, or died */
	int		inflight;
	atomic_ullong	done_ios;
	uint64_t	reads, writes, errors, verify_errors;
	uint64_t	lat[LAT_BUCKETS];
	uint64_t	lat_sum, lat_max;
};

static uint64_t
xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (*s = x);
}

static int
lat_bucket(uint64_t v)
{
	int msb, shift;

	if (v < 64)
		return ((int)v);
	msb = 63 - __builtin_clzll(v);
	shift = msb - 5;
	return (MINIMUM((shift + 1) * 32 + (int)((v >> shift) & 31),
	    LAT_BUCKETS - 1));
}

static uint64_t
lat_value(int idx)
{
	int shift;

	if (idx < 64)
		return (idx);
	shift = idx / 32 - 1;
	return ((uint64_t)(32 + idx % 32) << shift);
}

/* Pattern for --verify: every 8 bytes name their byte address on the
 * namespace, so any I/O size or alignment can check any other's writes. */
static void
pattern_fill(uint8_t *buf, uint32_t len, uint64_t pos)
{
	for (uint32_t off = 0; off < len; off += 8) {
		uint64_t v = (pos + off) * 0x9e3779b97f4a7c15ull;

		memcpy(buf + off, &v, 8);
	}
}

static bool
pattern_check(const uint8_t *buf, uint32_t len, uint64_t pos)
{
	for (uint32_t off = 0; off < len; off += 8) {
		uint64_t v = (pos + off) * 0x9e3779b97f4a7c15ull, got;

		memcpy(&got, buf + off, 8);
		if (got != v)
			return (false);
	}
	return (true);
}

static void perf_submit(struct perf_io *io);
static void perf_finish(struct perf_thread *);

static void
perf_done(struct host_req *r, const struct nvme_cqe *cqe)
{
	struct perf_io *io = r->arg;
	struct perf_thread *t = io->t;
	uint64_t lat = now_ns() - r->start_ns;

	t->inflight--;
	if ((cqe->status >> 1) != 0) {
		t->errors++;
		if (t->errors <= 5)
			log_warnx("perf: %s at LBA %llu failed: status 0x%x%s%s",
			    io->is_read ? "read" : "write",
			    (unsigned long long)io->lba, cqe->status >> 1,
			    io->hq->dead ? ": " : "",
			    io->hq->dead ? io->hq->error : "");
	} else if (io->is_read && t->o->verify &&
	    !pattern_check(io->buf, t->o->bs, io->lba << t->lba_shift))
		t->verify_errors++;
	if (io->is_read)
		t->reads++;
	else
		t->writes++;
	t->lat[lat_bucket(lat)]++;
	t->lat_sum += lat;
	if (lat > t->lat_max)
		t->lat_max = lat;
	atomic_fetch_add_explicit(&t->done_ios, 1, memory_order_relaxed);
	if (!t->stopping && !io->hq->dead)
		perf_submit(io);
	else if (t->inflight == 0)
		perf_finish(t);
}

static void
perf_finish(struct perf_thread *t)
{
	t->finished = true;
	event_base_loopbreak(t->base);
}

static void
perf_submit(struct perf_io *io)
{
	struct perf_thread *t = io->t;
	const struct perf_opts *o = t->o;
	struct host_req *r = &io->req;
	uint64_t slots = t->nlb / t->blocks_per_io;	/* >= 1, see perf_main */

	switch (o->workload) {
	case W_READ:
	case W_WRITE:
		io->lba = (t->seq_next++ % slots) * t->blocks_per_io;
		io->is_read = o->workload == W_READ;
		break;
	default:
		io->lba = (xorshift(&t->rng) % slots) * t->blocks_per_io;
		io->is_read = o->workload == W_RANDREAD ||
		    (o->workload == W_RANDRW &&
		    (int)(xorshift(&t->rng) % 100) < o->mix);
		break;
	}
	memset(&r->sqe, 0, sizeof(r->sqe));
	r->sqe.opc = io->is_read ? NVME_CMD_READ : NVME_CMD_WRITE;
	r->sqe.nsid = o->nsid;
	r->sqe.cdw10 = (uint32_t)io->lba;
	r->sqe.cdw11 = (uint32_t)(io->lba >> 32);
	r->sqe.cdw12 = (uint32_t)(t->blocks_per_io - 1);
	r->iov[0].iov_base = io->buf;
	r->iov[0].iov_len = o->bs;
	r->iovcnt = 1;
	r->data_len = o->bs;
	r->dir = io->is_read ? DIR_C2H : DIR_H2C;
	r->done = perf_done;
	r->arg = io;
	if (!io->is_read && o->verify)
		pattern_fill(io->buf, o->bs, io->lba << t->lba_shift);
	r->start_ns = now_ns();
	if (host_submit(io->hq, r) != 0) {
		t->errors++;
		return;
	}
	t->inflight++;
}

#define PERF_DRAIN_SECONDS	5

static void
perf_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct perf_thread *t = arg;
	struct timeval drain = { PERF_DRAIN_SECONDS, 0 };

	if (t->stopping) {
		/* A target that stops answering must not hang perf. */
		log_warnx("perf: %d commands still outstanding after %d s; "
		    "giving up on them", t->inflight, PERF_DRAIN_SECONDS);
		t->errors += t->inflight;
		perf_finish(t);
		return;
	}
	t->stopping = true;
	if (t->inflight == 0)
		perf_finish(t);
	else
		evtimer_add(t->stop_ev, &drain);
}

static void *
perf_thread_main(void *arg)
{
	struct perf_thread *t = arg;
	struct timeval tv = {
		.tv_sec = (time_t)t->o->seconds,
		.tv_usec = (suseconds_t)((t->o->seconds - (time_t)t->o->seconds) * 1e6),
	};

	t->stop_ev = evtimer_new(t->base, perf_stop_cb, t);
	evtimer_add(t->stop_ev, &tv);
	for (int i = 0; i < t->nios; i++)
		perf_submit(&t->ios[i]);
	for (int i = 0; i < t->nhq; i++)
		host_flush(t->hqs[i]);
	if (t->o->poll) {
		/* Like spdk_nvme_perf: never sleep, so completions are seen
		 * without the cost of waking this thread. */
		while (!t->finished)
			event_base_loop(t->base, EVLOOP_NONBLOCK);
	} else
		event_base_loop(t->base, EVLOOP_NO_EXIT_ON_EMPTY);
	atomic_store(&t->exited, true);
	return (NULL);
}

static __dead void
perf_usage(void)
{
	fprintf(stderr,
	    "usage: nvmfd perf [-gGjPv] [-a address] [-s port] [-n nqn] [-N nsid]\n"
	    "                  [-c queues] [-T threads] [-q depth] [-o bytes]\n"
	    "                  [-w read|write|randread|randwrite|randrw] [-M read%%]\n"
	    "                  [-t seconds] [-H hostnqn] [-S dhchap-secret]\n"
	    "                  [-C dhchap-ctrl-secret] [-K tls-key [-k kdf]]\n"
	    "                  [--fuzz seed [--rate commands-per-second]]\n");
	exit(2);
}

static int
parse_workload(const char *s, enum workload *w)
{
	for (size_t i = 0; i < nitems(workload_names); i++)
		if (strcmp(s, workload_names[i]) == 0) {
			*w = (enum workload)i;
			return (0);
		}
	return (-1);
}

/* Run one admin command; any failure ends perf. */
static void
admin_run(struct host_qpair *hq, struct host_req *r, const char *what)
{
	if (host_run(hq, r, 5000) != 0 || (r->cqe.status >> 1) != 0)
		fatalx("perf: %s failed", what);
}

/* Fabrics Property Get or Set of a 4-byte (or, wide, 8-byte) property. */
static uint64_t
admin_property(struct host_qpair *hq, uint8_t fctype, uint32_t ofst,
    bool wide, uint32_t value, const char *what)
{
	struct host_req r;

	memset(&r, 0, sizeof(r));
	host_cmd_property(&r, fctype, ofst, wide, value);
	admin_run(hq, &r, what);
	return (r.cqe.dw0 | (uint64_t)r.cqe.dw1 << 32);
}

/* Identify, one 4 KiB page into buf. */
static void
admin_identify(struct host_qpair *hq, uint8_t cns, uint32_t nsid, void *buf,
    const char *what)
{
	struct host_req r;

	memset(&r, 0, sizeof(r));
	host_cmd_identify(&r, cns, nsid, buf);
	admin_run(hq, &r, what);
}

void
perf_auth(struct host_qpair *hq, const struct perf_opts *o, int qid)
{
	char err[256];

	if (!(hq->connect_dw0 & NVMF_CONNECT_AUTHREQ_ATR)) {
		if (o->ctrl_key.len)
			fatalx("perf: queue %d: the controller asks for no "
			    "authentication, so it cannot prove itself (-C)",
			    qid);
		return;
	}
	if (o->key.len == 0)
		fatalx("perf: queue %d: the controller requires DH-HMAC-CHAP: "
		    "give the host key with -S", qid);
	if (host_authenticate(hq, o->nqn, o->hostnqn, &o->key, &o->ctrl_key,
	    err, sizeof(err)) != 0)
		fatalx("perf: queue %d: authentication failed: %s", qid, err);
}

struct host_qpair *
perf_admin(struct event_base *base, const struct perf_opts *o,
    const uint8_t hostid[16], uint16_t *cntlid, uint64_t *nlb,
    uint32_t *lba_shift, uint32_t *max_icd, uint32_t *mdts)
{
	struct host_qpair *hq;
	struct host_req r;
	uint8_t *id;
	char err[256], what[64];
	uint32_t ioccsz, mqes;
	uint16_t status;
	int rc;

	if ((hq = host_connect_tls(base, o->addr, o->port, o->tls_key ?
	    &o->psk : NULL, false, false, 32, err, sizeof(err))) == NULL)
		fatalx("perf: %s", err);
	rc = host_fabrics_connect(hq, 0, 32, o->nqn, o->hostnqn, hostid,
	    NVMF_CNTLID_DYNAMIC, 0, &status);
	if (rc < 0)
		fatalx("perf: admin connect to %s failed: status 0x%x %s",
		    o->nqn, status, hq->error);
	*cntlid = rc;
	perf_auth(hq, o, 0);

	/* CC: 64-byte SQEs, 16-byte CQEs, enable; then wait for RDY. */
	admin_property(hq, NVMF_FCTYPE_PROPERTY_SET, NVME_REG_CC, false,
	    NVME_CC_EN | 6u << 16 | 4u << 20, "enabling the controller");
	for (int i = 0;; i++) {
		if (admin_property(hq, NVMF_FCTYPE_PROPERTY_GET, NVME_REG_CSTS,
		    false, 0, "reading CSTS") & NVME_CSTS_RDY)
			break;
		if (i == 100)
			fatalx("perf: the controller is not ready 5 s after "
			    "enabling it (CSTS.RDY 0)");
		usleep(50000);
	}
	/* A queue of N entries holds N - 1 commands: depth + 1 must fit. */
	mqes = admin_property(hq, NVMF_FCTYPE_PROPERTY_GET, NVME_REG_CAP, true,
	    0, "reading CAP") & 0xffff;
	if ((uint32_t)o->depth > mqes)
		fatalx("perf: queue depth %d needs %d-entry queues but the "
		    "controller allows %u (CAP.MQES + 1); use -q %u or less",
		    o->depth, o->depth + 1, mqes + 1, mqes);
	if ((id = aligned_alloc(4096, 4096)) == NULL)
		fatal("perf");
	admin_identify(hq, NVME_ID_CNS_CTRL, 0, id, "Identify Controller");
	/* IOCCSZ counts 16-byte units, the 64-byte SQE included; MDTS is
	 * a power of two of (assumed 4 KiB) pages, >= 2^20 is no limit. */
	ioccsz = get_le32(id + 1792);
	*max_icd = ioccsz > 4 ? ioccsz * 16 - 64 : 0;
	*mdts = id[77] && id[77] < 20 ? 4096u << id[77] : 0;
	snprintf(what, sizeof(what), "Identify Namespace %u", o->nsid);
	admin_identify(hq, NVME_ID_CNS_NS, o->nsid, id, what);
	*nlb = get_le64(id);
	*lba_shift = id[128 + 4 * (id[26] & 0xf) + 2];
	free(id);
	if (*nlb == 0)
		fatalx("perf: namespace %u is not active", o->nsid);
	if (*lba_shift < 9 || *lba_shift > 31)
		fatalx("perf: namespace %u: unsupported LBA data size 2^%u",
		    o->nsid, *lba_shift);

	memset(&r, 0, sizeof(r));
	r.sqe.opc = NVME_ADM_SET_FEATURES;
	r.sqe.cdw10 = NVME_FEAT_NUM_QUEUES;
	r.sqe.cdw11 = (uint32_t)(o->queues - 1) | (uint32_t)(o->queues - 1) << 16;
	admin_run(hq, &r, "Set Features (number of queues)");
	if ((int)(r.cqe.dw0 & 0xffff) + 1 < o->queues)
		fatalx("perf: the controller grants only %u I/O queues",
		    (r.cqe.dw0 & 0xffff) + 1);
	return (hq);
}

static double
percentile(const uint64_t *lat, uint64_t total, double p)
{
	uint64_t want = (uint64_t)ceil(total * p), seen = 0;

	for (int i = 0; i < LAT_BUCKETS; i++) {
		seen += lat[i];
		if (seen >= want && lat[i])
			return (lat_value(i) / 1000.0);
	}
	return (0);
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
}

int
perf_main(int argc, char *argv[])
{
	struct perf_opts o = {
		.addr = "127.0.0.1", .port = "4420", .nqn = NVMFD_DEFAULT_NQN,
		.hostnqn = "nqn.2026-11.io.nvmfd:perf", .nsid = 1, .queues = 1,
		.threads = 0, .depth = 32, .bs = 4096, .workload = W_RANDREAD,
		.mix = 70, .seconds = 10, .rate = 1000,
	};
	uint8_t hostid[16];
	uint16_t cntlid;
	uint64_t nlb, total = 0, reads = 0, writes = 0, errors = 0, verr = 0;
	uint64_t lat_sum = 0, lat_max = 0, *lat;
	uint32_t lba_shift, max_icd, mdts;
	struct event_base *abase;
	struct host_qpair *admin;
	struct perf_thread *threads;
	double t0, t1, c0, c1, secs, iops, mbps;
	char kerr[256];
	int ch;

	static const struct option longopts[] = {
		{ "fuzz", required_argument, NULL, 'F' },
		{ "rate", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;

	while ((ch = getopt_long(argc, argv, "a:c:C:gGH:jk:K:M:n:N:o:Pq:s:S:t:T:vw:",
	    longopts, NULL)) != -1) {
		switch (ch) {
		case 'F':
			o.fuzz = true;
			o.seed = strtoull(optarg, &end, 0);
			if (*optarg == '\0' || *end != '\0')
				perf_usage();
			break;
		case 'R':
			o.rate = (unsigned)strtoul(optarg, &end, 0);
			if (*optarg == '\0' || *end != '\0' || o.rate < 1 ||
			    o.rate > 1000000)
				perf_usage();
			break;
		case 'a': o.addr = optarg; break;
		case 'c': o.queues = atoi(optarg); break;
		case 'C':
		case 'S':
			if (auth_key_load(optarg, ch == 'S' ? &o.key : &o.ctrl_key,
			    kerr, sizeof(kerr)) != 0)
				fatalx("perf: -%c: %s", ch, kerr);
			break;
		case 'g': o.hdgst = true; break;
		case 'G': o.ddgst = true; break;
		case 'H': o.hostnqn = optarg; break;
		case 'j': o.json = true; break;
		case 'k': o.tls_kdf = optarg; break;
		case 'K': o.tls_key = optarg; break;
		case 'M': o.mix = atoi(optarg); break;
		case 'n': o.nqn = optarg; break;
		case 'N': o.nsid = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'o': o.bs = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'P': o.poll = true; break;
		case 'q': o.depth = atoi(optarg); break;
		case 's': o.port = optarg; break;
		case 't': o.seconds = atof(optarg); break;
		case 'T': o.threads = atoi(optarg); break;
		case 'v': o.verify = true; break;
		case 'w':
			if (parse_workload(optarg, &o.workload) != 0)
				perf_usage();
			break;
		default:
			perf_usage();
		}
	}
	if (optind != argc || o.queues < 1 || o.queues > 1024 || o.depth < 1 ||
	    o.depth > 1023 || o.bs < 512 || o.bs % 512 || o.seconds <= 0 ||
	    o.mix < 0 || o.mix > 100 || (o.ctrl_key.len && !o.key.len))
		perf_usage();
	if (o.threads <= 0)
		o.threads = MINIMUM(o.queues, (int)sysconf(_SC_NPROCESSORS_ONLN));
	o.threads = MINIMUM(o.threads, o.queues);
	log_init(1, 0);
	signal(SIGPIPE, SIG_IGN);
	if (o.tls_key != NULL) {
		char err[300];

		if (host_psk_make(&o.psk, o.tls_key, o.tls_kdf, o.hostnqn,
		    o.nqn, err, sizeof(err)) != 0)
			fatalx("perf: %s", err);
	} else if (o.tls_kdf != NULL)
		perf_usage();
	for (int i = 0; i < 16; i++)
		hostid[i] = (uint8_t)(getpid() >> (i % 4 * 8)) ^ (uint8_t)i;
	if (o.fuzz)
		return (perf_fuzz(&o, hostid));

	abase = event_base_new();
	admin = perf_admin(abase, &o, hostid, &cntlid, &nlb, &lba_shift,
	    &max_icd, &mdts);
	if (o.bs % (1u << lba_shift) || (mdts && o.bs > mdts) ||
	    nlb < o.bs >> lba_shift)
		fatalx("perf: block size %u does not fit the namespace "
		    "(%llu blocks of %u bytes, MDTS %u)", o.bs,
		    (unsigned long long)nlb, 1u << lba_shift, mdts);

	if ((threads = calloc(o.threads, sizeof(*threads))) == NULL)
		fatal("perf");
	for (int q = 0; q < o.queues; q++) {
		struct perf_thread *t = &threads[q % o.threads];
		struct host_qpair *hq;
		char err[256];
		uint16_t status;

		if (t->base == NULL) {
			t->base = event_base_new();
			t->o = &o;
			t->nlb = nlb;
			t->lba_shift = lba_shift;
			t->blocks_per_io = o.bs >> lba_shift;
			t->rng = 0x2545f4914f6cdd1dull * (q + 1);
			t->hqs = calloc(o.queues, sizeof(*t->hqs));
			t->ios = calloc((size_t)o.queues * o.depth, sizeof(*t->ios));
			if (t->hqs == NULL || t->ios == NULL)
				fatal("perf");
		}
		hq = host_connect_tls(t->base, o.addr, o.port, o.tls_key ?
		    &o.psk : NULL, o.hdgst, o.ddgst, o.depth, err, sizeof(err));
		if (hq == NULL)
			fatalx("perf: %s", err);
		hq->max_icd = max_icd;
		/* The Connect runs on the thread's base before it starts. */
		if (host_fabrics_connect(hq, q + 1, o.depth + 1, o.nqn,
		    o.hostnqn, hostid, cntlid, 0, &status) < 0)
			fatalx("perf: I/O queue %d connect failed: status 0x%x %s",
			    q + 1, status, hq->error);
		perf_auth(hq, &o, q + 1);
		t->hqs[t->nhq++] = hq;
		for (int d = 0; d < o.depth; d++) {
			struct perf_io *io = &t->ios[t->nios++];

			io->t = t;
			io->hq = hq;
			if ((io->buf = aligned_alloc(4096, (o.bs + 4095) & ~4095u)) == NULL)
				fatal("perf");
			memset(io->buf, 0xa5, o.bs);
		}
	}

	if (!o.json)
		fprintf(stderr, "perf: %s %u-byte %s, %d queue%s x depth %d, "
		    "%d thread%s, %.1f s, namespace %u (%llu blocks of %u)\n",
		    o.nqn, o.bs, workload_names[o.workload], o.queues,
		    o.queues == 1 ? "" : "s", o.depth, o.threads,
		    o.threads == 1 ? "" : "s", o.seconds, o.nsid,
		    (unsigned long long)nlb, 1u << lba_shift);
	t0 = now_ns() / 1e9;
	c0 = cpu_seconds();
	for (int i = 0; i < o.threads; i++)
		if (pthread_create(&threads[i].tid, NULL, perf_thread_main,
		    &threads[i]) != 0)
			fatal("perf: pthread_create");
	/* Progress once a second while the threads run; they end early when
	 * their queues die (a controller terminated or reset). */
	for (uint64_t last = 0;;) {
		double now;
		uint64_t sum = 0;
		int running = 0;

		usleep(200000);
		now = now_ns() / 1e9;
		for (int i = 0; i < o.threads; i++) {
			sum += atomic_load_explicit(&threads[i].done_ios,
			    memory_order_relaxed);
			running += !atomic_load(&threads[i].exited);
		}
		if (now - t0 >= o.seconds || running == 0)
			break;
		if (!o.json && (uint64_t)(now - t0) != last) {
			last = (uint64_t)(now - t0);
			fprintf(stderr, "perf: %3llus %12.0f IOPS (average)\r",
			    (unsigned long long)last, sum / (now - t0));
		}
	}
	for (int i = 0; i < o.threads; i++)
		pthread_join(threads[i].tid, NULL);
	t1 = now_ns() / 1e9;
	c1 = cpu_seconds();
	if (!o.json)
		fprintf(stderr, "\n");

	if ((lat = calloc(LAT_BUCKETS, sizeof(*lat))) == NULL)
		fatal("perf");
	for (int i = 0; i < o.threads; i++) {
		struct perf_thread *t = &threads[i];

		reads += t->reads;
		writes += t->writes;
		errors += t->errors;
		verr += t->verify_errors;
		lat_sum += t->lat_sum;
		lat_max = MAXIMUM(lat_max, t->lat_max);
		for (int b = 0; b < LAT_BUCKETS; b++)
			lat[b] += t->lat[b];
		for (int q = 0; q < t->nhq; q++) {
			if (t->hqs[q]->dead && errors == 0)
				log_warnx("perf: queue failed: %s", t->hqs[q]->error);
			host_close(t->hqs[q]);
		}
	}
	total = reads + writes;
	secs = t1 - t0;
	iops = total / secs;
	mbps = iops * o.bs / 1e6;
	if (o.json)
		printf("{\"workload\":\"%s\",\"block_size\":%u,\"queues\":%d,"
		    "\"depth\":%d,\"seconds\":%.3f,\"ios\":%llu,\"iops\":%.0f,"
		    "\"mbps\":%.1f,\"lat_avg_us\":%.2f,\"lat_p50_us\":%.2f,"
		    "\"lat_p99_us\":%.2f,\"lat_p999_us\":%.2f,\"lat_max_us\":%.2f,"
		    "\"client_cpu_us_per_io\":%.3f,\"errors\":%llu,"
		    "\"verify_errors\":%llu}\n", workload_names[o.workload], o.bs,
		    o.queues, o.depth, secs, (unsigned long long)total, iops,
		    mbps, total ? lat_sum / 1e3 / total : 0,
		    percentile(lat, total, 0.5), percentile(lat, total, 0.99),
		    percentile(lat, total, 0.999), lat_max / 1e3,
		    total ? (c1 - c0) * 1e6 / total : 0,
		    (unsigned long long)errors, (unsigned long long)verr);
	else
		printf("%.0f IOPS, %.1f MB/s, latency avg %.1f us, p50 %.1f us, "
		    "p99 %.1f us, p99.9 %.1f us, max %.1f us; client CPU "
		    "%.2f us/IO; %llu reads, %llu writes, %llu errors, %llu "
		    "verify errors\n", iops, mbps,
		    total ? lat_sum / 1e3 / total : 0,
		    percentile(lat, total, 0.5), percentile(lat, total, 0.99),
		    percentile(lat, total, 0.999), lat_max / 1e3,
		    total ? (c1 - c0) * 1e6 / total : 0,
		    (unsigned long long)reads, (unsigned long long)writes,
		    (unsigned long long)errors, (unsigned long long)verr);
	host_close(admin);
	event_base_free(abase);
	for (int i = 0; i < o.threads; i++) {
		struct perf_thread *t = &threads[i];

		for (int k = 0; k < t->nios; k++)
			free(t->ios[k].buf);
		free(t->ios);
		free(t->hqs);
		if (t->stop_ev)
			event_free(t->stop_ev);
		if (t->base)
			event_base_free(t->base);
	}
	free(threads);
	free(lat);
	return (errors || verr || total == 0 ? 1 : 0);
}
