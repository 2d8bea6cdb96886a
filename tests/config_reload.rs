//! Live reload through the real router and the server's reload task: a new file changes the
//! auth token and adds a test camera while a reader of the other camera keeps receiving every
//! packet (sequence numbers continuous, same epoch); a camera removed ends its stream; a broken
//! file is refused with the one-line reason and changes nothing; a key that cannot change live
//! is reported as needing a restart.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Resp, online, request, shared_engine, wait_until};
use r58::camera_set::CameraSet;
use r58::config::{Config, camera_entries};
use r58::http::{AppState, router};
use r58::reload::{Reloader, serve};
use sfu::engine::{EngineConfig, SharedEngine};

const PATH: &str = "/api/config/reload";

/// A config file with a `/whip/*` token and `cameras` small test cameras.
fn write_config(path: &Path, token: &str, cameras: u32, listen: &str) {
    let text = format!(
        "listen = \"{listen}\"\n\
         [[auth]]\npath = \"/whip/*\"\ntoken = \"{token}\"\n\
         [test_cameras]\ncount = {cameras}\nwidth = 160\nheight = 96\nfps = 15\nbitrate = 200000\n"
    );
    std::fs::write(path, text).expect("write config");
}

fn load(path: &Path) -> Result<Config, r58::config::ConfigError> {
    let args = ["r58", "--config", path.to_str().expect("utf-8 path")];
    Config::from_args_env_file(args.map(str::to_owned), &HashMap::new())
}

/// The router of a server running `path`'s configuration, with its reload task.
fn server(engine: &SharedEngine, path: &Path) -> Router {
    let config = load(path).expect("first config");
    let state = AppState::new(engine.clone(), config.auth.clone());
    let cameras = CameraSet::start(engine, &camera_entries(&config)).expect("cameras");
    let (requests, queue) = tokio::sync::mpsc::channel(4);
    let state = state.with_reload(requests);
    let owned = path.to_owned();
    let reloader = Reloader::new(
        Box::new(move || load(&owned)),
        config,
        &state,
        cameras,
        false,
    );
    tokio::spawn(serve(reloader, queue));
    router(state, &[])
}

async fn reload(app: &Router) -> Resp {
    request(app, Method::POST, PATH, &[], Body::empty()).await
}

/// The status of a WHIP offer with `token` (not a valid offer: only the gate's answer counts).
async fn whip_status(app: &Router, token: &str) -> StatusCode {
    let bearer = format!("Bearer {token}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/sdp"),
    ];
    request(app, Method::POST, "/whip/guest", &headers, "v=0\r\n")
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_token_and_camera_apply_while_the_other_camera_plays_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("r58.toml");
    write_config(&file, "old-token", 1, "127.0.0.1:8000");
    let engine = shared_engine(EngineConfig::default());
    let app = server(&engine, &file);
    wait_until("cam0 online", || online(&engine, "cam0")).await;
    assert_eq!(
        whip_status(&app, "new-token").await,
        StatusCode::UNAUTHORIZED
    );
    assert_ne!(
        whip_status(&app, "old-token").await,
        StatusCode::UNAUTHORIZED
    );

    // A reader of cam0 (what LL-HLS and the recorder use) across every reload below.
    let (_, mut packets) = engine
        .lock()
        .attach_reader(Instant::now(), "cam0", "test", 4096)
        .expect("reader");
    let first = packets.recv().await.expect("a cam0 packet");

    write_config(&file, "new-token", 2, "127.0.0.1:9000");
    let r = reload(&app).await;
    r.assert_status(StatusCode::OK);
    assert_eq!(
        r.json(),
        serde_json::json!({"applied": ["auth", "camera cam1 added"], "needs_restart": ["listen"]})
    );
    assert_eq!(
        whip_status(&app, "old-token").await,
        StatusCode::UNAUTHORIZED
    );
    assert_ne!(
        whip_status(&app, "new-token").await,
        StatusCode::UNAUTHORIZED
    );
    wait_until("cam1 online", || online(&engine, "cam1")).await;

    // A broken file: refused with its one-line reason, nothing changes.
    std::fs::write(&file, "[[auth]]\npath = \"/whip/*\"\ntoken = \n").expect("write");
    let r = reload(&app).await;
    r.assert_status(StatusCode::BAD_REQUEST);
    r.assert_one_line_reason();
    assert!(
        r.text().starts_with("configuration not reloaded: config ")
            && r.text().contains("r58.toml: line 3"),
        "{}",
        r.text()
    );
    assert_ne!(
        whip_status(&app, "new-token").await,
        StatusCode::UNAUTHORIZED
    );
    assert!(online(&engine, "cam1"));

    // cam1 removed: its stream ends; the listen change still waits for a restart.
    write_config(&file, "new-token", 1, "127.0.0.1:9000");
    let r = reload(&app).await;
    r.assert_status(StatusCode::OK);
    assert_eq!(
        r.json(),
        serde_json::json!({"applied": ["camera cam1 removed"], "needs_restart": ["listen"]})
    );
    wait_until("cam1 gone", || !online(&engine, "cam1")).await;

    // cam0 played on through all of it: its packets kept coming, numbered without a gap, from
    // the same publisher.
    let mut last = first.sequence;
    let mut count = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(300);
    loop {
        let packet = tokio::select! {
            p = packets.recv() => p.expect("cam0's reader ended"),
            _ = tokio::time::sleep_until(until) => break,
        };
        if packet.track != first.track {
            continue;
        }
        assert_eq!(packet.epoch, first.epoch, "cam0 was restarted");
        assert_eq!(
            packet.sequence,
            last.wrapping_add(1),
            "cam0 lost packets across the reloads"
        );
        last = packet.sequence;
        count += 1;
    }
    assert!(count > 0 && online(&engine, "cam0"), "cam0 stopped");
}

#[tokio::test]
async fn a_server_without_a_reload_task_says_so() {
    let engine = shared_engine(EngineConfig::default());
    let app = router(AppState::new(engine, Vec::new()), &[]);
    let r = reload(&app).await;
    r.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    r.assert_one_line_reason();
}

/// `[recording]` settings change for the running service; moving its directory waits for a
/// restart and the service keeps writing where it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_settings_apply_and_its_directory_waits_for_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("r58.toml");
    let recordings = dir.path().join("rec");
    let write = |segment: u32, rec_dir: &Path| {
        let text = format!(
            "[test_cameras]\nenabled = false\n\
             [recording]\ndir = \"{}\"\nsegment_secs = {segment}\n",
            rec_dir.display()
        );
        std::fs::write(&file, text).expect("write config");
    };
    write(600, &recordings);
    let engine = shared_engine(EngineConfig::default());
    let config = load(&file).expect("config");
    let service =
        sfu::record::RecordService::new(engine.clone(), config.recording.clone().expect("on"))
            .expect("recording service");
    let state = AppState::new(engine.clone(), Vec::new()).with_recordings(service.clone());
    let (requests, queue) = tokio::sync::mpsc::channel(4);
    let state = state.with_reload(requests);
    let owned = file.clone();
    let cameras = CameraSet::start(&engine, &camera_entries(&config)).expect("no cameras");
    let reloader = Reloader::new(
        Box::new(move || load(&owned)),
        config,
        &state,
        cameras,
        false,
    );
    tokio::spawn(serve(reloader, queue));
    let app = router(state, &[]);

    write(60, &recordings);
    let r = reload(&app).await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.json()["applied"], serde_json::json!(["recording"]));
    assert_eq!(service.config().writer.segment, Duration::from_secs(60));

    write(30, &dir.path().join("elsewhere"));
    let r = reload(&app).await;
    r.assert_status(StatusCode::OK);
    assert_eq!(
        r.json(),
        serde_json::json!({"applied": [], "needs_restart": ["recording (on/off or dir)"]})
    );
    assert_eq!(service.config().dir, recordings);
    assert_eq!(service.config().writer.segment, Duration::from_secs(60));
}

/// `[admin]`, `[turn]` and the limits change for the running server: the reload route itself
/// then wants the new admin token, the credentials endpoint hands out the new STUN server,
/// and the engine admits sessions up to the new `max_sessions`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_turn_and_limits_apply_to_the_next_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("r58.toml");
    let base = "[test_cameras]\nenabled = false\n";
    std::fs::write(&file, base).expect("write");
    let engine = shared_engine(EngineConfig::default());
    let app = server(&engine, &file);
    let turn = |app: &Router| {
        let app = app.clone();
        async move {
            request(
                &app,
                Method::GET,
                "/api/turn-credentials",
                &[],
                Body::empty(),
            )
            .await
        }
    };
    assert_eq!(turn(&app).await.json()["iceServers"], serde_json::json!([]));

    std::fs::write(
        &file,
        format!(
            "max_sessions = 3\n{base}[limits]\nsessions_per_ip = 7\n\
             [admin]\ntoken = \"adm1n\"\nallow_without_token = \"none\"\n\
             [turn]\nstun_urls = [\"stun:stun.example.net:3478\"]\n"
        ),
    )
    .expect("write");
    let r = reload(&app).await;
    r.assert_status(StatusCode::OK);
    assert_eq!(
        r.json()["applied"],
        serde_json::json!(["admin", "limits", "turn"])
    );
    assert_eq!(engine.lock().config().max_sessions, 3);
    let servers = turn(&app).await.json()["iceServers"].clone();
    assert_eq!(
        servers[0]["urls"],
        serde_json::json!(["stun:stun.example.net:3478"]),
        "{servers}"
    );
    // The admin gate now wants the token, from this box too.
    let from_box = |token: Option<&str>| {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| vec![("authorization", b)])
            .unwrap_or_default();
        let request = common::new_request(Method::POST, PATH, &headers, Body::empty());
        common::from_peer(request, std::net::SocketAddr::from(([127, 0, 0, 1], 40000)))
    };
    common::send(&app, from_box(None))
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let r = common::send(&app, from_box(Some("adm1n"))).await;
    r.assert_status(StatusCode::OK);
    assert_eq!(
        r.json(),
        serde_json::json!({"applied": [], "needs_restart": []})
    );
}
