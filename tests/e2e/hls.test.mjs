// LL-HLS in Chromium with hls.js (lowLatencyMode), through the pages' own player
// (web/static/js/hls-player.js, with the hls.js r58 serves): the default test camera and a
// WHIP-published guest both play from /hls/{name}/index.m3u8; the live latency is measured and
// reported.
//
// Latency is Date.now() - hls.playingDate: the wall clock now minus the EXT-X-PROGRAM-DATE-TIME
// position being shown, where the server stamps each frame with the wall clock at which it
// reached the hub (right after capture + encode for a camera).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';

const peersScript = resolve(import.meta.dirname, 'lib/peers.js');
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

async function openPage() {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[page] ${m.text()}`));
  // Another origin than the server's pages would be, so CORS is exercised too.
  await page.goto(`${server.base}/healthz`);
  await page.addScriptTag({ path: peersScript });
  return page;
}

/** Starts the pages' LL-HLS player (hls.js) on `url` in the page. */
async function startPlayer(page, url) {
  await page.evaluate((src) => {
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    document.body.append(video);
    window.player = { video, handle: null, errors: [] };
    const { errors } = window.player;
    return import('/static/js/hls-player.js').then(async ({ playHls }) => {
      window.player.handle = await playHls(video, src, {
        onFatal: (message) => errors.push(`fatal: ${message}`),
        log: (message) => errors.push(message),
      });
    });
  }, url);
}

/** Samples the playing position and latency for `ms`. */
async function sample(page, ms) {
  return page.evaluate(async (duration) => {
    const { video, handle } = window.player;
    const out = { latencies: [], currentTimes: [], width: 0, height: 0, blackFrames: 0 };
    const canvas = document.createElement('canvas');
    const end = performance.now() + duration;
    while (performance.now() < end) {
      await new Promise((r) => setTimeout(r, 250));
      out.currentTimes.push(video.currentTime);
      const playing = handle.playingDate();
      if (playing) out.latencies.push(Date.now() - playing.getTime());
      out.width = video.videoWidth;
      out.height = video.videoHeight;
      if (video.videoWidth > 0) {
        canvas.width = 64;
        canvas.height = 36;
        const ctx = canvas.getContext('2d', { willReadFrequently: true });
        ctx.drawImage(video, 0, 0, 64, 36);
        const px = ctx.getImageData(0, 0, 64, 36).data;
        let sum = 0;
        for (let i = 0; i < px.length; i += 4) sum += px[i] + px[i + 1] + px[i + 2];
        if (sum / (px.length / 4) < 30) out.blackFrames += 1;
      }
    }
    out.errors = window.player.errors;
    out.hlsLatency = handle.latency();
    return out;
  }, ms);
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function report(label, s) {
  const lat = s.latencies;
  console.log(`${label}: ${s.width}x${s.height}, currentTime ${s.currentTimes[0]?.toFixed(2)} -> `
    + `${s.currentTimes.at(-1)?.toFixed(2)} s, capture->playing latency ms `
    + `p50 ${percentile(lat, 50)} p90 ${percentile(lat, 90)} max ${Math.max(...lat)} `
    + `(hls.js latency ${s.hlsLatency?.toFixed(3)} s), errors: ${JSON.stringify(s.errors)}`);
}

function assertPlays(s, width, height) {
  assert.equal(s.width, width);
  assert.equal(s.height, height);
  const advanced = s.currentTimes.at(-1) - s.currentTimes[0];
  assert.ok(advanced > 2, `currentTime advanced only ${advanced} s`);
  assert.equal(s.blackFrames, 0, 'frames are not black');
  assert.ok(s.latencies.length > 0, 'hls.js knows the program date time');
  assert.ok(!s.errors.some((e) => e.includes('fatal')), `fatal hls.js errors: ${s.errors}`);
}

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
