//! HTTPS on the LAN out of the box (`[tls] auto`): a small local CA made on first start and a
//! server certificate it signs for the box's names (`r58.local`) and addresses, kept in the
//! state directory and issued again when the names or addresses change or expiry nears.
//!
//! Browsers give camera and microphone only to secure origins, so a guest on the LAN needs
//! HTTPS; a public CA cannot vouch for `r58.local` or `192.168.1.58`. The operator trusts this
//! CA once per device (`/ca.crt` and the steps on `/trust`, docs/lan.md). The CA is limited by
//! X.509 name constraints to `.local`, `localhost`, the configured names and private, loopback
//! and link-local addresses, so its key cannot vouch for any public site.
//!
//! [`renewal`] is the pure decision (tested on fixed times); [`ensure`] reads and writes the
//! files; [`LanCertResolver`] lets the running HTTPS listener switch to a renewed certificate.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::rustls;

use crate::live::Live;

/// The CA's lifetime: long, since every device trusts it by hand.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);
/// The server certificate's lifetime (within what browsers accept for any CA).
const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
/// A server certificate this close to its end is issued again.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);
/// Backdating, for devices whose clock is a little behind the box's.
const BACKDATE: Duration = Duration::from_secs(86_400);

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";

/// Why the local CA or certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum LanTlsError {
    #[error("TLS dir {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS dir: {what}: {source}")]
    Certificate { what: String, source: rcgen::Error },
    #[error("TLS dir: {file} is not a certificate this CA can use: {reason}")]
    BadFile { file: PathBuf, reason: String },
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What a stored server certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    pub dns: BTreeSet<String>,
    pub ips: BTreeSet<IpAddr>,
    pub not_after: SystemTime,
    /// Signed by the CA in the same directory.
    pub from_our_ca: bool,
}

/// Why a new server certificate is needed, or `None` to keep `current`.
pub fn renewal(
    current: Option<&CertFacts>,
    names: &[String],
    ips: &[IpAddr],
    now: SystemTime,
) -> Option<String> {
    let Some(current) = current else {
        return Some("no certificate yet".into());
    };
    if !current.from_our_ca {
        return Some("the certificate is not from this CA".into());
    }
    let want_dns: BTreeSet<String> = names.iter().cloned().collect();
    if current.dns != want_dns {
        return Some(format!(
            "names changed: {:?} -> {:?}",
            current.dns, want_dns
        ));
    }
    let want_ips: BTreeSet<IpAddr> = ips.iter().copied().collect();
    if current.ips != want_ips {
        return Some(format!(
            "addresses changed: {:?} -> {:?}",
            current.ips, want_ips
        ));
    }
    if current.not_after <= now + RENEW_BEFORE {
        return Some("it expires within 30 days".into());
    }
    None
}

/// The certificate files in use and what was done to them.
#[derive(Debug, Clone)]
pub struct LanCert {
    pub dir: PathBuf,
    /// The CA certificate, PEM: what `/ca.crt` hands out.
    pub ca_pem: String,
    /// Why a new server certificate was issued now, if it was.
    pub issued: Option<String>,
    /// A new CA was made now (devices must trust it).
    pub new_ca: bool,
}

impl LanCert {
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(SERVER_CERT)
    }
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(SERVER_KEY)
    }

    /// The server certificate and key, for rustls.
    pub fn certified_key(&self) -> Result<CertifiedKey, LanTlsError> {
        let cert_path = self.cert_path();
        let key_path = self.key_path();
        let bad = |file: &Path, reason: String| LanTlsError::BadFile {
            file: file.to_owned(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
            .map_err(|e| bad(&cert_path, e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(&cert_path, e.to_string()))?;
        let key =
            PrivateKeyDer::from_pem_file(&key_path).map_err(|e| bad(&key_path, e.to_string()))?;
        let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)?;
        Ok(CertifiedKey::new(certs, signer))
    }
}

/// Makes the CA when `dir` has none, and a server certificate for `names` and `ips` when the
/// stored one does not fit ([`renewal`]). Keys are written readable by the owner only.
pub fn ensure(
    dir: &Path,
    names: &[String],
    ips: &[IpAddr],
    now: SystemTime,
) -> Result<LanCert, LanTlsError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| LanTlsError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let (ca_pem, ca_key_pem, new_ca) = match (
        fs::read_to_string(dir.join(CA_CERT)),
        fs::read_to_string(dir.join(CA_KEY)),
    ) {
        (Ok(cert), Ok(key)) => (cert, key, false),
        _ => {
            let (cert, key) = make_ca(names, now)?;
            write_file(&dir.join(CA_KEY), key.as_bytes(), true)?;
            write_file(&dir.join(CA_CERT), cert.as_bytes(), false)?;
            (cert, key, true)
        }
    };
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|source| LanTlsError::Certificate {
        what: format!("reading {}", dir.join(CA_KEY).display()),
        source,
    })?;
    let issuer =
        Issuer::from_ca_cert_pem(&ca_pem, &ca_key).map_err(|source| LanTlsError::Certificate {
            what: format!("reading {}", dir.join(CA_CERT).display()),
            source,
        })?;
    let current = if new_ca {
        None
    } else {
        fs::read_to_string(dir.join(SERVER_CERT))
            .ok()
            .and_then(|pem| facts(&pem, &ca_pem).ok())
    };
    let issued = renewal(current.as_ref(), names, ips, now);
    if issued.is_some() {
        let (cert, key) = make_leaf(&issuer, names, ips, now)?;
        write_file(&dir.join(SERVER_KEY), key.as_bytes(), true)?;
        write_file(&dir.join(SERVER_CERT), cert.as_bytes(), false)?;
    }
    Ok(LanCert {
        dir: dir.to_owned(),
        ca_pem,
        issued,
        new_ca,
    })
}

/// Reads a server certificate's names, addresses, expiry and whether `ca_pem` signed it.
pub fn facts(cert_pem: &str, ca_pem: &str) -> Result<CertFacts, String> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    let (_, ca_pem) =
        x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).map_err(|e| e.to_string())?;
    let ca = ca_pem.parse_x509().map_err(|e| e.to_string())?;
    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => {
                    dns.insert(d.to_ascii_lowercase());
                }
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        ips.insert(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        ips.insert(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    let not_after = u64::try_from(cert.validity().not_after.timestamp())
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let from_our_ca =
        cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok();
    Ok(CertFacts {
        dns,
        ips,
        not_after,
        from_our_ca,
    })
}

fn validity(params: &mut CertificateParams, now: SystemTime, lifetime: Duration) {
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + lifetime).into();
}

/// A new CA: its certificate and key, PEM.
fn make_ca(names: &[String], now: SystemTime) -> Result<(String, String), LanTlsError> {
    let err = |source| LanTlsError::Certificate {
        what: "making the local CA".into(),
        source,
    };
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "r58");
    // A name of its own per box: two boxes' CAs are told apart in a device's trust list.
    let id: String = key
        .public_key_raw()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    dn.push(DnType::CommonName, format!("r58 local CA {id}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted_subtrees(names),
        excluded_subtrees: Vec::new(),
    });
    validity(&mut params, now, CA_LIFETIME);
    let cert = params.self_signed(&key).map_err(err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// What the CA may vouch for: `.local` and `localhost` names and the configured ones, and the
/// addresses a LAN box has (private, loopback, link-local, CGNAT, unique local).
fn permitted_subtrees(names: &[String]) -> Vec<GeneralSubtree> {
    let mut dns: BTreeSet<String> = ["local", "localhost"].map(String::from).into();
    dns.extend(names.iter().filter(|n| !n.ends_with(".local")).cloned());
    let mut out: Vec<GeneralSubtree> = dns.into_iter().map(GeneralSubtree::DnsName).collect();
    let v4: [([u8; 4], u8); 6] = [
        ([10, 0, 0, 0], 8),
        ([172, 16, 0, 0], 12),
        ([192, 168, 0, 0], 16),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([100, 64, 0, 0], 10),
    ];
    for (addr, prefix) in v4 {
        out.push(GeneralSubtree::IpAddress(
            rcgen::CidrSubnet::from_v4_prefix(addr, prefix),
        ));
    }
    let mut ula = [0u8; 16];
    ula[0] = 0xfc;
    let mut link = [0u8; 16];
    link[0] = 0xfe;
    link[1] = 0x80;
    let loopback = std::net::Ipv6Addr::LOCALHOST.octets();
    for (addr, prefix) in [(ula, 7), (link, 10), (loopback, 128)] {
        out.push(GeneralSubtree::IpAddress(
            rcgen::CidrSubnet::from_v6_prefix(addr, prefix),
        ));
    }
    out
}

/// A server certificate for `names` and `ips` signed by `issuer`: its PEM and its key's.
fn make_leaf(
    issuer: &Issuer<'_, &KeyPair>,
    names: &[String],
    ips: &[IpAddr],
    now: SystemTime,
) -> Result<(String, String), LanTlsError> {
    let err = |source| LanTlsError::Certificate {
        what: "issuing the server certificate".into(),
        source,
    };
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(err)?;
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_else(|| "r58".into()),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, now, LEAF_LIFETIME);
    let cert = params.signed_by(&key, issuer).map_err(err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `path` whole (a temporary file renamed over it), private ones mode 0600.
fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), LanTlsError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| LanTlsError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if private {
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

/// The HTTPS listener's certificate, replaced when [`ensure`] issues a new one.
#[derive(Debug)]
pub struct LanCertResolver(pub Live<CertifiedKey>);

impl ResolvesServerCert for LanCertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load())
    }
}

/// A TLS acceptor serving whatever `resolver` holds (HTTP/1.1 over TLS 1.2/1.3).
pub fn acceptor(resolver: LanCertResolver) -> Result<tokio_rustls::TlsAcceptor, LanTlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
#[path = "lan_tls_tests.rs"]
mod tests;
