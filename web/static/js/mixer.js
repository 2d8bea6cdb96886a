// The switcher's audio mixer panel: a strip per input (fader, mute, mode, a live meter with peak
// hold) and the master. Settings come with the switcher state (so every open switcher shows the
// same faders); levels are read from GET /api/switcher/audio while the page is visible.
// Decisions are in mixer-model.js.

import {
  FADER_SEND_MS, GAIN_MAX_DB, GAIN_MIN_DB, LEVELS_EVERY_MS, audible, changeBody, gainLabel, levelLabel,
  meterFraction, stripRows,
} from './mixer-model.js';

export class MixerPanel {
  /** `root`: the panel; `auth`: request headers; `onError(message)` shows a refusal. */
  constructor(root, { auth, log, onError }) {
    this.root = root;
    this.box = root.querySelector('.strips');
    this.template = root.querySelector('template');
    this.auth = auth;
    this.log = log;
    this.onError = onError;
    this.strips = new Map();
    this.master = this.makeStrip(null);
    root.querySelector('.master').replaceChildren(this.master.el);
    this.timer = setInterval(() => this.readLevels(), LEVELS_EVERY_MS);
  }

  /** The switcher state changed: strips and faders follow it (unless being dragged). */
  render(state) {
    const audio = state?.audio ?? null;
    this.root.hidden = !audio;
    if (!audio) return;
    const names = (state.sources ?? []).map((s) => s.name);
    const rows = stripRows(audio, names);
    for (const [name, strip] of this.strips) {
      if (!rows.some((r) => r.name === name)) {
        strip.el.remove();
        this.strips.delete(name);
      }
    }
    rows.forEach((row, i) => {
      let strip = this.strips.get(row.name);
      if (!strip) {
        strip = this.makeStrip(row.name);
        this.strips.set(row.name, strip);
      }
      if (this.box.children[i] !== strip.el) this.box.insertBefore(strip.el, this.box.children[i] ?? null);
      strip.el.dataset.live = String(row.live);
      strip.el.dataset.onAir = String(audible(row.strip, row.name, state.program, state.audio_pin));
      this.setControls(strip, row.strip.gain_db, row.strip.mute, row.strip.mode);
    });
    this.setControls(this.master, audio.master_gain_db);
  }

  makeStrip(source) {
    const el = this.template.content.firstElementChild.cloneNode(true);
    el.dataset.source = source ?? '';
    el.querySelector('.strip-name').textContent = source ?? 'Master';
    const fader = el.querySelector('.fader');
    fader.min = GAIN_MIN_DB;
    fader.max = GAIN_MAX_DB;
    const strip = { el, fader, dragging: false, lastSent: 0, pending: null };
    fader.addEventListener('pointerdown', () => { strip.dragging = true; });
    addEventListener('pointerup', () => { strip.dragging = false; });
    fader.addEventListener('input', () => {
      el.querySelector('.gain').textContent = gainLabel(Number(fader.value));
      this.sendSoon(strip, source, 'gain', fader.value);
    });
    fader.addEventListener('change', () => this.send(source, 'gain', fader.value));
    const mute = el.querySelector('.mute');
    const mode = el.querySelector('.mode');
    if (source === null) {
      mute.remove();
      mode.remove();
    } else {
      mute.addEventListener('click', () => this.send(source, 'mute', mute.getAttribute('aria-pressed') !== 'true'));
      mode.addEventListener('change', () => this.send(source, 'mode', mode.value));
    }
    return strip;
  }

  setControls(strip, gain, mute, mode) {
    if (!strip.dragging && document.activeElement !== strip.fader) strip.fader.value = gain;
    strip.el.querySelector('.gain').textContent = gainLabel(gain);
    const muteButton = strip.el.querySelector('.mute');
    if (muteButton) muteButton.setAttribute('aria-pressed', String(Boolean(mute)));
    const modeSelect = strip.el.querySelector('.mode');
    if (modeSelect && document.activeElement !== modeSelect) modeSelect.value = mode;
  }

  /** While a fader moves: at most one request per FADER_SEND_MS, the last value always sent. */
  sendSoon(strip, source, control, value) {
    clearTimeout(strip.pending);
    const wait = strip.lastSent + FADER_SEND_MS - performance.now();
    if (wait <= 0) {
      strip.lastSent = performance.now();
      this.send(source, control, value);
    } else {
      strip.pending = setTimeout(() => this.sendSoon(strip, source, control, value), wait);
    }
  }

  async send(source, control, value) {
    const body = changeBody(source, control, value);
    try {
      const r = await fetch('/api/switcher/audio', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...this.auth },
        body: JSON.stringify(body),
      });
      if (!r.ok) this.onError(`Mixer: ${(await r.text()).trim()} (${r.status})`);
    } catch (e) {
      this.onError(`Mixer: ${e.message}`);
    }
  }

  async readLevels() {
    if (document.hidden || this.root.hidden) return;
    let audio;
    try {
      const r = await fetch('/api/switcher/audio', { headers: this.auth });
      if (!r.ok) return;
      audio = await r.json();
    } catch {
      return;
    }
    for (const [name, strip] of this.strips) showLevel(strip.el, audio.levels?.[name]);
    showLevel(this.master.el, audio.master_level);
  }

  stop() {
    clearInterval(this.timer);
  }
}

function showLevel(el, level) {
  const meter = el.querySelector('.meter');
  meter.style.setProperty('--level', meterFraction(level?.peak_db));
  meter.style.setProperty('--hold', meterFraction(level?.hold_db));
  meter.dataset.peak = Number.isFinite(level?.peak_db) ? level.peak_db.toFixed(1) : '';
  meter.dataset.hold = Number.isFinite(level?.hold_db) ? level.hold_db.toFixed(1) : '';
  el.querySelector('.level').textContent = levelLabel(level);
}
