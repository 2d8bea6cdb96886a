"""aiortc peers for the network-fault tests (test_netfaults.py), with hooks the plain helpers in
r58client.py do not need: SDP munging (an offer without NACK/RTX, an answer whose candidate
points at an impairment relay) and a host address other than 127.0.0.1 (a network namespace).

As a script it plays a stream from inside a network namespace and prints one JSON line:

    ip netns exec NS python netfault_peer.py view BASE NAME SECONDS LOCAL_IP [--no-nack]

``{"counters": [...], "frames": N, "sizes": {...}, "nack": bool}``: the frame counters of the
test camera's pictures it decoded (read with the camera's code, test_cameras.py) after a 2 s
warm-up.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import aioice.ice
from aiortc import RTCSessionDescription

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import r58client  # noqa: E402
from r58client import HttpError, Viewer, _consume, _new_pc  # noqa: E402

WARMUP_S = 2.0


def use_host_address(ip: str) -> None:
    """Gather only ``ip`` (r58client patches aioice to 127.0.0.1)."""

    def _only(use_ipv4: bool = True, use_ipv6: bool = False) -> list[str]:
        return [ip]

    aioice.ice.get_host_addresses = _only


def strip_nack_and_rtx(sdp: str) -> str:
    """The offer without NACK feedback and without RTX payload types: no retransmissions."""
    rtx_pts = set(re.findall(r"a=rtpmap:(\d+) rtx/", sdp))
    out = []
    for line in sdp.split("\r\n"):
        if re.match(r"a=rtcp-fb:\d+ nack$", line):
            continue
        m = re.match(r"a=(rtpmap|fmtp|rtcp-fb):(\d+)", line)
        if m and m.group(2) in rtx_pts:
            continue
        if line.startswith("m=video"):
            parts = line.split(" ")
            line = " ".join(parts[:3] + [p for p in parts[3:] if p not in rtx_pts])
        out.append(line)
    return "\r\n".join(out)


def point_candidates_at(sdp: str, host: str, port: int) -> str:
    """Every host candidate of ``sdp`` rewritten to ``host:port`` (the impairment relay)."""
    return re.sub(
        r"(a=candidate:\S+ \d+ udp \d+ )\S+ \d+ typ host",
        lambda m: f"{m.group(1)}{host} {port} typ host",
        sdp,
        flags=re.IGNORECASE,
    )


async def exchange(pc, url: str, munge_offer=None, munge_answer=None):
    """r58client._exchange with munging hooks."""
    await pc.setLocalDescription(await pc.createOffer())
    for _ in range(100):
        if pc.iceGatheringState == "complete":
            break
        await asyncio.sleep(0.05)
    offer = pc.localDescription.sdp
    if munge_offer:
        offer = munge_offer(offer)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        async with http.post(url, data=offer, headers={"Content-Type": "application/sdp"}) as resp:
            body = await resp.text()
            location = resp.headers.get("Location")
            if resp.status != 201 or not location:
                raise HttpError(resp.status, body, url)
        if munge_answer:
            body = munge_answer(body)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    except BaseException:
        await http.close()
        raise
    return http, urljoin(url, location), resp.headers.get("ETag")


async def play_video(base: str, name: str, *, nack: bool = True) -> Viewer:
    """A video-only WHEP viewer; with ``nack=False`` it offers neither NACK nor RTX."""
    pc = _new_pc()
    pc.addTransceiver("video", direction="recvonly")
    tracks = []
    pc.on("track", tracks.append)
    posted_at = time.monotonic()
    http, location, etag = await exchange(
        pc, f"{base}/whep/{name}", munge_offer=None if nack else strip_nack_and_rtx
    )
    viewer = Viewer(pc, http, location, etag, None, posted_at=posted_at)

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            viewer._end(f"connection {pc.connectionState}")

    for track in tracks:
        viewer.tasks.append(asyncio.ensure_future(_consume(viewer, track)))
    return viewer


def read_camera_counter_any_size(frame):
    """test_cameras.read_camera_counter for any picture size."""
    import test_cameras

    y = frame.to_ndarray(format="gray")
    blocks = test_cameras.BLOCKS
    margin = test_cameras.MARGIN
    block = max(1, min(16, (frame.width - 2 * margin) // blocks))
    inset = block // 4
    span = max(1, block - 2 * inset)
    word = 0
    for i in range(blocks):
        x = margin + i * block + inset
        patch = y[margin + inset : margin + inset + span, x : x + span]
        if patch.mean() > 128:
            word |= 1 << i
    value = word & ((1 << test_cameras.VALUE_BITS) - 1)
    return value if (word >> test_cameras.VALUE_BITS) == test_cameras._check(value) else None


async def _view(base: str, name: str, seconds: float, nack: bool) -> dict:
    r58client.read_counter = read_camera_counter_any_size
    viewer = await play_video(base, name, nack=nack)
    try:
        await asyncio.sleep(WARMUP_S)
        start = time.monotonic()
        await asyncio.sleep(seconds)
        counters = [c for c, at in viewer.counters if at >= start]
        return {
            "counters": counters,
            "frames": viewer.video_frames,
            "sizes": {f"{w}x{h}": n for (w, h), n in viewer.sizes.items()},
            "nack": nack,
            "ended": viewer.ended_how,
        }
    finally:
        await viewer.close()


def main(argv: list[str]) -> int:
    if len(argv) < 6 or argv[1] != "view":
        print(__doc__, file=sys.stderr)
        return 2
    base, name, seconds, local_ip = argv[2], argv[3], float(argv[4]), argv[5]
    use_host_address(local_ip)
    result = asyncio.run(_view(base, name, seconds, "--no-nack" not in argv))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
