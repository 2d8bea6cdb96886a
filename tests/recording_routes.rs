//! The recording API in-process against a live test camera: start and stop one stream, the
//! status and file list, deleting, and every refusal with its status and one-line reason.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{Events, get, post_json, request, shared_engine, start_cameras, wait_until};
use r58::http::{AppState, router};
use sfu::engine::EngineConfig;
use sfu::record::{RecordConfig, RecordService, WriterConfig};
use sfu::testing::cameras::small_camera;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_stop_list_delete_and_refusals() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = shared_engine(EngineConfig::default());
    let unconfigured = router(AppState::new(engine.clone(), Vec::new()), &[]);
    let r = get(&unconfigured, "/api/recordings").await;
    r.assert_status(StatusCode::CONFLICT);
    assert!(r.text().contains("not configured"), "{}", r.text());

    let _cameras = start_cameras(&engine, &[small_camera("cam0", 300_000, 10)]).await;
    let service = RecordService::new(
        engine.clone(),
        RecordConfig {
            dir: dir.path().to_owned(),
            writer: WriterConfig {
                segment: Duration::from_secs(600),
                ..WriterConfig::default()
            },
            limits: sfu::record::DiskLimits {
                min_free_bytes: 0,
                min_free_percent: 0.0,
            },
            ..RecordConfig::default()
        },
    )
    .expect("recording service");
    let app = router(
        AppState::new(engine.clone(), Vec::new()).with_recordings(service.clone()),
        &[],
    );

    let r = get(&app, "/api/recordings").await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.json()["status"]["recording"], false);

    for (body, status, says) in [
        ("", StatusCode::CONFLICT, "not being recorded"),
        (
            "{\"stream\": \"cam0\"}",
            StatusCode::CONFLICT,
            "not being recorded",
        ),
    ] {
        let r = post_json(&app, "/api/recordings/stop", body, &[]).await;
        r.assert_status(status);
        r.assert_one_line_reason();
        assert!(r.text().contains(says), "{}", r.text());
    }
    for (body, status, says) in [
        (
            "{\"stream\": \"../x\"}",
            StatusCode::BAD_REQUEST,
            "not a stream name",
        ),
        (
            "{\"stream\": \"nosuch\"}",
            StatusCode::NOT_FOUND,
            "no stream 'nosuch'",
        ),
        ("{\"stream\": 5}", StatusCode::BAD_REQUEST, "expected"),
        ("start", StatusCode::BAD_REQUEST, "expected"),
    ] {
        let r = post_json(&app, "/api/recordings/start", body, &[]).await;
        r.assert_status(status);
        r.assert_one_line_reason();
        assert!(r.text().contains(says), "{body}: {}", r.text());
    }

    let mut events = Events::open(&app, &[]).await;
    let start = "{\"stream\": \"cam0\"}";
    post_json(&app, "/api/recordings/start", start, &[])
        .await
        .assert_status(StatusCode::OK);
    let again = post_json(&app, "/api/recordings/start", start, &[]).await;
    again.assert_status(StatusCode::CONFLICT);
    assert!(again.text().contains("already"), "{}", again.text());

    // The camera's keyframes (every 10 frames) open a file and fill fragments.
    let probe = service.clone();
    wait_until("cam0 recorded", move || {
        probe
            .status()
            .streams
            .iter()
            .any(|s| s.name == "cam0" && s.writer.fragments >= 2)
    })
    .await;
    // The pages' REC tally: a `recording` event naming the stream and its file.
    let mut tally = None;
    while let Some((name, data)) = events.next_within(Duration::from_secs(3)).await {
        if name == "recording" && data.contains("\"recording\":true") && data.contains("cam0_") {
            tally = Some(data);
            break;
        }
    }
    let tally = tally.expect("a recording event on /api/events");
    assert!(tally.contains("\"name\":\"cam0\""), "{tally}");
    let listing = get(&app, "/api/recordings").await.json();
    let files = listing["files"].as_array().expect("files").clone();
    assert_eq!(files.len(), 1, "{listing}");
    assert_eq!(files[0]["open"], true);
    let file = files[0]["file"].as_str().expect("name").to_owned();
    assert!(
        file.starts_with("cam0_") && file.ends_with("Z.mp4"),
        "{file}"
    );
    let metrics = get(&app, "/metrics").await;
    assert!(
        metrics.text().contains("r58_recording_armed 1"),
        "{}",
        metrics.text()
    );
    assert!(
        metrics
            .text()
            .contains("r58_recording_bytes_total{stream=\"cam0\"}")
    );

    let uri = format!("/api/recordings/files/cam0/{file}");
    let busy = request(&app, Method::DELETE, &uri, &[], Body::empty()).await;
    busy.assert_status(StatusCode::CONFLICT);
    assert!(busy.text().contains("being written"), "{}", busy.text());

    post_json(&app, "/api/recordings/stop", start, &[])
        .await
        .assert_status(StatusCode::OK);
    let listing = get(&app, "/api/recordings").await.json();
    assert_eq!(listing["status"]["recording"], false, "{listing}");
    assert_eq!(listing["files"][0]["open"], false, "{listing}");
    let size = listing["files"][0]["bytes"].as_u64().expect("bytes");
    assert!(size > 1000, "{listing}");
    // The fragments waited for above, scanned from the file: some media time.
    let duration_ms = listing["files"][0]["duration_ms"]
        .as_u64()
        .expect("duration_ms");
    assert!(duration_ms > 0, "{listing}");
    let events: Vec<&str> = listing["status"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(events, ["started", "stopped"]);

    // Playing and seeking in a browser, and downloading: the file over HTTP Range.
    let on_disk = std::fs::read(dir.path().join("cam0").join(&file)).expect("the file");
    let len = on_disk.len();
    let whole = get(&app, &uri).await;
    whole.assert_status(StatusCode::OK);
    assert_eq!(whole.body, on_disk, "the whole file");
    assert_eq!(whole.header("content-type"), Some("video/mp4"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    for (range, from, to) in [
        ("bytes=0-99".to_owned(), 0, 99),
        (format!("bytes={}-", len - 10), len - 10, len - 1),
        ("bytes=-50".to_owned(), len - 50, len - 1),
        (format!("bytes=100-{}", len + 1000), 100, len - 1),
    ] {
        let part = request(&app, Method::GET, &uri, &[("range", &range)], Body::empty()).await;
        part.assert_status(StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.body, &on_disk[from..=to], "{range}");
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {from}-{to}/{len}").as_str()),
            "{range}"
        );
    }
    for range in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 5, len + 9),
    ] {
        let r = request(&app, Method::GET, &uri, &[("range", &range)], Body::empty()).await;
        r.assert_status(StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{len}").as_str()),
            "{range}"
        );
    }
    for bad in [
        "/api/recordings/files/cam0/..%2F..%2Fetc%2Fpasswd",
        "/api/recordings/files/cam0/cam0.mp4",
        "/api/recordings/files/..%2Fcam0/x.mp4",
        "/api/recordings/files/cam1/cam1_2026-12-06T14-03-22Z.mp4",
    ] {
        let r = get(&app, bad).await;
        r.assert_status(StatusCode::NOT_FOUND);
        r.assert_one_line_reason();
    }

    for bad in [
        "/api/recordings/files/cam0/..%2F..%2Fetc%2Fpasswd",
        "/api/recordings/files/cam0/cam0.mp4",
        "/api/recordings/files/..%2Fcam0/x.mp4",
    ] {
        let r = request(&app, Method::DELETE, bad, &[], Body::empty()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}: {}", r.text());
    }
    request(&app, Method::DELETE, &uri, &[], Body::empty())
        .await
        .assert_status(StatusCode::NO_CONTENT);
    assert!(!dir.path().join("cam0").join(&file).exists());
    request(&app, Method::DELETE, &uri, &[], Body::empty())
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

/// The program is recorded beside the cameras, and stopping everything writes the session's
/// program cuts as a CMX 3600 EDL over the ISO files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_writes_the_cut_list_over_the_iso_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = shared_engine(EngineConfig::default());
    let _cameras = start_cameras(
        &engine,
        &[
            small_camera("cam0", 300_000, 10),
            small_camera("cam1", 300_000, 10),
        ],
    )
    .await;
    let service = RecordService::new(
        engine.clone(),
        RecordConfig {
            dir: dir.path().to_owned(),
            streams: vec![
                sfu::record::Selector::Cameras,
                sfu::record::Selector::Program,
            ],
            limits: sfu::record::DiskLimits {
                min_free_bytes: 0,
                min_free_percent: 0.0,
            },
            ..RecordConfig::default()
        },
    )
    .expect("recording service");
    let state = AppState::new(engine.clone(), Vec::new()).with_recordings(service.clone());
    tokio::spawn(state.switcher.clone().run());
    let app = router(state, &[]);
    common::switch(&app, "program", Some("cam0"))
        .await
        .assert_status(StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    post_json(&app, "/api/recordings/start", "", &[])
        .await
        .assert_status(StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    common::switch(&app, "program", Some("cam1"))
        .await
        .assert_status(StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    post_json(&app, "/api/recordings/stop", "", &[])
        .await
        .assert_status(StatusCode::OK);
    let edl: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "edl"))
        .collect();
    assert_eq!(edl.len(), 1, "{edl:?}");
    let text = std::fs::read_to_string(&edl[0]).expect("edl");
    let events: Vec<&str> = text.lines().filter(|l| l.starts_with("00")).collect();
    assert_eq!(events.len(), 2, "{text}");
    // Source in, source out, record in, record out: cam0 from the start for ~1.5 s (the cut
    // lands on cam1's next keyframe, within 1/3 s), then cam1 back to back until the stop.
    let fields = |line: &str| -> Vec<String> {
        line.split_whitespace().skip(4).map(str::to_owned).collect()
    };
    let secs = |tc: &str| -> f64 {
        let p: Vec<f64> = tc
            .split(':')
            .map(|x| x.parse().expect("timecode"))
            .collect();
        (p[0] - 1.0) * 3600.0 + p[1] * 60.0 + p[2] + p[3] / 30.0
    };
    let (first, second) = (fields(events[0]), fields(events[1]));
    assert_eq!(first[2], "01:00:00:00", "{text}");
    assert_eq!(first[3], second[2], "back to back: {text}");
    let first_len = secs(&first[3]);
    assert!(
        (1.3..2.2).contains(&first_len),
        "{first_len} s on cam0: {text}"
    );
    println!("{text}");
    let clips: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("* FROM CLIP NAME: "))
        .collect();
    assert!(clips[0].starts_with("cam0/cam0_"), "{text}");
    assert!(clips[1].starts_with("cam1/cam1_"), "{text}");
    for clip in &clips {
        assert!(dir.path().join(clip).is_file(), "{clip} is not a recording");
    }
    // The same cuts as OpenTimelineIO beside it (tests/interop/test_recording_cut_list.py
    // reads one back with the opentimelineio package): the same two files, in order.
    let otio: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(edl[0].with_extension("otio")).expect("the .otio beside"),
    )
    .expect("JSON");
    let urls: Vec<&str> = otio["tracks"]["children"][0]["children"]
        .as_array()
        .expect("the program track")
        .iter()
        .filter_map(|c| c["media_references"]["DEFAULT_MEDIA"]["target_url"].as_str())
        .collect();
    assert_eq!(urls, clips, "{otio:#}");
    // The program stream's own recording covers the session.
    let program: Vec<_> = std::fs::read_dir(dir.path().join("program"))
        .expect("the program is recorded")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(program.len(), 1, "{program:?}");
    let mut file = std::fs::File::open(&program[0]).expect("program file");
    let len = file.metadata().expect("metadata").len();
    let report = sfu::record::scan::scan(&mut file, len).expect("scan");
    assert!(report.has_video && report.problem.is_none(), "{report:?}");
    assert!(report.duration_ms >= 2000, "{report:?}");
}

/// A disk without room for the reserve refuses to start (one stream or all) with the free and
/// reserved bytes; nothing is armed and no file is made. Starting everything twice, or
/// stopping everything twice, is refused with its reason too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_and_repeated_start_stop_of_everything_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = shared_engine(EngineConfig::default());
    let _cameras = start_cameras(&engine, &[small_camera("cam0", 300_000, 10)]).await;
    let service = |min_free_bytes| {
        RecordService::new(
            engine.clone(),
            RecordConfig {
                dir: dir.path().to_owned(),
                limits: sfu::record::DiskLimits {
                    min_free_bytes,
                    min_free_percent: 0.0,
                },
                ..RecordConfig::default()
            },
        )
        .expect("recording service")
    };
    let full = router(
        AppState::new(engine.clone(), Vec::new()).with_recordings(service(u64::MAX)),
        &[],
    );
    for body in ["", "{\"stream\": \"cam0\"}"] {
        let r = post_json(&full, "/api/recordings/start", body, &[]).await;
        r.assert_status(StatusCode::CONFLICT);
        r.assert_one_line_reason();
        assert!(
            r.text().contains("not enough free space") && r.text().contains("must stay free"),
            "{body}: {}",
            r.text()
        );
    }
    let listing = get(&full, "/api/recordings").await.json();
    assert_eq!(listing["status"]["recording"], false, "{listing}");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "no file made"
    );

    let app = router(
        AppState::new(engine.clone(), Vec::new()).with_recordings(service(0)),
        &[],
    );
    post_json(&app, "/api/recordings/start", "{}", &[])
        .await
        .assert_status(StatusCode::OK);
    let again = post_json(&app, "/api/recordings/start", "", &[]).await;
    again.assert_status(StatusCode::CONFLICT);
    again.assert_one_line_reason();
    assert!(
        again.text().contains("'all' is already being recorded"),
        "{}",
        again.text()
    );
    post_json(&app, "/api/recordings/stop", "", &[])
        .await
        .assert_status(StatusCode::OK);
    let idle = post_json(&app, "/api/recordings/stop", "{}", &[]).await;
    idle.assert_status(StatusCode::CONFLICT);
    idle.assert_one_line_reason();
    assert!(
        idle.text().contains("not being recorded"),
        "{}",
        idle.text()
    );
}
