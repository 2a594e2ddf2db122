#!/usr/bin/env python3
"""Write the seed inputs of the fuzz targets (tests/fuzz/seeds/TARGET/).

fuzz_tcp_target: whole host-side byte streams of one connection, built
with the integration tests' NVMe/TCP client: admin sessions (ICReq,
Connect, Property Get/Set, Identify, Get Log Page, features, keep-alive),
I/O sessions (Connect on queue 1, writes in the capsule and through
R2T/H2CData, reads, flush, write zeroes, DSM, compare), with and without
digests, and a discovery session.  The I/O sessions name controller 1,
which the target gives the first admin queue of each input; "NVMFUZZ2"
separates the bytes of a first connection (the admin queue, left up) from
those of a second one (queue 1); "NVMFUZZ/" lets the target answer what
came before (an R2T) before the rest arrives.
fuzz_config: the annotated example configuration and small variants.
fuzz_auth: a host that must authenticate: Connect, DH-HMAC-CHAP Negotiate
(NULL and ffdhe groups, each hash), the Challenge received, a Reply, the
result received, Success2.
fuzz_keys: DH-HMAC-CHAP secrets and TLS PSKs in interchange form (each
length and transformation), TLS PSK identities as hosts send them.
fuzz_control: control sessions framed as nvmfctl frames them: listings,
changes (subsystems, namespaces, hosts with keys, referrals, injected
errors), one request after another on one connection.
fuzz_host (with --nvmfd PATH): what a real nvmfd target sent to nvmfd's
host role, recorded by a relay between the two: an association (admin
queue, then an I/O queue) and nvmfctl discover.
fuzz_nbd (with --nvmfd PATH): what the integration tests' NBD client sent
to that host's export in a session that uses every command.

Run from the top of the tree: python3 tests/fuzz/make_seeds.py
[--nvmfd BUILD/nvmfd] (without it the fuzz_host seeds are left as they are).
"""
import base64
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import nvmf_client as nc  # noqa: E402

NQN = "nqn.2026-11.io.nvmfd:ram0"
HOST = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000000001"
HOSTID = bytes(range(16))


class Stream:
    """Builds a host's byte stream the way nvmf_client.Host would send it."""

    def __init__(self, hdgst=False, ddgst=False):
        self.hdgst, self.ddgst, self.cpda = hdgst, ddgst, 0
        self.out = bytearray()
        self.cid = 0
        h = nc.Host.__new__(nc.Host)
        self.out += h.icreq_pdu(hdgst=hdgst, ddgst=ddgst)

    def cmd(self, opc, data=b"", inline=True, **f):
        self.cid += 1
        kind = nc.SGL_INCAPSULE if data and inline else nc.SGL_TRANSPORT
        s = nc.sqe(opc, cid=self.cid, sgl_desc=nc.sgl(kind, len(data) or
                   f.pop("read_len", 0)), **f)
        self.out += nc.build_pdu(nc.CAPSULE_CMD, bytes(s),
                                 data if inline else b"", hdgst=self.hdgst,
                                 ddgst=self.ddgst)
        if data and not inline:
            # The H2CData the controller's R2T (TTAG 0 on a fresh queue)
            # asks for, once the target has had a turn to send that R2T.
            self.out += b"NVMFUZZ/"
            body = struct.pack("<HHII4x", self.cid, 0, 0, len(data))
            self.out += nc.build_pdu(nc.H2C_DATA, body, data,
                                     hdgst=self.hdgst, ddgst=self.ddgst,
                                     flags=0x04)

    def connect(self, qid=0, cntlid=nc.CNTLID_DYNAMIC, sub=NQN):
        self.cmd(nc.OPC_FABRICS, fctype=nc.FCTYPE_CONNECT,
                 data=nc.connect_data(sub, HOST, HOSTID, cntlid),
                 cdw10=qid << 16, cdw11=31)
        self.out += b"NVMFUZZ/"	# a host waits for the Connect response


def admin(hdgst=False, ddgst=False, sub=NQN, disconnect=True):
    s = Stream(hdgst, ddgst)
    s.connect(sub=sub)
    s.cmd(nc.OPC_FABRICS, fctype=nc.FCTYPE_PROP_GET, cdw10=1,
          cdw11=nc.REG_CAP)
    s.cmd(nc.OPC_FABRICS, fctype=nc.FCTYPE_PROP_SET, cdw11=nc.REG_CC,
          cdw12=nc.CC_ENABLE)
    s.cmd(nc.OPC_FABRICS, fctype=nc.FCTYPE_PROP_GET, cdw11=nc.REG_CSTS)
    for cns in (1, 0, 2, 3):
        s.cmd(nc.ADM_IDENTIFY, nsid=1 if cns in (0, 3) else 0, cdw10=cns,
              read_len=4096)
    s.cmd(nc.ADM_SET_FEATURES, cdw10=0x07, cdw11=0x00030003)
    s.cmd(nc.ADM_SET_FEATURES, cdw10=0x0B, cdw11=0x100)
    s.cmd(nc.ADM_GET_FEATURES, cdw10=0x0F)
    for lid in (0x01, 0x02, 0x03, 0x04, 0x05, 0x70):
        s.cmd(nc.ADM_GET_LOG_PAGE, cdw10=lid | 0x3FF << 16, read_len=4096)
    s.cmd(0x0C)					# AER
    s.cmd(nc.ADM_KEEP_ALIVE)
    if disconnect:
        s.cmd(nc.OPC_FABRICS, fctype=nc.FCTYPE_DISCONNECT)
    return bytes(s.out)


def io(hdgst=False, ddgst=False):
    s = Stream(hdgst, ddgst)
    s.connect(qid=1, cntlid=1)
    data = bytes(range(256)) * 16
    # First, so it gets the queue's first command slot: TTAG 0.
    s.cmd(nc.NVM_WRITE, data=data, inline=False, nsid=1, cdw10=16,
          cdw12=7)
    s.cmd(nc.NVM_WRITE, data=data[:512], nsid=1, cdw10=8)
    s.cmd(nc.NVM_READ, nsid=1, cdw10=16, cdw12=7, read_len=4096)
    s.cmd(nc.NVM_COMPARE, data=data[:512], nsid=1, cdw10=8)
    s.cmd(nc.NVM_FLUSH, nsid=1)
    s.cmd(0x08, nsid=1, cdw10=32, cdw12=15)			# write zeroes
    s.cmd(0x09, data=struct.pack("<IIQ", 0, 8, 64), nsid=1, cdw11=4)
    s.out += nc.term_pdu(nc.H2C_TERM, 1, 0)
    return bytes(s.out)


def auth_sqe_fields(fctype, length):
    """Auth Send / Receive: SECP 0xE9, SPSP0 and SPSP1 1, the length."""
    return dict(fctype=fctype, cdw10=0xE9 << 24 | 1 << 16 | 1 << 8,
                cdw11=length)


def auth(group, hashid=1, qid=0):
    """A DH-HMAC-CHAP exchange as a host runs it, for fuzz_auth: Negotiate,
    receive the Challenge, a Reply (its response cannot match the random
    challenge: the controller answers Failure1 as it must), receive that."""
    s = Stream()
    s.connect(qid=qid, cntlid=nc.CNTLID_DYNAMIC if qid == 0 else 1)
    tid = 0x1234
    neg = bytearray(8 + 64)
    neg[0], neg[1] = 0x00, 0x00			# AUTH_COMMON, Negotiate
    struct.pack_into("<H", neg, 4, tid)
    neg[7] = 1					# one descriptor
    neg[8], neg[10], neg[11] = 1, 3, 1		# DH-HMAC-CHAP, 3 hashes
    neg[12:15] = bytes((1, 2, 3))
    neg[42] = group
    s.cmd(nc.OPC_FABRICS, data=bytes(neg), **auth_sqe_fields(0x05, len(neg)))
    s.out += b"NVMFUZZ/"
    s.cmd(nc.OPC_FABRICS, read_len=1024, **auth_sqe_fields(0x06, 1024))
    s.out += b"NVMFUZZ/"
    hl = {1: 32, 2: 48, 3: 64}[hashid]
    dhv = {0: 0, 1: 256, 2: 384}[group]
    reply = bytearray(16 + 2 * hl + dhv)
    reply[0], reply[1] = 0x01, 0x02		# DH-HMAC-CHAP, Reply
    struct.pack_into("<HBxBxHI", reply, 4, tid, hl, 1, dhv, 7)
    reply[16:] = bytes((i * 13) & 0xff for i in range(2 * hl + dhv))
    if dhv:
        reply[16 + 2 * hl] = 0x02	# a public value below p - 1
    s.cmd(nc.OPC_FABRICS, data=bytes(reply),
          **auth_sqe_fields(0x05, len(reply)))
    s.out += b"NVMFUZZ/"
    s.cmd(nc.OPC_FABRICS, read_len=256, **auth_sqe_fields(0x06, 256))
    success2 = struct.pack("<BBxxHxxQ", 0x01, 0x04, tid, 0)
    s.cmd(nc.OPC_FABRICS, data=success2,
          **auth_sqe_fields(0x05, len(success2)))
    s.cmd(nc.OPC_FABRICS, fctype=nc.FCTYPE_PROP_GET, cdw11=nc.REG_CSTS)
    return bytes(s.out)


def interchange(prefix, xform, key):
    """A key in interchange form: base64 of the key and its CRC-32."""
    raw = key + struct.pack("<I", zlib.crc32(key))
    return f"{prefix}:{xform:02}:{base64.b64encode(raw).decode()}:"


def key_seeds():
    seeds = {}
    for n, xform in ((32, 0), (32, 1), (48, 2), (64, 3)):
        key = bytes((7 * i + n) & 0xff for i in range(n))
        seeds[f"dhchap-{n}-{xform}"] = b"\0" + interchange(
            "DHHC-1", xform, key).encode()
    for n, hmac in ((32, 0), (32, 1), (48, 2)):
        key = bytes((5 * i + n) & 0xff for i in range(n))
        seeds[f"tls-{n}-{hmac}"] = b"\1" + interchange(
            "NVMeTLSkey-1", hmac, key).encode()
    digest = base64.b64encode(bytes(range(32))).decode()
    for ident in (f"NVMe0R01 {HOST} {NQN}",
                  f"NVMe1R01 {HOST} {NQN} {digest}",
                  f"NVMe1G02 {HOST} {NQN} {digest}"):
        seeds[f"identity-{ident[:8]}"] = b"\2" + ident.encode()
    return seeds


def ctl_request(*args, json=False):
    """One request as nvmfctl frames it (ctl-proto.h)."""
    body = struct.pack("<II", 1 if json else 0, len(args))
    body += b"".join(a.encode() + b"\0" for a in args)
    return struct.pack("<IHHI", 0x434d564e, 1, 1, len(body)) + body


def control_seeds():
    sub = "nqn.2026-11.io.nvmfd:fuzz"
    secret = interchange("DHHC-1", 1, bytes(range(32)))
    psk = interchange("NVMeTLSkey-1", 1, bytes(range(32)))
    sessions = {
        "listings": [("version",), ("list-subsys",), ("list-ports",),
                     ("show-subsys", NQN), ("list-ns", NQN),
                     ("list-ctrl",), ("stats", "--queues"),
                     ("list-referrals",), ("list-host",), ("help",),
                     ("help", "add-ns"), ("show-config",)],
        "subsystem": [("add-subsys", sub, "--model", "fuzz",
                       "--max-io-queues", "4", "--dhchap-hashes",
                       "sha256,sha512"),
                      ("add-ns", sub, "--backend", "ram", "--size", "1M",
                       "--block-size", "4096"),
                      ("set-ns", sub, "1", "--readonly", "on"),
                      ("inject-error", sub, "1", "--op", "read", "--error",
                       "enospc", "--count", "2"),
                      ("set-subsys", sub, "--allow-any-host", "off"),
                      ("del-ns", sub, "1"), ("del-subsys", sub)],
        "hosts": [("add-subsys", sub),
                  ("add-host", sub, HOST, "--dhchap-secret", secret,
                   "--dhchap-ctrl-secret", secret),
                  ("set-host", sub, HOST, "--tls-key", psk, "--tls-kdf",
                   "rfc8446"),
                  ("show-config", "--show-secrets"), ("list-hosts", sub),
                  ("del-host", sub, HOST)],
        "referrals": [("add-referral", "--address", "192.0.2.7", "--port",
                       "8009", "--port-id", "3"),
                      ("list-referrals",), ("del-referral", "192.0.2.7"),
                      ("terminate", "1"), ("del-port", "9")],
    }
    seeds = {}
    for name, reqs in sessions.items():
        seeds[name] = b"".join(ctl_request(*r) for r in reqs)
        seeds[name + "-json"] = b"".join(ctl_request(*r, json=True)
                                         for r in reqs)
    return seeds


class Relay:
    """Forwards loopback connections from one port to another and keeps,
    per connection, what one end sent (the far end, a target, by default;
    the near end, a client, with near=True), with PAUSE before what it
    sent after hearing from the other end."""

    def __init__(self, port, to, near=False):
        self.to, self.near = to, near
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", port))
        self.lsock.listen(8)
        self.streams = []
        self.threads = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                near, _ = self.lsock.accept()
            except OSError:
                return
            far = socket.create_connection(("127.0.0.1", self.to))
            rec = bytearray()
            self.streams.append(rec)
            t = threading.Thread(target=self._relay, daemon=True,
                                 args=(near, far, rec, self.near))
            t.start()
            self.threads.append(t)

    @staticmethod
    def _relay(near, far, rec, keep_near):
        other_spoke = False
        while True:
            r, _, _ = select.select([near, far], [], [], 10)
            if not r:
                break
            for s in r:
                data = s.recv(65536)
                if not data:
                    near.close()
                    far.close()
                    return
                (far if s is near else near).sendall(data)
                if (s is near) != keep_near:
                    other_spoke = True
                    continue
                if other_spoke and rec:
                    rec += b"NVMFUZZ/"
                other_spoke = False
                rec += data
        near.close()
        far.close()

    def take(self, timeout=10):
        for t in self.threads:
            t.join(timeout)
        streams = [bytes(s) for s in self.streams]
        self.streams, self.threads = [], []
        return b"NVMFUZZ2".join(streams)

    def close(self):
        self.lsock.close()


def nbd_session(port):
    """An NBD client's session with the export fuzz/1: the handshake, then
    every command, as qemu-img or nbdcopy would use them."""
    sys.path.insert(0, os.path.join(HERE, "..", "integration"))
    import nbd_client as nbd
    c = nbd.Client(host="127.0.0.1", port=port)
    c.handshake()
    c.structured_reply()
    c.list()
    c.go("fuzz/1", [nbd.INFO_BLOCK_SIZE, nbd.INFO_NAME], code=nbd.OPT_INFO)
    c.go("fuzz/1", [nbd.INFO_BLOCK_SIZE])
    c.write(4096, bytes(range(256)) * 32, nbd.FLAG_FUA)
    c.read(4096, 8192)
    c.cmd(nbd.CMD_FLUSH, 0, 0)
    c.cmd(nbd.CMD_TRIM, 65536, 8192)
    c.cmd(nbd.CMD_WRITE_ZEROES, 131072, 4096, nbd.FLAG_NO_HOLE)
    c.cmd(nbd.CMD_CACHE, 0, 4096)
    c.request(nbd.CMD_DISC, 0, 0)
    c.close()


# The PSK fuzz_nbd's server has (its PSK file: "fuzz:" and this in hex).
NBD_PSK_IDENTITY, NBD_PSK_HEX = "fuzz", "11" * 32


def client_hello(port=24819):
    """The first flight of a TLS 1.3 PSK client (openssl s_client) with
    fuzz_nbd's identity and key: a ClientHello whose binder is good."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    p = subprocess.Popen(["openssl", "s_client", "-connect",
                          "127.0.0.1:%d" % port, "-tls1_3", "-psk_identity",
                          NBD_PSK_IDENTITY, "-psk", NBD_PSK_HEX,
                          "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    ls.settimeout(10)
    c, _ = ls.accept()
    c.settimeout(5)
    hello = c.recv(65536)
    c.close()
    ls.close()
    p.kill()
    p.wait()
    return hello


def nbd_starttls_seeds():
    """NBD_OPT_STARTTLS, then a ClientHello; STARTTLS refused or
    misplaced."""
    def opt(code, data=b""):
        return b"IHAVEOPT" + struct.pack(">II", code, len(data)) + data
    flags, pause = struct.pack(">I", 3), b"NVMFUZZ/"
    go = opt(7, struct.pack(">I", 6) + b"fuzz/1" + struct.pack(">H", 0))
    return {
        "starttls": flags + opt(5) + pause + client_hello(),
        "starttls-twice-data": flags + opt(5, b"x") + opt(3) + go,
        "starttls-pipelined": flags + opt(5) + b"\x16\x03\x01\x00",
        "starttls-garbage": flags + opt(5) + pause + b"GET / HTTP/1.0\r\n\r\n",
    }


def host_seeds(nvmfd, base_port=24690):
    """Record what a real target sends to nvmfd's host role, and what an
    NBD client sends to nvmfd's export of what that host connected."""
    relay_port, target_port = base_port, base_port + 1
    nbd_port = base_port + 3
    seeds = {}
    with tempfile.TemporaryDirectory(prefix="nvmfd-seeds-") as tmp:
        tcfg, hcfg = os.path.join(tmp, "t.yaml"), os.path.join(tmp, "h.yaml")
        with open(tcfg, "w") as f:
            f.write(f"control: {{socket: {tmp}/t.sock}}\n"
                    f"ports: [{{id: 1, address: 127.0.0.1, "
                    f"port: {target_port}}}]\n"
                    f"subsystems: [{{nqn: '{NQN}', namespaces: "
                    f"[{{nsid: 1, backend: ram, size: 4M}}]}}]\n")
        with open(hcfg, "w") as f:
            f.write(f"control: {{socket: {tmp}/h.sock}}\n"
                    f"ports: [{{id: 1, address: 127.0.0.1, "
                    f"port: {target_port + 1}}}]\nsubsystems: []\n"
                    f"host: {{nbd: {{socket: {tmp}/nbd.sock, address: "
                    f"127.0.0.1, port: {nbd_port}}}}}\n")
        procs = [subprocess.Popen([nvmfd, "-F", "-f", c],
                                  stderr=subprocess.DEVNULL)
                 for c in (tcfg, hcfg)]
        ctl = [nvmfd, "ctl", "-s", os.path.join(tmp, "h.sock")]
        try:
            for sock in ("t.sock", "h.sock"):
                for _ in range(100):
                    if os.path.exists(os.path.join(tmp, sock)):
                        break
                    time.sleep(0.1)
            relay = Relay(relay_port, target_port)
            # As the fuzz target's host is set up: one I/O queue of 8.
            subprocess.run(ctl + ["connect", "-t", "tcp", "-a", "127.0.0.1",
                                  "-s", str(relay_port), "-n", NQN, "-i", "1",
                                  "-Q", "8", "-k", "1", "-c", "1", "-l", "1",
                                  "--export-prefix", "fuzz"],
                           check=True, stdout=subprocess.DEVNULL)
            time.sleep(1.5)		# live, a keep-alive or two
            nbd_relay = Relay(nbd_port + 1, nbd_port, near=True)
            nbd_session(nbd_port + 1)
            seeds["nbd-session"] = nbd_relay.take()
            nbd_relay.close()
            subprocess.run(ctl + ["disconnect", "-n", NQN], check=True,
                           stdout=subprocess.DEVNULL)
            seeds["association"] = b"\0" + relay.take()
            subprocess.run(ctl + ["discover", "-t", "tcp", "-a",
                                  "127.0.0.1", "-s", str(relay_port)],
                           check=True, stdout=subprocess.DEVNULL)
            seeds["discovery"] = b"\1" + relay.take()
            relay.close()
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
    return seeds


def write_seeds(target, seeds, suffix=""):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name + suffix), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} {target} seeds")


def main():
    tcp = os.path.join(HERE, "seeds", "fuzz_tcp_target")
    cfg = os.path.join(HERE, "seeds", "fuzz_config")
    os.makedirs(tcp, exist_ok=True)
    os.makedirs(cfg, exist_ok=True)
    seeds = {
        "admin": admin(),
        "admin-digests": admin(True, True),
        "discovery": admin(sub=nc.DISCOVERY_NQN),
        "io": io(),
        "io-digests": io(True, True),
        # Two connections: the admin queue stays up while queue 1 runs.
        "admin-and-io": admin(disconnect=False) + b"NVMFUZZ2" + io(),
        "admin-and-io-digests": admin(True, True, disconnect=False) +
        b"NVMFUZZ2" + io(True, True),
    }
    for name, data in seeds.items():
        with open(os.path.join(tcp, name), "wb") as f:
            f.write(data)
    with open(os.path.join(HERE, "..", "..", "conf", "nvmfd.yaml"), "rb") as f:
        example = f.read()
    small = {
        "example": example,
        "minimal": b"ports:\n  - address: 127.0.0.1\n",
        "flow": b"ports: [{address: '::', port: 4420}]\nsubsystems: "
                b"[{nqn: 'nqn.2026-11.io.x:a', namespaces: "
                b"[{backend: ram, size: 1M, uuid: "
                b"0b1d2c3e-4f50-4a6b-8c7d-9e0f1a2b3c4d}]}]\n",
        "anchors": b"x: &a {address: 127.0.0.1}\nports: [*a, *a]\n",
        "ana": b"cntlid_min: 10\ncntlid_max: 20\nports: [{id: 1, address: "
               b"127.0.0.1}, {id: 2, address: 127.0.0.2}]\nsubsystems: "
               b"[{nqn: 'nqn.2026-11.io.x:a', ana: [{group: 2, port: 2, "
               b"state: inaccessible}], namespaces: [{backend: ram, "
               b"size: 1M, ana_group: 2}]}]\n",
        "rbd": b"ports: [{address: 127.0.0.1}]\nsubsystems: [{nqn: "
               b"'nqn.2026-11.io.x:a', namespaces: [{backend: rbd, pool: rbd, "
               b"image: disk0, rbd_namespace: ns, ceph_user: nvmfd, "
               b"keyring: /etc/ceph/k, ceph_conf: /etc/ceph/ceph.conf}]}]\n",
    }
    for name, data in small.items():
        with open(os.path.join(cfg, name + ".yaml"), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} fuzz_tcp_target seeds, {len(small)} fuzz_config "
          "seeds")
    write_seeds("fuzz_keys", key_seeds())
    write_seeds("fuzz_auth", {
        "null-sha256": auth(0), "ffdhe2048-sha256": auth(1),
        "ffdhe3072-sha512": auth(2, 3), "null-sha384-io": auth(0, 2, qid=1),
        "null-sha256-then-io": auth(0, 1) + b"NVMFUZZ2" + auth(0, 1, 1)})
    write_seeds("fuzz_control", control_seeds())
    write_seeds("fuzz_gcm", gcm_seeds())
    write_seeds("fuzz_nbd", nbd_starttls_seeds())
    if "--nvmfd" in sys.argv:
        seeds = host_seeds(sys.argv[sys.argv.index("--nvmfd") + 1])
        write_seeds("fuzz_nbd", {"session": seeds.pop("nbd-session")})
        write_seeds("fuzz_host", seeds)


def gcm_seeds():
    """fuzz_gcm: mode, key, nonce, additional data, pieces, message; the
    lengths around the engine's 16-byte blocks and 256-byte chunks."""
    seeds = {}
    key = bytes(range(32))
    nonce = bytes(range(100, 112))
    for mode in range(4):
        for mlen in (0, 15, 16, 17, 255, 256, 257, 4096 + 24):
            cuts = [5, 24, 300]
            body = bytes([mode]) + key + nonce + bytes([5]) + b"\x17\x03\x03\x10\x11"
            body += bytes([len(cuts)]) + b"".join(struct.pack("<H", c) for c in cuts)
            body += bytes((i * 7 + mlen) & 0xff for i in range(mlen))
            seeds["mode%d-len%d" % (mode, mlen)] = body
    # A record header with a short body: tls_rec_open's length checks.
    seeds["record"] = b"\x17\x03\x03\x00\x20" + bytes(32)
    return seeds


if __name__ == "__main__":
    main()
