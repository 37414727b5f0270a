"""Who the client is: the address failed authentications are counted against."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from jobs.conf import trusted_proxies


@lru_cache(maxsize=8)
def _networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None:
    """FORWARDED_ALLOW_IPS as networks (None: ``*``, every peer is trusted)."""
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    if "*" in parts:
        return None
    return tuple(ipaddress.ip_network(part, strict=False) for part in parts)


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip())
    except ValueError:
        return None


def client_address(meta: dict[str, Any]) -> str:
    """The address failed authentications are counted against.

    ``REMOTE_ADDR`` is the peer gunicorn accepted the connection from. When that peer is a
    trusted proxy (``FORWARDED_ALLOW_IPS``, the list gunicorn trusts with
    ``X-Forwarded-Proto``), the client is the last address of ``X-Forwarded-For``: the
    one the proxy appended (ours sets the header to ``$remote_addr``). IPv6 clients are
    counted per /64, the block one subscriber usually holds.
    """
    remote = str(meta.get("REMOTE_ADDR") or "")
    peer = _parse(remote)
    networks = _networks(trusted_proxies())
    if peer is not None and (networks is None or any(peer in net for net in networks if net.version == peer.version)):
        forwarded = _parse(str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")[-1])
        if forwarded is not None:
            peer = forwarded
    if peer is None:
        return remote
    if peer.version == 6:
        return str(ipaddress.ip_network(f"{peer}/64", strict=False))
    return str(peer)
