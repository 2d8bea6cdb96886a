//! OpenH264's log through `tracing`, instead of its own lines on stderr.
//!
//! Left alone, OpenH264 prints warnings to stderr as the encoder starts, among them "bEnableFrameSkip
//! = 0, bitrate can't be controlled ..." for the configuration the test cameras choose on
//! purpose (every frame is sent: a skipped frame would be a gap in the frame counter). Routed
//! here, the library's errors become `warn` events and its warnings and information `debug`
//! (target `openh264`), so they are there when asked for (`--log-level info,openh264=debug`)
//! and out of the operator's way otherwise.

// The callback is a C function pointer handed to OpenH264 through its raw API (workspace lints:
// this shim, the MPP wrapper, the batching sender and rockchip-mpp-sys are the places allowed).
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};

use openh264::encoder::Encoder;
use openh264_sys2::{ENCODER_OPTION_TRACE_CALLBACK, WELS_LOG_ERROR, WELS_LOG_INFO};

/// Receives each formatted log line of one encoder.
extern "C" fn forward(_context: *mut c_void, level: c_int, message: *const c_char) {
    if message.is_null() {
        return;
    }
    // SAFETY: OpenH264 passes a NUL-terminated buffer it formatted (welsCodecTrace::CodecTrace),
    // valid for the duration of this call; it is only read here.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    let text = text.trim_end();
    if level <= WELS_LOG_ERROR {
        tracing::warn!(target: "openh264", "{text}");
    } else if level <= WELS_LOG_INFO {
        tracing::debug!(target: "openh264", "{text}");
    } else {
        tracing::trace!(target: "openh264", "{text}");
    }
}

/// Sends `encoder`'s log to [`forward`]. Call it before the first frame: OpenH264 checks its
/// parameters (and warns) when the first frame initializes the encoder. Returns OpenH264's
/// error code if it refused the option.
pub fn route_to_tracing(encoder: &mut Encoder) -> Result<(), c_int> {
    let mut callback: openh264_sys2::WelsTraceCallback = Some(forward);
    // SAFETY: the trace callback is one of the options OpenH264 takes before initialization
    // (CWelsH264SVCEncoder::SetOption); it copies the function pointer out of `callback`
    // before returning; `forward` is `extern "C"`, so a panic in it aborts rather than unwind
    // into C. The option changes nothing the `openh264` crate relies on.
    let result = unsafe {
        encoder
            .raw_api()
            .set_option(ENCODER_OPTION_TRACE_CALLBACK, (&raw mut callback).cast())
    };
    if result == 0 { Ok(()) } else { Err(result) }
}
