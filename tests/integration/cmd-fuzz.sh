#!/bin/sh
# cmd-fuzz.sh: nvmfd takes random commands over the network and goes on
# serving.  `nvmfd perf --fuzz SEED` sends random but well-framed commands
# (opcodes, CDWs, NSIDs, SGL descriptors, lengths) on the admin queue and
# two I/O queues of a subsystem with a RAM and a file namespace, on two
# workers, for CMD_FUZZ_SECONDS (default 10) at CMD_FUZZ_RATE commands a
# second (default 2000).  Every command must get exactly one completion,
# no queue may end in a protocol violation, and afterwards nvmfd must
# serve a verified perf run on both namespaces, exit 0 and (under ASan)
# report nothing.  CMD_FUZZ_SEED picks the seed (default: the date, so
# runs differ from day to day; the seed is printed to repeat a run).
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/cmd-fuzz.sh
# Exit status: 0 pass, 77 skip (no daemon or no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-11.io.nvmfd.test:cmd-fuzz
DURATION=${CMD_FUZZ_SECONDS:-10}
RATE=${CMD_FUZZ_RATE:-2000}
SEED=${CMD_FUZZ_SEED:-$(date +%Y%m%d)}

. "$here/lib.sh"
need_nvmfd 77
test_tmpdir cmd-fuzz || exit 1

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT
	cat >"$tmp/nvmfd.yaml" <<EOF
workers: 2
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: ram, size: 8M}
      - {nsid: 2, backend: file, path: $tmp/ns2.img, size: 8M}
EOF
}

daemon_start_or_skip write_config "24685 24686 24687 24688 24689"
say "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port; seed $SEED"

TIMEOUT=""
command -v timeout >/dev/null 2>&1 &&
    TIMEOUT="timeout -k 5 $((DURATION + 60))"
# shellcheck disable=SC2086  # $TIMEOUT is empty or three words
if $TIMEOUT "$NVMFD" perf -a 127.0.0.1 -s "$daemon_port" -n "$NQN" -c 2 \
    -t "$DURATION" --fuzz "$SEED" --rate "$RATE" -j >"$tmp/fuzz.json" \
    2>"$tmp/fuzz.err"; then
	say "ok: $(cat "$tmp/fuzz.json")"
else
	fail "perf --fuzz (seed $SEED): $(tail -3 "$tmp/fuzz.err" |
	    tr '\n' ' ') $(cat "$tmp/fuzz.json")"
fi
grep -q '"sent":[1-9]' "$tmp/fuzz.json" || fail "no command was sent"
kill -0 "$daemon_pid" 2>/dev/null || fail "nvmfd died"

daemon_serves "the RAM namespace after the fuzzing"
# shellcheck disable=SC2086
if $TIMEOUT "$NVMFD" perf -a 127.0.0.1 -s "$daemon_port" -n "$NQN" -N 2 \
    -q 4 -o 4096 -w write -t 1 -v -j >"$tmp/perf2.json" 2>"$tmp/perf2.err"
then
	say "ok: serves the file namespace: $(sed -n \
	    's/.*"ios":\([0-9]*\).*/\1/p' "$tmp/perf2.json") verified writes"
else
	fail "perf on the file namespace: $(tail -1 "$tmp/perf2.err")"
fi
test_finish
