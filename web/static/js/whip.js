// WHIP publisher: sends a MediaStream's tracks to /whip/{name}.

import { Resource } from './resource.js';

/** Orders H.264 (constrained baseline first) ahead of other video codecs: the server packages
 * LL-HLS from H.264 only, so a guest in any other codec would be missing from REMOTE viewers. */
export function preferH264(codecs) {
  const rank = (c) => {
    if (c.mimeType !== 'video/H264') return c.mimeType === 'video/rtx' ? 3 : 4;
    // The server takes packetization-mode 1 only (FU-A fragments; mode 0 cannot carry 720p).
    const fmtp = c.sdpFmtpLine ?? '';
    if (!/packetization-mode=1/.test(fmtp)) return 2;
    return /profile-level-id=42e01f/i.test(fmtp) ? 0 : 1;
  };
  return [...codecs].sort((a, b) => rank(a) - rank(b));
}

export class WhipClient {
  /**
   * @param {string} name  stream name
   * @param {MediaStream} media
   * @param {{ iceServers?: RTCIceServer[], iceTransportPolicy?: RTCIceTransportPolicy,
   *           maxVideoBitrate?: number, token?: string | null, log?: (m: string, l?: string) => void }} options
   */
  constructor(name, media, options = {}) {
    this.name = name;
    this.pc = new RTCPeerConnection({
      iceServers: options.iceServers ?? [],
      iceTransportPolicy: options.iceTransportPolicy ?? 'all',
      bundlePolicy: 'max-bundle',
    });
    for (const track of media.getTracks()) {
      const sendEncodings = track.kind === 'video' && options.maxVideoBitrate
        ? [{ maxBitrate: options.maxVideoBitrate }] : undefined;
      const t = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [media], sendEncodings });
      if (track.kind === 'video' && RTCRtpSender.getCapabilities) {
        const codecs = RTCRtpSender.getCapabilities('video')?.codecs ?? [];
        if (codecs.some((c) => c.mimeType === 'video/H264')) t.setCodecPreferences(preferH264(codecs));
      }
    }
    this.resource = new Resource(`/whip/${encodeURIComponent(name)}`, this.pc, options.log, options.token);
  }

  start() { return this.resource.start(); }
  restartIce() { return this.resource.restartIce(); }
  stop() { return this.resource.stop(); }
}
