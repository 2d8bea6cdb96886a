//! N WHEP subscribers in one thread: one UDP socket each, all behind one `mio` poll, read with
//! `recvmmsg`. They complete ICE and DTLS with r58's own client and then only count: the clear
//! RTP header gives the sequence number (loss, reorder); a spread-out sample of packets is
//! decrypted to read the publisher's send time, compared with the kernel's receive timestamp
//! (`SO_TIMESTAMPNS`), so the generator's own scheduling delay does not count as latency.

use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use nix::cmsg_space;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;
use sfu::webrtc::client::{Client, ClientRole};

use crate::http;
use crate::stamp;

/// Datagrams per `recvmmsg` call.
const BATCH: usize = 32;
/// How often every client's timers (consent checks, DTLS retransmissions) run.
const TIMER_INTERVAL: Duration = Duration::from_millis(50);
/// How often every socket is read whether or not it was reported readable.
const SWEEP_INTERVAL: Duration = Duration::from_millis(500);
/// Receive buffer per subscriber socket: a keyframe burst must fit while the thread is busy.
const RCVBUF: usize = 1 << 20;

/// One subscriber's counters, over its whole life.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub received: u64,
    /// Extended sequence number of the newest packet; `None` before the first.
    pub highest: Option<u64>,
    pub first: Option<u64>,
    pub reordered: u64,
}

/// The session protocol a subscriber speaks: r58's WHEP, or something the peer needs.
pub enum Peer {
    /// r58: our offer to `POST /whep/{stream}`.
    Whep { http: SocketAddr, stream: String },
    /// Janus: the streaming plugin offers over its HTTP API, we answer.
    Janus { http: SocketAddr, bind: IpAddr },
}

struct Sub {
    socket: UdpSocket,
    client: Client,
    connected: bool,
    failed: bool,
    ssrc: Option<u32>,
    counts: Counts,
    /// The session resource to DELETE if the subscriber is abandoned.
    resource: Option<(SocketAddr, String)>,
}

pub struct Pool {
    poll: Poll,
    events: Events,
    subs: Vec<Sub>,
    headers: MultiHeaders<SockaddrStorage>,
    bufs: Vec<[u8; 1600]>,
    next_timers: Instant,
    next_sweep: Instant,
    /// Publisher send -> kernel receive, in microseconds, for sampled packets.
    pub latency_us: Vec<f64>,
    pub decrypt_errors: u64,
    /// Subscribers replaced because their handshake stalled.
    pub retried: usize,
    /// Decrypt one in `sample_every` packets per subscriber (phases staggered over subscribers).
    sample_every: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("socket option: {0}")]
    Sockopt(#[from] nix::Error),
    #[error("session setup: {0}")]
    Http(#[from] http::HttpError),
    #[error("Janus session setup: {0}")]
    Janus(#[from] crate::janus::JanusError),
    #[error("client: {0}")]
    Client(#[from] sfu::webrtc::client::ClientError),
    #[error("{connected} of {wanted} subscribers connected within {secs} s")]
    ConnectTimeout {
        connected: usize,
        wanted: usize,
        secs: u64,
    },
}

impl Pool {
    pub fn new(expected: usize) -> Result<Self, PoolError> {
        Ok(Self {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            subs: Vec::with_capacity(expected),
            headers: MultiHeaders::preallocate(BATCH, Some(cmsg_space!(TimeSpec))),
            bufs: vec![[0u8; 1600]; BATCH],
            next_timers: Instant::now(),
            next_sweep: Instant::now(),
            latency_us: Vec::new(),
            decrypt_errors: 0,
            retried: 0,
            sample_every: (expected as u64 / 64).max(8),
        })
    }

    pub fn connected(&self) -> usize {
        self.subs.iter().filter(|s| s.connected).count()
    }

    /// Opens `count` more subscribers and runs until they are all connected. A subscriber
    /// whose handshake stalls (a lost flight the client does not repeat) is replaced by a new
    /// session; replacements are counted in `retried`.
    pub fn open(&mut self, count: usize, peer: &Peer, timeout: Duration) -> Result<(), PoolError> {
        let target = self.subs.len() + count;
        // Offer in chunks so the handshakes of one chunk overlap but the server's HTTP and
        // DTLS work is not one huge burst that outlasts the clients' retransmission timers.
        const CHUNK: usize = 50;
        const STALL: Duration = Duration::from_secs(10);
        let deadline = Instant::now() + timeout;
        while self.subs.len() < target {
            let n = CHUNK.min(target - self.subs.len());
            for _ in 0..n {
                let sub = self.new_sub(peer, self.subs.len())?;
                self.subs.push(sub);
                // Keep the connected ones' consent checks and handshakes going meanwhile.
                self.run_once(Duration::ZERO)?;
            }
            let mut chunk_deadline = Instant::now() + STALL;
            while self.connected() < self.subs.len() {
                self.run_once(Duration::from_millis(5))?;
                let now = Instant::now();
                if now >= deadline {
                    return Err(PoolError::ConnectTimeout {
                        connected: self.connected(),
                        wanted: target,
                        secs: timeout.as_secs(),
                    });
                }
                if now >= chunk_deadline {
                    for index in 0..self.subs.len() {
                        if !self.subs[index].connected {
                            eprintln!(
                                "fanout: subscriber #{index} stalled ({}), replacing it",
                                self.subs[index].client.progress()
                            );
                            let fresh = self.new_sub(peer, index)?;
                            let mut old = std::mem::replace(&mut self.subs[index], fresh);
                            self.poll.registry().deregister(&mut old.socket)?;
                            if let Some((http, path)) = old.resource {
                                let _ = http::request(http, "DELETE", &path, None, "");
                            }
                            self.retried += 1;
                        }
                    }
                    chunk_deadline = now + STALL;
                }
            }
        }
        Ok(())
    }

    fn new_sub(&mut self, peer: &Peer, index: usize) -> Result<Sub, PoolError> {
        let ip = match peer {
            Peer::Janus { bind, .. } => *bind,
            Peer::Whep { .. } => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let mut socket = UdpSocket::bind(SocketAddr::new(ip, 0))?;
        setsockopt(&socket, sockopt::RcvBuf, &RCVBUF)?;
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true)?;
        let mut client = Client::new(ClientRole::Play)?;
        let resource = match peer {
            Peer::Whep { http, stream } => {
                let answer = http::request(
                    *http,
                    "POST",
                    &format!("/whep/{stream}"),
                    Some("application/sdp"),
                    &client.offer(),
                )?;
                client.accept_answer(Instant::now(), &answer.body)?;
                answer.header("location").map(|l| (*http, l.to_owned()))
            }
            Peer::Janus { http, .. } => {
                let watch = crate::janus::watch(*http)?;
                let answer =
                    client.answer_offer(Instant::now(), &watch.offer, socket.local_addr()?)?;
                if std::env::var_os("FANOUT_DEBUG").is_some() {
                    eprintln!("--- Janus offer\n{}--- our answer\n{answer}", watch.offer);
                }
                crate::janus::start_watching(*http, &watch, &answer)?;
                None
            }
        };
        self.poll
            .registry()
            .register(&mut socket, Token(index), Interest::READABLE)?;
        let mut sub = Sub {
            socket,
            client,
            connected: false,
            failed: false,
            ssrc: None,
            counts: Counts::default(),
            resource,
        };
        flush(&mut sub);
        Ok(sub)
    }

    /// Runs the receive loop for `duration`.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), PoolError> {
        let end = Instant::now() + duration;
        while Instant::now() < end {
            self.run_once(Duration::from_millis(5))?;
        }
        Ok(())
    }

    /// One poll: reads every readable socket dry, then runs due timers.
    fn run_once(&mut self, timeout: Duration) -> Result<(), PoolError> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
        for index in ready {
            self.drain(index);
        }
        let now = Instant::now();
        if now >= self.next_sweep {
            // Edge-triggered readiness is lost if a read stops early (an error): read every
            // socket now and then, so such a subscriber is not silent for the rest of the run.
            self.next_sweep = now + SWEEP_INTERVAL;
            for index in 0..self.subs.len() {
                self.drain(index);
            }
        }
        if now >= self.next_timers {
            self.next_timers = now + TIMER_INTERVAL;
            for sub in &mut self.subs {
                sub.client.handle_timeout(now);
                flush(sub);
            }
        }
        Ok(())
    }

    fn drain(&mut self, index: usize) {
        let mut meta = [(0usize, None::<TimeSpec>); BATCH];
        loop {
            let received = {
                let Some(sub) = self.subs.get(index) else {
                    return;
                };
                let fd = sub.socket.as_raw_fd();
                let mut iovs: Vec<[IoSliceMut<'_>; 1]> = self
                    .bufs
                    .iter_mut()
                    .map(|b| [IoSliceMut::new(&mut b[..])])
                    .collect();
                match recvmmsg(
                    fd,
                    &mut self.headers,
                    iovs.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                ) {
                    Ok(results) => {
                        let mut n = 0;
                        for msg in results {
                            let ts = msg.cmsgs().ok().and_then(|mut c| {
                                c.find_map(|c| match c {
                                    ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
                                    _ => None,
                                })
                            });
                            meta[n] = (msg.bytes, ts);
                            n += 1;
                        }
                        n
                    }
                    Err(nix::errno::Errno::EINTR) => continue,
                    // EAGAIN: drained. Anything else concerns this datagram only; the next
                    // sweep reads what follows it.
                    Err(_) => 0,
                }
            };
            let sample_every = self.sample_every;
            for (i, &(len, ts)) in meta.iter().enumerate().take(received) {
                let data = &self.bufs[i][..len.min(1600)];
                let mut sink = Samples {
                    latency_us: &mut self.latency_us,
                    decrypt_errors: &mut self.decrypt_errors,
                };
                handle(
                    &mut self.subs[index],
                    index,
                    sample_every,
                    data,
                    ts,
                    &mut sink,
                );
            }
            if received < BATCH {
                break;
            }
        }
        if let Some(sub) = self.subs.get_mut(index) {
            flush(sub);
        }
    }

    /// Every subscriber's counters now.
    pub fn snapshot(&self) -> Vec<Counts> {
        self.subs.iter().map(|s| s.counts).collect()
    }

    pub fn failed(&self) -> usize {
        self.subs.iter().filter(|s| s.failed).count()
    }
}

/// Where latency samples go (fields of the pool, borrowed apart from its subscribers).
struct Samples<'a> {
    latency_us: &'a mut Vec<f64>,
    decrypt_errors: &'a mut u64,
}

/// One datagram to subscriber `index`.
fn handle(
    sub: &mut Sub,
    index: usize,
    sample_every: u64,
    data: &[u8],
    ts: Option<TimeSpec>,
    samples: &mut Samples<'_>,
) {
    {
        let is_rtp = matches!(data.first(), Some(128..=191))
            && data.len() >= 12
            && !(192..=223).contains(&data[1]);
        if !is_rtp {
            if data.first().is_some_and(|b| (128..=191).contains(b)) {
                return; // SRTCP: not needed
            }
            if sub.client.handle_datagram(Instant::now(), data).is_err() {
                sub.failed = true;
            }
            while let Some(event) = sub.client.poll_event() {
                if event == sfu::webrtc::client::ClientEvent::Connected {
                    sub.connected = true;
                }
            }
            return;
        }
        let sequence = u16::from_be_bytes([data[2], data[3]]);
        let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        if *sub.ssrc.get_or_insert(ssrc) != ssrc {
            return; // another stream (audio, RTX): not what we count
        }
        let c = &mut sub.counts;
        c.received += 1;
        let ext = match c.highest {
            None => u64::from(sequence) + (1 << 16),
            Some(h) => extend(h, sequence),
        };
        c.first.get_or_insert(ext);
        match c.highest {
            Some(h) if ext <= h => c.reordered += 1,
            _ => c.highest = Some(ext),
        }
        if (ext + index as u64).is_multiple_of(sample_every)
            && let Some(ts) = ts
        {
            match sub.client.decrypt_rtp(data) {
                Ok(plain) => {
                    if let Some(sent_ns) = stamp::read(&plain) {
                        let rx_ns = ts.tv_sec() as i128 * 1_000_000_000 + ts.tv_nsec() as i128;
                        let us = (rx_ns - sent_ns as i128) as f64 / 1000.0;
                        samples.latency_us.push(us);
                    }
                }
                Err(_) => *samples.decrypt_errors += 1,
            }
        }
    }
}

/// Sends what the client queued (checks, DTLS flights).
fn flush(sub: &mut Sub) {
    while let Some((to, data)) = sub.client.poll_transmit() {
        let _ = sub.socket.send_to(&data, to);
    }
}

/// The extended sequence number of `seq` closest to `highest`.
fn extend(highest: u64, seq: u16) -> u64 {
    let base = highest & !0xffff;
    let candidates = [base.wrapping_sub(1 << 16), base, base + (1 << 16)];
    candidates
        .into_iter()
        .map(|b| b | u64::from(seq))
        .min_by_key(|c| c.abs_diff(highest))
        .unwrap_or(highest)
}

/// Loss and reorder between two snapshots of the same subscribers.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct WindowCounts {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub reordered: u64,
    /// Subscribers that received nothing in the window.
    pub silent: usize,
}

/// A subscriber that received nothing in the window lost all `published` packets (its session
/// ended, or the server stopped sending to it): counting it as zero would hide that.
pub fn window(before: &[Counts], after: &[Counts], published: u64) -> WindowCounts {
    let mut w = WindowCounts::default();
    for (b, a) in before.iter().zip(after) {
        let received = a.received - b.received;
        let expected = match (b.highest, a.highest) {
            _ if received == 0 => published,
            (Some(hb), Some(ha)) => ha - hb,
            (None, Some(ha)) => ha + 1 - a.first.unwrap_or(ha),
            _ => 0,
        };
        if received == 0 {
            w.silent += 1;
        }
        w.received += received;
        w.expected += expected;
        w.lost += expected.saturating_sub(received);
        w.reordered += a.reordered - b.reordered;
    }
    w
}

/// Wall-clock nanoseconds, the clock both the publisher's stamp and `SO_TIMESTAMPNS` use.
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extends_across_wrap_both_ways() {
        assert_eq!(extend(0x1_fffe, 0xffff), 0x1_ffff);
        assert_eq!(extend(0x1_ffff, 0x0001), 0x2_0001);
        assert_eq!(extend(0x2_0001, 0xfffe), 0x1_fffe);
    }

    #[test]
    fn window_counts_gaps_as_loss() {
        let before = [Counts {
            received: 10,
            highest: Some(100),
            first: Some(91),
            reordered: 0,
        }];
        let after = [Counts {
            received: 15,
            highest: Some(110),
            first: Some(91),
            reordered: 1,
        }];
        let w = window(&before, &after, 10);
        assert_eq!((w.expected, w.received, w.lost, w.reordered), (10, 5, 5, 1));
        let w = window(&before, &before, 10);
        assert_eq!(
            (w.expected, w.lost, w.silent),
            (10, 10, 1),
            "silent = all lost"
        );
    }
}
