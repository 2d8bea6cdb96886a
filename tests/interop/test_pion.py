"""r58 against pion (Go): a pion WHIP publisher and a pion WHEP viewer (tests/interop/pion/).

The client is built once per module from Debian's packages (``golang-go``,
``golang-github-pion-webrtc.v3-dev``) in GOPATH mode: nothing comes from the Go module proxy
(``GOPROXY=off``). It uses pion's default codecs and interceptors, as a pion application does,
and ICE on 127.0.0.1 only. The publisher sends a small H.264 clip (libx264 constrained baseline)
and an Ogg Opus sine that ffmpeg makes here; the viewer reassembles H.264 access units from RTP
and counts them, and what it received is decoded by ffprobe (frames counted) to prove it decodes.

Skipped when Go, the pion packages or ffmpeg are missing, unless CI=true (then a failure).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from r58client import whep_play  # noqa: E402
from r58server import Server  # noqa: E402
from test_gstreamer_whep import camera_server, wait_for_stream  # noqa: E402,F401
from test_whip_whep import close_all, delete_quietly, run  # noqa: E402

PION_SRC = HERE / "pion"
DEBIAN_GOPATH = Path("/usr/share/gocode")
PION_WEBRTC = DEBIAN_GOPATH / "src/github.com/pion/webrtc/go.mod"
APT = "golang-go golang-github-pion-webrtc.v3-dev ffmpeg"
FPS = 30  # the clip below and the camera of camera_server
AUDIO_FPS = 50  # 20 ms Opus packets
WIDTH, HEIGHT = 320, 240
WATCH_SECONDS = 4.0


def missing(problem: str) -> None:
    msg = f"{problem} (apt-get install -y {APT}, or run .ci/run)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


class PionClient:
    """The built client and the media it publishes."""

    def __init__(self, exe: Path, h264: Path, ogg: Path, work: Path) -> None:
        self.exe, self.h264, self.ogg, self.work = exe, h264, ogg, work


@pytest.fixture(scope="module")
def pion(tmp_path_factory) -> PionClient:
    go = shutil.which("go")
    if go is None:
        missing("no `go` on PATH")
    if not PION_WEBRTC.exists():
        missing(f"pion v3 not installed ({PION_WEBRTC} missing)")
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        missing("ffmpeg/ffprobe not installed")
    work = tmp_path_factory.mktemp("pion")
    # GOPATH mode wants the package under a GOPATH's src/; its go.mod lets the /v2, /v3 import
    # paths resolve to Debian's directories (Go's minimal module compatibility).
    gopath = work / "gopath"
    pkg = gopath / "src" / "r58pion"
    shutil.copytree(PION_SRC, pkg)
    exe = work / "pion_client"
    env = dict(os.environ, GO111MODULE="off", GOPROXY="off", GOFLAGS="")
    env["GOPATH"] = f"{gopath}:{DEBIAN_GOPATH}"
    # Go's build cache (default ~/.cache/go-build) makes a rebuild take ~2 s instead of ~20 s;
    # without a home directory it has no default, so keep one beside the binary.
    cache = subprocess.run([go, "env", "GOCACHE"], env=env, capture_output=True, text=True)
    if cache.returncode != 0 or cache.stdout.strip() in ("", "off"):
        env["GOCACHE"] = str(work / "gocache")
    t0 = time.monotonic()
    built = subprocess.run(
        [go, "build", "-o", str(exe), "."], cwd=pkg, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    # With the packages present, a failed build is this client's bug: fail, never skip.
    assert built.returncode == 0, f"go build failed:\n{built.stderr[-3000:]}"
    version = subprocess.run([go, "version"], capture_output=True, text=True).stdout.strip()
    print(f"pion client built in {time.monotonic() - t0:.1f} s ({version})")

    h264, ogg = work / "clip.h264", work / "clip.ogg"
    ffmpeg = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    # 2 s of testsrc, a keyframe every second, no B-frames: what a WebRTC publisher sends.
    video = ffmpeg + [
        "-f", "lavfi", "-i", f"testsrc=size={WIDTH}x{HEIGHT}:rate={FPS}", "-t", "2",
        "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", str(FPS),
        "-pix_fmt", "yuv420p", "-f", "h264", str(h264),
    ]  # fmt: skip
    # One 20 ms Opus packet per Ogg page: pion's oggreader returns a page's segments joined.
    audio = ffmpeg + [
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "2",
        "-c:a", "libopus", "-b:a", "48k", "-page_duration", "20000", str(ogg),
    ]  # fmt: skip
    for cmd in (video, audio):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stderr[-2000:]}"
    return PionClient(exe, h264, ogg, work)


class Publisher:
    """``pion_client whip`` running in the background; its stdout lines collected."""

    def __init__(self, pion: PionClient, server: Server, name: str, *extra: str) -> None:
        self.log = server.log.parent / f"pion_whip_{name}.log"
        self.lines: list[str] = []
        self.cond = threading.Condition()
        with open(self.log, "wb") as errf:
            self.proc = subprocess.Popen(
                [str(pion.exe), "whip", server.base, name, "--h264", str(pion.h264),
                 "--ogg", str(pion.ogg), "--seconds", "120", *extra],
                stdout=subprocess.PIPE, stderr=errf,
            )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").strip())
                self.cond.notify_all()
        with self.cond:
            self.lines.append("EOF")
            self.cond.notify_all()

    def wait_for(self, line: str, seconds: float = 15) -> None:
        with self.cond:
            ok = self.cond.wait_for(
                lambda: line in self.lines or any(x.startswith(("ERROR", "EOF")) for x in self.lines),
                seconds,
            )
            lines = list(self.lines)
        assert ok and line in lines, (
            f"pion publisher: no {line!r} within {seconds} s: {lines}\n{tail(self.log, 30)}"
        )

    def stop(self) -> int:
        """SIGTERM (the client DELETEs its session); returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        with self.cond:
            self.cond.wait_for(lambda: "EOF" in self.lines, 5)
        print(f"pion publisher: exit {code}, {self.lines[-4:]}\n--- its log ---\n{tail(self.log, 8)}")
        return code


def run_viewer(pion: PionClient, server: Server, name: str, *args: str):
    """Runs ``pion_client whep`` for WATCH_SECONDS; returns (exit code, lines, last FRAMES)."""
    log = server.log.parent / f"pion_whep_{name}.log"
    with open(log, "wb") as errf:
        done = subprocess.run(
            [str(pion.exe), "whep", server.base, name, "--seconds", str(WATCH_SECONDS), *args],
            stdout=subprocess.PIPE, stderr=errf, timeout=WATCH_SECONDS + 30,
        )  # fmt: skip
    lines = done.stdout.decode(errors="replace").splitlines()
    counts = {"video": 0, "keyframes": 0, "audio": 0}
    for line in lines:
        if line.startswith("FRAMES "):
            counts = {k: int(v) for k, v in (p.split("=") for p in line.split()[1:])}
    print(f"pion viewer {name}: exit {done.returncode}, {counts}, {lines[:5]}")
    print(f"--- its log (tail) ---\n{tail(log, 6)}")
    return done.returncode, lines, counts


def decoded_frames(path: Path) -> dict:
    """ffprobe decodes the file; its first stream's codec, size and decoded frame count."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "0",
         "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json",
         str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, f"ffprobe {path}: {out.stderr[-1000:]}"
    stream = json.loads(out.stdout)["streams"][0]
    stream["nb_read_frames"] = int(stream.get("nb_read_frames", 0))
    print(f"ffprobe {path.name}: {stream}")
    return stream


def stream_info(server: Server, name: str) -> dict | None:
    with urllib.request.urlopen(f"{server.base}/api/streams", timeout=5) as resp:
        return {s["name"]: s for s in json.load(resp)}.get(name)


def tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def test_pion_publishes_aiortc_views(pion: PionClient, camera_server: Server) -> None:
    """pion publishes H.264 + Opus over WHIP; aiortc decodes both; DELETE ends the stream."""
    name = "pion1"
    publisher = Publisher(pion, camera_server, name)
    try:
        publisher.wait_for("connected")
        wait_for_stream(camera_server, name)
        codecs = {t["codec"].lower() for t in stream_info(camera_server, name)["tracks"]}
        assert codecs == {"h264", "opus"}, codecs

        async def watch() -> None:
            viewer = None
            try:
                viewer = await whep_play(camera_server.base, name)
                await asyncio.sleep(WATCH_SECONDS)
                watched = time.monotonic() - viewer.posted_at
                video, audio, sizes = viewer.video_frames, viewer.audio_frames, dict(viewer.sizes)
                print(
                    f"aiortc viewer: {video} video frames (~{FPS * watched:.0f} sent), {audio} "
                    f"audio frames (~{AUDIO_FPS * watched:.0f} sent) in {watched:.1f} s, "
                    f"sizes {sizes}, ended: {viewer.ended_how}"
                )
                assert viewer.ended_how is None, viewer.ended_how
                # Floors well below the rates, far above a stream that does not decode.
                assert video >= 0.6 * FPS * watched, f"{video} video frames in {watched:.1f} s"
                assert set(sizes) == {(WIDTH, HEIGHT)}, sizes
                assert audio >= 0.5 * AUDIO_FPS * watched, f"{audio} audio frames"
            finally:
                await delete_quietly(viewer)
                await close_all(viewer)

        run(camera_server, watch(), timeout=60)
    finally:
        code = publisher.stop()
    assert code == 0, publisher.lines
    assert "DELETE 200" in publisher.lines, publisher.lines
    deadline = time.monotonic() + 5
    while (info := stream_info(camera_server, name)) and info.get("online"):
        assert time.monotonic() < deadline, f"{name} still online after the DELETE: {info}"
        time.sleep(0.1)


def test_pion_plays_a_test_camera(pion: PionClient, camera_server: Server) -> None:
    """pion views the video-only camera (audio offered too): every access unit decodes."""
    h264 = pion.work / "cam0.h264"
    code, lines, counts = run_viewer(pion, camera_server, "cam0", "--h264-out", str(h264))
    assert code == 0 and "connected" in lines, lines
    assert "TRACK video video/H264 pt=" in "\n".join(lines), lines
    # r58 starts a viewer on a keyframe (its keyframe cache).
    first = next((line for line in lines if line.startswith("FIRST video")), "")
    assert first.endswith("keyframe=true"), lines
    assert counts["video"] >= 0.6 * FPS * WATCH_SECONDS, counts
    assert counts["keyframes"] >= 1, counts
    assert counts["audio"] == 0, counts  # the camera has no audio: its section is inactive
    decoded = decoded_frames(h264)
    assert (decoded["width"], decoded["height"]) == (WIDTH, HEIGHT), decoded
    assert decoded["nb_read_frames"] >= 0.95 * counts["video"], (decoded, counts)


def test_pion_plays_a_pion_publisher_with_audio(pion: PionClient, camera_server: Server) -> None:
    """pion to pion through r58: H.264 and Opus both arrive and decode."""
    name = "pion2"
    publisher = Publisher(pion, camera_server, name)
    try:
        publisher.wait_for("connected")
        wait_for_stream(camera_server, name)
        h264, ogg = pion.work / "pion2.h264", pion.work / "pion2.ogg"
        code, lines, counts = run_viewer(
            pion, camera_server, name, "--h264-out", str(h264), "--ogg-out", str(ogg)
        )
    finally:
        assert publisher.stop() == 0, publisher.lines
    assert code == 0 and "connected" in lines, lines
    assert counts["video"] >= 0.6 * FPS * WATCH_SECONDS, counts
    assert counts["keyframes"] >= 1, counts
    assert counts["audio"] >= 0.5 * AUDIO_FPS * WATCH_SECONDS, counts
    video = decoded_frames(h264)
    assert (video["width"], video["height"]) == (WIDTH, HEIGHT), video
    assert video["nb_read_frames"] >= 0.95 * counts["video"], (video, counts)
    audio = decoded_frames(ogg)
    assert audio["codec_name"] == "opus", audio
    assert audio["nb_read_frames"] >= 0.9 * counts["audio"], (audio, counts)
