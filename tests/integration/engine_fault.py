#!/usr/bin/env python3
"""Errors injected in the file I/O engine (nvmfctl inject-error --at
engine), as a host and the health logs see them (used by engine-fault.sh).

With one admin and one I/O queue to NQN at 127.0.0.1:PORT, for each NSID
given (file or block namespaces of 512-byte blocks), one injected failure
per case, each on a 16-block command (8 KiB, its data sent by R2T):
  - EIO on a read: Unrecovered Read Error (SCT 2h, SC 81h); on a Compare
    (which reads the media) the same;
  - EIO on a write: Write Fault (SCT 2h, SC 80h);
  - ENOSPC on a write: Capacity Exceeded (SCT 0h, SC 81h);
  - a short read (half, then end of file): Unrecovered Read Error;
  - a short write: Write Fault;
and after each, the same command again succeeds (the injection is used up)
and the data read back is what the last good write left.  Then the SMART
log's media errors moved by one per media failure (not for ENOSPC), its
error-log count by one per failure, and the Error Information log's newest
entry is the last failure.  The statuses go to OUT as JSON, for the shell
to compare between engines.  Prints "ok: ..." lines; exits 1 at the first
failure.
"""
import argparse
import json
import struct
import subprocess

import nvmf_client as nc
from inject import LOG_ERROR, check, smart

BS, NLB = 512, 16
LBA = 64
READ_ERROR, WRITE_FAULT, CAP_EXCEEDED = (2, 0x81), (2, 0x80), (0, 0x81)

# (name, --op, --error, command, expected (SCT, SC), a media error?)
CASES = [
    ("read eio", "read", "eio", "read", READ_ERROR, True),
    ("compare eio", "read", "eio", "compare", READ_ERROR, True),
    ("write eio", "write", "eio", "write", WRITE_FAULT, True),
    ("write enospc", "write", "enospc", "write", CAP_EXCEEDED, False),
    ("read short", "read", "short", "read", READ_ERROR, True),
    ("write short", "write", "short", "write", WRITE_FAULT, True),
]


def pattern(seed):
    return bytes((seed * 7 + i) & 0xFF for i in range(NLB * BS))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--nqn", required=True)
    ap.add_argument("--nvmfctl", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--nsid", type=int, action="append", required=True)
    ap.add_argument("--out", required=True)
    o = ap.parse_args()

    def inject(nsid, *args):
        p = subprocess.run([o.nvmfctl, "-s", o.socket, "inject-error", o.nqn,
                            str(nsid), "--at", "engine"] + list(args),
                           capture_output=True, text=True, timeout=30)
        check(p.returncode == 0, f"inject-error {args}: {p.stderr.strip()}")

    a = nc.open_admin("127.0.0.1", o.port, o.nqn)
    check(a.set_num_queues(1) >= 1, "no I/O queue")
    q = nc.open_io(a, "127.0.0.1", o.port, o.nqn)
    results = {}
    media_n = errs_n = 0
    media0, errs0 = smart(a)
    for nsid in o.nsid:
        good = pattern(nsid)
        check(q.write(nsid, LBA, good, inline=False).ok,
              f"nsid {nsid}: write before the injections")

        def run(cmd, data):
            if cmd == "read":
                return q.read(nsid, LBA, NLB)
            if cmd == "compare":
                return q.compare(nsid, LBA, good, inline=False)
            return q.write(nsid, LBA, data, inline=False)

        statuses = []
        for i, (name, op, err, cmd, want, media) in enumerate(CASES):
            data = pattern(nsid * 16 + i)
            inject(nsid, "--op", op, "--error", err, "--count", "1")
            cpl = run(cmd, data)
            statuses.append([name, cpl.sct, cpl.sc])
            check((cpl.sct, cpl.sc) == want, f"nsid {nsid} {name}: {cpl}, "
                  f"expected SCT {want[0]:#x} SC {want[1]:#x}")
            last_cid = cpl.cid
            media_n += media
            errs_n += 1
            # Used up: the same command works, and the data are whole.
            cpl = run(cmd, data)
            check(cpl.ok, f"nsid {nsid} {name}: again: {cpl}")
            if cmd == "write":
                good = data
            cpl = q.read(nsid, LBA, NLB)
            check(cpl.ok and cpl.data == good,
                  f"nsid {nsid} {name}: read back: {cpl}")
            print(f"ok: nsid {nsid}: {name}: SCT {want[0]:#x} SC "
                  f"{want[1]:#x}, then served again", flush=True)
        results[str(nsid)] = statuses

    media1, errs1 = smart(a)
    check(media1 - media0 == media_n, f"SMART media errors moved by "
          f"{media1 - media0}, expected {media_n}")
    check(errs1 - errs0 == errs_n, f"SMART error log entries moved by "
          f"{errs1 - errs0}, expected {errs_n}")
    cpl = a.get_log_page(LOG_ERROR, 0, 4096)
    check(cpl.ok, f"error log: {cpl}")
    count, sqid, cid, status, _, lba, nsid = struct.unpack_from(
        "<QHHHHQI", cpl.data, 0)
    check(count == errs1 and sqid == 1 and cid == last_cid and
          lba == LBA and nsid == o.nsid[-1] and
          (status >> 1) & 0x7FF == (WRITE_FAULT[0] << 8 | WRITE_FAULT[1]),
          f"newest error entry: count {count} SQID {sqid} CID {cid} LBA "
          f"{lba} NSID {nsid} status {status:#x}")
    print(f"ok: SMART media errors +{media_n}, error log entries "
          f"+{errs_n}; the newest entry is the last failure", flush=True)
    with open(o.out, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    q.close()
    a.close()


if __name__ == "__main__":
    main()
