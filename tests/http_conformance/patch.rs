use super::*;

// ---------------------------------------------------------------------------------------------
// PATCH

#[tokio::test]
async fn patch_trickle_is_204_without_etag() {
    let server = Server::new();
    let created = server.publish("trickle").await;
    let etag = created.etag();
    let r = server
        .patch_fragment(&created.location(), &etag, &trickle_fragment())
        .await;
    r.assert_status(StatusCode::NO_CONTENT);
    assert!(
        r.header("etag").is_none(),
        "trickle must not return an ETag: {r:?}"
    );
    assert!(r.body.is_empty());
    // An end-of-candidates-only fragment works as well.
    let end_only = format!(
        "a=ice-ufrag:{WHIP_UFRAG}\r\na=ice-pwd:{WHIP_PWD}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n\
         a=mid:0\r\na=end-of-candidates\r\n"
    );
    server
        .patch_fragment(&created.location(), &etag, &end_only)
        .await
        .assert_status(StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn patch_errors_415_428_412_404() {
    let server = Server::new();
    let created = server.publish("patcherr").await;
    let location = created.location();
    let etag = created.etag();
    let frag = trickle_fragment();

    // Wrong and missing content type.
    for headers in [
        &[
            ("content-type", "application/sdp"),
            ("if-match", etag.as_str()),
        ][..],
        &[("content-type", "text/plain"), ("if-match", etag.as_str())][..],
        &[("if-match", etag.as_str())][..],
    ] {
        let r = server.patch(&location, headers, &frag).await;
        r.assert_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .assert_one_line_reason();
        server.assert_still_serves().await;
    }
    // Missing If-Match.
    let r = server
        .patch(&location, &[("content-type", SDPFRAG)], &frag)
        .await;
    r.assert_status(StatusCode::PRECONDITION_REQUIRED)
        .assert_one_line_reason();
    server.assert_still_serves().await;
    // Stale / wrong If-Match.
    for stale in ["\"not-the-etag\"", "W/\"x\"", "garbage"] {
        let r = server.patch_fragment(&location, stale, &frag).await;
        r.assert_status(StatusCode::PRECONDITION_FAILED)
            .assert_one_line_reason();
        assert!(r.header("etag").is_none() || r.etag() == etag);
        server.assert_still_serves().await;
    }
    // Unknown session, on both kinds of endpoint.
    for uri in [
        "/whip/patcherr/0123456789abcdef0123456789abcdef",
        "/whep/patcherr/0123456789abcdef0123456789abcdef",
        "/whip/nostream/0123456789abcdef0123456789abcdef",
    ] {
        let r = server.patch_fragment(uri, &etag, &frag).await;
        r.assert_status(StatusCode::NOT_FOUND)
            .assert_one_line_reason();
        server.assert_still_serves().await;
    }
    // If-Match may list several entity tags; one of them matching is enough.
    let list = format!("\"other\", {etag}");
    server
        .patch_fragment(&location, &list, &frag)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    // A malformed fragment is a 400.
    let r = server
        .patch_fragment(&location, &etag, "this is not a fragment")
        .await;
    r.assert_status(StatusCode::BAD_REQUEST)
        .assert_one_line_reason();
    // The session survived all of that.
    server
        .patch_fragment(&location, &etag, &frag)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    server.assert_still_serves().await;
}

async fn check_ice_restart(server: &Server, created: &Resp, if_match: &str) {
    let location = created.location();
    let old_etag = created.etag();
    let old_ufrag = sdp_attr(created.text(), "ice-ufrag")
        .expect("answer ufrag")
        .to_owned();
    let old_pwd = sdp_attr(created.text(), "ice-pwd")
        .expect("answer pwd")
        .to_owned();

    let new_client_ufrag = format!("R{}", unique("u").replace('-', ""));
    let new_client_pwd = "NewClientPassword0123456789";
    let r = server
        .patch_fragment(
            &location,
            if_match,
            &restart_fragment(&new_client_ufrag, new_client_pwd),
        )
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(SDPFRAG), "{r:?}");
    let new_etag = r.etag();
    assert_strong_etag(&new_etag);
    assert_ne!(new_etag, old_etag);
    let ufrag = sdp_attr(r.text(), "ice-ufrag").expect("restart answer has a=ice-ufrag");
    let pwd = sdp_attr(r.text(), "ice-pwd").expect("restart answer has a=ice-pwd");
    assert_ne!(
        ufrag, old_ufrag,
        "the server's ufrag must change on restart"
    );
    assert_ne!(pwd, old_pwd, "the server's pwd must change on restart");

    // The old ETag is now stale; the new one works for trickle.
    let new_trickle = format!(
        "a=ice-ufrag:{new_client_ufrag}\r\na=ice-pwd:{new_client_pwd}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n\
         a=mid:0\r\na=candidate:1 1 udp 2130706431 198.51.100.7 50001 typ host\r\n"
    );
    server
        .patch_fragment(&location, &old_etag, &new_trickle)
        .await
        .assert_status(StatusCode::PRECONDITION_FAILED);
    let r = server
        .patch_fragment(&location, &new_etag, &new_trickle)
        .await;
    r.assert_status(StatusCode::NO_CONTENT);
    assert!(r.header("etag").is_none());
}

#[tokio::test]
async fn patch_ice_restart_returns_new_credentials_and_etag() {
    let server = Server::new();
    // RFC 9725 section 4.4.1 writes the wildcard as `If-Match: "*"`.
    let created = server.publish("restart").await;
    check_ice_restart(&server, &created, "\"*\"").await;
    // The HTTP wildcard form `If-Match: *` (RFC 9110) works too.
    let created = server.publish("restart2").await;
    check_ice_restart(&server, &created, "*").await;
    // And on a WHEP session.
    let viewer = server.play("restart").await;
    check_ice_restart(&server, &viewer, "\"*\"").await;
    server.assert_still_serves().await;
}

#[tokio::test]
async fn patch_whep_url_with_whip_token_is_404() {
    let server = Server::new();
    let publisher = server.publish("cross").await;
    let viewer = server.play("cross").await;
    let whip_token = publisher.location().rsplit('/').next().unwrap().to_owned();
    let whep_token = viewer.location().rsplit('/').next().unwrap().to_owned();
    let frag = trickle_fragment();
    let patch_headers = [("content-type", SDPFRAG), ("if-match", "\"*\"")];

    for uri in [
        format!("/whep/cross/{whip_token}"),
        format!("/whip/cross/{whep_token}"),
        format!("/whip/other/{whip_token}"),
        format!("/whep/other/{whep_token}"),
    ] {
        server
            .patch(&uri, &patch_headers, &frag)
            .await
            .assert_status(StatusCode::NOT_FOUND);
        server
            .delete(&uri, &[])
            .await
            .assert_status(StatusCode::NOT_FOUND);
    }
    // The real sessions were untouched by the mismatched requests.
    server
        .patch_fragment(&publisher.location(), &publisher.etag(), &frag)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    server
        .delete(&viewer.location(), &[])
        .await
        .assert_status(StatusCode::OK);
    server
        .delete(&publisher.location(), &[])
        .await
        .assert_status(StatusCode::OK);
    server.assert_still_serves().await;
}
