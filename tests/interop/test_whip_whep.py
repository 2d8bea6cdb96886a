"""r58 against aiortc: WHIP publish, WHEP play, DELETE, a killed publisher, takeover.

The server binary comes from R58_BIN (default target/debug/r58, relative to the repository
root; it may also be a command line such as "python tests/interop/stub_server.py"). It is
started once for this module on free loopback ports and killed at the end.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from r58client import (  # noqa: E402
    COUNTER_MOD,
    FPS,
    HEIGHT,
    WIDTH,
    HttpError,
    Viewer,
    whep_play,
    whip_publish,
)

from r58server import Server, launch  # noqa: E402

AUDIO_FPS = 50  # 20 ms Opus frames
SECOND_PUBLISHER = 8_000_000  # counter base for a second publisher's frames
assert SECOND_PUBLISHER < COUNTER_MOD


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    with launch([], tmp_path_factory.mktemp("r58") / "server.log") as srv:
        yield srv


def run(server: Server, coro, timeout: float = 60) -> None:
    """Run one async scenario; on failure show the server's log; check it did not die."""
    try:
        asyncio.run(asyncio.wait_for(coro, timeout))
    except BaseException:
        print(f"--- server log (tail) ---\n{server.log_tail()}")
        raise
    assert server.proc.poll() is None, f"server died:\n{server.log_tail()}"


async def wait_first_frame(viewer: Viewer, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while viewer.first_video_at is None:
        if viewer.ended.is_set():
            raise AssertionError(f"viewer ended before its first frame: {viewer.ended_how}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no video frame within {timeout} s of joining")
        await asyncio.sleep(0.02)


async def close_all(*sessions) -> None:
    for s in sessions:
        if s is not None:
            try:
                await s.close()
            except Exception as e:  # cleanup must not hide the real failure
                print(f"cleanup: {e!r}")


async def delete_quietly(*sessions) -> None:
    for s in sessions:
        if s is not None:
            try:
                await s.delete()
            except Exception as e:  # cleanup must not hide the real failure
                print(f"cleanup DELETE: {e!r}")


async def expect_whep_404(base: str, name: str) -> None:
    try:
        viewer = await whep_play(base, name)
    except HttpError as e:
        assert e.status == 404, f"WHEP for an ended stream: expected 404, got {e}"
        return
    await close_all(viewer)
    raise AssertionError(f"WHEP POST /whep/{name} succeeded for a stream that has ended")


@pytest.mark.parametrize("codec", ["video/H264", "video/VP8"])
def test_publish_and_three_viewers_join_at_different_times(server: Server, codec: str) -> None:
    """H.264 (or VP8, as Firefox sends) + Opus to /whip/guest1; viewers join at 0, 2 and 4 s;
    each decodes nearly all, the late ones starting within a second (the keyframe cache)."""

    async def scenario() -> None:
        pub = await whip_publish(server.base, "guest1", video_codec=codec)
        viewers: dict[str, Viewer] = {}
        t0 = time.monotonic()

        async def join(label: str, delay: float) -> None:
            await asyncio.sleep(max(0.0, t0 + delay - time.monotonic()))
            viewers[label] = await whep_play(server.base, "guest1")

        try:
            await asyncio.gather(join("A", 0), join("B", 2), join("C", 4))
            await asyncio.sleep(max(0.0, t0 + 8 - time.monotonic()))
            t_end = time.monotonic()
            snap = {
                k: (v.video_frames, v.audio_frames, dict(v.sizes), v.first_video_at, v.ended_how)
                for k, v in viewers.items()
            }
            assert pub.video is not None
            sent_at = dict(pub.video.sent_at)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{server.base}/api/streams") as resp:
                    stream = {s["name"]: s for s in await resp.json()}["guest1"]
            tracks = {t["kind"]: t for t in stream["tracks"]}
            print(f"video track: {tracks['video']}")
            assert tracks["video"]["codec"].lower() == codec.split("/")[1].lower()
            assert tracks["video"]["keyframes"] >= 1, "the hub found no keyframe"
            assert ("hls" in stream["unavailable"]) == (codec != "video/H264")
            problems = []
            for label, v in sorted(viewers.items()):
                video, audio, sizes, first, ended = snap[label]
                watched = t_end - v.posted_at
                expected = FPS * watched
                first_ms = None if first is None else (first - v.posted_at) * 1000
                lat = sorted(
                    (at - sent_at[c]) * 1000 for c, at in v.counters if c in sent_at and at <= t_end
                )
                lat_txt = (
                    f"latency p50 {statistics.median(lat):.0f} ms max {lat[-1]:.0f} ms"
                    if lat
                    else "no readable counters"
                )
                print(
                    f"viewer {label}: {video} video frames in {watched:.1f} s "
                    f"(expected ~{expected:.0f}), {audio} audio frames, sizes {sizes}, "
                    f"first frame {first_ms if first_ms is None else round(first_ms)} ms "
                    f"after POST, {lat_txt}"
                )
                if ended:
                    problems.append(f"{label}: session ended early ({ended})")
                if video < 0.8 * expected:
                    problems.append(f"{label}: {video} frames < 80% of {expected:.0f}")
                if set(sizes) - {(WIDTH, HEIGHT)}:
                    problems.append(f"{label}: frame sizes {sizes}, want only {WIDTH}x{HEIGHT}")
                if first_ms is None or first_ms > 1000:
                    problems.append(f"{label}: first frame {first_ms} ms after POST (> 1000)")
                if audio < 0.5 * AUDIO_FPS * watched:
                    problems.append(f"{label}: {audio} audio frames < 50% of expected")
            assert not problems, "; ".join(problems)
        finally:
            await delete_quietly(*viewers.values(), pub)
            await close_all(pub, *viewers.values())

    run(server, scenario())


def test_delete_publisher_ends_viewers(server: Server) -> None:
    """DELETE the publisher: its viewers end within 5 s; the name then answers WHEP with 404."""

    async def scenario() -> None:
        pub = await whip_publish(server.base, "guest2")
        v1 = v2 = None
        try:
            v1 = await whep_play(server.base, "guest2")
            v2 = await whep_play(server.base, "guest2")
            await wait_first_frame(v1)
            await wait_first_frame(v2)
            await asyncio.sleep(1.0)
            status = await pub.delete()
            t_del = time.monotonic()
            assert status == 200, f"DELETE publisher: HTTP {status}"
            try:
                await asyncio.wait_for(
                    asyncio.gather(v1.ended.wait(), v2.ended.wait()), timeout=5.0
                )
            finally:
                for name, v in (("v1", v1), ("v2", v2)):
                    took = "not ended" if v.ended_at is None else f"{v.ended_at - t_del:.2f} s"
                    print(f"{name}: {took} after DELETE ({v.ended_how})")
            assert all(v.ended_at is not None for v in (v1, v2)), "viewers still going after 5 s"
            again = await pub.delete()
            assert again == 404, f"second DELETE of the publisher: HTTP {again}, want 404"
            await expect_whep_404(server.base, "guest2")
        finally:
            await close_all(pub, v1, v2)

    run(server, scenario())


def test_killed_publisher_ends_viewers(server: Server) -> None:
    """A publisher process killed without DELETE: the server notices and ends its viewers."""

    async def scenario() -> None:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "r58client.py"),
            "publish",
            server.base,
            "guest3",
            stdout=asyncio.subprocess.PIPE,
        )
        viewer = None
        try:
            assert child.stdout is not None
            line = (await asyncio.wait_for(child.stdout.readline(), 20)).decode().strip()
            assert line.startswith("PUBLISHED "), f"child publisher said {line!r}"
            viewer = await whep_play(server.base, "guest3")
            await wait_first_frame(viewer)
            await asyncio.sleep(1.0)
            child.send_signal(signal.SIGKILL)
            t_kill = time.monotonic()
            await child.wait()
            try:
                await asyncio.wait_for(viewer.ended.wait(), timeout=40.0)
            except asyncio.TimeoutError:
                raise AssertionError("viewer still going 40 s after its publisher was killed")
            took = viewer.ended_at - t_kill
            print(f"viewer ended {took:.2f} s after SIGKILL ({viewer.ended_how}); goal <= 10 s")
            await expect_whep_404(server.base, "guest3")
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
            await close_all(viewer)

    run(server, scenario(), timeout=90)


def test_takeover_keeps_viewers(server: Server) -> None:
    """A second publisher on the same name takes over; the viewer keeps decoding, no renegotiation."""

    async def scenario() -> None:
        pub1 = await whip_publish(server.base, "guest4", counter_start=0)
        pub2 = viewer = None
        try:
            viewer = await whep_play(server.base, "guest4")
            await wait_first_frame(viewer)
            await asyncio.sleep(2.0)
            before = viewer.video_frames
            pub2 = await whip_publish(server.base, "guest4", counter_start=SECOND_PUBLISHER)
            t_take = time.monotonic()
            await pub1.close()  # the reloaded page's old connection goes away (no DELETE)
            await asyncio.sleep(4.0)
            t_end = time.monotonic()
            counters = [(c, at) for c, at in viewer.counters if at <= t_end]
            after = [c for c, at in counters if at >= t_take]
            from_2 = [c for c in after if c >= SECOND_PUBLISHER]
            expected = FPS * (t_end - t_take)
            first_2 = next((i for i, c in enumerate(after) if c >= SECOND_PUBLISHER), None)
            print(
                f"viewer: {before} frames before takeover, {len(after)} after "
                f"({len(from_2)} from publisher 2, expected ~{expected:.0f}); "
                f"ended: {viewer.ended_how}; state {viewer.pc.connectionState}"
            )
            assert viewer.ended_at is None, f"viewer ended on takeover: {viewer.ended_how}"
            assert len(from_2) >= 0.5 * expected, (
                f"{len(from_2)} frames from publisher 2 < 50% of {expected:.0f}"
            )
            assert first_2 is not None
            stale = [c for c in after[first_2:] if c < SECOND_PUBLISHER]
            assert not stale, f"publisher 1 frames after publisher 2's: {stale[:5]}"
            assert from_2 == sorted(from_2) and len(set(from_2)) == len(from_2), (
                "publisher 2's frame counters do not increase"
            )
        finally:
            await delete_quietly(viewer, pub2)
            await close_all(viewer, pub2, pub1)

    run(server, scenario())
