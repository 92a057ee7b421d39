"""The client's address: the TCP peer, or what trusted proxies say in X-Forwarded-For.

Each proxy appends the address it received the request from, so the list is read from the
right: while the hop we know is one of our proxies, the entry it appended is believed; the
first address that is not a trusted proxy is the client. Anything left of it was written by
the client and is ignored (a client can put any address there)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


# A client sends the same X-Forwarded-For on every request: its answer is remembered (parsing
# addresses with `ipaddress` was ~1 % of a cached read). Only short headers: a client choosing
# long ones must not fill memory.
_REMEMBERED_HEADER_CHARS = 256


def client_address(peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...]) -> str | None:
    if forwarded_for is not None and len(forwarded_for) > _REMEMBERED_HEADER_CHARS:
        return _client_address(peer, forwarded_for, proxies)
    return _remembered(peer, forwarded_for, proxies)


def _client_address(peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...]) -> str | None:
    if peer is None:
        return None
    address = peer
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    while hops and _trusted(address, proxies):
        candidate = hops.pop()
        try:
            address = str(ipaddress.ip_address(candidate))
        except ValueError:
            break  # garbage from a proxy we trust: keep the last address we could believe
    return address


_remembered = functools.lru_cache(maxsize=4096)(_client_address)
