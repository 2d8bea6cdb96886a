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
import signal
import sys
import urllib.error
import urllib.request
from urllib.parse import urljoin

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

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


def say(line: str) -> None:
    print(line, flush=True)


def log(line: str) -> None:
    print(f"gst_whip: {line}", file=sys.stderr, flush=True)


class Publisher:
    def __init__(self, base: str, name: str, seconds: float | None, token: str | None) -> None:
        self.url = f"{base.rstrip('/')}/whip/{name}"
        self.seconds = seconds
        self.token = token
        self.location: str | None = None
        self.loop = GLib.MainLoop()
        self.exit_code = 0
        self.connected = False
        self.pipe = Gst.parse_launch(PIPELINE)
        self.webrtc = self.pipe.get_by_name("webrtc")
        self._loopback_only()
        self.webrtc.connect("on-negotiation-needed", self._on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self._on_gathering)
        self.webrtc.connect("notify::connection-state", self._on_connection_state)
        self.webrtc.connect("notify::ice-connection-state", self._on_ice_state)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_bus)
        self.negotiating = False

    def _loopback_only(self) -> None:
        """Make libnice gather a host candidate on 127.0.0.1 and nothing else.

        With no local address set, libnice enumerates the interfaces and leaves out loopback;
        once one is added it uses exactly the added ones."""
        # Keep the ice object referenced for the life of the process: in GStreamer 1.22
        # webrtcbin holds it as a floating ref, which PyGObject sinks on get_property and
        # would drop (destroying webrtcbin's agent) when the Python wrapper goes away.
        self.ice = self.webrtc.get_property("ice-agent")
        agent = self.ice.get_property("agent")
        addr = Nice.Address.new()
        if not addr.set_from_string("127.0.0.1"):
            raise RuntimeError("Nice.Address.set_from_string failed")
        if not agent.add_local_address(addr):
            raise RuntimeError("NiceAgent.add_local_address(127.0.0.1) failed")
        agent.set_property("ice-tcp", False)

    # --- signalling -------------------------------------------------------------------------

    def _on_negotiation_needed(self, webrtc) -> None:
        if self.negotiating:
            return
        self.negotiating = True
        # Both transceivers publish only: a WHIP offer is sendonly.
        # (get-transceivers returns a GArray, which PyGObject cannot iterate: go by index.)
        i = 0
        while (t := webrtc.emit("get-transceiver", i)) is not None:
            t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
            i += 1
        log(f"{i} transceivers set to sendonly")
        promise = Gst.Promise.new_with_change_func(self._on_offer_created, webrtc, None)
        webrtc.emit("create-offer", None, promise)

    def _on_offer_created(self, promise, webrtc, _data) -> None:
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None:
            err = reply.get_value("error") if reply and reply.has_field("error") else reply
            GLib.idle_add(self._fail, f"create-offer failed: {err}")
            return
        webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def _on_gathering(self, webrtc, _pspec) -> None:
        state = webrtc.get_property("ice-gathering-state")
        log(f"ice-gathering-state {state.value_nick}")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and self.location is None:
            # Leave the signal handler (a webrtcbin thread) before blocking on HTTP.
            GLib.idle_add(self._post_offer)

    def _post_offer(self) -> bool:
        offer_sdp = self.webrtc.get_property("local-description").sdp.as_text()
        log(f"offer:\n{offer_sdp}")
        headers = {"Content-Type": "application/sdp"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url, data=offer_sdp.encode(), headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status = resp.status
                answer = resp.read().decode()
                location = resp.headers.get("Location")
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace").strip()
            self._fail(f"POST {self.url}: HTTP {e.code}: {body[:300]}")
            return False
        except (urllib.error.URLError, OSError) as e:
            self._fail(f"POST {self.url}: {e}")
            return False
        if status != 201 or not location:
            self._fail(f"POST {self.url}: HTTP {status}, Location {location!r}")
            return False
        self.location = urljoin(self.url, location)
        log(f"answer:\n{answer}")
        say(f"LOCATION {self.location}")
        ok, sdp = GstSdp.SDPMessage.new_from_text(answer)
        if ok != GstSdp.SDPResult.OK:
            self._fail(f"cannot parse the answer SDP ({ok})")
            return False
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        promise = Gst.Promise.new_with_change_func(self._on_answer_set, None, None)
        self.webrtc.emit("set-remote-description", desc, promise)
        return False

    def _on_answer_set(self, promise, _a, _b) -> None:
        promise.wait()
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            GLib.idle_add(self._fail, f"set-remote-description: {reply.get_value('error')}")

    # --- state ------------------------------------------------------------------------------

    def _on_ice_state(self, webrtc, _pspec) -> None:
        log(f"ice-connection-state {webrtc.get_property('ice-connection-state').value_nick}")

    def _on_connection_state(self, webrtc, _pspec) -> None:
        state = webrtc.get_property("connection-state")
        log(f"connection-state {state.value_nick}")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and not self.connected:
            self.connected = True
            say("connected")
            self._report_certificates()
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            GLib.idle_add(self._fail, "connection-state failed")

    def _report_certificates(self) -> None:
        transceiver = self.webrtc.emit("get-transceiver", 0)
        transport = transceiver.get_property("sender").get_property("transport")
        local = transport.get_property("certificate")
        remote = transport.get_property("remote-certificate")
        say(f"DTLS local={key_type(local)} remote={key_type(remote)}")

    def _on_bus(self, _bus, msg) -> None:
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            self._fail(f"{msg.src.get_name()}: {err.message} ({debug})")
        elif msg.type == Gst.MessageType.WARNING:
            err, debug = msg.parse_warning()
            log(f"warning from {msg.src.get_name()}: {err.message} ({debug})")
        elif msg.type == Gst.MessageType.EOS:
            self._fail("unexpected EOS")

    def _fail(self, text: str) -> bool:
        say(f"ERROR {text}")
        self.exit_code = 1
        self.loop.quit()
        return False

    def _stop(self) -> bool:
        log("stopping")
        self.loop.quit()
        return False

    # --- run --------------------------------------------------------------------------------

    def run(self) -> int:
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, self._stop)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, self._stop)
        if self.seconds:
            GLib.timeout_add(int(self.seconds * 1000), self._stop)
        if self.pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            say("ERROR the pipeline would not go to PLAYING")
            return 1
        try:
            self.loop.run()
        finally:
            self._delete()
            self.pipe.set_state(Gst.State.NULL)
        return self.exit_code

    def _delete(self) -> None:
        if not self.location:
            return
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        req = urllib.request.Request(self.location, method="DELETE", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                log(f"DELETE {self.location}: HTTP {resp.status}")
        except urllib.error.HTTPError as e:
            log(f"DELETE {self.location}: HTTP {e.code}")
        except (urllib.error.URLError, OSError) as e:
            log(f"DELETE {self.location}: {e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="server base URL, e.g. http://127.0.0.1:8000")
    ap.add_argument("name", help="stream name: publishes to {base}/whip/{name}")
    ap.add_argument("--seconds", type=float, help="stop after this long (default: until killed)")
    ap.add_argument("--token", help="bearer token")
    args = ap.parse_args()
    Gst.init(None)
    try:
        pub = Publisher(args.base, args.name, args.seconds, args.token)
    except (GLib.Error, RuntimeError) as e:
        say(f"ERROR {e}")
        return 1
    return pub.run()


if __name__ == "__main__":
    sys.exit(main())
