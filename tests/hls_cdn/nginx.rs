//! Debian's nginx as a caching proxy in front of r58 (tests/hls_cdn/nginx.conf.in), on a free
//! loopback port, with its prefix, cache and logs in a temp dir; stopped on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = include_str!("nginx.conf.in");
const BINARY: &str = "/usr/sbin/nginx";

pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// Whether Debian's nginx is installed (`apt-get install nginx`).
pub fn installed() -> bool {
    Command::new(BINARY)
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl Nginx {
    /// Starts nginx caching for `origin`; waits until it accepts connections.
    pub fn start(origin: SocketAddr) -> Nginx {
        let dir = tempfile::tempdir().expect("temp dir");
        // The port is free now; nginx binds it a moment later (a race with other tests is
        // unlikely, and shows as a clear "did not start" with nginx's own error log).
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = CONFIG
            .replace("@DIR@", &dir.path().display().to_string())
            .replace("@LISTEN@", &addr.to_string())
            .replace("@ORIGIN@", &origin.to_string());
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, config).expect("write nginx.conf");
        let child = Command::new(BINARY)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&file)
            // Before it reads the config nginx would open /var/log/nginx/error.log.
            .args(["-e", "stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("stderr.log"))
            .spawn()
            .expect("spawn nginx");
        let mut nginx = Nginx { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited with {status}:\n{}", nginx.error_log());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not start:\n{}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    /// What nginx said on stderr (before it read its config) and in its error log.
    pub fn error_log(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.path().join(f)).ok())
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// A process's CPU time (user + system) from /proc/{pid}/stat, in clock ticks of 10 ms.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
