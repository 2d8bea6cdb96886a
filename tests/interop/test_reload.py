"""Live reload seen by aiortc: while a WHEP viewer plays test camera cam0, SIGHUP loads a
config file that changes the `/whep/*` token and adds camera cam1. The viewer never stops (its
frames keep coming and the counter drawn into them runs on without a jump), the old token no
longer opens a session and the new one does, and cam1 goes online. Then a broken file is refused
with its one-line reason in the log and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import signal
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
from test_cameras import BLOCKS, MARGIN, VALUE_BITS, _check  # noqa: E402
from test_whip_whep import close_all, run  # noqa: E402

# Small pictures at a low rate: two encoders must not starve the viewer's decoder on CI.
WIDTH, HEIGHT, FPS = 640, 360, 15


def read_counter(frame) -> int | None:
    """The frame counter of a test-camera picture of any width (sfu/src/capture/pattern.rs)."""
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


def write_config(path: Path, token: str, cameras: int) -> None:
    path.write_text(
        f'[[auth]]\npath = "/whep/*"\ntoken = "{token}"\n'
        f"[test_cameras]\ncount = {cameras}\nwidth = {WIDTH}\nheight = {HEIGHT}\nfps = {FPS}\n"
        "bitrate = 600000\n"
    )


def stream_names(server: Server) -> set[str]:
    with urllib.request.urlopen(f"{server.base}/api/streams", timeout=5) as resp:
        return {s["name"] for s in json.load(resp)}


def whep_status(server: Server, name: str, token: str) -> int:
    """The status of a WHEP POST with ``token`` (a dummy offer: only the token check counts)."""
    request = urllib.request.Request(
        f"{server.base}/whep/{name}",
        data=b"v=0\r\n",
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


async def whep_play_video(base_url: str, name: str, token: str) -> Viewer:
    pc = _new_pc()
    pc.addTransceiver("video", direction="recvonly")
    tracks = []
    pc.on("track", tracks.append)

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState in ("failed", "closed") and viewers:
            viewers[0]._end(f"connection {pc.connectionState}")

    viewers: list[Viewer] = []
    posted_at = time.monotonic()
    try:
        http, location, etag = await _exchange(pc, f"{base_url}/whep/{name}", token)
    except BaseException:
        await pc.close()
        raise
    viewer = Viewer(pc, http, location, etag, token, posted_at=posted_at)
    viewers.append(viewer)
    for track in tracks:
        viewer.tasks.append(asyncio.ensure_future(_consume(viewer, track)))
    return viewer


async def wait_for(what: str, check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.1)


def test_sighup_changes_token_and_adds_a_camera_while_a_viewer_plays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if any("stub_server" in part for part in server_command()):
        pytest.skip("the stub server does not reload")
    monkeypatch.setattr(r58client, "read_counter", read_counter)
    config = tmp_path / "r58.toml"
    write_config(config, "old-token", 1)
    # An empty R58_TEST_CAMERAS counts as unset: the file's [test_cameras] applies.
    with launch(["--config", str(config)], tmp_path / "server.log", env={"R58_TEST_CAMERAS": ""}) as srv:

        async def scenario() -> None:
            await wait_for("cam0 online", lambda: "cam0" in stream_names(srv))
            viewer = await whep_play_video(srv.base, "cam0", "old-token")
            try:
                await wait_for("cam0's first frame", lambda: viewer.first_video_at is not None)
                await asyncio.sleep(1.0)
                reload_at = time.monotonic()
                write_config(config, "new-token", 2)
                srv.proc.send_signal(signal.SIGHUP)
                await wait_for("cam1 online", lambda: "cam1" in stream_names(srv))
                assert whep_status(srv, "cam0", "old-token") == 401
                assert whep_status(srv, "cam0", "new-token") != 401
                await wait_for(
                    "the reload logged", lambda: "configuration reloaded" in srv.log_text()
                )

                config.write_text('[[auth]]\npath = "/whep/*"\ntoken = \n')
                srv.proc.send_signal(signal.SIGHUP)
                await wait_for(
                    "the refusal logged",
                    lambda: "configuration reload refused" in srv.log_text(),
                )
                refusal = next(
                    line
                    for line in srv.log_text().splitlines()
                    if "configuration reload refused" in line
                )
                print(f"log: {refusal}")
                assert "r58.toml: line 3" in refusal, refusal
                assert whep_status(srv, "cam0", "new-token") != 401
                assert {"cam0", "cam1"} <= stream_names(srv)
                await asyncio.sleep(2.0)
                end = time.monotonic()

                assert not viewer.ended.is_set(), f"the viewer ended: {viewer.ended_how}"
                window = [(c, at) for c, at in viewer.counters if at >= reload_at - 1.0]
                values = [c for c, _ in window]
                times = [at for _, at in window]
                steps = [b - a for a, b in zip(values, values[1:])]
                stalls = [b - a for a, b in zip(times, times[1:])]
                after = sum(1 for at in times if at >= reload_at)
                print(
                    f"cam0 across the reloads: {len(values)} frames, counter "
                    f"{values[:1]}..{values[-1:]}, longest pause {max(stalls, default=0):.3f} s, "
                    f"{after} frames in the {end - reload_at:.1f} s after SIGHUP"
                )
                assert after >= FPS * (end - reload_at) * 0.6, f"{after} frames after SIGHUP"
                assert all(s > 0 for s in steps), f"counter went backwards: {values}"
                # Running on means no restart (a restarted camera counts from 0 again) and no
                # frames lost beyond what a busy machine may drop.
                missing = sum(s - 1 for s in steps)
                assert missing <= len(values) // 10, f"{missing} frames missing"
                assert max(stalls, default=0) < 1.0, f"the picture paused {max(stalls):.2f} s"
            finally:
                await close_all(viewer)

        run(srv, scenario())
