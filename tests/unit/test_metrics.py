"""The metrics follow Prometheus naming conventions and are all documented for operators."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from infra.observability import metrics

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
ALL = [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]


def _name(metric: MetricWrapperBase) -> str:
    (family,) = metric.describe()
    return family.name


def test_names_follow_the_conventions() -> None:
    assert len(ALL) >= 15
    for metric in ALL:
        name = _name(metric)
        assert name.startswith("mediagraph_"), name
        assert name == name.lower()
        if isinstance(metric, Counter):
            assert not name.endswith("_total")  # the client adds it to the sample name
        if isinstance(metric, Histogram):
            assert name.endswith("_seconds"), name  # base unit in the name
        if isinstance(metric, Gauge):
            assert not name.endswith("_total"), name
        assert metric._documentation, name


def test_buckets_are_increasing_and_in_seconds() -> None:
    for buckets in (metrics.LATENCY_BUCKETS, metrics.LAG_BUCKETS):
        assert list(buckets) == sorted(set(buckets))
        assert buckets[0] < 1 < buckets[-1]


def test_every_metric_is_documented() -> None:
    text = OPERATIONS.read_text()
    missing = []
    for metric in ALL:
        name = _name(metric)
        exported = f"{name}_total" if isinstance(metric, Counter) else name
        if f"`{exported}`" not in text:
            missing.append(exported)
    assert missing == []


def test_cache_helper_counts_hits_and_misses() -> None:
    def count(result: str) -> float:
        return metrics.sample("mediagraph_cache_requests_total", {"cache": "unit", "result": result})

    hits, misses = count("hit"), count("miss")
    metrics.record_cache("unit", hit=True)
    metrics.record_cache("unit", hit=True)
    metrics.record_cache("unit", hit=False)
    assert (count("hit") - hits, count("miss") - misses) == (2, 1)


def test_an_error_class_defined_after_the_first_answer_still_labels_its_code() -> None:
    from schema.observability import OTHER_CODE, code_labels
    from services.core.errors import MediagraphError, NotFound

    assert code_labels(["LATE_DEFINED_FOR_A_TEST"]) == [OTHER_CODE]

    class LateDefined(MediagraphError):  # as infra's bus errors, imported after the schema
        code = "LATE_DEFINED_FOR_A_TEST"

    assert code_labels([LateDefined.code, NotFound.code, "made-up"]) == [
        "LATE_DEFINED_FOR_A_TEST",
        NotFound.code,
        OTHER_CODE,
    ]
