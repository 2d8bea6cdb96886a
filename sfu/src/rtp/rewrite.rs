//! Per-viewer sequence number and timestamp rewriting.
//!
//! A viewer sees one SSRC per track for its whole session. When the source behind it changes
//! (a publisher reloads and takes the stream over), the new source's numbering is spliced on so
//! the viewer's sequence numbers stay contiguous and its timestamps keep advancing with wall time.

use std::time::Instant;

/// Maps one source's (epoch's) sequence numbers and timestamps into the viewer's space.
#[derive(Debug, Clone)]
pub struct Rewriter {
    clock_rate: u32,
    epoch: Option<u32>,
    seq_delta: u16,
    ts_delta: u32,
    last_out_seq: u16,
    last_out_ts: u32,
    last_out_at: Option<Instant>,
    /// The viewer-space sequence number the current mapping starts at: numbers before it were
    /// mapped from another source or another run of this one.
    first_out_seq: u16,
}

impl Rewriter {
    /// `initial_seq` / `initial_ts` are the viewer-space values of the first packet (random, per
    /// RFC 3550, chosen by the caller).
    pub fn new(clock_rate: u32, initial_seq: u16, initial_ts: u32) -> Self {
        Self {
            clock_rate,
            epoch: None,
            seq_delta: 0,
            ts_delta: 0,
            last_out_seq: initial_seq.wrapping_sub(1),
            last_out_ts: initial_ts,
            last_out_at: None,
            first_out_seq: initial_seq,
        }
    }

    /// The source epoch this viewer is currently synced to.
    pub fn epoch(&self) -> Option<u32> {
        self.epoch
    }

    /// Starts following a new source (or the same source again after a gap) at a packet with
    /// `seq`/`ts`: it becomes the next sequence number, and its timestamp continues from the
    /// last one sent plus the time since, so the viewer sees no loss and no jump back in time.
    pub fn splice(&mut self, now: Instant, epoch: u32, seq: u16, ts: u32) {
        let elapsed_ticks = self.last_out_at.map_or(0, |at| {
            let micros = now.saturating_duration_since(at).as_micros();
            (micros * u128::from(self.clock_rate) / 1_000_000).min(u128::from(u32::MAX / 2)) as u32
        });
        let out_seq = self.last_out_seq.wrapping_add(1);
        let out_ts = self.last_out_ts.wrapping_add(elapsed_ticks.max(1));
        self.epoch = Some(epoch);
        self.first_out_seq = out_seq;
        self.seq_delta = out_seq.wrapping_sub(seq);
        self.ts_delta = out_ts.wrapping_sub(ts);
    }

    /// Viewer-space (sequence, timestamp) of a packet from the synced epoch.
    pub fn map(&mut self, now: Instant, seq: u16, ts: u32) -> (u16, u32) {
        let out = (
            seq.wrapping_add(self.seq_delta),
            ts.wrapping_add(self.ts_delta),
        );
        // Track the newest packet only, so a retransmission does not move the splice point back.
        if self.last_out_at.is_none() || is_newer(out.0, self.last_out_seq) {
            self.last_out_seq = out.0;
            self.last_out_ts = out.1;
            self.last_out_at = Some(now);
        }
        out
    }

    /// The viewer-space timestamp of a source timestamp (for Sender Reports).
    pub fn out_timestamp(&self, ts: u32) -> u32 {
        ts.wrapping_add(self.ts_delta)
    }

    /// The source packet (epoch, sequence number) behind a viewer-space sequence number (for
    /// NACKs). `None` for numbers sent before the last splice: the mapping that made them is
    /// gone, and the current one would name an unrelated packet.
    pub fn source_of(&self, out_seq: u16) -> Option<(u32, u16)> {
        let epoch = self.epoch?;
        if is_newer(self.first_out_seq, out_seq) {
            return None;
        }
        Some((epoch, out_seq.wrapping_sub(self.seq_delta)))
    }
}

/// RFC 1982 serial number comparison for 16-bit sequence numbers.
pub fn is_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn first_source_starts_at_initial_values() {
        let now = Instant::now();
        let mut r = Rewriter::new(90_000, 1000, 5000);
        r.splice(now, 1, 40_000, 123_456);
        assert_eq!(r.map(now, 40_000, 123_456), (1000, 5001));
        assert_eq!(r.map(now, 40_001, 126_456), (1001, 8001));
        assert_eq!(r.source_of(1001), Some((1, 40_001)));
    }

    #[test]
    fn takeover_keeps_sequence_contiguous_and_time_advancing() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000, 65_535, 0);
        r.splice(t0, 1, 10, 1000);
        let (s1, ts1) = r.map(t0, 10, 1000);
        let (s2, ts2) = r.map(t0, 11, 1000);
        assert_eq!((s1, s2), (65_535, 0), "wraps");
        assert_eq!(ts1, ts2);
        // new publisher 500 ms later with unrelated numbering
        let t1 = t0 + Duration::from_millis(500);
        r.splice(t1, 2, 777, 9_999_999);
        let (s3, ts3) = r.map(t1, 777, 9_999_999);
        assert_eq!(s3, 1);
        assert_eq!(ts3.wrapping_sub(ts2), 45_000);
        assert_eq!(r.source_of(1), Some((2, 777)));
        assert_eq!(
            r.source_of(0),
            None,
            "a number sent before the splice maps to no packet of the new source"
        );
    }

    #[test]
    fn a_splice_within_one_source_skips_the_gap() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000, 500, 0);
        r.splice(t0, 1, 1000, 90_000);
        r.map(t0, 1000, 90_000);
        r.map(t0, 1001, 93_000);
        // Packets 1002..=1099 were not sent (the server caught up); 1100 starts a keyframe.
        let t1 = t0 + Duration::from_millis(400);
        r.splice(t1, 1, 1100, 126_000);
        assert_eq!(r.map(t1, 1100, 126_000), (502, 3001 + 36_000));
        assert_eq!(r.source_of(502), Some((1, 1100)));
        assert_eq!(r.source_of(501), None, "sent under the old mapping");
        assert_eq!(r.source_of(600), Some((1, 1198)));
    }

    #[test]
    fn retransmission_does_not_rewind() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(48_000, 100, 0);
        r.splice(t0, 1, 0, 0);
        r.map(t0, 0, 0);
        r.map(t0, 5, 4800);
        r.map(t0, 2, 1920); // a retransmission
        r.splice(t0, 2, 50, 0);
        assert_eq!(r.map(t0, 50, 0).0, 106);
    }

    #[test]
    fn serial_comparison() {
        assert!(is_newer(1, 0));
        assert!(is_newer(0, 65535));
        assert!(!is_newer(65535, 0));
        assert!(!is_newer(7, 7));
    }
}
