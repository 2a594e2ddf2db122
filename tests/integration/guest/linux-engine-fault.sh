# shellcheck shell=sh
# Guest half of tests/integration/linux-engine-fault.sh: runs inside the
# peer-linux VM (busybox ash, lib.sh sourced).  nvmfd on the test machine
# (10.0.2.2, PORT) serves NQN with a file namespace; the guest asks
# ctl_agent.py on 10.0.2.2:AGENT_PORT to inject errors in nvmfd's I/O
# engine (nvmfctl inject-error --at engine) while fio runs.
#
# Args: PORT AGENT_PORT NQN
#
# nvmfd fails these commands without DNR, so the kernel tries each one
# again up to nvme_core's max_retries times: an injection of that many
# failures is absorbed, one more reaches fio.  fio runs one I/O at a time
# (psync), so every failure of an injection falls on the same request.
#
# Checks, each reported as a "PASS: ..." or "FAIL: ..." line:
#   connect     the namespace's block device appears
#   retried     max_retries failed reads: the kernel's retries hide them,
#               fio sees no error and the kernel logs none
#   read-eio    EIO on a read: fio gets ENODATA, the kernel logs a Read
#               (opcode 2h) with SCT 2h SC 81h (Unrecovered Read Error)
#   write-eio   EIO on a write: ENODATA, a Write (1h) with SCT 2h SC 80h
#               (Write Fault)
#   enospc      ENOSPC on a write: ENOSPC, a Write with SCT 0h SC 81h
#               (Capacity Exceeded)
#   short-read  a short read: as read-eio
#   Each fault check also needs the fio verify run after it to pass.
#   controller  the same controller all along: never reset or removed
# Exits 0 when every check passed, 1 otherwise (with dmesg).

echo "guest: started"
A=10.0.2.2
PORT=$1 AP=$2 NQN=$3
. /peer/files/checks.sh

nvme_tcp_connect "$A" "$PORT" "$NQN" --nr-io-queues=1 ||
	abort "connect: nvme connect failed"
dev=$(nvme_wait_ns "$NQN") || abort "connect: no namespace block device"
ctrl=$(ctrl)
retries=$(cat /sys/module/nvme_core/parameters/max_retries) ||
	abort "connect: no nvme_core max_retries"
pass "connect: $dev, controller $ctrl, the host retries $retries times"

# fault_fio RW: fio reads or writes 4 KiB blocks, one at a time, for 8 s in
# the background (fio_pid), past any error; /tmp/fault.out.
fault_fio() {
	fio --name=fault --filename="$dev" --ioengine=psync --direct=1 \
	    --rw="$1" --bs=4k --size=8M --time_based --runtime=8 \
	    --continue_on_error=all >/tmp/fault.out 2>&1 &
	fio_pid=$!
	sleep 2
}

# io_errors: how many I/Os failed, as fio counts them past errors.
io_errors() {
	sed -n 's/.*errors *: total=\([0-9]*\).*/\1/p' /tmp/fault.out | head -1
}

# fio_err: the first error fio's job summary gives (0 for none).
fio_err() { sed -n 's/.*err= *\([0-9]*\).*/\1/p' /tmp/fault.out | head -1; }

# verify CHECK: fio writes and verifies the first 4 MiB; CHECK fails unless
# it ends with err=0.
verify() {
	if fio --name=verify --filename="$dev" --ioengine=libaio --direct=1 \
	    --rw=randwrite --bs=4k --size=4M --iodepth=4 --verify=crc32c \
	    --do_verify=1 >/tmp/verify.out 2>&1 &&
	    grep -q 'err= *0:' /tmp/verify.out; then
		return 0
	fi
	fail "$1: the fio verify run after the fault: $(grep -m1 -E \
	    'err=|verify|bad' /tmp/verify.out)"
	tail -15 /tmp/verify.out
	return 1
}

# fault CHECK OP ERROR COUNT RW ERRNO OPCODE SCT SC: while fault_fio RW
# runs, COUNT failures injected; fio must end with error ERRNO (0: none)
# on one request, and the kernel's new log lines must show a command of
# OPCODE failing with SCT/SC (none when ERRNO is 0).  Then verify.
fault() {
	n0=$(dmesg | wc -l)
	fault_fio "$5"
	ask inject 1 "$2" "$3" "$4" >/dev/null ||
		fail "$1: the agent's inject-error failed"
	wait "$fio_pid"
	dmesg | tail -n +$((n0 + 1)) >/tmp/new.dmesg
	got=$(fio_err) errs=$(io_errors)
	status=$(grep -o "Cmd(0x[0-9a-f]*) @ LBA [0-9]*, [0-9]* blocks, .*" \
	    /tmp/new.dmesg | head -1)
	sed 's/^/  kernel: /' /tmp/new.dmesg
	grep -E 'io_u error|err=|errors *:' /tmp/fault.out | sed 's/^/  fio: /'
	if [ "$6" = 0 ]; then
		if [ "${got:-x}" = 0 ] && [ "${errs:-0}" = 0 ] &&
		    ! grep -qiE 'nvme.*(sct|status)|I/O error|critical' \
		    /tmp/new.dmesg; then
			verify "$1" && pass "$1: $4 failed $3 ${2}s were all" \
			    "retried by the host: fio and the kernel saw no" \
			    "error; verify after: err=0"
		else
			fail "$1: $4 failures reached the host: fio err=$got," \
			    "$errs I/O errors, kernel: $status"
		fi
		return
	fi
	if [ "$got" = "$6" ] && [ "$errs" = 1 ] &&
	    echo "$status" | grep -q "Cmd($7) .*(sct $8 / sc $9)"; then
		verify "$1" && pass "$1: fio err=$got on one request; kernel:" \
		    "$status; verify after: err=0"
	else
		fail "$1: fio err=${got:-none} on $errs requests, kernel:" \
		    "${status:-nothing}; expected err=$6 on 1, Cmd($7) with" \
		    "sct $8 / sc $9"
	fi
}

say "injections of $((retries + 1)) failures each; fio on $dev"
fault retried read eio "$retries" randread 0
fault read-eio read eio $((retries + 1)) randread 61 0x2 0x2 0x81
fault write-eio write eio $((retries + 1)) randwrite 61 0x1 0x2 0x80
fault enospc write enospc $((retries + 1)) randwrite 28 0x1 0x0 0x81
fault short-read read short $((retries + 1)) randread 61 0x2 0x2 0x81

now=$(ctrl)
state=$(cat "/sys/class/nvme/${ctrl%% *}/state" 2>/dev/null)
if [ "$now" = "$ctrl" ] && [ "$state" = live ] &&
    ! dmesg | grep -qiE 'resetting controller|error recovery|Removing ctrl|reconnect'
then
	pass "controller: $ctrl served throughout ($state), never reset"
else
	fail "controller: $ctrl -> ${now:-none} ($state), or reset in dmesg"
fi
nvme_disconnect "$NQN" >/dev/null 2>&1
finish
