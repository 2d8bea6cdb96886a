// The pages' one player: one stream into one <video>, the way the page's access mode says (WHEP
// in LOCAL mode; in REMOTE mode WHEP through the server's TURN relay when it offers one and a
// picture comes within RELAY_CONNECT_MS, else LL-HLS; `?play=hls` forces LL-HLS). Multiview
// tiles, switcher inputs and monitors all wrap it. While wanted it keeps trying: a broken WHEP connection gets an ICE restart and then a new
// session, a failed start or an HLS error is retried, a player with no picture after
// FIRST_FRAME_MS starts over, an LL-HLS player far behind jumps to live. It watches the picture
// (the stall rule in player-model.js) and reports every state with a message, so nothing on a
// page spins without saying why.

import { WhepClient } from './whep.js';
import { playHls } from './hls-player.js';
import { HttpError, selectedCandidates } from './resource.js';
import { viewerIceServers } from './ice-servers.js';
import { describeMode, transportLabel } from './mode.js';
import {
  FIRST_FRAME_MS, ICE_RESTART_MS, JUMP_BEHIND_S, LOST_MS, NEW_SESSION_MS, RELAY_CONNECT_MS, RETRY_MS, STALL_MS,
  CODEC_FALLBACK, VIA_TURN, chooseTransport, connectingMessage, connectionAction, describePlayError, frameProgress,
  framesDecoded, hlsLatencyLabel, playParam, retryMessage, stallTransition, watchFrames, whepLatencyLabel,
} from './player-model.js';

/** How often the picture is looked at for the stall rule. */
const WATCH_EVERY_MS = 1000;
/** How often a WHEP attempt on trial (REMOTE) looks for decoded frames. */
const TRIAL_LOOK_MS = 250;

/** Every player not destroyed, and who wants to hear when their transports change. */
const players = new Set();
const transportWatchers = new Set();

/**
 * Calls `fn(transports)` now and whenever a player of this page settles on a transport or goes
 * away: `transports` holds each player's settled transport ('whep' | 'hls', or null while it
 * is still trying). The pages' headers follow it (mode.js transportLabel).
 */
export function watchTransports(fn) {
  transportWatchers.add(fn);
  fn(settledTransports());
}

/**
 * Keeps a viewing page's mode line (`element`) saying how its players play
 * (`REMOTE · WebRTC via TURN`, `REMOTE · HLS`, ...) and logs every change the way the pages
 * always have (`Access mode: REMOTE (using HLS)`). `mode` is mode.js accessMode's answer.
 */
export function showTransports(mode, element, log, play = playParam(location.search)) {
  let shown = null;
  watchTransports((transports) => {
    const using = transportLabel(mode.mode, play, transports);
    if (using === shown) return;
    shown = using;
    element.textContent = `${mode.mode} · ${using}`;
    element.dataset.mode = mode.mode;
    log(describeMode(mode, using));
  });
}

function settledTransports() {
  return [...players].map((p) => p.settled);
}

function transportsChanged() {
  const transports = settledTransports();
  for (const fn of transportWatchers) fn(transports);
}

export class StreamPlayer {
  /**
   * @param {string} name  stream name
   * @param {HTMLVideoElement} video
   * @param {{ mode: 'LOCAL' | 'REMOTE', token?: string | null, play?: 'hls' | null, log?: Function,
   *           onState?: (state: string, message: string) => void }} options
   *   `play`: 'hls' forces LL-HLS in REMOTE mode (default: the page's `?play=`)
   */
  constructor(name, video, options) {
    this.name = name;
    this.video = video;
    this.mode = options.mode;
    this.token = options.token ?? null;
    this.log = options.log ?? (() => {});
    this.onState = options.onState ?? (() => {});
    this.play = options.play === undefined ? playParam(location.search) : options.play;
    this.fellBack = null;     // why this player plays LL-HLS instead of WHEP from now on
    this.hlsRefusal = null;   // why the server has no LL-HLS of this stream (its summary says)
    this.settled = null;      // 'whep' | 'hls' once the transport showed a picture or was chosen for good
    this.trial = -1;          // the generation whose REMOTE WHEP attempt is still on trial
    this.relayTimer = null;
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
      if (this.trial === this.generation && this.player?.kind === 'whep') this.passTrial(this.generation);
      if (this.running && this.state !== 'live') {
        this.frames = null;
        this.setState('live', '');
      }
    };
    video.addEventListener('playing', this.onPlaying);
    // Frames the browser presents, for the stall rule (frameProgress): null where the callback
    // does not exist. One callback chain per element, for as long as the page lives.
    this.presented = null;
    if (typeof video.requestVideoFrameCallback === 'function') {
      this.presented = 0;
      const count = () => {
        this.presented += 1;
        video.requestVideoFrameCallback(count);
      };
      video.requestVideoFrameCallback(count);
    }
    // A muted video out of view is paused by Chromium: its missing frames say nothing.
    this.inView = true;
    this.viewObserver = typeof IntersectionObserver === 'function'
      ? new IntersectionObserver((entries) => { for (const e of entries) this.inView = e.isIntersecting; })
      : null;
    this.viewObserver?.observe(video);
    players.add(this);
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
    players.delete(this);
    transportsChanged();
  }

  /** Records the transport this player settled on (the pages' headers follow it). */
  settle(transport) {
    if (this.settled === transport) return;
    this.settled = transport;
    transportsChanged();
  }

  teardown() {
    this.generation += 1;
    clearTimeout(this.firstFrameTimer);
    clearInterval(this.relayTimer);
    const player = this.player;
    this.player = null;
    if (player?.kind === 'whep') {
      player.client.stop();
      this.video.srcObject = null;
    } else if (player?.kind === 'hls') {
      player.handle.destroy();
    }
  }

  async connect(message) {
    const generation = ++this.generation;
    const choice = chooseTransport({ mode: this.mode, play: this.play, fellBack: this.fellBack });
    this.frames = null;
    this.setState('connecting', message ?? connectingMessage(this.mode, choice.transport));
    clearTimeout(this.firstFrameTimer);
    this.firstFrameTimer = setTimeout(() => {
      if (generation === this.generation && this.state !== 'live' && this.state !== 'stalled') {
        this.retry(`no picture after ${FIRST_FRAME_MS / 1000} s`);
      }
    }, FIRST_FRAME_MS);
    try {
      if (choice.transport === 'hls') {
        if (this.hlsRefusal) {
          // The server said why this stream has no LL-HLS (a VP8 stream): no point retrying.
          this.stop('error', `${this.hlsRefusal}${choice.why === CODEC_FALLBACK ? ` (and ${choice.why})` : ''}`);
          return;
        }
        // Chosen for good in REMOTE mode (?play=hls, or an earlier fallback).
        if (this.mode === 'REMOTE') this.settle('hls');
        await this.startHls(generation, choice.why);
      } else {
        await this.startWhep(generation, choice.trial);
      }
    } catch (e) {
      if (generation !== this.generation) return;
      if (e instanceof HttpError && (this.trial === generation || e.status === 422)) {
        const next = chooseTransport({ mode: this.mode, refused: e.status });
        if (next.transport === 'hls') {
          this.fallBack(generation, next.why);
          return;
        }
      }
      this.retry(e instanceof HttpError ? describePlayError(e.status, e.reason, e.message) : describePlayError(null, null, e.message));
    }
  }

  /**
   * REMOTE: this WHEP attempt will not do; play LL-HLS from now on (a reload tries WHEP again).
   * The WHEP session is ended on the server first (teardown).
   */
  fallBack(generation, why) {
    if (generation !== this.generation || !this.running) return;
    this.fellBack = why;
    this.trial = -1;
    const again = this.mode === 'LOCAL' ? 'WebRTC' : VIA_TURN;
    this.log(`${this.name}: ${why}: playing over LL-HLS from now on (a reload tries ${again} again)`, 'warn');
    this.teardown();
    this.connect();
  }

  /** REMOTE: the WHEP attempt on trial showed a picture: WebRTC via TURN it is. */
  async passTrial(generation) {
    this.trial = -1;
    clearInterval(this.relayTimer);
    this.settle('whep');
    const client = this.client;
    const route = client ? await selectedCandidates(client.pc).catch(() => null) : null;
    if (generation !== this.generation) return;
    const path = route ? ` (route: ${route.local} → server ${route.remote}${route.remote === 'relay' ? ', the server\'s TURN relay' : ''})` : '';
    this.log(`${this.name}: playing over ${VIA_TURN}${path}`);
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
    const progress = frameProgress(v.getVideoPlaybackQuality?.() ?? null, v.currentTime, this.presented);
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

  /**
   * Plays over WHEP. `trial` (REMOTE): with the page's TURN credentials as ICE servers; an
   * answer without a relay candidate, a refusal that /hls may not share (chooseTransport), a
   * failed connection or no picture within RELAY_CONNECT_MS of the answer makes it fall back to
   * LL-HLS.
   */
  async startWhep(generation, trial = false) {
    let iceServers = [];
    if (trial) {
      this.trial = generation;
      iceServers = await viewerIceServers(this.log);
      if (generation !== this.generation) return;
    }
    const client = new WhepClient(this.name, { iceServers, token: this.token, log: (m, l) => this.log(`${this.name}: ${m}`, l) });
    this.player = { kind: 'whep', client };
    this.video.srcObject = client.stream;
    let lostTimer = null;
    client.pc.addEventListener('connectionstatechange', () => {
      if (generation !== this.generation) return;
      const state = client.pc.connectionState;
      clearTimeout(lostTimer);
      const action = connectionAction(state);
      if (action === 'restart' && this.trial === generation) {
        this.fallBack(generation, chooseTransport({ mode: this.mode, failed: true }).why);
        return;
      }
      if (action === 'restart') this.recover(generation, `connection ${state}`);
      else if (action === 'wait') lostTimer = setTimeout(() => this.recover(generation, 'connection lost'), LOST_MS);
    });
    await client.start();
    if (generation !== this.generation) {
      client.stop();
      return;
    }
    if (!trial) {
      this.log(`${this.name}: playing over WHEP`);
      return;
    }
    const verdict = chooseTransport({ mode: this.mode, answer: client.pc.remoteDescription?.sdp ?? '' });
    if (verdict.transport === 'hls') {
      this.fallBack(generation, verdict.why);
      return;
    }
    if (this.trial !== generation) return; // a picture came already
    this.log(`${this.name}: ${verdict.why}: trying ${VIA_TURN}, up to ${RELAY_CONNECT_MS / 1000} s for a picture`);
    // Frames are counted where they are decoded (getStats), not by the <video>'s `playing`
    // alone: Chromium does not play a muted video out of view or in a hidden tab, and such a
    // player's transport works all the same.
    const deadline = performance.now() + RELAY_CONNECT_MS;
    clearInterval(this.relayTimer);
    const timer = setInterval(async () => {
      if (this.trial !== generation || generation !== this.generation) {
        clearInterval(timer);
        return;
      }
      const decoded = framesDecoded((await client.pc.getStats().catch(() => new Map())).values());
      if (this.trial !== generation || generation !== this.generation) return;
      if (decoded > 0) this.passTrial(generation);
      else if (performance.now() >= deadline) {
        this.fallBack(generation, chooseTransport({ mode: this.mode, timedOut: true }).why);
      }
    }, TRIAL_LOOK_MS);
    this.relayTimer = timer;
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
        else this.setState('connecting', connectingMessage(this.mode, 'whep'));
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

  async startHls(generation, why = null) {
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
    this.log(`${this.name}: playing over LL-HLS (${handle.engine})${why && this.mode === 'REMOTE' ? `: ${why}` : ''}`);
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
