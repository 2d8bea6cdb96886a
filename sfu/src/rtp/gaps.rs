//! Which packets of an inbound RTP stream never arrived, so the server can ask the publisher to
//! send them again (RFC 4585 generic NACK), and asks again a couple of times when the NACK or
//! the retransmission was lost too. Sans-IO: time is a parameter.

use std::time::{Duration, Instant};

/// The sequence numbers a stream has skipped so far, found as packets arrive.
#[derive(Debug, Clone, Copy, Default)]
pub struct SequenceGaps {
    highest: Option<u16>,
}

/// Jumps longer than this are a restarted or badly broken stream, not loss worth repairing:
/// the stream resynchronises instead (NACKing hundreds of packets would only add load).
pub const MAX_REPAIRABLE_GAP: u16 = 64;

impl SequenceGaps {
    /// Notes a received sequence number; returns the run it shows missing as
    /// (first missing, count). Late packets and duplicates reveal nothing.
    pub fn on_packet(&mut self, sequence: u16) -> Option<(u16, u16)> {
        let Some(highest) = self.highest else {
            self.highest = Some(sequence);
            return None;
        };
        let ahead = sequence.wrapping_sub(highest);
        if ahead == 0 || ahead >= 0x8000 {
            return None;
        }
        self.highest = Some(sequence);
        if ahead == 1 || ahead > MAX_REPAIRABLE_GAP + 1 {
            return None;
        }
        Some((highest.wrapping_add(1), ahead - 1))
    }
}

/// How long a gap waits before the first NACK: a packet that was only reordered (jitter on the
/// path) arrives within this and needs no retransmission.
pub const REORDER_HOLD: Duration = Duration::from_millis(20);
/// How long to wait for a retransmission before asking again (a publisher's round trip is
/// rarely longer on the paths r58 serves).
pub const RETRY_AFTER: Duration = Duration::from_millis(150);
/// NACKs sent for one packet at most, the first included.
pub const MAX_TRIES: u8 = 3;
/// Packets waited for at most; beyond it the oldest are given up (a keyframe request repairs
/// what is left).
pub const MAX_PENDING: usize = 128;

#[derive(Debug, Clone, Copy)]
struct Pending {
    sequence: u16,
    next_at: Instant,
    tries: u8,
}

/// Packets NACKed and not yet received.
#[derive(Debug, Clone, Default)]
pub struct PendingRepair {
    pending: Vec<Pending>,
}

impl PendingRepair {
    /// `count` packets from `first` on are missing: NACK them unless they arrive within
    /// [`REORDER_HOLD`].
    pub fn missing(&mut self, now: Instant, first: u16, count: u16) {
        for i in 0..count {
            if self.pending.len() >= MAX_PENDING {
                self.pending.remove(0);
            }
            self.pending.push(Pending {
                sequence: first.wrapping_add(i),
                next_at: now + REORDER_HOLD,
                tries: 0,
            });
        }
    }

    /// A packet arrived: stop waiting for it.
    pub fn received(&mut self, sequence: u16) {
        if !self.pending.is_empty() {
            self.pending.retain(|p| p.sequence != sequence);
        }
    }

    /// The packets to NACK now (each at most [`MAX_TRIES`] times in all).
    pub fn due(&mut self, now: Instant) -> Vec<u16> {
        let mut out = Vec::new();
        self.pending.retain_mut(|p| {
            if p.next_at > now {
                return true;
            }
            if p.tries >= MAX_TRIES {
                return false;
            }
            p.tries += 1;
            p.next_at = now + RETRY_AFTER;
            out.push(p.sequence);
            true
        });
        out
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// When [`PendingRepair::due`] next has something to say (a packet to NACK, or one to
    /// give up on).
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.next_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_again_until_received_or_out_of_tries() {
        let t0 = Instant::now();
        let mut r = PendingRepair::default();
        r.missing(t0, 10, 4);
        // Reordered, not lost: it arrives before the first NACK.
        r.received(13);
        assert!(r.due(t0 + Duration::from_millis(10)).is_empty());
        let first = t0 + REORDER_HOLD;
        assert_eq!(r.due(first), vec![10, 11, 12]);
        r.received(11);
        assert!(r.due(first + Duration::from_millis(100)).is_empty());
        assert_eq!(r.due(first + RETRY_AFTER), vec![10, 12]);
        assert_eq!(r.due(first + RETRY_AFTER * 2), vec![10, 12]);
        // Three NACKs in all: then it is given up.
        assert!(r.due(first + RETRY_AFTER * 3).is_empty());
        assert!(r.is_empty());
        let mut r = PendingRepair::default();
        r.missing(t0, 0, MAX_PENDING as u16 + 5);
        assert_eq!(r.pending.len(), MAX_PENDING);
        assert_eq!(r.pending[0].sequence, 5);
    }

    #[test]
    fn finds_runs_of_missing_packets_across_the_wrap() {
        let mut g = SequenceGaps::default();
        assert_eq!(g.on_packet(65_530), None);
        assert_eq!(g.on_packet(65_531), None);
        assert_eq!(g.on_packet(65_534), Some((65_532, 2)));
        assert_eq!(g.on_packet(2), Some((65_535, 3)));
        // The late ones and a duplicate change nothing.
        assert_eq!(g.on_packet(65_532), None);
        assert_eq!(g.on_packet(2), None);
        assert_eq!(g.on_packet(3), None);
        // A jump past the repairable gap resynchronises quietly.
        assert_eq!(g.on_packet(3 + MAX_REPAIRABLE_GAP + 2), None);
        assert_eq!(
            g.on_packet(3 + MAX_REPAIRABLE_GAP + 4),
            Some((3 + MAX_REPAIRABLE_GAP + 3, 1))
        );
        assert_eq!(
            g.on_packet(80),
            Some((3 + MAX_REPAIRABLE_GAP + 5, 80 - 3 - MAX_REPAIRABLE_GAP - 5))
        );
    }
}
