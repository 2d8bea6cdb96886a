// LL-HLS playback: hls.js (lowLatencyMode) over Media Source Extensions, or the browser's own
// HLS where that is the better choice (Safari, and browsers without MSE). hls.js is loaded only
// when a page first needs it.

const HLS_JS = '/static/vendor/hls.min.mjs';
/** Seconds behind hls.js's own target latency before the player jumps to it (when buffered). */
const LIVE_SYNC_SLACK = 0.25;
let hlsModule = null;

async function loadHlsJs() {
  hlsModule ??= import(HLS_JS).then((m) => m.default).catch((e) => {
    hlsModule = null;
    throw new Error(`hls.js could not be loaded from ${HLS_JS} (${e.message}); `
      + 'the server may have been built without it (npm ci --prefix web, then rebuild)');
  });
  return hlsModule;
}

/**
 * Which engine to use: `?hls=native|hlsjs` decides; else Apple's native HLS (it implements
 * LL-HLS) when the browser is Safari, or any native HLS when MSE is missing (older iPhones);
 * hls.js everywhere else, since other browsers' native HLS does not do the low-latency parts.
 */
export function chooseEngine(video, params = new URLSearchParams(location.search)) {
  const forced = params.get('hls');
  if (forced === 'native' || forced === 'hlsjs') return forced;
  const native = video.canPlayType('application/vnd.apple.mpegurl') !== '';
  const mse = typeof window.MediaSource !== 'undefined' || typeof window.ManagedMediaSource !== 'undefined';
  const apple = /Apple/.test(navigator.vendor ?? '');
  return native && (apple || !mse) ? 'native' : 'hlsjs';
}

/** How many times a first playlist answered 503 ("not yet") is asked again. */
const NOT_YET_RETRIES = 20;

/**
 * Plays `url` in `video`. Resolves to a handle `{ engine, latency(), destroy() }` once loading
 * has started; `onFatal(message)` is called if playback cannot go on (the caller may retry).
 * `jumpBehind` (seconds): with hls.js, a player that has fallen that far behind the live edge
 * (a busy machine decoding slower than real time) jumps to it instead of catching up slowly —
 * for monitors that must show now, not a while ago.
 */
export async function playHls(video, url, { onFatal = () => {}, log = () => {}, jumpBehind = null } = {}) {
  const engine = chooseEngine(video);
  if (engine === 'native') {
    video.src = url;
    const onError = () => onFatal(`native HLS error ${video.error?.code ?? ''} ${video.error?.message ?? ''}`.trim());
    video.addEventListener('error', onError);
    video.play().catch(() => {});
    return {
      engine,
      latency() {
        const n = video.seekable.length;
        return n ? Math.max(0, video.seekable.end(n - 1) - video.currentTime) : null;
      },
      destroy() {
        video.removeEventListener('error', onError);
        video.removeAttribute('src');
        video.load();
      },
    };
  }
  const Hls = await loadHlsJs();
  if (!Hls.isSupported()) throw new Error('this browser has neither Media Source Extensions nor native HLS');
  const hls = new Hls({
    lowLatencyMode: true,
    backBufferLength: 10,
    // Play up to 1.5x to catch up with the live edge after a stall or a late start.
    maxLiveSyncPlaybackRate: 1.5,
    // Each stall moves hls.js's target latency back by this much, for good. Its default, 1 s (a
    // whole segment here), made the seek-ahead stall many players see right after they start
    // cost a second of latency for the rest of the session; a part's worth still backs off.
    liveSyncOnStallIncrease: 0.2,
    // Playlist and part requests are blocking reloads; give them more than a part's time.
    // A 503 for the first playlist is r58 saying "not yet": the stream is online but its first
    // part is still to come (a guest whose camera starts late), after holding the request
    // a while. Keep asking (about a minute) instead of giving up after hls.js's one retry.
    manifestLoadPolicy: {
      default: {
        maxTimeToFirstByteMs: 10000,
        maxLoadTimeMs: 20000,
        timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
        errorRetry: {
          maxNumRetry: 1,
          retryDelayMs: 1000,
          maxRetryDelayMs: 2000,
          shouldRetry: (_config, count, _timeout, response, retry) => retry || (response?.code === 503 && count < NOT_YET_RETRIES),
        },
      },
    },
  });
  let mediaRecoveries = 0;
  let stalls = 0;
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) stalls += 1;
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 3) {
      mediaRecoveries += 1;
      log(`HLS media error (${data.details}), recovering`, 'warn');
      hls.recoverMediaError();
      return;
    }
    const code = data.response?.code;
    if (data.details === 'manifestLoadError' && code === 404) onFatal('HLS playlist not found (HTTP 404)');
    else onFatal(`HLS ${data.details}${code ? ` (HTTP ${code})` : ''}`);
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
  // hls.js starts at the keyframe before its target position, up to a segment (1 s) later than
  // the playlist's PART-HOLD-BACK asks, and a stall adds its length the same way; with less than
  // a second buffered (always, this close to live) it never speeds up to close the gap. When the
  // target position is already buffered, jump there (at most every 5 s): the frames skipped are
  // ones the viewer would otherwise see that much too late.
  let lastSync = -Infinity;
  const syncToLive = () => {
    const live = hls.liveSyncPosition;
    const behind = hls.latency - hls.targetLatency;
    if (!(behind > LIVE_SYNC_SLACK) || !Number.isFinite(live)) return;
    if (performance.now() - lastSync < 5000) return;
    const buffered = video.buffered;
    for (let i = 0; i < buffered.length; i++) {
      if (live >= buffered.start(i) && live < buffered.end(i) - 0.1) {
        lastSync = performance.now();
        video.currentTime = live;
        return;
      }
    }
  };
  video.addEventListener('timeupdate', syncToLive);
  let jumps = 0;
  let lastJump = -Infinity;
  const watch = jumpBehind == null ? null : setInterval(() => {
    const live = hls.liveSyncPosition;
    if (!Number.isFinite(hls.latency) || hls.latency < jumpBehind || !Number.isFinite(live) || live <= video.currentTime) return;
    // A machine that cannot decode in real time falls behind again at once; jumping over and
    // over would only stutter, so at most once in 20 s.
    if (performance.now() - lastJump < 20000) return;
    lastJump = performance.now();
    jumps += 1;
    log(`${hls.latency.toFixed(1)} s behind live: jumping to live`, 'warn');
    video.currentTime = live;
  }, 1000);
  return {
    engine,
    latency: () => (Number.isFinite(hls.latency) ? hls.latency : null),
    /** Where hls.js aims to play, in seconds behind live (PART-HOLD-BACK plus its stalls). */
    targetLatency: () => (Number.isFinite(hls.targetLatency) ? hls.targetLatency : null),
    /** How often playback stalled for want of data. */
    stalls: () => stalls,
    /** The EXT-X-PROGRAM-DATE-TIME (server clock) of the frame on screen, or null. */
    playingDate: () => hls.playingDate ?? null,
    /** How often it jumped to live (see `jumpBehind`). */
    jumps: () => jumps,
    destroy: () => {
      clearInterval(watch);
      video.removeEventListener('timeupdate', syncToLive);
      hls.destroy();
    },
  };
}
