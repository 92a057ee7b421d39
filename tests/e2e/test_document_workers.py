"""The API with document workers (MEDIAGRAPH_DOCUMENT_WORKERS, the production profile's default):
every hostile document gets the answer the API gives without them, byte for byte, and a request
whose document the workers cannot examine is answered at once with a clear, retryable error."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from infra.settings import Settings
from schema import documents
from schema.document_workers import DocumentWorkers
from schema.documents import DocumentsUnavailable, Examined
from tests.conftest import isolated_settings
from tests.e2e.test_hostile import request_body
from tests.hostile import DOCUMENTS
from tests.servers import _apps, serving

pytestmark = pytest.mark.e2e

HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    yield from isolated_settings(moto_endpoint, redis_url, rate_limit_enabled=False)


@pytest.fixture
def uncached(monkeypatch: pytest.MonkeyPatch) -> None:
    # The two servers of a test share this process's document cache: off, each examines itself.
    monkeypatch.setattr(documents, "caching", False)


@pytest.mark.usefixtures("uncached")
@pytest.mark.usefixtures("resources")
async def test_the_workers_answer_the_corpus_as_the_api_process_does(settings: Settings) -> None:
    assert settings.effective_document_workers == 0
    with_workers = settings.model_copy(update={"document_workers": 1})
    async with serving(settings) as plain, serving(with_workers) as pooled:
        assert isinstance(_apps[pooled].state.graphql.document_workers, DocumentWorkers)
        async with httpx.AsyncClient(timeout=60) as client:
            for hostile in DOCUMENTS:
                body = request_body(hostile)
                expected = await client.post(plain + "/graphql", content=body, headers=HEADERS)
                answered = await client.post(pooled + "/graphql", content=body, headers=HEADERS)
                assert answered.status_code == expected.status_code, hostile.name
                assert answered.json() == expected.json(), hostile.name
                assert (await client.get(pooled + "/healthz")).status_code == 200
            # And an accepted document is executed as usual.
            query = {"query": "{ feed(first: 1) { totalCount } }"}
            expected = await client.post(plain + "/graphql", json=query)
            answered = await client.post(pooled + "/graphql", json=query)
            assert answered.json() == expected.json() and "errors" not in answered.json()


class _Down:
    async def examine(
        self, query: str, rules: object, *, production: bool, request_id: str = "-"
    ) -> Examined:
        raise DocumentsUnavailable("a document worker died")


@pytest.mark.usefixtures("uncached")
@pytest.mark.usefixtures("resources")
async def test_a_document_the_workers_cannot_examine_is_answered_at_once(settings: Settings) -> None:
    async with serving(settings.model_copy(update={"document_workers": 1})) as api:
        view = _apps[api].state.graphql
        workers = view.document_workers
        view.document_workers = _Down()
        try:
            async with httpx.AsyncClient(base_url=api, timeout=30) as client:
                response = await client.post("/graphql", json={"query": "{ feed { totalCount } }"})
        finally:
            view.document_workers = workers
    assert response.status_code == 200
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["reason"] == "DOCUMENT_WORKERS_UNAVAILABLE"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert "retry" in error["message"]
