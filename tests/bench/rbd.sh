#!/bin/sh
# tests/bench/rbd.sh: an RBD namespace next to fio's rbd engine on the same
# image, in the same run (make bench-rbd).
#
#   rbd.sh path/to/nvmfd
#
# Starts a throwaway one-monitor, one-OSD Ceph cluster (memstore, see
# tests/integration/ceph-lib.sh), a 256 MiB image written once all over,
# and nvmfd serving it as an rbd namespace on 127.0.0.1.  Then, in each
# round, 4 KiB random reads and random writes at queue depth 32: fio's rbd
# engine straight on the image (librbd in fio's process), and nvmfd perf
# through NVMe/TCP (librbd in nvmfd's), alternating.  Each row keeps its
# median round; the summary gives nvmfd's IOPS as a fraction of fio's, and
# the load average before and after (the OSD, the monitor, nvmfd and the
# client share this machine's cores: the figures are the whole stack's).
# Writes rbd-results.csv and rbd-summary.txt next to this script (or to
# BENCH_OUT).
#
# Environment: BENCH_SECONDS (default 10), BENCH_RUNS (default 3),
# BENCH_OUT.  Needs ceph-mon, ceph-osd, ceph-common, fio (with its rbd
# engine) and python3; exits 77 without them.  Loopback only; only
# processes started here are stopped, by PID.
set -u
LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
NVMFD=${1:-${NVMFD:-}}
if [ -z "$NVMFD" ] || [ ! -x "$NVMFD" ]; then
	echo "usage: $0 path/to/nvmfd" >&2
	exit 2
fi
case $NVMFD in /*) ;; *) NVMFD=$(pwd)/$NVMFD ;; esac
SECS=${BENCH_SECONDS:-10}
RUNS=${BENCH_RUNS:-3}
case $SECS$RUNS in *[!0-9]*) echo "rbd.sh: numbers please" >&2; exit 2 ;; esac
[ "$SECS" -ge 1 ] && [ "$SECS" -le 600 ] && [ "$RUNS" -ge 1 ] &&
    [ "$RUNS" -le 9 ] || { echo "rbd.sh: 1..600 s, 1..9 runs" >&2; exit 2; }
NQN=nqn.2026-11.io.nvmfd.bench:rbd

. "$here/../integration/ceph-lib.sh"
ceph_need
if ! fio --enghelp=rbd >/dev/null 2>&1; then
	echo "SKIP: fio without its rbd engine"
	exit 77
fi
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/nvmfd-bench-rbd.XXXXXX") || exit 1
OUT=${BENCH_OUT:-$here}
mkdir -p "$OUT" || exit 1
dpid=
cleanup() {
	if [ -n "$dpid" ]; then
		kill "$dpid" 2>/dev/null
		wait "$dpid" 2>/dev/null
	fi
	ceph_stop
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

ceph_start "$work/ceph" || { echo "rbd.sh: Ceph did not start" >&2; exit 1; }
# fio reads the same file: no client cache there either (nvmfd forces it).
printf '[client]\nrbd cache = false\n' >>"$ceph_conf"
CEPH_CONF=$ceph_conf
export CEPH_CONF
ceph_rbd create --size 256M --image-feature layering rbd/bench || exit 1
fio --name=fill --ioengine=rbd --clientname=admin --pool=rbd \
    --rbdname=bench --rw=write --bs=1M --iodepth=8 --size=256M \
    >"$work/fill.out" 2>&1 || { cat "$work/fill.out"; exit 1; }

for port in 24790 24791 24792 24793; do
	cat >"$work/nvmfd.yaml" <<EOF
control:
  socket: $work/ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $port}
subsystems:
  - nqn: $NQN
    namespaces:
      - {nsid: 1, backend: rbd, pool: rbd, image: bench, ceph_user: admin,
         keyring: "$ceph_keyring", ceph_conf: "$ceph_conf"}
EOF
	: >"$work/nvmfd.log"
	"$NVMFD" -F -f "$work/nvmfd.yaml" >>"$work/nvmfd.log" 2>&1 &
	dpid=$!
	i=0
	while ! grep -q ' ready: ' "$work/nvmfd.log" && [ $i -lt 100 ] &&
	    kill -0 "$dpid" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -q ' ready: ' "$work/nvmfd.log" && break
	kill "$dpid" 2>/dev/null
	wait "$dpid" 2>/dev/null
	dpid=
	grep -qi 'in use' "$work/nvmfd.log" || { cat "$work/nvmfd.log"; exit 1; }
done
[ -n "$dpid" ] || { echo "rbd.sh: no free port" >&2; exit 1; }

load() { cut -d' ' -f1 /proc/loadavg; }
load_before=$(load)

# run_fio WORKLOAD ROUND, run_perf WORKLOAD ROUND: "iops lat_avg_us p99_us"
run_fio() {
	fio --name=f --ioengine=rbd --clientname=admin --pool=rbd \
	    --rbdname=bench --rw="$1" --bs=4k --iodepth=32 --time_based \
	    --runtime="$SECS" --output-format=json \
	    >"$work/fio-$1-$2.json" 2>/dev/null || return 1
	python3 - "$work/fio-$1-$2.json" "$1" <<'EOF'
import json, sys
t = open(sys.argv[1]).read()
j = json.loads(t[t.find("{"):])["jobs"][0]
d = j["read" if "read" in sys.argv[2] else "write"]
c = d["clat_ns"]
print("%.0f %.1f %.1f" % (d["iops"], c["mean"] / 1e3,
      c.get("percentile", {}).get("99.000000", 0) / 1e3))
EOF
}
run_perf() {
	timeout -k 5 $((SECS + 60)) "$NVMFD" perf -a 127.0.0.1 -s "$port" \
	    -n "$NQN" -w "$1" -o 4096 -q 32 -t "$SECS" -j \
	    >"$work/perf-$1-$2.json" 2>/dev/null || return 1
	python3 - "$work/perf-$1-$2.json" <<'EOF'
import json, sys
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print("%.0f %.1f %.1f" % (j["iops"], j["lat_avg_us"], j["lat_p99_us"]))
EOF
}

: >"$work/rows"
r=1
while [ $r -le "$RUNS" ]; do
	for w in randread randwrite; do
		for tool in fio perf; do
			if ! v=$("run_$tool" "$w" "$r"); then
				echo "rbd.sh: $tool $w failed" >&2
				exit 1
			fi
			echo "$tool $w $r $v" >>"$work/rows"
			echo "round $r: $tool $w: $v"
		done
	done
	r=$((r + 1))
done
load_after=$(load)

rev=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
python3 - "$work/rows" "$OUT" "$SECS" "$RUNS" "$load_before" \
    "$load_after" "$rev" "$(nproc)" <<'EOF'
import statistics, sys, time
rows, out, secs, runs, lb, la, rev, ncpu = sys.argv[1:]
by = {}
for line in open(rows):
    tool, w, _, iops, avg, p99 = line.split()
    by.setdefault((tool, w), []).append((float(iops), float(avg), float(p99)))
def med(k):
    v = sorted(by[k])
    return v[len(v) // 2]
stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
head = (f"# nvmfd rbd bench {stamp}; nvmfd ({rev}); {ncpu} CPUs shared by "
        f"the monitor, the OSD (memstore), nvmfd and the client\n"
        f"# {secs} s per run; median of {runs} rounds; load average "
        f"before {lb}, after {la}\n")
with open(out + "/rbd-results.csv", "w") as f:
    f.write(head)
    f.write("test,tool,workload,block_size,depth,seconds,iops,lat_avg_us,"
            "lat_p99_us\n")
    for w in ("randread", "randwrite"):
        for tool, name in (("fio", "fio rbd engine"),
                           ("perf", "nvmfd rbd namespace, nvmfd perf")):
            i, a, p = med((tool, w))
            f.write(f"rbd_{w}_4k_qd32_{tool},{name},{w},4096,32,{secs},"
                    f"{i:.0f},{a:.1f},{p:.1f}\n")
with open(out + "/rbd-summary.txt", "w") as f:
    f.write(head + "\n")
    f.write(f"{'4 KiB QD32':<12} {'fio rbd engine':>22} "
            f"{'nvmfd over NVMe/TCP':>22} {'ratio':>7}\n")
    for w in ("randread", "randwrite"):
        fi, fa, _ = med(("fio", w))
        ni, na, _ = med(("perf", w))
        f.write(f"{w:<12} {fi:>10.0f} IOPS {fa:>6.0f} us "
                f"{ni:>10.0f} IOPS {na:>6.0f} us {ni / fi:>6.2f}x\n")
    f.write("\nfio's rbd engine runs librbd in the client's process; nvmfd "
            "perf goes through\nNVMe/TCP to nvmfd, which runs librbd.  "
            "Latencies are averages.\n")
print(open(out + "/rbd-summary.txt").read())
EOF
