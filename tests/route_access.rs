//! Every route of the server and who may call it, in one list, and each protection tried
//! through the real router: a request from the internet without credentials is refused by
//! every protected route and let through by every open one; with the right token it passes.
//!
//! A new route is declared with its access in `src/http` ([`r58::http::access::Routes`]); this
//! test then fails until the route is added to `EXPECTED` below, so its protection is reviewed.

mod common;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{from_peer, new_request, respond, shared_engine};
use r58::config::{Admin, AdminOpen, AuthRule};
use r58::http::guard::Guard;
use r58::http::{Access, AppState, router, routes};
use sfu::engine::EngineConfig;
use sfu::turn::Secret;

/// Every route: method, path pattern, access.
const EXPECTED: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Open),
    ("GET", "/api/streams", Access::View),
    ("GET", "/metrics", Access::Admin),
    ("GET", "/api/turn-credentials", Access::TurnCredentials),
    ("POST", "/whip/{name}", Access::PublishSession),
    ("POST", "/whep/{name}", Access::ViewSession),
    ("OPTIONS", "/whip/{name}", Access::Open),
    ("GET", "/whip/{name}", Access::Open),
    ("OPTIONS", "/whep/{name}", Access::Open),
    ("GET", "/whep/{name}", Access::Open),
    ("GET", "/whip/{name}/{session}", Access::Open),
    ("PATCH", "/whip/{name}/{session}", Access::PathToken),
    ("DELETE", "/whip/{name}/{session}", Access::PathToken),
    ("OPTIONS", "/whip/{name}/{session}", Access::Open),
    ("GET", "/whep/{name}/{session}", Access::Open),
    ("PATCH", "/whep/{name}/{session}", Access::PathToken),
    ("DELETE", "/whep/{name}/{session}", Access::PathToken),
    ("OPTIONS", "/whep/{name}/{session}", Access::Open),
    ("GET", "/hls/{name}/index.m3u8", Access::HlsEntry),
    ("GET", "/hls/{name}/{instance}/{file}", Access::View),
    ("GET", "/hls/g/{grant}/{name}/index.m3u8", Access::HlsGrant),
    (
        "GET",
        "/hls/g/{grant}/{name}/{instance}/{file}",
        Access::HlsGrant,
    ),
    ("GET", "/api/switcher", Access::PathToken),
    ("POST", "/api/switcher/program", Access::AdminAndPathToken),
    ("POST", "/api/switcher/preview", Access::AdminAndPathToken),
    ("GET", "/api/switcher/audio", Access::PathToken),
    ("POST", "/api/switcher/audio", Access::AdminAndPathToken),
    ("POST", "/api/switcher/talkback", Access::AdminAndPathToken),
    ("GET", "/", Access::ViewPage),
    ("GET", "/guest_join", Access::PublishPage),
    ("GET", "/switcher", Access::ViewPage),
    ("GET", "/recordings", Access::ViewPage),
    ("GET", "/trust", Access::Open),
    ("GET", "/static/{*path}", Access::Open),
    ("GET", "/api/events", Access::View),
    ("GET", "/api/recordings", Access::Admin),
    ("POST", "/api/recordings/start", Access::Admin),
    ("POST", "/api/recordings/stop", Access::Admin),
    (
        "GET",
        "/api/recordings/files/{stream}/{file}",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/recordings/files/{stream}/{file}",
        Access::Admin,
    ),
    ("POST", "/api/config/reload", Access::Admin),
    ("GET", "/ca.crt", Access::Open),
    ("GET", "/login", Access::Open),
    ("GET", "/api/session", Access::Open),
    ("POST", "/api/login", Access::SignIn),
    ("POST", "/api/logout", Access::SignIn),
    ("GET", "/api/invites", Access::Admin),
    ("POST", "/api/invites", Access::Admin),
    ("DELETE", "/api/invites/{id}", Access::Admin),
    ("GET", "/api/invite", Access::Open),
];

const PATH_TOKEN: &str = "v1ewer-token";
const ADMIN_TOKEN: &str = "adm1n-token";

/// State whose every path is covered by an `[[auth]]` rule and whose admin gate wants its token
/// from everyone, so every protection is in force.
fn locked_state() -> AppState {
    let engine = shared_engine(EngineConfig::default());
    let rules = vec![AuthRule {
        path: "/*".into(),
        token: PATH_TOKEN.into(),
    }];
    let admin = Admin {
        token: Some(Secret::new(ADMIN_TOKEN)),
        allow_without_token: AdminOpen::None,
    };
    AppState::new(engine, rules).with_guard(Guard::new(
        Default::default(),
        admin,
        Default::default(),
    ))
}

/// A concrete path for a pattern.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{name}", "cam0")
        .replace("{session}", "0123456789abcdef")
        .replace("{stream}", "cam0")
        .replace("{instance}", "0")
        .replace("{file}", "stream.m3u8")
        .replace("{id}", "0011223344556677")
        .replace("{grant}", "1-00000000000000000000000000000000")
        .replace("{*path}", "css/r58.css")
}

/// The status of `method path` from an internet address, with `token` as bearer if any.
async fn status(app: &Router, method: &str, path: &str, token: Option<&str>) -> StatusCode {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut headers = vec![("origin", "http://localhost"), ("host", "localhost")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let request = new_request(method, path, &headers, Body::empty());
    let internet = SocketAddr::from(([203, 0, 113, 7], 40000));
    // The body is not read: `/api/events` never ends it.
    respond(app, from_peer(request, internet)).await.status()
}

#[test]
fn every_route_is_declared_with_its_access() {
    let state = locked_state();
    let declared: Vec<(String, &str, Access)> = routes(&state)
        .table()
        .iter()
        .map(|r| (r.method.clone(), r.path, r.access))
        .collect();
    let expected: Vec<(String, &str, Access)> = EXPECTED
        .iter()
        .map(|&(m, p, a)| (m.to_owned(), p, a))
        .collect();
    assert_eq!(
        declared, expected,
        "the routes and their access changed: review the protection and update EXPECTED"
    );
    // Whatever changes state under /api is for operators only (signing in and out changes
    // only the caller's own session).
    for (method, path, access) in &declared {
        if path.starts_with("/api/") && method != "GET" && *access != Access::SignIn {
            assert!(
                matches!(access, Access::Admin | Access::AdminAndPathToken),
                "{method} {path} changes state but is {access:?}"
            );
        }
    }
}

#[tokio::test]
async fn each_protection_refuses_strangers_and_admits_credentials() {
    let state = locked_state();
    let app = router(state, &[]);
    let refused = [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN];
    for &(method, pattern, access) in EXPECTED {
        let path = concrete(pattern);
        let anonymous = status(&app, method, &path, None).await;
        let with_path_token = status(&app, method, &path, Some(PATH_TOKEN)).await;
        let with_admin_token = status(&app, method, &path, Some(ADMIN_TOKEN)).await;
        let what = format!("{method} {path} ({access:?})");
        match access {
            Access::Open | Access::SignIn => {
                assert!(!refused.contains(&anonymous), "{what}: {anonymous}");
            }
            // From the internet, viewing needs a sign-in or a token that covers the path (the
            // path's or the admin's); a page sends the browser to the sign-in page instead.
            Access::View
            | Access::HlsEntry
            | Access::HlsGrant
            | Access::ViewPage
            | Access::PublishPage => {
                if matches!(access, Access::View | Access::HlsEntry | Access::HlsGrant) {
                    assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{what}");
                } else {
                    assert_eq!(anonymous, StatusCode::SEE_OTHER, "{what}");
                }
                for (token, status) in [("path", with_path_token), ("admin", with_admin_token)] {
                    assert!(
                        !refused.contains(&status) && status != StatusCode::SEE_OTHER,
                        "{what} with the {token} token: {status}"
                    );
                }
            }
            Access::PathToken
            | Access::ViewSession
            | Access::PublishSession
            | Access::TurnCredentials => {
                assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{what}");
                assert!(
                    !refused.contains(&with_path_token),
                    "{what} with the path's token: {with_path_token}"
                );
                assert_eq!(with_admin_token, StatusCode::UNAUTHORIZED, "{what}");
            }
            Access::Admin => {
                assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(with_path_token, StatusCode::UNAUTHORIZED, "{what}");
                assert!(
                    !refused.contains(&with_admin_token),
                    "{what} with the admin token: {with_admin_token}"
                );
            }
            Access::AdminAndPathToken => {
                assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{what}");
                // The path's token alone does not pass the admin gate from the internet.
                assert_eq!(with_path_token, StatusCode::UNAUTHORIZED, "{what}");
                assert!(
                    !refused.contains(&with_admin_token),
                    "{what} with the admin token: {with_admin_token}"
                );
            }
        }
    }
}
