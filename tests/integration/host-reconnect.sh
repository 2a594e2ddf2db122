#!/bin/sh
# host-reconnect.sh: the host role's failure handling, seen through NBD.
# One nvmfd is both the target and the host connected to it; removing and
# adding back the target's port makes the outages.  Checked:
#   - nvmfctl reconnect in the middle of a fio verify run: no error;
#   - an outage past fast_io_fail_tmo: NBD reads fail with EIO, promptly,
#     while the association keeps trying; it comes back by itself when
#     the port returns;
#   - past ctrl-loss-tmo the association fails; nvmfctl reconnect brings
#     it back with a new ctrl-loss-tmo, and its export serves again.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/host-reconnect.sh
# Exit status: 0 pass, 77 skip (a tool missing, no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-12.io.nvmfd.test:reconnect

. "$here/lib.sh"
need_nvmfd 77
need_python3
for t in nbdcopy fio timeout; do
	command -v $t >/dev/null 2>&1 && continue
	say "SKIP: $t is not installed (apt-get install libnbd-bin fio)"
	exit 77
done
if ! fio --enghelp 2>/dev/null | grep -qw nbd; then
	say "SKIP: this fio has no nbd engine"
	exit 77
fi
test_tmpdir host-reconnect 60 || exit 1

T0=$(date +%s)
say() { echo "host-reconnect: [$(($(date +%s) - T0))s] $*"; }
pass() { say "ok: $*"; }

# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	[ -n "${fpid:-}" ] && kill -KILL "$fpid" 2>/dev/null
}

# shellcheck disable=SC2317  # called by daemon_start_or_skip
setup() {	# PORT: the target there
	nbd_self_config "$1" "$NQN" "{nsid: 1, backend: ram, size: 16M}"
}
daemon_start_or_skip setup "24704 24705 24706 24707"
say "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port"

ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }
U1="nbd+unix:///$NQN/1?socket=$tmp/nbd.sock"

port_down() { ctl del-port 1 >/dev/null || fail "del-port"; }
port_up() {
	ctl add-port --id 1 --address 127.0.0.1 --port "$daemon_port" \
	    >/dev/null || fail "add-port"
}

# ------------------------------------------ reconnect during a verify run
ctl connect -t tcp -a 127.0.0.1 -s "$daemon_port" -n "$NQN" -k 1 -c 1 \
    -l 30 --fast_io_fail_tmo 2 >/dev/null || fail "connect"
host_wait_state live 10 && pass "connected: live" || fail "not live"
timeout 60 fio --name=rc --ioengine=nbd --uri="$U1" --size=8M \
    --rw=randwrite --bs=4k --iodepth=8 --rate_iops=600 --verify=crc32c \
    --do_verify=1 --verify_fatal=1 --output="$tmp/rc.fio" \
    >/dev/null 2>&1 &
fpid=$!
sleep 1
ctl reconnect -n "$NQN" >/dev/null || fail "nvmfctl reconnect"
say "nvmfctl reconnect in the middle of the run"
if wait "$fpid"; then
	pass "fio verify across nvmfctl reconnect: no error"
else
	fail "fio across reconnect: $(grep -E 'err|verify' "$tmp/rc.fio" |
	    head -3)"
fi
fpid=
host_wait_state live 10 || fail "not live after reconnect"
[ "$(host_assoc reconnects)" -ge 1 ] &&
    pass "list-host counts the reconnect" ||
    fail "reconnects: $(host_assoc reconnects)"
ctl reconnect no-such-association >/dev/null 2>&1 &&
    fail "reconnect of an unknown association succeeded" ||
    pass "reconnect of an unknown association: refused"

# ------------------------------------------------- past fast_io_fail_tmo
port_down
t0=$(date +%s)
timeout 30 nbdcopy "$U1" "$tmp/out.img" >"$tmp/copy.err" 2>&1
rc=$?
t1=$(date +%s)
# Well before ctrl-loss-tmo (30 s), with room for a loaded machine.
if [ $rc != 0 ] && [ $rc != 124 ] && [ $((t1 - t0)) -le 15 ]; then
	pass "outage past fast_io_fail_tmo (2 s): reads fail after" \
	    "$((t1 - t0)) s"
else
	fail "fast_io_fail_tmo: nbdcopy exit $rc after $((t1 - t0)) s"
fi
grep -q "Input/output error" "$tmp/copy.err" && pass "and the error is EIO" ||
    fail "not EIO: $(cat "$tmp/copy.err")"
[ "$(host_assoc state)" = reconnecting ] &&
    pass "the association keeps trying (reconnecting)" ||
    fail "state $(host_assoc state), not reconnecting"
port_up
host_wait_state live 10 && pass "the port is back: live again by itself" ||
    fail "not live after the port came back"
timeout 30 nbdcopy "$U1" "$tmp/out.img" && pass "and the export serves" ||
    fail "nbdcopy after the outage"

# ------------------------------------------------------ past ctrl-loss-tmo
ctl disconnect -n "$NQN" >/dev/null || fail "disconnect"
ctl connect -t tcp -a 127.0.0.1 -s "$daemon_port" -n "$NQN" -k 1 -c 1 \
    -l 2 >/dev/null || fail "connect again"
host_wait_state live 10 || fail "not live again"
port_down
host_wait_state failed 10 && pass "past ctrl-loss-tmo (2 s): failed" ||
    fail "not failed: $(host_assoc state)"
port_up
sleep 2
[ "$(host_assoc state)" = failed ] && pass "a failed association stays failed" ||
    fail "state $(host_assoc state)"
ctl reconnect -n "$NQN" >/dev/null || fail "nvmfctl reconnect (failed)"
host_wait_state live 10 && pass "nvmfctl reconnect: live again" ||
    fail "not live after reconnect: $(host_assoc error)"
timeout 30 nbdcopy "$U1" "$tmp/out.img" && pass "and the export serves" ||
    fail "nbdcopy after reconnect"

ctl disconnect-all >/dev/null || fail "disconnect-all"
test_finish
