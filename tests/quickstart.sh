#!/bin/sh
# The README's Quick start as a reader runs it: its set-up and build line
# exactly as written, then the nvmfd it built on the built-in default
# configuration (a RAM namespace on 127.0.0.1:4420), checked with a short
# perf run and stopped with SIGTERM.  run-all.sh runs this before and after
# its own builds, so the README's two commands are known to work one after
# the other, in either order, in one checkout.
#
# Exit: 0 pass, 1 fail, 77 skip (port 4420 is taken on this machine: the
# build was still checked).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
NQN=nqn.2026-11.io.nvmfd:ram0

say() { echo "quickstart: $*"; }

# The first line of the first sh block under "## Quick start".
cmd=$(sed -n '/^## Quick start/,/^## [^Q]/p' README.md |
    sed -n '/^```sh$/,/^```$/p' | sed '/^```/d' | head -n 1)
run=" && build/nvmfd -F"
case $cmd in
*"$run") ;;
*)
	say "FAIL: the README's Quick start does not end in '$run': $cmd"
	exit 1 ;;
esac
setup=${cmd%"$run"}
# run-all.sh's NVMFD_SKIP_APT=1 (no package index here): from autoreconf on.
[ "${NVMFD_SKIP_APT:-0}" = 1 ] && setup="autoreconf${setup#*&& autoreconf}"

log=$(mktemp -d "${TMPDIR:-/tmp}/nvmfd-quickstart.XXXXXX") || exit 1
trap 'rm -rf "$log"' EXIT
say "$setup"
if ! sh -c "$setup" >"$log/setup.log" 2>&1; then
	tail -n 40 "$log/setup.log"
	say "FAIL: the Quick start's set-up and build failed"
	exit 1
fi
[ -x build/nvmfd ] || { say "FAIL: no build/nvmfd after the build"; exit 1; }

# Its nvmfd, on the built-in default configuration.  A separate control
# socket keeps it clear of an nvmfd that may run on this machine.
build/nvmfd -F -s "$log/ctl.sock" >"$log/nvmfd.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 100 ] && ! grep -q ' ready: built-in default' "$log/nvmfd.log"; do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
if ! kill -0 "$pid" 2>/dev/null; then
	wait "$pid"
	cat "$log/nvmfd.log"
	if grep -q 'Address already in use' "$log/nvmfd.log"; then
		say "SKIP: port 4420 is in use here; the build passed"
		exit 77
	fi
	say "FAIL: build/nvmfd -F exited"
	exit 1
fi
status=0
if ! build/nvmfd perf -a 127.0.0.1 -s 4420 -n "$NQN" -q 4 -w randread \
    -t 1 >"$log/perf.log" 2>&1; then
	cat "$log/perf.log"
	say "FAIL: perf against the default configuration"
	status=1
fi
kill -TERM "$pid"
wait "$pid"
rc=$?
[ $rc = 0 ] || { say "FAIL: nvmfd exited $rc on SIGTERM"; status=1; }
if [ $status != 0 ]; then
	cat "$log/nvmfd.log"
	exit 1
fi
say "PASS: $(head -c 200 "$log/perf.log" | tail -n 1)"
exit 0
