#!/usr/bin/env python3
"""kato.py HOST PORT SUBNQN [--kato-ms MS] [--max-s S]: keep-alive timeout check.

Opens three admin queues to SUBNQN on an NVMe/TCP target, each a new
controller (ICReq, Fabrics Connect with CNTLID 0xFFFF, CC.EN = 1, wait for
CSTS.RDY):

  silent  KATO = MS; one Keep Alive, then nothing.  The target must drop
          the connection no sooner than ~MS and within --max-s seconds of
          that Keep Alive's completion.
  active  KATO = MS; a Keep Alive every MS/4.  Every one must complete
          successfully, before and after the silent controller is dropped.
  idle    KATO = 0 (keep-alive disabled); silent, must stay connected.

Exit 0 if all three behave, 1 otherwise (with a message).  Standalone: only
the standard library, no other helper of the test suite.
"""
import argparse
import select
import socket
import struct
import sys
import time
import uuid

# PDU types (NVMe/TCP 1.0, 3.6.2)
ICREQ, ICRESP, C2H_TERM, CAPSULE_CMD, CAPSULE_RESP = 0x00, 0x01, 0x03, 0x04, 0x05
CH = struct.Struct("<BBBBI")          # type, flags, hlen, pdo, plen
CONNECT_DATA_LEN = 1024
DISCOVERY_NQN = "nqn.2014-08.org.nvmexpress.discovery"

T0 = time.monotonic()


def log(msg):
    print(f"kato.py: [{time.monotonic() - T0:6.3f}] {msg}", flush=True)


class Fail(Exception):
    pass


class Queue:
    """One admin queue: a TCP connection in the host role, no digests."""

    def __init__(self, name, host, port):
        self.name = name
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.cid = 0
        self.cntlid = None
        self.closed_at = None       # monotonic time the target closed it

    # ----------------------------------------------------------- receive
    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail(f"{self.name}: timed out waiting for the target")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Fail(f"{self.name}: timed out waiting for the target")
            except ConnectionError as e:
                raise Fail(f"{self.name}: connection lost: {e}")
            if not chunk:
                raise Fail(f"{self.name}: target closed the connection")
            self.buf += chunk

    def recv_pdu(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        self._fill(CH.size, deadline)
        ptype, flags, hlen, pdo, plen = CH.unpack_from(self.buf)
        if plen < CH.size or plen > 1 << 20:
            raise Fail(f"{self.name}: bad PDU length {plen} (type {ptype:#x})")
        self._fill(plen, deadline)
        pdu, self.buf = self.buf[:plen], self.buf[plen:]
        if ptype == C2H_TERM:
            fes = struct.unpack_from("<H", pdu, 8)[0]
            raise Fail(f"{self.name}: target sent C2HTermReq, FES {fes:#x}")
        return ptype, hlen, pdu

    # ----------------------------------------------------------- send
    def icreq(self):
        body = struct.pack("<HBBI", 0, 0, 0, 0)    # PFV 0, HPDA 0, no digests, MAXR2T 1
        self.sock.sendall(CH.pack(ICREQ, 0, 128, 0, 128) + body.ljust(120, b"\0"))
        ptype, hlen, pdu = self.recv_pdu()
        if ptype != ICRESP or hlen != 128 or len(pdu) != 128:
            raise Fail(f"{self.name}: bad ICResp: type {ptype:#x} hlen {hlen} "
                       f"plen {len(pdu)}")
        pfv, cpda, dgst = struct.unpack_from("<HBB", pdu, 8)
        if pfv != 0 or dgst != 0:
            raise Fail(f"{self.name}: ICResp PFV {pfv} DGST {dgst:#x}, wanted 0 and 0")
        self.cpda = cpda

    def command(self, sqe, data=b"", timeout=5.0):
        """Send a command capsule (data in the capsule), return (status, dw0, dw1)."""
        self.cid = (self.cid + 1) & 0xffff
        sqe = bytearray(sqe)
        struct.pack_into("<H", sqe, 2, self.cid)
        hlen = CH.size + 64
        pad = 0
        if data:
            pdo = hlen
            if self.cpda:
                align = (self.cpda + 1) * 4
                pdo = -(-hlen // align) * align
                pad = pdo - hlen
        else:
            pdo = 0
        plen = hlen + pad + len(data)
        self.sock.sendall(CH.pack(CAPSULE_CMD, 0, hlen, pdo, plen) + bytes(sqe)
                          + b"\0" * pad + data)
        ptype, hlen, pdu = self.recv_pdu(timeout)
        if ptype != CAPSULE_RESP or len(pdu) != 24:
            raise Fail(f"{self.name}: expected a response capsule, got type "
                       f"{ptype:#x} length {len(pdu)}")
        dw0, dw1, sqhd, sqid, cid, status = struct.unpack_from("<IIHHHH", pdu, 8)
        if cid != self.cid:
            raise Fail(f"{self.name}: response for CID {cid}, expected {self.cid}")
        return status >> 1, dw0, dw1

    # ----------------------------------------------------------- commands
    @staticmethod
    def _sqe(opcode, fctype=0):
        sqe = bytearray(64)
        sqe[0] = opcode
        sqe[1] = 0x40               # PSDT: SGL for data
        sqe[4] = fctype
        sqe[39] = 0x5a              # SGL: transport data block, no data
        return sqe

    def connect(self, subnqn, kato_ms):
        hostid = uuid.uuid4()
        hostnqn = f"nqn.2014-08.org.nvmexpress:uuid:{hostid}"
        sqe = self._sqe(0x7f, 0x01)                         # Fabrics Connect
        struct.pack_into("<QIxxxB", sqe, 24, 0, CONNECT_DATA_LEN, 0x01)  # SGL: in-capsule offset
        struct.pack_into("<HHHBxI", sqe, 40, 0, 0, 31, 0, kato_ms)  # RECFMT, QID 0, SQSIZE 32
        data = bytearray(CONNECT_DATA_LEN)
        data[0:16] = hostid.bytes
        struct.pack_into("<H", data, 16, 0xffff)            # dynamic controller
        data[256:256 + len(subnqn)] = subnqn.encode()
        data[512:512 + len(hostnqn)] = hostnqn.encode()
        status, dw0, _ = self.command(sqe, bytes(data))
        if status != 0:
            raise Fail(f"{self.name}: Connect failed, status {status:#x}")
        self.cntlid = dw0 & 0xffff
        log(f"{self.name}: controller {self.cntlid} (KATO {kato_ms} ms, host {hostnqn})")

    def prop_get(self, offset, size8=False):
        sqe = self._sqe(0x7f, 0x04)
        struct.pack_into("<BxxxI", sqe, 40, 1 if size8 else 0, offset)
        status, dw0, dw1 = self.command(sqe)
        if status != 0:
            raise Fail(f"{self.name}: Property Get {offset:#x} failed, status {status:#x}")
        return dw0 | dw1 << 32 if size8 else dw0

    def prop_set(self, offset, value):
        sqe = self._sqe(0x7f, 0x00)
        struct.pack_into("<BxxxIQ", sqe, 40, 0, offset, value)
        status, _, _ = self.command(sqe)
        if status != 0:
            raise Fail(f"{self.name}: Property Set {offset:#x} failed, status {status:#x}")

    def enable(self):
        self.prop_set(0x14, 0x00460001)                     # CC: EN, IOSQES 6, IOCQES 4
        deadline = time.monotonic() + 5
        while not self.prop_get(0x1c) & 1:                  # CSTS.RDY
            if time.monotonic() > deadline:
                raise Fail(f"{self.name}: CSTS.RDY not set within 5 s")
            time.sleep(0.01)

    def keep_alive(self):
        status, _, _ = self.command(self._sqe(0x18))
        if status != 0:
            raise Fail(f"{self.name}: Keep Alive failed, status {status:#x}")

    def poll_closed(self):
        """Non-blocking: True once the target has closed (EOF or reset)."""
        if self.closed_at is not None:
            return True
        while select.select([self.sock], [], [], 0)[0]:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionError:
                chunk = b""
            if not chunk:
                self.closed_at = time.monotonic()
                return True
            self.buf += chunk       # e.g. a C2HTermReq before the close
        return False

    def close(self):
        self.sock.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("subnqn")
    ap.add_argument("--kato-ms", type=int, default=1000)
    ap.add_argument("--max-s", type=float, default=3.0,
                    help="latest acceptable close after the last Keep Alive")
    a = ap.parse_args()
    kato = a.kato_ms / 1000

    queues = []
    try:
        active = Queue("active", a.host, a.port)
        queues.append(active)
        silent = Queue("silent", a.host, a.port)
        queues.append(silent)
        idle = Queue("idle", a.host, a.port)
        queues.append(idle)
        for q, k in ((active, a.kato_ms), (silent, a.kato_ms), (idle, 0)):
            q.icreq()
            q.connect(a.subnqn, k)
            q.enable()
        active.keep_alive()
        silent.keep_alive()
        t_last = time.monotonic()
        log("silent: last Keep Alive completed; sending nothing more")

        # Until the silent queue is dropped (or too late), plus 1.5 KATO more,
        # keep the active controller alive and watch the other two.
        deadline = t_last + a.max_s
        end = None
        nka = 0
        while True:
            now = time.monotonic()
            if silent.poll_closed() and end is None:
                log(f"silent: target closed the connection "
                    f"{silent.closed_at - t_last:.3f} s after the last Keep Alive")
                end = now + 1.5 * kato
            if end is None and now > deadline:
                raise Fail(f"silent: still connected {a.max_s} s after its last "
                           f"Keep Alive (KATO {a.kato_ms} ms)")
            if end is not None and now > end:
                break
            if active.poll_closed():
                raise Fail("active: target closed the connection although it sent "
                           "a Keep Alive every KATO/4")
            if idle.poll_closed():
                raise Fail("idle: target closed a controller with KATO 0")
            active.keep_alive()
            nka += 1
            time.sleep(kato / 4)

        took = silent.closed_at - t_last
        if took < 0.8 * kato:
            raise Fail(f"silent: dropped after {took:.3f} s, before its KATO of "
                       f"{kato:.3f} s")
        if silent.buf:
            log(f"silent: {len(silent.buf)} bytes arrived before the close "
                f"(PDU type {silent.buf[0]:#x})")
        active.keep_alive()
        idle.prop_get(0x1c)                 # still answers after a long silence
        log(f"active: {nka + 1} Keep Alives completed, still connected")
        log("idle: KATO 0 controller still connected and answering")
        print(f"kato.py: PASS: silent controller dropped {took:.3f} s after its "
              f"last Keep Alive (KATO {a.kato_ms} ms)", flush=True)
        return 0
    except (Fail, OSError) as e:
        print(f"kato.py: FAIL: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        for q in queues:
            q.close()


if __name__ == "__main__":
    sys.exit(main())
