"""A stand-in IP camera: GStreamer's RTSP server (gst-rtsp-server, Debian's
gir1.2-gst-rtsp-server-1.0) serving a live H.264 test pattern at rtsp://127.0.0.1:PORT/cam.

    /usr/bin/python3 gst_rtsp_camera.py PORT [h265 | h265-sdp-only]

Prints ``READY`` once it listens. Like most IP cameras, it sends the SPS and PPS in the SDP
(and x264 repeats them in band). With ``h265``: H.265 from x265enc instead (VPS, SPS and PPS in
band before each keyframe); ``h265-sdp-only``: the same with them in the SDP and before the
first keyframe only. Runs until killed.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    port = sys.argv[1]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    source = "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1"
    if sys.argv[2:3] in (["h265"], ["h265-sdp-only"]):
        # h265-sdp-only: the VPS/SPS/PPS in the SDP and before the first keyframe only.
        interval = 0 if sys.argv[2] == "h265-sdp-only" else -1
        encode = (
            "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=500 "
            f"! video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval={interval}"
        )
    else:
        encode = (
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=500 "
            "! video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=-1"
        )
    factory.set_launch(f"( {source} ! {encode} )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print("cannot listen", flush=True)
        return 1
    print("READY", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
