// `/switcher`: the production switcher. Every live source is an input with a small live preview
// and tally lights; a preview monitor and a program monitor (playing the `program` stream
// itself, so the operator sees exactly what goes out); Cut, per-input Take, keys 1-9 and
// Space/Enter; program audio as a mix (mixer.js: a strip per input, meters) or pinned; the cut
// history with latencies; the REC control (rec-control.js: record all, the tally, the disk).
// The state comes from the server's events, so every open switcher shows the same tally.
// This file is the page's wiring only: every decision is in switcher-model.js (tested in
// node), and every preview and monitor is the pages' one player (player.js).

import { accessMode } from './mode.js';
import { createLog } from './log.js';
import { sourceKind, watchStreams } from './streams.js';
import { StreamPlayer, showTransports } from './player.js';
import { MixerPanel } from './mixer.js';
import { resolutionLabel, stateMessage } from './player-model.js';
import {
  HIDDEN_STOP_MS, NO_PREVIEW, audioChoices, cutLatencyText, cutPlan, describeError, historyLines, inputView,
  keyAction, orderInputs, planPreviews, pollFailure, previewLimit, previewMonitorState, programView,
  refusalReason, stateAlerts, swapAfterCut,
} from './switcher-model.js';
import { csrfHeaders } from './session.js';
import { setupInvites } from './invites.js';
import { setupRecording } from './rec-control.js';

const log = createLog(document.getElementById('log'));
const mode = accessMode(location.href);
// The mode line follows what the players settle on (REMOTE: WebRTC via TURN, else LL-HLS).
showTransports(mode, document.getElementById('mode'), log);

// For servers that protect /api/switcher* (and /whep/*) with a bearer token: /switcher?token=...
const token = new URLSearchParams(location.search).get('token');
// Signed in (from outside): the session cookie, and its CSRF token on every change.
const auth = { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(await csrfHeaders()) };
setupInvites(auth);
/** The REC control's view (rec-control.js), null until recording is known to be on. */
let recView = null;

/** Live input previews at most (`?previews=N`). */
const MAX_PREVIEWS = previewLimit(new URLSearchParams(location.search).get('previews'), mode.mode);

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

const player = (name, video, onState) => new StreamPlayer(name, video, { mode: mode.mode, token, log, onState });

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
    this.player = player(this.name, this.video, (s, m) => this.showState(s, m));
    this.el.addEventListener('click', () => select(this.name));
    this.el.querySelector('.take').addEventListener('click', (e) => {
      e.stopPropagation();
      take(this.name);
    });
    this.el.querySelector('.rec-one').addEventListener('click', (e) => {
      e.stopPropagation();
      recording.toggleStream(this.name);
    });
    this.update(summary);
  }

  showState(s, message) {
    this.el.dataset.state = s;
    this.el.querySelector('.input-message').textContent = stateMessage(s, message);
    if (state?.preview === this.name) preview.sync();
  }

  update(summary) {
    this.summary = summary;
    if (!summary.online && this.player.running) this.player.stop('offline', 'Offline');
    else if (!summary.online) this.showState('offline', 'Offline');
    this.decorate();
  }

  /** Key number, tally lights, kind, bitrate, audio, whether it can go to program. */
  decorate() {
    const v = inputView(this.summary, state, ordered.indexOf(this));
    const q = (selector) => this.el.querySelector(selector);
    q('.input-key').textContent = v.key;
    this.el.dataset.program = String(v.tally.program);
    this.el.dataset.preview = String(v.tally.preview);
    this.el.dataset.pending = String(v.tally.pending);
    q('.input-tally').textContent = v.tallyText;
    this.el.dataset.source = v.kind;
    q('.input-kind').textContent = v.kind;
    q('.stat-bitrate').textContent = v.bitrate;
    q('.stat-audio').textContent = v.audioText;
    this.el.dataset.audioOnAir = String(v.audioOnAir);
    q('.input-problem').textContent = v.problem;
    this.el.dataset.problem = String(Boolean(v.problem));
    this.el.dataset.rec = String(Boolean(recView?.writing.has(this.name)));
    const recButton = q('.rec-one');
    const armed = Boolean(recView?.armed.has(this.name));
    recButton.hidden = !recView;
    recButton.textContent = armed ? 'Stop rec' : 'Rec';
    recButton.setAttribute('aria-pressed', String(armed));
    recButton.title = armed ? `Stop recording ${this.name}` : `Record ${this.name}`;
    const takeButton = q('.take');
    takeButton.disabled = v.takeDisabled;
    takeButton.title = v.takeTitle;
    this.el.setAttribute('aria-label', v.ariaLabel);
  }

  /** Once a second: the resolution (the player itself watches for stalls). */
  refresh() {
    const v = this.video;
    this.el.querySelector('.stat-res').textContent = this.player.state === 'live' ? resolutionLabel(v.videoWidth, v.videoHeight) : '';
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

/** Starts and stops input previews as switcher-model.js's planPreviews says. */
function schedulePreviews() {
  const now = performance.now();
  for (const input of inputs.values()) if (input.visible) input.lastVisible = now;
  const plan = planPreviews(ordered.map((i) => ({
    name: i.name, online: i.summary.online, observed: i.observed, visible: i.visible,
    lastVisible: i.lastVisible, running: i.player.running, state: i.player.state,
  })), { local: mode.mode === 'LOCAL', preview: state?.preview, max: MAX_PREVIEWS, pageHidden, now });
  for (const step of plan) {
    const input = inputs.get(step.name);
    if (step.action === 'start') input.player.start();
    else if (step.action === 'stop') input.player.stop(step.state, step.message);
    else if (step.action === 'show') input.showState(step.state, step.message);
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
      log(`${summary.name}: ${sourceKind(summary)} in the inputs`);
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
  }

  setState(s, message = '') {
    this.root.dataset.state = s;
    this.root.querySelector('.monitor-message').textContent = stateMessage(s, message);
  }

  onPlaying() {}

  refreshRes() {
    const v = this.video;
    const live = this.root.dataset.state === 'live';
    this.root.querySelector('.monitor-res').textContent = live ? resolutionLabel(v.videoWidth, v.videoHeight) : '';
  }
}

/** Shows the preview source: in LOCAL mode the input's own WHEP stream, in REMOTE mode its own player. */
class PreviewMonitor extends Monitor {
  constructor(root) {
    super(root);
    this.name = undefined; // so that show(null) below draws the empty state
    this.own = null;
    this.shared = null;
    this.show(null);
  }

  onPlaying() { if (this.name && !this.own) this.sync(); }

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
      this.setState('idle', NO_PREVIEW);
      return;
    }
    if (mode.mode === 'REMOTE') {
      this.own = player(name, this.video, (s, m) => this.setState(s, m));
      this.own.start();
    }
    this.sync();
  }

  /** LOCAL: follow the input's MediaStream as its player (re)connects, and show its state. */
  sync() {
    if (!this.name || this.own) return;
    const input = inputs.get(this.name);
    const stream = input?.player.mediaStream ?? null;
    if (stream !== this.shared) {
      this.shared = stream;
      this.video.srcObject = stream;
    }
    const playing = this.video.readyState >= 2 && !this.video.paused;
    const shown = previewMonitorState(this.name, input ? { state: input.player.state, message: input.player.message } : null, playing);
    this.setState(shown.state, shown.message);
  }
}

/** Plays the program stream itself (WHEP, or in REMOTE mode LL-HLS where WHEP via TURN does not do): what goes out. */
class ProgramMonitor extends Monitor {
  constructor(root) {
    super(root);
    this.player = null;
    this.update();
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
    const v = programView(state, streams, pageHidden);
    this.root.querySelector('.monitor-source').textContent = v.source;
    this.root.querySelector('.monitor-pending').textContent = v.pending;
    if (this.player && this.player.name !== v.stream) {
      this.player.destroy();
      this.player = null;
    }
    if (!v.play) {
      if (this.player?.running) this.player.stop();
      this.setState('idle', v.idleMessage);
      return;
    }
    this.player ??= player(v.stream, this.video, (s, m) => this.setState(s, m));
    this.player.start();
  }

  async refresh() {
    this.refreshRes();
    // Only once playing: hls.js reports the whole start-up wait as latency before that.
    const label = this.player?.running && this.root.dataset.state === 'live' ? await this.player.latencyLabel() : null;
    this.root.querySelector('.monitor-latency').textContent = label ?? '';
  }
}

const preview = new PreviewMonitor(el('preview-monitor'));
const program = new ProgramMonitor(el('program-monitor'));
const mixer = new MixerPanel(el('mixer'), { auth, token, log, onError: (message) => showAlert(message) });

// --- switcher state ------------------------------------------------------------------------

function applyState(s) {
  const before = state;
  state = s;
  for (const alert of stateAlerts(before, s)) showAlert(alert.message, alert.kind, alert.ms);
  renderInputs();
  preview.show(s.preview);
  program.update();
  renderControls();
  renderHistory();
  mixer.render(s);
}

function renderControls() {
  const plan = cutPlan(state);
  cutButton.disabled = !plan.ok;
  cutButton.title = plan.ok ? `Cut "${plan.source}" to program (Space or Enter)` : plan.why;
  const choices = audioChoices(state);
  const key = (o) => `${o.value}\t${o.text}\t${o.disabled}`;
  const current = [...audioSelect.options].map((o) => key({ value: o.value, text: o.textContent, disabled: o.disabled }));
  if (choices.options.map(key).join('\n') !== current.join('\n')) {
    audioSelect.replaceChildren(...choices.options.map((o) => {
      const option = document.createElement('option');
      option.value = o.value;
      option.textContent = o.text;
      option.disabled = o.disabled;
      return option;
    }));
  }
  audioSelect.value = choices.value;
  el('cut-latency').textContent = cutLatencyText(state?.history);
}

function renderHistory() {
  const lines = historyLines(state?.history);
  el('history').replaceChildren(...lines.map((line) => {
    const li = document.createElement('li');
    li.dataset.kind = line.kind;
    const part = (tag, className, text) => {
      const node = document.createElement(tag);
      if (className) node.className = className;
      node.textContent = text;
      return node;
    };
    li.append(part('time', '', line.time), part('span', 'cut-what', line.text), part('span', 'cut-latency-ms', line.latency));
    if (line.tag) li.append(part('span', 'cut-tag', line.tag));
    return li;
  }));
  el('no-history').hidden = lines.length > 0;
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
    showAlert(describeError(action, source, response.status, refusalReason(await response.text().catch(() => ''))));
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
  const back = done && swapAfterCut(old, plan.source, done, swapBox.checked);
  if (back) await send('preview', back);
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
  const action = keyAction({
    key: e.key, ctrlKey: e.ctrlKey, metaKey: e.metaKey, altKey: e.altKey, repeat: e.repeat,
    typing: e.target instanceof Element && Boolean(e.target.closest(TYPING)),
  });
  // A focused button would act on Space or Enter too: the key means Cut here, nothing else.
  if (action.preventDefault) e.preventDefault();
  if (action.type === 'select') {
    const input = ordered[action.index];
    if (input) select(input.name);
  } else if (action.type === 'cut') {
    cut();
  } else if (action.type === 'clear') {
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
        return;
      }
      const failure = pollFailure(r.status);
      showAlert(failure.message, 'error', failure.ms);
    } catch (e) {
      const failure = pollFailure(0, e.message);
      showAlert(failure.message, 'error', failure.ms);
    }
  };
  poll();
  pollTimer = setInterval(poll, 1000);
}

const recording = setupRecording({
  auth,
  onAlert: (message) => showAlert(message, 'error', 0),
  onChange: (view) => {
    recView = view;
    for (const input of inputs.values()) input.decorate();
  },
});

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
  recording: (summary) => recording.apply(summary),
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
  mixer,
  recording,
  take,
  get state() { return state; },
  get order() { return ordered.map((i) => i.name); },
};
