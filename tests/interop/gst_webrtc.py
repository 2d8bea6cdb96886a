"""What the GStreamer webrtcbin clients (gst_whip.py, gst_whep.py) share: a webrtcbin whose ICE
agent gathers only 127.0.0.1, non-trickle WHIP/WHEP signalling (POST the complete offer, apply
the answer, DELETE at the end), connection and bus reporting, and the main loop.

Run with Debian's python3: GStreamer's Python bindings (``gi``) are system packages that a venv
without system site packages does not see. Each client prints progress lines on stdout:

    LOCATION <url>     the session was created (201)
    connected          webrtcbin's connection state became "connected"
    ERROR <text>       something failed (the process then exits with status 1)

and its offer and the answer on stderr. Needs: gstreamer1.0-plugins-{base,good,bad,ugly}
gstreamer1.0-nice python3-gst-1.0 gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1.
"""

from __future__ import annotations

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
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402,F401


def say(line: str) -> None:
    print(line, flush=True)


class WebrtcbinClient:
    """A pipeline with one webrtcbin named ``webrtc`` that signals to ``url`` over WHIP/WHEP.

    Subclasses build the pipeline text, set up transceivers in ``prepare()`` and react to
    ``on_connected()``; the offer is created once webrtcbin asks for negotiation."""

    tag = "gst"

    def __init__(self, url: str, pipeline: str, seconds: float | None, token: str | None) -> None:
        self.url = url
        self.seconds = seconds
        self.token = token
        self.location: str | None = None
        self.offer_sdp: str | None = None
        self.loop = GLib.MainLoop()
        self.exit_code = 0
        self.connected = False
        self.negotiating = False
        parsed = Gst.parse_launch(pipeline)
        if isinstance(parsed, Gst.Pipeline):
            self.pipe = parsed
        else:  # a description of one element parses to that element alone
            self.pipe = Gst.Pipeline.new()
            self.pipe.add(parsed)
        self.webrtc = self.pipe.get_by_name("webrtc")
        self._loopback_only()
        self.prepare()
        self.webrtc.connect("on-negotiation-needed", self._on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self._on_gathering)
        self.webrtc.connect("notify::connection-state", self._on_connection_state)
        self.webrtc.connect("notify::ice-connection-state", self._on_ice_state)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_bus)

    def log(self, line: str) -> None:
        print(f"{self.tag}: {line}", file=sys.stderr, flush=True)

    # --- for subclasses -----------------------------------------------------------------------

    def prepare(self) -> None:
        """Called once the pipeline exists, before negotiation."""

    def before_offer(self) -> None:
        """Called when webrtcbin asks for negotiation, before create-offer."""

    def on_connected(self) -> None:
        """Called once when the connection state becomes connected."""

    def edit_offer(self, sdp: str) -> str:
        """The offer text to POST (the local description as webrtcbin made it, by default)."""
        return sdp

    # --- setup ----------------------------------------------------------------------------------

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

    # --- signalling -----------------------------------------------------------------------------

    def _on_negotiation_needed(self, webrtc) -> None:
        if self.negotiating:
            return
        self.negotiating = True
        self.before_offer()
        promise = Gst.Promise.new_with_change_func(self._on_offer_created, webrtc, None)
        webrtc.emit("create-offer", None, promise)

    def _on_offer_created(self, promise, webrtc, _data) -> None:
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None:
            err = reply.get_value("error") if reply and reply.has_field("error") else reply
            GLib.idle_add(self.fail, f"create-offer failed: {err}")
            return
        webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def _on_gathering(self, webrtc, _pspec) -> None:
        state = webrtc.get_property("ice-gathering-state")
        self.log(f"ice-gathering-state {state.value_nick}")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and self.location is None:
            # Leave the signal handler (a webrtcbin thread) before blocking on HTTP.
            GLib.idle_add(self._post_offer)

    def _post_offer(self) -> bool:
        if self.offer_sdp is not None:
            return False
        self.offer_sdp = self.edit_offer(
            self.webrtc.get_property("local-description").sdp.as_text()
        )
        self.log(f"offer:\n{self.offer_sdp}")
        headers = {"Content-Type": "application/sdp"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url, data=self.offer_sdp.encode(), headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status = resp.status
                answer = resp.read().decode()
                location = resp.headers.get("Location")
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace").strip()
            self.fail(f"POST {self.url}: HTTP {e.code}: {body[:300]}")
            return False
        except (urllib.error.URLError, OSError) as e:
            self.fail(f"POST {self.url}: {e}")
            return False
        if status != 201 or not location:
            self.fail(f"POST {self.url}: HTTP {status}, Location {location!r}")
            return False
        self.location = urljoin(self.url, location)
        self.log(f"answer:\n{answer}")
        say(f"LOCATION {self.location}")
        ok, sdp = GstSdp.SDPMessage.new_from_text(answer)
        if ok != GstSdp.SDPResult.OK:
            self.fail(f"cannot parse the answer SDP ({ok})")
            return False
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        promise = Gst.Promise.new_with_change_func(self._on_answer_set, None, None)
        self.webrtc.emit("set-remote-description", desc, promise)
        return False

    def _on_answer_set(self, promise, _a, _b) -> None:
        promise.wait()
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            GLib.idle_add(self.fail, f"set-remote-description: {reply.get_value('error')}")

    # --- state ----------------------------------------------------------------------------------

    def _on_ice_state(self, webrtc, _pspec) -> None:
        self.log(f"ice-connection-state {webrtc.get_property('ice-connection-state').value_nick}")

    def _on_connection_state(self, webrtc, _pspec) -> None:
        state = webrtc.get_property("connection-state")
        self.log(f"connection-state {state.value_nick}")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and not self.connected:
            self.connected = True
            say("connected")
            self.on_connected()
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            GLib.idle_add(self.fail, "connection-state failed")

    def _on_bus(self, _bus, msg) -> None:
        if msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            self.fail(f"{msg.src.get_name()}: {err.message} ({debug})")
        elif msg.type == Gst.MessageType.WARNING:
            err, debug = msg.parse_warning()
            self.log(f"warning from {msg.src.get_name()}: {err.message} ({debug})")
        elif msg.type == Gst.MessageType.EOS:
            self.fail("unexpected EOS")

    def fail(self, text: str) -> bool:
        say(f"ERROR {text}")
        self.exit_code = 1
        self.loop.quit()
        return False

    def stop(self) -> bool:
        self.log("stopping")
        self.loop.quit()
        return False

    # --- run ------------------------------------------------------------------------------------

    def run(self) -> int:
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, self.stop)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, self.stop)
        if self.seconds:
            GLib.timeout_add(int(self.seconds * 1000), self.stop)
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
                self.log(f"DELETE {self.location}: HTTP {resp.status}")
        except urllib.error.HTTPError as e:
            self.log(f"DELETE {self.location}: HTTP {e.code}")
        except (urllib.error.URLError, OSError) as e:
            self.log(f"DELETE {self.location}: {e}")
