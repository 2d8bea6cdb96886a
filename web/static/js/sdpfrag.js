// Trickle ICE fragments (RFC 8840 application/trickle-ice-sdpfrag) for WHIP/WHEP PATCH requests.
// Pure functions on SDP text, so they are tested in node as well as used in the page.

/** The session's ICE credentials from an SDP: `{ ufrag, pwd }` (first occurrence). */
export function iceCredentials(sdp) {
  const ufrag = sdp.match(/^a=ice-ufrag:(.+?)\r?$/m)?.[1] ?? null;
  const pwd = sdp.match(/^a=ice-pwd:(.+?)\r?$/m)?.[1] ?? null;
  return { ufrag, pwd };
}

/** Each m-section's `{ kind, mid }` in order. */
export function mediaSections(sdp) {
  const out = [];
  for (const block of sdp.split(/\r?\n(?=m=)/).slice(1)) {
    const kind = block.match(/^m=(\w+)/)?.[1] ?? 'audio';
    const mid = block.match(/^a=mid:(.+?)\r?$/m)?.[1] ?? null;
    out.push({ kind, mid });
  }
  return out;
}

/**
 * A fragment carrying `candidates` (RTCIceCandidate-like: `{ candidate, sdpMid }`) under the
 * credentials of `localSdp`, grouped by m-section. `end` adds a=end-of-candidates.
 */
export function candidateFragment(localSdp, candidates, end = false) {
  const { ufrag, pwd } = iceCredentials(localSdp);
  const lines = [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`];
  const sections = mediaSections(localSdp);
  // With BUNDLE, candidates gathered for the first section serve them all; keep any that name
  // another mid under their own section all the same.
  const mids = new Set(candidates.map((c) => c.sdpMid ?? sections[0]?.mid));
  if (end && mids.size === 0 && sections[0]) mids.add(sections[0].mid);
  for (const section of sections) {
    if (!mids.has(section.mid)) continue;
    lines.push(`m=${section.kind} 9 UDP/TLS/RTP/SAVPF 0`, `a=mid:${section.mid}`);
    for (const c of candidates) {
      if ((c.sdpMid ?? sections[0]?.mid) !== section.mid) continue;
      lines.push(`a=${c.candidate.replace(/^a=/, '')}`);
    }
    if (end) lines.push('a=end-of-candidates');
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** An ICE restart request: the new local credentials on every m-section, no candidates. */
export function restartFragment(localSdp) {
  const { ufrag, pwd } = iceCredentials(localSdp);
  const lines = [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`];
  for (const s of mediaSections(localSdp)) {
    lines.push(`m=${s.kind} 9 UDP/TLS/RTP/SAVPF 0`, `a=mid:${s.mid}`);
  }
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * The remote description after the server answered an ICE restart with `fragment`: its new
 * ufrag/pwd replace the old ones, and any candidates it lists replace the old candidates.
 */
export function applyRestartAnswer(remoteSdp, fragment) {
  const { ufrag, pwd } = iceCredentials(fragment);
  if (!ufrag || !pwd) throw new Error('the ICE restart answer has no ice-ufrag/ice-pwd');
  const candidates = fragment.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
  const eol = remoteSdp.includes('\r\n') ? '\r\n' : '\n';
  const out = [];
  let section = -1;
  for (const line of remoteSdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) section += 1;
    if (line.startsWith('a=ice-ufrag:')) { out.push(`a=ice-ufrag:${ufrag}`); continue; }
    if (line.startsWith('a=ice-pwd:')) { out.push(`a=ice-pwd:${pwd}`); continue; }
    if (candidates.length && line.startsWith('a=candidate:')) continue;
    out.push(line);
    // New candidates go after each section's mid (BUNDLE: the first section carries them).
    if (candidates.length && section === 0 && line.startsWith('a=mid:')) out.push(...candidates);
  }
  return out.join(eol);
}
