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
        let r = server.request(Method::GET, &uri, &[], Body::empty()).await;
        assert!(r.status.is_success(), "GET {uri}: {r:?}");
        assert!(r.body.is_empty(), "GET {uri} has a body: {r:?}");
    }
}

#[tokio::test]
async fn options_on_endpoint_advertises_accept_post() {
    let server = Server::new();
    for uri in ["/whip/opt", "/whep/opt"] {
        let r = server
            .request(Method::OPTIONS, uri, &[], Body::empty())
            .await;
        assert!(
            matches!(r.status, StatusCode::NO_CONTENT | StatusCode::OK),
            "OPTIONS {uri}: {r:?}"
        );
        assert_eq!(r.header("accept-post"), Some(SDP), "OPTIONS {uri}: {r:?}");
        assert!(r.header("link").is_none());
    }
    // A browser's actual (non-preflight) OPTIONS carries an Origin and can read the answer.
    let r = server
        .request(
            Method::OPTIONS,
            "/whip/opt",
            &[("origin", "https://app.example")],
            Body::empty(),
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");
    assert_eq!(r.header("accept-post"), Some(SDP), "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{r:?}");
    // The session resource advertises PATCH.
    let created = server.publish("opt").await;
    let r = server
        .request(Method::OPTIONS, &created.location(), &[], Body::empty())
        .await;
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
        let r = server
            .request(Method::OPTIONS, uri, &preflight, Body::empty())
            .await;
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
        .request(
            Method::OPTIONS,
            &created.location(),
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "PATCH"),
                ("access-control-request-headers", "content-type, if-match"),
            ],
            Body::empty(),
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
        .request(
            Method::POST,
            "/whep/nobody",
            &[("content-type", SDP), ("origin", "https://app.example")],
            CHROME_WHEP.to_owned(),
        )
        .await;
    r.assert_status(StatusCode::NOT_FOUND);
    assert!(r.header("access-control-allow-origin").is_some(), "{r:?}");
}

#[tokio::test]
async fn cors_restricted_origins() {
    let server = Server::with(answering_config(), Vec::new(), &["https://ok.example"]);
    let preflight = |origin| {
        [
            ("origin", origin),
            ("access-control-request-method", "POST"),
        ]
    };
    let evil = server
        .request(
            Method::OPTIONS,
            "/whip/o",
            &preflight("https://evil.example"),
            Body::empty(),
        )
        .await;
    assert!(
        evil.header("access-control-allow-origin").is_none(),
        "{evil:?}"
    );
    let ok = server
        .request(
            Method::OPTIONS,
            "/whip/o",
            &preflight("https://ok.example"),
            Body::empty(),
        )
        .await;
    assert!(ok.status.is_success(), "{ok:?}");
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://ok.example")
    );

    let evil = server
        .request(
            Method::POST,
            "/whip/o",
            &[("content-type", SDP), ("origin", "https://evil.example")],
            CHROME_WHIP.to_owned(),
        )
        .await;
    assert!(
        evil.header("access-control-allow-origin").is_none(),
        "{evil:?}"
    );
    let ok = server
        .request(
            Method::POST,
            "/whip/o2",
            &[("content-type", SDP), ("origin", "https://ok.example")],
            CHROME_WHIP.to_owned(),
        )
        .await;
    ok.assert_status(StatusCode::CREATED);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://ok.example")
    );
    // Plain OPTIONS still advertises Accept-Post with restricted origins, and applies them.
    let r = server
        .request(Method::OPTIONS, "/whip/o", &[], Body::empty())
        .await;
    assert_eq!(r.header("accept-post"), Some(SDP), "{r:?}");
    let r = server
        .request(
            Method::OPTIONS,
            "/whip/o",
            &[("origin", "https://evil.example")],
            Body::empty(),
        )
        .await;
    assert!(r.header("access-control-allow-origin").is_none(), "{r:?}");
    let r = server
        .request(
            Method::OPTIONS,
            "/whip/o",
            &[("origin", "https://ok.example")],
            Body::empty(),
        )
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://ok.example"),
        "{r:?}"
    );
    assert_eq!(r.header("accept-post"), Some(SDP), "{r:?}");
    server.assert_still_serves().await;
}
