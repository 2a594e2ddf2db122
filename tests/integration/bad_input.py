#!/usr/bin/env python3
"""bad_input.py --port N [options]: hostile and malformed input against nvmfd.

Drives a running target over raw NVMe/TCP (nvmf_client.py) and checks that
each bad input gets the specific error the NVMe/TCP and NVMe over Fabrics
specifications call for: a C2HTermReq with the exact FES/FEI followed by the
close of the connection, or a CapsuleResp with the exact status (and for
Connect errors the IATTR/IPO in DW0).  After every case a fresh host must
still be able to connect and do I/O.  A few correct-path cases (in-capsule
and R2T writes read back, digests, discovery log slices) run too.

The target must be configured as bad-input.sh does: an open subsystem
(--open-nqn, any host) and a restricted one (--closed-nqn, only
--allowed-host), each with a RAM namespace 1 of --ns-size bytes in 512-byte
blocks, and a port with the given inline_data_size, maxh2cdata and
max_queue_depth.

Prints "ok - NAME" or "not ok - NAME: DETAIL" per case and a last line
"N passed, M failed"; exits 1 if any case failed.
"""
import argparse
import os
import random
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmf_client as nc                                    # noqa: E402
from nvmf_client import Host, TermReq, open_admin, open_io  # noqa: E402

BS = 512
TIME_BUDGET = 160.0         # seconds for all cases; the rest then fail fast


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def expect_status(cpl, sc, sct=0, dnr=True, ipo=None, iattr=None):
    """Check a completion; dnr=None means either value is acceptable."""
    want = f"SCT {sct:#x} SC {sc:#04x}"
    if dnr is not None:
        want += f" DNR {int(dnr)}"
    if ipo is not None:
        want += f" IATTR {iattr} IPO {ipo}"
    bad = cpl.sc != sc or cpl.sct != sct or (dnr is not None and cpl.dnr != dnr)
    if ipo is not None:
        bad = bad or cpl.ipo != ipo or cpl.iattr != iattr
    if bad:
        got = str(cpl)
        if ipo is not None:
            got += f" (IATTR {cpl.iattr} IPO {cpl.ipo})"
        raise Fail(f"expected {want}, got {got}")


def expect_ok(cpl, what):
    if not cpl.ok:
        raise Fail(f"{what} failed: {cpl}")


def expect_term(h, fes, fei=0, skip=(nc.R2T,)):
    """The target must answer with C2HTermReq FES/FEI and close."""
    try:
        t = h.expect_term(skip=skip)
    except nc.NvmfError as e:
        raise Fail(f"expected C2HTermReq FES {fes} FEI {fei}: "
                   f"{type(e).__name__}: {e}") from None
    if (t.fes, t.fei) != (fes, fei):
        raise Fail(f"expected C2HTermReq FES {fes} FEI {fei}, got FES {t.fes} "
                   f"({nc.fes_name(t.fes)}) FEI {t.fei}")
    return t


def expect_closed(h, what="", timeout=None):
    """The target must close h with nothing more sent (what: a prefix for
    the failure)."""
    try:
        h.expect_closed(timeout)
    except nc.NvmfError as e:
        raise Fail(f"{what}{type(e).__name__}: {e}") from None


def pattern(n, seed):
    return random.Random(seed).randbytes(n)


class Env:
    def __init__(self, a):
        self.addr, self.port = a.addr, a.port
        self.open_nqn, self.closed_nqn = a.open_nqn, a.closed_nqn
        self.allowed_host = a.allowed_host
        self.inline = a.inline_data_size
        self.maxh2cdata = a.maxh2cdata
        self.qdepth = a.max_queue_depth
        self.ns_blocks = a.ns_size // BS
        self.mdts = 1 << 20             # the daemon's default
        self.pid = a.pid
        self.auth_nqn, self.auth_host = a.auth_nqn, a.auth_host
        self.auth_nokey_host = a.auth_nokey_host
        self.auth_key = nc.dhchap_parse(a.auth_key) if a.auth_key else None
        self.auth_ctrl_key = (nc.dhchap_parse(a.auth_ctrl_key)
                              if a.auth_ctrl_key else None)
        self.hosts = []
        self.next_lba = 0

    def track(self, h):
        self.hosts.append(h)
        return h

    def close_all(self):
        for h in self.hosts:
            h.close()
        self.hosts = []

    def lbas(self, n):
        """A private LBA range for a case (wraps around the namespace)."""
        if self.next_lba + n > self.ns_blocks:
            self.next_lba = 0
        lba, self.next_lba = self.next_lba, self.next_lba + n
        return lba

    # Connection helpers; every one is closed after the case.
    def raw(self, **kw):
        return self.track(Host(self.addr, self.port, **kw))

    def ic(self, **kw):
        h = self.raw()
        h.icreq(**kw)
        return h

    def admin(self, nqn=None, **kw):
        return self.track(open_admin(self.addr, self.port, nqn or self.open_nqn,
                                     **kw))

    def io(self, admin, qid=1, sqsize=31, **kw):
        return self.track(open_io(admin, self.addr, self.port, admin.subnqn,
                                  qid=qid, sqsize=sqsize, **kw))

    def pair(self, nqueues=1, sqsize=31, **kw):
        """An enabled controller with one I/O queue: (admin, io)."""
        a = self.admin(**kw)
        got = a.set_num_queues(nqueues)
        check(got >= 1, f"no I/O queues granted ({got})")
        return a, self.io(a, sqsize=sqsize, **kw)


CASES = []


def case(name):
    def reg(fn):
        CASES.append((name, fn))
        return fn
    return reg


def write_read_back(q, lba, nlb):
    """Write nlb random blocks at lba on queue q; they must read back."""
    data = os.urandom(nlb * BS)
    expect_ok(q.write(1, lba, data), "liveness write")
    cpl = q.read(1, lba, nlb)
    expect_ok(cpl, "liveness read")
    check(cpl.data == data, "liveness read returned other data")


def alive(env):
    """A new host connects, writes and reads back: the target still serves."""
    a = b = None
    try:
        a = open_admin(env.addr, env.port, env.open_nqn, timeout=5)
        a.set_num_queues(1)
        b = open_io(a, env.addr, env.port, env.open_nqn)
        write_read_back(b, env.lbas(8), 8)
    finally:
        for h in (b, a):
            if h is not None:
                h.close()


# =================================================================== ICReq

def identify_sqe(cid=1):
    return nc.sqe(nc.ADM_IDENTIFY, cid=cid, cdw10=nc.CNS_CTRL,
                  sgl_desc=nc.sgl(nc.SGL_TRANSPORT, 4096))


@case("CapsuleCmd before ICReq: FES 2 (PDU sequence error)")
def _(env):
    h = env.raw()
    h.send(nc.build_pdu(nc.CAPSULE_CMD, bytes(identify_sqe())))
    expect_term(h, nc.FES_PDU_SEQUENCE)


@case("H2CData before ICReq: FES 2")
def _(env):
    h = env.raw()
    h.send(h.h2c_data_pdu(1, 0, 0, bytes(512)))
    expect_term(h, nc.FES_PDU_SEQUENCE)


@case("ICReq with PFV 1: FES 1 FEI 8")
def _(env):
    h = env.raw()
    h.send(h.icreq_pdu(pfv=1))
    expect_term(h, nc.FES_INVALID_HEADER, 8)


@case("ICReq with HPDA 32: FES 1 FEI 10")
def _(env):
    h = env.raw()
    h.send(h.icreq_pdu(hpda=32))
    expect_term(h, nc.FES_INVALID_HEADER, 10)


@case("ICReq with PLEN 132: FES 1 FEI 4")
def _(env):
    h = env.raw()
    h.send(h.icreq_pdu(plen=132))
    expect_term(h, nc.FES_INVALID_HEADER, 4)


@case("ICReq with HLEN 120: FES 1 FEI 2")
def _(env):
    h = env.raw()
    h.send(h.icreq_pdu(hlen=120))
    expect_term(h, nc.FES_INVALID_HEADER, 2)


@case("second ICReq: FES 2")
def _(env):
    h = env.ic()
    h.send(h.icreq_pdu())
    expect_term(h, nc.FES_PDU_SEQUENCE)


@case("second ICReq after Connect: FES 2")
def _(env):
    h = env.admin()
    h.send(h.icreq_pdu())
    expect_term(h, nc.FES_PDU_SEQUENCE)


# =================================================================== PDU types

for _ptype in (0x05, 0x08, 0x0A, 0x01, 0xFF):
    def _unknown(env, ptype=_ptype):
        h = env.admin()
        h.send(nc.CH.pack(ptype, 0, 24, 0, 24) + bytes(16))
        expect_term(h, nc.FES_INVALID_HEADER, 0)
    case(f"PDU type {_ptype:#04x} from the host: FES 1 FEI 0")(_unknown)


# =================================================================== CapsuleCmd

def admin_identify_capsule(h, **ov):
    return h.capsule(identify_sqe(h.alloc_cid()), **ov)


@case("CapsuleCmd HLEN 64: FES 1 FEI 2")
def _(env):
    h = env.admin()
    h.send(admin_identify_capsule(h, hlen=64))
    expect_term(h, nc.FES_INVALID_HEADER, 2)


@case("CapsuleCmd HDGSTF without negotiated digest: FES 1 FEI 1")
def _(env):
    h = env.admin()
    h.send(admin_identify_capsule(h, flags=nc.F_HDGST))
    expect_term(h, nc.FES_INVALID_HEADER, 1)


@case("CapsuleCmd DDGSTF without data: FES 1 FEI 1")
def _(env):
    h = env.admin(hdgst=True, ddgst=True)
    h.send(admin_identify_capsule(h, flags=nc.F_DDGST))
    expect_term(h, nc.FES_INVALID_HEADER, 1)


@case("CapsuleCmd bad header digest: FES 3")
def _(env):
    h = env.admin(hdgst=True)
    h.send(admin_identify_capsule(h, bad_hdgst=True))
    expect_term(h, nc.FES_HDGST)


@case("CapsuleCmd without HDGSTF when header digest negotiated: FES 1 FEI 1")
def _(env):
    h = env.admin(hdgst=True)
    h.send(admin_identify_capsule(h, hdgst=False))
    expect_term(h, nc.FES_INVALID_HEADER, 1)


def io_write_capsule(h, lba, data, **ov):
    s = nc.sqe(nc.NVM_WRITE, cid=h.alloc_cid(), nsid=1,
               sgl_desc=nc.sgl(nc.SGL_INCAPSULE, len(data)),
               **h.rw_fields(lba, len(data) // BS))
    return h.capsule(s, data, **ov)


@case("CapsuleCmd with data at PDO 64 (< HLEN): FES 1 FEI 3")
def _(env):
    a, q = env.pair()
    q.send(io_write_capsule(q, env.lbas(1), bytes(BS), pdo=64,
                            plen=64 + BS)[:nc.CMD_HLEN])
    expect_term(q, nc.FES_INVALID_HEADER, 3)


@case("CapsuleCmd with data at misaligned PDO 74: FES 1 FEI 3")
def _(env):
    a, q = env.pair()
    q.send(io_write_capsule(q, env.lbas(1), bytes(BS), pdo=74,
                            plen=74 + BS)[:nc.CMD_HLEN])
    expect_term(q, nc.FES_INVALID_HEADER, 3)


@case("CapsuleCmd PLEN 64 < HLEN: FES 1 FEI 4")
def _(env):
    h = env.admin()
    pdu = admin_identify_capsule(h, plen=64)
    h.send(pdu[:64])
    expect_term(h, nc.FES_INVALID_HEADER, 4)


@case("admin CapsuleCmd with 8196 bytes of data (> 8192): FES 5")
def _(env):
    h = env.admin()
    s = nc.sqe(nc.ADM_SET_FEATURES, cid=h.alloc_cid(), cdw10=0x0E,
               sgl_desc=nc.sgl(nc.SGL_INCAPSULE, 8196))
    pdu = h.capsule(s, bytes(8196))
    h.send(pdu[:nc.CMD_HLEN])            # the header alone must be refused
    expect_term(h, nc.FES_DATA_LIMIT)


@case("Connect capsule with 8196 bytes of data (> 8192): FES 5")
def _(env):
    h = env.ic()
    data = nc.connect_data(env.open_nqn, h.hostnqn, h.hostid) + bytes(8196 - 1024)
    s = nc.sqe(nc.OPC_FABRICS, cid=1, fctype=nc.FCTYPE_CONNECT,
               sgl_desc=nc.sgl(nc.SGL_INCAPSULE, len(data)), cdw11=31)
    h.send(h.capsule(s, data)[:nc.CMD_HLEN])
    expect_term(h, nc.FES_DATA_LIMIT)


@case("I/O write of inline_data_size bytes in the capsule succeeds")
def _(env):
    a, q = env.pair()
    lba = env.lbas(env.inline // BS)
    data = pattern(env.inline, 1)
    expect_ok(q.write(1, lba, data), "in-capsule write")
    cpl = q.read(1, lba, env.inline // BS)
    expect_ok(cpl, "read back")
    check(cpl.data == data, "read back other data")


@case("I/O CapsuleCmd with inline_data_size + 512 bytes: FES 5")
def _(env):
    a, q = env.pair()
    data = bytes(env.inline + BS)
    q.send(io_write_capsule(q, env.lbas(len(data) // BS), data)[:nc.CMD_HLEN])
    expect_term(q, nc.FES_DATA_LIMIT)


@case("in-capsule data digest error: Data Transfer Error, queue stays up")
def _(env):
    a, q = env.pair(hdgst=True, ddgst=True)
    lba = env.lbas(8)
    cid = q.alloc_cid()
    s = nc.sqe(nc.NVM_WRITE, cid=cid, nsid=1,
               sgl_desc=nc.sgl(nc.SGL_INCAPSULE, 8 * BS), **q.rw_fields(lba, 8))
    q.register(cid)
    q.send(q.capsule(s, pattern(8 * BS, 2), bad_ddgst=True))
    expect_status(q.wait(cid), 0x04, dnr=False)
    # The queue still works: a good write and read on it.
    data = pattern(8 * BS, 3)
    expect_ok(q.write(1, lba, data), "write after the digest error")
    cpl = q.read(1, lba, 8)
    expect_ok(cpl, "read after the digest error")
    check(cpl.data == data, "read back other data")


# =================================================================== H2CData

def start_r2t_write(q, lba, nbytes):
    """Submit a write whose data goes by R2T; return (cid, R2T PDU)."""
    cid = q.alloc_cid()
    s = nc.sqe(nc.NVM_WRITE, cid=cid, nsid=1,
               sgl_desc=nc.sgl(nc.SGL_TRANSPORT, nbytes),
               **q.rw_fields(lba, nbytes // BS))
    q.send(q.capsule(s))
    r2t = q.expect_pdu(nc.R2T)
    check(r2t.cccid == cid, f"R2T for CID {r2t.cccid}, expected {cid}")
    check((r2t.offset, r2t.length) == (0, nbytes),
          f"R2T R2TO {r2t.offset} R2TL {r2t.length}, expected 0 and {nbytes}")
    return cid, r2t


def h2c_header(q, cid, ttag, datao, datal):
    """Just the header of an H2CData PDU announcing datal bytes."""
    pdu = q.h2c_data_pdu(cid, ttag, datao, bytes(datal))
    return pdu[:nc.DATA_HLEN + (4 if q.hdgst else 0)]


@case("H2CData with an unknown TTAG: FES 1 FEI 10")
def _(env):
    a, q = env.pair()
    cid, r2t = start_r2t_write(q, env.lbas(8), 8 * BS)
    q.send(h2c_header(q, cid, 0xFFFF, 0, 8 * BS))
    expect_term(q, nc.FES_INVALID_HEADER, 10)


@case("H2CData with no R2T outstanding: FES 2")
def _(env):
    a, q = env.pair()
    lba = env.lbas(8)
    cid, r2t = start_r2t_write(q, lba, 8 * BS)
    q.send(q.h2c_data_pdu(cid, r2t.ttag, 0, bytes(8 * BS)))
    q.register(cid)
    expect_ok(q.wait(cid), "R2T write")
    # The same TTAG again: that transfer is over.
    q.send(h2c_header(q, cid, r2t.ttag, 0, 8 * BS))
    expect_term(q, nc.FES_PDU_SEQUENCE)


@case("H2CData with CCCID other than the R2T's: FES 1 FEI 8")
def _(env):
    a, q = env.pair()
    cid, r2t = start_r2t_write(q, env.lbas(8), 8 * BS)
    q.send(h2c_header(q, cid ^ 0x100, r2t.ttag, 0, 8 * BS))
    expect_term(q, nc.FES_INVALID_HEADER, 8)


@case("H2CData DATAO not where the data left off: FES 4")
def _(env):
    a, q = env.pair()
    cid, r2t = start_r2t_write(q, env.lbas(16), 16 * BS)
    q.send(h2c_header(q, cid, r2t.ttag, 4096, 4096))
    expect_term(q, nc.FES_DATA_OUT_OF_RANGE)


@case("H2CData DATAO skips ahead after a first PDU: FES 4")
def _(env):
    a, q = env.pair()
    cid, r2t = start_r2t_write(q, env.lbas(32), 32 * BS)
    q.send(q.h2c_data_pdu(cid, r2t.ttag, 0, bytes(4096), last=False))
    q.send(h2c_header(q, cid, r2t.ttag, 8192, 4096))
    expect_term(q, nc.FES_DATA_OUT_OF_RANGE)


@case("H2CData DATAL beyond the R2T: FES 4")
def _(env):
    a, q = env.pair()
    cid, r2t = start_r2t_write(q, env.lbas(8), 8 * BS)
    q.send(h2c_header(q, cid, r2t.ttag, 0, 8192))
    expect_term(q, nc.FES_DATA_OUT_OF_RANGE)


@case("H2CData DATAL > MAXH2CDATA: FES 5")
def _(env):
    a, q = env.pair()
    n = 2 * env.maxh2cdata
    cid, r2t = start_r2t_write(q, env.lbas(n // BS), n)
    q.send(h2c_header(q, cid, r2t.ttag, 0, env.maxh2cdata + 4))
    expect_term(q, nc.FES_DATA_LIMIT)


@case("H2CData without data (PLEN = HLEN): FES 1 FEI 4")
def _(env):
    a, q = env.pair()
    cid, r2t = start_r2t_write(q, env.lbas(8), 8 * BS)
    q.send(q.h2c_data_pdu(cid, r2t.ttag, 0, b"", datal=0))
    expect_term(q, nc.FES_INVALID_HEADER, 4)


@case("host closes in the middle of an H2CData payload")
def _(env):
    a, q = env.pair()
    n = 4 * env.maxh2cdata
    cid, r2t = start_r2t_write(q, env.lbas(n // BS), n)
    pdu = q.h2c_data_pdu(cid, r2t.ttag, 0, bytes(env.maxh2cdata), last=False)
    q.send(pdu[:len(pdu) // 2])
    time.sleep(0.05)
    q.close()
    expect_ok(a.keep_alive(), "Keep Alive on the admin queue afterwards")


@case("host closes in the middle of a PDU header, before and after ICReq")
def _(env):
    h = env.raw()
    h.send(h.icreq_pdu()[:5])
    h.close()
    h = env.ic()
    h.send(h.capsule(identify_sqe())[:40])
    time.sleep(0.05)
    h.close()


@case("PDUs delivered a few bytes at a time")
def _(env):
    def trickle(h, data, step=7):
        for i in range(0, len(data), step):
            h.send(data[i:i + step])
    h = env.raw()
    trickle(h, h.icreq_pdu(hdgst=True, ddgst=True), 3)
    icresp = h.expect_pdu(nc.ICRESP)
    check(icresp.raw[11] == 3, f"ICResp DGST {icresp.raw[11]:#x}, expected 3")
    h.hdgst = h.ddgst = True
    h.maxh2cdata = icresp.u32(12)
    cid = h.alloc_cid()
    data = nc.connect_data(env.open_nqn, h.hostnqn, h.hostid)
    s = nc.sqe(nc.OPC_FABRICS, cid=cid, fctype=nc.FCTYPE_CONNECT,
               sgl_desc=nc.sgl(nc.SGL_INCAPSULE, len(data)), cdw11=31)
    h.register(cid)
    trickle(h, h.capsule(s, data), 61)
    cpl = h.wait(cid)
    expect_ok(cpl, "Connect sent in pieces")
    h.cntlid, h.qid, h.subnqn = cpl.dw0 & 0xFFFF, 0, env.open_nqn
    h.enable()
    check(h.set_num_queues(1) >= 1, "no I/O queue")
    # The I/O queue: an in-capsule write and an R2T write, trickled.
    q = env.io(h, hdgst=True, ddgst=True)
    lba = env.lbas(64)
    small = pattern(4 * BS, 9)
    cid = q.alloc_cid()
    s = nc.sqe(nc.NVM_WRITE, cid=cid, nsid=1,
               sgl_desc=nc.sgl(nc.SGL_INCAPSULE, len(small)),
               **q.rw_fields(lba, 4))
    q.register(cid)
    trickle(q, q.capsule(s, small), 13)
    expect_ok(q.wait(cid), "trickled in-capsule write")
    big = pattern(2 * q.maxh2cdata, 10)
    cid, r2t = start_r2t_write(q, lba + 4, len(big))
    out = b"".join(q.h2c_data_pdu(cid, r2t.ttag, off,
                                  big[off:off + q.maxh2cdata],
                                  last=off + q.maxh2cdata >= len(big))
                   for off in range(0, len(big), q.maxh2cdata))
    q.register(cid)
    trickle(q, out[:300], 11)
    trickle(q, out[300:], 4096 + 5)
    expect_ok(q.wait(cid), "trickled R2T write")
    cpl = q.read(1, lba, 4 + len(big) // BS)
    expect_ok(cpl, "read back")
    check(cpl.data == small + big, "read back other data")


@case("PDUs delivered one byte at a time: ICReq, Connect, a write, a read")
def _(env):
    h = env.raw()
    for b in h.icreq_pdu():
        h.send(bytes((b,)))
    h.expect_pdu(nc.ICRESP)
    cid = h.alloc_cid()
    data = nc.connect_data(env.open_nqn, h.hostnqn, h.hostid)
    s = nc.sqe(nc.OPC_FABRICS, cid=cid, fctype=nc.FCTYPE_CONNECT,
               sgl_desc=nc.sgl(nc.SGL_INCAPSULE, len(data)), cdw11=31)
    h.register(cid)
    for b in h.capsule(s, data):
        h.send(bytes((b,)))
    cpl = h.wait(cid)
    expect_ok(cpl, "Connect sent a byte at a time")
    h.cntlid, h.qid, h.subnqn = cpl.dw0 & 0xFFFF, 0, env.open_nqn
    h.enable()
    check(h.set_num_queues(1) >= 1, "no I/O queue")
    q = env.io(h)
    lba = env.lbas(2)
    small = pattern(2 * BS, 21)
    cid = q.alloc_cid()
    s = nc.sqe(nc.NVM_WRITE, cid=cid, nsid=1,
               sgl_desc=nc.sgl(nc.SGL_INCAPSULE, len(small)),
               **q.rw_fields(lba, 2))
    q.register(cid)
    for b in q.capsule(s, small):
        q.send(bytes((b,)))
    expect_ok(q.wait(cid), "write sent a byte at a time")
    cpl = q.read(1, lba, 2)
    check(cpl.data == small, "read back other data")


def reset(h):
    """Close with an RST (SO_LINGER 0), not a FIN."""
    h.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                      struct.pack("ii", 1, 0))
    h.close()


@case("host resets (RST) in the middle of a capsule and of an H2CData payload")
def _(env):
    a = env.admin()
    cap = admin_identify_capsule(a)
    a.send(cap[:40])
    reset(a)
    a, q = env.pair()
    cid, r2t = start_r2t_write(q, env.lbas(64), 32 * BS)
    pdu = q.h2c_data_pdu(cid, r2t.ttag, 0, pattern(32 * BS, 22))
    q.send(pdu[:len(pdu) // 2])
    reset(q)
    reset(a)


@case("host half-closes with commands outstanding: answers or closes, no hang")
def _(env):
    a, q = env.pair()
    lba = env.lbas(8)
    for i in range(4):
        q.submit(nc.NVM_WRITE, nsid=1, data_out=pattern(2 * BS, 30 + i),
                 **q.rw_fields(lba + 2 * i, 2))
        q.submit(nc.NVM_READ, nsid=1, read_len=2 * BS,
                 **q.rw_fields(lba + 2 * i, 2))
    q.sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 5
    while True:
        check(time.monotonic() < deadline,
              "still open 5 s after the host's FIN")
        try:
            pdu = q.recv_raw_pdu(timeout=deadline - time.monotonic())
        except nc.Closed:
            break
        except nc.NvmfError as e:
            raise Fail(f"{type(e).__name__}: {e}") from None
        check(pdu.type in (nc.CAPSULE_RESP, nc.C2H_DATA),
              f"unexpected {pdu!r} after the host's FIN")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@case("a host that stops reading: bounded memory, other hosts still served")
def _(env):
    a = env.admin()
    a.set_num_queues(1)
    q = env.io(a, rcvbuf=4096, sqsize=env.qdepth - 1)
    lba = env.lbas(env.mdts // BS)
    before = rss_kib(env.pid) if env.pid else 0
    # Every slot a read of MDTS, none of it read: the target's sends block.
    for _ in range(env.qdepth - 1):
        q.submit(nc.NVM_READ, nsid=1, read_len=env.mdts,
                 **q.rw_fields(lba, env.mdts // BS))
    time.sleep(1.0)
    grown = (rss_kib(env.pid) - before) if env.pid else 0
    check(grown < 64 * 1024, f"nvmfd grew by {grown} KiB for one stuck host")
    # Another host on the same target meanwhile: served at once.
    a2, q2 = env.pair()
    data = pattern(4 * BS, 40)
    t0 = time.monotonic()
    expect_ok(q2.write(1, env.lbas(4), data), "another host's write")
    check(time.monotonic() - t0 < 2, "another host waited behind the stuck one")


@case("H2CTermReq: the target closes without a response")
def _(env):
    h = env.admin()
    h.send(nc.term_pdu(nc.H2C_TERM, nc.FES_INVALID_HEADER, 0))
    expect_closed(h)


@case("H2CTermReq on an I/O queue with a write waiting for data: closes")
def _(env):
    a, q = env.pair()
    start_r2t_write(q, env.lbas(8), 8 * BS)
    q.send(nc.term_pdu(nc.H2C_TERM, nc.FES_DATA_OUT_OF_RANGE, 0))
    expect_closed(q)


@case("C2HTermReq waits for a partly sent C2HData and nothing follows it")
def _(env):
    a = env.admin()
    a.set_num_queues(1)
    q = env.io(a, rcvbuf=4096)
    n = 1 << 20
    lba = env.lbas(n // BS)
    data = bytes(range(251)) * (n // 251) + bytes(n % 251)
    expect_ok(q.write(1, lba, data, inline=False), "1 MiB write")
    # More than the socket buffers hold: the target's sends block mid-PDU.
    cids = [q.submit(nc.NVM_READ, nsid=1, read_len=n, **q.rw_fields(lba, n // BS))
            for _ in range(4)]
    time.sleep(0.2)
    q.send(nc.CH.pack(0x08, 0, 24, 0, 24) + bytes(16))
    time.sleep(0.1)
    got = {cid: bytearray() for cid in cids}
    while True:
        try:
            pdu = q.recv_raw_pdu()
        except nc.NvmfError as e:
            raise Fail(f"before the C2HTermReq: {type(e).__name__}: {e}") from None
        if pdu.type == nc.C2H_DATA:
            check(pdu.cccid in got and pdu.offset == len(got[pdu.cccid]),
                  f"C2HData CCCID {pdu.cccid} DATAO {pdu.offset}")
            got[pdu.cccid] += pdu.data
            check(got[pdu.cccid] == data[:len(got[pdu.cccid])],
                  f"CID {pdu.cccid}: C2HData payload corrupted (a PDU inside it?)")
        elif pdu.type == nc.CAPSULE_RESP:
            cpl = nc.Completion(pdu.raw[8:24])
            check(cpl.cid in got and len(got[cpl.cid]) == n,
                  f"CapsuleResp for CID {cpl.cid} before all its data")
        elif pdu.type == nc.C2H_TERM:
            break
        else:
            raise Fail(f"unexpected {pdu!r}")
    check((pdu.u16(8), pdu.u32(10)) == (nc.FES_INVALID_HEADER, 0),
          f"C2HTermReq FES {pdu.u16(8)} FEI {pdu.u32(10)}, expected 1 and 0")
    expect_closed(q, "after the C2HTermReq: ")


@case("more commands than SQSIZE outstanding: FES 2")
def _(env):
    a, q = env.pair(sqsize=3)           # 4 entries, at most 3 outstanding
    base = env.lbas(8)
    out = bytearray()
    for i in range(5):
        s = nc.sqe(nc.NVM_WRITE, cid=q.alloc_cid(), nsid=1,
                   sgl_desc=nc.sgl(nc.SGL_TRANSPORT, BS), **q.rw_fields(base + i, 1))
        out += q.capsule(s)
    q.send(out)                         # no data for any R2T
    expect_term(q, nc.FES_PDU_SEQUENCE)


# =================================================================== Connect

def connect_fail(env, **kw):
    h = env.ic()
    return h.connect(kw.pop("subnqn", env.open_nqn), **kw)


@case("Connect to an unknown SUBNQN: SCT 1 SC 0x82 IATTR 1 IPO 256, no DNR")
def _(env):
    # Retryable: the subsystem may come (back) later.
    cpl = connect_fail(env, subnqn=env.open_nqn + "-nonexistent")
    expect_status(cpl, 0x82, 1, dnr=False, ipo=256, iattr=1)


@case("Connect with an empty SUBNQN: SCT 1 SC 0x82 IATTR 1 IPO 256, DNR")
def _(env):
    expect_status(connect_fail(env, subnqn=""), 0x82, 1, ipo=256, iattr=1)


@case("Connect with an empty HOSTNQN to an any-host subsystem: admin and I/O work")
def _(env):
    a = env.admin(hostnqn="")
    check(a.set_num_queues(1) >= 1, "no I/O queue granted")
    q = env.io(a)
    expect_ok(a.identify(nc.CNS_CTRL), "Identify Controller")
    lba = env.lbas(1)
    data = pattern(BS, 61)
    expect_ok(q.write(1, lba, data), "Write")
    cpl = q.read(1, lba, 1)
    expect_ok(cpl, "Read")
    check(cpl.data == data, "read back what was written")


@case("Connect with an empty HOSTNQN to an allow-listed subsystem: SCT 1 SC 0x84, DNR")
def _(env):
    cpl = connect_fail(env, subnqn=env.closed_nqn, hostnqn="")
    expect_status(cpl, 0x84, 1, ipo=512, iattr=1)


@case("Connect from a host not allowed: SCT 1 SC 0x84 IATTR 1 IPO 512")
def _(env):
    cpl = connect_fail(env, subnqn=env.closed_nqn)
    expect_status(cpl, 0x84, 1, ipo=512, iattr=1)


@case("Connect from the allowed host to the restricted subsystem works")
def _(env):
    a = env.admin(env.closed_nqn, hostnqn=env.allowed_host)
    cpl = a.identify(nc.CNS_CTRL)
    expect_ok(cpl, "Identify Controller")
    sub = cpl.data[768:1024].rstrip(b"\0").decode()
    check(sub == env.closed_nqn, f"Identify SUBNQN {sub!r}")


@case("Connect with RECFMT 1: SCT 1 SC 0x80")
def _(env):
    expect_status(connect_fail(env, recfmt=1), 0x80, 1)


@case("admin Connect with SQSIZE 0: SCT 1 SC 0x82 IATTR 0 IPO 44")
def _(env):
    expect_status(connect_fail(env, sqsize=0), 0x82, 1, ipo=44, iattr=0)


@case("Connect with SUBNQN not NUL-terminated: SCT 1 SC 0x82 IATTR 1 IPO 256")
def _(env):
    h = env.ic()
    sub = (env.open_nqn.encode() + b"x" * 256)[:256]
    cpl = h.connect(None, data=nc.connect_data(sub, h.hostnqn, h.hostid))
    expect_status(cpl, 0x82, 1, ipo=256, iattr=1)


@case("Connect with HOSTNQN not NUL-terminated: SCT 1 SC 0x82 IATTR 1 IPO 512")
def _(env):
    h = env.ic()
    host = (h.hostnqn.encode() + b"y" * 256)[:256]
    cpl = h.connect(None, data=nc.connect_data(env.open_nqn, host, h.hostid))
    expect_status(cpl, 0x82, 1, ipo=512, iattr=1)


@case("admin Connect with CNTLID other than 0xFFFF: SCT 1 SC 0x82 IATTR 1 IPO 16")
def _(env):
    expect_status(connect_fail(env, cntlid=1), 0x82, 1, ipo=16, iattr=1)


@case("I/O Connect with SQSIZE > MQES: SCT 1 SC 0x82 IATTR 0 IPO 44")
def _(env):
    a = env.admin()
    a.set_num_queues(1)
    cap = a.prop_get(nc.REG_CAP)
    expect_ok(cap, "Property Get CAP")
    mqes = cap.value & 0xFFFF
    check(mqes + 1 == env.qdepth, f"CAP.MQES {mqes}, configured depth {env.qdepth}")
    h = env.ic()
    cpl = h.connect(env.open_nqn, qid=1, sqsize=mqes + 1, cntlid=a.cntlid,
                    hostnqn=a.hostnqn, hostid=a.hostid)
    expect_status(cpl, 0x82, 1, ipo=44, iattr=0)
    h2 = env.ic()
    cpl = h2.connect(env.open_nqn, qid=1, sqsize=mqes, cntlid=a.cntlid,
                     hostnqn=a.hostnqn, hostid=a.hostid)
    expect_ok(cpl, "I/O Connect with SQSIZE = MQES")


@case("I/O Connect with an unknown CNTLID: SCT 1 SC 0x82 IATTR 1 IPO 16")
def _(env):
    a = env.admin()
    a.set_num_queues(1)
    h = env.ic()
    cpl = h.connect(env.open_nqn, qid=1, cntlid=a.cntlid ^ 0x4000,
                    hostnqn=a.hostnqn, hostid=a.hostid)
    expect_status(cpl, 0x82, 1, ipo=16, iattr=1)


@case("I/O Connect with a QID already connected: SCT 1 SC 0x82 IATTR 0 IPO 42")
def _(env):
    a, q = env.pair()
    h = env.ic()
    cpl = h.connect(env.open_nqn, qid=1, cntlid=a.cntlid, hostnqn=a.hostnqn,
                    hostid=a.hostid)
    expect_status(cpl, 0x82, 1, ipo=42, iattr=0)
    expect_ok(q.read(1, 0, 1), "read on the first queue afterwards")


@case("I/O Connect with QID beyond the granted queues: SCT 1 SC 0x82 IPO 42")
def _(env):
    a = env.admin()
    check(a.set_num_queues(2) == 2, "2 I/O queues not granted")
    env.io(a, qid=2)
    h = env.ic()
    cpl = h.connect(env.open_nqn, qid=3, cntlid=a.cntlid, hostnqn=a.hostnqn,
                    hostid=a.hostid)
    expect_status(cpl, 0x82, 1, ipo=42, iattr=0)


@case("I/O Connect with QID 0xFFFF: SCT 1 SC 0x82 IATTR 0 IPO 42")
def _(env):
    a = env.admin()
    a.set_num_queues(1)
    h = env.ic()
    cpl = h.connect(env.open_nqn, qid=0xFFFF, cntlid=a.cntlid, hostnqn=a.hostnqn,
                    hostid=a.hostid)
    expect_status(cpl, 0x82, 1, ipo=42, iattr=0)


@case("I/O Connect to the discovery controller's NQN: SCT 1 SC 0x82")
def _(env):
    a = env.admin(nc.DISCOVERY_NQN)
    h = env.ic()
    cpl = h.connect(nc.DISCOVERY_NQN, qid=1, cntlid=a.cntlid, hostnqn=a.hostnqn,
                    hostid=a.hostid)
    expect_status(cpl, 0x82, 1, ipo=42, iattr=0)


@case("Connect on an already connected queue: Command Sequence Error")
def _(env):
    h = env.admin()
    expect_status(h.connect(env.open_nqn), 0x0C)
    expect_ok(h.keep_alive(), "Keep Alive on the queue afterwards")


@case("Identify before Connect: Command Sequence Error")
def _(env):
    h = env.ic()
    expect_status(h.identify(nc.CNS_CTRL), 0x0C)


@case("Property Get before Connect: Command Sequence Error")
def _(env):
    h = env.ic()
    expect_status(h.prop_get(nc.REG_CAP), 0x0C)


# =================================================================== admin

@case("admin opcode 0x7E: Invalid Opcode")
def _(env):
    expect_status(env.admin().cmd(0x7E), 0x01)


@case("Identify CNS 0x55: Invalid Field")
def _(env):
    expect_status(env.admin().identify(0x55), 0x02)


@case("Identify Namespace NSID 0: Invalid Namespace")
def _(env):
    expect_status(env.admin().identify(nc.CNS_NS, nsid=0), 0x0B)


@case("Get Log Page LID 0x7F: SCT 1 SC 0x09 (Invalid Log Page)")
def _(env):
    expect_status(env.admin().get_log_page(0x7F, 0, 512), 0x09, 1)


@case("Get Log Page offset 2 (not dword aligned): Invalid Field")
def _(env):
    expect_status(env.admin().get_log_page(0x02, 2, 64), 0x02)


@case("Property Get offset 0x40: Invalid Field")
def _(env):
    expect_status(env.admin().prop_get(0x40, size8=False), 0x02)


@case("Property Set CAP (read-only): Invalid Field")
def _(env):
    expect_status(env.admin().prop_set(nc.REG_CAP, 0), 0x02)


@case("admin commands before CC.EN = 1: Command Sequence Error")
def _(env):
    h = env.admin(enable=False)
    # DNR is not pinned: retrying after CC.EN = 1 would succeed.
    expect_status(h.identify(nc.CNS_CTRL), 0x0C, dnr=None)
    expect_status(h.get_log_page(0x02, 0, 512), 0x0C, dnr=None)
    h.enable()
    expect_ok(h.identify(nc.CNS_CTRL), "Identify after CC.EN = 1")


@case("Identify, CAP and ICResp advertise the configured limits")
def _(env):
    a = env.admin()
    cpl = a.identify(nc.CNS_CTRL)
    expect_ok(cpl, "Identify Controller")
    d = cpl.data
    mdts = d[77]
    ioccsz = struct.unpack_from("<I", d, 1792)[0]
    check(ioccsz * 16 - 64 == env.inline,
          f"IOCCSZ {ioccsz}: {ioccsz * 16 - 64} bytes in-capsule, configured {env.inline}")
    check(a.maxh2cdata == env.maxh2cdata,
          f"ICResp MAXH2CDATA {a.maxh2cdata}, configured {env.maxh2cdata}")
    check(mdts == 8, f"MDTS {mdts}, expected 8 (the 1 MiB default)")


# =================================================================== I/O

@case("Read beyond the namespace end: LBA Out of Range")
def _(env):
    a, q = env.pair()
    expect_status(q.read(1, env.ns_blocks - 1, 2), 0x80)
    expect_status(q.read(1, env.ns_blocks, 1), 0x80)
    expect_ok(q.read(1, env.ns_blocks - 1, 1), "read of the last block")


@case("Write beyond the namespace end: LBA Out of Range")
def _(env):
    a, q = env.pair()
    expect_status(q.write(1, env.ns_blocks - 1, bytes(2 * BS)), 0x80)
    expect_status(q.write(1, 1 << 40, bytes(BS)), 0x80)


@case("Read of NSID 0: Invalid Namespace")
def _(env):
    a, q = env.pair()
    expect_status(q.read(0, 0, 1), 0x0B)


@case("Write to NSID 99: Invalid Namespace")
def _(env):
    a, q = env.pair()
    expect_status(q.write(99, 0, bytes(BS)), 0x0B)


@case("Read larger than MDTS: Invalid Field")
def _(env):
    a, q = env.pair()
    nlb = (1 << 20) // BS + 1
    expect_status(q.read(1, 0, nlb), 0x02)


@case("SGL length not matching NLB: SGL Data Length Invalid")
def _(env):
    a, q = env.pair()
    expect_status(q.read(1, 0, 8, sgl_desc=nc.sgl(nc.SGL_TRANSPORT, 4 * BS)), 0x0F)
    expect_status(q.cmd(nc.NVM_WRITE, nsid=1, data_out=bytes(4 * BS),
                        **q.rw_fields(env.lbas(8), 8)), 0x0F)


@case("Read with a keyed SGL descriptor (0x40): SGL Descriptor Type Invalid")
def _(env):
    a, q = env.pair()
    expect_status(q.read(1, 0, 1, sgl_desc=nc.sgl(0x40, BS)), 0x11)


@case("in-capsule SGL with offset 16: SGL Offset Invalid")
def _(env):
    a, q = env.pair()
    expect_status(q.write(1, env.lbas(1), bytes(BS),
                          sgl_desc=nc.sgl(nc.SGL_INCAPSULE, BS, 16)), 0x16)


@case("in-capsule SGL length not the capsule's data length: SGL Data Length Invalid")
def _(env):
    a, q = env.pair()
    expect_status(q.write(1, env.lbas(2), bytes(2 * BS),
                          sgl_desc=nc.sgl(nc.SGL_INCAPSULE, BS)), 0x0F)


@case("Read with PSDT = PRP: Invalid Field")
def _(env):
    a, q = env.pair()
    expect_status(q.read(1, 0, 1, flags=0), 0x02)


@case("I/O opcode 0x7E: Invalid Opcode")
def _(env):
    a, q = env.pair()
    expect_status(q.cmd(0x7E, nsid=1), 0x01)


@case("Compare: equal data succeeds, different data SCT 2 SC 0x85")
def _(env):
    a, q = env.pair()
    lba = env.lbas(8)
    data = pattern(8 * BS, 4)
    expect_ok(q.write(1, lba, data), "write")
    expect_ok(q.compare(1, lba, data), "Compare of equal data")
    other = bytearray(data)
    other[1000] ^= 1
    expect_status(q.compare(1, lba, bytes(other)), 0x85, 2)
    expect_ok(q.compare(1, lba, data, inline=False), "Compare by R2T")


NVM_VERIFY, NVM_COPY = 0x0C, 0x19


def copy_desc(ranges, fmt=0):
    """Copy source range descriptors, format 0 (32 bytes) or 1 (40: wider
    protection tags, left 0 here): (slba, nlb) pairs."""
    return b"".join(struct.pack("<8xQH14x" if fmt == 0 else "<8xQH22x",
                                slba, nlb - 1) for slba, nlb in ranges)


@case("Identify: ONCS offers Verify and Copy; MSSRL, MCL, MSRC, OCFS set")
def _(env):
    a = env.admin()
    cpl = a.identify(nc.CNS_CTRL)
    expect_ok(cpl, "Identify Controller")
    oncs, ocfs = struct.unpack_from("<H", cpl.data, 520)[0], \
        struct.unpack_from("<H", cpl.data, 534)[0]
    check(oncs & 0x180 == 0x180, f"ONCS {oncs:#x}: no Verify or Copy bit")
    check(ocfs == 3, f"OCFS {ocfs:#x}, expected formats 0 and 1")
    cpl = a.identify(nc.CNS_NS, nsid=1)
    expect_ok(cpl, "Identify Namespace")
    mssrl, mcl, msrc = struct.unpack_from("<HIB", cpl.data, 74)
    check(mssrl == env.mdts // BS and msrc == 127 and mcl >= mssrl,
          f"MSSRL {mssrl} MCL {mcl} MSRC {msrc}")


@case("Verify: in range succeeds; past the end SC 0x80; beyond VSL SC 0x02")
def _(env):
    a, q = env.pair()
    lba = env.lbas(8)
    expect_ok(q.cmd(NVM_VERIFY, nsid=1, **q.rw_fields(lba, 8)), "Verify")
    expect_status(q.cmd(NVM_VERIFY, nsid=1,
                        **q.rw_fields(env.ns_blocks - 1, 2)), 0x80)
    expect_status(q.cmd(NVM_VERIFY, nsid=1,
                        **q.rw_fields(0, env.mdts // BS + 1)), 0x02)


@case("Copy: two source ranges land one after the other at SDLBA")
def _(env):
    a, q = env.pair()
    src1, src2, dst = env.lbas(8), env.lbas(4), env.lbas(12)
    d1, d2 = pattern(8 * BS, 21), pattern(4 * BS, 22)
    expect_ok(q.write(1, src1, d1), "write range 1")
    expect_ok(q.write(1, src2, d2), "write range 2")
    desc = copy_desc([(src1, 8), (src2, 4)])
    cpl = q.cmd(NVM_COPY, nsid=1, data_out=desc, cdw10=dst & 0xFFFFFFFF,
                cdw11=dst >> 32, cdw12=1)
    expect_ok(cpl, "Copy")
    cpl = q.read(1, dst, 12)
    expect_ok(cpl, "read the destination")
    check(cpl.data == d1 + d2, "the destination holds range 1 then range 2")


@case("Copy: format 1 copies as format 0 does; refusals: format 2, too many ranges, a range too long, past the end")
def _(env):
    a, q = env.pair()
    lba = env.lbas(8)

    def copy(desc, nr, dst=lba, fmt=0):
        return q.cmd(NVM_COPY, nsid=1, data_out=desc, cdw10=dst, cdw11=0,
                     cdw12=(nr - 1) | fmt << 8, inline=len(desc) <= 1024)
    src = env.lbas(2)
    expect_ok(q.write(1, src, pattern(2 * BS, 23)), "write the source")
    expect_ok(copy(copy_desc([(src, 2)], fmt=1), 1, fmt=1), "Copy format 1")
    expect_status(copy(copy_desc([(src, 2)]), 1, fmt=1), 0x0F)  # 32 bytes
    cpl = q.read(1, lba, 2)
    expect_ok(cpl, "read the format 1 destination")
    check(cpl.data == pattern(2 * BS, 23), "format 1 copied the range")
    expect_status(copy(copy_desc([(lba, 1)]), 1, fmt=2), 0x02)
    expect_status(copy(copy_desc([(lba, 1)] * 129), 129), 0x83, sct=1)
    expect_status(copy(copy_desc([(0, env.mdts // BS + 1)]), 1), 0x83, sct=1)
    expect_status(copy(copy_desc([(env.ns_blocks - 1, 2)]), 1), 0x80)
    expect_status(copy(copy_desc([(lba, 8)]), 1, dst=env.ns_blocks - 4),
                  0x80)
    expect_status(copy(copy_desc([(lba, 1)]), 2), 0x0F)   # 1 of 2 descriptors
    expect_ok(copy(copy_desc([(lba, 8)]), 1, dst=lba), "Copy onto itself")


# =================================================================== reservations

RESV_REGISTER, RESV_REPORT, RESV_ACQUIRE, RESV_RELEASE = 0x0D, 0x0E, 0x11, 0x15


def resv_keys(crkey, other=0):
    return struct.pack("<QQ", crkey, other)


@case("Reservations: bad RTYPE, bad action, wrong key, no reservation left")
def _(env):
    a, q = env.pair()
    key = random.getrandbits(63) | 1

    def reg(action, data, cptpl=0, **kw):
        return q.cmd(RESV_REGISTER, nsid=1, data_out=data,
                     cdw10=action | cptpl << 30, **kw)
    expect_ok(reg(0, resv_keys(0, key)), "register")
    for rtype in (0, 7, 0x80, 0xFF):
        expect_status(q.cmd(RESV_ACQUIRE, nsid=1, data_out=resv_keys(key),
                            cdw10=rtype << 8), 0x02)
    for action in (3, 7):
        expect_status(q.cmd(RESV_ACQUIRE, nsid=1, data_out=resv_keys(key),
                            cdw10=action | 1 << 8), 0x02)
        expect_status(reg(action, resv_keys(key, key + 1)), 0x02)
    expect_status(q.cmd(RESV_RELEASE, nsid=1, data_out=resv_keys(key),
                        cdw10=2 | 1 << 8), 0x02)
    expect_status(reg(0, resv_keys(0, key), cptpl=1), 0x02)   # reserved
    expect_status(reg(0, resv_keys(0, key), cptpl=3), 0x02)   # no state_dir
    expect_status(reg(0, resv_keys(0, 0)), 0x02)               # key 0
    # Wrong keys: Reservation Conflict, without DNR.
    expect_status(reg(0, resv_keys(0, key ^ 2)), 0x83, dnr=False)
    expect_status(q.cmd(RESV_ACQUIRE, nsid=1, data_out=resv_keys(key ^ 2),
                        cdw10=1 << 8), 0x83, dnr=False)
    expect_status(reg(1, resv_keys(key ^ 2)), 0x83, dnr=False)
    # A reservation taken and released again: writes work afterwards.
    expect_ok(q.cmd(RESV_ACQUIRE, nsid=1, data_out=resv_keys(key),
                    cdw10=1 << 8), "acquire")
    expect_ok(q.cmd(RESV_RELEASE, nsid=1, data_out=resv_keys(key),
                    cdw10=1 << 8), "release")
    expect_ok(reg(1, resv_keys(key)), "unregister")
    cpl = q.cmd(RESV_REPORT, nsid=1, read_len=64, cdw10=15, cdw11=1)
    expect_ok(cpl, "report")
    check(cpl.data[4] == 0, "a reservation is left")


@case("Reservations: short data buffer, data by R2T, Report lengths")
def _(env):
    a, q = env.pair()
    key = random.getrandbits(63) | 1
    for opc in (RESV_REGISTER, RESV_ACQUIRE):
        for n in (0, 8, 15):
            expect_status(q.cmd(opc, nsid=1, data_out=b"\xff" * n,
                                cdw10=1 << 8), 0x0F)
    expect_status(q.cmd(RESV_RELEASE, nsid=1, data_out=b"\xff" * 7), 0x0F)
    expect_status(q.cmd(RESV_REGISTER, nsid=1, data_out=b"\0" * 8192,
                        inline=False), 0x0F)
    # Keys by R2T/H2CData instead of in the capsule.
    expect_ok(q.cmd(RESV_REGISTER, nsid=1, data_out=resv_keys(0, key),
                    inline=False), "register by R2T")
    expect_status(q.cmd(RESV_REPORT, nsid=1, read_len=64, cdw10=0xFFFFFFFF,
                        cdw11=1), 0x0F)              # NUMD past the buffer
    expect_status(q.cmd(RESV_REPORT, nsid=1, read_len=64, cdw10=15), 0x18)
    cpl = q.cmd(RESV_REPORT, nsid=1, read_len=4, cdw10=0, cdw11=1)
    expect_ok(cpl, "a 4-byte report")
    check(len(cpl.data) == 4, f"{len(cpl.data)} bytes for NUMD 0")
    expect_ok(q.cmd(RESV_REGISTER, nsid=1, data_out=resv_keys(key),
                    cdw10=1), "unregister")


# =================================================================== set-up time

@case("connection that never sends ICReq is closed after the set-up time")
def _(env):
    import socket
    s = socket.create_connection((env.addr, env.port), timeout=5)
    try:
        t0 = time.monotonic()
        s.settimeout(15)
        try:
            got = s.recv(1)
        except (ConnectionResetError, socket.timeout) as e:
            got = e
        took = time.monotonic() - t0
        check(got == b"" or isinstance(got, ConnectionResetError),
              f"expected the target to close, got {got!r}")
        check(8 <= took <= 13, f"closed after {took:.1f} s, not ~10 s")
    finally:
        s.close()


# =================================================================== keep-alive

@case("KATO 1000 ms and silence: the target closes within 4 s")
def _(env):
    h = env.admin(kato=1000, enable=False)
    t0 = time.monotonic()
    h.enable()
    # KATO plus one granule of the timer (KAS: 1 s), and room for a slow
    # machine.
    expect_closed(h, timeout=4.0 - (time.monotonic() - t0))
    took = time.monotonic() - t0
    check(took > 1.5, f"closed after {took:.2f} s, before KATO and its "
          "granule")


@case("KATO 1000 ms with a Keep Alive every 300 ms stays connected")
def _(env):
    h = env.admin(kato=1000)
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        expect_ok(h.keep_alive(), "Keep Alive")
        time.sleep(0.3)
    expect_ok(h.identify(nc.CNS_CTRL), "Identify after 2 s")


# =================================================================== correct path

@case("CRC32C known answer")
def _(env):
    check(nc.crc32c(b"123456789") == 0xE3069283, "CRC32C('123456789')")
    check(nc.crc32c(b"") == 0, "CRC32C of nothing")


@case("write in-capsule and by R2T (split by MAXH2CDATA), read back")
def _(env):
    a, q = env.pair()
    n = 64 * 1024
    check(q.maxh2cdata < n, f"MAXH2CDATA {q.maxh2cdata} does not split {n} bytes")
    lba = env.lbas(n // BS)
    data = pattern(n, 5)
    cid = q.submit(nc.NVM_WRITE, nsid=1, data_out=data, inline=False,
                   **q.rw_fields(lba, n // BS))
    cmd = q.cmds[cid]
    expect_ok(q.wait(cid), "R2T write")
    check(cmd.r2ts >= 1, "no R2T")
    small = pattern(2 * BS, 6)
    expect_ok(q.write(1, lba + 8, small), "in-capsule write")
    want = data[:8 * BS] + small + data[10 * BS:]
    cpl = q.read(1, lba, n // BS)
    expect_ok(cpl, "read")
    check(cpl.data == want, "read back other data")


@case("header and data digests with HPDA 7: writes and reads")
def _(env):
    a, q = env.pair(hdgst=True, ddgst=True, hpda=7)
    n = 64 * 1024
    lba = env.lbas(n // BS)
    data = pattern(n, 7)
    expect_ok(q.write(1, lba, data, inline=False), "R2T write")
    small = pattern(4 * BS, 8)
    expect_ok(q.write(1, lba, small), "in-capsule write")
    cpl = q.read(1, lba, n // BS)
    expect_ok(cpl, "read")
    check(cpl.data == small + data[4 * BS:], "read back other data")
    expect_ok(a.identify(nc.CNS_CTRL), "Identify with digests")


@case("read of exactly MDTS (1 MiB) returns all of it")
def _(env):
    a, q = env.pair()
    nlb = (1 << 20) // BS
    cpl = q.read(1, 0, nlb)
    expect_ok(cpl, "1 MiB read")
    check(len(cpl.data) == 1 << 20, f"{len(cpl.data)} bytes returned")


@case("pipelined commands complete with their own CIDs")
def _(env):
    a, q = env.pair()
    lba = env.lbas(32)
    blocks = [pattern(BS, 100 + i) for i in range(8)]
    cids = [q.submit(nc.NVM_WRITE, nsid=1, data_out=b, **q.rw_fields(lba + i, 1))
            for i, b in enumerate(blocks)]
    for cid in cids:
        expect_ok(q.wait(cid), f"write CID {cid}")
    rcids = [q.submit(nc.NVM_READ, nsid=1, read_len=BS, **q.rw_fields(lba + i, 1))
             for i in range(8)]
    for i, cid in enumerate(rcids):
        cpl = q.wait(cid)
        expect_ok(cpl, f"read CID {cid}")
        check(cpl.data == blocks[i], f"block {i} read back other data")


def disc_entries(page, numrec):
    out = []
    for i in range(numrec):
        e = page[1024 * (i + 1):1024 * (i + 2)]
        out.append(dict(trtype=e[0], adrfam=e[1], subtype=e[2],
                        portid=struct.unpack_from("<H", e, 4)[0],
                        trsvcid=e[32:64].decode().strip(" \0"),
                        subnqn=e[256:512].rstrip(b"\0").decode(),
                        traddr=e[512:768].decode().strip(" \0")))
    return out


@case("discovery log read in slices at several dword offsets is consistent")
def _(env):
    a = env.admin(nc.DISCOVERY_NQN)
    cpl = a.get_log_page(nc.LID_DISCOVERY, 0, 20, rae=True)
    expect_ok(cpl, "Get Log Page 0x70 header")
    genctr, numrec = struct.unpack_from("<QQ", cpl.data)
    check(1 <= numrec <= 64, f"NUMREC {numrec}")
    size = 1024 * (numrec + 1)
    full = a.get_log_page(nc.LID_DISCOVERY, 0, size)
    expect_ok(full, "Get Log Page 0x70 whole")
    page = full.data
    check(len(page) == size, f"{len(page)} bytes of {size}")
    check(struct.unpack_from("<QQH", page) == (genctr, numrec, 0),
          "header changed between reads (GENCTR/NUMREC/RECFMT)")
    for off, n in ((0, 8), (8, 8), (4, 16), (16, 4), (1024, 1024), (1028, 60),
                   (1024 + 256, 256), (size - 1024, 1024), (size - 512, 512),
                   (512, 1024), (size - 4, 4)):
        piece = a.get_log_page(nc.LID_DISCOVERY, off, n)
        expect_ok(piece, f"Get Log Page 0x70 at {off}")
        check(piece.data == page[off:off + n],
              f"{n} bytes at offset {off} differ from the whole page")
    ents = disc_entries(page, numrec)
    check(ents[0]["subtype"] == 3 and ents[0]["subnqn"] == nc.DISCOVERY_NQN,
          f"first entry {ents[0]}")
    mine = [e for e in ents if e["subnqn"] == env.open_nqn]
    check(len(mine) == 1, f"{len(mine)} entries for {env.open_nqn}")
    e = mine[0]
    check((e["trtype"], e["adrfam"], e["subtype"], e["trsvcid"], e["traddr"]) ==
          (3, 1, 2, str(env.port), env.addr), f"entry {e}")
    check(not any(e["subnqn"] == env.closed_nqn for e in ents),
          "restricted subsystem listed for a host not allowed")
    b = env.admin(nc.DISCOVERY_NQN, hostnqn=env.allowed_host)
    cpl = b.get_log_page(nc.LID_DISCOVERY, 0, 20)
    n2 = struct.unpack_from("<Q", cpl.data, 8)[0]
    cpl = b.get_log_page(nc.LID_DISCOVERY, 0, 1024 * (n2 + 1))
    expect_ok(cpl, "Get Log Page 0x70 for the allowed host")
    check(any(e["subnqn"] == env.closed_nqn for e in disc_entries(cpl.data, n2)),
          "restricted subsystem not listed for the allowed host")


@case("discovery controller: Identify CNS 0 is Invalid Field, log 0x02 Invalid Log Page")
def _(env):
    a = env.admin(nc.DISCOVERY_NQN)
    expect_status(a.identify(nc.CNS_NS, nsid=1), 0x02)
    expect_status(a.get_log_page(0x02, 0, 512), 0x09, 1)


# =================================================================== authentication

# A subsystem (--auth-nqn) that lets in --auth-host with a host key and a
# controller key (DH-HMAC-CHAP, all hashes and groups offered) and
# --auth-nokey-host without a key.  Each case ends with a fresh
# connection that authenticates (both ways, ffdhe2048) and does I/O.

def auth_admin(env, hostnqn=None, kato=0, atr=True):
    """A connected, not yet authenticated admin queue on --auth-nqn."""
    h = env.raw(hostnqn=hostnqn or env.auth_host)
    h.icreq()
    cpl = h.connect(env.auth_nqn, kato=kato)
    expect_ok(cpl, "admin Connect to the authenticating subsystem")
    check(bool(cpl.dw0 & nc.CONNECT_AUTHREQ_ATR) == atr,
          f"Connect DW0 {cpl.dw0:#x}: AUTHREQ.ATR should be {int(atr)}")
    return h


def authenticate(env, h, **kw):
    kw.setdefault("ctrl_secret", env.auth_ctrl_key)
    try:
        return h.authenticate(*env.auth_key, **kw)
    except nc.NvmfError as e:
        raise Fail(f"authentication: {type(e).__name__}: {e}") from None


def auth_io(env, a):
    """I/O queue 1 of authenticated admin queue a, not yet authenticated."""
    check(a.set_num_queues(1) >= 1, "no I/O queues granted")
    q = env.raw(hostnqn=a.hostnqn, hostid=a.hostid)
    q.icreq()
    cpl = q.connect(env.auth_nqn, qid=1, cntlid=a.cntlid)
    expect_ok(cpl, "I/O Connect")
    check(cpl.dw0 & nc.CONNECT_AUTHREQ_ATR, "I/O Connect without ATR")
    return q


def auth_pair(env, kato=0):
    """An authenticated, enabled controller with one authenticated I/O
    queue: (admin, io)."""
    a = auth_admin(env, kato=kato)
    authenticate(env, a)
    a.enable()
    q = auth_io(env, a)
    authenticate(env, q, tid=2, ctrl_secret=None)
    return a, q


def auth_alive(env):
    """A fresh association authenticates (bidirectional, ffdhe2048 with
    SHA-512 on the admin queue) and reads back what it wrote."""
    a = q = None
    try:
        a = Host(env.addr, env.port, hostnqn=env.auth_host)
        a.icreq()
        expect_ok(a.connect(env.auth_nqn), "admin Connect")
        ch = a.authenticate(*env.auth_key, ctrl_secret=env.auth_ctrl_key,
                            hashes=(nc.SHA512,), groups=(nc.FFDHE2048,))
        check((ch.hashid, ch.dhgid) == (nc.SHA512, nc.FFDHE2048),
              f"Challenge HASHID {ch.hashid} DHGID {ch.dhgid}")
        a.enable()
        a.set_num_queues(1)
        q = Host(env.addr, env.port, hostnqn=a.hostnqn, hostid=a.hostid)
        q.icreq()
        expect_ok(q.connect(env.auth_nqn, qid=1, cntlid=a.cntlid),
                  "I/O Connect")
        q.authenticate(*env.auth_key, tid=7)
        write_read_back(q, 0, 4)
    finally:
        for h in (q, a):
            if h is not None:
                h.close()


def auth_case(name):
    """A case on the authenticating subsystem; afterwards a correct
    authentication on a fresh connection must still work."""
    def reg(fn):
        def run(env):
            fn(env)
            env.close_all()
            try:
                auth_alive(env)
            except (Fail, nc.NvmfError) as e:
                raise Fail(f"a fresh authentication fails after the case: "
                           f"{type(e).__name__}: {e}") from None
        CASES.append(("authentication: " + name, run))
        return fn
    return reg


def expect_failure1(h, reason, tid, al=4096, closes=True):
    """The next Receive returns AUTH_Failure1 with this reason and T_ID;
    then the target closes the connection (closes=True)."""
    cpl = h.auth_recv(al)
    expect_ok(cpl, "Authentication Receive")
    m = nc.AuthMsg(cpl.data)
    check(m.kind == "Failure1", f"expected Failure1 reason {reason}, got {m}")
    check((m.rescode, m.reason) == (1, reason),
          f"expected Failure1 RESCODE 1 reason {reason}, got {m}")
    check(m.tid == tid, f"Failure1 T_ID {m.tid}, expected {tid}")
    check(cpl.data[8:] == bytes(len(cpl.data) - 8),
          "bytes after the Failure1 are not zero")
    if closes:
        expect_closed(h, "after Failure1: ")


def send_ok(h, msg, what, **kw):
    expect_ok(h.auth_send(msg, **kw), f"Authentication Send ({what})")


def send_bad(h, msg, what, reason, tid, inline=True):
    """Send msg (what: for the failure); the next Receive must return
    Failure1 with reason and T_ID, and the connection then close."""
    try:
        send_ok(h, msg, what, inline=inline)
        expect_failure1(h, reason, tid)
    except Fail as e:
        raise Fail(f"{what}: {e}") from None
    h.close()


@auth_case("Connect sets ATR; every other command before authenticating "
           "gets SCT 1 SC 0x91, the queue stays")
def _(env):
    h = auth_admin(env)
    sc = nc.SC_AUTH_REQUIRED
    expect_status(h.prop_get(nc.REG_CSTS), sc, 1)
    expect_status(h.prop_set(nc.REG_CC, nc.CC_ENABLE), sc, 1)
    expect_status(h.identify(nc.CNS_CTRL), sc, 1)
    expect_status(h.get_log_page(0x02, 0, 512), sc, 1)
    expect_status(h.set_features(nc.FEAT_KATO, 5000), sc, 1)
    expect_status(h.keep_alive(), sc, 1)
    expect_status(h.cmd(0x7E), sc, 1)
    expect_status(h.cmd(nc.OPC_FABRICS, fctype=nc.FCTYPE_DISCONNECT), sc, 1)
    expect_status(h.cmd(nc.OPC_FABRICS, fctype=0x7F), sc, 1)
    expect_status(h.wait(h.aer(), timeout=5), sc, 1)
    authenticate(env, h)
    h.enable()
    expect_ok(h.identify(nc.CNS_CTRL), "Identify once authenticated")
    q = auth_io(env, h)
    expect_status(q.read(1, 0, 1), sc, 1)
    expect_status(q.write(1, 0, bytes(BS)), sc, 1)
    expect_status(q.write(1, 0, bytes(8 * BS), inline=False), sc, 1)
    expect_status(q.cmd(nc.NVM_FLUSH, nsid=1), sc, 1)
    expect_status(q.cmd(nc.OPC_FABRICS, fctype=nc.FCTYPE_DISCONNECT), sc, 1)
    authenticate(env, q, tid=3, ctrl_secret=None)
    expect_ok(q.write(1, 8, bytes(BS)), "write once authenticated")
    expect_ok(h.keep_alive(), "Keep Alive on the admin queue")


@auth_case("Authentication Send/Receive before Connect: Command Sequence "
           "Error; Connect and authentication then work")
def _(env):
    h = env.raw(hostnqn=env.auth_host)
    h.icreq()
    expect_status(h.auth_send(nc.auth_negotiate(1)), 0x0C)
    expect_status(h.auth_recv(), 0x0C)
    cpl = h.connect(env.auth_nqn)
    expect_ok(cpl, "Connect after them")
    authenticate(env, h)
    h.enable()


@auth_case("wrong SECP/SPSP, TL or AL 0, TL over 8 KiB: Invalid Field; "
           "TL or AL other than the SGL: SC 0x0F; the queue still "
           "authenticates; discovery fails a keyless host's exchange")
def _(env):
    h = auth_admin(env)
    neg = nc.auth_negotiate(1)
    for kw in (dict(secp=0xEA), dict(secp=0), dict(spsp0=0),
               dict(spsp1=0), dict(spsp0=2, spsp1=2)):
        expect_status(h.auth_send(neg, **kw), 0x02)
        expect_status(h.auth_recv(**kw), 0x02)
    expect_status(h.auth_send(b""), 0x02)
    expect_status(h.auth_recv(0), 0x02)
    expect_status(h.auth_send(bytes(8193), inline=False), 0x02)
    expect_status(h.auth_recv(8193), 0x02)
    expect_status(h.auth_send(neg, tl=len(neg) + 8), 0x0F)
    expect_status(h.auth_send(neg, tl=len(neg) - 8), 0x0F)
    expect_status(h.auth_recv(4096, sgl_desc=nc.sgl(nc.SGL_TRANSPORT, 512)),
                  0x0F)
    authenticate(env, h)
    # Discovery authenticates too: a host without discovery keys that
    # starts an exchange gets Failure1, as on an I/O controller.
    d = env.admin(nc.DISCOVERY_NQN)
    expect_ok(d.auth_send(neg), "Negotiate to discovery")
    m = d.auth_message()
    check(m.kind == "Failure1" and m.reason == nc.AUTH_FAIL_FAILED,
          f"discovery answered a keyless host's Negotiate with {m}")


def bad_negotiates(env):
    """(what, message, Failure1 reason, T_ID it carries)."""
    neg = nc.auth_negotiate
    ok = neg(5)
    return [
        ("4 bytes", ok[:4], nc.AUTH_FAIL_PAYLOAD, 0),
        ("the 8-byte header", ok[:8], nc.AUTH_FAIL_PAYLOAD, 5),
        ("half a descriptor", ok[:40], nc.AUTH_FAIL_PAYLOAD, 5),
        ("a byte short", ok[:-1], nc.AUTH_FAIL_PAYLOAD, 5),
        ("a byte over", ok + b"\0", nc.AUTH_FAIL_PAYLOAD, 5),
        ("NAPD 2 with one descriptor", neg(5, napd=2, ndesc=1),
         nc.AUTH_FAIL_PAYLOAD, 5),
        ("NAPD 1 with two descriptors", neg(5, napd=1, ndesc=2),
         nc.AUTH_FAIL_PAYLOAD, 5),
        ("NAPD 0", neg(5, napd=0, ndesc=1), nc.AUTH_FAIL_PAYLOAD, 5),
        ("NAPD 255 with one descriptor", neg(5, napd=255, ndesc=1),
         nc.AUTH_FAIL_PAYLOAD, 5),
        ("NAPD 127, none for DH-HMAC-CHAP", neg(5, napd=127, authid=2),
         nc.AUTH_FAIL_PROTOCOL, 5),
        ("HALEN 31", neg(5, halen=31), nc.AUTH_FAIL_PAYLOAD, 5),
        ("DHLEN 255", neg(5, dhlen=255), nc.AUTH_FAIL_PAYLOAD, 5),
        ("AUTHID 2 (not DH-HMAC-CHAP)", neg(5, authid=2),
         nc.AUTH_FAIL_PROTOCOL, 5),
        ("SC_C 1 (secure channel concatenation)", neg(5, scc=1),
         nc.AUTH_FAIL_CONCAT, 5),
        ("SC_C 0xFF", neg(5, scc=0xFF), nc.AUTH_FAIL_CONCAT, 5),
        ("unknown hashes only", neg(0xBEEF, hashes=(0, 4, 0x7F, 0xFF)),
         nc.AUTH_FAIL_HASH, 0xBEEF),
        ("HALEN 0", neg(5, halen=0), nc.AUTH_FAIL_HASH, 5),
        ("unknown DH groups only", neg(5, groups=(6, 0x10, 0xFF)),
         nc.AUTH_FAIL_DHGROUP, 5),
        ("DHLEN 0", neg(5, dhlen=0), nc.AUTH_FAIL_DHGROUP, 5),
    ]


@auth_case("malformed AUTH_Negotiate: its Failure1 reason, then the close")
def _(env):
    for what, msg, reason, tid in bad_negotiates(env):
        send_bad(auth_admin(env), msg, f"Negotiate with {what}", reason,
                 tid, inline=len(msg) <= env.inline)


@auth_case("a host without a key negotiates: Failure1 reason 1")
def _(env):
    h = auth_admin(env, hostnqn=env.auth_nokey_host, atr=False)
    expect_ok(h.prop_get(nc.REG_CSTS), "Property Get without authentication")
    send_ok(h, nc.auth_negotiate(9), "Negotiate")
    expect_failure1(h, nc.AUTH_FAIL_FAILED, 9)


def challenged(env, tid=0x1234, **kw):
    h = auth_admin(env)
    try:
        return h, h.auth_challenge(tid, **kw)
    except nc.NvmfError as e:
        raise Fail(f"Negotiate/Challenge: {type(e).__name__}: {e}") from None


@auth_case("bad DH-HMAC-CHAP_Reply: wrong lengths Failure1 reason 6, "
           "wrong response reason 1, then the close")
def _(env):
    ckey = env.auth_ctrl_key

    def variants(h, ch):
        good, _ = h.auth_answer(ch, *env.auth_key, ctrl_secret=ckey)
        hl = ch.hl
        r1 = bytearray(good[16:16 + hl])
        r1[0] ^= 1
        other, _ = h.auth_answer(ch, os.urandom(len(env.auth_key[0])), 0)
        wrong_tid = bytearray(good)
        wrong_tid[4] ^= 0x40
        hl_field = bytearray(good)
        hl_field[6] = hl - 1
        dhvlen = bytearray(good)
        dhvlen[10] = 1
        return [
            ("10 bytes", good[:10], nc.AUTH_FAIL_PAYLOAD),
            ("the header only", good[:16], nc.AUTH_FAIL_PAYLOAD),
            ("without C2", good[:16 + hl], nc.AUTH_FAIL_PAYLOAD),
            ("16 bytes over", good + bytes(16), nc.AUTH_FAIL_PAYLOAD),
            ("HL one less", bytes(hl_field), nc.AUTH_FAIL_PAYLOAD),
            ("DHVLEN 1, no DH value", bytes(dhvlen), nc.AUTH_FAIL_PAYLOAD),
            ("DHVLEN 1 and a byte", bytes(dhvlen) + b"\1",
             nc.AUTH_FAIL_PAYLOAD),
            ("another transaction's T_ID", bytes(wrong_tid),
             nc.AUTH_FAIL_PAYLOAD),
            ("a response one bit off", good[:16] + bytes(r1) + good[16 + hl:],
             nc.AUTH_FAIL_FAILED),
            ("the response of another key", other, nc.AUTH_FAIL_FAILED),
        ]
    for i in range(10):
        h, ch = challenged(env, hashes=(nc.SHA384,), groups=(nc.DH_NULL,))
        what, msg, reason = variants(h, ch)[i]
        send_bad(h, msg, f"Reply with {what}", reason, ch.tid)


@auth_case("ffdhe2048 Reply with DH value 0, 1, p-1, p, all ones or the "
           "wrong size: Failure1 reason 6")
def _(env):
    p = nc.ffdhe_prime(2048)
    values = [("0", 0), ("1", 1), ("p-1", p - 1), ("p", p),
              ("2^2048-1", (1 << 2048) - 1)]
    for what, y in values + [("255 bytes", None), ("257 bytes", None)]:
        h, ch = challenged(env, groups=(nc.FFDHE2048,))
        check(ch.dhgid == nc.FFDHE2048 and len(ch.dhv) == 256,
              f"Challenge DHGID {ch.dhgid} DHVLEN {len(ch.dhv)}")
        good, _ = h.auth_answer(ch, *env.auth_key)
        hdr = bytearray(good[:16 + 2 * ch.hl])
        if y is not None:
            dhv = y.to_bytes(256, "big")
        else:
            dhv = good[16 + 2 * ch.hl:][:255] if what == "255 bytes" \
                else good[16 + 2 * ch.hl:] + b"\0"
            struct.pack_into("<H", hdr, 10, len(dhv))
        send_bad(h, bytes(hdr) + dhv, f"Reply with DH value {what}",
                 nc.AUTH_FAIL_PAYLOAD, ch.tid)


@auth_case("out of order: Success2 for Reply, Success2 before Success1 is "
           "fetched, a second Reply, a second Receive: Failure1 reason 7")
def _(env):
    ckey = env.auth_ctrl_key
    # Success2 where the Reply belongs.
    h, ch = challenged(env)
    send_ok(h, nc.auth_success2(ch.tid), "Success2 for Reply")
    expect_failure1(h, nc.AUTH_FAIL_MESSAGE, ch.tid)
    # Success2 right after the Reply, before Success1 was received.
    h, ch = challenged(env)
    reply, _ = h.auth_answer(ch, *env.auth_key, ctrl_secret=ckey)
    send_ok(h, reply, "Reply")
    send_ok(h, nc.auth_success2(ch.tid), "early Success2")
    expect_failure1(h, nc.AUTH_FAIL_MESSAGE, ch.tid)
    # The Reply twice.
    h, ch = challenged(env)
    reply, _ = h.auth_answer(ch, *env.auth_key, ctrl_secret=ckey)
    send_ok(h, reply, "Reply")
    send_ok(h, reply, "Reply again")
    expect_failure1(h, nc.AUTH_FAIL_MESSAGE, ch.tid)
    # The Challenge fetched twice.
    h, ch = challenged(env)
    expect_failure1(h, nc.AUTH_FAIL_MESSAGE, ch.tid)
    # A Receive before any Negotiate.
    h = auth_admin(env)
    expect_failure1(h, nc.AUTH_FAIL_MESSAGE, 0)
    # A Reply before any Negotiate: Failure1 at the next Receive.
    h = auth_admin(env)
    send_ok(h, nc.auth_reply(3, 32, bytes(32)), "Reply without Negotiate")
    expect_failure1(h, nc.AUTH_FAIL_MESSAGE, 3)


@auth_case("bidirectional: Success2 of the wrong length or T_ID: reason 6; "
           "the right Success2 twice: reason 7")
def _(env):
    for what, mangle, reason in (
            ("15 bytes", lambda m: m[:15], nc.AUTH_FAIL_PAYLOAD),
            ("17 bytes", lambda m: m + b"\0", nc.AUTH_FAIL_PAYLOAD),
            ("T_ID + 1", lambda m: m[:4] + struct.pack(
                "<H", struct.unpack_from("<H", m, 4)[0] + 1) + m[6:],
             nc.AUTH_FAIL_PAYLOAD)):
        h, ch = challenged(env)
        reply, r2 = h.auth_answer(ch, *env.auth_key,
                                  ctrl_secret=env.auth_ctrl_key)
        send_ok(h, reply, "Reply")
        m = h.auth_message()
        check(m.kind == "Success1" and m.rvalid and m.r2 == r2,
              f"{m} RVALID {getattr(m, 'rvalid', None)}: no valid R2")
        send_ok(h, mangle(nc.auth_success2(ch.tid)), f"Success2, {what}")
        try:
            expect_failure1(h, reason, ch.tid)
        except Fail as e:
            raise Fail(f"Success2 with {what}: {e}") from None
    # Authenticated both ways; a second Success2 is out of any transaction.
    h = auth_admin(env)
    ch = authenticate(env, h)
    h.enable()
    send_ok(h, nc.auth_success2(ch.tid), "Success2 again")
    expect_failure1(h, nc.AUTH_FAIL_MESSAGE, ch.tid)


@auth_case("Receive with AL too small: for the Challenge Failure1 reason "
           "6; for any message (AL 4) Invalid Field; then the close")
def _(env):
    h = auth_admin(env)
    send_ok(h, nc.auth_negotiate(2, hashes=(nc.SHA512,)), "Negotiate")
    expect_failure1(h, nc.AUTH_FAIL_PAYLOAD, 2, al=16 + 32)
    h = auth_admin(env)
    send_ok(h, nc.auth_negotiate(4), "Negotiate")
    expect_status(h.auth_recv(4), 0x02)
    expect_closed(h, "after a Receive too small for Failure1: ")


@auth_case("the host's AUTH_Failure2: no answer, the association ends")
def _(env):
    a, q = auth_pair(env)
    ch = q.auth_challenge(11)
    send_ok(q, nc.auth_failure2(ch.tid), "Failure2")
    expect_closed(q, "I/O queue after Failure2: ")
    expect_closed(a, "admin queue after Failure2 on the I/O queue: ")
    h, ch = challenged(env)
    send_ok(h, nc.auth_failure2(ch.tid, nc.AUTH_FAIL_FAILED), "Failure2")
    expect_closed(h, "admin queue after its Failure2: ")


@auth_case("a failed re-authentication on an I/O queue ends the association")
def _(env):
    a, q = auth_pair(env)
    ch = q.auth_challenge(12)
    reply, _ = q.auth_answer(ch, os.urandom(len(env.auth_key[0])), 0)
    send_ok(q, reply, "Reply with a wrong key")
    expect_failure1(q, nc.AUTH_FAIL_FAILED, 12)
    expect_closed(a, "admin queue after the I/O queue failed: ")


@auth_case("re-authentication storm: 100 transactions on a live association "
           "(whole, abandoned, restarted); it keeps serving, memory bounded")
def _(env):
    a, q = auth_pair(env)
    lba = 64                # within the 1 MiB namespace
    data = os.urandom(8 * BS)
    expect_ok(q.write(1, lba, data), "write")
    before = rss_kib(env.pid) if env.pid else 0
    for i in range(100):
        tid = (i * 7919) & 0xFFFF
        h = (a, q)[i % 2]
        kind = i % 5
        if kind == 0:       # whole, bidirectional, ffdhe2048
            authenticate(env, h, tid=tid, groups=(nc.FFDHE2048,))
        elif kind == 1:     # whole, one way
            authenticate(env, h, tid=tid, ctrl_secret=None)
        elif kind == 2:     # Negotiate only: the next one restarts it
            send_ok(h, nc.auth_negotiate(tid), "Negotiate")
        elif kind == 3:     # Challenge fetched, then abandoned
            h.auth_challenge(tid)
        else:               # Reply sent, Success1 never fetched
            ch = h.auth_challenge(tid)
            send_ok(h, h.auth_answer(ch, *env.auth_key)[0], "Reply")
        if i % 10 == 9:
            expect_ok(a.identify(nc.CNS_CTRL), f"Identify after {i + 1}")
            cpl = q.read(1, lba, 8)
            expect_ok(cpl, f"read after {i + 1}")
            check(cpl.data == data, "read back other data")
    authenticate(env, a, tid=0xFFFF)
    authenticate(env, q, tid=0)
    expect_ok(a.keep_alive(), "Keep Alive")
    grown = (rss_kib(env.pid) - before) if env.pid else 0
    check(grown < 8192, f"the daemon grew by {grown} KiB")


@auth_case("KATO 1 s: a slow exchange is not dropped; a stray message "
           "then silence is (within 8 s)")
def _(env):
    h = auth_admin(env, kato=1000)
    ch = h.auth_challenge(21)
    time.sleep(2.5)           # longer than KATO and its granule
    check(not h.poll_closed(), "dropped while authenticating")
    reply, _ = h.auth_answer(ch, *env.auth_key)
    send_ok(h, reply, "Reply after 2.5 s")
    m = h.auth_message()
    check(m.kind == "Success1", f"{m} for the slow Reply")
    h.close()
    # A message outside any transaction starts none: Keep Alive applies.
    h = auth_admin(env, kato=1000)
    t0 = time.monotonic()
    send_ok(h, nc.auth_success2(22), "Success2 outside a transaction")
    expect_closed(h, "a silent host after a stray message: ",
                  timeout=8.0 - (time.monotonic() - t0))
    # So does a failed transaction whose Failure1 is never fetched.
    h = auth_admin(env, kato=1000)
    t0 = time.monotonic()
    send_ok(h, nc.auth_negotiate(23, hashes=(0xFF,)), "Negotiate, no hash")
    expect_closed(h, "a silent host after a failed Negotiate: ",
                  timeout=8.0 - (time.monotonic() - t0))


# =================================================================== main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--open-nqn", default="nqn.2026-11.io.nvmfd.test:open")
    ap.add_argument("--closed-nqn", default="nqn.2026-11.io.nvmfd.test:closed")
    ap.add_argument("--allowed-host",
                    default="nqn.2026-11.io.nvmfd.test:allowed-host")
    ap.add_argument("--inline-data-size", type=int, default=4096)
    ap.add_argument("--maxh2cdata", type=int, default=16384)
    ap.add_argument("--max-queue-depth", type=int, default=64)
    ap.add_argument("--ns-size", type=int, default=16 << 20)
    ap.add_argument("--pid", type=int, help="nvmfd's, to watch its memory")
    ap.add_argument("--auth-nqn", help="a subsystem requiring DH-HMAC-CHAP "
                    "(without it the authentication cases are skipped)")
    ap.add_argument("--auth-host", help="a host NQN with --auth-key")
    ap.add_argument("--auth-key", help="its DHHC-1 secret")
    ap.add_argument("--auth-ctrl-key", help="its controller DHHC-1 secret")
    ap.add_argument("--auth-nokey-host", help="a host allowed without a key")
    ap.add_argument("-k", "--only", help="run only cases whose name contains this")
    a = ap.parse_args()
    env = Env(a)

    passed = failed = 0
    start = time.monotonic()
    for name, fn in CASES:
        if a.only and a.only not in name:
            continue
        if name.startswith("authentication: ") and not (
                a.auth_nqn and a.auth_host and a.auth_key and
                a.auth_ctrl_key and a.auth_nokey_host):
            print(f"ok - {name} # SKIP no --auth-* options", flush=True)
            continue
        if time.monotonic() - start > TIME_BUDGET:
            print(f"not ok - {name}: not run, the {TIME_BUDGET:.0f} s budget is spent",
                  flush=True)
            failed += 1
            continue
        t0 = time.monotonic()
        try:
            try:
                fn(env)
            finally:
                env.close_all()
            try:
                alive(env)
            except Exception as e:
                raise Fail(f"target no longer serves: {type(e).__name__}: {e}")
        except Fail as e:
            print(f"not ok - {name}: {e}", flush=True)
            failed += 1
        except TermReq as e:
            print(f"not ok - {name}: unexpected {e}", flush=True)
            failed += 1
        except Exception as e:      # noqa: BLE001 - report and go on
            print(f"not ok - {name}: {type(e).__name__}: {e}", flush=True)
            failed += 1
        else:
            took = time.monotonic() - t0
            print(f"ok - {name}" + (f" ({took:.1f} s)" if took >= 1 else ""),
                  flush=True)
            passed += 1
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
