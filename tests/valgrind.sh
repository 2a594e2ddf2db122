#!/bin/sh
# valgrind.sh TEST...: run Check unit test programs under valgrind memcheck,
# all in one process each (CK_FORK=no, so a leak is seen at exit), and
# fail on any memory error or definite leak.  "make check-valgrind" runs
# every unit test this way; VALGRIND_TESTS="tests/unit/test_hmap ..."
# picks some.  Prints one line per program and "N passed, M failed".
# File I/O goes through the thread-pool engine: valgrind cannot see the
# kernel write into buffers through io_uring.  A test's forked child (a
# client of another user) leaves by _exit with the parent's heap, some of
# it held only from the stacks of threads the child does not have: its
# leak check is noise and its exit code the test's answer, so valgrind
# stays silent there and the parent's report, not valgrind's exit code
# (--error-exitcode would also replace the child's), decides.
set -u
command -v valgrind >/dev/null 2>&1 || {
	echo "valgrind.sh: no valgrind (apt-get install valgrind)"
	exit 77
}
pass=0 fail=0
for t in "$@"; do
	log="$t.valgrind.log"
	start=$(date +%s)
	if CK_FORK=no NVMFD_IO_ENGINE=threads top_srcdir=${top_srcdir:-} \
	    valgrind -q --child-silent-after-fork=yes --leak-check=full \
	    --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	    "$t" >"$log" 2>&1 && ! grep -q '^==[0-9]*==' "$log"; then
		echo "PASS: $t ($(($(date +%s) - start)) s)"
		pass=$((pass + 1))
	else
		echo "FAIL: $t (valgrind report in $log)"
		grep '^==[0-9]*==' "$log" | head -30
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
