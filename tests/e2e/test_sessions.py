"""Sessions through the API: exchangeToken with an ID token of a stand-in identity provider (a
key pair and JWKS of the test's own), refresh-token rotation, reuse detection, concurrent
refreshes, sign-out, and the service's own keys at /.well-known/jwks.json."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from infra.settings import Settings
from services.access.sessions import SessionService
from tests.client import WsClient, error_codes, gql
from tests.conftest import captured_logs, isolated_settings
from tests.identity_provider import Provider

pytestmark = pytest.mark.e2e

IDP_ISSUER = "https://idp.example"
CLIENT_ID = "mediagraph-web"
IDP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())

EXCHANGE = "mutation($t: String!) { exchangeToken(idToken: $t) { accessToken expiresIn refreshToken } }"
REFRESH = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }"
REVOKE = "mutation($t: String!) { revokeSession(refreshToken: $t) }"
WHO = "{ myMedia { edges { node { mediaId } } } }"


@pytest.fixture
def provider() -> Iterator[Provider]:
    provider = Provider()
    provider.keys = {"idp-1": IDP_KEY}
    yield provider
    provider.close()


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str, provider: Provider) -> Iterator[Settings]:
    yield from isolated_settings(
        moto_endpoint,
        redis_url,
        idp_jwks_url=provider.url,
        idp_issuer=IDP_ISSUER,
        idp_audience=CLIENT_ID,
        rate_limit_enabled=False,
    )


def id_token(key: Any = IDP_KEY, kid: str = "idp-1", algorithm: str = "RS256", **changes: Any) -> str:
    now = int(time.time())
    claims = {"sub": "alice", "iss": IDP_ISSUER, "aud": CLIENT_ID, "iat": now, "exp": now + 300, **changes}
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm, headers={"kid": kid}
    )


async def exchange(api: str) -> dict[str, Any]:
    body = await gql(api, EXCHANGE, {"t": id_token()})
    assert "errors" not in body, body
    tokens: dict[str, Any] = body["data"]["exchangeToken"]
    return tokens


async def test_exchange_gives_a_working_access_token_signed_with_the_published_key(api: str) -> None:
    tokens = await exchange(api)
    assert tokens["expiresIn"] == 300
    body = await gql(api, WHO, token=tokens["accessToken"])
    assert "errors" not in body, body
    async with httpx.AsyncClient(base_url=api) as client:
        jwks = (await client.get("/.well-known/jwks.json")).json()
    [key] = jwks["keys"]
    assert key["kty"] == "EC" and "d" not in key  # the public half only
    header = jwt.get_unverified_header(tokens["accessToken"])
    assert header == {"alg": "ES256", "kid": key["kid"], "typ": "JWT"}
    claims = jwt.decode(
        tokens["accessToken"], jwt.PyJWK(key).key, algorithms=["ES256"], audience="mediagraph-api"
    )
    assert claims["sub"] == "alice"


@pytest.mark.parametrize(
    "bad",
    [
        id_token(key=OTHER_KEY),
        id_token(kid="unknown"),
        id_token(aud="someone-else"),
        id_token(iss="https://evil.example"),
        id_token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        id_token(sub=None),
        id_token(key=EC_KEY, algorithm="ES256"),  # an ES256 token naming the provider's RSA key
        "not-a-token",
    ],
)
async def test_exchange_refuses_bad_id_tokens(api: str, bad: str) -> None:
    body = await gql(api, EXCHANGE, {"t": bad})
    assert error_codes(body) == ["UNAUTHENTICATED"], body


async def test_refresh_rotates_and_a_reused_token_revokes_the_family(api: str) -> None:
    first = await exchange(api)
    body = await gql(api, REFRESH, {"t": first["refreshToken"]})
    second = body["data"]["refreshSession"]
    assert second["refreshToken"] != first["refreshToken"]
    assert "errors" not in await gql(api, WHO, token=second["accessToken"])
    # The spent token presented again: refused, and the whole session is revoked.
    reused = await gql(api, REFRESH, {"t": first["refreshToken"]})
    assert error_codes(reused) == ["UNAUTHENTICATED"]
    assert reused["errors"][0]["extensions"]["reason"] == "REFRESH_TOKEN_REUSED"
    assert error_codes(await gql(api, REFRESH, {"t": second["refreshToken"]})) == ["UNAUTHENTICATED"]


async def test_of_two_concurrent_refreshes_exactly_one_succeeds(api: str) -> None:
    tokens = await exchange(api)
    bodies = await asyncio.gather(*(gql(api, REFRESH, {"t": tokens["refreshToken"]}) for _ in range(2)))
    winners = [body for body in bodies if "errors" not in body]
    assert len(winners) == 1, bodies


async def test_revoke_signs_out(api: str) -> None:
    tokens = await exchange(api)
    assert (await gql(api, REVOKE, {"t": tokens["refreshToken"]}))["data"]["revokeSession"] is True
    assert error_codes(await gql(api, REFRESH, {"t": tokens["refreshToken"]})) == ["UNAUTHENTICATED"]
    assert (await gql(api, REVOKE, {"t": tokens["refreshToken"]}))["data"]["revokeSession"] is False


async def test_own_issuer_tokens_cannot_be_forged_with_another_algorithm(
    api: str, settings: Settings
) -> None:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "iss": settings.public_url,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 60,
    }
    forged = jwt.encode(claims, "x" * 64, algorithm="HS256")
    async with httpx.AsyncClient(base_url=api) as client:
        response = await client.post(
            "/graphql", json={"query": WHO}, headers={"Authorization": f"Bearer {forged}"}
        )
    assert response.status_code == 401


@pytest.fixture
def every_log_line() -> Iterator[io.StringIO]:
    """Every record of every logger, DEBUG up, through the production formatter."""
    with captured_logs(logging.DEBUG) as stream:
        yield stream


async def test_no_secret_reaches_the_log_whatever_the_request_fails_with(
    api: str, every_log_line: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The audit: a live refresh token was written in clear when a request carrying it failed.
    upstream = id_token()
    tokens = await exchange(api)
    refresh, access = tokens["refreshToken"], tokens["accessToken"]
    password = "hunter2-correct-horse-battery"
    secrets = [refresh, refresh.removeprefix("mgrt_"), access, access.split(".")[2], upstream, password]
    failing: list[tuple[str, dict[str, Any] | None]] = [
        ("mutation($t: Int!) { refreshSession(refreshToken: $t) { accessToken } }", {"t": refresh}),
        (REFRESH, {"t": {"nested": refresh}}),
        (REFRESH, {"t": None}),
        (f'mutation {{ refreshSession(refreshToken: "{refresh}") {{ accessToken }} ', None),  # syntax
        (f'{{ nope(token: "{refresh}", password: "{password}") }}', None),
        (f"{{ media(id: {refresh}) {{ id }} }}", None),
        ("query($password: String, $secret: String) { nope }", {"password": password, "secret": refresh}),
        (EXCHANGE, {"t": refresh}),
        (EXCHANGE, {"t": upstream[:-2]}),
    ]
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        for query, variables in failing:
            body = (await client.post("/graphql", json={"query": query, "variables": variables})).json()
            assert body.get("errors"), body
        # Secrets in headers: a refresh token as a bearer (401), an access token in a cookie.
        for headers in ({"Authorization": f"Bearer {refresh}"}, {"Cookie": f"mg_token={access}"}):
            await client.post("/graphql", json={"query": "{ nope }"}, headers=headers)
        # A body that is not JSON at all.
        await client.post(
            "/graphql",
            content=f'{{"query": "{refresh}", "password": "{password}"'.encode(),
            headers={"Content-Type": "application/json"},
        )
        # A bug: the store fails with the token in its message. The client sees a masked 500;
        # the log gets the traceback, scrubbed.

        async def broken(self: object, refresh_token: str) -> None:
            raise RuntimeError(f"store failed for {refresh_token} (password={password})")

        monkeypatch.setattr(SessionService, "refresh", broken)
        body = (await client.post("/graphql", json={"query": REFRESH, "variables": {"t": refresh}})).json()
        assert error_codes(body) == ["INTERNAL_SERVER_ERROR"], body
    # Over WebSocket: the refresh token as the connection's bearer, then in a failing subscribe.
    with contextlib.suppress(Exception):
        async with WsClient(api, refresh):
            pass
    async with WsClient(api, access) as ws:
        await ws.subscribe("subscription($t: Int) { uploadCompleted { mediaId } }", {"t": refresh})
        await ws.receive()

    text = every_log_line.getvalue()
    assert "unexpected error" in text and "store failed for" in text  # the bug was logged ...
    assert "REDACTED" in text
    for secret in secrets:  # ... without any secret
        assert secret not in text, secret
