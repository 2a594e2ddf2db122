#!/usr/bin/env python3
"""Errors injected with nvmfctl inject-error, as a host and monitoring see
them (used by control.sh).

With one admin and one I/O queue on namespace 1 of NQN at 127.0.0.1:PORT:
  - 3 read errors (EIO): the next 3 reads fail with Unrecovered Read Error
    (SCT 2, SC 0x81) and the More bit, the 4th reads what was written;
  - 2 write errors (ENOSPC): Capacity Exceeded (SCT 0, SC 0x81), then a
    write works and is read back;
  - the SMART log's media errors move by 3 (backend failures only), its
    error-log count by 5, and the Error Information log shows the last
    failed command first, with SQID 1, its CID and LBA;
  - --count 0 clears an injection.
Prints "ok: ..." lines; exits 1 at the first failure.
"""
import argparse
import struct
import subprocess
import sys

import nvmf_client as nc

LOG_ERROR, LOG_SMART = 0x01, 0x02


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def smart(a):
    cpl = a.get_log_page(LOG_SMART, 0, 512)
    check(cpl.ok, f"SMART log: {cpl}")
    return (struct.unpack_from("<Q", cpl.data, 160)[0],
            struct.unpack_from("<Q", cpl.data, 176)[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--nqn", required=True)
    ap.add_argument("--hostnqn")
    ap.add_argument("--nvmfctl", required=True)
    ap.add_argument("--socket", required=True)
    o = ap.parse_args()

    def ctl(*args):
        p = subprocess.run([o.nvmfctl, "-s", o.socket, "inject-error", o.nqn,
                            "1"] + list(args), capture_output=True, text=True,
                           timeout=30)
        check(p.returncode == 0, f"inject-error {args}: {p.stderr.strip()}")

    a = nc.open_admin("127.0.0.1", o.port, o.nqn, hostnqn=o.hostnqn)
    check(a.set_num_queues(1) >= 1, "no I/O queue")
    q = nc.open_io(a, "127.0.0.1", o.port, o.nqn)
    data = bytes(range(256)) * 2
    check(q.write(1, 8, data).ok, "write before the injection")
    media0, errs0 = smart(a)

    ctl("--op", "read", "--error", "eio", "--count", "3")
    for i in range(3):
        cpl = q.read(1, 8, 1)
        check(cpl.sct == 2 and cpl.sc == 0x81,
              f"injected read {i}: {cpl}, expected SCT 2 SC 0x81")
        check(cpl.status & 0x4000, f"injected read {i}: no More bit")
    last_cid = cpl.cid
    cpl = q.read(1, 8, 1)
    check(cpl.ok and cpl.data == data, f"4th read: {cpl}")
    print("ok: 3 reads failed with Unrecovered Read Error, the 4th read "
          "the data", flush=True)

    ctl("--op", "write", "--error", "enospc", "--count", "2")
    for i in range(2):
        cpl = q.write(1, 16, data)
        check(cpl.sct == 0 and cpl.sc == 0x81,
              f"injected write {i}: {cpl}, expected Capacity Exceeded")
    check(q.write(1, 16, data).ok, "write after the injection")
    cpl = q.read(1, 16, 1)
    check(cpl.ok and cpl.data == data, "read back after the injection")
    print("ok: 2 writes failed with Capacity Exceeded, then writes work",
          flush=True)

    media1, errs1 = smart(a)
    check(media1 - media0 == 3, f"SMART media errors moved by "
          f"{media1 - media0}, expected 3")
    check(errs1 - errs0 == 5, f"SMART error log entries moved by "
          f"{errs1 - errs0}, expected 5")
    cpl = a.get_log_page(LOG_ERROR, 0, 4096)
    check(cpl.ok, f"error log: {cpl}")
    count, sqid, cid, status, ploc, lba, nsid = struct.unpack_from(
        "<QHHHHQI", cpl.data, 0)
    check(count == errs1, f"newest error entry count {count}, expected "
          f"{errs1}")
    check(sqid == 1 and lba == 16 and nsid == 1 and
          (status >> 1) & 0x7FF == 0x81,
          f"newest entry: SQID {sqid} LBA {lba} NSID {nsid} status "
          f"{status:#x}")
    older = struct.unpack_from("<QHHHHQI", cpl.data, 64 * 2)
    check(older[2] == last_cid and older[5] == 8,
          f"third newest entry: CID {older[2]} LBA {older[5]}, expected "
          f"CID {last_cid} LBA 8")
    print(f"ok: SMART media errors +3, error log entries +5; the error log "
          f"shows them newest first", flush=True)

    ctl("--op", "read", "--count", "5")
    ctl("--count", "0")
    check(q.read(1, 8, 1).ok, "read after --count 0")
    print("ok: --count 0 clears an injection", flush=True)
    q.close()
    a.close()


if __name__ == "__main__":
    main()
