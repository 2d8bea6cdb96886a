//! The control messages (Allocate, Refresh, CreatePermission, ChannelBind) and their answers,
//! encoded and decoded with rtc-stun. They are rare (a handful a minute), so rtc-stun's
//! allocating `Message` is fine here, unlike on the data path (see `wire`).

use std::net::SocketAddr;
use std::time::Duration;

use rtc_dtls::crypto_provider::RTCCrypto;
use rtc_stun::attributes::{
    ATTR_CHANNEL_NUMBER, ATTR_LIFETIME, ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM,
    ATTR_REQUESTED_TRANSPORT, ATTR_USERNAME, ATTR_XOR_PEER_ADDRESS, ATTR_XOR_RELAYED_ADDRESS,
    ATTR_XORMAPPED_ADDRESS,
};
use rtc_stun::error_code::ErrorCodeAttribute;
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_REQUEST, Getter, METHOD_ALLOCATE, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, METHOD_REFRESH, Message, MessageType, Setter, TransactionId,
};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;

use super::transaction::{Built, Method, Request};

/// REQUESTED-TRANSPORT: UDP (17). The relayed side is always UDP, whatever carries the
/// client-to-server leg (RFC 8656 §7.1); TCP allocations (RFC 6062) are not used.
const UDP: [u8; 4] = [17, 0, 0, 0];

/// What the server told us to sign with: realm and nonce from its 401 or 438, and the
/// long-term key MD5(username:realm:password) (RFC 8489 §9.2.2).
#[derive(Clone)]
pub(super) struct Auth {
    pub(super) realm: String,
    pub(super) nonce: String,
    pub(super) key: Vec<u8>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is as good as the password.
        f.debug_struct("Auth")
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub(super) fn new(
        username: &str,
        password: &str,
        realm: String,
        nonce: String,
        crypto: &dyn RTCCrypto,
    ) -> Result<Self, String> {
        let key = MessageIntegrity::long_term_integrity_key(
            username.to_owned(),
            realm.clone(),
            password.to_owned(),
            crypto,
        )
        .map_err(|e| e.to_string())?;
        Ok(Self { realm, nonce, key })
    }
}

fn stun_method(method: Method) -> rtc_stun::message::Method {
    match method {
        Method::Allocate => METHOD_ALLOCATE,
        Method::Refresh => METHOD_REFRESH,
        Method::CreatePermission => METHOD_CREATE_PERMISSION,
        Method::ChannelBind => METHOD_CHANNEL_BIND,
    }
}

fn lifetime_value(lifetime: Duration) -> [u8; 4] {
    u32::try_from(lifetime.as_secs())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
}

/// Encodes `request` with a fresh transaction id, signed when `auth` is given.
pub(super) fn build(
    request: &Request,
    username: &str,
    auth: Option<&Auth>,
    crypto: &dyn RTCCrypto,
) -> Result<Built, String> {
    let mut m = Message::new();
    m.set_type(MessageType::new(
        stun_method(request.method()),
        CLASS_REQUEST,
    ));
    let id = TransactionId::new();
    m.transaction_id = id;
    m.write_header();
    let peer_address = |m: &mut Message, peer: SocketAddr| {
        XorMappedAddress {
            ip: peer.ip(),
            port: peer.port(),
        }
        .add_to_as(m, ATTR_XOR_PEER_ADDRESS)
    };
    let e = |e: rtc_shared::error::Error| e.to_string();
    match *request {
        Request::Allocate { lifetime } => {
            m.add(ATTR_REQUESTED_TRANSPORT, &UDP);
            m.add(ATTR_LIFETIME, &lifetime_value(lifetime));
        }
        Request::Refresh { lifetime } => m.add(ATTR_LIFETIME, &lifetime_value(lifetime)),
        Request::Permission { peer } => {
            peer_address(&mut m, SocketAddr::new(peer, 0)).map_err(e)?
        }
        Request::ChannelBind { peer, channel } => {
            let [hi, lo] = channel.to_be_bytes();
            m.add(ATTR_CHANNEL_NUMBER, &[hi, lo, 0, 0]);
            peer_address(&mut m, peer).map_err(e)?;
        }
    }
    if let Some(auth) = auth {
        TextAttribute::new(ATTR_USERNAME, username.to_owned())
            .add_to(&mut m)
            .map_err(e)?;
        TextAttribute::new(ATTR_REALM, auth.realm.clone())
            .add_to(&mut m)
            .map_err(e)?;
        TextAttribute::new(ATTR_NONCE, auth.nonce.clone())
            .add_to(&mut m)
            .map_err(e)?;
        MessageIntegrity::new_raw_integrity_with_provider(auth.key.clone(), crypto)
            .add_to(&mut m)
            .map_err(e)?;
    }
    FINGERPRINT.add_to(&mut m).map_err(e)?;
    Ok(Built {
        id,
        raw: m.raw,
        nonce: auth.map(|a| a.nonce.clone()),
    })
}

/// A decoded answer to one of our requests.
#[derive(Debug)]
pub(super) enum Answer {
    Success(Message),
    Error {
        code: u16,
        reason: String,
        realm: Option<String>,
        nonce: Option<String>,
    },
}

/// Decodes a STUN response (`buf` passed the header checks in `wire::stun_header`).
pub(super) fn decode(buf: &[u8]) -> Result<Message, String> {
    let mut m = Message::new();
    m.unmarshal_binary(buf).map_err(|e| e.to_string())?;
    Ok(m)
}

/// Whether the response's method is the request's.
pub(super) fn method_matches(m: &Message, method: Method) -> bool {
    m.typ.method == stun_method(method)
}

/// Checks MESSAGE-INTEGRITY when the response has one. Error answers (401, 438) usually have
/// none; a success to a signed request does with coturn, and checking it means a forged
/// answer cannot move the client's state.
pub(super) fn check_integrity(
    m: &mut Message,
    auth: Option<&Auth>,
    crypto: &dyn RTCCrypto,
) -> Result<(), String> {
    match auth {
        Some(auth) if m.contains(ATTR_MESSAGE_INTEGRITY) => {
            MessageIntegrity::check(m, &auth.key, crypto).map_err(|e| e.to_string())
        }
        _ => Ok(()),
    }
}

pub(super) fn answer(m: Message) -> Answer {
    if m.typ.class != CLASS_ERROR_RESPONSE {
        return Answer::Success(m);
    }
    let mut code = ErrorCodeAttribute::default();
    // An error answer without ERROR-CODE is malformed; 0 makes it a plain refusal.
    let (code, reason) = match code.get_from(&m) {
        Ok(()) => (
            code.code.0,
            String::from_utf8_lossy(&code.reason).into_owned(),
        ),
        Err(_) => (0, "no ERROR-CODE".to_owned()),
    };
    let text = |attr| TextAttribute::get_from_as(&m, attr).ok().map(|t| t.text);
    Answer::Error {
        code,
        reason,
        realm: text(ATTR_REALM),
        nonce: text(ATTR_NONCE),
    }
}

fn xor_address(m: &Message, attr: rtc_stun::attributes::AttrType) -> Option<SocketAddr> {
    let mut a = XorMappedAddress::default();
    a.get_from_as(m, attr).ok()?;
    Some(SocketAddr::new(a.ip, a.port))
}

/// An Allocate success's relayed and mapped addresses.
pub(super) fn allocated(m: &Message) -> Result<(SocketAddr, Option<SocketAddr>), String> {
    let relayed = xor_address(m, ATTR_XOR_RELAYED_ADDRESS)
        .ok_or("no usable XOR-RELAYED-ADDRESS".to_owned())?;
    Ok((relayed, xor_address(m, ATTR_XORMAPPED_ADDRESS)))
}

/// LIFETIME, if the answer has a well-formed one.
pub(super) fn lifetime(m: &Message) -> Result<Option<Duration>, String> {
    match m.get(ATTR_LIFETIME) {
        Err(_) => Ok(None),
        Ok(v) => match <[u8; 4]>::try_from(v.as_slice()) {
            Ok(b) => Ok(Some(Duration::from_secs(u32::from_be_bytes(b).into()))),
            Err(_) => Err(format!("LIFETIME has {} bytes", v.len())),
        },
    }
}
