# shellcheck shell=sh
# Guest half of tests/integration/linux-tls.sh: the Linux kernel's NVMe/TCP
# host, with tlshd doing the handshakes, against nvmfd's TLS port on the
# test machine (10.0.2.2).  busybox ash, peer-linux's lib.sh sourced.
#
# Args: PORT NQN HOST KEY HOST_WRONG WRONG_KEY HOST_NOKEY
#   PORT        nvmfd's port with "tls: required"
#   HOST, KEY   a host nvmfd allows with this configured PSK
#   HOST_WRONG  a host nvmfd allows with another PSK; the guest gets WRONG_KEY
#   HOST_NOKEY  a host nvmfd allows with no PSK at all
# Exits 0 when every check passed, 1 at the first failure (with dmesg).

echo "guest: started"
A=10.0.2.2
P=$1 NQN=$2 H=$3 KEY=$4 H_WRONG=$5 WRONG=$6 H_NOKEY=$7
DISC=nqn.2014-08.org.nvmexpress.discovery
step=setup

check() {
	step=$1
	echo "=== $step"
}

fail() {
	echo "FAIL [$step]: $*"
	echo "--- tlshd log"
	tail -20 /tmp/tlshd.log
	echo "--- dmesg (last 30 lines)"
	dmesg | tail -30
	exit 1
}

hostid() { cat /proc/sys/kernel/random/uuid; }

ctrl_of() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$1" ] &&
			{ echo "${c##*/}"; return 0; }
	done
	return 1
}

echo "guest: $(uname -r), $(nvme version | head -1)"
tls_start || fail "tlshd did not start"
for h in "$H" "$H_NOKEY"; do
	tls_key_insert "$h" "$NQN" "$KEY" >/dev/null ||
		fail "could not insert the PSK for $h"
done
tls_key_insert "$H" "$DISC" "$KEY" >/dev/null ||
	fail "could not insert the discovery PSK"
tls_key_insert "$H_WRONG" "$NQN" "$WRONG" >/dev/null ||
	fail "could not insert the wrong PSK"

check "1 discovery over TLS"
out=$(nvme discover -t tcp -a "$A" -s "$P" --hostnqn="$H" --hostid="$(hostid)" \
    --tls) || fail "nvme discover --tls failed"
echo "$out" | grep -E '^(subtype|subnqn|treq|sectype|trsvcid)' | sed 's/^/  /'
echo "$out" | grep -q "^subnqn: *$NQN\$" || fail "no discovery log entry for $NQN"
echo "$out" | grep -q '^treq: *required' || fail "TREQ does not say required"
echo "$out" | grep -q '^sectype: *tls13' || fail "TSAS does not say TLS 1.3"

check "2 connect with --tls, 2 I/O queues"
nvme_tcp_connect "$A" "$P" "$NQN" --hostnqn="$H" --hostid="$(hostid)" --tls \
    --nr-io-queues=2 || fail "nvme connect --tls failed"
dev=$(nvme_wait_ns "$NQN" 1 20) || fail "no namespace"
ctrl=$(ctrl_of "$NQN") || fail "no controller"
echo "  $ctrl, $dev, queues $(cat "/sys/class/nvme/$ctrl/queue_count")"
[ -r "/sys/class/nvme/$ctrl/tls_key" ] &&
	echo "  tls_key $(cat "/sys/class/nvme/$ctrl/tls_key")"

check "3 dd pattern, read back"
dd if=/dev/urandom of=/tmp/pat bs=1M count=4 2>/dev/null
dd if=/tmp/pat of="$dev" bs=1M count=4 oflag=direct 2>/dev/null ||
	fail "dd write failed"
dd if="$dev" of=/tmp/back bs=1M count=4 iflag=direct 2>/dev/null ||
	fail "dd read failed"
cmp /tmp/pat /tmp/back || fail "read back differs from what was written"
echo "  4 MiB written and read back equal"

check "4 fio verify"
for job in "4k randwrite" "128k write"; do
	set -- $job
	out=$(fio --name=tls --filename="$dev" --ioengine=libaio --direct=1 \
	    --iodepth=16 --rw="$2" --bs="$1" --size=32M --verify=crc32c \
	    --do_verify=1 --verify_fatal=1 --eta=never 2>&1)
	rc=$?
	echo "$out" | grep -E 'err=|IOPS=' | sed 's/^/  fio: /'
	[ $rc -eq 0 ] || fail "fio $job exited with $rc"
	echo "$out" | grep -q 'err= *0:' || fail "fio $job did not report err=0"
done
nvme_disconnect "$NQN" >/dev/null || fail "disconnect failed"
echo "RESULT_OK=connect"

check "5 a wrong PSK is refused"
if nvme_tcp_connect "$A" "$P" "$NQN" --hostnqn="$H_WRONG" --hostid="$(hostid)" \
    --tls 2>&1; then
	nvme_disconnect "$NQN"
	fail "connect with a wrong PSK succeeded"
fi

check "6 a host nvmfd has no PSK for is refused"
if nvme_tcp_connect "$A" "$P" "$NQN" --hostnqn="$H_NOKEY" --hostid="$(hostid)" \
    --tls 2>&1; then
	nvme_disconnect "$NQN"
	fail "connect without a PSK on nvmfd's side succeeded"
fi

check "7 plain connect to the TLS port is refused"
if nvme_tcp_connect "$A" "$P" "$NQN" --hostnqn="$H" --hostid="$(hostid)" \
    2>&1; then
	nvme_disconnect "$NQN"
	fail "plain connect to a TLS-only port succeeded"
fi
echo "guest: all checks passed"
exit 0
