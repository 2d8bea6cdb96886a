// Glass-to-glass through r58's own TURN relay against direct, in the same run: the clock test
// of g2g.test.mjs (one Chromium publishes a canvas showing the wall clock, another plays it and
// reads the clock back from every displayed frame) on two r58s side by side:
//
// - direct: r58 as on a LAN, its host candidate (127.0.0.1) reachable; both browsers connect
//   to it directly (LOCAL, host candidates);
// - relay: r58 behind "NAT", its host candidate unreachable (it advertises 127.0.0.2, where
//   nothing listens) and `[turn] server_relay = "always"` on the test's coturn; both browsers
//   relay-only (`iceTransportPolicy: "relay"`, REMOTE), so each frame goes publisher -> its
//   allocation -> r58's allocation -> r58 -> r58's allocation -> the viewer's allocation ->
//   viewer.
//
// The two alternate G2G_ROUNDS times, so a load change on the machine hits both. Latencies are
// printed, never asserted (a benchmark: docs/benchmarks.md, "Glass-to-glass through r58's own
// relay"); what is asserted is that each path is the one it claims to be.
//
//   G2G_FRAMES (default 150)   frames read per case and round, after the first second
//   G2G_ROUNDS (default 2)     direct/relay pairs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, metricSum } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import { startTurn } from './lib/turn.mjs';
import { waitUntil } from './lib/pages.mjs';
import { loadavg, measure, summary, viaR58 } from './lib/g2g_measure.mjs';

const FPS = 30;
const frames = Number(process.env.G2G_FRAMES ?? 150);
const rounds = Number(process.env.G2G_ROUNDS ?? 2);

let turn;
let direct;
let relayed;
let publisherBrowser;
let viewerBrowser;

before(async () => {
  turn = await startTurn();
  direct = await startServer();
  const dir = mkdtempSync(join(tmpdir(), 'r58-e2e-g2g-relay-'));
  const config = join(dir, 'r58.toml');
  writeFileSync(config, `[turn]\nprovider = "coturn"\nurls = ["turn:127.0.0.1:${turn.port}?transport=udp"]\n`
    + `secret = "${turn.secret}"\nserver_relay = "always"\n`);
  relayed = await startServer(['--config', config, '--public-ip', '127.0.0.2']);
  // As in g2g.test.mjs: two browser processes, loopback host candidates not hidden by mDNS.
  const flags = ['--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'];
  publisherBrowser = await launchChromium(flags);
  viewerBrowser = await launchChromium(flags);
});

after(async () => {
  await publisherBrowser?.close();
  await viewerBrowser?.close();
  await direct?.stop();
  await relayed?.stop();
  await turn?.stop();
});

/** The sum of a metric's samples on `server` whose labels match `labels`. */
const metric = (server, name, labels) => metricSum(server.base, name, labels);

/** Local and remote candidate types of the selected pair of the page's publisher or viewer. */
function pairTypes(page, role) {
  return page.evaluate(async (r) => {
    const { pc } = r === 'publisher' ? window.publisher : window.viewer;
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    return `${local.candidateType} -> ${remote.candidateType} ${remote.address}:${remote.port}`;
  }, role);
}

/** One measurement on `server`; checks both peers' pairs against `expect` and keeps the frames. */
async function run(server, name, config, expect, pooled) {
  let pairs;
  const out = await measure({
    publisherBrowser, viewerBrowser, base: server.base, name, count: frames,
    connect: viaR58(server.base, name, FPS, config),
    async onSamples(samples, { publisher, viewer }) {
      pooled.push(...samples);
      pairs = { publisher: await pairTypes(publisher, 'publisher'), viewer: await pairTypes(viewer, 'viewer') };
    },
  });
  console.log(`${name} pairs: ${JSON.stringify(pairs)}`);
  for (const role of ['publisher', 'viewer']) assert.match(pairs[role], expect, `${name}: the ${role}'s pair`);
  return out;
}

const line = (label, s) => `${label}: drawn->shown p50 ${s.shown.p50} ms, p95 ${s.shown.p95} ms, max ${s.shown.max} ms; `
  + `drawn->received p50 ${s.received.p50} ms, p95 ${s.received.p95} ms (${s.shown.n} frames)`;

test('glass-to-glass through r58\'s own relay (relay-only browsers, host unreachable) and direct (host candidates), same run',
  { timeout: 120000 + rounds * 2 * 60000 }, async () => {
    await waitUntil('r58 to hold its relay', () => metric(relayed, 'r58_turn_relay_allocated').then((n) => n === 1), 10000);
    const loadStart = loadavg();
    const relayConfig = { iceServers: turn.iceServers('g2g'), iceTransportPolicy: 'relay' };
    const pooled = { direct: [], relay: [] };
    for (let r = 1; r <= rounds; r++) {
      // The browsers' host candidates straight to r58's host candidate.
      await run(direct, `g2g-direct-${r}`, undefined, /^host -> host 127\.0\.0\.1:\d+$/, pooled.direct);
      // The browsers' relay candidates to r58's relay candidate (its host one does not answer).
      const directOut = await metric(relayed, 'r58_datagrams_out_total');
      await run(relayed, `g2g-relay-${r}`, relayConfig, /^relay -> relay 127\.0\.0\.1:\d+$/, pooled.relay);
      assert.equal(await metric(relayed, 'r58_datagrams_out_total') - directOut, 0,
        'the relayed r58 sent nothing straight from its socket');
    }
    assert.ok(await metric(relayed, 'r58_turn_relay_packets_total', /direction="out"/) > rounds * frames,
      "the relayed r58's media went out through its relay");
    const stats = (samples) => ({
      shown: summary(samples.map((s) => s.shown - s.drawn)),
      received: summary(samples.map((s) => s.received - s.drawn)),
    });
    const d = stats(pooled.direct);
    const t = stats(pooled.relay);
    console.log(`G2G RELAY (${rounds} rounds x ${frames} frames per path, ${FPS} fps 640x360 H.264, load average ${loadStart} -> ${loadavg()})`);
    console.log(`G2G RELAY ${line('direct (host candidates)', d)}`);
    console.log(`G2G RELAY ${line("through r58's relay (relay-only, host unreachable)", t)}`);
    console.log(`G2G RELAY relay - direct: p50 ${Math.round((t.shown.p50 - d.shown.p50) * 10) / 10} ms, p95 ${Math.round((t.shown.p95 - d.shown.p95) * 10) / 10} ms`);
  });
