//! Engine limits with real `rtc` peers on a virtual clock: the REMB invitation, the hard cap on
//! a publisher's inbound rate, and the per-stream viewer limit.

mod common;

use std::time::Duration;

use common::*;
use sfu::engine::{EngineConfig, EngineError, EngineLimits};

const MS: Duration = Duration::from_millis(1);

/// Streams 5 s of ~350 kbit/s (big keyframes) from a publisher to one viewer; returns the
/// engine's drop count, the payload bytes the viewer got and the REMB values the publisher got.
fn stream_with_cap(cap_bps: u64) -> TestResult<(u64, u64, u64, Vec<f32>)> {
    let mut net = Net::new(EngineConfig {
        publisher_bitrate_bps: 1_500_000,
        publisher_bitrate_cap_bps: cap_bps,
        ..EngineConfig::default()
    })?;
    let publisher = net.open_connected(Role::Publisher, "capped")?;
    let viewer = net.open_connected(Role::Viewer, "capped")?;
    let mut source = Source::new(net.now, 1);
    source.idr_size = 30_000;
    source.stream_for(&mut net, publisher, Duration::from_secs(5))?;
    net.run_for(MS, Duration::from_millis(200));
    let dropped = net.engine.stats().bitrate_cap_dropped;
    let got: u64 = net.peers[viewer]
        .rx
        .iter()
        .map(|p| p.payload.len() as u64)
        .sum();
    let sent = net.peers[publisher].sent_count.values().sum();
    let rembs = net.peers[publisher]
        .rtcp
        .iter()
        .filter_map(|r| r.remb)
        .collect();
    Ok((dropped, got, sent, rembs))
}

#[test]
fn publishers_are_invited_by_remb_and_held_to_the_hard_cap() -> TestResult {
    let (dropped, uncapped_bytes, sent, rembs) = stream_with_cap(0)?;
    assert_eq!(dropped, 0);
    assert!(!rembs.is_empty(), "the publisher got no REMB");
    assert!(
        rembs.iter().all(|b| (*b - 1_500_000.0).abs() < 1000.0),
        "REMB values {rembs:?}"
    );
    let uncapped_bps = uncapped_bytes * 8 / 5;
    println!(
        "uncapped: {sent} packets, viewer got {uncapped_bytes} payload bytes (~{uncapped_bps} bit/s)"
    );
    assert!(
        uncapped_bps > 300_000,
        "the source is too slow to test a cap: {uncapped_bps}"
    );

    // A cap at a third of that: packets are dropped before decryption and counted, and what
    // gets through stays within the cap plus its one-second burst.
    let cap = uncapped_bps / 3;
    let (dropped, capped_bytes, _, _) = stream_with_cap(cap)?;
    println!("cap {cap} bit/s: dropped {dropped} datagrams, viewer got {capped_bytes} bytes");
    assert!(dropped > 0, "nothing was dropped over the cap");
    let allowed = cap / 8 * 6;
    assert!(
        capped_bytes <= allowed,
        "{capped_bytes} bytes passed a cap allowing {allowed}"
    );
    assert!(
        capped_bytes >= allowed / 3,
        "the cap let too little through: {capped_bytes}"
    );
    Ok(())
}

#[test]
fn viewers_per_stream_are_limited() -> TestResult {
    let mut net = Net::new(EngineConfig {
        max_viewers_per_stream: 2,
        ..EngineConfig::default()
    })?;
    net.open_connected(Role::Publisher, "popular")?;
    net.open(Role::Viewer, "popular")?;
    net.open(Role::Viewer, "popular")?;
    let third = net.open(Role::Viewer, "popular");
    let err = third.expect_err("a third viewer was accepted").to_string();
    let expected = EngineError::TooManyViewers {
        stream: "popular".into(),
        limit: 2,
    }
    .to_string();
    assert!(err.contains(&expected), "{err}");
    // Another stream is not affected.
    net.open_connected(Role::Publisher, "quiet")?;
    net.open(Role::Viewer, "quiet")?;
    Ok(())
}

/// A configuration reload lowers and raises the viewer limit of a running engine: the viewers
/// already admitted stay, the next offer meets the new limit.
#[test]
fn viewer_limit_changes_while_the_engine_runs() -> TestResult {
    let mut net = Net::new(EngineConfig {
        max_viewers_per_stream: 3,
        ..EngineConfig::default()
    })?;
    net.open_connected(Role::Publisher, "show")?;
    let first = net.open_connected(Role::Viewer, "show")?;
    net.open(Role::Viewer, "show")?;
    let limits = |viewers| EngineLimits {
        max_sessions: 1000,
        max_viewers_per_stream: viewers,
        publisher_bitrate_bps: 4_000_000,
        publisher_bitrate_cap_bps: 0,
        max_forward_delay: Duration::from_millis(250),
    };
    net.engine.set_limits(limits(1));
    assert_eq!(net.engine.config().max_viewers_per_stream, 1);
    let refused = net.open(Role::Viewer, "show");
    let err = refused
        .expect_err("a viewer past the lowered limit was accepted")
        .to_string();
    let expected = EngineError::TooManyViewers {
        stream: "show".into(),
        limit: 1,
    }
    .to_string();
    assert!(err.contains(&expected), "{err}");
    // The admitted viewer still receives media.
    let mut source = Source::new(net.now, 1);
    source.stream_for(&mut net, 0, Duration::from_millis(500))?;
    net.run_for(MS, Duration::from_millis(100));
    assert!(
        !net.peers[first].rx.is_empty(),
        "the admitted viewer got nothing"
    );
    net.engine.set_limits(limits(4));
    net.open(Role::Viewer, "show")?;
    Ok(())
}
