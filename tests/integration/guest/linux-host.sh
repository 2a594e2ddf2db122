# shellcheck shell=sh
# Guest half of tests/integration/linux-host.sh: runs inside the peer-linux VM
# (busybox ash, lib.sh sourced), with the Linux kernel's NVMe/TCP host talking
# to nvmfd on the test machine (10.0.2.2).
#
# Steps: 1 discovery ... 7 health logs (smart-log, error-log).
# Args: PORT NODIGEST_PORT RAM_NQN RAM_MODEL RAM_SERIAL RAM_BYTES FILE_NQN FILE_BYTES
#       FILE_IO_MIN (the backing file system's block size: NPWG)
#   PORT           the main port (digests allowed)
#   NODIGEST_PORT  a port configured with header_digest/data_digest: false
#
# Prints lines for the test script to check against the daemon's log and the
# backing file: RAMCTRL=, FILECTRL=, KATOCTRL=, PDCCTRL= (cntlid hostnqn), MD5=.
# Exits 0 when every check passed, 1 at the first failure (with dmesg).
# shellcheck disable=SC2317  # functions from lib.sh are called indirectly

echo "guest: started"
A=10.0.2.2
P=$1 P_NODGST=$2 RAM=$3 RAM_MODEL=$4 RAM_SERIAL=$5 RAM_BYTES=$6 FILE=$7 FILE_BYTES=$8
FILE_IO_MIN=${9:-512}
DISC=nqn.2014-08.org.nvmexpress.discovery
HOSTNQN=$(cat /etc/nvme/hostnqn)
step=setup
T0=$(cut -d. -f1 /proc/uptime)

check() {
	step=$1
	echo "=== [$(($(cut -d. -f1 /proc/uptime) - T0))s] $step"
}

fail() {
	echo "FAIL [$step]: $*"
	echo "--- nvme list-subsys"
	nvme list-subsys 2>&1
	echo "--- dmesg (from the first NVMe message, last 40 lines)"
	dmesg | sed -n '/nvme/,$p' | tail -40
	exit 1
}

# ctrl_of NQN: the controller name (nvmeN) connected to NQN.
ctrl_of() {
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$1" ] &&
			{ echo "${c##*/}"; return 0; }
	done
	return 1
}

# idfield CMD DEV FIELD: one field of nvme id-ctrl / id-ns output, trimmed.
idfield() {
	nvme "$1" "$2" | sed -n "s/^$3 *: *//p" | sed 's/ *$//' | head -1
}

# run_fio NAME DEV FIO_ARGS...: a verifying fio job; fails the step unless
# fio exits 0 and reports err=0.
run_fio() {
	name=$1 dev=$2
	shift 2
	out=$(fio --name="$name" --filename="$dev" --ioengine=libaio --direct=1 \
		--iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 \
		--runtime=30 --eta=never "$@" 2>&1)
	rc=$?
	echo "$out" | grep -E 'err=|IOPS=|verify|error|bad|fail' | sed 's/^/  fio: /'
	[ $rc -eq 0 ] || fail "fio $name exited with $rc"
	echo "$out" | grep -q 'err= *0:' || fail "fio $name did not report err=0"
	if echo "$out" | grep -qE 'err= *[1-9]'; then
		fail "fio $name reported an error"
	fi
}

# connect NQN PORT [nvme connect args...]: connect, wait for namespace 1,
# set $dev (/dev/nvmeXnY) and $ctrl (nvmeX).
connect() {
	nqn=$1 port=$2
	shift 2
	nvme_tcp_connect "$A" "$port" "$nqn" "$@" || fail "nvme connect $nqn $* failed"
	dev=$(nvme_wait_ns "$nqn" 1 20) || fail "no namespace 1 of $nqn"
	ctrl=$(ctrl_of "$nqn") || fail "no controller for $nqn in /sys/class/nvme"
	echo "  $nqn: $ctrl, $dev"
}

disconnect() {
	nvme_disconnect "$1" || fail "nvme disconnect $1 failed"
	i=0
	while ctrl_of "$1" >/dev/null; do
		[ $i -lt 100 ] || fail "controller of $1 still present 10 s after disconnect"
		sleep 0.1
		i=$((i + 1))
	done
}

# check_ctrl NQN MODEL_OR_EMPTY: identify controller fields against sysfs.
check_ctrl() {
	mn=$(idfield id-ctrl "/dev/$ctrl" mn)
	cntlid=$(idfield id-ctrl "/dev/$ctrl" cntlid)
	subnqn=$(idfield id-ctrl "/dev/$ctrl" subnqn)
	sys_cntlid=$(cat "/sys/class/nvme/$ctrl/cntlid")
	echo "  id-ctrl: mn='$mn' cntlid=$cntlid subnqn=$subnqn (sysfs cntlid $sys_cntlid)"
	[ "$subnqn" = "$1" ] || fail "id-ctrl subnqn '$subnqn', expected '$1'"
	[ -n "$cntlid" ] || fail "id-ctrl has no cntlid"
	cntlid=$((cntlid))
	if [ "$cntlid" -lt 1 ] || [ "$cntlid" -gt 65519 ]; then
		fail "id-ctrl cntlid $cntlid is not in 1..0xffef"
	fi
	[ "$cntlid" -eq "$sys_cntlid" ] ||
		fail "id-ctrl cntlid $cntlid differs from the Connect's ($sys_cntlid)"
	if [ -n "$2" ]; then
		[ "$mn" = "$2" ] || fail "id-ctrl mn '$mn', expected '$2'"
	else
		[ -n "$mn" ] || fail "id-ctrl mn is empty"
	fi
}

check_nsze() {
	nsze=$(idfield id-ns "$dev" nsze)
	echo "  id-ns: nsze=$nsze"
	if [ -z "$nsze" ] || [ $((nsze)) -ne $(($1 / 512)) ]; then
		fail "id-ns nsze '$nsze', expected $(($1 / 512)) blocks of 512 bytes"
	fi
}

echo "guest: $(uname -r), $(nvme version | head -1), host NQN $HOSTNQN"

# ------------------------------------------------------------------- 1
check "1 discovery"
out=$(nvme discover -t tcp -a "$A" -s "$P") || fail "nvme discover failed"
echo "$out" | grep -E '^(subtype|portid|trsvcid|subnqn):' | sed 's/^/  /'
for nqn in "$DISC" "$RAM" "$FILE"; do
	echo "$out" | grep -q "^subnqn: *$nqn\$" || fail "discovery log has no entry for $nqn"
done
echo "$out" | grep -q '^subtype: *current discovery subsystem' ||
	fail "discovery log has no current discovery subsystem entry"
echo "$out" | grep -q "^trsvcid: *$P\$" || fail "discovery log has no entry for port $P"

# ------------------------------------------------------------------- 2
check "2 RAM subsystem, 2 I/O queues"
connect "$RAM" "$P" --nr-io-queues=2
nvme list | grep -q "^$dev " || fail "nvme list does not show $dev"
nvme list | grep "^$dev " | sed 's/^/  /'
qc=$(cat "/sys/class/nvme/$ctrl/queue_count")
[ "$qc" = 3 ] || fail "queue_count $qc, expected 3 (admin + 2 I/O queues)"
check_ctrl "$RAM" "$RAM_MODEL"
sn=$(idfield id-ctrl "/dev/$ctrl" sn)
[ "$sn" = "$RAM_SERIAL" ] || fail "id-ctrl sn '$sn', expected '$RAM_SERIAL'"
check_nsze "$RAM_BYTES"
echo "RAMCTRL=$cntlid $HOSTNQN"
check "2 RAM: fio 4k randwrite + verify"
run_fio rand4k "$dev" --rw=randwrite --bs=4k --size=16M
check "2 RAM: fio 128k write + verify"
run_fio seq128k "$dev" --rw=write --bs=128k --size=32M
disconnect "$RAM"

# ------------------------------------------------------------------- 3
check "3 RAM with header and data digests"
if nvme_tcp_connect "$A" "$P_NODGST" "$RAM" -g -G >/dev/null 2>&1; then
	fail "connect with digests to a port that refuses them succeeded"
fi
dmesg | grep -q 'digest mismatch' ||
	fail "no 'digest mismatch' in dmesg after the refused connect"
echo "  port $P_NODGST (digests off): connect with -g -G refused as expected"
# The kernel host refuses an ICResp whose digest flags differ from what it
# asked for (see above), so a connect that succeeds runs with both digests.
# Only what this association logs counts: a Keep Alive the host itself cut
# short at the previous disconnect may log an error before it.
mark=$(dmesg | wc -l)
connect "$RAM" "$P" --nr-io-queues=2 -g -G
check_ctrl "$RAM" "$RAM_MODEL"
run_fio randrw4k-digest "$dev" --rw=randrw --bs=4k --size=16M
dmesg | tail -n +$((mark + 1)) | grep -iE 'nvme.*(digest|error)' &&
	fail "digest or error messages in dmesg"
disconnect "$RAM"

# ------------------------------------------------------------------- 4
check "4 file subsystem"
connect "$FILE" "$P"
check_ctrl "$FILE" ""
check_nsze "$FILE_BYTES"
echo "FILECTRL=$cntlid $HOSTNQN"
# NPWG/NOWS: the host aligns its I/O to the file system's blocks.
iomin=$(cat "/sys/block/${dev#/dev/}/queue/minimum_io_size")
[ "$iomin" = "$FILE_IO_MIN" ] ||
	fail "minimum_io_size $iomin, expected $FILE_IO_MIN (NPWG)"
echo "  minimum_io_size $iomin (NPWG)"
check "4 file: fio 4k randwrite + verify (16M at 16M)"
run_fio file4k "$dev" --rw=randwrite --bs=4k --offset=16M --size=16M
check "4 file: 1 MiB pattern at 4 MiB"
dd if=/dev/urandom of=/tmp/pattern bs=1M count=1 2>/dev/null || fail "dd urandom"
md5=$(md5sum < /tmp/pattern | cut -d' ' -f1)
dd if=/tmp/pattern of="$dev" bs=1M seek=4 count=1 oflag=direct 2>/dev/null ||
	fail "dd of the pattern to $dev failed"
nvme flush "$dev" -n 1 >/dev/null || fail "nvme flush $dev failed"
back=$(dd if="$dev" bs=1M skip=4 count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$back" = "$md5" ] || fail "read back md5 $back, wrote $md5"
echo "MD5=$md5"
check "4 file: nvme verify and nvme copy"
nvme verify "$dev" -n 1 --start-block=8192 --block-count=7 >/dev/null ||
	fail "nvme verify failed"
# 1 MiB pattern at 4 MiB = LBAs 8192..10239: copy two ranges of it (16 and
# 8 blocks) to LBA 20480, one after the other.
nvme copy "$dev" --sdlba=20480 --slbs=8192,9000 --blocks=15,7 >/dev/null ||
	fail "nvme copy failed"
want=$( { dd if=/tmp/pattern bs=512 count=16 2>/dev/null;
    dd if=/tmp/pattern bs=512 skip=808 count=8 2>/dev/null; } | md5sum | cut -d' ' -f1)
got=$(dd if="$dev" bs=512 skip=20480 count=24 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "after nvme copy: md5 $got at LBA 20480, expected $want"
# The same first range again in descriptor format 1, to LBA 20608.
nvme copy "$dev" --sdlba=20608 --slbs=8192 --blocks=15 --format=1 >/dev/null ||
	fail "nvme copy --format=1 failed"
want=$(dd if=/tmp/pattern bs=512 count=16 2>/dev/null | md5sum | cut -d' ' -f1)
got=$(dd if="$dev" bs=512 skip=20608 count=16 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "after nvme copy --format=1: md5 $got at LBA 20608, expected $want"
echo "  nvme verify, nvme copy of 2 ranges (format 0) and of 1 (format 1): destinations hold them"
disconnect "$FILE"

# ------------------------------------------------------------------- 5
check "5 keep-alive (KATO 2 s, 5 s idle)"
connect "$RAM" "$P" --keep-alive-tmo=2
kato=$(cat "/sys/class/nvme/$ctrl/kato")
[ "$kato" = 2 ] || fail "sysfs kato $kato, expected 2"
cntlid=$(cat "/sys/class/nvme/$ctrl/cntlid")
echo "KATOCTRL=$cntlid $HOSTNQN"
sleep 5
state=$(cat "/sys/class/nvme/$ctrl/state")
[ "$state" = live ] || fail "controller state '$state' after 5 s idle with KATO 2 s"
[ "$(cat "/sys/class/nvme/$ctrl/cntlid")" = "$cntlid" ] ||
	fail "controller was reconnected (cntlid changed) during the idle time"
dd if="$dev" of=/dev/null bs=4k count=16 iflag=direct 2>/dev/null ||
	fail "read after the idle time failed"
# A slow round trip is reported, not failed: under emulation the guest's
# own clock stalls; a keep alive that failed or a reset is trouble.
dmesg | grep -i 'long keepalive RTT' | sed 's/^/  note: /'
dmesg | grep -iE 'keep.?alive|reconnect|resetting' |
    grep -iv 'long keepalive RTT' && fail "keep-alive trouble in dmesg"
disconnect "$RAM"

# ------------------------------------------------------------------- 6
check "6 persistent discovery controller"
nvme discover -t tcp -a "$A" -s "$P" --persistent >/dev/null ||
	fail "nvme discover --persistent failed"
ctrl=$(ctrl_of "$DISC") || fail "no persistent discovery controller"
kato=$(cat "/sys/class/nvme/$ctrl/kato")
cntlid=$(cat "/sys/class/nvme/$ctrl/cntlid")
echo "  $ctrl: kato $kato s, cntlid $cntlid"
echo "PDCCTRL=$cntlid $HOSTNQN"
sleep 3
state=$(cat "/sys/class/nvme/$ctrl/state")
[ "$state" = live ] || fail "persistent discovery controller state '$state' after 3 s"
nvme get-log "/dev/$ctrl" --log-id=0x70 --log-len=1024 >/dev/null ||
	fail "Get Log Page (discovery) on the persistent controller failed"
disconnect "$DISC"

# ------------------------------------------------------------------- 7
check "7 health: smart-log and error-log"
# jnum JSON KEY: a number from nvme-cli's JSON output.
jnum() { echo "$1" | tr -d '\n' | sed -n "s/.*\"$2\" *: *\([0-9]*\).*/\1/p"; }
connect "$RAM" "$P"
# The kernel scans the new disk for partitions on its own time: wait until
# the counters stand still before taking the first reading.
s0=$(nvme smart-log "/dev/$ctrl" -o json) || fail "nvme smart-log failed"
for _ in 1 2 3 4 5 6 7 8 9 10; do
	sleep 1
	s=$(nvme smart-log "/dev/$ctrl" -o json) || fail "nvme smart-log failed"
	[ "$(jnum "$s" host_read_commands)" = "$(jnum "$s0" host_read_commands)" ] &&
	    [ "$(jnum "$s" host_write_commands)" = "$(jnum "$s0" host_write_commands)" ] &&
	    break
	s0=$s
done
dd if=/dev/urandom of="$dev" bs=4k count=256 oflag=direct 2>/dev/null ||
	fail "dd write of 256 x 4 KiB"
dd if="$dev" of=/dev/null bs=4k count=128 iflag=direct 2>/dev/null ||
	fail "dd read of 128 x 4 KiB"
nlb=$(($(cat "/sys/block/${dev#/dev/}/size")))
nvme read "$dev" --start-block="$nlb" --block-count=0 --data-size=512 \
    >/dev/null 2>&1 && fail "a read past the end succeeded"
s1=$(nvme smart-log "/dev/$ctrl" -o json) || fail "nvme smart-log failed"
delta() { echo $(($(jnum "$s1" "$1") - $(jnum "$s0" "$1"))); }
d_host_write_commands=$(delta host_write_commands)
d_host_read_commands=$(delta host_read_commands)
d_data_units_written=$(delta data_units_written)
d_data_units_read=$(delta data_units_read)
d_num_err_log_entries=$(delta num_err_log_entries)
echo "  smart-log moved by: writes $d_host_write_commands, reads" \
    "$d_host_read_commands, units written $d_data_units_written, units read" \
    "$d_data_units_read, error entries $d_num_err_log_entries"
[ "$d_host_write_commands" = 256 ] ||
	fail "host_write_commands moved by $d_host_write_commands, expected 256"
# 128 reads, plus the one past the end (it failed, but it was a read).
[ "$d_host_read_commands" = 129 ] ||
	fail "host_read_commands moved by $d_host_read_commands, expected 129"
# 1 MiB = 2.048 thousand 512-byte units, rounded up: 2 or 3 more.
case $d_data_units_written in 2|3) ;; *)
	fail "data_units_written moved by $d_data_units_written, expected 2 or 3" ;;
esac
case $d_data_units_read in 1|2) ;; *)
	fail "data_units_read moved by $d_data_units_read, expected 1 or 2" ;;
esac
busy=$(jnum "$s1" controller_busy_time)
[ "${busy:-0}" -ge 1 ] ||
	fail "controller_busy_time '$busy' after I/O, expected at least 1 minute"
[ "$d_num_err_log_entries" -ge 1 ] ||
	fail "num_err_log_entries did not move after a failed read"
# Per namespace (LPA bit 0): the RAM subsystem has only namespace 1, so it
# reads the same write count as the whole; namespace 2 does not exist.
sn=$(nvme smart-log "/dev/$ctrl" --namespace-id=1 -o json) ||
	fail "nvme smart-log --namespace-id=1 failed"
[ "$(jnum "$sn" host_write_commands)" = "$(jnum "$s1" host_write_commands)" ] ||
	fail "namespace 1's smart-log disagrees with the controller's"
nvme smart-log "/dev/$ctrl" --namespace-id=2 >/dev/null 2>&1 &&
	fail "smart-log of a namespace that does not exist succeeded"
el=$(nvme error-log "/dev/$ctrl" -o json) || fail "nvme error-log failed"
echo "$el" | tr -d '\n ' | grep -q "\"lba\":$nlb," ||
	fail "no error-log entry for LBA $nlb: $(echo "$el" | head -c 600)"
echo "  error-log: the failed read at LBA $nlb is there"
disconnect "$RAM"

check "done"
left=$(ls /sys/class/nvme 2>/dev/null)
[ -z "$left" ] || fail "controllers left after the disconnects: $left"
echo "ALL CHECKS PASSED"
exit 0
