/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78) for NVMe/TCP digests.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a slicing-by-8 table
 * otherwise.  Callers seed with 0xffffffff and invert the result (crc32c()
 * does both).
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"

#define CRC32C_POLY	0x82f63b78	/* reflected */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static uint32_t (*crc_impl)(uint32_t, const uint8_t *, size_t);

static uint32_t
crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		v ^= crc;
		crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
		    crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
		    crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
		    crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return (crc);
}

#if defined(__x86_64__)
/*
 * Multiply two polynomials modulo P in the reflected bit order CRC32C
 * uses: how a CRC register is moved past bytes it did not see.
 */
static uint32_t
gf2_mulmod(uint32_t a, uint32_t b)
{
	uint32_t prod = 0;

	for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
		if (a & m)
			prod ^= b;
		b = (b & 1) ? (b >> 1) ^ CRC32C_POLY : b >> 1;
	}
	return (prod);
}

/* x^(8 * n) mod P: appending n zero bytes to a message. */
static uint32_t
x8n_mod(size_t n)
{
	uint32_t r = 1u << 31, sq = 1u << 30;	/* x^0; x^1 */

	/* Square-and-multiply over the bits of 8n. */
	for (size_t e = n * 8; e != 0; e >>= 1) {
		if (e & 1)
			r = gf2_mulmod(r, sq);
		sq = gf2_mulmod(sq, sq);
	}
	return (r);
}

/* Bytes per stream in the three-way loop, and the shift past one block. */
#define HW_BLOCK	2048
static uint32_t hw_block_shift;

__attribute__((target("sse4.2")))
static uint32_t
crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	/*
	 * The instruction has a latency of three cycles but issues one per
	 * cycle: three independent streams over consecutive blocks run three
	 * times as fast, then the partial CRCs are shifted into one.
	 */
	while (len >= 3 * HW_BLOCK) {
		uint64_t c1 = 0, c2 = 0;

		for (size_t i = 0; i < HW_BLOCK; i += 8) {
			uint64_t v0, v1, v2;

			memcpy(&v0, p + i, 8);
			memcpy(&v1, p + HW_BLOCK + i, 8);
			memcpy(&v2, p + 2 * HW_BLOCK + i, 8);
			c = __builtin_ia32_crc32di(c, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
		}
		c = gf2_mulmod((uint32_t)c, hw_block_shift) ^ (uint32_t)c1;
		c = gf2_mulmod((uint32_t)c, hw_block_shift) ^ (uint32_t)c2;
		p += 3 * HW_BLOCK;
		len -= 3 * HW_BLOCK;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ((uint32_t)c);
}
#endif

static void
crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
			    crc_table[0][crc_table[t - 1][i] & 0xff];
	crc_impl = crc32c_sw;
#if defined(__x86_64__)
	__builtin_cpu_init();
	hw_block_shift = x8n_mod(HW_BLOCK);
	if (__builtin_cpu_supports("sse4.2") && getenv("NVMFD_CRC32C_SW") == NULL)
		crc_impl = crc32c_hw;
#endif
}

uint32_t
crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc32c_init);
	return (crc_impl(crc, buf, len));
}

uint32_t
crc32c(const void *buf, size_t len)
{
	return (~crc32c_update(0xffffffff, buf, len));
}

/* CRC32C of len bytes of an iovec array, starting skip bytes in. */
uint32_t
crc32c_iov(const struct iovec *iov, int iovcnt, size_t skip, size_t len)
{
	uint32_t crc = 0xffffffff;

	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t n = iov[i].iov_len;

		if (skip >= n) {
			skip -= n;
			continue;
		}
		n -= skip;
		if (n > len)
			n = len;
		crc = crc32c_update(crc, (uint8_t *)iov[i].iov_base + skip, n);
		len -= n;
		skip = 0;
	}
	return (~crc);
}
