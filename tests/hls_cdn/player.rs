//! An emulated LL-HLS player, as hls.js in low-latency mode drives the server: the multivariant
//! playlist, one plain media playlist load, then forever a blocking reload for the next part
//! (`_HLS_msn`/`_HLS_part` from the EXT-X-PRELOAD-HINT, `_HLS_skip=YES` like hls.js once the
//! playlist is long) followed by a fetch of every part it did not have yet. Two keep-alive
//! connections, one for playlists and one for media, as a browser would use.
//!
//! How far behind live a player is: when a part's bytes arrive, the wall clock now minus the
//! wall clock at the end of the part's media (its segment's EXT-X-PROGRAM-DATE-TIME plus the
//! durations of the parts before it and its own), the same clock the e2e tests compare
//! hls.js's playing position against.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One HTTP/1.1 keep-alive connection that reconnects when the server closed it.
pub struct Connection {
    addr: SocketAddr,
    sender: Option<SendRequest<Empty<Bytes>>>,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    async fn sender(&mut self) -> std::io::Result<&mut SendRequest<Empty<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("just set"))
    }

    /// `GET path`: the status and body.
    pub async fn get(&mut self, path: &str) -> std::io::Result<(StatusCode, Bytes)> {
        let reply = self.fetch(path).await?;
        Ok((reply.status, reply.body))
    }

    /// `GET path`, the whole answer (a connection closed between requests is retried once).
    pub async fn fetch(&mut self, path: &str) -> std::io::Result<Reply> {
        for attempt in 0..2 {
            let host = self.addr.to_string();
            let sender = self.sender().await?;
            if sender.ready().await.is_err() {
                self.sender = None;
                continue;
            }
            let request = Request::get(path)
                .header(hyper::header::HOST, host)
                .body(Empty::new())
                .map_err(std::io::Error::other)?;
            match sender.send_request(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map_err(std::io::Error::other)?
                        .to_bytes();
                    return Ok(Reply {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                    });
                }
                Err(e) if attempt == 0 => {
                    let _ = e;
                    self.sender = None;
                }
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        Err(std::io::Error::other(format!(
            "GET {path}: connection lost"
        )))
    }
}

/// A part listed in a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedPart {
    pub msn: u64,
    pub index: u32,
    pub uri: String,
    /// Wall clock at the end of the part's media.
    pub end: SystemTime,
}

/// What a player needs from a media playlist: its parts and the preload hint.
#[derive(Debug, Default)]
pub struct MediaPlaylist {
    pub parts: Vec<ListedPart>,
    pub hint: Option<(u64, u32)>,
}

/// `part{msn}.{index}.m4s` -> (msn, index).
fn part_name(uri: &str) -> Option<(u64, u32)> {
    let rest = uri.strip_prefix("part")?.strip_suffix(".m4s")?;
    let (msn, index) = rest.split_once('.')?;
    Some((msn.parse().ok()?, index.parse().ok()?))
}

fn attribute<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (_, attributes) = line.split_once(':')?;
    attributes.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.trim_matches('"'))
    })
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` (what r58 writes) to a wall clock time.
fn parse_date_time(text: &str) -> Option<SystemTime> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|v| v.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<u64>().ok()?,
        t.next()?.parse::<u64>().ok()?,
    );
    let secs: f64 = t.next()?.parse().ok()?;
    // Days from civil (proleptic Gregorian), the inverse of r58's rfc3339.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(
        UNIX_EPOCH
            + Duration::from_secs(days * 86_400 + h * 3600 + min * 60)
            + Duration::from_secs_f64(secs),
    )
}

impl MediaPlaylist {
    pub fn parse(text: &str) -> MediaPlaylist {
        let mut out = MediaPlaylist::default();
        let mut segment_start: Option<SystemTime> = None;
        let mut offset = 0.0;
        for line in text.lines() {
            if let Some(time) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                segment_start = parse_date_time(time);
                offset = 0.0;
            } else if line.starts_with("#EXT-X-PART:") {
                let duration: f64 = attribute(line, "DURATION")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0.0);
                offset += duration;
                let uri = attribute(line, "URI").unwrap_or_default();
                if let (Some(start), Some((msn, index))) = (segment_start, part_name(uri)) {
                    out.parts.push(ListedPart {
                        msn,
                        index,
                        uri: uri.to_owned(),
                        end: start + Duration::from_secs_f64(offset),
                    });
                }
            } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
                out.hint = attribute(line, "URI").and_then(part_name);
            }
        }
        out
    }
}

/// What one player saw.
#[derive(Debug, Default, Clone)]
pub struct PlayerStats {
    /// Seconds behind live of each part received in the measuring window.
    pub behind_live: Vec<f64>,
    pub requests: u64,
    /// Failed requests and non-200 answers, with the first few reasons.
    pub errors: u64,
    pub first_errors: Vec<String>,
}

impl PlayerStats {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_errors.len() < 3 {
            self.first_errors.push(what);
        }
    }
}

/// Plays `stream` through `addr` until `until`, recording parts that arrive after `measure_from`.
pub async fn play(
    addr: SocketAddr,
    stream: &str,
    measure_from: Instant,
    until: Instant,
) -> PlayerStats {
    let mut stats = PlayerStats::default();
    let mut playlists = Connection::new(addr);
    let mut media = Connection::new(addr);
    // The multivariant playlist names the media playlist.
    let variant = match playlists.get(&format!("/hls/{stream}/index.m3u8")).await {
        Ok((StatusCode::OK, body)) => String::from_utf8_lossy(&body)
            .lines()
            .find(|l| l.ends_with("stream.m3u8"))
            .map(str::to_owned),
        Ok((status, _)) => {
            stats.error(format!("multivariant: {status}"));
            None
        }
        Err(e) => {
            stats.error(format!("multivariant: {e}"));
            None
        }
    };
    stats.requests += 1;
    let Some(variant) = variant else {
        return stats;
    };
    let base = format!("/hls/{stream}/{}", variant.trim_end_matches("stream.m3u8"));
    let mut next: Option<(u64, u32)> = None;
    let mut have: Option<(u64, u32)> = None;
    while Instant::now() < until {
        let uri = match next {
            Some((msn, part)) => {
                format!("{base}stream.m3u8?_HLS_msn={msn}&_HLS_part={part}&_HLS_skip=YES")
            }
            None => format!("{base}stream.m3u8"),
        };
        stats.requests += 1;
        let playlist = match playlists.get(&uri).await {
            Ok((StatusCode::OK, body)) => MediaPlaylist::parse(&String::from_utf8_lossy(&body)),
            Ok((status, _)) => {
                stats.error(format!("{uri}: {status}"));
                next = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => {
                stats.error(format!("{uri}: {e}"));
                next = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        // A player starts at the live edge: the newest part first, no history.
        if have.is_none() {
            have = playlist
                .parts
                .len()
                .checked_sub(2)
                .map(|i| (playlist.parts[i].msn, playlist.parts[i].index));
        }
        for part in &playlist.parts {
            let key = (part.msn, part.index);
            if have.is_some_and(|have| key <= have) {
                continue;
            }
            stats.requests += 1;
            match media.get(&format!("{base}{}", part.uri)).await {
                Ok((StatusCode::OK, _)) => {
                    let now = Instant::now();
                    if now >= measure_from && now < until {
                        let behind = SystemTime::now()
                            .duration_since(part.end)
                            .unwrap_or_default();
                        stats.behind_live.push(behind.as_secs_f64());
                    }
                }
                Ok((status, _)) => stats.error(format!("{}: {status}", part.uri)),
                Err(e) => stats.error(format!("{}: {e}", part.uri)),
            }
            have = Some(key);
        }
        next = playlist.hint;
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_their_wall_clock_come_from_the_playlist() {
        let text = "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2026-12-06T05:17:15.250Z\n\
            #EXT-X-PART:DURATION=0.20000,URI=\"part7.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PART:DURATION=0.30000,URI=\"part7.1.m4s\"\n\
            #EXTINF:0.5,\nseg7.m4s\n\
            #EXT-X-PROGRAM-DATE-TIME:2026-12-06T05:17:15.750Z\n\
            #EXT-X-PART:DURATION=0.20000,URI=\"part8.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part8.1.m4s\"\n";
        let p = MediaPlaylist::parse(text);
        assert_eq!(p.hint, Some((8, 1)));
        let keys: Vec<_> = p.parts.iter().map(|p| (p.msn, p.index)).collect();
        assert_eq!(keys, [(7, 0), (7, 1), (8, 0)]);
        let start = parse_date_time("2026-12-06T05:17:15.250Z").unwrap();
        assert_eq!(
            start.duration_since(UNIX_EPOCH).unwrap().as_millis(),
            1_796_534_235_250
        );
        assert_eq!(
            p.parts[1].end.duration_since(start).unwrap().as_millis(),
            500
        );
    }
}
