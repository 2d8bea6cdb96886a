// The ICE servers a REMOTE viewer's peer connections use: the TURN credentials from
// `GET /api/turn-credentials`, fetched once for all the page's players (the route is rate
// limited per client, and a page may start a dozen players at once) and again when they are
// older than FRESH_MS. A page whose server hands out none gets an empty list: the browser can
// still reach the server's own relay candidate from its host candidates.

/** Credentials younger than this are reused (r58 hands out ones that live at least 60 s). */
const FRESH_MS = 30000;
/** Longest wait for the credentials: a slow provider must not hold up playing. */
const FETCH_MS = 5000;

let cached = null; // { at, promise }

/** The ICE servers for a viewer's RTCPeerConnection (never rejects; [] when there are none). */
export function viewerIceServers(log = () => {}) {
  const now = performance.now();
  if (!cached || now - cached.at > FRESH_MS) {
    cached = { at: now, promise: fetchIceServers(log) };
    // A failure is not kept: the next player asks again.
    cached.promise.then(({ ok }) => { if (!ok && cached?.at === now) cached = null; });
  }
  return cached.promise.then(({ iceServers }) => iceServers);
}

async function fetchIceServers(log) {
  try {
    const r = await fetch('/api/turn-credentials', { signal: AbortSignal.timeout(FETCH_MS) });
    if (!r.ok) {
      const reason = (await r.text().catch(() => '')).trim().split('\n')[0];
      log(`TURN credentials: ${r.status}${reason ? ` ${reason}` : ''}: viewing without a TURN server of our own`, 'warn');
      return { ok: r.status === 404, iceServers: [] };
    }
    const { iceServers = [] } = await r.json();
    const urls = iceServers.flatMap((s) => [].concat(s.urls ?? s.url ?? []));
    log(`Viewing with ${iceServers.length} ICE server(s): ${urls.join(', ') || 'none'}`);
    return { ok: true, iceServers };
  } catch (e) {
    log(`TURN credentials: ${e.message}: viewing without a TURN server of our own`, 'warn');
    return { ok: false, iceServers: [] };
  }
}
