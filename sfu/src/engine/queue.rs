//! Outgoing datagrams in one reusable buffer: forwarding writes and protects each packet in
//! place here, so the hot path allocates nothing once the buffer has grown to its working size.

use std::time::Instant;

use crate::webrtc::PeerAddr;

#[derive(Debug, Clone, Copy)]
struct Entry {
    to: PeerAddr,
    start: usize,
    len: usize,
    /// When the media packet this datagram forwards arrived (none for anything else).
    origin: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct TransmitQueue {
    data: Vec<u8>,
    entries: Vec<Entry>,
    head: usize,
}

impl TransmitQueue {
    /// Queues a copy of `datagram`.
    pub fn push(&mut self, to: PeerAddr, datagram: &[u8]) {
        self.compact();
        let start = self.data.len();
        self.data.extend_from_slice(datagram);
        self.entries.push(Entry {
            to,
            start,
            len: datagram.len(),
            origin: None,
        });
    }

    /// Queues a datagram built in place: `parts` are copied in, `reserve` zero bytes follow,
    /// then `finish` gets the datagram's bytes and the written length and returns the final
    /// length (or `None` to drop it). `origin`: when the media packet it forwards arrived.
    pub fn push_built(
        &mut self,
        to: PeerAddr,
        origin: Option<Instant>,
        parts: &[&[u8]],
        reserve: usize,
        finish: impl FnOnce(&mut [u8], usize) -> Option<usize>,
    ) -> Option<usize> {
        self.compact();
        let start = self.data.len();
        for part in parts {
            self.data.extend_from_slice(part);
        }
        let written = self.data.len() - start;
        self.data.resize(start + written + reserve, 0);
        match finish(&mut self.data[start..], written) {
            Some(len) if len <= written + reserve => {
                self.data.truncate(start + len);
                self.entries.push(Entry {
                    to,
                    start,
                    len,
                    origin,
                });
                Some(len)
            }
            _ => {
                self.data.truncate(start);
                None
            }
        }
    }

    /// The next datagram, if any. Its bytes stay valid until the queue is next changed.
    pub fn pop(&mut self) -> Option<(PeerAddr, &[u8])> {
        if self.head >= self.entries.len() {
            self.clear();
            return None;
        }
        let entry = self.entries[self.head];
        self.head += 1;
        Some((entry.to, &self.data[entry.start..entry.start + entry.len]))
    }

    /// The datagrams not yet handed out, in order.
    pub fn pending(&self) -> impl Iterator<Item = (PeerAddr, &[u8])> {
        self.entries
            .get(self.head..)
            .unwrap_or_default()
            .iter()
            .map(|e| (e.to, &self.data[e.start..e.start + e.len]))
    }

    /// When the media each pending datagram forwards arrived, in the order of
    /// [`TransmitQueue::pending`].
    pub fn pending_origins(&self) -> impl Iterator<Item = Option<Instant>> + '_ {
        self.entries
            .get(self.head..)
            .unwrap_or_default()
            .iter()
            .map(|e| e.origin)
    }

    /// Datagrams not yet handed out.
    pub fn len(&self) -> usize {
        self.entries.len().saturating_sub(self.head)
    }

    /// Bytes of the datagrams held (sent ones included until the queue is cleared).
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the queue and gives back memory beyond `bytes` of datagram space (a queue that
    /// once held a keyframe for every viewer need not keep that much while idle).
    pub fn clear_and_shrink(&mut self, bytes: usize) {
        self.clear();
        if self.data.capacity() > bytes {
            self.data.shrink_to(bytes);
            self.entries.shrink_to(bytes / 1024);
        }
    }

    /// Forgets datagrams already handed out, once all of them are.
    fn compact(&mut self) {
        if self.head > 0 && self.head >= self.entries.len() {
            self.clear();
        }
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_builds_and_drains_in_order() {
        let a = PeerAddr::direct("127.0.0.1:1".parse().unwrap());
        let b = PeerAddr::relayed("127.0.0.1:2".parse().unwrap());
        let mut q = TransmitQueue::default();
        q.push(a, b"one");
        let arrived = Instant::now();
        let built = q.push_built(b, Some(arrived), &[b"tw", b"o"], 4, |buf, n| {
            buf[n] = b'!';
            Some(n + 1)
        });
        assert_eq!(built, Some(4));
        assert_eq!(
            q.push_built(a, None, &[b"x"], 0, |_, _| None),
            None,
            "dropped"
        );
        let origins: Vec<Option<Instant>> = q.pending_origins().collect();
        assert_eq!(
            origins,
            [None, Some(arrived)],
            "only forwarded media has one"
        );
        assert_eq!(q.pop(), Some((a, &b"one"[..])));
        assert_eq!(q.pop(), Some((b, &b"two!"[..])));
        assert_eq!(q.pop(), None);
        q.push(b, b"three");
        let seen: Vec<(PeerAddr, Vec<u8>)> = q.pending().map(|(to, d)| (to, d.to_vec())).collect();
        assert_eq!(seen, vec![(b, b"three".to_vec())]);
        q.clear();
        assert_eq!(q.pop(), None);
        q.push(a, &[0u8; 4096]);
        q.clear_and_shrink(1024);
        assert!(q.is_empty());
        assert!(q.data.capacity() <= 1024, "{}", q.data.capacity());
        q.push(a, b"after");
        assert_eq!(q.pop(), Some((a, &b"after"[..])));
    }
}
