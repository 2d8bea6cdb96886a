"""Recording (docs/recording.md) with the real binary, ffprobe and PyAV:

- ``kill -9`` while recording three streams (the test cameras cam0 and cam1, and an aiortc
  WHIP guest with H.264 and Opus), split every 2 s: every file ffprobe reads, the frame
  counters drawn into the pictures run on across consecutive files without a gap or a repeat,
  and what is lost at the kill is at most the fragment being written (about a second). The
  restarted server repairs what the kill left (a partial fragment cut off, a file without its
  ``moov`` removed).
- The API refuses bad input with 4xx and a reason.
- The disk guard on a small tmpfs this test mounts: with ``retention = "delete-oldest"`` old
  files go and the file system never fills; with ``"stop"`` recording stops with an event.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import r58client  # noqa: E402
from r58server import Server, launch, server_command  # noqa: E402
from test_cameras import read_camera_counter  # noqa: E402
from test_whip_whep import close_all  # noqa: E402

SEGMENT_SECS = 2
FPS = 30


def need_ffprobe() -> None:
    if shutil.which("ffprobe") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ffprobe is missing")
        pytest.skip("ffprobe is missing")


def write_config(path: Path, recording: str, cameras: str = "") -> Path:
    path.write_text(f"{cameras}\n[recording]\n{recording}\n")
    return path


def ffprobe_ok(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"ffprobe refused {path}: {out.stderr}"
    return json.loads(out.stdout)


def counters(path: Path, reader) -> list[int]:
    """The frame counter of every decoded video frame of ``path``."""
    values = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            value = reader(frame)
            assert value is not None, f"{path}: a frame whose counter does not read"
            values.append(value)
    return values


def kill9(server: Server) -> None:
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()


def test_kill_9_while_recording_three_streams(tmp_path: Path) -> None:
    need_ffprobe()
    if any("stub_server" in part for part in server_command()):
        pytest.skip("the stub server does not record")
    rec = tmp_path / "rec"
    config = write_config(
        tmp_path / "r58.toml",
        f'dir = "{rec}"\nsegment_secs = {SEGMENT_SECS}\nstreams = ["cameras", "guests"]\n'
        "min_free_bytes = 0\nmin_free_percent = 0",
    )
    args = ["--config", str(config), "--test-cameras", "2"]

    async def scenario(server: Server) -> tuple[float, float]:
        guest = await r58client.whip_publish(server.base, "guest1")
        try:
            deadline = time.monotonic() + 15
            while True:
                streams = json.loads(server.api("GET", "/api/streams")[1])
                online = {s["name"] for s in streams if s.get("tracks")}
                if {"cam0", "cam1", "guest1"} <= online:
                    break
                assert time.monotonic() < deadline, f"streams never all online: {online}"
                await asyncio.sleep(0.2)
            # Bad input first: nothing is recording yet.
            assert server.api("POST", "/api/recordings/stop")[0] == 409
            status, body = server.api("POST", "/api/recordings/start", {"stream": "../etc"})
            assert status == 400 and "not a stream name" in body, body
            status, body = server.api("POST", "/api/recordings/start", {"stream": "nosuch"})
            assert status == 404 and "nosuch" in body, body
            assert server.api("POST", "/api/recordings/start", {"streem": "x"})[0] == 400
            status, body = server.api("DELETE", "/api/recordings/files/cam0/..%2Fx.mp4")
            assert status == 404, body
            started = time.monotonic()
            assert server.api("POST", "/api/recordings/start") == (200, '{"ok":true}')
            status, body = server.api("POST", "/api/recordings/start")
            assert status == 409 and "already" in body, body
            status, body = server.api("POST", "/api/recordings/start", {"stream": "cam0"})
            assert status == 409 and "already" in body, body
            await asyncio.sleep(3 * SEGMENT_SECS + 1.5)
            state = json.loads(server.api("GET", "/api/recordings")[1])
            recorded = {s["name"] for s in state["status"]["streams"]}
            assert recorded == {"cam0", "cam1", "guest1"}, state
            killed = time.monotonic()
            kill9(server)
            return started, killed
        finally:
            await close_all(guest)

    log = tmp_path / "server.log"
    with launch(args, log) as server:
        started, killed = asyncio.run(asyncio.wait_for(scenario(server), 60))

    readers = {
        "cam0": read_camera_counter,
        "cam1": read_camera_counter,
        "guest1": r58client.read_counter,
    }
    for stream, reader in readers.items():
        files = sorted((rec / stream).glob(f"{stream}_*.mp4"))
        assert len(files) >= 3, f"{stream}: {files}"
        frames: list[int] = []
        readable = 0
        for path in files:
            if path.stat().st_size == 0:
                continue  # killed between creating it and writing its header: repaired below
            info = ffprobe_ok(path)
            video = [s for s in info["streams"] if s["codec_type"] == "video"]
            assert video and video[0]["codec_name"] == "h264", info
            if stream == "guest1":
                audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
                assert audio and audio[0]["codec_name"] == "opus", info
            values = counters(path, reader)
            if not values:
                # Killed after the header, before its first fragment was complete: only the
                # file being written when the kill came may be empty.
                assert path == files[-1], f"{path.name} has no frames and is not the last"
                continue
            readable += 1
            if frames:
                assert values[0] == frames[-1] + 1, (
                    f"{path.name} starts at frame {values[0]}, the file before ended at "
                    f"{frames[-1]}"
                )
            frames.extend(values)
        assert readable >= 3
        steps = [b - a for a, b in zip(frames, frames[1:])]
        assert all(step == 1 for step in steps), (
            f"{stream}: counter gaps or repeats {[(i, s) for i, s in enumerate(steps) if s != 1]}"
        )
        # Recording started within a GOP (1 s) of the request; the kill loses at most the open
        # fragment (1 s) plus what was still queued.
        expected = (killed - started) * FPS
        assert len(frames) >= expected - 3 * FPS, (stream, len(frames), expected)
        print(f"{stream}: {len(files)} files, frames {frames[0]}..{frames[-1]}")

    # A power cut can leave more than a kill: a fragment cut in the middle (the page cache lost
    # its tail) and a file created just before. Without repair ffmpeg reads such a file but
    # reports its last packet corrupt; the restarted server cuts it at its last complete
    # fragment and removes the empty one.
    victim = sorted((rec / "cam0").glob("cam0_*.mp4"))[-2]
    size = victim.stat().st_size
    os.truncate(victim, size - 5000)
    cut = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(victim), "-fps_mode", "passthrough", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(f"ffmpeg on a file cut mid-fragment, before repair: {cut.stderr.strip()[:300]}")
    empty = rec / "cam1" / "cam1_2026-01-01T00-00-00Z.mp4"
    empty.write_bytes(b"")
    with launch(args, tmp_path / "restart.log") as server:
        log_text = server.log_text()
    repaired = [line for line in log_text.splitlines() if "repaired" in line]
    print("\n".join(repaired))
    assert not empty.exists(), "an empty recording survives the restart"
    assert any(victim.name in line for line in repaired), log_text
    assert victim.stat().st_size < size - 5000
    clean = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(victim), "-fps_mode", "passthrough", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # (The null muxer's own complaints about frame timing are not about the file.)
    problems = [line for line in clean.stderr.splitlines() if "non monotonically" not in line]
    assert clean.returncode == 0 and not problems, clean.stderr
    assert "corrupt" in cut.stderr or "Invalid" in cut.stderr, cut.stderr
    for stream, reader in readers.items():
        frames = []
        for path in sorted((rec / stream).glob("*.mp4")):
            assert path.stat().st_size > 0, f"{path} left empty after the repair"
            ffprobe_ok(path)
            frames.extend(counters(path, reader))
        # The cut file lost its last fragment, so cam0 has one gap there; nothing repeats.
        assert all(b > a for a, b in zip(frames, frames[1:])), stream


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 16 MiB tmpfs mounted in the test's directory (needs root)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the disk guard test mounts a tmpfs and needs root")
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill_until(server: Server, mnt: Path, seconds: float, done) -> tuple[float, dict]:
    """Samples the file system while recording until ``done(state)``; returns the lowest free
    fraction seen and the last state."""
    lowest = 1.0
    deadline = time.monotonic() + seconds
    state: dict = {}
    while time.monotonic() < deadline:
        st = os.statvfs(mnt)
        lowest = min(lowest, st.f_bavail / st.f_blocks)
        state = json.loads(server.api("GET", "/api/recordings")[1])
        if done(state):
            break
        time.sleep(0.05)
    return lowest, state


@pytest.mark.parametrize("retention", ["delete-oldest", "stop"])
def test_disk_guard_on_a_small_filesystem(tmp_path: Path, small_fs: Path, retention: str) -> None:
    need_ffprobe()
    if any("stub_server" in part for part in server_command()):
        pytest.skip("the stub server does not record")
    config = write_config(
        tmp_path / "r58.toml",
        f'dir = "{small_fs}"\nsegment_secs = 1\nstreams = ["cameras"]\n'
        f'min_free_bytes = 2097152\nmin_free_percent = 0\nretention = "{retention}"',
        cameras="[test_cameras]\nbitrate = 6000000",
    )
    args = ["--config", str(config), "--test-cameras", "2"]
    with launch(args, tmp_path / "server.log") as server:
        deadline = time.monotonic() + 15
        while server.api("POST", "/api/recordings/start")[0] != 200:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.3)

        def finished(state: dict) -> bool:
            kinds = [e["kind"] for e in state["status"]["events"]]
            if retention == "stop":
                return "disk_low_stopped" in kinds
            return kinds.count("file_deleted") >= 4

        lowest, state = fill_until(server, small_fs, 90, finished)
        events = state["status"]["events"]
        print(retention, f"lowest free {lowest:.1%}", [e["kind"] for e in events])
        assert finished(state), (events, server.log_tail())
        # It filled up to near the reserve (2 MiB of 16 plus what 2 s of writing needs), and
        # never past it.
        assert 0.05 < lowest < 0.4, f"the file system got to {1 - lowest:.1%} full"
        if retention == "stop":
            assert not state["status"]["recording"]
            # Fill the file system to its reserve: a new start is refused with the reason.
            st = os.statvfs(small_fs)
            filler = small_fs / "filler"
            filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - (1 << 20)))
            status, body = server.api("POST", "/api/recordings/start")
            assert status == 409 and "free space" in body, body
            filler.unlink()
        else:
            assert state["status"]["recording"]
            deleted = [e["detail"] for e in events if e["kind"] == "file_deleted"]
            for relative in deleted:
                stream, name = relative.split("/")
                remaining = [f["file"] for f in state["files"] if f["stream"] == stream]
                assert all(name < other for other in remaining), (name, remaining)
            assert server.api("POST", "/api/recordings/stop")[0] == 200
        for path in small_fs.glob("*/*.mp4"):
            ffprobe_ok(path)
