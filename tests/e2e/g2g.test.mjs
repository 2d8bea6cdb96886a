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
import { existsSync, writeFileSync } from 'node:fs';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import { startTurn, TURNSERVER } from './lib/turn.mjs';
import { loadavg, measure as measureG2g, viaR58 as viaR58At } from './lib/g2g_measure.mjs';

const FPS = 30;
const frames = Number(process.env.G2G_FRAMES ?? 150);
const results = { fps: FPS, loadavgStart: loadavg() };

let server;
let publisherBrowser;
let viewerBrowser;

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

// One measurement between the two browsers through this test's r58.
const measure = (name, count, connect) => measureG2g({
  publisherBrowser, viewerBrowser, base: server.base, name, count, connect,
});

// Through r58: WHIP in, WHEP out.
const viaR58 = (name, config) => viaR58At(server.base, name, FPS, config);

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
