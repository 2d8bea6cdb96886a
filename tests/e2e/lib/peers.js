// Runs inside the page: a minimal WHIP publisher and WHEP viewer, plus decode statistics.
// (The product's own WHIP/WHEP client modules arrive with the operator pages.)

async function waitGathered(pc) {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise((resolve) => {
    const done = () => pc.iceGatheringState === 'complete' && resolve();
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, 2000);
  });
}

async function postOffer(url, pc) {
  await pc.setLocalDescription();
  await waitGathered(pc);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp' },
    body: pc.localDescription.sdp,
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`${url}: ${response.status} ${text}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  return new URL(response.headers.get('Location'), url).href;
}

window.r58 = {
  // `config`: RTCConfiguration, e.g. TURN servers with iceTransportPolicy 'relay'.
  // `videoLater`: only audio flows until window.publisher.startVideo() (a camera coming up
  // after the guest joined).
  async publish(base, name, codec = 'video/H264', config = undefined, videoLater = false) {
    const media = await navigator.mediaDevices.getUserMedia({
      video: { width: 640, height: 360, frameRate: 30 },
      audio: true,
    });
    const pc = new RTCPeerConnection(config);
    let startVideo = () => Promise.resolve();
    for (const track of media.getTracks()) {
      const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      if (track.kind === 'video' && videoLater) {
        await t.sender.replaceTrack(null);
        startVideo = () => t.sender.replaceTrack(track);
      }
      if (track.kind === 'video') {
        const codecs = RTCRtpSender.getCapabilities('video').codecs
          .filter((c) => c.mimeType === codec || c.mimeType === 'video/rtx');
        t.setCodecPreferences(codecs);
      }
    }
    const location = await postOffer(`${base}/whip/${name}`, pc);
    window.publisher = { pc, location, media, startVideo };
    return location;
  },

  async play(base, name, key) {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const started = performance.now();
    const location = await postOffer(`${base}/whep/${name}`, pc);
    window.viewers = window.viewers ?? {};
    window.viewers[key] = { pc, location, started };
    return location;
  },

  async stats(key) {
    const { pc, started } = window.viewers[key];
    const report = await pc.getStats();
    const out = { state: pc.connectionState, video: null, audio: null };
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.video = {
          framesDecoded: s.framesDecoded ?? 0,
          frameWidth: s.frameWidth ?? 0,
          frameHeight: s.frameHeight ?? 0,
          packetsLost: s.packetsLost ?? 0,
          nackCount: s.nackCount ?? 0,
          pliCount: s.pliCount ?? 0,
        };
      }
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.audio = { packetsReceived: s.packetsReceived ?? 0 };
      }
    });
    out.elapsedMs = performance.now() - started;
    return out;
  },

  async remove(location) {
    const r = await fetch(location, { method: 'DELETE' });
    return r.status;
  },
};
