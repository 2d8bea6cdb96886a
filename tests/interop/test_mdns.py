"""mDNS/DNS-SD on a LAN made of two network namespaces the test creates (needs root): r58 in
one (``[mdns] enabled``, hostname ``studio``), joined by a veth pair to the other, where
python-zeroconf (mdns_query.py) resolves ``studio.local`` to r58's namespace address and finds
``_http._tcp`` and ``_https._tcp`` on r58's ports. No packet touches the machine's own
interfaces: both veth ends are in the namespaces, and r58's HTTP/HTTPS listen on loopback
inside its namespace (the advertised ports are what the test checks, not a connection).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from r58server import server_command  # noqa: E402


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True)


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "'ip' not installed"
    probe = f"r58probe{os.getpid()}"
    made = sh("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    sh("ip", "netns", "del", probe, check=False)
    return None


@pytest.fixture
def lan():
    """Two namespaces, ``box`` (10.59.N.1) and ``laptop`` (10.59.N.2), joined by a veth pair."""
    why = _missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"mDNS test cannot run: {why}")
        pytest.skip(why)
    n = os.getpid() % 200 + 20
    box, laptop = f"r58mb{os.getpid()}", f"r58ml{os.getpid()}"
    box_if, laptop_if = f"r58mb{n}", f"r58ml{n}"
    box_ip, laptop_ip = f"10.59.{n}.1", f"10.59.{n}.2"
    sh("ip", "netns", "add", box)
    sh("ip", "netns", "add", laptop)
    try:
        sh("ip", "link", "add", box_if, "netns", box, "type", "veth", "peer", "name", laptop_if, "netns", laptop)
        for ns, dev, ip in ((box, box_if, box_ip), (laptop, laptop_if, laptop_ip)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up", "multicast", "on")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)
        yield {"box": box, "laptop": laptop, "box_ip": box_ip, "laptop_ip": laptop_ip}
    finally:
        sh("ip", "netns", "del", box, check=False)
        sh("ip", "netns", "del", laptop, check=False)


def test_studio_local_resolves_to_the_box_and_its_services_are_found(lan, tmp_path: Path) -> None:
    config = tmp_path / "r58.toml"
    config.write_text(
        '[mdns]\nenabled = true\nhostname = "studio"\n'
        f'[tls]\nauto = true\nhttps_listen = "127.0.0.1:18443"\ndir = "{tmp_path / "tls"}"\n'
    )
    log = tmp_path / "server.log"
    # Fixed ports are safe here: the box namespace is this test's own, nothing else binds in it.
    cmd = [
        "ip", "netns", "exec", lan["box"], *server_command(),
        "--config", str(config),
        "--listen", "127.0.0.1:18000",
        "--webrtc-udp", "127.0.0.1:18189",
        "--public-ip", "127.0.0.1",
        "--test-cameras", "0",
    ]  # fmt: skip
    env = dict(os.environ, R58_LOG_LEVEL="info,mdns_sd=warn")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while log.read_text(errors="replace").count("mDNS advertising") < 2:
            assert proc.poll() is None, f"r58 exited:\n{log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"no mDNS:\n{log.read_text(errors='replace')}"
            time.sleep(0.1)
        query = subprocess.run(
            ["ip", "netns", "exec", lan["laptop"], sys.executable, str(HERE / "mdns_query.py"),
             lan["laptop_ip"], "studio"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert query.returncode == 0, query.stderr
        found = json.loads(query.stdout.strip().splitlines()[-1])
        print(f"querier in the other namespace found: {found}")
        assert found["a"] == [lan["box_ip"]], found
        http = found["_http._tcp.local."]
        assert http and http["port"] == 18000 and http["server"] == "studio.local.", found
        assert lan["box_ip"] in http["addresses"] and http["path"] == "/", found
        https = found["_https._tcp.local."]
        assert https and https["port"] == 18443, found
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
