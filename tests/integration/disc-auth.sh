#!/bin/sh
# disc-auth.sh: DH-HMAC-CHAP on the discovery controller (the discovery:
# section, nvmfctl add-host with the discovery NQN).  disc_auth.py connects
# to nqn.2014-08.org.nvmexpress.discovery: a host with discovery keys must
# authenticate (SHA-256/NULL; bidirectional SHA-512/ffdhe2048) before any
# command works, a wrong key and a missing controller key end in Failure1
# and the close, a host without keys still discovers (discovery is open by
# default).  Live: nvmfctl set-host rotates the key and the same association
# re-authenticates with it; add-host gives a new host keys; set-subsys
# --allow-any-host off shuts unlisted hosts out; list-hosts shows the hosts
# (never the keys); save writes the section (secrets only with
# --show-secrets) and the file loads; a reload with another key applies it.
# No key reaches the log.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/disc-auth.sh
# Exit status: 0 pass, 77 skip (no daemon, no python3, no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
DISC=nqn.2014-08.org.nvmexpress.discovery
NQN=nqn.2026-11.io.nvmfd.test:disc-auth
H=nqn.2026-11.io.nvmfd.test:disc-host
HU=nqn.2026-11.io.nvmfd.test:disc-host-uni
HN=nqn.2026-11.io.nvmfd.test:disc-host-new
HO=nqn.2026-11.io.nvmfd.test:not-listed

. "$here/lib.sh"
need_nvmfd 77
need_python3
test_tmpdir disc-auth || exit 1

pass() { echo "ok: $*"; }

KEY=$(dhchap_gen_key 01) CKEY=$(dhchap_gen_key 00) || exit 1
NEW=$(dhchap_gen_key 02) KEY2=$(dhchap_gen_key 03) KEYN=$(dhchap_gen_key) ||
    exit 1

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT [HOST KEY]
	cat >"$tmp/nvmfd.yaml" <<YAML
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: ram, size: 4M}
discovery:
  hosts:
    - nqn: $H
      dhchap_secret: "${2:-$KEY}"
      dhchap_ctrl_secret: "$CKEY"
    - nqn: $HU
      dhchap_secret: "$KEY"
YAML
}

daemon_start_or_skip write_config "24830 24832 24834 24836 24838"
ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }
da() {	# CASE [options]
	c=$1
	shift
	timeout 120 python3 "$here/disc_auth.py" "$c" --port "$daemon_port" \
	    --subnqn "$NQN" "$@"
}
run_da() {	# WHAT CASE [options]
	what=$1
	shift
	if da "$@" >"$tmp/da.out" 2>&1; then
		pass "$what"
		sed 's/^/    /' "$tmp/da.out"
	else
		fail "$what"
		sed 's/^/    /' "$tmp/da.out"
	fi
}

run_da "discovery with and without keys" open --host "$H" --uni "$HU" \
    --other "$HO" --key "$KEY" --ctrl-key "$CKEY"
run_da "rotation with set-host" rotate --host "$H" --key "$KEY" \
    --new-key "$NEW" --ctl "$tmp/nvmfctl -s $tmp/ctl.sock"

# A host given keys live; list-hosts names the hosts, never the keys.
ctl add-host "$DISC" "$HN" --dhchap-secret "$KEYN" >/dev/null ||
    fail "add-host $DISC"
run_da "a host added with nvmfctl add-host" auth --host "$HN" --key "$KEYN"
out=$(ctl list-hosts "$DISC" --json | tr -d ' \n')
case $out in
*'"allow_any_host":true'*"\"hostnqn\":\"$H\",\"dhchap\":\"bidirectional\""*"\"hostnqn\":\"$HN\",\"dhchap\":\"host\""*)
	pass "list-hosts $DISC shows the hosts and which keys they have" ;;
*) fail "list-hosts $DISC: $out" ;;
esac
for k in "$KEY" "$CKEY" "$NEW" "$KEYN"; do
	b=$(echo "$k" | cut -d: -f3)
	echo "$out" | grep -qF "$b" && fail "list-hosts shows a key"
done

# Restricted to the listed hosts.
ctl set-subsys "$DISC" --allow-any-host off >/dev/null ||
    fail "set-subsys $DISC --allow-any-host off"
run_da "an unlisted host refused once discovery is restricted" refused \
    --host "$HO"
run_da "a listed host still discovers" auth --host "$HN" --key "$KEYN"
ctl del-host "$DISC" "$HN" >/dev/null || fail "del-host $DISC"
run_da "a removed host refused" refused --host "$HN"

# Saved: the section, its secrets hidden unless asked for.
ctl save "$tmp/saved.yaml" >/dev/null 2>&1 &&
    fail "save wrote inline keys without --show-secrets"
ctl show-config >"$tmp/shown.yaml" || fail "show-config"
if grep -q '^discovery:' "$tmp/shown.yaml" &&
    grep -q '# dhchap_secret: hidden' "$tmp/shown.yaml" &&
    ! grep -qF "$(echo "$NEW" | cut -d: -f3)" "$tmp/shown.yaml"; then
	pass "show-config writes the discovery section, secrets hidden"
else
	fail "show-config: $(sed -n '/^discovery:/,$p' "$tmp/shown.yaml")"
fi
ctl save --show-secrets "$tmp/saved.yaml" >/dev/null || fail "save --show-secrets"
if "$NVMFD" -n -f "$tmp/saved.yaml" >/dev/null 2>&1 &&
    grep -q '^  allow_any_host: false' "$tmp/saved.yaml" &&
    grep -qF "dhchap_secret: \"$NEW\"" "$tmp/saved.yaml" &&
    grep -qF "dhchap_ctrl_secret: \"$CKEY\"" "$tmp/saved.yaml"; then
	pass "save --show-secrets keeps the section, and the file loads"
else
	fail "saved: $(sed -n '/^discovery:/,$p' "$tmp/saved.yaml")"
fi

# Reload with another key for H (and discovery open again).
write_config "$daemon_port" "$KEY2"
ctl reload >/dev/null || fail "reload"
run_da "after a reload, the new key" auth --host "$H" --key "$KEY2" \
    --ctrl-key "$CKEY"
run_da "after a reload, the rotated key fails" fails --host "$H" --key "$NEW"
run_da "after a reload: open again, and the host added live is gone" \
    plain --host "$HN"
grep -q "host $HO not allowed to discover" "$tmp/nvmfd.log" ||
    fail "no log line for the refused host"

for k in "$KEY" "$CKEY" "$NEW" "$KEY2" "$KEYN"; do
	b=$(echo "$k" | cut -d: -f3)
	grep -qF "$b" "$tmp/nvmfd.log" && fail "a key is in the daemon's log"
done
n=$(grep -c "qid 0: host .* authenticated" "$tmp/nvmfd.log")
pass "$n discovery authentications logged"
test_finish
