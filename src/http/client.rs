//! Who is asking: the client's address (through trusted proxies), whether a request came
//! through a proxy or tunnel, whether an address is on this box or the LAN, and the bearer
//! token it presented, and whether that satisfies the `[[auth]]` rule of a path. Used by the access rules, the per-client limits and the TURN endpoint.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, header};

use crate::config::AuthRule;

/// The TCP peer of a request the listener accepted; `None` for in-process requests (tests'
/// `oneshot`), which were not accepted from a socket.
pub fn peer(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let Some(peer) = peer else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    forwarded
        .iter()
        .rev()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

/// Whether the request went through a proxy or tunnel (which may connect from loopback).
pub fn proxied(headers: &HeaderMap) -> bool {
    [
        "forwarded",
        "x-forwarded-for",
        "x-real-ip",
        "cf-connecting-ip",
    ]
    .iter()
    .any(|h| headers.contains_key(*h))
}

/// Loopback, RFC 1918, link-local or IPv6 ULA (IPv4-mapped addresses as their IPv4).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_private() || a.is_link_local(),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => {
                a.is_loopback()
                    || (a.segments()[0] & 0xfe00) == 0xfc00
                    || (a.segments()[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(a) => a
            .to_ipv4_mapped()
            .map_or(a.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(a) => a.is_loopback(),
    }
}

/// The bearer token presented in `Authorization` (RFC 9110: the scheme is case-insensitive).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Whether `headers` satisfy the token of the `[[auth]]` rule covering `path` (the first that
/// matches), or no rule covers it.
pub fn path_token_ok(rules: &[AuthRule], path: &str, headers: &HeaderMap) -> bool {
    let Some(rule) = rules.iter().find(|r| crate::config::matches(&r.path, path)) else {
        return true;
    };
    let presented = bearer(headers).unwrap_or("");
    constant_time_eq(presented.as_bytes(), rule.token.as_bytes())
}

/// Compares without an early exit on the first differing byte, so response timing does not
/// reveal how much of a guessed token was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Headers from name/value pairs, for tests.
#[cfg(test)]
pub(crate) fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            axum::http::HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        header_map(pairs)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn compares_tokens() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(
            bearer(&headers(&[("authorization", "bEaReR  t0k ")])),
            Some("t0k")
        );
        assert_eq!(
            bearer(&headers(&[("authorization", "Basic dXNlcg==")])),
            None
        );
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn private_and_loopback_addresses() {
        for private in [
            "127.0.0.1",
            "192.168.1.20",
            "10.1.2.3",
            "fd00::5",
            "::ffff:10.0.0.2",
        ] {
            assert!(is_private(ip(private)), "{private}");
        }
        assert!(!is_private(ip("203.0.113.7")));
        assert!(is_loopback(ip("::ffff:127.0.0.1")));
        assert!(!is_loopback(ip("192.168.1.20")));
    }

    #[test]
    fn client_ip_believes_forwarded_for_only_from_trusted_proxies() {
        let trusted = vec![ip("127.0.0.1")];
        let xff = headers(&[("x-forwarded-for", "203.0.113.9, 198.51.100.2, 127.0.0.1")]);
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &xff, &trusted),
            ip("198.51.100.2")
        );
        assert_eq!(
            client_ip(Some(ip("192.0.2.5")), &xff, &trusted),
            ip("192.0.2.5")
        );
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
        let junk = headers(&[("x-forwarded-for", "not-an-ip, ")]);
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &junk, &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_ip(None, &xff, &trusted),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn path_rules_first_match_applies() {
        let rules = vec![
            AuthRule {
                path: "/whip/cam0".into(),
                token: "a".into(),
            },
            AuthRule {
                path: "/whip/*".into(),
                token: "b".into(),
            },
        ];
        let with = |t: &'static str| headers(&[("authorization", t)]);
        assert!(path_token_ok(&rules, "/whip/cam0", &with("Bearer a")));
        assert!(!path_token_ok(&rules, "/whip/cam0", &with("Bearer b")));
        assert!(path_token_ok(&rules, "/whip/guest", &with("Bearer b")));
        assert!(!path_token_ok(&rules, "/whip/guest", &HeaderMap::new()));
        assert!(path_token_ok(&rules, "/whep/guest", &HeaderMap::new()));
    }
}
