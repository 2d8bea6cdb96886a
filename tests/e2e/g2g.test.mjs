// Glass-to-glass: one Chromium publishes a canvas that shows the wall clock (WHIP), another
// Chromium plays it through r58 (WHEP) and reads the clock back from every displayed frame; the
// same with both browsers relayed through coturn, and, as the baseline, the two browsers calling
// each other directly without r58. The test asserts that the clock is read from most frames, in
// drawing order, and that no frame is shown before it was drawn; the latencies are printed (and
// written to G2G_JSON when set), never asserted: they belong to docs/benchmarks.md
// (scripts/bench-all.sh runs this with more frames).
//
//   G2G_FRAMES (default 150)        frames read per case, after the first second
//   G2G_JSON=path                   write the summaries there
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { startServer } from './lib/server.mjs';
import { launchChromium, openClockPage } from './lib/browser.mjs';
import { startTurn, TURNSERVER } from './lib/turn.mjs';

const FPS = 30;
const frames = Number(process.env.G2G_FRAMES ?? 150);
const results = { fps: FPS, loadavgStart: loadavg() };

let server;
let publisherBrowser;
let viewerBrowser;

function loadavg() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

before(async () => {
  server = await startServer();
  // Two browser processes, as two machines would have: neither's renderer waits on the other's.
  // Loopback candidates, not hidden behind mDNS names: the direct (no r58) baseline needs them.
  const flags = ['--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns'];
  publisherBrowser = await launchChromium(flags);
  viewerBrowser = await launchChromium(flags);
});

after(async () => {
  await publisherBrowser?.close();
  await viewerBrowser?.close();
  await server?.stop();
  if (process.env.G2G_JSON) {
    results.loadavgEnd = loadavg();
    writeFileSync(process.env.G2G_JSON, JSON.stringify(results, null, 2));
  }
});


function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  const r = (v) => Math.round(v * 10) / 10;
  return { p50: r(percentile(s, 50)), p95: r(percentile(s, 95)), max: r(s[s.length - 1]), n: s.length };
}

// Both ends of a measurement; `connect(publisher, viewer)` sets the call up.
async function measure(name, count, connect) {
  const loadBefore = loadavg();
  const publisher = await openClockPage(publisherBrowser, server.base, `pub ${name}`);
  const viewer = await openClockPage(viewerBrowser, server.base, `view ${name}`);
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

// Through r58: WHIP in, WHEP out.
function viaR58(name, config) {
  return async (publisher, viewer) => {
    await publisher.evaluate(([base, n, fps, c]) => window.g2g.publish(base, n, fps, c),
      [server.base, name, FPS, config]);
    await viewer.evaluate(([base, n, c]) => window.g2g.play(base, n, c), [server.base, name, config]);
  };
}

// Only loopback candidates, so the direct call stays on 127.0.0.1 like the others.
const loopbackOnly = (sdp) => sdp.split('\r\n')
  .filter((l) => !l.startsWith('a=candidate:') || / 127\.0\.0\.1 /.test(l)).join('\r\n');

test('the wall clock drawn by one Chromium is read back from the frames another plays via r58',
  { timeout: 120000 }, async () => {
    results.direct = await measure('g2g', frames, viaR58('g2g', undefined));
    assert.equal(results.direct.candidates.viewer, 'host');
  });

test('the same Chromium to Chromium without r58 (the baseline r58 adds to)',
  { timeout: 120000 }, async () => {
    results.p2p = await measure('p2p', frames, async (publisher, viewer) => {
      const offer = await publisher.evaluate((fps) => window.g2g.p2pOffer(fps), FPS);
      const answer = await viewer.evaluate((sdp) => window.g2g.p2pAnswer(sdp), loopbackOnly(offer));
      await publisher.evaluate((sdp) => window.g2g.p2pAccept(sdp), loopbackOnly(answer));
    });
  });

const turnSkip = !existsSync(TURNSERVER) && process.env.CI !== 'true'
  ? 'turnserver not found (apt-get install coturn, or run .ci/run)' : false;

test('the same through a TURN relay on both sides', { timeout: 120000, skip: turnSkip }, async () => {
  const turn = await startTurn();
  try {
    const config = { iceServers: turn.iceServers('g2g'), iceTransportPolicy: 'relay' };
    results.turn = await measure('g2gturn', frames, viaR58('g2gturn', config));
    assert.equal(results.turn.candidates.viewer, 'relay');
    assert.equal(results.turn.candidates.publisher, 'relay');
  } finally {
    await turn.stop();
  }
});
