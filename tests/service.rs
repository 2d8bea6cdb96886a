//! The binary as a systemd service sees it, without systemd: `r58 --version`, `r58
//! check-config`, and the sd_notify protocol on a `NOTIFY_SOCKET` the test listens on —
//! READY=1 once the sockets are bound, WATCHDOG=1 pings that stop while the media thread is
//! stopped (and only it: the HTTP runtime keeps answering), and STOPPING=1 with a clean exit on
//! SIGTERM.
//!
//! The media thread (`r58-media`) is stopped alone with ptrace (PTRACE_SEIZE +
//! PTRACE_INTERRUPT on its thread id), not with SIGSTOP, which would stop every thread of the
//! process and so stop the pings whatever fed them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::ptrace;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

fn r58() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_r58"));
    cmd.env_remove("R58_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID");
    cmd
}

#[test]
fn version_names_the_commit_and_the_target() {
    let out = r58().arg("--version").output().expect("run r58 --version");
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        line.starts_with(&format!("r58 {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    // Built from this checkout: the commit is HEAD's (when git can say).
    if let Ok(head) = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        && head.status.success()
    {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        assert!(
            line.contains(&format!("(commit {head}, ")),
            "{line} vs {head}"
        );
    }
    assert!(line.trim_end().ends_with("-linux-gnu)"), "{line}");
}

#[test]
fn check_config_accepts_a_good_file_and_refuses_a_bad_one_like_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:8000\"\n[limits]\nsessions_per_ip = 5\n",
    )
    .expect("write");
    let out = r58()
        .args(["check-config", good.to_str().expect("utf-8 path")])
        .output()
        .expect("run check-config");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("valid") && stdout.contains("127.0.0.1:8000"),
        "{stdout}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "listen = \"127.0.0.1:8000\"\n[limits]\nsessions_per_ipp = 5\n",
    )
    .expect("write");
    let checked = r58()
        .args(["check-config", bad.to_str().expect("utf-8 path")])
        .output()
        .expect("run check-config");
    assert_eq!(checked.status.code(), Some(2), "{checked:?}");
    let started = r58()
        .args(["--config", bad.to_str().expect("utf-8 path")])
        .output()
        .expect("run r58 --config");
    assert_eq!(started.status.code(), Some(2), "{started:?}");
    let line = String::from_utf8_lossy(&checked.stderr).into_owned();
    assert_eq!(line, String::from_utf8_lossy(&started.stderr), "same line");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("unknown key 'limits.sessions_per_ipp'") || line.contains("sessions_per_ipp"),
        "{line}"
    );

    // A TLS certificate that cannot be read is found too (the server reads it at start).
    let tls = dir.path().join("tls.toml");
    std::fs::write(
        &tls,
        "[tls]\ncert = \"missing.crt\"\nkey = \"missing.key\"\n",
    )
    .expect("write");
    let out = r58()
        .args(["check-config", tls.to_str().expect("utf-8 path")])
        .output()
        .expect("run check-config");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.crt"),
        "{out:?}"
    );
}

/// The test's end of `NOTIFY_SOCKET`.
struct NotifyListener {
    socket: UnixDatagram,
}

impl NotifyListener {
    fn bind(path: &Path) -> Self {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        Self { socket }
    }

    /// The next datagram within `timeout`, as text.
    fn next(&self, timeout: Duration) -> Option<String> {
        self.socket
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// Waits up to `timeout` for a datagram with the line `wanted`; returns it.
    fn wait_for(&self, wanted: &str, timeout: Duration) -> Option<String> {
        let end = Instant::now() + timeout;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let msg = self.next(left)?;
            if msg.lines().any(|l| l == wanted) {
                return Some(msg);
            }
        }
        None
    }

    /// How many WATCHDOG=1 arrive within `span`.
    fn count_pings(&self, span: Duration) -> usize {
        let end = Instant::now() + span;
        let mut pings = 0;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(msg) if msg.lines().any(|l| l == "WATCHDOG=1") => pings += 1,
                Some(_) => {}
                None => break,
            }
        }
        pings
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The thread id of the process's thread named `name`.
fn thread_named(pid: u32, name: &str) -> Option<Pid> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .filter_map(Result::ok)
        .find(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name)
        })
        .and_then(|task| task.file_name().to_str()?.parse().ok())
        .map(Pid::from_raw)
}

fn healthz(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n")
}

#[test]
fn notify_ready_watchdog_fed_by_the_media_thread_and_graceful_stop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let notify_path = dir.path().join("notify.sock");
    let listener = NotifyListener::bind(&notify_path);
    // 2 s: a look at the heartbeat every 0.5 s. The media thread turns at least once a second,
    // and many times a second with a test camera publishing.
    let child = r58()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--webrtc-udp",
            "127.0.0.1:0",
            "--rtsp-listen",
            "127.0.0.1:0",
            "--test-cameras",
            "1",
            "--log-level",
            "info",
        ])
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "2000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start r58");
    let pid = child.id();
    let mut server = Server(child);

    let ready = listener
        .wait_for("READY=1", Duration::from_secs(60))
        .expect("READY=1 within 60 s");
    let status = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=serving HTTP on "))
        .expect("a STATUS line with the HTTP address")
        .to_owned();
    assert!(healthz(&status), "READY=1 means HTTP answers: {status}");

    let before = listener.count_pings(Duration::from_secs(3));
    assert!(before >= 3, "{before} watchdog pings in 3 s while running");

    // Stop the media thread alone.
    let media = thread_named(pid, "r58-media").expect("the r58-media thread");
    ptrace::seize(media, ptrace::Options::empty()).expect("PTRACE_SEIZE the media thread");
    ptrace::interrupt(media).expect("PTRACE_INTERRUPT");
    waitpid(media, Some(WaitPidFlag::__WALL)).expect("the media thread stops");
    // At most one look at the heartbeat may still see the last turns before the stop.
    let _ = listener.count_pings(Duration::from_millis(700));
    let during = listener.count_pings(Duration::from_secs(3));
    let http_alive = healthz(&status);
    ptrace::detach(media, None).expect("PTRACE_DETACH: the media thread runs again");
    assert_eq!(
        during, 0,
        "no watchdog ping while the media thread is stopped"
    );
    assert!(http_alive, "the HTTP runtime kept answering meanwhile");

    let after = listener.count_pings(Duration::from_secs(3));
    assert!(
        after >= 3,
        "{after} watchdog pings in 3 s once it runs again"
    );

    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("SIGTERM");
    listener
        .wait_for("STOPPING=1", Duration::from_secs(10))
        .expect("STOPPING=1 after SIGTERM");
    let end = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = server.0.try_wait().expect("wait") {
            break status.code();
        }
        assert!(
            Instant::now() < end,
            "r58 did not exit within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0), "a graceful stop exits 0");
}

/// Every `.mp4` under `dir`.
fn recordings_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "mp4") {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn sigterm_while_recording_writes_the_last_fragment_and_exits_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = dir.path().join("rec");
    let config = dir.path().join("r58.toml");
    std::fs::write(
        &config,
        format!(
            "[test_cameras]\ncount = 1\nwidth = 320\nheight = 240\n\n[recording]\ndir = {:?}\n\
             streams = [\"cam0\"]\nautostart = true\nmin_free_bytes = 0\nmin_free_percent = 0.0\n",
            rec.to_str().expect("utf-8 path")
        ),
    )
    .expect("write config");
    let log = dir.path().join("r58.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let child = r58()
        .args(["--config", config.to_str().expect("utf-8 path")])
        .args(["--listen", "127.0.0.1:0", "--webrtc-udp", "127.0.0.1:0"])
        .args(["--rtsp-listen", "127.0.0.1:0", "--log-level", "info"])
        .env("NO_COLOR", "1")
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .spawn()
        .expect("start r58");
    let pid = child.id();
    let mut server = Server(child);

    // Record until a file holds two complete fragments (a fragment per keyframe: 1 s).
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let complete = recordings_under(&rec).iter().any(|f| {
            let mut file = std::fs::File::open(f).expect("open");
            let len = file.metadata().expect("len").len();
            sfu::record::scan::scan(&mut file, len).is_ok_and(|r| r.fragments >= 2)
        });
        if complete {
            break;
        }
        assert!(
            Instant::now() < end,
            "no recording with two fragments in 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Half a fragment more: the open fragment is what a graceful stop must not lose.
    std::thread::sleep(Duration::from_millis(500));
    let stopped_at = std::time::SystemTime::now();
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("SIGTERM");
    let end = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = server.0.try_wait().expect("wait") {
            break status.code();
        }
        assert!(
            Instant::now() < end,
            "r58 did not exit within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&log).expect("log");
    assert_eq!(code, Some(0), "a graceful stop exits 0\n{log}");
    assert!(
        log.contains("recordings stopped: last fragments written"),
        "{log}"
    );

    let files = recordings_under(&rec);
    assert_eq!(files.len(), 1, "{files:?}");
    let mut file = std::fs::File::open(&files[0]).expect("open");
    let len = file.metadata().expect("len").len();
    let report = sfu::record::scan::scan(&mut file, len).expect("scan");
    println!("{report:?}");
    assert_eq!(
        report.repair(),
        sfu::record::scan::Repair::Nothing,
        "complete to its last byte: {report:?}"
    );
    // The media reaches the stop: the fragment that was open then was written too (a crash
    // loses it: up to a keyframe interval, 1 s here).
    let first = report.first_wall.expect("a wall clock per fragment");
    let recorded = stopped_at
        .duration_since(first)
        .expect("after the first fragment");
    let media = Duration::from_millis(report.duration_ms);
    assert!(
        media + Duration::from_millis(400) >= recorded,
        "media {media:?} for {recorded:?} between the first fragment and SIGTERM"
    );
}
