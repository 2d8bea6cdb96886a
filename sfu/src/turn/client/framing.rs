//! Frames out of a TCP or TLS byte stream to the TURN server (RFC 8656 §12.5): STUN messages
//! and ChannelData back to back, each frame's length in its first four bytes, ChannelData
//! padded to a multiple of 4.
//!
//! Feed whatever the socket read returned to [`StreamFramer::push`] (split anywhere), then take
//! frames with [`StreamFramer::next_frame`] until it says `None`; hand each to
//! [`super::TurnClient::handle_input`]. The buffer is bounded: a frame is at most
//! [`MAX_FRAME`] bytes, so anything that does not fit `limit` means the driver did not drain
//! frames or fed a giant chunk, and a stream whose first bytes are not TURN cannot be
//! resynchronised. Both are errors after which the connection must be dropped; nothing grows
//! without bound.

use thiserror::Error;

use super::wire::{self, WireError};

/// The longest frame: a STUN message with the largest length divisible by 4 (65532).
pub const MAX_FRAME: usize = wire::STUN_HEADER + 65_532;
/// The default bound on buffered bytes: one frame short of complete plus a 64 KiB read.
pub const DEFAULT_LIMIT: usize = MAX_FRAME + 65_536;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("the TURN stream is not TURN: {0}")]
    Garbage(#[from] WireError),
    #[error("{buffered} bytes buffered plus a {chunk}-byte chunk exceed the {limit}-byte limit")]
    Overflow {
        buffered: usize,
        chunk: usize,
        limit: usize,
    },
}

/// See the module documentation.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Start of the bytes not yet returned as a frame.
    start: usize,
    limit: usize,
    /// Set by the first error: a stream that went wrong once stays wrong.
    failed: Option<FramingError>,
}

impl Default for StreamFramer {
    fn default() -> Self {
        Self::new(DEFAULT_LIMIT)
    }
}

impl StreamFramer {
    /// A framer buffering at most `limit` bytes (at least [`MAX_FRAME`]).
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            limit: limit.max(MAX_FRAME),
            failed: None,
        }
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), FramingError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        // Drop the frames already handed out; their borrows ended with this `&mut self`.
        // Copying the (at most one partial frame) rest forward keeps the buffer's capacity, so
        // a steady stream does not allocate.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len() + chunk.len() > self.limit {
            let error = FramingError::Overflow {
                buffered: self.buf.len(),
                chunk: chunk.len(),
                limit: self.limit,
            };
            self.failed = Some(error.clone());
            return Err(error);
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FramingError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let rest = &self.buf[self.start..];
        let len = match wire::stream_frame_len(rest) {
            Ok(Some(len)) if len <= rest.len() => len,
            Ok(_) => return Ok(None),
            Err(error) => {
                let error = FramingError::Garbage(error);
                self.failed = Some(error.clone());
                return Err(error);
            }
        };
        let frame = &self.buf[self.start..self.start + len];
        self.start += len;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn::client::wire::{decode_channel_data, encode_channel_data};

    /// A STUN-shaped frame (Binding indication) with `body` bytes of attributes.
    fn stun_frame(body: usize, fill: u8) -> Vec<u8> {
        let mut f = vec![0x00, 0x11];
        f.extend_from_slice(&(body as u16).to_be_bytes());
        f.extend_from_slice(&wire::MAGIC_COOKIE.to_be_bytes());
        f.extend_from_slice(&[fill; 12]);
        f.extend(std::iter::repeat_n(fill, body));
        f
    }

    fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut frames = Vec::new();
        for (i, len) in [0usize, 1, 2, 3, 4, 5, 7, 33].into_iter().enumerate() {
            let mut f = Vec::new();
            encode_channel_data(0x4000 + i as u16, &vec![i as u8; len], true, &mut f).unwrap();
            frames.push(f);
            frames.push(stun_frame(len * 4, i as u8));
        }
        (frames.concat(), frames)
    }

    fn drain(framer: &mut StreamFramer, got: &mut Vec<Vec<u8>>) {
        while let Some(frame) = framer.next_frame().unwrap() {
            got.push(frame.to_vec());
        }
    }

    #[test]
    fn split_at_every_offset_gives_the_same_frames() {
        let (bytes, frames) = stream();
        for cut in 0..=bytes.len() {
            let mut framer = StreamFramer::default();
            let mut got = Vec::new();
            framer.push(&bytes[..cut]).unwrap();
            drain(&mut framer, &mut got);
            framer.push(&bytes[cut..]).unwrap();
            drain(&mut framer, &mut got);
            assert_eq!(got, frames, "split at {cut}");
            assert_eq!(framer.buffered(), 0);
        }
    }

    #[test]
    fn byte_by_byte_and_padding_is_consumed() {
        let (bytes, frames) = stream();
        let mut framer = StreamFramer::default();
        let mut got = Vec::new();
        for b in &bytes {
            framer.push(std::slice::from_ref(b)).unwrap();
            drain(&mut framer, &mut got);
        }
        assert_eq!(got, frames);
        // The ChannelData frames decode to their payloads, padding excluded.
        let (ch, payload) = decode_channel_data(&got[4]).unwrap();
        assert_eq!((ch, payload.len()), (0x4002, 2));
    }

    #[test]
    fn garbage_is_an_error_that_sticks() {
        let mut framer = StreamFramer::default();
        // A TLS ServerHello's first bytes: a TLS server where plain TCP was configured.
        framer
            .push(b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03")
            .unwrap();
        assert!(matches!(framer.next_frame(), Err(FramingError::Garbage(_))));
        assert!(framer.push(&[0; 4]).is_err());
        assert!(framer.next_frame().is_err());
    }

    #[test]
    fn huge_declared_length_waits_within_the_limit_then_overflows() {
        let mut framer = StreamFramer::default();
        // A ChannelData header announcing 65535 bytes: legal, so the framer waits for it ...
        framer.push(&[0x40, 0x00, 0xFF, 0xFF]).unwrap();
        assert_eq!(framer.next_frame(), Ok(None));
        let chunk = vec![0u8; 60_000];
        framer.push(&chunk).unwrap();
        assert_eq!(framer.next_frame(), Ok(None));
        // Never drained: the next chunk goes over the limit.
        framer.push(&chunk).unwrap();
        framer.push(&chunk).unwrap_err();
        // ... but an undrained flood is refused, not buffered.
        assert!(framer.buffered() <= DEFAULT_LIMIT);
        assert!(matches!(
            framer.next_frame(),
            Err(FramingError::Overflow { .. })
        ));
    }

    #[test]
    fn largest_frames_fit() {
        let mut framer = StreamFramer::default();
        let mut ch = Vec::new();
        encode_channel_data(0x4FFF, &vec![9; 65_535], true, &mut ch).unwrap();
        let stun = stun_frame(65_532, 3);
        assert_eq!(stun.len(), MAX_FRAME);
        framer.push(&ch).unwrap();
        framer.push(&stun[..10]).unwrap();
        assert_eq!(
            framer.next_frame().unwrap().map(<[u8]>::len),
            Some(ch.len())
        );
        assert_eq!(framer.next_frame(), Ok(None));
        framer.push(&stun[10..]).unwrap();
        assert_eq!(
            framer.next_frame().unwrap().map(<[u8]>::len),
            Some(MAX_FRAME)
        );
    }
}
