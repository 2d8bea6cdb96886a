//! Which H.264 encoder a camera gets: MPP (the Rockchip VPU) when asked for or, with `auto`,
//! when its library loads; OpenH264 otherwise. The choice and its reason are logged.

use std::sync::{Arc, OnceLock};

use rockchip_mpp_sys::Mpp;
use tracing::info;

use super::encoder::{EncodeError, EncoderSettings, H264Encoder, OpenH264Encoder};
use super::mpp::{MppEncoder, MppOptions};

/// The `encoder` setting of a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderChoice {
    /// MPP if its library loads and opens an H.264 encoder, else OpenH264.
    #[default]
    Auto,
    /// MPP or fail.
    Mpp,
    /// OpenH264 always.
    OpenH264,
}

impl EncoderChoice {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(Self::Auto),
            "mpp" => Some(Self::Mpp),
            "openh264" => Some(Self::OpenH264),
            _ => None,
        }
    }
}

/// The process-wide MPP library: loaded on first use, once (success or failure).
pub fn system_mpp() -> Result<Arc<Mpp>, String> {
    static MPP: OnceLock<Result<Arc<Mpp>, String>> = OnceLock::new();
    MPP.get_or_init(|| Mpp::load().map(Arc::new).map_err(|e| e.to_string()))
        .clone()
}

/// An encoder and why it was picked.
pub struct Selected {
    pub encoder: Box<dyn H264Encoder>,
    pub reason: String,
}

/// Makes the encoder `choice` asks for. `mpp` is how to get the MPP library (normally
/// [`system_mpp`]; tests pass a loader that fails as on a machine without it).
pub fn select_encoder(
    camera: &str,
    choice: EncoderChoice,
    settings: EncoderSettings,
    options: MppOptions,
    mpp: impl FnOnce() -> Result<Arc<Mpp>, String>,
) -> Result<Selected, EncodeError> {
    let selected = match choice {
        EncoderChoice::OpenH264 => Selected {
            encoder: Box::new(OpenH264Encoder::new(settings)?),
            reason: "encoder = \"openh264\"".into(),
        },
        EncoderChoice::Mpp => {
            let lib = mpp().map_err(EncodeError::Init)?;
            Selected {
                encoder: Box::new(MppEncoder::new(lib, settings, options)?),
                reason: "encoder = \"mpp\"".into(),
            }
        }
        EncoderChoice::Auto => match mpp().and_then(|lib| {
            MppEncoder::new(Arc::clone(&lib), settings, options)
                .map(|e| (e, lib))
                .map_err(|e| e.to_string())
        }) {
            Ok((encoder, lib)) => Selected {
                encoder: Box::new(encoder),
                reason: format!("auto: {} loaded", lib.path.display()),
            },
            Err(why) => Selected {
                encoder: Box::new(OpenH264Encoder::new(settings)?),
                reason: format!("auto: MPP unavailable ({why})"),
            },
        },
    };
    info!(
        camera,
        encoder = selected.encoder.name(),
        reason = %selected.reason,
        "camera encoder chosen"
    );
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::frame::I420Frame;

    fn small() -> EncoderSettings {
        EncoderSettings {
            width: 160,
            height: 96,
            fps: 30,
            bitrate: 200_000,
            keyframe_interval: 30,
        }
    }

    fn missing() -> Result<Arc<Mpp>, String> {
        Mpp::load_from(&["/nonexistent/librockchip_mpp.so.1"])
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn auto_falls_back_to_openh264_and_encodes_for_real() {
        let mut sel = select_encoder(
            "t",
            EncoderChoice::Auto,
            small(),
            MppOptions::default(),
            missing,
        )
        .expect("fallback");
        assert_eq!(sel.encoder.name(), "openh264");
        assert!(
            sel.reason.starts_with("auto: MPP unavailable (Rockchip MPP library not found (/nonexistent/librockchip_mpp.so.1: "),
            "{}",
            sel.reason
        );
        let frame = I420Frame::new(160, 96).expect("frame");
        let unit = sel
            .encoder
            .encode(&(&frame).into(), 0, true)
            .expect("encode");
        assert!(unit.keyframe && unit.nals.len() >= 3, "SPS, PPS, IDR");
    }

    #[test]
    fn mpp_on_request_is_a_clear_error_without_the_library() {
        let err = select_encoder(
            "t",
            EncoderChoice::Mpp,
            small(),
            MppOptions::default(),
            missing,
        )
        .err()
        .expect("no MPP here");
        let text = err.to_string();
        assert!(
            text.starts_with("cannot start the H.264 encoder: Rockchip MPP library not found"),
            "{text}"
        );
    }

    #[test]
    fn openh264_on_request_never_tries_mpp() {
        let sel = select_encoder(
            "t",
            EncoderChoice::OpenH264,
            small(),
            MppOptions::default(),
            || panic!("MPP must not be loaded"),
        )
        .expect("openh264");
        assert_eq!(sel.encoder.name(), "openh264");
        assert!(!sel.encoder.accepts_dmabuf());
    }

    #[test]
    fn choices_parse() {
        assert_eq!(EncoderChoice::parse("auto"), Some(EncoderChoice::Auto));
        assert_eq!(EncoderChoice::parse("mpp"), Some(EncoderChoice::Mpp));
        assert_eq!(
            EncoderChoice::parse("openh264"),
            Some(EncoderChoice::OpenH264)
        );
        assert_eq!(EncoderChoice::parse("x264"), None);
    }
}
