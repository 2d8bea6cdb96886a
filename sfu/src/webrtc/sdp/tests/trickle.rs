use std::net::SocketAddr;

use super::answer::{PWD, UFRAG, cands};
use super::*;

/// A fragment as a browser WHIP client PATCHes it.
pub(super) const CHROME_FRAG: &str = "a=ice-ufrag:Xp7q\r\n\
a=ice-pwd:Vd3kqL9rT2mN8bW4yH6cJ1sF\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=mid:0\r\n\
a=candidate:1467250027 1 udp 2122260223 192.168.1.23 54321 typ host generation 0 ufrag Xp7q network-id 1\r\n\
a=candidate:2753440121 1 udp 2122262783 2001:db8:1:2::23 54322 typ host generation 0 ufrag Xp7q network-id 2\r\n\
a=candidate:842163049 1 udp 1686052607 203.0.113.9 61000 typ srflx raddr 192.168.1.23 rport 54321 generation 0 ufrag Xp7q network-id 1\r\n\
a=candidate:3362811957 1 tcp 1518280447 192.168.1.23 9 typ host tcptype active generation 0\r\n\
a=candidate:1 1 udp 2122260223 4c8b1f6e-2a3d-4e5f-9a0b-1c2d3e4f5a6b.local 54321 typ host\r\n\
a=end-of-candidates\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn chrome_fragment() {
    let f = parse_sdpfrag(CHROME_FRAG).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.ice_ufrag.as_deref(), Some("Xp7q"));
    assert_eq!(f.ice_pwd.as_deref(), Some("Vd3kqL9rT2mN8bW4yH6cJ1sF"));
    assert!(f.end_of_candidates);
    assert_eq!(f.candidates.len(), 5);
    assert!(
        f.candidates
            .iter()
            .all(|(mid, _)| mid.as_deref() == Some("0"))
    );
    let parsed: Vec<_> = f
        .candidates
        .iter()
        .map(|(_, c)| parse_candidate_addr(c))
        .collect();
    assert_eq!(
        parsed,
        [
            Some((addr("192.168.1.23:54321"), "host".to_owned())),
            Some((addr("[2001:db8:1:2::23]:54322"), "host".to_owned())),
            Some((addr("203.0.113.9:61000"), "srflx".to_owned())),
            None, // TCP
            None, // mDNS
        ]
    );
}

#[test]
fn fragment_structure() {
    // Candidate before a=mid still gets the section's mid; LF line ends; session candidate.
    let body = "a=candidate:1 1 UDP 1 10.0.0.1 1 typ host\n\nm=video 9 RTP/AVP 0\n\
                a=candidate:2 1 udp 2 10.0.0.2 2 typ relay raddr 1.2.3.4 rport 5\na=mid:v\n\
                m=audio 9 RTP/AVP 0\na=mid:a\na=ice-ufrag:abcd\na=candidate:3 1 udp 3 ::1 3 typ prflx\n";
    let f = parse_sdpfrag(body).unwrap_or_else(|e| panic!("{e}"));
    let mids: Vec<Option<&str>> = f.candidates.iter().map(|(m, _)| m.as_deref()).collect();
    assert_eq!(mids, [None, Some("v"), Some("a")]);
    assert_eq!(f.ice_ufrag.as_deref(), Some("abcd"));
    assert!(!f.end_of_candidates);
    assert_eq!(
        parse_candidate_addr(&f.candidates[1].1),
        Some((addr("10.0.0.2:2"), "relay".to_owned()))
    );
    assert_eq!(
        parse_candidate_addr(&f.candidates[2].1),
        Some((addr("[::1]:3"), "prflx".to_owned()))
    );
    assert_eq!(parse_sdpfrag(""), Ok(SdpFrag::default()));
    assert_eq!(
        parse_sdpfrag("a=end-of-candidates\r\n").map(|f| f.end_of_candidates),
        Ok(true)
    );
}

#[test]
fn fragment_errors() {
    assert_eq!(
        parse_sdpfrag("a=ice-ufrag:abcd\r\nv=0\r\n"),
        Err(SdpError::FragmentBadLine { line: 2 })
    );
    assert_eq!(
        parse_sdpfrag("garbage"),
        Err(SdpError::FragmentBadLine { line: 1 })
    );
    for body in [
        "a=ice-ufrag:abcd\na=ice-ufrag:efgh\n",
        "a=ice-ufrag:ab cd\n",
        "a=ice-pwd:\n",
        "a=mid:0\n",
        "m=audio 9 RTP/AVP 0\na=mid:0\na=mid:1\n",
        "m=audio 9 RTP/AVP 0\na=mid:\n",
        "a=candidate:\n",
        "a=candidate:1 1 udp 1 1.2.3.4 5 typ host\u{7}\n",
    ] {
        assert!(
            matches!(parse_sdpfrag(body), Err(SdpError::FragmentInvalid(_))),
            "{body:?}"
        );
    }
    let big = "a=x\n".repeat(MAX_SDP_BYTES / 4 + 1);
    assert!(matches!(
        parse_sdpfrag(&big),
        Err(SdpError::TooLarge { .. })
    ));
}

#[test]
fn candidate_addresses() {
    let cases: [(&str, Option<(&str, &str)>); 12] = [
        (
            "1 1 udp 2122260223 192.0.2.1 5000 typ host",
            Some(("192.0.2.1:5000", "host")),
        ),
        (
            "candidate:1 1 UDP 2122260223 192.0.2.1 5000 typ host",
            Some(("192.0.2.1:5000", "host")),
        ),
        (
            "1 1 udp 1 fe80::1 5000 typ host generation 0",
            Some(("[fe80::1]:5000", "host")),
        ),
        (
            "1 1 udp 1 [2001:db8::1] 5000 typ srflx raddr :: rport 0",
            Some(("[2001:db8::1]:5000", "srflx")),
        ),
        ("1 1 tcp 1 192.0.2.1 9 typ host tcptype active", None),
        ("1 1 udp 1 host.local 5000 typ host", None),
        ("1 1 udp 1 192.0.2.1 70000 typ host", None),
        ("1 1 udp 1 192.0.2.1 5000 type host", None),
        ("1 1 udp 1 192.0.2.1 5000 typ", None),
        ("1 1 udp 1 192.0.2.1 5000 typ bogus", None),
        ("1 1 udp x 192.0.2.1 5000 typ host", None),
        ("", None),
    ];
    for (value, want) in cases {
        let want = want.map(|(a, t)| (addr(a), t.to_owned()));
        assert_eq!(parse_candidate_addr(value), want, "{value}");
    }
}

#[test]
fn restart_fragment() {
    let c = cands();
    let bundle = [
        FragmentMedia {
            mid: "0",
            kind: MediaKind::Audio,
            payload_type: 111,
        },
        FragmentMedia {
            mid: "1",
            kind: MediaKind::Video,
            payload_type: 106,
        },
    ];
    let body =
        build_restart_fragment(UFRAG, PWD, &bundle, &c, None).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(
        &lines[..6],
        [
            "a=ice-lite",
            "a=ice-ufrag:r58u",
            "a=ice-pwd:r58passwordpassword1234",
            "a=group:BUNDLE 0 1",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=mid:0",
        ]
    );
    assert_eq!(&lines[8..], ["a=end-of-candidates", ""]);
    // It is itself a valid fragment.
    let f = parse_sdpfrag(&body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (f.ice_ufrag.as_deref(), f.ice_pwd.as_deref()),
        (Some(UFRAG), Some(PWD))
    );
    let addrs: Vec<_> = f
        .candidates
        .iter()
        .filter_map(|(_, c)| parse_candidate_addr(c))
        .map(|(a, _)| a)
        .collect();
    assert_eq!(addrs, &c[..2]);
    assert!(f.candidates.iter().all(|(m, _)| m.as_deref() == Some("0")));

    let bad = |u: &str, p: &str, b: &[FragmentMedia<'_>], c: &[SocketAddr]| {
        build_restart_fragment(u, p, b, c, None).is_err()
    };
    assert!(bad(UFRAG, PWD, &[], &c));
    assert!(bad("ab", PWD, &bundle, &c));
    assert!(bad(UFRAG, "pwd", &bundle, &c));
    assert!(bad(UFRAG, PWD, &bundle, &[]));
    let evil = [FragmentMedia {
        mid: "0\r\na=x",
        kind: MediaKind::Audio,
        payload_type: 0,
    }];
    assert!(bad(UFRAG, PWD, &evil, &c));
}
