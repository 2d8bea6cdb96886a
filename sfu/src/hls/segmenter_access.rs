//! What the HTTP layer and the playlist writer read from a [`Segmenter`].

use bytes::Bytes;

use super::{Lookup, Segment, Segmenter};
use crate::hls::blocking::Progress;
use crate::hls::fmp4::{AUDIO_TIMESCALE, VIDEO_TIMESCALE};
use crate::hls::sps::parse_sps;

impl Segmenter {
    /// The init segment `init{id}.mp4`, while a kept segment refers to it.
    pub fn init(&self, id: u32) -> Option<Bytes> {
        self.inits
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, b)| b.clone())
    }

    /// Complete segments, oldest first.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter()
    }

    /// The segment being built, with the parts published so far.
    pub fn open_segment(&self) -> Option<&Segment> {
        self.open.as_ref()
    }

    /// The whole segment `seg{msn}.m4s`; only complete segments are served.
    pub fn segment(&self, msn: u64) -> Lookup {
        match self.segments.iter().find(|s| s.msn == msn) {
            Some(segment) => segment.data.clone().map_or(Lookup::NotFound, Lookup::Found),
            None => Lookup::NotFound,
        }
    }

    /// The part `part{msn}.{index}.m4s`: found, the next one of the open segment (hold the
    /// request), or gone/never existing.
    pub fn part(&self, msn: u64, index: u32) -> Lookup {
        if let Some(segment) = self.segments.iter().find(|s| s.msn == msn) {
            return segment
                .parts
                .get(index as usize)
                .map_or(Lookup::NotFound, |p| Lookup::Found(p.data.clone()));
        }
        let progress = self.progress();
        match &self.open {
            Some(open) if open.msn == msn => match open.parts.get(index as usize) {
                Some(part) => Lookup::Found(part.data.clone()),
                None if index == progress.open_parts => Lookup::Pending,
                None => Lookup::NotFound,
            },
            // Before the first segment opens, the hint points at part 0 of segment 0.
            None if !self.ended && msn == progress.open_msn && index == 0 => Lookup::Pending,
            _ => Lookup::NotFound,
        }
    }

    /// The position of the live edge, for blocking playlist reload.
    pub fn progress(&self) -> Progress {
        let (open_msn, open_parts) = match &self.open {
            Some(open) => (open.msn, open.parts.len() as u32),
            None => (self.next_msn, 0),
        };
        Progress {
            open_msn,
            open_parts,
            part_target: self.config.part_target.as_secs_f64(),
            target_duration: self.target_duration,
        }
    }

    /// EXT-X-TARGETDURATION: the longest segment so far, rounded, never shrinking.
    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// The id of the init segment new segments use.
    pub fn current_init_id(&self) -> u32 {
        self.init_id
    }

    /// The picture size, once the first SPS was seen.
    pub fn resolution(&self) -> Option<(u32, u32)> {
        self.video_params.as_ref().map(|v| (v.width, v.height))
    }

    /// RFC 6381 codecs of the stream (`avc1.PPCCLL`, `opus`), once video parameters are known
    /// (audio only: at once).
    pub fn codecs(&self) -> Option<Vec<String>> {
        let mut codecs = Vec::new();
        if self.has_video {
            let params = self.video_params.as_ref()?;
            codecs.push(parse_sps(&params.sps).ok()?.codec_string());
        }
        if self.audio.is_some() {
            codecs.push("opus".to_owned());
        }
        Some(codecs)
    }

    /// The peak bit rate over the kept segments, in bits per second.
    pub fn peak_bandwidth(&self) -> Option<u64> {
        self.segments
            .iter()
            .filter(|s| s.duration > 0.0)
            .map(|s| {
                let bytes = s.data.as_ref().map_or(0, |d| d.len());
                (bytes as f64 * 8.0 / s.duration).ceil() as u64
            })
            .max()
    }

    /// The timescale of the track that drives the cuts.
    pub fn main_timescale(&self) -> u32 {
        if self.has_video {
            VIDEO_TIMESCALE
        } else {
            AUDIO_TIMESCALE
        }
    }
}
