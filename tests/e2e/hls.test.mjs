// LL-HLS in Chromium with hls.js (lowLatencyMode), through the pages' own player
// (web/static/js/hls-player.js, with the hls.js r58 serves): the default test camera and a
// WHIP-published guest both play from /hls/{name}/index.m3u8; the live latency is measured and
// reported (lib/hls.mjs says how).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import { openPage as openOn, startPlayer, sample, report, assertPlays } from './lib/hls.mjs';

let server;
let browser;

before(async () => {
  server = await startServer(['--test-cameras', '1']);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// Another origin than the server's pages would be, so CORS is exercised too.
const openPage = () => openOn(browser, server.base);

test('the test camera plays over LL-HLS in hls.js', async () => {
  const page = await openPage();
  const supported = await page.evaluate(
    () => MediaSource.isTypeSupported('video/mp4; codecs="avc1.42c01f"'));
  assert.ok(supported, 'this Chromium plays H.264 through MSE');
  await startPlayer(page, `${server.base}/hls/cam0/index.m3u8`);
  await page.waitForFunction(() => window.player.video.currentTime > 0.5, null, { timeout: 15000 });
  const s = await sample(page, 5000);
  report('cam0 over LL-HLS', s);
  assertPlays(s, 1280, 720);
  await page.close();
});

test('a WHIP-published guest plays over LL-HLS', async () => {
  const publisher = await openPage();
  await publisher.evaluate((base) => window.r58.publish(base, 'guest1'), server.base);
  await publisher.waitForFunction(() => window.publisher.pc.connectionState === 'connected',
    null, { timeout: 10000 });
  const page = await openPage();
  await startPlayer(page, `${server.base}/hls/guest1/index.m3u8`);
  await page.waitForFunction(() => window.player.video.currentTime > 0.5, null, { timeout: 20000 });
  const s = await sample(page, 5000);
  report('guest1 over LL-HLS', s);
  assertPlays(s, 640, 360);
  await page.close();
  await publisher.close();
});
