"""GraphiQL from the real server with nothing from outside: the page names no other host, every
asset it names is served with its type and matches its integrity hash, a Content-Security-Policy
allows this server only, and the example query works with the token the page offers. (The
real-browser test, with the network blocked, is tests/browser.)"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest

from infra.aws.resources import Resources
from infra.http.graphiql import sri
from infra.settings import Settings
from tests.client import gql
from tests.servers import serving

pytestmark = pytest.mark.e2e


class _Page(HTMLParser):
    """Every URL the page loads (src/href), with its integrity, and the JSON config block."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str | None, str]] = []  # (url, integrity, tag)
        self.config = ""
        self._in_config = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name):
                self.urls.append((found[name] or "", found.get("integrity"), tag))
        self._in_config = tag == "script" and found.get("id") == "graphiql-config"

    def handle_data(self, data: str) -> None:
        if self._in_config:
            self.config += data

    def handle_endtag(self, tag: str) -> None:
        self._in_config = False


async def _page(api: str) -> tuple[httpx.Response, _Page]:
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    parsed = _Page()
    parsed.feed(response.text)
    return response, parsed


@pytest.fixture
async def dev_api(settings: Settings, resources: Resources) -> AsyncIterator[str]:
    async with serving(settings, dev_sign_in=True) as url:
        yield url


async def test_the_page_loads_everything_from_this_server_with_integrity(api: str) -> None:
    response, page = await _page(api)
    assert not re.search(r"\b(https?:)?//[a-z0-9]", response.text.split('id="graphiql-config"')[0], re.I)
    loaded = [(url, digest, tag) for url, digest, tag in page.urls if not url.startswith("data:")]
    assert {tag for _, _, tag in loaded} == {"link", "script"} and len(loaded) == 8
    async with httpx.AsyncClient(base_url=api + "/", timeout=30) as client:
        for url, digest, _ in loaded:
            assert "//" not in url and not url.startswith("/"), url  # relative: this server, any prefix
            asset = await client.get(url)
            assert asset.status_code == 200, url
            expected = "text/javascript" if url.endswith(".js") else "text/css"
            assert asset.headers["content-type"].split(";")[0] == expected, url
            assert digest is not None and digest == sri(asset.content), url
        assert (await client.get("graphiql/VERSIONS.json")).status_code == 404  # the list, nothing else
        assert (await client.get("graphiql/..%2Finfra%2Fapp.py")).status_code == 404


async def test_the_page_has_a_policy_that_allows_this_server_only(api: str) -> None:
    response, _ = await _page(api)
    directives = response.headers["content-security-policy"].split("; ")
    policy = {name: value for name, _, value in (directive.partition(" ") for directive in directives)}
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # no inline script, no eval
    host = api.removeprefix("http://")
    assert policy["connect-src"] == f"'self' ws://{host} wss://{host}"
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["cache-control"] == "no-store"


async def test_mediagraph_dev_fills_in_a_token_the_example_query_runs_with(dev_api: str) -> None:
    _, page = await _page(dev_api)
    config = json.loads(page.config)
    headers = json.loads(config["headers"])
    body = await gql(dev_api, config["query"], headers=headers)
    assert "errors" not in body, body
    assert body["data"] == {"myMedia": {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}}


async def test_without_mediagraph_dev_the_headers_tab_says_where_a_token_comes_from(api: str) -> None:
    _, page = await _page(api)
    config = json.loads(page.config)
    assert "mediagraph token --user" in json.loads(config["headers"])["Authorization"]
