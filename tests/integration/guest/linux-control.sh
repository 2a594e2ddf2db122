# shellcheck shell=sh
# Guest half of tests/integration/linux-control.sh: runs inside the peer-linux
# VM (busybox ash, lib.sh sourced).  The Linux kernel's NVMe/TCP host stays
# connected to nvmfd on the test machine (10.0.2.2) while nvmfctl changes
# things there.  The guest cannot reach the control socket: it asks
# ctl_agent.py on 10.0.2.2:AGENT_PORT, one line per request, and the agent
# runs nvmfctl.
#
# Args: PORT AGENT_PORT NQN NS1_BYTES NS2_BYTES
#
# Checks, each reported as a "PASS: ..." or "FAIL: ..." line:
#   connect          namespace 1 appears, I/O works
#   add-ns           nvmfctl add-ns: namespace 2 appears on the same
#                    controller (AEN, rescan; no reconnect), with its size,
#                    and takes I/O
#   del-ns           nvmfctl del-ns: namespace 2 disappears, namespace 1 is
#                    untouched
#   terminate        nvmfctl terminate: the kernel reconnects by itself (a new
#                    controller ID), namespace 1 keeps its data and takes I/O
#   recreate         nvmfctl del-subsys, then add-subsys 1.5 s later: the
#                    host's reconnects in between are refused without DNR,
#                    so it keeps its controller and is live again within
#                    10 s, with namespace 1 taking I/O
# Exits 0 when every check passed, 1 otherwise (with dmesg).
# shellcheck disable=SC2317  # functions from lib.sh are called indirectly

echo "guest: started"
A=10.0.2.2
P=$1 AP=$2 NQN=$3 NS1_BYTES=$4 NS2_BYTES=$5
. /peer/files/checks.sh

# ctrl_of NQN: the controller name (nvmeN) connected to NQN.
ctrl_of() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$1" ] &&
			{ echo "${c##*/}"; return 0; }
	done
	return 1
}

# ns_dev NQN NSID: the block device of that namespace now, if any.
ns_dev() {
	for b in /sys/block/nvme*n*; do
		case ${b##*/} in *c*) continue ;; esac	# hidden multipath paths
		[ "$(cat "$b/device/subsysnqn" 2>/dev/null)" = "$1" ] &&
		[ "$(cat "$b/nsid" 2>/dev/null)" = "$2" ] &&
		[ -b "/dev/${b##*/}" ] && { echo "/dev/${b##*/}"; return 0; }
	done
	return 1
}

# pattern FILE MB: random data, prints its md5.
pattern() {
	dd if=/dev/urandom of="$1" bs=1M count="$2" 2>/dev/null
	md5sum <"$1" | cut -d' ' -f1
}

# io_check DEV FILE MD5 OFFSET_MB WHAT: write FILE at OFFSET_MB, read it back.
io_check() {
	n=$(($(wc -c <"$2") >> 20))
	if ! dd if="$2" of="$1" bs=1M seek="$4" count="$n" oflag=direct 2>/dev/null; then
		fail "$5: write of $n MiB to $1 failed"
		return 1
	fi
	back=$(dd if="$1" bs=1M skip="$4" count="$n" iflag=direct 2>/dev/null |
	    md5sum | cut -d' ' -f1)
	if [ "$back" != "$3" ]; then
		fail "$5: read back md5 $back from $1, wrote $3"
		return 1
	fi
	return 0
}

# read_check DEV MD5 OFFSET_MB MB WHAT: the data at OFFSET_MB is still there.
read_check() {
	back=$(dd if="$1" bs=1M skip="$3" count="$4" iflag=direct 2>/dev/null |
	    md5sum | cut -d' ' -f1)
	[ "$back" = "$2" ] || { fail "$5: md5 $back at $3 MiB of $1, expected $2"; return 1; }
	return 0
}

state_of() { cat "/sys/class/nvme/$1/state" 2>/dev/null; }
cntlid_of() { cat "/sys/class/nvme/$1/cntlid" 2>/dev/null; }

echo "guest: $(uname -r), $(nvme version | head -1), host NQN $(cat /etc/nvme/hostnqn)"
ans=$(ask ctrl) || abort "agent on $A:$AP does not answer: '$ans'"
say "agent answers: $ans"

# ------------------------------------------------------------ connect
say "connect to $NQN at $A:$P"
nvme_tcp_connect "$A" "$P" "$NQN" --reconnect-delay=1 --nr-io-queues=2 ||
	abort "connect: nvme connect failed"
dev1=$(nvme_wait_ns "$NQN" 1 20) || abort "connect: no namespace 1"
ctrl=$(ctrl_of "$NQN") || abort "connect: no controller in /sys/class/nvme"
cntlid=$(cntlid_of "$ctrl")
size1=$(($(cat "/sys/block/${dev1#/dev/}/size") * 512))
[ "$size1" = "$NS1_BYTES" ] || fail "connect: namespace 1 is $size1 bytes, expected $NS1_BYTES"
md5a=$(pattern /tmp/pa 2)
io_check "$dev1" /tmp/pa "$md5a" 4 "connect" &&
	pass "connect: $ctrl (cntlid $cntlid), $dev1 ($size1 bytes), 2 MiB written and read back"

# ------------------------------------------------------------ add-ns
say "add-ns while connected"
mark=$(dmesg | wc -l)
ans=$(ask add-ns "$NS2_BYTES") || abort "add-ns: the agent says '$ans'"
nsid2=${ans#ok }
say "the daemon added namespace $nsid2"
dev2=
i=0
while [ $i -lt 300 ]; do		# 30 s
	dev2=$(ns_dev "$NQN" "$nsid2") && break
	sleep 0.1
	i=$((i + 1))
done
if [ -z "$dev2" ]; then
	fail "add-ns: no block device for namespace $nsid2 within 30 s"
else
	say "namespace $nsid2 is $dev2 after $((i / 10)).$((i % 10)) s"
	now=$(ctrl_of "$NQN")
	if [ "$now" != "$ctrl" ] || [ "$(cntlid_of "$ctrl")" != "$cntlid" ] ||
	    [ "$(state_of "$ctrl")" != live ]; then
		fail "add-ns: the controller changed ($now, cntlid $(cntlid_of "$ctrl"), state $(state_of "$ctrl")): not a rescan"
	fi
	dmesg | tail -n +$((mark + 1)) | grep -iE 'reset|reconnect' &&
		fail "add-ns: reset or reconnect in dmesg"
	size2=$(($(cat "/sys/block/${dev2#/dev/}/size") * 512))
	nsze=$(nvme id-ns "$dev2" | sed -n 's/^nsze *: *//p')
	if [ "$size2" != "$NS2_BYTES" ]; then
		fail "add-ns: $dev2 is $size2 bytes, expected $NS2_BYTES"
	elif [ $((nsze)) -ne $((NS2_BYTES / 512)) ]; then
		fail "add-ns: id-ns nsze $nsze, expected $((NS2_BYTES / 512))"
	else
		md5b=$(pattern /tmp/pb 4)
		io_check "$dev2" /tmp/pb "$md5b" 8 "add-ns" &&
			pass "add-ns: namespace $nsid2 appeared as $dev2 on $ctrl without a reconnect, $size2 bytes, 4 MiB written and read back"
	fi
fi

# ------------------------------------------------------------ del-ns
say "del-ns while connected"
ans=$(ask del-ns "$nsid2") || fail "del-ns: the agent says '$ans'"
i=0
while [ $i -lt 300 ] && ns_dev "$NQN" "$nsid2" >/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
if [ -z "$dev2" ]; then
	fail "del-ns: cannot be checked, namespace $nsid2 never appeared"
elif ns_dev "$NQN" "$nsid2" >/dev/null; then
	fail "del-ns: namespace $nsid2 still present 30 s after del-ns"
elif [ "$(state_of "$ctrl")" != live ] || [ "$(cntlid_of "$ctrl")" != "$cntlid" ]; then
	fail "del-ns: controller $ctrl is $(state_of "$ctrl"), cntlid $(cntlid_of "$ctrl")"
elif read_check "$dev1" "$md5a" 4 2 "del-ns"; then
	pass "del-ns: namespace $nsid2 disappeared after $((i / 10)).$((i % 10)) s; namespace 1 kept its data"
fi

# ------------------------------------------------------------ terminate
say "terminate the association"
ans=$(ask terminate) || abort "terminate: the agent says '$ans'"
killed=${ans#ok }
[ "$killed" = "$cntlid" ] || fail "terminate: the daemon terminated $killed, the host has $cntlid"
say "controller $killed terminated by the daemon"
# The host notices, reconnects on its own (reconnect delay 1 s), and gets a
# new controller.
i=0
seen=
while [ $i -lt 300 ]; do		# 30 s
	st=$(state_of "$ctrl")
	case " $seen " in *" $st "*) ;; *) seen="$seen $st" ;; esac
	new=$(cntlid_of "$ctrl")
	[ "$st" = live ] && [ -n "$new" ] && [ "$new" != "$cntlid" ] && break
	sleep 0.1
	i=$((i + 1))
done
if [ $i -ge 300 ]; then
	fail "terminate: no reconnect within 30 s (states seen:$seen; cntlid $(cntlid_of "$ctrl"))"
else
	say "reconnected after $((i / 10)).$((i % 10)) s: cntlid $cntlid -> $new (states seen:$seen)"
	dev1b=$(nvme_wait_ns "$NQN" 1 20)
	if [ -z "$dev1b" ]; then
		fail "terminate: namespace 1 did not come back"
	elif ! read_check "$dev1b" "$md5a" 4 2 "terminate"; then
		:
	else
		md5c=$(pattern /tmp/pc 2)
		ans=$(ask ctrl)
		case " ${ans#ok} " in
		*" $new "*) ;;
		*) fail "terminate: the daemon lists controllers '${ans#ok }', not $new" ;;
		esac
		io_check "$dev1b" /tmp/pc "$md5c" 12 "terminate" &&
			pass "terminate: the host reconnected by itself (cntlid $cntlid -> $new), $dev1b kept its data and takes I/O"
	fi
fi

# ------------------------------------------------------------ recreate
say "delete the subsystem and create it again"
before=$(cntlid_of "$ctrl")
mark=$(dmesg | wc -l)
ans=$(ask recreate "$NS1_BYTES" 1500) || abort "recreate: the agent says '$ans'"
i=0
seen=
while [ $i -lt 100 ]; do		# 10 s
	st=$(state_of "$ctrl")
	case " $seen " in *" $st "*) ;; *) seen="$seen $st" ;; esac
	now=$(cntlid_of "$ctrl")
	[ "$st" = live ] && [ -n "$now" ] && [ "$now" != "$before" ] && break
	sleep 0.1
	i=$((i + 1))
done
if dmesg | tail -n +$((mark + 1)) | grep -q 'Removing ctrl\|Removing controller'; then
	fail "recreate: the host removed its controller (states seen:$seen)"
	dmesg | tail -n +$((mark + 1)) | grep -i nvme | tail -10
elif [ $i -ge 100 ]; then
	fail "recreate: not live again within 10 s (states seen:$seen; cntlid $(cntlid_of "$ctrl"))"
else
	say "live again $((i / 10)).$((i % 10)) s after the re-create: cntlid $before -> $now (states seen:$seen)"
	dev1c=$(nvme_wait_ns "$NQN" 1 20)
	md5d=$(pattern /tmp/pd 2)
	if [ -z "$dev1c" ]; then
		fail "recreate: namespace 1 did not come back"
	else
		io_check "$dev1c" /tmp/pd "$md5d" 2 "recreate" &&
			pass "recreate: the host kept $ctrl and was live again $((i / 10)).$((i % 10)) s after the re-create (cntlid $before -> $now), $dev1c takes I/O"
	fi
fi

# ------------------------------------------------------------ the end
say "disconnect"
nvme_disconnect "$NQN" >/dev/null || fail "disconnect: nvme disconnect failed"
i=0
while ctrl_of "$NQN" >/dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
ctrl_of "$NQN" >/dev/null && fail "disconnect: controller still present after 10 s"
finish
