#!/usr/bin/python3
"""A GStreamer webrtcbin WHEP viewer: plays ``{base}/whep/{name}`` and counts decoded frames.

Offers what a GStreamer-based WHEP player offers: webrtcbin with ``bundle-policy=max-bundle``,
so every m-line after the first has port 0 and ``a=bundle-only``, receive-only transceivers for
the media asked for, in the order asked for (``--media av`` offers audio first, as such players
do, whether or not the stream has audio). ``--h264-fmtp`` replaces the H.264 fmtp parameters
(``--h264-fmtp profile-level-id=42e01f`` offers packetization mode 0).

Run with Debian's python3 (see gst_webrtc.py):

    /usr/bin/python3 tests/interop/gst_whep.py http://127.0.0.1:8000 cam0 --media av --seconds 5

Progress lines on stdout (besides gst_webrtc.py's LOCATION, connected, ERROR):

    FRAMES video=<n> audio=<m>   decoded frames so far, once a second and at the end
    OFFER <path>                 with --offer-out: the offer was written there

Runs until SIGTERM/SIGINT or ``--seconds``, then DELETEs the session and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import threading

from gst_webrtc import GLib, Gst, GstWebRTC, WebrtcbinClient, say

H264_FMTP = "packetization-mode=1,profile-level-id=42e01f,level-asymmetry-allowed=1"
RECVONLY = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY


def caps_for(kind: str, h264_fmtp: str) -> Gst.Caps:
    if kind == "a":
        text = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000"
    else:
        extra = "".join(
            f",{k}=(string){v}" for k, v in (p.split("=", 1) for p in h264_fmtp.split(",") if p)
        )
        text = f"application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000{extra}"
    return Gst.Caps.from_string(text)


class Viewer(WebrtcbinClient):
    tag = "gst_whep"

    def __init__(self, url: str, media: str, h264_fmtp: str, offer_out: str | None, **kw) -> None:
        self.media = media
        self.h264_fmtp = h264_fmtp
        self.offer_out = offer_out
        self.counts = {"video": 0, "audio": 0}
        self.lock = threading.Lock()
        super().__init__(url, "webrtcbin name=webrtc bundle-policy=max-bundle", **kw)

    def prepare(self) -> None:
        for kind in self.media:
            self.webrtc.emit("add-transceiver", RECVONLY, caps_for(kind, self.h264_fmtp))
        self.webrtc.connect("pad-added", self._on_webrtc_pad)
        # A pipeline of only webrtcbin has no source to start negotiation: ask for it.
        GLib.idle_add(self._negotiate)
        GLib.timeout_add(1000, self._report)

    def _negotiate(self) -> bool:
        self._on_negotiation_needed(self.webrtc)
        return False

    def edit_offer(self, sdp: str) -> str:
        if self.offer_out:
            with open(self.offer_out, "w") as f:
                f.write(sdp)
            say(f"OFFER {self.offer_out}")
        return sdp

    def _on_webrtc_pad(self, _webrtc, pad: Gst.Pad) -> None:
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("pad-added", self._on_decoded_pad)
        self.pipe.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def _on_decoded_pad(self, _decode, pad: Gst.Pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        kind = "video" if caps.to_string().startswith("video/") else "audio"
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("signal-handoffs", True)
        sink.connect("handoff", self._on_frame, kind)
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))
        self.log(f"decoding {kind}: {caps.to_string()[:120]}")

    def _on_frame(self, _sink, _buffer, _pad, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    def _report(self) -> bool:
        with self.lock:
            say(f"FRAMES video={self.counts['video']} audio={self.counts['audio']}")
        return True

    def stop(self) -> bool:
        self._report()
        return super().stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="server base URL, e.g. http://127.0.0.1:8000")
    ap.add_argument("name", help="stream name: plays {base}/whep/{name}")
    ap.add_argument("--media", default="av", help="m-lines to offer, in order: a, v (default av)")
    ap.add_argument("--h264-fmtp", default=H264_FMTP, help="H.264 fmtp, comma-separated k=v")
    ap.add_argument("--offer-out", help="write the offer SDP to this file")
    ap.add_argument("--seconds", type=float, help="stop after this long (default: until killed)")
    ap.add_argument("--token", help="bearer token")
    args = ap.parse_args()
    if not args.media or set(args.media) - {"a", "v"}:
        ap.error("--media takes a, v or both, e.g. av")
    Gst.init(None)
    url = f"{args.base.rstrip('/')}/whep/{args.name}"
    try:
        viewer = Viewer(
            url,
            args.media,
            args.h264_fmtp,
            args.offer_out,
            seconds=args.seconds,
            token=args.token,
        )
    except (GLib.Error, RuntimeError) as e:
        say(f"ERROR {e}")
        return 1
    return viewer.run()


if __name__ == "__main__":
    sys.exit(main())
