"""Who is calling: the socket peer, or the address our own proxies vouch for.

Per-address limits (the gateway's rate limits, auth's sign-in throttle) need the caller's
address, and behind a load balancer or the gateway the socket peer is that proxy. Proxies
*append* the address they saw to ``X-Forwarded-For``, so only the right end of the header
is theirs; the left end is whatever the client wrote. :func:`client_address` is the one
rule every service uses to read it.

uvicorn must not rewrite the peer first: its own proxy-header handling believes the
header from 127.0.0.1 by default, which would put a client-chosen address where the peer
belongs before this runs. Every place that starts uvicorn turns it off
(``--no-proxy-headers``, ``proxy_headers=False``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

Network = IPv4Network | IPv6Network


def parse_networks(networks: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "fd00::/8"]`` as networks; a ValueError names a bad one."""
    return tuple(ip_network(network, strict=False) for network in networks)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_networks: Sequence[Network]
) -> str:
    """The address of whoever is calling, for per-address limits.

    ``peer`` is the socket's remote address; ``forwarded_for`` every ``X-Forwarded-For``
    value, joined with commas in the order received. Unless the peer is in
    ``trusted_networks`` (our proxies), it is the answer and the header is ignored.
    Otherwise the header is walked from the right, past our own proxies, to the first hop
    that is not one of them. A hop that is not an address stops the walk at the last
    address a proxy of ours vouched for; when every hop is ours, the leftmost one is the
    caller. (Taking the leftmost hop whatever it is would let anyone pick a fresh address
    per request and walk past the limit.)
    """
    address = peer or "unknown"
    if not forwarded_for or not _in(_parse(address), trusted_networks):
        return address
    for hop in reversed(forwarded_for.split(",")):
        if not hop.strip():
            continue
        parsed = _parse(hop.strip())
        if parsed is None:
            break
        address = str(parsed)
        if not _in(parsed, trusted_networks):
            break
    return address


def _parse(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text)
    except ValueError:
        return None


def _in(address: IPv4Address | IPv6Address | None, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in networks)
