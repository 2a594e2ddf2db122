/*
 * reservation.c and resv-state.c: the access table of every reservation
 * type for the holder, a registrant and any other host, reads and writes;
 * register, acquire, preempt, release and clear with their statuses and
 * notices; the state file written and read back, and damaged files refused
 * with file:line.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmfd.h"
#include "reservation.h"

#define CONFLICT	NVME_SC_RESV_CONFLICT
#define INVALID		(NVME_SC_INVALID_FIELD | NVME_DNR >> 1)

static const uint8_t A[16] = { 0xa }, B[16] = { 0xb }, C[16] = { 0xc };

/* CDW10 of Register, Acquire and Release */
static uint32_t
cdw10(uint32_t action, uint32_t rtype, bool iekey, uint32_t cptpl)
{
	return (action | (iekey ? 1u << 3 : 0) | rtype << 8 | cptpl << 30);
}

static uint16_t
reg(struct resv_state *st, const uint8_t *h, uint64_t key)
{
	struct resv_notices nt = { 0 };

	return (resv_do_register(st, h, cdw10(0, 0, false, 0), 0, key, true,
	    &nt));
}

static uint16_t
acq(struct resv_state *st, const uint8_t *h, uint32_t action, uint8_t rtype,
    uint64_t crkey, uint64_t prkey, struct resv_notices *nt)
{
	nt->n = 0;
	return (resv_do_acquire(st, h, cdw10(action, rtype, false, 0), crkey,
	    prkey, nt));
}

static uint16_t
rel(struct resv_state *st, const uint8_t *h, uint32_t action, uint8_t rtype,
    uint64_t crkey, struct resv_notices *nt)
{
	nt->n = 0;
	return (resv_do_release(st, h, cdw10(action, rtype, false, 0), crkey,
	    nt));
}

START_TEST(test_access_table)
{
	/* [type][role: other, registrant, holder] = { read, write } */
	static const bool want[7][3][2] = {
		[RESV_NONE] = { { 1, 1 }, { 1, 1 }, { 1, 1 } },
		[RESV_WRITE_EXCL] = { { 1, 0 }, { 1, 0 }, { 1, 1 } },
		[RESV_EXCL_ACCESS] = { { 0, 0 }, { 0, 0 }, { 1, 1 } },
		[RESV_WRITE_EXCL_REG_ONLY] = { { 1, 0 }, { 1, 1 }, { 1, 1 } },
		[RESV_EXCL_ACCESS_REG_ONLY] = { { 0, 0 }, { 1, 1 }, { 1, 1 } },
		[RESV_WRITE_EXCL_ALL_REGS] = { { 1, 0 }, { 1, 1 }, { 1, 1 } },
		[RESV_EXCL_ACCESS_ALL_REGS] = { { 0, 0 }, { 1, 1 }, { 1, 1 } },
	};

	for (int t = 0; t < 7; t++)
		for (int role = 0; role < 3; role++)
			for (int w = 0; w < 2; w++)
				ck_assert_msg(resv_access_allowed(t, role, w) ==
				    want[t][role][w], "type %d role %d %s", t,
				    role, w ? "write" : "read");
}
END_TEST

/* Roles as the I/O path computes them, for every type from the state. */
START_TEST(test_roles)
{
	struct resv_state st = { 0 };
	struct resv_notices nt;

	ck_assert_int_eq(reg(&st, A, 1), 0);
	ck_assert_int_eq(reg(&st, B, 2), 0);
	ck_assert_int_eq(resv_role_of(&st, A), RESV_ROLE_REGISTRANT);
	ck_assert_int_eq(resv_role_of(&st, C), RESV_ROLE_OTHER);
	ck_assert_int_eq(acq(&st, A, 0, RESV_WRITE_EXCL, 1, 0, &nt), 0);
	ck_assert_int_eq(resv_role_of(&st, A), RESV_ROLE_HOLDER);
	ck_assert_int_eq(resv_role_of(&st, B), RESV_ROLE_REGISTRANT);
	ck_assert_int_eq(rel(&st, A, 0, RESV_WRITE_EXCL, 1, &nt), 0);
	/* All registrants: every registrant holds it. */
	ck_assert_int_eq(acq(&st, B, 0, RESV_EXCL_ACCESS_ALL_REGS, 2, 0, &nt),
	    0);
	ck_assert_int_eq(resv_role_of(&st, A), RESV_ROLE_HOLDER);
	ck_assert_int_eq(resv_role_of(&st, B), RESV_ROLE_HOLDER);
	ck_assert_int_eq(resv_role_of(&st, C), RESV_ROLE_OTHER);
}
END_TEST

START_TEST(test_register)
{
	struct resv_state st = { 0 };
	struct resv_notices nt = { 0 };

	ck_assert_int_eq(reg(&st, A, 0), INVALID);		/* key 0 */
	ck_assert_int_eq(reg(&st, A, 5), 0);
	ck_assert_int_eq(st.gen, 1);
	ck_assert_int_eq(reg(&st, A, 5), 0);			/* same key */
	ck_assert_int_eq(reg(&st, A, 6), CONFLICT);		/* another */
	/* Replace: wrong key, then IEKEY, then right key. */
	ck_assert_int_eq(resv_do_register(&st, A, cdw10(2, 0, false, 0), 9, 7,
	    true, &nt), CONFLICT);
	ck_assert_int_eq(resv_do_register(&st, A, cdw10(2, 0, true, 0), 9, 7,
	    true, &nt), 0);
	ck_assert_int_eq(st.regs[0].key, 7);
	/* Replace or unregister by a non-registrant. */
	ck_assert_int_eq(resv_do_register(&st, B, cdw10(2, 0, true, 0), 0, 7,
	    true, &nt), CONFLICT);
	ck_assert_int_eq(resv_do_register(&st, B, cdw10(1, 0, true, 0), 0, 0,
	    true, &nt), CONFLICT);
	/* Bad action, reserved CPTPL, PTPL without a state file. */
	ck_assert_int_eq(resv_do_register(&st, A, cdw10(3, 0, false, 0), 7, 8,
	    true, &nt), INVALID);
	ck_assert_int_eq(resv_do_register(&st, A, cdw10(0, 0, false, 1), 0, 7,
	    true, &nt), INVALID);
	ck_assert_int_eq(resv_do_register(&st, A, cdw10(0, 0, false, 3), 0, 7,
	    false, &nt), INVALID);
	ck_assert_int_eq(resv_do_register(&st, A, cdw10(0, 0, false, 3), 0, 7,
	    true, &nt), 0);
	ck_assert(st.ptpl);
	ck_assert_int_eq(resv_do_register(&st, A, cdw10(1, 0, false, 2), 7, 0,
	    true, &nt), 0);
	ck_assert(!st.ptpl);
	ck_assert_int_eq(st.nregs, 0);
}
END_TEST

START_TEST(test_acquire_release)
{
	struct resv_state st = { 0 };
	struct resv_notices nt;

	reg(&st, A, 1);
	reg(&st, B, 2);
	ck_assert_int_eq(acq(&st, C, 0, RESV_WRITE_EXCL, 0, 0, &nt), CONFLICT);
	ck_assert_int_eq(acq(&st, A, 0, RESV_WRITE_EXCL, 9, 0, &nt), CONFLICT);
	ck_assert_int_eq(acq(&st, A, 0, 0, 1, 0, &nt), INVALID);
	ck_assert_int_eq(acq(&st, A, 0, 7, 1, 0, &nt), INVALID);
	ck_assert_int_eq(acq(&st, A, 3, 1, 1, 0, &nt), INVALID);
	ck_assert_int_eq(acq(&st, A, 0, RESV_WRITE_EXCL_REG_ONLY, 1, 0, &nt), 0);
	ck_assert_int_eq(acq(&st, A, 0, RESV_WRITE_EXCL_REG_ONLY, 1, 0, &nt), 0);
	ck_assert_int_eq(acq(&st, A, 0, RESV_EXCL_ACCESS, 1, 0, &nt), CONFLICT);
	ck_assert_int_eq(acq(&st, B, 0, RESV_WRITE_EXCL_REG_ONLY, 2, 0, &nt),
	    CONFLICT);
	/* A registrant that does not hold it releases nothing. */
	ck_assert_int_eq(rel(&st, B, 0, RESV_WRITE_EXCL_REG_ONLY, 2, &nt), 0);
	ck_assert_int_eq(st.rtype, RESV_WRITE_EXCL_REG_ONLY);
	ck_assert_int_eq(rel(&st, A, 0, RESV_EXCL_ACCESS, 1, &nt), INVALID);
	ck_assert_int_eq(rel(&st, A, 0, 9, 1, &nt), INVALID);
	ck_assert_int_eq(rel(&st, A, 2, 1, 1, &nt), INVALID);
	ck_assert_int_eq(rel(&st, A, 0, RESV_WRITE_EXCL_REG_ONLY, 7, &nt),
	    CONFLICT);
	/* Released: B, the other registrant, is told. */
	ck_assert_int_eq(rel(&st, A, 0, RESV_WRITE_EXCL_REG_ONLY, 1, &nt), 0);
	ck_assert_int_eq(st.rtype, RESV_NONE);
	ck_assert_int_eq(nt.n, 1);
	ck_assert_mem_eq(nt.v[0].hostid, B, 16);
	ck_assert_int_eq(nt.v[0].type, RESV_NOTICE_RELEASED);
	/* Plain write exclusive: released silently. */
	acq(&st, A, 0, RESV_WRITE_EXCL, 1, 0, &nt);
	ck_assert_int_eq(rel(&st, A, 0, RESV_WRITE_EXCL, 1, &nt), 0);
	ck_assert_int_eq(nt.n, 0);
	/* Clear: everything goes, the others hear "preempted". */
	acq(&st, A, 0, RESV_EXCL_ACCESS, 1, 0, &nt);
	ck_assert_int_eq(rel(&st, B, 1, 0, 2, &nt), 0);
	ck_assert_int_eq(st.nregs, 0);
	ck_assert_int_eq(st.rtype, RESV_NONE);
	ck_assert_int_eq(nt.n, 1);
	ck_assert_mem_eq(nt.v[0].hostid, A, 16);
	ck_assert_int_eq(nt.v[0].type, RESV_NOTICE_PREEMPTED);
}
END_TEST

START_TEST(test_preempt)
{
	struct resv_state st = { 0 };
	struct resv_notices nt;
	uint32_t gen;

	reg(&st, A, 1);
	reg(&st, B, 2);
	reg(&st, C, 3);
	acq(&st, A, 0, RESV_WRITE_EXCL, 1, 0, &nt);
	/* B takes A's reservation, with another type; A is unregistered. */
	gen = st.gen;
	ck_assert_int_eq(acq(&st, B, 2, RESV_EXCL_ACCESS, 2, 1, &nt), 0);
	ck_assert_int_eq(st.gen, gen + 1);
	ck_assert_int_eq(st.rtype, RESV_EXCL_ACCESS);
	ck_assert_mem_eq(st.holder, B, 16);
	ck_assert_int_eq(resv_role_of(&st, A), RESV_ROLE_OTHER);
	ck_assert_int_eq(nt.n, 1);
	ck_assert_mem_eq(nt.v[0].hostid, A, 16);
	ck_assert_int_eq(nt.v[0].type, RESV_NOTICE_REG_PREEMPTED);
	/* A key nobody has; 0 while a plain type is held. */
	ck_assert_int_eq(acq(&st, C, 1, RESV_EXCL_ACCESS, 3, 99, &nt),
	    CONFLICT);
	ck_assert_int_eq(acq(&st, C, 1, RESV_EXCL_ACCESS, 3, 0, &nt), INVALID);
	/* Not the holder's key: C goes, the reservation stays with B. */
	ck_assert_int_eq(acq(&st, B, 1, RESV_EXCL_ACCESS, 2, 3, &nt), 0);
	ck_assert_int_eq(st.nregs, 1);
	ck_assert_mem_eq(st.holder, B, 16);
	/* All registrants: PRKEY 0 removes all others and takes it. */
	reg(&st, A, 1);
	reg(&st, C, 3);
	rel(&st, B, 0, RESV_EXCL_ACCESS, 2, &nt);
	acq(&st, A, 0, RESV_WRITE_EXCL_ALL_REGS, 1, 0, &nt);
	ck_assert_int_eq(acq(&st, C, 1, RESV_WRITE_EXCL, 3, 0, &nt), 0);
	ck_assert_int_eq(st.nregs, 1);
	ck_assert_int_eq(st.rtype, RESV_WRITE_EXCL);
	ck_assert_mem_eq(st.holder, C, 16);
	ck_assert_int_eq(nt.n, 2);
	/* Nothing held: preempt only removes registrations. */
	reg(&st, A, 1);
	rel(&st, C, 0, RESV_WRITE_EXCL, 3, &nt);
	ck_assert_int_eq(acq(&st, C, 1, RESV_WRITE_EXCL, 3, 1, &nt), 0);
	ck_assert_int_eq(st.nregs, 1);
	ck_assert_int_eq(st.rtype, RESV_NONE);
}
END_TEST

/* Unregistering the holder releases the reservation. */
START_TEST(test_unregister_holder)
{
	struct resv_state st = { 0 };
	struct resv_notices nt = { 0 };

	reg(&st, A, 1);
	reg(&st, B, 2);
	acq(&st, A, 0, RESV_EXCL_ACCESS_REG_ONLY, 1, 0, &nt);
	ck_assert_int_eq(resv_do_register(&st, A, cdw10(1, 0, false, 0), 1, 0,
	    true, &nt), 0);
	ck_assert_int_eq(st.rtype, RESV_NONE);
	ck_assert_int_eq(nt.n, 1);
	ck_assert_int_eq(nt.v[0].type, RESV_NOTICE_RELEASED);
	/* All registrants: it stays while one registrant is left. */
	reg(&st, A, 1);
	acq(&st, A, 0, RESV_EXCL_ACCESS_ALL_REGS, 1, 0, &nt);
	resv_do_register(&st, A, cdw10(1, 0, false, 0), 1, 0, true, &nt);
	ck_assert_int_eq(st.rtype, RESV_EXCL_ACCESS_ALL_REGS);
	resv_do_register(&st, B, cdw10(1, 0, false, 0), 2, 0, true, &nt);
	ck_assert_int_eq(st.rtype, RESV_NONE);
}
END_TEST

START_TEST(test_report)
{
	struct resv_state st = { 0 };
	struct resv_notices nt;
	uint8_t buf[256];

	reg(&st, A, 0x1122334455667788ull);
	reg(&st, B, 2);
	acq(&st, A, 0, RESV_WRITE_EXCL, 0x1122334455667788ull, 0, &nt);
	memset(buf, 0xee, sizeof(buf));
	ck_assert_uint_eq(resv_report(&st, buf, 100), 192);
	ck_assert_uint_eq(get_le32(buf), st.gen);
	ck_assert_uint_eq(buf[4], RESV_WRITE_EXCL);
	ck_assert_uint_eq(get_le16(buf + 5), 2);
	ck_assert_uint_eq(get_le16(buf + 64), 0xffff);
	ck_assert_uint_eq(buf[66], 1);			/* holder */
	ck_assert_uint_eq(get_le64(buf + 72), 0x1122334455667788ull);
	ck_assert_mem_eq(buf + 80, A, 16);
	ck_assert_uint_eq(buf[99], 0);
	ck_assert_uint_eq(buf[100], 0xee);		/* nothing past len */
}
END_TEST

static char dir[64];

/* Under $TMPDIR, like the other tests. */
static void
tmp_dir(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/test_reservation.XXXXXX",
	    t && *t && strlen(t) < 32 ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
path_in_dir(char *p, size_t len, const char *name)
{
	snprintf(p, len, "%s/%s", dir, name);
}

static void
write_file(const char *p, const char *text)
{
	FILE *fp = fopen(p, "w");

	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
}

START_TEST(test_state_file)
{
	struct resv_state st = { 0 }, back;
	struct resv_notices nt;
	char p[128], err[256];

	tmp_dir();
	path_in_dir(p, sizeof(p), "ns.resv");
	ck_assert_int_eq(resv_state_load(p, &back, err, sizeof(err)), 0);
	ck_assert(!back.ptpl);
	reg(&st, A, 1);
	reg(&st, B, 0xffffffffffffffffull);
	acq(&st, B, 0, RESV_EXCL_ACCESS_REG_ONLY, 0xffffffffffffffffull, 0, &nt);
	st.ptpl = true;
	ck_assert_int_eq(resv_state_save(p, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(resv_state_load(p, &back, err, sizeof(err)), 0);
	ck_assert_int_eq(back.gen, st.gen);
	ck_assert_int_eq(back.rtype, st.rtype);
	ck_assert_mem_eq(back.holder, B, 16);
	ck_assert_int_eq(back.nregs, 2);
	ck_assert_mem_eq(back.regs, st.regs, sizeof(st.regs[0]) * 2);
	ck_assert(back.ptpl);
	/* PTPL off: the file goes. */
	st.ptpl = false;
	ck_assert_int_eq(resv_state_save(p, &st, err, sizeof(err)), 0);
	ck_assert_int_ne(access(p, F_OK), 0);
	rmdir(dir);
}
END_TEST

START_TEST(test_state_file_bad)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "", ":0: empty file" },
		{ "nvmfd-reservations 2\n", ":1: not a reservation" },
		{ "nvmfd-reservations 1\ngen x\n", ":2: not a valid line" },
		{ "nvmfd-reservations 1\ngen 4294967296\n", ":2: not a valid" },
		{ "nvmfd-reservations 1\ntype 7 "
		    "0a000000000000000000000000000000\n", ":2: not a valid" },
		{ "nvmfd-reservations 1\nreg 0a00 0000000000000001\n",
		    ":2: not a valid" },
		{ "nvmfd-reservations 1\nreg 0a000000000000000000000000000000 "
		    "0000000000000000\n", ":2: not a valid" },
		{ "nvmfd-reservations 1\nreg 0a000000000000000000000000000000 "
		    "00000000000000zz\n", ":2: not a valid" },
		{ "nvmfd-reservations 1\nreg 0a000000000000000000000000000000 "
		    "0000000000000001\nreg 0a000000000000000000000000000000 "
		    "0000000000000002\n", ":3: host" },
		{ "nvmfd-reservations 1\ntype 1 "
		    "0b000000000000000000000000000000\nreg "
		    "0a000000000000000000000000000000 0000000000000001\n",
		    ":4: the holder is not a registrant" },
		{ "nvmfd-reservations 1\nreg 0a000000000000000000000000000000 "
		    "0000000000000001 extra\n", ":2: not a valid" },
	};
	struct resv_state st;
	char p[128], err[256];

	tmp_dir();
	path_in_dir(p, sizeof(p), "bad.resv");
	for (size_t i = 0; i < nitems(bad); i++) {
		write_file(p, bad[i].text);
		ck_assert_int_eq(resv_state_load(p, &st, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, bad[i].why) != NULL, "case %zu: %s",
		    i, err);
		ck_assert_int_eq(st.nregs, 0);
	}
	unlink(p);
	rmdir(dir);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("reservation");
	TCase *tc = tcase_create("reservation");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_access_table);
	tcase_add_test(tc, test_roles);
	tcase_add_test(tc, test_register);
	tcase_add_test(tc, test_acquire_release);
	tcase_add_test(tc, test_preempt);
	tcase_add_test(tc, test_unregister_holder);
	tcase_add_test(tc, test_report);
	tcase_add_test(tc, test_state_file);
	tcase_add_test(tc, test_state_file_bad);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
