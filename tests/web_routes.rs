//! The operator pages, their assets and the live event stream, through the real router with
//! in-process `oneshot` requests.

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{
    Events, answering_config, get, new_request, publish, request, respond, shared_engine,
};
use r58::http::pages::{HLS_JS_EMBEDDED, HLS_JS_PATH};
use r58::http::{AppState, router};
use sfu::engine::SharedEngine;

fn server() -> (Router, SharedEngine) {
    let engine = shared_engine(answering_config());
    (
        router(AppState::new(engine.clone(), Vec::new()), &[]),
        engine,
    )
}

#[tokio::test]
async fn pages_are_html_with_revalidation_and_a_content_security_policy() {
    let (app, _) = server();
    for (uri, script) in [
        ("/", "/static/js/multiview.js"),
        ("/guest_join", "/static/js/guest-join.js"),
        ("/switcher", "/static/js/switcher.js"),
        ("/recordings", "/static/js/recordings.js"),
    ] {
        let r = get(&app, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.expect_header("content-type"), "text/html; charset=utf-8");
        assert_eq!(r.expect_header("cache-control"), "no-cache");
        assert_eq!(r.expect_header("x-content-type-options"), "nosniff");
        assert!(
            r.expect_header("content-security-policy")
                .contains("default-src 'self'")
        );
        assert!(r.expect_header("etag").starts_with('"'));
        assert!(r.text().contains(script), "{uri} does not load {script}");
    }
}

#[tokio::test]
async fn assets_have_their_content_types() {
    let (app, _) = server();
    for (uri, ty) in [
        ("/static/js/whip.js", "text/javascript; charset=utf-8"),
        ("/static/js/whep.js", "text/javascript; charset=utf-8"),
        ("/static/css/r58.css", "text/css; charset=utf-8"),
        ("/static/css/switcher.css", "text/css; charset=utf-8"),
        ("/static/js/switcher.js", "text/javascript; charset=utf-8"),
        ("/static/js/recordings.js", "text/javascript; charset=utf-8"),
        ("/static/css/recordings.css", "text/css; charset=utf-8"),
        ("/static/favicon.svg", "image/svg+xml"),
    ] {
        let r = get(&app, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.expect_header("content-type"), ty, "{uri}");
        assert!(!r.body.is_empty());
        assert!(r.headers.get("content-security-policy").is_none());
    }
}

#[tokio::test]
async fn a_matching_etag_gets_304_without_a_body_and_head_gets_headers_only() {
    let (app, _) = server();
    let first = get(&app, "/static/js/multiview.js").await;
    let etag = first.expect_header("etag").to_owned();
    let again = request(
        &app,
        Method::GET,
        "/static/js/multiview.js",
        &[("if-none-match", &etag)],
        Body::empty(),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.expect_header("etag"), etag);
    let stale = request(
        &app,
        Method::GET,
        "/",
        &[("if-none-match", "\"other\"")],
        Body::empty(),
    )
    .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert!(!stale.body.is_empty());
    let head = request(&app, Method::HEAD, "/guest_join", &[], Body::empty()).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(
        head.expect_header("content-type"),
        "text/html; charset=utf-8"
    );
}

#[tokio::test]
async fn paths_outside_the_embedded_files_are_404() {
    let (app, _) = server();
    for uri in [
        "/static/../Cargo.toml",
        "/static/js/../../build.rs",
        "/static/%2e%2e/Cargo.toml",
        "/static/js/%2e%2e/%2e%2e/src/main.rs",
        "/static//etc/passwd",
        "/static/js/..%5c..%5cbuild.rs",
        "/static/js/whip.js%00.css",
        "/static/./js/whip.js",
        "/static/package.json",
        "/static/nope.js",
        "/index.html",
        "/static/",
    ] {
        let r = get(&app, uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.text());
    }
    // And the next good request is still served.
    assert_eq!(get(&app, "/static/js/whip.js").await.status, StatusCode::OK);
}

#[tokio::test]
async fn hls_js_is_served_when_built_in_and_explained_when_not() {
    let (app, _) = server();
    let r = get(&app, &format!("/{HLS_JS_PATH}")).await;
    if HLS_JS_EMBEDDED {
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.expect_header("content-type"),
            "text/javascript; charset=utf-8"
        );
        // The ES module build exports the player class.
        assert!(r.body.len() > 100_000, "{} bytes", r.body.len());
        assert!(r.text().contains("export"), "not an ES module");
    } else {
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.text().contains("npm ci --prefix web"), "{}", r.text());
    }
}

#[tokio::test]
async fn events_start_with_a_snapshot_then_follow_streams_coming_and_going() {
    let (app, engine) = server();
    publish(&app, "early").await;
    let mut events = Events::open(&app, &[]).await;
    assert_eq!(events.headers["content-type"], "text/event-stream");
    assert_eq!(events.headers["cache-control"], "no-cache");
    let (name, data) = events.next().await;
    assert_eq!(name, "snapshot");
    let snapshot: serde_json::Value = serde_json::from_str(&data).expect("JSON");
    assert_eq!(snapshot[0]["name"], "early");
    assert_eq!(snapshot[0]["source"], "whip");
    assert_eq!(snapshot[0]["online"], true);
    assert!(
        snapshot[0]["video"]["codec"].is_string(),
        "{snapshot}: the fixture publishes video"
    );

    let location = publish(&app, "guest7").await.location();
    let added: serde_json::Value =
        serde_json::from_str(&events.until("added", "\"guest7\"").await).expect("JSON");
    assert_eq!(added["viewers"], 0);

    let deleted = request(&app, Method::DELETE, &location, &[], Body::empty()).await;
    assert_eq!(deleted.status, StatusCode::OK);
    // The stream waits briefly for a successor, offline, then goes.
    let offline: serde_json::Value =
        serde_json::from_str(&events.until("updated", "\"guest7\"").await).expect("JSON");
    assert_eq!(offline["online"], false);
    engine
        .lock()
        .handle_timeout(Instant::now() + Duration::from_secs(3));
    let removed = events.until("removed", "guest7").await;
    assert_eq!(removed, r#"{"name":"guest7"}"#);
}

#[tokio::test]
async fn event_streams_beyond_the_limit_get_503_until_one_closes() {
    let (app, _) = server();
    // The responses are held open (their bodies never end), not read.
    let open = || {
        respond(
            &app,
            new_request(Method::GET, "/api/events", &[], Body::empty()),
        )
    };
    let mut held = Vec::new();
    let refused = loop {
        let r = open().await;
        if r.status() != StatusCode::OK {
            break r;
        }
        held.push(r);
        assert!(held.len() <= 64, "more than 64 event streams open at once");
    };
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "5");
    drop(held.pop());
    assert_eq!(open().await.status(), StatusCode::OK);
}
