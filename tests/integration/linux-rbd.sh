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
vm_agent_test linux-rbd b.sock	# the agent's nvmfctl talks to node B
# shellcheck disable=SC2317  # called from the trap
vm_cleanup_more() { ceph_stop; }
ceph_need

ceph_need_rbd_build "$tmp"
ceph_start "$tmp/ceph" || { say "ERROR: the Ceph cluster did not start"; exit 99; }
ceph_rbd create --size 64M --image-feature layering rbd/mp || exit 99
say "ceph cluster up, rbd/mp created"

# Namespace 1 on both nodes: the image, as client.admin.
rbd_ns="backend: rbd, pool: rbd, image: mp, ceph_user: admin"
rbd_ns="$rbd_ns, keyring: \"$ceph_keyring\", ceph_conf: \"$ceph_conf\""
# Ports 24794-24799: node A on PORT, node B on PORT+1, the agent on PORT+2.
# shellcheck disable=SC2317  # called by daemon_start_on_ports
setup() { vm_node_pair "$1" "nvmfd rbd multipath" "$rbd_ns"; }
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
		kill -KILL "$p"
	fi
	wait "$p" 2>/dev/null
done
daemon_pid="" nodeb_pid=""
if [ "$vm_rc" = 0 ]; then
	grep -Eq '^ctl_agent: node b \(pid [0-9]+\) exited 0 after SIGTERM$' \
	    "$tmp/agent.log" || fail "the restarted node B did not exit 0 on SIGTERM"
	[ "$(grep -c ' ready: ' "$tmp/b.log")" = 2 ] ||
		fail "node B's log does not show two starts"
fi
vm_nodes_done "$tmp/nvmfd.log" "$tmp/b.log"
