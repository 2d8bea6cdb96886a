//! Recent packets of one track, kept so NACKs can be answered without asking the publisher.
//!
//! The history lives once per published track, in the publisher's sequence space; each viewer
//! maps its own sequence numbers back through its rewriter, so history costs nothing per viewer.

use bytes::Bytes;

/// One packet as the publisher sent it (header fields the rewriter needs, and the payload).
#[derive(Debug, Clone)]
pub struct StoredPacket {
    pub epoch: u32,
    pub sequence: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Bytes,
}

/// A ring of the last `capacity` packets, indexed by sequence number.
#[derive(Debug)]
pub struct History {
    slots: Vec<Option<StoredPacket>>,
}

impl History {
    /// `capacity` is rounded up to a power of two so the index is a mask.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1).next_power_of_two();
        Self {
            slots: vec![None; capacity],
        }
    }

    fn slot(&self, sequence: u16) -> usize {
        usize::from(sequence) & (self.slots.len() - 1)
    }

    pub fn insert(&mut self, packet: StoredPacket) {
        let slot = self.slot(packet.sequence);
        self.slots[slot] = Some(packet);
    }

    /// The stored packet with this epoch and sequence number, if it is still in the ring.
    pub fn get(&self, epoch: u32, sequence: u16) -> Option<&StoredPacket> {
        self.slots[self.slot(sequence)]
            .as_ref()
            .filter(|p| p.sequence == sequence && p.epoch == epoch)
    }

    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(epoch: u32, sequence: u16) -> StoredPacket {
        StoredPacket {
            epoch,
            sequence,
            timestamp: 0,
            marker: false,
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn keeps_recent_and_forgets_overwritten() {
        let mut h = History::new(4);
        for seq in 65534..=65535u16 {
            h.insert(pkt(1, seq));
        }
        for seq in 0..3u16 {
            h.insert(pkt(1, seq));
        }
        assert!(h.get(1, 65534).is_none(), "overwritten by seq 2");
        assert!(h.get(1, 65535).is_some());
        assert!(h.get(1, 2).is_some());
        assert!(h.get(2, 2).is_none(), "other epoch");
    }
}
