#!/bin/sh
# metrics.sh: the Prometheus endpoint (metrics: in nvmfd.yaml).  After
# verified writes and reads, and reads failed on purpose (nvmfctl
# inject-error), curl scrapes /metrics; metrics_check.py parses the page
# strictly (the text format 0.0.4) and compares every namespace counter with
# nvmfctl stats --json, and the failed reads must show as media errors and
# under their status code.  Then hostile requests: another path (404), POST
# (refused), a header beyond the limit (refused); the endpoint still answers
# after them.  A metrics section without a port is a config error naming
# its line; save keeps the section.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/metrics.sh
# Exit status: 0 pass, 77 skip (no daemon, curl or python3, no free port),
# 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-11.io.nvmfd.test:metrics

. "$here/lib.sh"
need_nvmfd 77
need_python3
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl is not installed"; exit 77; }
test_tmpdir metrics || exit 1

pass() { echo "ok: $*"; }

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT; metrics on PORT + 5
	mport=$(($1 + 5))
	cat >"$tmp/nvmfd.yaml" <<YAML
control:
  socket: $tmp/ctl.sock
metrics:
  port: $mport
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: ram, size: 4M}
      - {nsid: 2, backend: ram, size: 4M, populate: lazy}
YAML
}

daemon_start_or_skip write_config "24730 24731 24732 24733 24734"
url=http://127.0.0.1:$mport/metrics
echo "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port, metrics at $url"
ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }

perf() {	# NSID ARGS...
	_n=$1
	shift
	"$NVMFD" perf -a 127.0.0.1 -s "$daemon_port" -n "$NQN" -N "$_n" -j \
	    "$@" >"$tmp/perf.json" 2>"$tmp/perf.err"
}
perf 1 -q 1 -o 131072 -w write -t 1 -v || fail "perf write: $(tail -1 "$tmp/perf.err")"
perf 1 -q 4 -w randread -t 1 -v || fail "perf randread: $(tail -1 "$tmp/perf.err")"
ctl inject-error "$NQN" 1 --op read --error eio --count 3 >/dev/null ||
	fail "inject-error"
perf 1 -q 1 -w randread -t 1 >/dev/null 2>&1	# three of them fail

curl -sS -f -o "$tmp/page.txt" -D "$tmp/headers.txt" "$url" ||
	fail "curl $url failed"
grep -qi '^content-type: text/plain; version=0.0.4' "$tmp/headers.txt" ||
	fail "no text format 0.0.4 content type: $(cat "$tmp/headers.txt")"
ctl stats --json >"$tmp/stats.json" || fail "nvmfctl stats --json"
python3 "$here/metrics_check.py" "$tmp/page.txt" "$tmp/stats.json" ||
	fail "the page does not parse or disagrees with nvmfctl stats"
grep -q "^nvmfd_namespace_media_errors_total{subsystem=\"$NQN\",nsid=\"1\"} 3$" \
    "$tmp/page.txt" && pass "3 injected read errors counted as media errors" ||
	fail "media errors: $(grep media_errors_total "$tmp/page.txt")"
busy=$(sed -n "s/^nvmfd_subsystem_busy_seconds_total{subsystem=\"$NQN\"} //p" \
    "$tmp/page.txt")
awk -v b="${busy:-0}" 'BEGIN { exit !(b > 0.5 && b < 60) }' &&
    pass "busy ${busy}s after about 4 s of perf" ||
	fail "busy seconds '$busy' after about 4 s of perf"
grep -q '^nvmfd_command_errors_total{sct="0x2",sc="0x81"} 3$' "$tmp/page.txt" &&
    pass "and as Unrecovered Read Error (SCT 2h, SC 81h)" ||
	fail "status counts: $(grep command_errors_total "$tmp/page.txt")"
grep -q "^nvmfd_port_connections{port=\"1\",address=\"127.0.0.1\",service=\"$daemon_port\"} 0$" \
    "$tmp/page.txt" && pass "port 1 listed with no connection open" ||
	fail "port series: $(grep port_connections "$tmp/page.txt")"

# Hostile or wrong requests.
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
c=$(code "http://127.0.0.1:$mport/")
[ "$c" = 404 ] && pass "/ -> 404" || fail "/ -> $c"
c=$(code -X POST -d x "$url")
case $c in 405|413|501) pass "POST -> $c" ;; *) fail "POST -> $c" ;; esac
big=$(head -c 16384 /dev/zero | tr '\0' a)
c=$(code -H "X-Big: $big" "$url")
case $c in 400|413|431|000) pass "16 KiB header refused ($c)" ;;
	*) fail "16 KiB header -> $c" ;; esac
c=$(code "$url")
[ "$c" = 200 ] && pass "still serving after them" || fail "then -> $c"

ctl save "$tmp/saved.yaml" >/dev/null || fail "save"
grep -q "^  port: $mport$" "$tmp/saved.yaml" && pass "save keeps metrics" ||
	fail "save lost the metrics section"
printf 'metrics:\n  address: 127.0.0.1\n' >"$tmp/bad.yaml"
msg=$("$NVMFD" -n -f "$tmp/bad.yaml" 2>&1) && fail "a metrics section without a port loaded"
case $msg in *bad.yaml:2:*port*) pass "no port: $msg" ;;
	*) fail "no port: unexpected message: $msg" ;; esac
test_finish
