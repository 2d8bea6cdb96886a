// HTTPS on the LAN out of the box ([tls] auto, docs/lan.md): the server makes its local CA and
// a certificate for r58.local and its addresses (here loopback only). A Chromium that trusts
// that CA (added with certutil to a fresh NSS db in the HOME it runs with) opens
// https://r58.local:<port>/guest_join, r58.local mapped to 127.0.0.1 by a host-resolver rule,
// and publishes; a Chromium without the CA is refused the page. /ca.crt hands out the CA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort, startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import { streams, waitUntil, watchConsole } from './lib/pages.mjs';

const dir = mkdtempSync(join(tmpdir(), 'r58-lan-https-'));
let server;
let httpsPort;
const browsers = [];

/** A HOME for Chromium with a fresh NSS db, holding `caFile` as a trusted CA when given. */
function chromiumHome(name, caFile) {
  const home = join(dir, name);
  const db = join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  if (caFile) {
    execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'r58 local CA', '-t', 'C,,', '-i', caFile]);
  }
  return { ...process.env, HOME: home };
}

async function browserFor(home) {
  const browser = await launchChromium(
    ['--host-resolver-rules=MAP r58.local 127.0.0.1'], { env: home });
  browsers.push(browser);
  return browser;
}

before(async () => {
  httpsPort = await freeTcpPort('127.0.0.1');
  const config = join(dir, 'r58.toml');
  writeFileSync(config, [
    '[tls]',
    'auto = true',
    `https_listen = "127.0.0.1:${httpsPort}"`,
    `dir = "${join(dir, 'tls')}"`,
  ].join('\n'));
  server = await startServer(['--config', config]);
});

after(async () => {
  for (const b of browsers) await b.close();
  await server?.stop();
});

test('/ca.crt hands out the CA the server made', async () => {
  const r = await fetch(`${server.base}/ca.crt`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/x-x509-ca-cert');
  const pem = await r.text();
  assert.match(pem, /^-----BEGIN CERTIFICATE-----/);
  assert.equal(pem, readFileSync(join(dir, 'tls', 'ca.crt'), 'utf8'));
  assert.match(server.log(), /local CA made/);
});

test('a Chromium that trusts the CA opens https://r58.local/guest_join and publishes', async () => {
  const browser = await browserFor(chromiumHome('trusting', join(dir, 'tls', 'ca.crt')));
  const page = await browser.newPage();
  watchConsole(page, 'guest');
  const url = `https://r58.local:${httpsPort}/guest_join`;
  const response = await page.goto(url);
  assert.equal(response.status(), 200);
  assert.equal(await page.evaluate(() => window.isSecureContext), true);
  const security = await response.securityDetails();
  console.log(`TLS: ${security?.protocol} subject ${security?.subjectName} issuer ${security?.issuer}`);
  assert.match(security?.issuer ?? '', /^r58 local CA/);
  assert.equal(await page.textContent('#mode'), 'LOCAL · WebRTC direct');
  await page.fill('#name', 'languest');
  await page.click('#preview-btn');
  await page.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: 10000 });
  await page.click('#join-btn');
  await page.waitForFunction(
    () => document.getElementById('status').textContent === 'Connected as languest! You are now live.',
    null, { timeout: 15000 });
  const { value: listed } = await waitUntil('languest sending', async () => {
    const s = (await streams(server.base)).find((x) => x.name === 'languest');
    return s && s.tracks.every((t) => t.packets_in > 0) ? s : null;
  }, 10000);
  assert.deepEqual(listed.tracks.map((t) => t.kind).sort(), ['audio', 'video']);
});

test('a Chromium without the CA is refused the page', async () => {
  const browser = await browserFor(chromiumHome('stranger', null));
  const page = await browser.newPage();
  await assert.rejects(
    page.goto(`https://r58.local:${httpsPort}/guest_join`),
    /ERR_CERT_AUTHORITY_INVALID/,
  );
});
