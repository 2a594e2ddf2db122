#!/bin/sh
# Integration test: the Linux kernel's NVMe/TCP host (Debian's 6.12 in a QEMU
# VM from ../shared/peer-linux) against nvmfd running on this machine.
#
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir.
# Exit: 0 pass, 77 skip (no peer-linux, QEMU or python3), 1 fail, 99 error.
#
# One VM boot runs guest/linux-host.sh (discovery, connect, identify, fio
# verify, digests, file backend, keep-alive, persistent discovery); before it,
# kato.py checks the keep-alive timeout from this machine.  Finally the
# daemon must stop cleanly on SIGTERM and the file namespace's backing file
# must hold the bytes the guest wrote.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
peer=$top_srcdir/../shared/peer-linux

RAM_NQN=nqn.2026-11.io.nvmfd.test:ram
RAM_MODEL="nvmfd integration ram"
RAM_SERIAL=INTEG-RAM-0001
RAM_SIZE=$((256 << 20))
FILE_NQN=nqn.2026-11.io.nvmfd.test:file
FILE_SIZE=$((128 << 20))
VM_TIMEOUT=360          # seconds for the whole guest run

. "$here/lib.sh"
. "$here/vm-run.sh"
vm_test_init linux-host

vm_pid=""
test_tmpdir linux-host || exit 99
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	if [ -n "$vm_pid" ]; then
		kill "$vm_pid" 2>/dev/null
		wait "$vm_pid" 2>/dev/null
	fi
}

dump_log() {
	echo "----- daemon log ($tmp/nvmfd.log)"
	cat "$tmp/nvmfd.log"
	echo "----- end of daemon log"
}

# ---------------------------------------------------------------- daemon
# write_config PORT: PORT and, next to it, a port that refuses digests.
# shellcheck disable=SC2317  # called by daemon_start_on_ports
write_config() {
	cat > "$tmp/nvmfd.yaml" <<EOF
workers: 2
ports:
  - id: 1
    address: 127.0.0.1
    port: $1
  - id: 2
    address: 127.0.0.1
    port: $(($1 + 1))
    header_digest: false
    data_digest: false
subsystems:
  - nqn: $RAM_NQN
    model: $RAM_MODEL
    serial: $RAM_SERIAL
    namespaces:
      - nsid: 1
        backend: ram
        size: $((RAM_SIZE >> 20))M
  - nqn: $FILE_NQN
    namespaces:
      - nsid: 1
        backend: file
        path: $tmp/disk.img
        size: $((FILE_SIZE >> 20))M
EOF
}

# A private control socket, not the system-wide default (if this nvmfd has one).
ctl_opt=""
if "$NVMFD" -h 2>&1 | grep -q -- '-s path'; then
	ctl_opt=-s$tmp/ctl.sock
fi

# Ports 24470-24479: take the first pair the daemon can bind.
if ! daemon_start_on_ports write_config "$tmp/nvmfd.yaml" "$tmp/nvmfd.log" \
    "24470 24472 24474 24476 24478" -d ${ctl_opt:+"$ctl_opt"}; then
	say "ERROR: $daemon_error"
	exit 99
fi
port=$daemon_port
say "nvmfd (pid $daemon_pid) ready on 127.0.0.1:$port, digest-less port $((port + 1))"

# ---------------------------------------------------------------- 5. KATO
say "keep-alive timeout from this machine (kato.py, KATO 1000 ms)"
if ! timeout 30 python3 "$here/kato.py" 127.0.0.1 "$port" "$RAM_NQN" \
    --kato-ms 1000 --max-s 4; then
	fail "kato.py: keep-alive timeout check"
fi
grep -q 'keep alive' "$tmp/nvmfd.log" || fail "no \"keep alive\" line in the daemon log"

# ---------------------------------------------------------------- the VM
say "booting the Linux host VM (guest/linux-host.sh)"
run_vm "$tmp/vm.out" --timeout "$VM_TIMEOUT" "$here/guest/linux-host.sh" \
	"$port" $((port + 1)) "$RAM_NQN" "$RAM_MODEL" "$RAM_SERIAL" "$RAM_SIZE" \
	"$FILE_NQN" "$FILE_SIZE" "$(stat -c %o "$tmp/disk.img")"
tr -d '\r' < "$tmp/vm.out" > "$tmp/vm.txt"
case $vm_rc in
0) say "guest checks passed" ;;
124) fail "the VM timed out after ${VM_TIMEOUT}s" ;;
125) fail "the guest reported no exit code (kernel panic?)" ;;
*) fail "guest checks failed (exit $vm_rc): $(grep -m1 '^FAIL' "$tmp/vm.txt")" ;;
esac

# The daemon's view of what the guest did: one line per controller.
# guest_val KEY: the value of the guest's KEY= line.
guest_val() { sed -n "s/^$1=//p" "$tmp/vm.txt" | head -1; }
ctrl_logged() {   # KEY NQN KATO_REGEX
	cl_v=$(guest_val "$1")
	[ -n "$cl_v" ] || return 0       # the guest stopped before that step
	cl_id=${cl_v%% *} cl_host=${cl_v#* }
	if ! grep -qE "controller $cl_id for $cl_host on $2 \(KATO $3 ms\)" \
	    "$tmp/nvmfd.log"; then
		fail "daemon log has no controller $cl_id for $cl_host on $2 with KATO $3 ms"
	fi
}
ctrl_logged RAMCTRL "$RAM_NQN" '[0-9]+'
ctrl_logged FILECTRL "$FILE_NQN" '[0-9]+'
ctrl_logged KATOCTRL "$RAM_NQN" 2000
ctrl_logged PDCCTRL nqn.2014-08.org.nvmexpress.discovery '[1-9][0-9]*'

# ---------------------------------------------------------------- shutdown
say "stopping nvmfd with SIGTERM"
daemon_stop fail

# ---------------------------------------------------------------- 4. file data
md5=$(guest_val MD5)
if [ -n "$md5" ]; then
	got=$(dd if="$tmp/disk.img" bs=1M skip=4 count=1 2>/dev/null | md5sum | cut -d' ' -f1)
	if [ "$got" = "$md5" ]; then
		say "backing file holds the guest's pattern at 4 MiB (md5 $md5)"
	else
		fail "backing file at 4 MiB has md5 $got, the guest wrote $md5"
	fi
	size=$(stat -c %s "$tmp/disk.img")
	[ "$size" = "$FILE_SIZE" ] || fail "backing file is $size bytes, expected $FILE_SIZE"
elif [ "$vm_rc" = 0 ]; then
	fail "the guest printed no MD5= line"
fi

log_has_sanitizer_report "$tmp/nvmfd.log" &&
	fail "sanitizer report in the daemon log"

dump_log
if [ $status != 0 ]; then
	say "FAILED"
	exit 1
fi
say "PASS"
exit 0
