"""/metrics: only on its own listener (loopback by default), never on the API's port in either
profile; every label bounded by construction whatever documents anonymous clients send; each
scrape rendered off the event loop, so /healthz answers while one is in progress.

The audit: /metrics was public on the API port, its `operation` label was built from the root
fields of any document (5,000 invalid mutations added 95,000 series), and a scrape rendered on the
event loop stalled /healthz."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from infra.observability.metrics import metrics_listener
from infra.roots.app import create_app
from infra.settings import Settings
from schema.observability import INVALID, MULTIPLE, OTHER_CODE, UNKNOWN, code_label
from schema.root import build_schema
from services.core.errors import MediagraphError
from tests.conftest import TEST_SECRET, isolated_settings

pytestmark = pytest.mark.e2e

GRAPHQL_SERIES = (
    "mediagraph_graphql_requests_total",
    "mediagraph_graphql_request_duration_seconds_count",
    "mediagraph_graphql_errors_total",
)


@pytest.fixture
def settings(moto_endpoint: str, redis_url: str) -> Iterator[Settings]:
    # Every document reaches validation and execution: no rate limit stops the flood early.
    yield from isolated_settings(moto_endpoint, redis_url, rate_limit_enabled=False)


def root_fields() -> dict[str, list[str]]:
    schema = build_schema()._schema
    return {
        kind: sorted(root.fields)
        for kind, root in (
            ("query", schema.query_type),
            ("mutation", schema.mutation_type),
            ("subscription", schema.subscription_type),
        )
        if root is not None
    }


async def graphql_samples(metrics_url: str) -> list[Sample]:
    async with httpx.AsyncClient(base_url=metrics_url, timeout=30) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name in GRAPHQL_SERIES
    ]


def test_default_listener_is_loopback_and_not_the_api_port() -> None:
    defaults = Settings(_env_file=None, jwt_secret=TEST_SECRET)
    assert defaults.metrics_host == "127.0.0.1"
    assert defaults.metrics_port not in (0, 8000)


async def test_the_api_port_does_not_serve_metrics(api: str, metrics_url: str) -> None:
    async with httpx.AsyncClient(base_url=api) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200
    async with httpx.AsyncClient(base_url=metrics_url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200 and "mediagraph_" in response.text


async def test_the_production_api_does_not_serve_metrics_either() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    settings = Settings(
        _env_file=None, profile="production", jwt_secret=TEST_SECRET, session_signing_key=key.decode()
    )
    app = create_app(settings)  # routing only: no lifespan, no AWS
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_labels_stay_bounded_whatever_anonymous_clients_send(api: str, metrics_url: str) -> None:
    fields = root_fields()
    allowed_operations = {*(f for names in fields.values() for f in names), "__typename"}
    allowed_operations |= {INVALID, MULTIPLE, UNKNOWN}
    before = {(s.name, tuple(sorted(s.labels.items()))) for s in await graphql_samples(metrics_url)}
    rng = random.Random(15)
    documents = []
    for n in range(80):
        # Invalid mutations: every combination of root fields (no arguments), as the audit sent.
        picked = rng.sample(fields["mutation"], rng.randint(1, len(fields["mutation"])))
        documents.append("mutation { " + " ".join(picked) + " }")
        # Valid anonymous queries selecting several root fields (combinations are unbounded).
        picked = rng.sample(["__typename", "a: __typename", "viewer: __typename"], 2)
        documents.append("{ " + " ".join(picked) + " }")
        # Fields the schema does not have, and syntax errors.
        documents.append(f"{{ field{n} {{ id }} }}")
        documents.append(f"mutation {{ x{n}(")
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        for document in documents:
            response = await client.post("/graphql", json={"query": document})
            assert response.status_code in (200, 400), response.text
            assert response.json().get("errors") or response.json().get("data"), response.text
    samples = await graphql_samples(metrics_url)
    operations = {s.labels["operation"] for s in samples if "operation" in s.labels}
    assert operations <= allowed_operations, operations - allowed_operations
    codes = {s.labels["code"] for s in samples if "code" in s.labels}
    assert codes <= {code_label(code) for code in codes}  # each a defined code or OTHER
    # 320 documents of every shape: a handful of new series at most, not one per combination.
    after = {(s.name, tuple(sorted(s.labels.items()))) for s in samples}
    assert len(after - before) <= 3 * 8, sorted(after - before)


def test_error_codes_outside_the_defined_ones_become_other() -> None:
    assert code_label("UNAUTHENTICATED") == "UNAUTHENTICATED"
    assert code_label(MediagraphError.code) == MediagraphError.code
    assert code_label("made-up-by-anyone") == OTHER_CODE
    assert code_label(None) == OTHER_CODE


class BlockingCollector(Collector):
    """A collector that holds the scrape until released: a scrape that takes as long as we like."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def collect(self) -> Iterator[Metric]:
        self.entered.set()
        self.release.wait(30)
        return iter(())


async def test_a_scrape_in_progress_does_not_hold_up_healthz(api: str, metrics_url: str) -> None:
    collector = BlockingCollector()
    REGISTRY.register(collector)
    try:
        scrape = asyncio.ensure_future(asyncio.to_thread(httpx.get, f"{metrics_url}/metrics", timeout=30))
        assert await asyncio.to_thread(collector.entered.wait, 30)
        # The scrape is rendering (and will until released): the API still answers.
        async with httpx.AsyncClient(base_url=api, timeout=10) as client:
            for _ in range(3):
                assert (await client.get("/healthz")).status_code == 200
        assert not scrape.done()
        collector.release.set()
        assert (await scrape).status_code == 200
    finally:
        collector.release.set()
        REGISTRY.unregister(collector)


def test_a_listener_on_port_zero_picks_a_free_port_and_stops() -> None:
    with metrics_listener("127.0.0.1", 0) as port:
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
