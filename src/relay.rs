//! Which TURN server r58 allocates its own relay on, and as whom: credentials from the same
//! provider that serves clients (`[turn]`), handed to the media driver
//! ([`sfu::net::driver::spawn_with_relay`]) through a watch channel.
//!
//! The driver makes a new allocation whenever the settings change, and a new allocation means
//! a new relay candidate (clients on the old one restart ICE), so settings change only when
//! they must: on start, when the provider's credentials near their expiry, and when the
//! server's name resolves to another address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sfu::net::relay::{RelayServer, RelaySettings};
use sfu::turn::client::Transport;
use sfu::turn::{IceServer, Provider, TurnService};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::ServerRelay;

/// Whether r58 should hold a relay: per `server_relay`, the provider, and whether the box's
/// candidate addresses are all private (behind NAT).
pub fn wanted(mode: ServerRelay, provider: &Provider, candidates: &[SocketAddr]) -> bool {
    let has_turn = !matches!(provider, Provider::None);
    match mode {
        ServerRelay::Never => false,
        ServerRelay::Always => has_turn,
        ServerRelay::Auto => has_turn && candidates.iter().all(|c| !is_public(c.ip())),
    }
}

/// Whether `ip` is reachable from the internet as it is (not private, loopback, link-local,
/// shared CGNAT space or unique-local).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let cgnat = a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64;
            !(a.is_private() || a.is_loopback() || a.is_link_local() || a.is_unspecified() || cgnat)
        }
        IpAddr::V6(a) => {
            let ula = (a.segments()[0] & 0xfe00) == 0xfc00;
            let link_local = (a.segments()[0] & 0xffc0) == 0xfe80;
            !(a.is_loopback() || a.is_unspecified() || ula || link_local)
        }
    }
}

/// The TURN URLs of the first ICE server with credentials, UDP first, then TCP, then TLS
/// (`turn:host:port`, `?transport=udp|tcp`, `turns:`): ([(host, port, transport)], username,
/// password).
fn turn_servers(servers: &[IceServer]) -> Option<(Vec<TurnUrl>, String, String)> {
    servers.iter().find_map(|server| {
        let (Some(username), Some(credential)) = (&server.username, &server.credential) else {
            return None;
        };
        let mut found: Vec<TurnUrl> = server
            .urls
            .iter()
            .filter_map(|url| parse_turn_url(url))
            .collect();
        found.sort_by_key(|(_, _, t)| match t {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Tls => 2,
        });
        found.dedup();
        (!found.is_empty()).then(|| (found, username.clone(), credential.clone()))
    })
}

/// A TURN server's host, port and transport.
type TurnUrl = (String, u16, Transport);

/// `turn:host[:port][?transport=udp|tcp]` or `turns:host[:port][?transport=tcp]`.
fn parse_turn_url(url: &str) -> Option<TurnUrl> {
    let (rest, tls) = match url.strip_prefix("turns:") {
        Some(rest) => (rest, true),
        None => (url.strip_prefix("turn:")?, false),
    };
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    let transport = match (tls, query.to_ascii_lowercase().as_str()) {
        (false, "" | "transport=udp") => Transport::Udp,
        (false, "transport=tcp") => Transport::Tcp,
        (true, "" | "transport=tcp") => Transport::Tls,
        _ => return None,
    };
    let default_port = if tls { 5349 } else { 3478 };
    let (host, port) = match hostport.rsplit_once(':') {
        // An IPv6 literal without a port ("[2001:db8::1]") has colons but ends with ']'.
        Some((host, port)) if !hostport.ends_with(']') => (host, port.parse().ok()?),
        _ => (hostport, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port, transport))
}

/// How long credentials from `provider` may be used for a relay before new ones are fetched:
/// three quarters of their lifetime (static ones never expire).
fn renew_after(provider: &Provider) -> Option<Duration> {
    match provider {
        Provider::Coturn { ttl, .. } | Provider::Cloudflare { ttl, .. } => Some(*ttl * 3 / 4),
        Provider::Static { .. } | Provider::None => None,
    }
}

/// Keeps `settings` filled with a UDP TURN server and credentials from `service`, for as long
/// as the driver listens.
pub async fn feed(
    service: TurnService,
    extra_roots: Vec<Vec<u8>>,
    settings: watch::Sender<Option<RelaySettings>>,
) {
    let renew = renew_after(&service.config().provider);
    loop {
        let next = match service.ice_servers().await {
            Ok(servers) => match turn_servers(&servers) {
                Some((urls, username, password)) => {
                    let mut resolved = Vec::new();
                    for (host, port, transport) in urls {
                        match tokio::net::lookup_host((host.as_str(), port)).await {
                            Ok(mut addrs) => match addrs.next() {
                                Some(addr) => resolved.push(RelayServer {
                                    addr,
                                    transport,
                                    name: host.clone(),
                                }),
                                None => warn!(%host, "TURN server name resolves to nothing"),
                            },
                            Err(e) => warn!(%host, error = %e, "cannot resolve the TURN server"),
                        }
                    }
                    (!resolved.is_empty()).then(|| RelaySettings {
                        servers: resolved,
                        username,
                        password,
                        extra_roots: extra_roots.clone(),
                    })
                }
                None => {
                    warn!("the TURN provider gave no turn: URL with credentials");
                    None
                }
            },
            Err(e) => {
                warn!(error = %e, "no TURN credentials for r58's own relay yet");
                None
            }
        };
        let retry = next.is_none();
        if let Some(next) = next {
            let changed = settings
                .borrow()
                .as_ref()
                .is_none_or(|current| *current != next);
            if changed {
                let servers: Vec<String> = next
                    .servers
                    .iter()
                    .map(|s| format!("{}/{}", s.addr, s.transport.name()))
                    .collect();
                info!(?servers, "TURN: r58's relay settings");
                if settings.send(Some(next)).is_err() {
                    return;
                }
            }
        }
        let wait = if retry {
            Duration::from_secs(30)
        } else {
            match renew {
                Some(renew) => renew.max(Duration::from_secs(60)),
                None => Duration::from_secs(3600),
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = settings.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(urls: &[&str], creds: bool) -> IceServer {
        IceServer {
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            username: creds.then(|| "1700000000:r58".to_owned()),
            credential: creds.then(|| "c2VjcmV0".to_owned()),
        }
    }

    #[test]
    fn turn_urls_udp_first_then_tcp_then_tls() {
        let servers = [
            server(&["stun:stun.example.org:3478"], false),
            server(
                &[
                    "turns:turn.example.org:443?transport=tcp",
                    "turn:turn.example.org:3479?transport=tcp",
                    "turn:turn.example.org:3479?transport=udp",
                    "stun:turn.example.org",
                ],
                true,
            ),
        ];
        let (urls, user, password) = turn_servers(&servers).expect("servers");
        assert_eq!(
            urls,
            vec![
                ("turn.example.org".into(), 3479, Transport::Udp),
                ("turn.example.org".into(), 3479, Transport::Tcp),
                ("turn.example.org".into(), 443, Transport::Tls),
            ]
        );
        assert_eq!(
            (user.as_str(), password.as_str()),
            ("1700000000:r58", "c2VjcmV0")
        );
        assert_eq!(
            parse_turn_url("turn:[2001:db8::1]"),
            Some(("2001:db8::1".into(), 3478, Transport::Udp))
        );
        assert_eq!(
            parse_turn_url("turns:[2001:db8::1]:443"),
            Some(("2001:db8::1".into(), 443, Transport::Tls))
        );
        assert_eq!(parse_turn_url("turn:t.example?transport=sctp"), None);
        assert_eq!(
            turn_servers(&[server(&["turn:t.example:3478"], false)]),
            None
        );
    }

    #[test]
    fn auto_allocates_only_behind_nat() {
        let coturn = Provider::Coturn {
            urls: vec![],
            secret: sfu::turn::Secret::new("s"),
            user: "r58".into(),
            ttl: Duration::from_secs(86_400),
        };
        let private: Vec<SocketAddr> = vec!["192.168.1.58:8189".parse().unwrap()];
        let public: Vec<SocketAddr> = vec![
            "192.168.1.58:8189".parse().unwrap(),
            "198.51.100.20:8189".parse().unwrap(),
        ];
        assert!(wanted(ServerRelay::Auto, &coturn, &private));
        assert!(!wanted(ServerRelay::Auto, &coturn, &public));
        assert!(wanted(ServerRelay::Always, &coturn, &public));
        assert!(!wanted(ServerRelay::Never, &coturn, &private));
        assert!(!wanted(ServerRelay::Always, &Provider::None, &private));
        assert!(!is_public("100.64.1.1".parse().unwrap()), "CGNAT space");
        assert!(is_public("2001:db8::1".parse().unwrap()));
        assert!(!is_public("fd58::1".parse().unwrap()));
    }
}
