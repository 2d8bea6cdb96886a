//! The engine with a TURN relay of its own, on the harness's virtual clock: clients that reach
//! it only through the relay, beside clients that reach it directly.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::RelayNeed;
use super::tests::send_frame;
use crate::testing::client::{ClientRole, H264_PT};
use crate::testing::harness::{H264Source, Harness};
use crate::webrtc::Via;
use crate::webrtc::sdp::RelayCandidate;

fn relay() -> RelayCandidate {
    RelayCandidate {
        relayed: "198.51.100.7:49152".parse().unwrap(),
        mapped: Some("203.0.113.9:40000".parse().unwrap()),
    }
}

fn needs(h: &mut Harness) -> Vec<RelayNeed> {
    std::iter::from_fn(|| h.engine.poll_relay_need()).collect()
}

fn trickle(h: &mut Harness, client: usize, candidates: &[&str]) {
    let ufrag = h.clients[client].client.ice_ufrag().to_owned();
    let mut frag = format!("a=ice-ufrag:{ufrag}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n");
    for (i, c) in candidates.iter().enumerate() {
        let (ip, port) = c.rsplit_once(':').unwrap();
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        frag.push_str(&format!(
            "a=candidate:{i} 1 udp 2122260223 {ip} {port} typ srflx raddr 0.0.0.0 rport 0\r\n"
        ));
    }
    let session = h.clients[client].answer.session;
    h.engine.trickle(session, &frag).expect("trickle");
}

#[test]
fn answers_carry_the_relay_only_while_one_is_held() {
    let mut h = Harness::new(Default::default()).expect("engine");
    let direct = h.open(ClientRole::Publish, "cam").expect("publish");
    assert!(!h.clients[direct].answer.sdp.contains("typ relay"));
    h.engine.set_relay(h.now, Some(relay()));
    let viewer = h.open(ClientRole::Play, "cam").expect("play");
    let sdp = &h.clients[viewer].answer.sdp;
    assert!(
        sdp.contains("198.51.100.7 49152 typ relay raddr 203.0.113.9 rport 40000"),
        "{sdp}"
    );
    h.engine.set_relay(h.now, None);
    let later = h.open(ClientRole::Play, "cam").expect("play");
    assert!(!h.clients[later].answer.sdp.contains("typ relay"));
}

#[test]
fn relayed_and_direct_clients_each_get_media_their_own_way() {
    let mut h = Harness::new(Default::default()).expect("engine");
    h.engine.set_relay(h.now, Some(relay()));
    let publisher = h
        .open_via(ClientRole::Publish, "cam", Via::Relay)
        .expect("publish");
    let relayed_viewer = h
        .open_via(ClientRole::Play, "cam", Via::Relay)
        .expect("play");
    let direct_viewer = h.open(ClientRole::Play, "cam").expect("play");
    assert!(h.connect_all(), "every client connects, relayed or not");
    let ssrc = h.clients[publisher].client.ssrcs.0;
    let mut source = H264Source::new(ssrc, H264_PT);
    for _ in 0..30 {
        send_frame(&mut h, publisher, &mut source);
    }
    for viewer in [relayed_viewer, direct_viewer] {
        assert!(
            h.clients[viewer].received.rtp_packets > 30,
            "viewer {viewer} got {} packets",
            h.clients[viewer].received.rtp_packets
        );
    }
    assert_eq!(h.misrouted, 0, "a datagram went by the wrong transport");
    // Each relayed client's path got a channel; the direct one did not.
    let channels: Vec<SocketAddr> = needs(&mut h)
        .into_iter()
        .filter_map(|n| match n {
            RelayNeed::Channel(peer) => Some(peer),
            _ => None,
        })
        .collect();
    let mut expected = vec![h.clients[publisher].addr, h.clients[relayed_viewer].addr];
    expected.sort();
    let mut got = channels.clone();
    got.sort();
    assert_eq!(got, expected);
}

#[test]
fn candidates_are_permitted_once_and_forgotten_with_the_last_session() {
    let mut h = Harness::new(Default::default()).expect("engine");
    let a = h.open(ClientRole::Publish, "cam").expect("publish");
    // Without a relay, candidates are only remembered.
    trickle(&mut h, a, &["192.0.2.1:5000"]);
    assert_eq!(needs(&mut h), vec![]);
    // A new allocation asks for every live session's candidates.
    h.engine.set_relay(h.now, Some(relay()));
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    assert_eq!(needs(&mut h), vec![RelayNeed::Permit(ip("192.0.2.1"))]);
    let b = h.open(ClientRole::Play, "cam").expect("play");
    trickle(
        &mut h,
        b,
        &["192.0.2.1:6000", "192.0.2.2:6000", "192.0.2.2:6001"],
    );
    assert_eq!(
        needs(&mut h),
        vec![RelayNeed::Permit(ip("192.0.2.2"))],
        "one permission per IP, whatever the port, none again for an IP already permitted, and \
         none for an IPv6 address on an IPv4 allocation"
    );
    let now = h.now;
    h.engine.delete(now, h.clients[b].answer.session);
    assert_eq!(needs(&mut h), vec![RelayNeed::Forget(ip("192.0.2.2"))]);
    let session = h.clients[a].answer.session;
    h.engine.delete(now, session);
    assert_eq!(needs(&mut h), vec![RelayNeed::Forget(ip("192.0.2.1"))]);
}

/// Advances the engine alone (no client sends anything) by `dt` in 100 ms steps.
fn silence(h: &mut Harness, dt: Duration) {
    let end = h.now + dt;
    while h.now < end {
        h.now += Duration::from_millis(100);
        let now = h.now;
        h.engine.handle_timeout(now);
    }
}

#[test]
fn a_relayed_publisher_outlives_a_relay_restart_long_enough_to_restart_ice() {
    let mut h = Harness::new(Default::default()).expect("engine");
    h.engine.set_relay(h.now, Some(relay()));
    let publisher = h
        .open_via(ClientRole::Publish, "cam", Via::Relay)
        .expect("publish");
    assert!(h.connect_all());
    let ssrc = h.clients[publisher].client.ssrcs.0;
    let mut source = H264Source::new(ssrc, H264_PT);
    send_frame(&mut h, publisher, &mut source);
    // The relay goes silent; the driver notices at ~4 s and allocates anew.
    silence(&mut h, Duration::from_secs(4));
    assert_eq!(
        h.engine.session_count(),
        1,
        "3 s + slack for a relayed publisher"
    );
    let now = h.now;
    h.engine.set_relay(
        now,
        Some(RelayCandidate {
            relayed: "198.51.100.7:49999".parse().unwrap(),
            ..relay()
        }),
    );
    silence(&mut h, Duration::from_secs(19));
    assert_eq!(
        h.engine.session_count(),
        1,
        "kept for the client's ICE restart"
    );
    silence(&mut h, Duration::from_secs(2));
    assert_eq!(
        h.engine.session_count(),
        0,
        "gone once the recovery time is over"
    );
}

#[test]
fn a_direct_publisher_times_out_as_before_whatever_the_relay_does() {
    let mut h = Harness::new(Default::default()).expect("engine");
    h.engine.set_relay(h.now, Some(relay()));
    let publisher = h.open(ClientRole::Publish, "cam").expect("publish");
    assert!(h.connect_all());
    let ssrc = h.clients[publisher].client.ssrcs.0;
    let mut source = H264Source::new(ssrc, H264_PT);
    send_frame(&mut h, publisher, &mut source);
    let now = h.now;
    h.engine.set_relay(now, None);
    silence(&mut h, Duration::from_millis(3200));
    assert_eq!(h.engine.session_count(), 0);
}
