//! Readers that live outside the engine (the LL-HLS muxer, the recorder, the switcher): each gets
//! the stream's packets through its own bounded queue. A reader that falls behind loses packets,
//! counts them, and its video resumes at the next keyframe; the publisher never waits for it.

use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc::{self, Receiver, Sender, error::TrySendError};

/// One packet as a reader sees it: what the publisher sent, plus what ingest learned.
#[derive(Debug, Clone)]
pub struct ReaderPacket {
    pub track: usize,
    /// Changes when a new publisher took the stream over: numbering restarts, parameters may
    /// differ (a discontinuity for the reader).
    pub epoch: u32,
    pub sequence: u16,
    pub timestamp: u32,
    pub marker: bool,
    /// The first packet of a keyframe (video): a decoder can start here.
    pub keyframe_start: bool,
    /// When the packet reached the server.
    pub arrival: Instant,
    pub payload: Bytes,
}

/// The sending half, kept by the stream.
#[derive(Debug)]
pub struct ReaderSlot {
    pub kind: &'static str,
    tx: Sender<ReaderPacket>,
    /// After a loss, video waits for a keyframe (audio continues).
    waiting_keyframe: bool,
    pub dropped: u64,
}

/// What offering a packet to a reader did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Delivered,
    Skipped,
    Dropped,
    /// The reader went away; remove the slot.
    Closed,
}

impl ReaderSlot {
    /// A new reader with a queue of `capacity` packets; it starts waiting for a keyframe.
    pub fn new(kind: &'static str, capacity: usize) -> (Self, Receiver<ReaderPacket>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                kind,
                tx,
                waiting_keyframe: true,
                dropped: 0,
            },
            rx,
        )
    }

    /// Offers `packet` (of a video track when `is_video`); never blocks.
    pub fn offer(&mut self, packet: &ReaderPacket, is_video: bool) -> Offer {
        if is_video && self.waiting_keyframe {
            if !packet.keyframe_start {
                return Offer::Skipped;
            }
            self.waiting_keyframe = false;
        }
        match self.tx.try_send(packet.clone()) {
            Ok(()) => Offer::Delivered,
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                if is_video {
                    self.waiting_keyframe = true;
                }
                Offer::Dropped
            }
            Err(TrySendError::Closed(_)) => Offer::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(sequence: u16, keyframe_start: bool) -> ReaderPacket {
        ReaderPacket {
            track: 0,
            epoch: 1,
            sequence,
            timestamp: 0,
            marker: false,
            keyframe_start,
            arrival: Instant::now(),
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn starts_at_a_keyframe_drops_when_full_and_resyncs() {
        let (mut slot, mut rx) = ReaderSlot::new("hls", 2);
        assert_eq!(slot.offer(&packet(1, false), true), Offer::Skipped);
        assert_eq!(slot.offer(&packet(2, true), true), Offer::Delivered);
        assert_eq!(slot.offer(&packet(3, false), true), Offer::Delivered);
        assert_eq!(slot.offer(&packet(4, false), true), Offer::Dropped);
        assert_eq!(slot.dropped, 1);
        assert_eq!(rx.try_recv().map(|p| p.sequence).ok(), Some(2));
        assert_eq!(rx.try_recv().map(|p| p.sequence).ok(), Some(3));
        assert_eq!(
            slot.offer(&packet(5, false), true),
            Offer::Skipped,
            "after a loss video waits for the next keyframe"
        );
        assert_eq!(
            slot.offer(&packet(6, false), false),
            Offer::Delivered,
            "audio continues"
        );
        assert_eq!(slot.offer(&packet(7, true), true), Offer::Delivered);
        drop(rx);
        assert_eq!(slot.offer(&packet(8, true), true), Offer::Closed);
    }
}
