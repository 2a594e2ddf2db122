"""evil_target: an NVMe/TCP controller that lies, for host-evil.sh.

    python3 evil_target.py PORT MODE

Listens on 127.0.0.1:PORT and serves every connection (until killed) with
just enough of a controller for a host's bring-up (Connect, properties,
Identify, Set Features, Keep Alive, the discovery log) and one namespace,
then breaks the protocol as MODE says:

    none            no lie: the host must come up (the control case)
    icresp-pfv      the ICResp has PFV 1
    icresp-maxh2c   the ICResp has MAXH2CDATA 1024
    icresp-digest   the ICResp grants digests the host did not ask for
    unknown-cid     the Connect is answered with a CQE for another CID
    c2h-overflow    Identify Controller's C2HData runs 512 bytes past the
                    command's buffer
    disc-count      the discovery log header counts 3 records; it holds 1
    mute            after the ICResp, never a word
    mute-io         a good admin queue; I/O commands never answered

Prints "ready" once listening.  Standard library only (and nvmf_client).
"""
import socket
import struct
import sys
import threading

from nvmf_client import (CH, ICRESP, CAPSULE_CMD, CAPSULE_RESP, C2H_DATA,
                         F_LAST_PDU, OPC_FABRICS, FCTYPE_CONNECT,
                         FCTYPE_PROP_GET, ADM_IDENTIFY, ADM_GET_LOG_PAGE,
                         ADM_SET_FEATURES, ADM_KEEP_ALIVE, CNS_CTRL,
                         CNS_ACTIVE_NS, CNS_NS, LID_DISCOVERY, REG_CAP,
                         REG_VS, REG_CSTS, build_pdu)

port, mode = int(sys.argv[1]), sys.argv[2]
ADM_ASYNC_EVENT = 0x0C
SC_INVALID_OPCODE = 0x01
SUBNQN = b"nqn.2026-12.io.nvmfd.test:evil"


def recv(conn, n):
    out = b""
    while len(out) < n:
        b = conn.recv(n - len(out))
        if not b:
            raise EOFError
        out += b
    return out


def identify(cns):
    d = bytearray(4096)
    if cns == CNS_CTRL:
        d[768:768 + len(SUBNQN)] = SUBNQN
        struct.pack_into("<II", d, 1792, 4, 1)      # IOCCSZ, IORCSZ
        d[536] = 1                                  # SGLS
    elif cns == CNS_ACTIVE_NS:
        struct.pack_into("<I", d, 0, 1)
    elif cns == CNS_NS:
        struct.pack_into("<QQQ", d, 0, 2048, 2048, 2048)
        d[130] = 9                                  # LBA format 0: 512 B
    return bytes(d)


def discovery_log():
    hdr = bytearray(1024)
    struct.pack_into("<QQ", hdr, 0, 1, 3 if mode == "disc-count" else 1)
    e = bytearray(1024)
    e[0], e[1], e[2] = 3, 1, 2                      # TCP, IPv4, NVM
    e[32:64] = b"4420".ljust(32, b" ")
    e[256:256 + len(SUBNQN)] = SUBNQN
    e[512:768] = b"127.0.0.1".ljust(256, b" ")
    return bytes(hdr + e)


def cqe(cid, qid, dw0=0, dw1=0, status=0):
    return build_pdu(CAPSULE_RESP,
                     struct.pack("<IIHHHH", dw0, dw1, 0, qid, cid,
                                 status << 1))


def c2h(cid, data, datao=0):
    return build_pdu(C2H_DATA, struct.pack("<HHII4x", cid, 0, datao,
                                           len(data)), data,
                     flags=F_LAST_PDU)


def answer(s, qid):
    """(PDUs to send, the new qid) for the 64-byte SQE s."""
    opc, cid = s[0], struct.unpack_from("<H", s, 2)[0]
    cdw10, cdw11, cdw12, cdw13 = struct.unpack_from("<4I", s, 40)
    length = struct.unpack_from("<I", s, 32)[0]
    if opc == OPC_FABRICS:
        fctype = s[4]
        if fctype == FCTYPE_CONNECT:
            qid = struct.unpack_from("<H", s, 42)[0]
            if mode == "unknown-cid":
                return [cqe(cid ^ 0x100, qid, 1)], qid
            return [cqe(cid, qid, 1)], qid
        if fctype == FCTYPE_PROP_GET:
            v = {REG_CAP: 127 | 1 << 16 | 20 << 24 | 1 << 37,
                 REG_VS: 0x10400, REG_CSTS: 1 | 2 << 2}.get(cdw11, 0)
            return [cqe(cid, qid, v & 0xFFFFFFFF, v >> 32)], qid
        return [cqe(cid, qid)], qid
    if qid != 0:
        if mode == "mute-io":
            return [], qid
        return [cqe(cid, qid, status=SC_INVALID_OPCODE)], qid
    if opc == ADM_IDENTIFY:
        d = identify(cdw10 & 0xFF)[:length]
        if mode == "c2h-overflow" and cdw10 & 0xFF == CNS_CTRL:
            d += bytes(512)
        return [c2h(cid, d), cqe(cid, qid)], qid
    if opc == ADM_GET_LOG_PAGE:
        off = cdw12 | cdw13 << 32
        log = discovery_log() if cdw10 & 0xFF == LID_DISCOVERY else b""
        d = log[off:off + length]
        return [c2h(cid, d + bytes(length - len(d))), cqe(cid, qid)], qid
    if opc == ADM_SET_FEATURES or opc == ADM_KEEP_ALIVE:
        return [cqe(cid, qid)], qid
    if opc == ADM_ASYNC_EVENT:
        return [], qid                              # kept, never answered
    return [cqe(cid, qid, status=SC_INVALID_OPCODE)], qid


def serve(conn):
    conn.settimeout(60)
    try:
        ic = recv(conn, 128)
        digest = 3 if mode == "icresp-digest" else ic[11] & 3
        conn.sendall(CH.pack(ICRESP, 0, 128, 0, 128) +
                     struct.pack("<HBBI", 1 if mode == "icresp-pfv" else 0,
                                 0, digest,
                                 1024 if mode == "icresp-maxh2c" else 131072)
                     + bytes(112))
        qid = 0
        while True:
            ptype, _, _, _, plen = CH.unpack(recv(conn, 8))
            body = recv(conn, plen - 8)
            if ptype != CAPSULE_CMD or mode == "mute":
                continue
            out, qid = answer(body[:64], qid)
            conn.sendall(b"".join(out))
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(16)
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
