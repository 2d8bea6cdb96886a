//! Debian's Varnish as the CDN edge in front of r58 (tests/hls_cdn/varnish.vcl.in): `varnishd`
//! in the foreground on a free loopback port, its working dir (`-n`) in a temp dir, no system
//! service; stopped on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VCL: &str = include_str!("varnish.vcl.in");
const BINARY: &str = "/usr/sbin/varnishd";

pub struct Varnish {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// Whether Debian's Varnish is installed (`apt-get install varnish`).
pub fn installed() -> bool {
    Command::new(BINARY)
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Varnish {
    /// Starts Varnish caching for `origin`; waits until it accepts connections.
    pub fn start(origin: SocketAddr) -> Varnish {
        let dir = tempfile::tempdir().expect("temp dir");
        // Free now, bound by varnishd a moment later (as for nginx: a race with other tests is
        // unlikely and shows as a clear "did not start" with varnishd's own words).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let vcl = VCL
            .replace("@HOST@", &origin.ip().to_string())
            .replace("@PORT@", &origin.port().to_string());
        let file = dir.path().join("r58.vcl");
        std::fs::write(&file, vcl).expect("write r58.vcl");
        let log = std::fs::File::create(dir.path().join("varnishd.log")).expect("varnishd.log");
        let child = Command::new(BINARY)
            // Foreground, no privilege separation (the temp dir is the test user's), no
            // management port; nothing stale beyond what r58's Cache-Control allows.
            .args(["-F", "-j", "none", "-T", "none", "-s", "malloc,64m"])
            .args(["-p", "default_grace=0"])
            .arg("-n")
            .arg(dir.path().join("varnish"))
            .arg("-a")
            .arg(addr.to_string())
            .arg("-f")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("varnishd.log"))
            .stderr(log)
            .spawn()
            .expect("spawn varnishd");
        let mut varnish = Varnish { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = varnish.child.try_wait() {
                panic!("varnishd exited with {status}:\n{}", varnish.log());
            }
            assert!(
                Instant::now() < deadline,
                "varnishd did not start:\n{}",
                varnish.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        varnish
    }

    /// What varnishd said (its manager and the cache process report on stdout/stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("varnishd.log")).unwrap_or_default()
    }

    /// CPU time of the manager and its cache process (which does the serving).
    pub fn cpu_time(&self) -> Duration {
        let pid = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
            .map(crate::nginx::cpu_time)
            .sum::<Duration>()
            + crate::nginx::cpu_time(pid)
    }
}

impl Drop for Varnish {
    fn drop(&mut self) {
        // SIGTERM makes the manager stop its cache process first (after a SIGKILL that one
        // would linger until it notices the closed pipe).
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
