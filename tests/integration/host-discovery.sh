#!/bin/sh
# host-discovery.sh: the host role's connect-all follows referrals and, with
# --persistent, the discovery log's changes.  Two nvmfd nodes on loopback:
#   A: subsystem SA, a referral to B, and the host role;
#   B: subsystem SB and a referral back to A (a loop).
# Checked:
#   - nvmfctl connect-all at A connects SA at A and, through the referral,
#     SB at B; the loop back to A is read once, nothing is connected twice;
#   - nvmfctl discover lists the referral and does not follow it;
#   - connect-all --persistent keeps a discovery association; a subsystem
#     added on A later is connected by itself (the Discovery Log Change
#     event), and one removed leaves the others alone;
#   - disconnect-all ends them all; a referral to a dead address is
#     reported and skipped.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/host-discovery.sh
# Exit status: 0 pass, 77 skip (a tool missing, no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
SA=nqn.2026-12.io.nvmfd.test:disc-a
SB=nqn.2026-12.io.nvmfd.test:disc-b
SC=nqn.2026-12.io.nvmfd.test:disc-c
DISC=nqn.2014-08.org.nvmexpress.discovery

. "$here/lib.sh"
need_nvmfd 77
need_python3
test_tmpdir host-discovery 60 || exit 1

T0=$(date +%s)
say() { echo "host-discovery: [$(($(date +%s) - T0))s] $*"; }
pass() { say "ok: $*"; }

# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	[ -n "${b_pid:-}" ] && kill -TERM "$b_pid" 2>/dev/null
}

# B first, on the port after A's: its referral names A's port.
# shellcheck disable=SC2317  # called by daemon_start_or_skip
setup() {	# PORT: A there, B on PORT+1
	if [ -n "${b_pid:-}" ]; then	# A's port was taken: B goes too
		kill -TERM "$b_pid" 2>/dev/null
		wait "$b_pid" 2>/dev/null
		b_pid=
	fi
	b_port=$(($1 + 1))
	cat >"$tmp/b.yaml" <<EOF
control:
  socket: $tmp/b.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $b_port}
subsystems:
  - nqn: $SB
    namespaces:
      - {nsid: 1, backend: ram, size: 4M}
referrals:
  - {address: 127.0.0.1, port: $1}
EOF
	node_start "$tmp/b.yaml" "$tmp/b.log" || return 1
	b_pid=$node_pid
	cat >"$tmp/nvmfd.yaml" <<EOF
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $SA
    namespaces:
      - {nsid: 1, backend: ram, size: 4M}
referrals:
  - {address: 127.0.0.1, port: $b_port}
host:
  nbd:
    socket: $tmp/nbd.sock
EOF
}
daemon_start_or_skip setup "24750 24752 24754 24756"
say "node A (pid $daemon_pid) on 127.0.0.1:$daemon_port, B (pid $b_pid) on $b_port"

ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }
bctl() { "$tmp/nvmfctl" -s "$tmp/b.sock" "$@"; }

# "nqn@port state" of every association, sorted.
assocs() {
	ctl list-host --json | python3 -c 'import json, sys
for a in sorted(json.load(sys.stdin)["associations"],
                key=lambda a: (a["nqn"], a["port"])):
    print("%s@%s %s" % (a["nqn"], a["port"], a["state"]))'
}
wait_assocs() {	# EXPECTED SECONDS: until assocs prints EXPECTED
	_wa_end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -le $_wa_end ]; do
		[ "$(assocs)" = "$1" ] && return 0
		sleep 0.2
	done
	say "associations now:"; assocs
	return 1
}

# ------------------------------------------------------------ discover
ctl discover -t tcp -a 127.0.0.1 -s "$daemon_port" --json >"$tmp/disc.json" ||
    fail "discover"
python3 - "$tmp/disc.json" "$b_port" "$SA" <<'EOF' && pass "discover: SA and the referral to B, not followed" || fail "discover output"
import json, sys
e = json.load(open(sys.argv[1]))["entries"]
kinds = sorted((x["subtype"], x["trsvcid"], x["subnqn"]) for x in e)
assert ("referral", sys.argv[2], "nqn.2014-08.org.nvmexpress.discovery") in kinds, kinds
assert any(k[0] == "nvme" and k[2] == sys.argv[3] for k in kinds), kinds
assert not any(k[0] == "nvme" and k[2] != sys.argv[3] for k in kinds), kinds
EOF

# ------------------------------------------------------ connect-all
ctl connect-all -t tcp -a 127.0.0.1 -s "$daemon_port" -k 5 >/dev/null ||
    fail "connect-all"
want="$SA@$daemon_port live
$SB@$b_port live"
wait_assocs "$want" 15 &&
    pass "connect-all: SA at A and SB at B through the referral, once each" ||
    fail "connect-all did not give SA@A and SB@B"
ctl disconnect-all >/dev/null || fail "disconnect-all"
wait_assocs "" 15 || fail "associations left after disconnect-all"

# ------------------------------------------- connect-all --persistent
ctl connect-all -t tcp -a 127.0.0.1 -s "$daemon_port" -k 5 --persistent \
    >/dev/null || fail "connect-all --persistent"
want="$DISC@$daemon_port live
$SA@$daemon_port live
$SB@$b_port live"
wait_assocs "$want" 15 &&
    pass "connect-all --persistent: a live discovery association beside SA and SB" ||
    fail "connect-all --persistent"

ctl add-subsys "$SC" --hosts any >/dev/null &&
    ctl add-ns "$SC" --backend ram --size 4M >/dev/null || fail "add SC on A"
t=$(date +%s)
wait_assocs "$want
$SC@$daemon_port live" 15 &&
    pass "a subsystem added on A: connected by itself in $(($(date +%s) - t)) s (Discovery Log Change event)" ||
    fail "the persistent association did not follow the new subsystem"
grep -q "discovery: connecting to $SC" "$tmp/nvmfd.log" ||
    fail "no log line for the followed subsystem"

# A second change: the event must come again (the log was read on the
# controller that sent the first).  SC's association stays, reconnecting,
# as nvme-cli's would: it goes by its own ctrl-loss-tmo.
ctl del-subsys "$SC" >/dev/null || fail "del-subsys SC"
ctl add-subsys "$SC-2" --hosts any >/dev/null &&
    ctl add-ns "$SC-2" --backend ram --size 4M >/dev/null || fail "add SC-2"
wait_assocs "$want
$SC@$daemon_port reconnecting
$SC-2@$daemon_port live" 15 &&
    pass "a second change followed too; SA and SB undisturbed" ||
    fail "the second change was not followed"

ctl disconnect-all >/dev/null || fail "disconnect-all"
wait_assocs "" 15 && pass "disconnect-all: nothing left" ||
    fail "associations left after disconnect-all"

# ------------------------------------------------- dead referral
kill -TERM "$b_pid" && wait "$b_pid" 2>/dev/null
b_pid=
ctl connect-all -t tcp -a 127.0.0.1 -s "$daemon_port" -k 5 \
    >/dev/null 2>"$tmp/ca.err" || fail "connect-all with B down"
grep -q "referral 127.0.0.1:$b_port" "$tmp/ca.err" &&
    pass "a dead referral is reported: $(head -1 "$tmp/ca.err")" ||
    fail "no word of the dead referral: $(cat "$tmp/ca.err")"
want="$SA@$daemon_port live
$SC-2@$daemon_port live"
wait_assocs "$want" 15 && pass "and the live node's subsystems are connected" ||
    fail "connect-all with a dead referral"
ctl disconnect-all >/dev/null

test_finish
