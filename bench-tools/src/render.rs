//! The results as a Markdown section and an SVG plot (CPU and loss against subscribers, one
//! line per server), for `scripts/bench.sh` to put into docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::report::{COLUMNS, Step, cells};

/// Loss below which a step counts as carried.
const CLEAN_LOSS_PCT: f64 = 0.1;

fn servers(steps: &[Step]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for s in steps {
        if !names.contains(&s.server.as_str()) {
            names.push(&s.server);
        }
    }
    names
}

/// What a step cost its core: everything that ran on the server's pinned core (the server,
/// the kernel's work in its context, loopback delivery included, and anything else scheduled
/// there), or the process's own CPU when the server was not pinned. The core's softirq time is
/// not added to the process's: the softirq work done inside the server's system calls is
/// already in the process's time (at 1000 subscribers: process 68.5 %, softirq 14.7 %, the
/// whole core 69.8 %), so adding them counted it twice.
fn core_cost_pct(s: &Step) -> f64 {
    s.core_busy_pct
        .unwrap_or(s.server_cpu_pct)
        .max(s.server_cpu_pct)
}

/// Median latency beyond which a step counts as saturated even without loss (its packets
/// queue behind the server's backlog).
const SATURATED_P50_MS: f64 = 100.0;

/// The most subscribers a server carried cleanly (loss < 0.1 %, core cost < 100 %, median
/// latency under [`SATURATED_P50_MS`]), and the per-core capacity that step's cost
/// extrapolates to.
fn capacity<'a>(steps: &'a [Step], server: &str) -> Option<(&'a Step, f64)> {
    steps
        .iter()
        .filter(|s| {
            s.server == server
                && s.loss_pct < CLEAN_LOSS_PCT
                && core_cost_pct(s) < 100.0
                && s.latency_p50_us / 1000.0 < SATURATED_P50_MS
        })
        .max_by_key(|s| s.subscribers)
        .map(|s| (s, s.subscribers as f64 * 100.0 / core_cost_pct(s).max(0.01)))
}

pub fn markdown(steps: &[Step], machine: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "{machine}\n");
    let headings: Vec<&str> = COLUMNS.iter().map(|(_, heading, _)| *heading).collect();
    let _ = writeln!(md, "| {} |", headings.join(" | "));
    let _ = writeln!(md, "|---|{}", "---:|".repeat(COLUMNS.len() - 1));
    for s in steps {
        let _ = writeln!(md, "| {} |", cells(s).join(" | "));
    }
    md.push('\n');
    let mut per_core = BTreeMap::new();
    for server in servers(steps) {
        match capacity(steps, server) {
            Some((step, extrapolated)) => {
                per_core.insert(server, extrapolated);
                let _ = writeln!(
                    md,
                    "- {server}: largest step carried (< {CLEAN_LOSS_PCT} % loss, median latency \
                     < {SATURATED_P50_MS} ms): {} subscribers at {:.0} % of its core (the \
                     process {:.0} %), which extrapolates to ~{:.0} subscribers per core.",
                    step.subscribers,
                    core_cost_pct(step),
                    step.server_cpu_pct,
                    extrapolated
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "- {server}: no step carried with < {CLEAN_LOSS_PCT} % loss."
                );
            }
        }
    }
    if let (Some(ours), Some(peer)) = (per_core.get("r58"), per_core.get("janus")) {
        let _ = writeln!(
            md,
            "- Subscribers per core, r58 / Janus: **{:.1}x** (from the extrapolations above).",
            ours / peer
        );
    }
    let mut ratios = Vec::new();
    for r in steps.iter().filter(|s| s.server == "r58") {
        if let Some(j) = steps
            .iter()
            .find(|s| s.server == "janus" && s.subscribers == r.subscribers)
            && r.cpu_us_per_packet > 0.0
        {
            ratios.push(format!(
                "{}: {:.1}x",
                r.subscribers,
                j.cpu_us_per_packet / r.cpu_us_per_packet
            ));
        }
    }
    if !ratios.is_empty() {
        let _ = writeln!(
            md,
            "- CPU per forwarded packet, Janus / r58, at the same subscriber count: {}.",
            ratios.join(", ")
        );
    }
    md
}

/// A plot panel: its title, the top of its y axis, and the value it plots.
type Panel = (&'static str, f64, fn(&Step) -> f64);

/// Two panels side by side: server CPU and loss, against subscribers.
pub fn svg(steps: &[Step]) -> String {
    const W: f64 = 360.0;
    const H: f64 = 240.0;
    const M: f64 = 48.0;
    let colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
    let max_n = steps.iter().map(|s| s.subscribers).max().unwrap_or(1) as f64;
    let max_cpu = steps
        .iter()
        .map(|s| s.server_cpu_pct)
        .fold(100.0_f64, f64::max);
    let max_loss = steps.iter().map(|s| s.loss_pct).fold(1.0_f64, f64::max);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        2.0 * (W + M) + M,
        H + 2.0 * M
    );
    let panels: [Panel; 2] = [
        ("server CPU, % of one core", max_cpu, |s| s.server_cpu_pct),
        ("loss, %", max_loss, |s| s.loss_pct),
    ];
    for (p, (title, max_y, value)) in panels.iter().enumerate() {
        let x0 = M + p as f64 * (W + M);
        let y0 = M + H;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\">{title}</text>\n\
             <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{}\" y2=\"{y0}\" stroke=\"black\"/>\n\
             <line x1=\"{x0}\" y1=\"{M}\" x2=\"{x0}\" y2=\"{y0}\" stroke=\"black\"/>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">subscribers</text>",
            x0 + W / 2.0,
            M - 16.0,
            x0 + W,
            x0 + W / 2.0,
            y0 + 32.0
        );
        for i in 0..=4 {
            let fy = i as f64 / 4.0;
            let y = y0 - fy * H;
            let x = x0 + fy * W;
            let _ = writeln!(
                out,
                "<line x1=\"{x0}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/>\n\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.1}</text>\n\
                 <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{:.0}</text>",
                x0 + W,
                x0 - 4.0,
                y + 4.0,
                fy * max_y,
                y0 + 14.0,
                fy * max_n
            );
        }
        for (k, server) in servers(steps).into_iter().enumerate() {
            let color = colors[k % colors.len()];
            let points: Vec<(f64, f64)> = steps
                .iter()
                .filter(|s| s.server == server)
                .map(|s| {
                    (
                        x0 + s.subscribers as f64 / max_n * W,
                        y0 - (value(s) / max_y).min(1.0) * H,
                    )
                })
                .collect();
            let path: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            );
            for (x, y) in points {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\"/>"
                );
            }
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" fill=\"{color}\">{server}</text>",
                x0 + 8.0,
                M + 14.0 + 14.0 * k as f64
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real sweep (2026-12-03, this machine): r58 at 100-1500 and Janus at 100-250.
    fn sweep() -> Vec<Step> {
        serde_json::from_str(include_str!("../testdata/sweep-2026-12-03.json")).unwrap()
    }

    #[test]
    fn capacity_uses_the_whole_core_and_skips_saturated_steps() {
        let steps = sweep();
        let (step, per_core) = capacity(&steps, "r58").unwrap();
        // 1500 lost nothing but queued for over a second on a full core: not carried.
        assert_eq!(step.subscribers, 1000);
        let busy = step.core_busy_pct.unwrap();
        assert!(
            busy < step.server_cpu_pct + step.core_softirq_pct.unwrap(),
            "the core's time is below process + softirq (they overlap)"
        );
        assert!((per_core - 100_000.0 / busy).abs() < 1e-6);
        let (janus, _) = capacity(&steps, "janus").unwrap();
        assert_eq!(janus.subscribers, 100, "Janus lost 55 % at 250");
    }

    #[test]
    fn markdown_has_a_row_per_step_and_the_ratio() {
        let steps = sweep();
        let md = markdown(&steps, "machine line");
        assert!(md.starts_with("machine line\n"));
        let rows = md
            .lines()
            .filter(|l| l.starts_with("| r58 ") || l.starts_with("| janus "))
            .count();
        assert_eq!(rows, steps.len());
        assert!(md.contains("Subscribers per core, r58 / Janus: **"));
        assert!(svg(&steps).contains("<polyline"));
    }
}
