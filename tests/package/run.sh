#!/usr/bin/env bash
# The .deb on this machine, end to end (docs/packaging.md): build it from the already-built
# debug binary (no release build in CI: cargo-deb --no-build, the binary stripped), lintian,
# `apt install ./r58_*.deb`, `systemd-analyze verify` and `security` on the installed unit,
# run the installed binary as the r58 user the way the unit does (its ExecStart, User,
# WorkingDirectory, no capabilities, no new privileges) on free loopback ports and GET
# /healthz, stop it with SIGTERM (exit 0), upgrade to a rebuilt package with an edited
# /etc/r58/r58.toml (kept), purge (nothing left but the r58 user, as policy allows).
#
# It installs and purges a system package and adds a system user: it runs only with CI=true
# or R58_PACKAGE_TEST=1, as root, and refuses when r58 is already installed.
# Needs: cargo-deb (pinned in .ci/run), dpkg, apt, lintian, systemd-analyze, setpriv, curl.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ "${CI:-}" != true && "${R58_PACKAGE_TEST:-}" != 1 ]]; then
    echo "SKIPPED: installs a package; set R58_PACKAGE_TEST=1 (or CI=true) to run it"
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    echo "tests/package/run.sh: must run as root (it installs a package)" >&2
    exit 1
fi
if dpkg-query -W -f='${Status}' r58 2>/dev/null | grep -q "installed"; then
    echo "tests/package/run.sh: r58 is already installed here; not touching it" >&2
    exit 1
fi
for tool in cargo-deb lintian systemd-analyze setpriv curl python3; do
    command -v "$tool" >/dev/null || { echo "tests/package/run.sh: $tool is missing (.ci/run installs it)" >&2; exit 1; }
done

target_dir="${CARGO_TARGET_DIR:-target}"
[[ "$target_dir" == /* ]] || target_dir="$PWD/$target_dir"
binary="${R58_BIN:-$target_dir/debug/r58}"
[[ -x "$binary" ]] || { echo "tests/package/run.sh: no binary at $binary (cargo build first)" >&2; exit 1; }

work=$(mktemp -d /tmp/r58-package.XXXXXX)
server_pid=""
cleanup() {
    local rc=$?
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    if dpkg-query -W -f='${Status}' r58 2>/dev/null | grep -q "installed\|config-files"; then
        apt-get purge -y -q r58 >/dev/null 2>&1 || dpkg --purge r58 >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
step() { printf '\n--- package: %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# cargo-deb packages target/<profile>/r58 of the target dir it is given: a staging dir that
# holds the debug binary as the `release` profile's (cargo-deb refuses the dev profile).
build_deb() {
    local deb_version=$1
    mkdir -p "$work/stage/release" "$work/out-$deb_version"
    cp "$binary" "$work/stage/release/r58"
    CARGO_TARGET_DIR="$work/stage" cargo deb --no-build --profile release \
        --no-separate-debug-symbols --strip --fast \
        --deb-version "$deb_version" -o "$work/out-$deb_version/" >/dev/null
    ls "$work/out-$deb_version"/r58_*.deb
}

step "build the .deb from $binary"
deb1=$(build_deb "$version~ci1-1")
dpkg-deb --info "$deb1"
dpkg-deb --contents "$deb1"

step "lintian (overrides, each explained: packaging/lintian-overrides)"
lintian --fail-on error,warning "$deb1"

step "apt install $deb1"
apt-get install -y -q "$deb1"
/usr/bin/r58 --version
getent passwd r58 || fail "no r58 user"
id r58
[[ $(stat -c %U:%G:%a /var/lib/r58) == r58:r58:750 ]] || fail "/var/lib/r58: $(stat -c %U:%G:%a /var/lib/r58)"
dpkg-query -W -f='${Conffiles}\n' r58 | grep -q "/etc/r58/r58.toml" || fail "/etc/r58/r58.toml is not a conffile"
unit=$(dpkg -L r58 | grep '/systemd/system/r58.service$')
/usr/bin/r58 check-config /etc/r58/r58.toml

step "systemd-analyze verify $unit"
systemd-analyze verify "$unit"
step "systemd-analyze security --offline=yes $unit"
systemd-analyze security --offline=yes "$unit" | tail -1

step "run the installed binary as r58, the way the unit does"
free_port() { python3 -c 'import socket,sys; s=socket.socket(type=getattr(socket,"SOCK_"+sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
http_port=$(free_port STREAM)
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
workdir=$(sed -n 's/^WorkingDirectory=//p' "$unit")
environment=$(sed -n 's/^Environment=//p' "$unit")
# The unit's command and environment with free loopback ports (flags beat the file) and no
# test cameras.
# shellcheck disable=SC2086
(cd "$workdir" && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin $environment \
    setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs \
    --inh-caps=-all --bounding-set=-all \
    $exec_start --listen "127.0.0.1:$http_port" --webrtc-udp "127.0.0.1:$(free_port DGRAM)" \
    --rtsp-listen "127.0.0.1:$(free_port STREAM)" --test-cameras 0) >"$work/server.log" 2>&1 &
server_pid=$!
ok=""
for _ in $(seq 100); do
    if curl -fsS "http://127.0.0.1:$http_port/healthz" 2>/dev/null | grep -qx ok; then ok=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
done
[[ -n "$ok" ]] || { cat "$work/server.log"; fail "no /healthz answer from the installed r58"; }
[[ $(ps -o user= -p "$server_pid") == r58 ]] || fail "runs as $(ps -o user= -p "$server_pid")"
grep -q "^CapEff:\s*0*$" "/proc/$server_pid/status" || fail "has capabilities: $(grep CapEff "/proc/$server_pid/status")"
echo "GET /healthz: ok (pid $server_pid, user r58, no capabilities)"
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[[ $rc == 0 ]] || { cat "$work/server.log"; fail "SIGTERM: exit $rc"; }
grep -q "r58 stopped" "$work/server.log" || { cat "$work/server.log"; fail "no graceful stop in the log"; }
echo "SIGTERM: graceful stop, exit 0"

step "upgrade to a rebuilt package with an edited /etc/r58/r58.toml"
sed -i 's/^# max_sessions = 1000$/max_sessions = 321/' /etc/r58/r58.toml
grep -qx "max_sessions = 321" /etc/r58/r58.toml || fail "could not edit the config"
deb2=$(build_deb "$version~ci2-1")
apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$deb2"
[[ $(dpkg-query -W -f='${Version}' r58) == "$version~ci2-1" ]] || fail "not upgraded"
grep -qx "max_sessions = 321" /etc/r58/r58.toml || fail "the upgrade lost the operator's edit"
/usr/bin/r58 check-config /etc/r58/r58.toml | grep -q valid
echo "upgraded to $version~ci2-1; /etc/r58/r58.toml kept its edit"

step "purge"
touch /var/lib/r58/recording-leftover.mp4
apt-get purge -y -q r58
dpkg-query -W -f='${Status}' r58 2>/dev/null | grep -q "installed\|config-files" && fail "r58 still known to dpkg"
for path in /usr/bin/r58 "$unit" /etc/r58 /var/lib/r58 /usr/share/doc/r58 \
    /etc/systemd/system/multi-user.target.wants/r58.service; do
    [[ ! -e "$path" ]] || fail "$path is left after purge"
done
# Kept on purpose (Debian policy: a system user is not removed; its uid must not be reused).
getent passwd r58 >/dev/null && echo "left as policy allows: the r58 system user"
echo "purged: nothing else left"
