// A real coturn on loopback with the TURN REST shared-secret scheme (see shared TESTING.md).
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TURNSERVER = '/usr/bin/turnserver';

async function freeUdpPort() {
  return new Promise((ok, fail) => {
    const s = createSocket('udp4');
    s.once('error', fail);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/**
 * Starts coturn; resolves once it listens. `stop()` ends it; `restart()` brings it back on the
 * same port with the same secret (a relay that blinked).
 */
export async function startTurn() {
  if (!existsSync(TURNSERVER)) throw new Error(`${TURNSERVER} is missing: apt-get install coturn`);
  const port = await freeUdpPort();
  const secret = randomBytes(16).toString('hex');
  // A relay port range of our own, so a parallel coturn elsewhere on the machine does not clash.
  const minPort = 50000 + Math.floor(Math.random() * 300) * 40;
  const turn = { port, secret, minPort, child: null, log: '' };
  await launch(turn);
  return {
    port,
    secret,
    log: () => turn.log,
    /** REST credentials (RFC-draft "TURN REST API"): user "<expiry>:<name>", HMAC-SHA1 password. */
    iceServers(name = 'guest', ttlSeconds = 600) {
      const username = `${Math.floor(Date.now() / 1000) + ttlSeconds}:${name}`;
      const credential = createHmac('sha1', secret).update(username).digest('base64');
      return [{ urls: [`turn:127.0.0.1:${port}?transport=udp`], username, credential }];
    },
    stop: () => halt(turn),
    async restart() {
      await halt(turn);
      await launch(turn);
    },
  };
}

async function halt(turn) {
  const { child } = turn;
  // A process ended by a signal has signalCode set and exitCode null.
  const ended = () => child.exitCode !== null || child.signalCode !== null;
  if (!child || ended()) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function launch(turn) {
  const { port, secret, minPort } = turn;
  const dir = mkdtempSync(join(tmpdir(), 'r58-coturn-'));
  const args = [
    '-n', '--listening-ip=127.0.0.1', `--listening-port=${port}`, '--relay-ip=127.0.0.1',
    `--min-port=${minPort}`, `--max-port=${minPort + 39}`, '--use-auth-secret',
    `--static-auth-secret=${secret}`, '--realm=r58.test', '--no-tls', '--no-dtls', '--no-cli',
    '--allow-loopback-peers',
    // Relay to loopback only: a browser also offers a host candidate on this machine's own
    // interface address, and the relay must never send there (tests stay on 127.0.0.0/8).
    '--denied-peer-ip=0.0.0.0-126.255.255.255', '--denied-peer-ip=128.0.0.0-255.255.255.255',
    '--log-file=stdout', '--simple-log', `--pidfile=${join(dir, 'turnserver.pid')}`,
  ];
  const child = spawn(TURNSERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  turn.child = child;
  let log = '';
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`coturn did not start:\n${log}`)), 10000);
    const onData = (d) => {
      log += d;
      turn.log += d;
      if (/Total General servers|IPv4. UDP listener opened on/.test(log)) {
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => fail(new Error(`coturn exited (${code}):\n${log}`)));
  });
}
