use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{ServerName, UnixTime};

use super::*;

fn names() -> Vec<String> {
    vec!["r58.local".into()]
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LAN: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 58));

fn facts_for(ips: &[IpAddr], not_after: SystemTime) -> CertFacts {
    CertFacts {
        dns: names().into_iter().collect(),
        ips: ips.iter().copied().collect(),
        not_after,
        from_our_ca: true,
    }
}

#[test]
fn renewal_when_missing_foreign_renamed_readdressed_or_expiring() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let year = Duration::from_secs(365 * 86_400);
    let fresh = facts_for(&[LOOPBACK], now + year);
    assert_eq!(renewal(Some(&fresh), &names(), &[LOOPBACK], now), None);
    assert!(renewal(None, &names(), &[LOOPBACK], now).is_some());
    let moved = renewal(Some(&fresh), &names(), &[LOOPBACK, LAN], now).unwrap();
    assert!(moved.starts_with("addresses changed"), "{moved}");
    let renamed = renewal(Some(&fresh), &["box.local".into()], &[LOOPBACK], now).unwrap();
    assert!(renamed.starts_with("names changed"), "{renamed}");
    let old = facts_for(&[LOOPBACK], now + RENEW_BEFORE - Duration::from_secs(1));
    assert!(renewal(Some(&old), &names(), &[LOOPBACK], now).is_some());
    let foreign = CertFacts {
        from_our_ca: false,
        ..fresh
    };
    assert!(renewal(Some(&foreign), &names(), &[LOOPBACK], now).is_some());
}

/// Verifies `cert` as a server certificate for `name` with only `ca_pem` trusted (webpki:
/// chain, validity, names, the CA's name constraints).
fn verify(ca_pem: &str, cert: &Path, name: &str) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let leaf = CertificateDer::from_pem_file(cert).unwrap();
    verifier
        .verify_server_cert(
            &leaf,
            &[],
            &ServerName::try_from(name.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

#[test]
fn first_start_makes_a_ca_and_a_certificate_that_verify_and_keeps_them_after() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let first = ensure(dir.path(), &names(), &[LOOPBACK], now).unwrap();
    assert!(first.new_ca);
    assert_eq!(first.issued.as_deref(), Some("no certificate yet"));
    for key in [CA_KEY, SERVER_KEY] {
        let mode = fs::metadata(dir.path().join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    verify(&first.ca_pem, &first.cert_path(), "r58.local").unwrap();
    verify(&first.ca_pem, &first.cert_path(), "127.0.0.1").unwrap();
    assert!(verify(&first.ca_pem, &first.cert_path(), "example.com").is_err());
    assert!(verify(&first.ca_pem, &first.cert_path(), "192.168.1.58").is_err());
    first.certified_key().unwrap();

    let again = ensure(dir.path(), &names(), &[LOOPBACK], now).unwrap();
    assert!(!again.new_ca);
    assert_eq!(again.issued, None);
    assert_eq!(again.ca_pem, first.ca_pem);

    // The box got a LAN address: a new certificate from the same CA.
    let moved = ensure(dir.path(), &names(), &[LOOPBACK, LAN], now).unwrap();
    assert!(!moved.new_ca);
    assert!(
        moved
            .issued
            .as_ref()
            .unwrap()
            .starts_with("addresses changed")
    );
    verify(&first.ca_pem, &moved.cert_path(), "192.168.1.58").unwrap();
    let stored = facts(
        &fs::read_to_string(moved.cert_path()).unwrap(),
        &first.ca_pem,
    )
    .unwrap();
    assert!(stored.from_our_ca);
    assert_eq!(stored.ips, [LOOPBACK, LAN].into_iter().collect());

    // Near its end a year on: issued again.
    let later = ensure(
        dir.path(),
        &names(),
        &[LOOPBACK, LAN],
        now + LEAF_LIFETIME - RENEW_BEFORE,
    )
    .unwrap();
    assert!(later.issued.unwrap().contains("expires"));
}

#[test]
fn the_ca_cannot_vouch_for_a_public_name() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    // A certificate the CA signs for a public name anyway is refused by its name constraints.
    let public = vec!["r58.local".to_owned()];
    let lan = ensure(dir.path(), &public, &[LOOPBACK], now).unwrap();
    let ca_key = KeyPair::from_pem(&fs::read_to_string(dir.path().join(CA_KEY)).unwrap()).unwrap();
    let issuer = Issuer::from_ca_cert_pem(&lan.ca_pem, &ca_key).unwrap();
    let (cert, _) = make_leaf(&issuer, &["bank.example.com".into()], &[], now).unwrap();
    let path = dir.path().join("evil.crt");
    fs::write(&path, cert).unwrap();
    assert!(verify(&lan.ca_pem, &path, "bank.example.com").is_err());
}

#[test]
fn a_damaged_certificate_is_issued_again() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    ensure(dir.path(), &names(), &[LOOPBACK], now).unwrap();
    fs::write(dir.path().join(SERVER_CERT), "not a certificate").unwrap();
    let again = ensure(dir.path(), &names(), &[LOOPBACK], now).unwrap();
    assert_eq!(again.issued.as_deref(), Some("no certificate yet"));
    verify(&again.ca_pem, &again.cert_path(), "r58.local").unwrap();
}

/// The certificate the listener presents to a client that trusts only `ca_pem`.
async fn presented(addr: std::net::SocketAddr, ca_pem: &str) -> CertFacts {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("r58.local").unwrap();
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64_lines(leaf)
    );
    facts(&pem, ca_pem).unwrap()
}

fn base64_lines(cert: CertificateDer<'static>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(cert.as_ref())
}

/// A running listener switches to a certificate issued for a new address without a restart:
/// the next handshake presents it.
#[tokio::test]
async fn the_listener_serves_a_renewed_certificate_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let lan = ensure(dir.path(), &names(), &[LOOPBACK], now).unwrap();
    let key = Live::new(lan.certified_key().unwrap());
    let acceptor = acceptor(LanCertResolver(key.clone())).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    let before = presented(addr, &lan.ca_pem).await;
    assert_eq!(before.ips, [LOOPBACK].into_iter().collect());

    let renewed = ensure(dir.path(), &names(), &[LOOPBACK, LAN], now).unwrap();
    assert!(renewed.issued.is_some());
    key.store(renewed.certified_key().unwrap());
    let after = presented(addr, &lan.ca_pem).await;
    assert_eq!(after.ips, [LOOPBACK, LAN].into_iter().collect());
    assert!(after.from_our_ca);
}
