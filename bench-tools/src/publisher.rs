//! The synthetic publisher: H.264 at ~2.5 Mbit/s, 30 fps, sent frame by frame, each FU-A
//! packet stamped with its send time. By default a frame's packets go back to back, as a
//! keyframe burst leaves an encoder without a pacer; with a pacing factor they are spread out
//! at that multiple of the stream's bitrate, as a WebRTC sender's pacer does (Chromium's
//! default factor is 2.5), which is what a browser's WHIP session delivers.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sfu::testing::client::{Client, ClientEvent, ClientRole, H264_PT};
use sfu::testing::harness::H264Source;

use crate::http;
use crate::stamp;
use crate::stamp::wall_ns;
use crate::subscribers::PoolError;

const FRAME_INTERVAL: Duration = Duration::from_nanos(1_000_000_000 / 30);
/// The synthetic stream's nominal bitrate, the base of the pacing factor.
const STREAM_BITS_PER_SECOND: f64 = 2_500_000.0;

/// Where the publisher's packets go.
pub enum Ingest {
    /// r58: WHIP to `POST /whip/{stream}`, then SRTP.
    Whip { http: SocketAddr, stream: String },
    /// Plain RTP to a UDP port (Janus' streaming plugin mountpoint).
    PlainRtp { to: SocketAddr },
}

pub struct Publisher {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

enum Sender {
    Srtp {
        client: Box<Client>,
        socket: UdpSocket,
    },
    Plain {
        socket: UdpSocket,
        to: SocketAddr,
    },
}

impl Sender {
    fn send(&mut self, packet: &[u8]) {
        match self {
            Sender::Srtp { client, socket } => {
                if client.send_rtp(packet).is_ok() {
                    while let Some((to, data)) = client.poll_transmit() {
                        let _ = socket.send_to(&data, to);
                    }
                }
            }
            Sender::Plain { socket, to } => {
                let _ = socket.send_to(packet, *to);
            }
        }
    }

    /// Reads what came back (RTCP, consent answers) and runs the client's timers.
    fn service(&mut self) {
        if let Sender::Srtp { client, socket } = self {
            let mut buf = [0u8; 2048];
            while let Ok((n, _)) = socket.recv_from(&mut buf) {
                let _ = client.handle_datagram(Instant::now(), &buf[..n]);
            }
            client.handle_timeout(Instant::now());
            while let Some((to, data)) = client.poll_transmit() {
                let _ = socket.send_to(&data, to);
            }
            while client.poll_event().is_some() {}
        }
    }
}

impl Publisher {
    /// Connects (for WHIP: offer, ICE, DTLS) from `bind` and starts sending; `pace` is the
    /// pacing factor (0: bursts).
    pub fn start(ingest: &Ingest, bind: IpAddr, pace: f64) -> Result<Self, PoolError> {
        let socket = UdpSocket::bind(SocketAddr::new(bind, 0))?;
        let sender = match ingest {
            Ingest::Whip { http, stream } => {
                let mut client = Client::new(ClientRole::Publish)?;
                let answer = http::request(
                    *http,
                    "POST",
                    &format!("/whip/{stream}"),
                    Some("application/sdp"),
                    &client.offer(),
                )?;
                client.accept_answer(Instant::now(), &answer.body)?;
                connect(&mut client, &socket)?;
                socket.set_nonblocking(true)?;
                Sender::Srtp {
                    client: Box::new(client),
                    socket,
                }
            }
            Ingest::PlainRtp { to } => {
                socket.set_nonblocking(true)?;
                Sender::Plain { socket, to: *to }
            }
        };
        let ssrc = match &sender {
            Sender::Srtp { client, .. } => client.ssrcs.0,
            Sender::Plain { .. } => 0x5835_3801,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::Builder::new()
                .name("publisher".into())
                .spawn(move || run(sender, ssrc, pace, &stop, &sent))?
        };
        Ok(Self {
            stop,
            sent,
            thread: Some(thread),
        })
    }

    /// Packets sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Drives ICE and DTLS on a blocking socket until connected.
fn connect(client: &mut Client, socket: &UdpSocket) -> Result<(), PoolError> {
    socket.set_read_timeout(Some(Duration::from_millis(10)))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        while let Some((to, data)) = client.poll_transmit() {
            socket.send_to(&data, to)?;
        }
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            client.handle_datagram(Instant::now(), &buf[..n])?;
        }
        client.handle_timeout(Instant::now());
        while let Some(event) = client.poll_event() {
            if event == ClientEvent::Connected {
                while let Some((to, data)) = client.poll_transmit() {
                    socket.send_to(&data, to)?;
                }
                return Ok(());
            }
        }
    }
    Err(PoolError::ConnectTimeout {
        connected: 0,
        wanted: 1,
        secs: 10,
    })
}

fn run(mut sender: Sender, ssrc: u32, pace: f64, stop: &AtomicBool, sent: &AtomicU64) {
    let mut source = H264Source::new(ssrc, H264_PT);
    let mut next = Instant::now();
    let mut pacer = Pacer::new(pace);
    while !stop.load(Ordering::Relaxed) {
        for mut packet in source.next_frame() {
            pacer.wait_for(packet.len());
            stamp::write(&mut packet, wall_ns());
            sender.send(&packet);
            sent.fetch_add(1, Ordering::Relaxed);
        }
        sender.service();
        next += FRAME_INTERVAL;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now; // fell behind: do not send a burst of late frames
        }
    }
}

/// Spreads packets out at a fixed byte rate; a packet that finds the pacer idle leaves at once,
/// later ones wait for their turn (a keyframe longer than a frame interval delays the next
/// frame, as in a sender's pacer queue).
struct Pacer {
    bytes_per_second: Option<f64>,
    next: Instant,
}

impl Pacer {
    fn new(factor: f64) -> Self {
        Self {
            bytes_per_second: (factor > 0.0).then(|| factor * STREAM_BITS_PER_SECOND / 8.0),
            next: Instant::now(),
        }
    }

    /// Sleeps until a packet of `len` bytes may leave, and books its time on the wire.
    fn wait_for(&mut self, len: usize) {
        let Some(rate) = self.bytes_per_second else {
            return;
        };
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        }
        self.next = self.next.max(now) + Duration::from_secs_f64(len as f64 / rate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_spreads_packets_at_its_rate() {
        // 2.5 x 2.5 Mbit/s = 781 250 bytes/s: 8 packets of 1200 bytes take ~12.3 ms.
        let mut pacer = Pacer::new(2.5);
        let start = Instant::now();
        for _ in 0..9 {
            pacer.wait_for(1200);
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_micros(12_000), "{took:?}");
        let mut burst = Pacer::new(0.0);
        let start = Instant::now();
        for _ in 0..1000 {
            burst.wait_for(1200);
        }
        assert!(
            start.elapsed() < Duration::from_millis(5),
            "no pacing at factor 0"
        );
    }
}
