#!/bin/sh
# nbd.sh: nvmfd as an NVMe/TCP host serving remote namespaces over NBD.
# One nvmfd is the target (a file namespace and a read-only RAM one); a
# second connects to it with nvmfctl connect and exports both namespaces.
# Real NBD clients then check what they see: nbdinfo (list, size, block
# sizes), nbdcopy in and out, qemu-img convert and compare through
# nbd+unix://, fio's nbd engine with verify=crc32c; nbd_checks.py sends
# TRIM and WRITE_ZEROES (seen in the target's file) and bad input.  The
# target is stopped and restarted in the middle of a fio verify run (the
# run must end without errors), then stopped for longer than
# ctrl-loss-tmo (I/O must fail promptly).
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/nbd.sh
# Exit status: 0 pass, 77 skip (a tool missing, no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-11.io.nvmfd.test:nbd

. "$here/lib.sh"
need_nvmfd 77
need_python3
for t in nbdinfo nbdcopy qemu-img fio timeout; do
	command -v $t >/dev/null 2>&1 && continue
	say "SKIP: $t is not installed (apt-get install libnbd-bin qemu-utils fio)"
	exit 77
done
if ! fio --enghelp 2>/dev/null | grep -qw nbd; then
	say "SKIP: this fio has no nbd engine"
	exit 77
fi
# Socket paths must fit sun_path.
test_tmpdir nbd 60 || exit 1

T0=$(date +%s)
say() { echo "nbd: [$(($(date +%s) - T0))s] $*"; }
pass() { say "ok: $*"; }

tpid=
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	[ -n "$tpid" ] && kill -KILL "$tpid" 2>/dev/null
	[ -n "${fpid:-}" ] && kill -KILL "$fpid" 2>/dev/null
}

# The target: started again (same file) when the test restarts it.
target_start() {
	"$NVMFD" -F -f "$tmp/target.yaml" >>"$tmp/target.log" 2>&1 &
	tpid=$!
	i=0
	while [ $i -lt 100 ]; do
		[ "$(grep -c ' ready: ' "$tmp/target.log")" -gt "${1:-0}" ] &&
		    return 0
		kill -0 "$tpid" 2>/dev/null || { tpid=; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
target_stop() {
	kill -TERM "$tpid"
	wait_gone "$tpid" 10 || kill -KILL "$tpid"
	wait "$tpid" 2>/dev/null
	tpid=
}

# shellcheck disable=SC2317  # called by daemon_start_on_ports
setup() {	# PORT: the target there, the host on PORT+1, NBD on PORT+2
	tport=$1
	# A small MDTS: NBD requests above it are split.
	cat >"$tmp/target.yaml" <<EOF
mdts: 128K
control:
  socket: $tmp/target.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: file, path: $tmp/ns1.img, size: 32M}
      - {nsid: 2, backend: ram, size: 4M, readonly: true}
EOF
	cat >"$tmp/nvmfd.yaml" <<EOF
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $(($1 + 1))}
subsystems: []
host:
  nbd:
    socket: $tmp/nbd.sock
    address: 127.0.0.1
    port: $(($1 + 2))
EOF
	: >"$tmp/target.log"
	target_start && return 0
	grep -qi 'in use' "$tmp/target.log" && return 1
	cat "$tmp/target.log"
	return 1
}
daemon_start_on_ports setup "$tmp/nvmfd.yaml" "$tmp/nvmfd.log" \
    "24620 24623 24626 24629 24632" -d || {
	[ $? = 3 ] && { say "SKIP: $daemon_error"; exit 77; }
	say "FAIL: $daemon_error"
	exit 1
}
say "target (pid $tpid) on 127.0.0.1:$tport; host nvmfd (pid $daemon_pid)"

ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }
json() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }


# --------------------------------------------------------------- connect
ctl connect -t tcp -a 127.0.0.1 -s "$tport" -n "$NQN" -i 2 -Q 64 -k 2 \
    -c 1 -l 30 >/dev/null || fail "connect"
host_wait_state live 10 && pass "connected: live" || fail "not live in 10 s"
ctl list-host --json >"$tmp/list.json"
E1="$NQN/1"
E2="$NQN/2"
U1=$(json '[e["uri_unix"] for e in j["exports"] if e["nsid"] == 1][0]' \
    <"$tmp/list.json")
U2=$(json '[e["uri_unix"] for e in j["exports"] if e["nsid"] == 2][0]' \
    <"$tmp/list.json")
T1=$(json '[e["uri_tcp"] for e in j["exports"] if e["nsid"] == 1][0]' \
    <"$tmp/list.json")
[ -n "$U1" ] && [ -n "$U2" ] && [ -n "$T1" ] ||
    fail "list-host --json gives no export URIs"
say "exports: $U1 $T1"

# --------------------------------------------------------------- nbdinfo
timeout 20 nbdinfo --list "nbd+unix:///?socket=$tmp/nbd.sock" \
    >"$tmp/info.txt" 2>&1 || fail "nbdinfo --list"
grep -q "export=\"$E1\"" "$tmp/info.txt" &&
    grep -q "export=\"$E2\"" "$tmp/info.txt" &&
    pass "nbdinfo --list shows both exports" ||
    fail "nbdinfo --list: $(cat "$tmp/info.txt")"
timeout 20 nbdinfo --json "$U1" >"$tmp/info1.json" || fail "nbdinfo $U1"
[ "$(json 'j["exports"][0]["export-size"]' <"$tmp/info1.json")" = 33554432 ] &&
    pass "nbdinfo: size 32 MiB" || fail "nbdinfo: wrong size"
[ "$(json 'j["exports"][0]["block_size_minimum"]' <"$tmp/info1.json")" = 512 ] &&
    pass "nbdinfo: minimum block size 512" || fail "nbdinfo: block size"
timeout 20 nbdinfo --json "$T1" >"$tmp/info1t.json" &&
    pass "nbdinfo through TCP ($T1)" || fail "nbdinfo $T1"
timeout 20 nbdinfo --json "$U2" >"$tmp/info2.json" || fail "nbdinfo $U2"
[ "$(json 'j["exports"][0]["is_read_only"]' <"$tmp/info2.json")" = True ] &&
    pass "nbdinfo: namespace 2 is read-only" || fail "nbdinfo: not read-only"

# ------------------------------------ namespace changes: AER, rescan
tctl() { "$tmp/nvmfctl" -s "$tmp/target.sock" "$@"; }
has_export() {	# NAME SECONDS: listed within SECONDS (or, with !, gone)
	end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -le $end ]; do
		ctl list-host --json | grep -q "\"name\": \"$1\"" && return 0
		sleep 0.2
	done
	return 1
}
tctl add-ns "$NQN" --nsid 3 --backend ram --size 2M >/dev/null ||
    fail "add-ns on the target"
has_export "$NQN/3" 5 && pass "a namespace added on the target is exported" ||
    fail "no export for the new namespace"
tctl del-ns "$NQN" 3 >/dev/null || fail "del-ns on the target"
sleep 1
has_export "$NQN/3" 0 && fail "the removed namespace is still exported" ||
    pass "a namespace removed on the target is no longer exported"

# ------------------------------------------------- nbdcopy and qemu-img
head -c 33554432 /dev/urandom >"$tmp/rand.img"
timeout 60 nbdcopy "$tmp/rand.img" "$U1" || fail "nbdcopy in"
timeout 60 nbdcopy "$U1" "$tmp/out.img" || fail "nbdcopy out"
cmp -s "$tmp/rand.img" "$tmp/out.img" && pass "nbdcopy in and out: same" ||
    fail "nbdcopy: what came out differs"
cmp -s "$tmp/rand.img" "$tmp/ns1.img" && pass "and the target's file holds it" ||
    fail "the target's file differs"
head -c 33554432 /dev/urandom >"$tmp/q.raw"
timeout 60 qemu-img convert -n -f raw -O raw "$tmp/q.raw" "$U1" ||
    fail "qemu-img convert"
timeout 60 qemu-img compare -f raw -F raw "$tmp/q.raw" "$U1" >/dev/null &&
    pass "qemu-img convert and compare through nbd+unix://" ||
    fail "qemu-img compare"

# ------------------------------------------------------------------ fio
fio_run() {	# NAME ARGS...
	n=$1
	shift
	timeout 120 fio --name="$n" --ioengine=nbd --uri="$U1" --size=16M \
	    --verify=crc32c --do_verify=1 --verify_fatal=1 "$@" \
	    --output="$tmp/$n.fio" >/dev/null 2>&1
}
fio_run randw --rw=randwrite --bs=4k --iodepth=32 &&
    pass "fio randwrite 4k QD32, verify=crc32c" ||
    fail "fio randwrite: $(grep -E 'err|verify' "$tmp/randw.fio" | head -3)"
fio_run seqw --rw=write --bs=128k --iodepth=8 &&
    pass "fio write 128k QD8, verify=crc32c" ||
    fail "fio write: $(grep -E 'err|verify' "$tmp/seqw.fio" | head -3)"
fio_run bigw --rw=randwrite --bs=1m --iodepth=4 &&
    pass "fio randwrite 1M QD4 (split at MDTS 128K), verify=crc32c" ||
    fail "fio 1M: $(grep -E 'err|verify' "$tmp/bigw.fio" | head -3)"

# ------------------------------------------------ TRIM, zeroes, bad input
timeout 120 python3 "$here/nbd_checks.py" "$tmp/nbd.sock" "$E1" "$E2" \
    "$tmp/ns1.img" >"$tmp/checks.out" 2>&1
rc=$?
sed 's/^/  /' "$tmp/checks.out"
[ $rc = 0 ] && pass "nbd_checks.py" || fail "nbd_checks.py (exit $rc)"
# Each refusal has its line in the host's log.
for l in "unsupported client flags; closing" "bad option magic; closing" \
    "option too long; closing" "bad NBD_OPT_EXPORT_NAME; closing" \
    "bad request magic; closing" "refused: error 0x80000009" \
    "refused, error 22" "refused, error 28" "refused, error 1"; do
	grep -q "nbd: unix: .*$l" "$tmp/nvmfd.log" || fail "no log line: $l"
done
kill -0 "$daemon_pid" || fail "the host daemon died"

# ------------------------------------------- target restart during a run
# Rate-limited so that the run spans the outage; the data is in the
# target's file, so the verify phase sees what was written before.
timeout 120 fio --name=outage --ioengine=nbd --uri="$U1" --size=8M \
    --rw=randwrite --bs=4k --iodepth=8 --rate_iops=800 --verify=crc32c \
    --do_verify=1 --verify_fatal=1 --output="$tmp/outage.fio" \
    >/dev/null 2>&1 &
fpid=$!
sleep 1.5
target_stop
say "target stopped mid-run"
sleep 2
target_start 1 || fail "target restart"
say "target restarted"
if wait "$fpid"; then
	pass "fio verify across a target restart: no error"
else
	fail "fio across the restart: $(grep -E 'err|verify' "$tmp/outage.fio" | head -3)"
fi
fpid=
grep -q "reconnecting\|Connection refused\|closed by the controller" \
    "$tmp/nvmfd.log" && pass "the host saw the outage and reconnected" ||
    fail "no outage in the host's log"
host_wait_state live 10 || fail "not live again"

# ---------------------------------------------------- past ctrl-loss-tmo
ctl disconnect -n "$NQN" >/dev/null || fail "disconnect"
sleep 0.5
timeout 10 nbdinfo --list "nbd+unix:///?socket=$tmp/nbd.sock" 2>&1 |
    grep -q "export=" && fail "exports left after disconnect" ||
    pass "disconnect: exports gone"
ctl connect -t tcp -a 127.0.0.1 -s "$tport" -n "$NQN" -k 1 -c 1 -l 3 \
    >/dev/null || fail "connect again"
host_wait_state live 10 || fail "not live again after connect"
target_stop
t0=$(date +%s)
timeout 30 nbdcopy "$U1" "$tmp/lost.img" >/dev/null 2>&1
rc=$?
t1=$(date +%s)
if [ $rc != 0 ] && [ $rc != 124 ] && [ $((t1 - t0)) -ge 2 ] &&
    [ $((t1 - t0)) -le 15 ]; then
	pass "past ctrl-loss-tmo (3 s): I/O held, then fails after $((t1 - t0)) s"
else
	fail "past ctrl-loss-tmo: nbdcopy exit $rc after $((t1 - t0)) s"
fi
host_wait_state failed 5 && pass "association failed" || fail "not failed"
ctl disconnect-all >/dev/null || fail "disconnect-all"

test_finish
