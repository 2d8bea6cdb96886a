//! The real `r58` binary on loopback, and a raw HTTP/1.1 client that can send anything.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CHROME_WHIP: &str = include_str!("../../sfu/testdata/sdp/chrome_whip.sdp");
pub const CHROME_WHEP: &str = include_str!("../../sfu/testdata/sdp/chrome_whep.sdp");
/// The client ICE ufrag of the Chromium WHIP fixture.
pub const WHIP_CLIENT_UFRAG: &str = "Xp7q";

/// One running server process, killed on drop.
pub struct Server {
    child: Child,
    pub http: SocketAddr,
    pub udp: SocketAddr,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

/// A small, quick test camera (`cam0`) so WHEP and HLS have a live stream.
pub const ONE_SMALL_CAMERA: &str =
    "[test_cameras]\ncount = 1\nwidth = 160\nheight = 96\nfps = 10\nbitrate = 100000\n";

impl Server {
    /// Starts `r58` with `config` as its TOML file (plus `args`), on free loopback ports.
    pub fn start(config: &str, args: &[&str]) -> Server {
        Self::start_with_env(config, args, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_with_env(config: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("r58.toml");
        std::fs::write(&file, config).expect("write config");
        let mut command = Command::new(env!("CARGO_BIN_EXE_r58"));
        command
            .arg("--config")
            .arg(&file)
            .args(["--listen", "127.0.0.1:0", "--webrtc-udp", "127.0.0.1:0"])
            .args(args)
            .env_remove("R58_TEST_CAMERAS")
            .env("NO_COLOR", "1")
            .env("R58_LOG_LEVEL", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !config.contains("[test_cameras]") && !args.contains(&"--test-cameras") {
            command.args(["--test-cameras", "0"]);
        }
        let mut child = command.spawn().expect("spawn r58");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let log = log.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let line = strip_ansi(&line);
                    if line.contains("r58 serving") {
                        let _ = tx.send(line.clone());
                    }
                    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let log = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
                panic!("r58 did not start:\n{log}");
            }
        };
        let field = |name: &str| -> SocketAddr {
            let start = line.find(&format!("{name}=")).expect("field") + name.len() + 1;
            line[start..]
                .split_whitespace()
                .next()
                .expect("value")
                .parse()
                .expect("socket address")
        };
        Server {
            http: field("http"),
            udp: field("udp"),
            child,
            log,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the process is still running (a panic in a task would not stop it, but a crash
    /// or abort would).
    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("r58 exited with {status}:\n{}", self.log());
        }
        assert!(
            !self.log().contains("panicked"),
            "r58 panicked:\n{}",
            self.log()
        );
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        request(self.http, method, path, headers, body)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], b"")
    }

    pub fn post_sdp(&self, path: &str, sdp: &str) -> Resp {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/sdp")],
            sdp.as_bytes(),
        )
    }

    /// The server still does real work: health, a WHIP session created and deleted.
    #[track_caller]
    pub fn assert_serves(&mut self) {
        self.assert_running();
        let health = self.get("/healthz");
        assert_eq!(health.status, 200, "healthz after abuse: {health:?}");
        let created = self.post_sdp("/whip/still-serving", CHROME_WHIP);
        assert_eq!(created.status, 201, "WHIP after abuse: {created:?}");
        let location = created.header("location").expect("Location").to_owned();
        let deleted = self.request("DELETE", &location, &[], b"");
        assert_eq!(deleted.status, 200, "DELETE after abuse: {deleted:?}");
    }

    /// Waits (up to 10 s) until `name` is live in /api/streams.
    #[track_caller]
    pub fn wait_for_stream(&self, name: &str) {
        let needle = format!("\"name\":\"{name}\"");
        for _ in 0..100 {
            let streams = self.get("/api/streams").text();
            if streams.contains(&needle) && streams.contains("\"online\":true") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("stream {name} never came up:\n{}", self.log());
    }

    /// One sample of a metric (name with its labels, exactly as exposed), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        let text = self.get("/metrics").text();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                (name == series).then(|| value.parse().ok())?
            })
            .unwrap_or(0.0)
    }

    /// The engine's table sizes and open sessions, as /metrics shows them.
    pub fn engine_tables(&self) -> Vec<(String, f64)> {
        let text = self.get("/metrics").text();
        text.lines()
            .filter(|l| {
                l.starts_with("r58_engine_table_entries{") || l.starts_with("r58_sessions ")
            })
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect()
    }

    /// The process's CPU time so far (user + system), from /proc.
    pub fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the name.
        let ticks: u64 = fields
            .get(11..13)
            .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
            .unwrap_or(0);
        Duration::from_millis(ticks * 10)
    }

    /// Resident memory (kB) and open file descriptors of the process.
    pub fn rss_kb_and_fds(&self) -> (u64, usize) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0);
        (rss, fds)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A parsed response.
#[derive(Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resp")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field(
                "body",
                &String::from_utf8_lossy(&self.body[..self.body.len().min(300)]),
            )
            .finish()
    }
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A refusal carries a one-line reason.
    #[track_caller]
    pub fn assert_refused(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "{self:?}");
        let text = self.text();
        let reason = text.trim_end_matches('\n');
        assert!(
            !reason.trim().is_empty() && !reason.contains('\n'),
            "not a one-line reason: {self:?}"
        );
        self
    }
}

/// Sends one request with `Connection: close` and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PATCH") {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    send_raw(addr, &bytes).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Writes `bytes` as they are and parses what comes back before the server closes.
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Resp> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(bytes)?;
    read_response(&mut stream)
}

/// Reads until the server closes the connection (every request here says `Connection: close`,
/// and the server closes after an error it answered itself).
pub fn read_response(stream: &mut TcpStream) -> std::io::Result<Resp> {
    let mut data = Vec::new();
    let started = Instant::now();
    let mut buf = [0u8; 16384];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            // A reset after the response was written still leaves the response.
            Err(e) if !data.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    parse_response(&data)
        .ok_or_else(|| std::io::Error::other(format!("no HTTP response in {} bytes", data.len())))
}

fn parse_response(data: &[u8]) -> Option<Resp> {
    let end = data.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&data[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = data[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Some(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// The value of `a=NAME:` in an SDP.
pub fn sdp_attr<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix(&format!("a={name}:")))
}
