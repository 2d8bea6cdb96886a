"""An IP camera pulled into r58 over RTSP: GStreamer's RTSP server (``gst_rtsp_camera.py``, on a
free loopback port) serves H.264; r58's ``[[source]]`` pulls it as ``ipcam0``; an aiortc WHEP
viewer decodes it, ffmpeg decodes its LL-HLS and r58's own RTSP server; killing the camera ends
the stream, and restarting it brings the stream back within the source's backoff; a camera that
hangs (SIGSTOP: connection open, no packets) is ended as stalled and comes back after SIGCONT.
An H.265 camera (x265enc) is passed through: r58's RTSP server describes it with its parameter
sets (from the keyframe cache, or from the camera's SDP when only its first keyframe had them in
band) and ffmpeg decodes it there, while WHEP refuses it (422) and ``/api/streams`` says which
outputs it lacks and why. It is recorded to ``hvc1`` files that ffprobe reads as HEVC of the
camera's size and ffmpeg decodes frame by frame, every sample of every file.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from r58server import free_port, launch, server_command  # noqa: E402
from test_cameras import whep_play_video  # noqa: E402
from test_whip_whep import close_all, run  # noqa: E402

SYSTEM_PYTHON = os.environ.get("R58_GST_PYTHON", "/usr/bin/python3")
# sfu::capture::rtsp_source::STALL and supervisor::BACKOFF_MAX, plus time to connect and to
# reach the next keyframe.
STALL_S, BACKOFF_MAX_S, SLACK_S = 5, 10, 5


def start_camera(port: int, codec: str = "h264") -> subprocess.Popen:
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
        capture_output=True, text=True,
    )  # fmt: skip
    if probe.returncode != 0:
        message = f"gst-rtsp-server bindings missing: {probe.stderr.strip()[-200:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    cam = subprocess.Popen(
        [SYSTEM_PYTHON, str(HERE / "gst_rtsp_camera.py"), str(port), codec],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = cam.stdout.readline().strip()
    assert line == "READY", f"camera said {line!r}"
    return cam


def stream_online(base: str, name: str) -> bool:
    with urllib.request.urlopen(f"{base}/api/streams", timeout=5) as resp:
        streams = json.load(resp)
    return any(s["name"] == name and s["online"] for s in streams)


def wait_for(what: str, check, timeout: float) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - start


async def viewer_decodes(base: str, frames: int) -> None:
    viewer = await whep_play_video(base, "ipcam0")
    try:
        start = time.monotonic()
        while viewer.video_frames < frames:
            assert time.monotonic() - start < 15, f"WHEP viewer decoded {viewer.video_frames}"
            await asyncio.sleep(0.1)
        assert (320, 240) in viewer.sizes, viewer.sizes
    finally:
        await close_all(viewer)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_ip_camera_is_a_stream_and_comes_back_after_a_restart(tmp_path: Path, transport: str) -> None:
    if any("stub_server" in part for part in server_command()):
        pytest.skip("the stub server has no RTSP sources")
    cam_port = free_port(socket.SOCK_STREAM)
    rtsp_port = free_port(socket.SOCK_STREAM)
    config = tmp_path / "r58.toml"
    config.write_text(
        f'[[source]]\nname = "ipcam0"\nurl = "rtsp://127.0.0.1:{cam_port}/cam"\ntransport = "{transport}"\n'
    )
    cam = start_camera(cam_port)
    try:
        args = ["--config", str(config), "--rtsp-listen", f"127.0.0.1:{rtsp_port}"]
        with launch(args, tmp_path / "server.log") as srv:
            took = wait_for("ipcam0 online", lambda: stream_online(srv.base, "ipcam0"), 15)
            print(f"ipcam0 online {took:.1f} s after start")
            run(srv, viewer_decodes(srv.base, 30))
            # LL-HLS and RTSP out, decoded by ffmpeg.
            for url in (f"{srv.base}/hls/ipcam0/index.m3u8", f"rtsp://127.0.0.1:{rtsp_port}/ipcam0"):
                done = subprocess.run(
                    ["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-frames:v", "30",
                     "-f", "framemd5", "-"],
                    capture_output=True, text=True, timeout=40,
                )  # fmt: skip
                assert done.returncode == 0, f"{url}: {done.stderr[-1000:]}"
                frames = [l for l in done.stdout.splitlines() if l and not l.startswith("#")]
                assert len(frames) == 30, f"{url}: {len(frames)} frames"
            # The camera dies: the stream ends (connection lost, or a stall at the latest).
            cam.kill()
            cam.wait()
            took = wait_for(
                "ipcam0 offline", lambda: not stream_online(srv.base, "ipcam0"), STALL_S + SLACK_S
            )
            print(f"ipcam0 offline {took:.1f} s after the camera was killed")
            time.sleep(3)  # let the backoff grow past its first steps
            cam = start_camera(cam_port)
            took = wait_for(
                "ipcam0 back",
                lambda: stream_online(srv.base, "ipcam0"),
                BACKOFF_MAX_S + SLACK_S,
            )
            print(f"ipcam0 back {took:.1f} s after the camera restarted")
            run(srv, viewer_decodes(srv.base, 30))
            # A camera that hangs (connection open, no packets): ended as stalled, then back.
            cam.send_signal(signal.SIGSTOP)
            took = wait_for(
                "ipcam0 stalled", lambda: not stream_online(srv.base, "ipcam0"), STALL_S + SLACK_S
            )
            print(f"ipcam0 ended {took:.1f} s after the camera hung (stall limit {STALL_S} s)")
            assert took >= STALL_S - 1, "ended before the stall limit"
            cam.send_signal(signal.SIGCONT)
            took = wait_for(
                "ipcam0 back after the hang",
                lambda: stream_online(srv.base, "ipcam0"),
                BACKOFF_MAX_S + SLACK_S,
            )
            print(f"ipcam0 back {took:.1f} s after the camera resumed")
    finally:
        cam.kill()
        cam.wait()


@pytest.mark.parametrize("camera", ["h265", "h265-sdp-only"])
def test_an_h265_camera_is_passed_through_to_rtsp_readers_only(tmp_path: Path, camera: str) -> None:
    """``h265-sdp-only``: the camera sends its VPS/SPS/PPS in band before its first keyframe
    only, so r58's DESCRIBE takes them from the camera's SDP once the keyframe cache holds a
    later keyframe (x265's CRA pictures) without them."""
    if any("stub_server" in part for part in server_command()):
        pytest.skip("the stub server has no RTSP sources")
    cam_port = free_port(socket.SOCK_STREAM)
    rtsp_port = free_port(socket.SOCK_STREAM)
    config = tmp_path / "r58.toml"
    config.write_text(f'[[source]]\nname = "ipcam0"\nurl = "rtsp://127.0.0.1:{cam_port}/cam"\n')
    cam = start_camera(cam_port, camera)
    try:
        args = ["--config", str(config), "--rtsp-listen", f"127.0.0.1:{rtsp_port}"]
        with launch(args, tmp_path / "server.log") as srv:
            wait_for("ipcam0 online", lambda: stream_online(srv.base, "ipcam0"), 15)
            # Past the camera's first keyframe (1 s GOP): the cached one is a later one.
            time.sleep(1.5)
            with urllib.request.urlopen(f"{srv.base}/api/streams", timeout=5) as resp:
                stream = next(s for s in json.load(resp) if s["name"] == "ipcam0")
            assert [t["codec"] for t in stream["tracks"]] == ["H265"], stream
            unavailable = stream["unavailable"]
            assert sorted(unavailable) == ["hls", "program", "webrtc"], unavailable
            assert "H.265" in unavailable["webrtc"] and "RTSP" in unavailable["webrtc"], unavailable

            # WHEP: 422 with the same reason.
            offer = (HERE.parent.parent / "sfu/testdata/sdp/chrome_whep.sdp").read_text()
            request = urllib.request.Request(
                f"{srv.base}/whep/ipcam0", data=offer.encode(), method="POST",
                headers={"Content-Type": "application/sdp"},
            )  # fmt: skip
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=5)
            reason = refused.value.read().decode()
            assert refused.value.code == 422, reason
            assert "H.265" in reason, reason

            # RTSP out: described as H.265 with its parameter sets; ffmpeg decodes it.
            url = f"rtsp://127.0.0.1:{rtsp_port}/ipcam0"
            with socket.create_connection(("127.0.0.1", rtsp_port), timeout=5) as rtsp:
                rtsp.sendall(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n".encode())
                described = b""
                while b"a=control:trackID=0" not in described:
                    chunk = rtsp.recv(4096)
                    assert chunk, described
                    described += chunk
            sdp = described.decode()
            assert "a=rtpmap:96 H265/90000" in sdp, sdp
            assert all(f"sprop-{p}=" in sdp for p in ("vps", "sps", "pps")), sdp
            probe = subprocess.run(
                ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_streams", "-of", "json", url],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert probe.returncode == 0, probe.stderr[-1000:]
            streams = json.loads(probe.stdout)["streams"]
            assert [(s["codec_name"], s["width"], s["height"]) for s in streams] == [("hevc", 320, 240)], streams
            done = subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", url,
                 "-frames:v", "30", "-f", "framemd5", "-"],
                capture_output=True, text=True, timeout=40,
            )  # fmt: skip
            assert done.returncode == 0, f"{url}: {done.stderr[-1000:]}"
            frames = [l for l in done.stdout.splitlines() if l and not l.startswith("#")]
            assert len(frames) == 30, f"{url}: {len(frames)} frames"
            assert len({l.split(",")[-1] for l in frames}) > 1, "the picture moves"

            # LL-HLS has none of it, with the reason.
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(f"{srv.base}/hls/ipcam0/index.m3u8", timeout=10)
            assert missing.value.code == 404, missing.value.read().decode()
    finally:
        cam.kill()
        cam.wait()


@pytest.mark.parametrize("camera", ["h265", "h265-sdp-only"])
def test_an_h265_camera_is_recorded(tmp_path: Path, camera: str) -> None:
    """r58 records the H.265 camera for about 6.5 s in 2 s files. Each is ``hvc1`` HEVC of
    320x240 to ffprobe; ffmpeg decodes every sample of it without a word on stderr, and the
    frames fill its duration at 30 fps (``framemd5`` pts 3000 ticks apart, no gap). With
    ``h265-sdp-only`` the keyframes the recorder gets (x265's CRA pictures, after the camera's
    first) carry no parameter sets: every file's come from the camera's SDP."""
    if shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ffmpeg/ffprobe missing")
        pytest.skip("ffmpeg/ffprobe missing")
    if any("stub_server" in part for part in server_command()):
        pytest.skip("the stub server has no RTSP sources")
    cam_port = free_port(socket.SOCK_STREAM)
    rec = tmp_path / "rec"
    config = tmp_path / "r58.toml"
    config.write_text(
        f'[[source]]\nname = "ipcam0"\nurl = "rtsp://127.0.0.1:{cam_port}/cam"\n\n'
        f'[recording]\ndir = "{rec}"\nsegment_secs = 2\nstreams = ["cameras"]\n'
        "min_free_bytes = 0\nmin_free_percent = 0\n"
    )
    cam = start_camera(cam_port, camera)
    try:
        with launch(["--config", str(config)], tmp_path / "server.log") as srv:
            wait_for("ipcam0 online", lambda: stream_online(srv.base, "ipcam0"), 15)
            # Past the camera's first keyframe (1 s GOP): the recorder starts at a later one.
            time.sleep(1.5)
            with urllib.request.urlopen(f"{srv.base}/api/streams", timeout=5) as resp:
                stream = next(s for s in json.load(resp) if s["name"] == "ipcam0")
            assert "recording" not in stream["unavailable"], stream["unavailable"]
            started = time.monotonic()
            assert srv.api("POST", "/api/recordings/start", {"stream": "ipcam0"})[0] == 200
            time.sleep(6.5)
            status, body = srv.api("POST", "/api/recordings/stop", {"stream": "ipcam0"})
            stopped = time.monotonic()
            assert status == 200, body
            state = json.loads(srv.api("GET", "/api/recordings")[1])
            events = [(e["kind"], e.get("detail")) for e in state["status"]["events"]]
            assert not [e for e in events if e[0] == "error"], events
    finally:
        cam.kill()
        cam.wait()

    files = sorted((rec / "ipcam0").glob("ipcam0_*.mp4"))
    assert len(files) >= 3, files
    total = 0
    for path in files:
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-count_packets", "-show_streams", "-show_format",
             "-of", "json", str(path)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert probe.returncode == 0 and not probe.stderr.strip(), f"{path.name}: {probe.stderr}"
        info = json.loads(probe.stdout)
        streams = info["streams"]
        described = [(s["codec_name"], s["codec_tag_string"], s["width"], s["height"]) for s in streams]
        assert described == [("hevc", "hvc1", 320, 240)], streams
        samples = int(streams[0]["nb_read_packets"])
        decoded = subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "framemd5", "-"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert decoded.returncode == 0 and not decoded.stderr.strip(), (
            f"{path.name}: {decoded.stderr[-1000:]}"
        )
        frames = [l.split(",") for l in decoded.stdout.splitlines() if l and not l.startswith("#")]
        assert len(frames) == samples, f"{path.name}: {len(frames)} frames of {samples} samples"
        # framemd5 writes pts in 1/30 s (the frame rate) or finer; every step the same.
        pts = [int(f[2]) for f in frames]
        steps = {b - a for a, b in zip(pts, pts[1:])}
        assert len(steps) == 1, f"{path.name}: pts steps {sorted(steps)}"
        duration = float(info["format"]["duration"])
        assert abs(len(frames) - duration * 30) <= 1, (path.name, len(frames), duration)
        print(f"{path.name}: {len(frames)} frames, {duration:.3f} s, {path.stat().st_size} bytes")
        total += len(frames)
    # The recorder starts from the cached keyframe (up to a GOP, 30 frames, before the start)
    # and what was still on its way when the stop came is not written.
    expected = (stopped - started) * 30
    print(f"{total} frames recorded in {stopped - started:.2f} s (expected about {expected:.0f})")
    assert expected - 15 <= total <= expected + 35, (total, expected)
