// A server that stalls (SIGSTOP for 1.5 s: what an overloaded box does to it) while a Chromium
// guest keeps publishing. When it runs again its socket holds 1.5 s of the guest's packets. r58
// must not play that backlog to its viewers: it sheds media that waited longer than
// `[limits] max_forward_delay` (0.25 s), asks the guest for a keyframe and resumes there, so the
// viewing Chromium is live again within moments instead of showing old frames.
//
// The publisher draws the wall clock into its frames and the viewer reads it back from every
// displayed frame (lib/g2g.js), so "what was shown after the stall" is known by the time it was
// drawn.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';
import { launchChromium, openClockPage } from './lib/browser.mjs';

const STALL_MS = 1500;
const AFTER_MS = 4000;

let server;
let browser;

before(async () => {
  server = await startServer(process.env.R58_STALL_ARGS?.split(' ').filter(Boolean) ?? []);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});


async function metric(name) {
  const text = await (await fetch(`${server.base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

test('after the server stalls, a Chromium viewer is shown the guest live again, not the backlog',
  { timeout: 90000 }, async () => {
    const publisher = await openClockPage(browser, server.base, 'pub');
    const viewer = await openClockPage(browser, server.base, 'view');
    await publisher.evaluate((base) => window.g2g.publish(base, 'stall', 30), server.base);
    await viewer.evaluate((base) => window.g2g.play(base, 'stall'), server.base);
    // Playing, and past the first second's settling.
    await viewer.evaluate(() => window.g2g.collect(30, 1000));
    const requestsBefore = await metric('r58_keyframe_requests_sent_total');

    const watching = viewer.evaluate((ms) => window.g2g.watch(ms), 1000 + STALL_MS + AFTER_MS);
    await new Promise((r) => setTimeout(r, 1000));
    const stoppedAt = Date.now();
    process.kill(server.pid, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, STALL_MS));
    process.kill(server.pid, 'SIGCONT');
    const resumedAt = Date.now();
    const { samples, failed } = await watching;

    const shed = await metric('r58_shed_packets_total');
    const catchUps = await metric('r58_catch_ups_total');
    const requests = await metric('r58_keyframe_requests_sent_total') - requestsBefore;
    const before = samples.filter((s) => s.shown < stoppedAt);
    const after = samples.filter((s) => s.shown > resumedAt);
    // Shown after the stall but drawn well before its end: frames from the backlog.
    const stale = after.filter((s) => s.drawn < resumedAt - 500);
    const firstAfter = after[0];
    const lateness = after.filter((s) => s.shown > resumedAt + 1000).map((s) => s.shown - s.drawn)
      .sort((a, b) => a - b);
    const median = lateness[Math.floor(lateness.length / 2)];
    console.log('stall:', JSON.stringify({
      stallMs: resumedAt - stoppedAt,
      framesBefore: before.length,
      framesAfter: after.length,
      unreadable: failed,
      stale: stale.length,
      firstAfter: firstAfter && {
        shownAfterResumeMs: Math.round(firstAfter.shown - resumedAt),
        drawnAfterResumeMs: Math.round(firstAfter.drawn - resumedAt),
      },
      medianLatencyFrom1sAfterMs: median === undefined ? null : Math.round(median),
      shed,
      catchUps,
      keyframeRequests: requests,
    }));

    assert.ok(before.length >= 15, `only ${before.length} frames shown before the stall`);
    assert.ok(catchUps >= 1 && shed > 0, `r58 shed nothing (${shed} packets, ${catchUps} catch-ups)`);
    assert.ok(requests >= 1, 'the guest was asked for a keyframe to resume at');
    assert.ok(firstAfter, 'no frame was shown after the stall');
    assert.ok(firstAfter.shown - resumedAt < 2000,
      `the first frame after the stall came ${firstAfter.shown - resumedAt} ms after it`);
    assert.equal(stale.length, 0,
      `${stale.length} frames drawn during the stall were shown after it (the backlog was played)`);
    assert.ok(lateness.length >= 30, `only ${lateness.length} frames in the last seconds`);
    assert.ok(median < 300, `the viewer stayed ${median} ms behind the guest`);

    await publisher.evaluate(() => fetch(window.publisher.location, { method: 'DELETE' })).catch(() => {});
    await publisher.close();
    await viewer.close();
  });
