// The switcher page's decisions, as pure functions (tested in node): which inputs to show in
// what order and what each shows (key, tally, audio, problems, Take), which previews play, what
// the monitors show, what Cut and the keys do, the audio picker's choices, what an error, an
// alert or a cut in the history says. switcher.js only puts these on the page.

import { formatBitrate, orderStreams, sourceKind } from './streams.js';

/** Live input previews when the page does not say (`?previews=N`): LOCAL 12, REMOTE 6. */
export const DEFAULT_PREVIEWS = { LOCAL: 12, REMOTE: 6 };
/** An input scrolled out of view keeps its preview this long (scrolling back is instant). */
export const OFFSCREEN_STOP_MS = 5000;
/** A page in a background tab stops its players after this long. */
export const HIDDEN_STOP_MS = 30000;
/** Cuts the history shows. */
export const HISTORY_LINES = 12;

export const NOTHING_ON_PROGRAM = 'Nothing on program yet: pick a source, then Cut (Space) or Take.';
export const NO_PREVIEW = 'No preview. Click an input or press 1–9.';
export const PAUSED_HIDDEN = 'Paused while the page is hidden';
export const PAUSED_OFFSCREEN = 'Paused (scrolled out of view)';

/**
 * How many input previews may play at once: `?previews=N` (an integer 0-32) for a weak laptop
 * or a big wall, else the mode's default. Each is a decoder in the browser (and a session or
 * an HLS poller on the server).
 */
export function previewLimit(asked, mode) {
  const n = Number(asked);
  const ok = asked !== null && asked !== undefined && asked !== '' && Number.isInteger(n) && n >= 0 && n <= 32;
  return ok ? n : DEFAULT_PREVIEWS[mode] ?? DEFAULT_PREVIEWS.REMOTE;
}

/**
 * The inputs in display order: cameras first, then guests, each by name; never the program
 * stream itself. `streams` is the live list (a Map or array of stream summaries from
 * /api/events), `programStream` the program's name.
 */
export function orderInputs(streams, programStream = 'program') {
  return orderStreams(streams).filter((s) => s.source !== 'program' && s.source !== 'return' && s.name !== programStream);
}

/** The input that key `1`..`9` selects (index 0..8), or -1. */
export function keyIndex(key) {
  return /^[1-9]$/.test(key) ? Number(key) - 1 : -1;
}

/** The tally of source `name` in switcher state `s`. */
export function tallyOf(name, s) {
  return {
    program: Boolean(s) && s.program === name,
    preview: Boolean(s) && s.preview === name,
    pending: Boolean(s) && s.pending === name,
    audio: Boolean(s) && (s.audio_pin ? s.audio_pin === name : s.program === name),
  };
}

/**
 * What pressing Cut would do: `{ ok: true, source }` or `{ ok: false, why }`. `sources` is the
 * switcher's list (`[{name, incompatible}]`).
 */
export function cutPlan(s) {
  if (!s) return { ok: false, why: 'Waiting for the switcher state…' };
  if (!s.preview) return { ok: false, why: 'Nothing in preview: pick a source (keys 1-9) first.' };
  if (s.preview === (s.pending ?? s.program)) {
    return { ok: false, why: `"${s.preview}" is already on program.` };
  }
  const source = (s.sources ?? []).find((x) => x.name === s.preview);
  if (!source) return { ok: false, why: `"${s.preview}" is not live.` };
  if (source.incompatible) return { ok: false, why: `"${s.preview}" cannot go to program: ${source.incompatible}.` };
  return { ok: true, source: s.preview };
}

/** The operator-facing sentence for a refused switcher request. */
export function describeError(action, source, status, reason) {
  const what = action === 'program' ? `Cannot cut to "${source}"`
    : action === 'preview' ? `Cannot preview "${source}"`
      : source ? `Cannot pin audio to "${source}"` : 'Cannot let audio follow video';
  const why = (reason ?? '').trim();
  switch (status) {
    case 404: return `${what}: it is not live any more (404). ${why}`.trim();
    case 422: return `${what}: ${why || 'the server refused it'} (422).`;
    case 401: return `${what}: this switcher needs an operator token (401). Open the page with ?token=… .`;
    case 403: return `${what}: refused (403). ${why || 'This page may not switch from where it is opened.'}`.trim();
    case 0: return `${what}: the server did not answer (${why || 'network error'}).`;
    default: return `${what}: ${status} ${why}`.trim();
  }
}

/** One history line: `{ key, text, latency, kind }` for a cut `{from, to, latency_ms, forced, reason}`. */
export function describeCut(cut) {
  const from = cut.from ?? '—';
  const text = `${from} → ${cut.to}`;
  let latency;
  if (cut.latency_ms == null) latency = 'waiting for keyframe…';
  else if (cut.forced) latency = `${Math.round(cut.latency_ms)} ms (forced: no keyframe came)`;
  else latency = `${cut.latency_ms < 10 ? cut.latency_ms.toFixed(1) : Math.round(cut.latency_ms)} ms`;
  const kind = cut.reason === 'fallback' ? 'fallback' : cut.forced ? 'forced' : cut.latency_ms == null ? 'pending' : 'cut';
  return { key: `${cut.requested_at_ms}-${cut.to}`, text, latency, kind };
}

/** Fallback cuts in `history` that were not in `before` (both lists of cuts). */
export function newFallbacks(before, history) {
  const seen = new Set((before ?? []).map((c) => `${c.requested_at_ms}-${c.to}`));
  return (history ?? []).filter((c) => c.reason === 'fallback' && !seen.has(`${c.requested_at_ms}-${c.to}`));
}

/** Median and last cut latency (ms) over taken, unforced cuts; nulls when none. */
export function latencySummary(history) {
  const taken = (history ?? []).filter((c) => c.latency_ms != null && !c.forced).map((c) => c.latency_ms);
  if (taken.length === 0) return { median: null, last: null, count: 0 };
  const sorted = [...taken].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, last: taken[taken.length - 1], count: taken.length };
}

/** The line under the Cut button: the last and median cut latency, or '' before the first cut. */
export function cutLatencyText(history) {
  const summary = latencySummary(history);
  return summary.last == null ? ''
    : `Last cut ${Math.round(summary.last)} ms · median ${Math.round(summary.median)} ms (${summary.count})`;
}

/** "12:01:07": a cut's time on this browser's clock. */
export function clockTime(ms) {
  return new Date(ms).toTimeString().slice(0, 8);
}

/** The history, newest first, at most `limit` lines: `describeCut` plus `time` and `tag`. */
export function historyLines(history, limit = HISTORY_LINES) {
  return [...(history ?? [])].reverse().slice(0, limit).map((cut) => {
    const d = describeCut(cut);
    return { ...d, time: clockTime(cut.requested_at_ms), tag: d.kind === 'fallback' ? 'fallback' : '' };
  });
}

/**
 * Everything one input shows, for the stream `summary` at `index` in the display order, in
 * switcher state `s`: key, tally lights and label, kind, bitrate, audio, why it cannot go to
 * program, the Take button, and its accessible name.
 */
export function inputView(summary, s, index) {
  const t = tallyOf(summary.name, s);
  const source = (s?.sources ?? []).find((x) => x.name === summary.name);
  const problem = !summary.online ? 'Offline'
    : source?.incompatible ? `Cannot go to program: ${source.incompatible}` : '';
  const audioOnAir = Boolean(summary.audio) && t.audio;
  return {
    key: index >= 0 && index < 9 ? String(index + 1) : '',
    tally: t,
    tallyText: t.program ? 'PGM' : t.pending ? 'CUT…' : t.preview ? 'PVW' : '',
    kind: sourceKind(summary),
    bitrate: summary.online ? formatBitrate(summary.bitrate_bps) : '',
    audioText: summary.audio ? `audio ${summary.audio.codec}${audioOnAir ? ' · on program' : ''}` : 'no audio',
    audioOnAir,
    problem,
    takeDisabled: Boolean(problem) || t.program || t.pending,
    takeTitle: problem || (t.program ? 'On program' : 'Cut straight to this source'),
    ariaLabel: `${summary.name}${t.program ? ', on program' : ''}${t.preview ? ', in preview' : ''}`,
  };
}

/**
 * Which input previews play. `inputs` in display order, each `{ name, online, observed,
 * visible, lastVisible, running, state }` (`observed`: the page has learnt whether it is in
 * view; `state`: its player's). `ctx` is `{ local, preview, max, pageHidden, now }`. In LOCAL
 * mode the preview source plays first (the preview monitor shows its stream), then the others
 * in display order, at most `max`; an input out of view keeps playing OFFSCREEN_STOP_MS.
 * Returns one step per input: `{ name, action: 'start' }`, `{ name, action: 'stop', state,
 * message }` (end its player), `{ name, action: 'show', state, message }` (only say so) or
 * `{ name, action: 'none' }`.
 */
export function planPreviews(inputs, { local, preview, max, pageHidden, now }) {
  const first = local ? inputs.find((i) => i.name === preview) : undefined;
  const queue = first ? [first, ...inputs.filter((i) => i !== first)] : inputs;
  let playing = 0;
  return queue.map((input) => {
    const { name } = input;
    const feedsMonitor = local && preview === name;
    // Not looked at yet (the page learns right after the input is added).
    if (!input.observed && !feedsMonitor) return { name, action: 'none' };
    const wanted = input.online && !pageHidden
      && (feedsMonitor || input.visible || now - input.lastVisible < OFFSCREEN_STOP_MS);
    if (!wanted) {
      if (input.running) {
        return {
          name, action: 'stop', state: input.online ? 'paused' : 'offline',
          message: !input.online ? 'Offline' : pageHidden ? PAUSED_HIDDEN : PAUSED_OFFSCREEN,
        };
      }
      if (input.online && input.state === 'idle') return { name, action: 'show', state: 'paused', message: PAUSED_OFFSCREEN };
      return { name, action: 'none' };
    }
    if (playing < max) {
      playing += 1;
      return { name, action: 'start' };
    }
    if (input.running || input.state !== 'paused') {
      return { name, action: 'stop', state: 'paused', message: `Preview off: at most ${max} live preview${max === 1 ? '' : 's'} at once` };
    }
    return { name, action: 'none' };
  });
}

/**
 * What the preview monitor shows in LOCAL mode, where it plays the preview input's own stream:
 * `name` the preview source, `input` its player's `{ state, message }` (null when it is not an
 * input), `videoPlaying` whether the monitor's own video runs. Returns `{ state, message }`.
 */
export function previewMonitorState(name, input, videoPlaying) {
  if (!name) return { state: 'idle', message: NO_PREVIEW };
  if (!input) return { state: 'offline', message: `"${name}" is not live.` };
  if (input.state !== 'live') return { state: input.state, message: input.message || 'Waiting for the source…' };
  return videoPlaying ? { state: 'live', message: '' } : { state: 'connecting', message: 'Starting…' };
}

/**
 * The program monitor: which stream it plays (the program itself), whether it plays now (a
 * program exists and the page is in view), its caption, and what it says while idle.
 * `streams` is the live list (Map by name).
 */
export function programView(s, streams, pageHidden) {
  const stream = s?.program_stream ?? 'program';
  const hasProgram = Boolean(s?.program || s?.pending || streams?.get(stream)?.online);
  return {
    stream,
    play: hasProgram && !pageHidden,
    source: s?.program ?? '',
    pending: s?.pending ? `→ ${s.pending} (waiting for its keyframe)` : '',
    idleMessage: pageHidden ? PAUSED_HIDDEN : NOTHING_ON_PROGRAM,
  };
}

/**
 * The program-audio picker: "Follows video", then every source the program can carry (those
 * without audio listed but not choosable), and a pin to a source that is gone, said so rather
 * than shown as "Follows video". Returns `{ options: [{ value, text, disabled }], value }`.
 */
export function audioChoices(s) {
  const options = [{ value: '', text: 'Follows video', disabled: false }];
  for (const source of (s?.sources ?? []).filter((x) => !x.incompatible)) {
    options.push({ value: source.name, text: source.audio ? source.name : `${source.name} (no audio)`, disabled: !source.audio });
  }
  const pin = s?.audio_pin ?? '';
  if (pin && !options.some((o) => o.value === pin)) options.push({ value: pin, text: `${pin} (gone)`, disabled: true });
  return { options, value: pin };
}

/**
 * What the page says when a new switcher state `s` follows `before`: the program fell back
 * (for each new fallback cut), or its source went and nothing could take over. Each alert is
 * `{ message, kind, ms }` (`ms` 0: until dismissed).
 */
export function stateAlerts(before, s) {
  if (!before) return [];
  const alerts = newFallbacks(before.history, s.history).map((cut) => ({
    message: `Program source "${cut.from ?? '?'}" went away: the program fell back to "${cut.to}".`, kind: 'warn', ms: 15000,
  }));
  if (before.program && !s.program && !s.pending) {
    alerts.push({
      message: `Program source "${before.program}" went away and no fallback source is live: the program is paused.`, kind: 'warn', ms: 0,
    });
  }
  return alerts;
}

/**
 * What a key does on the switcher page: `{ type: 'select', index }` (1-9: preview), `cut`
 * (Space, Enter; not when held down), `clear` (Escape: the alert), or `none`; `preventDefault`
 * when the browser must not act on it too (a focused button would click). Keys with Ctrl, Alt
 * or Meta, and keys typed into a form field (`typing`), are left alone.
 */
export function keyAction({ key, ctrlKey = false, metaKey = false, altKey = false, repeat = false, typing = false }) {
  if (ctrlKey || metaKey || altKey || typing) return { type: 'none', preventDefault: false };
  const index = keyIndex(key);
  if (index >= 0) return { type: 'select', index, preventDefault: true };
  if (key === ' ' || key === 'Enter') return { type: repeat ? 'none' : 'cut', preventDefault: true };
  if (key === 'Escape') return { type: 'clear', preventDefault: false };
  return { type: 'none', preventDefault: false };
}

/**
 * After a Cut from `old` to `source` answered with state `done`: the source to put in preview
 * (the old program, ready to cut back) when `swap` is on and it is still live, else null.
 */
export function swapAfterCut(old, source, done, swap) {
  return swap && old && old !== source && (done?.sources ?? []).some((s) => s.name === old) ? old : null;
}

/** The server's reason from an error body: its first line, at most 300 characters. */
export function refusalReason(body) {
  return (body ?? '').trim().split('\n')[0].slice(0, 300);
}

/** What the page says when polling GET /api/switcher fails with `status` (0: no answer). */
export function pollFailure(status, message = '') {
  if (status === 401) return { message: 'This switcher needs an operator token (401): open the page with ?token=… .', ms: 0 };
  if (status === 0) return { message: `The server did not answer: ${message}`, ms: 5000 };
  return { message: `The switcher state is not available: ${status}`, ms: 5000 };
}
