#!/bin/sh
# tests/bench/tls.sh: the TLS rows of the nvmfd benchmark, each run next
# to its plain TCP twin on the same daemon, in the same rounds.
#
#   tls.sh path/to/nvmfd            (or: BENCH_ONLY=tls run.sh path/to/nvmfd)
#
# One nvmfd (workers: 1, a 1 GiB RAM namespace, written through first)
# with a plain port and a port that requires TLS 1.3 (a PSK, AES-128-GCM;
# `nvmfd perf -K`).  Each round runs 4 KiB random read at QD32 and 128 KiB
# sequential read and write at QD16, plain and then over TLS.  Each row
# keeps its median run; the summary gives TLS / plain (goal: >= 0.5x)
# with the CPU each side spent per I/O.
#
# Replaces the tcp_* and tls_* rows of results.csv and the "TLS (tls.sh)"
# part of summary.txt (in BENCH_OUT or next to this script), keeping the
# rest.  Environment: BENCH_SECONDS (default 10), BENCH_RUNS (3),
# BENCH_OUT.  Needs python3 (for the key) and taskset to pin; says what
# it skips.  Only processes started here are stopped, by PID.
set -u
LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_nvmfd "$0" "${1:-}"
bench_rounds tls.sh
NQN=nqn.2026-11.io.nvmfd:bench
HOSTNQN=nqn.2026-11.io.nvmfd:perf	# perf's own host NQN

if ! command -v python3 >/dev/null 2>&1; then
	echo "tls.sh: python3 not found: TLS rows skipped"
	exit 0
fi
KEY=$(python3 -c 'import base64, os, struct, zlib
k = os.urandom(32)
print("NVMeTLSkey-1:01:%s:" % base64.b64encode(k + struct.pack("<I", zlib.crc32(k))).decode())')
work=$(mktemp -d "${TMPDIR:-/tmp}/nvmfd-bench-tls.XXXXXX") || exit 1
dpid=""
cleanup() {
	[ -z "$dpid" ] || stop_pid "$dpid" "tls.sh: nvmfd"
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "tls.sh: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DPIN="" CPIN="" pinning="none"
if [ "$(getconf _NPROCESSORS_ONLN)" -ge 2 ] &&
    command -v taskset >/dev/null 2>&1; then
	DPIN="taskset -c 0"
	CPIN="taskset -c 1"
	pinning="nvmfd on CPU 0, perf on CPU 1"
fi
# Which AES-GCM seals the records (src/gcm-vaes.c needs all of these).
gcm="OpenSSL's AES-GCM"
if [ "${NVMFD_TLS_GCM:-}" != openssl ] && awk '/^flags/ {
    n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^(vaes|vpclmulqdq|avx512f|avx512bw|avx512vl|aes|pclmulqdq)$/) n++
    exit (n == 7 ? 0 : 1) }' /proc/cpuinfo 2>/dev/null; then
	gcm="nvmfd's VAES AES-GCM"
fi
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "-- TLS 1.3 with a PSK, next to plain TCP"

port=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
	port=$(random_port)
	cat >"$work/nvmfd.yaml" <<EOF
workers: 1
control:
  socket: $work/nvmfd.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $port, max_queue_depth: 256}
  - {id: 2, address: 127.0.0.1, port: $((port + 1)), max_queue_depth: 256,
     tls: required}
subsystems:
  - nqn: $NQN
    hosts:
      - nqn: $HOSTNQN
        tls_key: '$KEY'
    namespaces:
      - {nsid: 1, backend: ram, size: 1073741824}
EOF
	: >"$work/nvmfd.log"
	$DPIN "$NVMFD" -F -f "$work/nvmfd.yaml" 2>>"$work/nvmfd.log" &
	dpid=$!
	i=0
	while [ $i -lt 100 ]; do
		grep -q ' ready' "$work/nvmfd.log" && break
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	grep -q ' ready' "$work/nvmfd.log" && break
	stop_pid "$dpid" "tls.sh: nvmfd"
	dpid=""
	grep -qi 'in use' "$work/nvmfd.log" || break
done
if [ -z "$dpid" ]; then
	echo "tls.sh: nvmfd did not start:" >&2
	cat "$work/nvmfd.log" >&2
	exit 1
fi

perf_run() {	# OUTPUT PORT WORKLOAD BS DEPTH SECONDS [perf options]
	o=$1 p=$2 w=$3 b=$4 q=$5 t=$6
	shift 6
	$CPIN timeout $((t + 30)) "$NVMFD" perf -a 127.0.0.1 -s "$p" \
	    -n "$NQN" -N 1 -c 1 -q "$q" -o "$b" -w "$w" -t "$t" -j "$@" \
	    >"$work/$o.json" 2>"$work/$o.err"
}

# Written through once, so reads do not come from never-written memory.
if ! perf_run fill "$port" write 131072 16 4 ||
    [ $(( $(tail -1 "$work/fill.json" | jget ios) * 131072 )) -lt \
    1073741824 ]; then
	echo "tls.sh: warning: the namespace was not filled completely" >&2
fi

run() {	# TEST PORT WORKLOAD BS DEPTH NOTE [perf options]
	bench_perf_row tls.sh "$@"
	printf '%-22s %8.0f IOPS %8.1f MB/s  nvmfd %7.2f us/IO  perf %7.2f us/IO  (load %s)\n' \
	    "$test" "$iops" "$mbps" "$tcpu" "$ccpu" "$l0"
	if [ "$err" -ne 0 ]; then
		echo "tls.sh: $test: $err I/O errors; see nvmfd's log" >&2
		exit 1
	fi
}

tnote="TLS 1.3 TLS_AES_128_GCM_SHA256 with a PSK (perf -K)"
pnote="plain TCP twin of the TLS row"
# name workload bs depth
set -- randread_4k_qd32 randread 4096 32 read_128k_qd16 read 131072 16 \
    write_128k_qd16 write 131072 16
tests="$*"
round=1
while [ $round -le "$RUNS" ]; do
	set -- $tests
	while [ $# -ge 4 ]; do
		run "tcp_$1" "$port" "$2" "$3" "$4" "$pnote"
		run "tls_$1" $((port + 1)) "$2" "$3" "$4" "$tnote" -K "$KEY"
		shift 4
	done
	round=$((round + 1))
done
if ! kill -0 "$dpid" 2>/dev/null; then
	echo "tls.sh: nvmfd died; its log:" >&2
	tail -30 "$work/nvmfd.log" >&2
	exit 1
fi

# Median run of each test; rows replace the tcp_/tls_ rows of results.csv.
bench_medians "tcp_|tls_" ""

val() {	# TEST COLUMN-NUMBER
	awk -F, -v t="$1" -v c="$2" '$1 == t { print $c; exit }' "$csv"
}
{
	echo "TLS (tls.sh): $SECS s per run, median of $RUNS, $pinning," \
	    "one connection; load average at the start: $load0, at the end:" \
	    "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf '%-18s %-36s %-36s %s\n' Row "TLS 1.3" "plain TCP, same daemon" \
	    "TLS/TCP"
	set -- $tests
	while [ $# -ge 4 ]; do
		u=IOPS c=9
		[ "$3" = 4096 ] || u=MB/s c=10
		a=$(val "tls_$1" $c) b=$(val "tcp_$1" $c)
		printf '%-18s %-36s %-36s %s %s\n' "$1" \
		    "$a $u, $(val "tls_$1" 18)+$(val "tls_$1" 16) us/IO" \
		    "$b $u, $(val "tcp_$1" 18)+$(val "tcp_$1" 16) us/IO" \
		    "$(calc %.2fx "$a / $b")" \
		    "$(awk "BEGIN { print ($a >= 0.5 * $b ? \"PASS\" : \"MISS\") }")"
		shift 4
	done
	echo "Goal: TLS >= 0.5x plain TCP.  us/IO: nvmfd's CPU + perf's CPU" \
	    "per I/O.  Records are made in userspace (this kernel has no kTLS)" \
	    "with $gcm."
} >"$work/sum"
# The new part goes where the old one was: before the file rows, if any.
if [ -f "$summary" ]; then
	awk -v new="$work/sum" '
	    /^TLS \(tls.sh\)/ { skip = 1; next }
	    /^File namespaces \(file.sh\)/ {
		if (!done) { while ((getline l < new) > 0) print l; done = 1 }
		skip = 0
	    }
	    !skip { print }
	    END { if (!done) while ((getline l < new) > 0) print l }' \
	    "$summary" >"$work/sum1"
	mv "$work/sum1" "$summary"
else
	cp "$work/sum" "$summary"
fi
cat "$work/sum"
