// The switcher page's pure decisions, run in node: input order and what each input shows,
// keys, tallies, which previews play, the monitors, what Cut does, the audio picker, alerts,
// error sentences, cut history lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NOTHING_ON_PROGRAM, NO_PREVIEW, OFFSCREEN_STOP_MS, PAUSED_HIDDEN, PAUSED_OFFSCREEN, audioChoices, clockTime,
  cutLatencyText, cutPlan, describeCut, describeError, historyLines, inputView, keyAction, keyIndex, latencySummary,
  newFallbacks, orderInputs, planPreviews, pollFailure, previewLimit, previewMonitorState, programView,
  refusalReason, stateAlerts, swapAfterCut, tallyOf,
} from '../../web/static/js/switcher-model.js';

// History times are this browser's clock; fix the zone so the expected strings hold anywhere.
process.env.TZ = 'UTC';

const stream = (name, source) => ({ name, source, online: true });

test('inputs: cameras first, then guests, by name; never the program stream nor a return feed', () => {
  const streams = new Map([
    ['zed', stream('zed', 'whip')], ['cam1', stream('cam1', 'camera')], ['program', stream('program', 'program')],
    ['anna', stream('anna', 'whip')], ['cam0', stream('cam0', 'camera')], ['pgm2', stream('pgm2', 'whip')],
    ['anna.return', stream('anna.return', 'return')],
  ]);
  assert.deepEqual(orderInputs(streams).map((s) => s.name), ['cam0', 'cam1', 'anna', 'pgm2', 'zed']);
  // A renamed program stream is left out by name too.
  assert.deepEqual(orderInputs([...streams.values()], 'pgm2').map((s) => s.name), ['cam0', 'cam1', 'anna', 'zed']);
  assert.deepEqual(orderInputs([]), []);
});

test('keys 1-9 pick inputs 0-8, nothing else does', () => {
  assert.equal(keyIndex('1'), 0);
  assert.equal(keyIndex('9'), 8);
  for (const k of ['0', ' ', 'Enter', 'a', '10', '', 'F1']) assert.equal(keyIndex(k), -1, k);
});

test('tallies: red program, green preview, pending, and where program audio comes from', () => {
  const s = { program: 'cam0', preview: 'guest1', pending: 'cam1', audio_pin: null };
  assert.deepEqual(tallyOf('cam0', s), { program: true, preview: false, pending: false, audio: true });
  assert.deepEqual(tallyOf('guest1', s), { program: false, preview: true, pending: false, audio: false });
  assert.deepEqual(tallyOf('cam1', s), { program: false, preview: false, pending: true, audio: false });
  assert.equal(tallyOf('cam0', { ...s, audio_pin: 'guest1' }).audio, false);
  assert.equal(tallyOf('guest1', { ...s, audio_pin: 'guest1' }).audio, true);
  assert.deepEqual(tallyOf('cam0', null), { program: false, preview: false, pending: false, audio: false });
});

test('Cut takes preview to program only when that makes sense, and says why not', () => {
  const sources = [{ name: 'cam0' }, { name: 'cam1' }, { name: 'vp8guest', incompatible: 'its Video is VP8' }];
  assert.deepEqual(cutPlan({ program: 'cam0', preview: 'cam1', sources }), { ok: true, source: 'cam1' });
  assert.match(cutPlan(null).why, /Waiting/);
  assert.match(cutPlan({ program: 'cam0', preview: null, sources }).why, /Nothing in preview/);
  assert.match(cutPlan({ program: 'cam0', preview: 'cam0', sources }).why, /already on program/);
  // A cut to cam1 is under way: cutting to cam1 again is pointless, back to cam0 is not.
  assert.match(cutPlan({ program: 'cam0', pending: 'cam1', preview: 'cam1', sources }).why, /already on program/);
  assert.deepEqual(cutPlan({ program: 'cam1', pending: 'cam1', preview: 'cam0', sources }), { ok: true, source: 'cam0' });
  assert.match(cutPlan({ program: 'cam0', preview: 'gone', sources }).why, /"gone" is not live/);
  assert.equal(cutPlan({ program: 'cam0', preview: 'vp8guest', sources }).why,
    '"vp8guest" cannot go to program: its Video is VP8.');
});

test('refusals read as sentences with the status and the server\'s reason', () => {
  assert.equal(describeError('program', 'guest1', 404, 'guest1 is not live'),
    'Cannot cut to "guest1": it is not live any more (404). guest1 is not live');
  assert.equal(describeError('program', 'vp8', 422, 'vp8 cannot go to program: its Video is VP8'),
    'Cannot cut to "vp8": vp8 cannot go to program: its Video is VP8 (422).');
  assert.match(describeError('preview', 'cam0', 401, ''), /^Cannot preview "cam0": this switcher needs an operator token \(401\)/);
  // A server that lets only local clients switch says so; the page passes it on.
  assert.equal(describeError('program', 'cam1', 403, 'this endpoint is only open to local clients (set an [admin] token for others)'),
    'Cannot cut to "cam1": refused (403). this endpoint is only open to local clients (set an [admin] token for others)');
  assert.equal(describeError('audio', null, 0, 'Failed to fetch'),
    'Cannot let audio follow video: the server did not answer (Failed to fetch).');
  assert.equal(describeError('audio', 'cam1', 500, 'boom'), 'Cannot pin audio to "cam1": 500 boom');
});

test('history lines: latency, pending, forced, fallback', () => {
  const base = { from: 'cam0', to: 'cam1', requested_at_ms: 1000, forced: false, reason: 'operator' };
  assert.deepEqual(describeCut({ ...base, latency_ms: 31.46 }),
    { key: '1000-cam1', text: 'cam0 → cam1', latency: '31 ms', kind: 'cut' });
  assert.equal(describeCut({ ...base, latency_ms: 4.26 }).latency, '4.3 ms');
  assert.deepEqual(describeCut({ ...base, from: null, latency_ms: null }),
    { key: '1000-cam1', text: '— → cam1', latency: 'waiting for keyframe…', kind: 'pending' });
  assert.equal(describeCut({ ...base, latency_ms: 3000, forced: true }).kind, 'forced');
  assert.match(describeCut({ ...base, latency_ms: 3000, forced: true }).latency, /forced/);
  assert.equal(describeCut({ ...base, latency_ms: 20, reason: 'fallback' }).kind, 'fallback');
});

test('only new fallback cuts are reported, and latencies are summed up', () => {
  const a = { from: 'cam0', to: 'guest1', requested_at_ms: 1, latency_ms: 30, forced: false, reason: 'operator' };
  const b = { from: 'guest1', to: 'cam0', requested_at_ms: 2, latency_ms: 50, forced: false, reason: 'fallback' };
  const c = { from: 'cam0', to: 'cam1', requested_at_ms: 3, latency_ms: 3000, forced: true, reason: 'operator' };
  assert.deepEqual(newFallbacks([a], [a, b]), [b]);
  assert.deepEqual(newFallbacks([a, b], [a, b, c]), []);
  assert.deepEqual(latencySummary([a, b, c]), { median: 40, last: 50, count: 2 });
  assert.deepEqual(latencySummary([a]), { median: 30, last: 30, count: 1 });
  assert.deepEqual(latencySummary([]), { median: null, last: null, count: 0 });
});

test('?previews= sets the preview limit within 0-32, else the mode decides', () => {
  assert.equal(previewLimit(null, 'LOCAL'), 12);
  assert.equal(previewLimit(null, 'REMOTE'), 6);
  assert.equal(previewLimit('0', 'LOCAL'), 0);
  assert.equal(previewLimit('32', 'REMOTE'), 32);
  for (const bad of ['', '33', '-1', '1.5', 'lots']) assert.equal(previewLimit(bad, 'LOCAL'), 12, bad);
});

test('what an input shows: key, tally, kind, bitrate, audio, problem, Take', () => {
  const s = {
    program: 'cam0', preview: 'guest1', pending: null, audio_pin: null,
    sources: [{ name: 'cam0' }, { name: 'guest1' }, { name: 'vp8', incompatible: 'its Video is VP8' }],
  };
  const cam0 = inputView({ name: 'cam0', source: 'camera', online: true, bitrate_bps: 2_400_000, audio: { codec: 'opus' } }, s, 0);
  assert.deepEqual(cam0, {
    key: '1', tally: { program: true, preview: false, pending: false, audio: true }, tallyText: 'PGM', kind: 'camera',
    bitrate: '2.4 Mbit/s', audioText: 'audio opus · on program', audioOnAir: true, problem: '',
    takeDisabled: true, takeTitle: 'On program', ariaLabel: 'cam0, on program',
  });
  const guest = inputView({ name: 'guest1', source: 'whip', online: true, bitrate_bps: 850_000, audio: null }, s, 1);
  assert.equal(guest.tallyText, 'PVW');
  assert.equal(guest.kind, 'guest');
  assert.equal(guest.bitrate, '850 kbit/s');
  assert.equal(guest.audioText, 'no audio');
  assert.equal(guest.audioOnAir, false);
  assert.equal(guest.takeDisabled, false);
  assert.equal(guest.takeTitle, 'Cut straight to this source');
  assert.equal(guest.ariaLabel, 'guest1, in preview');
  const vp8 = inputView({ name: 'vp8', source: 'whip', online: true, bitrate_bps: 1 }, s, 9);
  assert.equal(vp8.key, '', 'only the first nine have keys');
  assert.equal(vp8.problem, 'Cannot go to program: its Video is VP8');
  assert.equal(vp8.takeDisabled, true);
  assert.equal(vp8.takeTitle, vp8.problem);
  const gone = inputView({ name: 'cam1', source: 'camera', online: false, bitrate_bps: 5 }, { ...s, pending: 'cam1' }, 2);
  assert.deepEqual([gone.problem, gone.bitrate, gone.tallyText, gone.takeDisabled], ['Offline', '', 'CUT…', true]);
});

test('previews: the preview source first in LOCAL mode, then in order, at most the limit, out of view stops', () => {
  const now = 100_000;
  const inp = (name, more = {}) => ({
    name, online: true, observed: true, visible: true, lastVisible: now, running: false, state: 'idle', ...more,
  });
  const ctx = { local: true, preview: null, max: 2, pageHidden: false, now };
  const actions = (plan) => plan.map((p) => `${p.name}:${p.action}${p.state ? `:${p.state}` : ''}`);
  assert.deepEqual(actions(planPreviews([inp('a'), inp('b'), inp('c')], ctx)), ['a:start', 'b:start', 'c:stop:paused']);
  assert.equal(planPreviews([inp('a'), inp('b'), inp('c')], ctx)[2].message, 'Preview off: at most 2 live previews at once');
  // Already paused for the limit and not running: left as it is.
  assert.deepEqual(actions(planPreviews([inp('a'), inp('b'), inp('c', { state: 'paused' })], ctx)), ['a:start', 'b:start', 'c:none']);
  // LOCAL: the preview source plays first, even out of view and not yet observed.
  assert.deepEqual(actions(planPreviews([inp('a'), inp('b'), inp('c', { visible: false, observed: false, lastVisible: 0 })],
    { ...ctx, preview: 'c' })), ['c:start', 'a:start', 'b:stop:paused']);
  // REMOTE: the preview monitor has its own player, so the preview input has no priority.
  assert.deepEqual(actions(planPreviews([inp('a'), inp('b'), inp('c', { visible: false, lastVisible: 0 })],
    { ...ctx, local: false, preview: 'c' })), ['a:start', 'b:start', 'c:show:paused']);
  // Out of view: kept OFFSCREEN_STOP_MS, then stopped; a never-started one only says so.
  const away = (ms, more) => inp('a', { visible: false, lastVisible: now - ms, ...more });
  assert.deepEqual(actions(planPreviews([away(OFFSCREEN_STOP_MS - 1, { running: true })], ctx)), ['a:start']);
  const stopped = planPreviews([away(OFFSCREEN_STOP_MS, { running: true })], ctx)[0];
  assert.deepEqual(stopped, { name: 'a', action: 'stop', state: 'paused', message: PAUSED_OFFSCREEN });
  assert.deepEqual(planPreviews([away(OFFSCREEN_STOP_MS)], ctx)[0], { name: 'a', action: 'show', state: 'paused', message: PAUSED_OFFSCREEN });
  // Not observed yet: nothing happens until the page knows.
  assert.deepEqual(actions(planPreviews([inp('a', { observed: false })], ctx)), ['a:none']);
  // A hidden page stops everything, the preview source too; offline inputs say offline.
  const hidden = planPreviews([inp('a', { running: true }), inp('b', { running: true, online: false })],
    { ...ctx, preview: 'a', pageHidden: true });
  assert.deepEqual(hidden, [
    { name: 'a', action: 'stop', state: 'paused', message: PAUSED_HIDDEN },
    { name: 'b', action: 'stop', state: 'offline', message: 'Offline' },
  ]);
  assert.deepEqual(actions(planPreviews([inp('a')], { ...ctx, max: 0 })), ['a:stop:paused']);
});

test('monitors: what the preview monitor shows in LOCAL mode, when the program monitor plays', () => {
  assert.deepEqual(previewMonitorState(null, null, false), { state: 'idle', message: NO_PREVIEW });
  assert.deepEqual(previewMonitorState('gone', null, false), { state: 'offline', message: '"gone" is not live.' });
  assert.deepEqual(previewMonitorState('cam0', { state: 'stalled', message: 'No new frames for 4 s' }, true),
    { state: 'stalled', message: 'No new frames for 4 s' });
  assert.deepEqual(previewMonitorState('cam0', { state: 'connecting', message: '' }, false),
    { state: 'connecting', message: 'Waiting for the source…' });
  assert.deepEqual(previewMonitorState('cam0', { state: 'live', message: '' }, false), { state: 'connecting', message: 'Starting…' });
  assert.deepEqual(previewMonitorState('cam0', { state: 'live', message: '' }, true), { state: 'live', message: '' });

  const streams = new Map([['program', { name: 'program', online: true }]]);
  assert.deepEqual(programView(null, new Map(), false),
    { stream: 'program', play: false, source: '', pending: '', idleMessage: NOTHING_ON_PROGRAM });
  // The program stream is live (another page cut before this one got the state): play it.
  assert.equal(programView(null, streams, false).play, true);
  assert.deepEqual(programView({ program_stream: 'pgm', program: 'cam0', pending: 'cam1' }, new Map(), false),
    { stream: 'pgm', play: true, source: 'cam0', pending: '→ cam1 (waiting for its keyframe)', idleMessage: NOTHING_ON_PROGRAM });
  const hidden = programView({ program: 'cam0' }, streams, true);
  assert.deepEqual([hidden.play, hidden.idleMessage], [false, PAUSED_HIDDEN]);
});

test('the audio picker lists carriable sources, those without audio disabled, and a pin to a gone source', () => {
  const s = {
    audio_pin: null,
    sources: [{ name: 'cam0', audio: null }, { name: 'guest1', audio: { codec: 'opus' } }, { name: 'vp8', incompatible: 'VP8', audio: {} }],
  };
  assert.deepEqual(audioChoices(s), {
    value: '',
    options: [
      { value: '', text: 'Follows video', disabled: false },
      { value: 'cam0', text: 'cam0 (no audio)', disabled: true },
      { value: 'guest1', text: 'guest1', disabled: false },
    ],
  });
  assert.equal(audioChoices({ ...s, audio_pin: 'guest1' }).value, 'guest1');
  const gone = audioChoices({ ...s, audio_pin: 'left' });
  assert.equal(gone.value, 'left');
  assert.deepEqual(gone.options.at(-1), { value: 'left', text: 'left (gone)', disabled: true });
  assert.deepEqual(audioChoices(null).options, [{ value: '', text: 'Follows video', disabled: false }]);
});

test('alerts when the program source goes: fallback, or paused with nothing to fall back to', () => {
  const a = { from: 'cam0', to: 'guest1', requested_at_ms: 1, latency_ms: 30, forced: false, reason: 'operator' };
  const fb = { from: 'guest1', to: 'cam0', requested_at_ms: 2, latency_ms: 40, forced: false, reason: 'fallback' };
  const before = { program: 'guest1', pending: null, history: [a] };
  assert.deepEqual(stateAlerts(before, { program: 'cam0', pending: null, history: [a, fb] }), [
    { message: 'Program source "guest1" went away: the program fell back to "cam0".', kind: 'warn', ms: 15000 },
  ]);
  assert.deepEqual(stateAlerts(before, { program: null, pending: null, history: [a] }), [
    { message: 'Program source "guest1" went away and no fallback source is live: the program is paused.', kind: 'warn', ms: 0 },
  ]);
  assert.deepEqual(stateAlerts(before, { program: null, pending: 'cam1', history: [a] }), [], 'a cut is under way');
  assert.deepEqual(stateAlerts(null, { program: null, history: [a, fb] }), [], 'the first state says nothing');
  assert.deepEqual(stateAlerts(before, { program: 'guest1', history: [a] }), []);
});

test('keys: 1-9 select, Space/Enter cut once, Escape clears; not with modifiers or in a form field', () => {
  assert.deepEqual(keyAction({ key: '3' }), { type: 'select', index: 2, preventDefault: true });
  assert.deepEqual(keyAction({ key: ' ' }), { type: 'cut', preventDefault: true });
  assert.deepEqual(keyAction({ key: 'Enter' }), { type: 'cut', preventDefault: true });
  // Held down: no second cut, but the focused button must still not click.
  assert.deepEqual(keyAction({ key: ' ', repeat: true }), { type: 'none', preventDefault: true });
  assert.deepEqual(keyAction({ key: 'Escape' }), { type: 'clear', preventDefault: false });
  for (const e of [{ key: '1', ctrlKey: true }, { key: 'Enter', metaKey: true }, { key: ' ', altKey: true },
    { key: '2', typing: true }, { key: 'Enter', typing: true }, { key: 'a' }, { key: '0' }]) {
    assert.deepEqual(keyAction(e), { type: 'none', preventDefault: false }, JSON.stringify(e));
  }
});

test('after a cut the old program goes to preview when asked and still live', () => {
  const done = { sources: [{ name: 'cam0' }, { name: 'cam1' }] };
  assert.equal(swapAfterCut('cam0', 'cam1', done, true), 'cam0');
  assert.equal(swapAfterCut('cam0', 'cam1', done, false), null);
  assert.equal(swapAfterCut(null, 'cam1', done, true), null, 'nothing was on program');
  assert.equal(swapAfterCut('cam1', 'cam1', done, true), null);
  assert.equal(swapAfterCut('gone', 'cam1', done, true), null);
});

test('history lines newest first with times, the latency line, error bodies and poll failures', () => {
  const cuts = Array.from({ length: 14 }, (_, i) => ({
    from: `s${i}`, to: `s${i + 1}`, requested_at_ms: Date.UTC(2026, 0, 1, 12, 1, i), latency_ms: 10 + i, forced: false,
    reason: i === 13 ? 'fallback' : 'operator',
  }));
  const lines = historyLines(cuts);
  assert.equal(lines.length, 12);
  assert.deepEqual(lines[0], {
    key: `${cuts[13].requested_at_ms}-s14`, text: 's13 → s14', latency: '23 ms', kind: 'fallback', time: '12:01:13', tag: 'fallback',
  });
  assert.equal(lines[11].text, 's2 → s3');
  assert.equal(lines[1].tag, '');
  assert.equal(clockTime(Date.UTC(2026, 0, 1, 9, 5, 7)), '09:05:07');
  assert.deepEqual(historyLines(null), []);
  assert.equal(cutLatencyText(cuts.slice(0, 3)), 'Last cut 12 ms · median 11 ms (3)');
  assert.equal(cutLatencyText([]), '');
  assert.equal(refusalReason('  stream "x" is not live\nmore detail\n'), 'stream "x" is not live');
  assert.equal(refusalReason('x'.repeat(400)).length, 300);
  assert.equal(refusalReason(undefined), '');
  assert.deepEqual(pollFailure(401), { message: 'This switcher needs an operator token (401): open the page with ?token=… .', ms: 0 });
  assert.deepEqual(pollFailure(500), { message: 'The switcher state is not available: 500', ms: 5000 });
  assert.deepEqual(pollFailure(0, 'Failed to fetch'), { message: 'The server did not answer: Failed to fetch', ms: 5000 });
});
