#!/usr/bin/env python3
"""qpairs.py: connect many idle NVMe/TCP I/O queue pairs to nvmfd and
measure the daemon while they stay connected (for tests/bench/run.sh).

    qpairs.py --pid PID --port PORT --nqn NQN [--addr ADDR] [--queues N] \
              [--depth D] [--per-ctrl M] [--hold SECONDS] [--ns-size BYTES]

Opens ceil(N / M) controllers (admin queue, CC.EN = 1, Set Features Number
of Queues, KATO 0 so no keep-alive traffic), then N I/O queues of D entries
spread over them.  Reads the daemon's memory (VmRSS, and the resident part
of its RAM namespace mappings from /proc/PID/smaps) before connecting and
after, then its CPU time (utime + stime of /proc/PID/stat) over --hold
seconds with nothing sent.  Prints one JSON line and closes every queue.
Uses tests/integration/nvmf_client.py; loopback only.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import nvmf_client as nc  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # Fields after the command name, which may hold spaces: ") S ppid ..."
    rest = stat[stat.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK   # utime, stime


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def ns_rss_kib(pid, ns_kib):
    """Resident KiB of anonymous mappings exactly the size of a RAM
    namespace (nvmfd maps each one on its own, MAP_NORESERVE)."""
    total, size, anon = 0, None, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and ":" not in fields[0]:
                anon = len(fields) < 6          # no path: anonymous
                size = None
            elif fields[0] == "Size:":
                size = int(fields[1])
            elif fields[0] == "Rss:" and anon and size in ns_kib:
                total += int(fields[1])
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--nqn", required=True)
    ap.add_argument("--queues", type=int, default=100)
    ap.add_argument("--depth", type=int, default=128)
    ap.add_argument("--per-ctrl", type=int, default=100)
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--ns-size", type=int, action="append", default=[],
                    help="RAM namespace size in bytes (repeatable)")
    a = ap.parse_args()
    if not (1 <= a.queues <= 4096 and 2 <= a.depth <= 1024 and
            1 <= a.per_ctrl <= 1024 and 0 <= a.hold <= 600):
        ap.error("argument out of range")
    ns_kib = {s // 1024 for s in a.ns_size}

    rss0, nsr0 = vm_rss_kib(a.pid), ns_rss_kib(a.pid, ns_kib)
    admins, ios = [], []
    t0 = time.monotonic()
    try:
        left = a.queues
        while left > 0:
            n = min(left, a.per_ctrl)
            adm = nc.open_admin(a.addr, a.port, a.nqn, kato=0)
            admins.append(adm)
            granted = adm.set_num_queues(n)
            if granted < n:
                raise nc.ProtocolError(f"controller granted {granted} of {n} "
                                       "I/O queues")
            for qid in range(1, n + 1):
                ios.append(nc.open_io(adm, a.addr, a.port, a.nqn, qid=qid,
                                      sqsize=a.depth - 1))
            left -= n
        connect_s = time.monotonic() - t0
        time.sleep(0.5)                 # let the daemon settle after Connects
        rss1, nsr1 = vm_rss_kib(a.pid), ns_rss_kib(a.pid, ns_kib)
        c0, w0 = cpu_seconds(a.pid), time.monotonic()
        time.sleep(a.hold)
        c1, w1 = cpu_seconds(a.pid), time.monotonic()
        rss2 = vm_rss_kib(a.pid)
        # Every queue must still be there: a short read on each must time out
        # (nothing to read) rather than see a close.
        alive = 0
        for h in admins + ios:
            h.sock.setblocking(False)
            try:
                alive += h.sock.recv(1, 0x40) != b""    # MSG_DONTWAIT
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
    finally:
        for h in ios + admins:
            h.close()
    wall = w1 - w0
    print(json.dumps({
        "queues": a.queues, "depth": a.depth, "controllers": len(admins),
        "connect_seconds": round(connect_s, 3),
        "connections_alive": alive, "connections": len(admins) + len(ios),
        "hold_seconds": round(wall, 3),
        "cpu_seconds": round(c1 - c0, 3),
        "cpu_pct": round(100.0 * (c1 - c0) / wall, 3) if wall > 0 else 0,
        "clk_tck": CLK_TCK,
        "rss_before_kib": rss0, "rss_after_kib": rss1, "rss_end_kib": rss2,
        "ns_rss_before_kib": nsr0, "ns_rss_after_kib": nsr1,
    }))


if __name__ == "__main__":
    main()
