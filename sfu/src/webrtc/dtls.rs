//! The DTLS server side of a session, and SRTP keys from its handshake (RFC 5763/5764).
//!
//! Each session owns one `rtc-dtls` endpoint with one association. The endpoint keys
//! associations by remote address; ours follows the ICE path instead (the client may move
//! between candidates), so the association is filed under a fixed placeholder address and every
//! datagram it emits goes to whatever path ICE selected.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::{HashAlgorithm, RTCCryptoProvider};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;
use thiserror::Error;

use super::srtp::{Profile as FastProfile, SrtpSender};

const ASSOCIATION_KEY: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9);

#[derive(Debug, Error)]
pub enum DtlsError {
    #[error("could not create the DTLS certificate: {0}")]
    Certificate(String),
    #[error("bad DTLS configuration: {0}")]
    Config(String),
    #[error("DTLS: {0}")]
    Protocol(String),
    #[error("SRTP key export failed: {0}")]
    KeyExport(String),
}

/// The server's certificate and its SDP fingerprint, shared by every session.
#[derive(Clone)]
pub struct DtlsIdentity {
    certificate: Certificate,
    /// `sha-256` fingerprint as SDP writes it: uppercase hex pairs joined by colons.
    pub fingerprint: String,
}

impl DtlsIdentity {
    /// A fresh self-signed ECDSA P-256 certificate.
    pub fn generate(provider: &Arc<dyn RTCCryptoProvider>) -> Result<Self, DtlsError> {
        let certificate =
            Certificate::generate_self_signed(vec!["r58".to_owned()], provider.crypto())
                .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        let der = certificate
            .certificate
            .first()
            .ok_or_else(|| DtlsError::Certificate("no certificate generated".into()))?;
        let digest = provider
            .crypto()
            .hash(HashAlgorithm::Sha256, der.as_ref())
            .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        Ok(Self {
            certificate,
            fingerprint: colon_hex(&digest),
        })
    }
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A handshake configuration that accepts only the peer whose certificate hashes to
/// `remote_fingerprint`, offering AES-GCM and AES-CM SRTP profiles.
fn handshake_config(
    identity: &DtlsIdentity,
    remote_fingerprint: &str,
    provider: &Arc<dyn RTCCryptoProvider>,
    is_client: bool,
) -> Result<Arc<HandshakeConfig>, DtlsError> {
    let expected = remote_fingerprint.to_ascii_lowercase();
    let hasher = provider.clone();
    let verify = Arc::new(
        move |certs: &[Vec<u8>], _chains: &[_]| -> rtc_shared::error::Result<()> {
            let leaf = certs.first().ok_or_else(|| {
                rtc_shared::error::Error::Other("the peer sent no certificate".into())
            })?;
            let digest = hasher
                .crypto()
                .hash(HashAlgorithm::Sha256, leaf)
                .map_err(|e| rtc_shared::error::Error::Other(e.to_string()))?;
            if colon_hex(&digest).to_ascii_lowercase() == expected {
                Ok(())
            } else {
                Err(rtc_shared::error::Error::Other(
                    "the peer certificate does not match the SDP fingerprint".into(),
                ))
            }
        },
    );
    let config = ConfigBuilder::default()
        .with_crypto_provider(provider.clone())
        .with_certificates(vec![identity.certificate.clone()])
        .with_srtp_protection_profiles(vec![
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        ])
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        .with_insecure_skip_verify(true)
        .with_verify_peer_certificate(Some(verify))
        .with_extended_master_secret(ExtendedMasterSecretType::Request)
        .build(is_client, None)
        .map_err(|e| DtlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// The SRTP state of a connected session.
pub struct SrtpSetup {
    /// Protects forwarded RTP in place (the hot path).
    pub rtp_sender: SrtpSender,
    /// Protects the RTCP we originate, and RTP of r58's own client.
    pub outbound: Context,
    /// Unprotects what the peer sends.
    pub inbound: Context,
}

/// What one inbound datagram did to the association.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DtlsProgress {
    pub handshake_completed: bool,
    pub peer_closed: bool,
}

/// One session's DTLS association.
pub struct Dtls {
    endpoint: Endpoint,
    completed: bool,
    is_client: bool,
}

impl Dtls {
    /// The server side: accepts a client whose certificate hashes to `remote_fingerprint` (the
    /// SDP `sha-256`).
    pub fn server(
        identity: &DtlsIdentity,
        remote_fingerprint: &str,
        provider: &Arc<dyn RTCCryptoProvider>,
    ) -> Result<Self, DtlsError> {
        let config = handshake_config(identity, remote_fingerprint, provider, false)?;
        let endpoint = Endpoint::new(ASSOCIATION_KEY, TransportProtocol::UDP, Some(config));
        Ok(Self {
            endpoint,
            completed: false,
            is_client: false,
        })
    }

    /// The client side (used by r58's own WHIP/WHEP client): starts the handshake at `now`.
    pub fn client(
        now: Instant,
        identity: &DtlsIdentity,
        remote_fingerprint: &str,
        provider: &Arc<dyn RTCCryptoProvider>,
    ) -> Result<Self, DtlsError> {
        let config = handshake_config(identity, remote_fingerprint, provider, true)?;
        let mut endpoint = Endpoint::new(ASSOCIATION_KEY, TransportProtocol::UDP, None);
        endpoint
            .connect(now, ASSOCIATION_KEY, config, None)
            .map_err(|e| DtlsError::Protocol(e.to_string()))?;
        Ok(Self {
            endpoint,
            completed: false,
            is_client: true,
        })
    }

    pub fn is_completed(&self) -> bool {
        self.completed
    }

    /// Feeds one DTLS datagram from the client.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        data: &[u8],
    ) -> Result<DtlsProgress, DtlsError> {
        let events = self
            .endpoint
            .read(now, ASSOCIATION_KEY, None, BytesMut::from(data))
            .map_err(|e| DtlsError::Protocol(e.to_string()))?;
        let mut progress = DtlsProgress::default();
        for event in events {
            match event {
                EndpointEvent::HandshakeComplete => {
                    self.completed = true;
                    progress.handshake_completed = true;
                }
                EndpointEvent::PeerClosed => progress.peer_closed = true,
                // No data channels: application data is ignored.
                _ => {}
            }
        }
        Ok(progress)
    }

    /// The next DTLS datagram to send on the selected path.
    pub fn poll_transmit(&mut self) -> Option<BytesMut> {
        self.endpoint.poll_transmit().map(|t| t.message)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.endpoint.poll_timeout(&ASSOCIATION_KEY)
    }

    /// Drives handshake retransmissions; an error means the handshake gave up. Once the
    /// handshake is complete there is nothing left to retransmit on a timer (a lost last
    /// flight is answered when the peer repeats its own), and asking the endpoint costs
    /// microseconds per session per tick: a few percent of a core at hundreds of viewers.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsError> {
        if self.completed {
            return Ok(());
        }
        if self.poll_timeout().is_some_and(|at| at <= now) {
            self.endpoint
                .handle_timeout(ASSOCIATION_KEY, now)
                .map_err(|e| DtlsError::Protocol(e.to_string()))?;
        }
        Ok(())
    }

    /// Queues close_notify: the client learns the session ended.
    pub fn close(&mut self, now: Instant) {
        let _ = self.endpoint.stop(now, ASSOCIATION_KEY);
    }

    /// SRTP state from the completed handshake.
    pub fn srtp_contexts(
        &self,
        provider: &Arc<dyn RTCCryptoProvider>,
    ) -> Result<SrtpSetup, DtlsError> {
        let state = self
            .endpoint
            .get_connection_state(ASSOCIATION_KEY)
            .ok_or_else(|| DtlsError::KeyExport("no association".into()))?;
        let profile = match state.srtp_protection_profile() {
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => ProtectionProfile::AeadAes128Gcm,
            SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => ProtectionProfile::AeadAes256Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
                ProtectionProfile::Aes128CmHmacSha1_80
            }
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => {
                ProtectionProfile::Aes128CmHmacSha1_32
            }
            other => {
                return Err(DtlsError::KeyExport(format!(
                    "unsupported SRTP profile {other:?}"
                )));
            }
        };
        let mut config = rtc_srtp::config::Config {
            profile,
            ..Default::default()
        };
        let material = state
            .export_keying_material(
                rtc_srtp::config::LABEL_EXTRACTOR_DTLS_SRTP,
                &[],
                config.keying_material_len(),
            )
            .map_err(|e| DtlsError::KeyExport(e.to_string()))?;
        config
            .set_session_keys_from_keying_material(material.as_ref(), self.is_client)
            .map_err(|e| DtlsError::KeyExport(e.to_string()))?;
        let keys = &config.keys;
        let fast_profile = match profile {
            ProtectionProfile::AeadAes128Gcm => FastProfile::AeadAes128Gcm,
            ProtectionProfile::Aes128CmHmacSha1_80 => FastProfile::Aes128CmHmacSha1_80,
            other => {
                return Err(DtlsError::KeyExport(format!(
                    "SRTP profile {other:?} has no forwarding implementation"
                )));
            }
        };
        let rtp_sender = SrtpSender::new(
            fast_profile,
            &keys.local_master_key,
            &keys.local_master_salt,
        )
        .map_err(|e| DtlsError::KeyExport(e.to_string()))?;
        let outbound = Context::new(
            &keys.local_master_key,
            &keys.local_master_salt,
            profile,
            None,
            None,
            provider.crypto(),
        )
        .map_err(|e| DtlsError::KeyExport(e.to_string()))?;
        let inbound = Context::new(
            &keys.remote_master_key,
            &keys.remote_master_salt,
            profile,
            Some(rtc_srtp::option::srtp_replay_protection(256)),
            Some(rtc_srtp::option::srtcp_replay_protection(64)),
            provider.crypto(),
        )
        .map_err(|e| DtlsError::KeyExport(e.to_string()))?;
        Ok(SrtpSetup {
            rtp_sender,
            outbound,
            inbound,
        })
    }
}
