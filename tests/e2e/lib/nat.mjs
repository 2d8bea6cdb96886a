// The box-behind-NAT topology of tests/interop/nat_topology.py for node tests: network
// namespaces for the box (r58), the masquerading router, the "internet" (coturn and the tunnel
// edge), a remote client and a LAN client. The Python process that builds it holds it (and
// coturn and the tunnel forwarder) until its stdin closes, so a test that dies, however it
// dies, leaves nothing behind. r58 runs in the box and each Chromium in its client's namespace
// (`ip netns exec`): playwright talks to the browser over a pipe, which crosses namespaces.
import { metricSum } from './server.mjs';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { chromiumPath, launchChromium } from './browser.mjs';

const root = resolve(import.meta.dirname, '..', '..', '..');
const script = resolve(root, 'tests', 'interop', 'nat_topology.py');
const python = process.env.PYTHON ?? 'python3';
export const r58Bin = () => resolve(root, process.env.R58_BIN ?? 'target/debug/r58');

/** Why the topology (with Chromium and r58) cannot run here, or null. */
export function natMissing() {
  if (process.getuid?.() !== 0) return 'not root (network namespaces need CAP_NET_ADMIN)';
  if (!existsSync(chromiumPath())) return `${chromiumPath()} not found (apt-get install chromium)`;
  if (!existsSync(r58Bin())) return `r58 binary ${r58Bin()} not found (cargo build, or set R58_BIN)`;
  try {
    return JSON.parse(execFileSync(python, [script, 'check'], { encoding: 'utf8' })).missing;
  } catch (e) {
    return `${script} check failed: ${e.message}`;
  }
}

/**
 * Builds the topology with coturn in the internet namespace, the tunnel (its edge on the
 * internet side, r58 on the box's loopback) and a control forwarder (127.0.0.1 here -> r58 in
 * the box, for /healthz and /metrics only). Resolves to nat_topology.py's description (`ns`,
 * `addresses`, `turn`, `tunnel.base`, `r58.lan_base`, `control`) plus:
 * `counters()` (the router's nftables counters), `describe()`, `stop()`.
 */
export async function startTopology() {
  const child = spawn(python, [script, 'up', '--control'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the topology was not up within 30 s:\n${stderr}`)), 30000);
    lines.once('line', (l) => { clearTimeout(timer); ok(l); });
    child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`nat_topology.py up exited ${code}:\n${stderr}`)); });
  });
  lines.on('line', (l) => console.log(`[topology] ${l}`));
  const info = JSON.parse(first);
  return {
    ...info,
    counters: () => JSON.parse(execFileSync(python, [script, 'counters', info.tag], { encoding: 'utf8' })),
    describe: () => execFileSync(python, [script, 'describe', info.tag], { encoding: 'utf8' }),
    coturnLog: () => { try { return readFileSync(info.turn.log, 'utf8'); } catch { return '(no coturn log)'; } },
    tunnelLog: () => { try { return readFileSync(info.tunnel.log, 'utf8'); } catch { return '(no tunnel log)'; } },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin.end();  // the holder tears everything down and exits
      const timer = setTimeout(() => child.kill('SIGTERM'), 15000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Chromium (lib/browser.mjs's flags) inside namespace `ns`, through a wrapper script that runs
 * it with `ip netns exec`.
 */
export async function launchInNamespace(ns, extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), 'r58-netns-chromium-'));
  const wrapper = join(dir, 'chromium');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec '${ns}' '${chromiumPath()}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  return launchChromium(extraArgs, { executablePath: wrapper });
}

/**
 * r58 in the box namespace, listening on 0.0.0.0:8000 (HTTP) and 0.0.0.0:8189 (media), with
 * `toml` as its config file; resolves once /healthz answers and cam0 is online (read through the
 * control forwarder). It gets SIGTERM if this process dies (setpriv --pdeathsig).
 */
export async function startR58InBox(topo, toml) {
  const dir = mkdtempSync(join(tmpdir(), 'r58-nat-config-'));
  const config = join(dir, 'r58.toml');
  writeFileSync(config, toml);
  const { R58_TEST_CAMERAS: _, ...env } = process.env;
  env.R58_LOG_LEVEL ??= 'info,sfu::engine=debug';
  const args = [
    'netns', 'exec', topo.ns.box, 'setpriv', '--pdeathsig', 'TERM', '--', r58Bin(),
    '--config', config, '--listen', `0.0.0.0:${topo.r58.http_port}`,
    '--webrtc-udp', `0.0.0.0:${topo.r58.udp_port}`,
  ];
  const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: dir });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const base = topo.control;
  const r58 = {
    config: toml,
    log: () => log.replace(/\x1b\[[0-9;]*m/g, ''),
    /** The sum of a metric's samples whose labels match `labels` (a regular expression). */
    metric: (name, labels) => metricSum(base, name, labels),
    async streams() {
      return (await fetch(`${base}/api/streams`)).json();
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
  const deadline = Date.now() + 20000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`r58 exited ${child.exitCode}:\n${r58.log()}`);
    try {
      if ((await fetch(`${base}/healthz`)).ok && (await r58.streams()).some((s) => s.name === 'cam0' && s.online)) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      await r58.stop();
      throw new Error(`r58 not ready within 20 s:\n${r58.log()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return r58;
}
