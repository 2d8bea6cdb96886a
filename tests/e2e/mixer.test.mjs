// The switcher's audio mixer in Chromium: a guest publishes with Chromium's fake microphone (a
// beep every second) and its page plays its studio return; two operators' switchers show a
// strip for it; the first sets it to On and
// sees its meter and the master (program) meter move; it pulls the fader down 30 dB and the
// master level falls with it while the second switcher's fader follows; a mute silences the
// master. Previews are off (?previews=0): the test is about audio.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import { screenshot, waitUntil, watchConsole } from './lib/pages.mjs';

let server;
let browser;

before(async () => {
  server = await startServer(['--test-cameras', '0']);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(path, tag) {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 1000 });
  watchConsole(page, tag);
  await page.goto(`${server.base}${path}`);
  return page;
}

const strip = (name) => `#mixer .strip[data-source="${name}"]`;
const master = '#mixer .master .strip';
/** The peak hold a strip's meter shows, in dBFS (-120 for nothing). */
const hold = async (page, selector) => {
  const v = await page.$eval(`${selector} .meter`, (m) => m.dataset.hold);
  return v === '' || v === undefined ? -120 : Number(v);
};

test('a fader moves the program level, every switcher follows, a mute silences it', async () => {
  const guest = await open('/guest_join', 'guest');
  await guest.fill('#name', 'voice1');
  await guest.click('#preview-btn');
  await guest.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: 10000 });
  await guest.click('#join-btn');
  await guest.waitForFunction(() => /You are now live/.test(document.getElementById('status').textContent), null, { timeout: 15000 });

  const op1 = await open('/switcher?previews=0', 'op1');
  const op2 = await open('/switcher?previews=0', 'op2');
  await op1.waitForSelector(strip('voice1'), { timeout: 10000 });
  await op2.waitForSelector(strip('voice1'), { timeout: 10000 });
  assert.equal(await op1.$eval(`${strip('voice1')} .mode`, (s) => s.value), 'afv', 'the default strip');

  // On: heard whatever is on program.
  await op1.selectOption(`${strip('voice1')} .mode`, 'on');
  await op2.waitForFunction((s) => document.querySelector(`${s} .mode`).value === 'on', strip('voice1'), { timeout: 5000 });
  const { value: first } = await waitUntil('the master meter shows the beep', async () => {
    const h = await hold(op1, master);
    return h > -40 ? h : null;
  }, 8000);
  // The first reading can fall on the strip's fade-in or a beep's attack (seen on a loaded
  // machine: -22.8 dBFS for a -9 dBFS voice, which a 30 dB cut cannot take 20 dB below): the
  // level is the loudest peak hold over two beeps.
  let loud = first;
  for (const end = Date.now() + 2200; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    loud = Math.max(loud, await hold(op1, master));
  }
  const input = await hold(op1, strip('voice1'));
  console.log(`voice1 on at 0 dB: input meter ${input} dBFS, master ${loud} dBFS`);
  assert.ok(input > -40, `the input meter moves: ${input}`);
  await screenshot(op1, 'switcher-mixer');

  // The fader 30 dB down: the master follows (the input meter is before the fader: it stays).
  await op1.$eval(`${strip('voice1')} .fader`, (f) => {
    f.value = '-30';
    f.dispatchEvent(new Event('input', { bubbles: true }));
    f.dispatchEvent(new Event('change', { bubbles: true }));
  });
  await op2.waitForFunction((s) => document.querySelector(`${s} .fader`).value === '-30', strip('voice1'), { timeout: 5000 });
  assert.equal(await op2.$eval(`${strip('voice1')} .gain`, (e) => e.textContent), '−30.0 dB');
  const { value: quiet } = await waitUntil('the master falls with the fader', async () => {
    const h = await hold(op1, master);
    return h < loud - 20 && h > -120 ? h : null;
  }, 8000);
  const audio = await (await fetch(`${server.base}/api/switcher/audio`)).json();
  console.log(`fader at -30 dB: master ${quiet} dBFS (was ${loud}); server says ${JSON.stringify(audio.strips.voice1)}`);
  assert.deepEqual(audio.strips.voice1, { gain_db: -30, mute: false, mode: 'on' });
  assert.ok(await hold(op1, strip('voice1')) > -40, 'the input meter is before the fader');

  // The guest sees and hears the studio return (the program picture: put voice1 on it).
  const cut = await fetch(`${server.base}/api/switcher/program`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ source: 'voice1' }),
  });
  assert.equal(cut.status, 200);
  await guest.waitForFunction(() => document.getElementById('studio-box').dataset.state === 'live', null, { timeout: 15000 });
  const returnStream = (await (await fetch(`${server.base}/api/streams`)).json()).find((x) => x.name === 'voice1.return');
  assert.equal(returnStream?.source, 'return');
  assert.equal(returnStream.viewers, 1, 'the guest page plays its return');
  assert.deepEqual(Object.keys(returnStream.readers).sort(), ['whep'], 'no LL-HLS for a return feed');

  // Talkback: the operator's microphone to voice1 only.
  await op1.selectOption('#mixer .talk-to', 'voice1');
  await op1.click('#mixer .talk');
  await op1.waitForFunction(() => document.querySelector('#mixer .talk').getAttribute('aria-pressed') === 'true', null, { timeout: 10000 });
  const talking = (await (await fetch(`${server.base}/api/switcher`)).json()).audio.talkback;
  assert.deepEqual(talking, { source: 'talkback', to: 'voice1' });
  assert.ok((await (await fetch(`${server.base}/api/streams`)).json()).some((x) => x.name === 'talkback' && x.online));
  await op1.click('#mixer .talk');
  await op1.waitForFunction(() => document.querySelector('#mixer .talk').getAttribute('aria-pressed') === 'false', null, { timeout: 10000 });
  await waitUntil('the talkback ends', async () => (await (await fetch(`${server.base}/api/switcher`)).json()).audio.talkback === null || null, 5000);

  // Mute: nothing of it on program.
  await op1.click(`${strip('voice1')} .mute`);
  await op2.waitForFunction((s) => document.querySelector(`${s} .mute`).getAttribute('aria-pressed') === 'true', strip('voice1'), { timeout: 5000 });
  await waitUntil('the master goes silent', async () => (await hold(op1, master)) <= -90 || null, 8000);
});
