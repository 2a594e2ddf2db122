# shellcheck shell=sh disable=SC2154  # peer is the caller's
# Sourced by the Linux-host tests, after lib.sh, with peer set to
# peer-linux's directory.
#
# vm_test_init NAME: say prefixes NAME and the seconds since this call; exit
# 77 (skip) without peer-linux's vm, QEMU or python3, 99 without NVMFD.
vm_test_init() {
	_vm_name=$1
	T0=$(date +%s)
	[ -x "$peer/vm" ] || _vm_skip "no peer-linux harness at" \
	    "\$top_srcdir/../shared/peer-linux (only CI has it)"
	command -v qemu-system-x86_64 >/dev/null ||
		_vm_skip "qemu-system-x86_64 is not installed"
	need_python3
	need_nvmfd 99
}
say() { echo "$_vm_name: [$(($(date +%s) - T0))s] $*"; }
_vm_skip() { say "SKIP: $*"; exit 77; }

# vm_agent_test NAME SOCKET: the start of a test whose guest asks
# ctl_agent.py for nvmfctl commands: vm_test_init NAME, tmp (test_tmpdir;
# control socket paths must fit sun_path), $tmp/nvmfctl (a link to NVMFD),
# sock=$tmp/SOCKET (the control socket the agent's nvmfctl uses), and ctl
# ARG... (nvmfctl on it).  At exit: SIGTERM to the agent, which stops the
# nodes it restarted (one it could not stop is killed), then the VM and
# node B (nodeb_pid, in the tests with a second node) end, then
# vm_cleanup_more runs (a test redefines it for more).
vm_agent_test() {
	vm_test_init "$1"
	vm_pid="" nodeb_pid=""
	test_tmpdir "$1" 60 || exit 99
	ln -s "$NVMFD" "$tmp/nvmfctl" || exit 99
	sock=$tmp/$2
	# shellcheck disable=SC2317  # called from test_tmpdir's trap
	test_cleanup() { _vm_agent_cleanup; }
}
ctl() { "$tmp/nvmfctl" -s "$sock" "$@"; }

# vm_node_pair PORT MODEL NAMESPACE: the configurations of two nodes that
# serve subsystem $NQN together, $tmp/a.yaml and $tmp/b.yaml: node A on
# 127.0.0.1:PORT with controller IDs 1-99, node B on PORT+1 with 100-199;
# one worker each, control sockets $tmp/a.sock and $tmp/b.sock, the model
# MODEL, namespace 1 given by NAMESPACE (the rest of its YAML flow
# mapping), and a referral to the other node at 10.0.2.2, the address the
# guest reaches this machine's loopback at.
vm_node_pair() {
	_vn_model=$2 _vn_ns=$3
	_vm_node a "$1" 1 99 $(($1 + 1)) &&
	    _vm_node b $(($1 + 1)) 100 199 "$1"
}
_vm_node() {	# NAME PORT CNTLID_MIN CNTLID_MAX REFERRAL_PORT
	cat >"$tmp/$1.yaml" <<EOF
workers: 1
cntlid_min: $3
cntlid_max: $4
control:
  socket: $tmp/$1.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $2}
subsystems:
  - nqn: $NQN
    model: $_vn_model
    namespaces:
      - {nsid: 1, $_vn_ns}
referrals:
  - {address: 10.0.2.2, port: $5}
EOF
}
vm_cleanup_more() { :; }
_vm_agent_cleanup() {
	_vc_restarted=""
	[ -n "$agent_pid" ] && _vc_restarted=$(sed -n \
	    's/^ctl_agent: node [a-z]* started: pid \([0-9]*\)$/\1/p' \
	    "$tmp/agent.log" 2>/dev/null)
	stop_agent
	for _vc_p in $_vc_restarted; do
		grep -qF "$tmp/" "/proc/$_vc_p/cmdline" 2>/dev/null &&
			kill -KILL "$_vc_p"
	done
	for _vc_p in $vm_pid $nodeb_pid; do
		kill "$_vc_p" 2>/dev/null
		wait "$_vc_p" 2>/dev/null
	done
	vm_cleanup_more
}

# The guest cannot reach the control socket: ctl_agent.py runs nvmfctl for
# it.  start_agent PORT AGENT-ARG...: the agent on 127.0.0.1:PORT with
# $tmp/nvmfctl and $sock, its log in $tmp/agent.log, agent_pid set;
# non-zero when it cannot listen there (it needs no daemon to listen).
# stop_agent: ends it, if running.
agent_pid=""
stop_agent() {
	[ -n "$agent_pid" ] || return 0
	kill "$agent_pid" 2>/dev/null
	wait "$agent_pid" 2>/dev/null
	agent_pid=""
}
start_agent() {
	_ag_port=$1
	shift
	stop_agent	# the previous try's: its daemon found its port in use
	: >"$tmp/agent.log"
	python3 "$here/ctl_agent.py" --port "$_ag_port" --nvmfctl "$tmp/nvmfctl" \
	    --socket "$sock" --timeout $((VM_TIMEOUT + 30)) "$@" \
	    >"$tmp/agent.log" 2>&1 &
	agent_pid=$!
	for _ in $(seq 50); do
		grep -q 'listening' "$tmp/agent.log" && return 0
		kill -0 "$agent_pid" 2>/dev/null || break
		sleep 0.1
	done
	stop_agent
	return 1
}

# vm_agent_daemon PORTS: nvmfd (-d) with the test's write_config PORT on
# the first of PORTS it can listen on, and ctl_agent.py for NQN on the
# port after it (start_agent); sets port.  Exits 99 when none will do.
vm_agent_daemon() {
	if ! daemon_start_on_ports _vm_agent_setup "$tmp/nvmfd.yaml" \
	    "$tmp/nvmfd.log" "$1" -d; then
		say "ERROR: $daemon_error"
		exit 99
	fi
	port=$daemon_port
	say "nvmfd (pid $daemon_pid) on 127.0.0.1:$port, agent on $((port + 1))"
}
# shellcheck disable=SC2317  # called by daemon_start_on_ports
_vm_agent_setup() {
	write_config "$1" && start_agent $(($1 + 1)) --nqn "$NQN"
}

# start_vm_ready OUT VM-ARGS...: peer-linux's vm in the background
# (vm_pid), its console in OUT, for a guest script that prints READY once
# it serves; true once it has, within 300 s.  A guest that dies before its
# script starts (an emulator fault) boots again, up to three boots.
start_vm_ready() {
	_out=$1
	shift
	for _attempt in 1 2 3; do
		"$peer/vm" "$@" >"$_out" 2>&1 &
		vm_pid=$!
		_i=0
		while [ $_i -lt 300 ] && ! grep -q '^READY' "$_out" &&
		    kill -0 "$vm_pid" 2>/dev/null; do
			sleep 1
			_i=$((_i + 1))
		done
		grep -q '^guest: started' "$_out" && break
		wait "$vm_pid" 2>/dev/null
		vm_pid=""
	done
	grep -q '^READY' "$_out"
}

# run_vm OUT VM-ARGS...: run peer-linux's
# vm with its console in OUT (and on stdout), setting vm_rc.  Under TCG on
# a busy machine the guest kernel occasionally dies (a double fault or an
# oops in its own allocator, say): that is the emulator's fault, not
# nvmfd's.  Dead while booting, before the guest script printed "guest:
# started", the VM boots again (up to three boots); dead later, when the
# daemon's state has moved on, the whole test runs once more from the
# start (exec $0).
run_vm() {
	_out=$1
	shift
	for _attempt in 1 2 3; do
		: >"$_out"
		"$peer/vm" "$@" >"$_out" 2>&1 &
		vm_pid=$!
		tail -f --pid="$vm_pid" "$_out" 2>/dev/null | tr -d '\r' &
		_tail=$!
		wait "$vm_pid"
		vm_rc=$?
		vm_pid=""
		wait "$_tail"
		if [ "$vm_rc" = 125 ] && [ "$_attempt" != 3 ] &&
		    ! grep -q '^guest: started' "$_out"; then
			say "the guest kernel died before the test began (an emulator fault): booting again"
			continue
		fi
		break
	done
	if [ "$vm_rc" != 0 ] && [ -z "${NVMFD_VM_RERUN:-}" ] &&
	    grep -qE 'Oops: |Kernel panic|double fault' "$_out"; then
		say "the guest kernel crashed during the test (an emulator fault, see above): running the whole test once more"
		_test_exit
		trap - EXIT
		NVMFD_VM_RERUN=1
		export NVMFD_VM_RERUN
		exec sh "$0"
	fi
}

# vm_result: the guest's console ($tmp/vm.out) without CRs in $tmp/vm.txt,
# and a verdict on vm_rc.
vm_result() {
	tr -d '\r' <"$tmp/vm.out" >"$tmp/vm.txt"
	case $vm_rc in
	0) say "guest checks passed" ;;
	124) fail "the VM timed out after ${VM_TIMEOUT}s" ;;
	125) fail "the guest reported no exit code (kernel panic?)" ;;
	*) fail "guest checks failed (exit $vm_rc): $(grep -m1 '^FAIL' \
	    "$tmp/vm.txt")" ;;
	esac
}

# vm_checks NAME...: each check's "PASS: NAME: ..." lines from the guest,
# or a failure with the guest's reason.
vm_checks() {
	for _check in "$@"; do
		if grep -q "^PASS: $_check:" "$tmp/vm.txt"; then
			grep "^PASS: $_check:" "$tmp/vm.txt" | while read -r _l; do
				say "$_l"
			done
		else
			_why=$(sed -n "s/^FAIL: $_check: //p" "$tmp/vm.txt" | head -1)
			fail "$_check: ${_why:-not reached}"
		fi
	done
}

# vm_agent_done: after the VM, the agent must have ended on the guest's
# "done" (when the guest passed); its log is printed.  After "done" it may
# still be stopping the nodes it restarted (slow under a sanitizer): it
# gets 50 s for that (its own bound: 30 s for their stats, 15 s to exit).
vm_agent_done() {
	grep -q "'done' -> ok" "$tmp/agent.log" && wait_gone "$agent_pid" 50
	if kill -0 "$agent_pid" 2>/dev/null; then
		kill "$agent_pid"
		wait "$agent_pid" 2>/dev/null
		[ "$vm_rc" = 0 ] && fail "the agent did not get 'done' from the guest"
	else
		wait "$agent_pid"
	fi
	agent_pid=""
	echo "----- agent log"
	cat "$tmp/agent.log"
	echo "----- end of agent log"
}

# vm_daemon_done: SIGTERM to the one daemon ($tmp/nvmfd.log), then
# vm_nodes_done on its log.
vm_daemon_done() {
	say "stopping nvmfd with SIGTERM"
	daemon_stop fail
	vm_nodes_done "$tmp/nvmfd.log"
}

# vm_nodes_done LOG...: no sanitizer report in the nodes' LOGs, then the
# verdict: exits 0 (PASS), or 1 with the end of each LOG.
vm_nodes_done() {
	for _log in "$@"; do
		log_has_sanitizer_report "$_log" >/dev/null &&
			fail "sanitizer report in $_log"
	done
	if [ "$status" != 0 ]; then
		for _log in "$@"; do
			echo "----- $_log (last 100 lines)"
			tail -n 100 "$_log"
			echo "----- end of $_log"
		done
		say "FAILED"
		exit 1
	fi
	say "PASS"
	exit 0
}
