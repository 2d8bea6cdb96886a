// Chromium publishes with WHIP; Chromium viewers play with WHEP, joining at different times.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';

const peersScript = resolve(import.meta.dirname, 'lib/peers.js');
let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openPage() {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[page] ${m.text()}`));
  await page.goto(`${server.base}/healthz`);
  await page.addScriptTag({ path: peersScript });
  return page;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(page, key, predicate, timeoutMs) {
  const start = Date.now();
  let last;
  while (Date.now() - start < timeoutMs) {
    last = await page.evaluate((k) => window.r58.stats(k), key);
    if (predicate(last)) return { stats: last, waitedMs: Date.now() - start };
    await sleep(50);
  }
  throw new Error(`timed out waiting on ${key}: ${JSON.stringify(last)}`);
}

test('Chromium WHIP publisher reaches Chromium WHEP viewers that join at different times', async () => {
  const publisher = await openPage();
  const publisherLocation = await publisher.evaluate(
    (base) => window.r58.publish(base, 'guest1'), server.base);
  assert.match(publisherLocation, /\/whip\/guest1\//);
  await publisher.waitForFunction(() => window.publisher.pc.connectionState === 'connected',
    null, { timeout: 10000 });

  const viewers = await openPage();
  const firstFrameMs = {};
  for (const [key, delayMs] of [['early', 0], ['late', 2000]]) {
    await sleep(delayMs);
    const posted = Date.now();
    await viewers.evaluate(([base, k]) => window.r58.play(base, 'guest1', k), [server.base, key]);
    await waitFor(viewers, key, (s) => s.video && s.video.framesDecoded > 0, 5000);
    firstFrameMs[key] = Date.now() - posted;
  }
  console.log('time to first decoded frame (ms):', firstFrameMs);

  await sleep(4000);
  for (const key of ['early', 'late']) {
    const s = await viewers.evaluate((k) => window.r58.stats(k), key);
    console.log(key, JSON.stringify(s));
    assert.equal(s.state, 'connected');
    // Chrome's fake camera runs at 30 fps; the encoder may adapt frame rate while its bandwidth
    // estimate ramps up, so require most but not all of the frames.
    const expected = (s.elapsedMs / 1000) * 30;
    assert.ok(s.video.framesDecoded >= expected * 0.6,
      `${key} decoded ${s.video.framesDecoded} of ~${expected.toFixed(0)} frames`);
    assert.ok(s.video.frameWidth >= 320 && s.video.frameHeight >= 180,
      `${key} frame size ${s.video.frameWidth}x${s.video.frameHeight}`);
    assert.ok(s.audio.packetsReceived > 50, `${key} audio packets ${s.audio.packetsReceived}`);
  }
  // Keyframe cache: a viewer decodes its first frame without waiting for the next keyframe.
  assert.ok(firstFrameMs.late < 1500, `late joiner waited ${firstFrameMs.late} ms`);

  // The publisher leaves: every viewer learns within 5 s.
  const status = await publisher.evaluate(() => window.r58.remove(window.publisher.location));
  assert.equal(status, 200);
  const { waitedMs } = await waitFor(viewers, 'early',
    (s) => s.state === 'closed' || s.state === 'failed' || s.state === 'disconnected', 8000);
  console.log('viewer noticed the end after', waitedMs, 'ms');
  assert.ok(waitedMs < 5000);
  const replay = await fetch(`${server.base}/whep/guest1`, {
    method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'v=0\r\n',
  });
  assert.equal(replay.status, 400, 'garbage offer still answered after the stream ended');
});
