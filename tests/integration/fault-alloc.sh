#!/bin/sh
# fault-alloc.sh: every allocation nvmfd makes while it serves may fail,
# and nvmfd refuses what needed it and goes on.  Needs a build configured
# with --enable-fault-injection (best with --enable-asan too); skips (77)
# on any other.
#
# One round: start nvmfd with NVMFD_FAIL_ALLOC=N (the Nth allocation after
# start-up fails), then a host session (TCP connection, ICReq, admin
# Connect, enable, Set Features, an I/O queue's Connect, a write and a
# read), a perf run over TLS with DH-HMAC-CHAP both ways, nvmfd's own host
# role connecting to it and exporting the namespace over NBD (nbdinfo
# reads it, then disconnect), control requests (add a subsystem and a
# namespace, list, show the configuration, remove it) and a reload with
# one namespace more (SIGHUP).  Any step may be refused.  Then nvmfd must still serve a
# verified perf run (a second one, if the failure refused the first), exit
# 0 on SIGTERM and, under ASan, report no leak.
# A first round with no failure counts the allocations; the rounds after
# spread N over that count (FAULT_ROUNDS of them, default 16, from
# FAULT_FIRST, default 1), or FAULT_N=N runs that one round alone.  A
# request that gets no answer at all (a hang) fails the round; the log then
# has the stack of the allocation that failed (ASan builds).
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build-fi/nvmfd top_srcdir=. FAULT_ROUNDS=40 \
#       sh tests/integration/fault-alloc.sh
# Exit status: 0 pass, 77 skip, 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-11.io.nvmfd.test:fault
EXTRA=nqn.2026-11.io.nvmfd.test:fault-extra
ROUNDS=${FAULT_ROUNDS:-16}
PORTS="24680 24681 24682 24683 24684"

. "$here/lib.sh"
need_nvmfd 77
need_python3
if ! NVMFD_FAIL_ALLOC=0 "$NVMFD" ctl version 2>&1 |
    grep -q NVMFD_FAIL_ALLOC; then
	say "SKIP: $NVMFD is not built with --enable-fault-injection"
	exit 77
fi
test_tmpdir fault 60 || exit 1

ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }

# The secured subsystem: TLS required on its port, and DH-HMAC-CHAP both
# ways for its one host.
SEC=nqn.2026-11.io.nvmfd.test:fault-secure
SECHOST=nqn.2026-11.io.nvmfd.test:fault-host
dhchap_gen_key() {	# as nvme gen-dhchap-key writes it, untransformed
	python3 -c 'import base64, os, struct, zlib
k = os.urandom(32)
print("DHHC-1:00:%s:" % base64.b64encode(k + struct.pack("<I", zlib.crc32(k))).decode())'
}
DHKEY=$(dhchap_gen_key) DHCKEY=$(dhchap_gen_key)
TLSKEY=$(tls_gen_key)

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT: plain; PORT+1: TLS
	cat >"$tmp/nvmfd.yaml" <<EOF
control:
  socket: $tmp/ctl.sock
host:
  nbd:
    socket: $tmp/nbd.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
  - {id: 2, address: 127.0.0.1, port: $(($1 + 1)), tls: required}
subsystems:
  - nqn: $SEC
    ports: [2]
    hosts:
      - nqn: $SECHOST
        dhchap_secret: '$DHKEY'
        dhchap_ctrl_secret: '$DHCKEY'
        tls_key: '$TLSKEY'
    namespaces:
      - {nsid: 1, backend: ram, size: 1M}
  - nqn: $NQN
    ports: [1]
    namespaces:
      - {nsid: 1, backend: ram, size: 4M}
EOF
}

TIMEOUT="" CTL_TIMEOUT=""
command -v timeout >/dev/null 2>&1 &&
    TIMEOUT="timeout -k 5 60" CTL_TIMEOUT="timeout -k 5 20"

# The host session, control requests and reload of one round; prints
# what was refused.
exercise() {
	# shellcheck disable=SC2086  # $TIMEOUT is empty or three words
	PYTHONPATH="$here" $TIMEOUT python3 - "$daemon_port" "$NQN" <<'PY'
import sys
import nvmf_client as nc
port, nqn = int(sys.argv[1]), sys.argv[2]
try:
    a = nc.open_admin("127.0.0.1", port, nqn)
    a.set_num_queues(1)
    q = nc.open_io(a, "127.0.0.1", port, nqn)
    data = bytes(range(256)) * 16
    if not q.cmd(nc.NVM_WRITE, nsid=1, data_out=data, cdw10=0,
                 cdw12=7).ok:
        print("host: write refused")
    q.close()
    a.close()
except Exception as e:  # a refusal: any error, but an answer
    print("host:", type(e).__name__, e)
PY
	# TLS and DH-HMAC-CHAP both ways, from a client that fails nothing.
	# shellcheck disable=SC2086
	if ! env -u NVMFD_FAIL_ALLOC $TIMEOUT "$NVMFD" perf -a 127.0.0.1 \
	    -s $((daemon_port + 1)) -n "$SEC" -H "$SECHOST" -S "$DHKEY" \
	    -C "$DHCKEY" -K "$TLSKEY" -c 2 -q 2 -w write -t 1 -v \
	    >/dev/null 2>"$tmp/sec.err"; then
		echo "secure: $(tail -1 "$tmp/sec.err")"
	fi
	# The host role: nvmfd connects to itself and exports the namespace
	# over NBD; nbdinfo reads it.
	if ! $CTL_TIMEOUT "$tmp/nvmfctl" -s "$tmp/ctl.sock" connect -t tcp \
	    -a 127.0.0.1 -s "$daemon_port" -n "$NQN" >/dev/null 2>"$tmp/ctl.err"
	then
		echo "host connect: $(tail -1 "$tmp/ctl.err")"
	elif ! host_wait_state live 10; then
		echo "host: association not live: $(host_assoc state)"
	elif ! env -u NVMFD_FAIL_ALLOC $CTL_TIMEOUT nbdinfo \
	    "nbd+unix:///$(printf %s "$NQN" | sed 's/:/%3A/g')/1?socket=$tmp/nbd.sock" \
	    >/dev/null 2>"$tmp/nbd.err"; then
		echo "nbd: $(tail -1 "$tmp/nbd.err")"
	fi
	$CTL_TIMEOUT "$tmp/nvmfctl" -s "$tmp/ctl.sock" disconnect -n "$NQN" \
	    >/dev/null 2>&1
	case $? in 124) echo "control: disconnect: Timeout: no answer" ;; esac
	for req in "add-subsys $EXTRA" "add-ns $EXTRA --backend ram --size 1M" \
	    "list-subsys --json" "show-config" "stats" "del-subsys $EXTRA"; do
		# shellcheck disable=SC2086  # $req is a command line
		$CTL_TIMEOUT "$tmp/nvmfctl" -s "$tmp/ctl.sock" $req >/dev/null \
		    2>"$tmp/ctl.err"
		case $? in
		0) ;;
		124) echo "control: $req: Timeout: no answer in 20 s" ;;
		*) echo "control: $req: $(tail -1 "$tmp/ctl.err")" ;;
		esac
	done
	# A half-done add may have left the subsystem: it must go now.
	ctl del-subsys "$EXTRA" >/dev/null 2>&1
	# Reload: one namespace more than at start (the last subsystem's).
	printf '      - {nsid: 2, backend: ram, size: 1M}\n' >>"$tmp/nvmfd.yaml"
	kill -HUP "$daemon_pid"
	sleep 0.3
}

round() {	# N: one round failing allocation N (0: none fails)
	export NVMFD_FAIL_ALLOC="${1:-0}"
	[ "$1" = 0 ] && NVMFD_FAIL_ALLOC=999999999
	daemon_start_or_skip write_config "$PORTS"
	refused=$(exercise | tr '\n' ';')
	unset NVMFD_FAIL_ALLOC
	# Refused is right; no answer at all is a hang.
	case $refused in
	*Timeout*)
		fail "N=$1: a request got no answer: $refused"
		tail -40 "$tmp/nvmfd.log"
		;;
	esac
	kill -0 "$daemon_pid" 2>/dev/null || {
		fail "N=$1: nvmfd died"
		tail -20 "$tmp/nvmfd.log"
		return
	}
	# The failure may land in the first perf run: that one is refused,
	# the next must be served.
	saved=$status
	daemon_serves "after allocation $1 failed" >"$tmp/serves.out"
	if ! grep -q '^ok' "$tmp/serves.out"; then
		status=$saved
		daemon_serves "once more after allocation $1 failed" \
		    >"$tmp/serves.out"
		grep -q '^ok' "$tmp/serves.out" || {
			cat "$tmp/serves.out"
			tail -15 "$tmp/nvmfd.log"
		}
	fi
	daemon_stop fail || { tail -15 "$tmp/nvmfd.log"; return; }
	if log_has_sanitizer_report "$tmp/nvmfd.log" >/dev/null; then
		fail "N=$1: sanitizer report"
		grep -A12 'ERROR\|SUMMARY' "$tmp/nvmfd.log" | head -40
		return
	fi
	count=$(sed -n 's/.*fault injection: \([0-9]*\) allocations.*/\1/p' \
	    "$tmp/nvmfd.log")
	say "ok: N=$1 of ${count:-?}: refused: ${refused:-nothing}"
}

if [ -n "${FAULT_N:-}" ]; then
	round "$FAULT_N"
	[ "$status" = 0 ] && echo PASS || echo FAIL
	exit "$status"
fi
round 0
total=$count
case $total in
''|*[!0-9]*) fail "no allocation count in the log"; test_finish ;;
esac
[ "$total" -gt 0 ] || { fail "no allocations counted"; exit 1; }
step=$(( (total + ROUNDS - 1) / ROUNDS ))
[ "$step" -ge 1 ] || step=1
n=${FAULT_FIRST:-1}
while [ "$n" -le "$total" ] && [ "$status" = 0 ]; do
	round "$n"
	n=$((n + step))
done
[ "$status" = 0 ] && echo PASS || echo FAIL
exit "$status"
