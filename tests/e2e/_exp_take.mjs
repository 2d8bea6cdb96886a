import { launchChromium } from './lib/browser.mjs';
const base = 'http://127.0.0.1:18580';
const b = await launchChromium();
const p = await b.newPage();
p.on('console', (m) => { if (!/ICE|Trickle/.test(m.text())) console.log('[page]', m.text()); });
p.on('pageerror', (e) => console.log('[pageerror]', e.message));
p.on('response', (r) => { if (r.url().includes('/api/switcher')) console.log('[resp]', r.status(), r.url()); });
await p.goto(`${base}/switcher`);
await p.waitForSelector('.input[data-stream="cam0"][data-state="live"]');
const t0 = Date.now();
await p.click('.input[data-stream="cam0"] .take');
for (let i = 0; i < 8; i++) {
  await p.waitForTimeout(500);
  const r = await p.evaluate(() => ({ s: JSON.stringify(window.r58switcher.state && { program: window.r58switcher.state.program, pending: window.r58switcher.state.pending }), tally: document.querySelector('.input[data-stream="cam0"]').dataset.program }));
  console.log(Date.now() - t0, JSON.stringify(r));
}
await b.close();
