//! Sign-in against the real binary: users made with `r58 user add` (the password on standard
//! input), a sign-in through a tunnel stand-in (forwarding headers) over a real socket, the
//! session cookie opening the stream list, and `r58 user del` ending that session while the
//! server runs. The attacks themselves are tried in-process in tests/access_remote.rs.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::Server;

/// `r58 user ARGS --file FILE`, `stdin` as standard input; status and output.
fn user_cmd(file: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_r58"))
        .arg("user")
        .args(args)
        .arg("--file")
        .arg(file)
        .env_remove("R58_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn r58 user");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write the password");
    let out = child.wait_with_output().expect("r58 user");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const TUNNEL: (&str, &str) = ("X-Forwarded-For", "198.51.100.23");

#[test]
fn users_made_on_the_command_line_sign_in_and_removal_ends_their_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    let (ok, out) = user_cmd(
        &users,
        &["add", "opa", "--role", "operator"],
        "s3cret pass\n",
    );
    assert!(ok, "{out}");
    let (ok, out) = user_cmd(&users, &["add", "opa"], "another pass\n");
    assert!(!ok && out.contains("already exists"), "{out}");
    let (ok, out) = user_cmd(&users, &["add", "shorty"], "short\n");
    assert!(!ok && out.contains("8 to 1024"), "{out}");
    let (ok, out) = user_cmd(&users, &["add", "vic", "--role", "boss"], "whatever12\n");
    assert!(!ok && out.contains("not a role"), "{out}");
    let (ok, out) = user_cmd(&users, &["add", "vic"], "viewer pass\n");
    assert!(ok, "{out}");
    let (ok, out) = user_cmd(&users, &["list"], "");
    assert!(
        ok && out.contains("opa\toperator") && out.contains("vic\tviewer"),
        "{out}"
    );
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(
        text.contains("$argon2id$") && !text.contains("s3cret"),
        "{text}"
    );

    let config = format!("[access]\nusers_file = \"{}\"\n", users.display());
    let mut server = Server::start(&config, &[]);
    let sign_in = |user: &str, password: &str| {
        let body = serde_json::json!({ "user": user, "password": password }).to_string();
        server.request(
            "POST",
            "/api/login",
            &[("Content-Type", "application/json"), TUNNEL],
            body.as_bytes(),
        )
    };
    sign_in("opa", "not it at all").assert_refused(401);
    let r = sign_in("opa", "s3cret pass");
    assert_eq!(r.status, 200, "{r:?}");
    let set_cookie = r.header("set-cookie").expect("a session cookie").to_owned();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let streams = |cookie: &str| {
        server
            .request("GET", "/api/streams", &[("Cookie", cookie), TUNNEL], b"")
            .status
    };
    assert_eq!(streams(""), 401);
    assert_eq!(streams(&cookie), 200);
    // A new password for another user does not touch this session; removing its user ends it.
    let (ok, out) = user_cmd(&users, &["passwd", "vic"], "new viewer pass\n");
    assert!(ok, "{out}");
    assert_eq!(streams(&cookie), 200);
    let (ok, out) = user_cmd(&users, &["del", "opa"], "");
    assert!(ok, "{out}");
    let start = Instant::now();
    while streams(&cookie) == 200 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the removed user's session still works"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(streams(&cookie), 401);
    sign_in("opa", "s3cret pass").assert_refused(401);
    let log = server.log();
    assert!(log.contains("signed in"), "{log}");
    for secret in ["s3cret pass", &cookie["r58_session=".len()..]] {
        assert!(!log.contains(secret), "the log shows a secret:\n{log}");
    }
    server.assert_running();
}
