# shellcheck shell=sh
# Guest half of tests/integration/linux-nbd-dev.sh: runs inside the
# peer-linux VM (busybox ash, lib.sh sourced, e2fsprogs and ext4 added).
# A static nvmfd (/usr/local/bin/nvmfd) runs here as an NVMe/TCP host of
# the nvmfd target on the test machine (10.0.2.2, PORT, subsystem NQN, a
# file namespace of SIZE bytes) and serves its namespace as /dev/nbd0,
# declared in YAML (nbd_device).
#
# Args: PORT NQN SIZE BOUND (the seconds the test machine lets the VM run)
#
# Checks, each reported as a "PASS: ..." or "FAIL: ..." line:
#   attach    /dev/nbd0 comes up with the namespace's size and requests
#             of at most 1 MiB (max_sectors_kb); list-host names it
#   fs        mkfs.ext4, mount, a file written, unmounted, mounted
#             again: the same bytes
#   restart   the guest prints READY, the test machine restarts the
#             target meanwhile; a file written and synced across the
#             outage is whole after a remount, the association
#             reconnected, the kernel logged no I/O error
#   detach    detach-nbd: /dev/nbd0 has size 0; detach again: not
#             attached (exit 3)
#   reattach  attach-nbd on /dev/nbd1: both files read back; the same
#             device again: in use (exit 7); the export on another
#             device: refused
#   busy      a device a second nvmfd configured (its namespace from
#             this guest's nvmet): attach-nbd says in use (exit 7); then
#             /dev/nbd1 can be attached again
#   loss      the second nvmfd's target goes for good (ctrl_loss_tmo 3):
#             a read of its /dev/nbd2 fails with an I/O error, within
#             30 s, no hang; SIGTERM still stops that nvmfd with 0 and
#             the device is disconnected
#   stop      SIGTERM: nvmfd exits 0 and /dev/nbd1 is disconnected
# Exits 0 when every check passed, 1 otherwise (with the daemon's log),
# 77 when checks failed but the guest's clock jumped meanwhile (see
# clock_jumped).

echo "guest: started"
PORT=$1 NQN=$2 SIZE=$3 BOUND=$4
EXPORT=$NQN/1
T0=$(cut -d. -f1 /proc/uptime)
failed=0

say() { echo "[$(($(cut -d. -f1 /proc/uptime) - T0))s] $*"; }
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failed=1; }
# Under TCG the guest's clock has leapt forward by days (once, during the
# restart step's sync): nvmfd's ctrl_loss_tmo here expired at once and
# I/O failed.  The test machine kills the VM after BOUND s of its own
# time, so a run longer than that by the guest's monotonic clock
# (/proc/uptime) saw such a jump, and its failures say nothing of nvmfd.
clock_jumped() { [ $(($(cut -d. -f1 /proc/uptime) - T0)) -gt "$BOUND" ]; }
finish() {
	if [ "$failed" != 0 ]; then
		echo "--- nvmfd log (last 60 lines)"
		tail -60 /tmp/nvmfd.log
		echo "--- dmesg (last 30 lines)"
		dmesg | tail -30
		if clock_jumped; then
			echo "VOID: the guest's clock jumped: this run took" \
			    "$(($(cut -d. -f1 /proc/uptime) - T0)) s by it," \
			    "the VM may live $BOUND s; the failures above are void"
			exit 77
		fi
		echo "SOME CHECKS FAILED"
		exit 1
	fi
	echo "ALL CHECKS PASSED"
	exit 0
}
abort() { fail "$*"; [ -n "${pid:-}" ] && kill "$pid"; finish; }

ln -s /usr/local/bin/nvmfd /tmp/nvmfctl
ctl() { timeout 30 /tmp/nvmfctl -s /tmp/nvmfd-ctl.sock "$@"; }
# sectors DEV: /sys/block/DEV/size
sectors() { cat "/sys/block/$1/size"; }
# wait_for SECONDS CMD...: until CMD succeeds, every 0.2 s.
wait_for() {
	_n=$(($1 * 5))
	shift
	while [ $_n -gt 0 ]; do
		"$@" && return 0
		sleep 0.2
		_n=$((_n - 1))
	done
	return 1
}
listed() { ctl list-host --json | grep -q "\"nbd_device\": \"$1\""; }
has_size() { [ "$(sectors "$1")" = "$2" ]; }
# up_size DEV SECTORS: has_size, and a daemon gone ends the wait at once.
up_size() {
	kill -0 "$pid" 2>/dev/null || abort "nvmfd exited: $(tail -3 /tmp/nvmfd.log)"
	has_size "$@"
}
not_live() { ! ctl list-host --json | grep -q '"state": "live"'; }
reconnected() {
	ctl list-host --json >/tmp/lh.json 2>/dev/null &&
	    grep -q '"state": "live"' /tmp/lh.json &&
	    ! grep -q '"reconnects": 0' /tmp/lh.json
}

modprobe nbd 2>/dev/null
modprobe ext4 || abort "setup: no ext4 module"
[ -e /dev/nbd0 ] || abort "setup: no /dev/nbd0 (nbd module)"

# config NAME PORT DEVICE ADDR SVCID NQN CTRL_LOSS: /tmp/NAME.yaml for an
# nvmfd whose control and NBD sockets are /tmp/NAME-*.sock, that listens
# on 127.0.0.1:PORT (it must listen somewhere) and connects to NQN at
# ADDR:SVCID with DEVICE.
config() {
	cat >"/tmp/$1.yaml" <<EOF
control:
  socket: /tmp/$1-ctl.sock
ports:
  - {id: 1, address: 127.0.0.1, port: $2}
subsystems: []
host:
  nbd:
    socket: /tmp/$1-nbd.sock
  connections:
    - address: $4
      port: $5
      nqn: $6
      reconnect_delay: 1
      ctrl_loss_tmo: $7
      nbd_device: $3
EOF
}
config nvmfd 4420 /dev/nbd0 10.0.2.2 "$PORT" "$NQN" 120
/usr/local/bin/nvmfd -F -f /tmp/nvmfd.yaml >/tmp/nvmfd.log 2>&1 &
pid=$!

# ------------------------------------------------------------ attach
want=$((SIZE / 512))
msk=/sys/block/nbd0/queue/max_sectors_kb
if wait_for 60 up_size nbd0 "$want" && listed /dev/nbd0 &&
    [ "$(cat $msk)" -le 1024 ]; then
	pass "attach: /dev/nbd0 has $want sectors, max_sectors_kb $(cat $msk), list-host names it"
else
	abort "attach: /dev/nbd0 has $(sectors nbd0) sectors (want $want), max_sectors_kb $(cat $msk): $(grep nbd /tmp/nvmfd.log | tail -3)"
fi

# ------------------------------------------------------------ fs
mkdir -p /mnt/t
mkfs.ext4 -q -F /dev/nbd0 >/tmp/mkfs.out 2>&1 ||
	abort "fs: mkfs.ext4: $(cat /tmp/mkfs.out)"
mount -t ext4 /dev/nbd0 /mnt/t || abort "fs: mount failed"
dd if=/dev/urandom of=/mnt/t/a bs=64k count=64 2>/dev/null
a=$(md5sum </mnt/t/a)
umount /mnt/t || abort "fs: umount failed"
mount -t ext4 /dev/nbd0 /mnt/t || abort "fs: mount again failed"
if [ "$(md5sum </mnt/t/a)" = "$a" ]; then
	pass "fs: mkfs.ext4, 4 MiB written, remounted, the same md5"
else
	fail "fs: the file changed across a remount"
fi

# ------------------------------------------------------------ restart
# The test machine stops the target once it sees READY and starts it
# again 3 s later; a second file is written and synced while it is away
# (the sync waits for it).
dd if=/dev/urandom of=/tmp/b bs=64k count=32 2>/dev/null
b=$(md5sum </tmp/b)
echo READY
if wait_for 60 not_live; then
	say "the target is away: writing and syncing"
	t=$(cut -d. -f1 /proc/uptime)
	if ! cp /tmp/b /mnt/t/b || ! sync; then
		fail "restart: writing across the outage failed"
	fi
	say "the sync took $(($(cut -d. -f1 /proc/uptime) - t)) s"
else
	fail "restart: the association never lost the target"
fi
if wait_for 90 reconnected; then
	say "reconnected: $(grep -o '"reconnects": [0-9]*' /tmp/lh.json)"
else
	fail "restart: the association did not reconnect: $(grep -i 'host 1' /tmp/nvmfd.log | tail -3)"
fi
sync
if ! umount /mnt/t || ! mount -t ext4 /dev/nbd0 /mnt/t; then
	abort "restart: remount failed"
fi
if [ "$(md5sum </mnt/t/a)" = "$a" ] && [ "$(md5sum </mnt/t/b)" = "$b" ]; then
	if dmesg | grep -iE 'I/O error|nbd0.*(fail|error)|EXT4-fs error' >/tmp/err.txt; then
		fail "restart: the kernel logged errors: $(head -3 /tmp/err.txt)"
	else
		pass "restart: the target restarted under a mounted ext4; both files whole, no I/O error"
	fi
else
	fail "restart: a file changed across the restart"
fi
umount /mnt/t || fail "restart: umount failed"

# ------------------------------------------------------------ detach
if ctl detach-nbd /dev/nbd0 >/dev/null && wait_for 10 has_size nbd0 0 &&
    ! listed /dev/nbd0; then
	ctl detach-nbd /dev/nbd0 2>/tmp/err.txt
	rc=$?
	if [ $rc = 3 ]; then
		pass "detach: /dev/nbd0 has 0 sectors; again: $(cat /tmp/err.txt)"
	else
		fail "detach: detaching again gave exit $rc"
	fi
else
	fail "detach: /dev/nbd0 still has $(sectors nbd0) sectors"
fi

# ------------------------------------------------------------ reattach
if ctl attach-nbd "$EXPORT" /dev/nbd1 >/dev/null &&
    wait_for 10 has_size nbd1 "$want" &&
    mount -t ext4 /dev/nbd1 /mnt/t &&
    [ "$(md5sum </mnt/t/a)" = "$a" ] && [ "$(md5sum </mnt/t/b)" = "$b" ]; then
	umount /mnt/t
	ctl attach-nbd "$EXPORT" /dev/nbd1 2>/tmp/err1.txt
	rc1=$?
	ctl attach-nbd "$EXPORT" /dev/nbd2 2>/tmp/err2.txt
	rc2=$?
	if [ $rc1 = 7 ] && [ $rc2 = 1 ] && has_size nbd2 0; then
		pass "reattach: on /dev/nbd1 both files read back; $(cat /tmp/err1.txt); $(cat /tmp/err2.txt)"
	else
		fail "reattach: again: exit $rc1 ($(cat /tmp/err1.txt)), another device: exit $rc2 ($(cat /tmp/err2.txt))"
	fi
else
	fail "reattach: attach-nbd on /dev/nbd1 did not serve the files"
	umount /mnt/t 2>/dev/null
fi

# ------------------------------------------------------------ busy
# A device the kernel has configured already (by a second nvmfd, whose
# connection names /dev/nbd2; its namespace is this guest's nvmet): in
# use, and the failed attach leaves nothing behind.
LNQN=nqn.2026-12.io.nvmfd.test:guest-local
nvmet_subsys $LNQN
nvmet_ns $LNQN 1 "$(ramdisk 16)"
nvmet_port_tcp 1 127.0.0.1 4430
nvmet_link 1 $LNQN
config n2 4421 /dev/nbd2 127.0.0.1 4430 $LNQN 3
/usr/local/bin/nvmfd -F -f /tmp/n2.yaml >/tmp/n2.log 2>&1 &
pid2=$!
if wait_for 60 has_size nbd2 $((16 << 11)); then
	ctl detach-nbd /dev/nbd1 >/dev/null || fail "busy: detach-nbd /dev/nbd1 failed"
	ctl attach-nbd "$EXPORT" /dev/nbd2 2>/tmp/err.txt
	rc=$?
	if [ $rc = 7 ] && grep -q 'is in use' /tmp/err.txt &&
	    ! listed /dev/nbd2 && ctl attach-nbd "$EXPORT" /dev/nbd1 >/dev/null &&
	    wait_for 10 has_size nbd1 "$want"; then
		pass "busy: $(cat /tmp/err.txt); attached to /dev/nbd1 again after it"
	else
		fail "busy: attach-nbd on a configured device: exit $rc, $(cat /tmp/err.txt)"
	fi
	# ---------------------------------------------------- loss
	if ! dd if=/dev/nbd2 of=/dev/null bs=4k count=1 iflag=direct 2>/tmp/dd.txt; then
		fail "loss: a read before the loss failed: $(cat /tmp/dd.txt)"
	fi
	nvmet_clear
	t=$(cut -d. -f1 /proc/uptime)
	timeout 60 dd if=/dev/nbd2 of=/dev/null bs=4k count=1 skip=64 \
	    iflag=direct 2>/tmp/dd.txt
	rc=$?
	took=$(($(cut -d. -f1 /proc/uptime) - t))
	kill "$pid2"
	wait "$pid2"
	rc2=$?
	if [ $rc != 0 ] && [ $rc != 124 ] && [ $took -le 30 ] &&
	    grep -qi 'error' /tmp/dd.txt && [ $rc2 = 0 ] && has_size nbd2 0; then
		pass "loss: the read failed after $took s ($(head -1 /tmp/dd.txt)); nvmfd stopped, /dev/nbd2 disconnected"
	else
		fail "loss: dd exit $rc after $took s ($(cat /tmp/dd.txt)); the second nvmfd exited $rc2; /dev/nbd2 has $(sectors nbd2) sectors"
	fi
else
	fail "busy: a second nvmfd did not configure /dev/nbd2: $(tail -3 /tmp/n2.log)"
	kill "$pid2"
fi

# ------------------------------------------------------------ stop
kill "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
	sleep 0.2
	i=$((i + 1))
done
if kill -0 "$pid" 2>/dev/null; then
	fail "stop: nvmfd still runs 10 s after SIGTERM"
	kill -9 "$pid"
else
	wait "$pid"
	rc=$?
	if [ $rc = 0 ] && has_size nbd1 0 &&
	    grep -q 'nbd1: disconnected' /tmp/nvmfd.log; then
		pass "stop: nvmfd exited 0, /dev/nbd1 disconnected"
	else
		fail "stop: exit $rc, /dev/nbd1 has $(sectors nbd1) sectors"
	fi
fi
say "nvmfd's nbd lines:"
grep 'nbd' /tmp/nvmfd.log | grep -v listening
finish
