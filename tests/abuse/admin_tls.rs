//! The control endpoints and /metrics behind `[admin]`, and HTTPS with `--tls-cert/--tls-key`
//! checked with curl (OpenSSL), a client that shares no code with the server.

use std::process::Command;

use crate::server::{CHROME_WHIP, Server, send_raw};

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[test]
fn control_endpoints_are_local_only_by_default() {
    let mut server = Server::start(crate::server::ONE_SMALL_CAMERA, &[]);
    server.wait_for_stream("cam0");
    // From this box: metrics and a cut are allowed.
    assert_eq!(server.get("/metrics").status, 200);
    let cut = server.request(
        "POST",
        "/api/switcher/program",
        &[JSON],
        br#"{"source":"cam0"}"#,
    );
    assert_eq!(cut.status, 200, "{cut:?}");
    // Through a tunnel or proxy (which connects from loopback but names the client), refused.
    for header in [
        ("X-Forwarded-For", "203.0.113.9"),
        ("CF-Connecting-IP", "203.0.113.9"),
        ("Forwarded", "for=203.0.113.9"),
    ] {
        server
            .request("GET", "/metrics", &[header], b"")
            .assert_refused(403);
        server
            .request(
                "POST",
                "/api/switcher/program",
                &[JSON, header],
                br#"{"source":"cam0"}"#,
            )
            .assert_refused(403);
        // Reading the switcher state stays open; the stream list is viewing, which from
        // outside needs a sign-in (`[access] remote_view`, tests/access_remote.rs).
        assert_eq!(
            server
                .request("GET", "/api/switcher", &[header], b"")
                .status,
            200
        );
        server
            .request("GET", "/api/streams", &[header], b"")
            .assert_refused(401);
    }
    assert_eq!(server.metric("r58_admin_refused_total"), 6.0);
    server.assert_serves();
}

#[test]
fn an_admin_token_opens_control_endpoints_to_anyone_who_has_it() {
    let server = Server::start(
        "[admin]\ntoken = \"adm1n-t0ken\"\nallow_without_token = \"none\"\n",
        &[],
    );
    let none = server.get("/metrics");
    none.assert_refused(401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    server
        .request(
            "GET",
            "/metrics",
            &[("Authorization", "Bearer adm1n-t0kem")],
            b"",
        )
        .assert_refused(401);
    let ok = server.request(
        "GET",
        "/metrics",
        &[("Authorization", "Bearer adm1n-t0ken")],
        b"",
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(
        !ok.text().contains("adm1n"),
        "the token must not appear in metrics"
    );
    // The token works through a proxy too; the cut itself is then judged on its merits.
    let cut = server.request(
        "POST",
        "/api/switcher/program",
        &[
            JSON,
            ("Authorization", "bearer adm1n-t0ken"),
            ("X-Forwarded-For", "203.0.113.9"),
        ],
        br#"{"source":"nobody"}"#,
    );
    cut.assert_refused(404);
    server
        .request(
            "POST",
            "/api/switcher/program",
            &[JSON],
            br#"{"source":"nobody"}"#,
        )
        .assert_refused(401);
    assert!(
        !server.log().contains("adm1n-t0ken"),
        "the token was logged"
    );
    // WHIP is not an admin endpoint.
    assert_eq!(server.post_sdp("/whip/open", CHROME_WHIP).status, 201);
}

#[test]
fn admin_and_auth_tokens_share_one_authorization_header() {
    // The switcher page sends its ?token= (an [[auth]] token) with every request: a local
    // operator is not locked out by it, and a remote operator needs only the admin token.
    let mut server = Server::start(
        concat!(
            "[test_cameras]\ncount = 1\nwidth = 160\nheight = 96\nfps = 10\n",
            "[admin]\ntoken = \"adm1n-t0ken\"\n",
            "[[auth]]\npath = \"/api/switcher*\"\ntoken = \"0perator\"\n",
        ),
        &[],
    );
    server.wait_for_stream("cam0");
    let cut = |headers: &[(&str, &str)]| {
        let mut all = vec![JSON];
        all.extend_from_slice(headers);
        server.request(
            "POST",
            "/api/switcher/program",
            &all,
            br#"{"source":"cam0"}"#,
        )
    };
    let local = cut(&[("Authorization", "Bearer 0perator")]);
    assert_eq!(local.status, 200, "{local:?}");
    cut(&[]).assert_refused(401);
    let tunneled = ("X-Forwarded-For", "203.0.113.9");
    cut(&[("Authorization", "Bearer 0perator"), tunneled]).assert_refused(401);
    let remote_admin = cut(&[("Authorization", "Bearer adm1n-t0ken"), tunneled]);
    assert_eq!(remote_admin.status, 200, "{remote_admin:?}");
    // The admin token is no [[auth]] token for other paths.
    server
        .request(
            "GET",
            "/api/switcher",
            &[("Authorization", "Bearer adm1n-t0ken")],
            b"",
        )
        .assert_refused(401);
    server.assert_serves();
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl (apt-get install curl)")
}

#[test]
fn https_with_tls_cert_and_key_serves_real_clients() {
    let dir = tempfile::tempdir().expect("dir");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("self-signed cert");
    let cert = dir.path().join("r58.crt");
    let key = dir.path().join("r58.key");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let (cert_arg, key_arg) = (cert.to_str().expect("utf-8"), key.to_str().expect("utf-8"));
    let mut server = Server::start("", &["--tls-cert", cert_arg, "--tls-key", key_arg]);
    let port = server.http.port();
    let base = format!("https://localhost:{port}");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let common = ["--cacert", cert_arg, "--resolve", &resolve];

    let health = curl(&[&common[..], &[&format!("{base}/healthz")]].concat());
    assert!(
        health.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&health.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&health.stdout), "ok\n");

    // A WHIP publish over HTTPS: 201, the answer and its Location.
    let offer = dir.path().join("offer.sdp");
    std::fs::write(&offer, CHROME_WHIP).expect("write offer");
    let publish = curl(
        &[
            &common[..],
            &[
                "-D",
                "-",
                "-o",
                "/dev/null",
                "-H",
                "Content-Type: application/sdp",
                "--data-binary",
                &format!("@{}", offer.display()),
                &format!("{base}/whip/secure"),
            ],
        ]
        .concat(),
    );
    let head = String::from_utf8_lossy(&publish.stdout).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 201"), "{head}");
    assert!(head.contains("location: /whip/secure/"), "{head}");

    // A client that does not trust the certificate is refused by its own TLS stack.
    let untrusted = curl(&["--resolve", &resolve, &format!("{base}/healthz")]);
    assert!(!untrusted.status.success());

    // Plain HTTP to the HTTPS port gets no HTTP answer; the failed handshake is counted and
    // the server goes on serving HTTPS.
    let plain = send_raw(server.http, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    let metrics = curl(&[&common[..], &[&format!("{base}/metrics")]].concat());
    let text = String::from_utf8_lossy(&metrics.stdout);
    let failures: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("r58_tls_handshake_failures_total "))
        .and_then(|v| v.parse().ok())
        .expect("the TLS failure counter");
    // curl's untrusted attempt and the plain request.
    assert!(failures >= 2.0, "{failures}");
    server.assert_running();
}

#[test]
fn a_bad_certificate_stops_the_server_with_a_one_line_error() {
    let dir = tempfile::tempdir().expect("dir");
    let cert = dir.path().join("bad.crt");
    std::fs::write(&cert, "not a certificate\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_r58"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--webrtc-udp",
            "127.0.0.1:0",
            "--test-cameras",
            "0",
        ])
        .args([
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            cert.to_str().expect("utf-8"),
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("run r58");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("r58: ") && line.contains("bad.crt"),
        "{stderr}"
    );
    // Only one of the pair is a configuration error (exit 2), found before anything starts.
    let output = Command::new(env!("CARGO_BIN_EXE_r58"))
        .args(["--tls-cert", cert.to_str().expect("utf-8")])
        .output()
        .expect("run r58");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tls-key"));
}
