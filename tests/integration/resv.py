#!/usr/bin/env python3
"""resv.py --port N --nqn NQN --phase first|restarted: NVMe reservations
against nvmfd, from three hosts (A, B, C: fixed host NQNs and host IDs) of
nvmf_client.py, A with two controllers.

first: Identify (ONCS, RESCAP); Report needs EDS; register, the access of
holder, registrant and other host for reads and writes under each of the
six types, a second controller of A sharing A's registration; preempt and
abort, which waits for A's earlier write, with A's notification (AER and
log page 80h); the notification mask
and the persistence features; bad fields.  It ends with PTPL on, B holding
a Write Exclusive reservation and C registered.
restarted: after nvmfd was killed (SIGKILL) and started again, the same
state is back, and A is still fenced; then clear, and PTPL off; then two
Preempt and Aborts at once, both waiting for an earlier write.

Prints "ok - NAME" or "not ok - NAME: DETAIL"; exits 1 on any failure.
"""
import argparse
import os
import struct
import sys
import time
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nvmf_client import R2T, Timeout, open_admin, open_io  # noqa: E402

BS = 512
NSID = 1
REGISTER, REPORT, ACQUIRE, RELEASE = 0x0D, 0x0E, 0x11, 0x15
CONFLICT, INVALID_FIELD, SGL_LEN, HOSTID_INCONSISTENT = 0x83, 0x02, 0x0F, 0x18
FEAT_MASK, FEAT_PTPL = 0x82, 0x83
ADM_GET_FEATURES, ADM_AER = 0x0A, 0x0C
AER_RESV = 0x00800006


def host(name):
    u = uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.resv.nvmfd.invalid")
    return f"nqn.2014-08.org.nvmexpress:uuid:{u}", u.bytes


KEYS = {"A": 0xA1A1, "B": 0xB2B2, "C": 0xC3C3}
failures = 0


def result(name, err=None):
    global failures
    if err is None:
        print(f"ok - {name}")
    else:
        failures += 1
        print(f"not ok - {name}: {err}")


def want(cpl, sc, what, sct=0):
    if cpl.sc != sc or cpl.sct != sct:
        raise AssertionError(f"{what}: expected SCT {sct} SC {sc:#04x}, got "
                             f"{cpl}")
    return cpl


class H:
    """One host: an admin queue and an I/O queue of one controller."""

    def __init__(self, a, name):
        nqn, hid = host(name)
        self.name, self.hostid = name, hid
        self.adm = open_admin(a.addr, a.port, a.nqn, hostnqn=nqn, hostid=hid)
        self.io = open_io(self.adm, a.addr, a.port, a.nqn)

    def close(self):
        self.io.close()
        self.adm.close()

    def register(self, action, crkey, nrkey, iekey=False, cptpl=0):
        return self.io.cmd(REGISTER, nsid=NSID,
                           data_out=struct.pack("<QQ", crkey, nrkey),
                           cdw10=action | iekey << 3 | cptpl << 30)

    def acquire(self, action, rtype, crkey, prkey=0):
        return self.io.cmd(ACQUIRE, nsid=NSID,
                           data_out=struct.pack("<QQ", crkey, prkey),
                           cdw10=action | rtype << 8)

    def release(self, action, rtype, crkey):
        return self.io.cmd(RELEASE, nsid=NSID, data_out=struct.pack("<Q", crkey),
                           cdw10=action | rtype << 8)

    def held_write(self, lba=64):
        """A write the target admitted and waits on for its data (R2T in
        hand); finish_write() sends the data and checks the completion."""
        cid = self.io.submit(0x01, nsid=NSID, data_out=b"\xa5" * 8 * BS,
                             inline=False, **self.io.rw_fields(lba, 8))
        return cid, self.io.expect_pdu(R2T)

    def finish_write(self, held):
        self.io._answer_r2t(held[1])
        ok(self.io.wait(held[0]), f"{self.name}'s earlier write")

    def preempt_abort(self, prkey):
        """Send Preempt and Abort (Write Exclusive); returns its CID."""
        return self.io.submit(ACQUIRE, nsid=NSID, cdw10=2 | 1 << 8,
                              data_out=struct.pack("<QQ", KEYS[self.name],
                                                   prkey))

    def still_pending(self, cid, what):
        try:
            cpl = self.io.wait(cid, timeout=0.3)
        except Timeout:
            return
        raise AssertionError(f"{what} done ({cpl}) while an earlier write "
                             "waits for its data")

    def report(self, length=4096, eds=True):
        return self.io.cmd(REPORT, nsid=NSID, read_len=length,
                           cdw10=length // 4 - 1, cdw11=int(eds))

    def write(self, lba=8):
        return self.io.write(NSID, lba, bytes([lba & 0xff]) * BS)

    def read(self, lba=8):
        return self.io.read(NSID, lba, 1)


def parse_report(data):
    gen, rtype, nregs, ptpls = struct.unpack_from("<IBH2xB", data)
    regs = {}
    for i in range(nregs):
        cntlid, rcsts, key = struct.unpack_from("<HB5xQ", data, 64 + 64 * i)
        hid = bytes(data[64 + 64 * i + 16:64 + 64 * i + 32])
        regs[hid] = (key, rcsts & 1, cntlid)
    return gen, rtype, regs, ptpls


def ok(cpl, what):
    return want(cpl, 0, what)


# Reads and writes allowed, by type: (holder, registrant, other).
ACCESS = {
    1: ((1, 1), (1, 0), (1, 0)),
    2: ((1, 1), (0, 0), (0, 0)),
    3: ((1, 1), (1, 1), (1, 0)),
    4: ((1, 1), (1, 1), (0, 0)),
    5: ((1, 1), (1, 1), (1, 0)),
    6: ((1, 1), (1, 1), (0, 0)),
}


def check_access(rtype, who):
    for role, h in zip(("holder", "registrant", "other"), who):
        r, w = ACCESS[rtype][("holder", "registrant", "other").index(role)]
        want(h.read(), 0 if r else CONFLICT, f"type {rtype} {role} read")
        want(h.write(), 0 if w else CONFLICT, f"type {rtype} {role} write")


def first(a):
    A, B, C = H(a, "A"), H(a, "B"), H(a, "C")
    try:
        def t_identify():
            d = A.adm.identify(0x01).data
            if not struct.unpack_from("<H", d, 520)[0] & 1 << 5:
                raise AssertionError("ONCS lacks reservations")
            ns = A.adm.identify(0x00, nsid=NSID).data
            if ns[31] != 0xFF:
                raise AssertionError(f"RESCAP {ns[31]:#x}, expected 0xff")

        def t_eds():
            want(A.report(eds=False), HOSTID_INCONSISTENT, "EDS=0")
            want(A.io.cmd(REPORT, nsid=NSID, read_len=64, cdw10=2047,
                          cdw11=1), SGL_LEN, "NUMD past the buffer")

        def t_register():
            for h in (A, B, C):
                ok(h.register(0, 0, KEYS[h.name]), f"{h.name} registers")
            want(A.register(0, 0, 0x1234), CONFLICT, "register another key")
            ok(A.register(0, 0, KEYS["A"]), "register the same key again")
            gen, rtype, regs, _ = parse_report(A.report().data)
            if rtype != 0 or len(regs) != 3 or regs[A.hostid][0] != KEYS["A"]:
                raise AssertionError(f"report: type {rtype} regs {regs}")
            want(C.register(1, 0x999, 0), CONFLICT, "unregister, wrong key")
            ok(C.register(1, KEYS["C"], 0), "C unregisters")

        def t_types():
            # A holds; B registered; C registers not.
            for rtype in range(1, 7):
                ok(A.acquire(0, rtype, KEYS["A"]), f"acquire type {rtype}")
                want(B.acquire(0, rtype, KEYS["B"]),
                     0 if rtype >= 5 else CONFLICT, "B acquires")
                check_access(rtype, (A, B, C))
                _, got, regs, _ = parse_report(B.report().data)
                if got != rtype or regs[A.hostid][1] != 1 or \
                        regs[B.hostid][1] != (rtype >= 5):
                    raise AssertionError(f"report under type {rtype}: {regs}")
                ok(A.release(0, rtype, KEYS["A"]), f"release type {rtype}")

        def t_shared():
            # A second controller of host A: the same registration.
            A2 = H(a, "A")
            try:
                ok(A.acquire(0, 2, KEYS["A"]), "A takes exclusive access")
                ok(A2.write(), "A's second controller writes")
                want(B.write(), CONFLICT, "B writes")
                ok(A2.release(0, 2, KEYS["A"]), "released from the other")
                ok(B.write(), "B writes after the release")
            finally:
                A2.close()

        def t_preempt():
            ok(A.acquire(0, 1, KEYS["A"]), "A takes write exclusive")
            aer = A.adm.submit(ADM_AER)
            # A write of A's waits for its data (R2T) across the preemption:
            # Preempt and Abort completes only after it.
            held = A.held_write()
            pa = B.preempt_abort(KEYS["A"])
            B.still_pending(pa, "preempt and abort")
            A.finish_write(held)
            ok(B.io.wait(pa), "B preempts and aborts")
            cpl = A.adm.wait(aer)
            if not cpl.ok or cpl.dw0 != AER_RESV:
                raise AssertionError(f"AER {cpl}")
            log = A.adm.get_log_page(0x80, length=64).data
            count, ltype, avail, nsid = struct.unpack_from("<QBB2xI", log)
            if count < 1 or ltype != 1 or nsid != NSID or avail != 0:
                raise AssertionError(f"log 80h: count {count} type {ltype} "
                                     f"nsid {nsid} available {avail}")
            log = A.adm.get_log_page(0x80, length=64).data
            if log[8] != 0:
                raise AssertionError("log 80h not empty after one read")
            want(A.write(), CONFLICT, "A writes after the preemption")
            ok(A.read(), "A reads after the preemption")
            want(A.release(0, 1, KEYS["A"]), CONFLICT, "A no longer registered")
            _, rtype, regs, _ = parse_report(B.report().data)
            if rtype != 1 or A.hostid in regs or regs[B.hostid][1] != 1:
                raise AssertionError(f"after preempt: type {rtype} {regs}")

        def t_features():
            want(A.adm.set_features(FEAT_MASK, 0x0E), 0x0B, "mask, NSID 0")
            ok(A.adm.cmd(0x09, nsid=NSID, cdw10=FEAT_MASK, cdw11=0x0E),
               "mask all notices")
            cpl = A.adm.cmd(ADM_GET_FEATURES, nsid=NSID, cdw10=FEAT_MASK)
            if not cpl.ok or cpl.dw0 != 0x0E:
                raise AssertionError(f"mask read back: {cpl}")
            want(A.adm.cmd(0x09, nsid=NSID, cdw10=FEAT_MASK, cdw11=1),
                 INVALID_FIELD, "reserved mask bit")
            want(A.adm.cmd(0x09, nsid=99, cdw10=FEAT_PTPL, cdw11=1), 0x0B,
                 "PTPL of a missing namespace")
            cpl = A.adm.cmd(ADM_GET_FEATURES, cdw10=0x81, cdw11=1, read_len=16)
            if not cpl.ok or cpl.data != A.hostid:
                raise AssertionError(f"Host Identifier: {cpl} {cpl.data!r}")
            want(A.adm.cmd(ADM_GET_FEATURES, cdw10=0x81, read_len=16),
                 INVALID_FIELD, "Host Identifier without EXHID")
            ok(A.adm.cmd(0x09, nsid=NSID, cdw10=FEAT_PTPL, cdw11=1), "PTPL on")
            cpl = A.adm.cmd(ADM_GET_FEATURES, nsid=NSID, cdw10=FEAT_PTPL)
            if not cpl.ok or cpl.dw0 != 1:
                raise AssertionError(f"PTPL read back: {cpl}")

        def t_bad():
            ok(A.register(0, 0, KEYS["A"]), "A registers again")
            for rtype in (0, 7, 0xFF):
                want(A.acquire(0, rtype, KEYS["A"]), INVALID_FIELD,
                     f"acquire RTYPE {rtype}")
            want(A.acquire(3, 1, KEYS["A"]), INVALID_FIELD, "acquire action 3")
            want(A.register(3, KEYS["A"], 5), INVALID_FIELD, "register action 3")
            want(A.register(0, 0, 0), INVALID_FIELD, "register key 0")
            want(A.register(2, KEYS["A"], 5, cptpl=1), INVALID_FIELD, "CPTPL 1")
            want(A.release(2, 1, KEYS["A"]), INVALID_FIELD, "release action 2")
            want(A.release(0, 9, KEYS["A"]), INVALID_FIELD, "release RTYPE 9")
            want(A.acquire(0, 1, 0x5555), CONFLICT, "acquire, wrong key")
            want(A.acquire(1, 1, KEYS["A"], 0x7777), CONFLICT,
                 "preempt, nobody has that key")
            want(A.io.cmd(REGISTER, nsid=NSID, data_out=b"\0" * 8), SGL_LEN,
                 "register with 8 bytes")
            want(A.io.cmd(ACQUIRE, nsid=NSID, data_out=b"", cdw10=1 << 8),
                 SGL_LEN, "acquire without data")
            want(A.io.cmd(REGISTER, nsid=77, data_out=b"\0" * 16), 0x0B,
                 "a missing namespace")
            ok(A.register(1, KEYS["A"], 0), "A unregisters")

        def t_leave():
            ok(C.register(0, 0, KEYS["C"]), "C registers")
            gen, rtype, regs, ptpls = parse_report(C.report().data)
            if not ptpls or rtype != 1 or len(regs) != 2:
                raise AssertionError(f"before restart: {rtype} {regs} {ptpls}")
            print(f"# state left: gen {gen}, type {rtype}, 2 registrants")

        for name, fn in (("identify", t_identify), ("report needs EDS", t_eds),
                         ("register", t_register), ("six types", t_types),
                         ("controllers of one host", t_shared),
                         ("preempt and abort", t_preempt),
             ("features 81h, 82h, 83h", t_features),
                         ("bad fields", t_bad), ("state to keep", t_leave)):
            try:
                fn()
                result(name)
            except Exception as e:      # noqa: BLE001 (report, go on)
                result(name, f"{type(e).__name__}: {e}")
    finally:
        for h in (A, B, C):
            h.close()


def restarted(a):
    A, B, C = H(a, "A"), H(a, "B"), H(a, "C")
    try:
        def t_back():
            gen, rtype, regs, ptpls = parse_report(A.report().data)
            if not ptpls or rtype != 1 or set(regs) != {B.hostid, C.hostid} \
                    or regs[B.hostid] [:2] != (KEYS["B"], 1):
                raise AssertionError(f"type {rtype} regs {regs} PTPL {ptpls}")
            want(A.write(), CONFLICT, "A writes")
            want(C.write(), CONFLICT, "C (registrant) writes")
            ok(B.write(), "B writes")
            cpl = A.adm.cmd(ADM_GET_FEATURES, nsid=NSID, cdw10=FEAT_PTPL)
            if not cpl.ok or cpl.dw0 != 1:
                raise AssertionError(f"PTPL: {cpl}")

        def t_clear():
            aer = C.adm.submit(ADM_AER)
            ok(B.release(1, 0, KEYS["B"]), "B clears")
            cpl = C.adm.wait(aer)
            log = C.adm.get_log_page(0x80, length=64).data
            if cpl.dw0 != AER_RESV or log[8] != 3:
                raise AssertionError(f"C: AER {cpl}, log type {log[8]}")
            ok(A.write(), "A writes after the clear")
            ok(B.register(0, 0, KEYS["B"], cptpl=2), "B registers, PTPL off")
            ok(B.register(1, KEYS["B"], 0), "B unregisters")

        def t_two():
            # Two Preempt and Aborts at once: the second waits its turn,
            # and both complete soon after the write they wait for.
            for h in (A, B, C):
                ok(h.register(0, 0, KEYS[h.name]), f"{h.name} registers")
            ok(B.acquire(0, 1, KEYS["B"]), "B acquires")
            held = B.held_write()
            pc = C.preempt_abort(KEYS["B"])
            time.sleep(0.2)
            pa = A.preempt_abort(KEYS["C"])
            C.still_pending(pc, "C's preempt and abort")
            A.still_pending(pa, "A's preempt and abort")
            t0 = time.monotonic()
            B.finish_write(held)
            ok(C.io.wait(pc, timeout=10), "C preempts and aborts B")
            ok(A.io.wait(pa, timeout=10), "A preempts and aborts C")
            if time.monotonic() - t0 > 5:
                raise AssertionError("the preemptions took "
                                     f"{time.monotonic() - t0:.1f} s")
            _, rtype, regs, _ = parse_report(A.report().data)
            if rtype != 1 or set(regs) != {A.hostid}:
                raise AssertionError(f"after both: type {rtype} {regs}")
            ok(A.release(1, 0, KEYS["A"]), "A clears")

        for name, fn in (("state after restart", t_back), ("clear", t_clear),
                         ("two preempt and aborts", t_two)):
            try:
                fn()
                result(name)
            except Exception as e:      # noqa: BLE001
                result(name, f"{type(e).__name__}: {e}")
    finally:
        for h in (A, B, C):
            h.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--nqn", required=True)
    p.add_argument("--phase", choices=("first", "restarted"), required=True)
    a = p.parse_args()
    (first if a.phase == "first" else restarted)(a)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
