//! The relay's data path allocates nothing per packet: `send_to` (ChannelData and Send
//! indication) into a reused buffer, `handle_input` of ChannelData and Data indications, and
//! the stream framer once warm. Counted with a global allocator that counts this thread's
//! allocations only (the test harness allocates on other threads meanwhile).

use std::net::SocketAddr;
use std::time::Instant;

use sfu::testing::alloc::{self, CountingAlloc};
use sfu::turn::client::fuzzing::{FakeServer, PEER, Stage, prepared};
use sfu::turn::client::{Inbound, StreamFramer, Transport, TurnClient};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = alloc::this_thread();
    f();
    alloc::this_thread() - before
}

/// A client with a bound channel to [`PEER`] and a permission (no channel) for `other`.
fn ready(transport: Transport, other: SocketAddr) -> TurnClient {
    let server = FakeServer::default();
    let now = Instant::now();
    let (mut client, out) = prepared(&server, transport, Stage::Allocated, now);
    for request in &out {
        client.handle_input(now, &server.ok(request, None)).unwrap();
    }
    client.create_permission(now, other.ip()).unwrap();
    let request = client.poll_transmit().unwrap();
    client
        .handle_input(now, &server.ok(&request, None))
        .unwrap();
    while client.poll_event().is_some() {}
    client
}

#[test]
fn data_path_does_not_allocate() {
    let other: SocketAddr = "203.0.113.50:7000".parse().unwrap();
    let payload = [0x80u8; 1200];
    // The counter sees this thread's allocations.
    assert_eq!(
        allocations_in(|| drop(std::hint::black_box(vec![1u8; 64]))),
        1
    );
    for transport in [Transport::Udp, Transport::Tcp] {
        let mut client = ready(transport, other);
        let now = Instant::now();
        let mut out = Vec::with_capacity(2048);
        let mut channel_data = Vec::new();
        client.send_to(PEER, &payload, &mut channel_data).unwrap();
        let indication = FakeServer::data_indication(other, &payload);
        let mut framer = StreamFramer::default();
        let mut stream = channel_data.clone();
        stream.extend_from_slice(&indication);
        // Warm: the framer's buffer grows to its working size once.
        framer.push(&stream).unwrap();
        while framer.next_frame().unwrap().is_some() {}

        let n = allocations_in(|| {
            for _ in 0..1000 {
                out.clear();
                client.send_to(PEER, &payload, &mut out).unwrap();
                out.clear();
                client.send_to(other, &payload, &mut out).unwrap();
                let got = client.handle_input(now, &channel_data).unwrap();
                assert!(matches!(
                    got,
                    Inbound::Data {
                        channel: Some(_),
                        ..
                    }
                ));
                let got = client.handle_input(now, &indication).unwrap();
                assert!(matches!(got, Inbound::Data { channel: None, .. }));
                framer.push(&stream).unwrap();
                while let Some(frame) = framer.next_frame().unwrap() {
                    client.handle_input(now, frame).unwrap();
                }
            }
        });
        assert_eq!(n, 0, "{transport}: allocations on the data path");
        let stats = client.stats();
        assert_eq!(stats.sent_channel.packets, 1001);
        assert_eq!(stats.received_indication.packets, 2000);
    }
}
