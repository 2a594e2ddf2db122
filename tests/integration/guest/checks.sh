# shellcheck shell=sh disable=SC2154  # A, AP and NQN are the caller's
# Sourced by the guest scripts that talk to ctl_agent.py (copied into the
# VM as /peer/files/checks.sh): check reporting, the agent's client, the
# controllers of NQN, and the multipath tests' look at discovery logs and
# paths.  The caller sets A and AP (the agent's address and port), and NQN
# for ctrl and ctrl_at, first.

T0=$(cut -d. -f1 /proc/uptime)
failed=0

say() { echo "[$(($(cut -d. -f1 /proc/uptime) - T0))s] $*"; }
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	failed=1
}
# Nothing more can be checked: the diagnostics, then out.
abort() {
	fail "$*"
	finish
}
finish() {
	ask "done" >/dev/null 2>&1
	if [ "$failed" != 0 ]; then
		echo "--- nvme list-subsys"
		nvme list-subsys 2>&1
		echo "--- dmesg (NVMe lines, last 40)"
		dmesg | grep -i nvme | tail -40
		echo "SOME CHECKS FAILED"
		exit 1
	fi
	echo "ALL CHECKS PASSED"
	exit 0
}

# ask REQUEST...: one request to the agent; prints its answer, returns 0 for
# "ok ...".  Bounded: the agent runs one nvmfctl command per request.
ask() {
	ans=$(echo "$*" | timeout 40 nc "$A" "$AP" 2>/dev/null | head -1)
	echo "$ans"
	case $ans in
	ok*) return 0 ;;
	*) return 1 ;;
	esac
}

# entries ADDR SVCID: one line per discovery log entry,
# "SUBTYPE|TRADDR|TRSVCID|SUBNQN".
entries() {
	nvme discover -t tcp -a "$1" -s "$2" 2>/dev/null | awk '
	function flush() { if (n) print st "|" ad "|" sv "|" nq }
	/^=+Discovery Log Entry/ { flush(); n = 1; st = ad = sv = nq = "" }
	/^subtype:/ { sub(/^subtype: */, ""); st = $0 }
	/^traddr:/ { ad = $2 }
	/^trsvcid:/ { sv = $2 }
	/^subnqn:/ { nq = $2 }
	END { flush() }'
}

# ctrl: "nvmeN cntlid" of the controller connected to NQN (one line each):
# another name or ID later means the host reconnected.
ctrl() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] &&
			echo "${c##*/} $(cat "$c/cntlid")"
	done
}

# ctrl_at SVCID: the controller (nvmeN) connected to NQN through SVCID.
ctrl_at() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] || continue
		case ",$(cat "$c/address" 2>/dev/null)," in
		*",trsvcid=$1,"*) echo "${c##*/}"; return 0 ;;
		esac
	done
	return 1
}

# path_of CTRL: the hidden per-path block device (nvmeXcYnZ) of CTRL.
path_of() {
	for p in /sys/class/nvme/"$1"/nvme*c*n1; do
		[ -e "$p" ] && { echo "${p##*/}"; return 0; }
	done
	return 1
}

# writes PATHDEV: write requests completed on that path.
writes() { awk '{ print $5 }' "/sys/block/$1/stat"; }

# mp_connect [NVME-CONNECT-ARG...]: connect to NQN through 10.0.2.2 ports
# PA and PB (one I/O queue each, plus the ARGs); sets dev
# (the multipath block device), ca/cb (the controllers), pa/pb (the
# per-path devices), subsys, and from nvme list-subsys nsub (subsystems
# with NQN) and npaths (paths); aborts the "multipath" check when one is
# missing.
mp_connect() {
	say "connecting through both nodes"
	nvme_tcp_connect "$A" "$PA" "$NQN" --nr-io-queues=1 "$@" ||
		abort "multipath: connect through node A failed"
	nvme_tcp_connect "$A" "$PB" "$NQN" --nr-io-queues=1 "$@" ||
		abort "multipath: connect through node B failed"
	dev=$(nvme_wait_ns "$NQN") || abort "multipath: no namespace block device"
	ca=$(ctrl_at "$PA") && cb=$(ctrl_at "$PB") ||
		abort "multipath: no controller for one of the ports"
	pa=$(path_of "$ca") && pb=$(path_of "$cb") ||
		abort "multipath: no per-path devices (native multipath off?)"
	subsys=""
	for s in /sys/class/nvme-subsystem/*; do
		[ "$(cat "$s/subsysnqn" 2>/dev/null)" = "$NQN" ] &&
		    subsys=${s##*/}
	done
	ls_out=$(nvme list-subsys 2>&1)
	echo "$ls_out" | sed 's/^/  /'
	nsub=$(echo "$ls_out" | grep -c "NQN=$NQN")
	npaths=$(echo "$ls_out" | grep -cE "^ *\+- nvme[0-9]+ tcp")
}

# mp_fio NAME: fio writes and verifies through dev for 20 s in the
# background (fio_pid, output in /tmp/fio.out); returns once both paths
# pa and pb carry writes of this run (fio starts slowly under emulation),
# or 15 s.
mp_fio() {
	_wa=$(writes "$pa") _wb=$(writes "$pb")
	fio --name="$1" --filename="$dev" --ioengine=libaio --direct=1 \
	    --rw=randwrite --bs=4k --size=16M --iodepth=4 --verify=crc32c \
	    --verify_backlog=64 --time_based --runtime=20 >/tmp/fio.out 2>&1 &
	fio_pid=$!
	i=0
	while [ $i -lt 150 ] && { [ "$(writes "$pa")" = "$_wa" ] ||
	    [ "$(writes "$pb")" = "$_wb" ]; }; do
		sleep 0.1
		i=$((i + 1))
	done
}

# mp_fio_wait CHECK [WHAT]: wait for fio; CHECK passes when it ended with no
# error and the kernel logged no I/O error.
mp_fio_wait() {
	wait "$fio_pid"
	frc=$?
	grep -E 'err=|IOPS=|verify|bad' /tmp/fio.out | sed 's/^/  fio: /'
	if [ "$frc" = 0 ] && grep -q 'err= *0:' /tmp/fio.out &&
	    ! dmesg | grep -qiE 'I/O error|critical (medium|target) error'; then
		pass "$1: fio verify finished with no error${2:+ $2}"
	else
		fail "$1: fio exit $frc, or I/O errors in dmesg"
		tail -20 /tmp/fio.out
	fi
}
