#!/bin/sh
# fd-limit.sh: nvmfd out of file descriptors.  Started under an open-file
# limit of 48 with max_connections 1024, it must warn at start that the
# limit is too low; while 80 idle connections are held open it must shed
# the ones it has no descriptor for (close them, log it) instead of
# spinning on its listener: its CPU time over 2 s stays under 20% of a
# core.  Once they are gone it must serve verified I/O again and exit 0
# on SIGTERM.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/fd-limit.sh
# Exit status: 0 pass, 77 skip (no daemon, no python3 or no free port),
# 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-11.io.nvmfd.test:fdlimit
LIMIT=48
HOLD=80

. "$here/lib.sh"
need_nvmfd 77
need_python3
test_tmpdir fd-limit || exit 1

pass() { echo "ok: $*"; }

# The daemon runs under the limit; exec keeps its pid.
real_nvmfd=$NVMFD
cat >"$tmp/nvmfd-limited" <<EOF
#!/bin/sh
ulimit -n $LIMIT || exit 1
exec "$real_nvmfd" "\$@"
EOF
chmod +x "$tmp/nvmfd-limited"
NVMFD=$tmp/nvmfd-limited

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT
	ram_target_config "$1" "$NQN" "workers: 1
max_connections: 1024"
}

daemon_start_or_skip write_config \
    "24550 24551 24552 24553 24554 24555 24556 24557 24558 24559"
echo "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port, open files <= $LIMIT"
if grep -q "open-file limit $LIMIT is below max_connections 1024" \
    "$tmp/nvmfd.log"; then
	pass "start-up warns about the open-file limit"
else
	fail "no warning about the open-file limit"
fi

# Hold HOLD idle connections (no ICReq) for 4 s; measure the middle 2 s.
TIMEOUT=""
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout -k 5 30"
# shellcheck disable=SC2086  # $TIMEOUT is empty or three words
$TIMEOUT python3 - "$daemon_port" "$HOLD" >"$tmp/hold.out" 2>&1 <<'EOF' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    socks.append(s)
print("connected", len(socks), flush=True)
time.sleep(4)
for s in socks:
    s.close()
EOF
hold_pid=$!
i=0
until grep -q connected "$tmp/hold.out" || [ $i -ge 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep 0.5
t0=$(daemon_cpu_ticks)
sleep 2
t1=$(daemon_cpu_ticks)
wait "$hold_pid" || fail "holding $HOLD connections: $(tail -1 "$tmp/hold.out")"
hz=$(getconf CLK_TCK)
if [ $((t1 - t0)) -le $((hz * 2 / 5)) ]; then
	pass "$HOLD connections held: $((t1 - t0)) clock ticks of $hz/s in 2 s"
else
	fail "busy while out of descriptors: $((t1 - t0)) clock ticks of" \
	    "$hz/s in 2 s"
fi
if grep -q 'out of file descriptors: connection refused' "$tmp/nvmfd.log"
then
	pass "connections beyond the limit were shed and logged"
else
	fail "no connection was shed"
fi

# Descriptors free again: the target serves.
sleep 0.5
daemon_serves "again, descriptors free"

test_finish
