#!/bin/sh
# host-from.sh: an allowed host bound to source addresses (hosts: - nqn:
# ... from: ...).  host_from.py connects from 127.0.0.1 and 127.0.0.2 (both
# loopback): the host is refused from the address not listed and does not
# see the subsystem in its discovery log there; accepted and listed from the
# one that is.  Then live: nvmfctl set-host --from moves the host to
# 127.0.0.3 while it is connected from 127.0.0.2 (its association is torn
# down), and --from any lets it in from anywhere.  list-hosts shows the
# prefixes; save keeps them.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/host-from.sh
# Exit status: 0 pass, 77 skip (no daemon, no python3, no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-11.io.nvmfd.test:from
OPEN=nqn.2026-11.io.nvmfd.test:open
H=nqn.2026-11.io.nvmfd.test:host-from

. "$here/lib.sh"
need_nvmfd 77
need_python3
test_tmpdir host-from || exit 1

pass() { echo "ok: $*"; }

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT
	cat >"$tmp/nvmfd.yaml" <<YAML
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    hosts:
      - nqn: $H
        from: 127.0.0.2/32
    namespaces:
      - {nsid: 1, backend: ram, size: 4M}
  - nqn: $OPEN
    namespaces:
      - {nsid: 1, backend: ram, size: 4M}
YAML
}

daemon_start_or_skip write_config "24736 24737 24738 24739"
ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }
hf() { python3 "$here/host_from.py" "$daemon_port" "$NQN" "$OPEN" "$H" "$@"; }

hf bound || fail "bound to 127.0.0.2"
ctl list-hosts "$NQN" --json | grep -q '"from": *"127.0.0.2/32"' &&
    pass "list-hosts shows 127.0.0.2/32" || fail "list-hosts: $(ctl list-hosts "$NQN")"

# Live change while connected from 127.0.0.2.
hf hold >"$tmp/hold.out" 2>&1 &
hold=$!
i=0
while ! grep -q connected "$tmp/hold.out" && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
grep -q connected "$tmp/hold.out" || fail "hold: $(cat "$tmp/hold.out")"
ctl set-host "$NQN" "$H" --from 127.0.0.3 >/dev/null || fail "set-host --from"
wait "$hold"
grep -q closed "$tmp/hold.out" &&
    pass "moved to 127.0.0.3: the association from 127.0.0.2 was torn down" ||
    fail "after set-host --from: $(cat "$tmp/hold.out")"
ctl set-host "$NQN" "$H" --from bogus >/dev/null 2>&1 &&
    fail "set-host --from bogus accepted"
ctl set-host "$NQN" "$H" --from any >/dev/null || fail "set-host --from any"
hf open || fail "--from any"

ctl set-host "$NQN" "$H" --from "10.0.0.0/8,fd00::/8" >/dev/null ||
	fail "set-host --from two prefixes"
ctl save "$tmp/saved.yaml" >/dev/null || fail "save"
grep -q 'from: \["10.0.0.0/8", "fd00::/8"\]' "$tmp/saved.yaml" &&
    pass "save keeps the prefixes" || fail "save: $(grep -n from "$tmp/saved.yaml")"
"$NVMFD" -n -f "$tmp/saved.yaml" >/dev/null 2>&1 || fail "the saved file does not load"
test_finish
