//! The TURN client's fuzz entry ([`sfu::turn::client::fuzzing::server_input`]), run briefly on
//! every build: over its seeds (`fuzz/seeds/turn_client/`, plus the ones built here) and a few
//! thousand deterministic mutations of them. A panic fails the test with the input in hex.
//!
//! The long run is `cargo fuzz run turn_client` in `fuzz/`. To rewrite the seed files:
//! `cargo test -p sfu --test turn_client_fuzz_smoke -- --ignored write_seed_files`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sfu::fuzzing::smoke::{MUTATIONS, run_smoke};
use sfu::turn::client::Transport;
use sfu::turn::client::fuzzing::{FakeServer, PEER, Stage, prepared, server_input};
use sfu::turn::client::wire::{encode_channel_data, encode_send_indication};

const TARGET: &str = "turn_client";

fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(TARGET)
}

/// `[len_hi, len_lo, bytes ...]` for each message, the entry's input format.
fn framed(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// Answers of every kind to what a client at each stage has outstanding, and data-path
/// messages.
fn generated_seeds() -> Vec<(String, Vec<u8>)> {
    let mut server = FakeServer::default();
    let now = Instant::now();
    let lifetime = Duration::from_secs(600);
    let mut seeds = Vec::new();
    for stage in Stage::ALL {
        let (_, requests) = prepared(&server, Transport::Udp, stage, now);
        let mut answers = Vec::new();
        for request in &requests {
            answers.push(server.unauthorized(request));
            answers.push(server.stale_nonce(request, "nonce-2"));
            answers.push(server.error(request, 437, "Allocation Mismatch"));
            answers.push(server.error(request, 403, "Forbidden"));
            answers.push(server.allocated(request, lifetime));
            answers.push(server.ok(request, Some(lifetime)));
            answers.push(server.ok(request, None));
        }
        seeds.push((format!("answers-{stage:?}"), framed(&answers)));
    }
    let mut channel = Vec::new();
    encode_channel_data(0x4000, b"media", true, &mut channel).unwrap();
    let mut send = Vec::new();
    encode_send_indication([3; 12], PEER, b"check", &mut send).unwrap();
    let data = vec![
        channel,
        FakeServer::data_indication(PEER, b"stun check"),
        FakeServer::data_indication("[2001:db8::1]:9".parse().unwrap(), &[0; 33]),
        send,
        vec![0x40, 0x01, 0xFF, 0xFF],
    ];
    seeds.push(("data".to_owned(), framed(&data)));
    seeds
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut seeds = generated_seeds();
    if let Ok(dir) = fs::read_dir(seed_dir()) {
        let mut files: Vec<_> = dir
            .map(|e| e.unwrap().path())
            .map(|p| (p.display().to_string(), fs::read(&p).unwrap()))
            .collect();
        files.sort();
        seeds.extend(files);
    }
    seeds
}

#[test]
fn smoke_turn_client() {
    run_smoke(TARGET, server_input, &corpus(), MUTATIONS);
}

#[test]
#[ignore = "writes fuzz/seeds/turn_client/"]
fn write_seed_files() {
    let dir = seed_dir();
    fs::create_dir_all(&dir).unwrap();
    for (name, data) in generated_seeds() {
        fs::write(dir.join(name), data).unwrap();
    }
}
