#!/bin/sh
# nbd-ext.sh: the NBD protocol beyond the basics, through nvmfd's host role.
# One nvmfd is both the target (a writable and a read-only RAM namespace)
# and the host that connects to it and exports them over NBD.  Checked:
# metadata contexts and block status with nbdinfo (--list, --map, the
# context list) and libnbd's Python binding (nbdsh), FAST_ZERO, CACHE,
# DF, CAN_MULTI_CONN (two connections, a flush on one covering a write on
# the other), NVMe errors as NBD errors (injected on the target),
# extended headers and the option sequences a server must refuse
# (nbd_ext_checks.py, a raw client); nbdcopy and qemu-img compare of a
# random image.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/nbd-ext.sh
# Exit status: 0 pass, 77 skip (a tool missing, no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-12.io.nvmfd.test:nbd-ext

. "$here/lib.sh"
need_nvmfd 77
need_python3
for t in nbdinfo nbdcopy qemu-img timeout; do
	command -v $t >/dev/null 2>&1 && continue
	say "SKIP: $t is not installed (apt-get install libnbd-bin qemu-utils)"
	exit 77
done
need_nbd_python
test_tmpdir nbd-ext 60 || exit 1

T0=$(date +%s)
say() { echo "nbd-ext: [$(($(date +%s) - T0))s] $*"; }
pass() { say "ok: $*"; }

# shellcheck disable=SC2317  # called by daemon_start_or_skip
setup() {	# PORT: the target there
	nbd_self_config "$1" "$NQN" "{nsid: 1, backend: ram, size: 16M}" \
	    "{nsid: 2, backend: ram, size: 1M, readonly: true}"
}
daemon_start_or_skip setup "24700 24701 24702 24703"
say "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port"

ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }
json() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }

ctl connect -t tcp -a 127.0.0.1 -s "$daemon_port" -n "$NQN" -i 2 \
    >/dev/null || fail "connect"
host_wait_state live 10 || { fail "not live in 10 s"; test_finish; }
E1="$NQN/1"
E2="$NQN/2"
U1="nbd+unix:///$E1?socket=$tmp/nbd.sock"
pass "connected to itself; exports $E1 and $E2"

# --------------------------------------------------------------- raw client
timeout 60 python3 "$here/nbd_ext_checks.py" "$tmp/nbd.sock" "$E1" "$E2" \
    >"$tmp/checks.out" 2>&1
rc=$?
sed 's/^/  /' "$tmp/checks.out"
[ $rc = 0 ] && pass "nbd_ext_checks.py" || fail "nbd_ext_checks.py (exit $rc)"

# ------------------------------------------------------------------ nbdinfo
timeout 20 nbdinfo --list --json "nbd+unix:///?socket=$tmp/nbd.sock" \
    >"$tmp/list.json" 2>&1 || fail "nbdinfo --list: $(cat "$tmp/list.json")"
[ "$(json '[e["contexts"] for e in j["exports"]
    if e["export-name"] == "'"$E1"'"][0]' <"$tmp/list.json")" = \
    "['base:allocation']" ] &&
    pass "nbdinfo --list: contexts [base:allocation]" ||
    fail "nbdinfo --list: contexts: $(cat "$tmp/list.json")"
timeout 20 nbdinfo --json "$U1" >"$tmp/info.json" || fail "nbdinfo $U1"
[ "$(json '[k for k in ("can_multi_conn", "can_fast_zero", "can_df",
    "can_cache", "can_zero", "can_trim") if j["exports"][0][k] is not True],
    j["exports"][0]["block_size_minimum"],
    j["exports"][0]["block_size_preferred"]' <"$tmp/info.json")" = \
    "[] 512 4096" ] &&
    pass "nbdinfo: multi-conn, fast zero, DF, cache, zero, trim; blocks 512/4096" ||
    fail "nbdinfo: flags or block sizes: $(cat "$tmp/info.json")"
timeout 20 nbdinfo --map "$U1" >"$tmp/map.txt" 2>&1 || fail "nbdinfo --map"
[ "$(tr -s ' \t' ' ' <"$tmp/map.txt" | sed 's/^ //')" = \
    "0 16777216 0 data" ] &&
    pass "nbdinfo --map: one data extent over 16 MiB" ||
    fail "nbdinfo --map: $(cat "$tmp/map.txt")"

# ------------------------------------------------------------------- libnbd
cat >"$tmp/libnbd.py" <<'EOF'
import sys
import nbd

uri = sys.argv[1]
h = nbd.NBD()
h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.connect_uri(uri)
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION), "no base:allocation"
assert h.get_structured_replies_negotiated(), "no structured replies"
assert h.can_multi_conn() and h.can_fast_zero() and h.can_df(), "flags"
size = h.get_size()
seen = []
h.block_status(size, 0,
               lambda ctx, off, ents, err: seen.append((ctx, off, ents)))
assert seen == [(nbd.CONTEXT_BASE_ALLOCATION, 0, [size, 0])], seen
h.pwrite(b"\x5a" * 65536, 1 << 20, nbd.CMD_FLAG_FUA)
h.zero(32768, 1 << 20, nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_NO_HOLE)
data = h.pread(65536, 1 << 20)
assert data == bytes(32768) + b"\x5a" * 32768, "zero"
h.cache(65536, 0)
# CAN_MULTI_CONN: a write on one connection, the flush on another.
g = nbd.NBD()
g.connect_uri(uri)
h.pwrite(b"\xc3" * 4096, 2 << 20)
g.flush()
assert g.pread(4096, 2 << 20) == b"\xc3" * 4096, "second connection"
g.shutdown()
h.shutdown()
print("libnbd: block status, FAST_ZERO, CACHE, a flush across connections")
EOF
timeout 60 "$NBDPY" "$tmp/libnbd.py" "$U1" >"$tmp/libnbd.out" 2>&1 &&
    pass "$(cat "$tmp/libnbd.out")" ||
    fail "libnbd: $(cat "$tmp/libnbd.out")"

# ------------------------------------- NVMe errors as NBD errors, end to end
# The target fails the next write, then the next read (one at a time).
PYTHONPATH=$here timeout 30 python3 - "$tmp/nbd.sock" "$E1" "$tmp/nvmfctl" \
    "$tmp/ctl.sock" "$NQN" >"$tmp/errors.out" 2>&1 <<'EOF'
import subprocess
import sys
from nbd_client import Client, CMD_READ, CMD_WRITE
sock, export, nvmfctl, ctl, nqn = sys.argv[1:6]


def inject(op, err):
    subprocess.run([nvmfctl, "-s", ctl, "inject-error", nqn, "1", "--op", op,
                    "--error", err], check=True, stdout=subprocess.DEVNULL)


c = Client(path=sock)
c.handshake()
c.structured_reply()
c.go(export)
inject("write", "enospc")
w = c.cmd(CMD_WRITE, 0, 512, 0, b"e" * 512)
inject("read", "eio")
print(w, c.cmd(CMD_READ, 0, 512), c.cmd(CMD_READ, 0, 512))
EOF
[ "$(cat "$tmp/errors.out")" = "28 5 0" ] &&
    pass "the target's Capacity Exceeded is ENOSPC, its read error EIO" ||
    fail "NVMe errors through NBD: $(cat "$tmp/errors.out")"

# ------------------------------------------------ nbdcopy and qemu-img
head -c 16777216 /dev/urandom >"$tmp/rand.img"
timeout 60 nbdcopy "$tmp/rand.img" "$U1" || fail "nbdcopy in"
timeout 60 nbdcopy "$U1" "$tmp/out.img" || fail "nbdcopy out"
cmp -s "$tmp/rand.img" "$tmp/out.img" && pass "nbdcopy in and out: same" ||
    fail "nbdcopy: what came out differs"
timeout 60 qemu-img compare -f raw -F raw "$tmp/rand.img" "$U1" \
    >/dev/null && pass "qemu-img compare through nbd+unix://" ||
    fail "qemu-img compare"

kill -0 "$daemon_pid" || fail "the daemon died"
ctl disconnect-all >/dev/null || fail "disconnect-all"
test_finish
