/*
 * TLS 1.3 application records (RFC 8446 section 5), made and opened here
 * once OpenSSL has finished the handshake.
 *
 * Why not SSL_write/SSL_read: OpenSSL copies every byte into its own
 * record buffer before sealing it and out of it after opening, and
 * without kTLS there is a third copy into the buffer in front of the
 * socket.  At 128 KiB per command those copies cost as much as the
 * cipher.  Here a record is sealed from the caller's iovecs straight into
 * the buffer that goes to the socket, and opened from the receive buffer
 * straight into the caller's iovecs: the cipher is the only pass over the
 * data, as with kTLS.  OpenSSL still does all of the handshake; this file
 * only takes over its traffic secrets, the way it would hand them to the
 * kernel.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gcm.h"
#include "nvmfd.h"
#include "tls.h"

/*
 * AES-GCM on the CPU's vector AES instructions when it has them (2.4
 * times OpenSSL 3.0's speed here), unless NVMFD_TLS_GCM=openssl asks for
 * OpenSSL's EVP throughout (to compare the two, or to rule ours out).
 */
static bool
rec_use_fast(void)
{
	const char *e = getenv("NVMFD_TLS_GCM");

	return ((e == NULL || strcmp(e, "openssl") != 0) && gcm_fast_usable());
}

/* HKDF-Expand-Label(secret, label, "", len) for len <= the hash length. */
static int
expand_label(const EVP_MD *md, const uint8_t *secret, size_t slen,
    const char *label, uint8_t *out, size_t len)
{
	uint8_t info[2 + 1 + 6 + 32 + 1 + 1], t[EVP_MAX_MD_SIZE];
	size_t lablen = strlen(label), n = 0;
	unsigned int tlen;

	if (lablen > 32 || len > (size_t)EVP_MD_get_size(md))
		return (-1);
	info[n++] = len >> 8;
	info[n++] = len;
	info[n++] = 6 + lablen;
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, lablen);
	n += 6 + lablen;
	info[n++] = 0;		/* empty context */
	info[n++] = 1;		/* T(1) is all we need */
	if (HMAC(md, secret, slen, info, n, t, &tlen) == NULL)
		return (-1);
	memcpy(out, t, len);
	OPENSSL_cleanse(t, sizeof(t));
	return (0);
}

/* Key and IV of the current traffic secret, into the cipher context. */
static int
rec_keys(struct tls_rec *r)
{
	uint8_t key[32];
	int klen = EVP_CIPHER_get_key_length(r->cipher), ok;

	if (klen <= 0 || klen > (int)sizeof(key) ||
	    expand_label(r->md, r->secret, r->slen, "key", key, klen) != 0 ||
	    expand_label(r->md, r->secret, r->slen, "iv", r->iv,
	    TLS_REC_IV) != 0)
		return (-1);
	if (r->fast != NULL)
		ok = gcm_fast_init(r->fast, key, klen) == 0;
	else
		ok = EVP_CipherInit_ex(r->ctx, r->cipher, NULL, key, NULL,
		    r->enc);
	OPENSSL_cleanse(key, sizeof(key));
	r->seq = 0;
	return (ok == 1 ? 0 : -1);
}

int
tls_rec_init(struct tls_rec *r, uint16_t suite, const uint8_t *secret,
    size_t slen, bool enc)
{
	bool gcm = suite != 0x1303;

	memset(r, 0, sizeof(*r));
	switch (suite) {
	case 0x1301:		/* TLS_AES_128_GCM_SHA256 */
		r->md = EVP_sha256();
		r->cipher = EVP_aes_128_gcm();
		break;
	case 0x1302:		/* TLS_AES_256_GCM_SHA384 */
		r->md = EVP_sha384();
		r->cipher = EVP_aes_256_gcm();
		break;
	case 0x1303:		/* TLS_CHACHA20_POLY1305_SHA256 (NBD) */
		r->md = EVP_sha256();
		r->cipher = EVP_chacha20_poly1305();
		break;
	default:
		return (-1);
	}
	if (r->cipher == NULL || slen != (size_t)EVP_MD_get_size(r->md) ||
	    slen > sizeof(r->secret))
		return (-1);
	if (gcm && rec_use_fast()) {
		r->fast = aligned_alloc(64, sizeof(*r->fast));
		if (r->fast == NULL)
			return (-1);
	} else if ((r->ctx = EVP_CIPHER_CTX_new()) == NULL)
		return (-1);
	memcpy(r->secret, secret, slen);
	r->slen = slen;
	r->enc = enc;
	if (rec_keys(r) != 0) {
		tls_rec_free(r);
		return (-1);
	}
	return (0);
}

void
tls_rec_free(struct tls_rec *r)
{
	EVP_CIPHER_CTX_free(r->ctx);
	if (r->fast != NULL) {
		gcm_fast_clear(r->fast);
		free(r->fast);
	}
	OPENSSL_cleanse(r, sizeof(*r));
}

/* After a KeyUpdate: the next traffic secret (RFC 8446 7.2). */
int
tls_rec_rekey(struct tls_rec *r)
{
	uint8_t next[sizeof(r->secret)];

	if (expand_label(r->md, r->secret, r->slen, "traffic upd", next,
	    r->slen) != 0)
		return (-1);
	memcpy(r->secret, next, r->slen);
	OPENSSL_cleanse(next, sizeof(next));
	return (rec_keys(r));
}

/* The per-record nonce: the IV with the sequence number in its tail. */
static int
rec_start(struct tls_rec *r, const uint8_t hdr[TLS_REC_HDR])
{
	uint8_t nonce[TLS_REC_IV];
	int n;

	if (r->seq == UINT64_MAX)	/* a new key is due long before */
		return (-1);
	memcpy(nonce, r->iv, sizeof(nonce));
	for (int i = 0; i < 8; i++)
		nonce[TLS_REC_IV - 1 - i] ^= (uint8_t)(r->seq >> (8 * i));
	r->seq++;
	if (r->fast != NULL) {
		gcm_fast_start(r->fast, nonce, hdr, TLS_REC_HDR);
		return (0);
	}
	if (EVP_CipherInit_ex(r->ctx, NULL, NULL, NULL, nonce, r->enc) != 1 ||
	    EVP_CipherUpdate(r->ctx, NULL, &n, hdr, TLS_REC_HDR) != 1)
		return (-1);
	return (0);
}

/* Cipher len bytes at in to out; an AEAD gives as many as it takes. */
static int
rec_update(struct tls_rec *r, uint8_t *out, const uint8_t *in, size_t len)
{
	int n;

	if (r->fast != NULL) {
		gcm_fast_update(r->fast, r->enc, out, in, len);
		return (0);
	}
	while (len > 0) {
		int chunk = len > INT32_MAX ? INT32_MAX : (int)len;

		if (EVP_CipherUpdate(r->ctx, out, &n, in, chunk) != 1 ||
		    n != chunk)
			return (-1);
		out += chunk;
		in += chunk;
		len -= chunk;
	}
	return (0);
}

ssize_t
tls_rec_seal(struct tls_rec *r, uint8_t type, const struct iovec *iov,
    int cnt, size_t skip, size_t len, uint8_t *out)
{
	size_t inner = len + 1, left = len;
	uint8_t *p = out + TLS_REC_HDR;
	int n;

	if (len > TLS_REC_MAX)
		return (-1);
	out[0] = TLS_CT_APPDATA;	/* the outer type is always data */
	out[1] = 3;
	out[2] = 3;
	out[3] = (inner + TLS_REC_TAG) >> 8;
	out[4] = (inner + TLS_REC_TAG) & 0xff;
	if (rec_start(r, out) != 0)
		return (-1);
	for (int i = 0; i < cnt && left > 0; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l = MINIMUM(l - skip, left);
		if (rec_update(r, p, (const uint8_t *)iov[i].iov_base + skip,
		    l) != 0)
			return (-1);
		p += l;
		left -= l;
		skip = 0;
	}
	if (left != 0 || rec_update(r, p, &type, 1) != 0)
		return (-1);
	if (r->fast != NULL)
		gcm_fast_tag(r->fast, p + 1);
	else if (EVP_CipherFinal_ex(r->ctx, p + 1, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_AEAD_GET_TAG, TLS_REC_TAG,
	    p + 1) != 1)
		return (-1);
	return (TLS_REC_HDR + inner + TLS_REC_TAG);
}

/* Byte pos of a scatter list that holds at least pos + 1 bytes. */
static uint8_t *
iov_at(const struct iovec *iov, size_t pos)
{
	while (pos >= iov->iov_len)
		pos -= (iov++)->iov_len;
	return ((uint8_t *)iov->iov_base + pos);
}

/*
 * Open the whole record at rec (its header included) into dst, which has
 * room for its inner plaintext (tls_rec_inner() bytes), or in place after
 * its header when dst is NULL.  The content length, with *type set; or -1
 * when it is not genuine (RFC 8446 5.2 and 5.4: bad tag, no content type,
 * too long).
 */
ssize_t
tls_rec_open(struct tls_rec *r, uint8_t *rec, const struct iovec *dst,
    int ndst, uint8_t *type)
{
	size_t inner = tls_rec_inner(rec), left = inner;
	uint8_t *in = rec + TLS_REC_HDR;
	struct iovec self = { in, inner };
	int n;

	if (rec[0] != TLS_CT_APPDATA || inner < 1 ||
	    tls_rec_wire(rec) > TLS_REC_WIRE || rec_start(r, rec) != 0)
		return (-1);
	if (dst == NULL) {
		dst = &self;
		ndst = 1;
	}
	for (int i = 0; i < ndst && left > 0; i++) {
		size_t l = MINIMUM(dst[i].iov_len, left);

		if (rec_update(r, dst[i].iov_base, in, l) != 0)
			return (-1);
		in += l;
		left -= l;
	}
	if (left != 0)
		return (-1);
	if (r->fast != NULL) {
		uint8_t tag[TLS_REC_TAG];

		gcm_fast_tag(r->fast, tag);
		if (CRYPTO_memcmp(tag, in, TLS_REC_TAG) != 0)
			return (-1);
	} else if (EVP_CIPHER_CTX_ctrl(r->ctx, EVP_CTRL_AEAD_SET_TAG,
	    TLS_REC_TAG, in) != 1 || EVP_CipherFinal_ex(r->ctx, in, &n) != 1)
		return (-1);
	/* The content type is the last byte that is not padding. */
	while (inner > 0 && *iov_at(dst, inner - 1) == 0)
		inner--;
	if (inner == 0 || inner - 1 > TLS_REC_MAX)
		return (-1);
	*type = *iov_at(dst, inner - 1);
	return (inner - 1);
}
