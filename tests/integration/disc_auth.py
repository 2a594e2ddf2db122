#!/usr/bin/env python3
"""disc_auth.py CASE --port N [options]: DH-HMAC-CHAP on nvmfd's discovery
controller, from a host written with nvmf_client.py.  Run by disc-auth.sh.

Cases:
  open      an unlisted host discovers without authenticating; a listed
            host with a key gets AUTHREQ.ATR and nothing works before it
            authenticates (unidirectional with SHA-256 and the NULL group,
            and bidirectional over ffdhe2048); a wrong key and no
            controller key for a bidirectional request end in Failure1 and
            the association's close; a host that never authenticates
            reads no log.
  rotate    an authenticated association re-authenticates after
            nvmfctl set-host gave the host a new key (--new-key), on the
            same connection; the old key then fails on a new one.
  auth      one association authenticates with --key (and --ctrl-key when
            given) and reads the log.
  plain     --host discovers without being asked to authenticate.
  refused   the Connect of --host to the discovery NQN is refused
            (Connect Invalid Host).
  fails     --key does not authenticate --host.

Prints "ok - NAME" or "not ok - NAME: DETAIL" per check; exit 1 if any
failed.
"""
import argparse
import os
import struct
import subprocess
import sys

sys.dont_write_bytecode = True     # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmf_client as nc                                    # noqa: E402

DISC = nc.DISCOVERY_NQN
SC_CONNECT_INVALID_HOST = 0x84      # SCT 1
failed = 0


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def case(name, fn, *args):
    global failed
    try:
        detail = fn(*args)
        print(f"ok - {name}" + (f": {detail}" if detail else ""))
    except (Fail, nc.NvmfError, OSError) as e:
        failed += 1
        print(f"not ok - {name}: {type(e).__name__}: {e}")


def connect(env, hostnqn, atr):
    """An admin queue on the discovery NQN, not yet enabled."""
    h = nc.Host(env.addr, env.port, hostnqn=hostnqn)
    h.icreq()
    cpl = h.connect(DISC, kato=10000)
    check(cpl.ok, f"Connect: {cpl}")
    check(bool(cpl.dw0 & nc.CONNECT_AUTHREQ_ATR) == atr,
          f"Connect DW0 {cpl.dw0:#x}: AUTHREQ.ATR should be {int(atr)}")
    return h


def log_records(h):
    """The discovery log's records, after checking it lists --subnqn."""
    cpl = h.get_log_page(nc.LID_DISCOVERY, length=4096)
    check(cpl.ok, f"Get Log Page (discovery): {cpl}")
    numrec = struct.unpack_from("<Q", cpl.data, 8)[0]
    check(env.subnqn.encode() in cpl.data,
          f"the log ({numrec} records) does not list {env.subnqn}")
    return numrec


def refused_unauthenticated(h):
    for what, cpl in (("Property Get CAP", h.prop_get(nc.REG_CAP)),
                      ("Identify", h.identify(1)),
                      ("Get Log Page", h.get_log_page(nc.LID_DISCOVERY))):
        check(cpl.sct == 1 and cpl.sc == nc.SC_AUTH_REQUIRED and cpl.dnr,
              f"{what} before authenticating: {cpl}, not "
              f"Authentication Required")


def failure1(h, secret, tid=1, ctrl_secret=None, groups=(nc.DH_NULL,)):
    """The exchange must end in Failure1 (reason failed) and the close."""
    ch = h.auth_challenge(tid, groups=groups)
    reply, _ = h.auth_answer(ch, *secret, ctrl_secret=ctrl_secret)
    check(h.auth_send(reply).ok, "Authentication Send (Reply) failed")
    m = h.auth_message()
    check(m.kind == "Failure1" and m.reason == nc.AUTH_FAIL_FAILED,
          f"{m} for a bad Reply, not Failure1 reason 0x01")
    h.expect_closed()


def c_open_unlisted(hostnqn=None):
    with nc.Host(env.addr, env.port, hostnqn=hostnqn or env.other) as h:
        h.icreq()
        cpl = h.connect(DISC)
        check(cpl.ok, f"Connect: {cpl}")
        check(not cpl.dw0 & nc.CONNECT_AUTHREQ_ATR, "ATR for a host "
              "without discovery keys")
        h.enable()
        return f"{log_records(h)} records, no authentication"


def c_open_unidirectional():
    with connect(env, env.host, True) as h:
        refused_unauthenticated(h)
        ch = h.authenticate(*env.key, hashes=(nc.SHA256,))
        check(ch.hashid == nc.SHA256 and ch.dhgid == nc.DH_NULL,
              f"hash {ch.hashid}, group {ch.dhgid}")
        h.enable()
        return f"sha256/null, then {log_records(h)} records"


def c_open_bidirectional():
    with connect(env, env.host, True) as h:
        ch = h.authenticate(*env.key, ctrl_secret=env.ctrl_key,
                            hashes=(nc.SHA512,), groups=(nc.FFDHE2048,))
        check(ch.dhgid == nc.FFDHE2048, f"group {ch.dhgid}")
        h.enable()
        return f"sha512/ffdhe2048, R2 checked, {log_records(h)} records"


def c_open_wrong_key():
    with connect(env, env.host, True) as h:
        failure1(h, (os.urandom(32), 0))


def c_open_no_ctrl_key():
    # The host with only a host key asks the controller to prove itself.
    with connect(env, env.uni, True) as h:
        failure1(h, env.key, ctrl_secret=env.ctrl_key)


def c_open_no_key():
    with connect(env, env.host, True) as h:
        refused_unauthenticated(h)
        refused_unauthenticated(h)      # still, and still connected


def c_rotate():
    with connect(env, env.host, True) as h:
        h.authenticate(*env.key)
        h.enable()
        out = subprocess.run(env.ctl + ["set-host", DISC, env.host,
                                        "--dhchap-secret", env.new_key_text],
                             capture_output=True, text=True, timeout=30)
        check(out.returncode == 0, f"nvmfctl set-host: {out.stderr.strip()}")
        h.authenticate(*env.new_key, tid=2)
        n = log_records(h)
    with connect(env, env.host, True) as h:
        failure1(h, env.key)
    return f"re-authenticated with the new key ({n} records); the old " \
        "one now fails"


def c_plain():
    return c_open_unlisted(env.host)


def c_auth():
    with connect(env, env.host, True) as h:
        h.authenticate(*env.key, ctrl_secret=env.ctrl_key)
        h.enable()
        return f"{log_records(h)} records"


def c_fails():
    with connect(env, env.host, True) as h:
        failure1(h, env.key)


def c_refused():
    with nc.Host(env.addr, env.port, hostnqn=env.host) as h:
        h.icreq()
        cpl = h.connect(DISC)
        check(cpl.sct == 1 and cpl.sc == SC_CONNECT_INVALID_HOST,
              f"Connect of an unlisted host: {cpl}, not Invalid Host")


CASES = {
    "open": [("an unlisted host discovers", c_open_unlisted),
             ("listed host: refused, then sha256/null", c_open_unidirectional),
             ("listed host: bidirectional", c_open_bidirectional),
             ("listed host: a wrong key", c_open_wrong_key),
             ("no controller key for a bidirectional request",
              c_open_no_ctrl_key),
             ("listed host that never authenticates", c_open_no_key)],
    "rotate": [("key rotated with nvmfctl set-host", c_rotate)],
    "auth": [("authenticates", c_auth)],
    "plain": [("discovers without authenticating", c_plain)],
    "fails": [("the key fails", c_fails)],
    "refused": [("Connect refused", c_refused)],
}

p = argparse.ArgumentParser()
p.add_argument("case", choices=CASES)
p.add_argument("--addr", default="127.0.0.1")
p.add_argument("--port", type=int, required=True)
p.add_argument("--subnqn", required=True, help="a subsystem the log lists")
p.add_argument("--host", required=True, help="the listed host (or, for "
               "refused, the one to refuse)")
p.add_argument("--uni", help="a host listed with a host key only")
p.add_argument("--other", help="a host not listed")
p.add_argument("--key", help="DHHC-1 host key")
p.add_argument("--ctrl-key", help="DHHC-1 controller key")
p.add_argument("--new-key", help="rotate: the key set-host gives")
p.add_argument("--ctl", help="rotate: the nvmfctl command, space-separated")
env = p.parse_args()
env.key = nc.dhchap_parse(env.key) if env.key else None
env.ctrl_key = nc.dhchap_parse(env.ctrl_key) if env.ctrl_key else None
env.new_key_text = env.new_key
env.new_key = nc.dhchap_parse(env.new_key) if env.new_key else None
env.ctl = env.ctl.split() if env.ctl else None
for name, fn in CASES[env.case]:
    case(name, fn)
sys.exit(1 if failed else 0)
