// Firefox ESR (Debian's firefox-esr, headless, driven through WebDriver BiDi by puppeteer-core)
// on the operator pages. Firefox and r58 run together in a network namespace this test makes
// (lib/netns.mjs): Firefox gathers ICE candidates only on its default route's address, and here
// that address is inside the namespace, so no WebRTC traffic reaches this machine's interfaces.
// puppeteer talks to Firefox over a local WebSocket, so the scenarios (lib/firefox_pages.mjs)
// run inside the namespace as a node test process of their own; this file runs that process and
// passes or fails with it. Skipped without Firefox or root, unless CI=true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { firefoxPath } from './lib/browser.mjs';
import { makeNamespace, netnsMissing } from './lib/netns.mjs';

const scenarios = resolve(import.meta.dirname, 'lib', 'firefox_pages.mjs');
const missing = !existsSync(firefoxPath())
  ? `${firefoxPath()} not found (apt-get install firefox-esr)`
  : netnsMissing();

test('Firefox ESR: guest page (VP8), multiview and switcher in LOCAL and REMOTE mode', { timeout: 240_000 }, async (t) => {
  if (missing) {
    assert.notEqual(process.env.CI, 'true', `CI must run the Firefox tests: ${missing}`);
    t.skip(missing);
    return;
  }
  const ns = makeNamespace('ff');
  try {
    // Without NODE_TEST_CONTEXT: node would take the child for a file of this run and skip it.
    const env = { ...process.env, R58_NETNS_ADDRESS: ns.address };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn('ip', [
      'netns', 'exec', ns.name, process.execPath, '--test', '--test-reporter=tap', scenarios,
    ], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    const code = await new Promise((done) => child.once('exit', (c, signal) => done(c ?? signal)));
    assert.equal(code, 0, 'the Firefox scenarios (output above) failed');
    // Every scenario ran and passed (a child that ran nothing would exit 0 too).
    assert.match(out, /^# pass 4$/m, 'four Firefox scenarios passed');
    assert.match(out, /^# fail 0$/m);
  } finally {
    ns.remove();
  }
});
