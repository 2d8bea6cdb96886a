//! The JSON API (`/api/streams`, `/api/turn-credentials`), Prometheus metrics and the health
//! check.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sfu::engine::StreamInfo;
use sfu::hls::{HlsCounters, RequestKind};

use super::access::{Access, Routes};
use super::metrics::{Family, Kind, render};
use super::refusal::refuse;
use super::state::AppState;
use super::turn::PATH as TURN_CREDENTIALS;

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state)
        .get("/healthz", Access::Open, healthz)
        .get("/api/streams", Access::View, streams)
        .get("/metrics", Access::Admin, metrics)
        .get(TURN_CREDENTIALS, Access::TurnCredentials, turn_credentials)
}

/// 200 once the server accepts sessions (the router is only served after the media socket is
/// bound and the engine is built).
pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn streams(State(state): State<AppState>) -> Json<Vec<StreamInfo>> {
    Json(state.engine.lock().streams())
}

/// Reads one counter out of a track's stats.
type StatField = fn(&sfu::hub::TrackStats) -> u64;

/// `{"iceServers": [...]}` for a client [`super::turn::TurnEndpoint::refusal`] let in, or 503
/// with the provider's reason.
async fn turn_credentials(State(state): State<AppState>) -> Response {
    match state.turn.load().service.ice_servers().await {
        Ok(servers) => (
            StatusCode::OK,
            // Credentials are per client and expire: no shared cache may keep them.
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({ "iceServers": servers })),
        )
            .into_response(),
        Err(e) => {
            let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            response
        }
    }
}

/// LL-HLS requests that reached this server, by kind, and the media playlists rendered for
/// them (one render serves every request for the same published state).
fn hls_metrics(counters: &HlsCounters) -> Vec<Family> {
    let mut requests = Family::new(
        Kind::Counter,
        "hls_requests_total",
        "LL-HLS requests that reached this server, by kind (a CDN in front keeps most away).",
    );
    for kind in RequestKind::ALL {
        requests.push(
            format!("{{kind=\"{}\"}}", kind.as_str()),
            counters.requests(kind),
        );
    }
    vec![
        requests,
        Family::counter(
            "hls_playlist_renders_total",
            "LL-HLS media playlists rendered; every request for the same published state shares one.",
            counters.renders(),
        ),
    ]
}

/// Prometheus text exposition: the engine's, the switcher's, the TURN endpoint's and the
/// guard's families.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut families = engine_metrics(&state);
    families.extend(state.turn.load().metrics());
    families.extend(state.guard.metrics(state.session_tokens().len()));
    families.extend(hls_metrics(state.hls.counters()));
    families.extend(super::recordings::metrics(&state));
    if let Some(stats) = &state.rtsp {
        families.extend(rtsp_metrics(stats, &state.engine.lock()));
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&families),
    )
        .into_response()
}

/// The RTSP server: its connections and bytes, and per stream its readers (hub readers of
/// kind `rtsp`, one per playing client) and the packets they lost to a full queue.
fn rtsp_metrics(stats: &crate::rtsp::RtspStats, engine: &sfu::engine::Engine) -> Vec<Family> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut readers = Family::new(
        Kind::Gauge,
        "rtsp_readers",
        "RTSP clients playing each stream.",
    );
    let mut dropped = Family::new(
        Kind::Gauge,
        "rtsp_reader_dropped_packets",
        "Packets the stream's current RTSP readers lost because their queue was full (a client \
         slower than the stream); it falls when such a reader leaves.",
    );
    for stream in engine.hub().iter() {
        let rtsp: Vec<_> = stream.readers.iter().filter(|r| r.kind == "rtsp").collect();
        if rtsp.is_empty() {
            continue;
        }
        let labels = format!("{{stream=\"{}\"}}", stream.name());
        readers.push(labels.clone(), rtsp.len());
        dropped.push(labels, rtsp.iter().map(|r| r.dropped).sum::<u64>());
    }
    vec![
        Family::counter(
            "rtsp_connections_total",
            "RTSP connections accepted (refused ones included).",
            stats.connections.load(Relaxed),
        ),
        Family::counter(
            "rtsp_connections_refused_total",
            "RTSP connections refused: 453 past [limits] sessions_per_ip, 503 past max_sessions.",
            stats.refused.load(Relaxed),
        ),
        Family::gauge(
            "rtsp_connections_open",
            "RTSP connections open now.",
            stats.open.load(Relaxed),
        ),
        Family::new(
            Kind::Counter,
            "rtsp_sent_bytes_total",
            "Bytes sent to RTSP clients: over their TCP connections (answers and interleaved \
             media), and in UDP datagrams.",
        )
        .with("{transport=\"tcp\"}", stats.tcp_bytes.load(Relaxed))
        .with("{transport=\"udp\"}", stats.udp_bytes.load(Relaxed)),
        Family::counter(
            "rtsp_udp_dropped_datagrams_total",
            "UDP datagrams to RTSP clients the socket did not take (its buffer full).",
            stats.udp_dropped.load(Relaxed),
        ),
        readers,
        dropped,
    ]
}

/// r58's own TURN allocation (`[turn] server_relay`): whether it holds one and on which
/// transport, the client's counters, and what went through it.
fn relay_metrics(report: Option<&sfu::engine::RelayReport>) -> Vec<Family> {
    let mut out = Vec::new();
    let Some(r) = report else {
        out.push(Family::gauge(
            "turn_relay_allocated",
            "1 while r58 holds a TURN allocation of its own (by transport).",
            0u64,
        ));
        return out;
    };
    let transport = format!("{{transport=\"{}\"}}", r.transport);
    let s = &r.stats;
    out.push(
        Family::new(
            Kind::Gauge,
            "turn_relay_allocated",
            "1 while r58 holds a TURN allocation of its own (by transport).",
        )
        .with(transport.clone(), u64::from(r.relayed.is_some())),
    );
    for (name, help, value) in [
        (
            "turn_relay_allocations_total",
            "Allocations r58's TURN client made.",
            s.allocations,
        ),
        (
            "turn_relay_refreshes_total",
            "Allocation refreshes.",
            s.refreshes,
        ),
        (
            "turn_relay_permissions_created_total",
            "Permissions created for clients' addresses.",
            s.permissions_created,
        ),
        (
            "turn_relay_channels_bound_total",
            "Channels bound to relayed peers.",
            s.channels_bound,
        ),
        (
            "turn_relay_retransmissions_total",
            "TURN requests sent again (no answer yet).",
            s.retransmissions,
        ),
    ] {
        out.push(Family::new(Kind::Counter, name, help).with(transport.clone(), value));
    }
    let mut failures = Family::new(
        Kind::Counter,
        "turn_relay_allocation_failures_total",
        "Allocations that failed or were lost, by reason.",
    );
    let f = &s.allocation_failures;
    let l = &s.allocations_lost;
    for (reason, value) in [
        ("timeout", f.timeout + l.timeout),
        ("unauthorized", f.unauthorized + l.unauthorized),
        ("mismatch", f.mismatch + l.mismatch),
        ("refused", f.refused + l.refused),
        ("stale_nonce", f.stale_nonce + l.stale_nonce),
        ("malformed", f.malformed + l.malformed),
        ("connection_lost", f.connection_lost + l.connection_lost),
        ("expired", f.expired + l.expired),
    ] {
        failures.push(format!("{{reason=\"{reason}\"}}"), value);
    }
    out.push(failures);
    for (name, help, value) in [
        (
            "turn_relay_permissions",
            "Permissions installed now.",
            s.permissions,
        ),
        ("turn_relay_channels", "Channels installed now.", s.channels),
    ] {
        out.push(Family::gauge(name, help, value));
    }
    let mut packets = Family::new(
        Kind::Counter,
        "turn_relay_packets_total",
        "Datagrams relayed, by direction and framing (channel: ChannelData; indication: Send/Data).",
    );
    let mut bytes = Family::new(
        Kind::Counter,
        "turn_relay_bytes_total",
        "Payload bytes relayed, by direction and framing.",
    );
    for (direction, framing, t) in [
        ("out", "channel", s.sent_channel),
        ("out", "indication", s.sent_indication),
        ("in", "channel", s.received_channel),
        ("in", "indication", s.received_indication),
    ] {
        let labels = format!("{{direction=\"{direction}\",framing=\"{framing}\"}}");
        packets.push(labels.clone(), t.packets);
        bytes.push(labels, t.bytes);
    }
    out.push(packets);
    out.push(bytes);
    out
}

/// The engine's counters and gauges, per stream and per track, and the switcher's.
fn engine_metrics(state: &AppState) -> Vec<Family> {
    let (streams, stats, sessions, by_state, tables, relay) = {
        let engine = state.engine.lock();
        (
            engine.streams(),
            engine.stats().clone(),
            engine.session_count(),
            engine.session_counts(),
            engine.table_sizes(),
            relay_metrics(engine.relay_report()),
        )
    };
    let mut out = Vec::new();
    let mut counter =
        |name: &str, help: &str, value: u64| out.push(Family::counter(name, help, value));
    counter(
        "datagrams_in_total",
        "UDP datagrams received.",
        stats.datagrams_in,
    );
    counter(
        "datagrams_unknown_source_total",
        "Datagrams dropped because no session owns their source.",
        stats.datagrams_unknown_source,
    );
    counter(
        "stun_rejected_total",
        "STUN messages rejected.",
        stats.stun_rejected,
    );
    counter("dtls_errors_total", "DTLS errors.", stats.dtls_errors);
    counter(
        "srtp_errors_total",
        "SRTP/SRTCP unprotect failures.",
        stats.srtp_errors,
    );
    counter(
        "send_dropped_total",
        "Datagrams dropped because the socket was full.",
        stats.send_dropped,
    );
    counter(
        "datagrams_out_total",
        "UDP datagrams the media socket sent.",
        stats.datagrams_out,
    );
    counter(
        "send_messages_total",
        "Messages those datagrams went in (a UDP GSO run of one viewer's packets is one).",
        stats.send_messages,
    );
    counter(
        "send_syscalls_total",
        "sendmmsg calls of the media socket.",
        stats.send_syscalls,
    );
    counter(
        "send_waits_total",
        "Times the media socket's buffer was full and the sender waited for room (up to 50 ms a flush) rather than drop.",
        stats.send_waits,
    );
    counter(
        "fanout_splits_total",
        "Fan-outs large enough to be split across the media threads (media_threads above 1).",
        stats.fanout_splits,
    );
    counter(
        "fanout_shares_total",
        "Shares those fan-outs were split into, one per media thread that took part.",
        stats.fanout_shares,
    );
    counter(
        "shed_packets_total",
        "Publisher packets not sent to viewers because they waited longer than [limits] max_forward_delay in the server (it had fallen behind); the recorder and LL-HLS still got them.",
        stats.shed_packets,
    );
    counter(
        "catch_ups_total",
        "Times a track fell that far behind and shed packets until a keyframe was on time again.",
        stats.catch_ups,
    );
    counter(
        "publisher_bitrate_cap_dropped_total",
        "Publisher datagrams dropped for exceeding [limits] publisher_bitrate_cap.",
        stats.bitrate_cap_dropped,
    );
    counter(
        "publisher_nacked_packets_total",
        "Packets publishers were asked (NACK) to send again after loss on their path.",
        stats.upstream_nacked,
    );
    counter(
        "sessions_opened_total",
        "Sessions created.",
        stats.sessions_opened,
    );
    counter(
        "sessions_closed_total",
        "Sessions ended.",
        stats.sessions_closed,
    );
    counter(
        "keyframe_requests_sent_total",
        "PLIs sent to publishers.",
        stats.keyframe_requests_sent,
    );
    let switcher = state.switcher.stats();
    counter(
        "switcher_cuts_total",
        "Cuts taken on the program.",
        switcher.cuts,
    );
    counter(
        "switcher_forced_cuts_total",
        "Cuts taken without a keyframe (none came within 3 s).",
        switcher.forced_cuts,
    );
    counter(
        "switcher_fallbacks_total",
        "Program sources that vanished and were replaced by the fallback.",
        switcher.fallbacks,
    );
    // Milliseconds with three decimals, as before: a sum of float latencies.
    let millis = |ms: f64| (ms * 1000.0).round() / 1000.0;
    out.push(
        Family::new(
            Kind::Counter,
            "switcher_cut_latency_ms_sum",
            "Request to new keyframe on program, summed over cuts.",
        )
        .with("", millis(switcher.cut_latency_ms_sum)),
    );
    if let Some(ms) = switcher.last_cut_latency_ms {
        out.push(Family::gauge(
            "switcher_last_cut_latency_ms",
            "The last cut's latency.",
            millis(ms),
        ));
    }
    out.push(Family::delay_histogram(
        "forward_delay_seconds",
        "From a publisher packet's arrival (the kernel's receive time) until each viewer's copy was handed to the kernel.",
        &stats.forward_delay,
    ));
    out.push(Family::gauge("sessions", "Sessions open now.", sessions));
    let mut family = Family::new(
        Kind::Gauge,
        "sessions_by_state",
        "Sessions open now by role and state.",
    );
    for ((role, state), n) in &by_state {
        let role = serde_json::to_value(role).unwrap_or_default();
        let state = serde_json::to_value(state).unwrap_or_default();
        family.push(format!("{{role={role},state={state}}}"), *n);
    }
    out.push(family);
    let mut family = Family::new(
        Kind::Gauge,
        "engine_table_entries",
        "Entries of the media engine's lookup tables.",
    );
    for (table, n) in tables {
        family.push(format!("{{table=\"{table}\"}}"), n);
    }
    out.push(family);
    let mut family = Family::new(Kind::Gauge, "stream_viewers", "Viewers per stream.");
    for s in &streams {
        family.push(format!("{{stream=\"{}\"}}", s.name), s.viewers);
    }
    out.push(family);
    let per_track: [(&str, &str, StatField); 7] = [
        (
            "track_packets_in_total",
            "RTP packets received per track.",
            |t| t.packets_in,
        ),
        (
            "track_bytes_in_total",
            "RTP payload bytes received per track.",
            |t| t.bytes_in,
        ),
        (
            "track_packets_out_total",
            "RTP packets forwarded per track.",
            |t| t.packets_out,
        ),
        (
            "track_bytes_out_total",
            "SRTP bytes forwarded per track.",
            |t| t.bytes_out,
        ),
        ("track_nacks_total", "NACKed packets per track.", |t| {
            t.nacks
        }),
        (
            "track_retransmits_total",
            "Packets retransmitted per track.",
            |t| t.retransmits,
        ),
        (
            "track_shed_total",
            "Packets per track not sent to viewers because the server had fallen behind.",
            |t| t.shed,
        ),
    ];
    for (name, help, get) in per_track {
        let mut family = Family::new(Kind::Counter, name, help);
        for s in &streams {
            for t in &s.tracks {
                let kind = serde_json::to_value(t.kind).unwrap_or_default();
                family.push(
                    format!("{{stream=\"{}\",kind={}}}", s.name, kind),
                    get(&t.stats),
                );
            }
        }
        out.push(family);
    }
    out.extend(relay);
    out
}
