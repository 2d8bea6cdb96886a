"""A recorder behind NAT, built from network namespaces, for test_nat_relay.py.

Five namespaces, all made (and removed) by :func:`build`; no interface of the machine is used,
every veth has both ends in namespaces made here:

    lan 10.58.1.2 ── 10.58.1.1 box 10.58.2.2 ── 10.58.2.1 router 203.0.113.2 ── 203.0.113.1 internet 198.51.100.1 ── 198.51.100.2 remote
                      (r58)                      (NAT: masquerade)                 (coturn, tunnel edge)

- **box**: r58. Default route via the router.
- **router**: masquerades what the box sends out (``oifname wan masquerade``); its forward
  chain lets through replies (``ct state established,related``) and the box's own outbound
  traffic, and drops everything else, as does its input chain for anything new from the WAN.
  Every drop is counted (``nft list ruleset`` in :meth:`Topology.describe`). A port forward
  (:meth:`Topology.port_forward`) exists only while a test asks for one.
- **internet**: routes between the router's WAN and the remote side; its default route goes
  to the router, so what it sends to the box's private addresses is dropped by the NAT's
  firewall, silently (as the real internet drops it); coturn listens on 203.0.113.1 and relays
  from that address; the tunnel edge (:func:`start_forwarder`) listens there too.
- **remote**: guests and remote viewers (default route via the internet namespace).
- **lan**: a viewer on the box's LAN (default route via the box, which does not forward).

The HTTP tunnel: :func:`start_forwarder` runs ``python nat_topology.py forward ...``, a process
that opens its listening socket in the internet namespace and, for each client, a TCP
connection to r58 on 127.0.0.1 inside the box namespace, like cloudflared on the box connecting to r58 on loopback.
It crosses namespaces with file descriptors (``setns(2)`` in one thread: a socket stays in the
namespace it was created in), not with packets: no port is opened on the NAT.

From the command line (for the Chromium test, tests/e2e/nat_relay.test.mjs), run as root:

    python3 nat_topology.py check          # {"missing": null} or {"missing": "why not here"}
    python3 nat_topology.py up [--control] # builds it, starts coturn and the tunnel, prints one
                                           # JSON line (namespaces, addresses, secret, URLs),
                                           # holds it until stdin closes or SIGTERM, removes it
    python3 nat_topology.py counters TAG   # the router's nftables counters as JSON
    python3 nat_topology.py describe TAG   # every namespace's addresses, routes and rules
    python3 nat_topology.py down TAG       # removes a topology whose holder is gone

``up`` holds the topology in its own process: the namespace names carry its pid (so
:func:`remove_stale` leaves them alone while it lives), and coturn and the tunnel die with it.
``--control`` adds a second forwarder, 127.0.0.1:PORT in the caller's namespace -> r58 on
127.0.0.1 in the box, so the harness can read /healthz and /metrics without entering a
namespace (loopback only; the browsers never use it).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("box", "router", "internet", "remote", "lan")

LAN_BOX, LAN_CLIENT = "10.58.1.1", "10.58.1.2"
BOX_WAN, ROUTER_LAN = "10.58.2.2", "10.58.2.1"
ROUTER_WAN, INTERNET_WAN = "203.0.113.2", "203.0.113.1"
INTERNET_REMOTE, REMOTE = "198.51.100.1", "198.51.100.2"
# Services on the internet side.
TURN_IP, TURN_PORT = INTERNET_WAN, 3478
TURN_RELAY_PORTS = range(49160, 49200)
EDGE_IP, EDGE_PORT = INTERNET_WAN, 8080
# r58 in the box (a fresh namespace: the default ports are free).
R58_HTTP_PORT, R58_UDP_PORT = 8000, 8189

NFT_TABLE = "r58nat"
CLONE_NEWNET = 0x40000000


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def missing() -> str | None:
    """Why the topology cannot be built here, or None."""
    if os.geteuid() != 0:
        return "not root (network namespaces need CAP_NET_ADMIN)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"'{tool}' not installed (Debian: iproute2, nftables)"
    probe = f"r58probe{os.getpid()}"
    made = sh("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        nft = sh("ip", "netns", "exec", probe, "nft", "list", "ruleset", check=False)
        if nft.returncode != 0:
            return f"nftables does not work in a namespace: {nft.stderr.strip()}"
    finally:
        sh("ip", "netns", "del", probe, check=False)
    return None


_libc = ctypes.CDLL(None, use_errno=True)


def setns(name_or_path: str) -> None:
    """Moves the calling thread into a network namespace (a name under /run/netns, or a path)."""
    path = name_or_path if "/" in name_or_path else f"/run/netns/{name_or_path}"
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


@contextmanager
def in_netns(name: str):
    """Runs the block with this thread in namespace ``name``; sockets made there stay there."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        setns(name)
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the original namespace")
    finally:
        os.close(home)


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the test process dies (even by SIGKILL), so a
    crashed run leaves no coturn or r58 behind (kept across exec by `ip netns exec`)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Topology:
    tag: str
    ns: dict[str, str]  # role -> namespace name
    workdir: Path
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def exec(self, role: str, *args: str) -> list[str]:
        """The command line running ``args`` inside ``role``'s namespace."""
        return ["ip", "netns", "exec", self.ns[role], *args]

    def run(self, role: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh(*self.exec(role, *args), check=check)

    def spawn(
        self, role: str, name: str, args: list[str], log: Path, stdout=None, **kw
    ) -> subprocess.Popen:
        """A background process in ``role``'s namespace, stopped by :meth:`stop_all`; its
        stderr (and its stdout unless given) goes to ``log``."""
        out = open(log, "wb")
        proc = subprocess.Popen(
            self.exec(role, *args),
            stdout=out if stdout is None else stdout,
            stderr=out,
            preexec_fn=_die_with_parent,
            **kw,
        )
        out.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 5) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def stop_all(self) -> None:
        for _, proc in reversed(list(self.procs)):
            self.stop(proc)

    def nft_counters(self) -> dict[str, int]:
        """Packets counted by each commented rule of the router's table."""
        text = self.run("router", "nft", "list", "table", "inet", NFT_TABLE).stdout
        out = {}
        for line in text.splitlines():
            if "counter packets" in line and 'comment "' in line:
                n = int(line.split("counter packets ")[1].split()[0])
                out[line.split('comment "')[1].split('"')[0]] = n
        return out

    @contextmanager
    def port_forward(self, port: int, proto: str = "udp"):
        """A port forward on the router (its WAN address:port -> the box), for the block only:
        what an operator does today to let a relay reach r58 (docs/turn.md)."""
        table = f"{NFT_TABLE}fwd"
        rules = self.workdir / f"forward-{self.tag}.nft"
        rules.write_text(
            f"table ip {table} {{\n"
            "    chain prerouting {\n"
            "        type nat hook prerouting priority dstnat; policy accept;\n"
            f'        iifname "wan" ip daddr {ROUTER_WAN} {proto} dport {port} counter'
            f' dnat to {BOX_WAN}:{port} comment "port forward"\n'
            "    }\n}\n"
        )
        self.run("router", "nft", "-f", str(rules))
        try:
            yield
        finally:
            self.run("router", "nft", "delete", "table", "ip", table, check=False)

    def http(self, role: str, url: str, timeout: float = 5) -> tuple[int, bytes]:
        """GET ``url`` from ``role``'s namespace: (status, body); status 0 when unreachable."""
        import urllib.error
        import urllib.request

        try:
            with in_netns(self.ns[role]):  # urlopen makes its socket in this thread, here
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""

    def describe(self) -> str:
        """Every namespace's addresses, routes and nftables rules, and the processes in them."""
        parts = [f"topology {self.tag} (work dir {self.workdir})"]
        for role in ROLES:
            name = self.ns[role]
            parts.append(f"--- {role}: netns {name}")
            for cmd in (
                ("ip", "-br", "addr"),
                ("ip", "route"),
                ("sysctl", "-n", "net.ipv4.ip_forward"),
                ("nft", "list", "ruleset"),
            ):
                r = self.run(role, *cmd, check=False)
                text = (r.stdout + r.stderr).strip()
                parts.append(f"$ {' '.join(cmd)}\n{text}" if text else f"$ {' '.join(cmd)}")
        for name, proc in self.procs:
            state = "running" if proc.poll() is None else f"exited {proc.returncode}"
            cmd = re.sub(r"(static-auth-secret=)\S+", r"\1***", shlex.join(proc.args))
            parts.append(f"process {name} pid {proc.pid}: {state}: {cmd}")
        return "\n".join(parts)


ROUTER_RULES = f"""
table inet {NFT_TABLE} {{
    chain forward {{
        type filter hook forward priority 0; policy drop;
        ct state established,related counter accept comment "replies"
        iifname "lan" oifname "wan" counter accept comment "box outbound"
        ct status dnat counter accept comment "port forwards"
        counter drop comment "forward dropped"
    }}
    chain input {{
        type filter hook input priority 0; policy accept;
        iifname "wan" ct state established,related counter accept comment "wan replies"
        iifname "wan" ip saddr {TURN_IP} udp sport {TURN_RELAY_PORTS.start}-{TURN_RELAY_PORTS.stop - 1} counter drop comment "relay to box dropped"
        iifname "wan" counter drop comment "wan unasked dropped"
    }}
    chain postrouting {{
        type nat hook postrouting priority 100; policy accept;
        oifname "wan" counter masquerade comment "masquerade"
    }}
}}
"""


def _veth(topo: Topology, a: str, a_if: str, a_ip: str, b: str, b_if: str, b_ip: str) -> None:
    """A veth pair created directly inside the two namespaces (no name in the machine's own)."""
    sh("ip", "link", "add", "name", a_if, "netns", topo.ns[a], "type", "veth",
       "peer", "name", b_if, "netns", topo.ns[b])  # fmt: skip
    for role, ifname, ip in ((a, a_if, a_ip), (b, b_if, b_ip)):
        topo.run(role, "ip", "addr", "add", f"{ip}/24", "dev", ifname)
        topo.run(role, "ip", "link", "set", ifname, "up")


def remove_stale() -> list[str]:
    """Deletes the namespaces of earlier runs whose process is gone (killed before teardown);
    namespaces of runs still alive are left alone. Returns the names removed."""
    removed = []
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        m = re.match(r"(r58nat(\d+)-[0-9a-f]{4}-(\w+))\b", line)
        if m and m.group(3) in ROLES and not Path(f"/proc/{m.group(2)}").exists():
            sh("ip", "netns", "del", m.group(1), check=False)
            removed.append(m.group(1))
    return removed


def build(workdir: Path) -> Topology:
    """Creates the namespaces, links, routes and NAT rules; :func:`destroy` undoes it all.
    Names carry this process's pid and a random tag, so they never clash with another run."""
    stale = remove_stale()
    if stale:
        print(f"removed namespaces left by dead runs: {stale}")
    tag = f"{os.getpid()}-{secrets.token_hex(2)}"
    topo = Topology(tag, {role: f"r58nat{tag}-{role}" for role in ROLES}, workdir)
    try:
        for role in ROLES:
            sh("ip", "netns", "add", topo.ns[role])
            topo.run(role, "ip", "link", "set", "lo", "up")
        _veth(topo, "lan", "box", LAN_CLIENT, "box", "lan", LAN_BOX)
        _veth(topo, "box", "wan", BOX_WAN, "router", "lan", ROUTER_LAN)
        _veth(topo, "router", "wan", ROUTER_WAN, "internet", "router", INTERNET_WAN)
        _veth(topo, "internet", "remote", INTERNET_REMOTE, "remote", "internet", REMOTE)
        topo.run("lan", "ip", "route", "add", "default", "via", LAN_BOX)
        topo.run("box", "ip", "route", "add", "default", "via", ROUTER_LAN)
        topo.run("router", "ip", "route", "add", "default", "via", INTERNET_WAN)
        topo.run("remote", "ip", "route", "add", "default", "via", INTERNET_REMOTE)
        # The internet namespace sends everything else (the box's private 10.58/16 addresses)
        # to the router, whose firewall drops it: packets to private addresses vanish silently,
        # as on the real internet. Without a route, sendto() would fail at once with
        # ENETUNREACH, and coturn then relays nothing more for that allocation, to any peer.
        topo.run("internet", "ip", "route", "add", "default", "via", ROUTER_WAN)
        for role, on in (("router", 1), ("internet", 1), ("box", 0), ("lan", 0), ("remote", 0)):
            topo.run(role, "sysctl", "-q", "-w", f"net.ipv4.ip_forward={on}")
        rules = workdir / f"router-{tag}.nft"
        rules.write_text(ROUTER_RULES)
        topo.run("router", "nft", "-f", str(rules))
    except BaseException:
        destroy(topo)
        raise
    return topo


def destroy(topo: Topology) -> None:
    """Stops the processes started in the namespaces, then deletes the namespaces (and with
    them their veths and rules). Never raises."""
    try:
        topo.stop_all()
    except Exception as e:  # noqa: BLE001 - teardown goes on whatever happens
        print(f"teardown: stopping processes: {e!r}", file=sys.stderr)
    for role in ROLES:
        sh("ip", "netns", "del", topo.ns[role], check=False)


# --- coturn in the internet namespace -------------------------------------------------------


@dataclass
class Coturn:
    proc: subprocess.Popen
    secret: str
    log: Path
    cmd: list[str]

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "(no coturn log)"


def start_coturn(topo: Topology, secret: str) -> Coturn:
    exe = shutil.which("turnserver")
    if exe is None:
        raise FileNotFoundError("turnserver (Debian: coturn)")
    work = topo.workdir / "coturn"
    work.mkdir(exist_ok=True)
    cmd = [
        exe, "-n",
        f"--listening-ip={TURN_IP}", f"--listening-port={TURN_PORT}", f"--relay-ip={TURN_IP}",
        f"--min-port={TURN_RELAY_PORTS.start}", f"--max-port={TURN_RELAY_PORTS.stop - 1}",
        "--use-auth-secret", f"--static-auth-secret={secret}", "--realm=r58.test",
        "--no-tls", "--no-dtls", "--no-cli", "--fingerprint",
        f"--userdb={work / 'turndb'}", f"--pidfile={work / 'turnserver.pid'}",
        "--log-file=stdout", "--simple-log", "--verbose",
    ]  # fmt: skip
    log = work / "turnserver.log"
    proc = topo.spawn("internet", "coturn", cmd, log)
    srv = Coturn(proc, secret, log, cmd)
    deadline = time.monotonic() + 15
    while stun_mapped_address(topo, "internet", TURN_IP, TURN_PORT) is None:
        if proc.poll() is not None:
            raise RuntimeError(f"turnserver exited {proc.returncode}:\n{srv.log_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"turnserver silent for 15 s:\n{srv.log_text()[-3000:]}")
        time.sleep(0.1)
    return srv


def stun_mapped_address(
    topo: Topology, role: str, ip: str, port: int, timeout: float = 0.3
) -> tuple[str, int] | None:
    """A STUN Binding request from ``role``'s namespace: the XOR-MAPPED-ADDRESS seen, or None."""
    import struct

    txid = os.urandom(12)
    request = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, txid)
    with in_netns(topo.ns[role]):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        s.settimeout(timeout)
        try:
            s.sendto(request, (ip, port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return None
    if len(data) < 20 or data[:2] != b"\x01\x01" or data[8:20] != txid:
        return None
    pos = 20
    while pos + 4 <= len(data):
        kind, length = struct.unpack("!HH", data[pos : pos + 4])
        value = data[pos + 4 : pos + 4 + length]
        if kind == 0x0020 and length >= 8:  # XOR-MAPPED-ADDRESS, IPv4
            xport = struct.unpack("!H", value[2:4])[0] ^ 0x2112
            xip = struct.unpack("!I", value[4:8])[0] ^ 0x2112A442
            return socket.inet_ntoa(struct.pack("!I", xip)), xport
        pos += 4 + (length + 3) // 4 * 4
    return ("?", 0)


# --- r58 in the box ---------------------------------------------------------------------------


@dataclass
class R58:
    proc: subprocess.Popen
    log: Path
    config: Path
    cmd: list[str]
    lan_base: str  # from the LAN: http://10.58.1.1:8000

    def log_text(self) -> str:
        try:
            return re.sub(r"\x1b\[[0-9;]*m", "", self.log.read_text(errors="replace"))
        except OSError:
            return "(no r58 log)"

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


CAMERA = "[test_cameras]\ncount = 1\nwidth = 640\nheight = 360\nfps = 30\nbitrate = 1000000\n"


def r58_config(workdir: Path, secret: str, server_relay: str | None) -> Path:
    """The config file: one small test camera and the coturn provider of the internet side;
    ``server_relay`` is left out when None."""
    (workdir / "turn.secret").write_text(secret + "\n")
    (workdir / "turn.secret").chmod(0o600)
    relay = f'server_relay = "{server_relay}"\n' if server_relay is not None else ""
    path = workdir / "r58.toml"
    path.write_text(
        CAMERA + "\n[turn]\n"
        'provider = "coturn"\n'
        f'urls = ["turn:{TURN_IP}:{TURN_PORT}?transport=udp"]\n'
        'secret_file = "turn.secret"\n'
        "ttl_secs = 600\n" + relay
    )
    return path


def spawn_r58(topo: Topology, workdir: Path, config: Path, extra: list[str] = ()) -> R58:
    """r58 in the box: HTTP on 0.0.0.0:8000, media on 0.0.0.0:8189 (not waited for)."""
    from r58server import REPO, server_command

    cmd = server_command() + [
        "--config", str(config),
        "--listen", f"0.0.0.0:{R58_HTTP_PORT}",
        "--webrtc-udp", f"0.0.0.0:{R58_UDP_PORT}",
        *extra,
    ]  # fmt: skip
    env = dict(os.environ)
    # The engine's debug lines name each session's ICE path (the address media comes from).
    env.setdefault("R58_LOG_LEVEL", "info,sfu::engine=debug")
    env.pop("R58_TEST_CAMERAS", None)
    log = workdir / "r58.log"
    proc = topo.spawn("box", "r58", cmd, log, cwd=REPO, env=env)
    return R58(proc, log, config, cmd, f"http://{LAN_BOX}:{R58_HTTP_PORT}")


def wait_ready(topo: Topology, r58: R58, timeout: float = 30) -> None:
    """Until /healthz answers 200 (from the LAN) and cam0 is online."""
    import json

    deadline = time.monotonic() + timeout
    while True:
        if r58.proc.poll() is not None:
            raise RuntimeError(f"r58 exited {r58.proc.returncode}:\n{r58.log_tail()}")
        status, _ = topo.http("lan", f"{r58.lan_base}/healthz", timeout=1)
        if status == 200:
            status, body = topo.http("lan", f"{r58.lan_base}/api/streams", timeout=1)
            if status == 200 and any(s["name"] == "cam0" and s["online"] for s in json.loads(body)):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"r58 not ready within {timeout} s:\n{r58.log_tail()}")
        time.sleep(0.1)


# --- the tunnel forwarder --------------------------------------------------------------------


@dataclass
class Forwarder:
    proc: subprocess.Popen
    log: Path
    base: str  # the URL remote clients use

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "(no forwarder log)"


# The caller's own namespace, for a forwarder's listening side (setns to it is a no-op).
OWN_NS = "/proc/self/ns/net"


def start_forwarder(
    topo: Topology,
    target_port: int,
    listen_ns: str | None = None,
    listen: str = f"{EDGE_IP}:{EDGE_PORT}",
    name: str = "forwarder",
) -> Forwarder:
    """The tunnel: EDGE_IP:EDGE_PORT in the internet namespace -> 127.0.0.1:target_port in the
    box. Runs in the machine's own namespace and moves its threads with setns(2).
    ``listen_ns`` / ``listen`` put the listening side elsewhere (port 0: any free port; the
    URL names the port bound)."""
    log = topo.workdir / f"{name}.log"
    args = [
        sys.executable, str(Path(__file__).resolve()), "forward",
        listen_ns or topo.ns["internet"], listen, topo.ns["box"], f"127.0.0.1:{target_port}",
    ]  # fmt: skip
    out = open(log, "wb")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=out, preexec_fn=_die_with_parent)
    out.close()
    topo.procs.append((name, proc))
    line = proc.stdout.readline().decode().strip()  # "LISTENING HOST:PORT ..." once bound
    if not line.startswith("LISTENING"):
        proc.wait(5)
        raise RuntimeError(f"forwarder did not start ({line!r}):\n{log.read_text()}")
    return Forwarder(proc, log, f"http://{line.split()[1]}")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    total = 0
    try:
        while data := await reader.read(65536):
            total += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            writer.close()
    return total


async def _forward(listen_ns: str, listen: str, connect_ns: str, connect: str) -> None:
    lhost, lport = listen.rsplit(":", 1)
    chost, cport = connect.rsplit(":", 1)
    with in_netns(listen_ns):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((lhost, int(lport)))
    lsock.listen(64)
    lsock.setblocking(False)
    count = 0

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        n, peer = count, writer.get_extra_info("peername")
        with in_netns(connect_ns):  # the outbound socket is made in the box
            out = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        out.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(out, (chost, int(cport)))
            ureader, uwriter = await asyncio.open_connection(sock=out)
        except OSError as e:
            print(f"#{n} from {peer}: connect {connect} in {connect_ns}: {e}", file=sys.stderr)
            out.close()
            writer.close()
            return
        up, down = await asyncio.gather(_pipe(reader, uwriter), _pipe(ureader, writer))
        print(f"#{n} from {peer}: {up} bytes up, {down} down", file=sys.stderr, flush=True)
        writer.close()
        uwriter.close()

    server = await asyncio.start_server(client, sock=lsock)
    bound = "%s:%d" % lsock.getsockname()[:2]
    print(f"LISTENING {bound} in {listen_ns} -> {connect} in {connect_ns}", flush=True)
    async with server:
        await server.serve_forever()


def _from_tag(tag: str, workdir: Path | None = None) -> Topology:
    """The Topology of a run named ``tag`` (no processes: for inspecting or removing it)."""
    if not re.fullmatch(r"\d+-[0-9a-f]{4}", tag):
        raise SystemExit(f"not a topology tag: {tag!r} (like 12345-abcd)")
    return Topology(tag, {role: f"r58nat{tag}-{role}" for role in ROLES}, workdir or Path("/tmp"))


def _up(argv: list[str]) -> int:
    """Builds the topology with coturn and the tunnel, prints it as one JSON line, and holds it
    until stdin closes (the caller went away, whatever way) or SIGTERM / SIGINT."""
    import json
    import tempfile

    control = "--control" in argv
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    workdir = Path(tempfile.mkdtemp(prefix="r58-nat-"))
    topo = build(workdir)
    try:
        coturn = start_coturn(topo, secrets.token_hex(16))
        tunnel = start_forwarder(topo, R58_HTTP_PORT)
        ctl = (
            start_forwarder(topo, R58_HTTP_PORT, OWN_NS, "127.0.0.1:0", "control")
            if control
            else None
        )
        info = {
            "tag": topo.tag,
            "ns": topo.ns,
            "workdir": str(workdir),
            "addresses": {
                "lan_box": LAN_BOX, "lan_client": LAN_CLIENT, "box_wan": BOX_WAN,
                "router_lan": ROUTER_LAN, "router_wan": ROUTER_WAN, "internet_wan": INTERNET_WAN,
                "remote": REMOTE,
            },
            "turn": {
                "ip": TURN_IP, "port": TURN_PORT, "secret": coturn.secret,
                "relay_ports": [TURN_RELAY_PORTS.start, TURN_RELAY_PORTS.stop - 1],
                "log": str(coturn.log),
            },
            "r58": {"http_port": R58_HTTP_PORT, "udp_port": R58_UDP_PORT,
                    "lan_base": f"http://{LAN_BOX}:{R58_HTTP_PORT}"},
            "tunnel": {"base": tunnel.base, "log": str(tunnel.log)},
            "control": ctl.base if ctl else None,
            "pid": os.getpid(),
        }  # fmt: skip
        print(json.dumps(info), flush=True)
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        destroy(topo)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main(argv: list[str]) -> int:
    import json

    cmd = argv[1] if len(argv) > 1 else ""
    if len(argv) == 6 and cmd == "forward":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        asyncio.run(_forward(*argv[2:6]))
        return 0
    if cmd == "check" and len(argv) == 2:
        why = missing()
        if why is None and shutil.which("turnserver") is None:
            why = "turnserver not found (apt-get install coturn, or run .ci/run)"
        print(json.dumps({"missing": why}))
        return 0
    if cmd == "up":
        return _up(argv[2:])
    if cmd == "counters" and len(argv) == 3:
        print(json.dumps(_from_tag(argv[2]).nft_counters()))
        return 0
    if cmd == "describe" and len(argv) == 3:
        print(_from_tag(argv[2]).describe())
        return 0
    if cmd == "down" and len(argv) == 3:
        topo = _from_tag(argv[2])
        for role in ROLES:
            sh("ip", "netns", "del", topo.ns[role], check=False)
        return 0
    print(
        "usage: nat_topology.py check | up [--control] | counters TAG | describe TAG | down TAG\n"
        "       nat_topology.py forward LISTEN_NS HOST:PORT CONNECT_NS HOST:PORT",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
