//! The HTTP side of `[tls] auto` through the real router: `/ca.crt` with and without a local
//! CA, and the redirect of the pages that need a secure origin to the HTTPS port for browsers
//! that are not on this box (docs/lan.md). The HTTPS listener itself and a browser trusting the
//! CA: tests/e2e/lan_https.test.mjs.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{new_request, send, shared_engine};
use r58::http::lan::{LanHttps, redirect_to_https};
use r58::http::{AppState, router};
use sfu::engine::EngineConfig;

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

fn app(lan: bool) -> axum::Router {
    let state = AppState::new(shared_engine(EngineConfig::default()), Vec::new());
    let state = if lan {
        state.with_lan_https(LanHttps {
            ca_pem: CA.into(),
            port: 8443,
        })
    } else {
        state
    };
    redirect_to_https(router(state, &[]), 8443)
}

async fn get_from(app: &axum::Router, uri: &str, host: &str, peer: [u8; 4]) -> common::Resp {
    let request = new_request(Method::GET, uri, &[("host", host)], Body::empty());
    send(
        app,
        common::from_peer(request, SocketAddr::from((peer, 40000))),
    )
    .await
}

#[tokio::test]
async fn the_ca_is_handed_out_when_there_is_one() {
    let r = get_from(&app(true), "/ca.crt", "r58.local:8000", [192, 168, 1, 7]).await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.text(), CA);
    assert_eq!(
        r.expect_header("content-type"),
        "application/x-x509-ca-cert"
    );
    let r = get_from(&app(false), "/ca.crt", "r58.local:8000", [192, 168, 1, 7]).await;
    r.assert_status(StatusCode::NOT_FOUND);
    r.assert_one_line_reason();
}

#[tokio::test]
async fn lan_browsers_are_sent_to_https_for_the_guest_page_only() {
    let app = app(true);
    let r = get_from(
        &app,
        "/guest_join?name=ann",
        "192.168.1.58:8000",
        [192, 168, 1, 7],
    )
    .await;
    r.assert_status(StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.expect_header("location"),
        "https://192.168.1.58:8443/guest_join?name=ann"
    );
    let r = get_from(&app, "/guest_join", "r58.local:8000", [192, 168, 1, 7]).await;
    assert_eq!(
        r.expect_header("location"),
        "https://r58.local:8443/guest_join"
    );
    let r = get_from(&app, "/guest_join", "[fd00::58]:8000", [192, 168, 1, 7]).await;
    assert_eq!(
        r.expect_header("location"),
        "https://[fd00::58]:8443/guest_join"
    );
    // On the box itself http://localhost is a secure origin: no redirect.
    let r = get_from(&app, "/guest_join", "127.0.0.1:8000", [127, 0, 0, 1]).await;
    r.assert_status(StatusCode::OK);
    // Pages that use no camera stay on HTTP.
    for path in ["/", "/switcher", "/trust", "/healthz"] {
        let r = get_from(&app, path, "192.168.1.58:8000", [192, 168, 1, 7]).await;
        r.assert_status(StatusCode::OK);
    }
}
