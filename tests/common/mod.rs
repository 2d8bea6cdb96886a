//! Helpers shared by the binary-level suites that drive the real router with in-process
//! `oneshot` requests (hls_routes, switcher_events, switcher_routes, turn_http, web_routes,
//! route_access, http_conformance): the Chromium offers, an engine, requests and their read
//! responses, the `/api/events` reader, and test cameras that are live before the test goes on.
//!
//! Each suite includes it with `mod common;` (`#[path = "../common/mod.rs"] mod common;` from a
//! suite in its own folder). Not every suite uses everything, hence the `allow(dead_code)`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, BodyDataStream};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use futures_util::StreamExt;
use serde_json::Value;
use sfu::capture::{CameraHandle, CameraSettings, start_test_cameras};
use sfu::engine::{Engine, EngineConfig, SharedEngine};
use tower::ServiceExt;

/// Chromium's WHIP offer (H.264 and Opus, sendonly).
pub const CHROME_WHIP: &str = include_str!("../../sfu/testdata/sdp/chrome_whip.sdp");
/// Chromium's WHEP offer (recvonly).
pub const CHROME_WHEP: &str = include_str!("../../sfu/testdata/sdp/chrome_whep.sdp");

// ---------------------------------------------------------------------------------------------
// The engine

/// An engine configuration with one host candidate (a documentation address), so WHIP and WHEP
/// offers get complete answers.
pub fn answering_config() -> EngineConfig {
    EngineConfig {
        candidates: vec![SocketAddr::from(([192, 0, 2, 1], 8189))],
        ..EngineConfig::default()
    }
}

/// A shared engine with `config`.
pub fn shared_engine(config: EngineConfig) -> SharedEngine {
    SharedEngine::new(Engine::new(config).expect("engine"))
}

/// Whether stream `name` has a publisher.
pub fn online(engine: &SharedEngine, name: &str) -> bool {
    engine
        .lock()
        .hub()
        .get(name)
        .is_some_and(|s| s.publisher().is_some())
}

/// Polls `check` every 10 ms until it holds; fails after 10 s.
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts test cameras and waits until each stream is online (the encoder takes a moment).
/// Dropping a handle stops its camera.
pub async fn start_cameras(engine: &SharedEngine, cameras: &[CameraSettings]) -> Vec<CameraHandle> {
    let handles = start_test_cameras(engine, cameras).expect("cameras");
    for camera in cameras {
        let name = &camera.name;
        wait_until(&format!("{name} online"), || online(engine, name)).await;
    }
    handles
}

// ---------------------------------------------------------------------------------------------
// Requests

/// A response with its body read.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Status, headers and the body as text, for assertion messages.
impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        write!(f, "{} {:?} {body:?}", self.status, self.headers)
    }
}

impl Resp {
    /// The first value of header `name`, if there is one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    /// The value of header `name`, which must be there.
    #[track_caller]
    pub fn expect_header(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    /// Every `Link` header.
    pub fn links(&self) -> Vec<String> {
        self.headers
            .get_all("link")
            .iter()
            .map(|v| v.to_str().expect("ASCII header").to_owned())
            .collect()
    }

    pub fn etag(&self) -> String {
        self.header("etag").expect("ETag header").to_owned()
    }

    pub fn location(&self) -> String {
        self.header("location").expect("Location header").to_owned()
    }

    /// The body, which must be UTF-8.
    #[track_caller]
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.text()).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    #[track_caller]
    pub fn assert_status(&self, expected: StatusCode) -> &Self {
        assert_eq!(
            self.status, expected,
            "unexpected status; response: {self:?}"
        );
        self
    }

    /// A 4xx/5xx body must be a single non-empty line explaining why.
    #[track_caller]
    pub fn assert_one_line_reason(&self) {
        let reason = self.text().trim_end_matches('\n');
        assert!(!reason.trim().is_empty(), "empty reason: {self:?}");
        assert!(!reason.contains('\n'), "reason is not one line: {self:?}");
    }
}

/// `method uri` with `headers` and `body`.
pub fn new_request(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.into()).expect("request")
}

/// `request` as if it came from `peer` (what the listener tells the handlers).
pub fn from_peer(mut request: Request<Body>, peer: SocketAddr) -> Request<Body> {
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// The router's response, its body not read yet (an event stream's never ends).
pub async fn respond(app: &Router, request: Request<Body>) -> Response<Body> {
    app.clone()
        .oneshot(request)
        .await
        .expect("the router is infallible")
}

/// The router's response with its body read.
pub async fn send(app: &Router, request: Request<Body>) -> Resp {
    let response = respond(app, request).await;
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

/// `method uri` with `headers` and `body`, answered.
pub async fn request(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Resp {
    send(app, new_request(method, uri, headers, body)).await
}

pub async fn get(app: &Router, uri: &str) -> Resp {
    request(app, Method::GET, uri, &[], Body::empty()).await
}

/// POSTs `json` (`application/json`) with `headers`.
pub async fn post_json(app: &Router, uri: &str, json: &str, headers: &[(&str, &str)]) -> Resp {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    request(app, Method::POST, uri, &all, json.to_owned()).await
}

/// POSTs `offer` (`application/sdp`) to a WHIP or WHEP endpoint.
pub async fn post_sdp(app: &Router, uri: &str, offer: &str) -> Resp {
    request(
        app,
        Method::POST,
        uri,
        &[("content-type", "application/sdp")],
        offer.to_owned(),
    )
    .await
}

/// Publishes `name` over WHIP with the Chromium offer and checks it was created.
pub async fn publish(app: &Router, name: &str) -> Resp {
    let r = post_sdp(app, &format!("/whip/{name}"), CHROME_WHIP).await;
    r.assert_status(StatusCode::CREATED);
    r
}

/// Sets the switcher's `bus` (`program`, `preview`, `audio`) to `source` (`null` for none).
pub async fn switch(app: &Router, bus: &str, source: Option<&str>) -> Resp {
    switch_with(app, bus, source, &[]).await
}

/// [`switch`] with extra request headers.
pub async fn switch_with(
    app: &Router,
    bus: &str,
    source: Option<&str>,
    headers: &[(&str, &str)],
) -> Resp {
    let json = serde_json::json!({ "source": source }).to_string();
    post_json(app, &format!("/api/switcher/{bus}"), &json, headers).await
}

/// The `name` of each object in a JSON array (the stream list, the switcher's sources).
pub fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|s| s["name"].as_str().expect("a name"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Server-sent events

/// Reads the server-sent events of `GET /api/events`.
pub struct Events {
    /// The response's headers.
    pub headers: HeaderMap,
    body: BodyDataStream,
    buffer: String,
}

impl Events {
    /// Opens `/api/events` with `headers`; the answer must be 200.
    pub async fn open(app: &Router, headers: &[(&str, &str)]) -> Self {
        let response = respond(
            app,
            new_request(Method::GET, "/api/events", headers, Body::empty()),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        Self {
            headers: response.headers().clone(),
            body: response.into_body().into_data_stream(),
            buffer: String::new(),
        }
    }

    /// The next event as (name, data), or `None` if none comes within `wait`. Keepalive
    /// comments are skipped.
    pub async fn next_within(&mut self, wait: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + wait;
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
                    continue; // a keepalive comment
                }
                return Some((name, data));
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()?
                .expect("the stream goes on")
                .expect("body chunk");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next event as (name, data), which must come within 5 s.
    pub async fn next(&mut self) -> (String, String) {
        self.next_within(Duration::from_secs(5))
            .await
            .expect("an event within 5 s")
    }

    /// The data of the next `name` event whose data contains `data_has` (others are skipped).
    pub async fn until(&mut self, name: &str, data_has: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let (n, d) = self.next().await;
            if n == name && d.contains(data_has) {
                return d;
            }
        }
        panic!("no {name} event with {data_has}");
    }

    /// The next `switcher` state for which `want` holds (other events are skipped).
    pub async fn switcher_until(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let Some((name, data)) = self.next_within(Duration::from_secs(10)).await else {
                break;
            };
            if name == "switcher" {
                let state: Value = serde_json::from_str(&data).expect("JSON");
                if want(&state) {
                    return state;
                }
                seen.push(state);
            }
        }
        panic!("no switcher event with {what}; saw {seen:#?}");
    }
}
