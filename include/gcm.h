/*
 * AES-GCM for TLS records with the x86-64 vector AES and carry-less
 * multiply instructions (VAES, VPCLMULQDQ, AVX-512), four blocks per
 * instruction.  OpenSSL 3.0 has no such code path and runs GCM at less
 * than half the speed on CPUs that have them; tls-record.c uses this
 * engine when gcm_fast_usable() and OpenSSL's EVP otherwise.  Streaming:
 * one gcm_fast_start(), any number of gcm_fast_update() pieces of any
 * length, one gcm_fast_tag().
 */
#ifndef NVMFD_GCM_H
#define NVMFD_GCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GCM_FAST_POWERS	16	/* H^16 .. H^1: one reduction per 256 bytes */

struct gcm_fast {
	/* Round keys, each broadcast to the four lanes of a vector. */
	_Alignas(64) uint8_t rk4[15][64];
	/* H^16 .. H^1, byte-reflected, then zeroes for short tails. */
	_Alignas(64) uint8_t hpow[2 * GCM_FAST_POWERS][16];
	uint8_t		acc[16];	/* GHASH so far, byte-reflected */
	uint8_t		ek0[16];	/* E(K, J0): masks the tag */
	uint8_t		nonce[16];	/* J0 with a zero counter */
	uint8_t		ks[16];		/* keystream of a partial block */
	uint8_t		pblk[16];	/* its ciphertext so far */
	unsigned	pend;		/* bytes in that partial block */
	uint32_t	ctr;		/* counter of the next block */
	uint64_t	aadlen, len;
	int		rounds;		/* 10 or 14 */
};

/* Whether this CPU (and this build) has the instructions. */
bool	gcm_fast_usable(void);
/* AES-128 or AES-256 key (klen 16 or 32).  0 or -1. */
int	gcm_fast_init(struct gcm_fast *, const uint8_t *key, size_t klen);
/* A new message with a 12-byte nonce and its additional data. */
void	gcm_fast_start(struct gcm_fast *, const uint8_t nonce[12],
	    const uint8_t *aad, size_t aadlen);
/* Encrypt (enc) or decrypt len bytes from in to out; in == out is fine. */
void	gcm_fast_update(struct gcm_fast *, bool enc, uint8_t *out,
	    const uint8_t *in, size_t len);
/* The 16-byte tag of the message. */
void	gcm_fast_tag(struct gcm_fast *, uint8_t tag[16]);
/* Wipe the keys. */
void	gcm_fast_clear(struct gcm_fast *);

#endif
