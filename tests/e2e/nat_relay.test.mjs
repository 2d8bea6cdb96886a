// Chromium in the real NAT topology (issue 20): r58 in a "box" namespace behind a masquerading
// NAT that lets nothing in unasked, coturn on the "internet" side, the HTTP API reachable from
// outside only through a TCP forwarder standing in for the tunnel (tests/interop/nat_topology.py
// builds it all; lib/nat.mjs). Three Chromiums, each in its own client's namespace:
//
// - a guest on the internet side opens /guest_join through the tunnel (REMOTE mode: the page
//   publishes over WHIP with iceTransportPolicy "relay", through coturn),
// - a viewer on the internet side opens the multiview / through the tunnel (REMOTE mode: WHEP
//   through TURN when r58 offers its own relay, header `REMOTE · WebRTC via TURN`),
// - a viewer on the box's LAN opens / on the box's LAN address (LOCAL mode: WHEP directly to the
//   host candidate).
//
// With `[turn] server_relay = "auto"` r58 holds a relay on coturn: the guest goes live, both
// viewers decode the guest's frames (getStats framesDecoded) and the test camera's (its frame
// counter read back from the picture). With `server_relay = "never"` the same guest never
// connects (the NAT drops its relay's packets, counted), the remote viewer gets no WebRTC
// connection, and the LAN viewer still plays. Traffic stays in the namespaces the test builds
// (and 127.0.0.1 for the control forwarder: the harness reads /healthz and /metrics through it).
//
// Needs root, ip, nft, turnserver and Chromium; skipped without them, except under CI=true.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { natMissing, startTopology, launchInNamespace, startR58InBox } from './lib/nat.mjs';
import { assertCounting, screenshot, waitUntil, watchConsole } from './lib/pages.mjs';

const missing = natMissing();
if (missing && process.env.CI === 'true') {
  // The CI machine allows namespaces: not being able to build them there is a failure.
  test('the NAT topology can be built', () => assert.fail(`NAT relay tests cannot run: ${missing}`));
}
const skip = missing ? `NAT relay tests skipped: ${missing}` : false;

const GUEST = 'guest';
const COUNT_MS = 3000;        // the window each peer's frames are counted over
const MIN_FRAMES = 30;        // frames each viewer must decode in it (the guest's, at ~30 fps)
const NEVER_WINDOW_MS = 10000; // how long the guest and the remote viewer get without a relay

let topo;
let r58;
let browsers = {};
const pages = [];

function r58Toml(serverRelay) {
  return [
    '[test_cameras]', 'count = 1', 'width = 640', 'height = 360', 'fps = 30', 'bitrate = 1000000', '',
    '[turn]', 'provider = "coturn"',
    `urls = ["turn:${topo.turn.ip}:${topo.turn.port}?transport=udp"]`,
    `secret = "${topo.turn.secret}"`, 'ttl_secs = 600', `server_relay = "${serverRelay}"`, '',
  ].join('\n');
}

before(async () => {
  if (skip) return;
  const t0 = Date.now();
  topo = await startTopology();
  const tunnel = topo.tunnel.base;
  const [guest, remote, lan] = await Promise.all([
    // getUserMedia needs a secure context: the tunnel's origin is plain HTTP on a public address.
    launchInNamespace(topo.ns.remote, [`--unsafely-treat-insecure-origin-as-secure=${tunnel}`]),
    launchInNamespace(topo.ns.remote),
    launchInNamespace(topo.ns.lan),
  ]);
  browsers = { guest, remote, lan };
  console.log(`topology ${topo.tag} with coturn and the tunnel (${tunnel}), three Chromiums: ${Date.now() - t0} ms`);
});

after(async () => {
  for (const b of Object.values(browsers)) await b.close().catch(() => {});
  await r58?.stop();
  await topo?.stop();
});

async function open(browser, url, tag) {
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  watchConsole(page, tag);
  pages.push(page);
  page.hlsRequests = [];
  page.on('request', (r) => { if (/\/hls\//.test(r.url())) page.hlsRequests.push(r.url()); });
  await page.goto(url);
  return page;
}

async function closePages() {
  while (pages.length) await pages.pop().close().catch(() => {});
}

/** Everything that helps when a case fails: namespaces, rules and counters, logs. */
function diagnostics() {
  const parts = [];
  try { parts.push(topo.describe()); } catch (e) { parts.push(`describe: ${e.message}`); }
  if (r58) parts.push(`--- r58 config\n${r58.config}\n--- r58 log (tail)\n${r58.log().split('\n').slice(-120).join('\n')}`);
  parts.push(`--- coturn log (tail)\n${topo.coturnLog().slice(-5000)}`);
  parts.push(`--- tunnel log\n${topo.tunnelLog().slice(-2000)}`);
  return parts.join('\n');
}

async function withDiagnostics(fn) {
  try {
    await fn();
  } catch (e) {
    console.log(diagnostics());
    throw e;
  } finally {
    await closePages();
    await r58?.stop();
    r58 = null;
  }
}

const tile = (name) => `.tile[data-stream="${name}"]`;
const logText = (page) => page.$eval('#log', (el) => el.textContent);

// Which peer connection a helper reads, in the page: a multiview tile's player (`{ tile: name }`)
// or the guest page's WHIP client (`GUEST_PC`).
const tilePc = (name) => ({ tile: name });
const GUEST_PC = { guest: true };

/** The selected candidate pair of the peer connection `which` names (see tilePc). */
function route(page, which) {
  return page.evaluate(async (w) => {
    const pc = w.tile ? window.r58multiview.tiles.get(w.tile).player.client.pc : window.r58guest.client.pc;
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    return {
      local: local.candidateType, localAddress: `${local.address}:${local.port}`,
      remote: remote.candidateType, remoteAddress: `${remote.address}:${remote.port}`,
      policy: pc.getConfiguration().iceTransportPolicy,
    };
  }, which);
}

/** Video frames the peer connection `which` names has decoded (inbound) or encoded and sent. */
function videoFrames(page, which) {
  return page.evaluate(async (w) => {
    const pc = w.tile ? window.r58multiview.tiles.get(w.tile).player.client.pc : window.r58guest.client.pc;
    let out = null;
    (await pc.getStats()).forEach((s) => {
      if (s.kind !== 'video') return;
      if (s.type === 'inbound-rtp') out = { decoded: s.framesDecoded ?? 0, width: s.frameWidth, height: s.frameHeight };
      if (s.type === 'outbound-rtp') out = { encoded: s.framesEncoded ?? 0, sent: s.framesSent ?? 0, width: s.frameWidth, height: s.frameHeight };
    });
    return out;
  }, which);
}

/**
 * Opens the multiview at `url` and waits for the guest's tile to show its first frame: the
 * time from the start of navigation to it (performance.now() when the tile's video has a
 * frame, polled each animation frame), and the same for cam0.
 */
async function watch(browser, url, tag, names = [GUEST, 'cam0']) {
  const page = await open(browser, url, tag);
  const firstFrame = (name) => page.waitForFunction((sel) => {
    const v = document.querySelector(sel);
    return v && v.getVideoPlaybackQuality().totalVideoFrames > 0 && performance.now();
  }, `${tile(name)} video`, { timeout: 20000 }).then((h) => h.jsonValue());
  const times = await Promise.all(names.map(firstFrame));
  // When each player's WHEP offer went out and its answer came back (ms from navigation start).
  const whep = await page.evaluate((ns) => Object.fromEntries(ns.map((n) => {
    const e = performance.getEntriesByType('resource').find((r) => r.name.endsWith(`/whep/${n}`));
    return [n, e ? { post: Math.round(e.startTime), answer: Math.round(e.responseEnd) } : null];
  })), names);
  const out = { page, whep };
  names.forEach((n, i) => { out[`${n}Ms`] = Math.round(times[i]); });
  return out;
}

const timeline = (v, name) => `POST ${v.whep[name]?.post} ms, answer ${v.whep[name]?.answer} ms, first frame ${v[`${name}Ms`]} ms`;

/** Video frames counted over COUNT_MS by each of `peers` ({label: [page, which]}), at once. */
async function countFrames(peers) {
  const entries = Object.entries(peers);
  const first = await Promise.all(entries.map(([, [page, pc]]) => videoFrames(page, pc)));
  await new Promise((r) => setTimeout(r, COUNT_MS));
  const last = await Promise.all(entries.map(([, [page, pc]]) => videoFrames(page, pc)));
  const out = {};
  entries.forEach(([label], i) => {
    const a = first[i];
    const b = last[i];
    out[label] = 'decoded' in b
      ? { decoded: b.decoded - a.decoded, size: `${b.width}x${b.height}` }
      : { encoded: b.encoded - a.encoded, sent: b.sent - a.sent, size: `${b.width}x${b.height}` };
  });
  return out;
}

/** The guest page: preview, then Join Stream; returns the page and the clicked time. */
async function guestJoins() {
  const page = await open(browsers.guest, `${topo.tunnel.base}/guest_join?name=${GUEST}`, 'guest');
  assert.equal(await page.textContent('#mode'), 'REMOTE · TURN relay', 'the tunnel address makes the guest page REMOTE');
  await page.click('#preview-btn');
  await page.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: 10000 });
  const clicked = Date.now();
  await page.click('#join-btn');
  return { page, clicked };
}

const liveText = `Connected as ${GUEST}! You are now live.`;

test('server_relay = "auto": a relay-only Chromium guest publishes into the box behind NAT, a viewer outside watches through TURN, one on the LAN directly', { skip }, async () => {
  const t0 = Date.now();
  r58 = await startR58InBox(topo, r58Toml('auto'));
  await withDiagnostics(async () => {
    const { ms: allocMs } = await waitUntil('r58 to hold its relay', () => r58.metric('r58_turn_relay_allocated').then((n) => n === 1), 10000);
    console.log(`r58 ready ${Date.now() - t0} ms after start; relay allocated ${allocMs} ms after that`);
    assert.match(r58.log(), /TURN: relay allocated relayed=203\.0\.113\.1:\d+ mapped=(Some\()?203\.0\.113\.2:\d+/,
      'r58 allocated on coturn, seen from outside as the router (masquerade)');

    // The guest: REMOTE through the tunnel, relay only.
    const { page: guest, clicked } = await guestJoins();
    await guest.waitForFunction((t) => document.getElementById('status').textContent === t, liveText, { timeout: 20000 });
    const joinMs = Date.now() - clicked;
    const guestRoute = await route(guest, GUEST_PC);
    console.log(`guest: Join Stream -> live ${joinMs} ms; route ${JSON.stringify(guestRoute)}`);
    assert.equal(guestRoute.policy, 'relay');
    assert.equal(guestRoute.local, 'relay', 'the guest sends through its own TURN allocation');
    assert.equal(guestRoute.remote, 'relay', "to r58's relay candidate");
    assert.match(guestRoute.remoteAddress, /^203\.0\.113\.1:(\d+)$/);
    assert.match(await logText(guest), /Got 1 ICE server\(s\): turn:203\.0\.113\.1:3478\?transport=udp/);
    await waitUntil('the guest live on r58', async () => (await r58.streams()).some((s) => s.name === GUEST && s.online), 5000);

    // The two viewers at once: outside through the tunnel (REMOTE), inside on the LAN (LOCAL).
    const [remote, lan] = await Promise.all([
      watch(browsers.remote, `${topo.tunnel.base}/`, 'remote-viewer'),
      watch(browsers.lan, `${topo.r58.lan_base}/`, 'lan-viewer'),
    ]);
    console.log(`time to first frame, from navigation start: remote viewer (page via tunnel, media via TURN): guest ${remote.guestMs} ms, cam0 ${remote.cam0Ms} ms; `
      + `LAN viewer (direct): guest ${lan.guestMs} ms, cam0 ${lan.cam0Ms} ms`);
    for (const [who, v] of [['remote viewer', remote], ['LAN viewer', lan]]) {
      console.log(`${who}: guest: ${timeline(v, GUEST)}; cam0: ${timeline(v, 'cam0')}`);
    }
    await remote.page.waitForFunction(() => document.getElementById('mode').textContent === 'REMOTE · WebRTC via TURN', null, { timeout: 10000 });
    assert.deepEqual(remote.page.hlsRequests, [], 'the remote viewer plays WebRTC, never LL-HLS');
    assert.equal(await lan.page.getAttribute('#mode', 'data-mode'), 'LOCAL');
    for (const name of [GUEST, 'cam0']) {
      assert.equal(await remote.page.evaluate((n) => window.r58multiview.tiles.get(n).player.kind, name), 'whep', `remote ${name}`);
      assert.equal(await lan.page.evaluate((n) => window.r58multiview.tiles.get(n).player.kind, name), 'whep', `lan ${name}`);
      const r = await route(remote.page, tilePc(name));
      const l = await route(lan.page, tilePc(name));
      console.log(`${name}: remote viewer route ${JSON.stringify(r)}; LAN viewer route ${JSON.stringify(l)}`);
      assert.equal(r.remote, 'relay', `remote viewer of ${name}: r58's relay candidate carries the media`);
      assert.match(r.remoteAddress, /^203\.0\.113\.1:\d+$/);
      assert.equal(l.remote, 'host', `LAN viewer of ${name}: r58's host candidate`);
      assert.equal(l.remoteAddress, `${topo.addresses.lan_box}:${topo.r58.udp_port}`);
      assert.equal(l.local === 'relay', false, 'the LAN viewer does not go through TURN');
    }

    // Frames: the guest's (getStats) and cam0's (its counter read from the picture).
    const frames = await countFrames({
      'guest (sent)': [guest, GUEST_PC],
      'remote viewer, guest': [remote.page, tilePc(GUEST)],
      'LAN viewer, guest': [lan.page, tilePc(GUEST)],
      'remote viewer, cam0': [remote.page, tilePc('cam0')],
      'LAN viewer, cam0': [lan.page, tilePc('cam0')],
    });
    console.log(`video frames in ${COUNT_MS} ms: ${JSON.stringify(frames)}`);
    assert.ok(frames['guest (sent)'].sent >= MIN_FRAMES, `the guest sent ${frames['guest (sent)'].sent} frames`);
    for (const label of ['remote viewer, guest', 'LAN viewer, guest', 'remote viewer, cam0', 'LAN viewer, cam0']) {
      assert.ok(frames[label].decoded >= MIN_FRAMES, `${label}: decoded ${frames[label].decoded} frames in ${COUNT_MS} ms`);
    }
    await assertCounting(assert, remote.page, `${tile('cam0')} video`, 0, 'remote viewer, cam0 via TURN', { atLeast: 10 });
    await assertCounting(assert, lan.page, `${tile('cam0')} video`, 0, 'LAN viewer, cam0 direct', { atLeast: 10 });

    // The media did go through r58's allocation, as ChannelData.
    const relayed = { channels: await r58.metric('r58_turn_relay_channels') };
    for (const direction of ['out', 'in']) {
      for (const framing of ['channel', 'indication']) {
        relayed[`${direction} ${framing}`] = await r58.metric('r58_turn_relay_packets_total',
          new RegExp(`direction="${direction}",framing="${framing}"`));
      }
    }
    console.log(`r58 relay datagrams: ${JSON.stringify(relayed)}; router: ${JSON.stringify(topo.counters())}`);
    assert.ok(relayed['out channel'] > 100 && relayed['in channel'] > 100, `media as ChannelData both ways: ${JSON.stringify(relayed)}`);
    await screenshot(remote.page, 'nat-remote-viewer-webrtc-turn');
    await screenshot(lan.page, 'nat-lan-viewer');
    await screenshot(guest, 'nat-guest-live');
    console.log(`case done ${Date.now() - t0} ms after r58 was started`);
  });
});

test('server_relay = "never": the same guest never connects, the remote viewer gets no WebRTC, the LAN viewer still plays', { skip }, async () => {
  const t0 = Date.now();
  r58 = await startR58InBox(topo, r58Toml('never'));
  await withDiagnostics(async () => {
    assert.equal(await r58.metric('r58_turn_relay_allocated'), 0);
    const before = topo.counters();

    const { page: guest } = await guestJoins();
    // The remote viewer: the multiview, and a WHEP session of its own through TURN with the
    // credentials the page gets (every candidate type allowed), to see that no connection forms.
    const remote = await open(browsers.remote, `${topo.tunnel.base}/`, 'remote-viewer');
    const whep = remote.evaluate(async ([name, windowMs]) => {
      const { iceServers } = await (await fetch('/api/turn-credentials')).json();
      const pc = new RTCPeerConnection({ iceServers });
      pc.addTransceiver('video', { direction: 'recvonly' });
      const states = [];
      pc.addEventListener('connectionstatechange', () => states.push(pc.connectionState));
      await pc.setLocalDescription();
      await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r()); setTimeout(r, 3000); });
      const resp = await fetch(`/whep/${name}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
      const answer = await resp.text();
      if (resp.status !== 201) return { status: resp.status, answer };
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      await new Promise((r) => setTimeout(r, windowMs));
      let decoded = 0;
      (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') decoded = s.framesDecoded ?? 0; });
      const out = {
        status: resp.status, states, state: pc.connectionState, decoded,
        answerCandidates: [...answer.matchAll(/a=candidate:\S+ \d+ \S+ \d+ (\S+) (\d+) typ (\w+)/g)].map((m) => `${m[3]} ${m[1]}:${m[2]}`),
        offerTypes: [...new Set([...pc.localDescription.sdp.matchAll(/ typ (\w+)/g)].map((m) => m[1]))],
      };
      await fetch(new URL(resp.headers.get('Location'), location.href), { method: 'DELETE' });
      pc.close();
      return out;
    }, ['cam0', NEVER_WINDOW_MS]);
    const lan = await watch(browsers.lan, `${topo.r58.lan_base}/`, 'lan-viewer', ['cam0']);

    // The multiview outside: no relay in r58's answers, so LL-HLS at once (through the tunnel).
    await remote.waitForFunction(() => document.getElementById('mode').textContent === 'REMOTE · HLS', null, { timeout: 10000 });
    assert.match(await logText(remote), /cam0: the server offers no TURN relay \(no relay candidate in its answer\): playing over LL-HLS from now on/);

    // The guest, for the whole window: never connected, never live.
    const seen = new Set();
    const until = Date.now() + NEVER_WINDOW_MS;
    while (Date.now() < until) {
      const s = await guest.evaluate(() => ({ pc: window.r58guest.client?.pc.connectionState ?? null, status: document.getElementById('status').textContent }));
      seen.add(`${s.pc} | ${s.status}`);
      assert.notEqual(s.pc, 'connected', 'the relay-only guest connected without a server relay');
      assert.notEqual(s.status, liveText);
      await new Promise((r) => setTimeout(r, 200));
    }
    const w = await whep;
    const after = topo.counters();
    console.log(`guest over ${NEVER_WINDOW_MS} ms: ${[...seen].join(' / ')}`);
    console.log(`remote viewer's own WHEP session through TURN: ${JSON.stringify(w)}`);
    assert.ok((await logText(guest)).includes('Connecting via TURN relay...'));
    assert.equal(await guest.evaluate(() => window.r58guest.policy), 'relay');
    // Its WHIP session exists (the stream is listed) but no media ever arrived.
    const listed = (await r58.streams()).find((s) => s.name === GUEST);
    assert.ok(!listed || listed.tracks.every((t) => t.packets_in === 0), `no media from the guest: ${JSON.stringify(listed)}`);
    assert.equal(w.status, 201, JSON.stringify(w));
    assert.ok(w.answerCandidates.length > 0 && w.answerCandidates.every((c) => c.startsWith('host ')), `r58 offers host candidates only: ${w.answerCandidates}`);
    assert.ok(w.offerTypes.includes('relay'), `the viewer had a relay candidate: ${w.offerTypes}`);
    assert.notEqual(w.state, 'connected');
    assert.equal(w.states.includes('connected'), false, JSON.stringify(w.states));
    assert.equal(w.decoded, 0);
    // coturn relayed the guest's checks towards the box; the NAT dropped them.
    const dropped = after['forward dropped'] - before['forward dropped'];
    console.log(`router counters before ${JSON.stringify(before)}, after ${JSON.stringify(after)}: ${dropped} packets to the box's private addresses dropped`);
    assert.ok(dropped > 0, 'the relay tried the box and the NAT dropped it');

    // The box itself is fine: the LAN viewer plays cam0 directly.
    console.log(`LAN viewer without server relay: cam0 first frame ${lan.cam0Ms} ms after navigation start`);
    await assertCounting(assert, lan.page, `${tile('cam0')} video`, 0, 'LAN viewer, cam0 direct (no relay)', { atLeast: 10 });
    await screenshot(guest, 'nat-guest-no-server-relay');
    console.log(`case done ${Date.now() - t0} ms after r58 was started`);
  });
});
