# shellcheck shell=sh
# Guest half of tests/integration/linux-ana.sh: runs inside the peer-linux
# VM (busybox ash, lib.sh sourced).  Two nvmfd nodes on the test machine
# (10.0.2.2, ports PA and PB) serve the same subsystem and namespace; each
# one's discovery log refers to the other.  The guest cannot reach their
# control sockets: it asks ctl_agent.py (node B's) on 10.0.2.2:AGENT_PORT.
#
# Args: PA PB AGENT_PORT NQN
#
# Checks, each reported as a "PASS: ..." or "FAIL: ..." line:
#   discovery   node A's log lists NQN on PA and a referral to PB; the
#               referral's log lists NQN on PB and a referral back
#   multipath   connected through both: one subsystem with two paths
#               (nvme list-subsys), one multipath block device, controller
#               IDs from each node's range, both paths optimized
#   failover    while fio writes and verifies through the multipath device
#               (round-robin over both paths), node B sets the group
#               inaccessible on its port: the path reports inaccessible
#               (sysfs, nvme ana-log, nvme list-subsys), I/O stops going to
#               it and goes on through node A, and fio ends with no error
#   restore     optimized again while no I/O runs (so the ANA change event
#               is what tells the host): the path reports it and takes I/O
#   move        node B moves the namespace to group 2, inaccessible on its
#               port (set-ns --ana-group): the path reports group 2 and
#               stops taking writes; moved back, group 1 and writes again
#   ana-log     after failover and after move: the ANA log page read from
#               node B's controller (nvme ana-log, JSON) holds the groups,
#               states and NSIDs node B's nvmfctl list-ana shows for its
#               port, with the change count set-ana answered (plus one
#               for the move); node A's log is as it was at the start
#               (group 1 optimized with NSID 1): nothing was set there
#   aen         the nvme_async_event tracepoint (tracefs) saw ANA change
#               events (NVME_AEN 0x0c0302: notice, ANA change, log 0Ch)
#               from node B's controller, at least one and at most one per
#               change made there (events the host has not yet cleared by
#               reading the log page are coalesced), and none from node A's
# Exits 0 when every check passed, 1 otherwise (with dmesg).
# shellcheck disable=SC2317  # functions from lib.sh are called indirectly

echo "guest: started"
A=10.0.2.2
PA=$1 PB=$2 AP=$3 NQN=$4
. /peer/files/checks.sh

# wait_state PATHDEV STATE [GROUP]: until the host reports STATE (and ANA
# group GROUP) for the path.
wait_state() {
	i=0
	while [ $i -lt 100 ]; do
		[ "$(cat "/sys/block/$1/ana_state" 2>/dev/null)" = "$2" ] &&
		    [ "$(cat "/sys/block/$1/ana_grpid" 2>/dev/null)" = "${3:-1}" ] &&
			return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# ana_log CTRL: the ANA log page CTRL returns (nvme ana-log, JSON) as
# "CHGCNT GROUP:STATE:NSIDS ..." (NSIDS "1,2" or "-"), groups in log
# order: the form of the agent's "ana" answer after the change count.
# nvme-cli versions spell the keys "state"/"State", "nsid"/"NSID".
ana_log() {
	nvme ana-log "/dev/$1" --output-format=json 2>/dev/null |
	    tr -d ' \t\n"' | tr ',{}[]' '\n\n\n\n\n' | awk -F: '
	function flush() {
		if (g != "")
			printf " %s:%s:%s", g, st, ns == "" ? "-" : ns
	}
	{ k = tolower($1) }
	k == "chgcnt" && !seen { printf "%s", $2; seen = 1 }
	k == "grpid" { flush(); g = $2; st = ""; ns = "" }
	k == "state" { st = $2 }
	k == "nsid" { ns = ns (ns == "" ? "" : ",") $2 }
	END { flush(); print "" }'
}

# ana_match WHEN CHGCNT: node B's ANA log (ana_log $cb) holds what its
# nvmfctl list-ana shows for port 1, with change count CHGCNT; node A's
# is still la0.  Reported as the ana-log check.
ana_match() {
	if ! ask ana 1 >/dev/null; then
		fail "ana-log: $1: the agent's list-ana: $ans"
		return
	fi
	lb=$(ana_log "$cb") la=$(ana_log "$ca")
	echo "  ana-log $cb (node B): $lb; nvmfctl list-ana: ${ans#ok }"
	echo "  ana-log $ca (node A): $la"
	if [ "$lb" = "$2 ${ans#ok }" ] && [ "$la" = "$la0" ]; then
		pass "ana-log: $1: node B's log page ($lb) is what nvmfctl set (change count $2), node A's unchanged ($la)"
	else
		fail "ana-log: $1: node B's log page '$lb', expected '$2 ${ans#ok }'; node A's '$la', expected '$la0'"
	fi
}

# The host's asynchronous events, as the nvme core's tracepoint sees them.
tr=/sys/kernel/tracing
[ -d "$tr/events" ] || mount -t tracefs nodev "$tr" 2>/dev/null
if echo 1 >"$tr/events/nvme/nvme_async_event/enable" 2>/dev/null; then
	: >"$tr/trace"
else
	fail "aen: no nvme_async_event tracepoint in $tr"
fi
# ana_aens CTRL: ANA change events the host received from CTRL.
ana_aens() {
	grep -ciE "nvme_async_event: $1: NVME_AEN=0x0*c0302" "$tr/trace" 2>/dev/null
}

# ------------------------------------------------ discovery and referral
say "discovery on node A (10.0.2.2:$PA)"
ea=$(entries "$A" "$PA")
echo "$ea" | sed 's/^/  A: /'
eb=""
ref=$(echo "$ea" | grep -i '^[^|]*referral|' | head -1)
if [ -n "$ref" ]; then
	raddr=$(echo "$ref" | cut -d'|' -f2)
	rsvc=$(echo "$ref" | cut -d'|' -f3)
	eb=$(entries "$raddr" "$rsvc")
	echo "$eb" | sed 's/^/  B: /'
fi
if echo "$ea" | grep -q "^nvme subsystem|.*|$PA|$NQN\$" &&
    [ "$raddr:$rsvc" = "$A:$PB" ] &&
    echo "$eb" | grep -q "^nvme subsystem|.*|$PB|$NQN\$" &&
    echo "$eb" | grep -qi "referral|$A|$PA|"; then
	pass "discovery: $NQN on $PA, referral to $raddr:$rsvc lists it on $PB and refers back"
else
	fail "discovery: expected $NQN on $PA and a referral to $A:$PB listing it on $PB"
fi

# ------------------------------------------------ both paths
# The entries name the nodes' own address (127.0.0.1 on the test machine),
# which the guest reaches as 10.0.2.2: connect there to each entry's port.
mp_connect
ida=$(cat "/sys/class/nvme/$ca/cntlid") idb=$(cat "/sys/class/nvme/$cb/cntlid")
sa=$(cat "/sys/block/$pa/ana_state") sb=$(cat "/sys/block/$pb/ana_state")
if [ "$nsub" = 1 ] && [ "$npaths" = 2 ] && [ "$dev" = "/dev/${pa%%c*}n1" ] &&
    [ "$ida" -ge 1 ] && [ "$ida" -le 99 ] && [ "$idb" -ge 100 ] &&
    [ "$idb" -le 199 ] && [ "$sa" = optimized ] && [ "$sb" = optimized ]; then
	pass "multipath: $dev over $pa (cntlid $ida) and $pb (cntlid $idb) in $subsys, both optimized"
else
	fail "multipath: $nsub subsystem(s), $npaths path(s), $dev, paths $pa/$pb, cntlid $ida/$idb, states $sa/$sb"
fi
echo round-robin >"/sys/class/nvme-subsystem/$subsys/iopolicy" 2>/dev/null ||
	fail "multipath: cannot set the round-robin I/O policy"
la0=$(ana_log "$ca") lb0=$(ana_log "$cb")
echo "  ana-log at the start: $ca (node A) $la0; $cb (node B) $lb0"
[ "${la0#* }" = "1:optimized:1" ] && [ "${lb0#* }" = "1:optimized:1" ] ||
	fail "ana-log: at the start: $la0 (node A), $lb0 (node B), expected group 1 optimized with NSID 1 on both"

# ------------------------------------------------ failover under fio
say "fio verify through $dev; node B's port goes inaccessible meanwhile"
mp_fio ana
sleep 1
wb0=$(writes "$pb")
[ "$wb0" -gt 0 ] || fail "failover: no I/O went through node B before the change"
t_ask=$(cut -d' ' -f1 /proc/uptime)
ask set-ana 1 1 inaccessible >/dev/null || fail "failover: set-ana inaccessible: $ans"
chg=${ans#ok }
if wait_state "$pb" inaccessible; then
	ana_match "failover" "$chg"
	t_seen=$(awk -v t="$t_ask" '{ printf "%.2f", $1 - t }' /proc/uptime)
	sleep 1		# requests already sent to B come back and fail over
	wa1=$(writes "$pa") wb1=$(writes "$pb")
	sleep 3
	wa2=$(writes "$pa") wb2=$(writes "$pb")
	alog=$(nvme ana-log "/dev/$cb" 2>&1)
	echo "$alog" | grep -E 'grpid|state' | sed 's/^/  ana-log B: /'
	lsb=$(nvme list-subsys "$dev" 2>&1 | grep "trsvcid=$PB")
	echo "  list-subsys: $lsb"
	if [ "$wb2" = "$wb1" ] && [ "$wa2" -gt "$wa1" ] &&
	    echo "$alog" | grep -Eq 'state[^a-z]*inaccessible' &&
	    echo "$lsb" | grep -q inaccessible; then
		pass "failover: $pb inaccessible (sysfs, ana-log, list-subsys) ${t_seen}s after the request; writes via B $wb1 -> $wb2, via A $wa1 -> $wa2"
	else
		fail "failover: writes via B $wb1 -> $wb2, via A $wa1 -> $wa2; ana-log: $(echo "$alog" | grep state | tr '\n' ' '); list-subsys: $lsb"
	fi
else
	fail "failover: $pb still reports $(cat "/sys/block/$pb/ana_state")"
fi
mp_fio_wait failover

# ------------------------------------------------ back to optimized
# No I/O runs now: only the ANA change event can tell the host.
t_ask=$(cut -d' ' -f1 /proc/uptime)
ask set-ana 1 1 optimized >/dev/null || fail "restore: set-ana optimized: $ans"
if wait_state "$pb" optimized; then
	t_seen=$(awk -v t="$t_ask" '{ printf "%.2f", $1 - t }' /proc/uptime)
	wb0=$(writes "$pb")
	dd if=/dev/zero of="$dev" bs=4k count=64 oflag=direct 2>/dev/null
	if [ "$(writes "$pb")" -gt "$wb0" ]; then
		pass "restore: $pb optimized again ${t_seen}s after the request, with no I/O running (the ANA change event), and taking writes"
	else
		fail "restore: $pb optimized but took no writes"
	fi
else
	fail "restore: $pb still reports $(cat "/sys/block/$pb/ana_state")"
fi

# ------------------------------------------------ a namespace changes group
ask set-ana 2 1 inaccessible >/dev/null || fail "move: set-ana group 2: $ans"
chg=${ans#ok }
ask set-ns-group 1 2 >/dev/null || fail "move: set-ns --ana-group 2: $ans"
if wait_state "$pb" inaccessible 2; then
	# A namespace changing group is one more change (ana_changed).
	ana_match "move" $((chg + 1))
	wa0=$(writes "$pa") wb0=$(writes "$pb")
	dd if=/dev/zero of="$dev" bs=4k count=64 oflag=direct 2>/dev/null
	wa1=$(writes "$pa") wb1=$(writes "$pb")
	ask set-ns-group 1 1 >/dev/null || fail "move: set-ns --ana-group 1: $ans"
	if [ "$wb1" = "$wb0" ] && [ "$wa1" -gt "$wa0" ] &&
	    wait_state "$pb" optimized; then
		pass "move: $pb in group 2 (inaccessible) took no writes ($wb0 -> $wb1, A $wa0 -> $wa1), back in group 1 optimized"
	else
		fail "move: writes via B $wb0 -> $wb1, via A $wa0 -> $wa1; now group $(cat "/sys/block/$pb/ana_grpid") $(cat "/sys/block/$pb/ana_state")"
	fi
else
	fail "move: $pb reports group $(cat "/sys/block/$pb/ana_grpid") $(cat "/sys/block/$pb/ana_state")"
fi

# ------------------------------------------------ the events the host saw
grep nvme_async_event "$tr/trace" 2>/dev/null | sed 's/^ */  trace: /'
# Changes on node B: set-ana three times, set-ns --ana-group twice.
nchg=5
na=$(ana_aens "$ca") nb=$(ana_aens "$cb")
if [ "${nb:-0}" -ge 1 ] && [ "${nb:-0}" -le $nchg ] && [ "${na:-0}" = 0 ]; then
	pass "aen: $nb ANA change event(s) from $cb (node B) for its $nchg changes, none from $ca (node A)"
else
	fail "aen: ANA change events: ${nb:-0} from $cb (node B), expected 1 to $nchg; ${na:-0} from $ca (node A), expected none"
fi
finish
