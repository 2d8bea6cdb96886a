#!/usr/bin/env bash
# Runs the fan-out benchmark (r58 and, when installed, Janus as the peer SFU) and rewrites the
# "Fan-out over UDP" numbers in docs/benchmarks.md, with docs/fanout.svg.
#
#   scripts/bench.sh            the sweep (minutes; root for the network namespace)
#   scripts/bench.sh --smoke    a few seconds, debug build, no peer, docs untouched (CI)
#
# Environment: BENCH_SIZES (default 100,250,500,1000,1500,2000,2500), BENCH_DURATION (seconds per
# step, default 10), JANUS_BIN (default /usr/bin/janus when present), CARGO_TARGET_DIR,
# BENCH_NO_BUILD=1 to use the release binaries already built.
#
# BENCH_PACE (publisher pacing factor, default 0: bursts), BENCH_TOPOLOGY (nic, the default;
# split; local: see below), BENCH_USO=1 (with split: leave UDP segmentation offload on the
# veth), BENCH_SERVER_CPUS (a taskset list for the servers, default 1; with 0,1 r58 runs two
# media threads, sharing core 0 with the generator).
#
# The server runs pinned to core 1 and the generator to core 0, both at nice -10 so parallel
# work on a shared machine does not take their cores. Janus never gathers ICE candidates on a
# loopback interface, so the servers run in a network namespace of their own (created here,
# removed at exit) on a veth address, 10.58.0.1. Traffic never leaves the host.
#
#   nic    The generator in a second namespace (10.58.0.2) behind the veth pair, whose
#          receiving end is served by a threaded NAPI context pinned to the generator's core:
#          the server's core sends (up to the queue of its "NIC", the veth with a 50000-packet
#          pfifo), the generator's core receives, as between two hosts with a NIC that
#          segments UDP GSO runs itself (USO). The server's core also pays one wake-up of the
#          receiving thread per send (an inter-processor interrupt, a hypervisor exit here) that
#          a NIC's doorbell would not cost.
#   split  Two namespaces, the receive work moved by RPS (one cross-core interrupt per
#          packet); GSO runs cut into datagrams on the server's core unless BENCH_USO=1.
#   local  One namespace: the loopback path, where the kernel delivers into the generator's
#          sockets on the server's core (its receive work counts as the server's).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in
    /*) ;;
    *) TARGET_DIR="$PWD/$TARGET_DIR" ;;
esac

if [[ "${1:-}" == "--smoke" ]]; then
    cargo build --workspace --bins --tests
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    "$TARGET_DIR/debug/fanout" --server-bin "$TARGET_DIR/debug/r58" --sizes 5 \
        --warmup 0.5 --duration 1 --json "$out/fanout.json" --markdown "$out/fanout.md" \
        --svg "$out/fanout.svg"
    grep -q '"server": "r58"' "$out/fanout.json"
    grep -q '<polyline' "$out/fanout.svg"
    echo "fanout smoke: ok"
    exit 0
fi

sizes="${BENCH_SIZES:-100,250,500,1000,1500,2000,2500}"
server_cpus="${BENCH_SERVER_CPUS:-1}"
duration="${BENCH_DURATION:-10}"
janus_bin="${JANUS_BIN:-/usr/bin/janus}"

if [[ "${BENCH_NO_BUILD:-}" != 1 ]]; then
    # Both binaries this script runs: the server and the load generator (`--bin r58` alone
    # skipped `fanout`, which a fresh clone then did not have).
    cargo build --release -p r58 -p bench-tools --bins
fi
out="$TARGET_DIR/bench"
mkdir -p "$out"

commit=$(git rev-parse --short HEAD)
dirty=$(git diff --quiet && echo "" || echo " (with uncommitted changes)")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
machine="$(date -u +%Y-%m-%d), commit $commit$dirty, $(nproc) x $cpu, Linux $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg). Release build; server on core(s) $server_cpus, generator on core 0, both nice -10; $duration s measured per step after 2 s warm-up."

peer_args=()
ns_exec=()
place_args=()
topology="r58 only, everything on loopback"
if [[ $(id -u) == 0 ]] && ip netns add "r58srv-$$" 2>/dev/null; then
    srv="r58srv-$$"
    trap 'ip netns del "$srv" 2>/dev/null || true; ip netns del "r58gen-$$" 2>/dev/null || true' EXIT
    ip -n "$srv" link set lo up
    case "${BENCH_TOPOLOGY:-nic}" in
    nic | split)
        # The servers in one namespace (10.58.0.1), the generator in another (10.58.0.2),
        # joined by a veth pair.
        gen="r58gen-$$"
        ip netns add "$gen"
        ip -n "$gen" link set lo up
        ip link add r58s netns "$srv" type veth peer name r58g netns "$gen"
        ip -n "$srv" addr add 10.58.0.1/24 dev r58s
        ip -n "$gen" addr add 10.58.0.2/24 dev r58g
        ip -n "$srv" link set r58s up
        ip -n "$gen" link set r58g up
        ns_exec=(ip netns exec "$gen")
        place_args=(--server-netns "$srv" --server-ip 10.58.0.1 --client-ip 10.58.0.2)
        ;;&
    nic)
        # GRO (with UDP GRO forwarding, so whole GSO runs qualify) gives the generator's veth
        # a NAPI context; threaded, that context is a kernel thread pinned to the generator's
        # core, and the delivery into its sockets happens there.
        ip netns exec "$gen" ethtool -K r58g gro on rx-udp-gro-forwarding on >/dev/null
        ip netns exec "$gen" sh -c 'echo 1 > /sys/class/net/r58g/threaded'
        for pid in $(pgrep '^napi/r58g'); do taskset -p -c 0 "$pid" >/dev/null; done
        # The veth's ring holds 256 packets and drops beyond; a queue in front of it stands
        # in for a NIC's transmit queue, which holds a keyframe's burst.
        ip netns exec "$srv" tc qdisc replace dev r58s root pfifo limit 50000
        topology="server and generator in two network namespaces joined by a veth pair; the generator's receive work on its own core (threaded NAPI); GSO runs cross the veth whole (a NIC with UDP segmentation offload)"
        ;;
    split)
        # RPS steers each side's receive work to its own core.
        ip netns exec "$gen" sh -c 'echo 1 > /sys/class/net/r58g/queues/rx-0/rps_cpus'  # core 0
        ip netns exec "$srv" sh -c 'echo 2 > /sys/class/net/r58s/queues/rx-0/rps_cpus'  # core 1
        if [[ "${BENCH_USO:-}" == 1 ]]; then
            segmentation="GSO runs cross the veth whole (a NIC with UDP segmentation offload)"
        else
            # Cut GSO runs into datagrams on the server's core, as for a NIC without UDP
            # segmentation offload: the conservative case.
            ip netns exec "$srv" ethtool -K r58s tx-udp-segmentation off >/dev/null
            segmentation="GSO runs cut into datagrams on the server's core (a NIC without segmentation offload)"
        fi
        topology="server and generator in two network namespaces joined by a veth pair, RPS steering each side's receive work to its own core; $segmentation"
        ;;
    local)
        # One namespace with a veth address for the servers and the generator alike: traffic
        # between local addresses takes the loopback path (the kernel delivers into the
        # generator's sockets in the sender's context, on the server's core).
        ip -n "$srv" link add r58b0 type veth peer name r58b1
        ip -n "$srv" addr add 10.58.0.1/24 dev r58b0
        ip -n "$srv" link set r58b0 up
        ip -n "$srv" link set r58b1 up
        topology="one network namespace, local delivery (loopback path) to 10.58.0.1"
        ns_exec=(ip netns exec "$srv")
        place_args=(--server-ip 10.58.0.1)
        ;;
    *)
        echo "bench: BENCH_TOPOLOGY must be nic, split or local" >&2
        exit 2
        ;;
    esac
    if [[ -x "$janus_bin" ]]; then
        peer_args=(--janus-bin "$janus_bin")
    else
        echo "bench: no peer SFU ($janus_bin not installed): r58 only" >&2
    fi
else
    echo "bench: no peer SFU (needs root and ip netns): r58 only" >&2
fi
pace="${BENCH_PACE:-0}"
if [[ "$pace" == 0 ]]; then
    publisher="publisher sends each frame's packets back to back"
else
    publisher="publisher paced at $pace x its bitrate"
fi
machine="$machine Topology: $topology; $publisher."

ulimit -n 20000 2>/dev/null || true
"${ns_exec[@]}" nice -n -10 taskset -c 0 "$TARGET_DIR/release/fanout" \
    --server-bin "$TARGET_DIR/release/r58" --server-core 1 --server-cpus "$server_cpus" --sizes "$sizes" \
    --duration "$duration" --pace "$pace" "${place_args[@]}" "${peer_args[@]}" --machine "$machine" \
    --json "$out/fanout.json" --markdown "$out/fanout.md" --svg docs/fanout.svg

# Replace what lies between the markers in docs/benchmarks.md with the new section.
python3 - "$out/fanout.md" docs/benchmarks.md <<'PY'
import sys
section, doc = open(sys.argv[1]).read(), sys.argv[2]
text = open(doc).read()
begin, end = "<!-- fanout:begin -->", "<!-- fanout:end -->"
if begin not in text or end not in text:
    sys.exit(f"{doc} lacks the {begin} / {end} markers")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(head + begin + "\n" + section.rstrip() + "\n" + end + tail)
PY
echo "bench: results in $out/fanout.json, docs/benchmarks.md and docs/fanout.svg updated"
