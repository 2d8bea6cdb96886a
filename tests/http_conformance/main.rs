//! Conformance of the WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) HTTP endpoints: every
//! status code and header rule of issue 3, checked against the real router with in-process
//! `oneshot` requests. The engine is sans-IO, so no socket is opened; time is moved by calling
//! `handle_timeout` through the shared engine handle.
//!
//! After each refused request the test checks that the server still serves a good one.

mod api;
mod delete_auth;
mod get_options;
mod patch;
mod post;

#[path = "../common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{CHROME_WHEP, CHROME_WHIP, Resp, answering_config, shared_engine};
use r58::config::AuthRule;
use r58::http::{AppState, MAX_BODY_BYTES, router};
use sfu::engine::{EngineConfig, SharedEngine};

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

impl Server {
    fn new() -> Self {
        Self::with(answering_config(), Vec::new(), &[])
    }

    fn with(config: EngineConfig, auth: Vec<AuthRule>, cors_origins: &[&str]) -> Self {
        let engine = shared_engine(config);
        let origins: Vec<String> = cors_origins.iter().map(|s| (*s).to_owned()).collect();
        let app = router(AppState::new(engine.clone(), auth), &origins);
        Self { app, engine }
    }

    async fn request(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        common::request(&self.app, method, uri, headers, body).await
    }

    async fn get(&self, uri: &str) -> Resp {
        self.request(Method::GET, uri, &[], Body::empty()).await
    }

    async fn options(&self, uri: &str, headers: &[(&str, &str)]) -> Resp {
        self.request(Method::OPTIONS, uri, headers, Body::empty())
            .await
    }

    async fn post_sdp(&self, uri: &str, offer: &str) -> Resp {
        common::post_sdp(&self.app, uri, offer).await
    }

    /// POSTs `offer` as `application/sdp` with extra `headers`.
    async fn post_sdp_with(&self, uri: &str, offer: &str, headers: &[(&str, &str)]) -> Resp {
        let mut all = vec![("content-type", SDP)];
        all.extend_from_slice(headers);
        self.request(Method::POST, uri, &all, offer.to_owned())
            .await
    }

    /// Publishes `name` with the Chromium offer and checks it was created.
    async fn publish(&self, name: &str) -> Resp {
        common::publish(&self.app, name).await
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

    /// PATCHes a trickle-ice-sdpfrag `fragment` with `If-Match: {if_match}`.
    async fn patch_fragment(&self, uri: &str, if_match: &str, fragment: &str) -> Resp {
        self.patch(
            uri,
            &[("content-type", SDPFRAG), ("if-match", if_match)],
            fragment,
        )
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
