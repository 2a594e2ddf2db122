#!/usr/bin/env python3
"""ana_checks.py NVMFCTL SOCKET SUBNQN ADDR1:PORT1 ADDR2:PORT2: ANA end to end.

The subsystem is offered on two ports (IDs 1 and 2) with NSID 1 in ANA
group 1 and NSID 2 in group 2.  A controller on each port (nvmf_client.py,
no digests) enables the ANA change event; nvmfctl (the real command, on
SOCKET) then changes states and groups, and each step is checked from both
hosts:
  - Identify: CMIC.ANA, ANAGRPMAX/NANAGRPID, MNAN, ANAGRPID per namespace;
  - set-ana on port 2 sends the ANA change event (0x000C0302) to port 2's
    host only; its ANA log shows the new state and change count, port 1's
    log the old one; RGO returns the groups without NSIDs;
  - reads and writes through port 2 fail with SCT 3h, SC 1h/2h/3h for
    persistent-loss, inaccessible and change, never with DNR, while port 1
    serves the same data; optimized and non-optimized serve;
  - set-ns --ana-group moves a namespace: both events, the new group in the
    log and in Identify, I/O follows the new group's state;
  - bad set-ana and set-ns arguments fail with exit 2 or 3 and change
    nothing.
Exit 0 when all hold, 1 otherwise.
"""
import json
import os
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmf_client as nc            # noqa: E402

LID_ANA = 0x0C
FEAT_ASYNC_EVENT = 0x0B
AEN_ANA = 1 << 11
AEN_NS_ATTR = 1 << 8
AER_ANA = 0x000C0302
AER_NS = 0x00040002
STATES = {"optimized": 1, "non-optimized": 2, "inaccessible": 3,
          "persistent-loss": 4, "change": 0xF}
FAILS = {"inaccessible": 0x02, "persistent-loss": 0x01, "change": 0x03}
T0 = time.monotonic()
errors = []


def log(msg):
    print(f"ana_checks: [{time.monotonic() - T0:5.2f}] {msg}", flush=True)


def check(cond, what):
    if cond:
        log(f"ok: {what}")
    else:
        log(f"FAIL: {what}")
        errors.append(what)
    return cond


def ctl(*args, rc=0):
    p = subprocess.run([CTL, "-s", SOCK] + list(args), capture_output=True,
                       text=True, timeout=20)
    if p.returncode != rc:
        check(False, f"nvmfctl {' '.join(args)}: exit {p.returncode}, "
              f"expected {rc}: {p.stderr.strip()}")
    return p


def ana_log(h, rgo=False, length=8192):
    numd = length // 4 - 1
    cpl = h.cmd(nc.ADM_GET_LOG_PAGE, nsid=0xFFFFFFFF, read_len=length,
                cdw10=LID_ANA | (0x100 if rgo else 0) | (numd & 0xFFFF) << 16,
                cdw11=numd >> 16)
    if not cpl.ok:
        raise nc.ProtocolError(f"ANA log: {cpl}")
    d = cpl.data
    chgcnt, ngrps = struct.unpack_from("<QH", d, 0)
    groups, off = {}, 16
    for _ in range(ngrps):
        grp, n, gcnt, state = struct.unpack_from("<IIQB", d, off)
        nsids = list(struct.unpack_from(f"<{n}I", d, off + 32))
        groups[grp] = (state & 0xF, nsids)
        off += 32 + 4 * n
    return chgcnt, groups


def aer(h):
    return h.aer()


def aer_result(h, cid, timeout):
    return h.aer_result(cid, timeout)


def io_status(q, nsid, write=False):
    if write:
        cpl = q.write(nsid, 100, bytes([nsid]) * 512)   # not the pattern
    else:
        cpl = q.read(nsid, 8, 1)
    return cpl


def main():
    global CTL, SOCK
    CTL, SOCK, nqn, p1, p2 = sys.argv[1:6]
    a1, s1 = p1.rsplit(":", 1)
    a2, s2 = p2.rsplit(":", 1)

    h1 = nc.open_admin(a1, int(s1), nqn)
    hostnqn, hostid = nc.random_hostnqn()
    h2 = nc.open_admin(a2, int(s2), nqn, hostnqn=hostnqn, hostid=hostid)
    for h in (h1, h2):
        h.set_num_queues(1)
        cpl = h.set_features(FEAT_ASYNC_EVENT, AEN_ANA | AEN_NS_ATTR)
        check(cpl.ok, f"{h.hostnqn}: ANA change event enabled")
    q1 = nc.open_io(h1, a1, int(s1), nqn)
    q2 = nc.open_io(h2, a2, int(s2), nqn)

    idc = h1.identify(nc.CNS_CTRL).data
    check(idc[76] & 0x8, "Identify: CMIC reports ANA")
    anagrpmax, nanagrpid = struct.unpack_from("<II", idc, 348)
    nn, = struct.unpack_from("<I", idc, 516)
    mnan, = struct.unpack_from("<I", idc, 540)
    check(anagrpmax == nanagrpid >= 2 and 0 < mnan <= nn,
          f"Identify: ANAGRPMAX {anagrpmax} NANAGRPID {nanagrpid} "
          f"MNAN {mnan} NN {nn}")
    for nsid, grp in ((1, 1), (2, 2)):
        d = h2.identify(nc.CNS_NS, nsid=nsid).data
        check(struct.unpack_from("<I", d, 92)[0] == grp,
              f"Identify NS {nsid}: ANAGRPID {grp}")
    cnt0, g = ana_log(h2)
    check(g == {1: (1, [1]), 2: (1, [2])}, f"initial log on port 2: {g}")

    # Data through port 1, to be read through either path.
    pattern = bytes(range(256)) * 2
    check(q1.write(1, 8, pattern).ok, "write NSID 1 through port 1")

    a1_cid, a2_cid = aer(h1), aer(h2)
    cnt = cnt0
    for state in ("inaccessible", "persistent-loss", "change",
                  "non-optimized", "optimized"):
        p = ctl("set-ana", nqn, "--group", "1", "--port", p2, "--state",
                state, "--json")
        out = json.loads(p.stdout or "{}").get("ana", {})
        check(out.get("state") == state and out.get("port") == 2,
              f"set-ana {state}: {out}")
        got = aer_result(h2, a2_cid, 3)
        check(got == AER_ANA, f"{state}: port 2 host got the ANA event "
              f"({got if got is None else hex(got)})")
        cnt2, g2 = ana_log(h2)
        a2_cid = aer(h2)          # the read unmasked the next one
        check(cnt2 > cnt, f"{state}: change count {cnt} -> {cnt2}")
        cnt = cnt2
        check(g2.get(1) == (STATES[state], [1]),
              f"{state}: port 2 log says group 1 {g2.get(1)}")
        _, g1 = ana_log(h1)
        check(g1.get(1) == (1, [1]), f"{state}: port 1 log still optimized")
        _, gr = ana_log(h2, rgo=True)
        check(gr == {1: (STATES[state], []), 2: (1, [])},
              f"{state}: RGO log has the groups only: {gr}")
        for write in (False, True):
            cpl = io_status(q2, 1, write)
            what = "write" if write else "read"
            if state in FAILS:
                check(cpl.sct == 3 and cpl.sc == FAILS[state] and not cpl.dnr,
                      f"{state}: {what} NSID 1 via port 2: {cpl}")
            else:
                check(cpl.ok, f"{state}: {what} NSID 1 via port 2: {cpl}")
        check(io_status(q2, 2).ok, f"{state}: NSID 2 (group 2) via port 2")
        cpl = q1.read(1, 8, 1)
        check(cpl.ok and cpl.data[:256] == bytes(range(256)),
              f"{state}: port 1 reads NSID 1's data")
    check(aer_result(h1, a1_cid, 0.3) is None,
          "port 1's host got no event for port 2's changes")

    # Group 1 inaccessible on port 2, then NSID 1 moves to group 2.
    ctl("set-ana", nqn, "--group", "1", "--port", "2", "--state",
        "inaccessible")
    aer_result(h2, a2_cid, 3)
    ana_log(h2)
    check(not io_status(q2, 1).ok, "NSID 1 inaccessible via port 2")
    ctl("set-ns", nqn, "1", "--ana-group", "2")
    events = {aer_result(h1, a1_cid, 3)}
    h1.get_log_page(0x04, length=4096)     # changed namespaces: unmask
    a1_cid = aer(h1)
    events.add(aer_result(h1, a1_cid, 3))
    check(events == {AER_ANA, AER_NS},
          f"set-ns --ana-group: port 1 host got both events "
          f"({sorted(hex(e) for e in events if e is not None)})")
    _, g = ana_log(h2)
    check(g == {1: (3, []), 2: (1, [1, 2])}, f"NSID 1 in group 2: {g}")
    ana_log(h1)
    a1_cid = aer(h1)
    d = h2.identify(nc.CNS_NS, nsid=1).data
    check(struct.unpack_from("<I", d, 92)[0] == 2, "Identify NS 1: group 2")
    cpl = q2.read(1, 8, 1)
    check(cpl.ok and cpl.data[:256] == bytes(range(256)),
          "NSID 1 readable via port 2 again (its new group is optimized)")

    # Bad arguments change nothing.
    for args, rc in ((["--group", "0"], 2), (["--group", "33"], 2),
                     (["--group", "x"], 2), (["--state", "fine"], 2),
                     (["--port", "127.0.0.9:1"], 3), (["--port", "99"], 3),
                     (["--port", "nonsense"], 2)):
        full = {"--group": "2", "--port": "1", "--state": "inaccessible"}
        full.update(dict(zip(args[::2], args[1::2])))
        flat = [x for kv in full.items() for x in kv]
        ctl("set-ana", nqn, *flat, rc=rc)
    ctl("set-ana", nqn, "--group", "2", rc=2)
    ctl("set-ana", "nqn.2026-11.io.nvmfd.test:none", "--group", "1",
        "--port", "1", "--state", "optimized", rc=3)
    ctl("set-ns", nqn, "1", "--ana-group", "0", rc=2)
    ctl("set-ns", nqn, "9", "--ana-group", "2", rc=3)
    _, g = ana_log(h1)
    check(g == {1: (1, []), 2: (1, [1, 2])}, f"unchanged after bad input: {g}")
    check(aer_result(h1, a1_cid, 0.3) is None, "no event for bad input")
    for h in (q1, q2, h1, h2):
        h.close()


if __name__ == "__main__":
    try:
        main()
    except (nc.NvmfError, OSError, subprocess.SubprocessError) as e:
        errors.append(f"{type(e).__name__}: {e}")
        log(f"FAIL: {type(e).__name__}: {e}")
    log(f"{'PASS' if not errors else 'FAIL: ' + str(len(errors))}")
    sys.exit(1 if errors else 0)
