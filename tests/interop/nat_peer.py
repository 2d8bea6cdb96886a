"""aiortc peers for the NAT tests (test_nat_relay.py), run inside a namespace of the topology:

    ip netns exec NS python nat_peer.py publish BASE NAME LOCAL_IP SECONDS [--relay]
    ip netns exec NS python nat_peer.py view BASE NAME LOCAL_IP SECONDS [--relay]

Each prints JSON lines on stdout, one per event, so a test can follow a peer that runs in the
background: ``servers`` (the ICE servers fetched from ``BASE/api/turn-credentials``, without
the credential), ``offer`` / ``answer`` (candidate lines), ``state`` (every ICE and connection
state change, with seconds since the WHIP/WHEP POST), ``selected`` (the nominated pair, once
connected), and last ``result``.

With ``--relay`` the peer uses those servers with ``iceTransportPolicy = relay``: it gathers
only a relay candidate and sends everything through TURN. Without it, it has no ICE server and
offers a host candidate on ``LOCAL_IP``.

``publish`` sends the test pattern (r58client.TestPatternTrack) for SECONDS after the POST,
connected or not, then DELETEs the session. ``view`` plays video for SECONDS after the POST and
reports the frame counters it decoded (r58client.read_counter; for r58's test cameras,
``cam*``, netfault_peer.read_camera_counter_any_size).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from aiortc import RTCConfiguration, RTCIceServer  # noqa: E402
from aiortc.rtcconfiguration import RTCIceTransportPolicy  # noqa: E402

import r58client  # noqa: E402
from netfault_peer import read_camera_counter_any_size, use_host_address  # noqa: E402

CANDIDATE = re.compile(r"a=candidate:\S+ \d+ (\w+) \d+ (\S+) (\d+) typ (\w+)", re.IGNORECASE)


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def candidates(sdp: str) -> list[dict]:
    return [
        {"transport": t.lower(), "ip": ip, "port": int(port), "type": typ}
        for t, ip, port, typ in CANDIDATE.findall(sdp)
    ]


def fetch_ice_servers(base: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/api/turn-credentials", timeout=10) as resp:
        servers = json.loads(resp.read())["iceServers"]
    emit("servers", servers=[{k: v for k, v in s.items() if k != "credential"} for s in servers])
    return servers


def relay_config(base: str) -> RTCConfiguration:
    servers = fetch_ice_servers(base)
    return RTCConfiguration(
        iceServers=[RTCIceServer(**s) for s in servers],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    )


def watch(pc, started: float) -> None:
    """Emits each state change, and the nominated pair once connected."""

    def state(_=None) -> None:
        emit(
            "state",
            t=round(time.monotonic() - started, 3),
            ice=pc.iceConnectionState,
            connection=pc.connectionState,
        )
        if pc.connectionState == "connected":
            emit("selected", **selected_pair(pc))

    pc.on("iceconnectionstatechange", state)
    pc.on("connectionstatechange", state)


def selected_pair(pc) -> dict:
    try:
        ice = pc.getTransceivers()[0].receiver.transport.transport
        pairs = list(ice._connection._nominated.values())
    except (AttributeError, IndexError):
        return {}
    if not pairs:
        return {}
    p = pairs[0]
    side = lambda c: {"type": c.type, "ip": c.host, "port": c.port}  # noqa: E731
    return {"local": side(p.local_candidate), "remote": side(p.remote_candidate)}


async def publish(base: str, name: str, seconds: float, relay: bool) -> dict:
    config = relay_config(base) if relay else None
    started = time.monotonic()
    pub = await r58client.whip_publish(base, name, audio=False, config=config)
    watch(pub.pc, started)
    emit("offer", candidates=candidates(pub.pc.localDescription.sdp))
    emit("answer", candidates=candidates(pub.pc.remoteDescription.sdp), location=pub.location)
    try:
        await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
        return {
            "connection": pub.pc.connectionState,
            "ice": pub.pc.iceConnectionState,
            "frames_sent": pub.video.counter if pub.video else 0,
            "selected": selected_pair(pub.pc),
        }
    finally:
        try:
            await pub.delete()
        except Exception as e:  # noqa: BLE001
            emit("error", where="DELETE", error=repr(e))
        await pub.close()


async def view(base: str, name: str, seconds: float, relay: bool) -> dict:
    config = relay_config(base) if relay else None
    pc = r58client._new_pc(config)
    pc.addTransceiver("video", direction="recvonly")
    tracks = []
    pc.on("track", tracks.append)
    started = time.monotonic()
    watch(pc, started)
    http, location, etag = await r58client._exchange(pc, f"{base}/whep/{name}", None)
    viewer = r58client.Viewer(pc, http, location, etag, None, posted_at=started)
    emit("offer", candidates=candidates(pc.localDescription.sdp))
    emit("answer", candidates=candidates(pc.remoteDescription.sdp), location=location)
    for track in tracks:
        viewer.tasks.append(asyncio.ensure_future(r58client._consume(viewer, track)))
    try:
        await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
        return {
            "connection": pc.connectionState,
            "ice": pc.iceConnectionState,
            "frames": viewer.video_frames,
            "counters": [c for c, _ in viewer.counters],
            "first_frame_s": (
                round(viewer.first_video_at - started, 3) if viewer.first_video_at else None
            ),
            "sizes": {f"{w}x{h}": n for (w, h), n in viewer.sizes.items()},
            "ended": viewer.ended_how,
            "selected": selected_pair(pc),
        }
    finally:
        try:
            await viewer.delete()
        except Exception as e:  # noqa: BLE001
            emit("error", where="DELETE", error=repr(e))
        await viewer.close()


def main(argv: list[str]) -> int:
    if len(argv) < 6 or argv[1] not in ("publish", "view"):
        print(__doc__, file=sys.stderr)
        return 2
    role, base, name, local_ip, seconds = argv[1], argv[2], argv[3], argv[4], float(argv[5])
    relay = "--relay" in argv[6:]
    # aioice's and aiortc's own account of ICE (pairs, checks, TURN) on stderr, which the test
    # keeps in the peer's log: NAT_PEER_LOG=DEBUG for every packet.
    logging.basicConfig(
        level=os.environ.get("NAT_PEER_LOG", "INFO"),
        format="%(relativeCreated)8.0f ms %(name)s %(levelname)s %(message)s",
    )
    use_host_address(local_ip)
    if name.startswith("cam"):  # r58's test cameras draw their own counter code
        r58client.read_counter = read_camera_counter_any_size
    fn = publish if role == "publish" else view
    try:
        result = asyncio.run(fn(base, name, seconds, relay))
    except Exception as e:  # noqa: BLE001 - reported as the last line for the test
        emit("result", error=repr(e))
        return 1
    emit("result", **result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
