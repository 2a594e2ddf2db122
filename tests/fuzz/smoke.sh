#!/bin/sh
# smoke.sh SECONDS TARGET...: run each libFuzzer target (a path in the build
# tree) first over its regression inputs (tests/fuzz/regressions/NAME, every
# crash or hang found so far, each must pass), then for SECONDS from its
# seeds (tests/fuzz/seeds/NAME) into a work corpus in the build tree.
# Exit 1 on any finding; the reproducer is left in the build tree's
# fuzz-findings/NAME/ and named in the output.
set -u
secs=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
status=0
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
for t in "$@"; do
	name=$(basename "$t")
	corpus=fuzz-corpus/$name
	findings=fuzz-findings/$name
	mkdir -p "$corpus" "$findings"
	regress=$here/regressions/$name
	if [ -d "$regress" ] && [ -n "$(ls -A "$regress" 2>/dev/null)" ]; then
		if ! "$t" -runs=0 "$regress"/* >"$findings/regress.log" 2>&1; then
			tail -30 "$findings/regress.log"
			echo "fuzz-smoke: $name: a regression input fails again"
			status=1
			continue
		fi
		echo "fuzz-smoke: $name: $(ls "$regress" | wc -l) regression inputs pass"
	fi
	if "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$findings/" \
	    "$corpus" "$here/seeds/$name" >"$findings/run.log" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$findings/run.log")
		cov=$(grep -o 'cov: [0-9]*' "$findings/run.log" | tail -1)
		echo "fuzz-smoke: $name: ${execs:-?} runs in $secs s, $cov, no finding"
	else
		tail -40 "$findings/run.log"
		echo "fuzz-smoke: $name: FINDING, reproducer in $findings/"
		status=1
	fi
done
exit $status
