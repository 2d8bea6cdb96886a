// The pages' one player (web/static/js/player.js) in Chromium, through the multiview's tiles:
// the stall rule, in LOCAL (WHEP) and REMOTE (LL-HLS, ?play=hls) mode, by stopping the server (SIGSTOP)
// so no frame arrives and letting it go on; and the WHEP recovery when the server ends a
// viewer's session (ICE restart refused, then a new session).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import {
  assertPlaying, changedPixels, screenshot, smallCameraArgs, videoSample, waitUntil, watchConsole,
} from './lib/pages.mjs';
import { STALL_MS } from '../../web/static/js/player-model.js';

let server;
let browser;
const errors = [];

before(async () => {
  server = await startServer(smallCameraArgs());
  browser = await launchChromium();
});

after(async () => {
  if (server) process.kill(server.pid, 'SIGCONT');
  await browser?.close();
  await server?.stop();
});

async function open(path, tag) {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  const pageErrors = watchConsole(page, tag);
  page.on('close', () => errors.push(...pageErrors));
  await page.goto(`${server.base}${path}`);
  return page;
}

const tile = (name) => `.tile[data-stream="${name}"]`;
const tileState = (page, name) => page.getAttribute(tile(name), 'data-state');

/**
 * Stops the server for `ms` under a page playing cam0: the tile must still be live well before
 * the threshold, stalled (with its message, the picture still shown) after it, and live again
 * once the server goes on.
 */
async function stallAndResume(page, label) {
  await page.waitForSelector(`${tile('cam0')}[data-state="live"]`, { timeout: 30000 });
  await assertPlaying(assert, page, `${tile('cam0')} video`, `${label} before the stall`);
  const stoppedAt = Date.now();
  process.kill(server.pid, 'SIGSTOP');
  try {
    // LL-HLS has up to a second buffered; WHEP shows its last frame at once.
    await page.waitForTimeout(STALL_MS / 2);
    assert.equal(await tileState(page, 'cam0'), 'live', `${label}: stalled after only ${Date.now() - stoppedAt} ms`);
    await page.waitForSelector(`${tile('cam0')}[data-state="stalled"]`, { timeout: STALL_MS + 4000 });
    const stalledAfter = Date.now() - stoppedAt;
    console.log(`${label}: stalled ${stalledAfter} ms after the server stopped`);
    assert.equal(await page.textContent(`${tile('cam0')} .tile-message`), `No new frames for ${STALL_MS / 1000} s`);
    assert.equal(await page.textContent(`${tile('cam0')} .badge`), 'Stalled');
    await screenshot(page, `player-${label}-stalled`);
  } finally {
    process.kill(server.pid, 'SIGCONT');
  }
  const resumedAt = Date.now();
  await page.waitForSelector(`${tile('cam0')}[data-state="live"]`, { timeout: 20000 });
  console.log(`${label}: live again ${Date.now() - resumedAt} ms after the server went on`);
  // 'live' means frames count again; the picture itself may hold a moment longer on a loaded
  // machine (the browser waits for a keyframe it asked for while nothing came). It must move
  // within a few seconds, then play on.
  const video = `${tile('cam0')} video`;
  try {
    const { ms } = await waitUntil('the picture to move again', async () => {
      const a = await videoSample(page, video);
      await page.waitForTimeout(500);
      const b = await videoSample(page, video);
      return changedPixels(a, b) >= 10;
    }, 8000, 0);
    console.log(`${label}: the picture moved again ${Date.now() - resumedAt} ms after the server went on (${ms} ms after live)`);
    await assertPlaying(assert, page, video, `${label} after the stall`);
  } catch (e) {
    console.log(`${label}: the page's log: ${await page.$eval('#log', (el) => el.innerText)}`);
    throw e;
  }
}

test('LOCAL: a WHEP tile whose frames stop says "Stalled" after the threshold, and live again after', async () => {
  const page = await open('/', 'local');
  await stallAndResume(page, 'whep');
  await page.close();
});

test('REMOTE: an LL-HLS tile whose frames stop says "Stalled" after the threshold, and live again after', async () => {
  const page = await open('/?mode=remote&play=hls', 'remote');
  assert.equal(await page.textContent('#mode'), 'REMOTE · HLS');
  await stallAndResume(page, 'hls');
  await page.close();
});

test('LOCAL: a viewer whose session the server ends tries an ICE restart, then plays on a new session', async () => {
  const page = await open('/', 'recover');
  await page.waitForSelector(`${tile('cam0')}[data-state="live"]`, { timeout: 15000 });
  const location = () => page.evaluate(() => window.r58multiview.tiles.get('cam0').player.client?.resource.location);
  const old = await location();
  assert.ok(old, 'a WHEP session');
  assert.equal((await fetch(old, { method: 'DELETE' })).status, 200);
  const { ms } = await waitUntil('a new WHEP session playing', async () => {
    const now = await location();
    return now && now !== old && (await tileState(page, 'cam0')) === 'live';
  }, 30000, 250);
  console.log(`cam0 playing on a new session ${ms} ms after the server ended the old one`);
  const log = await page.$eval('#log', (e) => e.textContent);
  assert.match(log, /cam0: connection (lost|failed), trying an ICE restart/);
  assert.match(log, /cam0: (ICE restart refused|the ICE restart did not reconnect)/);
  await assertPlaying(assert, page, `${tile('cam0')} video`, 'cam0 on the new session');
  await page.close();
  assert.deepEqual(errors, [], 'no page errors or CSP violations');
});
