// `/`: every live stream in a grid. LOCAL pages play over WHEP (sub-second), REMOTE pages over
// LL-HLS. Tiles come and go with the server's stream events.

import { accessMode, describeMode } from './mode.js';
import { createLog } from './log.js';
import { formatBitrate, watchStreams } from './streams.js';
import { WhepClient } from './whep.js';
import { playHls } from './hls-player.js';
import { HttpError } from './resource.js';
import { latencyLabel } from './player.js';

const log = createLog(document.getElementById('log'));
const mode = accessMode(location.href);
const using = mode.mode === 'LOCAL' ? 'WebRTC/WHEP' : 'HLS';
document.getElementById('mode').textContent = `${mode.mode} · ${using}`;
document.getElementById('mode').dataset.mode = mode.mode;
log(describeMode(mode, using));

const grid = document.getElementById('grid');
const empty = document.getElementById('empty');
const backdrop = document.getElementById('backdrop');
const template = document.getElementById('tile-template');
/** name -> Tile */
const tiles = new Map();

const RETRY_MS = 3000;
// For servers that protect /whep with a bearer token: /?token=...
const viewToken = new URLSearchParams(location.search).get('token');

class Tile {
  constructor(summary) {
    this.name = summary.name;
    this.el = template.content.firstElementChild.cloneNode(true);
    this.el.dataset.stream = this.name;
    this.video = this.el.querySelector('video');
    this.el.querySelector('.tile-name').textContent = this.name;
    this.player = null;       // { kind: 'whep', client } | { kind: 'hls', handle }
    this.retryTimer = null;
    this.summary = summary;
    this.lastTime = 0;
    this.stalledSince = null;
    this.generation = 0;      // bumps on every (re)start, so late callbacks of old players are ignored
    const unmute = this.el.querySelector('.unmute');
    unmute.addEventListener('click', (e) => {
      e.stopPropagation();
      this.video.muted = !this.video.muted;
      if (!this.video.muted) this.video.play().catch(() => {});
      unmute.textContent = this.video.muted ? 'Unmute' : 'Mute';
      unmute.setAttribute('aria-pressed', String(!this.video.muted));
    });
    this.el.querySelector('.close').addEventListener('click', (e) => {
      e.stopPropagation();
      setLarge(null);
    });
    this.el.addEventListener('click', () => setLarge(this.el.classList.contains('large') ? null : this));
    this.el.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') setLarge(this.el.classList.contains('large') ? null : this);
    });
    this.video.addEventListener('playing', () => this.setState('live'));
    this.update(summary);
  }

  setState(state, message = '') {
    this.el.dataset.state = state;
    const labels = { connecting: 'Connecting', live: 'Live', offline: 'Offline', error: 'Error', stalled: 'Stalled' };
    this.el.querySelector('.badge').textContent = labels[state] ?? state;
    this.el.querySelector('.tile-message').textContent = message;
  }

  update(summary) {
    this.summary = summary;
    const source = summary.source === 'camera' ? 'camera' : 'guest';
    this.el.dataset.source = source;
    this.el.querySelector('.stat-bitrate').textContent = summary.online ? formatBitrate(summary.bitrate_bps) : '';
    // WHEP viewers only: readers.hls counts the stream's HLS packager, not its audience.
    const n = summary.viewers;
    this.el.querySelector('.stat-viewers').textContent = n ? `${n} WebRTC viewer${n === 1 ? '' : 's'}` : '';
    if (!summary.online) {
      this.stop();
      this.setState('offline', 'Stream offline');
    } else if (!this.player && !this.retryTimer) {
      this.start();
    }
  }

  async start() {
    const generation = ++this.generation;
    this.setState('connecting', 'Connecting…');
    try {
      if (mode.mode === 'LOCAL') await this.startWhep(generation);
      else await this.startHls(generation);
    } catch (e) {
      if (generation !== this.generation) return;
      this.fail(e instanceof HttpError && e.status === 404 ? 'Stream offline' : `Cannot play: ${e.message}`);
    }
  }

  async startWhep(generation) {
    const client = new WhepClient(this.name, { token: viewToken, log: (m, l) => log(`${this.name}: ${m}`, l) });
    this.player = { kind: 'whep', client };
    this.video.srcObject = client.stream;
    let lostTimer = null;
    client.pc.addEventListener('connectionstatechange', () => {
      if (generation !== this.generation) return;
      const state = client.pc.connectionState;
      clearTimeout(lostTimer);
      if (state === 'failed' || state === 'closed') this.recover(generation, `connection ${state}`);
      // A short 'disconnected' often heals by itself; give it a moment.
      else if (state === 'disconnected') lostTimer = setTimeout(() => this.recover(generation, 'connection lost'), 3000);
    });
    await client.start();
    log(`${this.name}: playing over WHEP`);
  }

  /** A WHEP session broke: ICE restart first; if the server no longer knows it, a new session. */
  async recover(generation, why) {
    if (generation !== this.generation || this.player?.kind !== 'whep') return;
    if (!this.summary.online) return;
    this.setState('connecting', `Reconnecting (${why})…`);
    log(`${this.name}: ${why}, trying an ICE restart`, 'warn');
    try {
      await this.player.client.restartIce();
      const ok = await waitConnected(this.player.client.pc, 5000);
      if (ok && generation === this.generation) return;
    } catch (e) {
      log(`${this.name}: ICE restart refused (${e.message}), starting a new session`, 'warn');
    }
    if (generation !== this.generation) return;
    this.stop();
    this.scheduleRetry(500);
  }

  async startHls(generation) {
    const url = `/hls/${encodeURIComponent(this.name)}/index.m3u8`;
    const handle = await playHls(this.video, url, {
      log: (m, l) => log(`${this.name}: ${m}`, l),
      onFatal: (message) => {
        if (generation === this.generation) this.fail(message);
      },
    });
    if (generation !== this.generation) {
      handle.destroy();
      return;
    }
    this.player = { kind: 'hls', handle };
    log(`${this.name}: playing over LL-HLS (${handle.engine})`);
  }

  fail(message) {
    this.stop();
    this.setState('error', `${message} — retrying in ${RETRY_MS / 1000} s`);
    log(`${this.name}: ${message}`, 'warn');
    this.scheduleRetry(RETRY_MS);
  }

  scheduleRetry(ms) {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.summary.online && !this.player && tiles.get(this.name) === this) this.start();
    }, ms);
  }

  stop() {
    this.generation += 1;
    const player = this.player;
    this.player = null;
    if (player?.kind === 'whep') {
      player.client.stop();
      this.video.srcObject = null;
    } else if (player?.kind === 'hls') {
      player.handle.destroy();
    }
  }

  remove() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.stop();
    if (this.el.classList.contains('large')) setLarge(null);
    this.el.remove();
  }

  /** Once a second: resolution, latency, and whether the picture still moves. */
  async refresh() {
    const v = this.video;
    this.el.querySelector('.stat-res').textContent = v.videoWidth ? `${v.videoWidth}×${v.videoHeight}` : '';
    const latency = await this.latency();
    this.el.querySelector('.stat-latency').textContent = latency ?? '';
    if (this.el.dataset.state === 'live' || this.el.dataset.state === 'stalled') {
      const moving = v.currentTime !== this.lastTime;
      this.lastTime = v.currentTime;
      if (moving) {
        this.stalledSince = null;
        if (this.el.dataset.state === 'stalled') this.setState('live');
      } else {
        this.stalledSince ??= performance.now();
        if (performance.now() - this.stalledSince > 3000) this.setState('stalled', 'No new frames');
      }
    }
  }

  latency() {
    return latencyLabel(this.player);
  }
}

function waitConnected(pc, timeoutMs) {
  return new Promise((resolve) => {
    if (pc.connectionState === 'connected') return resolve(true);
    const timer = setTimeout(() => { pc.removeEventListener('connectionstatechange', check); resolve(false); }, timeoutMs);
    function check() {
      if (pc.connectionState === 'connected') {
        clearTimeout(timer);
        pc.removeEventListener('connectionstatechange', check);
        resolve(true);
      }
    }
    pc.addEventListener('connectionstatechange', check);
  });
}

function setLarge(tile) {
  for (const t of tiles.values()) t.el.classList.toggle('large', t === tile);
  backdrop.hidden = !tile;
  document.body.classList.toggle('has-large', Boolean(tile));
}
backdrop.addEventListener('click', () => setLarge(null));
addEventListener('keydown', (e) => { if (e.key === 'Escape') setLarge(null); });

function render(streams) {
  for (const [name, tile] of tiles) {
    if (!streams.has(name)) {
      tile.remove();
      tiles.delete(name);
      log(`${name}: gone`);
    }
  }
  // Cameras first, then guests, each by name: tiles keep their places as others come and go.
  const ordered = [...streams.values()].sort((a, b) => (a.source === 'camera' ? 0 : 1) - (b.source === 'camera' ? 0 : 1)
    || a.name.localeCompare(b.name));
  ordered.forEach((summary, index) => {
    let tile = tiles.get(summary.name);
    if (!tile) {
      tile = new Tile(summary);
      tiles.set(summary.name, tile);
      log(`${summary.name}: ${summary.source === 'camera' ? 'camera' : 'guest'} is live`);
    } else {
      tile.update(summary);
    }
    // Move only what is out of place: a video taken out of the page pauses.
    if (grid.children[index] !== tile.el) grid.insertBefore(tile.el, grid.children[index] ?? null);
  });
  empty.hidden = streams.size > 0;
}

const feed = document.getElementById('feed');
watchStreams(render, (status) => {
  feed.dataset.state = status;
  feed.textContent = status === 'live' ? 'live list' : 'reconnecting…';
  if (status === 'reconnecting') log('Lost the live stream list; reconnecting', 'warn');
});

setInterval(() => { for (const t of tiles.values()) t.refresh(); }, 1000);

// Tests and curious operators can look inside.
window.r58multiview = { mode, tiles };
