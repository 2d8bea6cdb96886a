// `/switcher`: the production switcher. Every live source is an input with a small live preview
// and tally lights; a preview monitor and a program monitor (playing the `program` stream
// itself, so the operator sees exactly what goes out); Cut, per-input Take, keys 1-9 and
// Space/Enter; program audio following video or pinned; the cut history with latencies.
// The state comes from the server's events, so every open switcher shows the same tally.

import { accessMode, describeMode } from './mode.js';
import { createLog } from './log.js';
import { formatBitrate, watchStreams } from './streams.js';
import { StreamPlayer } from './player.js';
import {
  cutPlan, describeCut, describeError, keyIndex, latencySummary, newFallbacks, orderInputs, tallyOf,
} from './switcher-model.js';

const log = createLog(document.getElementById('log'));
const mode = accessMode(location.href);
const using = mode.mode === 'LOCAL' ? 'WebRTC/WHEP' : 'HLS';
document.getElementById('mode').textContent = `${mode.mode} · ${using}`;
document.getElementById('mode').dataset.mode = mode.mode;
log(describeMode(mode, using));

// For servers that protect /api/switcher* (and /whep/*) with a bearer token: /switcher?token=...
const token = new URLSearchParams(location.search).get('token');
const auth = token ? { Authorization: `Bearer ${token}` } : {};

/**
 * Live input previews at most: each is a decoder in this browser (and a session or an HLS
 * poller). `?previews=N` sets another limit (0-32) for a weak laptop or a big wall.
 */
const MAX_PREVIEWS = previewLimit(new URLSearchParams(location.search).get('previews'), mode.mode === 'LOCAL' ? 12 : 6);
/** An input scrolled out of view keeps its preview this long (scrolling back is instant). */
const OFFSCREEN_STOP_MS = 5000;
/** A page in a background tab stops its players after this long. */
const HIDDEN_STOP_MS = 30000;

function previewLimit(asked, fallback) {
  const n = Number(asked);
  return asked !== null && asked !== '' && Number.isInteger(n) && n >= 0 && n <= 32 ? n : fallback;
}

const el = (id) => document.getElementById(id);
const inputsBox = el('inputs');
const template = el('input-template');
const cutButton = el('cut-btn');
const audioSelect = el('audio');
const swapBox = el('swap');

/** The switcher state from the server (GET /api/switcher's shape), or null until it came. */
let state = null;
/** The live stream list (name -> summary) from /api/events. */
let streams = new Map();
/** name -> Input, and the display order. */
const inputs = new Map();
let ordered = [];
let pageHidden = false;

// --- alerts --------------------------------------------------------------------------------

let alertTimer = null;
function showAlert(message, kind = 'error', ms = 10000) {
  const box = el('alert');
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(alertTimer);
  if (ms) alertTimer = setTimeout(clearAlert, ms);
  log(message, kind === 'error' ? 'error' : kind === 'warn' ? 'warn' : 'info');
}
function clearAlert() {
  clearTimeout(alertTimer);
  el('alert').hidden = true;
}

// --- inputs --------------------------------------------------------------------------------

const STATE_LABELS = { idle: '', connecting: 'Connecting', live: '', error: 'Error', offline: 'Offline', paused: 'Paused', stalled: 'Stalled' };

class Input {
  constructor(summary) {
    this.name = summary.name;
    this.el = template.content.firstElementChild.cloneNode(true);
    this.el.dataset.stream = this.name;
    this.video = this.el.querySelector('video');
    this.el.querySelector('.input-name').textContent = this.name;
    this.visible = false;
    this.observed = false;
    this.lastVisible = 0;
    this.lastTime = 0;
    this.stalledSince = null;
    this.player = new StreamPlayer(this.name, this.video, {
      mode: mode.mode,
      token,
      log,
      onState: (s, m) => this.showState(s, m),
    });
    this.el.addEventListener('click', () => select(this.name));
    this.el.querySelector('.take').addEventListener('click', (e) => {
      e.stopPropagation();
      take(this.name);
    });
    this.update(summary);
  }

  showState(s, message) {
    this.el.dataset.state = s;
    this.el.querySelector('.input-message').textContent = s === 'live' ? '' : (message || STATE_LABELS[s] || '');
    if (state?.preview === this.name) preview.sync();
  }

  update(summary) {
    this.summary = summary;
    this.el.dataset.source = summary.source === 'camera' ? 'camera' : 'guest';
    this.el.querySelector('.input-kind').textContent = summary.source === 'camera' ? 'camera' : 'guest';
    this.el.querySelector('.stat-bitrate').textContent = summary.online ? formatBitrate(summary.bitrate_bps) : '';
    if (!summary.online && this.player.running) this.player.stop('offline', 'Offline');
    else if (!summary.online) this.showState('offline', 'Offline');
    this.decorate();
  }

  /** Key number, tally lights, whether it can go to program. */
  decorate() {
    const index = ordered.indexOf(this);
    this.el.querySelector('.input-key').textContent = index >= 0 && index < 9 ? String(index + 1) : '';
    const t = tallyOf(this.name, state);
    this.el.dataset.program = String(t.program);
    this.el.dataset.preview = String(t.preview);
    this.el.dataset.pending = String(t.pending);
    this.el.querySelector('.input-tally').textContent = t.program ? 'PGM' : t.pending ? 'CUT…' : t.preview ? 'PVW' : '';
    const audio = this.summary.audio;
    const onAir = Boolean(audio) && t.audio;
    this.el.querySelector('.stat-audio').textContent = audio ? `audio ${audio.codec}${onAir ? ' · on program' : ''}` : 'no audio';
    this.el.dataset.audioOnAir = String(onAir);
    const source = state?.sources.find((s) => s.name === this.name);
    const problem = !this.summary.online ? 'Offline'
      : source?.incompatible ? `Cannot go to program: ${source.incompatible}` : '';
    this.el.querySelector('.input-problem').textContent = problem;
    this.el.dataset.problem = String(Boolean(problem));
    const take = this.el.querySelector('.take');
    take.disabled = Boolean(problem) || t.program || t.pending;
    take.title = problem || (t.program ? 'On program' : 'Cut straight to this source');
    this.el.setAttribute('aria-label', `${this.name}${t.program ? ', on program' : ''}${t.preview ? ', in preview' : ''}`);
  }

  /** Whether this input should show a live preview now (the budget aside). */
  wantsPreview(now) {
    if (!this.summary.online || pageHidden) return false;
    // In LOCAL mode the preview monitor shows this input's own stream.
    if (mode.mode === 'LOCAL' && state?.preview === this.name) return true;
    return this.visible || now - this.lastVisible < OFFSCREEN_STOP_MS;
  }

  /** Once a second: resolution, and whether the picture still moves. */
  refresh() {
    const v = this.video;
    this.el.querySelector('.stat-res').textContent = v.videoWidth && this.player.state === 'live' ? `${v.videoWidth}×${v.videoHeight}` : '';
    const s = this.player.state;
    // Chromium pauses muted autoplay videos scrolled out of view: no frames there says nothing.
    if (!this.visible) {
      this.stalledSince = null;
      if (s === 'stalled') this.player.setState('live', '');
    } else if (s === 'live' || s === 'stalled') {
      if (v.currentTime !== this.lastTime) {
        this.lastTime = v.currentTime;
        this.stalledSince = null;
        if (s === 'stalled') this.player.setState('live', '');
      } else {
        this.stalledSince ??= performance.now();
        if (performance.now() - this.stalledSince > 4000 && s !== 'stalled') this.player.setState('stalled', 'No new frames');
      }
    }
  }

  remove() {
    this.player.destroy();
    visibility.unobserve(this.el);
    this.el.remove();
  }
}

const visibility = new IntersectionObserver((entries) => {
  const now = performance.now();
  for (const entry of entries) {
    const input = inputs.get(entry.target.dataset.stream);
    if (!input) continue;
    input.observed = true;
    input.visible = entry.isIntersecting;
    if (entry.isIntersecting) input.lastVisible = now;
  }
  schedulePreviews();
}, { threshold: 0.01 });

/**
 * Starts and stops input previews, at most MAX_PREVIEWS: in LOCAL mode the preview source's
 * first (the preview monitor shows its stream), then the visible ones in display order.
 */
function schedulePreviews() {
  const now = performance.now();
  for (const input of inputs.values()) if (input.visible) input.lastVisible = now;
  const first = mode.mode === 'LOCAL' ? inputs.get(state?.preview) : undefined;
  const queue = first ? [first, ...ordered.filter((i) => i !== first)] : ordered;
  let running = 0;
  for (const input of queue) {
    // Not looked at yet (the observer answers right after the input is added).
    if (!input.observed && !(mode.mode === 'LOCAL' && state?.preview === input.name)) continue;
    if (!input.wantsPreview(now)) {
      if (input.player.running) {
        input.player.stop(input.summary.online ? 'paused' : 'offline',
          !input.summary.online ? 'Offline' : pageHidden ? 'Paused while the page is hidden' : 'Paused (scrolled out of view)');
      } else if (input.summary.online && input.player.state === 'idle') {
        input.showState('paused', 'Paused (scrolled out of view)');
      }
      continue;
    }
    if (running < MAX_PREVIEWS) {
      running += 1;
      input.player.start();
    } else if (input.player.running || input.player.state !== 'paused') {
      input.player.stop('paused', `Preview off: at most ${MAX_PREVIEWS} live preview${MAX_PREVIEWS === 1 ? '' : 's'} at once`);
    }
  }
}

function renderInputs() {
  for (const [name, input] of inputs) {
    if (!streams.has(name)) {
      input.remove();
      inputs.delete(name);
      log(`${name}: gone`);
    }
  }
  const summaries = orderInputs(streams, state?.program_stream);
  ordered = summaries.map((summary) => {
    let input = inputs.get(summary.name);
    if (!input) {
      input = new Input(summary);
      inputs.set(summary.name, input);
      visibility.observe(input.el);
      log(`${summary.name}: ${summary.source === 'camera' ? 'camera' : 'guest'} in the inputs`);
    } else {
      input.update(summary);
    }
    return input;
  });
  ordered.forEach((input, index) => {
    // Move only what is out of place: a video taken out of the page pauses.
    if (inputsBox.children[index] !== input.el) inputsBox.insertBefore(input.el, inputsBox.children[index] ?? null);
    input.decorate();
  });
  el('no-inputs').hidden = ordered.length > 0;
  schedulePreviews();
}

// --- monitors ------------------------------------------------------------------------------

class Monitor {
  constructor(root) {
    this.root = root;
    this.video = root.querySelector('video');
    this.video.addEventListener('playing', () => this.onPlaying());
    this.lastTime = 0;
    this.stalledSince = null;
  }

  setState(s, message = '') {
    this.root.dataset.state = s;
    this.root.querySelector('.monitor-message').textContent = s === 'live' ? '' : message;
  }

  onPlaying() {}

  refreshRes() {
    const v = this.video;
    const live = this.root.dataset.state === 'live';
    this.root.querySelector('.monitor-res').textContent = live && v.videoWidth ? `${v.videoWidth}×${v.videoHeight}` : '';
  }
}

/** Shows the preview source: in LOCAL mode the input's own WHEP stream, in REMOTE mode its own HLS player. */
class PreviewMonitor extends Monitor {
  constructor(root) {
    super(root);
    this.name = undefined; // so that show(null) below draws the empty state
    this.own = null;
    this.shared = null;
    this.show(null);
  }

  onPlaying() { if (this.name) this.setState('live'); }

  show(name) {
    if (name === this.name) {
      this.sync();
      return;
    }
    this.name = name;
    this.own?.destroy();
    this.own = null;
    this.shared = null;
    this.video.srcObject = null;
    this.root.querySelector('.monitor-source').textContent = name ?? '';
    if (!name) {
      this.setState('idle', 'No preview. Click an input or press 1–9.');
      return;
    }
    if (mode.mode === 'REMOTE') {
      this.own = new StreamPlayer(name, this.video, { mode: mode.mode, token, log, onState: (s, m) => this.setState(s, m) });
      this.own.start();
    }
    this.sync();
  }

  /** LOCAL: follow the input's MediaStream as its player (re)connects. */
  sync() {
    if (!this.name || this.own) return;
    const input = inputs.get(this.name);
    if (!input) {
      this.video.srcObject = null;
      this.shared = null;
      this.setState('offline', `"${this.name}" is not live.`);
      return;
    }
    const stream = input.player.mediaStream;
    if (stream !== this.shared) {
      this.shared = stream;
      this.video.srcObject = stream;
    }
    if (input.player.state !== 'live') this.setState(input.player.state, input.player.message || 'Waiting for the source…');
    else if (this.video.readyState >= 2 && !this.video.paused) this.setState('live');
    else this.setState('connecting', 'Starting…');
  }
}

/** Plays the program stream itself (WHEP or LL-HLS by mode): what goes out. */
class ProgramMonitor extends Monitor {
  constructor(root) {
    super(root);
    this.player = null;
    this.setState('idle', 'Nothing on program yet: pick a source, then Cut (Space) or Take.');
    const unmute = el('program-unmute');
    unmute.addEventListener('click', () => {
      this.video.muted = !this.video.muted;
      if (!this.video.muted) this.video.play().catch(() => {});
      unmute.textContent = this.video.muted ? 'Unmute' : 'Mute';
      unmute.setAttribute('aria-pressed', String(!this.video.muted));
    });
  }

  /** Plays when the switcher has a program and the page is in view. */
  update() {
    const name = state?.program_stream ?? 'program';
    const hasProgram = Boolean(state?.program || state?.pending || streams.get(name)?.online);
    this.root.querySelector('.monitor-source').textContent = state?.program ?? '';
    this.root.querySelector('.monitor-pending').textContent = state?.pending ? `→ ${state.pending} (waiting for its keyframe)` : '';
    if (this.player && this.player.name !== name) {
      this.player.destroy();
      this.player = null;
    }
    if (!hasProgram || pageHidden) {
      if (this.player?.running) this.player.stop();
      this.setState('idle', pageHidden ? 'Paused while the page is hidden'
        : 'Nothing on program yet: pick a source, then Cut (Space) or Take.');
      return;
    }
    this.player ??= new StreamPlayer(name, this.video, { mode: mode.mode, token, log, onState: (s, m) => this.setState(s, m) });
    this.player.start();
  }

  async refresh() {
    this.refreshRes();
    // Only once playing: hls.js reports the whole start-up wait as latency before that.
    const label = this.player?.running && this.root.dataset.state === 'live' ? await this.player.latencyLabel() : null;
    this.root.querySelector('.monitor-latency').textContent = label ?? '';
    const v = this.video;
    const s = this.root.dataset.state;
    if (s === 'live' || s === 'stalled') {
      if (v.currentTime !== this.lastTime) {
        this.lastTime = v.currentTime;
        this.stalledSince = null;
        if (s === 'stalled') this.setState('live');
      } else {
        this.stalledSince ??= performance.now();
        if (performance.now() - this.stalledSince > 4000) this.setState('stalled', 'No new frames on program');
      }
    }
  }
}

const preview = new PreviewMonitor(el('preview-monitor'));
const program = new ProgramMonitor(el('program-monitor'));

// --- switcher state ------------------------------------------------------------------------

function applyState(s) {
  const before = state;
  state = s;
  if (before) {
    for (const cut of newFallbacks(before.history, s.history)) {
      showAlert(`Program source "${cut.from ?? '?'}" went away: the program fell back to "${cut.to}".`, 'warn', 15000);
    }
  }
  if (before?.program && !s.program && !s.pending) {
    showAlert(`Program source "${before.program}" went away and no fallback source is live: the program is paused.`, 'warn', 0);
  }
  renderInputs();
  preview.show(s.preview);
  program.update();
  renderControls();
  renderHistory();
}

function renderControls() {
  const plan = cutPlan(state);
  cutButton.disabled = !plan.ok;
  cutButton.title = plan.ok ? `Cut "${plan.source}" to program (Space or Enter)` : plan.why;
  // Program audio: follows video, or pinned to a source that has a microphone.
  const wanted = ['', ...(state?.sources ?? []).filter((s) => !s.incompatible).map((s) => s.name)];
  const current = [...audioSelect.options].map((o) => o.value);
  if (wanted.join('\n') !== current.join('\n')) {
    audioSelect.replaceChildren(...wanted.map((name) => {
      const option = document.createElement('option');
      option.value = name;
      const source = state.sources.find((s) => s.name === name);
      option.textContent = name === '' ? 'Follows video' : source?.audio ? name : `${name} (no audio)`;
      option.disabled = Boolean(name) && !source?.audio;
      return option;
    }));
  }
  const pin = state?.audio_pin ?? '';
  if (pin && !wanted.includes(pin)) {
    // Pinned to a source that is gone: say so rather than show "Follows video".
    const option = document.createElement('option');
    option.value = pin;
    option.textContent = `${pin} (gone)`;
    option.disabled = true;
    audioSelect.append(option);
  }
  audioSelect.value = pin;
  const summary = latencySummary(state?.history);
  el('cut-latency').textContent = summary.last == null ? ''
    : `Last cut ${Math.round(summary.last)} ms · median ${Math.round(summary.median)} ms (${summary.count})`;
}

function renderHistory() {
  const list = el('history');
  const cuts = [...(state?.history ?? [])].reverse().slice(0, 12);
  list.replaceChildren(...cuts.map((cut) => {
    const d = describeCut(cut);
    const li = document.createElement('li');
    li.dataset.kind = d.kind;
    const time = document.createElement('time');
    time.textContent = new Date(cut.requested_at_ms).toTimeString().slice(0, 8);
    const what = document.createElement('span');
    what.className = 'cut-what';
    what.textContent = d.text;
    const latency = document.createElement('span');
    latency.className = 'cut-latency-ms';
    latency.textContent = d.latency;
    li.append(time, what, latency);
    if (d.kind === 'fallback') {
      const tag = document.createElement('span');
      tag.className = 'cut-tag';
      tag.textContent = 'fallback';
      li.append(tag);
    }
    return li;
  }));
  el('no-history').hidden = cuts.length > 0;
  el('latency-summary').textContent = '';
}

// --- actions -------------------------------------------------------------------------------

/** Switcher states received from the events (or the poll), counted. */
let statesReceived = 0;

/** POSTs `{source}` to /api/switcher/{action}; the new state, or null after saying why not. */
async function send(action, source) {
  const seen = statesReceived;
  let response;
  try {
    response = await fetch(`/api/switcher/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...auth },
      body: JSON.stringify({ source }),
    });
  } catch (e) {
    showAlert(describeError(action, source, 0, e.message));
    return null;
  }
  if (!response.ok) {
    const reason = (await response.text().catch(() => '')).trim().split('\n')[0].slice(0, 300);
    showAlert(describeError(action, source, response.status, reason));
    return null;
  }
  const s = await response.json();
  if (el('alert').dataset.kind === 'error') clearAlert();
  // The answer is the state right after the request. The events tell every change after it in
  // order, and one may already have overtaken the answer (a cut taken within milliseconds):
  // then the answer is older than what the page shows and must not replace it.
  if (statesReceived === seen) applyState(s);
  return s;
}

async function select(name) {
  if (state?.preview === name) return;
  log(`preview: ${name}`);
  await send('preview', name);
}

async function take(name) {
  log(`take: ${name}`);
  await send('program', name);
}

async function cut() {
  const plan = cutPlan(state);
  if (!plan.ok) {
    showAlert(plan.why, 'info', 4000);
    return;
  }
  const old = state.pending ?? state.program;
  log(`cut: ${old ?? 'nothing'} → ${plan.source}`);
  const done = await send('program', plan.source);
  if (done && swapBox.checked && old && old !== plan.source && done.sources.some((s) => s.name === old)) {
    await send('preview', old);
  }
}

cutButton.addEventListener('click', () => cut());
audioSelect.addEventListener('change', async () => {
  const source = audioSelect.value || null;
  // Give the keys back to the switcher (a focused picker would take 1-9 and Enter).
  audioSelect.blur();
  log(source ? `program audio pinned to ${source}` : 'program audio follows video');
  if (!(await send('audio', source))) audioSelect.value = state?.audio_pin ?? '';
});
swapBox.checked = localStorage.getItem('r58.switcher.swap') !== 'false';
swapBox.addEventListener('change', () => localStorage.setItem('r58.switcher.swap', String(swapBox.checked)));

// Keys act on the whole page, except while typing or choosing in a form field.
const TYPING = 'input:not([type="checkbox"]), select, textarea, [contenteditable]';
addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target instanceof Element && e.target.closest(TYPING)) return;
  const index = keyIndex(e.key);
  if (index >= 0) {
    e.preventDefault();
    const input = ordered[index];
    if (input) select(input.name);
    return;
  }
  if (e.key === ' ' || e.key === 'Enter') {
    // A focused button would act on this key too: the key means Cut here, nothing else.
    e.preventDefault();
    if (!e.repeat) cut();
  } else if (e.key === 'Escape') {
    clearAlert();
  }
}, true);
addEventListener('keyup', (e) => {
  // Space activates a focused button or checkbox on keyup: here it was Cut, nothing else.
  if (e.key === ' ' && e.target instanceof Element && e.target.closest('button, input[type="checkbox"]')) e.preventDefault();
}, true);

// --- feeds ---------------------------------------------------------------------------------

let pollTimer = null;
/** The server keeps the switcher out of the events without a token: ask GET /api/switcher. */
function pollState(reason) {
  if (pollTimer) return;
  log(`Switcher state by polling: ${reason}`, 'warn');
  const poll = async () => {
    try {
      const r = await fetch('/api/switcher', { headers: auth });
      if (r.ok) {
        statesReceived += 1;
        applyState(await r.json());
      }
      else if (r.status === 401) showAlert('This switcher needs an operator token (401): open the page with ?token=… .', 'error', 0);
      else showAlert(`The switcher state is not available: ${r.status}`, 'error', 5000);
    } catch (e) {
      showAlert(`The server did not answer: ${e.message}`, 'error', 5000);
    }
  };
  poll();
  pollTimer = setInterval(poll, 1000);
}

const feed = el('feed');
watchStreams((list) => {
  streams = list;
  renderInputs();
  program.update();
  if (state?.preview) preview.sync();
}, (status) => {
  feed.dataset.state = status;
  feed.textContent = status === 'live' ? 'live' : 'reconnecting…';
  if (status === 'reconnecting') log('Lost the live updates; reconnecting', 'warn');
}, {
  switcher: (s) => {
    statesReceived += 1;
    applyState(s);
  },
  switcher_locked: (data) => pollState(data.reason),
});

let hiddenTimer = null;
document.addEventListener('visibilitychange', () => {
  clearTimeout(hiddenTimer);
  if (document.hidden) {
    hiddenTimer = setTimeout(() => {
      pageHidden = true;
      log('Page hidden: previews and the program monitor stop until it is shown again');
      schedulePreviews();
      program.update();
    }, HIDDEN_STOP_MS);
  } else if (pageHidden) {
    pageHidden = false;
    schedulePreviews();
    program.update();
  }
});

setInterval(() => {
  for (const input of inputs.values()) input.refresh();
  preview.refreshRes();
  program.refresh();
  schedulePreviews();
}, 1000);

// Tests and curious operators can look inside.
window.r58switcher = {
  mode,
  inputs,
  preview,
  program,
  take,
  get state() { return state; },
  get order() { return ordered.map((i) => i.name); },
};
