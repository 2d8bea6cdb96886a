// The live stream list, kept current by the server's events (GET /api/events): a snapshot on
// connect, then added / updated / removed. EventSource reconnects by itself after a drop and
// the server starts again with a fresh snapshot.

/**
 * Calls `onChange(streams, change)` with the whole list (a Map by name) after every change;
 * `change` is `{ type: 'snapshot' | 'added' | 'updated' | 'removed', name? }`.
 * `onStatus('live' | 'reconnecting')` follows the connection. `others` maps more event names
 * (e.g. `switcher`) to handlers of their parsed data. Returns a function that stops.
 */
export function watchStreams(onChange, onStatus = () => {}, others = {}) {
  const streams = new Map();
  const source = new EventSource('/api/events');
  for (const [type, handler] of Object.entries(others)) {
    source.addEventListener(type, (e) => handler(JSON.parse(e.data)));
  }
  source.addEventListener('snapshot', (e) => {
    streams.clear();
    for (const s of JSON.parse(e.data)) streams.set(s.name, s);
    onStatus('live');
    onChange(streams, { type: 'snapshot' });
  });
  for (const type of ['added', 'updated']) {
    source.addEventListener(type, (e) => {
      const s = JSON.parse(e.data);
      streams.set(s.name, s);
      onChange(streams, { type, name: s.name });
    });
  }
  source.addEventListener('removed', (e) => {
    const { name } = JSON.parse(e.data);
    streams.delete(name);
    onChange(streams, { type: 'removed', name });
  });
  source.addEventListener('error', () => onStatus('reconnecting'));
  return () => source.close();
}

/** "2.4 Mbit/s", "850 kbit/s". */
export function formatBitrate(bps) {
  if (!bps) return '0 kbit/s';
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mbit/s` : `${Math.round(bps / 1e3)} kbit/s`;
}

/**
 * Streams in display order: cameras first, then everything else, each by name, so tiles and
 * inputs keep their places as others come and go. `streams` is a Map or an array of summaries.
 */
export function orderStreams(streams) {
  const rank = (s) => (s.source === 'camera' ? 0 : 1);
  return [...(streams instanceof Map ? streams.values() : streams)]
    .sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

/** "camera" or "guest": how a page names a stream's kind (anything published over WHIP is a guest). */
export function sourceKind(summary) {
  return summary.source === 'camera' ? 'camera' : 'guest';
}

/**
 * "2 WebRTC viewers", or '' for none. `viewers` counts WHEP readers only: `readers.hls` is the
 * stream's HLS packager, not its audience.
 */
export function viewersLabel(viewers) {
  return viewers ? `${viewers} WebRTC viewer${viewers === 1 ? '' : 's'}` : '';
}
