#!/bin/sh
# log-flood.sh: a flood of bad connections cannot fill the log.  2000
# connections that each send a malformed PDU (every one would log two
# lines) arrive within a few seconds; the daemon's log may grow by at most
# the peer-line burst (200) plus 20 lines a second, must say how many lines
# it left out, and the daemon must then serve verified I/O and exit 0 on
# SIGTERM.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/log-flood.sh
# Exit status: 0 pass, 77 skip (no daemon, no python3 or no free port),
# 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-11.io.nvmfd.test:flood
FLOOD=2000

. "$here/lib.sh"
need_nvmfd 77
need_python3
test_tmpdir log-flood || exit 1

pass() { echo "ok: $*"; }

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT
	ram_target_config "$1" "$NQN" "workers: 1
max_connections: 4096"
}

daemon_start_or_skip write_config \
    "24600 24601 24602 24603 24604 24605 24606 24607 24608 24609"
echo "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port"
before=$(wc -l <"$tmp/nvmfd.log")
t0=$(date +%s)
TIMEOUT=""
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout -k 5 60"
# An ICReq with PFV 1: the daemon answers C2HTermReq, logs, closes.
# shellcheck disable=SC2086  # $TIMEOUT is empty or three words
$TIMEOUT python3 - "$daemon_port" "$FLOOD" <<'PY' || fail "the flood itself failed"
import socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
bad = struct.pack("<BBBBIHBBI", 0, 0, 128, 0, 128, 1, 0, 0, 0).ljust(128, b"\0")
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(bad)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()
PY
sleep 0.5	# the daemon may still be working through the last ones
secs=$(($(date +%s) - t0 + 1))
lines=$(($(wc -l <"$tmp/nvmfd.log") - before))
max=$((200 + 20 * secs + 10))
if [ "$lines" -le "$max" ]; then
	pass "$FLOOD bad connections in ${secs} s added $lines log lines (at most $max)"
else
	fail "$FLOOD bad connections in ${secs} s added $lines log lines, more than $max"
fi
if grep -q 'lines about peers left out' "$tmp/nvmfd.log"; then
	pass "the log says lines were left out: $(grep 'lines about peers left out' "$tmp/nvmfd.log" | tail -1 | sed 's/^[^ ]* nvmfd: //')"
else
	# It says so with the next line that passes: make one.
	sleep 1
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $daemon_port)).close()"
	sleep 0.5
	grep -q 'lines about peers left out' "$tmp/nvmfd.log" ||
		fail "no line says how many were left out"
fi
daemon_serves "after the flood"

test_finish
