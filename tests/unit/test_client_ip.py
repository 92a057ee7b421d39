"""client_address: X-Forwarded-For is believed only as far as the hops are trusted proxies."""

from __future__ import annotations

import pytest

from infra.http.client_ip import client_address, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        pytest.param("198.51.100.1", None, "198.51.100.1", id="direct"),
        pytest.param("198.51.100.1", "203.0.113.9", "198.51.100.1", id="untrusted-peer-header-ignored"),
        pytest.param("10.1.2.3", "203.0.113.9", "203.0.113.9", id="one-trusted-proxy"),
        pytest.param("10.1.2.3", "203.0.113.9, 10.4.5.6", "203.0.113.9", id="two-trusted-proxies"),
        pytest.param("10.1.2.3", "1.1.1.1, 203.0.113.9", "203.0.113.9", id="spoofed-left-entry-ignored"),
        pytest.param("10.1.2.3", "garbage", "10.1.2.3", id="garbage-from-proxy"),
        pytest.param("10.1.2.3", None, "10.1.2.3", id="proxy-without-header"),
        pytest.param("2001:db8::1", "2001:db9::5", "2001:db9::5", id="ipv6"),
        pytest.param(None, "203.0.113.9", None, id="no-peer"),
        # Long headers are read afresh every time (not remembered), with the same answer.
        pytest.param(
            "10.1.2.3", ", ".join(["1.1.1.1"] * 60 + ["203.0.113.9"]), "203.0.113.9", id="long-header"
        ),
    ],
)
def test_client_address(peer: str | None, forwarded: str | None, expected: str | None) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected
    assert client_address(peer, forwarded, PROXIES) == expected  # the remembered answer too


def test_nothing_trusted_by_default() -> None:
    assert client_address("10.1.2.3", "203.0.113.9", parse_networks([])) == "10.1.2.3"
