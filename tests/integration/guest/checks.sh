# shellcheck shell=sh disable=SC2154  # A and AP are the caller's
# Sourced by the guest scripts that talk to ctl_agent.py (copied into the
# VM as /peer/files/checks.sh): check reporting and the agent's client.
# The caller sets A and AP (the agent's address and port) first.

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
