use super::*;

// ---------------------------------------------------------------------------------------------
// GET and OPTIONS

#[tokio::test]
async fn get_on_endpoint_and_session_is_2xx_without_body() {
    let server = Server::new();
    let publisher = server.publish("get").await;
    let viewer = server.play("get").await;
    for uri in [
        "/whip/get".to_owned(),
        "/whep/get".to_owned(),
        publisher.location(),
        viewer.location(),
    ] {
        let r = server.get(&uri).await;
        assert!(r.status.is_success(), "GET {uri}: {r:?}");
        assert!(r.body.is_empty(), "GET {uri} has a body: {r:?}");
    }
}

#[tokio::test]
async fn options_on_endpoint_advertises_accept_post() {
    let server = Server::new();
    for uri in ["/whip/opt", "/whep/opt"] {
        let r = server.options(uri, &[]).await;
        assert!(
            matches!(r.status, StatusCode::NO_CONTENT | StatusCode::OK),
            "OPTIONS {uri}: {r:?}"
        );
        assert_eq!(r.header("accept-post"), Some(SDP), "OPTIONS {uri}: {r:?}");
        assert!(r.header("link").is_none());
    }
    // A browser's actual (non-preflight) OPTIONS carries an Origin and can read the answer.
    let r = server
        .options("/whip/opt", &[("origin", "https://app.example")])
        .await;
    assert!(r.status.is_success(), "{r:?}");
    assert_eq!(r.header("accept-post"), Some(SDP), "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{r:?}");
    // The session resource advertises PATCH.
    let created = server.publish("opt").await;
    let r = server.options(&created.location(), &[]).await;
    assert!(r.status.is_success(), "{r:?}");
    assert_eq!(r.header("accept-patch"), Some(SDPFRAG), "{r:?}");
}

#[tokio::test]
async fn cors_preflight_allows_origin_without_link() {
    let server = Server::new();
    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
        (
            "access-control-request-headers",
            "content-type, authorization",
        ),
    ];
    for uri in ["/whip/cors", "/whep/cors"] {
        let r = server.options(uri, &preflight).await;
        assert!(r.status.is_success(), "preflight {uri}: {r:?}");
        assert!(r.header("access-control-allow-origin").is_some(), "{r:?}");
        let methods = r
            .header("access-control-allow-methods")
            .unwrap_or_default()
            .to_ascii_uppercase();
        assert!(methods.contains("POST"), "{r:?}");
        let allowed = r
            .header("access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            allowed.contains("content-type") && allowed.contains("authorization"),
            "{r:?}"
        );
        assert!(
            r.header("link").is_none(),
            "no ICE server Link on preflight: {r:?}"
        );
    }
    // Preflight for PATCH on a session.
    let created = server.publish("cors").await;
    let r = server
        .options(
            &created.location(),
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "PATCH"),
                ("access-control-request-headers", "content-type, if-match"),
            ],
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");
    assert!(r.header("access-control-allow-origin").is_some(), "{r:?}");
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(allowed.contains("if-match"), "{r:?}");
    assert!(r.header("link").is_none());
}

#[tokio::test]
async fn cors_on_post_exposes_location_etag_link() {
    let server = Server::new();
    for (uri, offer) in [("/whip/expose", CHROME_WHIP), ("/whep/expose", CHROME_WHEP)] {
        let r = server
            .request(
                Method::POST,
                uri,
                &[("content-type", SDP), ("origin", "https://app.example")],
                offer.to_owned(),
            )
            .await;
        r.assert_status(StatusCode::CREATED);
        assert!(r.header("access-control-allow-origin").is_some(), "{r:?}");
        let exposed: Vec<String> = r
            .headers
            .get_all("access-control-expose-headers")
            .iter()
            .flat_map(|v| v.to_str().unwrap_or_default().split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        for h in ["location", "etag", "link"] {
            assert!(exposed.iter().any(|e| e == h), "{h} not exposed: {r:?}");
        }
    }
    // Errors carry CORS headers too, so a browser can read the reason.
    let r = server
        .post_sdp_with(
            "/whep/nobody",
            CHROME_WHEP,
            &[("origin", "https://app.example")],
        )
        .await;
    r.assert_status(StatusCode::NOT_FOUND);
    assert!(r.header("access-control-allow-origin").is_some(), "{r:?}");
}

#[tokio::test]
async fn cors_restricted_origins() {
    let server = Server::with(answering_config(), Vec::new(), &["https://ok.example"]);
    // A listed origin gets itself back in Access-Control-Allow-Origin, on a preflight, a POST
    // and a plain OPTIONS; any other gets no such header.
    for (origin, stream, allowed) in [
        ("https://evil.example", "o", None),
        ("https://ok.example", "o2", Some("https://ok.example")),
    ] {
        let preflight = server
            .options(
                "/whip/o",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                ],
            )
            .await;
        let post = server
            .post_sdp_with(
                &format!("/whip/{stream}"),
                CHROME_WHIP,
                &[("origin", origin)],
            )
            .await;
        let plain = server.options("/whip/o", &[("origin", origin)]).await;
        for r in [&preflight, &post, &plain] {
            assert_eq!(r.header("access-control-allow-origin"), allowed, "{r:?}");
        }
        if allowed.is_some() {
            assert!(preflight.status.is_success(), "{preflight:?}");
            post.assert_status(StatusCode::CREATED);
            assert_eq!(plain.header("accept-post"), Some(SDP), "{plain:?}");
        }
    }
    // Plain OPTIONS without an Origin still advertises Accept-Post with restricted origins.
    let r = server.options("/whip/o", &[]).await;
    assert_eq!(r.header("accept-post"), Some(SDP), "{r:?}");
    server.assert_still_serves().await;
}
