"""nbd_ext_checks: the NBD extensions nbd-ext.sh asks of nvmfd, raw.

    python3 nbd_ext_checks.py SOCKET EXPORT RO-EXPORT

Metadata contexts (base:allocation) and BLOCK_STATUS, extended headers
(64-bit lengths), WRITE_ZEROES with FAST_ZERO, DF, and the option
sequences a server must refuse.  EXPORT is writable and at least 1 MiB,
RO-EXPORT read-only.  Prints "ok: ..." or "FAIL: ..." per check; exit
status 1 if any failed.
"""
import struct
import sys

from nbd_client import (Checks, Client, serving, OptError, CMD_READ,
                        CMD_WRITE, CMD_TRIM,
                        CMD_WRITE_ZEROES, CMD_BLOCK_STATUS, CMD_CACHE,
                        CMD_FLUSH, FLAG_FUA, FLAG_NO_HOLE, FLAG_DF,
                        FLAG_REQ_ONE, FLAG_FAST_ZERO, FLAG_PAYLOAD_LEN,
                        FLAG_SEND_DF, FLAG_CAN_MULTI_CONN, FLAG_READ_ONLY,
                        FLAG_SEND_FAST_ZERO, INFO_BLOCK_SIZE,
                        OPT_INFO, OPT_LIST_META_CONTEXT,
                        OPT_STRUCTURED_REPLY,
                        OPT_EXTENDED_HEADERS, OPT_EXPORT_NAME,
                        REP_ERR_INVALID, REP_ERR_UNKNOWN,
                        REP_ERR_EXT_HEADER_REQD, EINVAL, ENOSPC, EPERM)

sock, export, ro_export = sys.argv[1:4]
ALLOC = "base:allocation"
check = Checks()


def refused(fn, rep):
    """True if fn() raised OptError rep."""
    try:
        fn()
    except OptError as e:
        return e.rep == rep
    return False


# ------------------------------------------------------- option haggling
c = Client(path=sock)
c.handshake()
check(refused(lambda: c.meta(export, [ALLOC]), REP_ERR_INVALID),
      "SET_META_CONTEXT before structured replies: NBD_REP_ERR_INVALID")
c.structured_reply()
check(refused(c.structured_reply, REP_ERR_INVALID),
      "STRUCTURED_REPLY twice: NBD_REP_ERR_INVALID")
check(c.meta(export, [], OPT_LIST_META_CONTEXT) == {ALLOC: 0},
      "LIST_META_CONTEXT, no query: base:allocation")
check(c.meta("", ["base:"], OPT_LIST_META_CONTEXT) == {ALLOC: 0},
      "LIST_META_CONTEXT \"base:\" on the default export: base:allocation")
check(c.meta(export, ["x-nvmfd:nothing"]) == {},
      "SET_META_CONTEXT of an unknown context: none selected")
check(refused(lambda: c.meta("no-such-export", [ALLOC]), REP_ERR_UNKNOWN),
      "SET_META_CONTEXT for an unknown export: NBD_REP_ERR_UNKNOWN")
size, flags, info = c.go(export, [], code=OPT_INFO)
check(info.get("block_size", (0,))[0] == 512,
      "INFO not asking for block sizes is told them: %s" %
      (info.get("block_size"),))
check(refused(lambda: c.meta(export, ["nocolon"]), REP_ERR_INVALID),
      "a query without a namespace: NBD_REP_ERR_INVALID")
# a query count that runs past the data
c.opt(10, struct.pack(">I", 0) + struct.pack(">I", 5) + b"\0\0\0\1x")
_, rtype, _ = c.reply()
check(rtype == REP_ERR_INVALID, "META_CONTEXT with a lying count: "
      "NBD_REP_ERR_INVALID")
ids = c.meta(export, [ALLOC])
check(list(ids) == [ALLOC] and ids[ALLOC] != 0,
      "SET_META_CONTEXT base:allocation: id %s" % ids.get(ALLOC))
size, flags, info = c.go(export, [INFO_BLOCK_SIZE])
check(flags & FLAG_SEND_DF and flags & FLAG_CAN_MULTI_CONN and
      flags & FLAG_SEND_FAST_ZERO,
      "transmission flags: DF, CAN_MULTI_CONN, FAST_ZERO (0x%x)" % flags)

# -------------------------------------------------- structured: status
err = c.cmd(CMD_BLOCK_STATUS, 0, size)
check(err == 0 and c.extents == [(ids[ALLOC], [(size, 0)])],
      "BLOCK_STATUS: the whole export, one data extent %s" % c.extents)
err = c.cmd(CMD_BLOCK_STATUS, 4096, 8192, FLAG_REQ_ONE)
check(err == 0 and c.extents == [(ids[ALLOC], [(8192, 0)])],
      "BLOCK_STATUS REQ_ONE over 8 KiB")
check(c.cmd(CMD_BLOCK_STATUS, size - 512, 1024) == EINVAL,
      "BLOCK_STATUS past the end: EINVAL")
check(c.cmd(CMD_BLOCK_STATUS, 0, 512, FLAG_FUA) == EINVAL,
      "BLOCK_STATUS with FUA: EINVAL")
pat = bytes(range(256)) * 16
c.write(8192, pat)
check(c.cmd(CMD_READ, 8192, 4096, FLAG_DF) == 0,
      "READ with DF: one chunk")
check(c.cmd(CMD_WRITE_ZEROES, 8192, 4096, FLAG_FAST_ZERO | FLAG_NO_HOLE)
      == 0 and c.read(8192, 4096) == bytes(4096),
      "WRITE_ZEROES FAST_ZERO|NO_HOLE: zeroes")
check(c.cmd(CMD_CACHE, 0, 65536) == 0, "CACHE")
c.close()



def status_refused(meta_export):
    """BLOCK_STATUS on EXPORT after contexts set for meta_export (or none)
    is refused."""
    c = Client(path=sock)
    c.handshake()
    c.structured_reply()
    if meta_export:
        c.meta(meta_export, [ALLOC])
    c.go(export)
    err = c.cmd(CMD_BLOCK_STATUS, 0, 4096)
    c.close()
    return err == EINVAL


check(status_refused(None), "BLOCK_STATUS without a context: EINVAL")
check(status_refused(ro_export),
      "a context set for another export does not carry over")

# ------------------------------------------------------ extended headers
c = Client(path=sock)
c.handshake()
c.extended_headers()
check(refused(c.extended_headers, REP_ERR_INVALID),
      "EXTENDED_HEADERS twice: NBD_REP_ERR_INVALID")
check(refused(c.structured_reply, REP_ERR_EXT_HEADER_REQD),
      "STRUCTURED_REPLY after extended headers: "
      "NBD_REP_ERR_EXT_HEADER_REQD")
c.opt(OPT_EXTENDED_HEADERS, b"x")
_, rtype, _ = c.reply()
check(rtype == REP_ERR_INVALID, "EXTENDED_HEADERS with data: "
      "NBD_REP_ERR_INVALID")
ids = c.meta(export, [ALLOC])
size, flags, info = c.go(export)
c.write(0, pat, FLAG_FUA)
check(c.read(0, 4096) == pat, "extended: write then read back")
err = c.cmd(CMD_BLOCK_STATUS, 0, size)
check(err == 0 and c.extents == [(ids[ALLOC], [(size, 0)])],
      "extended: BLOCK_STATUS_EXT, one 64-bit descriptor")
check(c.cmd(CMD_TRIM, 0, 1 << 33) == ENOSPC,
      "extended: an 8 GiB TRIM past the end: ENOSPC")
check(c.cmd(CMD_READ, 0, 1 << 32) == EINVAL,
      "extended: a 4 GiB READ: EINVAL, no 32-bit wrap")
check(c.cmd(CMD_WRITE_ZEROES, 0, size) == 0 and
      c.read(0, 4096) == bytes(4096),
      "extended: WRITE_ZEROES over the whole export")
check(c.cmd(CMD_WRITE, 4096, 512, FLAG_PAYLOAD_LEN, b"p" * 512) == 0 and
      c.read(4096, 512) == b"p" * 512, "extended: WRITE with PAYLOAD_LEN")
# a payload on a command that takes none: refused, and skipped
check(c.cmd(CMD_FLUSH, 0, 16, FLAG_PAYLOAD_LEN, b"z" * 16) == EINVAL,
      "extended: FLUSH with a payload: EINVAL")
check(c.read(4096, 512) == b"p" * 512,
      "extended: the refused payload was skipped")
c.request(CMD_READ, 0, 512, magic=0x25609513)
check(c.is_closed(), "extended: a compact request header closes")

c = Client(path=sock)
c.handshake()
c.extended_headers()
c.opt(OPT_EXPORT_NAME, export.encode())
check(c.is_closed(), "EXPORT_NAME after extended headers: closed")

# read-only, extended
c = Client(path=sock)
c.handshake()
c.extended_headers()
size, flags, info = c.go(ro_export)
check(flags & FLAG_READ_ONLY and not flags & FLAG_SEND_FAST_ZERO,
      "read-only export: READ_ONLY, no FAST_ZERO")
check(c.cmd(CMD_WRITE, 0, 512, 0, b"r" * 512) == EPERM,
      "read-only, extended: a write gets EPERM")
c.close()
check(serving(sock, export), "still serving at the end")
check.exit()
