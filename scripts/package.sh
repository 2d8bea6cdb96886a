#!/usr/bin/env bash
# Release packages of r58 (docs/packaging.md): the `dist` profile (release + thin LTO) built
# for amd64 or arm64 (cross, with Debian's gcc-aarch64-linux-gnu), then cargo-deb makes
#   r58_<version>_<arch>.deb          the stripped binary, the unit, /etc/r58/r58.toml ...
#   r58-dbgsym_<version>_<arch>.ddeb  its debug info (/usr/lib/debug/.build-id/...)
# and checks them: dpkg-deb --info/--contents, the binary's size, and `r58 --version` (under
# qemu-aarch64 for arm64).
#
#   scripts/package.sh [--arch amd64|arm64] [--out DIR]
#
# Needs cargo-deb (the version .ci/run pins), npm ci --prefix web (hls.js is built in), and for
# arm64: `rustup target add aarch64-unknown-linux-gnu`, `apt-get install gcc-aarch64-linux-gnu
# g++-aarch64-linux-gnu libclang-dev qemu-user`. A release-time script: CI builds no release
# binary (tests/package/run.sh packages the debug one).
set -euo pipefail
cd "$(dirname "$0")/.."

arch=amd64
out=target/packages
while [[ $# -gt 0 ]]; do
    case "$1" in
        --arch) arch=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: scripts/package.sh [--arch amd64|arm64] [--out DIR]" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"

target_args=()
case "$arch" in
    amd64) triple=x86_64-unknown-linux-gnu ;;
    arm64)
        triple=aarch64-unknown-linux-gnu
        rustup target list --installed 2>/dev/null | grep -qx "$triple" || {
            echo "the Rust target $triple is missing: rustup target add $triple" >&2; exit 1; }
        command -v aarch64-linux-gnu-gcc >/dev/null || {
            echo "aarch64-linux-gnu-gcc is missing: apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu" >&2; exit 1; }
        export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
        export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
        export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
        export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
        # bindgen (the V4L2 bindings) reads the arm64 headers of the cross toolchain.
        export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu"
        target_args=(--target "$triple")
        ;;
    *) echo "unknown --arch $arch (amd64 or arm64)" >&2; exit 2 ;;
esac

# The commit --version prints, also when building from a tarball without .git.
R58_GIT_COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
export R58_GIT_COMMIT

start=$(date +%s)
cargo deb --locked --profile dist --dbgsym "${target_args[@]}" -o "$out/"
echo "built in $(($(date +%s) - start)) s"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
deb=$(ls -t "$out"/r58_"$version"-*_"$arch".deb | head -1)
dbgsym=$(ls -t "$out"/r58-dbgsym_"$version"-*_"$arch".*deb 2>/dev/null | head -1 || true)
dpkg-deb --info "$deb"
dpkg-deb --contents "$deb"
[[ -n "$dbgsym" ]] && dpkg-deb --contents "$dbgsym"

check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
dpkg-deb -x "$deb" "$check"
bin="$check/usr/bin/r58"
file "$bin" 2>/dev/null || true
size=$(stat -c %s "$bin")
echo "packaged binary: $size bytes ($((size / 1024 / 1024)) MiB); .deb: $(stat -c %s "$deb") bytes"
if readelf -S "$bin" | grep -q '\.debug_info'; then
    echo "the packaged binary still has .debug_info" >&2
    exit 1
fi
case "$arch" in
    amd64) "$bin" --version ;;
    arm64)
        command -v qemu-aarch64 >/dev/null || { echo "qemu-aarch64 is missing: apt-get install qemu-user" >&2; exit 1; }
        qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin" --version
        ;;
esac
