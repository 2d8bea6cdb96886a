// REMOTE viewing over WebRTC through r58's own TURN relay. r58 advertises 127.0.0.2 as its host
// address, where nothing listens (its socket is on 127.0.0.1): a box behind NAT whose host
// candidate no browser outside can reach. With `[turn] server_relay = "always"` it holds a
// relay on the test's coturn and offers it in its answers, and the REMOTE pages (opened with
// ?mode=remote) play over WHEP through it; with "never" they fall back to LL-HLS at once; with
// ?play=hls they never try; a relay that offers but does not connect gives way after the timeout.
// All traffic stays on 127.0.0.0/8.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, metricSum } from './lib/server.mjs';
import { launchChromium } from './lib/browser.mjs';
import { startTurn } from './lib/turn.mjs';
import {
  assertCounting, screenshot, smallCameraArgs, streams, waitUntil, watchConsole,
} from './lib/pages.mjs';
import { RELAY_CONNECT_MS } from '../../web/static/js/player-model.js';

let turn;
let browser;
let server;     // the server of the test at hand
const errors = [];

/** r58 pointing at the test's coturn, with its own relay as `serverRelay` says. */
async function startBehindNat(serverRelay) {
  const toml = `[turn]\nprovider = "coturn"\nurls = ["turn:127.0.0.1:${turn.port}?transport=udp"]\n`
    + `secret = "${turn.secret}"\nserver_relay = "${serverRelay}"\n`;
  return startServer([...smallCameraArgs(toml), '--public-ip', '127.0.0.2']);
}

before(async () => {
  turn = await startTurn();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await turn?.stop();
});

/** The sum of a metric's samples whose labels match `labels` (a regular expression). */
const metric = (name, labels) => metricSum(server.base, name, labels);

/** Opens `path` on the server with the requests to /whep and /hls recorded. */
async function open(path, tag) {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  const pageErrors = watchConsole(page, tag);
  page.on('close', () => errors.push(...pageErrors));
  const requests = { whep: [], hls: [] };
  page.on('request', (r) => {
    if (/\/whep\//.test(r.url())) requests.whep.push(`${r.method()} ${r.url()}`);
    if (/\/hls\//.test(r.url())) requests.hls.push(r.url());
  });
  const opened = Date.now();
  await page.goto(`${server.base}${path}`);
  return { page, requests, opened };
}

const logText = (page) => page.$eval('#log', (el) => el.textContent);
const tile = (name) => `.tile[data-stream="${name}"]`;
const modeLine = (page, text, timeout = 15000) => page.waitForFunction(
  (t) => document.getElementById('mode').textContent === t, text, { timeout });

/**
 * The selected candidate pair of a WHEP player's peer connection (a multiview `tile`, a
 * switcher `input` or the `program` monitor): local and remote types, and its configuration.
 */
function route(page, where, name = null) {
  return page.evaluate(async ([kind, n]) => {
    const player = kind === 'tile' ? window.r58multiview.tiles.get(n).player
      : kind === 'input' ? window.r58switcher.inputs.get(n).player : window.r58switcher.program.player;
    const stats = await player.client.pc.getStats();
    let pair = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    return {
      local: local.candidateType, remote: remote.candidateType,
      remoteAddress: `${remote.address}:${remote.port}`, iceServers: player.client.pc.getConfiguration().iceServers.length,
      policy: player.client.pc.getConfiguration().iceTransportPolicy,
    };
  }, [where, name]);
}

test('server_relay = "always": the REMOTE multiview plays the cameras over WebRTC through TURN', async () => {
  server = await startBehindNat('always');
  await waitUntil('r58 to hold its relay', () => metric('r58_turn_relay_allocated').then((n) => n === 1), 10000);
  const relayedBefore = await metric('r58_turn_relay_packets_total', /direction="out"/);
  const directBefore = await metric('r58_datagrams_out_total');
  const { page, requests, opened } = await open('/?mode=remote', 'view-turn');
  assert.match(await logText(page), /Access mode: REMOTE \(using WebRTC via TURN or HLS\) \[set by \?mode=\]/);
  for (const name of ['cam0', 'cam1']) await page.waitForSelector(`${tile(name)}[data-state="live"]`, { timeout: 20000 });
  console.log(`cam0 and cam1 live over the relay ${Date.now() - opened} ms after the page was opened`);
  await modeLine(page, 'REMOTE · WebRTC via TURN');
  assert.equal(await page.getAttribute('#mode', 'data-mode'), 'REMOTE');
  await assertCounting(assert, page, `${tile('cam0')} video`, 0, 'cam0 over WebRTC via TURN');
  await assertCounting(assert, page, `${tile('cam1')} video`, 1, 'cam1 over WebRTC via TURN');
  for (const name of ['cam0', 'cam1']) {
    assert.equal(await page.evaluate((n) => window.r58multiview.tiles.get(n).player.kind, name), 'whep', name);
    const r = await route(page, 'tile', name);
    console.log(`${name} route: ${JSON.stringify(r)}`);
    // The server's host candidate (127.0.0.2) is unreachable: only its relay candidate can work.
    assert.equal(r.remote, 'relay', `${name}: the server's relay candidate carries the media`);
    assert.match(r.remoteAddress, /^127\.0\.0\.1:\d+$/);
    assert.equal(r.policy, 'all', 'viewers allow every candidate type');
    assert.equal(r.iceServers, 1, 'with the TURN credentials from /api/turn-credentials');
    await page.waitForFunction((sel) => /^≈\d+ ms$/.test(document.querySelector(sel).textContent),
      `${tile(name)} .stat-latency`, { timeout: 5000 });
  }
  const log = await logText(page);
  assert.match(log, /Viewing with 1 ICE server\(s\): turn:127\.0\.0\.1:\d+\?transport=udp/);
  assert.equal(log.match(/Viewing with/g).length, 1, 'the credentials are fetched once for the page');
  assert.match(log, /cam0: the server offers a TURN relay: trying WebRTC via TURN, up to 6 s for a picture/);
  assert.match(log, /cam0: playing over WebRTC via TURN \(route: \w+ → server relay, the server's TURN relay\)/);
  assert.match(log, /Access mode: REMOTE \(using WebRTC via TURN\)/);
  assert.doesNotMatch(log, /LL-HLS/);
  assert.deepEqual(requests.hls, [], 'no LL-HLS while WebRTC plays');
  assert.ok(requests.whep.filter((r) => r.startsWith('POST')).length >= 2);
  // Every RTP packet the page received came out of r58's relay (and the DTLS, RTCP and STUN
  // datagrams besides): the relay's count, read after the page's and after the driver's next
  // report to /metrics (once a second), is at least as high, and r58 sent nothing straight
  // from its socket.
  const received = await page.evaluate(async () => {
    let n = 0;
    for (const t of window.r58multiview.tiles.values()) {
      (await t.player.client.pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') n += s.packetsReceived; });
    }
    return n;
  });
  await new Promise((r) => setTimeout(r, 1500));
  const relayed = await metric('r58_turn_relay_packets_total', /direction="out"/) - relayedBefore;
  const direct = await metric('r58_datagrams_out_total') - directBefore;
  console.log(`the page received ${received} RTP packets; r58 sent ${relayed} datagrams through its relay, ${direct} directly`);
  assert.ok(received > 50, `the page received media (${received} packets)`);
  assert.ok(relayed >= received, `all of it through r58's relay (${relayed} datagrams for ${received} packets)`);
  assert.equal(direct, 0, 'nothing left r58 straight from its socket');
  await screenshot(page, 'multiview-remote-webrtc-turn');
  await page.close();
});

test('the REMOTE switcher plays its inputs and the program monitor over WebRTC through TURN', async () => {
  const taken = await fetch(`${server.base}/api/switcher/program`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ source: 'cam0' }),
  });
  assert.equal(taken.status, 200, await taken.text());
  const { page, requests, opened } = await open('/switcher?mode=remote', 'switcher-turn');
  await page.waitForSelector('#program-monitor[data-state="live"]', { timeout: 20000 });
  console.log(`program monitor live over the relay ${Date.now() - opened} ms after the page was opened`);
  await modeLine(page, 'REMOTE · WebRTC via TURN');
  assert.equal(await page.textContent('#program-monitor .monitor-source'), 'cam0');
  assert.equal(await page.evaluate(() => window.r58switcher.program.player.kind), 'whep');
  // The program stream carries cam0's frames: its counter reads back in the program monitor.
  await assertCounting(assert, page, '#program-monitor video', 0, 'program (cam0) over WebRTC via TURN');
  const r = await route(page, 'program');
  console.log(`program route: ${JSON.stringify(r)}`);
  assert.equal(r.remote, 'relay');
  await page.waitForSelector('.input[data-stream="cam1"][data-state="live"]', { timeout: 20000 });
  assert.equal(await page.evaluate(() => window.r58switcher.inputs.get('cam1').player.kind), 'whep');
  await assertCounting(assert, page, '.input[data-stream="cam1"] video', 1, 'cam1 input over WebRTC via TURN');
  await page.waitForFunction(() => /≈\d+ ms/.test(document.querySelector('#program-monitor .monitor-latency').textContent),
    null, { timeout: 5000 });
  console.log(`program monitor latency: ${await page.textContent('#program-monitor .monitor-latency')}`);
  assert.match(await logText(page), /program: playing over WebRTC via TURN/);
  assert.deepEqual(requests.hls, [], 'no LL-HLS while WebRTC plays');
  await screenshot(page, 'switcher-remote-webrtc-turn');
  await page.close();
});

test('?play=hls plays LL-HLS even when the server offers a relay', async () => {
  const { page, requests } = await open('/?mode=remote&play=hls', 'view-forced-hls');
  assert.equal(await page.textContent('#mode'), 'REMOTE · HLS');
  assert.match(await logText(page), /Access mode: REMOTE \(using HLS\)/);
  await page.waitForSelector(`${tile('cam0')}[data-state="live"]`, { timeout: 20000 });
  assert.equal(await page.evaluate(() => window.r58multiview.tiles.get('cam0').player.kind), 'hls');
  await assertCounting(assert, page, `${tile('cam0')} video`, 0, 'cam0 over LL-HLS (?play=hls)', { timeoutMs: 8000 });
  assert.match(await logText(page), /cam0: playing over LL-HLS \(hlsjs\): \?play=hls/);
  assert.deepEqual(requests.whep, [], 'no WHEP session under ?play=hls');
  assert.doesNotMatch(await logText(page), /turn-credentials|ICE server/);
  await page.close();
});

test('a relay that is offered but does not connect gives way to LL-HLS after the timeout', async () => {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  watchConsole(page, 'view-dead-relay');
  // The server's answer for cam0 names a relay port where nothing relays (the discard port).
  await page.route(/\/whep\/cam0$/, async (r) => {
    if (r.request().method() !== 'POST') return r.continue();
    const response = await r.fetch();
    const body = (await response.text()).replace(/^(a=candidate:\S+ \d+ \S+ \d+ \S+) \d+ typ relay/m, '$1 9 typ relay');
    return r.fulfill({ response, body });
  });
  await page.goto(`${server.base}/?mode=remote`);
  const { ms } = await waitUntil('cam0 to fall back to LL-HLS',
    () => page.evaluate(() => window.r58multiview?.tiles.get('cam0')?.player.kind === 'hls'), 20000);
  const log = await logText(page);
  console.log(`cam0 fell back ${ms} ms after the page was opened (timeout ${RELAY_CONNECT_MS} ms from the answer)`);
  assert.match(log, /cam0: (no picture over WebRTC via TURN within 6 s|the WebRTC via TURN connection failed): playing over LL-HLS from now on/);
  assert.ok(ms >= RELAY_CONNECT_MS - 500, `not before the timeout (${ms} ms)`);
  await page.waitForSelector(`${tile('cam0')}[data-state="live"]`, { timeout: 20000 });
  await assertCounting(assert, page, `${tile('cam0')} video`, 0, 'cam0 over LL-HLS after the timeout', { timeoutMs: 8000 });
  // cam1's answer was left alone: it plays over the relay, and the page says both.
  assert.equal(await page.evaluate(() => window.r58multiview.tiles.get('cam1').player.kind), 'whep');
  await modeLine(page, 'REMOTE · WebRTC via TURN + HLS');
  // It stays on LL-HLS (a reload tries again).
  await page.waitForTimeout(3000);
  assert.equal(await page.evaluate(() => window.r58multiview.tiles.get('cam0').player.kind), 'hls');
  await screenshot(page, 'multiview-remote-relay-timeout');
  await page.close();
  await server.stop();
  server = null;
});

test('server_relay = "never": the REMOTE multiview falls back to LL-HLS at once, says so, and plays', async () => {
  server = await startBehindNat('never');
  assert.equal(await metric('r58_turn_relay_allocated'), 0);
  const { page, requests, opened } = await open('/?mode=remote', 'view-no-relay');
  await modeLine(page, 'REMOTE · HLS');
  const decided = Date.now() - opened;
  console.log(`REMOTE · HLS ${decided} ms after the page was opened`);
  assert.ok(decided < RELAY_CONNECT_MS, 'at once, not after the timeout');
  await page.waitForSelector(`${tile('cam0')}[data-state="live"]`, { timeout: 20000 });
  assert.equal(await page.evaluate(() => window.r58multiview.tiles.get('cam0').player.kind), 'hls');
  await assertCounting(assert, page, `${tile('cam0')} video`, 0, 'cam0 over LL-HLS (no relay)', { timeoutMs: 8000 });
  const log = await logText(page);
  assert.match(log, /cam0: the server offers no TURN relay \(no relay candidate in its answer\): playing over LL-HLS from now on/);
  assert.match(log, /cam0: playing over LL-HLS \(hlsjs\): the server offers no TURN relay/);
  assert.match(log, /Access mode: REMOTE \(using HLS\)/);
  // The readouts are refreshed once a second.
  await page.waitForFunction((sel) => /^\d+\.\d s behind live$/.test(document.querySelector(sel).textContent),
    `${tile('cam0')} .stat-latency`, { timeout: 5000 });
  assert.ok(requests.hls.length > 0);
  // One offer per player, each ended again (DELETE) before LL-HLS started.
  const posts = requests.whep.filter((r) => r.startsWith('POST')).length;
  const deletes = requests.whep.filter((r) => r.startsWith('DELETE')).length;
  assert.equal(posts, 2, requests.whep.join('\n'));
  assert.equal(deletes, 2, requests.whep.join('\n'));
  await waitUntil('no WHEP viewers left on the server',
    async () => (await streams(server.base)).every((s) => s.viewers === 0), 5000);
  await screenshot(page, 'multiview-remote-no-relay');
  await page.close();
  assert.deepEqual(errors, [], 'no page errors or CSP violations');
});
