#!/bin/sh
# ram-populate.sh: RAM namespaces populated in the background or lazily.
# Two namespaces side by side: a 64 MiB one with the default "populate:
# background" must become resident by itself, with no host writing, within
# 60 s; a 48 MiB "populate: lazy" one must stay
# (nearly) empty until written, then hold about what was written.  Both
# must serve verified writes, whatever the thread was doing, and nvmfctl
# save must keep the setting.  Residency is read per mapping from
# /proc/PID/smaps (each namespace is one anonymous mapping of its size).
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/ram-populate.sh
# Exit status: 0 pass, 77 skip (no daemon or no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-11.io.nvmfd.test:populate
BG=65536	# KiB
LAZY=49152	# KiB

. "$here/lib.sh"
need_nvmfd 77
test_tmpdir ram-populate || exit 1

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
    namespaces:
      - {nsid: 1, backend: ram, size: ${BG}K}
      - {nsid: 2, backend: ram, size: ${LAZY}K, populate: lazy}
YAML
}

# resident KIB: the Rss of the anonymous mapping of exactly KIB KiB.
resident() {
	awk -v want="$1" '
	    $1 ~ /^[0-9a-f]+-[0-9a-f]+$/ { anon = (NF < 6); size = -1 }
	    $1 == "Size:" { size = $2 }
	    $1 == "Rss:" && anon && size == want { print $2; found = 1; exit }
	    END { if (!found) print -1 }' "/proc/$daemon_pid/smaps"
}

daemon_start_or_skip write_config "24720 24721 24722 24723 24724"
echo "nvmfd (pid $daemon_pid) on 127.0.0.1:$daemon_port"

i=0
while [ "$(resident $BG)" -lt $BG ] && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
r=$(resident $BG)
[ "$r" -ge $BG ] && pass "background: $r KiB resident after $((i / 10)) s" \
    "with no host" || fail "background: only $r of $BG KiB resident after 60 s"
r=$(resident $LAZY)
[ "$r" -ge 0 ] && [ "$r" -le 4096 ] && pass "lazy: $r KiB resident" ||
    fail "lazy: $r KiB resident before any write (expected at most 4096)"
ln -s "$NVMFD" "$tmp/nvmfctl" || exit 1
"$tmp/nvmfctl" -s "$tmp/ctl.sock" list-ns "$NQN" --json | python3 -c '
import json, sys
ns = {n["nsid"]: n["resident"] for n in json.load(sys.stdin)["namespaces"]}
sys.exit(0 if ns[1] == 64 << 20 and ns[2] == 0 else 1)' &&
    pass "list-ns: resident 64 MiB and 0" ||
    fail "list-ns: $("$tmp/nvmfctl" -s "$tmp/ctl.sock" list-ns "$NQN")"

# Writes make the lazy namespace resident.
"$NVMFD" perf -a 127.0.0.1 -s "$daemon_port" -n "$NQN" -N 2 -q 1 \
    -o 1048576 -w write -t 1 -v -j >"$tmp/w.json" 2>"$tmp/w.err" ||
	fail "perf write to the lazy namespace: $(tail -1 "$tmp/w.err")"
ios=$(sed -n 's/.*"ios":\([0-9]*\).*/\1/p' "$tmp/w.json")
r=$(resident $LAZY)
[ "${ios:-0}" -gt 0 ] && [ "$r" -ge 1024 ] &&
    pass "lazy: $r KiB resident after $ios verified 1 MiB writes" ||
    fail "lazy: $r KiB resident after ${ios:-0} 1 MiB writes"

daemon_serves "namespace 1"
"$tmp/nvmfctl" -s "$tmp/ctl.sock" save "$tmp/saved.yaml" >/dev/null 2>&1 ||
	fail "nvmfctl save failed"
grep -q "populate: lazy" "$tmp/saved.yaml" &&
    grep -q "populate: background" "$tmp/saved.yaml" &&
    pass "save keeps both settings" ||
    fail "save lost the populate settings"
"$NVMFD" -n -f "$tmp/saved.yaml" >/dev/null 2>&1 ||
	fail "the saved file does not load"
test_finish
