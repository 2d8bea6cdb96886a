// A Chromium guest with iceTransportPolicy 'relay' publishes through a real coturn with the
// credentials r58 hands out at /api/turn-credentials; a Chromium WHEP viewer decodes the frames.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';

const peersScript = resolve(import.meta.dirname, 'lib/peers.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function haveTurnserver() {
  try {
    execFileSync('turnserver', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// A port free for both TCP and UDP on 127.0.0.1 (coturn listens on both).
async function freePort() {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise((ok, fail) => {
      const s = createServer();
      s.once('error', fail);
      s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
    });
    const udpFree = await new Promise((ok) => {
      const u = createSocket('udp4');
      u.once('error', () => ok(false));
      u.bind(port, '127.0.0.1', () => u.close(() => ok(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free port');
}

const skip = !haveTurnserver() && process.env.CI !== 'true'
  ? 'turnserver not found (apt-get install coturn, or run .ci/run)' : false;
let coturn;
let coturnLog = '';
let server;
let browser;
let turnPort;
let relayMin;

before(async () => {
  if (skip) return;
  const dir = mkdtempSync(join(tmpdir(), 'r58-turn-e2e-'));
  const secret = randomBytes(16).toString('hex');
  turnPort = await freePort();
  relayMin = 50000 + 50 * Math.floor(Math.random() * 180);
  coturn = spawn('turnserver', [
    '-n', '--listening-ip=127.0.0.1', `--listening-port=${turnPort}`,
    '--relay-ip=127.0.0.1', `--min-port=${relayMin}`, `--max-port=${relayMin + 39}`,
    '--use-auth-secret', `--static-auth-secret=${secret}`, '--realm=r58.test',
    '--no-tls', '--no-dtls', '--no-cli',
    '--allow-loopback-peers', // only loopback exists in the tests; never in production
    `--userdb=${join(dir, 'turndb')}`, `--pidfile=${join(dir, 'turnserver.pid')}`,
    '--log-file=stdout', '--simple-log', '--verbose',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  coturn.stdout.on('data', (d) => { coturnLog += d; });
  coturn.stderr.on('data', (d) => { coturnLog += d; });
  const deadline = Date.now() + 15000;
  while (!coturnLog.includes('Total General servers')) {
    if (coturn.exitCode !== null) throw new Error(`turnserver exited:\n${coturnLog}`);
    if (Date.now() > deadline) throw new Error(`turnserver did not start:\n${coturnLog}`);
    await sleep(100);
  }
  writeFileSync(join(dir, 'turn.secret'), `${secret}\n`);
  writeFileSync(join(dir, 'r58.toml'), [
    '[turn]',
    'provider = "coturn"',
    `urls = ["turn:127.0.0.1:${turnPort}?transport=udp"]`,
    'secret_file = "turn.secret"',
    'username = "chromium-guest"',
    '',
  ].join('\n'));
  server = await startServer(['--config', join(dir, 'r58.toml')]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (coturn && coturn.exitCode === null) {
    coturn.kill('SIGTERM');
    await new Promise((r) => (coturn.exitCode !== null ? r() : coturn.once('exit', r)));
  }
});

test('Chromium guest with iceTransportPolicy relay publishes through coturn', { skip }, async () => {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[page] ${m.text()}`));
  await page.goto(`${server.base}/healthz`);
  await page.addScriptTag({ path: peersScript });

  // As the guest page does: same-origin fetch, then relay only.
  const iceServers = await page.evaluate(async () => {
    const r = await fetch('/api/turn-credentials');
    if (!r.ok) throw new Error(`turn-credentials: ${r.status} ${await r.text()}`);
    return (await r.json()).iceServers;
  });
  assert.equal(iceServers.length, 1);
  assert.match(iceServers[0].username, /^\d+:chromium-guest$/);

  await page.evaluate(([base, servers]) => window.r58.publish(base, 'relayguest', 'video/H264',
    { iceServers: servers, iceTransportPolicy: 'relay' }), [server.base, iceServers]);
  const offerTypes = await page.evaluate(() => [...window.publisher.pc.localDescription.sdp
    .matchAll(/a=candidate:.* typ (\w+)/g)].map((m) => m[1]));
  assert.ok(offerTypes.length > 0 && offerTypes.every((t) => t === 'relay'),
    `offer candidates: ${offerTypes}`);
  await page.waitForFunction(() => window.publisher.pc.connectionState === 'connected',
    null, { timeout: 10000 });

  // The selected pair, as getStats reports it.
  const pair = await page.evaluate(async () => {
    const stats = await window.publisher.pc.getStats();
    for (const s of stats.values()) {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const p = stats.get(s.selectedCandidatePairId);
        const local = stats.get(p.localCandidateId);
        const remote = stats.get(p.remoteCandidateId);
        return { local: local.candidateType, relayPort: local.port, remote: remote.candidateType,
          bytesSent: p.bytesSent };
      }
    }
    return null;
  });
  console.log('publisher selected pair:', JSON.stringify(pair));
  assert.equal(pair?.local, 'relay');
  assert.equal(pair.remote, 'host');
  assert.ok(pair.relayPort >= relayMin && pair.relayPort <= relayMin + 39,
    `relay port ${pair.relayPort} outside coturn's range`);

  // A viewer decodes what went through the relay.
  await page.evaluate((base) => window.r58.play(base, 'relayguest', 'v'), server.base);
  const start = Date.now();
  let s;
  while (Date.now() - start < 10000) {
    s = await page.evaluate(() => window.r58.stats('v'));
    if (s.video && s.video.framesDecoded >= 30) break;
    await sleep(100);
  }
  console.log('viewer:', JSON.stringify(s));
  assert.ok(s.video && s.video.framesDecoded >= 30, `decoded ${s.video?.framesDecoded} frames`);
  assert.ok(s.video.frameWidth >= 320, `frame width ${s.video.frameWidth}`);
  assert.match(coturnLog, /user <\d+:chromium-guest>: incoming packet ALLOCATE processed, success/);
  await page.close();
});
