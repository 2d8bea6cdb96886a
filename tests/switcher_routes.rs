//! The switcher through its HTTP API against two live test cameras: cuts land on the new
//! source's keyframe with the program's RTP numbering continuous, the program carries the new
//! source's bytes, a vanished program source falls back to the first camera, and bad requests
//! get clear errors.

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use common::{
    CHROME_WHIP, get, names, online, post_json, post_sdp, shared_engine, start_cameras, switch,
    wait_until,
};
use r58::http::{AppState, router};
use serde_json::Value;
use sfu::capture::{CameraHandle, CameraSettings};
use sfu::engine::{EngineConfig, SharedEngine};
use sfu::hub::ReaderPacket;
use sfu::testing::cameras::small_camera;
use tokio::sync::mpsc::Receiver;

async fn state(app: &Router) -> Value {
    let r = get(app, "/api/switcher").await;
    r.assert_status(StatusCode::OK);
    r.json()
}

/// A 320x240 camera with long GOPs: a cut can only be quick if the camera answers the keyframe
/// request.
fn camera(name: &str) -> CameraSettings {
    small_camera(name, 400_000, 300)
}

/// Collects a reader's video packets for `duration`.
async fn collect(rx: &mut Receiver<ReaderPacket>, duration: Duration) -> Vec<ReaderPacket> {
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + duration;
    while let Ok(Some(p)) = tokio::time::timeout_at(end, rx.recv()).await {
        out.push(p);
    }
    out
}

struct Setup {
    app: Router,
    engine: SharedEngine,
    cameras: Vec<CameraHandle>,
}

async fn setup() -> Setup {
    let engine = shared_engine(EngineConfig::default());
    let state = AppState::new(engine.clone(), Vec::new());
    tokio::spawn(state.switcher.clone().run());
    let app = router(state, &["*".to_owned()]);
    let cameras = start_cameras(&engine, &[camera("cam0"), camera("cam1")]).await;
    Setup {
        app,
        engine,
        cameras,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_are_continuous_and_carry_the_new_source() {
    let Setup {
        app,
        engine,
        cameras: _cameras,
    } = setup().await;
    let s = state(&app).await;
    assert_eq!(s["program"], Value::Null);
    assert_eq!(names(&s["sources"]), ["cam0", "cam1"]);

    switch(&app, "program", Some("cam0"))
        .await
        .assert_status(StatusCode::OK);
    wait_until("program online", || online(&engine, "program")).await;
    let (_, mut program) = engine
        .lock()
        .attach_reader(Instant::now(), "program", "test", 4096)
        .unwrap();
    let (_, mut cam1) = engine
        .lock()
        .attach_reader(Instant::now(), "cam1", "test", 4096)
        .unwrap();
    let before = collect(&mut program, Duration::from_millis(300)).await;
    assert!(before.len() > 5, "program carries cam0");

    switch(&app, "program", Some("cam1"))
        .await
        .assert_status(StatusCode::OK);
    let after = collect(&mut program, Duration::from_millis(700)).await;
    let cam1_packets = collect(&mut cam1, Duration::from_millis(10)).await;
    let s = state(&app).await;
    assert_eq!(s["program"], "cam1", "{s}");
    let cut = &s["history"].as_array().unwrap()[1];
    let latency = cut["latency_ms"].as_f64().expect("cut taken");
    assert_eq!(cut["forced"], false);
    println!("cut latency (request -> cam1 keyframe on program): {latency:.1} ms");

    // One continuous RTP stream: no sequence gaps, timestamps never step back.
    let video: Vec<&ReaderPacket> = before
        .iter()
        .chain(&after)
        .filter(|p| p.track == 0)
        .collect();
    for pair in video.windows(2) {
        assert_eq!(
            pair[1].sequence,
            pair[0].sequence.wrapping_add(1),
            "sequence gap at {}",
            pair[0].sequence
        );
        let step = pair[1].timestamp.wrapping_sub(pair[0].timestamp);
        assert!(step < 90_000, "timestamp step {step}");
        assert_eq!(pair[1].epoch, pair[0].epoch, "no takeover for viewers");
    }
    // After the cut the program's payloads are cam1's, starting with a keyframe.
    let first_new = after
        .iter()
        .position(|p| cam1_packets.iter().any(|c| c.payload == p.payload))
        .expect("cam1's bytes on program");
    assert!(
        after[first_new].keyframe_start,
        "the cut starts with a keyframe"
    );
    assert!(
        after[first_new..]
            .iter()
            .all(|p| p.track != 0 || cam1_packets.iter().any(|c| c.payload == p.payload)),
        "only cam1 after the cut"
    );
    // Audio: the cameras have none, so the program carries Opus silence.
    assert!(
        after.iter().any(|p| p.track == 1),
        "program audio keeps going"
    );

    let metrics = get(&app, "/metrics").await;
    let metrics = metrics.text();
    assert!(metrics.contains("r58_switcher_cuts_total 2"), "{metrics}");
    assert!(
        metrics.contains("r58_switcher_last_cut_latency_ms "),
        "{metrics}"
    );

    // The switcher's readers are visible in /api/streams.
    let streams = get(&app, "/api/streams").await;
    let streams = streams.text();
    assert!(streams.contains("\"switcher\":1"), "{streams}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_program_source_falls_back_to_the_first_camera() {
    let Setup {
        app,
        engine,
        mut cameras,
    } = setup().await;
    switch(&app, "program", Some("cam1"))
        .await
        .assert_status(StatusCode::OK);
    wait_until("program online", || online(&engine, "program")).await;
    let cam1 = cameras.pop().unwrap();
    drop(cam1);
    let start = Instant::now();
    loop {
        let s = state(&app).await;
        if s["program"] == "cam0" {
            let last = s["history"].as_array().unwrap().last().unwrap().clone();
            assert_eq!(last["reason"], "fallback", "{s}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no fallback: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(online(&engine, "program"), "the program stream stays up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    // Bind the cameras: `..` would drop (stop) them at once.
    let Setup {
        app,
        cameras: _cameras,
        ..
    } = setup().await;
    for (uri, body, status) in [
        (
            "/api/switcher/program",
            r#"{"source":"nope"}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/switcher/program",
            r#"{"source":"program"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/switcher/program",
            r#"{"source":null}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/switcher/program",
            r#"{"source":"cam0","x":1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/api/switcher/program", "not json", StatusCode::BAD_REQUEST),
        (
            "/api/switcher/preview",
            r#"{"source":"nope"}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/switcher/audio",
            r#"{"source":7}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = post_json(&app, uri, body, &[]).await;
        let reason = r.text();
        assert_eq!(r.status, status, "{uri} {body}: {reason}");
        assert!(!reason.trim().is_empty(), "a reason");
        assert_eq!(state(&app).await["program"], Value::Null);
    }
    switch(&app, "preview", Some("cam1"))
        .await
        .assert_status(StatusCode::OK);
    assert_eq!(state(&app).await["preview"], "cam1");
    switch(&app, "preview", None)
        .await
        .assert_status(StatusCode::OK);
    assert_eq!(state(&app).await["preview"], Value::Null);
    // WHIP cannot take the program's name.
    post_sdp(&app, "/whip/program", CHROME_WHIP)
        .await
        .assert_status(StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_to_another_resolution_is_a_discontinuity_in_ll_hls() {
    let engine = shared_engine(EngineConfig::default());
    let state = AppState::new(engine.clone(), Vec::new());
    tokio::spawn(state.switcher.clone().run());
    tokio::spawn(state.hls.clone().run());
    let app = router(state, &["*".to_owned()]);
    let mut big = camera("big");
    big.encoder.width = 640;
    big.encoder.height = 480;
    let _cameras = start_cameras(&engine, &[camera("small"), big]).await;
    switch(&app, "program", Some("small"))
        .await
        .assert_status(StatusCode::OK);
    wait_until("program online", || online(&engine, "program")).await;
    let master = get(&app, "/hls/program/index.m3u8").await;
    master.assert_status(StatusCode::OK);
    let master = master.text();
    assert!(master.contains("RESOLUTION=320x240"), "{master}");
    let media = master
        .lines()
        .find(|l| l.ends_with("stream.m3u8"))
        .unwrap()
        .to_owned();
    get(&app, &format!("/hls/program/{media}?_HLS_msn=1"))
        .await
        .assert_status(StatusCode::OK);

    switch(&app, "program", Some("big"))
        .await
        .assert_status(StatusCode::OK);
    let start = Instant::now();
    let playlist = loop {
        let playlist = get(&app, &format!("/hls/program/{media}")).await;
        let playlist = playlist.text().to_owned();
        if playlist.contains("init1.mp4") && playlist.contains("#EXT-X-PART:") {
            break playlist;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{playlist}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let discontinuity = playlist
        .find("#EXT-X-DISCONTINUITY\n")
        .expect("discontinuity");
    let map = playlist.find("#EXT-X-MAP:URI=\"init1.mp4\"").unwrap();
    assert!(discontinuity < map, "{playlist}");
    let master = get(&app, "/hls/program/index.m3u8").await;
    assert!(
        master.text().contains("RESOLUTION=640x480"),
        "{}",
        master.text()
    );
}
