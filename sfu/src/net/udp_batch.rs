//! Batched UDP sends: many datagrams, many destinations, one `sendmmsg` system call.
//!
//! This module holds the only `unsafe` of the data plane. Fan-out sends one packet to every
//! viewer, so consecutive datagrams go to different addresses: `sendmmsg` is what batches them.
//! [`GsoSender`] goes further: it regroups a flush's datagrams by destination, and the packets
//! of one frame to one viewer (equal-sized FU-A fragments) leave as one UDP GSO message
//! (`UDP_SEGMENT`), which the kernel splits into datagrams far more cheaply than it handles
//! separate messages.
// `sendmmsg` with GSO control messages has no safe wrapper that batches (workspace lints).
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::SockAddr;

use crate::engine::SendCounts;
use crate::engine::delay::DelayHistogram;

/// Datagrams per system call.
pub const BATCH: usize = 64;

/// Datagrams collected for one `sendmmsg` call. Reused between calls.
pub struct SendBatch<'a> {
    addrs: Vec<SockAddr>,
    payloads: Vec<&'a [u8]>,
}

impl<'a> SendBatch<'a> {
    pub fn new() -> Self {
        Self {
            addrs: Vec::with_capacity(BATCH),
            payloads: Vec::with_capacity(BATCH),
        }
    }

    pub fn push(&mut self, to: SocketAddr, payload: &'a [u8]) {
        self.addrs.push(SockAddr::from(to));
        self.payloads.push(payload);
    }

    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.payloads.len() >= BATCH
    }

    pub fn clear(&mut self) {
        self.addrs.clear();
        self.payloads.clear();
    }

    /// Sends every datagram it can; returns how many the socket refused (its buffer was full,
    /// or the kernel rejected them), which the caller counts as dropped.
    pub fn send_all(&self, socket: &impl AsRawFd) -> usize {
        let mut start = 0;
        while start < self.payloads.len() {
            match self.send_from(socket, start) {
                Ok(0) => break,
                Ok(sent) => start += sent,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A datagram the kernel refuses (an unreachable address) must not block the
                // rest: skip it.
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => start += 1,
                Err(_) => break,
            }
        }
        self.payloads.len() - start.min(self.payloads.len())
    }

    /// Sends the batch from index `start` on, as far as the socket takes it now; returns how
    /// many went out. `WouldBlock` when the socket buffer is full before the first one.
    pub fn send_from(&self, socket: &impl AsRawFd, start: usize) -> io::Result<usize> {
        let n = self.payloads.len().saturating_sub(start).min(BATCH);
        if n == 0 {
            return Ok(0);
        }
        let mut iovecs: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: mmsghdr is a plain C struct for which all-zero bytes is a valid value.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..n {
            let payload = self.payloads[start + i];
            let addr = &self.addrs[start + i];
            iovecs[i] = libc::iovec {
                iov_base: payload.as_ptr() as *mut libc::c_void,
                iov_len: payload.len(),
            };
            let header = &mut headers[i].msg_hdr;
            header.msg_name = addr.as_ptr() as *mut libc::c_void;
            header.msg_namelen = addr.len();
            header.msg_iov = &mut iovecs[i];
            header.msg_iovlen = 1;
        }
        // SAFETY: `headers[..n]` point at `iovecs[..n]` and entries of `self.addrs`, which
        // outlive the call; each iovec covers a live `&[u8]` the kernel only reads.
        unsafe { sendmmsg(socket, &mut headers[..n]) }
    }
}

/// One non-blocking `sendmmsg` of `headers`; how many messages the kernel took.
///
/// # Safety
/// Every header's name, iovecs and control data must point at memory that stays valid (and
/// is not written) until the call returns.
unsafe fn sendmmsg(socket: &impl AsRawFd, headers: &mut [libc::mmsghdr]) -> io::Result<usize> {
    // SAFETY: the caller vouches for what the headers point at; the fd is open for the
    // duration of the borrow of `socket`, and the length passed is the slice's.
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            headers.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

impl Default for SendBatch<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// Most segments the kernel accepts in one GSO message (`UDP_MAX_SEGMENTS`).
const MAX_SEGMENTS: usize = 64;
/// Most payload bytes of one GSO message (a UDP datagram's limit, less headers).
const MAX_GSO_BYTES: usize = 65_000;
/// Iovecs per `sendmmsg` call of the GSO path.
const MAX_IOVECS: usize = 512;
const NONE: u32 = u32::MAX;

/// One message of a flush: `count` datagrams to `to`, listed from `first` in `order`, of which
/// all but the last are `segment` bytes long.
#[derive(Debug, Clone, Copy)]
struct Message {
    to: SocketAddr,
    first: u32,
    count: u32,
    segment: u16,
}

/// Sends a flush's datagrams grouped by destination, runs of equal size as one GSO message,
/// in `sendmmsg` batches. Holds its scratch between flushes: no allocation per datagram.
#[derive(Debug)]
pub struct GsoSender {
    gso: bool,
    patience: Duration,
    counts: SendCounts,
    last: HashMap<SocketAddr, u32, rustc_hash::FxBuildHasher>,
    next: Vec<u32>,
    heads: Vec<u32>,
    lens: Vec<usize>,
    order: Vec<u32>,
    messages: Vec<Message>,
}

impl Default for GsoSender {
    fn default() -> Self {
        Self::new(true)
    }
}

impl GsoSender {
    /// `gso` false sends one datagram per message (still batched and grouped).
    pub fn new(gso: bool) -> Self {
        Self {
            gso,
            patience: Duration::ZERO,
            counts: SendCounts::default(),
            last: HashMap::default(),
            next: Vec::new(),
            heads: Vec::new(),
            lens: Vec::new(),
            order: Vec::new(),
            messages: Vec::new(),
        }
    }

    /// Lets [`GsoSender::send`] wait, up to `patience` per call, for room in a full socket
    /// buffer before it drops the rest: a keyframe to hundreds of viewers can outrun the
    /// buffer for a few milliseconds, and is worth that delay more than its loss (every viewer
    /// would ask for a keyframe again).
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// Whether GSO is (still) in use: it is turned off for good the first time the kernel
    /// refuses a GSO message.
    pub fn gso_enabled(&self) -> bool {
        self.gso
    }

    /// What was sent since the last call.
    pub fn take_counts(&mut self) -> SendCounts {
        std::mem::take(&mut self.counts)
    }

    /// Sends `datagrams`; returns how many were dropped (socket buffer full, or refused).
    /// Datagrams to one destination keep their order.
    pub fn send(&mut self, socket: &impl AsRawFd, datagrams: &[(SocketAddr, &[u8])]) -> usize {
        self.send_timed(socket, datagrams, None)
    }

    /// [`GsoSender::send`], recording in `delays` how long each datagram with an origin
    /// (`origins`, one per datagram: when the media it forwards arrived) waited until the
    /// `sendmmsg` that took it returned.
    pub fn send_timed(
        &mut self,
        socket: &impl AsRawFd,
        datagrams: &[(SocketAddr, &[u8])],
        mut timing: Option<(&[Option<Instant>], &mut DelayHistogram)>,
    ) -> usize {
        self.plan(datagrams);
        let mut dropped = 0;
        let mut start = 0;
        let mut deadline = None;
        while start < self.messages.len() {
            match self.send_from(socket, datagrams, start) {
                Ok(0) => break,
                Ok(sent) => {
                    if let Some((origins, delays)) = timing.as_mut() {
                        let now = Instant::now();
                        for m in &self.messages[start..start + sent] {
                            for &i in &self.order[m.first as usize..(m.first + m.count) as usize] {
                                if let Some(Some(origin)) = origins.get(i as usize) {
                                    delays.record(now.saturating_duration_since(*origin));
                                }
                            }
                        }
                    }
                    self.counts.syscalls += 1;
                    self.counts.messages += sent as u64;
                    self.counts.datagrams += self.messages[start..start + sent]
                        .iter()
                        .map(|m| u64::from(m.count))
                        .sum::<u64>();
                    start += sent;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let deadline = *deadline.get_or_insert_with(|| Instant::now() + self.patience);
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || !wait_writable(socket, left) {
                        break;
                    }
                    self.counts.waits += 1;
                }
                Err(_) if self.messages[start].count > 1 && self.gso => {
                    // The kernel or device refuses GSO (EIO, EINVAL): send singly from now on.
                    tracing::warn!("UDP GSO refused by the kernel; sending datagrams singly");
                    self.gso = false;
                    let rest: Vec<(SocketAddr, &[u8])> = self.messages[start..]
                        .iter()
                        .flat_map(|m| {
                            self.order[m.first as usize..(m.first + m.count) as usize]
                                .iter()
                                .map(|&i| datagrams[i as usize])
                        })
                        .collect();
                    return dropped + self.send(socket, &rest);
                }
                // One message the kernel refuses (an unreachable address) must not block the
                // rest: skip it.
                Err(_) => {
                    dropped += self.messages[start].count as usize;
                    start += 1;
                }
            }
        }
        dropped
            + self.messages[start.min(self.messages.len())..]
                .iter()
                .map(|m| m.count as usize)
                .sum::<usize>()
    }

    /// Groups the datagrams by destination (first-seen order) and cuts each group into
    /// messages: a run of equal lengths, closed by a shorter one, up to the GSO limits.
    fn plan(&mut self, datagrams: &[(SocketAddr, &[u8])]) {
        self.last.clear();
        self.heads.clear();
        self.order.clear();
        self.messages.clear();
        self.next.clear();
        self.next.resize(datagrams.len(), NONE);
        self.lens.clear();
        self.lens.extend(datagrams.iter().map(|(_, d)| d.len()));
        for (i, (to, _)) in datagrams.iter().enumerate() {
            let i = i as u32;
            match self.last.get_mut(to) {
                Some(tail) => {
                    self.next[*tail as usize] = i;
                    *tail = i;
                }
                None => {
                    self.last.insert(*to, i);
                    self.heads.push(i);
                }
            }
        }
        for h in 0..self.heads.len() {
            let mut i = self.heads[h];
            let to = datagrams[i as usize].0;
            let mut open: Option<Message> = None;
            let mut bytes = 0;
            while i != NONE {
                let len = self.lens[i as usize];
                let fits = |m: &Message| {
                    self.gso
                        && (m.count as usize) < MAX_SEGMENTS
                        && bytes + len <= MAX_GSO_BYTES
                        && len <= usize::from(m.segment)
                        && len <= usize::from(u16::MAX)
                };
                match open.as_mut() {
                    Some(m) if fits(m) => {
                        m.count += 1;
                        bytes += len;
                        if len < usize::from(m.segment) {
                            // A shorter datagram can only end a GSO message.
                            self.messages.push(*m);
                            open = None;
                        }
                    }
                    _ => {
                        if let Some(m) = open.take() {
                            self.messages.push(m);
                        }
                        open = Some(Message {
                            to,
                            first: self.order.len() as u32,
                            count: 1,
                            segment: u16::try_from(len).unwrap_or(u16::MAX),
                        });
                        bytes = len;
                    }
                }
                self.order.push(i);
                i = self.next[i as usize];
            }
            if let Some(m) = open {
                self.messages.push(m);
            }
        }
    }

    /// One `sendmmsg` of the messages from `start` on, as many as fit; returns how many went.
    fn send_from(
        &self,
        socket: &impl AsRawFd,
        datagrams: &[(SocketAddr, &[u8])],
        start: usize,
    ) -> io::Result<usize> {
        // A cmsghdr and a u16, padded: CMSG_SPACE(2) is 24 on 64-bit Linux; u64 for alignment.
        const CMSG_WORDS: usize = 4;
        let mut iovecs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_IOVECS];
        let mut addrs: [Option<SockAddr>; BATCH] = [const { None }; BATCH];
        let mut controls = [[0u64; CMSG_WORDS]; BATCH];
        // SAFETY: mmsghdr is a plain C struct for which all-zero bytes is a valid value.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut n = 0;
        let mut used = 0;
        for m in self.messages[start..].iter().take(BATCH) {
            let count = m.count as usize;
            if used + count > MAX_IOVECS {
                break;
            }
            for (k, &index) in self.order[m.first as usize..m.first as usize + count]
                .iter()
                .enumerate()
            {
                let payload = datagrams[index as usize].1;
                iovecs[used + k] = libc::iovec {
                    iov_base: payload.as_ptr() as *mut libc::c_void,
                    iov_len: payload.len(),
                };
            }
            let addr = addrs[n].insert(SockAddr::from(m.to));
            let header = &mut headers[n].msg_hdr;
            header.msg_name = addr.as_ptr() as *mut libc::c_void;
            header.msg_namelen = addr.len();
            header.msg_iov = &mut iovecs[used];
            header.msg_iovlen = count;
            if count > 1 {
                let control = &mut controls[n];
                header.msg_control = control.as_mut_ptr() as *mut libc::c_void;
                // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
                header.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as usize;
                // SAFETY: msg_control points at `control`, CMSG_SPACE(2) <= its 32 bytes and
                // 8-byte aligned, so the first header and its 2 data bytes lie inside it.
                unsafe {
                    let cmsg = libc::CMSG_FIRSTHDR(header);
                    (*cmsg).cmsg_level = libc::SOL_UDP;
                    (*cmsg).cmsg_type = UDP_SEGMENT;
                    (*cmsg).cmsg_len = libc::CMSG_LEN(2) as usize;
                    std::ptr::copy_nonoverlapping(
                        m.segment.to_ne_bytes().as_ptr(),
                        libc::CMSG_DATA(cmsg),
                        2,
                    );
                }
            }
            used += count;
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: `headers[..n]` point at `iovecs`, `addrs` and `controls`, which live on this
        // frame until the call returns, and each iovec covers a live `&[u8]` the kernel only
        // reads.
        unsafe { sendmmsg(socket, &mut headers[..n]) }
    }
}

/// Waits up to `timeout` for `socket` to have room to send; whether it has.
fn wait_writable(socket: &impl AsRawFd, timeout: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // Rounded up: a sub-millisecond rest must still wait, not spin.
    let millis = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one pollfd, valid for the call; the fd is open for the borrow of `socket`.
    let ready = unsafe { libc::poll(&mut poll, 1, millis) };
    match ready {
        // Interrupted: let the caller try the send again.
        r if r < 0 => io::Error::last_os_error().kind() == io::ErrorKind::Interrupted,
        0 => false,
        _ => poll.revents & libc::POLLOUT != 0,
    }
}

/// `UDP_SEGMENT` from linux/udp.h (libc exports it only for some targets).
const UDP_SEGMENT: libc::c_int = 103;

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    /// A full socket makes the sender wait until the reader makes room, and no longer than
    /// it was told. (A UDP socket on loopback never fills: the kernel hands each datagram to
    /// the receiver at once. A datagram socket pair does, when its reader falls behind.)
    #[test]
    fn waits_for_room_in_a_full_socket_then_gives_up() {
        use std::os::unix::net::UnixDatagram;
        let (tx, rx) = UnixDatagram::pair().unwrap();
        tx.set_nonblocking(true).unwrap();
        assert!(wait_writable(&tx, Duration::from_millis(1)), "empty: room");
        while tx.send(&[0u8; 1024]).is_ok() {}
        let started = Instant::now();
        assert!(
            !wait_writable(&tx, Duration::from_millis(30)),
            "full: no room"
        );
        assert!(started.elapsed() >= Duration::from_millis(25), "it waited");
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            // A datagram socket is writable again once most of its buffer is free.
            rx.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 2048];
            while rx.recv(&mut buf).is_ok() {}
            rx
        });
        let started = Instant::now();
        assert!(
            wait_writable(&tx, Duration::from_secs(10)),
            "room once the reader reads"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "woken, not timed out"
        );
        drop(reader.join().unwrap());
    }

    #[test]
    fn sends_to_several_destinations_in_one_call() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx1 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx2 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = SendBatch::new();
        batch.push(rx1.local_addr().unwrap(), b"first");
        batch.push(rx2.local_addr().unwrap(), b"second");
        batch.push(rx1.local_addr().unwrap(), b"third");
        assert_eq!(batch.send_all(&tx), 0, "nothing refused");
        let mut buf = [0u8; 16];
        let (n, _) = rx1.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first");
        let (n, _) = rx1.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"third");
        let (n, from) = rx2.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"second"[..], tx.local_addr().unwrap())
        );
    }

    fn receive_all(rx: &UdpSocket) -> Vec<Vec<u8>> {
        rx.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = rx.recv_from(&mut buf) {
            out.push(buf[..n].to_vec());
        }
        out
    }

    /// Two viewers' frames interleaved as fan-out queues them (each packet to every viewer in
    /// turn): every viewer receives exactly its datagrams, in order, whether they leave as GSO
    /// runs (equal sizes, a shorter last one, a longer one that starts a new run) or singly.
    fn grouped_send_delivers_each_viewers_datagrams_in_order(gso: bool) {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = [
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        ];
        let sizes = [40usize, 1200, 1200, 1200, 700, 1200, 1200, 90];
        let packets: Vec<Vec<Vec<u8>>> = (0..2u8)
            .map(|v| {
                sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| vec![v * 16 + i as u8; n])
                    .collect()
            })
            .collect();
        let mut datagrams = Vec::new();
        for i in 0..sizes.len() {
            for (viewer, rx) in packets.iter().zip(&rx) {
                datagrams.push((rx.local_addr().unwrap(), &viewer[i][..]));
            }
        }
        let mut sender = GsoSender::new(gso);
        assert_eq!(sender.send(&tx, &datagrams), 0, "nothing dropped");
        for (v, rx) in rx.iter().enumerate() {
            assert_eq!(receive_all(rx), packets[v], "viewer {v}");
        }
        let counts = sender.take_counts();
        assert_eq!(counts.datagrams, 16, "every datagram counted once");
        assert_eq!(counts.syscalls, 1, "one sendmmsg for two viewers' frames");
        if gso {
            // 40 | 1200 1200 1200 700 | 1200 1200 90, per viewer.
            assert_eq!(sender.messages.len(), 6);
            assert_eq!(counts.messages, 6);
            assert!(sender.gso_enabled(), "the kernel took GSO");
        } else {
            assert_eq!(counts.messages, 16);
        }
        assert_eq!(sender.take_counts(), SendCounts::default(), "taken");
    }

    #[test]
    fn gso_send_delivers_each_viewers_datagrams_in_order() {
        grouped_send_delivers_each_viewers_datagrams_in_order(true);
    }

    #[test]
    fn single_send_delivers_each_viewers_datagrams_in_order() {
        grouped_send_delivers_each_viewers_datagrams_in_order(false);
    }

    #[test]
    fn gso_messages_respect_the_segment_limit() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(false).unwrap();
        let payload = vec![7u8; 500];
        let to = rx.local_addr().unwrap();
        let datagrams: Vec<(SocketAddr, &[u8])> = (0..100).map(|_| (to, &payload[..])).collect();
        let mut sender = GsoSender::new(true);
        assert_eq!(sender.send(&tx, &datagrams), 0);
        assert_eq!(sender.messages.len(), 2, "64 + 36 segments");
        assert_eq!(receive_all(&rx).len(), 100);
    }

    /// A timed send records, for each datagram that forwards media, how long since the media
    /// arrived; datagrams without an origin are not counted.
    #[test]
    fn a_timed_send_records_each_forwarded_datagrams_wait() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let payload = vec![7u8; 300];
        let to = rx.local_addr().unwrap();
        let datagrams: Vec<(SocketAddr, &[u8])> = (0..10).map(|_| (to, &payload[..])).collect();
        let arrived = Instant::now() - Duration::from_millis(4);
        let origins: Vec<Option<Instant>> =
            (0..10).map(|i| (i % 2 == 0).then_some(arrived)).collect();
        let mut delays = DelayHistogram::default();
        let mut sender = GsoSender::new(true);
        let dropped = sender.send_timed(&tx, &datagrams, Some((&origins, &mut delays)));
        assert_eq!(dropped, 0);
        assert_eq!(delays.count(), 5, "the five with an origin");
        let slowest = delays.quantile_bound(1.0).expect("within the buckets");
        let fastest = delays.quantile_bound(0.0).expect("within the buckets");
        assert!(
            fastest >= Duration::from_millis(4) && slowest <= Duration::from_secs(1),
            "{fastest:?}..{slowest:?}"
        );
        assert!(delays.sum() >= Duration::from_millis(20));
        assert_eq!(receive_all(&rx).len(), 10);
    }
}
