#!/usr/bin/env python3
"""Checks for allowed hosts bound to source addresses (hosts: - from:).

Usage: host_from.py PORT SUBNQN OPEN_NQN HOSTNQN STEP
STEP "bound": HOSTNQN may connect to SUBNQN from 127.0.0.2 only:
  a Connect from 127.0.0.1 gets Connect Invalid Host, one from 127.0.0.2
  succeeds; the discovery log from 127.0.0.1 lists OPEN_NQN but not
  SUBNQN, from 127.0.0.2 both.
STEP "hold": connect from 127.0.0.2, print "connected", then wait (up to
  20 s) for the target to close the connection; print "closed" when it
  does (a host whose address was taken off the list).
STEP "open": a Connect from 127.0.0.1 succeeds.
Exit 0 when every check holds.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmf_client as nc  # noqa: E402

port, subnqn, open_nqn, hostnqn, step = sys.argv[1:6]
port = int(port)
fails = 0


def check(ok, what):
    global fails
    print(("ok: " if ok else "FAIL: ") + what)
    fails += 0 if ok else 1


def admin(src, nqn=subnqn):
    q = nc.Host("127.0.0.1", port, hostnqn=hostnqn, source=src)
    q.icreq()
    return q, q.connect(nqn)


def listed(src):
    """Subsystem NQNs in the discovery log as seen from src."""
    q, cpl = admin(src, nc.DISCOVERY_NQN)
    if not cpl.ok:
        raise SystemExit(f"FAIL: discovery Connect from {src}: {cpl}")
    q.enable()
    cpl = q.get_log_page(0x70, length=16384)
    numrec = struct.unpack_from("<Q", cpl.data, 8)[0]
    q.close()
    return {cpl.data[1024 * (i + 1) + 256:1024 * (i + 1) + 512]
            .rstrip(b"\0").decode() for i in range(numrec)}


if step == "bound":
    q, cpl = admin("127.0.0.1")
    check(not cpl.ok and cpl.sct == 1 and cpl.sc == 0x84,
          f"Connect from 127.0.0.1: Connect Invalid Host ({cpl})")
    q.close()
    q, cpl = admin("127.0.0.2")
    check(cpl.ok, f"Connect from 127.0.0.2 accepted ({cpl})")
    q.close()
    seen = listed("127.0.0.1")
    check(open_nqn in seen and subnqn not in seen,
          f"discovery from 127.0.0.1 lists {sorted(seen)}")
    seen = listed("127.0.0.2")
    check(open_nqn in seen and subnqn in seen,
          f"discovery from 127.0.0.2 lists {sorted(seen)}")
elif step == "hold":
    q, cpl = admin("127.0.0.2")
    if not cpl.ok:
        raise SystemExit(f"FAIL: Connect from 127.0.0.2: {cpl}")
    q.enable()
    print("connected", flush=True)
    try:
        q.expect_closed(timeout=20)
        print("closed", flush=True)
    except nc.NvmfError as e:
        check(False, f"connection not closed: {e}")
elif step == "open":
    q, cpl = admin("127.0.0.1")
    check(cpl.ok, f"Connect from 127.0.0.1 accepted after --from any ({cpl})")
    q.close()
sys.exit(1 if fails else 0)
