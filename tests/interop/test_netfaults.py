"""Network faults between r58 and aiortc peers.

- 5 % random loss on a viewer's path: the viewer runs in its own network namespace (a veth pair
  to the host), and an nftables rule there (``numgen random mod 100 < 5``) drops 5 % of the
  datagrams the server sends it. With NACK and RTX the viewer decodes >= 99 % of the test
  camera's frames; a second viewer that offers neither shows what the loss costs without them.
- 5 % loss and 50 ms +- 20 ms delay on a publisher's path, through a userspace UDP impairment
  relay (netem is not available): the publisher stays connected, r58 NACKs the lost packets
  upstream, and a viewer keeps decoding nearly every frame.

Needs root (network namespaces, nftables) and ``ip`` and ``nft`` (Debian: iproute2, nftables).
Without them the tests are skipped, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import netfault_peer  # noqa: E402
import r58client  # noqa: E402
from r58server import Server, launch  # noqa: E402
from test_whip_whep import close_all, run  # noqa: E402

LOSS_PERCENT = 5
VIEW_S = 10.0
CAMERA = "[test_cameras]\ncount = 1\nwidth = 640\nheight = 360\nfps = 30\nbitrate = 1000000\n"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True)


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "nft", "ethtool"):
        if shutil.which(tool) is None:
            return f"'{tool}' not installed"
    probe = f"r58probe{os.getpid()}"
    made = sh("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    sh("ip", "netns", "del", probe, check=False)
    return None


@dataclass
class Netns:
    name: str
    host_ip: str
    ns_ip: str

    def exec(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]


@pytest.fixture(scope="module")
def netns():
    why = _missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"network fault tests cannot run: {why}")
        pytest.skip(why)
    n = os.getpid() % 200 + 20
    ns = Netns(f"r58nf{os.getpid()}", f"10.58.{n}.1", f"10.58.{n}.2")
    host_if, ns_if = f"r58h{n}", f"r58n{n}"
    sh("ip", "netns", "add", ns.name)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns.name)
        sh("ip", "addr", "add", f"{ns.host_ip}/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        # r58 sends a viewer's run of equal-sized packets as one UDP GSO message. A real NIC
        # puts them on the wire as separate datagrams, each lost or not on its own; a veth with
        # UDP segmentation offload would hand the whole run over as one skb, which the loss
        # rule would then drop as one. Without the offload the kernel cuts it up before the
        # veth, so the namespace sees (and loses) single datagrams, as a network would.
        sh("ethtool", "-K", host_if, "tx-udp-segmentation", "off")
        sh(*ns.exec("ip", "addr", "add", f"{ns.ns_ip}/24", "dev", ns_if))
        sh(*ns.exec("ip", "link", "set", ns_if, "up"))
        sh(*ns.exec("ip", "link", "set", "lo", "up"))
        yield ns
    finally:
        sh("ip", "netns", "del", ns.name, check=False)
        sh("ip", "link", "del", host_if, check=False)


@pytest.fixture(scope="module")
def camera_server(netns: Netns, tmp_path_factory):
    """r58 on the host end of the veth pair, with one 640x360 test camera (cam0)."""
    if "stub_server" in os.environ.get("R58_BIN", ""):
        pytest.skip("the stub server has no test cameras")
    tmp = tmp_path_factory.mktemp("r58netfaults")
    (tmp / "r58.toml").write_text(CAMERA)
    args = ["--config", str(tmp / "r58.toml"), "--test-cameras", "1"]
    with launch(args, tmp / "server.log", host=netns.host_ip) as srv:
        deadline = time.monotonic() + 30
        while not any(s["name"] == "cam0" and s["online"] for s in streams(srv)):
            if time.monotonic() > deadline:
                pytest.fail(f"cam0 never came up:\n{srv.log_tail()}")
            time.sleep(0.1)
        yield srv


def streams(server: Server) -> list[dict]:
    try:
        with urllib.request.urlopen(f"{server.base}/api/streams", timeout=1) as resp:
            return json.load(resp)
    except OSError:
        return []


def metrics(server: Server) -> dict[str, float]:
    with urllib.request.urlopen(f"{server.base}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def decoded_fraction(counters: list[int]) -> tuple[float, int, int]:
    """(decoded / sent, decoded, sent) over the counter range the viewer saw."""
    if not counters:
        return 0.0, 0, 0
    unique = set(counters)
    sent = max(unique) - min(unique) + 1
    return len(unique) / sent, len(unique), sent


def _nft(netns: Netns, *words: str) -> str:
    return sh(*netns.exec("nft", *words)).stdout


def _view_in_ns(netns: Netns, server: Server, nack: bool) -> dict:
    cmd = netns.exec(
        sys.executable, str(HERE / "netfault_peer.py"), "view", server.base, "cam0",
        str(VIEW_S), netns.ns_ip, *([] if nack else ["--no-nack"]),
    )  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=VIEW_S + 60)
    assert proc.returncode == 0, f"viewer (nack={nack}) failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_viewer_path_loss_is_repaired_by_nack_and_rtx(netns: Netns, camera_server: Server) -> None:
    table = "r58loss"
    port = camera_server.udp_port
    _nft(netns, "add", "table", "inet", table)
    for chain, hook in (("input", "input"), ("output", "output")):
        _nft(netns, "add", "chain", "inet", table, chain,
             f"{{ type filter hook {hook} priority 0 ; policy accept ; }}")  # fmt: skip
    media = f"ip saddr {netns.host_ip} udp sport {port}"
    # Counts everything the server sends, then drops LOSS_PERCENT of it at random.
    _nft(netns, "add", "rule", "inet", table, "input", *media.split(), "counter")
    loss = f"{media} numgen random mod 100 < {LOSS_PERCENT}"
    _nft(netns, "add", "rule", "inet", table, "input", *loss.split(), "counter", "drop")
    runs = {}
    try:
        for nack in (True, False):
            if not nack:
                # aiortc sends NACKs whatever was negotiated: stop them on the way out (RTCP
                # packet type 205, transport feedback, is in the clear in SRTCP), so this
                # viewer really gets no retransmissions.
                _nft(netns, "add", "rule", "inet", table, "output", "udp", "dport", str(port),
                     "@th,72,8", "205", "counter", "drop")  # fmt: skip
            before = metrics(camera_server)
            result = _view_in_ns(netns, camera_server, nack)
            after = metrics(camera_server)
            listed = _nft(netns, "list", "table", "inet", table)
            dropped = [int(x.split()[0]) for x in listed.split("counter packets ")[1:]]
            video = 'r58_track_{}_total{{stream="cam0",kind="video"}}'
            result["nacked"] = after[video.format("nacks")] - before[video.format("nacks")]
            result["retransmits"] = (
                after[video.format("retransmits")] - before[video.format("retransmits")]
            )
            result["seen_total"] = dropped[0]
            result["dropped_total"] = dropped[1]
            result["nacks_blocked"] = dropped[2] if len(dropped) > 2 else 0
            runs[nack] = result
    finally:
        _nft(netns, "delete", "table", "inet", table)
    with_nack = decoded_fraction(runs[True]["counters"])
    without = decoded_fraction(runs[False]["counters"])
    print(
        f"{LOSS_PERCENT} % loss on the viewer's path (nft, {VIEW_S:.0f} s each):\n"
        f"  with NACK+RTX: decoded {with_nack[1]} of {with_nack[2]} frames = {with_nack[0]:.2%} "
        f"(lost {with_nack[2] - with_nack[1]}); {runs[True]['nacked']:.0f} packets NACKed, "
        f"{runs[True]['retransmits']:.0f} retransmitted\n"
        f"  without:       decoded {without[1]} of {without[2]} frames = {without[0]:.2%} "
        f"(lost {without[2] - without[1]}); {runs[False]['nacks_blocked']} NACKs blocked, "
        f"{runs[False]['retransmits']:.0f} retransmitted\n"
        f"  dropped by the loss rule over both runs: {runs[False]['dropped_total']} of "
        f"{runs[False]['seen_total']} datagrams"
    )
    seen, dropped = runs[True]["seen_total"], runs[True]["dropped_total"]
    assert seen > 100, f"the server sent almost nothing: {seen}"
    assert dropped >= seen * LOSS_PERCENT / 100 / 3, f"the loss rule dropped only {dropped} of {seen}"
    assert with_nack[2] >= VIEW_S * 25, f"too few frames sent: {with_nack}"
    assert runs[True]["retransmits"] > 0
    assert runs[False]["retransmits"] == 0, "the viewer without NACK still got retransmissions"
    assert with_nack[0] >= 0.99, f"with NACK/RTX only {with_nack[0]:.2%} of frames decoded"
    assert without[0] < with_nack[0], "the loss cost the viewer without NACK nothing"


class ImpairmentRelay(asyncio.DatagramProtocol):
    """Forwards one client's datagrams to the server and back, dropping ``loss`` of them and
    delaying each by ``delay`` +- ``jitter`` seconds (so they also arrive reordered)."""

    def __init__(self, server_addr, loss: float, delay: float, jitter: float, seed: int = 58):
        self.server_addr = server_addr
        self.loss, self.delay, self.jitter = loss, delay, jitter
        self.rng = random.Random(seed)
        self.client_addr = None
        self.front = None  # faces the client
        self.back = None  # faces the server
        self.passed = self.dropped = 0

    def _later(self, transport, data: bytes, addr) -> None:
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        self.passed += 1
        wait = max(0.0, self.delay + self.rng.uniform(-self.jitter, self.jitter))
        asyncio.get_running_loop().call_later(wait, transport.sendto, data, addr)

    async def start(self, host: str) -> int:
        loop = asyncio.get_running_loop()
        relay = self

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                if relay.client_addr is not None:
                    relay._later(relay.front, data, relay.client_addr)

        self.front, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, 0))
        self.back, _ = await loop.create_datagram_endpoint(Back, local_addr=(host, 0))
        return self.front.get_extra_info("sockname")[1]

    def datagram_received(self, data, addr):
        self.client_addr = addr
        self._later(self.back, data, self.server_addr)

    def close(self) -> None:
        for t in (self.front, self.back):
            if t is not None:
                t.close()


def test_publisher_path_loss_and_delay_through_a_relay(netns: Netns, camera_server: Server) -> None:
    from aiortc import RTCConfiguration  # noqa: F401  (aiortc is what the relay carries)

    async def scenario() -> None:
        server_ip = netns.host_ip
        relay = ImpairmentRelay(
            (server_ip, camera_server.udp_port), loss=0.05, delay=0.050, jitter=0.020  # type: ignore[attr-defined]
        )
        port = await relay.start("127.0.0.1")
        netfault_peer.use_host_address("127.0.0.1")
        pc = r58client._new_pc()
        track = r58client.TestPatternTrack(0)
        r58client._prefer(pc.addTransceiver(track, direction="sendonly"), "video/H264")
        viewer = None
        http = None
        try:
            http, location, _ = await netfault_peer.exchange(
                pc,
                f"{camera_server.base}/whip/impaired",
                munge_answer=lambda sdp: netfault_peer.point_candidates_at(sdp, "127.0.0.1", port),
            )
            deadline = time.monotonic() + 20
            while pc.connectionState != "connected" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert pc.connectionState == "connected", f"publisher: {pc.connectionState}"
            viewer = await netfault_peer.play_video(camera_server.base, "impaired")
            await asyncio.sleep(2.0)
            start = time.monotonic()
            windows = []
            for _ in range(int(VIEW_S / 2)):
                w0 = time.monotonic()
                await asyncio.sleep(2.0)
                windows.append(viewer.frames_since(w0) - viewer.frames_since(time.monotonic()))
            counters = [c for c, at in viewer.counters if at >= start]
            fraction, decoded, sent = decoded_fraction(counters)
            streams = json.loads(
                urllib.request.urlopen(f"{camera_server.base}/api/streams", timeout=5).read()
            )
            online = any(s["name"] == "impaired" and s["online"] for s in streams)
            print(
                f"publisher through the relay ({relay.dropped} dropped, {relay.passed} passed, "
                f"50 +- 20 ms): publisher {pc.connectionState}, stream online {online}; viewer "
                f"decoded {decoded} of {sent} frames = {fraction:.2%}; frames per 2 s window "
                f"{windows}"
            )
            assert relay.dropped > 20, "the relay dropped almost nothing"
            assert pc.connectionState == "connected" and online, "the publisher was lost"
            assert viewer.ended_at is None, f"the viewer ended: {viewer.ended_how}"
            # r58 NACKs what the publisher's stream skipped (and asks again when the NACK or
            # the resent packet is lost too): the viewer decodes nearly every frame and never
            # freezes for a whole 2 s window.
            assert all(w > 0 for w in windows), f"the viewer froze: {windows}"
            assert fraction >= 0.9, f"viewer decoded only {fraction:.2%}"
            nacked = metrics(camera_server).get("r58_publisher_nacked_packets_total", 0)
            print(f"packets NACKed upstream: {nacked:.0f}")
            assert nacked > 0
        finally:
            relay.close()
            await close_all(viewer)
            await pc.close()
            if http is not None:
                await http.close()

    run(camera_server, scenario(), timeout=90)
