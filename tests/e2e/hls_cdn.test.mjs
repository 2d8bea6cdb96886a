// LL-HLS through a CDN-like cache, two of them: Debian's nginx (proxy_cache honouring r58's
// headers, proxy_cache_lock on, the query string in the key; lib/nginx.mjs) and Debian's Varnish
// (r58's Cache-Control as is, the query string in the hash, its waiting list coalescing
// concurrent misses; lib/varnish.mjs), each in front of r58, and two hls.js players in Chromium
// (the pages' player) on the test camera through it; the nginx players join as the server
// starts. Both play within a second of live (nginx: within what its lock allows, see below),
// and the cache answered most of their requests (blocking reloads included). Players that join
// a stream whose first part is seconds away get 503s (Retry-After, not stored by the cache) and
// start playing by themselves once it exists.
//
// nginx or varnish missing: that cache's tests are skipped, unless CI is set (then it fails).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, metricSum } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import { startNginx, nginxInstalled } from './lib/nginx.mjs';
import { startVarnish, varnishInstalled } from './lib/varnish.mjs';
import { openPage, startPlayer, sample, report, assertPlays, percentile } from './lib/hls.mjs';

const caches = [
  {
    name: 'nginx',
    installed: nginxInstalled(),
    start: startNginx,
    // The goal is a second. Measured (docs/hls.md, "where the time goes"), 12 runs: p50
    // 0.61-1.12 s, 21 of 24 viewers within 1 s; the later one is usually the viewer waiting on
    // the other's request at nginx's cache lock (which looks at a locked entry only every
    // 500 ms; its jitter also makes hls.js stall and move its target back). With the lock off
    // (R58_NGINX_CACHE_LOCK=off) both 0.62-0.67 s. The bound is what is met with the lock on.
    behindLive: 1.25,
  },
  {
    name: 'Varnish',
    installed: varnishInstalled(),
    start: startVarnish,
    // Varnish wakes the requests on its waiting list when the fetch they wait for arrives, so
    // the second viewer is as close to live as the first: the goal itself. Measured
    // (docs/hls.md, "Varnish"), 6 runs: p50 0.62-0.69 s, every viewer.
    behindLive: 1.0,
  },
];
for (const cache of caches) {
  if (!cache.installed && process.env.CI) {
    throw new Error(`${cache.name} is required in CI (.ci/run installs it)`);
  }
}

let server;
let browser;

before(async () => {
  // Viewers join as the server starts, before cam0's first LL-HLS part may exist: r58 holds
  // their playlist requests for it (an empty playlist is never sent).
  server = await startServer(['--test-cameras', '1']);
  for (const cache of caches) if (cache.installed) cache.proxy = await cache.start(server.base);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  for (const cache of caches) await cache.proxy?.stop();
  await server?.stop();
});

caches.forEach(({ name, installed, behindLive }, index) => {
  const skip = !installed && `${name} not installed`;
  const proxy = () => caches[index].proxy;

  test(`two hls.js players through ${name} play within a second of live`, { skip }, async () => {
    const cache = proxy();
    const pages = [await openPage(browser, cache.base, 'viewer1'), await openPage(browser, cache.base, 'viewer2')];
    // Two viewers are two browsers: without this the second page would be served from the first
    // one's HTTP cache (the same profile) and never reach the proxy.
    for (const page of pages) {
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    }
    for (const page of pages) await startPlayer(page, `${cache.base}/hls/cam0/index.m3u8`);
    for (const page of pages) {
      await page.waitForFunction(() => window.player.video.currentTime > 0.5, null, { timeout: 20000 });
    }
    // Let hls.js settle at its target position, then measure both at once.
    await new Promise((r) => setTimeout(r, 5000));
    const origin = () => metricSum(server.base, 'r58_hls_requests_total');
    const before = await origin();
    const samples = await Promise.all(pages.map((page) => sample(page, 6000)));
    const reached = (await origin()) - before;
    samples.forEach((s, i) => report(`viewer${i + 1} through ${name}`, s));
    const statuses = cache.cacheStatuses('_HLS_msn');
    const parts = cache.cacheStatuses('/part');
    // R58_NGINX_LOG=1 prints the cache's access log (time, request, status, cache status; for
    // Varnish its handling: hit, miss, pass, synth).
    if (process.env.R58_NGINX_LOG) console.log(cache.accessLog());
    console.log(`at the cache, blocking reloads by status: ${JSON.stringify(statuses)}, `
      + `parts: ${JSON.stringify(parts)}; `
      + `${reached} LL-HLS requests reached r58 in 6 s`);
    for (const s of samples) {
      assertPlays(s, 1280, 720);
      // The goal is a second; `behindLive` is what each cache meets (above).
      assert.ok(s.hlsLatency != null && s.hlsLatency <= behindLive, `hls.js is ${s.hlsLatency} s behind live through ${name}`);
      const p50 = percentile(s.latencies, 50);
      assert.ok(p50 <= behindLive * 1000, `capture->playing latency p50 ${p50} ms through ${name}`);
    }
    // Each viewer asks for every part and its blocking reload; one of the two is a miss.
    const hits = (s) => (s.HIT ?? 0) + (s.UPDATING ?? 0) + (s.STALE ?? 0);
    assert.ok(hits(statuses) >= 0.3 * (statuses.MISS ?? 0),
      `the second viewer's blocking reloads came from the cache: ${JSON.stringify(statuses)}`);
    assert.ok(hits(parts) >= 0.3 * (parts.MISS ?? 0),
      `the second viewer's parts came from the cache: ${JSON.stringify(parts)}`);
    for (const page of pages) await page.close();
  });

  test(`hls.js players that join through ${name} before the first part exists recover by themselves`, { skip }, async () => {
    const cache = proxy();
    const stream = `late${index}`;
    // A WHIP guest whose camera comes up late: online, its audio flowing, but no video (which
    // starts an LL-HLS stream, at a keyframe) until the players were answered 503.
    const publisher = await openPage(browser, server.base, 'publisher');
    await publisher.evaluate(({ base, id }) => window.r58.publish(base, id, 'video/H264', undefined, true),
      { base: server.base, id: stream });
    const pages = [await openPage(browser, cache.base, 'late1'), await openPage(browser, cache.base, 'late2')];
    for (const page of pages) await startPlayer(page, `${cache.base}/hls/${stream}/index.m3u8`);
    // What the cache saw for the guest's playlists.
    const playlists = () => cache.accessLog().split('\n').filter((l) => l.includes(`"GET /hls/${stream}/`) && /m3u8/.test(l));
    // Three 503s for two players: one of them was refused twice (hls.js alone retries once; the
    // player keeps asking while r58 says "not yet").
    const refusals = () => playlists().filter((l) => /" 503 /.test(l)).length;
    const deadline = Date.now() + 20000;
    while (refusals() < 3) {
      assert.ok(Date.now() < deadline, `fewer than three 503s for a playlist without parts:\n${playlists().join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await publisher.evaluate(() => window.publisher.startVideo());
    for (const page of pages) {
      await page.waitForFunction(() => window.player.video.currentTime > 0.5, null, { timeout: 20000 })
        .catch(async (e) => {
          const errors = await page.evaluate(() => window.player.errors);
          throw new Error(`${e.message}; the player's errors: ${JSON.stringify(errors)}; the cache saw:\n${playlists().join('\n')}`);
        });
    }
    const samples = await Promise.all(pages.map((page) => sample(page, 3000)));
    samples.forEach((s, i) => report(`late viewer ${i + 1} through ${name}`, s));
    for (const s of samples) assertPlays(s, 640, 360);
    const unavailable = playlists().filter((l) => /" 503 /.test(l));
    console.log(`the guest's playlists at the cache: ${playlists().length} requests, `
      + `${unavailable.length} answered 503:\n${unavailable.join('\n')}`);
    assert.ok(!unavailable.some((l) => /" 503 HIT /i.test(l)), `no 503 was answered from ${name}'s cache`);
    for (const page of pages) await page.close();
    await publisher.close();
  });
});
