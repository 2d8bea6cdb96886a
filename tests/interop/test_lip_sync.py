"""Lip sync of the program across cuts, as a player that honours sender reports renders it.

Two aiortc guests publish the test pattern (a frame counter in every picture) and, instead of a
steady tone, a 40 ms tone burst starting at the capture instant of every 15th frame (a
clapperboard twice a second; guest A at 1 kHz, guest B at 1.6 kHz, so a burst says whose it is).
Their strips follow video (the default `afv`), so the program carries the video and the voice of
whoever is on it. The switcher cuts between them 20 times. An aiortc viewer of `program` decodes
both tracks and notes every RTCP sender report r58 sends it.

Each burst in the program audio is placed on the wall clock through the audio track's sender
reports, each clapperboard frame (counter a multiple of 15) through the video track's; the lip
sync error of a burst is the difference to its own frame. A browser plays the two tracks with
exactly that offset (it schedules both by their sender reports), so this is what a viewer sees.
Media within half a second of a cut is left out: there the voice fades over (by design) and a
sender report from before the cut may describe a timeline the cut changed.

For the record the same is measured on a direct viewer of guest A (r58 forwards the guest's own
sender reports): the offset aiortc's publisher itself has.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from r58client import FPS, whep_play, whip_publish  # noqa: E402
from test_audio_mix import on_program, post  # noqa: E402
from test_whip_whep import Server, close_all, delete_quietly, run, server  # noqa: E402,F401

RATE = 48_000
EVERY = 15  # a burst every 15 frames: twice a second
BURST_SECS = 0.04
GUESTS = {"lip_a": (0, 1000.0), "lip_b": (6000, 1600.0)}  # counter_start, burst tone
CUTS = 20
HOLD_SECS = 2.4
# Left out around a cut: from its request until this long after it was taken.
CUT_MARGIN = 0.5
LIMIT_MS = 40.0
WRAP = 1 << 32


def rtp_diff(a: int, b: int) -> int:
    """a - b on the 32-bit RTP clock."""
    return (a - b + (1 << 31)) % WRAP - (1 << 31)


def segment(t: float, quiet: list[tuple[float, float]]) -> int | None:
    """Which stretch between cut windows `t` falls in (None: inside one)."""
    if any(start <= t <= end for start, end in quiet):
        return None
    return sum(1 for _, end in quiet if end < t)


class Clock:
    """One track's RTP timestamps -> wall clock (NTP seconds), through its sender reports.

    As a browser does (it fits its RTP-to-NTP estimate over its recent reports), every report of
    the stretch between cuts the media belongs to is used and the median taken, so one report
    made from a late packet does not decide alone; reports from across a cut are not mixed in."""

    def __init__(self, reports: list, rate: int, quiet: list[tuple[float, float]]) -> None:
        self.reports = reports  # (arrival, ntp, rtp)
        self.rate = rate
        self.quiet = quiet

    def wall(self, rtp: int, arrival: float) -> float | None:
        here = segment(arrival, self.quiet)
        if here is None:
            return None
        candidates = [
            ntp / 2**32 + rtp_diff(rtp, sr_rtp) / self.rate
            for at, ntp, sr_rtp in self.reports
            if segment(at, self.quiet) == here
        ]
        return statistics.median(candidates) if candidates else None


def bursts(viewer) -> list[tuple[int, float, float]]:
    """(RTP timestamp of the onset, arrival time, tone Hz) of every burst in the decoded audio:
    a loud sample after at least 100 ms of silence."""
    decoded = [
        (pts, arrival, pcm.reshape(-1)[0::2].astype(np.float64) / 32768.0)  # left channel
        for (arrival, pcm), pts in zip(viewer.audio_pcm, viewer.audio_pts)
    ]
    decoded = [(viewer.rtp_time("audio", pts), arrival, left) for pts, arrival, left in decoded]
    found = []
    last_loud = None
    for i, (pts, arrival, left) in enumerate(decoded):
        loud = np.flatnonzero(np.abs(left) > 0.06)
        if len(loud) == 0:
            continue
        onset = pts + int(loud[0])
        if last_loud is None or rtp_diff(onset, last_loud) > RATE // 10:
            # The tone's frequency from the 20 ms after the onset (this frame and the next).
            window = left[int(loud[0]) :]
            if i + 1 < len(decoded) and decoded[i + 1][0] == (pts + len(left)) % WRAP:
                window = np.concatenate([window, decoded[i + 1][2]])
            window = window[: int(0.02 * RATE)]
            if len(window) >= int(0.01 * RATE):
                spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
                hz = float(np.fft.rfftfreq(len(window), 1 / RATE)[int(np.argmax(spectrum))])
                found.append((onset % WRAP, arrival, hz))
        last_loud = (pts + int(loud[-1])) % WRAP
    return found


def lip_sync(viewer, quiet: list[tuple[float, float]]) -> list[tuple[str, int, float]]:
    """(guest, stretch between cuts, audio minus video in ms) per burst measured."""
    reports = {"audio": [], "video": []}
    for kind, at, ntp, rtp in viewer.sender_reports:
        reports[kind].append((at, ntp, rtp))
    audio_clock = Clock(reports["audio"], RATE, quiet)
    video_clock = Clock(reports["video"], 90_000, quiet)

    def outside_cuts(t: float, margin: float = 0.0) -> bool:
        return not any(start - margin <= t <= end + margin for start, end in quiet)

    frames = {name: [] for name in GUESTS}  # clapperboard frames' wall times
    for counter, pts, arrival in viewer.video_pts:
        if counter is None or counter % EVERY:
            continue
        name = "lip_b" if counter >= GUESTS["lip_b"][0] else "lip_a"
        wall = video_clock.wall(viewer.rtp_time("video", pts), arrival)
        if wall is not None:
            frames[name].append(wall)
    measured = []
    for onset, arrival, hz in bursts(viewer):
        # Its own clapperboard frame arrived within ~100 ms of it: outside the windows too.
        if not outside_cuts(arrival, margin=0.15):
            continue
        name = min(GUESTS, key=lambda n: abs(GUESTS[n][1] - hz))
        if abs(GUESTS[name][1] - hz) > 150:
            continue
        wall = audio_clock.wall(onset, arrival)
        if wall is None or not frames[name]:
            continue
        nearest = min(frames[name], key=lambda f: abs(f - wall))
        # Clapperboards are 500 ms apart: the nearest frame is the burst's own unless the error
        # is over 250 ms, which the limit fails anyway.
        measured.append((name, segment(arrival, quiet), (wall - nearest) * 1000.0))
    return measured


def summary(values: list[float]) -> str:
    return (
        f"n={len(values)} mean={statistics.mean(values):+.1f} ms "
        f"min={min(values):+.1f} max={max(values):+.1f} "
        f"stdev={statistics.pstdev(values):.1f}"
    )


def test_program_keeps_lip_sync_across_twenty_cuts(server: Server) -> None:
    async def scenario() -> None:
        guests = []
        viewers = []
        http = aiohttp.ClientSession()
        try:
            for name, (start, hz) in GUESTS.items():
                pub = await whip_publish(server.base, name, counter_start=start, tone_hz=hz)
                pub.audio.bursts = (pub.video, EVERY, BURST_SECS)
                guests.append(pub)
            await asyncio.sleep(1.0)
            await post(http, server.base, "/api/switcher/program", {"source": "lip_a"})
            await on_program(http, server.base, "lip_a")
            program = await whep_play(server.base, "program", timing=True)
            direct = await whep_play(server.base, "lip_a", timing=True)
            viewers = [program, direct]

            quiet: list[tuple[float, float]] = []
            # Settle (first keyframe, first sender reports), then 20 cuts.
            started = time.monotonic()
            await asyncio.sleep(2.0)
            quiet.append((started - 60, started + 1.0))
            names = list(GUESTS)
            for i in range(CUTS):
                target = names[(i + 1) % 2]
                asked = time.monotonic()
                await post(http, server.base, "/api/switcher/program", {"source": target})
                await on_program(http, server.base, target)
                quiet.append((asked - 0.05, time.monotonic() + CUT_MARGIN))
                await asyncio.sleep(HOLD_SECS)

            measured = lip_sync(program, quiet)
            reference = [ms for _, _, ms in lip_sync(direct, [(started - 60, started + 1.0)])]
            async with http.get(f"{server.base}/api/switcher/audio") as resp:
                stats = (await resp.json())["stats"]
            print(f"direct viewer of lip_a (the publisher's own sync): {summary(reference)}")
            for name in GUESTS:
                values = [ms for n, _, ms in measured if n == name]
                if values:
                    print(f"program, {name}'s bursts: {summary(values)}")
            values = [ms for _, _, ms in measured]
            print(f"program, all bursts over {CUTS} cuts: {summary(values)}")
            holds: dict[int, list[float]] = {}
            for _, hold, ms in measured:
                holds.setdefault(hold, []).append(ms)
            medians = {hold: statistics.median(v) for hold, v in sorted(holds.items())}
            print("program, median per shot: " + " ".join(f"{m:+.0f}" for m in medians.values()))
            print(f"program sender reports: {len(program.sender_reports)}; mixer: {stats}")

            # Enough clapperboards on both sides of every cut to mean something.
            assert len(values) >= CUTS * 2, f"only {len(values)} bursts measured"
            assert len(holds) >= CUTS - 1, f"bursts in only {len(holds)} shots"
            for name in GUESTS:
                assert sum(1 for n, _, _ in measured if n == name) >= CUTS, measured
            # What a viewer sees: in sync overall, shot by shot and burst by burst. A shot or a
            # burst in ten may be off: on this 2-core machine the test's own Python process
            # (two H.264 encoders, two decoders) misses its schedule now and then, which moves
            # its clapperboards, not the server's timing; all of them are printed above.
            assert abs(statistics.median(values)) <= LIMIT_MS, summary(values)
            off = {hold: round(m) for hold, m in medians.items() if abs(m) > LIMIT_MS}
            assert len(off) <= len(medians) // 10, f"shots out of sync (median ms): {off}"
            outliers = [round(ms) for ms in values if abs(ms) > LIMIT_MS]
            assert len(outliers) <= len(values) // 10, f"off by more than {LIMIT_MS} ms: {outliers}"
        finally:
            await http.close()
            await delete_quietly(*viewers, *guests)
            await close_all(*viewers, *guests)

    run(server, scenario(), timeout=90)
