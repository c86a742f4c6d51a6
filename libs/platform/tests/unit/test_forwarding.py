"""The caller's address: the peer, or the first hop our own proxies did not add."""

from __future__ import annotations

import pytest

from marquee_platform.forwarding import client_address, parse_networks

TRUSTED = parse_networks(["127.0.0.1/32", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # untrusted peer: header ignored
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # client-written hop ignored
        ("127.0.0.1", "198.51.100.1, 10.1.1.1", "198.51.100.1"),  # our own proxies skipped
        ("127.0.0.1", "198.51.100.1, 10.1.1.1, ", "198.51.100.1"),  # empty hops skipped
        ("127.0.0.1", "10.1.1.1", "10.1.1.1"),  # everything trusted: the original client
        ("127.0.0.1", "garbage", "127.0.0.1"),
        ("127.0.0.1", "garbage, 10.1.1.1", "10.1.1.1"),  # the last address we can vouch for
        ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_the_client_address_comes_from_trusted_proxies_only(
    peer: str | None, forwarded_for: str | None, expected: str
) -> None:
    assert client_address(peer, forwarded_for, TRUSTED) == expected


def test_without_trusted_networks_the_peer_is_the_caller() -> None:
    assert client_address("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"


def test_a_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match="not-a-network"):
        parse_networks(["10.0.0.0/8", "not-a-network"])
