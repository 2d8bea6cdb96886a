"""The program's audio mix, heard by an aiortc viewer of ``program``.

Two aiortc guests publish H.264 and a tone each (440 Hz and 660 Hz); the viewer
decodes the program's Opus and the test measures each tone's level with an FFT: both at their
strips' gains (against each voice heard directly), nothing of a muted strip, only the program source's tone when strips follow
video (afv), and no clipping when the sum would go over full scale (the limiter). The strips
are set the way automation sets them: ``POST /api/switcher/audio``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from r58client import whep_play, whip_publish  # noqa: E402
from test_whip_whep import Server, close_all, delete_quietly, run, server  # noqa: E402,F401

RATE = 48_000


async def post(http: aiohttp.ClientSession, base: str, path: str, body: dict) -> dict:
    async with http.post(f"{base}{path}", json=body) as resp:
        text = await resp.text()
        assert resp.status == 200, f"POST {path} {body}: {resp.status} {text}"
        return json.loads(text)


async def on_program(http: aiohttp.ClientSession, base: str, name: str) -> None:
    """Waits until the cut to ``name`` was taken (the program stream exists from the first)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        async with http.get(f"{base}/api/switcher") as resp:
            if (await resp.json())["program"] == name:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} never went to program")


def tone_levels(viewer, seconds: float, freqs=(440.0, 660.0)) -> dict[float, float]:
    """dBFS of each frequency in the last ``seconds`` of the viewer's decoded audio (left)."""
    frames = [pcm for _, pcm in viewer.audio_pcm]
    assert frames, "no audio decoded"
    # aiortc decodes Opus to s16 stereo, interleaved in one row.
    samples = np.concatenate([f.reshape(-1) for f in frames]).astype(np.float64) / 32768.0
    left = samples[0::2][-int(seconds * RATE) :]
    window = np.hanning(len(left))
    spectrum = np.abs(np.fft.rfft(left * window)) * 2 / window.sum()
    bins = np.fft.rfftfreq(len(left), 1 / RATE)
    out = {}
    for f in freqs:
        near = (bins > f - 5) & (bins < f + 5)
        out[f] = 20 * np.log10(max(spectrum[near].max(), 1e-9))
    out["peak"] = float(np.abs(left).max())
    return out


def since(viewer, t: float):
    """A copy of the viewer with only the audio received after ``t`` (monotonic)."""

    class Cut:
        audio_pcm = [(at, pcm) for at, pcm in viewer.audio_pcm if at >= t]

    return Cut


def test_program_mixes_every_voice_at_its_gain(server: Server) -> None:
    async def scenario() -> None:
        a = await whip_publish(server.base, "voice_a", tone_hz=440.0)
        b = await whip_publish(server.base, "voice_b", tone_hz=660.0)
        viewer = None
        http = aiohttp.ClientSession()
        try:
            await asyncio.sleep(1.0)
            await post(http, server.base, "/api/switcher/program", {"source": "voice_a"})
            await post(http, server.base, "/api/switcher/audio",
                       {"source": "voice_a", "mode": "on", "gain_db": 0})  # fmt: skip
            state = await post(http, server.base, "/api/switcher/audio",
                               {"source": "voice_b", "mode": "on", "gain_db": -6})  # fmt: skip
            assert state["audio"]["strips"]["voice_b"] == {"gain_db": -6.0, "mute": False, "mode": "on"}
            await on_program(http, server.base, "voice_a")
            viewer = await whep_play(server.base, "program", keep_audio=True)
            # The voices as they are, for reference: a direct viewer of each.
            direct = [await whep_play(server.base, n, keep_audio=True) for n in ("voice_a", "voice_b")]

            # Both voices, 6 dB apart.
            await asyncio.sleep(3.0)
            now = time.monotonic()
            both = tone_levels(since(viewer, now - 1.5), 1.5)
            ref = {
                440.0: tone_levels(since(direct[0], now - 1.5), 1.5)[440.0],
                660.0: tone_levels(since(direct[1], now - 1.5), 1.5)[660.0],
            }
            await delete_quietly(*direct)
            await close_all(*direct)
            print(f"on/on, 0/-6 dB: {both}; the voices alone: {ref}")
            assert abs(both[440.0] - ref[440.0]) < 1.5, (both, ref)
            assert abs(both[660.0] - (ref[660.0] - 6.0)) < 1.5, (both, ref)
            level = ref[440.0]

            # Muted: gone.
            await post(http, server.base, "/api/switcher/audio", {"source": "voice_b", "mute": True})
            t = time.monotonic()
            await asyncio.sleep(1.5)
            muted = tone_levels(since(viewer, t + 0.5), 1.0)
            print(f"voice_b muted: {muted}")
            assert muted[660.0] < level - 40, muted
            assert abs(muted[440.0] - level) < 1.5, muted

            # Audio follows video: only the program source, then the other after a cut.
            for name in ("voice_a", "voice_b"):
                await post(http, server.base, "/api/switcher/audio",
                           {"source": name, "mode": "afv", "mute": False, "gain_db": 0})  # fmt: skip
            t = time.monotonic()
            await asyncio.sleep(1.5)
            afv_a = tone_levels(since(viewer, t + 0.5), 1.0)
            await post(http, server.base, "/api/switcher/program", {"source": "voice_b"})
            await on_program(http, server.base, "voice_b")
            t = time.monotonic()
            await asyncio.sleep(2.0)
            afv_b = tone_levels(since(viewer, t + 1.0), 1.0)
            async with http.get(f"{server.base}/api/switcher/audio") as resp:
                stats = (await resp.json())["stats"]
            print(f"afv, program voice_a: {afv_a}; after the cut to voice_b: {afv_b}; {stats}")
            assert afv_a[440.0] > level - 1.5 and afv_a[660.0] < level - 40, afv_a
            assert afv_b[660.0] > ref[660.0] - 1.5 and afv_b[440.0] < level - 40, afv_b

            # Both at +12 dB: the sum would be ~+6 dBFS; the limiter keeps it under full scale.
            for name in ("voice_a", "voice_b"):
                await post(http, server.base, "/api/switcher/audio",
                           {"source": name, "mode": "on", "gain_db": 12})  # fmt: skip
            t = time.monotonic()
            await asyncio.sleep(2.0)
            loud = tone_levels(since(viewer, t + 0.5), 1.5)
            async with http.get(f"{server.base}/api/switcher/audio") as resp:
                audio = await resp.json()
            print(f"+12/+12 dB: {loud}; master level {audio['master_level']}; stats {audio['stats']}")
            assert loud["peak"] < 1.0, loud
            assert audio["master_level"]["hold_db"] <= -0.99, audio["master_level"]
            assert audio["stats"]["limited_frames"] > 0
            assert audio["stats"]["decode_errors"] == 0
            assert set(audio["levels"]) >= {"voice_a", "voice_b"}
        finally:
            await http.close()
            await delete_quietly(*(x for x in (viewer, a, b) if x))
            await close_all(*(x for x in (viewer, a, b) if x))

    run(server, scenario(), timeout=60)


def test_audio_api_refuses_bad_settings(server: Server) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            for body, status, words in [
                ({"source": "x", "gain_db": 40}, 400, "outside -60..=+12 dB"),
                ({"gain_db": -3}, 400, "needs a source"),
                ({"source": "x", "mode": "loud"}, 422, "unknown variant"),
                ({"source": "program", "mute": True}, 422, "itself"),
                ({"master_gain_db": 99}, 400, "outside"),
                ({"volume": 1}, 422, "unknown field"),
            ]:
                async with http.post(f"{server.base}/api/switcher/audio", json=body) as resp:
                    text = await resp.text()
                    print(f"{body} -> {resp.status} {text.strip()}")
                    assert resp.status == status and words in text, (body, resp.status, text)

    run(server, scenario(), timeout=20)


def onset(viewer, freq: float, after: float) -> float | None:
    """Monotonic arrival time of the first 20 ms frame (after ``after``) where ``freq`` sounds."""
    for at, pcm in viewer.audio_pcm:
        if at < after:
            continue
        left = pcm.reshape(-1).astype(np.float64)[0::2] / 32768.0
        n = len(left)
        w = 2 * np.pi * freq / RATE
        magnitude = abs(np.dot(left, np.exp(-1j * w * np.arange(n)))) * 2 / n
        if magnitude > 0.05:
            return at
    return None


def test_each_guest_hears_the_others_not_itself_and_the_talkback(server: Server) -> None:
    """Mix-minus: voice_a's return has voice_b and not voice_a, and the other way round; the
    talkback reaches voice_a only and never the program; mouth-to-ear delay measured."""

    async def scenario() -> None:
        a = await whip_publish(server.base, "voice_a", tone_hz=440.0)
        b = await whip_publish(server.base, "voice_b", tone_hz=660.0)
        talk = await whip_publish(server.base, "talkback", tone_hz=1000.0, video=False)
        viewers = []
        http = aiohttp.ClientSession()
        try:
            for name in ("voice_a", "voice_b"):
                await post(http, server.base, "/api/switcher/audio", {"source": name, "mode": "on", "gain_db": 0})
            await post(http, server.base, "/api/switcher/program", {"source": "voice_a"})
            await on_program(http, server.base, "voice_a")
            await post(http, server.base, "/api/switcher/talkback", {"source": "talkback", "to": "voice_a"})
            # The return feeds open within a few hundred milliseconds of a guest going live.
            # (The talkback published as a guest first: its return closes once it talks.)
            deadline = time.monotonic() + 5
            names = set()
            returns = {"voice_a.return", "voice_b.return"}
            while time.monotonic() < deadline and (
                not returns <= names or "talkback.return" in names
            ):
                async with http.get(f"{server.base}/api/streams") as resp:
                    names = {s["name"] for s in await resp.json() if s["online"]}
                await asyncio.sleep(0.1)
            assert returns <= names, names
            assert "talkback.return" not in names, "the talkback is no guest"
            ret_a = await whep_play(server.base, "voice_a.return", keep_audio=True)
            ret_b = await whep_play(server.base, "voice_b.return", keep_audio=True)
            pgm = await whep_play(server.base, "program", keep_audio=True)
            viewers = [ret_a, ret_b, pgm]
            await asyncio.sleep(3.0)
            now = time.monotonic()
            la = tone_levels(since(ret_a, now - 1.5), 1.5, (440.0, 660.0, 1000.0))
            lb = tone_levels(since(ret_b, now - 1.5), 1.5, (440.0, 660.0, 1000.0))
            lp = tone_levels(since(pgm, now - 1.5), 1.5, (440.0, 660.0, 1000.0))
            print(f"voice_a hears {la}\nvoice_b hears {lb}\nprogram {lp}")
            assert la[660.0] > -30 and la[440.0] < la[660.0] - 40, ("a hears b, not itself", la)
            assert la[1000.0] > -30, ("the talkback reaches a", la)
            assert lb[440.0] > -30 and lb[660.0] < lb[440.0] - 40, ("b hears a, not itself", lb)
            assert lb[1000.0] < lb[440.0] - 40, ("the talkback is not for b", lb)
            assert lp[1000.0] < lp[440.0] - 40, ("the talkback is never on program", lp)

            # Mouth to ear: voice_b falls silent, then speaks at a known moment; when does
            # voice_a's return carry it?
            assert b.audio is not None
            b.audio.silent_until = time.time() + 1.0
            await asyncio.sleep(0.5)
            spoke_at = time.monotonic() + (b.audio.silent_until - time.time())
            await asyncio.sleep(1.5)
            heard_at = onset(ret_a, 660.0, spoke_at - 0.2)
            assert heard_at is not None, "voice_b never reached voice_a's return"
            delay_ms = (heard_at - spoke_at) * 1000
            async with http.get(f"{server.base}/api/switcher/audio") as resp:
                stats = (await resp.json())["stats"]
            print(f"mouth-to-ear voice_b -> r58 -> voice_a: {delay_ms:.0f} ms; mixer {stats}")
            assert 0 < delay_ms < 400, delay_ms
        finally:
            await http.close()
            await delete_quietly(*viewers, a, b, talk)
            await close_all(*viewers, a, b, talk)

    run(server, scenario(), timeout=60)
