#![forbid(unsafe_code)]
//! Reading the media socket with the kernel's receive time of each datagram.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Reads datagrams with the kernel's receive timestamp (`SO_TIMESTAMPNS`), so the time a
/// datagram waited in the socket buffer is known. (Right after the first socket on the host
/// asks for timestamps, the kernel may still stamp a datagram when it is read: its wait then
/// shows as about zero.)
#[derive(Debug)]
pub struct TimestampedReceiver {
    /// Room for the timestamp's control message, reused for every read.
    control: Vec<u8>,
}

/// One datagram read by [`TimestampedReceiver::recv`].
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
    /// How long ago the kernel received it (none without a timestamp). The kernel stamps with
    /// the wall clock: if the clock is stepped forward between the receive and the read (NTP
    /// setting it at boot), the datagrams waiting at that moment show the step as their wait.
    pub waited: Option<Duration>,
}

impl TimestampedReceiver {
    /// Asks the kernel to timestamp what `socket` receives.
    pub fn new(socket: &impl std::os::fd::AsFd) -> io::Result<Self> {
        nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
            .map_err(io::Error::from)?;
        Ok(Self {
            control: nix::cmsg_space!(nix::sys::time::TimeSpec),
        })
    }

    /// Reads one datagram into `buf` without blocking (`WouldBlock` when there is none).
    pub fn recv(&mut self, socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<Received> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
        let mut iov = [io::IoSliceMut::new(buf)];
        let message = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut self.control),
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        let from = message
            .address
            .and_then(|a| {
                a.as_sockaddr_in()
                    .map(|v4| SocketAddr::V4((*v4).into()))
                    .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into())))
            })
            .ok_or_else(|| io::Error::other("a datagram without a source address"))?;
        let mut waited = None;
        for control in message.cmsgs().into_iter().flatten() {
            if let ControlMessageOwned::ScmTimestampns(at) = control {
                let at = std::time::UNIX_EPOCH
                    + Duration::new(at.tv_sec().max(0) as u64, at.tv_nsec().max(0) as u32);
                waited = Some(
                    std::time::SystemTime::now()
                        .duration_since(at)
                        .unwrap_or_default(),
                );
            }
        }
        Ok(Received {
            len: message.bytes,
            from,
            waited,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    /// The receiver reads each datagram with its source, and says how long ago the kernel
    /// took it in: a datagram left unread for 20 ms shows a wait of at least that.
    ///
    /// The kernel turns receive timestamping on asynchronously the first time any socket asks
    /// (a static key flipped from a work queue); until then a datagram is stamped when it is
    /// read. So the test tries a few datagrams: each must carry a timestamp and a sane wait,
    /// and once stamping is on, the wait must show.
    #[test]
    fn a_timestamped_read_tells_how_long_the_datagram_waited() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut receiver = TimestampedReceiver::new(&rx).expect("SO_TIMESTAMPNS");
        let mut buf = [0u8; 64];
        let none = receiver.recv(&rx, &mut buf);
        assert_eq!(
            none.map(|r| r.len).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
        let mut waits = Vec::new();
        for attempt in 0..50u8 {
            tx.send_to(&[attempt], rx.local_addr().unwrap()).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            let got = receiver.recv(&rx, &mut buf).expect("a datagram");
            assert_eq!(&buf[..got.len], &[attempt]);
            assert_eq!(got.from, tx.local_addr().unwrap());
            let waited = got.waited.expect("a timestamp");
            assert!(waited < Duration::from_secs(5), "{waited:?}");
            waits.push(waited);
            if waited >= Duration::from_millis(19) {
                return;
            }
        }
        panic!("no datagram showed its 20 ms wait: {waits:?}");
    }
}
