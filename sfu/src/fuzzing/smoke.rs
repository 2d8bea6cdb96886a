//! The deterministic mutator behind the fuzz smoke tests (`sfu/tests/fuzz_smoke.rs`, and
//! `tests/config_fuzz_smoke.rs` for the `r58` crate's entry): every build runs each entry over
//! its seeds and a few thousand mutations of them, without libFuzzer.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::FuzzEntry;

/// Mutated inputs per entry.
pub const MUTATIONS: usize = 3000;

/// Deterministic xorshift64 generator: the same mutations on every run.
struct XorShift(u64);

impl XorShift {
    fn new(seed: &str) -> Self {
        // FNV-1a of the entry's name, never zero.
        let hash = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Self(hash | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..n`; 0 when `n` is 0.
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Byte values that tend to sit on boundaries of length and type checks.
const INTERESTING: [u8; 10] = [0, 1, 2, 3, 0x7f, 0x80, 0x81, 0xc0, 0xfe, 0xff];

/// One to four random edits of `input`, sometimes splicing in part of `other`.
fn mutate(rng: &mut XorShift, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = data.len();
        let pos = rng.below(len + 1);
        match rng.below(9) {
            0 | 1 => {
                if let Some(b) = data.get_mut(pos) {
                    *b ^= 1 << rng.below(8);
                }
            }
            2 => {
                if let Some(b) = data.get_mut(pos) {
                    *b = INTERESTING[rng.below(INTERESTING.len())];
                }
            }
            3 => {
                if pos + 2 <= len {
                    let v = [0u16, 1, 0x7fff, 0x8000, 0xffff][rng.below(5)];
                    data[pos..pos + 2].copy_from_slice(&v.to_be_bytes());
                }
            }
            4 => data.truncate(pos),
            5 => {
                let count = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..count).map(|_| rng.byte()).collect();
                data.splice(pos..pos, bytes);
            }
            6 => {
                let end = (pos + 1 + rng.below(32)).min(len);
                data.drain(pos..end);
            }
            7 => {
                let end = (pos + 1 + rng.below(64)).min(len);
                let chunk = data[pos..end].to_vec();
                data.splice(pos..pos, chunk);
            }
            _ => {
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(128)).min(other.len());
                let end = (pos + rng.below(64)).min(len);
                data.splice(pos..end, other[from..to].iter().copied());
            }
        }
    }
    data
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `entry` on `data`; on a panic, fails with everything needed to reproduce it.
fn check(entry: FuzzEntry, target: &str, origin: &str, data: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| entry(data))).is_err() {
        panic!(
            "fuzz entry {target} panicked on {origin} ({} bytes): {}",
            data.len(),
            hex(data)
        );
    }
}

/// The seed files in `dir` as (file name, bytes), sorted by name: a fuzz target's corpus
/// (`fuzz/seeds/<target>/`) for [`run_smoke`]. Panics naming the directory or file it cannot
/// read.
pub fn seeds_in(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("seed directory {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("seed directory entry").path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let data =
                std::fs::read(&path).unwrap_or_else(|e| panic!("seed {}: {e}", path.display()));
            (name, data)
        })
        .collect();
    seeds.sort();
    seeds
}

/// Runs `entry` over every input of `corpus` (name, bytes), then over `mutations` mutations of
/// them (seeded by `target`, so every run tries the same inputs). Panics with the entry, the
/// input's origin and its bytes in hex on the first input that panics.
pub fn run_smoke(target: &str, entry: FuzzEntry, corpus: &[(String, Vec<u8>)], mutations: usize) {
    assert!(!corpus.is_empty(), "no seeds for {target}");
    for (name, data) in corpus {
        check(entry, target, &format!("seed {name}"), data);
    }
    let mut rng = XorShift::new(target);
    for i in 0..mutations {
        let base = &corpus[rng.below(corpus.len())].1;
        let other = &corpus[rng.below(corpus.len())].1;
        let data = mutate(&mut rng, base, other);
        check(entry, target, &format!("mutation {i}"), &data);
    }
}
