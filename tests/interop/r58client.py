"""WHIP/WHEP client helpers for testing r58 with aiortc, an independent WebRTC stack.

Publisher: a synthetic 640x360 @ 30 fps test pattern (H.264 only) and a 48 kHz sine tone (Opus).
Each picture carries its frame counter as a row of black/white blocks, so a viewer can read back
which frame it decoded (and from which publisher: give each one its own ``counter_start``).

Viewer: recvonly video + audio; counts decoded frames, their sizes, the time of the first one,
the counters it reads, and notices when the session ends (track ended, or the connection
failed/closed).

Run as a script to publish from a separate process (used by the killed-publisher test):

    python r58client.py publish http://127.0.0.1:8000 guest1

prints ``PUBLISHED <location>`` once the session is created, then publishes until killed.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp
import aioice.ice
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack
from aiortc.rtp import RtcpSrPacket
from av import AudioFrame, VideoFrame


# aioice never gathers 127.0.0.1, and the tests may only talk to loopback: offer exactly that.
def _loopback_only(use_ipv4: bool = True, use_ipv6: bool = False) -> list[str]:
    return ["127.0.0.1"]


aioice.ice.get_host_addresses = _loopback_only


WIDTH, HEIGHT, FPS = 640, 360, 30
SAMPLE_RATE, AUDIO_PTIME = 48000, 0.020

# Frame counter code: COUNTER_BITS value bits then CHECK_BITS check bits, one square block each,
# in a row at the top of the picture.
COUNTER_BITS, CHECK_BITS, BLOCK = 24, 4, 22
BLOCK_X0, BLOCK_Y0 = 4, 4
COUNTER_MOD = 1 << COUNTER_BITS


def _check(value: int) -> int:
    return (value * 7 + 3 + (value >> 8) * 5 + (value >> 16) * 11) & ((1 << CHECK_BITS) - 1)


def _code_bits(value: int) -> list[int]:
    word = (value % COUNTER_MOD) | (_check(value % COUNTER_MOD) << COUNTER_BITS)
    return [(word >> i) & 1 for i in range(COUNTER_BITS + CHECK_BITS)]


def draw_frame(counter: int) -> np.ndarray:
    """The yuv420p picture (as one (H*3/2, W) array) for frame number ``counter``."""
    yuv = np.full((HEIGHT * 3 // 2, WIDTH), 128, dtype=np.uint8)
    y = yuv[:HEIGHT]
    # Moving background: a diagonal gradient that scrolls, and a bar that sweeps across.
    xs = np.arange(WIDTH, dtype=np.int32)
    ys = np.arange(HEIGHT, dtype=np.int32)[:, None]
    y[:] = ((xs[None, :] + ys + counter * 4) % 256 // 2 + 64).astype(np.uint8)
    bar = (counter * 8) % WIDTH
    y[BLOCK_Y0 + BLOCK + 8 :, bar : bar + 24] = 235
    # Counter row on a mid-grey strip.
    y[: BLOCK_Y0 * 2 + BLOCK, :] = 128
    for i, bit in enumerate(_code_bits(counter)):
        x = BLOCK_X0 + i * BLOCK
        y[BLOCK_Y0 : BLOCK_Y0 + BLOCK, x : x + BLOCK] = 235 if bit else 16
    return yuv


def read_counter(frame: VideoFrame) -> int | None:
    """The frame counter drawn by :func:`draw_frame`, or None if it does not read back."""
    if frame.width != WIDTH or frame.height != HEIGHT:
        return None
    y = frame.to_ndarray(format="gray")
    word = 0
    m = BLOCK // 4
    for i in range(COUNTER_BITS + CHECK_BITS):
        x = BLOCK_X0 + i * BLOCK
        patch = y[BLOCK_Y0 + m : BLOCK_Y0 + BLOCK - m, x + m : x + BLOCK - m]
        if patch.mean() > 128:
            word |= 1 << i
    value = word & (COUNTER_MOD - 1)
    if (word >> COUNTER_BITS) != _check(value):
        return None
    return value


class TestPatternTrack(VideoStreamTrack):
    """640x360 @ 30 fps moving test pattern; remembers when each counter value was produced."""

    kind = "video"
    __test__ = False  # not a pytest test class

    def __init__(self, counter_start: int = 0) -> None:
        super().__init__()
        self.counter_start = counter_start
        self.counter = counter_start
        self.sent_at: dict[int, float] = {}

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(draw_frame(self.counter), format="yuv420p")
        frame.pts = pts
        frame.time_base = time_base
        self.sent_at[self.counter % COUNTER_MOD] = time.monotonic()
        self.counter += 1
        return frame


class SineTrack(MediaStreamTrack):
    """A 440 Hz tone, 48 kHz mono, 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, freq: float = 440.0) -> None:
        super().__init__()
        self.freq = freq
        self._start: float | None = None
        self._samples = 0
        # Silence until this time.time() (a voice that starts speaking at a known moment).
        self.silent_until: float | None = None
        # Bursts instead of a steady tone: (video track, every N frames, seconds): the tone sounds
        # for `seconds` from the capture instant of every video frame whose number is a multiple of
        # N (a clapperboard for lip sync measurements), silence between.
        self.bursts: tuple[TestPatternTrack, int, float] | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = int(SAMPLE_RATE * AUDIO_PTIME)
        if self._start is None:
            self._start = time.time()
        else:
            wait = self._start + (self._samples + n) / SAMPLE_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (np.arange(n) + self._samples) / SAMPLE_RATE
        pcm = (np.sin(2 * math.pi * self.freq * t) * 8000).astype(np.int16)
        if self.bursts is not None:
            pcm[~self._in_burst(self._start + t)] = 0
        if self.silent_until is not None and time.time() < self.silent_until:
            pcm[:] = 0
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._samples += n
        return frame

    def _in_burst(self, wall: np.ndarray) -> np.ndarray:
        """Which of these time.time() instants fall in a burst (none before the first frame)."""
        video, every, seconds = self.bursts
        start = getattr(video, "_start", None)  # aiortc's capture clock of frame 0
        if start is None:
            return np.zeros(len(wall), dtype=bool)
        # Frame k (counter counter_start + k) is captured at start + k / FPS.
        first = (-video.counter_start) % every  # the first frame index whose counter is a multiple
        since = wall - (start + first / FPS)
        return (since >= 0) & (np.mod(since, every / FPS) < seconds)


class HttpError(Exception):
    """The server answered an offer with something other than 201 + Location."""

    def __init__(self, status: int, body: str, url: str) -> None:
        super().__init__(f"POST {url}: HTTP {status}: {body.strip()[:300]}")
        self.status = status
        self.body = body


def _new_pc(config: RTCConfiguration | None = None) -> RTCPeerConnection:
    # No STUN server unless given: aiortc would otherwise use a public one by default.
    return RTCPeerConnection(config or RTCConfiguration(iceServers=[]))


def _prefer(transceiver, mime: str) -> None:
    caps = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    chosen = [c for c in caps if c.mimeType.lower() == mime.lower()]
    if not chosen:
        raise RuntimeError(f"aiortc has no {mime}")
    transceiver.setCodecPreferences(chosen)


async def _exchange(pc: RTCPeerConnection, url: str, token: str | None):
    """Create the offer, wait for full ICE gathering, POST it, apply the answer."""
    await pc.setLocalDescription(await pc.createOffer())
    for _ in range(100):  # aiortc gathers inside setLocalDescription; this is a safety net
        if pc.iceGatheringState == "complete":
            break
        await asyncio.sleep(0.05)
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        async with http.post(url, data=pc.localDescription.sdp, headers=headers) as resp:
            body = await resp.text()
            location = resp.headers.get("Location")
            etag = resp.headers.get("ETag")
            if resp.status != 201 or not location:
                raise HttpError(resp.status, body or f"(Location: {location})", url)
            ctype = resp.headers.get("Content-Type", "")
            if not ctype.startswith("application/sdp"):
                raise HttpError(resp.status, f"answer Content-Type is {ctype!r}", url)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    except BaseException:
        await http.close()
        raise
    return http, urljoin(url, location), etag


@dataclass
class _Session:
    pc: RTCPeerConnection
    http: aiohttp.ClientSession
    location: str
    etag: str | None
    token: str | None

    async def delete(self) -> int:
        """DELETE the session resource; returns the HTTP status."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.http.delete(self.location, headers=headers) as resp:
            await resp.read()
            return resp.status

    async def close(self) -> None:
        """Close the peer connection and the HTTP client (no DELETE)."""
        await self.pc.close()
        if not self.http.closed:
            await self.http.close()


@dataclass
class Publisher(_Session):
    video: TestPatternTrack | None = None
    audio: SineTrack | None = None


async def whip_publish(
    base_url: str,
    name: str,
    *,
    video: bool = True,
    audio: bool = True,
    counter_start: int = 0,
    token: str | None = None,
    config: RTCConfiguration | None = None,
    video_codec: str = "video/H264",
    tone_hz: float = 440.0,
) -> Publisher:
    """Publish the test pattern (H.264, or ``video_codec``) and a tone (Opus) to
    ``{base_url}/whip/{name}``.

    ``config`` sets ICE servers and policy (e.g. TURN, relay only); default: none."""
    pc = _new_pc(config)
    vtrack = TestPatternTrack(counter_start) if video else None
    atrack = SineTrack(tone_hz) if audio else None
    if vtrack:
        _prefer(pc.addTransceiver(vtrack, direction="sendonly"), video_codec)
    if atrack:
        _prefer(pc.addTransceiver(atrack, direction="sendonly"), "audio/opus")
    try:
        http, location, etag = await _exchange(pc, f"{base_url}/whip/{name}", token)
    except BaseException:
        await pc.close()
        raise
    return Publisher(pc, http, location, etag, token, vtrack, atrack)


@dataclass
class Viewer(_Session):
    posted_at: float = 0.0
    video_frames: int = 0
    audio_frames: int = 0
    sizes: Counter = field(default_factory=Counter)
    first_video_at: float | None = None
    counters: list[tuple[int, float]] = field(default_factory=list)  # (counter, monotonic time)
    ended_at: float | None = None
    ended_how: str | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)
    # With keep_audio: every decoded audio frame (arrival time, samples as aiortc gives them:
    # s16, shape (1, samples * channels) interleaved).
    keep_audio: bool = False
    audio_pcm: list = field(default_factory=list)
    # With timing: each decoded video frame's (counter or None, RTP timestamp, arrival time), each
    # decoded audio frame's RTP timestamp (parallel to audio_pcm), and every RTCP sender report
    # received: (kind, arrival time, NTP timestamp, RTP timestamp).
    timing: bool = False
    video_pts: list = field(default_factory=list)
    audio_pts: list = field(default_factory=list)
    sender_reports: list = field(default_factory=list)

    def _end(self, how: str) -> None:
        if self.ended_at is None:
            self.ended_at = time.monotonic()
            self.ended_how = how
            self.ended.set()

    def rtp_time(self, kind: str, pts: int) -> int:
        """The RTP timestamp of a decoded frame of the ``kind`` track: aiortc hands frames on with
        their RTP timestamp minus the track's first one (unwrapped)."""
        for receiver in self.pc.getReceivers():
            if receiver.track.kind == kind:
                origin = receiver._RTCRtpReceiver__timestamp_mapper._origin
                return (pts + origin) % (1 << 32)
        raise KeyError(kind)

    def frames_since(self, t: float) -> int:
        """Decoded video frames (with a readable counter) received at or after ``t``."""
        return sum(1 for _, at in self.counters if at >= t)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await super().close()


async def _consume(viewer: Viewer, track: MediaStreamTrack) -> None:
    try:
        while True:
            frame = await track.recv()
            now = time.monotonic()
            if track.kind == "video":
                viewer.video_frames += 1
                viewer.sizes[(frame.width, frame.height)] += 1
                if viewer.first_video_at is None:
                    viewer.first_video_at = now
                counter = read_counter(frame)
                if counter is not None:
                    viewer.counters.append((counter, now))
                if viewer.timing:
                    viewer.video_pts.append((counter, frame.pts, now))
            else:
                viewer.audio_frames += 1
                if viewer.keep_audio:
                    viewer.audio_pcm.append((now, frame.to_ndarray()))
                    if viewer.timing:
                        viewer.audio_pts.append(frame.pts)
    except MediaStreamError:
        viewer._end(f"{track.kind} track ended")


def _keep_sender_reports(viewer: Viewer, receiver) -> None:
    """Notes every RTCP sender report the receiver gets (aiortc keeps only the last one's time)."""
    handle = receiver._handle_rtcp_packet
    kind = receiver.track.kind

    async def noting(packet) -> None:
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            viewer.sender_reports.append(
                (kind, time.monotonic(), info.ntp_timestamp, info.rtp_timestamp)
            )
        await handle(packet)

    receiver._handle_rtcp_packet = noting


async def whep_play(
    base_url: str,
    name: str,
    *,
    token: str | None = None,
    config: RTCConfiguration | None = None,
    keep_audio: bool = False,
    timing: bool = False,
) -> Viewer:
    """Play ``{base_url}/whep/{name}``; frames are counted in background tasks (and the decoded
    audio kept in ``audio_pcm`` with ``keep_audio``; with ``timing`` also the media's RTP
    timestamps and the sender reports, see :class:`Viewer`).

    ``config`` sets ICE servers and policy (e.g. TURN, relay only); default: none."""
    pc = _new_pc(config)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    viewer_box: list[Viewer] = []
    pending: list[MediaStreamTrack] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if viewer_box:
            v = viewer_box[0]
            v.tasks.append(asyncio.ensure_future(_consume(v, track)))
        else:
            pending.append(track)

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if viewer_box and pc.connectionState in ("failed", "closed"):
            viewer_box[0]._end(f"connection {pc.connectionState}")

    posted_at = time.monotonic()
    try:
        http, location, etag = await _exchange(pc, f"{base_url}/whep/{name}", token)
    except BaseException:
        await pc.close()
        raise
    viewer = Viewer(
        pc, http, location, etag, token, posted_at=posted_at, keep_audio=keep_audio or timing,
        timing=timing,
    )  # fmt: skip
    viewer_box.append(viewer)
    if timing:
        for receiver in pc.getReceivers():
            _keep_sender_reports(viewer, receiver)
    for track in pending:
        viewer.tasks.append(asyncio.ensure_future(_consume(viewer, track)))
    return viewer


async def _publish_forever(base_url: str, name: str) -> None:
    pub = await whip_publish(base_url, name)
    print(f"PUBLISHED {pub.location}", flush=True)
    while True:
        await asyncio.sleep(3600)


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] != "publish":
        print("usage: r58client.py publish BASE_URL NAME", file=sys.stderr)
        return 2
    try:
        asyncio.run(_publish_forever(argv[2], argv[3]))
    except HttpError as e:
        print(f"ERROR {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
