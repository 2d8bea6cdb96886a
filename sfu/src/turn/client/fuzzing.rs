//! A scripted TURN server for tests, and the fuzz entry for everything the client parses.
//!
//! [`FakeServer`] answers the client's requests the way coturn does (401 with realm and nonce,
//! then signed answers), built with rtc-stun so the client is checked against an independent
//! encoder. [`server_input`] feeds arbitrary bytes to clients in every state, as datagrams and
//! as a TCP stream; it must never panic, and after `handle_timeout(t)` the next deadline must
//! lie after `t` (a deadline in the past would make a driver spin).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_stun::attributes::{
    ATTR_DATA, ATTR_LIFETIME, ATTR_NONCE, ATTR_REALM, ATTR_XOR_PEER_ADDRESS,
    ATTR_XOR_RELAYED_ADDRESS, ATTR_XORMAPPED_ADDRESS,
};
use rtc_stun::error_code::{ErrorCode, ErrorCodeAttribute};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_SUCCESS_RESPONSE, METHOD_DATA, Message,
    MessageClass, MessageType, Setter, TransactionId,
};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;

use super::{ClientConfig, Secret, StreamFramer, Transport, TurnClient};

/// The address [`FakeServer`] pretends to be.
pub const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 3478);
/// The relayed address it hands out.
pub const RELAYED: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 50_000);
/// The mapped address it reports.
pub const MAPPED: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)), 40_000);
/// The peer the prepared clients talk to.
pub const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)), 6000);
pub const USERNAME: &str = "1700000000:r58";
pub const PASSWORD: &str = "fuzz-password";
pub const REALM: &str = "r58.test";

/// A scripted TURN server: decodes requests and builds answers.
pub struct FakeServer {
    pub nonce: String,
    crypto: Arc<dyn RTCCryptoProvider>,
    key: Vec<u8>,
}

impl Default for FakeServer {
    fn default() -> Self {
        Self::new(USERNAME, PASSWORD)
    }
}

impl FakeServer {
    pub fn new(username: &str, password: &str) -> Self {
        let crypto = rtc_dtls::crypto_provider::default_provider().expect("crypto provider");
        let key = MessageIntegrity::long_term_integrity_key(
            username.to_owned(),
            REALM.to_owned(),
            password.to_owned(),
            crypto.crypto(),
        )
        .expect("MD5");
        Self {
            nonce: "nonce-1".to_owned(),
            crypto,
            key,
        }
    }

    /// A client configured for this server.
    pub fn client(&self, transport: Transport) -> TurnClient {
        let config = ClientConfig::new(SERVER, transport, USERNAME, Secret::new(PASSWORD));
        TurnClient::with_crypto(config, self.crypto.clone())
    }

    /// Decodes a request the client sent.
    pub fn parse(raw: &[u8]) -> Message {
        let mut m = Message::new();
        m.unmarshal_binary(raw).expect("the client sent valid STUN");
        m
    }

    /// Whether `request` is signed with the client's long-term key and the current nonce.
    pub fn authentic(&self, request: &[u8]) -> bool {
        let mut m = Self::parse(request);
        let nonce = TextAttribute::get_from_as(&m, ATTR_NONCE).map(|t| t.text);
        nonce.as_deref() == Ok(&self.nonce)
            && MessageIntegrity::check(&mut m, &self.key, self.crypto.crypto()).is_ok()
    }

    fn answer(
        &self,
        request: &[u8],
        class: MessageClass,
        sign: bool,
        attrs: impl FnOnce(&mut Message),
    ) -> Vec<u8> {
        let req = Self::parse(request);
        let mut m = Message::new();
        m.set_type(MessageType::new(req.typ.method, class));
        m.transaction_id = req.transaction_id;
        m.write_header();
        attrs(&mut m);
        if sign {
            MessageIntegrity::new_raw_integrity_with_provider(
                self.key.clone(),
                self.crypto.crypto(),
            )
            .add_to(&mut m)
            .expect("integrity");
        }
        FINGERPRINT.add_to(&mut m).expect("fingerprint");
        m.raw
    }

    fn error_code(m: &mut Message, code: u16, reason: &str) {
        ErrorCodeAttribute {
            code: ErrorCode(code),
            reason: reason.as_bytes().to_vec(),
        }
        .add_to(m)
        .expect("error code");
    }

    /// 401 with realm and nonce, as for an unauthenticated Allocate.
    pub fn unauthorized(&self, request: &[u8]) -> Vec<u8> {
        let nonce = self.nonce.clone();
        self.answer(request, CLASS_ERROR_RESPONSE, false, |m| {
            Self::error_code(m, 401, "Unauthorized");
            m.add(ATTR_REALM, REALM.as_bytes());
            m.add(ATTR_NONCE, nonce.as_bytes());
        })
    }

    /// 438 with a new nonce, which becomes the current one.
    pub fn stale_nonce(&mut self, request: &[u8], nonce: &str) -> Vec<u8> {
        self.nonce = nonce.to_owned();
        self.answer(request, CLASS_ERROR_RESPONSE, false, |m| {
            Self::error_code(m, 438, "Stale Nonce");
            m.add(ATTR_REALM, REALM.as_bytes());
            m.add(ATTR_NONCE, nonce.as_bytes());
        })
    }

    /// Any other error answer, signed like coturn signs errors to authenticated requests.
    pub fn error(&self, request: &[u8], code: u16, reason: &str) -> Vec<u8> {
        self.answer(request, CLASS_ERROR_RESPONSE, true, |m| {
            Self::error_code(m, code, reason)
        })
    }

    /// Allocate success with [`RELAYED`] and [`MAPPED`].
    pub fn allocated(&self, request: &[u8], lifetime: Duration) -> Vec<u8> {
        self.answer(request, CLASS_SUCCESS_RESPONSE, true, |m| {
            let addr = |a: SocketAddr| XorMappedAddress {
                ip: a.ip(),
                port: a.port(),
            };
            addr(RELAYED)
                .add_to_as(m, ATTR_XOR_RELAYED_ADDRESS)
                .expect("relayed");
            addr(MAPPED)
                .add_to_as(m, ATTR_XORMAPPED_ADDRESS)
                .expect("mapped");
            m.add(ATTR_LIFETIME, &(lifetime.as_secs() as u32).to_be_bytes());
        })
    }

    /// Success for Refresh (with `lifetime`), CreatePermission or ChannelBind (`None`).
    pub fn ok(&self, request: &[u8], lifetime: Option<Duration>) -> Vec<u8> {
        self.answer(request, CLASS_SUCCESS_RESPONSE, true, |m| {
            if let Some(l) = lifetime {
                m.add(ATTR_LIFETIME, &(l.as_secs() as u32).to_be_bytes());
            }
        })
    }

    /// A Data indication from `peer`.
    pub fn data_indication(peer: SocketAddr, payload: &[u8]) -> Vec<u8> {
        let mut m = Message::new();
        m.set_type(MessageType::new(METHOD_DATA, CLASS_INDICATION));
        m.transaction_id = TransactionId::new();
        m.write_header();
        XorMappedAddress {
            ip: peer.ip(),
            port: peer.port(),
        }
        .add_to_as(&mut m, ATTR_XOR_PEER_ADDRESS)
        .expect("peer");
        m.add(ATTR_DATA, payload);
        m.raw
    }
}

/// Everything queued for the server.
pub fn drain(client: &mut TurnClient) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| client.poll_transmit()).collect()
}

/// How far [`prepared`] takes a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The unauthenticated Allocate is out.
    Fresh,
    /// The signed Allocate is out.
    Authenticating,
    /// Allocated; CreatePermission and ChannelBind for [`PEER`] are out.
    Allocated,
    /// Permission and channel confirmed; at half the lifetime a Refresh is out.
    Refreshing,
    /// `close` sent its Refresh with lifetime 0.
    Closing,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Fresh,
        Stage::Authenticating,
        Stage::Allocated,
        Stage::Refreshing,
        Stage::Closing,
    ];
}

/// A client at `stage` against `server`, with the requests it has outstanding.
pub fn prepared(
    server: &FakeServer,
    transport: Transport,
    stage: Stage,
    now: Instant,
) -> (TurnClient, Vec<Vec<u8>>) {
    let mut client = server.client(transport);
    client.allocate(now);
    let out = drain(&mut client);
    if stage == Stage::Fresh {
        return (client, out);
    }
    client
        .handle_input(now, &server.unauthorized(&out[0]))
        .expect("401");
    let out = drain(&mut client);
    if stage == Stage::Authenticating {
        return (client, out);
    }
    let lifetime = Duration::from_secs(600);
    client
        .handle_input(now, &server.allocated(&out[0], lifetime))
        .expect("allocated");
    client.bind_channel(now, PEER).expect("channel");
    let out = drain(&mut client);
    if stage == Stage::Allocated {
        return (client, out);
    }
    if stage == Stage::Closing {
        client.close(now);
        let out = drain(&mut client);
        return (client, out);
    }
    for request in &out {
        client
            .handle_input(now, &server.ok(request, None))
            .expect("ok");
    }
    client.handle_timeout(now + lifetime / 2);
    let out = drain(&mut client);
    (client, out)
}

fn check_deadline(client: &TurnClient, at: Instant) {
    if let Some(next) = client.poll_timeout() {
        assert!(
            next > at,
            "after handle_timeout({at:?}) the next deadline is {next:?}"
        );
    }
}

fn poll_all(client: &mut TurnClient) {
    while client.poll_transmit().is_some() {}
    while client.poll_event().is_some() {}
}

/// Fuzz entry: `data` is a sequence of `[len_hi, len_lo, bytes ...]` messages from the server.
/// Each goes to clients in every [`Stage`] over UDP, once as is and once with its transaction
/// id replaced by that of a request the client has outstanding (so answers reach the code that
/// handles them); then all of `data` goes to TCP clients through a [`StreamFramer`] in chunks
/// whose sizes come from `data` itself.
pub fn server_input(data: &[u8]) {
    thread_local! {
        static SERVER: FakeServer = FakeServer::default();
    }
    SERVER.with(|server| {
        let now = Instant::now();
        let mut messages = Vec::new();
        let mut rest = data;
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
            messages.push(&rest[2..2 + len]);
            rest = &rest[2 + len..];
        }
        for stage in Stage::ALL {
            let (mut client, outstanding) = prepared(server, Transport::Udp, stage, now);
            let ids: Vec<&[u8]> = outstanding.iter().filter_map(|r| r.get(8..20)).collect();
            let mut t = now;
            for (i, message) in messages.iter().enumerate() {
                let _ = client.handle_input(t, message);
                if message.len() >= 20 && !ids.is_empty() {
                    let mut patched = message.to_vec();
                    patched[8..20].copy_from_slice(ids[i % ids.len()]);
                    let _ = client.handle_input(t, &patched);
                }
                let mut out = Vec::new();
                let _ = client.send_to(PEER, message, &mut out);
                t += Duration::from_millis(u64::from(message.first().copied().unwrap_or(0)) * 97);
                client.handle_timeout(t);
                check_deadline(&client, t);
                poll_all(&mut client);
            }
            t += Duration::from_secs(3600);
            client.handle_timeout(t);
            check_deadline(&client, t);

            let (mut client, _) = prepared(server, Transport::Tcp, stage, now);
            let mut framer = StreamFramer::default();
            let mut rest = data;
            let mut step = 0;
            while !rest.is_empty() {
                let size = (usize::from(rest[0]) + step).min(rest.len()).max(1);
                step += 1;
                if framer.push(&rest[..size]).is_err() {
                    break;
                }
                rest = &rest[size..];
                loop {
                    match framer.next_frame() {
                        Ok(Some(frame)) => {
                            let _ = client.handle_input(now, frame);
                        }
                        Ok(None) => break,
                        Err(_) => {
                            client.handle_connection_lost(now);
                            break;
                        }
                    }
                }
            }
            client.handle_timeout(now + Duration::from_secs(60));
            check_deadline(&client, now + Duration::from_secs(60));
            poll_all(&mut client);
        }
    });
}
