# shellcheck shell=sh
# Guest half of tests/integration/linux-nvmet-host.sh: the Linux kernel's
# NVMe/TCP target (nvmet over configfs) with one subsystem and a 64 MiB
# RAM-backed namespace (a loop device on a tmpfs file), for nvmfd's host
# role to discover, connect to and export over NBD.
# busybox ash, peer-linux's lib.sh sourced.
#
# Args: NQN PORT SECONDS [AUTHNQN HOSTNQN KEY CTRLKEY]
#   NQN      the subsystem
#   PORT     the TCP port (forwarded from the test machine)
#   SECONDS  how long to serve after printing READY
#   AUTHNQN  a second subsystem (16 MiB) only HOSTNQN may use, with
#            bidirectional DH-HMAC-CHAP (KEY, CTRLKEY; SHA-256, ffdhe2048)
echo "guest: started"
nvmet_subsys "$1" || { echo "FAIL: nvmet subsystem"; exit 1; }
nvmet_ns "$1" 1 "$(ramdisk 64)" || { echo "FAIL: nvmet namespace"; exit 1; }
nvmet_port_tcp 1 0.0.0.0 "$2" || { echo "FAIL: nvmet port"; exit 1; }
nvmet_link 1 "$1" || { echo "FAIL: nvmet link"; exit 1; }
if [ -n "${4:-}" ]; then
	{ nvmet_subsys "$4" && nvmet_ns "$4" 1 "$(ramdisk 16)" &&
	    nvmet_host "$4" "$5" "$6" "$7" "hmac(sha256)" ffdhe2048 &&
	    nvmet_link 1 "$4"; } || { echo "FAIL: nvmet auth subsystem"; exit 1; }
fi
echo READY
sleep "$3"
exit 0
