#!/bin/sh
# Integration test: storage errors in nvmfd's file I/O engine as the Linux
# kernel's NVMe/TCP host (Debian's 6.12 in a QEMU VM from
# ../shared/peer-linux) sees them while fio runs.  One VM boot runs
# guest/linux-engine-fault.sh, which connects to a file namespace here and,
# while fio reads or writes, asks ctl_agent.py (10.0.2.2:AGENT_PORT from
# the guest) to run nvmfctl inject-error --at engine: EIO on reads, EIO
# and ENOSPC on writes, a short read.  The kernel must log the status
# engine-fault.sh expects (Unrecovered Read Error, Write Fault, Capacity
# Exceeded), fio must get the matching errno, a fio verify run after each
# fault must pass, and the controller must never be reset.  An injection
# no bigger than the host's retry count must not reach fio at all, and
# nvmfd must have failed every one of the host's tries.
#
# The file I/O engine is the daemon's default (io_uring where the kernel
# allows it); NVMFD_IO_ENGINE=threads runs it all on the thread pool.
# Needs a build configured with --enable-fault-injection; skips (77) on
# any other, as without peer-linux, QEMU or python3.
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir.
# Exit: 0 pass, 77 skip, 1 fail, 99 error.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
peer=$top_srcdir/../shared/peer-linux

NQN=nqn.2026-11.io.nvmfd.test:linux-engine-fault
VM_TIMEOUT=240          # seconds for the whole guest run

. "$here/lib.sh"
. "$here/vm-run.sh"
vm_agent_test linux-engine-fault ctl.sock
if ! NVMFD_FAIL_ALLOC=0 "$NVMFD" ctl version 2>&1 |
    grep -q NVMFD_FAIL_ALLOC; then
	say "SKIP: $NVMFD is not built with --enable-fault-injection" \
	    "(nvmfctl inject-error --at engine needs it)"
	exit 77
fi
truncate -s 64M "$tmp/ns1.img" || exit 99

# ---------------------------------------------------------------- daemon
# shellcheck disable=SC2317  # called through vm_agent_daemon
write_config() {	# PORT
	cat >"$tmp/nvmfd.yaml" <<EOF
workers: 1
control:
  socket: $sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    model: nvmfd engine fault
    namespaces:
      - {nsid: 1, backend: file, path: $tmp/ns1.img}
EOF
}

# Ports 24840-24845: the NVMe/TCP port and, next to it, the agent's.
vm_agent_daemon "24840 24842 24844"
say "file I/O on $(ctl version --json | python3 -c \
    'import json, sys; print(json.load(sys.stdin)["daemon"]["file_io"])')"

# ---------------------------------------------------------------- the VM
say "booting the Linux host VM (guest/linux-engine-fault.sh)"
run_vm "$tmp/vm.out" --timeout "$VM_TIMEOUT" \
	--file "$here/guest/checks.sh" "$here/guest/linux-engine-fault.sh" \
	"$port" $((port + 1)) "$NQN"
vm_result
vm_checks connect retried read-eio write-eio enospc short-read controller

# The agent's and the daemon's side of it.
vm_agent_done
n=$(grep -c "in the I/O engine" "$tmp/nvmfd.log")
[ "$n" = 5 ] || fail "the daemon logged $n engine injections, expected 5"
# Every try of the host failed here: R absorbed, then R + 1 for each of
# the four faults (R: the guest's max_retries); ENOSPC is no media error.
r=$(sed -n 's/^PASS: connect: .* the host retries \([0-9]*\) times$/\1/p' \
    "$tmp/vm.txt")
got=$(ctl stats --subsys "$NQN" --json | python3 -c 'import json, sys
ns = json.load(sys.stdin)["namespaces"][0]
print(ns["errors"], ns["media_errors"])')
want="$((r + 4 * (r + 1))) $((r + 3 * (r + 1)))"
if [ -n "$r" ] && [ "$got" = "$want" ]; then
	say "ok: nvmfd counted ${got% *} failed commands, ${got#* } media" \
	    "errors: every one of the host's tries"
else
	fail "nvmfd's errors and media errors: $got, expected $want"
fi
n=$(grep -c "I/O controller .* on $NQN" "$tmp/nvmfd.log")
[ "$n" = 1 ] ||
	fail "the daemon logged $n controllers for $NQN, expected 1 (no reconnect)"

# ---------------------------------------------------------------- shutdown
vm_daemon_done
