//! The stream registry: named streams, their tracks, keyframe caches and retransmission history.
//!
//! The hub is plain data owned by the engine; sources write packets into it and the engine fans
//! each packet out to the viewers the stream lists. Nothing here waits on a reader.

pub mod reader;
mod stream;

pub use reader::{ReaderPacket, ReaderSlot};
pub use stream::{Admission, IngestOutcome, Stream, Track, TrackStats, UnsentPacket};

use std::collections::HashMap;

/// All named streams.
#[derive(Default)]
pub struct Hub {
    streams: HashMap<String, Stream>,
}

impl Hub {
    pub fn get(&self, name: &str) -> Option<&Stream> {
        self.streams.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Stream> {
        self.streams.get_mut(name)
    }

    pub fn insert(&mut self, stream: Stream) -> Option<Stream> {
        self.streams.insert(stream.name().to_owned(), stream)
    }

    pub fn remove(&mut self, name: &str) -> Option<Stream> {
        self.streams.remove(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Stream> {
        self.streams.values()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Stream> {
        self.streams.values_mut()
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}
