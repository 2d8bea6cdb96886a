//! H.264 encoders behind one trait (OpenH264 in software now; Rockchip MPP later), and the
//! Annex B parsing that turns an encoder's byte stream into NAL units.

use crate::media::h264::AccessUnit;
use bytes::Bytes;
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Level,
    Profile, RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSource;

use super::frame::I420Frame;
use super::source::Picture;

/// What an encoder should produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Target bits per second.
    pub bitrate: u32,
    /// Frames from one IDR to the next (30 at 30 fps = one keyframe per second).
    pub keyframe_interval: u32,
}

impl EncoderSettings {
    /// The H.264 level (`level_idc`, 10 x the level number) the size and frame rate need: 3.1
    /// covers 720p30; bigger pictures or rates get the smallest level that fits (Table A-1).
    pub fn level_idc(&self) -> u8 {
        let mbs = u64::from(self.width.div_ceil(16)) * u64::from(self.height.div_ceil(16));
        let rate = mbs * u64::from(self.fps);
        // (level_idc, max macroblocks per frame, max macroblocks per second)
        const LEVELS: [(u8, u64, u64); 6] = [
            (31, 3_600, 108_000),
            (32, 5_120, 216_000),
            (40, 8_192, 245_760),
            (42, 8_704, 522_240),
            (51, 36_864, 983_040),
            (52, 36_864, 2_073_600),
        ];
        LEVELS
            .iter()
            .find(|(_, frame, second)| mbs <= *frame && rate <= *second)
            .map_or(52, |l| l.0)
    }

    /// The SDP fmtp of the stream: constrained baseline at [`EncoderSettings::level_idc`],
    /// packetization mode 1.
    pub fn fmtp(&self) -> String {
        format!(
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e0{:02x}",
            self.level_idc()
        )
    }
}

impl Default for EncoderSettings {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
            bitrate: 2_500_000,
            keyframe_interval: 30,
        }
    }
}

/// Why encoding failed.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot start the H.264 encoder: {0}")]
    Init(String),
    #[error("H.264 encoding failed: {0}")]
    Encode(String),
    #[error("{encoder} cannot take this picture: {reason}")]
    Unsupported {
        encoder: &'static str,
        reason: &'static str,
    },
    #[error("frame is {got_w}x{got_h}, the encoder was set up for {want_w}x{want_h}")]
    WrongSize {
        got_w: u32,
        got_h: u32,
        want_w: u32,
        want_h: u32,
    },
}

/// An H.264 encoder.
pub trait H264Encoder {
    /// Encodes one picture; `force_keyframe` asks for an IDR (an encoder may defer it a few
    /// frames to rate-limit IDRs; the caller keeps asking until a keyframe comes out). An empty
    /// access unit means the encoder dropped the frame and nothing is to be sent.
    fn encode(
        &mut self,
        picture: &Picture<'_>,
        timestamp_ms: u64,
        force_keyframe: bool,
    ) -> Result<AccessUnit, EncodeError>;

    /// Which encoder this is, for logs (`openh264`, `mpp`).
    fn name(&self) -> &'static str;

    /// Whether [`Picture::DmaBuf`] input works (hardware encoders reading device memory).
    fn accepts_dmabuf(&self) -> bool {
        false
    }
}

/// A capture time in milliseconds as 90 kHz media time, for [`AccessUnit::timestamp`].
pub(crate) fn rtp_time(timestamp_ms: u64) -> u32 {
    timestamp_ms.wrapping_mul(90) as u32
}

/// Checks a picture's size against the encoder's.
pub(crate) fn check_size(
    picture: &Picture<'_>,
    settings: &EncoderSettings,
) -> Result<(), EncodeError> {
    let (w, h) = picture.size();
    if (w, h) != (settings.width, settings.height) {
        return Err(EncodeError::WrongSize {
            got_w: w,
            got_h: h,
            want_w: settings.width,
            want_h: settings.height,
        });
    }
    Ok(())
}

/// OpenH264, built from its bundled source: constrained baseline, bitrate rate control, one
/// thread, an IDR every `keyframe_interval` frames and on request.
pub struct OpenH264Encoder {
    encoder: Encoder,
    settings: EncoderSettings,
    buf: Vec<u8>,
    /// Where device pictures (YUYV, NV12) are converted to I420; made on first use.
    converted: Option<I420Frame>,
}

impl OpenH264Encoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, EncodeError> {
        let level = match settings.level_idc() {
            31 => Level::Level_3_1,
            32 => Level::Level_3_2,
            40 => Level::Level_4_0,
            42 => Level::Level_4_2,
            51 => Level::Level_5_1,
            _ => Level::Level_5_2,
        };
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .level(level)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(settings.bitrate))
            .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                settings.keyframe_interval.max(1),
            ))
            // Every captured frame is sent: a skipped frame would look like a gap to a viewer
            // reading the frame counter, and it only saves bits we budgeted for anyway.
            .skip_frames(false)
            // Same SPS/PPS ids for the whole run: a viewer joining at any IDR decodes.
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            // One thread per camera keeps the CPU cost per camera predictable; cameras run in
            // parallel on their own threads.
            .num_threads(1)
            .complexity(Complexity::Low)
            .scene_change_detect(false);
        let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| EncodeError::Init(e.to_string()))?;
        if let Err(code) = super::openh264_log::route_to_tracing(&mut encoder) {
            tracing::debug!(
                code,
                "OpenH264 keeps logging to stderr: it refused the trace callback"
            );
        }
        Ok(Self {
            encoder,
            settings,
            buf: Vec::new(),
            converted: None,
        })
    }
}

/// Lends an [`I420Frame`] to OpenH264 without copying.
struct Planes<'a>(&'a I420Frame);

impl YUVSource for Planes<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width() as usize, self.0.height() as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let cw = self.0.chroma_width();
        (self.0.width() as usize, cw, cw)
    }

    fn y(&self) -> &[u8] {
        &self.0.y
    }

    fn u(&self) -> &[u8] {
        &self.0.u
    }

    fn v(&self) -> &[u8] {
        &self.0.v
    }
}

impl H264Encoder for OpenH264Encoder {
    fn name(&self) -> &'static str {
        "openh264"
    }

    fn encode(
        &mut self,
        picture: &Picture<'_>,
        timestamp_ms: u64,
        force_keyframe: bool,
    ) -> Result<AccessUnit, EncodeError> {
        check_size(picture, &self.settings)?;
        let frame = match picture {
            Picture::I420(frame) => *frame,
            Picture::Raw(raw) => {
                let out = match &mut self.converted {
                    Some(out) => out,
                    slot => slot.insert(
                        I420Frame::new(self.settings.width, self.settings.height)
                            .map_err(|e| EncodeError::Encode(e.to_string()))?,
                    ),
                };
                raw.to_i420(out)
                    .map_err(|e| EncodeError::Encode(e.to_string()))?;
                out
            }
            Picture::DmaBuf(_) => {
                return Err(EncodeError::Unsupported {
                    encoder: "openh264",
                    reason: "it reads pictures from memory, not DMA-BUF descriptors",
                });
            }
        };
        if force_keyframe {
            self.encoder.force_intra_frame();
        }
        let stream = self
            .encoder
            .encode_at(
                &Planes(frame),
                openh264::Timestamp::from_millis(timestamp_ms),
            )
            .map_err(|e| EncodeError::Encode(e.to_string()))?;
        if matches!(stream.frame_type(), FrameType::Skip | FrameType::Invalid) {
            return Ok(AccessUnit::default());
        }
        self.buf.clear();
        stream.write_vec(&mut self.buf);
        // One allocation per frame; every NAL unit is a zero-copy slice of it.
        let data = Bytes::from(std::mem::take(&mut self.buf));
        Ok(AccessUnit::from_annex_b(&data, rtp_time(timestamp_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::{nal_type, nal_unit_type};

    #[test]
    fn levels_follow_size_and_rate() {
        let s = |width, height, fps| EncoderSettings {
            width,
            height,
            fps,
            ..EncoderSettings::default()
        };
        assert_eq!(s(1280, 720, 30).level_idc(), 31);
        assert_eq!(
            s(1280, 720, 30).fmtp(),
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
        );
        assert_eq!(s(320, 240, 30).level_idc(), 31);
        assert_eq!(s(1280, 720, 60).level_idc(), 32);
        assert_eq!(s(1920, 1080, 30).level_idc(), 40);
        assert_eq!(s(1920, 1080, 60).level_idc(), 42);
        assert_eq!(s(3840, 2160, 30).level_idc(), 51);
    }

    #[test]
    fn openh264_makes_constrained_baseline_idrs_on_request() {
        let settings = EncoderSettings {
            width: 320,
            height: 240,
            bitrate: 500_000,
            keyframe_interval: 1000,
            ..EncoderSettings::default()
        };
        let mut enc = OpenH264Encoder::new(settings).expect("encoder");
        let mut frame = I420Frame::new(320, 240).expect("frame");
        let first = enc.encode(&(&frame).into(), 0, false).expect("encode");
        assert!(first.keyframe, "the first frame is an IDR");
        let types: Vec<u8> = first.nals.iter().map(|n| nal_unit_type(n)).collect();
        assert_eq!(&types[..2], &[nal_type::SPS, nal_type::PPS], "{types:?}");
        let sps = &first.nals[0];
        assert_eq!(sps[1], 66, "profile_idc baseline");
        assert_ne!(sps[2] & 0x40, 0, "constraint_set1: constrained baseline");
        frame.y[0] = 200;
        let second = enc.encode(&(&frame).into(), 33, false).expect("encode");
        assert!(!second.keyframe && !second.nals.is_empty());
        let forced = enc.encode(&(&frame).into(), 66, true).expect("encode");
        assert!(forced.keyframe);
        let wrong = I420Frame::new(64, 64).expect("frame");
        assert!(matches!(
            enc.encode(&(&wrong).into(), 99, false),
            Err(EncodeError::WrongSize { .. })
        ));
    }

    /// Device layouts reach OpenH264 converted: NV12 and YUYV built from an I420 picture encode
    /// to exactly the bitstream of the I420 picture itself.
    #[test]
    fn openh264_takes_nv12_and_yuyv_device_pictures() {
        use crate::capture::pattern::PatternSource;
        use crate::capture::source::{FrameSource, RawFormat, RawFrame, RawLayout};
        let (w, h) = (320usize, 240usize);
        let mut pattern = PatternSource::new("cam", w as u32, h as u32).expect("pattern");
        let now = std::time::Instant::now();
        let captured = pattern.next_frame(now).expect("frame");
        let i420 = captured.image.i420().expect("I420").clone();
        let (cw, ch) = (w / 2, h / 2);
        // NV12 with a padded stride; YUYV repeating each chroma row for both luma rows.
        let stride = w + 32;
        let mut nv12 = vec![0u8; stride * h + stride * ch];
        for r in 0..h {
            nv12[r * stride..][..w].copy_from_slice(&i420.y[r * w..][..w]);
        }
        for r in 0..ch {
            for c in 0..cw {
                nv12[stride * h + r * stride + 2 * c] = i420.u[r * cw + c];
                nv12[stride * h + r * stride + 2 * c + 1] = i420.v[r * cw + c];
            }
        }
        let mut yuyv = vec![0u8; w * 2 * h];
        for r in 0..h {
            for c in 0..cw {
                let px = &mut yuyv[r * w * 2 + 4 * c..][..4];
                px.copy_from_slice(&[
                    i420.y[r * w + 2 * c],
                    i420.u[(r / 2) * cw + c],
                    i420.y[r * w + 2 * c + 1],
                    i420.v[(r / 2) * cw + c],
                ]);
            }
        }
        let layout = |format, stride| RawLayout {
            format,
            width: w as u32,
            height: h as u32,
            stride,
            plane_rows: h,
        };
        let settings = EncoderSettings {
            width: w as u32,
            height: h as u32,
            ..EncoderSettings::default()
        };
        let encode = |picture: Picture<'_>| {
            let mut enc = OpenH264Encoder::new(settings).expect("encoder");
            let unit = enc.encode(&picture, 0, false).expect("encode");
            assert!(unit.keyframe);
            unit.nals.concat()
        };
        let reference = encode(Picture::I420(&i420));
        let from_nv12 = encode(Picture::Raw(RawFrame {
            layout: layout(RawFormat::Nv12, stride),
            data: &nv12,
        }));
        let from_yuyv = encode(Picture::Raw(RawFrame {
            layout: layout(RawFormat::Yuyv, w * 2),
            data: &yuyv,
        }));
        assert!(reference == from_nv12, "NV12 input encodes like I420");
        assert!(reference == from_yuyv, "YUYV input encodes like I420");
        let short = Picture::Raw(RawFrame {
            layout: layout(RawFormat::Yuyv, w * 2),
            data: &yuyv[..100],
        });
        let mut enc = OpenH264Encoder::new(settings).expect("encoder");
        assert!(matches!(
            enc.encode(&short, 0, false),
            Err(EncodeError::Encode(_))
        ));
    }
}
