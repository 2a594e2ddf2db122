#!/usr/bin/env python3
"""kato.py HOST PORT SUBNQN [--kato-ms MS] [--max-s S]: keep-alive timeout check.

Opens three admin queues to SUBNQN on an NVMe/TCP target, each a new
controller (ICReq, Fabrics Connect with CNTLID 0xFFFF, CC.EN = 1, wait for
CSTS.RDY):

  silent  KATO = MS; one Keep Alive, then nothing.  The target must drop
          the connection no sooner than ~MS and within --max-s seconds of
          that Keep Alive's completion (it waits one timer granule, KAS,
          more than MS).
  active  KATO = MS; a Keep Alive every MS/4.  Every one must complete
          successfully, before and after the silent controller is dropped.
  idle    KATO = 0 (keep-alive disabled); silent, must stay connected.
  busy    KATO = MS; never a Keep Alive, but a Property Get every MS/4:
          Identify says Traffic Based Keep Alive (CTRATT bit 6), so any
          command restarts the timer and it must stay connected.

Exit 0 if all three behave, 1 otherwise (with a message).  The host side is
nvmf_client.py's, no digests.
"""
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmf_client as nc            # noqa: E402

T0 = time.monotonic()


def log(msg):
    print(f"kato.py: [{time.monotonic() - T0:6.3f}] {msg}", flush=True)


class Fail(Exception):
    pass


def command(name, what, fn):
    """fn() (one command on queue name) must complete successfully."""
    try:
        cpl = fn()
    except nc.NvmfError as e:
        raise Fail(f"{name}: {what}: {type(e).__name__}: {e}") from None
    if not cpl.ok:
        raise Fail(f"{name}: {what} failed: {cpl}")
    return cpl


def open_queue(name, host, port, subnqn, kato_ms):
    try:
        q = nc.open_admin(host, port, subnqn, kato=kato_ms)
    except nc.NvmfError as e:
        raise Fail(f"{name}: {type(e).__name__}: {e}") from None
    log(f"{name}: controller {q.cntlid} (KATO {kato_ms} ms, host {q.hostnqn})")
    return q


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("subnqn")
    ap.add_argument("--kato-ms", type=int, default=1000)
    ap.add_argument("--max-s", type=float, default=3.0,
                    help="latest acceptable close after the last Keep Alive")
    a = ap.parse_args()
    kato = a.kato_ms / 1000

    queues = []
    try:
        for name, k in (("active", a.kato_ms), ("silent", a.kato_ms),
                        ("idle", 0), ("busy", a.kato_ms)):
            queues.append(open_queue(name, a.host, a.port, a.subnqn, k))
        active, silent, idle, busy = queues
        command("active", "Keep Alive", active.keep_alive)
        command("silent", "Keep Alive", silent.keep_alive)
        t_last = time.monotonic()
        log("silent: last Keep Alive completed; sending nothing more")

        # Until the silent queue is dropped (or too late), plus 1.5 KATO more,
        # keep the active controller alive and watch the other two.
        deadline = t_last + a.max_s
        end = None
        nka = 0
        while True:
            now = time.monotonic()
            if silent.poll_closed() and end is None:
                log(f"silent: target closed the connection "
                    f"{silent.closed_at - t_last:.3f} s after the last Keep Alive")
                end = now + 1.5 * kato
            if end is None and now > deadline:
                raise Fail(f"silent: still connected {a.max_s} s after its last "
                           f"Keep Alive (KATO {a.kato_ms} ms)")
            if end is not None and now > end:
                break
            if active.poll_closed():
                raise Fail("active: target closed the connection although it sent "
                           "a Keep Alive every KATO/4")
            if idle.poll_closed():
                raise Fail("idle: target closed a controller with KATO 0")
            if busy.poll_closed():
                raise Fail("busy: target closed the connection although it "
                           "sent a command every KATO/4 (traffic based keep "
                           "alive)")
            command("active", "Keep Alive", active.keep_alive)
            command("busy", "Property Get CSTS",
                    lambda: busy.prop_get(nc.REG_CSTS))
            nka += 1
            time.sleep(kato / 4)

        took = silent.closed_at - t_last
        if took < 0.8 * kato:
            raise Fail(f"silent: dropped after {took:.3f} s, before its KATO of "
                       f"{kato:.3f} s")
        if silent.buf:
            log(f"silent: {len(silent.buf)} bytes arrived before the close "
                f"(PDU type {silent.buf[0]:#x})")
        command("active", "Keep Alive", active.keep_alive)
        # Still answers after a long silence.
        command("idle", "Property Get CSTS",
                lambda: idle.prop_get(nc.REG_CSTS))
        log(f"active: {nka + 1} Keep Alives completed, still connected")
        log("idle: KATO 0 controller still connected and answering")
        log(f"busy: {nka} commands and no Keep Alive, still connected")
        print(f"kato.py: PASS: silent controller dropped {took:.3f} s after its "
              f"last Keep Alive (KATO {a.kato_ms} ms)", flush=True)
        return 0
    except (Fail, OSError) as e:
        print(f"kato.py: FAIL: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        for q in queues:
            q.close()


if __name__ == "__main__":
    sys.exit(main())
