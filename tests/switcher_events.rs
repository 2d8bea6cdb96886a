//! `/api/events` carries the switcher's state (`event: switcher`) so every open switcher page
//! shows the same tally: a snapshot on connect, every preview/program/pending change and taken
//! cut (with its latency) as it happens, sources coming and going, the fallback cut, and a
//! `switcher_locked` instead when an `[[auth]]` rule protects `/api/switcher`.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures_util::StreamExt;
use r58::config::AuthRule;
use r58::http::{AppState, router};
use serde_json::Value;
use sfu::capture::{CameraHandle, CameraSettings, EncoderSettings, start_test_cameras};
use sfu::engine::SharedEngine;
use sfu::engine::{Engine, EngineConfig};
use tower::ServiceExt;

const CHROME_WHIP: &str = include_str!("../sfu/testdata/sdp/chrome_whip.sdp");

/// Reads server-sent events from a response body.
struct Events {
    body: axum::body::BodyDataStream,
    buffer: String,
}

impl Events {
    async fn open(app: &Router, headers: &[(&str, &str)]) -> Self {
        let mut request = Request::get("/api/events");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        Self {
            body: response.into_body().into_data_stream(),
            buffer: String::new(),
        }
    }

    /// The next event as (name, data), or `None` if none comes within `wait`.
    async fn next_within(&mut self, wait: Duration) -> Option<(String, String)> {
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
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `switcher` state for which `want` holds (other events are skipped).
    async fn switcher_until(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let Some((name, data)) = self.next_within(Duration::from_secs(10)).await else {
                break;
            };
            if name == "switcher" {
                let state: Value = serde_json::from_str(&data).unwrap();
                if want(&state) {
                    return state;
                }
                seen.push(state);
            }
        }
        panic!("no switcher event with {what}; saw {seen:#?}");
    }
}

async fn post(
    app: &Router,
    uri: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn camera(name: &str) -> CameraSettings {
    CameraSettings {
        name: name.into(),
        encoder: EncoderSettings {
            width: 320,
            height: 240,
            fps: 30,
            bitrate: 300_000,
            keyframe_interval: 300,
        },
        mtu_payload: 1200,
    }
}

fn engine() -> SharedEngine {
    SharedEngine::new(Engine::new(EngineConfig::default()).unwrap())
}

async fn cameras(engine: &SharedEngine) -> Vec<CameraHandle> {
    let cameras = start_test_cameras(engine, &[camera("cam0"), camera("cam1")]).unwrap();
    let start = Instant::now();
    while !["cam0", "cam1"].iter().all(|n| {
        engine
            .lock()
            .hub()
            .get(n)
            .is_some_and(|s| s.publisher().is_some())
    }) {
        assert!(start.elapsed() < Duration::from_secs(10), "cameras live");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cameras
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_sees_preview_cuts_with_latency_and_the_fallback() {
    let engine = engine();
    let state = AppState::new(engine.clone(), Vec::new());
    tokio::spawn(state.switcher.clone().run());
    let app = router(state, &[]);
    let mut cameras = cameras(&engine).await;

    // Two operators' pages.
    let mut a = Events::open(&app, &[]).await;
    let mut b = Events::open(&app, &[]).await;
    for events in [&mut a, &mut b] {
        let (name, _) = events.next_within(Duration::from_secs(5)).await.unwrap();
        assert_eq!(name, "snapshot", "the stream list comes first");
        let (name, data) = events.next_within(Duration::from_secs(5)).await.unwrap();
        assert_eq!(name, "switcher", "then the switcher's state, on connect");
        let s: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(s["program_stream"], "program");
        assert_eq!(s["program"], Value::Null);
        assert_eq!(names(&s["sources"]), ["cam0", "cam1"]);
    }

    let (status, body) = post(&app, "/api/switcher/preview", r#"{"source":"cam1"}"#, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for events in [&mut a, &mut b] {
        events
            .switcher_until("preview cam1", |s| s["preview"] == "cam1")
            .await;
    }

    let (status, body) = post(&app, "/api/switcher/program", r#"{"source":"cam0"}"#, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for events in [&mut a, &mut b] {
        let taken = events
            .switcher_until("cam0 taken", |s| {
                s["program"] == "cam0" && s["pending"].is_null()
            })
            .await;
        let cut = &taken["history"][0];
        assert_eq!(cut["to"], "cam0");
        assert_eq!(cut["reason"], "operator");
        assert!(cut["latency_ms"].as_f64().is_some(), "latency: {cut}");
        assert_eq!(taken["preview"], "cam1", "preview stays");
    }

    // A second cut is announced while pending (cam1's keyframe is not there yet at the
    // request), then taken.
    let (status, body) = post(&app, "/api/switcher/program", r#"{"source":"cam1"}"#, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answered: Value = serde_json::from_str(&body).unwrap();
    if answered["pending"] == "cam1" {
        a.switcher_until("cam1 pending", |s| s["pending"] == "cam1")
            .await;
    }
    let taken = a
        .switcher_until("cam1 taken", |s| s["program"] == "cam1")
        .await;
    let latency = taken["history"][1]["latency_ms"].as_f64().unwrap();
    println!("cut to cam1 announced with latency {latency:.1} ms");
    b.switcher_until("cam1 taken", |s| s == &taken).await;

    // Audio pin.
    let (status, _) = post(&app, "/api/switcher/audio", r#"{"source":"cam0"}"#, &[]).await;
    assert_eq!(status, StatusCode::OK);
    a.switcher_until("audio pinned", |s| s["audio_pin"] == "cam0")
        .await;

    // cam1, on program, goes away: the fallback cut is announced with its reason and the
    // source list shrinks.
    let cam1 = cameras.pop().unwrap();
    drop(cam1);
    let fell = a
        .switcher_until("fallback to cam0", |s| {
            s["program"] == "cam0"
                && s["history"].as_array().unwrap().last().unwrap()["reason"] == "fallback"
        })
        .await;
    assert_eq!(
        fell["history"].as_array().unwrap().last().unwrap()["from"],
        "cam1"
    );
    // cam1 leaves the sources with the fallback or soon after.
    if names(&fell["sources"]) != ["cam0"] {
        a.switcher_until("cam1 gone from the sources", |s| {
            names(&s["sources"]) == ["cam0"]
        })
        .await;
    }
}

#[tokio::test]
async fn a_guest_appears_in_the_sources_without_a_switcher_action() {
    // WHIP answers need a candidate to offer.
    let engine = SharedEngine::new(
        Engine::new(EngineConfig {
            candidates: vec![std::net::SocketAddr::from(([192, 0, 2, 1], 8189))],
            ..EngineConfig::default()
        })
        .unwrap(),
    );
    let app = router(AppState::new(engine.clone(), Vec::new()), &[]);
    let mut events = Events::open(&app, &[]).await;
    let s = events.switcher_until("the first state", |_| true).await;
    assert_eq!(names(&s["sources"]), Vec::<&str>::new());
    let r = app
        .clone()
        .oneshot(
            Request::post("/whip/guest1")
                .header("content-type", "application/sdp")
                .body(Body::from(CHROME_WHIP))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let s = events
        .switcher_until("guest1 in the sources", |s| {
            names(&s["sources"]) == ["guest1"]
        })
        .await;
    assert_eq!(s["sources"][0]["kind"], "whip");
    assert_eq!(s["sources"][0]["video"], "H264");
    assert_eq!(s["sources"][0]["incompatible"], Value::Null);
    // Nothing changed since: no repeated state on later polls.
    let next = events.next_within(Duration::from_millis(1500)).await;
    assert!(
        next.as_ref().is_none_or(|(name, _)| name != "switcher"),
        "unchanged state sent again: {next:?}"
    );
}

#[tokio::test]
async fn a_protected_switcher_is_locked_in_the_events_unless_the_token_comes_along() {
    let engine = engine();
    let rules = vec![AuthRule {
        path: "/api/switcher*".into(),
        token: "op-secret".into(),
    }];
    let app = router(AppState::new(engine, rules), &[]);

    let mut anonymous = Events::open(&app, &[]).await;
    assert_eq!(
        anonymous
            .next_within(Duration::from_secs(5))
            .await
            .unwrap()
            .0,
        "snapshot"
    );
    let (name, data) = anonymous.next_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(name, "switcher_locked");
    assert!(data.contains("bearer token"), "{data}");
    // And no state follows, even after a change.
    let (status, _) = post(
        &app,
        "/api/switcher/preview",
        r#"{"source":null}"#,
        &[("authorization", "Bearer op-secret")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let next = anonymous.next_within(Duration::from_millis(1200)).await;
    assert!(next.is_none(), "{next:?}");

    let mut operator = Events::open(&app, &[("authorization", "Bearer op-secret")]).await;
    assert_eq!(
        operator
            .next_within(Duration::from_secs(5))
            .await
            .unwrap()
            .0,
        "snapshot"
    );
    assert_eq!(
        operator
            .next_within(Duration::from_secs(5))
            .await
            .unwrap()
            .0,
        "switcher"
    );
}
