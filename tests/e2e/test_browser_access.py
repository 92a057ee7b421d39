"""What a browser on another origin meets, against the real server: CORS in the development
profile (loopback origins on any port), refusals that name MEDIAGRAPH_CORS_ORIGINS on every
path (preflight, WebSocket handshake, log), CORS headers on errors, and the development
sign-in that exists only under `mediagraph dev`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from infra.aws.embedded import free_port
from infra.aws.resources import Resources
from infra.settings import Settings
from tests.client import error_codes, gql
from tests.conftest import isolated_settings
from tests.servers import eventually, serving

pytestmark = pytest.mark.e2e

MAX_BODY = 4096
LISTED = "https://app.example.com"
REFUSED = "https://evil.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,authorization",
}


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    # Listed with a trailing slash and capitals: it must still match what browsers send.
    yield from isolated_settings(
        moto_endpoint, redis_url, max_body_bytes=MAX_BODY, cors_origins="HTTPS://App.Example.com/"
    )


@pytest.fixture
async def dev_api(settings: Settings, resources: Resources) -> AsyncIterator[str]:
    async with serving(settings, dev_sign_in=True) as url:
        yield url


async def test_development_allows_loopback_origins_on_any_port_and_the_listed_one(api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        for origin in ("http://localhost:5173", "http://127.0.0.1:3000", "http://localhost", LISTED):
            preflight = await client.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
            assert preflight.status_code == 200, (origin, preflight.text)
            assert preflight.headers["access-control-allow-origin"] == origin
            response = await client.post(
                "/graphql", json={"query": "{ __typename }"}, headers={"Origin": origin}
            )
            assert response.headers["access-control-allow-origin"] == origin
            assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


async def test_a_refused_origin_is_told_which_setting_to_change(
    api: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mediagraph.cors")
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        for origin in (REFUSED, "http://localhost.evil.example:5173", "https://localhost:5173"):
            preflight = await client.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
            assert preflight.status_code == 403, origin
            assert "access-control-allow-origin" not in preflight.headers
            [error] = preflight.json()["errors"]
            assert "MEDIAGRAPH_CORS_ORIGINS" in error["message"] and origin in error["message"]
            assert error["extensions"] == {"code": "FORBIDDEN", "reason": "ORIGIN_NOT_ALLOWED"}
    logged = [record.getMessage() for record in caplog.records if record.name == "mediagraph.cors"]
    assert any(REFUSED in line and "MEDIAGRAPH_CORS_ORIGINS" in line for line in logged), logged
    assert not any("allowed_origins" in record.getMessage() for record in caplog.records)


async def test_a_websocket_from_a_refused_origin_is_told_too(
    api: str, token: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url = api.replace("http://", "ws://") + "/graphql"
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, subprotocols=["graphql-transport-ws"], origin="https://ws.evil.example")  # type: ignore[list-item,arg-type]
    assert refused.value.response.status_code == 403
    assert b"MEDIAGRAPH_CORS_ORIGINS" in refused.value.response.body
    assert any("MEDIAGRAPH_CORS_ORIGINS" in record.getMessage() for record in caplog.records)
    assert not any("allowed_origins" in record.getMessage() for record in caplog.records)
    # A page of the development origin connects.
    async with connect(url, subprotocols=["graphql-transport-ws"], origin="http://localhost:5173") as ws:  # type: ignore[list-item,arg-type]
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token('alice')}"}}
        await ws.send(json.dumps(init))
        assert "connection_ack" in str(await asyncio.wait_for(ws.recv(), 10))


async def test_error_responses_carry_cors_headers_for_allowed_origins(api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        for origin in (LISTED, "http://localhost:5173"):
            too_large = await client.post(
                "/graphql", json={"query": "{ __typename }" + " " * MAX_BODY}, headers={"Origin": origin}
            )
            assert too_large.status_code == 413
            assert too_large.headers["access-control-allow-origin"] == origin
            bad_token = await client.post(
                "/graphql",
                json={"query": "{ __typename }"},
                headers={"Origin": origin, "Authorization": "Bearer not-a-token"},
            )
            assert bad_token.status_code == 401
            assert bad_token.headers["access-control-allow-origin"] == origin
            missing = await client.get("/nowhere", headers={"Origin": origin})
            assert missing.status_code == 404
            assert missing.headers["access-control-allow-origin"] == origin


async def test_dev_sign_in_gives_a_working_token_without_any_role(dev_api: str) -> None:
    async with httpx.AsyncClient(base_url=dev_api, timeout=30) as client:
        preflight = await client.options(
            "/dev/sign-in",
            headers={
                "Origin": "http://localhost:5173",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
        response = await client.post(
            "/dev/sign-in", json={"user": "carol"}, headers={"Origin": "http://localhost:5173"}
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    body = response.json()
    assert set(body) == {"token", "user", "expiresIn"}
    assert body["user"] == "carol" and body["expiresIn"] > 0
    mine = await gql(dev_api, "{ myMedia { edges { node { id } } } }", token=body["token"])
    assert mine["data"] == {"myMedia": {"edges": []}}
    admin_only = await gql(dev_api, "{ reviewQueue { id } }", token=body["token"])
    assert error_codes(admin_only) == ["FORBIDDEN"], admin_only


@pytest.mark.parametrize(
    "payload",
    [
        {"user": ""},
        {"user": "a b"},
        {"user": "x" * 129},
        {"user": "-admin"},
        {"user": 7},
        {"name": "bob"},
        ["bob"],
    ],
)
async def test_dev_sign_in_refuses_bad_user_names(dev_api: str, payload: object) -> None:
    async with httpx.AsyncClient(base_url=dev_api, timeout=30) as client:
        response = await client.post("/dev/sign-in", json=payload)
        not_json = await client.post("/dev/sign-in", content=b"user=bob")
    for refused in (response, not_json):
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_without_mediagraph_dev_there_is_no_sign_in(api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        response = await client.post("/dev/sign-in", json={"user": "carol"})
    assert response.status_code == 404


async def test_mediagraph_serve_never_offers_sign_in_whatever_the_environment(
    settings: Settings, resources: Resources
) -> None:
    """The real `mediagraph serve` command, in the development profile (the default), with every
    variable someone might try: still no /dev/sign-in."""
    port = free_port()
    env = {
        **os.environ,
        "MEDIAGRAPH_PROFILE": "development",
        "MEDIAGRAPH_DEV_SIGN_IN": "true",
        "MEDIAGRAPH_DEV": "1",
        "MEDIAGRAPH_AWS_ENDPOINT_URL": settings.aws_endpoint_url or "",
        "MEDIAGRAPH_BUCKET": settings.bucket,
        "MEDIAGRAPH_TABLE": settings.table,
        "MEDIAGRAPH_QUEUE": settings.queue,
        "MEDIAGRAPH_DLQ": settings.dlq,
        "MEDIAGRAPH_REDIS_URL": settings.redis_url,
        "MEDIAGRAPH_REDIS_PREFIX": settings.redis_prefix,
        "MEDIAGRAPH_JWT_SECRET": settings.jwt_secret.get_secret_value() if settings.jwt_secret else "",
        "MEDIAGRAPH_METRICS_PORT": "0",  # another test run on this machine may hold the default port
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("mediagraph")), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:

            async def up() -> bool:
                assert process.poll() is None, "mediagraph serve exited"
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, timeout=60)
            response = await client.post("/dev/sign-in", json={"user": "carol"})
        assert response.status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=20)
