"""r58's synthetic test cameras seen by aiortc: /api/streams lists them, a WHEP viewer decodes
1280x720 at ~30 fps, and the frame counter drawn into each picture reads back in order.

Unlike the other interop modules, this one starts the server WITH test cameras
(``--test-cameras 2``); the others turn them off so two 720p encoders do not compete with them
for CPU.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import r58client  # noqa: E402
from r58client import Viewer, _consume, _exchange, _new_pc  # noqa: E402
from r58server import Server, launch, server_command  # noqa: E402
from test_whip_whep import close_all, run  # noqa: E402

WIDTH, HEIGHT = 1280, 720
MEASURE_S = 5.0

# The counter code of sfu/src/capture/pattern.rs: 24 value bits then 4 check bits, one square
# block each (16 px at this width), in a row 8 px from the top-left corner.
VALUE_BITS, CHECK_BITS, MARGIN = 24, 4, 8
BLOCKS = VALUE_BITS + CHECK_BITS


def _check(value: int) -> int:
    check = 0b0101
    while value:
        check ^= value & 0xF
        value >>= 4
    return check


def read_camera_counter(frame) -> int | None:
    """The frame counter of a decoded test-camera picture, or None if it does not read back."""
    if frame.width != WIDTH or frame.height != HEIGHT:
        return None
    y = frame.to_ndarray(format="gray")
    block = max(1, min(16, (frame.width - 2 * MARGIN) // BLOCKS))
    inset = block // 4
    span = max(1, block - 2 * inset)
    word = 0
    for i in range(BLOCKS):
        x = MARGIN + i * block + inset
        patch = y[MARGIN + inset : MARGIN + inset + span, x : x + span]
        if patch.mean() > 128:
            word |= 1 << i
    value = word & ((1 << VALUE_BITS) - 1)
    return value if (word >> VALUE_BITS) == _check(value) else None


async def whep_play_video(base_url: str, name: str) -> Viewer:
    """Like r58client.whep_play, but offers video only (a camera stream has no audio)."""
    pc = _new_pc()
    pc.addTransceiver("video", direction="recvonly")
    tracks = []
    pc.on("track", tracks.append)
    posted_at = time.monotonic()
    try:
        http, location, etag = await _exchange(pc, f"{base_url}/whep/{name}", None)
    except BaseException:
        await pc.close()
        raise
    viewer = Viewer(pc, http, location, etag, None, posted_at=posted_at)
    for track in tracks:
        viewer.tasks.append(asyncio.ensure_future(_consume(viewer, track)))
    return viewer


@pytest.fixture(scope="module")
def camera_server(tmp_path_factory) -> Server:
    if any("stub_server" in part for part in server_command()):
        pytest.skip("the stub server has no test cameras")
    log = tmp_path_factory.mktemp("r58cams") / "server.log"
    with launch(["--test-cameras", "2"], log) as srv:
        yield srv


def get_streams(server: Server) -> list[dict]:
    with urllib.request.urlopen(f"{server.base}/api/streams", timeout=5) as resp:
        return json.load(resp)


def test_cameras_are_listed(camera_server: Server) -> None:
    deadline = time.monotonic() + 10
    while True:
        streams = {s["name"]: s for s in get_streams(camera_server)}
        if {"cam0", "cam1"} <= streams.keys() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    print(json.dumps(list(streams.values()), indent=1))
    for name in ("cam0", "cam1"):
        assert name in streams, f"{name} missing from /api/streams: {sorted(streams)}"
        s = streams[name]
        assert s["source"] == "camera"
        assert [t["codec"].upper() for t in s["tracks"]] == ["H264"]


def test_viewer_decodes_720p30_with_an_increasing_counter(
    camera_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The viewer helper reads counters with a function of its module: use the camera's code.
    monkeypatch.setattr(r58client, "read_counter", read_camera_counter)

    async def scenario() -> None:
        viewer = await whep_play_video(camera_server.base, "cam0")
        try:
            deadline = time.monotonic() + 10
            while viewer.first_video_at is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert viewer.first_video_at is not None, "no video decoded within 10 s"
            first_ms = (viewer.first_video_at - viewer.posted_at) * 1000
            await asyncio.sleep(0.5)  # past the keyframe-cache replay burst
            start = time.monotonic()
            await asyncio.sleep(MEASURE_S)
            window = [(c, at) for c, at in viewer.counters if at >= start]
            fps = len(window) / MEASURE_S
            values = [c for c, _ in window]
            steps = [b - a for a, b in zip(values, values[1:])]
            gaps = [(a, b) for a, b in zip(values, values[1:]) if b != a + 1]
            print(
                f"cam0: first frame {first_ms:.0f} ms after POST; {len(window)} frames with a "
                f"readable counter in {MEASURE_S:.0f} s = {fps:.1f} fps; sizes "
                f"{dict(viewer.sizes)}; counter {values[:1]}..{values[-1:]}; gaps {gaps}"
            )
            assert viewer.sizes[(WIDTH, HEIGHT)] > 0 and set(viewer.sizes) == {(WIDTH, HEIGHT)}
            assert fps >= 25, f"{fps:.1f} fps decoded"
            assert all(s > 0 for s in steps), f"counter goes backwards: {values}"
            # A counter jump means frames were not decoded; allow a few (a busy CI machine),
            # never many.
            missing = sum(s - 1 for s in steps)
            assert missing <= len(values) // 10, f"{missing} frames missing: {gaps}"
        finally:
            await close_all(viewer)

    run(camera_server, scenario())


def post_json(server: Server, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{server.base}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.load(resp)


def test_switcher_program_cuts_between_cameras(
    camera_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiortc decodes /whep/program while the operator cuts cam0 -> cam1 -> cam0 -> cam1: the
    frames after each cut come from the chosen camera (a test camera's counter starts at its
    number x 2^20), nothing freezes for longer than one GOP, and the counter of each camera keeps
    increasing (no corrupt or replayed frames)."""
    monkeypatch.setattr(r58client, "read_counter", read_camera_counter)

    async def scenario() -> None:
        deadline = time.monotonic() + 10
        while not {"cam0", "cam1"} <= {s["name"] for s in get_streams(camera_server)}:
            assert time.monotonic() < deadline, "cameras never went online"
            await asyncio.sleep(0.1)
        post_json(camera_server, "/api/switcher/program", {"source": "cam0"})
        deadline = time.monotonic() + 10
        while not any(s["name"] == "program" for s in get_streams(camera_server)):
            assert time.monotonic() < deadline, "program never went online"
            await asyncio.sleep(0.1)
        viewer = await whep_play_video(camera_server.base, "program")
        try:
            deadline = time.monotonic() + 10
            while viewer.first_video_at is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert viewer.first_video_at is not None, "no program video within 10 s"
            cuts: list[tuple[float, int]] = [(time.monotonic(), 0)]
            await asyncio.sleep(2.0)
            for camera in (1, 0, 1):
                cut_at = time.monotonic()
                post_json(camera_server, "/api/switcher/program", {"source": f"cam{camera}"})
                cuts.append((cut_at, camera))
                await asyncio.sleep(2.0)
            end = time.monotonic()
            state = json.load(urllib.request.urlopen(f"{camera_server.base}/api/switcher"))
            latencies = [c["latency_ms"] for c in state["history"]]
            print(f"cut latencies (ms): {latencies}; forced: {[c['forced'] for c in state['history']]}")
            frames = [(c, at) for c, at in viewer.counters if cuts[0][0] <= at <= end]
            print(f"program: {viewer.video_frames} frames decoded, sizes {dict(viewer.sizes)}, {len(viewer.counters)} counters read")
            # The cameras in decode order, runs collapsed: exactly the cuts asked for, each cut
            # clean (no frame of the old camera after the first of the new one). Judged by order,
            # not by time windows, so a decoder lagging on a loaded machine does not matter.
            runs: list[list[int]] = []
            for counter, _ in frames:
                camera = counter >> 20
                if runs and runs[-1][0] == camera:
                    runs[-1][1] += 1
                else:
                    runs.append([camera, 1])
            print(f"program runs (camera, frames): {runs}")
            assert [c for c, _ in runs] == [c for _, c in cuts], f"cuts seen: {runs}"
            assert all(n >= 15 for _, n in runs), f"a camera barely showed: {runs}"
            times = [at for _, at in frames]
            longest = max(b - a for a, b in zip(times, times[1:]))
            assert longest < 1.0, f"program froze for {longest:.2f} s"
            for camera in (0, 1):
                values = [c for c, _ in frames if c >> 20 == camera]
                assert all(b > a for a, b in zip(values, values[1:])), f"cam{camera} went back"
            assert all(c["forced"] is False for c in state["history"])
        finally:
            await close_all(viewer)

    run(camera_server, scenario(), timeout=90)


def test_aiortc_offering_audio_and_video_plays_a_video_only_camera(
    camera_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The camera has no audio: the answer rejects the audio m-line (port 0) but still gives it
    ICE and DTLS parameters, which aiortc insists on for every section."""
    monkeypatch.setattr(r58client, "read_counter", read_camera_counter)

    async def scenario() -> None:
        deadline = time.monotonic() + 10
        while "cam1" not in {s["name"] for s in get_streams(camera_server)}:
            assert time.monotonic() < deadline, "cam1 never went online"
            await asyncio.sleep(0.1)
        viewer = await r58client.whep_play(camera_server.base, "cam1")
        try:
            deadline = time.monotonic() + 10
            while len(viewer.counters) < 10 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert len(viewer.counters) >= 10, "cam1 video decoded with an audio+video offer"
            assert all(c >> 20 == 1 for c, _ in viewer.counters), "frames are cam1's"
        finally:
            await close_all(viewer)

    run(camera_server, scenario())
