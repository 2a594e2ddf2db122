#!/bin/sh
# Install what the build and the tests need (Debian 12), then build and run
# every test: once as a normal build, once under AddressSanitizer/UBSan, the
# unit tests under valgrind memcheck, the unit tests and the daemon's load
# tests under ThreadSanitizer, and check that a fully static nvmfd links,
# and run the fuzz targets briefly.
# Before and after, the README's Quick start runs as written
# (tests/quickstart.sh).  Integration tests that need the
# Linux kernel peer (../shared/peer-linux) skip where it is absent.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
if [ "${NVMFD_SKIP_APT:-0}" != 1 ]; then
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
		build-essential autoconf automake pkg-config file \
		libevent-dev libssl-dev libyaml-dev liburing-dev check \
		python3 qemu-system-x86 xz-utils clang libclang-rt-14-dev \
		libnbd-bin python3-libnbd nbdkit qemu-utils fio openssl curl \
		valgrind
	# librbd for RBD namespaces, and a one-node Ceph cluster for rbd.sh
	# (without recommends: 50 MB instead of several hundred).
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
		--no-install-recommends ceph-mon ceph-osd ceph-common librbd-dev
fi

# A source tree configured in place (./configure && make at the top) stops
# every configure in a separate build directory: clean it first.
if [ -f "$top/config.status" ]; then
	echo "run-all: the source tree is configured in place; make distclean"
	make -C "$top" distclean >/dev/null 2>&1 ||
	    rm -f "$top/config.status" "$top/config.h"
fi

qs_pass=0 qs_fail=0 qs_skip=0
quickstart() {	# the README's Quick start, as written
	rc=0
	"$top/tests/quickstart.sh" || rc=$?
	case $rc in
	0) qs_pass=$((qs_pass + 1)) ;;
	77) qs_skip=$((qs_skip + 1)) ;;
	*) qs_fail=$((qs_fail + 1)); status=1 ;;
	esac
}

jobs=$(nproc 2>/dev/null || echo 2)
status=0
rm -f "$top/.run-all-failures"
quickstart
autoreconf -fi

build_and_check() {	# NAME CONFIGURE-ARGS... ($TESTS, when set: a subset)
	name=$1; shift
	dir="$top/build-$name"
	rm -rf "$dir"; mkdir -p "$dir"
	(cd "$dir" && "$top/configure" -q "$@" && make -j"$jobs" &&
	    make -j"$jobs" check ${TESTS:+TESTS="$TESTS"}) || {
		echo "run-all: $name build: tests failed" >&2
		for f in "$dir"/tests/unit/*.log "$dir"/tests/integration/*.log; do
			[ -f "$f" ] || continue
			grep -q '^:test-result: \(FAIL\|ERROR\)' \
			    "${f%.log}.trs" 2>/dev/null || continue
			echo "==== $f"; tail -80 "$f"
			# Its failure lines again at the very end (CI may show
			# only the head and the tail of this script's output).
			{ echo "$name: ${f#"$dir"/}:"
			  grep -E 'FAIL|ERROR' "$f" | head -8; } \
			    >>"$top/.run-all-failures"
		done
		status=1
	}
}

# A static binary for containers must link; linux-nbd-dev.sh copies it
# into the Linux guest (NVMFD_STATIC), so it comes first.
rm -rf build-static; mkdir -p build-static
if (cd build-static && "$top/configure" -q --enable-static-binary &&
    make -j"$jobs" nvmfd >/dev/null 2>&1 && file nvmfd | grep -q 'statically linked'); then
	NVMFD_STATIC=$top/build-static/nvmfd
	export NVMFD_STATIC
else
	echo "run-all: static build failed" >&2
	status=1
fi

build_and_check plain
# The plain build's unit tests again under valgrind memcheck (about three
# minutes): a memory error or a definite leak fails (tests/valgrind.sh).
vg_pass=0 vg_fail=0 vg_skip=0
if ! command -v valgrind >/dev/null 2>&1; then
	echo "run-all: no valgrind: check-valgrind skipped" >&2
	vg_skip=1
else
	rc=0
	make -C build-plain check-valgrind >build-plain/check-valgrind.out \
	    2>&1 || rc=$?
	cat build-plain/check-valgrind.out
	if [ "$rc" = 0 ]; then
		vg_pass=1
	else
		echo "run-all: check-valgrind failed" >&2
		{ echo "plain: check-valgrind:"
		  grep '^FAIL' build-plain/check-valgrind.out | head -8; } \
		    >>"$top/.run-all-failures"
		vg_fail=1
		status=1
	fi
fi
build_and_check asan --enable-asan --enable-fault-injection
# ThreadSanitizer: the unit tests and the daemon under multi-queue load on
# two workers (the Linux VM and control tests are too slow under it).
TESTS="tests/unit/test_crc32c tests/unit/test_tcp_pdu tests/unit/test_config \
tests/unit/test_controller tests/unit/test_discovery tests/unit/test_backend \
tests/unit/test_qpair tests/unit/test_service tests/unit/test_control \
tests/unit/test_hmap tests/unit/test_tls_psk tests/unit/test_tls_conn \
tests/integration/bad-input.sh \
tests/integration/poll.sh tests/integration/log-flood.sh \
tests/integration/tls.sh tests/unit/test_reservation tests/integration/resv.sh \
tests/integration/fused.sh tests/unit/test_ana tests/integration/ana.sh \
tests/integration/resize.sh tests/unit/test_atomic tests/unit/test_nbd_tls \
tests/integration/nbd-tls.sh tests/integration/host-sec.sh"
TSAN_OPTIONS="suppressions=$top/tests/tsan.supp"
export TSAN_OPTIONS
# Without librbd (not instrumented): also the build that has no RBD
# support, whose configuration errors test_config checks.
build_and_check tsan --enable-tsan --without-rbd
unset TESTS TSAN_OPTIONS

# Fuzzing: the libFuzzer targets over their regression inputs, then a short
# run each (tests/fuzz/README.md).
rm -rf build-fuzz; mkdir -p build-fuzz
fuzz_pass=0 fuzz_fail=0
if (cd build-fuzz && "$top/configure" -q CC=clang --enable-fuzzing &&
    make -j"$jobs" fuzz-targets >/dev/null && make fuzz-smoke FUZZ_SECONDS=20); then
	fuzz_pass=1
else
	echo "run-all: fuzz-smoke failed" >&2
	fuzz_fail=1
	status=1
fi

# The Quick start again, after the test builds: the other order.
quickstart

# One closing line over the builds' test results, memcheck, the fuzz
# smoke run and the Quick starts.
trs="build-plain/tests/*/*.trs build-asan/tests/*/*.trs build-tsan/tests/*/*.trs"
# shellcheck disable=SC2086  # $trs is a list of globs
pass=$(cat $trs 2>/dev/null | grep -c '^:test-result: PASS' || true)
# shellcheck disable=SC2086
fail=$(cat $trs 2>/dev/null | grep -Ec '^:test-result: (FAIL|ERROR|XPASS)' || true)
# shellcheck disable=SC2086
skip=$(cat $trs 2>/dev/null | grep -c '^:test-result: SKIP' || true)
pass=$((pass + qs_pass + fuzz_pass + vg_pass))
fail=$((fail + qs_fail + fuzz_fail + vg_fail))
skip=$((skip + qs_skip + vg_skip))
[ "$status" = 0 ] || [ "$fail" -gt 0 ] || fail=1
if [ -f "$top/.run-all-failures" ]; then
	echo "run-all: what failed:"
	sed 's/^/  /' "$top/.run-all-failures"
fi
echo "$pass passed, $fail failed, $skip skipped"
exit $status
