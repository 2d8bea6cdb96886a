// Debian's nginx as a caching proxy (CDN edge) in front of r58, with the config the Rust CDN
// test uses (tests/hls_cdn/nginx.conf.in), its prefix and cache in a temp dir, on a free
// loopback port.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, openSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const NGINX = '/usr/sbin/nginx';
const template = resolve(import.meta.dirname, '..', '..', 'hls_cdn', 'nginx.conf.in');

/**
 * Requests of an access log whose lines read `TIME "GET URI HTTP/1.1" STATUS CACHE-STATUS ...`,
 * by cache status (upper case: HIT, MISS, ...), for URIs containing `pathPart`.
 */
export function countCacheStatuses(text, pathPart) {
  const counts = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^\S+ "GET (\S+) [^"]*" (\d+) (\S+)/);
    if (!m || !m[1].includes(pathPart)) continue;
    const status = m[3].toUpperCase();
    counts[status] = (counts[status] ?? 0) + 1;
  }
  return counts;
}

export function nginxInstalled() {
  return spawnSync(NGINX, ['-v']).status === 0;
}

export async function freeTcpPort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export const accepts = (port) => new Promise((ok) => {
  const socket = connect(port, '127.0.0.1');
  socket.once('connect', () => { socket.destroy(); ok(true); });
  socket.once('error', () => ok(false));
});

/**
 * Starts nginx caching for `origin` (`http://127.0.0.1:PORT`); resolves to `{ base, stop() }`.
 * `R58_NGINX_CACHE_LOCK=off` turns proxy_cache_lock off (for the measurement in
 * docs/benchmarks.md: what the lock costs a waiting viewer).
 */
export async function startNginx(origin) {
  const dir = mkdtempSync(join(tmpdir(), 'r58-nginx-'));
  const port = await freeTcpPort();
  const config = readFileSync(template, 'utf8')
    .replaceAll('@DIR@', dir)
    .replaceAll('@LISTEN@', `127.0.0.1:${port}`)
    .replaceAll('@ORIGIN@', new URL(origin).host)
    .replace('proxy_cache_lock on;', `proxy_cache_lock ${process.env.R58_NGINX_CACHE_LOCK === 'off' ? 'off' : 'on'};`);
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, config);
  const stderr = openSync(join(dir, 'stderr.log'), 'w');
  const child = spawn(NGINX, ['-p', dir, '-c', file, '-e', 'stderr'],
    { stdio: ['ignore', 'ignore', stderr] });
  const log = () => ['stderr.log', 'error.log']
    .map((f) => { try { return readFileSync(join(dir, f), 'utf8'); } catch { return ''; } })
    .join('');
  const deadline = Date.now() + 10000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`nginx exited early:\n${log()}`);
    if (Date.now() > deadline) throw new Error(`nginx did not start:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    name: 'nginx',
    base: `http://127.0.0.1:${port}`,
    log,
    accessLog() {
      try { return readFileSync(join(dir, 'access.log'), 'utf8'); } catch { return ''; }
    },
    /** Requests of the access log by cache status (HIT, MISS, ...), for `pathPart` URIs. */
    cacheStatuses(pathPart) {
      let text = '';
      try { text = readFileSync(join(dir, 'access.log'), 'utf8'); } catch { /* none yet */ }
      return countCacheStatuses(text, pathPart);
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
