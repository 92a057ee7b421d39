"""DecodeBudget: reservations of decoded-pixel bytes across concurrent messages."""

from __future__ import annotations

import asyncio

import pytest

from infra.media.budget import DecodeBudget, OverBudget


async def test_a_reservation_that_does_not_fit_waits_for_room() -> None:
    budget = DecodeBudget(100)
    order: list[str] = []
    first_in = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with budget.hold(70):
            first_in.set()
            await release_first.wait()
            order.append("first out")

    async def second() -> None:
        await first_in.wait()
        async with budget.hold(50):
            order.append("second in")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_in.wait()
    while budget.waits == 0:  # the second is queued behind the first
        await asyncio.sleep(0)
    assert budget.used_bytes == 70
    release_first.set()
    await asyncio.gather(*tasks)
    assert order == ["first out", "second in"]
    assert budget.high_water_bytes == 70
    assert budget.used_bytes == 0


async def test_waiters_are_served_in_order_of_arrival() -> None:
    budget = DecodeBudget(100)
    served: list[int] = []
    gate = asyncio.Event()

    async def hold(size: int, tag: int) -> None:
        async with budget.hold(size):
            served.append(tag)
            await gate.wait()

    holder = asyncio.create_task(hold(100, 0))
    while budget.used_bytes < 100:
        await asyncio.sleep(0)
    big = asyncio.create_task(hold(90, 1))
    while budget.waits < 1:
        await asyncio.sleep(0)
    small = asyncio.create_task(hold(10, 2))  # would fit beside the big one, not before it
    while budget.waits < 2:
        await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(holder, big, small)
    assert served == [0, 1, 2]
    assert budget.high_water_bytes == 100


async def test_a_cancelled_waiter_takes_nothing_and_lets_the_next_in() -> None:
    budget = DecodeBudget(10)
    gate = asyncio.Event()

    async def hold(size: int) -> None:
        async with budget.hold(size):
            await gate.wait()

    holder = asyncio.create_task(hold(10))
    while budget.used_bytes < 10:
        await asyncio.sleep(0)
    waiter = asyncio.create_task(hold(5))
    while budget.waits < 1:
        await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.set()
    await holder
    assert budget.used_bytes == 0
    async with budget.hold(10):
        assert budget.used_bytes == 10


async def test_an_error_inside_gives_the_bytes_back() -> None:
    budget = DecodeBudget(10)
    with pytest.raises(RuntimeError):
        async with budget.hold(8):
            raise RuntimeError("decoder failed")
    assert budget.used_bytes == 0


async def test_more_than_the_whole_budget_is_refused_at_once() -> None:
    budget = DecodeBudget(10)
    with pytest.raises(OverBudget):
        async with budget.hold(11):
            pass
    assert budget.waits == 0
