#!/bin/sh
# poll.sh: adaptive polling (poll_us), on by default.  nvmfd with its default
# poll_us (nothing set in the file) must say its workers poll, serve
# verified writes and reads at queue depth 1 and 8 on two workers, go back
# to sleep once the load stops (its CPU time over 2 idle seconds stays
# under 10% of a core, where a worker that never stopped polling takes
# 100%), and still stop within 10 s of SIGTERM with status 0.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/poll.sh
# Exit status: 0 pass, 77 skip (no daemon or no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-11.io.nvmfd.test:poll

. "$here/lib.sh"
need_nvmfd 77
test_tmpdir poll || exit 1

pass() { echo "ok: $*"; }

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT
	ram_target_config "$1" "$NQN" "workers: 2"
}

daemon_start_or_skip write_config \
    "24540 24541 24542 24543 24544 24545 24546 24547 24548 24549"
echo "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port"
grep -q ' ready: .*(polling)' "$tmp/nvmfd.log" ||
    fail "the ready line does not say the workers poll"

TIMEOUT=""
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout -k 5 30"
perf() {	# perf NAME ARGS...: one verified run, which must do I/O
	name=$1
	shift
	# shellcheck disable=SC2086  # $TIMEOUT is empty or three words
	if ! $TIMEOUT "$NVMFD" perf -a 127.0.0.1 -s "$daemon_port" -n "$NQN" \
	    -v -j "$@" >"$tmp/$name.json" 2>"$tmp/$name.err"; then
		fail "$name: perf failed: $(tail -1 "$tmp/$name.err")"
		return
	fi
	ios=$(sed -n 's/.*"ios":\([0-9]*\).*/\1/p' "$tmp/$name.json")
	if [ "${ios:-0}" -gt 0 ]; then
		pass "$name: $ios verified I/Os"
	else
		fail "$name: no I/O done"
	fi
}
# The 4 MiB namespace is written whole before it is read back.
perf write -q 1 -o 131072 -w write -t 1
perf randread_qd1 -q 1 -w randread -t 1
perf randrw_qd8 -c 2 -q 8 -w randrw -t 1

# Idle: the workers must sleep again once the window has passed.
if [ -r "/proc/$daemon_pid/stat" ]; then
	sleep 0.5
	t0=$(daemon_cpu_ticks)
	sleep 2
	t1=$(daemon_cpu_ticks)
	hz=$(getconf CLK_TCK)
	if [ $((t1 - t0)) -le $((hz * 2 / 10)) ]; then
		pass "idle after the load: $((t1 - t0)) clock ticks of $hz/s in 2 s"
	else
		fail "still busy after the load: $((t1 - t0)) clock ticks" \
		    "of $hz/s in 2 s"
	fi
fi

test_finish
