/*
 * DH-HMAC-CHAP, controller role: Authentication Send/Receive on any queue
 * (NVMe Base 2.x section 8.3.4; protocol messages in auth.h).  It runs on
 * the loop that owns the queue: the main loop for admin queues, a worker for
 * I/O queues.  The host's keys reach workers as a copy taken under the
 * controller's auth_mtx, refreshed from the configuration on the main loop.
 *
 * A Send carries the host's message; the answer waits for the next Receive.
 * Any failure is answered with AUTH_Failure1 and the association is torn
 * down once it is sent, as the Linux target does.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "nvmfd.h"

#define AUTH_XFER_MAX		8192	/* TL / AL we accept */
#define ROLE_HOST		"HostHost"
#define ROLE_CTRL		"Controller"

enum auth_step {
	ST_NEGOTIATE,		/* waiting for a Send: Negotiate */
	ST_CHALLENGE,		/* waiting for a Receive: Challenge is ready */
	ST_REPLY,		/* Send: Reply */
	ST_SUCCESS1,		/* Receive: Success1 is ready */
	ST_SUCCESS2,		/* Send: Success2 */
	ST_FAILURE1,		/* Receive: Failure1 is ready, then teardown */
};

struct auth_qp {
	enum auth_step	step;
	bool		busy;		/* counted in ctrl->auth_busy */
	bool		bidirectional;
	uint16_t	tid;
	uint8_t		hashid, dhgid, hl;
	const char	*why;		/* for the log */
	uint32_t	s1;
	uint8_t		c1[DHCHAP_HL_MAX];
	struct dhchap_dh *dh;
	struct dhchap_cred cred;
	struct event	*timer;
	size_t		msglen;
	uint8_t		msg[AUTH_MSG_MAX];
};

static _Atomic uint32_t seqnum;
/* One transaction, start to end; generous for ffdhe8192 on a slow host. */
unsigned auth_timeout_ms = 120000;

static const uint8_t default_hashes[] = {
	DHCHAP_SHA256, DHCHAP_SHA384, DHCHAP_SHA512,
};
static const uint8_t default_groups[] = {
	1, 2, 3, 4, 5, DHCHAP_NULL,	/* ffdhe2048 .. ffdhe8192, then none */
};

/* ------------------------------------------------ keys and offers */

int
auth_key_load(const char *arg, struct dhchap_key *key, char *err,
    size_t errlen)
{
	char buf[256], msg[160];
	struct stat st;
	ssize_t n;
	int fd, rc;

	if (arg[0] != '@') {
		if (dhchap_key_parse(arg, key, msg, sizeof(msg)) == -1) {
			snprintf(err, errlen, "%s", msg);
			return (-1);
		}
		return (0);
	}
	arg++;
	if (arg[0] != '/') {
		snprintf(err, errlen, "key file %s: must be an absolute path",
		    arg);
		return (-1);
	}
	/* O_NONBLOCK: a FIFO named here must not hang the loader. */
	if ((fd = open(arg, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1) {
		snprintf(err, errlen, "key file %s: %s", arg, strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "key file %s: not a regular file", arg);
		close(fd);
		return (-1);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "key file %s: mode %04o gives group or "
		    "others access; it must be 0600 or 0400", arg,
		    (unsigned)(st.st_mode & 07777));
		close(fd);
		return (-1);
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "key file %s: %s", arg, strerror(errno));
		return (-1);
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
	    buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	rc = dhchap_key_parse(buf, key, msg, sizeof(msg));
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc == -1)
		snprintf(err, errlen, "key file %s: %s", arg, msg);
	return (rc);
}

static void
free_secret(char **s)
{
	if (*s != NULL) {
		OPENSSL_cleanse(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

void
auth_host_clear(struct host *h)
{
	free_secret(&h->dhchap_secret);
	free_secret(&h->dhchap_ctrl_secret);
	dhchap_key_clear(&h->key);
	dhchap_key_clear(&h->ctrl_key);
}

static bool
has(const uint8_t *list, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == v)
			return (true);
	return (false);
}

/* The subsystem's (or discovery's) list, in its order, limited to what the
 * port allows. */
static void
offer_merge(const struct dhchap_offer *ss, const struct dhchap_offer *port,
    struct dhchap_offer *out)
{
	const uint8_t *h = ss->nhashes ? ss->hashes : default_hashes;
	const uint8_t *g = ss->ngroups ? ss->groups : default_groups;
	size_t nh = ss->nhashes ? ss->nhashes : nitems(default_hashes);
	size_t ng = ss->ngroups ? ss->ngroups : nitems(default_groups);

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < nh; i++)
		if (port->nhashes == 0 || has(port->hashes, port->nhashes, h[i]))
			out->hashes[out->nhashes++] = h[i];
	for (size_t i = 0; i < ng; i++)
		if (port->ngroups == 0 || has(port->groups, port->ngroups, g[i]))
			out->groups[out->ngroups++] = g[i];
}

void
auth_cred_build(const struct dhchap_offer *offer, struct port *port,
    struct host *h, struct dhchap_cred *cred)
{
	memset(cred, 0, sizeof(*cred));
	if (h != NULL) {
		cred->host = h->key;
		cred->ctrl = h->ctrl_key;
	}
	offer_merge(offer, &port->dhchap, &cred->offer);
}

void
auth_ctrl_refresh(struct controller *ctrl)
{
	struct dhchap_cred cred;

	/* A discovery controller: the discovery section's host and offer. */
	if (ctrl->subsys == NULL)
		auth_cred_build(&running_config->discovery.dhchap, ctrl->port,
		    discovery_host_find(running_config, ctrl->hostnqn), &cred);
	else
		auth_cred_build(&ctrl->subsys->dhchap, ctrl->port,
		    host_find(ctrl->subsys, ctrl->hostnqn), &cred);
	pthread_mutex_lock(&ctrl->auth_mtx);
	ctrl->auth_cred = cred;
	pthread_mutex_unlock(&ctrl->auth_mtx);
	OPENSSL_cleanse(&cred, sizeof(cred));
}

void
auth_subsys_refresh(struct subsystem *ss)
{
	struct controller *ctrl;

	TAILQ_FOREACH(ctrl, &ss->controllers, entry)
		auth_ctrl_refresh(ctrl);
}

/* ------------------------------------------------ transaction state */

/* A queue in a transaction holds off the keep-alive timer (a slow exchange
 * counts as traffic); a failed one does not, nor does a stray message. */
static void
auth_busy(struct qpair *qp, bool busy)
{
	struct auth_qp *a = qp->auth;

	if (a->busy != busy)
		atomic_fetch_add(&qp->ctrl->auth_busy, busy ? 1 : -1);
	a->busy = busy;
}

/* The transaction's limit; also for a Failure1 that is never fetched. */
static void
auth_timer_start(struct qpair *qp)
{
	struct timeval tv = { auth_timeout_ms / 1000,
	    (auth_timeout_ms % 1000) * 1000 };

	evtimer_add(qp->auth->timer, &tv);
}

/* Back to waiting for a Negotiate; key material goes. */
static void
auth_reset(struct qpair *qp)
{
	struct auth_qp *a = qp->auth;

	auth_busy(qp, false);
	if (a->timer != NULL)
		evtimer_del(a->timer);
	dhchap_dh_free(a->dh);
	a->dh = NULL;
	OPENSSL_cleanse(&a->cred, sizeof(a->cred));
	OPENSSL_cleanse(a->msg, sizeof(a->msg));
	a->msglen = 0;
	a->step = ST_NEGOTIATE;
}

void
auth_qpair_free(struct qpair *qp)
{
	struct auth_qp *a = qp->auth;

	if (a == NULL)
		return;
	auth_reset(qp);
	if (a->timer != NULL)
		event_free(a->timer);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
	qp->auth = NULL;
}

static const char *
host_of(struct qpair *qp)
{
	return (qp->ctrl->hostnqn);
}

static void
auth_fatal_msg(void *arg)
{
	ctrl_destroy(arg, "authentication failed");
	loop_finish_turn(main_loop);
}

/* Tear the association down once what is queued has been sent. */
static void
auth_teardown(struct qpair *qp, const char *why)
{
	log_peer_warnx("%s: qid %u: host %s: authentication failed: %s",
	    qp->peer, qp->qid, host_of(qp), why);
	qp->authenticated = false;
	qp->close_after_tx = true;
	if (qp->error == NULL)
		qp->error = strdup("authentication failed");
	/* The queue's reference keeps ctrl alive until this message runs:
	 * ctrl_ioq_gone() is posted later, from the same loop. */
	if (qp->qid != 0)
		loop_post(main_loop, auth_fatal_msg, qp->ctrl);
}

/* Answer the next Receive with Failure1. */
static void
auth_fail(struct qpair *qp, uint8_t rescode, const char *why)
{
	struct auth_qp *a = qp->auth;
	uint8_t *m = a->msg;

	dhchap_dh_free(a->dh);
	a->dh = NULL;
	/* The transaction is over: the keep-alive timer applies again while
	 * the Failure1 waits for a Receive. */
	auth_busy(qp, false);
	memset(m, 0, AUTH_FAILURE_LEN);
	m[0] = AUTH_COMMON;
	m[1] = AUTH_FAILURE1;
	put_le16(m + 4, a->tid);
	m[6] = 0x01;		/* RESCODE: failed, reason follows */
	m[7] = rescode;
	a->msglen = AUTH_FAILURE_LEN;
	a->why = why;
	a->step = ST_FAILURE1;
}

static void
auth_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qpair *qp = arg;
	struct loop *l = qp->loop;

	log_peer_warnx("%s: qid %u: host %s: authentication transaction "
	    "timed out", qp->peer, qp->qid, host_of(qp));
	if (qp->authenticated && qp->auth->step != ST_FAILURE1) {
		/* A stalled re-authentication: the queue keeps its old one. */
		auth_reset(qp);
		return;
	}
	if (qp->auth->step == ST_FAILURE1 && qp->qid != 0)
		loop_post(main_loop, auth_fatal_msg, qp->ctrl);
	qpair_ref(qp);
	qpair_close(qp, "authentication timed out");
	loop_finish_turn(l);
	qpair_unref(qp);
}

/* ----------------------------------------------------------- messages */

/* Start the sequence numbers somewhere unpredictable. */
static void
seqnum_seed(void)
{
	uint32_t s;

	if (RAND_bytes((uint8_t *)&s, sizeof(s)) != 1)
		s = (uint32_t)getpid();
	atomic_store(&seqnum, s);
}

static uint32_t
next_seqnum(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	uint32_t s;

	pthread_once(&once, seqnum_seed);
	do {
		s = atomic_fetch_add(&seqnum, 1) + 1;
	} while (s == 0);
	return (s);
}

static bool
pick(const uint8_t *mine, size_t nmine, const uint8_t *theirs,
    size_t ntheirs, uint8_t *out)
{
	for (size_t i = 0; i < nmine; i++)
		if (has(theirs, ntheirs, mine[i])) {
			*out = mine[i];
			return (true);
		}
	return (false);
}

static void
handle_negotiate(struct qpair *qp, const uint8_t *m, size_t n)
{
	struct auth_qp *a = qp->auth;
	struct controller *ctrl = qp->ctrl;
	const uint8_t *d = NULL;
	size_t gs;
	uint8_t napd;

	/* A new Negotiate restarts whatever was in progress. */
	auth_reset(qp);
	a->tid = n >= 6 ? get_le16(m + 4) : 0;
	pthread_mutex_lock(&ctrl->auth_mtx);
	a->cred = ctrl->auth_cred;
	pthread_mutex_unlock(&ctrl->auth_mtx);
	auth_busy(qp, true);
	auth_timer_start(qp);

	if (n < AUTH_NEGOTIATE_LEN + AUTH_DESC_LEN) {
		auth_fail(qp, AUTH_FAIL_PAYLOAD, "Negotiate truncated");
		return;
	}
	napd = m[7];
	if (napd == 0 || n != AUTH_NEGOTIATE_LEN + (size_t)napd * AUTH_DESC_LEN) {
		auth_fail(qp, AUTH_FAIL_PAYLOAD, "Negotiate length does not "
		    "match its descriptor count");
		return;
	}
	if (m[6] != 0) {
		auth_fail(qp, AUTH_FAIL_CONCAT, "secure channel concatenation "
		    "is not supported");
		return;
	}
	for (uint8_t i = 0; i < napd && d == NULL; i++)
		if (m[AUTH_NEGOTIATE_LEN + i * AUTH_DESC_LEN] == AUTH_PROTO_DHCHAP)
			d = m + AUTH_NEGOTIATE_LEN + i * AUTH_DESC_LEN;
	if (d == NULL) {
		auth_fail(qp, AUTH_FAIL_PROTOCOL, "no DH-HMAC-CHAP descriptor");
		return;
	}
	if (d[2] > 30 || d[3] > 30) {
		auth_fail(qp, AUTH_FAIL_PAYLOAD, "descriptor list too long");
		return;
	}
	if (a->cred.host.len == 0) {
		auth_fail(qp, AUTH_FAIL_FAILED, "no key configured for the "
		    "host");
		return;
	}
	if (!pick(a->cred.offer.hashes, a->cred.offer.nhashes, d + 4, d[2],
	    &a->hashid)) {
		auth_fail(qp, AUTH_FAIL_HASH, "no hash in common");
		return;
	}
	if (!pick(a->cred.offer.groups, a->cred.offer.ngroups, d + 34, d[3],
	    &a->dhgid)) {
		auth_fail(qp, AUTH_FAIL_DHGROUP, "no DH group in common");
		return;
	}
	a->hl = dhchap_hash_len(a->hashid);
	gs = dhchap_group_size(a->dhgid);
	if (a->dhgid != DHCHAP_NULL &&
	    (a->dh = dhchap_dh_new(a->dhgid)) == NULL) {
		auth_fail(qp, AUTH_FAIL_FAILED, "DH key generation failed");
		return;
	}
	a->s1 = next_seqnum();
	if (RAND_bytes(a->c1, a->hl) != 1 ||
	    (gs && dhchap_dh_public(a->dh, a->msg + AUTH_HDR_LEN + a->hl,
	    gs) != 0)) {
		auth_fail(qp, AUTH_FAIL_FAILED, "random bytes or DH failed");
		return;
	}
	memset(a->msg, 0, AUTH_HDR_LEN);
	a->msg[0] = AUTH_DHCHAP;
	a->msg[1] = AUTH_CHALLENGE;
	put_le16(a->msg + 4, a->tid);
	a->msg[6] = a->hl;
	a->msg[8] = a->hashid;
	a->msg[9] = a->dhgid;
	put_le16(a->msg + 10, gs);
	put_le32(a->msg + 12, a->s1);
	memcpy(a->msg + AUTH_HDR_LEN, a->c1, a->hl);
	a->msglen = AUTH_HDR_LEN + a->hl + gs;
	a->step = ST_CHALLENGE;
}

/* The augmented challenge; the challenge itself with the NULL group. */
static int
augment(struct auth_qp *a, const uint8_t *z, size_t gs, const uint8_t *c,
    uint8_t *out)
{
	if (gs == 0) {
		memcpy(out, c, a->hl);
		return (0);
	}
	return (dhchap_augment(a->hashid, z, gs, c, out));
}

/* Check R1; build Success1, with R2 when the host challenged us. */
static void
handle_reply(struct qpair *qp, const uint8_t *m, size_t n)
{
	struct auth_qp *a = qp->auth;
	struct controller *ctrl = qp->ctrl;
	uint8_t z[DHCHAP_DHV_MAX], ca[DHCHAP_HL_MAX], k[DHCHAP_HL_MAX];
	uint8_t want[DHCHAP_HL_MAX];
	size_t gs = dhchap_group_size(a->dhgid), klen, dhvlen;
	const uint8_t *r1, *c2, *dhv;
	uint32_t s2;
	bool ok;

	if (n < AUTH_HDR_LEN) {
		auth_fail(qp, AUTH_FAIL_PAYLOAD, "Reply truncated");
		return;
	}
	dhvlen = get_le16(m + 10);
	if (m[6] != a->hl) {
		auth_fail(qp, AUTH_FAIL_PAYLOAD, "Reply hash length is wrong");
		return;
	}
	if (dhvlen != gs) {
		auth_fail(qp, AUTH_FAIL_PAYLOAD, "Reply DH value length is "
		    "wrong");
		return;
	}
	if (n != AUTH_HDR_LEN + 2 * (size_t)a->hl + dhvlen) {
		auth_fail(qp, AUTH_FAIL_PAYLOAD, "Reply length does not match "
		    "its fields");
		return;
	}
	r1 = m + AUTH_HDR_LEN;
	c2 = r1 + a->hl;
	dhv = c2 + a->hl;
	s2 = get_le32(m + 12);
	if (gs != 0 && dhchap_dh_derive(a->dh, dhv, dhvlen, z, gs) != 0) {
		auth_fail(qp, AUTH_FAIL_PAYLOAD, "bad DH public value");
		return;
	}
	ok = augment(a, z, gs, a->c1, ca) == 0 &&
	    dhchap_transform(&a->cred.host, ctrl->hostnqn, k, &klen) == 0 &&
	    dhchap_response(a->hashid, k, klen, ca, a->s1, a->tid, 0,
	    ROLE_HOST, ctrl->hostnqn, ctrl->subnqn, want) == 0;
	if (!ok || !dhchap_equal(want, r1, a->hl)) {
		OPENSSL_cleanse(z, sizeof(z));
		OPENSSL_cleanse(k, sizeof(k));
		auth_fail(qp, AUTH_FAIL_FAILED, ok ? "host response does not "
		    "match (wrong key?)" : "crypto failure");
		return;
	}

	memset(a->msg, 0, AUTH_HDR_LEN + a->hl);
	a->msg[0] = AUTH_DHCHAP;
	a->msg[1] = AUTH_SUCCESS1;
	put_le16(a->msg + 4, a->tid);
	a->msg[6] = a->hl;
	a->msglen = AUTH_HDR_LEN + a->hl;
	/* CVALID with S2 = 0 only feeds secure concatenation. */
	a->bidirectional = m[8] != 0 && s2 != 0;
	if (a->bidirectional) {
		if (a->cred.ctrl.len == 0) {
			OPENSSL_cleanse(z, sizeof(z));
			OPENSSL_cleanse(k, sizeof(k));
			auth_fail(qp, AUTH_FAIL_FAILED, "host asked for "
			    "controller authentication; no controller key");
			return;
		}
		ok = augment(a, z, gs, c2, ca) == 0 &&
		    dhchap_transform(&a->cred.ctrl, ctrl->subnqn, k,
		    &klen) == 0 &&
		    dhchap_response(a->hashid, k, klen, ca, s2, a->tid, 0,
		    ROLE_CTRL, ctrl->subnqn, ctrl->hostnqn,
		    a->msg + AUTH_HDR_LEN) == 0;
		if (!ok) {
			OPENSSL_cleanse(z, sizeof(z));
			OPENSSL_cleanse(k, sizeof(k));
			auth_fail(qp, AUTH_FAIL_FAILED, "crypto failure");
			return;
		}
		a->msg[8] = 1;	/* RVALID */
	}
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(k, sizeof(k));
	dhchap_dh_free(a->dh);
	a->dh = NULL;
	a->step = ST_SUCCESS1;
}

static void
auth_done(struct qpair *qp)
{
	struct auth_qp *a = qp->auth;

	log_peer_info("%s: qid %u: host %s authenticated (%s, %s%s)", qp->peer,
	    qp->qid, host_of(qp), dhchap_hash_name(a->hashid),
	    dhchap_group_name(a->dhgid), a->bidirectional ?
	    ", bidirectional" : "");
	qp->authenticated = true;
	auth_reset(qp);
}

/* One host message (a Send). */
static void
auth_message(struct qpair *qp, const uint8_t *m, size_t n)
{
	struct auth_qp *a = qp->auth;
	uint8_t type = n >= 2 ? m[0] : 0xff, id = n >= 2 ? m[1] : 0xff;

	if (type == AUTH_COMMON && id == AUTH_NEGOTIATE) {
		handle_negotiate(qp, m, n);
		return;
	}
	if (type == AUTH_COMMON && id == AUTH_FAILURE2) {
		char why[64];

		snprintf(why, sizeof(why), "host sent Failure2 (reason "
		    "0x%02x)", n >= AUTH_FAILURE_LEN ? m[7] : 0);
		auth_reset(qp);
		auth_teardown(qp, why);
		return;
	}
	if (a->step == ST_NEGOTIATE) {
		/* Nothing to answer: no transaction, none starts. */
		a->tid = n >= 6 ? get_le16(m + 4) : 0;
		auth_timer_start(qp);
		auth_fail(qp, AUTH_FAIL_MESSAGE, "message outside a "
		    "transaction");
		return;
	}
	if (a->step == ST_FAILURE1)
		return;		/* the Failure1 still waits for a Receive */
	if (n < 6 || get_le16(m + 4) != a->tid) {
		auth_fail(qp, AUTH_FAIL_PAYLOAD, "wrong transaction ID");
		return;
	}
	if (type == AUTH_DHCHAP && id == AUTH_REPLY && a->step == ST_REPLY) {
		handle_reply(qp, m, n);
		return;
	}
	if (type == AUTH_DHCHAP && id == AUTH_SUCCESS2 &&
	    a->step == ST_SUCCESS2) {
		if (n != AUTH_HDR_LEN) {
			auth_fail(qp, AUTH_FAIL_PAYLOAD, "Success2 length");
			return;
		}
		auth_done(qp);
		return;
	}
	auth_fail(qp, AUTH_FAIL_MESSAGE, "unexpected message");
}

/* -------------------------------------------------------- commands */

static void
auth_send_ready(struct nvmf_cmd *cmd)
{
	struct qpair *qp = cmd->qp;

	atomic_store(&qp->ctrl->auth_last_ns, now_ns());
	auth_message(qp, cmd->buf, cmd->data_len);
	OPENSSL_cleanse(cmd->buf, cmd->data_len);
	cmd_complete_status(cmd, NVME_SC_SUCCESS);
}

static void
auth_send(struct nvmf_cmd *cmd, uint32_t tl)
{
	if (cmd->data_len != tl) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_SGL_INVALID_DATA_LEN));
		return;
	}
	if (cmd_alloc_buf(cmd, tl) != 0) {
		cmd_complete_status(cmd, NVME_SC_INTERNAL);
		return;
	}
	cmd->dir = DIR_H2C;
	cmd_fetch_data(cmd, auth_send_ready);
}

static void
auth_receive(struct nvmf_cmd *cmd, uint32_t al)
{
	struct qpair *qp = cmd->qp;
	struct auth_qp *a = qp->auth;
	enum auth_step step = a->step;

	if (cmd->data_len != al) {
		cmd_complete_status(cmd,
		    NVME_SC_DNR(NVME_SC_SGL_INVALID_DATA_LEN));
		return;
	}
	if (step != ST_CHALLENGE && step != ST_SUCCESS1 &&
	    step != ST_FAILURE1) {
		auth_fail(qp, AUTH_FAIL_MESSAGE, "Receive out of sequence");
		step = ST_FAILURE1;
	}
	if (al < a->msglen) {
		auth_fail(qp, AUTH_FAIL_PAYLOAD, "Receive buffer too small");
		step = ST_FAILURE1;
	}
	if (al < a->msglen) {
		/* Not even a Failure1 fits. */
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		auth_reset(qp);
		auth_teardown(qp, a->why);
		return;
	}
	if (cmd_alloc_buf(cmd, al) != 0) {
		cmd_complete_status(cmd, NVME_SC_INTERNAL);
		return;
	}
	memset(cmd->buf, 0, al);
	memcpy(cmd->buf, a->msg, a->msglen);
	cmd->dir = DIR_C2H;
	cmd->c2h_len = al;
	switch (step) {
	case ST_CHALLENGE:
		a->step = ST_REPLY;
		break;
	case ST_SUCCESS1:
		if (a->bidirectional)
			a->step = ST_SUCCESS2;
		else
			auth_done(qp);
		break;
	default:
		auth_reset(qp);
		auth_teardown(qp, a->why);
		break;
	}
	cmd_complete_status(cmd, NVME_SC_SUCCESS);
}

/* Authentication Send (FCTYPE 0x05) and Receive (0x06), any queue. */
void
auth_dispatch(struct nvmf_cmd *cmd)
{
	struct qpair *qp = cmd->qp;
	uint8_t fctype = ((const uint8_t *)&cmd->sqe)[4];
	uint32_t cdw10 = cmd->sqe.cdw10, len = cmd->sqe.cdw11;

	if (cdw10 >> 24 != AUTH_SECP ||
	    ((cdw10 >> 16) & 0xff) != AUTH_SPSP ||
	    ((cdw10 >> 8) & 0xff) != AUTH_SPSP ||
	    len == 0 || len > AUTH_XFER_MAX) {
		cmd_complete_status(cmd, NVME_SC_DNR(NVME_SC_INVALID_FIELD));
		return;
	}
	if (qp->auth == NULL) {
		if ((qp->auth = calloc(1, sizeof(*qp->auth))) == NULL ||
		    (qp->auth->timer = evtimer_new(qp->loop->base,
		    auth_timeout_cb, qp)) == NULL) {
			free(qp->auth);
			qp->auth = NULL;
			cmd_complete_status(cmd, NVME_SC_INTERNAL);
			return;
		}
	}
	/* Authentication counts as traffic for the keep-alive timer. */
	atomic_store(&qp->ctrl->auth_last_ns, now_ns());
	if (qp->qid == 0)
		ctrl_keep_alive(qp->ctrl);
	if (fctype == NVMF_FCTYPE_AUTH_SEND)
		auth_send(cmd, len);
	else
		auth_receive(cmd, len);
}

