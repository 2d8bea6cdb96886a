//! The connection core on a virtual clock: a client's whole exchange and every refusal.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;

use super::*;
use crate::hub::ReaderPacket;
use crate::media::WallClock;

struct Streams {
    token: Option<String>,
}

impl Catalog for Streams {
    fn describe(&self, name: &str) -> Option<StreamDescription> {
        (name == "cam0").then(sample_description)
    }

    fn required_token(&self, _name: &str) -> Option<String> {
        self.token.clone()
    }
}

const PEER: &str = "127.0.0.5:40000";

fn connection(now: Instant) -> Connection {
    connection_refusing(now, None)
}

fn connection_refusing(now: Instant, refuse: Option<u16>) -> Connection {
    Connection::new(
        now,
        ConnectionConfig {
            peer: PEER.parse().unwrap(),
            local: "127.0.0.1:8554".parse().unwrap(),
            udp_ports: Some((6970, 6971)),
            session_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(10),
            wall_clock: WallClock {
                instant: now,
                system: std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            },
            seed: 42,
            refuse,
        },
    )
}

/// Sends `text` and returns everything written to the connection, as text.
fn exchange(c: &mut Connection, now: Instant, catalog: &Streams, text: &str) -> String {
    c.handle_input(now, text.as_bytes(), catalog);
    let mut out = Vec::new();
    while let Some(o) = c.poll_output() {
        if let Output::Tcp(bytes) = o {
            out.extend(bytes);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn session_id(response: &str) -> String {
    header(response, "Session")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn video(epoch: u32, sequence: u16, keyframe_start: bool, at: Instant) -> ReaderPacket {
    ReaderPacket {
        track: 0,
        epoch,
        sequence,
        timestamp: u32::from(sequence) * 3000,
        marker: true,
        keyframe_start,
        arrival: at,
        payload: Bytes::from_static(&[0x65, 0xaa]),
    }
}

#[test]
fn a_tcp_client_describes_sets_up_both_tracks_and_plays() {
    let t0 = Instant::now();
    let streams = Streams { token: None };
    let mut c = connection(t0);
    let r = exchange(
        &mut c,
        t0,
        &streams,
        "OPTIONS rtsp://127.0.0.1:8554/cam0 RTSP/1.0\r\nCSeq: 1\r\n\r\n",
    );
    assert!(r.starts_with("RTSP/1.0 200 OK\r\n"), "{r}");
    assert!(header(&r, "Public").unwrap().contains("DESCRIBE"));
    assert_eq!(header(&r, "CSeq"), Some("1"));
    let r = exchange(
        &mut c,
        t0,
        &streams,
        "DESCRIBE rtsp://127.0.0.1:8554/cam0 RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n",
    );
    assert!(r.starts_with("RTSP/1.0 200 OK\r\n"), "{r}");
    assert_eq!(
        header(&r, "Content-Base"),
        Some("rtsp://127.0.0.1:8554/cam0/")
    );
    assert!(r.contains("sprop-parameter-sets=Z0LAHw==,aM4="), "{r}");
    assert!(r.contains("a=control:trackID=1"), "{r}");
    let r = exchange(
        &mut c,
        t0,
        &streams,
        "SETUP rtsp://127.0.0.1:8554/cam0/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
    );
    assert!(r.starts_with("RTSP/1.0 200 OK\r\n"), "{r}");
    assert!(
        header(&r, "Transport")
            .unwrap()
            .starts_with("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc="),
        "{r}"
    );
    let id = session_id(&r);
    assert!(header(&r, "Session").unwrap().ends_with(";timeout=60"));
    let r = exchange(
        &mut c,
        t0,
        &streams,
        &format!(
            "SETUP rtsp://127.0.0.1:8554/cam0/trackID=1 RTSP/1.0\r\nCSeq: 4\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n"
        ),
    );
    assert!(r.starts_with("RTSP/1.0 200 OK\r\n"), "{r}");
    assert_eq!(c.poll_event(), None, "no reader before PLAY");
    let r = exchange(
        &mut c,
        t0,
        &streams,
        &format!(
            "PLAY rtsp://127.0.0.1:8554/cam0/ RTSP/1.0\r\nCSeq: 5\r\nSession: {id}\r\nRange: npt=0.000-\r\n\r\n"
        ),
    );
    assert!(r.starts_with("RTSP/1.0 200 OK\r\n"), "{r}");
    let info = header(&r, "RTP-Info").unwrap();
    assert!(
        info.starts_with("url=rtsp://127.0.0.1:8554/cam0/trackID=0;seq="),
        "{info}"
    );
    assert_eq!(
        c.poll_event(),
        Some(Event::Play {
            stream: "cam0".into()
        })
    );
    // Media: video waits for a keyframe, then goes out on channel 0 with RTP-Info's numbers.
    c.handle_media(t0, &video(1, 10, false, t0));
    assert_eq!(c.poll_output(), None);
    c.handle_media(t0, &video(1, 11, true, t0));
    let Some(Output::Tcp(frame)) = c.poll_output() else {
        panic!("no frame")
    };
    assert_eq!(&frame[..4], &[b'$', 0, 0, 14]);
    let seq = u16::from_be_bytes([frame[6], frame[7]]);
    let announced: u16 = info
        .split(";seq=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(seq, announced);
    // A Sender Report on the RTCP channel once due.
    let due = c.poll_timeout().unwrap();
    assert!(due <= t0 + Duration::from_millis(200));
    c.handle_timeout(due);
    let Some(Output::Tcp(report)) = c.poll_output() else {
        panic!("no report")
    };
    assert_eq!(&report[..2], &[b'$', 1]);
    assert_eq!(report[5], 200);
    // TCP sessions do not time out while the connection lives.
    c.handle_timeout(t0 + Duration::from_secs(600));
    assert_eq!(c.poll_event(), None);
    while c.poll_output().is_some() {}
    let r = exchange(
        &mut c,
        t0,
        &streams,
        &format!(
            "TEARDOWN rtsp://127.0.0.1:8554/cam0/ RTSP/1.0\r\nCSeq: 6\r\nSession: {id}\r\n\r\n"
        ),
    );
    assert!(r.starts_with("RTSP/1.0 200 OK\r\n"), "{r}");
    assert_eq!(c.poll_event(), Some(Event::Close { reason: "teardown" }));
}

#[test]
fn udp_goes_to_the_requesting_address_only_and_times_out_without_keepalives() {
    let t0 = Instant::now();
    let streams = Streams { token: None };
    let mut c = connection(t0);
    let r = exchange(
        &mut c,
        t0,
        &streams,
        "SETUP rtsp://h/cam0/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=5000-5001;destination=192.0.2.9\r\n\r\n",
    );
    assert!(r.starts_with("RTSP/1.0 200 OK\r\n"), "{r}");
    assert!(
        header(&r, "Transport")
            .unwrap()
            .contains("client_port=5000-5001;server_port=6970-6971"),
        "{r}"
    );
    let id = session_id(&r);
    exchange(
        &mut c,
        t0,
        &streams,
        &format!("PLAY rtsp://h/cam0 RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n"),
    );
    c.handle_media(t0, &video(1, 1, true, t0));
    match c.poll_output() {
        Some(Output::Udp {
            to,
            rtcp: false,
            data,
        }) => {
            assert_eq!(to, "127.0.0.5:5000".parse::<SocketAddr>().unwrap());
            assert_eq!(data[1] & 0x7f, 96);
        }
        other => panic!("{other:?}"),
    }
    // A keep-alive within the timeout keeps it; silence past it ends it.
    let t1 = t0 + Duration::from_secs(50);
    let r = exchange(
        &mut c,
        t1,
        &streams,
        &format!("GET_PARAMETER rtsp://h/cam0 RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\n\r\n"),
    );
    assert!(r.starts_with("RTSP/1.0 200 OK\r\n"), "{r}");
    c.handle_timeout(t0 + Duration::from_secs(100));
    assert_eq!(
        c.poll_event(),
        Some(Event::Play {
            stream: "cam0".into()
        })
    );
    assert_eq!(c.poll_event(), None);
    // Receiver reports by UDP keep it alive too.
    assert_eq!(
        c.udp_rtcp_addresses(),
        ["127.0.0.5:5001".parse::<SocketAddr>().unwrap()]
    );
    let t2 = t1 + Duration::from_secs(55);
    c.handle_client_rtcp(t2);
    c.handle_timeout(t1 + Duration::from_secs(60));
    assert_eq!(c.poll_event(), None);
    c.handle_timeout(t2 + Duration::from_secs(60));
    assert_eq!(c.poll_event(), Some(Event::Close { reason: "timeout" }));
}

#[test]
fn bad_requests_get_their_status_and_the_connection_goes_on() {
    let t0 = Instant::now();
    let streams = Streams { token: None };
    let mut c = connection(t0);
    let status = |r: &str| r.split(' ').nth(1).unwrap_or("").to_owned();
    let cases = [
        ("OPTIONS * RTSP/1.0\r\n\r\n", "400"),
        ("OPTIONS * RTSP/1.0\r\nCSeq: abc\r\n\r\n", "400"),
        (
            "DESCRIBE rtsp://h/nosuch RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            "404",
        ),
        ("DESCRIBE rtsp://h/a%2fb RTSP/1.0\r\nCSeq: 2\r\n\r\n", "404"),
        (
            "PLAY rtsp://h/cam0 RTSP/1.0\r\nCSeq: 3\r\nSession: 1234\r\n\r\n",
            "454",
        ),
        ("TEARDOWN rtsp://h/cam0 RTSP/1.0\r\nCSeq: 4\r\n\r\n", "454"),
        (
            "SETUP rtsp://h/cam0/trackID=0 RTSP/1.0\r\nCSeq: 5\r\nTransport: RTP/AVP;multicast\r\n\r\n",
            "461",
        ),
        (
            "SETUP rtsp://h/cam0/trackID=0 RTSP/1.0\r\nCSeq: 6\r\nTransport: RTP/AVP;unicast\r\n\r\n",
            "461",
        ),
        (
            "SETUP rtsp://h/cam0/trackID=0 RTSP/1.0\r\nCSeq: 7\r\nTransport: RTP/AVP/TCP;unicast;mode=record\r\n\r\n",
            "461",
        ),
        (
            "SETUP rtsp://h/cam0/trackID=9 RTSP/1.0\r\nCSeq: 8\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n",
            "404",
        ),
        (
            "SETUP rtsp://h/cam0 RTSP/1.0\r\nCSeq: 9\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n",
            "459",
        ),
        ("ANNOUNCE rtsp://h/cam0 RTSP/1.0\r\nCSeq: 10\r\n\r\n", "405"),
        ("FLY rtsp://h/cam0 RTSP/1.0\r\nCSeq: 11\r\n\r\n", "501"),
        ("OPTIONS * RTSP/2.0\r\nCSeq: 12\r\n\r\n", "505"),
    ];
    for (request, want) in cases {
        let r = exchange(&mut c, t0, &streams, request);
        assert_eq!(status(&r), want, "{request}: {r}");
    }
    // Interleaved frames on channels no track uses are ignored; the next request is answered.
    let r = exchange(
        &mut c,
        t0,
        &streams,
        "$\x07\x00\x03abc$\x00\x00\x00OPTIONS * RTSP/1.0\r\nCSeq: 13\r\n\r\n",
    );
    assert_eq!(status(&r), "200", "{r}");
    assert_eq!(c.stats.ignored_frames, 2);
    assert_eq!(c.poll_event(), None, "still open");
    // A session: PLAY without naming it is 455; another stream in it 459; a wrong id 454.
    let r = exchange(
        &mut c,
        t0,
        &streams,
        "SETUP rtsp://h/cam0/trackID=0 RTSP/1.0\r\nCSeq: 14\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n",
    );
    assert_eq!(status(&r), "200", "{r}");
    let id = session_id(&r);
    let r = exchange(
        &mut c,
        t0,
        &streams,
        "PLAY rtsp://h/cam0 RTSP/1.0\r\nCSeq: 15\r\n\r\n",
    );
    assert_eq!(status(&r), "455");
    let r = exchange(
        &mut c,
        t0,
        &streams,
        &format!(
            "SETUP rtsp://h/other/trackID=0 RTSP/1.0\r\nCSeq: 16\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n"
        ),
    );
    assert_eq!(status(&r), "459", "{r}");
    let r = exchange(
        &mut c,
        t0,
        &streams,
        "PLAY rtsp://h/cam0 RTSP/1.0\r\nCSeq: 17\r\nSession: FFFF\r\n\r\n",
    );
    assert_eq!(status(&r), "454");
    // Garbage that is no message: one 400, then the connection closes.
    let r = exchange(&mut c, t0, &streams, "\x16\x03\x01 hello\r\n\r\n");
    assert_eq!(status(&r), "400", "{r}");
    assert_eq!(
        c.poll_event(),
        Some(Event::Close {
            reason: "not an RTSP message"
        })
    );
}

#[test]
fn an_endless_request_is_cut_off() {
    let t0 = Instant::now();
    let streams = Streams { token: None };
    let mut c = connection(t0);
    let mut r = exchange(
        &mut c,
        t0,
        &streams,
        "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Long: ",
    );
    for _ in 0..70 {
        r += &exchange(&mut c, t0, &streams, &"a".repeat(1024));
    }
    assert!(r.starts_with("RTSP/1.0 413 "), "{r}");
    assert!(matches!(c.poll_event(), Some(Event::Close { .. })));
}

#[test]
fn idle_connections_are_closed() {
    let t0 = Instant::now();
    let mut c = connection(t0);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    c.handle_timeout(t0 + Duration::from_secs(9));
    assert_eq!(c.poll_event(), None);
    c.handle_timeout(t0 + Duration::from_secs(10));
    assert_eq!(c.poll_event(), Some(Event::Close { reason: "timeout" }));
}

#[test]
fn credentials_are_checked_with_basic_and_digest() {
    let t0 = Instant::now();
    let streams = Streams {
        token: Some("s3cret".into()),
    };
    let mut c = connection(t0);
    let r = exchange(
        &mut c,
        t0,
        &streams,
        "DESCRIBE rtsp://h/cam0 RTSP/1.0\r\nCSeq: 1\r\n\r\n",
    );
    assert!(r.starts_with("RTSP/1.0 401 "), "{r}");
    let challenges: Vec<&str> = r
        .lines()
        .filter(|l| l.starts_with("WWW-Authenticate"))
        .collect();
    assert_eq!(challenges.len(), 2, "{r}");
    assert!(challenges[0].contains("Digest realm=\"r58\", nonce=\""));
    let nonce = challenges[0]
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let basic = |password: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("mixer:{password}"))
    };
    let r = exchange(
        &mut c,
        t0,
        &streams,
        &format!(
            "DESCRIBE rtsp://h/cam0 RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Basic {}\r\n\r\n",
            basic("wrong")
        ),
    );
    assert!(r.starts_with("RTSP/1.0 401 "), "{r}");
    let r = exchange(
        &mut c,
        t0,
        &streams,
        &format!(
            "DESCRIBE rtsp://h/cam0 RTSP/1.0\r\nCSeq: 3\r\nAuthorization: Basic {}\r\n\r\n",
            basic("s3cret")
        ),
    );
    assert!(r.starts_with("RTSP/1.0 200 "), "{r}");
    let md5 = |s: String| {
        use md5::Digest as _;
        md5::Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let digest = |password: &str, method: &str| {
        let ha1 = md5(format!("mixer:r58:{password}"));
        let ha2 = md5(format!("{method}:rtsp://h/cam0/trackID=0"));
        let response = md5(format!("{ha1}:{nonce}:{ha2}"));
        format!(
            "Digest username=\"mixer\", realm=\"r58\", nonce=\"{nonce}\", uri=\"rtsp://h/cam0/trackID=0\", response=\"{response}\""
        )
    };
    let setup = |auth: String| {
        format!(
            "SETUP rtsp://h/cam0/trackID=0 RTSP/1.0\r\nCSeq: 4\r\nAuthorization: {auth}\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n"
        )
    };
    let r = exchange(&mut c, t0, &streams, &setup(digest("wrong", "SETUP")));
    assert!(r.starts_with("RTSP/1.0 401 "), "{r}");
    let r = exchange(&mut c, t0, &streams, &setup(digest("s3cret", "DESCRIBE")));
    assert!(
        r.starts_with("RTSP/1.0 401 "),
        "the method is part of the digest: {r}"
    );
    let r = exchange(&mut c, t0, &streams, &setup(digest("s3cret", "SETUP")));
    assert!(r.starts_with("RTSP/1.0 200 "), "{r}");
}

#[test]
fn a_refused_connection_answers_with_the_status_and_closes() {
    let t0 = Instant::now();
    let streams = Streams { token: None };
    let mut c = connection_refusing(t0, Some(453));
    let r = exchange(
        &mut c,
        t0,
        &streams,
        "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
    );
    assert!(r.starts_with("RTSP/1.0 453 "), "{r}");
    assert_eq!(c.poll_event(), Some(Event::Close { reason: "refused" }));
}

#[test]
fn pause_stops_media_and_play_resumes_at_a_keyframe() {
    let t0 = Instant::now();
    let streams = Streams { token: None };
    let mut c = connection(t0);
    let r = exchange(
        &mut c,
        t0,
        &streams,
        "SETUP rtsp://h/cam0/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n",
    );
    let id = session_id(&r);
    exchange(
        &mut c,
        t0,
        &streams,
        &format!("PLAY rtsp://h/cam0 RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n"),
    );
    c.handle_media(t0, &video(1, 1, true, t0));
    assert!(c.poll_output().is_some());
    let r = exchange(
        &mut c,
        t0,
        &streams,
        &format!("PAUSE rtsp://h/cam0 RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\n\r\n"),
    );
    assert!(r.starts_with("RTSP/1.0 200 "), "{r}");
    // Paused, even a TCP session needs keep-alives.
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    c.handle_media(t0, &video(1, 2, false, t0));
    assert_eq!(c.poll_output(), None);
    exchange(
        &mut c,
        t0,
        &streams,
        &format!("PLAY rtsp://h/cam0 RTSP/1.0\r\nCSeq: 4\r\nSession: {id}\r\n\r\n"),
    );
    assert_eq!(
        c.poll_event(),
        Some(Event::Play {
            stream: "cam0".into()
        })
    );
    assert_eq!(c.poll_event(), None, "one reader for the connection");
    c.handle_media(t0, &video(1, 3, false, t0));
    assert_eq!(c.poll_output(), None, "waits for a keyframe");
    c.handle_media(t0, &video(1, 4, true, t0));
    assert!(c.poll_output().is_some());
}

/// Through the engine: a WHIP publisher, an RTSP reader playing over TCP, then a second
/// publisher taking the stream over with unrelated numbering (starting mid-GOP). The reader's
/// RTP stays one SSRC with contiguous sequence numbers and advancing timestamps, as a WHEP
/// viewer's does (`engine::tests::takeover_keeps_viewer_sequence_numbers_contiguous`).
#[test]
fn a_publisher_takeover_continues_the_rtsp_timeline() {
    use crate::engine::EngineConfig;
    use crate::testing::client::{ClientRole, H264_PT};
    use crate::testing::harness::{H264Source, Harness};

    let frame = Duration::from_millis(33);
    let mut h = Harness::new(EngineConfig::default()).expect("engine");
    let first = h.open(ClientRole::Publish, "guest").expect("publish");
    assert!(h.connect_all());
    let mut source = H264Source::new(h.clients[first].client.ssrcs.0, H264_PT);
    let send = |h: &mut Harness, publisher: usize, source: &mut H264Source| {
        for p in source.next_frame() {
            h.clients[publisher].client.send_rtp(&p).expect("send");
        }
        h.advance(frame);
    };
    for _ in 0..5 {
        send(&mut h, first, &mut source);
    }
    let description = crate::rtsp::describe(&h.engine, "guest").expect("described");
    assert!(
        description.tracks[0].parameter_sets.is_some(),
        "SPS/PPS from the keyframe cache"
    );
    struct One(StreamDescription);
    impl Catalog for One {
        fn describe(&self, _: &str) -> Option<StreamDescription> {
            Some(self.0.clone())
        }
        fn required_token(&self, _: &str) -> Option<String> {
            None
        }
    }
    let catalog = One(description);
    let mut c = connection(h.now);
    let r = {
        c.handle_input(h.now, b"SETUP rtsp://h/guest/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n", &catalog);
        let Some(Output::Tcp(r)) = c.poll_output() else {
            panic!()
        };
        String::from_utf8(r).unwrap()
    };
    let id = session_id(&r);
    c.handle_input(
        h.now,
        format!("PLAY rtsp://h/guest RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n").as_bytes(),
        &catalog,
    );
    while c.poll_output().is_some() {}
    let (_, mut rx) = h
        .engine
        .attach_reader(h.now, "guest", "rtsp", 4096)
        .expect("reader");
    let mut received: Vec<(u32, u16, u32)> = Vec::new();
    let take = |c: &mut Connection,
                rx: &mut tokio::sync::mpsc::Receiver<ReaderPacket>,
                now: Instant,
                received: &mut Vec<(u32, u16, u32)>| {
        while let Ok(p) = rx.try_recv() {
            c.handle_media(now, &p);
        }
        while let Some(out) = c.poll_output() {
            let Output::Tcp(bytes) = out else { continue };
            let mut at = 0;
            while at + 4 <= bytes.len() {
                let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
                let rtp = &bytes[at + 4..at + 4 + len];
                if bytes[at + 1] == 0 {
                    received.push((
                        u32::from_be_bytes(rtp[8..12].try_into().unwrap()),
                        u16::from_be_bytes([rtp[2], rtp[3]]),
                        u32::from_be_bytes(rtp[4..8].try_into().unwrap()),
                    ));
                }
                at += 4 + len;
            }
        }
    };
    for _ in 0..40 {
        send(&mut h, first, &mut source);
        take(&mut c, &mut rx, h.now, &mut received);
    }
    let before = received.len();
    let second = h
        .open(ClientRole::Publish, "guest")
        .expect("second publisher");
    assert!(h.connect_all());
    let mut source2 = H264Source::new(h.clients[second].client.ssrcs.0, H264_PT);
    source2.sequence = 50_000;
    source2.frame = 7; // mid-GOP: nothing until its keyframe at frame 30
    for _ in 0..60 {
        send(&mut h, second, &mut source2);
        take(&mut c, &mut rx, h.now, &mut received);
    }
    assert!(
        received.len() > before + 100,
        "the new publisher reaches the reader"
    );
    assert!(
        received.iter().all(|(ssrc, _, _)| *ssrc == received[0].0),
        "one SSRC"
    );
    for pair in received.windows(2) {
        let ((_, s1, t1), (_, s2, t2)) = (pair[0], pair[1]);
        assert_eq!(s2, s1.wrapping_add(1), "contiguous sequence numbers");
        assert!(
            t2.wrapping_sub(t1) < 90_000 * 2,
            "timestamps advance: {t1} -> {t2}"
        );
    }
}
