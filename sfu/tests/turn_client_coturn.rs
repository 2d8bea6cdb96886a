//! r58's TURN client against a real coturn (`turnserver`, Debian's coturn package) on
//! loopback: allocate over UDP and over TCP, permission and channel for a second local UDP
//! socket (the "peer"), bytes both ways as Send/Data indications and as ChannelData; refreshes
//! (the client's clock is moved forward, coturn answers for real); re-allocation after coturn
//! restarts; refused credentials.
//!
//! The test owns coturn: free ports, its own relay port range, the TURN REST shared secret
//! scheme (`--use-auth-secret`) that r58's `[turn]` coturn provider uses. All traffic stays on
//! 127.0.0.1. Without `turnserver` the tests print SKIPPED and pass, unless CI=true.
//! `TURNSERVER=/path/to/turnserver` picks the binary.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use sfu::turn::Secret;
use sfu::turn::client::{
    ClientConfig, Event, FailureKind, Inbound, StreamFramer, Transport, TurnClient,
};
use sfu::turn::rest;

const LOOPBACK: std::net::Ipv4Addr = std::net::Ipv4Addr::LOCALHOST;
/// Longest wait for any one step against coturn.
const STEP: Duration = Duration::from_secs(10);

/// `$TURNSERVER` if set (a path, e.g. to try the missing case), else `turnserver` on PATH.
fn turnserver() -> Option<PathBuf> {
    if let Some(exe) = std::env::var_os("TURNSERVER") {
        return Some(PathBuf::from(exe)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("turnserver"))
        .find(|p| p.is_file())
}

/// `turnserver`, or `None` after printing SKIPPED (a failure when CI=true).
fn require_turnserver(test: &str) -> Option<PathBuf> {
    let found = turnserver();
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "turnserver not found: install Debian's coturn package"
        );
        println!("SKIPPED {test}: turnserver not found (apt-get install coturn)");
    }
    found
}

/// A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both).
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((LOOPBACK, port)).is_ok() {
            return port;
        }
    }
}

struct Coturn {
    exe: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    relay_base: u16,
    secret: String,
    child: Option<Child>,
}

impl Coturn {
    fn start(exe: PathBuf) -> Self {
        let mut coturn = Coturn {
            exe,
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            // A relay range of our own, so parallel tests and other coturns do not collide.
            relay_base: 50_000 + (rand::random::<u16>() % 300) * 40,
            secret: format!("{:032x}", rand::random::<u128>()),
            child: None,
        };
        coturn.launch();
        coturn
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("turnserver.log")).unwrap_or_default()
    }

    fn launch(&mut self) {
        let dir: &Path = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("turnserver.log"))
            .unwrap();
        let child = Command::new(&self.exe)
            .args([
                "-n".to_owned(),
                "--listening-ip=127.0.0.1".to_owned(),
                format!("--listening-port={}", self.port),
                "--relay-ip=127.0.0.1".to_owned(),
                format!("--min-port={}", self.relay_base),
                format!("--max-port={}", self.relay_base + 39),
                "--use-auth-secret".to_owned(),
                format!("--static-auth-secret={}", self.secret),
                "--realm=r58.test".to_owned(),
                "--no-tls".to_owned(),
                "--no-dtls".to_owned(),
                "--no-cli".to_owned(),
                // Only loopback exists here: let the relay reach peers on 127.0.0.1.
                "--allow-loopback-peers".to_owned(),
                format!("--userdb={}", dir.join("turndb").display()),
                format!("--pidfile={}", dir.join("turnserver.pid").display()),
                "--log-file=stdout".to_owned(),
                "--simple-log".to_owned(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start turnserver");
        self.child = Some(child);
        let deadline = Instant::now() + STEP;
        // Ready when it accepts TCP; its UDP listener opens in the same start-up step.
        while TcpStream::connect((LOOPBACK, self.port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("turnserver exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "turnserver did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn server(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    fn config(&self, transport: Transport) -> ClientConfig {
        let secret = Secret::new(self.secret.clone());
        let cred = rest::sign(&secret, "r58", SystemTime::now(), Duration::from_secs(3600));
        ClientConfig::new(
            self.server(),
            transport,
            cred.username,
            Secret::new(cred.credential),
        )
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The client's connection to coturn.
enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream, StreamFramer),
}

impl Link {
    fn open(transport: Transport, server: SocketAddr) -> Self {
        match transport {
            Transport::Udp => {
                let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap();
                socket.connect(server).unwrap();
                Link::Udp(socket)
            }
            _ => Link::Tcp(TcpStream::connect(server).unwrap(), StreamFramer::default()),
        }
    }

    fn local(&self) -> SocketAddr {
        match self {
            Link::Udp(s) => s.local_addr().unwrap(),
            Link::Tcp(s, _) => s.local_addr().unwrap(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        match self {
            Link::Udp(s) => {
                s.send(bytes).unwrap();
            }
            Link::Tcp(s, _) => s.write_all(bytes).unwrap(),
        }
    }

    /// Waits up to `wait` for input; hands each datagram or frame to `f`.
    fn recv(&mut self, wait: Duration, mut f: impl FnMut(&[u8])) {
        let mut buf = vec![0u8; 65_536];
        let wait = wait.max(Duration::from_millis(1));
        match self {
            Link::Udp(s) => {
                s.set_read_timeout(Some(wait)).unwrap();
                match s.recv(&mut buf) {
                    Ok(n) => f(&buf[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    // An ICMP port unreachable while coturn restarts.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => std::thread::sleep(wait),
                    Err(e) => panic!("recv: {e}"),
                }
            }
            Link::Tcp(s, framer) => {
                s.set_read_timeout(Some(wait)).unwrap();
                match s.read(&mut buf) {
                    Ok(0) => panic!("coturn closed the TCP connection"),
                    Ok(n) => {
                        framer.push(&buf[..n]).unwrap();
                        while let Some(frame) = framer.next_frame().unwrap() {
                            f(frame);
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
    }
}

/// A minimal driver: the client, its link, and a clock that runs `offset` ahead of the real
/// one (moved forward to make refreshes due without waiting minutes).
struct Driver {
    client: TurnClient,
    link: Link,
    offset: Duration,
    events: Vec<Event>,
    data: Vec<(SocketAddr, Vec<u8>, Option<u16>)>,
}

impl Driver {
    fn new(config: ClientConfig) -> Self {
        let link = Link::open(config.transport, config.server);
        let mut client = TurnClient::new(config).unwrap();
        let now = Instant::now();
        client.allocate(now);
        Self {
            client,
            link,
            offset: Duration::ZERO,
            events: Vec::new(),
            data: Vec::new(),
        }
    }

    fn now(&self) -> Instant {
        Instant::now() + self.offset
    }

    fn step(&mut self) {
        while let Some(message) = self.client.poll_transmit() {
            self.link.send(&message);
        }
        let now = self.now();
        let wait = self
            .client
            .poll_timeout()
            .map_or(Duration::from_millis(50), |at| {
                at.saturating_duration_since(now)
            })
            .min(Duration::from_millis(50));
        let (client, data) = (&mut self.client, &mut self.data);
        let offset = self.offset;
        self.link.recv(wait, |input| {
            match client.handle_input(Instant::now() + offset, input) {
                Ok(Inbound::Data {
                    peer,
                    payload,
                    channel,
                }) => data.push((peer, payload.to_vec(), channel)),
                Ok(Inbound::Handled) => {}
                Err(e) => panic!("{e}"),
            }
        });
        self.client.handle_timeout(self.now());
        self.events
            .extend(std::iter::from_fn(|| self.client.poll_event()));
    }

    /// Runs until an event matches `want`; returns it (and forgets the events before it).
    fn until(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(i) = self.events.iter().position(&want) {
                return self.events.drain(..=i).next_back().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {STEP:?}; events: {:?}",
                self.events
            );
            self.step();
        }
    }

    fn send_to(&mut self, peer: SocketAddr, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.client.send_to(peer, payload, &mut out).unwrap();
        self.link.send(&out);
        out
    }

    fn recv_data(&mut self) -> (SocketAddr, Vec<u8>, Option<u16>) {
        let deadline = Instant::now() + STEP;
        while self.data.is_empty() {
            assert!(Instant::now() < deadline, "no relayed data within {STEP:?}");
            self.step();
        }
        self.data.remove(0)
    }
}

fn peer_socket() -> UdpSocket {
    let peer = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    peer.set_read_timeout(Some(STEP)).unwrap();
    peer
}

fn peer_recv(peer: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = peer
        .recv_from(&mut buf)
        .expect("the peer got nothing from the relay");
    (buf[..n].to_vec(), from)
}

/// Allocates and moves data both ways, first as Send/Data indications, then over a channel.
fn relay_both_ways(coturn: &Coturn, transport: Transport) -> Driver {
    let mut d = Driver::new(coturn.config(transport));
    let Event::Allocated {
        relayed, mapped, ..
    } = d.until("Allocated", |e| matches!(e, Event::Allocated { .. }))
    else {
        unreachable!()
    };
    assert_eq!(relayed.ip(), coturn.server().ip());
    let relay_range = coturn.relay_base..=coturn.relay_base + 39;
    assert!(relay_range.contains(&relayed.port()), "{relayed}");
    assert_eq!(
        mapped,
        Some(d.link.local()),
        "coturn sees our socket's address"
    );
    let peer = peer_socket();
    let peer_addr = peer.local_addr().unwrap();

    let now = d.now();
    d.client.create_permission(now, peer_addr.ip()).unwrap();
    d.until("PermissionCreated", |e| {
        matches!(e, Event::PermissionCreated { .. })
    });
    let sent = d.send_to(peer_addr, b"to the peer by Send indication");
    assert_eq!(sent[0] >> 6, 0, "a STUN message");
    assert_eq!(
        peer_recv(&peer),
        (b"to the peer by Send indication".to_vec(), relayed)
    );
    peer.send_to(b"back by Data indication", relayed).unwrap();
    assert_eq!(
        d.recv_data(),
        (peer_addr, b"back by Data indication".to_vec(), None)
    );

    let now = d.now();
    let number = d.client.bind_channel(now, peer_addr).unwrap();
    d.until("ChannelBound", |e| matches!(e, Event::ChannelBound { .. }));
    let sent = d.send_to(peer_addr, b"to the peer over a channel");
    assert_eq!(
        u16::from_be_bytes([sent[0], sent[1]]),
        number,
        "ChannelData"
    );
    // 4 + 26 bytes, padded to 32 over TCP only.
    assert_eq!(sent.len(), if transport.is_stream() { 32 } else { 30 });
    assert_eq!(
        peer_recv(&peer),
        (b"to the peer over a channel".to_vec(), relayed)
    );
    peer.send_to(b"back over channel", relayed).unwrap();
    assert_eq!(
        d.recv_data(),
        (peer_addr, b"back over channel".to_vec(), Some(number))
    );

    // Five minutes later by the client's clock: Refresh, CreatePermission and ChannelBind go
    // out again and coturn accepts them; data still flows over the channel.
    d.offset += Duration::from_secs(300);
    d.until("Refreshed", |e| matches!(e, Event::Refreshed { .. }));
    let deadline = Instant::now() + STEP;
    while d.client.stats().permission_refreshes == 0 {
        assert!(Instant::now() < deadline, "no permission refresh");
        d.step();
    }
    d.send_to(peer_addr, b"after refresh");
    assert_eq!(peer_recv(&peer).0, b"after refresh");

    let stats = d.client.stats();
    assert_eq!(stats.allocations, 1);
    assert_eq!((stats.permissions, stats.channels), (1, 1));
    assert_eq!(stats.sent_indication.packets, 1);
    assert_eq!(stats.sent_channel.packets, 2);
    assert_eq!(stats.received_indication.packets, 1);
    assert_eq!(stats.received_channel.packets, 1);
    assert_eq!(stats.input_errors, 0);
    println!("{transport}: relayed {relayed}, stats {stats:?}");
    d
}

#[test]
fn udp_allocation_relays_both_ways() {
    let Some(exe) = require_turnserver("udp_allocation_relays_both_ways") else {
        return;
    };
    let coturn = Coturn::start(exe);
    let mut d = relay_both_ways(&coturn, Transport::Udp);
    let now = d.now();
    d.client.close(now);
    d.until("Closed", |e| *e == Event::Closed);
}

#[test]
fn tcp_allocation_relays_both_ways() {
    let Some(exe) = require_turnserver("tcp_allocation_relays_both_ways") else {
        return;
    };
    let coturn = Coturn::start(exe);
    let mut d = relay_both_ways(&coturn, Transport::Tcp);
    let now = d.now();
    d.client.close(now);
    d.until("Closed", |e| *e == Event::Closed);
}

#[test]
fn coturn_restart_re_allocates() {
    let Some(exe) = require_turnserver("coturn_restart_re_allocates") else {
        return;
    };
    let mut coturn = Coturn::start(exe);
    let mut d = Driver::new(coturn.config(Transport::Udp));
    d.until("Allocated", |e| matches!(e, Event::Allocated { .. }));
    let peer = peer_socket();
    let peer_addr = peer.local_addr().unwrap();
    let now = d.now();
    d.client.bind_channel(now, peer_addr).unwrap();
    d.until("ChannelBound", |e| matches!(e, Event::ChannelBound { .. }));

    coturn.stop();
    coturn.launch();
    // The next refresh finds an allocation the new coturn never made.
    d.offset += Duration::from_secs(300);
    let lost = d.until("AllocationLost", |e| {
        matches!(e, Event::AllocationLost { .. })
    });
    println!("after the restart: {lost:?}");
    let Event::Allocated { relayed, .. } =
        d.until("Allocated", |e| matches!(e, Event::Allocated { .. }))
    else {
        unreachable!()
    };
    // The channel comes back on the new allocation by itself.
    d.until("ChannelBound", |e| matches!(e, Event::ChannelBound { .. }));
    d.send_to(peer_addr, b"after restart");
    assert_eq!(peer_recv(&peer), (b"after restart".to_vec(), relayed));
    let stats = d.client.stats();
    assert_eq!(stats.allocations, 2);
    println!("lost: {:?}", stats.allocations_lost);
}

#[test]
fn wrong_credentials_are_refused() {
    let Some(exe) = require_turnserver("wrong_credentials_are_refused") else {
        return;
    };
    let coturn = Coturn::start(exe);
    let mut config = coturn.config(Transport::Udp);
    config.password = Secret::new("not the password");
    let mut d = Driver::new(config);
    let failed = d.until("AllocationFailed", |e| {
        matches!(e, Event::AllocationFailed { .. })
    });
    let Event::AllocationFailed { failure, retry_at } = failed else {
        unreachable!()
    };
    assert!(
        matches!(failure.kind, FailureKind::Unauthorized(_)),
        "{failure}"
    );
    assert!(retry_at.is_some());
    println!("{failure}");
}
