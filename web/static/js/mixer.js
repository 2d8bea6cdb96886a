// The switcher's audio mixer panel: a strip per input (fader, mute, mode, a live meter with peak
// hold) and the master, and the talkback to one guest. Settings come with the switcher state (so every open switcher shows the
// same faders); levels are read from GET /api/switcher/audio while the page is visible.
// Decisions are in mixer-model.js.

import { WhipClient } from './whip.js';
import {
  FADER_SEND_MS, GAIN_MAX_DB, GAIN_MIN_DB, LEVELS_EVERY_MS, audible, changeBody, gainLabel, levelLabel,
  meterFraction, stripRows,
} from './mixer-model.js';

/** The stream the switcher page's talkback microphone is published as. */
export const TALKBACK_STREAM = 'talkback';

export class MixerPanel {
  /** `root`: the panel; `auth`: request headers (`token` its bearer token); `onError(message)` shows a refusal. */
  constructor(root, { auth, token = null, log, onError }) {
    this.root = root;
    this.token = token;
    this.box = root.querySelector('.strips');
    this.template = root.querySelector('template');
    this.auth = auth;
    this.log = log;
    this.onError = onError;
    this.strips = new Map();
    this.master = this.makeStrip(null);
    root.querySelector('.master').replaceChildren(this.master.el);
    this.timer = setInterval(() => this.readLevels(), LEVELS_EVERY_MS);
    this.talkTo = root.querySelector('.talk-to');
    this.talkButton = root.querySelector('.talk');
    this.talking = null; // { client, to } while the operator talks to a guest
    this.talkButton.addEventListener('click', () => (this.talking ? this.stopTalking() : this.startTalking()));
  }

  /**
   * Talkback: this page's microphone, published as the stream `talkback`, heard by the chosen
   * guest only (in its return feed), never on program.
   */
  async startTalking() {
    const to = this.talkTo.value;
    if (!to) return;
    this.talkButton.disabled = true;
    try {
      const media = await navigator.mediaDevices.getUserMedia({ audio: true });
      const client = new WhipClient(TALKBACK_STREAM, media, { token: this.token, log: this.log });
      await client.start();
      this.talking = { client, media, to };
      await this.post('/api/switcher/talkback', { source: TALKBACK_STREAM, to });
      this.talkButton.setAttribute('aria-pressed', 'true');
      this.talkButton.textContent = `Talking to ${to}`;
      this.log(`talkback to ${to}`);
    } catch (e) {
      this.onError(`Talkback: ${e.message}`);
      await this.stopTalking();
    } finally {
      this.talkButton.disabled = false;
    }
  }

  async stopTalking() {
    const talking = this.talking;
    this.talking = null;
    this.talkButton.setAttribute('aria-pressed', 'false');
    this.talkButton.textContent = 'Talk';
    if (!talking) return;
    await this.post('/api/switcher/talkback', { to: null });
    talking.media.getTracks().forEach((t) => t.stop());
    await talking.client.stop().catch(() => {});
    this.log('talkback ended');
  }

  async post(path, body) {
    const r = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...this.auth },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${(await r.text()).trim()} (${r.status})`);
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
    // Talkback targets: the live guests (never the talkback itself).
    const guests = (state.sources ?? []).filter((x) => x.kind === 'whip' && x.name !== TALKBACK_STREAM).map((x) => x.name);
    const options = ['', ...guests];
    if ([...this.talkTo.options].map((o) => o.value).join('\n') !== options.join('\n')) {
      const keep = this.talkTo.value;
      this.talkTo.replaceChildren(...options.map((name) => {
        const option = document.createElement('option');
        option.value = name;
        option.textContent = name || 'Talk to…';
        return option;
      }));
      this.talkTo.value = guests.includes(keep) ? keep : '';
    }
    if (this.talking && !guests.includes(this.talking.to)) this.stopTalking();
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
