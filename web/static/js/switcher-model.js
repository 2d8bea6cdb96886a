// The switcher page's decisions, as pure functions (tested in node): which inputs to show in
// what order, each input's tally, what Cut does, what an error or a cut means in words.

import { orderStreams } from './streams.js';

/**
 * The inputs in display order: cameras first, then guests, each by name; never the program
 * stream itself. `streams` is the live list (a Map or array of stream summaries from
 * /api/events), `programStream` the program's name.
 */
export function orderInputs(streams, programStream = 'program') {
  return orderStreams(streams).filter((s) => s.source !== 'program' && s.name !== programStream);
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
