#!/bin/sh
# Integration test: NVMe reservations between two Linux hosts.  The Linux
# kernel's NVMe/TCP host (Debian's 6.12 in a QEMU VM from
# ../shared/peer-linux) connects twice to one subsystem of nvmfd, with two
# host NQNs and host IDs, and uses nvme resv-register, resv-acquire,
# resv-report and resv-release (guest/linux-resv.sh): the fenced host gets
# Reservation Conflict on writes, a preempt and abort moves the fence, and
# with PTPL on the state survives nvmfd being killed (SIGKILL) and started
# again between the two VM boots.
#
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir.
# Exit: 0 pass, 77 skip (no peer-linux, QEMU or python3), 1 fail, 99 error.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
peer=$top_srcdir/../shared/peer-linux

NQN=nqn.2026-11.io.nvmfd.test:resv-linux
VM_TIMEOUT=200          # seconds for each guest run

. "$here/lib.sh"
. "$here/vm-run.sh"
vm_test_init linux-resv

vm_pid=""
test_tmpdir linux-resv 60 || exit 99
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	[ -n "$vm_pid" ] && kill "$vm_pid" 2>/dev/null && wait "$vm_pid"
}

# shellcheck disable=SC2317  # called by daemon_start_on_ports
write_config() {	# PORT
	ram_target_config "$1" "$NQN" "workers: 2
state_dir: $tmp/state"
}

if ! daemon_start_on_ports write_config "$tmp/nvmfd.yaml" "$tmp/nvmfd.log" \
    "24665 24666 24667 24668 24669"; then
	say "ERROR: $daemon_error"
	exit 99
fi
port=$daemon_port
say "nvmfd (pid $daemon_pid) on 127.0.0.1:$port"

guest() {	# PHASE CHECK...
	_phase=$1
	shift
	say "booting the Linux host VM (guest/linux-resv.sh $_phase)"
	run_vm "$tmp/vm-$_phase.out" --timeout "$VM_TIMEOUT" \
	    "$here/guest/linux-resv.sh" "$_phase" "$port" "$NQN"
	tr -d '\r' <"$tmp/vm-$_phase.out" >"$tmp/vm-$_phase.txt"
	case $vm_rc in
	0) say "guest checks passed ($_phase)" ;;
	124) fail "$_phase: the VM timed out after ${VM_TIMEOUT}s" ;;
	125) fail "$_phase: the guest reported no exit code (kernel panic?)" ;;
	*) fail "$_phase: guest checks failed (exit $vm_rc)" ;;
	esac
	for check in "$@"; do
		grep -q "^PASS: $check" "$tmp/vm-$_phase.txt" ||
		    fail "$_phase: $check: not passed"
	done
}

guest first connect "register, acquire" fence preempt "state to keep"
ls "$tmp/state"/*.resv >/dev/null 2>&1 || fail "no state file with PTPL on"

# A crash, not a shutdown: the state must already be on disk.
say "killing nvmfd (SIGKILL) and starting it again"
daemon_kill
mv "$tmp/nvmfd.log" "$tmp/nvmfd-1.log"
if daemon_start "$tmp/nvmfd.yaml" "$tmp/nvmfd.log"; then
	grep 'restored from' "$tmp/nvmfd.log" || fail "nothing restored"
	guest restarted connect restart clear
else
	fail "restart: $daemon_error"
fi

say "stopping nvmfd with SIGTERM"
daemon_stop fail
log_has_sanitizer_report "$tmp/nvmfd-1.log" "$tmp/nvmfd.log" &&
	fail "sanitizer report in the daemon log"
if [ $status != 0 ]; then
	echo "----- daemon log ($tmp/nvmfd.log, last 100 lines)"
	tail -n 100 "$tmp/nvmfd.log"
	echo "----- end of daemon log"
	say "FAILED"
	exit 1
fi
say "PASS"
exit 0
