// Debian's Varnish as the CDN edge in front of r58, with the VCL the Rust CDN test uses
// (tests/hls_cdn/varnish.vcl.in): varnishd in the foreground on a free loopback port, its
// working dir (-n) in a temp dir, no system service, and varnishncsa writing the access log
// in the same line format as lib/nginx.mjs's (`TIME "REQUEST" STATUS HANDLING MICROSECONDS`,
// the handling being hit, miss, pass or synth; requests woken from the waiting list are hits).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freeTcpPort, accepts, countCacheStatuses } from './nginx.mjs';

const VARNISHD = '/usr/sbin/varnishd';
const VARNISHNCSA = '/usr/bin/varnishncsa';
const template = resolve(import.meta.dirname, '..', '..', 'hls_cdn', 'varnish.vcl.in');
export const NCSA_FORMAT = '%{%s}t "%m %U%q %H" %s %{Varnish:handling}x %D';

export function varnishInstalled() {
  return spawnSync(VARNISHD, ['-V']).status === 0 && spawnSync(VARNISHNCSA, ['-V']).status === 0;
}

/** Starts Varnish caching for `origin` (`http://127.0.0.1:PORT`); resolves to `{ base, stop() }`. */
export async function startVarnish(origin) {
  const dir = mkdtempSync(join(tmpdir(), 'r58-varnish-'));
  const port = await freeTcpPort();
  const { hostname, port: originPort } = new URL(origin);
  const vcl = readFileSync(template, 'utf8')
    .replaceAll('@HOST@', hostname)
    .replaceAll('@PORT@', originPort);
  const file = join(dir, 'r58.vcl');
  writeFileSync(file, vcl);
  const workdir = join(dir, 'varnish');
  const stderr = openSync(join(dir, 'varnishd.log'), 'w');
  // -j none: no privilege separation (the test's user owns the temp dir); -T none: no
  // management port; default_grace=0: nothing stale beyond what r58's Cache-Control allows.
  const child = spawn(VARNISHD, ['-F', '-j', 'none', '-T', 'none', '-n', workdir,
    '-a', `127.0.0.1:${port}`, '-f', file, '-s', 'malloc,64m', '-p', 'default_grace=0'],
  { stdio: ['ignore', stderr, stderr] });
  const log = () => { try { return readFileSync(join(dir, 'varnishd.log'), 'utf8'); } catch { return ''; } };
  const deadline = Date.now() + 15000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`varnishd exited early:\n${log()}`);
    if (Date.now() > deadline) throw new Error(`varnishd did not start:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const accessFile = join(dir, 'access.log');
  const ncsa = spawn(VARNISHNCSA, ['-n', workdir, '-F', NCSA_FORMAT, '-w', accessFile],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  // varnishncsa attaches to the shared log a moment after it starts; a request it sees is
  // logged. Wait until a probe of our own shows up.
  const probe = `/varnish-probe-${process.pid}`;
  const accessLog = () => { try { return readFileSync(accessFile, 'utf8'); } catch { return ''; } };
  while (!accessLog().includes(probe)) {
    if (ncsa.exitCode !== null) throw new Error(`varnishncsa exited with ${ncsa.exitCode}`);
    if (Date.now() > deadline) throw new Error('varnishncsa logged nothing');
    await fetch(`http://127.0.0.1:${port}${probe}`).then((r) => r.arrayBuffer()).catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
  }
  const exited = (p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
  return {
    name: 'Varnish',
    base: `http://127.0.0.1:${port}`,
    log,
    accessLog,
    /** Requests of the access log by handling (HIT, MISS, PASS, ...), for `pathPart` URIs. */
    cacheStatuses: (pathPart) => countCacheStatuses(accessLog(), pathPart),
    async stop() {
      ncsa.kill('SIGTERM');
      child.kill('SIGTERM');
      await Promise.all([exited(ncsa), exited(child)]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
