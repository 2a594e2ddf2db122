#!/bin/sh
# Integration test: DH-HMAC-CHAP between the Linux kernel's NVMe/TCP host
# (Debian's 6.12 in a QEMU VM from ../shared/peer-linux) and nvmfd running
# on this machine.
#
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir.
# Exit: 0 pass, 77 skip (no peer-linux, QEMU or python3), 1 fail, 99 error.
#
# Three subsystems, each offering one hash and one DH group so the host must
# use it: sha256/NULL (host key in a key file), sha384/ffdhe2048 (with a
# controller key: bidirectional) and sha512/ffdhe8192.  One VM boot runs
# guest/linux-auth.sh: authenticated connects with I/O (fio verify on one),
# a wrong host key, no key, a wrong controller key, and a key rotated with
# nvmfctl set-host (through ctl_agent.py) followed by the host's
# re-authentication on the live association, then once more by rewriting
# the key file and nvmfctl reload; and the kernel's discovery controller
# authenticating to nvmfd's (the discovery: section gives the host keys
# there) and reading the log with nvme discover -d, once with a controller
# key, refused with a wrong key and with none (libnvme gives a discovery
# controller no keys, so the guest writes its options to /dev/nvme-fabrics).
# Here: the daemon's log must show each exchange and must not hold any key.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
peer=$top_srcdir/../shared/peer-linux

NQN_A=nqn.2026-11.io.nvmfd.test:auth-sha256-null
NQN_B=nqn.2026-11.io.nvmfd.test:auth-sha384-2048
NQN_C=nqn.2026-11.io.nvmfd.test:auth-sha512-8192
HID=5a3e0c1e-7b7e-4d0a-9a51-3f2a6c1d0e01
H=nqn.2014-08.org.nvmexpress:uuid:$HID
VM_TIMEOUT=300

. "$here/lib.sh"
. "$here/vm-run.sh"
vm_agent_test linux-auth ctl.sock

key() { python3 "$peer/tlspsk.py" dhchap "$1"; }
KEY_A=$(key 1) KEY_B=$(key 2) CTRL_B=$(key 3) KEY_C=$(key 3) || exit 99
KEY_T=$(key 1) CTRL_T=$(key 1) || exit 99	# for the guest's kernel target
KEY_D=$(key 1) CTRL_D=$(key 2) || exit 99	# discovery
umask 077
printf '%s\n' "$KEY_A" >"$tmp/host-a.key"

# shellcheck disable=SC2317  # called through setup
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
  - nqn: $NQN_A
    dhchap_hashes: [sha256]
    dhchap_dhgroups: [null]
    hosts:
      - nqn: $H
        dhchap_secret: "@$tmp/host-a.key"
    namespaces:
      - backend: ram
        size: 32M
  - nqn: $NQN_B
    dhchap_hashes: [sha384]
    dhchap_dhgroups: [ffdhe2048]
    hosts:
      - nqn: $H
        dhchap_secret: "$KEY_B"
        dhchap_ctrl_secret: "$CTRL_B"
    namespaces:
      - backend: ram
        size: 32M
  - nqn: $NQN_C
    dhchap_hashes: [sha512]
    dhchap_dhgroups: [ffdhe8192]
    hosts:
      - nqn: $H
        dhchap_secret: "$KEY_C"
    namespaces:
      - backend: ram
        size: 32M
discovery:
  hosts:
    - nqn: $H
      dhchap_secret: "$KEY_D"
      dhchap_ctrl_secret: "$CTRL_D"
EOF
}

# Ports 24650-24659: the NVMe/TCP port and, next to it, the agent's.
# shellcheck disable=SC2317  # called by daemon_start_on_ports
setup() {
	write_config "$1" && start_agent $(($1 + 1)) --nqn "$NQN_A" \
	    --keyfile "$tmp/host-a.key"
}
if ! daemon_start_on_ports setup "$tmp/nvmfd.yaml" "$tmp/nvmfd.log" \
    "24650 24652 24654 24656 24658" -d; then
	say "ERROR: $daemon_error"
	exit 99
fi
port=$daemon_port
say "nvmfd (pid $daemon_pid) ready on 127.0.0.1:$port, agent on $((port + 1))"

# A key file others may read is refused, naming the file and its mode.
chmod 0644 "$tmp/host-a.key"
if "$NVMFD" -n -f "$tmp/nvmfd.yaml" >"$tmp/check.out" 2>&1; then
	fail "a group/world-readable key file was accepted"
elif ! grep -q "host-a.key: mode 0644" "$tmp/check.out"; then
	fail "the refusal does not name the file and mode: $(cat "$tmp/check.out")"
else
	say "ok: a 0644 key file is refused: $(head -1 "$tmp/check.out")"
fi
chmod 0600 "$tmp/host-a.key"

# nvmfd's own host role (perf) authenticates too, bidirectionally (and in
# the guest, to the kernel's target).
perf() { "$NVMFD" perf -a 127.0.0.1 -s "$port" -n "$NQN_B" -H "$H" -t 1 \
    -c 2 -q 4 -w randread "$@" >"$tmp/perf.out" 2>&1; }
if perf -S "$KEY_B" -C "$CTRL_B"; then
	say "ok: perf authenticated (sha384, ffdhe2048, bidirectional): $(tail -1 "$tmp/perf.out" | cut -c1-60)"
else
	fail "perf with the keys: $(tail -1 "$tmp/perf.out")"
fi
if perf -S "$KEY_C"; then
	fail "perf with a wrong host key got in"
elif ! grep -q 'Failure1 reason 0x01' "$tmp/perf.out"; then
	fail "perf with a wrong host key: $(tail -1 "$tmp/perf.out")"
fi
if perf -S "$KEY_B" -C "$KEY_C"; then
	fail "perf accepted a controller that does not know the controller key"
fi

say "booting the Linux host VM (guest/linux-auth.sh)"
tport=$((port + 5))	# the guest's nvmet, forwarded to 127.0.0.1
run_vm "$tmp/vm.out" --timeout "$VM_TIMEOUT" --hostfwd "$tport" \
	"$here/guest/linux-auth.sh" \
	"$port" $((port + 1)) "$H" "$HID" "$NQN_A" "$NQN_B" "$NQN_C" \
	"$KEY_A" "$KEY_B" "$CTRL_B" "$KEY_C" "$tport" "$KEY_T" "$CTRL_T" \
	"$KEY_D" "$CTRL_D"
vm_result
stop_agent

# The daemon's side of each exchange.
logged() {	# WHAT PATTERN
	if grep -qE "$2" "$tmp/nvmfd.log"; then
		say "ok: daemon log: $1"
	else
		fail "daemon log has no line for: $1 ($2)"
	fi
}
if [ "$vm_rc" = 0 ]; then
	logged "sha256/NULL" "qid 0: host $H authenticated \(sha256, null\)"
	logged "an I/O queue authenticated" "qid [1-9]: host $H authenticated"
	logged "sha384/ffdhe2048 bidirectional" \
	    "qid 0: host $H authenticated \(sha384, ffdhe2048, bidirectional\)"
	logged "sha512/ffdhe8192" "qid 0: host $H authenticated \(sha512, ffdhe8192\)"
	logged "wrong host key" "host $H: authentication failed: host response does not match"
	logged "wrong controller key" "host $H: authentication failed: host sent Failure2"
	logged "the rotation" "subsystem $NQN_A: host $H keys changed"
	logged "the reload" "reloaded $tmp/nvmfd.yaml"
	# Only discovery offers the defaults: SHA-256 with ffdhe2048.
	logged "discovery, host key" \
	    "qid 0: host $H authenticated \(sha256, ffdhe2048\)"
	logged "discovery, bidirectional" \
	    "qid 0: host $H authenticated \(sha256, ffdhe2048, bidirectional\)"
	logged "a discovery controller" \
	    "discovery controller [0-9]+ for $H on nqn.2014-08.org.nvmexpress.discovery"
	# Re-authentication: two more sha256 successes on qid 0 than connects.
	n=$(grep -c "qid 0: host $H authenticated (sha256, null)" "$tmp/nvmfd.log")
	[ "$n" -ge 3 ] || fail "qid 0 of $NQN_A authenticated $n times, not 3"
fi

say "the daemon's authentication lines (H = $H):"
grep -E 'authenticat|keys changed' "$tmp/nvmfd.log" | sed "s/$H/H/g; s/^/    /"

# No key, in any form the daemon saw, is in its log.
NEWKEYS=$(sed -n 's/^NEWKEY=//p' "$tmp/vm.txt")
for k in "$KEY_A" "$KEY_B" "$CTRL_B" "$KEY_C" "$KEY_T" "$CTRL_T" "$KEY_D" \
    "$CTRL_D" $NEWKEYS; do
	body=$(echo "$k" | cut -d: -f3)
	if grep -qF "$body" "$tmp/nvmfd.log" "$tmp/agent.log"; then
		fail "a key is in the daemon's or agent's log"
	fi
done
say "ok: no key in the logs"

test_finish
