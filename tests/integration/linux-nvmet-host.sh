#!/bin/sh
# linux-nvmet-host.sh: nvmfd's host role against the Linux kernel's NVMe/TCP
# target.  A Debian 6.12 guest from ../shared/peer-linux runs nvmet (set up
# through configfs, guest/nvmet-nbd.sh) with a 64 MiB RAM-backed namespace
# on a port forwarded to this machine.  nvmfd discovers it, connects to the
# subsystem its log lists and exports the namespace over NBD; nbdinfo sees its size and block sizes, a random image goes in
# and out with nbdcopy and qemu-img compares it, WRITE_ZEROES and TRIM
# read back as zeroes, and fio's nbd engine verifies what it writes.
# A second subsystem requires bidirectional DH-HMAC-CHAP (ffdhe2048):
# nvmfd connects to it with both keys and data goes in and out; a wrong
# controller key is refused.
#
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir.
# Exit: 0 pass, 77 skip (no peer-linux, QEMU, python3 or NBD tools),
# 1 fail, 99 error.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
peer=$top_srcdir/../shared/peer-linux

SUB=nqn.2026-12.io.nvmfd.test:nvmet-nbd
ASUB=nqn.2026-12.io.nvmfd.test:nvmet-auth
AHOST=nqn.2026-12.io.nvmfd.test:nvmet-auth-host
TPORT=24715		# nvmet in the guest, forwarded here
VM_TIMEOUT=400

. "$here/lib.sh"
. "$here/vm-run.sh"
vm_test_init linux-nvmet-host
for t in nbdinfo nbdcopy qemu-img fio timeout; do
	command -v $t >/dev/null 2>&1 ||
		_vm_skip "$t is not installed (apt-get install libnbd-bin" \
		    "qemu-utils fio)"
done
fio --enghelp 2>/dev/null | grep -qw nbd || _vm_skip "this fio has no nbd engine"

vm_pid=""
test_tmpdir linux-nvmet-host 60 || exit 99
AKEY=$(dhchap_gen_key 01) ACKEY=$(dhchap_gen_key 00) BADKEY=$(dhchap_gen_key) ||
    exit 99
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	if [ -n "$vm_pid" ]; then
		kill "$vm_pid" 2>/dev/null
		wait "$vm_pid" 2>/dev/null
	fi
}

# shellcheck disable=SC2317  # called by daemon_start_on_ports
write_config() {	# PORT: an (unused) target port; the host serves NBD
	cat >"$tmp/nvmfd.yaml" <<EOC
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems: []
host:
  nbd:
    socket: $tmp/nbd.sock
EOC
}
if ! daemon_start_on_ports write_config "$tmp/nvmfd.yaml" "$tmp/nvmfd.log" \
    "24716 24717 24718 24719"; then
	say "ERROR: $daemon_error"
	exit 99
fi
say "nvmfd (pid $daemon_pid) ready"
ln -s "$NVMFD" "$tmp/nvmfctl" || exit 99
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }
json() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }

say "booting the Linux target VM (guest/nvmet-nbd.sh)"
if ! start_vm_ready "$tmp/vm.out" --hostfwd "$TPORT" --timeout \
    "$VM_TIMEOUT" "$here/guest/nvmet-nbd.sh" "$SUB" "$TPORT" \
    $((VM_TIMEOUT - 60)) "$ASUB" "$AHOST" "$AKEY" "$ACKEY"; then
	fail "the nvmet guest never got ready: $(tail -20 "$tmp/vm.out")"
	test_finish
fi
say "nvmet ready in the guest, on 127.0.0.1:$TPORT"

# ------------------------------------------------------ discover, connect
timeout 60 "$tmp/nvmfctl" discover -t tcp -a 127.0.0.1 -s "$TPORT" --json \
    >"$tmp/disc.json" 2>&1 || fail "discover: $(cat "$tmp/disc.json")"
grep -q "\"subnqn\": \"$SUB\"" "$tmp/disc.json" &&
    say "ok: discover: nvmet's log lists $SUB" ||
    fail "discover: $SUB not listed: $(cat "$tmp/disc.json")"
# nvmet's log names the guest's own address, which only QEMU's user
# network knows: connect through the forwarded port instead.
ctl connect -t tcp -a 127.0.0.1 -s "$TPORT" -n "$SUB" -i 2 -k 5 \
    >"$tmp/connect.out" 2>&1 || fail "connect: $(cat "$tmp/connect.out")"
host_wait_state live 30 || fail "not live in 30 s: $(host_assoc error)"
ctl list-host --json >"$tmp/list.json"
U=$(json '[e["uri_unix"] for e in j["exports"] if e["nsid"] == 1][0]' \
    <"$tmp/list.json" 2>/dev/null)
[ -n "$U" ] && say "ok: connected to nvmet, export $U" ||
    { fail "no export: $(cat "$tmp/list.json")"; test_finish; }

# ------------------------------------------------------------- NBD clients
timeout 30 nbdinfo --json "$U" >"$tmp/info.json" || fail "nbdinfo $U"
[ "$(json 'j["exports"][0]["export-size"], \
    j["exports"][0]["block_size_minimum"]' <"$tmp/info.json")" = \
    "67108864 512" ] && say "ok: nbdinfo: 64 MiB, 512-byte blocks" ||
    fail "nbdinfo: $(cat "$tmp/info.json")"
head -c 16777216 /dev/urandom >"$tmp/rand.img"
timeout 120 nbdcopy "$tmp/rand.img" "$U" || fail "nbdcopy in"
timeout 120 nbdcopy --requests=16 "$U" "$tmp/out.img" || fail "nbdcopy out"
head -c 16777216 "$tmp/out.img" | cmp -s - "$tmp/rand.img" &&
    say "ok: nbdcopy of a random 16 MiB image in and out: same" ||
    fail "nbdcopy: what came out differs"
timeout 120 qemu-img compare -f raw -F raw "$tmp/out.img" "$U" >/dev/null &&
    say "ok: qemu-img compare through nbd+unix://" || fail "qemu-img compare"
PYTHONPATH=$here timeout 60 python3 - "$tmp/nbd.sock" "$SUB/1" \
    >"$tmp/zero.out" 2>&1 <<'EOF'
import sys
from nbd_client import Client, CMD_WRITE_ZEROES, CMD_TRIM, FLAG_NO_HOLE
c = Client(path=sys.argv[1])
c.handshake()
c.structured_reply()
c.go(sys.argv[2])
base = 40 << 20
c.write(base, b"\xee" * 65536)
assert c.cmd(CMD_WRITE_ZEROES, base, 16384, FLAG_NO_HOLE) == 0, "zeroes"
assert c.cmd(CMD_TRIM, base + 32768, 32768) == 0, "trim"
got = c.read(base, 65536)
want = bytes(16384) + b"\xee" * 16384 + bytes(32768)
assert got == want, "read back: %s" % [got[i:i + 16384].count(0)
                                        for i in range(0, 65536, 16384)]
print("WRITE_ZEROES and TRIM (Write Zeroes, Dataset Management) read back "
      "as zeroes")
EOF
[ $? = 0 ] && say "ok: $(cat "$tmp/zero.out")" ||
    fail "zeroes: $(cat "$tmp/zero.out")"
timeout 120 fio --name=nvmet --ioengine=nbd --uri="$U" --size=8M \
    --offset=32M --rw=randwrite --bs=4k --iodepth=16 --verify=crc32c \
    --do_verify=1 --verify_fatal=1 --output="$tmp/fio.out" \
    >/dev/null 2>&1 && say "ok: fio nbd engine randwrite 4k QD16, verify=crc32c" ||
    fail "fio: $(grep -E 'err|verify' "$tmp/fio.out" | head -3)"

ctl disconnect-all >/dev/null || fail "disconnect-all"

# ------------------------------------------- bidirectional DH-HMAC-CHAP
all_gone() {	# no association listed any more (10 s at most)
	for _ in $(seq 50); do
		[ -z "$(host_assoc state)" ] && return 0
		sleep 0.2
	done
	return 1
}
all_gone
ctl connect -t tcp -a 127.0.0.1 -s "$TPORT" -n "$ASUB" --hostnqn "$AHOST" \
    -S "$AKEY" -C "$ACKEY" -i 2 -k 5 >/dev/null || fail "connect (auth)"
if host_wait_state live 60; then
	AU="nbd+unix:///$ASUB/1?socket=$tmp/nbd.sock"
	head -c 4194304 "$tmp/rand.img" >"$tmp/a.img"
	timeout 60 nbdcopy "$tmp/a.img" "$AU" &&
	    timeout 60 nbdcopy "$AU" "$tmp/a.out" &&
	    cmp -n 4194304 "$tmp/a.img" "$tmp/a.out" &&
	    say "ok: bidirectional DH-HMAC-CHAP with nvmet: live, 4 MiB in" \
	    "and out" || fail "I/O through the authenticated association"
else
	fail "auth: not live in 60 s: $(host_assoc error)"
fi
ctl disconnect-all >/dev/null || fail "disconnect-all (auth)"
all_gone
ctl connect -t tcp -a 127.0.0.1 -s "$TPORT" -n "$ASUB" --hostnqn "$AHOST" \
    -S "$AKEY" -C "$BADKEY" -k 5 -c 1 >/dev/null ||
    fail "connect (wrong controller key)"
_e=
for _ in $(seq 100); do
	_e=$(host_assoc error)
	case $_e in *"does not match"*) break ;; esac
	sleep 0.2
done
case $_e in
*"does not match"*)
	say "ok: nvmet with a wrong controller key: refused ($_e)" ;;
*)	fail "wrong controller key: $(host_assoc state) \"$_e\"" ;;
esac
ctl disconnect-all >/dev/null || fail "disconnect-all (wrong key)"
kill "$vm_pid" 2>/dev/null
wait "$vm_pid" 2>/dev/null
vm_pid=""
test_finish
