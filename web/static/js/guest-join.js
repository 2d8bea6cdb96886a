// `/guest_join`: a guest previews camera and microphone, then publishes them with WHIP as
// stream {name}. In REMOTE mode the connection is forced through the TURN relay that
// /api/turn-credentials hands out (a tunnel carries HTTP only). A dropped connection is
// repaired with an ICE restart first, then with a new WHIP session.

import { accessMode, describeMode } from './mode.js';
import { createLog } from './log.js';
import { WhipClient } from './whip.js';
import { HttpError, selectedCandidates } from './resource.js';
import { StreamPlayer } from './player.js';
import { stateMessage } from './player-model.js';

const $ = (id) => document.getElementById(id);
const log = createLog($('log'));
const mode = accessMode(location.href);
const remote = mode.mode === 'REMOTE';
const using = remote ? 'TURN relay' : 'WebRTC direct';
$('mode').textContent = `${mode.mode} · ${using}`;
$('mode').dataset.mode = mode.mode;
$('remote-note').hidden = !remote;
log(describeMode(mode, using));

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const OWNED_KEY = 'r58.guest.live';
const nameInput = $('name');
nameInput.value = new URLSearchParams(location.search).get('name') ?? localStorage.getItem('r58.guest.name') ?? '';
// A guest invite (/guest_join?invite=...) publishes under the name it was made for, and
// stands in for a publishing token.
const invite = new URLSearchParams(location.search).get('invite');
const publishToken = invite ?? new URLSearchParams(location.search).get('token');
if (invite) {
  fetch('/api/invite', { headers: { Authorization: `Bearer ${invite}` }, cache: 'no-store' })
    .then(async (r) => {
      if (!r.ok) throw new Error((await r.text()).trim());
      const about = await r.json();
      nameInput.value = about.name;
      nameInput.readOnly = true;
      nameInput.title = 'The name this invite is for';
    })
    .catch((e) => setStatus('error', `This invite link does not work: ${e.message}`));
}

const state = {
  media: null,
  client: null,
  name: null,
  joined: false,       // the guest wants to be live (Join pressed, Leave not)
  reconnecting: false,
  iceServers: [],
  policy: 'all',
  lastBytes: null,
};
// For tests and the curious.
window.r58guest = state;

function setStatus(kind, text) {
  $('status').dataset.kind = kind;
  $('status').textContent = text;
}

function setButtons() {
  const busy = state.joined;
  $('join-btn').disabled = busy;
  $('leave-btn').disabled = !busy;
  nameInput.disabled = busy;
  $('preview-btn').textContent = state.media ? 'Restart Preview' : 'Start Preview';
  $('live-badge').hidden = !(busy && state.client?.pc.connectionState === 'connected');
}

// --- preview and devices ------------------------------------------------------------------

function mediaError(e) {
  switch (e.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera and microphone access was refused. Allow it in the browser (the icon in the address bar), then press Start Preview again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera or microphone was found (or the chosen one is gone). Plug one in and press Start Preview.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera or microphone is busy (another app may be using it). Close it and press Start Preview.';
    default:
      return `Could not open camera and microphone: ${e.message || e.name}`;
  }
}

function constraints(kind) {
  const select = $(kind === 'video' ? 'camera' : 'microphone');
  // The pickers are filled (and enabled) only once the browser lists devices.
  const id = select.disabled ? '' : select.value;
  const base = kind === 'video'
    ? { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }
    : { echoCancellation: true, noiseSuppression: true };
  return id ? { ...base, deviceId: { exact: id } } : base;
}

async function startPreview() {
  if (!navigator.mediaDevices?.getUserMedia) {
    setStatus('error', 'This page cannot use the camera here: browsers allow it only over HTTPS (or on localhost).');
    log('navigator.mediaDevices is missing (insecure context?)', 'error');
    return false;
  }
  setStatus('info', 'Asking for camera and microphone…');
  try {
    const media = await navigator.mediaDevices.getUserMedia({ video: constraints('video'), audio: constraints('audio') });
    state.media?.getTracks().forEach((t) => t.stop());
    state.media = media;
    $('preview').srcObject = media;
    $('preview-empty').hidden = true;
    await fillPickers();
    const v = media.getVideoTracks()[0]?.getSettings() ?? {};
    log(`Preview: ${media.getVideoTracks()[0]?.label ?? 'no camera'} ${v.width ?? '?'}x${v.height ?? '?'}, ${media.getAudioTracks()[0]?.label ?? 'no microphone'}`);
    if (state.client) await replaceTracks();
    if (!state.joined) setStatus('idle', 'Preview running. Enter your name and press Join Stream.');
    setButtons();
    return true;
  } catch (e) {
    setStatus('error', mediaError(e));
    log(`getUserMedia: ${e.name}: ${e.message}`, 'error');
    return false;
  }
}

async function fillPickers() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, id] of [['videoinput', 'camera'], ['audioinput', 'microphone']]) {
    const select = $(id);
    const current = state.media?.getTracks()
      .find((t) => (t.kind === 'video') === (kind === 'videoinput'))?.getSettings().deviceId;
    select.replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${id} ${i + 1}`;
      o.selected = d.deviceId === current;
      return o;
    }));
    select.disabled = select.options.length === 0;
  }
}

/** A picker changed: swap that one track, in the preview and, when live, on the connection. */
async function switchDevice(kind) {
  if (!state.media) return;
  try {
    const fresh = await navigator.mediaDevices.getUserMedia({ [kind]: constraints(kind) });
    const track = fresh.getTracks()[0];
    for (const old of state.media.getTracks().filter((t) => t.kind === kind)) {
      state.media.removeTrack(old);
      old.stop();
    }
    state.media.addTrack(track);
    if (state.client) await replaceTracks();
    log(`Switched ${kind === 'video' ? 'camera' : 'microphone'} to ${track.label}`);
  } catch (e) {
    setStatus('error', mediaError(e));
    log(`switching ${kind}: ${e.name}: ${e.message}`, 'error');
  }
}

async function replaceTracks() {
  for (const sender of state.client.pc.getSenders()) {
    const kind = sender.track?.kind ?? null;
    const track = state.media.getTracks().find((t) => t.kind === kind);
    if (track && track !== sender.track) await sender.replaceTrack(track);
  }
}

// --- joining ------------------------------------------------------------------------------

async function liveStream(name) {
  try {
    const r = await fetch('/api/streams');
    if (!r.ok) return null;
    return (await r.json()).find((s) => s.name === name && s.online) ?? null;
  } catch {
    return null;
  }
}

async function getIceServers() {
  setStatus('info', 'Getting TURN credentials...');
  log('Getting TURN credentials...');
  try {
    const r = await fetch('/api/turn-credentials');
    if (r.status === 404) {
      log('This server hands out no TURN credentials (404): connecting without a relay', 'warn');
      return [];
    }
    if (!r.ok) {
      log(`TURN credentials: ${r.status} ${(await r.text()).trim()}: connecting without a relay`, 'warn');
      return [];
    }
    const { iceServers = [] } = await r.json();
    const urls = iceServers.flatMap((s) => [].concat(s.urls ?? s.url ?? []));
    log(`Got ${iceServers.length} ICE server(s): ${urls.join(', ') || 'none'}`);
    return iceServers;
  } catch (e) {
    log(`TURN credentials: ${e.message}: connecting without a relay`, 'warn');
    return [];
  }
}

async function join() {
  const name = nameInput.value.trim();
  if (!NAME_RE.test(name)) {
    setStatus('error', 'Enter a name of 1-64 letters, digits, "-", "_" or "." (no spaces).');
    nameInput.focus();
    return;
  }
  if (!state.media && !(await startPreview())) return;
  const live = await liveStream(name);
  if (live) {
    const mine = localStorage.getItem(OWNED_KEY) === name;
    if (live.source === 'camera') {
      setStatus('error', `"${name}" is the name of a camera here. Choose another name.`);
      return;
    }
    if (!mine) {
      setStatus('error', `The name "${name}" is already live (someone else is using it). Choose another name.`);
      log(`Name ${name} is already live`, 'warn');
      return;
    }
    log(`"${name}" is still live from this browser (a reload?): taking it over`);
  }
  localStorage.setItem('r58.guest.name', name);
  state.name = name;
  state.joined = true;
  setButtons();
  state.iceServers = await getIceServers();
  const relay = state.iceServers.some((s) => [].concat(s.urls ?? []).some((u) => /^turns?:/.test(u)));
  if (remote && relay) {
    state.policy = 'relay';
  } else {
    state.policy = 'all';
    if (remote) log('No TURN relay available: trying a direct connection, which a tunnel may not carry', 'warn');
  }
  if (!state.joined) return;
  const ok = await connect();
  if (!ok && state.joined) {
    state.joined = false;
    setButtons();
  }
}

/** One WHIP session; true once it is up. Errors become status messages. */
async function connect(attempt = 0) {
  const text = state.policy === 'relay' ? 'Connecting via TURN relay...' : 'Connecting...';
  if (attempt) setStatus('warn', `Reconnecting with a new session (attempt ${attempt}): ${text}`);
  else setStatus('info', text);
  log(text);
  const client = new WhipClient(state.name, state.media, {
    iceServers: state.iceServers,
    iceTransportPolicy: state.policy,
    maxVideoBitrate: 2_500_000,
    // An invite link (/guest_join?invite=...) or a publishing token (?token=...).
    token: publishToken,
    log,
  });
  state.client = client;
  state.lastBytes = null;
  $('conn-state').textContent = 'connecting';
  $('ice-type').textContent = '–';
  $('bitrate').textContent = '–';
  client.pc.addEventListener('connectionstatechange', () => onConnectionState(client));
  let candidates = 0;
  client.pc.addEventListener('icecandidate', (e) => { if (e.candidate?.candidate) candidates += 1; });
  try {
    await client.start();
    log(`WHIP session created: ${new URL(client.resource.location).pathname}`);
  } catch (e) {
    client.stop();
    if (state.client === client) state.client = null;
    if (e instanceof HttpError) {
      const why = e.status === 409
        ? `The name "${state.name}" is in use. Choose another name.`
        : e.status === 401 ? 'This server needs a publishing token (401): ask for an invite link that carries one (?token=...).'
        : e.status === 410 || e.status === 403 ? `This invite link does not work: ${e.reason}`
        : e.status === 503 ? 'The server is full right now (503). Try again in a moment.'
        : `The server refused: ${e.status} ${e.reason}`;
      setStatus('error', why);
      log(`WHIP POST: ${e.status} ${e.reason}`, 'error');
    } else {
      setStatus('error', `Could not reach the server: ${e.message}`);
      log(`WHIP POST: ${e.message}`, 'error');
    }
    return false;
  }
  // Gathering that ends with no candidate under the relay policy means the TURN server is
  // unreachable or refused the credentials: no point waiting for ICE.
  const noRoute = new Promise((resolve) => {
    client.pc.addEventListener('icegatheringstatechange', () => {
      if (client.pc.iceGatheringState === 'complete' && candidates === 0) resolve('no-candidates');
    });
  });
  const waitMs = attempt ? 8000 : 15000;
  const outcome = await Promise.race([waitConnected(client.pc, waitMs), noRoute]);
  if (outcome === true) return true;
  if (state.client !== client) return false;  // left meanwhile
  state.client = null;
  log(outcome === 'no-candidates'
    ? (state.policy === 'relay' ? 'The TURN relay gave no candidate (unreachable, or it refused the credentials)'
      : 'No network candidate could be gathered')
    : `No connection within ${waitMs / 1000} s (ICE ${client.pc.iceConnectionState})`, 'error');
  await client.stop();
  if (state.joined && !state.reconnecting) {
    setStatus('error', state.policy === 'relay'
      ? 'Could not connect through the TURN relay. Check your network and press Join again.'
      : 'Could not connect to the server. Check your network and press Join again.');
  }
  return false;
}

function waitConnected(pc, ms) {
  return new Promise((resolve) => {
    const check = () => {
      if (pc.connectionState === 'connected') finish(true);
      else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') finish(false);
    };
    const timer = setTimeout(() => finish(false), ms);
    function finish(v) {
      clearTimeout(timer);
      pc.removeEventListener('connectionstatechange', check);
      resolve(v);
    }
    pc.addEventListener('connectionstatechange', check);
    check();
  });
}

let lostTimer = null;
async function onConnectionState(client) {
  if (client !== state.client) return;
  const s = client.pc.connectionState;
  $('conn-state').textContent = s;
  clearTimeout(lostTimer);
  setButtons();
  if (s === 'connected') {
    const pair = await selectedCandidates(client.pc);
    if (pair) {
      log(`ICE candidate: type=${pair.local} (${pair.protocol}, server ${pair.remote})`);
      $('ice-type').textContent = `${pair.local}${pair.local === 'relay' ? ' (TURN)' : ''} → server ${pair.remote}`;
    }
    if (client !== state.client || client.pc.connectionState !== 'connected') return;
    localStorage.setItem(OWNED_KEY, state.name);
    setStatus('live', `Connected as ${state.name}! You are now live.`);
    log(`Connected as ${state.name}! You are now live.`);
    showOutputs(state.name);
    startReturn(state.name);
  } else if (state.joined && !state.reconnecting && (s === 'failed' || s === 'closed')) {
    reconnect(`connection ${s}`);
  } else if (state.joined && !state.reconnecting && s === 'disconnected') {
    // Often a brief network change that ICE heals on its own.
    lostTimer = setTimeout(() => reconnect('connection lost'), 4000);
  }
}

/** ICE restart on the same session, then new WHIP sessions with growing pauses. */
async function reconnect(why) {
  if (state.reconnecting || !state.joined) return;
  state.reconnecting = true;
  setButtons();
  try {
    setStatus('warn', `Connection lost (${why}). Reconnecting with an ICE restart...`);
    log(`Connection lost (${why}): trying an ICE restart`, 'warn');
    const old = state.client;
    try {
      await old.restartIce();
      if (await waitConnected(old.pc, 8000)) {
        log('ICE restart worked: connected again');
        setStatus('live', `Connected as ${state.name}! You are now live.`);
        return;
      }
      log('ICE restart did not reconnect', 'warn');
    } catch (e) {
      log(`ICE restart refused (${e.message})`, 'warn');
    }
    await old.stop();
    for (let attempt = 1; state.joined; attempt += 1) {
      // With our session gone, a live stream of our name means another publisher took it.
      if (await liveStream(state.name)) {
        setStatus('error', `Someone else is now live as "${state.name}". Press Join Stream to take the name back, or choose another.`);
        log(`Another publisher took over ${state.name}; not reconnecting`, 'warn');
        state.joined = false;
        state.client = null;
        localStorage.removeItem(OWNED_KEY);
        return;
      }
      log(`Starting a new WHIP session (attempt ${attempt})`);
      // On success the connection's own 'connected' handler says so.
      if (await connect(attempt)) return;
      const pause = Math.min(2 ** attempt, 15);
      setStatus('warn', `Reconnect failed; trying again in ${pause} s...`);
      await new Promise((r) => setTimeout(r, pause * 1000));
    }
  } finally {
    state.reconnecting = false;
    setButtons();
  }
}

async function leave() {
  state.joined = false;
  stopReturn();
  const client = state.client;
  state.client = null;
  localStorage.removeItem(OWNED_KEY);
  setButtons();
  if (client) await client.stop();
  $('conn-state').textContent = 'closed';
  $('bitrate').textContent = '–';
  $('ice-type').textContent = '–';
  setStatus('idle', 'You left the stream. Press Join Stream to go live again.');
  log('Left the stream (session deleted)');
}

/** Once a second: the bitrate we send, from getStats. */
async function sampleBitrate() {
  const client = state.client;
  if (!client || client.pc.connectionState !== 'connected') return;
  const stats = await client.pc.getStats();
  let bytes = 0;
  stats.forEach((s) => { if (s.type === 'outbound-rtp') bytes += s.bytesSent ?? 0; });
  const now = performance.now();
  if (state.lastBytes && bytes >= state.lastBytes.bytes) {
    const kbps = ((bytes - state.lastBytes.bytes) * 8) / (now - state.lastBytes.t);
    $('bitrate').textContent = `${Math.round(kbps)} kbps`;
  }
  state.lastBytes = { bytes, t: now };
}
setInterval(sampleBitrate, 1000);

$('preview-btn').addEventListener('click', startPreview);
$('join-btn').addEventListener('click', join);
$('leave-btn').addEventListener('click', leave);
$('camera').addEventListener('change', () => switchDevice('video'));
$('microphone').addEventListener('change', () => switchDevice('audio'));
navigator.mediaDevices?.addEventListener('devicechange', () => { if (state.media) fillPickers(); });
// Back from the back/forward cache: the session was deleted when the page was hidden.
addEventListener('pageshow', (e) => { if (e.persisted && state.joined && state.client) reconnect('page restored'); });
nameInput.addEventListener('keydown', (e) => { if (e.key === 'Enter' && !state.joined) join(); });
setButtons();

/**
 * Says on the page what the studio cannot do with this browser's stream: r58 does not
 * transcode, so VP8 (Firefox without OpenH264) is seen over WebRTC only, not over LL-HLS, in
 * recordings or on the program. The server's stream list says which outputs and why.
 */
async function showOutputs(name) {
  const note = $('codec-note');
  let unavailable = {};
  try {
    const r = await fetch('/api/streams', { cache: 'no-store' });
    if (!r.ok) return;
    const stream = (await r.json()).find((s) => s.name === name);
    unavailable = stream?.unavailable ?? {};
  } catch {
    return;
  }
  const reasons = Object.values(unavailable);
  note.hidden = reasons.length === 0;
  if (!reasons.length) return;
  const video = reasons[0].match(/its (video|audio) is (\S+)/);
  const codec = video ? `${video[2]} ${video[1]}` : 'a codec r58 cannot pass on';
  const outputs = Object.keys(OUTPUT_NAMES).filter((o) => o in unavailable).map((o) => OUTPUT_NAMES[o]);
  const listed = outputs.length > 1 ? `${outputs.slice(0, -1).join(', ')} and ${outputs.at(-1)}` : outputs[0];
  note.textContent = `Your browser sends ${codec}: the studio sees you live over WebRTC, but `
    + `${listed} cannot include you `
    + '(r58 does not transcode). Chrome, Edge, Safari, or Firefox with OpenH264 send H.264, which every output takes.';
  for (const why of reasons) log(`Output unavailable: ${why}`, 'warn');
}

const OUTPUT_NAMES = { hls: 'remote (LL-HLS) viewers', recording: 'recordings', program: 'the program' };

// --- the studio return --------------------------------------------------------------------------

/** The program picture with the studio's sound minus this guest's own voice, while live. */
let studio = null;

function startReturn(name) {
  const stream = `${name}.return`;
  if (studio?.name === stream) return;
  studio?.destroy();
  const video = $('studio');
  // Heard, not muted: the Join click was the user's gesture that lets the page play sound.
  video.muted = false;
  studio = new StreamPlayer(stream, video, {
    mode: mode.mode,
    token: publishToken,
    log,
    onState: (s, message) => {
      $('studio-box').dataset.state = s;
      $('studio-message').textContent = stateMessage(s, message);
    },
  });
  // A return feed is WebRTC only (it has no LL-HLS): a REMOTE page plays it through TURN.
  studio.hlsRefusal = 'the studio return is sent over WebRTC only';
  studio.start();
  $('studio-box').hidden = false;
  log(`Playing the studio return (${stream}): the program and everyone but you`);
}

function stopReturn() {
  studio?.destroy();
  studio = null;
  $('studio-box').hidden = true;
}

window.r58guestReturn = () => studio;
