// Access mode: a page reached on this machine's LAN (localhost, a private or link-local address,
// a *.local mDNS name) is LOCAL and may use WebRTC both ways; anything else came through a
// tunnel or proxy that only carries HTTP, so it publishes through TURN and views over WebRTC
// through the server's own TURN relay when it has one, else over LL-HLS.

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

/**
 * What a viewing page's header says after its mode (`REMOTE · WebRTC via TURN`), from the
 * transports its players settled on (`transports`: 'whep' | 'hls' | null each; null while a
 * player is still trying or stopped). LOCAL pages always play over WHEP; REMOTE ones say
 * `HLS` under `?play=hls` (`play`) or when every settled player plays LL-HLS, `WebRTC via TURN`
 * when every one plays WebRTC, both when they differ, and the plan while none has settled.
 */
export function transportLabel(mode, play, transports = []) {
  if (mode === 'LOCAL') return 'WebRTC/WHEP';
  if (play === 'hls') return 'HLS';
  const whep = transports.includes('whep');
  const hls = transports.includes('hls');
  if (whep && hls) return 'WebRTC via TURN + HLS';
  if (whep) return 'WebRTC via TURN';
  if (hls) return 'HLS';
  return 'WebRTC via TURN or HLS';
}
