//! Starting the servers under test: pinned to a core with `taskset`, on free loopback ports,
//! killed when dropped.

use std::net::{SocketAddr, TcpStream, UdpSocket};
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

/// `program`, under `taskset -c core` when a core is given. It inherits the generator's
/// priority: `scripts/bench.sh` runs the generator at nice -10 so that, on a machine shared
/// with other work, neither loses its core to parallel builds.
pub fn pinned(core: Option<usize>, program: &Path) -> Command {
    match core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Starts r58 with no test cameras, room for `sessions`, and waits for `/healthz`.
pub fn start_r58(
    bin: &Path,
    core: Option<usize>,
    sessions: usize,
) -> Result<ServerProcess, ServerError> {
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let udp = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut cmd = pinned(core, bin);
    cmd.arg("--listen")
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
