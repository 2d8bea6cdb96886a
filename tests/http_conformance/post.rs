use super::*;

// ---------------------------------------------------------------------------------------------
// POST: session creation

#[tokio::test]
async fn whip_post_creates_session_with_answer_location_and_strong_etag() {
    let server = Server::new();
    let r = server.publish("cam1").await;
    assert_eq!(r.header("content-type"), Some(SDP));
    let location = r.location();
    assert!(
        location.starts_with("/whip/cam1/") && location.len() > "/whip/cam1/".len(),
        "Location {location:?} is not a resource under /whip/cam1/"
    );
    assert!(!location["/whip/cam1/".len()..].contains('/'));
    assert_strong_etag(&r.etag());
    for line in ["a=recvonly", "a=ice-lite", "a=setup:passive"] {
        assert!(
            has_line(r.text(), line),
            "answer lacks {line}:\n{}",
            r.text()
        );
    }
    assert!(
        !has_line(r.text(), "a=sendonly"),
        "WHIP answer must not send"
    );
    assert!(sdp_attr(r.text(), "ice-ufrag").is_some());
    assert!(sdp_attr(r.text(), "ice-pwd").is_some());
    assert!(sdp_attr(r.text(), "fingerprint").is_some());

    // A second session (another stream) gets its own resource and its own ETag.
    let second = server.publish("cam2").await;
    assert_strong_etag(&second.etag());
    assert_ne!(second.etag(), r.etag());
    assert_ne!(second.location(), location);
    // And so does a viewer of the first.
    let viewer = server.play("cam1").await;
    assert_ne!(viewer.etag(), r.etag());
    assert_ne!(viewer.etag(), second.etag());
}

#[tokio::test]
async fn whep_post_plays_a_published_stream() {
    let server = Server::new();
    server.publish("show").await;
    let r = server.play("show").await;
    assert_eq!(r.header("content-type"), Some(SDP));
    let location = r.location();
    assert!(
        location.starts_with("/whep/show/") && location.len() > "/whep/show/".len(),
        "Location {location:?} is not a resource under /whep/show/"
    );
    assert_strong_etag(&r.etag());
    for line in ["a=sendonly", "a=ice-lite", "a=setup:passive"] {
        assert!(
            has_line(r.text(), line),
            "answer lacks {line}:\n{}",
            r.text()
        );
    }
    assert!(
        !has_line(r.text(), "a=recvonly"),
        "WHEP answer must not receive"
    );

    let other = server.play("show").await;
    assert_ne!(other.etag(), r.etag());
    assert_ne!(other.location(), location);
}

#[tokio::test]
async fn whep_post_for_unpublished_stream_is_404() {
    let server = Server::new();
    let r = server.post_sdp("/whep/nobody", CHROME_WHEP).await;
    r.assert_status(StatusCode::NOT_FOUND)
        .assert_one_line_reason();
    assert!(r.header("location").is_none());
    assert!(r.header("etag").is_none());
    server.assert_still_serves().await;
}

#[tokio::test]
async fn post_with_wrong_or_missing_content_type_is_415() {
    let server = Server::new();
    for (path, offer) in [("/whip/ct", CHROME_WHIP), ("/whep/ct", CHROME_WHEP)] {
        for ct in [
            "text/plain",
            "application/json",
            "application/sdpx",
            "application/x-www-form-urlencoded",
        ] {
            let r = server
                .request(
                    Method::POST,
                    path,
                    &[("content-type", ct)],
                    offer.to_owned(),
                )
                .await;
            r.assert_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .assert_one_line_reason();
            assert!(r.header("location").is_none());
            server.assert_still_serves().await;
        }
        let r = server
            .request(Method::POST, path, &[], offer.to_owned())
            .await;
        r.assert_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .assert_one_line_reason();
        server.assert_still_serves().await;
    }
    // Media type parameters and case do not matter.
    server
        .request(
            Method::POST,
            "/whip/ct-params",
            &[("content-type", "Application/SDP; charset=utf-8")],
            CHROME_WHIP.to_owned(),
        )
        .await
        .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn garbage_sdp_is_400_with_one_line_reason() {
    let server = Server::new();
    let cases: [&[u8]; 5] = [
        b"hello world",
        b"",
        b"v=0\r\nthis is not sdp\r\n",
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio\r\n",
        b"\xff\xfe\x00 not utf-8",
    ];
    for body in cases {
        let r = server
            .request(
                Method::POST,
                "/whip/garbage",
                &[("content-type", SDP)],
                body.to_vec(),
            )
            .await;
        r.assert_status(StatusCode::BAD_REQUEST)
            .assert_one_line_reason();
        assert!(r.header("location").is_none(), "{r:?}");
        server.assert_still_serves().await;
    }
    // The same on WHEP (the stream exists, the offer does not parse).
    server.publish("garbage-whep").await;
    let r = server.post_sdp("/whep/garbage-whep", "nonsense").await;
    r.assert_status(StatusCode::BAD_REQUEST)
        .assert_one_line_reason();
    server.assert_still_serves().await;
}

#[tokio::test]
async fn offer_without_usable_media_is_422() {
    let server = Server::new();
    let datachannel_only = offer_with_sections(
        &[(
            "application 9 UDP/DTLS/SCTP webrtc-datachannel",
            &["a=sctp-port:5000", "a=max-message-size:262144"],
        )],
        "sendonly",
    );
    let pcmu_only = offer_with_sections(
        &[("audio 9 UDP/TLS/RTP/SAVPF 0", &["a=rtpmap:0 PCMU/8000"])],
        "sendonly",
    );
    // Opus, but in a direction a publisher cannot use.
    let recvonly_publish = offer_with_sections(&[opus_section()], "recvonly");
    for offer in [&datachannel_only, &pcmu_only, &recvonly_publish] {
        let r = server.post_sdp("/whip/nomedia", offer).await;
        r.assert_status(StatusCode::UNPROCESSABLE_ENTITY)
            .assert_one_line_reason();
        assert!(r.header("location").is_none());
        server.assert_still_serves().await;
    }
    // None of those created a stream.
    server
        .post_sdp("/whep/nomedia", CHROME_WHEP)
        .await
        .assert_status(StatusCode::NOT_FOUND);

    // A viewer whose offer cannot receive anything of an existing stream.
    server.publish("nomedia-play").await;
    let r = server
        .post_sdp("/whep/nomedia-play", &datachannel_only)
        .await;
    r.assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_one_line_reason();
    server.assert_still_serves().await;
    // A viewer that can only decode VP8 of an H.264 stream gets a clear 4xx, not black video.
    let vp8_viewer = offer_with_sections(
        &[(
            "video 9 UDP/TLS/RTP/SAVPF 96",
            &["a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack pli"],
        )],
        "recvonly",
    );
    let r = server.post_sdp("/whep/nomedia-play", &vp8_viewer).await;
    assert!(
        matches!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::NOT_ACCEPTABLE
        ),
        "{r:?}"
    );
    r.assert_one_line_reason();
    server.assert_still_serves().await;
}

#[tokio::test]
async fn minimal_generated_opus_offer_is_accepted() {
    // Guards the generated offers above: with a usable codec the same skeleton is accepted, so
    // the 422s are about the media, not about the skeleton.
    let server = Server::new();
    let r = server
        .post_sdp(
            "/whip/generated",
            &offer_with_sections(&[opus_section()], "sendonly"),
        )
        .await;
    r.assert_status(StatusCode::CREATED);
    assert!(has_line(r.text(), "a=recvonly"));
}

#[tokio::test]
async fn body_over_64_kib_is_413() {
    let server = Server::new();
    let mut big = CHROME_WHIP.to_owned();
    while big.len() <= MAX_BODY_BYTES + 1024 {
        big.push_str("a=x-padding:0123456789abcdef0123456789abcdef0123456789abcdef\r\n");
    }
    for path in ["/whip/big", "/whep/big"] {
        let r = server.post_sdp(path, &big).await;
        r.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
        assert!(r.header("location").is_none());
        server.assert_still_serves().await;
        // Declared up front with Content-Length too.
        let r = server
            .request(
                Method::POST,
                path,
                &[
                    ("content-type", SDP),
                    ("content-length", &big.len().to_string()),
                ],
                big.clone(),
            )
            .await;
        r.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
        server.assert_still_serves().await;
    }
    // An oversized PATCH is refused the same way.
    let created = server.publish("big-patch").await;
    let mut frag = trickle_fragment();
    while frag.len() <= MAX_BODY_BYTES + 1024 {
        frag.push_str("a=candidate:1 1 udp 2130706431 198.51.100.7 50000 typ host\r\n");
    }
    let r = server
        .patch_fragment(&created.location(), &created.etag(), &frag)
        .await;
    r.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    server.assert_still_serves().await;
}

#[tokio::test]
async fn offer_with_100_m_lines_is_a_clear_error() {
    let server = Server::new();
    let sections: Vec<(&str, &[&str])> = (0..100).map(|_| opus_section()).collect();
    let offer = offer_with_sections(&sections, "sendonly");
    assert!(offer.len() < MAX_BODY_BYTES, "keep under the body limit");
    for path in ["/whip/many", "/whep/many"] {
        let r = server.post_sdp(path, &offer).await;
        assert!(
            matches!(
                r.status,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{r:?}"
        );
        r.assert_one_line_reason();
        assert!(
            r.text().contains("100"),
            "the reason should say how many: {r:?}"
        );
        server.assert_still_serves().await;
    }
}

#[tokio::test]
async fn invalid_stream_names_are_400() {
    let server = Server::new();
    let long = "a".repeat(65);
    let names = [
        "..",
        ".",
        long.as_str(),
        "a%20b",
        "a%2Fb",
        "caf%C3%A9",
        "a:b",
        "%00",
    ];
    for name in names {
        for (kind, offer) in [("whip", CHROME_WHIP), ("whep", CHROME_WHEP)] {
            let r = server.post_sdp(&format!("/{kind}/{name}"), offer).await;
            r.assert_status(StatusCode::BAD_REQUEST)
                .assert_one_line_reason();
            assert!(r.header("location").is_none());
            server.assert_still_serves().await;
        }
    }
    // The longest valid name is fine.
    server.publish(&"b".repeat(64)).await;
    server.publish("Name_with-all.chars09").await;
}
