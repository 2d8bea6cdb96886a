//! JSON API, Prometheus metrics and the health check.

use std::fmt::Write;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sfu::engine::StreamInfo;
use sfu::engine::delay::DelayHistogram;

use super::AppState;

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

/// Appends one Prometheus counter, `r58_{name}{labels} {value}`, with its HELP and TYPE lines;
/// `labels` is empty or a `{key="value",...}` set.
pub(super) fn write_counter(out: &mut String, name: &str, help: &str, labels: &str, value: u64) {
    let _ = writeln!(out, "# HELP r58_{name} {help}\n# TYPE r58_{name} counter");
    let _ = writeln!(out, "r58_{name}{labels} {value}");
}

/// Appends one Prometheus histogram `r58_{name}` (seconds) with its HELP and TYPE lines.
fn write_delay_histogram(out: &mut String, name: &str, help: &str, delays: &DelayHistogram) {
    let _ = writeln!(out, "# HELP r58_{name} {help}\n# TYPE r58_{name} histogram");
    for (bound, count) in delays.cumulative() {
        match bound {
            Some(bound) => {
                let _ = writeln!(
                    out,
                    "r58_{name}_bucket{{le=\"{}\"}} {count}",
                    bound.as_secs_f64()
                );
            }
            None => {
                let _ = writeln!(out, "r58_{name}_bucket{{le=\"+Inf\"}} {count}");
            }
        }
    }
    let _ = writeln!(out, "r58_{name}_sum {}", delays.sum().as_secs_f64());
    let _ = writeln!(out, "r58_{name}_count {}", delays.count());
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (streams, stats, sessions, by_state, tables) = {
        let engine = state.engine.lock();
        (
            engine.streams(),
            engine.stats().clone(),
            engine.session_count(),
            engine.session_counts(),
            engine.table_sizes(),
        )
    };
    let mut out = String::new();
    let mut counter =
        |name: &str, help: &str, value: u64| write_counter(&mut out, name, help, "", value);
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
    let _ = writeln!(
        out,
        "# HELP r58_switcher_cut_latency_ms_sum Request to new keyframe on program, summed over cuts.\n\
         # TYPE r58_switcher_cut_latency_ms_sum counter\nr58_switcher_cut_latency_ms_sum {:.3}",
        switcher.cut_latency_ms_sum
    );
    if let Some(ms) = switcher.last_cut_latency_ms {
        let _ = writeln!(
            out,
            "# HELP r58_switcher_last_cut_latency_ms The last cut's latency.\n\
             # TYPE r58_switcher_last_cut_latency_ms gauge\nr58_switcher_last_cut_latency_ms {ms:.3}"
        );
    }
    write_delay_histogram(
        &mut out,
        "forward_delay_seconds",
        "From a publisher packet's arrival (the kernel's receive time) until each viewer's copy was handed to the kernel.",
        &stats.forward_delay,
    );
    let _ = writeln!(
        out,
        "# HELP r58_sessions Sessions open now.\n# TYPE r58_sessions gauge"
    );
    let _ = writeln!(out, "r58_sessions {sessions}");
    let _ = writeln!(
        out,
        "# HELP r58_sessions_by_state Sessions open now by role and state.\n# TYPE r58_sessions_by_state gauge"
    );
    for ((role, state), n) in &by_state {
        let role = serde_json::to_value(role).unwrap_or_default();
        let state = serde_json::to_value(state).unwrap_or_default();
        let _ = writeln!(
            out,
            "r58_sessions_by_state{{role={role},state={state}}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP r58_engine_table_entries Entries of the media engine's lookup tables.\n# TYPE r58_engine_table_entries gauge"
    );
    for (table, n) in tables {
        let _ = writeln!(out, "r58_engine_table_entries{{table=\"{table}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP r58_stream_viewers Viewers per stream.\n# TYPE r58_stream_viewers gauge"
    );
    for s in &streams {
        let _ = writeln!(
            out,
            "r58_stream_viewers{{stream=\"{}\"}} {}",
            s.name, s.viewers
        );
    }
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
        let _ = writeln!(out, "# HELP r58_{name} {help}\n# TYPE r58_{name} counter");
        for s in &streams {
            for t in &s.tracks {
                let kind = serde_json::to_value(t.kind).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "r58_{name}{{stream=\"{}\",kind={}}} {}",
                    s.name,
                    kind,
                    get(&t.stats)
                );
            }
        }
    }
    super::turn::write_metrics(&state, &mut out);
    super::guard::write_metrics(&state, &mut out);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
        .into_response()
}
