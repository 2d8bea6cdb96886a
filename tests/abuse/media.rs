//! Abuse of the media UDP port: floods of STUN checks with wrong credentials, and RTP, DTLS
//! and junk from addresses no session owns. Each must be dropped, counted in /metrics, and
//! leave the engine's tables exactly as they were; nothing is sent back to the flooder.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::server::{CHROME_WHIP, Server, WHIP_CLIENT_UFRAG, sdp_attr};

const MAGIC_COOKIE: u32 = 0x2112_A442;

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn attribute(out: &mut Vec<u8>, typ: u16, value: &[u8]) {
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// A well-formed STUN Binding request for `username`, with a MESSAGE-INTEGRITY that no
/// password produces (random bytes) and a correct FINGERPRINT.
fn binding_request(username: &str, seed: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(96);
    m.extend_from_slice(&0x0001u16.to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    for i in 0..3u32 {
        m.extend_from_slice(&(seed.wrapping_mul(2_654_435_761).wrapping_add(i)).to_be_bytes());
    }
    attribute(&mut m, 0x0006, username.as_bytes());
    attribute(&mut m, 0x0024, &0x6e00_01ffu32.to_be_bytes()); // PRIORITY
    let integrity: Vec<u8> = (0..20u32)
        .map(|i| (seed ^ i.wrapping_mul(37)) as u8)
        .collect();
    let len_with_mi = (m.len() - 20 + 24) as u16;
    m[2..4].copy_from_slice(&len_with_mi.to_be_bytes());
    attribute(&mut m, 0x0008, &integrity);
    let len_with_fp = (m.len() - 20 + 8) as u16;
    m[2..4].copy_from_slice(&len_with_fp.to_be_bytes());
    let fingerprint = crc32(&m) ^ 0x5354_554E;
    attribute(&mut m, 0x8028, &fingerprint.to_be_bytes());
    m
}

/// Sends `datagrams` in bursts small enough that loopback does not drop them, then waits until
/// the server counted them (or 5 s passed). Returns the server's count of datagrams received.
fn flood(server: &Server, socket: &UdpSocket, datagrams: &[Vec<u8>]) -> f64 {
    let before = server.metric("r58_datagrams_in_total");
    for burst in datagrams.chunks(50) {
        for d in burst {
            socket.send_to(d, server.udp).expect("send");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut received = 0.0;
    while Instant::now() < deadline {
        received = server.metric("r58_datagrams_in_total") - before;
        if received >= datagrams.len() as f64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    received
}

/// Nothing comes back to `socket` within 300 ms.
#[track_caller]
fn assert_silent(socket: &UdpSocket) {
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0u8; 1500];
    if let Ok((n, from)) = socket.recv_from(&mut buf) {
        panic!("the server answered the flood: {n} bytes from {from}");
    }
}

#[test]
fn stun_flood_with_wrong_credentials_is_dropped_counted_and_allocates_nothing() {
    let mut server = Server::start("", &[]);
    // A live session, so part of the flood names a real server ufrag (and must fail on the
    // message integrity) and part names none.
    let created = server.post_sdp("/whip/target", CHROME_WHIP);
    assert_eq!(created.status, 201, "{created:?}");
    // Its return feed (program picture, mix-minus) opens within 200 ms: let it, first.
    server.wait_for_stream("target.return");
    let answer = created.text();
    let server_ufrag = sdp_attr(&answer, "ice-ufrag").expect("ufrag").to_owned();
    let tables_before = server.engine_tables();
    let rejected_before = server.metric("r58_stun_rejected_total");
    let cpu_before = server.cpu_time();

    const EACH: u32 = 10_000;
    let mut datagrams = Vec::with_capacity(3 * EACH as usize);
    for i in 0..EACH {
        // Right ufrags, wrong password.
        datagrams.push(binding_request(
            &format!("{server_ufrag}:{WHIP_CLIENT_UFRAG}"),
            i,
        ));
        // Unknown server ufrag.
        datagrams.push(binding_request(&format!("nope{i}:{WHIP_CLIENT_UFRAG}"), i));
        // Right server ufrag, someone else's client ufrag.
        datagrams.push(binding_request(&format!("{server_ufrag}:evil{i}"), i));
    }
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let started = Instant::now();
    let received = flood(&server, &socket, &datagrams);
    let elapsed = started.elapsed();
    let cpu = server.cpu_time().saturating_sub(cpu_before);
    let rejected = server.metric("r58_stun_rejected_total") - rejected_before;
    eprintln!(
        "STUN flood: {} sent, {received} received in {elapsed:?}, {rejected} rejected; server CPU {cpu:?} \
         (~{:.2} us per datagram, includes the /metrics polls)",
        datagrams.len(),
        cpu.as_secs_f64() * 1e6 / received.max(1.0)
    );
    assert!(
        received >= 0.95 * datagrams.len() as f64,
        "only {received} arrived"
    );
    assert_eq!(rejected, received, "every check received was rejected");
    assert_eq!(
        server.engine_tables(),
        tables_before,
        "a flood must not grow any table"
    );
    assert_silent(&socket);
    server.assert_serves();
}

#[test]
fn rtp_dtls_and_junk_from_unknown_addresses_are_dropped_and_counted() {
    let mut server = Server::start("", &[]);
    let created = server.post_sdp("/whip/target", CHROME_WHIP);
    assert_eq!(created.status, 201, "{created:?}");
    // Its return feed (program picture, mix-minus) opens within 200 ms: let it, first.
    server.wait_for_stream("target.return");
    let tables_before = server.engine_tables();
    let unknown_before = server.metric("r58_datagrams_unknown_source_total");
    let mut datagrams = Vec::new();
    for i in 0..3000u32 {
        // RTP version 2, payload type 96, sequence i.
        let mut rtp = vec![0x80, 96];
        rtp.extend_from_slice(&(i as u16).to_be_bytes());
        rtp.extend_from_slice(&(i * 3000).to_be_bytes());
        rtp.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        rtp.extend_from_slice(&[0xAB; 1000]);
        datagrams.push(rtp);
        // A DTLS ClientHello record header and junk.
        let mut dtls = vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, (i % 256) as u8, 0, 40];
        dtls.extend_from_slice(&[1; 40]);
        datagrams.push(dtls);
        // A first byte that no protocol on the port uses.
        datagrams.push(vec![0xF0 | (i % 16) as u8; 64]);
    }
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let received = flood(&server, &socket, &datagrams);
    let unknown = server.metric("r58_datagrams_unknown_source_total") - unknown_before;
    assert!(
        received >= 0.95 * datagrams.len() as f64,
        "only {received} arrived"
    );
    assert_eq!(
        unknown, received,
        "every datagram received was counted as unknown"
    );
    assert_eq!(server.engine_tables(), tables_before);
    assert_silent(&socket);
    server.assert_serves();
}
