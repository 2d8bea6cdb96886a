// Runs inside the page: glass-to-glass latency. The publisher draws the wall clock into a canvas
// as a grid of black and white blocks and publishes the canvas with WHIP; the viewer plays the
// stream with WHEP, reads every displayed frame back (requestVideoFrameCallback) and decodes the
// clock. Both pages take the time as performance.timeOrigin + performance.now(), which is the
// same epoch in every page on one machine, at sub-millisecond resolution.
//
// The code: 48 bits of integer milliseconds and a 16-bit check, as 64 blocks of 40x40 pixels
// (16 columns, 4 rows). Blocks that large survive H.264 at the low bitrates a fresh connection
// starts with; the check rejects a frame caught mid-change or smeared by the encoder.
//
// Needs lib/peers.js in the page first: its `postOffer` does the WHIP/WHEP exchange.

(() => {
  const COLS = 16;
  const ROWS = 4;
  const BLOCK = 40;
  const TOP = 100;
  const WIDTH = 640;
  const HEIGHT = 360;

  const wallMs = () => performance.timeOrigin + performance.now();

  // A 16-bit check over the 48-bit value (three 16-bit words mixed so that a single flipped block
  // changes it).
  function check(ms) {
    const lo = ms % 0x10000;
    const mid = Math.floor(ms / 0x10000) % 0x10000;
    const hi = Math.floor(ms / 0x100000000) % 0x10000;
    let h = 0x9e37;
    for (const w of [lo, mid, hi]) h = (Math.imul(h ^ w, 0x2f6b) + 0x7f4a) & 0xffff;
    return h;
  }

  function bitsOf(ms) {
    const bits = [];
    let v = ms;
    for (let i = 0; i < 48; i++) {
      bits.push(v % 2);
      v = Math.floor(v / 2);
    }
    const c = check(ms);
    for (let i = 0; i < 16; i++) bits.push((c >> i) & 1);
    return bits;
  }

  function draw(ctx, ms, frame) {
    ctx.fillStyle = '#808080';
    ctx.fillRect(0, 0, WIDTH, HEIGHT);
    // Something that moves, as a camera picture would.
    ctx.fillStyle = '#404040';
    ctx.fillRect((frame * 8) % WIDTH, 20, 60, 60);
    const bits = bitsOf(ms);
    for (let i = 0; i < COLS * ROWS; i++) {
      ctx.fillStyle = bits[i] ? '#ffffff' : '#000000';
      ctx.fillRect((i % COLS) * BLOCK, TOP + Math.floor(i / COLS) * BLOCK, BLOCK, BLOCK);
    }
  }

  // Reads the clock from RGBA pixels of a WIDTH x HEIGHT picture; null if the check fails.
  function decode(data, width, height) {
    const sx = width / WIDTH;
    const sy = height / HEIGHT;
    let ms = 0;
    let c = 0;
    for (let i = 0; i < COLS * ROWS; i++) {
      // Mean luma of the block's middle 20x20 pixels.
      const x0 = Math.round(((i % COLS) * BLOCK + 10) * sx);
      const y0 = Math.round((TOP + Math.floor(i / COLS) * BLOCK + 10) * sy);
      const x1 = Math.round(((i % COLS) * BLOCK + 30) * sx);
      const y1 = Math.round((TOP + Math.floor(i / COLS) * BLOCK + 30) * sy);
      let sum = 0;
      let n = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const p = (y * width + x) * 4;
          sum += data[p] * 0.299 + data[p + 1] * 0.587 + data[p + 2] * 0.114;
          n++;
        }
      }
      const bit = sum / n > 128 ? 1 : 0;
      if (i < 48) ms += bit * 2 ** i;
      else c |= bit << (i - 48);
    }
    return check(ms) === c ? ms : null;
  }

  async function candidateType(pc) {
    const report = await pc.getStats();
    let pair;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
    });
    return pair ? report.get(pair.localCandidateId)?.candidateType ?? null : null;
  }

  // A peer connection sending the clock canvas at `fps`. Each frame is drawn and handed to the
  // track at once (captureStream(0) + requestFrame), so the clock is the moment the frame
  // enters WebRTC.
  function clockPeer(fps, config) {
    const canvas = document.createElement('canvas');
    canvas.width = WIDTH;
    canvas.height = HEIGHT;
    document.body.append(canvas);
    const ctx = canvas.getContext('2d');
    const stream = canvas.captureStream(0);
    const [track] = stream.getVideoTracks();
    // Text-like content: keep the resolution, let the frame rate give under pressure.
    track.contentHint = 'detail';
    let frame = 0;
    const tick = () => {
      draw(ctx, Math.round(wallMs()), frame++);
      track.requestFrame();
    };
    tick();
    setInterval(tick, 1000 / fps);
    const pc = new RTCPeerConnection(config);
    const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    const codecs = RTCRtpSender.getCapabilities('video').codecs
      .filter((c) => c.mimeType === 'video/H264' || c.mimeType === 'video/rtx');
    t.setCodecPreferences(codecs);
    return pc;
  }

  // A receive-only peer connection whose video plays in a <video>, as `window.viewer`.
  function viewerPeer(config) {
    const pc = new RTCPeerConnection(config);
    pc.addTransceiver('video', { direction: 'recvonly' });
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    document.body.append(video);
    pc.addEventListener('track', (e) => { video.srcObject = e.streams[0] ?? new MediaStream([e.track]); });
    window.viewer = { pc, video, location: null };
    return pc;
  }

  // Decodes the clock of displayed frames of `video` into `samples` (`failed` counts frames
  // whose check did not match).
  function frameReader(video) {
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const reader = {
      samples: [],
      failed: 0,
      read(meta, now) {
        if (canvas.width !== meta.width || canvas.height !== meta.height) {
          canvas.width = meta.width;
          canvas.height = meta.height;
        }
        ctx.drawImage(video, 0, 0, meta.width, meta.height);
        const ms = decode(ctx.getImageData(0, 0, meta.width, meta.height).data, meta.width, meta.height);
        if (ms === null) {
          reader.failed++;
          return;
        }
        reader.samples.push({
          drawn: ms,
          // The callback runs when the frame is handed to the compositor.
          shown: now,
          expectedDisplay: performance.timeOrigin + meta.expectedDisplayTime,
          // When the frame's last packet arrived (WebRTC sources only).
          received: meta.receiveTime === undefined ? null : performance.timeOrigin + meta.receiveTime,
          width: meta.width,
          height: meta.height,
        });
      },
    };
    return reader;
  }

  window.g2g = {
    // Publishes the clock canvas at `fps` to r58 with WHIP.
    async publish(base, name, fps, config) {
      const pc = clockPeer(fps, config);
      const location = await postOffer(`${base}/whip/${name}`, pc);
      window.publisher = { pc, location };
      return location;
    },

    // Without r58, for comparison: the clock canvas straight to another browser. Returns the
    // offer (with every candidate); `p2pAccept` takes the other side's answer.
    async p2pOffer(fps, config) {
      const pc = clockPeer(fps, config);
      await pc.setLocalDescription();
      await waitGathered(pc);
      window.publisher = { pc, location: null };
      return pc.localDescription.sdp;
    },

    async p2pAccept(sdp) {
      await window.publisher.pc.setRemoteDescription({ type: 'answer', sdp });
    },

    // Plays `name` from r58 with WHEP.
    async play(base, name, config) {
      const pc = viewerPeer(config);
      window.viewer.location = await postOffer(`${base}/whep/${name}`, pc);
    },

    // The other end of `p2pOffer`: returns the answer.
    async p2pAnswer(sdp, config) {
      const pc = viewerPeer(config);
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription();
      await waitGathered(pc);
      return pc.localDescription.sdp;
    },

    // Reads the clock from every displayed frame until `count` frames were read after the first
    // `settleMs` (while the bandwidth estimate and the jitter buffer settle).
    async collect(count, settleMs) {
      const { pc, video } = window.viewer;
      const reader = frameReader(video);
      let first = null;
      await new Promise((resolve) => {
        const onFrame = (_, meta) => {
          const now = wallMs();
          first ??= now;
          if (now - first >= settleMs) reader.read(meta, now);
          if (reader.samples.length >= count) resolve();
          else video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
      });
      return { samples: reader.samples, failed: reader.failed, localCandidate: await candidateType(pc) };
    },

    // Reads the clock from every frame displayed in the next `ms` milliseconds, however few.
    async watch(ms) {
      const { video } = window.viewer;
      const reader = frameReader(video);
      let watching = true;
      const onFrame = (_, meta) => {
        if (!watching) return;
        reader.read(meta, wallMs());
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
      await new Promise((resolve) => setTimeout(resolve, ms));
      watching = false;
      return { samples: reader.samples, failed: reader.failed };
    },

    candidateType,
  };
})();
