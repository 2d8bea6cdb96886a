//! One step's numbers, the table row, and the JSON file.

use std::path::Path;

use serde::Serialize;

use crate::Window;
use crate::procfs::UdpCounters;
use crate::subscribers::WindowCounts;

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Step {
    pub server: String,
    pub subscribers: usize,
    pub connected: usize,
    pub connect_seconds: f64,
    pub seconds: f64,
    /// Server CPU as a percentage of one core.
    pub server_cpu_pct: f64,
    /// Everything that ran on the server's core (other processes too), when pinned.
    pub core_busy_pct: Option<f64>,
    /// Softirq time on the server's core, % of the core: mostly the kernel delivering what the
    /// server sends (loopback), which the process CPU does not include.
    pub core_softirq_pct: Option<f64>,
    pub published_packets: u64,
    /// Packets the server should have forwarded: published x subscribers.
    pub forwarded_packets: u64,
    pub cpu_us_per_packet: f64,
    pub counts: WindowCounts,
    pub loss_pct: f64,
    pub latency_samples: usize,
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
    pub latency_max_us: f64,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    pub rss_per_subscriber_kb: f64,
    pub udp: UdpCounters,
    pub load_average: f64,
    pub failed_subscribers: usize,
    /// Subscribers whose handshake stalled and were replaced by a new session.
    pub retried_subscribers: usize,
    /// Datagrams the server counted as dropped on send (its socket refused them); r58 only.
    pub server_send_dropped: u64,
    /// Publisher packets r58 shed because they waited longer than its `max_forward_delay`
    /// (it had fallen behind). Viewers' numbering closes over them, so they are added to the
    /// loss here, once per connected subscriber.
    #[serde(default)]
    pub server_shed: u64,
    /// Publisher packets dropped by the server's receive socket (each one is lost to every
    /// subscriber); the rest of `udp.rcvbuf_errors` is the generator's.
    pub server_ingest_dropped: u64,
    /// The publisher's pacing factor (0: each frame's packets in one burst).
    #[serde(default)]
    pub publisher_pace: f64,
    /// How the server batched its sends, from its own counters (r58 only): datagrams per
    /// message (a UDP GSO run of one viewer's packets is one message) and per `sendmmsg`.
    #[serde(default)]
    pub datagrams_per_message: Option<f64>,
    #[serde(default)]
    pub datagrams_per_syscall: Option<f64>,
    /// r58's own measure of the delay it adds: from a publisher packet's arrival (read by its
    /// media thread) to each viewer's copy handed to the kernel, p50 and p99 in ms as the
    /// upper bounds of the histogram buckets they fall in (r58 only).
    #[serde(default)]
    pub server_delay_p50_ms: Option<f64>,
    #[serde(default)]
    pub server_delay_p99_ms: Option<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

impl Step {
    pub fn new(
        server: &str,
        subscribers: usize,
        connected: usize,
        connect_seconds: f64,
        rss_before: u64,
        rss_after: u64,
        mut w: Window,
    ) -> Self {
        w.latency_us.sort_by(f64::total_cmp);
        let forwarded = w.published * subscribers as u64;
        let shed_copies = w.server_shed * connected as u64;
        let loss_pct = if w.counts.expected > 0 {
            100.0 * (w.counts.lost + shed_copies) as f64 / (w.counts.expected + shed_copies) as f64
        } else {
            100.0
        };
        Self {
            server: server.into(),
            subscribers,
            connected,
            connect_seconds,
            seconds: w.seconds,
            server_cpu_pct: 100.0 * w.server_cpu_ns as f64 / 1e9 / w.seconds,
            core_busy_pct: w.core_busy_pct,
            core_softirq_pct: w.core_softirq_pct,
            published_packets: w.published,
            forwarded_packets: forwarded,
            cpu_us_per_packet: if forwarded > 0 {
                w.server_cpu_ns as f64 / 1e3 / forwarded as f64
            } else {
                f64::NAN
            },
            counts: w.counts,
            loss_pct,
            latency_samples: w.latency_us.len(),
            latency_p50_us: percentile(&w.latency_us, 0.5),
            latency_p99_us: percentile(&w.latency_us, 0.99),
            latency_max_us: w.latency_us.last().copied().unwrap_or(f64::NAN),
            rss_before_bytes: rss_before,
            rss_after_bytes: rss_after,
            rss_per_subscriber_kb: rss_after.saturating_sub(rss_before) as f64
                / 1024.0
                / subscribers.max(1) as f64,
            udp: w.udp,
            load_average: w.load_average,
            failed_subscribers: w.failed,
            retried_subscribers: w.retried,
            server_send_dropped: w.server_send_dropped,
            server_shed: w.server_shed,
            server_ingest_dropped: w.server_ingest_dropped,
            publisher_pace: w.publisher_pace,
            datagrams_per_message: w.datagrams_per_message,
            datagrams_per_syscall: w.datagrams_per_syscall,
            server_delay_p50_ms: w.server_delay_ms.map(|(p50, _)| p50),
            server_delay_p99_ms: w.server_delay_ms.map(|(_, p99)| p99),
        }
    }
}

/// The table's columns: console heading, Markdown heading, console width.
pub const COLUMNS: [(&str, &str, usize); 14] = [
    ("server", "server", 6),
    ("subs", "subscribers", 6),
    ("cpu %", "server CPU (% of a core)", 8),
    ("sirq %", "softirq on its core (%)", 8),
    ("us/pkt", "CPU-us per forwarded packet", 8),
    ("loss %", "loss %", 8),
    ("reord", "reordered", 6),
    ("p50/p99 ms", "latency p50 / p99 (ms)", 15),
    (
        "in-srv ms",
        "in-server delay p50 / p99 (ms, bucket bound)",
        11,
    ),
    ("KB/sub", "RSS per subscriber (KB)", 7),
    (
        "drops g/i/o/shed",
        "drops: generator / server in / server out / shed late (packets)",
        18,
    ),
    ("dg/msg", "datagrams per message / per sendmmsg", 12),
    ("load", "load avg", 5),
    ("conn s", "connect (s)", 7),
];

/// One step's values, formatted, in the order of [`COLUMNS`].
pub fn cells(s: &Step) -> [String; 14] {
    let optional =
        |v: Option<f64>, digits: usize| v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"));
    [
        s.server.clone(),
        s.subscribers.to_string(),
        format!("{:.1}", s.server_cpu_pct),
        optional(s.core_softirq_pct, 1),
        format!("{:.2}", s.cpu_us_per_packet),
        format!("{:.3}", s.loss_pct),
        s.counts.reordered.to_string(),
        format!(
            "{:.2} / {:.2}",
            s.latency_p50_us / 1000.0,
            s.latency_p99_us / 1000.0
        ),
        match (s.server_delay_p50_ms, s.server_delay_p99_ms) {
            (None, None) => "-".into(),
            (p50, p99) => format!("{} / {}", optional(p50, 2), optional(p99, 1)),
        },
        format!("{:.0}", s.rss_per_subscriber_kb),
        format!(
            "{} / {} / {} / {}",
            s.udp.rcvbuf_errors.saturating_sub(s.server_ingest_dropped),
            s.server_ingest_dropped,
            s.server_send_dropped,
            s.server_shed
        ),
        match (s.datagrams_per_message, s.datagrams_per_syscall) {
            (None, None) => "-".into(),
            (m, c) => format!("{} / {}", optional(m, 1), optional(c, 0)),
        },
        format!("{:.1}", s.load_average),
        format!("{:.0}", s.connect_seconds),
    ]
}

pub fn header() -> String {
    COLUMNS
        .iter()
        .map(|(name, _, width)| format!("{name:>width$}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn row(s: &Step) -> String {
    cells(s)
        .iter()
        .zip(COLUMNS)
        .map(|(cell, (_, _, width))| format!("{cell:>width$}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn write_json(path: &Path, steps: &[Step]) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(steps).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}
