// The pages' LL-HLS player (web/static/js/hls-player.js, hls.js) in a Chromium page, sampled
// for playing position and latency: shared by hls.test.mjs and hls_cdn.test.mjs.
//
// Latency is Date.now() - hls.playingDate: the wall clock now minus the EXT-X-PROGRAM-DATE-TIME
// position being shown, where the server stamps each frame with the wall clock at which it
// reached the hub (right after capture + encode for a camera).
import assert from 'node:assert/strict';
import { resolve } from 'node:path';

const peersScript = resolve(import.meta.dirname, 'peers.js');

/** A page of `browser` on `base` (r58, or a cache in front of it), with lib/peers.js. */
export async function openPage(browser, base, label = 'page') {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[${label}] ${m.text()}`));
  await page.goto(`${base}/healthz`);
  await page.addScriptTag({ path: peersScript });
  return page;
}

/** Starts the pages' LL-HLS player (hls.js) on `url` in the page. */
export async function startPlayer(page, url) {
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
export async function sample(page, ms) {
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
    out.targetLatency = handle.targetLatency?.() ?? null;
    out.stalls = handle.stalls?.() ?? null;
    return out;
  }, ms);
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function report(label, s) {
  const lat = s.latencies;
  console.log(`${label}: ${s.width}x${s.height}, currentTime ${s.currentTimes[0]?.toFixed(2)} -> `
    + `${s.currentTimes.at(-1)?.toFixed(2)} s, capture->playing latency ms `
    + `p50 ${percentile(lat, 50)} p90 ${percentile(lat, 90)} max ${Math.max(...lat)} `
    + `(hls.js latency ${s.hlsLatency?.toFixed(3)} s, target ${s.targetLatency?.toFixed(3)} s, `
    + `${s.stalls} stalls), errors: ${JSON.stringify(s.errors)}`);
}

export function assertPlays(s, width, height) {
  assert.equal(s.width, width);
  assert.equal(s.height, height);
  const advanced = s.currentTimes.at(-1) - s.currentTimes[0];
  assert.ok(advanced > 2, `currentTime advanced only ${advanced} s`);
  assert.equal(s.blackFrames, 0, 'frames are not black');
  assert.ok(s.latencies.length > 0, 'hls.js knows the program date time');
  assert.ok(!s.errors.some((e) => e.includes('fatal')), `fatal hls.js errors: ${s.errors}`);
}
