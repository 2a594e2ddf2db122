#!/bin/sh
# Integration test: live changes with nvmfctl while the Linux kernel's
# NVMe/TCP host (Debian's 6.12 in a QEMU VM from ../shared/peer-linux) stays
# connected to nvmfd on this machine.  One VM boot runs
# guest/linux-control.sh, which connects and then asks ctl_agent.py (here,
# 10.0.2.2:AGENT_PORT from the guest) to run nvmfctl add-ns, del-ns and
# terminate; the guest checks that a new namespace appears without a
# reconnect (AEN, rescan), that a deleted one disappears, and that the host
# reconnects by itself after its association is terminated.
#
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir.
# Exit: 0 pass, 77 skip (no peer-linux, QEMU or python3), 1 fail, 99 error.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
peer=$top_srcdir/../shared/peer-linux

NQN=nqn.2026-11.io.nvmfd.test:live
NS1_BYTES=$((64 << 20))
NS2_BYTES=$((32 << 20))
VM_TIMEOUT=200          # seconds for the whole guest run

. "$here/lib.sh"
. "$here/vm-run.sh"
vm_agent_test linux-control ctl.sock

# ---------------------------------------------------------------- daemon
# shellcheck disable=SC2317  # called through vm_agent_daemon
write_config() {	# PORT
	cat >"$tmp/nvmfd.yaml" <<EOF
workers: 2
control:
  socket: $sock
ports:
  - id: 1
    address: 127.0.0.1
    port: $1
subsystems:
  - nqn: $NQN
    model: nvmfd live changes
    namespaces:
      - nsid: 1
        backend: ram
        size: $((NS1_BYTES >> 20))M
EOF
}

# Ports 24530-24539: the NVMe/TCP port and, next to it, the agent's.
vm_agent_daemon "24530 24532 24534 24536 24538"
ctl list-ns "$NQN" | sed 's/^/  /'

# ---------------------------------------------------------------- the VM
say "booting the Linux host VM (guest/linux-control.sh)"
run_vm "$tmp/vm.out" --timeout "$VM_TIMEOUT" \
	--file "$here/guest/checks.sh" "$here/guest/linux-control.sh" \
	"$port" $((port + 1)) "$NQN" "$NS1_BYTES" "$NS2_BYTES"
vm_result
vm_checks connect add-ns del-ns terminate recreate

# The agent's and the daemon's side of it.
vm_agent_done
grep -q "add-ns.* -> ok" "$tmp/agent.log" || fail "no successful add-ns in the agent log"
grep -q "terminated by nvmfctl" "$tmp/nvmfd.log" ||
	fail "no 'terminated by nvmfctl' in the daemon log"
n=$(grep -c "I/O controller .* on $NQN" "$tmp/nvmfd.log")
[ "$n" -ge 3 ] || fail "the daemon logged $n controllers for $NQN, expected 3 (connect, reconnect after terminate, after re-create)"

# ---------------------------------------------------------------- shutdown
kill -0 "$daemon_pid" 2>/dev/null && ctl list-ctrl | sed 's/^/  /'
vm_daemon_done
