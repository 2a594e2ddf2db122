#!/bin/sh
# Integration test: the Linux kernel's NVMe/TCP host with TLS 1.3 (tlshd in a
# Debian 6.12 QEMU guest from ../shared/peer-linux) against an nvmfd port with
# "tls: required": discovery and connect with --tls, dd and fio verify over
# it; a wrong PSK, a host without a PSK on nvmfd's side and a plain connect
# refused.  Keys never reach nvmfd's log.  Then the other way round: a
# second guest runs the kernel's target (nvmet) with a TLS-only port, and
# nvmfd's host role (perf -K) writes and reads back verified data over it;
# a wrong key is refused.
#
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir.
# Exit: 0 pass, 77 skip (no peer-linux, QEMU or python3), 1 fail, 99 error.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
peer=$top_srcdir/../shared/peer-linux

NQN=nqn.2026-11.io.nvmfd.test:tls
H=nqn.2014-08.org.nvmexpress:uuid:5a0c3b36-7f1e-4c4e-9d6b-7a9e4c1d0001
H_WRONG=nqn.2014-08.org.nvmexpress:uuid:5a0c3b36-7f1e-4c4e-9d6b-7a9e4c1d0002
H_NOKEY=nqn.2014-08.org.nvmexpress:uuid:5a0c3b36-7f1e-4c4e-9d6b-7a9e4c1d0003
VM_TIMEOUT=420

. "$here/lib.sh"
. "$here/vm-run.sh"
vm_test_init linux-tls

vm_pid=""
test_tmpdir linux-tls || exit 99
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	if [ -n "$vm_pid" ]; then
		kill "$vm_pid" 2>/dev/null
		wait "$vm_pid" 2>/dev/null
	fi
}

KEY=$(tls_gen_key) KEY_OTHER=$(tls_gen_key) WRONG=$(tls_gen_key)
# One key from a file, as an administrator would keep it.
umask 077
echo "$KEY_OTHER" >"$tmp/other.key"

# shellcheck disable=SC2317  # called by daemon_start_on_ports
write_config() {
	cat >"$tmp/nvmfd.yaml" <<EOC
workers: 2
control:
  socket: $tmp/ctl.sock
ports:
  - id: 1
    address: 127.0.0.1
    port: $1
    tls: required
subsystems:
  - nqn: $NQN
    hosts:
      - nqn: $H
        tls_key: "$KEY"
      - nqn: $H_WRONG
        tls_key: "@$tmp/other.key"
      - $H_NOKEY
    namespaces:
      - {nsid: 1, backend: ram, size: 64M}
EOC
}

if ! daemon_start_on_ports write_config "$tmp/nvmfd.yaml" "$tmp/nvmfd.log" \
    "24640 24641 24642 24643 24644" -d; then
	say "ERROR: $daemon_error"
	exit 99
fi
port=$daemon_port
say "nvmfd (pid $daemon_pid) ready on 127.0.0.1:$port (TLS required)"

say "booting the Linux host VM (guest/linux-tls.sh)"
run_vm "$tmp/vm.out" --timeout "$VM_TIMEOUT" "$here/guest/linux-tls.sh" \
	"$port" "$NQN" "$H" "$KEY" "$H_WRONG" "$WRONG" "$H_NOKEY"
vm_result

# What the daemon saw: TLS on every queue, the refusals named.
if grep -q '^RESULT_OK=connect' "$tmp/vm.txt"; then
	n=$(grep -c ': TLS 1.3 TLS_AES_128_GCM_SHA256' "$tmp/nvmfd.log")
	[ "$n" -ge 4 ] || fail "only $n TLS handshakes in the daemon log (discovery, admin + 2 I/O queues)"
	grep -q "TLS: no key for host $H_NOKEY" "$tmp/nvmfd.log" ||
		fail "no refusal of $H_NOKEY in the daemon log"
	grep -q 'plain connection on a port that requires TLS' "$tmp/nvmfd.log" ||
		fail "no refusal of the plain connection in the daemon log"
fi
# No key, nor its base64, in the log.
for k in "$KEY" "$KEY_OTHER" "$WRONG"; do
	b64=${k#NVMeTLSkey-1:01:}
	b64=${b64%:}
	grep -qF "$b64" "$tmp/nvmfd.log" && fail "a key is in the daemon log"
done

say "stopping nvmfd with SIGTERM"
daemon_stop fail

# --------------------------------------------- nvmfd's host role vs nvmet
PH=nqn.2026-11.io.nvmfd.test:perf-tls
PSUB=nqn.2026-11.io.nvmfd.test:nvmet-tls
TPORT=24645
perf_tls() {	# perf_tls KEY PERF-ARGS...
	pk=$1
	shift
	timeout 90 "$NVMFD" perf -a 127.0.0.1 -s "$TPORT" -n "$PSUB" -H "$PH" \
	    -K "$pk" "$@"
}
say "booting the Linux target VM (guest/nvmet-tls.sh)"
if ! start_vm_ready "$tmp/vm-target.out" --hostfwd "$TPORT" --timeout 400 \
    "$here/guest/nvmet-tls.sh" "$PH" "$KEY" "$TPORT" 300; then
	fail "the nvmet guest never got ready:"
	tail -20 "$tmp/vm-target.out"
else
	if out=$(perf_tls "$KEY" -v -q 8 -o 131072 -w write -t 6 2>&1); then
		say "ok: perf -K writes to nvmet over TLS: $(echo "$out" | tail -1 | cut -d, -f1)"
	else
		fail "perf -K write to nvmet: $(echo "$out" | tail -1)"
	fi
	if out=$(perf_tls "$KEY" -v -q 8 -o 131072 -w read -t 2 2>&1); then
		say "ok: perf -K reads back and verifies: $(echo "$out" | tail -1 | cut -d, -f1)"
	else
		fail "perf -K read from nvmet: $(echo "$out" | tail -1)"
	fi
	if out=$(perf_tls "$WRONG" -t 1 2>&1); then
		fail "perf with a wrong key got through to nvmet"
	else
		say "ok: a wrong key is refused: $(echo "$out" | tail -1)"
	fi
fi
kill "$vm_pid" 2>/dev/null
wait "$vm_pid" 2>/dev/null
vm_pid=""
log_has_sanitizer_report "$tmp/nvmfd.log" &&
	fail "sanitizer report in the daemon log"
if [ "$status" != 0 ]; then
	echo "----- daemon log"
	tail -n 100 "$tmp/nvmfd.log"
	say "FAILED"
	exit 1
fi
say "PASS"
exit 0
