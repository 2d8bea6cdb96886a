//! RTSP authentication (RFC 2326 section 14.3 by way of RFC 2617): Basic and Digest (MD5, with
//! or without `qop=auth`) against one secret, the stream's `[[auth]]` token. The user name is
//! not checked: an `[[auth]]` rule has a token, not users, so any name with the token as the
//! password is accepted, as a WHEP client's `Authorization: Bearer TOKEN` is.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest as _, Md5};

/// The realm r58 names in its challenges.
pub const REALM: &str = "r58";

/// Why a request's credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization header")]
    Missing,
    #[error("unsupported authorization scheme")]
    Scheme,
    #[error("malformed {0} credentials")]
    Malformed(&'static str),
    #[error("digest nonce is not this connection's")]
    StaleNonce,
    #[error("wrong password")]
    Wrong,
}

/// The `WWW-Authenticate` values of a 401, Digest first (clients take the first they support,
/// and Digest does not send the token in the clear).
pub fn challenges(nonce: &str) -> [String; 2] {
    [
        format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5"),
        format!("Basic realm=\"{REALM}\""),
    ]
}

/// Checks `header` (the Authorization value, if any) of a `method` request against `secret`;
/// `nonce` is the one this connection's challenges carried.
pub fn check(
    header: Option<&str>,
    method: &str,
    secret: &str,
    nonce: &str,
) -> Result<(), AuthError> {
    let header = header.ok_or(AuthError::Missing)?.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASE64
            .decode(rest.trim())
            .map_err(|_| AuthError::Malformed("Basic"))?;
        let text = String::from_utf8(decoded).map_err(|_| AuthError::Malformed("Basic"))?;
        let (_user, password) = text.split_once(':').ok_or(AuthError::Malformed("Basic"))?;
        return if constant_time_eq(password.as_bytes(), secret.as_bytes()) {
            Ok(())
        } else {
            Err(AuthError::Wrong)
        };
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(AuthError::Scheme);
    }
    let params = digest_params(rest).ok_or(AuthError::Malformed("Digest"))?;
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    };
    let (Some(username), Some(realm), Some(got_nonce), Some(uri), Some(response)) = (
        get("username"),
        get("realm"),
        get("nonce"),
        get("uri"),
        get("response"),
    ) else {
        return Err(AuthError::Malformed("Digest"));
    };
    if got_nonce != nonce {
        return Err(AuthError::StaleNonce);
    }
    let ha1 = md5_hex(&format!("{username}:{realm}:{secret}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let expected = match get("qop") {
        Some(qop) => {
            let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                return Err(AuthError::Malformed("Digest"));
            };
            md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
        }
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    };
    if constant_time_eq(
        expected.as_bytes(),
        response.to_ascii_lowercase().as_bytes(),
    ) {
        Ok(())
    } else {
        Err(AuthError::Wrong)
    }
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `key="quoted, value", key=token, ...` into pairs; `None` when it does not parse.
fn digest_params(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_owned();
        if key.is_empty() || key.contains([',', '"', ' ']) {
            return None;
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            value = quoted[..end].to_owned();
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        out.push((key, value));
        rest = rest.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        if out.len() > 32 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_takes_any_user_with_the_token() {
        let header = format!("Basic {}", BASE64.encode("anyone:s3cret"));
        assert_eq!(check(Some(&header), "DESCRIBE", "s3cret", "n"), Ok(()));
        let wrong = format!("Basic {}", BASE64.encode("anyone:nope"));
        assert_eq!(
            check(Some(&wrong), "DESCRIBE", "s3cret", "n"),
            Err(AuthError::Wrong)
        );
        assert_eq!(
            check(Some("Basic !!"), "DESCRIBE", "s3cret", "n"),
            Err(AuthError::Malformed("Basic"))
        );
        assert_eq!(check(None, "DESCRIBE", "x", "n"), Err(AuthError::Missing));
        assert_eq!(
            check(Some("Bearer x"), "DESCRIBE", "x", "n"),
            Err(AuthError::Scheme)
        );
    }

    #[test]
    fn digest_with_and_without_qop() {
        // RFC 2617 section 3.5's example, with our realm and its password as the token.
        let ha1 = md5_hex("Mufasa:r58:Circle Of Life");
        let ha2 = md5_hex("DESCRIBE:rtsp://h/cam0");
        let response = md5_hex(&format!("{ha1}:abc:{ha2}"));
        let header = format!(
            "Digest username=\"Mufasa\", realm=\"r58\", nonce=\"abc\", uri=\"rtsp://h/cam0\", response=\"{response}\""
        );
        assert_eq!(
            check(Some(&header), "DESCRIBE", "Circle Of Life", "abc"),
            Ok(())
        );
        assert_eq!(
            check(Some(&header), "DESCRIBE", "other", "abc"),
            Err(AuthError::Wrong)
        );
        assert_eq!(
            check(Some(&header), "DESCRIBE", "Circle Of Life", "fresh"),
            Err(AuthError::StaleNonce)
        );
        let qop = md5_hex(&format!("{ha1}:abc:00000001:xyz:auth:{ha2}"));
        let header = format!(
            "Digest username=\"Mufasa\", realm=\"r58\", nonce=\"abc\", uri=\"rtsp://h/cam0\", qop=auth, nc=00000001, cnonce=\"xyz\", response=\"{qop}\""
        );
        assert_eq!(
            check(Some(&header), "DESCRIBE", "Circle Of Life", "abc"),
            Ok(())
        );
        assert_eq!(
            check(Some("Digest username=\"a"), "DESCRIBE", "x", "abc"),
            Err(AuthError::Malformed("Digest"))
        );
    }
}
