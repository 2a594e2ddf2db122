#!/bin/sh
# Integration test: two nvmfd nodes, one namespace, the Linux host's native
# NVMe multipath (Debian's 6.12 in a QEMU VM from ../shared/peer-linux).
# Node A (127.0.0.1:PORT) and node B (PORT+1) serve the same subsystem NQN
# with one file-backed namespace on the same file (so the same derived
# NGUID, UUID and EUI-64), controller IDs 1-99 and 100-199, and a referral
# to each other.  One VM boot runs guest/linux-ana.sh: discovery on A and
# its referral, both paths under one subsystem, then node B's port made
# inaccessible (nvmfctl set-ana through ctl_agent.py) while fio writes and
# verifies: the host reports the state, its I/O moves to node A, and fio
# sees no error; then optimized again; then node B moves the namespace to
# another ANA group and back (set-ns --ana-group) and the host follows.
# The ANA log page read from each node's controller is compared with what
# nvmfctl set (and node B's list-ana shows), and the host's ANA change
# events are counted per controller (the nvme_async_event tracepoint):
# some from node B, none from node A.
#
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir.
# Exit: 0 pass, 77 skip (no peer-linux, QEMU or python3), 1 fail, 99 error.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
peer=$top_srcdir/../shared/peer-linux

NQN=nqn.2026-11.io.nvmfd.test:multipath
VM_TIMEOUT=240          # seconds for the whole guest run

. "$here/lib.sh"
. "$here/vm-run.sh"
vm_agent_test linux-ana b.sock	# the agent drives node B
img=$tmp/shared.img
truncate -s 64M "$img" || exit 99

# Ports 24674-24679: node A on PORT, node B on PORT+1, the agent on PORT+2.
# shellcheck disable=SC2317  # called by daemon_start_on_ports
setup() {
	vm_node_pair "$1" "nvmfd multipath" "backend: file, path: \"$img\"" &&
	    start_agent $(($1 + 2)) --nqn "$NQN"
}
if ! daemon_start_on_ports setup "$tmp/a.yaml" "$tmp/a.log" \
    "24674 24677" -d; then
	say "ERROR: $daemon_error"
	exit 99
fi
port=$daemon_port
if ! node_start "$tmp/b.yaml" "$tmp/b.log" -d; then
	say "ERROR: node B did not start on port $((port + 1))"
	exit 99
fi
nodeb_pid=$node_pid
say "node A (pid $daemon_pid) on 127.0.0.1:$port, node B (pid $nodeb_pid)" \
    "on $((port + 1)), agent on $((port + 2))"

# ---------------------------------------------------------------- the VM
say "booting the Linux host VM (guest/linux-ana.sh)"
run_vm "$tmp/vm.out" --timeout "$VM_TIMEOUT" \
	--file "$here/guest/checks.sh" "$here/guest/linux-ana.sh" \
	"$port" $((port + 1)) $((port + 2)) "$NQN"
vm_result
vm_checks discovery multipath failover restore move ana-log aen

# The nodes' side of it.
stop_agent
echo "----- agent log"
cat "$tmp/agent.log"
echo "----- end of agent log"
grep -q "ANA group 1 on port 1: optimized -> inaccessible" "$tmp/b.log" ||
	fail "node B did not log the change to inaccessible"
grep -q "I/O controller 1[0-9][0-9] for" "$tmp/b.log" ||
	fail "node B handed out no controller ID in 100-199"
grep -Eq "I/O controller ([1-9]|[1-9][0-9]) for" "$tmp/a.log" ||
	fail "node A handed out no controller ID in 1-99"

# How the I/O split between the nodes (errors: commands refused with the
# ANA status before the host read the new state).
for n in a b; do
	say "node $n stats:"
	"$tmp/nvmfctl" -s "$tmp/$n.sock" stats | sed 's/^/    /'
done

# ---------------------------------------------------------------- shutdown
say "stopping both nodes with SIGTERM"
kill -TERM "$nodeb_pid"
wait "$nodeb_pid"
rc=$?
nodeb_pid=""
[ $rc = 0 ] || fail "node B exited $rc on SIGTERM"
daemon_stop fail
vm_nodes_done "$tmp/a.log" "$tmp/b.log"
