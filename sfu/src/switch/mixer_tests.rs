//! The mixer on a virtual clock, with real Opus: tones encoded by libopus go in, the mixed
//! frames are decoded again and measured (Goertzel: the power at one frequency).

use std::f32::consts::PI;

use super::*;
use std::collections::BTreeMap;

const RATE: f32 = 48_000.0;

/// Encodes a sine of `freq` Hz at `amplitude` as 20 ms Opus frames.
/// A tone's RTP timestamp for its sequence number (20 ms packets).
fn ts(sequence: u16) -> u32 {
    u32::from(sequence) * 960
}

struct Tone {
    encoder: opus::Encoder,
    freq: f32,
    amplitude: f32,
    phase: f32,
    sequence: u16,
}

impl Tone {
    fn new(freq: f32, amplitude: f32) -> Self {
        let mut encoder =
            opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Audio)
                .expect("encoder");
        encoder
            .set_bitrate(opus::Bitrate::Bits(128_000))
            .expect("bitrate");
        Self {
            encoder,
            freq,
            amplitude,
            phase: 0.0,
            sequence: 1000,
        }
    }

    fn next(&mut self) -> (u16, Bytes) {
        let mut pcm = vec![0f32; FRAME_SAMPLES * 2];
        for frame in pcm.chunks_exact_mut(2) {
            let v = self.amplitude * self.phase.sin();
            frame[0] = v;
            frame[1] = v;
            self.phase = (self.phase + 2.0 * PI * self.freq / RATE) % (2.0 * PI);
        }
        let packet = self.encoder.encode_vec_float(&pcm, 1500).expect("encode");
        self.sequence = self.sequence.wrapping_add(1);
        (self.sequence, Bytes::from(packet))
    }
}

/// The magnitude of `freq` in `samples` (mono), as an amplitude.
fn goertzel(samples: &[f32], freq: f32) -> f32 {
    let w = 2.0 * PI * freq / RATE;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0f32, 0f32);
    for &x in samples {
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / samples.len() as f32
}

/// Runs the mixer for `frames` ticks: each source in `tones` sends one packet per tick (arriving
/// `jitter_ms` of its index late), and returns the decoded output (left channel) of all ticks.
struct Rig {
    mixer: AudioMixer,
    now: Instant,
    decoder: opus::Decoder,
    out: Vec<f32>,
}

impl Rig {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            mixer: AudioMixer::new(now).expect("mixer"),
            now,
            decoder: opus::Decoder::new(48_000, opus::Channels::Stereo).expect("decoder"),
            out: Vec::new(),
        }
    }

    fn run(&mut self, frames: usize, tones: &mut [(&str, &mut Tone)]) {
        for _ in 0..frames {
            for (name, tone) in tones.iter_mut() {
                let (seq, payload) = tone.next();
                self.mixer
                    .handle_packet(self.now, name, 0, seq, ts(seq), payload)
                    .expect("packet");
            }
            self.now += FRAME;
            self.mixer.handle_timeout(self.now);
            self.drain();
        }
    }

    /// Ticks with no packets.
    fn idle(&mut self, frames: usize) {
        for _ in 0..frames {
            self.now += FRAME;
            self.mixer.handle_timeout(self.now);
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(frame) = self.mixer.poll_frame() {
            let mut pcm = vec![0f32; FRAME_SAMPLES * 2];
            let n = self
                .decoder
                .decode_float(&frame.payload, &mut pcm, false)
                .expect("decode the mix");
            assert_eq!(n, FRAME_SAMPLES);
            self.out.extend(pcm.chunks_exact(2).map(|f| f[0]));
        }
    }

    /// The last `ms` of output.
    fn tail(&self, ms: usize) -> &[f32] {
        &self.out[self.out.len() - ms * 48..]
    }
}

fn on(gain_db: f32) -> Strip {
    Strip {
        gain_db,
        mute: false,
        mode: Mode::On,
    }
}

fn db(a: f32, b: f32) -> f32 {
    20.0 * (a / b).log10()
}

#[test]
fn two_sources_are_mixed_at_their_gains() {
    let mut rig = Rig::new();
    rig.mixer.set_strip("a", on(0.0)).expect("strip");
    rig.mixer.set_strip("b", on(-6.0)).expect("strip");
    let (mut a, mut b) = (Tone::new(440.0, 0.3), Tone::new(660.0, 0.3));
    rig.run(50, &mut [("a", &mut a), ("b", &mut b)]);
    let tail = rig.tail(500);
    let (m440, m660) = (goertzel(tail, 440.0), goertzel(tail, 660.0));
    println!(
        "440 Hz {m440:.3}, 660 Hz {m660:.3}, {:.1} dB apart",
        db(m440, m660)
    );
    assert!((m440 - 0.3).abs() < 0.03, "440 Hz at 0 dB: {m440}");
    assert!((db(m440, m660) - 6.0).abs() < 1.0, "660 Hz 6 dB lower");
    assert!(goertzel(tail, 1000.0) < 0.01, "no other tone");
    let stats = rig.mixer.stats();
    assert_eq!(stats.frames_out, 50);
    assert_eq!(stats.concealed, 0);
    assert_eq!(stats.decode_errors, 0);
}

#[test]
fn a_muted_or_off_source_is_silent_and_afv_follows_the_program() {
    let mut rig = Rig::new();
    rig.mixer
        .set_strip(
            "a",
            Strip {
                mute: true,
                ..on(0.0)
            },
        )
        .expect("strip");
    // b and c are afv (the default); c is on program.
    rig.mixer.set_program(Some("c"));
    let (mut a, mut b, mut c) = (
        Tone::new(440.0, 0.3),
        Tone::new(660.0, 0.3),
        Tone::new(880.0, 0.3),
    );
    let mut tones = [("a", &mut a), ("b", &mut b), ("c", &mut c)];
    rig.run(40, &mut tones);
    let tail = rig.tail(400);
    assert!(goertzel(tail, 440.0) < 0.005, "muted a");
    assert!(goertzel(tail, 660.0) < 0.005, "b is off program");
    assert!(goertzel(tail, 880.0) > 0.25, "c is on program");
    // Read: a (on, though muted: unmuting must be instant) and c (afv, on program).
    assert_eq!(rig.mixer.wanted_sources().collect::<Vec<_>>(), ["a", "c"]);
    // A cut to b: after the fade only b.
    rig.mixer.set_program(Some("b"));
    rig.run(20, &mut tones);
    let tail = rig.tail(300);
    assert!(goertzel(tail, 660.0) > 0.25);
    assert!(goertzel(tail, 880.0) < 0.005);
    // Off: never, even on program.
    rig.mixer
        .set_strip(
            "b",
            Strip {
                mode: Mode::Off,
                ..Strip::default()
            },
        )
        .expect("strip");
    rig.run(20, &mut tones);
    assert!(goertzel(rig.tail(300), 660.0) < 0.005);
}

#[test]
fn full_scale_sources_are_limited_not_clipped() {
    let mut rig = Rig::new();
    rig.mixer.set_strip("a", on(0.0)).expect("strip");
    rig.mixer.set_strip("b", on(6.0)).expect("strip");
    let (mut a, mut b) = (Tone::new(440.0, 0.95), Tone::new(660.0, 0.95));
    rig.run(50, &mut [("a", &mut a), ("b", &mut b)]);
    let (_, master) = rig.mixer.levels();
    println!(
        "master peak {:.2} dBFS, hold {:.2}",
        master.peak_db, master.hold_db
    );
    assert!(master.hold_db <= 20.0 * LIMIT.log10() + 0.01, "{master:?}");
    assert!(rig.mixer.stats().limited_frames > 40);
    // The decoded mix stays under full scale too (Opus adds a little ripple).
    let peak = rig.tail(500).iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(peak < 1.0, "decoded peak {peak}");
}

#[test]
fn a_source_that_stops_fades_out_and_one_that_starts_fades_in() {
    let mut rig = Rig::new();
    rig.mixer.set_strip("a", on(0.0)).expect("strip");
    let mut a = Tone::new(440.0, 0.5);
    rig.run(30, &mut [("a", &mut a)]);
    let before = rig.out.len();
    rig.idle(10);
    let after = &rig.out[before..];
    // Per 5 ms window: the level only falls after the last packet, and is silent by 60 ms.
    let rms = |w: &[f32]| (w.iter().map(|s| s * s).sum::<f32>() / w.len() as f32).sqrt();
    let windows: Vec<f32> = after.chunks(240).map(rms).collect();
    println!("after the stop, rms per 5 ms: {:.3?}", &windows[..14]);
    assert!(windows[12..].iter().all(|&w| w < 0.01), "silent by 60 ms");
    let largest_step = after
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0f32, f32::max);
    // A 440 Hz sine at 0.5 moves at most 0.5 * 2*pi*440/48000 = 0.029 per sample.
    assert!(largest_step < 0.05, "a click: a step of {largest_step}");
    // It comes back: fades in, no jump either.
    let before = rig.out.len();
    rig.run(20, &mut [("a", &mut a)]);
    let back = &rig.out[before..];
    let largest_step = back
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0f32, f32::max);
    assert!(largest_step < 0.05, "a click on return: {largest_step}");
    assert!(goertzel(rig.tail(200), 440.0) > 0.4);
}

#[test]
fn jitter_within_the_delay_is_absorbed_and_the_delay_is_bounded() {
    let mut rig = Rig::new();
    rig.mixer.set_strip("a", on(0.0)).expect("strip");
    let mut a = Tone::new(440.0, 0.3);
    // Packets in pairs swapped, each pair 10 ms late: reordered, never later than the delay.
    let mut start = rig.now;
    for _ in 0..50 {
        let first = a.next();
        let second = a.next();
        for (at, (seq, payload)) in [(10, second), (12, first)] {
            rig.mixer
                .handle_packet(
                    start + Duration::from_millis(at),
                    "a",
                    0,
                    seq,
                    ts(seq),
                    payload,
                )
                .expect("packet");
        }
        for _ in 0..2 {
            rig.now += FRAME;
            rig.mixer.handle_timeout(rig.now);
            rig.drain();
        }
        start += FRAME * 2;
    }
    let stats = rig.mixer.stats();
    let mean_wait = stats.wait_total_us as f64 / stats.waits as f64 / 1000.0;
    println!("{stats:?}, mean wait {mean_wait:.1} ms");
    assert_eq!(
        stats.concealed, 0,
        "reordering within the delay loses nothing"
    );
    assert_eq!(stats.packets_dropped, 0);
    let delay_ms = JITTER_DELAY.as_secs_f64() * 1000.0;
    assert!(mean_wait >= delay_ms && mean_wait <= delay_ms + 20.0 + 20.0);
}

#[test]
fn a_burst_is_bounded_and_garbage_is_counted_not_fatal() {
    let mut rig = Rig::new();
    rig.mixer.set_strip("a", on(0.0)).expect("strip");
    let mut a = Tone::new(440.0, 0.3);
    for _ in 0..40 {
        let (seq, payload) = a.next();
        rig.mixer
            .handle_packet(rig.now, "a", 0, seq, ts(seq), payload)
            .expect("packet");
    }
    assert_eq!(rig.mixer.stats().packets_dropped, 40 - MAX_BUFFERED as u64);
    rig.mixer
        .handle_packet(
            rig.now,
            "a",
            0,
            a.sequence.wrapping_add(1),
            ts(a.sequence.wrapping_add(1)),
            Bytes::from_static(&[0xff; 7]),
        )
        .expect("garbage is taken in");
    rig.idle(20);
    let stats = rig.mixer.stats();
    assert!(stats.decode_errors >= 1, "{stats:?}");
    assert_eq!(stats.frames_out, 20);
    assert!(matches!(
        rig.mixer.set_strip("a", on(40.0)),
        Err(MixerError::Gain(_))
    ));
    assert!(rig.mixer.set_master_db(f32::NAN).is_err());
}

#[test]
fn each_frame_says_when_its_voices_were_made_without_the_arrival_jitter() {
    // The program's sender reports map mixed audio to this instant, so it plays with the video
    // made at the same time, not 30-50 ms later; packets arriving 3-6 ms after they were sent
    // do not make that mapping jump.
    let mut rig = Rig::new();
    rig.mixer.set_strip("a", on(0.0)).expect("strip");
    let mut a = Tone::new(440.0, 0.3);
    let start = rig.now;
    let mut content = Vec::new();
    for k in 0..50u32 {
        let arrival = rig.now + Duration::from_millis(3 + u64::from(k % 4));
        let (seq, payload) = a.next();
        rig.mixer
            .handle_packet(arrival, "a", 0, seq, ts(seq), payload)
            .expect("packet");
        rig.now += FRAME;
        rig.mixer.handle_timeout(rig.now);
        while let Some(frame) = rig.mixer.poll_frame() {
            content.push((frame.at, frame.content_at));
        }
    }
    // Playing frames (their content is on the source's line: sent at start + k * 20 ms, the
    // fastest packets 3 ms later), less the encoder's look-ahead (6.5 ms for libopus at 48 kHz).
    let lookahead = Duration::from_micros(6_500);
    let playing: Vec<Duration> = content
        .iter()
        .map(|(_, c)| *c + lookahead - start)
        .filter(|since| (since.as_micros() as i64 - 3_000) % 20_000 == 0)
        .collect();
    assert!(
        playing.len() > 40,
        "{} frames on the line: {content:?}",
        playing.len()
    );
    assert!(
        playing.windows(2).all(|w| w[1] - w[0] == FRAME),
        "one frame apart: {playing:?}"
    );
    for (at, c) in &content {
        assert!(
            *at - *c <= JITTER_DELAY + FRAME + lookahead,
            "{:?}",
            *at - *c
        );
    }
}

#[test]
fn each_guest_hears_everyone_but_itself_and_the_talkback_reaches_one_guest() {
    let mut rig = Rig::new();
    for name in ["a", "b", "c"] {
        rig.mixer.set_strip(name, on(0.0)).expect("strip");
    }
    rig.mixer.set_returns(["a", "b"]).expect("returns");
    rig.mixer.set_talkback(Some(("talk", "a")));
    let (mut a, mut b, mut c, mut talk) = (
        Tone::new(440.0, 0.2),
        Tone::new(660.0, 0.2),
        Tone::new(880.0, 0.2),
        Tone::new(1000.0, 0.2),
    );
    let mut decoders: BTreeMap<String, opus::Decoder> = ["a", "b"]
        .into_iter()
        .map(|g| {
            let d = opus::Decoder::new(48_000, opus::Channels::Stereo).expect("decoder");
            (g.to_owned(), d)
        })
        .collect();
    let mut heard: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    for _ in 0..50 {
        rig.run(
            1,
            &mut [
                ("a", &mut a),
                ("b", &mut b),
                ("c", &mut c),
                ("talk", &mut talk),
            ],
        );
        while let Some(frame) = rig.mixer.poll_return() {
            let mut pcm = vec![0f32; FRAME_SAMPLES * 2];
            let decoder = decoders
                .get_mut(&frame.guest)
                .expect("a return we asked for");
            decoder
                .decode_float(&frame.payload, &mut pcm, false)
                .expect("decode a return");
            heard
                .entry(frame.guest)
                .or_default()
                .extend(pcm.chunks_exact(2).map(|f| f[0]));
        }
    }
    let tail = |v: &Vec<f32>| v[v.len() - 500 * 48..].to_vec();
    let level = |v: &[f32], f: f32| goertzel(v, f);
    let ra = tail(&heard["a"]);
    let rb = tail(&heard["b"]);
    let program = rig.tail(500).to_vec();
    println!(
        "a hears 440 {:.3} 660 {:.3} 880 {:.3} talk {:.3}; b hears 440 {:.3} 660 {:.3} talk {:.3}; program talk {:.3}",
        level(&ra, 440.0),
        level(&ra, 660.0),
        level(&ra, 880.0),
        level(&ra, 1000.0),
        level(&rb, 440.0),
        level(&rb, 660.0),
        level(&rb, 1000.0),
        level(&program, 1000.0),
    );
    assert!(level(&ra, 440.0) < 0.005, "a does not hear itself");
    assert!(
        level(&ra, 660.0) > 0.15 && level(&ra, 880.0) > 0.15,
        "a hears b and c"
    );
    assert!(level(&ra, 1000.0) > 0.15, "the talkback talks to a");
    assert!(level(&rb, 660.0) < 0.005, "b does not hear itself");
    assert!(
        level(&rb, 440.0) > 0.15 && level(&rb, 880.0) > 0.15,
        "b hears a and c"
    );
    assert!(level(&rb, 1000.0) < 0.005, "the talkback is not for b");
    assert!(
        level(&program, 1000.0) < 0.005,
        "the talkback is never on program"
    );
    assert!(level(&program, 440.0) > 0.15 && level(&program, 660.0) > 0.15);
    // The talkback's source is read even though no strip puts it on program.
    assert!(rig.mixer.wanted_sources().any(|s| s == "talk"));
}
