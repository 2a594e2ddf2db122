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

Run from the top of the tree: python3 tests/fuzz/make_seeds.py
"""
import os
import struct
import sys

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
    }
    for name, data in small.items():
        with open(os.path.join(cfg, name + ".yaml"), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} fuzz_tcp_target seeds, {len(small)} fuzz_config "
          "seeds")


if __name__ == "__main__":
    main()
