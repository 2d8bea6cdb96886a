// Sign-in and guest invites in Chromium through a tunnel stand-in: a small proxy in this test
// that adds the forwarding headers a tunnel adds (X-Forwarded-For, CF-Connecting-IP), so r58
// treats every page and request as coming from the internet. An operator is sent to the
// sign-in page, signs in and cuts on the switcher; makes a guest invite there; the guest opens
// the link and goes live under the invited name; revoking the invite cuts the guest off; an
// expired invite link gets a page that says so. The signed-in operator's multiview plays LL-HLS
// through the tunnel under a signed path prefix whose answers a CDN may cache and share.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import { assertPlaying, screenshot, streams, waitUntil, watchConsole } from './lib/pages.mjs';

const root = resolve(import.meta.dirname, '..', '..');
const bin = resolve(root, process.env.R58_BIN ?? 'target/debug/r58');
const PASSWORD = 'operator password 1';

let server;
let tunnel;
let browser;       // the operator's
let guestBrowser;  // the guest's: no cookie of the operator's
let op;
let guest;
let inviteLink;

/** The tunnel stand-in: forwards to `origin`, adding the headers a tunnel daemon adds. */
function startTunnel(origin) {
  const target = new URL(origin);
  const proxy = http.createServer((req, res) => {
    const headers = { ...req.headers, 'x-forwarded-for': '198.51.100.23', 'cf-connecting-ip': '198.51.100.23' };
    const upstream = http.request({
      host: target.hostname, port: target.port, method: req.method, path: req.url, headers,
    }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => { res.destroy(); });
    req.pipe(upstream);
  });
  return new Promise((ok) => proxy.listen(0, '127.0.0.1', () => ok({
    base: `http://127.0.0.1:${proxy.address().port}`,
    close: () => new Promise((done) => { proxy.closeAllConnections(); proxy.close(done); }),
  })));
}

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'r58-e2e-access-'));
  const users = join(dir, 'users.toml');
  const made = spawnSync(bin, ['user', 'add', 'opa', '--role', 'operator', '--file', users],
    { input: `${PASSWORD}\n`, encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const config = join(dir, 'r58.toml');
  writeFileSync(config, '[test_cameras]\ncount = 1\nwidth = 320\nheight = 180\nfps = 15\nbitrate = 300000\n'
    + `[access]\nusers_file = "${users}"\n`);
  server = await startServer(['--config', config, '--test-cameras', '1']);
  tunnel = await startTunnel(server.base);
  // The proxy is plain HTTP on loopback; the session cookie is Secure (a tunnel serves HTTPS).
  const args = [`--unsafely-treat-insecure-origin-as-secure=${tunnel.base}`];
  browser = await launchChromium(args);
  guestBrowser = await launchChromium(args);
});

after(async () => {
  await browser?.close();
  await guestBrowser?.close();
  await tunnel?.close();
  await server?.stop();
});

async function open(path, tag, b = browser) {
  const page = await b.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  watchConsole(page, tag);
  await page.goto(`${tunnel.base}${path}`);
  return page;
}

const switcher = async () => (await fetch(`${server.base}/api/switcher`)).json();

test('an operator from outside is sent to sign in, signs in and cuts', async () => {
  op = await open('/switcher', 'op');
  assert.match(new URL(op.url()).pathname, /^\/login$/);
  // Without a session, the API refuses the tunnel too.
  assert.equal((await fetch(`${tunnel.base}/api/streams`)).status, 401);
  await op.fill('#user', 'opa');
  await op.fill('#password', 'wrong password');
  await op.click('#submit');
  await op.waitForSelector('#error:not([hidden])');
  assert.match(await op.textContent('#error'), /wrong user name or password/);
  await op.fill('#password', PASSWORD);
  await op.click('#submit');
  await op.waitForURL(`${tunnel.base}/switcher`);
  const cookies = await op.context().cookies();
  const session = cookies.find((c) => c.name === 'r58_session');
  assert.ok(session?.httpOnly && session.secure && session.sameSite === 'Strict', JSON.stringify(session));
  await op.waitForSelector('.input[data-stream="cam0"][data-state="live"]', { timeout: 20000 });
  await op.click('.input[data-stream="cam0"] .take');
  await waitUntil('program = cam0', async () => (await switcher()).program === 'cam0', 10000);
  await screenshot(op, 'access-switcher-signed-in');
});

test('a signed-in viewer outside plays LL-HLS under a signed prefix a CDN can share', async () => {
  // Without a session the tunnel gets no playlist at all.
  assert.equal((await fetch(`${tunnel.base}/hls/cam0/index.m3u8`)).status, 401);
  const view = await op.context().newPage();
  watchConsole(view, 'view');
  const hls = [];
  view.on('response', (r) => {
    const path = new URL(r.url()).pathname;
    if (path.startsWith('/hls/')) {
      hls.push({ path, status: r.status(), cache: r.headers()['cache-control'] ?? '' });
    }
  });
  await view.goto(`${tunnel.base}/?mode=remote&play=hls`);
  await view.waitForSelector('.tile[data-stream="cam0"][data-state="live"]', { timeout: 20000 });
  await assertPlaying(assert, view, '.tile[data-stream="cam0"] video', 'cam0 over LL-HLS through the tunnel', 3000);
  // hls.js asked for the plain address, was sent to the signed prefix, and fetched the media
  // playlist and parts under it (relative to where it was sent), with public cache lifetimes.
  const entry = hls.find((h) => h.path === '/hls/cam0/index.m3u8');
  assert.equal(entry?.status, 302, JSON.stringify(hls.slice(0, 3)));
  const signed = hls.filter((h) => /^\/hls\/g\/[^/]+\/cam0\//.test(h.path) && h.status === 200);
  const parts = signed.filter((h) => h.path.endsWith('.m4s') || h.path.endsWith('.mp4'));
  const playlists = signed.filter((h) => h.path.endsWith('.m3u8'));
  assert.ok(parts.length > 0 && playlists.length > 0, JSON.stringify(hls.slice(0, 8)));
  assert.ok(parts.every((h) => /public/.test(h.cache)), JSON.stringify(parts.slice(0, 3)));
  console.log(`LL-HLS through the tunnel: ${playlists.length} playlists and ${parts.length} parts/segments under ${signed[0].path.split('/').slice(0, 4).join('/')}/`);
  await view.close();
});

test('the operator invites a guest, who goes live under the invited name', async () => {
  await op.waitForSelector('#invites:not([hidden])', { timeout: 10000 });
  await op.fill('#invite-name', 'guest7');
  await op.fill('#invite-minutes', '30');
  await op.click('#invite-create');
  await op.waitForSelector('#invite-made:not([hidden])');
  inviteLink = await op.getAttribute('#invite-link', 'href');
  assert.match(inviteLink, /\/guest_join\?invite=[0-9a-f]{64}$/);
  const qr = await op.$eval('#invite-qr', (img) => ({ w: img.naturalWidth, src: img.src.slice(0, 30) }));
  assert.ok(qr.w > 0, `the QR code renders: ${JSON.stringify(qr)}`);
  await op.waitForSelector('#invite-list tr[data-state="live"]');

  guest = await open(new URL(inviteLink).pathname + new URL(inviteLink).search, 'guest', guestBrowser);
  assert.deepEqual((await guestBrowser.cookies()).filter((c) => c.name === 'r58_session'), []);
  await guest.waitForFunction(() => document.getElementById('name').value === 'guest7', null, { timeout: 10000 });
  assert.equal(await guest.$eval('#name', (e) => e.readOnly), true);
  await guest.click('#preview-btn');
  await guest.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: 10000 });
  await guest.click('#join-btn');
  await guest.waitForFunction(() => document.getElementById('status').textContent.includes('You are now live'),
    null, { timeout: 20000 });
  await waitUntil('guest7 online', async () => (await streams(server.base)).some((s) => s.name === 'guest7' && s.online), 10000);
  await op.waitForSelector('.input[data-stream="guest7"]', { timeout: 10000 });
  await screenshot(guest, 'access-guest-live');
});

test('revoking the invite cuts the guest off at once', async () => {
  const revoked = Date.now();
  await op.click('#invite-list tr[data-state="live"] .invite-revoke');
  const { ms } = await waitUntil('guest7 offline',
    async () => !(await streams(server.base)).some((s) => s.name === 'guest7' && s.online), 5000);
  console.log(`Revoke -> guest7 off the air: ${ms} ms (click to check ${Date.now() - revoked} ms)`);
  await op.waitForSelector('#invite-list tr[data-state="revoked"]');
  // The link is dead now.
  const page = await open(new URL(inviteLink).pathname + new URL(inviteLink).search, 'after-revoke', guestBrowser);
  assert.match(await page.textContent('#invite-refused'), /revoked/);
  await page.close();
});

test('an expired invite link gets a clear page', async () => {
  // Made from the LAN (the admin gate lets the box itself in) for about a second.
  const r = await fetch(`${server.base}/api/invites`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'late', minutes: 0.02 }),
  });
  assert.equal(r.status, 201);
  const { link } = await r.json();
  await new Promise((done) => setTimeout(done, 1500));
  const page = await open(link, 'expired', guestBrowser);
  assert.equal(await page.textContent('#invite-refused'), 'this invite link has expired');
  await screenshot(page, 'access-invite-expired');
  await page.close();
});
