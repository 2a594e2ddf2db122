#!/bin/sh
# notify.sh: nvmfd as a service.  With NOTIFY_SOCKET pointing at a datagram
# socket that notify_listen.py binds (as systemd would), nvmfd -F must send
# READY=1 only once its port accepts connections, and STOPPING=1 on SIGTERM,
# then exit 0.  Its pidfile (-p) must hold its pid, refuse a second instance
# and be gone after exit, in the foreground and when detached.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/notify.sh
# Exit status: 0 pass, 77 skip (no python3), 1 fail, 99 setup error.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"

# The reload check (SIGHUP -> RELOADING=1 with MONOTONIC_USEC, then READY=1):
# NVMFD_TEST_RELOAD=no turns it off.
RELOAD_CHECK=${NVMFD_TEST_RELOAD:-yes}

. "$here/lib.sh"
need_python3
need_nvmfd 99
test_tmpdir notify || exit 99
lpid=
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	stop_listener
	# A detached daemon is not our child: find it by its pidfile.
	if [ -s "$tmp/detached.pid" ]; then
		kill -KILL "$(cat "$tmp/detached.pid")" 2>/dev/null
	fi
}

# A socket path must fit sun_path; a long TMPDIR falls back to an abstract
# name, which systemd also uses.
sock="$tmp/notify.sock"
if [ ${#sock} -ge 100 ]; then
	sock="@nvmfd-notify-test-$$"
fi
events="$tmp/events"

# shellcheck disable=SC2317  # called through setup
write_config() {	# PORT
	cat >"$tmp/nvmfd.yaml" <<EOF
workers: 1
ports:
  - id: 1
    address: 127.0.0.1
    port: $1
subsystems:
  - nqn: nqn.2026-11.io.nvmfd.test:notify
    namespaces:
      - {nsid: 1, backend: ram, size: 4M}
EOF
}

# wait_for PATTERN COUNT SECONDS: until PATTERN is on COUNT lines of $events.
wait_for() {
	i=0
	while [ $i -lt $(($3 * 10)) ]; do
		n=$(grep -c -- "$1" "$events" 2>/dev/null)
		[ "${n:-0}" -ge "$2" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# shellcheck disable=SC2317  # called through setup
stop_listener() {
	[ -n "$lpid" ] || return 0
	kill "$lpid" 2>/dev/null
	wait "$lpid" 2>/dev/null
	lpid=
}

# start_listener PORT: a fresh one (the previous one's daemon could not bind).
# shellcheck disable=SC2317  # called through setup
start_listener() {
	stop_listener
	rm -f "$events"
	[ "${sock#@}" = "$sock" ] && rm -f "$sock"
	python3 "$here/notify_listen.py" --socket "$sock" --port "$1" \
	    --out "$events" --timeout 120 &
	lpid=$!
	if ! wait_for '^BOUND$' 1 10; then
		echo "ERROR: notify_listen.py did not bind $sock"
		exit 99
	fi
}

# ------------------------------------------------- READY=1 from the daemon
# Start on the first free port of 24490-24499.  The wait is for the first
# datagram, not the log: that is what systemd waits for.
# shellcheck disable=SC2317  # called by daemon_start
notified() { grep -q '^DGRAM' "$events" 2>/dev/null; }
daemon_ready=notified
# shellcheck disable=SC2317  # called by daemon_start_on_ports
setup() { write_config "$1" && start_listener "$1"; }
NOTIFY_SOCKET=$sock
export NOTIFY_SOCKET
daemon_start_on_ports setup "$tmp/nvmfd.yaml" "$tmp/nvmfd.log" \
    "24490 24491 24492 24493 24494 24495 24496 24497 24498 24499" \
    -p "$tmp/nvmfd.pid" -s "$tmp/ctl.sock"
rc=$?
unset NOTIFY_SOCKET	# only for this daemon
if [ $rc != 0 ]; then
	[ $rc = 2 ] && daemon_error="no notification within 10 s of starting nvmfd"
	echo "FAIL: $daemon_error"
	exit 1
fi
port=$daemon_port
echo "nvmfd (pid $daemon_pid) on 127.0.0.1:$port, notifying $sock"

# The first datagram is READY=1, sent when the port already took a client.
wait_for '^CONNECT' 1 5
first=$(grep '^DGRAM' "$events" | head -n 1)
case "|${first#DGRAM }|" in
*'|READY=1|'*) ;;
*) fail "first notification is not READY=1: $first" ;;
esac
grep -q '^CONNECT ok$' "$events" ||
    fail "port $port refused a connection at READY=1: $(grep '^CONNECT' "$events")"
grep -q ' ready: ' "$tmp/nvmfd.log" || fail "no 'ready' line in the log"

# --------------------------------------------------------------- pidfile
# The nvmfd runs below must end by themselves: bound them all the same.
TIMEOUT=""
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout -k 5 20"
want="$daemon_pid"
got=$(cat "$tmp/nvmfd.pid" 2>/dev/null)
[ "$got" = "$want" ] || fail "pidfile holds '$got', not $want"
# A second instance on the same pidfile stops before touching the port.
# shellcheck disable=SC2086  # $TIMEOUT is empty or four words
$TIMEOUT "$NVMFD" -F -f "$tmp/nvmfd.yaml" -p "$tmp/nvmfd.pid" \
    -s "$tmp/ctl2.sock" >"$tmp/second.log" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "second nvmfd exited $rc, not 1"
grep -q "already running (pid $daemon_pid)" "$tmp/second.log" ||
    fail "second nvmfd: $(cat "$tmp/second.log")"
[ "$(cat "$tmp/nvmfd.pid" 2>/dev/null)" = "$daemon_pid" ] ||
    fail "the second nvmfd changed the pidfile"

# ------------------------------------------------ RELOADING=1, then READY=1
check_reload() {
	before=$(grep -c '^DGRAM' "$events")
	kill -HUP "$daemon_pid"
	if ! wait_for '^DGRAM' $((before + 2)) 10; then
		fail "reload: no RELOADING=1 and READY=1 within 10 s of SIGHUP"
		return
	fi
	r1=$(grep '^DGRAM' "$events" | sed -n "$((before + 1))p")
	r2=$(grep '^DGRAM' "$events" | sed -n "$((before + 2))p")
	echo "$r1" | grep -Eq '^DGRAM (.*\|)?RELOADING=1(\|.*)?$' ||
	    fail "reload: expected RELOADING=1, got: $r1"
	echo "$r1" | grep -Eq '\|MONOTONIC_USEC=[0-9]+(\||$)' ||
	    fail "reload: RELOADING=1 without MONOTONIC_USEC: $r1"
	echo "$r2" | grep -Eq '^DGRAM (.*\|)?READY=1(\|.*)?$' ||
	    fail "reload: expected READY=1 after RELOADING=1, got: $r2"
	wait_for '^CONNECT' 2 5
	[ "$(grep -c '^CONNECT ok$' "$events")" -ge 2 ] ||
	    fail "reload: port $port refused a connection at READY=1"
	grep -q "reloaded $tmp/nvmfd.yaml" "$tmp/nvmfd.log" ||
	    fail "reload: no 'reloaded' line in the log"
}
if [ "$RELOAD_CHECK" = yes ]; then
	check_reload
else
	echo "reload notification check off (RELOAD_CHECK=no)"
fi

# ------------------------------------------------- SIGTERM: STOPPING=1, exit 0
daemon_stop fail
wait_for '^DGRAM.*STOPPING=1' 1 5 || fail "no STOPPING=1 after SIGTERM"
last=$(grep '^DGRAM' "$events" | tail -n 1)
case "|${last#DGRAM }|" in
*'|STOPPING=1|'*) ;;
*) fail "last notification is not STOPPING=1: $last" ;;
esac
[ ! -e "$tmp/nvmfd.pid" ] || fail "pidfile left behind after exit"
wait "$lpid" 2>/dev/null
lpid=

# --------------------------------------- detached: the pidfile names the daemon
# No NOTIFY_SOCKET here: a detached nvmfd logs to syslog and must simply run.
# shellcheck disable=SC2086  # $TIMEOUT is empty or four words
$TIMEOUT "$NVMFD" -f "$tmp/nvmfd.yaml" -p "$tmp/detached.pid" \
    -s "$tmp/ctl3.sock" >"$tmp/detached.log" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "detached nvmfd: parent exited $rc"
i=0
while [ ! -s "$tmp/detached.pid" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
dpid=$(cat "$tmp/detached.pid" 2>/dev/null)
if [ -z "$dpid" ]; then
	fail "detached nvmfd wrote no pidfile"
elif ! kill -0 "$dpid" 2>/dev/null; then
	fail "detached nvmfd: pid $dpid from the pidfile is not running"
else
	if [ -r "/proc/$dpid/cmdline" ] &&
	    ! tr '\0' ' ' <"/proc/$dpid/cmdline" | grep -q 'detached.pid'; then
		fail "pid $dpid in the pidfile is not the daemon"
	fi
	kill -TERM "$dpid"
	wait_gone "$dpid" 10 || fail "detached nvmfd still running 10 s after SIGTERM"
	[ ! -e "$tmp/detached.pid" ] || fail "detached nvmfd left its pidfile"
fi

log_has_sanitizer_report "$tmp/nvmfd.log" "$tmp/second.log" \
    "$tmp/detached.log" && fail "sanitizer report in a daemon's log"
if [ $status -ne 0 ]; then
	echo "---- notifications"
	cat "$events"
	echo "---- nvmfd log (last 100 lines)"
	tail -n 100 "$tmp/nvmfd.log"
	echo "---- second instance"
	cat "$tmp/second.log"
else
	echo "PASS: READY=1 after listen, STOPPING=1 and exit 0 on SIGTERM, pidfile"
fi
exit $status
