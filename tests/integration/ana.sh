#!/bin/sh
# ana.sh: Asymmetric Namespace Access end to end.  The real daemon offers
# one subsystem on two ports (127.0.0.1 and 127.0.0.2), NSID 1 in ANA group
# 1 and NSID 2 in group 2; ana_checks.py connects a host through each port
# and checks, while nvmfctl changes states and groups, the ANA change
# events, each port's ANA log, the path-related statuses of I/O and bad
# arguments.  Then save writes the states back and the saved file loads;
# the controller ID range holds; SIGTERM exits 0.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/ana.sh
# Exit status: 0 pass, 77 skip (no python3, no free port), 1 fail, 99 error.

NVMFD=${NVMFD:-}
here=$(cd "$(dirname "$0")" && pwd)

. "$here/lib.sh"
need_python3
need_nvmfd 99

NQN=nqn.2026-11.io.nvmfd.test:ana
test_tmpdir ana 60 || exit 99
unset NVMFD_SOCKET
status=0
ln -s "$NVMFD" "$tmp/nvmfctl" || exit 99
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }

# shellcheck disable=SC2317  # called through daemon_start_or_skip
write_config() {	# PORT: port 1 on 127.0.0.1:PORT, port 2 on PORT+1
	cat >"$tmp/nvmfd.yaml" <<EOF2
workers: 1
cntlid_min: 300
cntlid_max: 309
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
  - {id: 2, address: 127.0.0.2, port: $(($1 + 1))}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: ram, size: 4M}
      - {nsid: 2, backend: ram, size: 4M, ana_group: 2}
EOF2
}
daemon_start_or_skip write_config "24670 24672"
p1=127.0.0.1:$daemon_port
p2=127.0.0.2:$((daemon_port + 1))

if timeout 90 python3 "$here/ana_checks.py" "$tmp/nvmfctl" "$tmp/ctl.sock" \
    "$NQN" "$p1" "$p2"; then
	say "ok: ana_checks.py"
else
	fail "ana_checks.py"
fi

# The controllers it made came from the configured range.
ctl list-ctrl --json >"$tmp/ctrl.json" 2>&1
python3 - "$tmp/ctrl.json" <<'EOF2' || fail "controller IDs outside 300..309"
import json, sys
for c in json.load(open(sys.argv[1])).get("controllers", []):
    assert 300 <= c["cntlid"] <= 309, c
EOF2

# save writes the states and groups back; the file loads and says so.
ctl set-ana "$NQN" --group 2 --port "$p2" --state non-optimized >/dev/null ||
	fail "set-ana non-optimized"
ctl save "$tmp/saved.yaml" >/dev/null || fail "save"
grep -q "{ group: 2, port: 2, state: non-optimized }" "$tmp/saved.yaml" ||
	fail "saved file lacks the ANA state"
grep -q "ana_group: 2" "$tmp/saved.yaml" || fail "saved file lacks ana_group"
grep -q "^cntlid_min: 300" "$tmp/saved.yaml" || fail "saved file lacks cntlid_min"
"$NVMFD" -n -f "$tmp/saved.yaml" >/dev/null 2>&1 ||
	fail "the saved file does not load"
# Reload applies the file's states: the saved one, with one changed.
sed 's/state: non-optimized/state: change/' "$tmp/saved.yaml" \
    >"$tmp/nvmfd.yaml"
ctl reload >/dev/null 2>&1 || fail "reload"
ctl list-ana "$NQN" >"$tmp/list" 2>&1
grep -Eq "^2 +127.0.0.2:[0-9]+ +2 +change +1,2" "$tmp/list" ||
	fail "reload did not apply the file's state: $(cat "$tmp/list")"
grep -Eq "^2 +127.0.0.2:[0-9]+ +1 +inaccessible" "$tmp/list" ||
	fail "reload lost a saved state: $(cat "$tmp/list")"
test_finish
