# shellcheck shell=sh
# Sourced by the tests that need a Ceph cluster: a throwaway one, one
# monitor and one OSD on 127.0.0.1, from Debian's packages (ceph-mon,
# ceph-osd, ceph-common), everything under a directory of the test's own.
# The OSD keeps its objects in memory (memstore, at most 4 GiB), pools have
# one replica, cephx is on.  There is no manager: nothing here needs one
# (and "ceph df" would hang waiting for it).
#
#   ceph_need
#       exit 77 (skip) with the packages to install when a Ceph command
#       is missing.
#   ceph_need_rbd_build DIR
#       exit 77 (skip) when $NVMFD was built without RBD support (its
#       configuration check says so); writes a probe file in DIR.
#   ceph_start DIR
#       a new cluster in DIR (made): DIR/ceph.conf, DIR/admin.keyring
#       (client.admin), a pool "rbd" ready for images.  Sets ceph_conf and
#       ceph_keyring.  Returns non-zero, with the daemons' logs printed,
#       when it does not come up within 60 s.
#   ceph_stop
#       stops the OSD, then the monitor (in that order: an OSD without its
#       monitor takes minutes to give up).  Safe to call twice.
#   ceph_rbd ARG...
#       the rbd command against the cluster as client.admin.
#   ceph_cli ARG...
#       the ceph command, likewise (with a timeout).

ceph_mon_pid=
ceph_osd_pid=
ceph_dir=
ceph_conf=
ceph_keyring=

ceph_need() {
	for _cn in ceph-mon ceph-osd ceph ceph-authtool monmaptool rbd; do
		command -v "$_cn" >/dev/null 2>&1 && continue
		echo "SKIP: $_cn not found (Debian: apt-get install" \
		    "--no-install-recommends ceph-mon ceph-osd ceph-common)"
		exit 77
	done
}

ceph_need_rbd_build() {
	cat >"$1/rbd-probe.yaml" <<EOF
ports:
  - {id: 1, address: 127.0.0.1}
subsystems:
  - nqn: nqn.2026-11.io.nvmfd.test:probe
    namespaces:
      - {backend: rbd, pool: rbd, image: none}
EOF
	if "$NVMFD" -n -f "$1/rbd-probe.yaml" 2>&1 |
	    grep -q 'without Ceph RBD'; then
		echo "SKIP: this nvmfd was built without RBD support" \
		    "(configure --with-rbd)"
		exit 77
	fi
}

ceph_cli() {
	timeout -k 5 60 ceph --conf "$ceph_conf" --keyring "$ceph_keyring" \
	    --name client.admin "$@"
}

ceph_rbd() {
	timeout -k 5 60 rbd --conf "$ceph_conf" --keyring "$ceph_keyring" \
	    --id admin "$@"
}

# A TCP port nothing listens on, from the upper half of the range.
_ceph_free_port() {
	while :; do
		_cp=$((40000 + $(od -An -N2 -tu2 /dev/urandom) % 20000))
		ss -Hltn "sport = :$_cp" 2>/dev/null | grep -q . || break
	done
	echo "$_cp"
}

_ceph_show_logs() {
	for _cl in "$ceph_dir"/log/*.log; do
		[ -f "$_cl" ] || continue
		echo "---- $_cl (last 30 lines)"
		tail -n 30 "$_cl"
	done
}

ceph_start() {
	ceph_dir=$1
	mkdir -p "$ceph_dir/log" "$ceph_dir/run" "$ceph_dir/mon" \
	    "$ceph_dir/osd" || return 1
	ceph_conf=$ceph_dir/ceph.conf
	ceph_keyring=$ceph_dir/admin.keyring
	_cs_fsid=$(cat /proc/sys/kernel/random/uuid)
	_cs_port=$(_ceph_free_port)
	cat >"$ceph_conf" <<EOF
[global]
fsid = $_cs_fsid
mon host = [v2:127.0.0.1:$_cs_port]
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $ceph_keyring
run dir = $ceph_dir/run
admin socket = $ceph_dir/run/\$name.asok
log file = $ceph_dir/log/\$name.log
pid file = $ceph_dir/run/\$name.pid
crash dir = $ceph_dir/crash
exporter sock dir = $ceph_dir/run
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon mgr mkfs grace = 3600
osd crush chooseleaf type = 0
paxos propose interval = 0.1
[mon]
mon data = $ceph_dir/mon/\$name
keyring = $ceph_dir/mon/\$name/keyring
[osd]
osd data = $ceph_dir/osd/\$name
keyring = $ceph_dir/osd/\$name/keyring
osd objectstore = memstore
memstore device bytes = 4294967296
osd max object name len = 460
osd max object namespace len = 64
EOF
	ceph-authtool --create-keyring "$ceph_dir/mon.keyring" --gen-key \
	    -n mon. --cap mon 'allow *' >/dev/null &&
	ceph-authtool --create-keyring "$ceph_keyring" --gen-key \
	    -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
	    --cap mgr 'allow *' >/dev/null &&
	ceph-authtool "$ceph_dir/mon.keyring" \
	    --import-keyring "$ceph_keyring" >/dev/null &&
	monmaptool --create --fsid "$_cs_fsid" \
	    --addv a "[v2:127.0.0.1:$_cs_port]" "$ceph_dir/monmap" \
	    >/dev/null &&
	ceph-mon --conf "$ceph_conf" --mkfs -i a \
	    --monmap "$ceph_dir/monmap" --keyring "$ceph_dir/mon.keyring" ||
	    { _ceph_show_logs; return 1; }
	ceph-mon --conf "$ceph_conf" -i a -f >"$ceph_dir/log/mon.out" 2>&1 &
	ceph_mon_pid=$!

	_cs_uuid=$(cat /proc/sys/kernel/random/uuid)
	_cs_id=$(ceph_cli osd new "$_cs_uuid") ||
	    { _ceph_show_logs; return 1; }
	_cs_osd=$ceph_dir/osd/osd.$_cs_id
	mkdir -p "$_cs_osd" &&
	ceph-authtool --create-keyring "$_cs_osd/keyring" --gen-key \
	    -n "osd.$_cs_id" >/dev/null &&
	ceph_cli auth add "osd.$_cs_id" osd 'allow *' \
	    mon 'allow profile osd' -i "$_cs_osd/keyring" >/dev/null 2>&1 &&
	ceph-osd --conf "$ceph_conf" -i "$_cs_id" --mkfs \
	    --osd-uuid "$_cs_uuid" >"$ceph_dir/log/osd-mkfs.out" 2>&1 ||
	    { _ceph_show_logs; return 1; }
	ceph-osd --conf "$ceph_conf" -i "$_cs_id" -f \
	    >"$ceph_dir/log/osd.out" 2>&1 &
	ceph_osd_pid=$!

	ceph_cli osd pool create rbd 8 >/dev/null 2>&1 &&
	ceph_rbd pool init rbd ||
	    { _ceph_show_logs; return 1; }
}

_ceph_kill() {	# _ceph_kill PID: TERM, then KILL after 10 s
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null
	_ck_i=0
	while kill -0 "$1" 2>/dev/null && [ $_ck_i -lt 100 ]; do
		sleep 0.1
		_ck_i=$((_ck_i + 1))
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

ceph_stop() {
	_ceph_kill "$ceph_osd_pid"
	ceph_osd_pid=
	_ceph_kill "$ceph_mon_pid"
	ceph_mon_pid=
}
