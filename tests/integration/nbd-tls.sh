#!/bin/sh
# nbd-tls.sh: TLS on nvmfd's NBD exports (NBD_OPT_STARTTLS, TLS 1.3 with a
# PSK file of "identity:hexkey" lines, as qemu-nbd and nbdkit take it).
# One nvmfd is the target and the host; it connects to its two subsystems:
# one plainly (export NQN/1, TLS optional), the other with --nbd-tls
# required (export sec/1).  Real clients: nbdinfo (list, info; plain and TLS, Unix
# socket and TCP), nbdcopy in and out, qemu-img convert and compare with
# --object tls-creds-psk.  Refused: a plain client on the TLS-only export
# (hidden from its list, GO answered with NBD_REP_ERR_TLS_REQD, EXPORT_NAME
# closed), a wrong key, an unknown identity, a STARTTLS followed by no TLS
# (nbd_client.py).  Then again with host.nbd.tls: required, where every
# option but STARTTLS and ABORT needs TLS first.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/nbd-tls.sh
# Exit status: 0 pass, 77 skip (a tool missing, no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-12.io.nvmfd.test:nbd-tls
SNQN=nqn.2026-12.io.nvmfd.test:nbd-tls-sec

. "$here/lib.sh"
need_nvmfd 77
need_python3
for t in nbdinfo nbdcopy qemu-img timeout; do
	command -v $t >/dev/null 2>&1 && continue
	say "SKIP: $t is not installed (apt-get install libnbd-bin qemu-utils)"
	exit 77
done
if ! nbdinfo --help 2>&1 | grep -q -- --list ||
    ! nbdinfo --version 2>/dev/null | grep -q libnbd; then
	say "SKIP: this nbdinfo is not libnbd's"
	exit 77
fi
test_tmpdir nbd-tls 60 || exit 1

T0=$(date +%s)
say() { echo "nbd-tls: [$(($(date +%s) - T0))s] $*"; }
pass() { say "ok: $*"; }

# The keys: alice's, the same identity with another key, an unknown one.
# libnbd takes the PSK identity from the URI's user, else from LOGNAME.
hexkey() { python3 -c 'import os; print(os.urandom(32).hex())'; }
echo "alice:$(hexkey)" >"$tmp/keys.psk"
echo "alice:$(hexkey)" >"$tmp/wrong.psk"
echo "mallory:$(hexkey)" >"$tmp/mallory.psk"
mkdir "$tmp/qemu" && cp "$tmp/keys.psk" "$tmp/qemu/keys.psk"
chmod 600 "$tmp"/*.psk "$tmp/qemu/keys.psk"
LOGNAME=alice
export LOGNAME

MODE=optional
# shellcheck disable=SC2317  # called by daemon_start_or_skip
setup() {	# PORT: the target there, NBD over TCP on PORT+1
	port=$1
	cat >"$tmp/nvmfd.yaml" <<EOF
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: ram, size: 8M}
  - nqn: $SNQN
    namespaces:
      - {nsid: 1, backend: ram, size: 8M}
host:
  nbd:
    socket: $tmp/nbd.sock
    address: 127.0.0.1
    port: $(($1 + 1))
    tls: $MODE
    tls_psk_file: $tmp/keys.psk
EOF
}
daemon_start_or_skip setup "24814 24816 24818"
say "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port, NBD TCP on $((port + 1))"

ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }
json() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }
S="socket=$tmp/nbd.sock"
SEC=sec/1
PUB="$NQN/1"
tls_unix() {	# EXPORT [PSK-FILE]: its nbds+unix URI
	echo "nbds+unix://alice@/$1?$S&tls-psk-file=${2:-$tmp/keys.psk}"
}
TCP="nbds://alice@127.0.0.1:$((port + 1))"
nbd_connect() {	# both associations, then their exports
	ctl connect -t tcp -a 127.0.0.1 -s "$daemon_port" -n "$NQN" \
	    >/dev/null || fail "connect"
	ctl connect -t tcp -a 127.0.0.1 -s "$daemon_port" -n "$SNQN" \
	    --export-prefix sec --nbd-tls required >/dev/null ||
	    fail "connect --nbd-tls required"
	end=$(($(date +%s) + 20))
	while [ "$(date +%s)" -le $end ]; do
		[ "$(ctl list-host --json | json 'len(j["exports"])')" = 2 ] &&
		    return 0
		sleep 0.2
	done
	fail "no two exports in 20 s"
}
refused() {	# LOG-TEXT: the host's log has it
	grep -q "$1" "$tmp/nvmfd.log"
}

nbd_connect
ctl list-host --json >"$tmp/list.json"
[ "$(json '[(e["name"], e["tls"], e["uri_unix"].split(":")[0])
    for e in sorted(j["exports"], key=lambda e: e["name"])]' \
    <"$tmp/list.json")" = \
    "[('$PUB', 'optional', 'nbd+unix'), ('$SEC', 'required', 'nbds+unix')]" ] &&
    pass "list-host: $SEC tls required (nbds+unix://), $PUB optional" ||
    fail "list-host: $(cat "$tmp/list.json")"

# ----------------------------------------------------------- plain clients
timeout 20 nbdinfo --list "nbd+unix:///?$S" >"$tmp/plain.txt" 2>&1 ||
    fail "nbdinfo --list, plain: $(cat "$tmp/plain.txt")"
grep -q "export=\"$PUB\"" "$tmp/plain.txt" &&
    ! grep -q "export=\"$SEC\"" "$tmp/plain.txt" &&
    pass "plain nbdinfo --list: $PUB, not the TLS-only $SEC" ||
    fail "plain nbdinfo --list: $(cat "$tmp/plain.txt")"
timeout 20 nbdinfo "nbd+unix:///$SEC?$S" >"$tmp/plain1.txt" 2>&1 &&
    fail "a plain nbdinfo got the TLS-only export" ||
    pass "plain nbdinfo on $SEC: refused"
refused "option 7 refused: error 0x80000005" ||
    fail "no NBD_REP_ERR_TLS_REQD in the log"
timeout 20 nbdinfo --json "nbd+unix:///$PUB?$S" >"$tmp/pub.json" 2>&1 &&
    [ "$(json 'j["exports"][0]["export-size"]' <"$tmp/pub.json")" = 8388608 ] &&
    pass "plain nbdinfo on $PUB (TLS optional): 8 MiB" ||
    fail "plain nbdinfo $PUB: $(cat "$tmp/pub.json")"

# ------------------------------------------------------------- TLS clients
timeout 20 nbdinfo --list "$(tls_unix "")" >"$tmp/tls.txt" 2>&1 ||
    fail "nbdinfo --list, TLS: $(cat "$tmp/tls.txt")"
grep -q "export=\"$PUB\"" "$tmp/tls.txt" &&
    grep -q "export=\"$SEC\"" "$tmp/tls.txt" &&
    grep -q "with TLS" "$tmp/tls.txt" &&
    pass "TLS nbdinfo --list: both exports" ||
    fail "TLS nbdinfo --list: $(cat "$tmp/tls.txt")"
timeout 20 nbdinfo --json "$TCP/$SEC?tls-psk-file=$tmp/keys.psk" \
    >"$tmp/tcp.json" 2>&1 &&
    [ "$(json 'j["exports"][0]["export-size"]' <"$tmp/tcp.json")" = 8388608 ] &&
    pass "TLS nbdinfo over TCP: $SEC, 8 MiB" ||
    fail "TLS nbdinfo over TCP: $(cat "$tmp/tcp.json")"
refused "TLS TLS_AES_128_GCM_SHA256, PSK identity alice" &&
    pass "TLS 1.3 with AES-128-GCM and alice's PSK" ||
    fail "no TLS line in the log"

head -c 8388608 /dev/urandom >"$tmp/rand.img"
timeout 60 nbdcopy "$tmp/rand.img" "$(tls_unix "$SEC")" ||
    fail "nbdcopy in over TLS"
timeout 60 nbdcopy "$TCP/$SEC?tls-psk-file=$tmp/keys.psk" "$tmp/out.img" ||
    fail "nbdcopy out over TLS (TCP)"
cmp -s "$tmp/rand.img" "$tmp/out.img" &&
    pass "nbdcopy in (Unix socket) and out (TCP) over TLS: same" ||
    fail "nbdcopy over TLS: what came out differs"

Q="driver=nbd,server.type=unix,server.path=$tmp/nbd.sock,export=$SEC,tls-creds=tls0"
QOBJ="tls-creds-psk,id=tls0,endpoint=client,dir=$tmp/qemu,username=alice"
head -c 8388608 /dev/urandom >"$tmp/q.raw"
timeout 60 qemu-img convert -n --object "$QOBJ" -f raw "$tmp/q.raw" \
    --target-image-opts "$Q" >"$tmp/qemu.out" 2>&1 ||
    fail "qemu-img convert to $SEC: $(cat "$tmp/qemu.out")"
timeout 60 qemu-img compare --object "$QOBJ" --image-opts \
    "driver=raw,file.filename=$tmp/q.raw" "$Q" >"$tmp/qemu.out" 2>&1 &&
    pass "qemu-img convert and compare with tls-creds-psk" ||
    fail "qemu-img compare: $(cat "$tmp/qemu.out")"

# ---------------------------------------------------------------- refusals
timeout 20 nbdinfo "$(tls_unix "$SEC" "$tmp/wrong.psk")" >"$tmp/w.txt" 2>&1 &&
    fail "a wrong key got in" || pass "a wrong key: refused"
refused "nbd: unix: TLS handshake failed" ||
    fail "no failed handshake in the log"
timeout 20 nbdinfo "nbds+unix://mallory@/$SEC?$S&tls-psk-file=$tmp/mallory.psk" \
    >"$tmp/m.txt" 2>&1 &&
    fail "an unknown identity got in" || pass "an unknown identity: refused"
refused 'unix: TLS: unknown PSK identity "mallory"' ||
    fail "no unknown identity in the log"

PYTHONPATH=$here timeout 60 python3 - "$tmp/nbd.sock" "$SEC" "$PUB" \
    >"$tmp/raw.out" 2>&1 <<'EOF'
import sys
from nbd_client import Checks, Client, OPT_EXPORT_NAME, REP_ACK
sock, sec, pub = sys.argv[1:4]
STARTTLS, ERR_INVALID, ERR_TLS_REQD = 5, 0x80000003, 0x80000005
check = Checks()

c = Client(path=sock)
c.handshake()
check(sec not in c.list() and pub in c.list(), "LIST hides the TLS-only export")
try:
    c.go(sec)
    check(False, "GO on the TLS-only export")
except Exception as e:
    check(getattr(e, "rep", None) == ERR_TLS_REQD,
          "GO on it: NBD_REP_ERR_TLS_REQD")
c.opt(STARTTLS, b"xxxx")
check(c.reply()[1] == ERR_INVALID, "STARTTLS with data: NBD_REP_ERR_INVALID")
c.opt(OPT_EXPORT_NAME, sec.encode())
check(c.is_closed(), "EXPORT_NAME on it: closed")

c = Client(path=sock)
c.handshake()
c.opt(STARTTLS)
check(c.reply()[1] == REP_ACK, "STARTTLS: ACK")
c.send(b"GET / HTTP/1.0\r\n\r\n")
check(c.is_closed(), "no TLS after the ACK: closed")

c = Client(path=sock)
c.handshake()
c.send(b"IHAVEOPT\x00\x00\x00\x05\x00\x00\x00\x00\x16\x03\x01")
check(c.is_closed(), "bytes after STARTTLS before its ACK: closed")
check.exit()
EOF
rc=$?
sed 's/^/  /' "$tmp/raw.out"
[ $rc = 0 ] && pass "raw refusals (nbd_client.py)" || fail "raw refusals"
for l in "NBD_OPT_EXPORT_NAME: the export requires TLS; closing" \
    "data after NBD_OPT_STARTTLS before its reply; closing"; do
	refused "$l" || fail "no log line: $l"
done
timeout 20 nbdinfo --json "$(tls_unix "$SEC")" >/dev/null 2>&1 &&
    pass "still serving TLS after the refusals" || fail "not serving TLS"

# ----------------------------------------------- host.nbd.tls: required
daemon_stop fail || test_finish
MODE=required
setup "$port"
daemon_start "$tmp/nvmfd.yaml" "$tmp/nvmfd.log" -d ||
    { fail "restart with tls: required"; test_finish; }
nbd_connect
[ "$(ctl list-host --json | json 'sorted(set(e["tls"] for e in j["exports"]))')" = \
    "['required']" ] && pass "tls required: every export required" ||
    fail "tls required: list-host"
timeout 20 nbdinfo --list "nbd+unix:///?$S" >"$tmp/p2.txt" 2>&1 &&
    fail "plain nbdinfo --list under tls: required" ||
    pass "plain nbdinfo --list refused under tls: required"
refused "option 3 refused: error 0x80000005" ||
    fail "no NBD_REP_ERR_TLS_REQD for LIST in the log"
timeout 20 nbdinfo --list "$TCP/?tls-psk-file=$tmp/keys.psk" \
    >"$tmp/t2.txt" 2>&1 && grep -q "export=\"$PUB\"" "$tmp/t2.txt" &&
    pass "TLS nbdinfo --list over TCP under tls: required" ||
    fail "TLS nbdinfo --list: $(cat "$tmp/t2.txt")"
timeout 60 nbdcopy "$tmp/rand.img" "$TCP/$PUB?tls-psk-file=$tmp/keys.psk" &&
    timeout 60 nbdcopy "$(tls_unix "$PUB")" "$tmp/out2.img" &&
    cmp -s "$tmp/rand.img" "$tmp/out2.img" &&
    pass "nbdcopy in and out under tls: required: same" ||
    fail "nbdcopy under tls: required"
PYTHONPATH=$here timeout 30 python3 - "$tmp/nbd.sock" "$PUB" \
    >"$tmp/raw2.out" 2>&1 <<'EOF'
import sys
from nbd_client import Checks, Client, OPT_ABORT, OPT_EXPORT_NAME, \
    OPT_STRUCTURED_REPLY, REP_ACK
sock, pub = sys.argv[1:3]
ERR_TLS_REQD = 0x80000005
check = Checks()
c = Client(path=sock)
c.handshake()
c.opt(OPT_STRUCTURED_REPLY)
check(c.reply()[1] == ERR_TLS_REQD, "STRUCTURED_REPLY: NBD_REP_ERR_TLS_REQD")
c.opt(OPT_ABORT)
check(c.reply()[1] == REP_ACK, "ABORT: ACK")
c = Client(path=sock)
c.handshake()
c.opt(OPT_EXPORT_NAME, pub.encode())
check(c.is_closed(), "EXPORT_NAME without TLS: closed")
check.exit()
EOF
rc=$?
sed 's/^/  /' "$tmp/raw2.out"
[ $rc = 0 ] && pass "raw refusals under tls: required" ||
    fail "raw refusals under tls: required"

ctl disconnect-all >/dev/null || fail "disconnect-all"
test_finish
