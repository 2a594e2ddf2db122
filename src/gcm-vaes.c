/*
 * AES-GCM (NIST SP 800-38D) with VAES and VPCLMULQDQ on 512-bit vectors.
 *
 * Counter mode runs 16 blocks at a time, four to a vector, the AES rounds
 * interleaved over four vectors.  GHASH works in the byte-reflected form
 * of the carry-less multiply papers: each 16-block chunk is multiplied by
 * H^16 .. H^1 without reduction, the products summed, and the sum reduced
 * once, which is valid because the shift and the reduction are linear
 * over GF(2).  Tails use AVX-512 byte masks, so no block is read or
 * written past the caller's buffers.  Every instruction here runs in
 * constant time with respect to key and data.
 *
 * Checked against OpenSSL's EVP AES-GCM over random keys, nonces,
 * lengths and piece boundaries in tests/unit/test_gcm.c, and over fuzzed
 * ones in tests/fuzz/fuzz_gcm.c.
 */
#include "config.h"

#include <string.h>

#include <openssl/crypto.h>

#include "gcm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <cpuid.h>
#include <pthread.h>
#include <immintrin.h>

#define GCM_TARGET __attribute__((target( \
    "aes,pclmul,avx2,avx512f,avx512bw,avx512vl,vaes,vpclmulqdq")))

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static bool cpu_ok;	/* set once by cpu_check() */

/* CPUID and XCR0: the instructions, and the OS saving the vector state. */
static void
cpu_check(void)
{
	unsigned a, b, c, d, lo, hi;

	if (!__get_cpuid(1, &a, &b, &c, &d) ||
	    (c & (bit_AES | bit_PCLMUL | bit_OSXSAVE)) !=
	    (bit_AES | bit_PCLMUL | bit_OSXSAVE))
		return;
	/* XMM, YMM, the opmasks and both halves of the ZMM registers. */
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	if ((lo & 0xe6) != 0xe6)
		return;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return;
	cpu_ok = (b & (bit_AVX512F | bit_AVX512BW | bit_AVX512VL)) ==
	    (bit_AVX512F | bit_AVX512BW | bit_AVX512VL) &&
	    (c & (bit_VAES | bit_VPCLMULQDQ)) == (bit_VAES | bit_VPCLMULQDQ);
}

/* Asked once per direction of each TLS connection; CPUID traps to the
 * hypervisor in a VM, so the answer is worked out once. */
bool
gcm_fast_usable(void)
{
	pthread_once(&cpu_once, cpu_check);
	return (cpu_ok);
}

/* Byte order reversal within each 128-bit lane. */
GCM_TARGET static inline __m128i
bswap128(__m128i x)
{
	return (_mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8,
	    9, 10, 11, 12, 13, 14, 15)));
}

GCM_TARGET static inline __m512i
bswap512(__m512i x)
{
	return (_mm512_shuffle_epi8(x, _mm512_broadcast_i32x4(_mm_set_epi8(0,
	    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))));
}

/*
 * The 256-bit carry-less product hi:lo of two reflected elements, shifted
 * left by one bit and reduced modulo x^128 + x^7 + x^2 + x + 1.
 */
GCM_TARGET static inline __m128i
ghash_reduce(__m128i lo, __m128i hi)
{
	__m128i t7, t8, t9, t2, t4, t5;

	t7 = _mm_srli_epi32(lo, 31);
	t8 = _mm_srli_epi32(hi, 31);
	lo = _mm_slli_epi32(lo, 1);
	hi = _mm_slli_epi32(hi, 1);
	t9 = _mm_srli_si128(t7, 12);
	t8 = _mm_slli_si128(t8, 4);
	t7 = _mm_slli_si128(t7, 4);
	lo = _mm_or_si128(lo, t7);
	hi = _mm_or_si128(_mm_or_si128(hi, t8), t9);

	t7 = _mm_slli_epi32(lo, 31);
	t8 = _mm_slli_epi32(lo, 30);
	t9 = _mm_slli_epi32(lo, 25);
	t7 = _mm_xor_si128(_mm_xor_si128(t7, t8), t9);
	t8 = _mm_srli_si128(t7, 4);
	t7 = _mm_slli_si128(t7, 12);
	lo = _mm_xor_si128(lo, t7);
	t2 = _mm_srli_epi32(lo, 1);
	t4 = _mm_srli_epi32(lo, 2);
	t5 = _mm_srli_epi32(lo, 7);
	t2 = _mm_xor_si128(_mm_xor_si128(t2, t4), _mm_xor_si128(t5, t8));
	lo = _mm_xor_si128(lo, t2);
	return (_mm_xor_si128(hi, lo));
}

/* One multiplication in GF(2^128), reflected form. */
GCM_TARGET static inline __m128i
gfmul(__m128i a, __m128i b)
{
	__m128i lo = _mm_clmulepi64_si128(a, b, 0x00);
	__m128i hi = _mm_clmulepi64_si128(a, b, 0x11);
	__m128i mid = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x01),
	    _mm_clmulepi64_si128(a, b, 0x10));

	lo = _mm_xor_si128(lo, _mm_slli_si128(mid, 8));
	hi = _mm_xor_si128(hi, _mm_srli_si128(mid, 8));
	return (ghash_reduce(lo, hi));
}

/* The XOR of a vector's four 128-bit lanes. */
GCM_TARGET static inline __m128i
fold4(__m512i v)
{
	__m256i a = _mm256_xor_si256(_mm512_castsi512_si256(v),
	    _mm512_extracti64x4_epi64(v, 1));

	return (_mm_xor_si128(_mm256_castsi256_si128(a),
	    _mm256_extracti128_si256(a, 1)));
}

/*
 * Fold n (1..16) blocks, reflected, in d[0..3] (zero past n) into the
 * accumulator: acc = (acc + b0) H^n + b1 H^(n-1) + ... + b(n-1) H.
 */
GCM_TARGET static inline __m128i
ghash_blocks(const struct gcm_fast *g, __m128i acc, const __m512i d[4],
    unsigned n)
{
	const uint8_t *hp = g->hpow[GCM_FAST_POWERS - n];
	__m512i lo = _mm512_setzero_si512(), hi = lo, mid = lo;
	unsigned nv = (n + 3) / 4;
	__m128i l, h, m;

	for (unsigned v = 0; v < nv; v++) {
		__m512i x = d[v], p = _mm512_loadu_si512(hp + 64 * v);

		if (v == 0)
			x = _mm512_xor_si512(x, _mm512_zextsi128_si512(acc));
		lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128(x, p, 0x00));
		hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128(x, p, 0x11));
		mid = _mm512_ternarylogic_epi64(mid,
		    _mm512_clmulepi64_epi128(x, p, 0x01),
		    _mm512_clmulepi64_epi128(x, p, 0x10), 0x96);
	}
	l = fold4(lo);
	h = fold4(hi);
	m = fold4(mid);
	l = _mm_xor_si128(l, _mm_slli_si128(m, 8));
	h = _mm_xor_si128(h, _mm_srli_si128(m, 8));
	return (ghash_reduce(l, h));
}

/* One 16-byte block (zero-padded by the caller) into the accumulator. */
GCM_TARGET static void
ghash_one(struct gcm_fast *g, const uint8_t blk[16])
{
	__m128i h = _mm_loadu_si128((const __m128i *)g->hpow[GCM_FAST_POWERS - 1]);
	__m128i a = _mm_loadu_si128((const __m128i *)g->acc);

	a = _mm_xor_si128(a, bswap128(_mm_loadu_si128((const __m128i *)blk)));
	_mm_storeu_si128((__m128i *)g->acc, gfmul(a, h));
}

GCM_TARGET static __m128i
aes_block(const struct gcm_fast *g, __m128i x)
{
	x = _mm_xor_si128(x, _mm_loadu_si128((const __m128i *)g->rk4[0]));
	for (int r = 1; r < g->rounds; r++)
		x = _mm_aesenc_si128(x,
		    _mm_loadu_si128((const __m128i *)g->rk4[r]));
	return (_mm_aesenclast_si128(x,
	    _mm_loadu_si128((const __m128i *)g->rk4[g->rounds])));
}

/* Key expansion, FIPS 197 5.2, with the AESKEYGENASSIST helper. */
GCM_TARGET static inline __m128i
expand_step(__m128i key, __m128i assist)
{
	key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
	key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
	key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
	return (_mm_xor_si128(key, assist));
}

#define EXP128(i, rcon) (rk[i] = expand_step(rk[(i) - 1], \
    _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i) - 1], rcon), 0xff)))
#define EXP256A(i, rcon) (rk[i] = expand_step(rk[(i) - 2], \
    _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i) - 1], rcon), 0xff)))
#define EXP256B(i) (rk[i] = expand_step(rk[(i) - 2], \
    _mm_shuffle_epi32(_mm_aeskeygenassist_si128(rk[(i) - 1], 0), 0xaa)))

GCM_TARGET int
gcm_fast_init(struct gcm_fast *g, const uint8_t *key, size_t klen)
{
	__m128i rk[15], h, p;

	memset(g, 0, sizeof(*g));
	if (klen == 16) {
		g->rounds = 10;
		rk[0] = _mm_loadu_si128((const __m128i *)key);
		EXP128(1, 0x01); EXP128(2, 0x02); EXP128(3, 0x04);
		EXP128(4, 0x08); EXP128(5, 0x10); EXP128(6, 0x20);
		EXP128(7, 0x40); EXP128(8, 0x80); EXP128(9, 0x1b);
		EXP128(10, 0x36);
	} else if (klen == 32) {
		g->rounds = 14;
		rk[0] = _mm_loadu_si128((const __m128i *)key);
		rk[1] = _mm_loadu_si128((const __m128i *)(key + 16));
		EXP256A(2, 0x01); EXP256B(3); EXP256A(4, 0x02); EXP256B(5);
		EXP256A(6, 0x04); EXP256B(7); EXP256A(8, 0x08); EXP256B(9);
		EXP256A(10, 0x10); EXP256B(11); EXP256A(12, 0x20);
		EXP256B(13); EXP256A(14, 0x40);
	} else
		return (-1);
	for (int r = 0; r <= g->rounds; r++)
		_mm512_storeu_si512(g->rk4[r], _mm512_broadcast_i32x4(rk[r]));
	OPENSSL_cleanse(rk, sizeof(rk));

	/* H = E(K, 0), then its powers, highest first. */
	h = bswap128(aes_block(g, _mm_setzero_si128()));
	p = h;
	for (int i = GCM_FAST_POWERS - 1; i >= 0; i--) {
		_mm_storeu_si128((__m128i *)g->hpow[i], p);
		p = gfmul(p, h);
	}
	return (0);
}

GCM_TARGET void
gcm_fast_start(struct gcm_fast *g, const uint8_t nonce[12],
    const uint8_t *aad, size_t aadlen)
{
	uint8_t blk[16];

	memcpy(g->nonce, nonce, 12);
	memset(g->nonce + 12, 0, 4);
	memset(g->acc, 0, sizeof(g->acc));
	g->nonce[15] = 1;
	_mm_storeu_si128((__m128i *)g->ek0, aes_block(g,
	    _mm_loadu_si128((const __m128i *)g->nonce)));
	g->nonce[15] = 0;
	g->ctr = 2;
	g->pend = 0;
	g->len = 0;
	g->aadlen = aadlen;
	for (size_t off = 0; off < aadlen; off += 16) {
		size_t n = aadlen - off < 16 ? aadlen - off : 16;

		memset(blk, 0, sizeof(blk));
		memcpy(blk, aad + off, n);
		ghash_one(g, blk);
	}
}

/* Mask of the first n (0..64) bytes of a vector. */
static inline __mmask64
byte_mask(size_t n)
{
	return (n >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << n) - 1);
}

/* Four counter blocks from c, reflected back to wire order. */
GCM_TARGET static inline __m512i
ctr_blocks(__m512i base, uint32_t c)
{
	const __m512i lanes = _mm512_set_epi32(0, 0, 0, 3, 0, 0, 0, 2,
	    0, 0, 0, 1, 0, 0, 0, 0);

	/* In reflected order the 32-bit counter is dword 0 of each lane. */
	return (bswap512(_mm512_add_epi32(_mm512_add_epi32(base, lanes),
	    _mm512_maskz_set1_epi32(0x1111, (int)c))));
}

/*
 * Whole 256-byte chunks, the common case: no masks, and the round keys,
 * powers of H and the accumulator stay in registers from one chunk to
 * the next.
 */
GCM_TARGET static void
ctr_bulk(struct gcm_fast *g, bool enc, uint8_t *out, const uint8_t *in,
    size_t chunks)
{
	__m512i base = bswap512(_mm512_broadcast_i32x4(
	    _mm_loadu_si128((const __m128i *)g->nonce)));
	__m512i rk[15], hp[4];
	__m128i acc = _mm_loadu_si128((const __m128i *)g->acc);
	uint32_t c = g->ctr;
	int nr = g->rounds;

	for (int r = 0; r <= nr; r++)
		rk[r] = _mm512_loadu_si512(g->rk4[r]);
	for (int v = 0; v < 4; v++)
		hp[v] = _mm512_loadu_si512(g->hpow[4 * v]);
	for (; chunks > 0; chunks--, in += 256, out += 256, c += 16) {
		__m512i k0, k1, k2, k3, x0, x1, x2, x3, d0, d1, d2, d3;
		__m512i lo, hi, mid;
		__m128i l, h, m;

		k0 = _mm512_xor_si512(ctr_blocks(base, c), rk[0]);
		k1 = _mm512_xor_si512(ctr_blocks(base, c + 4), rk[0]);
		k2 = _mm512_xor_si512(ctr_blocks(base, c + 8), rk[0]);
		k3 = _mm512_xor_si512(ctr_blocks(base, c + 12), rk[0]);
		for (int r = 1; r < nr; r++) {
			k0 = _mm512_aesenc_epi128(k0, rk[r]);
			k1 = _mm512_aesenc_epi128(k1, rk[r]);
			k2 = _mm512_aesenc_epi128(k2, rk[r]);
			k3 = _mm512_aesenc_epi128(k3, rk[r]);
		}
		x0 = _mm512_loadu_si512(in);
		x1 = _mm512_loadu_si512(in + 64);
		x2 = _mm512_loadu_si512(in + 128);
		x3 = _mm512_loadu_si512(in + 192);
		k0 = _mm512_aesenclast_epi128(k0, rk[nr]);
		k1 = _mm512_aesenclast_epi128(k1, rk[nr]);
		k2 = _mm512_aesenclast_epi128(k2, rk[nr]);
		k3 = _mm512_aesenclast_epi128(k3, rk[nr]);
		k0 = _mm512_xor_si512(k0, x0);
		k1 = _mm512_xor_si512(k1, x1);
		k2 = _mm512_xor_si512(k2, x2);
		k3 = _mm512_xor_si512(k3, x3);
		_mm512_storeu_si512(out, k0);
		_mm512_storeu_si512(out + 64, k1);
		_mm512_storeu_si512(out + 128, k2);
		_mm512_storeu_si512(out + 192, k3);

		/*
		 * GHASH runs over the ciphertext.  ghash_blocks() spelled out
		 * with the powers in registers: calling it here (or a helper
		 * both share) cost 8 to 12% of the throughput, measured.
		 */
		d0 = bswap512(enc ? k0 : x0);
		d1 = bswap512(enc ? k1 : x1);
		d2 = bswap512(enc ? k2 : x2);
		d3 = bswap512(enc ? k3 : x3);
		d0 = _mm512_xor_si512(d0, _mm512_zextsi128_si512(acc));
		lo = _mm512_clmulepi64_epi128(d0, hp[0], 0x00);
		hi = _mm512_clmulepi64_epi128(d0, hp[0], 0x11);
		mid = _mm512_xor_si512(_mm512_clmulepi64_epi128(d0, hp[0], 0x01),
		    _mm512_clmulepi64_epi128(d0, hp[0], 0x10));
#define GHASH_LANES(d, p) do {						\
	lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128(d, p, 0x00));	\
	hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128(d, p, 0x11));	\
	mid = _mm512_ternarylogic_epi64(mid,					\
	    _mm512_clmulepi64_epi128(d, p, 0x01),				\
	    _mm512_clmulepi64_epi128(d, p, 0x10), 0x96);			\
} while (0)
		GHASH_LANES(d1, hp[1]);
		GHASH_LANES(d2, hp[2]);
		GHASH_LANES(d3, hp[3]);
#undef GHASH_LANES
		l = fold4(lo);
		h = fold4(hi);
		m = fold4(mid);
		l = _mm_xor_si128(l, _mm_slli_si128(m, 8));
		h = _mm_xor_si128(h, _mm_srli_si128(m, 8));
		acc = ghash_reduce(l, h);
	}
	_mm_storeu_si128((__m128i *)g->acc, acc);
	g->ctr = c;
}

/*
 * Under 256 bytes: the keystream of nb = ceil(len / 16) blocks, applied
 * with masks; GHASH over the full blocks; a trailing partial block is
 * left pending with its keystream.
 */
GCM_TARGET static void
ctr_tail(struct gcm_fast *g, bool enc, uint8_t *out, const uint8_t *in,
    size_t len)
{
	__m512i base = bswap512(_mm512_broadcast_i32x4(
	    _mm_loadu_si128((const __m128i *)g->nonce)));
	__m512i ks[4], ct[4], rk;
	unsigned nb = (len + 15) / 16, nv = (nb + 3) / 4, full = len / 16;
	uint32_t c = g->ctr;
	__m128i acc = _mm_loadu_si128((const __m128i *)g->acc);

	rk = _mm512_loadu_si512(g->rk4[0]);
	for (unsigned v = 0; v < 4; v++)
		ks[v] = v < nv ? _mm512_xor_si512(ctr_blocks(base, c + 4 * v),
		    rk) : _mm512_setzero_si512();
	for (int r = 1; r < g->rounds; r++) {
		rk = _mm512_loadu_si512(g->rk4[r]);
		for (unsigned v = 0; v < nv; v++)
			ks[v] = _mm512_aesenc_epi128(ks[v], rk);
	}
	rk = _mm512_loadu_si512(g->rk4[g->rounds]);
	for (unsigned v = 0; v < nv; v++)
		ks[v] = _mm512_aesenclast_epi128(ks[v], rk);

	for (unsigned v = 0; v < 4; v++) {
		size_t off = 64 * v, n = len > off ? len - off : 0;
		__mmask64 m = byte_mask(n), fm = byte_mask(full * 16 > off ?
		    full * 16 - off : 0);
		__m512i x, y;

		if (v >= nv) {
			ct[v] = _mm512_setzero_si512();
			continue;
		}
		x = _mm512_maskz_loadu_epi8(m, in + off);
		y = _mm512_xor_si512(x, ks[v]);
		_mm512_mask_storeu_epi8(out + off, m, y);
		ct[v] = bswap512(_mm512_maskz_mov_epi8(fm, enc ? y : x));
	}
	if (full > 0)
		acc = ghash_blocks(g, acc, ct, full);
	_mm_storeu_si128((__m128i *)g->acc, acc);

	if (len % 16 != 0) {
		uint8_t tmp[64];
		unsigned v = full / 4, lane = full % 4, rem = len % 16;

		_mm512_storeu_si512(tmp, ks[v]);
		memcpy(g->ks, tmp + 16 * lane, 16);
		memset(g->pblk, 0, sizeof(g->pblk));
		/* The ciphertext is out[] when encrypting; when decrypting in
		 * place in[] is gone, so take it back from the keystream. */
		for (unsigned i = 0; i < rem; i++)
			g->pblk[i] = enc ? out[16 * full + i] :
			    (uint8_t)(out[16 * full + i] ^ g->ks[i]);
		g->pend = rem;
		OPENSSL_cleanse(tmp, sizeof(tmp));
	}
	g->ctr = c + nb;
}

GCM_TARGET void
gcm_fast_update(struct gcm_fast *g, bool enc, uint8_t *out,
    const uint8_t *in, size_t len)
{
	g->len += len;
	/* Finish a block a previous piece started. */
	if (g->pend > 0) {
		size_t n = 16 - g->pend < len ? 16 - g->pend : len;

		for (size_t i = 0; i < n; i++) {
			uint8_t x = in[i], y = x ^ g->ks[g->pend + i];

			out[i] = y;
			g->pblk[g->pend + i] = enc ? y : x;
		}
		g->pend += n;
		in += n;
		out += n;
		len -= n;
		if (g->pend < 16)
			return;
		ghash_one(g, g->pblk);
		g->pend = 0;
	}
	if (len >= 256) {
		size_t chunks = len / 256;

		ctr_bulk(g, enc, out, in, chunks);
		in += 256 * chunks;
		out += 256 * chunks;
		len -= 256 * chunks;
	}
	if (len > 0)
		ctr_tail(g, enc, out, in, len);
}

GCM_TARGET void
gcm_fast_tag(struct gcm_fast *g, uint8_t tag[16])
{
	uint8_t blk[16];
	__m128i t;

	if (g->pend > 0) {
		memset(g->pblk + g->pend, 0, 16 - g->pend);
		ghash_one(g, g->pblk);
		g->pend = 0;
	}
	for (int i = 0; i < 8; i++) {
		blk[i] = (uint8_t)((g->aadlen * 8) >> (56 - 8 * i));
		blk[8 + i] = (uint8_t)((g->len * 8) >> (56 - 8 * i));
	}
	ghash_one(g, blk);
	t = _mm_xor_si128(bswap128(_mm_loadu_si128((const __m128i *)g->acc)),
	    _mm_loadu_si128((const __m128i *)g->ek0));
	_mm_storeu_si128((__m128i *)tag, t);
}

#else	/* no x86-64 vector AES in this build */

bool
gcm_fast_usable(void)
{
	return (false);
}

int
gcm_fast_init(struct gcm_fast *g, const uint8_t *key, size_t klen)
{
	(void)g;
	(void)key;
	(void)klen;
	return (-1);
}

void
gcm_fast_start(struct gcm_fast *g, const uint8_t nonce[12],
    const uint8_t *aad, size_t aadlen)
{
	(void)g;
	(void)nonce;
	(void)aad;
	(void)aadlen;
}

void
gcm_fast_update(struct gcm_fast *g, bool enc, uint8_t *out,
    const uint8_t *in, size_t len)
{
	(void)g;
	(void)enc;
	(void)out;
	(void)in;
	(void)len;
}

void
gcm_fast_tag(struct gcm_fast *g, uint8_t tag[16])
{
	(void)g;
	memset(tag, 0, 16);
}

#endif

void
gcm_fast_clear(struct gcm_fast *g)
{
	OPENSSL_cleanse(g, sizeof(*g));
}
