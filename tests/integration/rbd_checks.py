#!/usr/bin/env python3
"""rbd_checks.py --port N --nqn NQN STEP...: NVM commands against
namespace 1 of nvmfd, with nvmf_client.py, for rbd.sh.  Each STEP is
OP:LBA:NLB[:BYTE], LBA and NLB in 512-byte blocks:

  write:LBA:NLB:BYTE    every byte BYTE (decimal)
  expect:LBA:NLB:BYTE   read: every byte must be BYTE
  zeroes:LBA:NLB        Write Zeroes
  dealloc:LBA:NLB       Dataset Management, deallocate
  flush                 Flush

Prints "ok - STEP (N ms)" or "not ok - STEP: DETAIL"; exits 1 on any
failure.
"""
import argparse
import os
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nvmf_client import NvmfError, open_admin, open_io  # noqa: E402

BS, NSID = 512, 1
FLUSH, WRITE_ZEROES, DSM = 0x00, 0x08, 0x09
DSM_AD = 1 << 2


def step(io, s):
    parts = s.split(":")
    op = parts[0]
    if op == "flush":
        return io.cmd(FLUSH, nsid=NSID)
    lba, nlb = int(parts[1]), int(parts[2])
    if op == "write":
        return io.write(NSID, lba, bytes([int(parts[3])]) * (nlb * BS),
                        inline=False)
    if op == "expect":
        cpl = io.read(NSID, lba, nlb)
        want = int(parts[3])
        if cpl.ok and cpl.data != bytes([want]) * (nlb * BS):
            bad = next(i for i, b in enumerate(cpl.data) if b != want)
            raise AssertionError(f"byte {bad} is {cpl.data[bad]}, "
                                 f"not {want}")
        return cpl
    if op == "zeroes":
        return io.cmd(WRITE_ZEROES, nsid=NSID, **io.rw_fields(lba, nlb))
    if op == "dealloc":
        rng = struct.pack("<IIQ", 0, nlb, lba)
        return io.cmd(DSM, nsid=NSID, data_out=rng, cdw10=0, cdw11=DSM_AD)
    raise SystemExit(f"rbd_checks.py: unknown step {s}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--nqn", required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("steps", nargs="+")
    a = p.parse_args()
    failures = 0
    adm = open_admin(a.addr, a.port, a.nqn, timeout=a.timeout)
    adm.set_num_queues(1)
    io = open_io(adm, a.addr, a.port, a.nqn, timeout=a.timeout)
    for s in a.steps:
        t0 = time.monotonic()
        try:
            cpl = step(io, s)
            ms = (time.monotonic() - t0) * 1000
            if cpl.ok:
                print(f"ok - {s} ({ms:.0f} ms)", flush=True)
                continue
            err = str(cpl)
        except (AssertionError, NvmfError, OSError) as e:
            err = f"{type(e).__name__}: {e}"
        failures += 1
        print(f"not ok - {s}: {err}", flush=True)
    io.close()
    adm.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
