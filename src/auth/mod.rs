//! Who is signed in: users and their password hashes ([`users`]), sessions ([`sessions`]),
//! the session cookie ([`cookie`]) and the sign-in rate limits ([`limiter`]), held together by
//! [`Gatekeeper`], which the HTTP layer asks. No HTTP types here: the HTTP layer hands in
//! header values, the client's address and the time.
//!
//! Nothing secret is logged: sign-ins and refusals are logged with the user name and client
//! address only; passwords, session ids and CSRF tokens never (their `Debug` is redacted).

pub mod cli;
pub mod cookie;
pub mod fuzzing;
pub mod grants;
pub mod invites;
pub mod limiter;
pub mod sessions;
pub mod users;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::{AccessConfig, SecureCookies};
use sessions::{Session, SessionId, Sessions};
use users::{Role, UserStore};

/// Why a sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("wrong user name or password")]
    Wrong,
    #[error("too many sign-in attempts; try again in {} s", .0.as_secs().max(1))]
    TooMany(Duration),
}

/// A signed-in request's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub id: SessionId,
    pub session: Session,
}

/// The access policy and the signed-in state the HTTP gate consults.
#[derive(Debug)]
pub struct Gatekeeper {
    pub config: AccessConfig,
    /// Whether the server itself speaks HTTPS.
    pub https: bool,
    users: UserStore,
    sessions: Mutex<Sessions>,
    limiter: Mutex<limiter::LoginLimiter>,
    invites: Mutex<invites::Invites>,
    /// Signed LL-HLS path prefixes for remote viewers (docs/security.md).
    pub grants: grants::HlsGrants,
}

impl Default for Gatekeeper {
    fn default() -> Self {
        Self::new(AccessConfig::default(), false)
    }
}

impl Gatekeeper {
    /// The gatekeeper of `config`, its users read from `config.users_file`.
    pub fn new(config: AccessConfig, https: bool) -> Self {
        let users = UserStore::new(config.users_file.clone());
        Self::with_users(config, https, users)
    }

    pub fn with_users(config: AccessConfig, https: bool, users: UserStore) -> Self {
        Self {
            sessions: Mutex::new(Sessions::new(config.session_lifetime)),
            https,
            users,
            limiter: Mutex::new(limiter::LoginLimiter::default()),
            invites: Mutex::new(invites::Invites::default()),
            grants: grants::HlsGrants::new(
                {
                    let mut key = [0u8; 32];
                    rand::RngExt::fill(&mut rand::rng(), &mut key);
                    key
                },
                config.hls_grant_window.as_secs(),
            ),
            config,
        }
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a session cookie set now carries `Secure` (`proxied`: the request came
    /// through a proxy or tunnel, which serve HTTPS to the browser).
    pub fn secure_cookie(&self, proxied: bool) -> bool {
        self.config.secure_cookies == SecureCookies::Always || self.https || proxied
    }

    /// Signs `user` in from `ip` with `password`: a new session (never one the client named).
    pub fn login(
        &self,
        now: Instant,
        ip: IpAddr,
        user: &str,
        password: &str,
    ) -> Result<SignedIn, LoginError> {
        // Bounded so a name cannot grow the limiter's memory without end.
        let user: String = user.chars().take(64).collect();
        self.limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .attempt(now, ip, &user)
            .map_err(LoginError::TooMany)?;
        let users = self.users.users(now);
        let Some(found) = users.check(&user, password) else {
            self.limiter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .failed(now, &user);
            tracing::warn!(user = %user.escape_debug(), client = %ip, "sign-in refused");
            return Err(LoginError::Wrong);
        };
        self.limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .succeeded(&user);
        let mut random = [0u8; 64];
        rand::RngExt::fill(&mut rand::rng(), &mut random);
        let (id, session) = {
            let mut sessions = self.sessions();
            let (id, session) = sessions.create(now, random, &found.name, found.role);
            (id, session.clone())
        };
        tracing::info!(user = %found.name, role = found.role.as_str(), client = %ip, "signed in");
        Ok(SignedIn { id, session })
    }

    /// The live session among the cookie values, if any. A session whose user was removed or
    /// changed role since is ended here.
    pub fn signed_in<'a>(
        &self,
        now: Instant,
        cookies: impl IntoIterator<Item = &'a str>,
    ) -> Option<SignedIn> {
        let ids = cookie::session_ids(cookies);
        if ids.is_empty() {
            return None;
        }
        let users = self.users.users(now);
        let mut sessions = self.sessions();
        for id in ids {
            let Some(session) = sessions.get(now, &id).cloned() else {
                continue;
            };
            let role = users.get(&session.user).map(|u| u.role);
            if role != Some(session.role) {
                sessions.retain_user(&session.user, role);
                continue;
            }
            return Some(SignedIn { id, session });
        }
        None
    }

    /// The guest invites.
    pub fn invites(&self) -> MutexGuard<'_, invites::Invites> {
        self.invites.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends session `id` (sign-out).
    pub fn logout(&self, id: &SessionId) {
        self.sessions().remove(id);
    }

    /// The number of live sessions (metrics).
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// Whether anyone can sign in (a users file is configured).
    pub fn has_users(&self, now: Instant) -> bool {
        !self.users.users(now).users.is_empty()
    }
}

/// The sign-in body `{"user": "...", "password": "..."}` (no other keys), or `None`: a
/// non-empty user name and a password of at most 1024 bytes.
pub fn parse_credentials(body: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Credentials {
        user: String,
        password: String,
    }
    serde_json::from_slice::<Credentials>(body)
        .ok()
        .filter(|c| !c.user.is_empty() && c.password.len() <= 1024)
        .map(|c| (c.user, c.password))
}

/// Constant-time comparison of a presented CSRF token with the session's.
pub fn csrf_ok(session: &Session, presented: Option<&str>) -> bool {
    let presented = presented.unwrap_or("");
    presented.len() == session.csrf.len()
        && presented
            .bytes()
            .zip(session.csrf.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A shared gatekeeper.
pub type SharedGatekeeper = Arc<Gatekeeper>;

/// Whether `role` may do what needs `need`.
pub fn allows(role: Role, need: Role) -> bool {
    role >= need
}

#[cfg(test)]
mod tests {
    use super::*;
    use users::Users;

    fn keeper() -> Gatekeeper {
        let mut users = Users::default();
        users.add("ana", Role::Operator, "correct horse").unwrap();
        Gatekeeper::with_users(AccessConfig::default(), false, UserStore::fixed(users))
    }

    #[test]
    fn login_makes_a_fresh_session_and_logout_ends_it() {
        let k = keeper();
        let now = Instant::now();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(k.login(now, ip, "ana", "nope nope"), Err(LoginError::Wrong));
        let a = k.login(now, ip, "ana", "correct horse").unwrap();
        let b = k.login(now, ip, "ana", "correct horse").unwrap();
        assert_ne!(a.id, b.id);
        let cookie = format!("r58_session={}", a.id.to_hex());
        assert_eq!(
            k.signed_in(now, [cookie.as_str()]).map(|s| s.session.role),
            Some(Role::Operator)
        );
        assert!(csrf_ok(&a.session, Some(&a.session.csrf)));
        assert!(!csrf_ok(&a.session, Some(&b.session.csrf)));
        assert!(!csrf_ok(&a.session, None));
        k.logout(&a.id);
        assert!(k.signed_in(now, [cookie.as_str()]).is_none());
        assert_eq!(k.session_count(), 1);
    }
}
