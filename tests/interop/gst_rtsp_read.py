"""Reads an RTSP stream with GStreamer's rtspsrc and reports what it decoded, as one JSON line.

    /usr/bin/python3 gst_rtsp_read.py URL tcp|udp SECONDS GRAY_FILE

Video is decoded (decodebin) to 8-bit grey; the first 60 pictures go to GRAY_FILE, each as a
``WIDTHxHEIGHT\\n`` line and the bytes, so the test reads the frame counters drawn into them.
Audio (Opus) is decoded and its samples counted. Run with Debian's python3, which has the
GStreamer bindings (python3-gst-1.0); the test venv does not see them.
"""

import json
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

KEEP = 60


def main() -> int:
    url, protocols, seconds, gray_path = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    Gst.init(None)
    pipeline = Gst.Pipeline.new("read")
    src = Gst.ElementFactory.make("rtspsrc", "src")
    src.set_property("location", url)
    src.set_property("protocols", protocols)
    src.set_property("latency", 100)
    pipeline.add(src)
    # An explicit decoder: decodebin's late pad would be ghosted as a second sink of the bin.
    decoder = next(
        (d for d in ("openh264dec", "avdec_h264") if Gst.ElementFactory.find(d)), "decodebin"
    )
    branches = {
        "video": f"rtph264depay ! h264parse ! {decoder} ! videoconvert "
        "! video/x-raw,format=GRAY8 ! appsink name=video emit-signals=true sync=false",
        "audio": "rtpopusdepay ! opusdec ! audioconvert ! audio/x-raw,format=S16LE "
        "! appsink name=audio emit-signals=true sync=false",
    }

    def on_pad(_src, pad):
        media = pad.get_current_caps().get_structure(0).get_string("media")
        if media not in branches:
            return
        branch = Gst.parse_bin_from_description(branches.pop(media), True)
        pipeline.add(branch)
        branch.sync_state_with_parent()
        pad.link(branch.get_static_pad("sink"))
        sink = branch.get_by_name(media)
        sink.connect("new-sample", on_video if media == "video" else on_audio)

    src.connect("pad-added", on_pad)
    counts = {"video_frames": 0, "audio_samples": 0, "audio_peak": 0, "errors": []}
    gray = open(gray_path, "wb")

    def on_video(sink):
        sample = sink.emit("pull-sample")
        counts["video_frames"] += 1
        if counts["video_frames"] <= KEEP:
            s = sample.get_caps().get_structure(0)
            w, h = s.get_value("width"), s.get_value("height")
            ok, info = sample.get_buffer().map(Gst.MapFlags.READ)
            if ok:
                # GRAY8 rows are padded to 4 bytes; keep the first w of each.
                stride = (w + 3) // 4 * 4
                gray.write(f"{w}x{h}\n".encode())
                data = bytes(info.data)
                gray.write(b"".join(data[r * stride : r * stride + w] for r in range(h)))
                sample.get_buffer().unmap(info)
        return Gst.FlowReturn.OK

    def on_audio(sink):
        sample = sink.emit("pull-sample")
        ok, info = sample.get_buffer().map(Gst.MapFlags.READ)
        if ok:
            data = bytes(info.data)
            counts["audio_samples"] += len(data) // 2
            peak = max((abs(int.from_bytes(data[i : i + 2], "little", signed=True)) for i in range(0, len(data) - 1, 2)), default=0)
            counts["audio_peak"] = max(counts["audio_peak"], peak)
            sample.get_buffer().unmap(info)
        return Gst.FlowReturn.OK

    loop = GLib.MainLoop()

    def on_message(_bus, message):
        if message.type == Gst.MessageType.ERROR:
            err, _ = message.parse_error()
            counts["errors"].append(err.message)
            loop.quit()
        elif message.type == Gst.MessageType.EOS:
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    pipeline.set_state(Gst.State.PLAYING)
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    gray.close()
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
