/*
 * CRC32C: known vectors, the SSE4.2 and table implementations against each
 * other and against a bit-at-a-time reference, and crc32c_iov.
 */
#include "config.h"

#include <sys/wait.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmfd.h"

/* The definition, one bit at a time: slow, but obviously right. */
static uint32_t
ref_crc32c(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xffffffff;

	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78 & (0u - (crc & 1)));
	}
	return (~crc);
}

/* Deterministic bytes, so a failure reproduces. */
static uint64_t rng_state;

static uint8_t
rng_byte(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return ((uint8_t)(rng_state >> 24));
}

static void
fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	rng_state = seed | 1;
	for (size_t i = 0; i < len; i++)
		p[i] = rng_byte();
}

/* Lengths that cover the byte loops, the 8-byte loop and the tails. */
static const size_t lengths[] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65,
	127, 128, 255, 256, 257, 1000, 1023, 1024, 4095, 4096, 4097,
	6143, 6144, 6145, 12288 + 7, 65536 + 13, 131072, 131072 + 6151,
};
#define MAX_LEN		(131072 + 6151)
#define NALIGN		8
#define NRESULTS	(nitems(lengths) * NALIGN)

/* CRC of every length at every alignment of one random buffer. */
static void
crc_table_of(uint32_t *out, bool reference)
{
	uint8_t *buf = malloc(MAX_LEN + NALIGN);
	size_t k = 0;

	ck_assert_ptr_nonnull(buf);
	fill_random(buf, MAX_LEN + NALIGN, 0x1234567887654321ull);
	for (size_t i = 0; i < nitems(lengths); i++)
		for (size_t a = 0; a < NALIGN; a++)
			out[k++] = reference ? ref_crc32c(buf + a, lengths[i]) :
			    crc32c(buf + a, lengths[i]);
	free(buf);
}

START_TEST(vectors)
{
	uint8_t b[32];

	ck_assert_uint_eq(crc32c("123456789", 9), 0xe3069283);
	memset(b, 0, sizeof(b));
	ck_assert_uint_eq(crc32c(b, sizeof(b)), 0x8a9136aa);
	memset(b, 0xff, sizeof(b));
	ck_assert_uint_eq(crc32c(b, sizeof(b)), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		b[i] = i;
	ck_assert_uint_eq(crc32c(b, sizeof(b)), 0x46dd794e);
	/* Nothing at all: the seed inverted back. */
	ck_assert_uint_eq(crc32c(b, 0), 0);
	/* The reference agrees, so the later comparisons mean something. */
	ck_assert_uint_eq(ref_crc32c((const uint8_t *)"123456789", 9),
	    0xe3069283);
}
END_TEST

START_TEST(update_in_pieces)
{
	const char *s = "123456789";

	/* Every split point gives the same CRC as one call. */
	for (size_t cut = 0; cut <= 9; cut++) {
		uint32_t crc = crc32c_update(0xffffffff, s, cut);

		crc = crc32c_update(crc, s + cut, 9 - cut);
		ck_assert_uint_eq(~crc, 0xe3069283);
	}
}
END_TEST

START_TEST(default_matches_reference)
{
	uint32_t *got = calloc(NRESULTS, sizeof(*got));
	uint32_t *want = calloc(NRESULTS, sizeof(*want));

	crc_table_of(got, false);
	crc_table_of(want, true);
	for (size_t i = 0; i < NRESULTS; i++)
		ck_assert_msg(got[i] == want[i], "length %zu alignment %zu: "
		    "0x%08x, want 0x%08x", lengths[i / NALIGN], i % NALIGN,
		    got[i], want[i]);
	free(got);
	free(want);
}
END_TEST

/*
 * The implementation is chosen once per process, at the first call.  A
 * child forked before any call computes with the default (SSE4.2 where the
 * CPU has it); this process then forces the table code with the variable.
 * Check runs each test in its own process, so nothing has chosen yet.
 */
START_TEST(software_matches_hardware)
{
	const char *fork_mode = getenv("CK_FORK");
	uint32_t *hw, *sw, *want;
	size_t got = 0;
	int fds[2], status;
	pid_t pid;

	if (fork_mode != NULL && strcmp(fork_mode, "no") == 0)
		return;		/* the choice may already be made */
	hw = calloc(NRESULTS, sizeof(*hw));
	sw = calloc(NRESULTS, sizeof(*sw));
	want = calloc(NRESULTS, sizeof(*want));
	ck_assert_int_eq(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		unsetenv("NVMFD_CRC32C_SW");
		crc_table_of(hw, false);
		_exit(write(fds[1], hw, NRESULTS * sizeof(*hw)) ==
		    (ssize_t)(NRESULTS * sizeof(*hw)) ? 0 : 1);
	}
	ck_assert_int_gt(pid, 0);
	close(fds[1]);
	while (got < NRESULTS * sizeof(*hw)) {
		ssize_t n = read(fds[0], (uint8_t *)hw + got,
		    NRESULTS * sizeof(*hw) - got);

		ck_assert_int_gt(n, 0);
		got += n;
	}
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	setenv("NVMFD_CRC32C_SW", "1", 1);
	crc_table_of(sw, false);
	crc_table_of(want, true);
	for (size_t i = 0; i < NRESULTS; i++) {
		ck_assert_msg(sw[i] == hw[i], "length %zu alignment %zu: "
		    "software 0x%08x, hardware 0x%08x", lengths[i / NALIGN],
		    i % NALIGN, sw[i], hw[i]);
		ck_assert_uint_eq(sw[i], want[i]);
	}
	/* The software path must still get the known vectors right. */
	ck_assert_uint_eq(crc32c("123456789", 9), 0xe3069283);
	free(hw);
	free(sw);
	free(want);
}
END_TEST

START_TEST(iov_equals_flat)
{
	uint8_t flat[700];
	/* Piece sizes with empty ones, single bytes and a long tail. */
	static const size_t sizes[] = { 0, 1, 7, 0, 64, 3, 100, 1, 0, 524 };
	struct iovec iov[nitems(sizes)];
	size_t off = 0, total;

	fill_random(flat, sizeof(flat), 42);
	for (size_t i = 0; i < nitems(sizes); i++) {
		iov[i].iov_base = flat + off;
		iov[i].iov_len = sizes[i];
		off += sizes[i];
	}
	total = off;
	ck_assert_uint_eq(total, sizeof(flat));

	/* Every skip and length straddling the piece boundaries. */
	for (size_t skip = 0; skip <= total; skip += (skip < 80 ? 1 : 37))
		for (size_t len = 0; skip + len <= total;
		    len += (len < 80 ? 1 : 29))
			ck_assert_msg(crc32c_iov(iov, nitems(iov), skip, len) ==
			    crc32c(flat + skip, len), "skip %zu len %zu", skip,
			    len);
	/* A length past the end stops at the end of the iovecs. */
	ck_assert_uint_eq(crc32c_iov(iov, nitems(iov), 10, 5000),
	    crc32c(flat + 10, total - 10));
	/* Nothing to cover. */
	ck_assert_uint_eq(crc32c_iov(iov, 0, 0, 10), 0);
}
END_TEST

static Suite *
crc32c_suite(void)
{
	Suite *s = suite_create("crc32c");
	TCase *tc = tcase_create("crc32c");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, vectors);
	tcase_add_test(tc, update_in_pieces);
	tcase_add_test(tc, default_matches_reference);
	tcase_add_test(tc, software_matches_hardware);
	tcase_add_test(tc, iov_equals_flat);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(crc32c_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
