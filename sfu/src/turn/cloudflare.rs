//! Cloudflare Realtime TURN: `POST {api_base}/v1/turn/keys/{key_id}/credentials/generate-ice-servers`
//! with `Authorization: Bearer <API token>` and `{"ttl": <seconds>}`; the answer is
//! `{"iceServers": [{"urls": [...]}, {"urls": [...], "username": "...", "credential": "..."}]}`,
//! ready for `RTCPeerConnection`.
//!
//! The request and the answer are pure functions here (tested and fuzzed without a network);
//! [`fetch`] is the one async call.

use std::time::Duration;

use serde::Deserialize;

use super::{IceServer, ProviderError, Secret};

/// Largest answer accepted; the documented one is well under 2 KiB.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The request path, relative to `api_base`.
pub fn request_path(key_id: &str) -> String {
    format!("/v1/turn/keys/{key_id}/credentials/generate-ice-servers")
}

/// The JSON request body.
pub fn request_body(ttl: Duration) -> String {
    format!("{{\"ttl\":{}}}", ttl.as_secs())
}

/// Maps the HTTP status: the API answers 201 Created (200 is accepted too).
pub fn check_status(status: u16) -> Result<(), ProviderError> {
    match status {
        200 | 201 => Ok(()),
        401 | 403 => Err(ProviderError::Unauthorized(status)),
        other => Err(ProviderError::Status(other)),
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "iceServers")]
    ice_servers: OneOrMany<RawServer>,
}

/// The older `.../credentials/generate` endpoint answered one object instead of a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

#[derive(Deserialize)]
struct RawServer {
    urls: OneOrMany<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    credential: Option<String>,
}

fn malformed(what: impl Into<String>) -> ProviderError {
    ProviderError::Malformed(what.into())
}

/// Whether `url` is a STUN or TURN URI (RFC 7064 / 7065) that is safe to put into a `Link`
/// header and a JSON answer: a known scheme, visible ASCII, no `<`, `>`, `"` or `\`.
pub fn is_ice_url(url: &str) -> bool {
    let scheme_ok = ["stun:", "stuns:", "turn:", "turns:"].iter().any(|s| {
        url.len() > s.len()
            && url
                .get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
    });
    scheme_ok
        && url
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'))
}

fn is_turn_url(url: &str) -> bool {
    let lower = url.get(..6).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("turn:") || lower.starts_with("turns:")
}

/// Parses the API's answer into ICE servers. Checks every URL, that TURN entries carry a
/// username and credential of printable ASCII, and that there is at least one TURN entry.
/// Error texts never quote the body (it holds credentials).
pub fn parse_response(body: &[u8]) -> Result<Vec<IceServer>, ProviderError> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        // Only the category and position: serde's messages can quote values.
        malformed(format!(
            "{} at line {} column {}",
            match e.classify() {
                serde_json::error::Category::Data => "unexpected JSON shape",
                serde_json::error::Category::Eof => "truncated JSON",
                _ => "not JSON",
            },
            e.line(),
            e.column()
        ))
    })?;
    let raw = match answer.ice_servers {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    };
    let mut out = Vec::with_capacity(raw.len());
    let mut turn_entries = 0;
    for (i, server) in raw.into_iter().enumerate() {
        let urls = match server.urls {
            OneOrMany::One(u) => vec![u],
            OneOrMany::Many(v) => v,
        };
        if urls.is_empty() {
            return Err(malformed(format!("iceServers[{i}] has no urls")));
        }
        if let Some(bad) = urls.iter().position(|u| !is_ice_url(u)) {
            return Err(malformed(format!(
                "iceServers[{i}].urls[{bad}] is not a stun:/turn: URL"
            )));
        }
        let printable = |v: &Option<String>| {
            v.as_deref()
                .is_none_or(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()))
        };
        if !printable(&server.username) || !printable(&server.credential) {
            return Err(malformed(format!(
                "iceServers[{i}] has an empty or non-printable username or credential"
            )));
        }
        if urls.iter().any(|u| is_turn_url(u)) {
            if server.username.is_none() || server.credential.is_none() {
                return Err(malformed(format!(
                    "iceServers[{i}] has TURN URLs without a username and credential"
                )));
            }
            turn_entries += 1;
        }
        out.push(IceServer {
            urls,
            username: server.username,
            credential: server.credential,
        });
    }
    if turn_entries == 0 {
        return Err(malformed("no TURN server in the answer"));
    }
    Ok(out)
}

/// Asks the API for credentials valid for `ttl`.
pub async fn fetch(
    api_base: &str,
    key_id: &str,
    api_token: &Secret,
    ttl: Duration,
    timeout: Duration,
) -> Result<Vec<IceServer>, ProviderError> {
    let url = format!("{}{}", api_base.trim_end_matches('/'), request_path(key_id));
    let (status, body) = super::http_client::post_json(
        &url,
        api_token.expose(),
        request_body(ttl),
        timeout,
        MAX_ANSWER_BYTES,
    )
    .await?;
    check_status(status)?;
    parse_response(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer as Cloudflare documents it (generate-credentials page), values shortened.
    const DOCUMENTED: &str = r#"{
      "iceServers": [
        {"urls": ["stun:stun.cloudflare.com:3478", "stun:stun.cloudflare.com:53"]},
        {"urls": [
            "turn:turn.cloudflare.com:3478?transport=udp",
            "turn:turn.cloudflare.com:53?transport=udp",
            "turn:turn.cloudflare.com:3478?transport=tcp",
            "turn:turn.cloudflare.com:80?transport=tcp",
            "turns:turn.cloudflare.com:5349?transport=tcp",
            "turns:turn.cloudflare.com:443?transport=tcp"
          ],
          "username": "bc91b63e2b5d759f8eb9",
          "credential": "ebd71f1d3edbc2b0edae"}
      ]
    }"#;

    #[test]
    fn request_path_and_body() {
        assert_eq!(
            request_path("abc123"),
            "/v1/turn/keys/abc123/credentials/generate-ice-servers"
        );
        assert_eq!(
            request_body(Duration::from_secs(86_400)),
            r#"{"ttl":86400}"#
        );
    }

    #[test]
    fn documented_answer_is_mapped() {
        let servers = parse_response(DOCUMENTED.as_bytes()).expect("parses");
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls.len(), 2);
        assert!(servers[0].username.is_none());
        assert_eq!(servers[1].urls.len(), 6);
        assert_eq!(
            servers[1].urls[4],
            "turns:turn.cloudflare.com:5349?transport=tcp"
        );
        assert_eq!(servers[1].username.as_deref(), Some("bc91b63e2b5d759f8eb9"));
        assert_eq!(
            servers[1].credential.as_deref(),
            Some("ebd71f1d3edbc2b0edae")
        );
    }

    #[test]
    fn older_single_object_answer_is_mapped() {
        let body = r#"{"iceServers": {"urls": "turn:turn.example:3478", "username": "u",
                       "credential": "c"}}"#;
        let servers = parse_response(body.as_bytes()).expect("parses");
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].urls, vec!["turn:turn.example:3478"]);
    }

    #[test]
    fn malformed_answers_are_errors_without_the_body() {
        let cases: &[(&str, &str)] = &[
            ("", "truncated JSON"),
            ("<html>oops</html>", "not JSON"),
            (r#"{"iceServers": "#, "truncated JSON"),
            (r#"{"servers": []}"#, "unexpected JSON shape"),
            (r#"{"iceServers": [{"urls": 5}]}"#, "unexpected JSON shape"),
            (r#"{"iceServers": []}"#, "no TURN server"),
            (
                r#"{"iceServers": [{"urls": ["stun:a"]}]}"#,
                "no TURN server",
            ),
            (r#"{"iceServers": [{"urls": []}]}"#, "no urls"),
            (
                r#"{"iceServers": [{"urls": ["http://x"], "username": "secretuser", "credential": "secretpw"}]}"#,
                "not a stun:/turn: URL",
            ),
            (
                r#"{"iceServers": [{"urls": ["turn:a>b"], "username": "u", "credential": "c"}]}"#,
                "not a stun:/turn: URL",
            ),
            (
                r#"{"iceServers": [{"urls": ["turn:a"], "username": "secretuser"}]}"#,
                "without a username and credential",
            ),
            (
                r#"{"iceServers": [{"urls": ["turn:a"], "username": "u", "credential": "pw with space"}]}"#,
                "non-printable",
            ),
            (
                r#"{"iceServers": [{"urls": ["turn:a"], "username": "secretuser", "credential": 7}]}"#,
                "unexpected JSON shape",
            ),
        ];
        for (body, expected) in cases {
            let err = parse_response(body.as_bytes()).expect_err(body);
            let text = err.to_string();
            assert!(text.contains(expected), "{body}: {text}");
            assert!(!text.contains("secret"), "{body}: {text}");
        }
    }

    #[test]
    fn status_mapping() {
        assert_eq!(check_status(201), Ok(()));
        assert_eq!(check_status(200), Ok(()));
        assert_eq!(check_status(401), Err(ProviderError::Unauthorized(401)));
        assert_eq!(check_status(403), Err(ProviderError::Unauthorized(403)));
        assert_eq!(check_status(500), Err(ProviderError::Status(500)));
    }

    #[test]
    fn ice_url_check() {
        assert!(is_ice_url("stun:stun.l.google.com:19302"));
        assert!(is_ice_url("TURNS:x:443?transport=tcp"));
        assert!(!is_ice_url("turn:"));
        assert!(!is_ice_url("turn:a b"));
        assert!(!is_ice_url("turn:a\"b"));
        assert!(!is_ice_url("https://x"));
        assert!(!is_ice_url("tur"));
        // A multi-byte character where the scheme would end is refused, not a panic.
        assert!(!is_ice_url("stun\u{e9}x"));
    }
}
