// The client side of a WHIP (RFC 9725) or WHEP session resource: POST the offer, trickle
// candidates with PATCH, ICE restart with PATCH If-Match "*", DELETE when done or when the page
// goes away. WhipClient and WhepClient (whip.js, whep.js) only set up the transceivers.

import { applyRestartAnswer, candidateFragment, restartFragment } from './sdpfrag.js';
import { csrfHeaders } from './session.js';

// A signed-in page's requests that change something carry its CSRF token.
const csrf = await csrfHeaders();

/** An HTTP refusal from the server, with its status and one-line reason. */
export class HttpError extends Error {
  constructor(status, reason, url) {
    super(`${status}${reason ? `: ${reason}` : ''}`);
    this.status = status;
    this.reason = reason;
    this.url = url;
  }
}

async function reasonOf(response) {
  const text = (await response.text().catch(() => '')).trim();
  return text.split('\n')[0].slice(0, 300);
}

export class Resource {
  /**
   * @param {string} endpoint  e.g. '/whip/guest1' (resolved against the page)
   * @param {RTCPeerConnection} pc  with its transceivers set up
   * @param {(msg: string, level?: string) => void} log
   * @param {string | null} token  bearer token, for paths the server protects
   */
  constructor(endpoint, pc, log = () => {}, token = null) {
    this.endpoint = new URL(endpoint, location.href).href;
    this.pc = pc;
    this.log = log;
    this.auth = { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...csrf };
    this.location = null;
    this.etag = null;
    this.pending = [];      // candidates gathered but not yet sent
    this.gathered = false;  // gathering finished: send a=end-of-candidates with the next batch
    this.flushing = null;
    this.restarting = false;
    this.deleted = false;
    this.onPageHide = () => this.deleteOnUnload();
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate && e.candidate.candidate) this.pending.push(e.candidate);
      else if (!e.candidate) this.gathered = true;
      this.scheduleFlush();
    });
  }

  /** Sends the offer at once (candidates follow by PATCH) and applies the answer. */
  async start() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const response = await fetch(this.endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', ...this.auth },
      body: this.pc.localDescription.sdp,
    });
    if (response.status !== 201) {
      throw new HttpError(response.status, await reasonOf(response), this.endpoint);
    }
    const answer = await response.text();
    const where = response.headers.get('Location');
    if (!where) throw new Error('the server sent no Location for the session');
    this.location = new URL(where, this.endpoint).href;
    this.etag = response.headers.get('ETag');
    addEventListener('pagehide', this.onPageHide);
    await this.pc.setRemoteDescription({ type: 'answer', sdp: answer });
    this.scheduleFlush();
    return this.location;
  }

  scheduleFlush() {
    if (!this.location || this.restarting || this.deleted || this.flushing) return;
    if (this.pending.length === 0 && !this.gathered) return;
    this.flushing = this.flush().finally(() => {
      this.flushing = null;
      if (this.pending.length) this.scheduleFlush();
    });
  }

  async flush() {
    // Let a burst of candidates collect into one PATCH.
    await new Promise((r) => setTimeout(r, 50));
    // Left meanwhile (a REMOTE player that falls back to LL-HLS leaves at once): nothing to tell.
    if (this.deleted) return;
    const local = this.pc.localDescription?.sdp ?? '';
    const ufrag = local.match(/^a=ice-ufrag:(.+?)\r?$/m)?.[1];
    // Candidates of an earlier ICE generation are useless to the server now.
    const batch = this.pending.splice(0).filter((c) => !c.usernameFragment || c.usernameFragment === ufrag);
    const end = this.gathered;
    this.gathered = false;
    if (batch.length === 0 && !end) return;
    try {
      const response = await fetch(this.location, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': this.etag ?? '*', ...this.auth },
        body: candidateFragment(local, batch, end),
      });
      if (response.status !== 204 && response.status !== 200) {
        // The server is ICE-lite and learns paths from connectivity checks, so a refused
        // trickle costs nothing but is worth a line in the log.
        this.log(`Trickle ICE refused: ${response.status} ${await reasonOf(response)}`, 'warn');
      }
    } catch (e) {
      this.log(`Trickle ICE failed: ${e.message}`, 'warn');
    }
  }

  /**
   * ICE restart (RFC 9725 section 4.4): new local credentials, PATCH If-Match "*", apply the
   * server's new credentials. Throws HttpError when the server no longer knows the session.
   */
  async restartIce() {
    if (!this.location) throw new Error('no session to restart');
    this.restarting = true;
    try {
      await this.flushing;
      const offer = await this.pc.createOffer({ iceRestart: true });
      await this.pc.setLocalDescription(offer);
      const response = await fetch(this.location, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '"*"', ...this.auth },
        body: restartFragment(this.pc.localDescription.sdp),
      });
      if (response.status !== 200) {
        const reason = await reasonOf(response);
        // Leave the half-done offer so the next attempt starts clean.
        await this.pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
        throw new HttpError(response.status, reason, this.location);
      }
      this.etag = response.headers.get('ETag') ?? this.etag;
      const fragment = await response.text();
      const remote = applyRestartAnswer(this.pc.remoteDescription.sdp, fragment);
      await this.pc.setRemoteDescription({ type: 'answer', sdp: remote });
    } finally {
      this.restarting = false;
    }
    this.scheduleFlush();
  }

  /** Ends the session on the server (once) and closes the peer connection. */
  async stop() {
    removeEventListener('pagehide', this.onPageHide);
    // DELETE before closing: closing sends a DTLS close_notify that ends the session on the
    // server, and the DELETE would then find nothing to delete.
    if (!this.location || this.deleted) {
      this.pc.close();
      return;
    }
    this.deleted = true;
    try {
      const response = await fetch(this.location, { method: 'DELETE', headers: this.auth });
      if (response.status !== 200 && response.status !== 404) {
        this.log(`Leaving: the server answered ${response.status} ${await reasonOf(response)}`, 'warn');
      }
    } catch (e) {
      this.log(`Leaving: ${e.message}`, 'warn');
    }
    this.pc.close();
  }

  /** The page is going away: a DELETE that outlives it (fetch keepalive). */
  deleteOnUnload() {
    if (!this.location || this.deleted) return;
    this.deleted = true;
    fetch(this.location, { method: 'DELETE', headers: this.auth, keepalive: true }).catch(() => {});
    this.pc.close();
  }
}

/** Which candidate pair carries the media: `{ local, remote }` types ('host', 'relay', ...). */
export async function selectedCandidates(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) {
    stats.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair ??= s;
    });
  }
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return {
    local: local?.candidateType ?? '?',
    localAddress: local ? `${local.address ?? local.ip}:${local.port}` : '?',
    protocol: local?.relayProtocol ?? local?.protocol ?? '?',
    remote: remote?.candidateType ?? '?',
    rttMs: pair.currentRoundTripTime != null ? pair.currentRoundTripTime * 1000 : null,
  };
}
