/*
 * DH-HMAC-CHAP (NVMe Base 2.x section 8.3.4): the crypto core in dhchap.c,
 * usable by either role, and the controller side of the protocol in auth.c.
 */
#ifndef NVMFD_AUTH_H
#define NVMFD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hash identifiers (HASHID) and DH group identifiers (DHGID). */
#define DHCHAP_SHA256		0x01
#define DHCHAP_SHA384		0x02
#define DHCHAP_SHA512		0x03
#define DHCHAP_NHASHES		3
#define DHCHAP_NULL		0x00
#define DHCHAP_FFDHE2048	0x01
#define DHCHAP_FFDHE8192	0x05
#define DHCHAP_NGROUPS		6
#define DHCHAP_HL_MAX		64	/* SHA-512 */
#define DHCHAP_DHV_MAX		1024	/* ffdhe8192 */
#define DHCHAP_KEY_MAX		64

/* Messages (AUTH_TYPE / AUTH_ID) and Failure reason codes. */
#define AUTH_COMMON		0x00
#define AUTH_DHCHAP		0x01
#define AUTH_NEGOTIATE		0x00
#define AUTH_CHALLENGE		0x01
#define AUTH_REPLY		0x02
#define AUTH_SUCCESS1		0x03
#define AUTH_SUCCESS2		0x04
#define AUTH_FAILURE2		0xf0
#define AUTH_FAILURE1		0xf1
#define AUTH_PROTO_DHCHAP	0x01	/* AUTHID in a Negotiate descriptor */
#define AUTH_SECP		0xe9
#define AUTH_SPSP		0x01

#define AUTH_FAIL_FAILED	0x01
#define AUTH_FAIL_PROTOCOL	0x02
#define AUTH_FAIL_CONCAT	0x03
#define AUTH_FAIL_HASH		0x04
#define AUTH_FAIL_DHGROUP	0x05
#define AUTH_FAIL_PAYLOAD	0x06
#define AUTH_FAIL_MESSAGE	0x07

#define AUTH_NEGOTIATE_LEN	8	/* before the descriptors */
#define AUTH_DESC_LEN		64
#define AUTH_HDR_LEN		16	/* Challenge, Reply, Success1/2 */
#define AUTH_FAILURE_LEN	8
#define AUTH_MSG_MAX		(AUTH_HDR_LEN + 2 * DHCHAP_HL_MAX + DHCHAP_DHV_MAX)

/* A secret as configured, before the transformation by NQN. */
struct dhchap_key {
	uint8_t		data[DHCHAP_KEY_MAX];
	size_t		len;		/* 32, 48 or 64; 0: no key */
	uint8_t		xform;		/* transformation hash, 0 = none */
};

/* dhchap.c: "DHHC-1:XX:<base64>:" with CRC-32, 0 or -1 and err. */
int	dhchap_key_parse(const char *, struct dhchap_key *, char *err,
	    size_t errlen);
int	dhchap_key_format(const struct dhchap_key *, char *buf, size_t len);
void	dhchap_key_clear(struct dhchap_key *);
/* The two key interchange formats (DHHC-1, NVMeTLSkey-1) share these:
 * CRC-32 (IEEE) and strict, padded base64 (returns the bytes, or -1). */
uint32_t dhchap_crc32(const uint8_t *, size_t);
int	key_b64_decode(const char *, size_t, uint8_t *out, size_t max);

size_t	dhchap_hash_len(uint8_t hashid);	/* 0: unknown */
const char *dhchap_hash_name(uint8_t hashid);
int	dhchap_hash_id(const char *name);	/* -1: unknown */
size_t	dhchap_group_size(uint8_t dhgid);	/* bytes; 0 for NULL */
const char *dhchap_group_name(uint8_t dhgid);
int	dhchap_group_id(const char *name);	/* -1: unknown */

/* K = HMAC-H_xform(secret, NQN || "NVMe-over-Fabrics"), or the secret. */
int	dhchap_transform(const struct dhchap_key *, const char *nqn,
	    uint8_t *out, size_t *outlen);
/* Ca = HMAC-H(H(Z), C); hl bytes of C and of out. */
int	dhchap_augment(uint8_t hashid, const uint8_t *z, size_t zlen,
	    const uint8_t *c, uint8_t *out);
/* HMAC-H(K, C || le32 seq || le16 tid || sc_c || role || nqn1 || 0 || nqn2) */
int	dhchap_response(uint8_t hashid, const uint8_t *k, size_t klen,
	    const uint8_t *c, uint32_t seq, uint16_t tid, uint8_t sc_c,
	    const char *role, const char *nqn1, const char *nqn2, uint8_t *out);
bool	dhchap_equal(const void *, const void *, size_t);	/* constant time */

/* Finite-field DH over the RFC 7919 groups. */
struct dhchap_dh;
struct dhchap_dh *dhchap_dh_new(uint8_t dhgid);		/* a fresh key pair */
int	dhchap_dh_public(struct dhchap_dh *, uint8_t *out, size_t len);
int	dhchap_dh_derive(struct dhchap_dh *, const uint8_t *peer, size_t plen,
	    uint8_t *z, size_t zlen);
void	dhchap_dh_free(struct dhchap_dh *);

/* ------------------------------------------------ controller protocol */

/* Hashes and DH groups a port or subsystem offers, in preference order;
 * a count of 0 means the default (all). */
struct dhchap_offer {
	uint8_t		hashes[DHCHAP_NHASHES];
	uint8_t		nhashes;
	uint8_t		groups[DHCHAP_NGROUPS];
	uint8_t		ngroups;
};

/* What a controller may use with one host, copied out of the config. */
struct dhchap_cred {
	struct dhchap_key host;		/* len 0: no authentication */
	struct dhchap_key ctrl;		/* len 0: not bidirectional */
	struct dhchap_offer offer;	/* port and subsystem intersected */
};

struct host;
struct nvmf_cmd;
struct qpair;
struct controller;
struct subsystem;
struct port;

extern unsigned auth_timeout_ms;	/* a transaction's limit */
void	auth_dispatch(struct nvmf_cmd *);
void	auth_qpair_free(struct qpair *);
/* Load the host's keys and the offered lists into ctrl (main loop). */
void	auth_ctrl_refresh(struct controller *);
void	auth_subsys_refresh(struct subsystem *);
void	auth_cred_build(const struct dhchap_offer *, struct port *,
	    struct host *, struct dhchap_cred *);
void	auth_host_clear(struct host *);
/* A key argument: the DHHC-1 string itself, or @PATH of a private file. */
int	auth_key_load(const char *arg, struct dhchap_key *, char *err,
	    size_t errlen);

#endif
