#!/bin/sh
# tests/bench/run.sh: the nvmfd benchmark behind `make bench`.
#
#   run.sh path/to/nvmfd
#
# Starts nvmfd on a private configuration (one worker, a 1 GiB RAM namespace,
# a free port on 127.0.0.1), drives it with `nvmfd perf` and measures the
# daemon's CPU time around every run; measures plain-TCP baselines
# (pingpong.c, also with MSG_ZEROCOPY) in the same rounds, alternating with
# the runs they are compared to; then 100 idle queue pairs and the memory
# of 1000 queue pairs (qpairs.py); then queue depth 1 again with poll_us
# set, and fio's nbd engine against NBD servers.  Writes results.csv,
# results.svg and summary.txt next to this script (or to BENCH_OUT) and
# prints the targets with PASS or MISS.  See README.md.
#
# Environment:
#   BENCH_SECONDS=10        length of each run (1..600)
#   BENCH_RUNS=3            rounds; each row keeps its median run (1..9)
#   BENCH_IDLE_SECONDS=10   how long the 100 queue pairs stay idle (1..600)
#   BENCH_SMOKE=1           one 2-second round of two rows, results in a
#                           temporary directory; only checks numbers came out
#   BENCH_OUT=DIR           where results.csv, results.svg, summary.txt go
#   BENCH_KEEP=1            keep the work directory (daemon log, raw JSON)
#   BENCH_NBD_URI=URI       an NBD export to run fio's nbd engine against
#   BENCH_NBD_PID=PID       instead of nvmfd's own, charging it the CPU time
#                           of PID; fio against `nbdkit memory` runs as the
#                           baseline whenever fio, nbdkit and python3 are
#                           installed
#   BENCH_ONLY=file         only the file namespace rows (file.sh), which
#                           a full run also ends with (not a smoke run)
#   BENCH_ONLY=tls          only the TLS rows (tls.sh), which a full run
#                           also runs before the file rows
#   BENCH_FILE_DIR=DIR      where file.sh puts its 1 GiB file
#   CC                      compiler for pingpong.c (default cc)
#
# Loopback only.  Every wait is bounded; only processes started here are
# stopped, by PID.
set -u
LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_nvmfd "$0" "${1:-}"
case ${BENCH_ONLY:-} in
file|tls)
	exec sh "$here/$BENCH_ONLY.sh" "$NVMFD" ;;
?*)
	echo "run.sh: BENCH_ONLY=$BENCH_ONLY: only 'file' and 'tls' are" \
	    "known" >&2
	exit 2 ;;
esac

SMOKE=${BENCH_SMOKE:-0}
SECS=${BENCH_SECONDS:-10}
RUNS=${BENCH_RUNS:-3}
IDLE_SECS=${BENCH_IDLE_SECONDS:-10}
if [ "$SMOKE" = 1 ]; then
	SECS=2
	RUNS=1
fi
check_num() {	# NAME VALUE MIN MAX
	if ! awk -v v="$2" -v lo="$3" -v hi="$4" 'BEGIN {
	    exit !(v ~ /^[0-9]+(\.[0-9]+)?$/ && v + 0 >= lo && v + 0 <= hi) }'
	then
		echo "run.sh: $1=$2: expected a number from $3 to $4" >&2
		exit 2
	fi
}
check_num BENCH_SECONDS "$SECS" 1 600
check_num BENCH_RUNS "$RUNS" 1 9
check_num BENCH_IDLE_SECONDS "$IDLE_SECS" 1 600
RUNS=${RUNS%%.*}

work=$(mktemp -d "${TMPDIR:-/tmp}/nvmfd-bench.XXXXXX") || exit 1
if [ "$SMOKE" = 1 ]; then
	OUT=${BENCH_OUT:-$work}
else
	OUT=${BENCH_OUT:-$here}
fi
mkdir -p "$OUT" || exit 1

dpid=""
stop_daemon() {
	[ -n "$dpid" ] || return 0
	stop_pid "$dpid" "run.sh: nvmfd"
	dpid=""
}
cleanup() {
	stop_daemon
	[ -z "${nbd_dpid:-}" ] || stop_nbd_nvmfd
	if [ -n "${nbdkit_pid:-}" ]; then
		kill "$nbdkit_pid" 2>/dev/null
		wait "$nbdkit_pid" 2>/dev/null
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$OUT" = "$work" ]; then
		echo "run.sh: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TIMEOUT=""
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout -k 5"
# Run a command with a time limit (seconds) when timeout(1) exists.
limited() {	# SECONDS COMMAND...
	lim=$1; shift
	if [ -n "$TIMEOUT" ]; then
		$TIMEOUT "$lim" "$@"
	else
		"$@"
	fi
}
RUN_LIMIT=$(awk -v s="$SECS" 'BEGIN { printf "%d", s + 30 }')

# ------------------------------------------------------------ machine
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
DPIN="" CPIN="" PP_PIN="" pinning="none"
if [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
	DPIN="taskset -c 0"
	CPIN="taskset -c 1"
	PP_PIN="-s 0 -c 1"
	pinning="nvmfd on CPU 0, client on CPU 1"
else
	echo "run.sh: fewer than 2 CPUs or no taskset: nothing is pinned" >&2
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo |
    head -1)
[ -n "$cpu_model" ] || cpu_model=$(uname -m)
kernel=$(uname -r)
version=$("$NVMFD" -V 2>&1 | head -1)
rev=""
if command -v git >/dev/null 2>&1; then
	rev=$(git -C "$here" describe --always --dirty 2>/dev/null || true)
fi
load0=$(cut -d' ' -f1 /proc/loadavg)
now() { date +%s.%N; }
# Busy and total jiffies of all CPUs (busy counts steal: time the
# hypervisor gave to someone else).
sysbusy() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9,
	    $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}
# CPU % (of one core) the whole machine was busy between two sysbusy.
busy_pct() {	# "BUSY0 TOTAL0" "BUSY1 TOTAL1"
	echo "$1 $2" | awk -v n="$ncpu" '{
	    t = $4 - $2; printf "%.1f", (t > 0 ? ($3 - $1) * 100 * n / t : 0) }'
}

# ------------------------------------------------------------ pingpong
CC=${CC:-cc}
pingpong=$work/pingpong
if [ "$SMOKE" != 1 ] && ! $CC -O2 -o "$pingpong" "$here/pingpong.c"; then
	echo "run.sh: cannot build pingpong.c with $CC" >&2
	exit 1
fi

# ------------------------------------------------------------ daemon
NQN=nqn.2026-11.io.nvmfd:bench
NS_SIZE=1073741824
port=""
start_daemon() {
	tries=0
	while [ $tries -lt 10 ]; do
		tries=$((tries + 1))
		port=$(random_port)
		if command -v ss >/dev/null 2>&1 &&
		    ss -Htan "sport = :$port or sport = :$((port + 1))" \
		    2>/dev/null | grep -q .; then
			continue
		fi
		cat >"$work/nvmfd.yaml" <<EOF
# Private configuration of tests/bench/run.sh.
workers: 1
${DPOLL:+poll_us: $DPOLL}
max_controllers: 1024
max_connections: 4096
control:
  socket: $work/nvmfd.sock
ports:
  - id: 1
    address: 127.0.0.1
    port: $port
    max_queue_depth: 256
subsystems:
  - nqn: $NQN
    max_io_queues: 1024
    namespaces:
      - nsid: 1
        backend: ram
        size: $NS_SIZE
EOF
		: >"$work/nvmfd.log"
		$DPIN "$NVMFD" -F -f "$work/nvmfd.yaml" 2>>"$work/nvmfd.log" &
		dpid=$!
		i=0
		while [ $i -lt 100 ]; do
			if grep -q ' ready' "$work/nvmfd.log"; then
				return 0
			fi
			kill -0 "$dpid" 2>/dev/null || break
			sleep 0.1
			i=$((i + 1))
		done
		stop_daemon
		if ! grep -qi 'in use' "$work/nvmfd.log"; then
			echo "run.sh: nvmfd did not start:" >&2
			cat "$work/nvmfd.log" >&2
			exit 1
		fi
	done
	echo "run.sh: no free port found in 10 tries" >&2
	exit 1
}

dcpu() { pid_cpu "$dpid"; }	# the daemon's CPU seconds

daemon_alive() {
	if ! kill -0 "$dpid" 2>/dev/null; then
		echo "run.sh: nvmfd died; its log:" >&2
		tail -30 "$work/nvmfd.log" >&2
		exit 1
	fi
}

# ------------------------------------------------------------ CSV
# Each run of a test appends "KEY,<first 25 columns>" to $work/TEST.rows and
# writes its notes to $work/TEST.note; emit TEST then keeps the run with the
# median KEY (IOPS, round trips/s or MB/s) as the test's row.
csv=$OUT/results.csv
COLS="test,kind,workload,block_size,depth,queues,seconds,ios,iops,mbps"
COLS="$COLS,lat_avg_us,lat_p50_us,lat_p99_us,lat_p999_us,lat_max_us"
COLS="$COLS,client_cpu_us_per_io,client_cpu_pct,target_cpu_us_per_io"
COLS="$COLS,target_cpu_pct,errors,rss_before_kib,rss_after_kib,ns_rss_kib"
COLS="$COLS,machine_busy_pct,other_cpu_pct,notes"
NCOLS=26
{
	echo "# nvmfd bench $(date -u +%Y-%m-%dT%H:%M:%SZ); $version${rev:+ ($rev)}"
	echo "# CPU: $cpu_model x $ncpu; kernel $kernel; pinning: $pinning"
	echo "# $SECS s per run; median of $RUNS rounds; load average" \
	    "before the run: $load0$([ "$SMOKE" = 1 ] && echo '; SMOKE RUN')"
	echo "$COLS"
} >"$csv.tmp"

record() {	# TEST KEY NOTE FIELDS... (the first 25 columns, TEST included)
	t=$1 key=$2 note=$3
	shift 3
	line=$key
	for f in "$@"; do
		line="$line,$f"
	done
	echo "$line" >>"$work/$t.rows"
	echo "$note" >"$work/$t.note"
}
emit() {	# TEST KEY-NAME
	[ -s "$work/$1.rows" ] || return 0
	sort -t, -k1,1g "$work/$1.rows" >"$work/$1.sorted"
	n=$(wc -l <"$work/$1.sorted")
	all=$(cut -d, -f1 "$work/$1.sorted" | tr '\n' '/' | sed 's,/$,,')
	note=$(cat "$work/$1.note")
	if [ "$n" -gt 1 ]; then
		note="${note:+$note; }median of $n runs by $2: $all"
	fi
	echo "$(sed -n "$(( (n + 1) / 2 ))p" "$work/$1.sorted" |
	    cut -d, -f2-),$note" >>"$csv.tmp"
}
check_csv() {
	if ! awk -F, -v n=$NCOLS '!/^#/ && NF != n { bad = 1
	    print "run.sh: bad CSV line " NR ": " $0 } END { exit bad }' \
	    "$csv.tmp" >&2; then
		exit 1
	fi
}
# A value of the final CSV: val TEST COLUMN
val() {
	awk -F, -v t="$1" -v c="$2" '/^#/ { next }
	    !h { for (i = 1; i <= NF; i++) idx[$i] = i; h = 1; next }
	    $1 == t { print $(idx[c]); exit }' "$csv"
}

# ------------------------------------------------------------ runs
# io TEST WORKLOAD BLOCK DEPTH [NOTE [PERF-OPTION]]: one nvmfd perf run.
io() {
	test=$1 wl=$2 bs=$3 qd=$4 inote=${5:-} popt=${6:-}
	daemon_alive
	b0=$(sysbusy); c0=$(dcpu); w0=$(now)
	limited "$RUN_LIMIT" $CPIN "$NVMFD" perf -a 127.0.0.1 \
	    -s "${io_port:-$port}" -n "$NQN" -N 1 -c 1 -q "$qd" -o "$bs" \
	    -w "$wl" -t "$SECS" -j $popt >"$work/$test.json" 2>"$work/$test.err"
	rc=$?
	w1=$(now); c1=$(dcpu); b1=$(sysbusy)
	j=$(tail -1 "$work/$test.json")
	if [ $rc -ne 0 ] || [ -z "$j" ]; then
		echo "run.sh: $test: nvmfd perf failed (exit $rc):" >&2
		cat "$work/$test.err" >&2
		daemon_alive
		exit 1
	fi
	ios=$(echo "$j" | jget ios)
	iops=$(echo "$j" | jget iops)
	ccpu=$(echo "$j" | jget client_cpu_us_per_io)
	err=$(( $(echo "$j" | jget errors) + $(echo "$j" | jget verify_errors) ))
	cpct=$(calc %.1f "$ccpu * $iops / 1e4")
	tcpu=$(calc %.3f "($ios > 0 ? ($c1 - $c0) * 1e6 / $ios : 0)")
	tpct=$(calc %.1f "($c1 - $c0) * 100 / ($w1 - $w0)")
	busy=$(busy_pct "$b0" "$b1")
	other=$(calc %.1f "($busy - $tpct - $cpct > 0 ? $busy - $tpct - $cpct : 0)")
	record "$test" "$iops" "$inote" "$test" io "$wl" "$bs" "$qd" 1 \
	    "$(echo "$j" | jget seconds)" "$ios" "$iops" "$(echo "$j" | jget mbps)" \
	    "$(echo "$j" | jget lat_avg_us)" "$(echo "$j" | jget lat_p50_us)" \
	    "$(echo "$j" | jget lat_p99_us)" "$(echo "$j" | jget lat_p999_us)" \
	    "$(echo "$j" | jget lat_max_us)" "$ccpu" "$cpct" "$tcpu" "$tpct" \
	    "$err" "" "" "" "$busy" "$other"
	printf '%-22s %8.0f IOPS %7.1f MB/s avg %7.1f us p99 %8.1f us | nvmfd %6.3f us/IO %5.1f%% | client %5.1f%% | other %5.1f%%\n' \
	    "$test" "$iops" "$(echo "$j" | jget mbps)" \
	    "$(echo "$j" | jget lat_avg_us)" "$(echo "$j" | jget lat_p99_us)" \
	    "$tcpu" "$tpct" "$cpct" "$other"
	if [ "$err" -ne 0 ]; then
		echo "run.sh: $test: $err I/O errors; see nvmfd's log" >&2
	fi
}

# pp_run TEST OPTIONS...: one pingpong run for $SECS s, pinned like the
# nvmfd runs; sets j (its JSON line) and busy (machine_busy_pct).
pp_run() {
	test=$1
	shift
	b0=$(sysbusy)
	if ! limited "$RUN_LIMIT" "$pingpong" "$@" -t "$SECS" $PP_PIN \
	    >"$work/$test.json" 2>"$work/$test.err"; then
		echo "run.sh: $test: pingpong failed:" >&2
		cat "$work/$test.err" >&2
		exit 1
	fi
	busy=$(busy_pct "$b0" "$(sysbusy)")
	j=$(cat "$work/$test.json")
}

# pp TEST DEPTH: the TCP ping-pong baseline (72 bytes out, 4120 back) with
# DEPTH round trips in flight.  The TCP server's CPU time per round trip
# goes in target_cpu_us_per_io, round trips per second in iops.
pp() {
	test=$1 qd=$2
	pp_run "$test" -m lat -q 72 -r 4120 -D "$qd"
	rate=$(echo "$j" | jget rtt_per_s)
	ccpu=$(echo "$j" | jget client_cpu_us_per_rtt)
	scpu=$(echo "$j" | jget server_cpu_us_per_rtt)
	cpct=$(calc %.1f "$ccpu * $rate / 1e4")
	spct=$(calc %.1f "$scpu * $rate / 1e4")
	other=$(calc %.1f "($busy - $spct - $cpct > 0 ? $busy - $spct - $cpct : 0)")
	record "$test" "$rate" \
	    "plain TCP: 72 B out and 4120 B back per round trip at depth $qd; iops = round trips/s; target_cpu = the TCP server's" \
	    "$test" baseline pingpong 4120 "$qd" 1 "$(echo "$j" | jget seconds)" \
	    "$(echo "$j" | jget round_trips)" "$rate" "" \
	    "$(echo "$j" | jget lat_avg_us)" "$(echo "$j" | jget lat_p50_us)" \
	    "$(echo "$j" | jget lat_p99_us)" "$(echo "$j" | jget lat_p999_us)" \
	    "$(echo "$j" | jget lat_max_us)" "$ccpu" "$cpct" "$scpu" "$spct" 0 \
	    "" "" "" "$busy" "$other"
	printf '%-22s %8.0f RTT/s            avg %7.1f us p99 %8.1f us | server %5.3f us/RTT %5.1f%% | client %5.1f%% | other %5.1f%%\n' \
	    "$test" "$rate" "$(echo "$j" | jget lat_avg_us)" \
	    "$(echo "$j" | jget lat_p99_us)" "$scpu" "$spct" "$cpct" "$other"
}

# st TEST s2c|c2s [MiB [-z]]: the TCP stream baseline, 1 MiB writes of the
# same cache-hot buffer, or walking through MiB of memory; -z: MSG_ZEROCOPY.
st() {
	test=$1 dir=$2 span=${3:-0} zopt=${4:-}
	pp_run "$test" -m stream -d "$dir" -b 1048576 -B "$span" $zopt
	m=$(echo "$j" | jget mbps)
	secs=$(echo "$j" | jget seconds)
	cpct=$(calc %.1f "$(echo "$j" | jget client_cpu_s) * 100 / $secs")
	spct=$(calc %.1f "$(echo "$j" | jget server_cpu_s) * 100 / $secs")
	other=$(calc %.1f "($busy - $spct - $cpct > 0 ? $busy - $spct - $cpct : 0)")
	if [ "$dir" = s2c ]; then
		what="server to client (the direction of reads)"
	else
		what="client to server (the direction of writes)"
	fi
	if [ "$span" -gt 0 ]; then
		what="$what with 1 MiB writes walking through $span MiB"
	else
		what="$what with 1 MiB writes of one cache-hot buffer"
	fi
	if [ -n "$zopt" ]; then
		what="$what; MSG_ZEROCOPY: $(echo "$j" | jget zc_copied) of $(echo "$j" | jget zc_sends) sends copied by the kernel anyway"
	fi
	record "$test" "$m" \
	    "plain TCP stream $what; target_cpu_pct = the TCP server's" \
	    "$test" baseline "$dir" 1048576 "" 1 "$secs" "" "" "$m" \
	    "" "" "" "" "" "" "$cpct" "" "$spct" 0 "" "" "" "$busy" "$other"
	printf '%-22s %8.1f MB/s                                     | server %5.1f%% | client %5.1f%% | other %5.1f%%\n' \
	    "$test" "$m" "$spct" "$cpct" "$other"
}

start_daemon
echo "nvmfd bench: $version, $SECS s per run, $RUNS round(s), port $port"
echo "  CPU $cpu_model x $ncpu, kernel $kernel, $pinning," \
    "load average $load0"

if [ "$SMOKE" = 1 ]; then
	fail=0
	io randread_4k_qd32 randread 4096 32
	io read_128k_qd16 read 131072 16
	for t in randread_4k_qd32 read_128k_qd16; do
		emit "$t" IOPS
	done
	daemon_alive
	stop_daemon
	check_csv
	mv "$csv.tmp" "$csv"
	for t in randread_4k_qd32 read_128k_qd16; do
		if ! awk -v i="$(val "$t" iops)" -v c="$(val "$t" target_cpu_us_per_io)" \
		    -v e="$(val "$t" errors)" 'BEGIN {
		    exit !(i > 0 && c > 0 && e == 0) }'; then
			echo "run.sh: smoke: $t gave no numbers (or errors)" >&2
			fail=1
		fi
	done
	[ $fail -eq 0 ] && echo "smoke: OK ($csv)"
	exit $fail
fi

# Fill the namespace first, so reads return real data (not the kernel's
# shared zero page) and writes do not pay first-touch page faults.
fill() {
	fill_ok=0
	for t in 4 10 25; do
		daemon_alive
		limited $((t + 30)) $CPIN "$NVMFD" perf -a 127.0.0.1 \
		    -s "$port" -n "$NQN" -N 1 -q 16 -o 131072 -w write -t "$t" \
		    -j >"$work/fill.json" 2>"$work/fill.err"
		n=$(tail -1 "$work/fill.json" | jget ios)
		if [ -n "$n" ] && [ $((n * 131072)) -ge $NS_SIZE ]; then
			fill_ok=1
			break
		fi
	done
	[ $fill_ok = 1 ] || echo "run.sh: warning: the namespace was not" \
	    "filled completely; reads may hit never-written memory" >&2
}

# First writes: 4 KiB random writes on a freshly started daemon, before any
# fill, where every huge-page chunk of the namespace is written for the
# first time; compared with the same runs on the filled namespace below.
r=0
while [ $r -lt "$RUNS" ]; do
	r=$((r + 1))
	echo "-- fresh daemon, round $r of $RUNS"
	for qd in 1 32; do
		daemon_alive
		stop_daemon
		start_daemon
		io randwrite_4k_qd${qd}_fresh randwrite 4096 $qd \
		    "freshly started daemon; namespace never written"
	done
done
emit randwrite_4k_qd1_fresh IOPS
emit randwrite_4k_qd32_fresh IOPS
fill

# Rounds: every test once per round, each baseline right after the run it
# is compared with, so both see the same machine.
r=0
while [ $r -lt "$RUNS" ]; do
	r=$((r + 1))
	echo "-- round $r of $RUNS"
	io randread_4k_qd1 randread 4096 1
	io randread_4k_qd1_P randread 4096 1 "perf -P: the client polls" -P
	pp pingpong_72_4120 1
	io randread_4k_qd32 randread 4096 32
	pp pingpong_72_4120_qd32 32
	io randread_4k_qd128 randread 4096 128
	io randwrite_4k_qd1 randwrite 4096 1
	io randwrite_4k_qd32 randwrite 4096 32
	io randwrite_4k_qd128 randwrite 4096 128
	io read_128k_qd16 read 131072 16
	st stream_s2c s2c
	st stream_s2c_1g s2c 1024
	st stream_s2c_1g_zc s2c 1024 -z
	io write_128k_qd16 write 131072 16
	st stream_c2s c2s
done
for t in randread_4k_qd1 randread_4k_qd1_P randread_4k_qd32 randread_4k_qd128 \
    randwrite_4k_qd1 randwrite_4k_qd32 randwrite_4k_qd128 \
    read_128k_qd16 write_128k_qd16; do
	emit $t IOPS
done
emit pingpong_72_4120 RTT/s
emit pingpong_72_4120_qd32 RTT/s
emit stream_s2c MB/s
emit stream_s2c_1g MB/s
emit stream_s2c_1g_zc MB/s
emit stream_c2s MB/s

# ------------------------------------------------------------ idle, memory
echo "-- idle and memory"
if command -v python3 >/dev/null 2>&1; then
	daemon_alive
	b0=$(sysbusy)
	if limited $((IDLE_SECS + 60)) $CPIN python3 "$here/qpairs.py" \
	    --pid "$dpid" --port "$port" --nqn "$NQN" --queues 100 --depth 128 \
	    --per-ctrl 100 --hold "$IDLE_SECS" --ns-size $NS_SIZE \
	    >"$work/idle.json" 2>"$work/idle.err"; then
		j=$(cat "$work/idle.json")
		alive=$(echo "$j" | jget connections_alive)
		record idle_100qp 0 \
		    "100 idle I/O queue pairs of 128 entries (1 controller and KATO 0); $alive of 101 connections alive at the end; nvmfd CPU $(echo "$j" | jget cpu_seconds) s (clock ticks of 1/$(echo "$j" | jget clk_tck) s)" \
		    idle_100qp idle "" "" 128 100 \
		    "$(echo "$j" | jget hold_seconds)" "" "" "" "" "" "" "" "" \
		    "" "" "" "$(echo "$j" | jget cpu_pct)" 0 \
		    "$(echo "$j" | jget rss_before_kib)" \
		    "$(echo "$j" | jget rss_after_kib)" \
		    "$(echo "$j" | jget ns_rss_after_kib)" \
		    "$(busy_pct "$b0" "$(sysbusy)")" ""
		emit idle_100qp -
		printf '%-22s nvmfd CPU %s%% over %s s (%s of 101 connections alive)\n' \
		    idle_100qp "$(echo "$j" | jget cpu_pct)" \
		    "$(echo "$j" | jget hold_seconds)" "$alive"
	else
		echo "run.sh: idle test failed:" >&2
		cat "$work/idle.err" >&2
	fi
	sleep 1	# let the daemon finish closing those queues
	daemon_alive
	b0=$(sysbusy)
	if limited 120 $CPIN python3 "$here/qpairs.py" --pid "$dpid" \
	    --port "$port" --nqn "$NQN" --queues 1000 --depth 128 \
	    --per-ctrl 100 --hold 1 --ns-size $NS_SIZE \
	    >"$work/mem.json" 2>"$work/mem.err"; then
		j=$(cat "$work/mem.json")
		alive=$(echo "$j" | jget connections_alive)
		rb=$(echo "$j" | jget rss_before_kib)
		ra=$(echo "$j" | jget rss_after_kib)
		nb=$(echo "$j" | jget ns_rss_before_kib)
		na=$(echo "$j" | jget ns_rss_after_kib)
		record mem_1000qp_qd128 0 \
		    "1000 I/O queue pairs of 128 entries (10 controllers of 100); rss_* = VmRSS before and after connecting; ns_rss = resident namespace memory after ($nb KiB before); $alive of 1010 connections alive" \
		    mem_1000qp_qd128 memory "" "" 128 1000 \
		    "$(echo "$j" | jget hold_seconds)" "" "" "" "" "" "" "" "" \
		    "" "" "" "$(echo "$j" | jget cpu_pct)" 0 "$rb" "$ra" "$na" \
		    "$(busy_pct "$b0" "$(sysbusy)")" ""
		emit mem_1000qp_qd128 -
		printf '%-22s nvmfd VmRSS %s -> %s KiB; namespace %s -> %s KiB; the rest %s -> %s KiB\n' \
		    mem_1000qp_qd128 "$rb" "$ra" "$nb" "$na" $((rb - nb)) \
		    $((ra - na))
	else
		echo "run.sh: memory test failed:" >&2
		cat "$work/mem.err" >&2
	fi
else
	echo "run.sh: python3 not found: idle and memory tests skipped" >&2
fi

# ------------------------------------------------------------ polling
# Queue depth 1 again on daemons with poll_us set explicitly: 50 (the
# figure the default is held to) and 0 (polling off), each with a sleeping
# and a polling client.
daemon_alive
stop_daemon
cp "$work/nvmfd.log" "$work/nvmfd-1.log"
for w in 50 0; do
	echo "-- queue depth 1 with poll_us: $w"
	DPOLL=$w start_daemon
	fill
	r=0
	while [ $r -lt "$RUNS" ]; do
		r=$((r + 1))
		io randread_4k_qd1_poll$w randread 4096 1 "nvmfd with poll_us: $w"
		io randread_4k_qd1_poll${w}_P randread 4096 1 \
		    "nvmfd with poll_us: $w; perf -P: the client polls too" -P
	done
	emit randread_4k_qd1_poll$w IOPS
	emit randread_4k_qd1_poll${w}_P IOPS
	daemon_alive
	stop_daemon
done

# ------------------------------------------------------------ NBD
# fio's nbd engine: 4 KiB random reads and 128 KiB sequential reads
# against `nbdkit memory` (1 GiB, filled first) as the baseline, and
# against nvmfd's NBD export of its own target's namespace (or
# BENCH_NBD_URI when given).
# nbd_fio TEST URI PID DEPTH NOTE [RW BS]
nbd_fio() {
	test=$1 uri=$2 tpid=$3 qd=$4 nnote=$5 nrw=${6:-randread} nbs=${7:-4096}
	b0=$(sysbusy); c0=$(pid_cpu "$tpid"); w0=$(now)
	if ! limited "$RUN_LIMIT" $CPIN fio --name="$test" --ioengine=nbd \
	    --uri="$uri" --rw="$nrw" --bs="$nbs" --iodepth="$qd" \
	    --time_based --runtime="$SECS" --output-format=json \
	    >"$work/$test.json" 2>"$work/$test.err"; then
		echo "run.sh: $test: fio failed:" >&2
		cat "$work/$test.err" >&2
		return 1
	fi
	w1=$(now); c1=$(pid_cpu "$tpid"); busy=$(busy_pct "$b0" "$(sysbusy)")
	python3 "$here/fio_row.py" "$work/$test.json" \
	    "$(calc %.3f "$c1 - $c0")" "$(calc %.3f "$w1 - $w0")" \
	    >"$work/$test.row" || return 1
	# fio_row.py: ios iops mbps avg p50 p99 p999 max ccpu cpct tcpu tpct
	set -- $(cat "$work/$test.row")
	other=$(calc %.1f "($busy - ${12} - ${10} > 0 ? $busy - ${12} - ${10} : 0)")
	record "$test" "$2" "$nnote" "$test" nbd "$nrw" "$nbs" "$qd" 1 \
	    "$SECS" "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10}" \
	    "${11}" "${12}" 0 "" "" "" "$busy" "$other"
	printf '%-22s %8.0f IOPS            avg %7.1f us p99 %8.1f us | server %6.3f us/IO %5.1f%% | client %5.1f%% | other %5.1f%%\n' \
	    "$test" "$2" "$4" "$6" "${11}" "${12}" "${10}" "$other"
}
nbdkit_pid=""
nbd_dpid=""
start_nbd_nvmfd() {
	p=$(random_port)
	cat >"$work/nvmfd-nbd.yaml" <<EOF
# Private configuration of tests/bench/run.sh: target and NBD host.
workers: 1
${DPOLL:+poll_us: $DPOLL}
control:
  socket: $work/nvmfd-nbd.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $p, max_queue_depth: 256}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: ram, size: $NS_SIZE}
host:
  nbd:
    socket: $work/nbd.sock
  connections:
    - {address: 127.0.0.1, port: $p, nqn: $NQN, queue_size: 128}
EOF
	$DPIN "$NVMFD" -F -f "$work/nvmfd-nbd.yaml" 2>"$work/nvmfd-nbd.log" &
	nbd_dpid=$!
	nbd_uri="nbd+unix:///$(echo "$NQN" | sed 's/:/%3A/g')/1?socket=$work/nbd.sock"
	i=0
	until nbdinfo --size "$nbd_uri" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -ge 100 ] || ! kill -0 "$nbd_dpid" 2>/dev/null; then
			echo "run.sh: nvmfd's NBD export did not come up;" \
			    "its rows are skipped:" >&2
			tail -20 "$work/nvmfd-nbd.log" >&2
			stop_nbd_nvmfd
			return 1
		fi
		sleep 0.1
	done
	limited 120 $CPIN fio --name=fill --ioengine=nbd --uri="$nbd_uri" \
	    --rw=write --bs=128k --iodepth=16 --size=$NS_SIZE \
	    >"$work/nbd-fill-nvmfd.out" 2>&1 ||
	    echo "run.sh: warning: could not fill nvmfd's export" >&2
	return 0
}
stop_nbd_nvmfd() {
	[ -n "$nbd_dpid" ] || return 0
	stop_pid "$nbd_dpid" "run.sh: nvmfd (NBD)"
	nbd_dpid=""
}
if command -v fio >/dev/null 2>&1 && fio --enghelp 2>/dev/null |
    grep -qw nbd && command -v nbdkit >/dev/null 2>&1 &&
    command -v python3 >/dev/null 2>&1; then
	echo "-- fio nbd engine"
	nport=$(random_port)
	$DPIN nbdkit --foreground --exit-with-parent --ipaddr 127.0.0.1 \
	    --port "$nport" memory $NS_SIZE 2>"$work/nbdkit.log" &
	nbdkit_pid=$!
	i=0
	until nbdinfo --size "nbd://127.0.0.1:$nport" >/dev/null 2>&1 ||
	    [ $i -ge 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	limited 120 $CPIN fio --name=fill --ioengine=nbd \
	    --uri="nbd://127.0.0.1:$nport" --rw=write --bs=128k --iodepth=16 \
	    --size=$NS_SIZE >"$work/nbd-fill.out" 2>&1 ||
	    echo "run.sh: warning: could not fill nbdkit's memory" >&2
	# nvmfd's own export unless one is given: one nvmfd (pinned like
	# the others) is the target of a 1 GiB RAM namespace and, connected
	# to itself over loopback NVMe/TCP, the host exporting it over NBD.
	if [ -z "${BENCH_NBD_URI:-}" ] && start_nbd_nvmfd; then
		BENCH_NBD_URI=$nbd_uri
		BENCH_NBD_PID=$nbd_dpid
	fi
	r=0
	while [ $r -lt "$RUNS" ]; do
		r=$((r + 1))
		for qd in 1 32; do
			nbd_fio nbd_nbdkit_randread_4k_qd$qd \
			    "nbd://127.0.0.1:$nport" "$nbdkit_pid" $qd \
			    "fio nbd engine against nbdkit memory (1 GiB); server = nbdkit" ||
			    break 2
			if [ -n "${BENCH_NBD_URI:-}" ] &&
			    [ -n "${BENCH_NBD_PID:-}" ]; then
				nbd_fio nbd_export_randread_4k_qd$qd \
				    "$BENCH_NBD_URI" "$BENCH_NBD_PID" $qd \
				    "fio nbd engine against BENCH_NBD_URI; server = BENCH_NBD_PID" ||
				    break 2
			fi
		done
		nbd_fio nbd_nbdkit_read_128k_qd16 "nbd://127.0.0.1:$nport" \
		    "$nbdkit_pid" 16 "fio nbd engine against nbdkit memory (1 GiB); server = nbdkit" \
		    read 131072 || break
		if [ -n "${BENCH_NBD_URI:-}" ] && [ -n "${BENCH_NBD_PID:-}" ]; then
			nbd_fio nbd_export_read_128k_qd16 "$BENCH_NBD_URI" \
			    "$BENCH_NBD_PID" 16 "fio nbd engine against BENCH_NBD_URI; server = BENCH_NBD_PID" \
			    read 131072 || break
		fi
	done
	kill "$nbdkit_pid" 2>/dev/null
	wait "$nbdkit_pid" 2>/dev/null
	nbdkit_pid=""
	stop_nbd_nvmfd
	for t in nbd_nbdkit_randread_4k_qd1 nbd_nbdkit_randread_4k_qd32 \
	    nbd_export_randread_4k_qd1 nbd_export_randread_4k_qd32 \
	    nbd_nbdkit_read_128k_qd16 nbd_export_read_128k_qd16; do
		emit $t IOPS
	done
else
	echo "run.sh: fio (with its nbd engine), nbdkit or python3 missing:" \
	    "NBD rows skipped (apt-get install fio nbdkit libnbd-bin)"
fi

check_csv
mv "$csv.tmp" "$csv"

# Anything the daemon said besides the usual (connects and closes).
cat "$work/nvmfd-1.log" "$work/nvmfd.log" |
    grep -v -e 'closed: connection closed by host' -e 'closed: controller' \
    -e 'admin queue closed' -e 'I/O controller' -e ' ready' -e listening \
    -e 'namespace 1: ram' -e 'shutting down' -e stopped -e 'control socket' \
    >"$work/nvmfd.other" || true
if [ -s "$work/nvmfd.other" ]; then
	echo "run.sh: nvmfd logged $(wc -l <"$work/nvmfd.other") other lines;" \
	    "the first ones:" >&2
	head -10 "$work/nvmfd.other" >&2
fi

# ------------------------------------------------------------ plot
if command -v gnuplot >/dev/null 2>&1; then
	if gnuplot -e "csv='$csv'; out='$OUT/results.svg'" "$here/plot.gp"
	then
		echo "plot: $OUT/results.svg"
	else
		echo "run.sh: gnuplot failed; no plot" >&2
	fi
else
	echo "run.sh: gnuplot not found: no plot (apt-get install gnuplot-nox)"
fi

# ------------------------------------------------------------ summary
verdict() {	# awk condition; empty values make it ERROR
	awk "BEGIN { v = ($1); print (v ? \"PASS\" : \"MISS\") }" 2>/dev/null ||
	    echo ERROR
}
line() { printf '%-42s %-40s %-34s %s\n' "$@"; }

Q_TCPU=$(val randread_4k_qd32 target_cpu_us_per_io)
Q_IOPS=$(val randread_4k_qd32 iops)
Q_TPCT=$(val randread_4k_qd32 target_cpu_pct)
Q_CPCT=$(val randread_4k_qd32 client_cpu_pct)
PQ_SCPU=$(val pingpong_72_4120_qd32 target_cpu_us_per_io)
PQ_RATE=$(val pingpong_72_4120_qd32 iops)
L_LAT=$(val randread_4k_qd1 lat_avg_us)
P_LAT=$(val pingpong_72_4120 lat_avg_us)
SR=$(val read_128k_qd16 mbps)
SW=$(val write_128k_qd16 mbps)
S_S2C=$(val stream_s2c mbps)
S_S2C1G=$(val stream_s2c_1g mbps)
S_S2C1GP=$(val stream_s2c_1g target_cpu_pct)
S_C2S=$(val stream_c2s mbps)
I_PCT=$(val idle_100qp target_cpu_pct)
M_B=$(val mem_1000qp_qd128 rss_before_kib)
M_A=$(val mem_1000qp_qd128 rss_after_kib)
M_NS=$(val mem_1000qp_qd128 ns_rss_kib)
LD_LAT=$(val randread_4k_qd1_P lat_avg_us)
LD_CPU=$(val randread_4k_qd1 target_cpu_us_per_io)
LDP_CPU=$(val randread_4k_qd1_P target_cpu_us_per_io)
LP_LAT=$(val randread_4k_qd1_poll50 lat_avg_us)
LP_CPU=$(val randread_4k_qd1_poll50 target_cpu_us_per_io)
LPB_LAT=$(val randread_4k_qd1_poll50_P lat_avg_us)
LPB_CPU=$(val randread_4k_qd1_poll50_P target_cpu_us_per_io)
L0_LAT=$(val randread_4k_qd1_poll0 lat_avg_us)
L0_CPU=$(val randread_4k_qd1_poll0 target_cpu_us_per_io)
L0B_LAT=$(val randread_4k_qd1_poll0_P lat_avg_us)
F1=$(val randwrite_4k_qd1_fresh iops)
F32=$(val randwrite_4k_qd32_fresh iops)
W1=$(val randwrite_4k_qd1 iops)
W32=$(val randwrite_4k_qd32 iops)
S_ZC=$(val stream_s2c_1g_zc mbps)
S_ZCNOTE=$(val stream_s2c_1g_zc notes | sed -n 's/.*MSG_ZEROCOPY: \([0-9]* of [0-9]*\) sends.*/\1/p')
NK1=$(val nbd_nbdkit_randread_4k_qd1 lat_avg_us)
NK32=$(val nbd_nbdkit_randread_4k_qd32 iops)
NK32C=$(val nbd_nbdkit_randread_4k_qd32 target_cpu_us_per_io)
NE1=$(val nbd_export_randread_4k_qd1 lat_avg_us)
NE32=$(val nbd_export_randread_4k_qd32 iops)
NE32C=$(val nbd_export_randread_4k_qd32 target_cpu_us_per_io)
NK128=$(val nbd_nbdkit_read_128k_qd16 mbps)
NE128=$(val nbd_export_read_128k_qd16 mbps)
{
	echo
	echo "Targets: $SECS s per run, median of $RUNS, $pinning," \
	    "load average before: $load0"
	line Target Measured "Baseline (same rounds)" Result
	line "4K randread QD32: nvmfd <= 1.5 us CPU/IO" "$Q_TCPU us/IO" \
	    "TCP server, QD32: $PQ_SCPU us/RTT" "$(verdict "$Q_TCPU <= 1.5")"
	line "4K randread QD32: client-bound [1]" \
	    "$(calc '%.0f IOPS; client %s%%, nvmfd %s%%' "$Q_IOPS, \"$Q_CPCT\", \"$Q_TPCT\"" 2>/dev/null)" \
	    "$(calc '%.0f RTT/s TCP QD32' "$PQ_RATE" 2>/dev/null)" \
	    "$(verdict "$Q_CPCT >= 90 && $Q_TPCT < 90")"
	line "  (floor: a plain sender of 1 GiB) [6]" \
	    "$(calc '%.3f us per 4 KiB sent' "$S_S2C1GP / 100 * 4096 / $S_S2C1G" 2>/dev/null)" \
	    "TCP stream s2c 1 GiB: $S_S2C1G MB/s" "(info)"
	line "4K randread QD1: avg <= 1.3x ping-pong" \
	    "$(calc '%.1f us = %.2fx' "$L_LAT, $L_LAT / $P_LAT" 2>/dev/null)" \
	    "TCP ping-pong: $P_LAT us" "$(verdict "$L_LAT <= 1.3 * $P_LAT")"
	line "128K seq read QD16: >= 0.8x stream" \
	    "$(calc '%.0f MB/s = %.2fx' "$SR, $SR / $S_S2C" 2>/dev/null)" \
	    "TCP stream s2c: $S_S2C MB/s" "$(verdict "$SR >= 0.8 * $S_S2C")"
	line "  (same, vs. a stream walking 1 GiB) [2]" \
	    "$(calc '%.2fx' "$SR / $S_S2C1G" 2>/dev/null)" \
	    "TCP stream s2c 1 GiB: $S_S2C1G MB/s" "(info)"
	line "128K seq write QD16: >= 0.8x stream" \
	    "$(calc '%.0f MB/s = %.2fx' "$SW, $SW / $S_C2S" 2>/dev/null)" \
	    "TCP stream c2s: $S_C2S MB/s" "$(verdict "$SW >= 0.8 * $S_C2S")"
	line "100 idle queue pairs: nvmfd CPU <= 1%" "$I_PCT% over $IDLE_SECS s" \
	    "-" "$(verdict "$I_PCT <= 1")"
	line "1000 QPs x 128: RSS <= 64 MiB + namespace" \
	    "$(calc '%.1f MiB + %.1f MiB namespace' "($M_A - $M_NS) / 1024, $M_NS / 1024" 2>/dev/null)" \
	    "$(calc '%.1f MiB + namespace before' "($M_B - $M_NS) / 1024" 2>/dev/null)" \
	    "$(verdict "$M_A - $M_NS <= 65536")"
	line "4K randread QD1 -P: default <= 1.2x poll_us: 50 [3]" \
	    "$(calc '%.1f us = %.2fx, %.2f us CPU/IO' "$LD_LAT, $LD_LAT / $LPB_LAT, $LDP_CPU" 2>/dev/null)" \
	    "$(calc 'poll_us 50: %.1f us, %.2f us CPU/IO' "$LPB_LAT, $LPB_CPU" 2>/dev/null)" \
	    "$(verdict "$LD_LAT <= 1.2 * $LPB_LAT")"
	line "  (same, sleeping client)" \
	    "$(calc '%.1f us, %.2f us CPU/IO' "$L_LAT, $LD_CPU" 2>/dev/null)" \
	    "$(calc 'poll_us 50: %.1f us, %.2f us CPU/IO' "$LP_LAT, $LP_CPU" 2>/dev/null)" \
	    "(info)"
	line "  (polling off, poll_us: 0; sleeping, -P)" \
	    "$(calc '%.1f us, %.2f us CPU/IO; -P %.1f us' "$L0_LAT, $L0_CPU, $L0B_LAT" 2>/dev/null)" \
	    "-" "(info)"
	line "4K randwrite QD1 fresh: >= 0.8x filled [7]" \
	    "$(calc '%.0f IOPS = %.2fx' "$F1, $F1 / $W1" 2>/dev/null)" \
	    "$(calc 'filled: %.0f IOPS' "$W1" 2>/dev/null)" \
	    "$(verdict "$F1 >= 0.8 * $W1")"
	line "4K randwrite QD32 fresh: >= 0.8x filled [7]" \
	    "$(calc '%.0f IOPS = %.2fx' "$F32, $F32 / $W32" 2>/dev/null)" \
	    "$(calc 'filled: %.0f IOPS' "$W32" 2>/dev/null)" \
	    "$(verdict "$F32 >= 0.8 * $W32")"
	line "MSG_ZEROCOPY stream, 1 GiB [4]" \
	    "$(calc '%.0f MB/s = %.2fx' "$S_ZC, $S_ZC / $S_S2C1G" 2>/dev/null); ${S_ZCNOTE:-?} copied" \
	    "TCP stream s2c 1 GiB: $S_S2C1G MB/s" "(info)"
	if [ -n "$NE32" ]; then
		nbd_m=$(calc '%.0f IOPS, %.3f us/IO; QD1 %.1f us' \
		    "$NE32, $NE32C, $NE1" 2>/dev/null)
	else
		nbd_m="not run (BENCH_NBD_URI unset)"
	fi
	if [ -n "$NK32" ]; then
		nbd_b=$(calc 'nbdkit %.0f IOPS, %.2f us/IO; QD1 %.0f us' \
		    "$NK32, $NK32C, $NK1" 2>/dev/null)
	else
		nbd_b="not run (fio or nbdkit missing)"
	fi
	line "NBD export, fio 4K randread QD32 [5]" "$nbd_m" "$nbd_b" \
	    "$(verdict "$NE32 >= $NK32")"
	line "NBD export 4K QD1: avg <= 1.5x nbdkit" \
	    "$(calc '%.1f us = %.2fx' "$NE1, $NE1 / $NK1" 2>/dev/null)" \
	    "nbdkit: $NK1 us" "$(verdict "$NE1 <= 1.5 * $NK1")"
	line "NBD export 128K read QD16: >= 0.8x nbdkit" \
	    "$(calc '%.0f MB/s = %.2fx' "$NE128, $NE128 / $NK128" 2>/dev/null)" \
	    "nbdkit: $NK128 MB/s" "$(verdict "$NE128 >= 0.8 * $NK128")"
	echo "[1] PASS when the client's core is >= 90% busy and nvmfd's < 90%" \
	    "(CPU time over wall time)."
	echo "[2] Not a target: nvmfd reads its data from a 1 GiB namespace;" \
	    "the stream baseline resends one cache-hot 1 MiB buffer."
	echo "[3] Default configuration (adaptive polling, poll_us 50) against" \
	    "daemons with poll_us: 50 and poll_us: 0 set, all with perf -P" \
	    "(the client polls); CPU per I/O is nvmfd's."
	echo "[4] The stream walking 1 GiB sent with MSG_ZEROCOPY; 'copied' counts" \
	    "the sends the kernel reported as copied after all."
	echo "[5] fio's nbd engine; nvmfd's row needs BENCH_NBD_URI and" \
	    "BENCH_NBD_PID; server CPU per I/O from /proc."
	echo "[6] The CPU time of the TCP stream sender walking 1 GiB in 1 MiB" \
	    "writes, per 4 KiB: what sending a 4 KiB read's data costs here" \
	    "before any protocol work."
	echo "[7] A daemon started for the run, its RAM namespace never written:" \
	    "every huge-page chunk is populated on first write (off the worker)."
	awk -F, '!/^#/ && ($2 == "io" || $2 == "baseline") && $25 + 0 > m {
		m = $25; t = $1 }
	    END { if (m > 10)
		printf "WARNING: other processes or the hypervisor took up " \
		    "to %.0f%% of a CPU during a kept run (%s): figures are " \
		    "disturbed; see other_cpu_pct.\n", m, t
	    else
		printf "Other load during the kept runs: at most %.1f%% of " \
		    "a CPU (other_cpu_pct).\n", m }' "$csv"
} | tee "$OUT/summary.txt"
if [ "$SMOKE" != 1 ]; then
	echo
	sh "$here/tls.sh" "$NVMFD" || echo "run.sh: TLS rows failed" >&2
	echo
	sh "$here/file.sh" "$NVMFD" || echo "run.sh: file rows failed" >&2
fi
echo
echo "results: $csv"
