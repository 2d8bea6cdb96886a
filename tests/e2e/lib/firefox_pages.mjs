// The Firefox ESR scenarios of firefox.test.mjs, run by it inside a network namespace: r58 with
// one small test camera, its pages on the namespace's 127.0.0.1 (a secure context, as a page
// opened on the box is) and its WebRTC media on the namespace's address R58_NETNS_ADDRESS, the
// one Firefox gathers its candidates on; Firefox through puppeteer-core.
//
// Debian's Firefox has no OpenH264 (Firefox downloads it at run time, which this machine cannot),
// so over WebRTC it sends and receives VP8 only:
// - its guest publishes VP8 + Opus; the page says which outputs cannot include it and why;
// - the multiview plays that guest over WebRTC and the H.264 camera over LL-HLS (WHEP answers
//   422: no codec of the offer carries H.264; the player falls back, in LOCAL mode too);
// - in REMOTE mode (?mode=remote&play=hls) the camera plays over LL-HLS and the VP8 guest's tile
//   says it has no LL-HLS instead of waiting for a playlist;
// - the switcher lists the guest as unable to go to program, cuts the camera to program, and
//   its program monitor plays it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.mjs';
import { launchFirefox } from './browser.mjs';
import { assertCounting, waitUntil } from './pages.mjs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const host = process.env.R58_NETNS_ADDRESS;
if (!host) throw new Error('run by firefox.test.mjs inside its network namespace (R58_NETNS_ADDRESS)');

let server;
let browser;
let guest;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'r58-firefox-'));
  const config = join(dir, 'r58.toml');
  writeFileSync(config, '[test_cameras]\ncount = 1\nwidth = 640\nheight = 360\nfps = 15\nbitrate = 600000\n');
  server = await startServer(['--config', config, '--test-cameras', '1'], { mediaHost: host });
  browser = await launchFirefox();
  console.log(`Firefox ${await browser.version()} and r58 at ${server.base}`);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(path, tag) {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[${tag}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[${tag}] page error: ${e.message}`));
  await page.goto(`${server.base}${path}`);
  return page;
}

const text = (page, selector) => page.$eval(selector, (el) => el.textContent);

async function stream(name) {
  const list = await (await fetch(`${server.base}/api/streams`)).json();
  return list.find((s) => s.name === name);
}

/**
 * Waits until the `<video>` at `selector` has presented `frames` more frames (Firefox does not
 * count a MediaStream's frames in getVideoPlaybackQuality; requestVideoFrameCallback fires per
 * presented frame in both browsers).
 */
async function assertFramesAdvance(page, selector, label, frames = 10) {
  await page.$eval(selector, (v) => {
    if (v.presentedForTest != null) return;
    v.presentedForTest = 0;
    const count = () => { v.presentedForTest += 1; v.requestVideoFrameCallback(count); };
    v.requestVideoFrameCallback(count);
  });
  const count = () => page.$eval(selector, (v) => v.presentedForTest);
  await page.waitForFunction((s) => document.querySelector(s)?.videoWidth > 0, { timeout: 15000 }, selector);
  const first = await count();
  try {
    await waitUntil(`${label}: ${frames} more decoded frames`, async () => (await count()) - first >= frames, 10000);
  } catch (e) {
    console.log(`streams: ${JSON.stringify(await (await fetch(`${server.base}/api/streams`)).json())}`);
    console.log(`receiver stats: ${await page.evaluate(async (s) => {
      const tile = document.querySelector(s).closest('.tile').dataset.stream;
      const pc = window.r58multiview.tiles.get(tile).player.client?.pc;
      if (!pc) return 'no peer connection';
      const out = [];
      (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp') out.push(r); });
      return JSON.stringify(out);
    }, selector)}`);
    throw e;
  }
  console.log(`${label}: decoding (${await count()} frames)`);
}

test('a Firefox guest publishes VP8 + Opus from /guest_join and is told what cannot include it', async () => {
  guest = await open('/guest_join', 'guest');
  assert.equal(await text(guest, '#mode'), 'LOCAL · WebRTC direct');
  await guest.type('#name', 'ffguest');
  await guest.click('#preview-btn');
  await guest.waitForFunction(() => document.getElementById('preview').videoWidth > 0, { timeout: 10000 });
  await guest.click('#join-btn');
  await guest.waitForFunction(
    () => document.getElementById('status').textContent === 'Connected as ffguest! You are now live.',
    { timeout: 20000 });
  const s = await stream('ffguest');
  const codecs = Object.fromEntries(s.tracks.map((t) => [t.kind, t.codec.toLowerCase()]));
  assert.deepEqual(codecs, { audio: 'opus', video: 'vp8' }, 'Firefox without OpenH264 sends VP8');
  assert.deepEqual(Object.keys(s.unavailable).sort(), ['hls', 'program', 'recording']);
  assert.match(s.unavailable.hls, /^no LL-HLS: its video is VP8 and r58 does not transcode/);
  await guest.waitForFunction(() => !document.getElementById('codec-note').hidden, { timeout: 5000 });
  const note = await text(guest, '#codec-note');
  console.log(`guest page: ${note}`);
  assert.match(note, /^Your browser sends VP8 video: .*remote \(LL-HLS\) viewers, recordings and the program cannot include you/);
  await waitUntil('ffguest has packets in', async () => (await stream('ffguest')).tracks.every((t) => t.packets_in > 20), 10000);
});

test('LOCAL multiview: the VP8 guest over WebRTC, the H.264 camera over LL-HLS after a 422', async () => {
  const view = await open('/', 'view');
  await view.waitForSelector('.tile[data-stream="ffguest"]', { timeout: 10000 });
  await assertFramesAdvance(view, '.tile[data-stream="ffguest"] video', 'ffguest tile (WebRTC, VP8)');
  assert.equal(await view.evaluate(() => window.r58multiview.tiles.get('ffguest').player.kind), 'whep');
  await assertCounting(assert, view, '.tile[data-stream="cam0"] video', 0, 'cam0 tile (LL-HLS)', { timeoutMs: 20000 });
  assert.equal(await view.evaluate(() => window.r58multiview.tiles.get('cam0').player.kind), 'hls');
  const log = await text(view, '#log');
  assert.match(log, /cam0: this browser cannot decode the stream over WebRTC \(422\): playing over LL-HLS/);
  await view.close();
});

test('REMOTE multiview over LL-HLS: the camera plays, the VP8 guest says it has no LL-HLS', async () => {
  const view = await open('/?mode=remote&play=hls', 'remote');
  assert.match(await text(view, '#mode'), /^REMOTE/);
  await assertCounting(assert, view, '.tile[data-stream="cam0"] video', 0, 'cam0 tile (REMOTE, LL-HLS)', { timeoutMs: 20000 });
  const guestTile = '.tile[data-stream="ffguest"]';
  await view.waitForFunction((t) => document.querySelector(t)?.dataset.state === 'error', { timeout: 10000 }, guestTile);
  const message = await text(view, `${guestTile} .tile-message`);
  console.log(`ffguest tile in REMOTE mode: ${message}`);
  assert.match(message, /no LL-HLS: its video is VP8/);
  await view.close();
});

test('the switcher in Firefox: the VP8 guest cannot go to program, the camera goes and plays', async () => {
  const sw = await open('/switcher', 'switcher');
  const input = (name) => `.input[data-stream="${name}"]`;
  await sw.waitForSelector(input('ffguest'), { timeout: 10000 });
  await sw.waitForFunction((s) => /Cannot go to program: .*VP8/.test(document.querySelector(s)?.textContent ?? ''),
    { timeout: 5000 }, `${input('ffguest')} .input-problem`);
  await sw.waitForSelector(input('cam0'), { timeout: 10000 });
  await sw.evaluate(() => window.r58switcher.take('cam0'));
  await sw.waitForSelector('#program-monitor[data-state="live"]', { timeout: 20000 });
  await assertCounting(assert, sw, '#program-monitor video', 0, 'program monitor (cam0)', { timeoutMs: 20000 });
  await sw.close();
});
