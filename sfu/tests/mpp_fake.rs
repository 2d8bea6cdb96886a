//! The MPP encoder wrapper against a stand-in librockchip_mpp (`tests/fake_mpp/fake_mpp.c`,
//! compiled here with the system C compiler and loaded through `rockchip-mpp-sys` exactly as the
//! real library is). The stand-in records each call with its arguments and the pixels it can
//! see, so these tests check what the wrapper asks of MPP: the configuration, the strides and
//! formats of the frames, the copy into MPP's buffer, DMA-BUF import, IDRs on request and their
//! rate limit, and that every frame, packet, buffer and config is released. What the real VPU
//! does with all that is for the on-device checklist in docs/hardware.md.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rockchip_mpp_sys::Mpp;
use sfu::capture::encoder::{EncodeError, EncoderSettings, H264Encoder};
use sfu::capture::frame::I420Frame;
use sfu::capture::mpp::{MppEncoder, MppOptions};
use sfu::capture::source::{DmaBufFrame, Picture, RawFormat, RawFrame, RawLayout};
use sfu::capture::{EncoderChoice, select_encoder};
use sfu::media::h264::{nal_type, nal_unit_type};

struct Fake {
    _dir: tempfile::TempDir,
    lib: PathBuf,
    log: PathBuf,
}

impl Fake {
    fn build(defines: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let lib = dir.path().join("libfake_mpp.so");
        let log = dir.path().join("calls.log");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_mpp/fake_mpp.c");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let out = Command::new(&cc)
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&lib)
            .arg(format!("-DFAKE_MPP_LOG=\"{}\"", log.display()))
            .args(defines)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| panic!("running {cc}: {e}"));
        assert!(out.status.success(), "{cc}: {out:?}");
        Self {
            _dir: dir,
            lib,
            log,
        }
    }

    fn mpp(&self) -> Arc<Mpp> {
        Arc::new(Mpp::load_from(&[self.lib.to_str().expect("utf-8")]).expect("load the fake"))
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The lines starting with `prefix`, without it.
    fn calls(&self, prefix: &str) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix(prefix).map(str::to_owned))
            .collect()
    }

    fn clear(&self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

fn settings(width: u32, height: u32) -> EncoderSettings {
    EncoderSettings {
        width,
        height,
        fps: 30,
        bitrate: 500_000,
        keyframe_interval: 30,
    }
}

/// A picture whose first luma, last luma and first chroma bytes are known.
fn marked_i420(width: u32, height: u32) -> I420Frame {
    let mut f = I420Frame::new(width, height).expect("frame");
    f.y[0] = 11;
    let last = f.y.len() - 1;
    f.y[last] = 22;
    f.u[0] = 33;
    f
}

fn types(unit: &sfu::media::h264::AccessUnit) -> Vec<u8> {
    unit.nals.iter().map(|n| nal_unit_type(n)).collect()
}

#[test]
fn i420_frames_are_configured_copied_at_aligned_strides_and_released() {
    let fake = Fake::build(&[]);
    // 200x120: neither a multiple of 16, so the copy must honour strides 208 x 128.
    let mut enc =
        MppEncoder::new(fake.mpp(), settings(200, 120), MppOptions::default()).expect("encoder");
    let lines = fake.lines();
    assert_eq!(lines[0], "create");
    assert_eq!(lines[1], "control output_timeout=1000");
    assert_eq!(lines[2], "init type=1 coding=7");
    let cfg = &fake.calls("set_cfg ")[0];
    for kv in [
        "prep:width=200",
        "prep:height=120",
        "prep:hor_stride=208",
        "prep:ver_stride=128",
        "prep:format=4",
        "rc:mode=1",
        "rc:bps_target=500000",
        "rc:bps_max=531250",
        "rc:bps_min=468750",
        "rc:fps_in_num=30",
        "rc:fps_out_num=30",
        "rc:gop=30",
        "codec:type=7",
        "h264:profile=66",
        "h264:level=31",
        "h264:cabac_en=0",
        "h264:trans8x8=0",
    ] {
        assert!(cfg.split(' ').any(|c| c == kv), "{kv} in {cfg}");
    }
    assert!(
        lines.contains(&"control header_mode=1".to_owned()),
        "SPS/PPS with each IDR"
    );
    assert!(lines.contains(&"control sei=0".to_owned()));

    let frame = marked_i420(200, 120);
    let first = enc.encode(&(&frame).into(), 0, true).expect("encode");
    assert!(first.keyframe);
    assert_eq!(types(&first), [nal_type::SPS, nal_type::PPS, nal_type::IDR]);
    assert_eq!(
        fake.calls("put_frame "),
        ["w=200 h=120 hs=208 vs=128 fmt=4 pts=0 external=0 y0=11 ylast=22 c0=33 idr=1"]
    );
    assert_eq!(
        fake.calls("buffer_get "),
        [format!("size={}", 208 * 128 * 3 / 2)]
    );

    let second = enc.encode(&(&frame).into(), 33, false).expect("encode");
    assert!(!second.keyframe);
    assert_eq!(types(&second), [nal_type::SLICE]);
    assert_eq!(
        fake.calls("buffer_get ").len(),
        1,
        "one input buffer, reused"
    );

    // The first frame's IDR was forced (a new stream wants one at once); the next request
    // within 200 ms of it waits, and the supervisor keeps asking until it goes through.
    assert!(
        !enc.encode(&(&frame).into(), 100, true)
            .expect("encode")
            .keyframe
    );
    assert!(
        !enc.encode(&(&frame).into(), 166, true)
            .expect("encode")
            .keyframe
    );
    assert!(
        enc.encode(&(&frame).into(), 200, true)
            .expect("encode")
            .keyframe
    );
    assert_eq!(fake.calls("control idr").len(), 2, "at 0 and 200 ms");

    let wrong = I420Frame::new(64, 64).expect("frame");
    assert!(matches!(
        enc.encode(&(&wrong).into(), 300, false),
        Err(EncodeError::WrongSize { .. })
    ));
    assert_eq!(
        fake.calls("put_frame ").len(),
        5,
        "the wrong size never reached MPP"
    );

    drop(enc);
    let lines = fake.lines();
    let tail: Vec<&str> = lines
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "reset",
            "destroy live_frames=0 live_packets=0",
            "cfg_deinit live_cfgs=0",
            "free live_buffers=0",
            "group_put",
        ]
    );
}

#[test]
fn device_nv12_is_copied_in_its_own_layout() {
    let fake = Fake::build(&[]);
    let mut enc =
        MppEncoder::new(fake.mpp(), settings(64, 32), MppOptions::default()).expect("encoder");
    fake.clear();
    // NV12 with a driver stride of 96 bytes.
    let stride = 96;
    let mut data = vec![0u8; stride * 32 * 3 / 2];
    data[0] = 5;
    data[31 * stride + 63] = 6;
    data[stride * 32] = 7;
    let picture = Picture::Raw(RawFrame {
        layout: RawLayout {
            format: RawFormat::Nv12,
            width: 64,
            height: 32,
            stride,
            plane_rows: 32,
        },
        data: &data,
    });
    assert!(enc.encode(&picture, 0, false).expect("encode").keyframe);
    let cfg = &fake.calls("set_cfg ")[0];
    assert!(
        cfg.contains(" prep:hor_stride=96 prep:ver_stride=32 prep:format=0 "),
        "{cfg}"
    );
    assert_eq!(
        fake.calls("put_frame "),
        ["w=64 h=32 hs=96 vs=32 fmt=0 pts=0 external=0 y0=5 ylast=6 c0=7 idr=1"]
    );
    // Same layout again: no reconfiguration.
    enc.encode(&picture, 33, false).expect("encode");
    assert_eq!(fake.calls("set_cfg ").len(), 1);
}

#[test]
fn dmabuf_frames_are_imported_not_copied_and_put_after_each_frame() {
    let fake = Fake::build(&[]);
    let mut enc =
        MppEncoder::new(fake.mpp(), settings(64, 32), MppOptions::default()).expect("encoder");
    fake.clear();
    // A YUYV "device buffer" in a file: the stand-in maps the descriptor as MPP would.
    let stride = 128;
    let mut pixels = vec![0u8; stride * 32];
    pixels[0] = 9;
    pixels[31 * stride + 127] = 10;
    let mut file = tempfile::tempfile().expect("tempfile");
    file.write_all(&pixels).expect("write");
    let layout = RawLayout {
        format: RawFormat::Yuyv,
        width: 64,
        height: 32,
        stride,
        plane_rows: 32,
    };
    for ts in [0, 33] {
        let picture = Picture::DmaBuf(DmaBufFrame {
            layout,
            fd: file.as_fd(),
            buffer_len: pixels.len(),
        });
        enc.encode(&picture, ts, false).expect("encode");
    }
    assert!(enc.accepts_dmabuf());
    assert_eq!(
        fake.calls("import "),
        ["type=2 fd_ok=1 size=4096", "type=2 fd_ok=1 size=4096"],
        "MPP_BUFFER_TYPE_EXT_DMA"
    );
    assert_eq!(
        fake.calls("put_frame "),
        [
            "w=64 h=32 hs=128 vs=32 fmt=8 pts=0 external=1 y0=9 ylast=10 c0=-1 idr=1",
            "w=64 h=32 hs=128 vs=32 fmt=8 pts=33 external=1 y0=9 ylast=10 c0=-1 idr=0",
        ]
    );
    assert!(fake.calls("buffer_get ").is_empty(), "no copy buffer");
    assert_eq!(
        fake.calls("free "),
        ["live_buffers=0", "live_buffers=0"],
        "each import released after its frame"
    );
}

#[test]
fn a_library_without_an_h264_encoder_is_refused_and_auto_falls_back() {
    let fake = Fake::build(&["-DFAKE_MPP_NO_H264"]);
    let err = MppEncoder::new(fake.mpp(), settings(64, 32), MppOptions::default())
        .err()
        .expect("refused");
    assert!(
        err.to_string().ends_with(": this SoC has no H.264 encoder"),
        "{err}"
    );
    let selected = select_encoder(
        "cam",
        EncoderChoice::Auto,
        settings(64, 32),
        MppOptions::default(),
        || Ok(fake.mpp()),
    )
    .expect("fallback");
    assert_eq!(selected.encoder.name(), "openh264");
    assert!(
        selected.reason.contains("this SoC has no H.264 encoder"),
        "{}",
        selected.reason
    );

    let working = Fake::build(&[]);
    let selected = select_encoder(
        "cam",
        EncoderChoice::Auto,
        settings(64, 32),
        MppOptions::default(),
        || Ok(working.mpp()),
    )
    .expect("mpp");
    assert_eq!(selected.encoder.name(), "mpp");
    assert!(
        selected.reason.starts_with("auto: /"),
        "{}",
        selected.reason
    );
}
