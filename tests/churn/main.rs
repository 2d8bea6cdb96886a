//! Churn and soak against the real `r58` binary with real WebRTC sessions (ICE, DTLS, SRTP over
//! loopback UDP, r58's own client stack):
//!
//! - churn: 1000 WHIP/WHEP sessions connected and deleted one after another; afterwards the
//!   server's RSS and open file descriptors are back within 5 % of where they were after a
//!   warm-up (`R58_CHURN_SESSIONS` changes the count);
//! - soak: 200 viewers of a publisher that reconnects (a new WHIP session taking the stream
//!   over) every `R58_SOAK_RECONNECT_SECS`; packet loss across all viewers stays under 0.1 %.
//!   CI runs 60 s (`R58_SOAK_SECS`); the 30-minute run is
//!   `R58_SOAK_SECS=1800 R58_SOAK_RECONNECT_SECS=60 cargo nextest run -p r58 --test churn soak --no-capture`.
//!
//! Both print their numbers; docs/reliability.md records them.

mod peer;
#[path = "../abuse/server.rs"]
#[allow(dead_code)]
mod server;

use std::time::{Duration, Instant};

use peer::{Peer, light_source};
use server::Server;
use sfu::webrtc::client::ClientRole;
use sfu::webrtc::harness::H264Source;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A publisher that keeps sending 30 frames per second while the test does other work.
struct Feed {
    peer: Peer,
    source: H264Source,
    next: Instant,
}

impl Feed {
    fn start(server: &Server, name: &str) -> Feed {
        let peer = Peer::connect(server, ClientRole::Publish, name);
        let source = light_source(peer.ssrc);
        Feed {
            peer,
            source,
            next: Instant::now(),
        }
    }

    fn tick(&mut self) {
        while self.next <= Instant::now() {
            self.next += Duration::from_millis(33);
            self.peer.send_frame(&mut self.source);
        }
        self.peer.poll();
    }
}

#[test]
fn churn_of_1000_sessions_leaves_memory_and_descriptors_where_they_were() {
    let total = env_u64("R58_CHURN_SESSIONS", 1000);
    let warmup = (total / 10).max(20);
    let mut server = Server::start("", &[]);
    let mut feed = Feed::start(&server, "live");
    let cycle = |i: u64, feed: &mut Feed| {
        if i % 2 == 0 {
            let mut viewer = Peer::connect(&server, ClientRole::Play, "live");
            let until = Instant::now() + Duration::from_millis(40);
            while Instant::now() < until {
                feed.tick();
                if !viewer.poll() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            viewer.delete(&server);
        } else {
            let mut publisher = Peer::connect(&server, ClientRole::Publish, "churn");
            let mut source = light_source(publisher.ssrc);
            for _ in 0..3 {
                publisher.send_frame(&mut source);
            }
            feed.tick();
            publisher.delete(&server);
        }
    };
    for i in 0..warmup {
        cycle(i, &mut feed);
    }
    let settle = |feed: &mut Feed| {
        // Past the takeover grace (2 s), so the churned stream's end is complete.
        let until = Instant::now() + Duration::from_millis(2500);
        while Instant::now() < until {
            feed.tick();
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    settle(&mut feed);
    let (rss_before, fds_before) = server.rss_kb_and_fds();
    let started = Instant::now();
    let mut checkpoints = Vec::new();
    for i in 0..total {
        cycle(i, &mut feed);
        if (i + 1) % (total / 5).max(1) == 0 {
            checkpoints.push(server.rss_kb_and_fds().0);
        }
    }
    let elapsed = started.elapsed();
    settle(&mut feed);
    let (rss_right_after, _) = server.rss_kb_and_fds();
    let tombstones = server.metric("r58_engine_table_entries{table=\"tombstones\"}");
    // Ended sessions' ICE credentials are kept 60 s (so late checks get a clear refusal):
    // wait them out, then measure.
    let until = Instant::now() + Duration::from_secs(env_u64("R58_CHURN_SETTLE_SECS", 62));
    while Instant::now() < until {
        feed.tick();
        std::thread::sleep(Duration::from_millis(5));
    }
    let (rss_after, fds_after) = server.rss_kb_and_fds();
    eprintln!(
        "churn: right after: RSS {rss_right_after} kB with {tombstones} tombstones; after they expired: {} tombstones",
        server.metric("r58_engine_table_entries{table=\"tombstones\"}")
    );
    let opened = server.metric("r58_sessions_opened_total");
    let sessions = server.metric("r58_sessions");
    let resources = server.metric("r58_http_session_resources");
    eprintln!(
        "churn: {total} sessions (after {warmup} warm-up) in {elapsed:?}; RSS {rss_before} -> {rss_after} kB \
         ({:+.1} %), fds {fds_before} -> {fds_after}; sessions opened {opened}, open now {sessions}, \
         HTTP resources {resources}; RSS along the way {checkpoints:?} kB",
        (rss_after as f64 / rss_before as f64 - 1.0) * 100.0
    );
    assert_eq!(sessions, 1.0, "only the feed's session is left");
    assert_eq!(resources, 1.0, "only the feed's resource URL is left");
    assert!(
        rss_after as f64 <= rss_before as f64 * 1.05,
        "RSS grew from {rss_before} to {rss_after} kB"
    );
    assert!(
        fds_after as f64 <= fds_before as f64 * 1.05,
        "file descriptors grew from {fds_before} to {fds_after}"
    );
    server.assert_serves();
}

#[test]
fn soak_200_viewers_with_a_reconnecting_publisher_loses_under_a_thousandth() {
    let secs = env_u64("R58_SOAK_SECS", 60);
    let viewers_wanted = env_u64("R58_SOAK_VIEWERS", 200) as usize;
    let reconnect =
        Duration::from_secs(env_u64("R58_SOAK_RECONNECT_SECS", (secs / 3).clamp(1, 60)));
    let mut server = Server::start(&format!("max_sessions = {}\n", viewers_wanted + 10), &[]);
    let mut feed = Feed::start(&server, "soak");
    let mut viewers: Vec<Peer> = Vec::with_capacity(viewers_wanted);
    let join_started = Instant::now();
    while viewers.len() < viewers_wanted {
        viewers.push(Peer::connect(&server, ClientRole::Play, "soak"));
        feed.tick();
        for v in &mut viewers {
            v.poll();
        }
    }
    let joined_in = join_started.elapsed();
    let (rss_start, _) = server.rss_kb_and_fds();
    // Count from here: what arrived while viewers were joining is not part of the soak.
    for v in &mut viewers {
        v.streams.clear();
    }
    let started = Instant::now();
    let mut next_reconnect = started + reconnect;
    let mut reconnects = 0;
    let mut frames = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        if Instant::now() >= next_reconnect {
            // Both ways a publisher comes back: a new session taking the stream over (the old
            // one is ended by the server), or DELETE and a new session within the grace period
            // (a guest reloading the page).
            if reconnects % 2 == 0 {
                let old = std::mem::replace(&mut feed, Feed::start(&server, "soak"));
                drop(old);
            } else {
                feed.peer.delete(&server);
                feed = Feed::start(&server, "soak");
            }
            reconnects += 1;
            next_reconnect += reconnect;
        }
        let before = feed.source.frame;
        feed.tick();
        frames += u64::from(feed.source.frame - before);
        let mut moved = false;
        for v in &mut viewers {
            moved |= v.poll();
        }
        if !moved {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    // Let the last packets arrive.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        for v in &mut viewers {
            v.poll();
        }
    }
    let received: u64 = viewers.iter().map(Peer::received).sum();
    let expected: u64 = viewers.iter().map(Peer::expected).sum();
    let closed = viewers.iter().filter(|v| v.closed).count();
    let worst = viewers
        .iter()
        .map(|v| 1.0 - v.received() as f64 / v.expected().max(1) as f64)
        .fold(0.0f64, f64::max);
    let loss = 1.0 - received as f64 / expected.max(1) as f64;
    let (rss_end, fds_end) = server.rss_kb_and_fds();
    eprintln!(
        "soak: {viewers_wanted} viewers joined in {joined_in:?}; {secs} s, {frames} frames, {reconnects} publisher \
         reconnects; viewers received {received} of {expected} packets: loss {:.4} % (worst viewer {:.4} %); \
         {closed} viewers closed; send drops {}; RSS {rss_start} -> {rss_end} kB, fds {fds_end}",
        loss * 100.0,
        worst * 100.0,
        server.metric("r58_send_dropped_total"),
    );
    assert!(
        reconnects >= 1 || secs < 2,
        "the publisher never reconnected"
    );
    assert_eq!(closed, 0, "viewers were ended by a publisher reconnect");
    assert!(expected > 0 && received > 0);
    assert!(loss < 0.001, "loss {:.4} %", loss * 100.0);
    server.assert_serves();
}
