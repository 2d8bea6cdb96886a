// The one player's pure decisions, run in node: the stall rule, state labels and messages,
// failure wording, WHEP connection handling, which transport a REMOTE player uses, readouts;
// and the stream-list helpers the pages share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CODEC_FALLBACK, FIRST_FRAME_MS, PLAYER_STATES, RELAY_CONNECT_MS, RETRY_MS, STALL_MS, chooseTransport, connectingMessage,
  connectionAction, describePlayError, frameProgress, framesDecoded, hlsLatencyLabel, offersRelay, playParam,
  resolutionLabel, retryMessage, stallTransition, stateLabel, stateMessage, watchFrames, whepLatencyLabel,
} from '../../web/static/js/player-model.js';
import { orderStreams, sourceKind, viewersLabel } from '../../web/static/js/streams.js';

/** Runs the stall rule over `looks` ([ms, progress, judged?]) and returns each look's verdict. */
function run(looks, threshold = STALL_MS) {
  let watch = null;
  return looks.map(([now, progress, judged = true]) => {
    const r = watchFrames(watch, progress, now, judged, threshold);
    watch = r.watch;
    return r.stalled;
  });
}

test('the stall rule: stalled once the frames stood still for the threshold, live again when they move', () => {
  assert.equal(STALL_MS, 4000);
  // Frames move every second, then stop at 10 after t=2000.
  assert.deepEqual(run([[0, 0], [1000, 5], [2000, 10], [3000, 10], [5000, 10], [5999, 10], [6000, 10], [7000, 10], [8000, 12]]),
    [false, false, false, false, false, false, true, true, false]);
  // A fresh start (null record) is never stalled, whatever the progress.
  assert.deepEqual(watchFrames(null, 7, 123), { watch: { progress: 7, movedAt: 123 }, stalled: false });
  // Another threshold is honoured (the rule is one function, the threshold one constant).
  assert.deepEqual(run([[0, 1], [1000, 1], [1500, 1]], 1500), [false, false, true]);
});

test('a picture that cannot be judged (out of view, hidden page, no size) is not stalled and starts the clock again', () => {
  assert.deepEqual(run([[0, 3], [3000, 3], [4000, 3, false], [7000, 3], [8000, 3]]), [false, false, false, false, true]);
  // Out of view at the moment the threshold passes: no verdict until it has been watched again long enough.
  assert.deepEqual(run([[0, 3], [4500, 3, false], [5000, 3]]), [false, false, false]);
});

test('WHEP pictures are judged by decoded frames: their currentTime runs on without any', () => {
  assert.equal(frameProgress({ totalVideoFrames: 285 }, 14.9), 285);
  assert.equal(frameProgress(null, 14.9), 14.9);
  assert.equal(frameProgress({}, 2.5), 2.5);
  // The same position with the clock running: a frozen WHEP picture is found.
  let watch = null;
  let stalled = false;
  for (const [now, time] of [[0, 9.9], [2000, 11.9], [4000, 13.9], [6000, 15.9]]) {
    ({ watch, stalled } = watchFrames(watch, frameProgress({ totalVideoFrames: 285 }, time), now));
  }
  assert.equal(stalled, true);
});

test('presented frames count too: Firefox leaves a MediaStream out of getVideoPlaybackQuality', () => {
  // Firefox: decoded frames stay at 0 while frames are presented.
  assert.equal(frameProgress({ totalVideoFrames: 0 }, 3.1, 90), 90);
  assert.notEqual(frameProgress({ totalVideoFrames: 0 }, 3.2, 93), frameProgress({ totalVideoFrames: 0 }, 3.1, 90));
  // Chromium: both move; a picture where neither moves is frozen.
  assert.equal(frameProgress({ totalVideoFrames: 285 }, 9.9, 280), 565);
  let watch = null;
  let stalled = false;
  for (const now of [0, 2000, 4000, 6000]) {
    ({ watch, stalled } = watchFrames(watch, frameProgress({ totalVideoFrames: 0 }, now / 1000, 90), now));
  }
  assert.equal(stalled, true);
  // Without the callback, as before.
  assert.equal(frameProgress({ totalVideoFrames: 285 }, 14.9, null), 285);
});

test('only live and stalled players change state by the stall rule', () => {
  assert.equal(stallTransition('live', true), 'stalled');
  assert.equal(stallTransition('stalled', false), 'live');
  assert.equal(stallTransition('live', false), null);
  assert.equal(stallTransition('stalled', true), null);
  for (const s of ['idle', 'connecting', 'error', 'offline', 'paused']) {
    assert.equal(stallTransition(s, true), null, s);
    assert.equal(stallTransition(s, false), null, s);
  }
});

test('every state has a label, and every state but live a message', () => {
  assert.deepEqual(PLAYER_STATES.map(stateLabel), ['', 'Connecting', 'Live', 'Stalled', 'Error', 'Offline', 'Paused']);
  assert.equal(stateMessage('live', 'ignored'), '');
  assert.equal(stateMessage('stalled', 'No new frames for 4 s'), 'No new frames for 4 s');
  assert.equal(stateMessage('offline', ''), 'Offline');
  for (const s of PLAYER_STATES.filter((x) => x !== 'live' && x !== 'idle')) assert.notEqual(stateMessage(s, ''), '', s);
});

test('failures read as reasons, and a retry says when', () => {
  assert.equal(describePlayError(404, 'no such stream', 'HTTP 404'), 'stream not live (404)');
  assert.match(describePlayError(401, '', 'HTTP 401'), /viewing token \(401\).*\?token=/);
  assert.equal(describePlayError(503, 'too many sessions', 'HTTP 503'), 'server busy (503): too many sessions');
  assert.equal(describePlayError(null, null, 'Failed to fetch'), 'cannot play: Failed to fetch');
  assert.equal(retryMessage('HLS playlist not found (HTTP 404)'), 'HLS playlist not found (HTTP 404) — retrying in 3 s');
});

test('a WHEP connection that failed is recovered at once, a disconnected one after a wait', () => {
  assert.equal(connectionAction('failed'), 'restart');
  assert.equal(connectionAction('closed'), 'restart');
  assert.equal(connectionAction('disconnected'), 'wait');
  for (const s of ['new', 'connecting', 'connected']) assert.equal(connectionAction(s), 'none', s);
});

test('readouts: resolution, LL-HLS and WHEP latency', () => {
  assert.equal(resolutionLabel(1280, 720), '1280×720');
  assert.equal(resolutionLabel(0, 0), '');
  assert.equal(hlsLatencyLabel(1.26), '1.3 s behind live');
  assert.equal(hlsLatencyLabel(null), null);
  assert.equal(hlsLatencyLabel(Number.NaN), null);
  const stats = [
    { type: 'inbound-rtp', kind: 'audio', jitterBufferDelay: 9, jitterBufferEmittedCount: 10 },
    { type: 'inbound-rtp', kind: 'video', jitterBufferDelay: 3, jitterBufferEmittedCount: 100 },
    { type: 'candidate-pair', nominated: false, currentRoundTripTime: 1 },
    { type: 'candidate-pair', nominated: true, currentRoundTripTime: 0.01 },
  ];
  // 30 ms in the jitter buffer plus half of a 10 ms round trip.
  assert.equal(whepLatencyLabel(stats), '≈35 ms');
  assert.equal(whepLatencyLabel(stats.slice(0, 1)), null, 'no video frames yet');
  assert.equal(whepLatencyLabel(stats.slice(1, 2)), '≈30 ms', 'no round trip known yet');
});

test('stream lists: cameras first, then the rest, by name; kinds and viewer counts in words', () => {
  const list = [
    { name: 'zed', source: 'whip' }, { name: 'cam1', source: 'camera' }, { name: 'anna', source: 'whip' },
    { name: 'cam0', source: 'camera' }, { name: 'program', source: 'program' },
  ];
  assert.deepEqual(orderStreams(list).map((s) => s.name), ['cam0', 'cam1', 'anna', 'program', 'zed']);
  assert.deepEqual(orderStreams(new Map(list.map((s) => [s.name, s]))).map((s) => s.name),
    ['cam0', 'cam1', 'anna', 'program', 'zed']);
  assert.equal(sourceKind({ source: 'camera' }), 'camera');
  assert.equal(sourceKind({ source: 'whip' }), 'guest');
  assert.equal(viewersLabel(0), '');
  assert.equal(viewersLabel(1), '1 WebRTC viewer');
  assert.equal(viewersLabel(3), '3 WebRTC viewers');
});

/** An answer as r58 writes it (sfu/src/webrtc/sdp/answer.rs): host candidates, then the relay's. */
function answer(relay) {
  return [
    'v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0', 'a=ice-lite', 'a=group:BUNDLE 0 1',
    'm=video 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=sendonly',
    'a=candidate:3316004354 1 udp 2130706431 127.0.0.2 40123 typ host',
    ...(relay ? ['a=candidate:1736390411 1 udp 16777215 127.0.0.1 50012 typ relay raddr 127.0.0.1 rport 40123'] : []),
    'a=end-of-candidates',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=mid:1', 'a=sendonly', '',
  ].join('\r\n');
}

test('an answer offers a relay when it has a relay candidate, wherever it sits', () => {
  assert.equal(offersRelay(answer(true)), true);
  assert.equal(offersRelay(answer(false)), false);
  assert.equal(offersRelay(answer(true).replaceAll('\r\n', '\n')), true, 'bare newlines');
  // IPv6 and another foundation; the last line of the body, without a line break.
  assert.equal(offersRelay('v=0\r\na=candidate:1 1 UDP 16777215 2001:db8::7 49152 typ relay raddr :: rport 0'), true);
  // Not a relay: other types, the word elsewhere, an empty or missing answer.
  assert.equal(offersRelay('a=candidate:1 1 udp 1694498815 198.51.100.7 49152 typ srflx raddr 10.0.0.2 rport 8189\r\n'), false);
  assert.equal(offersRelay('a=candidate:1 1 udp 2130706431 10.0.0.2 8189 typ host generation 0 relay\r\n'), false);
  assert.equal(offersRelay('a=x-note: typ relay\r\n'), false);
  assert.equal(offersRelay(''), false);
  assert.equal(offersRelay(null), false);
});

test('?play=hls forces LL-HLS; nothing else does', () => {
  assert.equal(playParam('?play=hls'), 'hls');
  assert.equal(playParam('?mode=remote&play=HLS'), 'hls');
  assert.equal(playParam(''), null);
  assert.equal(playParam('?play=webrtc'), null);
  assert.equal(playParam('?hls=hlsjs'), null);
});

test('LOCAL plays over WHEP whatever the page says; REMOTE tries WebRTC via TURN first', () => {
  assert.deepEqual(chooseTransport({ mode: 'LOCAL' }), { transport: 'whep', trial: false, why: 'LOCAL mode' });
  assert.equal(chooseTransport({ mode: 'LOCAL', play: 'hls', answer: answer(false), timedOut: true }).transport, 'whep');
  assert.deepEqual(chooseTransport({ mode: 'REMOTE' }), { transport: 'whep', trial: true, why: 'trying WebRTC via TURN' });
  assert.deepEqual(chooseTransport({ mode: 'REMOTE', answer: answer(true) }),
    { transport: 'whep', trial: true, why: 'the server offers a TURN relay' });
});

test('REMOTE falls back to LL-HLS: no relay in the answer, a refusal /hls may not share, a failure, the timeout', () => {
  const hls = (ctx) => {
    const c = chooseTransport({ mode: 'REMOTE', ...ctx });
    assert.equal(c.transport, 'hls', JSON.stringify(ctx));
    assert.equal(c.trial, false);
    return c.why;
  };
  assert.equal(hls({ play: 'hls' }), '?play=hls');
  assert.equal(hls({ play: 'hls', answer: answer(true) }), '?play=hls', '?play=hls wins over a relay');
  assert.equal(hls({ answer: answer(false) }), 'the server offers no TURN relay (no relay candidate in its answer)');
  assert.equal(hls({ answer: '' }), 'the server offers no TURN relay (no relay candidate in its answer)');
  assert.equal(hls({ refused: 401 }), 'the server refused WHEP (401)');
  assert.equal(hls({ refused: 403 }), 'the server refused WHEP (403)');
  assert.equal(hls({ refused: 503 }), 'the server refused WHEP (503)');
  assert.equal(hls({ failed: true }), 'the WebRTC via TURN connection failed');
  assert.equal(hls({ timedOut: true }), `no picture over WebRTC via TURN within ${RELAY_CONNECT_MS / 1000} s`);
  // A player that fell back stays on LL-HLS, with the reason it fell back for.
  assert.equal(hls({ fellBack: 'no picture over WebRTC via TURN within 6 s' }), 'no picture over WebRTC via TURN within 6 s');
  assert.equal(hls({ fellBack: 'x', answer: answer(true) }), 'x');
  // "Not live" is no reason to change transport: /hls would say the same; it is retried as usual.
  assert.equal(chooseTransport({ mode: 'REMOTE', refused: 404 }).transport, 'whep');
  assert.equal(chooseTransport({ mode: 'REMOTE', refused: 500 }).transport, 'whep');
});

test('a 422 (no codec of this browser carries the stream) plays LL-HLS in LOCAL mode too, and stays there', () => {
  for (const mode of ['LOCAL', 'REMOTE']) {
    assert.deepEqual(chooseTransport({ mode, refused: 422 }), { transport: 'hls', trial: false, why: CODEC_FALLBACK });
    assert.deepEqual(chooseTransport({ mode, fellBack: CODEC_FALLBACK }), { transport: 'hls', trial: false, why: CODEC_FALLBACK });
  }
  // Other refusals in LOCAL mode change nothing: WHEP is retried.
  assert.equal(chooseTransport({ mode: 'LOCAL', refused: 503 }).transport, 'whep');
  assert.equal(chooseTransport({ mode: 'LOCAL', refused: 404 }).transport, 'whep');
});

test('the relay timeout: a few seconds, a failed try plus an LL-HLS start within the first-frame timeout', () => {
  assert.equal(RELAY_CONNECT_MS, 6000);
  assert.ok(RELAY_CONNECT_MS > STALL_MS);
  // LL-HLS starts in about 2 s; the fallback must not reach the first-frame timeout's retry.
  assert.ok(RELAY_CONNECT_MS + 2000 + RETRY_MS <= FIRST_FRAME_MS);
});

test('the connecting message names the transport', () => {
  assert.equal(connectingMessage('LOCAL'), 'Connecting (WebRTC)…');
  assert.equal(connectingMessage('LOCAL', 'whep'), 'Connecting (WebRTC)…');
  assert.equal(connectingMessage('REMOTE'), 'Loading (LL-HLS)…');
  assert.equal(connectingMessage('REMOTE', 'hls'), 'Loading (LL-HLS)…');
  assert.equal(connectingMessage('REMOTE', 'whep'), 'Connecting (WebRTC via TURN)…');
});

test('a trial passes on decoded video frames, wherever the picture is shown', () => {
  assert.equal(framesDecoded([]), 0);
  assert.equal(framesDecoded([
    { type: 'inbound-rtp', kind: 'audio', framesDecoded: 9 },
    { type: 'inbound-rtp', kind: 'video', framesDecoded: 0 },
    { type: 'transport' },
  ]), 0);
  assert.equal(framesDecoded([{ type: 'inbound-rtp', kind: 'video', framesDecoded: 3 }]), 3);
  assert.equal(framesDecoded([{ type: 'inbound-rtp', kind: 'video' }]), 0, 'before the first frame Chromium may leave it out');
});
