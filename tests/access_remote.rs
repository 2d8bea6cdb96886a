//! `[access]` through a tunnel stand-in: requests that reach the router the way a tunnel
//! daemon delivers them (from 127.0.0.1, carrying `CF-Connecting-IP` / `X-Forwarded-For`),
//! against the LAN (a private peer, no forwarding headers). Every viewing and publishing
//! endpoint refuses a stranger from outside and answers a signed-in user exactly as it
//! answers the LAN; the LAN stays open. Then the attacks of issue 27, each refused: CSRF from
//! another origin, session fixation, a cookie without `Secure` behind HTTPS, brute-force
//! sign-in, forged forwarding headers, path traversal, and secrets in the log.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{CHROME_WHEP, CHROME_WHIP, Resp, answering_config, from_peer, new_request, send};
use r58::auth::Gatekeeper;
use r58::auth::users::{Role, UserStore, Users};
use r58::config::AccessConfig;
use r58::http::{AppState, router};
use sfu::testing::cameras::small_camera;

const HOST: &str = "studio.example";
const TUNNEL: ([u8; 4], u16) = ([127, 0, 0, 1], 45000);
const LAN: ([u8; 4], u16) = ([192, 168, 1, 20], 45000);
const INTERNET: ([u8; 4], u16) = ([203, 0, 113, 7], 45000);
const VIEWER_PASSWORD: &str = "viewer password 1";
const OPERATOR_PASSWORD: &str = "operator password 1";

fn users() -> Users {
    let mut users = Users::default();
    users.add("vic", Role::Viewer, VIEWER_PASSWORD).unwrap();
    users.add("opa", Role::Operator, OPERATOR_PASSWORD).unwrap();
    users
}

/// The router with `[access]`'s defaults, two users, and `https` as the listener's.
fn app_with(https: bool) -> Router {
    let engine = common::shared_engine(answering_config());
    let gatekeeper =
        Gatekeeper::with_users(AccessConfig::default(), https, UserStore::fixed(users()));
    router(
        AppState::new(engine, Vec::new()).with_gatekeeper(gatekeeper),
        &[],
    )
}

fn app() -> Router {
    app_with(false)
}

/// Where a request comes from, and the headers that come with that.
#[derive(Clone, Copy, Debug)]
enum From {
    Lan,
    Tunnel,
}

/// `method path` from `from`, with `extra` headers and `body`, answered (the body read unless
/// the path is the never-ending event stream).
async fn call(
    app: &Router,
    from: From,
    method: Method,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut headers = vec![("host", HOST)];
    let peer = match from {
        From::Lan => SocketAddr::from(LAN),
        From::Tunnel => {
            headers.push(("cf-connecting-ip", "198.51.100.23"));
            headers.push(("x-forwarded-for", "198.51.100.23"));
            SocketAddr::from(TUNNEL)
        }
    };
    headers.extend_from_slice(extra);
    let request = from_peer(new_request(method, path, &headers, body.to_owned()), peer);
    if path == "/api/events" {
        let response = common::respond(app, request).await;
        return Resp {
            status: response.status(),
            headers: response.headers().clone(),
            body: Vec::new(),
        };
    }
    send(app, request).await
}

/// A signed-in session: the cookie header to send and the CSRF token.
struct SignedIn {
    cookie: String,
    csrf: String,
    set_cookie: String,
}

async fn sign_in(app: &Router, from: From, user: &str, password: &str) -> SignedIn {
    let body = serde_json::json!({ "user": user, "password": password }).to_string();
    let r = call(
        app,
        from,
        Method::POST,
        "/api/login",
        &[("content-type", "application/json")],
        &body,
    )
    .await;
    r.assert_status(StatusCode::OK);
    let set_cookie = r.expect_header("set-cookie").to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    SignedIn {
        cookie,
        csrf: r.json()["csrf"].as_str().unwrap().to_owned(),
        set_cookie,
    }
}

/// Every viewing endpoint: method, path, body, content type.
const VIEWING: &[(&str, &str, &str)] = &[
    ("GET", "/", ""),
    ("GET", "/switcher", ""),
    ("GET", "/api/streams", ""),
    ("GET", "/api/events", ""),
    ("GET", "/hls/cam0/index.m3u8", ""),
    ("POST", "/whep/cam0", "whep"),
];

/// The path of cam0's media playlist, once the LAN can fetch its multivariant playlist.
async fn media_playlist(app: &Router) -> String {
    let start = std::time::Instant::now();
    loop {
        let r = call(app, From::Lan, Method::GET, "/hls/cam0/index.m3u8", &[], "").await;
        if r.status == StatusCode::OK {
            let uri = r
                .text()
                .lines()
                .find(|l| !l.starts_with('#') && !l.trim().is_empty())
                .expect("a variant")
                .trim()
                .to_owned();
            return format!("/hls/cam0/{uri}");
        }
        assert!(start.elapsed().as_secs() < 20, "no LL-HLS for cam0: {r:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Every publishing endpoint.
const PUBLISHING: &[(&str, &str, &str)] =
    &[("GET", "/guest_join", ""), ("POST", "/whip/guest1", "whip")];

async fn try_endpoint(
    app: &Router,
    from: From,
    (method, path, body): (&str, &str, &str),
    session: Option<&SignedIn>,
) -> Resp {
    let mut headers = Vec::new();
    let (body, csrf) = match body {
        "whip" => (CHROME_WHIP, true),
        "whep" => (CHROME_WHEP, true),
        _ => ("", false),
    };
    if !body.is_empty() {
        headers.push(("content-type", "application/sdp"));
    }
    if let Some(s) = session {
        headers.push(("cookie", s.cookie.as_str()));
        if csrf {
            headers.push(("x-csrf-token", s.csrf.as_str()));
            headers.push(("origin", "https://studio.example"));
        }
    }
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    call(app, from, method, path, &headers, body).await
}

#[tokio::test]
async fn from_outside_viewing_needs_a_user_and_publishing_an_operator() {
    // Something to watch: test camera cam0, with its LL-HLS.
    let engine = common::shared_engine(answering_config());
    let gatekeeper =
        Gatekeeper::with_users(AccessConfig::default(), false, UserStore::fixed(users()));
    let state = AppState::new(engine.clone(), Vec::new()).with_gatekeeper(gatekeeper);
    tokio::spawn(state.hls.clone().run());
    let app = router(state, &[]);
    let _camera = common::start_cameras(&engine, &[small_camera("cam0", 300_000, 30)]).await;
    let media = media_playlist(&app).await;
    let media_endpoint = ("GET", media.as_str(), "");
    let viewer = sign_in(&app, From::Tunnel, "vic", VIEWER_PASSWORD).await;
    let operator = sign_in(&app, From::Tunnel, "opa", OPERATOR_PASSWORD).await;

    for &endpoint in VIEWING.iter().chain([&media_endpoint]) {
        let what = format!("{} {}", endpoint.0, endpoint.1);
        let lan = try_endpoint(&app, From::Lan, endpoint, None).await;
        assert!(lan.status.is_success(), "{what} from the LAN: {lan:?}");
        let stranger = try_endpoint(&app, From::Tunnel, endpoint, None).await;
        if endpoint.1 == "/" || endpoint.1 == "/switcher" {
            stranger.assert_status(StatusCode::SEE_OTHER);
            let to = stranger.expect_header("location");
            assert_eq!(to, format!("/login?next={}", endpoint.1));
        } else {
            stranger.assert_status(StatusCode::UNAUTHORIZED);
            if endpoint.1 != "/api/events" {
                stranger.assert_one_line_reason();
            }
        }
        for who in [&viewer, &operator] {
            let signed = try_endpoint(&app, From::Tunnel, endpoint, Some(who)).await;
            if endpoint.1 == "/hls/cam0/index.m3u8" {
                // Into the signed prefix a CDN can share (see the test below).
                signed.assert_status(StatusCode::FOUND);
                assert!(signed.expect_header("location").starts_with("/hls/g/"));
                continue;
            }
            assert_eq!(signed.status, lan.status, "{what} signed in: {signed:?}");
            // What the LAN may cache publicly, a signed-in viewer's answer keeps private: a
            // shared cache must not hand it to a stranger.
            if let Some(cache) = lan.header("cache-control") {
                let signed_cache = signed.expect_header("cache-control");
                assert_eq!(signed_cache, cache.replace("public", "private"), "{what}");
            }
        }
    }

    for &endpoint in PUBLISHING {
        let what = format!("{} {}", endpoint.0, endpoint.1);
        let lan = try_endpoint(&app, From::Lan, endpoint, None).await;
        assert!(lan.status.is_success(), "{what} from the LAN: {lan:?}");
        let stranger = try_endpoint(&app, From::Tunnel, endpoint, None).await;
        assert!(
            matches!(
                stranger.status,
                StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER
            ),
            "{what} from outside: {stranger:?}"
        );
        // A viewer may watch but not publish.
        let as_viewer = try_endpoint(&app, From::Tunnel, endpoint, Some(&viewer)).await;
        assert_eq!(as_viewer.status, stranger.status, "{what} as a viewer");
        let as_operator = try_endpoint(&app, From::Tunnel, endpoint, Some(&operator)).await;
        assert!(
            as_operator.status.is_success(),
            "{what} as an operator: {as_operator:?}"
        );
    }
}

/// Remote LL-HLS that a CDN can still cache: a signed-in viewer's multivariant request is sent
/// into a signed path prefix; under it every answer keeps its public cache lifetime and needs no
/// cookie (the CDN's cache key is the URL, shared by everyone who signed in in the same window);
/// a forged or expired prefix is refused without a session.
#[tokio::test]
async fn remote_ll_hls_moves_into_a_signed_prefix_a_cdn_can_share() {
    let engine = common::shared_engine(answering_config());
    let gatekeeper =
        Gatekeeper::with_users(AccessConfig::default(), false, UserStore::fixed(users()));
    let state = AppState::new(engine.clone(), Vec::new()).with_gatekeeper(gatekeeper);
    tokio::spawn(state.hls.clone().run());
    let app = router(state.clone(), &[]);
    let _camera = common::start_cameras(&engine, &[small_camera("cam0", 300_000, 30)]).await;
    let media = media_playlist(&app).await;
    let lan = call(&app, From::Lan, Method::GET, &media, &[], "").await;
    lan.assert_status(StatusCode::OK);

    let viewer = sign_in(&app, From::Tunnel, "vic", VIEWER_PASSWORD).await;
    let entry = call(
        &app,
        From::Tunnel,
        Method::GET,
        "/hls/cam0/index.m3u8",
        &[("cookie", viewer.cookie.as_str())],
        "",
    )
    .await;
    entry.assert_status(StatusCode::FOUND);
    assert_eq!(entry.expect_header("cache-control"), "private, no-store");
    let granted = entry.expect_header("location").to_owned();
    let prefix = granted.strip_suffix("/cam0/index.m3u8").unwrap().to_owned();
    // Another viewer in the same window gets the same prefix: one cache key for all.
    let other = sign_in(&app, From::Tunnel, "opa", OPERATOR_PASSWORD).await;
    let again = call(
        &app,
        From::Tunnel,
        Method::GET,
        "/hls/cam0/index.m3u8",
        &[("cookie", other.cookie.as_str())],
        "",
    )
    .await;
    assert_eq!(again.expect_header("location"), granted);
    // Under the prefix, no cookie needed, and the answers cache as the LAN's do.
    let multivariant = call(&app, From::Tunnel, Method::GET, &granted, &[], "").await;
    multivariant.assert_status(StatusCode::OK);
    assert!(
        multivariant
            .expect_header("cache-control")
            .starts_with("public"),
        "{multivariant:?}"
    );
    let media_under = format!("{prefix}{}", media.strip_prefix("/hls").unwrap());
    let playlist = call(&app, From::Tunnel, Method::GET, &media_under, &[], "").await;
    playlist.assert_status(StatusCode::OK);
    assert!(playlist.text().contains("#EXTM3U"), "{playlist:?}");
    assert!(
        playlist
            .expect_header("cache-control")
            .starts_with("public"),
        "{playlist:?}"
    );
    // A forged prefix, and one that expired, are refused without a session.
    let forged = format!("/hls/g/9999999999-{}/cam0/index.m3u8", "0".repeat(32));
    call(&app, From::Tunnel, Method::GET, &forged, &[], "")
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let hour_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3 * 3600;
    let expired = format!(
        "/hls/g/{}/cam0/index.m3u8",
        state.gatekeeper.grants.issue(hour_ago)
    );
    call(&app, From::Tunnel, Method::GET, &expired, &[], "")
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    // A viewer still signed in keeps playing on an expired prefix, answered privately.
    let kept = call(
        &app,
        From::Tunnel,
        Method::GET,
        &expired,
        &[("cookie", viewer.cookie.as_str())],
        "",
    )
    .await;
    kept.assert_status(StatusCode::OK);
    assert!(kept.expect_header("cache-control").starts_with("private"));
    // The LAN is not redirected.
    call(
        &app,
        From::Lan,
        Method::GET,
        "/hls/cam0/index.m3u8",
        &[],
        "",
    )
    .await
    .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn open_settings_and_lan_sign_in_are_honoured() {
    let engine = common::shared_engine(answering_config());
    let open = router(
        AppState::new(engine.clone(), Vec::new())
            .with_gatekeeper(Gatekeeper::new(AccessConfig::open(), false)),
        &[],
    );
    let r = call(&open, From::Tunnel, Method::GET, "/api/streams", &[], "").await;
    r.assert_status(StatusCode::OK);
    let strict = router(
        AppState::new(engine, Vec::new()).with_gatekeeper(Gatekeeper::new(
            AccessConfig {
                lan: r58::config::Need::SignIn,
                ..AccessConfig::default()
            },
            false,
        )),
        &[],
    );
    let r = call(&strict, From::Lan, Method::GET, "/api/streams", &[], "").await;
    r.assert_status(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forged_forwarding_headers_never_make_a_request_local() {
    let app = app();
    // An internet client claiming to be on the LAN.
    let request = new_request(
        Method::GET,
        "/api/streams",
        &[("host", HOST), ("x-forwarded-for", "192.168.1.5")],
        Body::empty(),
    );
    let r = send(&app, from_peer(request, SocketAddr::from(INTERNET))).await;
    r.assert_status(StatusCode::UNAUTHORIZED);
    // A LAN client adding forwarding headers is treated as coming through a proxy: remote.
    for header in [
        ("x-forwarded-for", "127.0.0.1"),
        ("x-real-ip", "127.0.0.1"),
        ("forwarded", "for=127.0.0.1"),
        ("cf-connecting-ip", "10.0.0.1"),
    ] {
        let request = new_request(
            Method::GET,
            "/api/streams",
            &[("host", HOST), header],
            Body::empty(),
        );
        let r = send(&app, from_peer(request, SocketAddr::from(LAN))).await;
        r.assert_status(StatusCode::UNAUTHORIZED);
    }
    // The same LAN client without them is let in.
    call(&app, From::Lan, Method::GET, "/api/streams", &[], "")
        .await
        .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn session_cookie_flags_follow_https() {
    // Through a tunnel (HTTPS at the edge): Secure.
    let app = app();
    let tunnel = sign_in(&app, From::Tunnel, "vic", VIEWER_PASSWORD).await;
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(tunnel.set_cookie.contains(flag), "{}", tunnel.set_cookie);
    }
    // Plain HTTP on the LAN: a Secure cookie would never come back, so none.
    let lan = sign_in(&app, From::Lan, "vic", VIEWER_PASSWORD).await;
    assert!(!lan.set_cookie.contains("Secure"), "{}", lan.set_cookie);
    // A server that speaks HTTPS itself: Secure even from the LAN.
    let https = app_with(true);
    let lan = sign_in(&https, From::Lan, "vic", VIEWER_PASSWORD).await;
    assert!(lan.set_cookie.contains("; Secure"), "{}", lan.set_cookie);
    // The session id is 256 random bits; the CSRF token is not the id.
    let id = tunnel.cookie.strip_prefix("r58_session=").unwrap();
    assert_eq!(id.len(), 64);
    assert_ne!(id, tunnel.csrf);
}

#[tokio::test]
async fn a_forged_cross_site_request_is_refused() {
    let app = app();
    call(
        &app,
        From::Lan,
        Method::POST,
        "/whip/cam0",
        &[("content-type", "application/sdp")],
        CHROME_WHIP,
    )
    .await
    .assert_status(StatusCode::CREATED);
    let op = sign_in(&app, From::Tunnel, "opa", OPERATOR_PASSWORD).await;
    let cut = |headers: Vec<(&'static str, String)>| {
        let app = app.clone();
        let cookie = op.cookie.clone();
        async move {
            let mut all: Vec<(&str, &str)> = vec![
                ("content-type", "application/json"),
                ("cookie", cookie.as_str()),
            ];
            all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            call(
                &app,
                From::Tunnel,
                Method::POST,
                "/api/switcher/program",
                &all,
                r#"{"source":"cam0"}"#,
            )
            .await
        }
    };
    // The cookie alone (what a cross-site form or fetch would carry, if the browser sent it).
    cut(vec![]).await.assert_status(StatusCode::FORBIDDEN);
    cut(vec![("origin", "https://evil.example".into())])
        .await
        .assert_status(StatusCode::FORBIDDEN);
    // The right token from the wrong origin.
    cut(vec![
        ("origin", "https://evil.example".into()),
        ("x-csrf-token", op.csrf.clone()),
    ])
    .await
    .assert_status(StatusCode::FORBIDDEN);
    // A wrong token from the right origin.
    cut(vec![
        ("origin", format!("https://{HOST}")),
        ("x-csrf-token", "0".repeat(64)),
    ])
    .await
    .assert_status(StatusCode::FORBIDDEN);
    // The page itself: its origin and its token.
    cut(vec![
        ("origin", format!("https://{HOST}")),
        ("x-csrf-token", op.csrf.clone()),
    ])
    .await
    .assert_status(StatusCode::OK);
    // A viewer's session is no operator's, token or not.
    let viewer = sign_in(&app, From::Tunnel, "vic", VIEWER_PASSWORD).await;
    let r = call(
        &app,
        From::Tunnel,
        Method::POST,
        "/api/switcher/program",
        &[
            ("content-type", "application/json"),
            ("cookie", viewer.cookie.as_str()),
            ("x-csrf-token", viewer.csrf.as_str()),
        ],
        r#"{"source":"cam0"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    // Signing in from another site is refused too (login CSRF), as is a form post.
    let body = serde_json::json!({ "user": "opa", "password": OPERATOR_PASSWORD }).to_string();
    call(
        &app,
        From::Tunnel,
        Method::POST,
        "/api/login",
        &[
            ("content-type", "application/json"),
            ("origin", "https://evil.example"),
        ],
        &body,
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    call(
        &app,
        From::Tunnel,
        Method::POST,
        "/api/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        "user=opa&password=x",
    )
    .await
    .assert_status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

async fn session_of(app: &Router, cookie: &str) -> serde_json::Value {
    call(
        app,
        From::Tunnel,
        Method::GET,
        "/api/session",
        &[("cookie", cookie)],
        "",
    )
    .await
    .json()
}

#[tokio::test]
async fn session_ids_are_only_ever_the_servers_and_sign_out_ends_them() {
    let app = app();
    // An attacker plants an id of their choosing: it is no session, and signing in with it
    // present yields another.
    let planted = format!("r58_session={}", "ab".repeat(32));
    assert_eq!(session_of(&app, &planted).await["signed_in"], false);
    let body = serde_json::json!({ "user": "vic", "password": VIEWER_PASSWORD }).to_string();
    let r = call(
        &app,
        From::Tunnel,
        Method::POST,
        "/api/login",
        &[
            ("content-type", "application/json"),
            ("cookie", planted.as_str()),
        ],
        &body,
    )
    .await;
    r.assert_status(StatusCode::OK);
    let fresh = r
        .expect_header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, planted);
    assert_eq!(session_of(&app, &planted).await["signed_in"], false);
    assert_eq!(session_of(&app, &fresh).await["user"], "vic");
    // Signing in again while holding a real session ends that one (a stolen pre-login id is
    // worth nothing after).
    let again = sign_in_with_cookie(&app, &fresh).await;
    assert_ne!(again, fresh);
    assert_eq!(session_of(&app, &fresh).await["signed_in"], false);
    // Sign-out ends the session on the server, not only in the browser.
    let csrf = session_of(&app, &again).await["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = call(
        &app,
        From::Tunnel,
        Method::POST,
        "/api/logout",
        &[("cookie", again.as_str()), ("x-csrf-token", csrf.as_str())],
        "",
    )
    .await;
    out.assert_status(StatusCode::NO_CONTENT);
    assert!(out.expect_header("set-cookie").contains("Max-Age=0"));
    assert_eq!(session_of(&app, &again).await["signed_in"], false);
    call(
        &app,
        From::Tunnel,
        Method::GET,
        "/api/streams",
        &[("cookie", again.as_str())],
        "",
    )
    .await
    .assert_status(StatusCode::UNAUTHORIZED);
}

async fn sign_in_with_cookie(app: &Router, cookie: &str) -> String {
    let body = serde_json::json!({ "user": "vic", "password": VIEWER_PASSWORD }).to_string();
    let r = call(
        app,
        From::Tunnel,
        Method::POST,
        "/api/login",
        &[("content-type", "application/json"), ("cookie", cookie)],
        &body,
    )
    .await;
    r.assert_status(StatusCode::OK);
    r.expect_header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn attempt(app: &Router, client: &str, user: &str, password: &str) -> Resp {
    let body = serde_json::json!({ "user": user, "password": password }).to_string();
    let request = new_request(
        Method::POST,
        "/api/login",
        &[
            ("host", HOST),
            ("content-type", "application/json"),
            ("x-forwarded-for", client),
        ],
        body,
    );
    send(app, from_peer(request, SocketAddr::from(TUNNEL))).await
}

#[tokio::test]
async fn brute_force_sign_in_is_rate_limited_per_address_and_per_user() {
    let app = app();
    // One address guessing many names: 10 tries, then 429 with Retry-After.
    for i in 0..10 {
        let r = attempt(&app, "198.51.100.1", &format!("guess{i}"), "wrong password").await;
        r.assert_status(StatusCode::UNAUTHORIZED);
    }
    let r = attempt(&app, "198.51.100.1", "opa", OPERATOR_PASSWORD).await;
    r.assert_status(StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.expect_header("retry-after").parse().unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    // Many addresses guessing one name: 5 failures, then even the right password waits.
    for i in 0..5 {
        let from = format!("198.51.100.{}", 10 + i);
        attempt(&app, &from, "vic", "wrong password")
            .await
            .assert_status(StatusCode::UNAUTHORIZED);
    }
    attempt(&app, "198.51.100.99", "vic", VIEWER_PASSWORD)
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS);
    // Others are not locked out meanwhile.
    attempt(&app, "198.51.100.98", "opa", OPERATOR_PASSWORD)
        .await
        .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn traversal_from_outside_reaches_nothing_protected() {
    let app = app();
    for path in [
        "/static/../switcher",
        "/static/..%2f..%2fswitcher.html",
        "/static/%2e%2e/%2e%2e/index.html",
        "/login/../api/streams",
        "/static/js/../../api/streams",
        "/hls/..%2f..%2fapi/streams",
    ] {
        let r = call(&app, From::Tunnel, Method::GET, path, &[], "").await;
        assert!(
            matches!(r.status, StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED),
            "{path}: {r:?}"
        );
        assert!(!r.text().contains("cam0"), "{path}: {r:?}");
    }
}

/// The log of a sign-in, a refused sign-in and a refused CSRF attempt names users and
/// addresses, never a password, a session id or a CSRF token.
#[tokio::test]
async fn nothing_secret_is_logged() {
    let log = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let log = log.clone();
        move || LogWriter(log.clone())
    };
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish(),
    )
    .expect("the only subscriber of this test process");
    let app = app();
    attempt(&app, "198.51.100.1", "opa", "not the password")
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let op = sign_in(&app, From::Tunnel, "opa", OPERATOR_PASSWORD).await;
    call(
        &app,
        From::Tunnel,
        Method::POST,
        "/api/switcher/program",
        &[
            ("content-type", "application/json"),
            ("cookie", op.cookie.as_str()),
        ],
        r#"{"source":"cam0"}"#,
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    assert!(text.contains("signed in"), "the log was captured: {text}");
    assert!(text.contains("sign-in refused"), "{text}");
    assert!(text.contains("CSRF"), "{text}");
    let id = op.cookie.strip_prefix("r58_session=").unwrap();
    for secret in [OPERATOR_PASSWORD, "not the password", id, op.csrf.as_str()] {
        assert!(!text.contains(secret), "the log shows a secret: {text}");
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
