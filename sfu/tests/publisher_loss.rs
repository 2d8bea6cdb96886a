//! Loss on the publisher's path, with real `rtc` peers on a virtual clock: the engine NACKs
//! what the publisher's stream skipped, the publisher resends it, and viewers get it.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use sfu::engine::EngineConfig;

const MS: Duration = Duration::from_millis(1);

/// Streams 4 s while every 20th fresh video packet from the publisher is lost; returns
/// (video packets sent, distinct ones the viewer got, packets NACKed upstream).
fn run(publisher_answers_nack: bool) -> TestResult<(usize, usize, u64)> {
    let mut net = Net::new(EngineConfig::default())?;
    net.publishers_answer_nack = publisher_answers_nack;
    let publisher = net.open_connected(Role::Publisher, "lossy")?;
    let viewer = net.open_connected(Role::Viewer, "lossy")?;
    let mut fresh = FirstTransmissions::default();
    net.upstream_drop_filter = Some(Box::new(move |from, data| {
        let Some((pt, seq, _)) = srtp_header(data) else {
            return false;
        };
        if from != publisher || pt != H264_PT {
            return false;
        }
        // Retransmissions pass.
        fresh.number(seq).is_some_and(|n| n > 5 && n % 20 == 7)
    }));
    let mut source = Source::new(net.now, 1);
    source.stream_for(&mut net, publisher, Duration::from_secs(4))?;
    net.upstream_drop_filter = None;
    source.stream_for(&mut net, publisher, Duration::from_millis(300))?;
    net.run_for(MS, Duration::from_millis(300));
    let sent = net.peers[publisher]
        .sent
        .values()
        .filter(|(kind, _, _)| *kind == Kind::Video)
        .count();
    let got: HashSet<&[u8]> = net.peers[viewer]
        .video()
        .map(|p| p.payload.as_ref())
        .collect();
    Ok((sent, got.len(), net.engine.stats().upstream_nacked))
}

#[test]
fn publisher_loss_is_nacked_upstream_and_repaired() -> TestResult {
    let (sent, got, first_nacks) = run(true)?;
    let nacked = first_nacks;
    println!(
        "publisher answers NACK: sent {sent} video packets, viewer got {got}, {nacked} NACKed"
    );
    assert!(nacked >= 5, "the engine NACKed {nacked} packets");
    assert_eq!(got, sent, "every lost packet was repaired");

    let (sent, got, nacked) = run(false)?;
    println!("publisher ignores NACK: sent {sent}, viewer got {got}, {nacked} NACKed");
    assert!(got < sent, "the loss was not real");
    // Unanswered NACKs are repeated, a bounded number of times.
    assert_eq!(nacked, first_nacks * u64::from(sfu::rtp::gaps::MAX_TRIES));
    Ok(())
}
