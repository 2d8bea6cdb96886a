//! What the binary does besides serving: `--version` and `r58 check-config FILE`.

use crate::config::Config;

/// `r58 --version`: the package version, the commit it was built from and the target, e.g.
/// `0.1.0 (commit 1a2b3c4d5e6f, aarch64-unknown-linux-gnu)` (set by build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("R58_GIT_COMMIT"),
    ", ",
    env!("R58_BUILD_TARGET"),
    ")"
);

/// `r58 check-config FILE`, after [`Config::load`] accepted the file: what loading leaves for
/// the server's start to read (the TLS certificate and key). `Ok` is the line to print.
pub fn check_config(config: &Config) -> Result<String, String> {
    let file = config
        .config_file
        .as_ref()
        .map_or_else(|| "(none)".to_owned(), |f| f.display().to_string());
    if let Some(tls) = &config.tls {
        crate::listener::tls_acceptor(&tls.cert, &tls.key).map_err(|e| e.to_string())?;
    }
    Ok(format!(
        "config {file}: valid (HTTP {}, WebRTC UDP {}{})",
        config.listen,
        config.webrtc_udp,
        if config.tls.is_some() { ", HTTPS" } else { "" }
    ))
}
