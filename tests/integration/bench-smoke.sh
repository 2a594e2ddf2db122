#!/bin/sh
# The benchmark's 2-second smoke run: it must run and produce numbers (no
# figures are judged here; `make bench` is the measurement).
[ -n "${NVMFD:-}" ] && [ -x "$NVMFD" ] || { echo "SKIP: NVMFD is not set"; exit 77; }
command -v "${CC:-cc}" >/dev/null 2>&1 || { echo "SKIP: no C compiler for pingpong.c"; exit 77; }
out=$(mktemp -d "${TMPDIR:-/tmp}/nvmfd-bench-smoke.XXXXXX") || exit 99
BENCH_SMOKE=1 BENCH_OUT=$out sh "${top_srcdir:-$(dirname "$0")/../..}/tests/bench/run.sh" "$NVMFD"
rc=$?
rm -rf "$out"
exit $rc
