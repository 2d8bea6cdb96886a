//! Conformance of the WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) HTTP endpoints: every
//! status code and header rule of issue 3, checked against the real router with in-process
//! `oneshot` requests. The engine is sans-IO, so no socket is opened; time is moved by calling
//! `handle_timeout` through the shared engine handle.
//!
//! After each refused request the test checks that the server still serves a good one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use r58::config::AuthRule;
use r58::http::{AppState, MAX_BODY_BYTES, router};
use sfu::webrtc::driver::SharedEngine;
use sfu::webrtc::engine::{Engine, EngineConfig};
use tower::ServiceExt;

const CHROME_WHIP: &str = include_str!("../sfu/testdata/sdp/chrome_whip.sdp");
const CHROME_WHEP: &str = include_str!("../sfu/testdata/sdp/chrome_whep.sdp");
const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";
/// The client ICE credentials of the Chromium WHIP fixture.
const WHIP_UFRAG: &str = "Xp7q";
const WHIP_PWD: &str = "Vd3kqL9rT2mN8bW4yH6cJ1sF";
const FINGERPRINT: &str = "sha-256 3B:7A:E1:05:C9:6D:42:88:1F:A0:BC:37:DE:59:04:6E:92:AB:13:F7:58:C2:0D:E4:71:9A:36:BF:80:25:CD:4E";

// ---------------------------------------------------------------------------------------------
// Harness

/// The router and the engine handle behind it.
struct Server {
    app: Router,
    engine: SharedEngine,
}

/// A response with its body read.
#[derive(Debug)]
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    fn etag(&self) -> String {
        self.header("etag").expect("ETag header").to_owned()
    }

    fn location(&self) -> String {
        self.header("location").expect("Location header").to_owned()
    }

    #[track_caller]
    fn assert_status(&self, expected: StatusCode) -> &Self {
        assert_eq!(
            self.status, expected,
            "unexpected status; response: {self:?}"
        );
        self
    }

    /// A 4xx/5xx body must be a single non-empty line explaining why.
    #[track_caller]
    fn assert_one_line_reason(&self) {
        let reason = self.body.trim_end_matches('\n');
        assert!(!reason.trim().is_empty(), "empty reason: {self:?}");
        assert!(!reason.contains('\n'), "reason is not one line: {self:?}");
    }
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        candidates: vec![SocketAddr::from(([192, 0, 2, 1], 8189))],
        ..EngineConfig::default()
    }
}

impl Server {
    fn new() -> Self {
        Self::with(engine_config(), Vec::new(), &[])
    }

    fn with(config: EngineConfig, auth: Vec<AuthRule>, cors_origins: &[&str]) -> Self {
        let engine = SharedEngine::new(Engine::new(config).expect("engine"));
        let origins: Vec<String> = cors_origins.iter().map(|s| (*s).to_owned()).collect();
        let app = router(AppState::new(engine.clone(), auth), &origins);
        Self { app, engine }
    }

    async fn send(&self, request: Request<Body>) -> Resp {
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Resp {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).expect("UTF-8 body"),
        }
    }

    async fn request(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(body.into()).expect("request")).await
    }

    async fn post_sdp(&self, uri: &str, offer: &str) -> Resp {
        self.request(
            Method::POST,
            uri,
            &[("content-type", SDP)],
            offer.to_owned(),
        )
        .await
    }

    /// Publishes `name` with the Chromium offer and checks it was created.
    async fn publish(&self, name: &str) -> Resp {
        let r = self.post_sdp(&format!("/whip/{name}"), CHROME_WHIP).await;
        r.assert_status(StatusCode::CREATED);
        r
    }

    /// Plays `name` with the Chromium offer and checks it was created.
    async fn play(&self, name: &str) -> Resp {
        let r = self.post_sdp(&format!("/whep/{name}"), CHROME_WHEP).await;
        r.assert_status(StatusCode::CREATED);
        r
    }

    async fn patch(&self, uri: &str, headers: &[(&str, &str)], fragment: &str) -> Resp {
        self.request(Method::PATCH, uri, headers, fragment.to_owned())
            .await
    }

    async fn delete(&self, uri: &str, headers: &[(&str, &str)]) -> Resp {
        self.request(Method::DELETE, uri, headers, Body::empty())
            .await
    }

    /// The server still takes a good publish (and its DELETE) after whatever came before.
    async fn assert_still_serves(&self) {
        let name = unique("alive");
        let created = self.publish(&name).await;
        assert_eq!(created.header("content-type"), Some(SDP));
        self.delete(&created.location(), &[])
            .await
            .assert_status(StatusCode::OK);
    }
}

/// A stream name no other request of the same test uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A strong entity tag: quoted, not `W/`.
#[track_caller]
fn assert_strong_etag(etag: &str) {
    assert!(!etag.starts_with("W/"), "weak ETag {etag:?}");
    assert!(
        etag.len() >= 3 && etag.starts_with('"') && etag.ends_with('"'),
        "ETag {etag:?} is not a quoted strong tag"
    );
    assert!(
        !etag[1..etag.len() - 1].contains('"'),
        "ETag {etag:?} has an inner quote"
    );
}

/// The value of the first `a={attr}:` line of an SDP body.
fn sdp_attr<'a>(sdp: &'a str, attr: &str) -> Option<&'a str> {
    let prefix = format!("a={attr}:");
    sdp.lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix(prefix.as_str()))
}

fn has_line(sdp: &str, line: &str) -> bool {
    sdp.lines().any(|l| l.trim_end_matches('\r') == line)
}

/// A minimal but complete offer whose media sections are `sections` (each the text after `m=`
/// plus its own attributes); ICE, DTLS and mid lines are added per section.
fn offer_with_sections(sections: &[(&str, &[&str])], direction: &str) -> String {
    let mids: Vec<String> = (0..sections.len()).map(|i| i.to_string()).collect();
    let mut sdp = format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE {}\r\n",
        mids.join(" ")
    );
    for (i, (mline, attrs)) in sections.iter().enumerate() {
        sdp.push_str(&format!(
            "m={mline}\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:{WHIP_UFRAG}\r\na=ice-pwd:{WHIP_PWD}\r\n\
             a=fingerprint:{FINGERPRINT}\r\na=setup:actpass\r\na=mid:{i}\r\n"
        ));
        if !mline.starts_with("application") {
            sdp.push_str(&format!("a={direction}\r\na=rtcp-mux\r\n"));
        }
        for a in *attrs {
            sdp.push_str(&format!("{a}\r\n"));
        }
    }
    sdp
}

fn opus_section() -> (&'static str, &'static [&'static str]) {
    (
        "audio 9 UDP/TLS/RTP/SAVPF 111",
        &[
            "a=rtpmap:111 opus/48000/2",
            "a=fmtp:111 minptime=10;useinbandfec=1",
        ],
    )
}

/// A trickle fragment for the Chromium WHIP fixture's ICE session (RFC 8840).
fn trickle_fragment() -> String {
    format!(
        "a=ice-ufrag:{WHIP_UFRAG}\r\na=ice-pwd:{WHIP_PWD}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n\
         a=mid:0\r\na=candidate:1 1 udp 2130706431 198.51.100.7 50000 typ host\r\n\
         a=end-of-candidates\r\n"
    )
}

/// An ICE restart fragment with new client credentials.
fn restart_fragment(ufrag: &str, pwd: &str) -> String {
    format!(
        "a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// ---------------------------------------------------------------------------------------------
// POST: session creation

#[tokio::test]
async fn whip_post_creates_session_with_answer_location_and_strong_etag() {
    let server = Server::new();
    let r = server.publish("cam1").await;
    assert_eq!(r.header("content-type"), Some(SDP));
    let location = r.location();
    assert!(
        location.starts_with("/whip/cam1/") && location.len() > "/whip/cam1/".len(),
        "Location {location:?} is not a resource under /whip/cam1/"
    );
    assert!(!location["/whip/cam1/".len()..].contains('/'));
    assert_strong_etag(&r.etag());
    for line in ["a=recvonly", "a=ice-lite", "a=setup:passive"] {
        assert!(has_line(&r.body, line), "answer lacks {line}:\n{}", r.body);
    }
    assert!(
        !has_line(&r.body, "a=sendonly"),
        "WHIP answer must not send"
    );
    assert!(sdp_attr(&r.body, "ice-ufrag").is_some());
    assert!(sdp_attr(&r.body, "ice-pwd").is_some());
    assert!(sdp_attr(&r.body, "fingerprint").is_some());

    // A second session (another stream) gets its own resource and its own ETag.
    let second = server.publish("cam2").await;
    assert_strong_etag(&second.etag());
    assert_ne!(second.etag(), r.etag());
    assert_ne!(second.location(), location);
    // And so does a viewer of the first.
    let viewer = server.play("cam1").await;
    assert_ne!(viewer.etag(), r.etag());
    assert_ne!(viewer.etag(), second.etag());
}

#[tokio::test]
async fn whep_post_plays_a_published_stream() {
    let server = Server::new();
    server.publish("show").await;
    let r = server.play("show").await;
    assert_eq!(r.header("content-type"), Some(SDP));
    let location = r.location();
    assert!(
        location.starts_with("/whep/show/") && location.len() > "/whep/show/".len(),
        "Location {location:?} is not a resource under /whep/show/"
    );
    assert_strong_etag(&r.etag());
    for line in ["a=sendonly", "a=ice-lite", "a=setup:passive"] {
        assert!(has_line(&r.body, line), "answer lacks {line}:\n{}", r.body);
    }
    assert!(
        !has_line(&r.body, "a=recvonly"),
        "WHEP answer must not receive"
    );

    let other = server.play("show").await;
    assert_ne!(other.etag(), r.etag());
    assert_ne!(other.location(), location);
}

#[tokio::test]
async fn whep_post_for_unpublished_stream_is_404() {
    let server = Server::new();
    let r = server.post_sdp("/whep/nobody", CHROME_WHEP).await;
    r.assert_status(StatusCode::NOT_FOUND)
        .assert_one_line_reason();
    assert!(r.header("location").is_none());
    assert!(r.header("etag").is_none());
    server.assert_still_serves().await;
}

#[tokio::test]
async fn post_with_wrong_or_missing_content_type_is_415() {
    let server = Server::new();
    for (path, offer) in [("/whip/ct", CHROME_WHIP), ("/whep/ct", CHROME_WHEP)] {
        for ct in [
            "text/plain",
            "application/json",
            "application/sdpx",
            "application/x-www-form-urlencoded",
        ] {
            let r = server
                .request(
                    Method::POST,
                    path,
                    &[("content-type", ct)],
                    offer.to_owned(),
                )
                .await;
            r.assert_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .assert_one_line_reason();
            assert!(r.header("location").is_none());
            server.assert_still_serves().await;
        }
        let r = server
            .request(Method::POST, path, &[], offer.to_owned())
            .await;
        r.assert_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .assert_one_line_reason();
        server.assert_still_serves().await;
    }
    // Media type parameters and case do not matter.
    server
        .request(
            Method::POST,
            "/whip/ct-params",
            &[("content-type", "Application/SDP; charset=utf-8")],
            CHROME_WHIP.to_owned(),
        )
        .await
        .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn garbage_sdp_is_400_with_one_line_reason() {
    let server = Server::new();
    let cases: [&[u8]; 5] = [
        b"hello world",
        b"",
        b"v=0\r\nthis is not sdp\r\n",
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio\r\n",
        b"\xff\xfe\x00 not utf-8",
    ];
    for body in cases {
        let r = server
            .request(
                Method::POST,
                "/whip/garbage",
                &[("content-type", SDP)],
                body.to_vec(),
            )
            .await;
        r.assert_status(StatusCode::BAD_REQUEST)
            .assert_one_line_reason();
        assert!(r.header("location").is_none(), "{r:?}");
        server.assert_still_serves().await;
    }
    // The same on WHEP (the stream exists, the offer does not parse).
    server.publish("garbage-whep").await;
    let r = server.post_sdp("/whep/garbage-whep", "nonsense").await;
    r.assert_status(StatusCode::BAD_REQUEST)
        .assert_one_line_reason();
    server.assert_still_serves().await;
}

#[tokio::test]
async fn offer_without_usable_media_is_422() {
    let server = Server::new();
    let datachannel_only = offer_with_sections(
        &[(
            "application 9 UDP/DTLS/SCTP webrtc-datachannel",
            &["a=sctp-port:5000", "a=max-message-size:262144"],
        )],
        "sendonly",
    );
    let pcmu_only = offer_with_sections(
        &[("audio 9 UDP/TLS/RTP/SAVPF 0", &["a=rtpmap:0 PCMU/8000"])],
        "sendonly",
    );
    // Opus, but in a direction a publisher cannot use.
    let recvonly_publish = offer_with_sections(&[opus_section()], "recvonly");
    for offer in [&datachannel_only, &pcmu_only, &recvonly_publish] {
        let r = server.post_sdp("/whip/nomedia", offer).await;
        r.assert_status(StatusCode::UNPROCESSABLE_ENTITY)
            .assert_one_line_reason();
        assert!(r.header("location").is_none());
        server.assert_still_serves().await;
    }
    // None of those created a stream.
    server
        .post_sdp("/whep/nomedia", CHROME_WHEP)
        .await
        .assert_status(StatusCode::NOT_FOUND);

    // A viewer whose offer cannot receive anything of an existing stream.
    server.publish("nomedia-play").await;
    let r = server
        .post_sdp("/whep/nomedia-play", &datachannel_only)
        .await;
    r.assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_one_line_reason();
    server.assert_still_serves().await;
    // A viewer that can only decode VP8 of an H.264 stream gets a clear 4xx, not black video.
    let vp8_viewer = offer_with_sections(
        &[(
            "video 9 UDP/TLS/RTP/SAVPF 96",
            &["a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack pli"],
        )],
        "recvonly",
    );
    let r = server.post_sdp("/whep/nomedia-play", &vp8_viewer).await;
    assert!(
        matches!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::NOT_ACCEPTABLE
        ),
        "{r:?}"
    );
    r.assert_one_line_reason();
    server.assert_still_serves().await;
}

#[tokio::test]
async fn minimal_generated_opus_offer_is_accepted() {
    // Guards the generated offers above: with a usable codec the same skeleton is accepted, so
    // the 422s are about the media, not about the skeleton.
    let server = Server::new();
    let r = server
        .post_sdp(
            "/whip/generated",
            &offer_with_sections(&[opus_section()], "sendonly"),
        )
        .await;
    r.assert_status(StatusCode::CREATED);
    assert!(has_line(&r.body, "a=recvonly"));
}

#[tokio::test]
async fn body_over_64_kib_is_413() {
    let server = Server::new();
    let mut big = CHROME_WHIP.to_owned();
    while big.len() <= MAX_BODY_BYTES + 1024 {
        big.push_str("a=x-padding:0123456789abcdef0123456789abcdef0123456789abcdef\r\n");
    }
    for path in ["/whip/big", "/whep/big"] {
        let r = server.post_sdp(path, &big).await;
        r.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
        assert!(r.header("location").is_none());
        server.assert_still_serves().await;
        // Declared up front with Content-Length too.
        let r = server
            .request(
                Method::POST,
                path,
                &[
                    ("content-type", SDP),
                    ("content-length", &big.len().to_string()),
                ],
                big.clone(),
            )
            .await;
        r.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
        server.assert_still_serves().await;
    }
    // An oversized PATCH is refused the same way.
    let created = server.publish("big-patch").await;
    let mut frag = trickle_fragment();
    while frag.len() <= MAX_BODY_BYTES + 1024 {
        frag.push_str("a=candidate:1 1 udp 2130706431 198.51.100.7 50000 typ host\r\n");
    }
    let r = server
        .patch(
            &created.location(),
            &[("content-type", SDPFRAG), ("if-match", &created.etag())],
            &frag,
        )
        .await;
    r.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    server.assert_still_serves().await;
}

#[tokio::test]
async fn offer_with_100_m_lines_is_a_clear_error() {
    let server = Server::new();
    let sections: Vec<(&str, &[&str])> = (0..100).map(|_| opus_section()).collect();
    let offer = offer_with_sections(&sections, "sendonly");
    assert!(offer.len() < MAX_BODY_BYTES, "keep under the body limit");
    for path in ["/whip/many", "/whep/many"] {
        let r = server.post_sdp(path, &offer).await;
        assert!(
            matches!(
                r.status,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{r:?}"
        );
        r.assert_one_line_reason();
        assert!(
            r.body.contains("100"),
            "the reason should say how many: {r:?}"
        );
        server.assert_still_serves().await;
    }
}

#[tokio::test]
async fn invalid_stream_names_are_400() {
    let server = Server::new();
    let long = "a".repeat(65);
    let names = [
        "..",
        ".",
        long.as_str(),
        "a%20b",
        "a%2Fb",
        "caf%C3%A9",
        "a:b",
        "%00",
    ];
    for name in names {
        for (kind, offer) in [("whip", CHROME_WHIP), ("whep", CHROME_WHEP)] {
            let r = server.post_sdp(&format!("/{kind}/{name}"), offer).await;
            r.assert_status(StatusCode::BAD_REQUEST)
                .assert_one_line_reason();
            assert!(r.header("location").is_none());
            server.assert_still_serves().await;
        }
    }
    // The longest valid name is fine.
    server.publish(&"b".repeat(64)).await;
    server.publish("Name_with-all.chars09").await;
}

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
    let server = Server::with(engine_config(), Vec::new(), &["https://ok.example"]);
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

// ---------------------------------------------------------------------------------------------
// PATCH

#[tokio::test]
async fn patch_trickle_is_204_without_etag() {
    let server = Server::new();
    let created = server.publish("trickle").await;
    let etag = created.etag();
    let r = server
        .patch(
            &created.location(),
            &[("content-type", SDPFRAG), ("if-match", &etag)],
            &trickle_fragment(),
        )
        .await;
    r.assert_status(StatusCode::NO_CONTENT);
    assert!(
        r.header("etag").is_none(),
        "trickle must not return an ETag: {r:?}"
    );
    assert!(r.body.is_empty());
    // An end-of-candidates-only fragment works as well.
    server
        .patch(
            &created.location(),
            &[("content-type", SDPFRAG), ("if-match", &etag)],
            &format!("a=ice-ufrag:{WHIP_UFRAG}\r\na=ice-pwd:{WHIP_PWD}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=end-of-candidates\r\n"),
        )
        .await
        .assert_status(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn patch_errors_415_428_412_404() {
    let server = Server::new();
    let created = server.publish("patcherr").await;
    let location = created.location();
    let etag = created.etag();
    let frag = trickle_fragment();

    // Wrong and missing content type.
    for headers in [
        &[
            ("content-type", "application/sdp"),
            ("if-match", etag.as_str()),
        ][..],
        &[("content-type", "text/plain"), ("if-match", etag.as_str())][..],
        &[("if-match", etag.as_str())][..],
    ] {
        let r = server.patch(&location, headers, &frag).await;
        r.assert_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .assert_one_line_reason();
        server.assert_still_serves().await;
    }
    // Missing If-Match.
    let r = server
        .patch(&location, &[("content-type", SDPFRAG)], &frag)
        .await;
    r.assert_status(StatusCode::PRECONDITION_REQUIRED)
        .assert_one_line_reason();
    server.assert_still_serves().await;
    // Stale / wrong If-Match.
    for stale in ["\"not-the-etag\"", "W/\"x\"", "garbage"] {
        let r = server
            .patch(
                &location,
                &[("content-type", SDPFRAG), ("if-match", stale)],
                &frag,
            )
            .await;
        r.assert_status(StatusCode::PRECONDITION_FAILED)
            .assert_one_line_reason();
        assert!(r.header("etag").is_none() || r.etag() == etag);
        server.assert_still_serves().await;
    }
    // Unknown session, on both kinds of endpoint.
    for uri in [
        "/whip/patcherr/0123456789abcdef0123456789abcdef",
        "/whep/patcherr/0123456789abcdef0123456789abcdef",
        "/whip/nostream/0123456789abcdef0123456789abcdef",
    ] {
        let r = server
            .patch(
                uri,
                &[("content-type", SDPFRAG), ("if-match", &etag)],
                &frag,
            )
            .await;
        r.assert_status(StatusCode::NOT_FOUND)
            .assert_one_line_reason();
        server.assert_still_serves().await;
    }
    // If-Match may list several entity tags; one of them matching is enough.
    let list = format!("\"other\", {etag}");
    server
        .patch(
            &location,
            &[("content-type", SDPFRAG), ("if-match", &list)],
            &frag,
        )
        .await
        .assert_status(StatusCode::NO_CONTENT);
    // A malformed fragment is a 400.
    let r = server
        .patch(
            &location,
            &[("content-type", SDPFRAG), ("if-match", &etag)],
            "this is not a fragment",
        )
        .await;
    r.assert_status(StatusCode::BAD_REQUEST)
        .assert_one_line_reason();
    // The session survived all of that.
    server
        .patch(
            &location,
            &[("content-type", SDPFRAG), ("if-match", &etag)],
            &frag,
        )
        .await
        .assert_status(StatusCode::NO_CONTENT);
    server.assert_still_serves().await;
}

async fn check_ice_restart(server: &Server, created: &Resp, if_match: &str) {
    let location = created.location();
    let old_etag = created.etag();
    let old_ufrag = sdp_attr(&created.body, "ice-ufrag")
        .expect("answer ufrag")
        .to_owned();
    let old_pwd = sdp_attr(&created.body, "ice-pwd")
        .expect("answer pwd")
        .to_owned();

    let new_client_ufrag = format!("R{}", unique("u").replace('-', ""));
    let new_client_pwd = "NewClientPassword0123456789";
    let r = server
        .patch(
            &location,
            &[("content-type", SDPFRAG), ("if-match", if_match)],
            &restart_fragment(&new_client_ufrag, new_client_pwd),
        )
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(SDPFRAG), "{r:?}");
    let new_etag = r.etag();
    assert_strong_etag(&new_etag);
    assert_ne!(new_etag, old_etag);
    let ufrag = sdp_attr(&r.body, "ice-ufrag").expect("restart answer has a=ice-ufrag");
    let pwd = sdp_attr(&r.body, "ice-pwd").expect("restart answer has a=ice-pwd");
    assert_ne!(
        ufrag, old_ufrag,
        "the server's ufrag must change on restart"
    );
    assert_ne!(pwd, old_pwd, "the server's pwd must change on restart");

    // The old ETag is now stale; the new one works for trickle.
    let new_trickle = format!(
        "a=ice-ufrag:{new_client_ufrag}\r\na=ice-pwd:{new_client_pwd}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n\
         a=mid:0\r\na=candidate:1 1 udp 2130706431 198.51.100.7 50001 typ host\r\n"
    );
    server
        .patch(
            &location,
            &[("content-type", SDPFRAG), ("if-match", &old_etag)],
            &new_trickle,
        )
        .await
        .assert_status(StatusCode::PRECONDITION_FAILED);
    let r = server
        .patch(
            &location,
            &[("content-type", SDPFRAG), ("if-match", &new_etag)],
            &new_trickle,
        )
        .await;
    r.assert_status(StatusCode::NO_CONTENT);
    assert!(r.header("etag").is_none());
}

#[tokio::test]
async fn patch_ice_restart_returns_new_credentials_and_etag() {
    let server = Server::new();
    // RFC 9725 section 4.4.1 writes the wildcard as `If-Match: "*"`.
    let created = server.publish("restart").await;
    check_ice_restart(&server, &created, "\"*\"").await;
    // The HTTP wildcard form `If-Match: *` (RFC 9110) works too.
    let created = server.publish("restart2").await;
    check_ice_restart(&server, &created, "*").await;
    // And on a WHEP session.
    let viewer = server.play("restart").await;
    check_ice_restart(&server, &viewer, "\"*\"").await;
    server.assert_still_serves().await;
}

#[tokio::test]
async fn patch_whep_url_with_whip_token_is_404() {
    let server = Server::new();
    let publisher = server.publish("cross").await;
    let viewer = server.play("cross").await;
    let whip_token = publisher.location().rsplit('/').next().unwrap().to_owned();
    let whep_token = viewer.location().rsplit('/').next().unwrap().to_owned();
    let frag = trickle_fragment();
    let patch_headers = [("content-type", SDPFRAG), ("if-match", "\"*\"")];

    for uri in [
        format!("/whep/cross/{whip_token}"),
        format!("/whip/cross/{whep_token}"),
        format!("/whip/other/{whip_token}"),
        format!("/whep/other/{whep_token}"),
    ] {
        server
            .patch(&uri, &patch_headers, &frag)
            .await
            .assert_status(StatusCode::NOT_FOUND);
        server
            .delete(&uri, &[])
            .await
            .assert_status(StatusCode::NOT_FOUND);
    }
    // The real sessions were untouched by the mismatched requests.
    server
        .patch(
            &publisher.location(),
            &[("content-type", SDPFRAG), ("if-match", &publisher.etag())],
            &frag,
        )
        .await
        .assert_status(StatusCode::NO_CONTENT);
    server
        .delete(&viewer.location(), &[])
        .await
        .assert_status(StatusCode::OK);
    server
        .delete(&publisher.location(), &[])
        .await
        .assert_status(StatusCode::OK);
    server.assert_still_serves().await;
}

// ---------------------------------------------------------------------------------------------
// DELETE

#[tokio::test]
async fn delete_is_200_then_404_and_ignores_if_match() {
    let server = Server::new();
    let created = server.publish("del").await;
    let r = server
        .delete(
            &created.location(),
            &[("if-match", "\"definitely-not-the-etag\"")],
        )
        .await;
    r.assert_status(StatusCode::OK);
    server
        .delete(&created.location(), &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // A deleted session takes no PATCH either.
    server
        .patch(
            &created.location(),
            &[("content-type", SDPFRAG), ("if-match", &created.etag())],
            &trickle_fragment(),
        )
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // Viewers delete the same way.
    let created = server.publish("del2").await;
    let viewer = server.play("del2").await;
    server
        .delete(&viewer.location(), &[("if-match", "*")])
        .await
        .assert_status(StatusCode::OK);
    server
        .delete(&viewer.location(), &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    server
        .delete(&created.location(), &[])
        .await
        .assert_status(StatusCode::OK);
    // Unknown session tokens.
    server
        .delete("/whip/del/00000000000000000000000000000000", &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    server.assert_still_serves().await;
}

#[tokio::test]
async fn deleted_publisher_ends_stream_and_viewers_after_grace() {
    let server = Server::new();
    let publisher = server.publish("gone").await;
    let viewer = server.play("gone").await;
    server
        .delete(&publisher.location(), &[])
        .await
        .assert_status(StatusCode::OK);
    // Past the takeover grace the stream is gone.
    let later = Instant::now() + Duration::from_secs(3);
    server.engine.lock().handle_timeout(later);
    let r = server.post_sdp("/whep/gone", CHROME_WHEP).await;
    r.assert_status(StatusCode::NOT_FOUND)
        .assert_one_line_reason();
    // The viewer's session ended with it.
    server
        .delete(&viewer.location(), &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let streams = server
        .request(Method::GET, "/api/streams", &[], Body::empty())
        .await;
    let list: serde_json::Value = serde_json::from_str(&streams.body).expect("JSON");
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .all(|s| s["name"] != "gone"),
        "{list}"
    );
    server.assert_still_serves().await;
}

#[tokio::test]
async fn republish_within_grace_keeps_the_stream() {
    let server = Server::new();
    let first = server.publish("again").await;
    server
        .delete(&first.location(), &[])
        .await
        .assert_status(StatusCode::OK);
    // A reload publishes the same name again before the grace runs out.
    let second = server.publish("again").await;
    assert_ne!(second.location(), first.location());
    server
        .engine
        .lock()
        .handle_timeout(Instant::now() + Duration::from_millis(2500));
    let r = server.post_sdp("/whep/again", CHROME_WHEP).await;
    // The new, unconnected publisher may itself have timed out by then (no ICE); either the
    // stream is still there (201) or gone with a clean 404, never a server error.
    assert!(
        matches!(r.status, StatusCode::CREATED | StatusCode::NOT_FOUND),
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Bearer auth

#[tokio::test]
async fn bearer_token_protects_whip_only() {
    let rules = vec![AuthRule {
        path: "/whip/*".to_owned(),
        token: "s3cret".to_owned(),
    }];
    let server = Server::with(engine_config(), rules, &[]);
    let good = bearer("s3cret");
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cre"),
        Some("Bearer s3cret2"),
        Some("Basic czNjcmV0"),
        Some("s3cret"),
    ] {
        let mut headers = vec![("content-type", SDP)];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let r = server
            .request(Method::POST, "/whip/auth", &headers, CHROME_WHIP.to_owned())
            .await;
        r.assert_status(StatusCode::UNAUTHORIZED);
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{r:?}");
        assert!(r.header("location").is_none());
    }
    let created = server
        .request(
            Method::POST,
            "/whip/auth",
            &[("content-type", SDP), ("authorization", &good)],
            CHROME_WHIP.to_owned(),
        )
        .await;
    created.assert_status(StatusCode::CREATED);

    // WHEP is not covered by the rule.
    server.play("auth").await;

    // The session resource needs the token too.
    let location = created.location();
    let etag = created.etag();
    let frag = trickle_fragment();
    let r = server
        .patch(
            &location,
            &[("content-type", SDPFRAG), ("if-match", &etag)],
            &frag,
        )
        .await;
    r.assert_status(StatusCode::UNAUTHORIZED);
    assert!(
        r.header("www-authenticate")
            .unwrap_or_default()
            .starts_with("Bearer")
    );
    server
        .patch(
            &location,
            &[
                ("content-type", SDPFRAG),
                ("if-match", &etag),
                ("authorization", "Bearer nope"),
            ],
            &frag,
        )
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    server
        .patch(
            &location,
            &[
                ("content-type", SDPFRAG),
                ("if-match", &etag),
                ("authorization", &good),
            ],
            &frag,
        )
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let r = server.delete(&location, &[]).await;
    r.assert_status(StatusCode::UNAUTHORIZED);
    assert!(
        r.header("www-authenticate")
            .unwrap_or_default()
            .starts_with("Bearer")
    );
    server
        .delete(&location, &[("authorization", "Bearer nope")])
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    server
        .delete(&location, &[("authorization", &good)])
        .await
        .assert_status(StatusCode::OK);
    // An unknown session under a protected path does not reveal itself without the token.
    server
        .delete(&location, &[])
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    server
        .delete(&location, &[("authorization", &good)])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // CORS preflight needs no token (browsers never send credentials on it).
    let r = server
        .request(
            Method::OPTIONS,
            "/whip/auth",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
            ],
            Body::empty(),
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Overload

#[tokio::test]
async fn session_limit_is_503_with_retry_after() {
    let server = Server::with(
        EngineConfig {
            max_sessions: 2,
            ..engine_config()
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
    let r = server
        .request(Method::GET, "/healthz", &[], Body::empty())
        .await;
    r.assert_status(StatusCode::OK);

    let r = server
        .request(Method::GET, "/api/streams", &[], Body::empty())
        .await;
    r.assert_status(StatusCode::OK);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let list: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(list, serde_json::json!([]));

    server.publish("listed").await;
    server.play("listed").await;
    let r = server
        .request(Method::GET, "/api/streams", &[], Body::empty())
        .await;
    r.assert_status(StatusCode::OK);
    let list: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
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

    let r = server
        .request(Method::GET, "/metrics", &[], Body::empty())
        .await;
    r.assert_status(StatusCode::OK);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    assert!(
        r.body.lines().any(|l| l == "r58_sessions 2"),
        "metrics lack r58_sessions 2:\n{}",
        r.body
    );
    assert!(r.body.contains("stream=\"listed\""), "{}", r.body);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let server = Server::new();
    server
        .request(Method::GET, "/nope", &[], Body::empty())
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
    let r = server
        .request(
            Method::POST,
            "/whip/x/abc",
            &[("content-type", SDP)],
            CHROME_WHIP.to_owned(),
        )
        .await;
    r.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    server.assert_still_serves().await;
}
