#!/bin/sh
# durability.sh: acknowledged writes outlive a SIGKILL.  nvmfd serves a
# file namespace (page cache), an O_DIRECT file namespace and, where this
# machine lets the test attach a loop device, a block namespace on one.
# perf writes each whole namespace with its verify pattern (every 8 bytes
# name their address) in 128 KiB writes at queue depth 8, from random
# offsets (randwrite) and then sequentially, and nvmfd is killed with
# SIGKILL the moment perf has its last completion: no shutdown, no fsync.
# Then: the backing files hold every block as written (read directly, not
# through nvmfd), and a restarted nvmfd serves them (perf read, verify).
# The SMART log, kept in state_dir, counts it: power cycles 1 before the
# kill, then 2 with 1 unsafe shutdown; after a clean SIGTERM and a third
# start, 3 and still 1.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/durability.sh
# Exit status: 0 pass, 77 skip (no daemon, no python3, no free port), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"
NQN=nqn.2026-11.io.nvmfd.test:durability
SIZE=8388608

. "$here/lib.sh"
need_nvmfd 77
need_python3
test_tmpdir durability || exit 1

pass() { echo "ok: $*"; }

loopdev=""
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
}

truncate -s $SIZE "$tmp/cached.img" "$tmp/direct.img" "$tmp/block.img" ||
	exit 1
if command -v losetup >/dev/null 2>&1 &&
    loopdev=$(losetup -f --show "$tmp/block.img" 2>/dev/null); then
	blockns="
      - {nsid: 3, backend: block, path: $loopdev}"
	echo "block namespace on $loopdev"
else
	loopdev="" blockns=""
	echo "note: no loop device here (losetup failed): no block namespace"
fi

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT
	cat >"$tmp/nvmfd.yaml" <<YAML
state_dir: $tmp/state
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: file, path: $tmp/cached.img}
      - {nsid: 2, backend: file, path: $tmp/direct.img, direct: true}$blockns
YAML
}

perf() {	# NSID ARGS...
	_n=$1
	shift
	"$NVMFD" perf -a 127.0.0.1 -s "$daemon_port" -n "$NQN" -N "$_n" \
	    -o 131072 -q 8 -v -j "$@" >"$tmp/perf.json" 2>"$tmp/perf.err"
}
nsids="1 2"
[ -n "$loopdev" ] && nsids="1 2 3"

smart() {	# CYCLES UNSAFE: the SMART log's counters must read so
	python3 - "$daemon_port" "$NQN" "$1" "$2" <<'EOP'
import os, struct, sys
sys.path.insert(0, os.environ["here"])
import nvmf_client as nc
port, nqn, cycles, unsafe = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
h = nc.Host("127.0.0.1", int(port))
h.icreq()
assert h.connect(nqn).ok
h.enable()
cpl = h.get_log_page(0x02, length=512, nsid=0xFFFFFFFF)
got = struct.unpack_from("<Q", cpl.data, 112)[0], \
    struct.unpack_from("<Q", cpl.data, 144)[0]
print(("ok: " if got == (cycles, unsafe) else "FAIL: ") +
      f"SMART power cycles {got[0]}, unsafe shutdowns {got[1]} "
      f"(expected {cycles}, {unsafe})")
sys.exit(got != (cycles, unsafe))
EOP
}
export here

daemon_start_or_skip write_config "24740 24741 24742 24743"
smart 1 0 || fail "health counters at the first start"
for n in $nsids; do
	perf "$n" -w randwrite -t 1 ||
		fail "ns $n: randwrite: $(tail -1 "$tmp/perf.err")"
	perf "$n" -w write -t 2 ||
		fail "ns $n: write: $(tail -1 "$tmp/perf.err")"
	ios=$(sed -n 's/.*"ios":\([0-9]*\).*/\1/p' "$tmp/perf.json")
	[ $((${ios:-0} * 131072)) -ge $SIZE ] ||
		fail "ns $n: only ${ios:-0} writes of 128 KiB in 2 s: not all of it"
done
daemon_kill
pass "nvmfd killed with SIGKILL right after the last acknowledgement"

# The files themselves, read without nvmfd.
python3 - "$tmp/cached.img" "$tmp/direct.img" ${loopdev:+"$tmp/block.img"} <<'EOP' ||
import struct, sys
bad = 0
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    wrong = sum(1 for off in range(0, len(data), 8)
                if struct.unpack_from("<Q", data, off)[0] !=
                (off * 0x9e3779b97f4a7c15) & (2**64 - 1))
    print(("ok: " if wrong == 0 else "FAIL: ") +
          f"{path.rsplit('/', 1)[1]}: {len(data)} bytes, {wrong} words "
          "differ from what was written")
    bad += wrong != 0
sys.exit(1 if bad else 0)
EOP
	fail "acknowledged writes missing from the backing files"

daemon_start_or_skip write_config "$daemon_port 24740 24741 24742 24743"
for n in $nsids; do
	perf "$n" -w read -t 1 && ! grep -q '"verify_errors":[1-9]' "$tmp/perf.json" &&
	    pass "ns $n: read back after the restart, verified" ||
	    fail "ns $n: $(tail -1 "$tmp/perf.json") $(tail -1 "$tmp/perf.err")"
done
smart 2 1 || fail "health counters after the SIGKILL"
daemon_stop fail
daemon_start_or_skip write_config "$daemon_port 24740 24741 24742 24743"
smart 3 1 || fail "health counters after a clean stop"
test_finish
