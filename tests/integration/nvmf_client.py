"""nvmf_client: a small NVMe/TCP host for tests (Python 3, standard library only).

It speaks just enough of NVMe/TCP and NVMe over Fabrics to drive a target
from tests, correctly or on purpose not:

    h = Host("127.0.0.1", 4420)
    h.icreq(hdgst=True, ddgst=True)       # ICReq/ICResp, digests optional
    h.connect("nqn.example:sub")          # Fabrics Connect, admin queue
    h.enable()                            # CC.EN = 1, poll CSTS.RDY
    cpl = h.identify(CNS_CTRL)            # cpl.status..., cpl.data

Every receive has a timeout (Host.timeout seconds, 5 by default).  A
C2HTermReq from the target raises TermReq (with .fes, .fei, .data) unless
the caller asked for it with expect_term().  Lower-level builders
(build_pdu, sqe, h2c_data_pdu, ...) take overrides for each header field so
tests can send malformed PDUs.
"""
import base64
import hashlib
import hmac
import os
import select
import socket
import struct
import time
import uuid
import zlib

# PDU types (NVMe/TCP 1.0, 3.6.2)
ICREQ, ICRESP, H2C_TERM, C2H_TERM = 0x00, 0x01, 0x02, 0x03
CAPSULE_CMD, CAPSULE_RESP, H2C_DATA, C2H_DATA, R2T = 0x04, 0x05, 0x06, 0x07, 0x09
PDU_NAMES = {ICREQ: "ICReq", ICRESP: "ICResp", H2C_TERM: "H2CTermReq",
             C2H_TERM: "C2HTermReq", CAPSULE_CMD: "CapsuleCmd",
             CAPSULE_RESP: "CapsuleResp", H2C_DATA: "H2CData",
             C2H_DATA: "C2HData", R2T: "R2T"}

# Common header flags
F_HDGST, F_DDGST, F_LAST_PDU, F_SUCCESS = 0x01, 0x02, 0x04, 0x08

# C2HTermReq/H2CTermReq fatal error status
FES_INVALID_HEADER = 0x01
FES_PDU_SEQUENCE = 0x02
FES_HDGST = 0x03
FES_DATA_OUT_OF_RANGE = 0x04
FES_DATA_LIMIT = 0x05
FES_UNSUPPORTED = 0x06

CH = struct.Struct("<BBBBI")        # type, flags, hlen, pdo, plen
CMD_HLEN, RSP_HLEN, DATA_HLEN, TERM_HLEN, IC_HLEN = 72, 24, 24, 24, 128

# SGL descriptor identifiers (byte 15)
SGL_INCAPSULE = 0x01                # data block, offset subtype
SGL_TRANSPORT = 0x5A                # transport data block (R2T / C2HData)

# Opcodes
OPC_FABRICS = 0x7F
FCTYPE_PROP_SET, FCTYPE_CONNECT, FCTYPE_PROP_GET = 0x00, 0x01, 0x04
FCTYPE_DISCONNECT = 0x08
FCTYPE_AUTH_SEND, FCTYPE_AUTH_RECV = 0x05, 0x06
ADM_GET_LOG_PAGE, ADM_IDENTIFY, ADM_SET_FEATURES = 0x02, 0x06, 0x09
ADM_GET_FEATURES, ADM_KEEP_ALIVE = 0x0A, 0x18
ADM_ASYNC_EVENT = 0x0C
NVM_FLUSH, NVM_WRITE, NVM_READ, NVM_COMPARE = 0x00, 0x01, 0x02, 0x05

# Properties
REG_CAP, REG_VS, REG_CC, REG_CSTS = 0x00, 0x08, 0x14, 0x1C
CC_ENABLE = 1 | 6 << 16 | 4 << 20   # EN, IOSQES 64 bytes, IOCQES 16 bytes

CNS_NS, CNS_CTRL, CNS_ACTIVE_NS = 0x00, 0x01, 0x02
FEAT_NUM_QUEUES, FEAT_KATO = 0x07, 0x0F
LID_DISCOVERY = 0x70
DISCOVERY_NQN = "nqn.2014-08.org.nvmexpress.discovery"
CNTLID_DYNAMIC = 0xFFFF
CONNECT_AUTHREQ_ATR = 1 << 17       # Connect DW0: authenticate this queue


# ------------------------------------------------------------------ CRC32C

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC32C (Castagnoli): initial value and final XOR 0xFFFFFFFF.
    Pass the previous result as crc to continue over more data."""
    c = crc ^ 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def digest(data):
    """A digest as it goes on the wire: CRC32C, little-endian."""
    return struct.pack("<I", crc32c(data))


# ------------------------------------------------------------------ errors

class NvmfError(Exception):
    """Base class of everything this module raises."""


class Closed(NvmfError):
    """The target closed (or reset) the connection."""


class Timeout(NvmfError):
    """Nothing (or not enough) arrived within the timeout."""


class ProtocolError(NvmfError):
    """The target sent something this host did not expect."""


class TermReq(NvmfError):
    """The target sent C2HTermReq."""

    def __init__(self, fes, fei, data=b""):
        super().__init__(f"C2HTermReq FES {fes:#x} ({fes_name(fes)}) FEI {fei}")
        self.fes, self.fei, self.data = fes, fei, data


def fes_name(fes):
    return {FES_INVALID_HEADER: "invalid PDU header field",
            FES_PDU_SEQUENCE: "PDU sequence error",
            FES_HDGST: "header digest error",
            FES_DATA_OUT_OF_RANGE: "data transfer out of range",
            FES_DATA_LIMIT: "data transfer limit exceeded",
            FES_UNSUPPORTED: "unsupported parameter"}.get(fes, "unknown")


# ------------------------------------------------------------------ PDUs

class Pdu:
    """A received PDU: raw bytes plus decoded common header."""

    def __init__(self, raw, ddgst=False):
        self.raw = raw
        self.type, self.flags, self.hlen, self.pdo, self.plen = CH.unpack_from(raw)
        end = self.plen - (4 if ddgst and self.flags & F_DDGST else 0)
        self.data = raw[self.pdo:end] if self.pdo else b""

    @property
    def name(self):
        return PDU_NAMES.get(self.type, f"type {self.type:#x}")

    def u16(self, off):
        return struct.unpack_from("<H", self.raw, off)[0]

    def u32(self, off):
        return struct.unpack_from("<I", self.raw, off)[0]

    # Data PDUs and R2T share one layout: CCCID 8, TTAG 10, offset 12, length 16
    cccid = property(lambda self: self.u16(8))
    ttag = property(lambda self: self.u16(10))
    offset = property(lambda self: self.u32(12))
    length = property(lambda self: self.u32(16))

    def __repr__(self):
        return (f"<{self.name} flags {self.flags:#x} hlen {self.hlen} "
                f"pdo {self.pdo} plen {self.plen}>")


def build_pdu(ptype, body, data=b"", *, hdgst=False, ddgst=False, cpda=0,
              flags=0, hlen=None, pdo=None, plen=None, bad_hdgst=False,
              bad_ddgst=False):
    """Build a host-to-controller PDU.  body is the header after the 8-byte
    common header.  HDGST/DDGST, the digest flags, padding to the
    controller's alignment (CPDA) and PLEN follow the rules; hlen, pdo,
    plen and flags (OR-ed with the digest flags) override fields, and
    bad_hdgst/bad_ddgst corrupt a digest."""
    hl = CH.size + len(body)
    f = flags | (F_HDGST if hdgst else 0) | (F_DDGST if ddgst and data else 0)
    hd = 4 if hdgst else 0
    if data:
        align = (cpda + 1) * 4
        doff = -(-(hl + hd) // align) * align
        total = doff + len(data) + (4 if ddgst else 0)
    else:
        doff = 0
        total = hl + hd
    hdr = CH.pack(ptype, f, hl if hlen is None else hlen,
                  doff if pdo is None else pdo,
                  total if plen is None else plen) + body
    out = bytearray(hdr)
    if hdgst:
        d = crc32c(hdr) ^ (0x5A5A5A5A if bad_hdgst else 0)
        out += struct.pack("<I", d)
    if data:
        out += bytes(doff - len(out))
        out += data
        if ddgst:
            d = crc32c(data) ^ (0xA5A5A5A5 if bad_ddgst else 0)
            out += struct.pack("<I", d)
    return bytes(out)


def sgl(kind, length, address=0):
    """A 16-byte SGL descriptor: kind SGL_INCAPSULE or SGL_TRANSPORT."""
    return struct.pack("<QI3xB", address, length, kind)


def sqe(opc, *, cid=0, nsid=0, flags=0x40, fctype=None, sgl_desc=None,
        cdw10=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0, cdw15=0):
    """A 64-byte submission queue entry (PSDT = SGL by default).  For
    Fabrics commands, fctype goes to byte 4 (where NSID is otherwise)."""
    b = bytearray(64)
    struct.pack_into("<BBHI", b, 0, opc, flags, cid, nsid)
    if fctype is not None:
        b[4] = fctype
    b[24:40] = sgl_desc if sgl_desc is not None else sgl(SGL_TRANSPORT, 0)
    struct.pack_into("<6I", b, 40, cdw10, cdw11, cdw12, cdw13, cdw14, cdw15)
    return b


def term_pdu(ptype, fes, fei, data=b""):
    """H2CTermReq (or any TermReq-shaped PDU): never digested."""
    body = struct.pack("<HI10x", fes, fei)
    return CH.pack(ptype, 0, TERM_HLEN, TERM_HLEN if data else 0,
                   TERM_HLEN + len(data)) + body + data


def connect_data(subnqn, hostnqn, hostid, cntlid=CNTLID_DYNAMIC):
    """The 1024 bytes of Connect data.  NQNs given as bytes are copied
    as they are (up to 256 bytes, no NUL added): for unterminated ones."""
    d = bytearray(1024)
    d[0:16] = hostid
    struct.pack_into("<H", d, 16, cntlid)
    for off, nqn in ((256, subnqn), (512, hostnqn)):
        raw = nqn if isinstance(nqn, (bytes, bytearray)) else nqn.encode()
        d[off:off + min(len(raw), 256)] = raw[:256]
    return bytes(d)


class Completion:
    """A completion queue entry, plus any data the command returned."""

    def __init__(self, raw):
        (self.dw0, self.dw1, self.sqhd, self.sqid, self.cid,
         self.status) = struct.unpack_from("<IIHHHH", raw)
        self.data = b""

    sc = property(lambda self: (self.status >> 1) & 0xFF)
    sct = property(lambda self: (self.status >> 9) & 0x7)
    dnr = property(lambda self: bool(self.status & 0x8000))
    ok = property(lambda self: (self.status >> 1) == 0)
    value = property(lambda self: self.dw0 | self.dw1 << 32)
    ipo = property(lambda self: self.dw0 & 0xFFFF)           # Connect errors
    iattr = property(lambda self: (self.dw0 >> 16) & 0xFF)

    def __str__(self):
        return (f"SCT {self.sct:#x} SC {self.sc:#04x} DNR {int(self.dnr)} "
                f"DW0 {self.dw0:#010x}")


class _Cmd:
    def __init__(self, cid, wdata, rlen):
        self.cid = cid
        self.wdata = wdata          # data still to send on R2T, or None
        self.rbuf = bytearray(rlen)
        self.rgot = 0
        self.r2ts = 0


# ------------------------------------------------------------------ DH-HMAC-CHAP
# In-band authentication, host side (NVMe Base 2.x, 8.3.4): the messages,
# built field by field so tests can also build them wrong, and the
# responses as the host computes them.

AUTH_SECP, AUTH_SPSP = 0xE9, 0x01
AUTH_COMMON, AUTH_DHCHAP = 0x00, 0x01
AUTH_NEGOTIATE, AUTH_CHALLENGE, AUTH_REPLY = 0x00, 0x01, 0x02
AUTH_SUCCESS1, AUTH_SUCCESS2 = 0x03, 0x04
AUTH_FAILURE2, AUTH_FAILURE1 = 0xF0, 0xF1
AUTHID_DHCHAP = 0x01
SHA256, SHA384, SHA512 = 0x01, 0x02, 0x03
HASHES = {SHA256: hashlib.sha256, SHA384: hashlib.sha384, SHA512: hashlib.sha512}
DH_NULL, FFDHE2048 = 0x00, 0x01
ALL_HASHES = (SHA256, SHA384, SHA512)
ALL_GROUPS = (DH_NULL, 1, 2, 3, 4, 5)
# AUTH_Failure1/2 reason code explanations (RESCODE_EXP)
AUTH_FAIL_FAILED, AUTH_FAIL_PROTOCOL, AUTH_FAIL_CONCAT = 0x01, 0x02, 0x03
AUTH_FAIL_HASH, AUTH_FAIL_DHGROUP = 0x04, 0x05
AUTH_FAIL_PAYLOAD, AUTH_FAIL_MESSAGE = 0x06, 0x07
SC_AUTH_REQUIRED = 0x91             # SCT 1 (command specific)


def dhchap_secret(secret, xform=0):
    """The "DHHC-1:XX:<base64>:" form of a secret (nvme gen-dhchap-key)."""
    raw = secret + struct.pack("<I", zlib.crc32(secret))
    return f"DHHC-1:{xform:02x}:{base64.b64encode(raw).decode()}:"


def dhchap_parse(text):
    """(secret, transformation hash) of a "DHHC-1:XX:<base64>:" secret."""
    _, xx, b64, _ = text.split(":")
    raw = base64.b64decode(b64)
    secret, crc = raw[:-4], struct.unpack("<I", raw[-4:])[0]
    if zlib.crc32(secret) != crc:
        raise ValueError("DH-HMAC-CHAP secret with a bad CRC-32")
    return secret, int(xx, 16)


def dhchap_transform(secret, xform, nqn):
    """K: the secret itself, or HMAC-H_xform(secret, NQN "NVMe-over-Fabrics")."""
    if xform == 0:
        return secret
    return hmac.new(secret, nqn.encode() + b"NVMe-over-Fabrics",
                    HASHES[xform]).digest()


def dhchap_response(hashid, key, chal, seq, tid, role, nqn1, nqn2, scc=0):
    """HMAC-H(K, Ca || le32 seq || le16 T_ID || SC_C || role || nqn1 || 0
    || nqn2); role "HostHost" for R1, "Controller" for R2."""
    msg = (chal + struct.pack("<IHB", seq, tid, scc) + role.encode() +
           nqn1.encode() + b"\0" + nqn2.encode())
    return hmac.new(key, msg, HASHES[hashid]).digest()


def _e_scaled(bits):
    """floor(e * 2^bits), from the series sum 1/k! with guard bits."""
    one = 1 << (bits + 64)
    total, term, k = 0, one, 0
    while term:
        total += term
        k += 1
        term //= k
    return total >> 64


def ffdhe_prime(bits):
    """An RFC 7919 group's prime: 2^b - 2^(b-64) + {[2^(b-130) e] + X} * 2^64
    - 1, with X as the RFC gives it (ffdhe2048 only here)."""
    x = {2048: 560316}[bits]
    return (1 << bits) - (1 << (bits - 64)) + \
        ((_e_scaled(bits - 130) + x) << 64) - 1


class DhKey:
    """A host's ephemeral key pair in an ffdhe group (generator 2)."""

    def __init__(self, dhgid):
        bits = {FFDHE2048: 2048}[dhgid]
        self.p = ffdhe_prime(bits)
        self.size = bits // 8
        self.x = int.from_bytes(os.urandom(self.size), "big") % (self.p - 3) + 2
        self.public = pow(2, self.x, self.p).to_bytes(self.size, "big")

    def shared(self, peer):
        y = int.from_bytes(peer, "big")
        return pow(y, self.x, self.p).to_bytes(self.size, "big")


def auth_negotiate(tid, hashes=ALL_HASHES, groups=ALL_GROUPS, *, scc=0,
                   napd=1, authid=AUTHID_DHCHAP, halen=None, dhlen=None,
                   ndesc=None):
    """AUTH_Negotiate: NAPD descriptors (ndesc of them, NAPD by default),
    each with the hash and group lists; halen/dhlen override the counts."""
    d = bytearray(64)
    d[0] = authid
    d[2] = len(hashes) if halen is None else halen
    d[3] = len(groups) if dhlen is None else dhlen
    d[4:4 + len(hashes)] = bytes(hashes)
    d[34:34 + len(groups)] = bytes(groups)
    n = napd if ndesc is None else ndesc
    return struct.pack("<BBHHBB", AUTH_COMMON, AUTH_NEGOTIATE, 0, tid, scc,
                       napd) + bytes(d) * n


def auth_reply(tid, hl, r1, c2=b"", seq2=0, dhv=b"", *, cvalid=None,
               dhvlen=None):
    """DH-HMAC-CHAP_Reply; C2 is always there (zeros when not given)."""
    c2 = c2.ljust(hl, b"\0")
    cvalid = (1 if seq2 else 0) if cvalid is None else cvalid
    return struct.pack("<BBHHBBBBHI", AUTH_DHCHAP, AUTH_REPLY, 0, tid, hl, 0,
                       cvalid, 0, len(dhv) if dhvlen is None else dhvlen,
                       seq2) + r1 + c2 + dhv


def auth_success2(tid):
    return struct.pack("<BBHH10x", AUTH_DHCHAP, AUTH_SUCCESS2, 0, tid)


def auth_failure2(tid, reason=AUTH_FAIL_FAILED):
    return struct.pack("<BBHHBB", AUTH_COMMON, AUTH_FAILURE2, 0, tid, 1, reason)


class AuthMsg:
    """A message the controller returned: type, id, T_ID and the fields of
    Challenge (hl, hashid, dhgid, seq, chal, dhv), Success1 (hl, rvalid,
    r2) or Failure1 (rescode, reason)."""

    def __init__(self, data):
        if len(data) < 8:
            raise ProtocolError(f"authentication message of {len(data)} bytes")
        self.raw = data
        self.type, self.id, self.tid = data[0], data[1], struct.unpack_from(
            "<H", data, 4)[0]
        self.kind = {(AUTH_DHCHAP, AUTH_CHALLENGE): "Challenge",
                     (AUTH_DHCHAP, AUTH_SUCCESS1): "Success1",
                     (AUTH_COMMON, AUTH_FAILURE1): "Failure1"}.get(
                         (self.type, self.id),
                         f"message {self.type:#x}/{self.id:#x}")
        if self.kind == "Failure1":
            self.rescode, self.reason = data[6], data[7]
        elif self.kind == "Challenge":
            self.hl, self.hashid, self.dhgid = data[6], data[8], data[9]
            dhvlen, self.seq = struct.unpack_from("<HI", data, 10)
            self.chal = data[16:16 + self.hl]
            self.dhv = data[16 + self.hl:16 + self.hl + dhvlen]
            if len(self.chal) != self.hl or len(self.dhv) != dhvlen:
                raise ProtocolError("Challenge shorter than its fields")
        elif self.kind == "Success1":
            self.hl, self.rvalid = data[6], data[8]
            self.r2 = data[16:16 + self.hl]

    def __str__(self):
        if self.kind == "Failure1":
            return f"Failure1 RESCODE {self.rescode} reason {self.reason:#x}"
        return self.kind


# ------------------------------------------------------------------ host

def random_hostnqn():
    u = uuid.uuid4()
    return f"nqn.2014-08.org.nvmexpress:uuid:{u}", u.bytes


class Host:
    """One NVMe/TCP connection (one queue pair) in the host role."""

    def __init__(self, addr, port, *, timeout=5.0, hostnqn=None, hostid=None,
                 rcvbuf=None, source=None):
        self.timeout = timeout
        if rcvbuf is None:
            # source: the local address to connect from (127.0.0.2, ...).
            self.sock = socket.create_connection(
                (addr, port), timeout=timeout,
                source_address=(source, 0) if source else None)
        else:
            # A small receive buffer (set before connecting, so the window
            # stays small) lets tests make the target's sends block.
            self.sock = socket.socket(socket.AF_INET6 if ":" in addr
                                      else socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            try:
                self.sock.connect((addr, port))
            except OSError:
                self.sock.close()
                raise
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if hostnqn is None:
            hostnqn, rid = random_hostnqn()
            hostid = hostid or rid
        self.hostnqn = hostnqn
        self.hostid = hostid or uuid.uuid4().bytes
        self.buf = bytearray()
        self.hdgst = self.ddgst = False
        self.cpda = self.hpda = 0
        self.maxh2cdata = 4096
        self.next_cid = 1
        self.cmds = {}
        self.done = {}              # completions that arrived early
        self.cntlid = self.qid = self.subnqn = None
        self.closed_at = None       # when poll_closed() saw the close

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----------------------------------------------------------- raw I/O
    def send(self, data):
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionError) as e:
            raise Closed(f"send failed: {e}") from None

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"timed out with {len(self.buf)} of {n} bytes")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                raise Timeout(f"timed out with {len(self.buf)} of {n} bytes") from None
            except ConnectionError as e:
                raise Closed(f"connection reset ({e})") from None
            if not chunk:
                raise Closed(f"connection closed with {len(self.buf)} bytes "
                             f"of an {n}-byte read")
            self.buf += chunk

    def recv_raw_pdu(self, timeout=None):
        """The next PDU as a Pdu, digests checked, TermReq not raised."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(CH.size, deadline)
        ptype, flags, hlen, pdo, plen = CH.unpack_from(self.buf)
        if plen < CH.size or plen > (64 << 20):
            raise ProtocolError(f"PDU type {ptype:#x} with PLEN {plen}")
        self._fill(plen, deadline)
        raw = bytes(self.buf[:plen])
        del self.buf[:plen]
        pdu = Pdu(raw, self.ddgst)
        self._check_digests(pdu)
        return pdu

    def recv_pdu(self, timeout=None):
        """The next PDU; a C2HTermReq raises TermReq."""
        pdu = self.recv_raw_pdu(timeout)
        if pdu.type == C2H_TERM:
            raise TermReq(pdu.u16(8), pdu.u32(10), pdu.raw[pdu.hlen:])
        return pdu

    def _check_digests(self, pdu):
        if pdu.type not in (CAPSULE_RESP, C2H_DATA, R2T):
            return
        expect_hlen = RSP_HLEN if pdu.type == CAPSULE_RESP else DATA_HLEN
        if pdu.hlen != expect_hlen:
            raise ProtocolError(f"{pdu.name} with HLEN {pdu.hlen}")
        if bool(pdu.flags & F_HDGST) != self.hdgst:
            raise ProtocolError(f"{pdu.name}: HDGSTF {pdu.flags & F_HDGST} but "
                                f"header digest {'on' if self.hdgst else 'off'}")
        if self.hdgst:
            got = pdu.raw[pdu.hlen:pdu.hlen + 4]
            if got != digest(pdu.raw[:pdu.hlen]):
                raise ProtocolError(f"{pdu.name}: bad header digest")
        if pdu.type == C2H_DATA:
            if pdu.length != len(pdu.data):
                raise ProtocolError(f"C2HData DATAL {pdu.length} but "
                                    f"{len(pdu.data)} data bytes")
            align = (self.hpda + 1) * 4
            if pdu.pdo % align or pdu.pdo < pdu.hlen + (4 if self.hdgst else 0):
                raise ProtocolError(f"C2HData PDO {pdu.pdo} (HPDA {self.hpda})")
            if bool(pdu.flags & F_DDGST) != self.ddgst:
                raise ProtocolError("C2HData: DDGSTF does not match the "
                                    "negotiated data digest")
            if self.ddgst and pdu.raw[pdu.plen - 4:pdu.plen] != digest(pdu.data):
                raise ProtocolError("C2HData: bad data digest")

    def expect_closed(self, timeout=None):
        """Wait for the target to close the connection; anything that
        arrives first is a ProtocolError (a Timeout if it never closes)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if self.buf:
                raise ProtocolError(f"{len(self.buf)} unexpected bytes before "
                                    f"the close (first byte {self.buf[0]:#x})")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("the target did not close the connection")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Timeout("the target did not close the connection") from None
            except ConnectionError:
                return
            if not chunk:
                return
            self.buf += chunk

    def poll_closed(self):
        """Without waiting: True once the target has closed the connection
        (EOF or reset), its monotonic time then in closed_at.  What arrives
        before the close (a C2HTermReq, say) is kept in buf."""
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
            self.buf += chunk
        return False

    def expect_term(self, skip=(R2T,), timeout=None):
        """Read PDUs (skipping the given types) until a C2HTermReq, check it
        is sane and that the connection then closes.  Returns the TermReq."""
        while True:
            try:
                pdu = self.recv_raw_pdu(timeout)
            except Closed as e:
                raise ProtocolError(f"closed without a C2HTermReq: {e}") from None
            if pdu.type == C2H_TERM:
                break
            if pdu.type in skip:
                continue
            extra = ""
            if pdu.type == CAPSULE_RESP:
                extra = f" ({Completion(pdu.raw[8:24])})"
            raise ProtocolError(f"expected C2HTermReq, got {pdu.name}{extra}")
        if pdu.hlen != TERM_HLEN or not TERM_HLEN <= pdu.plen <= TERM_HLEN + 128:
            raise ProtocolError(f"malformed C2HTermReq: {pdu!r}")
        term = TermReq(pdu.u16(8), pdu.u32(10), pdu.raw[pdu.hlen:])
        self.expect_closed(timeout)
        return term

    # ----------------------------------------------------------- IC exchange
    def icreq_pdu(self, *, hdgst=False, ddgst=False, hpda=0, maxr2t=0, pfv=0,
                  hlen=IC_HLEN, plen=IC_HLEN, pdo=0, flags=0):
        body = struct.pack("<HBBI", pfv, hpda, (1 if hdgst else 0) |
                           (2 if ddgst else 0), maxr2t).ljust(IC_HLEN - 8, b"\0")
        return CH.pack(ICREQ, flags, hlen, pdo, plen) + body

    def icreq(self, *, hdgst=False, ddgst=False, hpda=0, maxr2t=0):
        """ICReq/ICResp; the digests are what the controller granted."""
        self.hpda = hpda
        self.send(self.icreq_pdu(hdgst=hdgst, ddgst=ddgst, hpda=hpda,
                                 maxr2t=maxr2t))
        pdu = self.recv_pdu()
        if pdu.type != ICRESP or pdu.hlen != IC_HLEN or pdu.plen != IC_HLEN:
            raise ProtocolError(f"expected ICResp, got {pdu!r}")
        pfv, cpda, dgst, maxh2c = struct.unpack_from("<HBBI", pdu.raw, 8)
        if pfv != 0:
            raise ProtocolError(f"ICResp PFV {pfv}")
        if cpda > 31 or maxh2c < 4096 or maxh2c % 4:
            raise ProtocolError(f"ICResp CPDA {cpda} MAXH2CDATA {maxh2c}")
        self.hdgst, self.ddgst = bool(dgst & 1), bool(dgst & 2)
        if (hdgst, ddgst) != (self.hdgst, self.ddgst):
            raise ProtocolError(f"asked for digests hdgst={hdgst} ddgst={ddgst}, "
                                f"ICResp DGST {dgst:#x}")
        self.cpda, self.maxh2cdata = cpda, maxh2c
        return pdu

    # ----------------------------------------------------------- commands
    def alloc_cid(self):
        cid = self.next_cid
        self.next_cid = (self.next_cid + 1) & 0xFFFF or 1
        return cid

    def capsule(self, s, data=b"", **overrides):
        """A CapsuleCmd PDU for SQE s with in-capsule data, using the
        negotiated digests (overridable, see build_pdu)."""
        kw = dict(hdgst=self.hdgst, ddgst=self.ddgst, cpda=self.cpda)
        kw.update(overrides)
        return build_pdu(CAPSULE_CMD, bytes(s), data, **kw)

    def submit(self, opc, *, data_out=None, inline=True, read_len=0, **fields):
        """Send a command; returns its CID.  data_out goes in the capsule
        (inline) or on request of the target's R2Ts; read_len bytes are
        expected back in C2HData."""
        cid = fields.pop("cid", None)
        if cid is None:
            cid = self.alloc_cid()
        data_out = data_out or b""
        if "sgl_desc" not in fields:
            if data_out and inline:
                fields["sgl_desc"] = sgl(SGL_INCAPSULE, len(data_out))
            else:
                fields["sgl_desc"] = sgl(SGL_TRANSPORT, len(data_out) or read_len)
        s = sqe(opc, cid=cid, **fields)
        self.cmds[cid] = _Cmd(cid, None if inline else data_out, read_len)
        self.send(self.capsule(s, data_out if inline else b""))
        return cid

    def register(self, cid, read_len=0):
        """Expect a completion (and read_len bytes of data) for a command
        the caller sent by hand; wait(cid) then collects it."""
        self.cmds[cid] = _Cmd(cid, None, read_len)

    def wait(self, cid, timeout=None):
        """Process PDUs until the CapsuleResp for cid; answers R2Ts."""
        if cid in self.done:
            return self.done.pop(cid)
        while True:
            pdu = self.recv_pdu(timeout)
            if pdu.type == CAPSULE_RESP:
                cpl = Completion(pdu.raw[8:24])
                cmd = self.cmds.pop(cpl.cid, None)
                if cmd is None:
                    raise ProtocolError(f"CapsuleResp for unknown CID {cpl.cid}")
                cpl.data = bytes(cmd.rbuf[:cmd.rgot])
                if cpl.cid == cid:
                    return cpl
                self.done[cpl.cid] = cpl
            elif pdu.type == C2H_DATA:
                cmd = self.cmds.get(pdu.cccid)
                if cmd is None:
                    raise ProtocolError(f"C2HData for unknown CID {pdu.cccid}")
                if pdu.offset != cmd.rgot or pdu.offset + pdu.length > len(cmd.rbuf):
                    raise ProtocolError(f"C2HData DATAO {pdu.offset} DATAL "
                                        f"{pdu.length}: expected offset {cmd.rgot}"
                                        f" of {len(cmd.rbuf)} bytes")
                cmd.rbuf[pdu.offset:pdu.offset + pdu.length] = pdu.data
                cmd.rgot += pdu.length
                if pdu.flags & F_SUCCESS:
                    raise ProtocolError("C2HData with SUCCESS: SQ flow control "
                                        "was not disabled")
            elif pdu.type == R2T:
                self._answer_r2t(pdu)
            else:
                raise ProtocolError(f"unexpected {pdu!r} while waiting for CID {cid}")

    def _answer_r2t(self, pdu):
        cmd = self.cmds.get(pdu.cccid)
        if cmd is None or cmd.wdata is None:
            raise ProtocolError(f"R2T for CID {pdu.cccid}, which has no data to send")
        off, length = pdu.offset, pdu.length
        if length == 0 or off + length > len(cmd.wdata):
            raise ProtocolError(f"R2T R2TO {off} R2TL {length} for "
                                f"{len(cmd.wdata)} bytes")
        cmd.r2ts += 1
        out = bytearray()
        end = off + length
        while off < end:
            n = min(self.maxh2cdata, end - off)
            out += self.h2c_data_pdu(pdu.cccid, pdu.ttag, off,
                                     cmd.wdata[off:off + n], last=off + n == end)
            off += n
        self.send(out)

    def h2c_data_pdu(self, cccid, ttag, datao, data, *, last=True, datal=None,
                     **overrides):
        body = struct.pack("<HHII4x", cccid, ttag, datao,
                           len(data) if datal is None else datal)
        kw = dict(hdgst=self.hdgst, ddgst=self.ddgst, cpda=self.cpda,
                  flags=F_LAST_PDU if last else 0)
        kw.update(overrides)
        return build_pdu(H2C_DATA, body, data, **kw)

    def cmd(self, opc, timeout=None, **kw):
        return self.wait(self.submit(opc, **kw), timeout)

    def expect_pdu(self, ptype, timeout=None):
        pdu = self.recv_pdu(timeout)
        if pdu.type != ptype:
            raise ProtocolError(f"expected {PDU_NAMES.get(ptype, ptype)}, got {pdu!r}")
        return pdu

    # ----------------------------------------------------------- Fabrics
    def connect(self, subnqn, *, qid=0, sqsize=31, kato=0, cntlid=CNTLID_DYNAMIC,
                hostnqn=None, hostid=None, recfmt=0, cattr=0, data=None):
        """Fabrics Connect (SQSIZE is 0's based).  On success remembers the
        CNTLID and QID.  Returns the Completion."""
        hostnqn = self.hostnqn if hostnqn is None else hostnqn
        hostid = self.hostid if hostid is None else hostid
        if data is None:
            data = connect_data(subnqn, hostnqn, hostid, cntlid)
        cpl = self.cmd(OPC_FABRICS, fctype=FCTYPE_CONNECT, data_out=data,
                       cdw10=recfmt | qid << 16, cdw11=sqsize | cattr << 16,
                       cdw12=kato)
        if cpl.ok:
            self.cntlid, self.qid, self.subnqn = cpl.dw0 & 0xFFFF, qid, subnqn
        return cpl

    def prop_get(self, ofst, size8=None):
        if size8 is None:
            size8 = ofst == REG_CAP
        return self.cmd(OPC_FABRICS, fctype=FCTYPE_PROP_GET,
                        cdw10=1 if size8 else 0, cdw11=ofst)

    def prop_set(self, ofst, value):
        return self.cmd(OPC_FABRICS, fctype=FCTYPE_PROP_SET, cdw10=0,
                        cdw11=ofst, cdw12=value & 0xFFFFFFFF, cdw13=value >> 32)

    def enable(self, cc=CC_ENABLE, timeout=5.0):
        """CC.EN = 1 and wait for CSTS.RDY."""
        cpl = self.prop_set(REG_CC, cc)
        if not cpl.ok:
            raise ProtocolError(f"Property Set CC failed: {cpl}")
        deadline = time.monotonic() + timeout
        while True:
            cpl = self.prop_get(REG_CSTS)
            if not cpl.ok:
                raise ProtocolError(f"Property Get CSTS failed: {cpl}")
            if cpl.dw0 & 2:
                raise ProtocolError(f"CSTS.CFS set (CSTS {cpl.dw0:#x})")
            if cpl.dw0 & 1:
                return
            if time.monotonic() > deadline:
                raise Timeout("CSTS.RDY did not become 1")
            time.sleep(0.005)

    # ----------------------------------------------------------- authentication
    def auth_send(self, msg, *, tl=None, secp=AUTH_SECP, spsp0=AUTH_SPSP,
                  spsp1=AUTH_SPSP, inline=True, timeout=None, **kw):
        """Authentication Send of msg; TL is its length unless given."""
        tl = len(msg) if tl is None else tl
        return self.cmd(OPC_FABRICS, fctype=FCTYPE_AUTH_SEND, data_out=msg,
                        inline=inline, timeout=timeout,
                        cdw10=secp << 24 | spsp1 << 16 | spsp0 << 8,
                        cdw11=tl, **kw)

    def auth_recv(self, al=4096, *, secp=AUTH_SECP, spsp0=AUTH_SPSP,
                  spsp1=AUTH_SPSP, timeout=None, **kw):
        """Authentication Receive of AL bytes (4096, as Linux asks)."""
        return self.cmd(OPC_FABRICS, fctype=FCTYPE_AUTH_RECV, read_len=al,
                        timeout=timeout,
                        cdw10=secp << 24 | spsp1 << 16 | spsp0 << 8,
                        cdw11=al, **kw)

    def auth_message(self, al=4096):
        """Receive the controller's next message as an AuthMsg."""
        cpl = self.auth_recv(al)
        if not cpl.ok:
            raise ProtocolError(f"Authentication Receive failed: {cpl}")
        return AuthMsg(cpl.data)

    def auth_challenge(self, tid, hashes=ALL_HASHES, groups=ALL_GROUPS):
        """Negotiate and receive the Challenge (ProtocolError otherwise)."""
        cpl = self.auth_send(auth_negotiate(tid, hashes, groups))
        if not cpl.ok:
            raise ProtocolError(f"Authentication Send (Negotiate): {cpl}")
        m = self.auth_message()
        if m.kind != "Challenge" or m.tid != tid:
            raise ProtocolError(f"{m} (T_ID {m.tid}) for the Negotiate")
        return m

    def auth_answer(self, ch, secret, xform=0, *, ctrl_secret=None,
                    seq2=0x10203, subnqn=None):
        """The Reply to Challenge ch, and what the controller must send
        back as R2: (reply, expected R2 or None)."""
        subnqn = subnqn or self.subnqn
        dhv, r2 = b"", None
        if ch.dhgid != DH_NULL:
            key = DhKey(ch.dhgid)
            z = key.shared(ch.dhv)
            dhv = key.public
            hz = HASHES[ch.hashid](z).digest()
        else:
            hz = None

        def aug(c):
            return c if hz is None else \
                hmac.new(hz, c, HASHES[ch.hashid]).digest()
        k = dhchap_transform(secret, xform, self.hostnqn)
        r1 = dhchap_response(ch.hashid, k, aug(ch.chal), ch.seq, ch.tid,
                             "HostHost", self.hostnqn, subnqn)
        c2 = b""
        if ctrl_secret is not None:
            c2 = os.urandom(ch.hl)
            kc = dhchap_transform(ctrl_secret[0], ctrl_secret[1], subnqn)
            r2 = dhchap_response(ch.hashid, kc, aug(c2), seq2, ch.tid,
                                 "Controller", subnqn, self.hostnqn)
        else:
            seq2 = 0
        return auth_reply(ch.tid, ch.hl, r1, c2, seq2, dhv), r2

    def authenticate(self, secret, xform=0, *, ctrl_secret=None, tid=1,
                     hashes=ALL_HASHES, groups=(DH_NULL,)):
        """A whole transaction; ctrl_secret (secret, xform) asks for and
        checks the controller's response.  ProtocolError on any failure."""
        ch = self.auth_challenge(tid, hashes, groups)
        reply, r2 = self.auth_answer(ch, secret, xform,
                                     ctrl_secret=ctrl_secret)
        cpl = self.auth_send(reply)
        if not cpl.ok:
            raise ProtocolError(f"Authentication Send (Reply): {cpl}")
        m = self.auth_message()
        if m.kind != "Success1" or m.tid != tid or m.hl != ch.hl:
            raise ProtocolError(f"{m} for the Reply")
        if r2 is not None:
            if not m.rvalid or m.r2 != r2:
                raise ProtocolError("Success1 without the right R2")
            cpl = self.auth_send(auth_success2(tid))
            if not cpl.ok:
                raise ProtocolError(f"Authentication Send (Success2): {cpl}")
        return ch

    # ----------------------------------------------------------- admin
    def identify(self, cns, nsid=0, cntid=0, csi=0, length=4096):
        return self.cmd(ADM_IDENTIFY, nsid=nsid, read_len=length,
                        cdw10=cns | cntid << 16, cdw11=csi << 24)

    def get_log_page(self, lid, offset=0, length=4096, rae=False, nsid=0):
        numd = length // 4 - 1
        return self.cmd(ADM_GET_LOG_PAGE, nsid=nsid, read_len=length,
                        cdw10=lid | (0x8000 if rae else 0) | (numd & 0xFFFF) << 16,
                        cdw11=numd >> 16, cdw12=offset & 0xFFFFFFFF,
                        cdw13=offset >> 32)

    def set_features(self, fid, cdw11, save=False):
        return self.cmd(ADM_SET_FEATURES, cdw10=fid | (1 << 31 if save else 0),
                        cdw11=cdw11)

    def set_num_queues(self, n):
        """Ask for n I/O queues; returns how many were granted."""
        cpl = self.set_features(FEAT_NUM_QUEUES, (n - 1) | (n - 1) << 16)
        if not cpl.ok:
            raise ProtocolError(f"Set Features Number of Queues failed: {cpl}")
        return min(cpl.dw0 & 0xFFFF, cpl.dw0 >> 16) + 1

    def keep_alive(self):
        return self.cmd(ADM_KEEP_ALIVE)

    def aer(self):
        """Post an Asynchronous Event Request; returns its CID."""
        return self.submit(ADM_ASYNC_EVENT)

    def aer_result(self, cid, timeout):
        """The event's DW0, None if none came within timeout, or a
        string for a failed AER."""
        try:
            cpl = self.wait(cid, timeout=timeout)
        except Timeout:
            return None
        return cpl.dw0 if cpl.ok else f"failed {cpl}"

    # ----------------------------------------------------------- NVM
    def rw_fields(self, slba, nlb):
        return dict(cdw10=slba & 0xFFFFFFFF, cdw11=slba >> 32,
                    cdw12=(nlb - 1) & 0xFFFF)

    def read(self, nsid, slba, nlb, block_size=512, **kw):
        return self.cmd(NVM_READ, nsid=nsid, read_len=nlb * block_size,
                        **self.rw_fields(slba, nlb), **kw)

    def write(self, nsid, slba, data, block_size=512, inline=True, **kw):
        nlb = len(data) // block_size
        return self.cmd(NVM_WRITE, nsid=nsid, data_out=data, inline=inline,
                        **self.rw_fields(slba, nlb), **kw)

    def compare(self, nsid, slba, data, block_size=512, inline=True, **kw):
        nlb = len(data) // block_size
        return self.cmd(NVM_COMPARE, nsid=nsid, data_out=data, inline=inline,
                        **self.rw_fields(slba, nlb), **kw)


# ------------------------------------------------------------------ set-up

def open_admin(addr, port, subnqn, *, hostnqn=None, hostid=None, kato=0,
               hdgst=False, ddgst=False, hpda=0, enable=True, timeout=5.0):
    """A connected (and by default enabled) admin queue."""
    h = Host(addr, port, timeout=timeout, hostnqn=hostnqn, hostid=hostid)
    try:
        h.icreq(hdgst=hdgst, ddgst=ddgst, hpda=hpda)
        cpl = h.connect(subnqn, kato=kato)
        if not cpl.ok:
            raise ProtocolError(f"admin Connect to {subnqn} failed: {cpl}")
        if enable:
            h.enable()
    except BaseException:
        h.close()
        raise
    return h


def open_io(admin, addr, port, subnqn, qid=1, sqsize=31, *, hdgst=False,
            ddgst=False, hpda=0, timeout=5.0, rcvbuf=None):
    """An I/O queue of admin's controller."""
    h = Host(addr, port, timeout=timeout, hostnqn=admin.hostnqn,
             hostid=admin.hostid, rcvbuf=rcvbuf)
    try:
        h.icreq(hdgst=hdgst, ddgst=ddgst, hpda=hpda)
        cpl = h.connect(subnqn, qid=qid, sqsize=sqsize, cntlid=admin.cntlid)
        if not cpl.ok:
            raise ProtocolError(f"I/O Connect (QID {qid}) failed: {cpl}")
    except BaseException:
        h.close()
        raise
    return h
