# tests/bench/lib.sh: helpers of run.sh, file.sh and tls.sh, which source it.
# shellcheck shell=sh

# NVMFD from the first argument or the environment, made absolute; usage
# and exit 2 if it is not an executable.
bench_nvmfd() {	# SCRIPT [PATH]
	NVMFD=${2:-${NVMFD:-}}
	if [ -z "$NVMFD" ] || [ ! -x "$NVMFD" ]; then
		echo "usage: $1 path/to/nvmfd" >&2
		exit 2
	fi
	case $NVMFD in /*) ;; *) NVMFD=$(pwd)/$NVMFD ;; esac
}

# SIGTERM, 5 s to go, then SIGKILL (said on stderr); reaps it.
stop_pid() {	# PID WHO
	if kill -0 "$1" 2>/dev/null; then
		kill "$1" 2>/dev/null
		i=0
		while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		if kill -0 "$1" 2>/dev/null; then
			echo "$2 (pid $1) ignored SIGTERM for 5 s; sending SIGKILL" >&2
			kill -9 "$1" 2>/dev/null
		fi
	fi
	wait "$1" 2>/dev/null
}

# Field of a one-line JSON object: jget KEY < json
jget() {
	sed -n "s/.*\"$1\": *\"\{0,1\}\([^,\"}]*\)\"\{0,1\}[,}].*/\1/p"
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }	# FORMAT EXPRESSION
# CPU seconds (utime + stime, all threads) of a process.
pid_cpu() {	# PID
	sed 's/^.*) //' "/proc/$1/stat" |
	    awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / t }'
}
# A port number to try (20000..59999).
random_port() {
	echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 + 20000 ))
}

# SECS, RUNS (BENCH_SECONDS, BENCH_RUNS) and where the results go
# (BENCH_OUT, else next to the scripts): csv and summary.  Exit 2 on
# nonsense.
bench_rounds() {	# WHO
	SECS=${BENCH_SECONDS:-10}
	RUNS=${BENCH_RUNS:-3}
	case $SECS$RUNS in *[!0-9]*)
		echo "$1: BENCH_SECONDS and BENCH_RUNS must be whole numbers" >&2
		exit 2 ;;
	esac
	[ "$SECS" -ge 1 ] && [ "$RUNS" -ge 1 ] || exit 2
	OUT=${BENCH_OUT:-$here}
	csv=$OUT/results.csv
	summary=$OUT/summary.txt
}

# The median run (by IOPS, the first field) of each $work/*.rows file
# replaces the rows of csv whose test name matches ERE; NOTE ends each.
bench_medians() {	# ERE NOTE
	[ -f "$csv" ] || echo "test,kind,workload,block_size,depth,queues,seconds,ios,iops,mbps,lat_avg_us,lat_p50_us,lat_p99_us,lat_p999_us,lat_max_us,client_cpu_us_per_io,client_cpu_pct,target_cpu_us_per_io,target_cpu_pct,errors,rss_before_kib,rss_after_kib,ns_rss_kib,machine_busy_pct,other_cpu_pct,notes" >"$csv"
	grep -Ev "^($1)" "$csv" >"$work/csv"
	for f in "$work"/*.rows; do
		n=$(wc -l <"$f")
		all=$(cut -d, -f1 "$f" | sort -g | tr '\n' '/' | sed 's,/$,,')
		sort -t, -k1,1g "$f" | sed -n "$(( (n + 1) / 2 ))p" |
		    cut -d, -f2- |
		    sed "s,\$,$2; median of $n by IOPS: $all," >>"$work/csv"
	done
	mv "$work/csv" "$csv"
}

# One `nvmfd perf` run of SECS seconds against the daemon dpid (port, NQN;
# pinned with CPIN), its row appended to $work/TEST.rows ("IOPS,CSV
# columns 1..25"); sets iops, ios, err, tcpu (nvmfd's CPU us per I/O),
# ccpu (perf's) and l0 (the load average before).  Exits on failure.
bench_perf_row() {	# WHO TEST PORT WORKLOAD BS DEPTH NOTE [perf options]
	who=$1 test=$2 p=$3 w=$4 b=$5 q=$6 note=$7
	shift 7
	l0=$(cut -d' ' -f1 /proc/loadavg)
	c0=$(pid_cpu "$dpid")
	if ! $CPIN timeout $((SECS + 30)) "$NVMFD" perf -a 127.0.0.1 \
	    -s "$p" -n "$NQN" -N 1 -c 1 -q "$q" -o "$b" -w "$w" -t "$SECS" \
	    -j "$@" >"$work/$test.json" 2>"$work/$test.err"; then
		echo "$who: $test: nvmfd perf failed:" >&2
		cat "$work/$test.err" "$work/nvmfd.log" >&2
		exit 1
	fi
	c1=$(pid_cpu "$dpid")
	j=$(tail -1 "$work/$test.json")
	ios=$(echo "$j" | jget ios)
	iops=$(echo "$j" | jget iops)
	ccpu=$(echo "$j" | jget client_cpu_us_per_io)
	err=$(( $(echo "$j" | jget errors) + $(echo "$j" | jget verify_errors) ))
	tcpu=$(calc %.3f "($ios > 0 ? ($c1 - $c0) * 1e6 / $ios : 0)")
	echo "$iops,$test,io,$w,$b,$q,1,$(echo "$j" | jget seconds),$ios,$iops,$(echo "$j" | jget mbps),$(echo "$j" | jget lat_avg_us),$(echo "$j" | jget lat_p50_us),$(echo "$j" | jget lat_p99_us),$(echo "$j" | jget lat_p999_us),$(echo "$j" | jget lat_max_us),$ccpu,$(calc %.1f "$ccpu * $iops / 1e4"),$tcpu,$(calc %.1f "($c1 - $c0) * 100 / $SECS"),$err,,,,,,$note${note:+; }load $l0" >>"$work/$test.rows"
	mbps=$(echo "$j" | jget mbps)
}
