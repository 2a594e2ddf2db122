#!/usr/bin/env python3
"""A bounded soak of nvmfd (make soak): many queue pairs under verified
load while the configuration and the associations change underneath.

    soak.py NVMFD [--minutes M] [--clients C] [--queues Q] [--depth D]
                  [--out DIR]

It starts nvmfd (2 workers) with four subsystems of two 16 MiB RAM
namespaces each, writes every namespace once with perf's address pattern,
then for M minutes (default 10) keeps C perf clients (default 10), each
with its own host NQN and Q I/O queues (default 100, so 1000 queue pairs),
running 4 KiB random read/write with --verify against namespace 1 of a
subsystem, each run 5 to 20 seconds, then a new one.  Every 10 seconds it
also adds a namespace to a subsystem or removes one (never the one under
verified load), and every 15 seconds terminates one live association with
nvmfctl terminate (its perf client fails, as a host would see it, and a new
one starts).  Every 5 seconds it samples the daemon's RSS, open fds,
queue pairs and CPU time.

Pass: zero verify errors in every perf run (a run cut short by a
termination still reports its verify errors), nvmfd alive throughout and
stopping with status 0 on SIGTERM, and RSS and fds flat: once the clients
are gone, fds back to where they were before the first client, and RSS at
the end within 10% + 8 MiB of RSS after the first minute.  Writes
DIR/soak.csv (the samples) and DIR/soak.svg (RSS, fds and queue pairs
over time, each scaled to its own maximum); prints a summary.  Loopback only; every wait is
bounded; only the processes it starts are stopped, by PID.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "bench"))
from scale import free_port  # noqa: E402

SUBSYS = 4
NS_SIZE = 16 << 20
NQN = "nqn.2026-11.io.nvmfd.soak:s{}"


def proc_sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = int(f.read().split("VmRSS:")[1].split()[0])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        fl = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fl[11]) + int(fl[12])) / os.sysconf("SC_CLK_TCK")
    return rss, fds, cpu


class Soak:
    def __init__(self, a):
        self.a = a
        self.work = tempfile.mkdtemp(prefix="nvmfd-soak.")
        self.port = free_port()
        self.sock = os.path.join(self.work, "ctl.sock")
        self.ctl = [a.nvmfd, "ctl", "-s", self.sock]
        self.clients = {}           # Popen -> (host NQN, subsystem index)
        self.runs = self.verify_errors = self.ios = self.cut = 0
        self.failed_runs = 0
        self.extra = {}             # subsystem index -> extra NSIDs
        self.samples = []

    def config(self):
        out = ["workers: 2", "max_connections: 4096",
               "max_controllers: 1024", "control:",
               f"  socket: {self.sock}", "ports:",
               "  - id: 1", "    address: 127.0.0.1",
               f"    port: {self.port}", "    max_queue_depth: 128",
               "subsystems:"]
        for i in range(SUBSYS):
            out += [f"  - nqn: {NQN.format(i)}", "    max_io_queues: 1024",
                    "    namespaces:",
                    f"      - {{nsid: 1, backend: ram, size: {NS_SIZE}}}",
                    f"      - {{nsid: 2, backend: ram, size: {NS_SIZE}}}"]
        path = os.path.join(self.work, "nvmfd.yaml")
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
        return path

    def start(self):
        self.log = open(os.path.join(self.work, "nvmfd.log"), "w")
        self.d = subprocess.Popen([self.a.nvmfd, "-F", "-f", self.config()],
                                  stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while " ready" not in open(self.log.name).read():
            if self.d.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("soak: nvmfd did not start")
            time.sleep(0.05)

    def perf(self, i, args, host=None):
        cmd = [self.a.nvmfd, "perf", "-a", "127.0.0.1", "-s", str(self.port),
               "-n", NQN.format(i), "-N", "1", "-j"] + args
        if host:
            cmd += ["-H", host]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def fill(self):
        for i in range(SUBSYS):
            p = self.perf(i, ["-o", "131072", "-q", "8", "-w", "write",
                              "-t", "2", "-v"])
            out, err = p.communicate(timeout=60)
            if p.returncode != 0:
                raise SystemExit(f"soak: fill of subsystem {i}: {err}")

    def launch(self, n):
        host = f"nqn.2026-11.io.nvmfd.soak:host{n}"
        i = n % SUBSYS
        t = random.randint(5, 20)
        p = self.perf(i, ["-c", str(self.a.queues), "-q", str(self.a.depth),
                          "-o", "4096", "-w", "randrw", "-t", str(t), "-v"],
                      host)
        self.clients[p] = (host, i, time.monotonic() + t + 60)

    def reap(self):
        for p in list(self.clients):
            host, i, deadline = self.clients[p]
            if p.poll() is None:
                if time.monotonic() > deadline:
                    p.kill()        # a hung client: count it as failed
                continue
            out, err = p.communicate()
            del self.clients[p]
            self.runs += 1
            res = None
            for line in out.splitlines():
                try:
                    res = json.loads(line)
                except ValueError:
                    pass
            if res is not None:
                self.verify_errors += res.get("verify_errors", 0)
                self.ios += res.get("ios", 0)
            if p.returncode != 0:
                self.failed_runs += 1
                if "verify" in err:
                    self.verify_errors += 1

    def churn_ns(self):
        i = random.randrange(SUBSYS)
        ex = self.extra.setdefault(i, [])
        if ex and random.random() < 0.5:
            nsid = ex.pop()
            subprocess.run(self.ctl + ["del-ns", NQN.format(i), str(nsid)],
                           check=True, stdout=subprocess.DEVNULL)
        else:
            nsid = 3 + len(ex)
            if nsid > 16:
                return
            subprocess.run(self.ctl + ["add-ns", NQN.format(i), "--nsid",
                                       str(nsid), "--backend", "ram",
                                       "--size", "4M", "--populate", "lazy"],
                           check=True, stdout=subprocess.DEVNULL)
            ex.append(nsid)

    def terminate_one(self):
        r = subprocess.run(self.ctl + ["list-ctrl", "--json"],
                           capture_output=True, text=True, check=True)
        ctrls = [c for c in json.loads(r.stdout).get("controllers", [])
                 if "soak:host" in c.get("host", "")]
        if ctrls:
            c = random.choice(ctrls)
            subprocess.run(self.ctl + ["terminate", str(c["cntlid"]),
                                       "--subsys", c["subsys"]],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            self.cut += 1

    def sample(self, t0):
        rss, fds, cpu = proc_sample(self.d.pid)
        qps = sum(self.a.queues + 1 for _ in self.clients)
        self.samples.append((round(time.monotonic() - t0, 1), rss, fds,
                             round(cpu, 2), qps))

    def run(self):
        self.start()
        self.fill()
        fd0 = proc_sample(self.d.pid)[1]
        t0 = time.monotonic()
        end = t0 + self.a.minutes * 60
        n = 0
        next_ns = next_cut = next_sample = t0
        rss_warm = None
        while time.monotonic() < end:
            if self.d.poll() is not None:
                raise SystemExit("soak: FAIL: nvmfd died")
            self.reap()
            while len(self.clients) < self.a.clients:
                self.launch(n)
                n += 1
            now = time.monotonic()
            if now >= next_ns:
                self.churn_ns()
                next_ns = now + 10
            if now >= next_cut:
                if now > t0:
                    self.terminate_one()
                next_cut = now + 15
            if now >= next_sample:
                self.sample(t0)
                next_sample = now + 5
                if rss_warm is None and now - t0 >= min(60, self.a.minutes
                                                        * 30):
                    rss_warm = self.samples[-1][1]
            time.sleep(0.2)
        deadline = time.monotonic() + 90
        while self.clients and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.2)
        for p in self.clients:
            p.kill()
        time.sleep(1)               # the daemon closes what they left
        self.sample(t0)
        rss_end, fd_end = self.samples[-1][1], self.samples[-1][2]
        self.d.send_signal(signal.SIGTERM)
        try:
            rc = self.d.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.d.kill()
            rc = "hung"
        return self.report(fd0, fd_end, rss_warm or self.samples[0][1],
                           rss_end, rc)

    def report(self, fd0, fd_end, rss_warm, rss_end, rc):
        os.makedirs(self.a.out, exist_ok=True)
        csv = os.path.join(self.a.out, "soak.csv")
        with open(csv, "w") as f:
            f.write("seconds,rss_kib,fds,cpu_seconds,queue_pairs\n")
            for s in self.samples:
                f.write(",".join(map(str, s)) + "\n")
        plot(self.samples, os.path.join(self.a.out, "soak.svg"))
        ok_rss = rss_end <= rss_warm * 1.10 + 8192
        checks = [
            (self.verify_errors == 0, f"verify errors: {self.verify_errors}"),
            (fd_end <= fd0, f"open fds: {fd0} before, {fd_end} after"),
            (ok_rss, f"RSS: {rss_warm} KiB after warm-up, {rss_end} KiB "
                     "at the end"),
            (rc == 0, f"SIGTERM: exit {rc}"),
        ]
        print(f"soak: {self.a.minutes} min, {self.runs} perf runs "
              f"({self.failed_runs} ended by a terminated association or "
              f"an error), {self.ios} I/Os, {self.cut} associations "
              f"terminated, up to {self.a.clients * (self.a.queues + 1)} "
              f"queue pairs; samples in {csv}")
        bad = 0
        for ok, what in checks:
            print(("ok: " if ok else "FAIL: ") + what)
            bad += not ok
        return 1 if bad else 0


def plot(samples, svg):
    """RSS and open fds over time, as a small SVG (no plotting tool)."""
    if len(samples) < 2:
        return
    w, h, m = 760, 300, 50
    tmax = max(s[0] for s in samples) or 1
    series = (("RSS (MiB)", [s[1] / 1024 for s in samples], "#1f77b4"),
              ("open fds", [s[2] for s in samples], "#d62728"),
              ("queue pairs", [s[4] for s in samples], "#2ca02c"))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w + 2 * m}" '
           f'height="{h + 2 * m}" font-family="sans-serif" font-size="12">',
           f'<rect x="{m}" y="{m}" width="{w}" height="{h}" fill="none" '
           'stroke="#888"/>',
           f'<text x="{m}" y="{h + m + 30}">0 s</text>',
           f'<text x="{m + w - 40}" y="{h + m + 30}">{tmax:.0f} s</text>']
    for k, (name, ys, color) in enumerate(series):
        top = max(ys) * 1.1 or 1
        pts = " ".join(f"{m + s[0] / tmax * w:.1f},"
                       f"{m + h - y / top * h:.1f}"
                       for s, y in zip(samples, ys))
        out.append(f'<polyline fill="none" stroke="{color}" '
                   f'stroke-width="1.5" points="{pts}"/>')
        out.append(f'<text x="{m + 10 + 230 * k}" y="{m - 10}" '
                   f'fill="{color}">{name} (top {top:.0f})</text>')
    out.append("</svg>")
    with open(svg, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("nvmfd")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--queues", type=int, default=100)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--out", default=".")
    a = ap.parse_args()
    s = Soak(a)
    try:
        return s.run()
    finally:
        for p in s.clients:
            p.kill()
        if getattr(s, "d", None) is not None and s.d.poll() is None:
            s.d.kill()


if __name__ == "__main__":
    sys.exit(main())
