/*
 * Securing a host role queue: TLS with the association's PSK, and
 * DH-HMAC-CHAP when the controller's Connect response sets ATR.  The keys
 * are read from their specs (the secret, or @FILE) for each queue, so a
 * rotated key file counts from the next reconnect, and they live only as
 * long as the queue's set-up.  Blocking: a connect thread or nvmfctl, on
 * an event base of its own, never a loop.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "nvmfd.h"
#include "auth.h"
#include "host.h"

struct host_keys {
	struct dhchap_key key, ctrl_key;
	struct host_psk	psk;
};

static void
keys_clear(struct host_keys *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

static int
keys_load(const struct host_params *p, const char *subnqn,
    struct host_keys *k, char *err, size_t errlen)
{
	memset(k, 0, sizeof(*k));
	if ((p->dhchap_secret[0] != '\0' &&
	    auth_key_load(p->dhchap_secret, &k->key, err, errlen) != 0) ||
	    (p->dhchap_ctrl_secret[0] != '\0' &&
	    auth_key_load(p->dhchap_ctrl_secret, &k->ctrl_key, err,
	    errlen) != 0) ||
	    (p->tls_key[0] != '\0' && host_psk_make(&k->psk, p->tls_key,
	    p->tls_kdf[0] ? p->tls_kdf : NULL, p->hostnqn, subnqn, err,
	    errlen) != 0)) {
		keys_clear(k);
		return (-1);
	}
	return (0);
}

int
host_sec_check(bool tls, const char *spec, char *err, size_t errlen)
{
	struct dhchap_key key;
	struct host_tls *t;
	char e[256];

	if (tls) {
		if ((t = host_tls_load(spec, NULL, e, sizeof(e))) == NULL) {
			snprintf(err, errlen, "%s", e);
			return (-1);
		}
		host_tls_free(t);
		return (0);
	}
	memset(&key, 0, sizeof(key));
	if (auth_key_load(spec, &key, e, sizeof(e)) != 0) {
		snprintf(err, errlen, "%s", e);
		return (-1);
	}
	dhchap_key_clear(&key);
	return (0);
}

static int
authenticate(struct host_qpair *hq, const struct host_params *p,
    const char *subnqn, const struct host_keys *k, bool lenient,
    char *err, size_t errlen)
{
	char e[256];

	if (!(hq->connect_dw0 & NVMF_CONNECT_AUTHREQ_ATR)) {
		/* Asked to prove itself, the controller must authenticate:
		 * a discovery controller need not (what it lists is
		 * connected to with the same keys). */
		if (k->ctrl_key.len != 0 && !lenient) {
			snprintf(err, errlen, "the controller asks for no "
			    "authentication, so it cannot prove itself "
			    "(dhchap-ctrl-secret)");
			return (-1);
		}
		return (0);
	}
	if (k->key.len == 0) {
		snprintf(err, errlen, "the controller requires DH-HMAC-CHAP: "
		    "no dhchap-secret given");
		return (-1);
	}
	if (host_authenticate(hq, subnqn, p->hostnqn, &k->key, &k->ctrl_key,
	    e, sizeof(e)) != 0) {
		snprintf(err, errlen, "authentication failed: %s", e);
		return (-1);
	}
	return (0);
}

/*
 * Connect queue qid of subnqn, over TLS with a tls_key, then Connect and
 * authenticate as the controller asks.  NULL with err, and *status the
 * Connect's when the controller refused it (0 otherwise).
 */
struct host_qpair *
host_queue_open(struct event_base *base, const struct host_params *p,
    const char *subnqn, uint16_t qid, uint16_t depth, uint16_t sqsize,
    uint16_t cntlid, uint32_t kato_ms, uint16_t *status, char *err,
    size_t errlen)
{
	struct host_keys k;
	struct host_qpair *hq;
	bool disc = strcmp(subnqn, NVMF_DISCOVERY_NQN) == 0;
	int rc;

	*status = 0;
	if (keys_load(p, subnqn, &k, err, errlen) != 0)
		return (NULL);
	hq = host_connect_tls(base, p->traddr, p->trsvcid, p->tls_key[0] ?
	    &k.psk : NULL, p->hdgst, p->ddgst, depth, err, errlen);
	if (hq == NULL) {
		keys_clear(&k);
		return (NULL);
	}
	rc = host_fabrics_connect(hq, qid, sqsize, subnqn, p->hostnqn,
	    p->hostid, cntlid, kato_ms, status);
	if (rc < 0 && hq->dead) {
		/* The queue failed under it: no answer from the controller. */
		*status = 0;
		snprintf(err, errlen, "Connect: %s", hq->error);
	} else if (rc < 0)
		snprintf(err, errlen, "Connect: status 0x%x", *status);
	else
		rc = authenticate(hq, p, subnqn, &k, disc, err, errlen);
	keys_clear(&k);
	if (rc < 0) {
		host_close(hq);
		return (NULL);
	}
	return (hq);
}

/* Secrets in settings about to be freed (a copy, a job, the config). */
void
host_params_clear(struct host_params *p)
{
	OPENSSL_cleanse(p->dhchap_secret, sizeof(p->dhchap_secret));
	OPENSSL_cleanse(p->dhchap_ctrl_secret, sizeof(p->dhchap_ctrl_secret));
	OPENSSL_cleanse(p->tls_key, sizeof(p->tls_key));
}
