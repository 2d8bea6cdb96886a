// Glass-to-glass measurement shared by g2g.test.mjs and g2g_relay.test.mjs: one Chromium
// publishes the wall-clock canvas (lib/g2g.js), another plays it and reads the clock back from
// every displayed frame.
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { openClockPage } from './browser.mjs';

export function loadavg() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** p50, p95, max (ms, one decimal) and the count of `values`. */
export function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  const r = (v) => Math.round(v * 10) / 10;
  return { p50: r(percentile(s, 50)), p95: r(percentile(s, 95)), max: r(s[s.length - 1]), n: s.length };
}

/**
 * Both ends of a measurement: a clock page in `publisherBrowser` and one in `viewerBrowser`, on
 * the origin `base`; `connect(publisher, viewer)` sets the call up. Reads `count` frames after
 * the first second, asserts the clock comes back from them sensibly, prints and returns the
 * summary. `onSamples(samples, { publisher, viewer })` (awaited, while both pages are still
 * open) gets the raw frames (drawn, shown, received, ... in ms).
 */
export async function measure({ publisherBrowser, viewerBrowser, base, name, count, connect, onSamples }) {
  const loadBefore = loadavg();
  const publisher = await openClockPage(publisherBrowser, base, `pub ${name}`);
  const viewer = await openClockPage(viewerBrowser, base, `view ${name}`);
  try {
    await connect(publisher, viewer);
    await publisher.waitForFunction(() => window.publisher.pc.connectionState === 'connected',
      null, { timeout: 15000 });
    const started = Date.now();
    // The first second is left out: the bandwidth estimate and the jitter buffer are settling.
    const { samples, failed, localCandidate } = await viewer.evaluate(
      ([k, settle]) => window.g2g.collect(k, settle), [count, 1000]);
    const elapsedS = (Date.now() - started) / 1000;
    const publisherCandidate = await publisher.evaluate(() => window.g2g.candidateType(window.publisher.pc));

    // Behaviour: the clock comes back from most displayed frames, frames come in drawing order,
    // and nothing is shown before it was drawn (a misread clock would break one of these).
    assert.equal(samples.length, count);
    assert.ok(failed <= count * 0.1, `${failed} frames unreadable for ${count} read`);
    // (Two frames can carry the same millisecond: a late timer tick runs right before the next.)
    for (let i = 1; i < samples.length; i++) {
      assert.ok(samples[i].drawn >= samples[i - 1].drawn,
        `frame ${i} drawn at ${samples[i].drawn}, after one drawn at ${samples[i - 1].drawn}`);
    }
    const distinct = new Set(samples.map((s) => s.drawn)).size;
    assert.ok(distinct >= count * 0.9, `only ${distinct} distinct clocks in ${count} frames`);
    for (const s of samples) {
      assert.ok(s.shown >= s.drawn, `frame drawn at ${s.drawn} shown earlier, at ${s.shown}`);
    }
    await onSamples?.(samples, { publisher, viewer });

    const out = {
      frames: samples.length,
      unreadable: failed,
      seconds: Math.round(elapsedS * 10) / 10,
      size: `${samples.at(-1).width}x${samples.at(-1).height}`,
      candidates: { publisher: publisherCandidate, viewer: localCandidate },
      drawnToShown: summary(samples.map((s) => s.shown - s.drawn)),
      drawnToExpectedDisplay: summary(samples.map((s) => s.expectedDisplay - s.drawn)),
      drawnToReceived: samples[0].received === null ? null
        : summary(samples.map((s) => s.received - s.drawn)),
      receivedToShown: samples[0].received === null ? null
        : summary(samples.map((s) => s.shown - s.received)),
      loadavg: `${loadBefore} -> ${loadavg()}`,
    };
    console.log(`glass-to-glass ${name}:`, JSON.stringify(out));
    return out;
  } finally {
    await publisher.evaluate(() => window.publisher?.location
      && fetch(window.publisher.location, { method: 'DELETE' })).catch(() => {});
    await publisher.close();
    await viewer.close();
  }
}

/** `connect` for `measure`: WHIP into r58 at `base`, WHEP out, each peer with `config`. */
export function viaR58(base, name, fps, config) {
  return async (publisher, viewer) => {
    await publisher.evaluate(([b, n, f, c]) => window.g2g.publish(b, n, f, c), [base, name, fps, config]);
    await viewer.evaluate(([b, n, c]) => window.g2g.play(b, n, c), [base, name, config]);
  };
}
