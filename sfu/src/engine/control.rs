//! The control plane's entry points: create, restart and end sessions; describe streams.

use std::net::SocketAddr;
use std::time::Instant;

use rand::RngExt;
use tracing::info;

use super::{CloseReason, Engine, EngineError};
use crate::hub::{Track, TrackStats};
use crate::media::CodecSpec;
use crate::media::outputs::{unavailable_outputs, webrtc_refusal};
use crate::media::{SourceKind, TrackKind};
use crate::rtp::rewrite::Rewriter;
use crate::webrtc::bitrate_cap::BitrateCap;
use crate::webrtc::dtls::Dtls;
use crate::webrtc::ice_lite::IceLite;
use crate::webrtc::sdp::{
    self, AcceptedMedia, AnswerMedia, AnswerParams, FragmentMedia, MediaKind, Offer, SendSsrc,
};
use crate::webrtc::session::{
    BundledMedia, InboundTrack, OutboundTrack, Role, RtxStream, Session, SessionId, SessionState,
    SessionStats,
};

/// A created session: its id, the SDP answer and the ETag of its ICE session.
#[derive(Debug, Clone)]
pub struct Answer {
    pub session: SessionId,
    pub sdp: String,
    pub etag: String,
}

/// A stream as /api/streams shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamInfo {
    pub name: String,
    pub source: SourceKind,
    pub online: bool,
    pub tracks: Vec<TrackInfo>,
    /// Connected WHEP viewers.
    pub viewers: usize,
    /// Readers by kind (WHEP viewers now; HLS muxers, recorders and the switcher later).
    pub readers: std::collections::BTreeMap<&'static str, usize>,
    pub keyframe_requests: u64,
    /// Outputs this stream cannot have (`hls`, `recording`, `program`) and why: r58 does not
    /// transcode, so a VP8 stream is live over WebRTC only. Empty for H.264/Opus streams.
    pub unavailable: std::collections::BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TrackInfo {
    pub kind: TrackKind,
    pub codec: String,
    pub clock_rate: u32,
    #[serde(flatten)]
    pub stats: TrackStats,
}

fn new_etag() -> String {
    format!("\"{:016x}\"", rand::rng().random::<u64>())
}

impl Engine {
    fn check_capacity(&self) -> Result<(), EngineError> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err(EngineError::TooManySessions(self.config.max_sessions));
        }
        Ok(())
    }

    fn new_session(
        &mut self,
        now: Instant,
        role: Role,
        stream: &str,
        offer: &Offer,
    ) -> Result<Session, EngineError> {
        let dtls = Dtls::server(&self.identity, &offer.fingerprint_sha256, &self.provider)?;
        let id = self.next_session_id;
        self.next_session_id += 1;
        Ok(Session {
            id,
            role,
            stream: stream.to_owned(),
            created_at: now,
            state: SessionState::Connecting,
            ice: IceLite::new(offer.ice_ufrag.clone()),
            remote_candidates: Vec::new(),
            dtls,
            srtp_out: None,
            rtp_out: None,
            srtp_in: None,
            etag: new_etag(),
            feedback_ssrc: rand::rng().random(),
            remb: false,
            inbound: Vec::new(),
            outbound: Vec::new(),
            stats: SessionStats::default(),
            last_media_at: None,
            bundle: Vec::new(),
            bitrate_cap: (role == Role::Publish && self.config.publisher_bitrate_cap_bps > 0)
                .then(|| BitrateCap::new(self.config.publisher_bitrate_cap_bps)),
        })
    }

    fn answer_for(
        &self,
        session: &Session,
        offer: &Offer,
        media: Vec<AnswerMedia>,
    ) -> Result<String, EngineError> {
        let params = AnswerParams {
            ice_ufrag: &session.ice.local.ufrag,
            ice_pwd: &session.ice.local.pwd,
            fingerprint_sha256: &self.identity.fingerprint,
            candidates: &self.config.candidates,
            relay: self.relay.candidate,
            media,
            session_id: session.id,
        };
        Ok(sdp::build_answer(offer, &params)?)
    }

    fn register(&mut self, session: Session, candidates: &[SocketAddr]) {
        let id = session.id;
        self.by_ufrag.insert(session.ice.local.ufrag.clone(), id);
        self.stats.sessions_opened += 1;
        self.sessions.insert(id, session);
        self.note_remote_candidates(id, candidates);
    }

    /// WHIP: `offer` publishes stream `name`. A publisher already on that name is replaced; its
    /// viewers stay and continue with the new publisher when the codecs allow it.
    pub fn publish(
        &mut self,
        now: Instant,
        name: &str,
        offer: &str,
    ) -> Result<Answer, EngineError> {
        self.check_capacity()?;
        let offer = sdp::parse_offer(offer)?;
        let mut tracks = Vec::new();
        let mut inbound = Vec::new();
        let mut media = Vec::new();
        let mut remb = false;
        let mut refusals = Vec::new();
        for m in &offer.media {
            let chosen = publish_choice(m);
            let (kind, codec, direction) = match chosen {
                Ok(c) => c,
                Err(why) => {
                    refusals.push(why);
                    media.push(AnswerMedia::unused(m));
                    continue;
                }
            };
            remb |= codec.rtcp_fb.iter().any(|fb| fb == "goog-remb");
            inbound.push(InboundTrack {
                track_index: tracks.len(),
                payload_type: codec.payload_type,
                ssrcs: m.ssrcs.clone(),
                seen_ssrc: None,
                is_video: kind == TrackKind::Video,
                nack: codec.rtcp_fb.iter().any(|fb| fb == "nack"),
                gaps: Default::default(),
                repair: Default::default(),
            });
            tracks.push(Track::new(kind, CodecSpec::from(codec)));
            media.push(AnswerMedia::accept(
                &m.mid,
                AcceptedMedia {
                    codec: codec.clone(),
                    with_rtx: false,
                    direction,
                    extmaps: Vec::new(),
                    send: None,
                },
            ));
        }
        if tracks.is_empty() {
            return Err(EngineError::NoUsableMedia(format!(
                "nothing to publish: {}",
                refusals.join("; ")
            )));
        }
        let mut session = self.new_session(now, Role::Publish, name, &offer)?;
        session.inbound = inbound;
        session.remb = remb;
        session.bundle = bundled(&offer, &media);
        let sdp = self.answer_for(&session, &offer, media)?;
        let id = session.id;
        let etag = session.etag.clone();

        self.attach_publisher(now, name, id, SourceKind::Whip, tracks);
        self.register(session, &offer.candidates);
        info!(stream = name, session = id, "publish session created");
        Ok(Answer {
            session: id,
            sdp,
            etag,
        })
    }

    /// WHEP: `offer` plays stream `name`.
    pub fn play(&mut self, now: Instant, name: &str, offer: &str) -> Result<Answer, EngineError> {
        self.check_capacity()?;
        let limit = self.config.max_viewers_per_stream;
        if limit > 0
            && self
                .sessions
                .values()
                .filter(|s| s.role == Role::Play && s.stream == name)
                .count()
                >= limit
        {
            return Err(EngineError::TooManyViewers {
                stream: name.to_owned(),
                limit,
            });
        }
        let offer = sdp::parse_offer(offer)?;
        let stream = self
            .hub
            .get(name)
            .filter(|s| s.publisher().is_some() || s.orphaned_at.is_some())
            .ok_or_else(|| EngineError::StreamNotFound(name.to_owned()))?;
        if let Some(reason) = webrtc_refusal(
            stream
                .tracks
                .iter()
                .map(|t| (t.kind, t.codec.name.as_str())),
        ) {
            return Err(EngineError::IncompatibleCodec {
                stream: name.to_owned(),
                reason,
            });
        }
        let mut used = vec![false; stream.tracks.len()];
        let mut outbound = Vec::new();
        let mut media = Vec::new();
        let mut refusals = Vec::new();
        // Tracks an m-line of their kind was offered for but could not carry (codec).
        let mut incompatible = Vec::new();
        let mut rng = rand::rng();
        for m in &offer.media {
            let kind = match m.kind {
                MediaKind::Audio => TrackKind::Audio,
                MediaKind::Video => TrackKind::Video,
                _ => {
                    refusals.push(m.why_unusable().unwrap_or_default());
                    media.push(AnswerMedia::unused(m));
                    continue;
                }
            };
            if let Some(why) = m.why_unusable() {
                refusals.push(why);
                media.push(AnswerMedia::unused(m));
                continue;
            }
            let Some(index) =
                (0..stream.tracks.len()).find(|&i| !used[i] && stream.tracks[i].kind == kind)
            else {
                refusals.push(format!(
                    "m-line {:?} asks for {} and the stream has no (other) {} track",
                    m.mid,
                    m.kind.as_sdp(),
                    m.kind.as_sdp()
                ));
                media.push(AnswerMedia::unused(m));
                continue;
            };
            let Some(direction) = sdp::answer_direction_for(m.direction, true) else {
                refusals.push(format!(
                    "m-line {:?} is {}; a WHEP offer must receive (recvonly or sendrecv)",
                    m.mid, m.direction
                ));
                media.push(AnswerMedia::unused(m));
                continue;
            };
            let source = &stream.tracks[index];
            let Some(codec) = sdp::choose_play_codec(m, &source.codec) else {
                incompatible.push(sdp::play_refusal(m, &source.codec));
                media.push(AnswerMedia::unused(m));
                continue;
            };
            used[index] = true;
            // Capture times are known for the box's own cameras; offer them where asked.
            let abs_capture = m
                .extmaps
                .iter()
                .find(|(_, uri)| uri == sdp::ABS_CAPTURE_TIME_URI)
                .filter(|_| stream.source == SourceKind::Camera)
                .cloned();
            let ssrc: u32 = rng.random();
            let rtx = codec.rtx_payload_type.map(|payload_type| RtxStream {
                ssrc: rng.random(),
                payload_type,
                next_sequence: rng.random(),
            });
            outbound.push(OutboundTrack {
                track_index: index,
                ssrc,
                payload_type: codec.payload_type,
                is_video: source.kind == TrackKind::Video,
                rewriter: Rewriter::new(source.codec.clock_rate, rng.random(), rng.random()),
                packets_sent: 0,
                octets_sent: 0,
                rtx,
                abs_capture_ext: abs_capture.as_ref().map(|(id, _)| *id),
            });
            media.push(AnswerMedia::accept(
                &m.mid,
                AcceptedMedia {
                    codec: codec.clone(),
                    with_rtx: rtx.is_some(),
                    direction,
                    extmaps: abs_capture.into_iter().collect(),
                    send: Some(SendSsrc {
                        ssrc,
                        rtx_ssrc: rtx.map(|r| r.ssrc),
                        cname: format!("r58-{name}"),
                        stream_id: name.to_owned(),
                        track_id: format!("{name}-{}", m.mid),
                    }),
                },
            ));
        }
        // A track the viewer asked for in a codec it cannot take: say exactly why rather than
        // play the rest without it.
        let missed = (0..stream.tracks.len()).any(|i| !used[i]);
        if !incompatible.is_empty() && (missed || outbound.is_empty()) {
            return Err(EngineError::IncompatibleCodec {
                stream: name.to_owned(),
                reason: incompatible.join("; "),
            });
        }
        if outbound.is_empty() {
            return Err(EngineError::NoUsableMedia(format!(
                "nothing of '{name}' to play: {}",
                refusals.join("; ")
            )));
        }
        let mut session = self.new_session(now, Role::Play, name, &offer)?;
        session.outbound = outbound;
        session.bundle = bundled(&offer, &media);
        let sdp = self.answer_for(&session, &offer, media)?;
        let answer = Answer {
            session: session.id,
            sdp,
            etag: session.etag.clone(),
        };
        info!(stream = name, session = session.id, "play session created");
        self.register(session, &offer.candidates);
        Ok(answer)
    }

    /// The role, stream and ETag of a session, if it exists.
    pub fn session_summary(&self, id: SessionId) -> Option<(Role, &str, &str)> {
        self.sessions
            .get(&id)
            .map(|s| (s.role, s.stream.as_str(), s.etag.as_str()))
    }

    /// DELETE: ends the session. False when there is no such session.
    pub fn delete(&mut self, now: Instant, id: SessionId) -> bool {
        if self.sessions.contains_key(&id) {
            self.close_session(now, id, CloseReason::Deleted);
            true
        } else {
            false
        }
    }

    /// Ends every session (the server is stopping): each connected peer gets an RTCP BYE and
    /// a DTLS close_notify in the transmit queue, so it learns at once instead of by timeout.
    /// Returns how many sessions there were.
    pub fn close_all(&mut self, now: Instant) -> usize {
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in &ids {
            self.close_session(now, *id, CloseReason::ServerStopping);
        }
        ids.len()
    }

    /// PATCH with a trickle fragment under the current ICE credentials. An ICE-lite server learns
    /// the client's addresses from its checks; the candidates matter only to our TURN relay,
    /// which must permit them before the client's checks can come through it.
    pub fn trickle(&mut self, id: SessionId, fragment: &str) -> Result<(), EngineError> {
        let frag = sdp::parse_sdpfrag(fragment)?;
        let session = self.sessions.get(&id).ok_or(EngineError::SessionNotFound)?;
        if frag
            .ice_ufrag
            .as_deref()
            .is_some_and(|u| u != session.ice.remote_ufrag)
        {
            return Err(EngineError::IceCredentialMismatch);
        }
        let candidates: Vec<SocketAddr> = frag
            .candidates
            .iter()
            .filter_map(|(_, value)| sdp::parse_candidate_addr(value).map(|(addr, _)| addr))
            .collect();
        self.note_remote_candidates(id, &candidates);
        Ok(())
    }

    /// Whether a PATCH fragment carries new ICE credentials (an ICE restart) rather than more
    /// candidates for the current ones.
    pub fn is_ice_restart(&self, id: SessionId, fragment: &str) -> bool {
        let Ok(frag) = sdp::parse_sdpfrag(fragment) else {
            return false;
        };
        self.sessions.get(&id).is_some_and(|s| {
            frag.ice_ufrag
                .as_deref()
                .is_some_and(|u| u != s.ice.remote_ufrag)
        })
    }

    /// PATCH ICE restart: the fragment carries the client's new ufrag/pwd; we answer with new
    /// credentials of our own and a new ETag. Returns (answer fragment, etag).
    pub fn ice_restart(
        &mut self,
        id: SessionId,
        fragment: &str,
    ) -> Result<(String, String), EngineError> {
        let frag = sdp::parse_sdpfrag(fragment)?;
        let candidates: Vec<SocketAddr> = frag
            .candidates
            .iter()
            .filter_map(|(_, value)| sdp::parse_candidate_addr(value).map(|(addr, _)| addr))
            .collect();
        let remote_ufrag = frag.ice_ufrag.ok_or(EngineError::IceCredentialMismatch)?;
        let session = self
            .sessions
            .get_mut(&id)
            .ok_or(EngineError::SessionNotFound)?;
        self.by_ufrag.remove(&session.ice.local.ufrag);
        session.ice.restart(remote_ufrag);
        session.etag = new_etag();
        self.by_ufrag.insert(session.ice.local.ufrag.clone(), id);
        let bundle: Vec<FragmentMedia<'_>> = session
            .bundle
            .iter()
            .map(|m| FragmentMedia {
                mid: &m.mid,
                kind: m.kind,
                payload_type: m.payload_type,
            })
            .collect();
        let body = sdp::build_restart_fragment(
            &session.ice.local.ufrag,
            &session.ice.local.pwd,
            &bundle,
            &self.config.candidates,
            self.relay.candidate,
        )?;
        let etag = session.etag.clone();
        self.note_remote_candidates(id, &candidates);
        Ok((body, etag))
    }

    /// Open sessions counted by (role, state), for metrics.
    pub fn session_counts(&self) -> Vec<((Role, SessionState), usize)> {
        let mut counts: Vec<((Role, SessionState), usize)> = Vec::new();
        for s in self.sessions.values() {
            let key = (s.role, s.state);
            match counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => counts.push((key, 1)),
            }
        }
        counts
    }

    /// Every stream with its tracks and audience.
    pub fn streams(&self) -> Vec<StreamInfo> {
        let mut list: Vec<StreamInfo> = self
            .hub
            .iter()
            .map(|s| StreamInfo {
                name: s.name().to_owned(),
                source: s.source,
                online: s.publisher().is_some(),
                viewers: s.viewers.len(),
                readers: {
                    let mut readers = std::collections::BTreeMap::from([("whep", s.viewers.len())]);
                    for r in &s.readers {
                        *readers.entry(r.kind).or_default() += 1;
                    }
                    readers
                },
                keyframe_requests: s.keyframe_requests,
                unavailable: unavailable_outputs(
                    s.tracks.iter().map(|t| (t.kind, t.codec.name.as_str())),
                )
                .into_iter()
                .map(|(output, why)| (output.as_str(), why))
                .collect(),
                tracks: s
                    .tracks
                    .iter()
                    .map(|t| TrackInfo {
                        kind: t.kind,
                        codec: t.codec.name.clone(),
                        clock_rate: t.codec.clock_rate,
                        stats: t.stats.clone(),
                    })
                    .collect(),
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
}

/// The bundled m-lines of an answer (accepted and inactive), for the session to remember: an
/// ICE restart answers for each of them.
fn bundled(offer: &Offer, media: &[AnswerMedia]) -> Vec<BundledMedia> {
    offer
        .media
        .iter()
        .zip(media)
        .filter(|(_, a)| a.is_bundled())
        .filter_map(|(m, a)| {
            let payload_type = match a.accepted() {
                Some(acc) => acc.codec.payload_type,
                None => m.codecs.first()?.payload_type,
            };
            Some(BundledMedia {
                mid: a.mid.clone(),
                kind: m.kind,
                payload_type,
            })
        })
        .collect()
}

/// The track kind, codec and answer direction a publisher's m-line is ingested with, or why it
/// cannot be.
fn publish_choice(
    m: &sdp::OfferedMedia,
) -> Result<(TrackKind, &sdp::OfferedCodec, sdp::Direction), String> {
    if let Some(why) = m.why_unusable() {
        return Err(why);
    }
    let kind = match m.kind {
        MediaKind::Audio => TrackKind::Audio,
        _ => TrackKind::Video,
    };
    let direction = sdp::answer_direction_for(m.direction, false).ok_or_else(|| {
        format!(
            "m-line {:?} is {}; a WHIP offer must send (sendonly or sendrecv)",
            m.mid, m.direction
        )
    })?;
    let codec = sdp::choose_publish_codec(m).ok_or_else(|| sdp::publish_refusal(m))?;
    Ok((kind, codec, direction))
}
