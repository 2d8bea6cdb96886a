//! N WHEP subscribers in one thread: one UDP socket each, all behind one `mio` poll, read with
//! `recvmmsg`. They complete ICE and DTLS with r58's own client and then only count: the clear
//! RTP header gives the sequence number (loss, reorder); a spread-out sample of packets is
//! decrypted to read the publisher's send time, compared with the kernel's receive timestamp
//! (`SO_TIMESTAMPNS`), so the generator's own scheduling delay does not count as latency.
//!
//! Sockets accept UDP GRO (`UDP_GRO`): where the kernel hands over a run of same-sized
//! datagrams as one buffer (a server's GSO send that crossed a veth unsegmented), one read
//! takes the whole run and it is split here by the segment size the kernel reports. That keeps
//! one generator core able to read thousands of subscribers' packets.

use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use nix::cmsg_space;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;
use sfu::testing::client::{Client, ClientRole};

use crate::http;
use crate::stamp;

/// Messages per `recvmmsg` call.
const BATCH: usize = 32;
/// Receive buffer per message: a GRO run of datagrams arrives as one message of up to 64 KB.
const MESSAGE_BUF: usize = 65_536;
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
    Janus { http: SocketAddr },
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
    bufs: Vec<Vec<u8>>,
    /// The address subscriber sockets bind to.
    bind: IpAddr,
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
    Client(#[from] sfu::testing::client::ClientError),
    #[error("{connected} of {wanted} subscribers connected within {secs} s")]
    ConnectTimeout {
        connected: usize,
        wanted: usize,
        secs: u64,
    },
}

impl Pool {
    pub fn new(expected: usize, bind: IpAddr) -> Result<Self, PoolError> {
        Ok(Self {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            subs: Vec::with_capacity(expected),
            headers: new_headers(),
            bufs: vec![vec![0u8; MESSAGE_BUF]; BATCH],
            bind,
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
        let mut socket = UdpSocket::bind(SocketAddr::new(self.bind, 0))?;
        setsockopt(&socket, sockopt::RcvBuf, &RCVBUF)?;
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true)?;
        setsockopt(&socket, sockopt::UdpGroSegment, &true)?;
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
        let mut meta = [Received::default(); BATCH];
        loop {
            let received = {
                let Some(sub) = self.subs.get(index) else {
                    return;
                };
                match read_messages(&sub.socket, &mut self.headers, &mut self.bufs, &mut meta) {
                    Ok(n) => n,
                    Err(nix::errno::Errno::EINTR) => continue,
                    // EAGAIN: drained. Anything else concerns this datagram only; the next
                    // sweep reads what follows it.
                    Err(_) => 0,
                }
            };
            let sample_every = self.sample_every;
            for (i, m) in meta.iter().enumerate().take(received) {
                let (ts, message) = (m.timestamp, &self.bufs[i][..m.len.min(MESSAGE_BUF)]);
                for data in datagrams(message, m.segment) {
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

/// One message read by [`read_messages`].
#[derive(Debug, Clone, Copy, Default)]
struct Received {
    len: usize,
    timestamp: Option<TimeSpec>,
    /// The GRO segment size when the message is a run of datagrams.
    segment: Option<usize>,
}

/// One `recvmmsg` on `socket` into `bufs`, what each message was in `meta`; how many.
fn read_messages(
    socket: &impl AsRawFd,
    headers: &mut MultiHeaders<SockaddrStorage>,
    bufs: &mut [Vec<u8>],
    meta: &mut [Received],
) -> nix::Result<usize> {
    let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
        .iter_mut()
        .take(meta.len())
        .map(|b| [IoSliceMut::new(&mut b[..])])
        .collect();
    let results = recvmmsg(
        socket.as_raw_fd(),
        headers,
        iovs.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )?;
    let mut n = 0;
    for (msg, slot) in results.zip(meta.iter_mut()) {
        *slot = Received {
            len: msg.bytes,
            ..Received::default()
        };
        for c in msg.cmsgs().into_iter().flatten() {
            match c {
                ControlMessageOwned::ScmTimestampns(t) => slot.timestamp = Some(t),
                ControlMessageOwned::UdpGroSegments(size) if size > 0 => {
                    slot.segment = Some(size as usize)
                }
                _ => {}
            }
        }
        n += 1;
    }
    // The kernel shortens each header's control length to what it wrote, and nix (0.31) does
    // not restore it before the next call: a message with only a timestamp would leave too
    // little room for the next one's GRO segment size, which then arrives truncated (the run
    // read as one datagram). Fresh headers for the next call.
    if n > 0 {
        *headers = new_headers();
    }
    Ok(n)
}

/// Headers for [`read_messages`]: room for a receive timestamp and a GRO segment size.
fn new_headers() -> MultiHeaders<SockaddrStorage> {
    MultiHeaders::preallocate(BATCH, Some(cmsg_space!(TimeSpec, i32)))
}

/// The datagrams of one received message: a GRO run is cut at the segment size the kernel
/// reported (the last one may be shorter); a plain message is one datagram.
fn datagrams(message: &[u8], segment: Option<usize>) -> std::slice::Chunks<'_, u8> {
    let size = segment.unwrap_or(message.len()).max(1);
    message.chunks(size)
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
                if event == sfu::testing::client::ClientEvent::Connected {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A GSO send of a frame (equal-sized packets and a shorter last one) to a GRO socket on
    /// loopback: whether the kernel hands it over as one run or datagram by datagram, the
    /// reader gets every datagram back, whole and in order.
    #[test]
    fn reads_a_gso_run_back_as_its_datagrams() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        setsockopt(&rx, sockopt::UdpGroSegment, &true).unwrap();
        setsockopt(&rx, sockopt::ReceiveTimestampns, &true).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let frame: Vec<Vec<u8>> = (0..8u8)
            .map(|i| vec![i; if i == 7 { 300 } else { 1200 }])
            .collect();
        let queued: Vec<(SocketAddr, &[u8])> = frame.iter().map(|d| (to, &d[..])).collect();
        let mut sender = sfu::net::udp_batch::GsoSender::new(true);
        let mut headers = new_headers();
        let mut bufs = vec![vec![0u8; MESSAGE_BUF]; BATCH];
        let mut meta = [Received::default(); BATCH];
        // First a lone datagram (a timestamp only: the kernel shortens the control length it
        // is given), then the run, read with the same headers.
        tx.send_to(b"lone", to).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            read_messages(&rx, &mut headers, &mut bufs, &mut meta),
            Ok(1)
        );
        assert_eq!(meta[0].segment, None);
        assert_eq!(&bufs[0][..meta[0].len], b"lone");
        assert_eq!(sender.send(&tx, &queued), 0);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.len() < frame.len() && Instant::now() < deadline {
            let n = read_messages(&rx, &mut headers, &mut bufs, &mut meta).unwrap_or(0);
            for (m, buf) in meta.iter().zip(&bufs).take(n) {
                assert!(
                    m.timestamp.is_some(),
                    "kernel receive time on every message"
                );
                got.extend(datagrams(&buf[..m.len], m.segment).map(<[u8]>::to_vec));
            }
        }
        assert_eq!(got, frame);
    }

    #[test]
    fn gro_runs_split_at_the_segment_size() {
        let run: Vec<u8> = (0..10u8).collect();
        let parts: Vec<&[u8]> = datagrams(&run, Some(4)).collect();
        assert_eq!(parts, [&[0, 1, 2, 3][..], &[4, 5, 6, 7], &[8, 9]]);
        let whole: Vec<&[u8]> = datagrams(&run, None).collect();
        assert_eq!(whole, [&run[..]]);
        assert_eq!(
            datagrams(&[], None).count(),
            0,
            "an empty message is no datagram"
        );
    }

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
