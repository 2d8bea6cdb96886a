"""An mDNS querier for test_mdns.py, run inside the querier's network namespace:
``python mdns_query.py INTERFACE_ADDRESS HOSTNAME`` resolves ``HOSTNAME.local`` (A records,
asked alone first), then the ``_http._tcp`` and ``_https._tcp`` services of instance
HOSTNAME, with python-zeroconf on that interface only, and prints one JSON line."""

from __future__ import annotations

import json
import sys

from zeroconf import AddressResolverIPv4, IPVersion, Zeroconf


def main(interface: str, hostname: str) -> None:
    out: dict = {}
    zc = Zeroconf(interfaces=[interface], ip_version=IPVersion.V4Only)
    try:
        host = AddressResolverIPv4(f"{hostname}.local.")
        out["a"] = host.parsed_addresses() if host.request(zc, 5000) else []
    finally:
        zc.close()
    zc = Zeroconf(interfaces=[interface], ip_version=IPVersion.V4Only)
    try:
        for kind in ("_http._tcp.local.", "_https._tcp.local."):
            info = zc.get_service_info(kind, f"{hostname}.{kind}", timeout=3000)
            out[kind] = (
                None
                if info is None
                else {
                    "server": info.server,
                    "port": info.port,
                    "addresses": info.parsed_addresses(),
                    "path": (info.properties or {}).get(b"path", b"").decode(),
                }
            )
    finally:
        zc.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
