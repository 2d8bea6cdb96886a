// The /recordings page in Chromium against real recordings: the server records test camera
// cam0 twice (two files, two sessions), the page lists them by session and stream with start,
// duration and size; one plays in the page's <video> from the file route (HTTP Range), showing
// decoded frames of cam0 (the frame counter drawn in the picture, read back), seeks (the time
// and the counter jump, and it plays on), downloads (the bytes equal the file's), and the other
// is deleted (gone from the list and the disk). The REC control on the switcher and the
// multiview follows starts and stops made there or by another client, and the disk guard's
// stop; without admin rights the page says why it shows nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import { cameraCounter, screenshot, smallCameraArgs, waitUntil, watchConsole } from './lib/pages.mjs';

const FPS = 15; // smallCameraArgs' cameras
let server;
let browser;
let dir;

async function api(method, path, body) {
  const r = await fetch(`${server.base}${path}`, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
  return r;
}

/** Records cam0 for `ms` and stops: one finished file. */
async function record(ms) {
  await api('POST', '/api/recordings/start', { stream: 'cam0' });
  await new Promise((r) => setTimeout(r, ms));
  await api('POST', '/api/recordings/stop', { stream: 'cam0' });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'r58-e2e-recordings-'));
  server = await startServer(smallCameraArgs(`[recording]\ndir = "${dir}"\nstreams = ["cam0"]\nmin_free_bytes = 104857600\nmin_free_percent = 0\n`));
  await waitUntil('cam0 live', async () => (await (await fetch(`${server.base}/api/streams`)).json())
    .some((s) => s.name === 'cam0'), 10000);
  await record(8000);
  // Another session: three seconds later (the page joins files less than a second apart).
  await new Promise((r) => setTimeout(r, 3000));
  await record(3000);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the recordings page lists, plays, seeks, downloads and deletes recordings', async () => {
  const listed = (await (await api('GET', '/api/recordings')).json()).files;
  assert.equal(listed.length, 2, JSON.stringify(listed));
  const [long, short] = listed; // oldest first

  const page = await browser.newPage();
  const errors = watchConsole(page, 'recordings');
  await page.goto(`${server.base}/recordings`);
  await page.waitForFunction(() => window.r58recordings?.files.length === 2, null, { timeout: 10000 });

  // Two sessions, newest first, each with cam0's file.
  const sessions = await page.$$eval('section.rec-session', (boxes) => boxes.map((b) => ({
    session: b.dataset.session,
    title: b.querySelector('h2').textContent,
    files: [...b.querySelectorAll('tr[data-file]')].map((tr) => tr.dataset.file),
  })));
  console.log('sessions:', JSON.stringify(sessions));
  assert.deepEqual(sessions.map((x) => x.files), [[short.file], [long.file]]);
  assert.match(sessions[1].title, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC · 0:0\d · cam0$/);
  // Listed under its stream, newest first, with start, duration and size.
  const rows = await page.$$eval('section.rec-stream[data-stream="cam0"] tbody tr',
    (trs) => trs.map((tr) => ({ file: tr.dataset.file, cells: [...tr.cells].slice(0, 3).map((td) => td.textContent) })));
  console.log('rows:', JSON.stringify(rows));
  assert.deepEqual(rows.map((r) => r.file), [short.file, long.file]);
  const seconds = (label) => { const [m, s] = label.split(':').map(Number); return m * 60 + s; };
  const longRow = rows[1].cells;
  assert.match(longRow[0], /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
  assert.ok(seconds(longRow[1]) >= 6 && seconds(longRow[1]) <= 9, `duration of an 8 s recording: ${longRow[1]}`);
  assert.ok(seconds(rows[0].cells[1]) >= 1 && seconds(rows[0].cells[1]) <= 4, `duration of a 3 s recording: ${rows[0].cells[1]}`);
  assert.match(longRow[2], /^\d+(\.\d)? (KB|MB)$/);

  // Play the long one: time advances and the frames shown are cam0's, counting up.
  const row = (file) => `tr[data-file="${file}"]`;
  await page.click(`${row(long.file)} button.play`);
  await page.waitForFunction(() => window.r58recordings.video.currentTime > 0.5, null, { timeout: 10000 });
  const readCounter = async () => {
    const c = await cameraCounter(page, '#player');
    return c == null ? null : { c };
  };
  const { value: { c: early } } = await waitUntil('a readable frame counter', readCounter, 5000);
  const earlyTime = await page.evaluate(() => window.r58recordings.video.currentTime);
  assert.equal(early >> 20, 0, `frames of cam0 (counter ${early})`);
  console.log(`playing: counter ${early} at ${earlyTime.toFixed(2)} s`);

  // Seek ahead: currentTime jumps, the picture is the frame of that time, and it plays on.
  await page.evaluate(() => { window.r58recordings.video.pause(); });
  const target = 5.5;
  const seekedTo = await page.evaluate((t) => new Promise((resolve) => {
    const v = window.r58recordings.video;
    v.addEventListener('seeked', () => resolve(v.currentTime), { once: true });
    v.currentTime = t;
  }), target);
  assert.ok(Math.abs(seekedTo - target) < 0.5, `seeked to ${seekedTo}, asked ${target}`);
  const { value: { c: afterSeek } } = await waitUntil('a readable counter after the seek', readCounter, 5000);
  const expected = early + Math.round((seekedTo - earlyTime) * FPS);
  console.log(`seeked to ${seekedTo.toFixed(2)} s: counter ${afterSeek}, expected about ${expected}`);
  assert.ok(Math.abs(afterSeek - expected) <= FPS / 2, `counter ${afterSeek} after seeking to ${seekedTo} (expected about ${expected})`);
  await page.evaluate(() => window.r58recordings.video.play());
  await page.waitForFunction((t) => window.r58recordings.video.currentTime > t + 0.5, seekedTo, { timeout: 5000 });
  const { value: { c: later } } = await waitUntil('the counter to move on after the seek',
    async () => { const r = await readCounter(); return r && r.c > afterSeek ? r : null; }, 5000);
  console.log(`plays on: counter ${later}`);
  await screenshot(page, 'recordings');

  // Download: the bytes the browser saved are the file's.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click(`${row(long.file)} a.download`),
  ]);
  assert.equal(download.suggestedFilename(), long.file);
  const saved = readFileSync(await download.path());
  const onDisk = readFileSync(join(dir, 'cam0', long.file));
  assert.equal(saved.length, onDisk.length, 'downloaded size');
  assert.ok(saved.equals(onDisk), 'downloaded bytes equal the file');

  // Delete the short one (after the confirmation): gone from the list and the disk.
  const shortPath = join(dir, 'cam0', short.file);
  assert.ok(existsSync(shortPath));
  page.once('dialog', (d) => d.accept());
  await page.click(`${row(short.file)} button.delete`);
  await page.waitForFunction((f) => !document.querySelector(`tr[data-file="${f}"]`), short.file, { timeout: 5000 });
  assert.equal(existsSync(shortPath), false, 'deleted from the disk');
  assert.ok(existsSync(join(dir, 'cam0', long.file)), 'the other recording stays');
  assert.equal(await page.$eval('#alert', (a) => a.hidden), true, 'no error shown');
  assert.deepEqual(errors, []);
  await page.close();
});

test("the switcher's record buttons (all, one input) and REC tally follow start and stop, from the page and from elsewhere", async () => {
  const page = await browser.newPage();
  const errors = watchConsole(page, 'switcher');
  await page.goto(`${server.base}/switcher?previews=0`);
  const rec = () => page.evaluate(() => {
    const box = document.getElementById('rec');
    return {
      shown: !box.hidden,
      recording: box.dataset.recording,
      tally: getComputedStyle(document.getElementById('rec-tally')).display !== 'none',
      button: document.getElementById('rec-btn').textContent,
      disk: document.getElementById('rec-disk').textContent,
      cam0: document.querySelector('.input[data-stream="cam0"]')?.dataset.rec,
    };
  });
  const status = async () => (await (await api('GET', '/api/recordings')).json()).status.recording;
  const until = (what, want) => waitUntil(what, async () => {
    const r = await rec();
    return Object.entries(want).every(([k, v]) => r[k] === v) ? r : null;
  }, 10000);

  const idle = (await until('the REC control, idle', { shown: true, recording: 'false', tally: false })).value;
  assert.equal(idle.button, 'Record all');
  assert.match(idle.disk, /free for recordings$/);

  // The button records every configured input: the tally goes red, cam0's input says REC.
  await page.click('#rec-btn');
  const on = (await until('the tally on after the button', { recording: 'true', tally: true, cam0: 'true' })).value;
  console.log(`recording: ${JSON.stringify(on)}`);
  assert.equal(on.button, 'Stop recording');
  assert.match(on.disk, /free for recordings/);
  assert.equal(await status(), true);
  await screenshot(page, 'switcher-rec');

  // Stopped and started by another client: the tally follows the server's events.
  await api('POST', '/api/recordings/stop');
  await until('the tally off after a stop elsewhere', { recording: 'false', tally: false, cam0: 'false', button: 'Record all' });
  await api('POST', '/api/recordings/start');
  await until('the tally on after a start elsewhere', { recording: 'true', tally: true, button: 'Stop recording' });

  // The button stops everything.
  await page.click('#rec-btn');
  await until('the tally off after the button', { recording: 'false', tally: false });
  assert.equal(await status(), false);

  // An input's own button records that stream only, and stops it again.
  const cam0Button = '.input[data-stream="cam0"] .rec-one';
  assert.equal(await page.$eval(cam0Button, (b) => b.textContent), 'Rec');
  await page.click(cam0Button);
  await until("cam0's own recording on", { recording: 'true', tally: true, cam0: 'true' });
  assert.equal(await page.$eval(cam0Button, (b) => b.getAttribute('aria-pressed')), 'true');
  const one = (await (await api('GET', '/api/recordings')).json()).status;
  assert.deepEqual(one.streams.map((s) => s.name), ['cam0']);
  assert.equal(await page.$eval('.input[data-stream="cam1"] .rec-one', (b) => b.textContent), 'Rec', 'cam1 not recorded');
  await page.click(cam0Button);
  await until("cam0's own recording off", { cam0: 'false' });
  await waitUntil('cam0 no longer recorded', async () => !(await (await api('GET', '/api/recordings')).json())
    .status.streams.some((s) => s.name === 'cam0'), 5000);
  assert.equal(await page.$eval('#alert', (a) => a.hidden), true, 'no error shown');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the multiview has the same REC control: record all, the tally and the tiles being recorded', async () => {
  const page = await browser.newPage();
  const errors = watchConsole(page, 'multiview');
  // No test needs the pictures here: the tiles' players would only compete for the CPU.
  await page.goto(`${server.base}/`);
  const rec = () => page.evaluate(() => ({
    shown: !document.getElementById('rec').hidden,
    recording: document.getElementById('rec').dataset.recording,
    tally: getComputedStyle(document.getElementById('rec-tally')).display !== 'none',
    cam0: document.querySelector('.tile[data-stream="cam0"]')?.dataset.rec,
    cam0Mark: (() => {
      const mark = document.querySelector('.tile[data-stream="cam0"] .tile-rec');
      return mark ? getComputedStyle(mark).display !== 'none' : null;
    })(),
  }));
  const until = (what, want) => waitUntil(what, async () => {
    const r = await rec();
    return Object.entries(want).every(([k, v]) => r[k] === v) ? r : null;
  }, 10000);
  await until('the REC control, idle', { shown: true, recording: 'false', tally: false });
  await page.click('#rec-btn');
  const on = (await until('the tally on', { recording: 'true', tally: true, cam0: 'true', cam0Mark: true })).value;
  console.log(`multiview recording: ${JSON.stringify(on)}`);
  await screenshot(page, 'multiview-rec');
  await api('POST', '/api/recordings/stop');
  await until('the tally off after a stop elsewhere', { recording: 'false', tally: false, cam0: 'false', cam0Mark: false });
  assert.deepEqual(errors, []);
  await page.close();
});

// Mounting the small file system needs root (as in tests/interop/test_recording.py); CI has it.
const rootOnly = process.getuid?.() === 0 || process.env.CI === 'true' ? false : 'mounting a tmpfs needs root';

test("the disk guard's stop shows on the switcher: the tally goes off and an alert says why", { skip: rootOnly }, async () => {
  const mnt = mkdtempSync(join(tmpdir(), 'r58-e2e-recdisk-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt], { encoding: 'utf8' });
  assert.equal(mounted.status, 0, `mount: ${mounted.stderr}`);
  const reserve = 4 * 2 ** 20;
  let guarded;
  try {
    guarded = await startServer(smallCameraArgs(`[recording]\ndir = "${mnt}"\nstreams = ["cam0"]\n`
      + `min_free_bytes = ${reserve}\nmin_free_percent = 0\nretention = "stop"\n`));
    const page = await browser.newPage();
    watchConsole(page, 'guard');
    await page.goto(`${guarded.base}/switcher?previews=0`);
    await page.waitForFunction(() => !document.getElementById('rec').hidden, null, { timeout: 10000 });
    const r = await fetch(`${guarded.base}/api/recordings/start`, { method: 'POST' });
    assert.equal(r.status, 200, await r.text());
    await page.waitForFunction(() => document.getElementById('rec').dataset.recording === 'true', null, { timeout: 10000 });
    // Something else fills the disk to just above the reserve: the guard stops the recording.
    const { bavail, bsize } = statfsSync(mnt);
    writeFileSync(join(mnt, 'filler'), Buffer.alloc(Math.max(0, bavail * bsize - reserve - 128 * 1024)));
    await page.waitForFunction(() => document.getElementById('rec').dataset.recording === 'false', null, { timeout: 10000 });
    const alert = await page.$eval('#alert', (a) => ({ hidden: a.hidden, text: a.textContent }));
    console.log(`guard's stop: ${JSON.stringify(alert)}`);
    assert.equal(alert.hidden, false);
    assert.match(alert.text, /^Recording stopped: the disk reached its reserve/);
    const status = (await (await fetch(`${guarded.base}/api/recordings`)).json()).status;
    assert.equal(status.recording, false);
    assert.equal(status.events.at(-1).kind, 'disk_low_stopped');
    await screenshot(page, 'switcher-disk-stop');
    await page.close();
  } finally {
    await guarded?.stop();
    spawnSync('umount', ['-l', mnt]);
  }
});

test('without admin rights the page says why it shows nothing', async () => {
  // Its own server whose admin gate lets nobody in without the token.
  const refusing = await startServer(smallCameraArgs(`[admin]\ntoken = "e2e-admin-token-0123456789abcdef"\nallow_without_token = "none"\n`
    + `[recording]\ndir = "${mkdtempSync(join(tmpdir(), 'r58-e2e-recordings-'))}"\n`));
  try {
    const page = await browser.newPage();
    watchConsole(page, 'refused');
    await page.goto(`${refusing.base}/recordings`);
    await page.waitForFunction(() => !document.getElementById('alert').hidden, null, { timeout: 10000 });
    const message = await page.$eval('#alert', (a) => a.textContent);
    console.log(`refusal shown: ${message}`);
    assert.match(message, /^Listing recordings refused \(401\): recordings are for operators with admin rights/);
    assert.equal(await page.$$eval('tr[data-file]', (rows) => rows.length), 0);
    await page.close();
  } finally {
    await refusing.stop();
  }
});
