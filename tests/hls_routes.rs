//! The LL-HLS routes against a live test camera: the multivariant playlist the pages use, the
//! media playlist with blocking reload, parts held until complete, caching and content types,
//! errors for bad requests, a retryable 503 (never an empty playlist) before a stream's first
//! part, a camera restart continuing the playlist, and ffprobe reading the
//! live stream over real HTTP.
//!
//! ffprobe missing: that test prints why and passes, unless `CI` is set (then it fails).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{answering_config, get, publish, request, shared_engine, start_cameras};
use hls_m3u8::MasterPlaylist;
use hls_m3u8::tags::VariantStream;
use r58::http::{AppState, router};
use sfu::capture::CameraHandle;
use sfu::engine::SharedEngine;
use sfu::hls::{HlsService, LiveConfig, RequestKind};
use sfu::testing::cameras::small_camera;

struct Server {
    app: Router,
    engine: SharedEngine,
    hls: HlsService,
}

fn server(linger: Duration) -> Server {
    // A host candidate, so that WHIP publishers are answered too.
    let engine = shared_engine(answering_config());
    let state = AppState::new(engine.clone(), Vec::new()).with_hls(LiveConfig {
        linger,
        ..LiveConfig::default()
    });
    let hls = state.hls.clone();
    tokio::spawn(state.hls.clone().run());
    Server {
        app: router(state, &["*".to_owned()]),
        engine,
        hls,
    }
}

/// Starts a 320x240 test camera and waits until its stream is online.
async fn start(server: &Server, name: &str) -> Vec<CameraHandle> {
    start_cameras(&server.engine, &[small_camera(name, 500_000, 30)]).await
}

/// The media playlist URI (`{instance}/stream.m3u8`) from the multivariant playlist.
async fn media_uri(app: &Router, name: &str) -> String {
    let r = get(app, &format!("/hls/{name}/index.m3u8")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let playlist = MasterPlaylist::try_from(r.text()).expect("hls_m3u8 parses it");
    let VariantStream::ExtXStreamInf { uri, .. } = &playlist.variant_streams[0] else {
        panic!("not a stream variant");
    };
    uri.to_string()
}

/// Blocks until segment `msn` is complete, one segment at a time (a request more than two
/// segments ahead of the live edge is refused).
async fn wait_segment(app: &Router, base: &str, msn: u64) -> String {
    let mut text = String::new();
    for m in 0..=msn {
        let r = get(app, &format!("{base}/stream.m3u8?_HLS_msn={}", m + 1)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        text = r.text().to_owned();
    }
    text
}

/// `(msn, part)` of the EXT-X-PRELOAD-HINT.
fn preload_hint(playlist: &str) -> (u64, u32) {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
        .expect("preload hint");
    let uri = line.split("URI=\"part").nth(1).unwrap();
    let (msn, rest) = uri.split_once('.').unwrap();
    let part = rest.split_once('.').unwrap().0;
    (msn.parse().unwrap(), part.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_stream_is_served_over_ll_hls() {
    let server = server(Duration::from_secs(15));
    let app = &server.app;
    let _camera = start(&server, "cam0").await;

    // The multivariant playlist waits for the first keyframe, then names the codec and size.
    let r = get(app, "/hls/cam0/index.m3u8").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(r.header("cache-control"), Some("public, max-age=1"));
    assert!(r.text().contains("CODECS=\"avc1.42"), "{}", r.text());
    assert!(r.text().contains("RESOLUTION=320x240"), "{}", r.text());
    let media = media_uri(app, "cam0").await;
    let (instance, file) = media.split_once('/').unwrap();
    assert_eq!(file, "stream.m3u8");
    assert!(
        !media.starts_with('/') && !media.contains("://"),
        "relative"
    );
    let base = format!("/hls/cam0/{instance}");

    // The media playlist has every LL-HLS tag.
    let r = get(app, &format!("{base}/stream.m3u8")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=1"),
        "the newest playlist: kept a second at most (HTTP counts whole seconds)"
    );
    let playlist = r.text().to_owned();
    for tag in [
        "#EXT-X-VERSION:9",
        "#EXT-X-TARGETDURATION:",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=",
        "PART-HOLD-BACK=0.600",
        "#EXT-X-PART-INF:PART-TARGET=0.200",
        "#EXT-X-MAP:URI=\"init0.mp4\"",
        "#EXT-X-PROGRAM-DATE-TIME:",
        ",INDEPENDENT=YES",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part",
    ] {
        assert!(playlist.contains(tag), "{tag} missing:\n{playlist}");
    }

    // Blocking reload for the hinted part: held until the part exists, never answered early.
    let (msn, part) = preload_hint(&playlist);
    let asked = Instant::now();
    let r = get(
        app,
        &format!("{base}/stream.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
    )
    .await;
    let waited = asked.elapsed();
    assert_eq!(r.status, StatusCode::OK);
    let target: u64 = r
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|t| t.parse().ok())
        .expect("target duration");
    assert_eq!(
        r.header("cache-control"),
        Some(format!("public, max-age={target}").as_str()),
        "one URL per part, the same for every viewer: a cache keeps it a target duration"
    );
    assert!(r.header("age").is_none(), "the origin is no cache");
    assert!(
        r.text().contains("#EXT-X-PART:DURATION=")
            && r.text().contains(&format!("URI=\"part{msn}.{part}.m4s\"")),
        "the answer lists the part it waited for:\n{}",
        r.text()
    );
    assert!(
        !r.text().contains(&format!(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part{msn}.{part}.m4s\""
        )),
        "not answered before the part was published"
    );
    println!("blocking reload for part {msn}.{part} answered after {waited:?}");

    // A request for the next hinted part is held until the part is complete.
    let (msn, part) = preload_hint(r.text());
    let r = get(app, &format!("{base}/part{msn}.{part}.m4s")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("video/iso.segment"));
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(&r.body[4..8], b"moof", "a CMAF fragment");

    let r = get(app, &format!("{base}/init0.mp4")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert_eq!(&r.body[4..8], b"ftyp");

    // Delta update: older segments are skipped once the playlist is long enough.
    let r = get(app, &format!("{base}/stream.m3u8?_HLS_skip=YES")).await;
    assert_eq!(r.status, StatusCode::OK);

    // Bad requests: clear statuses, and the stream is still served afterwards.
    for (uri, status) in [
        (
            format!("{base}/stream.m3u8?_HLS_msn={}", msn + 10),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{base}/stream.m3u8?_HLS_msn={msn}&_HLS_part=99"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{base}/stream.m3u8?_HLS_part=1"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{base}/stream.m3u8?_HLS_msn=x"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{base}/stream.m3u8?_HLS_skip=maybe"),
            StatusCode::BAD_REQUEST,
        ),
        ("/hls/nope/index.m3u8".to_owned(), StatusCode::NOT_FOUND),
        (
            "/hls/cam0/00000000/stream.m3u8".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("{base}/..%2F..%2Fetc%2Fpasswd"),
            StatusCode::NOT_FOUND,
        ),
        (format!("{base}/part1.m4s"), StatusCode::NOT_FOUND),
        (format!("{base}/part0.999.m4s"), StatusCode::NOT_FOUND),
        (format!("{base}/init7.mp4"), StatusCode::NOT_FOUND),
        ("/hls/../Cargo.toml".to_owned(), StatusCode::NOT_FOUND),
    ] {
        let r = get(app, &uri).await;
        assert_eq!(r.status, status, "{uri}: {}", r.text());
        assert!(!r.text().trim().is_empty(), "{uri}: a reason");
        // A cache must not pin an error: 404 a second at most, 400 not at all (the router's
        // own 404 for paths outside /hls is not an LL-HLS answer).
        if !uri.contains("/../") {
            let cache = if status == StatusCode::NOT_FOUND {
                "public, max-age=1"
            } else {
                "no-store"
            };
            assert_eq!(r.header("cache-control"), Some(cache), "{uri}");
        }
        assert_eq!(
            get(app, &format!("{base}/init0.mp4")).await.status,
            StatusCode::OK
        );
    }

    // Players on other origins may read it (CORS).
    let r = request(
        app,
        Method::GET,
        &format!("{base}/init0.mp4"),
        &[("origin", "https://player.example")],
        Body::empty(),
    )
    .await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(
        r.header("access-control-expose-headers")
            .is_some_and(|h| h.split(',').any(|h| h == "age")),
        "hls.js reads Age across origins for CDN tune-in: {:?}",
        r.header("access-control-expose-headers")
    );

    // /api/streams counts the muxer as a reader.
    let r = get(app, "/api/streams").await;
    assert!(r.text().contains("\"hls\":1"), "{}", r.text());
}

/// Many viewers waiting for the same next part (what a CDN without request collapsing, or
/// many edges, sends): every blocking playlist request and every held part request is
/// answered from the one publication, with one playlist render shared by all of them. Then the
/// source stalls, and the 503 that ends a wait is cacheable for a second only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_held_requests_share_one_wait_and_one_render() {
    const VIEWERS: usize = 100;
    let server = server(Duration::from_secs(15));
    let app = &server.app;
    let camera = start(&server, "cam3").await;
    let media = media_uri(app, "cam3").await;
    let base = format!("/hls/cam3/{}", media.split_once('/').unwrap().0);
    let playlist = get(app, &format!("{base}/stream.m3u8")).await;
    let (msn, part) = preload_hint(playlist.text());

    let counters = server.hls.counters();
    let renders_before = counters.renders();
    let blocking_before = counters.requests(RequestKind::BlockingPlaylist);
    let asked = Instant::now();
    let mut held = Vec::new();
    for _ in 0..VIEWERS {
        let app = app.clone();
        let reload = format!("{base}/stream.m3u8?_HLS_msn={msn}&_HLS_part={part}");
        let part_uri = format!("{base}/part{msn}.{part}.m4s");
        held.push(tokio::spawn(async move {
            let (playlist, part) = tokio::join!(get(&app, &reload), get(&app, &part_uri));
            (playlist, part)
        }));
    }
    let mut answers = Vec::new();
    for task in held {
        answers.push(task.await.unwrap());
    }
    let waited = asked.elapsed();
    let renders = counters.renders() - renders_before;
    println!(
        "{VIEWERS} viewers held for part {msn}.{part}: answered within {waited:?}, \
         {renders} playlist render(s) for {VIEWERS} blocking reloads"
    );
    let (first_playlist, first_part) = &answers[0];
    for (playlist, part_answer) in &answers {
        assert_eq!(playlist.status, StatusCode::OK, "{}", playlist.text());
        assert_eq!(part_answer.status, StatusCode::OK);
        assert_eq!(part_answer.body, first_part.body, "the same part bytes");
        assert!(
            playlist
                .text()
                .contains(&format!("URI=\"part{msn}.{part}.m4s\"")),
            "lists the part it waited for"
        );
    }
    let distinct: std::collections::HashSet<&[u8]> =
        answers.iter().map(|(p, _)| p.body.as_ref()).collect();
    assert!(
        distinct.len() <= 3,
        "at most the state the part arrived in and the next: {} distinct playlists",
        distinct.len()
    );
    assert!(first_playlist.body.len() > 100);
    assert_eq!(
        counters.requests(RequestKind::BlockingPlaylist) - blocking_before,
        VIEWERS as u64
    );
    assert!(
        renders <= 3,
        "{renders} renders for {VIEWERS} identical blocking reloads (one per published state)"
    );

    // The counters are on /metrics.
    let metrics = get(app, "/metrics").await;
    assert!(
        metrics
            .text()
            .contains("r58_hls_requests_total{kind=\"blocking_playlist\"}"),
        "{}",
        metrics.text()
    );
    assert!(metrics.text().contains("r58_hls_playlist_renders_total "));

    // The source stalls (gone, but within its linger time): a blocking reload for the next part
    // gets 503 after three target durations, kept by caches for a second only, so a CDN asks
    // again soon rather than pinning the error.
    let playlist = get(app, &format!("{base}/stream.m3u8")).await;
    let (msn, part) = preload_hint(playlist.text());
    drop(camera);
    let r = get(
        app,
        &format!("{base}/stream.m3u8?_HLS_msn={msn}&_HLS_part={}", part + 1),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("public, max-age=1"));
    assert_eq!(r.header("retry-after"), Some("1"));
}

/// Right after a stream goes online its muxer has no part yet. A playlist then would be empty,
/// which an edge keeps and hls.js gives up on (levelEmptyError); instead every playlist request
/// is held for the first part, and answered 503 with `Retry-After` and no cache lifetime if it
/// does not come (here: a WHIP publisher that never sends media). A request held while a camera
/// starts gets the playlist with its first part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_parts_gets_a_retryable_503_never_an_empty_playlist() {
    let server = server(Duration::from_secs(15));
    let app = &server.app;
    publish(app, "quiet").await;
    common::wait_until("the muxer of the WHIP stream exists", || {
        server.hls.get("quiet").is_some()
    })
    .await;
    let instance = server.hls.get("quiet").unwrap().instance.clone();
    let base = format!("/hls/quiet/{instance}");
    let (playlist, blocking, delta) = (
        format!("{base}/stream.m3u8"),
        format!("{base}/stream.m3u8?_HLS_msn=0&_HLS_part=0"),
        format!("{base}/stream.m3u8?_HLS_skip=YES"),
    );
    let asked = Instant::now();
    let (multivariant, playlist, blocking, delta) = tokio::join!(
        get(app, "/hls/quiet/index.m3u8"),
        get(app, &playlist),
        get(app, &blocking),
        get(app, &delta),
    );
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "held for the first part before giving up ({:?})",
        asked.elapsed()
    );
    for (what, r) in [
        ("multivariant", multivariant),
        ("media playlist", playlist),
        ("blocking reload", blocking),
        ("delta update", delta),
    ] {
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {}",
            r.text()
        );
        assert_eq!(r.header("retry-after"), Some("1"), "{what}");
        assert_eq!(
            r.header("cache-control"),
            Some("no-store"),
            "{what}: the retry must reach the origin"
        );
        assert!(
            r.text().contains("no LL-HLS part yet"),
            "{what}: {}",
            r.text()
        );
    }

    // A camera: ask as soon as its muxer exists, before or after its first part.
    let engine = server.engine.clone();
    let starting =
        tokio::spawn(
            async move { start_cameras(&engine, &[small_camera("cam4", 500_000, 30)]).await },
        );
    common::wait_until("the camera's muxer exists", || {
        server.hls.get("cam4").is_some()
    })
    .await;
    let instance = server.hls.get("cam4").unwrap().instance.clone();
    let r = get(app, &format!("/hls/cam4/{instance}/stream.m3u8")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.text().contains("#EXT-X-PART:"),
        "never empty: {}",
        r.text()
    );
    let _camera = starting.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_source_continues_the_playlist_and_a_gone_one_is_freed() {
    let server = server(Duration::from_secs(2));
    let app = &server.app;
    let camera = start(&server, "cam1").await;
    let media = media_uri(app, "cam1").await;
    let base = format!("/hls/cam1/{}", media.split_once('/').unwrap().0);
    // Wait for a complete segment so the discontinuity has something before it.
    wait_segment(app, &base, 0).await;

    drop(camera);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let camera = start(&server, "cam1").await;
    let text = wait_segment(app, &base, 3).await;
    assert!(
        text.contains("#EXT-X-DISCONTINUITY\n"),
        "same instance, continued after a discontinuity: {text}"
    );
    assert_eq!(media_uri(app, "cam1").await, media);

    // Gone for longer than the linger time: the muxer is freed and the stream 404s.
    drop(camera);
    let gone = Instant::now();
    loop {
        let r = get(app, "/hls/cam1/index.m3u8").await;
        if r.status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "still served: {}",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        gone.elapsed() >= Duration::from_secs(2),
        "not before the linger time"
    );
    assert_eq!(
        get(app, &format!("{base}/init0.mp4")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_reads_the_live_playlist_over_http() {
    if !Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "ffprobe is required in CI"
        );
        println!("skipping: ffprobe not installed");
        return;
    }
    let server = server(Duration::from_secs(15));
    let _camera = start(&server, "cam2").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, server.app.clone()).into_future());
    // Three complete segments, so a plain HLS client has something to start on.
    let media = media_uri(&server.app, "cam2").await;
    let base = format!("/hls/cam2/{}", media.split_once('/').unwrap().0);
    wait_segment(&server.app, &base, 2).await;

    let url = format!("http://{addr}/hls/cam2/index.m3u8");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("ffprobe")
            .args(["-v", "error", "-read_intervals", "%+#20", "-count_frames"])
            .args(["-select_streams", "v:0", "-show_entries"])
            .args([
                "stream=codec_name,width,height,nb_read_frames",
                "-of",
                "csv=p=0",
            ])
            .arg(&url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    // One line per stream, repeated for the HLS program: read the first.
    let line = stdout
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let fields: Vec<&str> = line.trim().split(',').collect();
    assert_eq!(&fields[..3], ["h264", "320", "240"], "{stdout} {stderr}");
    let frames: u32 = fields[3].parse().unwrap();
    assert!(frames >= 20, "ffprobe decoded {frames} frames");
}
