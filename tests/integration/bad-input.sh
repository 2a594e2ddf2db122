#!/bin/sh
# bad-input.sh: start nvmfd on a private configuration and run bad_input.py
# (malformed and hostile NVMe/TCP input, hostile DH-HMAC-CHAP traffic
# against a subsystem that requires a key, plus correct-path sanity checks)
# against it.  Then stop the daemon with SIGTERM: it must exit 0 within 10 s,
# its log must show no AddressSanitizer/UBSan/LeakSanitizer report and no
# byte of the DH-HMAC-CHAP secrets.
#
# Run by "make check" with NVMFD (the daemon) and top_srcdir set; by hand:
#   NVMFD=build/nvmfd top_srcdir=. sh tests/integration/bad-input.sh
# Exit status: 0 pass, 77 skip (no daemon or no python3), 1 fail.

NVMFD=${NVMFD:-}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
here="$top_srcdir/tests/integration"

. "$here/lib.sh"
need_nvmfd 77
need_python3

OPEN_NQN=nqn.2026-11.io.nvmfd.test:open
CLOSED_NQN=nqn.2026-11.io.nvmfd.test:closed
ALLOWED_HOST=nqn.2026-11.io.nvmfd.test:allowed-host
AUTH_NQN=nqn.2026-11.io.nvmfd.test:auth
AUTH_HOST=nqn.2026-11.io.nvmfd.test:auth-host
NOKEY_HOST=nqn.2026-11.io.nvmfd.test:nokey-host
INLINE=4096
MAXH2C=16384
QDEPTH=64
NS_SIZE=16777216

test_tmpdir bad-input || exit 1
AUTH_KEY=$(dhchap_gen_key 01) && CTRL_KEY=$(dhchap_gen_key 00) || exit 99

# shellcheck disable=SC2317  # called by daemon_start_or_skip
write_config() {	# PORT
	cat >"$tmp/nvmfd.yaml" <<EOF
workers: 2
ports:
  - id: 1
    address: 127.0.0.1
    port: $1
    inline_data_size: $INLINE
    maxh2cdata: $MAXH2C
    max_queue_depth: $QDEPTH
    header_digest: true
    data_digest: true
subsystems:
  - nqn: $OPEN_NQN
    namespaces:
      - {nsid: 1, backend: ram, size: $NS_SIZE}
  - nqn: $CLOSED_NQN
    hosts: [$ALLOWED_HOST]
    namespaces:
      - {nsid: 1, backend: ram, size: $NS_SIZE}
  - nqn: $AUTH_NQN
    hosts:
      - nqn: $AUTH_HOST
        dhchap_secret: "$AUTH_KEY"
        dhchap_ctrl_secret: "$CTRL_KEY"
      - $NOKEY_HOST
    namespaces:
      - {nsid: 1, backend: ram, size: 1M}
EOF
}

# Start on the first free port of 24480-24489.
daemon_start_or_skip write_config \
    "24480 24481 24482 24483 24484 24485 24486 24487 24488 24489"
echo "nvmfd (pid $daemon_pid) listening on 127.0.0.1:$daemon_port"

run_py() {
	if command -v timeout >/dev/null 2>&1; then
		timeout 170 python3 "$@"
	else
		python3 "$@"
	fi
}

run_py "$here/bad_input.py" --addr 127.0.0.1 --port "$daemon_port" \
    --open-nqn "$OPEN_NQN" --closed-nqn "$CLOSED_NQN" \
    --allowed-host "$ALLOWED_HOST" --inline-data-size "$INLINE" \
    --maxh2cdata "$MAXH2C" --max-queue-depth "$QDEPTH" --ns-size "$NS_SIZE" \
    --pid "$daemon_pid" --auth-nqn "$AUTH_NQN" --auth-host "$AUTH_HOST" \
    --auth-key "$AUTH_KEY" --auth-ctrl-key "$CTRL_KEY" \
    --auth-nokey-host "$NOKEY_HOST" ||
    status=1

# No secret in the log: not the interchange form, nor its base64 alone,
# nor the secret's bytes in hex.
for key in "$AUTH_KEY" "$CTRL_KEY"; do
	b64=${key#DHHC-1:??:}
	b64=${b64%:}
	hex=$(python3 -c 'import base64, sys
print(base64.b64decode(sys.argv[1])[:-4].hex())' "$b64")
	for s in "$b64" "$(echo "$b64" | cut -c1-16)" "$hex" \
	    "$(echo "$hex" | cut -c1-16)"; do
		grep -qiF -e "$s" "$tmp/nvmfd.log" &&
		    fail "a DH-HMAC-CHAP secret is in the daemon's log"
	done
done

test_finish
