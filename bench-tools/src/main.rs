//! `fanout`: how many WHEP subscribers of one 2.5 Mbit/s 30 fps stream a server carries on one
//! core, and what it adds in latency and memory.
//!
//! For each N of the sweep: a fresh server pinned to `--server-core`, one synthetic publisher,
//! N subscribers that complete ICE and DTLS (r58's own client) and count what arrives. After a
//! warm-up, one window is measured: server CPU (all its threads, from /proc), CPU-us per
//! forwarded packet, loss and reorder (from the clear RTP sequence numbers), publisher send ->
//! kernel receive latency (a decrypted sample), RSS per subscriber, and the kernel's UDP drop
//! counters, so a generator that falls behind is told apart from a server that drops.
//!
//! Run it pinned to the other core: `taskset -c 0 fanout --server-bin target/release/r58`.

#![forbid(unsafe_code)]

mod http;
mod janus;
mod procfs;
mod publisher;
mod render;
mod report;
mod server;
mod stamp;
mod subscribers;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use sfu::engine::delay::DelayHistogram;

use publisher::{Ingest, Publisher};
use report::Step;
use server::Placement;
use subscribers::{Peer, Pool};

#[derive(Parser, Debug)]
#[command(about = "WHEP fan-out load generator for r58")]
struct Args {
    /// The r58 binary to start for each step (a release build for real numbers).
    #[arg(long, required_unless_present = "from_json")]
    server_bin: Option<PathBuf>,
    /// Run nothing: render --markdown and --svg from a JSON file of an earlier run.
    #[arg(long)]
    from_json: Option<PathBuf>,
    /// Subscriber counts to sweep.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100,250,500,1000,2000,3000"
    )]
    sizes: Vec<usize>,
    /// Seconds of warm-up after the subscribers connected.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured per step.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// The core to pin the server to (`taskset -c`); none to leave it unpinned. Its busy time
    /// is reported as the server's core's.
    #[arg(long)]
    server_core: Option<usize>,
    /// Pin the server to these cores instead (`taskset -c` list, such as `0,1`): r58 then runs
    /// a media thread per core. `--server-core` still names the core whose busy time is shown.
    #[arg(long)]
    server_cpus: Option<String>,
    /// Where to write the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also run every step against Janus (this binary), as the peer SFU.
    #[arg(long)]
    janus_bin: Option<PathBuf>,
    /// The address the servers serve HTTP and media on (their ICE candidate). Janus never
    /// gathers on a loopback interface, so for Janus this must be an address of another
    /// interface: `scripts/bench.sh` gives the servers a network namespace of their own with a
    /// veth address.
    #[arg(long, alias = "janus-ip", default_value = "127.0.0.1")]
    server_ip: IpAddr,
    /// Start the servers in this network namespace (`ip netns exec`; needs root).
    #[arg(long)]
    server_netns: Option<String>,
    /// The address the publisher and the subscribers bind to (default: --server-ip).
    #[arg(long)]
    client_ip: Option<IpAddr>,
    /// Publisher pacing, as a multiple of the stream's 2.5 Mbit/s (Chromium paces at 2.5);
    /// 0 sends each frame's packets back to back.
    #[arg(long, default_value_t = 0.0)]
    pace: f64,
    /// Folder for the peer's configuration and log.
    #[arg(long, default_value = "/tmp/r58-fanout")]
    work_dir: PathBuf,
    /// Where to write the results as a Markdown section (table and summary).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Where to write the plot of CPU and loss against subscribers (SVG).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// A line describing the machine and run, put at the top of the Markdown.
    #[arg(long, default_value = "")]
    machine: String,
    /// Stop the sweep after a step whose loss exceeds this percentage.
    #[arg(long, default_value_t = 5.0)]
    stop_loss: f64,
}

fn main() {
    let args = Args::parse();
    if let Some(path) = &args.from_json {
        let steps: Vec<Step> = match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(steps) => steps,
            Err(e) => {
                eprintln!("fanout: cannot read {}: {e}", path.display());
                std::process::exit(1);
            }
        };
        write_outputs(&args, &steps);
        return;
    }
    let Some(server_bin) = args.server_bin.clone() else {
        return;
    };
    let mut steps = Vec::new();
    println!(
        "fanout: 1 publisher (H.264 ~2.5 Mbit/s, 30 fps, {}), server {} pinned to cores {:?} on {}{}, clients on {}, {} s per step",
        pacing(args.pace),
        server_bin.display(),
        placement(&args).cpus,
        args.server_ip,
        args.server_netns
            .as_deref()
            .map(|ns| format!(" (namespace {ns})"))
            .unwrap_or_default(),
        client_ip(&args),
        args.duration
    );
    if let Some(janus) = &args.janus_bin {
        println!("peer: {} ({})", janus::version(janus), janus.display());
    }
    println!("{}", report::header());
    let mut stopped = [false, args.janus_bin.is_none()];
    let mut failed_any = false;
    for &n in &args.sizes {
        for (i, name) in ["r58", "janus"].into_iter().enumerate() {
            if stopped[i] {
                continue;
            }
            let result = if i == 0 {
                run_r58(&args, n)
            } else {
                run_janus(&args, n)
            };
            match result {
                Ok(step) => {
                    println!("{}", report::row(&step));
                    if step.loss_pct > args.stop_loss {
                        println!(
                            "{name}: loss above {} %: its sweep stops here",
                            args.stop_loss
                        );
                        stopped[i] = true;
                    }
                    steps.push(step);
                }
                Err(e) => {
                    eprintln!("fanout: {name} with {n} subscribers: {e}");
                    // A later step that fails is a finding; the first one means a broken setup.
                    failed_any |= !steps.iter().any(|s: &Step| s.server == name);
                    stopped[i] = true;
                }
            }
        }
        if stopped.iter().all(|s| *s) {
            break;
        }
    }
    if let Some(path) = &args.json
        && let Err(e) = report::write_json(path, &steps)
    {
        eprintln!("fanout: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
    write_outputs(&args, &steps);
    // A step in which nothing arrived means the setup is broken, not that the server is slow.
    if steps.is_empty() || steps.iter().any(|s| s.counts.received == 0) || failed_any {
        eprintln!("fanout: a step failed or delivered nothing");
        std::process::exit(1);
    }
}

fn write_outputs(args: &Args, steps: &[Step]) {
    let outputs = [
        (&args.markdown, render::markdown(steps, &args.machine)),
        (&args.svg, render::svg(steps)),
    ];
    for (path, text) in outputs {
        if let Some(path) = path
            && let Err(e) = std::fs::write(path, text)
        {
            eprintln!("fanout: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

/// "frames in bursts" or the pacing factor, for the console heading.
fn pacing(pace: f64) -> String {
    if pace > 0.0 {
        format!("paced at {pace} x its bitrate")
    } else {
        "frames in bursts".into()
    }
}

fn client_ip(args: &Args) -> IpAddr {
    args.client_ip.unwrap_or(args.server_ip)
}

fn placement(args: &Args) -> Placement {
    Placement {
        cpus: args
            .server_cpus
            .clone()
            .or(args.server_core.map(|core| core.to_string())),
        netns: args.server_netns.clone(),
        ip: args.server_ip,
    }
}

fn run_r58(args: &Args, n: usize) -> Result<Step, Box<dyn std::error::Error>> {
    let bin = args.server_bin.as_deref().ok_or("no --server-bin")?;
    let server = server::start_r58(bin, &placement(args), n + 16, &args.work_dir)?;
    let stream = "bench".to_string();
    let publisher = Publisher::start(
        &Ingest::Whip {
            http: server.http,
            stream: stream.clone(),
        },
        client_ip(args),
        args.pace,
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = procfs::rss_bytes(server.pid);
    let mut pool = Pool::new(n, client_ip(args))?;
    let connect_started = Instant::now();
    pool.open(
        n,
        &Peer::Whep {
            http: server.http,
            stream,
        },
        Duration::from_secs(60 + n as u64 / 20),
    )?;
    let connect_s = connect_started.elapsed().as_secs_f64();
    pool.run_for(Duration::from_secs_f64(args.warmup))?;
    let sends_before = r58_send_counters(server.http);
    let ingest_before = procfs::udp_socket_drops(server.pid, server.udp.port());
    let mut measured = measure(args, &mut pool, &publisher, server.pid)?;
    let sends = r58_send_counters(server.http).since(&sends_before);
    measured.server_send_dropped = sends.dropped;
    measured.server_shed = sends.shed;
    measured.datagrams_per_message = ratio(sends.datagrams, sends.messages);
    measured.datagrams_per_syscall = ratio(sends.datagrams, sends.syscalls);
    measured.server_delay_ms = sends
        .delay_quantile_ms(0.5)
        .zip(sends.delay_quantile_ms(0.99));
    measured.server_ingest_dropped =
        procfs::udp_socket_drops(server.pid, server.udp.port()) - ingest_before;
    let rss_after = procfs::rss_bytes(server.pid);
    Ok(Step::new(
        "r58",
        n,
        pool.connected(),
        connect_s,
        rss_before,
        rss_after,
        measured,
    ))
}

/// r58's media-socket counters (from `/metrics`): what it sent and how it was batched, and
/// its histogram of in-server delays.
#[derive(Debug, Default, Clone)]
struct SendCounters {
    dropped: u64,
    /// Publisher packets not sent to viewers because they came too late (r58 fell behind).
    shed: u64,
    datagrams: u64,
    messages: u64,
    syscalls: u64,
    delays: DelayHistogram,
}

impl SendCounters {
    fn since(&self, before: &SendCounters) -> SendCounters {
        SendCounters {
            dropped: self.dropped.saturating_sub(before.dropped),
            shed: self.shed.saturating_sub(before.shed),
            datagrams: self.datagrams.saturating_sub(before.datagrams),
            messages: self.messages.saturating_sub(before.messages),
            syscalls: self.syscalls.saturating_sub(before.syscalls),
            delays: self.delays.since(&before.delays),
        }
    }

    /// The upper bound (ms) of the bucket holding the `q` quantile of the in-server delays.
    fn delay_quantile_ms(&self, q: f64) -> Option<f64> {
        self.delays
            .quantile_bound(q)
            .map(|bound| bound.as_secs_f64() * 1e3)
    }
}

/// `count` per `unit`, when there was any unit.
fn ratio(count: u64, unit: u64) -> Option<f64> {
    (unit > 0).then(|| count as f64 / unit as f64)
}

fn r58_send_counters(http: std::net::SocketAddr) -> SendCounters {
    let body = http::request(http, "GET", "/metrics", None, "")
        .map(|r| r.body)
        .unwrap_or_default();
    let metric = |name: &str| {
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (key, value) = l.split_once(' ')?;
                (key == name).then(|| value.trim().parse().ok()).flatten()
            })
            .unwrap_or(0)
    };
    let cumulative: Vec<u64> = body
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("r58_forward_delay_seconds_bucket{le=\"")?;
            rest.split_once("\"} ")?.1.trim().parse().ok()
        })
        .collect();
    let sum = body
        .lines()
        .find_map(|l| l.strip_prefix("r58_forward_delay_seconds_sum "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs_f64);
    // Nothing when r58 exposes no such histogram (or another layout of it).
    let delays = DelayHistogram::from_cumulative(&cumulative, sum).unwrap_or_default();
    SendCounters {
        dropped: metric("r58_send_dropped_total"),
        shed: metric("r58_shed_packets_total"),
        datagrams: metric("r58_datagrams_out_total"),
        messages: metric("r58_send_messages_total"),
        syscalls: metric("r58_send_syscalls_total"),
        delays,
    }
}

fn run_janus(args: &Args, n: usize) -> Result<Step, Box<dyn std::error::Error>> {
    let bin = args.janus_bin.as_deref().ok_or("no --janus-bin")?;
    let dir = janus::config_dir(&args.work_dir, n);
    let server = janus::start(bin, &placement(args), &dir)?;
    let publisher = Publisher::start(
        &Ingest::PlainRtp { to: server.udp },
        client_ip(args),
        args.pace,
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = procfs::rss_bytes(server.pid);
    let mut pool = Pool::new(n, client_ip(args))?;
    let connect_started = Instant::now();
    pool.open(
        n,
        &Peer::Janus { http: server.http },
        Duration::from_secs(60 + n as u64 / 10),
    )?;
    let connect_s = connect_started.elapsed().as_secs_f64();
    pool.run_for(Duration::from_secs_f64(args.warmup))?;
    let ingest_before = procfs::udp_socket_drops(server.pid, server.udp.port());
    let mut measured = measure(args, &mut pool, &publisher, server.pid)?;
    measured.server_ingest_dropped =
        procfs::udp_socket_drops(server.pid, server.udp.port()) - ingest_before;
    let rss_after = procfs::rss_bytes(server.pid);
    Ok(Step::new(
        "janus",
        n,
        pool.connected(),
        connect_s,
        rss_before,
        rss_after,
        measured,
    ))
}

/// What one measured window saw.
pub struct Window {
    pub seconds: f64,
    pub server_cpu_ns: u64,
    pub published: u64,
    pub counts: subscribers::WindowCounts,
    pub latency_us: Vec<f64>,
    pub udp: procfs::UdpCounters,
    pub core_busy_pct: Option<f64>,
    pub core_softirq_pct: Option<f64>,
    pub load_average: f64,
    pub failed: usize,
    pub retried: usize,
    /// Datagrams the server itself counted as dropped on send (r58 only).
    pub server_send_dropped: u64,
    /// Publisher packets the server shed, late, instead of sending (r58 only): each is a copy
    /// per subscriber that the subscribers' numbering does not show as a gap.
    pub server_shed: u64,
    /// How the server batched its sends (r58 only): datagrams per message (a GSO run is one
    /// message) and per `sendmmsg` call.
    pub datagrams_per_message: Option<f64>,
    /// r58's own p50 / p99 of the delay from a packet's arrival to each copy's send (ms, the
    /// upper bound of the histogram bucket each falls in).
    pub server_delay_ms: Option<(f64, f64)>,
    pub datagrams_per_syscall: Option<f64>,
    /// Publisher packets the server's receive socket dropped (its buffer was full).
    pub server_ingest_dropped: u64,
    /// The publisher's pacing factor (0: bursts).
    pub publisher_pace: f64,
}

fn measure(
    args: &Args,
    pool: &mut Pool,
    publisher: &Publisher,
    pid: u32,
) -> Result<Window, subscribers::PoolError> {
    let before = pool.snapshot();
    pool.latency_us.clear();
    let cpu0 = procfs::cpu_ns(pid);
    let udp0 = procfs::udp_counters();
    let core0 = args.server_core.map(procfs::cpu_jiffies);
    let sent0 = publisher.sent();
    let start = Instant::now();
    pool.run_for(Duration::from_secs_f64(args.duration))?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu1 = procfs::cpu_ns(pid);
    let sent1 = publisher.sent();
    let udp1 = procfs::udp_counters();
    let (core_busy_pct, core_softirq_pct) = match (core0, args.server_core.map(procfs::cpu_jiffies))
    {
        (Some((b0, t0, s0)), Some((b1, t1, s1))) if t1 > t0 => (
            Some(100.0 * (b1 - b0) as f64 / (t1 - t0) as f64),
            Some(100.0 * (s1 - s0) as f64 / (t1 - t0) as f64),
        ),
        _ => (None, None),
    };
    // Packets in flight at the end of the window are counted when they arrive.
    pool.run_for(Duration::from_millis(200))?;
    let after = pool.snapshot();
    Ok(Window {
        seconds,
        server_cpu_ns: cpu1.saturating_sub(cpu0),
        published: sent1 - sent0,
        counts: subscribers::window(&before, &after, sent1 - sent0),
        latency_us: std::mem::take(&mut pool.latency_us),
        udp: udp1 - udp0,
        core_busy_pct,
        core_softirq_pct,
        load_average: procfs::load_average(),
        failed: pool.failed(),
        retried: pool.retried,
        server_send_dropped: 0,
        server_shed: 0,
        datagrams_per_message: None,
        server_delay_ms: None,
        datagrams_per_syscall: None,
        server_ingest_dropped: 0,
        publisher_pace: args.pace,
    })
}
