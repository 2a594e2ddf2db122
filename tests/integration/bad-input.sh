#!/bin/sh
# bad-input.sh: start nvmfd on a private configuration and run bad_input.py
# (malformed and hostile NVMe/TCP input, plus correct-path sanity checks)
# against it.  Then stop the daemon with SIGTERM: it must exit 0 within 10 s,
# and its log must show no AddressSanitizer/UBSan/LeakSanitizer report.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/bad-input.sh
# Exit status: 0 pass, 77 skip (no daemon or no python3), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"

if [ -z "$NVMFD" ] || [ ! -x "$NVMFD" ]; then
	echo "SKIP: NVMFD is not set to the nvmfd binary"
	exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is not installed"
	exit 77
fi

OPEN_NQN=nqn.2026-11.io.nvmfd.test:open
CLOSED_NQN=nqn.2026-11.io.nvmfd.test:closed
ALLOWED_HOST=nqn.2026-11.io.nvmfd.test:allowed-host
INLINE=4096
MAXH2C=16384
QDEPTH=64
NS_SIZE=16777216

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nvmfd-bad-input.XXXXXX") || exit 1
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Sanitizer reports go to the log; keep them terse and make leaks fatal.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export ASAN_OPTIONS UBSAN_OPTIONS

write_config() {	# PORT
	cat >"$tmp/nvmfd.yaml" <<EOF
workers: 2
ports:
  - id: 1
    address: 127.0.0.1
    port: $1
    inline_data_size: $INLINE
    maxh2cdata: $MAXH2C
    max_queue_depth: $QDEPTH
    header_digest: true
    data_digest: true
subsystems:
  - nqn: $OPEN_NQN
    namespaces:
      - {nsid: 1, backend: ram, size: $NS_SIZE}
  - nqn: $CLOSED_NQN
    hosts: [$ALLOWED_HOST]
    namespaces:
      - {nsid: 1, backend: ram, size: $NS_SIZE}
EOF
}

# Start on the first free port of 24480-24489; wait for the "ready" line.
port=
for p in 24480 24481 24482 24483 24484 24485 24486 24487 24488 24489; do
	write_config "$p"
	: >"$tmp/nvmfd.log"
	"$NVMFD" -F -f "$tmp/nvmfd.yaml" >>"$tmp/nvmfd.log" 2>&1 &
	pid=$!
	i=0
	while [ $i -lt 100 ]; do	# 10 s
		if grep -q ' ready: ' "$tmp/nvmfd.log"; then
			port=$p
			break
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	[ -n "$port" ] && break
	if kill -0 "$pid" 2>/dev/null; then
		echo "FAIL: nvmfd did not log 'ready' within 10 s"
		cat "$tmp/nvmfd.log"
		exit 1
	fi
	wait "$pid" 2>/dev/null
	pid=
	if ! grep -qi 'in use' "$tmp/nvmfd.log"; then
		echo "FAIL: nvmfd did not start:"
		cat "$tmp/nvmfd.log"
		exit 1
	fi
done
if [ -z "$port" ]; then
	echo "SKIP: no free port in 24480-24489"
	exit 77
fi
echo "nvmfd (pid $pid) listening on 127.0.0.1:$port"

PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
run_py() {
	if command -v timeout >/dev/null 2>&1; then
		timeout 110 python3 "$@"
	else
		python3 "$@"
	fi
}

status=0
run_py "$here/bad_input.py" --addr 127.0.0.1 --port "$port" \
    --open-nqn "$OPEN_NQN" --closed-nqn "$CLOSED_NQN" \
    --allowed-host "$ALLOWED_HOST" --inline-data-size "$INLINE" \
    --maxh2cdata "$MAXH2C" --max-queue-depth "$QDEPTH" --ns-size "$NS_SIZE" ||
    status=1

# SIGTERM: the daemon must be gone, with status 0, within 10 s.
if kill -0 "$pid" 2>/dev/null; then
	kill -TERM "$pid"
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "FAIL: nvmfd still running 10 s after SIGTERM"
		status=1
	else
		wait "$pid"
		rc=$?
		if [ $rc -ne 0 ]; then
			echo "FAIL: nvmfd exited with status $rc after SIGTERM"
			status=1
		fi
	fi
else
	wait "$pid"
	echo "FAIL: nvmfd died during the test (status $?)"
	status=1
fi
pid=

if grep -q 'AddressSanitizer\|runtime error\|LeakSanitizer' "$tmp/nvmfd.log"; then
	echo "FAIL: sanitizer report in the daemon's log"
	status=1
fi
if [ $status -ne 0 ]; then
	echo "---- nvmfd log (last 200 lines)"
	tail -n 200 "$tmp/nvmfd.log"
fi
exit $status
