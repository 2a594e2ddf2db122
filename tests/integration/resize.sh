#!/bin/sh
# resize.sh: namespace sizes changed while hosts use them.  The real daemon
# serves one subsystem with two RAM namespaces and one file namespace;
# resize_checks.py connects three hosts and runs `nvmfd perf` while
# nvmfctl set-ns --size grows and shrinks them, rescan-ns and SIGHUP take
# a file's new length, and checks the Namespace Attribute Changed events,
# the Changed Namespace List, Identify's sizes, LBA Out of Range past the
# end, the data kept and the zeros added, and that the namespace left
# alone saw no error; set-ns --path moves the file namespace to another
# file live.  Then save writes the new sizes and path, and the saved file
# loads; SIGTERM exits 0.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/resize.sh
# Exit status: 0 pass, 77 skip (no python3, no free port), 1 fail, 99 error.

NVMFD=${NVMFD:-}
here=$(cd "$(dirname "$0")" && pwd)

. "$here/lib.sh"
need_python3
need_nvmfd 99

NQN=nqn.2026-11.io.nvmfd.test:resize
test_tmpdir resize 60 || exit 99
unset NVMFD_SOCKET
status=0
ctl() { "$NVMFD" ctl -s "$tmp/ctl.sock" "$@"; }
loopdev=""
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
}

# shellcheck disable=SC2317  # called through daemon_start_or_skip
write_config() {
	cat >"$tmp/nvmfd.yaml" <<EOF2
workers: 2
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: ram, size: 64M}
      - {nsid: 2, backend: ram, size: 16M, populate: lazy}
      - {nsid: 3, backend: file, path: $tmp/ns3.img, size: 16M}
EOF2
}
daemon_start_or_skip write_config "24690 24691 24692"

if timeout 120 python3 "$here/resize_checks.py" "$NVMFD" "$tmp/ctl.sock" \
    "$NQN" "127.0.0.1:$daemon_port" "$tmp/ns3.img" "$daemon_pid"; then
	say "ok: resize_checks.py"
else
	fail "resize_checks.py"
fi

# A block device resized: rescan-ns takes its new size; set-ns --size is
# refused.  Where a loop device can be made here (root, loop support).
truncate -s 8M "$tmp/block.img" || exit 99
if command -v losetup >/dev/null 2>&1 &&
    loopdev=$(losetup -f --show "$tmp/block.img" 2>/dev/null); then
	ctl add-ns "$NQN" --nsid 4 --backend block --path "$loopdev" \
	    >/dev/null || fail "add-ns block $loopdev"
	truncate -s 16M "$tmp/block.img" && losetup -c "$loopdev" ||
		fail "losetup -c"
	ctl rescan-ns "$NQN" 4 --json >"$tmp/rescan.json" 2>&1
	grep -q '"size": 16777216' "$tmp/rescan.json" &&
	    grep -q '"changed": true' "$tmp/rescan.json" &&
	    say "ok: rescan-ns takes the block device's new size" ||
		fail "rescan-ns of $loopdev: $(cat "$tmp/rescan.json")"
	for sz in 32M 4M; do
		ctl set-ns "$NQN" 4 --size $sz >/dev/null 2>"$tmp/err"
		[ $? = 1 ] && grep -q "size of its device" "$tmp/err" &&
		    say "ok: set-ns --size $sz on a block namespace: refused" ||
			fail "set-ns --size $sz on a block namespace: $(cat "$tmp/err")"
	done
	ctl list-ns "$NQN" --json | grep -q '"size": 16777216,' ||
		fail "the refused sizes changed the block namespace"
	ctl del-ns "$NQN" 4 >/dev/null || fail "del-ns 4"
else
	loopdev=""
	say "note: no loop device here (losetup failed): block rescan not checked"
fi

# save writes the sizes the namespaces have now; the file loads.
ctl save "$tmp/saved.yaml" >/dev/null || fail "save"
sizes=$(grep -E '^ +size: ' "$tmp/saved.yaml" | awk '{ print $2 }' |
    tr '\n' ' ')
[ "$sizes" = "67108864 25165824 25165824 " ] ||
	fail "saved sizes: $sizes (expected 64M 24M 24M)"
grep -q "path: \"*$tmp/ns3.img.b" "$tmp/saved.yaml" ||
	fail "the saved file lacks NSID 3's new path"
"$NVMFD" -n -f "$tmp/saved.yaml" >/dev/null 2>&1 ||
	fail "the saved file does not load"
# Reloading the saved file with a new size resizes the RAM namespace in
# place; the rest stays as it is.
sed 's/size: 67108864$/size: 100663296/' "$tmp/saved.yaml" >"$tmp/nvmfd.yaml"
ctl reload >/dev/null 2>&1 || fail "reload"
ctl list-ns "$NQN" --json >"$tmp/ns.json" 2>&1
python3 - "$tmp/ns.json" <<'EOF2' || fail "reload did not resize: $(cat "$tmp/ns.json")"
import json, sys
sizes = {n["nsid"]: n["size"] for n in json.load(open(sys.argv[1]))["namespaces"]}
assert sizes == {1: 96 << 20, 2: 24 << 20, 3: 24 << 20}, sizes
EOF2
grep -q "namespace 1: size 67108864 -> 100663296 bytes" "$tmp/nvmfd.log" ||
	fail "the log does not say NSID 1 grew on reload"
test_finish
