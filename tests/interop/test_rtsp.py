"""r58's RTSP server read by real RTSP clients: ffmpeg/ffprobe (``-rtsp_transport tcp`` and
``udp``) and GStreamer's ``rtspsrc`` (TCP and UDP) each read the test camera ``cam0`` and a WHIP
guest (aiortc, H.264 + Opus) and decode them. Camera and guest pictures carry a frame counter:
the test reads it back from the decoded pictures, so "decoded" means the right pictures in the
right order; the guest's tone must come out of the Opus decoder as sound, not silence.

All traffic is on 127.0.0.1. GStreamer runs as a subprocess of Debian's python3
(``gst_rtsp_read.py``): the bindings are system packages the venv does not see.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import r58client  # noqa: E402
from r58server import Server, free_port, launch, server_command  # noqa: E402
from test_cameras import read_camera_counter  # noqa: E402

SYSTEM_PYTHON = os.environ.get("R58_GST_PYTHON", "/usr/bin/python3")
CAM_W, CAM_H = 1280, 720
GUEST_W, GUEST_H = r58client.WIDTH, r58client.HEIGHT
READ_SECONDS = 4.0


class Gray:
    """A decoded grey picture in the shape the counter readers take (an av.VideoFrame's)."""

    def __init__(self, pixels: np.ndarray) -> None:
        self.pixels = pixels
        self.height, self.width = pixels.shape

    def to_ndarray(self, format: str) -> np.ndarray:  # noqa: A002 - av's keyword
        assert format == "gray"
        return self.pixels


def counters(pictures: list[np.ndarray], guest: bool) -> list[int | None]:
    read = r58client.read_counter if guest else read_camera_counter
    return [read(Gray(p)) for p in pictures]


def assert_counted_in_order(values: list[int | None], what: str, at_least: int) -> None:
    """Most pictures read back, in increasing order (a few may be lost on the way)."""
    read = [v for v in values if v is not None]
    print(f"{what}: {len(values)} pictures, {len(read)} counters, first {read[:3]}, last {read[-3:]}")
    assert len(values) >= at_least, f"{what}: only {len(values)} pictures decoded"
    assert len(read) >= 0.9 * len(values), f"{what}: counters unreadable: {values[:20]}"
    steps = [b - a for a, b in zip(read, read[1:])]
    assert all(s > 0 for s in steps), f"{what}: counters out of order: {read}"
    assert sum(1 for s in steps if s == 1) >= 0.8 * len(steps), f"{what}: many gaps: {read}"


@pytest.fixture(scope="module")
def rtsp_server(tmp_path_factory):
    """r58 with one test camera and a WHIP guest, RTSP on a free loopback port."""
    if any("stub_server" in part for part in server_command()):
        pytest.skip("the stub server has no RTSP")
    log = tmp_path_factory.mktemp("r58rtsp") / "server.log"
    port = free_port(socket.SOCK_STREAM)
    with launch(["--test-cameras", "1", "--rtsp-listen", f"127.0.0.1:{port}"], log) as srv:
        guest = subprocess.Popen(
            [sys.executable, str(HERE / "r58client.py"), "publish", srv.base, "guest"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = guest.stdout.readline().strip()
            assert line.startswith("PUBLISHED "), f"guest publisher said {line!r}"
            # Let the camera and the guest reach their first keyframes.
            time.sleep(1.5)
            yield srv, f"rtsp://127.0.0.1:{port}"
        finally:
            guest.kill()
            guest.wait()


def ffmpeg_read(url: str, transport: str, tmp: Path, width: int, height: int, audio: bool):
    """ffmpeg decodes READ_SECONDS of ``url``: grey pictures, and mono 48 kHz samples."""
    video, sound = tmp / f"v-{transport}.gray", tmp / f"a-{transport}.s16"
    cmd = [
        "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", transport, "-i", url,
        "-t", str(READ_SECONDS),
        "-map", "0:v", "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", "gray", "-y", str(video),
    ]  # fmt: skip
    if audio:
        cmd += ["-t", str(READ_SECONDS), "-map", "0:a", "-f", "s16le", "-ac", "1", "-ar", "48000", "-y", str(sound)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=40)
    assert done.returncode == 0, f"ffmpeg failed: {done.stderr[-2000:]}"
    raw = np.frombuffer(video.read_bytes(), dtype=np.uint8)
    pictures = [p.reshape(height, width) for p in np.split(raw, len(raw) // (width * height))]
    samples = np.frombuffer(sound.read_bytes(), dtype=np.int16) if audio else np.array([])
    return pictures, samples


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ffprobe_describes_both_streams(rtsp_server, transport: str) -> None:
    _, base = rtsp_server
    for name, want in (("cam0", ["h264"]), ("guest", ["h264", "opus"])):
        done = subprocess.run(
            ["ffprobe", "-v", "error", "-rtsp_transport", transport, "-show_streams",
             "-of", "json", f"{base}/{name}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        streams = json.loads(done.stdout)["streams"]
        assert sorted(s["codec_name"] for s in streams) == want, streams
        video = next(s for s in streams if s["codec_type"] == "video")
        size = (CAM_W, CAM_H) if name == "cam0" else (GUEST_W, GUEST_H)
        assert (video["width"], video["height"]) == size


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ffmpeg_decodes_the_camera(rtsp_server, transport: str, tmp_path: Path) -> None:
    _, base = rtsp_server
    pictures, _ = ffmpeg_read(f"{base}/cam0", transport, tmp_path, CAM_W, CAM_H, audio=False)
    assert_counted_in_order(counters(pictures, guest=False), f"ffmpeg {transport} cam0", 60)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ffmpeg_decodes_the_guest_with_sound(rtsp_server, transport: str, tmp_path: Path) -> None:
    _, base = rtsp_server
    pictures, samples = ffmpeg_read(
        f"{base}/guest", transport, tmp_path, GUEST_W, GUEST_H, audio=True
    )
    assert_counted_in_order(counters(pictures, guest=True), f"ffmpeg {transport} guest", 60)
    print(f"audio: {len(samples)} samples, peak {int(np.abs(samples).max(initial=0))}")
    assert len(samples) >= 48_000 * 2, "less than 2 s of sound decoded"
    assert np.abs(samples).max(initial=0) > 2000, "the tone decoded as silence"


def gst_problem() -> str | None:
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('Gst', '1.0'); "
         "from gi.repository import Gst; Gst.init(None); "
         "print([e for e in ('rtspsrc', 'rtph264depay', 'h264parse', 'rtpopusdepay', 'opusdec') "
         "if Gst.ElementFactory.find(e) is None])"],
        capture_output=True, text=True,
    )  # fmt: skip
    if probe.returncode != 0:
        return f"GStreamer bindings: {probe.stderr.strip()[-300:]}"
    return None if probe.stdout.strip() == "[]" else f"missing elements {probe.stdout.strip()}"


def gst_read(url: str, transport: str, tmp: Path) -> tuple[dict, list[np.ndarray]]:
    problem = gst_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"GStreamer unusable in CI: {problem}")
        pytest.skip(problem)
    gray = tmp / f"gst-{transport}.gray"
    done = subprocess.run(
        [SYSTEM_PYTHON, str(HERE / "gst_rtsp_read.py"), url, transport, str(READ_SECONDS), str(gray)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert not report["errors"], report
    data, pictures = gray.read_bytes(), []
    while data:
        head, _, data = data.partition(b"\n")
        w, h = (int(v) for v in head.decode().split("x"))
        pictures.append(np.frombuffer(data[: w * h], dtype=np.uint8).reshape(h, w))
        data = data[w * h :]
    return report, pictures


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_gstreamer_rtspsrc_decodes_camera_and_guest(rtsp_server, transport: str, tmp_path: Path) -> None:
    _, base = rtsp_server
    report, pictures = gst_read(f"{base}/cam0", transport, tmp_path)
    print(f"gst {transport} cam0: {report}")
    assert_counted_in_order(counters(pictures, guest=False), f"gst {transport} cam0", 50)
    report, pictures = gst_read(f"{base}/guest", transport, tmp_path)
    print(f"gst {transport} guest: {report}")
    assert_counted_in_order(counters(pictures, guest=True), f"gst {transport} guest", 50)
    assert report["audio_samples"] >= 48_000, report
    assert report["audio_peak"] > 2000, "the tone decoded as silence"
