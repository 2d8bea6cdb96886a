//! `GET /api/turn-credentials` and the WHIP/WHEP `Link: rel="ice-server"` headers, against the
//! real router with in-process `oneshot` requests.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{
    CHROME_WHEP, CHROME_WHIP, Resp, answering_config, from_peer, get, new_request, post_sdp,
    request, send, shared_engine,
};
use r58::config::{AuthRule, Turn};
use r58::http::turn::TurnEndpoint;
use r58::http::{AppState, router};
use sfu::turn::{Provider, Secret, TurnConfig, TurnService};

const SECRET: &str = "coturn-shared-secret-xyz";
const STUN: &str = "stun:turn.example.org:3478";
const TURN_UDP: &str = "turn:turn.example.org:3478?transport=udp";
const TURN_TCP: &str = "turn:turn.example.org:3478?transport=tcp";

fn coturn_settings() -> Turn {
    Turn {
        service: TurnConfig {
            provider: Provider::Coturn {
                urls: vec![TURN_UDP.into(), TURN_TCP.into()],
                secret: Secret::new(SECRET),
                user: "r58".into(),
                ttl: Duration::from_secs(3_600),
            },
            stun_urls: vec![STUN.into()],
            ..TurnConfig::default()
        },
        ..Turn::default()
    }
}

fn build(settings: Turn, auth: Vec<AuthRule>) -> Router {
    let engine = shared_engine(answering_config());
    let turn = TurnEndpoint::new(TurnService::start(settings.service.clone()), settings);
    router(
        AppState::new(engine, auth).with_turn(turn),
        &["*".to_owned()],
    )
}

/// `GET /api/turn-credentials` from `peer` with `headers`.
async fn credentials(app: &Router, headers: &[(&str, &str)], peer: &str) -> Resp {
    let peer: SocketAddr = peer.parse().expect("peer address");
    let request = new_request(Method::GET, "/api/turn-credentials", headers, Body::empty());
    send(app, from_peer(request, peer)).await
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn coturn_credentials_have_the_rtcpeerconnection_shape() {
    let app = build(coturn_settings(), Vec::new());
    let before = now_unix();
    let r = credentials(&app, &[], "198.51.100.7:5000").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let json = r.json();
    let servers = json["iceServers"].as_array().expect("iceServers array");
    assert_eq!(servers.len(), 2, "{json}");
    assert_eq!(servers[0], serde_json::json!({ "urls": [STUN] }));
    assert_eq!(servers[1]["urls"], serde_json::json!([TURN_UDP, TURN_TCP]));
    let username = servers[1]["username"].as_str().expect("username");
    let (expiry, user) = username.split_once(':').expect("<expiry>:<user>");
    assert_eq!(user, "r58");
    let expiry: u64 = expiry.parse().expect("unix time");
    assert!(
        (before + 3_600..=now_unix() + 3_600).contains(&expiry),
        "expiry {expiry} is not now + ttl"
    );
    assert_eq!(
        servers[1]["credential"].as_str(),
        Some(sfu::turn::rest::password(SECRET.as_bytes(), username).as_str())
    );
    assert!(!r.text().contains(SECRET));
}

#[tokio::test]
async fn provider_none_is_stun_only() {
    let mut settings = Turn::default();
    let empty = build(settings.clone(), Vec::new());
    let r = credentials(&empty, &[], "198.51.100.7:5000").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), serde_json::json!({ "iceServers": [] }));
    settings.service.stun_urls = vec![STUN.into()];
    let stun = build(settings, Vec::new());
    let r = credentials(&stun, &[], "198.51.100.7:5000").await;
    assert_eq!(
        r.json(),
        serde_json::json!({ "iceServers": [{ "urls": [STUN] }] })
    );
}

#[tokio::test]
async fn foreign_origins_are_refused() {
    let same_host = build(coturn_settings(), Vec::new());
    let mut settings = coturn_settings();
    settings.allowed_origins = vec!["https://pages.example".into()];
    let listed = build(settings, Vec::new());
    let peer = "198.51.100.7:5000";
    let host = ("host", "recorder.example.org");
    for (app, origin, expected) in [
        (&same_host, "https://evil.example", StatusCode::FORBIDDEN),
        // Pages of the same host (through a tunnel that terminates TLS: the scheme may differ).
        (&same_host, "https://recorder.example.org", StatusCode::OK),
        (&listed, "https://pages.example", StatusCode::OK),
        (&listed, "https://other.example", StatusCode::FORBIDDEN),
    ] {
        let r = credentials(app, &[host, ("origin", origin)], peer).await;
        assert_eq!(r.status, expected, "{origin}: {r:?}");
        if expected == StatusCode::FORBIDDEN {
            assert!(r.text().contains("origin"), "{r:?}");
        }
        assert!(!r.text().contains(SECRET));
    }
    // After refusals the endpoint still serves.
    assert_eq!(credentials(&listed, &[], peer).await.status, StatusCode::OK);
}

#[tokio::test]
async fn token_from_turn_table_or_auth_rule() {
    let mut settings = coturn_settings();
    settings.token = Some(Secret::new("endpoint-token"));
    let app_token = build(settings, Vec::new());
    let peer = "198.51.100.7:5000";
    for bad in [
        vec![],
        vec![("authorization", "Bearer nope")],
        vec![("authorization", "Basic endpoint-token")],
    ] {
        let r = credentials(&app_token, &bad, peer).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad:?}: {r:?}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let r = credentials(
        &app_token,
        &[("authorization", "Bearer endpoint-token")],
        peer,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    let rule = AuthRule {
        path: "/api/*".into(),
        token: "api-token".into(),
    };
    let app_rule = build(coturn_settings(), vec![rule]);
    assert_eq!(
        credentials(&app_rule, &[], peer).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = credentials(&app_rule, &[("authorization", "bearer api-token")], peer).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn rate_limit_per_client_ip_answers_429_with_retry_after() {
    let mut settings = coturn_settings();
    settings.rate_limit_per_minute = 2;
    settings.rate_limit_burst = 2;
    let app = build(settings, Vec::new());
    let a = "203.0.113.5:40000";
    for _ in 0..2 {
        assert_eq!(credentials(&app, &[], a).await.status, StatusCode::OK);
    }
    let r = credentials(&app, &[], a).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((29..=30).contains(&retry), "one request per 30 s: {retry}");
    let tunnel = "127.0.0.1:50000";
    for (forwarded_for, peer, expected) in [
        // Another port of the same address is the same client; another address is not.
        (None, "203.0.113.5:40001", StatusCode::TOO_MANY_REQUESTS),
        (None, "203.0.113.6:40000", StatusCode::OK),
        // Behind the local tunnel (a trusted proxy) clients are told apart by X-Forwarded-For...
        (Some("192.0.2.10"), tunnel, StatusCode::OK),
        (Some("192.0.2.10"), tunnel, StatusCode::OK),
        (Some("192.0.2.10"), tunnel, StatusCode::TOO_MANY_REQUESTS),
        (Some("192.0.2.11"), tunnel, StatusCode::OK),
        // ...but an untrusted peer cannot dodge the limit by forging it.
        (Some("192.0.2.99"), a, StatusCode::TOO_MANY_REQUESTS),
    ] {
        let headers = Vec::from_iter(forwarded_for.map(|ip| ("x-forwarded-for", ip)));
        let r = credentials(&app, &headers, peer).await;
        assert_eq!(r.status, expected, "{forwarded_for:?} from {peer}: {r:?}");
    }

    let metrics = get(&app, "/metrics").await;
    let metrics = metrics.text();
    assert!(
        metrics.contains("r58_turn_credentials_rate_limited_total{provider=\"coturn\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn failing_provider_is_503_with_reason_and_counted() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let settings = Turn {
        service: TurnConfig {
            provider: Provider::Cloudflare {
                key_id: "key".into(),
                api_token: Secret::new("cf-api-token-abc"),
                api_base: format!("http://127.0.0.1:{port}"),
                ttl: Duration::from_secs(3_600),
            },
            stun_urls: Vec::new(),
            api_timeout: Duration::from_secs(2),
        },
        ..Turn::default()
    };
    let app = build(settings, Vec::new());
    let r = credentials(&app, &[], "198.51.100.7:5000").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    assert!(
        r.text()
            .starts_with("TURN credentials are unavailable: cannot reach the TURN provider"),
        "{r:?}"
    );
    assert!(r.header("retry-after").is_some());
    // WHIP still works without the Link headers it cannot fill.
    let created = post_sdp(&app, "/whip/nolink", CHROME_WHIP).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert!(created.links().is_empty(), "{created:?}");

    let metrics = get(&app, "/metrics").await;
    let metrics = metrics.text();
    assert!(
        metrics.contains("r58_turn_credentials_unavailable_total{provider=\"cloudflare\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("r58_turn_provider_errors_total{provider=\"cloudflare\"} 0"),
        "{metrics}"
    );
    assert!(!metrics.contains("cf-api-token-abc"));
}

#[tokio::test]
async fn whip_and_whep_201_carry_link_ice_servers_and_preflights_do_not() {
    let app = build(coturn_settings(), Vec::new());
    let sdp = [
        ("content-type", "application/sdp"),
        ("origin", "https://app.example"),
    ];
    let published = request(&app, Method::POST, "/whip/linked", &sdp, CHROME_WHIP).await;
    assert_eq!(published.status, StatusCode::CREATED, "{published:?}");
    let played = request(&app, Method::POST, "/whep/linked", &sdp, CHROME_WHEP).await;
    assert_eq!(played.status, StatusCode::CREATED, "{played:?}");
    for r in [&published, &played] {
        let links = r.links();
        assert_eq!(links.len(), 3, "{links:?}");
        assert_eq!(links[0], format!("<{STUN}>; rel=\"ice-server\""));
        for (link, url) in links[1..].iter().zip([TURN_UDP, TURN_TCP]) {
            let prefix = format!("<{url}>; rel=\"ice-server\"; username=\"");
            assert!(link.starts_with(&prefix), "{link}");
            let rest = &link[prefix.len()..];
            let (username, rest) = rest.split_once('"').expect("username");
            let credential = sfu::turn::rest::password(SECRET.as_bytes(), username);
            assert_eq!(
                rest,
                format!("; credential=\"{credential}\"; credential-type=\"password\""),
            );
            assert!(username.ends_with(":r58"), "{username}");
        }
        // Browsers may read them (CORS exposes Link).
        let exposed = r
            .header("access-control-expose-headers")
            .unwrap_or_default();
        assert!(exposed.to_ascii_lowercase().contains("link"), "{r:?}");
    }
    // Preflights and plain OPTIONS never carry credentials.
    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
    ];
    for uri in ["/whip/linked", "/whep/linked"] {
        let r = request(&app, Method::OPTIONS, uri, &preflight, Body::empty()).await;
        assert!(r.status.is_success(), "{r:?}");
        assert!(r.links().is_empty(), "Link on a preflight: {r:?}");
        let r = request(&app, Method::OPTIONS, uri, &[], Body::empty()).await;
        assert!(r.status.is_success(), "{r:?}");
        assert!(r.links().is_empty(), "Link on OPTIONS: {r:?}");
    }
    // Nor do refused offers.
    let refused = request(
        &app,
        Method::POST,
        "/whip/linked2",
        &[("content-type", "text/plain")],
        CHROME_WHIP,
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(refused.links().is_empty());

    // link_headers = false turns them off.
    let mut quiet = coturn_settings();
    quiet.link_headers = false;
    let app = build(quiet, Vec::new());
    let r = request(&app, Method::POST, "/whip/quiet", &sdp, CHROME_WHIP).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.links().is_empty(), "{r:?}");
}
