//! Optional bearer tokens per path pattern.

use axum::http::{HeaderMap, header};

use crate::config::AuthRule;

/// Whether `headers` satisfy the token that `path` requires (if any rule covers it).
pub fn authorized(rules: &[AuthRule], path: &str, headers: &HeaderMap) -> bool {
    let Some(rule) = rules.iter().find(|r| crate::config::matches(&r.path, path)) else {
        return true;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // RFC 9110: the scheme name is case-insensitive.
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    constant_time_eq(presented.as_bytes(), rule.token.as_bytes())
}

/// Compares without an early exit on the first differing byte, so response timing does not
/// reveal how much of a guessed token was right.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
