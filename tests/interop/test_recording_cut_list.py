"""The program's cut list as OpenTimelineIO and CMX 3600 (docs/recording.md, "Cut list"), read
back with the ``opentimelineio`` package (and its CMX 3600 adapter), against the frames
themselves:

A session records cam0, cam1 and the program while the switcher cuts cam0 -> cam1 -> cam0.
The ``.otio`` written on stop must name, in order, a cam0, a cam1 and a cam0 recording that
exist, with source ranges inside each file's wall-clock available range and the timeline's
time equal to the sources' at every cut; the EDL must say the same. Then the frame counters
decide whether the in and out points are right: the frame each clip's range points at in its
ISO file (decoded with PyAV) must be the frame the program recording shows at that cut (the
program carries the sources' own pictures, so the counters, which tell the cameras apart by
their high bits, match).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import av
import opentimelineio as otio
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from r58server import launch, server_command  # noqa: E402
from test_cameras import read_camera_counter  # noqa: E402
from test_recording import need_ffprobe, write_config  # noqa: E402

# Each camera's counter starts at the number its name ends with times 2^20
# (sfu/src/capture/pattern.rs), so a counter says which camera drew it.
CAMERA_BITS = 20
# Frames an in or out point may be off: the cut's time is when its keyframe went out, the
# files' times are their capture wall clock, and both are rounded down to whole frames (seen
# here: 0 to 2 frames, the ISO a little early). A wrong keyframe or file would be 30 off (the
# cameras' GOP) or a different camera.
TOLERANCE = 3


def switch(server, source: str) -> None:
    """Puts ``source`` on program."""
    status, body = server.api("POST", "/api/switcher/program", {"source": source})
    assert status == 200, body


def decoded(path: Path) -> list[tuple[float, int]]:
    """(seconds from the first frame, counter) of every video frame of ``path``."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            value = read_camera_counter(frame)
            assert value is not None, f"{path}: a frame whose counter does not read"
            frames.append((float(frame.time), value))
    first = frames[0][0]
    return [(t - first, value) for t, value in frames]


def at(frames: list[tuple[float, int]], seconds: float) -> int:
    """The counter of the frame showing at ``seconds`` into the file."""
    shown = [value for t, value in frames if t <= seconds + 1e-6]
    assert shown, f"no frame at {seconds:.3f} s"
    return shown[-1]


def test_cuts_between_two_cameras_as_otio(tmp_path: Path) -> None:
    need_ffprobe()
    if any("stub_server" in part for part in server_command()):
        pytest.skip("the stub server does not record")
    rec = tmp_path / "rec"
    config = write_config(
        tmp_path / "r58.toml",
        f'dir = "{rec}"\nstreams = ["cameras", "program"]\nmin_free_bytes = 0\n'
        "min_free_percent = 0",
    )
    with launch(["--config", str(config), "--test-cameras", "2"], tmp_path / "server.log") as server:
        deadline = time.monotonic() + 15
        while True:
            streams = json.loads(server.api("GET", "/api/streams")[1])
            if {"cam0", "cam1"} <= {s["name"] for s in streams if s.get("tracks")}:
                break
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        switch(server, "cam0")
        time.sleep(1)
        assert server.api("POST", "/api/recordings/start") == (200, '{"ok":true}')
        time.sleep(2.5)
        switch(server, "cam1")
        time.sleep(2.5)
        switch(server, "cam0")
        time.sleep(2.5)
        assert server.api("POST", "/api/recordings/stop")[0] == 200

    lists = sorted(rec.glob("cuts_*.otio"))
    assert len(lists) == 1, sorted(p.name for p in rec.iterdir())
    assert lists[0].with_suffix(".edl").is_file(), "the EDL beside it"
    timeline = otio.adapters.read_from_file(str(lists[0]))
    (track,) = timeline.video_tracks()
    clips = list(track.find_clips())
    assert [c.metadata["r58"]["stream"] for c in clips] == ["cam0", "cam1", "cam0"]
    start = timeline.global_start_time
    for clip in clips:
        url = clip.media_reference.target_url
        assert url.startswith(clip.metadata["r58"]["stream"] + "/"), url
        assert (rec / url).is_file(), f"{url} is not a recording"
        available = clip.available_range()
        # Inside the file (OTIO's contains() is strict at the ends; a clip may end at the
        # file's last frame).
        used = clip.source_range
        assert available.start_time <= used.start_time, (used, available)
        assert used.end_time_exclusive() <= available.end_time_exclusive(), (used, available)
        # The timeline's time at the clip equals the source's wall-clock time.
        placed = start + clip.range_in_parent().start_time
        assert abs((placed - clip.source_range.start_time).value) <= 1, (placed, clip)

    # The EDL beside it, read by OTIO's CMX 3600 adapter (which refuses an event whose source
    # and record lengths differ): the same files in order, the same in points as offsets into
    # the files (its source timecodes count from each file's first frame), within a frame.
    edl = otio.adapters.read_from_file(str(lists[0].with_suffix(".edl")), rate=30)
    edl_clips = list(edl.find_clips())
    assert [c.name for c in edl_clips] == [c.media_reference.target_url for c in clips]
    for from_edl, clip in zip(edl_clips, clips):
        offset = clip.source_range.start_time - clip.available_range().start_time
        assert abs((from_edl.source_range.start_time - offset).value) <= 1, (from_edl, clip)
        length = from_edl.source_range.duration - clip.source_range.duration
        assert abs(length.value) <= 1, (from_edl, clip)

    # The program recording: runs of frames, one per camera on program in turn.
    (program_file,) = (rec / "program").glob("program_*.mp4")
    runs: list[list[int]] = []
    for _, value in decoded(program_file):
        if not runs or runs[-1][-1] >> CAMERA_BITS != value >> CAMERA_BITS:
            runs.append([])
        runs[-1].append(value)
    assert [run[0] >> CAMERA_BITS for run in runs] == [0, 1, 0], [
        (run[0], run[-1]) for run in runs
    ]

    iso_frames = {}
    for n, clip in enumerate(clips):
        url = clip.media_reference.target_url
        frames = iso_frames.setdefault(url, decoded(rec / url))
        offset = clip.source_range.start_time - clip.available_range().start_time
        first_in = at(frames, offset.to_seconds())
        last_in = at(
            frames, (offset + clip.source_range.duration).to_seconds() - 1 / 30
        )
        print(
            f"{clip.name}: ISO frames {first_in}..{last_in}, "
            f"program {runs[n][0]}..{runs[n][-1]}"
        )
        assert first_in >> CAMERA_BITS == runs[n][0] >> CAMERA_BITS
        # Where the program cut to this clip and where it cut away, the ISO shows the frame
        # the program showed (the session's own start and end are not cuts).
        if n > 0:
            assert abs(first_in - runs[n][0]) <= TOLERANCE, (first_in, runs[n][0])
        if n < len(clips) - 1:
            assert abs(last_in - runs[n][-1]) <= TOLERANCE, (last_in, runs[n][-1])
