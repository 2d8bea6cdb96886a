//! The RTSP server over real sockets, in process: a healthy client keeps receiving a test
//! camera while other connections send malformed requests, a non-numeric CSeq, unknown
//! sessions, interleaved garbage and wrong credentials (each answered with its RTSP status),
//! and a thousand idle connections from another client address (past the per-client limit:
//! 453, then closed when idle); `/metrics` counts connections, bytes and readers per stream.
//! Interop with real players is tests/interop/test_rtsp.py.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use r58::config::{AuthRule, Limits, RtspConfig};
use r58::live::Live;
use r58::rtsp::{RtspServer, RtspStats, bind};
use sfu::testing::cameras::small_camera;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const TOKEN: &str = "rtsp-secret";

/// One response: status, headers as text, body.
struct Reply {
    status: u16,
    head: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A minimal RTSP client: writes requests, reads responses, counts interleaved RTP frames.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).await.expect("write");
    }

    /// The next response (interleaved frames before it are skipped); `None` when closed.
    async fn response(&mut self) -> Option<Reply> {
        loop {
            while self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
                let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                if self.buf.len() < 4 + len {
                    break;
                }
                self.buf.drain(..4 + len);
            }
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n")
                && self.buf.first() != Some(&b'$')
            {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |v| v.trim().parse().expect("length"));
                if self.buf.len() >= end + 4 + length {
                    self.buf.drain(..end + 4 + length);
                    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok())?;
                    return Some(Reply { status, head });
                }
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
                .await
                .expect("a response within 5 s")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn request(&mut self, text: &str) -> Reply {
        self.send(text).await;
        self.response().await.expect("a response")
    }
}

fn basic(password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("mixer:{password}"))
}

async fn start() -> (SocketAddr, Arc<RtspStats>, Vec<sfu::capture::CameraHandle>) {
    let (addr, stats, _, cameras) = start_with_engine().await;
    (addr, stats, cameras)
}

async fn start_with_engine() -> (
    SocketAddr,
    Arc<RtspStats>,
    sfu::engine::SharedEngine,
    Vec<sfu::capture::CameraHandle>,
) {
    let engine = common::shared_engine(common::answering_config());
    let cameras = common::start_cameras(&engine, &[small_camera("cam0", 300_000, 30)]).await;
    let config = RtspConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        listen_configured: true,
        session_timeout: Duration::from_secs(60),
        ..RtspConfig::default()
    };
    let sockets = bind(&config).await.expect("bind").expect("enabled");
    let addr = sockets.listener.local_addr().expect("addr");
    let limits = Limits {
        sessions_per_ip: 50,
        ..Limits::default()
    };
    let auth = vec![AuthRule {
        path: "/whep/cam0".into(),
        token: TOKEN.into(),
    }];
    let server = RtspServer::new(
        engine.clone(),
        Live::new(auth),
        Live::new(limits),
        2000,
        &config,
    );
    let stats = server.stats.clone();
    tokio::spawn(server.serve(sockets));
    (addr, stats, engine, cameras)
}

/// Plays cam0 over TCP and counts the RTP packets it receives, until the task is dropped.
async fn healthy_player(addr: SocketAddr, packets: Arc<AtomicU64>) {
    let mut c = Client::connect(addr).await;
    let auth = format!("Authorization: Basic {}\r\n", basic(TOKEN));
    let r = c
        .request(&format!(
            "DESCRIBE rtsp://{addr}/cam0 RTSP/1.0\r\nCSeq: 1\r\n{auth}\r\n"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.head);
    let r = c
        .request(&format!(
            "SETUP rtsp://{addr}/cam0/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n{auth}Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.head);
    let session = r
        .header("Session")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = c
        .request(&format!(
            "PLAY rtsp://{addr}/cam0/ RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.head);
    let mut buf = std::mem::take(&mut c.buf);
    let mut chunk = vec![0u8; 65536];
    loop {
        while buf.len() >= 4 && buf[0] == b'$' {
            let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() < 4 + len {
                break;
            }
            if buf[1] == 0 {
                packets.fetch_add(1, Ordering::Relaxed);
            }
            buf.drain(..4 + len);
        }
        assert!(
            buf.is_empty() || buf[0] == b'$',
            "stray bytes in the media stream"
        );
        let n = c.stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the healthy player");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Packets the healthy player received in `window`.
async fn rate(packets: &AtomicU64, window: Duration) -> u64 {
    let before = packets.load(Ordering::Relaxed);
    tokio::time::sleep(window).await;
    packets.load(Ordering::Relaxed) - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_get_statuses_and_the_healthy_player_goes_on() {
    let (addr, stats, _cameras) = start().await;
    let packets = Arc::new(AtomicU64::new(0));
    let player = tokio::spawn(healthy_player(addr, packets.clone()));
    let baseline = rate(&packets, Duration::from_secs(2)).await;
    assert!(
        baseline > 30,
        "the healthy player got {baseline} packets in 2 s"
    );

    // Wrong credentials, by Basic and by Digest: 401 with both challenges.
    let mut c = Client::connect(addr).await;
    let r = c
        .request(&format!(
            "DESCRIBE rtsp://{addr}/cam0 RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic {}\r\n\r\n",
            basic("wrong")
        ))
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.head.contains("WWW-Authenticate: Digest realm=\"r58\""),
        "{}",
        r.head
    );
    assert!(
        r.head.contains("WWW-Authenticate: Basic realm=\"r58\""),
        "{}",
        r.head
    );
    let r = c
        .request(&format!("DESCRIBE rtsp://{addr}/cam0 RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Digest username=\"u\", realm=\"r58\", nonce=\"stale\", uri=\"rtsp://{addr}/cam0\", response=\"0123\"\r\n\r\n"))
        .await;
    assert_eq!(r.status, 401);
    // A request without a CSeq, with a non-numeric one, an unknown session, a stream nobody
    // publishes; interleaved garbage in between is skipped and the connection answers on.
    assert_eq!(c.request("OPTIONS * RTSP/1.0\r\n\r\n").await.status, 400);
    assert_eq!(
        c.request("OPTIONS * RTSP/1.0\r\nCSeq: x1\r\n\r\n")
            .await
            .status,
        400
    );
    let r = c
        .request(&format!(
            "PLAY rtsp://{addr}/cam0 RTSP/1.0\r\nCSeq: 3\r\nSession: DEADBEEF\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 454);
    c.send("$\x09\x00\x04junk$\x00\x00\x01z").await;
    let r = c
        .request(&format!(
            "DESCRIBE rtsp://{addr}/nosuch RTSP/1.0\r\nCSeq: 4\r\n\r\n"
        ))
        .await;
    assert_eq!(r.status, 404);
    // Bytes that are no RTSP at all: one 400, then the server closes this connection only.
    let r = c
        .request("\x16\x03\x01\x02\x00\x01\x00\x01\x7f\x03\x03\r\n\r\n")
        .await;
    assert_eq!(r.status, 400);
    assert!(c.response().await.is_none(), "closed after garbage");

    // A thousand idle connections from another client address: the first 50 are admitted,
    // the rest are refused (453) at their first request; idle ones are closed after 10 s.
    let flood_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut idle = Vec::new();
    for _ in 0..1000 {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(flood_ip, 0))
            .expect("bind 127.0.0.2");
        idle.push(socket.connect(addr).await.expect("connect"));
    }
    let under_flood = rate(&packets, Duration::from_secs(2)).await;
    println!(
        "healthy player: {baseline} packets/2 s before, {under_flood} with 1000 idle connections"
    );
    assert!(
        under_flood * 2 > baseline,
        "the flood slowed the healthy player: {under_flood} vs {baseline}"
    );
    let mut refused = Client::connect_from(addr, flood_ip).await;
    let r = refused
        .request("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
        .await;
    assert_eq!(r.status, 453, "{}", r.head);
    // This client's address (unlimited: loopback) still gets in.
    let mut other = Client::connect(addr).await;
    assert_eq!(
        other
            .request("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
            .await
            .status,
        200
    );
    // Idle connections are closed by the server within its idle timeout (10 s).
    let mut first = idle.swap_remove(0);
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(15), first.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "an idle connection stayed open: {closed:?}"
    );
    assert!(stats.refused.load(Ordering::Relaxed) >= 1);
    assert!(!player.is_finished(), "the healthy player stopped");
    let after = rate(&packets, Duration::from_secs(2)).await;
    assert!(after * 2 > baseline, "{after} vs {baseline}");
    player.abort();
}

impl Client {
    async fn connect_from(addr: SocketAddr, ip: IpAddr) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(ip, 0)).expect("bind");
        Self {
            stream: socket.connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }
}

/// The value of the sample `name` (with its labels) in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<u64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_connections_bytes_and_readers_per_stream() {
    let (addr, stats, engine, _cameras) = start_with_engine().await;
    let app = r58::http::router(
        r58::http::AppState::new(engine, Vec::new()).with_rtsp(stats),
        &["*".to_owned()],
    );
    let metrics = || async { common::get(&app, "/metrics").await.text().to_owned() };
    let before = metrics().await;
    assert_eq!(
        sample(&before, "r58_rtsp_connections_open"),
        Some(0),
        "{before}"
    );
    assert_eq!(sample(&before, "r58_rtsp_readers{stream=\"cam0\"}"), None);

    let packets = Arc::new(AtomicU64::new(0));
    let player = tokio::spawn(healthy_player(addr, packets.clone()));
    common::wait_until("the player receives", || {
        packets.load(Ordering::Relaxed) >= 30
    })
    .await;
    let page = metrics().await;
    let received = packets.load(Ordering::Relaxed);
    assert_eq!(
        sample(&page, "r58_rtsp_connections_total"),
        Some(1),
        "{page}"
    );
    assert_eq!(
        sample(&page, "r58_rtsp_connections_open"),
        Some(1),
        "{page}"
    );
    assert_eq!(sample(&page, "r58_rtsp_connections_refused_total"), Some(0));
    assert_eq!(
        sample(&page, "r58_rtsp_readers{stream=\"cam0\"}"),
        Some(1),
        "{page}"
    );
    assert_eq!(
        sample(&page, "r58_rtsp_reader_dropped_packets{stream=\"cam0\"}"),
        Some(0),
        "a client that keeps up loses nothing"
    );
    // Every RTP packet the player counted came as at least a 4-byte frame header and a
    // 12-byte RTP header.
    let tcp = sample(&page, "r58_rtsp_sent_bytes_total{transport=\"tcp\"}").unwrap();
    assert!(tcp >= 16 * received, "{tcp} bytes for {received} packets");
    assert_eq!(
        sample(&page, "r58_rtsp_sent_bytes_total{transport=\"udp\"}"),
        Some(0)
    );

    // The player goes: its connection and its reader with it.
    player.abort();
    let gone = std::time::Instant::now();
    loop {
        let page = metrics().await;
        if sample(&page, "r58_rtsp_connections_open") == Some(0)
            && sample(&page, "r58_rtsp_readers{stream=\"cam0\"}").is_none()
        {
            break;
        }
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "still counted: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
