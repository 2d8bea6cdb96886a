use super::*;

// ---------------------------------------------------------------------------------------------
// Overload

#[tokio::test]
async fn session_limit_is_503_with_retry_after() {
    let server = Server::with(
        EngineConfig {
            max_sessions: 2,
            ..answering_config()
        },
        Vec::new(),
        &[],
    );
    let first = server.publish("full1").await;
    server.play("full1").await;
    for (uri, offer) in [("/whip/full2", CHROME_WHIP), ("/whep/full1", CHROME_WHEP)] {
        let r = server.post_sdp(uri, offer).await;
        r.assert_status(StatusCode::SERVICE_UNAVAILABLE)
            .assert_one_line_reason();
        let retry = r.header("retry-after").expect("Retry-After");
        assert!(retry.parse::<u64>().is_ok_and(|s| s > 0), "{r:?}");
        assert!(r.header("location").is_none());
    }
    // Freeing a session makes room again.
    server
        .delete(&first.location(), &[])
        .await
        .assert_status(StatusCode::OK);
    server.assert_still_serves().await;
}

// ---------------------------------------------------------------------------------------------
// Health, API, metrics

#[tokio::test]
async fn healthz_streams_and_metrics() {
    let server = Server::new();
    let r = server.get("/healthz").await;
    r.assert_status(StatusCode::OK);

    let r = server.get("/api/streams").await;
    r.assert_status(StatusCode::OK);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let list: serde_json::Value = serde_json::from_str(r.text()).expect("JSON");
    assert_eq!(list, serde_json::json!([]));

    server.publish("listed").await;
    server.play("listed").await;
    let r = server.get("/api/streams").await;
    r.assert_status(StatusCode::OK);
    let list: serde_json::Value = serde_json::from_str(r.text()).expect("JSON");
    let streams = list.as_array().expect("a JSON array");
    assert_eq!(streams.len(), 1, "{list}");
    let stream = &streams[0];
    assert_eq!(stream["name"], "listed");
    assert_eq!(stream["source"], "whip");
    let tracks = stream["tracks"].as_array().expect("tracks array");
    assert_eq!(tracks.len(), 2, "{stream}");
    let codecs: Vec<String> = tracks
        .iter()
        .map(|t| t["codec"].as_str().expect("codec").to_ascii_lowercase())
        .collect();
    assert!(codecs.iter().any(|c| c == "opus"), "{codecs:?}");
    assert!(
        codecs.iter().any(|c| c == "h264" || c == "vp8"),
        "{codecs:?}"
    );
    for t in tracks {
        assert!(t["kind"] == "audio" || t["kind"] == "video", "{t}");
        assert!(t["packets_in"].is_u64() && t["bitrate_bps"].is_u64(), "{t}");
    }
    // A viewer becomes a reader of the stream once connected; this one never does ICE.
    assert!(stream["viewers"].is_u64(), "{stream}");

    let r = server.get("/metrics").await;
    r.assert_status(StatusCode::OK);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    assert!(
        r.text().lines().any(|l| l == "r58_sessions 2"),
        "metrics lack r58_sessions 2:\n{}",
        r.text()
    );
    assert!(r.text().contains("stream=\"listed\""), "{}", r.text());
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let server = Server::new();
    server
        .get("/nope")
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let r = server
        .request(
            Method::PUT,
            "/whip/x",
            &[("content-type", SDP)],
            CHROME_WHIP.to_owned(),
        )
        .await;
    r.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    let r = server.post_sdp("/whip/x/abc", CHROME_WHIP).await;
    r.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    server.assert_still_serves().await;
}
