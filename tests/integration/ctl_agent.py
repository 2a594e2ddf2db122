#!/usr/bin/env python3
"""Run nvmfctl commands when the guest of linux-control.sh asks for them.

The guest cannot reach the control socket, so it connects to this listener
(127.0.0.1:PORT here, 10.0.2.2:PORT in the guest), sends one line with a
verb and gets one line back, "ok ..." or "fail ...":

  add-ns SIZE        nvmfctl add-ns NQN --backend ram --size SIZE -> "ok NSID"
  del-ns NSID        nvmfctl del-ns NQN NSID                      -> "ok"
  ctrl               the live controllers of NQN                  -> "ok ID ..."
  terminate          nvmfctl terminate on NQN's only controller   -> "ok ID"
  recreate SIZE MS   del-subsys NQN, wait MS milliseconds, add-subsys NQN on
                     port 1 with a SIZE-byte RAM namespace 1        -> "ok"
  set-host HOST KEY  nvmfctl set-host NQN HOST --dhchap-secret KEY -> "ok"
  rekey KEY          write KEY into --keyfile (mode 0600), nvmfctl reload
                                                                    -> "ok"
  perf-target PORT SUBNQN HOSTNQN KEY CTRLKEY
                     nvmfctl perf against 127.0.0.1:PORT (the guest's
                     kernel target through a forwarded port) with these
                     DH-HMAC-CHAP keys                              -> "ok"
  set-ana GROUP PORTID STATE
                     nvmfctl set-ana NQN --group GROUP --port PORTID
                     --state STATE                   -> "ok CHANGE_COUNT"
  ana PORTID         nvmfctl list-ana NQN: each group on that port
                     -> "ok GROUP:STATE:NSIDS ..." (NSIDS "1,2" or "-")
  set-ns-group NSID GROUP
                     nvmfctl set-ns NQN NSID --ana-group GROUP     -> "ok"
  set-ns-size NSID SIZE
                     nvmfctl set-ns NQN NSID --size SIZE; a shrink
                     still settling is tried again for up to 10 s -> "ok"
  inject NSID OP ERROR COUNT
                     nvmfctl inject-error NQN NSID --at engine --op OP
                     --error ERROR --count COUNT (a build with
                     --enable-fault-injection)                    -> "ok"
  kill NAME          SIGKILL to node NAME (--node NAME PID, or the
                     agent's own restart of it): a node that dies
                     under I/O                                      -> "ok"
  restart NAME       node NAME again, as it was: NVMFD -F -f CONFIG
                     (--restart NAME CONFIG LOG, --nvmfd), its output
                     appended to LOG; once it logs "ready" (20 s at
                     most)                                     -> "ok PID"
  done               -> "ok", and the listener exits

The agent stops the nodes it restarted when it exits (done, its timeout,
SIGTERM): it logs their stats (nvmfctl stats on --socket), then SIGTERM
and "node NAME (pid PID) exited RC after SIGTERM" (-9: killed after 15 s).

Only these verbs exist; each request and its outcome is printed.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time


def log(msg):
    print("ctl_agent: " + msg, flush=True)


def ctl(args, opts):
    cmd = [opts.nvmfctl, "-s", opts.socket] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    shown = ["(secret)" if i > 0 and args[i - 1] == "--dhchap-secret" else a
             for i, a in enumerate(args)]
    log("nvmfctl %s -> exit %d%s" % (" ".join(shown), p.returncode,
        (": " + p.stderr.strip()) if p.stderr.strip() else ""))
    return p


def controllers(opts):
    p = ctl(["list-ctrl", "--subsys", opts.nqn, "--json"], opts)
    if p.returncode != 0:
        return None
    return [c["cntlid"] for c in json.loads(p.stdout)["controllers"]]


class Nodes:
    """The nodes kill and restart act on: name -> PID, and the ones the
    agent started itself (Popen) which it stops when it exits."""

    def __init__(self, opts):
        self.opts = opts
        self.pids = {name: int(pid) for name, pid in opts.node}
        self.configs = {name: (conf, log) for name, conf, log in
                        opts.restart}
        self.started = {}

    def kill(self, name):
        if name not in self.pids:
            return "fail no node %s" % name
        os.kill(self.pids[name], signal.SIGKILL)
        if name in self.started:
            self.started.pop(name).wait(timeout=10)
        return "ok"

    def restart(self, name):
        if name not in self.configs or not self.opts.nvmfd:
            return "fail node %s cannot be restarted" % name
        if name in self.started:
            return "fail node %s runs already (pid %d)" % (
                name, self.started[name].pid)
        conf, logpath = self.configs[name]
        with open(logpath, "a+", encoding="utf-8", errors="replace") as f:
            f.seek(0)
            ready0 = f.read().count(" ready: ")
            p = subprocess.Popen([self.opts.nvmfd, "-F", "-f", conf],
                                 stdout=f, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        log("node %s started: pid %d" % (name, p.pid))
        self.started[name] = p
        self.pids[name] = p.pid
        for _ in range(200):
            with open(logpath, encoding="utf-8", errors="replace") as f:
                if f.read().count(" ready: ") > ready0:
                    return "ok %d" % p.pid
            if p.poll() is not None:
                self.started.pop(name)
                return "fail node %s exited %d at start" % (name,
                                                            p.returncode)
            time.sleep(0.1)
        return "fail node %s not ready within 20 s" % name

    def stop_all(self):
        # Bounded below: a SIGTERM now would leave a node running.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, p in list(self.started.items()):
            try:
                s = ctl(["stats"], self.opts)
                for line in s.stdout.splitlines():
                    log("node %s stats: %s" % (name, line))
            except (OSError, subprocess.SubprocessError) as e:
                log("node %s stats: %s" % (name, e))
            p.terminate()
            try:
                rc = p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = -9
            log("node %s (pid %d) exited %d after SIGTERM" % (name, p.pid,
                                                              rc))
        self.started.clear()


def words_safe(line):
    """Requests with a secret are not printed whole."""
    return not line.startswith(("set-host", "rekey", "perf-target"))


def handle(line, opts, nodes):
    words = line.split()
    if not words:
        return "fail empty request"
    verb, args = words[0], words[1:]
    if verb == "add-ns" and len(args) == 1:
        p = ctl(["add-ns", opts.nqn, "--backend", "ram", "--size", args[0],
                 "--json"], opts)
        if p.returncode != 0:
            return "fail exit %d: %s" % (p.returncode, p.stderr.strip())
        return "ok %d" % json.loads(p.stdout)["namespace"]["nsid"]
    if verb == "del-ns" and len(args) == 1 and args[0].isdigit():
        p = ctl(["del-ns", opts.nqn, args[0]], opts)
        if p.returncode != 0:
            return "fail exit %d: %s" % (p.returncode, p.stderr.strip())
        return "ok"
    if verb == "ctrl" and not args:
        ids = controllers(opts)
        if ids is None:
            return "fail list-ctrl"
        return "ok " + " ".join(str(i) for i in ids)
    if verb == "terminate" and not args:
        ids = controllers(opts)
        if not ids or len(ids) != 1:
            return "fail controllers of %s: %s" % (opts.nqn, ids)
        p = ctl(["terminate", str(ids[0])], opts)
        if p.returncode != 0:
            return "fail exit %d: %s" % (p.returncode, p.stderr.strip())
        return "ok %d" % ids[0]
    if verb == "recreate" and len(args) == 2 and args[1].isdigit():
        p = ctl(["del-subsys", opts.nqn], opts)
        if p.returncode != 0:
            return "fail del-subsys exit %d: %s" % (p.returncode, p.stderr.strip())
        time.sleep(int(args[1]) / 1000)
        for step in (["add-subsys", opts.nqn, "--ports", "1"],
                     ["add-ns", opts.nqn, "--backend", "ram", "--nsid", "1",
                      "--size", args[0]]):
            p = ctl(step, opts)
            if p.returncode != 0:
                return "fail %s exit %d: %s" % (step[0], p.returncode,
                                                p.stderr.strip())
        return "ok"
    if verb == "set-host" and len(args) == 2:
        p = ctl(["set-host", opts.nqn, args[0], "--dhchap-secret", args[1]],
                opts)
        if p.returncode != 0:
            return "fail exit %d: %s" % (p.returncode, p.stderr.strip())
        return "ok"
    if verb == "rekey" and len(args) == 1 and opts.keyfile:
        fd = os.open(opts.keyfile + ".new", os.O_WRONLY | os.O_CREAT |
                     os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(args[0] + "\n")
        os.rename(opts.keyfile + ".new", opts.keyfile)
        p = ctl(["reload"], opts)
        if p.returncode != 0:
            return "fail exit %d: %s" % (p.returncode, p.stderr.strip())
        return "ok"
    if verb == "perf-target" and len(args) == 5 and args[0].isdigit():
        cmd = [opts.nvmfctl, "perf", "-a", "127.0.0.1", "-s", args[0],
               "-n", args[1], "-H", args[2], "-S", args[3], "-C", args[4],
               "-c", "2", "-q", "4", "-t", "1", "-w", "randread"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        last = (p.stdout if p.returncode == 0 else
                p.stderr).strip().splitlines()
        last = last[-1] if last else ""
        log("perf against 127.0.0.1:%s -> exit %d: %s" %
            (args[0], p.returncode, last))
        if p.returncode != 0:
            return "fail exit %d: %s" % (p.returncode, last[:120])
        return "ok " + last[:60]
    if verb == "set-ana" and len(args) == 3:
        p = ctl(["set-ana", opts.nqn, "--group", args[0], "--port", args[1],
                 "--state", args[2], "--json"], opts)
        if p.returncode != 0:
            return "fail exit %d: %s" % (p.returncode, p.stderr.strip())
        return "ok %d" % json.loads(p.stdout)["ana"]["change_count"]
    if verb == "ana" and len(args) == 1 and args[0].isdigit():
        p = ctl(["list-ana", opts.nqn, "--json"], opts)
        if p.returncode != 0:
            return "fail exit %d: %s" % (p.returncode, p.stderr.strip())
        return "ok " + " ".join("%d:%s:%s" % (g["group"], g["state"],
                                              g["nsids"])
                                for g in json.loads(p.stdout)["ana"]
                                if g["port"] == int(args[0]))
    if verb == "set-ns-group" and len(args) == 2:
        p = ctl(["set-ns", opts.nqn, args[0], "--ana-group", args[1]], opts)
        if p.returncode != 0:
            return "fail exit %d: %s" % (p.returncode, p.stderr.strip())
        return "ok"
    if verb == "set-ns-size" and len(args) == 2 and args[0].isdigit():
        for _ in range(100):
            p = ctl(["set-ns", opts.nqn, args[0], "--size", args[1]], opts)
            if p.returncode != 7:       # busy: an earlier shrink settles
                break
            time.sleep(0.1)
        if p.returncode != 0:
            return "fail exit %d: %s" % (p.returncode, p.stderr.strip())
        return "ok"
    if verb == "inject" and len(args) == 4 and args[0].isdigit():
        p = ctl(["inject-error", opts.nqn, args[0], "--at", "engine",
                 "--op", args[1], "--error", args[2], "--count", args[3]],
                opts)
        if p.returncode != 0:
            return "fail exit %d: %s" % (p.returncode, p.stderr.strip())
        return "ok"
    if verb == "kill" and len(args) == 1:
        return nodes.kill(args[0])
    if verb == "restart" and len(args) == 1:
        return nodes.restart(args[0])
    if verb == "done" and not args:
        return "ok"
    return "fail unknown request"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--nvmfctl", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--nqn", required=True)
    ap.add_argument("--keyfile", help="the key file rekey writes")
    ap.add_argument("--node", nargs=2, action="append", default=[],
                    metavar=("NAME", "PID"), help="a node kill may end")
    ap.add_argument("--restart", nargs=3, action="append", default=[],
                    metavar=("NAME", "CONFIG", "LOG"),
                    help="a node restart may start again")
    ap.add_argument("--nvmfd", help="the daemon restart runs")
    ap.add_argument("--timeout", type=float, default=300,
                    help="exit after this many seconds in any case")
    opts = ap.parse_args()
    nodes = Nodes(opts)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        return serve(opts, nodes)
    finally:
        nodes.stop_all()


def serve(opts, nodes):
    srv = socket.create_server(("127.0.0.1", opts.port))
    deadline = time.monotonic() + opts.timeout
    log("listening on 127.0.0.1:%d" % opts.port)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            log("timed out")
            return 1
        srv.settimeout(left)
        try:
            conn, peer = srv.accept()
        except socket.timeout:
            log("timed out")
            return 1
        with conn:
            conn.settimeout(10)
            data = b""
            try:
                while b"\n" not in data and len(data) < 1024:
                    chunk = conn.recv(256)
                    if not chunk:
                        break
                    data += chunk
            except socket.timeout:
                pass
            line = data.decode("ascii", "replace").strip()
            if not line:
                continue        # a connection probe: no request
            try:
                answer = handle(line, opts, nodes)
            except (OSError, ValueError, KeyError,
                    subprocess.SubprocessError) as e:
                answer = "fail %s" % e
            shown = line if words_safe(line) else line.split()[0] + " ..."
            log("%s: %r -> %s" % (peer[0], shown, answer))
            try:
                conn.sendall((answer + "\n").encode())
            except OSError as e:
                log("reply lost: %s" % e)
            if line == "done":
                return 0


if __name__ == "__main__":
    sys.exit(main())
