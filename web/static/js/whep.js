// WHEP viewer: plays /whep/{name} into a MediaStream.

import { Resource } from './resource.js';

export class WhepClient {
  /**
   * @param {string} name  stream name
   * @param {{ iceServers?: RTCIceServer[], token?: string | null, log?: (m: string, l?: string) => void }} options
   */
  constructor(name, options = {}) {
    this.name = name;
    this.pc = new RTCPeerConnection({ iceServers: options.iceServers ?? [], bundlePolicy: 'max-bundle' });
    this.stream = new MediaStream();
    this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.pc.addTransceiver('audio', { direction: 'recvonly' });
    this.pc.addEventListener('track', (e) => this.stream.addTrack(e.track));
    this.resource = new Resource(`/whep/${encodeURIComponent(name)}`, this.pc, options.log, options.token);
  }

  start() { return this.resource.start(); }
  restartIce() { return this.resource.restartIce(); }
  stop() { return this.resource.stop(); }
}
