// `/`: every live stream in a grid. Each tile is the pages' one player (player.js: WHEP in LOCAL
// mode; in REMOTE mode WHEP through the server's TURN relay, else LL-HLS; with its reconnects,
// first-frame timeout, jump to live and stall rule) plus its caption: name, state, resolution,
// bitrate, latency, viewers. Tiles come and go with the server's stream events. The REC control
// (rec-control.js, as on the switcher) records all, shows the tally and the disk, and marks the
// tiles being recorded.

import { accessMode } from './mode.js';
import { createLog } from './log.js';
import {
  formatBitrate, orderStreams, sourceKind, viewersLabel, watchStreams,
} from './streams.js';
import { StreamPlayer, showTransports } from './player.js';
import { resolutionLabel, stateLabel, stateMessage } from './player-model.js';
import { csrfHeaders } from './session.js';
import { setupRecording } from './rec-control.js';

const log = createLog(document.getElementById('log'));
const mode = accessMode(location.href);
// The mode line follows what the players settle on (REMOTE: WebRTC via TURN, else LL-HLS).
showTransports(mode, document.getElementById('mode'), log);

const grid = document.getElementById('grid');
const empty = document.getElementById('empty');
const backdrop = document.getElementById('backdrop');
const template = document.getElementById('tile-template');
/** name -> Tile */
const tiles = new Map();

// For servers that protect /whep with a bearer token: /?token=...
const viewToken = new URLSearchParams(location.search).get('token');

class Tile {
  constructor(summary) {
    this.name = summary.name;
    this.el = template.content.firstElementChild.cloneNode(true);
    this.el.dataset.stream = this.name;
    this.video = this.el.querySelector('video');
    this.el.querySelector('.tile-name').textContent = this.name;
    this.player = new StreamPlayer(this.name, this.video, {
      mode: mode.mode,
      token: viewToken,
      log,
      onState: (state, message) => this.showState(state, message),
    });
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
    this.update(summary);
  }

  showState(state, message) {
    this.el.dataset.state = state;
    this.el.querySelector('.badge').textContent = stateLabel(state);
    this.el.querySelector('.tile-message').textContent = stateMessage(state, message);
  }

  update(summary) {
    this.summary = summary;
    this.el.dataset.source = sourceKind(summary);
    this.el.querySelector('.stat-bitrate').textContent = summary.online ? formatBitrate(summary.bitrate_bps) : '';
    this.el.querySelector('.stat-viewers').textContent = viewersLabel(summary.viewers);
    this.player.hlsRefusal = summary.unavailable?.hls ?? null;
    if (!summary.online) this.player.stop('offline', 'Stream offline');
    else this.player.start();
  }

  remove() {
    this.player.destroy();
    if (this.el.classList.contains('large')) setLarge(null);
    this.el.remove();
  }

  /** Once a second: resolution and latency. */
  async refresh() {
    const v = this.video;
    const playing = this.player.state === 'live' || this.player.state === 'stalled';
    this.el.querySelector('.stat-res').textContent = playing ? resolutionLabel(v.videoWidth, v.videoHeight) : '';
    // Only once playing: hls.js reports the whole start-up wait as latency before that.
    const latency = playing ? await this.player.latencyLabel() : null;
    this.el.querySelector('.stat-latency').textContent = latency ?? '';
  }
}

function setLarge(tile) {
  for (const t of tiles.values()) t.el.classList.toggle('large', t === tile);
  backdrop.hidden = !tile;
  document.body.classList.toggle('has-large', Boolean(tile));
}
backdrop.addEventListener('click', () => setLarge(null));
addEventListener('keydown', (e) => { if (e.key === 'Escape') setLarge(null); });

function render(all) {
  // Return feeds are each guest's own (the program minus their voice), not for the wall.
  const streams = new Map([...all].filter(([, s]) => s.source !== 'return'));
  for (const [name, tile] of tiles) {
    if (!streams.has(name)) {
      tile.remove();
      tiles.delete(name);
      log(`${name}: gone`);
    }
  }
  orderStreams(streams).forEach((summary, index) => {
    let tile = tiles.get(summary.name);
    if (!tile) {
      tile = new Tile(summary);
      tiles.set(summary.name, tile);
      log(`${summary.name}: ${sourceKind(summary)} is live`);
    } else {
      tile.update(summary);
    }
    // Move only what is out of place: a video taken out of the page pauses.
    if (grid.children[index] !== tile.el) grid.insertBefore(tile.el, grid.children[index] ?? null);
  });
  empty.hidden = streams.size > 0;
}

/** The REC control's view, null until recording is known to be on. */
let recView = null;
const markRecorded = () => {
  for (const [name, tile] of tiles) tile.el.dataset.rec = String(Boolean(recView?.writing.has(name)));
};
const recAlert = document.getElementById('rec-alert');
const recording = setupRecording({
  auth: { ...(viewToken ? { Authorization: `Bearer ${viewToken}` } : {}), ...(await csrfHeaders()) },
  onAlert: (message) => {
    recAlert.textContent = message;
    recAlert.hidden = false;
    log(message, 'error');
  },
  onChange: (view) => {
    recView = view;
    markRecorded();
  },
});

const feed = document.getElementById('feed');
watchStreams((streams, change) => {
  render(streams, change);
  markRecorded();
}, (status) => {
  feed.dataset.state = status;
  feed.textContent = status === 'live' ? 'live list' : 'reconnecting…';
  if (status === 'reconnecting') log('Lost the live stream list; reconnecting', 'warn');
}, {
  recording: (summary) => recording.apply(summary),
});

setInterval(() => { for (const t of tiles.values()) t.refresh(); }, 1000);

// Tests and curious operators can look inside.
window.r58multiview = { mode, tiles, recording };
