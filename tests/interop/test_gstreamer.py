"""r58 against GStreamer's webrtcbin: an RSA-certificate publisher over WHIP, an aiortc viewer.

webrtcbin (gst-plugins-bad) makes an RSA DTLS certificate, so this proves that the server's
DTLS accepts ECDHE-RSA clients; its offer also exercises max-bundle (a bundle-only audio
m-line with port 0), upper-case ``OPUS`` and a level-2.0 constrained-baseline H.264 profile.

The publisher runs as a subprocess with Debian's /usr/bin/python3 (``gst_whip.py``): the
GStreamer bindings are system packages that the test venv does not see. Skipped when GStreamer
is not installed, unless CI=true (then a missing GStreamer is a failure).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import r58client  # noqa: E402
from r58client import whep_play  # noqa: E402
from test_whip_whep import Server, close_all, delete_quietly, run, server  # noqa: E402,F401

SYSTEM_PYTHON = os.environ.get("R58_GST_PYTHON", "/usr/bin/python3")
GST_WHIP = HERE / "gst_whip.py"
WIDTH, HEIGHT, FPS = 320, 240, 30  # what gst_whip.py sends (videotestsrc, x264enc)
AUDIO_FPS = 50  # opusenc: 20 ms frames
WATCH_SECONDS = 5.0

# What gst_whip.py needs, for the skip/failure message (.ci/run installs them).
GST_APT = (
    "gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-nice "
    "python3-gst-1.0 gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1"
)
PROBE = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import Gst, GstWebRTC, GstSdp, Nice
Gst.init(None)
need = "webrtcbin nicesrc dtlssrtpenc srtpenc x264enc rtph264pay opusenc rtpopuspay videotestsrc audiotestsrc".split()
missing = [e for e in need if Gst.ElementFactory.find(e) is None]
print("missing elements: " + " ".join(missing) if missing else "ok " + Gst.version_string())
"""


def gstreamer_problem() -> str | None:
    """None when gst_whip.py can run here; else why not."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    try:
        out = subprocess.run(
            [SYSTEM_PYTHON, "-c", PROBE], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{SYSTEM_PYTHON} GStreamer probe: {e}"
    last = (out.stdout.strip().splitlines() or [""])[-1]
    if out.returncode != 0 or not last.startswith("ok"):
        err = (out.stderr.strip().splitlines() or [""])[-1]
        return f"GStreamer Python bindings/plugins unusable: {last or err}"
    print(f"GStreamer: {last[3:]}")
    return None


@pytest.fixture(scope="module")
def gstreamer() -> None:
    problem = gstreamer_problem()
    if problem is None:
        return
    msg = f"{problem} (apt-get install -y {GST_APT}, or run .ci/run)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def check_smpte_bars(frame) -> str | None:
    """None if the picture's top half shows videotestsrc's seven SMPTE bars, else why not.

    The bars (white, yellow, cyan, green, magenta, red, blue) have strictly decreasing luma."""
    y = frame.to_ndarray(format="gray").astype(float)
    h, w = y.shape
    band = y[h // 8 : h // 2]
    means = [band[:, int((i + 0.3) * w / 7) : int((i + 0.7) * w / 7)].mean() for i in range(7)]
    txt = "bar luma " + " ".join(f"{m:.0f}" for m in means)
    steps = [a - b for a, b in zip(means, means[1:])]
    if min(steps) < 8 or means[0] - means[-1] < 100:
        return f"not the SMPTE bars: {txt}"
    print(f"picture: {txt}")
    return None


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_gstreamer_webrtcbin_publishes_aiortc_views(
    gstreamer: None, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """webrtcbin (RSA DTLS) publishes H.264 + Opus to /whip/gst1; an aiortc viewer decodes it."""
    name = "gst1"
    frames: list = []  # [first decoded video frame, latest one]
    read_counter = r58client.read_counter

    def keep_frames(frame):  # r58client's viewer calls this for every decoded video frame
        frames[1:] = [frame] if frames else []
        if not frames:
            frames.append(frame)
        return read_counter(frame)

    monkeypatch.setattr(r58client, "read_counter", keep_frames)
    pub_log = server.log.parent / "gst_whip.log"

    async def scenario() -> None:
        with open(pub_log, "wb") as errf:
            child = await asyncio.create_subprocess_exec(
                SYSTEM_PYTHON,
                str(GST_WHIP),
                server.base,
                name,
                stdout=asyncio.subprocess.PIPE,
                stderr=errf,
            )
        viewer = None
        lines: list[str] = []
        try:
            assert child.stdout is not None
            t_start = time.monotonic()
            while not (lines and lines[-1].startswith("DTLS ")):
                left = t_start + 20 - time.monotonic()
                try:
                    raw = await asyncio.wait_for(child.stdout.readline(), max(0.1, left))
                except asyncio.TimeoutError:
                    raw = None
                if not raw:
                    raise AssertionError(
                        f"webrtcbin publisher not connected within 20 s (said {lines}); "
                        f"its log:\n{pub_log.read_text(errors='replace')[-4000:]}"
                    )
                lines.append(raw.decode().strip())
                assert not lines[-1].startswith("ERROR"), (
                    f"webrtcbin publisher: {lines[-1]}; its log:\n"
                    f"{pub_log.read_text(errors='replace')[-4000:]}"
                )
            print(f"webrtcbin connected {time.monotonic() - t_start:.2f} s after start: {lines}")
            assert "connected" in lines, lines
            # The point of this test: the publisher's DTLS certificate is RSA.
            assert "local=rsa" in lines[-1].split(), (
                f"webrtcbin's DTLS certificate is not RSA ({lines[-1]}): the test proves nothing"
            )

            streams = {s["name"]: s for s in get_json(f"{server.base}/api/streams")}
            assert name in streams, f"/api/streams has no {name!r}: {list(streams)}"
            stream = streams[name]
            print(f"/api/streams[{name}] = {json.dumps(stream)}")
            codecs = {str(t.get("codec", "")).lower() for t in stream.get("tracks", [])}
            assert any("h264" in c for c in codecs), f"no H.264 track in {codecs}"
            assert any("opus" in c for c in codecs), f"no Opus track in {codecs}"

            viewer = await whep_play(server.base, name)
            await asyncio.sleep(WATCH_SECONDS)
            t_end = time.monotonic()
            watched = t_end - viewer.posted_at
            video, audio, sizes = viewer.video_frames, viewer.audio_frames, dict(viewer.sizes)
            first = viewer.first_video_at
            first_ms = None if first is None else round((first - viewer.posted_at) * 1000)
            expected = FPS * watched
            print(
                f"aiortc viewer: {video} video frames in {watched:.1f} s (expected ~{expected:.0f}, "
                f"{100 * video / expected:.0f}%), {audio} audio frames "
                f"(expected ~{AUDIO_FPS * watched:.0f}), sizes {sizes}, first frame "
                f"{first_ms} ms after POST, ended: {viewer.ended_how}"
            )
            stats = {s["name"]: s for s in get_json(f"{server.base}/api/streams")}.get(name)
            print(f"/api/streams[{name}] after viewing = {json.dumps(stats)}")
            problems = []
            if viewer.ended_how:
                problems.append(f"viewer session ended early ({viewer.ended_how})")
            if video < 0.7 * expected:
                problems.append(f"{video} video frames < 70% of {expected:.0f}")
            if set(sizes) - {(WIDTH, HEIGHT)}:
                problems.append(f"frame sizes {sizes}, want only {WIDTH}x{HEIGHT}")
            for label, frame in zip(("first", "last"), frames):
                if (why := check_smpte_bars(frame)) is not None:
                    problems.append(f"{label} frame: {why}")
            if audio < 0.5 * AUDIO_FPS * watched:
                problems.append(f"{audio} audio frames < 50% of {AUDIO_FPS * watched:.0f}")
            assert child.returncode is None, f"publisher exited with {child.returncode}"
            assert not problems, "; ".join(problems)
        finally:
            await delete_quietly(viewer)
            await close_all(viewer)
            if child.returncode is None:
                child.terminate()  # gst_whip.py DELETEs its session on SIGTERM
                try:
                    await asyncio.wait_for(child.wait(), 10)
                except asyncio.TimeoutError:
                    child.kill()
                    await child.wait()
            print(f"--- gst_whip.py log (tail) ---\n{tail(pub_log, 25)}")

    run(server, scenario(), timeout=90)


def tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
