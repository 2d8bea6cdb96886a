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
