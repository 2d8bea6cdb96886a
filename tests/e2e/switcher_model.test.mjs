// The switcher page's pure decisions, run in node: input order, keys, tallies, what Cut does,
// error sentences, cut history lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cutPlan, describeCut, describeError, keyIndex, latencySummary, newFallbacks, orderInputs, tallyOf,
} from '../../web/static/js/switcher-model.js';

const stream = (name, source) => ({ name, source, online: true });

test('inputs: cameras first, then guests, by name; never the program stream', () => {
  const streams = new Map([
    ['zed', stream('zed', 'whip')], ['cam1', stream('cam1', 'camera')], ['program', stream('program', 'program')],
    ['anna', stream('anna', 'whip')], ['cam0', stream('cam0', 'camera')], ['pgm2', stream('pgm2', 'whip')],
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
