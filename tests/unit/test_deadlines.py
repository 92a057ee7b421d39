"""Token expiries of many sockets on one timer: each callback runs once, at (not before) its
time, in time order; a cancelled one never runs; cancelled entries do not pile up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from subscriptions.ws_guard import Deadlines


def noting(ran: list[str], name: str, done: asyncio.Event) -> Callable[[], None]:
    """A callback that notes `name` in `ran`, then sets `done`: what the test waits on."""

    def callback() -> None:
        ran.append(name)
        done.set()

    return callback


async def test_callbacks_run_once_in_time_order_and_not_early() -> None:
    deadlines = Deadlines()
    ran: list[tuple[str, float]] = []
    start = time.time()

    def record(name: str) -> Callable[[], None]:
        return lambda: ran.append((name, time.time()))

    done = asyncio.Event()
    for name, delay in (("late", 0.3), ("soon", 0.1), ("middle", 0.2)):
        deadlines.add(start + delay, record(name))
    deadlines.add(start + 0.4, done.set)
    await asyncio.wait_for(done.wait(), 10)
    assert [name for name, _ in ran] == ["soon", "middle", "late"]
    for (_, at), delay in zip(ran, (0.1, 0.2, 0.3), strict=True):
        assert at >= start + delay
    assert len(deadlines) == 0


async def test_a_cancelled_callback_never_runs() -> None:
    deadlines = Deadlines()
    ran: list[str] = []
    kept = asyncio.Event()
    key = deadlines.add(time.time() + 0.1, lambda: ran.append("cancelled"))
    deadlines.add(time.time() + 0.15, noting(ran, "kept", kept))
    deadlines.cancel(key)
    await asyncio.wait_for(kept.wait(), 10)  # after the cancelled one's time
    assert ran == ["kept"]


async def test_an_earlier_deadline_added_later_still_runs_first() -> None:
    deadlines = Deadlines()
    ran: list[str] = []
    near = asyncio.Event()
    deadlines.add(time.time() + 5, lambda: ran.append("far"))
    deadlines.add(time.time() + 0.05, noting(ran, "near", near))
    await asyncio.wait_for(near.wait(), 4)
    assert ran == ["near"]


async def test_cancelled_entries_are_compacted_away() -> None:
    deadlines = Deadlines()
    for _ in range(1000):  # sockets that closed long before their token expired
        deadlines.cancel(deadlines.add(time.time() + 3600, lambda: None))
    deadlines.add(time.time() + 3600, lambda: None)
    assert len(deadlines) == 1
    assert len(deadlines._heap) <= 2 * len(deadlines) + 65
