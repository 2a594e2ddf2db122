#!/bin/sh
# tests/bench/file.sh: file-backed namespace rows of the nvmfd benchmark,
# next to fio's io_uring engine on the same file in the same rounds.
#
#   file.sh path/to/nvmfd            (or: BENCH_ONLY=file run.sh path/to/nvmfd)
#
# A 1 GiB file (4 KiB blocks) on a disk file system, served by nvmfd as a
# file namespace with direct: true and then direct: false, driven by
# `nvmfd perf` over TCP loopback: 4 KiB random read and write at QD32,
# 128 KiB sequential read and write at QD16.  Right after each nvmfd run,
# fio (ioengine=io_uring, direct=1 or 0 to match) runs the same workload on
# the same file, on nvmfd's CPU: the one that takes the disk's interrupts
# where that can be told, with perf on another.  Each row keeps its median
# run; the summary gives nvmfd / fio (goal: >= 0.9x with O_DIRECT), and
# for each the average number of requests the disk held during the run
# (from its /sys/block stat: weighted time in queue over elapsed time),
# which tells a slow disk from commands held up on their way to it.
#
# Replaces the file_* rows of results.csv and the "File namespaces" part of
# summary.txt (in BENCH_OUT or next to this script), keeping the rest.
#
# Environment: BENCH_SECONDS (default 10), BENCH_RUNS (3), BENCH_OUT, and
#   BENCH_FILE_DIR=DIR   where the test file goes (default: TMPDIR or /tmp);
#                        it must take O_DIRECT (tmpfs does not), or the
#                        direct rows are skipped with a message.
# Needs fio (with io_uring) and taskset; says what it skips.  Only
# processes started here are stopped, by PID.
set -u
LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bench_nvmfd "$0" "${1:-}"
bench_rounds file.sh
dir=${BENCH_FILE_DIR:-${TMPDIR:-/tmp}}
NQN=nqn.2026-11.io.nvmfd:bench-file
SIZE=1G

if ! command -v fio >/dev/null 2>&1 ||
    ! fio --enghelp 2>/dev/null | grep -qw io_uring; then
	echo "file.sh: fio with its io_uring engine missing: file rows" \
	    "skipped (apt-get install fio)"
	exit 0
fi
work=$(mktemp -d "$dir/nvmfd-bench-file.XXXXXX") || exit 1
img=$work/ns.img
dpid=""
stop_daemon() {
	[ -n "$dpid" ] || return 0
	stop_pid "$dpid" "file.sh: nvmfd"
	dpid=""
}
cleanup() {
	stop_daemon
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		rm -f "$img"
		echo "file.sh: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load0=$(cut -d' ' -f1-3 /proc/loadavg)
fstype=$(df -PT "$dir" 2>/dev/null | awk 'NR == 2 { print $2 }')
dev=$(df -PT "$dir" 2>/dev/null | awk 'NR == 2 { print $1 }')

# The CPU that has taken most of the disk's queue interrupts (virtio-blk
# "virtioN-req.Q", NVMe "nvmeNqQ"), or nothing when that cannot be told.
disk_irq_cpu() {	# /dev/NAME
	sys=/sys/class/block/${1#/dev/}
	[ -e "$sys" ] || return 0
	[ -e "$sys/partition" ] && sys=$(dirname "$(readlink -f "$sys")")
	drv=$(basename "$(readlink -f "$sys/device" 2>/dev/null)")
	[ -n "$drv" ] || return 0
	awk -v d="$drv" 'NR == 1 { ncpu = NF; next }
	    $NF ~ "^" d "(-req|q[1-9])" {
		for (i = 2; i <= ncpu + 1; i++) n[i - 2] += $i
	    }
	    END { best = -1
		for (c in n) if (n[c] > 0 && (best < 0 || n[c] > n[best]))
			best = c
		if (best >= 0) print best }' /proc/interrupts
}

# The disk's weighted time in queue (ms, field 11 of its stat) and now
# (ms), for the average number of requests it held over a run.
dstat=/sys/class/block/${dev#/dev/}/stat
disk_mark() {
	[ -r "$dstat" ] || return 0
	echo "$(awk '{ print $11 }' "$dstat") $(date +%s%3N)"
}
# Appends "; disk depth D" to the last row of $work/TEST.rows.
disk_note() {	# TEST MARK-BEFORE
	[ -n "$2" ] || return 0
	dd_=$(echo "$2 $(disk_mark)" |
	    awk '$4 > $2 { printf "%.1f", ($3 - $1) / ($4 - $2) }')
	[ -n "$dd_" ] && sed -i '$ s/$/; disk depth '"$dd_"'/' "$work/$1.rows"
	return 0
}

# nvmfd and fio run on the CPU that takes the disk's completions, so that
# each finds them on its own CPU (fio on any other CPU would be woken from
# there, like nvmfd); perf goes to another CPU.  Without that knowledge,
# CPU 0 and 1.
DPIN="" CPIN="" dcpu=0 pcpu=1
if [ "$(getconf _NPROCESSORS_ONLN)" -ge 2 ] &&
    command -v taskset >/dev/null 2>&1; then
	irq=$(disk_irq_cpu "$dev")
	if [ -n "$irq" ]; then
		dcpu=$irq
		pcpu=$([ "$irq" = 0 ] && echo 1 || echo 0)
	fi
	DPIN="taskset -c $dcpu"
	CPIN="taskset -c $pcpu"
fi
[ -n "$fstype" ] || fstype=unknown
echo "-- file namespaces: $work on $fstype ($dev)"

# The file, written through once so reads hit allocated blocks.
if ! fio --name=fill --filename="$img" --size=$SIZE --rw=write --bs=1m \
    --ioengine=io_uring --iodepth=8 --direct=0 --end_fsync=1 \
    >"$work/fill.out" 2>&1; then
	echo "file.sh: cannot write $img:" >&2
	cat "$work/fill.out" >&2
	exit 1
fi
if fio --name=probe --filename="$img" --size=4k --rw=read --bs=4k \
    --ioengine=psync --direct=1 >"$work/probe.out" 2>&1; then
	modes="direct buffered"
else
	modes="buffered"
	echo "file.sh: O_DIRECT fails on $fstype: direct rows skipped" \
	    "(set BENCH_FILE_DIR to a disk file system)"
fi

port=""
start_daemon() {	# DIRECT(true|false)
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		port=$(random_port)
		cat >"$work/nvmfd.yaml" <<EOF
workers: 1
control:
  socket: $work/nvmfd.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $port, max_queue_depth: 256}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: file, path: $img, block_size: 4096, direct: $1}
EOF
		: >"$work/nvmfd.log"
		$DPIN "$NVMFD" -F -f "$work/nvmfd.yaml" 2>>"$work/nvmfd.log" &
		dpid=$!
		i=0
		while [ $i -lt 100 ]; do
			grep -q ' ready' "$work/nvmfd.log" && return 0
			kill -0 "$dpid" 2>/dev/null || break
			sleep 0.1
			i=$((i + 1))
		done
		stop_daemon
		grep -qi 'in use' "$work/nvmfd.log" || break
	done
	echo "file.sh: nvmfd did not start:" >&2
	cat "$work/nvmfd.log" >&2
	exit 1
}

nvmfd_run() {	# TEST WORKLOAD BS DEPTH
	m0=$(disk_mark)
	bench_perf_row file.sh "$1" "$port" "$2" "$3" "$4" ""
	disk_note "$1" "$m0"
	printf '%-34s %8.0f IOPS %8.1f MB/s (load %s)\n' "$1" "$iops" \
	    "$mbps" "$l0"
}
fio_run() {	# TEST WORKLOAD BS DEPTH DIRECT(0|1)
	l0=$(cut -d' ' -f1 /proc/loadavg)
	m0=$(disk_mark)
	if ! $DPIN timeout $((SECS + 30)) fio --name="$1" --filename="$img" \
	    --size=$SIZE --rw="$2" --bs="$3" --iodepth="$4" --direct="$5" \
	    --ioengine=io_uring --time_based --runtime="$SECS" \
	    --output-format=json >"$work/$1.json" 2>"$work/$1.err"; then
		echo "file.sh: $1: fio failed:" >&2
		cat "$work/$1.err" >&2
		exit 1
	fi
	# fio_row.py: ios iops mbps avg p50 p99 p999 max ccpu cpct tcpu tpct
	set -- "$1" "$2" "$3" "$4" $(python3 "$here/fio_row.py" \
	    "$work/$1.json" 0 "$SECS")
	echo "$6,$1,baseline,$2,$3,$4,1,$SECS,$5,$6,$7,$8,$9,${10},${11},${12},${13},${14},,,0,,,,,,load $l0" >>"$work/$1.rows"
	disk_note "$1" "$m0"
	printf '%-34s %8.0f IOPS %8.1f MB/s (load %s)\n' "$1" "$6" "$7" "$l0"
}

# name workload bs depth
set -- randread_4k_qd32 randread 4096 32 randwrite_4k_qd32 randwrite 4096 32 \
    read_128k_qd16 read 131072 16 write_128k_qd16 write 131072 16
tests="$*"
round=1
while [ $round -le "$RUNS" ]; do
	for m in $modes; do
		[ $m = direct ] && d=1 || d=0
		[ $d = 1 ] && dv=true || dv=false
		start_daemon $dv
		set -- $tests
		while [ $# -ge 4 ]; do
			nvmfd_run "file_${m}_$1" "$2" "$3" "$4"
			fio_run "file_${m}_fio_$1" "$2" "$3" "$4" $d
			shift 4
		done
		stop_daemon
	done
	round=$((round + 1))
done

# Median run of each test; rows replace the file_* rows of results.csv.
bench_medians file_ "; $fstype"

val() {	# TEST COLUMN-NUMBER
	awk -F, -v t="$1" -v c="$2" '$1 == t { print $c; exit }' "$csv"
}
depth() {	# TEST: the disk depth in its row's notes, or "?"
	awk -F, -v t="$1" '$1 == t {
		if (match($NF, /disk depth [0-9.]+/))
			d = substr($NF, RSTART + 11, RLENGTH - 11)
		exit }
	    END { print (d == "" ? "?" : d) }' "$csv"
}
{
	echo "File namespaces (file.sh): $SECS s per run, median of $RUNS," \
	    "a 1 GiB file with 4 KiB blocks on $fstype ($dev), nvmfd and" \
	    "fio io_uring on CPU $dcpu${irq:+ (the disk's interrupts)}," \
	    "perf on CPU $pcpu over TCP loopback; load average" \
	    "at the start: $load0, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	printf '%-40s %-26s %-26s %s\n' Row "nvmfd (disk depth)" \
	    "fio io_uring, same file" "nvmfd/fio"
	for m in $modes; do
		set -- $tests
		while [ $# -ge 4 ]; do
			a=$(val "file_${m}_$1" 9) b=$(val "file_${m}_fio_$1" 9)
			r=$(calc %.2fx "$a / $b")
			v="(info)"
			if [ $m = direct ]; then
				v=$(awk "BEGIN { print ($a >= 0.9 * $b ? \"PASS\" : \"MISS\") }")
			fi
			printf '%-40s %-26s %-26s %s %s\n' "$m $1" \
			    "$a IOPS ($(depth "file_${m}_$1"))" \
			    "$b IOPS ($(depth "file_${m}_fio_$1"))" "$r" "$v"
			shift 4
		done
	done
	echo "Goal: nvmfd >= 0.9x fio with O_DIRECT; buffered rows are for" \
	    "information (fio reads the page cache without a network hop)." \
	    "Disk depth: requests the disk held on average during the run," \
	    "whoever made them."
} >"$work/sum"
if [ -f "$summary" ]; then
	sed '/^File namespaces (file.sh)/,$d' "$summary" >"$work/sum0"
else
	: >"$work/sum0"
fi
cat "$work/sum0" "$work/sum" >"$summary"
cat "$work/sum"
