#!/bin/sh
# resv.sh: NVMe reservations between three hosts of nvmf_client.py
# (resv.py), then persist through power loss: nvmfd is killed with SIGKILL
# and started again on the same state_dir, and the registrations and the
# reservation must be back.
#
# Run by "make check" with NVMFD and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/resv.sh
# Exit status: 0 pass, 77 skip (no daemon, no python3 or no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"

. "$here/lib.sh"
need_nvmfd 77
need_python3

NQN=nqn.2026-11.io.nvmfd.test:resv
test_tmpdir resv 60 || exit 1

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT
	ram_target_config "$1" "$NQN" "state_dir: $tmp/state
workers: 2"
}

run_py() {
	if command -v timeout >/dev/null 2>&1; then
		timeout 60 python3 "$here/resv.py" "$@"
	else
		python3 "$here/resv.py" "$@"
	fi
}

daemon_start_or_skip write_config "24660 24661 24662"
say "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port"
run_py --port "$daemon_port" --nqn "$NQN" --phase first || fail "first run"
ls "$tmp/state"/*.resv >/dev/null 2>&1 || fail "no state file with PTPL on"

# A crash, not a shutdown: the state must already be on disk.
daemon_kill
mv "$tmp/nvmfd.log" "$tmp/nvmfd-1.log"
if daemon_start "$tmp/nvmfd.yaml" "$tmp/nvmfd.log"; then
	grep -q 'restored from' "$tmp/nvmfd.log" ||
	    fail "the restart did not log the restored state"
	run_py --port "$daemon_port" --nqn "$NQN" --phase restarted ||
	    fail "after the restart"
	ls "$tmp/state"/*.resv >/dev/null 2>&1 &&
	    fail "state file left with PTPL off"
else
	fail "restart: $daemon_error"
fi
log_has_sanitizer_report "$tmp/nvmfd-1.log" >/dev/null &&
    fail "sanitizer report in the first daemon's log"
test_finish
