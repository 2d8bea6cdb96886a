//! The fuzz entry point for the SDP layer.

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{
    AcceptedMedia, AnswerMedia, AnswerParams, CodecSpec, Offer, SendSsrc, answer_direction_for,
    build_answer, choose_play_codec, choose_publish_codec, parse_candidate_addr, parse_offer,
    parse_sdpfrag,
};

const FUZZ_FINGERPRINT: &str = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:\
                                AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99";

/// Fuzz entry for the SDP layer (used by `fuzz/` and by the mutation test).
///
/// Takes the input as UTF-8 (lossily) and runs, ignoring every error: [`parse_sdpfrag`] and
/// [`parse_candidate_addr`] on each candidate; [`parse_offer`]; then, if the offer parsed, a
/// publish answer ([`choose_publish_codec`], [`build_answer`]) and a play answer
/// ([`choose_play_codec`] for the codec the publish side chose). In debug builds it asserts
/// that every answer it builds parses again with `rtc-sdp`; it must never panic otherwise.
pub fn fuzz_entry(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(frag) = parse_sdpfrag(&text) {
        for (_, cand) in &frag.candidates {
            let _ = parse_candidate_addr(cand);
        }
    }
    let Ok(offer) = parse_offer(&text) else {
        return;
    };
    fuzz_answer(&offer, false);
    fuzz_answer(&offer, true);
}

fn fuzz_answer(offer: &Offer, we_send: bool) {
    let media = offer
        .media
        .iter()
        .map(|m| {
            let direction = answer_direction_for(m.direction, we_send);
            let codec = choose_publish_codec(m).and_then(|c| {
                if we_send {
                    choose_play_codec(m, &CodecSpec::from(c))
                } else {
                    Some(c)
                }
            });
            // The refusal texts quote client input: they must never panic either.
            let _ = super::publish_refusal(m);
            if let Some(c) = m.codecs.first() {
                let _ = super::play_refusal(m, &CodecSpec::from(c));
            }
            let accept = codec
                .zip(direction)
                .map(|(codec, direction)| AcceptedMedia {
                    codec: codec.clone(),
                    with_rtx: true,
                    direction,
                    extmaps: m.extmaps.iter().take(3).cloned().collect(),
                    send: we_send.then(|| SendSsrc {
                        ssrc: 0x1234_5678,
                        rtx_ssrc: Some(0x1234_5679),
                        cname: "r58".into(),
                        stream_id: "stream".into(),
                        track_id: "track".into(),
                    }),
                });
            match accept {
                Some(accepted) => AnswerMedia::accept(&m.mid, accepted),
                None => AnswerMedia::unused(m),
            }
        })
        .collect();
    let candidates = [
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 5000),
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            5000,
        ),
    ];
    let params = AnswerParams {
        ice_ufrag: "r58fuzz",
        ice_pwd: "r58fuzzpasswordpassword0",
        fingerprint_sha256: FUZZ_FINGERPRINT,
        candidates: &candidates,
        relay: None,
        media,
        session_id: 1,
    };
    if let Ok(answer) = build_answer(offer, &params) {
        let reparsed = rtc_sdp::SessionDescription::unmarshal(&mut Cursor::new(answer.as_bytes()));
        debug_assert!(reparsed.is_ok(), "answer does not parse: {answer}");
    }
}
