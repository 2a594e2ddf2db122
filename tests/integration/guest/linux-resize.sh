# shellcheck shell=sh
# Guest half of tests/integration/linux-resize.sh: runs inside the peer-linux
# VM (busybox ash, lib.sh sourced).  nvmfd on the test machine (10.0.2.2,
# PORT) serves NQN with a 64 MiB RAM namespace; the guest asks ctl_agent.py
# on 10.0.2.2:AGENT_PORT to run nvmfctl set-ns --size.
#
# Args: PORT AGENT_PORT NQN
#
# Checks, each reported as a "PASS: ..." or "FAIL: ..." line:
#   connect  the namespace's block device appears with 64 MiB
#   grow     set-ns --size 128M while fio writes and verifies the first
#            16 MiB: the block device shows 128 MiB without a reconnect
#            (the same controller, no reset), its new last block can be
#            written and read back
#   shrink   set-ns --size 32M: the device shows 32 MiB; fio, which kept
#            to the first 16 MiB, ends with no error
# Exits 0 when every check passed, 1 otherwise (with dmesg).

echo "guest: started"
A=10.0.2.2
PORT=$1 AP=$2 NQN=$3
. /peer/files/checks.sh

# ms: the uptime in milliseconds (10 ms steps).
ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# wait_size DEV SECTORS: until /sys/block/DEV/size says SECTORS (512 bytes).
wait_size() {
	i=0
	while [ $i -lt 150 ]; do
		[ "$(cat "/sys/block/$1/size")" = "$2" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

nvme_tcp_connect "$A" "$PORT" "$NQN" --nr-io-queues=2 ||
	abort "connect: nvme connect failed"
dev=$(nvme_wait_ns "$NQN") || abort "connect: no namespace block device"
blk=${dev#/dev/}
ctrl=$(ctrl)
sectors=$(cat "/sys/block/$blk/size")
if [ "$sectors" = $((64 << 11)) ]; then
	pass "connect: $dev, $sectors sectors, controller $ctrl"
else
	abort "connect: $dev has $sectors sectors, expected $((64 << 11))"
fi

say "fio verify on the first 16 MiB of $dev while the size changes"
fio --name=resize --filename="$dev" --ioengine=libaio --direct=1 \
    --rw=randwrite --bs=4k --iodepth=8 --size=16M --verify=crc32c \
    --verify_backlog=64 --time_based --runtime=12 >/tmp/fio.out 2>&1 &
fio_pid=$!
sleep 2

# resize CHECK MIB: set-ns --size MIB, and the block device follows.
resize() {
	t=$(ms)
	ask set-ns-size 1 "$2M" >/dev/null || fail "$1: the agent's set-ns failed"
	if wait_size "$blk" $(($2 << 11)); then
		pass "$1: $dev shows $(cat "/sys/block/$blk/size") sectors" \
		    "($2 MiB) $(($(ms) - t)) ms after asking"
	else
		fail "$1: $dev still shows $(cat "/sys/block/$blk/size") sectors"
	fi
}

resize grow 128
now=$(ctrl)
if [ "$now" != "$ctrl" ] || dmesg | grep -q 'nvme.*resetting controller'
then
	fail "grow: the controller changed ($ctrl -> $now) or was reset"
fi
last=$(((128 << 8) - 1))		# 4 KiB blocks
head -c 4096 /dev/urandom >/tmp/blk
if dd if=/tmp/blk of="$dev" bs=4096 seek=$last count=1 oflag=direct \
    2>/dev/null &&
    dd if="$dev" of=/tmp/back bs=4096 skip=$last count=1 iflag=direct \
    2>/dev/null && cmp -s /tmp/blk /tmp/back; then
	pass "grow: the new last 4 KiB block written and read back"
else
	fail "grow: the new last block could not be written and read back"
fi

resize shrink 32
wait "$fio_pid"
fio_rc=$?
if [ "$fio_rc" = 0 ] && ! grep -q 'err= *[1-9]' /tmp/fio.out; then
	pass "shrink: fio on the first 16 MiB ended with no error" \
	    "($(grep -o 'IOPS=[^,]*' /tmp/fio.out | head -1))"
else
	fail "shrink: fio exit $fio_rc: $(grep -m1 -i 'err' /tmp/fio.out)"
	tail -20 /tmp/fio.out
fi
dmesg | grep -i 'nvme' | tail -8
nvme_disconnect "$NQN" >/dev/null 2>&1
finish
