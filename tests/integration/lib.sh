# shellcheck shell=sh disable=SC2034  # daemon_* are for the callers
# Sourced by the integration tests that run nvmfd on this machine: their
# common set-up, starting nvmfd on a free port, stopping it, reading its log.
#
#   daemon_start CONFIG LOG [NVMFD-ARG...]
#       nvmfd -F -f CONFIG, its output in LOG; waits up to 10 s until
#       "$daemon_ready" LOG succeeds.  Sets daemon_pid.  Returns 0 ready;
#       1 exited (daemon_pid empty, daemon_rc its status); 2 not ready in
#       10 s (still running: daemon_kill it, or leave that to the trap).
#       On failure it prints LOG, and daemon_error says what went wrong.
#   daemon_start_on_ports SETUP CONFIG LOG PORTS [NVMFD-ARG...]
#       daemon_start on the first of PORTS (a space-separated list) that
#       the daemon can bind; SETUP PORT is called first (see below).  Sets
#       daemon_port.  Returns as daemon_start, or 3 when every port is in
#       use.
#   daemon_stop FAIL
#       SIGTERM: nvmfd must exit with status 0 within 10 s.  Otherwise
#       (also when it had died before) it calls the caller's FAIL MESSAGE,
#       SIGKILLs it after those 10 s and returns 1.
#   daemon_kill
#       SIGKILL, for EXIT traps.
#   log_has_sanitizer_report LOG...
#       true if ASan, LSan or UBSan reported in a LOG; prints those LOGs.
#   node_start CONFIG LOG [NVMFD-ARG...]
#       a second nvmfd (a multipath node) besides the daemon: nvmfd -F -f
#       CONFIG, output in LOG, waits up to 10 s for "ready".  Sets
#       node_pid (the caller stops it).  Returns 1, LOG printed and the
#       node killed, when it did not get ready.
#   wait_gone PID SECONDS
#       true once there is no process PID (it need not be a child).
#   need_nvmfd RC
#       exit RC (77 skip, 99 error) unless NVMFD is an executable.
#   need_python3
#       exit 77 (skip) when there is no python3.
#   need_nbd_python
#       NBDPY: a python3 that has libnbd's binding (the system's, which
#       may not be the first python3 on PATH); exit 77 (skip) if none.
#   test_tmpdir NAME [MAXLEN]
#       tmp: a new directory nvmfd-NAME.XXXXXX in $TMPDIR (in /tmp when
#       TMPDIR is unset, or longer than MAXLEN: socket paths must fit
#       sun_path).  At exit, and on INT/TERM/HUP (exit 1), the test's
#       test_cleanup runs, the daemon is killed and tmp removed.  Returns
#       non-zero when mktemp fails.
#   ram_target_config PORT NQN [TOP-LEVEL-YAML]
#       $tmp/nvmfd.yaml: one port on 127.0.0.1, one subsystem with a 4 MiB
#       RAM namespace, the control socket in $tmp.
#   nbd_self_config PORT NQN NAMESPACE...
#       $tmp/nvmfd.yaml for an nvmfd that is the target and its own NBD
#       host: one port on 127.0.0.1, subsystem NQN with the NAMESPACEs
#       (YAML flow mappings), the control socket and the NBD socket
#       (nbd.sock) in $tmp.
#   host_assoc FIELD
#       FIELD of the first association "$tmp/nvmfctl -s $tmp/ctl.sock
#       list-host --json" shows (empty if none).
#   host_wait_state STATE SECONDS
#       true once that association is in STATE, within SECONDS; false
#       then, or as soon as the daemon is gone.
#   daemon_start_or_skip SETUP PORTS
#       daemon_start_on_ports with $tmp/nvmfd.yaml and $tmp/nvmfd.log;
#       no free port: SKIP (exit 77); any other failure: FAIL (exit 1).
#   daemon_cpu_ticks
#       the daemon's CPU time so far (user + system), in clock ticks.
#   daemon_serves WHAT [NQN]
#       a 1 s verified perf write run (QD4, 4 KiB) against the daemon's
#       namespace 1 of NQN (default $NQN): "ok: serves WHAT", or FAIL.
#   test_finish
#       SIGTERM must stop the daemon with status 0 and its log must hold
#       no sanitizer report; prints the log's end on failure, else PASS;
#       exits with status.
#   tls_gen_key [01|02]
#       prints a new TLS PSK in interchange form, NVMeTLSkey-1:XX:<base64>:
#       (32 random bytes for 01, the default; 48 for 02), as nvme
#       gen-tls-key writes it.  Needs python3.
#   dhchap_gen_key [XX]
#       prints a new DH-HMAC-CHAP secret, DHHC-1:XX:<base64>: (32 random
#       bytes; XX the transformation hash, 00 none by default), as nvme
#       gen-dhchap-key writes it.  Needs python3.
#   say MESSAGE, fail MESSAGE
#       say prints (a test may redefine it, after sourcing this, to add a
#       prefix); fail says "FAIL: MESSAGE" and sets status=1.
#
# NVMFD names the daemon.  The helpers' own names start with "_".

# Reports go to the daemon's log, where log_has_sanitizer_report finds them;
# leak reports make the daemon's exit status non-zero.  Python's bytecode
# would land in the source tree.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# ThreadSanitizer builds: the races it may not report are in tsan.supp.
TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$top_srcdir/tests/tsan.supp}
PYTHONDONTWRITEBYTECODE=1
export ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS PYTHONDONTWRITEBYTECODE

daemon_pid=
daemon_port=
daemon_rc=
daemon_error=
status=0

say() { echo "$*"; }
fail() {
	say "FAIL: $*"
	status=1
}

need_nvmfd() {
	[ -n "${NVMFD:-}" ] && [ -x "$NVMFD" ] && return 0
	if [ "$1" = 77 ]; then
		say "SKIP: NVMFD is not set to the nvmfd binary"
	else
		say "ERROR: NVMFD is not set to the nvmfd binary"
	fi
	exit "$1"
}

need_python3() {
	command -v python3 >/dev/null 2>&1 && return 0
	say "SKIP: python3 is not installed"
	exit 77
}

need_nbd_python() {
	NBDPY=
	for _np_py in python3 /usr/bin/python3; do
		"$_np_py" -c 'import nbd' 2>/dev/null && { NBDPY=$_np_py; return 0; }
	done
	say "SKIP: libnbd's Python binding is not installed (apt-get install" \
	    "python3-libnbd)"
	exit 77
}

ram_target_config() {
	cat >"$tmp/nvmfd.yaml" <<EOF
${3:-}
control:
  socket: $tmp/ctl.sock
ports:
  - id: 1
    address: 127.0.0.1
    port: $1
subsystems:
  - nqn: $2
    namespaces:
      - {nsid: 1, backend: ram, size: 4M}
EOF
}

nbd_self_config() {
	_nc_port=$1 _nc_nqn=$2
	shift 2
	cat >"$tmp/nvmfd.yaml" <<EOF
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $_nc_port}
subsystems:
  - nqn: $_nc_nqn
    namespaces:
$(for _nc_ns in "$@"; do echo "      - $_nc_ns"; done)
host:
  nbd:
    socket: $tmp/nbd.sock
EOF
}

host_assoc() {
	"$tmp/nvmfctl" -s "$tmp/ctl.sock" list-host --json 2>/dev/null |
	    python3 -c 'import json, sys
a = json.load(sys.stdin)["associations"]
print(a[0][sys.argv[1]] if a else "")' "$1" 2>/dev/null
}

host_wait_state() {
	_hw_end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -le $_hw_end ]; do
		[ "$(host_assoc state)" = "$1" ] && return 0
		kill -0 "$daemon_pid" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

daemon_start_or_skip() {
	daemon_start_on_ports "$1" "$tmp/nvmfd.yaml" "$tmp/nvmfd.log" "$2" &&
	    return 0
	[ $? = 3 ] && { say "SKIP: $daemon_error"; exit 77; }
	say "FAIL: $daemon_error"
	exit 1
}

daemon_cpu_ticks() {
	sed 's/^.*) //' "/proc/$daemon_pid/stat" | awk '{ print $12 + $13 }'
}

daemon_serves() {
	_ds_to=""
	command -v timeout >/dev/null 2>&1 && _ds_to="timeout -k 5 30"
	# shellcheck disable=SC2086  # $_ds_to is empty or three words
	if $_ds_to "${real_nvmfd:-$NVMFD}" perf -a 127.0.0.1 -s "$daemon_port" \
	    -n "${2:-$NQN}" -q 4 -o 4096 -w write -t 1 -v -j \
	    >"$tmp/perf.json" 2>"$tmp/perf.err"; then
		echo "ok: serves $1: $(sed -n 's/.*"ios":\([0-9]*\).*/\1/p' \
		    "$tmp/perf.json") verified writes"
	else
		fail "perf $1: $(tail -1 "$tmp/perf.err")"
	fi
}

test_finish() {
	daemon_stop fail && say "ok: SIGTERM: exit 0"
	log_has_sanitizer_report "$tmp/nvmfd.log" >/dev/null &&
	    fail "sanitizer report in the daemon's log"
	if [ "$status" -ne 0 ]; then
		say "---- nvmfd log (last 200 lines)"
		tail -n 200 "$tmp/nvmfd.log"
	else
		say "PASS"
	fi
	exit "$status"
}

# What the test has to stop besides the daemon; it redefines this.
test_cleanup() { :; }

test_tmpdir() {
	_tt_base=${TMPDIR:-/tmp}
	[ -n "${2:-}" ] && [ ${#_tt_base} -gt "$2" ] && _tt_base=/tmp
	tmp=$(mktemp -d "$_tt_base/nvmfd-$1.XXXXXX") || return 1
	trap _test_exit EXIT
	trap 'exit 1' INT TERM HUP
}

# shellcheck disable=SC2317  # called from the trap
_test_exit() {
	test_cleanup
	daemon_kill
	rm -rf "$tmp"
}

# daemon_ready names the test for "ready" (called with LOG); a test that
# waits for something else (notify.sh: the READY=1 datagram) sets its own.
daemon_logged_ready() { grep -q ' ready: ' "$1"; }
daemon_ready=daemon_logged_ready

daemon_start() {
	_daemon_run "$@"
	_ds_rc=$?
	[ $_ds_rc = 0 ] || _daemon_show_log "$2"
	return $_ds_rc
}

# daemon_start, but quiet: a port in use is no news.
_daemon_run() {
	_dr_config=$1 _dr_log=$2
	shift 2
	: >"$_dr_log"	# there before the first look at it
	"$NVMFD" -F -f "$_dr_config" "$@" >>"$_dr_log" 2>&1 &
	daemon_pid=$!
	_dr_i=0
	while [ $_dr_i -lt 100 ]; do
		"$daemon_ready" "$_dr_log" && return 0
		if ! kill -0 "$daemon_pid" 2>/dev/null; then
			wait "$daemon_pid"
			daemon_rc=$?
			daemon_pid=
			daemon_error="nvmfd exited at start (exit $daemon_rc)"
			return 1
		fi
		sleep 0.1
		_dr_i=$((_dr_i + 1))
	done
	daemon_error="nvmfd not ready within 10 s"
	return 2
}

_daemon_show_log() {
	echo "---- nvmfd log ($1)"
	cat "$1"
	echo "---- end of nvmfd log"
}

# Other tests, and other checkouts' tests, may hold some of a test's ports
# at the same time: a start that fails with "address in use" goes on to the
# next port.  SETUP PORT writes CONFIG for PORT and starts whatever else
# needs a port next to it; it returns non-zero when that port is taken,
# which counts as "in use" too.
daemon_start_on_ports() {
	_dp_setup=$1 _dp_config=$2 _dp_log=$3 _dp_ports=$4
	shift 4
	daemon_port=
	for _dp_port in $_dp_ports; do
		"$_dp_setup" "$_dp_port" || continue
		_daemon_run "$_dp_config" "$_dp_log" "$@"
		_dp_rc=$?
		if [ $_dp_rc = 0 ]; then
			daemon_port=$_dp_port
			return 0
		fi
		[ $_dp_rc = 1 ] && grep -qi 'in use' "$_dp_log" && continue
		_daemon_show_log "$_dp_log"
		return $_dp_rc
	done
	daemon_error="no free port of $_dp_ports"
	return 3
}

node_start() {
	_ns_config=$1 _ns_log=$2
	shift 2
	"$NVMFD" -F -f "$_ns_config" "$@" >"$_ns_log" 2>&1 &
	node_pid=$!
	for _ in $(seq 100); do
		grep -q ' ready: ' "$_ns_log" && return 0
		kill -0 "$node_pid" 2>/dev/null || break
		sleep 0.1
	done
	grep -q ' ready: ' "$_ns_log" && return 0
	kill -KILL "$node_pid" 2>/dev/null
	wait "$node_pid" 2>/dev/null
	node_pid=
	_daemon_show_log "$_ns_log"
	return 1
}

wait_gone() {
	_wg_i=0
	while kill -0 "$1" 2>/dev/null; do
		[ $_wg_i -ge $(($2 * 10)) ] && return 1
		sleep 0.1
		_wg_i=$((_wg_i + 1))
	done
	return 0
}

daemon_stop() {
	[ -n "$daemon_pid" ] || return 0	# none started, or already stopped
	if ! kill -0 "$daemon_pid" 2>/dev/null; then
		wait "$daemon_pid"
		daemon_rc=$?
		daemon_pid=
		"$1" "nvmfd died during the test (exit $daemon_rc)"
		return 1
	fi
	kill -TERM "$daemon_pid"
	if ! wait_gone "$daemon_pid" 10; then
		"$1" "nvmfd still running 10 s after SIGTERM"
		daemon_kill
		return 1
	fi
	wait "$daemon_pid"
	daemon_rc=$?
	daemon_pid=
	if [ $daemon_rc != 0 ]; then
		"$1" "nvmfd exited with $daemon_rc after SIGTERM"
		return 1
	fi
	return 0
}

daemon_kill() {
	[ -n "$daemon_pid" ] || return 0
	kill -KILL "$daemon_pid" 2>/dev/null
	wait "$daemon_pid" 2>/dev/null
	daemon_pid=
}

# Not grep's status: a missing LOG would make it 2 even after a match.
log_has_sanitizer_report() {
	_sr_logs=$(grep -lE 'AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error' \
	    "$@" 2>/dev/null)
	[ -n "$_sr_logs" ] || return 1
	echo "$_sr_logs"
}

tls_gen_key() {
	_gen_key NVMeTLSkey-1 "${1:-01}"
}

dhchap_gen_key() {
	_gen_key DHHC-1 "${1:-00}"
}

# PREFIX XX: random bytes and their CRC-32 in the interchange form.
_gen_key() {
	python3 -c 'import base64, os, struct, sys, zlib
p, h = sys.argv[1:3]
k = os.urandom(48 if p.startswith("NVMeTLS") and h == "02" else 32)
print("%s:%s:%s:" % (p, h, base64.b64encode(k + struct.pack("<I", zlib.crc32(k))).decode()))' "$1" "$2"
}
