"""r58 to GStreamer's webrtcbin as a WHEP viewer (gst_whep.py), as GStreamer-based players offer.

webrtcbin with ``bundle-policy=max-bundle`` puts port 0 and ``a=bundle-only`` on every m-line
but the first; a player that offers audio first for a video-only camera makes that audio m-line
the offerer-tagged one, which r58 must keep in the BUNDLE group (inactive) or the player never
starts ICE. Each case counts the frames webrtcbin's decoders (openh264dec, opusdec) put out.
Skipped without GStreamer unless CI=true (see test_gstreamer.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from r58server import Server, launch, server_command  # noqa: E402
from test_gstreamer import GST_WHIP, SYSTEM_PYTHON, gstreamer, tail  # noqa: E402,F401

GST_WHEP = HERE / "gst_whep.py"
FPS = 30  # the camera below and gst_whip.py
WATCH_SECONDS = 4.0


@pytest.fixture(scope="module")
def camera_server(tmp_path_factory) -> Server:
    if any("stub_server" in part for part in server_command()):
        pytest.skip("the stub server has no test cameras")
    work = tmp_path_factory.mktemp("r58gstwhep")
    # One small camera: video only, H.264 constrained baseline, as the box's cameras.
    (work / "r58.toml").write_text(
        f"[test_cameras]\ncount = 1\nwidth = 320\nheight = 240\nfps = {FPS}\n"
    )
    # The flag: launch() turns test cameras off through the environment, which beats the file.
    args = ["--config", str(work / "r58.toml"), "--test-cameras", "1"]
    with launch(args, work / "server.log") as srv:
        wait_for_stream(srv, "cam0")
        yield srv


def wait_for_stream(server: Server, name: str, seconds: float = 15) -> None:
    import json
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{server.base}/api/streams", timeout=5) as resp:
            if any(s["name"] == name and s.get("online") for s in json.load(resp)):
                return
        time.sleep(0.2)
    pytest.fail(f"stream {name} never came online:\n{server.log_tail()}")


def run_viewer(server: Server, name: str, *args: str, seconds: float = WATCH_SECONDS):
    """Runs gst_whep.py to the end; returns (exit code, stdout lines, last FRAMES counts)."""
    log = server.log.parent / f"gst_whep_{name}_{'_'.join(a.strip('-') for a in args)}.log"
    with open(log, "wb") as errf:
        done = subprocess.run(
            [SYSTEM_PYTHON, str(GST_WHEP), server.base, name, "--seconds", str(seconds), *args],
            stdout=subprocess.PIPE,
            stderr=errf,
            timeout=seconds + 30,
        )
    lines = done.stdout.decode(errors="replace").splitlines()
    counts = {"video": 0, "audio": 0}
    for line in lines:
        if line.startswith("FRAMES "):
            counts = {k: int(v) for k, v in (p.split("=") for p in line.split()[1:])}
    print(f"gst_whep.py {name} {' '.join(args)}: exit {done.returncode}, {lines[-3:]}")
    print(f"--- its log (tail) ---\n{tail(log, 12)}")
    return done.returncode, lines, counts


@pytest.mark.parametrize("media", ["av", "va", "v"])
def test_webrtcbin_max_bundle_plays_a_video_only_camera(
    gstreamer: None, camera_server: Server, media: str
) -> None:
    """Audio first, audio last or video only: the camera's video is decoded every time."""
    code, lines, counts = run_viewer(camera_server, "cam0", "--media", media)
    assert code == 0 and "connected" in lines, lines
    expected = FPS * WATCH_SECONDS
    # From the POST to the end, minus connection setup: half the frames is a safe floor, far
    # above the zero frames of a player that never starts ICE.
    assert counts["video"] >= 0.5 * expected, f"{counts} of ~{expected:.0f} frames"
    assert counts["audio"] == 0, counts


def test_webrtcbin_without_packetization_mode_is_told_exactly_why(
    gstreamer: None, camera_server: Server
) -> None:
    code, lines, _ = run_viewer(
        camera_server, "cam0", "--h264-fmtp", "profile-level-id=42e01f", seconds=2
    )
    errors = [line for line in lines if line.startswith("ERROR")]
    assert code == 1 and errors, lines
    assert "HTTP 422" in errors[0], errors
    assert "packetization-mode=0 (no packetization-mode given" in errors[0], errors


def test_webrtcbin_plays_a_webrtcbin_guest_with_audio(
    gstreamer: None, camera_server: Server
) -> None:
    """A GStreamer WHIP publisher (H.264 + Opus) watched by a GStreamer WHEP viewer."""
    pub_log = camera_server.log.parent / "gst_whip_guest.log"
    with open(pub_log, "wb") as errf:
        publisher = subprocess.Popen(
            [SYSTEM_PYTHON, str(GST_WHIP), camera_server.base, "gstguest"],
            stdout=subprocess.DEVNULL,
            stderr=errf,
        )
    try:
        wait_for_stream(camera_server, "gstguest", seconds=20)
        code, lines, counts = run_viewer(camera_server, "gstguest", "--media", "av")
        assert code == 0 and "connected" in lines, lines
        assert counts["video"] >= 0.5 * FPS * WATCH_SECONDS, counts
        # opusdec puts out one buffer per 20 ms packet.
        assert counts["audio"] >= 0.5 * 50 * WATCH_SECONDS, counts
    finally:
        publisher.terminate()
        try:
            publisher.wait(10)
        except subprocess.TimeoutExpired:
            publisher.kill()
        print(f"--- gst_whip.py log (tail) ---\n{tail(pub_log, 10)}")
