"""The CORS policy: what MEDIAGRAPH_CORS_ORIGINS accepts and how it is normalised, and what each
profile allows (production: the list only)."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from infra.http.cors import Cors, CorsPolicy
from infra.settings import Settings, normalize_origin
from tests.conftest import TEST_SECRET


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("https://app.example.com/", "https://app.example.com"),
        ("HTTPS://App.Example.COM", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://localhost:5173/", "http://localhost:5173"),
        (" http://[::1]:8080 ", "http://[::1]:8080"),
    ],
)
def test_origins_are_normalised_as_browsers_send_them(raw: str, normalised: str) -> None:
    assert normalize_origin(raw) == normalised


@pytest.mark.parametrize(
    "raw", ["app.example.com", "https://app.example.com/path", "ftp://x.example", "*", "null"]
)
def test_what_is_not_an_origin_is_refused_naming_the_setting(raw: str) -> None:
    with pytest.raises(ValidationError, match="MEDIAGRAPH_CORS_ORIGINS"):
        Settings(_env_file=None, jwt_secret=TEST_SECRET, cors_origins=raw)


def test_the_setting_is_a_normalised_list_without_repeats() -> None:
    settings = Settings(
        _env_file=None,
        jwt_secret=TEST_SECRET,
        cors_origins="https://A.example/, https://a.example,http://b.example:80",
    )
    assert settings.cors_origins == ("https://a.example", "http://b.example")


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("ok")(scope, receive, send)


@pytest.mark.parametrize("development", [True, False])
async def test_loopback_origins_are_allowed_in_development_only(development: bool) -> None:
    app = Cors(_ok, CorsPolicy.of(["https://app.example.com"], development=development))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        for origin, allowed in (
            ("https://app.example.com", True),
            ("http://localhost:5173", development),
            ("http://127.0.0.1:9", development),
            ("http://127.0.0.2:9", False),
            ("http://localhost:5173.evil.example", False),
        ):
            preflight = await client.options(
                "/graphql", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
            )
            assert preflight.status_code == (200 if allowed else 403), origin
            response = await client.get("/graphql", headers={"Origin": origin})
            assert (response.headers.get("access-control-allow-origin") == origin) is allowed


async def test_a_500_from_starlettes_error_handler_carries_cors_headers() -> None:
    from starlette.routing import Route

    from infra.roots.app import CorsOutermost

    async def broken(request: object) -> PlainTextResponse:
        raise RuntimeError("a bug")

    app = CorsOutermost(CorsPolicy.of([], development=True), routes=[Route("/broken", broken)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.get("/broken", headers={"Origin": "http://localhost:5173"})
    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),  # noqa: S104  # a value under test, nothing binds
        ("192.168.1.5", False),
    ],
)
def test_mediagraph_dev_offers_sign_in_on_loopback_hosts_only(host: str, loopback: bool) -> None:
    from infra.identity.dev_sign_in import is_loopback

    assert is_loopback(host) is loopback
