// The pages' one player: one stream into one <video>, the way the page's access mode says (WHEP
// in LOCAL mode, LL-HLS in REMOTE mode). Multiview tiles, switcher inputs and monitors all wrap
// it. While wanted it keeps trying: a broken WHEP connection gets an ICE restart and then a new
// session, a failed start or an HLS error is retried, a player with no picture after
// FIRST_FRAME_MS starts over, an LL-HLS player far behind jumps to live. It watches the picture
// (the stall rule in player-model.js) and reports every state with a message, so nothing on a
// page spins without saying why.

import { WhepClient } from './whep.js';
import { playHls } from './hls-player.js';
import { HttpError } from './resource.js';
import {
  FIRST_FRAME_MS, ICE_RESTART_MS, JUMP_BEHIND_S, LOST_MS, NEW_SESSION_MS, RETRY_MS, STALL_MS,
  connectingMessage, connectionAction, describePlayError, frameProgress, hlsLatencyLabel, retryMessage,
  stallTransition, watchFrames, whepLatencyLabel,
} from './player-model.js';

/** How often the picture is looked at for the stall rule. */
const WATCH_EVERY_MS = 1000;

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
    this.watchTimer = null;
    this.frames = null;       // the stall rule's record (player-model.js watchFrames)
    this.recovering = -1;     // the generation whose WHEP connection is being recovered
    this.state = 'idle';
    this.message = '';
    this.onPlaying = () => {
      clearTimeout(this.firstFrameTimer);
      if (this.running && this.state !== 'live') {
        this.frames = null;
        this.setState('live', '');
      }
    };
    video.addEventListener('playing', this.onPlaying);
    // A muted video out of view is paused by Chromium: its missing frames say nothing.
    this.inView = true;
    this.viewObserver = typeof IntersectionObserver === 'function'
      ? new IntersectionObserver((entries) => { for (const e of entries) this.inView = e.isIntersecting; })
      : null;
    this.viewObserver?.observe(video);
  }

  /** The WHEP client while playing over WHEP (its session, its peer connection), else null. */
  get client() {
    return this.player?.kind === 'whep' ? this.player.client : null;
  }

  /** The MediaStream a WHEP player receives into (another <video> can show it too). */
  get mediaStream() {
    return this.client?.stream ?? null;
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
    this.watchTimer = setInterval(() => this.watch(), WATCH_EVERY_MS);
    this.connect();
  }

  /** Stops playing, ends the session on the server, and shows `state` with `message`. */
  stop(state = 'idle', message = '') {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    clearInterval(this.watchTimer);
    this.watchTimer = null;
    this.teardown();
    this.setState(state, message);
  }

  /** Stops for good: also forgets the <video>. */
  destroy() {
    this.stop();
    this.video.removeEventListener('playing', this.onPlaying);
    this.viewObserver?.disconnect();
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

  async connect(message = connectingMessage(this.mode)) {
    const generation = ++this.generation;
    this.frames = null;
    this.setState('connecting', message);
    clearTimeout(this.firstFrameTimer);
    this.firstFrameTimer = setTimeout(() => {
      if (generation === this.generation && this.state !== 'live' && this.state !== 'stalled') {
        this.retry(`no picture after ${FIRST_FRAME_MS / 1000} s`);
      }
    }, FIRST_FRAME_MS);
    try {
      if (this.mode === 'LOCAL') await this.startWhep(generation);
      else await this.startHls(generation);
    } catch (e) {
      if (generation !== this.generation) return;
      this.retry(e instanceof HttpError ? describePlayError(e.status, e.reason, e.message) : describePlayError(null, null, e.message));
    }
  }

  /** Gives up on the current attempt, says why, and tries again in a moment. */
  retry(why) {
    if (!this.running) return;
    this.teardown();
    this.setState('error', retryMessage(why));
    this.log(`${this.name}: ${why}`, 'warn');
    this.reconnectIn(RETRY_MS);
  }

  reconnectIn(ms, message) {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.running) this.connect(message);
    }, ms);
  }

  /** Once a second: the stall rule (player-model.js) on the frames the video has shown. */
  watch() {
    const v = this.video;
    const judged = this.inView && !document.hidden && v.videoWidth > 0;
    const progress = frameProgress(v.getVideoPlaybackQuality?.() ?? null, v.currentTime);
    const { watch, stalled } = watchFrames(this.frames, progress, performance.now(), judged);
    this.frames = watch;
    const next = stallTransition(this.state, stalled);
    if (next === 'stalled') {
      this.setState('stalled', `No new frames for ${STALL_MS / 1000} s`);
      this.log(`${this.name}: no new frames for ${STALL_MS / 1000} s`, 'warn');
    } else if (next === 'live') {
      this.setState('live', '');
    }
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
      const action = connectionAction(state);
      if (action === 'restart') this.recover(generation, `connection ${state}`);
      else if (action === 'wait') lostTimer = setTimeout(() => this.recover(generation, 'connection lost'), LOST_MS);
    });
    await client.start();
    if (generation !== this.generation) {
      client.stop();
      return;
    }
    this.log(`${this.name}: playing over WHEP`);
  }

  /**
   * A WHEP connection broke: an ICE restart first (the server keeps a viewer's session 30 s
   * without consent); if it is refused or does not reconnect in time, a new session.
   */
  async recover(generation, why) {
    if (generation !== this.generation || this.recovering === generation || !this.client) return;
    this.recovering = generation;
    const { client } = this;
    this.setState('connecting', `Reconnecting (${why})…`);
    this.log(`${this.name}: ${why}, trying an ICE restart`, 'warn');
    try {
      await client.restartIce();
      const ok = await waitConnected(client.pc, ICE_RESTART_MS);
      if (generation !== this.generation) return;
      if (ok) {
        this.recovering = -1;
        this.frames = null;
        // Frames flow again, or the stall rule says they do not; a player that never showed
        // one is still waiting for its first (and its first-frame timeout still runs).
        if (this.video.readyState >= 2) this.setState('live', '');
        else this.setState('connecting', connectingMessage(this.mode));
        return;
      }
      this.log(`${this.name}: the ICE restart did not reconnect within ${ICE_RESTART_MS / 1000} s, starting a new session`, 'warn');
    } catch (e) {
      if (generation !== this.generation) return;
      this.log(`${this.name}: ICE restart refused (${e.message}), starting a new session`, 'warn');
    }
    this.teardown();
    this.reconnectIn(NEW_SESSION_MS, `Reconnecting (${why}): new session…`);
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
    this.log(`${this.name}: playing over LL-HLS (${handle.engine})`);
  }

  /** Seconds behind live (HLS) or the receive-side delay in ms (WHEP), as a label; or null. */
  async latencyLabel() {
    const player = this.player;
    if (player?.kind === 'hls') return hlsLatencyLabel(player.handle.latency());
    if (player?.kind !== 'whep') return null;
    const stats = await player.client.pc.getStats();
    return whepLatencyLabel(stats.values());
  }
}

/** Resolves true once `pc` is connected, false after `timeoutMs`. */
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
