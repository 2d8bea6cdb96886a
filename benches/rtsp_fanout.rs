//! CPU per forwarded packet: N RTSP/TCP readers against N WHEP viewers, same run, same frames.
//!
//! One engine with two WHIP publishers (the in-memory harness: real ICE, DTLS, SRTP), each
//! sending the same synthetic H.264 stream (~2.5 Mbit/s, 30 fps, a keyframe a second):
//! - WHEP: N viewers of the first; timed: the engine taking the publisher's SRTP datagrams and
//!   fanning out (rewrite, SRTP per viewer), then the driver's `GsoSender` sending every
//!   datagram to N local UDP sockets (one per viewer);
//! - RTSP: N hub readers of the second, each with its `sfu::rtsp::Connection` playing over
//!   TCP interleaved; timed: the engine taking the datagrams and offering each packet to the N
//!   reader queues, then per reader what its connection task does (take the queued packets,
//!   rewrite and frame them, one `write` of the batch to its loopback TCP socket).
//!
//! Reports the measuring thread's CPU time (`/proc/thread-self/schedstat`) per packet x
//! subscriber. The receiving sockets are drained between frames, untimed.
//!
//! cargo bench --bench rtsp_fanout [-- 50,200]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use sfu::engine::EngineConfig;
use sfu::hub::ReaderPacket;
use sfu::media::WallClock;
use sfu::net::udp_batch::GsoSender;
use sfu::rtsp::{Catalog, Connection, ConnectionConfig, Output, StreamDescription};
use sfu::testing::client::{ClientRole, H264_PT};
use sfu::testing::harness::{H264Source, Harness};
use tokio::sync::mpsc::Receiver;

mod common;
use common::{drain, thread_cpu_ns};

const WARMUP_FRAMES: usize = 31;
const FRAMES: usize = 90;

struct Snapshot(StreamDescription);

impl Catalog for Snapshot {
    fn describe(&self, _name: &str) -> Option<StreamDescription> {
        Some(self.0.clone())
    }
    fn required_token(&self, _name: &str) -> Option<String> {
        None
    }
}

struct RtspReader {
    conn: Connection,
    rx: Receiver<ReaderPacket>,
    socket: TcpStream,
    peer: TcpStream,
}

fn udp_receiver() -> UdpSocket {
    let r = UdpSocket::bind("127.0.0.1:0").expect("bind");
    r.set_nonblocking(true).expect("nonblocking");
    socket2::SockRef::from(&r)
        .set_recv_buffer_size(4 << 20)
        .expect("rcvbuf");
    r
}

/// Plays `stream` on a fresh connection core (SETUP video over TCP, PLAY) fed by a hub reader.
fn rtsp_reader(h: &mut Harness, listener: &TcpListener, stream: &str, seed: u64) -> RtspReader {
    let now = h.now;
    let catalog = Snapshot(sfu::rtsp::describe(&h.engine, stream).expect("stream"));
    let mut conn = Connection::new(
        now,
        ConnectionConfig {
            peer: "127.0.0.1:50000".parse().unwrap(),
            local: "127.0.0.1:8554".parse().unwrap(),
            udp_ports: None,
            session_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(3600),
            wall_clock: WallClock::now(),
            seed,
            refuse: None,
        },
    );
    conn.handle_input(
        now,
        format!("SETUP rtsp://h/{stream}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n").as_bytes(),
        &catalog,
    );
    let Some(Output::Tcp(reply)) = conn.poll_output() else {
        panic!("no SETUP reply")
    };
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let session = reply
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("session")
        .to_owned();
    conn.handle_input(
        now,
        format!("PLAY rtsp://h/{stream} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n")
            .as_bytes(),
        &catalog,
    );
    while conn.poll_output().is_some() {}
    while conn.poll_event().is_some() {}
    let (_, rx) = h
        .engine
        .attach_reader(now, stream, "rtsp", 4096)
        .expect("reader");
    let socket = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    socket.set_nodelay(true).expect("nodelay");
    socket2::SockRef::from(&socket)
        .set_send_buffer_size(4 << 20)
        .expect("sndbuf");
    let (peer, _) = listener.accept().expect("accept");
    peer.set_nonblocking(true).expect("nonblocking");
    RtspReader {
        conn,
        rx,
        socket,
        peer,
    }
}

fn run(n: usize) -> (f64, f64) {
    let mut h = Harness::new(EngineConfig {
        max_sessions: n + 10,
        ..EngineConfig::default()
    })
    .expect("engine");
    let whep_pub = h.open(ClientRole::Publish, "whep").expect("publish");
    let rtsp_pub = h.open(ClientRole::Publish, "rtsp").expect("publish");
    assert!(h.connect_all());
    let first_viewer = h.clients.len();
    for _ in 0..n {
        h.open(ClientRole::Play, "whep").expect("play");
    }
    assert!(h.connect_all(), "all viewers connect");
    h.discard_media = true;
    // Each WHEP viewer's (fake) address is sent to a local UDP socket instead.
    let receivers: Vec<UdpSocket> = (0..n).map(|_| udp_receiver()).collect();
    let route: HashMap<SocketAddr, SocketAddr> = (0..n)
        .map(|i| {
            (
                h.clients[first_viewer + i].addr,
                receivers[i].local_addr().unwrap(),
            )
        })
        .collect();
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket2::SockRef::from(&tx)
        .set_send_buffer_size(8 << 20)
        .expect("sndbuf");
    let mut gso = GsoSender::new(true);

    let mut sources = [whep_pub, rtsp_pub].map(|p| {
        let ssrc = h.clients[p].client.ssrcs.0;
        (p, H264Source::new(ssrc, H264_PT))
    });
    let mut frame = |h: &mut Harness, which: usize| -> Vec<bytes::BytesMut> {
        let (p, source) = &mut sources[which];
        for packet in source.next_frame() {
            h.clients[*p].client.send_rtp(&packet).expect("send");
        }
        let mut out = Vec::new();
        while let Some((_, d)) = h.clients[*p].client.poll_transmit() {
            out.push(d);
        }
        out
    };
    // Warm up: the streams' first keyframes reach the hub, the readers attach after them.
    for _ in 0..WARMUP_FRAMES {
        for which in 0..2 {
            let from = h.clients[[whep_pub, rtsp_pub][which]].addr;
            for d in frame(&mut h, which) {
                h.engine.handle_datagram(h.now, from, &d);
            }
            h.engine.clear_transmits();
        }
        h.now += Duration::from_millis(33);
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let mut readers: Vec<RtspReader> = (0..n)
        .map(|i| rtsp_reader(&mut h, &listener, "rtsp", i as u64 + 1))
        .collect();

    let (mut whep_ns, mut rtsp_ns) = (0u64, 0u64);
    let (mut whep_packets, mut rtsp_packets) = (0u64, 0u64);
    let mut sink = vec![0u8; 1 << 20];
    for _ in 0..FRAMES {
        let now = h.now;
        // WHEP.
        let datagrams = frame(&mut h, 0);
        let from = h.clients[whep_pub].addr;
        let t0 = thread_cpu_ns();
        for d in &datagrams {
            h.engine.handle_datagram(now, from, d);
        }
        let list: Vec<(SocketAddr, &[u8])> = h
            .engine
            .pending_transmits()
            .filter_map(|(to, d)| Some((*route.get(&to.addr)?, d)))
            .collect();
        let sent = list.len();
        let dropped = gso.send(&tx, &list);
        drop(list);
        h.engine.clear_transmits();
        let t1 = thread_cpu_ns();
        whep_ns += t1 - t0;
        whep_packets += (sent - dropped) as u64;
        drain(&receivers);
        // RTSP.
        let datagrams = frame(&mut h, 1);
        let from = h.clients[rtsp_pub].addr;
        let t0 = thread_cpu_ns();
        for d in &datagrams {
            h.engine.handle_datagram(now, from, d);
        }
        h.engine.clear_transmits();
        for r in &mut readers {
            while let Ok(packet) = r.rx.try_recv() {
                r.conn.handle_media(now, &packet);
                rtsp_packets += 1;
            }
            while let Some(output) = r.conn.poll_output() {
                if let Output::Tcp(bytes) = output {
                    r.socket.write_all(&bytes).expect("write");
                }
            }
        }
        let t1 = thread_cpu_ns();
        rtsp_ns += t1 - t0;
        for r in &mut readers {
            while r.peer.read(&mut sink).is_ok_and(|got| got > 0) {}
        }
        h.now += Duration::from_millis(33);
    }
    assert!(whep_packets > 0 && rtsp_packets > 0);
    println!(
        "  {n} each: WHEP {whep_packets} packets forwarded, RTSP {rtsp_packets} (dropped by readers: {})",
        h.engine
            .hub()
            .get("rtsp")
            .map_or(0, |s| s.readers.iter().map(|r| r.dropped).sum::<u64>())
    );
    (
        whep_ns as f64 / whep_packets as f64,
        rtsp_ns as f64 / rtsp_packets as f64,
    )
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![50, 200]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    println!(
        "rtsp_fanout: H.264 ~2.5 Mbit/s 30 fps, {FRAMES} frames; CPU of the forwarding thread per packet x subscriber"
    );
    println!(
        "{:>9} {:>14} {:>14} {:>12}",
        "each", "WHEP ns", "RTSP/TCP ns", "RTSP/WHEP"
    );
    for n in sizes {
        let started = Instant::now();
        let (whep, rtsp) = run(n);
        println!("{n:>9} {whep:>14.0} {rtsp:>14.0} {:>11.2}x", rtsp / whep);
        if started.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
}
