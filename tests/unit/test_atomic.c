/*
 * Commands that wait for a block's stripe (atomic.c), and fused Compare
 * and Write pairs: what they do once they go on.
 *
 * The test holds a block's stripe itself, as a one-block RAM read does
 * while its data is on the way to the socket (atomic_hold_read), so that a
 * command on the block parks, deterministically, until the test lets go.
 * Everything runs on the main loop (see harness.h).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NQN	NVMFD_DEFAULT_NQN
#define QUIET_MS 50	/* how long nothing may arrive from a parked command */

static struct port *port;
static struct namespace *ns;
static struct nvmf_cmd *holder;	/* the test's hold on a stripe */
static uint32_t bs;

static void
setup(void)
{
	struct config *cf = h_config();

	h_start(cf);
	port = port_find(cf, 1);
	ns = namespace_find(subsystem_find(cf, NQN), 1);
	ck_assert_ptr_nonnull(ns);
	bs = 1u << ns->lba_shift;
	holder = calloc(1, sizeof(*holder));
	ck_assert_ptr_nonnull(holder);
	holder->ns = ns;
}

static void
teardown(void)
{
	if (holder->atomic_held)
		atomic_unhold(holder);
	free(holder);
	h_stop();
}

/* Take the stripe of block lba shared; it must be free. */
static void
hold(uint64_t lba)
{
	ck_assert(atomic_hold_read(holder, lba << ns->lba_shift, NULL));
}

static void
unhold(void)
{
	atomic_unhold(holder);
}

static void
fill(uint8_t *b, uint8_t v)
{
	memset(b, v, bs);
}

/* Send a one-block write (or a Compare) of data at lba with its data in
 * the capsule, fused as flags say; returns its CID. */
static uint16_t
send_block(struct h_conn *c, uint8_t opc, uint8_t flags, uint64_t lba,
    const uint8_t *data)
{
	struct nvme_sqe sqe = { .opc = opc, .nsid = 1, .flags = flags };

	sqe.cdw10 = (uint32_t)lba;
	sqe.cdw11 = (uint32_t)(lba >> 32);
	h_sgl_icd(&sqe, bs);
	return (h_submit(c, &sqe, data, bs));
}

static void
expect(struct h_conn *c, uint16_t cid, uint16_t sc, bool dnr)
{
	struct nvme_cqe cqe;

	h_wait(c, cid, &cqe, NULL, 0, NULL, 0);
	ck_assert_msg(h_sc(&cqe) == sc, "CID %u: status 0x%x, expected 0x%x",
	    cid, h_sc(&cqe), sc);
	ck_assert_uint_eq(h_dnr(&cqe), dnr);
}

/* Wait (bounded) until a shrink to nlb blocks has settled: the storage
 * is cut. */
static void
settled(uint64_t nlb)
{
	uint64_t end = h_ms_now() + H_TIMEOUT_MS;

	while (atomic_load(&ns->resize_busy) && h_ms_now() < end)
		h_pump_for(1);
	ck_assert_msg(!atomic_load(&ns->resize_busy), "shrink did not settle");
	ck_assert_uint_eq(ns_bytes(ns), nlb << ns->lba_shift);
}

/* Shrink the namespace to nlb blocks: hosts see it at once; the storage
 * follows once earlier commands are done, which settle says to expect
 * (or not) now. */
static void
shrink_to(uint64_t nlb, bool settle)
{
	char err[256];

	ck_assert_msg(ns_resize(ns, nlb << ns->lba_shift, err,
	    sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(ns_nlb(ns), nlb);
	if (settle) {
		settled(nlb);
		return;
	}
	h_pump_for(QUIET_MS);
	ck_assert(atomic_load(&ns->resize_busy));
}

/*
 * A one-block write parked on its stripe while the namespace shrank past
 * its block: once it has the stripe it completes with LBA Out of Range and
 * never reaches the backend (whose storage is gone by then).
 */
START_TEST(parked_write_after_shrink)
{
	struct h_conn *a = h_admin(port, NQN, H_HOSTNQN, 0);
	struct h_conn *q = h_ioq(a, NQN, H_HOSTNQN, 1, 31, 0);
	uint8_t old[4096], new[4096];
	uint64_t last = ns_nlb(ns) - 1;
	uint16_t cid;

	fill(old, 0x11);
	fill(new, 0x22);
	ck_assert_uint_eq(h_write(q, 1, last, 1, old, bs), NVME_SC_SUCCESS);
	hold(last);
	cid = send_block(q, NVME_CMD_WRITE, 0, last, new);
	ck_assert(!h_readable(q, QUIET_MS));		/* parked */
	/* It is not counted while it waits: the shrink settles. */
	shrink_to(last - 7, true);
	unhold();
	expect(q, cid, NVME_SC_LBA_RANGE, true);
	/* The namespace goes on serving what is left of it. */
	ck_assert_uint_eq(h_write(q, 1, last - 8, 1, new, bs),
	    NVME_SC_SUCCESS);
	ck_assert_mem_eq(ns->mem + ((last - 8) << ns->lba_shift), new, bs);
}
END_TEST

/*
 * A fused Compare and Write of one block takes its block's stripe before
 * it compares: while a read holds the block, the pair waits and the block
 * keeps its data; once the read lets go, the pair runs.
 */
START_TEST(fused_pair_takes_stripe)
{
	struct h_conn *a = h_admin(port, NQN, H_HOSTNQN, 0);
	struct h_conn *q = h_ioq(a, NQN, H_HOSTNQN, 1, 31, 0);
	uint8_t old[4096], new[4096];
	uint16_t c1, c2;

	fill(old, 0x33);
	fill(new, 0x44);
	ck_assert_uint_eq(h_write(q, 1, 5, 1, old, bs), NVME_SC_SUCCESS);
	hold(5);
	c1 = send_block(q, NVME_CMD_COMPARE, NVME_FUSE_FIRST, 5, old);
	c2 = send_block(q, NVME_CMD_WRITE, NVME_FUSE_SECOND, 5, new);
	ck_assert(!h_readable(q, QUIET_MS));
	ck_assert_mem_eq(ns->mem + 5 * bs, old, bs);	/* not torn under it */
	unhold();
	expect(q, c1, NVME_SC_SUCCESS, false);
	expect(q, c2, NVME_SC_SUCCESS, false);
	ck_assert_mem_eq(ns->mem + 5 * bs, new, bs);
	/* It let go of the stripe: a plain one-block write goes through. */
	ck_assert_uint_eq(h_write(q, 1, 5, 1, old, bs), NVME_SC_SUCCESS);
	ck_assert_mem_eq(ns->mem + 5 * bs, old, bs);
}
END_TEST

/*
 * A one-block write parked on its stripe before a pair on the same block
 * began is not counted, so the pair does not wait for it; once the stripe
 * is free it must not land between the pair's compare and write.  It
 * waits for the pair instead: the pair compares what it expected, and the
 * write lands after it.
 */
START_TEST(parked_write_waits_for_pair)
{
	struct h_conn *a = h_admin(port, NQN, H_HOSTNQN, 0);
	struct h_conn *q1 = h_ioq(a, NQN, H_HOSTNQN, 1, 31, 0);
	struct h_conn *q2 = h_ioq(a, NQN, H_HOSTNQN, 2, 31, 0);
	uint8_t old[4096], new[4096], other[4096];
	uint16_t w, c1, c2;

	fill(old, 0x55);
	fill(new, 0x66);
	fill(other, 0x77);
	ck_assert_uint_eq(h_write(q1, 1, 6, 1, old, bs), NVME_SC_SUCCESS);
	hold(6);
	w = send_block(q2, NVME_CMD_WRITE, 0, 6, other);
	ck_assert(!h_readable(q2, QUIET_MS));		/* parked */
	c1 = send_block(q1, NVME_CMD_COMPARE, NVME_FUSE_FIRST, 6, old);
	c2 = send_block(q1, NVME_CMD_WRITE, NVME_FUSE_SECOND, 6, new);
	ck_assert(!h_readable(q1, QUIET_MS));		/* parked too */
	unhold();
	expect(q1, c1, NVME_SC_SUCCESS, false);
	expect(q1, c2, NVME_SC_SUCCESS, false);
	expect(q2, w, NVME_SC_SUCCESS, false);
	ck_assert_mem_eq(ns->mem + 6 * bs, other, bs);
}
END_TEST

/*
 * A pair of one block parked on its stripe holds a command in the
 * namespace's count (its Write), so a shrink cutting its block waits for
 * it; when the pair goes on it finds its range gone: the Compare fails
 * with LBA Out of Range, the Write is aborted, nothing is written past the
 * new end, and then the shrink settles.
 */
START_TEST(parked_pair_after_shrink)
{
	struct h_conn *a = h_admin(port, NQN, H_HOSTNQN, 0);
	struct h_conn *q = h_ioq(a, NQN, H_HOSTNQN, 1, 31, 0);
	uint8_t old[4096], new[4096];
	uint64_t last = ns_nlb(ns) - 1;
	uint16_t c1, c2;

	fill(old, 0x88);
	fill(new, 0x99);
	ck_assert_uint_eq(h_write(q, 1, last, 1, old, bs), NVME_SC_SUCCESS);
	hold(last);
	c1 = send_block(q, NVME_CMD_COMPARE, NVME_FUSE_FIRST, last, old);
	c2 = send_block(q, NVME_CMD_WRITE, NVME_FUSE_SECOND, last, new);
	ck_assert(!h_readable(q, QUIET_MS));
	shrink_to(last, false);			/* waits for the pair */
	ck_assert_mem_eq(ns->mem + last * bs, old, bs);
	unhold();
	expect(q, c1, NVME_SC_LBA_RANGE, true);
	expect(q, c2, NVME_SC_FUSED_FAILED, true);
	settled(last);
	/* The namespace's writes go on (the pair let go of its gate). */
	ck_assert_uint_eq(h_write(q, 1, last - 1, 1, new, bs),
	    NVME_SC_SUCCESS);
}
END_TEST

static Suite *
atomic_suite(void)
{
	Suite *s = suite_create("atomic");
	TCase *tc = tcase_create("atomic");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, parked_write_after_shrink);
	tcase_add_test(tc, fused_pair_takes_stripe);
	tcase_add_test(tc, parked_write_waits_for_pair);
	tcase_add_test(tc, parked_pair_after_shrink);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(atomic_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
