// Helpers for the operator-page tests: a small camera config, picture checks, screenshots.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..', '..', '..');
export const screenshotDir = process.env.R58_E2E_SCREENSHOTS ?? join(root, 'target', 'e2e-screenshots');

/**
 * Server arguments for the two test cameras at a size that leaves the shared CPU to the browser
 * (the pages do not care about the size; the camera tests cover 720p).
 */
export function smallCameraArgs(moreToml = '') {
  const dir = mkdtempSync(join(tmpdir(), 'r58-e2e-config-'));
  const file = join(dir, 'r58.toml');
  writeFileSync(file, `[test_cameras]\ncount = 2\nwidth = 640\nheight = 360\nfps = 15\nbitrate = 800000\n${moreToml}`);
  return ['--config', file, '--test-cameras', '2'];
}

export async function screenshot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path });
  console.log(`screenshot: ${path}`);
  return path;
}

/** Logs the page's console and errors with a prefix; collects errors for assertions. */
export function watchConsole(page, tag) {
  const errors = [];
  page.on('console', (m) => {
    console.log(`[${tag}] ${m.text()}`);
    if (/Content Security Policy|Refused to/.test(m.text())) errors.push(m.text());
  });
  page.on('pageerror', (e) => {
    console.log(`[${tag}] page error: ${e.message}`);
    errors.push(e.message);
  });
  return errors;
}

/**
 * The state of the `<video>` matched by `selector`: currentTime, size, and the picture sampled
 * through a 160x90 canvas (its luma, with mean and spread).
 */
export async function videoSample(page, selector) {
  return page.$eval(selector, (video) => {
    const w = 160;
    const h = 90;
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const g = canvas.getContext('2d', { willReadFrequently: true });
    g.drawImage(video, 0, 0, w, h);
    const px = g.getImageData(0, 0, w, h).data;
    let sum = 0;
    let sq = 0;
    const luma = [];
    for (let i = 0; i < px.length; i += 4) {
      const y = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
      sum += y;
      sq += y * y;
      luma.push(Math.round(y));
    }
    const n = px.length / 4;
    const mean = sum / n;
    return {
      currentTime: video.currentTime,
      width: video.videoWidth,
      height: video.videoHeight,
      meanLuma: mean,
      lumaStdDev: Math.sqrt(Math.max(0, sq / n - mean * mean)),
      luma,
    };
  });
}

/**
 * How many sampled pixels changed between two `videoSample`s by more than coding noise (the test
 * pattern's box and clock move, the fake camera's pie turns).
 */
export function changedPixels(a, b) {
  return a.luma.filter((y, i) => Math.abs(y - b.luma[i]) > 8).length;
}

/**
 * Asserts that the video plays a real picture: time advances, frames change, the picture is
 * not black. Returns the two samples.
 */
export async function assertPlaying(assert, page, selector, label, waitMs = 2000) {
  const a = await videoSample(page, selector);
  await page.waitForTimeout(waitMs);
  const b = await videoSample(page, selector);
  const changed = changedPixels(a, b);
  console.log(`${label}: ${JSON.stringify({ ...b, luma: undefined })}, advanced ${(b.currentTime - a.currentTime).toFixed(2)} s, ${changed} of ${a.luma.length} sampled pixels changed`);
  assert.ok(b.currentTime - a.currentTime > waitMs / 1000 / 2,
    `${label}: currentTime went from ${a.currentTime} to ${b.currentTime} in ${waitMs} ms`);
  assert.ok(b.width > 0 && b.height > 0, `${label}: no video size`);
  assert.ok(b.meanLuma > 20 && b.lumaStdDev > 5,
    `${label}: picture looks black or flat (mean luma ${b.meanLuma.toFixed(1)}, spread ${b.lumaStdDev.toFixed(1)})`);
  assert.ok(changed >= 10, `${label}: the picture did not change in ${waitMs} ms (${changed} pixels)`);
  return [a, b];
}

export async function streams(base) {
  return (await fetch(`${base}/api/streams`)).json();
}

export async function waitUntil(what, fn, timeoutMs, stepMs = 100) {
  const start = Date.now();
  for (;;) {
    const value = await fn();
    if (value) return { value, ms: Date.now() - start };
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * The frame counter r58's test camera draws into its picture as a row of black and white
 * blocks (sfu/src/capture/pattern.rs: 24 value bits then 4 check bits, 8 px from the top left,
 * blocks of (width - 16) / 28 px, at most 16), read from the frame the `<video>` shows at its
 * own size; null when there is no picture or the check bits do not match. A camera's counter
 * starts at the number its name ends with times 2^20, so `counter >> 20` says which camera.
 */
export async function cameraCounter(page, selector) {
  return page.$eval(selector, (video) => {
    const w = video.videoWidth;
    const h = video.videoHeight;
    if (!w || !h) return null;
    const margin = 8;
    const blocks = 28;
    const block = Math.max(1, Math.min(16, Math.floor((w - 2 * margin) / blocks)));
    if (margin + block > h) return null;
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = margin + block;
    const g = canvas.getContext('2d', { willReadFrequently: true });
    g.drawImage(video, 0, 0, w, h, 0, 0, w, h);
    const inset = Math.floor(block / 4);
    const span = Math.max(1, block - 2 * inset);
    const px = g.getImageData(0, 0, w, margin + block).data;
    let word = 0;
    for (let i = 0; i < blocks; i++) {
      const x0 = margin + i * block + inset;
      let sum = 0;
      for (let y = margin + inset; y < margin + inset + span; y++) {
        for (let x = x0; x < x0 + span; x++) {
          const o = (y * w + x) * 4;
          sum += 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
        }
      }
      if (sum / (span * span) > 128) word += 2 ** i;
    }
    const value = word % 2 ** 24;
    let check = 0b0101;
    for (let x = value; x !== 0; x = Math.floor(x / 16)) check ^= x % 16;
    return Math.floor(word / 2 ** 24) === check ? value : null;
  });
}

/**
 * Reads the test camera's counter from the `<video>` until it has moved on by `atLeast`
 * frames (within `timeoutMs`): the picture shown is decoded, new frames keep coming, and they
 * come from camera number `camera`. Returns the first and last counters read.
 */
export async function assertCounting(assert, page, selector, camera, label, { atLeast = 5, timeoutMs = 5000 } = {}) {
  // (Wrapped: counter 0 is a value, and waitUntil waits for a truthy one.)
  const read = async () => {
    const c = await cameraCounter(page, selector);
    return c == null ? null : { c };
  };
  const { value: { c: first } } = await waitUntil(`${label}: a readable frame counter`, read, timeoutMs);
  const { value: { c: last } } = await waitUntil(`${label}: the frame counter to move on by ${atLeast}`, async () => {
    const r = await read();
    return r && r.c - first >= atLeast ? r : null;
  }, timeoutMs);
  console.log(`${label}: frame counter ${first} -> ${last} (camera ${last >> 20})`);
  assert.equal(first >> 20, camera, `${label}: frames of camera ${camera}`);
  assert.equal(last >> 20, camera, `${label}: frames of camera ${camera}`);
  return { first, last };
}
