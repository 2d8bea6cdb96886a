//! `/api/events` carries the switcher's state (`event: switcher`) so every open switcher page
//! shows the same tally: a snapshot on connect, every preview/program/pending change and taken
//! cut (with its latency) as it happens, sources coming and going, the fallback cut, and a
//! `switcher_locked` instead when an `[[auth]]` rule protects `/api/switcher`.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{
    Events, answering_config, names, publish, shared_engine, start_cameras, switch, switch_with,
};
use r58::config::AuthRule;
use r58::http::{AppState, router};
use serde_json::Value;
use sfu::capture::CameraHandle;
use sfu::engine::{EngineConfig, SharedEngine};
use sfu::testing::cameras::small_camera;

fn engine() -> SharedEngine {
    shared_engine(EngineConfig::default())
}

/// cam0 and cam1, live.
async fn cameras(engine: &SharedEngine) -> Vec<CameraHandle> {
    let camera = |name| small_camera(name, 300_000, 300);
    start_cameras(engine, &[camera("cam0"), camera("cam1")]).await
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
        let (name, _) = events.next().await;
        assert_eq!(name, "snapshot", "the stream list comes first");
        let (name, data) = events.next().await;
        assert_eq!(name, "switcher", "then the switcher's state, on connect");
        let s: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(s["program_stream"], "program");
        assert_eq!(s["program"], Value::Null);
        assert_eq!(names(&s["sources"]), ["cam0", "cam1"]);
    }

    switch(&app, "preview", Some("cam1"))
        .await
        .assert_status(StatusCode::OK);
    for events in [&mut a, &mut b] {
        events
            .switcher_until("preview cam1", |s| s["preview"] == "cam1")
            .await;
    }

    switch(&app, "program", Some("cam0"))
        .await
        .assert_status(StatusCode::OK);
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
    let r = switch(&app, "program", Some("cam1")).await;
    r.assert_status(StatusCode::OK);
    let answered = r.json();
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
    switch(&app, "audio", Some("cam0"))
        .await
        .assert_status(StatusCode::OK);
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
    let engine = shared_engine(answering_config());
    let app = router(AppState::new(engine.clone(), Vec::new()), &[]);
    let mut events = Events::open(&app, &[]).await;
    let s = events.switcher_until("the first state", |_| true).await;
    assert_eq!(names(&s["sources"]), Vec::<&str>::new());
    publish(&app, "guest1").await;
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
    assert_eq!(anonymous.next().await.0, "snapshot");
    let (name, data) = anonymous.next().await;
    assert_eq!(name, "switcher_locked");
    assert!(data.contains("bearer token"), "{data}");
    // And no state follows, even after a change.
    switch_with(
        &app,
        "preview",
        None,
        &[("authorization", "Bearer op-secret")],
    )
    .await
    .assert_status(StatusCode::OK);
    let next = anonymous.next_within(Duration::from_millis(1200)).await;
    assert!(next.is_none(), "{next:?}");

    let mut operator = Events::open(&app, &[("authorization", "Bearer op-secret")]).await;
    assert_eq!(operator.next().await.0, "snapshot");
    assert_eq!(operator.next().await.0, "switcher");
}
