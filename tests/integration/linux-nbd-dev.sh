#!/bin/sh
# linux-nbd-dev.sh: nvmfd serving a remote namespace as a kernel /dev/nbdN
# (attach-nbd, detach-nbd, the nbd_device connection setting).  The nbd
# module is only in the Linux guest of ../shared/peer-linux, so the host
# side runs there: a static nvmfd (NVMFD_STATIC, or NVMFD itself when it
# is static) copied in, connecting to an nvmfd target on this machine
# (a file namespace).  The guest (guest/nbd-dev.sh) attaches /dev/nbd0,
# makes an ext4 on it, writes, remounts and reads back; here the target is
# stopped and started again under the mounted file system; then the guest
# detaches, attaches again on /dev/nbd1, finds a device that a second
# nvmfd configured in use, and stops its nvmfd.
#
# Before the VM, on this machine: attach-nbd and detach-nbd refuse bad
# device names and unknown exports with the right exit codes.
#
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir;
# NVMFD_STATIC = a statically linked nvmfd (tests/run-all.sh builds one).
# Exit: 0 pass, 77 skip (no peer-linux, QEMU, python3 or static nvmfd;
# or a run voided by a jump of the guest's clock), 1 fail, 99 error.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
peer=$top_srcdir/../shared/peer-linux

NQN=nqn.2026-12.io.nvmfd.test:nbd-dev
SIZE=$((64 << 20))
VM_TIMEOUT=300

. "$here/lib.sh"
. "$here/vm-run.sh"
vm_test_init linux-nbd-dev

static=${NVMFD_STATIC:-}
if [ -z "$static" ] && file -L "$NVMFD" 2>/dev/null | grep -q 'statically linked'; then
	static=$NVMFD
fi
[ -n "$static" ] && [ -x "$static" ] ||
	_vm_skip "no static nvmfd for the guest: set NVMFD_STATIC (configure" \
	    "--enable-static-binary; tests/run-all.sh does)"
file -L "$static" 2>/dev/null | grep -q 'statically linked' ||
	_vm_skip "NVMFD_STATIC=$static is not statically linked"

vm_pid=""
test_tmpdir linux-nbd-dev 60 || exit 99
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	if [ -n "$vm_pid" ]; then
		kill "$vm_pid" 2>/dev/null
		wait "$vm_pid" 2>/dev/null
	fi
}

# shellcheck disable=SC2317  # called by daemon_start_on_ports
write_config() {	# PORT
	nbd_self_config "$1" "$NQN" "{nsid: 1, backend: file, path: $tmp/disk.img, size: $((SIZE >> 20))M}"
}
# Ports 24820-24829.
if ! daemon_start_on_ports write_config "$tmp/nvmfd.yaml" "$tmp/nvmfd.log" \
    "24820 24821 24822 24823 24824 24825"; then
	say "ERROR: $daemon_error"
	exit 99
fi
port=$daemon_port
say "target nvmfd (pid $daemon_pid) ready on 127.0.0.1:$port"
ln -s "$NVMFD" "$tmp/nvmfctl" || exit 99

# expect RC WORDS CMD...: nvmfctl CMD exits RC and says WORDS.
expect() {
	_rc=$1 _words=$2
	shift 2
	"$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@" >"$tmp/out" 2>&1
	_got=$?
	if [ $_got = "$_rc" ] && grep -q "$_words" "$tmp/out"; then
		say "ok: $*: exit $_got, $(cat "$tmp/out")"
	else
		fail "$*: exit $_got, want $_rc with \"$_words\": $(cat "$tmp/out")"
	fi
}
expect 2 "not an NBD device" attach-nbd "$NQN/1" /dev/sda
expect 2 "not an NBD device" attach-nbd "$NQN/1" /dev/nbd01
expect 2 "usage" attach-nbd "$NQN/1"
expect 2 "timeouts are seconds" attach-nbd "$NQN/1" /dev/nbd0 --timeout -1
expect 3 "no export" attach-nbd nope /dev/nbd0
expect 3 "not attached" detach-nbd /dev/nbd0
expect 2 "not an NBD device" detach-nbd /dev/nbd
expect 2 "nbd-device: invalid value" connect -t tcp -a 127.0.0.1 \
    -s "$port" -n "$NQN" --nbd-device /dev/nbd0p1

vm_rc=1
say "booting the Linux VM (guest/nbd-dev.sh), nvmfd $static in it"
PEER_LINUX_EXTRA_PKGS=e2fsprogs PEER_LINUX_EXTRA_MODS=ext4
export PEER_LINUX_EXTRA_PKGS PEER_LINUX_EXTRA_MODS
if ! start_vm_ready "$tmp/vm.out" --timeout "$VM_TIMEOUT" \
    --file "$static:/usr/local/bin/nvmfd" "$here/guest/nbd-dev.sh" \
    "$port" "$NQN" "$SIZE" "$VM_TIMEOUT"; then
	fail "the guest never got to its restart step"
else
	say "the guest asks for a restart: stopping the target"
	daemon_stop fail
	sleep 3
	if daemon_start "$tmp/nvmfd.yaml" "$tmp/nvmfd2.log"; then
		say "target nvmfd (pid $daemon_pid) back on 127.0.0.1:$port"
	else
		fail "the target did not start again: $daemon_error"
	fi
fi
if [ -n "$vm_pid" ]; then
	wait "$vm_pid"
	vm_rc=$?
	vm_pid=""
fi
# The guest voids a failed run its clock jumped in (guest/nbd-dev.sh,
# clock_jumped); failures seen here still count.
if [ "$vm_rc" = 77 ] && [ "$status" = 0 ] && grep -q '^VOID:' "$tmp/vm.out"
then
	say "SKIP: $(tr -d '\r' <"$tmp/vm.out" | sed -n 's/^VOID: //p')"
	grep -E '^(PASS|FAIL):' "$tmp/vm.out" | tr -d '\r'
	exit 77
fi
vm_result
echo "----- guest console (without the kernel's lines)"
grep -vE '^\[ *[0-9]+\.[0-9]+\]' "$tmp/vm.txt" | tail -80
echo "----- end of guest console"
vm_checks attach fs restart detach reattach busy loss stop
for l in "$tmp/nvmfd.log" "$tmp/nvmfd2.log"; do
	[ -f "$l" ] || continue
	if grep -iE 'error|warn' "$l" | grep -v 'qid [0-9]* closed' >"$tmp/err"; then
		fail "target log $l: $(head -3 "$tmp/err")"
	fi
done
if [ -f "$tmp/nvmfd2.log" ]; then
	if grep -q 'I/O controller' "$tmp/nvmfd2.log"; then
		say "the guest's host came back to the restarted target"
	else
		fail "the guest's host never connected to the restarted target"
	fi
fi
say "stopping the target with SIGTERM"
daemon_stop fail
logs=$tmp/nvmfd.log
[ -f "$tmp/nvmfd2.log" ] && logs="$logs $tmp/nvmfd2.log"
# shellcheck disable=SC2086  # two paths without spaces (mktemp's)
vm_nodes_done $logs
