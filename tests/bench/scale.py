#!/usr/bin/env python3
"""How nvmfd's control-plane costs grow with the number of subsystems.

For each count N (default 1000, 5000, 10000, 20000) it writes a
configuration of N subsystems, each with a 1 MiB RAM namespace and the
explicit uuid/nguid/eui64 that `nvmfctl save` writes, then measures:

  check       nvmfd -n -f FILE (load and validate)      wall time, best of 3
  start       nvmfd -F until "ready"                     wall time
  reload      nvmfctl reload of the same file            wall time, best of 3
  list        nvmfctl list-subsys --json                 wall time, best of 3
  disc_4k     the whole discovery log read the way the
              Linux host reads it (header, 4 KiB chunks,
              header again)                              daemon CPU
  disc_1m     the same in 1 MiB chunks                   daemon CPU

It prints a table, the growth factor of each cost between consecutive
counts divided by the growth of N (1.0 = linear, 2.0 = quadratic when N
doubles), and the 4 KiB / 1 MiB discovery ratio at 10000.  It exits 1 when
a normalized factor exceeds --max-factor (default 1.6: linear with room for
noise), or the discovery ratio exceeds 10.

With --datapath N, it then starts one daemon with 1 subsystem and one with
N (one worker each, pinned to CPU 0, perf on CPU 1 where there are two)
and runs `nvmfd perf` 4 KiB randread QD32 against subsystem 0 of each in
turn, --rounds times: the data path must not care how many subsystems
exist (goal: at least 0.97x the IOPS, median of the rounds).

Usage: scale.py NVMFD [--counts 1000,5000,10000,20000] [--json FILE]
Loopback only; every wait is bounded; only the daemons it starts are
stopped, by PID.
"""
import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import nvmf_client as nc  # noqa: E402

LOG_DISCOVERY = 0x70


def free_port():
    for _ in range(50):
        p = random.randint(20000, 59999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise SystemExit("scale.py: no free port")


def write_config(path, n, port, sock):
    out = ["workers: 1", "max_connections: 64", "control:",
           f"  socket: {sock}", "ports:", "  - id: 1",
           "    address: 127.0.0.1", f"    port: {port}", "subsystems:"]
    for i in range(n):
        h = f"{i:012x}"
        out += [f"  - nqn: nqn.2026-11.io.nvmfd.scale:vol{i}",
                "    namespaces:",
                "      - nsid: 1",
                "        backend: ram",
                "        size: 1M",
                "        populate: lazy",
                f"        uuid: 5ca1ab1e-0000-4000-8000-{h}",
                f"        nguid: 5ca1ab1e00004000{i:016x}",
                f"        eui64: \"5c:a1:{(i >> 40) & 255:02x}:{(i >> 32) & 255:02x}:"
                f"{(i >> 24) & 255:02x}:{(i >> 16) & 255:02x}:"
                f"{(i >> 8) & 255:02x}:{i & 255:02x}\""]
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def cpu_seconds(pid):
    """CPU time of every thread of pid, from schedstat (nanoseconds): the
    clock ticks of /proc/PID/stat are 10 ms, as much as a whole 1 MiB
    discovery read costs."""
    ns = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns += int(f.read().split()[0])
        return ns / 1e9
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return ((int(fields[11]) + int(fields[12])) /
                os.sysconf("SC_CLK_TCK"))


def read_discovery(port, chunk):
    """Header, the entries in chunks, header again; returns the records."""
    h = nc.open_admin("127.0.0.1", port, nc.DISCOVERY_NQN)
    try:
        cpl = h.get_log_page(LOG_DISCOVERY, 0, 1024)
        genctr, numrec = struct.unpack_from("<QQ", cpl.data, 0)
        total = 1024 + numrec * 1024
        off = 1024
        while off < total:
            n = min(chunk, total - off)
            cpl = h.get_log_page(LOG_DISCOVERY, off, n)
            if not cpl.ok:
                raise SystemExit(f"scale.py: Get Log Page failed: {cpl}")
            off += n
        cpl = h.get_log_page(LOG_DISCOVERY, 0, 1024)
        if struct.unpack_from("<Q", cpl.data, 0)[0] != genctr:
            raise SystemExit("scale.py: GENCTR moved during the read")
        return numrec
    finally:
        h.close()


def timed(args, timeout=600, runs=3):
    """The best of runs: the machine's other load only ever adds time."""
    best = None
    for _ in range(runs):
        t = time.monotonic()
        p = subprocess.run(args, capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise SystemExit(f"scale.py: {' '.join(args[:3])}...: exit "
                             f"{p.returncode}: {p.stderr.strip()[-300:]}")
        t = time.monotonic() - t
        best = t if best is None else min(best, t)
    return best


def measure(nvmfd, n, work):
    port = free_port()
    sock = os.path.join(work, "ctl.sock")
    cfg = os.path.join(work, f"scale-{n}.yaml")
    write_config(cfg, n, port, sock)
    r = {"subsystems": n}
    r["check"] = timed([nvmfd, "-n", "-f", cfg])
    log = open(os.path.join(work, f"nvmfd-{n}.log"), "w")
    t = time.monotonic()
    d = subprocess.Popen([nvmfd, "-F", "-f", cfg], stdout=log, stderr=log)
    try:
        deadline = t + 600
        while True:
            with open(log.name) as f:
                if " ready" in f.read():
                    break
            if d.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"scale.py: nvmfd did not start with {n}")
            time.sleep(0.02)
        r["start"] = time.monotonic() - t
        ctl = [nvmfd, "ctl", "-s", sock]
        r["reload"] = timed(ctl + ["reload"])
        r["list"] = timed(ctl + ["list-subsys", "--json"])
        # The reload's clean-up of the old configuration may still be
        # running: let it finish, and keep the cheaper of two reads each.
        time.sleep(1)
        for name, chunk in (("disc_4k", 4096), ("disc_1m", 1 << 20)):
            for _ in range(2):
                c0 = cpu_seconds(d.pid)
                got = read_discovery(port, chunk)
                cpu = cpu_seconds(d.pid) - c0
                r[name] = min(r.get(name, cpu), cpu)
                if got != n + 1:
                    raise SystemExit(f"scale.py: {got} discovery records, "
                                     f"expected {n + 1}")
        r["rss_kib"] = int(open(f"/proc/{d.pid}/status").read()
                           .split("VmRSS:")[1].split()[0])
    finally:
        d.terminate()
        try:
            d.wait(30)
        except subprocess.TimeoutExpired:
            d.kill()
            d.wait()
        log.close()
    return r


def start_daemon(nvmfd, n, work, tag):
    port = free_port()
    sock = os.path.join(work, f"ctl-{tag}.sock")
    cfg = os.path.join(work, f"dp-{tag}.yaml")
    write_config(cfg, n, port, sock)
    log = open(os.path.join(work, f"dp-{tag}.log"), "w")
    pin = ["taskset", "-c", "0"] if os.cpu_count() >= 2 else []
    d = subprocess.Popen(pin + [nvmfd, "-F", "-f", cfg], stdout=log,
                         stderr=log)
    deadline = time.monotonic() + 600
    while True:
        with open(log.name) as f:
            if " ready" in f.read():
                return d, port
        if d.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"scale.py: nvmfd did not start with {n}")
        time.sleep(0.05)


def perf_iops(nvmfd, port, secs):
    pin = ["taskset", "-c", "1"] if os.cpu_count() >= 2 else []
    p = subprocess.run(pin + [nvmfd, "perf", "-a", "127.0.0.1", "-s",
                       str(port), "-n", "nqn.2026-11.io.nvmfd.scale:vol0",
                       "-q", "32", "-o", "4096", "-w", "randread", "-t",
                       str(secs), "-j"], capture_output=True, text=True,
                       timeout=secs + 60)
    if p.returncode != 0:
        raise SystemExit(f"scale.py: perf: {p.stderr.strip()[-300:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])["iops"]


def datapath(nvmfd, n, rounds, secs):
    with tempfile.TemporaryDirectory(prefix="nvmfd-scale.") as work:
        d1, p1 = start_daemon(nvmfd, 1, work, "one")
        dn, pn = start_daemon(nvmfd, n, work, "many")
        one, many = [], []
        try:
            for _ in range(rounds):
                one.append(perf_iops(nvmfd, p1, secs))
                many.append(perf_iops(nvmfd, pn, secs))
        finally:
            for d in (d1, dn):
                d.terminate()
                d.wait(30)
    one.sort()
    many.sort()
    ratio = many[len(many) // 2] / one[len(one) // 2]
    print(f"data path: 4K randread QD32 with 1 subsystem "
          f"{', '.join('%.0f' % x for x in one)} IOPS; with {n} "
          f"{', '.join('%.0f' % x for x in many)} IOPS; median ratio "
          f"{ratio:.3f} (goal >= 0.97)")
    return ratio


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("nvmfd")
    ap.add_argument("--counts", default="1000,5000,10000,20000")
    ap.add_argument("--max-factor", type=float, default=1.6)
    ap.add_argument("--json")
    ap.add_argument("--datapath", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    o = ap.parse_args()
    counts = [int(x) for x in o.counts.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="nvmfd-scale.") as work:
        for n in counts:
            rows.append(measure(o.nvmfd, n, work))
            r = rows[-1]
            print(f"{n:6d} subsystems: check {r['check']:.3f} s, start "
                  f"{r['start']:.3f} s, reload {r['reload']:.3f} s, list "
                  f"{r['list']:.3f} s, discovery CPU 4K chunks "
                  f"{r['disc_4k']:.3f} s / 1M chunks {r['disc_1m']:.3f} s, "
                  f"RSS {r['rss_kib'] // 1024} MiB", flush=True)
    bad = []
    keys = ("check", "start", "reload", "list", "disc_4k")
    print("\ngrowth per step, divided by the growth of N (1.0 = linear):")
    for a, b in zip(rows, rows[1:]):
        grow = b["subsystems"] / a["subsystems"]
        parts = []
        for k in keys:
            # Below 50 ms a time is mostly start-up noise: floor it there.
            f = max(b[k], 0.05) / max(a[k], 0.05) / grow
            parts.append(f"{k} {f:.2f}")
            if f > o.max_factor:
                bad.append(f"{k} {a['subsystems']}->{b['subsystems']}: "
                           f"{f:.2f}")
        print(f"  {a['subsystems']} -> {b['subsystems']}: " + ", ".join(parts))
    for r in rows:
        if r["subsystems"] == 10000:
            ratio = max(r["disc_4k"], 0.01) / max(r["disc_1m"], 0.01)
            print(f"discovery at 10000: 4 KiB chunks cost {ratio:.1f}x the "
                  "1 MiB chunks' CPU (goal <= 10)")
            if ratio > 10:
                bad.append(f"discovery 4K/1M ratio {ratio:.1f}")
    if o.datapath:
        if datapath(o.nvmfd, o.datapath, o.rounds, o.seconds) < 0.97:
            bad.append("data path slower with more subsystems")
    if o.json:
        with open(o.json, "w") as f:
            json.dump(rows, f, indent=1)
    if bad:
        print("WORSE THAN LINEAR: " + "; ".join(bad))
        return 1
    print("linear: every factor <= %.1f" % o.max_factor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
