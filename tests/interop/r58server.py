"""Starting and stopping the r58 binary for the interop tests: one launcher for every module.

``launch(extra_args, log, env, host)`` runs ``$R58_BIN`` (default ``target/debug/r58``) on free
ports of ``host`` (loopback unless a test gives another address, e.g. a veth end), waits for ``GET /healthz``, yields a :class:`Server`, and stops it with SIGTERM
(SIGKILL after 5 s). Test cameras are off unless ``extra_args`` turn them on.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent


def free_port(kind: int | tuple[int, ...], host: str = "127.0.0.1") -> int:
    """A port free for every socket kind given (so TCP and UDP can share a number)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    while True:
        with socket.socket(socket.AF_INET, kinds[0]) as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
            try:
                for other in kinds[1:]:
                    with socket.socket(socket.AF_INET, other) as s:
                        s.bind((host, port))
            except OSError:
                continue
            return port


@dataclass
class Server:
    base: str
    proc: subprocess.Popen
    log: Path
    udp_port: int = 0

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "(no server log)"

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
        """One HTTP request to the server (a JSON body when given): its status and body text,
        error statuses included."""
        data, headers = None, {}
        if body is not None:
            data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
        request = urllib.request.Request(f"{self.base}{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


def server_command() -> list[str]:
    """``$R58_BIN`` split into arguments, its program made absolute; fails if it is missing."""
    cmd = shlex.split(os.environ.get("R58_BIN", "target/debug/r58"))
    exe = Path(cmd[0])
    if not exe.is_absolute() and (REPO / exe).exists():
        cmd[0] = str(REPO / exe)
    if not Path(cmd[0]).exists():
        pytest.fail(f"server binary {cmd[0]} not found: build it (cargo build) or set R58_BIN")
    return cmd


@contextmanager
def launch(
    extra_args: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    public_ip: str | None = None,
) -> Iterator[Server]:
    """Runs the server with ``extra_args`` (plus its ports on ``host``) until the block ends.

    ``public_ip`` is the address its host candidates name (``host`` unless given)."""
    cmd = server_command()
    http_port = free_port(socket.SOCK_STREAM, host)
    udp_port = free_port(socket.SOCK_DGRAM, host)
    cmd += [
        "--listen", f"{host}:{http_port}",
        "--webrtc-udp", f"{host}:{udp_port}",
        "--public-ip", public_ip or host,
        *extra_args,
    ]  # fmt: skip
    full_env = dict(os.environ)
    full_env.setdefault("R58_LOG_LEVEL", "info")
    # Test cameras only where a module asks (two 720p encoders would compete with the tests for
    # CPU). An environment variable, not a flag, so a module's --test-cameras wins.
    full_env["R58_TEST_CAMERAS"] = "0"
    full_env.update(env or {})
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=full_env)
    srv = Server(f"http://{host}:{http_port}", proc, log, udp_port)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{srv.log_tail()}")
        try:
            with urllib.request.urlopen(f"{srv.base}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"GET /healthz never answered 200 within 30 s:\n{srv.log_tail()}")
        time.sleep(0.1)
    print(f"server: {' '.join(cmd)} (log {log})")
    try:
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
