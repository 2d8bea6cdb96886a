//! The operator pages, their assets and the live event stream, through the real router with
//! in-process `oneshot` requests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use futures_util::StreamExt;
use r58::http::pages::{HLS_JS_EMBEDDED, HLS_JS_PATH};
use r58::http::{AppState, router};
use sfu::engine::SharedEngine;
use sfu::engine::{Engine, EngineConfig};
use tower::ServiceExt;

const CHROME_WHIP: &str = include_str!("../sfu/testdata/sdp/chrome_whip.sdp");

fn server() -> (Router, SharedEngine) {
    let engine = SharedEngine::new(
        Engine::new(EngineConfig {
            candidates: vec![SocketAddr::from(([192, 0, 2, 1], 8189))],
            ..EngineConfig::default()
        })
        .expect("engine"),
    );
    (
        router(AppState::new(engine.clone(), Vec::new()), &[]),
        engine,
    )
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII"))
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(app: &Router, method: Method, uri: &str, headers: &[(&str, &str)]) -> Resp {
    let mut request = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

async fn get(app: &Router, uri: &str) -> Resp {
    send(app, Method::GET, uri, &[]).await
}

#[tokio::test]
async fn pages_are_html_with_revalidation_and_a_content_security_policy() {
    let (app, _) = server();
    for (uri, script) in [
        ("/", "/static/js/multiview.js"),
        ("/guest_join", "/static/js/guest-join.js"),
        ("/switcher", "/static/js/switcher.js"),
    ] {
        let r = get(&app, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
        assert_eq!(r.header("cache-control"), "no-cache");
        assert_eq!(r.header("x-content-type-options"), "nosniff");
        assert!(
            r.header("content-security-policy")
                .contains("default-src 'self'")
        );
        assert!(r.header("etag").starts_with('"'));
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
        ("/static/favicon.svg", "image/svg+xml"),
    ] {
        let r = get(&app, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.header("content-type"), ty, "{uri}");
        assert!(!r.body.is_empty());
        assert!(r.headers.get("content-security-policy").is_none());
    }
}

#[tokio::test]
async fn a_matching_etag_gets_304_without_a_body_and_head_gets_headers_only() {
    let (app, _) = server();
    let first = get(&app, "/static/js/multiview.js").await;
    let etag = first.header("etag").to_owned();
    let again = send(
        &app,
        Method::GET,
        "/static/js/multiview.js",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), etag);
    let stale = send(&app, Method::GET, "/", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(stale.status, StatusCode::OK);
    assert!(!stale.body.is_empty());
    let head = send(&app, Method::HEAD, "/guest_join", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-type"), "text/html; charset=utf-8");
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
        assert_eq!(r.header("content-type"), "text/javascript; charset=utf-8");
        // The ES module build exports the player class.
        assert!(r.body.len() > 100_000, "{} bytes", r.body.len());
        assert!(r.text().contains("export"), "not an ES module");
    } else {
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.text().contains("npm ci --prefix web"), "{}", r.text());
    }
}

/// Reads server-sent events from a body until `want` returns true for one (or time runs out).
struct Events {
    body: axum::body::BodyDataStream,
    buffer: String,
}

impl Events {
    /// The next event as (name, data).
    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if name.is_empty() && data.is_empty() {
                    continue; // a comment (keepalive)
                }
                return (name, data);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.body.next())
                .await
                .expect("an event within 5 s")
                .expect("the stream goes on")
                .expect("body chunk");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    async fn until(&mut self, name: &str, data_has: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let (n, d) = self.next().await;
            if n == name && d.contains(data_has) {
                return d;
            }
        }
        panic!("no {name} event with {data_has}");
    }
}

async fn post_whip(app: &Router, name: &str) -> String {
    let r = app
        .clone()
        .oneshot(
            Request::post(format!("/whip/{name}"))
                .header("content-type", "application/sdp")
                .body(Body::from(CHROME_WHIP))
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(r.status(), StatusCode::CREATED);
    r.headers()["location"].to_str().expect("ASCII").to_owned()
}

#[tokio::test]
async fn events_start_with_a_snapshot_then_follow_streams_coming_and_going() {
    let (app, engine) = server();
    post_whip(&app, "early").await;
    let response = app
        .clone()
        .oneshot(
            Request::get("/api/events")
                .body(Body::empty())
                .expect("req"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut events = Events {
        body: response.into_body().into_data_stream(),
        buffer: String::new(),
    };
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

    let location = post_whip(&app, "guest7").await;
    let added: serde_json::Value =
        serde_json::from_str(&events.until("added", "\"guest7\"").await).expect("JSON");
    assert_eq!(added["viewers"], 0);

    let deleted = app
        .clone()
        .oneshot(
            Request::delete(location.as_str())
                .body(Body::empty())
                .expect("req"),
        )
        .await
        .expect("infallible");
    assert_eq!(deleted.status(), StatusCode::OK);
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
    let open = || async {
        app.clone()
            .oneshot(
                Request::get("/api/events")
                    .body(Body::empty())
                    .expect("req"),
            )
            .await
            .expect("infallible")
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
