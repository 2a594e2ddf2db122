# shellcheck shell=sh
# Guest half of tests/integration/linux-rbd.sh: runs inside the peer-linux
# VM (busybox ash, lib.sh sourced).  Two nvmfd nodes on the test machine
# (10.0.2.2, ports PA and PB) serve one Ceph RBD image as namespace 1 of
# the same subsystem; each one's discovery log refers to the other.  The
# agent (ctl_agent.py on 10.0.2.2:AGENT_PORT) can SIGKILL either node and
# start node B again with its configuration.
#
# Args: PA PB AGENT_PORT NQN
#
# Checks, each reported as a "PASS: ..." or "FAIL: ..." line:
#   discovery   node A's log lists NQN on PA and refers to PB, whose log
#               lists NQN on PB
#   multipath   connected to both ports found there: one subsystem, two
#               paths (nvme list-subsys), one multipath block device
#   kill        fio writes and verifies through the multipath device
#               (round-robin over both paths); node B is killed with
#               SIGKILL meanwhile: writes go on through node A, and fio
#               ends with no verify or I/O error
#   restart     node B started again (same configuration): its controller
#               is live again (sysfs state, nvme list-subsys) by the
#               host's own reconnect, and the path takes writes; the time
#               from the restart request to "live" is reported
#   alone       fio writes and verifies again, over both paths; node A is
#               killed meanwhile: writes go on through the restarted node B
#               alone, and fio ends with no verify or I/O error
# Exits 0 when every check passed, 1 otherwise (with dmesg).
# shellcheck disable=SC2317  # functions from lib.sh are called indirectly

echo "guest: started"
A=10.0.2.2
PA=$1 PB=$2 AP=$3 NQN=$4
. /peer/files/checks.sh

# ctrl_state CTRL: its sysfs state (live, connecting, ...).
ctrl_state() { cat "/sys/class/nvme/$1/state" 2>/dev/null; }

# kill_under_fio CHECK NODE DEADPATH DEADCTRL LIVEPATH: fio verify through
# dev (mp_fio), the agent SIGKILLs NODE, whose path is DEADPATH (controller
# DEADCTRL): writes must go on via LIVEPATH, and fio end with no error.
kill_under_fio() {
	node=$(echo "$2" | tr a-z A-Z)
	say "fio verify through $dev; node $node is killed meanwhile"
	b0=$(writes "$3")
	mp_fio "$1"
	sleep 1
	w0=$(writes "$3")
	ask kill "$2" >/dev/null || fail "$1: the agent did not kill node $node: $ans"
	sleep 2
	w1=$(writes "$5")
	sleep 3
	w2=$(writes "$5")
	if [ "$w0" -gt "$b0" ] && [ "$w2" -gt "$w1" ]; then
		pass "$1: node $node gone (its controller: $(ctrl_state "$4")); writes go on via $5 ($w1 -> $w2 between 2 s and 5 s after the kill)"
	else
		fail "$1: writes via $3 before the kill: $b0 -> $w0; via $5 after it: $w1 -> $w2; $4: $(ctrl_state "$4")"
	fi
	mp_fio_wait "$1" "(it ran on after node $node died)"
}

# ------------------------------------------------ discovery and referral
say "discovery on node A (10.0.2.2:$PA)"
ea=$(entries "$A" "$PA")
echo "$ea" | sed 's/^/  A: /'
ref=$(echo "$ea" | grep -i '^[^|]*referral|' | head -1)
rsvc=$(echo "$ref" | cut -d'|' -f3)
eb=""
[ -n "$rsvc" ] && eb=$(entries "$A" "$rsvc")
echo "$eb" | sed 's/^/  B: /'
sa=$(echo "$ea" | grep "^nvme subsystem|" | grep "|$NQN\$" | cut -d'|' -f3)
sb=$(echo "$eb" | grep "^nvme subsystem|" | grep "|$NQN\$" | cut -d'|' -f3)
if [ "$sa" = "$PA" ] && [ "$rsvc" = "$PB" ] && [ "$sb" = "$PB" ]; then
	pass "discovery: $NQN on $sa, a referral to $rsvc, which lists it on $sb"
else
	abort "discovery: expected $NQN on $PA and a referral to $PB listing it there (got '$sa', '$rsvc', '$sb')"
fi

# ------------------------------------------------ both paths
# A lost controller tries again every 2 s (not 10), for up to 120 s, so
# that the restart below is seen soon after the node is ready.
mp_connect --reconnect-delay=2 --ctrl-loss-tmo=120
if [ "$nsub" = 1 ] && [ "$npaths" = 2 ] && [ "$dev" = "/dev/${pa%%c*}n1" ]; then
	pass "multipath: $dev over $pa (node A) and $pb (node B) in $subsys"
else
	abort "multipath: $nsub subsystem(s), $npaths path(s), $dev, paths $pa/$pb"
fi
echo round-robin >"/sys/class/nvme-subsystem/$subsys/iopolicy" 2>/dev/null ||
	fail "multipath: cannot set the round-robin I/O policy"

# ------------------------------------------------ node B dies under fio
kill_under_fio kill b "$pb" "$cb" "$pa"

# ------------------------------------------------ node B comes back
say "node B started again"
t_ask=$(cut -d' ' -f1 /proc/uptime)
ask restart b >/dev/null || abort "restart: the agent did not start node B: $ans"
t_ready=$(cut -d' ' -f1 /proc/uptime)
i=0
while [ $i -lt 600 ] && [ "$(ctrl_state "$cb")" != live ]; do
	sleep 0.1
	i=$((i + 1))
done
t_live=$(cut -d' ' -f1 /proc/uptime)
lsb=$(nvme list-subsys "$dev" 2>&1 | grep "trsvcid=$PB")
echo "  list-subsys: $lsb"
wb0=$(writes "$pb")
dd if=/dev/zero of="$dev" bs=4k count=64 oflag=direct 2>/dev/null
wb1=$(writes "$pb")
took=$(awk -v a="$t_ask" -v r="$t_ready" -v l="$t_live" \
    'BEGIN { printf "%.1f s (node ready after %.1f s)", l - a, r - a }')
if [ "$(ctrl_state "$cb")" = live ] && echo "$lsb" | grep -q ' live' &&
    [ "$wb1" -gt "$wb0" ]; then
	pass "restart: $cb live again $took after the restart request; $pb takes writes again ($wb0 -> $wb1)"
else
	abort "restart: $cb is $(ctrl_state "$cb") $took after the restart request; writes via $pb $wb0 -> $wb1"
fi

# ------------------------------------------------ node A dies: B alone
kill_under_fio alone a "$pa" "$ca" "$pb"
finish
