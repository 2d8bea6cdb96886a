//! Starting the servers under test: pinned to a core with `taskset`, optionally in a network
//! namespace of their own, on free ports, killed when dropped.

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("{what} did not come up within {secs} s (exit status: {status:?})")]
    NotReady {
        what: String,
        secs: u64,
        status: Option<std::process::ExitStatus>,
    },
    #[error("no free port: {0}")]
    Port(std::io::Error),
}

pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub http: SocketAddr,
    pub udp: SocketAddr,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on now (TCP and UDP alike).
pub fn free_port() -> Result<u16, ServerError> {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").map_err(ServerError::Port)?;
        let port = udp.local_addr().map_err(ServerError::Port)?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
}

/// Where a server under test runs: its cores, its network namespace, the address it serves on.
#[derive(Debug, Clone)]
pub struct Placement {
    /// A `taskset -c` list (`1`, `0,1`); none to leave the server unpinned.
    pub cpus: Option<String>,
    /// A network namespace to start the server in (`ip netns exec`), so that delivering what
    /// it sends to the generator's sockets runs in the generator's namespace (and, with RPS on
    /// the generator's side of the veth, on the generator's core) as it would on another host.
    pub netns: Option<String>,
    pub ip: IpAddr,
}

/// `program` as `placement` says: in its namespace (`ip netns exec`, which execs, so the pid is
/// the server's), under `taskset -c cpus`. It inherits the generator's priority:
/// `scripts/bench.sh` runs the generator at nice -10 so that, on a machine shared with other
/// work, neither loses its core to parallel builds.
pub fn pinned(placement: &Placement, program: &Path) -> Command {
    let mut words: Vec<std::ffi::OsString> = Vec::new();
    if let Some(ns) = &placement.netns {
        words.extend(["ip", "netns", "exec", ns.as_str()].map(Into::into));
    }
    if let Some(cpus) = &placement.cpus {
        words.extend(["taskset".into(), "-c".into(), cpus.into()]);
    }
    words.push(program.into());
    let mut c = Command::new(&words[0]);
    c.args(&words[1..]);
    c
}

/// Starts r58 with no test cameras, room for `sessions`, and waits for `/healthz`. Its
/// configuration file (written to `dir`) lifts the per-address session limit: every
/// subscriber of the generator comes from one address.
pub fn start_r58(
    bin: &Path,
    placement: &Placement,
    sessions: usize,
    dir: &Path,
) -> Result<ServerProcess, ServerError> {
    let config = dir.join("r58.toml");
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&config, "[limits]\nsessions_per_ip = 0\n"))
        .map_err(|source| ServerError::Spawn {
            what: format!("r58 config {}", config.display()),
            source,
        })?;
    let http = SocketAddr::new(placement.ip, free_port()?);
    let udp = SocketAddr::new(placement.ip, free_port()?);
    let mut cmd = pinned(placement, bin);
    cmd.arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg(http.to_string())
        .arg("--webrtc-udp")
        .arg(udp.to_string())
        .arg("--test-cameras")
        .arg("0")
        .arg("--max-sessions")
        .arg(sessions.to_string())
        .arg("--log-level")
        .arg("warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let child = cmd.spawn().map_err(|source| ServerError::Spawn {
        what: bin.display().to_string(),
        source,
    })?;
    let mut server = ServerProcess {
        pid: child.id(),
        child,
        http,
        udp,
    };
    wait_for_http(&mut server, "r58", "/healthz")?;
    Ok(server)
}

/// Waits until `path` answers 2xx.
pub fn wait_for_http(
    server: &mut ServerProcess,
    what: &str,
    path: &str,
) -> Result<(), ServerError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(ServerError::NotReady {
                what: what.into(),
                secs: 20,
                status: Some(status),
            });
        }
        if TcpStream::connect_timeout(&server.http, Duration::from_millis(200)).is_ok()
            && crate::http::request(server.http, "GET", path, None, "").is_ok()
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(ServerError::NotReady {
        what: what.into(),
        secs: 20,
        status: None,
    })
}

impl ServerProcess {
    pub fn new(child: Child, http: SocketAddr, udp: SocketAddr) -> Self {
        Self {
            pid: child.id(),
            child,
            http,
            udp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_builds_the_command_line() {
        let line = |p: &Placement| {
            let c = pinned(p, Path::new("/bin/r58"));
            std::iter::once(c.get_program())
                .chain(c.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let ip = IpAddr::from([10, 58, 0, 1]);
        let both = Placement {
            cpus: Some("1".into()),
            netns: Some("srv".into()),
            ip,
        };
        assert_eq!(line(&both), "ip netns exec srv taskset -c 1 /bin/r58");
        let none = Placement {
            cpus: None,
            netns: None,
            ip,
        };
        assert_eq!(line(&none), "/bin/r58");
    }
}
