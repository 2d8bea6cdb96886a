"""r58 handing out coturn credentials, and a guest really publishing through a real coturn.

A coturn (``turnserver``, Debian's ``coturn`` package) is started for this module on a free
loopback port with the TURN REST shared-secret scheme (``use-auth-secret``), relaying on
127.0.0.1. r58 runs with ``[turn] provider = "coturn"`` and the same secret (from a file). The
publisher is aiortc with ``iceTransportPolicy = relay`` and the servers from
``/api/turn-credentials``: it gathers only a relay candidate, so media can reach r58 only
through coturn. A WHEP viewer decodes the frames. Checked from three sides: the publisher's
nominated candidate pair is local type ``relay``; r58 saw the publisher's media arrive from a
port of coturn's relay range; coturn logged the allocation for the username r58 issued.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from aioice import turn as aioice_turn  # noqa: E402
from aiortc import RTCConfiguration, RTCIceServer  # noqa: E402
from aiortc.rtcconfiguration import RTCIceTransportPolicy  # noqa: E402
from r58client import WIDTH, HEIGHT, whep_play, whip_publish  # noqa: E402

from r58server import Server, free_port, launch  # noqa: E402

TURN_USER = "guest"


def stun_binding_ok(port: int) -> bool:
    """Sends a STUN Binding request; True when a Binding success answer comes back."""
    txid = os.urandom(12)
    request = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, txid)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(request, ("127.0.0.1", port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == txid


@dataclass
class Coturn:
    port: int
    secret: str
    relay_ports: range
    proc: subprocess.Popen
    log: Path
    cmd: list[str] = field(default_factory=list)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "(no coturn log)"


def start_coturn(work: Path, extra: list[str] | None = None) -> Coturn:
    """A turnserver on free loopback ports with a fresh shared secret (``extra``: more flags,
    e.g. TLS); fails the test when it does not answer STUN within 15 s."""
    exe = shutil.which("turnserver")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("turnserver not found: .ci/run installs Debian's coturn package")
        pytest.skip("turnserver not found (apt-get install coturn, or run .ci/run)")
    port = free_port((socket.SOCK_STREAM, socket.SOCK_DGRAM))  # coturn listens on both
    base = random.randrange(50000, 59000, 50)
    relay = range(base, base + 40)
    secret = secrets.token_hex(16)
    log = work / "turnserver.log"
    cmd = [
        exe, "-n",
        "--listening-ip=127.0.0.1", f"--listening-port={port}",
        "--relay-ip=127.0.0.1", f"--min-port={relay.start}", f"--max-port={relay.stop - 1}",
        "--use-auth-secret", f"--static-auth-secret={secret}", "--realm=r58.test",
        "--no-dtls", "--no-cli",
        # Only loopback exists here: let the relay reach r58 on 127.0.0.1 (never in production),
        # and nothing else (clients may offer this machine's own interface address too).
        "--allow-loopback-peers",
        "--denied-peer-ip=0.0.0.0-126.255.255.255", "--denied-peer-ip=128.0.0.0-255.255.255.255",
        f"--userdb={work / 'turndb'}", f"--pidfile={work / 'turnserver.pid'}",
        "--log-file=stdout", "--simple-log", "--verbose",
        *(extra or ["--no-tls"]),
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    srv = Coturn(port, secret, relay, proc, log, cmd)
    wait_for_stun(srv)
    print(f"coturn: {shlex.join(cmd)}")
    return srv


def wait_for_stun(srv: Coturn) -> None:
    proc, port = srv.proc, srv.port
    deadline = time.monotonic() + 15
    while not stun_binding_ok(port):
        if proc.poll() is not None:
            pytest.fail(f"turnserver exited with {proc.returncode}:\n{srv.log_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"turnserver did not answer STUN within 15 s:\n{srv.log_text()[-3000:]}")
        time.sleep(0.1)


def restart_coturn(srv: Coturn) -> None:
    """Stops and starts the same turnserver (same ports and secret): every allocation is gone."""
    stop_coturn(srv)
    with open(srv.log, "ab") as out:
        srv.proc = subprocess.Popen(srv.cmd, stdout=out, stderr=subprocess.STDOUT)
    wait_for_stun(srv)


def stop_coturn(srv: Coturn) -> None:
    srv.proc.send_signal(signal.SIGTERM)
    try:
        srv.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        srv.proc.wait()


@pytest.fixture(scope="module")
def coturn(tmp_path_factory) -> Coturn:
    srv = start_coturn(tmp_path_factory.mktemp("coturn"))
    yield srv
    stop_coturn(srv)


@pytest.fixture(scope="module")
def server(coturn: Coturn, tmp_path_factory) -> Server:
    work = tmp_path_factory.mktemp("r58-turn")
    (work / "turn.secret").write_text(coturn.secret + "\n")
    (work / "r58.toml").write_text(
        "[turn]\n"
        'provider = "coturn"\n'
        f'urls = ["turn:127.0.0.1:{coturn.port}?transport=udp"]\n'
        'secret_file = "turn.secret"\n'
        f'username = "{TURN_USER}"\n'
        "ttl_secs = 600\n"
        # Clients reach r58's host candidate through coturn here; r58's own relay is tested
        # below, with host candidates nobody can reach.
        'server_relay = "never"\n'
    )
    # The engine's debug lines name the address each session's media comes from.
    env = {"R58_LOG_LEVEL": "info,sfu::engine=debug"}
    with launch(["--config", str(work / "r58.toml")], work / "server.log", env) as srv:
        yield srv


async def close_all(*sessions) -> None:
    """Closes every session that was opened; a failure to close is printed, never raised (it
    must not hide the test's own failure)."""
    for s in sessions:
        if s is not None:
            try:
                await s.close()
            except Exception as e:
                print(f"cleanup: {e!r}")


def fetch_ice_servers(server: Server) -> list[dict]:
    with urllib.request.urlopen(f"{server.base}/api/turn-credentials", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers.get("Cache-Control") == "no-store"
        return json.loads(resp.read())["iceServers"]


def turn_entry(servers: list[dict]) -> dict:
    entries = [s for s in servers if any(u.startswith("turn:") for u in s["urls"])]
    assert len(entries) == 1, servers
    return entries[0]


def test_credentials_are_coturn_rest_credentials(server: Server, coturn: Coturn) -> None:
    entry = turn_entry(fetch_ice_servers(server))
    assert entry["urls"] == [f"turn:127.0.0.1:{coturn.port}?transport=udp"]
    expiry, user = entry["username"].split(":", 1)
    assert user == TURN_USER
    assert abs(int(expiry) - (time.time() + 600)) < 30, entry["username"]
    # Recomputed here with Python's hmac, independently of the Rust code.
    expected = base64.b64encode(
        hmac.new(coturn.secret.encode(), entry["username"].encode(), hashlib.sha1).digest()
    ).decode()
    assert entry["credential"] == expected


async def allocate(coturn: Coturn, username: str, password: str):
    """A TURN allocation with aioice's client; returns the relayed address or raises."""

    class Sink(asyncio.DatagramProtocol):
        pass

    transport, _ = await asyncio.wait_for(
        aioice_turn.create_turn_endpoint(
            Sink, ("127.0.0.1", coturn.port), username, password, transport="udp"
        ),
        5,
    )
    try:
        return transport.get_extra_info("sockname")
    finally:
        transport.close()


def test_coturn_accepts_issued_credentials_and_refuses_others(server: Server, coturn: Coturn):
    entry = turn_entry(fetch_ice_servers(server))
    relayed = asyncio.run(allocate(coturn, entry["username"], entry["credential"]))
    assert relayed[0] == "127.0.0.1" and relayed[1] in coturn.relay_ports, relayed

    # Tampered credential, and a correctly signed but expired username: coturn says 401.
    expired = f"{int(time.time()) - 60}:{TURN_USER}"
    expired_pw = base64.b64encode(
        hmac.new(coturn.secret.encode(), expired.encode(), hashlib.sha1).digest()
    ).decode()
    tampered = entry["credential"][:-2] + ("A=" if entry["credential"][-2] != "A" else "B=")
    for username, password in [(entry["username"], tampered), (expired, expired_pw)]:
        with pytest.raises(Exception) as refused:
            asyncio.run(allocate(coturn, username, password))
        assert "401" in str(refused.value) or "Unauthorized" in str(refused.value), repr(
            refused.value
        )


def test_relay_only_publisher_reaches_viewer_through_coturn(server: Server, coturn: Coturn):
    servers = fetch_ice_servers(server)
    config = RTCConfiguration(
        iceServers=[RTCIceServer(**s) for s in servers],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    )

    async def scenario() -> None:
        pub = viewer = None
        try:
            pub = await whip_publish(server.base, "turnguest", config=config)
            offer = pub.pc.localDescription.sdp
            types = re.findall(r"a=candidate:.* typ (\w+)", offer)
            assert types and set(types) == {"relay"}, f"offer candidates: {types}"
            viewer = await whep_play(server.base, "turnguest")
            deadline = time.monotonic() + 20
            while len(viewer.counters) < 30:
                assert not viewer.ended.is_set(), viewer.ended_how
                assert time.monotonic() < deadline, (
                    f"{len(viewer.counters)} frames with a readable counter in 20 s"
                )
                await asyncio.sleep(0.1)
            assert viewer.sizes[(WIDTH, HEIGHT)] >= 30, viewer.sizes
            # Counters increase: these are the publisher's frames, in order.
            values = [c for c, _ in viewer.counters]
            assert values == sorted(values), values[:40]

            # The publisher's selected (nominated) pair: relay on our side, r58's host candidate
            # on the other.
            ice = pub.pc.getTransceivers()[0].sender.transport.transport
            pairs = list(ice._connection._nominated.values())
            assert pairs, "no nominated candidate pair"
            pair = pairs[0]
            assert pair.local_candidate.type == "relay", pair
            assert pair.local_candidate.port in coturn.relay_ports, pair
            assert pair.remote_candidate.type == "host", pair
        finally:
            await close_all(viewer, pub)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    except BaseException:
        print(f"--- r58 log ---\n{server.log_text()[-4000:]}")
        print(f"--- coturn log ---\n{coturn.log_text()[-4000:]}")
        raise

    # r58's side: the publish session's media came from a port of coturn's relay range.
    text = re.sub(r"\x1b\[[0-9;]*m", "", server.log_text())  # tracing colours its fields
    published = re.findall(r'publish session created stream="turnguest" session=(\d+)', text)
    assert len(published) == 1, text[-3000:]
    paths = [
        int(port)
        for session, port in re.findall(r"new ICE path session=(\d+) from=127\.0\.0\.1:(\d+)", text)
        if session == published[0]
    ]
    assert paths and all(p in coturn.relay_ports for p in paths), (paths, coturn.relay_ports)
    # coturn's side: an allocation (and a permission for r58's address) for the issued user.
    log = coturn.log_text()
    assert re.search(rf"user <\d+:{TURN_USER}>.*ALLOCATE processed, success", log), log[-3000:]
    assert re.search(rf"user <\d+:{TURN_USER}>.*CREATE_PERMISSION processed, success", log) or re.search(
        rf"user <\d+:{TURN_USER}>.*CHANNEL_BIND processed, success", log
    ), log[-3000:]
    assert server.proc.poll() is None, "r58 died"


def relay_config(
    coturn: Coturn, work: Path, mode: str, urls: list[str] | None = None, ca: Path | None = None
) -> Path:
    urls = urls or [f"turn:127.0.0.1:{coturn.port}?transport=udp"]
    extra = f'relay_ca_file = "{ca}"\n' if ca else ""
    (work / "turn.secret").write_text(coturn.secret + "\n")
    (work / "r58.toml").write_text(
        "[turn]\n"
        'provider = "coturn"\n'
        f"urls = {json.dumps(urls)}\n"
        'secret_file = "turn.secret"\n'
        f'username = "{TURN_USER}"\n'
        "ttl_secs = 600\n"
        f'server_relay = "{mode}"\n' + extra
    )
    return work / "r58.toml"


def wait_for_relay(srv: Server, within_s: float) -> str:
    """Waits until r58 logs its relay allocation; returns the log without colours."""
    deadline = time.monotonic() + within_s
    while "TURN: relay allocated" not in srv.log_text():
        assert time.monotonic() < deadline, srv.log_text()[-3000:]
        time.sleep(0.1)
    return re.sub(r"\x1b\[[0-9;]*m", "", srv.log_text())


def relay_server(
    coturn: Coturn, work: Path, mode: str, urls: list[str] | None = None, ca: Path | None = None
):
    """r58 with its relay on `coturn` (or `urls`), host candidates unreachable, TURN logs on."""
    config = relay_config(coturn, work, mode, urls, ca)
    env = {"R58_LOG_LEVEL": "info,sfu::engine=debug,sfu::net=debug"}
    return launch(["--config", str(config)], work / "server.log", env, public_ip=UNREACHABLE_HOST)


# r58's host candidates name 127.0.0.2, where nothing listens (r58's socket is on 127.0.0.1):
# the stand-in, on loopback, for a box behind NAT whose address no one outside can reach.
UNREACHABLE_HOST = "127.0.0.2"


async def relay_only_publish_and_view(
    server: Server, name: str, wait_s: float, only_urls: list[str] | None = None
) -> tuple:
    """A relay-only aiortc publisher and a relay-only viewer; returns (frames the viewer
    decoded, the publisher's nominated pair or None). ``only_urls``: the TURN URLs the clients
    use instead of those r58 hands out (with r58's credentials)."""
    servers = fetch_ice_servers(server)
    if only_urls is not None:
        servers = [{**turn_entry(servers), "urls": only_urls}]
    config = RTCConfiguration(
        iceServers=[RTCIceServer(**s) for s in servers],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    )
    pub = viewer = None
    try:
        pub = await whip_publish(server.base, name, config=config)
        # The stream is live (and playable) once the publisher's media arrives.
        deadline = time.monotonic() + wait_s
        while pub.pc.iceConnectionState not in ("completed", "connected"):
            if time.monotonic() > deadline:
                return [], None
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        viewer = await whep_play(server.base, name, config=config)
        while len(viewer.counters) < 30 and time.monotonic() < deadline:
            if viewer.ended.is_set():
                break
            await asyncio.sleep(0.1)
        ice = pub.pc.getTransceivers()[0].sender.transport.transport
        pairs = list(ice._connection._nominated.values())
        return [c for c, _ in viewer.counters], (pairs[0] if pairs else None)
    finally:
        await close_all(viewer, pub)


def test_without_r58s_relay_a_relay_only_guest_cannot_reach_an_unreachable_host(
    coturn: Coturn, tmp_path: Path
):
    config = relay_config(coturn, tmp_path, "never")
    with launch(["--config", str(config)], tmp_path / "server.log", public_ip=UNREACHABLE_HOST) as srv:
        counters, pair = asyncio.run(relay_only_publish_and_view(srv, "stranded", 6))
        assert counters == [] and pair is None, (counters[:5], pair)


def test_r58s_own_relay_carries_a_relay_only_guest_to_a_relay_only_viewer(
    coturn: Coturn, tmp_path: Path
):
    with relay_server(coturn, tmp_path, "always") as srv:
        # r58 allocates on start; give it the moment it takes.
        wait_for_relay(srv, 10)
        try:
            counters, pair = asyncio.run(relay_only_publish_and_view(srv, "relayed", 20))
        except BaseException:
            print(f"--- r58 log ---\n{srv.log_text()[-4000:]}")
            raise
        log = re.sub(r"\x1b\[[0-9;]*m", "", srv.log_text())
        assert len(counters) >= 30, (len(counters), log[-4000:], coturn.log_text()[-3000:])
        assert counters == sorted(counters), counters[:40]
        # The publisher's pair ends at r58's relay candidate (both sides relayed).
        assert pair is not None and pair.remote_candidate.type == "relay", pair
        assert pair.remote_candidate.port in coturn.relay_ports, pair
        # r58's side: the sessions' paths came in by its relay.
        assert re.search(r"new ICE path session=\d+ from=\S+ via=Relay", log), log[-3000:]
        # /metrics: the allocation, and media that went out and came in as ChannelData.
        time.sleep(1.2)  # the driver reports its TURN client's counters once a second
        with urllib.request.urlopen(f"{srv.base}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert 'r58_turn_relay_allocated{transport="udp"} 1' in metrics, metrics[-2000:]
        for direction in ("out", "in"):
            found = re.search(
                rf'r58_turn_relay_packets_total{{direction="{direction}",framing="channel"}} (\d+)',
                metrics,
            )
            assert found and int(found.group(1)) > 30, (direction, metrics[-2000:])
        assert srv.proc.poll() is None, "r58 died"


def test_r58s_relay_falls_back_to_tcp_when_udp_gets_no_answer(coturn: Coturn, tmp_path: Path):
    # The UDP URL names a port where nothing answers (a venue that drops outbound UDP looks
    # the same to r58: no answer); the TCP URL is coturn's.
    dead_udp = free_port(socket.SOCK_DGRAM)
    urls = [
        f"turn:127.0.0.1:{dead_udp}?transport=udp",
        f"turn:127.0.0.1:{coturn.port}?transport=tcp",
    ]
    started = time.monotonic()
    with relay_server(coturn, tmp_path, "always", urls) as srv:
        log = wait_for_relay(srv, 20)
        fallback_s = time.monotonic() - started
        assert re.search(r"TURN: relay allocated .*transport=\"?tcp", log), log[-3000:]
        print(f"relay allocated over TCP {fallback_s:.1f} s after start")
        # A relay-only guest (its own allocation over UDP at coturn's port, which r58 does not
        # hand out here) reaches r58's TCP-carried relay.
        guest_urls = [f"turn:127.0.0.1:{coturn.port}?transport=udp"]
        counters, pair = asyncio.run(
            relay_only_publish_and_view(srv, "overtcp", 20, only_urls=guest_urls)
        )
        assert len(counters) >= 30, (len(counters), srv.log_text()[-3000:])
        assert pair is not None and pair.remote_candidate.type == "relay", pair
        time.sleep(1.2)
        with urllib.request.urlopen(f"{srv.base}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert 'r58_turn_relay_allocated{transport="tcp"} 1' in metrics, metrics[-2000:]


def make_ca_and_cert(work: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for IP 127.0.0.1 signed by it: (ca.pem, cert.pem,
    key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "r58 test TURN CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (work / "ca.pem").write_bytes(ca.public_bytes(pem))
    (work / "cert.pem").write_bytes(cert.public_bytes(pem))
    (work / "key.pem").write_bytes(
        key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return work / "ca.pem", work / "cert.pem", work / "key.pem"


def test_r58s_relay_falls_back_to_tls_when_udp_and_tcp_fail(tmp_path: Path):
    ca, cert, key = make_ca_and_cert(tmp_path)
    tls_port = free_port(socket.SOCK_STREAM)
    tls_turn = start_coturn(
        tmp_path, [f"--tls-listening-port={tls_port}", f"--cert={cert}", f"--pkey={key}"]
    )
    try:
        dead_udp = free_port(socket.SOCK_DGRAM)
        dead_tcp = free_port(socket.SOCK_STREAM)
        urls = [
            f"turn:127.0.0.1:{dead_udp}?transport=udp",
            f"turn:127.0.0.1:{dead_tcp}?transport=tcp",
            f"turns:127.0.0.1:{tls_port}?transport=tcp",
        ]
        with relay_server(tls_turn, tmp_path, "always", urls, ca) as srv:
            log = wait_for_relay(srv, 25)
            assert re.search(r"TURN: relay allocated .*transport=\"?tls", log), log[-3000:]
            guest_urls = [f"turn:127.0.0.1:{tls_turn.port}?transport=udp"]
            counters, pair = asyncio.run(
                relay_only_publish_and_view(srv, "overtls", 20, only_urls=guest_urls)
            )
            assert len(counters) >= 30, (len(counters), srv.log_text()[-3000:])
            assert pair is not None and pair.remote_candidate.type == "relay", pair
    finally:
        stop_coturn(tls_turn)


def test_r58s_relay_refuses_a_tls_server_it_does_not_trust(tmp_path: Path):
    # The same TLS coturn, without relay_ca_file: the certificate is refused, no relay.
    ca, cert, key = make_ca_and_cert(tmp_path)
    tls_port = free_port(socket.SOCK_STREAM)
    tls_turn = start_coturn(
        tmp_path, [f"--tls-listening-port={tls_port}", f"--cert={cert}", f"--pkey={key}"]
    )
    try:
        config = relay_config(
            tls_turn, tmp_path, "always", [f"turns:127.0.0.1:{tls_port}?transport=tcp"]
        )
        with launch(["--config", str(config)], tmp_path / "server.log") as srv:
            deadline = time.monotonic() + 8
            while "cannot open" not in srv.log_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            log = re.sub(r"\x1b\[[0-9;]*m", "", srv.log_text())
            assert "TURN: relay allocated" not in log, log[-3000:]
            assert re.search(r"TURN: cannot open .*(certificate|UnknownIssuer)", log), log[-3000:]
    finally:
        stop_coturn(tls_turn)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_r58s_relay_comes_back_after_a_turn_server_restart(tmp_path: Path, transport: str):
    # UDP: r58 notices by probing a silent server; TCP: the connection closes, r58 reconnects.
    turn = start_coturn(tmp_path)
    try:
        urls = [f"turn:127.0.0.1:{turn.port}?transport={transport}"]
        with relay_server(turn, tmp_path, "always", urls) as srv:

            def allocations() -> list[str]:
                log = re.sub(r"\x1b\[[0-9;]*m", "", srv.log_text())
                return re.findall(r"TURN: relay allocated relayed=(\S+)", log)

            wait_for_relay(srv, 10)
            first = allocations()[0]

            async def scenario() -> float:
                servers = [
                    {**turn_entry(fetch_ice_servers(srv)), "urls": [
                        f"turn:127.0.0.1:{turn.port}?transport=udp"
                    ]}
                ]
                config = RTCConfiguration(
                    iceServers=[RTCIceServer(**s) for s in servers],
                    iceTransportPolicy=RTCIceTransportPolicy.RELAY,
                )
                pub = await whip_publish(srv.base, "restart", config=config)
                try:
                    deadline = time.monotonic() + 15
                    while pub.pc.iceConnectionState not in ("completed", "connected"):
                        assert time.monotonic() < deadline, "publisher did not connect"
                        await asyncio.sleep(0.1)
                    await asyncio.sleep(1)
                    restarted = time.monotonic()
                    await asyncio.to_thread(restart_coturn, turn)
                    # The guest's media stops (its own allocation is gone too); r58 notices the
                    # silence, probes, gets 437 and allocates again.
                    deadline = time.monotonic() + 25
                    while len(allocations()) < 2:
                        assert time.monotonic() < deadline, srv.log_text()[-3000:]
                        await asyncio.sleep(0.1)
                    return time.monotonic() - restarted
                finally:
                    await pub.close()

            took = asyncio.run(scenario())
            print(f"r58 had a new relay {took:.1f} s after the TURN server restarted")
            log = re.sub(r"\x1b\[[0-9;]*m", "", srv.log_text())
            assert "TURN: relay lost" in log, log[-3000:]
            assert took < 10, took
            # A guest that comes back (the guest page reconnects by itself) publishes through the
            # new relay, and a viewer decodes its frames.
            guest_urls = [f"turn:127.0.0.1:{turn.port}?transport=udp"]
            counters, pair = asyncio.run(
                relay_only_publish_and_view(srv, "again", 20, only_urls=guest_urls)
            )
            assert len(counters) >= 30, (len(counters), srv.log_text()[-3000:])
            assert pair is not None and pair.remote_candidate.type == "relay", pair
            print(f"relay before the restart {first}, after {allocations()[-1]}")
    finally:
        stop_coturn(turn)
