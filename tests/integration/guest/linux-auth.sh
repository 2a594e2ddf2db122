# shellcheck shell=sh
# Guest half of tests/integration/linux-auth.sh: runs inside the peer-linux
# VM (busybox ash, lib.sh sourced): the Linux kernel's NVMe/TCP host
# authenticates to nvmfd on the test machine (10.0.2.2) with DH-HMAC-CHAP.
#
# Args: PORT AGENT_PORT HOSTNQN HOSTID NQN_A NQN_B NQN_C KEY_A KEY_B CTRL_B
#       KEY_C TARGET_PORT KEY_T CTRL_T KEY_D CTRL_D
#   NQN_A  sha256 + NULL group, host key KEY_A (a key file on the daemon)
#   NQN_B  sha384 + ffdhe2048, host key KEY_B, controller key CTRL_B
#   NQN_C  sha512 + ffdhe8192, host key KEY_C
#   TARGET_PORT, KEY_T, CTRL_T: the kernel target (nvmet) set up here for
#          nvmfd perf to authenticate to, through a forwarded port
#   KEY_D, CTRL_D: the host's keys for nvmfd's discovery controller
# The agent (ctl_agent.py on 10.0.2.2:AGENT_PORT) runs nvmfctl set-host on
# NQN_A for the key rotation.
#
# Prints NEWKEY= (each rotated key, so the test can look for it in the
# daemon's log).  Exits 0 when every check passed, 1 at the first failure.
# shellcheck disable=SC2317  # functions from lib.sh are called indirectly

echo "guest: started"
A=10.0.2.2
P=$1 AP=$2 H=$3 HID=$4 NQN_A=$5 NQN_B=$6 NQN_C=$7
KEY_A=$8 KEY_B=$9
shift 9
CTRL_B=$1 KEY_C=$2 TP=$3 KEY_T=$4 CTRL_T=$5 KEY_D=$6 CTRL_D=$7
step=setup
T0=$(cut -d. -f1 /proc/uptime)

check() {
	step=$1
	echo "=== [$(($(cut -d. -f1 /proc/uptime) - T0))s] $step"
}

fail() {
	echo "FAIL [$step]: $*"
	echo "--- dmesg (nvme, last 40 lines)"
	dmesg | grep -i nvme | tail -40
	exit 1
}

ctrl_of() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$1" ] &&
			{ echo "${c##*/}"; return 0; }
	done
	return 1
}

# connect NQN ARGS...: authenticate, wait for namespace 1; sets dev, ctrl.
connect() {
	nqn=$1
	shift
	nvme_tcp_connect "$A" "$P" "$nqn" --hostnqn="$H" --hostid="$HID" "$@" ||
		fail "nvme connect $nqn failed"
	dev=$(nvme_wait_ns "$nqn" 1 30) || fail "no namespace 1 of $nqn"
	ctrl=$(ctrl_of "$nqn") || fail "no controller for $nqn"
	echo "  $nqn: $ctrl, $dev"
}

# refused NQN ARGS...: the connect must fail and leave no controller.
refused() {
	nqn=$1
	shift
	if nvme_tcp_connect "$A" "$P" "$nqn" --hostnqn="$H" --hostid="$HID" \
	    "$@" 2>&1; then
		fail "nvme connect $nqn succeeded with $step"
	fi
	sleep 1
	ctrl_of "$nqn" >/dev/null && fail "a controller of $nqn is left"
	echo "  refused, as it must be"
}

disconnect() {
	nvme_disconnect "$1" >/dev/null || fail "nvme disconnect $1 failed"
}

# rw DEV MIB: write MIB of random data at 1 MiB, read it back, compare.
rw() {
	dd if=/dev/urandom of=/tmp/pat bs=1M count="$2" 2>/dev/null
	dd if=/tmp/pat of="$1" bs=1M seek=1 oflag=direct 2>/dev/null ||
		fail "write to $1 failed"
	dd if="$1" of=/tmp/back bs=1M skip=1 count="$2" iflag=direct \
	    2>/dev/null || fail "read from $1 failed"
	cmp -s /tmp/pat /tmp/back || fail "data read back from $1 differs"
}

authed() {	# the kernel's count of admin queue authentications
	dmesg | grep -c 'qid 0: authenticated with hash'
}

# A key nvmfd never saw: the same form, other bytes.
WRONG=$(nvme gen-dhchap-key --hmac=1 --nqn="$H") || fail "gen-dhchap-key"

# -------------------------------------------------------------------- 1
check "1 sha256, NULL group; key rotated live and re-authenticated"
n0=$(authed)
connect "$NQN_A" --dhchap-secret="$KEY_A" --nr-io-queues=2
rw "$dev" 4
[ "$(authed)" -gt "$n0" ] || fail "no 'qid 0: authenticated' in dmesg"
dmesg | grep 'qid 0: authenticated with hash' | tail -1 | grep -q 'hmac(sha256) dhgroup null' ||
	fail "not hmac(sha256) with the NULL group: $(dmesg | grep 'qid 0: auth' | tail -1)"
cntlid=$(cat "/sys/class/nvme/$ctrl/cntlid")

# rotate HMAC VERB: a new key from nvme gen-dhchap-key, given to nvmfd by
# the agent (VERB: set-host, or rekey = key file and reload), then to the
# kernel through sysfs; the host must re-authenticate on the same
# association.  Sets NEWKEY.
rotate() {
	NEWKEY=$(nvme gen-dhchap-key --hmac="$1" --nqn="$H") || fail "gen-dhchap-key"
	echo "NEWKEY=$NEWKEY"
	if [ "$2" = set-host ]; then
		req="set-host $H $NEWKEY"
	else
		req="rekey $NEWKEY"
	fi
	ans=$(echo "$req" | timeout 40 nc "$A" "$AP" | head -1)
	[ "${ans%% *}" = ok ] || fail "the agent's $2 says '$ans'"
	n1=$(authed)
	echo "$NEWKEY" >"/sys/class/nvme/$ctrl/dhchap_secret" ||
		fail "writing the new key to sysfs failed"
	i=0
	while [ "$(authed)" -le "$n1" ] && [ $i -lt 30 ]; do
		sleep 1
		i=$((i + 1))
	done
	[ "$(authed)" -gt "$n1" ] || fail "no re-authentication within 30 s"
	sleep 2		# the I/O queues follow the admin queue
	dmesg | grep -i 'authentication failed' &&
		fail "an authentication failed in dmesg"
	[ "$(cat "/sys/class/nvme/$ctrl/state")" = live ] ||
		fail "controller not live"
	[ "$(cat "/sys/class/nvme/$ctrl/cntlid")" = "$cntlid" ] ||
		fail "the association was replaced (cntlid changed)"
	echo "  re-authenticated with a key set by $2"
}
rotate 2 set-host
rw "$dev" 2
rotate 3 rekey
rw "$dev" 2
disconnect "$NQN_A"

check "2 a wrong host key, no key"
refused "$NQN_A" --dhchap-secret="$WRONG"
refused "$NQN_A"
check "2b the first keys after the rotations"
refused "$NQN_A" --dhchap-secret="$KEY_A"

# -------------------------------------------------------------------- 3
check "3 sha384, ffdhe2048, bidirectional; fio verify"
connect "$NQN_B" --dhchap-secret="$KEY_B" --dhchap-ctrl-secret="$CTRL_B" \
    --nr-io-queues=2
dmesg | grep 'qid 0: authenticated with hash' | tail -1 | grep -q 'hmac(sha384) dhgroup ffdhe2048' ||
	fail "not hmac(sha384) with ffdhe2048"
out=$(fio --name=auth --filename="$dev" --ioengine=libaio --direct=1 \
    --rw=randwrite --bs=4k --size=8M --iodepth=16 --verify=crc32c \
    --do_verify=1 --verify_fatal=1 --eta=never 2>&1) || {
	echo "$out"
	fail "fio verify failed"
}
echo "$out" | grep -q 'err= *0' || fail "fio did not report err=0"
echo "  fio verify over the authenticated association: ok"
disconnect "$NQN_B"

check "4 a wrong controller key"
refused "$NQN_B" --dhchap-secret="$KEY_B" --dhchap-ctrl-secret="$WRONG"

# -------------------------------------------------------------------- 5
check "5 sha512, ffdhe8192"
connect "$NQN_C" --dhchap-secret="$KEY_C" --nr-io-queues=1
dmesg | grep 'qid 0: authenticated with hash' | tail -1 | grep -q 'hmac(sha512) dhgroup ffdhe8192' ||
	fail "not hmac(sha512) with ffdhe8192"
rw "$dev" 2
disconnect "$NQN_C"

# -------------------------------------------------------------------- 6
check "6 nvmfd perf (host role) against the kernel target"
NQN_T=nqn.2026-11.io.nvmfd.test:nvmet
HP=nqn.2026-11.io.nvmfd.test:perf
nvmet_subsys "$NQN_T" || fail "nvmet_subsys"
nvmet_ns "$NQN_T" 1 "$(ramdisk 32)" || fail "nvmet_ns"
nvmet_host "$NQN_T" "$HP" "$KEY_T" "$CTRL_T" "hmac(sha384)" ffdhe3072 ||
	fail "nvmet_host"
nvmet_port_tcp 1 0.0.0.0 "$TP" || fail "nvmet_port_tcp"
nvmet_link 1 "$NQN_T" || fail "nvmet_link"
ans=$(echo "perf-target $TP $NQN_T $HP $KEY_T $CTRL_T" |
    timeout 90 nc "$A" "$AP" | head -1)
[ "${ans%% *}" = ok ] || fail "perf against nvmet with the keys: '$ans'"
echo "  perf authenticated to nvmet (sha384, ffdhe3072, bidirectional): $ans"
ans=$(echo "perf-target $TP $NQN_T $HP $WRONG $CTRL_T" |
    timeout 90 nc "$A" "$AP" | head -1)
[ "${ans%% *}" = fail ] || fail "perf with a wrong key got into nvmet: '$ans'"
echo "  perf with a wrong host key refused by nvmet"
dmesg | grep -i 'nvmet' | grep -iE 'auth|failed|ctrl' | tail -4

# -------------------------------------------------------------------- 7
# libnvme (1.13) leaves dhchap_secret and dhchap_ctrl_secret out of the
# options of a discovery controller, so `nvme discover --dhchap-secret`
# reaches the kernel without a key ("qid 0: no key").  The kernel takes
# them for any controller: write the options to /dev/nvme-fabrics as
# libnvme would, and read the log with `nvme discover -d`.
check "7 the discovery controller with DH-HMAC-CHAP keys"
DISC_NQN=nqn.2014-08.org.nvmexpress.discovery
# disc_add [OPTIONS]: a discovery controller; prints its instance number.
disc_add() {
	exec 3<>/dev/nvme-fabrics || return 1
	printf '%s' "transport=tcp,traddr=$A,trsvcid=$P,nqn=$DISC_NQN,hostnqn=$H,hostid=$HID$1" >&3 ||
		{ exec 3>&-; return 1; }
	read -r resp <&3
	exec 3>&-
	resp=${resp#instance=}
	echo "${resp%%,*}"
}
disc_del() {
	[ -e "/sys/class/nvme/nvme$1" ] &&
		echo 1 >"/sys/class/nvme/nvme$1/delete_controller"
	return 0
}
# disc_log OPTIONS WHAT: authenticate, read the log, check it.
disc_log() {
	n0=$(authed)
	inst=$(disc_add "$1" 2>&1) || fail "$2: the discovery controller: $inst"
	out=$(nvme discover -d "nvme$inst" 2>&1) || {
		disc_del "$inst"
		fail "$2: nvme discover -d nvme$inst: $out"
	}
	disc_del "$inst"
	echo "$out" | grep -q "subnqn: *$NQN_A" || fail "$2: no $NQN_A in: $out"
	[ "$(authed)" -gt "$n0" ] || fail "$2: no 'qid 0: authenticated' in dmesg"
	echo "  $2: $(dmesg | grep 'authenticated with hash' | tail -1 |
	    sed 's/^.*qid 0: //'), $(echo "$out" | grep -c 'subnqn:') log entries"
}
# disc_refused OPTIONS WHAT
disc_refused() {
	if inst=$(disc_add "$1" 2>/dev/null); then
		disc_del "$inst"
		fail "$2: the discovery controller was created"
	fi
	sleep 1
	echo "  $2: refused ($(dmesg | grep -E 'qid 0: (no key|authentication failed|controller authentication failed)' | tail -1 | sed 's/^.*qid 0: //'))"
}
if out=$(nvme discover -t tcp -a "$A" -s "$P" --hostnqn="$H" \
    --hostid="$HID" --dhchap-secret="$KEY_D" 2>&1); then
	echo "  nvme discover --dhchap-secret got the log: nvme-cli passes the key"
	echo "$out" | grep -q "subnqn: *$NQN_A" || fail "no $NQN_A in: $out"
else
	dmesg | tail -5 | grep -q 'qid 0: no key' ||
		fail "nvme discover --dhchap-secret: $out"
	echo "  nvme discover --dhchap-secret: asked to authenticate, but nvme-cli gave the kernel no key"
fi
disc_log ",dhchap_secret=$KEY_D" "the host key"
disc_log ",dhchap_secret=$KEY_D,dhchap_ctrl_secret=$CTRL_D" "both keys"
disc_refused ",dhchap_secret=$WRONG" "a wrong key"
disc_refused ",dhchap_secret=$KEY_D,dhchap_ctrl_secret=$WRONG" \
	"a wrong controller key"
disc_refused "" "no key"

check "done"
left=$(ls /sys/class/nvme 2>/dev/null)
[ -z "$left" ] || fail "controllers left: $left"
echo "ALL CHECKS PASSED"
exit 0
