#!/usr/bin/env bash
# Runs the fan-out benchmark (r58 and, when installed, Janus as the peer SFU) and rewrites the
# "Fan-out over UDP" numbers in docs/benchmarks.md, with docs/fanout.svg.
#
#   scripts/bench.sh            the sweep (minutes; root for the network namespace)
#   scripts/bench.sh --smoke    a few seconds, debug build, no peer, docs untouched (CI)
#
# Environment: BENCH_SIZES (default 100,250,500,1000,2000,3000), BENCH_DURATION (seconds per
# step, default 10), JANUS_BIN (default /usr/bin/janus when present), CARGO_TARGET_DIR,
# BENCH_NO_BUILD=1 to use the release binaries already built.
#
# The server runs pinned to core 1 and the generator to core 0, both at nice -10 so parallel
# work on a shared machine does not take their cores. Janus never gathers ICE candidates on a
# loopback interface, so the whole run happens in a network namespace of its own (created here,
# removed at exit) with a veth pair whose address, 10.58.0.1, Janus uses; traffic never leaves
# the host either way.
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

sizes="${BENCH_SIZES:-100,250,500,1000,2000,3000}"
duration="${BENCH_DURATION:-10}"
janus_bin="${JANUS_BIN:-/usr/bin/janus}"

if [[ "${BENCH_NO_BUILD:-}" != 1 ]]; then
    cargo build --release --bin r58 -p r58 -p bench-tools
fi
out="$TARGET_DIR/bench"
mkdir -p "$out"

commit=$(git rev-parse --short HEAD)
dirty=$(git diff --quiet && echo "" || echo " (with uncommitted changes)")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
machine="$(date -u +%Y-%m-%d), commit $commit$dirty, $(nproc) x $cpu, Linux $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg). Release build; server on core 1, generator on core 0, both nice -10; $duration s measured per step after 2 s warm-up."

peer_args=()
ns_exec=()
if [[ -x "$janus_bin" ]] && [[ $(id -u) == 0 ]] && ip netns add "r58bench-$$" 2>/dev/null; then
    ns="r58bench-$$"
    trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
    ip -n "$ns" link set lo up
    ip -n "$ns" link add r58b0 type veth peer name r58b1
    ip -n "$ns" addr add 10.58.0.1/24 dev r58b0
    ip -n "$ns" link set r58b0 up
    ip -n "$ns" link set r58b1 up
    ns_exec=(ip netns exec "$ns")
    peer_args=(--janus-bin "$janus_bin" --janus-ip 10.58.0.1)
else
    echo "bench: no peer SFU (needs $janus_bin, root, and ip netns): r58 only" >&2
fi

ulimit -n 20000 2>/dev/null || true
"${ns_exec[@]}" nice -n -10 taskset -c 0 "$TARGET_DIR/release/fanout" \
    --server-bin "$TARGET_DIR/release/r58" --server-core 1 --sizes "$sizes" \
    --duration "$duration" "${peer_args[@]}" --machine "$machine" \
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
