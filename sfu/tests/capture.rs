//! The camera pipeline end to end on a virtual clock: test pattern -> OpenH264 -> RTP -> engine
//! -> a WebRTC viewer, keyframes on request, and a supervised source that fails and comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use openh264::formats::YUVSource;
use sfu::capture::camera::StreamSink;
use sfu::capture::encoder::OpenH264Encoder;
use sfu::capture::pattern::read_counter;
use sfu::capture::runner::test_camera;
use sfu::capture::supervisor::{BACKOFF_START, STALL_TIMEOUT};
use sfu::capture::{
    CameraSettings, Captured, EncoderSettings, FrameSource, PatternSource, SourceError, Supervisor,
};
use sfu::engine::{Engine, EngineConfig, EngineError, LocalSourceId};
use sfu::media::h264::nal_type;
use sfu::testing::cameras::small_camera;
use sfu::testing::client::ClientRole;
use sfu::testing::harness::Harness;

/// The test cameras' bitrate.
const BITRATE: u32 = 600_000;

/// Passes everything to the engine and keeps each frame's packets.
struct Recorder<'a> {
    engine: &'a mut Engine,
    frames: Vec<Vec<Bytes>>,
}

impl StreamSink for Recorder<'_> {
    fn open(&mut self, now: Instant, name: &str, fmtp: &str) -> Result<LocalSourceId, EngineError> {
        StreamSink::open(self.engine, now, name, fmtp)
    }

    fn ingest(
        &mut self,
        now: Instant,
        id: LocalSourceId,
        packets: &[Bytes],
    ) -> Result<(), EngineError> {
        self.frames.push(packets.to_vec());
        StreamSink::ingest(self.engine, now, id, packets)
    }

    fn take_keyframe_request(&mut self, id: LocalSourceId) -> bool {
        StreamSink::take_keyframe_request(self.engine, id)
    }

    fn close(&mut self, now: Instant, id: LocalSourceId) {
        StreamSink::close(self.engine, now, id);
    }

    fn is_live(&mut self, name: &str) -> bool {
        StreamSink::is_live(self.engine, name)
    }
}

/// Steps the cameras until `until` of virtual time has passed, moving the clock to each wake-up.
fn run(h: &mut Harness, cameras: &mut [&mut Supervisor], until: Duration) {
    let end = h.now + until;
    while h.now < end {
        let mut wake = end;
        for cam in cameras.iter_mut() {
            let now = h.now;
            wake = wake.min(cam.step(now, &mut h.engine));
        }
        let dt = wake
            .saturating_duration_since(h.now)
            .max(Duration::from_millis(1));
        h.advance(dt);
    }
}

/// RFC 6184 depacketizer for the test: packets of one frame to an Annex B access unit.
fn to_annex_b(packets: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in packets {
        let payload = &p[12..];
        match payload[0] & 0x1f {
            nal_type::STAP_A => {
                let mut rest = &payload[1..];
                while rest.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    out.extend_from_slice(&[0, 0, 0, 1]);
                    out.extend_from_slice(&rest[2..2 + len]);
                    rest = &rest[2 + len..];
                }
            }
            nal_type::FU_A => {
                if payload[1] & 0x80 != 0 {
                    out.extend_from_slice(&[0, 0, 0, 1]);
                    out.push((payload[0] & 0xe0) | (payload[1] & 0x1f));
                }
                out.extend_from_slice(&payload[2..]);
            }
            _ => {
                out.extend_from_slice(&[0, 0, 0, 1]);
                out.extend_from_slice(payload);
            }
        }
    }
    out
}

#[test]
fn pattern_reaches_a_viewer_without_gaps_and_decodes_to_the_counter() {
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let mut cam = test_camera(small_camera("cam0", BITRATE, 30), h.now).expect("camera");
    let mut rec = Recorder {
        engine: &mut h.engine,
        frames: Vec::new(),
    };
    let now = h.now;
    cam.step(now, &mut rec);
    assert!(
        cam.live_source().is_some(),
        "stream opens with the first frame"
    );
    let viewer = h.open(ClientRole::Play, "cam0").expect("play");
    assert!(h.connect_all());
    let before = h.clients[viewer].received.rtp_packets;
    let mut frames = Vec::new();
    for _ in 0..90 {
        let mut rec = Recorder {
            engine: &mut h.engine,
            frames: Vec::new(),
        };
        let now = h.now;
        let wake = cam.step(now, &mut rec);
        frames.extend(rec.frames);
        let dt = wake.saturating_duration_since(h.now);
        h.advance(dt.max(Duration::from_millis(1)));
    }
    let sent: usize = frames.iter().map(Vec::len).sum();
    let rx = &h.clients[viewer].received;
    assert!(
        frames.len() >= 85,
        "~30 fps: {} frames in 3 s",
        frames.len()
    );
    assert_eq!(rx.sequence_gaps, 0);
    assert!(
        rx.rtp_packets - before >= sent as u64,
        "every live packet arrived"
    );
    let stats = cam.stats();
    assert!(stats.keyframes >= 3, "one keyframe per second: {stats:?}");
    assert!(
        frames
            .iter()
            .flatten()
            .all(|p| p.len() <= 12 + 1200 && p[1] & 0x7f == 96)
    );

    // Decode what was sent (from the first IDR on) and read the frame counter back.
    let first_idr = frames
        .iter()
        .position(|f| f[0][12] & 0x1f == nal_type::STAP_A)
        .expect("an IDR");
    let mut decoder = openh264::decoder::Decoder::new().expect("decoder");
    let mut counters = Vec::new();
    for frame in &frames[first_idr..] {
        if let Ok(Some(yuv)) = decoder.decode(&to_annex_b(frame)) {
            let (w, hgt) = yuv.dimensions();
            let (stride, _, _) = yuv.strides();
            let y: Vec<u8> = (0..hgt)
                .flat_map(|r| yuv.y()[r * stride..r * stride + w].to_vec())
                .collect();
            counters.push(read_counter(&y, w, hgt));
        }
    }
    assert!(counters.len() >= 60, "decoded {}", counters.len());
    let values: Vec<u32> = counters.iter().map(|c| c.expect("counter reads")).collect();
    assert!(
        values.windows(2).all(|w| w[1] == w[0] + 1),
        "counter increases by one per frame: {values:?}"
    );
}

#[test]
fn a_keyframe_request_makes_an_idr_with_parameter_sets_first() {
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    // No periodic keyframe within the test: any IDR after the first is the requested one.
    let mut cam = test_camera(small_camera("cam0", BITRATE, 100_000), h.now).expect("camera");
    let viewer_of = |h: &mut Harness| {
        let v = h.open(ClientRole::Play, "cam0").expect("play");
        assert!(h.connect_all());
        v
    };
    run(&mut h, &mut [&mut cam], Duration::from_millis(100));
    let viewer = viewer_of(&mut h);
    // Past the engine's keyframe-request rate limit.
    run(&mut h, &mut [&mut cam], Duration::from_secs(2));
    let before = cam.stats().clone();
    let pli = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0];
    h.clients[viewer].client.send_rtcp(&pli).expect("PLI");
    h.pump();
    let mut idr_after = None;
    for frame in 1..=3 {
        let mut rec = Recorder {
            engine: &mut h.engine,
            frames: Vec::new(),
        };
        let now = h.now;
        let wake = cam.step(now, &mut rec);
        if let Some(packets) = rec.frames.first()
            && packets[0][12] & 0x1f == nal_type::STAP_A
        {
            let sps = &packets[0][12 + 3..];
            assert_eq!(sps[0] & 0x1f, nal_type::SPS, "SPS first in the STAP-A");
            idr_after = Some(frame);
            break;
        }
        let dt = wake.saturating_duration_since(h.now);
        h.advance(dt.max(Duration::from_millis(1)));
    }
    let idr_after = idr_after.expect("an IDR within a frame or two");
    assert!(idr_after <= 2, "IDR on frame {idr_after}");
    assert_eq!(
        cam.stats().requested_keyframes,
        before.requested_keyframes + 1
    );
    assert_eq!(cam.stats().keyframes, before.keyframes + 1);
}

/// A pattern source that can be broken from outside: 0 works, 1 fails, 2 delivers nothing.
struct Flaky {
    inner: PatternSource,
    mode: Arc<AtomicU8>,
    restarts: u32,
}

impl FrameSource for Flaky {
    fn next_frame(&mut self, now: Instant) -> Result<Captured<'_>, SourceError> {
        match self.mode.load(Ordering::Relaxed) {
            0 => self.inner.next_frame(now),
            1 => Err(SourceError::Failed("device unplugged".into())),
            _ => Err(SourceError::NoFrame),
        }
    }

    fn restart(&mut self) -> Result<(), SourceError> {
        self.restarts += 1;
        match self.mode.load(Ordering::Relaxed) {
            1 => Err(SourceError::Failed("no such device".into())),
            _ => Ok(()),
        }
    }
}

fn flaky_camera(name: &str, now: Instant) -> (Supervisor, Arc<AtomicU8>) {
    let mode = Arc::new(AtomicU8::new(0));
    let s = small_camera(name, BITRATE, 30);
    let source = Flaky {
        inner: PatternSource::new(name, 320, 240).expect("pattern"),
        mode: Arc::clone(&mode),
        restarts: 0,
    };
    let encoder = OpenH264Encoder::new(s.encoder).expect("encoder");
    (
        Supervisor::new(s, Box::new(source), Box::new(encoder), now),
        mode,
    )
}

#[test]
fn a_failing_source_ends_and_resumes_its_stream_and_leaves_others_alone() {
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let (mut flaky, mode) = flaky_camera("cam0", h.now);
    let mut steady = test_camera(small_camera("cam1", BITRATE, 30), h.now).expect("camera");
    run(
        &mut h,
        &mut [&mut flaky, &mut steady],
        Duration::from_millis(100),
    );
    let v0 = h.open(ClientRole::Play, "cam0").expect("play cam0");
    let v1 = h.open(ClientRole::Play, "cam1").expect("play cam1");
    assert!(h.connect_all());
    run(
        &mut h,
        &mut [&mut flaky, &mut steady],
        Duration::from_millis(500),
    );
    assert!(h.clients[v0].received.rtp_packets > 0);

    // The device fails: cam0's stream ends at once and its viewer is told.
    mode.store(1, Ordering::Relaxed);
    run(
        &mut h,
        &mut [&mut flaky, &mut steady],
        Duration::from_millis(100),
    );
    assert!(h.engine.hub().get("cam0").is_none(), "cam0 offline");
    assert!(h.clients[v0].received.closed, "cam0 viewer told");
    assert_eq!(flaky.stats().failures, 1);

    // Retries back off 0.5 s, 1 s, 2 s ... while the device stays away.
    let t_fail = h.now;
    let mut retries = Vec::new();
    let mut last = flaky.stats().failures;
    while h.now < t_fail + Duration::from_secs(4) {
        run(
            &mut h,
            &mut [&mut flaky, &mut steady],
            Duration::from_millis(50),
        );
        if flaky.stats().failures != last {
            last = flaky.stats().failures;
            retries.push(h.now);
        }
    }
    let gaps: Vec<u128> = retries
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert!(
        gaps.len() >= 2 && gaps[1] >= gaps[0] * 2 - 100,
        "backoff grows: {gaps:?}"
    );

    // cam1 is untouched throughout.
    let rx1 = &h.clients[v1].received;
    assert!(!rx1.closed && rx1.sequence_gaps == 0);
    let cam1_before = rx1.rtp_packets;

    // The device returns: cam0 is back under the same name within the backoff, and a new viewer
    // gets its pictures.
    mode.store(0, Ordering::Relaxed);
    run(
        &mut h,
        &mut [&mut flaky, &mut steady],
        Duration::from_secs(11),
    );
    assert!(h.engine.hub().get("cam0").is_some(), "cam0 back");
    assert_eq!(flaky.stats().opens, 2);
    let v0b = h.open(ClientRole::Play, "cam0").expect("play cam0 again");
    assert!(h.connect_all());
    run(
        &mut h,
        &mut [&mut flaky, &mut steady],
        Duration::from_millis(500),
    );
    assert!(h.clients[v0b].received.rtp_packets > 0);
    assert!(h.clients[v1].received.rtp_packets > cam1_before);
    assert!(!h.clients[v1].received.closed);
}

#[test]
fn a_stalled_source_ends_its_stream_after_two_seconds() {
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let (mut cam, mode) = flaky_camera("cam0", h.now);
    run(&mut h, &mut [&mut cam], Duration::from_millis(200));
    assert!(cam.live_source().is_some());
    mode.store(2, Ordering::Relaxed);
    run(
        &mut h,
        &mut [&mut cam],
        STALL_TIMEOUT - Duration::from_millis(100),
    );
    assert!(
        h.engine.hub().get("cam0").is_some(),
        "a late frame is not a stall"
    );
    run(&mut h, &mut [&mut cam], Duration::from_millis(200));
    assert!(h.engine.hub().get("cam0").is_none(), "stalled: offline");
    mode.store(0, Ordering::Relaxed);
    run(
        &mut h,
        &mut [&mut cam],
        BACKOFF_START + Duration::from_millis(50),
    );
    assert!(
        h.engine.hub().get("cam0").is_some(),
        "frames again: back online"
    );
}

#[test]
fn stopping_a_camera_ends_its_stream() {
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let mut cam = test_camera(small_camera("cam0", BITRATE, 30), h.now).expect("camera");
    run(&mut h, &mut [&mut cam], Duration::from_millis(100));
    let now = h.now;
    cam.stop(now, &mut h.engine);
    assert!(h.engine.hub().get("cam0").is_none());
    assert!(cam.live_source().is_none());
}

#[test]
fn camera_threads_publish_and_stop_cleanly() {
    use sfu::engine::SharedEngine;
    let engine = SharedEngine::new(Engine::new(EngineConfig::default()).expect("engine"));
    let cams = [
        small_camera("cam0", BITRATE, 30),
        small_camera("cam1", BITRATE, 30),
    ];
    let handles = sfu::capture::start_test_cameras(&engine, &cams).expect("cameras");
    let deadline = Instant::now() + Duration::from_secs(5);
    while engine.lock().streams().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let names: Vec<String> = engine
        .lock()
        .streams()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    for handle in handles {
        handle.stop();
    }
    assert!(
        engine.lock().streams().is_empty(),
        "streams end with their cameras"
    );
    let bad = [CameraSettings {
        encoder: EncoderSettings {
            width: 321,
            ..EncoderSettings::default()
        },
        ..small_camera("odd", BITRATE, 30)
    }];
    assert!(sfu::capture::start_test_cameras(&engine, &bad).is_err());
}

#[test]
fn a_whip_publisher_takes_the_name_and_the_camera_returns_when_it_leaves() {
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let mut cam = test_camera(small_camera("cam0", BITRATE, 30), h.now).expect("camera");
    run(&mut h, &mut [&mut cam], Duration::from_millis(200));
    assert!(cam.live_source().is_some());
    let guest = h.open(ClientRole::Publish, "cam0").expect("publish");
    assert!(h.connect_all());
    run(&mut h, &mut [&mut cam], Duration::from_millis(300));
    assert!(cam.live_source().is_none(), "the camera steps aside");
    let frames = cam.stats().frames;
    run(&mut h, &mut [&mut cam], Duration::from_secs(2));
    assert_eq!(cam.stats().frames, frames, "and stops encoding");
    let session = h.clients[guest].answer.session;
    let now = h.now;
    assert!(h.engine.delete(now, session));
    run(&mut h, &mut [&mut cam], Duration::from_millis(1500));
    assert!(
        cam.live_source().is_some(),
        "the camera takes its name back"
    );
    assert_eq!(cam.stats().opens, 2);
    let streams = h.engine.streams();
    assert_eq!(streams[0].source, sfu::media::SourceKind::Camera);
}

/// Camera packets carry abs-capture-time for viewers that negotiate it: one NTP capture time per
/// frame, 1/30 s apart on the camera's clock; a WHIP publisher's stream does not.
#[test]
fn camera_frames_carry_their_capture_time_to_viewers_that_ask() {
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let mut cam = test_camera(small_camera("cam0", BITRATE, 30), h.now).expect("camera");
    let now = h.now;
    cam.step(now, &mut h.engine);
    let viewer = h.open(ClientRole::Play, "cam0").expect("play");
    assert!(
        h.clients[viewer]
            .answer
            .sdp
            .contains("a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time")
    );
    assert!(h.connect_all());
    for _ in 0..60 {
        let now = h.now;
        let wake = cam.step(now, &mut h.engine);
        let dt = wake.saturating_duration_since(h.now);
        h.advance(dt.max(Duration::from_millis(1)));
    }
    let rx = &h.clients[viewer].received;
    assert!(
        rx.capture_times.len() as u64 >= rx.rtp_packets / 2,
        "on live packets"
    );
    let mut distinct = rx.capture_times.clone();
    distinct.dedup();
    assert!(distinct.len() >= 50, "one per frame: {}", distinct.len());
    for pair in distinct.windows(2) {
        // NTP 32.32 -> milliseconds.
        let ms = (pair[1].wrapping_sub(pair[0]) as f64) * 1000.0 / 4_294_967_296.0;
        assert!((30.0..=37.0).contains(&ms), "frames {ms:.2} ms apart");
    }
    // Seconds since 1900 land today, not at zero.
    let unix = (distinct[0] >> 32) - 2_208_988_800;
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(unix.abs_diff(now_unix) < 3600, "{unix} vs {now_unix}");

    // A WHIP publisher's stream: the extension is not negotiated.
    let publisher = h.open(ClientRole::Publish, "guest").expect("publish");
    let _ = publisher;
    let guest_viewer = h.open(ClientRole::Play, "guest").expect("play guest");
    assert!(
        !h.clients[guest_viewer]
            .answer
            .sdp
            .contains("abs-capture-time")
    );
}

/// The real V4L2 source with its device absent (as after an unplug): the camera keeps retrying
/// with backoff and never opens a stream, while a camera beside it streams on.
#[test]
fn a_v4l2_camera_without_its_device_retries_and_leaves_others_alone() {
    use sfu::capture::mpp::MppOptions;
    use sfu::capture::runner::device_camera;
    use sfu::capture::v4l2::{CaptureFormat, V4l2Settings};
    use sfu::capture::{DeviceCamera, EncoderChoice};

    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let cam = DeviceCamera {
        camera: small_camera("usb0", BITRATE, 30),
        device: V4l2Settings {
            device: "/dev/v4l/by-id/r58-test-no-such-camera".into(),
            width: 320,
            height: 240,
            fps: 30,
            format: CaptureFormat::Yuyv,
        },
        encoder: EncoderChoice::OpenH264,
        mpp: MppOptions::default(),
    };
    let mut usb = device_camera(cam, h.now).expect("camera");
    let mut steady = test_camera(small_camera("cam1", BITRATE, 30), h.now).expect("camera");
    run(&mut h, &mut [&mut usb, &mut steady], Duration::from_secs(4));
    assert!(usb.live_source().is_none());
    assert!(h.engine.hub().get("usb0").is_none(), "never offered");
    // Attempts at 0, 0.5, 1.5 and 3.5 s.
    assert_eq!(usb.stats().failures, 4, "{:?}", usb.stats());
    assert_eq!(usb.stats().opens, 0);
    assert!(steady.stats().frames >= 110, "{:?}", steady.stats());
    assert!(h.engine.hub().get("cam1").is_some());
}

/// A device that needs a few hundred milliseconds after opening before its first frame (as
/// real cameras do) opens its stream once it delivers, without being counted as failed; one
/// that never delivers fails after the stall timeout.
#[test]
fn a_slow_starting_source_is_waited_for_not_failed() {
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let (mut cam, mode) = flaky_camera("cam0", h.now);
    mode.store(2, Ordering::Relaxed);
    run(&mut h, &mut [&mut cam], Duration::from_millis(300));
    assert!(cam.live_source().is_none());
    assert_eq!(cam.stats().failures, 0, "still starting");
    mode.store(0, Ordering::Relaxed);
    run(&mut h, &mut [&mut cam], Duration::from_millis(100));
    assert!(cam.live_source().is_some(), "live with the first frame");
    assert_eq!((cam.stats().opens, cam.stats().failures), (1, 0));

    let (mut dead, mode) = flaky_camera("cam1", h.now);
    mode.store(2, Ordering::Relaxed);
    run(
        &mut h,
        &mut [&mut dead],
        STALL_TIMEOUT - Duration::from_millis(100),
    );
    assert_eq!(dead.stats().failures, 0);
    run(&mut h, &mut [&mut dead], Duration::from_millis(200));
    assert_eq!(
        dead.stats().failures,
        1,
        "no first frame within the stall timeout"
    );
    assert!(h.engine.hub().get("cam1").is_none());
}
