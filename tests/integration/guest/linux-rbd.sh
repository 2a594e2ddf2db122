# shellcheck shell=sh
# Guest half of tests/integration/linux-rbd.sh: runs inside the peer-linux
# VM (busybox ash, lib.sh sourced).  Two nvmfd nodes on the test machine
# (10.0.2.2, ports PA and PB) serve one Ceph RBD image as namespace 1 of
# the same subsystem; each one's discovery log refers to the other.  Node
# B's agent (ctl_agent.py on 10.0.2.2:AGENT_PORT) can SIGKILL node B.
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
# Exits 0 when every check passed, 1 otherwise (with dmesg).
# shellcheck disable=SC2317  # functions from lib.sh are called indirectly

echo "guest: started"
A=10.0.2.2
PA=$1 PB=$2 AP=$3 NQN=$4
. /peer/files/checks.sh

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
mp_connect
if [ "$nsub" = 1 ] && [ "$npaths" = 2 ] && [ "$dev" = "/dev/${pa%%c*}n1" ]; then
	pass "multipath: $dev over $pa (node A) and $pb (node B) in $subsys"
else
	abort "multipath: $nsub subsystem(s), $npaths path(s), $dev, paths $pa/$pb"
fi
echo round-robin >"/sys/class/nvme-subsystem/$subsys/iopolicy" 2>/dev/null ||
	fail "multipath: cannot set the round-robin I/O policy"

# ------------------------------------------------ node B dies under fio
say "fio verify through $dev; node B is killed meanwhile"
mp_fio rbd
sleep 1
wb0=$(writes "$pb")
[ "$wb0" -gt 0 ] || fail "kill: no I/O went through node B before it died"
ask kill >/dev/null || fail "kill: the agent did not kill node B: $ans"
sleep 2
wa1=$(writes "$pa")
sleep 3
wa2=$(writes "$pa")
state=$(cat "/sys/class/nvme/$cb/state" 2>/dev/null)
if [ "$wa2" -gt "$wa1" ]; then
	pass "kill: node B gone (its controller: $state); writes go on via node A ($wa1 -> $wa2 between 2 s and 5 s after the kill)"
else
	fail "kill: writes via node A stalled after node B died ($wa1 -> $wa2); B's controller: $state"
fi
mp_fio_wait kill "(it ran on after node B died)"
finish
