#!/bin/sh
# churn.sh: 10,000 connect/disconnect cycles leave nvmfd as they found it.
# Each cycle opens a connection, does ICReq and an admin Connect (every
# tenth also enables the controller and opens an I/O queue), and closes.
# After a first 1,000 cycles to warm up (the allocator, what is made on
# first use), the daemon's open file descriptors must stay where they are
# and its RSS may grow by at most 2 MiB over the next 9,000; then it must
# serve verified I/O and exit 0.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/churn.sh
# Exit status: 0 pass, 77 skip (no daemon, no python3 or no free port),
# 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-11.io.nvmfd.test:churn

. "$here/lib.sh"
need_nvmfd 77
need_python3
test_tmpdir churn || exit 1

pass() { echo "ok: $*"; }

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT
	ram_target_config "$1" "$NQN" "workers: 2"
}

daemon_start_or_skip write_config \
    "24610 24611 24612 24613 24614 24615 24616 24617 24618 24619"
echo "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port"

fds() { ls "/proc/$daemon_pid/fd" 2>/dev/null | wc -l; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$daemon_pid/status"; }

TIMEOUT=""
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout -k 5 300"
cycles() {	# N
	# shellcheck disable=SC2086  # $TIMEOUT is empty or three words
	PYTHONPATH="$here" $TIMEOUT python3 - "$daemon_port" "$NQN" "$1" <<'PY'
import sys
import nvmf_client as nc
port, nqn, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(n):
    if i % 10 == 0:
        a = nc.open_admin("127.0.0.1", port, nqn)
        a.set_num_queues(1)
        q = nc.open_io(a, "127.0.0.1", port, nqn)
        q.close()
        a.close()
    else:
        h = nc.Host("127.0.0.1", port)
        h.icreq()
        if not h.connect(nqn).ok:
            sys.exit("Connect failed at cycle %d" % i)
        h.close()
PY
}
settle() {	# the last closes reach the daemon
	i=0
	while [ $i -lt 50 ] && [ "$(fds)" -gt "$1" ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

fd0=$(fds)
cycles 1000 || fail "the first 1000 cycles failed"
settle "$fd0"
fd1=$(fds) rss1=$(rss)
t0=$(date +%s)
cycles 9000 || fail "the next 9000 cycles failed"
settle "$fd1"
fd2=$(fds) rss2=$(rss)
echo "open fds $fd0 -> $fd1 -> $fd2, VmRSS $rss1 -> $rss2 KiB," \
    "9000 cycles in $(($(date +%s) - t0)) s"
# The warm-up may open what is made on first use (once); after it, none.
[ "$fd2" -le "$fd1" ] &&
	pass "file descriptors flat after the warm-up: $fd0 -> $fd1 -> $fd2" ||
	fail "file descriptors grew: $fd0 -> $fd1 -> $fd2"
[ $((rss2 - rss1)) -le 2048 ] &&
	pass "RSS flat over 9000 cycles: $rss1 -> $rss2 KiB" ||
	fail "RSS grew by $((rss2 - rss1)) KiB over 9000 cycles"
daemon_serves "after the churn"

test_finish
