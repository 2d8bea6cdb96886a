// A network namespace of the test's own in which a browser and r58 run together: loopback, and
// a veth pair whose two ends both stay inside it, one with the address the browser and r58 use
// and a default route through the other. Firefox finds the address to gather ICE candidates on
// through the default route ("failed to find default addresses" without one), and everything
// either side sends stays inside the namespace: nothing reaches this machine's interfaces.
import { execFileSync } from 'node:child_process';

const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });

/** Why a namespace cannot be made here, or null. */
export function netnsMissing() {
  if (process.getuid?.() !== 0) return 'not root (network namespaces need CAP_NET_ADMIN)';
  try {
    ip('-V');
  } catch {
    return 'the ip command (iproute2) is missing';
  }
  return null;
}

/** Makes the namespace; `remove()` deletes it (and the veth pair with it). */
export function makeNamespace(tag) {
  const name = `r58${tag}-${process.pid}`;
  const subnet = `10.251.${process.pid % 250}`;
  const address = `${subnet}.2`;
  try { ip('netns', 'del', name); } catch { /* none left over */ }
  ip('netns', 'add', name);
  try {
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('-n', name, 'link', 'add', 'br0', 'type', 'veth', 'peer', 'name', 'gw0');
    ip('-n', name, 'addr', 'add', `${address}/24`, 'dev', 'br0');
    ip('-n', name, 'addr', 'add', `${subnet}.1/24`, 'dev', 'gw0');
    ip('-n', name, 'link', 'set', 'br0', 'up');
    ip('-n', name, 'link', 'set', 'gw0', 'up');
    ip('-n', name, 'route', 'add', 'default', 'via', `${subnet}.1`, 'dev', 'br0');
  } catch (e) {
    try { ip('netns', 'del', name); } catch { /* already gone */ }
    throw new Error(`cannot set up namespace ${name}: ${e.stderr?.toString() ?? e.message}`);
  }
  return {
    name,
    address,
    remove() {
      try { ip('netns', 'del', name); } catch { /* already gone */ }
    },
  };
}
