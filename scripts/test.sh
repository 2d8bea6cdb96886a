#!/usr/bin/env bash
# Runs every test of r58: formatting, lints, the Rust tests, then the real server against
# aiortc (tests/interop) and against Chromium (tests/e2e).
#
# Needs: the Rust toolchain with cargo-nextest (else plain cargo test), python3, and for the
# browser tests Debian's chromium and node/npm. `.ci/run` installs those on a fresh Debian 12.
# The Python venv (.venv) and tests/e2e/node_modules are created here when missing.
# Set SKIP_E2E=1 to leave out the browser tests (never skipped when CI=true).
# tests/interop/test_turn.py starts its own coturn (`turnserver`, Debian's coturn package) on a
# free loopback port; without turnserver it is skipped (it fails instead when CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
# Absolute, so every test finds the binary whatever its working folder.
case "$TARGET_DIR" in
    /*) ;;
    *) TARGET_DIR="$PWD/$TARGET_DIR" ;;
esac
export R58_BIN="${R58_BIN:-$TARGET_DIR/debug/r58}"

section_name=""
section_start=0
total_start=$(date +%s)
section() {
    local now
    now=$(date +%s)
    if [[ -n "$section_name" ]]; then
        echo "--- $section_name: $((now - section_start)) s"
    fi
    section_name="$1"
    section_start=$now
    [[ -n "$section_name" ]] && printf '\n=== %s\n' "$section_name"
    return 0
}
finish() {
    local rc=$?
    section ""
    if [[ $rc -eq 0 ]]; then
        echo "=== scripts/test.sh: all passed in $(($(date +%s) - total_start)) s"
    else
        echo "=== scripts/test.sh: FAILED (exit $rc) in section '${failed_in:-?}'" >&2
    fi
}
trap 'failed_in=$section_name' ERR
trap finish EXIT

section "cargo fmt --check"
cargo fmt --all --check

section "web assets (npm ci --prefix web: hls.js, embedded by build.rs)"
if [[ ! -d web/node_modules ]] || [[ web/package-lock.json -nt web/node_modules ]]; then
    npm ci --prefix web --no-audit --no-fund
fi

section "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

section "Rust tests"
# (nextest skips doc tests; there are none yet: add `cargo test --workspace --doc` with the first)
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace
fi

section "build the r58 binary"
# --workspace --tests: the same features (dev-dependencies included) as the test build above,
# so this only links what is missing instead of compiling the dependencies again
cargo build --workspace --bins --tests

section "the .deb: build (from the debug binary), lintian, apt install, run as r58, upgrade, purge"
# Installs and purges the r58 package on this machine, so only with CI=true or
# R58_PACKAGE_TEST=1 (tests/README.md); ~1 minute. The release packages are scripts/package.sh's.
# In the test network namespace: the packaged config turns mDNS and LAN HTTPS on, whose
# multicast and :8443 then stay inside it.
scripts/test-netns.sh tests/package/run.sh

section "churn and soak (real sessions against the binary, one test at a time)"
# Timing-sensitive (loss, RSS), so #[ignore]d in the workspace run and run alone here; the
# 30-minute soak is R58_SOAK_SECS=1800 R58_SOAK_RECONNECT_SECS=60 (docs/reliability.md).
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run -p r58 --test churn --run-ignored only --test-threads 1 --no-capture
else
    cargo test -p r58 --test churn -- --ignored --test-threads 1 --nocapture
fi

section "LL-HLS behind a cache (nginx and Varnish, 10/50/200 emulated players, with and without the cache)"
# Hundreds of connections and a behind-live bound, so #[ignore]d in the workspace run and run
# alone here, one test at a time (--no-capture runs them serially; ~50 s nginx, ~25 s
# Varnish); needs Debian's nginx and varnish (.ci/run installs them; without one its test says
# so and passes, unless CI=true). The benchmark of docs/benchmarks.md is the same tests with
# R58_CDN_PLAYERS and R58_CDN_SECS.
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run -p r58 --test hls_cdn --run-ignored only --no-capture
else
    cargo test -p r58 --test hls_cdn -- --ignored --test-threads 1 --nocapture
fi

section "benchmark smoke: fan-out load generator (r58, 5 subscribers) and hot_path (quick, debug), seconds"
scripts/bench-all.sh --smoke

section "fuzz targets (cargo-fuzz, ${R58_FUZZ_SECS:-10} s each)"
# Every target of fuzz/ built once (release, AddressSanitizer), then run from its seeds for
# R58_FUZZ_SECS seconds; a crash, a failed invariant or a hang fails the run (the input is in
# fuzz/artifacts/, the log in fuzz/logs/). The 10-minute runs are in docs/reliability.md.
# 10 s rather than issue 10's ~20 s: the sanitizer build of the fuzz crate already takes several
# minutes on a 2-core machine (docs/reliability.md, "Fuzzing in CI"); R58_FUZZ_SECS=20 for more.
if cargo fuzz --version >/dev/null 2>&1; then
    fuzz/run-all.sh "${R58_FUZZ_SECS:-10}"
elif [[ "${CI:-}" == true ]]; then
    echo "cargo-fuzz is missing (.ci/run installs it)" >&2
    exit 1
else
    echo "SKIPPED: cargo-fuzz not installed (cargo install cargo-fuzz --version 0.13.2 --locked)"
fi

section "interop tests (aiortc)"
req=tests/interop/requirements.txt
if [[ ! -x .venv/bin/python ]] || ! cmp -s "$req" .venv/.r58-requirements; then
    echo "setting up .venv from $req (python3 -m venv .venv && .venv/bin/pip install -r $req)"
    python3 -m venv .venv
    .venv/bin/pip install --disable-pip-version-check --no-input -q -r "$req"
    cp "$req" .venv/.r58-requirements
fi
# In a network namespace of the run's own (scripts/test-netns.sh): aiortc, GStreamer, pion and
# ffmpeg then have no address but loopback and a test one to gather candidates on or send to.
scripts/test-netns.sh .venv/bin/python -m pytest -p no:cacheprovider tests/interop -v -rP

section "browser tests (Chromium)"
chromium_bin=/usr/bin/chromium
if [[ "${SKIP_E2E:-}" == 1 && "${CI:-}" != true ]]; then
    echo "SKIPPED: SKIP_E2E=1"
elif [[ ! -x "$chromium_bin" ]] && [[ "${CI:-}" != true ]]; then
    echo "SKIPPED: $chromium_bin not found (apt-get install chromium, or run .ci/run)"
else
    (
        cd tests/e2e
        if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules ]]; then
            npm ci --no-audit --no-fund
        fi
        # The browsers gather ICE host candidates on every interface: in a network namespace of
        # the run's own (loopback and a test address only) they cannot use the machine's.
        # On a failure the failing tests' reports are printed again at the end, where a
        # truncated CI log still shows them.
        log=$(mktemp)
        if ! NO_UPDATE_NOTIFIER=1 ../../scripts/test-netns.sh npm test 2>&1 | tee "$log"; then
            echo "--- the failing browser tests, again:"
            awk '/^not ok/ { show = 1 } show { print } /^  \.\.\.$/ { show = 0 }' "$log"
            rm -f "$log"
            exit 1
        fi
        rm -f "$log"
    )
fi
