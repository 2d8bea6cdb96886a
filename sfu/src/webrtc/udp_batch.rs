//! Batched UDP sends: many datagrams, many destinations, one `sendmmsg` system call.
//!
//! This module holds the only `unsafe` of the data plane. Fan-out sends one packet to every
//! viewer, so consecutive datagrams go to different addresses: `sendmmsg` is what batches them.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::SockAddr;

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
        // SAFETY: `headers[..n]` point at `iovecs[..n]` and entries of `self.addrs`, which outlive the
        // call; each iovec covers a live `&[u8]` the kernel only reads. The fd is open for the
        // duration of the borrow of `socket`.
        let sent = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(sent as usize)
        }
    }
}

impl Default for SendBatch<'_> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

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
}
