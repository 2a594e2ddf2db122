/*
 * nvmfctl discover and connect-all: read a discovery controller's log in
 * nvmfctl itself (blocking is fine there, never in the daemon), the right
 * way: the header, the entries in chunks, the header again, retried while
 * the generation counter moves.  connect-all then asks the daemon to
 * connect to every NVM subsystem the log lists.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "nvmfd.h"
#include "ctl-proto.h"
#include "host.h"

#define DISC_MAX_RECORDS	1024	/* a log that claims more is cut */
#define DISC_CHUNK		4096
#define DISC_TRIES		5
#define DISC_REFERRAL_DEPTH	4	/* referrals followed from the first */
#define DISC_MAX_CTRLS		16	/* discovery controllers read in all */

static int
run(struct host_qpair *hq, struct host_req *r)
{
	return (host_run(hq, r, 5000) == 0 && (r->cqe.status >> 1) == 0 ?
	    0 : -1);
}

static int
get_log(struct host_qpair *hq, uint64_t off, void *buf, uint32_t len)
{
	struct host_req r;
	uint32_t numd = len / 4 - 1;

	memset(&r, 0, sizeof(r));
	r.sqe.opc = NVME_ADM_GET_LOG_PAGE;
	r.sqe.cdw10 = NVME_LOG_DISCOVERY | (numd & 0xffff) << 16;
	r.sqe.cdw11 = numd >> 16;
	r.sqe.cdw12 = (uint32_t)off;
	r.sqe.cdw13 = (uint32_t)(off >> 32);
	r.iov[0].iov_base = buf;
	r.iov[0].iov_len = len;
	r.iovcnt = 1;
	r.data_len = len;
	r.dir = DIR_C2H;
	return (run(hq, &r));
}

/*
 * An entry a controller meant: a known subtype and a subsystem NQN that is
 * there and ends.  What a read past the end of the log gives (zeroes, or
 * anything) is not, so a header whose record count lies is caught.
 */
static bool
entry_valid(const struct nvmf_disc_log_entry *e)
{
	return ((e->subtype == NVMF_SUBTYPE_REFERRAL ||
	    e->subtype == NVMF_SUBTYPE_NVME ||
	    e->subtype == NVMF_SUBTYPE_CURRENT_DISC) &&
	    (unsigned char)e->subnqn[0] > ' ' &&
	    memchr(e->subnqn, '\0', sizeof(e->subnqn)) != NULL);
}

/*
 * The discovery log of addr:port into *entries (malloc'd), *n records.
 * Returns 0, or -1 with err.
 */
static int
discover(const struct host_params *p, struct nvmf_disc_log_entry **entries,
    uint64_t *n, char *err, size_t errlen)
{
	struct event_base *base;
	struct host_qpair *hq;
	struct host_req r;
	struct nvmf_disc_log_hdr *hdr = NULL;
	uint8_t *buf = NULL;
	uint64_t gen, numrec = 0;
	uint16_t status;
	int rc = -1, tries;
	char msg[256];

	*entries = NULL;
	*n = 0;
	if ((base = event_base_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	/* With the association's keys, if any: TLS, DH-HMAC-CHAP. */
	if ((hq = host_queue_open(base, p, NVMF_DISCOVERY_NQN, 0,
	    NVMFD_ADMIN_QUEUE_DEPTH - 1, NVMFD_ADMIN_QUEUE_DEPTH,
	    NVMF_CNTLID_DYNAMIC, 0, &status, msg, sizeof(msg))) == NULL) {
		snprintf(err, errlen, "discovery controller: %s", msg);
		event_base_free(base);
		return (-1);
	}
	memset(&r, 0, sizeof(r));
	host_cmd_property(&r, NVMF_FCTYPE_PROPERTY_SET, NVME_REG_CC, false,
	    NVME_CC_EN | 6u << 16 | 4u << 20);
	if (run(hq, &r) != 0) {
		snprintf(err, errlen, "cannot enable the discovery controller");
		goto out;
	}
	for (int i = 0;; i++) {
		host_cmd_property(&r, NVMF_FCTYPE_PROPERTY_GET, NVME_REG_CSTS,
		    false, 0);
		if (run(hq, &r) == 0 && (r.cqe.dw0 & NVME_CSTS_RDY))
			break;
		if (i == 100) {
			snprintf(err, errlen, "discovery controller not ready");
			goto out;
		}
		usleep(50000);
	}
	if ((hdr = malloc(sizeof(*hdr))) == NULL)
		goto oom;
	for (tries = 0; tries < DISC_TRIES; tries++) {
		uint64_t len;

		if (get_log(hq, 0, hdr, sizeof(*hdr)) != 0) {
			snprintf(err, errlen, "Get Log Page (discovery) failed");
			goto out;
		}
		gen = hdr->genctr;
		numrec = MINIMUM(hdr->numrec, DISC_MAX_RECORDS);
		free(buf);
		len = numrec * sizeof(struct nvmf_disc_log_entry);
		if ((buf = calloc(1, len + 1)) == NULL)
			goto oom;
		for (uint64_t off = 0; off < len; off += DISC_CHUNK) {
			if (get_log(hq, sizeof(*hdr) + off, buf + off,
			    (uint32_t)MINIMUM(len - off, DISC_CHUNK)) != 0) {
				snprintf(err, errlen, "Get Log Page (discovery "
				    "entries) failed");
				goto out;
			}
		}
		if (get_log(hq, 0, hdr, sizeof(*hdr)) != 0) {
			snprintf(err, errlen, "Get Log Page (discovery) failed");
			goto out;
		}
		/* Unchanged while we read: the entries are one version. */
		if (hdr->genctr == gen)
			break;
	}
	if (tries == DISC_TRIES) {
		snprintf(err, errlen, "the discovery log kept changing");
		goto out;
	}
	for (uint64_t i = 0; i < numrec; i++)
		if (!entry_valid((struct nvmf_disc_log_entry *)buf + i)) {
			snprintf(err, errlen, "discovery log entry %llu is not "
			    "valid: the header counts %llu records",
			    (unsigned long long)i,
			    (unsigned long long)hdr->numrec);
			goto out;
		}
	*entries = (struct nvmf_disc_log_entry *)buf;
	*n = numrec;
	buf = NULL;
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
out:
	free(buf);
	free(hdr);
	host_close(hq);
	event_base_free(base);
	return (rc);
}

/* A fixed-width field of an entry, without its space padding. */
static void
field(char *dst, size_t dlen, const char *src, size_t slen)
{
	size_t n = strnlen(src, slen);

	while (n > 0 && src[n - 1] == ' ')
		n--;
	snprintf(dst, dlen, "%.*s", (int)n, src);
}

void
host_disc_entry_fields(const struct nvmf_disc_log_entry *e,
    char addr[static 257], char svc[static 33], char nqn[static 257])
{
	field(addr, 257, e->traddr, sizeof(e->traddr));
	field(svc, 33, e->trsvcid, sizeof(e->trsvcid));
	field(nqn, 257, e->subnqn, sizeof(e->subnqn));
}

/* The same subsystem at the same address, as far as connecting goes. */
static bool
entry_same(const struct nvmf_disc_log_entry *a,
    const struct nvmf_disc_log_entry *b, bool nqn_too)
{
	char a1[257], s1[33], n1[257], a2[257], s2[33], n2[257];

	host_disc_entry_fields(a, a1, s1, n1);
	host_disc_entry_fields(b, a2, s2, n2);
	return (strcmp(a1, a2) == 0 && strcmp(s1, s2) == 0 &&
	    (!nqn_too || strcmp(n1, n2) == 0));
}

/*
 * connect-all's view: the NVM subsystems (TCP) of the discovery log at
 * p's address and, breadth first, of every discovery controller it refers
 * to, up to DISC_REFERRAL_DEPTH referrals away and DISC_MAX_CTRLS
 * controllers in all; a controller already read (a referral loop) is not
 * read again, and a subsystem listed twice is kept once.  A referral that
 * cannot be read is reported through warn() and skipped; only the first
 * controller's failure fails the whole.  Blocking: nvmfctl, or a thread of
 * the daemon, never a loop.
 */
int
host_discover_all(const struct host_params *p,
    struct nvmf_disc_log_entry **out, uint64_t *nout,
    void (*warn)(const char *, void *), void *warg, char *err, size_t errlen)
{
	struct nvmf_disc_log_entry ctrls[DISC_MAX_CTRLS], *e, *res = NULL;
	int depth[DISC_MAX_CTRLS], nctrl = 1;
	uint64_t n, nres = 0;
	char msg[512];

	*out = NULL;
	*nout = 0;
	/* ctrls[] holds the controllers to read, as referral entries. */
	memset(&ctrls[0], 0, sizeof(ctrls[0]));
	snprintf(ctrls[0].traddr, sizeof(ctrls[0].traddr), "%s", p->traddr);
	snprintf(ctrls[0].trsvcid, sizeof(ctrls[0].trsvcid), "%s",
	    p->trsvcid);
	depth[0] = 0;
	for (int c = 0; c < nctrl; c++) {
		struct host_params q = *p;
		char addr[257], svc[33], nqn[257];

		host_disc_entry_fields(&ctrls[c], addr, svc, nqn);
		if (host_param_set(&q, "traddr", addr, msg, sizeof(msg)) != 0 ||
		    host_param_set(&q, "trsvcid", svc, msg, sizeof(msg)) != 0 ||
		    discover(&q, &e, &n, msg, sizeof(msg)) != 0) {
			host_params_clear(&q);
			if (c == 0) {
				snprintf(err, errlen, "%s", msg);
				free(res);
				return (-1);
			}
			if (warn != NULL) {
				char w[640];

				snprintf(w, sizeof(w), "referral %.64s:%.32s: "
				    "%s", addr, svc, msg);
				warn(w, warg);
			}
			continue;
		}
		host_params_clear(&q);
		for (uint64_t i = 0; i < n; i++) {
			bool seen = false;

			if (e[i].trtype != NVMF_TRTYPE_TCP)
				continue;
			if (e[i].subtype == NVMF_SUBTYPE_REFERRAL) {
				for (int k = 0; k < nctrl && !seen; k++)
					seen = entry_same(&ctrls[k], &e[i],
					    false);
				if (seen || depth[c] == DISC_REFERRAL_DEPTH ||
				    nctrl == DISC_MAX_CTRLS)
					continue;
				ctrls[nctrl] = e[i];
				depth[nctrl++] = depth[c] + 1;
				continue;
			}
			if (e[i].subtype != NVMF_SUBTYPE_NVME)
				continue;
			for (uint64_t k = 0; k < nres && !seen; k++)
				seen = entry_same(&res[k], &e[i], true);
			if (seen)
				continue;
			if (nres % 64 == 0) {
				void *r = reallocarray(res, nres + 64,
				    sizeof(*res));

				if (r == NULL) {
					free(e);
					free(res);
					snprintf(err, errlen, "out of memory");
					return (-1);
				}
				res = r;
			}
			res[nres++] = e[i];
		}
		free(e);
	}
	*out = res;
	*nout = nres;
	return (0);
}

static const char *
subtype_name(uint8_t t)
{
	switch (t) {
	case NVMF_SUBTYPE_REFERRAL:	return ("referral");
	case NVMF_SUBTYPE_NVME:		return ("nvme");
	case NVMF_SUBTYPE_CURRENT_DISC:	return ("discovery");
	}
	return ("?");
}

static int
params_from(struct cmd_ctx *ctx, struct host_params *p)
{
	char err[256];

	host_params_default(p);
	snprintf(p->trsvcid, sizeof(p->trsvcid), "8009");
	for (int i = 0; i < ctx->nopts; i++) {
		if (strcmp(ctx->opts[i].name, "json") == 0 ||
		    strcmp(ctx->opts[i].name, "persistent") == 0)
			continue;
		if (host_param_set(p, ctx->opts[i].name, ctx->opts[i].value,
		    err, sizeof(err)) != 0)
			return (cmd_error(ctx, CTL_EUSAGE, "%s: %s",
			    ctx->entry->name, err));
	}
	if (p->traddr[0] == '\0')
		return (cmd_error(ctx, CTL_EUSAGE, "%s: an address (-a) is "
		    "required", ctx->entry->name));
	return (CTL_OK);
}

static void
warn_stderr(const char *msg, void *arg)
{
	fprintf(stderr, "nvmfctl: %s: %s\n", (const char *)arg, msg);
}

/*
 * Ask the daemon to connect to every subsystem found; with --persistent,
 * then to the discovery controller itself, whose association follows the
 * log's changes (host.c).  Last, so its own connect-all finds these
 * already there.
 */
static int
connect_all(struct cmd_ctx *ctx, const struct host_params *p)
{
	struct nvmf_disc_log_entry *e;
	uint64_t n;
	char err[256];
	int rc = CTL_OK;

	if (host_discover_all(p, &e, &n, warn_stderr,
	    (void *)ctx->entry->name, err, sizeof(err)) != 0)
		return (cmd_error(ctx, CTL_ERR, "%s: %s:%s: %s",
		    ctx->entry->name, p->traddr, p->trsvcid, err));
	for (uint64_t i = 0; i < n && rc == CTL_OK; i++) {
		char addr[257], svc[33], nqn[257];

		host_disc_entry_fields(&e[i], addr, svc, nqn);
		rc = cli_connect_remote(ctx, addr, svc, nqn);
	}
	free(e);
	if (rc == CTL_OK && cmd_opt(ctx, "persistent") != NULL)
		rc = cli_connect_remote(ctx, p->traddr, p->trsvcid,
		    NVMF_DISCOVERY_NQN);
	return (rc);
}

int
cmd_discover(struct cmd_ctx *ctx)
{
	struct host_params p;
	struct nvmf_disc_log_entry *e;
	uint64_t n;
	char err[256], s[257];
	int rc;

	/* The daemon's loops must never wait on a remote peer. */
	if (main_loop != NULL)
		return (cmd_error(ctx, CTL_EUSAGE, "%s runs in nvmfctl",
		    ctx->entry->name));
	if ((rc = params_from(ctx, &p)) != CTL_OK) {
		host_params_clear(&p);
		return (rc);
	}
	if (strcmp(ctx->entry->name, "connect-all") == 0) {
		/* One device cannot serve every subsystem found. */
		if (p.nbd_device[0] != '\0')
			rc = cmd_error(ctx, CTL_EUSAGE, "connect-all: "
			    "--nbd-device names one device: connect to that "
			    "subsystem with it instead");
		else
			rc = connect_all(ctx, &p);
		host_params_clear(&p);
		return (rc);
	}
	rc = discover(&p, &e, &n, err, sizeof(err));
	host_params_clear(&p);
	if (rc != 0)
		return (cmd_error(ctx, CTL_ERR, "%s: %s:%s: %s",
		    ctx->entry->name, p.traddr, p.trsvcid, err));
	out_list(ctx->out, "entries");
	for (uint64_t i = 0; i < n; i++) {
		out_object(ctx->out, NULL);
		out_str(ctx->out, "subtype", "%s", subtype_name(e[i].subtype));
		out_str(ctx->out, "trtype", "%s", e[i].trtype == NVMF_TRTYPE_TCP ?
		    "tcp" : "other");
		out_str(ctx->out, "adrfam", "%s", e[i].adrfam ==
		    NVMF_ADRFAM_IPV6 ? "ipv6" : "ipv4");
		field(s, sizeof(s), e[i].traddr, sizeof(e[i].traddr));
		out_str(ctx->out, "traddr", "%s", s);
		field(s, sizeof(s), e[i].trsvcid, sizeof(e[i].trsvcid));
		out_str(ctx->out, "trsvcid", "%s", s);
		out_u64(ctx->out, "portid", e[i].portid);
		field(s, sizeof(s), e[i].subnqn, sizeof(e[i].subnqn));
		out_str(ctx->out, "subnqn", "%s", s);
		out_end(ctx->out);
	}
	out_end(ctx->out);
	free(e);
	return (CTL_OK);
}
