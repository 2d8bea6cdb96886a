//! LL-HLS behind a CDN: a cache in front of the real `r58` binary with one test camera, and
//! 10, 50 and 200 emulated LL-HLS players ([`player`]: blocking reload + part fetch, as hls.js
//! does). Two caches, one test each: Debian's nginx (proxy_cache honouring r58's headers,
//! proxy_cache_lock on, the query string in the key: tests/hls_cdn/nginx.conf.in) and Debian's
//! Varnish (r58's Cache-Control as is, no grace, the query string in the hash, its waiting list
//! coalescing concurrent misses and waking them when the answer arrives:
//! tests/hls_cdn/varnish.vcl.in).
//!
//! Through the cache, the requests reaching r58 per second stay flat (within 2x of the
//! 10-player figure: about one blocking reload and one part per published part, whatever the
//! audience) and the players stay within a second of live (99th percentile of every part
//! received). In the nginx test the same players straight at r58 (no cache) are measured and
//! printed for the record: there the origin load grows with the audience (asserted: over 5x
//! the cached load at the largest size), while its playlist renders stay at about one per
//! published part.
//!
//! Timing-sensitive and heavy (hundreds of connections on a shared machine), so `#[ignore]`d
//! in the workspace run; scripts/test.sh runs them alone, one after the other:
//! `cargo nextest run -p r58 --test hls_cdn --run-ignored only --no-capture`.
//! `R58_CDN_PLAYERS` (default `10,50,200`) and `R58_CDN_SECS` (the measuring window per size,
//! default 4) make them the benchmark of docs/benchmarks.md.
//!
//! nginx or varnish missing: its test says so and passes, unless `CI` is set (then it fails).

mod nginx;
mod player;
#[path = "../abuse/server.rs"]
#[allow(dead_code)]
mod server;
mod varnish;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use player::{Connection, PlayerStats};
use server::Server;

/// One 320x240 30 fps test camera (`cam0`): parts of 200 ms, a keyframe a second.
const ONE_CAMERA: &str =
    "[test_cameras]\ncount = 1\nwidth = 320\nheight = 240\nfps = 30\nbitrate = 300000\n";
const STREAM: &str = "cam0";
/// Players start spread over this, then run this long before the window opens.
const RAMP: Duration = Duration::from_secs(1);
const WARMUP: Duration = Duration::from_secs(2);

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

/// r58's LL-HLS counters: (requests of every kind, playlist renders).
async fn origin_counters(origin: SocketAddr) -> (f64, f64) {
    let (status, body) = Connection::new(origin)
        .get("/metrics")
        .await
        .expect("r58 /metrics");
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&body);
    let sum = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    (
        sum("r58_hls_requests_total{"),
        sum("r58_hls_playlist_renders_total "),
    )
}

/// One size, measured.
#[derive(Debug)]
struct Row {
    players: usize,
    origin_rps: f64,
    renders_ps: f64,
    /// r58's CPU use over the window, in % of one core.
    cpu: f64,
    /// The cache's (nginx's or Varnish's), when one is in front.
    cache_cpu: Option<f64>,
    player_rps: f64,
    behind: Vec<f64>,
    errors: u64,
    first_errors: Vec<String>,
}

impl Row {
    fn behind(&self, p: f64) -> f64 {
        if self.behind.is_empty() {
            return f64::INFINITY;
        }
        let i = ((self.behind.len() - 1) as f64 * p).round() as usize;
        self.behind[i]
    }

    fn print(&self, label: &str) {
        println!(
            "{label:>8} {:>4} players: origin {:6.1} req/s ({:5.1} renders/s), r58 CPU {:5.1} %{}, \
             players {:7.1} req/s, behind live p50 {:.3} s p99 {:.3} s max {:.3} s ({} parts), \
             {} errors {:?}",
            self.players,
            self.origin_rps,
            self.renders_ps,
            self.cpu,
            self.cache_cpu
                .map(|c| format!(", cache CPU {c:5.1} %"))
                .unwrap_or_default(),
            self.player_rps,
            self.behind(0.5),
            self.behind(0.99),
            self.behind(1.0),
            self.behind.len(),
            self.errors,
            self.first_errors,
        );
    }
}

/// Runs `players` emulated players through `target` and measures the origin over the window.
async fn measure(
    target: SocketAddr,
    origin: &Server,
    cache_cpu_time: Option<&dyn Fn() -> Duration>,
    players: usize,
    window: Duration,
) -> Row {
    let start = Instant::now();
    let measure_from = start + RAMP + WARMUP;
    let until = measure_from + window;
    let mut tasks = Vec::with_capacity(players);
    for i in 0..players {
        let delay = RAMP.mul_f64(i as f64 / players as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            player::play(target, STREAM, measure_from, until).await
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let (requests_before, renders_before) = origin_counters(origin.http).await;
    let cpu_before = origin.cpu_time();
    let cache_before = cache_cpu_time.map(|f| f());
    tokio::time::sleep_until(until.into()).await;
    let (requests_after, renders_after) = origin_counters(origin.http).await;
    let cpu = origin.cpu_time() - cpu_before;
    let cache_cpu = cache_cpu_time
        .zip(cache_before)
        .map(|(f, before)| f() - before);
    let seconds = window.as_secs_f64();
    let mut all = PlayerStats::default();
    let mut requests_in_window = 0.0;
    for task in tasks {
        let stats = task.await.expect("player task");
        all.behind_live.extend(stats.behind_live);
        all.errors += stats.errors;
        requests_in_window += stats.requests as f64;
        if all.first_errors.len() < 3 {
            all.first_errors.extend(stats.first_errors);
        }
    }
    all.behind_live.sort_by(f64::total_cmp);
    // Player requests over the whole run (ramp and warm-up included), per second of it.
    let ran = (until - start).as_secs_f64();
    Row {
        players,
        origin_rps: (requests_after - requests_before) / seconds,
        renders_ps: (renders_after - renders_before) / seconds,
        cpu: cpu.as_secs_f64() / seconds * 100.0,
        cache_cpu: cache_cpu.map(|c| c.as_secs_f64() / seconds * 100.0),
        player_rps: requests_in_window / ran,
        behind: all.behind_live,
        errors: all.errors,
        first_errors: all.first_errors,
    }
}

/// The headers a CDN needs, as they arrive through the cache: a blocking reload is kept and
/// answered from the cache the second time, with the origin's Date (and, when the cache says
/// so, the `Age` it has been kept: `age_sent`, as Varnish and Cloudflare do).
async fn check_headers_through_cache(cache: SocketAddr, age_sent: bool) {
    let mut connection = Connection::new(cache);
    let (status, body) = connection
        .get(&format!("/hls/{STREAM}/index.m3u8"))
        .await
        .expect("multivariant through the cache");
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&body).into_owned();
    let media = text
        .lines()
        .find(|l| l.ends_with("stream.m3u8"))
        .expect("a media playlist URI")
        .to_owned();
    let (_, body) = connection
        .get(&format!("/hls/{STREAM}/{media}"))
        .await
        .expect("media playlist");
    let playlist = player::MediaPlaylist::parse(&String::from_utf8_lossy(&body));
    let (msn, part) = playlist.hint.expect("a preload hint");
    let uri = format!("/hls/{STREAM}/{media}?_HLS_msn={msn}&_HLS_part={part}");
    let first = connection.fetch(&uri).await.expect("blocking reload");
    let second = connection.fetch(&uri).await.expect("the same again");
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("x-cache-status"), Some("MISS"), "{first:?}");
    assert_eq!(
        second.header("x-cache-status"),
        Some("HIT"),
        "the second viewer of a part is answered by the cache: {second:?}"
    );
    assert_eq!(first.header("cache-control"), Some("public, max-age=1"));
    assert!(
        first.header("date").is_some(),
        "the origin's Date: {first:?}"
    );
    assert_eq!(first.header("date"), second.header("date"), "kept as is");
    assert_eq!(first.body, second.body);
    if age_sent {
        let age: u64 = second
            .header("age")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("an Age from the cache: {second:?}"));
        assert!(age <= 1, "kept no longer than max-age=1: {second:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing-sensitive and heavy: scripts/test.sh runs it alone"]
async fn origin_load_stays_flat_behind_a_cache() {
    if !nginx::installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is required in CI (.ci/run installs it)"
        );
        println!("skipping: /usr/sbin/nginx not installed (apt-get install nginx)");
        return;
    }
    let sizes = env_list("R58_CDN_PLAYERS", &[10, 50, 200]);
    let window = Duration::from_secs(env_list("R58_CDN_SECS", &[4])[0] as u64);
    let mut origin = Server::start(ONE_CAMERA, &[]);
    origin.wait_for_stream(STREAM);
    let cache = nginx::Nginx::start(origin.http);
    check_headers_through_cache(cache.addr, false).await;

    let mut cached = Vec::new();
    for &players in &sizes {
        let cpu = || nginx::cpu_time(cache.pid());
        let row = measure(cache.addr, &origin, Some(&cpu), players, window).await;
        row.print("nginx");
        cached.push(row);
    }
    let mut direct = Vec::new();
    for &players in &sizes {
        let row = measure(origin.http, &origin, None, players, window).await;
        row.print("no cache");
        direct.push(row);
    }
    origin.assert_running();
    assert!(
        cache
            .error_log()
            .lines()
            .all(|l| !l.contains("[crit]") && !l.contains("[alert]")),
        "nginx: {}",
        cache.error_log()
    );

    // Without the cache every viewer's request reaches the box, but the origin still renders
    // about one playlist per published part (one wait, one render shared by all).
    let (few, many) = (&direct[0], &direct[direct.len() - 1]);
    let cached_many = &cached[cached.len() - 1];
    assert!(
        many.origin_rps > 5.0 * cached_many.origin_rps,
        "the cache keeps {} players' requests away from the origin: {:.1} req/s without it, \
         {:.1} with it",
        many.players,
        many.origin_rps,
        cached_many.origin_rps
    );
    assert!(
        many.renders_ps <= 2.0 * few.renders_ps.max(1.0),
        "playlist renders grow with the audience: {:.1}/s for {} players, {:.1}/s for {}",
        many.renders_ps,
        many.players,
        few.renders_ps,
        few.players
    );

    assert_flat_and_live(&cached);
}

/// Through a cache, the origin's load stays flat (within 2x of the smallest audience's) and
/// every player stays within a second of live (99th percentile of its parts), with no errors.
fn assert_flat_and_live(cached: &[Row]) {
    let base = cached[0].origin_rps;
    assert!(base > 0.0, "the origin served the players");
    for row in cached {
        assert_eq!(
            row.errors, 0,
            "{} players: {:?}",
            row.players, row.first_errors
        );
        assert!(
            row.origin_rps <= 2.0 * base,
            "{} players through the cache cost the origin {:.1} req/s, over twice the {:.1} \
             of {} players",
            row.players,
            row.origin_rps,
            base,
            cached[0].players
        );
        let p99 = row.behind(0.99);
        assert!(
            p99 <= 1.0,
            "{} players through the cache: 99th percentile {p99:.3} s behind live",
            row.players
        );
    }
}

/// The same players with Debian's Varnish as the edge (tests/hls_cdn/varnish.vcl.in: r58's
/// Cache-Control as is, no grace, the query string in the hash, the waiting list coalescing).
/// Only the cached sizes: the uncached origin load is the nginx test's record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing-sensitive and heavy: scripts/test.sh runs it alone"]
async fn origin_load_stays_flat_behind_varnish() {
    if !varnish::installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "varnish is required in CI (.ci/run installs it)"
        );
        println!("skipping: /usr/sbin/varnishd not installed (apt-get install varnish)");
        return;
    }
    let sizes = env_list("R58_CDN_PLAYERS", &[10, 50, 200]);
    let window = Duration::from_secs(env_list("R58_CDN_SECS", &[4])[0] as u64);
    let mut origin = Server::start(ONE_CAMERA, &[]);
    origin.wait_for_stream(STREAM);
    let cache = varnish::Varnish::start(origin.http);
    check_headers_through_cache(cache.addr, true).await;

    let mut cached = Vec::new();
    for &players in &sizes {
        let cpu = || cache.cpu_time();
        let row = measure(cache.addr, &origin, Some(&cpu), players, window).await;
        row.print("varnish");
        cached.push(row);
    }
    origin.assert_running();
    assert!(
        !cache.log().contains("Child not responding") && !cache.log().contains("Panic"),
        "varnishd: {}",
        cache.log()
    );
    assert_flat_and_live(&cached);
}
