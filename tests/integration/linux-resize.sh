#!/bin/sh
# Integration test: a namespace resized while the Linux kernel's NVMe/TCP
# host (Debian's 6.12 in a QEMU VM from ../shared/peer-linux) stays
# connected to nvmfd on this machine.  One VM boot runs
# guest/linux-resize.sh, which connects and, while fio writes and verifies
# the start of the namespace, asks ctl_agent.py (here, 10.0.2.2:AGENT_PORT
# from the guest) to run nvmfctl set-ns --size: the block device takes
# each new size without a reconnect (the Namespace Attribute Changed event
# makes the kernel rescan), and fio sees no error.
#
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir.
# Exit: 0 pass, 77 skip (no peer-linux, QEMU or python3), 1 fail, 99 error.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
peer=$top_srcdir/../shared/peer-linux

NQN=nqn.2026-11.io.nvmfd.test:linux-resize
VM_TIMEOUT=200          # seconds for the whole guest run

. "$here/lib.sh"
. "$here/vm-run.sh"
vm_agent_test linux-resize ctl.sock

# ---------------------------------------------------------------- daemon
# shellcheck disable=SC2317  # called through vm_agent_daemon
write_config() {	# PORT
	cat >"$tmp/nvmfd.yaml" <<EOF
workers: 2
control:
  socket: $sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    model: nvmfd resize
    namespaces:
      - {nsid: 1, backend: ram, size: 64M}
EOF
}

# Ports 24694-24699: the NVMe/TCP port and, next to it, the agent's.
vm_agent_daemon "24694 24696 24698"

# ---------------------------------------------------------------- the VM
say "booting the Linux host VM (guest/linux-resize.sh)"
run_vm "$tmp/vm.out" --timeout "$VM_TIMEOUT" \
	--file "$here/guest/checks.sh" "$here/guest/linux-resize.sh" \
	"$port" $((port + 1)) "$NQN"
vm_result
vm_checks connect grow shrink

# The agent's and the daemon's side of it.
vm_agent_done
for s in "67108864 -> 134217728" "134217728 -> 33554432"; do
	grep -q "namespace 1: size $s bytes" "$tmp/nvmfd.log" ||
		fail "the daemon did not log the size change $s"
done
n=$(grep -c "I/O controller .* on $NQN" "$tmp/nvmfd.log")
[ "$n" = 1 ] ||
	fail "the daemon logged $n controllers for $NQN, expected 1 (no reconnect)"
ctl list-ns "$NQN" | sed 's/^/  /'

# ---------------------------------------------------------------- shutdown
vm_daemon_done
