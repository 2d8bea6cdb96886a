// One stream played into one <video>, the way the page's access mode says: WHEP in LOCAL mode,
// LL-HLS in REMOTE mode. It keeps trying while it is wanted (a failed session is replaced, an
// HLS error retried) and reports its state, so nothing on the page spins forever: every state
// but `live` carries a message saying what is going on.

import { WhepClient } from './whep.js';
import { playHls } from './hls-player.js';
import { HttpError } from './resource.js';

const RETRY_MS = 3000;
/** A player that has not shown a frame by then starts over (and says so). */
const FIRST_FRAME_MS = 12000;
/** A WHEP connection `disconnected` this long is replaced. */
const LOST_MS = 3000;
/** An LL-HLS player this far behind live (normally ~1 s) jumps to live: monitors show now. */
const JUMP_BEHIND_S = 4;

export class StreamPlayer {
  /**
   * @param {string} name  stream name
   * @param {HTMLVideoElement} video
   * @param {{ mode: 'LOCAL' | 'REMOTE', token?: string | null, log?: Function,
   *           onState?: (state: string, message: string) => void }} options
   */
  constructor(name, video, options) {
    this.name = name;
    this.video = video;
    this.mode = options.mode;
    this.token = options.token ?? null;
    this.log = options.log ?? (() => {});
    this.onState = options.onState ?? (() => {});
    this.player = null;       // { kind: 'whep', client } | { kind: 'hls', handle }
    this.running = false;
    this.generation = 0;      // bumps on every (re)start: late callbacks of old players are ignored
    this.retryTimer = null;
    this.firstFrameTimer = null;
    this.state = 'idle';
    this.message = '';
    this.onPlaying = () => {
      clearTimeout(this.firstFrameTimer);
      if (this.running) this.setState('live', '');
    };
    video.addEventListener('playing', this.onPlaying);
  }

  /** The MediaStream a WHEP player receives into (another <video> can show it too). */
  get mediaStream() {
    return this.player?.kind === 'whep' ? this.player.client.stream : null;
  }

  get kind() { return this.player?.kind ?? null; }

  setState(state, message) {
    this.state = state;
    this.message = message;
    this.onState(state, message);
  }

  /** Starts playing (a no-op when already running). */
  start() {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  /** Stops playing and ends the session on the server. */
  stop(state = 'idle', message = '') {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.teardown();
    this.setState(state, message);
  }

  /** Stops for good: also forgets the <video>. */
  destroy() {
    this.stop();
    this.video.removeEventListener('playing', this.onPlaying);
  }

  teardown() {
    this.generation += 1;
    clearTimeout(this.firstFrameTimer);
    const player = this.player;
    this.player = null;
    if (player?.kind === 'whep') {
      player.client.stop();
      this.video.srcObject = null;
    } else if (player?.kind === 'hls') {
      player.handle.destroy();
    }
  }

  async connect() {
    const generation = ++this.generation;
    this.setState('connecting', this.mode === 'LOCAL' ? 'Connecting (WebRTC)…' : 'Loading (LL-HLS)…');
    clearTimeout(this.firstFrameTimer);
    this.firstFrameTimer = setTimeout(() => {
      if (generation === this.generation && this.state !== 'live') this.retry(`no picture after ${FIRST_FRAME_MS / 1000} s`);
    }, FIRST_FRAME_MS);
    try {
      if (this.mode === 'LOCAL') await this.startWhep(generation);
      else await this.startHls(generation);
    } catch (e) {
      if (generation !== this.generation) return;
      const why = e instanceof HttpError && e.status === 404 ? 'stream not live (404)'
        : e instanceof HttpError && e.status === 401 ? 'the server wants a viewing token (401): open the page with ?token=…'
          : e instanceof HttpError && e.status === 503 ? `server busy (503): ${e.reason}`
            : `cannot play: ${e.message}`;
      this.retry(why);
    }
  }

  /** Gives up on the current attempt, says why, and tries again in a moment. */
  retry(why) {
    if (!this.running) return;
    this.teardown();
    this.setState('error', `${why} — retrying in ${RETRY_MS / 1000} s`);
    this.log(`${this.name}: ${why}`, 'warn');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.running) this.connect();
    }, RETRY_MS);
  }

  async startWhep(generation) {
    const client = new WhepClient(this.name, { token: this.token, log: (m, l) => this.log(`${this.name}: ${m}`, l) });
    this.player = { kind: 'whep', client };
    this.video.srcObject = client.stream;
    let lostTimer = null;
    client.pc.addEventListener('connectionstatechange', () => {
      if (generation !== this.generation) return;
      const state = client.pc.connectionState;
      clearTimeout(lostTimer);
      if (state === 'failed' || state === 'closed') this.retry(`connection ${state}`);
      // A short 'disconnected' often heals by itself.
      else if (state === 'disconnected') lostTimer = setTimeout(() => this.retry('connection lost'), LOST_MS);
    });
    await client.start();
    if (generation !== this.generation) client.stop();
  }

  async startHls(generation) {
    const url = `/hls/${encodeURIComponent(this.name)}/index.m3u8`;
    const handle = await playHls(this.video, url, {
      jumpBehind: JUMP_BEHIND_S,
      log: (m, l) => this.log(`${this.name}: ${m}`, l),
      onFatal: (message) => {
        if (generation === this.generation) this.retry(message);
      },
    });
    if (generation !== this.generation) {
      handle.destroy();
      return;
    }
    this.player = { kind: 'hls', handle };
  }

  /** Seconds behind live (HLS) or the receive-side delay in ms (WHEP), as a label; or null. */
  latencyLabel() {
    return latencyLabel(this.player);
  }
}

/**
 * What a player adds after the server, as a label, or null: seconds behind live for LL-HLS; for
 * WHEP the network (half the round trip) plus the jitter buffer (capture and encoding time are
 * not visible from here).
 * @param {{ kind: 'whep', client } | { kind: 'hls', handle } | null} player
 */
export async function latencyLabel(player) {
  if (player?.kind === 'hls') {
    const s = player.handle.latency();
    return s == null ? null : `${s.toFixed(1)} s behind live`;
  }
  if (player?.kind !== 'whep') return null;
  const stats = await player.client.pc.getStats();
  let jitterMs = null;
  let rttMs = null;
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video' && s.jitterBufferEmittedCount) {
      jitterMs = (s.jitterBufferDelay / s.jitterBufferEmittedCount) * 1000;
    }
    if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime != null) {
      rttMs = s.currentRoundTripTime * 1000;
    }
  });
  return jitterMs == null ? null : `≈${Math.round(jitterMs + (rttMs ?? 0) / 2)} ms`;
}
