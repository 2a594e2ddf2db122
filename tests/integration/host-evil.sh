#!/bin/sh
# host-evil.sh: nvmfd's host role against a malicious NVMe/TCP target.
# evil_target.py plays a controller that lies in one way per run: wrong
# ICResp fields, a CQE for a command ID that awaits none, C2HData beyond
# the command's buffer, a discovery log whose record count lies.  Each
# time the daemon must drop that association with a log line that says
# why, never come up on it, and keep serving: a verified perf run against
# its own target at the end.  nvmfctl discover must refuse the lying log
# with a clear error.  A mute controller (no answer after the ICResp)
# must not hold the association past ctrl-loss-tmo; one that never answers
# I/O gets the association reset, Keep Alive or not.  A run with no lie shows the fake controller is
# good enough to come up, so that the refusals are the lies' doing.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/host-evil.sh
# Exit status: 0 pass, 77 skip (no python3, no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-12.io.nvmfd.test:good
EVIL=nqn.2026-12.io.nvmfd.test:evil

. "$here/lib.sh"
need_nvmfd 77
need_python3
command -v timeout >/dev/null 2>&1 || { say "SKIP: no timeout(1)"; exit 77; }
test_tmpdir host-evil 60 || exit 1

T0=$(date +%s)
say() { echo "host-evil: [$(($(date +%s) - T0))s] $*"; }
pass() { say "ok: $*"; }

epid=
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	[ -n "$epid" ] && kill -KILL "$epid" 2>/dev/null
}

# shellcheck disable=SC2317  # called by daemon_start_or_skip
setup() {	# PORT: nvmfd's own target; the evil one at PORT + 4
	nbd_self_config "$1" "$NQN" "{nsid: 1, backend: ram, size: 4M}"
}
daemon_start_or_skip setup "24708 24709 24710"
eport=$((daemon_port + 4))
say "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port; evil target on $eport"

ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }

evil_start() {	# MODE
	: >"$tmp/evil.out"
	python3 "$here/evil_target.py" "$eport" "$1" >"$tmp/evil.out" 2>&1 &
	epid=$!
	i=0
	until grep -q ready "$tmp/evil.out"; do
		i=$((i + 1))
		[ $i -gt 50 ] && { fail "evil target: $(cat "$tmp/evil.out")";
		    return 1; }
		sleep 0.1
	done
}
evil_stop() {
	kill "$epid" 2>/dev/null
	wait "$epid" 2>/dev/null
	epid=
}
# log_wait PATTERN SECONDS: a line of the daemon's log since mark.
log_wait() {
	end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -le $end ]; do
		tail -n +"$mark" "$tmp/nvmfd.log" | grep -q "$1" && return 0
		sleep 0.2
	done
	return 1
}

# ------------------------------------------------------------- control
evil_start none || test_finish
mark=$(($(wc -l <"$tmp/nvmfd.log") + 1))
ctl connect -t tcp -a 127.0.0.1 -s "$eport" -n "$EVIL" -k 0 -c 1 -l 30 \
    >/dev/null || fail "connect (no lie)"
log_wait "host .*$EVIL.* live" 10 &&
    pass "no lie: the fake controller comes up" ||
    fail "the fake controller does not come up: $(tail -n +"$mark" \
        "$tmp/nvmfd.log")"
ctl disconnect -n "$EVIL" >/dev/null || fail "disconnect"
timeout 20 "$tmp/nvmfctl" discover -t tcp -a 127.0.0.1 -s "$eport" \
    >"$tmp/disc.out" 2>&1 && grep -q "$EVIL" "$tmp/disc.out" &&
    pass "no lie: discover lists its one record" ||
    fail "discover (no lie): $(cat "$tmp/disc.out")"
evil_stop

# -------------------------------------------------------------- the lies
for c in "icresp-pfv|bad ICResp: the field at byte 8" \
    "icresp-maxh2c|bad ICResp: MAXH2CDATA 1024" \
    "icresp-digest|digests refused" \
    "unknown-cid|CapsuleResp for CID [0-9]*, which awaits none" \
    "c2h-overflow|unexpected C2HData"; do
	mode=${c%%|*}
	line=${c#*|}
	evil_start "$mode" || break
	mark=$(($(wc -l <"$tmp/nvmfd.log") + 1))
	ctl connect -t tcp -a 127.0.0.1 -s "$eport" -n "$EVIL" -k 0 -c 1 \
	    -l 30 >/dev/null || fail "$mode: connect"
	if log_wait "host .*$EVIL.*: .*$line" 10; then
		pass "$mode: dropped, logged: $(tail -n +"$mark" \
		    "$tmp/nvmfd.log" | grep -o "$line" | head -1)"
	else
		fail "$mode: no log line '$line': $(tail -n +"$mark" \
		    "$tmp/nvmfd.log")"
	fi
	tail -n +"$mark" "$tmp/nvmfd.log" | grep -q "host .*$EVIL.* live" &&
	    fail "$mode: the association came up"
	ctl disconnect -n "$EVIL" >/dev/null || fail "$mode: disconnect"
	evil_stop
	kill -0 "$daemon_pid" || { fail "$mode: the daemon died"; break; }
done

# ------------------------------------------------- a controller that is mute
# Its Connect goes unanswered: the queue's set-up, Connect included, times
# out (10 s), and past ctrl-loss-tmo (3 s) the association fails instead
# of waiting for ever.
evil_start mute
mark=$(($(wc -l <"$tmp/nvmfd.log") + 1))
ctl connect -t tcp -a 127.0.0.1 -s "$eport" -n "$EVIL" -k 0 -c 1 -l 3 \
    >/dev/null || fail "mute: connect"
if log_wait "host .*$EVIL.*: queue connect (step 0): no answer in 10 s" 20 &&
    host_wait_state failed 10; then
	pass "mute: the unanswered Connect times out; past ctrl-loss-tmo: failed"
else
	fail "mute: state $(host_assoc state): $(tail -n +"$mark" \
	    "$tmp/nvmfd.log")"
fi
ctl disconnect -n "$EVIL" >/dev/null || fail "mute: disconnect"
evil_stop

# ------------------------------------------ I/O that is never answered
# Without Keep Alive (-k 0) too, a read stuck past 30 s resets the
# association; a disconnect then ends the NBD client's wait.
evil_start mute-io
mark=$(($(wc -l <"$tmp/nvmfd.log") + 1))
ctl connect -t tcp -a 127.0.0.1 -s "$eport" -n "$EVIL" -k 0 -c 1 -l 30 \
    >/dev/null || fail "mute-io: connect"
host_wait_state live 10 || fail "mute-io: not live"
timeout 120 nbdcopy "nbd+unix:///$EVIL/1?socket=$tmp/nbd.sock" \
    "$tmp/mute.img" >/dev/null 2>&1 &
cpid=$!
if log_wait "host .*$EVIL.*: I/O queue [0-9]*: command [0-9]* timed out" \
    50; then
	pass "mute-io: the stuck read times out (no KATO): association reset"
else
	fail "mute-io: no timeout: $(tail -n +"$mark" "$tmp/nvmfd.log")"
fi
ctl disconnect -n "$EVIL" >/dev/null || fail "mute-io: disconnect"
t0=$(date +%s)
wait "$cpid" && fail "mute-io: the read succeeded" ||
    pass "mute-io: the disconnect ends the client's wait, with an error," \
    "in $(($(date +%s) - t0)) s"
evil_stop

# ------------------------------------------------- a lying discovery log
evil_start disc-count
if timeout 20 "$tmp/nvmfctl" discover -t tcp -a 127.0.0.1 -s "$eport" \
    >"$tmp/disc.out" 2>&1; then
	fail "discover took a log whose count lies: $(cat "$tmp/disc.out")"
elif grep -q "entry 1 is not valid: the header counts 3 records" \
    "$tmp/disc.out"; then
	pass "discover refuses a log whose count lies: $(cat "$tmp/disc.out")"
else
	fail "discover: $(cat "$tmp/disc.out")"
fi
evil_stop

daemon_serves "after the malicious targets"
test_finish
