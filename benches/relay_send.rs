//! The cost of relaying: one delta frame (8 packets, 7 x 1208 bytes and a shorter last one) to
//! each of N viewers, sent straight to the viewers (the driver's `GsoSender`, GSO on) and sent
//! through r58's own TURN allocation (`RelayLink::send_all`: each packet framed as ChannelData
//! for its peer and the flush sent to the TURN server in `sendmmsg`/GSO batches). Same run, same packets; reports the sending thread's CPU time per
//! datagram (`/proc/thread-self/schedstat`) and the ratio. The TURN server is a local socket
//! that is drained between rounds, untimed; the client was allocated with a channel per viewer
//! against the test support's scripted server.
//!
//! cargo bench --bench relay_send [-- 200]

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use sfu::engine::TransmitQueue;
use sfu::net::relay::RelayLink;
use sfu::net::udp_batch::GsoSender;
use sfu::turn::client::Transport;
use sfu::turn::client::fuzzing::{FakeServer, Stage, prepared};
use sfu::webrtc::PeerAddr;

mod common;
use common::{drain, thread_cpu_ns};

const ROUNDS: usize = 60;

fn receiver() -> UdpSocket {
    let r = UdpSocket::bind("127.0.0.1:0").expect("bind");
    r.set_nonblocking(true).expect("nonblocking");
    socket2::SockRef::from(&r)
        .set_recv_buffer_size(8 << 20)
        .expect("rcvbuf");
    r
}

fn main() {
    let viewers: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let sizes = [1208usize, 1208, 1208, 1208, 1208, 1208, 1208, 1000];
    let payloads: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![0x80; n]).collect();

    // Direct: N viewer sockets.
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket2::SockRef::from(&tx)
        .set_send_buffer_size(8 << 20)
        .expect("sndbuf");
    let receivers: Vec<UdpSocket> = (0..viewers).map(|_| receiver()).collect();
    let addrs: Vec<SocketAddr> = receivers.iter().map(|r| r.local_addr().unwrap()).collect();

    // Relay: a socket standing in for the TURN server, and a client with a channel per viewer.
    let server = FakeServer::default();
    let turn = receiver();
    let now = Instant::now();
    let (mut client, out) = prepared(&server, Transport::Udp, Stage::Allocated, now);
    for request in &out {
        client
            .handle_input(now, &server.ok(request, None))
            .expect("answer");
    }
    let peers: Vec<SocketAddr> = (0..viewers)
        .map(|i| SocketAddr::from(([198, 51, 100, (i / 250) as u8 + 1], 10_000 + i as u16)))
        .collect();
    for peer in &peers {
        client
            .create_permission(now, peer.ip())
            .expect("permission");
        client.bind_channel(now, *peer).expect("channel");
        while let Some(request) = client.poll_transmit() {
            client
                .handle_input(now, &server.ok(&request, None))
                .expect("answer");
        }
    }
    while client.poll_event().is_some() {}
    assert!(
        peers.iter().all(|p| client.channel(*p).is_some()),
        "every viewer has a channel"
    );
    let mut probe = Vec::new();
    if let Err(e) = client.send_to(peers[0], &payloads[0], &mut probe) {
        panic!("send_to: {e}");
    }
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.connect(turn.local_addr().unwrap()).expect("connect");
    socket.set_nonblocking(true).expect("nonblocking");
    socket2::SockRef::from(&socket)
        .set_send_buffer_size(8 << 20)
        .expect("sndbuf");
    // The client believes its server is the test support's (a documentation address); the
    // link sends to the local stand-in, so nothing leaves this machine.
    let mut link = RelayLink::with_client(
        client,
        tokio::net::UdpSocket::from_std(socket).unwrap(),
        turn.local_addr().unwrap(),
    );

    // The engine's queue for one frame, packet by packet to every viewer, as fan-out makes it.
    let mut direct_queue = TransmitQueue::default();
    let mut relay_queue = TransmitQueue::default();
    for payload in &payloads {
        for i in 0..viewers {
            direct_queue.push(PeerAddr::direct(addrs[i]), payload);
            relay_queue.push(PeerAddr::relayed(peers[i]), payload);
        }
    }
    let mut gso = GsoSender::new(true);
    let datagrams = (sizes.len() * viewers) as u64;
    let (mut direct_ns, mut relay_ns) = (0u64, 0u64);
    let (mut direct_got, mut relay_got) = (0usize, 0usize);
    for round in 0..ROUNDS {
        // Direct, as Lane::send: the datagrams collected, then GsoSender.
        let t0 = thread_cpu_ns();
        let list: Vec<(SocketAddr, &[u8])> =
            direct_queue.pending().map(|(to, d)| (to.addr, d)).collect();
        let dropped = gso.send(&tx, &list);
        let t1 = thread_cpu_ns();
        drop(list);
        // Relay, as Lane::send on the driver's thread: the relayed datagrams of the queue
        // handed to RelayLink::send_all.
        let t2 = thread_cpu_ns();
        let relay_dropped = link.send_all(
            relay_queue
                .pending()
                .filter(|(to, _)| to.via == sfu::webrtc::Via::Relay)
                .map(|(to, d)| (to.addr, d)),
        );
        let t3 = thread_cpu_ns();
        assert_eq!((dropped, relay_dropped), (0, 0), "round {round}: dropped");
        if round > 0 {
            direct_ns += t1 - t0;
            relay_ns += t3 - t2;
        }
        direct_got += drain(&receivers);
        relay_got += drain(std::slice::from_ref(&turn));
    }
    let measured = (ROUNDS - 1) as u64 * datagrams;
    let per = |ns: u64| ns as f64 / measured as f64;
    println!(
        "relay_send: {viewers} viewers x {} packets, {} rounds",
        sizes.len(),
        ROUNDS - 1
    );
    println!(
        "  direct (GsoSender to each viewer):     {:7.0} ns CPU per datagram ({} received)",
        per(direct_ns),
        direct_got
    );
    println!(
        "  relay  (ChannelData to the TURN server): {:5.0} ns CPU per datagram ({} received)",
        per(relay_ns),
        relay_got
    );
    println!(
        "  relay / direct: {:.2}x",
        relay_ns as f64 / direct_ns.max(1) as f64
    );
}
