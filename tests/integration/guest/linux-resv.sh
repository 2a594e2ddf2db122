# shellcheck shell=sh
# Guest half of tests/integration/linux-resv.sh: runs inside the peer-linux
# VM (busybox ash, lib.sh sourced).  Two hosts on one kernel: two nvme
# connect to the same subsystem with other host NQNs and host IDs, so two
# controllers.  Commands go to one controller or the other through its
# character device (/dev/nvmeN with --namespace-id): the block device is
# the multipath head, which would pick a path by itself.
#
# Args: PHASE PORT NQN
#   first      register both hosts (host 2 with PTPL on), host 1 acquires
#              Write Exclusive: host 2 gets Reservation Conflict on writes,
#              reads work; host 2 preempts and aborts while host 1 keeps
#              writing: now host 1 is fenced, and host 2's write after the
#              preemption is what stays; host 1 registers again; report
#              shows it all
#   restarted  after nvmfd was killed and started again: the same state,
#              host 1 still fenced; host 2 clears, host 1 writes again
# Prints "PASS: check" / "FAIL: check: why"; exits 0 when all passed.

echo "guest: started"
A=10.0.2.2
PHASE=$1 P=$2 NQN=$3
failed=0
H1=nqn.2014-08.org.nvmexpress:uuid:6e766d66-0001-4000-8000-000000000001
ID1=6e766d66-0001-4000-8000-000000000001
H2=nqn.2014-08.org.nvmexpress:uuid:6e766d66-0002-4000-8000-000000000002
ID2=6e766d66-0002-4000-8000-000000000002
K1=0xa1a1 K2=0xb2b2

pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	failed=1
}
finish() {
	nvme disconnect -n "$NQN" >/dev/null 2>&1
	if [ "$failed" != 0 ]; then
		echo "--- dmesg (NVMe lines, last 30)"
		dmesg | grep -i nvme | tail -30
		echo "SOME CHECKS FAILED"
		exit 1
	fi
	echo "ALL CHECKS PASSED"
	exit 0
}

# ctrl_of HOSTNQN: the controller device of NQN connected as that host.
ctrl_of() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] &&
		[ "$(cat "$c/hostnqn" 2>/dev/null)" = "$1" ] &&
		{ echo "/dev/${c##*/}"; return 0; }
	done
	return 1
}

connect() {
	nvme connect -t tcp -a "$A" -s "$P" -n "$NQN" --hostnqn="$1" \
	    --hostid="$2" >/dev/null || return 1
	nvme_wait_ns "$NQN" 1 20 >/dev/null
}

# io DEV read|write: one block at LBA 8 through that controller; prints
# nvme-cli's complaint, if any.
dd if=/dev/urandom of=/tmp/blk bs=512 count=1 2>/dev/null
io() {
	if [ "$2" = write ]; then
		nvme io-passthru "$1" --opcode=0x01 --namespace-id=1 \
		    --data-len=512 --write --input-file=/tmp/blk --cdw10=8 \
		    --cdw12=0 2>&1
	else
		nvme io-passthru "$1" --opcode=0x02 --namespace-id=1 \
		    --data-len=512 --read --cdw10=8 --cdw12=0 2>&1
	fi
}
expect_io() {	# CHECK DEV OP ok|conflict
	out=$(io "$2" "$3")
	rc=$?
	if [ "$4" = ok ]; then
		[ $rc = 0 ] && return 0
		fail "$1: $3 failed: $(echo "$out" | tail -1)"
	else
		[ $rc != 0 ] && echo "$out" | grep -qi 'reservation.conflict' &&
		    return 0
		fail "$1: $3: expected Reservation Conflict, got exit $rc: $(echo "$out" | tail -1)"
	fi
	return 1
}

# report DEV: "rtype N regs M holder HOSTID" from resv-report --eds.
report() {
	nvme resv-report "$1" --namespace-id=1 --eds --numd=1023 -o json \
	    >/tmp/report.json 2>&1 || { cat /tmp/report.json; return 1; }
	tr -d ' \n' </tmp/report.json >/tmp/r
	rtype=$(sed -n 's/.*"rtype":\([0-9]*\).*/\1/p' /tmp/r)
	regs=$(sed -n 's/.*"regctl":\([0-9]*\).*/\1/p' /tmp/r)
	echo "rtype ${rtype:-?} regs ${regs:-?}"
}

connect "$H1" "$ID1" || { fail "connect host 1"; finish; }
connect "$H2" "$ID2" || { fail "connect host 2"; finish; }
C1=$(ctrl_of "$H1") C2=$(ctrl_of "$H2")
if [ -z "$C1" ] || [ -z "$C2" ] || [ "$C1" = "$C2" ]; then
	fail "connect: controllers '$C1' '$C2'"
	finish
fi
pass "connect: host 1 on $C1, host 2 on $C2"

if [ "$PHASE" = first ]; then
	nvme resv-register "$C1" --namespace-id=1 --nrkey=$K1 --rrega=0 &&
	nvme resv-register "$C2" --namespace-id=1 --nrkey=$K2 --rrega=0 \
	    --cptpl=3 || fail "register"
	nvme resv-acquire "$C1" --namespace-id=1 --crkey=$K1 --rtype=1 \
	    --racqa=0 || fail "acquire"
	r=$(report "$C2")
	[ "$r" = "rtype 1 regs 2" ] && pass "register, acquire: $r" ||
	    fail "register, acquire: report says $r"
	expect_io fence "$C2" write conflict && expect_io fence "$C2" read ok &&
	    expect_io fence "$C1" write ok && pass "fence: host 2 cannot write"
	# Host 1 keeps writing while host 2 preempts and aborts; host 2's
	# write after it must be the last word: nothing of host 1's lands
	# after the Preempt and Abort completed.
	rm -f /tmp/stop
	(while [ ! -e /tmp/stop ]; do io "$C1" write >/dev/null 2>&1; done) &
	writer=$!
	sleep 1
	nvme resv-acquire "$C2" --namespace-id=1 --crkey=$K2 --prkey=$K1 \
	    --rtype=1 --racqa=2 || fail "preempt and abort"
	dd if=/dev/urandom of=/tmp/blk2 bs=512 count=1 2>/dev/null
	nvme io-passthru "$C2" --opcode=0x01 --namespace-id=1 --data-len=512 \
	    --write --input-file=/tmp/blk2 --cdw10=8 --cdw12=0 >/dev/null 2>&1 ||
	    fail "preempt: host 2's write"
	sleep 1
	touch /tmp/stop
	wait $writer
	nvme io-passthru "$C2" --opcode=0x02 --namespace-id=1 --data-len=512 \
	    --read --cdw10=8 --cdw12=0 --raw-binary >/tmp/back 2>/dev/null
	cmp -s /tmp/back /tmp/blk2 || fail "preempt: a write of host 1 landed after it"
	expect_io preempt "$C1" write conflict && expect_io preempt "$C2" write ok &&
	    pass "preempt: host 1 cannot write, host 2 can, host 2's data stays"
	nvme resv-register "$C1" --namespace-id=1 --nrkey=$K1 --rrega=0 ||
	    fail "register host 1 again"
	r=$(report "$C1")
	[ "$r" = "rtype 1 regs 2" ] && pass "state to keep: $r" ||
	    fail "state to keep: report says $r"
else
	r=$(report "$C1")
	[ "$r" = "rtype 1 regs 2" ] && pass "restart: $r" ||
	    fail "restart: report says $r"
	grep -q "\"hostid\":\"6e766d66000240008000000000000002\"" /tmp/r ||
	    grep -qi "6e766d66000240008000000000000002" /tmp/r ||
	    fail "restart: host 2 not in the report"
	expect_io restart "$C1" write conflict && expect_io restart "$C2" write ok &&
	    pass "restart: host 1 still fenced"
	nvme resv-release "$C2" --namespace-id=1 --crkey=$K2 --rrela=1 ||
	    fail "clear"
	expect_io clear "$C1" write ok && pass "clear: host 1 writes again"
	r=$(report "$C1")
	[ "$r" = "rtype 0 regs 0" ] || fail "clear: report says $r"
fi
finish
