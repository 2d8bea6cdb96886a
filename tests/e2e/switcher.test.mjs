// The /switcher page in Chromium: the two test cameras and a guest who joins from /guest_join
// appear as inputs with live previews; the operator puts the guest in preview with a key and
// cuts with Space; the program monitor (playing the `program` stream itself) shows the guest's
// picture; a second operator's page shows the same tallies; refusals and fallback are
// explained; REMOTE mode with ?play=hls previews over LL-HLS (run after the LOCAL pages are closed: the shared
// 2-core machine cannot decode a dozen videos in two browsers in real time); a protected
// switcher takes ?token=.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import {
  assertPlaying, screenshot, screenshotDir, smallCameraArgs, videoSample, waitUntil, watchConsole,
} from './lib/pages.mjs';

let server;
let browser;
let op1;        // the first operator's /switcher
let op2;        // a second operator's /switcher, open at the same time
let guest;      // /guest_join
const errors = [];

before(async () => {
  server = await startServer(smallCameraArgs());
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(path, tag, size = { width: 1280, height: 860 }) {
  const page = await browser.newPage();
  await page.setViewportSize(size);
  const pageErrors = watchConsole(page, tag);
  page.on('close', () => errors.push(...pageErrors));
  await page.goto(`${server.base}${path}`);
  return page;
}

async function switcherState(base = server.base, headers = {}) {
  return (await fetch(`${base}/api/switcher`, { headers })).json();
}

const input = (name) => `.input[data-stream="${name}"]`;
const tallies = (page) => page.$$eval('.input', (list) => Object.fromEntries(list.map((e) => [e.dataset.stream,
  `${e.dataset.program === 'true' ? 'PGM' : ''}${e.dataset.preview === 'true' ? 'PVW' : ''}${e.dataset.pending === 'true' ? 'CUT' : ''}` || '-'])));

/** Mean absolute luma difference of two samples (same 160x90 grid). */
const lumaDistance = (a, b) => a.luma.reduce((sum, y, i) => sum + Math.abs(y - b.luma[i]), 0) / a.luma.length;

test('the switcher lists the cameras with live previews and takes one to program', async () => {
  const opened = Date.now();
  op1 = await open('/switcher', 'op1');
  assert.equal(await op1.textContent('#mode'), 'LOCAL · WebRTC/WHEP');
  assert.match(await op1.$eval('#log', (e) => e.textContent), /Access mode: LOCAL \(using WebRTC\/WHEP\)/);
  for (const name of ['cam0', 'cam1']) {
    await op1.waitForSelector(`${input(name)}[data-state="live"]`, { timeout: 15000 });
  }
  console.log(`switcher load -> both camera previews playing: ${Date.now() - opened} ms`);
  assert.deepEqual(await op1.evaluate(() => window.r58switcher.order), ['cam0', 'cam1']);
  assert.deepEqual(await op1.$$eval('.input-key', (k) => k.map((e) => e.textContent)), ['1', '2']);
  // The key sits beside the name, below the picture (whose top left carries the camera's clock).
  assert.deepEqual(await op1.$$eval('.input', (list) => list.filter((i) => i.querySelector('.input-key').getBoundingClientRect().top
    < i.querySelector('video').getBoundingClientRect().bottom).map((i) => i.dataset.stream)), [], 'keys on the picture');
  await assertPlaying(assert, op1, `${input('cam0')} video`, 'cam0 input preview');
  await op1.waitForTimeout(1200);
  const stats = await op1.$eval(`${input('cam0')} .input-stats`, (e) => e.textContent);
  assert.match(stats, /640×360/, stats);
  assert.match(stats, /\d(\.\d)? (k|M)bit\/s/, stats);
  // Nothing on program yet, and the page says so instead of spinning.
  assert.equal(await op1.getAttribute('#program-monitor', 'data-state'), 'idle');
  assert.match(await op1.textContent('#program-monitor .monitor-message'), /Nothing on program yet/);
  assert.equal(await op1.isDisabled('#cut-btn'), true);
  await screenshot(op1, 'switcher-initial');

  await op1.click(`${input('cam0')} .take`);
  // The cut is often taken (17 ms for a camera) before Take's answer arrives: the page must
  // keep the newer state from the events, not the answer's pending one.
  await op1.waitForSelector(`${input('cam0')}[data-program="true"]`, { timeout: 10000 });
  assert.equal((await switcherState()).program, 'cam0');
  await op1.waitForSelector('#program-monitor[data-state="live"]', { timeout: 15000 });
  await assertPlaying(assert, op1, '#program-monitor video', 'program (cam0)');
  assert.equal(await op1.textContent('#program-monitor .monitor-source'), 'cam0');
});

test('a guest who joins appears in the inputs, is previewed with a key and cut with Space', async () => {
  guest = await open('/guest_join', 'guest');
  await guest.fill('#name', 'guest1');
  const clicked = Date.now();
  await guest.click('#join-btn');
  await guest.waitForFunction(
    () => document.getElementById('status').textContent === 'Connected as guest1! You are now live.',
    null, { timeout: 15000 });
  await op1.waitForSelector(input('guest1'), { timeout: 10000 });
  console.log(`Join Stream -> guest1 in the switcher's inputs: ${Date.now() - clicked} ms`);
  await op1.waitForSelector(`${input('guest1')}[data-state="live"]`, { timeout: 15000 });
  assert.deepEqual(await op1.evaluate(() => window.r58switcher.order), ['cam0', 'cam1', 'guest1']);
  assert.equal(await op1.textContent(`${input('guest1')} .input-kind`), 'guest');
  assert.equal(await op1.textContent(`${input('guest1')} .input-key`), '3');
  await assertPlaying(assert, op1, `${input('guest1')} video`, 'guest1 input preview');

  // A second operator's page, open at the same time.
  op2 = await open('/switcher', 'op2');
  await op2.waitForSelector(`${input('guest1')}[data-state="live"]`, { timeout: 15000 });
  assert.deepEqual(await tallies(op2), { cam0: 'PGM', cam1: '-', guest1: '-' });

  // Key 3: guest1 to preview; the preview monitor shows it, on both pages.
  await op1.keyboard.press('3');
  await op1.waitForSelector(`${input('guest1')}[data-preview="true"]`, { timeout: 5000 });
  await op1.waitForSelector('#preview-monitor[data-state="live"]', { timeout: 10000 });
  assert.equal(await op1.textContent('#preview-monitor .monitor-source'), 'guest1');
  await assertPlaying(assert, op1, '#preview-monitor video', 'preview monitor (guest1)');
  const synced = Date.now();
  await op2.waitForSelector(`${input('guest1')}[data-preview="true"]`, { timeout: 5000 });
  console.log(`preview tally on the second page after ${Date.now() - synced} ms`);
  assert.equal(await op1.isDisabled('#cut-btn'), false);
  await screenshot(op1, 'switcher-guest-in-preview');

  // Space: cut. The program goes to guest1 on its next keyframe; cam0 comes to preview.
  // Each page notes when its guest1 tally turns red (one clock: same machine).
  for (const page of [op1, op2]) {
    await page.evaluate(() => {
      const target = document.querySelector('.input[data-stream="guest1"]');
      new MutationObserver(() => {
        if (target.dataset.program === 'true') window.programTallyAt ??= Date.now();
      }).observe(target, { attributes: true, attributeFilter: ['data-program'] });
    });
  }
  const cutAt = Date.now();
  await op1.keyboard.press('Space');
  const { ms } = await waitUntil('program = guest1', async () => (await switcherState()).program === 'guest1', 10000);
  console.log(`Space -> /api/switcher program = guest1: ${ms} ms`);
  await op1.waitForSelector(`${input('guest1')}[data-program="true"]`, { timeout: 5000 });
  await op1.waitForSelector(`${input('cam0')}[data-preview="true"]`, { timeout: 5000 });
  const s = await switcherState();
  assert.equal(s.preview, 'cam0', 'swap: the old program is in preview');
  const cut = s.history.at(-1);
  assert.equal(cut.from, 'cam0');
  assert.equal(cut.to, 'guest1');
  assert.equal(cut.forced, false);
  console.log(`cut cam0 -> guest1: latency ${cut.latency_ms.toFixed(1)} ms (server: request -> guest1's keyframe on program)`);
  // The history shows it with its latency.
  await op1.waitForFunction(() => /cam0 → guest1/.test(document.querySelector('#history li')?.textContent ?? ''));
  assert.match(await op1.textContent('#history li'), /cam0 → guest1\d+(\.\d)? ms/);
  assert.match(await op1.textContent('#cut-latency'), /^Last cut \d+ ms · median \d+ ms \(\d+\)$/);

  // The second page's tallies follow at once (events, not polling by the page).
  await op2.waitForFunction(() => document.querySelector('.input[data-stream="guest1"]').dataset.program === 'true',
    null, { timeout: 3000 });
  await op2.waitForFunction(() => document.querySelector('.input[data-stream="cam0"]').dataset.preview === 'true',
    null, { timeout: 3000 });
  assert.deepEqual(await tallies(op2), { cam0: 'PVW', cam1: '-', guest1: 'PGM' });
  const [red1, red2] = [await op1.evaluate(() => window.programTallyAt), await op2.evaluate(() => window.programTallyAt)];
  console.log(`Space -> guest1's tally red: ${red1 - cutAt} ms on the operator's page, ${red2 - cutAt} ms on the second page`);
  assert.deepEqual(await tallies(op1), await tallies(op2));

  // The program monitor shows the guest's picture, not a camera's.
  await op1.waitForFunction(() => document.querySelector('#program-monitor .monitor-source').textContent === 'guest1');
  await op1.waitForTimeout(1500);
  await assertPlaying(assert, op1, '#program-monitor video', 'program (guest1)');
  // The guest's Chromium changes its sending size as it goes (it starts at 960x540 and steps up
  // to 1280x720 as its bandwidth estimate grows; on a busy machine it may step down), and
  // program and preview each decode on their own, so one may show the new size a moment before
  // the other: look until both show the same size (they normally do at the first look).
  const sample = async () => [
    await videoSample(op1, '#program-monitor video'),
    await videoSample(op1, `${input('guest1')} video`),
    await videoSample(op1, `${input('cam0')} video`),
  ];
  let [pgm, gst, cam] = await sample();
  for (let look = 1; look < 10 && (pgm.width !== gst.width || pgm.height !== gst.height); look += 1) {
    console.log(`look ${look}: program ${pgm.width}x${pgm.height}, guest1 ${gst.width}x${gst.height}; looking again`);
    await op1.waitForTimeout(500);
    [pgm, gst, cam] = await sample();
  }
  console.log(`program ${pgm.width}x${pgm.height}, guest1 ${gst.width}x${gst.height}, cam0 ${cam.width}x${cam.height}; `
    + `luma distance program-guest1 ${lumaDistance(pgm, gst).toFixed(1)}, program-cam0 ${lumaDistance(pgm, cam).toFixed(1)}`);
  assert.deepEqual([pgm.width, pgm.height], [gst.width, gst.height], 'program has the guest\'s picture size');
  assert.notDeepEqual([pgm.width, pgm.height], [cam.width, cam.height], 'the fake camera and cam0 differ in size');
  assert.ok(lumaDistance(pgm, gst) < lumaDistance(pgm, cam) / 2,
    'the program picture looks like the guest\'s preview, not like cam0');
  await screenshot(op1, 'switcher-guest-on-program');
  await screenshot(op2, 'switcher-second-operator');

  // Enter cuts too (back to cam0, now in preview), and the swap puts guest1 back in preview.
  await op1.keyboard.press('Enter');
  await waitUntil('program = cam0', async () => (await switcherState()).program === 'cam0', 10000);
  await op2.waitForFunction(() => document.querySelector('.input[data-stream="cam0"]').dataset.program === 'true',
    null, { timeout: 3000 });
  await op1.waitForSelector(`${input('guest1')}[data-preview="true"]`, { timeout: 5000 });
  // Program audio pinned to the guest's microphone while cam0 (no microphone) is on program.
  assert.deepEqual(await op1.$$eval('#audio option', (o) => o.map((e) => [e.value, e.disabled])),
    [['', false], ['cam0', true], ['cam1', true], ['guest1', false]], 'cameras without audio cannot be chosen');
  await op1.selectOption('#audio', 'guest1');
  await waitUntil('audio pinned', async () => (await switcherState()).audio_pin === 'guest1', 5000);
  await op2.waitForFunction(() => document.getElementById('audio').value === 'guest1', null, { timeout: 3000 });
  await op2.waitForFunction(() => /on program/.test(document.querySelector('.input[data-stream="guest1"] .stat-audio').textContent),
    null, { timeout: 3000 });
  await screenshot(op2, 'switcher-audio-pinned');
  await op2.selectOption('#audio', '');
  await waitUntil('audio follows video', async () => (await switcherState()).audio_pin === null, 5000);
  await op1.waitForFunction(() => document.getElementById('audio').value === '', null, { timeout: 3000 });
  // And the second operator cuts back with the button.
  await op2.click('#cut-btn');
  await op1.waitForSelector(`${input('guest1')}[data-program="true"]`, { timeout: 10000 });
  assert.equal((await switcherState()).program, 'guest1');
});

test('refusals are explained: an incompatible source (422) and a source that is gone (404)', async () => {
  // A VP8-only publisher: live, but the program carries H.264 only.
  const vp8 = await browser.newPage();
  await vp8.goto(`${server.base}/static/favicon.svg`);
  const status = await vp8.evaluate(async () => {
    const media = await navigator.mediaDevices.getUserMedia({ video: true });
    const pc = new RTCPeerConnection();
    const t = pc.addTransceiver(media.getVideoTracks()[0], { direction: 'sendonly' });
    t.setCodecPreferences(RTCRtpSender.getCapabilities('video').codecs.filter((c) => /VP8/i.test(c.mimeType)));
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
    const r = await fetch('/whip/vp8cam', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    window.keep = pc;
    return r.status;
  });
  assert.equal(status, 201);
  await op1.waitForSelector(input('vp8cam'), { timeout: 10000 });
  await op1.waitForFunction(() => /Cannot go to program: .*VP8/.test(document.querySelector('.input[data-stream="vp8cam"] .input-problem').textContent),
    null, { timeout: 5000 });
  assert.equal(await op1.isDisabled(`${input('vp8cam')} .take`), true);
  // Selecting it anyway (key 4) gets the server's 422 and its reason on the page.
  assert.equal(await op1.textContent(`${input('vp8cam')} .input-key`), '4');
  await op1.keyboard.press('4');
  await op1.waitForSelector('#alert:not([hidden])', { timeout: 5000 });
  const refusal = await op1.textContent('#alert');
  console.log(`422 on the page: ${refusal}`);
  assert.match(refusal, /^Cannot preview "vp8cam": .*VP8.* \(422\)\.$/);
  await screenshot(op1, 'switcher-incompatible-422');

  // Take on a source that just went away: 404 with the server's reason.
  await op1.evaluate(() => window.r58switcher.take('left-a-second-ago'));
  await op1.waitForFunction(() => /404/.test(document.getElementById('alert').textContent));
  assert.match(await op1.textContent('#alert'), /^Cannot cut to "left-a-second-ago": it is not live any more \(404\)\. .+/);
  assert.equal((await switcherState()).program, 'guest1', 'nothing changed');
  await vp8.close();
  await op1.waitForSelector(input('vp8cam'), { state: 'detached', timeout: 10000 });
});

test('on a phone the switcher fits the width and keeps working', async () => {
  await op2.setViewportSize({ width: 390, height: 844 });
  await op2.waitForTimeout(500);
  const [pvw, pgm] = await op2.$$eval('.monitor', (m) => m.map((e) => e.getBoundingClientRect().toJSON()));
  assert.ok(pgm.left >= pvw.right && pgm.top === pvw.top, 'two small monitors side by side');
  assert.ok(pvw.width > 150 && pgm.right <= 390, `monitors ${pvw.width} px wide`);
  // Cut spans the width; inputs in two columns.
  const cutWidth = await op2.$eval('#cut-btn', (b) => b.getBoundingClientRect().width);
  assert.ok(cutWidth > 300, `Cut is ${cutWidth} px wide`);
  const lefts = await op2.$$eval('.input', (l) => l.map((e) => Math.round(e.getBoundingClientRect().left)));
  assert.equal(new Set(lefts).size, 2, `two columns of inputs: ${lefts}`);
  const overflow = await op2.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling (${overflow} px)`);
  // Keys work there too, and the first operator sees it.
  await op2.keyboard.press('2');
  await op1.waitForSelector(`${input('cam1')}[data-preview="true"]`, { timeout: 5000 });
  await op2.waitForSelector('#preview-monitor[data-state="live"]', { timeout: 10000 });
  await screenshot(op2, 'switcher-phone');
  await op2.screenshot({ path: join(screenshotDir, 'switcher-phone-full.png'), fullPage: true });
});

test('an input scrolled out of view stops its preview (its WHEP session ends) and resumes when back', async () => {
  // op2 is a phone; cam1 is in preview (its input keeps playing for the preview monitor).
  const viewers = async (name) => (await (await fetch(`${server.base}/api/streams`)).json()).find((s) => s.name === name).viewers;
  const before = await viewers('cam0');
  const previewViewers = await viewers('cam1');
  await op2.setViewportSize({ width: 390, height: 300 });
  await op2.evaluate(() => window.scrollTo(0, 0));
  await op2.waitForSelector(`${input('cam0')}[data-state="paused"]`, { timeout: 10000 });
  assert.match(await op2.textContent(`${input('cam0')} .input-message`), /Paused \(scrolled out of view\)/);
  assert.equal(await op2.getAttribute(`${input('cam1')}`, 'data-state'), 'live', 'the preview source plays on');
  assert.equal(await viewers('cam1'), previewViewers, 'its session stays');
  await op2.waitForSelector('#preview-monitor[data-state="live"]');
  await waitUntil('cam0 loses a viewer', async () => (await viewers('cam0')) === before - 1, 5000);
  await op2.$eval(input('cam0'), (e) => e.scrollIntoView());
  await op2.waitForSelector(`${input('cam0')}[data-state="live"]`, { timeout: 10000 });
  assert.equal(await viewers('cam0'), before);
  await op2.setViewportSize({ width: 1280, height: 860 });
});

test('when the guest on program leaves, the program falls back to cam0 and both pages say so', async () => {
  assert.equal((await switcherState()).program, 'guest1');
  await guest.click('#leave-btn');
  for (const page of [op1, op2]) {
    await page.waitForFunction(() => /went away: the program fell back to "cam0"/.test(document.getElementById('alert').textContent),
      null, { timeout: 10000 });
    await page.waitForSelector(`${input('cam0')}[data-program="true"]`, { timeout: 5000 });
    await page.waitForSelector(input('guest1'), { state: 'detached', timeout: 10000 });
  }
  const s = await switcherState();
  assert.equal(s.program, 'cam0');
  assert.equal(s.history.at(-1).reason, 'fallback');
  assert.match(await op1.textContent('#history li'), /guest1 → cam0.*fallback/);
  await op1.waitForSelector('#program-monitor[data-state="live"]', { timeout: 10000 });
  await assertPlaying(assert, op1, '#program-monitor video', 'program after fallback');
  await screenshot(op1, 'switcher-fallback');
  for (const page of [op1, op2, guest]) await page.close();
  assert.deepEqual(errors, [], 'no page errors or CSP violations');
});

test('REMOTE mode with ?play=hls previews the inputs and the program over LL-HLS, never WebRTC', async () => {
  const host = 'studio.r58.test';
  const origin = server.base.replace('127.0.0.1', host);
  const remote = await launchChromium([`--host-resolver-rules=MAP ${host} 127.0.0.1`,
    `--unsafely-treat-insecure-origin-as-secure=${origin}`]);
  try {
    const page = await remote.newPage();
    await page.setViewportSize({ width: 1280, height: 860 });
    const pageErrors = watchConsole(page, 'remote');
    const whep = [];
    page.on('request', (r) => { if (r.url().includes('/whep/')) whep.push(r.url()); });
    await page.goto(`${origin}/switcher?play=hls`);
    assert.equal(await page.textContent('#mode'), 'REMOTE · HLS');
    for (const name of ['cam0', 'cam1']) {
      await page.waitForSelector(`${input(name)}[data-state="live"]`, { timeout: 30000 });
    }
    await page.waitForSelector('#program-monitor[data-state="live"]', { timeout: 30000 });
    // Five hls.js players in one page on a shared 2-core machine: a longer look than on WHEP.
    await assertPlaying(assert, page, `${input('cam1')} video`, 'cam1 input over HLS', 3000);
    await assertPlaying(assert, page, '#program-monitor video', 'program over HLS', 3000);
    const s = await switcherState();
    assert.deepEqual(await tallies(page), { cam0: 'PGM', cam1: s.preview === 'cam1' ? 'PVW' : '-' }, 'the server\'s tallies');
    assert.equal(await page.textContent('#program-monitor .monitor-source'), 'cam0');
    await page.waitForTimeout(1200);
    const behind = await page.textContent('#program-monitor .monitor-latency');
    assert.match(behind, /^\d+\.\d s behind live$/);
    await page.waitForTimeout(6000);
    // A busy machine decodes slower than real time; the switcher's players then jump to live.
    const { later, jumps, byDate } = await page.evaluate(() => {
      const handle = window.r58switcher.program.player.player.handle;
      return {
        later: document.querySelector('#program-monitor .monitor-latency').textContent,
        jumps: handle.jumps(),
        byDate: handle.playingDate() ? Date.now() - handle.playingDate().getTime() : null,
      };
    });
    console.log(`REMOTE program monitor: ${behind}, 6 s later ${later} (${byDate} ms by PROGRAM-DATE-TIME), ${jumps} jump(s) to live`);
    await screenshot(page, 'switcher-remote');
    assert.deepEqual(whep, [], 'no WHEP session in REMOTE mode with ?play=hls');
    assert.deepEqual(pageErrors, []);
  } finally {
    await remote.close();
  }
});

test('?previews=1 plays only the first input and says why the others are dark', async () => {
  const post = (what, source) => fetch(`${server.base}/api/switcher/${what}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ source }),
  });
  assert.equal((await post('preview', null)).status, 200);
  const page = await open('/switcher?previews=1', 'limited');
  await page.waitForSelector(`${input('cam0')}[data-state="live"]`, { timeout: 15000 });
  await page.waitForSelector(`${input('cam1')}[data-state="paused"]`, { timeout: 5000 });
  assert.equal(await page.textContent(`${input('cam1')} .input-message`), 'Preview off: at most 1 live preview at once');
  await page.waitForTimeout(1500);
  assert.equal(await page.getAttribute(input('cam1'), 'data-state'), 'paused', 'and it stays so');
  await screenshot(page, 'switcher-preview-limit');
  // The preview source comes first: the preview monitor shows its stream.
  assert.equal((await post('preview', 'cam1')).status, 200);
  await page.waitForSelector(`${input('cam1')}[data-state="live"]`, { timeout: 15000 });
  await page.waitForSelector(`${input('cam0')}[data-state="paused"]`, { timeout: 5000 });
  await page.waitForSelector('#preview-monitor[data-state="live"]', { timeout: 10000 });
  await page.close();
});

test('a switcher protected by [[auth]] explains the missing token and works with ?token=', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'r58-e2e-switcher-auth-'));
  const config = join(dir, 'r58.toml');
  writeFileSync(config, '[test_cameras]\ncount = 1\nwidth = 320\nheight = 180\nfps = 10\n'
    + '[[auth]]\npath = "/api/switcher*"\ntoken = "op-7f3a"\n');
  const locked = await startServer(['--config', config, '--test-cameras', '1']);
  try {
    const page = await browser.newPage();
    watchConsole(page, 'locked');
    await page.goto(`${locked.base}/switcher`);
    await page.waitForFunction(() => /operator token \(401\)/.test(document.getElementById('alert').textContent),
      null, { timeout: 10000 });
    assert.equal(await page.textContent('#alert'),
      'This switcher needs an operator token (401): open the page with ?token=… .');

    await page.goto(`${locked.base}/switcher?token=op-7f3a`);
    await page.waitForSelector(`${input('cam0')}[data-state="live"]`, { timeout: 15000 });
    const posted = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/api/switcher/program'));
    await page.click(`${input('cam0')} .take`);
    assert.equal((await posted).headers().authorization, 'Bearer op-7f3a');
    await page.waitForSelector(`${input('cam0')}[data-program="true"]`, { timeout: 10000 });
    assert.equal((await switcherState(locked.base, { Authorization: 'Bearer op-7f3a' })).program, 'cam0');
    await page.close();
  } finally {
    await locked.stop();
  }
});
