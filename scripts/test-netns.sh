#!/usr/bin/env bash
# Runs a command in a network namespace of its own: loopback, and one end of a veth pair (both
# ends inside) with a test address (198.18.0.1/24, the benchmarking range of RFC 2544) as the
# default route. (A veth pair rather than a dummy interface: not every kernel has the dummy
# module.)
#
# Why: browsers, pion and other WebRTC stacks gather host candidates on every interface, so a
# test run on the machine's own network would answer ICE checks on its real interface address.
# Inside this namespace the only addresses are loopback and the test one; nothing a test sends
# can leave the namespace (the pair's other end has no address and forwards nothing). Tests that build their
# own topologies (`ip netns add`, veth pairs) work from here as before.
#
# Needs root (unshare --net); without it the command runs as it is, with a warning, except in CI.
set -euo pipefail
if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi
if [[ "$(id -u)" != 0 ]] || ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
    if [[ "${CI:-}" == true ]]; then
        echo "$0: needs root, unshare and ip (iproute2) in CI" >&2
        exit 1
    fi
    echo "WARNING: not root (or no unshare/ip): running without a network namespace of its own" >&2
    exec "$@"
fi
exec unshare --net -- bash -c '
    set -e
    ip link set lo up
    ip link add r58test0 type veth peer name r58test1
    ip addr add 198.18.0.1/24 dev r58test0
    ip link set r58test1 up
    ip link set r58test0 up
    ip route add default dev r58test0
    exec "$@"
' r58-test-netns "$@"
