"""A tiny WHIP/WHEP server made of aiortc, for checking the interop harness itself.

Not part of the suite and not r58: it decodes and re-encodes (aiortc's MediaRelay), detects a
vanished publisher only through aiortc's ~30 s consent timeout, and implements just enough of
the protocol for test_whip_whep.py. Run the suite against it with

    R58_BIN="$PWD/.venv/bin/python tests/interop/stub_server.py" .venv/bin/python -m pytest tests/interop
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, str(Path(__file__).parent))
import r58client  # noqa: E402,F401  (patches aioice to gather 127.0.0.1 only)


class SwitchTrack(MediaStreamTrack):
    """Reads from whichever publisher track is current, so viewers survive a takeover."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.source: MediaStreamTrack | None = None
        self.changed = asyncio.Event()

    def set_source(self, track: MediaStreamTrack) -> None:
        self.source = track
        self.changed.set()

    async def recv(self):
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            src = self.source
            if src is None:
                self.changed.clear()
                await self.changed.wait()
                continue
            try:
                return await src.recv()
            except MediaStreamError:
                if self.source is src:
                    self.source = None


class Stream:
    def __init__(self) -> None:
        self.publisher_id: str | None = None
        self.tracks = {"video": SwitchTrack("video"), "audio": SwitchTrack("audio")}
        self.relay = MediaRelay()
        self.viewers: set[str] = set()


streams: dict[str, Stream] = {}
sessions: dict[str, tuple[str, str, RTCPeerConnection]] = {}  # id -> (kind, name, pc)


async def end_stream(name: str) -> None:
    stream = streams.pop(name, None)
    if stream is None:
        return
    for track in stream.tracks.values():
        track.stop()
    for vid in list(stream.viewers):
        entry = sessions.pop(vid, None)
        if entry:
            await entry[2].close()


async def answer(pc: RTCPeerConnection, request: web.Request) -> str:
    offer = await request.text()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription.sdp


async def whip(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    pc = RTCPeerConnection()
    sid = uuid.uuid4().hex
    stream = streams.get(name)
    old = stream.publisher_id if stream else None
    if stream is None:
        stream = streams[name] = Stream()
    stream.publisher_id = sid
    sessions[sid] = ("whip", name, pc)

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if streams.get(name) is stream and stream.publisher_id == sid:
            stream.tracks[track.kind].set_source(track)

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        if pc.connectionState in ("failed", "closed") and sid in sessions:
            sessions.pop(sid, None)
            if streams.get(name) is stream and stream.publisher_id == sid:
                await end_stream(name)

    sdp = await answer(pc, request)
    if old and old in sessions:  # takeover: drop the old publisher, keep the viewers
        _, _, old_pc = sessions.pop(old)
        await old_pc.close()
    return web.Response(
        status=201,
        text=sdp,
        content_type="application/sdp",
        headers={"Location": f"/whip/{name}/{sid}", "ETag": f'"{sid}"'},
    )


async def whep(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    stream = streams.get(name)
    if stream is None:
        return web.Response(status=404, text="no such stream\n")
    pc = RTCPeerConnection()
    sid = uuid.uuid4().hex
    for kind in ("video", "audio"):
        pc.addTrack(stream.relay.subscribe(stream.tracks[kind]))
    sessions[sid] = ("whep", name, pc)
    stream.viewers.add(sid)
    sdp = await answer(pc, request)
    return web.Response(
        status=201,
        text=sdp,
        content_type="application/sdp",
        headers={"Location": f"/whep/{name}/{sid}", "ETag": f'"{sid}"'},
    )


async def delete(request: web.Request) -> web.Response:
    sid = request.match_info["sid"]
    entry = sessions.pop(sid, None)
    if entry is None:
        return web.Response(status=404)
    kind, name, pc = entry
    await pc.close()
    stream = streams.get(name)
    if kind == "whip" and stream and stream.publisher_id == sid:
        await end_stream(name)
    elif stream:
        stream.viewers.discard(sid)
    return web.Response(status=200)


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:8000")
    ap.add_argument("--webrtc-udp")
    ap.add_argument("--public-ip", action="append")
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/whip/{name}", whip)
    app.router.add_post("/whep/{name}", whep)
    app.router.add_delete("/whip/{name}/{sid}", delete)
    app.router.add_delete("/whep/{name}/{sid}", delete)
    web.run_app(app, host=host, port=int(port), print=None)


if __name__ == "__main__":
    main()
