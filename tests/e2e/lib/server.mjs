// Starts the r58 binary on free loopback ports and stops it again.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..', '..', '..');

export async function freeTcpPort(host) {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

async function freeUdpPort(host) {
  return new Promise((ok, fail) => {
    const s = createSocket('udp4');
    s.once('error', fail);
    s.bind(0, host, () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/**
 * Starts r58 with `extraArgs`, HTTP on a free port of `host` and WebRTC media on one of
 * `mediaHost` (loopback, or an address of a network namespace the test made and runs in).
 * Resolves to `{ base, pid, log(), stop() }`.
 */
export async function startServer(extraArgs = [], { host = '127.0.0.1', mediaHost = host } = {}) {
  // Relative paths are taken from the repository root, whatever the test's working folder.
  const bin = resolve(root, process.env.R58_BIN ?? 'target/debug/r58');
  const httpPort = await freeTcpPort(host);
  const udpPort = await freeUdpPort(mediaHost);
  // A test that passes its own --public-ip (one the browser cannot reach, say) replaces the
  // default: the option adds up.
  const publicIp = extraArgs.includes('--public-ip') ? [] : ['--public-ip', mediaHost];
  const args = [
    '--listen', `${host}:${httpPort}`,
    '--webrtc-udp', `${mediaHost}:${udpPort}`,
    ...publicIp,
    ...extraArgs,
  ];
  // No test cameras unless a test asks (with --test-cameras in extraArgs): two 720p encoders
  // would compete with the browser for CPU.
  const env = { ...process.env, R58_TEST_CAMERAS: '0' };
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const base = `http://${host}:${httpPort}`;
  const deadline = Date.now() + 15000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`r58 exited early:\n${log}`);
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`r58 did not become healthy:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    pid: child.pid,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
  };
}

/** The sum of the samples of metric `name` at `base`/metrics whose labels match `labels` (a
 * regular expression over the `{...}` part). */
export async function metricSum(base, name, labels = /.*/) {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = line.match(/^(\w+)(\{[^}]*\})? (\S+)$/);
    if (m && m[1] === name && labels.test(m[2] ?? '')) sum += Number(m[3]);
  }
  return sum;
}
