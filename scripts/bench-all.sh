#!/usr/bin/env bash
# The whole benchmark suite with one command: the fan-out sweep against Janus (scripts/bench.sh,
# which rewrites its own section of docs/benchmarks.md), the micro-benchmarks (hot_path,
# udp_send, fanout_inprocess), glass-to-glass with two Chromiums (tests/e2e/g2g.test.mjs), and
# the LL-HLS latencies (hls_latency, and capture -> playing in hls.js from tests/e2e/hls.test.mjs).
# Rewrites the "Whole suite" section of docs/benchmarks.md (between the suite markers) with the
# machine, commit and load average next to each part.
#
#   scripts/bench-all.sh           everything (tens of minutes; root for the fan-out namespace)
#   scripts/bench-all.sh --smoke   seconds: the fan-out smoke and hot_path in quick mode, debug
#                                  build, docs untouched (CI; glass-to-glass runs with the
#                                  browser tests)
#
# Environment: BENCH_SKIP_FANOUT=1 to leave the sweep out (BENCH_SIZES, BENCH_DURATION,
# JANUS_BIN go to scripts/bench.sh), G2G_FRAMES (default 600 per case), CHROMIUM,
# CARGO_TARGET_DIR, BENCH_NO_BUILD=1 to use the release binaries already built.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in
    /*) ;;
    *) TARGET_DIR="$PWD/$TARGET_DIR" ;;
esac
load() { cut -d' ' -f1-3 /proc/loadavg; }

if [[ "${1:-}" == "--smoke" ]]; then
    scripts/bench.sh --smoke
    # Debug build, a tenth of the iterations: proves the benchmark runs, measures nothing.
    # --workspace: the features of the workspace test build, so nothing is compiled again
    cargo test --workspace --bench hot_path -- quick
    echo "bench-all smoke: ok"
    exit 0
fi

out="$TARGET_DIR/bench"
mkdir -p "$out"
started_load=$(load)
commit=$(git rev-parse --short HEAD)
dirty=$(git diff --quiet && echo "" || echo " (with uncommitted changes)")

if [[ "${BENCH_SKIP_FANOUT:-}" != 1 ]]; then
    scripts/bench.sh
elif [[ "${BENCH_NO_BUILD:-}" != 1 ]]; then
    cargo build --release --bin r58 -p r58
fi

# Each part's output and the load average before it, for the doc.
run() {
    local name=$1
    shift
    echo "bench-all: $name: $*" >&2
    load >"$out/$name.load"
    "$@" 2>&1 | tee "$out/$name.txt"
}

run hot_path cargo bench --bench hot_path
run udp_send cargo bench --bench udp_send -- 500
run fanout_inprocess cargo bench --bench fanout_inprocess -- 10,100,500,1000,2000
run hls_latency cargo bench --bench hls_latency -- 150

(
    cd tests/e2e
    if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules ]]; then
        npm ci --no-audit --no-fund
    fi
    export R58_BIN="$TARGET_DIR/release/r58"
    load >"$out/g2g.load"
    G2G_FRAMES="${G2G_FRAMES:-600}" G2G_JSON="$out/g2g.json" node --test g2g.test.mjs \
        >"$out/g2g.txt" 2>&1 || { cat "$out/g2g.txt"; exit 1; }
    grep 'glass-to-glass' "$out/g2g.txt" || true
    load >"$out/hlsjs.load"
    node --test hls.test.mjs >"$out/hlsjs.txt" 2>&1 || { cat "$out/hlsjs.txt"; exit 1; }
    grep 'capture->playing' "$out/hlsjs.txt" || true
)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
machine="$(date -u '+%Y-%m-%d %H:%M') UTC, commit $commit$dirty, $(nproc) x $cpu, Linux $(uname -r); load average at start $started_load, at end $(load). Release build of r58."

python3 - "$out" docs/benchmarks.md "$machine" <<'PY'
import json, re, sys
out, doc, machine = sys.argv[1], sys.argv[2], sys.argv[3]

def read(name):
    return open(f"{out}/{name}").read()

def tidy(line):
    # TAP comment prefix; hls.js error messages are long: keep their count.
    line = re.sub(r"^# ", "", line)
    m = re.search(r", errors: (\[.*\])$", line)
    if m:
        listed = m.group(1)
        try:
            count = len(json.loads(listed))
        except ValueError:  # the TAP output escapes the quotes once more
            count = listed.count('","') + 1
        line = line[: m.start()] + f", hls.js errors: {count}"
    return line

def block(name, keep=lambda l: True):
    lines = [tidy(l) for l in read(f"{name}.txt").splitlines()
             if keep(l) and not re.match(r"\s*(Compiling|Finished|Running|warning|Blocking|\[OpenH264\])", l)]
    return "```\n" + "\n".join(lines).strip() + "\n```\n"

g2g = json.loads(read("g2g.json"))
rows = []
labels = {"direct": "Chromium -> r58 -> Chromium (host candidates)",
          "turn": "the same, both browsers relayed through coturn",
          "p2p": "Chromium -> Chromium directly, no server (baseline)"}
fmt = lambda s: "-" if not s else f"{s['p50']:.0f} / {s['p95']:.0f} / {s['max']:.0f}"
for key in ("direct", "turn", "p2p"):
    r = g2g.get(key)
    if not r:
        continue
    rows.append(f"| {labels[key]} | {r['frames']} ({r['unreadable']} unreadable) | "
                f"**{fmt(r['drawnToShown'])}** | {fmt(r['drawnToExpectedDisplay'])} | "
                f"{fmt(r['drawnToReceived'])} | {fmt(r['receivedToShown'])} | {r['loadavg']} |")

section = f"""{machine}

Glass-to-glass (`G2G_FRAMES=... node --test g2g.test.mjs` in tests/e2e), {g2g['fps']} fps canvas clock, 640x360 H.264; ms, p50 / p95 / max:

| path | frames read | drawn -> shown | drawn -> expected display | drawn -> last packet received | received -> shown | load avg (before -> after) |
|---|---:|---:|---:|---:|---:|---|
""" + "\n".join(rows) + f"""

Micro-benchmarks (`cargo bench --bench hot_path`), load average before {read('hot_path.load').strip()}:

{block('hot_path')}
Batch send (`cargo bench --bench udp_send -- 500`), load average before {read('udp_send.load').strip()}:

{block('udp_send')}
In-process fan-out (`cargo bench --bench fanout_inprocess -- 10,100,500,1000,2000`), load average before {read('fanout_inprocess.load').strip()}:

{block('fanout_inprocess')}
LL-HLS (`cargo bench --bench hls_latency -- 150`), load average before {read('hls_latency.load').strip()}:

{block('hls_latency')}
Capture -> playing in hls.js (`node --test hls.test.mjs`), load average before {read('hlsjs.load').strip()}:

{block('hlsjs', lambda l: 'capture->playing' in l)}"""

text = open(doc).read()
begin, end = "<!-- suite:begin -->", "<!-- suite:end -->"
if begin not in text or end not in text:
    sys.exit(f"{doc} lacks the {begin} / {end} markers")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(head + begin + "\n" + section.rstrip() + "\n" + end + tail)
PY
echo "bench-all: docs/benchmarks.md updated (raw output in $out)"
