#!/usr/bin/python3
"""A GStreamer webrtcbin WHIP publisher: H.264 + Opus test sources to ``{base}/whip/{name}``.

webrtcbin's DTLS certificate is RSA (GStreamer's dtls elements generate an RSA 2048 key), so a
session that reaches "connected" proves the server's DTLS accepts an ECDHE-RSA client.

Run with Debian's python3 (GStreamer's Python bindings, ``gi``, are a system package that a
venv without system site packages does not see):

    /usr/bin/python3 tests/interop/gst_whip.py http://127.0.0.1:8000 gst1 [--seconds N]

Non-trickle WHIP: the offer is POSTed once ICE gathering is complete. libnice gathers only
127.0.0.1 (the tests may only talk to loopback). Progress lines on stdout, one per event:

    LOCATION <url>     the session was created (201)
    connected          webrtcbin's connection state became "connected"
    DTLS local=<key> remote=<key>
                       the public-key types of the two DTLS certificates (rsa, ec, ...)
    ERROR <text>       something failed (the process then exits with status 1)

Runs until SIGTERM/SIGINT or ``--seconds``, then DELETEs the session and exits 0.
Needs: gstreamer1.0-plugins-{base,good,bad,ugly} gstreamer1.0-nice python3-gst-1.0
gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys

from gst_webrtc import GLib, Gst, GstWebRTC, WebrtcbinClient, say

WIDTH, HEIGHT, FPS = 320, 240, 30

PIPELINE = f"""
webrtcbin name=webrtc bundle-policy=max-bundle
videotestsrc is-live=true pattern=smpte
  ! video/x-raw,width={WIDTH},height={HEIGHT},framerate={FPS}/1
  ! videoconvert ! queue
  ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={FPS} bitrate=800
  ! video/x-h264,profile=constrained-baseline
  ! rtph264pay config-interval=-1 aggregate-mode=zero-latency
  ! application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000
  ! webrtc.
audiotestsrc is-live=true wave=sine freq=440
  ! audioconvert ! audioresample ! queue
  ! opusenc
  ! rtpopuspay
  ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000
  ! webrtc.
"""


# DER-encoded AlgorithmIdentifier OIDs of a certificate's subject public key.
KEY_OIDS = {
    "rsa": bytes.fromhex("06092a864886f70d010101"),  # 1.2.840.113549.1.1.1 rsaEncryption
    "ec": bytes.fromhex("06072a8648ce3d0201"),  # 1.2.840.10045.2.1 id-ecPublicKey
    "ed25519": bytes.fromhex("06032b6570"),  # 1.3.101.112
}


def key_type(pem: str | None) -> str:
    """The public-key type of the first certificate in a PEM string ("rsa", "ec", ...)."""
    if not pem:
        return "none"
    m = re.search(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S)
    if not m:
        return "unparsed"
    der = base64.b64decode("".join(m.group(1).split()))
    found = [(der.find(oid), kind) for kind, oid in KEY_OIDS.items() if oid in der]
    return min(found)[1] if found else "unknown"


class Publisher(WebrtcbinClient):
    tag = "gst_whip"

    def before_offer(self) -> None:
        # Both transceivers publish only: a WHIP offer is sendonly.
        # (get-transceivers returns a GArray, which PyGObject cannot iterate: go by index.)
        i = 0
        while (t := self.webrtc.emit("get-transceiver", i)) is not None:
            t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
            i += 1
        self.log(f"{i} transceivers set to sendonly")

    def on_connected(self) -> None:
        transceiver = self.webrtc.emit("get-transceiver", 0)
        transport = transceiver.get_property("sender").get_property("transport")
        local = transport.get_property("certificate")
        remote = transport.get_property("remote-certificate")
        say(f"DTLS local={key_type(local)} remote={key_type(remote)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="server base URL, e.g. http://127.0.0.1:8000")
    ap.add_argument("name", help="stream name: publishes to {base}/whip/{name}")
    ap.add_argument("--seconds", type=float, help="stop after this long (default: until killed)")
    ap.add_argument("--token", help="bearer token")
    args = ap.parse_args()
    Gst.init(None)
    try:
        url = f"{args.base.rstrip('/')}/whip/{args.name}"
        pub = Publisher(url, PIPELINE, args.seconds, args.token)
    except (GLib.Error, RuntimeError) as e:
        say(f"ERROR {e}")
        return 1
    return pub.run()


if __name__ == "__main__":
    sys.exit(main())
