#!/bin/sh
# fused.sh: fused Compare and Write (fused.py) on a RAM and a file
# namespace: two queues incrementing a counter with it lose no increment,
# plain writes racing it from another queue never leave a mix (on one
# block, reads racing both see one write whole), and bad pairs get their
# statuses.
#
# Run by "make check" with NVMFD and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/fused.sh
# Exit status: 0 pass, 77 skip (no daemon, no python3 or no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"

. "$here/lib.sh"
need_nvmfd 77
need_python3

NQN=nqn.2026-11.io.nvmfd.test:fused
test_tmpdir fused 60 || exit 1

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {
	ram_target_config "$1" "$NQN" "workers: 2" &&
	    echo "      - {nsid: 2, backend: file, path: $tmp/ns2.img, size: 4M}" \
	    >>"$tmp/nvmfd.yaml"
}

daemon_start_or_skip write_config "24663 24664"
say "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port"
if command -v timeout >/dev/null 2>&1; then
	timeout 120 python3 "$here/fused.py" --port "$daemon_port" --nqn "$NQN" \
	    --nsid 1 --nsid 2
else
	python3 "$here/fused.py" --port "$daemon_port" --nqn "$NQN" \
	    --nsid 1 --nsid 2
fi || fail "fused.py"
test_finish
