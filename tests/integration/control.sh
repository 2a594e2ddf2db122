#!/bin/sh
# control.sh: the control channel end to end.  The real daemon on a private
# configuration with its control sockets in a temporary directory, driven by
# nvmfctl (the same binary under that name):
#   - every command's --json output parses (python3 -m json.tool), and every
#     command nvmfctl lists is run at least once;
#   - exit codes: 2 usage, 3 not found, 4 exists, 5 read-only socket, 8 no
#     daemon;
#   - a subsystem, RAM namespace and host added live take I/O from
#     "nvmfd perf"; stats show the writes; a read-only namespace fails
#     writes and serves reads; del-ns and terminate while perf runs;
#   - save, restart from the saved file: the same listings;
#   - reload of a broken file fails with file:line:column and changes
#     nothing; a good one (and SIGHUP) applies model, namespace and port
#     changes;
#   - a second daemon on the same control socket is refused; a stale socket
#     left by SIGKILL is replaced; SIGTERM exits 0; no sanitizer reports.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/control.sh
# Exit status: 0 pass, 77 skip (no python3, no free port), 1 fail, 99 error.

NVMFD=${NVMFD:-}
here=$(cd "$(dirname "$0")" && pwd)

. "$here/lib.sh"
need_python3
need_nvmfd 99

NQN_A=nqn.2026-11.io.nvmfd.test:ctl-a
NQN_IO=nqn.2026-11.io.nvmfd.test:ctl-io
NQN_NEW=nqn.2026-11.io.nvmfd.test:ctl-new
HOST_PERF=nqn.2026-11.io.nvmfd.test:perf-host
HOST_OTHER=nqn.2026-11.io.nvmfd.test:other-host

# Control socket paths must fit sun_path (108 bytes).
test_tmpdir control 60 || exit 99
bgpids=
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	for p in $bgpids; do	# timeout(1) passes TERM on to perf
		kill -TERM "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
}

unset NVMFD_SOCKET

T0=$(date +%s)
say() { echo "control: [$(($(date +%s) - T0))s] $*"; }
pass() { say "ok: $*"; }

sock=$tmp/ctl.sock
rosock=$tmp/ro.sock
ln -s "$NVMFD" "$tmp/nvmfctl" || exit 99
ctl() { "$tmp/nvmfctl" -s "$sock" "$@"; }
# shellcheck disable=SC2317  # called through expect_rc
roctl() { "$tmp/nvmfctl" -s "$rosock" "$@"; }

# json EXPR: evaluate a Python expression over the JSON on stdin (as j).
json() {
	python3 -c 'import json, sys
j = json.load(sys.stdin)
r = eval(sys.argv[1])
print(r if not isinstance(r, (dict, list)) else json.dumps(r, sort_keys=True))' "$@"
}

# expect_rc RC DESCRIPTION CMD...: CMD must exit with RC.
expect_rc() {
	er_want=$1 er_what=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	er_rc=$?
	if [ "$er_rc" = "$er_want" ]; then
		pass "$er_what: exit $er_rc ($(head -c 120 "$tmp/err"))"
	else
		fail "$er_what: exit $er_rc, expected $er_want"
		sed 's/^/    /' "$tmp/out" "$tmp/err" | head -20
	fi
}

# ------------------------------------------------------------ the daemon
# gen_config PORT MODEL_A NS2 PORT2: the file; NS2 and PORT2 are yes or no.
gen_config() {
	cat <<EOF
workers: 2
control:
  socket: $sock
  readonly_socket: $rosock
ports:
  - id: 1
    address: 127.0.0.1
    port: $1
EOF
	if [ "$4" = yes ]; then
		cat <<EOF
  - id: 2
    address: 127.0.0.1
    port: $(($1 + 1))
EOF
	fi
	cat <<EOF
subsystems:
  - nqn: $NQN_A
    model: $2
    namespaces:
      - {nsid: 1, backend: ram, size: 8M}
EOF
	if [ "$3" = yes ]; then
		echo "      - {nsid: 2, backend: ram, size: 4M, block_size: 4096}"
	fi
	cat <<EOF
  - nqn: $NQN_IO
    hosts: [$HOST_PERF]
    ports: [1]
    namespaces:
      - {nsid: 1, backend: ram, size: 16M}
EOF
}

alive() {
	if kill -0 "$daemon_pid" 2>/dev/null && ctl version >/dev/null 2>&1; then
		pass "daemon alive and answering after $1"
	else
		fail "daemon gone or not answering after $1"
	fi
}

# Pairs of ports in 24520-24529: PORT and PORT+1 (the port added later).
# Each start has its own log (nvmfd.N.log), all checked at the end.
# shellcheck disable=SC2317  # called by daemon_start_on_ports
write_config() { gen_config "$1" "ctl model" no no >"$tmp/nvmfd.yaml"; }
nlog=1
log=$tmp/nvmfd.$nlog.log
daemon_start_on_ports write_config "$tmp/nvmfd.yaml" "$log" \
    "24520 24522 24524 24526 24528" || {
	[ $? = 3 ] && { say "SKIP: $daemon_error"; exit 77; }
	say "ERROR: $daemon_error"
	exit 99
}
port=$daemon_port
port2=$((port + 1))
say "nvmfd (pid $daemon_pid) on 127.0.0.1:$port, control socket $sock"

# perf is the client here: its exit status is what is checked, so leaks at
# its exit (an ASan build) must not turn a pass into exit 23.
PERF="env ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 timeout 30 $NVMFD perf"
PERF="$PERF -a 127.0.0.1 -s $port -H $HOST_PERF"
perf() {	# perf ARGS...: against port 1, as HOST_PERF
	$PERF "$@"
}

# --------------------------------------------------- 1. JSON everywhere
say "--- every command with --json"
covered=" perf "
# js NAME ARGS...: nvmfctl NAME ARGS... --json must exit 0 and print
# nothing or JSON.
js() {
	covered="$covered$1 "
	ctl "$@" --json >"$tmp/out" 2>"$tmp/err"
	js_rc=$?
	if [ $js_rc != 0 ]; then
		fail "$* --json: exit $js_rc ($(cat "$tmp/err"))"
		return
	fi
	if [ ! -s "$tmp/out" ]; then
		pass "$1 --json: no output"
	elif python3 -m json.tool <"$tmp/out" >/dev/null 2>"$tmp/err"; then
		pass "$1 --json: $(wc -c <"$tmp/out") bytes of JSON"
	else
		fail "$* --json: not JSON: $(cat "$tmp/err")"
		head -20 "$tmp/out" | sed 's/^/    /'
	fi
}
# js_refused RC COMMAND...: COMMAND --json must fail with exit RC, an
# error on stderr and nothing on stdout.
js_refused() {
	_jr_want=$1
	shift
	covered="$covered$1 "
	ctl "$@" --json >"$tmp/out" 2>"$tmp/err"
	js_rc=$?
	if [ $js_rc = "$_jr_want" ] && [ ! -s "$tmp/out" ] && [ -s "$tmp/err" ]; then
		pass "$1 --json: exit $js_rc, $(cat "$tmp/err")"
	else
		fail "$* --json: exit $js_rc (want $_jr_want), $(cat "$tmp/err")"
	fi
}
js help
js help add-ns
js version
js list-subsys
js show-subsys "$NQN_A"
js list-ns "$NQN_A"
js list-hosts "$NQN_IO"
js list-ports
js list-referrals
js list-ctrl
js stats
js show-config
js add-subsys "$NQN_NEW" --model "json model" --hosts any
js set-subsys "$NQN_NEW" --serial JSON-1 --allow-any-host off \
    --dhchap-hashes sha512,sha256 --dhchap-dhgroups ffdhe4096,null
ctl show-config | grep -q "dhchap_dhgroups: \[ffdhe4096, null\]" ||
	fail "set-subsys --dhchap-dhgroups does not show in show-config"
js add-ns "$NQN_NEW" --backend ram --size 4M
js set-ns "$NQN_NEW" 1 --readonly on
js set-ns "$NQN_NEW" 1 --ana-group 2
js set-ns "$NQN_NEW" 1 --size 8M
js rescan-ns "$NQN_NEW"
js set-ana "$NQN_NEW" --group 2 --port 1 --state non-optimized
js list-ana "$NQN_NEW"
js inject-error "$NQN_NEW" 1 --count 0
js add-host "$NQN_NEW" "$HOST_OTHER"
js set-host "$NQN_NEW" "$HOST_OTHER" \
    --dhchap-secret "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:"
js del-host "$NQN_NEW" "$HOST_OTHER"
js add-port --address 127.0.0.1 --port "$port2"
js del-port "$(json 'j["port"]["id"]' <"$tmp/out")"
js add-referral --address 192.0.2.10 --port 4420
js del-referral 192.0.2.10
js save "$tmp/json-save.yaml"
js del-ns "$NQN_NEW" 1
js del-subsys "$NQN_NEW"
js reload
# The host role: the daemon connects to its own target.
js connect -t tcp -a 127.0.0.1 -s "$port" -n "$NQN_A" -i 1
js list-host
# Kernel NBD devices need the nbd driver (linux-nbd-dev.sh attaches them
# in the Linux guest); here the refusals that need none.
js_refused 3 attach-nbd "$NQN_A/99" /dev/nbd15
js_refused 3 detach-nbd /dev/nbd15
js reconnect -n "$NQN_A"
js disconnect -n "$NQN_A"
js connect -t tcp -a 127.0.0.1 -s "$port" -n "$NQN_A"
js disconnect-all
js discover -t tcp -a 127.0.0.1 -s "$port"
grep -q "\"subnqn\": \"$NQN_A\"" "$tmp/out" || fail "discover does not list $NQN_A"
js connect-all -t tcp -a 127.0.0.1 -s "$port"
ctl list-host --json | grep -q "\"nqn\": \"$NQN_A\"" ||
    fail "connect-all did not connect to $NQN_A"
ctl disconnect-all || fail "disconnect-all after connect-all"
# terminate is run (with --json) while perf runs, below.
ctl help --json | python3 -c 'import json, sys
for c in json.load(sys.stdin)["commands"]: print(c["name"])' >"$tmp/names"
[ -s "$tmp/names" ] || fail "help --json lists no commands"
while read -r n; do
	[ "$n" = terminate ] && continue	# below, while perf runs
	case $covered in
	*" $n "*) ;;
	*) fail "command $n was not run with --json" ;;
	esac
done <"$tmp/names"
# The plain forms still print tables and text.
ctl list-subsys | grep -q "^NQN " || fail "list-subsys prints no table header"
ctl show-config | grep -q "^subsystems:" || fail "show-config prints no YAML"
ctl show-config --json | json 'j["config"]' | grep -q "^  - nqn: \"$NQN_A\"" ||
	fail "show-config --json does not hold the YAML"

# ------------------------------------------------------- 2. exit codes
say "--- exit codes"
expect_rc 2 "unknown command" ctl frobnicate
expect_rc 2 "unknown option" ctl list-subsys --frob
expect_rc 2 "missing value" ctl set-subsys "$NQN_A" --model
expect_rc 2 "missing argument" ctl show-subsys
expect_rc 2 "extra argument" ctl list-ports extra
expect_rc 2 "bad --size" ctl add-ns "$NQN_A" --backend ram --size 12Q
grep -q -- '--size' "$tmp/err" || fail "bad --size: the error does not name --size"
expect_rc 2 "bad NQN" ctl add-subsys "not an nqn"
expect_rc 2 "help for an unknown command" ctl help frobnicate
# shellcheck disable=SC2046  # one argument per number
expect_rc 2 "too many arguments (nvmfctl)" ctl list-ports $(seq 200)
expect_rc 2 "request too long (nvmfctl)" ctl show-subsys \
    "$(head -c 70000 /dev/zero | tr '\0' x)"
expect_rc 3 "show an unknown subsystem" ctl show-subsys "$NQN_NEW"
expect_rc 3 "delete an unknown namespace" ctl del-ns "$NQN_A" 9
expect_rc 3 "delete an unknown port" ctl del-port 9
expect_rc 3 "terminate an unknown controller" ctl terminate 999
expect_rc 3 "delete an unlisted host" ctl del-host "$NQN_IO" "$HOST_OTHER"
expect_rc 4 "add an existing subsystem" ctl add-subsys "$NQN_A"
expect_rc 4 "add an existing NSID" ctl add-ns "$NQN_A" --nsid 1 --backend ram --size 1M
expect_rc 4 "add an existing host" ctl add-host "$NQN_IO" "$HOST_PERF"
expect_rc 4 "add an existing port ID" ctl add-port --id 1 --address 127.0.0.1 --port "$port2"
expect_rc 5 "write on the read-only socket" roctl add-subsys "$NQN_NEW"
expect_rc 5 "delete on the read-only socket" roctl del-subsys "$NQN_A"
expect_rc 0 "list on the read-only socket" roctl list-subsys
expect_rc 0 "JSON on the read-only socket" roctl stats --json
expect_rc 8 "no daemon at the socket" "$tmp/nvmfctl" -s "$tmp/none.sock" version
expect_rc 8 "no daemon (NVMFD_SOCKET)" env NVMFD_SOCKET="$tmp/none.sock" "$tmp/nvmfctl" version
expect_rc 0 "NVMFD_SOCKET" env NVMFD_SOCKET="$sock" "$tmp/nvmfctl" version
expect_rc 0 "nvmfd ctl" "$NVMFD" ctl -s "$sock" list-ports
ctl show-subsys "$NQN_NEW" >/dev/null 2>&1 && fail "$NQN_NEW exists after the read-only add"

# ------------------------------------------------ 3. live I/O and stats
say "--- live subsystem, namespace and host, then I/O"
NQN_LIVE=nqn.2026-11.io.nvmfd.test:ctl-live
ctl add-subsys "$NQN_LIVE" --model "live model" || fail "add-subsys $NQN_LIVE"
ctl add-ns "$NQN_LIVE" --backend ram --size 32M >/dev/null || fail "add-ns $NQN_LIVE"
ctl set-subsys "$NQN_LIVE" --allow-any-host off || fail "set-subsys --allow-any-host off"
ctl add-host "$NQN_LIVE" "$HOST_PERF" || fail "add-host $NQN_LIVE"
if perf -n "$NQN_LIVE" -t 1 -w randwrite >"$tmp/perf.out" 2>&1; then
	pass "perf randwrite on the live namespace: $(grep IOPS "$tmp/perf.out" | cut -d, -f1)"
else
	fail "perf randwrite on the live namespace failed"
	tail -5 "$tmp/perf.out"
fi
w=$(ctl stats --subsys "$NQN_LIVE" --json | json 'j["namespaces"][0]["writes"]')
b=$(ctl stats --subsys "$NQN_LIVE" --json | json 'j["namespaces"][0]["bytes_written"]')
if [ "${w:-0}" -gt 0 ] 2>/dev/null && [ "${b:-0}" -ge $((w * 4096)) ]; then
	pass "stats: $w writes, $b bytes written"
else
	fail "stats show '$w' writes, '$b' bytes after perf randwrite"
fi
# Only the listed host gets in.
if $PERF -H "$HOST_OTHER" -n "$NQN_LIVE" -t 1 -w randread >"$tmp/perf.out" 2>&1; then
	fail "perf as an unlisted host succeeded"
else
	pass "perf as an unlisted host refused"
fi
grep -q "host $HOST_OTHER not allowed on $NQN_LIVE" "$log" ||
	fail "no 'not allowed' line for $HOST_OTHER in the log"

say "--- read-only namespace"
ctl set-ns "$NQN_LIVE" 1 --readonly on || fail "set-ns --readonly on"
[ "$(ctl list-ns "$NQN_LIVE" --json | json 'j["namespaces"][0]["readonly"]')" = True ] ||
	fail "list-ns does not show the namespace read-only"
if perf -n "$NQN_LIVE" -t 1 -w randwrite >"$tmp/perf.out" 2>&1; then
	fail "perf randwrite on a read-only namespace exited 0"
else
	pass "perf randwrite on a read-only namespace failed: $(grep -o '[0-9][0-9]* errors,' "$tmp/perf.out" | tail -1 | tr -d ,)"
fi
if perf -n "$NQN_LIVE" -t 1 -w randread >"$tmp/perf.out" 2>&1; then
	pass "perf randread on the read-only namespace"
else
	fail "perf randread on a read-only namespace failed"
	tail -5 "$tmp/perf.out"
fi
ctl set-ns "$NQN_LIVE" 1 --readonly off || fail "set-ns --readonly off"
perf -n "$NQN_LIVE" -t 0.5 -w randwrite >/dev/null 2>&1 ||
	fail "perf randwrite after --readonly off failed"

say "--- del-ns while perf runs"
$PERF -n "$NQN_LIVE" -t 3 -w randrw >"$tmp/perf-del.out" 2>&1 &
perf_pid=$!
bgpids=$perf_pid
sleep 1
ctl del-ns "$NQN_LIVE" 1 || fail "del-ns during I/O"
wait "$perf_pid"
say "perf exited with $? after del-ns ($(grep -o '[0-9][0-9]* errors,' "$tmp/perf-del.out" | tail -1 | tr -d ,))"
bgpids=
alive "del-ns during I/O"
[ "$(ctl list-ns "$NQN_LIVE" --json | json 'len(j["namespaces"])')" = 0 ] ||
	fail "namespace still listed after del-ns"
ctl add-ns "$NQN_LIVE" --backend ram --size 32M >/dev/null || fail "add-ns again"

say "--- terminate while perf runs"
# Long enough to be running still on a loaded machine; terminate ends it.
$PERF -n "$NQN_LIVE" -t 30 -w randrw >"$tmp/perf-term.out" 2>&1 &
perf_pid=$!
bgpids=$perf_pid
cntlid=
i=0
while [ $i -lt 50 ] && [ -z "$cntlid" ]; do
	cntlid=$(ctl list-ctrl --subsys "$NQN_LIVE" --json |
	    json '[c["cntlid"] for c in j["controllers"] if c["host"] == sys.argv[2]][0] if j["controllers"] else ""' "$HOST_PERF" 2>/dev/null)
	[ -n "$cntlid" ] || sleep 0.1
	i=$((i + 1))
done
if [ -z "$cntlid" ]; then
	fail "no controller of $HOST_PERF in list-ctrl while perf runs"
else
	sleep 0.5
	covered="$covered terminate "
	if ctl terminate "$cntlid" --json >"$tmp/out" 2>"$tmp/err"; then
		pass "terminate $cntlid"
		if [ -s "$tmp/out" ] && ! python3 -m json.tool <"$tmp/out" >/dev/null; then
			fail "terminate --json: not JSON"
		fi
	else
		fail "terminate $cntlid: $(cat "$tmp/err")"
	fi
fi
t1=$(date +%s)
wait "$perf_pid"
say "perf exited with $? after terminate ($(grep -o '[0-9][0-9]* errors,' "$tmp/perf-term.out" | tail -1 | tr -d ,))"
bgpids=
[ $(($(date +%s) - t1)) -le 10 ] || fail "perf took more than 10 s to end after terminate"
alive "terminate during I/O"
grep -q "controller $cntlid of $NQN_LIVE for $HOST_PERF: terminated by nvmfctl" "$log" ||
	fail "no 'terminated by nvmfctl' line in the log"
i=0
while [ $i -lt 50 ]; do
	[ "$(ctl list-ctrl --json | json 'len(j["controllers"])')" = 0 ] && break
	sleep 0.1
	i=$((i + 1))
done
[ $i -lt 50 ] || fail "controllers still listed 5 s after the hosts left"

# --------------------------------------------- 4. save, restart, compare
say "--- save, restart from the saved file"
ctl set-subsys "$NQN_A" --model "saved model" || fail "set-subsys --model"
ctl add-ns "$NQN_A" --nsid 5 --backend ram --size 2M --block-size 4096 --readonly \
    --uuid 0b1d2c3e-4f50-4a6b-8c7d-9e0f1a2b3c4d >/dev/null || fail "add-ns with options"
ctl add-referral --address 192.0.2.20 --port 4420 --port-id 7 || fail "add-referral"
listings() {	# listings OUT: the JSON to compare, controllers aside, and
		# the memory a RAM namespace has populated so far
	{
		ctl list-subsys --json
		for n in $(ctl list-subsys --json | json '" ".join(s["nqn"] for s in j["subsystems"])'); do
			ctl list-ns "$n" --json
			ctl list-hosts "$n" --json
		done
		ctl list-ports --json
		ctl list-referrals --json
	} | grep -v '"resident":' >"$1"
}
listings "$tmp/before.json"
saved=$tmp/saved.yaml
ctl save "$saved" >/dev/null || fail "save $saved"
daemon_stop fail
nlog=$((nlog + 1))
log=$tmp/nvmfd.$nlog.log
if ! daemon_start "$saved" "$log"; then
	fail "nvmfd does not start from the saved file: $daemon_error"
	exit 1
fi
listings "$tmp/after.json"
if cmp -s "$tmp/before.json" "$tmp/after.json"; then
	pass "the same listings after a restart from the saved file ($(wc -l <"$tmp/after.json") lines)"
else
	fail "listings differ after a restart from the saved file:"
	diff "$tmp/before.json" "$tmp/after.json" | head -30
fi
[ "$(ctl version --json | json 'j["daemon"]["config"]')" = "$saved" ] ||
	fail "version does not name the saved file"
ctl save >/dev/null || fail "save (to the file it was loaded from)"
perf -n "$NQN_LIVE" -t 0.5 -w randwrite >/dev/null 2>&1 ||
	fail "perf on the restored subsystem failed"

say "--- 1000 control clients at once"
fd0=$(ls "/proc/$daemon_pid/fd" | wc -l)
python3 - "$sock" <<'PY' || fail "the control flood itself failed"
import socket, sys
socks = []
for _ in range(1000):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sys.argv[1])
    except OSError:
        s.close()
        continue
    socks.append(s)
ctl_ok = 0
for s in socks:
    s.close()
print("held", len(socks), flush=True)
PY
sleep 0.5
if ctl version >/dev/null 2>&1; then
	pass "nvmfctl is served after 1000 clients connected at once"
else
	fail "nvmfctl is not served after the control flood"
fi
fd1=$(ls "/proc/$daemon_pid/fd" | wc -l)
[ "$fd1" -le "$fd0" ] && pass "control flood: fds $fd0 -> $fd1" ||
	fail "control flood left descriptors open: $fd0 -> $fd1"

say "--- inject-error: what a host and the health logs see"
if PYTHONPATH="$here" python3 "$here/inject.py" --port "$daemon_port" \
    --nqn "$NQN_LIVE" --hostnqn "$HOST_PERF" --nvmfctl "$tmp/nvmfctl" \
    --socket "$sock"; then
	pass "inject-error"
else
	fail "inject-error: see above"
fi

# ------------------------------------------------------------ 5. reload
say "--- reload"
listings "$tmp/before.json"
gen_config "$port" "reload model" yes yes >"$saved"
echo "bogus_key: 1" >>"$saved"
line=$(wc -l <"$saved")
expect_rc 1 "reload of a file with an unknown key" ctl reload
grep -q "$saved:$line:1: bogus_key" "$tmp/err" ||
	fail "reload error does not say $saved:$line:1: bogus_key: $(cat "$tmp/err")"
gen_config "$port" "reload model" yes yes | sed "s/$NQN_A/not.a valid nqn/" >"$saved"
line=$(grep -n 'not.a valid nqn' "$saved" | cut -d: -f1)
expect_rc 1 "reload of a file with a bad NQN" ctl reload
grep -qE "$saved:$line:[0-9]+: .*nqn" "$tmp/err" ||
	fail "reload error does not say $saved:$line:COLUMN: ...nqn: $(cat "$tmp/err")"
listings "$tmp/after.json"
if cmp -s "$tmp/before.json" "$tmp/after.json"; then
	pass "nothing changed after the failed reloads"
else
	fail "listings changed after a failed reload:"
	diff "$tmp/before.json" "$tmp/after.json" | head -30
fi

gen_config "$port" "reload model" yes yes >"$saved"
expect_rc 0 "reload of an edited file" ctl reload
[ "$(ctl show-subsys "$NQN_A" --json | json 'j["subsystem"]["model"]')" = "reload model" ] ||
	fail "model not changed by reload"
[ "$(ctl list-ns "$NQN_A" --json | json '[n["nsid"] for n in j["namespaces"]]')" = "[1, 2]" ] ||
	fail "namespaces of $NQN_A after reload: $(ctl list-ns "$NQN_A" --json | json '[n["nsid"] for n in j["namespaces"]]'), expected [1, 2]"
[ "$(ctl list-ports --json | json '[p["port"] for p in j["ports"]]')" = "[\"$port\", \"$port2\"]" ] ||
	fail "ports after reload: $(ctl list-ports --json | json '[p["port"] for p in j["ports"]]')"
ctl show-subsys "$NQN_LIVE" >/dev/null 2>&1 && fail "$NQN_LIVE still there after reload"
[ "$(ctl list-referrals --json | json 'len(j["referrals"])')" = 0 ] ||
	fail "referral still there after reload"
if $PERF -s "$port2" -n "$NQN_A" -N 2 -t 0.5 -w randwrite >"$tmp/perf.out" 2>&1; then
	pass "I/O to the reloaded namespace 2 through the reloaded port $port2"
else
	fail "perf through the port added by reload failed"
	tail -5 "$tmp/perf.out"
fi
pass "reload applied model, namespace and port"

say "--- SIGHUP"
gen_config "$port" "sighup model" no no >"$saved"
kill -HUP "$daemon_pid"
i=0
while [ $i -lt 50 ]; do
	[ "$(ctl show-subsys "$NQN_A" --json | json 'j["subsystem"]["model"]')" = "sighup model" ] && break
	sleep 0.1
	i=$((i + 1))
done
if [ $i -lt 50 ]; then
	pass "SIGHUP applied the new model"
else
	fail "model not changed 5 s after SIGHUP"
fi
[ "$(ctl list-ns "$NQN_A" --json | json '[n["nsid"] for n in j["namespaces"]]')" = "[1]" ] ||
	fail "namespace 2 still there after SIGHUP"
[ "$(ctl list-ports --json | json 'len(j["ports"])')" = 1 ] ||
	fail "port 2 still there after SIGHUP"
listings "$tmp/before.json"
echo "bogus_key: 1" >>"$saved"
kill -HUP "$daemon_pid"
i=0
while [ $i -lt 50 ] && ! grep -q 'reload failed' "$log"; do
	sleep 0.1
	i=$((i + 1))
done
grep -q "reload failed, nothing changed: $saved:[0-9]*:1: bogus_key" "$log" ||
	fail "no 'reload failed' line with the position after SIGHUP with a broken file"
listings "$tmp/after.json"
cmp -s "$tmp/before.json" "$tmp/after.json" || fail "listings changed after a failed SIGHUP reload"
alive "SIGHUP with a broken file"
gen_config "$port" "sighup model" no no >"$saved"

# ------------------------------------------- 6. one daemon per socket
say "--- a second daemon on the same control socket"
gen_config "$port2" "second" no no >"$tmp/second.yaml"
second_pid=
"$NVMFD" -F -f "$tmp/second.yaml" 2>"$tmp/second.log" &
second_pid=$!
bgpids=$second_pid
if ! wait_gone "$second_pid" 10; then
	fail "a second nvmfd on the same control socket is still running after 10 s"
	kill -TERM "$second_pid"
	wait "$second_pid"
else
	wait "$second_pid"
	rc=$?
	if [ "$rc" != 0 ] && grep -q "control socket $sock: another nvmfd answers there" \
	    "$tmp/second.log"; then
		pass "second daemon refused (exit $rc): $(grep 'another nvmfd' "$tmp/second.log" | cut -c14-)"
	else
		fail "second daemon: exit $rc, log:"
		cat "$tmp/second.log"
	fi
fi
bgpids=
alive "a second daemon tried the socket"
[ -S "$sock" ] || fail "the control socket is gone after the second daemon's attempt"

# ------------------------------------------------ 7. stale socket file
say "--- stale socket after SIGKILL"
old_pid=$daemon_pid
daemon_kill
[ -S "$sock" ] || fail "no socket file left after SIGKILL (nothing to test)"
expect_rc 8 "nvmfctl against the stale socket" ctl version
nlog=$((nlog + 1))
log=$tmp/nvmfd.$nlog.log
if daemon_start "$saved" "$log"; then
	new_pid=$(ctl version --json | json 'j["daemon"]["pid"]')
	if [ "$new_pid" = "$daemon_pid" ] && [ "$daemon_pid" != "$old_pid" ]; then
		pass "the stale socket was replaced (pid $old_pid -> $daemon_pid)"
	else
		fail "version answers pid '$new_pid', expected $daemon_pid"
	fi
else
	fail "nvmfd did not start over a stale socket: $daemon_error"
fi

# ------------------------------------------------------------ 8. the end
say "--- SIGTERM"
daemon_stop fail
[ -e "$sock" ] && fail "control socket left after SIGTERM"
[ -e "$rosock" ] && fail "read-only socket left after SIGTERM"

log_has_sanitizer_report "$tmp"/nvmfd.*.log "$tmp/second.log" &&
	fail "sanitizer report in a daemon log"
if [ $status -ne 0 ]; then
	for l in "$tmp"/nvmfd.*.log; do
		echo "---- $l (last 60 lines)"
		tail -n 60 "$l"
	done
	say "FAILED"
	exit 1
fi
say "PASS"
exit 0
