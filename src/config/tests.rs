use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use super::*;

fn args(list: &[&str]) -> Vec<String> {
    std::iter::once("r58")
        .chain(list.iter().copied())
        .map(str::to_owned)
        .collect()
}

fn env(list: &[(&str, &str)]) -> HashMap<String, String> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(a: &[&str], e: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_args_env_file(args(a), &env(e))
}

fn load_ok(a: &[&str], e: &[(&str, &str)]) -> Config {
    match load(a, e) {
        Ok(c) => c,
        Err(err) => panic!("unexpected error: {err}"),
    }
}

fn load_err(a: &[&str], e: &[(&str, &str)]) -> String {
    match load(a, e) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(err) => {
            assert_eq!(err.exit_code(), 2, "{err}");
            let line = err.to_string();
            assert!(!line.contains('\n'), "not one line: {line:?}");
            line
        }
    }
}

/// A config file in a fresh temporary folder; the folder lives as long as the returned guard.
fn file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r58.toml");
    std::fs::write(&path, text).expect("write config");
    let path = path.to_str().expect("utf-8 temp path").to_owned();
    (dir, path)
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address literal")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip literal")
}

#[test]
fn defaults_with_no_arguments() {
    let c = load_ok(&[], &[]);
    assert_eq!(c, Config::default());
    assert_eq!(c.listen, sa("0.0.0.0:8000"));
    assert_eq!(c.webrtc_udp, sa("0.0.0.0:8189"));
    assert!(c.public_ips.is_empty());
    assert_eq!(c.log_level, "info");
    assert_eq!(c.max_sessions, 1000);
    assert_eq!(c.media_threads, 0, "one per core unless asked");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        c.media_threads(),
        cores.min(crate::config::AUTO_MEDIA_THREADS_MAX)
    );
    assert_eq!(c.cors_allowed_origins, vec!["*"]);
    assert!(c.auth.is_empty());
    assert!(c.config_file.is_none());
}

#[test]
fn each_flag() {
    let c = load_ok(
        &[
            "--listen",
            "127.0.0.1:9000",
            "--webrtc-udp",
            "[::1]:9001",
            "--public-ip",
            "10.0.0.5",
            "--public-ip=192.168.1.58,[fd00::1]",
            "--log-level",
            "info,sfu=debug",
            "--max-sessions",
            "7",
            "--media-threads",
            "1",
            "--cors-allowed-origin",
            "https://a.example",
            "--cors-allowed-origin",
            "http://b.example:8080",
        ],
        &[],
    );
    assert_eq!(c.listen, sa("127.0.0.1:9000"));
    assert_eq!(c.webrtc_udp, sa("[::1]:9001"));
    assert_eq!(
        c.public_ips,
        vec![ip("10.0.0.5"), ip("192.168.1.58"), ip("fd00::1")]
    );
    assert_eq!(c.log_level, "info,sfu=debug");
    assert_eq!(c.max_sessions, 7);
    assert_eq!(c.media_threads(), 1);
    assert_eq!(
        c.cors_allowed_origins,
        vec!["https://a.example", "http://b.example:8080"]
    );
}

#[test]
fn address_shorthands() {
    let c = load_ok(&["--listen", "localhost:80", "--webrtc-udp", ":5000"], &[]);
    assert_eq!(c.listen, sa("127.0.0.1:80"));
    assert_eq!(c.webrtc_udp, sa("0.0.0.0:5000"));
}

#[test]
fn env_overrides_defaults() {
    let c = load_ok(
        &[],
        &[
            ("R58_LISTEN", "127.0.0.1:1"),
            ("R58_WEBRTC_UDP", "127.0.0.1:2"),
            ("R58_PUBLIC_IP", " 1.2.3.4 , 5.6.7.8,"),
            ("R58_LOG_LEVEL", "debug"),
            ("R58_MAX_SESSIONS", "3"),
            ("R58_MEDIA_THREADS", "2"),
            (
                "R58_CORS_ALLOWED_ORIGINS",
                "https://x.example,https://y.example",
            ),
            ("R58_UNRELATED", "ignored"),
        ],
    );
    assert_eq!(c.listen, sa("127.0.0.1:1"));
    assert_eq!(c.webrtc_udp, sa("127.0.0.1:2"));
    assert_eq!(c.public_ips, vec![ip("1.2.3.4"), ip("5.6.7.8")]);
    assert_eq!(c.log_level, "debug");
    assert_eq!(c.max_sessions, 3);
    assert_eq!(c.media_threads, 2);
    assert_eq!(c.media_threads(), 2, "a number asked for is taken as it is");
    assert_eq!(
        c.cors_allowed_origins,
        vec!["https://x.example", "https://y.example"]
    );
}

#[test]
fn empty_env_counts_as_unset() {
    let c = load_ok(&[], &[("R58_LISTEN", ""), ("R58_PUBLIC_IP", "")]);
    assert_eq!(c.listen, DEFAULT_LISTEN);
    assert!(c.public_ips.is_empty());
}

const FULL_FILE: &str = r#"
listen = "127.0.0.1:7000"
webrtc_udp = "127.0.0.1:7001"
public_ips = ["192.168.1.58"]
log_level = "warn"
max_sessions = 50
media_threads = 3
cors_allowed_origins = ["https://studio.example"]

[[auth]]
path = "/whip/*"
token = "secret"
"#;

#[test]
fn file_overrides_defaults() {
    let (_dir, path) = file(FULL_FILE);
    let c = load_ok(&["--config", &path], &[]);
    assert_eq!(c.config_file.as_deref(), Some(Path::new(&path)));
    assert_eq!(c.listen, sa("127.0.0.1:7000"));
    assert_eq!(c.webrtc_udp, sa("127.0.0.1:7001"));
    assert_eq!(c.public_ips, vec![ip("192.168.1.58")]);
    assert_eq!(c.log_level, "warn");
    assert_eq!(c.max_sessions, 50);
    assert_eq!(c.media_threads, 3);
    assert_eq!(c.cors_allowed_origins, vec!["https://studio.example"]);
    assert_eq!(
        c.auth,
        vec![AuthRule {
            path: "/whip/*".into(),
            token: "secret".into()
        }]
    );
}

#[test]
fn config_path_from_env() {
    let (_dir, path) = file("max_sessions = 9\n");
    let c = load_ok(&[], &[("R58_CONFIG", &path)]);
    assert_eq!(c.max_sessions, 9);
}

#[test]
fn empty_file_is_defaults() {
    let (_dir, path) = file("# nothing\n");
    let c = load_ok(&["--config", &path], &[]);
    assert_eq!(
        c,
        Config {
            config_file: Some(path.into()),
            ..Config::default()
        }
    );
}

#[test]
fn precedence_flag_over_env_over_file_over_default() {
    let (_dir, path) = file(FULL_FILE);
    let e = [
        ("R58_LISTEN", "127.0.0.1:8001"),
        ("R58_WEBRTC_UDP", "127.0.0.1:8002"),
        ("R58_PUBLIC_IP", "10.1.1.1"),
    ];
    let c = load_ok(&["--config", &path, "--listen", "127.0.0.1:9001"], &e);
    assert_eq!(c.listen, sa("127.0.0.1:9001"), "flag beats env and file");
    assert_eq!(c.webrtc_udp, sa("127.0.0.1:8002"), "env beats file");
    assert_eq!(
        c.public_ips,
        vec![ip("10.1.1.1")],
        "env list replaces file list"
    );
    assert_eq!(c.log_level, "warn", "file beats default");

    let c = load_ok(&["--config", &path, "--public-ip", "10.2.2.2"], &e);
    assert_eq!(
        c.public_ips,
        vec![ip("10.2.2.2")],
        "flag list replaces env list"
    );

    // --config beats R58_CONFIG.
    let (_dir2, other) = file("max_sessions = 2\n");
    let c = load_ok(&["--config", &other], &[("R58_CONFIG", &path)]);
    assert_eq!(c.max_sessions, 2);
}

#[test]
fn unknown_key_is_named() {
    let (_dir, path) = file("listn = \"0.0.0.0:8000\"\n");
    let msg = load_err(&["--config", &path], &[]);
    assert_eq!(
        msg,
        format!(
            "config {path}: unknown key 'listn' (expected one of {})",
            super::FILE_KEYS.join(", ")
        )
    );
}

#[test]
fn unknown_auth_key_is_named() {
    let (_dir, path) = file("[[auth]]\npath = \"/whip/*\"\ntokn = \"x\"\n");
    let msg = load_err(&["--config", &path], &[]);
    assert!(msg.contains("unknown key 'auth[0].tokn'"), "{msg}");
    assert!(msg.contains("token_file"), "{msg}");
}

#[test]
fn wrong_type_names_the_key() {
    let (_dir, path) = file("max_sessions = \"many\"\n");
    let msg = load_err(&["--config", &path], &[]);
    assert!(
        msg.starts_with(&format!("config {path}: max_sessions: ")),
        "{msg}"
    );

    let (_dir, path) = file("public_ips = [1]\n");
    let msg = load_err(&["--config", &path], &[]);
    assert!(msg.contains("public_ips"), "{msg}");

    let (_dir, path) = file("[[auth]]\ntoken = \"x\"\n");
    let msg = load_err(&["--config", &path], &[]);
    assert!(msg.contains("auth[0]") && msg.contains("path"), "{msg}");
}

#[test]
fn bad_values_in_file_name_the_key() {
    for (text, key) in [
        ("listen = \"nowhere\"", "listen"),
        ("webrtc_udp = \"1.2.3.4\"", "webrtc_udp"),
        ("public_ips = [\"0.0.0.0\"]", "public_ips"),
        ("log_level = \"loud\"", "log_level"),
        ("max_sessions = 0", "max_sessions"),
        ("max_sessions = -1", "max_sessions"),
        ("media_threads = 65", "media_threads"),
        ("media_threads = -1", "media_threads"),
        (
            "cors_allowed_origins = [\"example.com\"]",
            "cors_allowed_origins",
        ),
    ] {
        let (_dir, path) = file(text);
        let msg = load_err(&["--config", &path], &[]);
        assert!(
            msg.starts_with(&format!("config {path}: {key}: ")),
            "{text}: {msg}"
        );
    }
}

#[test]
fn toml_syntax_error_has_line() {
    let (_dir, path) = file("max_sessions = 3\nlisten = \n");
    let msg = load_err(&["--config", &path], &[]);
    assert!(
        msg.starts_with(&format!("config {path}: line 2: ")),
        "{msg}"
    );
}

#[test]
fn missing_file_is_an_error() {
    let msg = load_err(&["--config", "/nonexistent/r58.toml"], &[]);
    assert!(
        msg.starts_with("config /nonexistent/r58.toml: cannot read"),
        "{msg}"
    );
}

#[test]
fn bad_address_names_the_flag() {
    let msg = load_err(&["--listen", "foo"], &[]);
    assert_eq!(
        msg,
        "--listen: invalid socket address 'foo' (expected HOST:PORT, e.g. 0.0.0.0:8000)"
    );
    let msg = load_err(&["--webrtc-udp", "1.2.3.4:99999"], &[]);
    assert!(
        msg.starts_with("--webrtc-udp: invalid socket address"),
        "{msg}"
    );
    let msg = load_err(&["--public-ip", "not-an-ip"], &[]);
    assert_eq!(msg, "--public-ip: invalid IP address 'not-an-ip'");
}

#[test]
fn bad_env_names_the_variable() {
    let msg = load_err(&[], &[("R58_LISTEN", "foo")]);
    assert!(
        msg.starts_with("R58_LISTEN: invalid socket address 'foo'"),
        "{msg}"
    );
    let msg = load_err(&[], &[("R58_MAX_SESSIONS", "lots")]);
    assert!(msg.starts_with("R58_MAX_SESSIONS: invalid number"), "{msg}");
    let msg = load_err(&[], &[("R58_PUBLIC_IP", "1.2.3.4,nope")]);
    assert_eq!(msg, "R58_PUBLIC_IP: invalid IP address 'nope'");
}

#[test]
fn bad_value_is_reported_even_when_overridden() {
    let (_dir, path) = file("listen = \"bad\"\n");
    let msg = load_err(&["--config", &path, "--listen", "127.0.0.1:1"], &[]);
    assert!(msg.contains("listen"), "{msg}");
}

#[test]
fn log_levels() {
    for ok in ["info", "DEBUG", "off", "warn,sfu=trace", "r58=debug"] {
        assert_eq!(load_ok(&["--log-level", ok], &[]).log_level, ok);
    }
    for bad in ["", "verbose", "debgu"] {
        let msg = load_err(&["--log-level", bad], &[]);
        assert!(msg.starts_with("--log-level: invalid log level"), "{msg}");
    }
    let c = load_ok(&["--log-level", "info,sfu=debug"], &[]);
    assert_eq!(c.log_filter().to_string(), "sfu=debug,info");
}

#[test]
fn clap_errors_exit_2_and_help_exits_0() {
    let err = load(&["--no-such-flag"], &[]).expect_err("unknown flag");
    assert_eq!(err.exit_code(), 2);
    assert!(matches!(err, ConfigError::Cli(_)));
    let err = load(&["--help"], &[]).expect_err("help is an early exit");
    assert_eq!(err.exit_code(), 0);
}

#[test]
fn help_explains_every_flag() {
    let err = load(&["--help"], &[]).expect_err("help");
    let ConfigError::Cli(e) = err else {
        panic!("help should be a clap error")
    };
    let help = e.to_string();
    for needle in [
        "--config",
        "--listen",
        "--webrtc-udp",
        "--public-ip",
        "--log-level",
        "--max-sessions",
        "--cors-allowed-origin",
        "R58_CONFIG",
        "R58_LISTEN",
        "R58_WEBRTC_UDP",
        "R58_PUBLIC_IP",
        "R58_LOG_LEVEL",
        "0.0.0.0:8000",
        "0.0.0.0:8189",
    ] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
}

#[test]
fn token_file_and_token_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("whip.token"), "from-file\n").expect("write token");
    let abs = dir.path().join("whep.token");
    std::fs::write(&abs, "  abs-file  ").expect("write token");
    let text = format!(
        "[[auth]]\npath = \"/whip/*\"\ntoken_file = \"whip.token\"\n\
         [[auth]]\npath = \"/whep/*\"\ntoken_file = \"{}\"\n\
         [[auth]]\npath = \"/api/switcher\"\ntoken_env = \"SWITCH_TOKEN\"\n",
        abs.display()
    );
    let path = dir.path().join("r58.toml");
    std::fs::write(&path, text).expect("write config");
    let path = path.to_str().expect("utf-8").to_owned();

    let c = load_ok(&["--config", &path], &[("SWITCH_TOKEN", "from-env")]);
    let tokens: Vec<(&str, &str)> = c
        .auth
        .iter()
        .map(|r| (r.path.as_str(), r.token.as_str()))
        .collect();
    assert_eq!(
        tokens,
        vec![
            ("/whip/*", "from-file"),
            ("/whep/*", "abs-file"),
            ("/api/switcher", "from-env")
        ]
    );
    assert_eq!(c.required_token("/whip/guest1"), Some("from-file"));
    assert_eq!(c.required_token("/whep/guest1/abc"), Some("abs-file"));
    assert_eq!(c.required_token("/api/switcher"), Some("from-env"));
    assert_eq!(c.required_token("/api/streams"), None);
    assert!(
        !format!("{c:?}").contains("from-file"),
        "tokens leak in Debug"
    );

    let msg = load_err(&["--config", &path], &[]);
    assert!(
        msg.contains("auth[2].token_env") && msg.contains("SWITCH_TOKEN"),
        "{msg}"
    );
}

#[test]
fn bad_auth_rules() {
    for (rule, needle) in [
        ("path = \"/whip/*\"", "exactly one"),
        (
            "path = \"/whip/*\"\ntoken = \"a\"\ntoken_env = \"B\"",
            "exactly one",
        ),
        ("path = \"/whip/*\"\ntoken = \"\"", "empty"),
        ("path = \"/whip/*\"\ntoken = \"has space\"", "printable"),
        ("path = \"whip/*\"\ntoken = \"a\"", "must start with '/'"),
        ("path = \"/wh*ip\"\ntoken = \"a\"", "trailing"),
        (
            "path = \"/whip/*\"\ntoken_file = \"missing.token\"",
            "cannot read",
        ),
    ] {
        let (_dir, path) = file(&format!("[[auth]]\n{rule}\n"));
        let msg = load_err(&["--config", &path], &[]);
        assert!(
            msg.contains("auth[0]") && msg.contains(needle),
            "{rule}: {msg}"
        );
    }
}

#[test]
fn path_pattern_matcher() {
    assert!(matches("/whip/*", "/whip/guest1"));
    assert!(matches("/whip/*", "/whip/guest1/session"));
    assert!(matches("/whip/*", "/whip/"));
    assert!(!matches("/whip/*", "/whip"));
    assert!(!matches("/whip/*", "/whep/guest1"));
    assert!(matches("/whip*", "/whip"));
    assert!(matches("/whip*", "/whipx"));
    assert!(matches("*", "/anything"));
    assert!(matches("/api/streams", "/api/streams"));
    assert!(!matches("/api/streams", "/api/streams/"));
    assert!(!matches("/api/streams", "/api/stream"));
    assert!(!matches("", "/"));
    assert!(matches("", ""));
}

#[test]
fn first_matching_rule_wins() {
    let (_dir, path) = file(
        "[[auth]]\npath = \"/whip/vip\"\ntoken = \"vip\"\n\
         [[auth]]\npath = \"/whip/*\"\ntoken = \"all\"\n",
    );
    let c = load_ok(&["--config", &path], &[]);
    assert_eq!(c.required_token("/whip/vip"), Some("vip"));
    assert_eq!(c.required_token("/whip/other"), Some("all"));
}

#[test]
fn candidates_from_public_ips_then_bind_address() {
    let c = load_ok(
        &["--public-ip", "1.2.3.4", "--webrtc-udp", "127.0.0.1:1"],
        &[],
    );
    assert_eq!(c.candidate_ips(), vec![ip("1.2.3.4")]);
    let c = load_ok(&["--webrtc-udp", "127.0.0.1:1"], &[]);
    assert_eq!(c.candidate_ips(), vec![ip("127.0.0.1")]);
    let c = load_ok(&["--webrtc-udp", "[::1]:1"], &[]);
    assert_eq!(c.candidate_ips(), vec![ip("::1")]);
}

#[test]
fn candidates_from_interfaces_on_wildcard_bind() {
    let c = load_ok(&[], &[]);
    let ips = c.candidate_ips();
    assert!(!ips.is_empty());
    assert_eq!(ips.last(), Some(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert!(ips.iter().all(|ip| ip.is_ipv4()), "{ips:?}");
}

#[test]
fn interface_ordering() {
    let found = [
        ip("127.0.0.1"),
        ip("::1"),
        ip("fe80::1"),
        ip("169.254.1.1"),
        ip("2001:db8::5"),
        ip("192.168.1.58"),
        ip("10.0.0.2"),
        ip("192.168.1.58"),
    ];
    let v4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        interface_candidates(v4, &found),
        vec![ip("192.168.1.58"), ip("10.0.0.2"), ip("127.0.0.1")]
    );
    let v6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    assert_eq!(
        interface_candidates(v6, &found),
        vec![
            ip("192.168.1.58"),
            ip("10.0.0.2"),
            ip("2001:db8::5"),
            ip("127.0.0.1"),
            ip("::1")
        ]
    );
    // No interfaces found at all: still loopback.
    assert_eq!(interface_candidates(v4, &[]), vec![ip("127.0.0.1")]);
}

#[test]
fn garbage_files_are_errors_not_panics() {
    for text in [
        "listen = \"é",
        "é = 1",
        "[[auth]]\npath = \"/ü\"\ntoken = \"ä\"",
        "\u{feff}max_sessions = ",
        "public_ips = [\"1.2.3.4\", 5]",
        "auth = [1]",
        "auth = { path = \"/\" }",
        "[auth]\npath = \"/\"",
        "listen = 18446744073709551616",
        "test_cameras = 2",
        "[test_cameras]\ncount = -1",
        "[test_cameras]\nwidth = \"wide\"",
        "max_sessions = 18446744073709551615",
        "\0\0\0",
    ] {
        let (_dir, path) = file(text);
        let msg = load_err(&["--config", &path], &[]);
        assert!(
            msg.starts_with(&format!("config {path}: ")),
            "{text:?}: {msg}"
        );
    }
}

#[test]
fn test_cameras_default_to_two_720p30() {
    let c = load_ok(&[], &[]);
    assert_eq!(c.test_cameras, TestCameras::default());
    assert_eq!(c.test_cameras.names(), ["cam0", "cam1"]);
    let t = &c.test_cameras;
    assert_eq!(
        (t.width, t.height, t.fps, t.bitrate),
        (1280, 720, 30, 2_500_000)
    );
}

#[test]
fn test_cameras_flag_env_and_file() {
    let (_dir, path) =
        file("[test_cameras]\ncount = 3\nwidth = 640\nheight = 360\nfps = 25\nbitrate = 800000\n");
    let c = load_ok(&["--config", &path], &[]);
    let t = &c.test_cameras;
    assert_eq!(t.names(), ["cam0", "cam1", "cam2"]);
    assert_eq!(
        (t.width, t.height, t.fps, t.bitrate),
        (640, 360, 25, 800_000)
    );
    // The flag beats the environment, which beats the file; 0 turns them off.
    let c = load_ok(
        &["--config", &path, "--test-cameras", "0"],
        &[("R58_TEST_CAMERAS", "1")],
    );
    assert!(c.test_cameras.names().is_empty());
    assert_eq!(
        c.test_cameras.width, 640,
        "the rest of the table still applies"
    );
    let c = load_ok(&["--config", &path], &[("R58_TEST_CAMERAS", "1")]);
    assert_eq!(c.test_cameras.names(), ["cam0"]);
    // A count on the command line turns on cameras the file turned off.
    let (_dir2, off) = file("[test_cameras]\nenabled = false\n");
    assert!(
        load_ok(&["--config", &off], &[])
            .test_cameras
            .names()
            .is_empty()
    );
    let c = load_ok(&["--config", &off, "--test-cameras", "2"], &[]);
    assert_eq!(c.test_cameras.names(), ["cam0", "cam1"]);
}

#[test]
fn bad_test_camera_values_name_the_key() {
    assert_eq!(
        load_err(&["--test-cameras", "many"], &[]),
        "--test-cameras: invalid number 'many' (expected a whole number 0..=16)"
    );
    assert_eq!(
        load_err(&[], &[("R58_TEST_CAMERAS", "17")]),
        "R58_TEST_CAMERAS: '17' is out of range (expected 0..=16)"
    );
    for (text, key, what) in [
        ("width = 641", "width", "must be even"),
        ("height = 4000", "height", "out of range"),
        ("fps = 0", "fps", "out of range"),
        ("bitrate = 1", "bitrate", "out of range"),
        ("count = 99", "count", "out of range"),
    ] {
        let (_dir, path) = file(&format!("[test_cameras]\n{text}\n"));
        let msg = load_err(&["--config", &path], &[]);
        assert!(
            msg.starts_with(&format!("config {path}: test_cameras.{key}: ")) && msg.contains(what),
            "{text}: {msg}"
        );
    }
    let (_dir, path) = file("[test_cameras]\ncout = 1\n");
    let msg = load_err(&["--config", &path], &[]);
    assert!(msg.contains("unknown key 'test_cameras.cout'"), "{msg}");
    assert!(msg.contains("bitrate"), "{msg}");
}
