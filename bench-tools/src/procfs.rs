//! What the kernel says about the server and the machine: CPU time, memory, UDP drops, load.

use std::fs;

/// CPU time of `pid` so far (user + system, every thread, including threads that already
/// exited), in nanoseconds, from `/proc/<pid>/stat` (clock ticks of 10 ms: measure windows of
/// seconds).
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name may hold spaces; the fields after it are fixed.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based) -> indices 11, 12.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    ticks * (1_000_000_000 / CLOCK_TICKS_PER_SECOND)
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux architecture r58 runs on.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

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
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
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

/// Datagrams dropped so far by the UDP socket bound to `port` (any address) in the network
/// namespace of process `pid`, from the `drops` column of `/proc/<pid>/net/udp`: the server's
/// own receive drops, told apart from the generator's.
pub fn udp_socket_drops(pid: u32, port: u16) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/net/udp")).unwrap_or_default();
    let wanted = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|local| local.ends_with(&wanted))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// Busy, total and softirq jiffies of one CPU (`/proc/stat`): what else ran on the server's
/// core, and the network softirq work (loopback delivery of what the server sends runs there
/// and, with IRQ time accounting, is not charged to the server process).
pub fn cpu_jiffies(cpu: usize) -> (u64, u64, u64) {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let prefix = format!("cpu{cpu} ");
    let Some(line) = text.lines().find(|l| l.starts_with(&prefix)) else {
        return (0, 0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total, v.get(6).copied().unwrap_or(0))
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_grows_with_work() {
        let pid = std::process::id();
        let before = cpu_ns(pid);
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(cpu_ns(pid) > before, "300 ms of spinning shows as CPU time");
        assert!(rss_bytes(pid) > 0);
    }
}
