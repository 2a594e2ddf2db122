#!/bin/sh
# nbd-lanes.sh: NBD clients wait for an I/O queue, never get EIO for want
# of one.  One nvmfd is the target and the host; it runs two workers and
# asks for two I/O queues (two lanes); the target grants one
# (max_io_queues: 1).  The target's port goes away, clients connect to
# the export meanwhile (GO succeeds: the export stays while the
# association reconnects) and write; then the port comes back and the
# association with its one queue.  Every client's writes and reads
# must succeed: a client is placed on a lane that has (or last had) a
# queue, never on one that will have none.  Then more clients at once
# than there are queues: all succeed, and what they wrote reads back.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/nbd-lanes.sh
# Exit status: 0 pass, 77 skip (a tool missing, no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-12.io.nvmfd.test:nbd-lanes
NCLIENTS=6

. "$here/lib.sh"
need_nvmfd 77
need_python3
command -v timeout >/dev/null 2>&1 || { say "SKIP: no timeout"; exit 77; }
need_nbd_python
test_tmpdir nbd-lanes 60 || exit 1

T0=$(date +%s)
say() { echo "nbd-lanes: [$(($(date +%s) - T0))s] $*"; }
pass() { say "ok: $*"; }

cpids=
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	for p in $cpids; do kill -KILL "$p" 2>/dev/null; done
}

# shellcheck disable=SC2317  # called by daemon_start_or_skip
setup() {	# PORT: the target there; the same nvmfd is the host
	cat >"$tmp/nvmfd.yaml" <<EOF
workers: 2
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    max_io_queues: 1
    namespaces:
      - {nsid: 1, backend: ram, size: 16M}
host:
  nbd:
    socket: $tmp/nbd.sock
EOF
}
daemon_start_or_skip setup "24810 24811"
say "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port"

ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }
U="nbd+unix:///$NQN/1?socket=$tmp/nbd.sock"

ctl connect -t tcp -a 127.0.0.1 -s "$daemon_port" -n "$NQN" -i 2 -k 2 \
    -c 1 -l 60 >/dev/null || fail "connect"
host_wait_state live 10 || { fail "not live in 10 s"; test_finish; }
[ "$(host_assoc io_queues)" = 1 ] &&
    pass "asked for 2 I/O queues on 2 workers, the target granted 1" ||
    fail "I/O queues: $(host_assoc io_queues), expected 1"

# One client: connect, write its MiB, read it back, compare.  Exit 0, or
# 1 with the error (EIO) on stderr.
cat >"$tmp/client.py" <<'EOF'
import sys
import nbd

uri, i = sys.argv[1], int(sys.argv[2])
h = nbd.NBD()
h.connect_uri(uri)
data = bytes([(i * 37 + k) & 0xff for k in range(256)]) * 4096
for off in range(0, len(data), 65536):
    h.pwrite(data[off:off + 65536], (i << 20) + off)
h.flush()
if h.pread(len(data), i << 20) != data:
    sys.exit("client %d: what was read differs" % i)
h.shutdown()
EOF
run_clients() {	# FIRST COUNT: clients FIRST..FIRST+COUNT-1, in the background
	cpids=
	c=$1
	while [ "$c" -lt $(($1 + $2)) ]; do
		timeout 60 "$NBDPY" "$tmp/client.py" "$U" "$c" \
		    >"$tmp/client$c.out" 2>&1 &
		cpids="$cpids $!"
		c=$((c + 1))
	done
}
wait_clients() {	# NAME: wait for them all; count the failures
	bad=0
	for p in $cpids; do
		wait "$p" || bad=$((bad + 1))
	done
	cpids=
	eio=$(cat "$tmp"/client*.out | grep -c 'Input/output error\|EIO')
	if [ "$bad" = 0 ]; then
		pass "$1: every client's writes and reads succeeded"
	else
		fail "$1: $bad clients failed, $eio with EIO:" \
		    "$(cat "$tmp"/client*.out | head -5)"
	fi
	rm -f "$tmp"/client*.out
}

# ---------------------------------- clients that come during an outage
ctl del-port 1 >/dev/null || fail "del-port"
host_wait_state reconnecting 10 || fail "not reconnecting"
say "target port down; $NCLIENTS clients connect meanwhile"
run_clients 0 $NCLIENTS
# They are in: GO answered, their writes held.
i=0
while [ $i -lt 100 ]; do
	n=$(ctl list-host --json | python3 -c 'import json, sys
print(sum(e["clients"] for e in json.load(sys.stdin)["exports"]))')
	[ "$n" -ge $NCLIENTS ] && break
	sleep 0.1
	i=$((i + 1))
done
[ "$n" -ge $NCLIENTS ] && pass "$n clients connected during the outage" ||
    fail "only $n clients connected during the outage"
ctl add-port --id 1 --address 127.0.0.1 --port "$daemon_port" >/dev/null ||
    fail "add-port"
say "target port up again"
wait_clients "$NCLIENTS clients across the outage"
[ "$(host_assoc io_queues)" = 1 ] || fail "not 1 I/O queue again"

# ---------------------------------------- more clients than queues
run_clients 0 $((NCLIENTS * 2))
wait_clients "$((NCLIENTS * 2)) clients at once on 1 I/O queue"
grep -q "host .*: .*failed" "$tmp/nvmfd.log" &&
    say "host log: $(grep "host .*: .*failed" "$tmp/nvmfd.log" | head -3)"

ctl disconnect-all >/dev/null || fail "disconnect-all"
test_finish
