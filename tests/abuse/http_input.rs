//! Malformed requests at the HTTP application level: SDP, content types, unknown sessions,
//! PATCH races, path traversal, bad queries and JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::server::{CHROME_WHEP, CHROME_WHIP, ONE_SMALL_CAMERA, Server};

const SDP: (&str, &str) = ("Content-Type", "application/sdp");
const SDPFRAG: (&str, &str) = ("Content-Type", "application/trickle-ice-sdpfrag");

/// An Opus-only offer with `n` m-lines (all in one BUNDLE).
fn offer_with_m_lines(n: usize) -> String {
    let mids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let mut sdp = format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {}\r\n",
        mids.join(" ")
    );
    for mid in &mids {
        sdp.push_str(&format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n\
             a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
             a=fingerprint:sha-256 3B:7A:E1:05:C9:6D:42:88:1F:A0:BC:37:DE:59:04:6E:92:AB:13:F7:58:C2:0D:E4:71:9A:36:BF:80:25:CD:4E\r\n\
             a=setup:actpass\r\na=rtcp-mux\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n"
        ));
    }
    sdp
}

#[test]
fn malformed_offers_are_refused_with_their_status() {
    let mut server = Server::start("", &[]);
    let truncated = &CHROME_WHIP[..CHROME_WHIP.len() / 3];
    let huge = format!("{CHROME_WHIP}{}", "a=x-padding:0123456789\r\n".repeat(3500));
    assert!(huge.len() > 64 * 1024);
    let many = offer_with_m_lines(100);
    let binary: Vec<u8> = (0..4000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let cases: Vec<(&str, &[u8], u16)> = vec![
        ("truncated SDP", truncated.as_bytes(), 400),
        ("empty body", b"", 400),
        ("text garbage", b"hello, this is not SDP at all\r\n", 400),
        ("binary garbage (not UTF-8)", &binary, 400),
        ("SDP over 64 KiB", huge.as_bytes(), 413),
        ("v=0 only", b"v=0\r\n", 400),
    ];
    for (what, body, status) in cases {
        for endpoint in ["/whip/bad", "/whep/bad"] {
            let r = server.request("POST", endpoint, &[SDP], body);
            // WHEP for a stream nobody publishes may be refused for that first; both are 4xx
            // with a reason, but the offer's own fault must win when it is unreadable.
            r.assert_refused(status);
            assert!(r.header("location").is_none(), "{what}: {r:?}");
            server.assert_serves();
        }
    }
    // 100 m-lines: a clear error naming the count, not a 100-track session.
    let r = server.post_sdp("/whip/many", &many);
    assert!(matches!(r.status, 400 | 422), "{r:?}");
    assert!(r.text().contains("100"), "{r:?}");
    server.assert_serves();
}

#[test]
fn wrong_content_types_are_415() {
    let mut server = Server::start("", &[]);
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/json"),
        Some("application/sdpx"),
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|c| ("Content-Type", c))
            .into_iter()
            .collect();
        for endpoint in ["/whip/ct", "/whep/ct"] {
            let r = server.request("POST", endpoint, &headers, CHROME_WHIP.as_bytes());
            r.assert_refused(415);
            server.assert_serves();
        }
    }
    // PATCH with an SDP content type instead of a fragment.
    let created = server.post_sdp("/whip/ct", CHROME_WHIP);
    assert_eq!(created.status, 201, "{created:?}");
    let location = created.header("location").expect("location").to_owned();
    let etag = created.header("etag").expect("etag").to_owned();
    let r = server.request(
        "PATCH",
        &location,
        &[SDP, ("If-Match", &etag)],
        b"a=end-of-candidates\r\n",
    );
    r.assert_refused(415);
    // JSON API with a non-JSON content type.
    let r = server.request(
        "POST",
        "/api/switcher/program",
        &[("Content-Type", "text/plain")],
        br#"{"source":"cam0"}"#,
    );
    r.assert_refused(415);
    server.assert_serves();
}

#[test]
fn unknown_sessions_and_stale_etags() {
    let mut server = Server::start("", &[]);
    let fragment = b"a=ice-ufrag:Xp7q\r\na=ice-pwd:Vd3kqL9rT2mN8bW4yH6cJ1sF\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n";
    for path in [
        "/whip/x/00000000000000000000000000000000",
        "/whep/x/ffffffffffffffffffffffffffffffff",
        "/whip/x/not-even-hex",
    ] {
        server
            .request("PATCH", path, &[SDPFRAG, ("If-Match", "\"1\"")], fragment)
            .assert_refused(404);
        server.request("DELETE", path, &[], b"").assert_refused(404);
        server.assert_serves();
    }
    let created = server.post_sdp("/whip/etag", CHROME_WHIP);
    let location = created.header("location").expect("location").to_owned();
    // No If-Match: 428; a wrong one: 412.
    server
        .request("PATCH", &location, &[SDPFRAG], fragment)
        .assert_refused(428);
    server
        .request(
            "PATCH",
            &location,
            &[SDPFRAG, ("If-Match", "\"stale\"")],
            fragment,
        )
        .assert_refused(412);
    // The same token under the other endpoint or stream name is not this session.
    let token = location.rsplit('/').next().expect("token");
    server
        .request("DELETE", &format!("/whep/etag/{token}"), &[], b"")
        .assert_refused(404);
    server
        .request("DELETE", &format!("/whip/other/{token}"), &[], b"")
        .assert_refused(404);
    assert_eq!(server.request("DELETE", &location, &[], b"").status, 200);
    server
        .request("DELETE", &location, &[], b"")
        .assert_refused(404);
    server.assert_serves();
}

#[test]
fn concurrent_ice_restarts_and_deletes_stay_consistent() {
    let mut server = Server::start("", &[]);
    let created = server.post_sdp("/whip/race", CHROME_WHIP);
    assert_eq!(created.status, 201, "{created:?}");
    let location = created.header("location").expect("location").to_owned();
    let addr = server.http;
    // 16 ICE restarts at once, each with new client credentials: every one is answered 200
    // with its own ETag, and only the last one stays valid.
    let results: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let location = location.clone();
                s.spawn(move || {
                    let body = format!(
                        "a=ice-ufrag:r{i:03}\r\na=ice-pwd:restartpassword{i:09}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
                    );
                    let r = crate::server::request(
                        addr,
                        "PATCH",
                        &location,
                        &[SDPFRAG, ("If-Match", "\"*\"")],
                        body.as_bytes(),
                    );
                    (r.status, r.header("etag").map(str::to_owned))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let statuses: BTreeMap<u16, usize> = results.iter().fold(BTreeMap::new(), |mut m, (s, _)| {
        *m.entry(*s).or_default() += 1;
        m
    });
    assert_eq!(statuses, BTreeMap::from([(200, 16)]), "{results:?}");
    let etags: std::collections::HashSet<_> =
        results.iter().filter_map(|(_, e)| e.clone()).collect();
    assert_eq!(etags.len(), 16, "every restart gets its own ETag");
    // Exactly one of them is current: a trickle under it is 204, under the others 412.
    let trickle = b"a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n";
    let current: Vec<u16> = etags
        .iter()
        .map(|etag| {
            server
                .request("PATCH", &location, &[SDPFRAG, ("If-Match", etag)], trickle)
                .status
        })
        .collect();
    assert_eq!(
        current.iter().filter(|s| **s == 204).count(),
        1,
        "{current:?}"
    );
    assert_eq!(
        current.iter().filter(|s| **s == 412).count(),
        15,
        "{current:?}"
    );

    // PATCHes racing a DELETE: each is 204/404 (before/after), the DELETE 200, never a 5xx.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let patches: Vec<_> = (0..12)
            .map(|_| {
                let location = location.clone();
                s.spawn(move || {
                    crate::server::request(
                        addr,
                        "PATCH",
                        &location,
                        &[SDPFRAG, ("If-Match", "*")],
                        trickle,
                    )
                    .status
                })
            })
            .collect();
        let delete = crate::server::request(addr, "DELETE", &location, &[], b"").status;
        let mut all = vec![delete];
        all.extend(patches.into_iter().map(|h| h.join().expect("thread")));
        all
    });
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(
        statuses[1..].iter().all(|s| matches!(s, 204 | 404)),
        "{statuses:?}"
    );
    server
        .request("PATCH", &location, &[SDPFRAG, ("If-Match", "*")], trickle)
        .assert_refused(404);
    assert_eq!(server.metric("r58_sessions"), 0.0);
    server.assert_serves();
}

#[test]
fn whep_to_an_ended_stream_is_404() {
    let mut server = Server::start("", &[]);
    let created = server.post_sdp("/whip/ending", CHROME_WHIP);
    assert_eq!(created.status, 201, "{created:?}");
    let location = created.header("location").expect("location").to_owned();
    // While it is published a viewer is accepted.
    let viewer = server.post_sdp("/whep/ending", CHROME_WHEP);
    assert_eq!(viewer.status, 201, "{viewer:?}");
    assert_eq!(server.request("DELETE", &location, &[], b"").status, 200);
    // After the takeover grace (2 s) the stream is gone: 404 with a reason, and the viewer's
    // session went with it.
    std::thread::sleep(Duration::from_millis(2600));
    let r = server.post_sdp("/whep/ending", CHROME_WHEP);
    r.assert_refused(404);
    assert!(r.text().contains("ending"), "{r:?}");
    let viewer_location = viewer.header("location").expect("location");
    server
        .request("DELETE", viewer_location, &[], b"")
        .assert_refused(404);
    server.assert_serves();
}

#[test]
fn path_traversal_on_static_and_hls_finds_nothing() {
    let mut server = Server::start(ONE_SMALL_CAMERA, &[]);
    let good = server.get("/static/js/whep.js");
    // The page modules are embedded; whichever exists, traversal must not reach the disk.
    assert!(matches!(good.status, 200 | 404), "{good:?}");
    for path in [
        "/static/../Cargo.toml",
        "/static/..%2f..%2fCargo.toml",
        "/static/%2e%2e/%2e%2e/Cargo.toml",
        "/static/js/..%2f..%2f..%2fsrc%2fmain.rs",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/..%5c..%5cCargo.toml",
        "/static/js/%00whep.js",
        "/hls/..%2f..%2fetc/passwd/x",
        "/hls/%2e%2e/%2e%2e/etc/passwd",
        "/hls/cam0/..%2f..%2f/Cargo.toml",
        "/hls/cam0/0/..%2f..%2fCargo.toml",
        "/hls/../../../../etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
    ] {
        let r = server.get(path);
        assert!(
            matches!(r.status, 400 | 404),
            "{path}: expected 400 or 404: {r:?}"
        );
        let text = r.text();
        assert!(
            !text.contains("root:") && !text.contains("[package]") && !text.contains("fn main"),
            "{path} leaked a file: {r:?}"
        );
        server.assert_serves();
    }
}

#[test]
fn bad_hls_queries_and_json_are_400() {
    let mut server = Server::start(ONE_SMALL_CAMERA, &[]);
    // The camera's playlist exists (wait for the muxer to start).
    let mut playlist = server.get("/hls/cam0/index.m3u8");
    for _ in 0..50 {
        if playlist.status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        playlist = server.get("/hls/cam0/index.m3u8");
    }
    assert_eq!(playlist.status, 200, "{playlist:?}");
    let media = playlist
        .text()
        .lines()
        .find(|l| !l.starts_with('#') && l.ends_with(".m3u8"))
        .expect("media playlist URI")
        .to_owned();
    for query in [
        "_HLS_msn=abc",
        "_HLS_msn=1&_HLS_part=-1",
        "_HLS_part=2",
        "_HLS_msn=99999999999999999999",
        "_HLS_skip=MAYBE",
    ] {
        let r = server.get(&format!("/hls/cam0/{media}?{query}"));
        r.assert_refused(400);
        server.assert_serves();
    }
    for body in [
        &b"{"[..],
        b"[]",
        br#"{"source": 5}"#,
        br#"{"source":"cam0","x":1}"#,
        b"\xff\xfe",
    ] {
        let r = server.request(
            "POST",
            "/api/switcher/program",
            &[("Content-Type", "application/json")],
            body,
        );
        assert!(
            matches!(r.status, 400 | 422),
            "{:?}: {r:?}",
            String::from_utf8_lossy(body)
        );
        server.assert_serves();
    }
    // A well-formed cut to a stream that is not live is a 404 with its reason.
    server
        .request(
            "POST",
            "/api/switcher/program",
            &[("Content-Type", "application/json")],
            br#"{"source":"nobody"}"#,
        )
        .assert_refused(404);
    // And a good one is taken.
    let ok = server.request(
        "POST",
        "/api/switcher/program",
        &[("Content-Type", "application/json")],
        br#"{"source":"cam0"}"#,
    );
    assert_eq!(ok.status, 200, "{ok:?}");
}
