//! The session cookie: finding it in `Cookie` headers and writing `Set-Cookie`.

use std::time::Duration;

use super::sessions::SessionId;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "r58_session";

/// Session ids in the `Cookie` header values given (RFC 6265 §5.4: `name=value` pairs
/// separated by `;`), in order, at most four: a browser may send a second cookie of the same
/// name set by a sibling site, and only the store knows which one is real. Values that are
/// not well-formed ids are skipped.
pub fn session_ids<'a>(headers: impl IntoIterator<Item = &'a str>) -> Vec<SessionId> {
    headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name.trim() == SESSION_COOKIE).then(|| value.trim().trim_matches('"'))
        })
        .filter_map(SessionId::parse)
        .take(4)
        .collect()
}

/// `Set-Cookie` for a new session: the browser sends it back only to this site (`SameSite=Strict`,
/// no `Domain`), never to scripts (`HttpOnly`), and only over HTTPS when `secure`.
pub fn set_session(id: &SessionId, lifetime: Duration, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        id.to_hex(),
        lifetime.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that makes the browser forget the session.
pub fn clear_session(secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_well_formed_ids_only() {
        let id = SessionId::from_bytes([0x5a; 32]);
        let hex = id.to_hex();
        let header = format!("theme=dark; {SESSION_COOKIE}={hex}; other=1");
        assert_eq!(session_ids([header.as_str()]), vec![id]);
        assert_eq!(
            session_ids(["r58_session=short", "r58_session"]),
            Vec::<SessionId>::new()
        );
        let two = format!(
            "{SESSION_COOKIE}={}; {SESSION_COOKIE}={hex}",
            "0".repeat(64)
        );
        assert_eq!(session_ids([two.as_str()]).len(), 2);
        let set = set_session(&id, Duration::from_secs(3600), true);
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Max-Age=3600",
            "Path=/",
        ] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set_session(&id, Duration::from_secs(1), false).contains("Secure"));
        assert!(clear_session(false).contains("Max-Age=0"));
    }
}
