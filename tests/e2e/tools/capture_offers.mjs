// Writes the WHIP and WHEP offers of Debian's Chromium and Firefox ESR to tests/data/offers/,
// for the SDP unit tests and the fuzz seeds (tests/data/offers/README.md says how each client's
// offers were made). Needs any r58 at BASE (default http://127.0.0.1:8000) for a secure origin.
//
//   node tools/capture_offers.mjs [BASE]
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { launchChromium, launchFirefox } from '../lib/browser.mjs';

const base = process.argv[2] ?? 'http://127.0.0.1:8000';
const out = resolve(import.meta.dirname, '../../data/offers');

// In the page: an offer as the guest page (WHIP: camera + microphone, sendonly) or the player
// (WHEP: recvonly audio + video) makes it, once ICE gathering is complete.
async function offerIn(page, kind) {
  return page.evaluate(async (kind) => {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    // An app's WHEP player with a data channel first (chat, tally): the data channel's m-line
    // is then the offerer-tagged one.
    if (kind === 'whep-datachannel') pc.createDataChannel('chat');
    if (kind === 'whip') {
      const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      for (const track of media.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
    } else {
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((done) => {
      if (pc.iceGatheringState === 'complete') return done();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && done();
      setTimeout(done, 3000);
    });
    const sdp = pc.localDescription.sdp;
    pc.close();
    return sdp;
  }, kind);
}

async function capture(label, browser, newPage) {
  const page = await newPage();
  await page.goto(`${base}/healthz`);
  for (const kind of ['whip', 'whep', 'whep-datachannel']) {
    const name = kind === 'whep-datachannel' ? 'whep-datachannel-audio-video' : `${kind}-audio-video`;
    const file = resolve(out, `${label}-${name}.sdp`);
    writeFileSync(file, await offerIn(page, kind));
    console.log(`wrote ${file}`);
  }
  await browser.close();
}

const chromium = await launchChromium();
await capture('chromium', chromium, () => chromium.newPage());
const firefox = await launchFirefox();
await capture('firefox', firefox, () => firefox.newPage());
