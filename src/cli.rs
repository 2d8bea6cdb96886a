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
    let mut line = format!(
        "config {file}: valid (HTTP {}, WebRTC UDP {}{})",
        config.listen,
        config.webrtc_udp,
        if config.tls.is_some() { ", HTTPS" } else { "" }
    );
    let privileged: Vec<String> = [
        Some(config.listen.port()),
        Some(config.webrtc_udp.port()),
        config.rtsp.enabled.then_some(config.rtsp.listen.port()),
    ]
    .into_iter()
    .flatten()
    .filter(|port| (1..1024).contains(port))
    .map(|port| port.to_string())
    .collect();
    if !privileged.is_empty() {
        // The packaged service has no capability unless a drop-in grants this one.
        line.push_str(&format!(
            "; port {} is below 1024: the service needs CAP_NET_BIND_SERVICE              (docs/packaging.md, \"A port below 1024\")",
            privileged.join(", ")
        ));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(args: &[&str]) -> String {
        let args = std::iter::once("r58").chain(args.iter().copied());
        let config =
            Config::from_args_env_file(args.map(str::to_owned), &std::collections::HashMap::new())
                .expect("valid flags");
        check_config(&config).expect("valid")
    }

    #[test]
    fn a_port_below_1024_is_pointed_out() {
        let line = checked(&["--listen", "0.0.0.0:443"]);
        assert!(line.contains("port 443 is below 1024"), "{line}");
        assert!(line.contains("CAP_NET_BIND_SERVICE"), "{line}");
        let line = checked(&["--listen", "0.0.0.0:8000"]);
        assert!(!line.contains("below 1024"), "{line}");
    }
}
