"""What an operation costs the caller's buckets (schema/rate_limits.py), and the in-process
buckets that stand in while Redis is down."""

from __future__ import annotations

import pytest
from graphql import parse

from infra.redis.rate_limit import LocalRateLimiter
from schema.rate_limits import COSTS, MAX_CHARGE, operation_cost
from schema.root import build_schema
from tests.hostile import fan_out


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        ("{ __typename }", 0),
        ('{ media(id: "1") { title } }', 1),
        ('{ a: media(id: "1") { title } b: media(id: "2") { title } __typename }', 2),
        ('{ ...M ...M } fragment M on Query { media(id: "1") { title } feed { totalCount } }', 4),
        ('{ ... on Query { node(id: "x") { id } } }', 1),
        ("mutation { exportMyData { url } }", 10),
        ("subscription { mediaEvents { eventId } }", 1),
        ("{ ...A } fragment A on Query { ...A feed { totalCount } }", 1),  # a cycle: refused later
        ("{ ...Unknown }", 0),
    ],
)
def test_each_root_field_costs_its_tokens(query: str, cost: int) -> None:
    assert operation_cost(parse(query), None) == cost


def test_the_chosen_operation_is_charged() -> None:
    document = parse("query A { feed { totalCount } } mutation B { exportMyData { url } }")
    assert operation_cost(document, "A") == 1
    assert operation_cost(document, "B") == 10
    assert operation_cost(document, "C") == 0


def test_a_fan_out_at_the_root_is_charged_in_full_without_walking_it() -> None:
    # 2^60 __typename are free; 2^60 feeds cost more than any bucket, counted once per fragment.
    assert operation_cost(parse(fan_out(60)), None) == 0
    feeds = fan_out(60).replace("__typename", "feed { totalCount }")
    assert operation_cost(parse(feeds), None) == MAX_CHARGE


def test_costs_name_root_fields() -> None:
    schema = build_schema()._schema
    roots = {
        name
        for root in (schema.query_type, schema.mutation_type, schema.subscription_type)
        if root is not None
        for name in root.fields
    }
    assert set(COSTS) <= roots


async def test_local_buckets_refill_at_their_rate() -> None:
    now = [100.0]
    limiter = LocalRateLimiter(clock=lambda: now[0], max_buckets=2)
    assert await limiter.acquire("ip:a", rate_per_s=1, burst=2) == 0
    assert await limiter.acquire("ip:a", rate_per_s=1, burst=2) == 0
    assert await limiter.acquire("ip:a", rate_per_s=1, burst=2) == 1.0
    now[0] += 1
    assert await limiter.acquire("ip:a", rate_per_s=1, burst=2) == 0
    assert await limiter.acquire("ip:a", rate_per_s=1, burst=2, cost=3) == 3.0
    # Bounded: the least recently used bucket is forgotten (and starts full again).
    await limiter.acquire("ip:b", rate_per_s=1, burst=2)
    await limiter.acquire("ip:c", rate_per_s=1, burst=2)
    assert await limiter.acquire("ip:a", rate_per_s=1, burst=2, cost=2) == 0
