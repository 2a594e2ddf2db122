#!/bin/sh
# Integration test: two nvmfd nodes serve one Ceph RBD image, the Linux
# host's native NVMe multipath uses both, and each node dies under I/O in
# turn.  A throwaway Ceph cluster (ceph-lib.sh) holds rbd/mp (64 MiB,
# without exclusive-lock, which nvmfd refuses for writing: see
# src/backend-rbd.c).  Node A (127.0.0.1:PORT, controller IDs 1-99) and
# node B (PORT+1, 100-199) serve it as namespace 1 of the same subsystem,
# with a referral to each other.  One boot of Debian's 6.12 guest
# (../shared/peer-linux) runs guest/linux-rbd.sh: discovery through node A
# and its referral, a connection to both, two paths under one subsystem,
# then fio writes and verifies through the multipath device while node B
# is killed with SIGKILL (ctl_agent.py does it when the guest asks): no
# verify or I/O error.  Node B is started again with the same
# configuration (by the agent), the host's reconnect makes its path live
# again (the time it took is reported), and a second fio verify run goes
# on through node B alone after node A is killed in its turn.  The
# restarted node B must then exit 0 on SIGTERM (the agent stops it).
#
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir.
# Exit: 0 pass, 77 skip (no peer-linux, QEMU, python3, Ceph packages, or
# an nvmfd without RBD), 1 fail, 99 error.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
peer=$top_srcdir/../shared/peer-linux

NQN=nqn.2026-11.io.nvmfd.test:rbd-multipath
VM_TIMEOUT=240          # seconds for the whole guest run

. "$here/lib.sh"
. "$here/vm-run.sh"
. "$here/ceph-lib.sh"
vm_test_init linux-rbd
ceph_need

vm_pid=""
nodeb_pid=""
test_tmpdir linux-rbd 60 || exit 99
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	# SIGTERM: the agent stops the node B it restarted; if it cannot, the
	# node, found by its configuration, goes too.
	_rb=""
	[ -n "$agent_pid" ] && _rb=$(sed -n \
	    's/^ctl_agent: node b started: pid \([0-9]*\)$/\1/p' \
	    "$tmp/agent.log" 2>/dev/null)
	stop_agent
	for p in $_rb; do
		grep -qF "$tmp/b.yaml" "/proc/$p/cmdline" 2>/dev/null &&
		    kill -KILL "$p"
	done
	for p in $vm_pid $nodeb_pid; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	ceph_stop
}
ln -s "$NVMFD" "$tmp/nvmfctl" || exit 99
sock=$tmp/b.sock	# the agent's nvmfctl talks to node B

ceph_need_rbd_build "$tmp"
ceph_start "$tmp/ceph" || { say "ERROR: the Ceph cluster did not start"; exit 99; }
ceph_rbd create --size 64M --image-feature layering rbd/mp || exit 99
say "ceph cluster up, rbd/mp created"

# write_node NAME PORT CNTLID_MIN CNTLID_MAX REFERRAL_PORT.  The referral
# names the address the guest reaches this machine's loopback at.
write_node() {
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
    model: nvmfd rbd multipath
    namespaces:
      - {nsid: 1, backend: rbd, pool: rbd, image: mp, ceph_user: admin,
         keyring: "$ceph_keyring", ceph_conf: "$ceph_conf"}
referrals:
  - {address: 10.0.2.2, port: $5}
EOF
}

# Ports 24794-24799: node A on PORT, node B on PORT+1, the agent on PORT+2.
# shellcheck disable=SC2317  # called by daemon_start_on_ports
setup() {
	write_node a "$1" 1 99 $(($1 + 1)) &&
	    write_node b $(($1 + 1)) 100 199 "$1"
}
if ! daemon_start_on_ports setup "$tmp/a.yaml" "$tmp/nvmfd.log" \
    "24794 24797"; then
	say "ERROR: $daemon_error"
	exit 99
fi
port=$daemon_port
if ! node_start "$tmp/b.yaml" "$tmp/b.log"; then
	say "ERROR: node B did not start on port $((port + 1))"
	exit 99
fi
nodeb_pid=$node_pid
if ! start_agent $((port + 2)) --nqn "$NQN" --node a "$daemon_pid" \
    --node b "$nodeb_pid" --restart b "$tmp/b.yaml" "$tmp/b.log" \
    --nvmfd "$NVMFD"; then
	say "ERROR: the agent cannot listen on port $((port + 2))"
	exit 99
fi
say "node A (pid $daemon_pid) on 127.0.0.1:$port, node B (pid $nodeb_pid)" \
    "on $((port + 1)), agent on $((port + 2))"

say "booting the Linux host VM (guest/linux-rbd.sh)"
run_vm "$tmp/vm.out" --timeout "$VM_TIMEOUT" \
	--file "$here/guest/checks.sh" "$here/guest/linux-rbd.sh" \
	"$port" $((port + 1)) $((port + 2)) "$NQN"
vm_result
vm_checks discovery multipath kill restart alone

# The agent stops the node B it restarted when the guest is done.
vm_agent_done
for n in a b; do
	p=$daemon_pid
	[ $n = b ] && p=$nodeb_pid
	if kill -0 "$p" 2>/dev/null; then
		fail "node $n (pid $p) is still running: the guest never had it killed"
	else
		wait "$p" 2>/dev/null
	fi
done
daemon_pid="" nodeb_pid=""
if [ "$vm_rc" = 0 ]; then
	grep -Eq '^ctl_agent: node b \(pid [0-9]+\) exited 0 after SIGTERM$' \
	    "$tmp/agent.log" || fail "the restarted node B did not exit 0 on SIGTERM"
	[ "$(grep -c ' ready: ' "$tmp/b.log")" = 2 ] ||
		fail "node B's log does not show two starts"
fi
vm_nodes_done "$tmp/nvmfd.log" "$tmp/b.log"
