//! Unit tests on a virtual clock (`Instant`s the test advances) against the scripted server.

use std::time::{Duration, Instant};

use rtc_stun::attributes::{
    ATTR_CHANNEL_NUMBER, ATTR_LIFETIME, ATTR_REQUESTED_TRANSPORT, ATTR_USERNAME,
};
use rtc_stun::message::{
    METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH, Message,
};

use super::fuzzing::{FakeServer, MAPPED, PEER, RELAYED, Stage, drain, prepared};
use super::*;

const LIFETIME: Duration = Duration::from_secs(600);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn events(client: &mut TurnClient) -> Vec<Event> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

fn method(raw: &[u8]) -> rtc_stun::message::Method {
    FakeServer::parse(raw).typ.method
}

fn lifetime_of(raw: &[u8]) -> u32 {
    let v = FakeServer::parse(raw).get(ATTR_LIFETIME).unwrap();
    u32::from_be_bytes(v.try_into().unwrap())
}

/// An allocated client at `t0` (events drained) that asked for a channel to [`PEER`], and
/// the CreatePermission and ChannelBind requests still unanswered (none if `confirm`).
fn allocated(
    transport: Transport,
    confirm: bool,
) -> (TurnClient, FakeServer, Instant, Vec<Vec<u8>>) {
    let server = FakeServer::default();
    let t0 = Instant::now();
    let (mut client, mut out) = prepared(&server, transport, Stage::Allocated, t0);
    if confirm {
        for request in out.drain(..) {
            client.handle_input(t0, &server.ok(&request, None)).unwrap();
        }
    }
    events(&mut client);
    (client, server, t0, out)
}

/// An allocated client at `t0` with no permissions or channels (events drained).
fn bare(transport: Transport) -> (TurnClient, FakeServer, Instant) {
    let server = FakeServer::default();
    let t0 = Instant::now();
    let (mut client, out) = prepared(&server, transport, Stage::Authenticating, t0);
    client
        .handle_input(t0, &server.allocated(&out[0], LIFETIME))
        .unwrap();
    events(&mut client);
    (client, server, t0)
}

#[test]
fn allocate_answers_the_401_and_reports_the_addresses() {
    let server = FakeServer::default();
    let t0 = Instant::now();
    let mut client = server.client(Transport::Udp);
    assert_eq!(client.poll_timeout(), None, "nothing before allocate()");
    client.allocate(t0);
    let out = drain(&mut client);
    assert_eq!(out.len(), 1);
    let first = FakeServer::parse(&out[0]);
    assert_eq!(first.typ.method, METHOD_ALLOCATE);
    assert!(
        !first.contains(ATTR_USERNAME),
        "first Allocate is anonymous"
    );
    assert_eq!(first.get(ATTR_REQUESTED_TRANSPORT).unwrap(), [17, 0, 0, 0]);
    assert_eq!(lifetime_of(&out[0]), 600);

    let answer = server.unauthorized(&out[0]);
    assert_eq!(client.handle_input(t0, &answer), Ok(Inbound::Handled));
    let out = drain(&mut client);
    assert_eq!(out.len(), 1);
    assert!(
        server.authentic(&out[0]),
        "second Allocate is signed with the nonce"
    );
    assert_eq!(client.relayed(), None);

    let t1 = t0 + secs(0.05);
    client
        .handle_input(t1, &server.allocated(&out[0], LIFETIME))
        .unwrap();
    assert_eq!(
        events(&mut client),
        [Event::Allocated {
            relayed: RELAYED,
            mapped: Some(MAPPED),
            lifetime: LIFETIME,
        }]
    );
    assert_eq!(
        (client.relayed(), client.mapped()),
        (Some(RELAYED), Some(MAPPED))
    );
    assert_eq!(client.poll_timeout(), Some(t1 + LIFETIME / 2));
    let stats = client.stats();
    assert_eq!(
        (stats.allocations, stats.requests, stats.nonce_renewals),
        (1, 2, 0)
    );
}

#[test]
fn refresh_at_half_lifetime_and_again_after_the_answer() {
    let (mut client, server, t0) = bare(Transport::Udp);
    client.handle_timeout(t0 + secs(299.9));
    assert!(drain(&mut client).is_empty());
    client.handle_timeout(t0 + secs(300.0));
    let out = drain(&mut client);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (method(&out[0]), lifetime_of(&out[0])),
        (METHOD_REFRESH, 600)
    );
    assert!(server.authentic(&out[0]));
    // While the refresh is out, the next deadline is its retransmission, not the refresh.
    assert_eq!(client.poll_timeout(), Some(t0 + secs(300.5)));
    let t1 = t0 + secs(300.2);
    client
        .handle_input(t1, &server.ok(&out[0], Some(Duration::from_secs(400))))
        .unwrap();
    assert_eq!(
        events(&mut client),
        [Event::Refreshed {
            lifetime: Duration::from_secs(400)
        }]
    );
    // The granted lifetime counts, not the one asked for.
    assert_eq!(client.poll_timeout(), Some(t1 + secs(200.0)));
    assert_eq!(client.stats().refreshes, 1);
}

#[test]
fn stale_nonce_re_signs_and_resends() {
    let (mut client, mut server, t0) = bare(Transport::Udp);
    let t = t0 + secs(300.0);
    client.handle_timeout(t);
    let out = drain(&mut client);
    client
        .handle_input(t, &server.stale_nonce(&out[0], "nonce-2"))
        .unwrap();
    let out = drain(&mut client);
    assert_eq!((out.len(), method(&out[0])), (1, METHOD_REFRESH));
    assert!(server.authentic(&out[0]), "resent with nonce-2");
    client
        .handle_input(t, &server.ok(&out[0], Some(LIFETIME)))
        .unwrap();
    assert!(matches!(events(&mut client)[..], [Event::Refreshed { .. }]));
    assert_eq!(client.stats().nonce_renewals, 1);
    // Later requests use the new nonce from the start.
    client
        .create_permission(t, "198.51.100.77".parse().unwrap())
        .unwrap();
    assert!(server.authentic(&drain(&mut client)[0]));
}

#[test]
fn endless_stale_nonces_lose_the_allocation_and_re_allocate() {
    let (mut client, mut server, t0) = bare(Transport::Udp);
    let t = t0 + secs(300.0);
    client.handle_timeout(t);
    let mut out = drain(&mut client);
    for i in 0..4 {
        client
            .handle_input(t, &server.stale_nonce(&out[0], &format!("n{i}")))
            .unwrap();
        out = drain(&mut client);
    }
    let ev = events(&mut client);
    assert!(
        matches!(&ev[..], [Event::AllocationLost { relayed, failure }]
            if *relayed == RELAYED && failure.kind == FailureKind::NonceLoop(3)),
        "{ev:?}"
    );
    assert_eq!(method(&out[0]), METHOD_ALLOCATE);
    assert!(
        server.authentic(&out[0]),
        "re-allocation is signed straight away"
    );
}

#[test]
fn refresh_437_re_allocates_and_restores_permission_and_channel() {
    let (mut client, server, t0, _) = allocated(Transport::Udp, true);
    let channel = client.channel(PEER).unwrap();
    let t = t0 + secs(300.0);
    client.handle_timeout(t);
    let out = drain(&mut client);
    client
        .handle_input(t, &server.error(&out[0], 437, "Allocation Mismatch"))
        .unwrap();
    let ev = events(&mut client);
    let [Event::AllocationLost { failure, .. }] = &ev[..] else {
        panic!("{ev:?}");
    };
    assert_eq!(failure.kind, FailureKind::Mismatch);
    assert_eq!(failure.method, Method::Refresh);
    let text = failure.to_string();
    assert!(
        text.contains("192.0.2.1:3478") && text.contains("Refresh (transaction "),
        "{text}"
    );
    assert_eq!(client.relayed(), None);
    assert_eq!(
        client.channel(PEER),
        None,
        "the new allocation has no channel yet"
    );
    let mut buf = Vec::new();
    assert!(matches!(
        client.send_to(PEER, b"x", &mut buf),
        Err(SendError::NotAllocated { .. })
    ));

    let out = drain(&mut client);
    assert_eq!(method(&out[0]), METHOD_ALLOCATE);
    client
        .handle_input(t, &server.allocated(&out[0], LIFETIME))
        .unwrap();
    let out = drain(&mut client);
    let methods: Vec<_> = out.iter().map(|r| method(r)).collect();
    assert_eq!(methods, [METHOD_CREATE_PERMISSION, METHOD_CHANNEL_BIND]);
    let bind = FakeServer::parse(&out[1]);
    assert_eq!(
        bind.get(ATTR_CHANNEL_NUMBER).unwrap()[..2],
        channel.to_be_bytes()
    );
    for request in &out {
        client.handle_input(t, &server.ok(request, None)).unwrap();
    }
    assert_eq!(client.channel(PEER), Some(channel));
    let stats = client.stats();
    assert_eq!((stats.allocations, stats.allocations_lost.mismatch), (2, 1));
    assert_eq!((stats.permissions, stats.channels), (1, 1));
}

#[test]
fn failed_allocate_backs_off_1_2_4_up_to_60_s() {
    let server = FakeServer::default();
    let mut t = Instant::now();
    let mut client = server.client(Transport::Udp);
    client.allocate(t);
    let out = drain(&mut client);
    client
        .handle_input(t, &server.unauthorized(&out[0]))
        .unwrap();
    let mut waits = Vec::new();
    for _ in 0..8 {
        let out = drain(&mut client);
        assert_eq!(method(&out[0]), METHOD_ALLOCATE);
        client
            .handle_input(t, &server.error(&out[0], 437, "Allocation Mismatch"))
            .unwrap();
        let ev = events(&mut client);
        let [
            Event::AllocationFailed {
                failure,
                retry_at: Some(at),
            },
        ] = &ev[..]
        else {
            panic!("{ev:?}");
        };
        assert_eq!(failure.kind, FailureKind::Mismatch);
        waits.push((*at - t).as_secs());
        assert_eq!(client.poll_timeout(), Some(*at));
        client.handle_timeout(*at - secs(0.001));
        assert!(drain(&mut client).is_empty());
        t = *at;
        client.handle_timeout(t);
    }
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
    assert_eq!(client.stats().allocation_failures.mismatch, 8);
}

#[test]
fn udp_retransmits_on_rfc_schedule_then_times_out() {
    let server = FakeServer::default();
    let t0 = Instant::now();
    let mut client = server.client(Transport::Udp);
    client.allocate(t0);
    let first = drain(&mut client).remove(0);
    let mut sent_at = vec![0.0];
    while let Some(at) = client.poll_timeout() {
        client.handle_timeout(at);
        if let Some(raw) = client.poll_transmit() {
            assert_eq!(raw, first, "a retransmission is the same request");
            sent_at.push((at - t0).as_secs_f64());
        }
        if let Some(ev) = client.poll_event() {
            let Event::AllocationFailed { failure, retry_at } = ev else {
                panic!("{ev:?}");
            };
            assert_eq!(failure.kind, FailureKind::Timeout(secs(39.5)));
            assert!(
                failure.to_string().contains("no answer after 39.5 s"),
                "{failure}"
            );
            assert_eq!(retry_at, Some(at + secs(1.0)));
            break;
        }
    }
    assert_eq!(sent_at, [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]);
    assert_eq!(client.stats().retransmissions, 6);
}

#[test]
fn streams_send_once_and_time_out_after_39_5_s() {
    let server = FakeServer::default();
    let t0 = Instant::now();
    let mut client = server.client(Transport::Tcp);
    client.allocate(t0);
    assert_eq!(drain(&mut client).len(), 1);
    assert_eq!(client.poll_timeout(), Some(t0 + secs(39.5)));
    client.handle_timeout(t0 + secs(39.5));
    assert!(drain(&mut client).is_empty());
    assert!(matches!(
        &events(&mut client)[..],
        [Event::AllocationFailed { failure, .. }] if failure.kind == FailureKind::Timeout(secs(39.5))
    ));
}

#[test]
fn permissions_refresh_every_4_and_channels_every_8_minutes() {
    let (mut client, server, t0, out) = allocated(Transport::Udp, false);
    let t1 = t0 + secs(1.0);
    client.handle_timeout(t1);
    assert_eq!(drain(&mut client), out, "retransmitted once at 0.5 s");
    for request in &out {
        client.handle_input(t1, &server.ok(request, None)).unwrap();
    }
    let ev = events(&mut client);
    assert_eq!(
        ev,
        [
            Event::PermissionCreated { peer: PEER.ip() },
            Event::ChannelBound {
                peer: PEER,
                channel: CHANNEL_MIN
            }
        ]
    );
    let mut requests = Vec::new();
    let mut t = t1;
    while t < t1 + secs(1000.0) {
        t += secs(1.0);
        client.handle_timeout(t);
        for request in drain(&mut client) {
            let m = method(&request);
            if m != METHOD_REFRESH {
                requests.push(((t - t1).as_secs(), m));
            }
            let lifetime = (m == METHOD_REFRESH).then_some(LIFETIME);
            client
                .handle_input(t, &server.ok(&request, lifetime))
                .unwrap();
        }
    }
    let p = METHOD_CREATE_PERMISSION;
    let c = METHOD_CHANNEL_BIND;
    assert_eq!(
        requests,
        [(240, p), (480, p), (480, c), (720, p), (960, p), (960, c)]
    );
    let ev = events(&mut client);
    assert!(
        ev.iter().all(|e| matches!(e, Event::Refreshed { .. })),
        "{ev:?}"
    );
    let stats = client.stats();
    assert_eq!(
        (stats.permission_refreshes, stats.channel_refreshes),
        (4, 2)
    );
}

#[test]
fn refused_permission_is_reported_and_dropped() {
    let (mut client, server, t0, _) = allocated(Transport::Udp, true);
    let peer: std::net::IpAddr = "203.0.113.200".parse().unwrap();
    client.create_permission(t0, peer).unwrap();
    let out = drain(&mut client);
    client
        .handle_input(t0, &server.error(&out[0], 403, "Forbidden IP"))
        .unwrap();
    let ev = events(&mut client);
    let [Event::PermissionFailed { peer: p, failure }] = &ev[..] else {
        panic!("{ev:?}");
    };
    assert_eq!(*p, peer);
    assert_eq!(
        failure.kind,
        FailureKind::Refused {
            code: 403,
            reason: "Forbidden IP".into()
        }
    );
    assert!(!client.has_permission(peer));
    let mut out = Vec::new();
    let to = std::net::SocketAddr::new(peer, 1);
    assert!(matches!(
        client.send_to(to, b"x", &mut out),
        Err(SendError::NoPermission { .. })
    ));
    assert!(out.is_empty());
}

#[test]
fn data_goes_as_send_indication_until_the_channel_is_bound() {
    let (mut client, server, t0, pending) = allocated(Transport::Udp, false);
    let mut out = Vec::new();
    // Permission and channel requested but not confirmed: a Send indication.
    let n = client.send_to(PEER, b"hello", &mut out).unwrap();
    assert_eq!(n, out.len());
    let (peer, data) = {
        let mut m = Message::new();
        m.unmarshal_binary(&out).unwrap();
        assert_eq!(m.typ.method, rtc_stun::message::METHOD_SEND);
        let data = m.get(rtc_stun::attributes::ATTR_DATA).unwrap();
        let mut a = rtc_stun::xoraddr::XorMappedAddress::default();
        a.get_from_as(&m, rtc_stun::attributes::ATTR_XOR_PEER_ADDRESS)
            .unwrap();
        (std::net::SocketAddr::new(a.ip, a.port), data)
    };
    assert_eq!((peer, &data[..]), (PEER, &b"hello"[..]));
    for request in pending {
        client.handle_input(t0, &server.ok(&request, None)).unwrap();
    }
    out.clear();
    client.send_to(PEER, b"hello", &mut out).unwrap();
    assert_eq!(out, [0x40, 0x00, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o']);
    let stats = client.stats();
    assert_eq!(
        (stats.sent_indication.packets, stats.sent_channel.bytes),
        (1, 5)
    );
}

#[test]
fn channel_data_is_padded_over_streams() {
    let (mut client, _, _, _) = allocated(Transport::Tcp, true);
    let mut out = vec![0xAA];
    let n = client.send_to(PEER, b"hello", &mut out).unwrap();
    assert_eq!(n, 12);
    assert_eq!(
        &out[1..],
        [0x40, 0, 0, 5, b'h', b'e', b'l', b'l', b'o', 0, 0, 0]
    );
}

#[test]
fn inbound_data_is_borrowed_from_the_input() {
    let (mut client, _, t0, _) = allocated(Transport::Udp, true);
    let datagram = [0x40, 0x00, 0x00, 0x03, 1, 2, 3, 0];
    let Ok(Inbound::Data {
        peer,
        payload,
        channel,
    }) = client.handle_input(t0, &datagram)
    else {
        panic!()
    };
    assert_eq!((peer, channel), (PEER, Some(0x4000)));
    assert_eq!(payload.as_ptr(), datagram[4..].as_ptr(), "no copy");

    let other = "203.0.113.8:9".parse().unwrap();
    let indication = FakeServer::data_indication(other, b"stun check");
    let got = client.handle_input(t0, &indication).unwrap();
    assert_eq!(
        got,
        Inbound::Data {
            peer: other,
            payload: b"stun check",
            channel: None
        }
    );
    let stats = client.stats();
    assert_eq!(stats.received_channel.bytes, 3);
    assert_eq!(stats.received_indication.packets, 1);
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    let (mut client, server, t0, pending) = allocated(Transport::Udp, false);
    let cases: [(&[u8], &str); 5] = [
        (&[0x41, 0x00, 0x00, 0x00], "not ours"),
        (&[0x40, 0x00, 0x00, 0x09, 1], "truncated"),
        (b"\x80garbage", "neither STUN nor ChannelData"),
        (
            &[
                0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
            "request",
        ),
        (
            &[0x01, 0x01, 0x00, 0x04, 0x21, 0x12, 0xA4, 0x42],
            "truncated",
        ),
    ];
    for (input, text) in cases {
        let err = client.handle_input(t0, input).unwrap_err();
        assert!(err.to_string().contains(text), "{err}");
        assert!(err.to_string().contains("192.0.2.1:3478"), "{err}");
    }
    // An answer signed with another key is refused and the transaction stays open.
    let forged = FakeServer::new(fuzzing::USERNAME, "not-the-password").ok(&pending[0], None);
    let err = client.handle_input(t0, &forged).unwrap_err();
    assert!(matches!(err, InputError::BadAnswer { .. }), "{err}");
    assert!(err.to_string().contains("MESSAGE-INTEGRITY"), "{err}");
    assert!(events(&mut client).is_empty());
    client
        .handle_input(t0, &server.ok(&pending[0], None))
        .unwrap();
    assert_eq!(
        events(&mut client),
        [Event::PermissionCreated { peer: PEER.ip() }]
    );
    // A second answer to the same transaction is a late one, dropped.
    assert_eq!(
        client.handle_input(t0, &server.ok(&pending[0], None)),
        Ok(Inbound::Handled)
    );
    let stats = client.stats();
    assert_eq!((stats.late_answers, stats.input_errors), (1, 6));
}

#[test]
fn wrong_password_fails_as_unauthorized() {
    let server = FakeServer::default();
    let t0 = Instant::now();
    let config = ClientConfig::new(
        fuzzing::SERVER,
        Transport::Udp,
        fuzzing::USERNAME,
        Secret::new("wrong"),
    );
    let mut client = TurnClient::new(config).unwrap();
    client.allocate(t0);
    let out = drain(&mut client);
    client
        .handle_input(t0, &server.unauthorized(&out[0]))
        .unwrap();
    let out = drain(&mut client);
    assert!(!server.authentic(&out[0]));
    client
        .handle_input(t0, &server.unauthorized(&out[0]))
        .unwrap();
    let ev = events(&mut client);
    assert!(
        matches!(&ev[..], [Event::AllocationFailed { failure, .. }]
            if matches!(failure.kind, FailureKind::Unauthorized(_))),
        "{ev:?}"
    );
    // New credentials retry at once instead of waiting out the backoff.
    client.set_credentials(t0, "other:r58".into(), Secret::new("pw"));
    let out = drain(&mut client);
    let m = FakeServer::parse(&out[0]);
    assert_eq!(m.get(ATTR_USERNAME).unwrap(), b"other:r58");
}

#[test]
fn new_username_waits_for_the_next_allocation() {
    let (mut client, server, t0, _) = allocated(Transport::Udp, true);
    client.set_credentials(t0, "1800000000:r58".into(), Secret::new("next"));
    client.handle_timeout(t0 + secs(300.0));
    let out = drain(&mut client);
    assert!(
        server.authentic(&out[0]),
        "refresh still signed with the allocation's user"
    );
}

#[test]
fn lifetime_running_out_loses_the_allocation() {
    let server = FakeServer::default();
    let t0 = Instant::now();
    let (mut client, out) = prepared(&server, Transport::Udp, Stage::Authenticating, t0);
    client
        .handle_input(t0, &server.allocated(&out[0], secs(60.0)))
        .unwrap();
    events(&mut client);
    // Refresh at 30 s, never answered: its 39.5 s of retransmissions outlast the 60 s.
    let mut t = t0;
    while t < t0 + secs(60.0) {
        t = client.poll_timeout().unwrap();
        client.handle_timeout(t);
        drain(&mut client);
    }
    assert_eq!(t, t0 + secs(60.0));
    let ev = events(&mut client);
    assert!(
        matches!(&ev[..], [Event::AllocationLost { failure, .. }] if failure.kind == FailureKind::Expired),
        "{ev:?}"
    );
    assert_eq!(client.stats().allocations_lost.expired, 1);
}

#[test]
fn lost_connection_waits_for_allocate() {
    let (mut client, server, t0, _) = allocated(Transport::Tcp, true);
    client.handle_connection_lost(t0);
    let ev = events(&mut client);
    assert!(
        matches!(&ev[..], [Event::AllocationLost { failure, .. }] if failure.kind == FailureKind::ConnectionLost),
        "{ev:?}"
    );
    assert_eq!(
        (client.poll_timeout(), client.poll_transmit()),
        (None, None)
    );
    client.allocate(t0 + secs(2.0));
    let out = drain(&mut client);
    assert!(server.authentic(&out[0]));
}

#[test]
fn close_deletes_the_allocation() {
    let (mut client, server, t0, _) = allocated(Transport::Udp, true);
    client.close(t0);
    let out = drain(&mut client);
    assert_eq!((method(&out[0]), lifetime_of(&out[0])), (METHOD_REFRESH, 0));
    client
        .handle_input(t0, &server.ok(&out[0], Some(Duration::ZERO)))
        .unwrap();
    assert_eq!(events(&mut client), [Event::Closed]);
    assert_eq!(client.poll_timeout(), None);
    assert!(client.bind_channel(t0, PEER).is_err());
    client.allocate(t0);
    assert!(client.poll_transmit().is_none(), "closed stays closed");
}

#[test]
fn fuzz_entry_survives_answers_in_every_state() {
    let server = FakeServer::default();
    let t0 = Instant::now();
    let mut input = Vec::new();
    for stage in Stage::ALL {
        let (_, out) = prepared(&server, Transport::Udp, stage, t0);
        for request in out {
            for answer in [
                server.unauthorized(&request),
                server.error(&request, 437, "x"),
                server.ok(&request, Some(LIFETIME)),
                server.allocated(&request, LIFETIME),
            ] {
                input.extend_from_slice(&(answer.len() as u16).to_be_bytes());
                input.extend_from_slice(&answer);
            }
        }
    }
    fuzzing::server_input(&input);
    fuzzing::server_input(&input[..input.len() / 3]);
    fuzzing::server_input(&[0, 4, 0x40, 0, 0, 0, 0xFF]);
}

#[test]
fn unencodable_username_fails_the_allocation_with_the_reason() {
    let server = FakeServer::default();
    let t0 = Instant::now();
    let config = ClientConfig::new(
        fuzzing::SERVER,
        Transport::Udp,
        "u".repeat(600), // over STUN's 513-byte USERNAME limit
        Secret::new("pw"),
    );
    let mut client = TurnClient::new(config).unwrap();
    client.allocate(t0);
    let out = drain(&mut client);
    client
        .handle_input(t0, &server.unauthorized(&out[0]))
        .unwrap();
    assert!(drain(&mut client).is_empty());
    let ev = events(&mut client);
    let [Event::AllocationFailed { failure, .. }] = &ev[..] else {
        panic!("{ev:?}");
    };
    assert!(failure.to_string().contains("cannot encode"), "{failure}");
}

#[test]
fn a_probe_refreshes_at_once_and_finds_a_restarted_server() {
    let (mut client, server, t0, _) = allocated(Transport::Udp, true);
    // Long before the scheduled refresh, the driver has heard nothing for a while.
    let t = t0 + secs(10.0);
    client.probe(t);
    let out = drain(&mut client);
    assert_eq!(
        out.iter().map(|r| method(r)).collect::<Vec<_>>(),
        [METHOD_REFRESH]
    );
    // A second probe while the first is out sends nothing more.
    client.probe(t);
    assert!(drain(&mut client).is_empty());
    // The server restarted: it knows no such allocation.
    client
        .handle_input(t, &server.error(&out[0], 437, "Allocation Mismatch"))
        .unwrap();
    let ev = events(&mut client);
    assert!(
        matches!(&ev[..], [Event::AllocationLost { failure, .. }] if failure.kind == FailureKind::Mismatch),
        "{ev:?}"
    );
    assert_eq!(
        method(&drain(&mut client)[0]),
        METHOD_ALLOCATE,
        "allocates again at once"
    );
}
