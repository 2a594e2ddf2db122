# shellcheck shell=sh
# Guest half of the second part of tests/integration/linux-tls.sh: the
# Linux kernel's NVMe/TCP target (nvmet, tlshd doing the handshakes) with a
# port that requires TLS 1.3, for nvmfd's host role (perf -K) to use.
# busybox ash, peer-linux's lib.sh sourced.
#
# Args: HOSTNQN KEY PORT SECONDS
#   HOSTNQN, KEY  the one host allowed, and its configured PSK
#   PORT          the TCP port (forwarded from the test machine)
#   SECONDS       how long to serve after printing READY
echo "guest: started"
S=nqn.2026-11.io.nvmfd.test:nvmet-tls
nvmet_subsys $S || { echo "FAIL: nvmet subsystem"; exit 1; }
nvmet_ns $S 1 "$(ramdisk 32)" || { echo "FAIL: nvmet namespace"; exit 1; }
nvmet_host $S "$1" || { echo "FAIL: nvmet host"; exit 1; }
tls_start || { echo "FAIL: tlshd"; exit 1; }
tls_key_insert "$1" $S "$2" >/dev/null || { echo "FAIL: key insert"; exit 1; }
nvmet_port_tls 1 0.0.0.0 "$3" || { echo "FAIL: nvmet port"; exit 1; }
nvmet_link 1 $S || { echo "FAIL: nvmet link"; exit 1; }
echo READY
sleep "$4"
exit 0
