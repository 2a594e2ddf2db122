"""nbd_client: a small NBD client for tests (Python 3, standard library only).

It speaks the fixed newstyle handshake, simple, structured or extended
(64-bit) headers, and base:allocation, correctly or on purpose not:

    c = Client(path="/tmp/nbd.sock")      # or Client(host=..., port=...)
    c.handshake()                          # greeting and client flags
    c.structured_reply()                   # optional (or c.extended_headers())
    c.set_meta(name, ["base:allocation"])  # {context name: id}
    size, flags, info = c.go("name", [INFO_BLOCK_SIZE])
    c.write(0, b"x" * 512); data = c.read(0, 512)
    err = c.cmd(CMD_TRIM, 0, 4096)         # the NBD error, 0 on success

Every receive has a timeout (Client.timeout seconds, 10 by default);
EOF raises Closed.
"""
import socket
import struct
import sys

NBDMAGIC = 0x4e42444d41474943
IHAVEOPT = 0x49484156454f5054
REP_MAGIC = 0x0003e889045565a9
REQUEST_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCTURED_MAGIC = 0x668e33ef
EXT_REQUEST_MAGIC = 0x21e41c71
EXT_REPLY_MAGIC = 0x6e8a278c

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST = 1, 2, 3
OPT_INFO, OPT_GO, OPT_STRUCTURED_REPLY = 6, 7, 8
OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT, OPT_EXTENDED_HEADERS = 9, 10, 11
REP_ACK, REP_SERVER, REP_INFO, REP_META_CONTEXT = 1, 2, 3, 4
REP_ERR_UNSUP = 0x80000001
REP_ERR_INVALID = 0x80000003
REP_ERR_UNKNOWN = 0x80000006
REP_ERR_TOO_BIG = 0x80000009
REP_ERR_EXT_HEADER_REQD = 0x8000000a
INFO_EXPORT, INFO_NAME, INFO_BLOCK_SIZE = 0, 1, 3

CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH = 0, 1, 2, 3
CMD_TRIM, CMD_CACHE, CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = 4, 5, 6, 7
FLAG_FUA, FLAG_NO_HOLE, FLAG_DF, FLAG_REQ_ONE = 1, 2, 4, 8
FLAG_FAST_ZERO, FLAG_PAYLOAD_LEN = 16, 32
FLAG_READ_ONLY, FLAG_SEND_DF, FLAG_CAN_MULTI_CONN = 2, 0x80, 0x100
FLAG_SEND_FAST_ZERO = 0x800
REPLY_BLOCK_STATUS, REPLY_BLOCK_STATUS_EXT = 5, 6
EPERM, EIO, EINVAL, ENOSPC = 1, 5, 22, 28


class Checks:
    """Prints "ok: ..." or "FAIL: ..." per check; exit() ends the script
    with status 1 if any failed."""

    def __init__(self):
        self.failed = False

    def __call__(self, cond, what):
        print(("ok: " if cond else "FAIL: ") + what, flush=True)
        if not cond:
            self.failed = True

    def exit(self):
        sys.exit(1 if self.failed else 0)


def serving(path, export):
    """The server at path still answers a new client and lists export."""
    c = Client(path=path)
    c.handshake()
    names = c.list()
    c.close()
    return export in names


class Closed(Exception):
    pass


class OptError(Exception):
    def __init__(self, rep):
        super().__init__("option error 0x%x" % rep)
        self.rep = rep


class Client:
    def __init__(self, path=None, host=None, port=None, timeout=10):
        if path:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.settimeout(timeout)
            self.s.connect(path)
        else:
            self.s = socket.create_connection((host, port), timeout)
        self.structured = False
        self.extended = False
        self.cookie = 0
        self.extents = []       # (context id, [(length, flags)]) last reply

    def close(self):
        self.s.close()

    def send(self, b):
        self.s.sendall(b)

    def recv(self, n):
        out = b""
        while len(out) < n:
            b = self.s.recv(n - len(out))
            if not b:
                raise Closed()
            out += b
        return out

    def is_closed(self):
        """True once the server has closed: EOF within the timeout."""
        try:
            return self.s.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    # ------------------------------------------------------- handshake
    def handshake(self, flags=3):
        magic, opt, hflags = struct.unpack(">QQH", self.recv(18))
        assert magic == NBDMAGIC and opt == IHAVEOPT, "bad greeting"
        self.send(struct.pack(">I", flags))
        return hflags

    def opt(self, code, data=b"", length=None):
        n = len(data) if length is None else length
        self.send(struct.pack(">QII", IHAVEOPT, code, n) + data)

    def reply(self):
        magic, opt, rtype, n = struct.unpack(">QIII", self.recv(20))
        assert magic == REP_MAGIC, "bad option reply magic"
        return opt, rtype, self.recv(n)

    def structured_reply(self):
        self.opt(OPT_STRUCTURED_REPLY)
        _, rtype, _ = self.reply()
        if rtype != REP_ACK:
            raise OptError(rtype)
        self.structured = True

    def extended_headers(self):
        self.opt(OPT_EXTENDED_HEADERS)
        _, rtype, _ = self.reply()
        if rtype != REP_ACK:
            raise OptError(rtype)
        self.structured = self.extended = True

    def meta(self, name, queries, code=OPT_SET_META_CONTEXT):
        """{context name: id} that LIST or SET gave for export name."""
        data = struct.pack(">I", len(name)) + name.encode()
        data += struct.pack(">I", len(queries))
        for q in queries:
            data += struct.pack(">I", len(q)) + q.encode()
        self.opt(code, data)
        out = {}
        while True:
            _, rtype, d = self.reply()
            if rtype == REP_ACK:
                return out
            if rtype != REP_META_CONTEXT:
                raise OptError(rtype)
            out[d[4:].decode()] = struct.unpack(">I", d[:4])[0]

    def list(self):
        self.opt(OPT_LIST)
        names = []
        while True:
            _, rtype, data = self.reply()
            if rtype == REP_ACK:
                return names
            if rtype != REP_SERVER:
                raise OptError(rtype)
            n = struct.unpack(">I", data[:4])[0]
            names.append(data[4:4 + n].decode())

    def go(self, name, infos=(), code=OPT_GO):
        nb = name.encode() if isinstance(name, str) else name
        data = struct.pack(">I", len(nb)) + nb + struct.pack(">H", len(infos))
        data += b"".join(struct.pack(">H", i) for i in infos)
        self.opt(code, data)
        size = flags = None
        info = {}
        while True:
            _, rtype, d = self.reply()
            if rtype == REP_ACK:
                return size, flags, info
            if rtype != REP_INFO:
                raise OptError(rtype)
            t = struct.unpack(">H", d[:2])[0]
            if t == INFO_EXPORT:
                size, flags = struct.unpack(">QH", d[2:12])
            elif t == INFO_BLOCK_SIZE:
                info["block_size"] = struct.unpack(">III", d[2:14])
            elif t == INFO_NAME:
                info["name"] = d[2:].decode()

    # ---------------------------------------------------- transmission
    def request(self, cmd, offset, length, flags=0, payload=b"",
                magic=None):
        self.cookie += 1
        if self.extended:
            hdr = struct.pack(">IHHQQQ", magic or EXT_REQUEST_MAGIC, flags,
                              cmd, self.cookie, offset, length)
        else:
            hdr = struct.pack(">IHHQQI", magic or REQUEST_MAGIC, flags, cmd,
                              self.cookie, offset, length)
        self.send(hdr + payload)
        return self.cookie

    def response(self, length=0):
        """(error, data) for the oldest request (no reordering here)."""
        magic = struct.unpack(">I", self.recv(4))[0]
        if magic == SIMPLE_MAGIC:
            err, _ = struct.unpack(">IQ", self.recv(12))
            return err, (self.recv(length) if err == 0 and length else b"")
        want = EXT_REPLY_MAGIC if self.extended else STRUCTURED_MAGIC
        assert magic == want, "bad reply magic 0x%x" % magic
        data, err = b"", 0
        self.extents = []
        while True:
            if self.extended:
                flags, rtype, _, _, n = struct.unpack(">HHQQQ",
                                                      self.recv(28))
            else:
                flags, rtype, _, n = struct.unpack(">HHQI", self.recv(16))
            body = self.recv(n)
            if rtype == 1:
                data += body[8:]
            elif rtype == REPLY_BLOCK_STATUS:
                ext = [struct.unpack(">II", body[i:i + 8])
                       for i in range(4, n, 8)]
                self.extents.append((struct.unpack(">I", body[:4])[0], ext))
            elif rtype == REPLY_BLOCK_STATUS_EXT:
                ctx, cnt = struct.unpack(">II", body[:8])
                ext = [struct.unpack(">QQ", body[i:i + 16])
                       for i in range(8, n, 16)]
                assert len(ext) == cnt, "descriptor count"
                self.extents.append((ctx, ext))
            elif rtype & 0x8000:
                err = struct.unpack(">I", body[:4])[0]
            if flags & 1:
                return err, data
            magic = struct.unpack(">I", self.recv(4))[0]

    def cmd(self, cmd, offset, length, flags=0, payload=b""):
        self.request(cmd, offset, length, flags, payload)
        return self.response(length if cmd == CMD_READ else 0)[0]

    def read(self, offset, length):
        self.request(CMD_READ, offset, length)
        err, data = self.response(length)
        if err:
            raise IOError(err, "NBD read error %d" % err)
        return data

    def write(self, offset, data, flags=0):
        err = self.cmd(CMD_WRITE, offset, len(data), flags, data)
        if err:
            raise IOError(err, "NBD write error %d" % err)
