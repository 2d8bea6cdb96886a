// The operator pages in REMOTE mode: opened on a non-local hostname (studio.r58.test, mapped to
// 127.0.0.1 inside Chromium), as through a tunnel. The guest publishes through a real coturn
// with iceTransportPolicy 'relay'; / with ?play=hls views over LL-HLS only, never WebRTC (r58
// holds a relay of its own here, so without it the page would play over WebRTC via TURN:
// pages_remote_webrtc.test.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import { startTurn } from './lib/turn.mjs';
import {
  assertPlaying, screenshot, smallCameraArgs, streams, waitUntil, watchConsole,
} from './lib/pages.mjs';

const HOST = 'studio.r58.test';
let server;
let turn;
let browser;
let origin;
let guest;
const errors = [];

/** r58's `[turn]` table pointing at the test's coturn. */
function turnToml(t) {
  return `[turn]\nprovider = "coturn"\nurls = ["turn:127.0.0.1:${t.port}?transport=udp"]\nsecret = "${t.secret}"\n`;
}

before(async () => {
  turn = await startTurn();
  server = await startServer(smallCameraArgs(turnToml(turn)));
  origin = server.base.replace('127.0.0.1', HOST);
  browser = await launchChromium([
    `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
    `--unsafely-treat-insecure-origin-as-secure=${origin}`,
  ]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await turn?.stop();
});

async function open(path, tag) {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  const pageErrors = watchConsole(page, tag);
  page.on('close', () => errors.push(...pageErrors));
  await page.goto(`${origin}${path}`);
  return page;
}

const logText = (page) => page.$eval('#log', (el) => el.textContent);
const liveText = (name) => `Connected as ${name}! You are now live.`;

async function joinAs(page, name) {
  await page.fill('#name', name);
  await page.click('#preview-btn');
  await page.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: 10000 });
  const clicked = Date.now();
  await page.click('#join-btn');
  await page.waitForFunction((t) => document.getElementById('status').textContent === t,
    liveText(name), { timeout: 20000 });
  console.log(`${name}: Join Stream -> live: ${Date.now() - clicked} ms`);
}

test('a guest in REMOTE mode with no TURN server says so and connects directly', async () => {
  const page = await open('/guest_join', 'guest-noturn');
  await page.route('**/api/turn-credentials', (route) => route.fulfill({ status: 404, body: 'no TURN here\n' }));
  assert.equal(await page.textContent('#mode'), 'REMOTE · TURN relay');
  assert.equal(await page.isVisible('#remote-note'), true);
  await joinAs(page, 'remote0');
  const log = await logText(page);
  assert.match(log, /Access mode: REMOTE \(using TURN relay\)/);
  assert.match(log, /This server hands out no TURN credentials \(404\)/);
  assert.match(log, /No TURN relay available: trying a direct connection/);
  assert.match(log, /ICE candidate: type=host/);
  await page.click('#leave-btn');
  await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('You left'));
  await page.close();
});

test('a guest on a non-local hostname publishes through a real coturn relay', async () => {
  guest = await open('/guest_join', 'guest');
  assert.equal(await guest.textContent('#mode'), 'REMOTE · TURN relay');
  await screenshot(guest, 'guest_join-remote-initial');
  await joinAs(guest, 'remote1');
  const log = await logText(guest);
  assert.match(log, /Access mode: REMOTE \(using TURN relay\)/);
  assert.match(log, /Getting TURN credentials\.\.\./);
  assert.match(log, new RegExp(`Got 1 ICE server\\(s\\): turn:127\\.0\\.0\\.1:${turn.port}\\?transport=udp`));
  assert.match(log, /Connecting via TURN relay\.\.\./);
  assert.match(log, /ICE candidate: type=relay/);
  assert.equal(await guest.evaluate(() => window.r58guest.client.pc.getConfiguration().iceTransportPolicy), 'relay');
  assert.match(await guest.textContent('#ice-type'), /^relay \(TURN\)/);
  const { value: kbps } = await waitUntil('a sending bitrate', async () => {
    const m = (await guest.textContent('#bitrate')).match(/^(\d+) kbps$/);
    return m && Number(m[1]) > 100 ? Number(m[1]) : null;
  }, 10000);
  console.log(`remote guest sends ${kbps} kbps through coturn`);
  const listed = (await streams(server.base)).find((s) => s.name === 'remote1');
  assert.ok(listed, 'remote1 is in /api/streams');
  assert.deepEqual(listed.tracks.map((t) => t.kind).sort(), ['audio', 'video']);
  assert.ok(listed.tracks.every((t) => t.packets_in > 0), JSON.stringify(listed.tracks));
  await screenshot(guest, 'guest_join-remote-live');
});

test('a guest whose TURN relay goes away says so, retries, and is live again when it is back', async () => {
  const before = await guest.evaluate(() => window.r58guest.client.resource.location);
  await turn.stop();
  // The page notices (connection disconnected/failed), tries an ICE restart, then new sessions.
  await guest.waitForFunction(() => /Starting a new WHIP session \(attempt 1\)/.test(document.getElementById('log').textContent),
    null, { timeout: 30000 });
  await guest.waitForFunction(() => /^Reconnecting/.test(document.getElementById('status').textContent), null, { timeout: 5000 });
  const during = await guest.textContent('#status');
  console.log(`while the relay is down: ${during}`);
  assert.match(during, /^Reconnecting with a new session \(attempt 1\): Connecting via TURN relay\.\.\.$/);
  // Leave it down long enough for an attempt to fail and the page to back off.
  await guest.waitForFunction(() => /Starting a new WHIP session \(attempt 2\)/.test(document.getElementById('log').textContent),
    null, { timeout: 30000 });
  assert.match(await logText(guest), /No connection within \d+ s|The TURN relay gave no candidate/);
  await screenshot(guest, 'guest_join-remote-relay-down');
  const down = Date.now();
  await turn.restart();
  await guest.waitForFunction((t) => document.getElementById('status').textContent === t,
    liveText('remote1'), { timeout: 45000 });
  console.log(`live again ${Date.now() - down} ms after the relay came back`);
  const log = await logText(guest);
  assert.match(log, /Connection lost \(connection (lost|failed)\): trying an ICE restart/);
  assert.match(log, /Starting a new WHIP session \(attempt 1\)/);
  const lines = log.split(/(?=\d\d:\d\d:\d\d {2})/);
  const lastRelay = lines.findLastIndex((l) => /ICE candidate: type=relay/.test(l));
  const lost = lines.findIndex((l) => /Connection lost/.test(l));
  assert.ok(lastRelay > lost, 'connected through the relay again after the loss');
  assert.notEqual(await guest.evaluate(() => window.r58guest.client.resource.location), before);
  const listed = (await streams(server.base)).find((s) => s.name === 'remote1');
  assert.ok(listed?.online, 'remote1 is live on the server again');
});

test('/?play=hls in REMOTE mode plays the cameras and the guest over HLS only', async () => {
  const view = await browser.newPage();
  await view.setViewportSize({ width: 1280, height: 800 });
  const pageErrors = watchConsole(view, 'view');
  view.on('close', () => errors.push(...pageErrors));
  const webrtc = [];
  view.on('request', (r) => { if (/\/whep\//.test(r.url())) webrtc.push(r.url()); });
  await view.goto(`${origin}/?play=hls`);
  assert.equal(await view.textContent('#mode'), 'REMOTE · HLS');
  assert.match(await logText(view), /Access mode: REMOTE \(using HLS\)/);
  for (const name of ['cam0', 'cam1', 'remote1']) {
    await view.waitForSelector(`.tile[data-stream="${name}"][data-state="live"]`, { timeout: 20000 });
  }
  for (const name of ['cam0', 'cam1', 'remote1']) {
    await assertPlaying(assert, view, `.tile[data-stream="${name}"] video`, `${name} over HLS`, 3000);
    const latency = await view.textContent(`.tile[data-stream="${name}"] .stat-latency`);
    assert.match(latency, /^\d+\.\d s behind live$/, `${name}: ${latency}`);
    console.log(`${name}: ${latency}`);
  }
  assert.match(await logText(view), /cam0: playing over LL-HLS \(hlsjs\)/);
  await screenshot(view, 'multiview-remote');
  assert.deepEqual(webrtc, [], 'a REMOTE page with ?play=hls never plays over WHEP');
  assert.ok((await streams(server.base)).every((s) => s.viewers === 0), 'no WHEP viewers on the server');
  await view.close();
});

test('a REMOTE tile whose playlist is missing says so and retries (no dead spinner)', async () => {
  const view = await browser.newPage();
  await view.setViewportSize({ width: 1280, height: 800 });
  watchConsole(view, 'view-404');
  // Registered last, so it is asked first (Playwright runs routes newest first).
  await view.route(/\/hls\/cam1\//, (route) => route.fulfill({ status: 404, body: 'no such stream\n' }));
  await view.goto(`${origin}/?play=hls`);
  await view.waitForSelector('.tile[data-stream="cam1"][data-state="error"]', { timeout: 15000 });
  assert.match(await view.textContent('.tile[data-stream="cam1"] .tile-message'),
    /^HLS playlist not found \(HTTP 404\) — retrying in 3 s$/);
  await view.waitForSelector('.tile[data-stream="cam0"][data-state="live"]', { timeout: 20000 });
  await screenshot(view, 'multiview-remote-missing-playlist');
  // It keeps trying: the playlist is asked for again.
  const again = await view.waitForRequest(/\/hls\/cam1\/index\.m3u8/, { timeout: 10000 });
  assert.ok(again);
  await view.close();
  await guest.click('#leave-btn');
  await guest.close();
  assert.deepEqual(errors, [], 'no page errors or CSP violations');
});
