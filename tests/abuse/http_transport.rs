//! Abuse at the HTTP/1.1 transport level: huge and many headers, broken framing, slow-loris
//! headers and bodies, and a flood of idle connections. The timeouts are set short in
//! `[limits]` so the tests do not wait the 10 s defaults.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::server::{CHROME_WHIP, Server, read_response, send_raw};

const FAST_TIMEOUTS: &str = "[limits]\nheader_timeout = 1.0\nbody_timeout = 1.0\n";

#[test]
fn huge_or_many_headers_are_431_and_broken_framing_is_400() {
    let mut server = Server::start("", &[]);
    let addr = server.http;
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "p".repeat(70 * 1024));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("one 64 KiB header", big.into_bytes(), 431),
        ("200 headers", many.into_bytes(), 431),
        ("70 KiB request line", long_uri.into_bytes(), 431),
        ("garbage request line", b"\x00\x01\x02 nonsense\r\n\r\n".to_vec(), 400),
        (
            "bad Content-Length",
            b"POST /whip/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(),
            400,
        ),
        (
            "two different Content-Lengths",
            b"POST /whip/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".to_vec(),
            400,
        ),
        (
            "broken chunked body",
            b"POST /whip/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec(),
            400,
        ),
    ];
    for (what, bytes, status) in cases {
        let r = send_raw(addr, &bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(r.status, status, "{what}: {r:?}");
        server.assert_serves();
    }
    // An HTTP/2 prior-knowledge preface: this is an HTTP/1.1 server, which hangs up without
    // an answer (nothing it could say would be understood).
    let h2 = send_raw(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(h2.is_err(), "{h2:?}");
    server.assert_serves();
    // Methods a resource does not have: 405 (and not a crash).
    for (method, path) in [
        ("PUT", "/whip/x"),
        ("DELETE", "/healthz"),
        ("POST", "/metrics"),
    ] {
        let r = server.request(method, path, &[], b"");
        assert_eq!(r.status, 405, "{method} {path}: {r:?}");
        server.assert_serves();
    }
}

/// Reads from `stream` until the server closes it; returns when, or None if it stayed open
/// for `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<(Duration, Vec<u8>)> {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some((started.elapsed(), got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some((started.elapsed(), got)),
        }
    }
    None
}

#[test]
fn slow_loris_headers_are_cut_off_after_the_header_timeout() {
    let mut server = Server::start(FAST_TIMEOUTS, &[]);
    let addr = server.http;
    // A client trickling one header byte every 200 ms never finishes; the server must hang up
    // after about header_timeout (1 s), long before the client would be done.
    let mut loris = TcpStream::connect(addr).expect("connect");
    let started = Instant::now();
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n",
        "z".repeat(100)
    );
    let mut cut_after = None;
    for byte in request.bytes() {
        if loris.write_all(&[byte]).is_err() {
            cut_after = Some(started.elapsed());
            break;
        }
        if closed_within(&mut loris, Duration::from_millis(200)).is_some() {
            cut_after = Some(started.elapsed());
            break;
        }
    }
    let cut_after = cut_after.expect("the trickling client was never cut off");
    assert!(
        cut_after >= Duration::from_millis(900) && cut_after < Duration::from_secs(5),
        "cut after {cut_after:?}"
    );
    // A client that connects and sends nothing is closed too.
    let mut idle = TcpStream::connect(addr).expect("connect");
    let (at, _) =
        closed_within(&mut idle, Duration::from_secs(5)).expect("idle connection kept open");
    assert!(
        at < Duration::from_secs(3),
        "idle connection closed after {at:?}"
    );
    assert!(server.metric("r58_http_header_timeouts_total") >= 1.0);
    server.assert_serves();
}

#[test]
fn slow_bodies_get_408() {
    let mut server = Server::start(FAST_TIMEOUTS, &[]);
    let mut stream = TcpStream::connect(server.http).expect("connect");
    let head = format!(
        "POST /whip/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
        CHROME_WHIP.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream
        .write_all(&CHROME_WHIP.as_bytes()[..100])
        .expect("write");
    // The rest never comes.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    let r = read_response(&mut stream).expect("a response");
    r.assert_refused(408);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.metric("r58_http_body_timeouts_total"), 1.0);
    // Nothing was created from the partial offer.
    assert_eq!(server.metric("r58_sessions"), 0.0);
    server.assert_serves();
}

#[test]
fn a_thousand_idle_connections_do_not_stop_service() {
    let mut server = Server::start(FAST_TIMEOUTS, &[]);
    let addr = server.http;
    // The baseline once start-up is over (the RTSP sockets and media threads come after the
    // line announcing the HTTP address, before the first request is served).
    server.assert_serves();
    let (_, fds_before) = server.rss_kb_and_fds();
    let mut idle: Vec<TcpStream> = (0..1000)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert!(idle.len() >= 900, "only {} connections opened", idle.len());
    // While they sit there, real requests are served.
    server.assert_serves();
    // After the header timeout the server has let go of them all.
    std::thread::sleep(Duration::from_millis(2500));
    let mut closed = 0;
    for stream in &mut idle {
        if closed_within(stream, Duration::from_millis(10)).is_some() {
            closed += 1;
        }
    }
    assert_eq!(closed, idle.len(), "connections still held by the server");
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    let (_, fds_after) = server.rss_kb_and_fds();
    assert!(
        fds_after <= fds_before + 5,
        "file descriptors {fds_before} -> {fds_after}"
    );
    server.assert_serves();
}
