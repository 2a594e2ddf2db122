/*
 * NVMe/TCP TLS 1.3: pre-shared keys (tls-psk.c, no I/O, usable by either
 * role), the application records (tls-record.c) and the TLS side of the
 * byte stream (tls-conn.c), for NVMe/TCP and NBD.
 */
#ifndef NVMFD_TLS_H
#define NVMFD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <openssl/evp.h>

#define TLS_PSK_MAX		48	/* SHA-384 */
#define TLS_IDENTITY_MAX	(16 + 2 * 223 + 64)	/* v1, two NQNs, digest */

/* A configured PSK, from "NVMeTLSkey-1:XX:<base64>:". */
struct tls_key {
	uint8_t		key[TLS_PSK_MAX];
	size_t		len;		/* 32 or 48 */
	int		hmac;		/* XX: 0 none, 1 SHA-256, 2 SHA-384 */
};

/*
 * How the HKDF info of the retained and TLS PSK derivations is laid out:
 * RFC 8446 HKDF-Expand-Label (libnvme's default, the NVMe/TCP spec), or
 * libnvme's "compat" layout (le16 length, no length bytes before label and
 * context, output as long as the key), which nvme-cli 2.13 uses when it
 * inserts a key into the kernel's keyring.
 */
enum tls_kdf { TLS_KDF_COMPAT, TLS_KDF_RFC8446 };

/* A parsed PSK identity, "NVMe<v><R|G><hh> <hostnqn> <subnqn>[ <digest>]". */
struct tls_identity {
	int		version;	/* 0 or 1 */
	char		type;		/* 'R' retained, 'G' generated */
	int		hash;		/* 1 SHA-256, 2 SHA-384 */
	char		hostnqn[224];
	char		subnqn[224];
	char		digest[65];	/* version 1 only */
};

/* A host's PSK as configured (tls-key.c). */
struct host_tls {
	struct tls_key	key;
	enum tls_kdf	kdf;
	char		*spec;		/* as given: the string, or "@FILE" */
};

/* Parse an interchange string; 0, or -1 with *why set (never key bytes). */
int	tls_key_parse(const char *s, struct tls_key *, const char **why);
/* The SHA-2 the key's TLS PSK uses: 1 SHA-256 or 2 SHA-384. */
int	tls_key_hash(const struct tls_key *);
/* Retained PSK (as long as the key) for hostnqn. */
int	tls_retained_psk(const struct tls_key *, const char *hostnqn,
	    enum tls_kdf, uint8_t *out);
/* PSK digest of a version 1 identity (base64, NUL-terminated). */
int	tls_psk_digest(int hash, const uint8_t *retained, size_t len,
	    const char *hostnqn, const char *subnqn, char *out, size_t outsz);
/* Build the identity string for (version, hash, host, subsystem). */
int	tls_identity_build(int version, int hash, const uint8_t *retained,
	    size_t len, const char *hostnqn, const char *subnqn, char *out,
	    size_t outsz);
/* Parse a received identity (any bytes, any length); 0 or -1. */
int	tls_identity_parse(const uint8_t *id, size_t len, struct tls_identity *);
/* TLS PSK for an identity; *outlen is set.  0 or -1. */
int	tls_psk_derive(const uint8_t *retained, size_t len,
	    const struct tls_identity *, const char *identity, enum tls_kdf,
	    uint8_t *out, size_t *outlen);
/* Everything from a configured key to the TLS PSK for identity id. */
int	tls_psk_for_identity(const struct tls_key *, const struct tls_identity *,
	    const char *identity, enum tls_kdf, uint8_t *out, size_t *outlen);

/*
 * TLS 1.3 records (tls-record.c): one direction's AEAD, its traffic secret
 * and sequence number.  A record on the wire is a 5-byte header, the
 * encrypted content with its inner content type, and a 16-byte tag.
 */
#define TLS_CT_ALERT		21
#define TLS_CT_HANDSHAKE	22
#define TLS_CT_APPDATA		23
#define TLS_REC_HDR		5
#define TLS_REC_MAX		16384	/* plaintext per record, at most */
#define TLS_REC_TAG		16
#define TLS_REC_IV		12
#define TLS_REC_WIRE		(TLS_REC_HDR + TLS_REC_MAX + 256)
/* Wire length of a sealed record of len plaintext bytes. */
#define TLS_REC_SEALED(len)	(TLS_REC_HDR + (len) + 1 + TLS_REC_TAG)

struct gcm_fast;

struct tls_rec {
	EVP_CIPHER_CTX	*ctx;		/* OpenSSL's cipher, or */
	struct gcm_fast	*fast;		/* our AES-GCM (gcm.h) */
	const EVP_CIPHER *cipher;
	const EVP_MD	*md;
	uint8_t		secret[48];	/* the current traffic secret */
	size_t		slen;
	uint8_t		iv[TLS_REC_IV];
	uint64_t	seq;
	bool		enc;
};

/* A record's length on the wire, and its inner plaintext's, from its
 * header (5 bytes at h). */
static inline size_t
tls_rec_wire(const uint8_t *h)
{
	return (TLS_REC_HDR + ((size_t)h[3] << 8 | h[4]));
}

static inline size_t
tls_rec_inner(const uint8_t *h)
{
	size_t l = (size_t)h[3] << 8 | h[4];

	return (l > TLS_REC_TAG ? l - TLS_REC_TAG : 0);
}

/* suite: 0x1301, 0x1302 or 0x1303; secret from the handshake.  0 or -1. */
int	tls_rec_init(struct tls_rec *, uint16_t suite, const uint8_t *secret,
	    size_t slen, bool enc);
void	tls_rec_free(struct tls_rec *);
/* KeyUpdate: move to the next traffic secret.  0 or -1. */
int	tls_rec_rekey(struct tls_rec *);
/* Seal len bytes of iov (from byte skip) as one record of inner type
 * into out (TLS_REC_SEALED(len) bytes); its wire length, or -1. */
ssize_t	tls_rec_seal(struct tls_rec *, uint8_t type, const struct iovec *,
	    int cnt, size_t skip, size_t len, uint8_t *out);
/* Open the whole record at rec into dst (room for tls_rec_inner(rec)),
 * or in place (dst NULL); the content length with *type, or -1. */
ssize_t	tls_rec_open(struct tls_rec *, uint8_t *rec, const struct iovec *dst,
	    int ndst, uint8_t *type);

#endif
