// The operator pages in LOCAL mode (opened on 127.0.0.1): a guest publishes from /guest_join
// with Chromium's fake camera and microphone; / plays the two test cameras and the guest over
// WHEP; the guest's connection is restarted, dropped and ended, and the pages follow.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import {
  assertPlaying, screenshot, smallCameraArgs, streams, waitUntil, watchConsole,
} from './lib/pages.mjs';

let server;
let browser;
let guest;      // the /guest_join page
let view;       // the / page
const errors = [];

before(async () => {
  server = await startServer(smallCameraArgs());
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(path, tag, size = { width: 1280, height: 800 }) {
  const page = await browser.newPage();
  await page.setViewportSize(size);
  const pageErrors = watchConsole(page, tag);
  page.on('close', () => errors.push(...pageErrors));
  await page.goto(`${server.base}${path}`);
  return Object.assign(page, { pageErrors });
}

const logText = (page) => page.$eval('#log', (el) => el.textContent);

test('a guest joins from /guest_join in LOCAL mode and goes live', async () => {
  guest = await open('/guest_join', 'guest');
  assert.equal(await guest.textContent('#mode'), 'LOCAL · WebRTC direct');
  assert.match(await logText(guest), /Access mode: LOCAL \(using WebRTC direct\)/);
  assert.equal(await guest.isVisible('#remote-note'), false);
  await screenshot(guest, 'guest_join-initial');

  await guest.fill('#name', 'guest1');
  await guest.click('#preview-btn');
  await guest.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: 10000 });
  // The pickers list the fake devices once the browser has permission.
  assert.ok(await guest.$eval('#camera', (s) => s.options.length) >= 1);
  assert.ok(await guest.$eval('#microphone', (s) => s.options.length) >= 1);

  const clicked = Date.now();
  await guest.click('#join-btn');
  await guest.waitForFunction(
    () => document.getElementById('status').textContent === 'Connected as guest1! You are now live.',
    null, { timeout: 15000 });
  console.log(`Join Stream -> live: ${Date.now() - clicked} ms`);
  const log = await logText(guest);
  assert.match(log, /Getting TURN credentials\.\.\./);
  assert.match(log, /ICE candidate: type=host/);
  assert.equal(await guest.textContent('#conn-state'), 'connected');
  // A live bitrate from getStats: more than the audio alone.
  const { value: kbps } = await waitUntil('a sending bitrate', async () => {
    const m = (await guest.textContent('#bitrate')).match(/^(\d+) kbps$/);
    return m && Number(m[1]) > 100 ? Number(m[1]) : null;
  }, 10000);
  console.log(`guest sends ${kbps} kbps`);

  const listed = (await streams(server.base)).find((s) => s.name === 'guest1');
  assert.ok(listed, 'guest1 is in /api/streams');
  assert.equal(listed.source, 'whip');
  assert.deepEqual(listed.tracks.map((t) => t.kind).sort(), ['audio', 'video']);
  assert.ok(listed.tracks.every((t) => t.packets_in > 0), JSON.stringify(listed.tracks));
  assert.equal(listed.tracks.find((t) => t.kind === 'video').codec, 'H264');
  await screenshot(guest, 'guest_join-live');
});

test('/ in LOCAL mode plays both test cameras and the guest over WHEP', async () => {
  const opened = Date.now();
  view = await open('/', 'view');
  assert.equal(await view.textContent('#mode'), 'LOCAL · WebRTC/WHEP');
  assert.match(await logText(view), /Access mode: LOCAL \(using WebRTC\/WHEP\)/);
  for (const name of ['cam0', 'cam1', 'guest1']) {
    await view.waitForSelector(`.tile[data-stream="${name}"][data-state="live"]`, { timeout: 15000 });
  }
  console.log(`page load -> all three tiles playing: ${Date.now() - opened} ms`);
  // Cameras first, then guests.
  assert.deepEqual(await view.$$eval('.tile', (t) => t.map((e) => e.dataset.stream)), ['cam0', 'cam1', 'guest1']);
  for (const name of ['cam0', 'cam1', 'guest1']) {
    await assertPlaying(assert, view, `.tile[data-stream="${name}"] video`, name);
  }
  // Each tile shows resolution, bitrate and latency once stats came in.
  await view.waitForTimeout(1200);
  for (const name of ['cam0', 'cam1', 'guest1']) {
    const stats = await view.$eval(`.tile[data-stream="${name}"] .tile-stats`, (e) => e.textContent);
    assert.match(stats, /\d+×\d+/, `${name} resolution: ${stats}`);
    assert.match(stats, /\d(\.\d)? (k|M)bit\/s/, `${name} bitrate: ${stats}`);
    assert.match(stats, /≈\d+ ms/, `${name} latency: ${stats}`);
  }
  assert.match(await view.textContent('.tile[data-stream="cam0"] .stat-res'), /^640×360$/);
  // Name, state, buttons and stats sit below the picture, never on it: the test cameras burn
  // their name and clock into its top left, and people read latency off them.
  const overlaps = await view.$$eval('.tile', (list) => list.flatMap((t) => {
    const video = t.querySelector('video').getBoundingClientRect();
    return [...t.querySelectorAll('.tile-caption, .tile-stats, .tile-name, .badge, .unmute')]
      .filter((e) => e.getBoundingClientRect().height > 0 && e.getBoundingClientRect().top < video.bottom)
      .map((e) => `${t.dataset.stream} .${e.className}`);
  }));
  assert.deepEqual(overlaps, [], 'captions on the picture');
  // The server counts this page as a viewer of each stream.
  const counted = await streams(server.base);
  for (const name of ['cam0', 'cam1', 'guest1']) {
    assert.ok(counted.find((s) => s.name === name).viewers >= 1, `${name} viewers`);
  }
  await screenshot(view, 'multiview-local');

  // Muted by default; the tile's button unmutes that tile only.
  assert.deepEqual(await view.$$eval('.tile video', (v) => v.map((e) => e.muted)), [true, true, true]);
  await view.click('.tile[data-stream="guest1"] .unmute');
  assert.deepEqual(await view.$$eval('.tile video', (v) => v.map((e) => e.muted)), [true, true, false]);
  await view.click('.tile[data-stream="guest1"] .unmute');

  // A click opens the large view; Escape closes it.
  await view.click('.tile[data-stream="cam1"]');
  const box = await view.$eval('.tile[data-stream="cam1"]', (e) => e.getBoundingClientRect().width);
  assert.ok(box > 1000, `large view is ${box} px wide`);
  await screenshot(view, 'multiview-local-large');
  await view.keyboard.press('Escape');
  assert.equal(await view.$$eval('.tile.large', (t) => t.length), 0);

  // On a phone the grid is one column.
  await view.setViewportSize({ width: 390, height: 844 });
  await view.waitForTimeout(300);
  const lefts = await view.$$eval('.tile', (t) => t.map((e) => Math.round(e.getBoundingClientRect().left)));
  assert.equal(new Set(lefts).size, 1, `one column on a phone: ${lefts}`);
  await screenshot(view, 'multiview-local-phone');
  await view.setViewportSize({ width: 1280, height: 800 });
});

test('a name that is a camera, or live from someone else, is refused with a clear message', async () => {
  const other = await open('/guest_join', 'other');
  await other.evaluate(() => localStorage.removeItem('r58.guest.live'));
  await other.fill('#name', 'cam0');
  await other.click('#join-btn');
  await other.waitForFunction(() => document.getElementById('status').dataset.kind === 'error', null, { timeout: 10000 });
  assert.equal(await other.textContent('#status'), '"cam0" is the name of a camera here. Choose another name.');

  await other.fill('#name', 'guest1');
  await other.click('#join-btn');
  await other.waitForFunction(() => /already live/.test(document.getElementById('status').textContent), null, { timeout: 10000 });
  assert.equal(await other.textContent('#status'),
    'The name "guest1" is already live (someone else is using it). Choose another name.');

  await other.fill('#name', 'bad name!');
  await other.click('#join-btn');
  assert.match(await other.textContent('#status'), /^Enter a name of 1-64 letters/);
  await screenshot(other, 'guest_join-name-taken');
  await other.close();
  // The real guest was not disturbed.
  assert.equal(await guest.textContent('#conn-state'), 'connected');
});

test('an ICE restart (PATCH If-Match "*") keeps the guest live and a viewer playing', async () => {
  const before = await guest.evaluate(() => window.r58guest.client.resource.etag);
  await guest.evaluate(() => window.r58guest.client.restartIce());
  const after = await guest.evaluate(() => window.r58guest.client.resource.etag);
  assert.notEqual(after, before, 'the server gave the restarted ICE session a new ETag');
  await guest.waitForFunction(() => window.r58guest.client.pc.connectionState === 'connected', null, { timeout: 10000 });
  await view.waitForSelector('.tile[data-stream="guest1"][data-state="live"]', { timeout: 5000 });
  await assertPlaying(assert, view, '.tile[data-stream="guest1"] video', 'guest1 after ICE restart');

  // The same for a viewer: the multiview's WHEP session for cam0 restarts ICE and plays on.
  const tileEtag = () => view.evaluate(() => window.r58multiview.tiles.get('cam0').player.client.resource.etag);
  const tileLocation = () => view.evaluate(() => window.r58multiview.tiles.get('cam0').player.client.resource.location);
  const [etag0, location0] = [await tileEtag(), await tileLocation()];
  await view.evaluate(() => window.r58multiview.tiles.get('cam0').player.client.restartIce());
  assert.notEqual(await tileEtag(), etag0);
  assert.equal(await tileLocation(), location0, 'the same WHEP session');
  await view.waitForFunction(() => window.r58multiview.tiles.get('cam0').player.client.pc.connectionState === 'connected',
    null, { timeout: 10000 });
  await assertPlaying(assert, view, '.tile[data-stream="cam0"] video', 'cam0 after ICE restart');
});

test('a guest whose session the server ends reconnects with a new WHIP session', async () => {
  const old = await guest.evaluate(() => window.r58guest.client.resource.location);
  const r = await fetch(old, { method: 'DELETE' });
  assert.equal(r.status, 200);
  const { ms } = await waitUntil('a new WHIP session', () => guest.evaluate(
    (o) => window.r58guest.client?.resource.location !== o
      && window.r58guest.client?.pc.connectionState === 'connected'
      && document.getElementById('status').textContent === 'Connected as guest1! You are now live.', old), 20000);
  console.log(`guest back live after ${ms} ms`);
  const log = await logText(guest);
  assert.match(log, /Connection lost .*trying an ICE restart/);
  assert.match(log, /Starting a new WHIP session \(attempt 1\)/);
  await view.waitForSelector('.tile[data-stream="guest1"][data-state="live"]', { timeout: 10000 });
  await assertPlaying(assert, view, '.tile[data-stream="guest1"] video', 'guest1 after reconnect');
  await screenshot(guest, 'guest_join-reconnected');
});

test('a guest who leaves disappears from the multiview within seconds', async () => {
  const location = await guest.evaluate(() => window.r58guest.client.resource.location);
  const left = Date.now();
  await guest.click('#leave-btn');
  await guest.waitForFunction(() => document.getElementById('status').textContent.startsWith('You left'));
  // Leave deleted the session on the server.
  assert.equal((await fetch(location, { method: 'DELETE' })).status, 404);
  await view.waitForSelector('.tile[data-stream="guest1"]', { state: 'detached', timeout: 8000 });
  const goneMs = Date.now() - left;
  console.log(`guest1 left the multiview ${goneMs} ms after Leave`);
  assert.ok(goneMs < 5000, `took ${goneMs} ms`);
  assert.equal((await streams(server.base)).some((s) => s.name === 'guest1'), false);
  assert.deepEqual(await view.$$eval('.tile', (t) => t.map((e) => e.dataset.stream)), ['cam0', 'cam1']);
  await screenshot(guest, 'guest_join-left');
  await screenshot(view, 'multiview-after-leave');
  await view.close();
  await guest.close();
  assert.deepEqual(errors, [], 'no page errors or CSP violations');
});

test('on a server that wants a publishing token, the invite link\'s ?token= is used and its absence explained', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'r58-e2e-auth-'));
  const config = join(dir, 'r58.toml');
  writeFileSync(config, '[[auth]]\npath = "/whip/*"\ntoken = "invite-7f3a"\n');
  const locked = await startServer(['--config', config]);
  try {
    const page = await browser.newPage();
    watchConsole(page, 'token');
    await page.goto(`${locked.base}/guest_join`);
    await page.fill('#name', 'invited');
    await page.click('#join-btn');
    await page.waitForFunction(() => /\(401\)/.test(document.getElementById('status').textContent), null, { timeout: 15000 });
    assert.equal(await page.textContent('#status'),
      'This server needs a publishing token (401): ask for an invite link that carries one (?token=...).');

    await page.goto(`${locked.base}/guest_join?token=invite-7f3a&name=invited`);
    assert.equal(await page.inputValue('#name'), 'invited');
    await page.click('#join-btn');
    await page.waitForFunction(() => document.getElementById('status').textContent === 'Connected as invited! You are now live.',
      null, { timeout: 15000 });
    const location = await page.evaluate(() => window.r58guest.client.resource.location);
    // Leave also ends the studio return's WHEP session (when it was up by then): wait for the
    // WHIP session's own DELETE.
    const deleted = page.waitForResponse((r) => r.request().method() === 'DELETE' && r.url() === location);
    await page.click('#leave-btn');
    // Leave's DELETE carries the token too, and the server accepts it.
    const response = await deleted;
    assert.equal(response.request().headers().authorization, 'Bearer invite-7f3a');
    assert.equal(response.status(), 200);
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('You left'));
    await page.close();
  } finally {
    await locked.stop();
  }
});
