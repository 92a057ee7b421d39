"""The per-address WebSocket cap counts clients by the address trusted proxies name, and only by
it: behind the load balancer (its subnets in MEDIAGRAPH_TRUSTED_PROXIES, as the template sets)
each client has its own cap; without trusted proxies, X-Forwarded-For is ignored and a client
cannot dodge the cap by writing other addresses there."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from infra.settings import Settings
from tests.conftest import isolated_settings

pytestmark = pytest.mark.e2e

CAP = 2


@pytest.fixture(params=["behind-proxy", "direct"])
def settings(request: pytest.FixtureRequest, moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    proxies = "127.0.0.1" if request.param == "behind-proxy" else ""  # the tests connect from 127.0.0.1
    yield from isolated_settings(
        moto_endpoint, redis_url, ws_max_connections_per_address=CAP, trusted_proxies=proxies
    )


async def opened(api: str, stack: contextlib.AsyncExitStack, forwarded_for: str) -> bool:
    """Whether a WebSocket handshake from `forwarded_for` is accepted (then kept open)."""
    url = api.replace("http://", "ws://") + "/graphql"
    try:
        ws: ClientConnection = await stack.enter_async_context(
            connect(
                url,
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                additional_headers={"X-Forwarded-For": forwarded_for},
            )
        )
    except InvalidStatus:
        return False
    return ws is not None


async def test_the_cap_counts_the_address_trusted_proxies_name(api: str, settings: Settings) -> None:
    behind_proxy = bool(settings.trusted_proxies)
    async with contextlib.AsyncExitStack() as stack:  # the accepted sockets stay open
        assert [await opened(api, stack, "198.51.100.1") for _ in range(CAP)] == [True] * CAP
        assert not await opened(api, stack, "198.51.100.1")  # that client's cap is reached
        # Another client: its own cap behind the proxy; directly, the same peer and cap (the
        # header is the client's own writing, and ignored).
        assert await opened(api, stack, "198.51.100.2") is behind_proxy
        # A spoofed entry left of the one the proxy appended changes nothing.
        assert not await opened(api, stack, "203.0.113.9, 198.51.100.1")
