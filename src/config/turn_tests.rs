//! The `[turn]` table: each provider, secrets from env/file/inline, and every refusal.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use sfu::turn::{CLOUDFLARE_API_BASE, Provider, Secret};

use super::super::{Config, ConfigError};
use super::{ENV_API_TOKEN, ENV_SECRET, ENV_TOKEN, Turn};

/// Writes `r58.toml` (and extra files) into a fresh folder and loads it with `env`.
fn load(toml: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let path = dir.path().join("r58.toml");
    std::fs::write(&path, toml).expect("write config");
    let args = vec![
        "r58".to_owned(),
        "--config".to_owned(),
        path.to_str().expect("utf-8").to_owned(),
    ];
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_args_env_file(args, &env)
}

fn turn(toml: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> Turn {
    match load(toml, files, env) {
        Ok(c) => c.turn,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// The one-line error, with the temporary path cut off (it starts after "r58.toml: ").
fn error(toml: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> String {
    match load(toml, files, env) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2);
            let line = e.to_string();
            assert!(!line.contains('\n'), "{line}");
            line.split_once("r58.toml: ")
                .map_or(line.clone(), |(_, rest)| rest.to_owned())
        }
    }
}

#[test]
fn default_is_no_turn_with_protection_on() {
    let t = Config::default().turn;
    assert_eq!(t.service.provider, Provider::None);
    assert!(t.service.stun_urls.is_empty());
    assert!(t.allowed_origins.is_empty());
    assert!(t.token.is_none());
    assert_eq!((t.rate_limit_per_minute, t.rate_limit_burst), (30, 10));
    assert_eq!(
        t.trusted_proxies,
        vec![
            "127.0.0.1".parse::<IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );
    assert!(t.link_headers);
    // An empty table is the default too.
    assert_eq!(turn("[turn]\n", &[], &[]), t);
}

#[test]
fn none_with_stun_urls() {
    let t = turn(
        "[turn]\nprovider = \"none\"\nstun_urls = [\"stun:stun.example:3478\"]\n",
        &[],
        &[],
    );
    assert_eq!(t.service.provider, Provider::None);
    assert_eq!(t.service.stun_urls, vec!["stun:stun.example:3478"]);
}

#[test]
fn static_provider() {
    let t = turn(
        r#"[turn]
provider = "static"
urls = ["turn:turn.example:3478?transport=udp", "turns:turn.example:5349"]
username = "guest"
credential = "pw"
"#,
        &[],
        &[],
    );
    assert_eq!(
        t.service.provider,
        Provider::Static {
            urls: vec![
                "turn:turn.example:3478?transport=udp".into(),
                "turns:turn.example:5349".into()
            ],
            username: Some("guest".into()),
            credential: Some(Secret::new("pw")),
        }
    );
    assert!(
        error(
            "[turn]\nprovider = \"static\"\nurls = [\"turn:a\"]\n",
            &[],
            &[]
        )
        .contains("turn.username: turn: URLs need a username and credential")
    );
    assert!(
        error(
            "[turn]\nprovider = \"static\"\nurls = [\"turn:a\"]\nusername = \"u\"\n",
            &[],
            &[]
        )
        .contains("turn.credential: set both username and credential")
    );
    assert!(
        error("[turn]\nprovider = \"static\"\n", &[], &[])
            .contains("turn.urls: provider = \"static\" needs at least one")
    );
}

#[test]
fn coturn_secret_from_env_then_file_then_inline() {
    let base = "[turn]\nprovider = \"coturn\"\nurls = [\"turn:127.0.0.1:3478?transport=udp\"]\n";
    let secret = |t: Turn| match t.service.provider {
        Provider::Coturn {
            secret, user, ttl, ..
        } => {
            assert_eq!(user, "r58");
            assert_eq!(ttl, Duration::from_secs(86_400));
            secret.expose().to_owned()
        }
        other => panic!("not coturn: {other:?}"),
    };
    let inline = format!("{base}secret = \"inline\"\n");
    let from_file = format!("{base}secret_file = \"turn.secret\"\n");
    assert_eq!(secret(turn(&inline, &[], &[])), "inline");
    assert_eq!(
        secret(turn(&from_file, &[("turn.secret", "fromfile\n")], &[])),
        "fromfile"
    );
    assert_eq!(
        secret(turn(
            &from_file,
            &[("turn.secret", "fromfile")],
            &[(ENV_SECRET, "fromenv")]
        )),
        "fromenv"
    );
    assert_eq!(
        secret(turn(base, &[], &[(ENV_SECRET, "fromenv")])),
        "fromenv"
    );
    // Missing, unreadable, both, empty.
    assert!(error(base, &[], &[]).contains("needs the shared secret"));
    assert!(error(&from_file, &[], &[]).contains("turn.secret_file: cannot read"));
    assert!(
        error(
            &format!("{base}secret = \"a\"\nsecret_file = \"b\"\n"),
            &[],
            &[]
        )
        .contains("set either secret or secret_file, not both")
    );
    let empty = error(&from_file, &[("turn.secret", "  \n")], &[]);
    assert!(
        empty.contains("turn.secret_file: must be non-empty"),
        "{empty}"
    );
}

#[test]
fn coturn_user_ttl_and_urls() {
    let t = turn(
        r#"[turn]
provider = "coturn"
urls = ["turn:127.0.0.1:3478"]
secret = "s"
username = "studio"
ttl_secs = 3600
"#,
        &[],
        &[],
    );
    match t.service.provider {
        Provider::Coturn { user, ttl, .. } => {
            assert_eq!(user, "studio");
            assert_eq!(ttl, Duration::from_secs(3_600));
        }
        other => panic!("not coturn: {other:?}"),
    }
    let with = |extra: &str| {
        error(
            &format!("[turn]\nprovider = \"coturn\"\nsecret = \"s\"\n{extra}\n"),
            &[],
            &[],
        )
    };
    assert!(
        with("urls = [\"turn:a\"]\nttl_secs = 10")
            .contains("turn.ttl_secs: '10' is out of range (expected 60..=604800)")
    );
    assert!(
        with("urls = [\"stun:a\"]").contains("coturn credentials go with turn: or turns: URLs")
    );
    assert!(
        with("urls = [\"http://a\"]")
            .contains("'http://a' is not a stun:, stuns:, turn: or turns: URL")
    );
    assert!(with("urls = [\"turn:a\"]\nusername = \"a b\"").contains("turn.username"));
}

#[test]
fn cloudflare_provider() {
    let base = "[turn]\nprovider = \"cloudflare\"\nkey_id = \"abc123\"\n";
    let t = turn(
        &format!("{base}api_token_file = \"cf.token\"\n"),
        &[("cf.token", "tok\n")],
        &[],
    );
    assert_eq!(
        t.service.provider,
        Provider::Cloudflare {
            key_id: "abc123".into(),
            api_token: Secret::new("tok"),
            api_base: CLOUDFLARE_API_BASE.into(),
            ttl: Duration::from_secs(86_400),
        }
    );
    let t = turn(
        &format!(
            "{base}api_base = \"http://127.0.0.1:9999/\"\nttl_secs = 172800\napi_timeout_secs = 3\n"
        ),
        &[],
        &[(ENV_API_TOKEN, "envtok")],
    );
    match t.service.provider {
        Provider::Cloudflare {
            api_token,
            api_base,
            ttl,
            ..
        } => {
            assert_eq!(api_token.expose(), "envtok");
            assert_eq!(api_base, "http://127.0.0.1:9999");
            assert_eq!(ttl, Duration::from_secs(172_800));
        }
        other => panic!("not cloudflare: {other:?}"),
    }
    assert_eq!(t.service.api_timeout, Duration::from_secs(3));

    assert!(error(base, &[], &[]).contains("needs the TURN key's API token"));
    assert!(
        error(
            "[turn]\nprovider = \"cloudflare\"\napi_token = \"t\"\n",
            &[],
            &[]
        )
        .contains("turn.key_id: provider = \"cloudflare\" needs key_id")
    );
    assert!(
        error(
            &format!("{base}api_token = \"t\"\nttl_secs = 172801\n"),
            &[],
            &[]
        )
        .contains("expected 60..=172800")
    );
    assert!(
        error(
            &format!("{base}api_token = \"t\"\napi_base = \"ftp://x\"\n"),
            &[],
            &[]
        )
        .contains("turn.api_base: 'ftp://x' is not an http:// or https:// URL")
    );
    assert!(
        error(
            "[turn]\nprovider = \"cloudflare\"\nkey_id = \"a/b\"\napi_token = \"t\"\n",
            &[],
            &[]
        )
        .contains("turn.key_id")
    );
}

#[test]
fn keys_of_another_provider_are_refused() {
    let msg = error(
        "[turn]\nprovider = \"coturn\"\nurls = [\"turn:a\"]\nsecret = \"s\"\nkey_id = \"k\"\n",
        &[],
        &[],
    );
    assert!(
        msg.contains("turn.key_id: is not used with provider = \"coturn\" (only with cloudflare)"),
        "{msg}"
    );
    // A secret set for coturn while the provider is still "none" is caught, not ignored.
    let msg = error("[turn]\nsecret = \"s\"\n", &[], &[]);
    assert!(
        msg.contains("turn.secret: is not used with provider = \"none\""),
        "{msg}"
    );
    let msg = error("[turn]\nprovider = \"twilio\"\n", &[], &[]);
    assert!(msg.contains("unknown provider 'twilio'"), "{msg}");
}

#[test]
fn endpoint_protection() {
    let t = turn(
        r#"[turn]
allowed_origins = ["https://recorder.example.org", "*"]
token = "endpoint-token"
rate_limit_per_minute = 0
rate_limit_burst = 3
trusted_proxies = ["10.0.0.1"]
link_headers = false
"#,
        &[],
        &[],
    );
    assert_eq!(t.allowed_origins, vec!["https://recorder.example.org", "*"]);
    assert_eq!(t.token, Some(Secret::new("endpoint-token")));
    assert_eq!((t.rate_limit_per_minute, t.rate_limit_burst), (0, 3));
    assert_eq!(
        t.trusted_proxies,
        vec!["10.0.0.1".parse::<IpAddr>().unwrap()]
    );
    assert!(!t.link_headers);

    // The token from a file, and from the environment even without a file.
    let t = turn("[turn]\ntoken_file = \"t\"\n", &[("t", "fromfile\n")], &[]);
    assert_eq!(t.token, Some(Secret::new("fromfile")));
    let env: HashMap<String, String> = [(ENV_TOKEN.to_owned(), "fromenv".to_owned())].into();
    let c = Config::from_args_env_file(vec!["r58".to_owned()], &env).expect("config");
    assert_eq!(c.turn.token, Some(Secret::new("fromenv")));

    assert!(
        error("[turn]\nallowed_origins = [\"recorder\"]\n", &[], &[])
            .contains("turn.allowed_origins: invalid origin")
    );
    assert!(
        error("[turn]\nrate_limit_burst = 0\n", &[], &[])
            .contains("turn.rate_limit_burst: '0' is out of range")
    );
    assert!(
        error("[turn]\ntrusted_proxies = [\"proxy\"]\n", &[], &[])
            .contains("turn.trusted_proxies: invalid IP address")
    );
    assert!(
        error("[turn]\ntoken = \"has space\"\n", &[], &[])
            .contains("turn.token: must be non-empty")
    );
}

#[test]
fn unknown_and_mistyped_keys_are_named() {
    let msg = error("[turn]\nsecrte = \"s\"\n", &[], &[]);
    assert!(
        msg.contains("unknown key 'turn.secrte' (expected one of provider, stun_urls"),
        "{msg}"
    );
    let msg = error("[turn]\nttl_secs = \"long\"\n", &[], &[]);
    assert!(msg.starts_with("turn.ttl_secs: "), "{msg}");
    let msg = error("turn = 5\n", &[], &[]);
    assert!(msg.starts_with("turn: "), "{msg}");
}

#[test]
fn secrets_never_appear_in_debug_or_errors() {
    let t = turn(
        "[turn]\nprovider = \"coturn\"\nurls = [\"turn:a\"]\nsecret = \"s3cr3t-value\"\ntoken = \"t0ken-value\"\n",
        &[],
        &[],
    );
    let text = format!("{t:?}");
    assert!(
        !text.contains("s3cr3t-value") && !text.contains("t0ken-value"),
        "{text}"
    );
    let msg = error(
        "[turn]\nprovider = \"coturn\"\nurls = [\"turn:a\"]\nsecret = \"s3cr3t value\"\n",
        &[],
        &[],
    );
    assert!(!msg.contains("s3cr3t"), "{msg}");
}
