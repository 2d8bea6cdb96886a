//! Synthetic media for the tests: H.264 and Opus packets, and helpers to read them back.

use super::*;

/// Synthetic H.264 (packetization-mode 1) and Opus, one RTP packet list per access unit.
pub struct Source {
    pub video_seq: u16,
    pub video_ts: u32,
    pub frame: u32,
    pub audio_seq: u16,
    pub audio_ts: u32,
    pub audio_n: u32,
    pub next_video: Instant,
    pub next_audio: Instant,
    /// Max FU-A fragment size.
    pub mtu: usize,
    /// Bytes of an IDR slice.
    pub idr_size: usize,
    /// Tag distinguishing this source's payloads from another publisher's.
    pub tag: u8,
}

pub fn is_keyframe_frame(frame: u32) -> bool {
    frame.is_multiple_of(GOP)
}

impl Source {
    pub fn new(now: Instant, tag: u8) -> Self {
        Self {
            video_seq: 1000,
            video_ts: 0,
            frame: 0,
            audio_seq: 5000,
            audio_ts: 0,
            audio_n: 0,
            next_video: now,
            next_audio: now,
            mtu: 1000,
            idr_size: 3500,
            tag,
        }
    }

    /// The packets of the next video access unit.
    pub fn video_frame(&mut self) -> Vec<Out> {
        let frame = self.frame;
        self.frame += 1;
        let ts = self.video_ts;
        self.video_ts = self.video_ts.wrapping_add(VIDEO_CLOCK / 30);
        // Each NAL's payload starts with (tag, frame, packet index) so every RTP payload is
        // unique and identifies its frame.
        let mark = |index: u32| -> Vec<u8> {
            let mut v = vec![self.tag];
            v.extend_from_slice(&frame.to_be_bytes());
            v.extend_from_slice(&index.to_be_bytes());
            v
        };
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        if is_keyframe_frame(frame) {
            let mut sps = vec![0x67, 0x42, 0xe0, 0x1f];
            sps.extend(mark(0));
            let pps = vec![0x68, 0xce, 0x3c, 0x80];
            let mut stap = vec![0x78]; // F=0 NRI=3 type 24
            for nal in [&sps, &pps] {
                stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
                stap.extend_from_slice(nal);
            }
            payloads.push(stap);
            let fragments = self.idr_size.div_ceil(self.mtu);
            for k in 0..fragments {
                let mut fu = vec![0x7c]; // FU indicator: NRI=3 type 28
                let mut header = 5u8; // IDR
                if k == 0 {
                    header |= 0x80;
                }
                if k + 1 == fragments {
                    header |= 0x40;
                }
                fu.push(header);
                fu.extend(mark(k as u32 + 1));
                fu.resize(2 + self.mtu.min(self.idr_size - k * self.mtu), 0xab);
                payloads.push(fu);
            }
        } else {
            let mut nal = vec![0x41]; // NRI=2 type 1: non-IDR slice
            nal.extend(mark(0));
            nal.resize(300, 0xcd);
            payloads.push(nal);
        }
        let n = payloads.len();
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let seq = self.video_seq;
                self.video_seq = self.video_seq.wrapping_add(1);
                Out {
                    sequence: seq,
                    timestamp: ts,
                    marker: i + 1 == n,
                    payload: Bytes::from(p),
                    unit: frame,
                    index: i as u32,
                }
            })
            .collect()
    }

    pub fn audio_packet(&mut self) -> Out {
        let n = self.audio_n;
        self.audio_n += 1;
        let seq = self.audio_seq;
        self.audio_seq = self.audio_seq.wrapping_add(1);
        let ts = self.audio_ts;
        self.audio_ts = self.audio_ts.wrapping_add(960);
        let mut payload = vec![0xfc, self.tag];
        payload.extend_from_slice(&n.to_be_bytes());
        Out {
            sequence: seq,
            timestamp: ts,
            marker: false,
            payload: Bytes::from(payload),
            unit: n,
            index: 0,
        }
    }

    /// Sends whatever is due at `net.now` from publisher `p`; returns the video frames sent.
    pub fn tick(&mut self, net: &mut Net, p: usize) -> TestResult<Vec<u32>> {
        let now = net.now;
        let mut frames = Vec::new();
        while self.next_video <= now {
            self.next_video += FRAME_INTERVAL;
            frames.push(self.frame);
            for pkt in self.video_frame() {
                net.peers[p].send_rtp(now, Kind::Video, pkt)?;
            }
        }
        while self.next_audio <= now {
            self.next_audio += AUDIO_INTERVAL;
            let pkt = self.audio_packet();
            net.peers[p].send_rtp(now, Kind::Audio, pkt)?;
        }
        Ok(frames)
    }

    /// Streams for `total` of virtual time in 1 ms steps.
    pub fn stream_for(&mut self, net: &mut Net, p: usize, total: Duration) -> TestResult {
        self.next_video = self.next_video.max(net.now);
        self.next_audio = self.next_audio.max(net.now);
        let end = net.now + total;
        while net.now < end {
            self.tick(net, p)?;
            net.step(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Streams until `frame` is the next video frame to send.
    pub fn stream_until_frame(&mut self, net: &mut Net, p: usize, frame: u32) -> TestResult {
        self.next_video = self.next_video.max(net.now);
        self.next_audio = self.next_audio.max(net.now);
        while self.frame < frame {
            self.tick(net, p)?;
            net.step(Duration::from_millis(1));
        }
        Ok(())
    }
}

/// A short description of an H.264 RTP payload: `STAP-A[7,8]`, `FU-A[5,S]`, `NAL[1]`.
pub fn describe_h264(payload: &[u8]) -> String {
    let Some(&first) = payload.first() else {
        return "empty".into();
    };
    match first & 0x1f {
        24 => {
            let mut types = Vec::new();
            let mut rest = &payload[1..];
            while rest.len() >= 2 {
                let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                if rest.len() < 2 + len || len == 0 {
                    break;
                }
                types.push((rest[2] & 0x1f).to_string());
                rest = &rest[2 + len..];
            }
            format!("STAP-A[{}]", types.join(","))
        }
        28 => {
            let h = payload.get(1).copied().unwrap_or(0);
            format!(
                "FU-A[{}{}{}]",
                h & 0x1f,
                if h & 0x80 != 0 { ",S" } else { "" },
                if h & 0x40 != 0 { ",E" } else { "" }
            )
        }
        t => format!("NAL[{t}]"),
    }
}

/// The consecutive pairs in `seqs` that do not differ by exactly one (empty: contiguous).
pub fn gaps(seqs: &[u16]) -> Vec<(u16, u16)> {
    seqs.windows(2)
        .filter(|w| w[1] != w[0].wrapping_add(1))
        .map(|w| (w[0], w[1]))
        .collect()
}
