//! Fuzz entry of the program audio mixer: whatever a source sends as Opus (any bytes, lengths,
//! sequence numbers and timing) through its jitter buffer, the decoder, the mix, the mix-minus
//! returns, the talkback and the encoder.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::switch::mixer::{AudioMixer, FRAME, Mode, Strip};

/// Packets taken from one input.
const MAX_PACKETS: usize = 32;

/// Fuzz entry: `data` as records `[source & ticks] [sequence] [length] [payload...]`: the first
/// byte picks one of four sources (low 2 bits) and how many 5 ms steps pass first (the rest);
/// then a sequence number byte and a payload length. Every frame the mixer makes must be a
/// frame (non-empty, not oversized), and the counters must add up.
pub fn mixer_packets(data: &[u8]) {
    let start = Instant::now();
    let Ok(mut mixer) = AudioMixer::new(start) else {
        return;
    };
    const SOURCES: [&str; 4] = ["a", "b", "c", "talk"];
    let on = Strip {
        gain_db: 6.0,
        mute: false,
        mode: Mode::On,
    };
    for name in &SOURCES[..3] {
        let _ = mixer.set_strip(name, on);
    }
    let _ = mixer.set_returns(["a", "b"]);
    mixer.set_talkback(Some(("talk", "a")));
    let mut now = start;
    let mut rest = data;
    let mut packets = 0u64;
    // Bounded work per input: each packet can make the mixer encode up to five frames.
    let mut budget = MAX_PACKETS;
    while let [head, sequence, len, tail @ ..] = rest {
        if budget == 0 {
            break;
        }
        budget -= 1;
        let len = usize::from(*len).min(tail.len());
        let (payload, after) = tail.split_at(len);
        rest = after;
        now += Duration::from_millis(5) * u32::from(head >> 2);
        let source = SOURCES[usize::from(head & 3)];
        if mixer
            .handle_packet(
                now,
                source,
                0,
                u16::from(*sequence),
                // On the sequence's timeline, with a jump wherever the head byte's top bits say.
                (u32::from(*sequence) * 960).wrapping_add(u32::from(head >> 6) << 30),
                Bytes::copy_from_slice(payload),
            )
            .is_ok()
        {
            packets += 1;
        }
        mixer.handle_timeout(now);
        drain(&mut mixer);
    }
    // Let the buffered packets play out.
    now += FRAME * 5;
    mixer.handle_timeout(now);
    drain(&mut mixer);
    let stats = mixer.stats();
    assert_eq!(stats.packets_in, packets);
    assert!(stats.waits <= stats.packets_in);
}

fn drain(mixer: &mut AudioMixer) {
    while let Some(frame) = mixer.poll_frame() {
        assert!(!frame.payload.is_empty() && frame.payload.len() <= 1500);
    }
    while let Some(frame) = mixer.poll_return() {
        assert!(!frame.payload.is_empty() && frame.payload.len() <= 1500);
    }
}

/// Seeds: a second of real Opus from two sources and the talkback, in order and shuffled.
pub fn mixer_packets_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let Ok(mut encoder) =
        opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Audio)
    else {
        return Vec::new();
    };
    let mut phase = 0f32;
    let mut frames = Vec::new();
    for _ in 0..50 {
        let mut pcm = vec![0f32; 960 * 2];
        for s in pcm.chunks_exact_mut(2) {
            let v = 0.3 * phase.sin();
            s[0] = v;
            s[1] = v;
            phase = (phase + 2.0 * std::f32::consts::PI * 440.0 / 48_000.0)
                % (2.0 * std::f32::consts::PI);
        }
        if let Ok(packet) = encoder.encode_vec_float(&pcm, 255) {
            frames.push(packet);
        }
    }
    let record = |out: &mut Vec<u8>, source: u8, ticks: u8, sequence: u8, payload: &[u8]| {
        out.push((ticks << 2) | source);
        out.push(sequence);
        out.push(payload.len() as u8);
        out.extend_from_slice(payload);
    };
    let mut in_order = Vec::new();
    let mut shuffled = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let i = i as u8;
        for source in [0, 1, 3] {
            record(&mut in_order, source, u8::from(source == 0) * 4, i, frame);
        }
        // Pairs swapped, one source late and one duplicated.
        let seq = if i.is_multiple_of(2) { i + 1 } else { i - 1 };
        record(&mut shuffled, 0, 4, seq, frame);
        record(&mut shuffled, 1, 0, i, frame);
        record(&mut shuffled, 1, 0, i, frame);
    }
    vec![("in_order.bin", in_order), ("shuffled.bin", shuffled)]
}
