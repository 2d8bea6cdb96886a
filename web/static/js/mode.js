// Access mode: a page reached on this machine's LAN (localhost, a private or link-local address,
// a *.local mDNS name) is LOCAL and may use WebRTC both ways; anything else came through a
// tunnel or proxy that only carries HTTP, so it views over HLS and publishes through TURN.

/** Whether `hostname` (as in URL.hostname, IPv6 in brackets) names this LAN. */
export function isLocalHostname(hostname) {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local')) return true;
  const v4 = parseIPv4(host);
  if (v4) {
    const [a, b] = v4;
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)
      || (a === 169 && b === 254);
  }
  if (host.startsWith('[') && host.endsWith(']')) {
    const v6 = host.slice(1, -1);
    if (v6 === '::1') return true;
    // IPv4-mapped (::ffff:a.b.c.d, which URL writes as ::ffff:xxxx:xxxx).
    const mapped = v6.match(/^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/);
    if (mapped) {
      const hi = parseInt(mapped[1], 16);
      const lo = parseInt(mapped[2], 16);
      return isLocalHostname(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
    }
    const first = parseInt(v6.split(':')[0] || '0', 16);
    // fc00::/7 unique local, fe80::/10 link-local.
    return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80;
  }
  return false;
}

function parseIPv4(host) {
  const parts = host.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return null;
  const n = parts.map(Number);
  return n.every((x) => x <= 255) ? n : null;
}

/**
 * The page's access mode from its URL: `{ mode: 'LOCAL' | 'REMOTE', forced }`.
 * `?mode=local` or `?mode=remote` overrides the detection.
 */
export function accessMode(url) {
  const u = new URL(url);
  const forced = (u.searchParams.get('mode') ?? '').toLowerCase();
  if (forced === 'local' || forced === 'remote') {
    return { mode: forced.toUpperCase(), forced: true };
  }
  return { mode: isLocalHostname(u.hostname) ? 'LOCAL' : 'REMOTE', forced: false };
}

/** The one-line description pages log and show, e.g. "Access mode: REMOTE (using HLS)". */
export function describeMode({ mode, forced }, using) {
  return `Access mode: ${mode} (using ${using})${forced ? ' [set by ?mode=]' : ''}`;
}
