//! One RTSP client connection, sans-IO: bytes from the client go in with
//! [`Connection::handle_input`], the stream's packets with [`Connection::handle_media`], time
//! with [`Connection::handle_timeout`]; what to send comes out of [`Connection::poll_output`],
//! what the driver must do (attach a hub reader, close) out of [`Connection::poll_event`], and
//! the next deadline out of [`Connection::poll_timeout`].
//!
//! A connection carries at most one session (what every RTSP client does), which ends with it.
//! Each request gets a response with the status RFC 2326 gives for what is wrong: 400 for a
//! request without a numeric CSeq, 404 for a stream nobody publishes, 401 with Digest and Basic
//! challenges when the stream's `[[auth]]` token is needed, 454 for a session this connection
//! does not hold, 455 for PLAY before SETUP, 459 for a second stream in one session, 461 for a
//! transport r58 does not serve (multicast, RECORD, UDP without client ports), 501 for methods
//! it does not implement and 505 for RTSP 2.0. Bytes that are no RTSP message get one 400 and
//! the connection closes (nothing after them can be trusted to start a message); interleaved
//! frames from the client are RTCP receiver reports or garbage, both ignored.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtsp_types::headers::{
    AUTHORIZATION, CONTENT_BASE, CONTENT_TYPE, CSEQ, PUBLIC, RANGE, RTP_INFO, SESSION, TRANSPORT,
    WWW_AUTHENTICATE,
};
use rtsp_types::headers::{RtpLowerTransport, RtpProfile, Transport, TransportMode, Transports};
use rtsp_types::{Message, Method, ParseError, Request, StatusCode, Version};
use tracing::debug;

use super::auth;
use super::output::{Delivery, SourceReport, TrackOutput};
use super::sdp::{StreamDescription, payload_type, session_description, track_control};
use super::wire::{content_base, frame, reason_phrase, splitmix, stream_and_control};
use crate::hub::ReaderPacket;
use crate::media::{TrackKind, WallClock};

/// Input buffered without a complete message before the client is cut off.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// How often a playing session gets Sender Reports.
pub const SENDER_REPORT_INTERVAL: Duration = Duration::from_secs(2);
const PUBLIC_METHODS: &str =
    "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// What a connection looks up: the streams and who may read them.
pub trait Catalog {
    /// Stream `name`, or `None` when nobody publishes it.
    fn describe(&self, name: &str) -> Option<StreamDescription>;
    /// The secret a client must show to read `name`, or `None` when it is open.
    fn required_token(&self, name: &str) -> Option<String>;
}

/// How a connection is set up by its driver.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// The client's address; UDP media goes to this IP only.
    pub peer: SocketAddr,
    /// The address the client reached (the SDP's origin).
    pub local: SocketAddr,
    /// The server's RTP and RTCP UDP ports; `None`: UDP transport is not offered.
    pub udp_ports: Option<(u16, u16)>,
    /// A UDP session without requests for this long ends (TCP sessions end with the connection).
    pub session_timeout: Duration,
    /// A connection without a session and without requests for this long is closed.
    pub idle_timeout: Duration,
    pub wall_clock: WallClock,
    /// Seeds the session id, the digest nonce, SSRCs and initial sequence numbers.
    pub seed: u64,
    /// Answer every request with this status and close (a refused connection: per-client
    /// limit, server full).
    pub refuse: Option<u16>,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Attach a hub reader of `stream` and feed its packets to [`Connection::handle_media`].
    Play { stream: String },
    /// Send what is queued, then close the connection.
    Close { reason: &'static str },
}

/// Something to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes for the connection (responses and interleaved frames, in order).
    Tcp(Vec<u8>),
    /// A datagram from the server's RTP (or, with `rtcp`, RTCP) port.
    Udp {
        to: SocketAddr,
        rtcp: bool,
        data: Vec<u8>,
    },
}

/// Counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    pub requests: u64,
    pub errors: u64,
    pub packets_sent: u64,
    /// Interleaved frames from the client on channels no track uses.
    pub ignored_frames: u64,
}

#[derive(Debug)]
struct Session {
    id: String,
    stream: String,
    description: StreamDescription,
    /// Indexed like the stream's tracks; `None` for tracks not set up.
    tracks: Vec<Option<TrackOutput>>,
    playing: bool,
    reader_attached: bool,
    next_report: Option<Instant>,
}

/// The protocol state of one client connection.
#[derive(Debug)]
pub struct Connection {
    config: ConnectionConfig,
    buffer: Vec<u8>,
    session: Option<Session>,
    tcp_out: Vec<u8>,
    udp_out: VecDeque<Output>,
    events: VecDeque<Event>,
    last_request: Instant,
    closing: bool,
    nonce: String,
    rng: u64,
    source_reports: Vec<Option<SourceReport>>,
    pub stats: ConnectionStats,
}

/// The response being built for one request.
struct Reply {
    status: StatusCode,
    headers: Vec<(rtsp_types::HeaderName, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn status(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, name: rtsp_types::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl Connection {
    pub fn new(now: Instant, config: ConnectionConfig) -> Self {
        let mut rng = config.seed | 1;
        let nonce = format!("{:016x}{:016x}", splitmix(&mut rng), splitmix(&mut rng));
        Self {
            config,
            buffer: Vec::new(),
            session: None,
            tcp_out: Vec::new(),
            udp_out: VecDeque::new(),
            events: VecDeque::new(),
            last_request: now,
            closing: false,
            nonce,
            rng,
            source_reports: Vec::new(),
            stats: ConnectionStats::default(),
        }
    }

    /// The stream this connection plays, once PLAY said so.
    pub fn playing_stream(&self) -> Option<&str> {
        self.session
            .as_ref()
            .filter(|s| s.reader_attached)
            .map(|s| s.stream.as_str())
    }

    /// Bytes the client sent.
    pub fn handle_input(&mut self, now: Instant, data: &[u8], catalog: &dyn Catalog) {
        if self.closing {
            return;
        }
        self.buffer.extend_from_slice(data);
        let mut consumed_total = 0;
        loop {
            let rest = &self.buffer[consumed_total..];
            if rest.is_empty() {
                break;
            }
            match Message::<Vec<u8>>::parse(rest) {
                Ok((message, consumed)) => {
                    consumed_total += consumed;
                    match message {
                        Message::Request(request) => self.handle_request(now, request, catalog),
                        Message::Data(data) => self.handle_client_frame(now, data.channel_id()),
                        Message::Response(_) => {
                            // r58 sends no requests, so no response can be an answer.
                            self.stats.ignored_frames += 1;
                        }
                    }
                    if self.closing {
                        break;
                    }
                }
                Err(ParseError::Incomplete(_)) => {
                    if rest.len() > MAX_REQUEST_BYTES {
                        self.fail(StatusCode::RequestMessageBodyTooLarge, "request too large");
                    }
                    break;
                }
                Err(ParseError::Error) => {
                    self.fail(StatusCode::BadRequest, "not an RTSP message");
                    break;
                }
            }
        }
        self.buffer.drain(..consumed_total.min(self.buffer.len()));
        if self.closing {
            self.buffer.clear();
        }
    }

    /// A packet of the played stream, from its hub reader.
    pub fn handle_media(&mut self, now: Instant, packet: &ReaderPacket) {
        let Some(session) = self.session.as_mut().filter(|s| s.playing) else {
            return;
        };
        let Some(Some(track)) = session.tracks.get_mut(packet.track) else {
            return;
        };
        match track.delivery {
            Delivery::Interleaved { rtp: channel, .. } => {
                // The frame header, then the packet written straight after it.
                let start = self.tcp_out.len();
                self.tcp_out.extend_from_slice(&[b'$', channel, 0, 0]);
                if !track.write_rtp(now, packet, &mut self.tcp_out) {
                    self.tcp_out.truncate(start);
                    return;
                }
                let len = self.tcp_out.len() - start - 4;
                if len > usize::from(u16::MAX) {
                    // Cannot be framed (a hub packet is at most a datagram); not sent.
                    self.tcp_out.truncate(start);
                    return;
                }
                self.tcp_out[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
            }
            Delivery::Udp { rtp: to, .. } => {
                let Some(rtp) = track.rtp(now, packet) else {
                    return;
                };
                self.udp_out.push_back(Output::Udp {
                    to,
                    rtcp: false,
                    data: rtp,
                });
            }
        }
        self.stats.packets_sent += 1;
        if session.next_report.is_none() {
            // The first report soon after the first packet, so players sync from the start.
            session.next_report = Some(now + Duration::from_millis(200));
        }
    }

    /// The time is `now`: Sender Reports, session and idle timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closing {
            return;
        }
        let timed_out = match &self.session {
            Some(session) if session.times_out() => {
                now >= self.last_request + self.config.session_timeout
            }
            Some(_) => false,
            None => now >= self.last_request + self.config.idle_timeout,
        };
        if timed_out {
            debug!(peer = %self.config.peer, "RTSP session or connection timed out");
            self.close("timeout");
            return;
        }
        let cname = format!("r58@{}", self.config.local.ip());
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if !session.playing || session.next_report.is_none_or(|at| now < at) {
            return;
        }
        session.next_report = Some(now + SENDER_REPORT_INTERVAL);
        for (index, track) in session.tracks.iter().enumerate() {
            let Some(track) = track else { continue };
            let source = self.source_reports.get(index).copied().flatten();
            let Some(report) = track.sender_report(now, &self.config.wall_clock, &cname, source)
            else {
                continue;
            };
            match track.delivery {
                Delivery::Interleaved { rtcp, .. } => frame(&mut self.tcp_out, rtcp, &report),
                Delivery::Udp { rtcp: to, .. } => self.udp_out.push_back(Output::Udp {
                    to,
                    rtcp: true,
                    data: report,
                }),
            }
        }
    }

    /// The client's RTCP addresses of its UDP tracks: a datagram from one of them (a receiver
    /// report) is passed to [`Connection::handle_client_rtcp`].
    pub fn udp_rtcp_addresses(&self) -> Vec<SocketAddr> {
        self.session
            .iter()
            .flat_map(|s| s.tracks.iter().flatten())
            .filter_map(|t| match t.delivery {
                Delivery::Udp { rtcp, .. } => Some(rtcp),
                Delivery::Interleaved { .. } => None,
            })
            .collect()
    }

    /// The client sent RTCP by UDP (a receiver report): it is alive, as a request would say.
    pub fn handle_client_rtcp(&mut self, at: Instant) {
        if self.session.is_some() && at > self.last_request {
            self.last_request = at;
        }
    }

    /// The publisher's latest Sender Reports, by track (from the hub, see
    /// [`super::output::SourceReport`]); the driver refreshes them before a report is due.
    pub fn set_source_reports(&mut self, reports: Vec<Option<SourceReport>>) {
        self.source_reports = reports;
    }

    /// When the next Sender Reports are due, if playing.
    pub fn report_due(&self) -> Option<Instant> {
        self.session
            .as_ref()
            .filter(|s| s.playing)
            .and_then(|s| s.next_report)
    }

    /// The hub reader ended (the stream is gone or changed its tracks): RTSP 1.0 has no way to
    /// tell a client, so the connection closes and the client reconnects.
    pub fn handle_stream_ended(&mut self) {
        self.close("stream ended");
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closing {
            return None;
        }
        match &self.session {
            Some(session) => {
                let timeout = session
                    .times_out()
                    .then(|| self.last_request + self.config.session_timeout);
                match (timeout, session.next_report.filter(|_| session.playing)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            None => Some(self.last_request + self.config.idle_timeout),
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        if !self.tcp_out.is_empty() {
            return Some(Output::Tcp(std::mem::take(&mut self.tcp_out)));
        }
        self.udp_out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn close(&mut self, reason: &'static str) {
        if !self.closing {
            self.closing = true;
            self.events.push_back(Event::Close { reason });
        }
    }

    /// Answers an unparsable input and closes.
    fn fail(&mut self, status: StatusCode, reason: &'static str) {
        self.stats.errors += 1;
        self.write_reply(None, Reply::status(status));
        self.close(reason);
    }

    fn handle_client_frame(&mut self, now: Instant, channel: u8) {
        let known = self.session.as_ref().is_some_and(|s| {
            s.tracks.iter().flatten().any(
                |t| matches!(t.delivery, Delivery::Interleaved { rtcp, .. } if rtcp == channel),
            )
        });
        if known {
            // A receiver report: the client is alive.
            self.last_request = now;
        } else {
            self.stats.ignored_frames += 1;
        }
    }

    fn handle_request(&mut self, now: Instant, request: Request<Vec<u8>>, catalog: &dyn Catalog) {
        self.stats.requests += 1;
        self.last_request = now;
        let cseq = request
            .header(&CSEQ)
            .map(|v| v.as_str().trim().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit()));
        let Some(cseq) = cseq else {
            self.stats.errors += 1;
            self.write_reply(None, Reply::status(StatusCode::BadRequest));
            return;
        };
        if let Some(status) = self.config.refuse {
            self.stats.errors += 1;
            let reply = Reply::status(StatusCode::from(status))
                .header(rtsp_types::headers::RETRY_AFTER, "5");
            self.write_reply(Some(&cseq), reply);
            self.close("refused");
            return;
        }
        if request.version() != Version::V1_0 {
            self.stats.errors += 1;
            self.write_reply(
                Some(&cseq),
                Reply::status(StatusCode::RTSPVersionNotSupported),
            );
            return;
        }
        let reply = self.answer(now, &request, catalog);
        if reply.status != StatusCode::Ok {
            self.stats.errors += 1;
            debug!(peer = %self.config.peer, method = <&str>::from(request.method()), status = u16::from(reply.status), "RTSP request refused");
        }
        self.write_reply(Some(&cseq), reply);
    }

    fn answer(&mut self, now: Instant, request: &Request<Vec<u8>>, catalog: &dyn Catalog) -> Reply {
        let method = request.method().clone();
        match method {
            Method::Options => Reply::status(StatusCode::Ok).header(PUBLIC, PUBLIC_METHODS),
            Method::Describe => self.describe(request, catalog),
            Method::Setup => self.setup(request, catalog),
            Method::Play => self.play(now, request),
            Method::Pause => match self.session_of(request) {
                Err(reply) => reply,
                Ok(session) => {
                    session.playing = false;
                    for track in session.tracks.iter_mut().flatten() {
                        track.waiting_keyframe = track.is_video;
                    }
                    Reply::status(StatusCode::Ok)
                }
            },
            Method::Teardown => match self.session_of(request) {
                Err(reply) => reply,
                Ok(_) => {
                    self.close("teardown");
                    Reply::status(StatusCode::Ok)
                }
            },
            Method::GetParameter | Method::SetParameter => {
                if request.header(&SESSION).is_some()
                    && let Err(reply) = self.session_of(request)
                {
                    return reply;
                }
                Reply::status(StatusCode::Ok)
            }
            Method::Announce | Method::Record => Reply::status(StatusCode::MethodNotAllowed)
                .header(rtsp_types::headers::ALLOW, PUBLIC_METHODS),
            _ => Reply::status(StatusCode::NotImplemented),
        }
    }

    /// The stream a request is about, checked and authorized.
    fn authorized_stream(
        &self,
        request: &Request<Vec<u8>>,
        catalog: &dyn Catalog,
    ) -> Result<(String, Option<String>), Reply> {
        let (stream, control) = request
            .request_uri()
            .and_then(stream_and_control)
            .ok_or_else(|| Reply::status(StatusCode::NotFound))?;
        if let Some(secret) = catalog.required_token(&stream) {
            let header = request.header(&AUTHORIZATION).map(|v| v.as_str());
            let method = <&str>::from(request.method());
            if let Err(why) = auth::check(header, method, &secret, &self.nonce) {
                debug!(peer = %self.config.peer, stream, %why, "RTSP credentials refused");
                let [digest, basic] = auth::challenges(&self.nonce);
                return Err(Reply::status(StatusCode::Unauthorized)
                    .header(WWW_AUTHENTICATE, digest)
                    .header(WWW_AUTHENTICATE, basic));
            }
        }
        Ok((stream, control))
    }

    fn describe(&mut self, request: &Request<Vec<u8>>, catalog: &dyn Catalog) -> Reply {
        let (stream, _) = match self.authorized_stream(request, catalog) {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        let Some(description) = catalog.describe(&stream) else {
            return Reply::status(StatusCode::NotFound);
        };
        let sdp = session_description(
            &stream,
            self.config.seed >> 1,
            self.config.local.ip(),
            &description,
        );
        let base = content_base(request.request_uri(), &stream);
        let mut reply = Reply::status(StatusCode::Ok)
            .header(CONTENT_TYPE, "application/sdp")
            .header(CONTENT_BASE, base);
        reply.body = sdp.into_bytes();
        reply
    }

    fn setup(&mut self, request: &Request<Vec<u8>>, catalog: &dyn Catalog) -> Reply {
        let (stream, control) = match self.authorized_stream(request, catalog) {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        if request.header(&SESSION).is_some() || self.session.is_some() {
            match self.session_of(request) {
                Err(reply) => return reply,
                Ok(session) if session.stream != stream => {
                    return Reply::status(StatusCode::AggregateOperationNotAllowed);
                }
                Ok(_) => {}
            }
        }
        let description = match &self.session {
            Some(session) => session.description.clone(),
            None => match catalog.describe(&stream) {
                Some(d) => d,
                None => return Reply::status(StatusCode::NotFound),
            },
        };
        let index = match control.as_deref() {
            None if description.tracks.len() == 1 => 0,
            None => return Reply::status(StatusCode::AggregateOperationNotAllowed),
            Some(control) => {
                match (0..description.tracks.len()).find(|&i| track_control(i) == control) {
                    Some(i) => i,
                    None => return Reply::status(StatusCode::NotFound),
                }
            }
        };
        let Ok(Some(transports)) = request.typed_header::<Transports>() else {
            return Reply::status(StatusCode::UnsupportedTransport);
        };
        let Some((delivery, answer)) = transports
            .iter()
            .find_map(|t| self.choose_transport(t, index))
        else {
            return Reply::status(StatusCode::UnsupportedTransport);
        };
        let track = &description.tracks[index];
        let ssrc = splitmix(&mut self.rng) as u32;
        let seq = splitmix(&mut self.rng) as u16;
        let ts = splitmix(&mut self.rng) as u32;
        let output = TrackOutput::new(
            delivery,
            ssrc,
            payload_type(index),
            track.codec.clock_rate,
            track.kind == TrackKind::Video,
            seq,
            ts,
        );
        let answer = format!("{answer};ssrc={ssrc:08X}");
        let timeout = self.config.session_timeout.as_secs().max(1);
        let session = self.session.get_or_insert_with(|| Session {
            id: format!("{:016X}", splitmix(&mut self.rng)),
            stream,
            tracks: vec![None; description.tracks.len()],
            description,
            playing: false,
            reader_attached: false,
            next_report: None,
        });
        session.tracks[index] = Some(output);
        Reply::status(StatusCode::Ok)
            .header(TRANSPORT, answer)
            .header(SESSION, format!("{};timeout={timeout}", session.id))
    }

    /// The delivery for one offered transport, with the Transport header that says so, or
    /// `None` when r58 does not serve it.
    fn choose_transport(&self, transport: &Transport, index: usize) -> Option<(Delivery, String)> {
        let Transport::Rtp(rtp) = transport else {
            return None;
        };
        if rtp.profile != RtpProfile::Avp
            || rtp.params.multicast
            || rtp.params.mode.iter().any(|m| *m != TransportMode::Play)
        {
            return None;
        }
        match rtp.lower_transport {
            Some(RtpLowerTransport::Tcp) => {
                let default = (index * 2) as u8;
                let (rtp_ch, rtcp_ch) = match rtp.params.interleaved {
                    Some((a, b)) => (a, b.unwrap_or(a.wrapping_add(1))),
                    None => (default, default.wrapping_add(1)),
                };
                if self.channel_in_use(rtp_ch, index) || self.channel_in_use(rtcp_ch, index) {
                    return None;
                }
                Some((
                    Delivery::Interleaved {
                        rtp: rtp_ch,
                        rtcp: rtcp_ch,
                    },
                    format!("RTP/AVP/TCP;unicast;interleaved={rtp_ch}-{rtcp_ch}"),
                ))
            }
            None | Some(RtpLowerTransport::Udp) => {
                let (server_rtp, server_rtcp) = self.config.udp_ports?;
                let (client_rtp, client_rtcp) = rtp.params.client_port?;
                if client_rtp == 0 {
                    return None;
                }
                let client_rtcp = client_rtcp.unwrap_or(client_rtp.wrapping_add(1));
                // Media goes to the address the request came from, whatever `destination` says:
                // an RTSP server must not be a way to flood a third party.
                let ip = self.config.peer.ip();
                Some((
                    Delivery::Udp {
                        rtp: SocketAddr::new(ip, client_rtp),
                        rtcp: SocketAddr::new(ip, client_rtcp),
                    },
                    format!(
                        "RTP/AVP;unicast;client_port={client_rtp}-{client_rtcp};server_port={server_rtp}-{server_rtcp}"
                    ),
                ))
            }
            Some(RtpLowerTransport::Other(_)) => None,
        }
    }

    fn channel_in_use(&self, channel: u8, except: usize) -> bool {
        self.session.as_ref().is_some_and(|s| {
            s.tracks.iter().enumerate().any(|(i, t)| {
                i != except
                    && matches!(t, Some(TrackOutput { delivery: Delivery::Interleaved { rtp, rtcp }, .. }) if *rtp == channel || *rtcp == channel)
            })
        })
    }

    fn play(&mut self, now: Instant, request: &Request<Vec<u8>>) -> Reply {
        let base = request
            .request_uri()
            .map(|u| u.as_str().trim_end_matches('/').to_owned());
        let session = match self.session_of(request) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let prefix = base
            .map(|b| match b.rfind('/') {
                // PLAY on one track's URL: the others are its siblings.
                Some(i) if b[i + 1..].starts_with("trackID=") => b[..i].to_owned(),
                _ => b,
            })
            .unwrap_or_default();
        let info: Vec<String> = session
            .tracks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let t = t.as_ref()?;
                Some(format!(
                    "url={prefix}/{};seq={};rtptime={}",
                    track_control(i),
                    t.initial_seq,
                    t.initial_ts
                ))
            })
            .collect();
        if info.is_empty() {
            return Reply::status(StatusCode::MethodNotValidInThisState);
        }
        session.playing = true;
        let _ = now;
        let stream = session.stream.clone();
        let session_header = session.id.clone();
        if !session.reader_attached {
            session.reader_attached = true;
            self.events.push_back(Event::Play { stream });
        }
        Reply::status(StatusCode::Ok)
            .header(RANGE, "npt=0.000-")
            .header(RTP_INFO, info.join(","))
            .header(SESSION, session_header)
    }

    /// The session a request names: 454 when it names another or none exists, 455 when it
    /// names none but one exists (RFC 2326 section 12.37).
    fn session_of(&mut self, request: &Request<Vec<u8>>) -> Result<&mut Session, Reply> {
        let named = request
            .header(&SESSION)
            .map(|v| v.as_str().split(';').next().unwrap_or("").trim().to_owned());
        match (&mut self.session, named) {
            (Some(session), Some(id)) if session.id == id => Ok(session),
            (Some(_), None) => Err(Reply::status(StatusCode::MethodNotValidInThisState)),
            _ => Err(Reply::status(StatusCode::SessionNotFound)),
        }
    }

    /// Writes a response. Serialized here rather than by `rtsp-types`, which joins repeated
    /// headers into one line: players read each `WWW-Authenticate` challenge on its own line.
    fn write_reply(&mut self, cseq: Option<&str>, reply: Reply) {
        use std::io::Write as _;
        let code = u16::from(reply.status);
        let out = &mut self.tcp_out;
        let _ = write!(out, "RTSP/1.0 {code} {}\r\n", reason_phrase(code));
        if let Some(cseq) = cseq {
            let _ = write!(out, "CSeq: {cseq}\r\n");
        }
        out.extend_from_slice(b"Server: r58\r\n");
        for (name, value) in &reply.headers {
            // Values are r58's own text, the request's normalized URL or a checked CSeq: none
            // holds a line break.
            let _ = write!(
                out,
                "{}: {}\r\n",
                name.as_str(),
                value.replace(['\r', '\n'], "")
            );
        }
        if !reply.body.is_empty() {
            let _ = write!(out, "Content-Length: {}\r\n", reply.body.len());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&reply.body);
    }
}

impl Session {
    /// Whether the session ends without requests: a UDP one always (nothing else says the
    /// client is there), a TCP one while it does not play (set up and left, or paused).
    fn times_out(&self) -> bool {
        !self.playing
            || self
                .tracks
                .iter()
                .flatten()
                .any(|t| matches!(t.delivery, Delivery::Udp { .. }))
    }
}
