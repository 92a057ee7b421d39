"""DecodeBudget: how many bytes of decoded pixels the worker may hold at once, across every
message it has in hand. A decode reserves its estimate (declared pixels at the decode scale x
bytes per pixel, `infra/media/images.py`) before the first pixel is decoded and gives it back when
its variants are encoded; a reservation that does not fit waits, first come first served."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class OverBudget(ValueError):
    """One image needs more than the whole budget: it could never be decoded."""


class DecodeBudget:
    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes <= 0:
            raise ValueError("the decode budget must be positive")
        self.limit_bytes = limit_bytes
        self._used = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()
        self.high_water_bytes = 0  # the most ever reserved at once (tests and metrics read it)
        self.waits = 0  # reservations that had to wait for room

    @property
    def used_bytes(self) -> int:
        return self._used

    @asynccontextmanager
    async def hold(self, nbytes: int) -> AsyncIterator[None]:
        """Reserve `nbytes` for the block. Raises OverBudget when it can never fit."""
        if nbytes > self.limit_bytes:
            raise OverBudget(f"{nbytes} bytes of pixels exceed the decode budget of {self.limit_bytes}")
        nbytes = max(nbytes, 0)
        if self._waiting or self._used + nbytes > self.limit_bytes:
            self.waits += 1
            ready = asyncio.get_running_loop().create_future()
            entry = (nbytes, ready)
            self._waiting.append(entry)
            try:
                await ready
            except asyncio.CancelledError:
                if entry in self._waiting:
                    self._waiting.remove(entry)
                elif ready.done() and not ready.cancelled():
                    self._release(nbytes)  # granted just as it was cancelled
                self._grant()
                raise
        else:
            self._take(nbytes)
        try:
            yield
        finally:
            self._release(nbytes)

    def _take(self, nbytes: int) -> None:
        self._used += nbytes
        self.high_water_bytes = max(self.high_water_bytes, self._used)

    def _release(self, nbytes: int) -> None:
        self._used -= nbytes
        self._grant()

    def _grant(self) -> None:
        # In order of arrival: a large image is not starved by a stream of small ones.
        while self._waiting and self._used + self._waiting[0][0] <= self.limit_bytes:
            nbytes, ready = self._waiting.popleft()
            if ready.done():
                continue
            self._take(nbytes)
            ready.set_result(None)
