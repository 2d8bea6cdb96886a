//! What the kernel says about the server and the machine: CPU time, memory, UDP drops, load.

use std::fs;

/// CPU time of every thread of `pid` so far, in nanoseconds (`/proc/<pid>/task/*/schedstat`,
/// nanosecond resolution, unlike the 10 ms ticks of `/proc/<pid>/stat`).
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Resident memory of `pid` in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The machine-wide UDP counters that tell where datagrams were dropped.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct UdpCounters {
    /// Datagrams dropped because a receiving socket's buffer was full (the generator's side
    /// when it falls behind).
    pub rcvbuf_errors: u64,
    /// Datagrams a sender could not queue (the server's socket buffer).
    pub sndbuf_errors: u64,
    pub in_datagrams: u64,
}

pub fn udp_counters() -> UdpCounters {
    let text = fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return UdpCounters::default();
    };
    let get = |name: &str| {
        names
            .split_whitespace()
            .position(|n| n == name)
            .and_then(|i| values.split_whitespace().nth(i)?.parse().ok())
            .unwrap_or(0)
    };
    UdpCounters {
        rcvbuf_errors: get("RcvbufErrors"),
        sndbuf_errors: get("SndbufErrors"),
        in_datagrams: get("InDatagrams"),
    }
}

impl std::ops::Sub for UdpCounters {
    type Output = UdpCounters;
    fn sub(self, o: UdpCounters) -> UdpCounters {
        UdpCounters {
            rcvbuf_errors: self.rcvbuf_errors.saturating_sub(o.rcvbuf_errors),
            sndbuf_errors: self.sndbuf_errors.saturating_sub(o.sndbuf_errors),
            in_datagrams: self.in_datagrams.saturating_sub(o.in_datagrams),
        }
    }
}

/// Busy and total jiffies of one CPU (`/proc/stat`), to see what else ran on the server's core.
pub fn cpu_jiffies(cpu: usize) -> (u64, u64) {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let prefix = format!("cpu{cpu} ");
    let Some(line) = text.lines().find(|l| l.starts_with(&prefix)) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}
