//! `[mdns]`: the box answers for `HOSTNAME.local` (A and AAAA with the address of each
//! interface a query arrives on) and advertises its pages over DNS-SD as `_http._tcp` and,
//! with `[tls] auto`, `_https._tcp`, so `http://r58.local:8000/` opens from any laptop on the
//! LAN, in LOCAL mode (the pages treat `*.local` as the LAN).
//!
//! The responder is the `mdns-sd` crate (RFC 6762/6763, safe Rust, its own thread, no async
//! runtime; maintained and used widely): a responder is a protocol with probing, conflict
//! handling, per-interface answers and address changes that a hand-written one would have to
//! get right again. Loopback interfaces are left out (a LAN name is for the LAN); the crate
//! follows interfaces and addresses that come and go.

use std::collections::HashMap;

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};
use tracing::info;

use crate::config::Mdns;

/// Why advertising could not start.
#[derive(Debug, thiserror::Error)]
#[error("mDNS ({what}): {source}")]
pub struct MdnsError {
    what: &'static str,
    source: mdns_sd::Error,
}

/// The running responder; dropping it withdraws the services and stops its thread.
pub struct Advertiser {
    daemon: ServiceDaemon,
    services: Vec<String>,
}

impl Drop for Advertiser {
    fn drop(&mut self) {
        for name in &self.services {
            let _ = self.daemon.unregister(name);
        }
        let _ = self.daemon.shutdown();
    }
}

/// Starts answering for `config.hostname.local` with `_http._tcp` on `http_port` and
/// `_https._tcp` on `https_port`.
pub fn advertise(
    config: &Mdns,
    http_port: u16,
    https_port: Option<u16>,
) -> Result<Advertiser, MdnsError> {
    let err = |what| move |source| MdnsError { what, source };
    let daemon = ServiceDaemon::new().map_err(err("starting the responder"))?;
    daemon
        .disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])
        .map_err(err("leaving loopback out"))?;
    let host = format!("{}.", config.local_name());
    let mut advertiser = Advertiser {
        daemon,
        services: Vec::new(),
    };
    let services = [
        ("_http._tcp.local.", Some(http_port)),
        ("_https._tcp.local.", https_port),
    ];
    for (kind, port) in services {
        let Some(port) = port else { continue };
        let properties: HashMap<String, String> = [("path".to_owned(), "/".to_owned())].into();
        // No fixed addresses: each interface's own address goes into the answers it sends.
        let service = ServiceInfo::new(kind, &config.hostname, &host, (), port, properties)
            .map_err(err("describing the service"))?
            .enable_addr_auto();
        advertiser.services.push(service.get_fullname().to_owned());
        advertiser
            .daemon
            .register(service)
            .map_err(err("registering the service"))?;
        info!(host = %config.local_name(), service = kind, port, "mDNS advertising");
    }
    Ok(advertiser)
}
