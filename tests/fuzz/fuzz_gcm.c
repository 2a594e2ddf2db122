/*
 * libFuzzer target: our AES-GCM (gcm-vaes.c) against OpenSSL's EVP.
 *
 * Input: byte 0 picks the key size (bit 0) and whether decryption runs in
 * place (bit 1); then a 32-byte key, a 12-byte nonce, a length byte for
 * the additional data (taken from the next bytes), a count of piece
 * lengths (2 bytes each, little-endian), and the message.  The message is
 * sealed by both engines, ours fed in those pieces: ciphertext and tag
 * must match.  It is then opened by ours in other pieces and must give the
 * message back with the same tag.  Finally the whole input is handed to
 * tls_rec_open() as a record under a fixed traffic secret (with the
 * engine TLS uses on this CPU).  On a CPU without VAES and VPCLMULQDQ
 * only the record part runs.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "gcm.h"
#include "nvmfd.h"
#include "tls.h"
#include "../gcm-evp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define MSG_MAX	(64 * 1024)
#define PIECES	16

static struct gcm_fast *g;
static uint8_t ct[MSG_MAX + 16], ref[MSG_MAX + 16], back[MSG_MAX];

/* Run len bytes through the engine in the pieces given, then the rest. */
static void
pieces(bool enc, uint8_t *out, const uint8_t *in, size_t len,
    const uint16_t *cut, size_t ncut)
{
	size_t off = 0;

	for (size_t i = 0; i < ncut && off < len; i++) {
		size_t p = cut[i] % (len - off + 1);

		gcm_fast_update(g, enc, out + off, in + off, p);
		off += p;
	}
	gcm_fast_update(g, enc, out + off, in + off, len - off);
}

static void
differential(const uint8_t *d, size_t n)
{
	uint8_t mode, key[32], iv[12], tag[16], rtag[16];
	const uint8_t *aad, *msg;
	uint16_t cut[PIECES];
	size_t klen, alen, ncut, len;

	if (n < 1 + 32 + 12 + 2)
		return;
	mode = d[0];
	klen = mode & 1 ? 32 : 16;
	memcpy(key, d + 1, 32);
	memcpy(iv, d + 33, 12);
	d += 45;
	n -= 45;
	alen = MINIMUM((size_t)d[0], n - 1);
	aad = d + 1;
	d += 1 + alen;
	n -= 1 + alen;
	if (n == 0)
		return;
	ncut = MINIMUM((size_t)(d[0] % (PIECES + 1)), (n - 1) / 2);
	for (size_t i = 0; i < ncut; i++)
		cut[i] = (uint16_t)(d[1 + 2 * i] | d[2 + 2 * i] << 8);
	msg = d + 1 + 2 * ncut;
	len = MINIMUM(n - 1 - 2 * ncut, (size_t)MSG_MAX);

	if (gcm_evp_seal(key, klen, iv, aad, alen, msg, len, ref, rtag) != 0)
		abort();
	if (gcm_fast_init(g, key, klen) != 0)
		abort();
	gcm_fast_start(g, iv, aad, alen);
	pieces(true, ct, msg, len, cut, ncut);
	gcm_fast_tag(g, tag);
	if (memcmp(ct, ref, len) != 0 || memcmp(tag, rtag, 16) != 0)
		abort();

	/* Open it again, in the pieces in reverse order. */
	for (size_t i = 0; i < ncut / 2; i++) {
		uint16_t t = cut[i];

		cut[i] = cut[ncut - 1 - i];
		cut[ncut - 1 - i] = t;
	}
	gcm_fast_start(g, iv, aad, alen);
	if (mode & 2) {
		pieces(false, ct, ct, len, cut, ncut);
		gcm_fast_tag(g, tag);
		if (memcmp(ct, msg, len) != 0)
			abort();
	} else {
		pieces(false, back, ct, len, cut, ncut);
		gcm_fast_tag(g, tag);
		if (memcmp(back, msg, len) != 0)
			abort();
	}
	if (memcmp(tag, rtag, 16) != 0)
		abort();
}

/* The input as a record, opened in place. */
static void
record(const uint8_t *d, size_t n)
{
	static const uint8_t secret[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static uint8_t rec[TLS_REC_WIRE];
	struct tls_rec r;
	uint8_t type;

	if (n < TLS_REC_HDR || n > sizeof(rec))
		return;
	if (tls_rec_init(&r, 0x1301, secret, sizeof(secret), false) != 0)
		abort();
	memcpy(rec, d, n);
	/* tls_rec_open() is only given whole records (tls-conn.c waits for
	 * the rest): a header that claims more than the input is skipped. */
	if (tls_rec_wire(rec) <= n)
		(void)tls_rec_open(&r, rec, NULL, 0, &type);
	tls_rec_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (g == NULL && (g = aligned_alloc(64, sizeof(*g))) == NULL)
		abort();
	if (gcm_fast_usable())
		differential(d, n);
	record(d, n);
	return (0);
}
