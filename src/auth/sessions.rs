//! Signed-in sessions, sans-IO: the time comes in as `now`, the randomness as bytes.
//!
//! A session is known by a 256-bit random id (the `r58_session` cookie's value, 64 lowercase
//! hex digits) and carries its own CSRF token, which pages send back in the `X-CSRF-Token`
//! header on every request that changes something. Ids come only from [`Sessions::create`]:
//! an id a client makes up is no session (no fixation), and signing in always makes a new one.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use super::users::Role;

/// The most sessions kept at once; creating one more drops the one closest to expiring.
pub const MAX_SESSIONS: usize = 10_000;

/// A session id: 32 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; 32]);

impl SessionId {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The id in a cookie value: exactly 64 lowercase hex digits, or nothing.
    pub fn parse(text: &str) -> Option<SessionId> {
        parse_hex32(text).map(SessionId)
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

/// Never printed: a session id in a log is a stolen session.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// 64 lowercase hex digits to 32 bytes.
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// One signed-in session.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// The token state-changing requests must echo (64 hex digits).
    pub csrf: String,
    pub expires: Instant,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("role", &self.role)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Every live session.
#[derive(Debug)]
pub struct Sessions {
    lifetime: Duration,
    by_id: HashMap<SessionId, Session>,
}

impl Sessions {
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            by_id: HashMap::new(),
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A new session for `user` from 64 random bytes (the id's, then the CSRF token's).
    pub fn create(
        &mut self,
        now: Instant,
        random: [u8; 64],
        user: &str,
        role: Role,
    ) -> (SessionId, &Session) {
        self.expire(now);
        if self.by_id.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .by_id
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| *id)
        {
            self.by_id.remove(&oldest);
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&random[..32]);
        let id = SessionId(id);
        let session = Session {
            user: user.to_owned(),
            role,
            csrf: hex(&random[32..]),
            expires: now + self.lifetime,
        };
        self.by_id.insert(id, session);
        (id, &self.by_id[&id])
    }

    /// The live session `id`, if any (an expired one is forgotten).
    pub fn get(&mut self, now: Instant, id: &SessionId) -> Option<&Session> {
        if self.by_id.get(id).is_some_and(|s| s.expires <= now) {
            self.by_id.remove(id);
        }
        self.by_id.get(id)
    }

    /// Ends session `id` (sign-out); whether it existed.
    pub fn remove(&mut self, id: &SessionId) -> bool {
        self.by_id.remove(id).is_some()
    }

    /// Ends every session of `user` whose role is not `role` any more (`None`: the user is
    /// gone); how many ended.
    pub fn retain_user(&mut self, user: &str, role: Option<Role>) -> usize {
        let before = self.by_id.len();
        self.by_id
            .retain(|_, s| s.user != user || Some(s.role) == role);
        before - self.by_id.len()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        self.by_id.retain(|_, s| s.expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> [u8; 64] {
        std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
    }

    #[test]
    fn ids_parse_only_as_issued() {
        let id = SessionId([0xab; 32]);
        assert_eq!(SessionId::parse(&id.to_hex()), Some(id));
        assert_eq!(SessionId::parse(&"AB".repeat(32)), None);
        assert_eq!(SessionId::parse(&"ab".repeat(31)), None);
        assert_eq!(SessionId::parse(&format!("{}g", "a".repeat(63))), None);
        assert_eq!(SessionId::parse(""), None);
        assert!(!format!("{id:?}").contains("ab"));
    }

    #[test]
    fn sessions_expire_and_end() {
        let t0 = Instant::now();
        let mut sessions = Sessions::new(Duration::from_secs(60));
        let (a, session) = sessions.create(t0, random(1), "ana", Role::Operator);
        assert_eq!(session.csrf.len(), 64);
        assert_ne!(session.csrf, a.to_hex());
        let (b, _) = sessions.create(t0, random(2), "bo", Role::Viewer);
        assert_eq!(sessions.get(t0, &a).map(|s| s.role), Some(Role::Operator));
        // A made-up id is no session.
        assert!(sessions.get(t0, &SessionId([7; 32])).is_none());
        assert!(sessions.get(t0 + Duration::from_secs(59), &a).is_some());
        assert!(sessions.get(t0 + Duration::from_secs(60), &a).is_none());
        assert!(sessions.remove(&b));
        assert!(!sessions.remove(&b));
        assert!(sessions.is_empty());
        // A user whose role changed or who was removed loses their sessions.
        sessions.create(t0, random(3), "ana", Role::Operator);
        sessions.create(t0, random(4), "bo", Role::Viewer);
        assert_eq!(sessions.retain_user("ana", Some(Role::Operator)), 0);
        assert_eq!(sessions.retain_user("ana", Some(Role::Viewer)), 1);
        assert_eq!(sessions.retain_user("bo", None), 1);
    }
}
