// The one browser player's decisions, as pure functions (tested in node): its timings, when a
// picture counts as stalled, what each state is called, how a failure is put into words, and
// how its readouts are written. player.js does the playing; the pages only show what it says.

/** No new frame for this long while live: the player says `stalled` (one rule, every page). */
export const STALL_MS = 4000;
/** A failed attempt is tried again after this long. */
export const RETRY_MS = 3000;
/** A player that has shown no frame by then starts over (and says so). */
export const FIRST_FRAME_MS = 12000;
/** A WHEP connection `disconnected` this long is treated as broken (a short one often heals). */
export const LOST_MS = 3000;
/** An ICE restart that has not reconnected by then gives way to a new session. */
export const ICE_RESTART_MS = 5000;
/** Pause before the new session that follows a refused or failed ICE restart. */
export const NEW_SESSION_MS = 500;
/** An LL-HLS player this far behind live (normally ~1 s) jumps to live: monitors show now. */
export const JUMP_BEHIND_S = 4;
/**
 * REMOTE mode: a WHEP attempt whose answer offers a TURN relay has this long, from the answer,
 * to show a picture; then the player plays LL-HLS instead (and stays on it until the page is
 * reloaded). A relayed start takes 1-2 s even on a slow mobile link (the browser's own
 * allocation, ICE checks and the DTLS handshake through the relay; r58 sends a joining viewer
 * its cached keyframe at once); 6 s leaves room for a lost DTLS flight (retransmitted after
 * 1 s) or two, and a failed attempt plus the LL-HLS start (~2 s) still shows a picture well
 * inside FIRST_FRAME_MS. docs/web.md says the same.
 */
export const RELAY_CONNECT_MS = 6000;
/** The short name of WebRTC through the server's TURN relay, in labels and the log. */
export const VIA_TURN = 'WebRTC via TURN';

/**
 * Every state a player reports. `live` is the only one without a message of its own; the
 * others always carry one, so nothing on a page spins without saying why.
 */
export const PLAYER_STATES = ['idle', 'connecting', 'live', 'stalled', 'error', 'offline', 'paused'];

const LABELS = {
  idle: '', connecting: 'Connecting', live: 'Live', stalled: 'Stalled', error: 'Error', offline: 'Offline', paused: 'Paused',
};

/** The short badge for a state ("Live", "Stalled", ...); '' for idle. */
export function stateLabel(state) {
  return LABELS[state] ?? state;
}

/** The line to show over the picture: nothing while live, else the message or the label. */
export function stateMessage(state, message) {
  return state === 'live' ? '' : (message || stateLabel(state));
}

/**
 * How far the picture has come: the frames the browser has presented (`presented`, counted with
 * `requestVideoFrameCallback`, or null where it does not exist) plus the frames the video element
 * has decoded, or its playing position where the browser counts neither. A WHEP video's
 * `currentTime` keeps running with no frames coming (a MediaStream has no timeline to stop on),
 * so it is a frame count that tells a frozen picture; and Firefox does not count a MediaStream's
 * frames in `getVideoPlaybackQuality()` at all, so the presented frames are what moves there.
 * `quality` is `video.getVideoPlaybackQuality()` or null.
 */
export function frameProgress(quality, currentTime, presented = null) {
  const decoded = quality && Number.isFinite(quality.totalVideoFrames) ? quality.totalVideoFrames : null;
  if (presented != null) return presented + (decoded ?? 0);
  return decoded ?? currentTime;
}

/**
 * The stall rule. One look at the picture's progress (`frameProgress`) at time `now` (ms):
 * `watch` is what the previous look left (`{ progress, movedAt }`, or null to start afresh).
 * `judged` is false when no frames would say nothing: the video is out of view or the page
 * hidden (Chromium pauses muted videos there) or it has no picture size yet. Such a look, and
 * any progress, starts the clock again. Returns `{ watch, stalled }`: stalled once the
 * progress has stood still for `thresholdMs` or more.
 */
export function watchFrames(watch, progress, now, judged = true, thresholdMs = STALL_MS) {
  if (!judged || !watch || progress !== watch.progress) return { watch: { progress, movedAt: now }, stalled: false };
  return { watch, stalled: now - watch.movedAt >= thresholdMs };
}

/**
 * What a live or stalled player becomes after a look: `stalled` after the threshold, `live`
 * again once frames move; null when nothing changes (other states are not the rule's business).
 */
export function stallTransition(state, stalled) {
  if (state === 'live' && stalled) return 'stalled';
  if (state === 'stalled' && !stalled) return 'live';
  return null;
}

/** Why a start failed, for the operator: `status` is the HTTP status (or null), `message` the error's. */
export function describePlayError(status, reason, message) {
  switch (status) {
    case 404: return 'stream not live (404)';
    case 401: return 'the server wants a viewing token (401): open the page with ?token=…';
    case 503: return `server busy (503): ${reason ?? ''}`.trim();
    default: return `cannot play: ${message}`;
  }
}

/** The message of a failed attempt that is tried again. */
export function retryMessage(why, retryMs = RETRY_MS) {
  return `${why} — retrying in ${retryMs / 1000} s`;
}

/** What to do about a WHEP connection state: `restart` now, `wait` then restart, or `none`. */
export function connectionAction(connectionState) {
  if (connectionState === 'failed' || connectionState === 'closed') return 'restart';
  // A short 'disconnected' often heals by itself.
  if (connectionState === 'disconnected') return 'wait';
  return 'none';
}

/**
 * The message while connecting: what the player uses. `transport` is what chooseTransport
 * picked (`whep` or `hls`); without it, what the mode uses by default.
 */
export function connectingMessage(mode, transport = mode === 'LOCAL' ? 'whep' : 'hls') {
  if (transport === 'hls') return 'Loading (LL-HLS)…';
  return mode === 'LOCAL' ? 'Connecting (WebRTC)…' : `Connecting (${VIA_TURN})…`;
}

/** `?play=hls` in the page's query: 'hls', else null (REMOTE pages then try WebRTC via TURN first). */
export function playParam(search) {
  const asked = new URLSearchParams(search).get('play');
  return asked?.toLowerCase() === 'hls' ? 'hls' : null;
}

/**
 * Whether an SDP answer offers a relay candidate (`a=candidate:... typ relay ...`): the server
 * holds a TURN allocation of its own (`[turn] server_relay`), so a browser outside its NAT can
 * reach it through the relay.
 */
export function offersRelay(sdp) {
  return /^a=candidate:\S+ \d+ \S+ \d+ \S+ \d+ typ relay(\s|$)/im.test(sdp ?? '');
}

/** Why a player in either mode plays LL-HLS after WHEP answered 422. */
export const CODEC_FALLBACK = 'this browser cannot decode the stream over WebRTC (422)';

/** HTTP refusals of a WHEP offer after which a REMOTE player plays LL-HLS instead. */
const FALLBACK_STATUSES = new Set([401, 403, 503]);

/**
 * Which transport a player uses, and why (for the log): `{ transport: 'whep' | 'hls', trial, why }`.
 * A WHEP offer refused with 422 (no codec of the browser carries the stream) plays LL-HLS in
 * either mode. Otherwise LOCAL pages play over WHEP. REMOTE pages play LL-HLS when the page says `?play=hls`
 * (`play`) or this player fell back before (`fellBack`: the reason, kept until a reload); else
 * they try WHEP through the server's TURN relay (`trial`: until it shows a picture) and fall
 * back to LL-HLS when
 * - the SDP answer (`answer`) has no relay candidate: the server holds no relay, and its host
 *   candidates are most likely unreachable from outside its NAT;
 * - the offer was refused with 401, 403 or 503 (`refused`: the HTTP status): /whep is closed
 *   to this viewer or full, while /hls may not be (404, "not live", is retried as usual);
 * - no picture came within RELAY_CONNECT_MS of the answer, or the connection failed before
 *   (`timedOut`, `failed`).
 */
export function chooseTransport({
  mode, play = null, fellBack = null, answer = null, refused = null, timedOut = false, failed = false,
}) {
  const hls = (why) => ({ transport: 'hls', trial: false, why });
  // In any mode: the server found no codec of this browser's offer that carries the stream
  // (Firefox without OpenH264 and an H.264 camera); LL-HLS plays H.264 through MSE instead.
  if (fellBack === CODEC_FALLBACK || refused === 422) return hls(CODEC_FALLBACK);
  if (mode === 'LOCAL') return { transport: 'whep', trial: false, why: 'LOCAL mode' };
  if (play === 'hls') return hls('?play=hls');
  if (fellBack) return hls(fellBack);
  if (refused != null && FALLBACK_STATUSES.has(refused)) return hls(`the server refused WHEP (${refused})`);
  if (answer != null && !offersRelay(answer)) return hls('the server offers no TURN relay (no relay candidate in its answer)');
  if (failed) return hls(`the ${VIA_TURN} connection failed`);
  if (timedOut) return hls(`no picture over ${VIA_TURN} within ${RELAY_CONNECT_MS / 1000} s`);
  if (answer != null) return { transport: 'whep', trial: true, why: 'the server offers a TURN relay' };
  return { transport: 'whep', trial: true, why: `trying ${VIA_TURN}` };
}

/**
 * Video frames a WHEP receiver has decoded, from its stats (an iterable of RTCStats-shaped
 * objects): a REMOTE attempt through the relay has passed once this is above 0.
 */
export function framesDecoded(stats) {
  let n = 0;
  for (const s of stats) if (s.type === 'inbound-rtp' && s.kind === 'video') n += s.framesDecoded ?? 0;
  return n;
}

/** "1280×720", or '' without a picture. */
export function resolutionLabel(width, height) {
  return width > 0 && height > 0 ? `${width}×${height}` : '';
}

/** LL-HLS latency as a label: seconds behind the live edge, or null when unknown. */
export function hlsLatencyLabel(seconds) {
  return seconds == null || !Number.isFinite(seconds) ? null : `${seconds.toFixed(1)} s behind live`;
}

/**
 * WHEP latency as a label, from the receiver's stats: the jitter buffer's average delay plus
 * half the round trip (what the network and the player add after the server; capture and
 * encoding are not visible from here). `stats` is an iterable of RTCStats-shaped objects.
 */
export function whepLatencyLabel(stats) {
  let jitterMs = null;
  let rttMs = null;
  for (const s of stats) {
    if (s.type === 'inbound-rtp' && s.kind === 'video' && s.jitterBufferEmittedCount) {
      jitterMs = (s.jitterBufferDelay / s.jitterBufferEmittedCount) * 1000;
    }
    if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime != null) {
      rttMs = s.currentRoundTripTime * 1000;
    }
  }
  return jitterMs == null ? null : `≈${Math.round(jitterMs + (rttMs ?? 0) / 2)} ms`;
}
