#!/bin/sh
# host-sec.sh: the host role with DH-HMAC-CHAP and TLS.  One nvmfd is the
# target, a second one the host: nvmfctl connect to it with
#   - a host key (the target asks for unidirectional DH-HMAC-CHAP);
#   - a host and a controller key (bidirectional), two I/O queues, and
#     again after nvmfctl reconnect;
#   - a TLS key on a port that requires TLS;
#   - a TLS key and both DH-HMAC-CHAP keys, from files;
#   - the last again from the host daemon's file (host.connections);
#   - discover and connect-all with a key the discovery controller asks
#     for, and discover over TLS;
# each time data written through the association's NBD export is read
# back.  A wrong host key, a wrong controller key, a wrong TLS key and no
# key at all are refused, with the reason in list-host; no key reaches
# either log; list-host says which keys an association has, not what.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/host-sec.sh
# Exit status: 0 pass, 77 skip (a tool missing, no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-12.io.nvmfd.test:hostsec
H1=nqn.2026-12.io.nvmfd.test:host-uni
H2=nqn.2026-12.io.nvmfd.test:host-bi
H3=nqn.2026-12.io.nvmfd.test:host-tls
H4=nqn.2026-12.io.nvmfd.test:host-tls-bi

. "$here/lib.sh"
need_nvmfd 77
need_python3
for t in nbdcopy timeout cmp; do
	command -v $t >/dev/null 2>&1 && continue
	say "SKIP: $t is not installed (apt-get install libnbd-bin)"
	exit 77
done
test_tmpdir host-sec 60 || exit 1

T0=$(date +%s)
say() { echo "host-sec: [$(($(date +%s) - T0))s] $*"; }
pass() { say "ok: $*"; }

K1=$(dhchap_gen_key 01) K2=$(dhchap_gen_key 00) C2=$(dhchap_gen_key 02) ||
    exit 1
K4=$(dhchap_gen_key 03) C4=$(dhchap_gen_key 00) ||
    exit 1
T3=$(tls_gen_key) T4=$(tls_gen_key) BADT=$(tls_gen_key) BAD=$(dhchap_gen_key) ||
    exit 1
(umask 077 && echo "$K4" >"$tmp/k4" && echo "$C4" >"$tmp/c4" &&
    echo "$T4" >"$tmp/t4") || exit 1

# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	[ -n "${node_pid:-}" ] && kill -KILL "$node_pid" 2>/dev/null
	[ -n "${node_pid:-}" ] && wait "$node_pid" 2>/dev/null
}

# shellcheck disable=SC2317  # called by daemon_start_or_skip
setup() {	# PORT: the target there, PORT+1 its TLS port, PORT+2 the host's
	cat >"$tmp/nvmfd.yaml" <<EOF
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $(($1 + 2))}
host:
  nbd:
    socket: $tmp/nbd.sock
EOF
	cat >"$tmp/target.yaml" <<EOF
control:
  socket: $tmp/target.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
  - {id: 2, address: 127.0.0.1, port: $(($1 + 1)), tls: required}
subsystems:
  - nqn: $NQN
    hosts:
      - nqn: $H1
        dhchap_secret: "$K1"
      - nqn: $H2
        dhchap_secret: "$K2"
        dhchap_ctrl_secret: "$C2"
      - nqn: $H3
        tls_key: "$T3"
      - nqn: $H4
        tls_key: "$T4"
        dhchap_secret: "$K4"
        dhchap_ctrl_secret: "$C4"
    namespaces:
      - {nsid: 1, backend: ram, size: 8M}
discovery:
  hosts:
    - nqn: $H1
      dhchap_secret: "$K1"
EOF
	node_start "$tmp/target.yaml" "$tmp/target.log" || return 1
	P=$1
}
daemon_start_or_skip setup "24860 24863 24866"
PT=$((P + 1))
say "target nvmfd (pid $node_pid) on 127.0.0.1:$P and :$PT (TLS);" \
    "host nvmfd (pid $daemon_pid)"

ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }
U="nbd+unix:///$NQN/1?socket=$tmp/nbd.sock"
head -c 4194304 /dev/urandom >"$tmp/data" || exit 1

all_gone() {	# no association listed, within 10 s
	for _ in $(seq 50); do
		[ -z "$(host_assoc state)" ] && return 0
		sleep 0.2
	done
	return 1
}

# Write 4 MiB through the export and read them back.
io_check() {	# WHAT
	rm -f "$tmp/back"
	if timeout 30 nbdcopy "$tmp/data" "$U" &&
	    timeout 30 nbdcopy "$U" "$tmp/back" &&
	    cmp -n 4194304 "$tmp/data" "$tmp/back"; then
		pass "$1: 4 MiB written and read back through NBD"
	else
		fail "$1: I/O through the association"
	fi
}

good() {	# WHAT PORT HOSTNQN [connect options]
	_w=$1 _p=$2 _h=$3
	shift 3
	ctl connect -t tcp -a 127.0.0.1 -s "$_p" -n "$NQN" --hostnqn "$_h" \
	    -k 2 -c 1 "$@" >/dev/null || { fail "$_w: connect"; return; }
	if host_wait_state live 20; then
		pass "$_w: live"
		io_check "$_w"
	else
		fail "$_w: not live: $(host_assoc error)"
	fi
}

listed() {	# WHAT PATTERN: list-host --json shows it; then disconnect
	if ctl list-host --json | tr -d ' \n' | grep -q "$2"; then
		pass "list-host: $1"
	else
		fail "list-host: $(ctl list-host --json | tr -d ' \n')"
	fi
	ctl disconnect-all >/dev/null || fail "disconnect-all"
	all_gone || fail "not disconnected"
}

bad() {	# WHAT PATTERN PORT HOSTNQN [connect options]
	_w=$1 _pat=$2 _p=$3 _h=$4
	shift 4
	ctl connect -t tcp -a 127.0.0.1 -s "$_p" -n "$NQN" --hostnqn "$_h" \
	    -k 2 -c 1 "$@" >/dev/null || { fail "$_w: connect"; return; }
	_e=
	for _ in $(seq 75); do
		_e=$(host_assoc error)
		case $_e in *$_pat*) break ;; esac
		sleep 0.2
	done
	case $_e in
	*$_pat*)
		if [ "$(host_assoc state)" = live ]; then
			fail "$_w: live"
		else
			pass "$_w: refused ($_e)"
		fi ;;
	*)	fail "$_w: state $(host_assoc state), error \"$_e\"" ;;
	esac
	ctl disconnect-all >/dev/null || fail "disconnect-all"
	all_gone || fail "$_w: still listed"
}

# ------------------------------------------- unidirectional DH-HMAC-CHAP
good "unidirectional" "$P" "$H1" --dhchap-secret "$K1"
listed "dhchap host, no TLS" '"dhchap":"host","tls":false'
bad "wrong host key" "authentication failed" "$P" "$H1" \
    --dhchap-secret "$BAD"
bad "no key" "requires DH-HMAC-CHAP" "$P" "$H1"

# The discovery controller asks H1 for the same key; connect-all passes
# it on to the subsystem too.
if out=$(ctl discover -a 127.0.0.1 -s "$P" --hostnqn "$H1" 2>&1); then
	fail "discover without the key H1 needs: listed"
else
	case $out in
	*"requires DH-HMAC-CHAP"*) pass "discover without a key: refused" ;;
	*)	fail "discover without a key: $out" ;;
	esac
fi
ctl discover -a 127.0.0.1 -s "$P" --hostnqn "$H1" -S "$K1" --json |
    grep -q "$NQN" && pass "discover with the key: lists the subsystem" ||
    fail "discover with the key"
ctl discover -a 127.0.0.1 -s "$PT" --hostnqn "$H3" --tls-key "$T3" --json |
    grep -q "$NQN" && pass "discover over TLS: lists the subsystem" ||
    fail "discover over TLS"
ctl connect-all -a 127.0.0.1 -s "$P" --hostnqn "$H1" -S "$K1" -k 2 -c 1 \
    >/dev/null || fail "connect-all with a key"
if host_wait_state live 20; then
	pass "connect-all with a key: live"
	io_check "connect-all"
else
	fail "connect-all: not live: $(host_assoc error)"
fi
ctl disconnect-all >/dev/null || fail "disconnect-all"
all_gone || fail "not disconnected"

# --------------------------------------------- bidirectional, 2 queues
good "bidirectional" "$P" "$H2" -S "$K2" -C "$C2" -i 2
ctl list-host --json | tr -d ' \n' | grep -q '"io_queues":2' &&
    pass "bidirectional: 2 I/O queues" ||
    fail "io_queues: $(host_assoc io_queues)"
ctl reconnect -n "$NQN" >/dev/null || fail "nvmfctl reconnect"
sleep 1
host_wait_state live 20 && [ "$(host_assoc reconnects)" -ge 1 ] &&
    pass "bidirectional: live again after reconnect" ||
    fail "after reconnect: $(host_assoc state) $(host_assoc error)"
io_check "bidirectional, reconnected"
ctl disconnect-all >/dev/null || fail "disconnect-all"
all_gone || fail "not disconnected"
bad "wrong controller key" "does not match" "$P" "$H2" -S "$K2" -C "$BAD"
bad "a controller key the target does not ask for" "cannot prove itself" \
    "$P" "$H3" -S "$K2" -C "$C2"

# ---------------------------------------------------------------- TLS
good "TLS" "$PT" "$H3" --tls-key "$T3"
listed "TLS, no dhchap" '"dhchap":"none","tls":true'
bad "wrong TLS key" "TLS" "$PT" "$H3" --tls-key "$BADT"
bad "no TLS key on a TLS port" "ICResp" "$PT" "$H3"

# ----------------------------------------- TLS and bidirectional, files
good "TLS + bidirectional (key files)" "$PT" "$H4" --tls-key "@$tmp/t4" \
    --dhchap-secret "@$tmp/k4" --dhchap-ctrl-secret "@$tmp/c4" -i 2
listed "bidirectional and TLS" '"dhchap":"bidirectional","tls":true'
bad "TLS, wrong controller key" "does not match" "$PT" "$H4" \
    --tls-key "$T4" -S "$K4" -C "$C2"

# ------------------------------------------------------------- refusals
chmod 644 "$tmp/k4"
if out=$(ctl connect -a 127.0.0.1 -s "$P" -n "$NQN" -S "@$tmp/k4" 2>&1); then
	fail "a key file others can read was taken"
else
	case $out in
	*"group or others"*) pass "a key file others can read: refused" ;;
	*)	fail "key file: $out" ;;
	esac
fi
if out=$(ctl connect -a 127.0.0.1 -s "$P" -n "$NQN" -C "$C2" 2>&1); then
	fail "a controller key alone was taken"
else
	pass "a controller key without a host key: refused"
fi
if out=$(ctl connect -a 127.0.0.1 -s "$P" -n "$NQN" -S "DHHC-1:00:abc:" \
    2>&1); then
	fail "a malformed key was taken"
else
	pass "a malformed key: refused"
fi

# ------------------------------------------- host.connections in the file
chmod 600 "$tmp/k4"
daemon_stop fail || exit 1
cat >>"$tmp/nvmfd.yaml" <<EOF
  connections:
    - address: 127.0.0.1
      port: $PT
      nqn: $NQN
      hostnqn: $H4
      reconnect_delay: 1
      nr_io_queues: 2
      tls_key: "$T4"
      tls_kdf: compat
      dhchap_secret: "@$tmp/k4"
      dhchap_ctrl_secret: "$C4"
EOF
if daemon_start "$tmp/nvmfd.yaml" "$tmp/nvmfd2.log"; then
	if host_wait_state live 20; then
		pass "host.connections with TLS and both keys: live"
		io_check "host.connections"
	else
		fail "host.connections: not live: $(host_assoc error)"
	fi
else
	fail "the host daemon with host.connections keys did not start"
fi
log_has_sanitizer_report "$tmp/nvmfd.log" >/dev/null &&
    fail "sanitizer report in the first host daemon's log"
sed 's/dhchap_secret: .*/dhchap_secret: "DHHC-1:00:bad:"/' "$tmp/nvmfd.yaml" \
    >"$tmp/bad.yaml"
if "$NVMFD" -n -f "$tmp/bad.yaml" >"$tmp/bad.out" 2>&1; then
	fail "a malformed dhchap_secret in host.connections was taken"
else
	grep -q "dhchap_secret" "$tmp/bad.out" &&
	    pass "a malformed dhchap_secret in the file: refused" ||
	    fail "bad key: $(cat "$tmp/bad.out")"
fi

for k in "$K1" "$K2" "$C2" "$K4" "$C4" "$T3" "$T4" "$BAD" "$BADT"; do
	b64=${k#*:*:}
	b64=${b64%:}
	if grep -qF "$b64" "$tmp/nvmfd.log" "$tmp/nvmfd2.log" \
	    "$tmp/target.log" "$tmp/bad.out"; then
		fail "a key in a log"
		break
	fi
done
pass "no key in either log"

log_has_sanitizer_report "$tmp/target.log" "$tmp/nvmfd2.log" >/dev/null &&
    fail "sanitizer report in the target's or second host's log"
kill -TERM "$node_pid" 2>/dev/null
wait "$node_pid" 2>/dev/null
node_pid=
test_finish
