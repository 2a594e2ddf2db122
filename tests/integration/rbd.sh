#!/bin/sh
# Integration test: Ceph RBD namespaces, two nvmfd nodes on one image.
# A throwaway Ceph cluster (ceph-lib.sh) holds image rbd/nvmf (16 MiB,
# created without exclusive-lock, as nvmfd.yaml(5) asks).  Node A and node
# B serve it as namespace 1 of the same subsystem, on two ports.
#   - nvmfd perf writes the whole image through A, with its verify pattern;
#     B reads it all back and verifies it (no stale data: librbd's cache is
#     off on both);
#   - B writes zeroes over one range and deallocates another (smaller than
#     an object) and flushes; A reads zeroes there, and so does the image
#     as "rbd export" copies it;
#   - add-ns refuses an image with exclusive-lock, naming the command that
#     turns it off, and a missing image, with clear errors; it waits for
#     the cluster off the main loop (list-ns answers meanwhile, and an
#     unreachable cluster fails it after client_mount_timeout), and a
#     namespace it adds is served at once; so does a reload, which keeps
#     everything as it was when an image is missing;
#   - rbd resize, up and down: both nodes take the image's new size;
#   - A dies by SIGKILL; B's next write completes at once (no wait for a
#     lock to be broken): its time is printed and must stay under 5 s;
#   - B exits 0 on SIGTERM, and no sanitizer reported anything.
#
# Needs ceph-mon, ceph-osd and ceph-common (else: skip) and python3.
# Environment (set by `make check`): NVMFD = the daemon binary, top_srcdir.
# Exit: 0 pass, 77 skip, 1 fail, 99 error.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
NVMFD=${NVMFD:-$PWD/nvmfd}
NQN=nqn.2026-11.io.nvmfd.test:rbd
IMAGE_MB=16
STALL_MAX_MS=5000

. "$here/lib.sh"
. "$here/ceph-lib.sh"
need_nvmfd 99
need_python3
ceph_need

nodea_pid=
test_tmpdir rbd 60 || exit 99
# shellcheck disable=SC2317  # called from the trap
test_cleanup() {
	if [ -n "$nodea_pid" ]; then
		kill -KILL "$nodea_pid" 2>/dev/null
		wait "$nodea_pid" 2>/dev/null
	fi
	ceph_stop
}
ln -s "$NVMFD" "$tmp/nvmfctl" || exit 99

ceph_need_rbd_build "$tmp"

t0=$(date +%s%N)
if ! ceph_start "$tmp/ceph"; then
	say "ERROR: the Ceph cluster did not start"
	exit 99
fi
say "ceph: one monitor and one OSD up, pool rbd ready in" \
    "$((($(date +%s%N) - t0) / 1000000)) ms"
ceph_rbd create --size "${IMAGE_MB}M" --image-feature layering rbd/nvmf ||
    exit 99
ceph_rbd create --size 4M rbd/locked || exit 99

# write_node NAME PORT
write_node() {
	cat >"$tmp/$1.yaml" <<EOF
workers: 2
control:
  socket: $tmp/$1.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $2}
subsystems:
  - nqn: $NQN
    namespaces:
      - nsid: 1
        backend: rbd
        pool: rbd
        image: nvmf
        ceph_user: admin
        keyring: $ceph_keyring
        ceph_conf: $ceph_conf
EOF
}

# Node B on PORT (the daemon lib.sh looks after), node A on PORT+1.
# shellcheck disable=SC2317  # called by daemon_start_on_ports
setup() {
	write_node b "$1" && write_node a $(($1 + 1))
}
if ! daemon_start_on_ports setup "$tmp/b.yaml" "$tmp/nvmfd.log" \
    "24780 24782 24784 24786"; then
	say "ERROR: $daemon_error"
	exit 99
fi
portb=$daemon_port
porta=$((portb + 1))
if ! node_start "$tmp/a.yaml" "$tmp/a.log"; then
	say "ERROR: node A did not start on port $porta"
	exit 99
fi
nodea_pid=$node_pid
say "node A (pid $nodea_pid) on 127.0.0.1:$porta, node B (pid $daemon_pid)" \
    "on $portb, both on rbd/nvmf"

perf() {	# perf PORT ARG...: JSON on stdout, exit status perf's
	_pp=$1
	shift
	timeout -k 5 60 "$NVMFD" perf -a 127.0.0.1 -s "$_pp" -n "$NQN" -j "$@"
}
field() {	# field NAME < JSON
	sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"
}
checks() {	# checks PORT STEP...
	_cp=$1
	shift
	timeout -k 5 90 python3 "$here/rbd_checks.py" --port "$_cp" \
	    --nqn "$NQN" "$@" >"$tmp/checks.out" 2>&1
	_cr=$?
	sed 's/^/    /' "$tmp/checks.out"
	return $_cr
}

# ------------------------------------------------ A writes, B reads it back
# Sequential 64 KiB writes wrap around the image: 2 s covers it many times.
if perf "$porta" -w write -o 65536 -q 8 -t 2 -v >"$tmp/w.json" \
    2>"$tmp/w.err"; then
	ios=$(field ios <"$tmp/w.json")
	if [ "$((ios * 64))" -ge "$((IMAGE_MB * 1024))" ]; then
		say "ok: A wrote the whole image: $ios x 64 KiB," \
		    "$(field iops <"$tmp/w.json") IOPS"
	else
		fail "A wrote $ios x 64 KiB in 2 s, less than the image"
	fi
else
	fail "perf write on A: $(tail -1 "$tmp/w.err")"
fi
if perf "$porta" -w randwrite -o 4096 -q 32 -t 1 -v >"$tmp/rw.json" \
    2>"$tmp/rw.err"; then
	say "ok: A 4 KiB random writes QD32: $(field iops <"$tmp/rw.json") IOPS"
else
	fail "perf randwrite on A: $(tail -1 "$tmp/rw.err")"
fi
if checks "$porta" flush; then
	say "ok: flush on A"
else
	fail "flush on A"
fi
if perf "$portb" -w read -o 65536 -q 8 -t 1 -v >"$tmp/r.json" \
    2>"$tmp/r.err"; then
	say "ok: B read back what A wrote: $(field ios <"$tmp/r.json")" \
	    "verified 64 KiB reads"
else
	fail "B's verified reads of A's writes:" \
	    "$(field verify_errors <"$tmp/r.json") verify errors," \
	    "$(tail -1 "$tmp/r.err")"
fi
if perf "$portb" -w randread -o 4096 -q 32 -t 1 -v >"$tmp/rr.json" \
    2>"$tmp/rr.err"; then
	say "ok: B 4 KiB random reads QD32, verified:" \
	    "$(field iops <"$tmp/rr.json") IOPS"
else
	fail "perf randread on B: $(tail -1 "$tmp/rr.err")"
fi

# ------------------------------ B zeroes and deallocates, A sees it at once
# LBAs of 512 bytes: zeroes over 64 KiB at 1 MiB, deallocate 3 KiB at
# 2 MiB + 1 KiB (inside one 4 MiB object).
if checks "$portb" zeroes:2048:128 dealloc:4098:6 flush \
    expect:2048:128:0 expect:4098:6:0; then
	say "ok: B wrote zeroes, deallocated, flushed and read zeroes back"
else
	fail "write zeroes / deallocate on B"
fi
if checks "$porta" expect:2048:128:0 expect:4098:6:0; then
	say "ok: A reads B's zeroes (no stale data)"
else
	fail "A read stale data after B's write zeroes / deallocate"
fi
# The image itself, through librbd's own client.
if ceph_rbd export rbd/nvmf "$tmp/export.img" >/dev/null 2>&1; then
	if python3 - "$tmp/export.img" <<'EOF'
import sys
d = open(sys.argv[1], "rb").read()
ok = d[1 << 20:(1 << 20) + 65536] == bytes(65536) and \
    d[(2 << 20) + 1024:(2 << 20) + 4096] == bytes(3072) and \
    d[(1 << 20) - 8:1 << 20] != bytes(8) and \
    d[(2 << 20) + 1016:(2 << 20) + 1024] != bytes(8)
sys.exit(0 if ok else 1)
EOF
	then
		say "ok: rbd export shows the zeroed and deallocated ranges" \
		    "as zeroes, the data around them kept"
	else
		fail "rbd export: the ranges are not zeroes, or too much is"
	fi
else
	fail "rbd export failed"
fi

# ------------------------------------------------- what add-ns refuses
"$tmp/nvmfctl" -s "$tmp/b.sock" add-ns "$NQN" --backend rbd --pool rbd \
    --image locked --ceph-user admin --keyring "$ceph_keyring" \
    --ceph-conf "$ceph_conf" >"$tmp/lock.out" 2>&1
if grep -q 'exclusive-lock.*rbd feature disable rbd/locked' "$tmp/lock.out"
then
	say "ok: add-ns refuses an image with exclusive-lock:" \
	    "$(tail -1 "$tmp/lock.out")"
else
	fail "add-ns of an exclusive-lock image: $(cat "$tmp/lock.out")"
fi
"$tmp/nvmfctl" -s "$tmp/b.sock" add-ns "$NQN" --backend rbd --pool rbd \
    --image missing --ceph-user admin --keyring "$ceph_keyring" \
    --ceph-conf "$ceph_conf" >"$tmp/miss.out" 2>&1
if grep -q 'rbd/missing: cannot open: No such file' "$tmp/miss.out"; then
	say "ok: add-ns of a missing image: $(tail -1 "$tmp/miss.out")"
else
	fail "add-ns of a missing image: $(cat "$tmp/miss.out")"
fi

# add-ns opens the image on a pool thread: the main loop (control socket,
# admin queues) goes on meanwhile.  A cluster that does not answer (a
# ceph.conf naming a port nothing listens on) takes client_mount_timeout.
sed "s/^mon host = .*/mon host = [v2:127.0.0.1:9]/" "$ceph_conf" \
    >"$tmp/dead.conf"
t0=$(date +%s%N)
"$tmp/nvmfctl" -s "$tmp/b.sock" add-ns "$NQN" --backend rbd --pool rbd \
    --image nvmf --ceph-user admin --keyring "$ceph_keyring" \
    --ceph-conf "$tmp/dead.conf" >"$tmp/dead.out" 2>&1 &
dead_pid=$!
sleep 1
t1=$(date +%s%N)
if "$tmp/nvmfctl" -s "$tmp/b.sock" list-ns "$NQN" >/dev/null; then
	ms=$((($(date +%s%N) - t1) / 1000000))
	if [ "$ms" -lt 1000 ]; then
		say "ok: list-ns answered in $ms ms while add-ns waited for" \
		    "an unreachable cluster"
	else
		fail "list-ns took $ms ms while add-ns waited for the cluster"
	fi
else
	fail "list-ns failed while add-ns waited for the cluster"
fi
wait "$dead_pid"
ms=$((($(date +%s%N) - t0) / 1000000))
if grep -q 'cannot connect to the cluster' "$tmp/dead.out"; then
	say "ok: add-ns gave up on the unreachable cluster after $ms ms:" \
	    "$(tail -1 "$tmp/dead.out")"
else
	fail "add-ns with an unreachable cluster: $(cat "$tmp/dead.out")"
fi
ceph_rbd create --size 8M --image-feature layering rbd/second || exit 99
if "$tmp/nvmfctl" -s "$tmp/b.sock" add-ns "$NQN" --nsid 2 --backend rbd \
    --pool rbd --image second --ceph-user admin --keyring "$ceph_keyring" \
    --ceph-conf "$ceph_conf" >"$tmp/add.out" 2>&1 &&
    "$tmp/nvmfctl" -s "$tmp/b.sock" list-ns "$NQN" |
    grep -q 'rbd/second' &&
    perf "$portb" -N 2 -w randwrite -o 4096 -q 8 -t 1 -v >/dev/null \
    2>"$tmp/p2.err"; then
	say "ok: add-ns of rbd/second as namespace 2, served at once"
else
	fail "add-ns of rbd/second: $(cat "$tmp/add.out" "$tmp/p2.err")"
fi

# A reload that adds an rbd namespace opens it off the loop too, then
# applies the file (namespace 2, added live and not in the file, goes).
# One whose image is missing changes nothing.
ceph_rbd create --size 8M --image-feature layering rbd/third || exit 99
cp "$tmp/b.yaml" "$tmp/b.orig"
cat >>"$tmp/b.yaml" <<EOF
      - {nsid: 3, backend: rbd, pool: rbd, image: third, ceph_user: admin,
         keyring: "$ceph_keyring", ceph_conf: "$ceph_conf"}
EOF
if "$tmp/nvmfctl" -s "$tmp/b.sock" reload >"$tmp/reload.out" 2>&1 &&
    "$tmp/nvmfctl" -s "$tmp/b.sock" list-ns "$NQN" >"$tmp/ns.out" &&
    grep -q rbd/third "$tmp/ns.out" && ! grep -q rbd/second "$tmp/ns.out"
then
	say "ok: reload added rbd/third as namespace 3 (and dropped 2)"
else
	fail "reload with rbd/third: $(cat "$tmp/reload.out" "$tmp/ns.out")"
fi
sed 's/image: third/image: nothere/' "$tmp/b.yaml" >"$tmp/b.new"
mv "$tmp/b.new" "$tmp/b.yaml"
"$tmp/nvmfctl" -s "$tmp/b.sock" reload >"$tmp/reload.out" 2>&1
if grep -q 'namespace 3: rbd rbd/nothere: cannot open' "$tmp/reload.out" &&
    "$tmp/nvmfctl" -s "$tmp/b.sock" list-ns "$NQN" | grep -q rbd/third
then
	say "ok: a reload with a missing image fails and keeps namespace 3:" \
	    "$(tail -1 "$tmp/reload.out")"
else
	fail "reload with a missing image: $(cat "$tmp/reload.out")"
fi
mv "$tmp/b.orig" "$tmp/b.yaml"

# save writes the rbd keys back; the file it writes loads as it was.
if "$tmp/nvmfctl" -s "$tmp/b.sock" save "$tmp/saved.yaml" >/dev/null &&
    grep -q 'image: "*third' "$tmp/saved.yaml" &&
    grep -q "ceph_conf: \"*$ceph_conf" "$tmp/saved.yaml" &&
    "$NVMFD" -n -f "$tmp/saved.yaml" >/dev/null 2>&1; then
	say "ok: save writes the rbd namespaces back, and the file loads"
else
	fail "save of rbd namespaces: $(grep -A8 'backend: rbd' \
	    "$tmp/saved.yaml" | head -20)"
fi

# The image grows: both nodes take the new size (and tell their hosts).
ns_size() {	# ns_size SOCKET: namespace 1's size in bytes
	"$tmp/nvmfctl" -s "$1" list-ns "$NQN" --json | python3 -c '
import json, sys
print([n["size"] for n in json.load(sys.stdin)["namespaces"]
       if n["nsid"] == 1][0])'
}
resize_to() {	# resize_to MB: rbd resize, then both nodes must follow
	ceph_rbd resize --allow-shrink --size "$1M" rbd/nvmf >/dev/null 2>&1 ||
	    fail "rbd resize --size $1M"
	_want=$(($1 * 1024 * 1024))
	for _ in $(seq 100); do
		[ "$(ns_size "$tmp/a.sock")" = $_want ] &&
		    [ "$(ns_size "$tmp/b.sock")" = $_want ] && break
		sleep 0.1
	done
	if [ "$(ns_size "$tmp/a.sock")" = $_want ] &&
	    [ "$(ns_size "$tmp/b.sock")" = $_want ]; then
		say "ok: rbd resize to $1 MiB: both nodes serve the new size"
	else
		fail "after rbd resize: A has $(ns_size "$tmp/a.sock"), B" \
		    "$(ns_size "$tmp/b.sock") bytes, not $_want"
	fi
}
resize_to $((IMAGE_MB * 2))
resize_to "$IMAGE_MB"
if "$tmp/nvmfctl" -s "$tmp/b.sock" set-ns "$NQN" 1 --size 64M \
    >"$tmp/setsize.out" 2>&1 ||
    ! grep -q 'rbd resize it' "$tmp/setsize.out"; then
	fail "set-ns --size on an rbd namespace: $(cat "$tmp/setsize.out")"
else
	say "ok: set-ns --size on an rbd namespace refused:" \
	    "$(tail -1 "$tmp/setsize.out")"
fi

# --------------------------------------- A dies; B writes on without a stall
kill -KILL "$nodea_pid"
wait "$nodea_pid" 2>/dev/null
nodea_pid=
t0=$(date +%s%N)
if checks "$portb" write:0:8:9 expect:0:8:9; then
	ms=$((($(date +%s%N) - t0) / 1000000))
	if [ "$ms" -lt $STALL_MAX_MS ]; then
		say "ok: after A's SIGKILL, B wrote and read back in $ms ms" \
		    "(connect included)"
	else
		fail "B's first write after A's SIGKILL took $ms ms"
	fi
else
	fail "B's write after A's SIGKILL"
fi
if perf "$portb" -w randwrite -o 4096 -q 32 -t 1 >"$tmp/w2.json" \
    2>"$tmp/w2.err"; then
	say "ok: B after A's death: $(field iops <"$tmp/w2.json") write IOPS," \
	    "max latency $(field lat_max_us <"$tmp/w2.json") us"
else
	fail "perf randwrite on B after A's death: $(tail -1 "$tmp/w2.err")"
fi

log_has_sanitizer_report "$tmp/a.log" >/dev/null &&
    fail "sanitizer report in node A's log"
[ "$status" = 0 ] || { echo "---- node A log"; tail -n 50 "$tmp/a.log"; }
test_finish
