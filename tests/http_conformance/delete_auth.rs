use super::*;

// ---------------------------------------------------------------------------------------------
// DELETE

#[tokio::test]
async fn delete_is_200_then_404_and_ignores_if_match() {
    let server = Server::new();
    let created = server.publish("del").await;
    let r = server
        .delete(
            &created.location(),
            &[("if-match", "\"definitely-not-the-etag\"")],
        )
        .await;
    r.assert_status(StatusCode::OK);
    server
        .delete(&created.location(), &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // A deleted session takes no PATCH either.
    server
        .patch_fragment(&created.location(), &created.etag(), &trickle_fragment())
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // Viewers delete the same way.
    let created = server.publish("del2").await;
    let viewer = server.play("del2").await;
    server
        .delete(&viewer.location(), &[("if-match", "*")])
        .await
        .assert_status(StatusCode::OK);
    server
        .delete(&viewer.location(), &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    server
        .delete(&created.location(), &[])
        .await
        .assert_status(StatusCode::OK);
    // Unknown session tokens.
    server
        .delete("/whip/del/00000000000000000000000000000000", &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    server.assert_still_serves().await;
}

#[tokio::test]
async fn deleted_publisher_ends_stream_and_viewers_after_grace() {
    let server = Server::new();
    let publisher = server.publish("gone").await;
    let viewer = server.play("gone").await;
    server
        .delete(&publisher.location(), &[])
        .await
        .assert_status(StatusCode::OK);
    // Past the takeover grace the stream is gone.
    let later = Instant::now() + Duration::from_secs(3);
    server.engine.lock().handle_timeout(later);
    let r = server.post_sdp("/whep/gone", CHROME_WHEP).await;
    r.assert_status(StatusCode::NOT_FOUND)
        .assert_one_line_reason();
    // The viewer's session ended with it.
    server
        .delete(&viewer.location(), &[])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let streams = server.get("/api/streams").await;
    let list: serde_json::Value = serde_json::from_str(streams.text()).expect("JSON");
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .all(|s| s["name"] != "gone"),
        "{list}"
    );
    server.assert_still_serves().await;
}

#[tokio::test]
async fn republish_within_grace_keeps_the_stream() {
    let server = Server::new();
    let first = server.publish("again").await;
    server
        .delete(&first.location(), &[])
        .await
        .assert_status(StatusCode::OK);
    // A reload publishes the same name again before the grace runs out.
    let second = server.publish("again").await;
    assert_ne!(second.location(), first.location());
    server
        .engine
        .lock()
        .handle_timeout(Instant::now() + Duration::from_millis(2500));
    let r = server.post_sdp("/whep/again", CHROME_WHEP).await;
    // The new, unconnected publisher may itself have timed out by then (no ICE); either the
    // stream is still there (201) or gone with a clean 404, never a server error.
    assert!(
        matches!(r.status, StatusCode::CREATED | StatusCode::NOT_FOUND),
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Bearer auth

#[tokio::test]
async fn bearer_token_protects_whip_only() {
    let rules = vec![AuthRule {
        path: "/whip/*".to_owned(),
        token: "s3cret".to_owned(),
    }];
    let server = Server::with(answering_config(), rules, &[]);
    let good = bearer("s3cret");
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer s3cre"),
        Some("Bearer s3cret2"),
        Some("Basic czNjcmV0"),
        Some("s3cret"),
    ] {
        let mut headers = vec![("content-type", SDP)];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let r = server
            .request(Method::POST, "/whip/auth", &headers, CHROME_WHIP.to_owned())
            .await;
        r.assert_status(StatusCode::UNAUTHORIZED);
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{r:?}");
        assert!(r.header("location").is_none());
    }
    let created = server
        .post_sdp_with("/whip/auth", CHROME_WHIP, &[("authorization", &good)])
        .await;
    created.assert_status(StatusCode::CREATED);

    // WHEP is not covered by the rule.
    server.play("auth").await;

    // The session resource needs the token too: without it or with a wrong one PATCH and
    // DELETE are refused with a Bearer challenge, with it they are taken.
    let location = created.location();
    let etag = created.etag();
    let frag = trickle_fragment();
    let (nope, good) = (Some("Bearer nope"), Some(good.as_str()));
    for (method, auth, expected) in [
        (Method::PATCH, None, StatusCode::UNAUTHORIZED),
        (Method::PATCH, nope, StatusCode::UNAUTHORIZED),
        (Method::PATCH, good, StatusCode::NO_CONTENT),
        (Method::DELETE, None, StatusCode::UNAUTHORIZED),
        (Method::DELETE, nope, StatusCode::UNAUTHORIZED),
        (Method::DELETE, good, StatusCode::OK),
        // An unknown session under a protected path does not reveal itself without the token.
        (Method::DELETE, None, StatusCode::UNAUTHORIZED),
        (Method::DELETE, good, StatusCode::NOT_FOUND),
    ] {
        let mut headers = Vec::from_iter(auth.map(|a| ("authorization", a)));
        let r = if method == Method::PATCH {
            headers.extend([("content-type", SDPFRAG), ("if-match", etag.as_str())]);
            server.patch(&location, &headers, &frag).await
        } else {
            server.delete(&location, &headers).await
        };
        r.assert_status(expected);
        if expected == StatusCode::UNAUTHORIZED {
            let challenge = r.header("www-authenticate").unwrap_or_default();
            assert!(challenge.starts_with("Bearer"), "{method} {auth:?}: {r:?}");
        }
    }
    // CORS preflight needs no token (browsers never send credentials on it).
    let r = server
        .options(
            "/whip/auth",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
            ],
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");
}
