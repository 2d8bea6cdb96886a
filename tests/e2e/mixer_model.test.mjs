// The audio mixer panel's pure decisions (web/static/js/mixer-model.js), in node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_STRIP, audible, changeBody, gainLabel, levelLabel, meterFraction, stripRows,
} from '../../web/static/js/mixer-model.js';

test('meters map -60..0 dBFS to their height, silence and overs clamped', () => {
  assert.equal(meterFraction(-120), 0);
  assert.equal(meterFraction(-60), 0);
  assert.equal(meterFraction(-30), 0.5);
  assert.equal(meterFraction(0), 1);
  assert.equal(meterFraction(3), 1);
  assert.equal(meterFraction(undefined), 0);
  assert.equal(levelLabel({ hold_db: -12.34 }), '-12.3');
  assert.equal(levelLabel({ hold_db: -120 }), '–');
  assert.equal(levelLabel(null), '–');
});

test('gains read as a console shows them', () => {
  assert.equal(gainLabel(0), '0 dB');
  assert.equal(gainLabel(-6), '−6.0 dB');
  assert.equal(gainLabel(3.5), '+3.5 dB');
});

test('strips follow the inputs, then the set strips of sources that are not live', () => {
  const audio = { master_gain_db: 0, strips: { b: { gain_db: -6, mute: false, mode: 'on' }, z: { gain_db: 0, mute: true, mode: 'afv' } } };
  assert.deepEqual(stripRows(audio, ['a', 'b']), [
    { name: 'a', live: true, strip: DEFAULT_STRIP },
    { name: 'b', live: true, strip: audio.strips.b },
    { name: 'z', live: false, strip: audio.strips.z },
  ]);
  assert.deepEqual(stripRows(null, ['a']), [], 'no mixer, no strips');
});

test('a control change is the body the server takes', () => {
  assert.deepEqual(changeBody('a', 'gain', '-12.5'), { source: 'a', gain_db: -12.5 });
  assert.deepEqual(changeBody('a', 'mute', true), { source: 'a', mute: true });
  assert.deepEqual(changeBody('a', 'mode', 'off'), { source: 'a', mode: 'off' });
  assert.deepEqual(changeBody(null, 'gain', '-3'), { master_gain_db: -3 });
  assert.throws(() => changeBody('a', 'pan', 0));
});

test('the on-air tally of a strip: mode, mute, program and pin', () => {
  const s = (mode, mute = false) => ({ gain_db: 0, mute, mode });
  assert.equal(audible(s('on'), 'a', 'b', null), true);
  assert.equal(audible(s('afv'), 'a', 'a', null), true);
  assert.equal(audible(s('afv'), 'a', 'b', null), false);
  assert.equal(audible(s('off'), 'a', 'a', null), false);
  assert.equal(audible(s('on', true), 'a', 'a', null), false);
  assert.equal(audible(s('on'), 'a', 'a', 'b'), false, 'a pin hears only the pinned input');
  assert.equal(audible(s('off'), 'b', 'a', 'b'), true);
});
