#!/usr/bin/env python3
"""Stand in for systemd's notification socket in tests/integration/notify.sh.

Binds an AF_UNIX datagram socket (a path, or an abstract name given as
"@name") and writes one line per event to --out:

  BOUND                       the socket is ready for the daemon
  DGRAM READY=1|STATUS=...    a datagram; its newlines shown as '|'
  CONNECT ok | CONNECT fail: E  after each READY=1: can a TCP client connect
                              to --port on 127.0.0.1 at that very moment?

It exits after a datagram with STOPPING=1, or after --timeout seconds.
"""
import argparse
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    name = args.socket
    if name.startswith("@"):
        name = "\0" + name[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(name)
    deadline = time.monotonic() + args.timeout

    with open(args.out, "a", buffering=1) as out:
        out.write("BOUND\n")
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                out.write("TIMEOUT\n")
                return 1
            s.settimeout(left)
            try:
                data = s.recv(4096)
            except socket.timeout:
                continue
            lines = data.decode("utf-8", "replace").split("\n")
            # Check the port before writing anything: the shell may act on
            # the DGRAM line at once.
            conn = None
            if "READY=1" in lines:
                try:
                    c = socket.create_connection(("127.0.0.1", args.port),
                                                 timeout=2)
                    c.close()
                    conn = "CONNECT ok"
                except OSError as e:
                    conn = "CONNECT fail: %s" % e
            out.write("DGRAM %s\n" % "|".join(lines))
            if conn:
                out.write(conn + "\n")
            if "STOPPING=1" in lines:
                return 0


if __name__ == "__main__":
    sys.exit(main())
