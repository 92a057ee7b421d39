"""The fan-out's hand-stepped sends: one that really blocks (a client that stopped reading)
finishes when it can, rather than failing with "await wasn't used with future"."""

from __future__ import annotations

import asyncio

from subscriptions.fanout import _eager


async def test_a_send_that_blocks_completes_when_unblocked() -> None:
    writable = asyncio.Event()
    sent: list[str] = []

    async def send() -> None:
        await writable.wait()
        sent.append("x")

    task = _eager(send())
    assert task is not None and sent == []
    writable.set()
    await task
    assert sent == ["x"]


async def test_a_send_that_does_not_block_completes_at_once() -> None:
    sent: list[str] = []

    async def send() -> None:
        sent.append("x")

    assert _eager(send()) is None
    assert sent == ["x"]
