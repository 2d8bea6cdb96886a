//! Guest invites, sans-IO (the time comes in as `now`, the randomness as bytes): an operator
//! makes one for a guest name with an expiry, single-use or reusable; the link
//! (`/guest_join?invite=<64 hex digits>`) lets its holder publish under that name only, from
//! anywhere. Revoking one ends the guest's sessions at once (the HTTP layer deletes the
//! sessions [`Invites::revoke`] hands back). Every creation, use, refusal and revocation is
//! kept in an audit trail (and logged, without the secret).
//!
//! An invite is known publicly by a short id (listing, revoking) and privately by its token
//! (the link); only the token admits.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::sessions::{hex, parse_hex32};
use super::users::valid_name;

/// Audit entries kept (the oldest are dropped beyond it).
pub const AUDIT_LEN: usize = 1000;
/// Invites kept at once, live or not (the oldest ended ones go first).
pub const MAX_INVITES: usize = 1000;
/// The longest an invite may last.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why an invite does not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteRefusal {
    #[error("this invite link is not valid")]
    Unknown,
    #[error("this invite link has expired")]
    Expired,
    #[error("this invite link was revoked")]
    Revoked,
    #[error("this invite link has been used already")]
    UsedUp,
    #[error("this invite is for another name")]
    WrongName,
}

/// Why an invite could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("'{0}' is not a stream name: 1 to 64 letters, digits, '.', '_' or '-'")]
    BadName(String),
    #[error("an invite lasts between a second and 30 days")]
    BadLifetime,
}

/// One invite. The token is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: String,
    token: [u8; 32],
    pub name: String,
    pub reusable: bool,
    pub created_by: String,
    pub created_at: SystemTime,
    pub expires: SystemTime,
    pub uses: u32,
    pub revoked: bool,
    /// The WHIP session resources opened with it that may still be live.
    pub sessions: Vec<String>,
}

impl fmt::Debug for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invite")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("reusable", &self.reusable)
            .field("uses", &self.uses)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

impl Invite {
    /// The token for the link (64 hex digits).
    pub fn token_hex(&self) -> String {
        hex(&self.token)
    }

    fn refusal(&self, now: SystemTime) -> Option<InviteRefusal> {
        if self.revoked {
            Some(InviteRefusal::Revoked)
        } else if now >= self.expires {
            Some(InviteRefusal::Expired)
        } else if !self.reusable && self.uses > 0 {
            Some(InviteRefusal::UsedUp)
        } else {
            None
        }
    }
}

/// An invite as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InviteSummary {
    pub id: String,
    pub name: String,
    pub reusable: bool,
    pub created_by: String,
    pub created_at: u64,
    pub expires: u64,
    pub uses: u32,
    /// "live", "expired", "revoked" or "used".
    pub state: &'static str,
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: u64,
    /// "created", "used", "refused", "revoked".
    pub what: &'static str,
    pub invite: String,
    pub name: String,
    /// The operator (created, revoked) or the client address (used, refused).
    pub who: String,
    pub detail: String,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Every invite and the audit trail.
#[derive(Debug, Default)]
pub struct Invites {
    invites: Vec<Invite>,
    audit: VecDeque<AuditEntry>,
}

impl Invites {
    /// A new invite for `name`, lasting `lifetime`, made by `by`, from 40 random bytes (the
    /// token's 32, then the id's 8).
    pub fn create(
        &mut self,
        now: SystemTime,
        random: [u8; 40],
        name: &str,
        lifetime: Duration,
        reusable: bool,
        by: &str,
    ) -> Result<&Invite, InviteError> {
        if !valid_name(name) {
            return Err(InviteError::BadName(name.to_owned()));
        }
        if !(Duration::from_secs(1)..=MAX_LIFETIME).contains(&lifetime) {
            return Err(InviteError::BadLifetime);
        }
        if self.invites.len() >= MAX_INVITES {
            // The oldest that no longer admits, else the oldest.
            let drop = self
                .invites
                .iter()
                .position(|i| i.refusal(now).is_some())
                .unwrap_or(0);
            self.invites.remove(drop);
        }
        let mut token = [0u8; 32];
        token.copy_from_slice(&random[..32]);
        let invite = Invite {
            id: hex(&random[32..]),
            token,
            name: name.to_owned(),
            reusable,
            created_by: by.to_owned(),
            created_at: now,
            expires: now + lifetime,
            uses: 0,
            revoked: false,
            sessions: Vec::new(),
        };
        let detail = format!(
            "{}, for {} min",
            if reusable { "reusable" } else { "single-use" },
            lifetime.as_secs() / 60
        );
        self.record(now, "created", &invite.id, name, by, detail);
        self.invites.push(invite);
        Ok(self.invites.last().expect("just pushed"))
    }

    fn find(&self, token_hex: &str) -> Option<&Invite> {
        let token = parse_hex32(token_hex)?;
        // Constant time over the token, so a guess learns nothing from timing.
        self.invites.iter().find(|i| {
            i.token
                .iter()
                .zip(token.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        })
    }

    /// Whether `token_hex` is the token of an invite, admitting or not.
    pub fn knows(&self, token_hex: &str) -> bool {
        self.find(token_hex).is_some()
    }

    /// The invite `token_hex` stands for, if it admits now (for any name).
    pub fn check(&self, now: SystemTime, token_hex: &str) -> Result<&Invite, InviteRefusal> {
        let invite = self.find(token_hex).ok_or(InviteRefusal::Unknown)?;
        match invite.refusal(now) {
            Some(refusal) => Err(refusal),
            None => Ok(invite),
        }
    }

    /// Whether `token_hex` admits publishing as `name` now; refusals are audited with
    /// `client`.
    pub fn admits(
        &mut self,
        now: SystemTime,
        token_hex: &str,
        name: &str,
        client: &str,
    ) -> Result<String, InviteRefusal> {
        let outcome = self.check(now, token_hex).and_then(|invite| {
            if invite.name == name {
                Ok(invite.id.clone())
            } else {
                Err(InviteRefusal::WrongName)
            }
        });
        if let Err(refusal) = outcome
            && let Some(invite) = self.find(token_hex)
        {
            let (id, invited) = (invite.id.clone(), invite.name.clone());
            self.record(
                now,
                "refused",
                &id,
                &invited,
                client,
                format!("{refusal} (asked to publish '{name}')"),
            );
        }
        outcome
    }

    /// Invite `id` opened WHIP session resource `resource` for `client`: counts a use.
    pub fn used(&mut self, now: SystemTime, id: &str, resource: &str, client: &str) {
        let Some(invite) = self.invites.iter_mut().find(|i| i.id == id) else {
            return;
        };
        invite.uses += 1;
        invite.sessions.push(resource.to_owned());
        let (id, name, uses) = (invite.id.clone(), invite.name.clone(), invite.uses);
        self.record(now, "used", &id, &name, client, format!("use {uses}"));
    }

    /// Revokes invite `id`; the session resources it opened (to end now), or `None` when there
    /// is no such invite.
    pub fn revoke(&mut self, now: SystemTime, id: &str, by: &str) -> Option<Vec<String>> {
        let invite = self.invites.iter_mut().find(|i| i.id == id)?;
        invite.revoked = true;
        let sessions = std::mem::take(&mut invite.sessions);
        let (id, name) = (invite.id.clone(), invite.name.clone());
        let detail = format!("{} session(s) ended", sessions.len());
        self.record(now, "revoked", &id, &name, by, detail);
        Some(sessions)
    }

    pub fn list(&self, now: SystemTime) -> Vec<InviteSummary> {
        self.invites
            .iter()
            .map(|i| InviteSummary {
                id: i.id.clone(),
                name: i.name.clone(),
                reusable: i.reusable,
                created_by: i.created_by.clone(),
                created_at: unix(i.created_at),
                expires: unix(i.expires),
                uses: i.uses,
                state: match i.refusal(now) {
                    None => "live",
                    Some(InviteRefusal::Expired) => "expired",
                    Some(InviteRefusal::Revoked) => "revoked",
                    Some(_) => "used",
                },
            })
            .collect()
    }

    pub fn audit(&self) -> impl Iterator<Item = &AuditEntry> {
        self.audit.iter()
    }

    fn record(
        &mut self,
        now: SystemTime,
        what: &'static str,
        id: &str,
        name: &str,
        who: &str,
        detail: String,
    ) {
        tracing::info!(invite = id, name, who, detail = %detail, "invite {what}");
        if self.audit.len() >= AUDIT_LEN {
            self.audit.pop_front();
        }
        self.audit.push_back(AuditEntry {
            at: unix(now),
            what,
            invite: id.to_owned(),
            name: name.to_owned(),
            who: who.to_owned(),
            detail,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> [u8; 40] {
        std::array::from_fn(|i| seed.wrapping_mul(37).wrapping_add(i as u8))
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn single_use_reusable_expiry_and_revocation() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut inv = Invites::default();
        assert_eq!(
            inv.create(t0, random(1), "../x", HOUR, false, "opa")
                .unwrap_err(),
            InviteError::BadName("../x".into())
        );
        assert_eq!(
            inv.create(
                t0,
                random(1),
                "ana",
                Duration::from_millis(500),
                false,
                "opa"
            )
            .unwrap_err(),
            InviteError::BadLifetime
        );
        let once = inv
            .create(t0, random(1), "ana", HOUR, false, "opa")
            .unwrap();
        let (once_id, once_token) = (once.id.clone(), once.token_hex());
        assert!(!format!("{once:?}").contains(&once_token));
        let many = inv.create(t0, random(2), "bo", HOUR, true, "opa").unwrap();
        let (many_id, many_token) = (many.id.clone(), many.token_hex());

        // Only for its own name.
        assert_eq!(
            inv.admits(t0, &once_token, "bo", "198.51.100.1"),
            Err(InviteRefusal::WrongName)
        );
        assert_eq!(
            inv.admits(t0, &"0".repeat(64), "ana", "198.51.100.1"),
            Err(InviteRefusal::Unknown)
        );
        assert_eq!(
            inv.admits(t0, "short", "ana", "x"),
            Err(InviteRefusal::Unknown)
        );
        // Single use: once.
        assert_eq!(inv.admits(t0, &once_token, "ana", "c"), Ok(once_id.clone()));
        inv.used(t0, &once_id, "res1", "c");
        assert_eq!(
            inv.admits(t0, &once_token, "ana", "c"),
            Err(InviteRefusal::UsedUp)
        );
        // Reusable: until it expires.
        for i in 0..3 {
            assert_eq!(inv.admits(t0, &many_token, "bo", "c"), Ok(many_id.clone()));
            inv.used(t0, &many_id, &format!("res-bo-{i}"), "c");
        }
        assert_eq!(
            inv.admits(t0 + HOUR, &many_token, "bo", "c"),
            Err(InviteRefusal::Expired)
        );
        // Revoking hands back the sessions to end, and the invite admits no more.
        assert_eq!(
            inv.revoke(t0, &many_id, "opa"),
            Some(vec![
                "res-bo-0".into(),
                "res-bo-1".into(),
                "res-bo-2".into()
            ])
        );
        assert_eq!(
            inv.admits(t0, &many_token, "bo", "c"),
            Err(InviteRefusal::Revoked)
        );
        assert_eq!(inv.revoke(t0, "nope", "opa"), None);
        let states: Vec<_> = inv
            .list(t0)
            .iter()
            .map(|s| (s.name.clone(), s.state))
            .collect();
        assert_eq!(
            states,
            vec![("ana".into(), "used"), ("bo".into(), "revoked")]
        );
        // The audit trail has every step, and never a token.
        let whats: Vec<_> = inv.audit().map(|e| e.what).collect();
        assert_eq!(whats.iter().filter(|w| **w == "created").count(), 2);
        assert_eq!(whats.iter().filter(|w| **w == "used").count(), 4);
        assert_eq!(whats.iter().filter(|w| **w == "revoked").count(), 1);
        assert!(whats.contains(&"refused"));
        for entry in inv.audit() {
            let shown = format!("{entry:?}");
            assert!(!shown.contains(&once_token) && !shown.contains(&many_token));
        }
    }
}
