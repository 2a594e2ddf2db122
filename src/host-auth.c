/*
 * DH-HMAC-CHAP, host role: authenticate one queue after a Connect that
 * answered with ATR (NVMe Base 2.x section 8.3.4), with the crypto core of
 * dhchap.c.  Synchronous on the queue's event base, like the Connect; for
 * nvmfd perf and any other user of host-tcp.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "nvmfd.h"

#define RECV_LEN	4096	/* AL, as the Linux host asks */
#define AUTH_CMD_MS	30000	/* ffdhe8192 on a slow target */

static int
auth_cmd(struct host_qpair *hq, uint8_t fctype, void *buf, uint32_t len)
{
	struct host_req r;

	memset(&r, 0, sizeof(r));
	r.sqe.opc = NVME_FABRICS_COMMAND;
	((uint8_t *)&r.sqe)[4] = fctype;
	r.sqe.cdw10 = (uint32_t)AUTH_SECP << 24 | AUTH_SPSP << 16 |
	    AUTH_SPSP << 8;
	r.sqe.cdw11 = len;
	r.iov[0].iov_base = buf;
	r.iov[0].iov_len = len;
	r.iovcnt = 1;
	r.data_len = len;
	r.dir = fctype == NVMF_FCTYPE_AUTH_SEND ? DIR_H2C : DIR_C2H;
	if (host_run(hq, &r, AUTH_CMD_MS) != 0)
		return (-1);
	return (r.cqe.status >> 1 ? -1 : 0);
}

/* Send m; on a Failure1 in the next Receive, say why. */
static int
send_msg(struct host_qpair *hq, uint8_t *m, size_t len, char *err,
    size_t errlen)
{
	if (auth_cmd(hq, NVMF_FCTYPE_AUTH_SEND, m, len) != 0) {
		snprintf(err, errlen, "Authentication Send failed%s%s",
		    hq->error[0] ? ": " : "", hq->error);
		return (-1);
	}
	return (0);
}

static int
recv_msg(struct host_qpair *hq, uint8_t *m, uint16_t tid, uint8_t want,
    char *err, size_t errlen)
{
	memset(m, 0, RECV_LEN);
	if (auth_cmd(hq, NVMF_FCTYPE_AUTH_RECV, m, RECV_LEN) != 0) {
		snprintf(err, errlen, "Authentication Receive failed%s%s",
		    hq->error[0] ? ": " : "", hq->error);
		return (-1);
	}
	if (m[0] == AUTH_COMMON && m[1] == AUTH_FAILURE1) {
		snprintf(err, errlen, "the controller refused: Failure1 reason "
		    "0x%02x%s", m[7], m[7] == AUTH_FAIL_FAILED ?
		    " (authentication failed: wrong key?)" : "");
		return (-1);
	}
	if (m[0] != AUTH_DHCHAP || m[1] != want || get_le16(m + 4) != tid) {
		snprintf(err, errlen, "unexpected message %02x/%02x (T_ID %u)",
		    m[0], m[1], get_le16(m + 4));
		return (-1);
	}
	return (0);
}

/* Tell the controller we reject it (its response was wrong). */
static void
send_failure2(struct host_qpair *hq, uint16_t tid, uint8_t reason)
{
	uint8_t m[AUTH_FAILURE_LEN] = { AUTH_COMMON, AUTH_FAILURE2 };

	put_le16(m + 4, tid);
	m[6] = 0x01;
	m[7] = reason;
	(void)auth_cmd(hq, NVMF_FCTYPE_AUTH_SEND, m, sizeof(m));
}

int
host_authenticate(struct host_qpair *hq, const char *subnqn,
    const char *hostnqn, const struct dhchap_key *key,
    const struct dhchap_key *ctrl_key, char *err, size_t errlen)
{
	uint8_t *m, z[DHCHAP_DHV_MAX], ca[DHCHAP_HL_MAX], k[DHCHAP_HL_MAX];
	uint8_t c1[DHCHAP_HL_MAX], c2[DHCHAP_HL_MAX], r2[DHCHAP_HL_MAX];
	struct dhchap_dh *dh = NULL;
	uint8_t hashid, dhgid, hl;
	uint32_t s1, s2 = 0;
	uint16_t tid;
	size_t gs, klen, len;
	int rc = -1;

	if ((m = calloc(1, RECV_LEN)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	RAND_bytes((uint8_t *)&tid, sizeof(tid));

	/* Negotiate: every hash and group, the controller picks. */
	m[0] = AUTH_COMMON;
	m[1] = AUTH_NEGOTIATE;
	put_le16(m + 4, tid);
	m[7] = 1;
	m[8] = AUTH_PROTO_DHCHAP;
	m[10] = DHCHAP_NHASHES;
	m[11] = DHCHAP_NGROUPS;
	for (int i = 0; i < DHCHAP_NHASHES; i++)
		m[12 + i] = DHCHAP_SHA256 + i;
	for (int i = 0; i < DHCHAP_NGROUPS; i++)
		m[42 + i] = i;
	if (send_msg(hq, m, AUTH_NEGOTIATE_LEN + AUTH_DESC_LEN, err,
	    errlen) != 0 ||
	    recv_msg(hq, m, tid, AUTH_CHALLENGE, err, errlen) != 0)
		goto out;

	/* Challenge: every length checked before use. */
	hashid = m[8];
	dhgid = m[9];
	hl = m[6];
	gs = get_le16(m + 10);
	s1 = get_le32(m + 12);
	if (dhchap_hash_len(hashid) == 0 || hl != dhchap_hash_len(hashid) ||
	    dhgid >= DHCHAP_NGROUPS || gs != dhchap_group_size(dhgid) ||
	    s1 == 0 || AUTH_HDR_LEN + hl + gs > RECV_LEN) {
		snprintf(err, errlen, "malformed Challenge (hash %u, HL %u, "
		    "group %u, DHVLEN %zu)", hashid, hl, dhgid, gs);
		send_failure2(hq, tid, AUTH_FAIL_PAYLOAD);
		goto out;
	}
	memcpy(c1, m + AUTH_HDR_LEN, hl);
	if (gs != 0 && ((dh = dhchap_dh_new(dhgid)) == NULL ||
	    dhchap_dh_derive(dh, m + AUTH_HDR_LEN + hl, gs, z, gs) != 0)) {
		snprintf(err, errlen, "DH with the controller's %s value failed",
		    dhchap_group_name(dhgid));
		send_failure2(hq, tid, AUTH_FAIL_PAYLOAD);
		goto out;
	}

	/* Reply: R1, then C2 and S2 when we authenticate the controller. */
	memset(m, 0, RECV_LEN);
	m[0] = AUTH_DHCHAP;
	m[1] = AUTH_REPLY;
	put_le16(m + 4, tid);
	m[6] = hl;
	put_le16(m + 10, gs);
	if (gs == 0)
		memcpy(ca, c1, hl);
	if ((gs != 0 && dhchap_augment(hashid, z, gs, c1, ca) != 0) ||
	    dhchap_transform(key, hostnqn, k, &klen) != 0 ||
	    dhchap_response(hashid, k, klen, ca, s1, tid, 0, "HostHost",
	    hostnqn, subnqn, m + AUTH_HDR_LEN) != 0) {
		snprintf(err, errlen, "computing the response failed");
		goto out;
	}
	if (ctrl_key != NULL && ctrl_key->len != 0) {
		do {
			RAND_bytes((uint8_t *)&s2, sizeof(s2));
		} while (s2 == 0);
		RAND_bytes(c2, hl);
		m[8] = 1;	/* CVALID */
		put_le32(m + 12, s2);
		memcpy(m + AUTH_HDR_LEN + hl, c2, hl);
		if (gs == 0)
			memcpy(ca, c2, hl);
		if ((gs != 0 && dhchap_augment(hashid, z, gs, c2, ca) != 0) ||
		    dhchap_transform(ctrl_key, subnqn, k, &klen) != 0 ||
		    dhchap_response(hashid, k, klen, ca, s2, tid, 0,
		    "Controller", subnqn, hostnqn, r2) != 0) {
			snprintf(err, errlen, "computing the response failed");
			goto out;
		}
	}
	if (gs != 0 && dhchap_dh_public(dh, m + AUTH_HDR_LEN + 2 * hl,
	    gs) != 0) {
		snprintf(err, errlen, "DH public value failed");
		goto out;
	}
	len = AUTH_HDR_LEN + 2 * (size_t)hl + gs;
	if (send_msg(hq, m, len, err, errlen) != 0 ||
	    recv_msg(hq, m, tid, AUTH_SUCCESS1, err, errlen) != 0)
		goto out;
	if (m[6] != hl) {
		snprintf(err, errlen, "Success1 with HL %u", m[6]);
		goto out;
	}
	if (s2 != 0) {
		if (m[8] == 0 || !dhchap_equal(m + AUTH_HDR_LEN, r2, hl)) {
			snprintf(err, errlen, "the controller's response does "
			    "not match: it does not know the controller key");
			send_failure2(hq, tid, AUTH_FAIL_FAILED);
			goto out;
		}
		memset(m, 0, AUTH_HDR_LEN);
		m[0] = AUTH_DHCHAP;
		m[1] = AUTH_SUCCESS2;
		put_le16(m + 4, tid);
		if (send_msg(hq, m, AUTH_HDR_LEN, err, errlen) != 0)
			goto out;
	}
	rc = 0;
out:
	dhchap_dh_free(dh);
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(ca, sizeof(ca));
	free(m);
	return (rc);
}
