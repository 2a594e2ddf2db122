#!/bin/sh
# engine-fault.sh: storage errors as the file I/O engine reports them, on
# io_uring and on the thread pool, with the same statuses on both.
# nvmfctl inject-error --at engine makes the engine's completion of a read
# or write report EIO, ENOSPC or a short transfer (the I/O is done, its
# result replaced), so the engine's own handling and the status mapping
# run as for a failing disk.  engine_fault.py checks each case's status,
# that the namespace serves again once the injection is used up, and the
# SMART and Error Information logs; the two rounds' statuses must match.
# A file namespace always; a block namespace on a loop device where one
# can be made here (root, loop support), else that part is skipped.  Also:
# --at engine is refused on a RAM namespace, --error short without it.
#
# Needs a build configured with --enable-fault-injection; skips (77) on
# any other.  Run by "make check" with NVMFD (the daemon) and top_srcdir
# set; by hand:
#   NVMFD=build-fi/nvmfd top_srcdir=. sh tests/integration/engine-fault.sh
# Exit status: 0 pass, 77 skip, 1 fail, 99 error.

NVMFD=${NVMFD:-}
here=$(cd "$(dirname "$0")" && pwd)

. "$here/lib.sh"
need_python3
need_nvmfd 99
if ! NVMFD_FAIL_ALLOC=0 "$NVMFD" ctl version 2>&1 |
    grep -q NVMFD_FAIL_ALLOC; then
	say "SKIP: $NVMFD is not built with --enable-fault-injection"
	exit 77
fi

NQN=nqn.2026-11.io.nvmfd.test:engine-fault
test_tmpdir efault 60 || exit 99
unset NVMFD_SOCKET NVMFD_IO_ENGINE
ln -s "$NVMFD" "$tmp/nvmfctl" || exit 99
ctl() { "$tmp/nvmfctl" -s "$tmp/ctl.sock" "$@"; }
loopdev=""
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
}

truncate -s 8M "$tmp/ns1.img" "$tmp/block.img" || exit 99
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null 2>&1 &&
    loopdev=$(losetup -f --show "$tmp/block.img" 2>/dev/null); then
	nsids="--nsid 1 --nsid 2"
else
	loopdev=""
	nsids="--nsid 1"
	say "note: no loop device here (not root, or losetup failed): the" \
	    "block namespace part is skipped; the file namespace is checked"
fi

# shellcheck disable=SC2317  # called through daemon_start_or_skip
write_config() {
	cat >"$tmp/nvmfd.yaml" <<EOF
control:
  socket: $tmp/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $1}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: file, path: $tmp/ns1.img}
$([ -n "$loopdev" ] && echo "      - {nsid: 2, backend: block, path: $loopdev}")
      - {nsid: 3, backend: ram, size: 1M}
EOF
}

refusals() {	# with the reason
	ctl inject-error "$NQN" 3 --at engine >/dev/null 2>"$tmp/err"
	[ $? = 2 ] && grep -q "only file and block namespaces" "$tmp/err" &&
	    say "ok: --at engine on a RAM namespace: refused" ||
		fail "--at engine on a RAM namespace: $(cat "$tmp/err")"
	ctl inject-error "$NQN" 1 --error short >/dev/null 2>"$tmp/err"
	[ $? = 2 ] && grep -q "only with --at engine" "$tmp/err" &&
	    say "ok: --error short without --at engine: refused" ||
		fail "--error short at io: $(cat "$tmp/err")"
	ctl inject-error "$NQN" 1 --at disk >/dev/null 2>"$tmp/err"
	[ $? = 2 ] && say "ok: --at disk: refused" ||
		fail "--at disk: $(cat "$tmp/err")"
}

round() {	# ENGINE (io_uring or threads) PORTS
	daemon_start_or_skip write_config "$2"
	kind=$(ctl version --json | python3 -c \
	    'import json, sys; print(json.load(sys.stdin)["daemon"]["file_io"])')
	if [ "$kind" != "$1" ]; then
		say "note: file I/O runs on $kind here, not $1: that round is" \
		    "skipped"
		daemon_stop fail
		return 1
	fi
	# shellcheck disable=SC2086  # $nsids is a list of options
	if timeout 120 python3 "$here/engine_fault.py" --port "$daemon_port" \
	    --nqn "$NQN" --nvmfctl "$tmp/nvmfctl" --socket "$tmp/ctl.sock" \
	    $nsids --out "$tmp/$1.json" >"$tmp/$1.out" 2>&1; then
		sed "s/^/$1: /" "$tmp/$1.out"
	else
		sed "s/^/$1: /" "$tmp/$1.out"
		fail "engine_fault.py on $1"
	fi
}

rounds=""
round io_uring "24800 24801 24802" && rounds="$rounds io_uring" &&
    daemon_stop fail
NVMFD_IO_ENGINE=threads
export NVMFD_IO_ENGINE
round threads "24803 24804 24805" && rounds="$rounds threads" &&
    refusals

case $rounds in
" io_uring threads")
	if cmp -s "$tmp/io_uring.json" "$tmp/threads.json"; then
		say "ok: io_uring and the thread pool give the same statuses"
	else
		fail "the engines' statuses differ:"
		diff "$tmp/io_uring.json" "$tmp/threads.json"
	fi ;;
*)	say "note: only$rounds ran: nothing to compare" ;;
esac
test_finish
