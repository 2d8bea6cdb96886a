// Launches Debian's Chromium through playwright-core with fake camera and microphone.
import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const chromiumPath = () => process.env.CHROMIUM ?? '/usr/bin/chromium';

// `executablePath` replaces Chromium itself, e.g. with a wrapper that runs it in a network
// namespace (lib/nat.mjs). `env` is its environment (e.g. a HOME whose ~/.pki/nssdb holds the
// certificate authorities it trusts besides the public ones).
export async function launchChromium(extraArgs = [], { executablePath, env } = {}) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'r58-chromium-'));
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: executablePath ?? chromiumPath(),
    ...(env ? { env } : {}),
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      ...extraArgs,
    ],
  });
}

/**
 * A page of `browser` on the server's origin (`base`) with lib/peers.js and lib/g2g.js loaded:
 * it can publish the wall-clock canvas or play a stream and read the clock back (`window.g2g`).
 * Its console is printed with `label`.
 */
export async function openClockPage(browser, base, label) {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[${label}] ${m.text()}`));
  await page.goto(`${base}/healthz`);
  await page.addScriptTag({ path: resolve(import.meta.dirname, 'peers.js') });
  await page.addScriptTag({ path: resolve(import.meta.dirname, 'g2g.js') });
  return page;
}

export const firefoxPath = () => process.env.FIREFOX ?? '/usr/bin/firefox-esr';

/**
 * Launches Debian's Firefox ESR headless through puppeteer-core (WebDriver BiDi) with a fake
 * camera and microphone and no permission prompt. Its ICE stack gathers only loopback here:
 * WebRTC may use 127.0.0.1 (`media.peerconnection.ice.loopback`) and must not offer this
 * machine's interface addresses (`ice.default_address_only` keeps it to the default route's
 * interface, and the obfuscation/mDNS of host candidates is off so the server can reach the
 * candidate it is given).
 */
export async function launchFirefox({ prefs = {} } = {}) {
  const { default: puppeteer } = await import('puppeteer-core');
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: firefoxPath(),
    headless: true,
    userDataDir: mkdtempSync(join(tmpdir(), 'r58-firefox-')),
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      'media.peerconnection.ice.loopback': true,
      'media.peerconnection.ice.obfuscate_host_addresses': false,
      'media.peerconnection.ice.default_address_only': true,
      'media.peerconnection.ice.no_host': false,
      'network.dns.disableIPv6': true,
      ...prefs,
    },
  });
}
