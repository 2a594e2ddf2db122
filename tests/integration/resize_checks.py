#!/usr/bin/env python3
"""resize_checks.py NVMFD SOCKET SUBNQN ADDR:PORT FILE PID: live resizes.

The subsystem has NSID 1 (RAM, 64 MiB), NSID 2 (RAM, 16 MiB) and NSID 3
(a file, FILE, 16 MiB), 512-byte blocks.  Two hosts (nvmf_client.py) enable
the Namespace Attribute Changed event, a third does not.  While
`nvmfd perf` runs on NSID 2 the whole time (writes verified), and on NSID 1
and NSID 3 while they change:
  - set-ns --size grows NSID 1 to 128 MiB: both hosts get the event, the
    Changed Namespace List names NSID 1, Identify says the new NSZE, NCAP
    and NUSE, the new last block can be written and read;
  - a write past 32 MiB is left waiting for its data (R2T unanswered),
    then NSID 1 shrinks to 32 MiB: the command completes once its data
    comes; until then another size change is refused as busy; I/O past
    the new end fails with LBA Out of Range (DNR), I/O within serves;
    perf's errors on NSID 1 are all LBA Out of Range;
  - grown back to 64 MiB, what lay past 32 MiB reads as zeros, the last
    block before it kept its data, and the background thread populates
    the namespace whole again; the lazy NSID 2 grows without populating;
  - NSID 3 grows to 32 MiB (the file too), is grown to 48 MiB by someone
    else and rescan-ns takes it, then to 64 MiB and SIGHUP (reload) does;
    set-ns --size 16 MiB truncates the file; set-ns --path moves it to
    another file (24 MiB) live: the event, the new size, the new file's
    data, writes land there;
  - the host without the event enabled gets none, but its log names the
    NSIDs; bad sizes are refused and change nothing;
  - perf on NSID 2 (and NSID 3) saw no error.
Exit 0 when all hold, 1 otherwise.
"""
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmf_client as nc            # noqa: E402

FEAT_ASYNC_EVENT = 0x0B
AEN_NS_ATTR = 1 << 8
AER_NS = 0x00040002
LID_CHANGED_NS = 0x04
SC_LBA_RANGE = 0x80
MIB = 1 << 20
BS = 512
T0 = time.monotonic()
errors = []


def log(msg):
    print(f"resize_checks: [{time.monotonic() - T0:5.2f}] {msg}", flush=True)


def check(cond, what):
    log(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        errors.append(what)
    return cond


def ctl(*args, rc=0):
    p = subprocess.run([NVMFD, "ctl", "-s", SOCK] + list(args),
                       capture_output=True, text=True, timeout=30)
    if rc is not None and p.returncode != rc:
        check(False, f"nvmfctl {' '.join(args)}: exit {p.returncode}, "
              f"expected {rc}: {p.stderr.strip()}")
    return p


def perf(nsid, seconds, workload, verify=False):
    args = [NVMFD, "perf", "-a", ADDR, "-s", str(PORT), "-n", NQN,
            "-N", str(nsid), "-q", "8", "-o", "4096", "-w", workload,
            "-t", str(seconds), "-j"] + (["-v"] if verify else [])
    return subprocess.Popen(args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def perf_result(p, what):
    out, err = p.communicate(timeout=60)
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        check(False, f"{what}: no result (exit {p.returncode}): "
              f"{err.strip()[-300:]}")
        return None, err
    log(f"{what}: {res.get('iops', 0):.0f} IOPS, {res.get('errors')} "
        f"errors, {res.get('verify_errors')} verify errors")
    return res, err


def changed_ns(h):
    cpl = h.get_log_page(LID_CHANGED_NS, length=4096)
    if not cpl.ok:
        raise nc.ProtocolError(f"Changed Namespace List: {cpl}")
    ids = struct.unpack_from("<1024I", cpl.data)
    return [i for i in ids if i]


def ns_sizes(h, nsid):
    d = h.identify(nc.CNS_NS, nsid=nsid).data
    return struct.unpack_from("<QQQ", d, 0)


class Hosts:
    """Two hosts with the event on (each with an AER outstanding), one
    without."""

    def __init__(self):
        self.on = []
        for _ in range(2):
            hostnqn, hostid = nc.random_hostnqn()
            h = nc.open_admin(ADDR, PORT, NQN, hostnqn=hostnqn, hostid=hostid)
            h.set_num_queues(1)
            check(h.set_features(FEAT_ASYNC_EVENT, AEN_NS_ATTR).ok,
                  f"{hostnqn}: Namespace Attribute Changed event enabled")
            self.on.append([h, h.aer()])
        hostnqn, hostid = nc.random_hostnqn()
        self.off = nc.open_admin(ADDR, PORT, NQN, hostnqn=hostnqn,
                                 hostid=hostid)
        self.off.set_num_queues(1)
        self.off.set_features(FEAT_ASYNC_EVENT, 0)
        self.off_aer = self.off.aer()
        self.q = nc.open_io(self.on[0][0], ADDR, PORT, NQN)

    def told(self, nsid, what):
        """Every host with the event on got it and reads nsid in its log;
        the AERs are posted again."""
        for i, pair in enumerate(self.on):
            h, cid = pair
            got = h.aer_result(cid, 5)
            check(got == AER_NS, f"{what}: host {i + 1} got the event "
                  f"({got if got is None or isinstance(got, str) else hex(got)})")
            ids = changed_ns(h)
            check(nsid in ids, f"{what}: host {i + 1}'s Changed Namespace "
                  f"List {ids} names {nsid}")
            pair[1] = h.aer()

    def size_is(self, nsid, nbytes, what):
        nsze, ncap, nuse = ns_sizes(self.on[1][0], nsid)
        want = nbytes // BS
        check(nsze == ncap == nuse == want, f"{what}: Identify NS {nsid} "
              f"NSZE {nsze} NCAP {ncap} NUSE {nuse}, expected {want}")


def resident(nsid):
    p = ctl("list-ns", NQN, "--json")
    return {n["nsid"]: n.get("resident")
            for n in json.loads(p.stdout or "{}")["namespaces"]}.get(nsid)


def until(pred, seconds=10):
    """pred() true within seconds (polled)."""
    deadline = time.monotonic() + seconds
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.1)
    return pred()


def lba_range(cpl):
    return cpl.sct == 0 and cpl.sc == SC_LBA_RANGE and cpl.dnr


def ram_checks(hs):
    q = hs.q
    p1 = perf(1, 4, "randrw")
    time.sleep(0.7)
    ctl("set-ns", NQN, "1", "--size", "128M")
    hs.told(1, "grow NSID 1 to 128M")
    hs.size_is(1, 128 * MIB, "grow NSID 1")
    last = 128 * MIB // BS - 1
    check(q.write(1, last, b"\xa5" * BS).ok, "write the new last block")
    cpl = q.read(1, last, 1)
    check(cpl.ok and cpl.data == b"\xa5" * BS, "read the new last block")
    check(lba_range(q.read(1, last + 1, 1)), "read past 128M: LBA Out of "
          "Range")

    # A write admitted before the shrink, its data held back.
    held_lba = 40 * MIB // BS
    data = bytes(range(256)) * 32            # 8 KiB: needs an R2T
    held = q.submit(nc.NVM_WRITE, nsid=1, data_out=data, inline=False,
                    **q.rw_fields(held_lba, len(data) // BS))
    time.sleep(0.3)
    ctl("set-ns", NQN, "1", "--size", "32M")
    hs.told(1, "shrink NSID 1 to 32M")
    hs.size_is(1, 32 * MIB, "shrink NSID 1")
    p = ctl("set-ns", NQN, "1", "--size", "48M", rc=7)
    check("try again" in p.stderr, f"resize while the shrink waits: busy "
          f"({p.stderr.strip()})")
    end = 32 * MIB // BS
    check(lba_range(q.read(1, end, 1)), "read at the new end: LBA Out of "
          "Range")
    check(lba_range(q.write(1, end - 1, b"\0" * 2 * BS)),
          "write across the new end: LBA Out of Range")
    check(lba_range(q.read(1, held_lba, 1)), "read where the held write "
          "goes: LBA Out of Range")
    cpl = q.wait(held)                       # answers the R2T now
    check(cpl.ok, f"the write admitted before the shrink completes: {cpl}")
    res, err = perf_result(p1, "perf on NSID 1")
    if res is not None:
        # perf prints the status field: DNR, More, SCT and SC.
        codes = {int(c, 16) for c in re.findall(r"status (0x[0-9a-f]+)", err)}
        check(all(c & 0x47ff == 0x4000 | SC_LBA_RANGE for c in codes),
              f"perf on NSID 1: its errors are LBA Out of Range "
              f"({sorted(hex(c) for c in codes) or 'none'})")
        check(res["ios"] > res["errors"],
              "perf on NSID 1 kept being served")
    check(q.write(1, end - 1, b"\x5a" * BS).ok, "write the last block")
    # The shrink settles once nothing older runs.
    check(until(lambda: ctl("set-ns", NQN, "1", "--size", "64M",
                            rc=None).returncode == 0),
          "the shrink settled: NSID 1 grows again")
    hs.told(1, "grow NSID 1 back to 64M")
    hs.size_is(1, 64 * MIB, "grow NSID 1 back")
    cpl = q.read(1, end - 1, 2)
    check(cpl.ok and cpl.data == b"\x5a" * BS + b"\0" * BS,
          "grown back: the old last block kept its data, the next is zeros")
    cpl = q.read(1, held_lba, len(data) // BS)
    check(cpl.ok and cpl.data == bytes(len(data)),
          "grown back: where the held write went reads as zeros")
    cpl = q.read(1, 64 * MIB // BS - 8, 8)
    check(cpl.ok and cpl.data == bytes(8 * BS), "grown back: the end reads "
          "as zeros")
    check(until(lambda: resident(1) == 64 * MIB, 20),
          f"grown back: populated in the background ({resident(1)} bytes)")


def file_checks(hs):
    q = hs.q
    p3 = perf(3, 4, "randrw")
    time.sleep(0.5)
    ctl("set-ns", NQN, "3", "--size", "32M")
    hs.told(3, "grow NSID 3 to 32M")
    hs.size_is(3, 32 * MIB, "grow NSID 3")
    check(os.stat(FILE).st_size == 32 * MIB, "the file is 32M long")
    last = 32 * MIB // BS - 1
    check(q.write(3, last, b"\x3c" * BS).ok, "write NSID 3's new last block")

    os.truncate(FILE, 48 * MIB)
    p = ctl("rescan-ns", NQN, "3", "--json")
    got = json.loads(p.stdout or "{}").get("namespaces", [{}])
    check(got == [{"nsid": 3, "size": 48 * MIB, "changed": True}],
          f"rescan-ns takes the file's new size: {got}")
    hs.told(3, "rescan NSID 3")
    hs.size_is(3, 48 * MIB, "rescan NSID 3")
    p = ctl("rescan-ns", NQN, "--json")
    got = json.loads(p.stdout or "{}").get("namespaces", [])
    check([n["changed"] for n in got] == [False, False, False],
          f"rescan-ns again: nothing changed ({got})")

    os.truncate(FILE, 64 * MIB)
    os.kill(PID, signal.SIGHUP)
    hs.told(3, "SIGHUP after the file grew")
    hs.size_is(3, 64 * MIB, "reload NSID 3")
    cpl = q.read(3, last, 1)
    check(cpl.ok and cpl.data == b"\x3c" * BS, "NSID 3 kept its data")
    res, _ = perf_result(p3, "perf on NSID 3")
    check(res is not None and res["errors"] == 0, "perf on NSID 3: no error")

    ctl("set-ns", NQN, "3", "--size", "16M")
    hs.told(3, "shrink NSID 3 to 16M")
    hs.size_is(3, 16 * MIB, "shrink NSID 3")
    check(until(lambda: os.stat(FILE).st_size == 16 * MIB),
          "the file was truncated to 16M")
    check(lba_range(q.read(3, 16 * MIB // BS, 1)), "NSID 3: read past 16M: "
          "LBA Out of Range")

    # Other storage, live: the data and the size are the new file's.
    other = FILE + ".b"
    with open(other, "wb") as f:
        f.truncate(24 * MIB)
        f.seek(5 * BS)
        f.write(b"\x77" * BS)
    p = ctl("set-ns", NQN, "3", "--path", other + ".missing", rc=1)
    check("No such file" in p.stderr, f"--path to nothing: {p.stderr.strip()}")
    ctl("set-ns", NQN, "1", "--path", other, rc=1)      # RAM has none
    ctl("set-ns", NQN, "3", "--path", other)
    hs.told(3, "NSID 3 on another file")
    hs.size_is(3, 24 * MIB, "NSID 3 on another file")
    cpl = q.read(3, 5, 1)
    check(cpl.ok and cpl.data == b"\x77" * BS, "NSID 3 reads the new file")
    check(q.write(3, 24 * MIB // BS - 1, b"\x78" * BS).ok,
          "NSID 3 writes its new last block")
    with open(other, "rb") as f:
        f.seek(24 * MIB - BS)
        check(f.read(BS) == b"\x78" * BS, "the write landed in the new file")
    p = ctl("list-ns", NQN, "--json")
    paths = {n["nsid"]: n["path"] for n in json.loads(p.stdout)["namespaces"]}
    check(paths.get(3) == other, f"list-ns shows the new path: {paths}")


def bad_input(hs):
    for size, rc in (("0", 2), ("1000", 2), ("12Q", 2), ("-5", 2),
                     ("99999999T", 2), ("1T", 1)):
        ctl("set-ns", NQN, "1", "--size", size, rc=rc)
    ctl("set-ns", NQN, "9", "--size", "1M", rc=3)
    ctl("rescan-ns", NQN, "9", rc=3)
    ctl("rescan-ns", "nqn.2026-11.io.nvmfd.test:none", rc=3)
    ctl("set-ns", NQN, "2", "--size", "16M")      # the size it has
    hs.size_is(1, 64 * MIB, "after bad input, NSID 1")
    hs.size_is(2, 16 * MIB, "after bad input, NSID 2")
    for i, (h, cid) in enumerate(hs.on):
        got = h.aer_result(cid, 0.3)
        check(got is None, f"no event for bad input (host {i + 1}: {got})")


def main():
    global NVMFD, SOCK, NQN, ADDR, PORT, FILE, PID
    NVMFD, SOCK, NQN, addr, FILE, pid = sys.argv[1:7]
    ADDR, port = addr.rsplit(":", 1)
    PORT, PID = int(port), int(pid)

    hs = Hosts()
    # NSID 2 written whole first, so that every read can be verified.
    res, _ = perf_result(perf(2, 1, "write", verify=True), "fill NSID 2")
    check(res is not None and res["errors"] == 0 and
          res["ios"] >= 16 * MIB // 4096, "NSID 2 written whole")
    p2 = perf(2, 14, "randrw", verify=True)
    ram_checks(hs)
    file_checks(hs)
    bad_input(hs)
    got = hs.off.aer_result(hs.off_aer, 0.2)
    check(got is None, f"the host without the event enabled got none ({got})")
    ids = changed_ns(hs.off)
    check(set(ids) == {1, 3}, f"its Changed Namespace List: {ids}")
    res, _ = perf_result(p2, "perf on NSID 2")
    check(res is not None and res["errors"] == 0 and
          res["verify_errors"] == 0 and res["ios"] > 0,
          "the other namespace's I/O saw no error")
    # "populate: lazy": grown, it takes memory only as it is written.
    before = resident(2)
    ctl("set-ns", NQN, "2", "--size", "24M")
    hs.told(2, "grow lazy NSID 2 to 24M")
    hs.size_is(2, 24 * MIB, "grow NSID 2")
    time.sleep(1)
    check(resident(2) == before, f"lazy NSID 2 grew without populating "
          f"({before} -> {resident(2)} bytes resident)")
    check(hs.q.write(2, 24 * MIB // BS - 1, b"\x22" * BS).ok and
          resident(2) > before, "a write past 16M populates its chunk")
    hs.q.close()
    for h, _ in hs.on:
        h.close()
    hs.off.close()


if __name__ == "__main__":
    try:
        main()
    except (nc.NvmfError, OSError, subprocess.SubprocessError) as e:
        errors.append(f"{type(e).__name__}: {e}")
        log(f"FAIL: {type(e).__name__}: {e}")
    log("PASS" if not errors else f"FAIL: {len(errors)}")
    sys.exit(1 if errors else 0)
