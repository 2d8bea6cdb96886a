//! The Cloudflare TURN provider against a local HTTP server that implements the documented API
//! (`POST /v1/turn/keys/{key_id}/credentials/generate-ice-servers`, bearer token, `{"ttl": N}`,
//! 201 with `{"iceServers": [...]}`). The real service is out of reach here; this server is the
//! one allowed fake, and it checks every part of the request it gets.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sfu::turn::cloudflare;
use sfu::turn::{Provider, ProviderError, Secret, TurnConfig, TurnService, Unavailable};

const KEY_ID: &str = "0123abcd4567ef";
const TOKEN: &str = "test-api-token-5f2e";

/// Cloudflare's documented answer (values shortened).
const ANSWER: &str = r#"{"iceServers":[
  {"urls":["stun:stun.cloudflare.com:3478","stun:stun.cloudflare.com:53"]},
  {"urls":["turn:turn.cloudflare.com:3478?transport=udp","turn:turn.cloudflare.com:53?transport=udp",
           "turn:turn.cloudflare.com:3478?transport=tcp","turn:turn.cloudflare.com:80?transport=tcp",
           "turns:turn.cloudflare.com:5349?transport=tcp","turns:turn.cloudflare.com:443?transport=tcp"],
   "username":"bc91b63e2b5d759f8eb9","credential":"ebd71f1d3edbc2b0edae"}]}"#;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Mode {
    Ok = 0,
    Unauthorized = 1,
    Malformed = 2,
    Slow = 3,
    ServerError = 4,
}

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: serde_json::Value,
}

#[derive(Clone, Default)]
struct Fake {
    mode: Arc<AtomicU8>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// Implements the documented endpoint; anything else is 404/405 like a real API.
async fn api(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    fake.seen.lock().expect("lock").push(Seen {
        method: method.clone(),
        path: uri.path().to_owned(),
        authorization: header(header::AUTHORIZATION),
        content_type: header(header::CONTENT_TYPE),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    let expected_path = format!("/v1/turn/keys/{KEY_ID}/credentials/generate-ice-servers");
    if uri.path() != expected_path {
        return StatusCode::NOT_FOUND.into_response();
    }
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let mode = fake.mode.load(Ordering::SeqCst);
    if mode == Mode::Unauthorized as u8
        || header(header::AUTHORIZATION) != Some(format!("Bearer {TOKEN}"))
    {
        return (StatusCode::UNAUTHORIZED, r#"{"error":"unauthorized"}"#).into_response();
    }
    match mode {
        m if m == Mode::Malformed as u8 => (
            StatusCode::CREATED,
            r#"{"iceServers": [{"urls": ["turn:x"], "username": "#,
        )
            .into_response(),
        m if m == Mode::ServerError as u8 => {
            (StatusCode::INTERNAL_SERVER_ERROR, "<html>oops</html>").into_response()
        }
        m => {
            if m == Mode::Slow as u8 {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                ANSWER,
            )
                .into_response()
        }
    }
}

async fn start_fake() -> (String, Fake) {
    let fake = Fake::default();
    let app = Router::new().fallback(api).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{addr}"), fake)
}

fn cloudflare_config(api_base: &str, ttl: Duration, timeout: Duration) -> TurnConfig {
    TurnConfig {
        provider: Provider::Cloudflare {
            key_id: KEY_ID.to_owned(),
            api_token: Secret::new(TOKEN),
            api_base: api_base.to_owned(),
            ttl,
        },
        stun_urls: Vec::new(),
        api_timeout: timeout,
    }
}

#[tokio::test]
async fn request_is_the_documented_one_and_the_answer_is_mapped() {
    let (base, fake) = start_fake().await;
    let servers = cloudflare::fetch(
        &base,
        KEY_ID,
        &Secret::new(TOKEN),
        Duration::from_secs(86_400),
        Duration::from_secs(5),
    )
    .await
    .expect("credentials");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let req = &seen[0];
    assert_eq!(req.method, Method::POST);
    assert_eq!(
        req.path,
        format!("/v1/turn/keys/{KEY_ID}/credentials/generate-ice-servers")
    );
    assert_eq!(
        req.authorization.as_deref(),
        Some("Bearer test-api-token-5f2e")
    );
    assert_eq!(req.content_type.as_deref(), Some("application/json"));
    assert_eq!(req.body, serde_json::json!({"ttl": 86400}));

    assert_eq!(servers.len(), 2);
    assert_eq!(
        servers[0].urls,
        vec![
            "stun:stun.cloudflare.com:3478",
            "stun:stun.cloudflare.com:53"
        ]
    );
    assert_eq!(servers[1].urls.len(), 6);
    assert_eq!(servers[1].username.as_deref(), Some("bc91b63e2b5d759f8eb9"));
    assert_eq!(
        servers[1].credential.as_deref(),
        Some("ebd71f1d3edbc2b0edae")
    );
}

#[tokio::test]
async fn provider_errors_are_typed_and_never_panic() {
    let (base, fake) = start_fake().await;
    let call = |base: String, token: &'static str, timeout_ms: u64| async move {
        cloudflare::fetch(
            &base,
            KEY_ID,
            &Secret::new(token),
            Duration::from_secs(3_600),
            Duration::from_millis(timeout_ms),
        )
        .await
    };
    // A wrong token is refused by the API itself.
    assert_eq!(
        call(base.clone(), "wrong", 5_000).await,
        Err(ProviderError::Unauthorized(401))
    );
    fake.set(Mode::Unauthorized);
    assert_eq!(
        call(base.clone(), TOKEN, 5_000).await,
        Err(ProviderError::Unauthorized(401))
    );
    fake.set(Mode::Malformed);
    let err = call(base.clone(), TOKEN, 5_000)
        .await
        .expect_err("malformed");
    assert!(matches!(err, ProviderError::Malformed(_)), "{err:?}");
    fake.set(Mode::ServerError);
    assert_eq!(
        call(base.clone(), TOKEN, 5_000).await,
        Err(ProviderError::Status(500))
    );
    fake.set(Mode::Slow);
    let started = Instant::now();
    assert_eq!(
        call(base.clone(), TOKEN, 300).await,
        Err(ProviderError::Timeout(Duration::from_millis(300)))
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the timeout did not cut the call short"
    );

    // Nothing listens: a connection error naming the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let err = call(format!("http://127.0.0.1:{port}"), TOKEN, 5_000)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, ProviderError::Connect(m) if m.contains(&format!("127.0.0.1:{port}"))),
        "{err:?}"
    );
    // No error text carries the token.
    for e in [err, ProviderError::Unauthorized(401)] {
        assert!(!e.to_string().contains(TOKEN));
    }
}

#[tokio::test]
async fn service_first_fetch_failure_is_unavailable_with_reason() {
    let (base, fake) = start_fake().await;
    fake.set(Mode::Unauthorized);
    let service = TurnService::start(cloudflare_config(
        &base,
        Duration::from_secs(3_600),
        Duration::from_secs(2),
    ));
    let err = service.ice_servers().await.expect_err("503");
    assert_eq!(err, Unavailable(ProviderError::Unauthorized(401)));
    assert!(err.to_string().contains("refused the API token"), "{err}");
    assert_eq!(service.stats().unavailable.load(Ordering::Relaxed), 1);
    assert_eq!(service.stats().provider_errors.load(Ordering::Relaxed), 1);
    // No Link-header servers either.
    assert_eq!(service.ice_servers_now(), None);
}

#[tokio::test]
async fn service_times_out_on_a_hanging_provider() {
    let (base, fake) = start_fake().await;
    fake.set(Mode::Slow);
    let service = TurnService::start(cloudflare_config(
        &base,
        Duration::from_secs(3_600),
        Duration::from_millis(300),
    ));
    let started = Instant::now();
    let err = service.ice_servers().await.expect_err("timeout");
    assert_eq!(
        err,
        Unavailable(ProviderError::Timeout(Duration::from_millis(300)))
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// Real time, not a virtual clock: the renewal task runs on its own. With a 10 s lifetime it
/// renews at 7.5 s and hands the set out until 9 s.
#[tokio::test]
async fn service_serves_cached_through_an_outage_then_503() {
    let (base, fake) = start_fake().await;
    let started = Instant::now();
    let service = TurnService::start(cloudflare_config(
        &base,
        Duration::from_secs(10),
        Duration::from_secs(2),
    ));
    let first = service.ice_servers().await.expect("first fetch");
    assert_eq!(first[1].username.as_deref(), Some("bc91b63e2b5d759f8eb9"));
    fake.set(Mode::Unauthorized);
    // Cached: no new API call per request.
    for _ in 0..5 {
        assert_eq!(service.ice_servers().await.as_ref(), Ok(&first));
    }
    assert_eq!(fake.seen().len(), 1);

    // Wait for the renewal attempt (due at 7.5 s) to fail.
    while service.stats().provider_errors.load(Ordering::Relaxed) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no renewal attempt"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(7_400),
        "{:?}",
        started.elapsed()
    );
    // The provider fails but the set is still valid: it is served.
    assert_eq!(service.ice_servers().await.as_ref(), Ok(&first));

    // Past 9 s it is no longer handed out: 503 with the provider's reason.
    let until = started + Duration::from_millis(9_300);
    tokio::time::sleep_until(until.into()).await;
    assert_eq!(
        service.ice_servers().await,
        Err(Unavailable(ProviderError::Unauthorized(401)))
    );

    // The provider comes back: the retry (1, 2, 4 s backoff) picks it up.
    fake.set(Mode::Ok);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if service.ice_servers().await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The HTTPS path really does TLS and verifies the certificate: a self-signed one is refused.
#[tokio::test]
async fn https_refuses_an_unknown_certificate() {
    use tokio_rustls::rustls;
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        acceptor.accept(tcp).await.map(|_| ())
    });
    let err = cloudflare::fetch(
        &format!("https://localhost:{port}"),
        KEY_ID,
        &Secret::new(TOKEN),
        Duration::from_secs(60),
        Duration::from_secs(5),
    )
    .await
    .expect_err("self-signed certificate");
    match &err {
        ProviderError::Connect(m) => {
            assert!(m.starts_with("TLS with localhost"), "{m}");
            assert!(m.to_lowercase().contains("certificate"), "{m}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
    assert!(
        server.await.expect("join").is_err(),
        "the handshake must not complete"
    );
}
