//! The `[limits]` over real HTTP: sessions per client address (429), viewers per stream and
//! sessions in total (503), each with `Retry-After`.

use crate::server::{CHROME_WHEP, CHROME_WHIP, Server};

#[test]
fn sessions_per_client_address_are_limited_with_429() {
    // Publishing from outside is open here: this is about the per-address limit behind a
    // trusted proxy, not about sign-in (tests/access_remote.rs).
    let mut server = Server::start(
        "[limits]\nsessions_per_ip = 3\nunlimited_ips = []\n[access]\nremote_publish = \"open\"\n",
        &[],
    );
    let mut locations = Vec::new();
    for i in 0..3 {
        let r = server.post_sdp(&format!("/whip/ip{i}"), CHROME_WHIP);
        assert_eq!(r.status, 201, "{r:?}");
        locations.push(r.header("location").expect("location").to_owned());
    }
    for endpoint in ["/whip/ip9", "/whep/ip0"] {
        let offer = if endpoint.starts_with("/whip") {
            CHROME_WHIP
        } else {
            CHROME_WHEP
        };
        let r = server.post_sdp(endpoint, offer);
        r.assert_refused(429);
        assert_eq!(r.header("retry-after"), Some("10"), "{r:?}");
    }
    assert_eq!(server.metric("r58_sessions_refused_per_ip_total"), 2.0);
    // Another client behind the trusted local proxy ([turn] trusted_proxies: loopback) has its
    // own allowance; one that forges the header from an untrusted address would not.
    let r = server.request(
        "POST",
        "/whip/forwarded",
        &[
            ("Content-Type", "application/sdp"),
            ("X-Forwarded-For", "203.0.113.5"),
        ],
        CHROME_WHIP.as_bytes(),
    );
    assert_eq!(r.status, 201, "{r:?}");
    // Ending one session frees a place.
    assert_eq!(
        server.request("DELETE", &locations[0], &[], b"").status,
        200
    );
    let r = server.post_sdp("/whip/again", CHROME_WHIP);
    assert_eq!(r.status, 201, "{r:?}");
    // Everything else keeps working (health, metrics) while the client is at its limit.
    assert_eq!(server.get("/healthz").status, 200);
    server.assert_running();
}

#[test]
fn viewers_per_stream_and_total_sessions_are_503_with_retry_after() {
    let mut server = Server::start("max_sessions = 4\n[limits]\nviewers_per_stream = 2\n", &[]);
    assert_eq!(server.post_sdp("/whip/show", CHROME_WHIP).status, 201);
    for _ in 0..2 {
        assert_eq!(server.post_sdp("/whep/show", CHROME_WHEP).status, 201);
    }
    let r = server.post_sdp("/whep/show", CHROME_WHEP);
    r.assert_refused(503);
    assert_eq!(r.header("retry-after"), Some("5"), "{r:?}");
    assert!(r.text().contains("viewers"), "{r:?}");
    // One more session fits in total, then the server is full.
    let last = server.post_sdp("/whip/other", CHROME_WHIP);
    assert_eq!(last.status, 201, "{last:?}");
    let r = server.post_sdp("/whip/full", CHROME_WHIP);
    r.assert_refused(503);
    assert!(r.header("retry-after").is_some(), "{r:?}");
    // Freeing one lets the next one in.
    let location = last.header("location").expect("location");
    assert_eq!(server.request("DELETE", location, &[], b"").status, 200);
    server.assert_serves();
}
