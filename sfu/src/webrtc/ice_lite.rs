//! ICE-lite (RFC 8445 section 2.5): we only answer connectivity checks.
//!
//! The client is always the controlling agent; it sends Binding requests with
//! `USERNAME = <our ufrag>:<its ufrag>` signed with our password. We answer each valid one with
//! its source address (that is how peer-reflexive and TURN-relayed candidates become usable),
//! switch to the pair it nominates, and treat the stream of checks as consent (RFC 7675).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::PeerAddr;

use rand::RngExt;
use rtc_dtls::crypto_provider::RTCCrypto;
use rtc_stun::attributes::{ATTR_USE_CANDIDATE, ATTR_USERNAME};
use rtc_stun::error_code::{CODE_FORBIDDEN, ErrorCodeAttribute};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_ERROR, BINDING_REQUEST, BINDING_SUCCESS, Message, Setter};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;
use thiserror::Error;

/// Consent lapses when no valid check arrived for this long (RFC 7675 section 5.1).
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum IceError {
    #[error("not a STUN message: {0}")]
    NotStun(String),
    #[error("STUN message is not a Binding request")]
    NotBindingRequest,
    #[error("Binding request has no USERNAME of the form local:remote")]
    BadUsername,
    #[error("Binding request failed its MESSAGE-INTEGRITY check")]
    BadIntegrity,
    #[error("Binding request has a bad FINGERPRINT")]
    BadFingerprint,
    #[error("could not build the Binding response: {0}")]
    Build(String),
}

/// An ICE username fragment and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    pub ufrag: String,
    pub pwd: String,
}

impl IceCredentials {
    /// Fresh random credentials: 8 ufrag and 24 password characters from the ice-char set.
    pub fn random() -> Self {
        Self {
            ufrag: random_ice_chars(8),
            pwd: random_ice_chars(24),
        }
    }
}

fn random_ice_chars(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A decoded Binding request, before its integrity is checked.
pub struct BindingRequest {
    message: Message,
    pub local_ufrag: String,
    pub remote_ufrag: String,
    pub use_candidate: bool,
}

impl BindingRequest {
    /// Decodes `data` as a Binding request and splits its USERNAME. Cheap: no HMAC yet, so the
    /// caller can look up the session by `local_ufrag` first and drop strangers early.
    pub fn parse(data: &[u8]) -> Result<Self, IceError> {
        let mut message = Message::new();
        message
            .unmarshal_binary(data)
            .map_err(|e| IceError::NotStun(e.to_string()))?;
        if message.typ != BINDING_REQUEST {
            return Err(IceError::NotBindingRequest);
        }
        let username = TextAttribute::get_from_as(&message, ATTR_USERNAME)
            .map_err(|_| IceError::BadUsername)?;
        let (local, remote) = username.text.split_once(':').ok_or(IceError::BadUsername)?;
        Ok(Self {
            local_ufrag: local.to_owned(),
            remote_ufrag: remote.to_owned(),
            use_candidate: message.contains(ATTR_USE_CANDIDATE),
            message,
        })
    }

    /// Verifies the request with our password and builds the success response for `from`.
    pub fn answer(
        mut self,
        from: SocketAddr,
        local_pwd: &str,
        crypto: &dyn RTCCrypto,
    ) -> Result<Vec<u8>, IceError> {
        MessageIntegrity::check(&mut self.message, local_pwd.as_bytes(), crypto)
            .map_err(|_| IceError::BadIntegrity)?;
        FINGERPRINT
            .check(&self.message)
            .map_err(|_| IceError::BadFingerprint)?;
        self.signed_response(
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress {
                ip: from.ip(),
                port: from.port(),
            }),
            local_pwd,
            crypto,
        )
    }

    /// A response to this request of type `typ` carrying `attribute`, signed with our password
    /// and fingerprinted, as ICE requires of every response.
    fn signed_response(
        &self,
        typ: Box<dyn Setter + '_>,
        attribute: Box<dyn Setter + '_>,
        local_pwd: &str,
        crypto: &dyn RTCCrypto,
    ) -> Result<Vec<u8>, IceError> {
        let mut out = Message::new();
        out.build(&[
            Box::new(self.message.clone()),
            typ,
            attribute,
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                local_pwd.to_owned(),
                crypto,
            )),
            Box::new(FINGERPRINT),
        ])
        .map_err(|e| IceError::Build(e.to_string()))?;
        Ok(out.raw)
    }
}

impl BindingRequest {
    /// Verifies the request and builds a signed 403 error response: the session behind these
    /// credentials has ended. Browsers fail the candidate pair on it at once instead of waiting
    /// for consent to lapse.
    pub fn reject_ended(
        mut self,
        local_pwd: &str,
        crypto: &dyn RTCCrypto,
    ) -> Result<Vec<u8>, IceError> {
        MessageIntegrity::check(&mut self.message, local_pwd.as_bytes(), crypto)
            .map_err(|_| IceError::BadIntegrity)?;
        self.signed_response(
            Box::new(BINDING_ERROR),
            Box::new(ErrorCodeAttribute {
                code: CODE_FORBIDDEN,
                reason: b"session ended".to_vec(),
            }),
            local_pwd,
            crypto,
        )
    }
}

/// The ICE state of one session.
#[derive(Debug)]
pub struct IceLite {
    pub local: IceCredentials,
    pub remote_ufrag: String,
    /// Where we send: the nominated pair's remote address, or the first address that passed a
    /// check until the client nominates.
    pub selected: Option<PeerAddr>,
    pub nominated: bool,
    /// Every remote address that passed a check (they all map to this session).
    pub remotes: Vec<PeerAddr>,
    pub last_consent: Option<Instant>,
}

impl IceLite {
    pub fn new(remote_ufrag: String) -> Self {
        Self {
            local: IceCredentials::random(),
            remote_ufrag,
            selected: None,
            nominated: false,
            remotes: Vec::new(),
            last_consent: None,
        }
    }

    /// Records a valid check from `from`. Returns true when `from` is new to this session.
    pub fn on_valid_check(&mut self, now: Instant, from: PeerAddr, use_candidate: bool) -> bool {
        self.last_consent = Some(now);
        let is_new = !self.remotes.contains(&from);
        if is_new {
            self.remotes.push(from);
        }
        if use_candidate {
            self.selected = Some(from);
            self.nominated = true;
        } else if self.selected.is_none() {
            self.selected = Some(from);
        }
        is_new
    }

    /// ICE restart: new local credentials, the client's new ufrag; the path stays until a check
    /// under the new credentials nominates another.
    pub fn restart(&mut self, remote_ufrag: String) {
        self.local = IceCredentials::random();
        self.remote_ufrag = remote_ufrag;
        self.nominated = false;
    }

    /// Whether consent lapsed. A session that never got a check lapses from `created_at`.
    pub fn consent_expired(&self, now: Instant, created_at: Instant) -> bool {
        now >= self.consent_deadline(created_at)
    }

    /// The first instant at which [`IceLite::consent_expired`] is true, unless a check comes.
    pub fn consent_deadline(&self, created_at: Instant) -> Instant {
        let since = self.last_consent.unwrap_or(created_at);
        // Expired strictly after the timeout: one nanosecond past it.
        since + CONSENT_TIMEOUT + Duration::from_nanos(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_stun::attributes::ATTR_PRIORITY;

    fn crypto() -> std::sync::Arc<dyn rtc_dtls::crypto_provider::RTCCryptoProvider> {
        rtc_dtls::crypto_provider::default_provider().expect("crypto provider")
    }

    fn request(username: &str, pwd: &str, use_candidate: bool) -> Vec<u8> {
        let provider = crypto();
        let mut m = Message::new();
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(BINDING_REQUEST),
            Box::new(rtc_stun::message::TransactionId::new()),
            Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
        ];
        if use_candidate {
            setters.push(Box::new(rtc_stun::attributes::RawAttribute {
                typ: ATTR_USE_CANDIDATE,
                length: 0,
                value: vec![],
            }));
        }
        setters.push(Box::new(rtc_stun::attributes::RawAttribute {
            typ: ATTR_PRIORITY,
            length: 4,
            value: vec![0, 0, 1, 0],
        }));
        setters.push(Box::new(
            MessageIntegrity::new_short_term_integrity_with_provider(
                pwd.to_owned(),
                provider.crypto(),
            ),
        ));
        setters.push(Box::new(FINGERPRINT));
        m.build(&setters).expect("build");
        m.raw
    }

    #[test]
    fn answers_a_valid_check_with_the_source_address() {
        let provider = crypto();
        let data = request("srv:cli", "serverpassword0123456789", true);
        let req = BindingRequest::parse(&data).unwrap();
        assert_eq!(
            (req.local_ufrag.as_str(), req.remote_ufrag.as_str()),
            ("srv", "cli")
        );
        assert!(req.use_candidate);
        let from: SocketAddr = "203.0.113.7:40000".parse().unwrap();
        let response = req
            .answer(from, "serverpassword0123456789", provider.crypto())
            .unwrap();
        let mut m = Message::new();
        m.unmarshal_binary(&response).unwrap();
        assert_eq!(m.typ, BINDING_SUCCESS);
        let mut mapped = XorMappedAddress::default();
        mapped
            .get_from_as(&m, rtc_stun::attributes::ATTR_XORMAPPED_ADDRESS)
            .unwrap();
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), from);
        MessageIntegrity::check(&mut m, b"serverpassword0123456789", provider.crypto()).unwrap();
    }

    #[test]
    fn rejects_wrong_password_and_garbage() {
        let provider = crypto();
        let data = request("srv:cli", "wrong-password-000000000", false);
        let req = BindingRequest::parse(&data).unwrap();
        let from: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(matches!(
            req.answer(from, "serverpassword0123456789", provider.crypto()),
            Err(IceError::BadIntegrity)
        ));
        assert!(BindingRequest::parse(&[0, 1, 0, 0]).is_err());
        let ended = BindingRequest::parse(&request("srv:cli", "serverpassword0123456789", false))
            .unwrap()
            .reject_ended("serverpassword0123456789", provider.crypto())
            .unwrap();
        let mut m = Message::new();
        m.unmarshal_binary(&ended).unwrap();
        assert_eq!(m.typ, BINDING_ERROR);
        let no_colon = request("srvcli", "x", false);
        assert!(matches!(
            BindingRequest::parse(&no_colon),
            Err(IceError::BadUsername)
        ));
    }

    #[test]
    fn nomination_and_consent() {
        let t0 = Instant::now();
        let mut ice = IceLite::new("cli".into());
        let a = PeerAddr::direct("127.0.0.1:1000".parse().unwrap());
        // The same remote address through our relay is another path.
        let b = PeerAddr::relayed("127.0.0.1:1000".parse().unwrap());
        assert!(ice.on_valid_check(t0, a, false));
        assert_eq!(ice.selected, Some(a));
        assert!(ice.on_valid_check(t0, b, true));
        assert_eq!(ice.selected, Some(b));
        assert!(!ice.on_valid_check(t0, a, false));
        assert_eq!(
            ice.selected,
            Some(b),
            "an unnominated check does not move the path"
        );
        assert!(!ice.consent_expired(t0 + Duration::from_secs(29), t0));
        assert!(ice.consent_expired(t0 + Duration::from_secs(31), t0));
    }
}
