# tests/bench/lib.sh: helpers of run.sh and file.sh, which source it.
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
