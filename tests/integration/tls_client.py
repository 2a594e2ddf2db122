#!/usr/bin/env python3
"""tls_client.py: NVMe/TCP ICReq over TLS 1.3 with a PSK, through openssl s_client.

  tls_client.py PORT KEY HOSTNQN SUBNQN [--identity-version 0|1]
                [--kdf compat|rfc8446] [--wrong]

Derives the PSK identity and TLS PSK from the configured key KEY
("NVMeTLSkey-1:XX:<base64>:") the way the NVMe/TCP spec (rfc8446) or
nvme-cli 2.13 (compat, the default) do, runs `openssl s_client -tls1_3 -psk`
against 127.0.0.1:PORT, sends an ICReq and waits for the ICResp.  --wrong
flips a bit of the TLS PSK.  Exit 0: a well-formed ICResp came back; 1: none.
"""
import argparse
import base64
import hashlib
import hmac
import os
import select
import struct
import subprocess
import sys
import zlib

HASHES = {1: hashlib.sha256, 2: hashlib.sha384}


def parse_key(text):
    head, hh, b64, tail = text.split(":")
    raw = base64.b64decode(b64)
    key, crc = raw[:-4], raw[-4:]
    if head != "NVMeTLSkey-1" or tail or struct.pack("<I", zlib.crc32(key)) != crc:
        raise ValueError("bad key")
    return int(hh), key


def hkdf(h, ikm, info, length):
    prk = hmac.new(b"\0" * h().digest_size, ikm, h).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), h).digest()
        out, i = out + t, i + 1
    return out[:length]


def info(kdf, length, label, ctx):
    label = b"tls13 " + label
    if kdf == "compat":
        return struct.pack("<H", length) + label + ctx
    return struct.pack(">H", length) + bytes([len(label)]) + label + bytes([len(ctx)]) + ctx


def derive(text, hostnqn, subnqn, version, kdf):
    xx, key = parse_key(text)
    hh = xx or (2 if len(key) == 48 else 1)
    h = HASHES[hh]
    retained = key if xx == 0 else hkdf(HASHES[xx], key, info(
        kdf, len(key), b"HostNQN", hostnqn.encode()), len(key))
    if version == 0:
        identity = f"NVMe0R{hh:02d} {hostnqn} {subnqn}"
        ctx = identity.encode()
    else:
        msg = f"{hostnqn} {subnqn} NVMe-over-Fabrics".encode()
        digest = base64.b64encode(hmac.new(retained, msg, h).digest()).decode()
        identity = f"NVMe1R{hh:02d} {hostnqn} {subnqn} {digest}"
        ctx = f"{hh:02d} {digest}".encode()
    length = len(key) if kdf == "compat" else h().digest_size
    return hh, identity, hkdf(h, retained, info(kdf, length, b"nvme-tls-psk", ctx), length)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("key")
    ap.add_argument("hostnqn")
    ap.add_argument("subnqn")
    ap.add_argument("--identity-version", type=int, default=0)
    ap.add_argument("--kdf", default="compat")
    ap.add_argument("--wrong", action="store_true")
    a = ap.parse_args()
    hh, identity, psk = derive(a.key, a.hostnqn, a.subnqn, a.identity_version, a.kdf)
    if a.wrong:
        psk = bytes([psk[0] ^ 1]) + psk[1:]
    suite = "TLS_AES_256_GCM_SHA384" if hh == 2 else "TLS_AES_128_GCM_SHA256"
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{a.port}",
                          "-tls1_3", "-ciphersuites", suite, "-psk", psk.hex(),
                          "-psk_identity", identity, "-quiet", "-ign_eof"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    icreq = struct.pack("<BBBBIHBBI", 0, 0, 128, 0, 128, 0, 0, 0, 0).ljust(128, b"\0")
    resp = b""
    try:
        p.stdin.write(icreq)
        p.stdin.flush()
        while len(resp) < 128 and select.select([p.stdout], [], [], 10)[0]:
            chunk = os.read(p.stdout.fileno(), 128 - len(resp))
            if not chunk:
                break
            resp += chunk
    except BrokenPipeError:
        pass
    finally:
        p.kill()
        err = p.communicate()[1].decode(errors="replace").strip()
    if len(resp) == 128 and resp[0] == 0x01 and resp[2] == 128:
        print(f"ICResp over TLS ({suite}, identity {identity.split()[0]})")
        return 0
    print(f"no ICResp ({len(resp)} bytes); openssl: {err[-200:]}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
