"""GraphQL over HTTP facing hostile input: body size, CSRF, GET, batching, depth/alias/token/cost
limits, the largest page, CORS, and the production profile."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from infra.roots.app import MediagraphGraphQL
from infra.roots.runtime import Runtime
from infra.settings import Settings
from schema.limits import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from tests.client import error_codes, gql
from tests.conftest import TEST_SECRET, isolated_settings

pytestmark = pytest.mark.e2e

MAX_BODY = 4096
ORIGIN = "https://app.example.com"
ABORT = 'mutation { abortUpload(mediaId: "01ARZ3NDEKTSV4RRFFQ69G5FAV") }'
INTROSPECT = "{ __schema { queryType { name } } }"


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, redis_url, max_body_bytes=MAX_BODY, cors_origins=ORIGIN)


async def post(api: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        return await client.post("/graphql", **kwargs)  # type: ignore[arg-type]


async def test_a_body_over_the_limit_is_413(api: str, token: Callable[..., str]) -> None:
    padding = " " * MAX_BODY
    response = await post(api, json={"query": "{ __typename }" + padding})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["reason"] == "BODY_TOO_LARGE"


async def test_a_chunked_body_without_length_is_counted(api: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "x": "'
        for _ in range(MAX_BODY // 512 + 2):
            yield b"a" * 512
        yield b'"}'

    response = await post(api, content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_a_body_under_the_limit_is_served(api: str) -> None:
    response = await post(api, json={"query": "{ __typename }"})
    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", '{"query": "' + ABORT.replace('"', '\\"') + '"}'),
        ("application/x-www-form-urlencoded", "query=" + ABORT),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n{}\r\n--x--',
        ),
        ("", '{"query": "{ __typename }"}'),
    ],
)
async def test_posts_a_browser_sends_cross_site_are_refused(
    api: str, token: Callable[..., str], content_type: str, body: str
) -> None:
    headers = {"Authorization": f"Bearer {token('alice')}", "Content-Type": content_type}
    response = await post(api, content=body.encode(), headers=headers)
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["reason"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_no_operation_runs_over_get(api: str, token: Callable[..., str]) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        for query in (ABORT, "{ __typename }"):
            response = await client.get(
                "/graphql",
                params={"query": query},
                headers={"Authorization": f"Bearer {token('alice')}", "Accept": "application/json"},
            )
            assert response.status_code >= 400, response.text
            assert "data" not in response.text


async def test_batched_operations_are_refused(api: str) -> None:
    response = await post(api, json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}])
    assert response.status_code == 400
    assert "data" not in response.text


async def test_depth_aliases_and_tokens_are_limited(api: str, token: Callable[..., str]) -> None:
    alice = token("alice")
    deep = "{ myMedia { " + "edges { node { owner { " * MAX_DEPTH + "id" + " } } }" * MAX_DEPTH + " } }"
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(MAX_ALIASES + 1)) + " }"
    tokens = "{ " + " ".join("__typename" for _ in range(MAX_TOKENS)) + " }"
    for query in (deep, aliases, tokens):
        body = await gql(api, query, token=alice)
        assert error_codes(body) and set(error_codes(body)) == {"BAD_USER_INPUT"}, body
        assert body.get("data") is None


PAGE_FIELDS = "mediaId title tags status size sha256 contentType createdAt visibility"


async def test_cost_multiplies_by_first(api: str, token: Callable[..., str]) -> None:
    alice = token("alice")
    one_page = f"{{ myMedia(first: 100) {{ edges {{ node {{ {PAGE_FIELDS} }} }} }} }}"
    assert "errors" not in await gql(api, one_page, token=alice)
    many = (
        "{ "
        + " ".join(f"p{i}: myMedia(first: 100) {{ edges {{ node {{ {PAGE_FIELDS} }} }} }}" for i in range(6))
        + " }"
    )
    body = await gql(api, many, token=alice)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert "costs more than" in body["errors"][0]["message"]
    # The same document with small pages is cheap enough.
    assert "errors" not in await gql(api, many.replace("first: 100", "first: 5"), token=alice)
    # A page size from a variable counts as the largest page.
    variable = (
        "query($n: Int!) { "
        + " ".join(f"p{i}: myMedia(first: $n) {{ edges {{ node {{ {PAGE_FIELDS} }} }} }}" for i in range(6))
        + " }"
    )
    assert error_codes(await gql(api, variable, {"n": 1}, token=alice)) == ["BAD_USER_INPUT"]


async def test_first_has_a_maximum(api: str, token: Callable[..., str]) -> None:
    body = await gql(api, "{ myMedia(first: 101) { edges { node { id } } } }", token=token("alice"))
    assert error_codes(body) == ["BAD_USER_INPUT"], body


async def test_cors_allows_only_listed_origins(api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        for origin, allowed in ((ORIGIN, True), ("https://evil.example", False)):
            preflight = await client.options(
                "/graphql",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type,authorization",
                },
            )
            assert (preflight.headers.get("access-control-allow-origin") == origin) is allowed
            response = await client.post(
                "/graphql", json={"query": "{ __typename }"}, headers={"Origin": origin}
            )
            assert (response.headers.get("access-control-allow-origin") == origin) is allowed


async def test_development_profile_keeps_introspection_graphiql_and_suggestions(api: str) -> None:
    assert (await gql(api, INTROSPECT))["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    body = await gql(api, "{ myMedai { edges { node { id } } } }")
    assert "Did you mean" in body["errors"][0]["message"]
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


@pytest.fixture
async def production(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The production profile's view (it refuses an AWS endpoint, so it runs on the dev runtime's
    services, in process)."""
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    settings = Settings(
        _env_file=None, profile="production", jwt_secret=TEST_SECRET, session_signing_key=key.decode()
    )
    view = MediagraphGraphQL(settings, runtime.services, runtime.tokens)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=view), base_url="http://api") as client:
        yield client


async def test_production_profile_hides_the_schema(production: httpx.AsyncClient) -> None:
    body = (await production.post("/graphql", json={"query": INTROSPECT})).json()
    assert body.get("data") is None
    assert set(error_codes(body)) == {"BAD_USER_INPUT"}
    assert all("introspection" in error["message"] for error in body["errors"]), body
    typed = (await production.post("/graphql", json={"query": '{ __type(name: "Media") { name } }'})).json()
    assert typed.get("data") is None, typed
    for query in ("{ myMedai { edges { node { id } } } }", "{ feed(frist: 1) { edges { node { id } } } }"):
        body = (await production.post("/graphql", json={"query": query})).json()
        assert error_codes(body) == ["BAD_USER_INPUT"], body
        assert "Did you mean" not in body["errors"][0]["message"], body
    page = await production.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code >= 400 and "graphiql" not in page.text.lower()
    # Ordinary operations still work.
    ok = (await production.post("/graphql", json={"query": "{ __typename }"})).json()
    assert ok == {"data": {"__typename": "Query"}}
