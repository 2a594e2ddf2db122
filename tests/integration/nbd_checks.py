"""nbd_checks: what nbd.sh asks of nvmfd's NBD server through a raw client.

    python3 nbd_checks.py SOCKET EXPORT RO-EXPORT BACKING-FILE

EXPORT is a writable export whose namespace lives in BACKING-FILE on the
target (offsets equal); RO-EXPORT is read-only.  Prints "ok: ..." or
"FAIL: ..." per check; exit status 1 if any failed.
"""
import os
import socket
import struct
import sys

from nbd_client import (Checks, Client, serving, Closed, OptError,
                        CMD_READ, CMD_WRITE,
                        CMD_TRIM, CMD_WRITE_ZEROES, CMD_FLUSH, CMD_CACHE,
                        CMD_DISC, FLAG_FUA, FLAG_NO_HOLE, FLAG_READ_ONLY,
                        INFO_BLOCK_SIZE, INFO_NAME, OPT_INFO, OPT_GO,
                        OPT_EXPORT_NAME,
                        OPT_LIST_META_CONTEXT, REP_ERR_UNSUP,
                        REP_ERR_UNKNOWN, REP_ERR_TOO_BIG, REP_ERR_INVALID,
                        EPERM, EINVAL, ENOSPC)

sock, export, ro_export, backing = sys.argv[1:5]
check = Checks()


def opened(name=export, structured=True):
    c = Client(path=sock)
    c.handshake()
    if structured:
        c.structured_reply()
    size, flags, info = c.go(name, [INFO_BLOCK_SIZE])
    return c, size, flags, info


def file_bytes(off, n):
    with open(backing, "rb") as f:
        f.seek(off)
        return f.read(n)


# ------------------------------------------------------------- handshake
c = Client(path=sock)
c.handshake()
names = c.list()
check(export in names and ro_export in names, "LIST names both exports")
size, flags, info = c.go(export, [INFO_BLOCK_SIZE, INFO_NAME], code=OPT_INFO)
check(info.get("block_size", (0,))[0] == 512 and info["block_size"][2] > 0,
      "INFO: block sizes %s" % (info.get("block_size"),))
check(info.get("name") == export, "INFO: the name")
c.opt(OPT_LIST_META_CONTEXT, struct.pack(">II", 0, 0))
_, rtype, _ = c.reply()
check(rtype == REP_ERR_INVALID,
      "META_CONTEXT before structured replies: NBD_REP_ERR_INVALID")
c.opt(4242)
_, rtype, _ = c.reply()
check(rtype == REP_ERR_UNSUP, "unknown option: NBD_REP_ERR_UNSUP")
try:
    c.go("no-such-export")
    check(False, "GO unknown export")
except OptError as e:
    check(e.rep == REP_ERR_UNKNOWN, "GO unknown export: NBD_REP_ERR_UNKNOWN")
try:
    c.go("x" * 300)
    check(False, "GO name too long")
except OptError as e:
    check(e.rep == REP_ERR_TOO_BIG, "GO name too long: NBD_REP_ERR_TOO_BIG")
# GO whose info count runs past its data
c.opt(OPT_GO, struct.pack(">I", 1) + b"a" + struct.pack(">H", 9))
_, rtype, _ = c.reply()
check(rtype == REP_ERR_INVALID, "GO with a lying count: NBD_REP_ERR_INVALID")
# an option longer than the limit: refused, its data skipped
c.opt(4243, b"z" * 20000)
_, rtype, _ = c.reply()
check(rtype == REP_ERR_TOO_BIG, "option of 20000 bytes: NBD_REP_ERR_TOO_BIG")
names = c.list()
check(export in names, "the handshake goes on after the long option")
c.close()

c = Client(path=sock)
c.handshake()
c.send(struct.pack(">QII", 0x1234, 7, 0))
check(c.is_closed(), "bad option magic: connection closed")
c = Client(path=sock)
c.handshake()
c.opt(4244, length=1 << 30)
_, rtype, _ = c.reply()
check(rtype == REP_ERR_TOO_BIG and c.is_closed(),
      "option of 1 GiB: NBD_REP_ERR_TOO_BIG, then closed")
c = Client(path=sock)
c.recv(18)
c.send(struct.pack(">I", 0x80))
check(c.is_closed(), "unknown client flags: connection closed")
c = Client(path=sock)
c.handshake()
c.opt(OPT_EXPORT_NAME, b"n" * 300)
check(c.is_closed(), "EXPORT_NAME of 300 bytes: connection closed")
check(serving(sock, export), "still serving after bad handshakes")

# ---------------------------------------------------------- transmission
for structured in (False, True):
    c, size, flags, info = opened(structured=structured)
    kind = "structured" if structured else "simple"
    pat = bytes(range(256)) * 16
    c.write(4096, pat, FLAG_FUA)
    check(c.read(4096, 4096) == pat, "%s: write then read back" % kind)
    check(c.cmd(CMD_READ, 100, 512) == EINVAL, "%s: unaligned read: EINVAL"
          % kind)
    check(c.cmd(CMD_READ, size, 512) == EINVAL,
          "%s: read beyond the end: EINVAL" % kind)
    check(c.cmd(CMD_WRITE, size - 512, 1024, payload=b"q" * 1024) == ENOSPC,
          "%s: write beyond the end: ENOSPC" % kind)
    big = info["block_size"][2] + 512
    check(c.cmd(CMD_WRITE, 0, big, payload=b"w" * big) == EINVAL,
          "%s: write over the maximum block size: EINVAL" % kind)
    check(c.read(4096, 4096) == pat,
          "%s: the refused write's payload was skipped" % kind)
    check(c.cmd(CMD_FLUSH, 0, 0) == 0, "%s: flush" % kind)
    check(c.cmd(CMD_CACHE, 0, 4096) == 0, "%s: cache" % kind)
    check(c.cmd(77, 0, 512) == EINVAL, "%s: unknown command: EINVAL" % kind)
    c.request(CMD_DISC, 0, 0)
    check(c.is_closed(), "%s: DISC closes" % kind)

# many requests in flight before any reply is read: back-pressure, no loss
c, size, flags, info = opened()
n = 200
blk = b"".join(struct.pack(">Q", i) * 64 for i in range(n))
for i in range(n):
    c.request(CMD_WRITE, 1 << 20 | i * 512, 512,
              payload=blk[i * 512:(i + 1) * 512])
errs = [c.response()[0] for i in range(n)]
check(errs == [0] * n, "%d writes sent before any reply read" % n)
check(c.read(1 << 20, n * 512) == blk, "and all of them read back")

# TRIM and WRITE_ZEROES reach the target's backing file
c.write(2 << 20, b"\xab" * 65536)
c.cmd(CMD_FLUSH, 0, 0)
check(file_bytes(2 << 20, 65536) == b"\xab" * 65536,
      "a write is in the target's file")
check(c.cmd(CMD_WRITE_ZEROES, 2 << 20, 32768, FLAG_NO_HOLE) == 0,
      "WRITE_ZEROES")
check(file_bytes(2 << 20, 32768) == bytes(32768) and
      file_bytes((2 << 20) + 32768, 4) == b"\xab" * 4,
      "WRITE_ZEROES: zeroes in the target's file, and only there")
check(c.cmd(CMD_TRIM, (2 << 20) + 32768, 32768) == 0, "TRIM")
check(file_bytes((2 << 20) + 32768, 32768) == bytes(32768),
      "TRIM: the range reads as zeroes in the target's file")
check(c.read(2 << 20, 65536) == bytes(65536), "and through NBD")
c.request(77, 0, 0, magic=0x11223344)
check(c.is_closed(), "bad request magic: connection closed")

# read-only export
c, size, flags, info = opened(ro_export)
check(flags & FLAG_READ_ONLY, "read-only export flagged read-only")
check(c.cmd(CMD_WRITE, 0, 512, payload=b"r" * 512) == EPERM,
      "write to a read-only export: EPERM")
check(c.cmd(CMD_TRIM, 0, 512) in (EPERM, EINVAL),
      "trim on a read-only export refused")
check(len(c.read(0, 512)) == 512, "read-only export reads")
c.close()

# a client that sends and never reads: bounded, and others still served
c, size, flags, info = opened()
c.s.setblocking(False)
sent = 0
try:
    for i in range(20000):
        c.send(struct.pack(">IHHQQI", 0x25609513, 0, CMD_READ, i, 0, 65536))
        sent += 1
except (BlockingIOError, socket.timeout):
    pass
check(sent < 20000, "a client that never reads is pushed back (%d "
      "requests taken)" % sent)
check(serving(sock, export), "others are still served meanwhile")
c.close()
check(serving(sock, export), "still serving at the end")
check.exit()
