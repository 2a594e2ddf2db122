# shellcheck shell=sh
# Sourced by the Linux-host tests.  run_vm OUT VM-ARGS...: run peer-linux's
# vm with its console in OUT (and on stdout), setting vm_rc.  Under TCG on
# a busy machine the guest kernel occasionally dies while booting, before the
# guest script starts; that is the emulator's fault, not nvmfd's, so such a
# boot is tried once more.  A guest script prints "guest: started" first.
run_vm() {
	_out=$1
	shift
	for _attempt in 1 2; do
		: >"$_out"
		"$peer/vm" "$@" >"$_out" 2>&1 &
		vm_pid=$!
		tail -f --pid="$vm_pid" "$_out" 2>/dev/null | tr -d '\r' &
		_tail=$!
		wait "$vm_pid"
		vm_rc=$?
		vm_pid=""
		wait "$_tail"
		if [ "$vm_rc" = 125 ] && [ "$_attempt" = 1 ] &&
		    ! grep -q '^guest: started' "$_out"; then
			say "the guest kernel died before the test began (an emulator fault): booting again"
			continue
		fi
		break
	done
}
